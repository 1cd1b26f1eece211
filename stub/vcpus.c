/* vCPU threads and their channels (vcpus.h). */
#include "vcpus.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How often the loop collects output that only an exit would deliver (the
 * coalesced ring of a guest that writes and then spins), and makes a
 * running vCPU exit while breakpoints wait for the guest to map them (they
 * are planted at exits). */
#define FLUSH_INTERVAL_MS 10

struct vcpu_thread {
    struct stub_vcpus *vcpus;
    struct vm_cpu *cpu;
    unsigned index;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* loop -> vCPU */
    atomic_bool cmd_pending; /* set under mu; read without it while spinning */
    struct stub_run req;     /* mu */
    bool quit;               /* mu */
    bool parked;             /* mu: the thread sleeps on cv */
    atomic_bool stop_requested;
    /* vCPU -> loop: event and err are written before ready (release). */
    atomic_bool ready;
    struct vm_event event;
    int err;
    /* loop thread only */
    bool running;
    bool short_run; /* a single step: worth spinning for */
    bool seen;      /* deliver() saw ready before it took the output */
};

struct stub_vcpus {
    struct vm *vm;
    unsigned n;
    struct vcpu_thread *threads;
    bool loop_spin; /* the loop may spin for a step's stop (see vcpus.h) */
    bool vcpu_spin; /* vCPU threads may spin for the next request */
    atomic_bool loop_spinning;
    /* Console output, shared by every vCPU thread. */
    pthread_mutex_t out_mu;
    pthread_cond_t out_space; /* out_mu: the loop drained output */
    uint8_t out[STUB_VCPUS_OUT];
    size_t out_len; /* out_mu */
    bool quit;      /* out_mu */
    /* loop thread only */
    uv_async_t async;
    uv_timer_t flush_timer;
    uv_prepare_t prepare;
    int open_handles;
    bool timer_on;
    bool output_paused;
    uint8_t drain[STUB_VCPUS_OUT];
    stub_output_fn on_output;
    stub_stop_fn on_stop;
    void *ctx;
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static inline void relax(void)
{
    __builtin_ia32_pause();
}

static bool in_range(struct vm_cpu *cpu, const struct stub_run *req)
{
    uint64_t rip, pc;
    if (vm_reg_get(cpu, VM_REG_RIP, &rip) || vm_cpu_linear_pc(cpu, &pc))
        return false;
    /* gdb gives the range in its addresses, which are rip-based; the
     * linear pc matters only where segments move it. */
    return (rip >= req->start && rip < req->end) || (pc >= req->start && pc < req->end);
}

/* Hands console output to the loop, waiting while the channel is full. */
static void push_output(struct stub_vcpus *vcpus)
{
    uint8_t tmp[16384];
    size_t n;
    while ((n = vm_console_take(vcpus->vm, tmp, sizeof(tmp))) > 0) {
        pthread_mutex_lock(&vcpus->out_mu);
        size_t off = 0;
        while (off < n && !vcpus->quit) {
            while (vcpus->out_len == STUB_VCPUS_OUT && !vcpus->quit) {
                uv_async_send(&vcpus->async);
                pthread_cond_wait(&vcpus->out_space, &vcpus->out_mu);
            }
            size_t room = STUB_VCPUS_OUT - vcpus->out_len;
            size_t k = n - off < room ? n - off : room;
            memcpy(vcpus->out + vcpus->out_len, tmp + off, k);
            vcpus->out_len += k;
            off += k;
        }
        pthread_mutex_unlock(&vcpus->out_mu);
        uv_async_send(&vcpus->async);
    }
}

/* One run request: events that are not stops for gdb (output batches,
 * flush kicks, steps inside a range) keep it going. */
static int run(struct vcpu_thread *c, const struct stub_run *req, struct vm_event *ev)
{
    for (;;) {
        int r = vm_cpu_run(c->cpu, req->mode, ev);
        push_output(c->vcpus);
        if (r)
            return r;
        bool stop = atomic_load(&c->stop_requested);
        switch (ev->type) {
        case VM_EVENT_SERIAL:
        case VM_EVENT_INTERRUPTED:
            if (stop) {
                ev->type = VM_EVENT_INTERRUPTED;
                return 0;
            }
            continue;
        case VM_EVENT_STEP:
            if (req->range && !stop && in_range(c->cpu, req))
                continue;
            return 0;
        default:
            return 0;
        }
    }
}

/* Waits for the next request; false when the thread should end. */
static bool next_request(struct vcpu_thread *c, struct stub_run *req)
{
    if (c->vcpus->vcpu_spin) {
        uint64_t t0 = now_us();
        while (!atomic_load_explicit(&c->cmd_pending, memory_order_acquire) &&
               now_us() - t0 < STUB_VCPUS_SPIN_US)
            relax();
    }
    pthread_mutex_lock(&c->mu);
    while (!atomic_load(&c->cmd_pending) && !c->quit) {
        c->parked = true;
        pthread_cond_wait(&c->cv, &c->mu);
        c->parked = false;
    }
    bool go = !c->quit;
    if (go) {
        *req = c->req;
        atomic_store(&c->cmd_pending, false);
    }
    pthread_mutex_unlock(&c->mu);
    return go;
}

static void *thread_main(void *arg)
{
    struct vcpu_thread *c = arg;
    struct stub_vcpus *vcpus = c->vcpus;
    vm_cpu_bind_thread(c->cpu);
    struct stub_run req;
    while (next_request(c, &req)) {
        struct vm_event ev;
        int err = run(c, &req, &ev);
        c->event = ev;
        c->err = err;
        /* Either the loop sees ready while it spins, or we see that it
         * stopped spinning and wake it: both flags are sequentially
         * consistent, so one of the two always happens. */
        atomic_store(&c->ready, true);
        if (!atomic_load(&vcpus->loop_spinning))
            uv_async_send(&vcpus->async);
    }
    return NULL;
}

static void deliver(struct stub_vcpus *vcpus)
{
    /* Which stops have come is read before the output is taken: a vCPU
     * thread pushes its output before it sets ready, so output taken after
     * seeing ready holds all of it. Read after, a stop set while the
     * output went out would overtake the bytes pushed just before it (and
     * gdb takes 'O' packets only before the stop reply). */
    for (unsigned i = 0; i < vcpus->n; i++) {
        struct vcpu_thread *c = &vcpus->threads[i];
        c->seen = c->running && atomic_load_explicit(&c->ready, memory_order_acquire);
    }
    pthread_mutex_lock(&vcpus->out_mu);
    size_t n = 0;
    if (!vcpus->output_paused) {
        n = vcpus->out_len;
        memcpy(vcpus->drain, vcpus->out, n);
        vcpus->out_len = 0;
        pthread_cond_broadcast(&vcpus->out_space);
    }
    /* A stop waits until the output before it has gone out. */
    bool clear = vcpus->out_len == 0;
    pthread_mutex_unlock(&vcpus->out_mu);
    if (n)
        vcpus->on_output(vcpus->ctx, vcpus->drain, n);
    if (!clear)
        return;
    for (unsigned i = 0; i < vcpus->n; i++) {
        struct vcpu_thread *c = &vcpus->threads[i];
        /* on_stop may resume a vCPU (a private step): its new run is not
         * this stop. */
        if (!c->seen || !c->running)
            continue;
        c->seen = false;
        atomic_store(&c->ready, false);
        c->running = false;
        struct vm_event ev = c->event;
        int err = c->err;
        if (!stub_vcpus_any_running(vcpus) && vcpus->timer_on) {
            uv_timer_stop(&vcpus->flush_timer);
            vcpus->timer_on = false;
        }
        vcpus->on_stop(vcpus->ctx, i, &ev, err);
    }
}

static void on_async(uv_async_t *a)
{
    deliver(a->data);
}

static void on_flush_timer(uv_timer_t *t)
{
    struct stub_vcpus *vcpus = t->data;
    if (!vm_output_pending(vcpus->vm) && !vm_bp_pending(vcpus->vm))
        return;
    for (unsigned i = 0; i < vcpus->n; i++) {
        if (vcpus->threads[i].running) {
            vm_cpu_kick(vcpus->threads[i].cpu);
            return;
        }
    }
}

/* Right before the loop polls: a single step ends within microseconds, so
 * wait for it here rather than through a wake-up. */
static void on_prepare(uv_prepare_t *p)
{
    struct stub_vcpus *vcpus = p->data;
    if (!vcpus->loop_spin)
        return;
    struct vcpu_thread *c = NULL;
    for (unsigned i = 0; i < vcpus->n && !c; i++)
        if (vcpus->threads[i].running && vcpus->threads[i].short_run)
            c = &vcpus->threads[i];
    if (!c)
        return;
    atomic_store(&vcpus->loop_spinning, true);
    uint64_t t0 = now_us();
    while (!atomic_load_explicit(&c->ready, memory_order_acquire) &&
           now_us() - t0 < STUB_VCPUS_SPIN_US)
        relax();
    atomic_store(&vcpus->loop_spinning, false);
    c->short_run = false; /* spin once per request */
    deliver(vcpus);
}

int stub_vcpus_start(struct stub_vcpus **out, uv_loop_t *loop, struct vm *vm,
                     stub_output_fn on_output, stub_stop_fn on_stop, void *ctx)
{
    struct stub_vcpus *vcpus = calloc(1, sizeof(*vcpus));
    if (!vcpus)
        return -ENOMEM;
    vcpus->vm = vm;
    vcpus->n = vm_ncpus(vm);
    vcpus->threads = calloc(vcpus->n, sizeof(*vcpus->threads));
    if (!vcpus->threads) {
        free(vcpus);
        return -ENOMEM;
    }
    vcpus->on_output = on_output;
    vcpus->on_stop = on_stop;
    vcpus->ctx = ctx;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    vcpus->loop_spin = cores >= 2;
    vcpus->vcpu_spin = cores >= 3;
    atomic_init(&vcpus->loop_spinning, false);
    pthread_mutex_init(&vcpus->out_mu, NULL);
    pthread_cond_init(&vcpus->out_space, NULL);
    uv_async_init(loop, &vcpus->async, on_async);
    vcpus->async.data = vcpus;
    uv_timer_init(loop, &vcpus->flush_timer);
    vcpus->flush_timer.data = vcpus;
    uv_prepare_init(loop, &vcpus->prepare);
    vcpus->prepare.data = vcpus;
    uv_prepare_start(&vcpus->prepare, on_prepare);
    *out = vcpus;
    /* The threads start with every signal blocked, so the process's
     * signals (SIGINT, SIGTERM, SIGPIPE) go to the loop; the vm layer then
     * unblocks only its kick signal in them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = 0;
    for (unsigned i = 0; i < vcpus->n && !r; i++) {
        struct vcpu_thread *c = &vcpus->threads[i];
        c->vcpus = vcpus;
        c->index = i;
        c->cpu = vm_cpu(vm, i);
        pthread_mutex_init(&c->mu, NULL);
        pthread_cond_init(&c->cv, NULL);
        atomic_init(&c->cmd_pending, false);
        atomic_init(&c->stop_requested, false);
        atomic_init(&c->ready, false);
        r = -pthread_create(&c->thread, NULL, thread_main, c);
        c->started = r == 0;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}

static void closed(uv_handle_t *h)
{
    struct stub_vcpus *vcpus = h->data;
    /* libuv promises no order of close callbacks: free after the last. */
    if (--vcpus->open_handles == 0) {
        pthread_mutex_destroy(&vcpus->out_mu);
        pthread_cond_destroy(&vcpus->out_space);
        free(vcpus->threads);
        free(vcpus);
    }
}

void stub_vcpus_stop(struct stub_vcpus *vcpus)
{
    if (!vcpus)
        return;
    pthread_mutex_lock(&vcpus->out_mu);
    vcpus->quit = true;
    pthread_cond_broadcast(&vcpus->out_space);
    pthread_mutex_unlock(&vcpus->out_mu);
    for (unsigned i = 0; i < vcpus->n; i++) {
        struct vcpu_thread *c = &vcpus->threads[i];
        if (!c->started)
            continue;
        pthread_mutex_lock(&c->mu);
        c->quit = true;
        atomic_store(&c->stop_requested, true);
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        /* A kick cannot be lost, whether KVM_RUN is running or not. */
        vm_cpu_kick(c->cpu);
    }
    for (unsigned i = 0; i < vcpus->n; i++) {
        struct vcpu_thread *c = &vcpus->threads[i];
        if (c->started)
            pthread_join(c->thread, NULL);
        if (c->cpu) {
            pthread_mutex_destroy(&c->mu);
            pthread_cond_destroy(&c->cv);
        }
    }
    vcpus->open_handles = 3;
    uv_close((uv_handle_t *)&vcpus->flush_timer, closed);
    uv_close((uv_handle_t *)&vcpus->prepare, closed);
    uv_close((uv_handle_t *)&vcpus->async, closed);
}

void stub_vcpus_resume(struct stub_vcpus *vcpus, unsigned index, const struct stub_run *run)
{
    struct vcpu_thread *c = &vcpus->threads[index];
    pthread_mutex_lock(&c->mu);
    c->req = *run;
    atomic_store(&c->stop_requested, false);
    /* Under the mutex, so a kick for this run cannot come before it. */
    vm_cpu_clear_kick(c->cpu);
    atomic_store_explicit(&c->cmd_pending, true, memory_order_release);
    if (c->parked)
        pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    c->running = true;
    c->short_run = run->mode == VM_RUN_STEP && !run->range;
    if (!vcpus->timer_on) {
        uv_timer_start(&vcpus->flush_timer, on_flush_timer, FLUSH_INTERVAL_MS, FLUSH_INTERVAL_MS);
        vcpus->timer_on = true;
    }
}

void stub_vcpus_interrupt(struct stub_vcpus *vcpus, unsigned index)
{
    struct vcpu_thread *c = &vcpus->threads[index];
    if (!c->running)
        return;
    atomic_store(&c->stop_requested, true);
    vm_cpu_kick(c->cpu);
}

bool stub_vcpus_any_running(const struct stub_vcpus *vcpus)
{
    for (unsigned i = 0; i < vcpus->n; i++)
        if (vcpus->threads[i].running)
            return true;
    return false;
}

void stub_vcpus_pause_output(struct stub_vcpus *vcpus, bool paused)
{
    vcpus->output_paused = paused;
    if (!paused)
        deliver(vcpus);
}
