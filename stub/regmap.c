/* gdb's x86 register layouts (regmap.h). */
#include "regmap.h"

#include <errno.h>
#include <string.h>

#define F_CORE "org.gnu.gdb.i386.core"
#define F_SSE "org.gnu.gdb.i386.sse"
#define F_SEG "org.gnu.gdb.i386.segments"
#define F_SYS "org.kvmstub.x86.system"

#define GPR(id, n, sz, t) {id, n, sz, t, "general", F_CORE}
#define SEG(id, n) {id, n, 4, "int32", "general", F_CORE}
#define ST(i) {VM_REG_ST0 + i, "st" #i, 10, "i387_ext", "float", F_CORE}
#define X87(id, n) {id, n, 4, "int", "float", F_CORE}
#define XMM(i) {VM_REG_XMM0 + i, "xmm" #i, 16, "vec128", "vector", F_SSE}

static const struct stub_reg amd64[] = {
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
    {VM_REG_K_GS_BASE, "k_gs_base", 8, "int64", "system", F_SYS},
    {VM_REG_CR0, "cr0", 8, "int64", "system", F_SYS},
    {VM_REG_CR2, "cr2", 8, "int64", "system", F_SYS},
    {VM_REG_CR3, "cr3", 8, "int64", "system", F_SYS},
    {VM_REG_CR4, "cr4", 8, "int64", "system", F_SYS},
    {VM_REG_CR8, "cr8", 8, "int64", "system", F_SYS},
    {VM_REG_EFER, "efer", 8, "int64", "system", F_SYS},
};

static const struct stub_reg i386[] = {
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
    {VM_REG_CR0, "cr0", 4, "int32", "system", F_SYS},
    {VM_REG_CR2, "cr2", 4, "int32", "system", F_SYS},
    {VM_REG_CR3, "cr3", 4, "int32", "system", F_SYS},
    {VM_REG_CR4, "cr4", 4, "int32", "system", F_SYS},
    {VM_REG_EFER, "efer", 8, "int64", "system", F_SYS},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const struct stub_reg *stub_regmap(enum stub_arch arch, size_t *count)
{
    if (arch == STUB_ARCH_AMD64) {
        *count = COUNT(amd64);
        return amd64;
    }
    *count = COUNT(i386);
    return i386;
}

size_t stub_regmap_size(enum stub_arch arch)
{
    size_t n, total = 0;
    const struct stub_reg *d = stub_regmap(arch, &n);
    for (size_t i = 0; i < n; i++)
        total += d[i].size;
    return total;
}

const struct stub_reg *stub_regmap_reg(enum stub_arch arch, size_t regno)
{
    size_t n;
    const struct stub_reg *d = stub_regmap(arch, &n);
    return regno < n ? &d[regno] : NULL;
}

int stub_regmap_find(const char *name, enum vm_reg_id *id)
{
    for (enum stub_arch arch = STUB_ARCH_I386; arch <= STUB_ARCH_AMD64; arch++) {
        size_t n;
        const struct stub_reg *d = stub_regmap(arch, &n);
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
