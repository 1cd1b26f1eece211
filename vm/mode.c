/* CPU state at entry for each mode, and the tables it needs.
 *
 * Protected and long mode need a GDT, long mode page tables; they live in
 * the boot area, the top VM_BOOT_AREA_SIZE bytes of RAM (layout in boot.h).
 * The page tables identity-map the first 4 GiB with 2 MiB pages, so RAM is
 * reachable at its physical address and everything above it exits as MMIO
 * like on a machine with nothing there. */
#include "boot.h"
#include "bzimage.h"
#include "internal.h"

#include <errno.h>
#include <string.h>

#define CR0_PE (1ull << 0)
#define CR0_MP (1ull << 1)
#define CR0_ET (1ull << 4)
#define CR0_NE (1ull << 5)
#define CR0_WP (1ull << 16)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define CR4_OSFXSR (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

uint64_t vm_boot_area(const struct vm *vm)
{
    return vm->mem.size - VM_BOOT_AREA_SIZE;
}

static uint64_t descriptor(uint32_t base, uint32_t limit, uint16_t flags)
{
    /* flags: access byte in bits 0-7, G/DB/L/AVL nibble in bits 12-15 */
    return (uint64_t)(limit & 0xffff) | ((uint64_t)(base & 0xffffff) << 16) |
           ((uint64_t)(flags & 0xff) << 40) | ((uint64_t)((limit >> 16) & 0xf) << 48) |
           ((uint64_t)((flags >> 12) & 0xf) << 52) | ((uint64_t)(base >> 24) << 56);
}

static int write_tables(struct vm *vm, bool paging)
{
    uint64_t area = vm_boot_area(vm);
    uint64_t gdt[VM_GDT_ENTRIES] = {
        [0] = 0,
        [VM_SEL_CODE32 >> 3] = descriptor(0, 0xfffff, 0xc09a),
        [VM_SEL_DATA >> 3] = descriptor(0, 0xfffff, 0xc092),
        [VM_SEL_CODE64 >> 3] = descriptor(0, 0xfffff, 0xa09a),
    };
    int err = vm_mem_write(&vm->mem, area + VM_BOOT_GDT, gdt, sizeof(gdt));
    if (err || !paging)
        return err;
    uint64_t pml4[512] = {0}, pdpt[512] = {0}, pd[512];
    pml4[0] = (area + VM_BOOT_PDPT) | 3;
    for (unsigned g = 0; g < VM_BOOT_PD_COUNT; g++) {
        pdpt[g] = (area + VM_BOOT_PD + g * VM_PAGE_SIZE) | 3;
        for (unsigned i = 0; i < 512; i++)
            pd[i] = (((uint64_t)g << 30) + ((uint64_t)i << 21)) | 0x83; /* P, RW, PS */
        if ((err = vm_mem_write(&vm->mem, area + VM_BOOT_PD + g * VM_PAGE_SIZE, pd, sizeof(pd))))
            return err;
    }
    if ((err = vm_mem_write(&vm->mem, area + VM_BOOT_PML4, pml4, sizeof(pml4))))
        return err;
    return vm_mem_write(&vm->mem, area + VM_BOOT_PDPT, pdpt, sizeof(pdpt));
}

static struct kvm_segment flat(uint16_t sel, bool code, bool long_mode)
{
    return (struct kvm_segment){
        .base = 0,
        .limit = 0xffffffff,
        .selector = sel,
        .type = code ? 0xb : 0x3,
        .present = 1,
        .dpl = 0,
        .db = long_mode && code ? 0 : 1,
        .s = 1,
        .l = long_mode && code ? 1 : 0,
        .g = 1,
    };
}

static struct kvm_segment real_segment(uint16_t sel, bool code)
{
    return (struct kvm_segment){
        .base = (uint64_t)sel << 4,
        .limit = 0xffff,
        .selector = sel,
        .type = code ? 0xb : 0x3,
        .present = 1,
        .s = 1,
    };
}

int vm_enter_mode(struct vm *vm, struct vm_cpu *cpu, const struct vm_entry *e)
{
    int err = vm_regcache_fetch(&cpu->rc, VM_RC_SREGS | VM_RC_FPU | VM_RC_MSRS);
    if (err)
        return err;
    struct vm_regcache *rc = &cpu->rc;
    struct kvm_sregs *s = &rc->sregs;
    memset(&rc->regs, 0, sizeof(rc->regs));
    rc->regs.rflags = 2;
    uint64_t area = vm_boot_area(vm);

    switch (e->mode) {
    case VM_MODE_REAL: {
        if (e->rip >= 0x100000)
            return -ERANGE; /* unreachable with real-mode segments */
        /* The smallest CS that reaches rip, so small programs get CS=0. */
        uint16_t cs = (uint16_t)((e->rip >> 4) & 0xf000);
        s->cs = real_segment(cs, true);
        s->ds = s->es = s->fs = s->gs = s->ss = real_segment(0, false);
        s->cr0 = CR0_ET;
        s->cr4 = 0;
        s->efer = 0;
        rc->regs.rip = e->rip - ((uint64_t)cs << 4);
        rc->regs.rsp = e->rsp;
        break;
    }
    case VM_MODE_PROTECTED:
    case VM_MODE_LONG: {
        bool lm = e->mode == VM_MODE_LONG;
        if ((err = write_tables(vm, lm)))
            return err;
        s->cs = flat(lm ? VM_SEL_CODE64 : VM_SEL_CODE32, true, lm);
        s->ds = s->es = s->fs = s->gs = s->ss = flat(VM_SEL_DATA, false, lm);
        s->gdt.base = area + VM_BOOT_GDT;
        s->gdt.limit = VM_GDT_ENTRIES * 8 - 1;
        s->idt.base = 0;
        s->idt.limit = 0;
        /* SSE on, since compilers use it for ordinary C code. */
        s->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE;
        s->cr4 = CR4_OSFXSR | CR4_OSXMMEXCPT;
        s->efer = 0;
        if (lm) {
            s->cr3 = area + VM_BOOT_PML4;
            s->cr4 |= CR4_PAE;
            s->cr0 |= CR0_PG | CR0_WP;
            s->efer = EFER_LME | EFER_LMA;
        }
        rc->regs.rip = e->rip;
        rc->regs.rsp = e->rsp ? e->rsp : area;
        break;
    }
    default:
        return -EINVAL;
    }
    s->cr2 = 0;
    s->cr8 = 0;
    rc->regs.rax = e->eax;
    rc->regs.rbx = e->ebx;
    memset(&rc->fpu, 0, sizeof(rc->fpu));
    rc->fpu.fcw = 0x37f;
    rc->fpu.mxcsr = 0x1f80;
    rc->kernel_gs_base = 0;
    rc->valid |= VM_RC_REGS;
    rc->dirty |= VM_RC_REGS | VM_RC_SREGS | VM_RC_FPU | VM_RC_MSRS;
    cpu->halted = false;
    return 0;
}

/* Linux's 64-bit boot protocol (vm/bzimage.h did the tables): long mode
 * with the loader's identity map, __BOOT_CS and __BOOT_DS, interrupts off,
 * RSI at the zero page. Everything else starts at zero, as boot.rst asks. */
int vm_enter_bzimage(struct vm_cpu *cpu, const struct vm_bzimage_entry *e)
{
    int err = vm_regcache_fetch(&cpu->rc, VM_RC_SREGS | VM_RC_FPU | VM_RC_MSRS);
    if (err)
        return err;
    struct vm_regcache *rc = &cpu->rc;
    struct kvm_sregs *s = &rc->sregs;
    memset(&rc->regs, 0, sizeof(rc->regs));
    rc->regs.rflags = 2;
    rc->regs.rip = e->rip;
    rc->regs.rsp = e->rsp;
    rc->regs.rsi = e->rsi;
    s->cs = flat(e->cs, true, true);
    s->ds = s->es = s->fs = s->gs = s->ss = flat(e->ds, false, true);
    s->gdt.base = e->gdt_base;
    s->gdt.limit = e->gdt_limit;
    s->idt.base = 0;
    s->idt.limit = 0;
    s->cr0 = e->cr0;
    s->cr3 = e->cr3;
    s->cr4 = e->cr4;
    s->efer = e->efer;
    s->cr2 = 0;
    s->cr8 = 0;
    memset(&rc->fpu, 0, sizeof(rc->fpu));
    rc->fpu.fcw = 0x37f;
    rc->fpu.mxcsr = 0x1f80;
    rc->kernel_gs_base = 0;
    rc->valid |= VM_RC_REGS;
    rc->dirty |= VM_RC_REGS | VM_RC_SREGS | VM_RC_FPU | VM_RC_MSRS;
    cpu->halted = false;
    return 0;
}
