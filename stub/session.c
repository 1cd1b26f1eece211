#include "session.h"

#include "log.h"
#include "monitor.h"
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
#define THREAD_ID 1

static void flush(struct stub_session *s)
{
    if (s->conn.out.len && s->link.flush)
        s->link.flush(s->link.ctx);
}

static void reply(struct stub_session *s, const char *text)
{
    rsp_send_str(&s->conn, text);
}

static void reply_error(struct stub_session *s, int err)
{
    rsp_send_error(&s->conn, err < 0 ? -err : err);
}

int stub_session_init(struct stub_session *s, struct stub_machine *m, const struct stub_link *link)
{
    memset(s, 0, sizeof(*s));
    s->m = m;
    s->link = *link;
    int r = rsp_conn_init(&s->conn);
    if (r)
        return r;
    s->queue = malloc(STUB_SESSION_QUEUE_MAX);
    if (!s->queue) {
        rsp_conn_free(&s->conn);
        return -ENOMEM;
    }
    return 0;
}

void stub_session_free(struct stub_session *s)
{
    rsp_conn_free(&s->conn);
    free(s->queue);
    s->queue = NULL;
}

/* The register layout this gdb uses, fixed the first time it matters. */
static enum vm_arch arch(struct stub_session *s)
{
    if (!s->arch_known) {
        s->arch = stub_machine_arch(s->m, &s->real_mode);
        s->arch_known = true;
    }
    return s->arch;
}

static struct vm_cpu *cpu(struct stub_session *s)
{
    return &s->m->vm->cpus[0];
}

/* ---- stop replies ---- */

int stub_session_send_stop(struct stub_session *s, const struct stub_stop *st)
{
    struct rsp_reply r;
    rsp_reply_begin(&r, &s->conn);
    if (st->exited) {
        char b[16];
        snprintf(b, sizeof(b), "W%02x", st->status & 0xff);
        rsp_reply_str(&r, b);
        return rsp_reply_end(&r);
    }
    char b[64];
    snprintf(b, sizeof(b), "T%02xthread:%x;", st->signal & 0xff, THREAD_ID);
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
    case STUB_REASON_NONE:
        break;
    }
    /* pc, sp and fp travel with the stop, so gdb needs no 'g' to show
     * where the guest is (as gdbserver does). */
    enum vm_arch a = arch(s);
    static const enum vm_reg_id expedite[] = {VM_REG_RIP, VM_REG_RSP, VM_REG_RBP};
    size_t n;
    const struct vm_reg_desc *d = vm_regs_layout(a, &n);
    for (size_t k = 0; k < sizeof(expedite) / sizeof(expedite[0]); k++) {
        for (size_t i = 0; i < n; i++) {
            uint8_t v[16];
            if (d[i].id != expedite[k] || vm_reg_read(cpu(s), a, i, v))
                continue;
            snprintf(b, sizeof(b), "%02zx:", i);
            rsp_reply_str(&r, b);
            rsp_reply_hex(&r, v, d[i].size);
            rsp_reply_str(&r, ";");
        }
    }
    return rsp_reply_end(&r);
}

/* ---- registers ---- */

static void read_regs(struct stub_session *s)
{
    enum vm_arch a = arch(s);
    size_t n;
    const struct vm_reg_desc *d = vm_regs_layout(a, &n);
    struct rsp_reply r;
    rsp_reply_begin(&r, &s->conn);
    for (size_t i = 0; i < n; i++) {
        uint8_t v[16];
        int err = vm_reg_read(cpu(s), a, i, v);
        if (err) {
            rsp_reply_abort(&r);
            reply_error(s, err);
            return;
        }
        rsp_reply_hex(&r, v, d[i].size);
    }
    rsp_reply_end(&r);
}

static void write_regs(struct stub_session *s, const uint8_t *data, size_t len)
{
    enum vm_arch a = arch(s);
    if (len != vm_regs_size(a)) {
        reply_error(s, EINVAL);
        return;
    }
    size_t n;
    const struct vm_reg_desc *d = vm_regs_layout(a, &n);
    for (size_t i = 0; i < n; data += d[i].size, i++) {
        int err = vm_reg_write(cpu(s), a, i, data);
        if (err) {
            stub_trace("G: register %s refused the value: %s", d[i].name, strerror(-err));
            reply_error(s, err);
            return;
        }
    }
    reply(s, "OK");
}

static void read_reg(struct stub_session *s, uint64_t regno)
{
    enum vm_arch a = arch(s);
    size_t n;
    const struct vm_reg_desc *d = vm_regs_layout(a, &n);
    uint8_t v[16];
    if (regno >= n) {
        reply_error(s, EINVAL);
        return;
    }
    int err = vm_reg_read(cpu(s), a, (size_t)regno, v);
    if (err) {
        reply_error(s, err);
        return;
    }
    struct rsp_reply r;
    rsp_reply_begin(&r, &s->conn);
    rsp_reply_hex(&r, v, d[regno].size);
    rsp_reply_end(&r);
}

static void write_reg(struct stub_session *s, uint64_t regno, const uint8_t *data, size_t len)
{
    enum vm_arch a = arch(s);
    size_t n;
    const struct vm_reg_desc *d = vm_regs_layout(a, &n);
    if (regno >= n || len != d[regno].size) {
        reply_error(s, EINVAL);
        return;
    }
    int err = vm_reg_write(cpu(s), a, (size_t)regno, data);
    if (err)
        reply_error(s, err);
    else
        reply(s, "OK");
}

/* ---- memory ---- */

static void read_mem(struct stub_session *s, uint64_t addr, uint64_t len, bool binary)
{
    if (len == 0) {
        /* x with no length is how clients probe for it. */
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
    int err = vm_read_linear(cpu(s), addr, buf, n, &done);
    if (done == 0) {
        reply_error(s, err ? err : EFAULT);
    } else {
        struct rsp_reply r;
        rsp_reply_begin(&r, &s->conn);
        if (binary) {
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

static void write_mem(struct stub_session *s, uint64_t addr, uint64_t len, const uint8_t *data)
{
    if (len == 0) {
        reply(s, "OK");
        return;
    }
    if (addr + (len - 1) < addr) {
        reply_error(s, EFAULT);
        return;
    }
    int err = vm_write_linear(cpu(s), addr, data, (size_t)len, NULL);
    if (err)
        reply_error(s, err);
    else
        reply(s, "OK");
}

/* ---- breakpoints ---- */

static void breakpoint(struct stub_session *s, const struct rsp_cmd *c, bool insert)
{
    uint64_t addr = c->u.bp.addr, kind = c->u.bp.kind;
    int err;
    switch (c->u.bp.type) {
    case RSP_BP_SOFTWARE:
    case RSP_BP_HARDWARE:
        /* x86 breakpoints are one byte; anything else is not ours. */
        if (kind != 1) {
            reply_error(s, EINVAL);
            return;
        }
        err = insert ? vm_bp_insert(cpu(s), addr, c->u.bp.type == RSP_BP_HARDWARE)
                     : vm_bp_remove(cpu(s), addr, c->u.bp.type == RSP_BP_HARDWARE);
        break;
    default: {
        enum vm_watch_type t = c->u.bp.type == RSP_BP_WRITE  ? VM_WATCH_WRITE
                               : c->u.bp.type == RSP_BP_READ ? VM_WATCH_READ
                                                             : VM_WATCH_ACCESS;
        if (kind == 0 || kind > VM_MAX_WATCH_LEN) {
            reply_error(s, EINVAL);
            return;
        }
        err = insert ? vm_watch_insert(cpu(s), t, addr, kind)
                     : vm_watch_remove(cpu(s), t, addr, kind);
        break;
    }
    }
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

static void resume(struct stub_session *s, const struct stub_run *run, bool has_addr,
                   uint64_t addr)
{
    if (s->m->last.exited) {
        /* Nothing left to run: tell gdb again how it ended. */
        stub_session_send_stop(s, &s->m->last);
        return;
    }
    if (has_addr) {
        int err = vm_reg_set(cpu(s), VM_REG_RIP, addr);
        if (err) {
            reply_error(s, err);
            return;
        }
    }
    int err = stub_machine_resume(s->m, run);
    if (err) {
        reply_error(s, err);
        return;
    }
    s->waiting_stop = true;
}

static bool tid_is_ours(const struct rsp_tid *t)
{
    if (t->has_pid && t->pid.kind == RSP_ID_NUM && t->pid.num != 1)
        return false;
    return t->tid.kind != RSP_ID_NUM || t->tid.num == THREAD_ID;
}

static void vcont(struct stub_session *s, const struct rsp_cmd *c)
{
    /* All-stop with one thread: the first action that applies to it. */
    for (size_t i = 0; i < c->u.vcont.count; i++) {
        const struct rsp_vcont_action *a = &c->u.vcont.actions[i];
        if (a->has_tid && !tid_is_ours(&a->tid))
            continue;
        struct stub_run run = {.mode = VM_RUN_CONTINUE};
        switch (a->action) {
        case 'c':
        case 'C':
            break;
        case 's':
        case 'S':
            run.mode = VM_RUN_STEP;
            break;
        case 'r':
            run.mode = VM_RUN_STEP;
            run.range = true;
            run.start = a->start;
            run.end = a->end;
            break;
        case 't':
            /* Stop a thread that is already stopped. */
            stub_session_send_stop(s, &s->m->last);
            return;
        default:
            reply_error(s, EINVAL);
            return;
        }
        resume(s, &run, false, 0);
        return;
    }
    reply_error(s, EINVAL);
}

/* ---- queries ---- */

static void supported(struct stub_session *s, const struct rsp_cmd *c)
{
    s->features = c->u.supported.features;
    char b[256];
    snprintf(b, sizeof(b),
             "PacketSize=%x;qXfer:features:read+;swbreak+;hwbreak+;QStartNoAckMode+;"
             "vContSupported+",
             RSP_PACKET_SIZE);
    reply(s, b);
}

static void xfer_features(struct stub_session *s, const struct rsp_cmd *c)
{
    if (strcmp(c->u.xfer.annex, "target.xml") != 0) {
        reply(s, "E00"); /* no such annex */
        return;
    }
    /* The description is chosen when gdb first reads it and stays for the
     * connection, so the 'g' layout cannot change under gdb. */
    s->arch_known = false;
    enum vm_arch a = arch(s);
    size_t len;
    const char *xml = stub_tdesc(a, s->real_mode, &len);
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

static void set_thread(struct stub_session *s, const struct rsp_cmd *c)
{
    if (tid_is_ours(&c->u.thread.tid))
        reply(s, "OK");
    else
        reply_error(s, ESRCH);
}

static void kill_guest(struct stub_session *s, bool reply_ok)
{
    if (reply_ok)
        reply(s, "OK");
    stub_log("gdb killed the guest; exiting");
    stub_machine_exit(s->m, 0);
}

static void detach(struct stub_session *s)
{
    vm_debug_clear(cpu(s));
    reply(s, "OK");
    s->closing = true;
    stub_log("gdb detached; the guest stays %s", s->m->last.exited ? "ended" : "stopped");
}

static void handle(struct stub_session *s, uint8_t *payload, size_t len)
{
    struct rsp_cmd c;
    stub_trace_packet("<-", payload, len);
    rsp_parse(payload, len, &c);
    switch (c.type) {
    case RSP_CMD_UNSUPPORTED:
    case RSP_CMD_VMUSTREPLYEMPTY:
        reply(s, "");
        break;
    case RSP_CMD_MALFORMED:
        stub_trace("malformed packet: %s", c.reason ? c.reason : "?");
        reply_error(s, EINVAL);
        break;
    case RSP_CMD_HALT_REASON:
        stub_session_send_stop(s, &s->m->last);
        break;
    case RSP_CMD_READ_REGS:
        read_regs(s);
        break;
    case RSP_CMD_WRITE_REGS:
        write_regs(s, c.u.regs.data, c.u.regs.len);
        break;
    case RSP_CMD_READ_REG:
        read_reg(s, c.u.reg.regno);
        break;
    case RSP_CMD_WRITE_REG:
        write_reg(s, c.u.reg.regno, c.u.reg.data, c.u.reg.len);
        break;
    case RSP_CMD_READ_MEM:
    case RSP_CMD_READ_MEM_BIN:
        read_mem(s, c.u.mem.addr, c.u.mem.len, c.type == RSP_CMD_READ_MEM_BIN);
        break;
    case RSP_CMD_WRITE_MEM:
    case RSP_CMD_WRITE_MEM_BIN:
        write_mem(s, c.u.mem.addr, c.u.mem.len, c.u.mem.data);
        break;
    case RSP_CMD_CONTINUE:
    case RSP_CMD_STEP: {
        struct stub_run run = {.mode = c.type == RSP_CMD_STEP ? VM_RUN_STEP : VM_RUN_CONTINUE};
        resume(s, &run, c.u.resume.has_addr, c.u.resume.addr);
        break;
    }
    case RSP_CMD_VCONT_QUERY:
        reply(s, "vCont;c;C;s;S;t;r");
        break;
    case RSP_CMD_VCONT:
        vcont(s, &c);
        break;
    case RSP_CMD_INSERT_BP:
    case RSP_CMD_REMOVE_BP:
        breakpoint(s, &c, c.type == RSP_CMD_INSERT_BP);
        break;
    case RSP_CMD_SET_THREAD:
        set_thread(s, &c);
        break;
    case RSP_CMD_THREAD_ALIVE:
        if (tid_is_ours(&c.u.alive))
            reply(s, "OK");
        else
            reply_error(s, ESRCH);
        break;
    case RSP_CMD_QSUPPORTED:
        supported(s, &c);
        break;
    case RSP_CMD_QXFER_FEATURES:
        xfer_features(s, &c);
        break;
    case RSP_CMD_QC:
        reply(s, "QC1");
        break;
    case RSP_CMD_QFTHREADINFO:
        reply(s, "m1");
        break;
    case RSP_CMD_QSTHREADINFO:
        reply(s, "l");
        break;
    case RSP_CMD_QATTACHED:
        reply(s, "1");
        break;
    case RSP_CMD_QRCMD:
        stub_monitor(s, c.u.rcmd.text);
        break;
    case RSP_CMD_QOFFSETS:
        reply(s, "Text=0;Data=0;Bss=0");
        break;
    case RSP_CMD_QSYMBOL:
        reply(s, "OK");
        break;
    case RSP_CMD_START_NOACK:
        reply(s, "OK");
        rsp_conn_set_no_ack(&s->conn, true);
        break;
    case RSP_CMD_KILL:
        kill_guest(s, false);
        break;
    case RSP_CMD_VKILL:
        kill_guest(s, true);
        break;
    case RSP_CMD_DETACH:
        detach(s);
        break;
    }
}

/* Packets that came while the guest ran, in order. */
static void run_queue(struct stub_session *s)
{
    size_t off = 0;
    while (off + 4 <= s->queue_len && !stub_machine_running(s->m) && !s->closing &&
           !s->m->exit_requested) {
        uint32_t n;
        memcpy(&n, s->queue + off, 4);
        /* Handled in place: the parser may rewrite the payload; the byte
         * after it (next entry's length) is saved around the call. */
        uint8_t *p = s->queue + off + 4;
        uint8_t saved = off + 4 + n < s->queue_len ? p[n] : 0;
        if (off + 4 + n < s->queue_len)
            p[n] = 0;
        handle(s, p, n);
        if (off + 4 + n < s->queue_len)
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

void stub_session_input(struct stub_session *s, const uint8_t *data, size_t n)
{
    while (n && !s->closing) {
        struct rsp_event ev;
        size_t used = rsp_conn_feed(&s->conn, data, n, &ev);
        data += used;
        n -= used;
        switch (ev.type) {
        case RSP_EVENT_PACKET:
            if (stub_machine_running(s->m) || s->queue_len)
                enqueue(s, ev.payload, ev.len);
            else
                handle(s, ev.payload, ev.len);
            break;
        case RSP_EVENT_INTERRUPT:
            stub_trace("<- interrupt (0x03)");
            stub_machine_interrupt(s->m);
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
        case RSP_EVENT_NONE:
        case RSP_EVENT_ACK:
        case RSP_EVENT_NAK:
            break;
        }
        if (s->m->exit_requested)
            break;
    }
    flush(s);
    if (s->closing && s->link.close)
        s->link.close(s->link.ctx);
}

void stub_session_stopped(struct stub_session *s, const struct stub_stop *stop)
{
    if (stop->why[0] && s->waiting_stop) {
        char line[200];
        int n = snprintf(line, sizeof(line), "kvmstub: %s\n", stop->why);
        rsp_send_console(&s->conn, line, (size_t)n, 0);
    }
    if (s->waiting_stop) {
        s->waiting_stop = false;
        stub_session_send_stop(s, stop);
    }
    run_queue(s);
    flush(s);
    if (s->closing && s->link.close)
        s->link.close(s->link.ctx);
}

void stub_session_output(struct stub_session *s, const uint8_t *data, size_t n)
{
    /* gdb takes 'O' packets only while it waits for a stop reply. */
    if (!s->waiting_stop)
        return;
    rsp_send_console(&s->conn, data, n, 0);
    flush(s);
}
