/* vm/msi_routes.h: MSI messages from device models into KVM's in-kernel
 * interrupt controller, each message source with a GSI route of its own
 * and an irqfd, so that raising it is one eventfd write from any thread.
 *
 * Contract: the VM has KVM's irqchip (KVM_CREATE_IRQCHIP). Setting any
 * route replaces KVM's whole table, so the table kept here starts with
 * KVM's default routes (GSIs 0-15 on the PICs and the IOAPIC, 16-23 on the
 * IOAPIC: arch/x86/kvm/irq_comm.c) and adds GSI 24 + source for each
 * source that has sent a message; a source whose address or data changed
 * gets its route rewritten before the message goes out. Without
 * KVM_CAP_IRQ_ROUTING or KVM_CAP_IRQFD, or if setting them fails, messages
 * go through KVM_SIGNAL_MSI instead. Every call but create and destroy may
 * come from any thread (an internal lock). */
#ifndef VM_MSI_ROUTES_H
#define VM_MSI_ROUTES_H

#include <stdint.h>

struct vm_msi_routes;

#define VM_MSI_ROUTES_FIRST_GSI 24u

/* 0, -ENOMEM, or -ENOTSUP when KVM can deliver no MSI at all. */
int vm_msi_routes_create(int kvm_fd, int vm_fd, unsigned nsources, struct vm_msi_routes **out);
void vm_msi_routes_destroy(struct vm_msi_routes *r);
/* 0, or a negative errno when KVM refused the message. */
int vm_msi_routes_send(struct vm_msi_routes *r, unsigned source, uint64_t address, uint32_t data);
/* What carries the messages now: "irqfd on KVM's GSI routing" or
 * "KVM_SIGNAL_MSI". */
const char *vm_msi_routes_path(struct vm_msi_routes *r);

#endif
