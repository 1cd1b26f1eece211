/* Threads as gdb names them: selection (H), liveness (T), the current one
 * (qC), the list (qfThreadInfo, qsThreadInfo, qXfer:threads) and their
 * names (qThreadExtraInfo). Thread n is vCPU n-1. See packets.h. */
#include "packets.h"

#include "text.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static bool other_process(const struct rsp_tid *t)
{
    return t->has_pid && t->pid.kind == RSP_ID_NUM && t->pid.num != STUB_PACKETS_PID;
}

/* Hg tid, Hc tid */
static void h_set_thread(struct stub_session *s, const struct rsp_args *a)
{
    const struct rsp_tid *t = &a->arg[1].tid;
    if (other_process(t)) {
        stub_packets_error(s, ESRCH);
        return;
    }
    unsigned tid = 0;
    if (t->tid.kind == RSP_ID_NUM) {
        if (!stub_packets_thread_exists(s, (unsigned)t->tid.num) || t->tid.num > UINT32_MAX) {
            stub_packets_error(s, ESRCH);
            return;
        }
        tid = (unsigned)t->tid.num;
    }
    if (a->arg[0].num == 'g') {
        /* "Any" keeps the thread gdb last looked at. */
        if (tid)
            s->g_tid = tid;
    } else {
        s->c_tid = tid;
    }
    stub_packets_reply(s, "OK");
}

/* T tid */
static void h_thread_alive(struct stub_session *s, const struct rsp_args *a)
{
    const struct rsp_tid *t = &a->arg[0].tid;
    bool ok = !other_process(t) &&
              (t->tid.kind != RSP_ID_NUM ||
               (t->tid.num <= UINT32_MAX && stub_packets_thread_exists(s, (unsigned)t->tid.num)));
    if (ok)
        stub_packets_reply(s, "OK");
    else
        stub_packets_error(s, ESRCH);
}

static void h_current_thread(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    char b[32];
    snprintf(b, sizeof(b), "QC%x", STUB_CALL0(s, last_stop)->tid);
    stub_packets_reply(s, b);
}

static void h_thread_info_first(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    struct rsp_reply r;
    rsp_reply_begin(&r, &s->conn);
    unsigned n = stub_packets_live_threads(s);
    rsp_reply_str(&r, n ? "m" : "l");
    for (unsigned t = 1; t <= n; t++) {
        if (t > 1)
            rsp_reply_str(&r, ",");
        rsp_reply_u64(&r, t);
    }
    rsp_reply_end(&r);
}

static void h_thread_info_next(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    stub_packets_reply(s, "l");
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

/* qThreadExtraInfo,tid */
static void h_thread_extra(struct stub_session *s, const struct rsp_args *a)
{
    const struct rsp_tid *t = &a->arg[0].tid;
    unsigned tid = t->tid.kind == RSP_ID_NUM && t->tid.num <= UINT32_MAX ? (unsigned)t->tid.num : 0;
    /* Zeroed: a target that leaves a field alone must not show garbage. */
    struct stub_thread_info ti = {0};
    if (!stub_packets_thread_exists(s, tid) || STUB_CALL(s, thread_info, tid, &ti)) {
        stub_packets_error(s, ESRCH);
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

/* qXfer:threads:read::offset,length: the thread list as XML, with the same
 * names as qThreadExtraInfo, for gdb's "info threads". */
static void h_xfer_threads(struct stub_session *s, const struct rsp_args *a)
{
    struct stub_text x = {0};
    stub_text_add(&x, "<?xml version=\"1.0\"?>\n<threads>\n");
    unsigned n = stub_packets_live_threads(s);
    for (unsigned t = 1; t <= n; t++) {
        struct stub_thread_info ti = {.mode = VM_MODE_REAL};
        STUB_CALL(s, thread_info, t, &ti);
        stub_text_add(&x, "  <thread id=\"%x\" core=\"%u\" name=\"CPU#%u\">%s mode%s%s</thread>\n",
                      t, t - 1, t - 1, stub_regmap_mode_name(ti.mode),
                      wait_name(&ti)[0] ? ", " : "", wait_name(&ti));
    }
    stub_text_add(&x, "</threads>\n");
    if (x.oom)
        stub_packets_error(s, ENOMEM);
    else
        stub_packets_xfer(s, x.p, x.len, a->arg[1].num, a->arg[2].num);
    stub_text_free(&x);
}

static const struct stub_packet packets[] = {
    {{"H", "{gc}t"}, h_set_thread},
    {{"T", "t"}, h_thread_alive},
    {{"qC", ""}, h_current_thread},
    {{"qfThreadInfo", ""}, h_thread_info_first},
    {{"qsThreadInfo", ""}, h_thread_info_next},
    {{"qThreadExtraInfo", ",t"}, h_thread_extra},
    {{"qXfer:threads:read:", "an,n"}, h_xfer_threads},
};

const struct stub_packet_table stub_packets_threads = {packets,
                                                       sizeof(packets) / sizeof(packets[0])};
