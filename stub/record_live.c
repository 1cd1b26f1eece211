/* The record layer recording the live run (record_engine.h): a position at
 * every stop gdb sees, checkpoints during continues, the step after a
 * Ctrl-C. */
#include "record_engine.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Recording starts at the current stop. */
int stub_record_live_start(struct stub_record *rec, char *err, size_t errlen)
{
    stub_record_chain_clear(rec);
    struct stub_checkpoint *cp;
    int r = rec->ck.take(rec->ck.ctx, &cp, err, errlen);
    if (r)
        return r;
    rec->npos = 0;
    rec->cur = 0;
    stub_record_chain_insert(rec, (size_t)-1, cp, LEAVE_NONE, 0);
    rec->cur = 0;
    rec->recording = true;
    return 0;
}

static void stop_kicks(struct stub_record *rec)
{
    uv_timer_stop(&rec->kick_timer);
    rec->kick_pending = false;
}

/* History is dropped (no replay runs). */
void stub_record_live_off(struct stub_record *rec)
{
    stop_kicks(rec);
    stub_record_chain_clear(rec);
    rec->recording = false;
}

static void kick_fired(uv_timer_t *t)
{
    struct stub_record *rec = t->data;
    /* Not when a stop is asked for already (Ctrl-C): that stop is the
     * user's. The target's own (--until, --timeout) come up as stops of
     * their own, which stub_record_live_stopped tells from ours. */
    if (!rec->lower.ops->running(rec->lower.ctx)) {
        stop_kicks(rec); /* the run ended without a stop for us (the guest exited) */
        return;
    }
    if (!rec->recording || rec->replay.job != JOB_NONE || rec->user_interrupt || rec->kick_pending)
        return;
    rec->kick_pending = true;
    rec->lower.ops->interrupt(rec->lower.ctx);
}

/* A live run from the present starts: a checkpoint every KICK_MS while it
 * runs, where reverse execution can use them. */
static void kicks_start(struct stub_record *rec, const struct stub_resume *r)
{
    stub_record_chain_drop_kicks(rec);
    rec->user_interrupt = false;
    rec->interrupt_step = false;
    /* Not range steps: a stop requested mid-range ends them as a step. */
    if (r->threads[0].action != STUB_ACTION_CONTINUE || stub_record_chain_threads(rec) > 1 ||
        rec->ck.nondeterministic(rec->ck.ctx))
        return;
    rec->live = *r;
    rec->kicks_of = rec->cur;
    rec->kick_pending = false;
    uv_timer_start(&rec->kick_timer, kick_fired, KICK_MS, KICK_MS);
}

/* The run gdb asked for goes live from the present: what left the last
 * position is noted before the target below runs it. */
void stub_record_live_run(struct stub_record *rec, const struct stub_resume *r)
{
    const struct stub_thread_action *a = &r->threads[0];
    bool step = a->action == STUB_ACTION_STEP && stub_record_chain_threads(rec) == 1;
    rec->pos[rec->cur].leave = step ? LEAVE_STEP : LEAVE_RUN;
    rec->pos[rec->cur].insns = step ? 1 : 0;
    rec->force_cp = step && stub_record_chain_nondeterministic_here(rec);
    rec->run_t0 = uv_hrtime();
    kicks_start(rec, r);
}

static void keep_kick(struct stub_record *rec, struct stub_checkpoint *cp)
{
    if (rec->nkicks == KICKS_KEPT) {
        rec->own_bytes -= rec->ck.own_bytes(rec->ck.ctx, rec->kicks[0]);
        stub_record_chain_drop(rec, rec->kicks[0]);
        memmove(&rec->kicks[0], &rec->kicks[1], (KICKS_KEPT - 1) * sizeof(rec->kicks[0]));
        rec->nkicks--;
    }
    rec->kicks[rec->nkicks++] = cp;
    rec->own_bytes += rec->ck.own_bytes(rec->ck.ctx, cp);
    rec->stats.kicks++;
}

static bool taking_kicks(struct stub_record *rec)
{
    return rec->recording && rec->replay.job == JOB_NONE && rec->kicks_of + 1 == rec->npos;
}

/* Instructions from the last checkpoint to position i, up to LIVE_STEPS. */
static uint64_t since_checkpoint(const struct stub_record *rec, size_t i)
{
    uint64_t n = 0;
    while (!rec->pos[i].cp && n < LIVE_STEPS)
        n += rec->pos[--i].insns;
    return n;
}

/* A live stop is about to go up (or gdb attached at one): it becomes the
 * newest position. */
void stub_record_live_note(struct stub_record *rec, const struct stub_stop *st)
{
    stop_kicks(rec);
    if (!rec->recording) {
        char err[256];
        if (rec->autostart && stub_record_live_start(rec, err, sizeof(err))) {
            stub_log("reverse execution is not available: %s", err);
            rec->autostart = false;
        }
        return;
    }
    size_t last = rec->npos - 1;
    struct stub_record_pos *p = &rec->pos[last];
    p->span_s = (double)(uv_hrtime() - rec->run_t0) / 1e9;
    /* After a plain step the position is rebuilt by stepping again from the
     * last checkpoint, unless that is too far or the step cannot be
     * repeated; every other stop gets a checkpoint. */
    bool sparse = p->leave == LEAVE_STEP && p->insns == 1 && !rec->force_cp && !st->exited &&
                  st->signal == STUB_SIGTRAP && !st->why[0] &&
                  stub_record_chain_threads(rec) == 1 && since_checkpoint(rec, last) + 1 < LIVE_STEPS;
    rec->force_cp = false;
    struct stub_checkpoint *cp = NULL;
    if (!sparse && stub_record_chain_take(rec, &cp)) {
        stub_log("reverse execution: history stops here");
        stub_record_live_off(rec);
        return;
    }
    /* What a step left can be more than one instruction (a fault). */
    if (!sparse && p->leave == LEAVE_STEP && (st->signal != STUB_SIGTRAP || st->why[0]))
        p->insns = 0;
    /* The end of the run: after every checkpoint taken during it. */
    rec->kick_inserting = true;
    rec->cur = stub_record_chain_insert(rec, last, cp, LEAVE_NONE, 0);
    rec->kick_inserting = false;
    stub_record_chain_trim(rec);
}

static void go_up(struct stub_record *rec, const struct stub_stop *st)
{
    if (!st->exited)
        stub_record_live_note(rec, st);
    rec->last = *st;
    rec->own_last = true;
    if (rec->attached)
        rec->upper.stopped(rec->upper.ctx, st);
}

/* Our own stop during a live continue: a checkpoint, and the run goes on
 * (or, at gdb's breakpoint, ends there). False when it could not resume:
 * the stop is then the user's. */
static bool kicked(struct stub_record *rec)
{
    struct stub_stop st;
    if (stub_record_chain_bp_stop_at(rec, stub_record_chain_pc(rec), &st)) {
        /* Resuming would step over gdb's breakpoint: the run got there. */
        go_up(rec, &st);
        return true;
    }
    char err[200];
    struct stub_checkpoint *cp;
    if (taking_kicks(rec) && rec->ck.take(rec->ck.ctx, &cp, err, sizeof(err)) == 0)
        keep_kick(rec, cp);
    int r = rec->lower.ops->resume(rec->lower.ctx, &rec->live);
    if (r) {
        stub_log("reverse execution: cannot resume after a checkpoint: %s", strerror(-r));
        return false;
    }
    return true;
}

/* Every thread stopped for the user's Ctrl-C during a live continue: a
 * checkpoint there and one step, so that reverse-stepi from the stop
 * replays one step instead of counting every instruction since the last
 * checkpoint (a Ctrl-C stops wherever the guest is anyway). True when the
 * step runs; its stop is then reported as the interrupt. */
static bool step_after_interrupt(struct stub_record *rec, const struct stub_stop *st)
{
    if (!taking_kicks(rec) || !uv_is_active((uv_handle_t *)&rec->kick_timer) ||
        stub_record_chain_threads(rec) != 1)
        return false;
    struct stub_stop bp;
    if (stub_record_chain_bp_stop_at(rec, stub_record_chain_pc(rec), &bp))
        return false; /* stepping would run over gdb's breakpoint */
    char err[200];
    struct stub_checkpoint *cp;
    if (rec->ck.take(rec->ck.ctx, &cp, err, sizeof(err)))
        return false;
    keep_kick(rec, cp);
    stop_kicks(rec);
    struct stub_resume r = {.count = 1};
    r.threads[0].action = STUB_ACTION_STEP;
    if (rec->lower.ops->resume(rec->lower.ctx, &r))
        return false;
    rec->interrupt_step = true;
    rec->interrupt_stop = *st;
    return true;
}

/* A plain interrupted stop: no text, no exit, no reason of the target's. */
static bool plain_interrupt(const struct stub_stop *st)
{
    return st->cause == STUB_CAUSE_INTERRUPTED && !st->exited && !st->why[0] &&
           st->signal == STUB_SIGINT;
}

/* A stop of the live run came up from the target below. */
void stub_record_live_stopped(struct stub_record *rec, const struct stub_stop *st)
{
    if (rec->interrupt_step) {
        rec->interrupt_step = false;
        if (st->cause == STUB_CAUSE_STEP) {
            go_up(rec, &rec->interrupt_stop); /* reported as the Ctrl-C it follows */
            return;
        }
        go_up(rec, st);
        return;
    }
    if (rec->kick_pending) {
        rec->kick_pending = false;
        if (plain_interrupt(st) && !rec->user_interrupt && kicked(rec))
            return; /* a checkpoint during a live continue; it runs on */
    }
    if (rec->user_interrupt) {
        rec->user_interrupt = false;
        if (plain_interrupt(st) && rec->recording && step_after_interrupt(rec, st))
            return; /* a checkpoint, and one step, before the Ctrl-C's stop */
    }
    go_up(rec, st);
}
