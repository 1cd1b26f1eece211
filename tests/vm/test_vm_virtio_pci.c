/* PCI bus 0 and a virtio-blk drive behind the modern virtio-pci transport,
 * probed and driven as Linux does it (arch/x86/pci/direct.c's checks, BAR
 * sizing, the capability walk of virtio_pci_modern, INTx, then MSI-X as
 * drivers/pci/msi programs it), over a fake guest RAM and a temporary
 * image. No KVM needed. */
#include "testmain.h"
#include "vm/pci.h"
#include "vm/virtio_blk.h"
#include "vm/virtio_pci.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RAM_SIZE 0x100000u
#define WINDOW 0xe0000000u
#define WINDOW_LEN 0x100000u
#define DESC 0x1000u
#define AVAIL 0x2000u
#define USED 0x3000u
#define HDR 0x4000u
#define STATUS 0x4100u
#define DATA 0x10000u
#define QSIZE 8u

static uint8_t *ram;
static struct vm_virtq_mem mem;
static char image[64];
static struct vm_pci pci;
static struct vm_virtio_blk blk;
static struct vm_virtio_pci vpci;
static bool intx[VM_PCI_SLOTS];
static struct {
    unsigned n, vector;
    uint64_t address;
    uint32_t data;
} msg;
static uint64_t doorbell = 1; /* 1: never told */

static void on_msi(void *ctx, unsigned vector, uint64_t address, uint32_t data)
{
    (void)ctx;
    msg.n++;
    msg.vector = vector;
    msg.address = address;
    msg.data = data;
}

static void on_doorbell(void *ctx, uint64_t gpa)
{
    (void)ctx;
    doorbell = gpa;
}

static void on_intx(void *ctx, unsigned slot, bool level)
{
    (void)ctx;
    intx[slot] = level;
}

static void outl(unsigned port, uint32_t v)
{
    vm_pci_config_write(&pci, port - 0xcf8, (const uint8_t *)&v, 4, NULL);
}

static uint32_t inl(unsigned port)
{
    uint32_t v;
    vm_pci_config_read(&pci, port - 0xcf8, (uint8_t *)&v, 4, NULL);
    return v;
}

static uint32_t cfg_read(unsigned bus, unsigned dev, unsigned fn, unsigned reg)
{
    outl(0xcf8, 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (reg & 0xfc));
    return inl(0xcfc);
}

static void cfg_write(unsigned dev, unsigned reg, uint32_t v)
{
    outl(0xcf8, 0x80000000u | dev << 11 | (reg & 0xfc));
    outl(0xcfc, v);
}

static uint64_t bar_rd(uint64_t off, unsigned size)
{
    uint64_t v = 0;
    vm_pci_window_read(&pci, vm_pci_bar0(&vpci.pdev) - WINDOW + off, (uint8_t *)&v, size, NULL);
    return v;
}

static void bar_wr(uint64_t off, uint64_t v, unsigned size)
{
    vm_pci_window_write(&pci, vm_pci_bar0(&vpci.pdev) - WINDOW + off, (const uint8_t *)&v, size,
                        NULL);
}

static int setup_suite(void)
{
    ram = calloc(1, RAM_SIZE);
    mem = (struct vm_virtq_mem){.ram = ram, .size = RAM_SIZE};
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(image, sizeof(image), "%.40s/vpciXXXXXX", dir);
    int fd = mkstemp(image);
    if (fd < 0 || !ram)
        return 1;
    uint8_t sector[512];
    for (int k = 0; k < 16; k++) {
        memset(sector, k + 1, sizeof(sector));
        if (pwrite(fd, sector, 512, k * 512) != 512)
            return 1;
    }
    close(fd);
    char err[256];
    if (vm_pci_init(&pci, WINDOW, WINDOW_LEN) ||
        vm_virtio_blk_open(&blk, image, false, &mem, err, sizeof(err)) ||
        vm_virtio_pci_init(&vpci, &blk.vdev, 0x010000) ||
        vm_pci_add(&pci, &vpci.pdev, VM_VIRTIO_PCI_BAR_SIZE))
        return 1;
    vm_pci_set_intx(&pci, on_intx, NULL);
    vm_virtio_pci_set_msi(&vpci, on_msi, NULL);
    vm_virtio_pci_set_doorbell(&vpci, on_doorbell, NULL);
    return 0;
}

static int teardown_suite(void)
{
    vm_virtio_blk_close(&blk);
    vm_pci_destroy(&pci);
    unlink(image);
    free(ram);
    return 0;
}

static void test_linux_finds_the_bus(void)
{
    /* pci_check_type1: a byte to 0xcfb must not latch; the dword reads back. */
    uint8_t b = 0x01;
    vm_pci_config_write(&pci, 3, &b, 1, NULL);
    outl(0xcf8, 0x80000000u);
    CU_ASSERT_EQUAL(inl(0xcf8), 0x80000000u);
    /* pci_sanity_check: a host bridge on bus 0. */
    CU_ASSERT_EQUAL(cfg_read(0, 0, 0, 0x08) >> 8, 0x060000);
    CU_ASSERT_EQUAL(cfg_read(0, 0, 0, 0x0c) & 0x00ff0000u, 0); /* header type 0 */
    /* The drive in slot 1; nothing elsewhere. */
    CU_ASSERT_EQUAL(cfg_read(0, 1, 0, 0x00), 0x10421af4u);
    CU_ASSERT_EQUAL(cfg_read(0, 1, 0, 0x08), 0x01000001u); /* class 01.00.00, revision 1 */
    CU_ASSERT_EQUAL(cfg_read(0, 1, 0, 0x2c), 0x00021af4u);
    CU_ASSERT_EQUAL(cfg_read(0, 1, 0, 0x3c) >> 8 & 0xff, 1); /* INTA */
    CU_ASSERT_EQUAL(cfg_read(0, 2, 0, 0x00), 0xffffffffu);
    CU_ASSERT_EQUAL(cfg_read(0, 1, 1, 0x00), 0xffffffffu); /* function 1 */
    CU_ASSERT_EQUAL(cfg_read(1, 1, 0, 0x00), 0xffffffffu); /* bus 1 */
    outl(0xcf8, 0x00000000u | 1 << 11); /* enable bit clear */
    CU_ASSERT_EQUAL(inl(0xcfc), 0xffffffffu);
    /* Byte and word reads within the data port. */
    outl(0xcf8, 0x80000000u | 1 << 11);
    uint16_t w = 0;
    vm_pci_config_read(&pci, 6, (uint8_t *)&w, 2, NULL);
    CU_ASSERT_EQUAL(w, 0x1042);
}

static void test_bar_sizing_and_readonly_fields(void)
{
    uint32_t bar = cfg_read(0, 1, 0, 0x10);
    CU_ASSERT_EQUAL(bar, WINDOW); /* placed as firmware would */
    cfg_write(1, 0x10, 0xffffffffu);
    CU_ASSERT_EQUAL(cfg_read(0, 1, 0, 0x10), (uint32_t)~(VM_VIRTIO_PCI_BAR_SIZE - 1));
    cfg_write(1, 0x10, bar);
    CU_ASSERT_EQUAL(cfg_read(0, 1, 0, 0x10), bar);
    cfg_write(1, 0x00, 0x12345678u); /* ids do not change */
    CU_ASSERT_EQUAL(cfg_read(0, 1, 0, 0x00), 0x10421af4u);
    cfg_write(1, 0x3c, 0x0000000bu); /* interrupt line is the OS's scratch */
    CU_ASSERT_EQUAL(cfg_read(0, 1, 0, 0x3c) & 0xffff, 0x010b);
}

/* Walks the capability list as virtio_pci_modern does. */
static void test_capabilities(void)
{
    CU_ASSERT(cfg_read(0, 1, 0, 0x04) >> 16 & 0x10); /* capability list */
    unsigned found = 0, guard = 0, msix = 0;
    for (unsigned p = cfg_read(0, 1, 0, 0x34) & 0xff; p && guard < 48; guard++) {
        uint32_t head = cfg_read(0, 1, 0, p);
        if ((head & 0xff) == 0x11) {
            /* MSI-X: a vector for config changes and one for the queue,
             * table and pending bits in BAR0 (BIR 0), off at power-on. */
            CU_ASSERT_EQUAL(head >> 16, 0x0001);
            CU_ASSERT_EQUAL(cfg_read(0, 1, 0, p + 4), 0x4000);
            CU_ASSERT_EQUAL(cfg_read(0, 1, 0, p + 8), 0x5000);
            msix++;
            p = head >> 8 & 0xff;
            continue;
        }
        CU_ASSERT_EQUAL(head & 0xff, 0x09);
        unsigned type = head >> 24, bar = cfg_read(0, 1, 0, p + 4) & 0xff;
        uint32_t off = cfg_read(0, 1, 0, p + 8), len = cfg_read(0, 1, 0, p + 12);
        CU_ASSERT_EQUAL(bar, 0);
        CU_ASSERT(off + len <= VM_VIRTIO_PCI_BAR_SIZE);
        if (type == 1)
            CU_ASSERT(len >= 0x38);
        if (type == 2)
            CU_ASSERT_EQUAL(cfg_read(0, 1, 0, p + 16), 4); /* notify_off_multiplier */
        if (type == 4)
            CU_ASSERT(len >= 8); /* capacity at least */
        found |= 1u << type;
        p = head >> 8 & 0xff;
    }
    CU_ASSERT_EQUAL(found, 0x1e); /* common, notify, ISR, device */
    CU_ASSERT_EQUAL(msix, 1);
}

static void put_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    uint8_t *d = ram + DESC + 16 * i;
    memcpy(d, &addr, 8);
    memcpy(d + 8, &len, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
}

/* One read of sector into DATA, in avail slot idx - 1, notified. */
static void one_read(unsigned notify_off, uint16_t idx, uint64_t sector)
{
    uint32_t type = VM_VIRTIO_BLK_T_IN;
    memcpy(ram + HDR, &type, 4);
    memcpy(ram + HDR + 8, &sector, 8);
    put_desc(0, HDR, 16, 1, 1);
    put_desc(1, DATA, 512, 3, 2);
    put_desc(2, STATUS, 1, 2, 0);
    uint16_t head = 0;
    memcpy(ram + AVAIL + 4 + 2 * ((idx - 1) % QSIZE), &head, 2);
    memcpy(ram + AVAIL + 2, &idx, 2);
    ram[STATUS] = 0xee;
    bar_wr(0x3000 + 4 * notify_off, 0, 2);
}

static void test_read_through_pci_with_intx(void)
{
    /* Memory decoding off: the BAR answers nothing. */
    CU_ASSERT_EQUAL(bar_rd(0x12, 2), 0xffff);
    cfg_write(1, 0x04, 0x0006); /* memory, bus master */
    CU_ASSERT_EQUAL(bar_rd(0x12, 2), 1); /* num_queues */
    CU_ASSERT_EQUAL(bar_rd(0x10, 2), 0xffff); /* no MSI-X vector */
    bar_wr(0x14, 0, 1);
    bar_wr(0x14, 3, 1);
    bar_wr(0x00, 1, 4);
    CU_ASSERT_EQUAL(bar_rd(0x04, 4), 1); /* VERSION_1 in the high word */
    bar_wr(0x08, 1, 4);
    bar_wr(0x0c, 1, 4);
    bar_wr(0x14, 0xb, 1);
    CU_ASSERT_EQUAL(bar_rd(0x14, 1), 0xb);
    bar_wr(0x16, 0, 2);
    CU_ASSERT_EQUAL(bar_rd(0x18, 2), VM_VIRTQ_MAX_SIZE);
    bar_wr(0x18, QSIZE, 2);
    bar_wr(0x20, DESC, 4); /* 64-bit fields in two halves */
    bar_wr(0x24, 0, 4);
    bar_wr(0x28, AVAIL, 8);
    bar_wr(0x30, USED, 4);
    bar_wr(0x34, 0, 4);
    unsigned notify_off = (unsigned)bar_rd(0x1e, 2);
    bar_wr(0x1c, 1, 2);
    CU_ASSERT_EQUAL(bar_rd(0x1c, 2), 1);
    bar_wr(0x14, 0xf, 1);
    CU_ASSERT_EQUAL(bar_rd(0x2000, 4), 16); /* capacity in sectors */
    one_read(notify_off, 1, 5);
    CU_ASSERT_EQUAL(ram[STATUS], VM_VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(ram[DATA + 100], 6);
    /* INTx up, shown in the status register; reading the ISR drops it. */
    CU_ASSERT_TRUE(intx[1]);
    CU_ASSERT(cfg_read(0, 1, 0, 0x04) >> 16 & 0x08);
    CU_ASSERT_EQUAL(bar_rd(0x1000, 1), 1);
    CU_ASSERT_FALSE(intx[1]);
    CU_ASSERT_EQUAL(bar_rd(0x1000, 1), 0);
    /* INTx disabled in the command register: the level stays inside. */
    cfg_write(1, 0x04, 0x0406);
    one_read(notify_off, 2, 5);
    CU_ASSERT_FALSE(intx[1]);
    CU_ASSERT(cfg_read(0, 1, 0, 0x04) >> 16 & 0x08);
    cfg_write(1, 0x04, 0x0006);
    CU_ASSERT_TRUE(intx[1]);
    CU_ASSERT_EQUAL(bar_rd(0x1000, 1), 1);
    CU_ASSERT_FALSE(intx[1]);
    /* A moved BAR decodes at its new place only. */
    cfg_write(1, 0x10, WINDOW + 0x8000);
    CU_ASSERT_EQUAL(vm_pci_bar0(&vpci.pdev), WINDOW + 0x8000);
    uint16_t nq = 0;
    vm_pci_window_read(&pci, 0x8012, (uint8_t *)&nq, 2, NULL);
    CU_ASSERT_EQUAL(nq, 1);
    vm_pci_window_read(&pci, 0x0012, (uint8_t *)&nq, 2, NULL);
    CU_ASSERT_EQUAL(nq, 0xffff);
    /* Reset through the status byte: the queue is gone. */
    bar_wr(0x14, 0, 1);
    CU_ASSERT_EQUAL(bar_rd(0x1c, 2), 0);
    cfg_write(1, 0x10, WINDOW);
}

static unsigned msix_cap(void)
{
    for (unsigned p = cfg_read(0, 1, 0, 0x34) & 0xff, guard = 0; p && guard < 48; guard++) {
        uint32_t head = cfg_read(0, 1, 0, p);
        if ((head & 0xff) == 0x11)
            return p;
        p = head >> 8 & 0xff;
    }
    return 0;
}

/* The driver's set-up up to DRIVER_OK with queue 0 at DESC/AVAIL/USED,
 * as virtio_pci_modern does it; returns the queue's notify offset. */
static unsigned driver_setup(uint16_t config_vector, uint16_t queue_vector)
{
    bar_wr(0x14, 0, 1);
    bar_wr(0x14, 3, 1);
    bar_wr(0x08, 1, 4);
    bar_wr(0x0c, 1, 4);
    bar_wr(0x14, 0xb, 1);
    bar_wr(0x10, config_vector, 2);
    bar_wr(0x16, 0, 2);
    bar_wr(0x18, QSIZE, 2);
    bar_wr(0x20, DESC, 8);
    bar_wr(0x28, AVAIL, 8);
    bar_wr(0x30, USED, 8);
    bar_wr(0x1a, queue_vector, 2);
    bar_wr(0x1c, 1, 2);
    bar_wr(0x14, 0xf, 1);
    memset(ram + AVAIL, 0, 0x100);
    memset(ram + USED, 0, 0x100);
    return (unsigned)bar_rd(0x1e, 2);
}

static void test_msix_messages_masking_and_pending(void)
{
    cfg_write(1, 0x04, 0x0006);
    unsigned cap = msix_cap();
    CU_ASSERT_FATAL(cap != 0);
    /* Vectors past the table read back as NO_VECTOR, which tells the
     * driver the mapping failed. */
    driver_setup(0, 5);
    CU_ASSERT_EQUAL(bar_rd(0x10, 2), 0);
    CU_ASSERT_EQUAL(bar_rd(0x1a, 2), 0xffff);
    /* As msix_capability_init: enable with everything masked, program
     * the entries, unmask the function. */
    cfg_write(1, cap, 0xc0000000u | 0x11);
    unsigned notify_off = driver_setup(0, 1);
    CU_ASSERT_EQUAL(bar_rd(0x1a, 2), 1);
    bar_wr(0x4000 + 16, 0xfee00000u, 4);
    bar_wr(0x4000 + 16 + 4, 0, 4);
    bar_wr(0x4000 + 16 + 8, 0x4041, 4);
    CU_ASSERT_EQUAL(bar_rd(0x4000 + 16 + 12, 4), 1); /* entries start masked */
    bar_wr(0x4000 + 16 + 12, 0, 4);
    /* A completion while the function is masked: pending, no message. */
    msg.n = 0;
    one_read(notify_off, 1, 2);
    CU_ASSERT_EQUAL(ram[STATUS], VM_VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(msg.n, 0);
    CU_ASSERT_EQUAL(bar_rd(0x5000, 8), 2);
    cfg_write(1, cap, 0x80000000u | 0x11);
    CU_ASSERT_EQUAL(msg.n, 1);
    CU_ASSERT_EQUAL(msg.vector, 1);
    CU_ASSERT_EQUAL(msg.address, 0xfee00000u);
    CU_ASSERT_EQUAL(msg.data, 0x4041);
    CU_ASSERT_EQUAL(bar_rd(0x5000, 8), 0);
    /* Unmasked: the next completion is a message at once; INTx and the
     * ISR stay quiet (MSI-X replaces them). */
    one_read(notify_off, 2, 2);
    CU_ASSERT_EQUAL(msg.n, 2);
    CU_ASSERT_FALSE(intx[1]);
    CU_ASSERT_EQUAL(bar_rd(0x1000, 1), 0);
    /* The vector masked: pending; unmasking the entry sends it. */
    bar_wr(0x4000 + 16 + 12, 1, 4);
    one_read(notify_off, 3, 2);
    CU_ASSERT_EQUAL(msg.n, 2);
    CU_ASSERT_EQUAL(bar_rd(0x5000, 4), 2);
    bar_wr(0x4000 + 16 + 12, 0, 4);
    CU_ASSERT_EQUAL(msg.n, 3);
    /* A device reset unassigns the vectors; a queue without a vector
     * gets no interrupt at all. */
    notify_off = driver_setup(0xffff, 0xffff);
    one_read(notify_off, 1, 2);
    CU_ASSERT_EQUAL(ram[STATUS], VM_VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(msg.n, 3);
    CU_ASSERT_FALSE(intx[1]);
    /* MSI-X off again: back to INTx. */
    cfg_write(1, cap, 0x11);
    notify_off = driver_setup(0xffff, 0xffff);
    one_read(notify_off, 1, 2);
    CU_ASSERT_TRUE(intx[1]);
    CU_ASSERT_EQUAL(bar_rd(0x1000, 1), 1);
    CU_ASSERT_FALSE(intx[1]);
    bar_wr(0x14, 0, 1);
}

/* Where KVM_IOEVENTFD must listen follows the BAR and the memory bit. */
static void test_doorbell_follows_the_bar(void)
{
    cfg_write(1, 0x04, 0x0000);
    CU_ASSERT_EQUAL(doorbell, 0);
    cfg_write(1, 0x04, 0x0002);
    CU_ASSERT_EQUAL(doorbell, WINDOW + 0x3000);
    cfg_write(1, 0x10, WINDOW + 0x10000);
    CU_ASSERT_EQUAL(doorbell, WINDOW + 0x13000);
    cfg_write(1, 0x10, WINDOW);
    CU_ASSERT_EQUAL(doorbell, WINDOW + 0x3000);
    /* A board reset puts the header back as placed: decoding off. */
    vm_pci_reset(&pci);
    CU_ASSERT_EQUAL(doorbell, 0);
    CU_ASSERT_EQUAL(cfg_read(0, 1, 0, 0x04) & 0xffff, 0);
    CU_ASSERT_EQUAL(cfg_read(0, 1, 0, 0x10), WINDOW);
}

static void test_snapshot_of_bus_and_transport(void)
{
    cfg_write(1, 0x04, 0x0006);
    cfg_write(1, 0x3c, 0x0000000au);
    bar_wr(0x16, 0, 2);
    uint8_t *bus_state, *dev_state;
    size_t bus_len, dev_len;
    CU_ASSERT_EQUAL_FATAL(vm_pci_save(&pci, &bus_state, &bus_len), 0);
    CU_ASSERT_EQUAL_FATAL(vm_virtio_pci_save(&vpci, &dev_state, &dev_len), 0);
    cfg_write(1, 0x04, 0);
    cfg_write(1, 0x3c, 0);
    cfg_write(1, 0x10, WINDOW + 0x4000);
    CU_ASSERT_EQUAL(vm_pci_load(&pci, bus_state, bus_len, true), 0);
    CU_ASSERT_EQUAL(vm_virtio_pci_load(&vpci, dev_state, dev_len, true), 0);
    CU_ASSERT_EQUAL(cfg_read(0, 1, 0, 0x04) & 0xffff, 0x0006);
    CU_ASSERT_EQUAL(cfg_read(0, 1, 0, 0x10), WINDOW);
    CU_ASSERT_EQUAL(cfg_read(0, 1, 0, 0x3c) & 0xff, 0x0a);
    /* Another device's header (its ids differ) is refused. */
    bus_state[9 + 256 + 2] ^= 1;
    CU_ASSERT_EQUAL(vm_pci_load(&pci, bus_state, bus_len, true), -EINVAL);
    CU_ASSERT_EQUAL(vm_pci_load(&pci, bus_state, bus_len - 1, true), -EINVAL);
    CU_ASSERT_EQUAL(cfg_read(0, 1, 0, 0x00), 0x10421af4u);
    free(bus_state);
    free(dev_state);
}

/* The MSI-X table, vectors and pending bits come back with a load, and a
 * pending bit past the table is refused. */
static void test_snapshot_keeps_msix(void)
{
    cfg_write(1, 0x04, 0x0006);
    unsigned cap = msix_cap();
    cfg_write(1, cap, 0xc0000000u | 0x11);
    driver_setup(0, 1);
    bar_wr(0x4000 + 16, 0xfee01000u, 4);
    bar_wr(0x4000 + 16 + 8, 0x4051, 4);
    bar_wr(0x4000 + 16 + 12, 0, 4);
    uint8_t *bus_state, *dev_state;
    size_t bus_len, dev_len;
    CU_ASSERT_EQUAL_FATAL(vm_pci_save(&pci, &bus_state, &bus_len), 0);
    CU_ASSERT_EQUAL_FATAL(vm_virtio_pci_save(&vpci, &dev_state, &dev_len), 0);
    bar_wr(0x14, 0, 1);
    bar_wr(0x4000 + 16, 0, 4);
    cfg_write(1, cap, 0x11);
    CU_ASSERT_EQUAL(vm_pci_load(&pci, bus_state, bus_len, true), 0);
    CU_ASSERT_EQUAL(vm_virtio_pci_load(&vpci, dev_state, dev_len, true), 0);
    CU_ASSERT_EQUAL(cfg_read(0, 1, 0, cap) >> 16, 0xc001);
    CU_ASSERT_EQUAL(bar_rd(0x4000 + 16, 4), 0xfee01000u);
    CU_ASSERT_EQUAL(bar_rd(0x10, 2), 0);
    bar_wr(0x16, 0, 2);
    CU_ASSERT_EQUAL(bar_rd(0x1a, 2), 1);
    dev_state[dev_len - 4] = 0x80; /* pending bit 7 of a 2-vector table */
    CU_ASSERT_EQUAL(vm_virtio_pci_load(&vpci, dev_state, dev_len, false), -EINVAL);
    free(bus_state);
    free(dev_state);
    bar_wr(0x14, 0, 1);
    cfg_write(1, cap, 0x11);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("vm_virtio_pci", setup_suite, teardown_suite);
    CU_add_test(s, "Linux's type-1 probe finds a host bridge and the drive",
                test_linux_finds_the_bus);
    CU_add_test(s, "BAR sizing; ids read-only; interrupt line writable",
                test_bar_sizing_and_readonly_fields);
    CU_add_test(s, "virtio capabilities: common, notify, ISR, device in BAR0", test_capabilities);
    CU_add_test(s, "a read through virtio-pci; INTx raised, gated and cleared",
                test_read_through_pci_with_intx);
    CU_add_test(s, "MSI-X: a message per completion on the queue's vector; masked ones pend "
                   "and go out on unmask; NO_VECTOR for vectors past the table",
                test_msix_messages_masking_and_pending);
    CU_add_test(s, "the notification area's address follows BAR0 and the memory bit",
                test_doorbell_follows_the_bar);
    CU_add_test(s, "snapshot state of the bus and the transport", test_snapshot_of_bus_and_transport);
    CU_add_test(s, "snapshot state keeps the MSI-X table and vectors", test_snapshot_keeps_msix);
}

int main(void)
{
    return test_main("test_vm_virtio_pci", register_suites, false);
}
