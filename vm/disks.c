/* The pc board's disks: virtio-blk over PCI or MMIO, one worker each. */
#include "disks.h"

#include "internal.h"
#include "fail.h"
#include "pci.h"
#include "virtio_blk.h"
#include "virtio_mmio.h"
#include "virtio_pci.h"
#include "virtio_worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define PCI_CLASS_STORAGE_SCSI 0x010000u
#define CMDLINE_WORD 64u

/* ISA lines no pc-board device uses (COM2-4, LPT, the IDE pair and the
 * free ones): already in the MP table as edge-triggered ISA IRQs, which
 * is what a command-line virtio-mmio device gets from Linux. */
static const unsigned mmio_irqs[VM_MAX_DRIVES] = {5, 9, 10, 11, 3, 7, 6, 15};

static const char *const state_names[VM_MAX_DRIVES] = {
    "virtio-blk0", "virtio-blk1", "virtio-blk2", "virtio-blk3",
    "virtio-blk4", "virtio-blk5", "virtio-blk6", "virtio-blk7",
};

struct disk {
    struct vm_disks *owner;
    struct vm_virtio_blk blk;
    bool opened;
    bool pci;
    struct vm_virtio_pci vpci;
    struct vm_virtio_mmio mmio;
    struct vm_virtio_worker worker;
    bool worker_started;
    unsigned line; /* IOAPIC pin (PCI) or ISA IRQ (MMIO) */
    bool mmio_level;
};

struct vm_disks {
    struct vm *vm;
    struct vm_pci pci;
    bool pci_ready;
    unsigned ndisks;
    struct disk disks[VM_MAX_DRIVES];
    char words[VM_MAX_DRIVES * CMDLINE_WORD];
};

static void irq_line(struct vm *vm, unsigned line, bool level)
{
    struct kvm_irq_level l = {.irq = line, .level = level ? 1 : 0};
    ioctl(vm->vm_fd, KVM_IRQ_LINE, &l);
}

/* Under the PCI bus lock, from whichever thread changed the level. */
static void pci_intx(void *ctx, unsigned slot, bool level)
{
    struct vm_disks *d = ctx;
    for (unsigned i = 0; i < d->ndisks; i++)
        if (d->disks[i].pci && d->disks[i].vpci.pdev.slot == slot)
            irq_line(d->vm, d->disks[i].line, level);
}

/* Under the device's lock: an edge for each rise of the interrupt status,
 * as the ISA lines of this board report (vm/board_pc.c). */
static void mmio_irq(void *ctx, bool level)
{
    struct disk *k = ctx;
    if (level && !k->mmio_level) {
        irq_line(k->owner->vm, k->line, true);
        irq_line(k->owner->vm, k->line, false);
    }
    k->mmio_level = level;
}

static bool is_pci(const struct vm_drive *dr)
{
    return dr->transport != VM_DRIVE_MMIO;
}

int vm_disks_check(enum vm_board_kind board, const struct vm_drive *drives, unsigned ndrives,
                   char *err, size_t errlen)
{
    if (!ndrives)
        return 0;
    if (board != VM_BOARD_PC)
        return vm_fail(err, errlen, -EINVAL,
                       "--drive needs --machine pc: the bare board has no PCI bus, interrupt "
                       "controller or virtio-mmio");
    if (ndrives > VM_MAX_DRIVES)
        return vm_fail(err, errlen, -EINVAL, "--drive given %u times: at most %u drives",
                       ndrives, VM_MAX_DRIVES);
    /* All held open at once, so that one file given twice meets its own
     * lock as it would in vm_create. */
    struct vm_virtio_blk *b = calloc(ndrives, sizeof(*b));
    if (!b)
        return vm_fail(err, errlen, -ENOMEM, "out of memory");
    const struct vm_virtq_mem mem = {0};
    unsigned opened = 0;
    int r = 0;
    for (; opened < ndrives; opened++)
        if ((r = vm_virtio_blk_open(&b[opened], drives[opened].path, drives[opened].readonly,
                                    &mem, err, errlen)))
            break;
    while (opened--)
        vm_virtio_blk_close(&b[opened]);
    free(b);
    return r;
}

static int add_disk(struct vm_disks *d, const struct vm_drive *dr, unsigned npci, unsigned nmmio,
                    char *err, size_t errlen)
{
    struct vm *vm = d->vm;
    struct disk *k = &d->disks[d->ndisks];
    k->owner = d;
    const struct vm_virtq_mem mem = {.ram = vm->mem.host, .size = vm->mem.size};
    int r = vm_virtio_blk_open(&k->blk, dr->path, dr->readonly, &mem, err, errlen);
    if (r)
        return r;
    k->opened = true;
    d->ndisks++;
    k->pci = is_pci(dr);
    const char *name = state_names[d->ndisks - 1];
    if (k->pci) {
        k->line = VM_DISKS_FIRST_PIN + npci;
        if ((r = vm_virtio_pci_init(&k->vpci, &k->blk.vdev, PCI_CLASS_STORAGE_SCSI)) ||
            (r = vm_pci_add(&d->pci, &k->vpci.pdev, VM_VIRTIO_PCI_BAR_SIZE)) ||
            (r = vm_bus_add_state(&vm->bus, &(struct vm_bus_state){.name = name,
                                                                   .save = vm_virtio_pci_save,
                                                                   .load = vm_virtio_pci_load,
                                                                   .dev = &k->vpci})))
            return vm_fail(err, errlen, r, "drive %s: cannot put it on the PCI bus: %s",
                           dr->path, strerror(-r));
    } else {
        k->line = mmio_irqs[nmmio];
        uint64_t base = VM_DISKS_MMIO_BASE + (uint64_t)nmmio * 0x1000;
        vm_virtio_mmio_init(&k->mmio, &k->blk.vdev);
        vm_virtio_set_irq(&k->blk.vdev, mmio_irq, k);
        if ((r = vm_virtio_mmio_attach(&vm->bus, &k->mmio, base, name)))
            return vm_fail(err, errlen, r, "drive %s: cannot map its virtio-mmio window: %s",
                           dr->path, strerror(-r));
        size_t used = strlen(d->words);
        vm_virtio_mmio_cmdline(base, k->line, d->words + used + 1, sizeof(d->words) - used - 1);
        d->words[used] = ' ';
    }
    if ((r = vm_virtio_worker_start(&k->worker, &k->blk.vdev)))
        return vm_fail(err, errlen, r, "drive %s: cannot start its thread: %s", dr->path,
                       strerror(-r));
    k->worker_started = true;
    return 0;
}

int vm_disks_create(struct vm *vm, const struct vm_drive *drives, unsigned ndrives,
                    struct vm_disks **out, char *err, size_t errlen)
{
    *out = NULL;
    /* Only the pc board calls this. */
    int r = vm_disks_check(VM_BOARD_PC, drives, ndrives, err, errlen);
    if (r || !ndrives)
        return r;
    struct vm_disks *d = calloc(1, sizeof(*d));
    if (!d)
        return vm_fail(err, errlen, -ENOMEM, "out of memory");
    d->vm = vm;
    unsigned npci = 0, nmmio = 0;
    for (unsigned i = 0; i < ndrives; i++)
        npci += is_pci(&drives[i]);
    if (npci) {
        if ((r = vm_pci_init(&d->pci, VM_DISKS_PCI_WINDOW, VM_DISKS_PCI_WINDOW_LEN))) {
            free(d);
            return vm_fail(err, errlen, r, "cannot set up the PCI bus: %s", strerror(-r));
        }
        d->pci_ready = true;
        vm_pci_set_intx(&d->pci, pci_intx, d);
        if ((r = vm_pci_attach(&d->pci, &vm->bus))) {
            vm_disks_destroy(d);
            return vm_fail(err, errlen, r, "cannot put the PCI bus on the board: %s",
                           strerror(-r));
        }
    }
    /* PCI drives first: Linux finds them (vda, ...) before command-line
     * virtio-mmio devices. */
    npci = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned i = 0; i < ndrives; i++) {
            if (is_pci(&drives[i]) != (pass == 0))
                continue;
            if ((r = add_disk(d, &drives[i], npci, nmmio, err, errlen))) {
                vm_disks_destroy(d);
                return r;
            }
            if (pass == 0)
                npci++;
            else
                nmmio++;
        }
    }
    *out = d;
    return 0;
}

unsigned vm_disks_pci_irqs(const struct vm_disks *d, struct vm_mptable_pci_irq *out,
                           unsigned max)
{
    unsigned n = 0;
    for (unsigned i = 0; d && i < d->ndisks && n < max; i++)
        if (d->disks[i].pci)
            out[n++] = (struct vm_mptable_pci_irq){.slot = d->disks[i].vpci.pdev.slot,
                                                   .pin = d->disks[i].line};
    return n;
}

const char *vm_disks_cmdline(const struct vm_disks *d)
{
    return d ? d->words : "";
}

bool vm_disks_have_pci(const struct vm_disks *d)
{
    return d && d->pci_ready;
}

void vm_disks_pause(struct vm_disks *d)
{
    for (unsigned i = 0; d && i < d->ndisks; i++)
        if (d->disks[i].worker_started)
            vm_virtio_worker_pause(&d->disks[i].worker);
}

void vm_disks_resume(struct vm_disks *d)
{
    for (unsigned i = 0; d && i < d->ndisks; i++)
        if (d->disks[i].worker_started)
            vm_virtio_worker_resume(&d->disks[i].worker);
}

void vm_disks_reset(struct vm_disks *d)
{
    vm_disks_pause(d);
    for (unsigned i = 0; d && i < d->ndisks; i++) {
        struct vm_virtio *v = &d->disks[i].blk.vdev;
        pthread_mutex_lock(&v->lock);
        vm_virtio_reset(v);
        pthread_mutex_unlock(&v->lock);
        d->disks[i].mmio_level = false;
    }
    vm_disks_resume(d);
}

void vm_disks_destroy(struct vm_disks *d)
{
    if (!d)
        return;
    for (unsigned i = 0; i < d->ndisks; i++) {
        struct disk *k = &d->disks[i];
        if (k->worker_started)
            vm_virtio_worker_stop(&k->worker);
        if (k->opened)
            vm_virtio_blk_close(&k->blk);
    }
    if (d->pci_ready)
        vm_pci_destroy(&d->pci);
    free(d);
}
