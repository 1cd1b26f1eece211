/* The register file by id (regs.h), over the KVM register cache. */
#include "internal.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#define CR0_PE (1ull << 0)
#define EFER_LMA (1ull << 10)

const char *vm_mode_name(enum vm_mode mode)
{
    switch (mode) {
    case VM_MODE_REAL: return "real";
    case VM_MODE_PROTECTED: return "protected";
    case VM_MODE_LONG: return "long";
    }
    return "?";
}

enum vm_mode vm_cpu_mode(struct vm_cpu *cpu)
{
    if (vm_regcache_fetch(&cpu->rc, VM_RC_SREGS))
        return VM_MODE_REAL;
    const struct kvm_sregs *s = &cpu->rc.sregs;
    if (!(s->cr0 & CR0_PE))
        return VM_MODE_REAL;
    if ((s->efer & EFER_LMA) && s->cs.l)
        return VM_MODE_LONG;
    return VM_MODE_PROTECTED;
}

int vm_cpu_sregs(struct vm_cpu *cpu, struct kvm_sregs *out)
{
    int err = vm_regcache_fetch(&cpu->rc, VM_RC_SREGS);
    if (!err)
        *out = cpu->rc.sregs;
    return err;
}

static bool in(enum vm_reg_id id, enum vm_reg_id first, unsigned n)
{
    return id >= first && id < first + n;
}

size_t vm_reg_width(enum vm_reg_id id)
{
    if (in(id, VM_REG_ST0, 8))
        return 10;
    if (in(id, VM_REG_XMM0, 16) || in(id, VM_REG_YMM0H, 16) || in(id, VM_REG_XMM16, 16) ||
        in(id, VM_REG_YMM16H, 16))
        return 16;
    if (in(id, VM_REG_ZMM0H, 32))
        return 32;
    return 8;
}

bool vm_reg_is_wide(enum vm_reg_id id)
{
    return vm_reg_width(id) > 8;
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
    if (id < VM_REG_ST0 || (id >= VM_REG_CS_BASE && id <= VM_REG_IDTR_LIMIT))
        return VM_RC_SREGS;
    if (in(id, VM_REG_DR0, 6))
        return VM_RC_DEBUG;
    return VM_RC_FPU;
}

/* The segment (or LDTR/TR) a segment-part register belongs to. */
static struct kvm_segment *segment_of(struct kvm_sregs *s, enum vm_reg_id id)
{
    static const enum vm_reg_id order[] = {VM_REG_CS, VM_REG_SS, VM_REG_DS,
                                           VM_REG_ES, VM_REG_FS, VM_REG_GS};
    struct kvm_segment *const segs[] = {&s->cs, &s->ss, &s->ds, &s->es, &s->fs, &s->gs};
    for (unsigned i = 0; i < 6; i++)
        if (id == order[i])
            return segs[i];
    if (in(id, VM_REG_CS_BASE, 4))
        return segs[id - VM_REG_CS_BASE];
    if (id == VM_REG_FS_BASE)
        return &s->fs;
    if (id == VM_REG_GS_BASE)
        return &s->gs;
    if (in(id, VM_REG_CS_LIMIT, 6))
        return segs[id - VM_REG_CS_LIMIT];
    if (in(id, VM_REG_CS_ATTR, 6))
        return segs[id - VM_REG_CS_ATTR];
    if (in(id, VM_REG_LDTR, 4))
        return &s->ldt;
    if (in(id, VM_REG_TR, 4))
        return &s->tr;
    return NULL;
}

enum seg_part { PART_SELECTOR, PART_BASE, PART_LIMIT, PART_ATTR };

static enum seg_part part_of(enum vm_reg_id id)
{
    if (in(id, VM_REG_CS_BASE, 4) || id == VM_REG_FS_BASE || id == VM_REG_GS_BASE ||
        id == VM_REG_LDTR_BASE || id == VM_REG_TR_BASE)
        return PART_BASE;
    if (in(id, VM_REG_CS_LIMIT, 6) || id == VM_REG_LDTR_LIMIT || id == VM_REG_TR_LIMIT)
        return PART_LIMIT;
    if (in(id, VM_REG_CS_ATTR, 6) || id == VM_REG_LDTR_ATTR || id == VM_REG_TR_ATTR)
        return PART_ATTR;
    return PART_SELECTOR;
}

static uint64_t attr_pack(const struct kvm_segment *g)
{
    return (g->type & 0xfu) | (g->s ? VM_SEG_ATTR_S : 0) |
           ((uint64_t)(g->dpl & 3) << VM_SEG_ATTR_DPL_SHIFT) | (g->present ? VM_SEG_ATTR_P : 0) |
           (g->avl ? VM_SEG_ATTR_AVL : 0) | (g->l ? VM_SEG_ATTR_L : 0) |
           (g->db ? VM_SEG_ATTR_DB : 0) | (g->g ? VM_SEG_ATTR_G : 0) |
           (g->unusable ? VM_SEG_ATTR_UNUSABLE : 0);
}

static void attr_unpack(struct kvm_segment *g, uint64_t v)
{
    g->type = v & VM_SEG_ATTR_TYPE;
    g->s = !!(v & VM_SEG_ATTR_S);
    g->dpl = (v >> VM_SEG_ATTR_DPL_SHIFT) & 3;
    g->present = !!(v & VM_SEG_ATTR_P);
    g->avl = !!(v & VM_SEG_ATTR_AVL);
    g->l = !!(v & VM_SEG_ATTR_L);
    g->db = !!(v & VM_SEG_ATTR_DB);
    g->g = !!(v & VM_SEG_ATTR_G);
    g->unusable = !!(v & VM_SEG_ATTR_UNUSABLE);
}

static __u64 *gpr(struct kvm_regs *r, enum vm_reg_id id)
{
    static const size_t off[] = {
        [VM_REG_RAX] = offsetof(struct kvm_regs, rax), [VM_REG_RBX] = offsetof(struct kvm_regs, rbx),
        [VM_REG_RCX] = offsetof(struct kvm_regs, rcx), [VM_REG_RDX] = offsetof(struct kvm_regs, rdx),
        [VM_REG_RSI] = offsetof(struct kvm_regs, rsi), [VM_REG_RDI] = offsetof(struct kvm_regs, rdi),
        [VM_REG_RBP] = offsetof(struct kvm_regs, rbp), [VM_REG_RSP] = offsetof(struct kvm_regs, rsp),
        [VM_REG_R8] = offsetof(struct kvm_regs, r8),   [VM_REG_R9] = offsetof(struct kvm_regs, r9),
        [VM_REG_R10] = offsetof(struct kvm_regs, r10), [VM_REG_R11] = offsetof(struct kvm_regs, r11),
        [VM_REG_R12] = offsetof(struct kvm_regs, r12), [VM_REG_R13] = offsetof(struct kvm_regs, r13),
        [VM_REG_R14] = offsetof(struct kvm_regs, r14), [VM_REG_R15] = offsetof(struct kvm_regs, r15),
        [VM_REG_RIP] = offsetof(struct kvm_regs, rip), [VM_REG_EFLAGS] = offsetof(struct kvm_regs, rflags),
    };
    return id <= VM_REG_EFLAGS ? (__u64 *)((char *)r + off[id]) : NULL;
}

static __u64 *debugreg(struct kvm_debugregs *d, enum vm_reg_id id)
{
    if (in(id, VM_REG_DR0, 4))
        return &d->db[id - VM_REG_DR0];
    return id == VM_REG_DR6 ? &d->dr6 : id == VM_REG_DR7 ? &d->dr7 : NULL;
}

/* Where an XSAVE-backed register lies in the image, or NULL when this host
 * has no such component. *component receives its XSTATE_BV bit. */
static uint8_t *xsave_reg(struct vm_cpu *cpu, enum vm_reg_id id, unsigned *component)
{
    const struct vm_regcache *rc = &cpu->rc;
    const struct vm_xsave_layout *x = rc->xlayout;
    unsigned c, i;
    size_t off;
    if (in(id, VM_REG_YMM0H, 16)) {
        c = 2, i = id - VM_REG_YMM0H, off = 16 * i;
    } else if (in(id, VM_REG_K0, 8)) {
        c = 5, i = id - VM_REG_K0, off = 8 * i;
    } else if (in(id, VM_REG_ZMM0H, 16)) {
        c = 6, i = id - VM_REG_ZMM0H, off = 32 * i;
    } else if (in(id, VM_REG_XMM16, 16)) {
        c = 7, i = id - VM_REG_XMM16, off = 64 * i;
    } else if (in(id, VM_REG_YMM16H, 16)) {
        c = 7, i = id - VM_REG_YMM16H, off = 64 * i + 16;
    } else if (in(id, VM_REG_ZMM0H + 16, 16)) {
        c = 7, i = id - (VM_REG_ZMM0H + 16), off = 64 * i + 32;
    } else {
        return NULL;
    }
    if (!rc->xsave || !x || !(x->features & (1ull << c)) ||
        off + vm_reg_width(id) > x->size[c])
        return NULL;
    *component = c;
    return rc->xsave + x->offset[c] + off;
}

#define XSTATE_BV 512

static bool component_in_use(const struct vm_cpu *cpu, unsigned c)
{
    uint64_t bv;
    memcpy(&bv, cpu->rc.xsave + XSTATE_BV, 8);
    return bv & (1ull << c);
}

int vm_reg_get(struct vm_cpu *cpu, enum vm_reg_id id, uint64_t *value)
{
    if ((unsigned)id >= VM_REG_COUNT || vm_reg_is_wide(id))
        return -EINVAL;
    int err = vm_regcache_fetch(&cpu->rc, group_of(id));
    if (err)
        return err;
    struct vm_regcache *rc = &cpu->rc;
    /* Cheapest first: gdb's 'g' asks for every register after each stop. */
    __u64 *g = gpr(&rc->regs, id);
    if (g) {
        *value = *g;
        return 0;
    }
    __u64 *d = debugreg(&rc->dregs, id);
    if (d) {
        *value = *d;
        return 0;
    }
    const struct kvm_fpu *f = &rc->fpu;
    struct kvm_segment *seg = segment_of(&rc->sregs, id);
    if (seg) {
        switch (part_of(id)) {
        case PART_SELECTOR: *value = seg->selector; break;
        case PART_BASE: *value = seg->base; break;
        case PART_LIMIT: *value = seg->limit; break;
        case PART_ATTR: *value = attr_pack(seg); break;
        }
        return 0;
    }
    if (in(id, VM_REG_K0, 8)) {
        unsigned c;
        const uint8_t *p = xsave_reg(cpu, id, &c);
        if (!p)
            return -ENOTSUP;
        *value = 0;
        if (component_in_use(cpu, c))
            memcpy(value, p, 8);
        return 0;
    }
    switch (id) {
    case VM_REG_K_GS_BASE: *value = rc->kernel_gs_base; break;
    case VM_REG_CR0: *value = rc->sregs.cr0; break;
    case VM_REG_CR2: *value = rc->sregs.cr2; break;
    case VM_REG_CR3: *value = rc->sregs.cr3; break;
    case VM_REG_CR4: *value = rc->sregs.cr4; break;
    case VM_REG_CR8: *value = rc->sregs.cr8; break;
    case VM_REG_EFER: *value = rc->sregs.efer; break;
    case VM_REG_GDTR_BASE: *value = rc->sregs.gdt.base; break;
    case VM_REG_GDTR_LIMIT: *value = rc->sregs.gdt.limit; break;
    case VM_REG_IDTR_BASE: *value = rc->sregs.idt.base; break;
    case VM_REG_IDTR_LIMIT: *value = rc->sregs.idt.limit; break;
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
    return 0;
}

/* Loads a segment register from a selector the way the CPU would: in real
 * mode the base is selector * 16; in protected mode the descriptor comes
 * from the GDT or LDT in guest memory. */
static int load_segment(struct vm_cpu *cpu, enum vm_reg_id id, uint16_t sel)
{
    struct kvm_sregs *s = &cpu->rc.sregs;
    struct kvm_segment *seg = segment_of(s, id);
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

/* KVM checks segment, control and descriptor-table registers as a whole
 * (KVM_SET_SREGS), and only when it takes them; a debugger writing one
 * wants to hear at once if KVM refuses, so the change goes to KVM now and
 * is undone if it fails. */
static int commit_sregs(struct vm_cpu *cpu, const struct kvm_sregs *before)
{
    struct vm_regcache *rc = &cpu->rc;
    if (memcmp(before, &rc->sregs, sizeof(*before)) == 0)
        return 0;
    rc->dirty |= VM_RC_SREGS;
    unsigned others = rc->dirty & ~VM_RC_SREGS;
    rc->dirty = VM_RC_SREGS;
    int err = vm_regcache_flush(&cpu->rc);
    rc->dirty |= others;
    if (err) {
        rc->sregs = *before;
        rc->dirty &= ~VM_RC_SREGS;
        return -EINVAL;
    }
    return 0;
}

int vm_reg_set(struct vm_cpu *cpu, enum vm_reg_id id, uint64_t value)
{
    if ((unsigned)id >= VM_REG_COUNT || vm_reg_is_wide(id))
        return -EINVAL;
    unsigned group = group_of(id);
    int err = vm_regcache_fetch(&cpu->rc, group | VM_RC_SREGS);
    if (err)
        return err;
    struct vm_regcache *rc = &cpu->rc;
    struct kvm_fpu *f = &rc->fpu;
    __u64 *g = gpr(&rc->regs, id);
    __u64 *d = debugreg(&rc->dregs, id);
    if (g) {
        if (id == VM_REG_EFLAGS)
            value = (value & 0x3f7fd7u) | 2u; /* bit 1 reads as one */
        if (id == VM_REG_RIP && *g != value)
            cpu->halted = false; /* a debugger moving rip wakes a halted CPU */
        *g = value;
        rc->dirty |= group;
        return 0;
    }
    if (d) {
        *d = value;
        rc->dirty |= group;
        return 0;
    }
    if (in(id, VM_REG_K0, 8)) {
        unsigned c;
        uint8_t *p = xsave_reg(cpu, id, &c);
        if (!p)
            return -ENOTSUP;
        memcpy(p, &value, 8);
        uint64_t bv;
        memcpy(&bv, rc->xsave + XSTATE_BV, 8);
        bv |= 1ull << c;
        memcpy(rc->xsave + XSTATE_BV, &bv, 8);
        rc->dirty |= VM_RC_FPU;
        return 0;
    }
    if (group == VM_RC_SREGS) {
        struct kvm_sregs before = rc->sregs;
        struct kvm_segment *seg = segment_of(&rc->sregs, id);
        if (seg) {
            switch (part_of(id)) {
            case PART_SELECTOR:
                if (value > 0xffff)
                    return -EINVAL;
                if (id == VM_REG_LDTR || id == VM_REG_TR)
                    seg->selector = (uint16_t)value; /* the rest: LDTR/TR base, limit, attr */
                else if ((err = load_segment(cpu, id, (uint16_t)value)))
                    return err;
                break;
            case PART_BASE: seg->base = value; break;
            case PART_LIMIT:
                if (value > 0xffffffffu)
                    return -EINVAL;
                seg->limit = (uint32_t)value;
                break;
            case PART_ATTR: attr_unpack(seg, value); break;
            }
        } else {
            switch (id) {
            case VM_REG_CR0: rc->sregs.cr0 = value; break;
            case VM_REG_CR2: rc->sregs.cr2 = value; break;
            case VM_REG_CR3: rc->sregs.cr3 = value; break;
            case VM_REG_CR4: rc->sregs.cr4 = value; break;
            case VM_REG_CR8: rc->sregs.cr8 = value & 0xf; break;
            case VM_REG_EFER: rc->sregs.efer = value; break;
            case VM_REG_GDTR_BASE: rc->sregs.gdt.base = value; break;
            case VM_REG_IDTR_BASE: rc->sregs.idt.base = value; break;
            case VM_REG_GDTR_LIMIT:
            case VM_REG_IDTR_LIMIT:
                if (value > 0xffff)
                    return -EINVAL;
                if (id == VM_REG_GDTR_LIMIT)
                    rc->sregs.gdt.limit = (uint16_t)value;
                else
                    rc->sregs.idt.limit = (uint16_t)value;
                break;
            default: return -EINVAL;
            }
        }
        return commit_sregs(cpu, &before);
    }
    switch (id) {
    case VM_REG_K_GS_BASE: rc->kernel_gs_base = value; break;
    case VM_REG_FCTRL: f->fcw = (uint16_t)value; break;
    case VM_REG_FSTAT: f->fsw = (uint16_t)value; break;
    case VM_REG_FTAG: f->ftwx = vm_fpu_abridged_tag((uint16_t)value); break;
    case VM_REG_FISEG: f->last_ip = (f->last_ip & 0xffffffffull) | ((value & 0xffff) << 32); break;
    case VM_REG_FIOFF: f->last_ip = (f->last_ip & ~0xffffffffull) | (uint32_t)value; break;
    case VM_REG_FOSEG: f->last_dp = (f->last_dp & 0xffffffffull) | ((value & 0xffff) << 32); break;
    case VM_REG_FOOFF: f->last_dp = (f->last_dp & ~0xffffffffull) | (uint32_t)value; break;
    case VM_REG_FOP: f->last_opcode = (uint16_t)(value & 0x7ff); break;
    case VM_REG_MXCSR: f->mxcsr = (uint32_t)value; break;
    default: return -EINVAL;
    }
    rc->dirty |= group;
    return 0;
}

/* The bytes of a wide register: in the x87/SSE state, or in the XSAVE
 * image (zero while its component is in its initial state). */
static int wide(struct vm_cpu *cpu, enum vm_reg_id id, uint8_t **p, bool *in_use, unsigned *c)
{
    int err = vm_regcache_fetch(&cpu->rc, VM_RC_FPU);
    if (err)
        return err;
    *in_use = true;
    if (in(id, VM_REG_ST0, 8)) {
        *p = cpu->rc.fpu.fpr[id - VM_REG_ST0];
        return 0;
    }
    if (in(id, VM_REG_XMM0, 16)) {
        *p = cpu->rc.fpu.xmm[id - VM_REG_XMM0];
        return 0;
    }
    *p = xsave_reg(cpu, id, c);
    if (!*p)
        return -ENOTSUP;
    *in_use = component_in_use(cpu, *c);
    return 0;
}

int vm_reg_read(struct vm_cpu *cpu, enum vm_reg_id id, uint8_t *out, size_t size)
{
    if ((unsigned)id >= VM_REG_COUNT)
        return -EINVAL;
    const uint8_t *src;
    size_t width = vm_reg_width(id);
    uint64_t x;
    static const uint8_t zero[32];
    if (width > 8) {
        uint8_t *p;
        bool in_use;
        unsigned c = 0;
        int err = wide(cpu, id, &p, &in_use, &c);
        if (err)
            return err;
        src = in_use ? p : zero;
    } else {
        int err = vm_reg_get(cpu, id, &x);
        if (err)
            return err;
        src = (const uint8_t *)&x; /* x86 hosts only: little-endian like gdb's packets */
    }
    if (size <= width) {
        memcpy(out, src, size);
    } else {
        memcpy(out, src, width);
        memset(out + width, 0, size - width);
    }
    return 0;
}

int vm_reg_write(struct vm_cpu *cpu, enum vm_reg_id id, const uint8_t *in_bytes, size_t size)
{
    if ((unsigned)id >= VM_REG_COUNT)
        return -EINVAL;
    size_t width = vm_reg_width(id);
    if (width > 8) {
        uint8_t *p;
        bool in_use;
        unsigned c = 0;
        int err = wide(cpu, id, &p, &in_use, &c);
        if (err)
            return err;
        if (!in_use) {
            /* Leaving its initial state: the rest of the component is zero. */
            const struct vm_xsave_layout *x = cpu->rc.xlayout;
            memset(cpu->rc.xsave + x->offset[c], 0, x->size[c]);
            uint64_t bv;
            memcpy(&bv, cpu->rc.xsave + XSTATE_BV, 8);
            bv |= 1ull << c;
            memcpy(cpu->rc.xsave + XSTATE_BV, &bv, 8);
        }
        memset(p, 0, width);
        memcpy(p, in_bytes, size < width ? size : width);
        cpu->rc.dirty |= VM_RC_FPU;
        return 0;
    }
    uint64_t v = 0;
    memcpy(&v, in_bytes, size < 8 ? size : 8);
    uint64_t cur;
    /* Debuggers write every register back at once; leave unchanged
     * selectors alone so a stale GDT does not turn a no-op into an error. */
    if (id >= VM_REG_CS && id <= VM_REG_GS && vm_reg_get(cpu, id, &cur) == 0 && cur == v)
        return 0;
    return vm_reg_set(cpu, id, v);
}
