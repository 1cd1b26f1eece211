/* fuzz_virtqueue: libFuzzer harness for the split-virtqueue parser and the
 * virtio-blk request path behind virtio-mmio.
 *
 * The input is a hostile guest: 10 bytes of set-up (queue size as a power
 * of two, whether indirect descriptors and a read-only drive are used, and
 * where the descriptor table, available and used rings lie, misaligned or
 * outside RAM as the input likes), then the guest's RAM. First the parser
 * alone takes every chain offered, and each must lie wholly in RAM,
 * readable before writable, no longer than the queue; then a drive over a
 * 4 KiB in-memory image is brought up through its MMIO registers and
 * notified, and the image must keep its size (and, read-only, its bytes).
 * Any broken invariant aborts; a loop would show as a libFuzzer timeout.
 * FUZZ_VIRTQUEUE_VERBOSE=1 prints what the drive did with each input. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm/virtio_blk.h"
#include "vm/virtio_mmio.h"
#include "vm/virtqueue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM_SIZE 4096u
#define IMAGE_SIZE 4096u
#define SETUP 10u

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static uint8_t ram[RAM_SIZE], ram_copy[RAM_SIZE];
static struct vm_virtq_chain chain;

static void check_chain(const struct vm_virtq_chain *c, uint16_t qsize)
{
    CHECK(c->head < qsize);
    CHECK(c->nsegs <= VM_VIRTQ_MAX_SEGS && c->nread <= c->nsegs);
    uint64_t r = 0, w = 0;
    for (unsigned i = 0; i < c->nsegs; i++) {
        const struct vm_virtq_seg *s = &c->segs[i];
        CHECK(s->host >= ram && s->len <= RAM_SIZE &&
              (size_t)(s->host - ram) <= RAM_SIZE - s->len);
        CHECK(s->write == (i >= c->nread));
        CHECK(s->len > 0);
        if (s->write)
            w += s->len;
        else
            r += s->len;
    }
    CHECK(r == c->read_len && w == c->write_len);
}

static void parse_alone(const struct vm_virtq *setup, const struct vm_virtq_mem *mem)
{
    struct vm_virtq q = *setup;
    if (vm_virtq_start(&q, mem))
        return;
    q.ready = true;
    /* More pops than entries: the ring cannot give more than it holds. */
    for (unsigned n = 0; n <= (unsigned)q.size + 1; n++) {
        int r = vm_virtq_pop(&q, mem, &chain);
        CHECK(r == 0 || r == 1 || r == -5);
        if (r != 1)
            break;
        CHECK(n < q.size);
        check_chain(&chain, q.size);
        vm_virtq_push(&q, chain.head, (uint32_t)chain.write_len);
    }
}

static void wr(struct vm_virtio_mmio *m, uint64_t off, uint32_t v)
{
    vm_virtio_mmio_write(m, off, (const uint8_t *)&v, 4, NULL);
}

static uint64_t image_sum(int fd)
{
    static uint8_t buf[IMAGE_SIZE];
    CHECK(pread(fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf));
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof(buf); i++)
        h = (h ^ buf[i]) * 1099511628211ull;
    return h;
}

static void drive(const struct vm_virtq *setup, const struct vm_virtq_mem *mem, bool readonly)
{
    static int fd = -1;
    if (fd < 0) {
        fd = memfd_create("fuzz_virtqueue_image", MFD_CLOEXEC);
        CHECK(fd >= 0 && ftruncate(fd, IMAGE_SIZE) == 0);
    }
    uint64_t before = image_sum(fd);
    struct vm_virtio_blk b;
    char err[256];
    CHECK(vm_virtio_blk_init_fd(&b, fd, readonly, "fuzz", mem, err, sizeof(err)) == 0);
    struct vm_virtio_mmio m;
    vm_virtio_mmio_init(&m, &b.vdev);
    uint64_t features = VM_VIRTIO_F_VERSION_1 | VM_VIRTIO_BLK_F_FLUSH |
                        (readonly ? VM_VIRTIO_BLK_F_RO : 0) |
                        (setup->indirect ? VM_VIRTIO_F_INDIRECT_DESC : 0);
    wr(&m, 0x070, 1);
    wr(&m, 0x070, 3);
    wr(&m, 0x024, 0);
    wr(&m, 0x020, (uint32_t)features);
    wr(&m, 0x024, 1);
    wr(&m, 0x020, (uint32_t)(features >> 32));
    wr(&m, 0x070, 0xb);
    wr(&m, 0x038, setup->size);
    wr(&m, 0x080, (uint32_t)setup->desc);
    wr(&m, 0x090, (uint32_t)setup->avail);
    wr(&m, 0x0a0, (uint32_t)setup->used);
    wr(&m, 0x044, 1);
    wr(&m, 0x070, 0xf);
    wr(&m, 0x050, 0);
    wr(&m, 0x050, 0); /* again: a broken queue stays quiet, a good one has nothing new */
    if (getenv("FUZZ_VIRTQUEUE_VERBOSE")) /* to see what a seed reaches */
        fprintf(stderr, "fuzz_virtqueue: status %#x, %llu reads, %llu writes, %llu flushes, "
                        "%llu ids, %llu errors, %llu unsupported\n",
                b.vdev.status, (unsigned long long)b.stats.reads,
                (unsigned long long)b.stats.writes, (unsigned long long)b.stats.flushes,
                (unsigned long long)b.stats.get_ids, (unsigned long long)b.stats.errors,
                (unsigned long long)b.stats.unsupported);
    wr(&m, 0x070, 0); /* a reset with whatever is left */
    vm_virtio_blk_close(&b);
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size == IMAGE_SIZE);
    if (readonly)
        CHECK(image_sum(fd) == before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < SETUP)
        return 0;
    struct vm_virtq setup;
    vm_virtq_reset(&setup);
    setup.size = (uint16_t)(1u << (data[0] % 9));
    setup.indirect = data[1] & 1;
    bool readonly = data[1] & 2;
    uint16_t v;
    memcpy(&v, data + 2, 2);
    setup.desc = v;
    memcpy(&v, data + 4, 2);
    setup.avail = v;
    memcpy(&v, data + 6, 2);
    setup.used = v;
    if (data[8] & 1) /* now and then a size the device never offered */
        setup.size = (uint16_t)(data[9] | (data[8] & 0xfe) << 7);
    memset(ram, 0, sizeof(ram));
    size_t n = size - SETUP < RAM_SIZE ? size - SETUP : RAM_SIZE;
    memcpy(ram, data + SETUP, n);
    memcpy(ram_copy, ram, sizeof(ram));
    struct vm_virtq_mem mem = {.ram = ram, .size = RAM_SIZE};
    parse_alone(&setup, &mem);
    memcpy(ram, ram_copy, sizeof(ram));
    drive(&setup, &mem, readonly);
    return 0;
}
