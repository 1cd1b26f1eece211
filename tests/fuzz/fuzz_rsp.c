/* fuzz_rsp: libFuzzer harness for the rsp/ codec.
 *
 * The input is a byte stream from a hostile gdb. It is fed in chunks whose
 * sizes come from the stream itself, so the fuzzer explores packets split
 * at every point; every packet is matched against a table of packet kinds
 * and read by its schema, re-encoded and decoded again by a
 * second connection, and sent back as console output. Any broken invariant
 * aborts, which libFuzzer reports as a crash. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rsp/command.h"
#include "rsp/hex.h"
#include "rsp/packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

/* Allocated once: a fresh 128 KiB payload per input would dominate the run. */
static struct rsp_conn conn, tx, rx;

static void init_once(void)
{
    static bool done;
    if (done)
        return;
    CHECK(rsp_conn_init(&conn) == 0);
    CHECK(rsp_conn_init(&tx) == 0);
    CHECK(rsp_conn_init(&rx) == 0);
    done = true;
}

/* kvmstub's packet kinds as stub/packets_*.c name them, and kinds that
 * use the rest of the schema language, so every field reader sees hostile
 * input behind a name the fuzzer finds in rsp.dict. */
static const struct rsp_command defs[] = {
    {"g", ""},          {"G", "x"},         {"p", "n"},         {"P", "n=x"},
    {"m", "n,n"},       {"x", "n,n"},       {"M", "n,n:X"},     {"X", "n,n:b"},
    {"Z", "k,n,n[;*]"}, {"z", "k,n,n[;*]"}, {"?", ""},          {"c", "[n]"},
    {"C", "g[;n]"},     {"s", "[n]"},       {"S", "g[;n]"},     {"vCont?", ""},
    {"vCont", "V"},     {"bs", ""},         {"bc", ""},         {"k", ""},
    {"vKill", ";n"},    {"!", ""},          {"R", "[n]"},       {"vRun", ";s"},
    {"D", "[;n]"},      {"D1", ""},         {"H", "{gc}t"},     {"T", "t"},
    {"qC", ""},         {"qfThreadInfo", ""}, {"qsThreadInfo", ""},
    {"qThreadExtraInfo", ",t"},             {"qXfer:threads:read:", "an,n"},
    {"qSupported", "[:F]"},                 {"qXfer:features:read:", "an,n"},
    {"qRcmd", ",r"},    {"qOffsets", ""},   {"qAttached", "[:n]"}, {"qSymbol", ":*"},
    {"QStartNoAckMode", ""},                {"vMustReplyEmpty", ""},
    {"Qqemu.PhyMemMode", ":{01}"},          {"qqemu.PhyMemMode", ""},
    {"qHostInfo", ""},  {"qProcessInfo", ""}, {"QListThreadsInStopReply", ""},
    {"qSupportsDetachAndStayStopped", "[:]"},
    /* not kvmstub's: more of the language */
    {"A", "n[,t][;a][s]"}, {"F", "{-0123456789}[,r]"}, {"qL", "n:X"}, {"t", "[g,*]"},
};

/* The kind a payload is, as the stub finds it: the longest name. */
static const struct rsp_command *find(const uint8_t *p, size_t n)
{
    const struct rsp_command *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
        size_t k = rsp_command_match(&defs[i], p, n);
        CHECK(k <= n);
        if (k > best_len) {
            best = &defs[i];
            best_len = k;
        }
    }
    return best;
}

/* Pointers the reader hands out must point into the payload; strings may
 * end at the NUL the decoder keeps after it (pass len + 1 for those). */
static bool inside(const void *p, size_t n, const uint8_t *payload, size_t len)
{
    const uint8_t *b = p;
    return b >= payload && b <= payload + len && n <= (size_t)(payload + len - b);
}

/* Walks the schema beside the fields read and checks each against its
 * letter's promise. */
static void check_args(const struct rsp_command *d, const struct rsp_args *a, int rc,
                       const uint8_t *payload, size_t len)
{
    CHECK(rc == 0 || rc == -EINVAL);
    CHECK((rc == 0) == (a->reason == NULL));
    if (rc)
        return;
    size_t slot = 0;
    for (const char *s = d->schema; *s; s++) {
        char ch = *s;
        if (ch == '{') {
            const char *stop = strchr(s, '}');
            const struct rsp_arg *arg = &a->arg[slot++];
            CHECK(!arg->present || memchr(s + 1, (int)arg->num, (size_t)(stop - s - 1)));
            s = stop;
            continue;
        }
        if (!strchr("ngktxXbras*VF", ch))
            continue;
        const struct rsp_arg *arg = &a->arg[slot++];
        if (!arg->present)
            continue;
        switch (ch) {
        case 'g':
            CHECK(arg->num <= 0xff);
            break;
        case 'k':
            CHECK(arg->num <= RSP_BP_ACCESS);
            break;
        case 'x':
            CHECK(arg->len > 0 && inside(arg->data, arg->len, payload, len));
            break;
        case 'X':
        case 'b':
            CHECK(arg->len == a->arg[slot - 2].num && inside(arg->data, arg->len, payload, len));
            break;
        case '*':
            CHECK(inside(arg->data, arg->len, payload, len));
            break;
        case 'r':
        case 'a':
        case 's':
        case 'F':
            CHECK(inside(arg->text, arg->len + 1, payload, len + 1));
            CHECK(arg->text[arg->len] == '\0');
            if (ch != 'r')
                CHECK(strlen(arg->text) == arg->len);
            break;
        case 'V':
            CHECK(arg->num >= 1 && arg->num <= RSP_VCONT_MAX);
            break;
        default:
            break;
        }
    }
    CHECK(slot == a->count);
}

/* Encodes p as a reply and checks the decoder gives back exactly p. */
static void round_trip(const uint8_t *p, size_t n)
{
    struct rsp_reply r;
    struct rsp_event ev;

    tx.out.len = 0;
    rsp_reply_begin(&r, &tx);
    rsp_reply_put(&r, p, n);
    CHECK(rsp_reply_end(&r) == 0);
    size_t used = rsp_conn_feed(&rx, tx.out.data, tx.out.len, &ev);
    CHECK(used == tx.out.len);
    /* Escapes can make a payload that fitted too long to send back. */
    if (tx.out.len - 4 > RSP_PACKET_SIZE)
        CHECK(ev.type == RSP_EVENT_OVERSIZE);
    else
        CHECK(ev.type == RSP_EVENT_PACKET && ev.len == n && memcmp(ev.payload, p, n) == 0);
    rx.out.len = 0;
}

/* Sends p as console output and checks the text comes back whole, in
 * packets no longer than the limit. */
static void console_round_trip(const uint8_t *p, size_t n, size_t max_payload)
{
    tx.out.len = 0;
    CHECK(rsp_send_console(&tx, p, n, max_payload) == 0);
    const uint8_t *in = tx.out.data;
    size_t left = tx.out.len, got = 0;
    while (left) {
        struct rsp_event ev;
        size_t used = rsp_conn_feed(&rx, in, left, &ev);
        in += used;
        left -= used;
        CHECK(ev.type == RSP_EVENT_PACKET);
        CHECK(ev.len <= max_payload && ev.len >= 3 && ev.payload[0] == 'O');
        static uint8_t text[RSP_PACKET_SIZE / 2];
        long k = rsp_hex_decode(text, (const char *)ev.payload + 1, ev.len - 1);
        CHECK(k > 0 && (size_t)k <= n - got && memcmp(text, p + got, (size_t)k) == 0);
        got += (size_t)k;
    }
    CHECK(got == n);
    rx.out.len = 0;
}

static void on_packet(const struct rsp_event *ev, size_t size)
{
    struct rsp_args args;

    CHECK(ev->len <= RSP_PACKET_SIZE && ev->payload[ev->len] == 0);
    round_trip(ev->payload, ev->len);
    console_round_trip(ev->payload, ev->len, 3 + size % 61);

    const struct rsp_command *d = find(ev->payload, ev->len);
    int rc = d ? rsp_command_read(d, ev->payload, ev->len, &args) : 0;
    if (d)
        check_args(d, &args, rc, ev->payload, ev->len);
    /* Answer like the stub would, so NAKs have something to re-send. */
    if (!d) {
        CHECK(rsp_send_str(&conn, "") == 0);
    } else if (rc) {
        CHECK(rsp_send_error(&conn, EINVAL) == 0);
    } else if (strcmp(d->name, "QStartNoAckMode") == 0) {
        CHECK(rsp_send_str(&conn, "OK") == 0);
        rsp_conn_set_no_ack(&conn, true);
    } else if (strcmp(d->name, "qRcmd") == 0) {
        CHECK(rsp_send_console(&conn, args.arg[0].text, args.arg[0].len, 0) == 0);
        CHECK(rsp_send_str(&conn, "OK") == 0);
    } else {
        CHECK(rsp_send_str(&conn, "") == 0);
    }
}

static void run_stream(const uint8_t *data, size_t size)
{
    rsp_conn_reset(&conn);
    rsp_conn_reset(&tx);
    rsp_conn_reset(&rx);
    /* rx checks the encoder, one packet at a time, with no peer to ack:
     * in ack mode two equal packets in a row would read as a
     * retransmission. */
    rsp_conn_set_no_ack(&rx, true);

    size_t pos = 0;
    uint64_t naks = 0, repeated = 0;
    while (pos < size) {
        /* The chunk size is a function of the data and its position, so a
         * mutation can move a split anywhere. */
        size_t chunk = 1 + (size_t)((data[pos] ^ (pos * 7)) % 37);
        if ((data[pos] & 0xc0) == 0xc0)
            chunk = size - pos;
        if (chunk > size - pos)
            chunk = size - pos;
        size_t end = pos + chunk;
        while (pos < end) {
            struct rsp_event ev;
            size_t used = rsp_conn_feed(&conn, data + pos, end - pos, &ev);
            CHECK(used >= 1 && used <= end - pos);
            CHECK(ev.type != RSP_EVENT_NONE || used == end - pos);
            pos += used;
            if (ev.type == RSP_EVENT_PACKET)
                on_packet(&ev, size);
            else if (ev.type == RSP_EVENT_NAK)
                naks++;
            else if (ev.type == RSP_EVENT_REPEATED)
                repeated++;
            else if (ev.type == RSP_EVENT_OVERSIZE || ev.type == RSP_EVENT_BAD_ENCODING)
                CHECK(rsp_send_error(&conn, 1) == 0);
        }
        /* The transport wrote everything out. */
        CHECK(conn.out.len <= RSP_OUT_MAX);
        rsp_buf_consume(&conn.out, conn.out.len);
    }
    CHECK(conn.stats.naks == naks && conn.stats.resends <= naks);
    CHECK(conn.stats.repeated == repeated);
}

/* Rewrites every checksum to the right value. A mutated packet almost never
 * has one, so without this the parser would see little but the seeds. */
static void fix_checksums(uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    bool in_packet = false;
    uint8_t sum = 0;

    for (size_t i = 0; i < n; i++) {
        if (p[i] == '$') {
            in_packet = true;
            sum = 0;
        } else if (in_packet && p[i] == '#') {
            in_packet = false;
            if (i + 1 < n && p[i + 1] != '$')
                p[++i] = (uint8_t)digits[sum >> 4];
            if (i + 1 < n && p[i + 1] != '$')
                p[++i] = (uint8_t)digits[sum & 0xf];
        } else if (in_packet) {
            sum = (uint8_t)(sum + p[i]);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    /* Once as sent, checksum failures included, then with every packet's
     * checksum made right. */
    run_stream(data, size);
    uint8_t *fixed = malloc(size ? size : 1);
    CHECK(fixed != NULL);
    memcpy(fixed, data, size);
    fix_checksums(fixed, size);
    run_stream(fixed, size);
    free(fixed);
    return 0;
}
