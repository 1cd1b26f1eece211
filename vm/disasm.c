#include "disasm.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct d {
    const uint8_t *p;
    size_t n, pos;
    bool ok;
    unsigned bits;
    int opsize, addrsize; /* bytes */
    uint8_t rex;
    bool p66, pf2, pf3, lock, rep;
    int seg; /* override, 0-5 as ES CS SS DS FS GS, or -1 */
    /* The ModRM byte's parts, once read. */
    int mod, reg, rm;
    char mem[96]; /* the memory operand, when mod != 3 */
};

static uint8_t next(struct d *d)
{
    if (d->pos >= d->n) {
        d->ok = false;
        return 0;
    }
    return d->p[d->pos++];
}

static int64_t imm(struct d *d, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)next(d) << (8 * i);
    if (bytes == 1)
        return (int8_t)v;
    if (bytes == 2)
        return (int16_t)v;
    if (bytes == 4)
        return (int32_t)v;
    return (int64_t)v;
}

static const char *gpr(struct d *d, int size, int i)
{
    static const char *r8[] = {"al", "cl", "dl", "bl", "ah", "ch", "dh", "bh"};
    static const char *r8x[] = {"al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil",
                                "r8b", "r9b", "r10b", "r11b", "r12b", "r13b", "r14b", "r15b"};
    static const char *r16[] = {"ax", "cx", "dx", "bx", "sp", "bp", "si", "di",
                                "r8w", "r9w", "r10w", "r11w", "r12w", "r13w", "r14w", "r15w"};
    static const char *r32[] = {"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi",
                                "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d", "r15d"};
    static const char *r64[] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"};
    i &= 15;
    switch (size) {
    case 1: return d->rex ? r8x[i] : r8[i & 7];
    case 2: return r16[i];
    case 4: return r32[i];
    default: return r64[i];
    }
}

static void modrm(struct d *d)
{
    uint8_t m = next(d);
    d->mod = m >> 6;
    d->reg = ((m >> 3) & 7) | ((d->rex & 4) << 1);
    d->rm = (m & 7) | (d->mod == 3 ? (d->rex & 1) << 3 : 0);
    if (d->mod == 3)
        return;
    static const char *segs[] = {"es", "cs", "ss", "ds", "fs", "gs"};
    char seg[8] = "";
    if (d->seg >= 0)
        snprintf(seg, sizeof(seg), "%%%s:", segs[d->seg]);
    char disp[24] = "", regs[40] = "";
    int64_t v = 0;
    bool has_disp = false;
    if (d->addrsize == 2) {
        static const char *forms[] = {"%bx,%si", "%bx,%di", "%bp,%si", "%bp,%di",
                                      "%si",     "%di",     "%bp",     "%bx"};
        int rm = m & 7;
        if (d->mod == 0 && rm == 6) {
            v = imm(d, 2);
            has_disp = true;
        } else {
            snprintf(regs, sizeof(regs), "(%s)", forms[rm]);
            if (d->mod) {
                v = imm(d, d->mod == 1 ? 1 : 2);
                has_disp = true;
            }
        }
    } else {
        int base = m & 7, index = -1, scale = 0;
        bool riprel = false, nobase = false;
        if (base == 4) {
            uint8_t sib = next(d);
            scale = 1 << (sib >> 6);
            index = ((sib >> 3) & 7) | ((d->rex & 2) << 2);
            if (index == 4)
                index = -1;
            base = sib & 7;
            if (base == 5 && d->mod == 0)
                nobase = true;
        } else if (base == 5 && d->mod == 0) {
            riprel = d->bits == 64;
            nobase = !riprel;
        }
        base |= (d->rex & 1) << 3;
        if (d->mod == 1) {
            v = imm(d, 1);
            has_disp = true;
        } else if (d->mod == 2 || nobase || riprel) {
            v = imm(d, 4);
            has_disp = true;
        }
        const char *b = riprel ? "rip" : nobase ? NULL : gpr(d, d->addrsize, base);
        if (index >= 0)
            snprintf(regs, sizeof(regs), "(%s%s,%%%s,%d)", b ? "%" : "", b ? b : "",
                     gpr(d, d->addrsize, index), scale);
        else if (b)
            snprintf(regs, sizeof(regs), "(%%%s)", b);
    }
    if (has_disp)
        snprintf(disp, sizeof(disp), "%s0x%llx", v < 0 && regs[0] ? "-" : "",
                 (unsigned long long)(v < 0 && regs[0] ? -(uint64_t)v
                                                        : (uint64_t)v & (d->addrsize == 8 ? ~0ull
                                                                         : 0xffffffffull)));
    snprintf(d->mem, sizeof(d->mem), "%s%s%s", seg, disp, regs);
}

/* The r/m operand: a register of the given size (or an xmm/mm one), or
 * the memory operand. */
static const char *rm_op(struct d *d, int size, char kind, char *buf, size_t cap)
{
    if (d->mod != 3)
        return d->mem;
    if (kind == 'x')
        snprintf(buf, cap, "%%xmm%d", d->rm);
    else if (kind == 'm')
        snprintf(buf, cap, "%%mm%d", d->rm & 7);
    else
        snprintf(buf, cap, "%%%s", gpr(d, size, d->rm));
    return buf;
}

static const char *reg_op(struct d *d, int size, char kind, char *buf, size_t cap)
{
    if (kind == 'x')
        snprintf(buf, cap, "%%xmm%d", d->reg);
    else if (kind == 'm')
        snprintf(buf, cap, "%%mm%d", d->reg & 7);
    else
        snprintf(buf, cap, "%%%s", gpr(d, size, d->reg));
    return buf;
}

static char suffix(int size)
{
    return size == 1 ? 'b' : size == 2 ? 'w' : size == 4 ? 'l' : 'q';
}

static bool out(char *o, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool out(char *o, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o, cap, fmt, ap);
    va_end(ap);
    return true;
}

/* SSE and MMX moves and logic: 0f xx with 66/f2/f3 choosing the form. */
static bool sse(struct d *d, uint8_t op, char *o, size_t cap)
{
    char a[16], b[16];
    const char *pfx = d->pf3 ? "f3" : d->pf2 ? "f2" : d->p66 ? "66" : "";
    struct form {
        uint8_t op;
        const char *pfx;
        const char *name;
        char rk, mk; /* register kinds of reg and r/m: x xmm, m mm, g GPR */
        bool store;  /* reg -> r/m */
    };
    static const struct form forms[] = {
        {0x10, "", "movups", 'x', 'x', false},    {0x10, "66", "movupd", 'x', 'x', false},
        {0x10, "f3", "movss", 'x', 'x', false},   {0x10, "f2", "movsd", 'x', 'x', false},
        {0x11, "", "movups", 'x', 'x', true},     {0x11, "66", "movupd", 'x', 'x', true},
        {0x11, "f3", "movss", 'x', 'x', true},    {0x11, "f2", "movsd", 'x', 'x', true},
        {0x28, "", "movaps", 'x', 'x', false},    {0x28, "66", "movapd", 'x', 'x', false},
        {0x29, "", "movaps", 'x', 'x', true},     {0x29, "66", "movapd", 'x', 'x', true},
        {0x2b, "", "movntps", 'x', 'x', true},    {0x2b, "66", "movntpd", 'x', 'x', true},
        {0x2e, "", "ucomiss", 'x', 'x', false},   {0x2e, "66", "ucomisd", 'x', 'x', false},
        {0x2f, "", "comiss", 'x', 'x', false},    {0x2f, "66", "comisd", 'x', 'x', false},
        {0x54, "", "andps", 'x', 'x', false},     {0x54, "66", "andpd", 'x', 'x', false},
        {0x57, "", "xorps", 'x', 'x', false},     {0x57, "66", "xorpd", 'x', 'x', false},
        {0x58, "", "addps", 'x', 'x', false},     {0x58, "66", "addpd", 'x', 'x', false},
        {0x58, "f3", "addss", 'x', 'x', false},   {0x58, "f2", "addsd", 'x', 'x', false},
        {0x6f, "", "movq", 'm', 'm', false},      {0x6f, "66", "movdqa", 'x', 'x', false},
        {0x6f, "f3", "movdqu", 'x', 'x', false},  {0x7f, "", "movq", 'm', 'm', true},
        {0x7f, "66", "movdqa", 'x', 'x', true},   {0x7f, "f3", "movdqu", 'x', 'x', true},
        {0x7e, "f3", "movq", 'x', 'x', false},    {0xd6, "66", "movq", 'x', 'x', true},
        {0xe7, "", "movntq", 'm', 'm', true},     {0xe7, "66", "movntdq", 'x', 'x', true},
        {0xef, "", "pxor", 'm', 'm', false},      {0xef, "66", "pxor", 'x', 'x', false},
        {0xeb, "", "por", 'm', 'm', false},       {0xeb, "66", "por", 'x', 'x', false},
        {0xdb, "", "pand", 'm', 'm', false},      {0xdb, "66", "pand", 'x', 'x', false},
        {0x74, "66", "pcmpeqb", 'x', 'x', false}, {0x75, "66", "pcmpeqw", 'x', 'x', false},
        {0x76, "66", "pcmpeqd", 'x', 'x', false}, {0xd7, "66", "pmovmskb", 'g', 'x', false},
    };
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        const struct form *f = &forms[i];
        if (f->op != op || strcmp(f->pfx, pfx) != 0)
            continue;
        modrm(d);
        if (!d->ok)
            return false;
        const char *r = reg_op(d, 4, f->rk, a, sizeof(a)), *m = rm_op(d, 4, f->mk, b, sizeof(b));
        return out(o, cap, "%s %s,%s", f->name, f->store ? r : m, f->store ? m : r);
    }
    /* movd/movq between a general register (or memory) and an xmm/mm one. */
    if ((op == 0x6e || op == 0x7e) && !d->pf2 && !d->pf3) {
        modrm(d);
        if (!d->ok)
            return false;
        int size = d->rex & 8 ? 8 : 4;
        const char *v = reg_op(d, size, d->p66 ? 'x' : 'm', a, sizeof(a));
        const char *e = rm_op(d, size, 'g', b, sizeof(b));
        const char *name = size == 8 ? "movq" : "movd";
        return out(o, cap, "%s %s,%s", name, op == 0x6e ? e : v, op == 0x6e ? v : e);
    }
    return false;
}

static bool two_byte(struct d *d, char *o, size_t cap)
{
    uint8_t op = next(d);
    char a[16], b[16];
    if (!d->ok)
        return false;
    switch (op) {
    case 0x05: return out(o, cap, "syscall");
    case 0x0b: return out(o, cap, "ud2");
    case 0x30: return out(o, cap, "wrmsr");
    case 0x31: return out(o, cap, "rdtsc");
    case 0x32: return out(o, cap, "rdmsr");
    case 0xa2: return out(o, cap, "cpuid");
    case 0x20:
    case 0x22:
        modrm(d);
        if (!d->ok || d->mod != 3)
            return false;
        snprintf(a, sizeof(a), "%%cr%d", d->reg);
        rm_op(d, d->bits == 64 ? 8 : 4, 'g', b, sizeof(b));
        return out(o, cap, "mov %s,%s", op == 0x20 ? a : b, op == 0x20 ? b : a);
    case 0xb6:
    case 0xb7:
    case 0xbe:
    case 0xbf: {
        modrm(d);
        if (!d->ok)
            return false;
        int from = op & 1 ? 2 : 1;
        return out(o, cap, "mov%c%c%c %s,%s", op < 0xbe ? 'z' : 's', suffix(from),
                   suffix(d->opsize), rm_op(d, from, 'g', b, sizeof(b)),
                   reg_op(d, d->opsize, 'g', a, sizeof(a)));
    }
    case 0xc3:
        modrm(d);
        if (!d->ok || d->mod == 3)
            return false;
        return out(o, cap, "movnti %s,%s", reg_op(d, d->rex & 8 ? 8 : 4, 'g', a, sizeof(a)),
                   d->mem);
    default:
        return sse(d, op, o, cap);
    }
}

static const char *alu[] = {"add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"};

static bool one_byte(struct d *d, uint8_t op, char *o, size_t cap)
{
    char a[16], b[16];
    int v = d->opsize;
    if (op < 0x40 && (op & 7) < 6) {
        const char *name = alu[op >> 3];
        int size = op & 1 ? v : 1;
        if ((op & 7) >= 4) {
            int64_t i = imm(d, size == 1 ? 1 : size == 2 ? 2 : 4);
            return d->ok && out(o, cap, "%s $0x%llx,%%%s", name,
                                (unsigned long long)((uint64_t)i & (size == 8 ? ~0ull : (1ull << (8 * size)) - 1)),
                                gpr(d, size, 0));
        }
        modrm(d);
        if (!d->ok)
            return false;
        const char *g = reg_op(d, size, 'g', a, sizeof(a)), *e = rm_op(d, size, 'g', b, sizeof(b));
        return out(o, cap, "%s%s %s,%s", d->lock ? "lock " : "", name, op & 2 ? e : g,
                   op & 2 ? g : e);
    }
    if (op >= 0x50 && op <= 0x5f)
        return out(o, cap, "%s %%%s", op < 0x58 ? "push" : "pop",
                   gpr(d, d->bits == 64 ? (d->opsize == 2 ? 2 : 8) : v, (op & 7) | ((d->rex & 1) << 3)));
    if (op >= 0xb0 && op <= 0xbf) {
        int size = op < 0xb8 ? 1 : v;
        int64_t i = imm(d, size);
        return d->ok && out(o, cap, "mov $0x%llx,%%%s",
                            (unsigned long long)((uint64_t)i & (size == 8 ? ~0ull : (1ull << (8 * size)) - 1)),
                            gpr(d, size, (op & 7) | ((d->rex & 1) << 3)));
    }
    switch (op) {
    case 0x80:
    case 0x81:
    case 0x83:
    case 0xc6:
    case 0xc7: {
        int size = op & 1 ? v : 1;
        modrm(d);
        int64_t i = imm(d, op == 0x83 || size == 1 ? 1 : size == 2 ? 2 : 4);
        if (!d->ok || (op >= 0xc6 && (d->reg & 7)))
            return false;
        const char *name = op >= 0xc6 ? "mov" : alu[d->reg & 7];
        const char *e = rm_op(d, size, 'g', b, sizeof(b));
        char sfx[2] = {d->mod == 3 ? 0 : suffix(size), 0};
        return out(o, cap, "%s%s%s $0x%llx,%s", d->lock ? "lock " : "", name, sfx,
                   (unsigned long long)((uint64_t)i & (size == 8 ? ~0ull : (1ull << (8 * size)) - 1)), e);
    }
    case 0x84:
    case 0x85:
    case 0x86:
    case 0x87:
    case 0x88:
    case 0x89:
    case 0x8a:
    case 0x8b: {
        int size = op & 1 ? v : 1;
        modrm(d);
        if (!d->ok)
            return false;
        const char *name = op < 0x86 ? "test" : op < 0x88 ? "xchg" : "mov";
        const char *g = reg_op(d, size, 'g', a, sizeof(a)), *e = rm_op(d, size, 'g', b, sizeof(b));
        bool load = op == 0x8a || op == 0x8b;
        return out(o, cap, "%s%s %s,%s", d->lock ? "lock " : "", name, load ? e : g, load ? g : e);
    }
    case 0x8d:
        modrm(d);
        if (!d->ok || d->mod == 3)
            return false;
        return out(o, cap, "lea %s,%s", d->mem, reg_op(d, v, 'g', a, sizeof(a)));
    case 0x90: return out(o, cap, d->pf3 ? "pause" : "nop");
    case 0x9c: return out(o, cap, "pushf");
    case 0x9d: return out(o, cap, "popf");
    case 0xa4: return out(o, cap, "%smovsb", d->rep ? "rep " : "");
    case 0xa5: return out(o, cap, "%smovs%c", d->rep ? "rep " : "", suffix(v));
    case 0xaa: return out(o, cap, "%sstosb", d->rep ? "rep " : "");
    case 0xab: return out(o, cap, "%sstos%c", d->rep ? "rep " : "", suffix(v));
    case 0xac: return out(o, cap, "%slodsb", d->rep ? "rep " : "");
    case 0xad: return out(o, cap, "%slods%c", d->rep ? "rep " : "", suffix(v));
    case 0xc3: return out(o, cap, "ret");
    case 0xc9: return out(o, cap, "leave");
    case 0xcc: return out(o, cap, "int3");
    case 0xcf: return out(o, cap, "iret");
    case 0xf4: return out(o, cap, "hlt");
    case 0xfa: return out(o, cap, "cli");
    case 0xfb: return out(o, cap, "sti");
    case 0xfc: return out(o, cap, "cld");
    case 0xfd: return out(o, cap, "std");
    case 0xe4:
    case 0xe5:
    case 0xe6:
    case 0xe7: {
        unsigned port = next(d);
        const char *r = gpr(d, op & 1 ? (v == 2 ? 2 : 4) : 1, 0);
        if (!d->ok)
            return false;
        return op < 0xe6 ? out(o, cap, "in $0x%x,%%%s", port, r)
                         : out(o, cap, "out %%%s,$0x%x", r, port);
    }
    case 0xec:
    case 0xed:
    case 0xee:
    case 0xef: {
        const char *r = gpr(d, op & 1 ? (v == 2 ? 2 : 4) : 1, 0);
        return op < 0xee ? out(o, cap, "in (%%dx),%%%s", r) : out(o, cap, "out %%%s,(%%dx)", r);
    }
    case 0xf6:
    case 0xf7:
    case 0xfe:
    case 0xff: {
        int size = op & 1 ? v : 1;
        modrm(d);
        if (!d->ok)
            return false;
        int r = d->reg & 7;
        const char *e = rm_op(d, size, 'g', b, sizeof(b));
        char sfx[2] = {d->mod == 3 ? 0 : suffix(size), 0};
        if (op >= 0xf6) {
            static const char *g3[] = {"test", "test", "not", "neg", "mul", "imul", "div", "idiv"};
            if (r < 2) {
                int64_t i = imm(d, size == 1 ? 1 : size == 2 ? 2 : 4);
                return d->ok && out(o, cap, "test%s $0x%llx,%s", sfx,
                                    (unsigned long long)((uint64_t)i & (size == 8 ? ~0ull : (1ull << (8 * size)) - 1)), e);
            }
            return out(o, cap, "%s%s%s %s", d->lock ? "lock " : "", g3[r], sfx, e);
        }
        if (r < 2)
            return out(o, cap, "%s%s%s %s", d->lock ? "lock " : "", r ? "dec" : "inc", sfx, e);
        if (op == 0xff && (r == 2 || r == 4))
            return out(o, cap, "%s *%s", r == 2 ? "call" : "jmp", e);
        if (op == 0xff && r == 6)
            return out(o, cap, "push%s %s", sfx, e);
        return false;
    }
    case 0x0f: return two_byte(d, o, cap);
    default: return false;
    }
}

bool vm_disasm(const uint8_t *insn, size_t n, unsigned bits, char *o, size_t cap)
{
    if (!cap)
        return false;
    o[0] = 0;
    struct d d = {.p = insn, .n = n > 15 ? 15 : n, .ok = true, .bits = bits, .seg = -1};
    int base = bits == 16 ? 2 : 4;
    bool opsz = false, adsz = false;
    uint8_t op;
    for (;;) {
        op = next(&d);
        if (!d.ok)
            return false;
        switch (op) {
        case 0x66: opsz = d.p66 = true; continue;
        case 0x67: adsz = true; continue;
        case 0xf0: d.lock = true; continue;
        case 0xf2: d.pf2 = d.rep = true; continue;
        case 0xf3: d.pf3 = d.rep = true; continue;
        case 0x26: d.seg = 0; continue;
        case 0x2e: d.seg = 1; continue;
        case 0x36: d.seg = 2; continue;
        case 0x3e: d.seg = 3; continue;
        case 0x64: d.seg = 4; continue;
        case 0x65: d.seg = 5; continue;
        default: break;
        }
        break;
    }
    if (bits == 64 && op >= 0x40 && op <= 0x4f) {
        d.rex = op;
        op = next(&d);
        if (!d.ok)
            return false;
    }
    d.opsize = d.rex & 8 ? 8 : opsz ? (base == 2 ? 4 : 2) : base;
    d.addrsize = bits == 64 ? (adsz ? 4 : 8) : adsz ? (base == 2 ? 4 : 2) : base;
    if (!one_byte(&d, op, o, cap) || !d.ok) {
        o[0] = 0;
        return false;
    }
    return true;
}
