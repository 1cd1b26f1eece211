/* The page store behind incremental snapshots, without KVM: random
 * save/modify/load/delete sequences checked against full copies, the cost
 * of each operation against what changed, memory accounting, and the
 * checksums snapshot files use. */
#include "testmain.h"
#include "vm/checksum.h"
#include "vm/pagestore.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096u

/* xorshift: reproducible runs. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

struct ram {
    uint64_t npages;
    uint8_t *bytes;
};

static struct ram ram_new(uint64_t npages)
{
    struct ram r = {npages, calloc(npages, PAGE)};
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.bytes);
    return r;
}

/* Writes page p with one of a few contents (so that equal pages recur) and
 * reports it changed, as dirty tracking would. */
static void scribble(struct vm_pagestore *ps, struct ram *r, uint64_t p)
{
    uint8_t *pg = r->bytes + p * PAGE;
    switch (rnd() % 4) {
    case 0: memset(pg, 0, PAGE); break;                 /* back to zero */
    case 1: memset(pg, (int)(rnd() % 3) + 1, PAGE); break; /* a recurring content */
    default:
        for (unsigned i = 0; i < 8; i++)
            pg[rnd() % PAGE] = (uint8_t)rnd();
    }
    vm_pagestore_mark(ps, p, 1);
}

#define MAXSNAP 24

static void run_model(uint64_t npages, unsigned steps)
{
    if (test_under_valgrind())
        steps = steps / 10 + 1;
    struct vm_pagestore *ps;
    CU_ASSERT_EQUAL_FATAL(vm_pagestore_create(npages * PAGE, &ps), 0);
    struct ram r = ram_new(npages);
    struct vm_pagestore_snap *snaps[MAXSNAP] = {0};
    uint8_t *copies[MAXSNAP] = {0};
    unsigned nsnap = 0;
    for (unsigned step = 0; step < steps; step++) {
        unsigned op = (unsigned)(rnd() % 10);
        if (op < 5 || nsnap == 0) {
            /* modify a few pages, clustered or scattered, then save */
            unsigned k = (unsigned)(rnd() % 40);
            uint64_t at = rnd() % npages;
            for (unsigned i = 0; i < k; i++)
                scribble(ps, &r, rnd() % 2 ? rnd() % npages : (at + i) % npages);
            if (nsnap == MAXSNAP) {
                unsigned victim = (unsigned)(rnd() % nsnap);
                vm_pagestore_delete(ps, snaps[victim]);
                free(copies[victim]);
                snaps[victim] = snaps[nsnap - 1];
                copies[victim] = copies[nsnap - 1];
                nsnap--;
            }
            struct vm_pagestore_cost cost;
            CU_ASSERT_EQUAL_FATAL(
                vm_pagestore_save(ps, r.bytes, NULL, NULL, &snaps[nsnap], &cost), 0);
            CU_ASSERT(cost.copied + cost.shared <= cost.changed);
            CU_ASSERT(cost.visited <= cost.changed);
            copies[nsnap] = malloc(npages * PAGE);
            memcpy(copies[nsnap], r.bytes, npages * PAGE);
            uint64_t nonzero = 0;
            bool stored_right = true;
            for (uint64_t p = 0; p < npages; p++) {
                const uint8_t *pg = r.bytes + p * PAGE, *st = vm_pagestore_page(snaps[nsnap], p);
                bool zero = true;
                for (unsigned i = 0; i < PAGE && zero; i++)
                    zero = pg[i] == 0;
                nonzero += !zero;
                stored_right &= zero ? st == NULL : st && memcmp(st, pg, PAGE) == 0;
            }
            CU_ASSERT(stored_right);
            CU_ASSERT_EQUAL(vm_pagestore_snap_pages(snaps[nsnap]), nonzero);
            nsnap++;
        } else if (op < 8) {
            /* modify (unsaved work), then go back to a snapshot */
            unsigned k = (unsigned)(rnd() % 20);
            for (unsigned i = 0; i < k; i++)
                scribble(ps, &r, rnd() % npages);
            unsigned i = (unsigned)(rnd() % nsnap);
            struct vm_pagestore_cost cost;
            vm_pagestore_load(ps, snaps[i], r.bytes, &cost);
            CU_ASSERT_EQUAL(memcmp(r.bytes, copies[i], npages * PAGE), 0);
        } else {
            unsigned i = (unsigned)(rnd() % nsnap);
            uint64_t before = vm_pagestore_usage(ps)->bytes;
            uint64_t own = vm_pagestore_snap_bytes(snaps[i]);
            vm_pagestore_delete(ps, snaps[i]);
            CU_ASSERT_EQUAL(vm_pagestore_usage(ps)->bytes, before - own);
            free(copies[i]);
            snaps[i] = snaps[nsnap - 1];
            copies[i] = copies[nsnap - 1];
            nsnap--;
        }
        CU_ASSERT_EQUAL(vm_pagestore_usage(ps)->snaps, nsnap);
    }
    /* Every snapshot still loads exactly, in any order. */
    for (unsigned i = 0; i < nsnap; i++) {
        vm_pagestore_load(ps, snaps[(i * 7) % nsnap], r.bytes, NULL);
        CU_ASSERT_EQUAL(memcmp(r.bytes, copies[(i * 7) % nsnap], npages * PAGE), 0);
    }
    for (unsigned i = 0; i < nsnap; i++)
        free(copies[i]);
    vm_pagestore_destroy(ps);
    free(r.bytes);
}

static void test_model_small(void)
{
    run_model(300, 3000); /* not a multiple of 64: a partial leaf at the end */
}

static void test_model_three_levels(void)
{
    run_model(5000, 600);
}

/* A big RAM (256 MiB) with a few changes: the work of save and load follows
 * the pages changed, not the RAM size. */
static void test_cost_follows_changes(void)
{
    const uint64_t npages = 65536;
    struct vm_pagestore *ps;
    CU_ASSERT_EQUAL_FATAL(vm_pagestore_create(npages * PAGE, &ps), 0);
    struct ram r = ram_new(npages);
    struct vm_pagestore_cost c;
    struct vm_pagestore_snap *empty, *a, *b, *same;
    CU_ASSERT_EQUAL_FATAL(vm_pagestore_save(ps, r.bytes, NULL, NULL, &empty, &c), 0);
    CU_ASSERT_EQUAL(c.copied, 0);
    CU_ASSERT_EQUAL(vm_pagestore_usage(ps)->bytes, 0); /* all zero: nothing held */

    /* 10 pages far apart */
    for (unsigned i = 0; i < 10; i++) {
        r.bytes[(uint64_t)i * 6000 * PAGE] = (uint8_t)(i + 1);
        vm_pagestore_mark(ps, (uint64_t)i * 6000, 1);
    }
    CU_ASSERT(vm_pagestore_save_bound(ps) >= 10 * PAGE);
    CU_ASSERT_EQUAL_FATAL(vm_pagestore_save(ps, r.bytes, NULL, NULL, &a, &c), 0);
    CU_ASSERT_EQUAL(c.changed, 10);
    CU_ASSERT_EQUAL(c.copied, 10);
    CU_ASSERT_EQUAL(c.visited, 10);
    uint64_t held = vm_pagestore_usage(ps)->bytes;
    CU_ASSERT(held >= 10 * PAGE && held < 10 * PAGE + 40 * 600);

    /* Saving again with nothing changed shares everything. */
    CU_ASSERT_EQUAL_FATAL(vm_pagestore_save(ps, r.bytes, NULL, NULL, &same, &c), 0);
    CU_ASSERT_EQUAL(c.copied, 0);
    CU_ASSERT_EQUAL(vm_pagestore_usage(ps)->bytes, held);
    CU_ASSERT_EQUAL(vm_pagestore_snap_bytes(same), 0);

    /* A page rewritten with its old content is shared, not copied. */
    r.bytes[0] = 1;
    vm_pagestore_mark(ps, 0, 1);
    r.bytes[3 * PAGE] = 9;
    vm_pagestore_mark(ps, 3, 1);
    CU_ASSERT_EQUAL_FATAL(vm_pagestore_save(ps, r.bytes, NULL, NULL, &b, &c), 0);
    CU_ASSERT_EQUAL(c.changed, 2);
    CU_ASSERT_EQUAL(c.shared, 1);
    CU_ASSERT_EQUAL(c.copied, 1);

    /* Loading a from b: exactly the one page that differs is written, and
     * only the pages on the differing paths are looked at. */
    vm_pagestore_load(ps, a, r.bytes, &c);
    CU_ASSERT_EQUAL(c.copied, 1);
    CU_ASSERT(c.visited <= 64);
    CU_ASSERT_EQUAL(r.bytes[3 * PAGE], 0);
    /* Changed pages since the load are restored too, and only they. */
    r.bytes[100 * PAGE] = 5;
    r.bytes[40000 * PAGE + 7] = 5;
    vm_pagestore_mark(ps, 100, 1);
    vm_pagestore_mark(ps, 40000, 1);
    vm_pagestore_load(ps, a, r.bytes, &c);
    CU_ASSERT_EQUAL(c.changed, 2);
    CU_ASSERT_EQUAL(c.copied, 2);
    CU_ASSERT(c.visited <= 128);
    CU_ASSERT_EQUAL(r.bytes[100 * PAGE], 0);
    CU_ASSERT_EQUAL(r.bytes[40000 * PAGE + 7], 0);
    /* The empty snapshot from a: the 10 pages go back to zero. */
    vm_pagestore_load(ps, empty, r.bytes, &c);
    CU_ASSERT_EQUAL(c.copied, 10);
    for (unsigned i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(r.bytes[(uint64_t)i * 6000 * PAGE], 0);

    vm_pagestore_delete(ps, a);
    vm_pagestore_delete(ps, same);
    vm_pagestore_delete(ps, b);
    /* Only the base (the empty snapshot) is left: nothing held. */
    CU_ASSERT_EQUAL(vm_pagestore_usage(ps)->bytes, 0);
    CU_ASSERT_EQUAL(vm_pagestore_usage(ps)->pages, 0);
    vm_pagestore_delete(ps, empty);
    vm_pagestore_destroy(ps);
    free(r.bytes);
}

/* A deleted base snapshot stays the reference for the next save. */
static void test_delete_base_keeps_increments(void)
{
    struct vm_pagestore *ps;
    CU_ASSERT_EQUAL_FATAL(vm_pagestore_create(1024 * PAGE, &ps), 0);
    struct ram r = ram_new(1024);
    memset(r.bytes, 7, 1024 * PAGE);
    vm_pagestore_mark(ps, 0, 1024);
    struct vm_pagestore_snap *a, *b;
    CU_ASSERT_EQUAL_FATAL(vm_pagestore_save(ps, r.bytes, NULL, NULL, &a, NULL), 0);
    uint64_t full = vm_pagestore_usage(ps)->bytes;
    CU_ASSERT_EQUAL(vm_pagestore_snap_bytes(a), 0); /* the base shares all of it */
    vm_pagestore_delete(ps, a);
    CU_ASSERT_EQUAL(vm_pagestore_usage(ps)->bytes, full);
    r.bytes[5 * PAGE] = 1;
    vm_pagestore_mark(ps, 5, 1);
    struct vm_pagestore_cost c;
    CU_ASSERT_EQUAL_FATAL(vm_pagestore_save(ps, r.bytes, NULL, NULL, &b, &c), 0);
    CU_ASSERT_EQUAL(c.copied, 1);
    CU_ASSERT_EQUAL(vm_pagestore_snap_pages(b), 1024);
    vm_pagestore_destroy(ps);
    free(r.bytes);
}

static void hide_first_byte(void *ctx, uint64_t gpa, uint8_t *page)
{
    (void)ctx;
    if (gpa == 2 * PAGE)
        page[0] = 0x90; /* the byte a planted breakpoint replaced */
}

static void test_fixup_hides_planted_bytes(void)
{
    struct vm_pagestore *ps;
    CU_ASSERT_EQUAL_FATAL(vm_pagestore_create(64 * PAGE, &ps), 0);
    struct ram r = ram_new(64);
    r.bytes[2 * PAGE] = 0xcc;
    r.bytes[2 * PAGE + 1] = 0x55;
    vm_pagestore_mark(ps, 2, 1);
    struct vm_pagestore_snap *s;
    CU_ASSERT_EQUAL_FATAL(vm_pagestore_save(ps, r.bytes, hide_first_byte, NULL, &s, NULL), 0);
    const uint8_t *pg = vm_pagestore_page(s, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pg);
    CU_ASSERT_EQUAL(pg[0], 0x90);
    CU_ASSERT_EQUAL(pg[1], 0x55);
    vm_pagestore_mark(ps, 2, 1);
    vm_pagestore_load(ps, s, r.bytes, NULL);
    CU_ASSERT_EQUAL(r.bytes[2 * PAGE], 0x90);
    vm_pagestore_destroy(ps);
    free(r.bytes);
}

static void test_limit_refuses_and_keeps_changes(void)
{
    struct vm_pagestore *ps;
    CU_ASSERT_EQUAL_FATAL(vm_pagestore_create(256 * PAGE, &ps), 0);
    struct ram r = ram_new(256);
    for (unsigned p = 0; p < 100; p++)
        r.bytes[p * PAGE] = 1;
    vm_pagestore_mark(ps, 0, 100);
    vm_pagestore_set_limit(ps, 50 * PAGE);
    struct vm_pagestore_snap *s = NULL;
    CU_ASSERT_EQUAL(vm_pagestore_save(ps, r.bytes, NULL, NULL, &s, NULL), -ENOSPC);
    CU_ASSERT_EQUAL(vm_pagestore_usage(ps)->bytes, 0);
    CU_ASSERT_EQUAL(vm_pagestore_usage(ps)->snaps, 0);
    vm_pagestore_set_limit(ps, 0);
    struct vm_pagestore_cost c;
    CU_ASSERT_EQUAL_FATAL(vm_pagestore_save(ps, r.bytes, NULL, NULL, &s, &c), 0);
    CU_ASSERT_EQUAL(c.copied, 100);
    CU_ASSERT_EQUAL(vm_pagestore_snap_pages(s), 100);
    vm_pagestore_destroy(ps);
    free(r.bytes);
}

static int copy_page(void *ctx, uint64_t page, const uint8_t *data)
{
    return vm_pagestore_import_page(ctx, page, data);
}

static void test_import_round_trip(void)
{
    struct vm_pagestore *ps;
    CU_ASSERT_EQUAL_FATAL(vm_pagestore_create(5000 * PAGE, &ps), 0);
    struct ram r = ram_new(5000);
    for (unsigned i = 0; i < 300; i++)
        scribble(ps, &r, rnd() % 5000);
    uint8_t *want = malloc(5000 * PAGE);
    memcpy(want, r.bytes, 5000 * PAGE);
    struct vm_pagestore_snap *s, *t;
    CU_ASSERT_EQUAL_FATAL(vm_pagestore_save(ps, r.bytes, NULL, NULL, &s, NULL), 0);
    struct vm_pagestore_import *im;
    CU_ASSERT_EQUAL_FATAL(vm_pagestore_import_begin(ps, &im), 0);
    CU_ASSERT_EQUAL(vm_pagestore_foreach(s, copy_page, im), 0);
    t = vm_pagestore_import_end(im);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(vm_pagestore_snap_pages(t), vm_pagestore_snap_pages(s));
    memset(r.bytes, 0xee, 5000 * PAGE);
    vm_pagestore_mark(ps, 0, 5000);
    vm_pagestore_load(ps, t, r.bytes, NULL);
    CU_ASSERT_EQUAL(memcmp(r.bytes, want, 5000 * PAGE), 0);
    /* Out of order, repeated, past RAM: refused; an abort frees it all. */
    uint64_t held = vm_pagestore_usage(ps)->bytes;
    uint8_t pg[PAGE];
    memset(pg, 1, sizeof(pg));
    CU_ASSERT_EQUAL_FATAL(vm_pagestore_import_begin(ps, &im), 0);
    CU_ASSERT_EQUAL(vm_pagestore_import_page(im, 10, pg), 0);
    CU_ASSERT_EQUAL(vm_pagestore_import_page(im, 10, pg), -EINVAL);
    CU_ASSERT_EQUAL(vm_pagestore_import_page(im, 9, pg), -EINVAL);
    CU_ASSERT_EQUAL(vm_pagestore_import_page(im, 5000, pg), -EINVAL);
    vm_pagestore_import_abort(im);
    CU_ASSERT_EQUAL(vm_pagestore_usage(ps)->bytes, held);
    vm_pagestore_destroy(ps);
    free(r.bytes);
    free(want);
}

static void test_crc32c(void)
{
    CU_ASSERT_EQUAL(vm_checksum_crc32c(0, "123456789", 9), 0xe3069283u);
    CU_ASSERT_EQUAL(vm_checksum_crc32c_portable(0, "123456789", 9), 0xe3069283u);
    uint8_t buf[1000];
    for (unsigned i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)rnd();
    for (unsigned off = 0; off < 9; off++)
        for (unsigned len = 0; len < 200; len += 7)
            CU_ASSERT_EQUAL(vm_checksum_crc32c(0, buf + off, len),
                            vm_checksum_crc32c_portable(0, buf + off, len));
    /* Chaining equals one pass. */
    uint32_t c = vm_checksum_crc32c(0, buf, 333);
    CU_ASSERT_EQUAL(vm_checksum_crc32c(c, buf + 333, 667), vm_checksum_crc32c(0, buf, 1000));
    CU_ASSERT_NOT_EQUAL(vm_checksum_fnv64(VM_CHECKSUM_FNV64_INIT, "a", 1),
                        vm_checksum_fnv64(VM_CHECKSUM_FNV64_INIT, "b", 1));
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("vm_snap_store", NULL, NULL);
    CU_add_test(s, "random save/modify/load/delete, 300 pages", test_model_small);
    CU_add_test(s, "random save/modify/load/delete, 5000 pages", test_model_three_levels);
    CU_add_test(s, "save and load cost follows pages changed", test_cost_follows_changes);
    CU_add_test(s, "deleting the base keeps saves incremental", test_delete_base_keeps_increments);
    CU_add_test(s, "saves hold the guest's bytes, not planted ones",
                test_fixup_hides_planted_bytes);
    CU_add_test(s, "a store at its limit refuses and keeps the changes",
                test_limit_refuses_and_keeps_changes);
    CU_add_test(s, "import rebuilds a snapshot, checks order", test_import_round_trip);
    CU_add_test(s, "CRC-32C vectors, hardware equals tables", test_crc32c);
}

int main(void)
{
    return test_main("test_vm_snap_store", register_suites, false);
}
