/* KVM's coalesced zones: the write-only device registers (a UART's
 * transmit register) whose writes KVM may batch in its ring instead of
 * exiting for each, as long as no I/O catch wants to see them one by one.
 * Called when the VM is created and whenever the catches change. */
#include "internal.h"

#include <errno.h>
#include <sys/ioctl.h>

/* An OUT catch covering part of a range the guest may write through the
 * coalesced ring: those writes must exit one by one to be seen. */
static bool caught_writes(const struct vm *vm, const struct vm_bus_range *b)
{
    for (size_t i = 0; i < vm->debug.ncatches; i++) {
        const struct vm_io_catch *c = &vm->debug.catches[i];
        if (b->space == VM_BUS_PIO && (c->dir & VM_IO_OUT) && c->lo < b->base + b->coalesce_len &&
            c->hi >= b->base)
            return true;
    }
    return false;
}

int vm_coalesce_refresh(struct vm *vm)
{
    if (!vm->caps.coalesced_pio || !vm->coalesced_page)
        return 0;
    /* Write-only device registers (a UART's transmit register): guest
     * writes land in a ring instead of exiting one by one; the run loop
     * hands them to their device in order. */
    int err = 0;
    for (size_t i = 0; i < vm->bus.n; i++) {
        struct vm_bus_range *b = &vm->bus.ranges[i];
        bool want = b->coalesce_len && !caught_writes(vm, b);
        if (want == b->coalesced)
            continue;
        struct kvm_coalesced_mmio_zone z = {.addr = b->base, .size = (uint32_t)b->coalesce_len,
                                            .pio = b->space == VM_BUS_PIO};
        if (ioctl(vm->vm_fd, want ? KVM_REGISTER_COALESCED_MMIO : KVM_UNREGISTER_COALESCED_MMIO,
                  &z) < 0) {
            if (!err)
                err = -errno;
            continue;
        }
        b->coalesced = want;
    }
    return err;
}
