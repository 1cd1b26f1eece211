/* Execution history and reverse execution (history.h). */
#include "history.h"

#include "log.h"
#include "machine.h"
#include "snapshots.h"
#include "vm/decode.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

enum leave {
    LEAVE_NONE, /* the last position: nothing left it yet */
    LEAVE_STEP, /* one instruction */
    LEAVE_RUN,  /* continue or range step: replayed as a run to the next state */
    LEAVE_EDIT, /* gdb changed the state here: no execution between the two */
};

struct pos {
    struct vm_snapshot *snap;
    struct stub_stop stop; /* what gdb was told here */
    uint64_t pc;           /* linear */
    enum leave leave;
    double span_s;         /* wall time of the live run that left it */
};

enum job {
    JOB_NONE,
    JOB_REVSTEP,
    JOB_REVCONT,
    JOB_FORWARD,
};

enum phase {
    PH_COUNT,      /* stepping a span, counting, to its end */
    PH_SEEK,       /* stepping want instructions from the anchor */
    PH_SPAN,       /* replaying a span with gdb's breakpoints, collecting hits */
    PH_WATCHCOUNT, /* stepping from the hit before to the watchpoint's write */
    PH_WATCHSEEK,  /* ... and to the instruction before it */
    PH_FWD_STEP,
    PH_FWD_RUN,
};

#define INTERVAL_STEPS 1024u /* a checkpoint every this many steps while counting */
#define MAX_USER_BPS 512u

struct user_bp {
    enum stub_bp_kind kind;
    uint64_t addr, len;
};

struct stub_history {
    struct stub_machine *m;
    uint64_t limit;
    bool recording;
    bool autostart; /* record from the next stop gdb sees (off after record stop) */
    bool edited; /* gdb changed the state since the current checkpoint */
    struct pos *pos;
    size_t n, cap, cur;
    uint64_t state_bytes; /* the positions' vm_snapshot_state_bytes() */
    uint64_t run_t0; /* when the live run from the present started (uv_hrtime) */
    struct user_bp bps[MAX_USER_BPS];
    size_t nbps;
    uv_timer_t watchdog;
    struct stub_history_stats stats;
    /* The reverse or replayed command in progress. */
    struct {
        enum job job;
        enum phase phase;
        size_t start;  /* position it started from: where a refusal goes back to */
        size_t target; /* end position of the span replayed */
        size_t span;   /* start position of the span replayed */
        uint64_t count, want;
        struct vm_snapshot *anchor; /* a hit snapshot the watch search starts from */
        struct vm_snapshot *last_hit, *prev_hit;
        struct stub_stop hit_stop;
        bool hit_watch;
        bool hit_at_start;
        struct stub_stop start_stop;
        enum stub_action fwd;
        uint64_t range_start, range_end;
        bool temp_bp;
        uint64_t temp_addr;
        bool timed_out, user_int;
    } r;
};

/* ---- helpers ---- */

static struct vm_cpu *cpu0(struct stub_history *h)
{
    return stub_machine_cpu(h->m, 1);
}

static uint64_t pc_now(struct stub_history *h)
{
    uint64_t pc = 0;
    vm_cpu_linear_pc(cpu0(h), &pc);
    return pc;
}

static int take(struct stub_history *h, struct vm_snapshot **out)
{
    char err[256];
    int r = stub_snapshots_take(h->m->snapshots, out, err, sizeof(err));
    if (r)
        stub_log("reverse execution: cannot take a checkpoint: %s", err);
    return r;
}

static int load(struct stub_history *h, const struct vm_snapshot *s)
{
    char err[256];
    int r = stub_snapshots_apply(h->m->snapshots, s, err, sizeof(err));
    if (r)
        stub_log("reverse execution: cannot load a checkpoint: %s", err);
    return r;
}

static void free_pos(struct stub_history *h, struct pos *p)
{
    h->state_bytes -= vm_snapshot_state_bytes(p->snap);
    vm_snapshot_free(p->snap);
    p->snap = NULL;
}

static void clear(struct stub_history *h)
{
    for (size_t i = 0; i < h->n; i++)
        free_pos(h, &h->pos[i]);
    h->n = h->cur = 0;
    h->edited = false;
}

/* The linear pc a checkpoint holds (as vm_cpu_linear_pc computes it). */
static uint64_t snap_pc(const struct vm_snapshot *s)
{
    const struct vm_cpustate *c = &s->cpus[0];
    bool two = c->parts & VM_CPUSTATE_SREGS2;
    const struct kvm_segment *cs = two ? &c->sregs2.cs : &c->sregs.cs;
    uint64_t efer = two ? c->sregs2.efer : c->sregs.efer;
    bool long64 = (efer & (1u << 10)) && cs->l;
    return long64 ? c->regs.rip : (uint64_t)(uint32_t)(cs->base + c->regs.rip);
}

/* Inserts a position after index `after` holding snap; returns its index. */
static size_t insert(struct stub_history *h, size_t after, struct vm_snapshot *snap,
                     const struct stub_stop *st, enum leave leave)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct pos *p = realloc(h->pos, cap * sizeof(*p));
        if (!p) {
            vm_snapshot_free(snap);
            return after; /* out of memory: stay on the old position */
        }
        h->pos = p;
        h->cap = cap;
    }
    size_t i = after + 1;
    memmove(&h->pos[i + 1], &h->pos[i], (h->n - i) * sizeof(h->pos[0]));
    h->n++;
    h->pos[i] = (struct pos){.snap = snap, .stop = *st, .pc = snap_pc(snap), .leave = leave};
    h->state_bytes += vm_snapshot_state_bytes(snap);
    h->pos[i].stop.refused = false;
    if (h->cur >= i)
        h->cur++;
    if (h->r.job != JOB_NONE) {
        if (h->r.start >= i)
            h->r.start++;
        if (h->r.target >= i)
            h->r.target++;
        if (h->r.span >= i)
            h->r.span++;
    }
    return i;
}

/* Keeps the store within the limit: the oldest positions go first. */
static void trim(struct stub_history *h)
{
    struct vm_snapshots *store;
    char err[200];
    if (stub_snapshots_store(h->m->snapshots, &store, err, sizeof(err)))
        return;
    /* Pages and each checkpoint's own state: a stepping session makes many
     * checkpoints that share almost every page. */
    while (h->n > 2 && h->cur > 0 &&
           vm_pagestore_usage(store->ps)->bytes + h->state_bytes > h->limit) {
        free_pos(h, &h->pos[0]);
        memmove(&h->pos[0], &h->pos[1], (h->n - 1) * sizeof(h->pos[0]));
        h->n--;
        h->cur--;
    }
}

static bool user_bp_at(const struct stub_history *h, uint64_t addr, enum stub_bp_kind *kind)
{
    for (size_t i = 0; i < h->nbps; i++) {
        if (h->bps[i].addr == addr &&
            (h->bps[i].kind == STUB_BP_SOFTWARE || h->bps[i].kind == STUB_BP_HARDWARE)) {
            if (kind)
                *kind = h->bps[i].kind;
            return true;
        }
    }
    return false;
}

static bool user_sw_bp_at(const struct stub_history *h, uint64_t addr)
{
    for (size_t i = 0; i < h->nbps; i++)
        if (h->bps[i].addr == addr && h->bps[i].kind == STUB_BP_SOFTWARE)
            return true;
    return false;
}

/* A breakpoint of ours at the end of the span replayed, unless gdb has one. */
static void temp_bp_set(struct stub_history *h, uint64_t addr)
{
    if (h->r.temp_bp && h->r.temp_addr == addr)
        return;
    if (h->r.temp_bp) {
        vm_bp_remove(cpu0(h), h->r.temp_addr, false);
        h->r.temp_bp = false;
    }
    if (user_sw_bp_at(h, addr))
        return;
    if (vm_bp_insert(cpu0(h), addr, false) == 0) {
        h->r.temp_bp = true;
        h->r.temp_addr = addr;
    }
}

static void temp_bp_clear(struct stub_history *h)
{
    if (h->r.temp_bp)
        vm_bp_remove(cpu0(h), h->r.temp_addr, false);
    h->r.temp_bp = false;
}

/* ---- comparing the machine with a checkpoint ---- */

static bool regs_match(struct stub_history *h, const struct vm_snapshot *s)
{
    const struct kvm_regs *k = &s->cpus[0].regs;
    static const enum vm_reg_id ids[] = {VM_REG_RAX, VM_REG_RBX, VM_REG_RCX, VM_REG_RDX,
                                         VM_REG_RSI, VM_REG_RDI, VM_REG_RSP, VM_REG_RBP,
                                         VM_REG_R8,  VM_REG_R9,  VM_REG_R10, VM_REG_R11,
                                         VM_REG_R12, VM_REG_R13, VM_REG_R14, VM_REG_R15,
                                         VM_REG_RIP, VM_REG_EFLAGS};
    const uint64_t want[] = {k->rax, k->rbx, k->rcx, k->rdx, k->rsi, k->rdi,
                             k->rsp, k->rbp, k->r8,  k->r9,  k->r10, k->r11,
                             k->r12, k->r13, k->r14, k->r15, k->rip, k->rflags};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        uint64_t v;
        if (vm_reg_get(cpu0(h), ids[i], &v) || v != want[i])
            return false;
    }
    return true;
}

static bool cpus_equal(const struct vm_cpustate *a, const struct vm_cpustate *b)
{
    if (a->parts != b->parts || memcmp(&a->mp, &b->mp, sizeof(a->mp)) ||
        memcmp(&a->regs, &b->regs, sizeof(a->regs)))
        return false;
    if ((a->parts & VM_CPUSTATE_SREGS2) ? memcmp(&a->sregs2, &b->sregs2, sizeof(a->sregs2))
                                        : memcmp(&a->sregs, &b->sregs, sizeof(a->sregs)))
        return false;
    if ((a->parts & VM_CPUSTATE_XSAVE)
            ? (a->xsave_size != b->xsave_size || memcmp(a->xsave, b->xsave, a->xsave_size))
            : memcmp(&a->fpu, &b->fpu, sizeof(a->fpu)))
        return false;
    if (memcmp(&a->xcrs, &b->xcrs, sizeof(a->xcrs)) ||
        memcmp(&a->debugregs, &b->debugregs, sizeof(a->debugregs)) ||
        memcmp(&a->events, &b->events, sizeof(a->events)) || a->nmsrs != b->nmsrs)
        return false;
    for (uint32_t i = 0; i < a->nmsrs; i++) {
        /* The TSC runs on while the guest is stopped: not part of its state
         * for this purpose (a guest that reads it is caught elsewhere). */
        if (a->msrs[i].index == 0x10 || a->msrs[i].index == 0x6e0)
            continue;
        if (a->msrs[i].index != b->msrs[i].index || a->msrs[i].data != b->msrs[i].data)
            return false;
    }
    return true;
}

static bool blobs_equal(const struct vm_snapshot *a, const struct vm_snapshot *b)
{
    for (size_t i = 0; i < a->nblobs; i++) {
        if (strcmp(a->blobs[i].name, "stub") == 0)
            continue; /* what gdb was told, not the machine */
        const struct vm_snapshot_blob *o = vm_snapshot_blob(b, a->blobs[i].name);
        if (!o || o->len != a->blobs[i].len || memcmp(o->data, a->blobs[i].data, o->len))
            return false;
    }
    return true;
}

static bool ram_equal(const struct vm_snapshot *a, const struct vm_snapshot *b, uint64_t pages)
{
    for (uint64_t p = 0; p < pages; p++) {
        const uint8_t *x = vm_pagestore_page(a->ram, p), *y = vm_pagestore_page(b->ram, p);
        if (x != y && (!x || !y || memcmp(x, y, 4096)))
            return false;
    }
    return true;
}

/* The whole machine equals s: registers first (cheap), then a checkpoint
 * compared part by part. On a match *taken (if not NULL) receives that
 * checkpoint. */
static bool same_as(struct stub_history *h, const struct vm_snapshot *s, uint64_t pc,
                    struct vm_snapshot **taken)
{
    h->stats.compares++;
    if (pc_now(h) != pc || !regs_match(h, s))
        return false;
    h->stats.full_compares++;
    struct vm_snapshot *t;
    if (take(h, &t))
        return false;
    bool same = t->ncpus == s->ncpus && blobs_equal(t, s) &&
                memcmp(&t->vm, &s->vm, sizeof(t->vm)) == 0 &&
                ram_equal(t, s, vm_ram_size(h->m->vm) / 4096);
    for (unsigned i = 0; same && i < t->ncpus; i++)
        same = cpus_equal(&t->cpus[i], &s->cpus[i]);
    if (same && taken)
        *taken = t;
    else
        vm_snapshot_free(t);
    return same;
}

static bool at_pos(struct stub_history *h, size_t i)
{
    return same_as(h, h->pos[i].snap, h->pos[i].pc, NULL);
}

/* ---- running replays ---- */

static void watchdog_fired(uv_timer_t *t)
{
    struct stub_history *h = t->data;
    h->r.timed_out = true;
    stub_machine_interrupt(h->m);
}

static void run(struct stub_history *h, enum stub_action action, double budget_s)
{
    struct stub_resume r = {.count = 1};
    r.threads[0].action = action;
    if (action == STUB_ACTION_CONTINUE) {
        h->stats.replay_runs++;
        uint64_t ms = (uint64_t)((2.0 + 20.0 * budget_s) * 1000);
        uv_timer_start(&h->watchdog, watchdog_fired, ms, 0);
    } else {
        h->stats.replay_steps++;
    }
    int err = stub_machine_run(h->m, &r);
    if (err)
        stub_log("reverse execution: cannot run the vCPU: %s", strerror(-err));
}

static void finish(struct stub_history *h)
{
    uv_timer_stop(&h->watchdog);
    temp_bp_clear(h);
    vm_snapshot_free(h->r.last_hit);
    vm_snapshot_free(h->r.prev_hit);
    vm_snapshot_free(h->r.anchor);
    h->r.last_hit = h->r.prev_hit = h->r.anchor = NULL;
    h->r.job = JOB_NONE;
}

static void deliver(struct stub_history *h, const struct stub_stop *st)
{
    finish(h);
    stub_machine_deliver(h->m, st);
}

static void deliver_at(struct stub_history *h, size_t i, const struct stub_stop *st)
{
    h->cur = i;
    h->pos[i].stop = *st;
    deliver(h, st);
}

static struct stub_stop trap_stop(void)
{
    return (struct stub_stop){.tid = 1, .signal = STUB_SIGTRAP};
}

/* The command cannot be done exactly: back to where it started. */
static void refuse(struct stub_history *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void refuse(struct stub_history *h, const char *fmt, ...)
{
    struct stub_stop st = h->r.start_stop;
    size_t start = h->r.start;
    finish(h);
    if (start < h->n && load(h, h->pos[start].snap) == 0)
        h->cur = start;
    st.refused = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st.why, sizeof(st.why), fmt, ap);
    va_end(ap);
    stub_log("%s", st.why);
    stub_machine_deliver(h->m, &st);
}

static void refuse_now(struct stub_history *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Refused before anything ran. */
static void refuse_now(struct stub_history *h, const char *fmt, ...)
{
    struct stub_stop st = h->m->last;
    st.refused = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st.why, sizeof(st.why), fmt, ap);
    va_end(ap);
    stub_log("%s", st.why);
    stub_machine_deliver(h->m, &st);
}

static void diverged(struct stub_history *h, const char *what)
{
    stub_trace("replay diverged: %s", what);
    refuse(h, "cannot go there exactly: the replay %s: the guest does not repeat its run (it "
              "read the TSC or a random number?); kvmstub stays where it was",
           what);
}

/* Steps once, refusing instructions a replay cannot repeat. */
static bool step_checked(struct stub_history *h)
{
    uint8_t insn[16];
    size_t done = 0;
    uint64_t pc = pc_now(h);
    vm_read_linear(cpu0(h), pc, insn, sizeof(insn), &done);
    const char *bad = vm_decode_nondeterministic(insn, done, vm_cpu_mode(cpu0(h)) == VM_MODE_LONG);
    if (bad) {
        refuse(h, "cannot go back exactly past the %s at 0x%llx: its result differs every run",
               bad, (unsigned long long)pc);
        return false;
    }
    run(h, STUB_ACTION_STEP, 0);
    return true;
}

/* One instruction done (a step, or a stop right after one). */
static bool one_insn(const struct stub_machine_stop *ms)
{
    if (ms->failed)
        return false;
    switch (ms->type) {
    case VM_EVENT_STEP:
    case VM_EVENT_WATCH:
    case VM_EVENT_HALT:
    case VM_EVENT_IO:
    case VM_EVENT_BREAKPOINT:
        return true;
    default:
        return false;
    }
}

/* Positions back from i over gdb's edits: the same moment. */
static size_t skip_edits_back(const struct stub_history *h, size_t i)
{
    while (i > 0 && h->pos[i - 1].leave == LEAVE_EDIT)
        i--;
    return i;
}

/* ---- reverse-stepi ---- */

static void revstep_begin(struct stub_history *h, size_t c)
{
    size_t p = c - 1;
    if (load(h, h->pos[p].snap))
        {
        refuse(h, "cannot load a checkpoint");
        return;
    }
    if (h->pos[p].leave == LEAVE_STEP)
        {
        deliver_at(h, p, &(struct stub_stop){.tid = 1, .signal = STUB_SIGTRAP});
        return;
    }
    h->r.job = JOB_REVSTEP;
    h->r.phase = PH_COUNT;
    h->r.span = p;
    h->r.target = c;
    h->r.count = 0;
    step_checked(h);
}

static void revstep_stop(struct stub_history *h, const struct stub_machine_stop *ms)
{
    if (!one_insn(ms))
        {
        diverged(h, "stopped where the recorded run did not");
        return;
    }
    h->r.count++;
    if (h->r.phase == PH_SEEK) {
        if (h->r.count < h->r.want) {
            run(h, STUB_ACTION_STEP, 0);
            return;
        }
        struct vm_snapshot *s;
        if (take(h, &s))
            {
        refuse(h, "cannot take a checkpoint");
        return;
    }
        h->pos[h->r.span].leave = LEAVE_RUN;
        size_t q = insert(h, h->r.span, s, &ms->st, LEAVE_STEP);
        struct stub_stop st = trap_stop();
        {
        deliver_at(h, q, &st);
        return;
    }
    }
    /* Counting towards the span's end. */
    if (at_pos(h, h->r.target)) {
        if (h->r.count == 1)
            {
        deliver_at(h, h->r.span, &(struct stub_stop){.tid = 1, .signal = STUB_SIGTRAP});
        return;
    }
        if (load(h, h->pos[h->r.span].snap))
            {
        refuse(h, "cannot load a checkpoint");
        return;
    }
        h->r.phase = PH_SEEK;
        h->r.want = h->r.count - 1;
        h->r.count = 0;
        run(h, STUB_ACTION_STEP, 0);
        return;
    }
    if (h->r.count % INTERVAL_STEPS == 0) {
        /* A checkpoint on the way: the next reverse-stepi steps from here. */
        struct vm_snapshot *s;
        if (!take(h, &s)) {
            h->pos[h->r.span].leave = LEAVE_RUN;
            h->r.span = insert(h, h->r.span, s, &ms->st, LEAVE_RUN);
            h->r.count = 0;
        }
    }
    step_checked(h);
}

/* ---- reverse-continue ---- */

static void span_begin(struct stub_history *h, size_t p);

static void drop_hits(struct stub_history *h)
{
    vm_snapshot_free(h->r.last_hit);
    vm_snapshot_free(h->r.prev_hit);
    h->r.last_hit = h->r.prev_hit = NULL;
    h->r.hit_at_start = false;
}

static void hit(struct stub_history *h, const struct stub_stop *st, bool watch)
{
    struct vm_snapshot *s;
    if (take(h, &s))
        return;
    vm_snapshot_free(h->r.prev_hit);
    h->r.prev_hit = h->r.last_hit;
    h->r.last_hit = s;
    h->r.hit_stop = *st;
    h->r.hit_watch = watch;
}

static void watch_search(struct stub_history *h)
{
    /* From the hit before (or the span's start) step to the write. */
    h->r.anchor = h->r.prev_hit; /* NULL: the span's start position */
    h->r.prev_hit = NULL;
    if (load(h, h->r.anchor ? h->r.anchor : h->pos[h->r.span].snap))
        {
        refuse(h, "cannot load a checkpoint");
        return;
    }
    h->r.phase = PH_WATCHCOUNT;
    h->r.count = 0;
    temp_bp_clear(h);
    step_checked(h);
}

static void span_done(struct stub_history *h)
{
    uv_timer_stop(&h->watchdog);
    size_t p = h->r.span;
    if (h->r.last_hit && h->r.hit_watch)
        {
        watch_search(h);
        return;
    }
    if (h->r.last_hit) {
        if (load(h, h->r.last_hit))
            {
        refuse(h, "cannot load a checkpoint");
        return;
    }
        struct vm_snapshot *s = h->r.last_hit;
        h->r.last_hit = NULL;
        h->pos[p].leave = LEAVE_RUN;
        size_t q = insert(h, p, s, &h->r.hit_stop, LEAVE_RUN);
        struct stub_stop st = h->r.hit_stop;
        {
        deliver_at(h, q, &st);
        return;
    }
    }
    if (h->r.hit_at_start) {
        if (load(h, h->pos[p].snap))
            {
        refuse(h, "cannot load a checkpoint");
        return;
    }
        struct stub_stop st = h->r.hit_stop;
        {
        deliver_at(h, p, &st);
        return;
    }
    }
    size_t c = skip_edits_back(h, p);
    if (c == 0) {
        if (load(h, h->pos[0].snap))
            {
        refuse(h, "cannot load a checkpoint");
        return;
    }
        struct stub_stop st = trap_stop();
        st.reason = STUB_REASON_HISTORY_BEGIN;
        {
        deliver_at(h, 0, &st);
        return;
    }
    }
    span_begin(h, c - 1);
}

static void span_begin(struct stub_history *h, size_t p)
{
    drop_hits(h);
    if (load(h, h->pos[p].snap))
        {
        refuse(h, "cannot load a checkpoint");
        return;
    }
    h->r.phase = PH_SPAN;
    h->r.span = p;
    h->r.target = p + 1;
    enum stub_bp_kind kind;
    if (user_bp_at(h, h->pos[p].pc, &kind)) {
        /* Resuming steps over a breakpoint under the pc: count it here. */
        h->r.hit_at_start = true;
        h->r.hit_stop = trap_stop();
        h->r.hit_stop.reason =
            kind == STUB_BP_HARDWARE ? STUB_REASON_HWBREAK : STUB_REASON_SWBREAK;
    }
    if (h->pos[p].leave == LEAVE_STEP) {
        step_checked(h);
        return;
    }
    temp_bp_set(h, h->pos[p + 1].pc);
    run(h, STUB_ACTION_CONTINUE, h->pos[p].span_s);
}

static void revcont_stop(struct stub_history *h, const struct stub_machine_stop *ms)
{
    if (h->r.phase == PH_WATCHCOUNT || h->r.phase == PH_WATCHSEEK) {
        if (!one_insn(ms))
            {
        diverged(h, "stopped where the recorded run did not");
        return;
    }
        h->r.count++;
        bool watch = ms->type == VM_EVENT_WATCH;
        if (h->r.phase == PH_WATCHCOUNT) {
            if (!watch) {
                if (at_pos(h, h->r.target))
                    {
        diverged(h, "did not write the watched data again");
        return;
    }
                step_checked(h);
                return;
            }
            h->r.hit_stop = ms->st;
            if (load(h, h->r.anchor ? h->r.anchor : h->pos[h->r.span].snap))
                {
        refuse(h, "cannot load a checkpoint");
        return;
    }
            h->r.want = h->r.count - 1;
            h->r.count = 0;
            h->r.phase = PH_WATCHSEEK;
            if (h->r.want > 0) {
                run(h, STUB_ACTION_STEP, 0);
                return;
            }
        } else if (h->r.count < h->r.want) {
            run(h, STUB_ACTION_STEP, 0);
            return;
        }
        /* Right before the writing instruction. */
        size_t at = h->r.span;
        h->pos[at].leave = LEAVE_RUN;
        if (h->r.anchor) {
            struct vm_snapshot *a = h->r.anchor;
            h->r.anchor = NULL;
            at = insert(h, at, a, &h->r.hit_stop, LEAVE_RUN);
        }
        struct stub_stop st = h->r.hit_stop;
        if (h->r.want == 0)
            {
        deliver_at(h, at, &st);
        return;
    }
        struct vm_snapshot *s;
        if (take(h, &s))
            {
        refuse(h, "cannot take a checkpoint");
        return;
    }
        size_t q = insert(h, at, s, &st, LEAVE_RUN);
        {
        deliver_at(h, q, &st);
        return;
    }
    }

    /* PH_SPAN. A write that ends the span is before here too: going back,
     * it is the first one undone. */
    size_t t = h->r.target;
    if (ms->type == VM_EVENT_WATCH && at_pos(h, t)) {
        hit(h, &ms->st, true);
        span_done(h);
        return;
    }
    if (at_pos(h, t))
        {
        span_done(h);
        return;
    }
    if (h->pos[h->r.span].leave == LEAVE_STEP)
        {
        diverged(h, "of a single step did not reach the recorded state");
        return;
    }
    switch (ms->type) {
    case VM_EVENT_BREAKPOINT:
        if (user_bp_at(h, pc_now(h), NULL))
            hit(h, &ms->st, false);
        break;
    case VM_EVENT_WATCH:
        hit(h, &ms->st, true);
        break;
    case VM_EVENT_IO:
        hit(h, &ms->st, false);
        break;
    case VM_EVENT_INTERRUPTED:
        if (h->r.user_int)
            {
        refuse(h, "interrupted; kvmstub stays where it was");
        return;
    }
        {
        diverged(h, "ran far longer than the recorded run");
        return;
    }
    default:
        stub_trace("replay stop %s at 0x%llx", vm_event_name(ms->type),
                   (unsigned long long)pc_now(h));
        diverged(h, "stopped where the recorded run did not");
        return;
    }
    run(h, STUB_ACTION_CONTINUE, h->pos[h->r.span].span_s);
}

/* ---- forward in the past ---- */

static void go_live(struct stub_history *h, enum stub_action action, uint64_t start, uint64_t end)
{
    finish(h);
    h->pos[h->cur].leave = action == STUB_ACTION_STEP ? LEAVE_STEP : LEAVE_RUN;
    h->run_t0 = uv_hrtime();
    struct stub_resume r = {.count = 1};
    r.threads[0] = (struct stub_thread_action){.action = action, .start = start, .end = end};
    stub_machine_run(h->m, &r);
}

/* Edits are crossed by loading the edited state. */
static int skip_edits_fwd(struct stub_history *h)
{
    while (h->cur + 1 < h->n && h->pos[h->cur].leave == LEAVE_EDIT) {
        if (load(h, h->pos[h->cur + 1].snap))
            return -EIO;
        h->cur++;
    }
    return 0;
}

static bool user_visible(const struct stub_history *h, const struct stub_machine_stop *ms,
                         uint64_t pc)
{
    switch (ms->type) {
    case VM_EVENT_BREAKPOINT:
        return user_bp_at(h, pc, NULL);
    case VM_EVENT_INTERRUPTED:
    case VM_EVENT_SERIAL:
        return false;
    default:
        return true;
    }
}

static void fwd_stop(struct stub_history *h, const struct stub_machine_stop *ms)
{
    size_t c = h->cur;
    uint64_t pc = pc_now(h);
    if (h->r.phase == PH_FWD_STEP) {
        if (!one_insn(ms)) {
            deliver(h, &ms->st); /* a fault: it happened in the past too */
            return;
        }
        if (at_pos(h, c + 1)) {
            h->cur = c + 1;
        } else {
            struct vm_snapshot *s;
            if (take(h, &s))
                {
        refuse(h, "cannot take a checkpoint");
        return;
    }
            h->pos[c].leave = LEAVE_STEP;
            h->cur = insert(h, c, s, &ms->st, LEAVE_RUN);
        }
        if (skip_edits_fwd(h))
            {
        refuse(h, "cannot load a checkpoint");
        return;
    }
        bool more = h->r.fwd == STUB_ACTION_RANGE && ms->type == VM_EVENT_STEP &&
                    pc >= h->r.range_start && pc < h->r.range_end;
        if (more && h->cur + 1 == h->n)
            {
        go_live(h, STUB_ACTION_RANGE, h->r.range_start, h->r.range_end);
        return;
    }
        if (more) {
            step_checked(h);
            return;
        }
        struct stub_stop st = ms->st;
        {
        deliver_at(h, h->cur, &st);
        return;
    }
    }
    /* PH_FWD_RUN */
    if (pc == h->pos[c + 1].pc && at_pos(h, c + 1)) {
        h->cur = c + 1;
        if (skip_edits_fwd(h))
            {
        refuse(h, "cannot load a checkpoint");
        return;
    }
        if (user_visible(h, ms, pc)) {
            struct stub_stop st = ms->st;
            {
        deliver_at(h, h->cur, &st);
        return;
    }
        }
        if (h->cur + 1 == h->n)
            {
        go_live(h, STUB_ACTION_CONTINUE, 0, 0);
        return;
    }
        temp_bp_set(h, h->pos[h->cur + 1].pc);
        run(h, STUB_ACTION_CONTINUE, h->pos[h->cur].span_s);
        return;
    }
    if (ms->type == VM_EVENT_INTERRUPTED && h->r.timed_out && !h->r.user_int)
        {
        diverged(h, "ran far longer than the recorded run");
        return;
    }
    if (!user_visible(h, ms, pc) && !h->r.user_int) {
        run(h, STUB_ACTION_CONTINUE, h->pos[c].span_s);
        return;
    }
    struct vm_snapshot *s;
    if (take(h, &s))
        {
        refuse(h, "cannot take a checkpoint");
        return;
    }
    h->pos[c].leave = LEAVE_RUN;
    size_t q = insert(h, c, s, &ms->st, LEAVE_RUN);
    struct stub_stop st = ms->st;
    if (h->r.user_int) {
        st = trap_stop();
        st.signal = STUB_SIGINT;
    }
    deliver_at(h, q, &st);
}

/* ---- the interface ---- */

int stub_history_create(struct stub_history **out, struct stub_machine *m, uint64_t limit)
{
    struct stub_history *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->m = m;
    h->limit = limit;
    /* Not where replay cannot work (interrupt controllers and timers in
     * KVM): a checkpoint at every stop would cost a Linux guest's RAM in
     * copies for nothing. */
    h->autostart = limit != 0 && !vm_has_irqchip(m->vm);
    uv_timer_init(m->loop, &h->watchdog);
    h->watchdog.data = h;
    *out = h;
    return 0;
}

static void closed(uv_handle_t *t)
{
    free(t->data);
}

void stub_history_free(struct stub_history *h)
{
    if (!h)
        return;
    finish(h);
    clear(h);
    free(h->pos);
    if (!uv_is_closing((uv_handle_t *)&h->watchdog))
        uv_close((uv_handle_t *)&h->watchdog, closed);
}

bool stub_history_recording(const struct stub_history *h)
{
    return h && h->recording;
}

int stub_history_start(struct stub_history *h, char *err, size_t errlen)
{
    if (!h->limit) {
        snprintf(err, errlen, "history is off (--history 0)");
        return -ENOTSUP;
    }
    clear(h);
    struct vm_snapshot *s;
    int r = stub_snapshots_take(h->m->snapshots, &s, err, errlen);
    if (r)
        return r;
    h->n = 0;
    h->cur = 0;
    insert(h, (size_t)-1, s, &h->m->last, LEAVE_NONE);
    h->cur = 0;
    h->recording = true;
    return 0;
}

void stub_history_stop(struct stub_history *h)
{
    if (!h)
        return;
    finish(h);
    clear(h);
    h->recording = false;
}

void stub_history_restart(struct stub_history *h)
{
    if (!h || !h->recording)
        return;
    char err[200];
    if (stub_history_start(h, err, sizeof(err))) {
        stub_log("reverse execution: history stops: %s", err);
        stub_history_stop(h);
    }
}

/* A checkpoint of an edit gdb made before anything runs from here. */
static int commit_edit(struct stub_history *h)
{
    if (!h->edited)
        return 0;
    h->edited = false;
    struct vm_snapshot *s;
    if (take(h, &s)) {
        stub_history_stop(h);
        return -EIO;
    }
    h->pos[h->cur].leave = LEAVE_EDIT;
    h->cur = insert(h, h->cur, s, &h->m->last, LEAVE_NONE);
    return 0;
}

void stub_history_live_stop(struct stub_history *h, const struct stub_stop *st)
{
    if (!h || h->r.job != JOB_NONE)
        return;
    if (!h->recording) {
        char err[256];
        if (h->autostart && stub_history_start(h, err, sizeof(err))) {
            stub_log("reverse execution is not available: %s", err);
            h->autostart = false;
        }
        return;
    }
    struct vm_snapshot *s;
    if (take(h, &s)) {
        stub_log("reverse execution: history stops here");
        stub_history_stop(h);
        return;
    }
    size_t last = h->n - 1;
    h->pos[last].span_s = (double)(uv_hrtime() - h->run_t0) / 1e9;
    h->cur = insert(h, last, s, st, LEAVE_NONE);
    trim(h);
}

int stub_history_resume(struct stub_history *h, const struct stub_resume *r)
{
    if (!h || !h->recording)
        return 0;
    if (commit_edit(h))
        return 0;
    const struct stub_thread_action *a = &r->threads[0];
    if (h->cur + 1 == h->n || h->m->ncpus > 1 || r->count < 1) {
        h->pos[h->cur].leave = a->action == STUB_ACTION_STEP ? LEAVE_STEP : LEAVE_RUN;
        h->run_t0 = uv_hrtime();
        return 0;
    }
    /* In the past: replay towards the present. */
    memset(&h->r, 0, sizeof(h->r));
    h->r.job = JOB_FORWARD;
    h->r.start = h->cur;
    h->r.start_stop = h->m->last;
    h->r.fwd = a->action;
    h->r.range_start = a->start;
    h->r.range_end = a->end;
    if (skip_edits_fwd(h)) {
        finish(h);
        return -EIO;
    }
    if (h->cur + 1 == h->n) {
        finish(h);
        h->pos[h->cur].leave = a->action == STUB_ACTION_STEP ? LEAVE_STEP : LEAVE_RUN;
        h->run_t0 = uv_hrtime();
        return 0;
    }
    if (a->action == STUB_ACTION_CONTINUE) {
        h->r.phase = PH_FWD_RUN;
        temp_bp_set(h, h->pos[h->cur + 1].pc);
        run(h, STUB_ACTION_CONTINUE, h->pos[h->cur].span_s);
    } else {
        h->r.phase = PH_FWD_STEP;
        step_checked(h);
    }
    return 1;
}

bool stub_history_replaying(const struct stub_history *h)
{
    return h && h->r.job != JOB_NONE;
}

void stub_history_replay_stop(struct stub_history *h, const struct stub_machine_stop *ms)
{
    if (ms->failed)
        {
        diverged(h, "failed to run");
        return;
    }
    switch (h->r.job) {
    case JOB_REVSTEP:
        {
        revstep_stop(h, ms);
        return;
    }
    case JOB_REVCONT:
        {
        revcont_stop(h, ms);
        return;
    }
    case JOB_FORWARD:
        {
        fwd_stop(h, ms);
        return;
    }
    case JOB_NONE:
        break;
    }
}

void stub_history_changed(struct stub_history *h)
{
    if (!h || !h->recording)
        return;
    if (h->cur + 1 < h->n) {
        stub_log("reverse execution: gdb changed the machine at a stop in the past; the "
                 "%zu later stops of the history are dropped",
                 h->n - h->cur - 1);
        for (size_t i = h->cur + 1; i < h->n; i++)
            free_pos(h, &h->pos[i]);
        h->n = h->cur + 1;
    }
    h->edited = true;
}

void stub_history_bp(struct stub_history *h, enum stub_bp_kind kind, uint64_t addr, uint64_t len,
                     bool insert_it)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->nbps; i++) {
        if (h->bps[i].kind == kind && h->bps[i].addr == addr && h->bps[i].len == len) {
            if (!insert_it)
                h->bps[i] = h->bps[--h->nbps];
            return;
        }
    }
    if (insert_it && h->nbps < MAX_USER_BPS)
        h->bps[h->nbps++] = (struct user_bp){.kind = kind, .addr = addr, .len = len};
}

void stub_history_interrupt(struct stub_history *h)
{
    if (h && h->r.job != JOB_NONE) {
        h->r.user_int = true;
        stub_machine_interrupt(h->m);
    }
}

int stub_history_reverse(struct stub_history *h, unsigned tid, enum stub_action action)
{
    (void)tid;
    struct vm_snapshots *store;
    char err[200];
    if (!h->recording) {
        refuse_now(h, "no execution history to go back in: %s",
                   h->limit ? "'monitor record start' starts recording" : "--history 0 turned it off");
        return 0;
    }
    if (stub_snapshots_store(h->m->snapshots, &store, err, sizeof(err)) == 0 &&
        store->vm_parts) {
        refuse_now(h, "reverse execution needs the bare board: under KVM the timing of "
                      "interrupts (PIT, LAPIC timer, devices) is not reproducible, so a replay "
                      "would not repeat the recorded run");
        return 0;
    }
    if (h->m->ncpus > 1) {
        refuse_now(h, "reverse execution needs one vCPU: several interleave differently on "
                      "every run");
        return 0;
    }
    if (commit_edit(h))
        return -EIO;
    memset(&h->r, 0, sizeof(h->r));
    h->r.start = h->cur;
    h->r.start_stop = h->m->last;
    size_t c = skip_edits_back(h, h->cur);
    if (c == 0) {
        if (c != h->cur && load(h, h->pos[0].snap))
            return -EIO;
        struct stub_stop st = trap_stop();
        st.reason = STUB_REASON_HISTORY_BEGIN;
        h->cur = 0;
        stub_machine_deliver(h->m, &st);
        return 0;
    }
    if (action == STUB_ACTION_STEP) {
        h->r.job = JOB_REVSTEP;
        revstep_begin(h, c);
    } else {
        h->r.job = JOB_REVCONT;
        span_begin(h, c - 1);
    }
    return 0;
}

int stub_history_command(struct stub_history *h, const char *args, struct stub_text *t)
{
    while (*args == ' ')
        args++;
    char err[256];
    if (strncmp(args, "start", 5) == 0) {
        int r = stub_history_start(h, err, sizeof(err));
        if (r) {
            stub_text_add(t, "cannot record: %s\n", err);
            return r;
        }
        h->autostart = true;
        stub_text_add(t, "recording: reverse execution can go back to here\n");
        return 0;
    }
    if (strncmp(args, "stop", 4) == 0) {
        stub_history_stop(h);
        h->autostart = false;
        stub_text_add(t, "history dropped; 'monitor record start' records again\n");
        return 0;
    }
    if (!*args || strncmp(args, "info", 4) == 0) {
        struct stub_history_stats s;
        stub_history_stats(h, &s);
        if (!h->recording) {
            stub_text_add(t, "not recording ('monitor record start')\n");
            return 0;
        }
        stub_text_add(t,
                      "recording: %llu positions, at %llu%s; checkpoints hold %llu KiB of "
                      "at most %llu\n"
                      "replays: %llu runs, %llu steps, %llu state comparisons (%llu full)\n",
                      (unsigned long long)s.positions, (unsigned long long)s.current,
                      s.current + 1 == s.positions ? " (the present)" : " (in the past)",
                      (unsigned long long)(s.bytes >> 10), (unsigned long long)(h->limit >> 10),
                      (unsigned long long)s.replay_runs, (unsigned long long)s.replay_steps,
                      (unsigned long long)s.compares, (unsigned long long)s.full_compares);
        return 0;
    }
    stub_text_add(t, "usage: monitor record start | stop | info\n");
    return -EINVAL;
}

void stub_history_stats(const struct stub_history *h, struct stub_history_stats *out)
{
    *out = h->stats;
    out->positions = h->n;
    out->current = h->cur;
    out->bytes = 0;
    for (size_t i = 0; i < h->n; i++)
        out->bytes += vm_pagestore_snap_bytes(h->pos[i].snap->ram);
    out->bytes += h->state_bytes;
}
