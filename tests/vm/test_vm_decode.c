/* The memory-operand decoder behind read watchpoints on code pages (no KVM
 * needed: the CPU state is made up). */
#include "testmain.h"
#include "vm/decode.h"
#include "vm/disasm.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

static struct kvm_regs regs;
static struct kvm_sregs sregs;

static void long_mode(void)
{
    memset(&regs, 0, sizeof(regs));
    memset(&sregs, 0, sizeof(sregs));
    sregs.cr0 = 0x80000011;
    sregs.efer = 0x500;
    sregs.cs.l = 1;
    regs.rax = 0x1000;
    regs.rbx = 3;
    regs.rsi = 0x5000;
    regs.rdi = 0x6000;
    regs.rsp = 0x8000;
    regs.r12 = 0x9000;
    regs.rip = 0x100000;
    sregs.fs.base = 0x7770000;
}

/* Decodes code and checks the first access. */
static void check(const uint8_t *code, size_t n, size_t want_count, uint64_t addr, uint32_t size,
                  bool read, bool write)
{
    struct vm_access a[VM_DECODE_MAX_ACCESSES];
    size_t k = vm_decode_access(code, n, &regs, &sregs, a);
    CU_ASSERT_EQUAL(k, want_count);
    if (k && want_count) {
        CU_ASSERT_EQUAL(a[0].addr, addr);
        CU_ASSERT_EQUAL(a[0].size, size);
        CU_ASSERT_EQUAL(a[0].read, read);
        CU_ASSERT_EQUAL(a[0].write, write);
    }
}

#define CHECK(bytes, ...)                                                                          \
    do {                                                                                           \
        static const uint8_t c_[] = bytes;                                                         \
        check(c_, sizeof(c_), __VA_ARGS__);                                                        \
    } while (0)
#define B(...) {__VA_ARGS__}

static void test_long_mode_operands(void)
{
    long_mode();
    CHECK(B(0x8b, 0x4c, 0x98, 0x10), 1, 0x1000 + 12 + 0x10, 4, true, false); /* mov load */
    CHECK(B(0x89, 0x4c, 0x98, 0x10), 1, 0x1000 + 12 + 0x10, 4, false, true); /* mov store */
    /* addl $5,0x100(%rip): relative to the end of the 7-byte instruction */
    CHECK(B(0x83, 0x05, 0x00, 0x01, 0x00, 0x00, 0x05), 1, 0x100000 + 7 + 0x100, 4, true, true);
    CHECK(B(0x80, 0x3e, 0x01), 1, 0x5000, 1, true, false); /* cmpb: a read only */
    CHECK(B(0x48, 0x8d, 0x50, 0x08), 0, 0, 0, false, false); /* lea touches nothing */
    CHECK(B(0xf3, 0x0f, 0x6f, 0x4f, 0x20), 1, 0x6020, 16, true, false);
    CHECK(B(0xf3, 0x0f, 0x7f, 0x4f, 0x20), 1, 0x6020, 16, false, true);
    CHECK(B(0xc5, 0xfe, 0x6f, 0x56, 0x40), 1, 0x5040, 32, true, false); /* vmovdqu ymm */
    CHECK(B(0x50), 1, 0x8000 - 8, 8, false, true);                      /* push */
    CHECK(B(0x5b), 1, 0x8000, 8, true, false);                          /* pop */
    CHECK(B(0xa4), 2, 0x5000, 1, true, false);                          /* movsb */
    CHECK(B(0xad), 1, 0x5000, 4, true, false);                          /* lodsl */
    CHECK(B(0x64, 0x48, 0x8b, 0x04, 0x25, 0x08, 0x00, 0x00, 0x00), 1, 0x7770008, 8, true, false);
    CHECK(B(0xa1, 0x00, 0x78, 0x56, 0x34, 0x12, 0x00, 0x00, 0x00), 1, 0x1234567800ull, 4, true,
          false);
    CHECK(B(0x41, 0xff, 0x04, 0x24), 1, 0x9000, 4, true, true); /* incl (%r12) */
    CHECK(B(0x89, 0xc1), 0, 0, 0, false, false);                 /* register only */
    /* truncated input decodes to nothing rather than garbage */
    CHECK(B(0x8b, 0x4c, 0x98), 0, 0, 0, false, false);
    CHECK(B(0x66, 0x66, 0x66), 0, 0, 0, false, false);
}

static void test_real_mode_operands(void)
{
    memset(&regs, 0, sizeof(regs));
    memset(&sregs, 0, sizeof(sregs));
    regs.rbx = 0x100;
    regs.rsi = 0x20;
    regs.rbp = 0x400;
    regs.rsp = 0x7000;
    regs.rdi = 0x30;
    sregs.ds.base = 0x10000;
    sregs.ss.base = 0x20000;
    sregs.es.base = 0x30000;
    CHECK(B(0x8b, 0x40, 0x10), 1, 0x10000 + 0x130, 2, true, false); /* mov 0x10(%bx,%si),%ax */
    CHECK(B(0x89, 0x46, 0x00), 1, 0x20000 + 0x400, 2, false, true); /* (%bp) uses ss */
    CHECK(B(0xff, 0x06, 0x00, 0x30), 1, 0x13000, 2, true, true);     /* incw 0x3000 */
    CHECK(B(0x50), 1, 0x20000 + 0x7000 - 2, 2, false, true);         /* push %ax */
    CHECK(B(0x26, 0x8a, 0x05), 1, 0x30000 + 0x30, 1, true, false);   /* mov %es:(%di),%al */
}

static void test_protected_mode_operands(void)
{
    memset(&regs, 0, sizeof(regs));
    memset(&sregs, 0, sizeof(sregs));
    sregs.cr0 = 1;
    sregs.cs.db = 1;
    sregs.ss.db = 1;
    regs.rbp = 0x9000;
    CHECK(B(0x8b, 0x45, 0x08), 1, 0x9008, 4, true, false);
    CHECK(B(0xc7, 0x05, 0x00, 0x10, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00), 1, 0x1000, 4, false, true);
    CHECK(B(0xdd, 0x05, 0x00, 0x20, 0x00, 0x00), 1, 0x2000, 8, true, false);  /* fldl */
    CHECK(B(0xd9, 0x1d, 0x00, 0x30, 0x00, 0x00), 1, 0x3000, 4, false, true);  /* fstps */
    /* In 32-bit code c4/c5 with a memory ModRM are les/lds, not VEX. */
    CHECK(B(0xc4, 0x45, 0x08), 1, 0x9008, 6, true, false);
}

/* What reverse execution must refuse: TSC, performance counters and the
 * random-number instructions, behind prefixes; look-alikes pass. */
static void test_nondeterministic(void)
{
    static const struct {
        uint8_t b[6];
        size_t n;
        bool lm;
        const char *want;
    } cases[] = {
        {{0x0f, 0x31}, 2, false, "RDTSC"},
        {{0x0f, 0x01, 0xf9}, 3, true, "RDTSCP"},
        {{0x0f, 0x33}, 2, true, "RDPMC"},
        {{0x48, 0x0f, 0xc7, 0xf0}, 4, true, "RDRAND"},   /* rdrand rax */
        {{0x66, 0x0f, 0xc7, 0xf8}, 4, false, "RDSEED"},  /* rdseed ax */
        {{0x0f, 0xc7, 0x0e}, 3, false, NULL},            /* cmpxchg8b [esi]: memory form */
        {{0x0f, 0x01, 0xf8}, 3, true, NULL},             /* swapgs */
        {{0x48, 0x0f, 0x31}, 3, false, NULL},            /* dec eax; then 0f 31 is not first */
        {{0x90}, 1, true, NULL},
        {{0x0f}, 1, true, NULL},                         /* cut short */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = vm_decode_nondeterministic(cases[i].b, cases[i].n, cases[i].lm);
        if (cases[i].want) {
            CU_ASSERT(got && strcmp(got, cases[i].want) == 0);
        } else {
            CU_ASSERT_PTR_NULL(got);
        }
    }
}

/* Instructions as text, the way objdump -d prints them (checked against
 * it), for internal-error messages; unknown ones and short bytes refused. */
static void test_disasm(void)
{
    static const struct {
        uint8_t b[15];
        size_t n;
        unsigned bits;
        const char *want;
    } cases[] = {
        {{0x66, 0x48, 0x0f, 0x6e, 0xd9}, 5, 64, "movq %rcx,%xmm3"},
        {{0x66, 0x0f, 0x6e, 0xc0}, 4, 32, "movd %eax,%xmm0"},
        {{0x66, 0x0f, 0xd6, 0x45, 0xf8}, 5, 64, "movq %xmm0,-0x8(%rbp)"},
        {{0x0f, 0x29, 0x04, 0x24}, 4, 64, "movaps %xmm0,(%rsp)"},
        {{0xf3, 0x0f, 0x6f, 0x0d, 0x10, 0x00, 0x00, 0x00}, 8, 64, "movdqu 0x10(%rip),%xmm1"},
        {{0x66, 0x0f, 0xef, 0xc0}, 4, 64, "pxor %xmm0,%xmm0"},
        {{0x89, 0x14, 0x85, 0x60, 0x60, 0x10, 0x00}, 7, 32, "mov %edx,0x106060(,%eax,4)"},
        {{0x8b, 0x45, 0x08}, 3, 32, "mov 0x8(%ebp),%eax"},
        {{0xc7, 0x00, 0x01, 0x00, 0x00, 0x00}, 6, 32, "movl $0x1,(%eax)"},
        {{0x83, 0xc0, 0x01}, 3, 32, "add $0x1,%eax"},
        {{0xf0, 0x0f, 0xb1, 0x0a}, 4, 64, NULL}, /* lock cmpxchg: not known */
        {{0x87, 0x02}, 2, 32, "xchg %eax,(%edx)"},
        {{0x64, 0x8a, 0x07}, 3, 16, "mov %fs:(%bx),%al"},
        {{0x55}, 1, 32, "push %ebp"},
        {{0x55}, 1, 64, "push %rbp"},
        {{0xf3, 0x90}, 2, 32, "pause"},
        {{0xf4}, 1, 16, "hlt"},
        {{0x0f, 0x22, 0xd8}, 3, 64, "mov %rax,%cr3"},
        {{0x66, 0x48, 0x0f}, 3, 64, NULL},       /* cut short */
        {{0xc5, 0xf9, 0x6f, 0xc1}, 4, 64, NULL}, /* VEX: not known */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[80];
        bool ok = vm_disasm(cases[i].b, cases[i].n, cases[i].bits, out, sizeof(out));
        if (cases[i].want) {
            CU_ASSERT_TRUE(ok);
            if (!ok || strcmp(out, cases[i].want) != 0)
                printf("\n    case %zu: got '%s', want '%s'\n", i, ok ? out : "(refused)",
                       cases[i].want);
            CU_ASSERT_STRING_EQUAL(out, cases[i].want);
        } else {
            CU_ASSERT_FALSE(ok);
        }
    }
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("vm_decode", NULL, NULL);
    CU_add_test(s, "long mode operands", test_long_mode_operands);
    CU_add_test(s, "real mode operands", test_real_mode_operands);
    CU_add_test(s, "protected mode operands", test_protected_mode_operands);
    CU_add_test(s, "RDTSC, RDTSCP, RDPMC, RDRAND, RDSEED found", test_nondeterministic);
    CU_add_test(s, "instructions as AT&T text, unknown ones refused", test_disasm);
}

int main(void)
{
    return test_main("test_vm_decode", register_suites, false);
}
