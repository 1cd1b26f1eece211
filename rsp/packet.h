/* rsp/packet.h: GDB Remote Serial Protocol framing for one connection.
 *
 * Bytes in, events and bytes out; no I/O. rsp_conn_feed() takes input in
 * chunks of any size and stops at each event. Acks ('+'/'-') and re-sends
 * of the last packet on '-' are appended to conn->out by the codec itself;
 * the owner only writes conn->out to its transport and acts on PACKET,
 * INTERRUPT and OVERSIZE events.
 *
 * Framing: '$' payload '#' two hex digits. The checksum covers the raw bytes
 * between '$' and '#'. The payload handed out has '}' escapes and '*'
 * run-length encoding undone and is NUL-terminated (binary payloads may hold
 * NULs too; use len). Bytes outside packets other than '+', '-' and 0x03 are
 * noise and are counted and skipped; a '$' inside a packet (its two checksum
 * digits included) restarts it, so a truncated packet cannot swallow the
 * next one. Acks and re-sends are best effort: when out is at its ceiling
 * they are dropped, and the peer's timeout recovers.
 *
 * Retransmissions: in ack mode a peer that gets no '+' within its timeout
 * (gdb's remotetimeout, 2 s by default) sends the same packet again. A good
 * packet equal to the previous one, with no '+' from the peer in between,
 * is such a copy: a conforming peer sends its next command only after it
 * has read, and acked, the reply to the previous one. It is acked and
 * reported as REPEATED so that the owner does not answer it twice (a second
 * answer would be read as the reply to the peer's next command). */
#ifndef RSP_PACKET_H
#define RSP_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Largest payload accepted, raw bytes between '$' and '#'; advertised to gdb
 * as PacketSize. Decoded payloads are bounded by the same number. Only the
 * fuzzer overrides it, in its own copy of the codec, so that short inputs
 * reach the oversize paths. */
#ifndef RSP_PACKET_SIZE
#define RSP_PACKET_SIZE 0x20000u
#endif
/* Ceiling of the outgoing buffer: replies plus console output queued behind
 * a slow client. The owner stops producing when it nears this. */
#define RSP_OUT_MAX (4u * 1024u * 1024u)

enum rsp_event_type {
    RSP_EVENT_NONE,         /* the chunk ended; feed more */
    RSP_EVENT_PACKET,       /* a packet with a valid checksum: payload, len */
    RSP_EVENT_INTERRUPT,    /* 0x03 between packets */
    RSP_EVENT_ACK,          /* '+' from the peer */
    RSP_EVENT_NAK,          /* '-' from the peer; the last packet was re-queued */
    RSP_EVENT_BAD_CHECKSUM, /* packet dropped, '-' queued (in ack mode) */
    RSP_EVENT_OVERSIZE,     /* packet longer than RSP_PACKET_SIZE, dropped after
                               its '#xx' and acked: answer it with an error */
    RSP_EVENT_BAD_ENCODING, /* bad RLE or escape at the end; dropped, acked:
                               answer it with an error */
    RSP_EVENT_REPEATED,     /* a retransmission of the packet before (see
                               above); acked, not to be answered */
};

struct rsp_event {
    enum rsp_event_type type;
    uint8_t *payload; /* PACKET only (else NULL): valid until the next feed;
                         NUL-terminated */
    size_t len;
};

struct rsp_stats {
    uint64_t packets;       /* good packets received */
    uint64_t bad_checksums; /* packets dropped for their checksum */
    uint64_t oversized;     /* packets dropped for their size */
    uint64_t bad_encoding;  /* packets dropped for bad RLE/escapes */
    uint64_t noise;         /* bytes skipped between packets */
    uint64_t interrupts;    /* 0x03 bytes */
    uint64_t naks;          /* '-' received */
    uint64_t resends;       /* packets sent again because of '-' */
    uint64_t repeated;      /* retransmissions recognised and not answered */
};

struct rsp_conn {
    /* decoder state */
    int state;
    uint8_t sum;      /* running checksum of raw bytes */
    uint8_t sum_hi;   /* first checksum digit */
    bool escape;      /* previous raw byte was '}' */
    bool have_prev;   /* a decoded byte exists for '*' to repeat */
    bool too_long;    /* raw length passed RSP_PACKET_SIZE */
    bool bad_rle;
    size_t raw_len;
    size_t len;
    uint8_t *payload; /* RSP_PACKET_SIZE + 1 bytes */
    /* encoder state */
    bool no_ack;
    struct rsp_buf out;  /* bytes the owner must write to the peer */
    struct rsp_buf last; /* last packet sent, kept for '-' while acks are on */
    /* retransmission check, ack mode only */
    struct rsp_buf prev; /* payload of the last good packet */
    bool unacked;        /* prev is valid and no '+' came since it */
    struct rsp_stats stats;
};

int rsp_conn_init(struct rsp_conn *c);
void rsp_conn_free(struct rsp_conn *c);
/* Back to the state of a new connection (ack mode, nothing buffered). */
void rsp_conn_reset(struct rsp_conn *c);

/* Consumes input up to and including the next event and returns the number
 * of bytes consumed (0 only when n is 0). Call again with the rest. */
size_t rsp_conn_feed(struct rsp_conn *c, const uint8_t *in, size_t n, struct rsp_event *ev);

/* After replying OK to QStartNoAckMode: no more acks either way. */
void rsp_conn_set_no_ack(struct rsp_conn *c, bool no_ack);

/* Building one outgoing packet into c->out. Every byte put is escaped if it
 * is '$', '#', '}' or '*', so binary data and text go through the same path.
 * Errors (the out ceiling) are sticky and reported by rsp_reply_end(). Do not
 * consume c->out between rsp_reply_begin() and the end or abort: the reply
 * is located by its offset. */
struct rsp_reply {
    struct rsp_conn *conn;
    size_t start; /* offset of '$' in conn->out */
    uint8_t sum;
    int err;
};

void rsp_reply_begin(struct rsp_reply *r, struct rsp_conn *c);
void rsp_reply_put(struct rsp_reply *r, const void *p, size_t n);
void rsp_reply_str(struct rsp_reply *r, const char *s);
void rsp_reply_hex(struct rsp_reply *r, const void *p, size_t n); /* lower-case hex */
void rsp_reply_u64(struct rsp_reply *r, uint64_t v);              /* minimal hex */
/* Finishes with '#xx' and remembers the packet for re-sending. On error the
 * partial packet is removed from c->out and the error returned. */
int rsp_reply_end(struct rsp_reply *r);
/* Undo an unfinished packet (the owner found an error mid-way). */
void rsp_reply_abort(struct rsp_reply *r);

/* Whole packets in one call. */
int rsp_send_str(struct rsp_conn *c, const char *s);  /* e.g. "OK", "" */
int rsp_send_error(struct rsp_conn *c, int errnum);   /* "Exx", xx = errnum & 0xff */
/* 'O' console packets, split so none exceeds max_payload bytes of payload,
 * the 'O' included (0 means RSP_PACKET_SIZE; less than 3 is -EINVAL). All or
 * nothing: on error no packet was queued. Only the last one is kept for a
 * re-send. */
int rsp_send_console(struct rsp_conn *c, const void *text, size_t n, size_t max_payload);

/* Checksum of n raw bytes, as sent after '#'. */
uint8_t rsp_checksum(const void *p, size_t n);

#endif
