#include "snap_cpu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define MAX_XSAVE (1u << 20)
#define MAX_MSRS 4096u

static int check_cap(int fd, long cap)
{
    int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);
    return r < 0 ? 0 : r;
}

static int msr_index_list(int kvm_fd, uint32_t **out, uint32_t *n)
{
    struct kvm_msr_list probe = {.nmsrs = 0};
    if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
        return -errno;
    if (probe.nmsrs > MAX_MSRS)
        return -E2BIG;
    struct kvm_msr_list *l = calloc(1, sizeof(*l) + (probe.nmsrs + 1) * sizeof(uint32_t));
    if (!l)
        return -ENOMEM;
    l->nmsrs = probe.nmsrs;
    if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
        int e = -errno;
        free(l);
        return e;
    }
    uint32_t *idx = malloc((l->nmsrs + 1) * sizeof(uint32_t));
    if (!idx) {
        free(l);
        return -ENOMEM;
    }
    memcpy(idx, l->indices, l->nmsrs * sizeof(uint32_t));
    *n = l->nmsrs;
    *out = idx;
    free(l);
    return 0;
}

static struct kvm_msrs *msrs_alloc(uint32_t n)
{
    struct kvm_msrs *m = calloc(1, sizeof(*m) + (n + 1) * sizeof(struct kvm_msr_entry));
    if (m)
        m->nmsrs = n;
    return m;
}

/* KVM_GET_MSRS and KVM_SET_MSRS stop at the first MSR they refuse and
 * return how many they did: drop that one and try again. Writing each value
 * back finds MSRs that KVM reads but will not take as they read (e.g. a PV
 * MSR the guest's CPUID does not announce). */
static int filter_msrs(int cpu_fd, uint32_t *idx, uint32_t *n, bool try_set)
{
    struct kvm_msrs *m = msrs_alloc(*n);
    if (!m)
        return -ENOMEM;
    int err = 0;
    for (int pass = 0; pass < (try_set ? 2 : 1) && !err; pass++) {
        for (;;) {
            m->nmsrs = *n;
            for (uint32_t i = 0; i < *n; i++)
                m->entries[i] = (struct kvm_msr_entry){.index = idx[i]};
            int r = ioctl(cpu_fd, KVM_GET_MSRS, m);
            if (r >= 0 && (uint32_t)r >= *n && pass == 1)
                r = ioctl(cpu_fd, KVM_SET_MSRS, m);
            if (r < 0) {
                err = -errno;
                break;
            }
            if ((uint32_t)r >= *n)
                break;
            memmove(&idx[r], &idx[r + 1], (*n - (uint32_t)r - 1) * sizeof(uint32_t));
            (*n)--;
        }
    }
    free(m);
    return err;
}

static struct kvm_cpuid2 *get_cpuid(int cpu_fd)
{
    for (uint32_t n = 64; n <= 4096; n *= 2) {
        struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
        if (!c)
            return NULL;
        c->nent = n;
        if (ioctl(cpu_fd, KVM_GET_CPUID2, c) == 0)
            return c;
        free(c);
        if (errno != E2BIG)
            return NULL;
    }
    return NULL;
}

/* The MSRs to save: those of the index list that a vCPU like this one
 * reads and writes back. The write test runs on a scratch VM with the same
 * CPUID (and irqchip), so that it cannot disturb the real one; where no
 * scratch VM can be made, reads on the real vCPU decide. */
static int usable_msrs(int kvm_fd, int cpu_fd, bool lapic, uint32_t *idx, uint32_t *n)
{
    struct kvm_cpuid2 *cpuid = get_cpuid(cpu_fd);
    int vm = cpuid ? ioctl(kvm_fd, KVM_CREATE_VM, 0) : -1;
    int cpu = -1;
    if (vm >= 0 && (!lapic || ioctl(vm, KVM_CREATE_IRQCHIP, 0) == 0))
        cpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (cpu >= 0 && ioctl(cpu, KVM_SET_CPUID2, cpuid) < 0) {
        close(cpu);
        cpu = -1;
    }
    int err = cpu >= 0 ? filter_msrs(cpu, idx, n, true) : 0;
    if (cpu >= 0)
        close(cpu);
    if (vm >= 0)
        close(vm);
    free(cpuid);
    /* Whatever the scratch vCPU accepted must also read on the real one. */
    return err ? err : filter_msrs(cpu_fd, idx, n, false);
}

int vm_snap_cpu_ctx_init(struct vm_snap_cpu_ctx *ctx, int kvm_fd, int vm_fd, int cpu_fd,
                         bool lapic)
{
    memset(ctx, 0, sizeof(*ctx));
    if (!check_cap(kvm_fd, KVM_CAP_MP_STATE))
        return -ENOTSUP;
    if (check_cap(vm_fd, KVM_CAP_SREGS2))
        ctx->parts |= VM_SNAP_CPU_SREGS2;
    if (check_cap(vm_fd, KVM_CAP_XSAVE)) {
        ctx->parts |= VM_SNAP_CPU_XSAVE;
        int size = check_cap(vm_fd, KVM_CAP_XSAVE2);
        ctx->xsave_size = size > (int)sizeof(struct kvm_xsave) ? (uint32_t)size
                                                               : (uint32_t)sizeof(struct kvm_xsave);
        if (ctx->xsave_size > MAX_XSAVE)
            return -E2BIG;
    }
    if (check_cap(vm_fd, KVM_CAP_XCRS))
        ctx->parts |= VM_SNAP_CPU_XCRS;
    if (check_cap(vm_fd, KVM_CAP_DEBUGREGS))
        ctx->parts |= VM_SNAP_CPU_DEBUGREGS;
    if (check_cap(vm_fd, KVM_CAP_VCPU_EVENTS))
        ctx->parts |= VM_SNAP_CPU_EVENTS;
    if (lapic)
        ctx->parts |= VM_SNAP_CPU_LAPIC;
    ctx->kvmclock_ctrl = check_cap(vm_fd, KVM_CAP_KVMCLOCK_CTRL) > 0;
    int err = msr_index_list(kvm_fd, &ctx->msrs, &ctx->nmsrs);
    if (!err)
        err = usable_msrs(kvm_fd, cpu_fd, lapic, ctx->msrs, &ctx->nmsrs);
    if (err)
        vm_snap_cpu_ctx_free(ctx);
    return err;
}

void vm_snap_cpu_ctx_free(struct vm_snap_cpu_ctx *ctx)
{
    free(ctx->msrs);
    memset(ctx, 0, sizeof(*ctx));
}

void vm_snap_cpu_free(struct vm_snap_cpu *s)
{
    free(s->xsave);
    free(s->msrs);
    memset(s, 0, sizeof(*s));
}

static int io(int fd, unsigned long req, void *arg)
{
    return ioctl(fd, req, arg) < 0 ? -errno : 0;
}

int vm_snap_cpu_save(const struct vm_snap_cpu_ctx *ctx, int cpu_fd, struct vm_snap_cpu *out)
{
    memset(out, 0, sizeof(*out));
    out->parts = ctx->parts;
    /* KVM_GET_MP_STATE first: it makes KVM take in pending INIT/SIPI, which
     * changes the registers read next. */
    int err = io(cpu_fd, KVM_GET_MP_STATE, &out->mp);
    if (!err)
        err = io(cpu_fd, KVM_GET_REGS, &out->regs);
    if (!err)
        err = ctx->parts & VM_SNAP_CPU_SREGS2 ? io(cpu_fd, KVM_GET_SREGS2, &out->sregs2)
                                              : io(cpu_fd, KVM_GET_SREGS, &out->sregs);
    if (!err && (ctx->parts & VM_SNAP_CPU_XSAVE)) {
        out->xsave_size = ctx->xsave_size;
        out->xsave = calloc(1, ctx->xsave_size);
        if (!out->xsave)
            err = -ENOMEM;
        else
            err = io(cpu_fd,
                     ctx->xsave_size > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE,
                     out->xsave);
    } else if (!err) {
        err = io(cpu_fd, KVM_GET_FPU, &out->fpu);
    }
    if (!err && (ctx->parts & VM_SNAP_CPU_XCRS))
        err = io(cpu_fd, KVM_GET_XCRS, &out->xcrs);
    if (!err && (ctx->parts & VM_SNAP_CPU_DEBUGREGS))
        err = io(cpu_fd, KVM_GET_DEBUGREGS, &out->debugregs);
    if (!err && (ctx->parts & VM_SNAP_CPU_LAPIC))
        err = io(cpu_fd, KVM_GET_LAPIC, &out->lapic);
    if (!err && ctx->nmsrs) {
        struct kvm_msrs *m = msrs_alloc(ctx->nmsrs);
        out->msrs = calloc(ctx->nmsrs, sizeof(*out->msrs));
        if (!m || !out->msrs) {
            err = -ENOMEM;
        } else {
            for (uint32_t i = 0; i < ctx->nmsrs; i++)
                m->entries[i].index = ctx->msrs[i];
            int r = ioctl(cpu_fd, KVM_GET_MSRS, m);
            if (r < 0)
                err = -errno;
            else if ((uint32_t)r != ctx->nmsrs)
                err = -EIO; /* accepted at probe time, refused now */
            else
                memcpy(out->msrs, m->entries, ctx->nmsrs * sizeof(*out->msrs));
            out->nmsrs = ctx->nmsrs;
        }
        free(m);
    }
    if (!err && (ctx->parts & VM_SNAP_CPU_EVENTS))
        err = io(cpu_fd, KVM_GET_VCPU_EVENTS, &out->events);
    if (err)
        vm_snap_cpu_free(out);
    return err;
}

int vm_snap_cpu_check(const struct vm_snap_cpu_ctx *ctx, const struct vm_snap_cpu *s, char *err,
                      size_t errlen)
{
    if (s->parts != ctx->parts) {
        snprintf(err, errlen,
                 "the saved vCPU state has parts 0x%x but this KVM and board give 0x%x "
                 "(sregs2, xsave, xcrs, debugregs, lapic, events): it comes from another "
                 "host or board",
                 s->parts, ctx->parts);
        return -EINVAL;
    }
    if ((s->parts & VM_SNAP_CPU_XSAVE) && s->xsave_size != ctx->xsave_size) {
        snprintf(err, errlen,
                 "the saved XSAVE area has %u bytes but this KVM uses %u: it comes from a host "
                 "with other CPU features",
                 s->xsave_size, ctx->xsave_size);
        return -EINVAL;
    }
    for (uint32_t i = 0; i < s->nmsrs; i++) {
        bool known = false;
        for (uint32_t j = 0; j < ctx->nmsrs && !known; j++)
            known = ctx->msrs[j] == s->msrs[i].index;
        if (!known) {
            snprintf(err, errlen,
                     "the saved state has MSR 0x%x, which this KVM does not accept: it comes "
                     "from another host",
                     s->msrs[i].index);
            return -EINVAL;
        }
    }
    return 0;
}

int vm_snap_cpu_restore(const struct vm_snap_cpu_ctx *ctx, int cpu_fd, const struct vm_snap_cpu *s,
                        char *err, size_t errlen)
{
    int r = vm_snap_cpu_check(ctx, s, err, errlen);
    if (r)
        return r;
    const char *what = "KVM_SET_MP_STATE";
    struct kvm_mp_state mp = s->mp;
    r = io(cpu_fd, KVM_SET_MP_STATE, &mp);
    if (!r) {
        struct kvm_regs regs = s->regs;
        what = "KVM_SET_REGS";
        r = io(cpu_fd, KVM_SET_REGS, &regs);
    }
    if (!r && (s->parts & VM_SNAP_CPU_SREGS2)) {
        struct kvm_sregs2 sr = s->sregs2;
        what = "KVM_SET_SREGS2";
        r = io(cpu_fd, KVM_SET_SREGS2, &sr);
    } else if (!r) {
        struct kvm_sregs sr = s->sregs;
        what = "KVM_SET_SREGS";
        r = io(cpu_fd, KVM_SET_SREGS, &sr);
    }
    if (!r && (s->parts & VM_SNAP_CPU_XSAVE)) {
        what = "KVM_SET_XSAVE";
        r = io(cpu_fd, KVM_SET_XSAVE, s->xsave);
    } else if (!r) {
        struct kvm_fpu fpu = s->fpu;
        what = "KVM_SET_FPU";
        r = io(cpu_fd, KVM_SET_FPU, &fpu);
    }
    if (!r && (s->parts & VM_SNAP_CPU_XCRS)) {
        struct kvm_xcrs x = s->xcrs;
        what = "KVM_SET_XCRS";
        r = io(cpu_fd, KVM_SET_XCRS, &x);
    }
    if (!r && (s->parts & VM_SNAP_CPU_DEBUGREGS)) {
        struct kvm_debugregs d = s->debugregs;
        what = "KVM_SET_DEBUGREGS";
        r = io(cpu_fd, KVM_SET_DEBUGREGS, &d);
    }
    if (!r && (s->parts & VM_SNAP_CPU_LAPIC)) {
        /* Before the MSRs, so that TSC_DEADLINE lands in a LAPIC that is
         * already in TSC-deadline mode. */
        struct kvm_lapic_state l = s->lapic;
        what = "KVM_SET_LAPIC";
        r = io(cpu_fd, KVM_SET_LAPIC, &l);
    }
    if (r) {
        snprintf(err, errlen, "%s failed: %s", what, strerror(-r));
        return r;
    }
    int msr_err = 0;
    if (s->nmsrs) {
        struct kvm_msrs *m = msrs_alloc(s->nmsrs);
        if (!m)
            return -ENOMEM;
        uint32_t done = 0;
        while (done < s->nmsrs) {
            m->nmsrs = s->nmsrs - done;
            memcpy(m->entries, s->msrs + done, m->nmsrs * sizeof(*s->msrs));
            int n = ioctl(cpu_fd, KVM_SET_MSRS, m);
            if (n < 0) {
                r = -errno;
                snprintf(err, errlen, "KVM_SET_MSRS failed: %s", strerror(errno));
                free(m);
                return r;
            }
            done += (uint32_t)n;
            if (done < s->nmsrs) {
                if (!msr_err)
                    snprintf(err, errlen, "KVM refused the saved value 0x%llx of MSR 0x%x",
                             (unsigned long long)s->msrs[done].data, s->msrs[done].index);
                msr_err = -EIO;
                done++; /* skip it, put back the rest */
            }
        }
        free(m);
    }
    if (s->parts & VM_SNAP_CPU_EVENTS) {
        struct kvm_vcpu_events ev = s->events;
        /* GET does not set these, but the saved values must be applied. */
        ev.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
        r = io(cpu_fd, KVM_SET_VCPU_EVENTS, &ev);
        if (r) {
            snprintf(err, errlen, "KVM_SET_VCPU_EVENTS failed: %s", strerror(-r));
            return r;
        }
    }
    if (ctx->kvmclock_ctrl)
        ioctl(cpu_fd, KVM_KVMCLOCK_CTRL, 0); /* EINVAL: the guest has no kvm-clock */
    return msr_err;
}

int vm_snap_cpu_copy(const struct vm_snap_cpu *from, struct vm_snap_cpu *to)
{
    *to = *from;
    to->xsave = NULL;
    to->msrs = NULL;
    if (from->xsave && !(to->xsave = malloc(from->xsave_size)))
        goto nomem;
    if (from->xsave)
        memcpy(to->xsave, from->xsave, from->xsave_size);
    if (from->nmsrs && !(to->msrs = malloc(from->nmsrs * sizeof(*from->msrs))))
        goto nomem;
    if (from->nmsrs)
        memcpy(to->msrs, from->msrs, from->nmsrs * sizeof(*from->msrs));
    return 0;
nomem:
    vm_snap_cpu_free(to);
    return -ENOMEM;
}

/* --- encoding ------------------------------------------------------------- */

#define ENC_MAGIC 0x53555043u /* "CPUS" */
#define ENC_HEAD 20u          /* magic, parts, xsave_size, nmsrs, reserved */

static size_t enc_size(unsigned parts, uint32_t xsave_size, uint32_t nmsrs)
{
    size_t n = ENC_HEAD + sizeof(struct kvm_mp_state) + sizeof(struct kvm_regs);
    n += parts & VM_SNAP_CPU_SREGS2 ? sizeof(struct kvm_sregs2) : sizeof(struct kvm_sregs);
    n += parts & VM_SNAP_CPU_XSAVE ? xsave_size : sizeof(struct kvm_fpu);
    if (parts & VM_SNAP_CPU_XCRS)
        n += sizeof(struct kvm_xcrs);
    if (parts & VM_SNAP_CPU_DEBUGREGS)
        n += sizeof(struct kvm_debugregs);
    if (parts & VM_SNAP_CPU_LAPIC)
        n += sizeof(struct kvm_lapic_state);
    if (parts & VM_SNAP_CPU_EVENTS)
        n += sizeof(struct kvm_vcpu_events);
    return n + (size_t)nmsrs * sizeof(struct kvm_msr_entry);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int vm_snap_cpu_encode(const struct vm_snap_cpu *s, uint8_t **buf, size_t *len)
{
    size_t n = enc_size(s->parts, s->xsave_size, s->nmsrs);
    uint8_t *b = calloc(1, n), *p = b + ENC_HEAD;
    if (!b)
        return -ENOMEM;
    put32(b, ENC_MAGIC);
    put32(b + 4, s->parts);
    put32(b + 8, s->parts & VM_SNAP_CPU_XSAVE ? s->xsave_size : 0);
    put32(b + 12, s->nmsrs);
#define PUT(x)                                                                                     \
    do {                                                                                           \
        memcpy(p, &(x), sizeof(x));                                                                \
        p += sizeof(x);                                                                            \
    } while (0)
    PUT(s->mp);
    PUT(s->regs);
    if (s->parts & VM_SNAP_CPU_SREGS2)
        PUT(s->sregs2);
    else
        PUT(s->sregs);
    if (s->parts & VM_SNAP_CPU_XSAVE) {
        memcpy(p, s->xsave, s->xsave_size);
        p += s->xsave_size;
    } else {
        PUT(s->fpu);
    }
    if (s->parts & VM_SNAP_CPU_XCRS)
        PUT(s->xcrs);
    if (s->parts & VM_SNAP_CPU_DEBUGREGS)
        PUT(s->debugregs);
    if (s->parts & VM_SNAP_CPU_LAPIC)
        PUT(s->lapic);
    if (s->parts & VM_SNAP_CPU_EVENTS)
        PUT(s->events);
#undef PUT
    if (s->nmsrs)
        memcpy(p, s->msrs, s->nmsrs * sizeof(*s->msrs));
    *buf = b;
    *len = n;
    return 0;
}

int vm_snap_cpu_decode(const uint8_t *buf, size_t len, struct vm_snap_cpu *out)
{
    memset(out, 0, sizeof(*out));
    if (len < ENC_HEAD || get32(buf) != ENC_MAGIC || get32(buf + 16) != 0)
        return -EINVAL;
    unsigned parts = get32(buf + 4);
    uint32_t xsave_size = get32(buf + 8), nmsrs = get32(buf + 12);
    if (parts & ~(unsigned)VM_SNAP_CPU_ALL_PARTS || nmsrs > MAX_MSRS)
        return -EINVAL;
    if (parts & VM_SNAP_CPU_XSAVE) {
        if (xsave_size < sizeof(struct kvm_xsave) || xsave_size > MAX_XSAVE || xsave_size % 4)
            return -EINVAL;
    } else if (xsave_size) {
        return -EINVAL;
    }
    if (len != enc_size(parts, xsave_size, nmsrs))
        return -EINVAL;
    out->parts = parts;
    out->xsave_size = xsave_size;
    out->nmsrs = nmsrs;
    if (xsave_size && !(out->xsave = malloc(xsave_size)))
        return -ENOMEM;
    if (nmsrs && !(out->msrs = malloc(nmsrs * sizeof(*out->msrs)))) {
        vm_snap_cpu_free(out);
        return -ENOMEM;
    }
    const uint8_t *p = buf + ENC_HEAD;
#define GET(x)                                                                                     \
    do {                                                                                           \
        memcpy(&(x), p, sizeof(x));                                                                \
        p += sizeof(x);                                                                            \
    } while (0)
    GET(out->mp);
    GET(out->regs);
    if (parts & VM_SNAP_CPU_SREGS2)
        GET(out->sregs2);
    else
        GET(out->sregs);
    if (parts & VM_SNAP_CPU_XSAVE) {
        memcpy(out->xsave, p, xsave_size);
        p += xsave_size;
    } else {
        GET(out->fpu);
    }
    if (parts & VM_SNAP_CPU_XCRS)
        GET(out->xcrs);
    if (parts & VM_SNAP_CPU_DEBUGREGS)
        GET(out->debugregs);
    if (parts & VM_SNAP_CPU_LAPIC)
        GET(out->lapic);
    if (parts & VM_SNAP_CPU_EVENTS)
        GET(out->events);
#undef GET
    if (nmsrs)
        memcpy(out->msrs, p, nmsrs * sizeof(*out->msrs));
    /* KVM checks the values themselves when they are set. */
    if (out->xcrs.nr_xcrs > KVM_MAX_XCRS) {
        vm_snap_cpu_free(out);
        return -EINVAL;
    }
    return 0;
}
