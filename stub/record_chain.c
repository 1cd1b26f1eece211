/* The record layer's chain of positions, its checkpoints, gdb's
 * breakpoints and the stops that go up (record_engine.h). */
#include "record_engine.h"

#include "log.h"
#include "vm/decode.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned stub_record_chain_threads(struct stub_record *rec)
{
    return rec->lower.ops->threads(rec->lower.ctx);
}

uint64_t stub_record_chain_pc(struct stub_record *rec)
{
    struct stub_record_regs r;
    rec->ck.regs(rec->ck.ctx, NULL, &r);
    return r.pc;
}

/* The instruction at the pc is one a replay cannot repeat: its name. */
const char *stub_record_chain_nondeterministic_here(struct stub_record *rec)
{
    uint8_t insn[16];
    size_t done = 0;
    struct stub_thread_info info = {0};
    rec->lower.ops->mem_read(rec->lower.ctx, 1, false, stub_record_chain_pc(rec), insn,
                             sizeof(insn), &done);
    rec->lower.ops->thread_info(rec->lower.ctx, 1, &info);
    return vm_decode_nondeterministic(insn, done, info.mode == VM_MODE_LONG);
}

int stub_record_chain_take(struct stub_record *rec, struct stub_checkpoint **out)
{
    char err[256];
    int r = rec->ck.take(rec->ck.ctx, out, err, sizeof(err));
    if (r)
        stub_log("reverse execution: cannot take a checkpoint: %s", err);
    return r;
}

int stub_record_chain_load(struct stub_record *rec, const struct stub_checkpoint *cp)
{
    char err[256];
    int r = rec->ck.load(rec->ck.ctx, cp, err, sizeof(err));
    if (r)
        stub_log("reverse execution: cannot load a checkpoint: %s", err);
    return r;
}

void stub_record_chain_drop(struct stub_record *rec, struct stub_checkpoint *cp)
{
    if (cp)
        rec->ck.drop(rec->ck.ctx, cp);
}

static void free_pos(struct stub_record *rec, struct stub_record_pos *p)
{
    if (p->cp)
        rec->own_bytes -= rec->ck.own_bytes(rec->ck.ctx, p->cp);
    stub_record_chain_drop(rec, p->cp);
    p->cp = NULL;
}

void stub_record_chain_drop_kicks(struct stub_record *rec)
{
    for (size_t i = 0; i < rec->nkicks; i++) {
        rec->own_bytes -= rec->ck.own_bytes(rec->ck.ctx, rec->kicks[i]);
        stub_record_chain_drop(rec, rec->kicks[i]);
    }
    rec->nkicks = 0;
}

void stub_record_chain_clear(struct stub_record *rec)
{
    stub_record_chain_drop_kicks(rec);
    for (size_t i = 0; i < rec->npos; i++)
        free_pos(rec, &rec->pos[i]);
    rec->npos = rec->cur = 0;
    rec->edited = false;
    rec->force_cp = false;
}

/* Gives position i a checkpoint of the target, which is there now. */
void stub_record_chain_attach(struct stub_record *rec, size_t i, struct stub_checkpoint *cp)
{
    rec->pos[i].cp = cp;
    rec->own_bytes += rec->ck.own_bytes(rec->ck.ctx, cp);
}

/* Inserts a position after index `after`: cp's state, or (cp NULL) the
 * target's as it is now, to be rebuilt by stepping (pos[after].insns must
 * be known then). Returns its index. */
size_t stub_record_chain_insert(struct stub_record *rec, size_t after, struct stub_checkpoint *cp,
                                enum stub_record_leave leave, uint64_t insns)
{
    if (rec->npos == rec->cap) {
        size_t cap = rec->cap ? rec->cap * 2 : 64;
        struct stub_record_pos *p = realloc(rec->pos, cap * sizeof(*p));
        if (!p) {
            stub_record_chain_drop(rec, cp);
            return after; /* out of memory: stay on the old position */
        }
        rec->pos = p;
        rec->cap = cap;
    }
    size_t i = after + 1;
    memmove(&rec->pos[i + 1], &rec->pos[i], (rec->npos - i) * sizeof(rec->pos[0]));
    rec->npos++;
    struct stub_record_pos *p = &rec->pos[i];
    *p = (struct stub_record_pos){.leave = leave, .insns = insns};
    rec->ck.regs(rec->ck.ctx, cp, &p->regs);
    if (cp)
        stub_record_chain_attach(rec, i, cp);
    if (rec->cur >= i)
        rec->cur++;
    if (rec->nkicks && i <= rec->kicks_of)
        rec->kicks_of++;
    else if (rec->nkicks && i == rec->kicks_of + 1 && !rec->kick_inserting)
        stub_record_chain_drop_kicks(rec); /* which side of the new position they are on is not known */
    struct stub_record_replay *rp = &rec->replay;
    if (rp->job != JOB_NONE) {
        size_t *idx[] = {&rp->origin, &rp->span_end, &rp->span_start, &rp->walk_pos,
                         &rp->dest_pos};
        for (size_t k = 0; k < sizeof(idx) / sizeof(idx[0]); k++)
            if (*idx[k] >= i && *idx[k] != (size_t)-1)
                (*idx[k])++;
    }
    return i;
}

/* Splits the span leaving position at after off of its insns instructions
 * (known) with a new position there: the target's state now, or cp. */
size_t stub_record_chain_split(struct stub_record *rec, size_t at, uint64_t off,
                               struct stub_checkpoint *cp)
{
    struct stub_record_pos *a = &rec->pos[at];
    uint64_t rest = a->insns ? a->insns - off : 0;
    enum stub_record_leave leave = a->leave;
    a->insns = off;
    a->leave = off == 1 ? LEAVE_STEP : LEAVE_RUN;
    return stub_record_chain_insert(rec, at, cp, rest == 1 ? LEAVE_STEP : leave, rest);
}

static uint64_t held_bytes(struct stub_record *rec)
{
    return rec->ck.store_bytes(rec->ck.ctx) + rec->own_bytes +
           rec->cap * sizeof(struct stub_record_pos);
}

/* Keeps the store within the limit: the oldest positions go first, each
 * with the positions rebuilt from its checkpoint. */
void stub_record_chain_trim(struct stub_record *rec)
{
    while (rec->npos > 2 && held_bytes(rec) > rec->limit) {
        size_t k = 1;
        while (k < rec->npos && !rec->pos[k].cp)
            k++;
        if (k > rec->cur || k >= rec->npos - 1)
            break;
        for (size_t i = 0; i < k; i++)
            free_pos(rec, &rec->pos[i]);
        if (rec->nkicks && rec->kicks_of < k)
            stub_record_chain_drop_kicks(rec);
        else if (rec->nkicks)
            rec->kicks_of -= k;
        memmove(&rec->pos[0], &rec->pos[k], (rec->npos - k) * sizeof(rec->pos[0]));
        rec->npos -= k;
        rec->cur -= k;
    }
}

/* Positions back from i over gdb's edits: the same moment. */
size_t stub_record_chain_skip_edits_back(const struct stub_record *rec, size_t i)
{
    while (i > 0 && rec->pos[i - 1].leave == LEAVE_EDIT)
        i--;
    return i;
}

/* The target is at position i: the whole state where it has a checkpoint;
 * else the registers, the rest following from the instructions replayed
 * (the caller knows it stepped exactly the way there). Registers first:
 * they are cheap. */
bool stub_record_chain_at(struct stub_record *rec, size_t i)
{
    const struct stub_record_pos *p = &rec->pos[i];
    struct stub_record_regs now;
    rec->stats.compares++;
    rec->ck.regs(rec->ck.ctx, NULL, &now);
    if (memcmp(&now, &p->regs, sizeof(now)))
        return false;
    if (!p->cp)
        return true;
    rec->stats.full_compares++;
    return rec->ck.equal(rec->ck.ctx, p->cp);
}

bool stub_record_chain_user_bp_at(const struct stub_record *rec, uint64_t addr,
                                  enum stub_bp_kind *kind)
{
    for (size_t i = 0; i < rec->nbps; i++) {
        if (rec->bps[i].addr == addr &&
            (rec->bps[i].kind == STUB_BP_SOFTWARE || rec->bps[i].kind == STUB_BP_HARDWARE)) {
            if (kind)
                *kind = rec->bps[i].kind;
            return true;
        }
    }
    return false;
}

bool stub_record_chain_user_sw_bp_at(const struct stub_record *rec, uint64_t addr)
{
    for (size_t i = 0; i < rec->nbps; i++)
        if (rec->bps[i].addr == addr && rec->bps[i].kind == STUB_BP_SOFTWARE)
            return true;
    return false;
}

bool stub_record_chain_any_watch(const struct stub_record *rec)
{
    for (size_t i = 0; i < rec->nbps; i++)
        if (rec->bps[i].kind != STUB_BP_SOFTWARE && rec->bps[i].kind != STUB_BP_HARDWARE)
            return true;
    return false;
}

/* The stop gdb gets for its breakpoint at pc, or false when there is none. */
bool stub_record_chain_bp_stop_at(const struct stub_record *rec, uint64_t pc, struct stub_stop *st)
{
    enum stub_bp_kind kind;
    if (!stub_record_chain_user_bp_at(rec, pc, &kind))
        return false;
    *st = stub_record_chain_trap_stop();
    st->reason = kind == STUB_BP_HARDWARE ? STUB_REASON_HWBREAK : STUB_REASON_SWBREAK;
    st->cause = STUB_CAUSE_BREAKPOINT;
    return true;
}

void stub_record_chain_note_bp(struct stub_record *rec, enum stub_bp_kind kind, uint64_t addr,
                               uint64_t len, bool inserted)
{
    for (size_t i = 0; i < rec->nbps; i++) {
        if (rec->bps[i].kind == kind && rec->bps[i].addr == addr && rec->bps[i].len == len) {
            if (!inserted)
                rec->bps[i] = rec->bps[--rec->nbps];
            return;
        }
    }
    if (inserted && rec->nbps < MAX_USER_BPS)
        rec->bps[rec->nbps++] = (struct stub_record_bp){.kind = kind, .addr = addr, .len = len};
}

const struct stub_stop *stub_record_chain_last(struct stub_record *rec)
{
    return rec->own_last ? &rec->last : rec->lower.ops->last_stop(rec->lower.ctx);
}

/* A stop goes up to gdb (a refused one: the target stays where it was). */
void stub_record_chain_deliver(struct stub_record *rec, const struct stub_stop *st)
{
    rec->last = *st;
    rec->last.refused = false;
    rec->own_last = true;
    if (st->why[0] && !st->refused)
        stub_log("guest stopped: %s", st->why);
    if (rec->attached)
        rec->upper.stopped(rec->upper.ctx, st);
}

/* Refused before anything ran. */
void stub_record_chain_refuse_now(struct stub_record *rec, const char *fmt, ...)
{
    struct stub_stop st = *stub_record_chain_last(rec);
    st.refused = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st.why, sizeof(st.why), fmt, ap);
    va_end(ap);
    stub_log("%s", st.why);
    stub_record_chain_deliver(rec, &st);
}

struct stub_stop stub_record_chain_trap_stop(void)
{
    return (struct stub_stop){.tid = 1, .signal = STUB_SIGTRAP};
}
