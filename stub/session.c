/* One gdb connection (session.h): each packet kind has one handler, found
 * in a table by the parsed command's type, and talks only to the target. */
#include "session.h"

#include "log.h"
#include "rsp/command.h"
#include "rsp/hex.h"
#include "tdesc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest memory transfer per packet: its hex (or worst-case escaped
 * binary) must fit a reply of RSP_PACKET_SIZE. */
#define MEM_MAX (RSP_PACKET_SIZE / 2)
/* kvmstub's one process, for multiprocess thread ids. */
#define PID 1

#define CALL(s, op, ...) ((s)->target.ops->op((s)->target.ctx, __VA_ARGS__))
#define CALL0(s, op) ((s)->target.ops->op((s)->target.ctx))

static void flush(struct stub_session *s)
{
    struct rsp_buf *out = &s->conn.out;
    if (!out->len)
        return;
    if (s->link.write)
        s->link.write(s->link.ctx, out->data, out->len);
    rsp_buf_consume(out, out->len);
}

static void reply(struct stub_session *s, const char *text)
{
    rsp_send_str(&s->conn, text);
}

static void reply_error(struct stub_session *s, int err)
{
    rsp_send_error(&s->conn, err < 0 ? -err : err);
}

static void on_output(void *ctx, const uint8_t *data, size_t n);
static void on_stopped(void *ctx, const struct stub_stop *stop);

int stub_session_init(struct stub_session *s, const struct stub_target *target,
                      const struct stub_link *link)
{
    memset(s, 0, sizeof(*s));
    s->target = *target;
    s->link = *link;
    int r = rsp_conn_init(&s->conn);
    if (r)
        return r;
    s->queue = malloc(STUB_SESSION_QUEUE_MAX);
    if (!s->queue) {
        rsp_conn_free(&s->conn);
        return -ENOMEM;
    }
    s->g_tid = 1;
    return 0;
}

void stub_session_free(struct stub_session *s)
{
    rsp_conn_free(&s->conn);
    free(s->queue);
    s->queue = NULL;
}

void stub_session_set_arch(struct stub_session *s, enum stub_gdb_arch arch)
{
    s->gdb_arch = arch;
}

void stub_session_attach(struct stub_session *s)
{
    s->attach_pending = true;
}

/* The attach itself waits for gdb's first byte: a connection that only
 * probes the port (a CI script waiting for kvmstub) must not stop a running
 * guest, nor start a stopped one when it hangs up. */
static void attach_now(struct stub_session *s)
{
    if (!s->attach_pending)
        return;
    s->attach_pending = false;
    s->attached = true;
    struct stub_target_listener l = {.output = on_output, .stopped = on_stopped, .ctx = s};
    CALL(s, attach, &l);
}

void stub_session_detach(struct stub_session *s)
{
    s->attach_pending = false;
    if (!s->attached)
        return;
    s->attached = false;
    /* A kill that ends kvmstub leaves nothing to detach from. */
    if (s->killed && !s->extended)
        return;
    CALL(s, detach, s->keep_stopped);
}

/* An ended guest has no threads left: gdb, after the exit, must not find
 * one to show or to detach from. */
static unsigned live_threads(struct stub_session *s)
{
    if (!CALL0(s, running) && CALL0(s, last_stop)->exited)
        return 0;
    return CALL0(s, threads);
}

static bool thread_exists(struct stub_session *s, unsigned tid)
{
    return tid >= 1 && tid <= live_threads(s);
}

/* The register layout this gdb uses, fixed the first time it matters. */
static enum stub_arch arch(struct stub_session *s)
{
    if (!s->arch_known) {
        struct stub_thread_info ti = {.mode = VM_MODE_LONG};
        CALL(s, thread_info, s->g_tid, &ti);
        static const enum vm_mode forced[] = {[STUB_GDB_ARCH_I8086] = VM_MODE_REAL,
                                              [STUB_GDB_ARCH_I386] = VM_MODE_PROTECTED,
                                              [STUB_GDB_ARCH_AMD64] = VM_MODE_LONG};
        if (s->gdb_arch != STUB_GDB_ARCH_AUTO)
            ti.mode = forced[s->gdb_arch];
        s->arch = stub_regmap_arch(ti.mode, &s->real_mode);
        s->regsets = CALL0(s, regsets);
        s->arch_known = true;
    }
    return s->arch;
}

/* ---- stop replies ---- */

/* LLDB (after QListThreadsInStopReply): every thread and its pc in the stop
 * reply spare it qfThreadInfo/qsThreadInfo and a 'p' per thread at each
 * stop. */
static void lldb_stop_threads(struct stub_session *s, struct rsp_reply *r)
{
    unsigned n = CALL0(s, threads);
    rsp_reply_str(r, "threads:");
    for (unsigned t = 1; t <= n; t++) {
        if (t > 1)
            rsp_reply_str(r, ",");
        rsp_reply_u64(r, t);
    }
    rsp_reply_str(r, ";thread-pcs:");
    for (unsigned t = 1; t <= n; t++) {
        uint8_t v[8] = {0};
        uint64_t pc = 0;
        CALL(s, reg_read, t, VM_REG_RIP, v, sizeof(v));
        for (int i = 7; i >= 0; i--)
            pc = pc << 8 | v[i];
        if (t > 1)
            rsp_reply_str(r, ",");
        rsp_reply_u64(r, pc);
    }
    rsp_reply_str(r, ";");
}

static void send_stop(struct stub_session *s, const struct stub_stop *st)
{
    struct rsp_reply r;
    rsp_reply_begin(&r, &s->conn);
    char b[64];
    if (st->exited) {
        snprintf(b, sizeof(b), "W%02x", st->status & 0xff);
        rsp_reply_str(&r, b);
        rsp_reply_end(&r);
        return;
    }
    snprintf(b, sizeof(b), "T%02xthread:%x;", st->signal & 0xff, st->tid);
    rsp_reply_str(&r, b);
    switch (st->reason) {
    case STUB_REASON_SWBREAK:
        if (s->features & RSP_FEAT_SWBREAK)
            rsp_reply_str(&r, "swbreak:;");
        break;
    case STUB_REASON_HWBREAK:
        if (s->features & RSP_FEAT_HWBREAK)
            rsp_reply_str(&r, "hwbreak:;");
        break;
    case STUB_REASON_WATCH:
    case STUB_REASON_RWATCH:
    case STUB_REASON_AWATCH:
        rsp_reply_str(&r, st->reason == STUB_REASON_WATCH    ? "watch:"
                          : st->reason == STUB_REASON_RWATCH ? "rwatch:"
                                                             : "awatch:");
        rsp_reply_u64(&r, st->addr);
        rsp_reply_str(&r, ";");
        break;
    case STUB_REASON_HISTORY_BEGIN:
        rsp_reply_str(&r, "replaylog:begin;");
        break;
    case STUB_REASON_NONE:
        break;
    }
    if (s->list_threads)
        lldb_stop_threads(s, &r);
    /* pc, sp and fp travel with the stop, so gdb needs no 'g' to show
     * where the guest is (as gdbserver does). */
    enum stub_arch a = arch(s);
    static const enum vm_reg_id expedite[] = {VM_REG_RIP, VM_REG_RSP, VM_REG_RBP};
    size_t n;
    const struct stub_reg *d = stub_regmap(a, s->regsets, &n);
    for (size_t k = 0; k < sizeof(expedite) / sizeof(expedite[0]); k++) {
        for (size_t i = 0; i < n; i++) {
            uint8_t v[16];
            if (d[i].id != expedite[k] || CALL(s, reg_read, st->tid, d[i].id, v, d[i].size))
                continue;
            snprintf(b, sizeof(b), "%02zx:", i);
            rsp_reply_str(&r, b);
            rsp_reply_hex(&r, v, d[i].size);
            rsp_reply_str(&r, ";");
        }
    }
    rsp_reply_end(&r);
}

/* ---- registers ---- */

/* A register as gdb's layout has it: a 32-bit layout reads the low half. */
static int reg_get(struct stub_session *s, const struct stub_reg *d, uint8_t *out)
{
    return CALL(s, reg_read, s->g_tid, d->id, out, d->size);
}

/* A 32-bit layout writes the low half; the rest of the register keeps what
 * gdb cannot express. */
static int reg_put(struct stub_session *s, const struct stub_reg *d, const uint8_t *in)
{
    uint8_t v[16] = {0};
    if (!stub_regmap_is_wide(d->id) && d->size < 8 && d->id != VM_REG_EFLAGS) {
        int err = CALL(s, reg_read, s->g_tid, d->id, v, 8);
        if (err)
            return err;
        memcpy(v, in, d->size);
        return CALL(s, reg_write, s->g_tid, d->id, v, 8);
    }
    return CALL(s, reg_write, s->g_tid, d->id, in, d->size);
}

static void h_read_regs(struct stub_session *s, struct rsp_cmd *c)
{
    (void)c;
    size_t n, len = 0;
    const struct stub_reg *d = stub_regmap(arch(s), s->regsets, &n);
    n = stub_regmap_g_count(arch(s), s->regsets); /* see regmap.h */
    uint8_t all[STUB_REGMAP_MAX_BYTES];
    for (size_t i = 0; i < n; i++) {
        int err = reg_get(s, &d[i], all + len);
        if (err) {
            reply_error(s, err);
            return;
        }
        len += d[i].size;
    }
    /* One hex run: the reply costs per byte, not per register. */
    struct rsp_reply r;
    rsp_reply_begin(&r, &s->conn);
    rsp_reply_hex(&r, all, len);
    rsp_reply_end(&r);
}

static void h_write_regs(struct stub_session *s, struct rsp_cmd *c)
{
    enum stub_arch a = arch(s);
    const uint8_t *data = c->u.regs.data;
    /* What 'g' gave, or every register. */
    bool all = c->u.regs.len == stub_regmap_size(a, s->regsets);
    if (!all && c->u.regs.len != stub_regmap_g_size(a, s->regsets)) {
        reply_error(s, EINVAL);
        return;
    }
    size_t n;
    const struct stub_reg *d = stub_regmap(a, s->regsets, &n);
    if (!all)
        n = stub_regmap_g_count(a, s->regsets);
    for (size_t i = 0; i < n; data += d[i].size, i++) {
        int err = reg_put(s, &d[i], data);
        if (err) {
            stub_trace("G: register %s refused the value: %s", d[i].name, strerror(-err));
            reply_error(s, err);
            return;
        }
    }
    reply(s, "OK");
}

static void h_read_reg(struct stub_session *s, struct rsp_cmd *c)
{
    const struct stub_reg *d =
        c->u.reg.regno < SIZE_MAX ? stub_regmap_reg(arch(s), s->regsets, (size_t)c->u.reg.regno) : NULL;
    uint8_t v[16];
    if (!d) {
        reply_error(s, EINVAL);
        return;
    }
    int err = reg_get(s, d, v);
    if (err) {
        reply_error(s, err);
        return;
    }
    struct rsp_reply r;
    rsp_reply_begin(&r, &s->conn);
    rsp_reply_hex(&r, v, d->size);
    rsp_reply_end(&r);
}

static void h_write_reg(struct stub_session *s, struct rsp_cmd *c)
{
    const struct stub_reg *d =
        c->u.reg.regno < SIZE_MAX ? stub_regmap_reg(arch(s), s->regsets, (size_t)c->u.reg.regno) : NULL;
    if (!d || c->u.reg.len != d->size) {
        reply_error(s, EINVAL);
        return;
    }
    int err = reg_put(s, d, c->u.reg.data);
    if (err)
        reply_error(s, err);
    else
        reply(s, "OK");
}

/* ---- memory ---- */

/* The x reply comes in two forms. gdb (16 on) uses x only when the stub
 * advertises binary-upload, and wants 'b' before the data (so that no data
 * differs from the empty "unsupported" reply); newer LLDBs do the same. LLDB
 * before that (Debian 12's LLDB 14 among them) ignores binary-upload,
 * probes with x0,0, takes OK as "supported" and wants the bare data. So the
 * probe decides: a client that sends it, and did not itself announce
 * binary-upload, gets bare data for the rest of the connection. */
static void read_mem(struct stub_session *s, uint64_t addr, uint64_t len, bool binary)
{
    if (len == 0) {
        if (binary && addr == 0 && !(s->features & RSP_FEAT_BINARY_UPLOAD))
            s->x_raw = true;
        if (binary)
            reply(s, "OK");
        else
            reply_error(s, EINVAL);
        return;
    }
    if (addr + (len - 1) < addr) {
        reply_error(s, EFAULT);
        return;
    }
    /* Longer requests get what fits; gdb asks again for the rest. */
    size_t n = len > MEM_MAX ? MEM_MAX : (size_t)len;
    uint8_t *buf = malloc(n);
    if (!buf) {
        reply_error(s, ENOMEM);
        return;
    }
    size_t done = 0;
    int err = CALL(s, mem_read, s->g_tid, s->phys, addr, buf, n, &done);
    if (done == 0) {
        reply_error(s, err ? err : EFAULT);
    } else {
        struct rsp_reply r;
        rsp_reply_begin(&r, &s->conn);
        if (binary) {
            if (!s->x_raw)
                rsp_reply_put(&r, "b", 1);
            rsp_reply_put(&r, buf, done);
        } else {
            rsp_reply_hex(&r, buf, done);
        }
        if (rsp_reply_end(&r))
            reply_error(s, ENOMEM);
    }
    free(buf);
}

static void h_read_mem(struct stub_session *s, struct rsp_cmd *c)
{
    read_mem(s, c->u.mem.addr, c->u.mem.len, c->type == RSP_CMD_READ_MEM_BIN);
}

static void h_write_mem(struct stub_session *s, struct rsp_cmd *c)
{
    uint64_t addr = c->u.mem.addr, len = c->u.mem.len;
    if (len == 0) {
        reply(s, "OK");
        return;
    }
    if (addr + (len - 1) < addr) {
        reply_error(s, EFAULT);
        return;
    }
    int err = CALL(s, mem_write, s->g_tid, s->phys, addr, c->u.mem.data, (size_t)len);
    if (err)
        reply_error(s, err);
    else
        reply(s, "OK");
}

/* ---- breakpoints ---- */

static void h_breakpoint(struct stub_session *s, struct rsp_cmd *c)
{
    bool insert = c->type == RSP_CMD_INSERT_BP;
    uint64_t addr = c->u.bp.addr, kind = c->u.bp.kind;
    static const enum stub_bp_kind kinds[] = {
        [RSP_BP_SOFTWARE] = STUB_BP_SOFTWARE, [RSP_BP_HARDWARE] = STUB_BP_HARDWARE,
        [RSP_BP_WRITE] = STUB_WATCH_WRITE,    [RSP_BP_READ] = STUB_WATCH_READ,
        [RSP_BP_ACCESS] = STUB_WATCH_ACCESS};
    enum stub_bp_kind k = kinds[c->u.bp.type];
    /* x86 breakpoints are one byte; anything else is not ours. */
    if ((k <= STUB_BP_HARDWARE && kind != 1) || kind == 0) {
        reply_error(s, EINVAL);
        return;
    }
    int err = insert ? CALL(s, bp_insert, s->g_tid, k, addr, kind)
                     : CALL(s, bp_remove, s->g_tid, k, addr, kind);
    /* Removing what is not there succeeds: the packets are idempotent. */
    if (err == -ENOENT && !insert)
        err = 0;
    if (err) {
        stub_trace("%s of type %d at 0x%llx failed: %s", insert ? "insert" : "remove",
                   c->u.bp.type, (unsigned long long)addr, strerror(-err));
        reply_error(s, err);
    } else {
        reply(s, "OK");
    }
}

/* ---- execution ---- */

static void resume(struct stub_session *s, const struct stub_resume *r)
{
    const struct stub_stop *last = CALL0(s, last_stop);
    if (last->exited) {
        /* Nothing left to run: tell gdb again how it ended. */
        send_stop(s, last);
        return;
    }
    /* Set first: a target may report the stop before resume returns. */
    s->waiting_stop = true;
    int err = CALL(s, resume, r);
    if (err) {
        s->waiting_stop = false;
        reply_error(s, err);
    }
}

/* Legacy c, s, C, S: continue resumes every thread, step steps the Hc
 * thread (or the Hg one) while the others stay stopped. */
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
    reply_error(s, EINVAL);
    return true;
}

static void h_resume(struct stub_session *s, struct rsp_cmd *c)
{
    bool step = c->type == RSP_CMD_STEP;
    if (c->u.resume.has_signal && refuse_signal(s, c->u.resume.signal))
        return;
    unsigned tid = s->c_tid ? s->c_tid : s->g_tid;
    if (c->u.resume.has_addr) {
        uint8_t v[8];
        for (int i = 0; i < 8; i++)
            v[i] = (uint8_t)(c->u.resume.addr >> (8 * i));
        int err = CALL(s, reg_write, tid, VM_REG_RIP, v, 8);
        if (err) {
            reply_error(s, err);
            return;
        }
    }
    if (!live_threads(s)) {
        send_stop(s, CALL0(s, last_stop)); /* how it ended, again */
        return;
    }
    struct stub_resume r = {.count = CALL0(s, threads)};
    if (r.count > STUB_MAX_THREADS)
        r.count = STUB_MAX_THREADS;
    for (unsigned i = 0; i < r.count; i++)
        if (!step || i + 1 == tid)
            r.threads[i].action = step ? STUB_ACTION_STEP : STUB_ACTION_CONTINUE;
    resume(s, &r);
}

/* bs, bc: the thread gdb continues or steps (Hc, else Hg). */
static void h_reverse(struct stub_session *s, struct rsp_cmd *c)
{
    if (!s->target.ops->reverse) {
        reply(s, "");
        return;
    }
    if (!live_threads(s)) {
        send_stop(s, CALL0(s, last_stop));
        return;
    }
    unsigned tid = s->c_tid ? s->c_tid : s->g_tid;
    s->waiting_stop = true;
    int err = CALL(s, reverse, tid,
                   c->type == RSP_CMD_REVERSE_STEP ? STUB_ACTION_STEP : STUB_ACTION_CONTINUE);
    if (err) {
        s->waiting_stop = false;
        reply_error(s, err);
    }
}

static bool tid_matches(const struct rsp_tid *t, unsigned tid)
{
    if (t->has_pid && t->pid.kind == RSP_ID_NUM && t->pid.num != PID)
        return false;
    return t->tid.kind != RSP_ID_NUM || t->tid.num == tid;
}

/* vCont: each thread takes the first action that names it (or names no
 * thread); threads no action names stay stopped. */
static void h_vcont(struct stub_session *s, struct rsp_cmd *c)
{
    if (!live_threads(s)) {
        send_stop(s, CALL0(s, last_stop)); /* how it ended, again */
        return;
    }
    struct stub_resume r = {.count = CALL0(s, threads)};
    if (r.count > STUB_MAX_THREADS)
        r.count = STUB_MAX_THREADS;
    bool any = false, only_stops = true;
    for (size_t i = 0; i < c->u.vcont.count; i++) {
        const struct rsp_vcont_action *a = &c->u.vcont.actions[i];
        if (a->has_tid && a->tid.tid.kind == RSP_ID_NUM && !thread_exists(s, (unsigned)a->tid.tid.num)) {
            reply_error(s, ESRCH);
            return;
        }
        only_stops &= a->action == 't';
        if ((a->action == 'C' || a->action == 'S') && refuse_signal(s, a->signal))
            return;
    }
    if (only_stops) {
        /* Stop threads that are stopped already. */
        send_stop(s, CALL0(s, last_stop));
        return;
    }
    for (unsigned t = 0; t < r.count; t++) {
        for (size_t i = 0; i < c->u.vcont.count; i++) {
            const struct rsp_vcont_action *a = &c->u.vcont.actions[i];
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
                reply_error(s, EINVAL);
                return;
            }
            any |= ta->action != STUB_ACTION_NONE;
            break;
        }
    }
    if (!any) {
        reply_error(s, EINVAL);
        return;
    }
    resume(s, &r);
}

/* ---- threads ---- */

static void h_set_thread(struct stub_session *s, struct rsp_cmd *c)
{
    const struct rsp_tid *t = &c->u.thread.tid;
    if (t->has_pid && t->pid.kind == RSP_ID_NUM && t->pid.num != PID) {
        reply_error(s, ESRCH);
        return;
    }
    unsigned tid = 0;
    if (t->tid.kind == RSP_ID_NUM) {
        if (!thread_exists(s, (unsigned)t->tid.num) || t->tid.num > UINT32_MAX) {
            reply_error(s, ESRCH);
            return;
        }
        tid = (unsigned)t->tid.num;
    }
    if (c->u.thread.op == 'g') {
        /* "Any" keeps the thread gdb last looked at. */
        if (tid)
            s->g_tid = tid;
    } else {
        s->c_tid = tid;
    }
    reply(s, "OK");
}

static void h_thread_alive(struct stub_session *s, struct rsp_cmd *c)
{
    const struct rsp_tid *t = &c->u.alive;
    bool ok = !(t->has_pid && t->pid.kind == RSP_ID_NUM && t->pid.num != PID) &&
              (t->tid.kind != RSP_ID_NUM ||
               (t->tid.num <= UINT32_MAX && thread_exists(s, (unsigned)t->tid.num)));
    if (ok)
        reply(s, "OK");
    else
        reply_error(s, ESRCH);
}

static void h_current_thread(struct stub_session *s, struct rsp_cmd *c)
{
    (void)c;
    char b[32];
    snprintf(b, sizeof(b), "QC%x", CALL0(s, last_stop)->tid);
    reply(s, b);
}

static void h_thread_info_first(struct stub_session *s, struct rsp_cmd *c)
{
    (void)c;
    struct rsp_reply r;
    rsp_reply_begin(&r, &s->conn);
    unsigned n = live_threads(s);
    rsp_reply_str(&r, n ? "m" : "l");
    for (unsigned t = 1; t <= n; t++) {
        if (t > 1)
            rsp_reply_str(&r, ",");
        rsp_reply_u64(&r, t);
    }
    rsp_reply_end(&r);
}

static void h_thread_info_next(struct stub_session *s, struct rsp_cmd *c)
{
    (void)c;
    reply(s, "l");
}

/* ---- queries ---- */

static void h_supported(struct stub_session *s, struct rsp_cmd *c)
{
    s->features = c->u.supported.features;
    char b[256];
    snprintf(b, sizeof(b),
             "PacketSize=%x;qXfer:features:read+;qXfer:threads:read+;swbreak+;hwbreak+;QStartNoAckMode+;"
             "vContSupported+;binary-upload+%s",
             RSP_PACKET_SIZE, s->target.ops->reverse ? ";ReverseStep+;ReverseContinue+" : "");
    reply(s, b);
}

static void h_xfer_features(struct stub_session *s, struct rsp_cmd *c)
{
    if (strcmp(c->u.xfer.annex, "target.xml") != 0) {
        reply(s, "E00"); /* no such annex */
        return;
    }
    /* The description is chosen when gdb first reads it and stays for the
     * connection, so the 'g' layout cannot change under gdb. */
    if (c->u.xfer.offset == 0)
        s->arch_known = false;
    enum stub_arch a = arch(s);
    size_t len;
    const char *xml = stub_tdesc(a, s->regsets, s->real_mode, &len);
    uint64_t off = c->u.xfer.offset, want = c->u.xfer.length;
    if (off > len) {
        reply_error(s, EINVAL);
        return;
    }
    size_t n = len - (size_t)off;
    if (want < n)
        n = (size_t)want;
    if (n > MEM_MAX)
        n = MEM_MAX;
    struct rsp_reply r;
    rsp_reply_begin(&r, &s->conn);
    rsp_reply_put(&r, off + n < len ? "m" : "l", 1);
    rsp_reply_put(&r, xml + off, n);
    rsp_reply_end(&r);
}

static void h_monitor(struct stub_session *s, struct rsp_cmd *c)
{
    struct stub_text t = {0};
    int err = CALL(s, monitor, s->g_tid, c->u.rcmd.text, &t);
    if (t.len)
        rsp_send_console(&s->conn, t.p, t.len, 0);
    stub_text_free(&t);
    if (err)
        reply_error(s, err);
    else
        reply(s, "OK");
}

static void h_halt_reason(struct stub_session *s, struct rsp_cmd *c)
{
    (void)c;
    send_stop(s, CALL0(s, last_stop));
}

static void h_empty(struct stub_session *s, struct rsp_cmd *c)
{
    (void)c;
    reply(s, "");
}

static void h_malformed(struct stub_session *s, struct rsp_cmd *c)
{
    stub_trace("malformed packet: %s", c->reason ? c->reason : "?");
    reply_error(s, EINVAL);
}

static void h_vcont_query(struct stub_session *s, struct rsp_cmd *c)
{
    (void)c;
    reply(s, "vCont;c;C;s;S;t;r");
}

static void h_attached(struct stub_session *s, struct rsp_cmd *c)
{
    (void)c;
    reply(s, "1");
}

static void h_offsets(struct stub_session *s, struct rsp_cmd *c)
{
    (void)c;
    reply(s, "Text=0;Data=0;Bss=0");
}

static void h_ok(struct stub_session *s, struct rsp_cmd *c)
{
    (void)c;
    reply(s, "OK");
}

static void h_noack(struct stub_session *s, struct rsp_cmd *c)
{
    (void)c;
    reply(s, "OK");
    rsp_conn_set_no_ack(&s->conn, true);
}

/* vKill wants OK. After k gdb reads nothing (so a reply does no harm);
 * LLDB waits for the exit status, and reports "failed to send the k
 * packet" without one: X09 says "ended by SIGKILL", as lldb-server says. */
static void h_kill(struct stub_session *s, struct rsp_cmd *c)
{
    reply(s, c->type == RSP_CMD_VKILL ? "OK" : "X09");
    if (s->extended) {
        /* extended-remote: the guest ends, kvmstub stays for 'run'. */
        CALL0(s, end_guest);
        return;
    }
    s->killed = true;
    CALL0(s, kill);
}

static void h_extended(struct stub_session *s, struct rsp_cmd *c)
{
    (void)c;
    s->extended = true;
    CALL0(s, extended);
    reply(s, "OK");
}

/* vRun: the image again from its start (the program gdb names is its own
 * business; kvmstub runs the image it was given), stopped at its entry. */
static void h_run(struct stub_session *s, struct rsp_cmd *c)
{
    int err = CALL0(s, restart);
    if (err) {
        reply_error(s, err);
        return;
    }
    s->arch_known = false;
    if (c->type == RSP_CMD_VRUN)
        send_stop(s, CALL0(s, last_stop));
    /* R has no reply. */
}

/* What gdb's "info threads" shows after the mode, as QEMU shows
 * [halted]: an AP waiting for its startup IPI is why a kernel hangs. */
static const char *wait_name(const struct stub_thread_info *ti)
{
    switch (ti->wait) {
    case STUB_WAIT_INTERRUPT:
        return "halted";
    case STUB_WAIT_INIT:
        return "waiting for INIT";
    case STUB_WAIT_SIPI:
        return "waiting for SIPI";
    default:
        return ti->halted ? "halted" : "";
    }
}

static void h_thread_extra(struct stub_session *s, struct rsp_cmd *c)
{
    const struct rsp_tid *t = &c->u.alive;
    unsigned tid = t->tid.kind == RSP_ID_NUM && t->tid.num <= UINT32_MAX ? (unsigned)t->tid.num : 0;
    /* Zeroed: a target that leaves a field alone must not show garbage. */
    struct stub_thread_info ti = {0};
    if (!thread_exists(s, tid) || CALL(s, thread_info, tid, &ti)) {
        reply_error(s, ESRCH);
        return;
    }
    char text[64];
    snprintf(text, sizeof(text), "CPU#%u [%s mode%s%s]", tid - 1, stub_regmap_mode_name(ti.mode),
             wait_name(&ti)[0] ? ", " : "", wait_name(&ti));
    struct rsp_reply r;
    rsp_reply_begin(&r, &s->conn);
    rsp_reply_hex(&r, text, strlen(text));
    rsp_reply_end(&r);
}

/* QEMU's physical-memory mode: m, M, x and X then take guest-physical
 * addresses (page tables, DMA buffers). gdb users type
 * "maintenance packet Qqemu.PhyMemMode:1". */
static void h_phymem(struct stub_session *s, struct rsp_cmd *c)
{
    if (c->type == RSP_CMD_PHYMEM_GET) {
        reply(s, s->phys ? "1" : "0");
        return;
    }
    s->phys = c->u.phymem;
    reply(s, "OK");
}

/* The thread list as XML (qXfer:threads:read), with the same names as
 * qThreadExtraInfo, for gdb's "info threads". */
static void h_xfer_threads(struct stub_session *s, struct rsp_cmd *c)
{
    struct stub_text x = {0};
    stub_text_add(&x, "<?xml version=\"1.0\"?>\n<threads>\n");
    unsigned n = live_threads(s);
    for (unsigned t = 1; t <= n; t++) {
        struct stub_thread_info ti = {.mode = VM_MODE_REAL};
        CALL(s, thread_info, t, &ti);
        stub_text_add(&x, "  <thread id=\"%x\" core=\"%u\" name=\"CPU#%u\">%s mode%s%s</thread>\n",
                      t, t - 1, t - 1, stub_regmap_mode_name(ti.mode),
                      wait_name(&ti)[0] ? ", " : "", wait_name(&ti));
    }
    stub_text_add(&x, "</threads>\n");
    uint64_t off = c->u.xfer.offset, want = c->u.xfer.length;
    if (x.oom || off > x.len) {
        reply_error(s, x.oom ? ENOMEM : EINVAL);
        stub_text_free(&x);
        return;
    }
    size_t k = x.len - (size_t)off;
    if (want < k)
        k = (size_t)want;
    if (k > MEM_MAX)
        k = MEM_MAX;
    struct rsp_reply r;
    rsp_reply_begin(&r, &s->conn);
    rsp_reply_put(&r, off + k < x.len ? "m" : "l", 1);
    rsp_reply_put(&r, x.p + off, k);
    rsp_reply_end(&r);
    stub_text_free(&x);
}

static void h_detach(struct stub_session *s, struct rsp_cmd *c)
{
    reply(s, "OK");
    s->keep_stopped = c->u.process.keep_stopped;
    s->closing = true;
}

/* ---- LLDB's queries (lldb/docs/resources/lldbgdbremote.md) ---- */

/* LLDB's target triple for the guest, hex-encoded as qHostInfo and
 * qProcessInfo carry it: a bare-metal x86, no OS, no vendor. */
static void lldb_triple(struct stub_session *s, struct rsp_reply *r)
{
    bool wide = arch(s) == STUB_ARCH_AMD64;
    const char *triple = wide ? "x86_64-unknown-none" : "i386-unknown-none";
    rsp_reply_str(r, "triple:");
    rsp_reply_hex(r, triple, strlen(triple));
    rsp_reply_str(r, wide ? ";ptrsize:8;" : ";ptrsize:4;");
    rsp_reply_str(r, "endian:little;");
}

/* qHostInfo (LLDB): what the "host" is, here the guest's machine. x86
 * reports watchpoints after the access, which LLDB must know so as not to
 * run the instruction again. */
static void h_lldb_host_info(struct stub_session *s, struct rsp_cmd *c)
{
    (void)c;
    struct rsp_reply r;
    rsp_reply_begin(&r, &s->conn);
    lldb_triple(s, &r);
    rsp_reply_str(&r, "watchpoint_exceptions_received:after;");
    rsp_reply_end(&r);
}

/* qProcessInfo (LLDB): the one "process", the guest. Without it LLDB asks
 * again at every turn and keeps the executable's triple. */
static void h_lldb_process_info(struct stub_session *s, struct rsp_cmd *c)
{
    (void)c;
    struct rsp_reply r;
    rsp_reply_begin(&r, &s->conn);
    rsp_reply_str(&r, "pid:1;parent-pid:1;");
    lldb_triple(s, &r);
    rsp_reply_end(&r);
}

/* QListThreadsInStopReply (LLDB): see lldb_stop_threads(). */
static void h_lldb_list_threads(struct stub_session *s, struct rsp_cmd *c)
{
    (void)c;
    s->list_threads = true;
    reply(s, "OK");
}

typedef void (*handler_fn)(struct stub_session *s, struct rsp_cmd *c);

static const handler_fn handlers[] = {
    [RSP_CMD_UNSUPPORTED] = h_empty,
    [RSP_CMD_MALFORMED] = h_malformed,
    [RSP_CMD_HALT_REASON] = h_halt_reason,
    [RSP_CMD_READ_REGS] = h_read_regs,
    [RSP_CMD_WRITE_REGS] = h_write_regs,
    [RSP_CMD_READ_REG] = h_read_reg,
    [RSP_CMD_WRITE_REG] = h_write_reg,
    [RSP_CMD_READ_MEM] = h_read_mem,
    [RSP_CMD_WRITE_MEM] = h_write_mem,
    [RSP_CMD_READ_MEM_BIN] = h_read_mem,
    [RSP_CMD_WRITE_MEM_BIN] = h_write_mem,
    [RSP_CMD_CONTINUE] = h_resume,
    [RSP_CMD_STEP] = h_resume,
    [RSP_CMD_VCONT_QUERY] = h_vcont_query,
    [RSP_CMD_VCONT] = h_vcont,
    [RSP_CMD_VMUSTREPLYEMPTY] = h_empty,
    [RSP_CMD_VKILL] = h_kill,
    [RSP_CMD_INSERT_BP] = h_breakpoint,
    [RSP_CMD_REMOVE_BP] = h_breakpoint,
    [RSP_CMD_SET_THREAD] = h_set_thread,
    [RSP_CMD_THREAD_ALIVE] = h_thread_alive,
    [RSP_CMD_QSUPPORTED] = h_supported,
    [RSP_CMD_QXFER_FEATURES] = h_xfer_features,
    [RSP_CMD_QC] = h_current_thread,
    [RSP_CMD_QFTHREADINFO] = h_thread_info_first,
    [RSP_CMD_QSTHREADINFO] = h_thread_info_next,
    [RSP_CMD_QATTACHED] = h_attached,
    [RSP_CMD_QRCMD] = h_monitor,
    [RSP_CMD_QOFFSETS] = h_offsets,
    [RSP_CMD_QSYMBOL] = h_ok,
    [RSP_CMD_START_NOACK] = h_noack,
    [RSP_CMD_KILL] = h_kill,
    [RSP_CMD_DETACH] = h_detach,
    [RSP_CMD_EXTENDED] = h_extended,
    [RSP_CMD_RESTART] = h_run,
    [RSP_CMD_VRUN] = h_run,
    [RSP_CMD_THREAD_EXTRA] = h_thread_extra,
    [RSP_CMD_PHYMEM_SET] = h_phymem,
    [RSP_CMD_PHYMEM_GET] = h_phymem,
    [RSP_CMD_QXFER_THREADS] = h_xfer_threads, /* LLDB's D1 too: kvmstub always keeps the guest stopped */
    [RSP_CMD_QHOSTINFO] = h_lldb_host_info,
    [RSP_CMD_QPROCESSINFO] = h_lldb_process_info,
    [RSP_CMD_LIST_THREADS_STOP] = h_lldb_list_threads,
    [RSP_CMD_QDETACH_STOPPED] = h_ok, /* LLDB asks before D1; see h_detach */
    [RSP_CMD_REVERSE_STEP] = h_reverse,
    [RSP_CMD_REVERSE_CONTINUE] = h_reverse,
};

static void handle(struct stub_session *s, uint8_t *payload, size_t len)
{
    struct rsp_cmd c;
    stub_trace_packet("<-", payload, len);
    rsp_parse(payload, len, &c);
    handler_fn h = (size_t)c.type < sizeof(handlers) / sizeof(handlers[0]) ? handlers[c.type]
                                                                          : NULL;
    (h ? h : h_empty)(s, &c);
}

static bool can_handle(struct stub_session *s)
{
    return !CALL0(s, running) && !s->closing && !s->killed;
}

/* Packets that came while the target ran, in order. */
static void run_queue(struct stub_session *s)
{
    size_t off = 0;
    while (off + 4 <= s->queue_len && can_handle(s)) {
        uint32_t n;
        memcpy(&n, s->queue + off, 4);
        /* Handled in place: the parser may rewrite the payload; the byte
         * after it (next entry's length) is saved around the call. */
        uint8_t *p = s->queue + off + 4;
        bool more = off + 4 + n < s->queue_len;
        uint8_t saved = more ? p[n] : 0;
        if (more)
            p[n] = 0;
        handle(s, p, n);
        if (more)
            p[n] = saved;
        off += 4 + n;
    }
    memmove(s->queue, s->queue + off, s->queue_len - off);
    s->queue_len -= off;
}

static void enqueue(struct stub_session *s, const uint8_t *p, size_t n)
{
    if (n + 5 > STUB_SESSION_QUEUE_MAX - s->queue_len) {
        s->dropped++;
        stub_log("gdb sent more than %u bytes of packets while the guest ran; dropping one",
                 STUB_SESSION_QUEUE_MAX);
        return;
    }
    uint32_t len = (uint32_t)n;
    memcpy(s->queue + s->queue_len, &len, 4);
    memcpy(s->queue + s->queue_len + 4, p, n);
    s->queue_len += 4 + n;
}

static void finish_input(struct stub_session *s)
{
    flush(s);
    if (s->closing && s->link.close)
        s->link.close(s->link.ctx);
}

void stub_session_input(struct stub_session *s, const uint8_t *data, size_t n)
{
    if (n)
        attach_now(s);
    while (n && !s->closing && !s->killed) {
        struct rsp_event ev;
        size_t used = rsp_conn_feed(&s->conn, data, n, &ev);
        data += used;
        n -= used;
        switch (ev.type) {
        case RSP_EVENT_PACKET:
            if (!can_handle(s) || s->queue_len)
                enqueue(s, ev.payload, ev.len);
            else
                handle(s, ev.payload, ev.len);
            break;
        case RSP_EVENT_INTERRUPT:
            stub_trace("<- interrupt (0x03)");
            CALL0(s, interrupt);
            break;
        case RSP_EVENT_OVERSIZE:
            stub_log("gdb sent a packet longer than PacketSize (%u bytes); refused",
                     RSP_PACKET_SIZE);
            reply_error(s, EMSGSIZE);
            break;
        case RSP_EVENT_BAD_ENCODING:
            reply_error(s, EINVAL);
            break;
        case RSP_EVENT_BAD_CHECKSUM:
            stub_trace("<- packet with a bad checksum; asked again");
            break;
        case RSP_EVENT_REPEATED:
            stub_trace("<- the same packet again, sent before our ack reached gdb: "
                       "a retransmission, answered once");
            break;
        case RSP_EVENT_NONE:
        case RSP_EVENT_ACK:
        case RSP_EVENT_NAK:
            break;
        }
    }
    finish_input(s);
}

static void on_stopped(void *ctx, const struct stub_stop *stop)
{
    struct stub_session *s = ctx;
    if (s->waiting_stop) {
        if (stop->why[0]) {
            char line[200];
            int n = snprintf(line, sizeof(line), "%skvmstub: %s\n", s->midline ? "\n" : "",
                             stop->why);
            rsp_send_console(&s->conn, line, (size_t)n, 0);
            s->midline = false;
        }
        s->waiting_stop = false;
        if (stop->refused)
            reply(s, "E01"); /* gdb shows the text above, then the error */
        else
            send_stop(s, stop);
    }
    run_queue(s);
    finish_input(s);
}

static void on_output(void *ctx, const uint8_t *data, size_t n)
{
    struct stub_session *s = ctx;
    /* gdb takes 'O' packets only while it waits for a stop reply. */
    if (!s->waiting_stop)
        return;
    rsp_send_console(&s->conn, data, n, 0);
    if (n)
        s->midline = data[n - 1] != '\n';
    flush(s);
}
