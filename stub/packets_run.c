/* Execution and the process: stop reasons (?), resumes (c C s S vCont),
 * reverse execution (bs bc), kill, restart and detach. See packets.h. */
#include "packets.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ? */
static void h_halt_reason(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    stub_packets_stop_reply(s, STUB_CALL0(s, last_stop));
}

static void resume(struct stub_session *s, const struct stub_resume *r)
{
    const struct stub_stop *last = STUB_CALL0(s, last_stop);
    if (last->exited) {
        /* Nothing left to run: tell gdb again how it ended. */
        stub_packets_stop_reply(s, last);
        return;
    }
    /* Set first: a target may report the stop before resume returns. */
    s->waiting_stop = true;
    int err = STUB_CALL(s, resume, r);
    if (err) {
        s->waiting_stop = false;
        stub_packets_error(s, err);
    }
}

/* A bare-metal guest has no signals to be given: gdb's "signal N" and a
 * continue that passes one get an error that says so, instead of the signal
 * quietly going nowhere. */
static const char *gdb_signal_name(unsigned sig)
{
    /* gdb's own numbering (include/gdb/signals.def). */
    static const char *const names[] = {
        NULL,      "SIGHUP",  "SIGINT",  "SIGQUIT", "SIGILL",    "SIGTRAP", "SIGABRT",
        "SIGEMT",  "SIGFPE",  "SIGKILL", "SIGBUS",  "SIGSEGV",   "SIGSYS",  "SIGPIPE",
        "SIGALRM", "SIGTERM", "SIGURG",  "SIGSTOP", "SIGTSTP",   "SIGCONT", "SIGCHLD",
        "SIGTTIN", "SIGTTOU", "SIGIO",   "SIGXCPU", "SIGXFSZ",   "SIGVTALRM", "SIGPROF",
        "SIGWINCH", "SIGLOST", "SIGUSR1", "SIGUSR2", "SIGPWR"};
    return sig < sizeof(names) / sizeof(names[0]) && names[sig] ? names[sig] : "signal";
}

static bool refuse_signal(struct stub_session *s, unsigned sig)
{
    if (!sig)
        return false;
    char text[200];
    snprintf(text, sizeof(text),
             "kvmstub cannot deliver %s (gdb's signal %u) to the guest: a bare-metal guest has "
             "no signals; continue without it ('signal 0', or 'handle %s nopass')\n",
             gdb_signal_name(sig), sig, gdb_signal_name(sig));
    rsp_send_console(&s->conn, text, strlen(text), 0);
    stub_packets_error(s, EINVAL);
    return true;
}

/* Legacy c, s, C, S: continue resumes every thread, step steps the Hc
 * thread (or the Hg one) while the others stay stopped. addr, when sent,
 * is where that thread goes on. */
static void legacy_resume(struct stub_session *s, bool step, unsigned signal,
                          const struct rsp_arg *addr)
{
    if (refuse_signal(s, signal))
        return;
    unsigned tid = s->c_tid ? s->c_tid : s->g_tid;
    if (addr->present) {
        uint8_t v[8];
        for (int i = 0; i < 8; i++)
            v[i] = (uint8_t)(addr->num >> (8 * i));
        int err = STUB_CALL(s, reg_write, tid, VM_REG_RIP, v, 8);
        if (err) {
            stub_packets_error(s, err);
            return;
        }
    }
    if (!stub_packets_live_threads(s)) {
        stub_packets_stop_reply(s, STUB_CALL0(s, last_stop)); /* how it ended, again */
        return;
    }
    struct stub_resume r = {.count = STUB_CALL0(s, threads)};
    if (r.count > STUB_MAX_THREADS)
        r.count = STUB_MAX_THREADS;
    for (unsigned i = 0; i < r.count; i++)
        if (!step || i + 1 == tid)
            r.threads[i].action = step ? STUB_ACTION_STEP : STUB_ACTION_CONTINUE;
    resume(s, &r);
}

/* c [addr] */
static void h_continue(struct stub_session *s, const struct rsp_args *a)
{
    legacy_resume(s, false, 0, &a->arg[0]);
}

/* C sig[;addr] */
static void h_continue_signal(struct stub_session *s, const struct rsp_args *a)
{
    legacy_resume(s, false, (unsigned)a->arg[0].num, &a->arg[1]);
}

/* s [addr] */
static void h_step(struct stub_session *s, const struct rsp_args *a)
{
    legacy_resume(s, true, 0, &a->arg[0]);
}

/* S sig[;addr] */
static void h_step_signal(struct stub_session *s, const struct rsp_args *a)
{
    legacy_resume(s, true, (unsigned)a->arg[0].num, &a->arg[1]);
}

static void h_vcont_query(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    stub_packets_reply(s, "vCont;c;C;s;S;t;r");
}

static bool tid_matches(const struct rsp_tid *t, unsigned tid)
{
    if (t->has_pid && t->pid.kind == RSP_ID_NUM && t->pid.num != STUB_PACKETS_PID)
        return false;
    return t->tid.kind != RSP_ID_NUM || t->tid.num == tid;
}

/* vCont;action[:tid]...: each thread takes the first action that names it
 * (or names no thread); threads no action names stay stopped. */
static void h_vcont(struct stub_session *s, const struct rsp_args *args)
{
    const struct rsp_vcont_action *actions = args->vcont;
    size_t count = (size_t)args->arg[0].num;
    if (!stub_packets_live_threads(s)) {
        stub_packets_stop_reply(s, STUB_CALL0(s, last_stop)); /* how it ended, again */
        return;
    }
    struct stub_resume r = {.count = STUB_CALL0(s, threads)};
    if (r.count > STUB_MAX_THREADS)
        r.count = STUB_MAX_THREADS;
    bool any = false, only_stops = true;
    for (size_t i = 0; i < count; i++) {
        const struct rsp_vcont_action *a = &actions[i];
        if (a->has_tid && a->tid.tid.kind == RSP_ID_NUM &&
            !stub_packets_thread_exists(s, (unsigned)a->tid.tid.num)) {
            stub_packets_error(s, ESRCH);
            return;
        }
        only_stops &= a->action == 't';
        if ((a->action == 'C' || a->action == 'S') && refuse_signal(s, a->signal))
            return;
    }
    if (only_stops) {
        /* Stop threads that are stopped already. */
        stub_packets_stop_reply(s, STUB_CALL0(s, last_stop));
        return;
    }
    for (unsigned t = 0; t < r.count; t++) {
        for (size_t i = 0; i < count; i++) {
            const struct rsp_vcont_action *a = &actions[i];
            if (a->has_tid && !tid_matches(&a->tid, t + 1))
                continue;
            struct stub_thread_action *ta = &r.threads[t];
            switch (a->action) {
            case 'c':
            case 'C':
                ta->action = STUB_ACTION_CONTINUE;
                break;
            case 's':
            case 'S':
                ta->action = STUB_ACTION_STEP;
                break;
            case 'r':
                ta->action = STUB_ACTION_RANGE;
                ta->start = a->start;
                ta->end = a->end;
                break;
            case 't':
                break;
            default:
                stub_packets_error(s, EINVAL);
                return;
            }
            any |= ta->action != STUB_ACTION_NONE;
            break;
        }
    }
    if (!any) {
        stub_packets_error(s, EINVAL);
        return;
    }
    resume(s, &r);
}

/* bs, bc: the thread gdb continues or steps (Hc, else Hg). */
static void reverse(struct stub_session *s, enum stub_action action)
{
    if (!s->target.ops->reverse) {
        stub_packets_reply(s, "");
        return;
    }
    if (!stub_packets_live_threads(s)) {
        stub_packets_stop_reply(s, STUB_CALL0(s, last_stop));
        return;
    }
    unsigned tid = s->c_tid ? s->c_tid : s->g_tid;
    s->waiting_stop = true;
    int err = STUB_CALL(s, reverse, tid, action);
    if (err) {
        s->waiting_stop = false;
        stub_packets_error(s, err);
    }
}

static void h_reverse_step(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    reverse(s, STUB_ACTION_STEP);
}

static void h_reverse_continue(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    reverse(s, STUB_ACTION_CONTINUE);
}

/* vKill wants OK. After k gdb reads nothing (so a reply does no harm);
 * LLDB waits for the exit status, and reports "failed to send the k
 * packet" without one: X09 says "ended by SIGKILL", as lldb-server says. */
static void kill_guest(struct stub_session *s, const char *reply)
{
    stub_packets_reply(s, reply);
    if (s->extended) {
        /* extended-remote: the guest ends, kvmstub stays for 'run'. */
        STUB_CALL0(s, end_guest);
        return;
    }
    s->killed = true;
    STUB_CALL0(s, kill);
}

/* k */
static void h_kill(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    kill_guest(s, "X09");
}

/* vKill;pid */
static void h_vkill(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    kill_guest(s, "OK");
}

/* ! */
static void h_extended(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    s->extended = true;
    STUB_CALL0(s, extended);
    stub_packets_reply(s, "OK");
}

/* The image again from its start, stopped at its entry. */
static int restart(struct stub_session *s)
{
    int err = STUB_CALL0(s, restart);
    if (err) {
        stub_packets_error(s, err);
        return err;
    }
    s->arch_known = false;
    return 0;
}

/* R [XX]: the value means nothing to any stub. R has no reply. */
static void h_restart(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    restart(s);
}

/* vRun;program[;args]: the program gdb names is its own business; kvmstub
 * runs the image it was given. */
static void h_run(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    if (!restart(s))
        stub_packets_stop_reply(s, STUB_CALL0(s, last_stop));
}

static void detach(struct stub_session *s, bool keep_stopped)
{
    stub_packets_reply(s, "OK");
    s->keep_stopped = keep_stopped;
    s->closing = true;
}

/* D[;pid] */
static void h_detach(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    detach(s, false);
}

/* D1: LLDB's "detach and stay stopped" (gdb never sends a bare digit). */
static void h_detach_stay_stopped(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    detach(s, true);
}

static const struct stub_packet packets[] = {
    {{"?", ""}, h_halt_reason},
    {{"c", "[n]"}, h_continue},
    {{"C", "g[;n]"}, h_continue_signal},
    {{"s", "[n]"}, h_step},
    {{"S", "g[;n]"}, h_step_signal},
    {{"vCont?", ""}, h_vcont_query},
    {{"vCont", "V"}, h_vcont},
    /* Anything else after 'b' is the long gone baud-rate packet, which
     * stays unsupported. */
    {{"bs", ""}, h_reverse_step},
    {{"bc", ""}, h_reverse_continue},
    {{"k", ""}, h_kill},
    {{"vKill", ";n"}, h_vkill},
    {{"!", ""}, h_extended},
    {{"R", "[n]"}, h_restart},
    {{"vRun", ";s"}, h_run},
    {{"D", "[;n]"}, h_detach},
    {{"D1", ""}, h_detach_stay_stopped},
};

const struct stub_packet_table stub_packets_run = {packets, sizeof(packets) / sizeof(packets[0])};
