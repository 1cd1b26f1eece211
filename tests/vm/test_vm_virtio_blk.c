/* virtio-blk behind the virtio-mmio transport, driven register by register
 * as Linux's virtio_mmio and virtio_blk drivers do, over a fake guest RAM
 * and a temporary raw image: what the guest reads and writes lands in the
 * image and nowhere else, bad requests get the status the spec gives, and a
 * hostile guest breaks only its own device. No KVM needed. */
#include "testmain.h"
#include "vm/virtio_blk.h"
#include "vm/virtio_mmio.h"
#include "vm/virtio_worker.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RAM_SIZE 0x100000u
#define DESC 0x1000u
#define AVAIL 0x2000u
#define USED 0x3000u
#define HDR 0x4000u
#define STATUS 0x4100u
#define DATA 0x10000u
#define QSIZE 16u
#define SECTORS 64u
#define F_NEXT 1u
#define F_WRITE 2u

static uint8_t *ram;
static struct vm_virtq_mem mem;
static char image[64];
static struct vm_virtio_blk blk;
static struct vm_virtio_mmio mmio;
static bool irq_level;
static unsigned irq_edges;
static uint16_t next_avail;

static void on_irq(void *ctx, bool level)
{
    (void)ctx;
    if (level && !irq_level)
        irq_edges++;
    irq_level = level;
}

static uint32_t rd(uint64_t off)
{
    uint32_t v = 0xdeadbeef;
    vm_virtio_mmio_read(&mmio, off, (uint8_t *)&v, 4, NULL);
    return v;
}

static void wr(uint64_t off, uint32_t v)
{
    vm_virtio_mmio_write(&mmio, off, (const uint8_t *)&v, 4, NULL);
}

/* A fresh image of SECTORS sectors, sector k filled with byte k + 1. */
static void make_image(const char *path, off_t size)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    uint8_t sector[512];
    for (off_t k = 0; k * 512 < size; k++) {
        memset(sector, (int)(k + 1), sizeof(sector));
        size_t n = size - k * 512 < 512 ? (size_t)(size - k * 512) : 512;
        CU_ASSERT_FATAL(pwrite(fd, sector, n, k * 512) == (ssize_t)n);
    }
    close(fd);
}

static uint8_t image_byte(off_t pos)
{
    int fd = open(image, O_RDONLY);
    uint8_t b = 0;
    CU_ASSERT(pread(fd, &b, 1, pos) == 1);
    close(fd);
    return b;
}

static off_t image_size(void)
{
    struct stat st;
    CU_ASSERT_FATAL(stat(image, &st) == 0);
    return st.st_size;
}

/* Opens the drive and brings it up as a driver does; false when the
 * device refused FEATURES_OK. */
static bool bring_up(uint64_t features)
{
    wr(0x070, 0); /* reset */
    wr(0x070, 1);
    wr(0x070, 3);
    wr(0x024, 0);
    wr(0x020, (uint32_t)features);
    wr(0x024, 1);
    wr(0x020, (uint32_t)(features >> 32));
    wr(0x070, 3 | 8);
    if (!(rd(0x070) & 8))
        return false;
    wr(0x030, 0);
    wr(0x038, QSIZE);
    wr(0x080, DESC);
    wr(0x084, 0);
    wr(0x090, AVAIL);
    wr(0x094, 0);
    wr(0x0a0, USED);
    wr(0x0a4, 0);
    wr(0x044, 1);
    wr(0x070, 3 | 8 | 4);
    next_avail = 0;
    return true;
}

#define FEATURES (VM_VIRTIO_F_VERSION_1 | VM_VIRTIO_BLK_F_FLUSH | VM_VIRTIO_BLK_F_SEG_MAX)

static void open_drive(bool readonly)
{
    memset(ram, 0, RAM_SIZE);
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(vm_virtio_blk_open(&blk, image, readonly, &mem, err, sizeof(err)), 0);
    vm_virtio_mmio_init(&mmio, &blk.vdev);
    irq_level = false;
    irq_edges = 0;
    vm_virtio_set_irq(&blk.vdev, on_irq, NULL);
    CU_ASSERT_TRUE_FATAL(bring_up(FEATURES));
}

static void put_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    uint8_t *d = ram + DESC + 16 * i;
    memcpy(d, &addr, 8);
    memcpy(d + 8, &len, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
}

static uint16_t used_idx(void)
{
    uint16_t v;
    memcpy(&v, ram + USED + 2, 2);
    return v;
}

/* Offers head and notifies; returns whether it came back, with its len. */
static bool submit(uint16_t head, uint32_t *used_len)
{
    uint16_t before = used_idx();
    memcpy(ram + AVAIL + 4 + 2 * (next_avail % QSIZE), &head, 2);
    next_avail++;
    memcpy(ram + AVAIL + 2, &next_avail, 2);
    wr(0x050, 0);
    if (used_idx() == before)
        return false;
    uint32_t id;
    memcpy(&id, ram + USED + 4 + 8 * (before % QSIZE), 4);
    memcpy(used_len, ram + USED + 8 + 8 * (before % QSIZE), 4);
    CU_ASSERT_EQUAL(id, head);
    return true;
}

/* A three-descriptor request as Linux lays it out: header, data, status.
 * Returns the status byte, 0xff when nothing came back. */
static uint8_t request(uint32_t type, uint64_t sector, uint32_t len, bool to_guest,
                       uint32_t *used_len)
{
    memcpy(ram + HDR, &type, 4);
    memset(ram + HDR + 4, 0, 4);
    memcpy(ram + HDR + 8, &sector, 8);
    ram[STATUS] = 0xee;
    put_desc(0, HDR, 16, F_NEXT, 1);
    if (len) {
        put_desc(1, DATA, len, F_NEXT | (to_guest ? F_WRITE : 0), 2);
        put_desc(2, STATUS, 1, F_WRITE, 0);
    } else {
        put_desc(1, STATUS, 1, F_WRITE, 0);
    }
    uint32_t dummy;
    if (!submit(0, used_len ? used_len : &dummy))
        return 0xff;
    return ram[STATUS];
}

static int setup_suite(void)
{
    ram = malloc(RAM_SIZE);
    mem = (struct vm_virtq_mem){.ram = ram, .size = RAM_SIZE};
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(image, sizeof(image), "%.40s/vblkXXXXXX", dir);
    int fd = mkstemp(image);
    if (fd < 0 || !ram)
        return 1;
    close(fd);
    return 0;
}

static int teardown_suite(void)
{
    unlink(image);
    free(ram);
    return 0;
}

static void test_identification_and_config(void)
{
    make_image(image, SECTORS * 512);
    open_drive(false);
    CU_ASSERT_EQUAL(rd(0x000), 0x74726976);
    CU_ASSERT_EQUAL(rd(0x004), 2);
    CU_ASSERT_EQUAL(rd(0x008), 2);
    wr(0x014, 0);
    uint32_t lo = rd(0x010);
    wr(0x014, 1);
    uint32_t hi = rd(0x010);
    CU_ASSERT_EQUAL(hi & 1, 1); /* VERSION_1 */
    CU_ASSERT(lo & (1u << 9));  /* FLUSH */
    CU_ASSERT(lo & (1u << 28)); /* INDIRECT_DESC */
    CU_ASSERT_FALSE(lo & (1u << 5)); /* not read-only */
    wr(0x030, 0);
    CU_ASSERT_EQUAL(rd(0x034), VM_VIRTQ_MAX_SIZE);
    wr(0x030, 1);
    CU_ASSERT_EQUAL(rd(0x034), 0); /* one queue only */
    uint64_t cap = 0;
    vm_virtio_mmio_read(&mmio, 0x100, (uint8_t *)&cap, 8, NULL);
    CU_ASSERT_EQUAL(cap, SECTORS);
    CU_ASSERT_EQUAL(rd(0x100), SECTORS);
    CU_ASSERT_EQUAL(rd(0x104), 0);
    CU_ASSERT_EQUAL(rd(0x114), 512); /* blk_size */
    CU_ASSERT_EQUAL(rd(0x1fc), 0);   /* past the config space */
    uint8_t b = 0x55;
    vm_virtio_mmio_read(&mmio, 0x000, &b, 1, NULL);
    CU_ASSERT_EQUAL(b, 0); /* registers answer 32-bit reads only */
    vm_virtio_blk_close(&blk);
    char word[80];
    vm_virtio_mmio_cmdline(0xd0000000, 5, word, sizeof(word));
    CU_ASSERT_STRING_EQUAL(word, "virtio_mmio.device=512@0xd0000000:5");
}

static void test_feature_negotiation(void)
{
    make_image(image, SECTORS * 512);
    open_drive(false);
    CU_ASSERT_FALSE(bring_up(VM_VIRTIO_BLK_F_FLUSH));                    /* legacy driver */
    CU_ASSERT_FALSE(bring_up(VM_VIRTIO_F_VERSION_1 | (1ull << 0)));      /* not offered */
    CU_ASSERT_TRUE(bring_up(VM_VIRTIO_F_VERSION_1));
    CU_ASSERT_EQUAL(rd(0x070), 0xf);
    vm_virtio_blk_close(&blk);
}

static void test_read_sectors(void)
{
    make_image(image, SECTORS * 512);
    open_drive(false);
    uint32_t len = 0;
    CU_ASSERT_EQUAL(request(VM_VIRTIO_BLK_T_IN, 3, 1024, true, &len), VM_VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(len, 1025);
    CU_ASSERT_EQUAL(ram[DATA], 4);
    CU_ASSERT_EQUAL(ram[DATA + 511], 4);
    CU_ASSERT_EQUAL(ram[DATA + 512], 5);
    CU_ASSERT_EQUAL(ram[DATA + 1023], 5);
    CU_ASSERT_EQUAL(ram[DATA + 1024], 0); /* nothing past the buffer */
    /* The interrupt: raised, seen in InterruptStatus, dropped by the ACK. */
    CU_ASSERT_TRUE(irq_level);
    CU_ASSERT_EQUAL(rd(0x060), 1);
    wr(0x064, 1);
    CU_ASSERT_FALSE(irq_level);
    CU_ASSERT_EQUAL(rd(0x060), 0);
    /* The last sector reads too. */
    CU_ASSERT_EQUAL(request(VM_VIRTIO_BLK_T_IN, SECTORS - 1, 512, true, NULL),
                    VM_VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(ram[DATA], SECTORS);
    vm_virtio_blk_close(&blk);
}

static void test_write_and_flush(void)
{
    make_image(image, SECTORS * 512);
    open_drive(false);
    memset(ram + DATA, 0xa7, 1024);
    uint32_t len = 0;
    CU_ASSERT_EQUAL(request(VM_VIRTIO_BLK_T_OUT, 5, 1024, false, &len), VM_VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(len, 1);
    CU_ASSERT_EQUAL(image_byte(4 * 512 + 511), 5);
    CU_ASSERT_EQUAL(image_byte(5 * 512), 0xa7);
    CU_ASSERT_EQUAL(image_byte(6 * 512 + 511), 0xa7);
    CU_ASSERT_EQUAL(image_byte(7 * 512), 8);
    CU_ASSERT_EQUAL(blk.stats.syncs, 0); /* write-back: the flush syncs */
    CU_ASSERT_EQUAL(request(VM_VIRTIO_BLK_T_FLUSH, 0, 0, false, &len), VM_VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(blk.stats.flushes, 1);
    CU_ASSERT_EQUAL(blk.stats.syncs, 1);
    /* Read back through the device. */
    memset(ram + DATA, 0, 512);
    CU_ASSERT_EQUAL(request(VM_VIRTIO_BLK_T_IN, 6, 512, true, NULL), VM_VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(ram[DATA + 100], 0xa7);
    /* A driver without FLUSH gets every write synced before it completes. */
    CU_ASSERT_TRUE_FATAL(bring_up(VM_VIRTIO_F_VERSION_1));
    memset(ram + USED, 0, 8);
    CU_ASSERT_EQUAL(request(VM_VIRTIO_BLK_T_OUT, 8, 512, false, NULL), VM_VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(blk.stats.syncs, 2);
    vm_virtio_blk_close(&blk);
}

static void test_requests_past_the_end_touch_nothing(void)
{
    make_image(image, SECTORS * 512);
    open_drive(false);
    static const struct {
        uint32_t type;
        uint64_t sector;
        uint32_t len;
    } bad[] = {
        {VM_VIRTIO_BLK_T_IN, SECTORS, 512},
        {VM_VIRTIO_BLK_T_IN, SECTORS - 1, 1024},
        {VM_VIRTIO_BLK_T_IN, UINT64_MAX / 512 + 1, 512}, /* sector * 512 wraps */
        {VM_VIRTIO_BLK_T_IN, UINT64_MAX, 512},
        {VM_VIRTIO_BLK_T_IN, 0, 100}, /* not whole sectors */
        {VM_VIRTIO_BLK_T_OUT, SECTORS, 512},
        {VM_VIRTIO_BLK_T_OUT, SECTORS - 1, 1024},
        {VM_VIRTIO_BLK_T_OUT, UINT64_MAX / 512 + 1, 512},
        {VM_VIRTIO_BLK_T_OUT, 1, 100},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(ram + DATA, 0x3c, 2048);
        bool in = bad[i].type == VM_VIRTIO_BLK_T_IN;
        CU_ASSERT_EQUAL(request(bad[i].type, bad[i].sector, bad[i].len, in, NULL),
                        VM_VIRTIO_BLK_S_IOERR);
        CU_ASSERT_EQUAL(ram[DATA], 0x3c); /* nothing read into the guest */
    }
    CU_ASSERT_EQUAL(image_size(), SECTORS * 512);
    CU_ASSERT_EQUAL(image_byte(SECTORS * 512 - 1), SECTORS);
    CU_ASSERT_EQUAL(image_byte(512), 2);
    CU_ASSERT_EQUAL(rd(0x070) & 0x40, 0); /* an I/O error, not a broken device */
    vm_virtio_blk_close(&blk);
}

static void test_readonly_drive_refuses_writes(void)
{
    make_image(image, SECTORS * 512);
    char err[256];
    CU_ASSERT_EQUAL_FATAL(vm_virtio_blk_open(&blk, image, true, &mem, err, sizeof(err)), 0);
    vm_virtio_mmio_init(&mmio, &blk.vdev);
    wr(0x014, 0);
    CU_ASSERT(rd(0x010) & (1u << 5)); /* VIRTIO_BLK_F_RO */
    CU_ASSERT_TRUE_FATAL(bring_up(FEATURES | VM_VIRTIO_BLK_F_RO));
    memset(ram + DATA, 0x99, 512);
    CU_ASSERT_EQUAL(request(VM_VIRTIO_BLK_T_OUT, 2, 512, false, NULL), VM_VIRTIO_BLK_S_IOERR);
    CU_ASSERT_EQUAL(image_byte(2 * 512), 3);
    CU_ASSERT_EQUAL(request(VM_VIRTIO_BLK_T_IN, 2, 512, true, NULL), VM_VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(ram[DATA], 3);
    CU_ASSERT_EQUAL(request(VM_VIRTIO_BLK_T_FLUSH, 0, 0, false, NULL), VM_VIRTIO_BLK_S_OK);
    vm_virtio_blk_close(&blk);
}

static void test_get_id_is_stable(void)
{
    make_image(image, SECTORS * 512);
    open_drive(false);
    uint32_t len = 0;
    memset(ram + DATA, 0, 64);
    CU_ASSERT_EQUAL(request(VM_VIRTIO_BLK_T_GET_ID, 0, 64, true, &len), VM_VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(len, 21);
    char first[21] = {0};
    memcpy(first, ram + DATA, 20);
    CU_ASSERT_EQUAL(strncmp(first, "kvmstub-", 8), 0);
    CU_ASSERT_EQUAL(strlen(first), 20);
    CU_ASSERT_EQUAL(ram[DATA + 20], 0);
    vm_virtio_blk_close(&blk);
    open_drive(false); /* the next run */
    memset(ram + DATA, 0, 64);
    CU_ASSERT_EQUAL(request(VM_VIRTIO_BLK_T_GET_ID, 0, 64, true, NULL), VM_VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(memcmp(first, ram + DATA, 20), 0);
    /* A short buffer gets what fits. */
    memset(ram + DATA, 0, 64);
    CU_ASSERT_EQUAL(request(VM_VIRTIO_BLK_T_GET_ID, 0, 8, true, &len), VM_VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(len, 9);
    CU_ASSERT_EQUAL(ram[DATA + 8], 0);
    vm_virtio_blk_close(&blk);
    /* Another image, another serial. */
    char other[80];
    snprintf(other, sizeof(other), "%s.b", image);
    make_image(other, 512);
    char err[256];
    struct vm_virtio_blk b2;
    CU_ASSERT_EQUAL_FATAL(vm_virtio_blk_open(&b2, other, true, &mem, err, sizeof(err)), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(b2.serial, first, 20), 0);
    vm_virtio_blk_close(&b2);
    unlink(other);
}

static void test_unknown_type_and_odd_layouts(void)
{
    make_image(image, SECTORS * 512);
    open_drive(false);
    CU_ASSERT_EQUAL(request(99, 0, 512, true, NULL), VM_VIRTIO_BLK_S_UNSUPP);
    CU_ASSERT_EQUAL(blk.stats.unsupported, 1);
    /* Header, data and status in one writable-after-readable pair: the
     * header split over two readable descriptors, data and status in one
     * writable one (any layout is allowed). */
    uint32_t type = VM_VIRTIO_BLK_T_IN;
    uint64_t sector = 9;
    memcpy(ram + HDR, &type, 4);
    memset(ram + HDR + 4, 0, 4);
    memcpy(ram + HDR + 8, &sector, 8);
    put_desc(0, HDR, 7, F_NEXT, 1);
    put_desc(1, HDR + 7, 9, F_NEXT, 2);
    put_desc(2, DATA, 513, F_WRITE, 0);
    uint32_t len = 0;
    CU_ASSERT_TRUE_FATAL(submit(0, &len));
    CU_ASSERT_EQUAL(len, 513);
    CU_ASSERT_EQUAL(ram[DATA + 511], 10);
    CU_ASSERT_EQUAL(ram[DATA + 512], VM_VIRTIO_BLK_S_OK);
    /* No writable byte at all: nothing to answer in, nothing done. */
    put_desc(0, HDR, 16, F_NEXT, 1);
    put_desc(1, DATA, 512, 0, 0);
    type = VM_VIRTIO_BLK_T_OUT;
    memcpy(ram + HDR, &type, 4);
    memset(ram + DATA, 0x11, 512);
    CU_ASSERT_TRUE(submit(0, &len));
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_EQUAL(image_byte(9 * 512), 10);
    /* A header shorter than 16 bytes is no request. */
    put_desc(0, HDR, 8, F_NEXT, 1);
    put_desc(1, STATUS, 1, F_WRITE, 0);
    CU_ASSERT_TRUE(submit(0, &len));
    CU_ASSERT_EQUAL(ram[STATUS], VM_VIRTIO_BLK_S_UNSUPP);
    vm_virtio_blk_close(&blk);
}

static char logged[512];
static unsigned nlogged;

static void log_line(void *ctx, const char *fmt, ...)
{
    (void)ctx;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(logged, sizeof(logged), fmt, ap);
    va_end(ap);
    nlogged++;
}

static void test_hostile_chain_needs_reset(void)
{
    make_image(image, SECTORS * 512);
    open_drive(false);
    blk.vdev.log_fn = log_line;
    blk.vdev.name = "drive test.img";
    nlogged = 0;
    put_desc(0, HDR, 16, F_NEXT, 1);
    put_desc(1, DATA, 512, F_NEXT | F_WRITE, 0); /* loops back to 0 */
    uint32_t len;
    CU_ASSERT_FALSE(submit(0, &len));
    CU_ASSERT_EQUAL(rd(0x070) & 0x40, 0x40); /* DEVICE_NEEDS_RESET */
    /* Said once, naming the drive, so a guest that hangs on it is plain. */
    CU_ASSERT_EQUAL(nlogged, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(logged, "drive test.img: the guest's driver broke the virtio "
                                          "rules (a bad available ring or descriptor chain"));
    CU_ASSERT_PTR_NOT_NULL(strstr(logged, "DEVICE_NEEDS_RESET"));
    CU_ASSERT_EQUAL(rd(0x060) & 2, 2);       /* a config interrupt */
    CU_ASSERT_TRUE(irq_level);
    /* Nothing more is served, good requests included. */
    CU_ASSERT_EQUAL(request(VM_VIRTIO_BLK_T_IN, 0, 512, true, NULL), 0xff);
    /* A reset brings it back. */
    CU_ASSERT_TRUE_FATAL(bring_up(FEATURES));
    CU_ASSERT_FALSE(irq_level);
    memset(ram + USED, 0, 8);
    CU_ASSERT_EQUAL(request(VM_VIRTIO_BLK_T_IN, 0, 512, true, NULL), VM_VIRTIO_BLK_S_OK);
    /* A buffer outside RAM breaks it the same way, touching nothing. */
    put_desc(0, HDR, 16, F_NEXT, 1);
    put_desc(1, RAM_SIZE - 256, 512, F_NEXT | F_WRITE, 2);
    put_desc(2, STATUS, 1, F_WRITE, 0);
    CU_ASSERT_FALSE(submit(0, &len));
    CU_ASSERT_EQUAL(rd(0x070) & 0x40, 0x40);
    vm_virtio_blk_close(&blk);
}

static void test_no_service_outside_driver_ok(void)
{
    make_image(image, SECTORS * 512);
    open_drive(false);
    wr(0x070, 0); /* reset: the queue is gone */
    CU_ASSERT_EQUAL(rd(0x070), 0);
    CU_ASSERT_EQUAL(rd(0x044), 0);
    CU_ASSERT_EQUAL(request(VM_VIRTIO_BLK_T_IN, 0, 512, true, NULL), 0xff);
    /* Queue ready but DRIVER_OK not yet written. */
    wr(0x070, 1);
    wr(0x070, 3);
    wr(0x024, 1);
    wr(0x020, 1);
    wr(0x070, 0xb);
    wr(0x030, 0);
    wr(0x038, QSIZE);
    wr(0x080, DESC);
    wr(0x090, AVAIL);
    wr(0x0a0, USED);
    wr(0x044, 1);
    next_avail = 0;
    memset(ram + USED, 0, 8);
    CU_ASSERT_EQUAL(request(VM_VIRTIO_BLK_T_IN, 0, 512, true, NULL), 0xff);
    /* Placement cannot move under a ready queue. */
    wr(0x080, 0x80000);
    CU_ASSERT_EQUAL(blk.vdev.queues[0].desc, DESC);
    /* DRIVER_OK: the request offered earlier is served at the next notify. */
    wr(0x070, 0xf);
    wr(0x050, 0);
    CU_ASSERT_EQUAL(used_idx(), 1);
    CU_ASSERT_EQUAL(ram[STATUS], VM_VIRTIO_BLK_S_OK);
    /* A queue larger than offered does not start. */
    wr(0x070, 0);
    wr(0x070, 0xb - 8);
    wr(0x024, 1);
    wr(0x020, 1);
    wr(0x070, 0xb);
    wr(0x038, 512);
    wr(0x044, 1);
    CU_ASSERT_EQUAL(rd(0x044), 0);
    CU_ASSERT_EQUAL(rd(0x070) & 0x40, 0x40);
    vm_virtio_blk_close(&blk);
}

static void test_bad_files_are_refused(void)
{
    char err[256] = "";
    char path[80];
    snprintf(path, sizeof(path), "%s.missing", image);
    CU_ASSERT_EQUAL(vm_virtio_blk_open(&blk, path, false, &mem, err, sizeof(err)), -ENOENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
    CU_ASSERT_EQUAL(vm_virtio_blk_open(&blk, "/", true, &mem, err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a regular file"));
    make_image(image, 1000);
    CU_ASSERT_EQUAL(vm_virtio_blk_open(&blk, image, false, &mem, err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "1000 bytes"));
    make_image(image, 0);
    CU_ASSERT_EQUAL(vm_virtio_blk_open(&blk, image, false, &mem, err, sizeof(err)), -EINVAL);
    /* Locks: one writer alone; readers together. */
    make_image(image, SECTORS * 512);
    struct vm_virtio_blk b2;
    CU_ASSERT_EQUAL_FATAL(vm_virtio_blk_open(&blk, image, false, &mem, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(vm_virtio_blk_open(&b2, image, false, &mem, err, sizeof(err)), -EBUSY);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, image));
    CU_ASSERT_EQUAL(vm_virtio_blk_open(&b2, image, true, &mem, err, sizeof(err)), -EBUSY);
    vm_virtio_blk_close(&blk);
    CU_ASSERT_EQUAL_FATAL(vm_virtio_blk_open(&blk, image, true, &mem, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL_FATAL(vm_virtio_blk_open(&b2, image, true, &mem, err, sizeof(err)), 0);
    struct vm_virtio_blk b3;
    CU_ASSERT_EQUAL(vm_virtio_blk_open(&b3, image, false, &mem, err, sizeof(err)), -EBUSY);
    vm_virtio_blk_close(&b2);
    vm_virtio_blk_close(&blk);
}

static void test_snapshot_round_trip(void)
{
    make_image(image, SECTORS * 512);
    open_drive(false);
    CU_ASSERT_EQUAL(request(VM_VIRTIO_BLK_T_IN, 1, 512, true, NULL), VM_VIRTIO_BLK_S_OK);
    uint8_t *state;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(vm_virtio_mmio_save(&mmio, &state, &len), 0);
    CU_ASSERT_EQUAL(vm_virtio_mmio_load(&mmio, state, len, false), 0);
    /* Refused: truncated, another version, a feature never offered, a
     * ready queue whose rings leave RAM. Nothing changes. */
    uint8_t *bad = malloc(len);
    CU_ASSERT_EQUAL(vm_virtio_mmio_load(&mmio, state, len - 1, true), -EINVAL);
    memcpy(bad, state, len);
    bad[0] = 9;
    CU_ASSERT_EQUAL(vm_virtio_mmio_load(&mmio, bad, len, true), -EINVAL);
    memcpy(bad, state, len);
    bad[8] |= 1; /* feature bit 0 */
    CU_ASSERT_EQUAL(vm_virtio_mmio_load(&mmio, bad, len, true), -EINVAL);
    memcpy(bad, state, len);
    uint64_t far = RAM_SIZE;
    memcpy(bad + 16 + 8, &far, 8); /* queue 0's descriptor table */
    CU_ASSERT_EQUAL(vm_virtio_mmio_load(&mmio, bad, len, true), -EINVAL);
    CU_ASSERT_EQUAL(rd(0x070), 0xf);
    free(bad);
    /* The guest resets the device; the snapshot brings back the running
     * queue, and the next request continues where the first left off. */
    wr(0x070, 0);
    CU_ASSERT_EQUAL(rd(0x044), 0);
    CU_ASSERT_EQUAL(vm_virtio_mmio_load(&mmio, state, len, true), 0);
    CU_ASSERT_EQUAL(rd(0x070), 0xf);
    wr(0x030, 0);
    CU_ASSERT_EQUAL(rd(0x044), 1);
    uint32_t used_len = 0;
    CU_ASSERT_EQUAL(request(VM_VIRTIO_BLK_T_IN, 2, 512, true, &used_len), VM_VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(used_idx(), 2);
    CU_ASSERT_EQUAL(ram[DATA], 3);
    free(state);
    vm_virtio_blk_close(&blk);
}

/* Waits up to 5 s for the used index to reach want. */
static bool wait_used(uint16_t want)
{
    for (int i = 0; i < 5000; i++) {
        if (__atomic_load_n((uint16_t *)(ram + USED + 2), __ATOMIC_ACQUIRE) == want)
            return true;
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
    return false;
}

static void offer_read(uint64_t sector)
{
    uint32_t type = VM_VIRTIO_BLK_T_IN;
    memcpy(ram + HDR, &type, 4);
    memcpy(ram + HDR + 8, &sector, 8);
    put_desc(0, HDR, 16, F_NEXT, 1);
    put_desc(1, DATA, 512, F_NEXT | F_WRITE, 2);
    put_desc(2, STATUS, 1, F_WRITE, 0);
    uint16_t head = 0;
    memcpy(ram + AVAIL + 4 + 2 * (next_avail % QSIZE), &head, 2);
    next_avail++;
    __atomic_store_n((uint16_t *)(ram + AVAIL + 2), next_avail, __ATOMIC_RELEASE);
}

static void test_worker_serves_off_the_vcpu_thread(void)
{
    make_image(image, SECTORS * 512);
    open_drive(false);
    struct vm_virtio_worker w;
    CU_ASSERT_EQUAL_FATAL(vm_virtio_worker_start(&w, &blk.vdev), 0);
    /* A notification only wakes the worker; it answers soon after. */
    offer_read(4);
    wr(0x050, 0);
    CU_ASSERT_TRUE(wait_used(1));
    CU_ASSERT_EQUAL(ram[DATA], 5);
    /* Paused: nothing is served, the kick is kept, and served on resume. */
    vm_virtio_worker_pause(&w);
    offer_read(6);
    wr(0x050, 0);
    nanosleep(&(struct timespec){.tv_nsec = 50000000}, NULL);
    CU_ASSERT_EQUAL(used_idx(), 1);
    vm_virtio_worker_resume(&w);
    CU_ASSERT_TRUE(wait_used(2));
    CU_ASSERT_EQUAL(ram[DATA], 7);
    /* KVM's ioeventfd writes the counter itself, without the MMIO handler. */
    offer_read(8);
    uint64_t one = 1;
    CU_ASSERT_EQUAL(write(vm_virtio_worker_eventfd(&w), &one, 8), 8);
    CU_ASSERT_TRUE(wait_used(3));
    CU_ASSERT_EQUAL(ram[DATA], 9);
    /* A reset while the worker runs: nothing is served afterwards. */
    wr(0x070, 0);
    offer_read(10);
    CU_ASSERT_EQUAL(write(vm_virtio_worker_eventfd(&w), &one, 8), 8);
    nanosleep(&(struct timespec){.tv_nsec = 50000000}, NULL);
    CU_ASSERT_EQUAL(used_idx(), 3);
    vm_virtio_worker_stop(&w);
    vm_virtio_blk_close(&blk);
}

/* Requests racing resets: the worker serves what it finds while the
 * driver tears the device down and brings it up again, many times. */
static void test_resets_race_requests(void)
{
    make_image(image, SECTORS * 512);
    open_drive(false);
    struct vm_virtio_worker w;
    CU_ASSERT_EQUAL_FATAL(vm_virtio_worker_start(&w, &blk.vdev), 0);
    memset(ram + DATA, 0x5a, 512);
    for (int round = 0; round < 300; round++) {
        CU_ASSERT_TRUE_FATAL(bring_up(FEATURES));
        __atomic_store_n((uint16_t *)(ram + USED + 2), 0, __ATOMIC_RELEASE);
        uint32_t type = round & 1 ? VM_VIRTIO_BLK_T_OUT : VM_VIRTIO_BLK_T_IN;
        uint64_t sector = (uint64_t)round % (SECTORS + 2); /* some past the end */
        memcpy(ram + HDR, &type, 4);
        memcpy(ram + HDR + 8, &sector, 8);
        put_desc(0, HDR, 16, F_NEXT, 1);
        put_desc(1, DATA, 512, F_NEXT | (type == VM_VIRTIO_BLK_T_IN ? F_WRITE : 0), 2);
        put_desc(2, STATUS, 1, F_WRITE, 0);
        for (unsigned k = 0; k < QSIZE; k++)
            memset(ram + AVAIL + 4 + 2 * k, 0, 2);
        next_avail = (uint16_t)(1 + round % QSIZE);
        __atomic_store_n((uint16_t *)(ram + AVAIL + 2), next_avail, __ATOMIC_RELEASE);
        wr(0x050, 0);
        if (round % 3)
            wr(0x070, 0); /* reset at once, often before the worker ran */
    }
    /* Afterwards the device still works. */
    CU_ASSERT_TRUE_FATAL(bring_up(FEATURES));
    __atomic_store_n((uint16_t *)(ram + USED + 2), 0, __ATOMIC_RELEASE);
    offer_read(3);
    wr(0x050, 0);
    CU_ASSERT_TRUE(wait_used(1));
    CU_ASSERT_EQUAL(ram[STATUS], VM_VIRTIO_BLK_S_OK);
    vm_virtio_worker_stop(&w);
    CU_ASSERT_EQUAL(image_size(), SECTORS * 512);
    vm_virtio_blk_close(&blk);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("vm_virtio_blk", setup_suite, teardown_suite);
    CU_add_test(s, "MMIO identification, features and config space",
                test_identification_and_config);
    CU_add_test(s, "FEATURES_OK only for a modern driver and offered features",
                test_feature_negotiation);
    CU_add_test(s, "reads land in guest RAM; interrupt raised and acknowledged", test_read_sectors);
    CU_add_test(s, "writes land in the image; flush completes", test_write_and_flush);
    CU_add_test(s, "requests past the end or not whole sectors: IOERR, nothing touched",
                test_requests_past_the_end_touch_nothing);
    CU_add_test(s, "a read-only drive refuses writes with IOERR", test_readonly_drive_refuses_writes);
    CU_add_test(s, "GET_ID gives a serial stable across opens", test_get_id_is_stable);
    CU_add_test(s, "unknown types, split headers, chains with no status byte",
                test_unknown_type_and_odd_layouts);
    CU_add_test(s, "a hostile chain sets NEEDS_RESET; a reset recovers",
                test_hostile_chain_needs_reset);
    CU_add_test(s, "nothing is served before DRIVER_OK or after a reset",
                test_no_service_outside_driver_ok);
    CU_add_test(s, "a worker thread serves requests; pause holds them; reset stops them",
                test_worker_serves_off_the_vcpu_thread);
    CU_add_test(s, "requests racing resets under the worker", test_resets_race_requests);
    CU_add_test(s, "snapshot state: saved, checked, restored mid-stream", test_snapshot_round_trip);
    CU_add_test(s, "missing, non-regular, oddly sized and locked images are refused",
                test_bad_files_are_refused);
}

int main(void)
{
    return test_main("test_vm_virtio_blk", register_suites, false);
}
