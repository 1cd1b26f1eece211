/* The four debug registers (DR0-DR3) that hardware breakpoints and
 * watchpoints share: which slot holds what. vm_debug_apply() hands them to
 * KVM; every change bumps the generation so each vCPU applies it again. */
#include "internal.h"

#include <errno.h>

int vm_debugreg_find(const struct vm *vm, uint8_t rw, uint8_t len, uint64_t addr)
{
    const struct vm_debug *d = &vm->debug;
    for (unsigned i = 0; i < VM_NUM_DEBUG_REGS; i++)
        if (d->dr[i].used && d->dr[i].rw == rw && d->dr[i].len == len && d->dr[i].addr == addr)
            return (int)i;
    return -1;
}

int vm_debugreg_alloc(struct vm *vm, uint8_t rw, uint8_t len, uint64_t addr)
{
    struct vm_debug *d = &vm->debug;
    for (unsigned i = 0; i < VM_NUM_DEBUG_REGS; i++) {
        if (!d->dr[i].used) {
            d->dr[i] = (struct vm_hw_slot){.used = true, .rw = rw, .len = len, .addr = addr};
            d->generation++;
            return (int)i;
        }
    }
    return -ENOSPC;
}

void vm_debugreg_free(struct vm *vm, int slot)
{
    if (slot >= 0 && slot < (int)VM_NUM_DEBUG_REGS) {
        vm->debug.dr[slot].used = false;
        vm->debug.generation++;
    }
}

int vm_debugreg_exec_slot(const struct vm *vm, uint64_t addr)
{
    return vm_debugreg_find(vm, 0, 1, addr);
}
