/* vm/regcache.h: the KVM register cache of one vCPU. Internal to vm/.
 *
 * Groups of registers (general, segment/control, x87/SSE, the MSRs kvmstub
 * shows) are read from KVM the first time one is needed after the guest
 * ran, and written back only if changed, just before it runs again. The
 * x87/SSE state travels in an XSAVE image where KVM has XSAVE, because
 * KVM_SET_FPU alone leaves XSTATE_BV clear and some kernels then run the
 * guest with the initial values. */
#ifndef VM_REGCACHE_H
#define VM_REGCACHE_H

#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

enum {
    VM_RC_REGS = 1u << 0,
    VM_RC_SREGS = 1u << 1,
    VM_RC_FPU = 1u << 2,
    VM_RC_MSRS = 1u << 3,
    VM_RC_DEBUG = 1u << 4,
    VM_RC_ALL = 0x1fu,
};

/* Where the XSAVE components the register file reads lie in KVM's XSAVE
 * image (standard format), from CPUID leaf 0xD: the same for every vCPU. */
struct vm_xsave_layout {
    uint64_t features;   /* XCR0 bits present in the image */
    uint32_t offset[8];  /* by component: 2 AVX, 5 opmask, 6 ZMM_Hi256, 7 Hi16_ZMM */
    uint32_t size[8];
};

struct vm_regcache {
    int fd;           /* the vCPU */
    uint8_t *xsave;   /* XSAVE image, or NULL where KVM has no XSAVE */
    size_t xsave_size;
    const struct vm_xsave_layout *xlayout;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_fpu fpu; /* x87/SSE, whichever ioctl carried it */
    uint64_t kernel_gs_base;
    struct kvm_debugregs dregs;
    unsigned valid; /* VM_RC_* groups read from KVM since the last run */
    unsigned dirty; /* groups to write back before the next run */
};

int vm_regcache_fetch(struct vm_regcache *rc, unsigned groups);
int vm_regcache_flush(struct vm_regcache *rc);
/* After KVM_RUN: everything must be read again. */
void vm_regcache_invalidate(struct vm_regcache *rc);

#endif
