/* vm/snap_vm.h: the VM-wide KVM state a snapshot holds for a board:
 * in-kernel interrupt controllers, PIT and kvm-clock, each only where the
 * board created it (the bare board has none; a PC board has all three).
 *
 * Restore puts the irqchip (PIC master, PIC slave, IOAPIC), then the PIT,
 * then the clock (flags 0: the clock continues from the saved value instead
 * of jumping by the time that passed). The vCPUs' LAPICs are per-vCPU state
 * (vm/snap_cpu.h). */
#ifndef VM_SNAP_VM_H
#define VM_SNAP_VM_H

#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

enum {
    VM_SNAP_VM_IRQCHIP = 1u << 0, /* KVM_CREATE_IRQCHIP was done */
    VM_SNAP_VM_PIT = 1u << 1,     /* KVM_CREATE_PIT2 was done */
    VM_SNAP_VM_CLOCK = 1u << 2,   /* the board uses kvm-clock (KVM_GET/SET_CLOCK) */
    VM_SNAP_VM_ALL_PARTS = (1u << 3) - 1,
};

struct vm_snap_vm {
    unsigned parts;
    struct kvm_irqchip chips[3]; /* KVM_IRQCHIP_PIC_MASTER, _SLAVE, _IOAPIC */
    struct kvm_pit_state2 pit;
    struct kvm_clock_data clock;
};

/* Captures the parts the caller says the VM has. */
int vm_snap_vm_save(int vm_fd, unsigned parts, struct vm_snap_vm *out);
/* -EINVAL when s does not have exactly these parts (err says why). */
int vm_snap_vm_check(unsigned parts, const struct vm_snap_vm *s, char *err, size_t errlen);
int vm_snap_vm_restore(int vm_fd, const struct vm_snap_vm *s, char *err, size_t errlen);

/* Byte strings for snapshot files (kernel structures, KVM's ABI); decode
 * checks the length against the parts announced. */
int vm_snap_vm_encode(const struct vm_snap_vm *s, uint8_t **buf, size_t *len);
int vm_snap_vm_decode(const uint8_t *buf, size_t len, struct vm_snap_vm *out);

#endif
