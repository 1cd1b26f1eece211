/* gdb's register layouts and the target description made from them. */
#include "testmain.h"

#include "stub/regmap.h"
#include "stub/tdesc.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static int index_of(const struct stub_reg *d, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(d[i].name, name) == 0)
            return (int)i;
    return -1;
}

static void test_layouts(void)
{
    size_t n64, n32;
    const struct stub_reg *a = stub_regmap(STUB_ARCH_AMD64, 0, &n64);
    const struct stub_reg *b = stub_regmap(STUB_ARCH_I386, 0, &n32);
    /* gdb's amd64 order: 16 GPRs, rip, eflags, 6 segments, st0-7, 8 x87
     * control registers, xmm0-15, mxcsr, fs_base, gs_base; then kvmstub's
     * system registers. */
    CU_ASSERT_STRING_EQUAL(a[0].name, "rax");
    CU_ASSERT_STRING_EQUAL(a[16].name, "rip");
    CU_ASSERT_STRING_EQUAL(a[17].name, "eflags");
    CU_ASSERT_STRING_EQUAL(a[24].name, "st0");
    CU_ASSERT_STRING_EQUAL(a[40].name, "xmm0");
    CU_ASSERT_STRING_EQUAL(a[56].name, "mxcsr");
    CU_ASSERT_STRING_EQUAL(a[57].name, "fs_base");
    CU_ASSERT_STRING_EQUAL(a[59].name, "k_gs_base");
    CU_ASSERT_STRING_EQUAL(b[0].name, "eax");
    CU_ASSERT_STRING_EQUAL(b[8].name, "eip");
    CU_ASSERT_STRING_EQUAL(b[16].name, "st0");
    /* Every system register a kernel developer looks for, in both. */
    static const char *const sys[] = {"cr0", "cr2", "cr3", "cr4", "efer", "cs_base", "ss_limit",
                                      "ds_attr", "ldtr", "tr_base", "gdtr_base", "gdtr_limit",
                                      "idtr_base", "idtr_limit", "dr0", "dr3", "dr6", "dr7"};
    for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
        CU_ASSERT(index_of(a, n64, sys[i]) > 56);
        CU_ASSERT(index_of(b, n32, sys[i]) > 0);
    }
    CU_ASSERT_EQUAL(a[index_of(a, n64, "cr0")].size, 8);
    CU_ASSERT_EQUAL(b[index_of(b, n32, "cr0")].size, 4);
    CU_ASSERT_STRING_EQUAL(a[index_of(a, n64, "cr0")].type, "cr0_flags");
    CU_ASSERT_STRING_EQUAL(b[index_of(b, n32, "cr0")].type, "cr0_flags_32");
    /* The sets this host has come between gdb's features and kvmstub's. */
    size_t nx;
    const struct stub_reg *x = stub_regmap(STUB_ARCH_AMD64, STUB_REGSET_AVX | STUB_REGSET_AVX512, &nx);
    CU_ASSERT_EQUAL(nx, n64 + 16 + 16 + 16 + 8 + 32);
    CU_ASSERT_STRING_EQUAL(x[59].name, "ymm0h");
    CU_ASSERT_STRING_EQUAL(x[75].name, "xmm16");
    CU_ASSERT_EQUAL(x[index_of(x, nx, "zmm31h")].size, 32);
    CU_ASSERT_EQUAL(x[index_of(x, nx, "k7")].id, VM_REG_K0 + 7);
    CU_ASSERT_EQUAL(x[index_of(x, nx, "ymm31h")].id, VM_REG_YMM16H + 15);
    /* AVX-512 without AVX is not a combination gdb takes: none of it. */
    size_t nbad;
    stub_regmap(STUB_ARCH_AMD64, STUB_REGSET_AVX512, &nbad);
    CU_ASSERT_EQUAL(nbad, n64);
    size_t ni;
    const struct stub_reg *y = stub_regmap(STUB_ARCH_I386, STUB_REGSET_AVX, &ni);
    CU_ASSERT_EQUAL(ni, n32 + 8);
    CU_ASSERT_PTR_NOT_NULL(y);
    for (unsigned sets = 0; sets < 4; sets++) {
        CU_ASSERT(stub_regmap_size(STUB_ARCH_AMD64, sets) <= STUB_REGMAP_MAX_BYTES);
        CU_ASSERT(stub_regmap_size(STUB_ARCH_I386, sets) <= STUB_REGMAP_MAX_BYTES);
    }
    for (size_t i = 0; i < nx; i++)
        for (size_t j = i + 1; j < nx; j++)
            CU_ASSERT(strcmp(x[i].name, x[j].name) != 0);
    CU_ASSERT_PTR_NULL(stub_regmap_reg(STUB_ARCH_AMD64, 0, n64));
    CU_ASSERT_PTR_NOT_NULL(stub_regmap_reg(STUB_ARCH_AMD64, 0, n64 - 1));
}

static void test_names(void)
{
    enum vm_reg_id id;
    CU_ASSERT_EQUAL(stub_regmap_find("rax", &id), 0);
    CU_ASSERT_EQUAL(id, VM_REG_RAX);
    CU_ASSERT_EQUAL(stub_regmap_find("eip", &id), 0);
    CU_ASSERT_EQUAL(id, VM_REG_RIP);
    CU_ASSERT_EQUAL(stub_regmap_find("cr3", &id), 0);
    CU_ASSERT_EQUAL(id, VM_REG_CR3);
    CU_ASSERT_EQUAL(stub_regmap_find("xmm15", &id), 0);
    CU_ASSERT_EQUAL(id, VM_REG_XMM0 + 15);
    CU_ASSERT_EQUAL(stub_regmap_find("ymm3h", &id), 0);
    CU_ASSERT_EQUAL(id, VM_REG_YMM0H + 3);
    CU_ASSERT_EQUAL(stub_regmap_find("gdtr_base", &id), 0);
    CU_ASSERT_EQUAL(id, VM_REG_GDTR_BASE);
    CU_ASSERT_EQUAL(stub_regmap_find("nosuch", &id), -ENOENT);
    bool real;
    CU_ASSERT_EQUAL(stub_regmap_arch(VM_MODE_LONG, &real), STUB_ARCH_AMD64);
    CU_ASSERT_FALSE(real);
    CU_ASSERT_EQUAL(stub_regmap_arch(VM_MODE_REAL, &real), STUB_ARCH_I386);
    CU_ASSERT(real);
}

/* Every register of a layout appears in its description, in order, with
 * its number and size, so 'g' and the description cannot disagree. */
static void test_description_matches_layout(void)
{
    for (unsigned k = 0; k < 4; k++)
    for (enum stub_arch arch = STUB_ARCH_I386; arch <= STUB_ARCH_AMD64; arch++) {
        unsigned sets = k == 3 ? STUB_REGSET_AVX | STUB_REGSET_AVX512 : k;
        size_t len, n;
        const char *xml = stub_tdesc(arch, sets, false, &len);
        CU_ASSERT_EQUAL(strlen(xml), len);
        CU_ASSERT_PTR_NOT_NULL(strstr(xml, "</target>"));
        const struct stub_reg *d = stub_regmap(arch, sets, &n);
        const char *at = xml;
        for (size_t i = 0; i < n; i++) {
            char want[128];
            snprintf(want, sizeof(want), "<reg name=\"%s\" bitsize=\"%u\" type=\"%s\" regnum=\"%zu\"",
                     d[i].name, d[i].size * 8u, d[i].type, i);
            const char *p = strstr(at, want);
            CU_ASSERT_PTR_NOT_NULL(p);
            if (p)
                at = p;
        }
    }
    size_t len;
    CU_ASSERT_PTR_NOT_NULL(strstr(stub_tdesc(STUB_ARCH_I386, 0, true, &len), "i8086"));
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("stub_regmap", NULL, NULL);
    CU_add_test(s, "gdb's amd64 and i386 layouts", test_layouts);
    CU_add_test(s, "names to ids, modes to layouts", test_names);
    CU_add_test(s, "the target description matches the layout", test_description_matches_layout);
}

int main(void)
{
    return test_main("test_stub_regmap", register_suites, false);
}
