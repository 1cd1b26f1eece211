#include "machine.h"

#include "log.h"
#include "session.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void initial_stop(struct stub_machine *m)
{
    memset(&m->last, 0, sizeof(m->last));
    m->last.signal = STUB_SIGTRAP;
}

static int load(struct stub_machine *m, char *err, size_t errlen)
{
    int r = vm_image_load(m->vm, &m->image, &m->opts->image_opts, err, errlen);
    if (r)
        return r;
    struct vm_cpu *cpu = &m->vm->cpus[0];
    for (size_t i = 0; i < m->opts->nregs; i++) {
        r = vm_reg_set(cpu, m->opts->regs[i].id, m->opts->regs[i].value);
        if (r) {
            snprintf(err, errlen, "--reg: the CPU does not accept that value: %s", strerror(-r));
            return r;
        }
    }
    initial_stop(m);
    return 0;
}

/* What gdb is told about a vm event. */
static void translate(struct stub_machine *m, const struct vm_event *ev, int err,
                      struct stub_stop *st)
{
    memset(st, 0, sizeof(*st));
    st->signal = STUB_SIGTRAP;
    uint64_t rip = 0;
    vm_reg_get(&m->vm->cpus[0], VM_REG_RIP, &rip);
    if (err) {
        st->signal = STUB_SIGSEGV;
        snprintf(st->why, sizeof(st->why), "KVM_RUN failed: %s", strerror(-err));
        return;
    }
    switch (ev->type) {
    case VM_EVENT_HALT:
        if (m->opts->on_hlt == STUB_HLT_EXIT) {
            st->exited = true;
            st->status = 0;
        }
        break;
    case VM_EVENT_DEBUG_EXIT:
        st->exited = true;
        st->status = ev->u.exit.status;
        break;
    case VM_EVENT_BREAKPOINT:
        if (ev->u.bp.addr != ~0ull)
            st->reason = ev->u.bp.hardware ? STUB_REASON_HWBREAK : STUB_REASON_SWBREAK;
        break;
    case VM_EVENT_WATCH:
        st->reason = ev->u.watch.type == VM_WATCH_WRITE  ? STUB_REASON_WATCH
                     : ev->u.watch.type == VM_WATCH_READ ? STUB_REASON_RWATCH
                                                         : STUB_REASON_AWATCH;
        st->addr = ev->u.watch.addr;
        break;
    case VM_EVENT_INTERRUPTED:
    case VM_EVENT_SERIAL:
        st->signal = m->attach_stop ? STUB_SIGTRAP : STUB_SIGINT;
        break;
    case VM_EVENT_SHUTDOWN:
        st->signal = STUB_SIGSEGV;
        snprintf(st->why, sizeof(st->why),
                 "triple fault: the guest CPU shut down (last rip 0x%llx)",
                 (unsigned long long)rip);
        break;
    case VM_EVENT_ENTRY_FAILED:
        st->signal = STUB_SIGILL;
        snprintf(st->why, sizeof(st->why),
                 "KVM could not enter the guest (hardware reason 0x%llx): the CPU state is "
                 "invalid",
                 (unsigned long long)ev->u.entry.reason);
        break;
    case VM_EVENT_INTERNAL_ERROR:
        st->signal = STUB_SIGBUS;
        if (ev->u.internal.exit_reason == KVM_EXIT_INTERNAL_ERROR)
            snprintf(st->why, sizeof(st->why),
                     "KVM internal error %u at rip 0x%llx (executing or emulating an access to "
                     "memory that is not RAM?)",
                     ev->u.internal.suberror, (unsigned long long)rip);
        else
            snprintf(st->why, sizeof(st->why), "unexpected KVM exit %u at rip 0x%llx",
                     ev->u.internal.exit_reason, (unsigned long long)rip);
        break;
    case VM_EVENT_STEP:
        break;
    }
}

static void on_output(void *ctx, const uint8_t *data, size_t n)
{
    struct stub_machine *m = ctx;
    stub_console_write(&m->console, data, n);
    if (m->session)
        stub_session_output(m->session, data, n);
}

static void on_stop(void *ctx, const struct vm_event *ev, int err)
{
    struct stub_machine *m = ctx;
    struct stub_stop st;
    translate(m, ev, err, &st);
    m->attach_stop = false;
    m->stops++;
    if (st.why[0])
        stub_log("guest stopped: %s", st.why);
    if (m->clear_at_stop) {
        /* The gdb that left had breakpoints in; they leave with it. */
        m->clear_at_stop = false;
        vm_debug_clear(&m->vm->cpus[0]);
    }
    bool benign = ev->type == VM_EVENT_INTERRUPTED || ev->type == VM_EVENT_SERIAL ||
                  ev->type == VM_EVENT_BREAKPOINT || ev->type == VM_EVENT_WATCH ||
                  ev->type == VM_EVENT_STEP;
    if (m->resume_at_stop && benign && !err) {
        m->resume_at_stop = false;
        struct stub_run run = {.mode = VM_RUN_CONTINUE};
        stub_vcpu_resume(&m->vcpu, &run);
        return;
    }
    m->resume_at_stop = false;
    m->last = st;
    if (m->session) {
        stub_session_stopped(m->session, &st);
    } else if (st.exited) {
        stub_log("guest exited with status %u", st.status);
        stub_machine_exit(m, (int)(st.status & 0xff));
    } else if (ev->type == VM_EVENT_HALT) {
        stub_log("guest halted; connect gdb to look at it");
    }
    if (st.exited && m->session)
        stub_machine_exit(m, (int)(st.status & 0xff));
}

int stub_machine_init(struct stub_machine *m, const struct stub_options *opts, uv_loop_t *loop,
                      char *err, size_t errlen, bool *image_problem)
{
    memset(m, 0, sizeof(*m));
    m->opts = opts;
    m->loop = loop;
    *image_problem = true;
    int r = vm_image_open(&m->image, opts->image, err, errlen);
    if (r)
        return r;
    *image_problem = false;
    struct vm_config cfg = {
        .ram_size = opts->memory, .log = stub_vm_log, .trace = opts->trace};
    if ((r = vm_create(&cfg, &m->vm, err, errlen)))
        return r;
    *image_problem = true;
    if (opts->force_hlt_breakpoints)
        m->vm->debug.bp_method = VM_BP_HLT;
    m->vm->debug.watch_method = opts->watch_method;
    if (opts->watch_method == VM_WATCH_DEBUG_REGS && !m->vm->debug.hw_data)
        stub_log("warning: --watchpoints debug-registers, but this host's KVM does not report "
                 "data breakpoints; watchpoints will not fire (use auto)");
    if ((r = load(m, err, errlen)))
        return r;
    *image_problem = false;
    if ((r = stub_console_open(&m->console, opts->serial))) {
        snprintf(err, errlen, "cannot open --serial file %s: %s", opts->serial, strerror(-r));
        return r;
    }
    if ((r = stub_vcpu_start(&m->vcpu, loop, m->vm, on_output, on_stop, m))) {
        snprintf(err, errlen, "cannot start the vCPU thread: %s", strerror(-r));
        return r;
    }
    return 0;
}

void stub_machine_free(struct stub_machine *m)
{
    if (m->vcpu.started || m->vcpu.async.loop)
        stub_vcpu_stop(&m->vcpu);
    stub_console_close(&m->console);
    vm_image_free(&m->image);
    vm_destroy(m->vm);
    m->vm = NULL;
}

bool stub_machine_running(const struct stub_machine *m)
{
    return stub_vcpu_running(&m->vcpu);
}

int stub_machine_resume(struct stub_machine *m, const struct stub_run *run)
{
    if (stub_machine_running(m))
        return -EBUSY;
    if (m->last.exited)
        return -ESRCH;
    stub_vcpu_resume(&m->vcpu, run);
    return 0;
}

void stub_machine_interrupt(struct stub_machine *m)
{
    stub_vcpu_interrupt(&m->vcpu);
}

void stub_machine_attach(struct stub_machine *m, struct stub_session *s)
{
    m->session = s;
    m->resume_at_stop = false; /* the new gdb gets the guest stopped */
    if (stub_machine_running(m)) {
        m->attach_stop = true;
        stub_vcpu_interrupt(&m->vcpu);
    }
}

void stub_machine_detach(struct stub_machine *m, struct stub_session *s)
{
    if (m->session != s)
        return;
    m->session = NULL;
    if (stub_machine_running(m)) {
        m->clear_at_stop = true;
        m->resume_at_stop = true;
        m->attach_stop = true; /* our stop, not the guest's */
        stub_vcpu_interrupt(&m->vcpu);
    } else {
        vm_debug_clear(&m->vm->cpus[0]);
    }
}

int stub_machine_reset(struct stub_machine *m, char *err, size_t errlen)
{
    if (stub_machine_running(m))
        return -EBUSY;
    int r = vm_reset(m->vm);
    if (r) {
        snprintf(err, errlen, "cannot reset the VM: %s", strerror(-r));
        return r;
    }
    stub_console_clear(&m->console);
    return load(m, err, errlen);
}

void stub_machine_exit(struct stub_machine *m, int status)
{
    m->exit_requested = true;
    m->exit_status = status;
    if (m->request_exit)
        m->request_exit(m->server_ctx);
}

enum vm_arch stub_machine_arch(struct stub_machine *m, bool *real_mode)
{
    enum vm_mode mode = vm_cpu_mode(&m->vm->cpus[0]);
    *real_mode = mode == VM_MODE_REAL;
    return mode == VM_MODE_LONG ? VM_ARCH_AMD64 : VM_ARCH_I386;
}
