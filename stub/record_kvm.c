/* Checkpoints of the machine for the record layer (record_kvm.h). A
 * struct stub_checkpoint is a struct vm_snapshot. */
#include "record_kvm.h"

#include "log.h"
#include "snapstore.h"

#include <stdio.h>
#include <string.h>

static struct vm_snapshot *snap_of(const struct stub_checkpoint *cp)
{
    return (struct vm_snapshot *)cp;
}

static const char *nondeterministic(void *ctx)
{
    struct stub_control *m = ctx;
    struct vm_snapshots *store;
    char err[200];
    if (stub_snapstore_store(m->snapstore, &store, err, sizeof(err)) == 0 && store->vm_parts)
        return "reverse execution needs the bare board: under KVM the timing of interrupts "
               "(PIT, LAPIC timer, devices) is not reproducible, so a replay would not repeat "
               "the recorded run";
    if (m->ncpus > 1)
        return "reverse execution needs one vCPU: several interleave differently on every run";
    return NULL;
}

static int take(void *ctx, struct stub_checkpoint **out, char *err, size_t errlen)
{
    struct stub_control *m = ctx;
    struct vm_snapshot *s;
    int r = stub_snapstore_take(m->snapstore, &s, err, errlen);
    if (!r)
        *out = (struct stub_checkpoint *)s;
    return r;
}

static int load(void *ctx, const struct stub_checkpoint *cp, char *err, size_t errlen)
{
    struct stub_control *m = ctx;
    return stub_snapstore_apply(m->snapstore, snap_of(cp), err, errlen);
}

static void drop(void *ctx, struct stub_checkpoint *cp)
{
    (void)ctx;
    vm_snapshot_free(snap_of(cp));
}

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

static uint64_t snap_pc(const struct vm_snapshot *s);

static bool equal(void *ctx, const struct stub_checkpoint *cp)
{
    struct stub_control *m = ctx;
    const struct vm_snapshot *s = snap_of(cp);
    struct vm_snapshot *t;
    char err[200];
    if (stub_snapstore_take(m->snapstore, &t, err, sizeof(err))) {
        stub_log("reverse execution: cannot take a checkpoint: %s", err);
        return false;
    }
    const char *what = NULL;
    if (t->ncpus != s->ncpus)
        what = "the number of vCPUs";
    else if ((what = blobs_differ(t, s)) != NULL)
        ;
    else if (memcmp(&t->vm, &s->vm, sizeof(t->vm)))
        what = "VM state (clock, irqchip, PIT)";
    else if (!ram_equal(t, s, vm_ram_size(m->vm) / 4096))
        what = "RAM";
    for (unsigned i = 0; !what && i < t->ncpus; i++)
        what = cpus_differ(&t->cpus[i], &s->cpus[i]);
    vm_snapshot_free(t);
    if (what)
        stub_trace("checkpoint at 0x%llx not reproduced: %s differ(s)",
                   (unsigned long long)snap_pc(s), what);
    return what == NULL;
}

static const enum vm_reg_id gpr_ids[STUB_RECORD_GPRS] = {
    VM_REG_RAX, VM_REG_RBX, VM_REG_RCX, VM_REG_RDX, VM_REG_RSI, VM_REG_RDI,
    VM_REG_RSP, VM_REG_RBP, VM_REG_R8,  VM_REG_R9,  VM_REG_R10, VM_REG_R11,
    VM_REG_R12, VM_REG_R13, VM_REG_R14, VM_REG_R15, VM_REG_RIP, VM_REG_EFLAGS};

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

static void regs(void *ctx, const struct stub_checkpoint *cp, struct stub_record_regs *out)
{
    struct stub_control *m = ctx;
    _Static_assert(sizeof(struct kvm_regs) == sizeof(out->gpr), "kvm_regs layout");
    if (cp) {
        const struct vm_snapshot *s = snap_of(cp);
        out->pc = snap_pc(s);
        memcpy(out->gpr, &s->cpus[0].regs, sizeof(out->gpr));
        return;
    }
    struct vm_cpu *cpu = stub_control_cpu(m, 1);
    out->pc = 0;
    vm_cpu_linear_pc(cpu, &out->pc);
    for (size_t i = 0; i < STUB_RECORD_GPRS; i++)
        if (vm_reg_get(cpu, gpr_ids[i], &out->gpr[i]))
            out->gpr[i] = ~0ull;
}

static uint64_t own_bytes(void *ctx, const struct stub_checkpoint *cp)
{
    (void)ctx;
    return vm_snapshot_state_bytes(snap_of(cp));
}

static uint64_t page_bytes(void *ctx, const struct stub_checkpoint *cp)
{
    (void)ctx;
    return vm_pagestore_snap_bytes(snap_of(cp)->ram);
}

static uint64_t store_bytes(void *ctx)
{
    struct stub_control *m = ctx;
    struct vm_snapshots *store;
    char err[200];
    if (stub_snapstore_store(m->snapstore, &store, err, sizeof(err)))
        return 0;
    return vm_pagestore_usage(store->ps)->bytes;
}

struct stub_checkpoint_ops stub_record_kvm_checkpoints(struct stub_control *m)
{
    return (struct stub_checkpoint_ops){.nondeterministic = nondeterministic,
                                        .take = take,
                                        .load = load,
                                        .drop = drop,
                                        .equal = equal,
                                        .regs = regs,
                                        .own_bytes = own_bytes,
                                        .page_bytes = page_bytes,
                                        .store_bytes = store_bytes,
                                        .ctx = m};
}
