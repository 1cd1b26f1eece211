/* stub/vcpus.h: one thread per vCPU, and the channels between those
 * threads and the loop thread.
 *
 * Who owns what:
 *  - A vCPU's thread is the only caller of vm_cpu_run() (so of KVM_RUN) on
 *    it, and owns that vCPU from stub_vcpus_resume() until its stop has been
 *    delivered to the loop.
 *  - The loop thread owns the whole VM while every vCPU is stopped:
 *    registers, memory and breakpoints are read and changed from there,
 *    without locks. Each channel's mutex (or, on the fast path, the
 *    release/acquire pair on its flags) orders those accesses.
 *  - Each vCPU has a channel of its own: a run request going in, a stop
 *    event coming out. Console output from every vCPU goes through one
 *    shared, bounded channel; when the loop stops draining it (a slow
 *    client), vCPU threads wait, and so does the guest. stop and output
 *    callbacks run on the loop thread; a stop is delivered only after the
 *    output that came before it. Sockets are the loop thread's alone.
 *
 * Hand-offs are fast when the host has cores to spare. With two or more,
 * the loop thread spins briefly for the stop of a single step before it
 * goes back to polling: the vCPU runs the step on the other core meanwhile.
 * With three or more, a vCPU thread also spins briefly for the next request
 * after a stop; with two that would take the core gdb needs to answer (the
 * loop writes the reply, gdb reads it and sends the next step while the
 * vCPU spins), which measured several times slower than sleeping. Both
 * spins are bounded by STUB_VCPUS_SPIN_US, so an idle kvmstub uses no
 * CPU. */
#ifndef STUB_VCPUS_H
#define STUB_VCPUS_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "vm/vm.h"

#define STUB_VCPUS_OUT 65536u
#define STUB_VCPUS_SPIN_US 200u

struct stub_run {
    enum vm_run_mode mode;
    bool range; /* keep stepping while start <= pc < end */
    uint64_t start, end;
};

typedef void (*stub_output_fn)(void *ctx, const uint8_t *data, size_t n);
/* The stop of vCPU index (err: KVM failed with this negative errno). */
typedef void (*stub_stop_fn)(void *ctx, unsigned index, const struct vm_event *ev, int err);

struct stub_vcpus;

/* Starts a thread per vCPU of vm, waiting for requests. */
int stub_vcpus_start(struct stub_vcpus **out, uv_loop_t *loop, struct vm *vm,
                     stub_output_fn on_output, stub_stop_fn on_stop, void *ctx);
/* Ends the threads (running vCPUs are interrupted first) and closes the
 * libuv handles; the loop must run once more to finish closing them. */
void stub_vcpus_stop(struct stub_vcpus *vcpus);

/* Loop thread. Starts vCPU index (stopped); its stop comes back through
 * on_stop. */
void stub_vcpus_resume(struct stub_vcpus *vcpus, unsigned index, const struct stub_run *run);
/* Loop thread. Asks a running vCPU to stop. */
void stub_vcpus_interrupt(struct stub_vcpus *vcpus, unsigned index);
/* Loop thread: some vCPU resumed and its stop not delivered yet. */
bool stub_vcpus_any_running(const struct stub_vcpus *vcpus);
/* Loop thread. While paused, output stays in the channel (and the guest
 * waits once it is full); unpausing delivers what is there. */
void stub_vcpus_pause_output(struct stub_vcpus *vcpus, bool paused);

#endif
