/* stub/vcpu.h: the vCPU thread and the one channel between it and the loop.
 *
 * Who owns what:
 *  - The vCPU thread is the only caller of vm_cpu_run() (and so of
 *    KVM_RUN). While the guest runs (between stub_vcpu_resume() and the stop
 *    callback) it owns the whole struct vm.
 *  - The loop thread owns the VM while the guest is stopped: registers,
 *    memory and breakpoints are read and changed from there, without locks.
 *    The mutex taken to hand a run over, and to hand the stop back, orders
 *    those accesses.
 *  - Everything in struct stub_vcpu marked "mu" is shared and taken under
 *    the mutex; the rest belongs to the loop thread.
 *  - The vCPU thread only ever talks to the loop through this channel: guest
 *    output and the stop event go into it, then uv_async_send() wakes the
 *    loop, which calls the callbacks on its own thread. Output is bounded:
 *    when the loop stops draining (a slow client), the vCPU thread waits, and
 *    so does the guest. Sockets are touched by the loop thread only. */
#ifndef STUB_VCPU_H
#define STUB_VCPU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "vm/vm.h"

#define STUB_VCPU_OUT 65536u

struct stub_run {
    enum vm_run_mode mode;
    bool range;         /* keep stepping while start <= pc < end */
    uint64_t start, end;
};

typedef void (*stub_output_fn)(void *ctx, const uint8_t *data, size_t n);
typedef void (*stub_stop_fn)(void *ctx, const struct vm_event *ev, int err);

struct stub_vcpu {
    struct vm *vm;
    struct vm_cpu *cpu;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv_cmd;   /* mu: a run or quit for the vCPU thread */
    pthread_cond_t cv_space; /* mu: the loop drained output */
    bool cmd_pending;        /* mu */
    struct stub_run req;     /* mu */
    bool quit;               /* mu */
    bool running;            /* mu: the vCPU thread owns the VM */
    atomic_bool stop_requested;
    bool event_ready;        /* mu */
    struct vm_event event;   /* mu */
    int event_err;           /* mu: KVM failed with this errno */
    uint8_t out[STUB_VCPU_OUT]; /* mu */
    size_t out_len;             /* mu */
    /* loop thread only */
    uv_async_t async;
    uv_timer_t flush_timer;
    bool loop_running;
    bool output_paused;
    uint8_t drain[STUB_VCPU_OUT];
    stub_output_fn on_output;
    stub_stop_fn on_stop;
    void *ctx;
};

int stub_vcpu_start(struct stub_vcpu *v, uv_loop_t *loop, struct vm *vm, stub_output_fn on_output,
                    stub_stop_fn on_stop, void *ctx);
/* Ends the thread (a running guest is interrupted first) and closes the
 * libuv handles. */
void stub_vcpu_stop(struct stub_vcpu *v);

/* Loop thread. Starts the guest; the stop comes back through on_stop. */
void stub_vcpu_resume(struct stub_vcpu *v, const struct stub_run *run);
/* Loop thread. Asks a running guest to stop (SIGINT for gdb). */
void stub_vcpu_interrupt(struct stub_vcpu *v);
bool stub_vcpu_running(const struct stub_vcpu *v);
/* Loop thread. While paused, guest output stays in the channel (and the
 * guest waits once it is full); unpausing delivers what is there. */
void stub_vcpu_pause_output(struct stub_vcpu *v, bool paused);

#endif
