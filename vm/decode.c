#include "decode.h"

#include <string.h>

enum { NONE = 0, R = 1, W = 2, RW = 3 };

/* Size codes: a byte count, or one of these. */
enum { SZ_OP = 100, SZ_VEC = 101, SZ_STACK = 102, SZ_FAR = 103 };

struct op {
    bool modrm;
    int access; /* of the memory operand */
    int size;
    int imm;    /* bytes; -1 for imm16/32 by operand size */
    int stack;  /* R: pops, W: pushes */
};

struct ctx {
    const uint8_t *p;
    size_t n, pos;
    bool ok;
    bool long64;
    int opsize, addrsize; /* bytes */
    int seg;              /* override: 0-5 as ES CS SS DS FS GS, or -1 */
    uint8_t rex;
    bool p66, pf2, pf3;
    int vex_l;            /* 0, or 1 for 256-bit VEX */
    const struct kvm_regs *regs;
    const struct kvm_sregs *sregs;
};

static uint8_t next(struct ctx *c)
{
    if (c->pos >= c->n) {
        c->ok = false;
        return 0;
    }
    return c->p[c->pos++];
}

static uint64_t reg(const struct ctx *c, int i)
{
    const struct kvm_regs *r = c->regs;
    const uint64_t v[16] = {r->rax, r->rcx, r->rdx, r->rbx, r->rsp, r->rbp, r->rsi, r->rdi,
                            r->r8,  r->r9,  r->r10, r->r11, r->r12, r->r13, r->r14, r->r15};
    return v[i & 15];
}

static uint64_t seg_base(const struct ctx *c, int seg)
{
    const struct kvm_sregs *s = c->sregs;
    if (c->long64 && seg != 4 && seg != 5)
        return 0;
    const struct kvm_segment *t[6] = {&s->es, &s->cs, &s->ss, &s->ds, &s->fs, &s->gs};
    return t[seg]->base;
}

static uint64_t mask(int bytes, uint64_t v)
{
    return bytes == 8 ? v : v & ((1ull << (8 * bytes)) - 1);
}

static uint64_t linear(const struct ctx *c, int seg, uint64_t ea)
{
    uint64_t a = seg_base(c, seg) + mask(c->addrsize, ea);
    return c->long64 ? a : a & 0xffffffffull;
}

static int64_t sdisp(struct ctx *c, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)next(c) << (8 * i);
    if (bytes == 1)
        return (int8_t)v;
    if (bytes == 2)
        return (int16_t)v;
    return (int32_t)v;
}

/* The memory operand of a ModRM byte; false for a register operand. */
static bool modrm_ea(struct ctx *c, uint8_t modrm, uint64_t *ea, int *seg, bool *riprel)
{
    int mod = modrm >> 6, rm = modrm & 7;
    *riprel = false;
    if (mod == 3)
        return false;
    if (c->addrsize == 2) {
        static const int base[8][2] = {{3, 6}, {3, 7}, {5, 6}, {5, 7}, {6, -1}, {7, -1}, {5, -1}, {3, -1}};
        int64_t d = 0;
        if (mod == 0 && rm == 6) {
            d = sdisp(c, 2);
            *ea = (uint16_t)d;
            *seg = 3;
            return true;
        }
        if (mod == 1)
            d = sdisp(c, 1);
        else if (mod == 2)
            d = sdisp(c, 2);
        uint64_t a = reg(c, base[rm][0]) + (base[rm][1] >= 0 ? reg(c, base[rm][1]) : 0);
        *ea = (uint16_t)(a + (uint64_t)d);
        *seg = (rm == 2 || rm == 3 || rm == 6) ? 2 : 3;
        return true;
    }
    int b = rm | ((c->rex & 1) << 3);
    uint64_t a = 0;
    *seg = 3;
    if (rm == 4) {
        uint8_t sib = next(c);
        int scale = sib >> 6, index = ((sib >> 3) & 7) | ((c->rex & 2) << 2), sbase = sib & 7;
        if (index != 4)
            a += reg(c, index) << scale;
        if (sbase == 5 && mod == 0) {
            a += (uint64_t)sdisp(c, 4);
        } else {
            int breg = sbase | ((c->rex & 1) << 3);
            a += reg(c, breg);
            if ((breg & 7) == 4 || (breg & 7) == 5)
                *seg = 2;
        }
    } else if (rm == 5 && mod == 0) {
        a = (uint64_t)sdisp(c, 4);
        *riprel = c->long64; /* relative to the next instruction */
        *ea = a;
        return true;
    } else {
        a = reg(c, b);
        if (rm == 5)
            *seg = 2;
    }
    if (mod == 1)
        a += (uint64_t)sdisp(c, 1);
    else if (mod == 2)
        a += (uint64_t)sdisp(c, 4);
    *ea = a;
    return true;
}

/* Semantics of one-byte opcodes. */
static struct op one_byte(struct ctx *c, uint8_t op, uint8_t regf)
{
    struct op o = {0};
    if (op < 0x40 && (op & 7) < 4) {
        o.modrm = true;
        o.size = (op & 1) ? SZ_OP : 1;
        o.access = (op & 2) || (op & 0xf8) == 0x38 ? R : RW;
        return o;
    }
    if (op >= 0x50 && op <= 0x57)
        return (struct op){.stack = W};
    if (op >= 0x58 && op <= 0x5f)
        return (struct op){.stack = R};
    switch (op) {
    case 0x62: return (struct op){.modrm = true, .access = R, .size = SZ_FAR};
    case 0x63: return (struct op){.modrm = true, .access = c->long64 ? R : RW, .size = c->long64 ? 4 : 2};
    case 0x68: return (struct op){.imm = -1, .stack = W};
    case 0x6a: return (struct op){.imm = 1, .stack = W};
    case 0x69: return (struct op){.modrm = true, .access = R, .size = SZ_OP, .imm = -1};
    case 0x6b: return (struct op){.modrm = true, .access = R, .size = SZ_OP, .imm = 1};
    case 0x80: case 0x82:
        return (struct op){.modrm = true, .access = regf == 7 ? R : RW, .size = 1, .imm = 1};
    case 0x81: return (struct op){.modrm = true, .access = regf == 7 ? R : RW, .size = SZ_OP, .imm = -1};
    case 0x83: return (struct op){.modrm = true, .access = regf == 7 ? R : RW, .size = SZ_OP, .imm = 1};
    case 0x84: return (struct op){.modrm = true, .access = R, .size = 1};
    case 0x85: return (struct op){.modrm = true, .access = R, .size = SZ_OP};
    case 0x86: return (struct op){.modrm = true, .access = RW, .size = 1};
    case 0x87: return (struct op){.modrm = true, .access = RW, .size = SZ_OP};
    case 0x88: return (struct op){.modrm = true, .access = W, .size = 1};
    case 0x89: return (struct op){.modrm = true, .access = W, .size = SZ_OP};
    case 0x8a: return (struct op){.modrm = true, .access = R, .size = 1};
    case 0x8b: return (struct op){.modrm = true, .access = R, .size = SZ_OP};
    case 0x8c: return (struct op){.modrm = true, .access = W, .size = 2};
    case 0x8d: return (struct op){.modrm = true, .access = NONE};
    case 0x8e: return (struct op){.modrm = true, .access = R, .size = 2};
    case 0x8f: return (struct op){.modrm = true, .access = W, .size = SZ_STACK, .stack = R};
    case 0x9c: return (struct op){.stack = W};
    case 0x9d: return (struct op){.stack = R};
    case 0xc0: return (struct op){.modrm = true, .access = RW, .size = 1, .imm = 1};
    case 0xc1: return (struct op){.modrm = true, .access = RW, .size = SZ_OP, .imm = 1};
    case 0xc2: case 0xc3: case 0xca: case 0xcb: case 0xcf: return (struct op){.stack = R};
    case 0xc4: case 0xc5: return (struct op){.modrm = true, .access = R, .size = SZ_FAR};
    case 0xc6: return (struct op){.modrm = true, .access = W, .size = 1, .imm = 1};
    case 0xc7: return (struct op){.modrm = true, .access = W, .size = SZ_OP, .imm = -1};
    case 0xe8: return (struct op){.stack = W};
    case 0xd0: case 0xd2: return (struct op){.modrm = true, .access = RW, .size = 1};
    case 0xd1: case 0xd3: return (struct op){.modrm = true, .access = RW, .size = SZ_OP};
    case 0xf6:
        return (struct op){.modrm = true, .access = regf == 2 || regf == 3 ? RW : R, .size = 1,
                           .imm = regf < 2 ? 1 : 0};
    case 0xf7:
        return (struct op){.modrm = true, .access = regf == 2 || regf == 3 ? RW : R,
                           .size = SZ_OP, .imm = regf < 2 ? -1 : 0};
    case 0xfe: return (struct op){.modrm = true, .access = regf < 2 ? RW : NONE, .size = 1};
    case 0xff:
        switch (regf) {
        case 0: case 1: return (struct op){.modrm = true, .access = RW, .size = SZ_OP};
        case 2: return (struct op){.modrm = true, .access = R, .size = SZ_STACK, .stack = W};
        case 3: case 5: return (struct op){.modrm = true, .access = R, .size = SZ_FAR};
        case 4: return (struct op){.modrm = true, .access = R, .size = SZ_STACK};
        case 6: return (struct op){.modrm = true, .access = R, .size = SZ_STACK, .stack = W};
        default: return (struct op){.modrm = true};
        }
    }
    if (op >= 0xd8 && op <= 0xdf) {
        /* x87: loads read, stores write; sizes per form */
        static const int8_t d9[8] = {4, 0, -4, -4, 28, 2, -28, -2};
        static const int8_t db[8] = {4, -4, -4, -4, 0, 10, 0, -10};
        static const int8_t dd[8] = {8, -8, -8, -8, 108, 0, -108, -2};
        static const int8_t df[8] = {2, -2, -2, -2, 10, 8, -10, -8};
        int s;
        switch (op) {
        case 0xd8: case 0xda: s = 4; break;
        case 0xdc: s = 8; break;
        case 0xde: s = 2; break;
        case 0xd9: s = d9[regf]; break;
        case 0xdb: s = db[regf]; break;
        case 0xdd: s = dd[regf]; break;
        default: s = df[regf]; break;
        }
        return (struct op){.modrm = true, .access = s > 0 ? R : s < 0 ? W : NONE,
                           .size = s < 0 ? -s : s};
    }
    return o;
}

/* Semantics of 0F-map opcodes (legacy SSE or VEX). */
static struct op two_byte(struct ctx *c, uint8_t op, uint8_t regf)
{
    int scalar = c->pf3 ? 4 : c->pf2 ? 8 : SZ_VEC;
    if (op >= 0x40 && op <= 0x4f)
        return (struct op){.modrm = true, .access = R, .size = SZ_OP};
    if (op >= 0x90 && op <= 0x9f)
        return (struct op){.modrm = true, .access = W, .size = 1};
    if (op >= 0x80 && op <= 0x8f)
        return (struct op){.imm = 4};
    switch (op) {
    case 0x00: return (struct op){.modrm = true, .access = regf < 2 ? W : R, .size = 2};
    case 0x01: return (struct op){.modrm = true, .access = regf < 2 ? W : regf < 4 ? R : regf == 4 ? W : regf == 6 ? R : NONE, .size = regf < 4 ? (c->long64 ? 10 : 6) : 2};
    case 0x0d: case 0x18: case 0x19: case 0x1a: case 0x1b: case 0x1c: case 0x1d: case 0x1e: case 0x1f:
        return (struct op){.modrm = true};
    case 0x10: return (struct op){.modrm = true, .access = R, .size = scalar};
    case 0x11: return (struct op){.modrm = true, .access = W, .size = scalar};
    case 0x12: case 0x16: return (struct op){.modrm = true, .access = R, .size = 8};
    case 0x13: case 0x17: return (struct op){.modrm = true, .access = W, .size = 8};
    case 0x29: case 0x2b: case 0xe7: return (struct op){.modrm = true, .access = W, .size = SZ_VEC};
    case 0x2e: case 0x2f: return (struct op){.modrm = true, .access = R, .size = c->p66 ? 8 : 4};
    case 0x6e: return (struct op){.modrm = true, .access = R, .size = (c->rex & 8) ? 8 : 4};
    case 0x7e:
        if (c->pf3)
            return (struct op){.modrm = true, .access = R, .size = 8};
        return (struct op){.modrm = true, .access = W, .size = (c->rex & 8) ? 8 : 4};
    case 0x7f: return (struct op){.modrm = true, .access = W, .size = c->p66 || c->pf3 ? SZ_VEC : 8};
    case 0xd6: return (struct op){.modrm = true, .access = W, .size = 8};
    case 0x70: case 0xc2: case 0xc6: return (struct op){.modrm = true, .access = R, .size = SZ_VEC, .imm = 1};
    case 0x71: case 0x72: case 0x73: return (struct op){.modrm = true, .imm = 1};
    case 0xa0: case 0xa8: return (struct op){.stack = W};
    case 0xa1: case 0xa9: return (struct op){.stack = R};
    case 0xa3: return (struct op){.modrm = true, .access = R, .size = SZ_OP};
    case 0xab: case 0xb3: case 0xbb: case 0xa5: case 0xad: case 0xb0: case 0xb1: case 0xc0:
    case 0xc1:
        return (struct op){.modrm = true, .access = RW, .size = op == 0xb0 || op == 0xc0 ? 1 : SZ_OP};
    case 0xa4: case 0xac: return (struct op){.modrm = true, .access = RW, .size = SZ_OP, .imm = 1};
    case 0xaf: case 0xbc: case 0xbd: case 0xb8: return (struct op){.modrm = true, .access = R, .size = SZ_OP};
    case 0xb6: case 0xbe: return (struct op){.modrm = true, .access = R, .size = 1};
    case 0xb7: case 0xbf: return (struct op){.modrm = true, .access = R, .size = 2};
    case 0xba: return (struct op){.modrm = true, .access = regf == 4 ? R : regf > 4 ? RW : NONE, .size = SZ_OP, .imm = 1};
    case 0xc3: return (struct op){.modrm = true, .access = W, .size = SZ_OP};
    case 0xc4: return (struct op){.modrm = true, .access = R, .size = 2, .imm = 1};
    case 0xc5: return (struct op){.modrm = true, .imm = 1};
    case 0xc7: return (struct op){.modrm = true, .access = regf == 1 ? RW : NONE, .size = (c->rex & 8) ? 16 : 8};
    case 0xae: {
        static const int acc[8] = {W, R, R, W, W, R, NONE, NONE};
        static const int sz[8] = {512, 512, 4, 4, 576, 576, 0, 0};
        return (struct op){.modrm = true, .access = acc[regf], .size = sz[regf]};
    }
    }
    /* Opcodes without ModRM in this map. */
    static const uint8_t plain[] = {0x05, 0x06, 0x07, 0x08, 0x09, 0x0b, 0x0e, 0x30, 0x31, 0x32,
                                    0x33, 0x34, 0x35, 0x37, 0x77, 0xa2, 0xaa};
    if (memchr(plain, op, sizeof(plain)) || (op >= 0xc8 && op <= 0xcf))
        return (struct op){0};
    /* Everything else with ModRM: SSE arithmetic and loads. */
    return (struct op){.modrm = true, .access = R, .size = (op >= 0x50 && op <= 0x5f) || op >= 0xd0 || (op >= 0x60 && op <= 0x6f) || op == 0x14 || op == 0x15 || op == 0x28 ? SZ_VEC : op >= 0x2a && op <= 0x2d ? scalar : SZ_VEC};
}

static int size_of(const struct ctx *c, int s)
{
    switch (s) {
    case SZ_OP: return c->opsize;
    case SZ_VEC: return c->vex_l ? 32 : 16;
    case SZ_STACK: return c->long64 ? (c->p66 ? 2 : 8) : c->opsize;
    case SZ_FAR: return c->opsize + 2;
    default: return s;
    }
}

static void add(struct vm_access *out, size_t *k, uint64_t addr, int size, int access)
{
    if (*k >= VM_DECODE_MAX_ACCESSES || !access || size <= 0)
        return;
    out[(*k)++] = (struct vm_access){.addr = addr, .size = (uint32_t)size,
                                     .read = (access & R) != 0, .write = (access & W) != 0};
}

static void stack_access(struct ctx *c, struct vm_access *out, size_t *k, int access)
{
    int sz = size_of(c, SZ_STACK);
    bool ss32 = c->long64 || c->sregs->ss.db;
    uint64_t sp = c->regs->rsp;
    if (!c->long64)
        sp &= ss32 ? 0xffffffffull : 0xffffull;
    uint64_t a = access == W ? sp - (uint64_t)sz : sp;
    if (!c->long64)
        a &= ss32 ? 0xffffffffull : 0xffffull;
    a = (c->long64 ? 0 : c->sregs->ss.base) + a;
    add(out, k, c->long64 ? a : a & 0xffffffffull, sz, access);
}

size_t vm_decode_access(const uint8_t *insn, size_t n, const struct kvm_regs *regs,
                        const struct kvm_sregs *sregs, struct vm_access *out)
{
    struct ctx c = {.p = insn, .n = n > 15 ? 15 : n, .ok = true, .seg = -1, .regs = regs,
                    .sregs = sregs};
    c.long64 = (sregs->efer & (1u << 10)) && sregs->cs.l;
    bool d32 = c.long64 || ((sregs->cr0 & 1) && sregs->cs.db);
    c.opsize = d32 ? 4 : 2;
    c.addrsize = c.long64 ? 8 : d32 ? 4 : 2;
    /* prefixes */
    uint8_t op;
    for (;;) {
        op = next(&c);
        if (!c.ok)
            return 0;
        switch (op) {
        case 0x66: c.p66 = true; c.opsize = d32 ? 2 : 4; continue;
        case 0x67: c.addrsize = c.long64 ? 4 : d32 ? 2 : 4; continue;
        case 0x26: c.seg = 0; continue;
        case 0x2e: c.seg = 1; continue;
        case 0x36: c.seg = 2; continue;
        case 0x3e: c.seg = 3; continue;
        case 0x64: c.seg = 4; continue;
        case 0x65: c.seg = 5; continue;
        case 0xf0: continue;
        case 0xf2: c.pf2 = true; continue;
        case 0xf3: c.pf3 = true; continue;
        default: break;
        }
        break;
    }
    if (c.long64 && (op & 0xf0) == 0x40) {
        c.rex = op;
        if (c.rex & 8)
            c.opsize = 8;
        op = next(&c);
    }
    int map = 0;
    bool vex = (op == 0xc4 || op == 0xc5) && c.pos < c.n && (c.long64 || (c.p[c.pos] >> 6) == 3);
    if (vex) {
        uint8_t b1 = next(&c), pp;
        c.rex = (uint8_t)((~b1 >> 5) & 4); /* R, unused here */
        if (op == 0xc5) {
            map = 1;
            c.vex_l = (b1 >> 2) & 1;
            pp = b1 & 3;
        } else {
            uint8_t b2 = next(&c);
            c.rex = (uint8_t)(((~b1 >> 5) & 3) | ((b2 & 0x80) ? 8 : 0));
            map = b1 & 0x1f;
            c.vex_l = (b2 >> 2) & 1;
            pp = b2 & 3;
        }
        c.p66 = pp == 1;
        c.pf3 = pp == 2;
        c.pf2 = pp == 3;
        if (map < 1 || map > 3)
            return 0;
        op = next(&c);
    } else if (op == 0x0f) {
        map = 1;
        op = next(&c);
        if (op == 0x38 || op == 0x3a) {
            map = op == 0x38 ? 2 : 3;
            op = next(&c);
        }
    }
    if (!c.ok)
        return 0;

    struct vm_access *o = out;
    size_t k = 0;
    /* Opcodes whose memory is implicit. */
    if (map == 0) {
        int si_seg = c.seg >= 0 ? c.seg : 3;
        uint64_t si = regs->rsi, di = regs->rdi;
        int esz = (op & 1) ? c.opsize : 1;
        switch (op) {
        case 0xa4: case 0xa5:
            add(o, &k, linear(&c, si_seg, si), esz, R);
            add(o, &k, linear(&c, 0, di), esz, W);
            return k;
        case 0xa6: case 0xa7:
            add(o, &k, linear(&c, si_seg, si), esz, R);
            add(o, &k, linear(&c, 0, di), esz, R);
            return k;
        case 0xaa: case 0xab: add(o, &k, linear(&c, 0, di), esz, W); return k;
        case 0xac: case 0xad: add(o, &k, linear(&c, si_seg, si), esz, R); return k;
        case 0xae: case 0xaf: add(o, &k, linear(&c, 0, di), esz, R); return k;
        case 0x6c: case 0x6d: add(o, &k, linear(&c, 0, di), esz, W); return k;
        case 0x6e: case 0x6f: add(o, &k, linear(&c, si_seg, si), esz, R); return k;
        case 0xd7: add(o, &k, linear(&c, si_seg, regs->rbx + (regs->rax & 0xff)), 1, R); return k;
        case 0xa0: case 0xa1: case 0xa2: case 0xa3: {
            uint64_t moffs = 0;
            for (int i = 0; i < c.addrsize; i++)
                moffs |= (uint64_t)next(&c) << (8 * i);
            if (c.ok)
                add(o, &k, linear(&c, si_seg, moffs), esz, op < 0xa2 ? R : W);
            return k;
        }
        case 0xc9: /* leave reads the frame at rbp */
            add(o, &k, linear(&c, 2, regs->rbp), size_of(&c, SZ_STACK), R);
            return k;
        default:
            break;
        }
    }
    uint8_t modrm = 0;
    struct op d;
    bool has_modrm;
    if (map == 0) {
        /* Peek the reg field for groups: the semantics depend on it. */
        uint8_t peek = c.pos < c.n ? c.p[c.pos] : 0;
        d = one_byte(&c, op, (peek >> 3) & 7);
    } else if (map == 1) {
        uint8_t peek = c.pos < c.n ? c.p[c.pos] : 0;
        d = two_byte(&c, op, (peek >> 3) & 7);
    } else {
        d = (struct op){.modrm = true, .access = R, .size = SZ_VEC, .imm = map == 3 ? 1 : 0};
        if (map == 3 && op >= 0x14 && op <= 0x17)
            d.access = W, d.size = 8; /* pextr*, extractps */
    }
    has_modrm = d.modrm;
    if (d.stack)
        stack_access(&c, o, &k, d.stack);
    if (!has_modrm)
        return k;
    modrm = next(&c);
    uint64_t ea;
    int seg;
    bool riprel;
    if (!c.ok || !modrm_ea(&c, modrm, &ea, &seg, &riprel) || !c.ok)
        return k;
    if (riprel) {
        int imm = d.imm < 0 ? (c.opsize == 2 ? 2 : 4) : d.imm;
        if (c.pos + (size_t)imm > c.n)
            return k;
        ea += regs->rip + c.pos + (uint64_t)imm;
    }
    add(o, &k, linear(&c, c.seg >= 0 ? c.seg : seg, ea), size_of(&c, d.size), d.access);
    return k;
}

const char *vm_decode_nondeterministic(const uint8_t *insn, size_t n, bool long_mode)
{
    size_t i = 0;
    while (i < n && i < 15) {
        uint8_t b = insn[i];
        bool legacy = b == 0x66 || b == 0x67 || b == 0xf0 || b == 0xf2 || b == 0xf3 ||
                      b == 0x2e || b == 0x36 || b == 0x3e || b == 0x26 || b == 0x64 || b == 0x65;
        if (!legacy && !(long_mode && (b & 0xf0) == 0x40))
            break;
        i++;
    }
    if (i + 1 >= n || insn[i] != 0x0f)
        return NULL;
    uint8_t op = insn[i + 1];
    if (op == 0x31)
        return "RDTSC";
    if (op == 0x33)
        return "RDPMC";
    if (op == 0x01 && i + 2 < n && insn[i + 2] == 0xf9)
        return "RDTSCP";
    if (op == 0xc7 && i + 2 < n && (insn[i + 2] >> 6) == 3) {
        unsigned reg = (insn[i + 2] >> 3) & 7;
        if (reg == 6)
            return "RDRAND";
        if (reg == 7)
            return "RDSEED";
    }
    return NULL;
}
