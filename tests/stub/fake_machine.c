/* The fake target executing (fake_machine.h). */
#include "fake_machine.h"

#include <stdlib.h>
#include <string.h>

/* A continue that meets nothing stops after this many instructions, as an
 * interrupt would. */
#define RUN_LIMIT 100000u

static uint64_t tsc = 1000; /* what rdtsc reads: never the same twice */

static const struct fake_bp *bp_at(const struct fake *f, uint64_t pc)
{
    for (size_t i = 0; i < f->nbps; i++)
        if ((f->bps[i].kind == STUB_BP_SOFTWARE || f->bps[i].kind == STUB_BP_HARDWARE) &&
            f->bps[i].addr == pc)
            return &f->bps[i];
    return NULL;
}

static const struct fake_bp *watch_hit(const struct fake *f, uint64_t addr)
{
    for (size_t i = 0; i < f->nbps; i++)
        if ((f->bps[i].kind == STUB_WATCH_WRITE || f->bps[i].kind == STUB_WATCH_ACCESS) &&
            addr >= f->bps[i].addr && addr < f->bps[i].addr + f->bps[i].len)
            return &f->bps[i];
    return NULL;
}

enum outcome { GO_ON, STOPPED };

/* One instruction of thread 1; fills *st when it stops the run. */
static enum outcome execute(struct fake *f, struct stub_stop *st)
{
    uint64_t pc = fake_reg(f, 1, VM_REG_RIP);
    const uint8_t *m = f->mem;
    *st = (struct stub_stop){.tid = 1, .signal = STUB_SIGTRAP, .cause = STUB_CAUSE_STEP};
    if (pc + 2 > FAKE_MEM) {
        st->signal = STUB_SIGSEGV;
        st->cause = STUB_CAUSE_OTHER;
        return STOPPED;
    }
    uint64_t rax = fake_reg(f, 1, VM_REG_RAX);
    switch (m[pc]) {
    case 0x90:
        pc++;
        break;
    case 0xff:
        if (m[pc + 1] != 0xc0)
            goto fault;
        fake_set_reg(f, 1, VM_REG_RAX, (rax + 1) & 0xffffffffu);
        pc += 2;
        break;
    case 0xaa: {
        uint64_t rdi = fake_reg(f, 1, VM_REG_RDI);
        if (rdi >= FAKE_MEM)
            goto fault;
        f->mem[rdi] = (uint8_t)rax;
        fake_set_reg(f, 1, VM_REG_RDI, rdi + 1);
        fake_set_reg(f, 1, VM_REG_RIP, pc + 1);
        const struct fake_bp *w = watch_hit(f, rdi);
        if (w) {
            st->cause = STUB_CAUSE_WATCH;
            st->reason = w->kind == STUB_WATCH_WRITE ? STUB_REASON_WATCH : STUB_REASON_AWATCH;
            st->addr = rdi;
            return STOPPED;
        }
        return GO_ON;
    }
    case 0xf4:
        fake_set_reg(f, 1, VM_REG_RIP, pc + 1);
        st->cause = STUB_CAUSE_HALT;
        return STOPPED;
    case 0xeb:
        pc = pc + 2 + (uint64_t)(int64_t)(int8_t)m[pc + 1];
        break;
    case 0x0f:
        if (m[pc + 1] != 0x31)
            goto fault;
        fake_set_reg(f, 1, VM_REG_RAX, tsc++);
        pc += 2;
        break;
    default:
        goto fault;
    }
    fake_set_reg(f, 1, VM_REG_RIP, pc);
    return GO_ON;
fault:
    st->signal = STUB_SIGILL;
    st->cause = STUB_CAUSE_OTHER;
    return STOPPED;
}

/* The run the target was last asked for, to its stop. */
static void run_once(struct fake *f)
{
    const struct stub_thread_action *a = &f->last_resume.threads[0];
    struct stub_stop st;
    for (unsigned n = 0;; n++) {
        uint64_t pc = fake_reg(f, 1, VM_REG_RIP);
        /* Resuming steps over a breakpoint under the pc, as KVM does. */
        const struct fake_bp *bp = n ? bp_at(f, pc) : NULL;
        if (bp && a->action == STUB_ACTION_CONTINUE) {
            st = (struct stub_stop){.tid = 1, .signal = STUB_SIGTRAP,
                                    .cause = STUB_CAUSE_BREAKPOINT,
                                    .reason = bp->kind == STUB_BP_HARDWARE ? STUB_REASON_HWBREAK
                                                                           : STUB_REASON_SWBREAK};
            break;
        }
        if (n == RUN_LIMIT) {
            st = (struct stub_stop){.tid = 1, .signal = STUB_SIGINT,
                                    .cause = STUB_CAUSE_INTERRUPTED};
            break;
        }
        if (execute(f, &st) == STOPPED)
            break;
        if (a->action == STUB_ACTION_STEP)
            break;
        pc = fake_reg(f, 1, VM_REG_RIP);
        if (a->action == STUB_ACTION_RANGE && (pc < a->start || pc >= a->end))
            break;
    }
    fake_stop(f, &st);
}

void fake_machine_settle(struct fake *f)
{
    for (unsigned guard = 0; f->running && guard < 1000000; guard++)
        run_once(f);
}

/* --- checkpoints: the whole fake machine --- */

struct checkpoint {
    uint8_t regs[VM_REG_COUNT][16];
    uint8_t mem[FAKE_MEM];
    struct stub_stop last;
};

struct ctx {
    struct fake *f;
    const char **nondeterministic;
};

static const char *nondeterministic(void *ctx)
{
    struct ctx *c = ctx;
    return *c->nondeterministic;
}

static int take(void *ctx, struct stub_checkpoint **out, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct ctx *c = ctx;
    struct checkpoint *cp = malloc(sizeof(*cp));
    if (!cp)
        return -12;
    memcpy(cp->regs, c->f->regs[0], sizeof(cp->regs));
    memcpy(cp->mem, c->f->mem, sizeof(cp->mem));
    cp->last = c->f->last;
    *out = (struct stub_checkpoint *)cp;
    return 0;
}

static int load(void *ctx, const struct stub_checkpoint *p, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct ctx *c = ctx;
    const struct checkpoint *cp = (const struct checkpoint *)p;
    memcpy(c->f->regs[0], cp->regs, sizeof(cp->regs));
    memcpy(c->f->mem, cp->mem, sizeof(cp->mem));
    c->f->last = cp->last;
    return 0;
}

static void drop(void *ctx, struct stub_checkpoint *cp)
{
    (void)ctx;
    free(cp);
}

static bool equal(void *ctx, const struct stub_checkpoint *p)
{
    struct ctx *c = ctx;
    const struct checkpoint *cp = (const struct checkpoint *)p;
    return memcmp(c->f->regs[0], cp->regs, sizeof(cp->regs)) == 0 &&
           memcmp(c->f->mem, cp->mem, sizeof(cp->mem)) == 0;
}

static const enum vm_reg_id gprs[STUB_RECORD_GPRS] = {
    VM_REG_RAX, VM_REG_RBX, VM_REG_RCX, VM_REG_RDX, VM_REG_RSI, VM_REG_RDI,
    VM_REG_RSP, VM_REG_RBP, VM_REG_R8,  VM_REG_R9,  VM_REG_R10, VM_REG_R11,
    VM_REG_R12, VM_REG_R13, VM_REG_R14, VM_REG_R15, VM_REG_RIP, VM_REG_EFLAGS};

static void regs(void *ctx, const struct stub_checkpoint *p, struct stub_record_regs *out)
{
    struct ctx *c = ctx;
    for (size_t i = 0; i < STUB_RECORD_GPRS; i++)
        memcpy(&out->gpr[i],
               p ? ((const struct checkpoint *)p)->regs[gprs[i]] : c->f->regs[0][gprs[i]], 8);
    out->pc = out->gpr[16];
}

static uint64_t own_bytes(void *ctx, const struct stub_checkpoint *cp)
{
    (void)ctx;
    (void)cp;
    return sizeof(struct checkpoint);
}

static uint64_t no_bytes(void *ctx, const struct stub_checkpoint *cp)
{
    (void)ctx;
    (void)cp;
    return 0;
}

static uint64_t store_bytes(void *ctx)
{
    (void)ctx;
    return 0;
}

struct stub_checkpoint_ops fake_machine_checkpoints(struct fake *f, const char **why)
{
    static struct ctx c;
    c = (struct ctx){.f = f, .nondeterministic = why};
    return (struct stub_checkpoint_ops){.nondeterministic = nondeterministic,
                                        .take = take,
                                        .load = load,
                                        .drop = drop,
                                        .equal = equal,
                                        .regs = regs,
                                        .own_bytes = own_bytes,
                                        .page_bytes = no_bytes,
                                        .store_bytes = store_bytes,
                                        .ctx = &c};
}
