/* The "pc" board: what a hobby kernel that programs the PIC, the PIT and
 * the APIC expects, and what a Linux kernel needs to boot to a shell on a
 * serial console, with no ACPI (and no PCI unless --drive puts disks on
 * it, vm/disks.h):
 *
 *  - KVM's in-kernel interrupt controllers (two 8259s, an IOAPIC, a LAPIC
 *    per vCPU) and its PIT, so timers and interrupts never leave the host
 *    kernel, and hlt waits there for the next interrupt;
 *  - per vCPU: CPUID from KVM_GET_SUPPORTED_CPUID with the hypervisor bit
 *    and the APIC id (vm/cpuid.h), the boot MSRs, LINT0 ExtINT and LINT1
 *    NMI in the LAPIC;
 *  - ports: a 16550A at COM1 on IRQ 4 (vm/serial.h), the i8042 (0x60,
 *    0x64; vm/i8042.h), the CMOS clock (0x70, 0x71; vm/cmos.h), the
 *    debug-exit port (0xf4); everything else reads as all ones, ignores
 *    writes and is logged under --trace. Expect 0x80 (io_delay) only until
 *    Linux's kvm_guest_init switches io_delay off, and 0xcf8/0xcfc without
 *    pci=off;
 *  - an MP table (vm/mptable.h) telling the guest its CPUs and that ISA
 *    IRQ i is IOAPIC pin i.
 *
 * Sources checked (facts, not code): Linux Documentation/virt/kvm/api.rst
 * and arch/x86/boot.rst, drivers/tty/serial/8250/8250_port.c; kvmtool
 * x86/kvm.c; firecracker arch/x86_64/{vm,regs,interrupts,msr,mptable}.rs.
 *
 * The order KVM wants (api.rst): KVM_SET_TSS_ADDR and the identity map
 * before the first vCPU (vm/machine.c does both, at 0xfffbd000 and
 * 0xfffbc000: RAM ends below 3 GiB, so no memslot comes near); then
 * KVM_CREATE_IRQCHIP, which also fails once a vCPU exists; then
 * KVM_CREATE_PIT2, which needs the irqchip first. Per vCPU, CPUID comes
 * before anything else (KVM decides which MSRs are valid from it, and
 * freezes it at the first KVM_RUN), then the MSRs, then the LAPIC. The
 * vCPU id is the index, and KVM's LAPIC takes its APIC id from the vCPU
 * id, which is what CPUID and the MP table say. APs stay in
 * KVM_MP_STATE_UNINITIALIZED until the BSP's INIT/SIPI.
 *
 * Interrupt lines go to KVM_IRQ_LINE (any thread may call it). GSIs 0-15
 * reach both the PIC (pin gsi % 8) and IOAPIC pin gsi by KVM's default
 * routing; both are edge-triggered for ISA pins, and the devices report a
 * low-high pulse where a real part would make a new edge, so nothing is
 * lost. */
#include "internal.h"
#include "fail.h"

#include "bzimage.h"
#include "cmos.h"
#include "cpuid.h"
#include "debug_exit.h"
#include "disks.h"
#include "i8042.h"
#include "image.h"
#include "mptable.h"
#include "serial.h"
#include "snap_vm.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

/* Where the MP table goes for images other than a bzImage (whose e820 map
 * reserves 0x9fc00 up to 1 MiB for it): the top of the BIOS area, which
 * Linux and hobby kernels scan too and the multiboot memory map reports
 * reserved. */
#define MPTABLE_HIGH 0xf0000u
#define MPTABLE_HIGH_ROOM 0x10000u
#define MPTABLE_LOW_ROOM 0x400u

#define LAPIC_LVT0 0x350u
#define LAPIC_LVT1 0x360u
#define APIC_MODE_NMI 4u
#define APIC_MODE_EXTINT 7u
#define LEAF1_ECX_TSC_DEADLINE (1u << 24)

/* The boot MSRs (firecracker's list): the syscall and sysenter MSRs
 * cleared, the TSC at 0, fast strings on, MTRRs on with write-back as the
 * default type. Also cleared at a reset: kvm-clock, async page faults,
 * steal time and PV EOI, which the guest points at its own memory and
 * which KVM would otherwise keep writing after the next boot. */
static const struct {
    uint32_t index;
    uint64_t value;
    bool at_reset_only;
} boot_msrs[] = {
    {0x174, 0, false},        /* IA32_SYSENTER_CS */
    {0x175, 0, false},        /* IA32_SYSENTER_ESP */
    {0x176, 0, false},        /* IA32_SYSENTER_EIP */
    {0xc0000081, 0, false},   /* STAR */
    {0xc0000082, 0, false},   /* LSTAR */
    {0xc0000083, 0, false},   /* CSTAR */
    {0xc0000084, 0, false},   /* SYSCALL_MASK */
    {0xc0000102, 0, false},   /* KERNEL_GS_BASE */
    {0x10, 0, false},         /* IA32_TSC */
    {0x1a0, 1, false},        /* IA32_MISC_ENABLE: fast strings */
    {0x2ff, (1u << 11) | 6, false}, /* MTRRdefType: enabled, write-back */
    {0x12, 0, true},          /* MSR_KVM_SYSTEM_TIME */
    {0x4b564d01, 0, true},    /* MSR_KVM_SYSTEM_TIME_NEW */
    {0x4b564d02, 0, true},    /* MSR_KVM_ASYNC_PF_EN */
    {0x4b564d03, 0, true},    /* MSR_KVM_STEAL_TIME */
    {0x4b564d04, 0, true},    /* MSR_KVM_PV_EOI_EN */
};
#define NBOOT_MSRS (sizeof(boot_msrs) / sizeof(boot_msrs[0]))

/* What a vCPU goes back to at a reset (its vm_cpu's board_data). */
struct pc_cpu {
    struct kvm_sregs sregs;
    struct kvm_lapic_state lapic;
};

struct pc {
    struct vm *vm;
    struct vm_serial uart;
    struct vm_i8042 kbc;
    struct vm_cmos cmos;
    struct kvm_cpuid2 *supported;
    atomic_bool reset_requested;
    /* KVM's coalesced PIO zone on the transmit register, registered while
     * the UART needs no exit per byte (see sync_thr_zone). */
    pthread_mutex_t zone_lock;
    bool thr_zone;
    bool zone_usable;
    /* Power-on state of the interrupt controllers and the PIT. */
    struct kvm_irqchip chips[3];
    struct kvm_pit_state2 pit;
    struct vm_disks *disks; /* --drive: NULL without */
};

static int pc_set_irq(struct vm *vm, unsigned line, bool level)
{
    struct kvm_irq_level l = {.irq = line, .level = level ? 1 : 0};
    return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

/* ---- the UART ---- */

/* Keeps the coalesced zone on THR (0x3f8, one byte) only while
 * vm_serial_thr_coalescable(): a guest that wants the THRE interrupt (the
 * tty layer, IER.THRI set) must see it after every byte, so each write has
 * to exit; one that writes with IER.THRI clear (Linux's console, polled
 * drivers) gets its bytes batched by KVM. The state changes only on IER
 * writes and resets, so it is checked after those. Writes already in a
 * vCPU's ring when THRI turns on are replayed by its run loop, in order,
 * before its next exit is handled. */
static void sync_thr_zone(void *ctx)
{
    struct pc *pc = ctx;
    if (!pc->zone_usable)
        return;
    pthread_mutex_lock(&pc->zone_lock);
    bool want = vm_serial_thr_coalescable(&pc->uart);
    if (want != pc->thr_zone) {
        struct kvm_coalesced_mmio_zone z = {.addr = VM_SERIAL_BASE, .size = 1, .pio = 1};
        if (ioctl(pc->vm->vm_fd,
                  want ? KVM_REGISTER_COALESCED_MMIO : KVM_UNREGISTER_COALESCED_MMIO, &z) == 0)
            pc->thr_zone = want;
    }
    pthread_mutex_unlock(&pc->zone_lock);
}

static void uart_irq(void *ctx, bool level)
{
    struct pc *pc = ctx;
    pc_set_irq(pc->vm, VM_SERIAL_IRQ, level);
}

/* ---- the i8042 and the CMOS clock ---- */

static void kbc_irq(void *ctx, unsigned irq, bool level)
{
    struct pc *pc = ctx;
    pc_set_irq(pc->vm, irq, level);
}

static void kbc_reset(void *ctx)
{
    struct pc *pc = ctx;
    atomic_store(&pc->reset_requested, true);
}

static uint8_t kbc_in(struct pc *pc, uint16_t port)
{
    return vm_i8042_in(&pc->kbc, port);
}

static int kbc_read_data(void *dev, uint64_t offset, uint8_t *data, unsigned size,
                         struct vm_event *ev)
{
    (void)offset;
    (void)size;
    (void)ev;
    data[0] = kbc_in(dev, VM_I8042_DATA);
    return 0;
}

static int kbc_read_status(void *dev, uint64_t offset, uint8_t *data, unsigned size,
                           struct vm_event *ev)
{
    (void)offset;
    (void)size;
    (void)ev;
    data[0] = kbc_in(dev, VM_I8042_CMD);
    return 0;
}

/* A reset request (Linux's reboot=k writes 0xfe to port 0x64) ends the
 * machine, as a PC under qemu -no-reboot: there is no firmware to reboot
 * into, and someone who debugs a kernel wants to hear of it. */
static int kbc_out(struct pc *pc, uint16_t port, uint8_t value, struct vm_event *ev)
{
    vm_i8042_out(&pc->kbc, port, value);
    if (!atomic_exchange(&pc->reset_requested, false))
        return 0;
    ev->type = VM_EVENT_RESET;
    ev->u.exit.status = 0;
    return 1;
}

static int kbc_write_data(void *dev, uint64_t offset, const uint8_t *data, unsigned size,
                          struct vm_event *ev)
{
    (void)offset;
    (void)size;
    return kbc_out(dev, VM_I8042_DATA, data[0], ev);
}

static int kbc_write_cmd(void *dev, uint64_t offset, const uint8_t *data, unsigned size,
                         struct vm_event *ev)
{
    (void)offset;
    (void)size;
    return kbc_out(dev, VM_I8042_CMD, data[0], ev);
}

/* Without a clock at 0x70/0x71 every read is 0xff: Linux before 5.18 spins
 * forever on the update-in-progress bit in mach_get_cmos_time(), 6.x
 * prints a WARN from mc146818_get_time(). */
static int cmos_read(void *dev, uint64_t offset, uint8_t *data, unsigned size, struct vm_event *ev)
{
    (void)size;
    (void)ev;
    struct pc *pc = dev;
    data[0] = vm_cmos_in(&pc->cmos, (uint16_t)(VM_CMOS_INDEX + offset));
    return 0;
}

static int cmos_write(void *dev, uint64_t offset, const uint8_t *data, unsigned size,
                      struct vm_event *ev)
{
    (void)size;
    (void)ev;
    struct pc *pc = dev;
    vm_cmos_out(&pc->cmos, (uint16_t)(VM_CMOS_INDEX + offset), data[0]);
    return 0;
}

/* ---- the board ---- */

static int pc_create(struct vm *vm, char *err, size_t errlen)
{
    struct pc *pc = calloc(1, sizeof(*pc));
    if (!pc)
        return -ENOMEM;
    vm->board_data = pc;
    pc->vm = vm;
    atomic_init(&pc->reset_requested, false);
    pthread_mutex_init(&pc->zone_lock, NULL);
    vm_serial_init(&pc->uart);
    vm_i8042_init(&pc->kbc);
    vm_cmos_init(&pc->cmos, NULL);

    if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
        return vm_fail(err, errlen, -errno,
                    "KVM_CREATE_IRQCHIP failed: %s: the pc board needs KVM's in-kernel interrupt "
                    "controllers; use --machine bare",
                    strerror(errno));
    /* The dummy speaker makes KVM answer port 0x61 itself, so Linux's PIT
     * calibration, which polls it, never exits to userspace. */
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
    if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
        return vm_fail(err, errlen, -errno, "KVM_CREATE_PIT2 failed: %s", strerror(errno));
    for (unsigned i = 0; i < 3; i++) {
        pc->chips[i].chip_id = i; /* KVM_IRQCHIP_PIC_MASTER, _SLAVE, _IOAPIC */
        if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &pc->chips[i]) < 0)
            return vm_fail(err, errlen, -errno, "KVM_GET_IRQCHIP failed: %s", strerror(errno));
    }
    if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pc->pit) < 0)
        return vm_fail(err, errlen, -errno, "KVM_GET_PIT2 failed: %s", strerror(errno));
    int r = vm_cpuid_supported(vm->kvm_fd, &pc->supported);
    if (r)
        return vm_fail(err, errlen, r, "KVM_GET_SUPPORTED_CPUID failed: %s", strerror(-r));
    /* KVM emulates the TSC-deadline timer in its LAPIC but leaves it out of
     * the supported CPUID (api.rst): it is ours to offer, as QEMU does.
     * With it and a known TSC rate Linux needs no LAPIC timer calibration,
     * which otherwise counts 100 PIT ticks and hangs wherever they stop. */
    struct kvm_cpuid_entry2 *leaf1 = vm_cpuid_find(pc->supported, 1, 0);
    if (leaf1 && ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
        leaf1->ecx |= LEAF1_ECX_TSC_DEADLINE;

    vm_serial_set_irq(&pc->uart, uart_irq, pc);
    vm_i8042_set_irq(&pc->kbc, kbc_irq, pc);
    vm_i8042_set_reset(&pc->kbc, kbc_reset, pc);
    const struct vm_bus_range ranges[] = {
        {.space = VM_BUS_PIO, .base = VM_I8042_DATA, .len = 1, .name = "i8042",
         .read = kbc_read_data, .write = kbc_write_data, .dev = pc},
        {.space = VM_BUS_PIO, .base = VM_I8042_CMD, .len = 1, .name = "i8042",
         .read = kbc_read_status, .write = kbc_write_cmd, .dev = pc},
        {.space = VM_BUS_PIO, .base = VM_CMOS_INDEX, .len = 2, .name = "cmos", .read = cmos_read,
         .write = cmos_write, .dev = pc, .bytewise = true},
    };
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
        if ((r = vm_bus_add(&vm->bus, &ranges[i])))
            return r;
    if ((r = vm_debug_exit_attach(&vm->bus, VM_PORT_DEBUG_EXIT)))
        return r;
    /* Snapshots carry the UART's state; the i8042's and the clock's are
     * not saved (a snapshot of a pc guest restarts them from power-on).
     * The transmit register's zone comes and goes with IER (sync_thr_zone). */
    vm->console = &pc->uart;
    if ((r = vm_serial_attach(&pc->uart, &vm->bus, 0, sync_thr_zone, pc)))
        return r;
    pc->zone_usable = vm->caps.coalesced_pio && vm->coalesced_page;
    sync_thr_zone(pc);
    if ((r = vm_disks_create(vm, vm->drives, vm->ndrives, &pc->disks, err, errlen)))
        return r;
    vm->linux_pci = vm_disks_have_pci(pc->disks);
    vm->linux_words = vm_disks_cmdline(pc->disks);
    return 0;
}

static int set_msrs(struct vm *vm, struct vm_cpu *cpu, bool reset)
{
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e[NBOOT_MSRS];
    } m;
    memset(&m, 0, sizeof(m));
    for (size_t i = 0; i < NBOOT_MSRS; i++) {
        if (boot_msrs[i].at_reset_only && !reset)
            continue;
        m.e[m.hdr.nmsrs].index = boot_msrs[i].index;
        m.e[m.hdr.nmsrs].data = boot_msrs[i].value;
        m.hdr.nmsrs++;
    }
    /* KVM stops at the first MSR it refuses: note it, go on with the rest
     * (a host without, say, the PV MSRs still boots a kernel). */
    uint32_t done = 0;
    while (done < m.hdr.nmsrs) {
        struct {
            struct kvm_msrs hdr;
            struct kvm_msr_entry e[NBOOT_MSRS];
        } rest;
        memset(&rest, 0, sizeof(rest));
        rest.hdr.nmsrs = m.hdr.nmsrs - done;
        memcpy(rest.e, &m.e[done], rest.hdr.nmsrs * sizeof(rest.e[0]));
        int n = ioctl(cpu->fd, KVM_SET_MSRS, &rest);
        if (n < 0)
            return -errno;
        done += (uint32_t)n;
        if (done < m.hdr.nmsrs) {
            if (vm->log && !reset)
                vm->log(vm->log_ctx, "the host's KVM refuses MSR 0x%x at boot; going on without it",
                        m.e[done].index);
            done++;
        }
    }
    return 0;
}

static int set_lint(struct vm_cpu *cpu, struct kvm_lapic_state *l)
{
    if (ioctl(cpu->fd, KVM_GET_LAPIC, l) < 0)
        return -errno;
    /* Without LINT0 as ExtINT the 8259's interrupts never reach the BSP
     * before the guest programs its LAPIC (which Linux does later, itself). */
    uint32_t v0, v1;
    memcpy(&v0, l->regs + LAPIC_LVT0, 4);
    memcpy(&v1, l->regs + LAPIC_LVT1, 4);
    v0 = (v0 & ~0x700u) | (APIC_MODE_EXTINT << 8);
    v1 = (v1 & ~0x700u) | (APIC_MODE_NMI << 8);
    memcpy(l->regs + LAPIC_LVT0, &v0, 4);
    memcpy(l->regs + LAPIC_LVT1, &v1, 4);
    return ioctl(cpu->fd, KVM_SET_LAPIC, l) < 0 ? -errno : 0;
}

static int pc_cpu_setup(struct vm *vm, struct vm_cpu *cpu, char *err, size_t errlen)
{
    struct pc *pc = vm->board_data;
    struct kvm_cpuid2 *c;
    int r = vm_cpuid_for_vcpu(pc->supported, cpu->index, vm->ncpus, &c);
    if (r)
        return vm_fail(err, errlen, r, "cannot build CPUID for vCPU %u: %s", cpu->index,
                    strerror(-r));
    r = ioctl(cpu->fd, KVM_SET_CPUID2, c) < 0 ? -errno : 0;
    free(c);
    if (r)
        return vm_fail(err, errlen, r, "KVM_SET_CPUID2 failed on vCPU %u: %s", cpu->index,
                    strerror(-r));
    if ((r = set_msrs(vm, cpu, false)))
        return vm_fail(err, errlen, r, "KVM_SET_MSRS failed on vCPU %u: %s", cpu->index,
                    strerror(-r));
    struct pc_cpu *pcc = cpu->board_data;
    if ((r = set_lint(cpu, &pcc->lapic)))
        return vm_fail(err, errlen, r, "cannot set up the LAPIC of vCPU %u: %s", cpu->index,
                    strerror(-r));
    /* create_cpu() read the power-on segment state into the cache. */
    pcc->sregs = cpu->rc.sregs;
    return 0;
}

static int pc_image_loaded(struct vm *vm, const struct vm_image *img, char *err, size_t errlen)
{
    struct pc *pc = vm->board_data;
    struct vm_mptable_pci_irq pci[VM_MAX_DRIVES];
    unsigned npci = vm_disks_pci_irqs(pc->disks, pci, VM_MAX_DRIVES);
    uint64_t addr = VM_BZIMAGE_MPTABLE;
    size_t room = MPTABLE_LOW_ROOM;
    size_t size = vm_mptable_size_pci(vm->ncpus, npci);
    if (img->format != VM_IMAGE_BZIMAGE || size > room) {
        addr = MPTABLE_HIGH;
        room = MPTABLE_HIGH_ROOM;
    }
    for (size_t i = 0; i < img->nsegments; i++) {
        const struct vm_segment *s = &img->segments[i];
        if (img->format != VM_IMAGE_BZIMAGE && s->memsz && s->paddr < addr + size &&
            addr < s->paddr + s->memsz)
            return vm_fail(err, errlen, -EBUSY,
                        "%s overlaps the MP table the pc board puts at 0x%llx-0x%llx: link it "
                        "elsewhere or use --machine bare",
                        img->name, (unsigned long long)addr,
                        (unsigned long long)(addr + size - 1));
    }
    int r = vm_mptable_write_pci(vm->mem.host, vm->mem.size, addr, room, vm->ncpus, pci, npci);
    if (r)
        return vm_fail(err, errlen, r, "cannot write the MP table for %u CPUs at 0x%llx: %s",
                    vm->ncpus, (unsigned long long)addr, strerror(-r));
    return 0;
}

/* Back to power-on: devices, the interrupt controllers and the PIT as KVM
 * created them, and every vCPU as pc_cpu_setup left it (segments, MSRs,
 * LAPIC; the BSP runnable, the APs waiting for INIT/SIPI). */
static void pc_reset(struct vm *vm)
{
    struct pc *pc = vm->board_data;
    vm_serial_reset(&pc->uart);
    vm_i8042_reset(&pc->kbc);
    vm_disks_reset(pc->disks);
    atomic_store(&pc->reset_requested, false);
    sync_thr_zone(pc);
    for (unsigned i = 0; i < 3; i++)
        ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &pc->chips[i]);
    ioctl(vm->vm_fd, KVM_SET_PIT2, &pc->pit);
    for (unsigned i = 0; i < vm->ncpus; i++) {
        struct vm_cpu *cpu = &vm->cpus[i];
        const struct pc_cpu *pcc = cpu->board_data;
        ioctl(cpu->fd, KVM_SET_SREGS, &pcc->sregs);
        set_msrs(vm, cpu, true);
        ioctl(cpu->fd, KVM_SET_LAPIC, &pcc->lapic);
        struct kvm_mp_state mp = {.mp_state = i == 0 ? KVM_MP_STATE_RUNNABLE
                                                     : KVM_MP_STATE_UNINITIALIZED};
        ioctl(cpu->fd, KVM_SET_MP_STATE, &mp);
    }
}

static void pc_destroy(struct vm *vm)
{
    struct pc *pc = vm->board_data;
    if (!pc)
        return;
    vm_disks_destroy(pc->disks);
    vm->linux_words = NULL;
    vm_serial_destroy(&pc->uart);
    vm_i8042_destroy(&pc->kbc);
    vm_cmos_destroy(&pc->cmos);
    pthread_mutex_destroy(&pc->zone_lock);
    free(pc->supported);
    free(pc);
    vm->board_data = NULL;
}

static void pc_quiesce(struct vm *vm, bool pause)
{
    struct pc *pc = vm->board_data;
    if (pause)
        vm_disks_pause(pc->disks);
    else
        vm_disks_resume(pc->disks);
}

static int pc_describe_disks(struct vm *vm, char *buf, size_t len)
{
    struct pc *pc = vm->board_data;
    return vm_disks_describe(pc->disks, buf, len);
}

const struct vm_board vm_board_pc = {
    .info = {.name = "pc",
             .kind = VM_BOARD_PC,
             .irqchip = true,
             .resets_on_shutdown = true,
             .boots_linux = true,
             /* Linux needs its init_size (about 64 MiB for Debian's kernel)
              * above 16 MiB plus an initrd; QEMU gives 128 MiB. */
             .default_ram = 128ull << 20},
    .snap_vm_parts = VM_SNAP_VM_IRQCHIP | VM_SNAP_VM_PIT | VM_SNAP_VM_CLOCK,
    .cpu_data_size = sizeof(struct pc_cpu),
    .create = pc_create,
    .cpu_setup = pc_cpu_setup,
    .image_loaded = pc_image_loaded,
    .reset = pc_reset,
    .destroy = pc_destroy,
    .quiesce = pc_quiesce,
    .describe_disks = pc_describe_disks,
};
