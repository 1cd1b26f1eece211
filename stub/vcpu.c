#include "vcpu.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

/* How often the loop collects output that only an exit would deliver (the
 * coalesced ring of a guest that writes and then spins). */
#define FLUSH_INTERVAL_MS 10

static bool in_range(struct stub_vcpu *v, const struct stub_run *req)
{
    uint64_t rip;
    if (vm_reg_get(v->cpu, VM_REG_RIP, &rip))
        return false;
    uint64_t cs = 0;
    if (vm_cpu_mode(v->cpu) != VM_MODE_LONG)
        cs = v->cpu->rc.sregs.cs.base;
    /* gdb gives the range in its addresses, which are rip-based; compare
     * the linear pc only where segments move it. */
    return (rip >= req->start && rip < req->end) ||
           (cs && rip + cs >= req->start && rip + cs < req->end);
}

/* Hands guest output to the loop, waiting while the channel is full. */
static void push_output(struct stub_vcpu *v)
{
    uint8_t tmp[VM_SERIAL_TX_MAX];
    size_t n = vm_serial_take(&v->vm->serial, tmp, sizeof(tmp));
    if (!n)
        return;
    pthread_mutex_lock(&v->mu);
    size_t off = 0;
    while (off < n && !v->quit) {
        while (v->out_len == STUB_VCPU_OUT && !v->quit) {
            uv_async_send(&v->async);
            pthread_cond_wait(&v->cv_space, &v->mu);
        }
        size_t room = STUB_VCPU_OUT - v->out_len;
        size_t k = n - off < room ? n - off : room;
        memcpy(v->out + v->out_len, tmp + off, k);
        v->out_len += k;
        off += k;
    }
    pthread_mutex_unlock(&v->mu);
    uv_async_send(&v->async);
}

/* One run request: events that are not stops for gdb (output batches,
 * flush kicks, steps inside a range) keep it going. */
static int run(struct stub_vcpu *v, const struct stub_run *req, struct vm_event *ev)
{
    for (;;) {
        int r = vm_cpu_run(v->cpu, req->mode, ev);
        push_output(v);
        if (r)
            return r;
        bool stop = atomic_load(&v->stop_requested);
        switch (ev->type) {
        case VM_EVENT_SERIAL:
        case VM_EVENT_INTERRUPTED:
            if (stop) {
                ev->type = VM_EVENT_INTERRUPTED;
                return 0;
            }
            continue;
        case VM_EVENT_STEP:
            if (req->range && !stop && in_range(v, req))
                continue;
            return 0;
        default:
            return 0;
        }
    }
}

static void *thread_main(void *arg)
{
    struct stub_vcpu *v = arg;
    vm_cpu_bind_thread(v->cpu);
    pthread_mutex_lock(&v->mu);
    for (;;) {
        while (!v->cmd_pending && !v->quit)
            pthread_cond_wait(&v->cv_cmd, &v->mu);
        if (v->quit)
            break;
        struct stub_run req = v->req;
        v->cmd_pending = false;
        pthread_mutex_unlock(&v->mu);

        struct vm_event ev;
        int err = run(v, &req, &ev);

        pthread_mutex_lock(&v->mu);
        v->event = ev;
        v->event_err = err;
        v->event_ready = true;
        v->running = false;
        uv_async_send(&v->async);
    }
    pthread_mutex_unlock(&v->mu);
    return NULL;
}

static void deliver(struct stub_vcpu *v)
{
    pthread_mutex_lock(&v->mu);
    size_t n = 0;
    if (!v->output_paused) {
        n = v->out_len;
        memcpy(v->drain, v->out, n);
        v->out_len = 0;
        pthread_cond_signal(&v->cv_space);
    }
    /* A stop waits until the output before it has gone out. */
    bool stopped = v->event_ready && v->out_len == 0;
    struct vm_event ev = v->event;
    int err = v->event_err;
    if (stopped)
        v->event_ready = false;
    pthread_mutex_unlock(&v->mu);
    if (n)
        v->on_output(v->ctx, v->drain, n);
    if (stopped) {
        v->loop_running = false;
        uv_timer_stop(&v->flush_timer);
        v->on_stop(v->ctx, &ev, err);
    }
}

static void on_async(uv_async_t *a)
{
    deliver(a->data);
}

static void on_flush_timer(uv_timer_t *t)
{
    struct stub_vcpu *v = t->data;
    if (v->loop_running && vm_output_pending(v->vm))
        vm_cpu_kick(v->cpu);
}

int stub_vcpu_start(struct stub_vcpu *v, uv_loop_t *loop, struct vm *vm, stub_output_fn on_output,
                    stub_stop_fn on_stop, void *ctx)
{
    memset(v, 0, sizeof(*v));
    v->vm = vm;
    v->cpu = &vm->cpus[0];
    v->on_output = on_output;
    v->on_stop = on_stop;
    v->ctx = ctx;
    atomic_init(&v->stop_requested, false);
    pthread_mutex_init(&v->mu, NULL);
    pthread_cond_init(&v->cv_cmd, NULL);
    pthread_cond_init(&v->cv_space, NULL);
    int r = uv_async_init(loop, &v->async, on_async);
    if (r)
        return r;
    v->async.data = v;
    uv_timer_init(loop, &v->flush_timer);
    v->flush_timer.data = v;
    /* The thread starts with every signal blocked, so the process's
     * signals (SIGINT, SIGTERM, SIGPIPE) go to the loop; the vm layer then
     * unblocks only its kick signal in it. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(&v->thread, NULL, thread_main, v);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r)
        return -r;
    v->started = true;
    return 0;
}

void stub_vcpu_stop(struct stub_vcpu *v)
{
    if (v->started) {
        pthread_mutex_lock(&v->mu);
        v->quit = true;
        atomic_store(&v->stop_requested, true);
        if (v->running)
            vm_cpu_kick(v->cpu);
        pthread_cond_broadcast(&v->cv_cmd);
        pthread_cond_broadcast(&v->cv_space);
        pthread_mutex_unlock(&v->mu);
        pthread_join(v->thread, NULL);
        v->started = false;
    }
    uv_close((uv_handle_t *)&v->async, NULL);
    uv_close((uv_handle_t *)&v->flush_timer, NULL);
}

void stub_vcpu_resume(struct stub_vcpu *v, const struct stub_run *run)
{
    pthread_mutex_lock(&v->mu);
    v->req = *run;
    v->cmd_pending = true;
    v->running = true;
    atomic_store(&v->stop_requested, false);
    /* Under the mutex, so a kick for this run cannot come before it. */
    vm_cpu_clear_kick(v->cpu);
    pthread_cond_signal(&v->cv_cmd);
    pthread_mutex_unlock(&v->mu);
    v->loop_running = true;
    uv_timer_start(&v->flush_timer, on_flush_timer, FLUSH_INTERVAL_MS, FLUSH_INTERVAL_MS);
}

void stub_vcpu_interrupt(struct stub_vcpu *v)
{
    pthread_mutex_lock(&v->mu);
    if (v->running) {
        atomic_store(&v->stop_requested, true);
        vm_cpu_kick(v->cpu);
    }
    pthread_mutex_unlock(&v->mu);
}

bool stub_vcpu_running(const struct stub_vcpu *v)
{
    return v->loop_running;
}

void stub_vcpu_pause_output(struct stub_vcpu *v, bool paused)
{
    v->output_paused = paused;
    if (!paused)
        deliver(v);
}
