/* The KVM machine as a target (target_kvm.h). */
#include "target_kvm.h"

#include "log.h"
#include "monitor.h"

#include <errno.h>
#include <stdio.h>

/* The vCPU of a thread, when the machine is stopped. */
static int stopped_cpu(struct stub_control *m, unsigned tid, struct vm_cpu **cpu)
{
    if (stub_control_running(m))
        return -EBUSY;
    *cpu = stub_control_cpu(m, tid);
    return *cpu ? 0 : -ESRCH;
}

static unsigned threads(void *ctx)
{
    struct stub_control *m = ctx;
    return m->ncpus;
}

static unsigned regsets(void *ctx)
{
    struct stub_control *m = ctx;
    uint64_t x = vm_xsave_features(m->vm);
    unsigned sets = 0;
    if (x & (1u << 2))
        sets |= STUB_REGSET_AVX;
    if ((x & 0xe0) == 0xe0)
        sets |= STUB_REGSET_AVX512;
    return sets;
}

static int thread_info(void *ctx, unsigned tid, struct stub_thread_info *out)
{
    struct vm_cpu *cpu;
    int err = stopped_cpu(ctx, tid, &cpu);
    if (err)
        return err;
    out->mode = vm_cpu_mode(cpu);
    switch (vm_cpu_wait(cpu)) {
    case VM_CPU_HALTED:
        out->wait = STUB_WAIT_INTERRUPT;
        break;
    case VM_CPU_WAIT_INIT:
        out->wait = STUB_WAIT_INIT;
        break;
    case VM_CPU_WAIT_SIPI:
        out->wait = STUB_WAIT_SIPI;
        break;
    default:
        out->wait = STUB_WAIT_NONE;
    }
    out->halted = out->wait == STUB_WAIT_INTERRUPT;
    return 0;
}

static int reg_read(void *ctx, unsigned tid, enum vm_reg_id id, uint8_t *buf, size_t size)
{
    struct vm_cpu *cpu;
    int err = stopped_cpu(ctx, tid, &cpu);
    return err ? err : vm_reg_read(cpu, id, buf, size);
}

static int reg_write(void *ctx, unsigned tid, enum vm_reg_id id, const uint8_t *buf, size_t size)
{
    struct vm_cpu *cpu;
    int err = stopped_cpu(ctx, tid, &cpu);
    return err ? err : vm_reg_write(cpu, id, buf, size);
}

static int mem_read(void *ctx, unsigned tid, bool phys, uint64_t addr, void *buf, size_t len,
                    size_t *done)
{
    struct stub_control *m = ctx;
    struct vm_cpu *cpu;
    *done = 0;
    int err = stopped_cpu(m, tid, &cpu);
    if (err)
        return err;
    return phys ? vm_read_physical(m->vm, addr, buf, len, done)
                : vm_read_linear(cpu, addr, buf, len, done);
}

static int mem_write(void *ctx, unsigned tid, bool phys, uint64_t addr, const void *buf,
                     size_t len)
{
    struct stub_control *m = ctx;
    struct vm_cpu *cpu;
    int err = stopped_cpu(m, tid, &cpu);
    if (err)
        return err;
    return phys ? vm_write_physical(m->vm, addr, buf, len, NULL)
                : vm_write_linear(cpu, addr, buf, len, NULL);
}

static enum vm_watch_type watch_type(enum stub_bp_kind kind)
{
    return kind == STUB_WATCH_WRITE  ? VM_WATCH_WRITE
           : kind == STUB_WATCH_READ ? VM_WATCH_READ
                                     : VM_WATCH_ACCESS;
}

static int bp_insert(void *ctx, unsigned tid, enum stub_bp_kind kind, uint64_t addr, uint64_t len)
{
    struct vm_cpu *cpu;
    int err = stopped_cpu(ctx, tid, &cpu);
    if (err)
        return err;
    if (kind == STUB_BP_SOFTWARE || kind == STUB_BP_HARDWARE)
        return vm_bp_insert(cpu, addr, kind == STUB_BP_HARDWARE);
    return vm_watch_insert(cpu, watch_type(kind), addr, len);
}

static int bp_remove(void *ctx, unsigned tid, enum stub_bp_kind kind, uint64_t addr, uint64_t len)
{
    struct vm_cpu *cpu;
    int err = stopped_cpu(ctx, tid, &cpu);
    if (err)
        return err;
    if (kind == STUB_BP_SOFTWARE || kind == STUB_BP_HARDWARE)
        return vm_bp_remove(cpu, addr, kind == STUB_BP_HARDWARE);
    return vm_watch_remove(cpu, watch_type(kind), addr, len);
}

static int resume(void *ctx, const struct stub_resume *r)
{
    return stub_control_resume(ctx, r);
}

/* The machine alone cannot go back (stub/record.h stacks on it to do
 * that): the command is refused, saying why, and the guest stays. */
static int reverse(void *ctx, unsigned tid, enum stub_action action)
{
    (void)tid;
    (void)action;
    struct stub_control *m = ctx;
    if (stub_control_running(m))
        return -EBUSY;
    if (m->last.exited)
        return -ESRCH;
    struct stub_stop st = m->last;
    st.refused = true;
    snprintf(st.why, sizeof(st.why), "%s",
             m->reverse_refusal ? m->reverse_refusal : "this machine cannot execute backwards");
    stub_log("%s", st.why);
    if (m->attached)
        m->listener.stopped(m->listener.ctx, &st);
    return 0;
}

static void interrupt(void *ctx)
{
    stub_control_interrupt(ctx);
}

static bool running(void *ctx)
{
    return stub_control_running(ctx);
}

static const struct stub_stop *last_stop(void *ctx)
{
    struct stub_control *m = ctx;
    return &m->last;
}

static void attach(void *ctx, const struct stub_target_listener *listener)
{
    stub_control_attach(ctx, listener);
}

static void detach(void *ctx, bool keep_stopped)
{
    stub_control_detach(ctx, keep_stopped);
}

static void pause_output(void *ctx, bool paused)
{
    struct stub_control *m = ctx;
    stub_vcpus_pause_output(m->vcpus, paused);
}

static int monitor(void *ctx, unsigned tid, const char *cmd, struct stub_text *out)
{
    if (stub_control_running(ctx))
        return -EBUSY;
    return stub_monitor_run(ctx, tid, cmd, out);
}

static void kill_target(void *ctx)
{
    stub_log("gdb killed the guest; exiting");
    stub_control_exit(ctx, 0);
}

static void end_guest(void *ctx)
{
    stub_control_end_guest(ctx);
}

static void extended(void *ctx)
{
    stub_control_set_extended(ctx);
}

static int restart(void *ctx)
{
    struct stub_control *m = ctx;
    char err[256];
    int r = stub_control_reset(m, err, sizeof(err));
    if (r)
        stub_log("cannot start the guest again: %s", err);
    return r;
}

static const struct stub_target_ops ops = {
    .threads = threads,
    .regsets = regsets,
    .thread_info = thread_info,
    .reg_read = reg_read,
    .reg_write = reg_write,
    .mem_read = mem_read,
    .mem_write = mem_write,
    .bp_insert = bp_insert,
    .bp_remove = bp_remove,
    .resume = resume,
    .reverse = reverse,
    .interrupt = interrupt,
    .running = running,
    .last_stop = last_stop,
    .attach = attach,
    .detach = detach,
    .pause_output = pause_output,
    .monitor = monitor,
    .kill = kill_target,
    .end_guest = end_guest,
    .restart = restart,
    .extended = extended,
};

struct stub_target stub_target_kvm(struct stub_control *m)
{
    return (struct stub_target){.ops = &ops, .ctx = m};
}
