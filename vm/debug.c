/* Breakpoints: planted trap bytes, page traps or debug registers; the
 * guest debug state KVM applies; I/O catches. */
#include "gate.h"
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

const char *vm_bp_method_name(enum vm_bp_method m)
{
    switch (m) {
    case VM_BP_INT3: return "int3 (KVM_EXIT_DEBUG)";
    case VM_BP_INT3_INTERNAL_ERROR: return "int3 (reported as KVM_EXIT_INTERNAL_ERROR)";
    case VM_BP_HLT: return "planted hlt";
    case VM_BP_PAGE_TRAP: return "page traps on the code page";
    case VM_BP_PORT_IN: return "planted in $0xe5,%al (page traps on one-byte instructions)";
    }
    return "?";
}

void vm_debug_init(struct vm *vm)
{
    struct vm_debug *d = &vm->debug;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&d->lock, &a);
    pthread_mutexattr_destroy(&a);
    atomic_init(&d->npending, 0);
    d->bp_method = vm->caps.sw_bp;
    /* A planted hlt never reaches kvmstub where KVM's LAPIC halts the
     * vCPU itself. */
    if (d->bp_method == VM_BP_HLT && vm->board->info.irqchip)
        d->bp_method = VM_BP_PORT_IN;
    d->hw_exec = vm->caps.hw_exec_bp;
    d->hw_data = vm->caps.hw_data_bp;
    d->initialized = true;
}

void vm_debug_free(struct vm *vm)
{
    if (vm->debug.initialized)
        pthread_mutex_destroy(&vm->debug.lock);
    vm->debug.initialized = false;
    for (size_t i = 0; i < vm->debug.nwatches; i++)
        free(vm->debug.watches[i].pages);
    free(vm->debug.watches);
    free(vm->debug.bps);
    vm->debug.watches = NULL;
    vm->debug.bps = NULL;
}

static bool page_trapped(const struct vm_breakpoint *bp)
{
    return bp->gpa != VM_BP_PENDING && !bp->len;
}

/* Instructions of one byte, by their first byte (no prefix can precede
 * them, since a prefix makes two). In 64-bit mode 0x40-0x4f are REX
 * prefixes; elsewhere they are inc/dec. Opcodes invalid in 64-bit mode
 * count as one byte: nothing is known of what follows them. */
static bool one_byte_insn(uint8_t op, bool long_mode)
{
    if (op >= 0x40 && op <= 0x4f)
        return !long_mode;
    if (op == 0x9a || op == 0xea) /* far call and jump: invalid in 64-bit mode */
        return long_mode;
    if ((op >= 0x50 && op <= 0x5f) || (op >= 0x90 && op <= 0x9f && op != 0x9a) ||
        (op >= 0xa4 && op <= 0xa7) || (op >= 0xaa && op <= 0xaf) || (op >= 0x6c && op <= 0x6f) ||
        (op >= 0xec && op <= 0xef) || (op >= 0xf8 && op <= 0xfd))
        return true;
    switch (op) {
    case 0x06: case 0x07: case 0x0e: case 0x16: case 0x17: case 0x1e: case 0x1f:
    case 0x27: case 0x2f: case 0x37: case 0x3f: case 0x60: case 0x61:
    case 0xc3: case 0xc9: case 0xcb: case 0xcc: case 0xce: case 0xcf: case 0xd4: case 0xd5:
    case 0xd6: case 0xd7: case 0xf1: case 0xf4: case 0xf5:
        return true;
    default:
        return false;
    }
}

/* Whether a two-byte trap can go at bp: its instruction is at least two
 * bytes long, both bytes are on one page, and no other planted trap
 * overlaps them. */
static bool fits_two(struct vm_cpu *cpu, const struct vm_breakpoint *bp)
{
    struct vm *vm = cpu->vm;
    const uint8_t *p = vm_mem_ptr(&vm->mem, bp->gpa, 2);
    if (!p || (bp->gpa & (VM_PAGE_SIZE - 1)) == VM_PAGE_SIZE - 1 ||
        vm_regcache_fetch(&cpu->rc, VM_RC_SREGS))
        return false;
    bool long_mode = (cpu->rc.sregs.efer & (1u << 10)) && cpu->rc.sregs.cs.l;
    if (one_byte_insn(p[0], long_mode))
        return false;
    for (size_t i = 0; i < vm->debug.nbps; i++) {
        const struct vm_breakpoint *o = &vm->debug.bps[i];
        if (o != bp && vm_planted_in_ram(o) && o->gpa + o->len > bp->gpa && o->gpa < bp->gpa + 2)
            return false;
    }
    return true;
}

/* Puts a breakpoint whose gpa is known in place: its trap bytes, or its
 * page trapped where they cannot go. */
static int plant(struct vm_cpu *cpu, struct vm_breakpoint *bp)
{
    struct vm *vm = cpu->vm;
    uint8_t t[VM_BP_MAX_TRAP];
    size_t n = vm_planted_trap(vm, t);
    if (n == 2 && !fits_two(cpu, bp))
        n = 0;
    bp->len = (uint8_t)n;
    if (!n)
        return vm_watch_apply_traps(vm);
    uint8_t *p = vm_mem_ptr(&vm->mem, bp->gpa, n);
    if (!p)
        return -EFAULT;
    memcpy(bp->orig, p, n);
    memcpy(p, t, n);
    return 0;
}

/* Where a Linux kernel's text at addr will be, when the guest has not
 * mapped it yet: a kernel loaded by the boot protocol is unpacked by its
 * decompressor and entered without any exit to kvmstub, so a pending
 * breakpoint on start_kernel would be planted too late. Its page is
 * trapped at the predicted spot instead: the decompressor's writes there
 * are performed by kvmstub (handle_mmio) and the first fetch of code from
 * it exits, as for any page-trapped breakpoint. With KASLR the kernel
 * lands elsewhere; the breakpoint moves once the kernel maps it. */
static bool predict(const struct vm *vm, uint64_t addr, uint64_t *gpa)
{
    if (!vm->linux_text || addr < VM_LINUX_TEXT_MAP ||
        addr - VM_LINUX_TEXT_MAP >= VM_LINUX_TEXT_MAP_SIZE)
        return false;
    *gpa = addr - VM_LINUX_TEXT_MAP + vm->linux_text_gpa;
    return vm_mem_ptr(&vm->mem, *gpa, 1) != NULL;
}

static struct vm_breakpoint *find(struct vm *vm, uint64_t addr)
{
    for (size_t i = 0; i < vm->debug.nbps; i++)
        if (vm->debug.bps[i].addr == addr)
            return &vm->debug.bps[i];
    return NULL;
}

const struct vm_breakpoint *vm_bp_find(const struct vm *vm, uint64_t addr)
{
    return find((struct vm *)(uintptr_t)vm, addr);
}

/* A debug register for an execution breakpoint: a free one, or one a
 * watchpoint gives up for page traps (watchpoints work without debug
 * registers; hbreak on code not yet mapped does not). */
static int dr_for_exec(struct vm_cpu *cpu, uint64_t addr)
{
    struct vm *vm = cpu->vm;
    int slot = vm_debugreg_alloc(vm, 0, 1, addr);
    for (unsigned i = 0; slot < 0 && i < VM_NUM_DEBUG_REGS; i++) {
        if (vm->debug.dr[i].rw != 0 && vm_watch_release_dr(cpu, (int)i) == 0)
            slot = vm_debugreg_alloc(vm, 0, 1, addr);
    }
    return slot;
}

int vm_bp_insert(struct vm_cpu *cpu, uint64_t addr, bool hardware)
{
    struct vm *vm = cpu->vm;
    struct vm_debug *d = &vm->debug;
    if (hardware && d->hw_exec) {
        if (vm_debugreg_find(vm, 0, 1, addr) >= 0)
            return 0;
        int slot = dr_for_exec(cpu, addr);
        return slot < 0 ? slot : 0;
    }
    struct vm_breakpoint *bp = find(vm, addr);
    if (hardware && !(bp && bp->hardware) && d->nhw_emulated >= VM_NUM_DEBUG_REGS)
        return -ENOSPC;
    if (!bp) {
        if (d->nbps >= VM_MAX_BREAKPOINTS)
            return -ENOSPC;
        uint64_t gpa;
        int err = vm_translate(cpu, addr, &gpa);
        if (err == -EFAULT) {
            gpa = VM_BP_PENDING; /* not mapped yet: planted once it is */
        } else if (err) {
            return err;
        } else if (!vm_mem_ptr(&vm->mem, gpa, 1)) {
            return -EFAULT;
        }
        if (d->nbps == d->capbps) {
            size_t cap = d->capbps ? d->capbps * 2 : 16;
            struct vm_breakpoint *n = realloc(d->bps, cap * sizeof(*n));
            if (!n)
                return -ENOMEM;
            d->bps = n;
            d->capbps = cap;
        }
        bp = &d->bps[d->nbps++];
        *bp = (struct vm_breakpoint){.addr = addr, .gpa = gpa};
        if (gpa == VM_BP_PENDING) {
            atomic_fetch_add(&d->npending, 1);
            if (predict(vm, addr, &gpa)) {
                bp->gpa = gpa;
                bp->predicted = true;
                vm_watch_apply_traps(vm); /* without the trap it stays pending */
            }
        } else if ((err = plant(cpu, bp))) {
            d->nbps--;
            vm_watch_apply_traps(vm); /* back to the traps without it */
            return err;
        }
        if (d->nbps == 1)
            d->generation++; /* #BP interception goes on */
    }
    if (hardware && !bp->hardware) {
        bp->hardware = true;
        d->nhw_emulated++;
    }
    if (!hardware)
        bp->software = true;
    return 0;
}

int vm_bp_remove(struct vm_cpu *cpu, uint64_t addr, bool hardware)
{
    struct vm *vm = cpu->vm;
    struct vm_debug *d = &vm->debug;
    if (hardware && d->hw_exec) {
        int slot = vm_debugreg_find(vm, 0, 1, addr);
        if (slot < 0)
            return -ENOENT;
        vm_debugreg_free(vm, slot);
        return 0;
    }
    struct vm_breakpoint *bp = find(vm, addr);
    /* A Z0 and a Z1 at one address share the planted byte; gdb removes
     * them one at a time. */
    if (!bp || !(hardware ? bp->hardware : bp->software))
        return -ENOENT;
    if (hardware) {
        bp->hardware = false;
        d->nhw_emulated--;
    } else {
        bp->software = false;
    }
    if (bp->hardware || bp->software)
        return 0;
    bool trapped = page_trapped(bp);
    uint8_t *p = vm_planted_in_ram(bp) ? vm_mem_ptr(&vm->mem, bp->gpa, bp->len) : NULL;
    if (p)
        memcpy(p, bp->orig, bp->len);
    if (bp->gpa == VM_BP_PENDING || bp->predicted)
        atomic_fetch_sub(&d->npending, 1);
    *bp = d->bps[--d->nbps];
    if (d->nbps == 0)
        d->generation++;
    return trapped ? vm_watch_apply_traps(vm) : 0;
}

int vm_bp_unplant(struct vm_cpu *cpu, uint64_t addr)
{
    struct vm *vm = cpu->vm;
    pthread_mutex_lock(&vm->debug.lock);
    struct vm_breakpoint *bp = find(vm, addr);
    uint64_t lift = VM_BP_PENDING;
    if (bp && page_trapped(bp)) {
        lift = bp->gpa;
    } else if (bp && vm_planted_in_ram(bp)) {
        uint8_t *p = vm_mem_ptr(&vm->mem, bp->gpa, bp->len);
        if (p)
            memcpy(p, bp->orig, bp->len);
    }
    pthread_mutex_unlock(&vm->debug.lock);
    /* Outside the lock: lifting waits for the gate (gate.h). */
    return lift == VM_BP_PENDING ? 0 : vm_watch_lift(cpu, lift);
}

void vm_bp_replant(struct vm *vm, uint64_t addr)
{
    pthread_mutex_lock(&vm->debug.lock);
    struct vm_breakpoint *bp = find(vm, addr);
    uint8_t t[VM_BP_MAX_TRAP];
    vm_planted_trap(vm, t);
    uint8_t *p = bp && vm_planted_in_ram(bp) ? vm_mem_ptr(&vm->mem, bp->gpa, bp->len) : NULL;
    if (p)
        memcpy(p, t, bp->len);
    pthread_mutex_unlock(&vm->debug.lock);
}

void vm_bp_unplant_all(struct vm *vm)
{
    for (size_t i = 0; i < vm->debug.nbps; i++) {
        const struct vm_breakpoint *bp = &vm->debug.bps[i];
        uint8_t *p = vm_planted_in_ram(bp) ? vm_mem_ptr(&vm->mem, bp->gpa, bp->len) : NULL;
        if (p)
            memcpy(p, bp->orig, bp->len);
    }
}

void vm_bp_replant_all(struct vm *vm)
{
    struct vm_debug *d = &vm->debug;
    unsigned pending = 0;
    for (size_t i = 0; i < d->nbps; i++) {
        struct vm_breakpoint *bp = &d->bps[i];
        uint64_t gpa;
        bp->gpa = VM_BP_PENDING;
        bp->len = 0;
        bp->predicted = false;
        if (!vm->ncpus || vm_translate(&vm->cpus[0], bp->addr, &gpa) ||
            !vm_mem_ptr(&vm->mem, gpa, 1)) {
            pending++;
            continue;
        }
        bp->gpa = gpa;
        if (plant(&vm->cpus[0], bp))
            bp->gpa = VM_BP_PENDING, pending++;
    }
    atomic_store(&d->npending, pending);
    vm_watch_apply_traps(vm);
    d->generation++;
}

/* A pending (or predicted) breakpoint cpu's page tables map now (and that
 * is not being stepped over: it stays out until its step is done). */
static bool plantable(struct vm_cpu *cpu, const struct vm_breakpoint *bp, uint64_t *gpa)
{
    return (bp->gpa == VM_BP_PENDING || bp->predicted) && vm_translate(cpu, bp->addr, gpa) == 0 &&
           vm_mem_ptr(&cpu->vm->mem, *gpa, 1) &&
           !(cpu->step.stepping_over && cpu->step.over == bp->addr);
}

int vm_bp_plant_pending(struct vm_cpu *cpu)
{
    struct vm *vm = cpu->vm;
    struct vm_debug *d = &vm->debug;
    if (!atomic_load_explicit(&d->npending, memory_order_relaxed))
        return 0;
    /* A look first: most exits find nothing new mapped, and planting may
     * trap a page, which needs the other vCPUs out of the guest. */
    bool any = false;
    uint64_t gpa;
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; i < d->nbps && !any; i++)
        any = plantable(cpu, &d->bps[i], &gpa);
    pthread_mutex_unlock(&d->lock);
    if (!any)
        return 0;
    int err = 0;
    bool moved = false;
    vm_gate_exclusive(vm);
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; i < d->nbps && !err; i++) {
        struct vm_breakpoint *bp = &d->bps[i];
        if (!plantable(cpu, bp, &gpa))
            continue;
        /* A predicted one leaves its page trap for the real place. */
        moved |= bp->predicted;
        bp->predicted = false;
        bp->gpa = gpa;
        atomic_fetch_sub(&d->npending, 1);
        err = plant(cpu, bp);
    }
    if (moved && !err)
        err = vm_watch_apply_traps(vm);
    pthread_mutex_unlock(&d->lock);
    vm_gate_release(vm);
    return err;
}

bool vm_bp_predicted(struct vm *vm)
{
    struct vm_debug *d = &vm->debug;
    if (!atomic_load_explicit(&d->npending, memory_order_relaxed))
        return false;
    bool any = false;
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; i < d->nbps && !any; i++)
        any = d->bps[i].predicted;
    pthread_mutex_unlock(&d->lock);
    return any;
}

bool vm_bp_pending(const struct vm *vm)
{
    return atomic_load_explicit(&vm->debug.npending, memory_order_relaxed) != 0;
}

static uint64_t dr7_len_bits(uint8_t len)
{
    switch (len) {
    case 2: return 1;
    case 8: return 2;
    case 4: return 3;
    default: return 0;
    }
}

int vm_debug_apply(struct vm_cpu *cpu, bool single_step)
{
    const struct vm_debug *d = &cpu->vm->debug;
    struct kvm_guest_debug g = {0};
    uint64_t dr7 = 0;
    for (unsigned i = 0; i < VM_NUM_DEBUG_REGS; i++) {
        if (!d->dr[i].used)
            continue;
        /* The execution breakpoint this step moves off (cpu.c). */
        if (cpu->step.stepping_over && d->dr[i].rw == 0 && d->dr[i].addr == cpu->step.over)
            continue;
        g.arch.debugreg[i] = d->dr[i].addr;
        dr7 |= (1ull << (2 * i)) | ((uint64_t)d->dr[i].rw << (16 + 4 * i)) |
               (dr7_len_bits(d->dr[i].len) << (18 + 4 * i));
    }
    if (dr7) {
        g.control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP;
        g.arch.debugreg[7] = dr7 | 0x400 | 0x200; /* reserved bit 10, GE for exact data hits */
    }
    if (d->nbps && (d->bp_method == VM_BP_INT3 || d->bp_method == VM_BP_INT3_INTERNAL_ERROR))
        g.control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP;
    if (single_step) {
        g.control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP;
        /* Where KVM can, a step runs one instruction of the guest's own
         * code, not the interrupt handler that became due meanwhile. Not
         * while the guest runs through a breakpoint's trapped page step by
         * step: that is the guest running, and it may wait there for an
         * interrupt. */
        if ((cpu->vm->caps.guest_debug_flags & KVM_GUESTDBG_BLOCKIRQ) && !cpu->step.visiting)
            g.control |= KVM_GUESTDBG_BLOCKIRQ;
    }
    cpu->single_step = single_step;
    if (!cpu->guest_debug_dirty && !cpu->inject && d->generation == cpu->debug_generation &&
        g.control == cpu->guest_debug_control && dr7 == cpu->dr7)
        return 0;
    /* KVM queues the exception when it takes the flag, for the next entry. */
    uint64_t control = g.control | cpu->inject;
    g.control = (uint32_t)control;
    if (ioctl(cpu->fd, KVM_SET_GUEST_DEBUG, &g) < 0)
        return -errno;
    cpu->inject = 0;
    cpu->guest_debug_control = control & ~(uint64_t)(KVM_GUESTDBG_INJECT_BP | KVM_GUESTDBG_INJECT_DB);
    cpu->dr7 = dr7;
    cpu->debug_generation = d->generation;
    cpu->guest_debug_dirty = false;
    return 0;
}

void vm_debug_clear(struct vm *vm)
{
    struct vm_debug *d = &vm->debug;
    while (d->nwatches) {
        const struct vm_watchpoint *w = &d->watches[d->nwatches - 1];
        vm_watch_drop(vm, w->type, w->addr, w->len);
    }
    bool trapped = false;
    for (size_t i = 0; i < d->nbps; i++) {
        const struct vm_breakpoint *bp = &d->bps[i];
        uint8_t *p = vm_planted_in_ram(bp) ? vm_mem_ptr(&vm->mem, bp->gpa, bp->len) : NULL;
        if (p)
            memcpy(p, bp->orig, bp->len);
        trapped |= page_trapped(bp);
    }
    d->nbps = 0;
    atomic_store(&d->npending, 0);
    if (trapped)
        vm_watch_apply_traps(vm);
    d->nhw_emulated = 0;
    for (unsigned i = 0; i < VM_NUM_DEBUG_REGS; i++)
        d->dr[i].used = false;
    d->generation++;
}

void vm_debug_info(const struct vm *vm, struct vm_debug_info *out)
{
    const struct vm_debug *d = &vm->debug;
    memset(out, 0, sizeof(*out));
    out->bp_method = d->bp_method;
    out->watch_method = d->watch_method;
    out->hw_exec = d->hw_exec;
    out->hw_data = d->hw_data && d->watch_method != VM_WATCH_PAGE_TRAPS;
    out->breakpoints = d->nbps;
    out->pending = atomic_load(&d->npending);
    out->watchpoints = d->nwatches;
    for (size_t i = 0; i < d->nwatches; i++)
        out->page_trapped += d->watches[i].dr < 0;
    out->pages = vm->mem.ntraps;
}

int vm_debug_configure(struct vm *vm, enum vm_bp_method bp, enum vm_watch_method watch)
{
    struct vm_debug *d = &vm->debug;
    if (d->nbps || d->nwatches)
        return -EBUSY;
    if (bp == VM_BP_HLT ? vm->board->info.irqchip
                        : bp != VM_BP_PAGE_TRAP && bp != VM_BP_PORT_IN && bp != vm->caps.sw_bp)
        return -ENOTSUP;
    d->bp_method = bp;
    d->watch_method = watch;
    d->generation++;
    return 0;
}

int vm_io_catch_add(struct vm *vm, uint16_t lo, uint16_t hi, enum vm_io_dir dir, unsigned *id)
{
    struct vm_debug *d = &vm->debug;
    if (lo > hi || dir < VM_IO_IN || dir > VM_IO_ANY)
        return -EINVAL;
    if (d->ncatches >= VM_MAX_IO_CATCHES)
        return -ENOSPC;
    struct vm_io_catch *c = &d->catches[d->ncatches++];
    *c = (struct vm_io_catch){.id = ++d->next_catch_id, .lo = lo, .hi = hi, .dir = dir};
    if (id)
        *id = c->id;
    /* A refusal leaves the ring on: writes to it are then seen late. */
    return vm_coalesce_refresh(vm);
}

int vm_io_catch_remove(struct vm *vm, unsigned id)
{
    struct vm_debug *d = &vm->debug;
    for (size_t i = 0; i < d->ncatches; i++) {
        if (d->catches[i].id == id) {
            memmove(&d->catches[i], &d->catches[i + 1], (d->ncatches - i - 1) * sizeof(d->catches[0]));
            d->ncatches--;
            vm_coalesce_refresh(vm);
            return 0;
        }
    }
    return -ENOENT;
}

size_t vm_io_catch_list(const struct vm *vm, struct vm_io_catch *out, size_t max)
{
    const struct vm_debug *d = &vm->debug;
    for (size_t i = 0; i < d->ncatches && i < max; i++)
        out[i] = d->catches[i];
    return d->ncatches;
}

bool vm_cpu_on_planted_breakpoint(struct vm_cpu *cpu)
{
    uint64_t pc;
    return cpu->vm->debug.nbps && vm_cpu_linear_pc(cpu, &pc) == 0 && vm_bp_find(cpu->vm, pc);
}
