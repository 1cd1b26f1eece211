/* The machine: VM, image, vCPU threads, all-stop run control, policies. */
#include "control.h"

#include "kvm_error.h"
#include "log.h"
#include "snapstore.h"

#include <ctype.h>
#include <signal.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The one place that maps vCPUs to gdb's thread ids. */
static unsigned tid_of(unsigned index)
{
    return index + 1;
}

struct vm_cpu *stub_control_cpu(struct stub_control *m, unsigned tid)
{
    return tid >= 1 && tid <= m->ncpus ? vm_cpu(m->vm, tid - 1) : NULL;
}

static void end_state(struct stub_control *m);
static int run(struct stub_control *m, const struct stub_resume *r);

static void initial_stop(struct stub_control *m)
{
    m->last_benign = true; /* a guest at its entry may be left to run */
    m->end_at_stop = false;
    memset(&m->last, 0, sizeof(m->last));
    m->last.tid = tid_of(0);
    m->last.signal = STUB_SIGTRAP;
    for (unsigned i = 0; i < m->ncpus; i++)
        m->threads[i].has_kept = false;
    m->reset_pending = false;
}

static int load(struct stub_control *m, char *err, size_t errlen)
{
    int r = vm_image_load(m->vm, &m->image, &m->image_opts, err, errlen);
    if (r)
        return r;
    struct vm_cpu *boot = stub_control_cpu(m, tid_of(0));
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
static void translate(struct stub_control *m, unsigned index, const struct vm_event *ev, int err,
                      struct stub_stop *st)
{
    memset(st, 0, sizeof(*st));
    st->tid = tid_of(index);
    st->signal = STUB_SIGTRAP;
    uint64_t rip = 0;
    vm_reg_get(vm_cpu(m->vm, index), VM_REG_RIP, &rip);
    if (err) {
        st->cause = STUB_CAUSE_FAILED;
        st->signal = STUB_SIGSEGV;
        snprintf(st->why, sizeof(st->why), "KVM_RUN failed on CPU %u: %s", index, strerror(-err));
        return;
    }
    switch (ev->type) {
    case VM_EVENT_STEP:
        st->cause = STUB_CAUSE_STEP;
        break;
    case VM_EVENT_BREAKPOINT:
        st->cause = STUB_CAUSE_BREAKPOINT;
        break;
    case VM_EVENT_WATCH:
        st->cause = STUB_CAUSE_WATCH;
        break;
    case VM_EVENT_HALT:
        st->cause = STUB_CAUSE_HALT;
        break;
    case VM_EVENT_IO:
        st->cause = STUB_CAUSE_IO;
        break;
    case VM_EVENT_INTERRUPTED:
    case VM_EVENT_SERIAL:
        st->cause = STUB_CAUSE_INTERRUPTED;
        break;
    default:
        break;
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
        if (m->board->resets_on_shutdown && !m->attached) {
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
                 m->board->resets_on_shutdown ? "; continuing resets the machine, which ends it"
                                              : "");
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
            stub_kvm_error_text(ev, rip, st->why, sizeof(st->why));
        else
            snprintf(st->why, sizeof(st->why), "unexpected KVM exit %u at rip 0x%llx",
                     ev->u.internal.exit_reason, (unsigned long long)rip);
        break;
    case VM_EVENT_STEP:
        break;
    case VM_EVENT_IO: {
        const char *dir = ev->u.io.out ? "out" : "in";
        uint32_t v = ev->u.io.value;
        char ch[8] = "";
        if (ev->u.io.size == 1 && isprint((int)v))
            snprintf(ch, sizeof(ch), " ('%c')", (char)v);
        snprintf(st->why, sizeof(st->why), "port 0x%x: %s of %u byte%s, value 0x%x%s (catch %u)",
                 ev->u.io.port, dir, ev->u.io.size, ev->u.io.size > 1 ? "s" : "", v, ch,
                 ev->u.io.catch_id);
        snprintf(m->last_catch, sizeof(m->last_catch), "%s, rip 0x%llx", st->why,
                 (unsigned long long)rip);
        break;
    }
    }
}

#define HELD_MAX (1u << 20)

static void show(struct stub_control *m, const uint8_t *data, size_t n)
{
    stub_console_write(&m->console, data, n);
    if (m->attached)
        m->listener.output(m->listener.ctx, data, n);
}

static void hold(struct stub_control *m, const uint8_t *data, size_t n)
{
    size_t room = HELD_MAX - m->held_len;
    if (n > room) {
        m->held_dropped += n - room;
        n = room;
    }
    if (!n)
        return;
    if (!m->held && !(m->held = malloc(HELD_MAX))) {
        m->held_dropped += n;
        return;
    }
    memcpy(m->held + m->held_len, data, n);
    m->held_len += n;
}

static void on_output(void *ctx, const uint8_t *data, size_t n)
{
    struct stub_control *m = ctx;
    if (m->replaying)
        return; /* the guest said it already, when it ran this the first time */
    if (m->holding) {
        hold(m, data, n);
        return;
    }
    size_t end;
    int which = stub_until_feed(&m->until, data, n, &end);
    if (which < 0) {
        show(m, data, n);
        return;
    }
    /* What the user sees ends with the text; the guest stops. */
    show(m, data, end);
    hold(m, data + end, n - end);
    m->holding = true;
    m->until_matched = which;
    stub_control_interrupt(m);
}

/* Output held back since a match goes out when the guest runs on. */
static void release_held(struct stub_control *m)
{
    m->holding = false;
    if (m->held_len)
        show(m, m->held, m->held_len);
    if (m->held_dropped)
        stub_log("%llu bytes of console output after the --until match were dropped (more than "
                 "%u came before the guest stopped)",
                 (unsigned long long)m->held_dropped, HELD_MAX);
    m->held_len = 0;
    m->held_dropped = 0;
}

/* The stop of a run is known and every vCPU is stopped: tell gdb, or apply
 * the policy for a guest nobody watches. */
static bool benign(const struct stub_control_stop *ms);

static void report(struct stub_control *m, const struct stub_control_stop *ms)
{
    const struct stub_stop *st = &ms->st;
    if (st->exited && !stub_control_running(m)) {
        /* The guest's last words, should any still wait in the VM (every
         * vCPU is stopped: the loop owns it): they come before the end. */
        uint8_t tail[4096];
        size_t n;
        vm_collect_output(m->vm);
        while ((n = vm_console_take(m->vm, tail, sizeof(tail))) > 0)
            on_output(m, tail, n);
    }
    if (m->end_at_stop) {
        m->end_at_stop = false;
        end_state(m);
        return;
    }
    m->last = *st;
    m->last_benign = benign(ms);
    m->stops++;
    m->reset_pending =
        m->board->resets_on_shutdown && ms->type == VM_EVENT_SHUTDOWN && !st->exited && !ms->failed;
    if (st->why[0])
        stub_log("guest stopped: %s", st->why);
    if (m->attached) {
        m->listener.stopped(m->listener.ctx, st);
    } else if (st->exited && m->timed_out) {
        stub_log("the guest was ended by --timeout (exit status 124)");
    } else if (st->exited) {
        stub_log("guest exited with status %u", st->status);
    } else if (m->until_matched >= 0) {
        /* A runner waiting for a text: it came. */
        stub_control_exit(m, 0);
        return;
    } else if (m->opts->no_gdb) {
        /* Nobody can ever look at this stop: end with a status that says
         * what it was, as a shell does for a process killed by a signal. */
        /* The shell's convention: 128 + the host's number of that signal. */
        int host = st->signal == STUB_SIGBUS ? SIGBUS : st->signal;
        stub_log("no gdb can attach (--no-gdb); exiting with status %d", 128 + host);
        stub_control_exit(m, 128 + host);
        return;
    } else if (ms->type == VM_EVENT_HALT && !ms->failed) {
        stub_log("guest halted; connect gdb to look at it");
    }
    if (st->exited && (m->timed_out || !m->extended))
        stub_control_exit(m, m->timed_out ? 124 : (int)(st->status & 0xff));
}

void stub_control_set_extended(struct stub_control *m)
{
    m->extended = true;
}

/* Stops that are no event of the guest's own: ours, or the debugger's. */
static bool benign(const struct stub_control_stop *ms)
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

static bool in_range(struct stub_control *m, unsigned index, const struct stub_thread_action *a)
{
    uint64_t rip;
    return vm_reg_get(vm_cpu(m->vm, index), VM_REG_RIP, &rip) == 0 && rip >= a->start &&
           rip < a->end;
}

/* The private step off a breakpoint is done: the resume gdb asked for goes
 * on, unless that step was all it asked of this vCPU. */
static bool private_step_done(struct stub_control *m, unsigned index, const struct vm_event *ev,
                              int err)
{
    m->private_step = false;
    const struct stub_thread_action *a = &m->pending.threads[index];
    if (err || ev->type != VM_EVENT_STEP || m->interrupting || a->action == STUB_ACTION_STEP ||
        (a->action == STUB_ACTION_RANGE && !in_range(m, index, a)))
        return false;
    struct stub_resume r = m->pending;
    return run(m, &r) == 0;
}

static void on_stop(void *ctx, unsigned index, const struct vm_event *ev, int err)
{
    struct stub_control *m = ctx;
    if (m->private_step && index == m->private_index && private_step_done(m, index, ev, err))
        return;
    struct stub_control_stop ms = {.type = ev->type, .failed = err != 0};
    translate(m, index, ev, err, &ms.st);
    if (err || (ev->type != VM_EVENT_INTERRUPTED && ev->type != VM_EVENT_SERIAL)) {
        if (!m->have_primary) {
            m->primary = ms;
            m->have_primary = true;
        } else {
            /* All-stop reports one stop at a time; this one waits. */
            m->threads[index].kept = ms;
            m->threads[index].has_kept = true;
        }
        /* The others stop too before gdb hears of it. */
        for (unsigned i = 0; i < m->ncpus; i++)
            stub_vcpus_interrupt(m->vcpus, i);
    }
    if (stub_vcpus_any_running(m->vcpus))
        return;

    /* Every vCPU is stopped now. The disk workers finish the request in
     * hand and wait, so that while the guest is stopped its RAM and rings
     * stay as the debugger sees them and no request completes unseen. */
    if (!m->devices_held) {
        vm_devices_hold(m->vm, true);
        m->devices_held = true;
    }
    if (m->replaying) {
        /* A replay's stop goes to the layer that asked for it as it is. */
        struct stub_control_stop ps = m->primary;
        if (!m->have_primary) {
            ps.type = VM_EVENT_INTERRUPTED;
            ps.failed = false;
            translate(m, 0, &(struct vm_event){.type = VM_EVENT_INTERRUPTED}, 0, &ps.st);
        }
        m->have_primary = false;
        for (unsigned i = 0; i < m->ncpus; i++)
            m->threads[i].has_kept = false;
        m->last = ps.st;
        m->last_benign = benign(&ps);
        if (m->attached)
            m->listener.stopped(m->listener.ctx, &ps.st);
        return;
    }
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
            ours = !m->threads[i].has_kept || benign(&m->threads[i].kept);
        if (ours) {
            /* Nobody watches: the guest runs on as if nothing happened. */
            for (unsigned i = 0; i < m->ncpus; i++)
                m->threads[i].has_kept = false;
            m->have_primary = false;
            stub_control_resume_all(m, STUB_ACTION_CONTINUE);
            return;
        }
    }
    if (!m->have_primary) {
        /* Interrupted (Ctrl-C, a debugger attaching, a text found, the time
         * up): reported on the first vCPU, which is the thread gdb selects. */
        m->primary.type = VM_EVENT_INTERRUPTED;
        m->primary.failed = false;
        translate(m, 0, &(struct vm_event){.type = VM_EVENT_INTERRUPTED}, 0, &m->primary.st);
        if (attach_stop)
            m->primary.st.signal = STUB_SIGTRAP;
        if (m->timed_out) {
            m->primary.st.exited = true;
            m->primary.st.status = 124;
        } else if (m->until_matched >= 0) {
            m->primary.st.signal = STUB_SIGTRAP;
            snprintf(m->primary.st.why, sizeof(m->primary.st.why), "the guest printed '%.100s'",
                     m->until.texts[m->until_matched].text);
        }
    }
    m->have_primary = false;
    report(m, &m->primary);
}

static void report_kept(uv_timer_t *t)
{
    struct stub_control *m = t->data;
    unsigned i = m->kept_to_report;
    if (i < m->ncpus && m->threads[i].has_kept) {
        m->threads[i].has_kept = false;
        report(m, &m->threads[i].kept);
    }
}

/* The last non-empty line the guest printed, for messages. */
static void last_line(struct stub_control *m, char *out, size_t cap)
{
    uint8_t tail[512];
    size_t n = stub_console_recent(&m->console, tail, sizeof(tail)), e = n;
    while (e && (tail[e - 1] == '\n' || tail[e - 1] == '\r'))
        e--;
    size_t b = e;
    while (b && tail[b - 1] != '\n')
        b--;
    size_t k = 0;
    for (size_t i = b; i < e && k + 1 < cap; i++)
        out[k++] = isprint(tail[i]) ? (char)tail[i] : '?';
    out[k] = 0;
}

static void on_timeout(uv_timer_t *t)
{
    struct stub_control *m = t->data;
    char line[128];
    last_line(m, line, sizeof(line));
    stub_log("--timeout: the guest did not end within %g s; its last line was '%s'",
             m->opts->timeout, line);
    m->timed_out = true;
    if (stub_control_running(m)) {
        /* The stop becomes an exit with status 124, also for gdb. */
        stub_control_interrupt(m);
        return;
    }
    stub_control_exit(m, 124);
}

int stub_control_until(struct stub_control *m, const char *text)
{
    return stub_until_add(&m->until, text);
}

void stub_control_until_clear(struct stub_control *m)
{
    stub_until_clear(&m->until);
}

int stub_control_init(struct stub_control *m, const struct stub_options *opts, uv_loop_t *loop,
                      struct stub_shutdown *shutdown, char *err, size_t errlen,
                      bool *image_problem)
{
    memset(m, 0, sizeof(*m));
    m->opts = opts;
    m->shutdown = shutdown;
    m->loop = loop;
    m->image_opts = opts->image_opts;
    *image_problem = true;
    uint64_t ram = opts->memory;
    unsigned ncpus = opts->ncpus ? opts->ncpus : 1;
    const char *image = opts->image;
    int r;
    /* Outlives the block: image may point into it. */
    struct stub_snapstore_file_info info;
    if (opts->restore) {
        /* The file says how big the machine is, and which image it ran. */
        if ((r = stub_snapstore_peek(opts->restore, &info, err, errlen)))
            return r;
        ram = info.ram_size;
        if (opts->has_ncpus && opts->ncpus != info.ncpus) {
            snprintf(err, errlen,
                     "--cpus %u, but %s holds a machine with %u: leave --cpus out with --restore",
                     opts->ncpus, opts->restore, info.ncpus);
            return -EINVAL;
        }
        ncpus = info.ncpus;
        if (!image && info.image[0] && access(info.image, R_OK) == 0)
            image = info.image;
        if (!image)
            stub_log("--restore: the image the snapshot was taken of (%s) is not there; the "
                     "guest runs from the snapshot, but 'monitor reset' and 'run' cannot "
                     "start it afresh",
                     info.image[0] ? info.image : "none recorded");
    }
    if (image && (r = vm_image_open(&m->image, image, err, errlen)))
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
    m->board = opts->machine ? opts->machine : vm_board_default(format == VM_IMAGE_BZIMAGE);
    if ((r = vm_board_check(m->board->kind, ncpus, err, errlen)))
        return r;
    if (m->board->irqchip && opts->has_on_hlt) {
        snprintf(err, errlen,
                 "--on-hlt applies to --machine bare only: on %s, hlt waits in KVM for the next "
                 "interrupt, as on a real PC",
                 m->board->name);
        return -EINVAL;
    }
    if (m->board->irqchip && opts->force_hlt_breakpoints) {
        snprintf(err, errlen,
                 "--hlt-breakpoints applies to --machine bare only: on %s, hlt never reaches "
                 "kvmstub",
                 m->board->name);
        return -EINVAL;
    }
    if ((r = vm_disks_check(m->board->kind, opts->drives, opts->ndrives, err, errlen)))
        return r;
    *image_problem = false;
    /* KVMSTUB_NO_BLOCKIRQ=1: step as on a host without
     * KVM_GUESTDBG_BLOCKIRQ (for testing the fallback). */
    const char *nb = getenv("KVMSTUB_NO_BLOCKIRQ");
    if (!opts->restore && !opts->has_memory && m->board->default_ram)
        ram = m->board->default_ram;
    struct vm_config cfg = {.ram_size = ram,
                            .ncpus = ncpus,
                            .board = m->board->kind,
                            .log = stub_vm_log,
                            .trace = opts->trace,
                            .no_blockirq = nb && strcmp(nb, "1") == 0,
                            .drives = opts->drives,
                            .ndrives = opts->ndrives};
    if ((r = vm_create(&cfg, &m->vm, err, errlen)))
        return r;
    m->ncpus = vm_ncpus(m->vm);
    m->threads = calloc(m->ncpus, sizeof(*m->threads));
    if (!m->threads) {
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
    if (m->image.data && (r = load(m, err, errlen)))
        return r;
    if (!m->image.data)
        initial_stop(m);
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
    m->until_matched = -1;
    for (size_t i = 0; i < opts->nuntil; i++) {
        if ((r = stub_until_add(&m->until, opts->until[i])) && r != -EEXIST) {
            snprintf(err, errlen, "--until '%s': %s", opts->until[i], strerror(-r));
            *image_problem = true;
            return r;
        }
    }
    uv_timer_init(loop, &m->timeout_timer);
    m->timeout_timer.data = m;
    if (opts->timeout > 0)
        uv_timer_start(&m->timeout_timer, on_timeout, (uint64_t)(opts->timeout * 1000 + 0.5), 0);
    if ((r = stub_snapstore_create(&m->snapstore, m))) {
        snprintf(err, errlen, "out of memory");
        return r;
    }
    if (opts->restore && (r = stub_snapstore_restore(m->snapstore, opts->restore, err, errlen))) {
        *image_problem = true;
        return r;
    }
    if ((r = stub_vcpus_start(&m->vcpus, loop, m->vm, on_output, on_stop, m))) {
        snprintf(err, errlen, "cannot start the vCPU threads: %s", strerror(-r));
        return r;
    }
    return 0;
}

void stub_control_free(struct stub_control *m)
{
    stub_vcpus_stop(m->vcpus);
    m->vcpus = NULL;
    stub_input_stop(&m->input);
    stub_snapstore_free(m->snapstore);
    m->snapstore = NULL;
    uv_handle_t *timers[] = {(uv_handle_t *)&m->report_timer, (uv_handle_t *)&m->timeout_timer};
    for (size_t i = 0; i < 2; i++)
        if (timers[i]->loop && !uv_is_closing(timers[i]))
            uv_close(timers[i], NULL);
    free(m->held);
    m->held = NULL;
    stub_console_close(&m->console);
    vm_image_free(&m->image);
    vm_image_free(&m->initrd);
    vm_destroy(m->vm);
    m->vm = NULL;
    free(m->threads);
    m->threads = NULL;
}

bool stub_control_running(const struct stub_control *m)
{
    return stub_vcpus_any_running(m->vcpus);
}

int stub_control_resume(struct stub_control *m, const struct stub_resume *r)
{
    if (stub_control_running(m) || uv_is_active((uv_handle_t *)&m->report_timer))
        return -EBUSY;
    if (r->replay)
        return run(m, r);
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
        struct stub_control_stop *k = &m->threads[0].kept;
        memset(k, 0, sizeof(*k));
        k->type = VM_EVENT_RESET;
        translate(m, 0, &(struct vm_event){.type = VM_EVENT_RESET}, 0, &k->st);
        m->threads[0].has_kept = true;
    }
    for (unsigned i = 0; i < m->ncpus && i < r->count; i++) {
        /* Only a thread that this resume lets go reports its kept stop:
         * gdb steps one thread over a breakpoint with the others held
         * (vCont;s:N), and a stop from a thread it did not resume would
         * break its step-over (gdb asserts trap_expected). */
        if (m->threads[i].has_kept && r->threads[i].action != STUB_ACTION_NONE) {
            /* A stop that happened during the last run goes first, from
             * the loop, after the caller has finished with this one. */
            m->kept_to_report = i;
            uv_timer_start(&m->report_timer, report_kept, 0, 0);
            return 0;
        }
    }
    return run(m, r);
}

static int run(struct stub_control *m, const struct stub_resume *r)
{
    m->replaying = r->replay;
    m->have_primary = false;
    m->until_matched = -1;
    m->interrupting = false;
    if (m->holding)
        release_held(m);
    if (m->devices_held) {
        m->devices_held = false;
        vm_devices_hold(m->vm, false);
    }
    unsigned acting = 0;
    for (unsigned i = 0; i < r->count && i < m->ncpus; i++)
        acting += r->threads[i].action != STUB_ACTION_NONE;
    for (unsigned i = 0; acting > 1 && i < r->count && i < m->ncpus; i++) {
        if (r->threads[i].action != STUB_ACTION_NONE &&
            vm_cpu_on_planted_breakpoint(vm_cpu(m->vm, i))) {
            /* Off the breakpoint alone first (see control.h). */
            m->pending = *r;
            m->private_step = true;
            m->private_index = i;
            stub_vcpus_resume(m->vcpus, i, &(struct stub_run){.mode = VM_RUN_STEP});
            return 0;
        }
    }
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

int stub_control_resume_all(struct stub_control *m, enum stub_action action)
{
    struct stub_resume r = {.count = m->ncpus};
    for (unsigned i = 0; i < m->ncpus; i++)
        r.threads[i].action = action;
    return stub_control_resume(m, &r);
}

void stub_control_interrupt(struct stub_control *m)
{
    m->interrupting = true;
    for (unsigned i = 0; i < m->ncpus; i++)
        stub_vcpus_interrupt(m->vcpus, i);
}

void stub_control_attach(struct stub_control *m, const struct stub_target_listener *listener)
{
    m->listener = *listener;
    m->attached = true;
    m->extended = false;
    m->resume_at_stop = false; /* the new gdb gets the guest stopped */
    if (stub_control_running(m)) {
        m->attach_stop = true;
        stub_control_interrupt(m);
    }
}

void stub_control_detach(struct stub_control *m, bool keep_stopped)
{
    if (!m->attached)
        return;
    m->attached = false;
    m->replaying = false; /* nobody waits for that run's stop: it is the guest's again */
    bool run = !keep_stopped && m->opts->on_detach == STUB_DETACH_RUN;
    if (stub_control_running(m)) {
        m->clear_at_stop = true;
        m->resume_at_stop = true;
        m->attach_stop = true; /* our stop, not the guest's */
        stub_control_interrupt(m);
        return;
    }
    vm_debug_clear(m->vm);
    /* As QEMU and gdbserver do: the guest goes on without the debugger. A
     * guest that ended or sits on a stop of its own (a halt, a fault) stays
     * for the next gdb to look at. */
    if (run && !m->last.exited && m->last_benign) {
        stub_log("gdb detached; the guest runs on");
        stub_control_resume_all(m, STUB_ACTION_CONTINUE);
    } else {
        stub_log("gdb detached; the guest stays %s", m->last.exited ? "ended" : "stopped");
    }
}

static void end_state(struct stub_control *m)
{
    memset(&m->last, 0, sizeof(m->last));
    m->last.tid = tid_of(0);
    m->last.exited = true;
    m->last_benign = false;
}

void stub_control_end_guest(struct stub_control *m)
{
    stub_log("gdb killed the guest; 'run' starts it again");
    if (stub_control_running(m)) {
        /* Its stop, when it comes, is the end. */
        m->end_at_stop = true;
        stub_control_interrupt(m);
        return;
    }
    end_state(m);
}

int stub_control_reset(struct stub_control *m, char *err, size_t errlen)
{
    if (stub_control_running(m))
        return -EBUSY;
    if (!m->image.data) {
        snprintf(err, errlen, "there is no image to start from (the snapshot's image was not "
                              "found; give it on the command line)");
        return -ENOENT;
    }
    int r = vm_reset(m->vm);
    if (r) {
        snprintf(err, errlen, "cannot reset the VM: %s", strerror(-r));
        return r;
    }
    stub_console_clear(&m->console);
    return load(m, err, errlen);
}

void stub_control_exit(struct stub_control *m, int status)
{
    stub_shutdown_request(m->shutdown, status);
}
