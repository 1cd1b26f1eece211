/* fuzz_virtio_regs: libFuzzer harness for the virtio transports' register
 * files as a hostile guest reaches them: a virtio-blk drive behind
 * virtio-mmio and another behind virtio-pci on a PCI bus, over one guest
 * RAM and a 4 KiB in-memory image each.
 *
 * The input is a list of 12-byte operations (kind, offset, size, value):
 * MMIO register reads and writes, 0xcf8-0xcff port accesses, accesses to
 * the PCI window, and snapshot round trips. The guest RAM is the input
 * itself, repeated, so the rings a sequence enables hold fuzzed
 * descriptors. Invariants: the images keep their size; every state the
 * devices save, they accept again. Any broken invariant aborts. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm/pci.h"
#include "vm/virtio_blk.h"
#include "vm/virtio_mmio.h"
#include "vm/virtio_pci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM_SIZE 0x4000u
#define IMAGE_SIZE 4096u
#define WINDOW 0xe0000000u
#define OP_BYTES 12u
#define MAX_OPS 512u

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #x);                                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static uint8_t ram[RAM_SIZE];

static int image(void)
{
    int fd = memfd_create("fuzz_virtio_regs", MFD_CLOEXEC);
    CHECK(fd >= 0 && ftruncate(fd, IMAGE_SIZE) == 0);
    return fd;
}

static void check_size(int fd)
{
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size == IMAGE_SIZE);
}

typedef int (*save_fn)(void *, uint8_t **, size_t *);
typedef int (*load_fn)(void *, const uint8_t *, size_t, bool);

static void round_trip(void *dev, save_fn save, load_fn load)
{
    uint8_t *buf;
    size_t len;
    CHECK(save(dev, &buf, &len) == 0);
    CHECK(load(dev, buf, len, false) == 0);
    CHECK(load(dev, buf, len, true) == 0);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd_mmio = -1, fd_pci = -1;
    if (fd_mmio < 0) {
        fd_mmio = image();
        fd_pci = image();
    }
    if (size == 0)
        return 0;
    for (size_t i = 0; i < RAM_SIZE; i++)
        ram[i] = data[i % size];
    struct vm_virtq_mem mem = {.ram = ram, .size = RAM_SIZE};
    char err[256];
    struct vm_virtio_blk b1, b2;
    CHECK(vm_virtio_blk_init_fd(&b1, fd_mmio, false, "mmio", &mem, err, sizeof(err)) == 0);
    CHECK(vm_virtio_blk_init_fd(&b2, fd_pci, false, "pci", &mem, err, sizeof(err)) == 0);
    struct vm_virtio_mmio m;
    vm_virtio_mmio_init(&m, &b1.vdev);
    struct vm_pci pci;
    struct vm_virtio_pci vp;
    CHECK(vm_pci_init(&pci, WINDOW, 0x10000) == 0);
    CHECK(vm_virtio_pci_init(&vp, &b2.vdev, 0x010000) == 0);
    CHECK(vm_pci_add(&pci, &vp.pdev, VM_VIRTIO_PCI_BAR_SIZE) == 0);

    size_t nops = size / OP_BYTES < MAX_OPS ? size / OP_BYTES : MAX_OPS;
    for (size_t i = 0; i < nops; i++) {
        const uint8_t *op = data + i * OP_BYTES;
        uint16_t off;
        memcpy(&off, op + 1, 2);
        unsigned sz = 1u << (op[3] & 3);
        uint8_t val[8];
        memcpy(val, op + 4, 8);
        uint8_t out[8];
        switch (op[0] % 7) {
        case 0:
            vm_virtio_mmio_read(&m, off % 0x240, out, sz, NULL);
            break;
        case 1:
            vm_virtio_mmio_write(&m, off % 0x240, val, sz, NULL);
            break;
        case 2:
            vm_pci_config_read(&pci, off % 8, out, sz, NULL);
            break;
        case 3:
            vm_pci_config_write(&pci, off % 8, val, sz, NULL);
            break;
        case 4:
            vm_pci_window_read(&pci, off, out, sz, NULL);
            break;
        case 5:
            vm_pci_window_write(&pci, off, val, sz, NULL);
            break;
        default:
            round_trip(&m, vm_virtio_mmio_save, vm_virtio_mmio_load);
            round_trip(&vp, vm_virtio_pci_save, vm_virtio_pci_load);
            round_trip(&pci, vm_pci_save, vm_pci_load);
            break;
        }
    }
    vm_virtio_blk_close(&b1);
    vm_virtio_blk_close(&b2);
    vm_pci_destroy(&pci);
    check_size(fd_mmio);
    check_size(fd_pci);
    return 0;
}
