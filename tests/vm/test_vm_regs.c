/* The register file: gdb's layouts, round trips through KVM in each mode,
 * segment loads as the CPU does them, the x87 tag word. */
#include "testmain.h"
#include "vmtest.h"

#include <CUnit/CUnit.h>
#include <string.h>

static int find(enum vm_arch arch, const char *name)
{
    size_t n;
    const struct vm_reg_desc *d = vm_regs_layout(arch, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(d[i].name, name) == 0)
            return (int)i;
    CU_FAIL("register not in layout");
    return 0;
}

static void put(struct vm *vm, enum vm_arch arch, const char *name, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    CU_ASSERT_EQUAL(vm_reg_write(&vm->cpus[0], arch, (size_t)find(arch, name), b), 0);
}

static uint64_t get(struct vm *vm, enum vm_arch arch, const char *name)
{
    uint8_t b[16] = {0};
    CU_ASSERT_EQUAL(vm_reg_read(&vm->cpus[0], arch, (size_t)find(arch, name), b), 0);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

static void test_layouts(void)
{
    size_t n64, n32;
    const struct vm_reg_desc *a = vm_regs_layout(VM_ARCH_AMD64, &n64);
    const struct vm_reg_desc *b = vm_regs_layout(VM_ARCH_I386, &n32);
    CU_ASSERT_EQUAL(n64, 66);
    CU_ASSERT_EQUAL(n32, 48);
    /* gdb's amd64 order: 16 GPRs, rip, eflags, 6 segments, st0-7, 8 x87
     * control registers, xmm0-15, mxcsr; then the system registers. */
    CU_ASSERT_STRING_EQUAL(a[0].name, "rax");
    CU_ASSERT_STRING_EQUAL(a[16].name, "rip");
    CU_ASSERT_STRING_EQUAL(a[17].name, "eflags");
    CU_ASSERT_STRING_EQUAL(a[24].name, "st0");
    CU_ASSERT_STRING_EQUAL(a[40].name, "xmm0");
    CU_ASSERT_STRING_EQUAL(a[56].name, "mxcsr");
    CU_ASSERT_STRING_EQUAL(b[0].name, "eax");
    CU_ASSERT_STRING_EQUAL(b[8].name, "eip");
    CU_ASSERT_STRING_EQUAL(b[16].name, "st0");
    /* Sizes of the 'g' packet: 16*8+8+4+6*4 + 8*10 + 8*4 + 16*16 + 4 + 9*8. */
    CU_ASSERT_EQUAL(vm_regs_size(VM_ARCH_AMD64), 16 * 8 + 8 + 4 + 24 + 80 + 32 + 256 + 4 + 72);
    CU_ASSERT_EQUAL(vm_regs_size(VM_ARCH_I386), 8 * 4 + 4 + 4 + 24 + 80 + 32 + 128 + 4 + 6 * 4 + 8);
    for (size_t i = 0; i < n64; i++)
        for (size_t j = i + 1; j < n64; j++)
            CU_ASSERT(strcmp(a[i].name, a[j].name) != 0);
    uint8_t buf[16];
    CU_ASSERT_EQUAL(vm_reg_read(NULL, VM_ARCH_AMD64, n64, buf), -EINVAL);
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
    enum vm_arch A = VM_ARCH_AMD64;
    put(vm, A, "rax", 0x0123456789abcdefull);
    put(vm, A, "r15", 0xfedcba9876543210ull);
    uint8_t xmm[16];
    for (int i = 0; i < 16; i++)
        xmm[i] = (uint8_t)(0xa0 + i);
    CU_ASSERT_EQUAL(vm_reg_write(&vm->cpus[0], A, (size_t)find(A, "xmm7"), xmm), 0);
    CU_ASSERT_EQUAL(get(vm, A, "rax"), 0x0123456789abcdefull); /* cached */
    struct vm_event ev;
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL_FATAL(ev.type, VM_EVENT_HALT);
    uint64_t m[4];
    CU_ASSERT_EQUAL(vm_mem_read(&vm->mem, 0x5000, m, sizeof(m)), 0);
    CU_ASSERT_EQUAL(m[0], 0x0123456789abcdefull);
    CU_ASSERT_EQUAL(m[1], 0xfedcba9876543210ull);
    CU_ASSERT_EQUAL(memcmp(&m[2], xmm, 16), 0);
    uint8_t x3[16];
    CU_ASSERT_EQUAL(vm_reg_read(&vm->cpus[0], A, (size_t)find(A, "xmm3"), x3), 0);
    CU_ASSERT_EQUAL(x3[0], 0xaa);
    CU_ASSERT_EQUAL(x3[1], 0x55);
    CU_ASSERT_EQUAL(get(vm, A, "rcx"), 0x55aa);
    CU_ASSERT_EQUAL(get(vm, A, "cs"), 0x18);
    CU_ASSERT(get(vm, A, "efer") & (1u << 10)); /* LMA */
    CU_ASSERT(get(vm, A, "cr0") & (1u << 31));  /* PG */
    CU_ASSERT_EQUAL(get(vm, A, "cr3"), vm_boot_area(vm) + 0x1000);
    CU_ASSERT_EQUAL(get(vm, A, "mxcsr"), 0x1f80);
    CU_ASSERT_EQUAL(get(vm, A, "fctrl"), 0x37f);
    CU_ASSERT_EQUAL(get(vm, A, "ftag"), 0xffff); /* all x87 registers empty */
    vm_destroy(vm);
}

static void test_every_register_round_trips(void)
{
    /* Each writable register of both layouts reads back what was written
     * (in the cache and, after KVM took it, from KVM again). */
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    static const uint8_t hlt[] = {0xf4};
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_LONG, 0x100000, hlt, 1), 0);
    static const char *skip[] = {"cs", "ss", "ds", "es", "fs", "gs", "cr0", "cr3", "cr4",
                                 "efer", "eflags", "rip", "eip", "ftag", "fop", "cr8",
                                 "mxcsr", "fiseg", "foseg"};
    for (enum vm_arch arch = VM_ARCH_I386; arch <= VM_ARCH_AMD64; arch++) {
        size_t n;
        const struct vm_reg_desc *d = vm_regs_layout(arch, &n);
        for (size_t i = 0; i < n; i++) {
            bool skipped = false;
            for (size_t k = 0; k < sizeof(skip) / sizeof(skip[0]); k++)
                skipped |= strcmp(d[i].name, skip[k]) == 0;
            if (skipped)
                continue;
            uint8_t in[16], out[16];
            for (unsigned b = 0; b < d[i].size; b++)
                in[b] = (uint8_t)(i * 7 + b * 13 + 1);
            if (strcmp(d[i].name, "fctrl") == 0 || strcmp(d[i].name, "fstat") == 0)
                in[2] = in[3] = 0; /* 16-bit registers in 32-bit slots */
            if (d[i].size == 8) {
                in[5] &= 0x7f; /* base registers must stay canonical */
                in[6] = in[7] = 0;
            }
            CU_ASSERT_EQUAL(vm_reg_write(&vm->cpus[0], arch, i, in), 0);
            CU_ASSERT_EQUAL(vm_regs_flush(&vm->cpus[0]), 0);
            vm_regs_invalidate(&vm->cpus[0]);
            CU_ASSERT_EQUAL(vm_reg_read(&vm->cpus[0], arch, i, out), 0);
            if (memcmp(in, out, d[i].size) != 0) {
                fprintf(stderr, "register %s did not round-trip\n", d[i].name);
                CU_FAIL("round trip");
            }
        }
    }
    /* fop keeps 11 bits, eflags bit 1 is always set, cr8 keeps 4 bits. */
    put(vm, VM_ARCH_AMD64, "fop", 0xffff);
    put(vm, VM_ARCH_AMD64, "eflags", 0x200);
    put(vm, VM_ARCH_AMD64, "cr8", 0x1f);
    CU_ASSERT_EQUAL(vm_regs_flush(&vm->cpus[0]), 0);
    vm_regs_invalidate(&vm->cpus[0]);
    CU_ASSERT_EQUAL(get(vm, VM_ARCH_AMD64, "fop"), 0x7ff);
    CU_ASSERT_EQUAL(get(vm, VM_ARCH_AMD64, "eflags"), 0x202);
    CU_ASSERT_EQUAL(get(vm, VM_ARCH_AMD64, "cr8"), 0xf);
    vm_destroy(vm);
}

static void test_i386_layout_keeps_upper_halves_in_long_mode(void)
{
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    static const uint8_t hlt[] = {0xf4};
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_LONG, 0x100000, hlt, 1), 0);
    put(vm, VM_ARCH_AMD64, "rbx", 0x1111111122222222ull);
    put(vm, VM_ARCH_I386, "ebx", 0x33333333);
    CU_ASSERT_EQUAL(get(vm, VM_ARCH_AMD64, "rbx"), 0x1111111133333333ull);
    CU_ASSERT_EQUAL(get(vm, VM_ARCH_I386, "ebx"), 0x33333333);
    vm_destroy(vm);
}

static void test_real_mode_segment_write_sets_base(void)
{
    /* CS=0x0100, IP=0: the code at linear 0x1000 runs. */
    static const uint8_t code[] = {0xb0, 0x37, 0xf4}; /* mov $0x37,%al; hlt */
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_REAL, 0x1000, code, sizeof(code)), 0);
    put(vm, VM_ARCH_I386, "cs", 0x100);
    put(vm, VM_ARCH_I386, "eip", 0);
    put(vm, VM_ARCH_I386, "ds", 0x1234);
    CU_ASSERT_EQUAL(vm->cpus[0].rc.sregs.cs.base, 0x1000);
    CU_ASSERT_EQUAL(vm->cpus[0].rc.sregs.ds.base, 0x12340);
    struct vm_event ev;
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
    CU_ASSERT_EQUAL(get(vm, VM_ARCH_I386, "eip"), 3);
    CU_ASSERT_EQUAL(get(vm, VM_ARCH_I386, "eax") & 0xff, 0x37);
    CU_ASSERT_EQUAL(get(vm, VM_ARCH_I386, "ds"), 0x1234);
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
    put(vm, VM_ARCH_I386, "es", 0);
    CU_ASSERT(cpu->rc.sregs.es.unusable);
    put(vm, VM_ARCH_I386, "es", 0x10);
    CU_ASSERT_EQUAL(cpu->rc.sregs.es.base, 0);
    CU_ASSERT_EQUAL(cpu->rc.sregs.es.limit, 0xffffffff);
    CU_ASSERT_EQUAL(cpu->rc.sregs.es.type, 3);
    CU_ASSERT(cpu->rc.sregs.es.db);
    /* A selector past the GDT's limit, or a null CS, is refused. */
    uint8_t b[4] = {0x28, 0, 0, 0};
    CU_ASSERT_EQUAL(vm_reg_write(cpu, VM_ARCH_I386, (size_t)find(VM_ARCH_I386, "fs"), b), -EINVAL);
    uint8_t z[4] = {0};
    CU_ASSERT_EQUAL(vm_reg_write(cpu, VM_ARCH_I386, (size_t)find(VM_ARCH_I386, "cs"), z), -EINVAL);
    CU_ASSERT_EQUAL(get(vm, VM_ARCH_I386, "cs"), 0x08);
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
    put(vm, VM_ARCH_I386, "eip", 0x1001);
    CU_ASSERT(vm->cpus[0].halted);
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_STEP, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
    /* ... moving it does. */
    put(vm, VM_ARCH_I386, "eip", 0x1000);
    put(vm, VM_ARCH_I386, "eip", 0x1001);
    CU_ASSERT_FALSE(vm->cpus[0].halted);
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
    CU_ASSERT_EQUAL(get(vm, VM_ARCH_I386, "eax") & 0xff, 0x11);
    vm_destroy(vm);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("vm_regs", NULL, NULL);
    CU_add_test(s, "gdb layouts", test_layouts);
    CU_add_test(s, "long mode values reach the guest and back", test_long_mode_round_trip_through_guest);
    CU_add_test(s, "every register round-trips", test_every_register_round_trips);
    CU_add_test(s, "i386 layout in long mode keeps upper halves",
                test_i386_layout_keeps_upper_halves_in_long_mode);
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
