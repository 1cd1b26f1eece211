/* gdb's x86 register layouts (regmap.h): a base set per layout, then the
 * sets this host has (AVX, AVX-512), then the system registers kvmstub
 * shows beyond gdb's own features. Each combination is put together once. */
#include "regmap.h"

#include <errno.h>
#include <string.h>

#define F_CORE "org.gnu.gdb.i386.core"
#define F_SSE "org.gnu.gdb.i386.sse"
#define F_SEG "org.gnu.gdb.i386.segments"
#define F_AVX "org.gnu.gdb.i386.avx"
#define F_AVX512 "org.gnu.gdb.i386.avx512"
#define F_SYS "org.kvmstub.x86.system"

#define GPR(id, n, sz, t) {id, n, sz, t, "general", F_CORE}
#define SEG(id, n) {id, n, 4, "int32", "general", F_CORE}
#define ST(i) {VM_REG_ST0 + i, "st" #i, 10, "i387_ext", "float", F_CORE}
#define X87(id, n) {id, n, 4, "int", "float", F_CORE}
#define XMM(i) {VM_REG_XMM0 + i, "xmm" #i, 16, "vec128", "vector", F_SSE}

static const struct stub_reg amd64_base[] = {
    GPR(VM_REG_RAX, "rax", 8, "int64"), GPR(VM_REG_RBX, "rbx", 8, "int64"),
    GPR(VM_REG_RCX, "rcx", 8, "int64"), GPR(VM_REG_RDX, "rdx", 8, "int64"),
    GPR(VM_REG_RSI, "rsi", 8, "int64"), GPR(VM_REG_RDI, "rdi", 8, "int64"),
    GPR(VM_REG_RBP, "rbp", 8, "data_ptr"), GPR(VM_REG_RSP, "rsp", 8, "data_ptr"),
    GPR(VM_REG_R8, "r8", 8, "int64"), GPR(VM_REG_R9, "r9", 8, "int64"),
    GPR(VM_REG_R10, "r10", 8, "int64"), GPR(VM_REG_R11, "r11", 8, "int64"),
    GPR(VM_REG_R12, "r12", 8, "int64"), GPR(VM_REG_R13, "r13", 8, "int64"),
    GPR(VM_REG_R14, "r14", 8, "int64"), GPR(VM_REG_R15, "r15", 8, "int64"),
    GPR(VM_REG_RIP, "rip", 8, "code_ptr"), GPR(VM_REG_EFLAGS, "eflags", 4, "i386_eflags"),
    SEG(VM_REG_CS, "cs"), SEG(VM_REG_SS, "ss"), SEG(VM_REG_DS, "ds"),
    SEG(VM_REG_ES, "es"), SEG(VM_REG_FS, "fs"), SEG(VM_REG_GS, "gs"),
    ST(0), ST(1), ST(2), ST(3), ST(4), ST(5), ST(6), ST(7),
    X87(VM_REG_FCTRL, "fctrl"), X87(VM_REG_FSTAT, "fstat"), X87(VM_REG_FTAG, "ftag"),
    X87(VM_REG_FISEG, "fiseg"), X87(VM_REG_FIOFF, "fioff"), X87(VM_REG_FOSEG, "foseg"),
    X87(VM_REG_FOOFF, "fooff"), X87(VM_REG_FOP, "fop"),
    XMM(0), XMM(1), XMM(2), XMM(3), XMM(4), XMM(5), XMM(6), XMM(7),
    XMM(8), XMM(9), XMM(10), XMM(11), XMM(12), XMM(13), XMM(14), XMM(15),
    {VM_REG_MXCSR, "mxcsr", 4, "i386_mxcsr", "vector", F_SSE},
    {VM_REG_FS_BASE, "fs_base", 8, "int64", "system", F_SEG},
    {VM_REG_GS_BASE, "gs_base", 8, "int64", "system", F_SEG},
};

static const struct stub_reg i386_base[] = {
    GPR(VM_REG_RAX, "eax", 4, "int32"), GPR(VM_REG_RCX, "ecx", 4, "int32"),
    GPR(VM_REG_RDX, "edx", 4, "int32"), GPR(VM_REG_RBX, "ebx", 4, "int32"),
    GPR(VM_REG_RSP, "esp", 4, "data_ptr"), GPR(VM_REG_RBP, "ebp", 4, "data_ptr"),
    GPR(VM_REG_RSI, "esi", 4, "int32"), GPR(VM_REG_RDI, "edi", 4, "int32"),
    GPR(VM_REG_RIP, "eip", 4, "code_ptr"), GPR(VM_REG_EFLAGS, "eflags", 4, "i386_eflags"),
    SEG(VM_REG_CS, "cs"), SEG(VM_REG_SS, "ss"), SEG(VM_REG_DS, "ds"),
    SEG(VM_REG_ES, "es"), SEG(VM_REG_FS, "fs"), SEG(VM_REG_GS, "gs"),
    ST(0), ST(1), ST(2), ST(3), ST(4), ST(5), ST(6), ST(7),
    X87(VM_REG_FCTRL, "fctrl"), X87(VM_REG_FSTAT, "fstat"), X87(VM_REG_FTAG, "ftag"),
    X87(VM_REG_FISEG, "fiseg"), X87(VM_REG_FIOFF, "fioff"), X87(VM_REG_FOSEG, "foseg"),
    X87(VM_REG_FOOFF, "fooff"), X87(VM_REG_FOP, "fop"),
    XMM(0), XMM(1), XMM(2), XMM(3), XMM(4), XMM(5), XMM(6), XMM(7),
    {VM_REG_MXCSR, "mxcsr", 4, "i386_mxcsr", "vector", F_SSE},
    {VM_REG_FS_BASE, "fs_base", 4, "int32", "system", F_SEG},
    {VM_REG_GS_BASE, "gs_base", 4, "int32", "system", F_SEG},
};

#define YMMH(i) {VM_REG_YMM0H + i, "ymm" #i "h", 16, "uint128", NULL, F_AVX}
/* Register numbers are spelled out: the names are made from them. */
static const struct stub_reg amd64_avx[] = {
    YMMH(0), YMMH(1), YMMH(2), YMMH(3), YMMH(4), YMMH(5), YMMH(6), YMMH(7),
    YMMH(8), YMMH(9), YMMH(10), YMMH(11), YMMH(12), YMMH(13), YMMH(14), YMMH(15),
};
static const struct stub_reg i386_avx[] = {YMMH(0), YMMH(1), YMMH(2), YMMH(3), YMMH(4), YMMH(5), YMMH(6), YMMH(7)};

#define XMMX(i) {VM_REG_XMM16 + (i - 16), "xmm" #i, 16, "vec128", "vector", F_AVX512}
#define YMMHX(i) {VM_REG_YMM16H + (i - 16), "ymm" #i "h", 16, "uint128", NULL, F_AVX512}
#define KREG(i) {VM_REG_K0 + i, "k" #i, 8, "uint64", "vector", F_AVX512}
#define ZMMH(i) {VM_REG_ZMM0H + i, "zmm" #i "h", 32, "v2ui128", NULL, F_AVX512}
#define HI16(M)                                                                                    \
    M(16), M(17), M(18), M(19), M(20), M(21), M(22), M(23), M(24), M(25), M(26), M(27), M(28),     \
        M(29), M(30), M(31)
#define LO16(M)                                                                                    \
    M(0), M(1), M(2), M(3), M(4), M(5), M(6), M(7), M(8), M(9), M(10), M(11), M(12), M(13), M(14), \
        M(15)

static const struct stub_reg amd64_avx512[] = {
    HI16(XMMX), HI16(YMMHX), KREG(0), KREG(1), KREG(2), KREG(3), KREG(4), KREG(5), KREG(6),
    KREG(7),    LO16(ZMMH),  HI16(ZMMH),
};

#define SYS(id, n, sz, t) {id, n, sz, t, "system", F_SYS}
/* Size w (8 for amd64, 4 for i386) for what is as wide as an address. */
#define SYSREGS(w, i)                                                                              \
    SYS(VM_REG_K_GS_BASE, "k_gs_base", 8, "int64"), SYS(VM_REG_CR0, "cr0", w, "cr0_flags" i),      \
        SYS(VM_REG_CR2, "cr2", w, "data_ptr"), SYS(VM_REG_CR3, "cr3", w, "data_ptr"),              \
        SYS(VM_REG_CR4, "cr4", w, "cr4_flags" i), SYS(VM_REG_CR8, "cr8", w, "int"),                \
        SYS(VM_REG_EFER, "efer", 8, "efer_flags"), SYS(VM_REG_CS_BASE, "cs_base", w, "data_ptr"),  \
        SYS(VM_REG_SS_BASE, "ss_base", w, "data_ptr"),                                             \
        SYS(VM_REG_DS_BASE, "ds_base", w, "data_ptr"),                                             \
        SYS(VM_REG_ES_BASE, "es_base", w, "data_ptr"), SYS(VM_REG_CS_LIMIT, "cs_limit", 4, "int"),  \
        SYS(VM_REG_SS_LIMIT, "ss_limit", 4, "int"), SYS(VM_REG_DS_LIMIT, "ds_limit", 4, "int"),    \
        SYS(VM_REG_ES_LIMIT, "es_limit", 4, "int"), SYS(VM_REG_FS_LIMIT, "fs_limit", 4, "int"),    \
        SYS(VM_REG_GS_LIMIT, "gs_limit", 4, "int"), SYS(VM_REG_CS_ATTR, "cs_attr", 4, "seg_attr"), \
        SYS(VM_REG_SS_ATTR, "ss_attr", 4, "seg_attr"),                                             \
        SYS(VM_REG_DS_ATTR, "ds_attr", 4, "seg_attr"),                                             \
        SYS(VM_REG_ES_ATTR, "es_attr", 4, "seg_attr"),                                             \
        SYS(VM_REG_FS_ATTR, "fs_attr", 4, "seg_attr"),                                             \
        SYS(VM_REG_GS_ATTR, "gs_attr", 4, "seg_attr"), SYS(VM_REG_LDTR, "ldtr", 4, "int32"),       \
        SYS(VM_REG_LDTR_BASE, "ldtr_base", w, "data_ptr"),                                         \
        SYS(VM_REG_LDTR_LIMIT, "ldtr_limit", 4, "int"),                                            \
        SYS(VM_REG_LDTR_ATTR, "ldtr_attr", 4, "seg_attr"), SYS(VM_REG_TR, "tr", 4, "int32"),       \
        SYS(VM_REG_TR_BASE, "tr_base", w, "data_ptr"), SYS(VM_REG_TR_LIMIT, "tr_limit", 4, "int"), \
        SYS(VM_REG_TR_ATTR, "tr_attr", 4, "seg_attr"),                                             \
        SYS(VM_REG_GDTR_BASE, "gdtr_base", w, "data_ptr"),                                         \
        SYS(VM_REG_GDTR_LIMIT, "gdtr_limit", 4, "int"),                                            \
        SYS(VM_REG_IDTR_BASE, "idtr_base", w, "data_ptr"),                                         \
        SYS(VM_REG_IDTR_LIMIT, "idtr_limit", 4, "int"), SYS(VM_REG_DR0, "dr0", w, "data_ptr"),     \
        SYS(VM_REG_DR1, "dr1", w, "data_ptr"), SYS(VM_REG_DR2, "dr2", w, "data_ptr"),              \
        SYS(VM_REG_DR3, "dr3", w, "data_ptr"), SYS(VM_REG_DR6, "dr6", w, "dr6_flags" i),           \
        SYS(VM_REG_DR7, "dr7", w, "dr7_flags" i)

static const struct stub_reg amd64_sys[] = {SYSREGS(8, "")};
static const struct stub_reg i386_sys[] = {SYSREGS(4, "_32")};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

struct part {
    const struct stub_reg *regs;
    size_t n;
    unsigned needs; /* STUB_REGSET_* */
};

static const struct part amd64_parts[] = {
    {amd64_base, COUNT(amd64_base), 0},
    {amd64_avx, COUNT(amd64_avx), STUB_REGSET_AVX},
    {amd64_avx512, COUNT(amd64_avx512), STUB_REGSET_AVX512},
    {amd64_sys, COUNT(amd64_sys), 0},
};
static const struct part i386_parts[] = {
    {i386_base, COUNT(i386_base), 0},
    {i386_avx, COUNT(i386_avx), STUB_REGSET_AVX},
    {i386_sys, COUNT(i386_sys), 0},
};

#define MAX_REGS (COUNT(amd64_base) + COUNT(amd64_avx) + COUNT(amd64_avx512) + COUNT(amd64_sys))
#define SETS 4 /* combinations of the STUB_REGSET_* bits */

/* AVX-512 comes with AVX or not at all (gdb wants both features). */
static unsigned normal(unsigned sets)
{
    sets &= STUB_REGSET_AVX | STUB_REGSET_AVX512;
    return (sets & STUB_REGSET_AVX) ? sets : 0;
}

const struct stub_reg *stub_regmap(enum stub_arch arch, unsigned sets, size_t *count)
{
    static struct stub_reg built[2][SETS][MAX_REGS];
    static size_t nbuilt[2][SETS];
    sets = normal(sets);
    struct stub_reg *out = built[arch][sets];
    if (!nbuilt[arch][sets]) {
        const struct part *parts = arch == STUB_ARCH_AMD64 ? amd64_parts : i386_parts;
        size_t nparts = arch == STUB_ARCH_AMD64 ? COUNT(amd64_parts) : COUNT(i386_parts), n = 0;
        for (size_t p = 0; p < nparts; p++) {
            if ((parts[p].needs & sets) != parts[p].needs)
                continue;
            memcpy(out + n, parts[p].regs, parts[p].n * sizeof(*out));
            n += parts[p].n;
        }
        nbuilt[arch][sets] = n;
    }
    *count = nbuilt[arch][sets];
    return out;
}

size_t stub_regmap_size(enum stub_arch arch, unsigned sets)
{
    size_t n, total = 0;
    const struct stub_reg *d = stub_regmap(arch, sets, &n);
    for (size_t i = 0; i < n; i++)
        total += d[i].size;
    return total;
}

size_t stub_regmap_g_count(enum stub_arch arch, unsigned sets)
{
    size_t n;
    const struct stub_reg *d = stub_regmap(arch, sets, &n);
    for (size_t i = 0; i < n; i++)
        if (d[i].id == VM_REG_GS)
            return i + 1;
    return n;
}

size_t stub_regmap_g_size(enum stub_arch arch, unsigned sets)
{
    size_t n = stub_regmap_g_count(arch, sets), total = 0;
    const struct stub_reg *d = stub_regmap(arch, sets, &n);
    n = stub_regmap_g_count(arch, sets);
    for (size_t i = 0; i < n; i++)
        total += d[i].size;
    return total;
}

const struct stub_reg *stub_regmap_reg(enum stub_arch arch, unsigned sets, size_t regno)
{
    size_t n;
    const struct stub_reg *d = stub_regmap(arch, sets, &n);
    return regno < n ? &d[regno] : NULL;
}

int stub_regmap_find(const char *name, enum vm_reg_id *id)
{
    for (enum stub_arch arch = STUB_ARCH_I386; arch <= STUB_ARCH_AMD64; arch++) {
        size_t n;
        const struct stub_reg *d = stub_regmap(arch, STUB_REGSET_AVX | STUB_REGSET_AVX512, &n);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(d[i].name, name) == 0) {
                *id = d[i].id;
                return 0;
            }
        }
    }
    return -ENOENT;
}

enum stub_arch stub_regmap_arch(enum vm_mode mode, bool *real_mode)
{
    *real_mode = mode == VM_MODE_REAL;
    return mode == VM_MODE_LONG ? STUB_ARCH_AMD64 : STUB_ARCH_I386;
}

const char *stub_regmap_mode_name(enum vm_mode mode)
{
    return vm_mode_name(mode);
}

bool stub_regmap_is_wide(enum vm_reg_id id)
{
    return vm_reg_is_wide(id);
}
