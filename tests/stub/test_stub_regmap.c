/* gdb's register layouts and the target description made from them. */
#include "testmain.h"

#include "stub/regmap.h"
#include "stub/tdesc.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static void test_layouts(void)
{
    size_t n64, n32;
    const struct stub_reg *a = stub_regmap(STUB_ARCH_AMD64, &n64);
    const struct stub_reg *b = stub_regmap(STUB_ARCH_I386, &n32);
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
    CU_ASSERT_EQUAL(stub_regmap_size(STUB_ARCH_AMD64), 16 * 8 + 8 + 4 + 24 + 80 + 32 + 256 + 4 + 72);
    CU_ASSERT_EQUAL(stub_regmap_size(STUB_ARCH_I386), 8 * 4 + 4 + 4 + 24 + 80 + 32 + 128 + 4 + 6 * 4 + 8);
    CU_ASSERT(stub_regmap_size(STUB_ARCH_AMD64) <= STUB_REGMAP_MAX_BYTES);
    CU_ASSERT(stub_regmap_size(STUB_ARCH_I386) <= STUB_REGMAP_MAX_BYTES);
    for (size_t i = 0; i < n64; i++)
        for (size_t j = i + 1; j < n64; j++)
            CU_ASSERT(strcmp(a[i].name, a[j].name) != 0);
    CU_ASSERT_PTR_NULL(stub_regmap_reg(STUB_ARCH_AMD64, n64));
    CU_ASSERT_PTR_NOT_NULL(stub_regmap_reg(STUB_ARCH_AMD64, n64 - 1));
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
    for (enum stub_arch arch = STUB_ARCH_I386; arch <= STUB_ARCH_AMD64; arch++) {
        size_t len, n;
        const char *xml = stub_tdesc(arch, false, &len);
        CU_ASSERT_EQUAL(strlen(xml), len);
        CU_ASSERT_PTR_NOT_NULL(strstr(xml, "</target>"));
        const struct stub_reg *d = stub_regmap(arch, &n);
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
    CU_ASSERT_PTR_NOT_NULL(strstr(stub_tdesc(STUB_ARCH_I386, true, &len), "i8086"));
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
