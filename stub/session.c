/* One gdb connection (session.h): framing, the queue of packets that wait
 * for a stop, and each packet handed to its entry in the tables of
 * stub/packets_*.c (packets.h). */
#include "session.h"

#include "log.h"
#include "packets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void flush(struct stub_session *s)
{
    struct rsp_buf *out = &s->conn.out;
    if (!out->len)
        return;
    if (s->link.write)
        s->link.write(s->link.ctx, out->data, out->len);
    rsp_buf_consume(out, out->len);
}

static void on_output(void *ctx, const uint8_t *data, size_t n);
static void on_stopped(void *ctx, const struct stub_stop *stop);
static int index_packets(void);

int stub_session_init(struct stub_session *s, const struct stub_target *target,
                      const struct stub_link *link)
{
    memset(s, 0, sizeof(*s));
    s->target = *target;
    s->link = *link;
    int r = index_packets();
    if (r)
        return r;
    r = rsp_conn_init(&s->conn);
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
    STUB_CALL(s, attach, &l);
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
    STUB_CALL(s, detach, s->keep_stopped);
}

static const struct stub_packet_table *const tables[] = {
    &stub_packets_state,
    &stub_packets_run,
    &stub_packets_threads,
    &stub_packets_query,
};

/* The tables' entries grouped by the first byte of their name, so that a
 * packet is compared with the few names that can match (one for most
 * packets), not with all of them. Built once from the constant tables, on
 * the loop thread. */
#define INDEX_MAX 256
static struct {
    const struct stub_packet *entries[INDEX_MAX];
    uint16_t start[257]; /* entries[start[c] .. start[c + 1]) begin with c */
    bool built;
} by_first;

static int index_packets(void)
{
    uint16_t count[256] = {0};
    size_t total = 0;
    if (by_first.built)
        return 0;
    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
        for (size_t i = 0; i < tables[t]->count; i++)
            count[(uint8_t)tables[t]->entries[i].def.name[0]]++;
        total += tables[t]->count;
    }
    if (total > INDEX_MAX) {
        stub_log("the packet tables hold %zu entries, more than the %d the session indexes; "
                 "raise INDEX_MAX in stub/session.c", total, INDEX_MAX);
        return -E2BIG;
    }
    for (unsigned c = 0; c < 256; c++)
        by_first.start[c + 1] = (uint16_t)(by_first.start[c] + count[c]);
    uint16_t next[256];
    memcpy(next, by_first.start, sizeof(next));
    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
        for (size_t i = 0; i < tables[t]->count; i++) {
            const struct stub_packet *e = &tables[t]->entries[i];
            by_first.entries[next[(uint8_t)e->def.name[0]]++] = e;
        }
    by_first.built = true;
    return 0;
}

/* The entry whose name matches the payload, the longest if several do. */
static const struct stub_packet *find_packet(const uint8_t *payload, size_t len)
{
    const struct stub_packet *best = NULL;
    size_t best_len = 0;
    if (!len)
        return NULL;
    for (unsigned k = by_first.start[payload[0]]; k < by_first.start[payload[0] + 1]; k++) {
        size_t n = rsp_command_match(&by_first.entries[k]->def, payload, len);
        if (n > best_len) {
            best = by_first.entries[k];
            best_len = n;
        }
    }
    return best;
}

/* A packet no entry names gets the empty reply ("not supported"); one whose
 * fields break its schema gets an error. */
static void handle(struct stub_session *s, uint8_t *payload, size_t len)
{
    struct rsp_args args;
    stub_trace_packet("<-", payload, len);
    const struct stub_packet *e = find_packet(payload, len);
    if (!e) {
        stub_packets_reply(s, "");
        return;
    }
    if (rsp_command_read(&e->def, payload, len, &args)) {
        stub_trace("malformed %s packet: %s", e->def.name, args.reason);
        stub_packets_error(s, EINVAL);
        return;
    }
    e->handle(s, &args);
}

static bool can_handle(struct stub_session *s)
{
    return !STUB_CALL0(s, running) && !s->closing && !s->killed;
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
            STUB_CALL0(s, interrupt);
            break;
        case RSP_EVENT_OVERSIZE:
            stub_log("gdb sent a packet longer than PacketSize (%u bytes); refused",
                     RSP_PACKET_SIZE);
            stub_packets_error(s, EMSGSIZE);
            break;
        case RSP_EVENT_BAD_ENCODING:
            stub_packets_error(s, EINVAL);
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
            stub_packets_reply(s, "E01"); /* gdb shows the text above, then the error */
        else
            stub_packets_stop_reply(s, stop);
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

