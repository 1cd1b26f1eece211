/* vm/disasm.h: one x86 instruction as text, in AT&T syntax as gdb and
 * objdump print it, for messages about an instruction the host's KVM
 * could not emulate (`movq %rcx,%xmm3`). It knows the common integer
 * instructions and the SSE moves and logic instructions; for anything else
 * it says so, and the caller shows the bytes. Every byte is the guest's:
 * nothing is read past n. */
#ifndef VM_DISASM_H
#define VM_DISASM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* bits: 16, 32 or 64, the code segment's default. Returns true with the
 * text in out (always terminated when cap > 0), false for an instruction
 * it does not know or bytes that end too soon. */
bool vm_disasm(const uint8_t *insn, size_t n, unsigned bits, char *out, size_t cap);

#endif
