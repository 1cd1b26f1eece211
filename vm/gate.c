/* The gate: which vCPUs may be inside KVM_RUN while a vCPU thread changes
 * the VM's memory slots during a run (see gate.h). */
#include "gate.h"

#include "internal.h"

#include <signal.h>
#include <time.h>

/* How long a requester waits, after the last exclusive section, for the
 * vCPUs it held to run again before it holds them anew: without it one
 * vCPU stepping through a trapped page could keep another (which holds the
 * lock it spins on) out of the guest for good. */
#define FAIR_NS 1000000ull

/* The thread's vCPU while it is inside vm_cpu_run(): only that thread can
 * take the gate for it. NULL on the loop thread and in tests that change
 * the tables of a stopped VM, which need no gate. */
static _Thread_local struct vm_cpu *self;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void vm_gate_init(struct vm *vm)
{
    struct vm_gate *g = &vm->gate;
    pthread_mutex_init(&g->lock, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cond, &a);
    pthread_condattr_destroy(&a);
    atomic_store(&g->holder, -1);
    g->initialized = true;
}

void vm_gate_destroy(struct vm *vm)
{
    struct vm_gate *g = &vm->gate;
    if (!g->initialized)
        return;
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->lock);
    g->initialized = false;
}

void vm_gate_enter(struct vm_cpu *cpu)
{
    struct vm_gate *g = &cpu->vm->gate;
    pthread_mutex_lock(&g->lock);
    cpu->gate_state = VM_GATE_PARKED;
    while (atomic_load(&g->holder) >= 0)
        pthread_cond_wait(&g->cond, &g->lock);
    cpu->gate_state = VM_GATE_RUNNING;
    cpu->gate_entered = cpu->gate_ran = g->epoch;
    pthread_mutex_unlock(&g->lock);
    self = cpu;
}

static void release_locked(struct vm_gate *g, struct vm_cpu *cpu)
{
    atomic_store(&g->holder, -1);
    g->depth = 0;
    g->epoch++;
    g->released_ns = mono_ns();
    cpu->gate_state = VM_GATE_RUNNING;
    pthread_cond_broadcast(&g->cond);
}

void vm_gate_leave(struct vm_cpu *cpu)
{
    struct vm_gate *g = &cpu->vm->gate;
    self = NULL;
    pthread_mutex_lock(&g->lock);
    /* A run that ended on an error inside an exclusive section must not
     * hold the others forever. */
    if (atomic_load(&g->holder) == (int)cpu->index)
        release_locked(g, cpu);
    cpu->gate_state = VM_GATE_OUT;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

void vm_gate_park(struct vm_cpu *cpu)
{
    struct vm_gate *g = &cpu->vm->gate;
    pthread_mutex_lock(&g->lock);
    if (atomic_load(&g->holder) >= 0 && atomic_load(&g->holder) != (int)cpu->index) {
        cpu->gate_state = VM_GATE_PARKED;
        pthread_cond_broadcast(&g->cond); /* the holder counts who is out */
        while (atomic_load(&g->holder) >= 0)
            pthread_cond_wait(&g->cond, &g->lock);
        cpu->gate_state = VM_GATE_RUNNING;
    }
    /* The KVM_RUN before this point began at gate_entered. */
    cpu->gate_ran = cpu->gate_entered;
    cpu->gate_entered = g->epoch;
    if (atomic_load(&g->waiters))
        pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

/* Every vCPU held by the last exclusive section has been in the guest
 * since, or has had FAIR_NS to get there. */
static bool fair_locked(struct vm *vm, uint64_t *deadline)
{
    struct vm_gate *g = &vm->gate;
    *deadline = g->released_ns + FAIR_NS;
    if (mono_ns() >= *deadline)
        return true;
    for (unsigned i = 0; i < vm->ncpus; i++) {
        const struct vm_cpu *c = &vm->cpus[i];
        if ((c->gate_state == VM_GATE_RUNNING || c->gate_state == VM_GATE_PARKED) &&
            c->gate_ran != g->epoch)
            return false;
    }
    return true;
}

static bool others_running_locked(const struct vm *vm, const struct vm_cpu *cpu)
{
    for (unsigned i = 0; i < vm->ncpus; i++)
        if (&vm->cpus[i] != cpu && vm->cpus[i].gate_state == VM_GATE_RUNNING)
            return true;
    return false;
}

/* Makes a vCPU thread leave KVM_RUN (or not enter it) without a stop:
 * unlike vm_cpu_kick() it sets no flag, so the run loop just goes round
 * and parks. */
static void nudge(struct vm_cpu *c)
{
    __atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    if (atomic_load(&c->thread_known))
        pthread_kill(c->thread, SIGUSR1);
}

void vm_gate_exclusive(struct vm *vm)
{
    struct vm_cpu *cpu = self;
    struct vm_gate *g = &vm->gate;
    if (!cpu || cpu->vm != vm)
        return;
    if (atomic_load(&g->holder) == (int)cpu->index) {
        g->depth++; /* only this thread changes holder away from itself */
        return;
    }
    pthread_mutex_lock(&g->lock);
    uint64_t ticket = g->next_ticket++;
    cpu->gate_state = VM_GATE_WAITING;
    atomic_fetch_add(&g->waiters, 1);
    pthread_cond_broadcast(&g->cond);
    for (;;) {
        uint64_t deadline = 0;
        if (atomic_load(&g->holder) < 0 && g->serving == ticket) {
            if (fair_locked(vm, &deadline))
                break;
            struct timespec ts = {.tv_sec = (time_t)(deadline / 1000000000ull),
                                  .tv_nsec = (long)(deadline % 1000000000ull)};
            pthread_cond_timedwait(&g->cond, &g->lock, &ts);
        } else {
            pthread_cond_wait(&g->cond, &g->lock);
        }
    }
    atomic_fetch_sub(&g->waiters, 1);
    g->serving++;
    atomic_store(&g->holder, (int)cpu->index);
    g->depth = 1;
    cpu->gate_state = VM_GATE_HOLDER;
    for (unsigned i = 0; i < vm->ncpus; i++)
        if (&vm->cpus[i] != cpu && vm->cpus[i].gate_state == VM_GATE_RUNNING)
            nudge(&vm->cpus[i]);
    while (others_running_locked(vm, cpu))
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

void vm_gate_release(struct vm *vm)
{
    struct vm_cpu *cpu = self;
    struct vm_gate *g = &vm->gate;
    if (!cpu || cpu->vm != vm || atomic_load(&g->holder) != (int)cpu->index)
        return;
    if (--g->depth)
        return;
    pthread_mutex_lock(&g->lock);
    release_locked(g, cpu);
    pthread_mutex_unlock(&g->lock);
}

bool vm_gate_held(const struct vm_cpu *cpu)
{
    return self == cpu && atomic_load(&cpu->vm->gate.holder) == (int)cpu->index;
}

bool vm_gate_contended(const struct vm *vm)
{
    return atomic_load(&vm->gate.waiters) != 0;
}
