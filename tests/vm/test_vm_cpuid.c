/* Per-vCPU CPUID from a synthetic KVM_GET_SUPPORTED_CPUID table, and the
 * E2BIG retry against a fake ioctl (no KVM needed). */
#include "testmain.h"
#include "vm/cpuid.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fake ioctl (linked with --wrap=ioctl) ---- */
static int fake_mode; /* 0: wants 100 entries, 1: always E2BIG, 2: EINVAL */
static unsigned fake_calls;

int __wrap_ioctl(int fd, unsigned long req, ...);
int __wrap_ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    struct kvm_cpuid2 *c = va_arg(ap, struct kvm_cpuid2 *);
    va_end(ap);
    fake_calls++;
    if (fd != 42 || req != KVM_GET_SUPPORTED_CPUID) {
        errno = ENOTTY;
        return -1;
    }
    if (fake_mode == 2) {
        errno = EINVAL;
        return -1;
    }
    if (fake_mode == 1 || c->nent < 100) {
        errno = E2BIG;
        return -1;
    }
    c->nent = 100;
    for (uint32_t i = 0; i < 100; i++)
        c->entries[i].function = i;
    return 0;
}

static void test_supported_grows_on_e2big(void)
{
    struct kvm_cpuid2 *c = NULL;
    fake_mode = 0;
    fake_calls = 0;
    CU_ASSERT_EQUAL(vm_cpuid_supported(42, &c), 0);
    CU_ASSERT_EQUAL(fake_calls, 2); /* 64 entries, then 128 */
    CU_ASSERT_FATAL(c != NULL);
    CU_ASSERT_EQUAL(c->nent, 100);
    CU_ASSERT_EQUAL(c->entries[99].function, 99);
    free(c);
}

static void test_supported_gives_up_and_passes_errors(void)
{
    struct kvm_cpuid2 *c = NULL;
    fake_mode = 1;
    fake_calls = 0;
    CU_ASSERT_EQUAL(vm_cpuid_supported(42, &c), -E2BIG);
    CU_ASSERT_EQUAL(fake_calls, 7); /* 64 .. 4096 */
    CU_ASSERT_PTR_NULL(c);
    fake_mode = 2;
    CU_ASSERT_EQUAL(vm_cpuid_supported(42, &c), -EINVAL);
    CU_ASSERT_PTR_NULL(c);
}

/* ---- a synthetic supported table ---- */
static struct kvm_cpuid2 *synthetic(bool with_leaf_b_1)
{
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 32 * sizeof(c->entries[0]));
    uint32_t n = 0;
#define ADD(f, i, fl, a, b, cc, d)                                                                \
    c->entries[n++] = (struct kvm_cpuid_entry2){                                                 \
        .function = (f), .index = (i), .flags = (fl), .eax = (a), .ebx = (b), .ecx = (cc), .edx = (d)}
    const uint32_t IDX = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
    ADD(0, 0, 0, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69);
    ADD(1, 0, 0, 0x806f8, 0x00cc0800 | 7u << 24, 0x7ffefbff, 0x0fabfbff);
    ADD(4, 0, IDX, 0x1c004121, 0x01c0003f, 0x3f, 0);  /* L1d, 8 sharing, 14+1 cores (host) */
    ADD(4, 1, IDX, 0x1c004122, 0x01c0003f, 0x3f, 0);  /* L1i */
    ADD(4, 2, IDX, 0x1c004143, 0x03c0003f, 0x7ff, 0); /* L2 */
    ADD(4, 3, IDX, 0x1c03c163, 0x03c0003f, 0x3fff, 4); /* L3, 240 sharing */
    ADD(4, 4, IDX, 0, 0, 0, 0);                        /* no more caches */
    ADD(0xb, 0, IDX, 1, 2, 0x100, 7);
    if (with_leaf_b_1) {
        ADD(0xb, 1, IDX, 5, 28, 0x201, 7);
        ADD(0xb, 2, IDX, 0, 0, 2, 7);
    }
    ADD(0x40000000, 0, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d);
    ADD(0x40000001, 0, 0, 0x01007afb, 0, 0, 0);
    ADD(0x80000000, 0, 0, 0x8000001e, 0, 0, 0);
    ADD(0x80000008, 0, 0, 0x3030, 0, 0x3700f, 0);
    ADD(0x8000001e, 0, 0, 9, 0x0103, 0x0301, 0);
#undef ADD
    c->nent = n;
    return c;
}

static struct kvm_cpuid_entry2 *leaf(struct kvm_cpuid2 *c, uint32_t f, uint32_t i)
{
    struct kvm_cpuid_entry2 *e = vm_cpuid_find(c, f, i);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    return e;
}

static void test_four_cpu_topology(void)
{
    struct kvm_cpuid2 *sup = synthetic(true), *c = NULL;
    CU_ASSERT_EQUAL_FATAL(vm_cpuid_for_vcpu(sup, 2, 4, &c), 0);
    struct kvm_cpuid_entry2 *e = leaf(c, 1, 0);
    CU_ASSERT(e->ecx & (1u << 31));           /* hypervisor */
    CU_ASSERT_EQUAL(e->ebx >> 24, 2);          /* initial APIC id */
    CU_ASSERT_EQUAL((e->ebx >> 16) & 0xff, 4); /* ids in the package */
    CU_ASSERT_EQUAL(e->ebx & 0xffff, 0x0800);  /* CLFLUSH size kept */
    CU_ASSERT(e->edx & (1u << 28));            /* HTT */
    CU_ASSERT_EQUAL(e->eax, 0x806f8);          /* signature kept */

    e = leaf(c, 0xb, 0);
    CU_ASSERT_EQUAL(e->eax, 0);
    CU_ASSERT_EQUAL(e->ebx, 1);
    CU_ASSERT_EQUAL(e->ecx, 0x100);
    CU_ASSERT_EQUAL(e->edx, 2);
    e = leaf(c, 0xb, 1);
    CU_ASSERT_EQUAL(e->eax, 2);
    CU_ASSERT_EQUAL(e->ebx, 4);
    CU_ASSERT_EQUAL(e->ecx, 0x201);
    CU_ASSERT_EQUAL(e->edx, 2);
    e = leaf(c, 0xb, 2);
    CU_ASSERT_EQUAL(e->ecx & 0xff00, 0); /* end of levels */
    CU_ASSERT_EQUAL(e->edx, 2);
    CU_ASSERT_PTR_NULL(vm_cpuid_find(c, 0x1f, 0)); /* not offered: not invented */

    CU_ASSERT_EQUAL(leaf(c, 4, 0)->eax >> 26, 3);
    CU_ASSERT_EQUAL((leaf(c, 4, 0)->eax >> 14) & 0xfff, 0); /* L1 private */
    CU_ASSERT_EQUAL((leaf(c, 4, 3)->eax >> 14) & 0xfff, 3); /* L3 shared by all 4 */
    CU_ASSERT_EQUAL(leaf(c, 4, 3)->eax & 0x3fff, 0x0163);   /* type and level kept */
    CU_ASSERT_EQUAL(leaf(c, 4, 4)->eax, 0);

    e = leaf(c, 0x40000000, 0);
    CU_ASSERT_EQUAL(e->eax, 0x40000001);
    CU_ASSERT_EQUAL(e->ebx, 0x4b4d564b); /* "KVMK" */
    CU_ASSERT_EQUAL(leaf(c, 0x40000001, 0)->eax, 0x01007afb);
    CU_ASSERT_EQUAL(leaf(c, 0x80000008, 0)->ecx, 0x32003); /* NC 3, 2 id bits, PerfTscSize kept */
    e = leaf(c, 0x8000001e, 0);
    CU_ASSERT_EQUAL(e->eax, 2);
    CU_ASSERT_EQUAL(e->ebx, 2);
    CU_ASSERT_EQUAL(e->ecx, 0);
    /* The input table is not modified. */
    CU_ASSERT_EQUAL(vm_cpuid_find(sup, 1, 0)->ebx >> 24, 7);
    free(c);
    free(sup);
}

static void test_each_vcpu_gets_its_own_id(void)
{
    struct kvm_cpuid2 *sup = synthetic(true);
    for (unsigned i = 0; i < 16; i++) {
        struct kvm_cpuid2 *c = NULL;
        CU_ASSERT_EQUAL_FATAL(vm_cpuid_for_vcpu(sup, i, 16, &c), 0);
        CU_ASSERT_EQUAL(leaf(c, 1, 0)->ebx >> 24, i);
        CU_ASSERT_EQUAL(leaf(c, 0xb, 0)->edx, i);
        CU_ASSERT_EQUAL(leaf(c, 0xb, 1)->edx, i);
        CU_ASSERT_EQUAL(leaf(c, 0xb, 1)->eax, 4);
        free(c);
    }
    free(sup);
}

static void test_one_cpu_and_missing_subleaves(void)
{
    struct kvm_cpuid2 *sup = synthetic(false), *c = NULL;
    CU_ASSERT_EQUAL_FATAL(vm_cpuid_for_vcpu(sup, 0, 1, &c), 0);
    CU_ASSERT_EQUAL(c->nent, sup->nent + 2); /* 0xB subleaves 1 and 2 added */
    struct kvm_cpuid_entry2 *e = leaf(c, 1, 0);
    CU_ASSERT_FALSE(e->edx & (1u << 28));
    CU_ASSERT_EQUAL((e->ebx >> 16) & 0xff, 1);
    CU_ASSERT_EQUAL(e->ebx >> 24, 0);
    e = leaf(c, 0xb, 1);
    CU_ASSERT_EQUAL(e->index, 1);
    CU_ASSERT(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
    CU_ASSERT_EQUAL(e->ebx, 1);
    CU_ASSERT_EQUAL(e->eax, 0);
    CU_ASSERT_EQUAL(leaf(c, 0xb, 2)->ecx, 2);
    free(c);
    free(sup);
}

static void test_refusals(void)
{
    struct kvm_cpuid2 *sup = synthetic(true), *c = NULL;
    CU_ASSERT_EQUAL(vm_cpuid_for_vcpu(sup, 4, 4, &c), -EINVAL);
    CU_ASSERT_EQUAL(vm_cpuid_for_vcpu(sup, 0, 0, &c), -EINVAL);
    CU_ASSERT_EQUAL(vm_cpuid_for_vcpu(sup, 0, VM_CPUID_MAX_CPUS + 1, &c), -EINVAL);
    CU_ASSERT_EQUAL(vm_cpuid_for_vcpu(NULL, 0, 1, &c), -EINVAL);
    uint32_t nent = sup->nent;
    sup->nent = VM_CPUID_MAX_ENTRIES + 1; /* a length no allocation may follow */
    CU_ASSERT_EQUAL(vm_cpuid_for_vcpu(sup, 0, 1, &c), -EINVAL);
    sup->nent = nent;
    CU_ASSERT_PTR_NULL(c);
    free(sup);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("vm_cpuid", NULL, NULL);
    CU_add_test(s, "KVM_GET_SUPPORTED_CPUID retried with a bigger buffer on E2BIG",
                test_supported_grows_on_e2big);
    CU_add_test(s, "E2BIG forever gives up; other errors pass through",
                test_supported_gives_up_and_passes_errors);
    CU_add_test(s, "4 CPUs: hypervisor bit, APIC ids, topology leaves, KVM leaves kept",
                test_four_cpu_topology);
    CU_add_test(s, "each of 16 vCPUs gets its own APIC id", test_each_vcpu_gets_its_own_id);
    CU_add_test(s, "1 CPU, and 0xB subleaves KVM left out", test_one_cpu_and_missing_subleaves);
    CU_add_test(s, "bad index, count or table refused", test_refusals);
}

int main(void)
{
    return test_main("test_vm_cpuid", register_suites, false);
}
