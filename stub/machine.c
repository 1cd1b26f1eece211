/* The machine: VM, image, vCPU threads, all-stop run control, policies. */
#include "machine.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The one place that maps vCPUs to gdb's thread ids. */
static unsigned tid_of(unsigned index)
{
    return index + 1;
}

struct vm_cpu *stub_machine_cpu(struct stub_machine *m, unsigned tid)
{
    return tid >= 1 && tid <= m->ncpus ? vm_cpu(m->vm, tid - 1) : NULL;
}

static void initial_stop(struct stub_machine *m)
{
    memset(&m->last, 0, sizeof(m->last));
    m->last.tid = tid_of(0);
    m->last.signal = STUB_SIGTRAP;
    for (unsigned i = 0; i < m->ncpus; i++)
        m->has_kept[i] = false;
    m->reset_pending = false;
}

static int load(struct stub_machine *m, char *err, size_t errlen)
{
    int r = vm_image_load(m->vm, &m->image, &m->image_opts, err, errlen);
    if (r)
        return r;
    struct vm_cpu *boot = stub_machine_cpu(m, tid_of(0));
    for (size_t i = 0; i < m->opts->nregs; i++) {
        r = vm_reg_set(boot, m->opts->regs[i].id, m->opts->regs[i].value);
        if (r) {
            snprintf(err, errlen, "--reg: the CPU does not accept that value: %s", strerror(-r));
            return r;
        }
    }
    initial_stop(m);
    return 0;
}

/* What gdb is told about a vm event. */
static void translate(struct stub_machine *m, unsigned index, const struct vm_event *ev, int err,
                      struct stub_stop *st)
{
    memset(st, 0, sizeof(*st));
    st->tid = tid_of(index);
    st->signal = STUB_SIGTRAP;
    uint64_t rip = 0;
    vm_reg_get(vm_cpu(m->vm, index), VM_REG_RIP, &rip);
    if (err) {
        st->signal = STUB_SIGSEGV;
        snprintf(st->why, sizeof(st->why), "KVM_RUN failed on CPU %u: %s", index, strerror(-err));
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
        if (m->pc && !m->attached) {
            /* A PC resets on a triple fault; with nobody to look at it,
             * that ends the guest as with qemu -no-reboot. */
            st->exited = true;
            st->status = 0;
            snprintf(st->why, sizeof(st->why),
                     "triple fault (last rip 0x%llx): the machine resets, which ends it",
                     (unsigned long long)rip);
            break;
        }
        st->signal = STUB_SIGSEGV;
        snprintf(st->why, sizeof(st->why),
                 "triple fault: the guest CPU shut down (last rip 0x%llx)%s",
                 (unsigned long long)rip,
                 m->pc ? "; continuing resets the machine, which ends it" : "");
        break;
    case VM_EVENT_RESET:
        st->exited = true;
        st->status = 0;
        snprintf(st->why, sizeof(st->why),
                 "the guest reset the machine (a reboot), which ends it, as with qemu -no-reboot");
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
    if (m->attached)
        m->listener.output(m->listener.ctx, data, n);
}

/* The stop of a run is known and every vCPU is stopped: tell gdb, or apply
 * the policy for a guest nobody watches. */
static void report(struct stub_machine *m, const struct stub_machine_stop *ms)
{
    const struct stub_stop *st = &ms->st;
    m->last = *st;
    m->stops++;
    m->reset_pending = m->pc && ms->type == VM_EVENT_SHUTDOWN && !st->exited && !ms->failed;
    if (st->why[0])
        stub_log("guest stopped: %s", st->why);
    if (m->attached) {
        m->listener.stopped(m->listener.ctx, st);
    } else if (st->exited) {
        stub_log("guest exited with status %u", st->status);
    } else if (ms->type == VM_EVENT_HALT && !ms->failed) {
        stub_log("guest halted; connect gdb to look at it");
    }
    if (st->exited)
        stub_machine_exit(m, (int)(st->status & 0xff));
}

/* Stops that are no event of the guest's own: ours, or the debugger's. */
static bool benign(const struct stub_machine_stop *ms)
{
    switch (ms->type) {
    case VM_EVENT_INTERRUPTED:
    case VM_EVENT_SERIAL:
    case VM_EVENT_BREAKPOINT:
    case VM_EVENT_WATCH:
    case VM_EVENT_STEP:
        return !ms->failed;
    default:
        return false;
    }
}

static void on_stop(void *ctx, unsigned index, const struct vm_event *ev, int err)
{
    struct stub_machine *m = ctx;
    struct stub_machine_stop ms = {.type = ev->type, .failed = err != 0};
    translate(m, index, ev, err, &ms.st);
    if (err || (ev->type != VM_EVENT_INTERRUPTED && ev->type != VM_EVENT_SERIAL)) {
        if (!m->have_primary) {
            m->primary = ms;
            m->have_primary = true;
        } else {
            /* All-stop reports one stop at a time; this one waits. */
            m->kept[index] = ms;
            m->has_kept[index] = true;
        }
        /* The others stop too before gdb hears of it. */
        for (unsigned i = 0; i < m->ncpus; i++)
            stub_vcpus_interrupt(m->vcpus, i);
    }
    if (stub_vcpus_any_running(m->vcpus))
        return;

    /* Every vCPU is stopped now. */
    bool attach_stop = m->attach_stop;
    m->attach_stop = false;
    if (m->clear_at_stop) {
        /* The gdb that left had breakpoints in; they leave with it. */
        m->clear_at_stop = false;
        vm_debug_clear(m->vm);
    }
    if (m->resume_at_stop) {
        m->resume_at_stop = false;
        bool ours = !m->have_primary || benign(&m->primary);
        for (unsigned i = 0; ours && i < m->ncpus; i++)
            ours = !m->has_kept[i] || benign(&m->kept[i]);
        if (ours) {
            /* Nobody watches: the guest runs on as if nothing happened. */
            for (unsigned i = 0; i < m->ncpus; i++)
                m->has_kept[i] = false;
            m->have_primary = false;
            stub_machine_resume_all(m, STUB_ACTION_CONTINUE);
            return;
        }
    }
    if (!m->have_primary) {
        /* Interrupted (Ctrl-C, or a debugger attaching): reported on the
         * first vCPU, which is the thread gdb selects. */
        m->primary.type = VM_EVENT_INTERRUPTED;
        m->primary.failed = false;
        translate(m, 0, &(struct vm_event){.type = VM_EVENT_INTERRUPTED}, 0, &m->primary.st);
        if (attach_stop)
            m->primary.st.signal = STUB_SIGTRAP;
    }
    m->have_primary = false;
    report(m, &m->primary);
}

static void report_kept(uv_timer_t *t)
{
    struct stub_machine *m = t->data;
    for (unsigned i = 0; i < m->ncpus; i++) {
        if (m->has_kept[i]) {
            m->has_kept[i] = false;
            report(m, &m->kept[i]);
            return;
        }
    }
}

int stub_machine_init(struct stub_machine *m, const struct stub_options *opts, uv_loop_t *loop,
                      struct stub_shutdown *shutdown, char *err, size_t errlen,
                      bool *image_problem)
{
    memset(m, 0, sizeof(*m));
    m->opts = opts;
    m->shutdown = shutdown;
    m->loop = loop;
    m->image_opts = opts->image_opts;
    *image_problem = true;
    int r = vm_image_open(&m->image, opts->image, err, errlen);
    if (r)
        return r;
    if (opts->initrd) {
        if ((r = vm_image_open_file(&m->initrd, opts->initrd, "initrd", err, errlen)))
            return r;
        m->image_opts.initrd = m->initrd.data;
        m->image_opts.initrd_size = m->initrd.size;
        m->image_opts.initrd_name = opts->initrd;
    }
    enum vm_image_format format =
        opts->image_opts.format == VM_IMAGE_AUTO ? vm_image_detect(&m->image)
                                                 : opts->image_opts.format;
    m->pc = opts->machine == STUB_MACHINE_PC ||
            (opts->machine == STUB_MACHINE_AUTO && format == VM_IMAGE_BZIMAGE);
    if (m->pc && opts->has_on_hlt) {
        snprintf(err, errlen,
                 "--on-hlt applies to --machine bare only: on pc, hlt waits in KVM for the next "
                 "interrupt, as on a real PC");
        return -EINVAL;
    }
    if (m->pc && opts->force_hlt_breakpoints) {
        snprintf(err, errlen,
                 "--hlt-breakpoints applies to --machine bare only: on pc, hlt never reaches "
                 "kvmstub");
        return -EINVAL;
    }
    *image_problem = false;
    /* KVMSTUB_NO_BLOCKIRQ=1: step as on a host without
     * KVM_GUESTDBG_BLOCKIRQ (for testing the fallback). */
    const char *nb = getenv("KVMSTUB_NO_BLOCKIRQ");
    struct vm_config cfg = {.ram_size = opts->has_memory ? opts->memory
                                        : m->pc          ? STUB_PC_DEFAULT_RAM
                                                         : VM_DEFAULT_RAM,
                            .ncpus = 1,
                            .board = m->pc ? VM_BOARD_PC : VM_BOARD_BARE,
                            .log = stub_vm_log,
                            .trace = opts->trace,
                            .no_blockirq = nb && strcmp(nb, "1") == 0};
    if ((r = vm_create(&cfg, &m->vm, err, errlen)))
        return r;
    m->ncpus = vm_ncpus(m->vm);
    m->kept = calloc(m->ncpus, sizeof(*m->kept));
    m->has_kept = calloc(m->ncpus, sizeof(*m->has_kept));
    if (!m->kept || !m->has_kept) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    *image_problem = true;
    const struct vm_caps *caps = vm_caps(m->vm);
    struct vm_debug_info di;
    vm_debug_info(m->vm, &di); /* the board's default method */
    enum vm_bp_method bp = opts->force_hlt_breakpoints ? VM_BP_HLT : di.bp_method;
    if ((r = vm_debug_configure(m->vm, bp, opts->watch_method))) {
        snprintf(err, errlen, "cannot set up breakpoints: %s", strerror(-r));
        return r;
    }
    if (opts->watch_method == VM_WATCH_DEBUG_REGS && !caps->hw_data_bp)
        stub_log("warning: --watchpoints debug-registers, but this host's KVM does not deliver "
                 "data breakpoints: gdb's watch commands will be refused (use --watchpoints "
                 "auto or page-traps)");
    if ((r = load(m, err, errlen)))
        return r;
    *image_problem = false;
    if ((r = stub_console_open(&m->console, opts->serial))) {
        snprintf(err, errlen, "cannot open --serial file %s: %s", opts->serial, strerror(-r));
        return r;
    }
    if (opts->serial && strcmp(opts->serial, "-") == 0 &&
        (r = stub_input_start(&m->input, loop, m->vm, 0, err, errlen)))
        return r;
    uv_timer_init(loop, &m->report_timer);
    m->report_timer.data = m;
    if ((r = stub_vcpus_start(&m->vcpus, loop, m->vm, on_output, on_stop, m))) {
        snprintf(err, errlen, "cannot start the vCPU threads: %s", strerror(-r));
        return r;
    }
    return 0;
}

void stub_machine_free(struct stub_machine *m)
{
    stub_vcpus_stop(m->vcpus);
    m->vcpus = NULL;
    if (m->report_timer.loop && !uv_is_closing((uv_handle_t *)&m->report_timer))
        uv_close((uv_handle_t *)&m->report_timer, NULL);
    stub_input_stop(&m->input);
    stub_console_close(&m->console);
    vm_image_free(&m->image);
    vm_image_free(&m->initrd);
    vm_destroy(m->vm);
    m->vm = NULL;
    free(m->kept);
    free(m->has_kept);
    m->kept = NULL;
    m->has_kept = NULL;
}

bool stub_machine_running(const struct stub_machine *m)
{
    return stub_vcpus_any_running(m->vcpus);
}

int stub_machine_resume(struct stub_machine *m, const struct stub_resume *r)
{
    if (stub_machine_running(m) || uv_is_active((uv_handle_t *)&m->report_timer))
        return -EBUSY;
    if (m->last.exited)
        return -ESRCH;
    bool any = false;
    for (unsigned i = 0; i < r->count && i < m->ncpus; i++)
        any |= r->threads[i].action != STUB_ACTION_NONE;
    if (!any)
        return -EINVAL;
    if (m->reset_pending) {
        /* The PC resets after the triple fault gdb has seen: the end. */
        m->reset_pending = false;
        struct stub_machine_stop *k = &m->kept[0];
        memset(k, 0, sizeof(*k));
        k->type = VM_EVENT_RESET;
        translate(m, 0, &(struct vm_event){.type = VM_EVENT_RESET}, 0, &k->st);
        m->has_kept[0] = true;
    }
    for (unsigned i = 0; i < m->ncpus; i++) {
        if (m->has_kept[i]) {
            /* A stop that happened during the last run goes first, from
             * the loop, after the caller has finished with this one. */
            uv_timer_start(&m->report_timer, report_kept, 0, 0);
            return 0;
        }
    }
    m->have_primary = false;
    for (unsigned i = 0; i < r->count && i < m->ncpus; i++) {
        const struct stub_thread_action *a = &r->threads[i];
        if (a->action == STUB_ACTION_NONE)
            continue;
        struct stub_run run = {.mode = a->action == STUB_ACTION_CONTINUE ? VM_RUN_CONTINUE
                                                                         : VM_RUN_STEP,
                               .range = a->action == STUB_ACTION_RANGE,
                               .start = a->start,
                               .end = a->end};
        stub_vcpus_resume(m->vcpus, i, &run);
    }
    return 0;
}

int stub_machine_resume_all(struct stub_machine *m, enum stub_action action)
{
    struct stub_resume r = {.count = m->ncpus};
    for (unsigned i = 0; i < m->ncpus; i++)
        r.threads[i].action = action;
    return stub_machine_resume(m, &r);
}

void stub_machine_interrupt(struct stub_machine *m)
{
    for (unsigned i = 0; i < m->ncpus; i++)
        stub_vcpus_interrupt(m->vcpus, i);
}

void stub_machine_attach(struct stub_machine *m, const struct stub_target_listener *listener)
{
    m->listener = *listener;
    m->attached = true;
    m->resume_at_stop = false; /* the new gdb gets the guest stopped */
    if (stub_machine_running(m)) {
        m->attach_stop = true;
        stub_machine_interrupt(m);
    }
}

void stub_machine_detach(struct stub_machine *m)
{
    if (!m->attached)
        return;
    m->attached = false;
    if (stub_machine_running(m)) {
        m->clear_at_stop = true;
        m->resume_at_stop = true;
        m->attach_stop = true; /* our stop, not the guest's */
        stub_machine_interrupt(m);
    } else {
        vm_debug_clear(m->vm);
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
    stub_shutdown_request(m->shutdown, status);
}
