#include "vm.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#define MSR_KERNEL_GS_BASE 0xc0000102u

/* struct kvm_msrs ends in a flexible array; room for one entry. */
union msrs {
    struct kvm_msrs hdr;
    uint8_t room[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
};

#define F_CORE "org.gnu.gdb.i386.core"
#define F_SSE "org.gnu.gdb.i386.sse"
#define F_SEG "org.gnu.gdb.i386.segments"
#define F_SYS "org.kvmstub.x86.system"

#define GPR(id, n, sz, t) {id, n, sz, t, "general", F_CORE}
#define SEG(id, n) {id, n, 4, "int32", "general", F_CORE}
#define ST(i) {VM_REG_ST0 + i, "st" #i, 10, "i387_ext", "float", F_CORE}
#define X87(id, n) {id, n, 4, "int", "float", F_CORE}
#define XMM(i) {VM_REG_XMM0 + i, "xmm" #i, 16, "vec128", "vector", F_SSE}

static const struct vm_reg_desc amd64[] = {
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

static const struct vm_reg_desc i386[] = {
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

const struct vm_reg_desc *vm_regs_layout(enum vm_arch arch, size_t *count)
{
    if (arch == VM_ARCH_AMD64) {
        *count = sizeof(amd64) / sizeof(amd64[0]);
        return amd64;
    }
    *count = sizeof(i386) / sizeof(i386[0]);
    return i386;
}

size_t vm_regs_size(enum vm_arch arch)
{
    size_t n, total = 0;
    const struct vm_reg_desc *d = vm_regs_layout(arch, &n);
    for (size_t i = 0; i < n; i++)
        total += d[i].size;
    return total;
}

/* The legacy (FXSAVE) part of an XSAVE image, and its header. */
#define XS_FCW 0
#define XS_FSW 2
#define XS_FTW 4
#define XS_FOP 6
#define XS_FIP 8
#define XS_FDP 16
#define XS_MXCSR 24
#define XS_ST 32
#define XS_XMM 160
#define XS_XSTATE_BV 512
#define XS_FP_SSE 3u /* XSTATE_BV bits: the x87 and SSE state are in use */

static int get_fpu(struct vm_cpu *cpu, struct kvm_fpu *f)
{
    if (!cpu->xsave)
        return ioctl(cpu->fd, KVM_GET_FPU, f) < 0 ? -errno : 0;
    unsigned long req = cpu->xsave_size > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;
    if (ioctl(cpu->fd, req, cpu->xsave) < 0)
        return -errno;
    const uint8_t *x = cpu->xsave;
    memset(f, 0, sizeof(*f));
    memcpy(&f->fcw, x + XS_FCW, 2);
    memcpy(&f->fsw, x + XS_FSW, 2);
    f->ftwx = x[XS_FTW];
    memcpy(&f->last_opcode, x + XS_FOP, 2);
    memcpy(&f->last_ip, x + XS_FIP, 8);
    memcpy(&f->last_dp, x + XS_FDP, 8);
    memcpy(&f->mxcsr, x + XS_MXCSR, 4);
    for (int i = 0; i < 8; i++)
        memcpy(f->fpr[i], x + XS_ST + 16 * i, 16);
    for (int i = 0; i < 16; i++)
        memcpy(f->xmm[i], x + XS_XMM + 16 * i, 16);
    return 0;
}

static int set_fpu(struct vm_cpu *cpu, const struct kvm_fpu *f)
{
    if (!cpu->xsave)
        return ioctl(cpu->fd, KVM_SET_FPU, f) < 0 ? -errno : 0;
    uint8_t *x = cpu->xsave;
    memcpy(x + XS_FCW, &f->fcw, 2);
    memcpy(x + XS_FSW, &f->fsw, 2);
    x[XS_FTW] = f->ftwx;
    memcpy(x + XS_FOP, &f->last_opcode, 2);
    memcpy(x + XS_FIP, &f->last_ip, 8);
    memcpy(x + XS_FDP, &f->last_dp, 8);
    memcpy(x + XS_MXCSR, &f->mxcsr, 4);
    for (int i = 0; i < 8; i++)
        memcpy(x + XS_ST + 16 * i, f->fpr[i], 16);
    for (int i = 0; i < 16; i++)
        memcpy(x + XS_XMM + 16 * i, f->xmm[i], 16);
    uint64_t bv;
    memcpy(&bv, x + XS_XSTATE_BV, 8);
    bv |= XS_FP_SSE;
    memcpy(x + XS_XSTATE_BV, &bv, 8);
    return ioctl(cpu->fd, KVM_SET_XSAVE, x) < 0 ? -errno : 0;
}

int vm_regs_fetch(struct vm_cpu *cpu, unsigned groups)
{
    struct vm_regcache *rc = &cpu->rc;
    unsigned need = groups & ~rc->valid;
    if ((need & VM_RC_REGS) && ioctl(cpu->fd, KVM_GET_REGS, &rc->regs) < 0)
        return -errno;
    if ((need & VM_RC_SREGS) && ioctl(cpu->fd, KVM_GET_SREGS, &rc->sregs) < 0)
        return -errno;
    int err;
    if ((need & VM_RC_FPU) && (err = get_fpu(cpu, &rc->fpu)))
        return err;
    if (need & VM_RC_MSRS) {
        union msrs m = {.hdr.nmsrs = 1};
        m.hdr.entries[0].index = MSR_KERNEL_GS_BASE;
        if (ioctl(cpu->fd, KVM_GET_MSRS, &m) != 1)
            return -EIO;
        rc->kernel_gs_base = m.hdr.entries[0].data;
    }
    rc->valid |= need;
    return 0;
}

int vm_regs_flush(struct vm_cpu *cpu)
{
    struct vm_regcache *rc = &cpu->rc;
    if ((rc->dirty & VM_RC_SREGS) && ioctl(cpu->fd, KVM_SET_SREGS, &rc->sregs) < 0)
        return -errno;
    if ((rc->dirty & VM_RC_REGS) && ioctl(cpu->fd, KVM_SET_REGS, &rc->regs) < 0)
        return -errno;
    int err;
    if ((rc->dirty & VM_RC_FPU) && (err = set_fpu(cpu, &rc->fpu)))
        return err;
    if (rc->dirty & VM_RC_MSRS) {
        union msrs m = {.hdr.nmsrs = 1};
        m.hdr.entries[0].index = MSR_KERNEL_GS_BASE;
        m.hdr.entries[0].data = rc->kernel_gs_base;
        if (ioctl(cpu->fd, KVM_SET_MSRS, &m) != 1)
            return -EIO;
    }
    rc->dirty = 0;
    return 0;
}

void vm_regs_invalidate(struct vm_cpu *cpu)
{
    cpu->rc.valid = 0;
    cpu->rc.dirty = 0;
}

/* x87 tag of one register's contents: 0 valid, 1 zero, 2 special. */
static unsigned classify(const uint8_t *st)
{
    uint16_t exp = (uint16_t)((st[9] << 8 | st[8]) & 0x7fff);
    uint64_t mant;
    memcpy(&mant, st, 8);
    if (exp == 0x7fff)
        return 2;
    if (exp == 0)
        return mant == 0 ? 1 : 2;
    return (mant >> 63) ? 0 : 2;
}

uint16_t vm_fpu_full_tag(uint8_t abridged, uint16_t fsw, const uint8_t *st)
{
    unsigned top = (fsw >> 11) & 7;
    uint16_t tag = 0;
    for (unsigned phys = 0; phys < 8; phys++) {
        unsigned t = 3;
        if (abridged & (1u << phys))
            t = classify(st + 16 * ((phys - top) & 7));
        tag |= (uint16_t)(t << (2 * phys));
    }
    return tag;
}

uint8_t vm_fpu_abridged_tag(uint16_t full)
{
    uint8_t ab = 0;
    for (unsigned phys = 0; phys < 8; phys++)
        if (((full >> (2 * phys)) & 3) != 3)
            ab |= (uint8_t)(1u << phys);
    return ab;
}

static unsigned group_of(enum vm_reg_id id)
{
    if (id <= VM_REG_EFLAGS)
        return VM_RC_REGS;
    if (id == VM_REG_K_GS_BASE)
        return VM_RC_MSRS;
    if (id < VM_REG_ST0)
        return VM_RC_SREGS;
    return VM_RC_FPU;
}

static struct kvm_segment *segment(struct kvm_sregs *s, enum vm_reg_id id)
{
    switch (id) {
    case VM_REG_CS: return &s->cs;
    case VM_REG_SS: return &s->ss;
    case VM_REG_DS: return &s->ds;
    case VM_REG_ES: return &s->es;
    case VM_REG_FS: return &s->fs;
    case VM_REG_GS: return &s->gs;
    default: return NULL;
    }
}

static __u64 *gpr(struct kvm_regs *r, enum vm_reg_id id)
{
    __u64 *const map[] = {
        [VM_REG_RAX] = &r->rax, [VM_REG_RBX] = &r->rbx, [VM_REG_RCX] = &r->rcx,
        [VM_REG_RDX] = &r->rdx, [VM_REG_RSI] = &r->rsi, [VM_REG_RDI] = &r->rdi,
        [VM_REG_RBP] = &r->rbp, [VM_REG_RSP] = &r->rsp, [VM_REG_R8] = &r->r8,
        [VM_REG_R9] = &r->r9, [VM_REG_R10] = &r->r10, [VM_REG_R11] = &r->r11,
        [VM_REG_R12] = &r->r12, [VM_REG_R13] = &r->r13, [VM_REG_R14] = &r->r14,
        [VM_REG_R15] = &r->r15, [VM_REG_RIP] = &r->rip, [VM_REG_EFLAGS] = &r->rflags,
    };
    return id <= VM_REG_EFLAGS ? map[id] : NULL;
}

int vm_reg_get(struct vm_cpu *cpu, enum vm_reg_id id, uint64_t *value)
{
    if (id >= VM_REG_COUNT || (id >= VM_REG_ST0 && id < VM_REG_ST0 + 8) ||
        (id >= VM_REG_XMM0 && id < VM_REG_XMM0 + 16))
        return -EINVAL;
    int err = vm_regs_fetch(cpu, group_of(id));
    if (err)
        return err;
    struct vm_regcache *rc = &cpu->rc;
    struct kvm_segment *seg = segment(&rc->sregs, id);
    __u64 *g = gpr(&rc->regs, id);
    const struct kvm_fpu *f = &rc->fpu;
    if (g)
        *value = *g;
    else if (seg)
        *value = seg->selector;
    else {
        switch (id) {
        case VM_REG_FS_BASE: *value = rc->sregs.fs.base; break;
        case VM_REG_GS_BASE: *value = rc->sregs.gs.base; break;
        case VM_REG_K_GS_BASE: *value = rc->kernel_gs_base; break;
        case VM_REG_CR0: *value = rc->sregs.cr0; break;
        case VM_REG_CR2: *value = rc->sregs.cr2; break;
        case VM_REG_CR3: *value = rc->sregs.cr3; break;
        case VM_REG_CR4: *value = rc->sregs.cr4; break;
        case VM_REG_CR8: *value = rc->sregs.cr8; break;
        case VM_REG_EFER: *value = rc->sregs.efer; break;
        case VM_REG_FCTRL: *value = f->fcw; break;
        case VM_REG_FSTAT: *value = f->fsw; break;
        case VM_REG_FTAG: *value = vm_fpu_full_tag(f->ftwx, f->fsw, &f->fpr[0][0]); break;
        /* FXSAVE's 64-bit format keeps the segment in bits 32-47 of the
         * pointer, where the 32-bit format has FCS/FDS. */
        case VM_REG_FISEG: *value = (f->last_ip >> 32) & 0xffff; break;
        case VM_REG_FIOFF: *value = (uint32_t)f->last_ip; break;
        case VM_REG_FOSEG: *value = (f->last_dp >> 32) & 0xffff; break;
        case VM_REG_FOOFF: *value = (uint32_t)f->last_dp; break;
        case VM_REG_FOP: *value = f->last_opcode & 0x7ff; break;
        case VM_REG_MXCSR: *value = f->mxcsr; break;
        default: return -EINVAL;
        }
    }
    return 0;
}

/* Loads a segment register from a selector the way the CPU would: in real
 * mode the base is selector * 16; in protected mode the descriptor comes
 * from the GDT or LDT in guest memory. */
static int load_segment(struct vm_cpu *cpu, enum vm_reg_id id, uint16_t sel)
{
    struct kvm_sregs *s = &cpu->rc.sregs;
    struct kvm_segment *seg = segment(s, id);
    if (!(s->cr0 & 1)) {
        seg->selector = sel;
        seg->base = (uint64_t)sel << 4;
        return 0;
    }
    if ((sel & ~3u) == 0) {
        if (id == VM_REG_CS || (id == VM_REG_SS && !(s->efer & (1u << 10))))
            return -EINVAL; /* a null CS (or SS outside long mode) cannot run */
        memset(seg, 0, sizeof(*seg));
        seg->selector = sel;
        seg->unusable = 1;
        return 0;
    }
    uint64_t table = s->gdt.base, limit = s->gdt.limit;
    if (sel & 4) {
        if (s->ldt.unusable || s->ldt.selector == 0)
            return -EINVAL;
        table = s->ldt.base;
        limit = s->ldt.limit;
    }
    uint64_t off = sel & ~7u;
    if (off + 7 > limit)
        return -EINVAL;
    uint8_t d[8];
    int err = vm_read_linear(cpu, table + off, d, sizeof(d), NULL);
    if (err)
        return err;
    uint32_t lo = (uint32_t)(d[0] | d[1] << 8 | d[2] << 16 | (uint32_t)d[3] << 24);
    uint32_t hi = (uint32_t)(d[4] | d[5] << 8 | d[6] << 16 | (uint32_t)d[7] << 24);
    if (!(hi & (1u << 15)))
        return -EINVAL; /* not present */
    struct kvm_segment n = {0};
    n.selector = sel;
    n.base = (lo >> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000u);
    n.limit = (lo & 0xffff) | (hi & 0xf0000);
    n.g = (hi >> 23) & 1;
    if (n.g)
        n.limit = (n.limit << 12) | 0xfff;
    n.s = (hi >> 12) & 1;
    /* Loading a code or data segment sets its accessed bit. */
    n.type = ((hi >> 8) & 0xf) | (n.s ? 1 : 0);
    n.dpl = (hi >> 13) & 3;
    n.present = 1;
    n.avl = (hi >> 20) & 1;
    n.l = (hi >> 21) & 1;
    n.db = (hi >> 22) & 1;
    *seg = n;
    return 0;
}

int vm_reg_set(struct vm_cpu *cpu, enum vm_reg_id id, uint64_t value)
{
    if (id >= VM_REG_COUNT || (id >= VM_REG_ST0 && id < VM_REG_ST0 + 8) ||
        (id >= VM_REG_XMM0 && id < VM_REG_XMM0 + 16))
        return -EINVAL;
    unsigned group = group_of(id);
    /* Selectors in protected mode need CR0 and the descriptor tables. */
    int err = vm_regs_fetch(cpu, group | (segment(&cpu->rc.sregs, id) ? VM_RC_SREGS : 0));
    if (err)
        return err;
    struct vm_regcache *rc = &cpu->rc;
    struct kvm_fpu *f = &rc->fpu;
    __u64 *g = gpr(&rc->regs, id);
    if (g) {
        if (id == VM_REG_EFLAGS)
            value = (value & 0x3f7fd7u) | 2u; /* bit 1 reads as one */
        if (id == VM_REG_RIP && *g != value)
            cpu->halted = false; /* a debugger moving rip wakes a halted CPU */
        *g = value;
    } else if (segment(&rc->sregs, id)) {
        if (value > 0xffff)
            return -EINVAL;
        if ((err = load_segment(cpu, id, (uint16_t)value)))
            return err;
    } else {
        switch (id) {
        case VM_REG_FS_BASE: rc->sregs.fs.base = value; break;
        case VM_REG_GS_BASE: rc->sregs.gs.base = value; break;
        case VM_REG_K_GS_BASE: rc->kernel_gs_base = value; break;
        case VM_REG_CR0: rc->sregs.cr0 = value; break;
        case VM_REG_CR2: rc->sregs.cr2 = value; break;
        case VM_REG_CR3: rc->sregs.cr3 = value; break;
        case VM_REG_CR4: rc->sregs.cr4 = value; break;
        case VM_REG_CR8: rc->sregs.cr8 = value & 0xf; break;
        case VM_REG_EFER: rc->sregs.efer = value; break;
        case VM_REG_FCTRL: f->fcw = (uint16_t)value; break;
        case VM_REG_FSTAT: f->fsw = (uint16_t)value; break;
        case VM_REG_FTAG: f->ftwx = vm_fpu_abridged_tag((uint16_t)value); break;
        case VM_REG_FISEG:
            f->last_ip = (f->last_ip & 0xffffffffull) | ((value & 0xffff) << 32);
            break;
        case VM_REG_FIOFF: f->last_ip = (f->last_ip & ~0xffffffffull) | (uint32_t)value; break;
        case VM_REG_FOSEG:
            f->last_dp = (f->last_dp & 0xffffffffull) | ((value & 0xffff) << 32);
            break;
        case VM_REG_FOOFF: f->last_dp = (f->last_dp & ~0xffffffffull) | (uint32_t)value; break;
        case VM_REG_FOP: f->last_opcode = (uint16_t)(value & 0x7ff); break;
        case VM_REG_MXCSR: f->mxcsr = (uint32_t)value; break;
        default: return -EINVAL;
        }
    }
    rc->dirty |= group;
    return 0;
}

static const struct vm_reg_desc *desc_of(enum vm_arch arch, size_t regno)
{
    size_t n;
    const struct vm_reg_desc *d = vm_regs_layout(arch, &n);
    return regno < n ? &d[regno] : NULL;
}

int vm_reg_read(struct vm_cpu *cpu, enum vm_arch arch, size_t regno, uint8_t *out)
{
    const struct vm_reg_desc *d = desc_of(arch, regno);
    if (!d)
        return -EINVAL;
    if (d->id >= VM_REG_ST0 && d->id < VM_REG_ST0 + 8) {
        int err = vm_regs_fetch(cpu, VM_RC_FPU);
        if (err)
            return err;
        memcpy(out, cpu->rc.fpu.fpr[d->id - VM_REG_ST0], 10);
        return 0;
    }
    if (d->id >= VM_REG_XMM0 && d->id < VM_REG_XMM0 + 16) {
        int err = vm_regs_fetch(cpu, VM_RC_FPU);
        if (err)
            return err;
        memcpy(out, cpu->rc.fpu.xmm[d->id - VM_REG_XMM0], 16);
        return 0;
    }
    uint64_t v;
    int err = vm_reg_get(cpu, d->id, &v);
    if (err)
        return err;
    for (unsigned i = 0; i < d->size; i++)
        out[i] = (uint8_t)(v >> (8 * i));
    return 0;
}

int vm_reg_write(struct vm_cpu *cpu, enum vm_arch arch, size_t regno, const uint8_t *in)
{
    const struct vm_reg_desc *d = desc_of(arch, regno);
    if (!d)
        return -EINVAL;
    if ((d->id >= VM_REG_ST0 && d->id < VM_REG_ST0 + 8) ||
        (d->id >= VM_REG_XMM0 && d->id < VM_REG_XMM0 + 16)) {
        int err = vm_regs_fetch(cpu, VM_RC_FPU);
        if (err)
            return err;
        if (d->id < VM_REG_XMM0)
            memcpy(cpu->rc.fpu.fpr[d->id - VM_REG_ST0], in, 10);
        else
            memcpy(cpu->rc.fpu.xmm[d->id - VM_REG_XMM0], in, 16);
        cpu->rc.dirty |= VM_RC_FPU;
        return 0;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < d->size; i++)
        v |= (uint64_t)in[i] << (8 * i);
    /* A 32-bit layout writes the low half; keep what it cannot express. */
    if (d->size == 4 && d->id <= VM_REG_EFLAGS && d->id != VM_REG_EFLAGS) {
        uint64_t old;
        int err = vm_reg_get(cpu, d->id, &old);
        if (err)
            return err;
        if (vm_cpu_mode(cpu) == VM_MODE_LONG)
            v |= old & ~0xffffffffull;
    }
    uint64_t cur;
    /* gdb writes every register back with G; leave unchanged selectors
     * alone so a stale GDT does not turn a no-op into an error. */
    if (segment(&cpu->rc.sregs, d->id) && vm_reg_get(cpu, d->id, &cur) == 0 && cur == v)
        return 0;
    return vm_reg_set(cpu, d->id, v);
}
