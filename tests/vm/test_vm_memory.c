/* Guest memory: physical bounds, virtual addresses through the guest's page
 * tables, and the slot tiling behind page traps. */
#include "testmain.h"
#include "vm/boot.h"
#include "vm/paging.h"
#include "vmtest.h"

#include <CUnit/CUnit.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

static void test_physical_bounds(void)
{
    struct vm *vm = vt_create(4ull << 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    struct vm_mem *m = &vm->mem;
    uint8_t b[16] = {1, 2, 3, 4};
    CU_ASSERT_EQUAL(vm_mem_write(m, m->size - 4, b, 4), 0);
    CU_ASSERT_EQUAL(vm_mem_write(m, m->size - 3, b, 4), -EFAULT);
    CU_ASSERT_EQUAL(vm_mem_read(m, m->size, b, 1), -EFAULT);
    CU_ASSERT_EQUAL(vm_mem_read(m, m->size, b, 0), 0);
    CU_ASSERT_EQUAL(vm_mem_read(m, UINT64_MAX - 1, b, 4), -EFAULT); /* wraps */
    CU_ASSERT_EQUAL(vm_mem_read(m, UINT64_MAX, b, 16), -EFAULT);
    CU_ASSERT_PTR_NULL(vm_mem_ptr(m, 8, UINT64_MAX));
    uint8_t back[4];
    CU_ASSERT_EQUAL(vm_mem_read(m, m->size - 4, back, 4), 0);
    CU_ASSERT_EQUAL(memcmp(back, b, 4), 0);
    vm_destroy(vm);
}

static void test_ram_sizes(void)
{
    struct vm_config cfg = {.ram_size = 12345};
    struct vm *vm = NULL;
    char err[256];
    CU_ASSERT_EQUAL(vm_create(&cfg, &vm, err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "between 1M and 3G"));
    cfg.ram_size = 4ull << 30;
    CU_ASSERT_EQUAL(vm_create(&cfg, &vm, err, sizeof(err)), -EINVAL);
    cfg.ram_size = 3ull << 30; /* the largest: pages are only taken when touched */
    CU_ASSERT_EQUAL(vm_create(&cfg, &vm, err, sizeof(err)), 0);
    if (vm) {
        CU_ASSERT_EQUAL(vm->mem.size, 3ull << 30);
        vm_destroy(vm);
    }
}

/* KVM maps a guest 2 MiB range with one large page only when its host
 * address is congruent to it modulo 2 MiB; otherwise a Linux boot takes
 * several thousand more nested page faults. */
static void test_ram_on_2mib_host_boundary(void)
{
    static const uint64_t sizes[] = {1ull << 20, (4ull << 20) + 4096, 256ull << 20};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct vm *vm = vt_create(sizes[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
        CU_ASSERT_EQUAL((uintptr_t)vm->mem.host % (2u << 20), 0);
        uint8_t b = 0x5a, back = 0;
        CU_ASSERT_EQUAL(vm_mem_write(&vm->mem, 0, &b, 1), 0);
        CU_ASSERT_EQUAL(vm_mem_write(&vm->mem, sizes[i] - 1, &b, 1), 0);
        CU_ASSERT_EQUAL(vm_mem_read(&vm->mem, sizes[i] - 1, &back, 1), 0);
        CU_ASSERT_EQUAL(back, 0x5a);
        vm_destroy(vm);
    }
}

static void test_linear_through_page_tables(void)
{
    static const uint8_t hlt[] = {0xf4};
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_LONG, 0x100000, hlt, 1), 0);
    struct vm_cpu *cpu = &vm->cpus[0];
    /* Virtual 1 GiB -> physical 6 MiB (one 2 MiB page); 1 GiB + 2 MiB is
     * not present. */
    uint64_t pd1 = vm_boot_area(vm) + 0x4000;
    uint64_t e[2] = {0x600000 | 0x83, 0};
    CU_ASSERT_EQUAL(vm_mem_write(&vm->mem, pd1, e, sizeof(e)), 0);
    static const char text[] = "through the page tables";
    CU_ASSERT_EQUAL(vm_mem_write(&vm->mem, 0x600000 + 0x1ffff0, text, 16), 0);
    uint64_t gpa;
    CU_ASSERT_EQUAL(vm_translate(cpu, 0x40001234, &gpa), 0);
    CU_ASSERT_EQUAL(gpa, 0x601234);
    CU_ASSERT_EQUAL(vm_translate(cpu, 0x40200000, &gpa), -EFAULT);
    char buf[64];
    size_t done = 99;
    CU_ASSERT_EQUAL(vm_read_linear(cpu, 0x401ffff0, buf, 16, &done), 0);
    CU_ASSERT_EQUAL(done, 16);
    CU_ASSERT_EQUAL(memcmp(buf, text, 16), 0);
    /* A read running into the unmapped page stops there and says so. */
    CU_ASSERT_EQUAL(vm_read_linear(cpu, 0x401ffff0, buf, 32, &done), -EFAULT);
    CU_ASSERT_EQUAL(done, 16);
    CU_ASSERT_EQUAL(vm_write_linear(cpu, 0x40000000, "x", 1, NULL), 0);
    CU_ASSERT_EQUAL(vm->mem.host[0x600000], 'x');
    /* Identity-mapped RAM, and mapped addresses with no RAM behind them. */
    CU_ASSERT_EQUAL(vm_translate(cpu, 0x100000, &gpa), 0);
    CU_ASSERT_EQUAL(gpa, 0x100000);
    CU_ASSERT_EQUAL(vm_read_linear(cpu, 0xc0000000, buf, 1, &done), -EFAULT);
    CU_ASSERT_EQUAL(done, 0);
    CU_ASSERT_EQUAL(vm_read_linear(cpu, UINT64_MAX - 3, buf, 8, &done), -EFAULT);
    vm_destroy(vm);
}

static void test_real_mode_linear_is_physical(void)
{
    static const uint8_t hlt[] = {0xf4};
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_REAL, 0x7c00, hlt, 1), 0);
    uint8_t b;
    CU_ASSERT_EQUAL(vm_read_linear(&vm->cpus[0], 0x7c00, &b, 1, NULL), 0);
    CU_ASSERT_EQUAL(b, 0xf4);
    vm_destroy(vm);
}

#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define CR4_LA57 (1ull << 12)
#define CR4_SMAP (1ull << 21)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define RFLAGS_AC (1ull << 18)

/* A kernel stopped in a system call shows the user buffer it was handed:
 * with SMAP on and EFLAGS.AC clear KVM_TRANSLATE refuses a user page (a
 * supervisor read), yet a debugger's read goes through, and the guest's
 * EFLAGS stay as they were. */
static void test_user_page_under_smap_with_ac_clear(void)
{
    static const uint8_t hlt[] = {0xf4};
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_LONG, 0x100000, hlt, 1), 0);
    struct vm_cpu *cpu = &vm->cpus[0];
    /* Virtual 1 GiB -> physical 6 MiB, a 2 MiB page with U at every level;
     * the next 2 MiB not present. */
    uint64_t area = vm_boot_area(vm), e;
    CU_ASSERT_EQUAL_FATAL(vm_mem_read(&vm->mem, area + VM_BOOT_PML4, &e, 8), 0);
    e |= VM_PTE_U;
    CU_ASSERT_EQUAL_FATAL(vm_mem_write(&vm->mem, area + VM_BOOT_PML4, &e, 8), 0);
    CU_ASSERT_EQUAL_FATAL(vm_mem_read(&vm->mem, area + VM_BOOT_PDPT + 8, &e, 8), 0);
    e |= VM_PTE_U;
    CU_ASSERT_EQUAL_FATAL(vm_mem_write(&vm->mem, area + VM_BOOT_PDPT + 8, &e, 8), 0);
    uint64_t pd1[2] = {0x600000 | VM_PTE_PS | VM_PTE_U | VM_PTE_W | VM_PTE_P, 0};
    CU_ASSERT_EQUAL_FATAL(vm_mem_write(&vm->mem, area + VM_BOOT_PD + 0x1000, pd1, 16), 0);
    static const char text[] = "a __user buffer";
    CU_ASSERT_EQUAL_FATAL(vm_mem_write(&vm->mem, 0x601234, text, sizeof(text)), 0);

    CU_ASSERT_EQUAL_FATAL(vm_regcache_fetch(&cpu->rc, VM_RC_REGS | VM_RC_SREGS), 0);
    CU_ASSERT_FALSE(cpu->rc.regs.rflags & RFLAGS_AC);
    cpu->rc.sregs.cr4 |= CR4_SMAP;
    cpu->rc.dirty |= VM_RC_SREGS;
    if (vm_regcache_flush(&cpu->rc)) {
        printf("\n    this KVM offers no SMAP (CR4.SMAP refused): nothing to test\n");
        vm_destroy(vm);
        return;
    }
    struct kvm_translation t = {.linear_address = 0x40001234};
    CU_ASSERT_EQUAL(ioctl(cpu->fd, KVM_TRANSLATE, &t), 0);
    CU_ASSERT_FALSE(t.valid); /* what the fallback is for */

    uint64_t gpa = 0;
    CU_ASSERT_EQUAL(vm_translate(cpu, 0x40001234, &gpa), 0);
    CU_ASSERT_EQUAL(gpa, 0x601234);
    char buf[sizeof(text)] = {0};
    CU_ASSERT_EQUAL(vm_read_linear(cpu, 0x40001234, buf, sizeof(buf), NULL), 0);
    CU_ASSERT_STRING_EQUAL(buf, text);
    CU_ASSERT_EQUAL(vm_write_linear(cpu, 0x40001234, "A", 1, NULL), 0);
    CU_ASSERT_EQUAL(vm->mem.host[0x601234], 'A');
    /* A supervisor page as before; an absent one still is not there. */
    CU_ASSERT_EQUAL(vm_translate(cpu, 0x100000, &gpa), 0);
    CU_ASSERT_EQUAL(gpa, 0x100000);
    CU_ASSERT_EQUAL(vm_translate(cpu, 0x40200000, &gpa), -EFAULT);
    /* KVM's own copy of EFLAGS and CR4, as the guest left them. */
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    CU_ASSERT_EQUAL(ioctl(cpu->fd, KVM_GET_REGS, &regs), 0);
    CU_ASSERT_EQUAL(ioctl(cpu->fd, KVM_GET_SREGS, &sregs), 0);
    CU_ASSERT_FALSE(regs.rflags & RFLAGS_AC);
    CU_ASSERT(sregs.cr4 & CR4_SMAP);
    vm_destroy(vm);
}

/* A paging mode the vCPU is said to be in: set in the register cache only
 * (never given to KVM, which may not offer 5-level paging), where the walk
 * reads it. */
static void say_mode(struct vm_cpu *cpu, uint64_t cr3, uint64_t cr4, uint64_t efer)
{
    CU_ASSERT_EQUAL_FATAL(vm_regcache_fetch(&cpu->rc, VM_RC_SREGS), 0);
    cpu->rc.sregs.cr0 |= 0x80000001ull;
    cpu->rc.sregs.cr3 = cr3;
    cpu->rc.sregs.cr4 = cr4;
    cpu->rc.sregs.efer = efer;
}

static void put64(struct vm *vm, uint64_t table, unsigned i, uint64_t e)
{
    CU_ASSERT_EQUAL_FATAL(vm_mem_write(&vm->mem, table + 8ull * i, &e, 8), 0);
}

static void put32(struct vm *vm, uint64_t table, unsigned i, uint32_t e)
{
    CU_ASSERT_EQUAL_FATAL(vm_mem_write(&vm->mem, table + 4ull * i, &e, 4), 0);
}

/* Where linear leads (phys), or UINT64_MAX; the page's size in *size. */
static uint64_t lookup(struct vm_cpu *cpu, uint64_t linear, uint64_t *size, uint64_t *flags)
{
    struct vm_mapping m;
    if (vm_paging_lookup(cpu, linear, &m))
        return UINT64_MAX;
    CU_ASSERT_EQUAL(m.virt & (m.size - 1), 0);
    if (size)
        *size = m.size;
    if (flags)
        *flags = m.flags;
    return m.phys + (linear & (m.size - 1));
}

/* Every leaf the walk lists is where a lookup of its first address says. */
static int agrees(void *ctx, const struct vm_mapping *m)
{
    struct vm_mapping l;
    CU_ASSERT_EQUAL(vm_paging_lookup(ctx, m->virt, &l), 0);
    CU_ASSERT_EQUAL(l.phys, m->phys);
    CU_ASSERT_EQUAL(l.size, m->size);
    CU_ASSERT_EQUAL(l.flags, m->flags);
    return 0;
}

#define P VM_PTE_P
#define W VM_PTE_W
#define U VM_PTE_U
#define PS VM_PTE_PS

static void test_lookup_in_each_paging_mode(void)
{
    static const uint8_t hlt[] = {0xf4};
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_LONG, 0x100000, hlt, 1), 0);
    struct vm_cpu *cpu = &vm->cpus[0];
    const uint64_t pml5 = 0x200000, pml4 = 0x201000, pdpt = 0x202000, pd = 0x203000,
                   pt = 0x204000, pdpt_hi = 0x205000;
    put64(vm, pml5, 0, pml4 | U | W | P);
    put64(vm, pml5, 511, pml4 | U | W | P);
    put64(vm, pml4, 0, pdpt | U | W | P);
    put64(vm, pml4, 256, pdpt | U | W | P);
    put64(vm, pml4, 511, pdpt_hi | W | P);
    put64(vm, pdpt, 0, 0x40000000 | PS | W | P);       /* 1 GiB, supervisor */
    put64(vm, pdpt, 1, pd | U | W | P);
    put64(vm, pd, 0, 0x600000 | VM_PTE_NX | PS | U | P); /* 2 MiB, user, read-only */
    put64(vm, pd, 1, pt | U | W | P);
    put64(vm, pt, 5, 0x345000 | U | W | P);               /* 4 KiB, user */
    put64(vm, pdpt_hi, 510, 0x80000000 | PS | W | P);     /* the kernel's -2 GiB */

    uint64_t size, flags;
    say_mode(cpu, pml4, CR4_PAE, EFER_LME | EFER_LMA);
    CU_ASSERT_EQUAL(lookup(cpu, 0x12345678, &size, &flags), 0x52345678);
    CU_ASSERT_EQUAL(size, 1ull << 30);
    CU_ASSERT_EQUAL(flags & (U | W), W);
    CU_ASSERT_EQUAL(lookup(cpu, 0x40001234, &size, &flags), 0x601234);
    CU_ASSERT_EQUAL(size, 2ull << 20);
    CU_ASSERT_EQUAL(flags & (U | W | VM_PTE_NX), U | VM_PTE_NX);
    CU_ASSERT_EQUAL(lookup(cpu, 0x40205012, &size, &flags), 0x345012);
    CU_ASSERT_EQUAL(size, 4096);
    CU_ASSERT_EQUAL(flags & (U | W), U | W);
    CU_ASSERT_EQUAL(lookup(cpu, 0x40206000, NULL, NULL), UINT64_MAX);
    CU_ASSERT_EQUAL(lookup(cpu, 0xffffffff81000010ull, NULL, NULL), 0x81000010);
    /* Not canonical with 48 bits. */
    CU_ASSERT_EQUAL(lookup(cpu, 0x0000800000001234ull, NULL, NULL), UINT64_MAX);
    CU_ASSERT_EQUAL(vm_paging_walk(cpu, agrees, cpu), 0);

    say_mode(cpu, pml5, CR4_PAE | CR4_LA57, EFER_LME | EFER_LMA);
    CU_ASSERT_EQUAL(lookup(cpu, 0x40205012, &size, NULL), 0x345012);
    CU_ASSERT_EQUAL(size, 4096);
    CU_ASSERT_EQUAL(lookup(cpu, 0xffffffff81000010ull, NULL, NULL), 0x81000010);
    /* Canonical with 57 bits: PML4 entry 256 under PML5 entry 0. */
    CU_ASSERT_EQUAL(lookup(cpu, 0x0000800000001234ull, NULL, NULL), 0x40001234);
    CU_ASSERT_EQUAL(lookup(cpu, 0x0100000000000000ull, NULL, NULL), UINT64_MAX);
    CU_ASSERT_EQUAL(vm_paging_walk(cpu, agrees, cpu), 0);

    /* PAE: 4 PDPTEs; 0xc0000000 -> 6 MiB in a 2 MiB page. */
    const uint64_t pae_pdpt = 0x206000, pae_pd = 0x207000;
    put64(vm, pae_pdpt, 3, pae_pd | P);
    put64(vm, pae_pd, 0, 0x600000 | PS | W | P);
    put64(vm, pae_pd, 1, pt | U | W | P);
    say_mode(cpu, pae_pdpt, CR4_PAE, 0);
    CU_ASSERT_EQUAL(lookup(cpu, 0xc0000010, &size, NULL), 0x600010);
    CU_ASSERT_EQUAL(size, 2ull << 20);
    CU_ASSERT_EQUAL(lookup(cpu, 0xc0205012, &size, NULL), 0x345012);
    CU_ASSERT_EQUAL(size, 4096);
    CU_ASSERT_EQUAL(lookup(cpu, 0x1000, NULL, NULL), UINT64_MAX);
    CU_ASSERT_EQUAL(vm_paging_walk(cpu, agrees, cpu), 0);

    /* 32-bit paging with PSE: a 4 MiB page above 4 GiB (PSE-36's bit 13
     * is physical bit 32), and 4 KiB pages. */
    const uint64_t pd32 = 0x208000, pt32 = 0x209000;
    put32(vm, pd32, 768, 0x01000000 | (1u << 13) | (uint32_t)(PS | W | P));
    put32(vm, pd32, 1, (uint32_t)(pt32 | U | W | P));
    put32(vm, pt32, 2, (uint32_t)(0x345000 | U | P));
    say_mode(cpu, pd32, CR4_PSE, 0);
    CU_ASSERT_EQUAL(lookup(cpu, 0xc0012345, &size, NULL), 0x101012345ull);
    CU_ASSERT_EQUAL(size, 4ull << 20);
    CU_ASSERT_EQUAL(lookup(cpu, 0x402010, &size, &flags), 0x345010);
    CU_ASSERT_EQUAL(size, 4096);
    CU_ASSERT_EQUAL(flags & (U | W), U);
    CU_ASSERT_EQUAL(lookup(cpu, 0x403000, NULL, NULL), UINT64_MAX);
    CU_ASSERT_EQUAL(vm_paging_walk(cpu, agrees, cpu), 0);
    vm_destroy(vm);
}

#undef P
#undef W
#undef U
#undef PS

/* The slots and the unmapped trapped pages tile RAM exactly. */
static void check_tiling(const struct vm_mem *m)
{
    uint64_t at = 0;
    size_t s = 0, t = 0;
    while (at < m->size) {
        if (s < m->nslots && m->slots[s].gpa == at) {
            bool ro = m->slots[s].readonly;
            CU_ASSERT(!ro || (m->slots[s].size == VM_PAGE_SIZE &&
                              vm_mem_trap(m, at) == VM_TRAP_WRITE));
            at += m->slots[s++].size;
        } else if (vm_mem_trap(m, at) == VM_TRAP_ALL) {
            at += VM_PAGE_SIZE;
            t++;
        } else {
            CU_FAIL("a hole in the memory map");
            return;
        }
    }
    CU_ASSERT_EQUAL(at, m->size);
    CU_ASSERT_EQUAL(s, m->nslots);
}

static void test_trap_tiling(void)
{
    struct vm *vm = vt_create(8ull << 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    struct vm_mem *m = &vm->mem;
    static const uint64_t pages[] = {0x0, 0x5000, 0x6000, 0x7000, 0x7ff000, 0x300000, 0x301000};
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
        CU_ASSERT_EQUAL(vm_mem_set_trap(m, pages[i], i % 2 ? VM_TRAP_ALL : VM_TRAP_WRITE), 0);
        check_tiling(m);
    }
    CU_ASSERT_EQUAL(m->ntraps, 7);
    CU_ASSERT_EQUAL(vm_mem_set_trap(m, 0x6000, VM_TRAP_WRITE), 0); /* ALL -> WRITE */
    check_tiling(m);
    CU_ASSERT_EQUAL(vm_mem_set_trap(m, 0x6000, VM_TRAP_ALL), 0);
    check_tiling(m);
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
        CU_ASSERT_EQUAL(vm_mem_set_trap(m, pages[(i * 3) % 7], VM_TRAP_NONE), 0);
        check_tiling(m);
    }
    CU_ASSERT_EQUAL(m->ntraps, 0);
    CU_ASSERT_EQUAL(m->nslots, 1); /* merged back into one */
    CU_ASSERT_EQUAL(vm_mem_set_trap(m, m->size, VM_TRAP_ALL), -EFAULT);
    vm_destroy(vm);
}

static void test_trap_table_full_keeps_ram_usable(void)
{
    struct vm *vm = vt_create(16ull << 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    struct vm_mem *m = &vm->mem;
    int r = 0;
    size_t n = 0;
    /* Every other page read-only: two slots each, until KVM's (or our)
     * limit refuses. */
    for (uint64_t p = 0x200000; p < m->size && r == 0; p += 2 * VM_PAGE_SIZE, n++)
        r = vm_mem_set_trap(m, p, VM_TRAP_WRITE);
    CU_ASSERT_EQUAL(r, -ENOSPC);
    CU_ASSERT(n > 100);
    check_tiling(m);
    for (uint64_t p = 0x200000; p < m->size; p += 2 * VM_PAGE_SIZE)
        CU_ASSERT_EQUAL(vm_mem_set_trap(m, p, VM_TRAP_NONE), 0);
    CU_ASSERT_EQUAL(m->nslots, 1);
    vm_destroy(vm);
}

static void test_guest_through_trapped_pages(void)
{
    /* String copies and ordinary accesses into and out of trapped pages
     * behave exactly as on RAM (kvmstub performs each access):
     *   mov $0x201ff0,%esi; mov $0x203ff8,%edi; mov $0x20,%ecx; rep movsb
     *   mov 0x201ff8,%rax; hlt */
    static const uint8_t code[] = {
        0xbe, 0xf0, 0x1f, 0x20, 0x00, 0xbf, 0xf8, 0x3f, 0x20, 0x00, 0xb9, 0x20, 0x00, 0x00, 0x00,
        0xf3, 0xa4, 0x48, 0x8b, 0x04, 0x25, 0xf8, 0x1f, 0x20, 0x00, 0xf4,
    };
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_LONG, 0x100000, code, sizeof(code)), 0);
    uint8_t src[32];
    for (int i = 0; i < 32; i++)
        src[i] = (uint8_t)(0x40 + i);
    CU_ASSERT_EQUAL(vm_mem_write(&vm->mem, 0x201ff0, src, 32), 0);
    CU_ASSERT_EQUAL(vm_mem_set_trap(&vm->mem, 0x202000, VM_TRAP_ALL), 0);
    CU_ASSERT_EQUAL(vm_mem_set_trap(&vm->mem, 0x201000, VM_TRAP_ALL), 0);
    CU_ASSERT_EQUAL(vm_mem_set_trap(&vm->mem, 0x204000, VM_TRAP_WRITE), 0);
    struct vm_event ev;
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
    uint8_t dst[32];
    CU_ASSERT_EQUAL(vm_mem_read(&vm->mem, 0x203ff8, dst, 32), 0);
    CU_ASSERT_EQUAL(memcmp(dst, src, 32), 0);
    uint64_t want;
    memcpy(&want, src + 8, 8);
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RAX), want);
    CU_ASSERT(vm->stats.mmio_exits > 0);
    vm_destroy(vm);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("vm_memory", NULL, NULL);
    CU_add_test(s, "physical bounds without overflow", test_physical_bounds);
    CU_add_test(s, "RAM sizes", test_ram_sizes);
    CU_add_test(s, "RAM on a 2 MiB host boundary", test_ram_on_2mib_host_boundary);
    CU_add_test(s, "linear addresses through page tables", test_linear_through_page_tables);
    CU_add_test(s, "real mode: linear is physical", test_real_mode_linear_is_physical);
    CU_add_test(s, "a user page under SMAP with EFLAGS.AC clear reads; EFLAGS untouched",
                test_user_page_under_smap_with_ac_clear);
    CU_add_test(s, "one address through 4- and 5-level, PAE and 32-bit PSE tables, as the walk",
                test_lookup_in_each_paging_mode);
    CU_add_test(s, "slots tile RAM around trapped pages", test_trap_tiling);
    CU_add_test(s, "a full slot table leaves RAM usable", test_trap_table_full_keeps_ram_usable);
    CU_add_test(s, "the guest reads and copies through trapped pages",
                test_guest_through_trapped_pages);
}

int main(void)
{
    return test_main("test_vm_memory", register_suites, true);
}
