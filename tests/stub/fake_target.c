/* A target of plain memory (fake_target.h). */
#include "fake_target.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void fake_init(struct fake *f, unsigned nthreads)
{
    memset(f, 0, sizeof(*f));
    f->nthreads = nthreads;
    f->hw_slots = 4;
    f->refuse_reg = -1;
    for (unsigned t = 0; t < FAKE_THREADS; t++) {
        f->mode[t] = VM_MODE_LONG;
        fake_set_reg(f, t + 1, VM_REG_RIP, 0x1000 + t);
        fake_set_reg(f, t + 1, VM_REG_RSP, 0x8000 + 0x100 * t);
        fake_set_reg(f, t + 1, VM_REG_RBP, 0x9000 + 0x100 * t);
    }
    for (unsigned i = 0; i < FAKE_MEM; i++)
        f->mem[i] = (uint8_t)(i * 7 + 3);
    f->last.tid = 1;
    f->last.signal = STUB_SIGTRAP;
}

void fake_set_reg(struct fake *f, unsigned tid, enum vm_reg_id id, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        f->regs[tid - 1][id][i] = (uint8_t)(v >> (8 * i));
}

uint64_t fake_reg(const struct fake *f, unsigned tid, enum vm_reg_id id)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)f->regs[tid - 1][id][i] << (8 * i);
    return v;
}

static bool valid(struct fake *f, unsigned tid)
{
    return tid >= 1 && tid <= f->nthreads;
}

static unsigned threads(void *ctx)
{
    struct fake *f = ctx;
    return f->nthreads;
}

static unsigned regsets(void *ctx)
{
    struct fake *f = ctx;
    return f->regsets;
}

static int thread_info(void *ctx, unsigned tid, struct stub_thread_info *out)
{
    struct fake *f = ctx;
    if (f->running)
        return -EBUSY;
    if (!valid(f, tid))
        return -ESRCH;
    out->mode = f->mode[tid - 1];
    out->halted = f->halted[tid - 1];
    out->wait = f->halted[tid - 1] ? STUB_WAIT_INTERRUPT : STUB_WAIT_NONE;
    return 0;
}

static int reg_read(void *ctx, unsigned tid, enum vm_reg_id id, uint8_t *out, size_t size)
{
    struct fake *f = ctx;
    if (f->running)
        return -EBUSY;
    if (!valid(f, tid) || (unsigned)id >= VM_REG_COUNT || size > 16)
        return -EINVAL;
    memcpy(out, f->regs[tid - 1][id], size);
    return 0;
}

static int reg_write(void *ctx, unsigned tid, enum vm_reg_id id, const uint8_t *in, size_t size)
{
    struct fake *f = ctx;
    if (f->running)
        return -EBUSY;
    if (!valid(f, tid) || (unsigned)id >= VM_REG_COUNT || size > 16 || (int)id == f->refuse_reg)
        return -EINVAL;
    memset(f->regs[tid - 1][id], 0, 16);
    memcpy(f->regs[tid - 1][id], in, size);
    return 0;
}

static int mem_read(void *ctx, unsigned tid, bool phys, uint64_t addr, void *buf, size_t len,
                    size_t *done)
{
    struct fake *f = ctx;
    f->last_phys = phys;
    *done = 0;
    if (f->running)
        return -EBUSY;
    if (!valid(f, tid))
        return -ESRCH;
    if (addr >= FAKE_MEM)
        return -EFAULT;
    size_t n = FAKE_MEM - addr < len ? (size_t)(FAKE_MEM - addr) : len;
    memcpy(buf, f->mem + addr, n);
    *done = n;
    return n < len ? -EFAULT : 0;
}

static int mem_write(void *ctx, unsigned tid, bool phys, uint64_t addr, const void *buf,
                     size_t len)
{
    struct fake *f = ctx;
    f->last_phys = phys;
    if (f->running)
        return -EBUSY;
    if (!valid(f, tid))
        return -ESRCH;
    if (addr >= FAKE_MEM || len > FAKE_MEM - addr)
        return -EFAULT;
    memcpy(f->mem + addr, buf, len);
    return 0;
}

static int bp_insert(void *ctx, unsigned tid, enum stub_bp_kind kind, uint64_t addr, uint64_t len)
{
    struct fake *f = ctx;
    (void)tid;
    if (f->running)
        return -EBUSY;
    if (kind == STUB_BP_HARDWARE) {
        if (!f->hw_slots)
            return -ENOSPC;
        f->hw_slots--;
    }
    if (f->nbps == sizeof(f->bps) / sizeof(f->bps[0]))
        return -ENOSPC;
    f->bps[f->nbps++] = (struct fake_bp){kind, addr, len};
    return 0;
}

static int bp_remove(void *ctx, unsigned tid, enum stub_bp_kind kind, uint64_t addr, uint64_t len)
{
    struct fake *f = ctx;
    (void)tid;
    for (size_t i = 0; i < f->nbps; i++) {
        if (f->bps[i].kind == kind && f->bps[i].addr == addr && f->bps[i].len == len) {
            f->bps[i] = f->bps[--f->nbps];
            if (kind == STUB_BP_HARDWARE)
                f->hw_slots++;
            return 0;
        }
    }
    return -ENOENT;
}

static int resume(void *ctx, const struct stub_resume *r)
{
    struct fake *f = ctx;
    if (f->running)
        return -EBUSY;
    if (f->last.exited)
        return -ESRCH;
    if (f->resume_error)
        return f->resume_error;
    f->last_resume = *r;
    f->resumes++;
    f->running = true;
    return 0;
}

static void interrupt(void *ctx)
{
    struct fake *f = ctx;
    f->interrupts++;
}

static bool running(void *ctx)
{
    struct fake *f = ctx;
    return f->running;
}

static const struct stub_stop *last_stop(void *ctx)
{
    struct fake *f = ctx;
    return &f->last;
}

static void attach(void *ctx, const struct stub_target_listener *l)
{
    struct fake *f = ctx;
    f->listener = *l;
    f->attached = true;
    f->attaches++;
}

static void detach(void *ctx, bool keep_stopped)
{
    struct fake *f = ctx;
    f->detach_kept_stopped = keep_stopped;
    f->attached = false;
    f->detaches++;
    f->nbps = 0;
}

static void pause_output(void *ctx, bool paused)
{
    struct fake *f = ctx;
    f->paused = paused;
    f->pause_calls++;
}

static int monitor(void *ctx, unsigned tid, const char *cmd, struct stub_text *out)
{
    struct fake *f = ctx;
    snprintf(f->monitor_cmd, sizeof(f->monitor_cmd), "%s", cmd);
    f->monitor_tid = tid;
    if (strcmp(cmd, "fail") == 0) {
        stub_text_add(out, "that went wrong\n");
        return -EIO;
    }
    stub_text_add(out, "you said: %s\n", cmd);
    return 0;
}

static void kill_target(void *ctx)
{
    struct fake *f = ctx;
    f->killed = true;
}

static void end_guest(void *ctx)
{
    struct fake *f = ctx;
    f->ended++;
    f->running = false;
    f->last = (struct stub_stop){.tid = 1, .exited = true};
}

static void extended(void *ctx)
{
    struct fake *f = ctx;
    f->extended = true;
}

static int restart(void *ctx)
{
    struct fake *f = ctx;
    f->restarts++;
    f->last = (struct stub_stop){.tid = 1, .signal = STUB_SIGTRAP};
    return 0;
}

static int reverse(void *ctx, unsigned tid, enum stub_action action)
{
    struct fake *f = ctx;
    if (f->running)
        return -EBUSY;
    f->reverses++;
    f->last_reverse = action;
    f->reverse_tid = tid;
    f->running = true;
    return 0;
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

struct stub_target fake_target(struct fake *f)
{
    static struct stub_target_ops forward_only;
    forward_only = ops;
    forward_only.reverse = NULL;
    return (struct stub_target){.ops = f->no_reverse ? &forward_only : &ops, .ctx = f};
}

void fake_stop(struct fake *f, const struct stub_stop *stop)
{
    f->running = false;
    f->last = *stop;
    if (f->attached)
        f->listener.stopped(f->listener.ctx, stop);
}

void fake_output(struct fake *f, const void *data, size_t n)
{
    if (f->attached)
        f->listener.output(f->listener.ctx, data, n);
}
