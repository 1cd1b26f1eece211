/* The record layer's replays (record_engine.h): rebuilding a position,
 * reverse-stepi, reverse-continue, forward commands in the past. Each
 * replayed run or step is a resume of the target below with replay set;
 * its stop comes back to stub_record_replay_stopped. */
#include "record_engine.h"

#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A breakpoint of ours at the end of the span replayed, unless gdb has one. */
static void temp_bp_set(struct stub_record *rec, uint64_t addr)
{
    struct stub_record_replay *rp = &rec->replay;
    if (rp->has_temp_bp && rp->temp_bp_addr == addr)
        return;
    if (rp->has_temp_bp) {
        rec->lower.ops->bp_remove(rec->lower.ctx, 1, STUB_BP_SOFTWARE, rp->temp_bp_addr, 1);
        rp->has_temp_bp = false;
    }
    if (stub_record_chain_user_sw_bp_at(rec, addr))
        return;
    if (rec->lower.ops->bp_insert(rec->lower.ctx, 1, STUB_BP_SOFTWARE, addr, 1) == 0) {
        rp->has_temp_bp = true;
        rp->temp_bp_addr = addr;
    }
}

static void temp_bp_clear(struct stub_record *rec)
{
    struct stub_record_replay *rp = &rec->replay;
    if (rp->has_temp_bp)
        rec->lower.ops->bp_remove(rec->lower.ctx, 1, STUB_BP_SOFTWARE, rp->temp_bp_addr, 1);
    rp->has_temp_bp = false;
}


static void watchdog_fired(uv_timer_t *t)
{
    struct stub_record *rec = t->data;
    rec->replay.timed_out = true;
    rec->lower.ops->interrupt(rec->lower.ctx);
}

static void run(struct stub_record *rec, enum stub_action action, double budget_s)
{
    struct stub_resume r = {.count = 1};
    r.threads[0].action = action;
    if (action == STUB_ACTION_CONTINUE) {
        rec->stats.replay_runs++;
        uint64_t budget_ms = (uint64_t)((2.0 + 20.0 * budget_s) * 1000);
        uv_timer_start(&rec->watchdog, watchdog_fired, budget_ms, 0);
    } else {
        rec->stats.replay_steps++;
    }
    r.replay = true;
    int err = rec->lower.ops->resume(rec->lower.ctx, &r);
    if (err)
        stub_log("reverse execution: cannot run the vCPU: %s", strerror(-err));
}

void stub_record_replay_finish(struct stub_record *rec)
{
    uv_timer_stop(&rec->watchdog);
    temp_bp_clear(rec);
    stub_record_chain_drop(rec, rec->replay.last_hit);
    stub_record_chain_drop(rec, rec->replay.prev_hit);
    stub_record_chain_drop(rec, rec->replay.anchor);
    rec->replay.last_hit = rec->replay.prev_hit = rec->replay.anchor = NULL;
    rec->replay.job = JOB_NONE;
}

static void deliver(struct stub_record *rec, const struct stub_stop *st)
{
    stub_record_replay_finish(rec);
    stub_record_chain_deliver(rec, st);
}

static void deliver_at(struct stub_record *rec, size_t i, const struct stub_stop *st)
{
    rec->cur = i;
    deliver(rec, st);
}

static void goto_pos(struct stub_record *rec, size_t j, uint64_t off, stub_record_then_fn then);

static void refused_back(struct stub_record *rec)
{
    struct stub_stop st = rec->replay.origin_stop;
    rec->cur = rec->replay.origin;
    st.refused = true;
    memcpy(st.why, rec->replay.refusal, sizeof(st.why));
    stub_log("%s", st.why);
    stub_record_replay_finish(rec);
    stub_record_chain_deliver(rec, &st);
}

/* The command cannot be done exactly: back to where it started. */
static void refuse(struct stub_record *rec, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void refuse(struct stub_record *rec, const char *fmt, ...)
{
    if (rec->replay.refusing) {
        /* Even the way back failed: what history says is no longer what the
         * machine is. */
        struct stub_stop st = rec->replay.origin_stop;
        st.refused = true;
        snprintf(st.why, sizeof(st.why), "%.90s; kvmstub could not return exactly, so the "
                 "history is dropped",
                 rec->replay.refusal);
        stub_log("%s", st.why);
        stub_record_replay_finish(rec);
        stub_record_chain_clear(rec);
        rec->recording = false;
        stub_record_chain_deliver(rec, &st);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rec->replay.refusal, sizeof(rec->replay.refusal), fmt, ap);
    va_end(ap);
    size_t start = rec->replay.origin;
    uv_timer_stop(&rec->watchdog);
    temp_bp_clear(rec);
    rec->replay.refusing = true;
    if (start < rec->npos && rec->pos[start].cp) {
        if (stub_record_chain_load(rec, rec->pos[start].cp) == 0)
            rec->cur = start;
        refused_back(rec);
        return;
    }
    goto_pos(rec, start, 0, refused_back);
}

static void diverged(struct stub_record *rec, const char *what)
{
    stub_trace("replay diverged: %s", what);
    refuse(rec, "cannot go there exactly: the replay %s: the guest does not repeat its run (it "
              "read the TSC or a random number?); kvmstub stays where it was",
           what);
}

/* Steps once, refusing instructions a replay cannot repeat. */
static bool step_checked(struct stub_record *rec)
{
    const char *bad = stub_record_chain_nondeterministic_here(rec);
    if (bad) {
        refuse(rec, "cannot go back exactly past the %s at 0x%llx: its result differs every run",
               bad, (unsigned long long)stub_record_chain_pc(rec));
        return false;
    }
    run(rec, STUB_ACTION_STEP, 0);
    return true;
}

/* One instruction done (a step, or a stop right after one). */
static bool one_insn(const struct stub_stop *ev)
{
    switch (ev->cause) {
    case STUB_CAUSE_STEP:
    case STUB_CAUSE_WATCH:
    case STUB_CAUSE_HALT:
    case STUB_CAUSE_IO:
    case STUB_CAUSE_BREAKPOINT:
        return true;
    default:
        return false;
    }
}

/* --- rebuilding a position: load the checkpoint before, step --- */

static size_t base_of(const struct stub_record *rec, size_t j)
{
    while (!rec->pos[j].cp)
        j--;
    return j;
}

static void goto_next(struct stub_record *rec)
{
    if (rec->replay.walk_pos == rec->replay.dest_pos && rec->replay.walk_off == rec->replay.dest_off) {
        rec->replay.on_arrival(rec);
        return;
    }
    step_checked(rec);
}

/* Goes to off instructions past position j (off < its insns), then calls
 * then with the machine there. Checkpoints are left on the way. */
static void goto_pos(struct stub_record *rec, size_t j, uint64_t off, stub_record_then_fn then)
{
    size_t k = base_of(rec, j);
    if (stub_record_chain_load(rec, rec->pos[k].cp)) {
        refuse(rec, "cannot load a checkpoint");
        return;
    }
    rec->replay.phase = PH_WALK;
    rec->replay.walk_pos = k;
    rec->replay.walk_off = 0;
    rec->replay.dest_pos = j;
    rec->replay.dest_off = off;
    rec->replay.steps_since_cp = 0;
    rec->replay.on_arrival = then;
    goto_next(rec);
}

static void goto_stop(struct stub_record *rec, const struct stub_stop *ev)
{
    if (!one_insn(ev)) {
        diverged(rec, "stopped where the recorded run did not");
        return;
    }
    rec->replay.walk_off++;
    rec->replay.steps_since_cp++;
    size_t at = rec->replay.walk_pos;
    if (rec->replay.walk_off == rec->pos[at].insns) {
        rec->replay.walk_pos = ++at;
        rec->replay.walk_off = 0;
        if (!stub_record_chain_at(rec, at)) {
            diverged(rec, "did not reach the recorded state");
            return;
        }
        if (rec->replay.steps_since_cp >= WALK_EVERY && !rec->pos[at].cp) {
            struct stub_checkpoint *s;
            if (stub_record_chain_take(rec, &s) == 0) {
                stub_record_chain_attach(rec, at, s);
                rec->replay.steps_since_cp = 0;
            }
        }
    } else if (rec->replay.steps_since_cp >= WALK_EVERY) {
        struct stub_checkpoint *s;
        if (stub_record_chain_take(rec, &s) == 0) {
            uint64_t off = rec->replay.walk_off;
            bool target_here = rec->replay.dest_pos == at;
            size_t q = stub_record_chain_split(rec, at, off, s);
            if (q != at) {
                rec->replay.walk_pos = q;
                rec->replay.walk_off = 0;
                if (target_here) {
                    rec->replay.dest_pos = q;
                    rec->replay.dest_off -= off;
                }
                rec->replay.steps_since_cp = 0;
            }
        }
    }
    goto_next(rec);
}

/* At g_to_off past g_to: a position there (without a checkpoint). */
static size_t goto_here(struct stub_record *rec)
{
    if (rec->replay.dest_off == 0)
        return rec->replay.dest_pos;
    return stub_record_chain_split(rec, rec->replay.dest_pos, rec->replay.dest_off, NULL);
}

/* --- reverse-stepi --- */

static void revstep_arrived(struct stub_record *rec)
{
    deliver_at(rec, goto_here(rec), &(struct stub_stop){.tid = 1, .signal = STUB_SIGTRAP});
}

static void revstep_begin(struct stub_record *rec, size_t c);

static void revstep_count(struct stub_record *rec)
{
    rec->replay.phase = PH_COUNT;
    rec->replay.steps = 0;
    step_checked(rec);
}

static void revstep_begin(struct stub_record *rec, size_t c)
{
    size_t p = c - 1;
    rec->replay.job = JOB_REVSTEP;
    rec->replay.span_start = p;
    rec->replay.span_end = c;
    if (rec->pos[p].insns) {
        goto_pos(rec, p, rec->pos[p].insns - 1, revstep_arrived);
        return;
    }
    if (rec->nkicks && rec->kicks_of == p) {
        /* The last checkpoint of that run becomes a position: counting
         * starts there. */
        struct stub_checkpoint *k = rec->kicks[--rec->nkicks];
        rec->own_bytes -= rec->ck.own_bytes(rec->ck.ctx, k);
        rec->kick_inserting = true;
        p = stub_record_chain_insert(rec, p, k, LEAVE_RUN, 0);
        rec->kick_inserting = false;
        rec->replay.span_start = p;
        rec->replay.span_end = c = p + 1;
    }
    /* A run of unknown length (its end has a checkpoint): count it once. */
    goto_pos(rec, p, 0, revstep_count);
}

static void revstep_stop(struct stub_record *rec, const struct stub_stop *ev)
{
    if (!one_insn(ev)) {
        diverged(rec, "stopped where the recorded run did not");
        return;
    }
    rec->replay.steps++;
    if (stub_record_chain_at(rec, rec->replay.span_end)) {
        rec->pos[rec->replay.span_start].insns = rec->replay.steps;
        rec->pos[rec->replay.span_start].leave = rec->replay.steps == 1 ? LEAVE_STEP : LEAVE_RUN;
        revstep_begin(rec, rec->replay.span_end);
        return;
    }
    if (rec->replay.steps % COUNT_EVERY == 0) {
        /* A checkpoint on the way: the rest is counted from here. */
        struct stub_checkpoint *s;
        if (!stub_record_chain_take(rec, &s)) {
            rec->pos[rec->replay.span_start].insns = rec->replay.steps;
            rec->replay.span_start = stub_record_chain_split(rec, rec->replay.span_start, rec->replay.steps, s);
            rec->replay.steps = 0;
        }
    }
    step_checked(rec);
}

/* --- reverse-continue --- */

static void span_begin(struct stub_record *rec, size_t p);
static void revcont_from(struct stub_record *rec, size_t c);

static void drop_hits(struct stub_record *rec)
{
    stub_record_chain_drop(rec, rec->replay.last_hit);
    stub_record_chain_drop(rec, rec->replay.prev_hit);
    rec->replay.last_hit = rec->replay.prev_hit = NULL;
    rec->replay.hit_at_start = false;
    rec->replay.have_hit_off = false;
}

static void hit(struct stub_record *rec, const struct stub_stop *st, bool watch)
{
    struct stub_checkpoint *s;
    if (stub_record_chain_take(rec, &s))
        return;
    stub_record_chain_drop(rec, rec->replay.prev_hit);
    rec->replay.prev_hit = rec->replay.last_hit;
    rec->replay.last_hit = s;
    rec->replay.hit_stop = *st;
    rec->replay.hit_watch = watch;
}

static void watch_count(struct stub_record *rec)
{
    rec->replay.phase = PH_WATCHCOUNT;
    rec->replay.steps = 0;
    temp_bp_clear(rec);
    step_checked(rec);
}

static void watch_search(struct stub_record *rec)
{
    /* From the hit before (or the span's start) step to the write. */
    rec->replay.anchor = rec->replay.prev_hit; /* NULL: the span's start position */
    rec->replay.prev_hit = NULL;
    if (!rec->replay.anchor) {
        goto_pos(rec, rec->replay.span_start, 0, watch_count);
        return;
    }
    if (stub_record_chain_load(rec, rec->replay.anchor)) {
        refuse(rec, "cannot load a checkpoint");
        return;
    }
    watch_count(rec);
}

static void deliver_hit(struct stub_record *rec)
{
    struct stub_stop st = rec->replay.hit_stop;
    deliver_at(rec, goto_here(rec), &st);
}

static void span_done(struct stub_record *rec)
{
    uv_timer_stop(&rec->watchdog);
    size_t p = rec->replay.span_start;
    if (rec->replay.last_hit && rec->replay.hit_watch) {
        watch_search(rec);
        return;
    }
    if (rec->replay.last_hit) {
        if (stub_record_chain_load(rec, rec->replay.last_hit)) {
            refuse(rec, "cannot load a checkpoint");
            return;
        }
        struct stub_checkpoint *s = rec->replay.last_hit;
        rec->replay.last_hit = NULL;
        rec->pos[p].leave = LEAVE_RUN;
        size_t q = stub_record_chain_insert(rec, p, s, LEAVE_RUN, 0);
        struct stub_stop st = rec->replay.hit_stop;
        deliver_at(rec, q, &st);
        return;
    }
    if (rec->replay.have_hit_off) {
        goto_pos(rec, p, rec->replay.hit_off, deliver_hit);
        return;
    }
    if (rec->replay.hit_at_start) {
        goto_pos(rec, p, 0, deliver_hit);
        return;
    }
    revcont_from(rec, stub_record_chain_skip_edits_back(rec, p));
}

/* Replays the span leaving position p (the target is there): by steps
 * when its length is known (phase by_steps), else as a run to a
 * breakpoint of ours at its end (phase by_run). */
static void replay_span(struct stub_record *rec, size_t p, enum stub_record_phase by_steps,
                        enum stub_record_phase by_run)
{
    if (rec->pos[p].insns) {
        rec->replay.phase = by_steps;
        rec->replay.steps = 0;
        rec->replay.steps_wanted = rec->pos[p].insns;
        step_checked(rec);
        return;
    }
    rec->replay.phase = by_run;
    temp_bp_set(rec, rec->pos[p + 1].regs.pc);
    run(rec, STUB_ACTION_CONTINUE, rec->pos[p].span_s);
}

static void span_run(struct stub_record *rec)
{
    replay_span(rec, rec->replay.span_start, PH_SPANSTEP, PH_SPAN);
}

static void span_begin(struct stub_record *rec, size_t p)
{
    drop_hits(rec);
    rec->replay.span_start = p;
    rec->replay.span_end = p + 1;
    /* Resuming steps over a breakpoint under the pc: count it here. */
    rec->replay.hit_at_start = stub_record_chain_bp_stop_at(rec, rec->pos[p].regs.pc, &rec->replay.hit_stop);
    goto_pos(rec, p, 0, span_run);
}

/* Goes back from position c (edits skipped) to the last hit before it. */
static void revcont_from(struct stub_record *rec, size_t c)
{
    bool watch = stub_record_chain_any_watch(rec);
    for (;;) {
        if (c == 0) {
            if (stub_record_chain_load(rec, rec->pos[0].cp)) {
                refuse(rec, "cannot load a checkpoint");
                return;
            }
            struct stub_stop st = stub_record_chain_trap_stop();
            st.reason = STUB_REASON_HISTORY_BEGIN;
            deliver_at(rec, 0, &st);
            return;
        }
        size_t p = c - 1;
        if (watch || rec->pos[p].insns != 1) {
            span_begin(rec, p);
            return;
        }
        /* A single step: without watchpoints only a breakpoint where it
         * starts can stop it, which its pc tells without running. */
        if (stub_record_chain_bp_stop_at(rec, rec->pos[p].regs.pc, &rec->replay.hit_stop)) {
            rec->replay.span_start = p;
            goto_pos(rec, p, 0, deliver_hit);
            return;
        }
        c = stub_record_chain_skip_edits_back(rec, p);
    }
}

static void spanstep_stop(struct stub_record *rec, const struct stub_stop *ev)
{
    if (!one_insn(ev)) {
        diverged(rec, "stopped where the recorded run did not");
        return;
    }
    rec->replay.steps++;
    bool end = rec->replay.steps == rec->replay.steps_wanted;
    /* Going back, what happened last is met first: a write (stop before
     * the writing instruction), then arriving at a breakpoint. */
    if (ev->cause == STUB_CAUSE_WATCH) {
        rec->replay.have_hit_off = true;
        rec->replay.hit_off = rec->replay.steps - 1;
        rec->replay.hit_stop = *ev;
    } else if (ev->cause == STUB_CAUSE_IO && !end) {
        rec->replay.have_hit_off = true;
        rec->replay.hit_off = rec->replay.steps;
        rec->replay.hit_stop = *ev;
    }
    struct stub_stop st;
    if (!end && stub_record_chain_bp_stop_at(rec, stub_record_chain_pc(rec), &st)) {
        rec->replay.have_hit_off = true;
        rec->replay.hit_off = rec->replay.steps;
        rec->replay.hit_stop = st;
    }
    if (!end) {
        step_checked(rec);
        return;
    }
    if (!stub_record_chain_at(rec, rec->replay.span_end)) {
        diverged(rec, "did not reach the recorded state");
        return;
    }
    if (rec->replay.have_hit_off && rec->replay.hit_off == 0) {
        rec->replay.have_hit_off = false;
        rec->replay.hit_at_start = true;
    }
    span_done(rec);
}

/* Right before the writing instruction: want instructions past the anchor
 * (or the span's start). */
static void watch_arrived(struct stub_record *rec)
{
    size_t at = rec->replay.span_start;
    if (rec->replay.anchor) {
        struct stub_checkpoint *a = rec->replay.anchor;
        rec->replay.anchor = NULL;
        rec->pos[at].leave = LEAVE_RUN;
        rec->pos[at].insns = 0;
        at = stub_record_chain_insert(rec, at, a, LEAVE_RUN, 0);
    }
    struct stub_stop st = rec->replay.hit_stop;
    if (rec->replay.steps_wanted == 0) {
        deliver_at(rec, at, &st);
        return;
    }
    /* What follows up to the span's end is not counted. */
    rec->pos[at].insns = 0;
    size_t q = stub_record_chain_split(rec, at, rec->replay.steps_wanted, NULL);
    deliver_at(rec, q, &st);
}

static void watch_seek(struct stub_record *rec)
{
    rec->replay.phase = PH_WATCHSEEK;
    rec->replay.steps = 0;
    if (rec->replay.steps_wanted == 0) {
        watch_arrived(rec);
        return;
    }
    run(rec, STUB_ACTION_STEP, 0);
}

static void revcont_stop(struct stub_record *rec, const struct stub_stop *ev)
{
    if (rec->replay.phase == PH_SPANSTEP) {
        spanstep_stop(rec, ev);
        return;
    }
    if (rec->replay.phase == PH_WATCHCOUNT || rec->replay.phase == PH_WATCHSEEK) {
        if (!one_insn(ev)) {
            diverged(rec, "stopped where the recorded run did not");
            return;
        }
        rec->replay.steps++;
        if (rec->replay.phase == PH_WATCHSEEK) {
            if (rec->replay.steps < rec->replay.steps_wanted)
                run(rec, STUB_ACTION_STEP, 0);
            else
                watch_arrived(rec);
            return;
        }
        if (ev->cause != STUB_CAUSE_WATCH) {
            if (stub_record_chain_at(rec, rec->replay.span_end)) {
                diverged(rec, "did not write the watched data again");
                return;
            }
            step_checked(rec);
            return;
        }
        rec->replay.hit_stop = *ev;
        rec->replay.steps_wanted = rec->replay.steps - 1;
        if (!rec->replay.anchor) {
            goto_pos(rec, rec->replay.span_start, 0, watch_seek);
            return;
        }
        if (stub_record_chain_load(rec, rec->replay.anchor)) {
            refuse(rec, "cannot load a checkpoint");
            return;
        }
        watch_seek(rec);
        return;
    }

    /* PH_SPAN. A write that ends the span is before here too: going back,
     * it is the first one undone. */
    size_t t = rec->replay.span_end;
    if (ev->cause == STUB_CAUSE_WATCH && stub_record_chain_at(rec, t)) {
        hit(rec, ev, true);
        span_done(rec);
        return;
    }
    if (stub_record_chain_at(rec, t)) {
        span_done(rec);
        return;
    }
    switch (ev->cause) {
    case STUB_CAUSE_BREAKPOINT:
        if (stub_record_chain_user_bp_at(rec, stub_record_chain_pc(rec), NULL))
            hit(rec, ev, false);
        break;
    case STUB_CAUSE_WATCH:
        hit(rec, ev, true);
        break;
    case STUB_CAUSE_IO:
        hit(rec, ev, false);
        break;
    case STUB_CAUSE_INTERRUPTED:
        if (rec->replay.user_interrupted) {
            refuse(rec, "interrupted; kvmstub stays where it was");
            return;
        }
        diverged(rec, "ran far longer than the recorded run");
        return;
    default:
        stub_trace("replay stop (cause %d) at 0x%llx", (int)ev->cause,
                   (unsigned long long)stub_record_chain_pc(rec));
        diverged(rec, "stopped where the recorded run did not");
        return;
    }
    run(rec, STUB_ACTION_CONTINUE, rec->pos[rec->replay.span_start].span_s);
}

/* --- forward in the past --- */

/* The replay reached the present: the command goes on live. */
static void go_live(struct stub_record *rec, enum stub_action action, uint64_t start, uint64_t end)
{
    stub_record_replay_finish(rec);
    struct stub_resume r = {.count = 1};
    r.threads[0] = (struct stub_thread_action){.action = action, .start = start, .end = end};
    stub_record_live_run(rec, &r);
    int err = rec->lower.ops->resume(rec->lower.ctx, &r);
    if (err)
        stub_log("reverse execution: cannot run the vCPU: %s", strerror(-err));
}

/* Edits are crossed by loading the edited state. */
static int skip_edits_fwd(struct stub_record *rec)
{
    while (rec->cur + 1 < rec->npos && rec->pos[rec->cur].leave == LEAVE_EDIT) {
        if (stub_record_chain_load(rec, rec->pos[rec->cur + 1].cp))
            return -EIO;
        rec->cur++;
    }
    return 0;
}

static bool user_visible(const struct stub_record *rec, const struct stub_stop *ev,
                         uint64_t pc)
{
    switch (ev->cause) {
    case STUB_CAUSE_BREAKPOINT:
        return stub_record_chain_user_bp_at(rec, pc, NULL);
    case STUB_CAUSE_INTERRUPTED:
        return false;
    default:
        return true;
    }
}

/* A forward continue goes on from the current position. */
static void fwd_run_on(struct stub_record *rec)
{
    if (rec->cur + 1 == rec->npos) {
        go_live(rec, STUB_ACTION_CONTINUE, 0, 0);
        return;
    }
    replay_span(rec, rec->cur, PH_FWD_RUNSTEP, PH_FWD_RUN);
}

/* A stop of a replayed step that a live run would report: st. */
static bool step_visible(struct stub_record *rec, const struct stub_stop *ev,
                         struct stub_stop *st)
{
    switch (ev->cause) {
    case STUB_CAUSE_WATCH:
    case STUB_CAUSE_IO:
    case STUB_CAUSE_HALT:
        *st = *ev;
        return true;
    default:
        return stub_record_chain_bp_stop_at(rec, stub_record_chain_pc(rec), st);
    }
}

static void fwd_runstep_stop(struct stub_record *rec, const struct stub_stop *ev)
{
    if (!one_insn(ev)) {
        deliver(rec, ev); /* a fault: it happened in the past too */
        return;
    }
    size_t c = rec->cur;
    rec->replay.steps++;
    struct stub_stop st;
    bool visible = step_visible(rec, ev, &st);
    if (rec->replay.user_interrupted && !visible) {
        visible = true;
        st = stub_record_chain_trap_stop();
        st.signal = STUB_SIGINT;
    }
    if (rec->replay.steps < rec->replay.steps_wanted) {
        if (visible) {
            deliver_at(rec, stub_record_chain_split(rec, c, rec->replay.steps, NULL), &st);
            return;
        }
        step_checked(rec);
        return;
    }
    if (!stub_record_chain_at(rec, c + 1)) {
        diverged(rec, "did not reach the recorded state");
        return;
    }
    rec->cur = c + 1;
    if (skip_edits_fwd(rec)) {
        refuse(rec, "cannot load a checkpoint");
        return;
    }
    if (visible) {
        deliver_at(rec, rec->cur, &st);
        return;
    }
    fwd_run_on(rec);
}

static void fwd_stop(struct stub_record *rec, const struct stub_stop *ev)
{
    if (rec->replay.phase == PH_FWD_RUNSTEP) {
        fwd_runstep_stop(rec, ev);
        return;
    }
    size_t c = rec->cur;
    uint64_t pc = stub_record_chain_pc(rec);
    if (rec->replay.phase == PH_FWD_STEP) {
        if (!one_insn(ev)) {
            deliver(rec, ev); /* a fault: it happened in the past too */
            return;
        }
        if (rec->pos[c].insns == 1 || (!rec->pos[c].insns && stub_record_chain_at(rec, c + 1))) {
            if (rec->pos[c].insns && !stub_record_chain_at(rec, c + 1)) {
                diverged(rec, "did not reach the recorded state");
                return;
            }
            rec->cur = c + 1;
        } else {
            rec->cur = stub_record_chain_split(rec, c, 1, NULL);
        }
        if (skip_edits_fwd(rec)) {
            refuse(rec, "cannot load a checkpoint");
            return;
        }
        bool more = rec->replay.fwd_action == STUB_ACTION_RANGE && ev->cause == STUB_CAUSE_STEP &&
                    pc >= rec->replay.range_start && pc < rec->replay.range_end && !rec->replay.user_interrupted;
        if (more && rec->cur + 1 == rec->npos) {
            go_live(rec, STUB_ACTION_RANGE, rec->replay.range_start, rec->replay.range_end);
            return;
        }
        if (more) {
            step_checked(rec);
            return;
        }
        struct stub_stop st = *ev;
        if (rec->replay.user_interrupted && ev->cause == STUB_CAUSE_STEP)
            st.signal = STUB_SIGINT;
        deliver_at(rec, rec->cur, &st);
        return;
    }
    /* PH_FWD_RUN */
    if (pc == rec->pos[c + 1].regs.pc && stub_record_chain_at(rec, c + 1)) {
        rec->cur = c + 1;
        if (skip_edits_fwd(rec)) {
            refuse(rec, "cannot load a checkpoint");
            return;
        }
        if (user_visible(rec, ev, pc)) {
            struct stub_stop st = *ev;
            deliver_at(rec, rec->cur, &st);
            return;
        }
        fwd_run_on(rec);
        return;
    }
    if (ev->cause == STUB_CAUSE_INTERRUPTED && rec->replay.timed_out && !rec->replay.user_interrupted) {
        diverged(rec, "ran far longer than the recorded run");
        return;
    }
    if (!user_visible(rec, ev, pc) && !rec->replay.user_interrupted) {
        run(rec, STUB_ACTION_CONTINUE, rec->pos[c].span_s);
        return;
    }
    struct stub_checkpoint *s;
    if (stub_record_chain_take(rec, &s)) {
        refuse(rec, "cannot take a checkpoint");
        return;
    }
    rec->pos[c].leave = LEAVE_RUN;
    size_t q = stub_record_chain_insert(rec, c, s, LEAVE_RUN, 0);
    struct stub_stop st = *ev;
    if (rec->replay.user_interrupted) {
        st = stub_record_chain_trap_stop();
        st.signal = STUB_SIGINT;
    }
    deliver_at(rec, q, &st);
}


/* --- the entry points --- */

void stub_record_replay_stopped(struct stub_record *rec, const struct stub_stop *ev)
{
    if (ev->cause == STUB_CAUSE_FAILED) {
        diverged(rec, "failed to run");
        return;
    }
    if (rec->replay.user_interrupted && !rec->replay.refusing && rec->replay.job != JOB_FORWARD) {
        /* Ctrl-C while stepping a replay (a long span to count). */
        refuse(rec, "interrupted; kvmstub stays where it was");
        return;
    }
    if (rec->replay.phase == PH_WALK) {
        goto_stop(rec, ev);
        return;
    }
    switch (rec->replay.job) {
    case JOB_REVSTEP:
        revstep_stop(rec, ev);
        return;
    case JOB_REVCONT:
        revcont_stop(rec, ev);
        return;
    case JOB_FORWARD:
        fwd_stop(rec, ev);
        return;
    case JOB_NONE:
        break;
    }
}

/* bs / bc from position c (edits skipped, c > 0). */
void stub_record_replay_back(struct stub_record *rec, size_t c, enum stub_action action)
{
    if (action == STUB_ACTION_STEP) {
        revstep_begin(rec, c);
    } else {
        rec->replay.job = JOB_REVCONT;
        revcont_from(rec, c);
    }
}

/* A forward resume in the past (job, origin and the action are set):
 * replays towards the present. 0 when it runs live after all (edits were
 * crossed up to the present), 1 when a replay runs. */
int stub_record_replay_forward(struct stub_record *rec, const struct stub_resume *r)
{
    if (skip_edits_fwd(rec)) {
        stub_record_replay_finish(rec);
        return -EIO;
    }
    if (rec->cur + 1 == rec->npos) {
        stub_record_replay_finish(rec);
        return 0;
    }
    if (r->threads[0].action == STUB_ACTION_CONTINUE) {
        fwd_run_on(rec);
    } else {
        rec->replay.phase = PH_FWD_STEP;
        step_checked(rec);
    }
    return 1;
}
