/* What gdb and LLDB ask about the stub and the connection: features,
 * the target description, the monitor, QEMU's physical-memory mode and
 * LLDB's queries (lldb/docs/resources/lldbgdbremote.md). See packets.h. */
#include "packets.h"

#include "tdesc.h"
#include "text.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* qSupported[:features] */
static void h_supported(struct stub_session *s, const struct rsp_args *a)
{
    s->features = (uint32_t)a->arg[0].num;
    char b[256];
    snprintf(b, sizeof(b),
             "PacketSize=%x;qXfer:features:read+;qXfer:threads:read+;swbreak+;hwbreak+;QStartNoAckMode+;"
             "vContSupported+;binary-upload+%s",
             RSP_PACKET_SIZE, s->target.ops->reverse ? ";ReverseStep+;ReverseContinue+" : "");
    stub_packets_reply(s, b);
}

/* qXfer:features:read:annex:offset,length */
static void h_xfer_features(struct stub_session *s, const struct rsp_args *a)
{
    if (strcmp(a->arg[0].text, "target.xml") != 0) {
        stub_packets_reply(s, "E00"); /* no such annex */
        return;
    }
    uint64_t offset = a->arg[1].num;
    /* The description is chosen when gdb first reads it and stays for the
     * connection, so the 'g' layout cannot change under gdb. */
    if (offset == 0)
        s->arch_known = false;
    enum stub_arch arch = stub_packets_arch(s);
    size_t len;
    const char *xml = stub_tdesc(arch, s->regsets, s->real_mode, &len);
    stub_packets_xfer(s, xml, len, offset, a->arg[2].num);
}

/* qRcmd,hex: gdb's "monitor" command. */
static void h_monitor(struct stub_session *s, const struct rsp_args *a)
{
    struct stub_text t = {0};
    int err = STUB_CALL(s, monitor, s->g_tid, a->arg[0].text, &t);
    if (t.len)
        rsp_send_console(&s->conn, t.p, t.len, 0);
    stub_text_free(&t);
    if (err)
        stub_packets_error(s, err);
    else
        stub_packets_reply(s, "OK");
}

static void h_offsets(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    stub_packets_reply(s, "Text=0;Data=0;Bss=0");
}

static void h_attached(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    stub_packets_reply(s, "1");
}

static void h_ok(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    stub_packets_reply(s, "OK");
}

static void h_empty(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    stub_packets_reply(s, "");
}

static void h_no_ack(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    stub_packets_reply(s, "OK");
    rsp_conn_set_no_ack(&s->conn, true);
}

/* QEMU's physical-memory mode: m, M, x and X then take guest-physical
 * addresses (page tables, DMA buffers). gdb users type
 * "maintenance packet Qqemu.PhyMemMode:1". */
static void h_phymem_set(struct stub_session *s, const struct rsp_args *a)
{
    s->phys = a->arg[0].num == '1';
    stub_packets_reply(s, "OK");
}

static void h_phymem_get(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    stub_packets_reply(s, s->phys ? "1" : "0");
}

/* LLDB's target triple for the guest, hex-encoded as qHostInfo and
 * qProcessInfo carry it: a bare-metal x86, no OS, no vendor. */
static void lldb_triple(struct stub_session *s, struct rsp_reply *r)
{
    bool wide = stub_packets_arch(s) == STUB_ARCH_AMD64;
    const char *triple = wide ? "x86_64-unknown-none" : "i386-unknown-none";
    rsp_reply_str(r, "triple:");
    rsp_reply_hex(r, triple, strlen(triple));
    rsp_reply_str(r, wide ? ";ptrsize:8;" : ";ptrsize:4;");
    rsp_reply_str(r, "endian:little;");
}

/* qHostInfo (LLDB): what the "host" is, here the guest's machine. x86
 * reports watchpoints after the access, which LLDB must know so as not to
 * run the instruction again. */
static void h_lldb_host_info(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    struct rsp_reply r;
    rsp_reply_begin(&r, &s->conn);
    lldb_triple(s, &r);
    rsp_reply_str(&r, "watchpoint_exceptions_received:after;");
    rsp_reply_end(&r);
}

/* qProcessInfo (LLDB): the one "process", the guest. Without it LLDB asks
 * again at every turn and keeps the executable's triple. */
static void h_lldb_process_info(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    struct rsp_reply r;
    rsp_reply_begin(&r, &s->conn);
    rsp_reply_str(&r, "pid:1;parent-pid:1;");
    lldb_triple(s, &r);
    rsp_reply_end(&r);
}

/* QListThreadsInStopReply (LLDB): every stop reply then lists the threads
 * and their pcs (see packets.c). */
static void h_lldb_list_threads(struct stub_session *s, const struct rsp_args *a)
{
    (void)a;
    s->list_threads = true;
    stub_packets_reply(s, "OK");
}

static const struct stub_packet packets[] = {
    {{"qSupported", "[:F]"}, h_supported},
    {{"qXfer:features:read:", "an,n"}, h_xfer_features},
    {{"qRcmd", ",r"}, h_monitor},
    {{"qOffsets", ""}, h_offsets},
    {{"qAttached", "[:n]"}, h_attached},
    /* Every form ("::", ":addr", "addr:name") is gdb offering symbol
     * lookups, which the stub answers the same way, so none is read. */
    {{"qSymbol", ":*"}, h_ok},
    {{"QStartNoAckMode", ""}, h_no_ack},
    {{"vMustReplyEmpty", ""}, h_empty},
    {{"Qqemu.PhyMemMode", ":{01}"}, h_phymem_set},
    {{"qqemu.PhyMemMode", ""}, h_phymem_get},
    {{"qHostInfo", ""}, h_lldb_host_info},
    {{"qProcessInfo", ""}, h_lldb_process_info},
    {{"QListThreadsInStopReply", ""}, h_lldb_list_threads},
    /* LLDB asks before D1, with a colon and nothing after; kvmstub can
     * always keep the guest stopped. */
    {{"qSupportsDetachAndStayStopped", "[:]"}, h_ok},
};

const struct stub_packet_table stub_packets_query = {packets, sizeof(packets) / sizeof(packets[0])};
