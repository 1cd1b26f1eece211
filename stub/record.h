/* stub/record.h: execution history and reverse execution as a target
 * layer, in the manner of gdb's record-full over the process target.
 *
 * A record target wraps the target below it (kvmstub's machine, or a fake
 * in tests): it implements every stub_target_ops operation by passing it
 * down, and on the way sees resumes, reverse requests, interrupts,
 * breakpoints, register and memory writes and monitor commands; every stop
 * comes up through it. Nothing below knows it is there. It needs one thing
 * more from below: checkpoints of the whole stopped target (struct
 * stub_checkpoint_ops).
 *
 * History is a chain of positions: every stop gdb saw while recording,
 * with the action that left it (a step, or a run: continue and range steps
 * alike) and, where known, the number of instructions to the next one.
 * After a plain step only the registers are kept; the position is rebuilt
 * by loading the nearest checkpoint before it and stepping the known
 * instructions in between. Going back is replaying forward from a
 * checkpoint: the target below must repeat a run exactly (one thread, no
 * interrupts or timers), which checkpoint_ops.nondeterministic says; a
 * replay that does not reach the recorded state (the guest read the TSC,
 * RDRAND, ...) refuses the command and leaves the target where it was.
 * Replays run the target below with struct stub_resume's replay set.
 * Forward commands in the past replay and become live at the end of
 * history; gdb changing registers or memory in the past drops the history
 * after it. stub/record_engine.h has the internals.
 *
 * Loop thread only, as every target. */
#ifndef STUB_RECORD_H
#define STUB_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "target.h"

/* A checkpoint of the whole target, as the target below makes it. */
struct stub_checkpoint;

/* The registers that tell two states apart cheaply: the linear pc and
 * the general registers of thread 1. */
#define STUB_RECORD_GPRS 18
struct stub_record_regs {
    uint64_t pc;
    uint64_t gpr[STUB_RECORD_GPRS];
};

struct stub_checkpoint_ops {
    /* NULL when a replay repeats the recorded run; else why it cannot (for
     * the user: the refusal of a reverse command). */
    const char *(*nondeterministic)(void *ctx);
    /* A checkpoint of the stopped target / back to one (nothing changes
     * when refused). err: a message for the user. */
    int (*take)(void *ctx, struct stub_checkpoint **out, char *err, size_t errlen);
    int (*load)(void *ctx, const struct stub_checkpoint *cp, char *err, size_t errlen);
    void (*drop)(void *ctx, struct stub_checkpoint *cp);
    /* The whole target equals cp (registers are compared already). */
    bool (*equal)(void *ctx, const struct stub_checkpoint *cp);
    /* cp's registers, or (cp NULL) the target's now. */
    void (*regs)(void *ctx, const struct stub_checkpoint *cp, struct stub_record_regs *out);
    /* Bytes cp holds of its own, and of shared memory pages; bytes the
     * store holds for every checkpoint together. */
    uint64_t (*own_bytes)(void *ctx, const struct stub_checkpoint *cp);
    uint64_t (*page_bytes)(void *ctx, const struct stub_checkpoint *cp);
    uint64_t (*store_bytes)(void *ctx);
    void *ctx;
};

struct stub_record;

/* Stacks a record target on lower. limit: bytes the checkpoints may hold
 * (the oldest go first); must not be 0. Recording starts when a debugger
 * attaches. */
int stub_record_create(struct stub_record **out, struct stub_target lower,
                       const struct stub_checkpoint_ops *checkpoints, uv_loop_t *loop,
                       uint64_t limit);
struct stub_target stub_record_target(struct stub_record *rec);
/* Frees it once its timers are closed (the loop must run once more). */
void stub_record_free(struct stub_record *rec);
/* The target below jumped to another state (a snapshot loaded): history
 * starts again there if it was on. ctx is the struct stub_record. */
void stub_record_jumped(void *ctx);

/* Figures for the benchmark and monitor record info. */
struct stub_record_stats {
    uint64_t positions, current, bytes;
    uint64_t replay_steps, replay_runs, compares, full_compares;
    uint64_t kicks; /* checkpoints taken during live continues */
};
void stub_record_stats(const struct stub_record *rec, struct stub_record_stats *out);

#endif
