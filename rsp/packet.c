#include "packet.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"

enum {
    ST_IDLE,  /* between packets */
    ST_DATA,  /* after '$' */
    ST_COUNT, /* after a '*': the next raw byte is a repeat count */
    ST_CSUM1, /* after '#' */
    ST_CSUM2, /* after the first checksum digit */
};

/* sum_hi value for a first checksum digit that was not hex. */
#define SUM_HI_BAD 0xffu

/* A repeat count byte n stands for n - 29 more copies; gdb keeps n printable
 * and never '#' or '$', which would end or restart the packet. */
#define RLE_MIN_COUNT ' '
#define RLE_MAX_COUNT '~'
#define RLE_BIAS 29

int rsp_conn_init(struct rsp_conn *c)
{
    memset(c, 0, sizeof(*c));
    c->payload = malloc(RSP_PACKET_SIZE + 1);
    if (!c->payload)
        return -ENOMEM;
    rsp_buf_init(&c->out, RSP_OUT_MAX);
    rsp_buf_init(&c->last, RSP_OUT_MAX);
    rsp_buf_init(&c->prev, RSP_PACKET_SIZE);
    c->state = ST_IDLE;
    return 0;
}

void rsp_conn_free(struct rsp_conn *c)
{
    free(c->payload);
    c->payload = NULL;
    rsp_buf_free(&c->out);
    rsp_buf_free(&c->last);
    rsp_buf_free(&c->prev);
}

void rsp_conn_reset(struct rsp_conn *c)
{
    c->state = ST_IDLE;
    c->no_ack = false;
    c->out.len = 0;
    c->last.len = 0;
    c->prev.len = 0;
    c->unacked = false;
    memset(&c->stats, 0, sizeof(c->stats));
}

void rsp_conn_set_no_ack(struct rsp_conn *c, bool no_ack)
{
    c->no_ack = no_ack;
    /* Nothing is re-sent without acks, so the copy would only go stale. */
    if (no_ack)
        c->last.len = 0;
    /* Only ack mode has retransmissions; the packet that switched modes
     * was answered, so a copy of it would be a new command. */
    c->unacked = false;
}

uint8_t rsp_checksum(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint8_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum = (uint8_t)(sum + b[i]);
    return sum;
}

/* ---- decoder ---- */

static void start_packet(struct rsp_conn *c)
{
    c->state = ST_DATA;
    c->sum = 0;
    c->sum_hi = 0;
    c->escape = false;
    c->have_prev = false;
    c->too_long = false;
    c->bad_rle = false;
    c->raw_len = 0;
    c->len = 0;
}

/* Acks are best effort: if the owner let out reach its ceiling the peer
 * times out and retransmits, which is the protocol's own recovery. */
static void send_ack(struct rsp_conn *c, bool good)
{
    if (!c->no_ack)
        (void)rsp_buf_append(&c->out, good ? "+" : "-", 1);
}

static void put_decoded(struct rsp_conn *c, uint8_t b, size_t count)
{
    if (count > RSP_PACKET_SIZE - c->len) {
        c->too_long = true;
        return;
    }
    memset(c->payload + c->len, b, count);
    c->len += count;
    c->have_prev = true;
}

/* Once a packet is known to be dropped only its checksum still matters. */
static bool decoding(const struct rsp_conn *c)
{
    return !c->too_long && !c->bad_rle;
}

static void count_raw(struct rsp_conn *c, uint8_t b)
{
    c->sum = (uint8_t)(c->sum + b);
    if (c->raw_len <= RSP_PACKET_SIZE)
        c->raw_len++;
    if (c->raw_len > RSP_PACKET_SIZE)
        c->too_long = true;
}

static void data_byte(struct rsp_conn *c, uint8_t b)
{
    count_raw(c, b);
    if (!decoding(c))
        return;
    if (c->escape) {
        c->escape = false;
        put_decoded(c, b ^ 0x20, 1);
    } else if (b == '}') {
        c->escape = true;
    } else if (b == '*') {
        if (c->have_prev)
            c->state = ST_COUNT;
        else
            c->bad_rle = true;
    } else {
        put_decoded(c, b, 1);
    }
}

static void count_byte(struct rsp_conn *c, uint8_t b)
{
    c->state = ST_DATA;
    count_raw(c, b);
    if (!decoding(c))
        return;
    if (b < RLE_MIN_COUNT || b > RLE_MAX_COUNT)
        c->bad_rle = true;
    else
        put_decoded(c, c->payload[c->len - 1], (size_t)(b - RLE_BIAS));
}

/* Whether the packet just decoded repeats the previous one before the peer
 * acked anything (see packet.h); remembers it for the next check. */
static bool is_repeat(struct rsp_conn *c)
{
    if (c->no_ack)
        return false;
    if (c->unacked && c->prev.len == c->len &&
        (c->len == 0 || memcmp(c->prev.data, c->payload, c->len) == 0))
        return true;
    c->prev.len = 0;
    /* Without room for the copy the check is off, never wrong. */
    c->unacked = rsp_buf_append(&c->prev, c->payload, c->len) == 0;
    return false;
}

static bool end_packet(struct rsp_conn *c, int lo, struct rsp_event *ev)
{
    bool sum_ok = c->sum_hi != SUM_HI_BAD && lo >= 0 && (c->sum_hi << 4 | lo) == c->sum;

    c->state = ST_IDLE;
    /* A corrupted packet is asked for again before anything else is judged:
     * answering it as well would put a reply in front of its re-send. */
    if (!sum_ok) {
        c->stats.bad_checksums++;
        send_ack(c, false);
        ev->type = RSP_EVENT_BAD_CHECKSUM;
    } else if (c->too_long) {
        c->stats.oversized++;
        send_ack(c, true);
        ev->type = RSP_EVENT_OVERSIZE;
    } else if (c->bad_rle) {
        c->stats.bad_encoding++;
        send_ack(c, true);
        ev->type = RSP_EVENT_BAD_ENCODING;
    } else if (is_repeat(c)) {
        c->stats.repeated++;
        send_ack(c, true);
        ev->type = RSP_EVENT_REPEATED;
    } else {
        c->stats.packets++;
        send_ack(c, true);
        c->payload[c->len] = 0;
        ev->type = RSP_EVENT_PACKET;
        ev->payload = c->payload;
        ev->len = c->len;
    }
    return true;
}

static bool idle_byte(struct rsp_conn *c, uint8_t b, struct rsp_event *ev)
{
    switch (b) {
    case '$':
        start_packet(c);
        return false;
    case '+':
        c->unacked = false;
        ev->type = RSP_EVENT_ACK;
        return true;
    case '-':
        c->stats.naks++;
        if (!c->no_ack && c->last.len) {
            /* Best effort, as for acks: a full out means the peer is not
             * reading and will time out anyway. */
            if (rsp_buf_append(&c->out, c->last.data, c->last.len) == 0)
                c->stats.resends++;
        }
        ev->type = RSP_EVENT_NAK;
        return true;
    case 0x03:
        c->stats.interrupts++;
        ev->type = RSP_EVENT_INTERRUPT;
        return true;
    default:
        c->stats.noise++;
        return false;
    }
}

/* Feeds one byte; true when it completed an event. */
static bool step(struct rsp_conn *c, uint8_t b, struct rsp_event *ev)
{
    if (c->state == ST_IDLE)
        return idle_byte(c, b, ev);
    /* A '$' anywhere in a packet, checksum included, starts a new one, so a
     * packet cut short on the wire costs only itself. */
    if (b == '$') {
        start_packet(c);
        return false;
    }
    switch (c->state) {
    case ST_DATA:
    case ST_COUNT:
        if (b == '#') {
            /* A '}' or '*' with nothing after it has nothing to apply to. */
            if (decoding(c) && (c->escape || c->state == ST_COUNT))
                c->bad_rle = true;
            c->state = ST_CSUM1;
        } else if (c->state == ST_COUNT) {
            count_byte(c, b);
        } else {
            data_byte(c, b);
        }
        return false;
    case ST_CSUM1: {
        int hi = rsp_hex_digit(b);
        c->sum_hi = hi < 0 ? SUM_HI_BAD : (uint8_t)hi;
        c->state = ST_CSUM2;
        return false;
    }
    default:
        return end_packet(c, rsp_hex_digit(b), ev);
    }
}

size_t rsp_conn_feed(struct rsp_conn *c, const uint8_t *in, size_t n, struct rsp_event *ev)
{
    ev->type = RSP_EVENT_NONE;
    ev->payload = NULL;
    ev->len = 0;
    for (size_t i = 0; i < n; i++)
        if (step(c, in[i], ev))
            return i + 1;
    return n;
}

/* ---- encoder ---- */

static bool needs_escape(uint8_t b)
{
    return b == '$' || b == '#' || b == '}' || b == '*';
}

/* Appends bytes that need no escaping and adds them to the checksum. */
static void put_raw(struct rsp_reply *r, const void *p, size_t n)
{
    if (r->err)
        return;
    r->err = rsp_buf_append(&r->conn->out, p, n);
    if (!r->err)
        r->sum = (uint8_t)(r->sum + rsp_checksum(p, n));
}

void rsp_reply_begin(struct rsp_reply *r, struct rsp_conn *c)
{
    r->conn = c;
    r->start = c->out.len;
    r->sum = 0;
    r->err = rsp_buf_append(&c->out, "$", 1);
}

void rsp_reply_put(struct rsp_reply *r, const void *p, size_t n)
{
    const uint8_t *b = p;
    size_t i = 0;

    while (i < n && !r->err) {
        size_t run = 0;
        while (i + run < n && !needs_escape(b[i + run]))
            run++;
        put_raw(r, b + i, run);
        i += run;
        if (i < n) {
            uint8_t esc[2] = {'}', (uint8_t)(b[i] ^ 0x20)};
            put_raw(r, esc, sizeof(esc));
            i++;
        }
    }
}

void rsp_reply_str(struct rsp_reply *r, const char *s)
{
    rsp_reply_put(r, s, strlen(s));
}

/* Each byte's two hex digits, and what they add to the checksum: register
 * and memory replies are mostly hex, and under emulation every instruction
 * per byte shows in the reply rate. */
#define HEX_DIGIT(x) ((char)((x) < 10 ? '0' + (x) : 'a' + (x) - 10))
#define HEX_PAIR(b) {HEX_DIGIT((b) >> 4), HEX_DIGIT((b) & 15)}
#define HEX_SUM(b) (uint8_t)(HEX_DIGIT((b) >> 4) + HEX_DIGIT((b) & 15))
#define ROW16(M, r)                                                                                \
    M(r * 16 + 0), M(r * 16 + 1), M(r * 16 + 2), M(r * 16 + 3), M(r * 16 + 4), M(r * 16 + 5),     \
        M(r * 16 + 6), M(r * 16 + 7), M(r * 16 + 8), M(r * 16 + 9), M(r * 16 + 10),               \
        M(r * 16 + 11), M(r * 16 + 12), M(r * 16 + 13), M(r * 16 + 14), M(r * 16 + 15)
#define TABLE256(M)                                                                                \
    ROW16(M, 0), ROW16(M, 1), ROW16(M, 2), ROW16(M, 3), ROW16(M, 4), ROW16(M, 5), ROW16(M, 6),     \
        ROW16(M, 7), ROW16(M, 8), ROW16(M, 9), ROW16(M, 10), ROW16(M, 11), ROW16(M, 12),           \
        ROW16(M, 13), ROW16(M, 14), ROW16(M, 15)

static const char hex_pairs[256][2] = {TABLE256(HEX_PAIR)};
static const uint8_t hex_sums[256] = {TABLE256(HEX_SUM)};

void rsp_reply_hex(struct rsp_reply *r, const void *p, size_t n)
{
    if (r->err)
        return;
    if (n > SIZE_MAX / 2) {
        r->err = -EMSGSIZE;
        return;
    }
    struct rsp_buf *out = &r->conn->out;
    r->err = rsp_buf_reserve(out, 2 * n);
    if (r->err)
        return;
    const uint8_t *b = p;
    char *dst = (char *)out->data + out->len;
    unsigned sum = r->sum;
    for (size_t i = 0; i < n; i++) {
        memcpy(dst + 2 * i, hex_pairs[b[i]], 2);
        sum += hex_sums[b[i]];
    }
    r->sum = (uint8_t)sum;
    out->len += 2 * n;
}

void rsp_reply_u64(struct rsp_reply *r, uint64_t v)
{
    char s[17];
    put_raw(r, s, rsp_hex_format_u64(s, v));
}

void rsp_reply_abort(struct rsp_reply *r)
{
    struct rsp_buf *out = &r->conn->out;
    if (r->start <= out->len)
        out->len = r->start;
}

int rsp_reply_end(struct rsp_reply *r)
{
    struct rsp_conn *c = r->conn;
    char tail[3] = {'#'};
    char sum[3];

    if (!r->err) {
        rsp_hex_encode(sum, &r->sum, 1);
        tail[1] = sum[0];
        tail[2] = sum[1];
        r->err = rsp_buf_append(&c->out, tail, sizeof(tail));
    }
    if (!r->err && !c->no_ack) {
        c->last.len = 0;
        r->err = rsp_buf_append(&c->last, c->out.data + r->start, c->out.len - r->start);
    }
    if (r->err) {
        rsp_reply_abort(r);
        return r->err;
    }
    return 0;
}

int rsp_send_str(struct rsp_conn *c, const char *s)
{
    struct rsp_reply r;
    rsp_reply_begin(&r, c);
    rsp_reply_str(&r, s);
    return rsp_reply_end(&r);
}

int rsp_send_error(struct rsp_conn *c, int errnum)
{
    uint8_t code = (uint8_t)((unsigned)errnum & 0xff);
    struct rsp_reply r;
    char e[3] = {'E'};

    rsp_hex_encode(e + 1, &code, 1);
    rsp_reply_begin(&r, c);
    rsp_reply_put(&r, e, sizeof(e));
    return rsp_reply_end(&r);
}

int rsp_send_console(struct rsp_conn *c, const void *text, size_t n, size_t max_payload)
{
    const uint8_t *p = text;

    if (max_payload == 0)
        max_payload = RSP_PACKET_SIZE;
    if (max_payload < 3)
        return -EINVAL;
    size_t per = (max_payload - 1) / 2; /* text bytes per packet */
    if (n > c->out.max / 2)
        return -EMSGSIZE;
    /* Each packet wraps its hex in "$O" and "#xx". Reserving everything
     * first makes the call all-or-nothing: the client never sees half a
     * message followed by an error. */
    size_t packets = n / per + (n % per != 0);
    size_t hex = n * 2;
    if (packets > (SIZE_MAX - hex) / 5)
        return -EMSGSIZE;
    int err = rsp_buf_reserve(&c->out, hex + packets * 5);
    if (!err && !c->no_ack && n) {
        size_t kept = c->last.len;
        c->last.len = 0;
        err = rsp_buf_reserve(&c->last, (n < per ? n : per) * 2 + 5);
        c->last.len = kept;
    }
    if (err)
        return err;
    while (n) {
        size_t k = n < per ? n : per;
        struct rsp_reply r;
        rsp_reply_begin(&r, c);
        rsp_reply_put(&r, "O", 1);
        rsp_reply_hex(&r, p, k);
        err = rsp_reply_end(&r);
        if (err)
            return err;
        p += k;
        n -= k;
    }
    return 0;
}
