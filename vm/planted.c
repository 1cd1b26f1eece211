/* The trap bytes kvmstub plants in guest RAM for breakpoints: which bytes
 * each breakpoint method plants, and RAM as the guest wrote it, with them
 * hidden from reads and kept under writes. Below the memory view (access.c)
 * and the breakpoint table (debug.c), which both need them. */
#include "internal.h"

#include <string.h>

size_t vm_planted_trap(const struct vm *vm, uint8_t out[VM_BP_MAX_TRAP])
{
    switch (vm->debug.bp_method) {
    case VM_BP_HLT:
        out[0] = 0xf4;
        return 1;
    case VM_BP_PORT_IN:
        out[0] = 0xe4; /* in $imm8,%al */
        out[1] = VM_BP_PORT;
        return 2;
    case VM_BP_PAGE_TRAP:
        return 0;
    default:
        out[0] = 0xcc;
        return 1;
    }
}

uint8_t vm_planted_trap_byte(const struct vm *vm)
{
    uint8_t t[VM_BP_MAX_TRAP] = {0};
    vm_planted_trap(vm, t);
    return t[0];
}

bool vm_planted_in_ram(const struct vm_breakpoint *bp)
{
    return bp->gpa != VM_BP_PENDING && bp->len;
}

void vm_planted_hide(const struct vm *vm, uint64_t gpa, uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < vm->debug.nbps; i++) {
        const struct vm_breakpoint *bp = &vm->debug.bps[i];
        for (size_t b = 0; vm_planted_in_ram(bp) && b < bp->len; b++)
            if (bp->gpa + b >= gpa && bp->gpa + b - gpa < len)
                buf[bp->gpa + b - gpa] = bp->orig[b];
    }
}

void vm_planted_write_through(struct vm *vm, uint64_t gpa, const uint8_t *buf, size_t len)
{
    uint8_t t[VM_BP_MAX_TRAP];
    vm_planted_trap(vm, t);
    for (size_t i = 0; i < vm->debug.nbps; i++) {
        struct vm_breakpoint *bp = &vm->debug.bps[i];
        for (size_t b = 0; vm_planted_in_ram(bp) && b < bp->len; b++) {
            if (bp->gpa + b >= gpa && bp->gpa + b - gpa < len) {
                bp->orig[b] = buf[bp->gpa + b - gpa];
                uint8_t *p = vm_mem_ptr(&vm->mem, bp->gpa + b, 1);
                if (p)
                    *p = t[b];
            }
        }
    }
}
