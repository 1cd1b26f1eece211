/* The register file by id: round trips through KVM in each mode, segment
 * loads as the CPU does them, the x87 tag word. (gdb's layouts are the
 * stub's: tests/stub.) */
#include "testmain.h"
#include "vmtest.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static void put(struct vm *vm, enum vm_reg_id id, uint64_t v)
{
    CU_ASSERT_EQUAL(vm_reg_set(&vm->cpus[0], id, v), 0);
}

static uint64_t get(struct vm *vm, enum vm_reg_id id)
{
    uint64_t v = 0;
    CU_ASSERT_EQUAL(vm_reg_get(&vm->cpus[0], id, &v), 0);
    return v;
}

static void test_long_mode_round_trip_through_guest(void)
{
    /* Values written through the API reach the CPU, and what the guest
     * computes comes back: mov %rax,0x5000; mov %r15,0x5008;
     * movdqu %xmm7,0x5010; mov $0x55aa,%ecx; movq %rcx,%xmm3; hlt */
    static const uint8_t code[] = {
        0x48, 0x89, 0x04, 0x25, 0x00, 0x50, 0x00, 0x00, /* mov %rax,0x5000 */
        0x4c, 0x89, 0x3c, 0x25, 0x08, 0x50, 0x00, 0x00, /* mov %r15,0x5008 */
        0xf3, 0x0f, 0x7f, 0x3c, 0x25, 0x10, 0x50, 0x00, 0x00, /* movdqu %xmm7,0x5010 */
        0xb9, 0xaa, 0x55, 0x00, 0x00,                   /* mov $0x55aa,%ecx */
        0x66, 0x48, 0x0f, 0x6e, 0xd9,                   /* movq %rcx,%xmm3 */
        0xf4,                                           /* hlt */
    };
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_LONG, 0x100000, code, sizeof(code)), 0);
    put(vm, VM_REG_RAX, 0x0123456789abcdefull);
    put(vm, VM_REG_R15, 0xfedcba9876543210ull);
    uint8_t xmm[16];
    for (int i = 0; i < 16; i++)
        xmm[i] = (uint8_t)(0xa0 + i);
    CU_ASSERT_EQUAL(vm_reg_write(&vm->cpus[0], VM_REG_XMM0 + 7, xmm, 16), 0);
    CU_ASSERT_EQUAL(get(vm, VM_REG_RAX), 0x0123456789abcdefull); /* cached */
    struct vm_event ev;
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL_FATAL(ev.type, VM_EVENT_HALT);
    uint64_t m[4];
    CU_ASSERT_EQUAL(vm_mem_read(&vm->mem, 0x5000, m, sizeof(m)), 0);
    CU_ASSERT_EQUAL(m[0], 0x0123456789abcdefull);
    CU_ASSERT_EQUAL(m[1], 0xfedcba9876543210ull);
    CU_ASSERT_EQUAL(memcmp(&m[2], xmm, 16), 0);
    uint8_t x3[16];
    CU_ASSERT_EQUAL(vm_reg_read(&vm->cpus[0], VM_REG_XMM0 + 3, x3, 16), 0);
    CU_ASSERT_EQUAL(x3[0], 0xaa);
    CU_ASSERT_EQUAL(x3[1], 0x55);
    CU_ASSERT_EQUAL(get(vm, VM_REG_RCX), 0x55aa);
    CU_ASSERT_EQUAL(get(vm, VM_REG_CS), 0x18);
    CU_ASSERT(get(vm, VM_REG_EFER) & (1u << 10)); /* LMA */
    CU_ASSERT(get(vm, VM_REG_CR0) & (1u << 31));  /* PG */
    CU_ASSERT_EQUAL(get(vm, VM_REG_CR3), vm_boot_area(vm) + 0x1000);
    CU_ASSERT_EQUAL(get(vm, VM_REG_MXCSR), 0x1f80);
    CU_ASSERT_EQUAL(get(vm, VM_REG_FCTRL), 0x37f);
    CU_ASSERT_EQUAL(get(vm, VM_REG_FTAG), 0xffff); /* all x87 registers empty */
    vm_destroy(vm);
}

static void test_every_register_round_trips(void)
{
    /* Each writable register reads back what was written (in the cache
     * and, after KVM took it, from KVM again). */
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    static const uint8_t hlt[] = {0xf4};
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_LONG, 0x100000, hlt, 1), 0);
    static const enum vm_reg_id skip[] = {
        VM_REG_CS, VM_REG_SS, VM_REG_DS, VM_REG_ES, VM_REG_FS, VM_REG_GS, VM_REG_CR0,
        VM_REG_CR3, VM_REG_CR4, VM_REG_EFER, VM_REG_EFLAGS, VM_REG_RIP, VM_REG_FTAG,
        VM_REG_FOP, VM_REG_CR8, VM_REG_MXCSR, VM_REG_FISEG, VM_REG_FOSEG};
    struct vm_cpu *cpu = &vm->cpus[0];
    for (unsigned id = 0; id <= VM_REG_MXCSR; id++) {
        bool skipped = false;
        for (size_t k = 0; k < sizeof(skip) / sizeof(skip[0]); k++)
            skipped |= skip[k] == id;
        if (skipped)
            continue;
        size_t size = !vm_reg_is_wide(id) ? 8 : id < VM_REG_XMM0 ? 10 : 16;
        if (id == VM_REG_FCTRL || id == VM_REG_FSTAT)
            size = 2;
        else if (id == VM_REG_FIOFF || id == VM_REG_FOOFF)
            size = 4;
        uint8_t in[16], out[16];
        for (unsigned b = 0; b < size; b++)
            in[b] = (uint8_t)(id * 7 + b * 13 + 1);
        if (size == 8) {
            in[5] &= 0x7f; /* base registers must stay canonical */
            in[6] = in[7] = 0;
        }
        CU_ASSERT_EQUAL(vm_reg_write(cpu, id, in, size), 0);
        CU_ASSERT_EQUAL(vm_regcache_flush(&cpu->rc), 0);
        vm_regcache_invalidate(&cpu->rc);
        CU_ASSERT_EQUAL(vm_reg_read(cpu, id, out, size), 0);
        if (memcmp(in, out, size) != 0) {
            fprintf(stderr, "register %u did not round-trip\n", id);
            CU_FAIL("round trip");
        }
    }
    /* fop keeps 11 bits, eflags bit 1 is always set, cr8 keeps 4 bits. */
    put(vm, VM_REG_FOP, 0xffff);
    put(vm, VM_REG_EFLAGS, 0x200);
    put(vm, VM_REG_CR8, 0x1f);
    CU_ASSERT_EQUAL(vm_regcache_flush(&cpu->rc), 0);
    vm_regcache_invalidate(&cpu->rc);
    CU_ASSERT_EQUAL(get(vm, VM_REG_FOP), 0x7ff);
    CU_ASSERT_EQUAL(get(vm, VM_REG_EFLAGS), 0x202);
    CU_ASSERT_EQUAL(get(vm, VM_REG_CR8), 0xf);
    uint8_t buf[8];
    CU_ASSERT_EQUAL(vm_reg_read(cpu, VM_REG_COUNT, buf, 8), -EINVAL);
    vm_destroy(vm);
}

static void test_system_registers(void)
{
    /* Segment parts, descriptor tables, debug registers: each write is
     * checked with KVM at once, reads come back, and a combination KVM
     * refuses is an error that leaves the old value. */
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    static const uint8_t hlt[] = {0xf4};
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_LONG, 0x100000, hlt, 1), 0);
    struct vm_cpu *cpu = &vm->cpus[0];
    CU_ASSERT_EQUAL(get(vm, VM_REG_CS_ATTR) & VM_SEG_ATTR_L, VM_SEG_ATTR_L);
    CU_ASSERT_EQUAL(get(vm, VM_REG_CS_ATTR) & VM_SEG_ATTR_TYPE, 0xb);
    CU_ASSERT_EQUAL(get(vm, VM_REG_DS_LIMIT), 0xffffffff);
    CU_ASSERT_EQUAL(get(vm, VM_REG_GDTR_BASE), vm_boot_area(vm));
    CU_ASSERT_EQUAL(get(vm, VM_REG_GDTR_LIMIT), 31);
    put(vm, VM_REG_ES_BASE, 0x12345000);
    put(vm, VM_REG_FS_LIMIT, 0xfffff);
    put(vm, VM_REG_IDTR_BASE, 0x2000);
    put(vm, VM_REG_IDTR_LIMIT, 0xfff);
    put(vm, VM_REG_DR0, 0x401000);
    put(vm, VM_REG_DR7, 0x401);
    uint64_t attr = get(vm, VM_REG_GS_ATTR);
    put(vm, VM_REG_GS_ATTR, attr | VM_SEG_ATTR_AVL);
    CU_ASSERT_EQUAL(vm_regcache_flush(&cpu->rc), 0);
    vm_regcache_invalidate(&cpu->rc);
    CU_ASSERT_EQUAL(get(vm, VM_REG_ES_BASE), 0x12345000);
    CU_ASSERT_EQUAL(get(vm, VM_REG_FS_LIMIT), 0xfffff);
    CU_ASSERT_EQUAL(get(vm, VM_REG_IDTR_BASE), 0x2000);
    CU_ASSERT_EQUAL(get(vm, VM_REG_IDTR_LIMIT), 0xfff);
    CU_ASSERT_EQUAL(get(vm, VM_REG_DR0), 0x401000);
    CU_ASSERT_EQUAL(get(vm, VM_REG_DR7) & 0xff, 0x01);
    CU_ASSERT(get(vm, VM_REG_GS_ATTR) & VM_SEG_ATTR_AVL);
    /* Paging without protection: KVM says no, at once. */
    uint64_t cr0 = get(vm, VM_REG_CR0);
    CU_ASSERT_EQUAL(vm_reg_set(cpu, VM_REG_CR0, cr0 & ~1ull), -EINVAL);
    CU_ASSERT_EQUAL(get(vm, VM_REG_CR0), cr0);
    CU_ASSERT_EQUAL(vm_reg_set(cpu, VM_REG_IDTR_LIMIT, 0x10000), -EINVAL);
    /* The AVX upper halves where the host has them. */
    uint8_t y[16], back[16];
    for (int i = 0; i < 16; i++)
        y[i] = (uint8_t)(0x40 + i);
    if (vm_xsave_features(vm) & (1u << 2)) {
        CU_ASSERT_EQUAL(vm_reg_write(cpu, VM_REG_YMM0H + 3, y, 16), 0);
        CU_ASSERT_EQUAL(vm_regcache_flush(&cpu->rc), 0);
        vm_regcache_invalidate(&cpu->rc);
        CU_ASSERT_EQUAL(vm_reg_read(cpu, VM_REG_YMM0H + 3, back, 16), 0);
        CU_ASSERT_EQUAL(memcmp(back, y, 16), 0);
    } else {
        CU_ASSERT_EQUAL(vm_reg_read(cpu, VM_REG_YMM0H + 3, back, 16), -ENOTSUP);
    }
    if (!(vm_xsave_features(vm) & 0xe0))
        CU_ASSERT_EQUAL(vm_reg_read(cpu, VM_REG_K0, back, 8), -ENOTSUP);
    vm_destroy(vm);
}

static void test_real_mode_segment_write_sets_base(void)
{
    /* CS=0x0100, IP=0: the code at linear 0x1000 runs. */
    static const uint8_t code[] = {0xb0, 0x37, 0xf4}; /* mov $0x37,%al; hlt */
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_REAL, 0x1000, code, sizeof(code)), 0);
    put(vm, VM_REG_CS, 0x100);
    put(vm, VM_REG_RIP, 0);
    put(vm, VM_REG_DS, 0x1234);
    CU_ASSERT_EQUAL(vm->cpus[0].rc.sregs.cs.base, 0x1000);
    CU_ASSERT_EQUAL(vm->cpus[0].rc.sregs.ds.base, 0x12340);
    struct vm_event ev;
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
    CU_ASSERT_EQUAL(get(vm, VM_REG_RIP), 3);
    CU_ASSERT_EQUAL(get(vm, VM_REG_RAX) & 0xff, 0x37);
    CU_ASSERT_EQUAL(get(vm, VM_REG_DS), 0x1234);
    vm_destroy(vm);
}

static void test_protected_mode_selector_loads_descriptor(void)
{
    static const uint8_t hlt[] = {0xf4};
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_PROTECTED, 0x100000, hlt, 1), 0);
    struct vm_cpu *cpu = &vm->cpus[0];
    /* es from the flat data descriptor */
    put(vm, VM_REG_ES, 0);
    CU_ASSERT(cpu->rc.sregs.es.unusable);
    put(vm, VM_REG_ES, 0x10);
    CU_ASSERT_EQUAL(cpu->rc.sregs.es.base, 0);
    CU_ASSERT_EQUAL(cpu->rc.sregs.es.limit, 0xffffffff);
    CU_ASSERT_EQUAL(cpu->rc.sregs.es.type, 3);
    CU_ASSERT(cpu->rc.sregs.es.db);
    /* A selector past the GDT's limit, or a null CS, is refused. */
    CU_ASSERT_EQUAL(vm_reg_set(cpu, VM_REG_FS, 0x28), -EINVAL);
    CU_ASSERT_EQUAL(vm_reg_set(cpu, VM_REG_CS, 0), -EINVAL);
    CU_ASSERT_EQUAL(get(vm, VM_REG_CS), 0x08);
    vm_destroy(vm);
}

static void test_x87_tag_word(void)
{
    uint8_t st[8][16];
    memset(st, 0, sizeof(st));
    CU_ASSERT_EQUAL(vm_fpu_full_tag(0, 0, &st[0][0]), 0xffff);
    /* 1.0 in st0 with TOP=7: physical register 7 is valid (00). */
    st[0][7] = 0x80;
    st[0][8] = 0xff;
    st[0][9] = 0x3f;
    uint16_t fsw = 7u << 11;
    CU_ASSERT_EQUAL(vm_fpu_full_tag(0x80, fsw, &st[0][0]), 0x3fff);
    /* 0.0 in st1 (physical 0 when TOP=7): zero (01). */
    CU_ASSERT_EQUAL(vm_fpu_full_tag(0x81, fsw, &st[0][0]), 0x3ffd);
    /* A NaN (exponent all ones) is special (10). */
    st[1][8] = 0xff;
    st[1][9] = 0x7f;
    CU_ASSERT_EQUAL(vm_fpu_full_tag(0x81, fsw, &st[0][0]), 0x3ffe);
    CU_ASSERT_EQUAL(vm_fpu_abridged_tag(0x3ffe), 0x81);
    CU_ASSERT_EQUAL(vm_fpu_abridged_tag(0xffff), 0x00);
    CU_ASSERT_EQUAL(vm_fpu_abridged_tag(0x0000), 0xff);
}

static void test_rip_write_wakes_halted_cpu(void)
{
    static const uint8_t code[] = {0xf4, 0xb0, 0x11, 0xf4}; /* hlt; mov $0x11,%al; hlt */
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_REAL, 0x1000, code, sizeof(code)), 0);
    struct vm_event ev;
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
    CU_ASSERT(vm->cpus[0].halted);
    /* Writing the same rip back (gdb's G packet) does not wake it ... */
    put(vm, VM_REG_RIP, 0x1001);
    CU_ASSERT(vm->cpus[0].halted);
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_STEP, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
    /* ... moving it does. */
    put(vm, VM_REG_RIP, 0x1000);
    put(vm, VM_REG_RIP, 0x1001);
    CU_ASSERT_FALSE(vm->cpus[0].halted);
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
    CU_ASSERT_EQUAL(get(vm, VM_REG_RAX) & 0xff, 0x11);
    vm_destroy(vm);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("vm_regs", NULL, NULL);
    CU_add_test(s, "long mode values reach the guest and back", test_long_mode_round_trip_through_guest);
    CU_add_test(s, "every register round-trips", test_every_register_round_trips);
    CU_add_test(s, "segment parts, descriptor tables, debug and AVX registers",
                test_system_registers);
    CU_add_test(s, "real-mode selector write sets the base", test_real_mode_segment_write_sets_base);
    CU_add_test(s, "protected-mode selector loads its descriptor",
                test_protected_mode_selector_loads_descriptor);
    CU_add_test(s, "x87 tag word", test_x87_tag_word);
    CU_add_test(s, "moving rip wakes a halted CPU", test_rip_write_wakes_halted_cpu);
}

int main(void)
{
    return test_main("test_vm_regs", register_suites, true);
}
