/* Where a vCPU's linear addresses lead: guest-physical addresses as its
 * page tables say (KVM walks them), and the linear address of its next
 * instruction. Below the memory view, breakpoints and the run loop, which
 * all translate. */
#include "internal.h"

#include <errno.h>
#include <sys/ioctl.h>

#define CR0_PG (1ull << 31)

#define CR4_SMAP (1ull << 21)
#define RFLAGS_AC (1ull << 18)

/* KVM_TRANSLATE walks as a supervisor read of the vCPU: where the guest
 * has SMAP on and EFLAGS.AC clear, a user page does not translate, so a
 * kernel stopped in a system call could not show the user buffer it was
 * handed (gdb's `<error: Cannot access memory ...>` for a __user
 * argument). A debugger's read is none of the guest's accesses: walk
 * again with AC set, as the kernel's own copy_from_user does, then put
 * EFLAGS back. */
static int translate_past_smap(struct vm_cpu *cpu, struct kvm_translation *t)
{
    int err = vm_regcache_fetch(&cpu->rc, VM_RC_REGS);
    if (err)
        return err;
    uint64_t rflags = cpu->rc.regs.rflags;
    cpu->rc.regs.rflags = rflags | RFLAGS_AC;
    cpu->rc.dirty |= VM_RC_REGS;
    if ((err = vm_regcache_flush(&cpu->rc)))
        return err;
    int r = ioctl(cpu->fd, KVM_TRANSLATE, t) < 0 ? -errno : 0;
    cpu->rc.regs.rflags = rflags;
    cpu->rc.dirty |= VM_RC_REGS;
    err = vm_regcache_flush(&cpu->rc);
    return r ? r : err;
}

int vm_translate(struct vm_cpu *cpu, uint64_t linear, uint64_t *gpa)
{
    int err = vm_regcache_fetch(&cpu->rc, VM_RC_SREGS);
    if (err)
        return err;
    if (!(cpu->rc.sregs.cr0 & CR0_PG)) {
        /* Without paging, protected mode addresses are 32 bits wide. */
        *gpa = (cpu->rc.sregs.cr0 & 1) ? (linear & 0xffffffffull) : linear;
        return 0;
    }
    /* KVM walks the page tables with the CPU state it holds, so state
     * changed in the cache (a new CR3, say) must reach it first. */
    if ((err = vm_regcache_flush(&cpu->rc)))
        return err;
    struct kvm_translation t = {.linear_address = linear};
    if (ioctl(cpu->fd, KVM_TRANSLATE, &t) < 0)
        return -errno;
    if (!t.valid && (cpu->rc.sregs.cr4 & CR4_SMAP) && (err = translate_past_smap(cpu, &t)))
        return err;
    if (!t.valid)
        return -EFAULT;
    *gpa = t.physical_address;
    return 0;
}

int vm_cpu_linear_pc(struct vm_cpu *cpu, uint64_t *pc)
{
    int err = vm_regcache_fetch(&cpu->rc, VM_RC_REGS | VM_RC_SREGS);
    if (err)
        return err;
    const struct kvm_sregs *s = &cpu->rc.sregs;
    uint64_t rip = cpu->rc.regs.rip;
    if ((s->efer & (1u << 10)) && s->cs.l)
        *pc = rip;
    else
        *pc = (s->cs.base + rip) & 0xffffffffull;
    return 0;
}
