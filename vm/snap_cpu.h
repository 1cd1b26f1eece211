/* vm/snap_cpu.h: a vCPU's whole KVM state as a snapshot holds it: captured
 * and put back (and kept in snapshot files), beside RAM and the VM-wide
 * part (vm/snap_vm.h). Not the debugger's view of registers (vm/regs.h)
 * nor the cache behind it (vm/regcache.h).
 *
 * Captured in this order: MP_STATE, REGS, SREGS2 (SREGS where KVM lacks
 * it), XSAVE (KVM_GET_XSAVE2 sized by KVM_CAP_XSAVE2 on the VM, else
 * KVM_GET_XSAVE; FPU where there is no XSAVE), XCRS, DEBUGREGS, LAPIC (only
 * with an in-kernel irqchip), the MSRs of KVM_GET_MSR_INDEX_LIST that
 * KVM_GET_MSRS accepts, VCPU_EVENTS last. Restored in the same order with
 * VCPU_EVENTS last (KVM_SET_REGS and KVM_SET_SREGS drop pending exceptions),
 * then KVM_KVMCLOCK_CTRL, which tells a guest using kvm-clock that it was
 * paused (refused by KVM when the guest does not use it; that is fine).
 *
 * Works on file descriptors only. RAM must be restored before the vCPUs:
 * KVM_SET_SREGS reads the PAE page-directory pointers from guest memory
 * (SREGS2 carries them, but not every host has it).
 *
 * kvmstub keeps its own copy of registers (struct vm_regcache): flush it
 * before a capture (or the capture misses what gdb just wrote) and
 * invalidate it after a restore (or the next flush writes the old values
 * back). The caller does both; vm/snapshot.c does it for whole machines. */
#ifndef VM_SNAP_CPU_H
#define VM_SNAP_CPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

/* Parts of a capture. */
enum {
    VM_SNAP_CPU_SREGS2 = 1u << 0, /* sregs2, else sregs */
    VM_SNAP_CPU_XSAVE = 1u << 1,  /* xsave, else fpu */
    VM_SNAP_CPU_XCRS = 1u << 2,
    VM_SNAP_CPU_DEBUGREGS = 1u << 3,
    VM_SNAP_CPU_LAPIC = 1u << 4,
    VM_SNAP_CPU_EVENTS = 1u << 5,
    VM_SNAP_CPU_ALL_PARTS = (1u << 6) - 1,
};

/* What this host's KVM lets us capture; the same for every vCPU of a VM. */
struct vm_snap_cpu_ctx {
    unsigned parts;
    uint32_t xsave_size;
    bool kvmclock_ctrl;
    uint32_t nmsrs;
    uint32_t *msrs; /* indices, in KVM's order */
};

struct vm_snap_cpu {
    unsigned parts;
    struct kvm_mp_state mp;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_sregs2 sregs2;
    struct kvm_fpu fpu;
    uint32_t xsave_size;
    uint8_t *xsave;
    struct kvm_xcrs xcrs;
    struct kvm_debugregs debugregs;
    struct kvm_lapic_state lapic;
    struct kvm_vcpu_events events;
    uint32_t nmsrs;
    struct kvm_msr_entry *msrs;
};

/* Probes what can be captured, using vCPU cpu_fd of the VM (whose CPUID is
 * set) to find the MSRs KVM_GET_MSRS accepts. lapic: the VM has an
 * in-kernel irqchip. */
int vm_snap_cpu_ctx_init(struct vm_snap_cpu_ctx *ctx, int kvm_fd, int vm_fd, int cpu_fd,
                         bool lapic);
void vm_snap_cpu_ctx_free(struct vm_snap_cpu_ctx *ctx);

/* Captures the vCPU (stopped, with no PIO/MMIO instruction half done).
 * out is overwritten; free it with vm_snap_cpu_free(). */
int vm_snap_cpu_save(const struct vm_snap_cpu_ctx *ctx, int cpu_fd, struct vm_snap_cpu *out);
/* 0 when s can be restored under ctx (same parts, XSAVE size and MSRs);
 * else -EINVAL with the reason in err. Touches nothing. */
int vm_snap_cpu_check(const struct vm_snap_cpu_ctx *ctx, const struct vm_snap_cpu *s, char *err,
                      size_t errlen);
/* Puts s back (after vm_snap_cpu_check). A refused MSR does not stop the
 * rest; the first one is reported in err with -EIO. */
int vm_snap_cpu_restore(const struct vm_snap_cpu_ctx *ctx, int cpu_fd, const struct vm_snap_cpu *s,
                        char *err, size_t errlen);
void vm_snap_cpu_free(struct vm_snap_cpu *s);
int vm_snap_cpu_copy(const struct vm_snap_cpu *from, struct vm_snap_cpu *to);

/* A self-describing byte string for snapshot files: parts, sizes, then the
 * kernel structures (their layouts are KVM's ABI) in capture order. decode
 * checks every length against the parts it announces and bounds (XSAVE at
 * most 1 MiB, 4096 MSRs) before allocating. */
int vm_snap_cpu_encode(const struct vm_snap_cpu *s, uint8_t **buf, size_t *len);
int vm_snap_cpu_decode(const uint8_t *buf, size_t len, struct vm_snap_cpu *out);

#endif
