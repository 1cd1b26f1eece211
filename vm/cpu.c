/* The vCPU run loop: entering the guest, stepping off breakpoints,
 * kicking; what each exit means is exits.c's business.
 *
 * Invariant kept at every return from vm_cpu_run(): KVM holds no half-done
 * instruction. PIO and MMIO exits leave one (KVM finishes the instruction on
 * the next KVM_RUN); before returning we re-enter with immediate_exit set,
 * which completes it without running further, so a debugger that changes
 * registers at the stop never races KVM's completion of an old instruction. */
#include "gate.h"
#include "internal.h"
#include "serial.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#define KICK_SIGNAL SIGUSR1
#define OUTPUT_DELAY_NS 5000000ull /* longest time guest output waits for a batch */
#define OPCODE_HLT 0xf4

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
        vm_exits_drain_ring(cpu);
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
    if (!err && step && cpu->vm->board->info.irqchip &&
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
    if (mode == VM_RUN_STEP && vm->board->info.irqchip && (err = wake_for_step(cpu)))
        return err;
    if (mode == VM_RUN_STEP && step_is_hlt(cpu)) {
        if ((err = vm_regcache_fetch(&cpu->rc, VM_RC_REGS)))
            return err;
        cpu->rc.regs.rip += 1;
        cpu->rc.dirty |= VM_RC_REGS;
        if (vm->board->info.irqchip) {
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
        vm_exits_drain_ring(cpu);
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
