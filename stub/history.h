/* stub/history.h: execution history and reverse execution on a
 * deterministic board.
 *
 * History is a chain of positions: every stop gdb saw while recording,
 * with the action that left it (a step, or a run: continue and range steps
 * alike) and, where known, the number of instructions to the next one.
 * Not every position holds a checkpoint (stub/snapshots.h): after a plain
 * step only the registers are kept (a couple of hundred bytes), and the
 * position is rebuilt by loading the nearest checkpoint before it and
 * stepping the known instructions in between. A checkpoint is taken at
 * every other stop (runs, faults, I/O catches, Ctrl-C, edits by gdb),
 * after a step over an instruction a replay cannot repeat, and when more
 * than LIVE_STEPS steps would have to be replayed; rebuilding leaves a
 * checkpoint every GOTO_EVERY steps, so stepping back one at a time stays
 * cheap. While a continue runs live, history stops the guest every
 * KICK_MS for a checkpoint and resumes it; reverse-stepi into that run
 * counts from the last one. The machine is deterministic (bare board, one vCPU: no
 * interrupts, no timers, devices that answer the same way every time), so
 * running forward from a checkpoint repeats the recorded execution; a
 * run's end is found by a temporary breakpoint at its pc plus an exact
 * comparison of the whole state (every register, the devices and RAM)
 * with its checkpoint, a counted span's by its count. Going back is
 * replaying forward: reverse-stepi counts a run once (the count is kept),
 * then steps to one short of its end; reverse-continue replays spans from
 * the newest back, with gdb's breakpoints and watchpoints, and lands on
 * the last hit before here (a watchpoint: before the writing instruction).
 * Where a replay does not reach the recorded state (the guest read the TSC,
 * RDRAND/RDSEED, ...) the command is refused and the machine stays put.
 *
 * Stops found going back become positions too. Forward commands in the
 * past replay and become live at the end of history. gdb changing registers
 * or memory at a stop in the past drops the history after it.
 *
 * Loop thread only. The machine routes to it: every live stop it reports,
 * every forward resume, the stops of its replays, and changes gdb makes. */
#ifndef STUB_HISTORY_H
#define STUB_HISTORY_H

#include <stdbool.h>
#include <stdint.h>

#include "target.h"
#include "text.h"

struct stub_machine;
struct stub_machine_stop;
struct stub_history;

/* limit: bytes the checkpoints may hold (the oldest go first); 0 turns
 * history off. */
int stub_history_create(struct stub_history **out, struct stub_machine *m, uint64_t limit);
void stub_history_free(struct stub_history *h);

/* Recording starts at the current stop (gdb attached, monitor record
 * start) and stops (monitor record stop, gdb gone). */
int stub_history_start(struct stub_history *h, char *err, size_t errlen);
void stub_history_stop(struct stub_history *h);
/* The machine jumped (snapshot load, reset): history starts again here
 * if it was on. */
void stub_history_restart(struct stub_history *h);
bool stub_history_recording(const struct stub_history *h);

/* A live stop is about to be reported. */
void stub_history_live_stop(struct stub_history *h, const struct stub_stop *st);
/* A forward resume from gdb. Returns 1 when history took it (a replay in
 * the past), 0 when the machine runs it live, or a negative errno. */
int stub_history_resume(struct stub_history *h, const struct stub_resume *r);
/* A replay runs: the machine's stops and output go to history. */
bool stub_history_replaying(const struct stub_history *h);
void stub_history_replay_stop(struct stub_history *h, const struct stub_machine_stop *ms);
/* gdb or a monitor command changed registers, memory or devices. */
void stub_history_changed(struct stub_history *h);
/* gdb's breakpoints and watchpoints, as inserted and removed. */
void stub_history_bp(struct stub_history *h, enum stub_bp_kind kind, uint64_t addr, uint64_t len,
                     bool insert);
/* bs / bc. */
int stub_history_reverse(struct stub_history *h, unsigned tid, enum stub_action action);
/* User interrupt (Ctrl-C) while a replay runs. */
void stub_history_interrupt(struct stub_history *h);
/* Ctrl-C while the guest runs live: its stop is the user's. */
void stub_history_user_interrupt(struct stub_history *h);
/* All vCPUs stopped for the user's Ctrl-C during a live continue: history
 * takes a checkpoint there and steps one instruction, so that
 * reverse-stepi from the stop replays one step instead of counting every
 * instruction since the last checkpoint (a Ctrl-C stops wherever the guest
 * is anyway). True when it did; the step's stop then comes, and
 * stub_history_interrupt_stepped() says to report it as the interrupt. */
bool stub_history_interrupted(struct stub_history *h);
bool stub_history_interrupt_stepped(struct stub_history *h, const struct stub_machine_stop *primary);
/* During a live continue history stops the guest now and then for a
 * checkpoint. All vCPUs stopped with no stop of their own: true when that
 * was history's, which resumed the run. False otherwise, with *primary set
 * (and *have_primary true) when the run reached gdb's breakpoint. */
bool stub_history_kicked(struct stub_history *h, struct stub_machine_stop *primary,
                         bool *have_primary);

/* `monitor record [start|stop|info]`. */
int stub_history_command(struct stub_history *h, const char *args, struct stub_text *t);

/* Figures for the benchmark and monitor record info. */
struct stub_history_stats {
    uint64_t positions, current, bytes;
    uint64_t replay_steps, replay_runs, compares, full_compares;
    uint64_t kicks; /* checkpoints taken during live continues */
};
void stub_history_stats(const struct stub_history *h, struct stub_history_stats *out);

#endif
