/* Where a vCPU's linear addresses lead: guest-physical addresses as its
 * page tables say (KVM walks them; paging.c does where KVM refuses a
 * present page for the vCPU's own access rights), and the linear address
 * of its next instruction. Below the memory view, breakpoints and the run
 * loop, which all translate. */
#include "internal.h"
#include "paging.h"

#include <errno.h>
#include <sys/ioctl.h>

#define CR0_PG (1ull << 31)

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
    if (t.valid) {
        *gpa = t.physical_address;
        return 0;
    }
    /* KVM_TRANSLATE walks as a supervisor read by the vCPU: where the guest
     * has SMAP on and EFLAGS.AC clear (or a protection key denies it), a
     * user page does not translate, so a kernel stopped in a system call
     * could not show the user buffer it was handed (gdb's `<error: Cannot
     * access memory ...>` for a __user argument). A debugger's read is none
     * of the guest's accesses: what the tables map, it may read. */
    struct vm_mapping m;
    if (vm_paging_lookup(cpu, linear, &m))
        return -EFAULT;
    *gpa = m.phys + (linear & (m.size - 1));
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
