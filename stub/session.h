/* stub/session.h: one gdb connection: RSP framing (rsp/), the packets and
 * what they do to the machine, stop replies and console packets.
 *
 * The session never touches a socket. Bytes come in through
 * stub_session_input(); replies accumulate in conn.out, and the session
 * calls link->flush() when there is something to send and link->close()
 * when the connection should end (after detach or kill). Loop thread only.
 *
 * Packets are handled only while the guest is stopped, as in gdb's all-stop
 * mode. While it runs, the interrupt byte acts at once and packets wait
 * (bounded) until the stop: that is what a gdb attaching to a running
 * guest sends before kvmstub has stopped it. */
#ifndef STUB_SESSION_H
#define STUB_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine.h"
#include "rsp/packet.h"

#define STUB_SESSION_QUEUE_MAX (1u << 20) /* packets waiting for a stop, in bytes */

struct stub_link {
    void (*flush)(void *ctx);
    void (*close)(void *ctx);
    void *ctx;
};

struct stub_session {
    struct stub_machine *m;
    struct stub_link link;
    struct rsp_conn conn;
    uint32_t features;   /* what gdb announced in qSupported */
    enum vm_arch arch;   /* register layout gdb was given */
    bool real_mode;      /* described as i8086 */
    bool arch_known;
    bool waiting_stop;   /* gdb waits for a stop reply */
    bool closing;
    /* Packets received while the guest ran, each stored as a 4-byte length
     * then the payload. */
    uint8_t *queue;
    size_t queue_len;
    uint64_t dropped;
};

int stub_session_init(struct stub_session *s, struct stub_machine *m, const struct stub_link *link);
void stub_session_free(struct stub_session *s);

/* Bytes from gdb. */
void stub_session_input(struct stub_session *s, const uint8_t *data, size_t n);
/* The guest stopped (or ended); waiting packets run now. */
void stub_session_stopped(struct stub_session *s, const struct stub_stop *stop);
/* Guest output while it runs: 'O' packets, when gdb may receive them. */
void stub_session_output(struct stub_session *s, const uint8_t *data, size_t n);

/* The stop reply for stop, as sent after a resume and for '?'. */
int stub_session_send_stop(struct stub_session *s, const struct stub_stop *stop);

#endif
