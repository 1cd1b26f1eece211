/* The pc board's disks: virtio-blk over PCI or MMIO, one worker each. */
#include "disks.h"

#include "internal.h"
#include "fail.h"
#include "msi_routes.h"
#include "pci.h"
#include "virtio_blk.h"
#include "virtio_mmio.h"
#include "virtio_pci.h"
#include "virtio_worker.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

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
    uint64_t mmio_base;
    char path[256]; /* for `monitor info disks` (cut if longer) */
    /* Where KVM_IOEVENTFD listens for this drive's notifications (0: not
     * registered, every notification is an exit); under the device's lock. */
    uint64_t doorbell;
    int irqfd;          /* MMIO: the ISA line's irqfd, or -1 */
    uint64_t line_raises; /* INTx rises or MMIO edges, under the device's lock */
    int msi_errors;     /* messages KVM refused, under the device's lock */
};

struct vm_disks {
    struct vm *vm;
    struct vm_pci pci;
    bool pci_ready;
    bool ioeventfd, irqfd; /* what KVM offers */
    struct vm_msi_routes *msi;
    unsigned ndisks;
    struct disk disks[VM_MAX_DRIVES];
    char words[VM_MAX_DRIVES * CMDLINE_WORD];
};

static void irq_line(struct vm *vm, unsigned line, bool level)
{
    struct kvm_irq_level l = {.irq = line, .level = level ? 1 : 0};
    ioctl(vm->vm_fd, KVM_IRQ_LINE, &l);
}

/* Under the PCI bus lock, from whichever thread changed the level. INTx
 * stays on KVM_IRQ_LINE: a level needs lowering when the driver reads the
 * ISR, which an irqfd (without resampling through another eventfd and
 * thread) cannot do; drivers that enable MSI-X never use it. */
static void pci_intx(void *ctx, unsigned slot, bool level)
{
    struct vm_disks *d = ctx;
    for (unsigned i = 0; i < d->ndisks; i++) {
        if (d->disks[i].pci && d->disks[i].vpci.pdev.slot == slot) {
            d->disks[i].line_raises += level;
            irq_line(d->vm, d->disks[i].line, level);
        }
    }
}

/* Under the device's lock: an edge for each rise of the interrupt status,
 * as the ISA lines of this board report (vm/board_pc.c). An irqfd on a
 * line routed to the irqchips makes exactly that edge (KVM raises and
 * lowers the GSI), without an ioctl. */
static void mmio_irq(void *ctx, bool level)
{
    struct disk *k = ctx;
    if (level && !k->mmio_level) {
        uint64_t one = 1;
        k->line_raises++;
        if (k->irqfd < 0 || write(k->irqfd, &one, sizeof(one)) < 0) {
            irq_line(k->owner->vm, k->line, true);
            irq_line(k->owner->vm, k->line, false);
        }
    }
    k->mmio_level = level;
}

static int ioeventfd(struct disk *k, uint64_t gpa, unsigned len, bool assign)
{
    struct kvm_ioeventfd io = {.addr = gpa, .len = len,
                               .fd = vm_virtio_worker_eventfd(&k->worker),
                               .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN};
    return ioctl(k->owner->vm->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

/* Queue q's notification register and the width drivers write it with. */
static uint64_t doorbell_at(const struct disk *k, uint64_t area, unsigned q, unsigned *len)
{
    if (!k->pci) {
        *len = 4;
        return area; /* one QueueNotify register, the queue as its value */
    }
    *len = 2;
    return area + (uint64_t)VM_VIRTIO_PCI_NOTIFY_MULT * q;
}

static void doorbells_off(struct disk *k)
{
    unsigned n = k->pci ? k->blk.vdev.nqueues : 1, len = 0;
    for (unsigned q = 0; k->doorbell && q < n; q++)
        ioeventfd(k, doorbell_at(k, k->doorbell, q, &len), len, false);
    k->doorbell = 0;
}

/* Under the device's lock (vm/virtio_pci.c calls it as the BAR moves).
 * Any width or address KVM does not match still exits and is served by
 * the transport's handler, so a failure here costs speed only. */
static void doorbells_at(void *ctx, uint64_t area)
{
    struct disk *k = ctx;
    if (area == k->doorbell)
        return;
    doorbells_off(k);
    if (!area || !k->owner->ioeventfd)
        return;
    unsigned n = k->pci ? k->blk.vdev.nqueues : 1, len = 0;
    for (unsigned q = 0; q < n; q++) {
        if (ioeventfd(k, doorbell_at(k, area, q, &len), len, true)) {
            while (q--)
                ioeventfd(k, doorbell_at(k, area, q, &len), len, false);
            return;
        }
    }
    k->doorbell = area;
}

/* Under the device's lock, from the worker or a vCPU thread. */
static void msi_send(void *ctx, unsigned vector, uint64_t address, uint32_t data)
{
    struct disk *k = ctx;
    unsigned source = (unsigned)(k - k->owner->disks) * VM_MSIX_MAX_VECTORS + vector;
    if (vm_msi_routes_send(k->owner->msi, source, address, data))
        k->msi_errors++;
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
    k->irqfd = -1;
    snprintf(k->path, sizeof(k->path), "%s", dr->path);
    k->blk.vdev.log_fn = vm->log;
    k->blk.vdev.log_ctx = vm->log_ctx;
    k->blk.vdev.name = k->path;
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
        k->mmio_base = base;
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
    if (k->pci) {
        vm_virtio_pci_set_msi(&k->vpci, msi_send, k);
        vm_virtio_pci_set_doorbell(&k->vpci, doorbells_at, k);
    } else {
        pthread_mutex_lock(&k->blk.vdev.lock);
        doorbells_at(k, k->mmio_base + VM_VIRTIO_MMIO_NOTIFY);
        pthread_mutex_unlock(&k->blk.vdev.lock);
        if (d->irqfd) {
            int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            struct kvm_irqfd fd = {.fd = (uint32_t)efd, .gsi = k->line};
            if (efd >= 0 && ioctl(vm->vm_fd, KVM_IRQFD, &fd) == 0)
                k->irqfd = efd;
            else if (efd >= 0)
                close(efd);
        }
    }
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
    d->ioeventfd = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IOEVENTFD) > 0;
    d->irqfd = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD) > 0;
    unsigned npci = 0, nmmio = 0;
    for (unsigned i = 0; i < ndrives; i++)
        npci += is_pci(&drives[i]);
    if (npci && (r = vm_msi_routes_create(vm->kvm_fd, vm->vm_fd,
                                          VM_MAX_DRIVES * VM_MSIX_MAX_VECTORS, &d->msi))) {
        free(d);
        return vm_fail(err, errlen, r,
                       "this host's KVM delivers no MSI (neither irqfd with GSI routing nor "
                       "KVM_SIGNAL_MSI), which disks over PCI need: give the drives "
                       "transport=mmio");
    }
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
        if (d->disks[i].pci)
            vm_virtio_pci_reset(&d->disks[i].vpci);
        pthread_mutex_unlock(&v->lock);
        d->disks[i].mmio_level = false;
    }
    /* The headers too (MSI-X off, decoding off): the next kernel finds the
     * bus as the first one did. */
    if (d && d->pci_ready)
        vm_pci_reset(&d->pci);
    vm_disks_resume(d);
}

void vm_disks_destroy(struct vm_disks *d)
{
    if (!d)
        return;
    for (unsigned i = 0; i < d->ndisks; i++) {
        struct disk *k = &d->disks[i];
        if (k->worker_started) {
            pthread_mutex_lock(&k->blk.vdev.lock);
            doorbells_off(k);
            pthread_mutex_unlock(&k->blk.vdev.lock);
            vm_virtio_worker_stop(&k->worker);
        }
        if (k->irqfd >= 0) {
            struct kvm_irqfd fd = {.fd = (uint32_t)k->irqfd, .gsi = k->line,
                                   .flags = KVM_IRQFD_FLAG_DEASSIGN};
            ioctl(d->vm->vm_fd, KVM_IRQFD, &fd);
            close(k->irqfd);
        }
        if (k->opened)
            vm_virtio_blk_close(&k->blk);
    }
    if (d->pci_ready)
        vm_pci_destroy(&d->pci);
    vm_msi_routes_destroy(d->msi);
    free(d);
}

static int say(char *buf, size_t len, size_t *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int say(char *buf, size_t len, size_t *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(*at < len ? buf + *at : NULL, *at < len ? len - *at : 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        *at += (size_t)n;
    return n;
}

int vm_disks_describe(struct vm_disks *d, char *buf, size_t len)
{
    size_t at = 0;
    if (len)
        buf[0] = 0;
    if (!d || !d->ndisks) {
        say(buf, len, &at, "no drives (--drive FILE adds one)\n");
        return (int)at;
    }
    for (unsigned i = 0; i < d->ndisks; i++) {
        struct disk *k = &d->disks[i];
        struct vm_virtio *v = &k->blk.vdev;
        uint64_t notes, kicks;
        vm_virtio_worker_counts(&k->worker, &notes, &kicks);
        pthread_mutex_lock(&v->lock);
        struct vm_virtio_blk_stats st = k->blk.stats;
        uint64_t doorbell = k->doorbell, raises = k->line_raises;
        int msi_errors = k->msi_errors;
        bool msix = k->pci && vm_msix_enabled(&k->vpci.msix);
        uint64_t sent = k->pci ? k->vpci.msix.sent : 0;
        unsigned nvec = k->pci ? k->vpci.msix.nvec : 0;
        pthread_mutex_unlock(&v->lock);
        /* Which of them is vda is the kernel's choice (its probe order). */
        say(buf, len, &at, "drive %s: %s, %llu sectors, virtio-blk over ", k->path,
            k->blk.readonly ? "read-only" : "read-write",
            (unsigned long long)(k->blk.bytes / VM_VIRTIO_BLK_SECTOR));
        if (k->pci)
            say(buf, len, &at, "PCI 00:%02x.0, BAR0 at 0x%x\n", k->vpci.pdev.slot,
                vm_pci_bar0(&k->vpci.pdev));
        else
            say(buf, len, &at, "MMIO at 0x%llx\n", (unsigned long long)k->mmio_base);
        /* The worker's count includes the kicks it was handed after exits. */
        uint64_t by_kvm = notes > kicks ? notes - kicks : 0;
        if (doorbell)
            say(buf, len, &at, "  notifications: KVM_IOEVENTFD at 0x%llx: %llu in KVM, %llu after "
                               "an exit\n",
                (unsigned long long)doorbell, (unsigned long long)by_kvm,
                (unsigned long long)kicks);
        else
            say(buf, len, &at, "  notifications: exits to kvmstub (%s): %llu\n",
                !d->ioeventfd ? "KVM has no KVM_CAP_IOEVENTFD"
                : k->pci      ? "the BAR does not decode now"
                              : "KVM_IOEVENTFD refused",
                (unsigned long long)kicks);
        if (msix)
            say(buf, len, &at, "  interrupts: MSI-X, %u vectors, through %s: %llu messages%s\n",
                nvec, vm_msi_routes_path(d->msi), (unsigned long long)sent,
                msi_errors ? " (KVM refused some)" : "");
        else if (k->pci)
            say(buf, len, &at, "  interrupts: INTx (MSI-X not enabled by the driver), IOAPIC pin "
                               "%u through KVM_IRQ_LINE: raised %llu times\n",
                k->line, (unsigned long long)raises);
        else
            say(buf, len, &at, "  interrupts: ISA IRQ %u, an edge each, through %s: %llu\n",
                k->line, k->irqfd >= 0 ? "irqfd" : "KVM_IRQ_LINE", (unsigned long long)raises);
        say(buf, len, &at, "  requests: %llu reads, %llu writes, %llu flushes, %llu errors\n",
            (unsigned long long)st.reads, (unsigned long long)st.writes,
            (unsigned long long)st.flushes, (unsigned long long)st.errors);
    }
    return (int)at;
}
