/* vm/regs.h: a vCPU's register file, by register id.
 *
 * The ids name what the machine holds (general registers, segments, control
 * registers, x87/SSE state); how a debugger numbers and sizes them is the
 * stub's business (stub/regmap.h). Values travel as little-endian bytes:
 * vm_reg_read() fills `size` bytes (zero-extended or truncated), which is
 * how 80-bit x87 and 128-bit SSE registers are read as well as 16-bit
 * selectors. vm_reg_get/set are the 64-bit shortcuts for the rest.
 *
 * Reads come from a per-vCPU cache filled from KVM the first time a group of
 * registers is needed after the guest ran; writes go to the cache and reach
 * KVM just before the guest runs again, so a stop costs at most one ioctl
 * per group however many packets a debugger sends. Only the thread that
 * owns the stopped vCPU calls these (see vm/vm.h). */
#ifndef VM_REGS_H
#define VM_REGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm_cpu;

enum vm_mode {
    VM_MODE_REAL,      /* 16-bit real mode */
    VM_MODE_PROTECTED, /* 32-bit protected mode (paging or not) */
    VM_MODE_LONG,      /* 64-bit long mode */
};

enum vm_reg_id {
    VM_REG_RAX, VM_REG_RBX, VM_REG_RCX, VM_REG_RDX, VM_REG_RSI, VM_REG_RDI, VM_REG_RBP,
    VM_REG_RSP, VM_REG_R8, VM_REG_R9, VM_REG_R10, VM_REG_R11, VM_REG_R12, VM_REG_R13,
    VM_REG_R14, VM_REG_R15, VM_REG_RIP, VM_REG_EFLAGS,
    VM_REG_CS, VM_REG_SS, VM_REG_DS, VM_REG_ES, VM_REG_FS, VM_REG_GS,
    VM_REG_FS_BASE, VM_REG_GS_BASE, VM_REG_K_GS_BASE,
    VM_REG_CR0, VM_REG_CR2, VM_REG_CR3, VM_REG_CR4, VM_REG_CR8, VM_REG_EFER,
    VM_REG_ST0, /* ... VM_REG_ST0 + 7: 10 bytes each */
    VM_REG_FCTRL = VM_REG_ST0 + 8, VM_REG_FSTAT, VM_REG_FTAG, VM_REG_FISEG, VM_REG_FIOFF,
    VM_REG_FOSEG, VM_REG_FOOFF, VM_REG_FOP,
    VM_REG_XMM0, /* ... VM_REG_XMM0 + 15: 16 bytes each */
    VM_REG_MXCSR = VM_REG_XMM0 + 16,
    /* The rest of the segment registers: base, limit and attributes
     * (VM_SEG_ATTR_* packed), then LDTR and TR, GDTR and IDTR. */
    VM_REG_CS_BASE, VM_REG_SS_BASE, VM_REG_DS_BASE, VM_REG_ES_BASE,
    VM_REG_CS_LIMIT, VM_REG_SS_LIMIT, VM_REG_DS_LIMIT, VM_REG_ES_LIMIT, VM_REG_FS_LIMIT,
    VM_REG_GS_LIMIT,
    VM_REG_CS_ATTR, VM_REG_SS_ATTR, VM_REG_DS_ATTR, VM_REG_ES_ATTR, VM_REG_FS_ATTR,
    VM_REG_GS_ATTR,
    VM_REG_LDTR, VM_REG_LDTR_BASE, VM_REG_LDTR_LIMIT, VM_REG_LDTR_ATTR,
    VM_REG_TR, VM_REG_TR_BASE, VM_REG_TR_LIMIT, VM_REG_TR_ATTR,
    VM_REG_GDTR_BASE, VM_REG_GDTR_LIMIT, VM_REG_IDTR_BASE, VM_REG_IDTR_LIMIT,
    /* The guest's debug registers (kvmstub's own breakpoints live apart). */
    VM_REG_DR0, VM_REG_DR1, VM_REG_DR2, VM_REG_DR3, VM_REG_DR6, VM_REG_DR7,
    /* From the XSAVE image, where the host has the component: */
    VM_REG_YMM0H,                       /* ... + 15: upper halves of ymm0-15, 16 bytes */
    VM_REG_XMM16 = VM_REG_YMM0H + 16,   /* ... + 15: 16 bytes (AVX-512) */
    VM_REG_YMM16H = VM_REG_XMM16 + 16,  /* ... + 15: 16 bytes */
    VM_REG_K0 = VM_REG_YMM16H + 16,     /* ... + 7: opmask registers, 8 bytes */
    VM_REG_ZMM0H = VM_REG_K0 + 8,       /* ... + 31: upper 256 bits of zmm0-31, 32 bytes */
    VM_REG_COUNT = VM_REG_ZMM0H + 32
};

/* VM_REG_*_ATTR: a segment's attributes, as VMX packs them. */
#define VM_SEG_ATTR_TYPE 0x000fu
#define VM_SEG_ATTR_S (1u << 4)
#define VM_SEG_ATTR_DPL_SHIFT 5
#define VM_SEG_ATTR_P (1u << 7)
#define VM_SEG_ATTR_AVL (1u << 12)
#define VM_SEG_ATTR_L (1u << 13)
#define VM_SEG_ATTR_DB (1u << 14)
#define VM_SEG_ATTR_G (1u << 15)
#define VM_SEG_ATTR_UNUSABLE (1u << 16)

/* True for the registers wider than 64 bits (st, xmm, ymm halves, zmm
 * halves). */
bool vm_reg_is_wide(enum vm_reg_id id);
/* Bytes a register holds (10 for st, 16 for xmm, 32 for zmm halves, else
 * 8). */
size_t vm_reg_width(enum vm_reg_id id);

/* Reads register id into out[0..size); -EINVAL for an unknown id. */
int vm_reg_read(struct vm_cpu *cpu, enum vm_reg_id id, uint8_t *out, size_t size);
/* Writes it from in[0..size) (shorter values are zero-extended); -EINVAL for
 * a value the CPU cannot hold (e.g. a selector whose descriptor is not
 * present in protected mode, a CR0/CR4/EFER/segment combination KVM
 * refuses: those are checked with KVM at once, and the old value stays),
 * -ENOTSUP for an XSAVE register this host does not have. */
int vm_reg_write(struct vm_cpu *cpu, enum vm_reg_id id, const uint8_t *in, size_t size);

/* The 64-bit shortcuts; -EINVAL for the wide registers. */
int vm_reg_get(struct vm_cpu *cpu, enum vm_reg_id id, uint64_t *value);
int vm_reg_set(struct vm_cpu *cpu, enum vm_reg_id id, uint64_t value);

/* The CPU mode now, from CR0, EFER and CS. */
enum vm_mode vm_cpu_mode(struct vm_cpu *cpu);
const char *vm_mode_name(enum vm_mode mode);

/* The full x87 tag word a debugger shows, from FXSAVE's abridged one; st
 * holds ST(0)..ST(7) at 16-byte strides, as in FXSAVE. */
uint16_t vm_fpu_full_tag(uint8_t abridged, uint16_t fsw, const uint8_t *st);
uint8_t vm_fpu_abridged_tag(uint16_t full);

#endif
