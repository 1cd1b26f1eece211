/* Split virtqueues over a fake guest RAM: the chains a driver builds are
 * walked as the driver meant, and every rule a hostile guest can break
 * (loops, indices past the table, addresses outside RAM, bad indirect
 * tables, an avail index running ahead) breaks the queue at once instead
 * of reading outside RAM or spinning. No KVM needed. */
#include "testmain.h"
#include "vm/virtqueue.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RAM_SIZE 0x10000u
#define DESC 0x1000u
#define AVAIL 0x2000u
#define USED 0x3000u
#define F_NEXT 1u
#define F_WRITE 2u
#define F_INDIRECT 4u

static uint8_t *ram;
static struct vm_virtq_mem mem;
static struct vm_virtq q;
static struct vm_virtq_chain chain;

static void put_desc(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
    uint8_t *d = ram + table + 16 * i;
    memcpy(d, &addr, 8);
    memcpy(d + 8, &len, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
}

static uint16_t avail_idx(void)
{
    uint16_t v;
    memcpy(&v, ram + AVAIL + 2, 2);
    return v;
}

/* The driver offers the chain starting at head. */
static void offer(uint16_t head)
{
    uint16_t idx = avail_idx();
    memcpy(ram + AVAIL + 4 + 2 * (idx % q.size), &head, 2);
    idx++;
    memcpy(ram + AVAIL + 2, &idx, 2);
}

static void setup(uint16_t size, bool indirect)
{
    if (!ram)
        ram = malloc(RAM_SIZE);
    memset(ram, 0, RAM_SIZE);
    mem = (struct vm_virtq_mem){.ram = ram, .size = RAM_SIZE};
    vm_virtq_reset(&q);
    q.size = size;
    q.desc = DESC;
    q.avail = AVAIL;
    q.used = USED;
    q.indirect = indirect;
    CU_ASSERT_EQUAL_FATAL(vm_virtq_start(&q, &mem), 0);
    q.ready = true;
}

static void test_chain_is_walked_in_order(void)
{
    setup(8, false);
    put_desc(DESC, 3, 0x4000, 16, F_NEXT, 5);
    put_desc(DESC, 5, 0x5000, 512, F_NEXT | F_WRITE, 1);
    put_desc(DESC, 1, 0x6000, 1, F_WRITE, 0);
    memcpy(ram + 0x4000, "header bytes....", 16);
    CU_ASSERT_EQUAL(vm_virtq_pop(&q, &mem, &chain), 0); /* nothing offered yet */
    offer(3);
    CU_ASSERT_EQUAL_FATAL(vm_virtq_pop(&q, &mem, &chain), 1);
    CU_ASSERT_EQUAL(chain.head, 3);
    CU_ASSERT_EQUAL(chain.nsegs, 3);
    CU_ASSERT_EQUAL(chain.nread, 1);
    CU_ASSERT_EQUAL(chain.read_len, 16);
    CU_ASSERT_EQUAL(chain.write_len, 513);
    CU_ASSERT_PTR_EQUAL(chain.segs[0].host, ram + 0x4000);
    CU_ASSERT_PTR_EQUAL(chain.segs[1].host, ram + 0x5000);
    CU_ASSERT_PTR_EQUAL(chain.segs[2].host, ram + 0x6000);
    /* Gather and scatter across segment boundaries. */
    char hdr[17] = {0};
    CU_ASSERT_EQUAL(vm_virtq_chain_read(&chain, 0, hdr, 16), 16);
    CU_ASSERT_STRING_EQUAL(hdr, "header bytes....");
    uint8_t tail[3] = {0xaa, 0xbb, 0xcc};
    CU_ASSERT_EQUAL(vm_virtq_chain_write(&chain, 510, tail, 3), 3);
    CU_ASSERT_EQUAL(ram[0x5000 + 510], 0xaa);
    CU_ASSERT_EQUAL(ram[0x5000 + 511], 0xbb);
    CU_ASSERT_EQUAL(ram[0x6000], 0xcc);
    CU_ASSERT_EQUAL(vm_virtq_chain_write(&chain, 512, tail, 3), 1); /* only what fits */
    CU_ASSERT_EQUAL(vm_virtq_pop(&q, &mem, &chain), 0);
    CU_ASSERT_FALSE(q.broken);
}

static void test_used_ring_and_interrupt_suppression(void)
{
    setup(4, false);
    put_desc(DESC, 0, 0x4000, 8, F_WRITE, 0);
    for (int round = 0; round < 6; round++) { /* wraps the 4-entry ring */
        offer(0);
        CU_ASSERT_EQUAL_FATAL(vm_virtq_pop(&q, &mem, &chain), 1);
        vm_virtq_push(&q, chain.head, 8);
        uint16_t used_idx;
        uint32_t id, len;
        memcpy(&used_idx, ram + USED + 2, 2);
        memcpy(&id, ram + USED + 4 + 8 * (round % 4), 4);
        memcpy(&len, ram + USED + 8 + 8 * (round % 4), 4);
        CU_ASSERT_EQUAL(used_idx, round + 1);
        CU_ASSERT_EQUAL(id, 0);
        CU_ASSERT_EQUAL(len, 8);
    }
    CU_ASSERT_TRUE(vm_virtq_should_notify(&q));
    ram[AVAIL] = 1; /* VIRTQ_AVAIL_F_NO_INTERRUPT */
    CU_ASSERT_FALSE(vm_virtq_should_notify(&q));
}

static void test_loop_breaks_the_queue(void)
{
    setup(8, false);
    put_desc(DESC, 0, 0x4000, 16, F_NEXT, 1);
    put_desc(DESC, 1, 0x4100, 16, F_NEXT, 0); /* back to 0 */
    offer(0);
    CU_ASSERT_EQUAL(vm_virtq_pop(&q, &mem, &chain), -EIO);
    CU_ASSERT_TRUE(q.broken);
    /* Broken stays broken: nothing more is taken until a reset. */
    put_desc(DESC, 2, 0x4000, 16, 0, 0);
    offer(2);
    CU_ASSERT_EQUAL(vm_virtq_pop(&q, &mem, &chain), -EIO);
    /* A loop of empty descriptors, which add no segment: the walk still
     * ends within the table's size. */
    setup(8, false);
    put_desc(DESC, 0, 0x4000, 0, F_NEXT, 1);
    put_desc(DESC, 1, 0x4000, 0, F_NEXT, 0);
    offer(0);
    CU_ASSERT_EQUAL(vm_virtq_pop(&q, &mem, &chain), -EIO);
    /* A descriptor pointing at itself, too. */
    setup(8, false);
    put_desc(DESC, 4, 0x4000, 16, F_NEXT, 4);
    offer(4);
    CU_ASSERT_EQUAL(vm_virtq_pop(&q, &mem, &chain), -EIO);
}

static void test_longest_chain_is_the_queue_size(void)
{
    setup(8, false);
    for (unsigned i = 0; i < 8; i++)
        put_desc(DESC, i, 0x4000 + 0x10 * i, 16, i < 7 ? F_NEXT : 0, (uint16_t)(i + 1));
    offer(0);
    CU_ASSERT_EQUAL_FATAL(vm_virtq_pop(&q, &mem, &chain), 1);
    CU_ASSERT_EQUAL(chain.nsegs, 8);
}

static void test_indices_out_of_range(void)
{
    setup(8, false);
    put_desc(DESC, 0, 0x4000, 16, F_NEXT, 8); /* next past the table */
    offer(0);
    CU_ASSERT_EQUAL(vm_virtq_pop(&q, &mem, &chain), -EIO);
    setup(8, false);
    offer(9); /* head past the table */
    CU_ASSERT_EQUAL(vm_virtq_pop(&q, &mem, &chain), -EIO);
    setup(8, false);
    uint16_t idx = 9; /* nine new entries in an eight-entry ring */
    memcpy(ram + AVAIL + 2, &idx, 2);
    CU_ASSERT_EQUAL(vm_virtq_pop(&q, &mem, &chain), -EIO);
}

static void test_buffers_outside_ram(void)
{
    static const struct {
        uint64_t addr;
        uint32_t len;
    } bad[] = {
        {RAM_SIZE, 1},             /* just past the end */
        {RAM_SIZE - 4, 5},         /* straddling the end */
        {UINT64_MAX - 3, 16},      /* wrapping around */
        {0x4000, 0xffffffffu},     /* longer than RAM */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setup(8, false);
        put_desc(DESC, 0, bad[i].addr, bad[i].len, 0, 0);
        offer(0);
        CU_ASSERT_EQUAL(vm_virtq_pop(&q, &mem, &chain), -EIO);
    }
    /* The last byte of RAM is fine. */
    setup(8, false);
    put_desc(DESC, 0, RAM_SIZE - 1, 1, F_WRITE, 0);
    offer(0);
    CU_ASSERT_EQUAL(vm_virtq_pop(&q, &mem, &chain), 1);
}

static void test_readable_after_writable_is_refused(void)
{
    setup(8, false);
    put_desc(DESC, 0, 0x4000, 16, F_NEXT | F_WRITE, 1);
    put_desc(DESC, 1, 0x4100, 16, 0, 0);
    offer(0);
    CU_ASSERT_EQUAL(vm_virtq_pop(&q, &mem, &chain), -EIO);
}

static void test_indirect_tables(void)
{
    const uint64_t table = 0x8000;
    /* A request in an indirect table of three. */
    setup(8, true);
    put_desc(table, 0, 0x4000, 16, F_NEXT, 1);
    put_desc(table, 1, 0x5000, 512, F_NEXT | F_WRITE, 2);
    put_desc(table, 2, 0x6000, 1, F_WRITE, 0);
    put_desc(DESC, 2, table, 48, F_INDIRECT, 0);
    offer(2);
    CU_ASSERT_EQUAL_FATAL(vm_virtq_pop(&q, &mem, &chain), 1);
    CU_ASSERT_EQUAL(chain.head, 2);
    CU_ASSERT_EQUAL(chain.nsegs, 3);
    CU_ASSERT_EQUAL(chain.write_len, 513);

    /* The same table 8-byte aligned, as a kernel built with SLOB kmallocs
     * it: served too. */
    setup(8, true);
    put_desc(table + 8, 0, 0x4000, 16, F_NEXT, 1);
    put_desc(table + 8, 1, 0x5000, 512, F_NEXT | F_WRITE, 2);
    put_desc(table + 8, 2, 0x6000, 1, F_WRITE, 0);
    put_desc(DESC, 2, table + 8, 48, F_INDIRECT, 0);
    offer(2);
    CU_ASSERT_EQUAL_FATAL(vm_virtq_pop(&q, &mem, &chain), 1);
    CU_ASSERT_EQUAL(chain.nsegs, 3);
    CU_ASSERT_EQUAL(chain.write_len, 513);

    /* Not negotiated: refused. */
    setup(8, false);
    put_desc(table, 0, 0x4000, 16, 0, 0);
    put_desc(DESC, 0, table, 16, F_INDIRECT, 0);
    offer(0);
    CU_ASSERT_EQUAL(vm_virtq_pop(&q, &mem, &chain), -EIO);

    /* An indirect descriptor inside an indirect table. */
    setup(8, true);
    put_desc(table, 0, table, 16, F_INDIRECT, 0);
    put_desc(DESC, 0, table, 16, F_INDIRECT, 0);
    offer(0);
    CU_ASSERT_EQUAL(vm_virtq_pop(&q, &mem, &chain), -EIO);

    /* INDIRECT together with NEXT; a length not whole descriptors; an empty
     * table; a table past the end of RAM; a loop inside the table. */
    struct {
        uint64_t addr;
        uint32_t len;
        uint16_t flags;
    } bad[] = {
        {table, 16, F_INDIRECT | F_NEXT},
        {table, 20, F_INDIRECT},
        {table, 0, F_INDIRECT},
        {RAM_SIZE - 16, 32, F_INDIRECT},
        {table + 0x100, 32, F_INDIRECT},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setup(8, true);
        put_desc(table, 0, 0x4000, 16, 0, 0);
        put_desc(table + 0x100, 0, 0x4000, 16, F_NEXT, 1);
        put_desc(table + 0x100, 1, 0x4000, 16, F_NEXT, 0);
        put_desc(DESC, 0, bad[i].addr, bad[i].len, bad[i].flags, 1);
        put_desc(DESC, 1, 0x4000, 16, 0, 0);
        offer(0);
        CU_ASSERT_EQUAL(vm_virtq_pop(&q, &mem, &chain), -EIO);
    }
}

static void test_ring_placement_is_checked(void)
{
    static const struct {
        uint16_t size;
        uint64_t desc, avail, used;
    } bad[] = {
        {0, DESC, AVAIL, USED},
        {6, DESC, AVAIL, USED},                    /* not a power of two */
        {512, DESC, AVAIL, USED},                  /* larger than offered */
        {8, DESC + 8, AVAIL, USED},                /* misaligned table */
        {8, DESC, AVAIL + 1, USED},                /* misaligned avail ring */
        {8, DESC, AVAIL, USED + 2},                /* misaligned used ring */
        {8, RAM_SIZE - 64, AVAIL, USED},           /* table past RAM */
        {8, DESC, RAM_SIZE - 8, USED},             /* avail ring past RAM */
        {8, DESC, AVAIL, RAM_SIZE - 32},           /* used ring past RAM */
        {8, DESC, AVAIL, UINT64_MAX - 3},          /* wrapping */
    };
    setup(8, false);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        vm_virtq_reset(&q);
        q.size = bad[i].size;
        q.desc = bad[i].desc;
        q.avail = bad[i].avail;
        q.used = bad[i].used;
        CU_ASSERT_EQUAL(vm_virtq_start(&q, &mem), -EINVAL);
        q.ready = true;
        CU_ASSERT_EQUAL(vm_virtq_pop(&q, &mem, &chain), -EIO);
    }
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("vm_virtqueue", NULL, NULL);
    CU_add_test(s, "a chain is walked in order and gathered across segments",
                test_chain_is_walked_in_order);
    CU_add_test(s, "used ring wraps; NO_INTERRUPT suppresses the interrupt",
                test_used_ring_and_interrupt_suppression);
    CU_add_test(s, "a descriptor loop breaks the queue and it stays broken",
                test_loop_breaks_the_queue);
    CU_add_test(s, "a chain as long as the queue is accepted", test_longest_chain_is_the_queue_size);
    CU_add_test(s, "head, next and avail index out of range", test_indices_out_of_range);
    CU_add_test(s, "buffers outside RAM, straddling or wrapping", test_buffers_outside_ram);
    CU_add_test(s, "readable after writable is refused", test_readable_after_writable_is_refused);
    CU_add_test(s, "indirect tables: served, and every bad form refused", test_indirect_tables);
    CU_add_test(s, "ring size, alignment and placement are checked", test_ring_placement_is_checked);
}

int main(void)
{
    int r = test_main("test_vm_virtqueue", register_suites, false);
    free(ram);
    return r;
}
