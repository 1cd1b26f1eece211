/* What each KVM exit means: device accesses dispatched to the bus (and
 * the writes KVM batched in its coalesced ring), I/O catches, breakpoints
 * and watchpoints hit, steps, halts and internal errors. The run loop
 * (cpu.c) enters the guest and calls vm_cpu_handle_exit() after each exit. */
#include "decode.h"
#include "gate.h"
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#define RING_MAX ((4096 - sizeof(struct kvm_coalesced_mmio_ring)) / sizeof(struct kvm_coalesced_mmio))
#define BP_VECTOR 3
#define DB_VECTOR 1
#define OPCODE_HLT 0xf4
/* Steps of one visit of a breakpoint's lifted code page before the trap
 * goes back for a moment: the others are held meanwhile (gate.h). Fewer
 * when another vCPU waits for the gate. */
#define VISIT_MAX 256u
#define VISIT_MIN 64u

static void note_locked(struct vm *vm, uint64_t addr, bool port, const char *what)
{
    if (port) {
        if (vm->ports_seen[addr >> 3] & (1u << (addr & 7)))
            return;
        vm->ports_seen[addr >> 3] |= (uint8_t)(1u << (addr & 7));
        vm->log(vm->log_ctx, "guest %s port 0x%04llx, which has no device (further accesses not logged)",
                what, (unsigned long long)addr);
    } else {
        uint64_t page = (addr & VM_PAGE_MASK) + 1;
        for (size_t i = 0; i < vm->nmmio_seen; i++)
            if (vm->mmio_seen[i] == page)
                return;
        if (vm->nmmio_seen == sizeof(vm->mmio_seen) / sizeof(vm->mmio_seen[0]))
            return; /* enough said */
        vm->mmio_seen[vm->nmmio_seen++] = page;
        vm->log(vm->log_ctx,
                "guest %s unbacked address 0x%llx (reads give all ones; further accesses to "
                "this page not logged)",
                what, (unsigned long long)addr);
    }
}

/* Logs, once per port or page, an access no device answers (--trace). */
static void note(struct vm *vm, uint64_t addr, bool port, const char *what)
{
    if (!vm->trace || !vm->log)
        return;
    pthread_mutex_lock(&vm->note_lock);
    note_locked(vm, addr, port, what);
    pthread_mutex_unlock(&vm->note_lock);
}

/* One access to the port or MMIO bus. A bytewise device (an 8-bit ISA
 * device) sees a wide access as single bytes at consecutive addresses,
 * each of which may belong to another device. Returns 1 with *ev filled
 * when a device stops the guest. */
static int bus_access(struct vm_cpu *cpu, enum vm_bus_space space, uint64_t addr, uint8_t *data,
                      unsigned size, bool write, struct vm_event *ev)
{
    struct vm *vm = cpu->vm;
    const struct vm_bus_range *r = vm_bus_find(&vm->bus, space, addr);
    if (r && r->bytewise && size > 1) {
        for (unsigned b = 0; b < size; b++) {
            int got = bus_access(cpu, space, addr + b, data + b, 1, write, ev);
            if (got)
                return got;
        }
        return 0;
    }
    if (!r || !(write ? r->write != NULL : r->read != NULL)) {
        if (!r)
            note(vm, addr, space == VM_BUS_PIO, write ? "writes" : "reads");
        if (!write)
            memset(data, 0xff, size);
        return 0;
    }
    return write ? r->write(r->dev, addr - r->base, data, size, ev)
                 : r->read(r->dev, addr - r->base, data, size, ev);
}

/* Writes KVM batched in the coalesced ring, in guest order, before the
 * exit that follows them is handled. */
void vm_exits_drain_ring(struct vm_cpu *cpu)
{
    struct kvm_coalesced_mmio_ring *ring = cpu->ring;
    if (!ring)
        return;
    struct vm *vm = cpu->vm;
    if (__atomic_load_n(&ring->first, __ATOMIC_RELAXED) ==
        __atomic_load_n(&ring->last, __ATOMIC_ACQUIRE))
        return; /* the common case, without the lock */
    pthread_mutex_lock(&vm->ring_lock);
    uint32_t first = __atomic_load_n(&ring->first, __ATOMIC_RELAXED);
    while (first != __atomic_load_n(&ring->last, __ATOMIC_ACQUIRE)) {
        if (first >= RING_MAX)
            first = 0; /* a corrupted index must not walk out of the page */
        struct kvm_coalesced_mmio e = ring->coalesced_mmio[first];
        if (e.len >= 1 && e.len <= sizeof(e.data)) {
            struct vm_event ignored;
            bus_access(cpu, e.pio ? VM_BUS_PIO : VM_BUS_MMIO, e.phys_addr, e.data, e.len, true,
                       &ignored);
        }
        atomic_fetch_add_explicit(&vm->stats.coalesced, 1, memory_order_relaxed);
        first = (uint32_t)((first + 1) % RING_MAX);
        __atomic_store_n(&ring->first, first, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&vm->ring_lock);
}

void vm_collect_output(struct vm *vm)
{
    for (unsigned i = 0; i < vm->ncpus; i++)
        vm_exits_drain_ring(&vm->cpus[i]);
}

/* The first catch on ports [port, port+size) in this direction, or NULL. */
static struct vm_io_catch *io_catch(struct vm *vm, uint16_t port, unsigned size, bool out)
{
    for (size_t i = 0; i < vm->debug.ncatches; i++) {
        struct vm_io_catch *c = &vm->debug.catches[i];
        if ((c->dir & (out ? VM_IO_OUT : VM_IO_IN)) && c->lo <= port + size - 1 && c->hi >= port)
            return c;
    }
    return NULL;
}

/* A read of VM_BP_PORT by a planted `in $VM_BP_PORT,%al` at a breakpoint:
 * a hit. KVM finishes the in before the stop is reported (see the top of
 * this file); settle() then puts rip back on the breakpoint and rax back as
 * it was, so the guest never sees the trap. */
static int port_breakpoint(struct vm_cpu *cpu, struct vm_event *ev)
{
    struct vm *vm = cpu->vm;
    uint64_t pc;
    int err = vm_cpu_linear_pc(cpu, &pc);
    if (err)
        return err;
    const struct vm_breakpoint *bp = vm_bp_find(vm, pc);
    if (!bp || bp->len != 2 || vm->debug.bp_method != VM_BP_PORT_IN)
        return 0; /* the guest's own read of the port */
    cpu->bp_io_fixup = true;
    cpu->bp_io_rip = cpu->rc.regs.rip;
    cpu->bp_io_rax = cpu->rc.regs.rax;
    atomic_fetch_add_explicit(&vm->stats.breakpoint_hits, 1, memory_order_relaxed);
    ev->type = VM_EVENT_BREAKPOINT;
    ev->u.bp.addr = pc;
    ev->u.bp.hardware = bp->hardware && !bp->software;
    return 1;
}

static int handle_io(struct vm_cpu *cpu, struct vm_event *ev)
{
    struct vm *vm = cpu->vm;
    struct kvm_run *run = cpu->run;
    unsigned size = run->io.size;
    uint64_t bytes = (uint64_t)size * run->io.count;
    if ((size != 1 && size != 2 && size != 4) || run->io.data_offset > vm->run_size ||
        bytes > vm->run_size - run->io.data_offset)
        return 0; /* not something KVM produces; refuse to touch memory */
    atomic_fetch_add_explicit(&vm->stats.io_exits, 1, memory_order_relaxed);
    if (run->io.port == VM_BP_PORT && run->io.direction == KVM_EXIT_IO_IN && size == 1 &&
        run->io.count == 1 && vm->debug.nbps) {
        int got = port_breakpoint(cpu, ev);
        if (got)
            return got;
    }
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    bool out = run->io.direction == KVM_EXIT_IO_OUT;
    uint16_t port = run->io.port;
    int got = 0;
    bool caught = false;
    /* Every element of a string instruction is done in this one exit. */
    for (uint32_t i = 0; i < run->io.count; i++, data += size) {
        struct vm_event dev = {0};
        int r = bus_access(cpu, VM_BUS_PIO, port, data, size, out, &dev);
        if (r < 0)
            return r;
        if (r && !got) {
            *ev = dev;
            got = 1;
        }
        struct vm_io_catch *c = caught || !vm->debug.ncatches ? NULL : io_catch(vm, port, size, out);
        if (c) {
            if (got) {
                /* The device's stop (the guest ending) comes after this. */
                cpu->pending = *ev;
                cpu->has_pending = true;
            }
            uint32_t v = 0;
            memcpy(&v, data, size);
            c->hits++;
            ev->type = VM_EVENT_IO;
            ev->u.io.port = port;
            ev->u.io.out = out;
            ev->u.io.size = (uint8_t)size;
            ev->u.io.value = v;
            ev->u.io.catch_id = c->id;
            caught = true;
            got = 1;
        }
    }
    return got;
}

/* The instruction at rip both reads and writes memory (xchg, a locked
 * add, cmpxchg...). */
static bool rmw_at_rip(struct vm_cpu *cpu)
{
    uint64_t pc;
    uint8_t insn[15];
    size_t got = 0;
    if (vm_cpu_linear_pc(cpu, &pc))
        return false;
    vm_read_linear(cpu, pc, insn, sizeof(insn), &got);
    struct vm_access acc[VM_DECODE_MAX_ACCESSES];
    size_t n = vm_decode_access(insn, got, &cpu->rc.regs, &cpu->rc.sregs, acc);
    for (size_t i = 0; i < n; i++)
        if (acc[i].read && acc[i].write)
            return true;
    return false;
}

static int handle_mmio(struct vm_cpu *cpu, struct vm_event *ev)
{
    struct vm *vm = cpu->vm;
    struct kvm_run *run = cpu->run;
    uint64_t gpa = run->mmio.phys_addr;
    uint32_t len = run->mmio.len;
    atomic_fetch_add_explicit(&vm->stats.mmio_exits, 1, memory_order_relaxed);
    if (len == 0 || len > sizeof(run->mmio.data))
        return 0;
    uint8_t *ram = vm_mem_ptr(&vm->mem, gpa, len);
    if (!ram)
        return bus_access(cpu, VM_BUS_MMIO, gpa, run->mmio.data, len, run->mmio.is_write, ev);
    /* A trapped page of RAM: do the access on the real memory, then see
     * whether it touched watched bytes. KVM splits a read-modify-write
     * into a read exit and a write exit, and a guest's lock on the page
     * relies on nothing coming in between: with other vCPUs, the read
     * waits until they are out of the guest, and the instruction is
     * completed before they may go on (the run loop, cpu->rmw_held). */
    atomic_fetch_add_explicit(&vm->stats.watch_traps, 1, memory_order_relaxed);
    if (!run->mmio.is_write && vm->ncpus > 1 && !cpu->rmw_held && !vm_gate_held(cpu) &&
        rmw_at_rip(cpu)) {
        vm_gate_exclusive(vm);
        cpu->rmw_held = vm_gate_held(cpu);
    }
    if (run->mmio.is_write) {
        memcpy(ram, run->mmio.data, len);
        vm_mem_mark_dirty(&vm->mem, gpa, len); /* KVM's log cannot see it */
    } else
        memcpy(run->mmio.data, ram, len);
    uint64_t addr;
    enum vm_watch_type type;
    if (vm_watch_match(vm, gpa, len, run->mmio.is_write, &addr, &type)) {
        atomic_fetch_add_explicit(&vm->stats.watch_hits, 1, memory_order_relaxed);
        ev->type = VM_EVENT_WATCH;
        ev->u.watch.addr = addr;
        ev->u.watch.type = type;
        return 1;
    }
    return 0;
}

static int handle_hlt(struct vm_cpu *cpu, struct vm_event *ev)
{
    struct vm *vm = cpu->vm;
    atomic_fetch_add_explicit(&vm->stats.hlt_exits, 1, memory_order_relaxed);
    if (vm->debug.bp_method == VM_BP_HLT && vm->debug.nbps) {
        uint64_t pc;
        int err = vm_cpu_linear_pc(cpu, &pc);
        if (err)
            return err;
        const struct vm_breakpoint *bp = vm_bp_find(vm, pc - 1);
        if (bp) {
            /* Our planted hlt: put rip back on the breakpoint. */
            cpu->rc.regs.rip -= 1;
            cpu->rc.dirty |= VM_RC_REGS;
            atomic_fetch_add_explicit(&vm->stats.breakpoint_hits, 1, memory_order_relaxed);
            ev->type = VM_EVENT_BREAKPOINT;
            ev->u.bp.addr = pc - 1;
            ev->u.bp.hardware = bp->hardware && !bp->software;
            return 1;
        }
    }
    cpu->halted = true;
    ev->type = VM_EVENT_HALT;
    return 1;
}

/* Gives the guest an exception of its own that reached us only because
 * guest debugging is on: the int3 of a guest that uses int3 itself (Linux
 * does, for jump labels and kprobes), or a #DB we did not cause. KVM
 * injects it at the next entry (KVM_GUESTDBG_INJECT_BP/DB). */
static int reinject(struct vm_cpu *cpu, unsigned vector, uint64_t dr6)
{
    struct vm *vm = cpu->vm;
    if (vector == DB_VECTOR) {
        /* The guest's handler reads DR6 to learn why. */
        struct kvm_debugregs dr;
        if (ioctl(cpu->fd, KVM_GET_DEBUGREGS, &dr) < 0)
            return -errno;
        dr.dr6 = (dr.dr6 & ~0xf00full) | (dr6 & 0xf00full) | 0xffff0ff0ull;
        if (ioctl(cpu->fd, KVM_SET_DEBUGREGS, &dr) < 0)
            return -errno;
    }
    cpu->inject = vector == BP_VECTOR ? KVM_GUESTDBG_INJECT_BP : KVM_GUESTDBG_INJECT_DB;
    cpu->guest_debug_dirty = true;
    atomic_fetch_add_explicit(&vm->stats.reinjected, 1, memory_order_relaxed);
    return 0;
}

/* A rep stos (64-bit mode, addresses ascending) at pc, done here at
 * once: stepped, it exits once per element, and Linux clears its whole
 * bss with one (clear_bss, on a page a start_kernel breakpoint traps).
 * Only without watchpoints, whose hits it would not see. True when done. */
static bool rep_stos_at_once(struct vm_cpu *cpu, uint64_t pc)
{
    uint8_t b[3];
    if (cpu->vm->debug.nwatches || vm_read_linear(cpu, pc, b, sizeof(b), NULL) ||
        vm_regcache_fetch(&cpu->rc, VM_RC_REGS | VM_RC_SREGS))
        return false;
    size_t len = 2, size;
    bool rexw = b[1] == 0x48;
    uint8_t op = rexw ? b[2] : b[1];
    if (b[0] != 0xf3 || (op != 0xaa && op != 0xab))
        return false;
    len += rexw;
    size = op == 0xaa ? 1 : rexw ? 8 : 4;
    struct kvm_regs *r = &cpu->rc.regs;
    bool long64 = (cpu->rc.sregs.efer & (1u << 10)) && cpu->rc.sregs.cs.l;
    if (!long64 || (r->rflags & (1u << 10)) || !r->rcx || r->rcx > (64u << 20) / size)
        return false;
    uint8_t chunk[4096];
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (uint8_t)(r->rax >> (8 * (i % size)));
    uint64_t total = r->rcx * size;
    for (uint64_t off = 0; off < total;) {
        size_t n = total - off < sizeof(chunk) ? (size_t)(total - off) : sizeof(chunk);
        size_t done = 0;
        /* Elements not written yet are written again by the steps. */
        if (vm_write_linear(cpu, r->rdi + off, chunk, n, &done) || done != n)
            return false;
        off += n;
    }
    r->rdi += total;
    r->rcx = 0;
    r->rip += len;
    cpu->rc.dirty |= VM_RC_REGS;
    return true;
}

/* A step through a lifted code page (struct vm_cpu_step): -1 to go on
 * stepping while rip stays on the page; 1, with the event, when it reaches
 * a breakpoint there; 0 to end the visit, and the caller puts the trap
 * back (reporting a watched access the last step made). */
static int visit_step(struct vm_cpu *cpu, struct vm_event *ev)
{
    struct vm *vm = cpu->vm;
    struct vm_cpu_step *d = &cpu->step;
    uint64_t pc, gpa;
    if (d->visit_watched && vm_watch_visit_hit(cpu))
        return 0;
    if (vm_cpu_linear_pc(cpu, &pc) || vm_translate(cpu, pc, &gpa) ||
        (gpa & VM_PAGE_MASK) != d->lifted[0].gpa)
        return 0;
    const struct vm_breakpoint *bp = vm_bp_find(vm, pc);
    if (!bp || bp->gpa != gpa) {
        /* The other vCPUs wait while this one visits: it gives the page
         * back now and then, and before a hlt, which could wait in KVM for
         * an interrupt only another vCPU would send. */
        uint8_t op = 0;
        unsigned n = ++d->visit_steps;
        if (n >= VISIT_MAX || (n >= VISIT_MIN && vm_gate_contended(vm)) ||
            (vm_read_linear(cpu, pc, &op, 1, NULL) == 0 && op == OPCODE_HLT))
            return 0;
        if (d->visit_watched)
            vm_watch_visit_next(cpu);
        else if (rep_stos_at_once(cpu, pc))
            return visit_step(cpu, ev); /* a breakpoint may follow it */
        return -1;
    }
    uint64_t a;
    enum vm_watch_type t;
    vm_watch_unlift(cpu, &a, &t);
    atomic_fetch_add_explicit(&vm->stats.breakpoint_hits, 1, memory_order_relaxed);
    ev->type = VM_EVENT_BREAKPOINT;
    ev->u.bp.addr = pc;
    ev->u.bp.hardware = bp->hardware && !bp->software;
    return 1;
}

static int handle_debug(struct vm_cpu *cpu, enum vm_run_mode mode, struct vm_event *ev)
{
    struct vm *vm = cpu->vm;
    const struct kvm_debug_exit_arch *d = &cpu->run->debug.arch;
    atomic_fetch_add_explicit(&vm->stats.debug_exits, 1, memory_order_relaxed);
    if (d->exception == BP_VECTOR) {
        uint64_t pc = d->pc, cur;
        const struct vm_breakpoint *bp = vm_bp_find(vm, pc);
        int err = vm_cpu_linear_pc(cpu, &cur);
        if (err)
            return err;
        /* KVM leaves rip on the int3 (VMX and SVM alike); a host that
         * reports the trap after it gets rip moved back, for gdb and for
         * KVM's own re-injection, which advances it. */
        if (cur == pc + 1) {
            cpu->rc.regs.rip -= 1;
            cpu->rc.dirty |= VM_RC_REGS;
        }
        if (!bp)
            return reinject(cpu, BP_VECTOR, 0);
        atomic_fetch_add_explicit(&vm->stats.breakpoint_hits, 1, memory_order_relaxed);
        ev->type = VM_EVENT_BREAKPOINT;
        ev->u.bp.addr = pc;
        ev->u.bp.hardware = bp->hardware && !bp->software;
        return 1;
    }
    if (d->exception != DB_VECTOR) {
        /* KVM reports only #BP and #DB this way. */
        ev->type = VM_EVENT_INTERNAL_ERROR;
        memset(&ev->u.internal, 0, sizeof(ev->u.internal));
        ev->u.internal.exit_reason = KVM_EXIT_DEBUG;
        ev->u.internal.ndata = 1;
        ev->u.internal.data[0] = d->exception;
        return 1;
    }
    for (unsigned i = 0; i < VM_NUM_DEBUG_REGS; i++) {
        if (!(d->dr6 & (1u << i)) || !vm->debug.dr[i].used)
            continue;
        if (vm->debug.dr[i].rw == 0) {
            atomic_fetch_add_explicit(&vm->stats.breakpoint_hits, 1, memory_order_relaxed);
            ev->type = VM_EVENT_BREAKPOINT;
            ev->u.bp.addr = vm->debug.dr[i].addr;
            ev->u.bp.hardware = true;
            return 1;
        }
        if (vm_watch_dr_hit(vm, i, &ev->u.watch.addr, &ev->u.watch.type)) {
            atomic_fetch_add_explicit(&vm->stats.watch_hits, 1, memory_order_relaxed);
            ev->type = VM_EVENT_WATCH;
            return 1;
        }
    }
    /* A #DB we did not ask for: the guest's own trap flag or ICEBP. */
    if (!cpu->single_step)
        return reinject(cpu, DB_VECTOR, d->dr6);
    /* Otherwise the single step we asked for. */
    if (cpu->step.stepping_over) {
        vm_bp_replant(vm, cpu->step.over);
        cpu->step.stepping_over = false;
    }
    if (cpu->step.visiting) {
        int got = visit_step(cpu, ev);
        if (got)
            return got > 0 ? 1 : 0; /* a hit, or still on the page */
    }
    if (cpu->step.nlifted) {
        if (vm_watch_unlift(cpu, &ev->u.watch.addr, &ev->u.watch.type)) {
            atomic_fetch_add_explicit(&vm->stats.watch_hits, 1, memory_order_relaxed);
            ev->type = VM_EVENT_WATCH;
            return 1;
        }
    }
    if (mode == VM_RUN_STEP) {
        atomic_fetch_add_explicit(&vm->stats.steps, 1, memory_order_relaxed);
        ev->type = VM_EVENT_STEP;
        return 1;
    }
    return 0;
}

/* KVM queues #UD for the guest when it reports an emulation failure; when
 * kvmstub deals with the cause itself, the guest must not get it. */
static int drop_pending_exception(struct vm_cpu *cpu)
{
    struct kvm_vcpu_events e;
    if (ioctl(cpu->fd, KVM_GET_VCPU_EVENTS, &e) < 0)
        return -errno;
    if (!e.exception.injected && !e.exception.pending)
        return 0;
    e.exception.injected = 0;
    e.exception.pending = 0;
    e.exception.nr = 0;
    e.exception.has_error_code = 0;
    e.exception_has_payload = 0;
    e.flags &= KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM |
               KVM_VCPUEVENT_VALID_PAYLOAD | KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
    return ioctl(cpu->fd, KVM_SET_VCPU_EVENTS, &e) < 0 ? -errno : 0;
}

/* A hlt fetched from a trapped page, on a board where KVM waits for the
 * interrupt itself: done here (rip past it, the vCPU halted in KVM), since
 * stepping it with the page lifted would hold the other vCPUs out of the
 * guest until an interrupt comes, perhaps one only they would send. */
static int halt_in_kvm(struct vm_cpu *cpu)
{
    int err = vm_regcache_fetch(&cpu->rc, VM_RC_REGS);
    if (err || (err = drop_pending_exception(cpu)))
        return err;
    cpu->rc.regs.rip += 1;
    cpu->rc.dirty |= VM_RC_REGS;
    if ((err = vm_regcache_flush(&cpu->rc)))
        return err;
    struct kvm_vcpu_events e;
    if (ioctl(cpu->fd, KVM_GET_VCPU_EVENTS, &e) < 0)
        return -errno;
    if (e.interrupt.shadow) {
        /* An sti just before: the hlt ends the shadow it cast. */
        e.interrupt.shadow = 0;
        e.flags = KVM_VCPUEVENT_VALID_SHADOW;
        if (ioctl(cpu->fd, KVM_SET_VCPU_EVENTS, &e) < 0)
            return -errno;
    }
    struct kvm_mp_state mp = {.mp_state = KVM_MP_STATE_HALTED};
    return ioctl(cpu->fd, KVM_SET_MP_STATE, &mp) < 0 ? -errno : 0;
}

/* Code fetched from a trapped page, or an instruction KVM cannot emulate
 * against one: run it once with the traps lifted, the other vCPUs held
 * (vm_watch_lift). 1 when it is taken care of, 0 when the error is real. */
static int lift_for_step(struct vm_cpu *cpu, enum vm_run_mode mode, uint64_t pc, int *err)
{
    struct vm *vm = cpu->vm;
    /* Nothing changes the slots while this vCPU is not held (gate.h): what
     * it exited on is what the table says now. */
    uint64_t layout = vm->mem.layout_changes, gpa;
    bool fetch = vm_translate(cpu, pc, &gpa) == 0 && vm_mem_trap(&vm->mem, gpa) == VM_TRAP_ALL;
    uint8_t op = 0;
    if (fetch && vm->board->info.irqchip && vm_mem_read(&vm->mem, gpa, &op, 1) == 0 &&
        op == OPCODE_HLT) {
        *err = halt_in_kvm(cpu);
        return 1;
    }
    /* The predicted accesses are read before lifting, while the cached
     * registers are those of the instruction about to run. */
    vm_watch_predict(cpu);
    if ((*err = vm_watch_lift(cpu, fetch ? gpa : ~0ull)))
        return 1;
    /* Code on a trapped page: run through it step by step, looking for
     * the watched accesses of each step where a watchpoint covers it. */
    cpu->step.visiting = fetch && mode == VM_RUN_CONTINUE && cpu->step.nlifted == 1;
    cpu->step.visit_watched = cpu->step.visiting && vm_watch_covers(vm, gpa);
    cpu->step.visit_steps = 0;
    if (cpu->step.nlifted) {
        *err = drop_pending_exception(cpu);
        return 1;
    }
    cpu->step.predicted = false;
    cpu->step.visiting = false;
    if (vm->mem.layout_changes != layout) {
        /* Another vCPU moved the traps while this one waited to lift them:
         * what it exited on is gone, so it runs the instruction again. */
        *err = drop_pending_exception(cpu);
        return 1;
    }
    return 0;
}

static int handle_internal_error(struct vm_cpu *cpu, enum vm_run_mode mode, struct vm_event *ev)
{
    struct vm *vm = cpu->vm;
    struct kvm_run *run = cpu->run;
    uint64_t pc;
    int err = vm_cpu_linear_pc(cpu, &pc);
    if (err)
        return err;
    const struct vm_breakpoint *bp = vm_bp_find(vm, pc);
    /* Code fetched at a breakpoint whose page is trapped, or an int3 some
     * nested hosts report this way. */
    if (bp && bp->gpa != VM_BP_PENDING &&
        ((vm->debug.bp_method == VM_BP_INT3_INTERNAL_ERROR && bp->len) ||
         (!bp->len && !cpu->step.nlifted &&
          run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION))) {
        if ((err = drop_pending_exception(cpu)))
            return err;
        atomic_fetch_add_explicit(&vm->stats.breakpoint_hits, 1, memory_order_relaxed);
        ev->type = VM_EVENT_BREAKPOINT;
        ev->u.bp.addr = pc;
        ev->u.bp.hardware = bp->hardware && !bp->software;
        return 1;
    }
    /* Code fetched from the page of a breakpoint predicted on a kernel's
     * text (debug.c): the kernel runs mapped now, so the breakpoint moves
     * to its real place and the instruction runs again, instead of the
     * whole page (clear_bss's rep stos) running step by step. */
    if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION && !cpu->step.nlifted &&
        vm_bp_predicted(vm)) {
        uint64_t layout = vm->mem.layout_changes;
        if ((err = vm_bp_plant_pending(cpu)))
            return err;
        if (vm->mem.layout_changes != layout)
            return drop_pending_exception(cpu);
    }
    if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION && vm->mem.ntraps &&
        !cpu->step.nlifted && lift_for_step(cpu, mode, pc, &err))
        return err;
    vm_internal_error_event(cpu, pc, ev);
    return 1;
}

/* Handles the exit in cpu->run. Returns 1 with *ev filled when the
 * debugger must hear of it, 0 to keep running, or a negative errno. */
int vm_cpu_handle_exit(struct vm_cpu *cpu, enum vm_run_mode mode, struct vm_event *ev)
{
    struct kvm_run *run = cpu->run;
    int got;
    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        cpu->needs_completion = true;
        got = handle_io(cpu, ev);
        break;
    case KVM_EXIT_MMIO:
        cpu->needs_completion = true;
        got = handle_mmio(cpu, ev);
        break;
    case KVM_EXIT_HLT:
        return handle_hlt(cpu, ev);
    case KVM_EXIT_DEBUG:
        return handle_debug(cpu, mode, ev);
    case KVM_EXIT_SHUTDOWN:
        ev->type = VM_EVENT_SHUTDOWN;
        return 1;
    case KVM_EXIT_FAIL_ENTRY:
        ev->type = VM_EVENT_ENTRY_FAILED;
        ev->u.entry.reason = run->fail_entry.hardware_entry_failure_reason;
        return 1;
    case KVM_EXIT_INTERNAL_ERROR:
        cpu->guest_debug_dirty = true;
        return handle_internal_error(cpu, mode, ev);
    case KVM_EXIT_INTR:
        return 0;
    default:
        ev->type = VM_EVENT_INTERNAL_ERROR;
        memset(&ev->u.internal, 0, sizeof(ev->u.internal));
        ev->u.internal.exit_reason = run->exit_reason;
        return 1;
    }
    const struct vm_event *ended =
        got > 0 && (ev->type == VM_EVENT_DEBUG_EXIT || ev->type == VM_EVENT_RESET) ? ev
        : cpu->has_pending &&
                (cpu->pending.type == VM_EVENT_DEBUG_EXIT || cpu->pending.type == VM_EVENT_RESET)
            ? &cpu->pending
            : NULL;
    if (ended) {
        /* Every vCPU's next run ends at once: the machine is over. */
        cpu->vm->exit_type = ended->type;
        cpu->vm->exit_status = ended->type == VM_EVENT_DEBUG_EXIT ? ended->u.exit.status : 0;
        atomic_store(&cpu->vm->exited, true);
        cpu->has_pending = false;
    }
    return got;
}
