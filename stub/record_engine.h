/* stub/record_engine.h: the record layer's internals (stub/record.h),
 * shared by its files:
 *   record.c         the target operations, the listener below, monitor record
 *   record_live.c    recording the live run: positions at stops, checkpoints
 *                    during continues, the step after a Ctrl-C
 *   record_replay.c  replays: rebuilding a position, reverse-stepi,
 *                    reverse-continue, forward commands in the past
 *   record_chain.c   the chain of positions and its checkpoints, gdb's
 *                    breakpoints, stops going up
 * Calls go down that list only (record.c uses the three others, replay
 * uses live and chain, live uses chain). Loop thread only. */
#ifndef STUB_RECORD_ENGINE_H
#define STUB_RECORD_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "record.h"

/* How a position was left. */
enum stub_record_leave {
    LEAVE_NONE, /* the last position: nothing left it yet */
    LEAVE_STEP, /* one instruction */
    LEAVE_RUN,  /* continue or range step: replayed as a run to the next state */
    LEAVE_EDIT, /* gdb changed the state here: no execution between the two */
};

/* A position: a stop gdb saw, or one found while replaying. A position
 * without a checkpoint (cp NULL) is rebuilt by loading the nearest
 * checkpoint before it and stepping the instructions in between, which are
 * all known (insns of every position on the way). Its registers are kept to
 * check that the replay got there. */
struct stub_record_pos {
    struct stub_checkpoint *cp;
    struct stub_record_regs regs;
    uint64_t insns; /* instructions to the next position; 0: not known */
    double span_s;  /* wall time of the live run that left it */
    enum stub_record_leave leave;
};

enum stub_record_job {
    JOB_NONE,
    JOB_REVSTEP,
    JOB_REVCONT,
    JOB_FORWARD,
};

enum stub_record_phase {
    PH_WALK,       /* stepping from a checkpoint to a position without one */
    PH_COUNT,      /* stepping a run span, counting, to its end */
    PH_SPAN,       /* running a span of unknown length with gdb's breakpoints */
    PH_SPANSTEP,   /* stepping a span of known length, collecting hits */
    PH_WATCHCOUNT, /* stepping from the hit before to the watchpoint's write */
    PH_WATCHSEEK,  /* ... and to the instruction before it */
    PH_FWD_STEP,
    PH_FWD_RUN,
    PH_FWD_RUNSTEP, /* a forward run over a span of known length, by steps */
};

/* Live steps are recorded without a checkpoint until this many have gone
 * by since the last one: rebuilding a position then costs at most that
 * many steps, and a step costs no save. */
#define LIVE_STEPS 128u
/* While rebuilding a position, a checkpoint every this many steps: going
 * back one step at a time then replays at most this many each. */
#define WALK_EVERY 16u
/* While counting a run span, a checkpoint every this many steps. */
#define COUNT_EVERY 1024u
#define MAX_USER_BPS 512u
/* During a live continue a checkpoint every this many ms (the target is
 * stopped, saved and resumed): reverse-stepi then counts from the last one
 * instead of from where the continue began. The last KICKS_KEPT are kept. */
#define KICK_MS 10u
#define KICKS_KEPT 8u

struct stub_record_bp {
    enum stub_bp_kind kind;
    uint64_t addr, len;
};

struct stub_record;
typedef void (*stub_record_then_fn)(struct stub_record *rec);

/* The reverse or replayed command in progress. */
struct stub_record_replay {
    enum stub_record_job job;
    enum stub_record_phase phase;
    size_t origin;            /* position it started from: where a refusal goes back to */
    struct stub_stop origin_stop;
    size_t span_start;        /* the span replayed: from this position */
    size_t span_end;          /* ... to this one */
    uint64_t steps;           /* steps done in this phase */
    uint64_t steps_wanted;
    /* PH_WALK: at walk_off instructions past position walk_pos, going to
     * dest_off past dest_pos; then on_arrival. */
    size_t walk_pos, dest_pos;
    uint64_t walk_off, dest_off;
    unsigned steps_since_cp;
    stub_record_then_fn on_arrival;
    /* reverse-continue: the hits found in the span replayed */
    struct stub_checkpoint *anchor; /* a hit the watchpoint search starts from */
    struct stub_checkpoint *last_hit, *prev_hit;
    bool have_hit_off; /* PH_SPANSTEP: the last hit, as an offset into the span */
    uint64_t hit_off;
    struct stub_stop hit_stop;
    bool hit_watch;
    bool hit_at_start;
    /* a forward command */
    enum stub_action fwd_action;
    uint64_t range_start, range_end;
    bool has_temp_bp; /* a breakpoint of ours at the span's end */
    uint64_t temp_bp_addr;
    bool timed_out, user_interrupted;
    bool refusing; /* going back to the start after a refusal */
    char refusal[160];
};

struct stub_record {
    struct stub_target lower;
    struct stub_checkpoint_ops ck;
    uv_loop_t *loop;
    uint64_t limit;
    /* the debugger above */
    struct stub_target_listener upper;
    bool attached;
    struct stub_stop last; /* the stop gdb was told of, when own_last */
    bool own_last;         /* else the target below's is it */
    /* recording */
    bool recording;
    bool autostart;  /* record from the next stop gdb sees (off after record stop) */
    bool edited;     /* gdb changed the state since the current checkpoint */
    bool force_cp;   /* the next live stop needs a checkpoint (the step cannot be replayed) */
    struct stub_record_pos *pos;
    size_t npos, cap, cur;
    uint64_t own_bytes; /* the positions' and kicks' checkpoint_ops.own_bytes */
    uint64_t run_t0;    /* when the live run from the present started (uv_hrtime) */
    struct stub_record_bp bps[MAX_USER_BPS];
    size_t nbps;
    uv_timer_t watchdog;
    struct stub_record_stats stats;
    /* Checkpoints of the live run leaving position kicks_of, oldest first. */
    uv_timer_t kick_timer;
    bool kick_pending;    /* the next interrupted stop is ours */
    bool user_interrupt;  /* ... or the user's Ctrl-C */
    bool interrupt_step;  /* the step after a Ctrl-C's checkpoint runs */
    struct stub_stop interrupt_stop; /* ... and the stop it will be reported as */
    bool kick_inserting;  /* a kick becomes a position */
    unsigned open_handles; /* timers not closed yet: freed after the last */
    struct stub_resume live; /* what that run does, to resume it */
    struct stub_checkpoint *kicks[KICKS_KEPT];
    size_t nkicks, kicks_of;
    struct stub_record_replay replay;
};

/* record_chain.c */
unsigned stub_record_chain_threads(struct stub_record *rec);
uint64_t stub_record_chain_pc(struct stub_record *rec);
const char *stub_record_chain_nondeterministic_here(struct stub_record *rec);
int stub_record_chain_take(struct stub_record *rec, struct stub_checkpoint **out);
int stub_record_chain_load(struct stub_record *rec, const struct stub_checkpoint *cp);
void stub_record_chain_drop(struct stub_record *rec, struct stub_checkpoint *cp);
void stub_record_chain_attach(struct stub_record *rec, size_t i, struct stub_checkpoint *cp);
void stub_record_chain_drop_kicks(struct stub_record *rec);
void stub_record_chain_clear(struct stub_record *rec);
size_t stub_record_chain_insert(struct stub_record *rec, size_t after, struct stub_checkpoint *cp,
                                enum stub_record_leave leave, uint64_t insns);
size_t stub_record_chain_split(struct stub_record *rec, size_t at, uint64_t off,
                               struct stub_checkpoint *cp);
void stub_record_chain_trim(struct stub_record *rec);
size_t stub_record_chain_skip_edits_back(const struct stub_record *rec, size_t i);
bool stub_record_chain_at(struct stub_record *rec, size_t i);
bool stub_record_chain_user_bp_at(const struct stub_record *rec, uint64_t addr,
                                  enum stub_bp_kind *kind);
bool stub_record_chain_user_sw_bp_at(const struct stub_record *rec, uint64_t addr);
bool stub_record_chain_any_watch(const struct stub_record *rec);
bool stub_record_chain_bp_stop_at(const struct stub_record *rec, uint64_t pc,
                                  struct stub_stop *st);
void stub_record_chain_note_bp(struct stub_record *rec, enum stub_bp_kind kind, uint64_t addr,
                               uint64_t len, bool inserted);
const struct stub_stop *stub_record_chain_last(struct stub_record *rec);
void stub_record_chain_deliver(struct stub_record *rec, const struct stub_stop *st);
void stub_record_chain_refuse_now(struct stub_record *rec, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
struct stub_stop stub_record_chain_trap_stop(void);

/* record_live.c */
int stub_record_live_start(struct stub_record *rec, char *err, size_t errlen);
void stub_record_live_off(struct stub_record *rec);
void stub_record_live_run(struct stub_record *rec, const struct stub_resume *r);
void stub_record_live_stopped(struct stub_record *rec, const struct stub_stop *st);
void stub_record_live_note(struct stub_record *rec, const struct stub_stop *st);

/* record_replay.c */
void stub_record_replay_stopped(struct stub_record *rec, const struct stub_stop *st);
void stub_record_replay_back(struct stub_record *rec, size_t c, enum stub_action action);
int stub_record_replay_forward(struct stub_record *rec, const struct stub_resume *r);
void stub_record_replay_finish(struct stub_record *rec);

#endif
