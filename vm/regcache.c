/* The KVM register cache (regcache.h). */
#include "regcache.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#define MSR_KERNEL_GS_BASE 0xc0000102u

/* struct kvm_msrs ends in a flexible array; room for one entry. */
union msrs {
    struct kvm_msrs hdr;
    uint8_t room[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
};

/* The legacy (FXSAVE) part of an XSAVE image, and its header. */
#define XS_FCW 0
#define XS_FSW 2
#define XS_FTW 4
#define XS_FOP 6
#define XS_FIP 8
#define XS_FDP 16
#define XS_MXCSR 24
#define XS_ST 32
#define XS_XMM 160
#define XS_XSTATE_BV 512
#define XS_FP_SSE 3u /* XSTATE_BV bits: the x87 and SSE state are in use */

static int get_fpu(struct vm_regcache *rc, struct kvm_fpu *f)
{
    if (!rc->xsave)
        return ioctl(rc->fd, KVM_GET_FPU, f) < 0 ? -errno : 0;
    unsigned long req = rc->xsave_size > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;
    if (ioctl(rc->fd, req, rc->xsave) < 0)
        return -errno;
    const uint8_t *x = rc->xsave;
    memset(f, 0, sizeof(*f));
    memcpy(&f->fcw, x + XS_FCW, 2);
    memcpy(&f->fsw, x + XS_FSW, 2);
    f->ftwx = x[XS_FTW];
    memcpy(&f->last_opcode, x + XS_FOP, 2);
    memcpy(&f->last_ip, x + XS_FIP, 8);
    memcpy(&f->last_dp, x + XS_FDP, 8);
    memcpy(&f->mxcsr, x + XS_MXCSR, 4);
    for (int i = 0; i < 8; i++)
        memcpy(f->fpr[i], x + XS_ST + 16 * i, 16);
    for (int i = 0; i < 16; i++)
        memcpy(f->xmm[i], x + XS_XMM + 16 * i, 16);
    return 0;
}

static int set_fpu(struct vm_regcache *rc, const struct kvm_fpu *f)
{
    if (!rc->xsave)
        return ioctl(rc->fd, KVM_SET_FPU, f) < 0 ? -errno : 0;
    uint8_t *x = rc->xsave;
    memcpy(x + XS_FCW, &f->fcw, 2);
    memcpy(x + XS_FSW, &f->fsw, 2);
    x[XS_FTW] = f->ftwx;
    memcpy(x + XS_FOP, &f->last_opcode, 2);
    memcpy(x + XS_FIP, &f->last_ip, 8);
    memcpy(x + XS_FDP, &f->last_dp, 8);
    memcpy(x + XS_MXCSR, &f->mxcsr, 4);
    for (int i = 0; i < 8; i++)
        memcpy(x + XS_ST + 16 * i, f->fpr[i], 16);
    for (int i = 0; i < 16; i++)
        memcpy(x + XS_XMM + 16 * i, f->xmm[i], 16);
    uint64_t bv;
    memcpy(&bv, x + XS_XSTATE_BV, 8);
    bv |= XS_FP_SSE;
    memcpy(x + XS_XSTATE_BV, &bv, 8);
    return ioctl(rc->fd, KVM_SET_XSAVE, x) < 0 ? -errno : 0;
}

int vm_regcache_fetch(struct vm_regcache *rc, unsigned groups)
{
    unsigned need = groups & ~rc->valid;
    if ((need & VM_RC_REGS) && ioctl(rc->fd, KVM_GET_REGS, &rc->regs) < 0)
        return -errno;
    if ((need & VM_RC_SREGS) && ioctl(rc->fd, KVM_GET_SREGS, &rc->sregs) < 0)
        return -errno;
    int err;
    if ((need & VM_RC_FPU) && (err = get_fpu(rc, &rc->fpu)))
        return err;
    if ((need & VM_RC_DEBUG) && ioctl(rc->fd, KVM_GET_DEBUGREGS, &rc->dregs) < 0)
        return -errno;
    if (need & VM_RC_MSRS) {
        union msrs m = {.hdr.nmsrs = 1};
        m.hdr.entries[0].index = MSR_KERNEL_GS_BASE;
        if (ioctl(rc->fd, KVM_GET_MSRS, &m) != 1)
            return -EIO;
        rc->kernel_gs_base = m.hdr.entries[0].data;
    }
    rc->valid |= need;
    return 0;
}

int vm_regcache_flush(struct vm_regcache *rc)
{
    if ((rc->dirty & VM_RC_SREGS) && ioctl(rc->fd, KVM_SET_SREGS, &rc->sregs) < 0)
        return -errno;
    if ((rc->dirty & VM_RC_REGS) && ioctl(rc->fd, KVM_SET_REGS, &rc->regs) < 0)
        return -errno;
    int err;
    if ((rc->dirty & VM_RC_FPU) && (err = set_fpu(rc, &rc->fpu)))
        return err;
    if ((rc->dirty & VM_RC_DEBUG) && ioctl(rc->fd, KVM_SET_DEBUGREGS, &rc->dregs) < 0)
        return -errno;
    if (rc->dirty & VM_RC_MSRS) {
        union msrs m = {.hdr.nmsrs = 1};
        m.hdr.entries[0].index = MSR_KERNEL_GS_BASE;
        m.hdr.entries[0].data = rc->kernel_gs_base;
        if (ioctl(rc->fd, KVM_SET_MSRS, &m) != 1)
            return -EIO;
    }
    rc->dirty = 0;
    return 0;
}

void vm_regcache_invalidate(struct vm_regcache *rc)
{
    rc->valid = 0;
    rc->dirty = 0;
}
