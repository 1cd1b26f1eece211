/* The record target (record.h): every operation passes down to the target
 * below; what recording must see is noted on the way. */
#include "record_engine.h"

#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOWER(rec, op, ...) ((rec)->lower.ops->op((rec)->lower.ctx, __VA_ARGS__))
#define LOWER0(rec, op) ((rec)->lower.ops->op((rec)->lower.ctx))

/* History is dropped, a replay in progress with it. */
static void stop_recording(struct stub_record *rec)
{
    stub_record_replay_finish(rec);
    stub_record_live_off(rec);
}

/* The target below jumped (a snapshot loaded, a reset): history starts
 * again there if it was on; the stop gdb is told of is the target's. */
void stub_record_jumped(void *ctx)
{
    struct stub_record *rec = ctx;
    rec->own_last = false;
    if (!rec->recording)
        return;
    char err[200];
    if (stub_record_live_start(rec, err, sizeof(err))) {
        stub_log("reverse execution: history stops: %s", err);
        stop_recording(rec);
    }
}

/* gdb or a monitor command changed registers, memory or devices. */
static void changed(struct stub_record *rec)
{
    if (!rec->recording)
        return;
    if (rec->cur + 1 < rec->npos) {
        stub_log("reverse execution: gdb changed the machine at a stop in the past; the "
                 "%zu later stops of the history are dropped",
                 rec->npos - rec->cur - 1);
        for (size_t i = rec->cur + 1; i < rec->npos; i++) {
            if (rec->pos[i].cp)
                rec->own_bytes -= rec->ck.own_bytes(rec->ck.ctx, rec->pos[i].cp);
            stub_record_chain_drop(rec, rec->pos[i].cp);
            rec->pos[i].cp = NULL;
        }
        rec->npos = rec->cur + 1;
        if (rec->kicks_of >= rec->cur)
            stub_record_chain_drop_kicks(rec);
    }
    rec->edited = true;
}

/* A checkpoint of an edit gdb made before anything runs from here. */
static int commit_edit(struct stub_record *rec)
{
    if (!rec->edited)
        return 0;
    rec->edited = false;
    struct stub_checkpoint *cp;
    if (stub_record_chain_take(rec, &cp)) {
        stop_recording(rec);
        return -EIO;
    }
    rec->pos[rec->cur].leave = LEAVE_EDIT;
    rec->pos[rec->cur].insns = 0;
    rec->cur = stub_record_chain_insert(rec, rec->cur, cp, LEAVE_NONE, 0);
    return 0;
}

/* --- what comes up from the target below --- */

static void lower_output(void *ctx, const uint8_t *data, size_t n)
{
    struct stub_record *rec = ctx;
    if (rec->attached)
        rec->upper.output(rec->upper.ctx, data, n);
}

static void lower_stopped(void *ctx, const struct stub_stop *st)
{
    struct stub_record *rec = ctx;
    if (rec->replay.job != JOB_NONE)
        stub_record_replay_stopped(rec, st);
    else
        stub_record_live_stopped(rec, st);
}

/* --- the target operations --- */

static unsigned threads(void *ctx)
{
    struct stub_record *rec = ctx;
    return LOWER0(rec, threads);
}

static unsigned regsets(void *ctx)
{
    struct stub_record *rec = ctx;
    return LOWER0(rec, regsets);
}

static int thread_info(void *ctx, unsigned tid, struct stub_thread_info *out)
{
    struct stub_record *rec = ctx;
    return LOWER(rec, thread_info, tid, out);
}

static int reg_read(void *ctx, unsigned tid, enum vm_reg_id id, uint8_t *out, size_t size)
{
    struct stub_record *rec = ctx;
    return LOWER(rec, reg_read, tid, id, out, size);
}

static int reg_write(void *ctx, unsigned tid, enum vm_reg_id id, const uint8_t *in, size_t size)
{
    struct stub_record *rec = ctx;
    int err = LOWER(rec, reg_write, tid, id, in, size);
    if (!err)
        changed(rec);
    return err;
}

static int mem_read(void *ctx, unsigned tid, bool phys, uint64_t addr, void *buf, size_t len,
                    size_t *done)
{
    struct stub_record *rec = ctx;
    return LOWER(rec, mem_read, tid, phys, addr, buf, len, done);
}

static int mem_write(void *ctx, unsigned tid, bool phys, uint64_t addr, const void *buf,
                     size_t len)
{
    struct stub_record *rec = ctx;
    int err = LOWER(rec, mem_write, tid, phys, addr, buf, len);
    if (!err)
        changed(rec);
    return err;
}

static int bp_insert(void *ctx, unsigned tid, enum stub_bp_kind kind, uint64_t addr, uint64_t len)
{
    struct stub_record *rec = ctx;
    int err = LOWER(rec, bp_insert, tid, kind, addr, len);
    if (!err)
        stub_record_chain_note_bp(rec, kind, addr, len, true);
    return err;
}

static int bp_remove(void *ctx, unsigned tid, enum stub_bp_kind kind, uint64_t addr, uint64_t len)
{
    struct stub_record *rec = ctx;
    stub_record_chain_note_bp(rec, kind, addr, len, false);
    return LOWER(rec, bp_remove, tid, kind, addr, len);
}

static int resume(void *ctx, const struct stub_resume *r)
{
    struct stub_record *rec = ctx;
    if (!rec->recording || r->count < 1 || r->threads[0].action == STUB_ACTION_NONE)
        return LOWER(rec, resume, r);
    if (LOWER0(rec, running))
        return -EBUSY;
    if (stub_record_chain_last(rec)->exited)
        return -ESRCH;
    if (commit_edit(rec))
        return LOWER(rec, resume, r);
    if (rec->cur + 1 < rec->npos && stub_record_chain_threads(rec) == 1 && r->count >= 1) {
        /* In the past: replay towards the present. */
        const struct stub_thread_action *a = &r->threads[0];
        memset(&rec->replay, 0, sizeof(rec->replay));
        rec->replay.job = JOB_FORWARD;
        rec->replay.origin = rec->cur;
        rec->replay.origin_stop = *stub_record_chain_last(rec);
        rec->replay.fwd_action = a->action;
        rec->replay.range_start = a->start;
        rec->replay.range_end = a->end;
        int h = stub_record_replay_forward(rec, r);
        if (h)
            return h < 0 ? h : 0;
    }
    stub_record_live_run(rec, r);
    return LOWER(rec, resume, r);
}

static int reverse(void *ctx, unsigned tid, enum stub_action action)
{
    (void)tid;
    struct stub_record *rec = ctx;
    if (LOWER0(rec, running))
        return -EBUSY;
    if (stub_record_chain_last(rec)->exited)
        return -ESRCH;
    if (!rec->recording) {
        stub_record_chain_refuse_now(rec, "no execution history to go back in: 'monitor record "
                                          "start' starts recording");
        return 0;
    }
    const char *why = rec->ck.nondeterministic(rec->ck.ctx);
    if (why) {
        stub_record_chain_refuse_now(rec, "%s", why);
        return 0;
    }
    if (commit_edit(rec))
        return -EIO;
    memset(&rec->replay, 0, sizeof(rec->replay));
    rec->replay.origin = rec->cur;
    rec->replay.origin_stop = *stub_record_chain_last(rec);
    size_t c = stub_record_chain_skip_edits_back(rec, rec->cur);
    if (c == 0) {
        if (c != rec->cur && stub_record_chain_load(rec, rec->pos[0].cp))
            return -EIO;
        struct stub_stop st = stub_record_chain_trap_stop();
        st.reason = STUB_REASON_HISTORY_BEGIN;
        rec->cur = 0;
        stub_record_chain_deliver(rec, &st);
        return 0;
    }
    stub_record_replay_back(rec, c, action);
    return 0;
}

static void interrupt(void *ctx)
{
    struct stub_record *rec = ctx;
    if (rec->replay.job != JOB_NONE) {
        rec->replay.user_interrupted = true;
    } else {
        rec->kick_pending = false;
        rec->user_interrupt = true;
    }
    LOWER0(rec, interrupt);
}

static bool running(void *ctx)
{
    struct stub_record *rec = ctx;
    return LOWER0(rec, running);
}

static const struct stub_stop *last_stop(void *ctx)
{
    return stub_record_chain_last(ctx);
}

static void attach(void *ctx, const struct stub_target_listener *listener)
{
    struct stub_record *rec = ctx;
    rec->upper = *listener;
    rec->attached = true;
    rec->own_last = false;
    LOWER(rec, attach, &(struct stub_target_listener){.output = lower_output,
                                                      .stopped = lower_stopped,
                                                      .ctx = rec});
    /* History starts with gdb (a running guest: at the stop for it). */
    if (!LOWER0(rec, running))
        stub_record_live_note(rec, LOWER0(rec, last_stop));
}

static void detach(void *ctx, bool keep_stopped)
{
    struct stub_record *rec = ctx;
    if (!rec->attached)
        return;
    rec->attached = false;
    stop_recording(rec);
    rec->nbps = 0; /* they leave with gdb */
    LOWER(rec, detach, keep_stopped);
}

static void pause_output(void *ctx, bool paused)
{
    struct stub_record *rec = ctx;
    LOWER(rec, pause_output, paused);
}

/* `monitor record [start|stop|info]`. */
static int record_command(struct stub_record *rec, const char *args, struct stub_text *t)
{
    while (*args == ' ')
        args++;
    char err[256];
    if (strncmp(args, "start", 5) == 0) {
        int r = stub_record_live_start(rec, err, sizeof(err));
        if (r) {
            stub_text_add(t, "cannot record: %s\n", err);
            return r;
        }
        rec->autostart = true;
        stub_text_add(t, "recording: reverse execution can go back to here\n");
        return 0;
    }
    if (strncmp(args, "stop", 4) == 0) {
        stop_recording(rec);
        rec->autostart = false;
        stub_text_add(t, "history dropped; 'monitor record start' records again\n");
        return 0;
    }
    if (!*args || strncmp(args, "info", 4) == 0) {
        struct stub_record_stats s;
        stub_record_stats(rec, &s);
        if (!rec->recording) {
            stub_text_add(t, "not recording ('monitor record start')\n");
            return 0;
        }
        stub_text_add(t,
                      "recording: %llu positions, at %llu%s; checkpoints hold %llu KiB of "
                      "at most %llu\n"
                      "replays: %llu runs, %llu steps, %llu state comparisons (%llu full); "
                      "%llu checkpoints during continues\n",
                      (unsigned long long)s.positions, (unsigned long long)s.current,
                      s.current + 1 == s.positions ? " (the present)" : " (in the past)",
                      (unsigned long long)(s.bytes >> 10), (unsigned long long)(rec->limit >> 10),
                      (unsigned long long)s.replay_runs, (unsigned long long)s.replay_steps,
                      (unsigned long long)s.compares, (unsigned long long)s.full_compares,
                      (unsigned long long)s.kicks);
        return 0;
    }
    stub_text_add(t, "usage: monitor record start | stop | info\n");
    return -EINVAL;
}

static bool word_is(const char *cmd, size_t len, const char *word)
{
    return len == strlen(word) && strncmp(cmd, word, len) == 0;
}

/* `monitor record` is ours; the rest goes down, and what changes the
 * machine is noted: input for the UART is part of its state, a reset
 * starts it afresh. */
static int monitor(void *ctx, unsigned tid, const char *cmd, struct stub_text *out)
{
    struct stub_record *rec = ctx;
    if (LOWER0(rec, running))
        return -EBUSY;
    while (isspace((unsigned char)*cmd))
        cmd++;
    size_t len = 0;
    while (cmd[len] && !isspace((unsigned char)cmd[len]))
        len++;
    if (word_is(cmd, len, "record"))
        return record_command(rec, cmd + len, out);
    int err = LOWER(rec, monitor, tid, cmd, out);
    if (word_is(cmd, len, "input") && !err)
        changed(rec);
    if (word_is(cmd, len, "reset") || word_is(cmd, len, "system_reset"))
        stub_record_jumped(rec);
    return err;
}

static void kill_target(void *ctx)
{
    struct stub_record *rec = ctx;
    LOWER0(rec, kill);
}

static void end_guest(void *ctx)
{
    struct stub_record *rec = ctx;
    rec->own_last = false;
    LOWER0(rec, end_guest);
}

static int restart(void *ctx)
{
    struct stub_record *rec = ctx;
    int err = LOWER0(rec, restart);
    stub_record_jumped(rec);
    return err;
}

static void extended(void *ctx)
{
    struct stub_record *rec = ctx;
    LOWER0(rec, extended);
}

static const struct stub_target_ops ops = {
    .threads = threads,
    .regsets = regsets,
    .thread_info = thread_info,
    .reg_read = reg_read,
    .reg_write = reg_write,
    .mem_read = mem_read,
    .mem_write = mem_write,
    .bp_insert = bp_insert,
    .bp_remove = bp_remove,
    .resume = resume,
    .reverse = reverse,
    .interrupt = interrupt,
    .running = running,
    .last_stop = last_stop,
    .attach = attach,
    .detach = detach,
    .pause_output = pause_output,
    .monitor = monitor,
    .kill = kill_target,
    .end_guest = end_guest,
    .restart = restart,
    .extended = extended,
};

struct stub_target stub_record_target(struct stub_record *rec)
{
    return (struct stub_target){.ops = &ops, .ctx = rec};
}

int stub_record_create(struct stub_record **out, struct stub_target lower,
                       const struct stub_checkpoint_ops *checkpoints, uv_loop_t *loop,
                       uint64_t limit)
{
    struct stub_record *rec = calloc(1, sizeof(*rec));
    if (!rec)
        return -ENOMEM;
    rec->lower = lower;
    rec->ck = *checkpoints;
    rec->loop = loop;
    rec->limit = limit;
    rec->autostart = true;
    uv_timer_init(loop, &rec->watchdog);
    rec->watchdog.data = rec;
    uv_timer_init(loop, &rec->kick_timer);
    rec->kick_timer.data = rec;
    rec->open_handles = 2;
    *out = rec;
    return 0;
}

static void closed(uv_handle_t *t)
{
    struct stub_record *rec = t->data;
    if (--rec->open_handles == 0)
        free(rec);
}

void stub_record_free(struct stub_record *rec)
{
    if (!rec)
        return;
    stop_recording(rec);
    free(rec->pos);
    rec->pos = NULL;
    if (!uv_is_closing((uv_handle_t *)&rec->watchdog)) {
        uv_close((uv_handle_t *)&rec->watchdog, closed);
        uv_close((uv_handle_t *)&rec->kick_timer, closed);
    }
}

void stub_record_stats(const struct stub_record *rec, struct stub_record_stats *out)
{
    *out = rec->stats;
    out->positions = rec->npos;
    out->current = rec->cur;
    out->bytes = 0;
    for (size_t i = 0; i < rec->npos; i++)
        if (rec->pos[i].cp)
            out->bytes += rec->ck.page_bytes(rec->ck.ctx, rec->pos[i].cp);
    out->bytes += rec->own_bytes + rec->cap * sizeof(struct stub_record_pos);
}
