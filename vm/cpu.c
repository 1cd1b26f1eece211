/* The vCPU run loop: KVM_RUN, device exits, debug exits, kicking.
 *
 * Invariant kept at every return from vm_cpu_run(): KVM holds no half-done
 * instruction. PIO and MMIO exits leave one (KVM finishes the instruction on
 * the next KVM_RUN); before returning we re-enter with immediate_exit set,
 * which completes it without running further, so a debugger that changes
 * registers at the stop never races KVM's completion of an old instruction. */
#include "decode.h"
#include "gate.h"
#include "internal.h"
#include "serial.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#define KICK_SIGNAL SIGUSR1
#define RING_MAX ((4096 - sizeof(struct kvm_coalesced_mmio_ring)) / sizeof(struct kvm_coalesced_mmio))
#define OUTPUT_DELAY_NS 5000000ull /* longest time guest output waits for a batch */
#define DR6_BS (1ull << 14)
#define BP_VECTOR 3
#define DB_VECTOR 1
#define OPCODE_HLT 0xf4
/* Steps of one visit of a breakpoint's lifted code page before the trap
 * goes back for a moment: the others are held meanwhile (gate.h). Fewer
 * when another vCPU waits for the gate. */
#define VISIT_MAX 256u
#define VISIT_MIN 64u

const char *vm_event_name(enum vm_event_type type)
{
    switch (type) {
    case VM_EVENT_HALT: return "halt";
    case VM_EVENT_SERIAL: return "serial output";
    case VM_EVENT_DEBUG_EXIT: return "debug exit";
    case VM_EVENT_BREAKPOINT: return "breakpoint";
    case VM_EVENT_STEP: return "step";
    case VM_EVENT_WATCH: return "watchpoint";
    case VM_EVENT_INTERRUPTED: return "interrupted";
    case VM_EVENT_SHUTDOWN: return "shutdown (triple fault)";
    case VM_EVENT_RESET: return "reset";
    case VM_EVENT_ENTRY_FAILED: return "entry failed";
    case VM_EVENT_INTERNAL_ERROR: return "internal error";
    case VM_EVENT_IO: return "port I/O catch";
    }
    return "?";
}

static void kick_handler(int sig)
{
    (void)sig; /* its only job is to make KVM_RUN return EINTR */
}

static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kick_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: KVM_RUN must come back */
    sigaction(KICK_SIGNAL, &sa, NULL);
}

int vm_cpu_bind_thread(struct vm_cpu *cpu)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_handler);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, KICK_SIGNAL);
    int err = pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    if (err)
        return -err;
    cpu->thread = pthread_self();
    atomic_store(&cpu->thread_known, true);
    return 0;
}

void vm_cpu_kick(struct vm_cpu *cpu)
{
    /* Order matters: the flag first, then immediate_exit for a KVM_RUN that
     * is about to start, then the signal for one already running. The run
     * loop clears immediate_exit before it reads the flag, so whichever way
     * the two threads interleave, the kick is seen. */
    atomic_store(&cpu->kick, true);
    __atomic_store_n(&cpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    if (atomic_load(&cpu->thread_known))
        pthread_kill(cpu->thread, KICK_SIGNAL);
}

void vm_cpu_clear_kick(struct vm_cpu *cpu)
{
    atomic_store(&cpu->kick, false);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

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

/* Rank of an event when two turn up for one stop: real stops beat an
 * interruption, which beats a mere output flush. */
static int rank(enum vm_event_type t)
{
    return t == VM_EVENT_SERIAL ? 0 : t == VM_EVENT_INTERRUPTED ? 1 : 2;
}

static void offer(struct vm_event *ev, const struct vm_event *e)
{
    if (rank(e->type) > rank(ev->type))
        *ev = *e;
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
static void drain_ring(struct vm_cpu *cpu)
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
        drain_ring(&vm->cpus[i]);
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
    if (fetch && vm->board->irqchip && vm_mem_read(&vm->mem, gpa, &op, 1) == 0 &&
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

static int enter(struct vm_cpu *cpu, bool immediate)
{
    cpu->needs_completion = false; /* any KVM_RUN completes it */
    if (immediate)
        __atomic_store_n(&cpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    int r = ioctl(cpu->fd, KVM_RUN, 0);
    int e = errno;
    __atomic_store_n(&cpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
    vm_regcache_invalidate(&cpu->rc);
    atomic_fetch_add_explicit(&cpu->vm->stats.exits, 1, memory_order_relaxed);
    return r < 0 ? -e : 0;
}

/* Completes a PIO/MMIO instruction KVM is holding, without running the
 * guest further (see the top of this file). Exits it produces on the way
 * (the rest of a string instruction, a single-step trap) are handled and
 * may raise *ev. */
static int finish(struct vm_cpu *cpu, enum vm_run_mode mode, struct vm_event *ev)
{
    while (cpu->needs_completion) {
        cpu->needs_completion = false;
        int r = vm_regcache_flush(&cpu->rc);
        if (r)
            return r;
        r = enter(cpu, true);
        if (r == -EINTR || r == -EAGAIN)
            break;
        if (r)
            return r;
        struct vm_event e = {.type = VM_EVENT_SERIAL};
        drain_ring(cpu);
        r = vm_cpu_handle_exit(cpu, mode, &e);
        if (r < 0)
            return r;
        if (r)
            offer(ev, &e);
    }
    return 0;
}

/* Everything that must hold whenever control goes back to the caller. */
static int settle(struct vm_cpu *cpu, enum vm_run_mode mode, struct vm_event *ev)
{
    struct vm *vm = cpu->vm;
    int err = finish(cpu, mode, ev);
    if (err)
        return err;
    if (cpu->bp_io_fixup) {
        cpu->bp_io_fixup = false;
        if ((err = vm_regcache_fetch(&cpu->rc, VM_RC_REGS)))
            return err;
        cpu->rc.regs.rip = cpu->bp_io_rip;
        cpu->rc.regs.rax = cpu->bp_io_rax;
        cpu->rc.dirty |= VM_RC_REGS;
    }
    if (cpu->step.stepping_over) {
        vm_bp_replant(vm, cpu->step.over);
        cpu->step.stepping_over = false;
    }
    if (cpu->step.nlifted) {
        struct vm_event e = {.type = VM_EVENT_WATCH};
        if (vm_watch_unlift(cpu, &e.u.watch.addr, &e.u.watch.type))
            offer(ev, &e);
    }
    cpu->last_output_ns = 0;
    return vm_regcache_flush(&cpu->rc);
}

static bool output_due(struct vm_cpu *cpu, enum vm_run_mode mode)
{
    struct vm *vm = cpu->vm;
    if (!vm_serial_tx_pending(vm->console))
        return false;
    if (mode == VM_RUN_STEP)
        return false; /* one instruction; the step's stop carries it out */
    uint64_t t = now_ns();
    if (!cpu->last_output_ns) {
        cpu->last_output_ns = t;
        return false;
    }
    return t - cpu->last_output_ns >= OUTPUT_DELAY_NS;
}

/* Before entering the guest for a new run: step off a breakpoint under rip,
 * so resuming from it does not hit it again. A planted one is taken out for
 * that step; a DR execution breakpoint is left out of DR7 for it
 * (vm_debug_apply). RFLAGS.RF is not enough for the latter: KVM checks
 * guest-debug breakpoints itself on instructions it emulates, without
 * looking at RF, and some hosts (kvm-pvm) never honour it. */
static int step_off_breakpoint(struct vm_cpu *cpu)
{
    struct vm *vm = cpu->vm;
    bool exec_slots = false;
    for (unsigned i = 0; i < VM_NUM_DEBUG_REGS; i++)
        exec_slots |= vm->debug.dr[i].used && vm->debug.dr[i].rw == 0;
    if (cpu->step.stepping_over || (!vm->debug.nbps && !exec_slots))
        return 0;
    uint64_t pc;
    int err = vm_cpu_linear_pc(cpu, &pc);
    if (err)
        return err;
    bool planted = vm_bp_find(vm, pc) != NULL;
    if (planted || vm_debugreg_exec_slot(vm, pc) >= 0) {
        if (planted && (err = vm_bp_unplant(cpu, pc)))
            return err;
        cpu->step.over = pc;
        cpu->step.stepping_over = true;
    }
    return 0;
}

/* Single-stepping a hlt. On a board without interrupts KVM completes the
 * instruction and reports the step's #DB instead of the halt (Linux 5.x
 * and later; nested hosts differ), so the halt would be lost and the guest
 * would run on; the result is known without running it: the CPU halts
 * after the hlt. With an irqchip the vCPU would wait in the kernel for an
 * interrupt that a step holds back (KVM_GUESTDBG_BLOCKIRQ) or that would
 * take the step into its handler: the step completes the hlt as if the
 * CPU had been woken, and stops after it. */
static bool step_is_hlt(struct vm_cpu *cpu)
{
    struct vm *vm = cpu->vm;
    uint64_t pc;
    uint8_t op;
    if (vm_cpu_linear_pc(cpu, &pc) || vm_bp_find(vm, pc) ||
        vm_read_linear(cpu, pc, &op, 1, NULL))
        return false;
    return op == OPCODE_HLT;
}

/* A step of a vCPU that KVM holds halted (the hlt done, rip after it)
 * runs the next instruction at once, as if an interrupt had woken it:
 * otherwise it would wait for an interrupt the step holds back. */
static int wake_for_step(struct vm_cpu *cpu)
{
    struct kvm_mp_state mp;
    if (ioctl(cpu->fd, KVM_GET_MP_STATE, &mp) < 0)
        return -errno;
    if (mp.mp_state != KVM_MP_STATE_HALTED)
        return 0;
    mp.mp_state = KVM_MP_STATE_RUNNABLE;
    return ioctl(cpu->fd, KVM_SET_MP_STATE, &mp) < 0 ? -errno : 0;
}

int vm_cpu_begin_run(struct vm_cpu *cpu)
{
    int err = step_off_breakpoint(cpu);
    if (!err && !cpu->step.nlifted)
        err = vm_watch_refresh(cpu);
    if (!err && !cpu->step.nlifted)
        err = vm_bp_plant_pending(cpu);
    return err;
}

/* Where KVM cannot hold interrupts back during a step
 * (KVM_GUESTDBG_BLOCKIRQ), an interrupt due at the entry would be taken
 * first and the step would end in its handler. An STI interrupt shadow
 * blocks maskable interrupts for exactly one instruction, which is what a
 * step needs; it is architectural state KVM lets userspace set
 * (KVM_SET_VCPU_EVENTS), valid only with RFLAGS.IF set (with IF clear
 * nothing can interrupt the step anyway). */
static int shadow_step(struct vm_cpu *cpu)
{
    int err = vm_regcache_fetch(&cpu->rc, VM_RC_REGS);
    if (err)
        return err;
    if (!(cpu->rc.regs.rflags & (1u << 9)))
        return 0;
    struct kvm_vcpu_events e;
    if (ioctl(cpu->fd, KVM_GET_VCPU_EVENTS, &e) < 0)
        return -errno;
    if (e.interrupt.shadow)
        return 0;
    e.interrupt.shadow = KVM_X86_SHADOW_INT_STI;
    e.flags = KVM_VCPUEVENT_VALID_SHADOW;
    return ioctl(cpu->fd, KVM_SET_VCPU_EVENTS, &e) < 0 ? -errno : 0;
}

int vm_cpu_prepare(struct vm_cpu *cpu, bool step)
{
    /* KVM adds the trap flag for a step only when the debug state is set,
     * at the rip of that moment, and loses it whenever rflags are written
     * without it: a stepped popf or iretq, an instruction KVM emulates (MMIO,
     * string I/O), a new rip from the debugger. The step after one of those
     * ran on (after an interrupt handler's iretq it never came back). So
     * every step sets the debug state again, after the registers: one ioctl
     * per step, none on the exits of a running guest. */
    if (step)
        cpu->guest_debug_dirty = true;
    int err = vm_regcache_flush(&cpu->rc);
    if (!err)
        err = vm_debug_apply(cpu, step);
    if (!err && step && cpu->vm->board->irqchip &&
        !(cpu->vm->caps.guest_debug_flags & KVM_GUESTDBG_BLOCKIRQ))
        err = shadow_step(cpu);
    return err;
}

static int run(struct vm_cpu *cpu, enum vm_run_mode mode, struct vm_event *ev);

int vm_cpu_run(struct vm_cpu *cpu, enum vm_run_mode mode, struct vm_event *ev)
{
    vm_gate_enter(cpu);
    int err = run(cpu, mode, ev);
    vm_gate_leave(cpu);
    return err;
}

static int run(struct vm_cpu *cpu, enum vm_run_mode mode, struct vm_event *ev)
{
    struct vm *vm = cpu->vm;
    int err;
    memset(ev, 0, sizeof(*ev));
    if (atomic_load(&vm->exited)) {
        ev->type = vm->exit_type;
        ev->u.exit.status = vm->exit_status;
        return 0;
    }
    if (cpu->has_pending) {
        cpu->has_pending = false;
        *ev = cpu->pending;
        return 0;
    }
    if (cpu->halted) {
        /* Nothing can wake it: the board raises no interrupts. */
        ev->type = VM_EVENT_HALT;
        return 0;
    }
    if (mode == VM_RUN_STEP && vm->board->irqchip && (err = wake_for_step(cpu)))
        return err;
    if (mode == VM_RUN_STEP && step_is_hlt(cpu)) {
        if ((err = vm_regcache_fetch(&cpu->rc, VM_RC_REGS)))
            return err;
        cpu->rc.regs.rip += 1;
        cpu->rc.dirty |= VM_RC_REGS;
        if (vm->board->irqchip) {
            atomic_fetch_add_explicit(&vm->stats.steps, 1, memory_order_relaxed);
            ev->type = VM_EVENT_STEP;
        } else {
            cpu->halted = true;
            atomic_fetch_add_explicit(&vm->stats.hlt_exits, 1, memory_order_relaxed);
            ev->type = VM_EVENT_HALT;
        }
        return vm_regcache_flush(&cpu->rc);
    }
    if ((err = vm_cpu_begin_run(cpu)))
        return err;

    for (;;) {
        vm_gate_park(cpu);
        bool step = mode == VM_RUN_STEP || cpu->step.stepping_over || cpu->step.nlifted;
        if ((err = vm_cpu_prepare(cpu, step)))
            return err;
        err = enter(cpu, false);
        bool kicked = atomic_exchange(&cpu->kick, false);
        if (err && err != -EINTR && err != -EAGAIN)
            return err;
        /* Batched writes are collected however KVM_RUN came back: a kick
         * that lands as EINTR (kvm-pvm does that) must still flush them. */
        drain_ring(cpu);
        ev->type = VM_EVENT_SERIAL;
        int got = 0;
        if (!err) {
            got = vm_cpu_handle_exit(cpu, mode, ev);
            if (got < 0)
                return got;
            if (cpu->rmw_held) {
                /* The write half, then the others may run again. */
                err = finish(cpu, mode, ev);
                cpu->rmw_held = false;
                vm_gate_release(vm);
                if (err)
                    return err;
                got |= ev->type != VM_EVENT_SERIAL;
            }
            if (!cpu->step.nlifted && vm_watch_active(vm) && (err = vm_watch_refresh(cpu)))
                return err;
            if (!cpu->step.nlifted && (err = vm_bp_plant_pending(cpu)))
                return err;
        }
        if (kicked && !got) {
            ev->type = VM_EVENT_INTERRUPTED;
            got = 1;
        }
        if (!got && output_due(cpu, mode)) {
            ev->type = VM_EVENT_SERIAL;
            got = 1;
        }
        if (got)
            return settle(cpu, mode, ev);
    }
}
