/* stub/packets.h: the packets a session answers, one table per role.
 *
 * Each stub/packets_*.c file holds the handlers of one role and a table of
 * entries, each a packet kind (its name and the schema of its fields, read
 * by rsp/command.h) and its handler; stub/session.c finds a packet's entry
 * across the tables and calls the handler with the fields read. Adding a
 * packet is one entry and its handler, in the file of its role.
 *
 * stub/packets.c holds what the handlers share: replies, the register
 * layout gdb was given, the threads gdb may see, stop replies. Handlers
 * talk to the target only; they run on the loop thread while the target is
 * stopped (see session.h). */
#ifndef STUB_PACKETS_H
#define STUB_PACKETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rsp/command.h"
#include "session.h"

struct stub_packet {
    struct rsp_command def;
    void (*handle)(struct stub_session *s, const struct rsp_args *a);
};

struct stub_packet_table {
    const struct stub_packet *entries;
    size_t count;
};

/* The tables, by role. */
extern const struct stub_packet_table stub_packets_state;   /* registers, memory, breakpoints */
extern const struct stub_packet_table stub_packets_run;     /* execution and the process */
extern const struct stub_packet_table stub_packets_threads; /* thread ids, lists and names */
extern const struct stub_packet_table stub_packets_query;   /* features, descriptions, monitor */

/* Calls op of the session's target. */
#define STUB_CALL(s, op, ...) ((s)->target.ops->op((s)->target.ctx, __VA_ARGS__))
#define STUB_CALL0(s, op) ((s)->target.ops->op((s)->target.ctx))

/* Largest memory or object transfer per packet: its hex (or worst-case
 * escaped binary) must fit a reply of RSP_PACKET_SIZE. */
#define STUB_PACKETS_MEM_MAX (RSP_PACKET_SIZE / 2)
/* kvmstub's one process, for multiprocess thread ids. */
#define STUB_PACKETS_PID 1

void stub_packets_reply(struct stub_session *s, const char *text);
/* An "Exx" reply; err may be negative. */
void stub_packets_error(struct stub_session *s, int err);

/* The stop reply for st ("T..." with the expedited registers, or "W.."). */
void stub_packets_stop_reply(struct stub_session *s, const struct stub_stop *st);

/* The register layout this gdb uses, fixed the first time it matters (and
 * again after s->arch_known is cleared). */
enum stub_arch stub_packets_arch(struct stub_session *s);

/* Threads gdb may see: none once the guest has ended. */
unsigned stub_packets_live_threads(struct stub_session *s);
bool stub_packets_thread_exists(struct stub_session *s, unsigned tid);

/* A qXfer read of doc[0..len) at offset, at most length bytes: "m" or "l"
 * and the slice, or an error for an offset past the end. */
void stub_packets_xfer(struct stub_session *s, const char *doc, size_t len, uint64_t offset,
                       uint64_t length);

#endif
