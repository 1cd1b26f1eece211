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

struct chan {
    struct stub_vcpus *g;
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
    struct chan *chans;
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
static void push_output(struct stub_vcpus *g)
{
    uint8_t tmp[16384];
    size_t n;
    while ((n = vm_console_take(g->vm, tmp, sizeof(tmp))) > 0) {
        pthread_mutex_lock(&g->out_mu);
        size_t off = 0;
        while (off < n && !g->quit) {
            while (g->out_len == STUB_VCPUS_OUT && !g->quit) {
                uv_async_send(&g->async);
                pthread_cond_wait(&g->out_space, &g->out_mu);
            }
            size_t room = STUB_VCPUS_OUT - g->out_len;
            size_t k = n - off < room ? n - off : room;
            memcpy(g->out + g->out_len, tmp + off, k);
            g->out_len += k;
            off += k;
        }
        pthread_mutex_unlock(&g->out_mu);
        uv_async_send(&g->async);
    }
}

/* One run request: events that are not stops for gdb (output batches,
 * flush kicks, steps inside a range) keep it going. */
static int run(struct chan *c, const struct stub_run *req, struct vm_event *ev)
{
    for (;;) {
        int r = vm_cpu_run(c->cpu, req->mode, ev);
        push_output(c->g);
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
static bool next_request(struct chan *c, struct stub_run *req)
{
    if (c->g->vcpu_spin) {
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
    struct chan *c = arg;
    struct stub_vcpus *g = c->g;
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
        if (!atomic_load(&g->loop_spinning))
            uv_async_send(&g->async);
    }
    return NULL;
}

static void deliver(struct stub_vcpus *g)
{
    /* Which stops have come is read before the output is taken: a vCPU
     * thread pushes its output before it sets ready, so output taken after
     * seeing ready holds all of it. Read after, a stop set while the
     * output went out would overtake the bytes pushed just before it (and
     * gdb takes 'O' packets only before the stop reply). */
    for (unsigned i = 0; i < g->n; i++) {
        struct chan *c = &g->chans[i];
        c->seen = c->running && atomic_load_explicit(&c->ready, memory_order_acquire);
    }
    pthread_mutex_lock(&g->out_mu);
    size_t n = 0;
    if (!g->output_paused) {
        n = g->out_len;
        memcpy(g->drain, g->out, n);
        g->out_len = 0;
        pthread_cond_broadcast(&g->out_space);
    }
    /* A stop waits until the output before it has gone out. */
    bool clear = g->out_len == 0;
    pthread_mutex_unlock(&g->out_mu);
    if (n)
        g->on_output(g->ctx, g->drain, n);
    if (!clear)
        return;
    for (unsigned i = 0; i < g->n; i++) {
        struct chan *c = &g->chans[i];
        /* on_stop may resume a vCPU (a private step): its new run is not
         * this stop. */
        if (!c->seen || !c->running)
            continue;
        c->seen = false;
        atomic_store(&c->ready, false);
        c->running = false;
        struct vm_event ev = c->event;
        int err = c->err;
        if (!stub_vcpus_any_running(g) && g->timer_on) {
            uv_timer_stop(&g->flush_timer);
            g->timer_on = false;
        }
        g->on_stop(g->ctx, i, &ev, err);
    }
}

static void on_async(uv_async_t *a)
{
    deliver(a->data);
}

static void on_flush_timer(uv_timer_t *t)
{
    struct stub_vcpus *g = t->data;
    if (!vm_output_pending(g->vm) && !vm_bp_pending(g->vm))
        return;
    for (unsigned i = 0; i < g->n; i++) {
        if (g->chans[i].running) {
            vm_cpu_kick(g->chans[i].cpu);
            return;
        }
    }
}

/* Right before the loop polls: a single step ends within microseconds, so
 * wait for it here rather than through a wake-up. */
static void on_prepare(uv_prepare_t *p)
{
    struct stub_vcpus *g = p->data;
    if (!g->loop_spin)
        return;
    struct chan *c = NULL;
    for (unsigned i = 0; i < g->n && !c; i++)
        if (g->chans[i].running && g->chans[i].short_run)
            c = &g->chans[i];
    if (!c)
        return;
    atomic_store(&g->loop_spinning, true);
    uint64_t t0 = now_us();
    while (!atomic_load_explicit(&c->ready, memory_order_acquire) &&
           now_us() - t0 < STUB_VCPUS_SPIN_US)
        relax();
    atomic_store(&g->loop_spinning, false);
    c->short_run = false; /* spin once per request */
    deliver(g);
}

int stub_vcpus_start(struct stub_vcpus **out, uv_loop_t *loop, struct vm *vm,
                     stub_output_fn on_output, stub_stop_fn on_stop, void *ctx)
{
    struct stub_vcpus *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->vm = vm;
    g->n = vm_ncpus(vm);
    g->chans = calloc(g->n, sizeof(*g->chans));
    if (!g->chans) {
        free(g);
        return -ENOMEM;
    }
    g->on_output = on_output;
    g->on_stop = on_stop;
    g->ctx = ctx;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    g->loop_spin = cores >= 2;
    g->vcpu_spin = cores >= 3;
    atomic_init(&g->loop_spinning, false);
    pthread_mutex_init(&g->out_mu, NULL);
    pthread_cond_init(&g->out_space, NULL);
    uv_async_init(loop, &g->async, on_async);
    g->async.data = g;
    uv_timer_init(loop, &g->flush_timer);
    g->flush_timer.data = g;
    uv_prepare_init(loop, &g->prepare);
    g->prepare.data = g;
    uv_prepare_start(&g->prepare, on_prepare);
    *out = g;
    /* The threads start with every signal blocked, so the process's
     * signals (SIGINT, SIGTERM, SIGPIPE) go to the loop; the vm layer then
     * unblocks only its kick signal in them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = 0;
    for (unsigned i = 0; i < g->n && !r; i++) {
        struct chan *c = &g->chans[i];
        c->g = g;
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
    struct stub_vcpus *g = h->data;
    /* libuv promises no order of close callbacks: free after the last. */
    if (--g->open_handles == 0) {
        pthread_mutex_destroy(&g->out_mu);
        pthread_cond_destroy(&g->out_space);
        free(g->chans);
        free(g);
    }
}

void stub_vcpus_stop(struct stub_vcpus *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->out_mu);
    g->quit = true;
    pthread_cond_broadcast(&g->out_space);
    pthread_mutex_unlock(&g->out_mu);
    for (unsigned i = 0; i < g->n; i++) {
        struct chan *c = &g->chans[i];
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
    for (unsigned i = 0; i < g->n; i++) {
        struct chan *c = &g->chans[i];
        if (c->started)
            pthread_join(c->thread, NULL);
        if (c->cpu) {
            pthread_mutex_destroy(&c->mu);
            pthread_cond_destroy(&c->cv);
        }
    }
    g->open_handles = 3;
    uv_close((uv_handle_t *)&g->flush_timer, closed);
    uv_close((uv_handle_t *)&g->prepare, closed);
    uv_close((uv_handle_t *)&g->async, closed);
}

void stub_vcpus_resume(struct stub_vcpus *g, unsigned index, const struct stub_run *run)
{
    struct chan *c = &g->chans[index];
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
    if (!g->timer_on) {
        uv_timer_start(&g->flush_timer, on_flush_timer, FLUSH_INTERVAL_MS, FLUSH_INTERVAL_MS);
        g->timer_on = true;
    }
}

void stub_vcpus_interrupt(struct stub_vcpus *g, unsigned index)
{
    struct chan *c = &g->chans[index];
    if (!c->running)
        return;
    atomic_store(&c->stop_requested, true);
    vm_cpu_kick(c->cpu);
}

bool stub_vcpus_running(const struct stub_vcpus *g, unsigned index)
{
    return index < g->n && g->chans[index].running;
}

bool stub_vcpus_any_running(const struct stub_vcpus *g)
{
    for (unsigned i = 0; i < g->n; i++)
        if (g->chans[i].running)
            return true;
    return false;
}

void stub_vcpus_pause_output(struct stub_vcpus *g, bool paused)
{
    g->output_paused = paused;
    if (!paused)
        deliver(g);
}
