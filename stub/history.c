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

/* A position: a stop gdb saw, or one found while replaying. A position
 * without a checkpoint (snap NULL) is rebuilt by loading the nearest
 * checkpoint before it and stepping the instructions in between, which are
 * all known (insns of every position on the way). Its registers are kept to
 * check that the replay got there. */
struct pos {
    struct vm_snapshot *snap;
    struct kvm_regs regs; /* as kvm_regs orders them */
    uint64_t pc;          /* linear */
    uint64_t insns;       /* instructions to the next position; 0: not known */
    double span_s;        /* wall time of the live run that left it */
    enum leave leave;
};

enum job {
    JOB_NONE,
    JOB_REVSTEP,
    JOB_REVCONT,
    JOB_FORWARD,
};

enum phase {
    PH_GOTO,       /* stepping from a checkpoint to a position without one */
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
#define GOTO_EVERY 16u
/* While counting a run span, a checkpoint every this many steps. */
#define COUNT_EVERY 1024u
#define MAX_USER_BPS 512u
/* During a live continue a checkpoint every this many ms (the guest is
 * stopped, saved and resumed): reverse-stepi then counts from the last one
 * instead of from where the continue began. The last KICKS_KEPT are kept. */
#define KICK_MS 10u
#define KICKS_KEPT 8u

struct user_bp {
    enum stub_bp_kind kind;
    uint64_t addr, len;
};

typedef void (*then_fn)(struct stub_history *h);

struct stub_history {
    struct stub_machine *m;
    uint64_t limit;
    bool recording;
    bool autostart; /* record from the next stop gdb sees (off after record stop) */
    bool edited; /* gdb changed the state since the current checkpoint */
    bool force_cp; /* the next live stop needs a checkpoint (the step cannot be replayed) */
    unsigned live_steps; /* live steps since the last checkpoint */
    struct pos *pos;
    size_t n, cap, cur;
    uint64_t state_bytes; /* the positions' vm_snapshot_state_bytes() */
    uint64_t run_t0; /* when the live run from the present started (uv_hrtime) */
    struct user_bp bps[MAX_USER_BPS];
    size_t nbps;
    uv_timer_t watchdog;
    struct stub_history_stats stats;
    /* Checkpoints of the live run leaving position kicks_of, oldest first. */
    uv_timer_t kick_timer;
    bool kick_pending;    /* the next interrupted stop is ours */
    bool user_interrupt;  /* ... or the user's Ctrl-C */
    bool interrupt_step;  /* the step after a Ctrl-C's checkpoint runs */
    bool kick_inserting;  /* a kick becomes a position */
    unsigned open_handles; /* timers not closed yet: freed after the last */
    struct stub_resume live; /* what that run does, to resume it */
    struct vm_snapshot *kicks[KICKS_KEPT];
    size_t nkicks, kicks_of;
    /* The reverse or replayed command in progress. */
    struct {
        enum job job;
        enum phase phase;
        size_t start;  /* position it started from: where a refusal goes back to */
        size_t target; /* end position of the span replayed */
        size_t span;   /* start position of the span replayed */
        uint64_t count, want;
        /* PH_GOTO: at instruction g_off past position g_at, going to
         * g_to_off past g_to; then g_then. */
        size_t g_at, g_to;
        uint64_t g_off, g_to_off;
        unsigned g_since; /* steps since the last checkpoint */
        then_fn g_then;
        struct vm_snapshot *anchor; /* a hit snapshot the watch search starts from */
        struct vm_snapshot *last_hit, *prev_hit;
        bool have_hit_off; /* PH_SPANSTEP: the last hit, as an offset into the span */
        uint64_t hit_off;
        struct stub_stop hit_stop;
        bool hit_watch;
        bool hit_at_start;
        struct stub_stop start_stop;
        enum stub_action fwd;
        uint64_t range_start, range_end;
        bool temp_bp;
        uint64_t temp_addr;
        bool timed_out, user_int;
        bool refusing; /* going back to the start after a refusal */
        char why[160];
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

static const enum vm_reg_id reg_ids[] = {
    VM_REG_RAX, VM_REG_RBX, VM_REG_RCX, VM_REG_RDX, VM_REG_RSI, VM_REG_RDI,
    VM_REG_RSP, VM_REG_RBP, VM_REG_R8,  VM_REG_R9,  VM_REG_R10, VM_REG_R11,
    VM_REG_R12, VM_REG_R13, VM_REG_R14, VM_REG_R15, VM_REG_RIP, VM_REG_EFLAGS};

/* The general registers in kvm_regs order (18 64-bit fields). */
static void regs_now(struct stub_history *h, struct kvm_regs *k)
{
    _Static_assert(sizeof(*k) == sizeof(reg_ids) / sizeof(reg_ids[0]) * 8, "kvm_regs layout");
    uint64_t v[sizeof(reg_ids) / sizeof(reg_ids[0])];
    for (size_t i = 0; i < sizeof(reg_ids) / sizeof(reg_ids[0]); i++)
        if (vm_reg_get(cpu0(h), reg_ids[i], &v[i]))
            v[i] = ~0ull;
    memcpy(k, v, sizeof(*k));
}

static bool regs_match(struct stub_history *h, const struct kvm_regs *want)
{
    struct kvm_regs k;
    regs_now(h, &k);
    return memcmp(&k, want, sizeof(k)) == 0;
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

static void drop_kicks(struct stub_history *h)
{
    for (size_t i = 0; i < h->nkicks; i++) {
        h->state_bytes -= vm_snapshot_state_bytes(h->kicks[i]);
        vm_snapshot_free(h->kicks[i]);
    }
    h->nkicks = 0;
}

static void clear(struct stub_history *h)
{
    drop_kicks(h);
    for (size_t i = 0; i < h->n; i++)
        free_pos(h, &h->pos[i]);
    h->n = h->cur = 0;
    h->edited = false;
    h->live_steps = 0;
    h->force_cp = false;
}

/* The linear pc a checkpoint holds (as vm_cpu_linear_pc computes it). */
static uint64_t snap_pc(const struct vm_snapshot *s)
{
    const struct vm_snap_cpu *c = &s->cpus[0];
    bool two = c->parts & VM_SNAP_CPU_SREGS2;
    const struct kvm_segment *cs = two ? &c->sregs2.cs : &c->sregs.cs;
    uint64_t efer = two ? c->sregs2.efer : c->sregs.efer;
    bool long64 = (efer & (1u << 10)) && cs->l;
    return long64 ? c->regs.rip : (uint64_t)(uint32_t)(cs->base + c->regs.rip);
}

/* Gives position i a checkpoint of the machine, which is there now. */
static void attach(struct stub_history *h, size_t i, struct vm_snapshot *s)
{
    h->pos[i].snap = s;
    h->state_bytes += vm_snapshot_state_bytes(s);
}

/* Inserts a position after index `after`: snap's state, or (snap NULL) the
 * machine's as it is now, to be rebuilt by stepping (pos[after].insns must
 * be known then). Returns its index. */
static size_t insert(struct stub_history *h, size_t after, struct vm_snapshot *snap,
                     enum leave leave, uint64_t insns)
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
    struct pos *p = &h->pos[i];
    *p = (struct pos){.leave = leave, .insns = insns};
    if (snap) {
        p->pc = snap_pc(snap);
        p->regs = snap->cpus[0].regs;
        attach(h, i, snap);
    } else {
        p->pc = pc_now(h);
        regs_now(h, &p->regs);
    }
    if (h->cur >= i)
        h->cur++;
    if (h->nkicks && i <= h->kicks_of)
        h->kicks_of++;
    else if (h->nkicks && i == h->kicks_of + 1 && !h->kick_inserting)
        drop_kicks(h); /* which side of the new position they are on is not known */
    if (h->r.job != JOB_NONE) {
        size_t *idx[] = {&h->r.start, &h->r.target, &h->r.span, &h->r.g_at, &h->r.g_to};
        for (size_t k = 0; k < sizeof(idx) / sizeof(idx[0]); k++)
            if (*idx[k] >= i && *idx[k] != (size_t)-1)
                (*idx[k])++;
    }
    return i;
}

/* Splits the span leaving position at after off of its insns instructions
 * (known) with a new position there: the machine's state now, or snap. */
static size_t split(struct stub_history *h, size_t at, uint64_t off, struct vm_snapshot *snap)
{
    struct pos *a = &h->pos[at];
    uint64_t rest = a->insns ? a->insns - off : 0;
    enum leave leave = a->leave;
    a->insns = off;
    a->leave = off == 1 ? LEAVE_STEP : LEAVE_RUN;
    return insert(h, at, snap, rest == 1 ? LEAVE_STEP : leave, rest);
}

static uint64_t held_bytes(struct stub_history *h, struct vm_snapshots *store)
{
    return vm_pagestore_usage(store->ps)->bytes + h->state_bytes + h->cap * sizeof(struct pos);
}

/* Keeps the store within the limit: the oldest positions go first, each
 * with the positions rebuilt from its checkpoint. */
static void trim(struct stub_history *h)
{
    struct vm_snapshots *store;
    char err[200];
    if (stub_snapshots_store(h->m->snapshots, &store, err, sizeof(err)))
        return;
    while (h->n > 2 && held_bytes(h, store) > h->limit) {
        size_t k = 1;
        while (k < h->n && !h->pos[k].snap)
            k++;
        if (k > h->cur || k >= h->n - 1)
            break;
        for (size_t i = 0; i < k; i++)
            free_pos(h, &h->pos[i]);
        if (h->nkicks && h->kicks_of < k)
            drop_kicks(h);
        else if (h->nkicks)
            h->kicks_of -= k;
        memmove(&h->pos[0], &h->pos[k], (h->n - k) * sizeof(h->pos[0]));
        h->n -= k;
        h->cur -= k;
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

static bool any_watch(const struct stub_history *h)
{
    for (size_t i = 0; i < h->nbps; i++)
        if (h->bps[i].kind != STUB_BP_SOFTWARE && h->bps[i].kind != STUB_BP_HARDWARE)
            return true;
    return false;
}

/* The stop gdb gets for its breakpoint at pc, or false when there is none. */
static bool bp_stop_at(const struct stub_history *h, uint64_t pc, struct stub_stop *st)
{
    enum stub_bp_kind kind;
    if (!user_bp_at(h, pc, &kind))
        return false;
    *st = (struct stub_stop){.tid = 1, .signal = STUB_SIGTRAP};
    st->reason = kind == STUB_BP_HARDWARE ? STUB_REASON_HWBREAK : STUB_REASON_SWBREAK;
    return true;
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

/* The first part in which two vCPU states differ, or NULL: named so that a
 * trace says what a replay failed to reproduce. */
static const char *cpus_differ(const struct vm_snap_cpu *a, const struct vm_snap_cpu *b)
{
    if (a->parts != b->parts)
        return "the parts saved";
    if (memcmp(&a->mp, &b->mp, sizeof(a->mp)))
        return "MP state";
    if (memcmp(&a->regs, &b->regs, sizeof(a->regs)))
        return "general registers";
    if ((a->parts & VM_SNAP_CPU_SREGS2) ? memcmp(&a->sregs2, &b->sregs2, sizeof(a->sregs2))
                                        : memcmp(&a->sregs, &b->sregs, sizeof(a->sregs)))
        return "system registers";
    if ((a->parts & VM_SNAP_CPU_XSAVE)
            ? (a->xsave_size != b->xsave_size || memcmp(a->xsave, b->xsave, a->xsave_size))
            : memcmp(&a->fpu, &b->fpu, sizeof(a->fpu)))
        return "FPU/XSAVE state";
    if (memcmp(&a->xcrs, &b->xcrs, sizeof(a->xcrs)))
        return "XCRs";
    if (memcmp(&a->debugregs, &b->debugregs, sizeof(a->debugregs)))
        return "debug registers";
    if (memcmp(&a->events, &b->events, sizeof(a->events)))
        return "pending events";
    if (a->nmsrs != b->nmsrs)
        return "the MSRs saved";
    const char *msr = NULL;
    for (uint32_t i = 0; i < a->nmsrs; i++) {
        /* Clocks run on while the guest is stopped: the TSC, its deadline,
         * Hyper-V's reference counter and VP runtime (which KVM lists when the host
         * offers Hyper-V enlightenments, as an emulated SVM host does) are
         * not part of its state for this purpose (a guest that reads them
         * is caught elsewhere). */
        uint32_t idx = a->msrs[i].index;
        if (idx == 0x10 || idx == 0x6e0 || idx == 0x40000010 || idx == 0x40000020)
            continue;
        if (a->msrs[i].index != b->msrs[i].index || a->msrs[i].data != b->msrs[i].data) {
            stub_trace("MSR 0x%x: 0x%llx, checkpoint 0x%llx", a->msrs[i].index,
                       (unsigned long long)a->msrs[i].data, (unsigned long long)b->msrs[i].data);
            msr = "an MSR";
        }
    }
    return msr;
}

static const char *blobs_differ(const struct vm_snapshot *a, const struct vm_snapshot *b)
{
    for (size_t i = 0; i < a->nblobs; i++) {
        if (strcmp(a->blobs[i].name, "stub") == 0)
            continue; /* what gdb was told, not the machine */
        const struct vm_snapshot_blob *o = vm_snapshot_blob(b, a->blobs[i].name);
        if (!o || o->len != a->blobs[i].len || memcmp(o->data, a->blobs[i].data, o->len))
            return a->blobs[i].name;
    }
    return NULL;
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
 * compared part by part. */
static bool same_as(struct stub_history *h, const struct vm_snapshot *s, uint64_t pc)
{
    h->stats.compares++;
    if (pc_now(h) != pc || !regs_match(h, &s->cpus[0].regs))
        return false;
    h->stats.full_compares++;
    struct vm_snapshot *t;
    if (take(h, &t))
        return false;
    const char *what = NULL;
    if (t->ncpus != s->ncpus)
        what = "the number of vCPUs";
    else if ((what = blobs_differ(t, s)) != NULL)
        ;
    else if (memcmp(&t->vm, &s->vm, sizeof(t->vm)))
        what = "VM state (clock, irqchip, PIT)";
    else if (!ram_equal(t, s, vm_ram_size(h->m->vm) / 4096))
        what = "RAM";
    for (unsigned i = 0; !what && i < t->ncpus; i++)
        what = cpus_differ(&t->cpus[i], &s->cpus[i]);
    vm_snapshot_free(t);
    if (what)
        stub_trace("checkpoint at 0x%llx not reproduced: %s differ(s)", (unsigned long long)pc,
                   what);
    return what == NULL;
}

/* The machine is at position i: the whole state where it has a checkpoint;
 * else the registers, the rest following from the instructions replayed
 * (the caller knows it stepped exactly the way there). */
static bool at_pos(struct stub_history *h, size_t i)
{
    if (h->pos[i].snap)
        return same_as(h, h->pos[i].snap, h->pos[i].pc);
    h->stats.compares++;
    return pc_now(h) == h->pos[i].pc && regs_match(h, &h->pos[i].regs);
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
    deliver(h, st);
}

static struct stub_stop trap_stop(void)
{
    return (struct stub_stop){.tid = 1, .signal = STUB_SIGTRAP};
}

static void goto_pos(struct stub_history *h, size_t j, uint64_t off, then_fn then);

static void refused_back(struct stub_history *h)
{
    struct stub_stop st = h->r.start_stop;
    h->cur = h->r.start;
    st.refused = true;
    memcpy(st.why, h->r.why, sizeof(st.why));
    stub_log("%s", st.why);
    finish(h);
    stub_machine_deliver(h->m, &st);
}

/* The command cannot be done exactly: back to where it started. */
static void refuse(struct stub_history *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void refuse(struct stub_history *h, const char *fmt, ...)
{
    if (h->r.refusing) {
        /* Even the way back failed: what history says is no longer what the
         * machine is. */
        struct stub_stop st = h->r.start_stop;
        st.refused = true;
        snprintf(st.why, sizeof(st.why), "%.90s; kvmstub could not return exactly, so the "
                 "history is dropped",
                 h->r.why);
        stub_log("%s", st.why);
        finish(h);
        clear(h);
        h->recording = false;
        stub_machine_deliver(h->m, &st);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->r.why, sizeof(h->r.why), fmt, ap);
    va_end(ap);
    size_t start = h->r.start;
    uv_timer_stop(&h->watchdog);
    temp_bp_clear(h);
    h->r.refusing = true;
    if (start < h->n && h->pos[start].snap) {
        if (load(h, h->pos[start].snap) == 0)
            h->cur = start;
        refused_back(h);
        return;
    }
    goto_pos(h, start, 0, refused_back);
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

/* The instruction at the pc is one a replay cannot repeat: its name. */
static const char *nondeterministic_here(struct stub_history *h)
{
    uint8_t insn[16];
    size_t done = 0;
    vm_read_linear(cpu0(h), pc_now(h), insn, sizeof(insn), &done);
    return vm_decode_nondeterministic(insn, done, vm_cpu_mode(cpu0(h)) == VM_MODE_LONG);
}

/* Steps once, refusing instructions a replay cannot repeat. */
static bool step_checked(struct stub_history *h)
{
    const char *bad = nondeterministic_here(h);
    if (bad) {
        refuse(h, "cannot go back exactly past the %s at 0x%llx: its result differs every run",
               bad, (unsigned long long)pc_now(h));
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

/* ---- rebuilding a position: load the checkpoint before, step ---- */

static size_t base_of(const struct stub_history *h, size_t j)
{
    while (!h->pos[j].snap)
        j--;
    return j;
}

static void goto_next(struct stub_history *h)
{
    if (h->r.g_at == h->r.g_to && h->r.g_off == h->r.g_to_off) {
        h->r.g_then(h);
        return;
    }
    step_checked(h);
}

/* Goes to off instructions past position j (off < its insns), then calls
 * then with the machine there. Checkpoints are left on the way. */
static void goto_pos(struct stub_history *h, size_t j, uint64_t off, then_fn then)
{
    size_t k = base_of(h, j);
    if (load(h, h->pos[k].snap)) {
        refuse(h, "cannot load a checkpoint");
        return;
    }
    h->r.phase = PH_GOTO;
    h->r.g_at = k;
    h->r.g_off = 0;
    h->r.g_to = j;
    h->r.g_to_off = off;
    h->r.g_since = 0;
    h->r.g_then = then;
    goto_next(h);
}

static void goto_stop(struct stub_history *h, const struct stub_machine_stop *ms)
{
    if (!one_insn(ms)) {
        diverged(h, "stopped where the recorded run did not");
        return;
    }
    h->r.g_off++;
    h->r.g_since++;
    size_t at = h->r.g_at;
    if (h->r.g_off == h->pos[at].insns) {
        h->r.g_at = ++at;
        h->r.g_off = 0;
        if (!at_pos(h, at)) {
            diverged(h, "did not reach the recorded state");
            return;
        }
        if (h->r.g_since >= GOTO_EVERY && !h->pos[at].snap) {
            struct vm_snapshot *s;
            if (take(h, &s) == 0) {
                attach(h, at, s);
                h->r.g_since = 0;
            }
        }
    } else if (h->r.g_since >= GOTO_EVERY) {
        struct vm_snapshot *s;
        if (take(h, &s) == 0) {
            uint64_t off = h->r.g_off;
            bool target_here = h->r.g_to == at;
            size_t q = split(h, at, off, s);
            if (q != at) {
                h->r.g_at = q;
                h->r.g_off = 0;
                if (target_here) {
                    h->r.g_to = q;
                    h->r.g_to_off -= off;
                }
                h->r.g_since = 0;
            }
        }
    }
    goto_next(h);
}

/* At g_to_off past g_to: a position there (without a checkpoint). */
static size_t goto_here(struct stub_history *h)
{
    if (h->r.g_to_off == 0)
        return h->r.g_to;
    return split(h, h->r.g_to, h->r.g_to_off, NULL);
}

/* ---- reverse-stepi ---- */

static void revstep_arrived(struct stub_history *h)
{
    deliver_at(h, goto_here(h), &(struct stub_stop){.tid = 1, .signal = STUB_SIGTRAP});
}

static void revstep_begin(struct stub_history *h, size_t c);

static void revstep_count(struct stub_history *h)
{
    h->r.phase = PH_COUNT;
    h->r.count = 0;
    step_checked(h);
}

static void revstep_begin(struct stub_history *h, size_t c)
{
    size_t p = c - 1;
    h->r.job = JOB_REVSTEP;
    h->r.span = p;
    h->r.target = c;
    if (h->pos[p].insns) {
        goto_pos(h, p, h->pos[p].insns - 1, revstep_arrived);
        return;
    }
    if (h->nkicks && h->kicks_of == p) {
        /* The last checkpoint of that run becomes a position: counting
         * starts there. */
        struct vm_snapshot *k = h->kicks[--h->nkicks];
        h->state_bytes -= vm_snapshot_state_bytes(k);
        h->kick_inserting = true;
        p = insert(h, p, k, LEAVE_RUN, 0);
        h->kick_inserting = false;
        h->r.span = p;
        h->r.target = c = p + 1;
    }
    /* A run of unknown length (its end has a checkpoint): count it once. */
    goto_pos(h, p, 0, revstep_count);
}

static void revstep_stop(struct stub_history *h, const struct stub_machine_stop *ms)
{
    if (!one_insn(ms)) {
        diverged(h, "stopped where the recorded run did not");
        return;
    }
    h->r.count++;
    if (at_pos(h, h->r.target)) {
        h->pos[h->r.span].insns = h->r.count;
        h->pos[h->r.span].leave = h->r.count == 1 ? LEAVE_STEP : LEAVE_RUN;
        revstep_begin(h, h->r.target);
        return;
    }
    if (h->r.count % COUNT_EVERY == 0) {
        /* A checkpoint on the way: the rest is counted from here. */
        struct vm_snapshot *s;
        if (!take(h, &s)) {
            h->pos[h->r.span].insns = h->r.count;
            h->r.span = split(h, h->r.span, h->r.count, s);
            h->r.count = 0;
        }
    }
    step_checked(h);
}

/* ---- reverse-continue ---- */

static void span_begin(struct stub_history *h, size_t p);
static void revcont_from(struct stub_history *h, size_t c);

static void drop_hits(struct stub_history *h)
{
    vm_snapshot_free(h->r.last_hit);
    vm_snapshot_free(h->r.prev_hit);
    h->r.last_hit = h->r.prev_hit = NULL;
    h->r.hit_at_start = false;
    h->r.have_hit_off = false;
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

static void watch_count(struct stub_history *h)
{
    h->r.phase = PH_WATCHCOUNT;
    h->r.count = 0;
    temp_bp_clear(h);
    step_checked(h);
}

static void watch_search(struct stub_history *h)
{
    /* From the hit before (or the span's start) step to the write. */
    h->r.anchor = h->r.prev_hit; /* NULL: the span's start position */
    h->r.prev_hit = NULL;
    if (!h->r.anchor) {
        goto_pos(h, h->r.span, 0, watch_count);
        return;
    }
    if (load(h, h->r.anchor)) {
        refuse(h, "cannot load a checkpoint");
        return;
    }
    watch_count(h);
}

static void deliver_hit(struct stub_history *h)
{
    struct stub_stop st = h->r.hit_stop;
    deliver_at(h, goto_here(h), &st);
}

static void span_done(struct stub_history *h)
{
    uv_timer_stop(&h->watchdog);
    size_t p = h->r.span;
    if (h->r.last_hit && h->r.hit_watch) {
        watch_search(h);
        return;
    }
    if (h->r.last_hit) {
        if (load(h, h->r.last_hit)) {
            refuse(h, "cannot load a checkpoint");
            return;
        }
        struct vm_snapshot *s = h->r.last_hit;
        h->r.last_hit = NULL;
        h->pos[p].leave = LEAVE_RUN;
        size_t q = insert(h, p, s, LEAVE_RUN, 0);
        struct stub_stop st = h->r.hit_stop;
        deliver_at(h, q, &st);
        return;
    }
    if (h->r.have_hit_off) {
        goto_pos(h, p, h->r.hit_off, deliver_hit);
        return;
    }
    if (h->r.hit_at_start) {
        goto_pos(h, p, 0, deliver_hit);
        return;
    }
    revcont_from(h, skip_edits_back(h, p));
}

static void span_run(struct stub_history *h)
{
    size_t p = h->r.span;
    if (h->pos[p].insns) {
        h->r.phase = PH_SPANSTEP;
        h->r.count = 0;
        h->r.want = h->pos[p].insns;
        step_checked(h);
        return;
    }
    h->r.phase = PH_SPAN;
    temp_bp_set(h, h->pos[p + 1].pc);
    run(h, STUB_ACTION_CONTINUE, h->pos[p].span_s);
}

static void span_begin(struct stub_history *h, size_t p)
{
    drop_hits(h);
    h->r.span = p;
    h->r.target = p + 1;
    /* Resuming steps over a breakpoint under the pc: count it here. */
    h->r.hit_at_start = bp_stop_at(h, h->pos[p].pc, &h->r.hit_stop);
    goto_pos(h, p, 0, span_run);
}

/* Goes back from position c (edits skipped) to the last hit before it. */
static void revcont_from(struct stub_history *h, size_t c)
{
    bool watch = any_watch(h);
    for (;;) {
        if (c == 0) {
            if (load(h, h->pos[0].snap)) {
                refuse(h, "cannot load a checkpoint");
                return;
            }
            struct stub_stop st = trap_stop();
            st.reason = STUB_REASON_HISTORY_BEGIN;
            deliver_at(h, 0, &st);
            return;
        }
        size_t p = c - 1;
        if (watch || h->pos[p].insns != 1) {
            span_begin(h, p);
            return;
        }
        /* A single step: without watchpoints only a breakpoint where it
         * starts can stop it, which its pc tells without running. */
        if (bp_stop_at(h, h->pos[p].pc, &h->r.hit_stop)) {
            h->r.span = p;
            goto_pos(h, p, 0, deliver_hit);
            return;
        }
        c = skip_edits_back(h, p);
    }
}

static void spanstep_stop(struct stub_history *h, const struct stub_machine_stop *ms)
{
    if (!one_insn(ms)) {
        diverged(h, "stopped where the recorded run did not");
        return;
    }
    h->r.count++;
    bool end = h->r.count == h->r.want;
    /* Going back, what happened last is met first: a write (stop before
     * the writing instruction), then arriving at a breakpoint. */
    if (ms->type == VM_EVENT_WATCH) {
        h->r.have_hit_off = true;
        h->r.hit_off = h->r.count - 1;
        h->r.hit_stop = ms->st;
    } else if (ms->type == VM_EVENT_IO && !end) {
        h->r.have_hit_off = true;
        h->r.hit_off = h->r.count;
        h->r.hit_stop = ms->st;
    }
    struct stub_stop st;
    if (!end && bp_stop_at(h, pc_now(h), &st)) {
        h->r.have_hit_off = true;
        h->r.hit_off = h->r.count;
        h->r.hit_stop = st;
    }
    if (!end) {
        step_checked(h);
        return;
    }
    if (!at_pos(h, h->r.target)) {
        diverged(h, "did not reach the recorded state");
        return;
    }
    if (h->r.have_hit_off && h->r.hit_off == 0) {
        h->r.have_hit_off = false;
        h->r.hit_at_start = true;
    }
    span_done(h);
}

/* Right before the writing instruction: want instructions past the anchor
 * (or the span's start). */
static void watch_arrived(struct stub_history *h)
{
    size_t at = h->r.span;
    if (h->r.anchor) {
        struct vm_snapshot *a = h->r.anchor;
        h->r.anchor = NULL;
        h->pos[at].leave = LEAVE_RUN;
        h->pos[at].insns = 0;
        at = insert(h, at, a, LEAVE_RUN, 0);
    }
    struct stub_stop st = h->r.hit_stop;
    if (h->r.want == 0) {
        deliver_at(h, at, &st);
        return;
    }
    /* What follows up to the span's end is not counted. */
    h->pos[at].insns = 0;
    size_t q = split(h, at, h->r.want, NULL);
    deliver_at(h, q, &st);
}

static void watch_seek(struct stub_history *h)
{
    h->r.phase = PH_WATCHSEEK;
    h->r.count = 0;
    if (h->r.want == 0) {
        watch_arrived(h);
        return;
    }
    run(h, STUB_ACTION_STEP, 0);
}

static void revcont_stop(struct stub_history *h, const struct stub_machine_stop *ms)
{
    if (h->r.phase == PH_SPANSTEP) {
        spanstep_stop(h, ms);
        return;
    }
    if (h->r.phase == PH_WATCHCOUNT || h->r.phase == PH_WATCHSEEK) {
        if (!one_insn(ms)) {
            diverged(h, "stopped where the recorded run did not");
            return;
        }
        h->r.count++;
        if (h->r.phase == PH_WATCHSEEK) {
            if (h->r.count < h->r.want)
                run(h, STUB_ACTION_STEP, 0);
            else
                watch_arrived(h);
            return;
        }
        if (ms->type != VM_EVENT_WATCH) {
            if (at_pos(h, h->r.target)) {
                diverged(h, "did not write the watched data again");
                return;
            }
            step_checked(h);
            return;
        }
        h->r.hit_stop = ms->st;
        h->r.want = h->r.count - 1;
        if (!h->r.anchor) {
            goto_pos(h, h->r.span, 0, watch_seek);
            return;
        }
        if (load(h, h->r.anchor)) {
            refuse(h, "cannot load a checkpoint");
            return;
        }
        watch_seek(h);
        return;
    }

    /* PH_SPAN. A write that ends the span is before here too: going back,
     * it is the first one undone. */
    size_t t = h->r.target;
    if (ms->type == VM_EVENT_WATCH && at_pos(h, t)) {
        hit(h, &ms->st, true);
        span_done(h);
        return;
    }
    if (at_pos(h, t)) {
        span_done(h);
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
        if (h->r.user_int) {
            refuse(h, "interrupted; kvmstub stays where it was");
            return;
        }
        diverged(h, "ran far longer than the recorded run");
        return;
    default:
        stub_trace("replay stop %s at 0x%llx", vm_event_name(ms->type),
                   (unsigned long long)pc_now(h));
        diverged(h, "stopped where the recorded run did not");
        return;
    }
    run(h, STUB_ACTION_CONTINUE, h->pos[h->r.span].span_s);
}

/* ---- forward in the past ---- */

static void kicks_start(struct stub_history *h, const struct stub_resume *r);

static void go_live(struct stub_history *h, enum stub_action action, uint64_t start, uint64_t end)
{
    finish(h);
    h->pos[h->cur].leave = action == STUB_ACTION_STEP ? LEAVE_STEP : LEAVE_RUN;
    h->pos[h->cur].insns = action == STUB_ACTION_STEP ? 1 : 0;
    h->force_cp = action == STUB_ACTION_STEP && nondeterministic_here(h);
    h->run_t0 = uv_hrtime();
    struct stub_resume r = {.count = 1};
    r.threads[0] = (struct stub_thread_action){.action = action, .start = start, .end = end};
    kicks_start(h, &r);
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

/* A forward continue goes on from the current position. */
static void fwd_run_on(struct stub_history *h)
{
    if (h->cur + 1 == h->n) {
        go_live(h, STUB_ACTION_CONTINUE, 0, 0);
        return;
    }
    size_t c = h->cur;
    if (h->pos[c].insns) {
        h->r.phase = PH_FWD_RUNSTEP;
        h->r.count = 0;
        h->r.want = h->pos[c].insns;
        step_checked(h);
        return;
    }
    h->r.phase = PH_FWD_RUN;
    temp_bp_set(h, h->pos[c + 1].pc);
    run(h, STUB_ACTION_CONTINUE, h->pos[c].span_s);
}

/* A stop of a replayed step that a live run would report: st. */
static bool step_visible(struct stub_history *h, const struct stub_machine_stop *ms,
                         struct stub_stop *st)
{
    switch (ms->type) {
    case VM_EVENT_WATCH:
    case VM_EVENT_IO:
    case VM_EVENT_HALT:
        *st = ms->st;
        return true;
    default:
        return bp_stop_at(h, pc_now(h), st);
    }
}

static void fwd_runstep_stop(struct stub_history *h, const struct stub_machine_stop *ms)
{
    if (!one_insn(ms)) {
        deliver(h, &ms->st); /* a fault: it happened in the past too */
        return;
    }
    size_t c = h->cur;
    h->r.count++;
    struct stub_stop st;
    bool visible = step_visible(h, ms, &st);
    if (h->r.user_int && !visible) {
        visible = true;
        st = trap_stop();
        st.signal = STUB_SIGINT;
    }
    if (h->r.count < h->r.want) {
        if (visible) {
            deliver_at(h, split(h, c, h->r.count, NULL), &st);
            return;
        }
        step_checked(h);
        return;
    }
    if (!at_pos(h, c + 1)) {
        diverged(h, "did not reach the recorded state");
        return;
    }
    h->cur = c + 1;
    if (skip_edits_fwd(h)) {
        refuse(h, "cannot load a checkpoint");
        return;
    }
    if (visible) {
        deliver_at(h, h->cur, &st);
        return;
    }
    fwd_run_on(h);
}

static void fwd_stop(struct stub_history *h, const struct stub_machine_stop *ms)
{
    if (h->r.phase == PH_FWD_RUNSTEP) {
        fwd_runstep_stop(h, ms);
        return;
    }
    size_t c = h->cur;
    uint64_t pc = pc_now(h);
    if (h->r.phase == PH_FWD_STEP) {
        if (!one_insn(ms)) {
            deliver(h, &ms->st); /* a fault: it happened in the past too */
            return;
        }
        if (h->pos[c].insns == 1 || (!h->pos[c].insns && at_pos(h, c + 1))) {
            if (h->pos[c].insns && !at_pos(h, c + 1)) {
                diverged(h, "did not reach the recorded state");
                return;
            }
            h->cur = c + 1;
        } else {
            h->cur = split(h, c, 1, NULL);
        }
        if (skip_edits_fwd(h)) {
            refuse(h, "cannot load a checkpoint");
            return;
        }
        bool more = h->r.fwd == STUB_ACTION_RANGE && ms->type == VM_EVENT_STEP &&
                    pc >= h->r.range_start && pc < h->r.range_end && !h->r.user_int;
        if (more && h->cur + 1 == h->n) {
            go_live(h, STUB_ACTION_RANGE, h->r.range_start, h->r.range_end);
            return;
        }
        if (more) {
            step_checked(h);
            return;
        }
        struct stub_stop st = ms->st;
        if (h->r.user_int && ms->type == VM_EVENT_STEP)
            st.signal = STUB_SIGINT;
        deliver_at(h, h->cur, &st);
        return;
    }
    /* PH_FWD_RUN */
    if (pc == h->pos[c + 1].pc && at_pos(h, c + 1)) {
        h->cur = c + 1;
        if (skip_edits_fwd(h)) {
            refuse(h, "cannot load a checkpoint");
            return;
        }
        if (user_visible(h, ms, pc)) {
            struct stub_stop st = ms->st;
            deliver_at(h, h->cur, &st);
            return;
        }
        fwd_run_on(h);
        return;
    }
    if (ms->type == VM_EVENT_INTERRUPTED && h->r.timed_out && !h->r.user_int) {
        diverged(h, "ran far longer than the recorded run");
        return;
    }
    if (!user_visible(h, ms, pc) && !h->r.user_int) {
        run(h, STUB_ACTION_CONTINUE, h->pos[c].span_s);
        return;
    }
    struct vm_snapshot *s;
    if (take(h, &s)) {
        refuse(h, "cannot take a checkpoint");
        return;
    }
    h->pos[c].leave = LEAVE_RUN;
    size_t q = insert(h, c, s, LEAVE_RUN, 0);
    struct stub_stop st = ms->st;
    if (h->r.user_int) {
        st = trap_stop();
        st.signal = STUB_SIGINT;
    }
    deliver_at(h, q, &st);
}

/* ---- checkpoints during a live continue ---- */

static void kicks_stop(struct stub_history *h);

static void kick_fired(uv_timer_t *t)
{
    struct stub_history *h = t->data;
    /* Not when a stop is asked for already (Ctrl-C, --until, --timeout, a
     * debugger attaching): that stop is theirs. */
    if (!stub_machine_running(h->m)) {
        kicks_stop(h); /* the run ended without a stop for history (the guest exited) */
        return;
    }
    if (!h->recording || h->r.job != JOB_NONE || h->m->interrupting)
        return;
    h->kick_pending = true;
    stub_machine_interrupt(h->m);
}

/* A live run from the present starts: a checkpoint every KICK_MS while it
 * runs, where reverse execution can use them (bare board, one vCPU). */
static void kicks_start(struct stub_history *h, const struct stub_resume *r)
{
    drop_kicks(h);
    h->user_interrupt = false;
    struct vm_snapshots *store;
    char err[200];
    /* Not range steps: a stop requested mid-range ends them as a step. */
    if (r->threads[0].action != STUB_ACTION_CONTINUE || h->m->ncpus > 1 ||
        stub_snapshots_store(h->m->snapshots, &store, err, sizeof(err)) || store->vm_parts)
        return;
    h->live = *r;
    h->kicks_of = h->cur;
    h->kick_pending = false;
    uv_timer_start(&h->kick_timer, kick_fired, KICK_MS, KICK_MS);
}

static void kicks_stop(struct stub_history *h)
{
    uv_timer_stop(&h->kick_timer);
    h->kick_pending = false;
}

static void keep_kick(struct stub_history *h, struct vm_snapshot *s)
{
    if (h->nkicks == KICKS_KEPT) {
        h->state_bytes -= vm_snapshot_state_bytes(h->kicks[0]);
        vm_snapshot_free(h->kicks[0]);
        memmove(&h->kicks[0], &h->kicks[1], (KICKS_KEPT - 1) * sizeof(h->kicks[0]));
        h->nkicks--;
    }
    h->kicks[h->nkicks++] = s;
    h->state_bytes += vm_snapshot_state_bytes(s);
    h->stats.kicks++;
}

bool stub_history_interrupted(struct stub_history *h)
{
    if (!h || !h->user_interrupt)
        return false;
    h->user_interrupt = false;
    if (!h->recording || h->r.job != JOB_NONE || h->kicks_of + 1 != h->n ||
        !uv_is_active((uv_handle_t *)&h->kick_timer) || h->m->ncpus != 1)
        return false;
    struct stub_stop st;
    if (bp_stop_at(h, pc_now(h), &st))
        return false; /* stepping would run over gdb's breakpoint */
    char err[200];
    struct vm_snapshot *s;
    if (stub_snapshots_take(h->m->snapshots, &s, err, sizeof(err)))
        return false;
    keep_kick(h, s);
    kicks_stop(h);
    struct stub_resume r = {.count = 1};
    r.threads[0].action = STUB_ACTION_STEP;
    if (stub_machine_run(h->m, &r))
        return false;
    h->interrupt_step = true;
    return true;
}

bool stub_history_interrupt_stepped(struct stub_history *h, const struct stub_machine_stop *primary)
{
    if (!h || !h->interrupt_step)
        return false;
    h->interrupt_step = false;
    return primary->type == VM_EVENT_STEP && !primary->failed;
}

bool stub_history_kicked(struct stub_history *h, struct stub_machine_stop *primary,
                         bool *have_primary)
{
    if (!h || !h->kick_pending)
        return false;
    h->kick_pending = false;
    struct stub_stop st;
    if (bp_stop_at(h, pc_now(h), &st)) {
        /* Resuming would step over gdb's breakpoint: the run got there. */
        *primary = (struct stub_machine_stop){.st = st, .type = VM_EVENT_BREAKPOINT};
        *have_primary = true;
        return false;
    }
    char err[200];
    struct vm_snapshot *s;
    if (h->recording && h->r.job == JOB_NONE && h->kicks_of + 1 == h->n &&
        stub_snapshots_take(h->m->snapshots, &s, err, sizeof(err)) == 0)
        keep_kick(h, s);
    int r = stub_machine_run(h->m, &h->live);
    if (r) {
        stub_log("reverse execution: cannot resume after a checkpoint: %s", strerror(-r));
        return false;
    }
    return true;
}

void stub_history_user_interrupt(struct stub_history *h)
{
    if (h) {
        h->kick_pending = false;
        h->user_interrupt = true;
    }
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
    uv_timer_init(m->loop, &h->kick_timer);
    h->kick_timer.data = h;
    h->open_handles = 2;
    *out = h;
    return 0;
}

static void closed(uv_handle_t *t)
{
    struct stub_history *h = t->data;
    if (--h->open_handles == 0)
        free(h);
}

void stub_history_free(struct stub_history *h)
{
    if (!h)
        return;
    kicks_stop(h);
    finish(h);
    clear(h);
    free(h->pos);
    h->pos = NULL;
    if (!uv_is_closing((uv_handle_t *)&h->watchdog)) {
        uv_close((uv_handle_t *)&h->watchdog, closed);
        uv_close((uv_handle_t *)&h->kick_timer, closed);
    }
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
    insert(h, (size_t)-1, s, LEAVE_NONE, 0);
    h->cur = 0;
    h->recording = true;
    return 0;
}

void stub_history_stop(struct stub_history *h)
{
    if (!h)
        return;
    kicks_stop(h);
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
    h->pos[h->cur].insns = 0;
    h->cur = insert(h, h->cur, s, LEAVE_NONE, 0);
    return 0;
}

/* Instructions from the last checkpoint to position i, up to LIVE_STEPS. */
static uint64_t since_checkpoint(const struct stub_history *h, size_t i)
{
    uint64_t n = 0;
    while (!h->pos[i].snap && n < LIVE_STEPS)
        n += h->pos[--i].insns;
    return n;
}

void stub_history_live_stop(struct stub_history *h, const struct stub_stop *st)
{
    if (!h || h->r.job != JOB_NONE)
        return;
    kicks_stop(h);
    if (!h->recording) {
        char err[256];
        if (h->autostart && stub_history_start(h, err, sizeof(err))) {
            stub_log("reverse execution is not available: %s", err);
            h->autostart = false;
        }
        return;
    }
    size_t last = h->n - 1;
    struct pos *p = &h->pos[last];
    p->span_s = (double)(uv_hrtime() - h->run_t0) / 1e9;
    /* After a plain step the position is rebuilt by stepping again from the
     * last checkpoint, unless that is too far or the step cannot be
     * repeated; every other stop gets a checkpoint. */
    bool sparse = p->leave == LEAVE_STEP && p->insns == 1 && !h->force_cp && !st->exited &&
                  st->signal == STUB_SIGTRAP && !st->why[0] && h->m->ncpus == 1 &&
                  since_checkpoint(h, last) + 1 < LIVE_STEPS;
    h->force_cp = false;
    struct vm_snapshot *s = NULL;
    if (!sparse && take(h, &s)) {
        stub_log("reverse execution: history stops here");
        stub_history_stop(h);
        return;
    }
    if (!sparse) {
        /* What a step left can be more than one instruction (a fault). */
        if (p->leave == LEAVE_STEP && (st->signal != STUB_SIGTRAP || st->why[0]))
            p->insns = 0;
    }
    /* The end of the run: after every checkpoint taken during it. */
    h->kick_inserting = true;
    h->cur = insert(h, last, s, LEAVE_NONE, 0);
    h->kick_inserting = false;
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
        bool step = a->action == STUB_ACTION_STEP && h->m->ncpus == 1;
        h->pos[h->cur].leave = step ? LEAVE_STEP : LEAVE_RUN;
        h->pos[h->cur].insns = step ? 1 : 0;
        h->force_cp = step && nondeterministic_here(h);
        h->run_t0 = uv_hrtime();
        kicks_start(h, r);
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
        bool step = a->action == STUB_ACTION_STEP;
        h->pos[h->cur].leave = step ? LEAVE_STEP : LEAVE_RUN;
        h->pos[h->cur].insns = step ? 1 : 0;
        h->force_cp = step && nondeterministic_here(h);
        h->run_t0 = uv_hrtime();
        kicks_start(h, r);
        return 0;
    }
    if (a->action == STUB_ACTION_CONTINUE) {
        fwd_run_on(h);
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
    if (ms->failed) {
        diverged(h, "failed to run");
        return;
    }
    if (h->r.user_int && !h->r.refusing && h->r.job != JOB_FORWARD) {
        /* Ctrl-C while stepping a replay (a long span to count). */
        refuse(h, "interrupted; kvmstub stays where it was");
        return;
    }
    if (h->r.phase == PH_GOTO) {
        goto_stop(h, ms);
        return;
    }
    switch (h->r.job) {
    case JOB_REVSTEP:
        revstep_stop(h, ms);
        return;
    case JOB_REVCONT:
        revcont_stop(h, ms);
        return;
    case JOB_FORWARD:
        fwd_stop(h, ms);
        return;
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
        if (h->kicks_of >= h->cur)
            drop_kicks(h);
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
        revstep_begin(h, c);
    } else {
        h->r.job = JOB_REVCONT;
        revcont_from(h, c);
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
                      "replays: %llu runs, %llu steps, %llu state comparisons (%llu full); "
                      "%llu checkpoints during continues\n",
                      (unsigned long long)s.positions, (unsigned long long)s.current,
                      s.current + 1 == s.positions ? " (the present)" : " (in the past)",
                      (unsigned long long)(s.bytes >> 10), (unsigned long long)(h->limit >> 10),
                      (unsigned long long)s.replay_runs, (unsigned long long)s.replay_steps,
                      (unsigned long long)s.compares, (unsigned long long)s.full_compares,
                      (unsigned long long)s.kicks);
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
        if (h->pos[i].snap)
            out->bytes += vm_pagestore_snap_bytes(h->pos[i].snap->ram);
    out->bytes += h->state_bytes + h->cap * sizeof(struct pos);
}
