/* vm/regs.h: the register file in the layouts gdb uses.
 *
 * Two layouts: amd64 (66 registers) and i386 (41). Register numbers are the
 * positions in these tables, which are also the order of gdb's 'g' packet and
 * of the target description the stub serves. Values are little-endian,
 * size bytes each.
 *
 * Reads come from a per-vCPU cache filled by KVM_GET_REGS/SREGS/FPU/MSRS the
 * first time a group is needed after the guest ran; writes go to the cache
 * and reach KVM just before the guest runs again (vm_regs_flush), so a stop
 * costs at most one ioctl per group however many packets gdb sends. */
#ifndef VM_REGS_H
#define VM_REGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm_cpu;

enum vm_arch {
    VM_ARCH_I386,
    VM_ARCH_AMD64,
};

enum vm_reg_id {
    VM_REG_RAX, VM_REG_RBX, VM_REG_RCX, VM_REG_RDX, VM_REG_RSI, VM_REG_RDI, VM_REG_RBP,
    VM_REG_RSP, VM_REG_R8, VM_REG_R9, VM_REG_R10, VM_REG_R11, VM_REG_R12, VM_REG_R13,
    VM_REG_R14, VM_REG_R15, VM_REG_RIP, VM_REG_EFLAGS,
    VM_REG_CS, VM_REG_SS, VM_REG_DS, VM_REG_ES, VM_REG_FS, VM_REG_GS,
    VM_REG_FS_BASE, VM_REG_GS_BASE, VM_REG_K_GS_BASE,
    VM_REG_CR0, VM_REG_CR2, VM_REG_CR3, VM_REG_CR4, VM_REG_CR8, VM_REG_EFER,
    VM_REG_ST0, /* ... VM_REG_ST0 + 7 */
    VM_REG_FCTRL = VM_REG_ST0 + 8, VM_REG_FSTAT, VM_REG_FTAG, VM_REG_FISEG, VM_REG_FIOFF,
    VM_REG_FOSEG, VM_REG_FOOFF, VM_REG_FOP,
    VM_REG_XMM0, /* ... VM_REG_XMM0 + 15 */
    VM_REG_MXCSR = VM_REG_XMM0 + 16,
    VM_REG_COUNT
};

struct vm_reg_desc {
    enum vm_reg_id id;
    const char *name;    /* gdb's name */
    uint8_t size;        /* bytes in the 'g' packet */
    const char *type;    /* target-description type */
    const char *group;   /* target-description group, or NULL */
    const char *feature; /* target-description feature */
};

/* The table for arch; *count receives its length. */
const struct vm_reg_desc *vm_regs_layout(enum vm_arch arch, size_t *count);
/* Bytes of a whole 'g' packet for arch. */
size_t vm_regs_size(enum vm_arch arch);

/* Reads register regno of layout arch into out (desc->size bytes). */
int vm_reg_read(struct vm_cpu *cpu, enum vm_arch arch, size_t regno, uint8_t *out);
/* Writes it; -EINVAL for a value the CPU cannot hold (e.g. a selector
 * whose descriptor is not present in protected mode). */
int vm_reg_write(struct vm_cpu *cpu, enum vm_arch arch, size_t regno, const uint8_t *in);

/* Single registers by id, as 64-bit values (st/xmm excluded). */
int vm_reg_get(struct vm_cpu *cpu, enum vm_reg_id id, uint64_t *value);
int vm_reg_set(struct vm_cpu *cpu, enum vm_reg_id id, uint64_t value);

/* The full x87 tag word gdb shows, from FXSAVE's abridged one; st holds
 * ST(0)..ST(7) at 16-byte strides, as in FXSAVE. */
uint16_t vm_fpu_full_tag(uint8_t abridged, uint16_t fsw, const uint8_t *st);
uint8_t vm_fpu_abridged_tag(uint16_t full);

#endif
