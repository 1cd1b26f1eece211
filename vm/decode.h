/* vm/decode.h: which memory an x86 instruction is about to read or write.
 *
 * When an instruction fetched from a page trapped for a read watchpoint runs
 * for one step with the trap lifted, its own reads of the page leave no
 * trace. This decoder predicts them from the instruction bytes and the
 * registers before the step: the ModRM/SIB memory operand (16-, 32- and
 * 64-bit addressing, RIP-relative, segment overrides), string and stack
 * operands, moffs forms, and VEX-encoded SSE/AVX moves. It knows which
 * common opcodes only store, so a store is not taken for a read. Anything
 * it does not recognise yields no access (never a false alarm). */
#ifndef VM_DECODE_H
#define VM_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#define VM_DECODE_MAX_ACCESSES 3

struct vm_access {
    uint64_t addr; /* linear */
    uint32_t size;
    bool read;
    bool write;
};

/* insn holds up to n (<= 15) bytes at rip; regs and sregs are the state
 * before the instruction. Returns the number of accesses filled in. */
size_t vm_decode_access(const uint8_t *insn, size_t n, const struct kvm_regs *regs,
                        const struct kvm_sregs *sregs, struct vm_access *out);

/* Instructions whose result a deterministic re-execution cannot
 * reproduce: RDTSC, RDTSCP, RDPMC, RDRAND, RDSEED. Returns the mnemonic,
 * or NULL (also for bytes it cannot make sense of). long_mode: REX
 * prefixes exist. */
const char *vm_decode_nondeterministic(const uint8_t *insn, size_t n, bool long_mode);

#endif
