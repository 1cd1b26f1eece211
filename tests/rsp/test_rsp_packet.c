/* Tests of rsp/packet.h: the streaming decoder, acks, re-sends and the
 * reply encoder. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rsp/packet.h"
#include "rsp_test.h"
#include "testmain.h"

/* ---- helpers ---- */

/* The checksum, computed here independently of the code under test. */
static uint8_t sum_of(const void *p, size_t n)
{
    unsigned s = 0;
    for (size_t i = 0; i < n; i++)
        s += ((const uint8_t *)p)[i];
    return (uint8_t)s;
}

/* Appends "$raw#xx" with the right checksum to b. */
static void frame_n(struct rsp_buf *b, const void *raw, size_t n)
{
    char tail[4];
    snprintf(tail, sizeof(tail), "#%02x", sum_of(raw, n));
    CU_ASSERT_FATAL(rsp_buf_append(b, "$", 1) == 0);
    CU_ASSERT_FATAL(rsp_buf_append(b, raw, n) == 0);
    CU_ASSERT_FATAL(rsp_buf_append(b, tail, 3) == 0);
}

static void frame(struct rsp_buf *b, const char *raw)
{
    frame_n(b, raw, strlen(raw));
}

static void put(struct rsp_buf *b, const char *s)
{
    CU_ASSERT_FATAL(rsp_buf_append(b, s, strlen(s)) == 0);
}

static void put_n(struct rsp_buf *b, const void *p, size_t n)
{
    CU_ASSERT_FATAL(rsp_buf_append(b, p, n) == 0);
}

/* One line per event, payloads with non-printable bytes as \xHH, so that
 * expectations read like the stream. */
static void log_event(struct rsp_buf *log, const struct rsp_event *ev)
{
    static const char *const names[] = {
        [RSP_EVENT_NONE] = "none",          [RSP_EVENT_PACKET] = "packet",
        [RSP_EVENT_INTERRUPT] = "interrupt", [RSP_EVENT_ACK] = "ack",
        [RSP_EVENT_NAK] = "nak",            [RSP_EVENT_BAD_CHECKSUM] = "bad-checksum",
        [RSP_EVENT_OVERSIZE] = "oversize",  [RSP_EVENT_BAD_ENCODING] = "bad-encoding",
        [RSP_EVENT_REPEATED] = "repeated",
    };
    put(log, names[ev->type]);
    if (ev->type == RSP_EVENT_PACKET) {
        put(log, " ");
        for (size_t i = 0; i < ev->len; i++) {
            uint8_t b = ev->payload[i];
            char esc[5];
            if (b >= 0x20 && b < 0x7f && b != '\\')
                put_n(log, &b, 1);
            else {
                snprintf(esc, sizeof(esc), "\\x%02x", b);
                put(log, esc);
            }
        }
        /* The decoder promises a NUL after the payload. */
        if (ev->payload[ev->len] != 0)
            put(log, " (not NUL-terminated)");
    }
    put(log, "\n");
}

/* Feeds n bytes as one chunk, logging every event; checks the feed contract
 * (progress, no event without consuming). */
static void feed_log(struct rsp_conn *c, const uint8_t *in, size_t n, struct rsp_buf *log)
{
    while (n) {
        struct rsp_event ev;
        size_t used = rsp_conn_feed(c, in, n, &ev);
        CU_ASSERT_FATAL(used >= 1 && used <= n);
        if (ev.type != RSP_EVENT_NONE)
            log_event(log, &ev);
        else
            CU_ASSERT(used == n);
        in += used;
        n -= used;
    }
}

static bool log_is(const struct rsp_buf *log, const char *want)
{
    return log->len == strlen(want) && memcmp(log->data, want, log->len) == 0;
}

static bool out_is_n(const struct rsp_conn *c, const void *want, size_t n)
{
    return c->out.len == n && (n == 0 || memcmp(c->out.data, want, n) == 0);
}

static bool out_is(const struct rsp_conn *c, const char *want)
{
    return out_is_n(c, want, strlen(want));
}

/* Feeds a whole stream to a new connection; the caller frees c and log. */
static void run(struct rsp_conn *c, struct rsp_buf *log, const struct rsp_buf *in)
{
    CU_ASSERT_FATAL(rsp_conn_init(c) == 0);
    rsp_buf_init(log, 1u << 26);
    feed_log(c, in->data, in->len, log);
}

static void run_str(struct rsp_conn *c, struct rsp_buf *log, const char *s)
{
    struct rsp_buf in;
    rsp_buf_init(&in, 1u << 26);
    put(&in, s);
    run(c, log, &in);
    rsp_buf_free(&in);
}

static void done(struct rsp_conn *c, struct rsp_buf *log)
{
    rsp_conn_free(c);
    rsp_buf_free(log);
}

/* ---- decoder ---- */

static void test_single_packet(void)
{
    struct rsp_conn c;
    struct rsp_buf log;
    run_str(&c, &log, "$qC#b4");
    CU_ASSERT(log_is(&log, "packet qC\n"));
    CU_ASSERT(out_is(&c, "+"));
    CU_ASSERT_EQUAL(c.stats.packets, 1);
    CU_ASSERT_EQUAL(c.stats.noise, 0);
    done(&c, &log);
}

static void test_feed_contract(void)
{
    struct rsp_conn c;
    struct rsp_event ev;
    CU_ASSERT_FATAL(rsp_conn_init(&c) == 0);
    CU_ASSERT_EQUAL(rsp_conn_feed(&c, (const uint8_t *)"", 0, &ev), 0);
    CU_ASSERT_EQUAL(ev.type, RSP_EVENT_NONE);

    /* Stops right after each event, leaving the rest for the next call. */
    const uint8_t s[] = "+$g#67\x03xyz";
    CU_ASSERT_EQUAL(rsp_conn_feed(&c, s, 10, &ev), 1);
    CU_ASSERT_EQUAL(ev.type, RSP_EVENT_ACK);
    CU_ASSERT_EQUAL(rsp_conn_feed(&c, s + 1, 9, &ev), 5);
    CU_ASSERT_EQUAL(ev.type, RSP_EVENT_PACKET);
    CU_ASSERT_EQUAL(ev.len, 1);
    CU_ASSERT_EQUAL(ev.payload[0], 'g');
    CU_ASSERT_EQUAL(ev.payload[1], 0);
    CU_ASSERT_EQUAL(rsp_conn_feed(&c, s + 6, 4, &ev), 1);
    CU_ASSERT_EQUAL(ev.type, RSP_EVENT_INTERRUPT);
    CU_ASSERT_EQUAL(rsp_conn_feed(&c, s + 7, 3, &ev), 3);
    CU_ASSERT_EQUAL(ev.type, RSP_EVENT_NONE);
    CU_ASSERT_EQUAL(c.stats.noise, 3);
    CU_ASSERT_EQUAL(c.stats.interrupts, 1);
    rsp_conn_free(&c);
}

/* A stream with every kind of input, used for the chunking tests. */
static void build_mixed_stream(struct rsp_buf *s)
{
    rsp_buf_init(s, 1u << 20);
    put(s, "+");
    frame(s, "qSupported:multiprocess+;swbreak+;xmlRegisters=i386");
    put(s, "junk\r\n");
    put(s, "\x03");
    /* '$', '#', '}' and '*' escaped, and a NUL sent as an escape. */
    frame_n(s, "X1000,5:}\x04}\x03}]}\n}\x20", 18);
    put(s, "-");
    frame(s, "m0,8");
    put(s, "+");
    /* RLE: "0" + 5 more, then an escaped '}' + 4 more, then "x*" and the
     * count byte '*' itself (42 - 29 = 13 more). */
    frame(s, "G0*\"}]*!x**");
    put(s, "$g#00");                /* wrong checksum */
    put(s, "$g#6z");                /* non-hex checksum digit */
    put(s, "$m0,4$?#3f");           /* a '$' restarts the packet */
    frame(s, "a}");                 /* escape at the end */
    frame(s, "*a");                 /* nothing to repeat */
    frame(s, "a*\x1f");             /* count below ' ' */
    put(s, "\x03");
    frame(s, "vCont;c");
    put(s, "$?#3F");                /* upper-case checksum digits */
}

static const char mixed_events[] =
    "ack\n"
    "packet qSupported:multiprocess+;swbreak+;xmlRegisters=i386\n"
    "interrupt\n"
    "packet X1000,5:$#}*\\x00\n"
    "nak\n"
    "packet m0,8\n"
    "ack\n"
    "packet G000000}}}}}xxxxxxxxxxxxxx\n"
    "bad-checksum\n"
    "bad-checksum\n"
    "packet ?\n"
    "bad-encoding\n"
    "bad-encoding\n"
    "bad-encoding\n"
    "interrupt\n"
    "packet vCont;c\n"
    "packet ?\n";

/* Before the stream the stub sent "OK"; the '-' re-sends it. */
static const char mixed_out[] = "$OK#9a"
                                "+" /* qSupported */
                                "+" /* X */
                                "$OK#9a"
                                "+" /* m */
                                "+" /* G */
                                "--"
                                "+" /* ? */
                                "+++"
                                "++";

static void check_mixed_stats(const struct rsp_conn *c)
{
    CU_ASSERT_EQUAL(c->stats.packets, 7);
    CU_ASSERT_EQUAL(c->stats.bad_checksums, 2);
    CU_ASSERT_EQUAL(c->stats.bad_encoding, 3);
    CU_ASSERT_EQUAL(c->stats.oversized, 0);
    CU_ASSERT_EQUAL(c->stats.noise, 6);
    CU_ASSERT_EQUAL(c->stats.interrupts, 2);
    CU_ASSERT_EQUAL(c->stats.naks, 1);
    CU_ASSERT_EQUAL(c->stats.resends, 1);
}

static void start_mixed(struct rsp_conn *c, struct rsp_buf *log)
{
    CU_ASSERT_FATAL(rsp_conn_init(c) == 0);
    rsp_buf_init(log, 1u << 20);
    CU_ASSERT_FATAL(rsp_send_str(c, "OK") == 0);
}

static void test_mixed_stream_one_chunk(void)
{
    struct rsp_buf s, log;
    struct rsp_conn c;
    build_mixed_stream(&s);
    start_mixed(&c, &log);
    feed_log(&c, s.data, s.len, &log);
    CU_ASSERT(log_is(&log, mixed_events));
    CU_ASSERT(out_is(&c, mixed_out));
    check_mixed_stats(&c);
    done(&c, &log);
    rsp_buf_free(&s);
}

static void test_mixed_stream_every_split(void)
{
    struct rsp_buf s;
    build_mixed_stream(&s);
    for (size_t split = 0; split <= s.len; split++) {
        struct rsp_buf log;
        struct rsp_conn c;
        start_mixed(&c, &log);
        feed_log(&c, s.data, split, &log);
        feed_log(&c, s.data + split, s.len - split, &log);
        CHECKF(log_is(&log, mixed_events), "events differ when split at %zu", split);
        CHECKF(out_is(&c, mixed_out), "out differs when split at %zu", split);
        check_mixed_stats(&c);
        done(&c, &log);
    }
    rsp_buf_free(&s);
}

static void test_mixed_stream_byte_by_byte(void)
{
    struct rsp_buf s, log;
    struct rsp_conn c;
    build_mixed_stream(&s);
    start_mixed(&c, &log);
    for (size_t i = 0; i < s.len; i++)
        feed_log(&c, s.data + i, 1, &log);
    CU_ASSERT(log_is(&log, mixed_events));
    CU_ASSERT(out_is(&c, mixed_out));
    check_mixed_stats(&c);
    done(&c, &log);
    rsp_buf_free(&s);
}

/* Chunk sizes from a fixed pseudo-random sequence, so that several splits
 * fall inside one packet. */
static void test_mixed_stream_random_chunks(void)
{
    struct rsp_buf s;
    uint32_t x = 12345;
    build_mixed_stream(&s);
    for (int round = 0; round < 200; round++) {
        struct rsp_buf log;
        struct rsp_conn c;
        start_mixed(&c, &log);
        for (size_t i = 0; i < s.len;) {
            x = x * 1103515245u + 12345u;
            size_t k = 1 + (x >> 16) % 7;
            if (k > s.len - i)
                k = s.len - i;
            feed_log(&c, s.data + i, k, &log);
            i += k;
        }
        CHECKF(log_is(&log, mixed_events), "events differ in round %d", round);
        CHECKF(out_is(&c, mixed_out), "out differs in round %d", round);
        done(&c, &log);
    }
    rsp_buf_free(&s);
}

static void test_escapes(void)
{
    struct rsp_conn c;
    struct rsp_buf log;
    struct rsp_buf in;
    /* Any byte may be escaped, not only the four that must be. */
    rsp_buf_init(&in, 1024);
    frame(&in, "}\x41}\x5d}\x0a}}");
    run(&c, &log, &in);
    CU_ASSERT(log_is(&log, "packet a}*]\n"));
    CU_ASSERT(out_is(&c, "+"));
    done(&c, &log);
    rsp_buf_free(&in);
}

static void test_checksum_covers_raw_bytes(void)
{
    struct rsp_conn c;
    struct rsp_buf log;
    /* The checksum of the decoded "$" would be 0x24; the raw "}\x04" sums to
     * 0x81. Only the raw one is right. */
    run_str(&c, &log, "$}\x04#24$}\x04#81");
    CU_ASSERT(log_is(&log, "bad-checksum\npacket $\n"));
    CU_ASSERT(out_is(&c, "-+"));
    done(&c, &log);
}

static void test_rle_counts(void)
{
    static const struct {
        const char *raw;
        const char *want;
    } cases[] = {
        {"a* ", "aaaa"},                        /* ' ': the smallest count, 3 */
        {"a*!", "aaaaa"},
        {"a*\"", "aaaaaa"},                      /* gdb's way around '#' */
        {"x*~", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                "xxxxxxxxxxxxxxxxxxxxxxxx"},   /* '~': the largest, 97 */
        {"a*+b*-", "aaaaaaaaaaaaaaabbbbbbbbbbbbbbbbb"},
        {"}]* ", "}}}}"},                       /* an escaped byte repeated */
        {"}\x03*!", "#####"},
        {"ab* * ", "abbbbbbb"},                 /* a run continued */
        {"0* ,", "0000,"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rsp_buf in, log, want;
        struct rsp_conn c;
        rsp_buf_init(&in, 1024);
        rsp_buf_init(&want, 1024);
        frame(&in, cases[i].raw);
        run(&c, &log, &in);
        put(&want, "packet ");
        put(&want, cases[i].want);
        put(&want, "\n");
        CHECKF(log.len == want.len && memcmp(log.data, want.data, log.len) == 0,
               "RLE case \"%s\" gave %.*s", cases[i].raw, (int)log.len, (const char *)log.data);
        CHECKF(out_is(&c, "+"), "RLE case \"%s\" ack", cases[i].raw);
        done(&c, &log);
        rsp_buf_free(&in);
        rsp_buf_free(&want);
    }
    /* Sanity of the table: '~' is 97 more copies. */
    CU_ASSERT_EQUAL(strlen(cases[3].want), 98);
}

static void test_bad_encodings(void)
{
    static const char *const cases[] = {
        "*",      "*a",      "}",        "ab}",       "a*",  "a*\x1f", "a*\x7f",
        "a*\x80", "a*\xff",  "a*\x01",   "}a*\x1f\x62\x63",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rsp_buf in, log;
        struct rsp_conn c;
        rsp_buf_init(&in, 1024);
        frame(&in, cases[i]);
        frame(&in, "g"); /* the decoder must recover for the next packet */
        run(&c, &log, &in);
        CHECKF(log_is(&log, "bad-encoding\npacket g\n"), "bad encoding case %zu: %.*s", i,
               (int)log.len, (const char *)log.data);
        CHECKF(out_is(&c, "++"), "bad encoding case %zu acks", i);
        CHECKF(c.stats.bad_encoding == 1, "bad encoding case %zu counted", i);
        done(&c, &log);
        rsp_buf_free(&in);
    }
}

static void test_bad_encoding_with_bad_checksum(void)
{
    struct rsp_conn c;
    struct rsp_buf log;
    /* A corrupted packet is a checksum failure first: gdb must re-send. */
    run_str(&c, &log, "$a}#00");
    CU_ASSERT(log_is(&log, "bad-checksum\n"));
    CU_ASSERT(out_is(&c, "-"));
    CU_ASSERT_EQUAL(c.stats.bad_encoding, 0);
    done(&c, &log);
}

static void test_rle_count_dollar_and_hash(void)
{
    struct rsp_conn c;
    struct rsp_buf log;
    /* '#' right after '*' ends the packet: a '*' with no count. */
    run_str(&c, &log, "$a*#8b");
    CU_ASSERT(log_is(&log, "bad-encoding\n"));
    CU_ASSERT(out_is(&c, "+"));
    done(&c, &log);
    /* '$' right after '*' starts a new packet. */
    run_str(&c, &log, "$a*$g#67");
    CU_ASSERT(log_is(&log, "packet g\n"));
    done(&c, &log);
}

static void test_checksum_failures(void)
{
    static const char *const cases[] = {
        "$g#66", "$g#76", "$g#00", "$g#6g", "$g#g7", "$g#zz", "$g#\x03\x03", "$g#-+", "$g# 67",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rsp_buf in, log;
        struct rsp_conn c;
        rsp_buf_init(&in, 1024);
        put(&in, cases[i]);
        frame(&in, "g");
        run(&c, &log, &in);
        /* In "$g# 67" ' ' and '6' are the digits, and "7" is noise. */
        CHECKF(log_is(&log, "bad-checksum\npacket g\n"), "checksum case \"%s\": %.*s", cases[i], (int)log.len,
               (const char *)log.data);
        CHECKF(out_is(&c, "-+"), "checksum case \"%s\" acks", cases[i]);
        CHECKF(c.stats.bad_checksums == 1 && c.stats.packets == 1, "checksum case \"%s\" stats",
               cases[i]);
        done(&c, &log);
        rsp_buf_free(&in);
    }
}

static void test_restart_on_dollar(void)
{
    struct rsp_conn c;
    struct rsp_buf log;
    /* Cut short in the payload, after '#', and after one checksum digit.
     * (The '+' between are gdb's acks of our replies: without them a g
     * after a g would be a retransmission.) */
    run_str(&c, &log, "$m100$g#67+$m100#$g#67+$m100#1$g#67");
    CU_ASSERT(log_is(&log, "packet g\nack\npacket g\nack\npacket g\n"));
    CU_ASSERT(out_is(&c, "+++"));
    CU_ASSERT_EQUAL(c.stats.bad_checksums, 0);
    done(&c, &log);
    /* A restart forgets escape and RLE state. */
    run_str(&c, &log, "$a}$*#2a$a*$}#7d$a$*#2a");
    CU_ASSERT(log_is(&log, "bad-encoding\nbad-encoding\nbad-encoding\n"));
    done(&c, &log);
}

static void test_noise(void)
{
    struct rsp_conn c;
    struct rsp_buf log;
    run_str(&c, &log, "garbage#67g\r\n$g#67 \x04\xff");
    CU_ASSERT(log_is(&log, "packet g\n"));
    CU_ASSERT(out_is(&c, "+"));
    CU_ASSERT_EQUAL(c.stats.noise, 16);
    done(&c, &log);
}

static void test_binary_payload(void)
{
    struct rsp_conn c;
    struct rsp_buf log, in;
    uint8_t raw[] = {'X', 0x00, 0x03, '+', '-', 0xff, 0x80};
    rsp_buf_init(&in, 1024);
    frame_n(&in, raw, sizeof(raw));
    run(&c, &log, &in);
    CU_ASSERT(log_is(&log, "packet X\\x00\\x03+-\\xff\\x80\n"));
    done(&c, &log);
    rsp_buf_free(&in);
}

static void test_interrupt_only_between_packets(void)
{
    struct rsp_conn c;
    struct rsp_buf log, in;
    rsp_buf_init(&in, 1024);
    put(&in, "\x03");
    frame(&in, "a\x03");
    put(&in, "\x03\x03");
    run(&c, &log, &in);
    CU_ASSERT(log_is(&log, "interrupt\npacket a\\x03\ninterrupt\ninterrupt\n"));
    CU_ASSERT_EQUAL(c.stats.interrupts, 3);
    done(&c, &log);
    rsp_buf_free(&in);
}

static void test_empty_packet(void)
{
    struct rsp_conn c;
    struct rsp_buf log;
    run_str(&c, &log, "$#00");
    CU_ASSERT(log_is(&log, "packet \n"));
    CU_ASSERT(out_is(&c, "+"));
    done(&c, &log);
}

/* ---- oversize ---- */

static void fill_packet(struct rsp_buf *in, char ch, size_t n, const char *tail)
{
    uint8_t *raw = malloc(n + strlen(tail));
    CU_ASSERT_FATAL(raw != NULL);
    memset(raw, ch, n);
    memcpy(raw + n, tail, strlen(tail));
    frame_n(in, raw, n + strlen(tail));
    free(raw);
}

static void test_oversize_limit(void)
{
    struct rsp_buf in, log;
    struct rsp_conn c;
    rsp_buf_init(&in, 4u * RSP_PACKET_SIZE);

    /* Exactly RSP_PACKET_SIZE raw bytes: accepted. */
    fill_packet(&in, 'a', RSP_PACKET_SIZE, "");
    run(&c, &log, &in);
    CU_ASSERT_EQUAL(c.stats.packets, 1);
    CU_ASSERT_EQUAL(c.stats.oversized, 0);
    CU_ASSERT(out_is(&c, "+"));
    CU_ASSERT_EQUAL(log.len, strlen("packet \n") + RSP_PACKET_SIZE);
    done(&c, &log);

    /* One more: dropped after its checksum, acked, and the next packet is
     * decoded normally. */
    in.len = 0;
    fill_packet(&in, 'a', RSP_PACKET_SIZE + 1, "");
    frame(&in, "m0,4");
    run(&c, &log, &in);
    CU_ASSERT(log_is(&log, "oversize\npacket m0,4\n"));
    CU_ASSERT(out_is(&c, "++"));
    CU_ASSERT_EQUAL(c.stats.oversized, 1);
    CU_ASSERT_EQUAL(c.stats.packets, 1);
    done(&c, &log);

    /* Far longer than the limit, with a wrong checksum: NAKed as a bad
     * checksum, so no reply goes in front of gdb's re-send. */
    in.len = 0;
    fill_packet(&in, 'b', 3 * RSP_PACKET_SIZE, "");
    in.data[in.len - 1] ^= 1;
    frame(&in, "g");
    run(&c, &log, &in);
    CU_ASSERT(log_is(&log, "bad-checksum\npacket g\n"));
    CU_ASSERT(out_is(&c, "-+"));
    done(&c, &log);
    rsp_buf_free(&in);
}

static void test_oversize_by_rle(void)
{
    struct rsp_buf in, log;
    struct rsp_conn c;
    rsp_buf_init(&in, 4u * RSP_PACKET_SIZE);

    /* k bytes then "a*~" decode to k + 98 bytes. */
    fill_packet(&in, 'a', RSP_PACKET_SIZE - 98, "a*~");
    fill_packet(&in, 'a', RSP_PACKET_SIZE - 97, "a*~");
    /* Raw length exactly at the limit, expansion past it. */
    fill_packet(&in, 'a', RSP_PACKET_SIZE - 3, "a*~");
    frame(&in, "g");
    run(&c, &log, &in);
    CU_ASSERT_EQUAL(c.stats.packets, 2);
    CU_ASSERT_EQUAL(c.stats.oversized, 2);
    CU_ASSERT(out_is(&c, "++++"));
    static const char tail[] = "\noversize\noversize\npacket g\n";
    CU_ASSERT_EQUAL(log.len, strlen("packet ") + RSP_PACKET_SIZE + strlen(tail));
    CU_ASSERT(log.len >= sizeof(tail) &&
              memcmp(log.data + log.len - strlen(tail), tail, strlen(tail)) == 0);
    done(&c, &log);
    rsp_buf_free(&in);
}

/* ---- acks, NAKs and no-ack mode ---- */

static void test_resend_on_nak(void)
{
    struct rsp_conn c;
    struct rsp_buf log;
    run_str(&c, &log, "-");
    CU_ASSERT(log_is(&log, "nak\n"));
    CU_ASSERT(out_is(&c, "")); /* nothing sent yet, nothing to re-send */
    CU_ASSERT_EQUAL(c.stats.naks, 1);
    CU_ASSERT_EQUAL(c.stats.resends, 0);

    CU_ASSERT(rsp_send_str(&c, "S05") == 0);
    CU_ASSERT(out_is(&c, "$S05#b8"));
    rsp_buf_consume(&c.out, c.out.len);
    feed_log(&c, (const uint8_t *)"--+", 3, &log);
    CU_ASSERT(out_is(&c, "$S05#b8$S05#b8"));
    CU_ASSERT_EQUAL(c.stats.naks, 3);
    CU_ASSERT_EQUAL(c.stats.resends, 2);

    /* Only the last packet is kept. */
    rsp_buf_consume(&c.out, c.out.len);
    CU_ASSERT(rsp_send_str(&c, "OK") == 0);
    feed_log(&c, (const uint8_t *)"-", 1, &log);
    CU_ASSERT(out_is(&c, "$OK#9a$OK#9a"));
    done(&c, &log);
}

/* gdb re-sends a packet whose '+' does not come within remotetimeout; a
 * stub slow to start (ASan, a nested KVM) then sees it twice. Answering
 * both would put the second answer in front of gdb's next command ("Remote
 * replied unexpectedly to 'vMustReplyEmpty'"). */
static void test_retransmission_answered_once(void)
{
    struct rsp_conn c;
    struct rsp_buf log, in;
    rsp_buf_init(&in, 1u << 20);
    frame(&in, "qSupported:swbreak+");
    frame(&in, "qSupported:swbreak+");
    frame(&in, "qSupported:swbreak+");
    run(&c, &log, &in);
    CU_ASSERT(log_is(&log, "packet qSupported:swbreak+\nrepeated\nrepeated\n"));
    CU_ASSERT(out_is(&c, "+++")); /* every copy acked: gdb may wait for it */
    CU_ASSERT_EQUAL(c.stats.packets, 1);
    CU_ASSERT_EQUAL(c.stats.repeated, 2);

    /* Once gdb acked our reply, the same command again is a new one (two
     * 's' in a row, two reads of the same memory). */
    log.len = 0;
    in.len = 0;
    put(&in, "+");
    frame(&in, "qSupported:swbreak+");
    frame(&in, "s");
    put(&in, "+");
    frame(&in, "s");
    feed_log(&c, in.data, in.len, &log);
    CU_ASSERT(log_is(&log, "ack\npacket qSupported:swbreak+\npacket s\nack\npacket s\n"));

    /* A copy that arrives corrupted is asked for again, and the good copy
     * after it is still a retransmission. */
    log.len = 0;
    in.len = 0;
    put(&in, "+");
    frame(&in, "g");
    put(&in, "$g#00");
    frame(&in, "g");
    feed_log(&c, in.data, in.len, &log);
    CU_ASSERT(log_is(&log, "ack\npacket g\nbad-checksum\nrepeated\n"));

    /* A different packet in between is a new command either way, and so
     * is the first one again after it. */
    log.len = 0;
    in.len = 0;
    put(&in, "+");
    frame(&in, "");
    frame(&in, "m0,1");
    frame(&in, "");
    feed_log(&c, in.data, in.len, &log);
    CU_ASSERT(log_is(&log, "ack\npacket \npacket m0,1\npacket \n"));
    done(&c, &log);

    /* Without acks gdb never re-sends, so nothing is a retransmission. */
    in.len = 0;
    frame(&in, "QStartNoAckMode");
    CU_ASSERT_FATAL(rsp_conn_init(&c) == 0);
    rsp_buf_init(&log, 1u << 20);
    feed_log(&c, in.data, in.len, &log);
    rsp_conn_set_no_ack(&c, true);
    in.len = 0;
    frame(&in, "g");
    frame(&in, "g");
    feed_log(&c, in.data, in.len, &log);
    CU_ASSERT(log_is(&log, "packet QStartNoAckMode\npacket g\npacket g\n"));
    CU_ASSERT_EQUAL(c.stats.repeated, 0);
    done(&c, &log);
    rsp_buf_free(&in);
}

static void test_no_ack_mode(void)
{
    struct rsp_conn c;
    struct rsp_buf log;
    run_str(&c, &log, "$QStartNoAckMode#b0");
    CU_ASSERT(out_is(&c, "+"));
    CU_ASSERT(rsp_send_str(&c, "OK") == 0);
    rsp_conn_set_no_ack(&c, true);
    rsp_buf_consume(&c.out, c.out.len);

    feed_log(&c, (const uint8_t *)"-$g#67$g#00$a}#de", 17, &log);
    CU_ASSERT(log_is(&log, "packet QStartNoAckMode\nnak\npacket g\nbad-checksum\nbad-encoding\n"));
    CU_ASSERT(out_is(&c, ""));
    CU_ASSERT_EQUAL(c.stats.naks, 1);
    CU_ASSERT_EQUAL(c.stats.resends, 0);

    /* Replies are not kept for re-sending either. */
    CU_ASSERT(rsp_send_str(&c, "T05") == 0);
    rsp_buf_consume(&c.out, c.out.len);
    feed_log(&c, (const uint8_t *)"-", 1, &log);
    CU_ASSERT(out_is(&c, ""));

    /* Oversize packets are not acked either. */
    struct rsp_buf in;
    rsp_buf_init(&in, 2u * RSP_PACKET_SIZE);
    fill_packet(&in, 'a', RSP_PACKET_SIZE + 1, "");
    feed_log(&c, in.data, in.len, &log);
    CU_ASSERT(out_is(&c, ""));
    CU_ASSERT_EQUAL(c.stats.oversized, 1);
    rsp_buf_free(&in);

    /* Turning acks back on does not resurrect a packet from before. */
    rsp_conn_set_no_ack(&c, false);
    feed_log(&c, (const uint8_t *)"-", 1, &log);
    CU_ASSERT(out_is(&c, ""));
    CU_ASSERT(rsp_send_str(&c, "OK") == 0);
    feed_log(&c, (const uint8_t *)"-", 1, &log);
    CU_ASSERT(out_is(&c, "$OK#9a$OK#9a"));

    /* Reset brings a new connection's ack mode back. */
    rsp_conn_set_no_ack(&c, true);
    rsp_conn_reset(&c);
    CU_ASSERT_FALSE(c.no_ack);
    CU_ASSERT_EQUAL(c.stats.packets, 0);
    log.len = 0;
    feed_log(&c, (const uint8_t *)"$g#67", 5, &log);
    CU_ASSERT(out_is(&c, "+"));
    done(&c, &log);
}

static void test_reset_drops_partial_packet(void)
{
    struct rsp_conn c;
    struct rsp_buf log;
    run_str(&c, &log, "$m10");
    CU_ASSERT(rsp_send_str(&c, "OK") == 0);
    rsp_conn_reset(&c);
    CU_ASSERT(out_is(&c, ""));
    feed_log(&c, (const uint8_t *)"00,4#fd-$g#67", 13, &log);
    /* The tail of the old packet is noise; nothing is left to re-send. */
    CU_ASSERT(log_is(&log, "nak\npacket g\n"));
    CU_ASSERT(out_is(&c, "+"));
    CU_ASSERT_EQUAL(c.stats.noise, 7);
    done(&c, &log);
}

/* ---- encoder ---- */

static void test_reply_basic(void)
{
    struct rsp_conn c;
    CU_ASSERT_FATAL(rsp_conn_init(&c) == 0);
    CU_ASSERT(rsp_send_str(&c, "") == 0);
    CU_ASSERT(rsp_send_str(&c, "OK") == 0);
    CU_ASSERT(rsp_send_error(&c, 14) == 0);
    CU_ASSERT(rsp_send_error(&c, 0x101) == 0);
    CU_ASSERT(out_is(&c, "$#00$OK#9a$E0e#da$E01#a6"));
    rsp_buf_consume(&c.out, c.out.len);

    struct rsp_reply r;
    const uint8_t regs[] = {0xde, 0xad, 0xbe, 0xef};
    rsp_reply_begin(&r, &c);
    rsp_reply_str(&r, "T05thread:");
    rsp_reply_u64(&r, 1);
    rsp_reply_str(&r, ";");
    rsp_reply_hex(&r, regs, sizeof(regs));
    rsp_reply_u64(&r, 0);
    rsp_reply_u64(&r, UINT64_MAX);
    CU_ASSERT(rsp_reply_end(&r) == 0);
    static const char body[] = "T05thread:1;deadbeef0ffffffffffffffff";
    char want[64];
    snprintf(want, sizeof(want), "$%s#%02x", body, sum_of(body, strlen(body)));
    CU_ASSERT(out_is(&c, want));
    CU_ASSERT(c.last.len == c.out.len && memcmp(c.last.data, want, c.last.len) == 0);
    CU_ASSERT_EQUAL(rsp_checksum(body, strlen(body)), sum_of(body, strlen(body)));
    CU_ASSERT_EQUAL(rsp_checksum(NULL, 0), 0);
    rsp_conn_free(&c);
}

static void test_reply_escapes(void)
{
    struct rsp_conn c;
    CU_ASSERT_FATAL(rsp_conn_init(&c) == 0);
    CU_ASSERT(rsp_send_str(&c, "a$b#c}d*e") == 0);
    static const char body[] = "a}\x04"
                               "b}\x03"
                               "c}]d}\ne";
    char want[64];
    snprintf(want, sizeof(want), "$%s#%02x", body, sum_of(body, strlen(body)));
    CU_ASSERT(out_is(&c, want));
    rsp_conn_free(&c);
}

/* Every byte value, alone and in one packet, comes back unchanged through
 * the decoder, and no framing byte is ever sent unescaped. */
static void test_reply_round_trip_all_bytes(void)
{
    struct rsp_conn tx, rx;
    CU_ASSERT_FATAL(rsp_conn_init(&tx) == 0);
    CU_ASSERT_FATAL(rsp_conn_init(&rx) == 0);
    uint8_t all[512];
    for (size_t i = 0; i < sizeof(all); i++)
        all[i] = (uint8_t)(i < 256 ? i : 511 - i);

    for (int b = 0; b <= 256; b++) {
        struct rsp_reply r;
        const uint8_t *p = b < 256 ? &all[b] : all;
        size_t n = b < 256 ? 1 : sizeof(all);
        tx.out.len = 0;
        rsp_reply_begin(&r, &tx);
        rsp_reply_put(&r, p, n);
        CU_ASSERT_FATAL(rsp_reply_end(&r) == 0);

        for (size_t i = 1; i + 3 < tx.out.len; i++) {
            uint8_t ch = tx.out.data[i];
            CHECKF(ch != '$' && ch != '#' && ch != '*' && (ch != '}' || i + 4 < tx.out.len),
                   "byte %d: framing byte 0x%02x sent raw at %zu", b, ch, i);
            if (ch == '}')
                i++;
        }
        struct rsp_event ev;
        size_t used = rsp_conn_feed(&rx, tx.out.data, tx.out.len, &ev);
        CHECKF(used == tx.out.len && ev.type == RSP_EVENT_PACKET && ev.len == n &&
                   memcmp(ev.payload, p, n) == 0,
               "byte %d does not round-trip", b);
    }
    CU_ASSERT_EQUAL(rx.stats.packets, 257);
    CU_ASSERT_EQUAL(rx.stats.bad_checksums, 0);
    rsp_conn_free(&tx);
    rsp_conn_free(&rx);
}

/* Found by fuzz_rsp: escapes can double a payload, so a reply built from
 * RSP_PACKET_SIZE bytes of data is too long for a peer with the same limit.
 * The encoder does not refuse it (the limit is the peer's); the stub must
 * size its replies by the escaped length. */
static void test_reply_escapes_can_exceed_limit(void)
{
    struct rsp_conn tx, rx;
    CU_ASSERT_FATAL(rsp_conn_init(&tx) == 0);
    CU_ASSERT_FATAL(rsp_conn_init(&rx) == 0);
    uint8_t *data = malloc(RSP_PACKET_SIZE);
    CU_ASSERT_FATAL(data != NULL);
    memset(data, '#', RSP_PACKET_SIZE);

    struct rsp_event ev;
    struct rsp_reply r;
    rsp_reply_begin(&r, &tx);
    rsp_reply_put(&r, data, RSP_PACKET_SIZE / 2);
    CU_ASSERT_EQUAL_FATAL(rsp_reply_end(&r), 0);
    CU_ASSERT_EQUAL(tx.out.len, RSP_PACKET_SIZE + 4);
    CU_ASSERT_EQUAL(rsp_conn_feed(&rx, tx.out.data, tx.out.len, &ev), tx.out.len);
    CU_ASSERT_EQUAL(ev.type, RSP_EVENT_PACKET);
    CU_ASSERT_EQUAL(ev.len, RSP_PACKET_SIZE / 2);

    tx.out.len = 0;
    rsp_reply_begin(&r, &tx);
    rsp_reply_put(&r, data, RSP_PACKET_SIZE / 2 + 1);
    CU_ASSERT_EQUAL_FATAL(rsp_reply_end(&r), 0);
    CU_ASSERT_EQUAL(rsp_conn_feed(&rx, tx.out.data, tx.out.len, &ev), tx.out.len);
    CU_ASSERT_EQUAL(ev.type, RSP_EVENT_OVERSIZE);
    free(data);
    rsp_conn_free(&tx);
    rsp_conn_free(&rx);
}

static void test_reply_abort(void)
{
    struct rsp_conn c;
    struct rsp_reply r;
    CU_ASSERT_FATAL(rsp_conn_init(&c) == 0);
    CU_ASSERT(rsp_send_str(&c, "OK") == 0);
    rsp_reply_begin(&r, &c);
    rsp_reply_str(&r, "m0000");
    rsp_reply_abort(&r);
    CU_ASSERT(out_is(&c, "$OK#9a"));
    rsp_buf_consume(&c.out, c.out.len);
    struct rsp_event ev;
    rsp_conn_feed(&c, (const uint8_t *)"-", 1, &ev);
    CU_ASSERT(out_is(&c, "$OK#9a")); /* the aborted one was never "sent" */
    rsp_conn_free(&c);
}

static void test_reply_out_ceiling(void)
{
    struct rsp_conn c;
    CU_ASSERT_FATAL(rsp_conn_init(&c) == 0);
    CU_ASSERT(rsp_send_str(&c, "OK") == 0);

    /* Fill out to 6 bytes short of its real ceiling. */
    static uint8_t junk[RSP_OUT_MAX];
    memset(junk, 'j', sizeof(junk));
    c.out.len = 0;
    CU_ASSERT_FATAL(rsp_buf_append(&c.out, junk, RSP_OUT_MAX - 6) == 0);

    /* "$E01#a6" needs 7 bytes: refused, out untouched. */
    CU_ASSERT_EQUAL(rsp_send_error(&c, 1), -EMSGSIZE);
    CU_ASSERT_EQUAL(c.out.len, RSP_OUT_MAX - 6);
    CU_ASSERT_EQUAL(c.out.data[c.out.len - 1], 'j');

    /* The failure was sticky through every put. */
    struct rsp_reply r;
    rsp_reply_begin(&r, &c);
    rsp_reply_str(&r, "OK");
    rsp_reply_hex(&r, "abc", 3);
    rsp_reply_u64(&r, 5);
    rsp_reply_str(&r, "");
    CU_ASSERT_EQUAL(rsp_reply_end(&r), -EMSGSIZE);
    CU_ASSERT_EQUAL(c.out.len, RSP_OUT_MAX - 6);

    /* "$OK#9a" is exactly 6 bytes: accepted, up to the ceiling. */
    CU_ASSERT_EQUAL(rsp_send_str(&c, "OK"), 0);
    CU_ASSERT_EQUAL(c.out.len, RSP_OUT_MAX);
    CU_ASSERT_EQUAL(memcmp(c.out.data + RSP_OUT_MAX - 6, "$OK#9a", 6), 0);

    /* A failed '$' at begin too. */
    CU_ASSERT_EQUAL(rsp_send_str(&c, ""), -EMSGSIZE);
    CU_ASSERT_EQUAL(c.out.len, RSP_OUT_MAX);

    /* Acks to a full out are dropped rather than overflowing it. */
    struct rsp_event ev;
    CU_ASSERT_EQUAL(rsp_conn_feed(&c, (const uint8_t *)"$g#67", 5, &ev), 5);
    CU_ASSERT_EQUAL(ev.type, RSP_EVENT_PACKET);
    CU_ASSERT_EQUAL(c.out.len, RSP_OUT_MAX);
    CU_ASSERT_EQUAL(rsp_conn_feed(&c, (const uint8_t *)"-", 1, &ev), 1);
    CU_ASSERT_EQUAL(ev.type, RSP_EVENT_NAK);
    CU_ASSERT_EQUAL(c.out.len, RSP_OUT_MAX);
    CU_ASSERT_EQUAL(c.stats.resends, 0);
    rsp_conn_free(&c);
}

static void test_reply_ceiling_mid_packet(void)
{
    struct rsp_conn c;
    CU_ASSERT_FATAL(rsp_conn_init(&c) == 0);
    CU_ASSERT(rsp_send_str(&c, "OK") == 0);
    c.out.max = 20;
    /* Fails in the middle of the escapes; the packet before it stays whole
     * and remains the one a '-' re-sends. */
    CU_ASSERT_EQUAL(rsp_send_str(&c, "$$$$$$$$$"), -EMSGSIZE);
    CU_ASSERT(out_is(&c, "$OK#9a"));
    /* Fails at the '#xx'. */
    CU_ASSERT_EQUAL(rsp_send_str(&c, "0123456789ab"), -EMSGSIZE);
    CU_ASSERT(out_is(&c, "$OK#9a"));
    rsp_buf_consume(&c.out, c.out.len);
    struct rsp_event ev;
    rsp_conn_feed(&c, (const uint8_t *)"-", 1, &ev);
    CU_ASSERT(out_is(&c, "$OK#9a"));
    rsp_conn_free(&c);
}

/* ---- console output ---- */

static void test_console_split(void)
{
    struct rsp_conn c;
    CU_ASSERT_FATAL(rsp_conn_init(&c) == 0);
    /* max 9: 'O' + 4 bytes of text as 8 hex digits. */
    CU_ASSERT_EQUAL(rsp_send_console(&c, "hello world", 11, 9), 0);
    CU_ASSERT(out_is(&c, "$O68656c6c#5a$O6f20776f#57$O726c64#bb"));

    /* An even limit leaves one byte of it unused rather than splitting a
     * byte's two digits. */
    c.out.len = 0;
    CU_ASSERT_EQUAL(rsp_send_console(&c, "hello world", 11, 10), 0);
    CU_ASSERT(out_is(&c, "$O68656c6c#5a$O6f20776f#57$O726c64#bb"));

    /* 0 means RSP_PACKET_SIZE: one packet. */
    c.out.len = 0;
    CU_ASSERT_EQUAL(rsp_send_console(&c, "hi\n", 3, 0), 0);
    CU_ASSERT(out_is(&c, "$O68690a#bd"));
    CU_ASSERT(c.last.len == c.out.len && memcmp(c.last.data, c.out.data, c.out.len) == 0);

    /* The smallest usable limit: one byte per packet. */
    c.out.len = 0;
    CU_ASSERT_EQUAL(rsp_send_console(&c, "ab", 2, 3), 0);
    CU_ASSERT(out_is(&c, "$O61#b6$O62#b7"));

    c.out.len = 0;
    CU_ASSERT_EQUAL(rsp_send_console(&c, "ab", 2, 2), -EINVAL);
    CU_ASSERT_EQUAL(rsp_send_console(&c, "ab", 2, 1), -EINVAL);
    CU_ASSERT_EQUAL(rsp_send_console(&c, "", 0, 9), 0);
    CU_ASSERT(out_is(&c, ""));
    rsp_conn_free(&c);
}

static void test_console_long_text(void)
{
    struct rsp_conn c, rx;
    CU_ASSERT_FATAL(rsp_conn_init(&c) == 0);
    CU_ASSERT_FATAL(rsp_conn_init(&rx) == 0);
    size_t n = 3 * RSP_PACKET_SIZE / 2 + 7;
    uint8_t *text = malloc(n);
    CU_ASSERT_FATAL(text != NULL);
    for (size_t i = 0; i < n; i++)
        text[i] = (uint8_t)(i * 7);
    CU_ASSERT_EQUAL_FATAL(rsp_send_console(&c, text, n, 0), 0);

    /* Every packet decodes, fits the limit and the text comes back whole. */
    size_t got = 0, packets = 0;
    const uint8_t *p = c.out.data;
    size_t left = c.out.len;
    while (left) {
        struct rsp_event ev;
        size_t used = rsp_conn_feed(&rx, p, left, &ev);
        p += used;
        left -= used;
        if (ev.type == RSP_EVENT_NONE)
            break;
        CU_ASSERT_EQUAL_FATAL(ev.type, RSP_EVENT_PACKET);
        CU_ASSERT(ev.len <= RSP_PACKET_SIZE);
        CU_ASSERT_EQUAL(ev.payload[0], 'O');
        for (size_t i = 1; i + 1 < ev.len; i += 2, got++) {
            unsigned v;
            char hx[3] = {(char)ev.payload[i], (char)ev.payload[i + 1], 0};
            sscanf(hx, "%2x", &v);
            if (got < n && v != text[got]) {
                CU_FAIL("console text differs");
                break;
            }
        }
        packets++;
    }
    CU_ASSERT_EQUAL(got, n);
    CU_ASSERT_EQUAL(packets, 4);
    free(text);
    rsp_conn_free(&c);
    rsp_conn_free(&rx);
}

static void test_console_ceiling(void)
{
    struct rsp_conn c;
    CU_ASSERT_FATAL(rsp_conn_init(&c) == 0);
    CU_ASSERT(rsp_send_str(&c, "OK") == 0);
    /* Room for two of the three packets: nothing is queued at all. */
    c.out.max = c.out.len + 2 * 13 + 5;
    CU_ASSERT_EQUAL(rsp_send_console(&c, "hello world", 11, 9), -EMSGSIZE);
    CU_ASSERT(out_is(&c, "$OK#9a"));
    c.out.max = c.out.len + 13 + 13 + 11;
    CU_ASSERT_EQUAL(rsp_send_console(&c, "hello world", 11, 9), 0);
    CU_ASSERT_EQUAL(c.out.len, c.out.max);
    /* A length that could not fit in any out at all. */
    CU_ASSERT_EQUAL(rsp_send_console(&c, "x", SIZE_MAX, 9), -EMSGSIZE);
    rsp_conn_free(&c);
}

static void register_suites(void)
{
    static const struct rsp_test decoder[] = {
        {"single packet", test_single_packet},
        {"feed contract", test_feed_contract},
        {"mixed stream in one chunk", test_mixed_stream_one_chunk},
        {"mixed stream split at every offset", test_mixed_stream_every_split},
        {"mixed stream byte by byte", test_mixed_stream_byte_by_byte},
        {"mixed stream in random chunks", test_mixed_stream_random_chunks},
        {"escapes", test_escapes},
        {"checksum covers raw bytes", test_checksum_covers_raw_bytes},
        {"RLE counts", test_rle_counts},
        {"bad encodings", test_bad_encodings},
        {"bad encoding with bad checksum", test_bad_encoding_with_bad_checksum},
        {"RLE count '#' and '$'", test_rle_count_dollar_and_hash},
        {"checksum failures", test_checksum_failures},
        {"'$' restarts a packet", test_restart_on_dollar},
        {"noise", test_noise},
        {"binary payload", test_binary_payload},
        {"interrupt only between packets", test_interrupt_only_between_packets},
        {"empty packet", test_empty_packet},
        {"oversize at the limit", test_oversize_limit},
        {"oversize by RLE", test_oversize_by_rle},
    };
    static const struct rsp_test acks[] = {
        {"resend on NAK", test_resend_on_nak},
        {"a retransmission is acked and answered once", test_retransmission_answered_once},
        {"no-ack mode", test_no_ack_mode},
        {"reset drops a partial packet", test_reset_drops_partial_packet},
    };
    static const struct rsp_test encoder[] = {
        {"basic replies", test_reply_basic},
        {"escapes", test_reply_escapes},
        {"all bytes round-trip", test_reply_round_trip_all_bytes},
        {"escapes can exceed the limit", test_reply_escapes_can_exceed_limit},
        {"abort", test_reply_abort},
        {"out ceiling", test_reply_out_ceiling},
        {"ceiling mid-packet", test_reply_ceiling_mid_packet},
        {"console split", test_console_split},
        {"console long text", test_console_long_text},
        {"console ceiling", test_console_ceiling},
    };
    rsp_test_add_suite("rsp decoder", decoder, sizeof(decoder) / sizeof(decoder[0]), NULL);
    rsp_test_add_suite("rsp acks", acks, sizeof(acks) / sizeof(acks[0]), NULL);
    rsp_test_add_suite("rsp encoder", encoder, sizeof(encoder) / sizeof(encoder[0]), NULL);
}

int main(void)
{
    return test_main("test_rsp_packet", register_suites, false);
}
