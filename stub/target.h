/* stub/target.h: what a debugging session needs from the machine it
 * debugs, and nothing more (in the spirit of gdbserver's target.h).
 *
 * A target has threads, numbered from 1 (for kvmstub's machine, thread N is
 * vCPU N-1). Registers are addressed by the machine's register id; how gdb
 * numbers them is the session's business (stub/regmap.h). Memory addresses
 * are linear, seen through the given thread's page tables. Breakpoints and
 * watchpoints belong to the whole target. Execution is all-stop: resume()
 * takes an action per thread, and when any thread stops, every thread is
 * stopped before the listener hears of it.
 *
 * Threads: every operation runs on the loop thread, and the listener is
 * called there too. Operations other than resume, interrupt, running and
 * last_stop are only valid while the target is stopped (-EBUSY otherwise).
 * Errors are negative errnos; the session turns them into replies. */
#ifndef STUB_TARGET_H
#define STUB_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "text.h"
#include "vm/regs.h"

#define STUB_MAX_THREADS 64u

/* Register sets a target may have beyond the x87/SSE and system ones. */
enum {
    STUB_REGSET_AVX = 1u << 0,    /* ymm upper halves */
    STUB_REGSET_AVX512 = 1u << 1, /* xmm16-31, ymm16-31 upper halves, k0-7, zmm upper halves */
};

/* Signal numbers as the protocol carries them (gdb's own numbering, which
 * is Linux's for these except SIGBUS: 7 is gdb's SIGEMT). */
#define STUB_SIGINT 2
#define STUB_SIGILL 4
#define STUB_SIGTRAP 5
#define STUB_SIGBUS 10
#define STUB_SIGSEGV 11

enum stub_stop_reason {
    STUB_REASON_NONE,
    STUB_REASON_SWBREAK,
    STUB_REASON_HWBREAK,
    STUB_REASON_WATCH,
    STUB_REASON_RWATCH,
    STUB_REASON_AWATCH,
    STUB_REASON_HISTORY_BEGIN, /* executing backwards reached the start of history */
};

/* What made a thread stop, for a layer that replays the target's
 * execution (stub/record.h); gdb hears only signal and reason. */
enum stub_stop_cause {
    STUB_CAUSE_OTHER,       /* a fault, an exit, the machine's own */
    STUB_CAUSE_STEP,        /* one instruction done */
    STUB_CAUSE_BREAKPOINT,
    STUB_CAUSE_WATCH,
    STUB_CAUSE_HALT,        /* hlt, reported */
    STUB_CAUSE_IO,          /* a port I/O catch */
    STUB_CAUSE_INTERRUPTED, /* asked to stop (interrupt, or the target's own) */
    STUB_CAUSE_FAILED,      /* the thread could not run at all */
};

struct stub_stop {
    unsigned tid;      /* the thread that stopped */
    bool exited;       /* the target ended: status */
    uint32_t status;
    int signal;        /* otherwise: the signal gdb is told */
    enum stub_stop_reason reason;
    uint64_t addr;     /* data address for watchpoints */
    char why[160];     /* for the gdb console and the log; may be empty */
    /* A reverse command was refused (why says why) and the target is where
     * it was: gdb gets an error instead of a stop. */
    bool refused;
    enum stub_stop_cause cause;
};

enum stub_action {
    STUB_ACTION_NONE,     /* stays stopped */
    STUB_ACTION_CONTINUE,
    STUB_ACTION_STEP,     /* one instruction */
    STUB_ACTION_RANGE,    /* step while start <= pc < end */
};

struct stub_thread_action {
    enum stub_action action;
    uint64_t start, end;
};

/* Index i is thread i + 1; threads past count stay stopped. */
struct stub_resume {
    unsigned count;
    struct stub_thread_action threads[STUB_MAX_THREADS];
    /* The run repeats execution the target made before (a layer above
     * replays it): its output is not shown again, a stop kept from an
     * earlier run is not reported, and its stop goes to the listener as it
     * is, without the target's policies, log or count. */
    bool replay;
};

enum stub_bp_kind {
    STUB_BP_SOFTWARE,
    STUB_BP_HARDWARE,
    STUB_WATCH_WRITE,
    STUB_WATCH_READ,
    STUB_WATCH_ACCESS,
};

struct stub_thread_info {
    enum vm_mode mode;
    bool halted; /* executed hlt and nothing woke it */
    /* What it waits for: nothing, an interrupt (halted), or, for an
     * application processor not yet started, INIT or a startup IPI. */
    enum { STUB_WAIT_NONE, STUB_WAIT_INTERRUPT, STUB_WAIT_INIT, STUB_WAIT_SIPI } wait;
};

struct stub_target_listener {
    /* Guest console output while the target runs. */
    void (*output)(void *ctx, const uint8_t *data, size_t n);
    /* The target stopped (all threads) or ended. */
    void (*stopped)(void *ctx, const struct stub_stop *stop);
    void *ctx;
};

struct stub_target_ops {
    unsigned (*threads)(void *ctx);
    /* STUB_REGSET_* the registers have; the same for every thread. */
    unsigned (*regsets)(void *ctx);
    int (*thread_info)(void *ctx, unsigned tid, struct stub_thread_info *out);

    int (*reg_read)(void *ctx, unsigned tid, enum vm_reg_id id, uint8_t *out, size_t size);
    int (*reg_write)(void *ctx, unsigned tid, enum vm_reg_id id, const uint8_t *in, size_t size);
    /* Linear addresses through tid's page tables, or guest-physical ones
     * when phys; *done receives the bytes read before a fault. */
    int (*mem_read)(void *ctx, unsigned tid, bool phys, uint64_t addr, void *buf, size_t len,
                    size_t *done);
    int (*mem_write)(void *ctx, unsigned tid, bool phys, uint64_t addr, const void *buf,
                     size_t len);

    /* len is the watched length (1 for breakpoints); -ENOSPC when out of
     * resources, -ENOTSUP when this kind cannot be had here, -ENOENT when
     * removing what is not there. */
    int (*bp_insert)(void *ctx, unsigned tid, enum stub_bp_kind kind, uint64_t addr, uint64_t len);
    int (*bp_remove)(void *ctx, unsigned tid, enum stub_bp_kind kind, uint64_t addr, uint64_t len);

    /* -ESRCH once the target has ended. */
    int (*resume)(void *ctx, const struct stub_resume *r);
    /* Executes backwards (NULL: the target cannot): action STEP (one
     * instruction of thread tid) or CONTINUE (to the last breakpoint or
     * watchpoint hit before here, or the start of history). The stop comes
     * through the listener as for resume; a target that cannot go back
     * here and now reports a refused stop saying why. */
    int (*reverse)(void *ctx, unsigned tid, enum stub_action action);
    /* Stops a running target (SIGINT for gdb); no-op when stopped. */
    void (*interrupt)(void *ctx);
    bool (*running)(void *ctx);
    /* The stop gdb asks for with '?': valid while stopped. */
    const struct stub_stop *(*last_stop)(void *ctx);

    /* A debugger connects: a running target stops for it; events go to
     * listener from now on. */
    void (*attach)(void *ctx, const struct stub_target_listener *listener);
    /* It goes away: its breakpoints and watchpoints go with it, and the
     * target runs on (as QEMU's and gdbserver's do), unless keep_stopped or
     * the target's own policy (kvmstub's --on-detach stop) says otherwise. */
    void (*detach)(void *ctx, bool keep_stopped);
    /* Output waits in the target while paused (a slow client). */
    void (*pause_output)(void *ctx, bool paused);

    /* A monitor command: text for the user in *out, 0 or a negative errno
     * for an unknown or failed command. */
    int (*monitor)(void *ctx, unsigned tid, const char *cmd, struct stub_text *out);
    /* The debugger asked to end it all (k, vKill outside extended mode). */
    void (*kill)(void *ctx);
    /* extended-remote: the guest is gone (k, vKill), kvmstub stays; and
     * the guest starts afresh, stopped at its entry (run, R). */
    void (*end_guest)(void *ctx);
    int (*restart)(void *ctx);
    /* The debugger asked for extended mode ('!'): until the next attach,
     * the guest's end does not end the target. */
    void (*extended)(void *ctx);
};

struct stub_target {
    const struct stub_target_ops *ops;
    void *ctx;
};

#endif
