/* stub/session.h: one gdb connection: RSP framing (rsp/), each packet
 * turned into calls on a target (stub/target.h), stop replies and console
 * packets. It knows nothing of KVM, and never touches a socket: bytes come
 * in through stub_session_input(), replies leave through link->write(), and
 * link->close() asks for the connection to end (after detach or kill).
 * Loop thread only.
 *
 * Packets are handled only while the target is stopped, as in gdb's
 * all-stop mode. While it runs, the interrupt byte acts at once and packets
 * wait (bounded) until the stop: that is what a gdb attaching to a running
 * guest sends before kvmstub has stopped it. */
#ifndef STUB_SESSION_H
#define STUB_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "regmap.h"
#include "rsp/packet.h"
#include "target.h"

#define STUB_SESSION_QUEUE_MAX (1u << 20) /* packets waiting for a stop, in bytes */

struct stub_link {
    /* Bytes for gdb; the session forgets them once this returns. */
    void (*write)(void *ctx, const uint8_t *data, size_t n);
    void (*close)(void *ctx);
    void *ctx;
};

struct stub_session {
    struct stub_target target;
    struct stub_link link;
    struct rsp_conn conn;
    uint32_t features;   /* what gdb announced in qSupported */
    enum stub_arch arch; /* register layout gdb was given */
    unsigned regsets;    /* ... with these STUB_REGSET_* */
    bool real_mode;      /* described as i8086 */
    bool arch_known;
    unsigned g_tid;      /* Hg: whose registers and memory gdb sees */
    unsigned c_tid;      /* Hc: who steps with the legacy 's'; 0 for any */
    bool waiting_stop;   /* gdb waits for a stop reply */
    bool midline;        /* the guest's console output so far ends mid-line */
    bool x_raw;          /* LLDB's 'x' reply: bare data, no 'b' (see read_mem) */
    bool list_threads;   /* LLDB's QListThreadsInStopReply: threads in stop replies */
    bool closing;
    bool killed;
    bool extended;       /* '!': kill ends the guest, not kvmstub; run starts it again */
    bool phys;           /* Qqemu.PhyMemMode: addresses are guest-physical */
    bool keep_stopped;   /* the detach asked the guest to stay stopped */
    bool attach_pending; /* connected, attach waits for gdb's first byte */
    bool attached;
    enum stub_gdb_arch gdb_arch;
    /* Packets received while the target ran, each stored as a 4-byte
     * length then the payload. */
    uint8_t *queue;
    size_t queue_len;
    uint64_t dropped;
};

int stub_session_init(struct stub_session *s, const struct stub_target *target,
                      const struct stub_link *link);
void stub_session_free(struct stub_session *s);

/* The register layout to give gdb (STUB_GDB_ARCH_AUTO by default). */
void stub_session_set_arch(struct stub_session *s, enum stub_gdb_arch arch);

/* Attaches to the target (stopping it if it runs) once gdb sends its first
 * byte, and detaches. */
void stub_session_attach(struct stub_session *s);
void stub_session_detach(struct stub_session *s);

/* Bytes from gdb. */
void stub_session_input(struct stub_session *s, const uint8_t *data, size_t n);

#endif
