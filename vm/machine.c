/* Creating and destroying the VM: /dev/kvm, capabilities, RAM, the board,
 * vCPUs; the accessors of vm/vm.h. */
#include "internal.h"
#include "fail.h"
#include "gate.h"
#include "probe.h"
#include "serial.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* Where Intel's real-mode emulation keeps its TSS and identity page table:
 * just under 4 GiB, far above any RAM we give the guest. */
#define TSS_ADDR 0xfffbd000ull
#define IDENTITY_MAP_ADDR 0xfffbc000ull

static int check(int fd, long cap)
{
    int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);
    return r < 0 ? 0 : r;
}

static int open_kvm(char *err, size_t errlen, int *out)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENODEV || e == ENXIO)
            return vm_fail(err, errlen, -e,
                        "cannot open /dev/kvm: %s: this host has no KVM; enable virtualization "
                        "(VT-x/AMD-V) in the firmware and load kvm_intel or kvm_amd, or use a VM "
                        "with nested virtualization",
                        strerror(e));
        if (e == EACCES || e == EPERM)
            return vm_fail(err, errlen, -e,
                        "cannot open /dev/kvm: %s: add your user to the 'kvm' group "
                        "(sudo usermod -aG kvm $USER, then log in again) or run as root",
                        strerror(e));
        return vm_fail(err, errlen, -e, "cannot open /dev/kvm: %s", strerror(e));
    }
    *out = fd;
    return 0;
}

static int setup_cpuid(struct vm *vm, char *err, size_t errlen)
{
    /* The guest sees what this KVM supports, as a real CPU would show it;
     * without it KVM validates CR4 and XCR0 writes against an empty CPUID. */
    for (int n = 64; n <= 4096; n *= 2) {
        struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (size_t)n * sizeof(c->entries[0]));
        if (!c)
            return -ENOMEM;
        c->nent = (uint32_t)n;
        if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
            vm->cpuid = c;
            return 0;
        }
        int e = errno;
        free(c);
        if (e != E2BIG)
            return vm_fail(err, errlen, -e, "KVM_GET_SUPPORTED_CPUID failed: %s", strerror(e));
    }
    return vm_fail(err, errlen, -E2BIG, "KVM_GET_SUPPORTED_CPUID: too many CPUID entries");
}

/* Where the AVX and AVX-512 registers lie in KVM's XSAVE image, from the
 * CPUID KVM supports (leaf 0xD: sub-leaf 0 the XCR0 bits, sub-leaf n the
 * size and offset of component n). Components past the image are left out. */
static void xsave_layout(struct vm *vm, size_t image)
{
    struct vm_xsave_layout *x = &vm->xlayout;
    memset(x, 0, sizeof(*x));
    if (!vm->cpuid)
        return;
    uint64_t supported = 0;
    for (uint32_t i = 0; i < vm->cpuid->nent; i++) {
        const struct kvm_cpuid_entry2 *e = &vm->cpuid->entries[i];
        if (e->function != 0xd)
            continue;
        if (e->index == 0)
            supported = e->eax | ((uint64_t)e->edx << 32);
        else if (e->index >= 2 && e->index < 8) {
            x->size[e->index] = e->eax;
            x->offset[e->index] = e->ebx;
        }
    }
    for (unsigned c = 2; c < 8; c++) {
        bool fits = x->size[c] && x->offset[c] >= 576 &&
                    (uint64_t)x->offset[c] + x->size[c] <= image;
        if ((supported & (1ull << c)) && fits)
            x->features |= 1ull << c;
    }
}

static int create_cpu(struct vm *vm, unsigned index, char *err, size_t errlen)
{
    struct vm_cpu *cpu = &vm->cpus[index];
    cpu->vm = vm;
    cpu->index = index;
    cpu->step.over = ~0ull;
    atomic_init(&cpu->kick, false);
    atomic_init(&cpu->thread_known, false);
    cpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, index);
    if (cpu->fd < 0) {
        cpu->fd = -1;
        return vm_fail(err, errlen, -errno, "cannot create vCPU %u: %s", index, strerror(errno));
    }
    void *run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, cpu->fd, 0);
    if (run == MAP_FAILED)
        return vm_fail(err, errlen, -errno, "cannot map the vCPU's kvm_run area: %s",
                    strerror(errno));
    cpu->run = run;
    if (vm->coalesced_page)
        cpu->ring = (void *)((uint8_t *)run + (size_t)vm->coalesced_page * VM_PAGE_SIZE);
    if (ioctl(cpu->fd, KVM_SET_CPUID2, vm->cpuid) < 0)
        return vm_fail(err, errlen, -errno, "KVM_SET_CPUID2 failed: %s", strerror(errno));
    cpu->rc.fd = cpu->fd;
    if (vm->caps.xsave) {
        int size = check(vm->kvm_fd, KVM_CAP_XSAVE2);
        cpu->rc.xsave_size =
            size > (int)sizeof(struct kvm_xsave) ? (size_t)size : sizeof(struct kvm_xsave);
        cpu->rc.xsave = calloc(1, cpu->rc.xsave_size);
        if (!cpu->rc.xsave)
            return vm_fail(err, errlen, -ENOMEM, "out of memory");
        if (index == 0)
            xsave_layout(vm, cpu->rc.xsave_size);
        cpu->rc.xlayout = &vm->xlayout;
    }
    cpu->guest_debug_dirty = true;
    /* Remember the power-on segment state; vm_reset() returns to it. */
    if (ioctl(cpu->fd, KVM_GET_SREGS, &cpu->rc.sregs) < 0)
        return vm_fail(err, errlen, -errno, "KVM_GET_SREGS failed: %s", strerror(errno));
    cpu->rc.valid = VM_RC_SREGS;
    if (vm->board->cpu_data_size && !(cpu->board_data = calloc(1, vm->board->cpu_data_size)))
        return vm_fail(err, errlen, -ENOMEM, "out of memory");
    return vm->board->cpu_setup(vm, cpu, err, errlen);
}

/* Every board, the default for images other than Linux kernels first: a
 * new board is one more entry here and its file. */
static const struct vm_board *const boards[] = {&vm_board_bare, &vm_board_pc};
#define NBOARDS (sizeof(boards) / sizeof(boards[0]))

static const struct vm_board *board_of(enum vm_board_kind kind)
{
    for (size_t i = 0; i < NBOARDS; i++)
        if (boards[i]->info.kind == kind)
            return boards[i];
    return NULL;
}

const struct vm_board_info *vm_board_find(const char *name)
{
    for (size_t i = 0; name && i < NBOARDS; i++)
        if (strcmp(boards[i]->info.name, name) == 0)
            return &boards[i]->info;
    return NULL;
}

const struct vm_board_info *vm_board_default(bool linux_kernel)
{
    for (size_t i = 0; linux_kernel && i < NBOARDS; i++)
        if (boards[i]->info.boots_linux)
            return &boards[i]->info;
    return &boards[0]->info;
}

void vm_board_names(char *out, size_t len)
{
    size_t n = 0;
    if (len)
        out[0] = 0;
    for (size_t i = 0; i < NBOARDS && n < len; i++)
        n += (size_t)snprintf(out + n, len - n, "%s%s",
                              i == 0 ? "" : i + 1 == NBOARDS ? " or " : ", ", boards[i]->info.name);
}

int vm_board_check(enum vm_board_kind kind, unsigned ncpus, char *err, size_t errlen)
{
    const struct vm_board *board = board_of(kind);
    if (!board)
        return vm_fail(err, errlen, -EINVAL, "unknown board %d", (int)kind);
    return board->check ? board->check(ncpus ? ncpus : 1, err, errlen) : 0;
}

int vm_create(const struct vm_config *cfg, struct vm **out, char *err, size_t errlen)
{
    uint64_t ram = cfg->ram_size ? cfg->ram_size : VM_DEFAULT_RAM;
    if (ram < VM_MIN_RAM || ram > VM_MAX_RAM || ram % VM_PAGE_SIZE)
        return vm_fail(err, errlen, -EINVAL,
                    "guest memory of %llu bytes is not possible: give between 1M and 3G, "
                    "in whole 4K pages",
                    (unsigned long long)ram);
    int r = vm_board_check(cfg->board, cfg->ncpus, err, errlen);
    if (r)
        return r;
    /* Only the pc board takes drives (and opens them in its create). */
    if (cfg->ndrives && cfg->board != VM_BOARD_PC &&
        (r = vm_disks_check(cfg->board, cfg->drives, cfg->ndrives, err, errlen)))
        return r;
    struct vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return vm_fail(err, errlen, -ENOMEM, "out of memory");
    vm->kvm_fd = vm->vm_fd = -1;
    vm->log = cfg->log;
    vm->log_ctx = cfg->log_ctx;
    vm->trace = cfg->trace;
    pthread_mutex_init(&vm->note_lock, NULL);
    pthread_mutex_init(&vm->ring_lock, NULL);
    vm_gate_init(vm);
    atomic_init(&vm->exited, false);
    vm->board = board_of(cfg->board);
    unsigned ncpus = cfg->ncpus ? cfg->ncpus : 1;
    r = open_kvm(err, errlen, &vm->kvm_fd);
    if (r)
        goto out;

    vm->caps.api_version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
    if (vm->caps.api_version != KVM_API_VERSION) {
        r = vm_fail(err, errlen, -ENOTSUP,
                 "/dev/kvm speaks KVM API version %d, kvmstub needs %d: the host kernel is too "
                 "old or too new",
                 vm->caps.api_version, KVM_API_VERSION);
        goto out;
    }
    static const struct {
        long cap;
        const char *name;
    } required[] = {
        {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
        {KVM_CAP_SET_GUEST_DEBUG, "KVM_CAP_SET_GUEST_DEBUG"},
        {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
        {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
        {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
    };
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        if (!check(vm->kvm_fd, required[i].cap)) {
            r = vm_fail(err, errlen, -ENOTSUP,
                     "the host's KVM lacks %s, which kvmstub needs: use Linux 4.11 or newer",
                     required[i].name);
            goto out;
        }
    }
    vm->caps.immediate_exit = true;
    vm->caps.readonly_mem = check(vm->kvm_fd, KVM_CAP_READONLY_MEM) > 0;
    vm->caps.coalesced_pio = check(vm->kvm_fd, KVM_CAP_COALESCED_PIO) > 0;
    vm->caps.xsave = check(vm->kvm_fd, KVM_CAP_XSAVE) > 0;
    int slots = check(vm->kvm_fd, KVM_CAP_NR_MEMSLOTS);
    vm->caps.max_slots = slots > 0 ? (uint32_t)slots : 32;
    vm->coalesced_page = vm->caps.coalesced_pio ? check(vm->kvm_fd, KVM_CAP_COALESCED_MMIO) : 0;
    int dbg2 = check(vm->kvm_fd, KVM_CAP_SET_GUEST_DEBUG2);
    vm->caps.guest_debug_flags = dbg2 > 0 ? (uint32_t)dbg2 : 0;
    if (cfg->no_blockirq)
        vm->caps.guest_debug_flags &= ~(uint32_t)KVM_GUESTDBG_BLOCKIRQ;
    int max_cpus = check(vm->kvm_fd, KVM_CAP_MAX_VCPUS);
    if (max_cpus <= 0)
        max_cpus = check(vm->kvm_fd, KVM_CAP_NR_VCPUS);
    if (ncpus > VM_MAX_CPUS || (max_cpus > 0 && ncpus > (unsigned)max_cpus)) {
        r = vm_fail(err, errlen, -EINVAL, "%u CPUs are more than this host's KVM allows (%d)", ncpus,
                 max_cpus > 0 && max_cpus < (int)VM_MAX_CPUS ? max_cpus : (int)VM_MAX_CPUS);
        goto out;
    }

    int size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (size < (int)sizeof(struct kvm_run)) {
        r = vm_fail(err, errlen, -EIO, "KVM_GET_VCPU_MMAP_SIZE failed: %s", strerror(errno));
        goto out;
    }
    vm->run_size = (size_t)size;

    do
        vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    while (vm->vm_fd < 0 && errno == EINTR);
    if (vm->vm_fd < 0) {
        r = vm_fail(err, errlen, -errno, "cannot create a VM: %s%s", strerror(errno),
                 errno == ENOMEM || errno == EMFILE ? " (the host is short of resources)" : "");
        goto out;
    }
    if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, TSS_ADDR) < 0) {
        r = vm_fail(err, errlen, -errno, "KVM_SET_TSS_ADDR failed: %s", strerror(errno));
        goto out;
    }
    if (check(vm->kvm_fd, KVM_CAP_SET_IDENTITY_MAP_ADDR)) {
        uint64_t addr = IDENTITY_MAP_ADDR;
        ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &addr);
    }
    if ((r = setup_cpuid(vm, err, errlen)))
        goto out;

    r = vm_mem_init(&vm->mem, vm->vm_fd, ram, vm->caps.readonly_mem, vm->caps.max_slots);
    if (r) {
        r = vm_fail(err, errlen, r, "cannot give the guest %llu MiB of RAM: %s",
                 (unsigned long long)(ram >> 20), strerror(-r));
        goto out;
    }
    if (err && errlen)
        err[0] = 0;
    vm->ncpus = ncpus; /* the board sizes its tables by it */
    vm->drives = cfg->drives;
    vm->ndrives = cfg->ndrives;
    r = vm->board->create(vm, err, errlen);
    vm->drives = NULL;
    vm->ndrives = 0;
    if (r) {
        if (err && errlen && !err[0])
            vm_fail(err, errlen, r, "cannot set up the %s board: %s", vm->board->info.name, strerror(-r));
        goto out;
    }
    if (vm_coalesce_refresh(vm))
        vm->coalesced_page = 0; /* every write exits; slower, never wrong */

    vm->cpus = calloc(vm->ncpus, sizeof(*vm->cpus));
    if (!vm->cpus) {
        r = vm_fail(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    for (unsigned i = 0; i < vm->ncpus; i++)
        vm->cpus[i].fd = -1;
    for (unsigned i = 0; i < vm->ncpus; i++)
        if ((r = create_cpu(vm, i, err, errlen)))
            goto out;

    vm->caps.sw_bp = VM_BP_INT3;
    vm->caps.hw_exec_bp = true;
    vm->caps.hw_data_bp = true;
    for (unsigned m = 0; m < VM_PROBE_MODES; m++)
        vm->caps.mode[m] = (struct vm_probe_result){VM_BP_INT3, true, true};
    vm->caps.ro_slot_traps_writes = vm->caps.readonly_mem;
    if (!cfg->skip_probe) {
        if ((r = vm_probe(vm->kvm_fd, &vm->caps))) {
            r = vm_fail(err, errlen, r, "probing the host's KVM debugging support failed: %s",
                     strerror(-r));
            goto out;
        }
    }
    vm_debug_init(vm);
    *out = vm;
    return 0;
out:
    vm_destroy(vm);
    return r;
}

void vm_destroy(struct vm *vm)
{
    if (!vm)
        return;
    vm_debug_free(vm);
    if (vm->board && vm->board->destroy)
        vm->board->destroy(vm);
    vm_bus_free(&vm->bus);
    for (unsigned i = 0; vm->cpus && i < vm->ncpus; i++) {
        struct vm_cpu *cpu = &vm->cpus[i];
        if (cpu->run)
            munmap(cpu->run, vm->run_size);
        if (cpu->fd >= 0)
            close(cpu->fd);
        free(cpu->rc.xsave);
        free(cpu->step.lifted);
        free(cpu->board_data);
    }
    free(vm->cpus);
    if (vm->mem.host)
        vm_mem_destroy(&vm->mem);
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    if (vm->kvm_fd >= 0)
        close(vm->kvm_fd);
    free(vm->cpuid);
    pthread_mutex_destroy(&vm->note_lock);
    pthread_mutex_destroy(&vm->ring_lock);
    vm_gate_destroy(vm);
    free(vm);
}

void vm_devices_hold(struct vm *vm, bool hold)
{
    if (vm->board->quiesce)
        vm->board->quiesce(vm, hold);
}

int vm_devices_describe_disks(struct vm *vm, char *buf, size_t len)
{
    if (vm->board->describe_disks)
        return vm->board->describe_disks(vm, buf, len);
    return snprintf(buf, len, "no drives: the %s board has none (--machine pc has)\n",
                    vm->board->info.name);
}

int vm_reset(struct vm *vm)
{
    vm_debug_clear(vm);
    int err = vm_mem_clear(&vm->mem);
    if (err)
        return err;
    vm->board->reset(vm);
    atomic_store(&vm->exited, false);
    vm->exit_status = 0;
    for (unsigned i = 0; i < vm->ncpus; i++) {
        struct vm_cpu *cpu = &vm->cpus[i];
        /* Debug registers and pending events go back to power-on values;
         * vm_enter_mode() then rewrites the registers themselves. */
        struct kvm_debugregs dr = {.dr6 = 0xffff0ff0, .dr7 = 0x400};
        ioctl(cpu->fd, KVM_SET_DEBUGREGS, &dr);
        struct kvm_vcpu_events ev = {0};
        ioctl(cpu->fd, KVM_SET_VCPU_EVENTS, &ev);
        cpu->halted = false;
        cpu->has_pending = false;
        cpu->needs_completion = false;
        cpu->step.stepping_over = false;
        cpu->guest_debug_dirty = true;
        vm_regcache_invalidate(&cpu->rc);
    }
    return 0;
}

bool vm_output_pending(struct vm *vm)
{
    if (vm_serial_tx_pending(vm->console))
        return true;
    for (unsigned i = 0; i < vm->ncpus; i++) {
        struct kvm_coalesced_mmio_ring *ring = vm->cpus[i].ring;
        if (ring && __atomic_load_n(&ring->first, __ATOMIC_RELAXED) !=
                        __atomic_load_n(&ring->last, __ATOMIC_ACQUIRE))
            return true;
    }
    return false;
}

size_t vm_console_take(struct vm *vm, uint8_t *out, size_t max)
{
    return vm_serial_take(vm->console, out, max);
}

size_t vm_console_input(struct vm *vm, const void *data, size_t n)
{
    return vm_serial_input(vm->console, data, n);
}

unsigned vm_ncpus(const struct vm *vm)
{
    return vm->ncpus;
}

struct vm_cpu *vm_cpu(struct vm *vm, unsigned index)
{
    return index < vm->ncpus ? &vm->cpus[index] : NULL;
}

const struct vm_caps *vm_caps(const struct vm *vm)
{
    return &vm->caps;
}

const struct vm_stats *vm_stats(const struct vm *vm)
{
    return &vm->stats;
}

uint64_t vm_xsave_features(const struct vm *vm)
{
    return vm->xlayout.features;
}

uint64_t vm_ram_size(const struct vm *vm)
{
    return vm->mem.size;
}

const char *vm_board_name(const struct vm *vm)
{
    return vm->board->info.name;
}

bool vm_has_irqchip(const struct vm *vm)
{
    return vm->board->info.irqchip;
}

bool vm_cpu_halted(const struct vm_cpu *cpu)
{
    return vm_cpu_wait(cpu) == VM_CPU_HALTED;
}

enum vm_cpu_wait vm_cpu_wait(const struct vm_cpu *cpu)
{
    if (!cpu->vm->board->info.irqchip)
        return cpu->halted ? VM_CPU_HALTED : VM_CPU_RUNNABLE;
    /* KVM halts the vCPU itself and keeps the state. */
    struct kvm_mp_state mp;
    if (ioctl(cpu->fd, KVM_GET_MP_STATE, &mp))
        return VM_CPU_RUNNABLE;
    switch (mp.mp_state) {
    case KVM_MP_STATE_HALTED:
        return VM_CPU_HALTED;
    case KVM_MP_STATE_UNINITIALIZED:
        return VM_CPU_WAIT_INIT;
    case KVM_MP_STATE_INIT_RECEIVED:
        return VM_CPU_WAIT_SIPI;
    default:
        return VM_CPU_RUNNABLE;
    }
}
