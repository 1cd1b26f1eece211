/* What every packet handler shares (packets.h). */
#include "packets.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void stub_packets_reply(struct stub_session *s, const char *text)
{
    rsp_send_str(&s->conn, text);
}

void stub_packets_error(struct stub_session *s, int err)
{
    rsp_send_error(&s->conn, err < 0 ? -err : err);
}

/* An ended guest has no threads left: gdb, after the exit, must not find
 * one to show or to detach from. */
unsigned stub_packets_live_threads(struct stub_session *s)
{
    if (!STUB_CALL0(s, running) && STUB_CALL0(s, last_stop)->exited)
        return 0;
    return STUB_CALL0(s, threads);
}

bool stub_packets_thread_exists(struct stub_session *s, unsigned tid)
{
    return tid >= 1 && tid <= stub_packets_live_threads(s);
}

enum stub_arch stub_packets_arch(struct stub_session *s)
{
    if (!s->arch_known) {
        struct stub_thread_info ti = {.mode = VM_MODE_LONG};
        STUB_CALL(s, thread_info, s->g_tid, &ti);
        static const enum vm_mode forced[] = {[STUB_GDB_ARCH_I8086] = VM_MODE_REAL,
                                              [STUB_GDB_ARCH_I386] = VM_MODE_PROTECTED,
                                              [STUB_GDB_ARCH_AMD64] = VM_MODE_LONG};
        if (s->gdb_arch != STUB_GDB_ARCH_AUTO)
            ti.mode = forced[s->gdb_arch];
        s->arch = stub_regmap_arch(ti.mode, &s->real_mode);
        s->regsets = STUB_CALL0(s, regsets);
        s->arch_known = true;
    }
    return s->arch;
}

void stub_packets_xfer(struct stub_session *s, const char *doc, size_t len, uint64_t offset,
                       uint64_t length)
{
    if (offset > len) {
        stub_packets_error(s, EINVAL);
        return;
    }
    size_t n = len - (size_t)offset;
    if (length < n)
        n = (size_t)length;
    if (n > STUB_PACKETS_MEM_MAX)
        n = STUB_PACKETS_MEM_MAX;
    struct rsp_reply r;
    rsp_reply_begin(&r, &s->conn);
    rsp_reply_put(&r, offset + n < len ? "m" : "l", 1);
    rsp_reply_put(&r, doc + offset, n);
    rsp_reply_end(&r);
}

/* LLDB (after QListThreadsInStopReply): every thread and its pc in the stop
 * reply spare it qfThreadInfo/qsThreadInfo and a 'p' per thread at each
 * stop. */
static void lldb_stop_threads(struct stub_session *s, struct rsp_reply *r)
{
    unsigned n = STUB_CALL0(s, threads);
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
        STUB_CALL(s, reg_read, t, VM_REG_RIP, v, sizeof(v));
        for (int i = 7; i >= 0; i--)
            pc = pc << 8 | v[i];
        if (t > 1)
            rsp_reply_str(r, ",");
        rsp_reply_u64(r, pc);
    }
    rsp_reply_str(r, ";");
}

void stub_packets_stop_reply(struct stub_session *s, const struct stub_stop *st)
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
    /* gdb takes the stopped thread for the one Hg selected (remote.c's
     * record_currthread, as gdbserver does): it reads that thread's
     * registers next without sending Hg. */
    if (st->tid)
        s->g_tid = st->tid;
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
    enum stub_arch a = stub_packets_arch(s);
    static const enum vm_reg_id expedite[] = {VM_REG_RIP, VM_REG_RSP, VM_REG_RBP};
    size_t n;
    const struct stub_reg *d = stub_regmap(a, s->regsets, &n);
    for (size_t k = 0; k < sizeof(expedite) / sizeof(expedite[0]); k++) {
        for (size_t i = 0; i < n; i++) {
            uint8_t v[16];
            if (d[i].id != expedite[k] || STUB_CALL(s, reg_read, st->tid, d[i].id, v, d[i].size))
                continue;
            snprintf(b, sizeof(b), "%02zx:", i);
            rsp_reply_str(&r, b);
            rsp_reply_hex(&r, v, d[i].size);
            rsp_reply_str(&r, ";");
        }
    }
    rsp_reply_end(&r);
}
