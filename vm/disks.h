/* vm/disks.h: the pc board's disks (vm_config.drives): for each, a
 * virtio-blk device (vm/virtio_blk.h) over the image, its transport
 * (PCI slot or MMIO window) with its interrupt wired to the IOAPIC, and a
 * worker thread (vm/virtio_worker.h) that serves its requests.
 *
 * Notifications: KVM_IOEVENTFD on each queue's notification register
 * (PCI: re-registered as the guest moves BAR0 or turns decoding on and
 * off; MMIO: QueueNotify) writes the worker's eventfd inside KVM, so a
 * guest's kick costs no exit to userspace; other widths still exit.
 *
 * Interrupts: PCI drives offer MSI-X, delivered through KVM's GSI routing
 * and an irqfd per vector (vm/msi_routes.h); while the driver has not
 * enabled it, the n-th PCI drive's INTA is IOAPIC pin 16 + n (GSIs 16-23
 * reach only the IOAPIC under KVM's default routing, and no ISA device
 * uses them), a level as the MP table says (level, active low: KVM's
 * IOAPIC asserts a line whatever its polarity). An MMIO drive takes a free
 * ISA IRQ (5, 9, 10, 11, ...), edge-triggered like the board's other ISA
 * lines: a pulse per rise of its interrupt status.
 *
 * Threads: created and destroyed by the VM's owner; the workers serve
 * requests meanwhile. vm_disks_pause() holds every worker still (RAM
 * snapshots, resets) until vm_disks_resume(). */
#ifndef VM_DISKS_H
#define VM_DISKS_H

#include <stdbool.h>
#include <stddef.h>

#include "mptable.h"
#include "vm.h"

struct vm;
struct vm_disks;

#define VM_DISKS_FIRST_PIN 16u
#define VM_DISKS_PCI_WINDOW 0xc0000000ull /* above the most RAM (VM_MAX_RAM) */
#define VM_DISKS_PCI_WINDOW_LEN 0x1000000ull
#define VM_DISKS_MMIO_BASE 0xd0000000ull  /* VM_VIRTIO_MMIO_SIZE apart, in pages */

/* Opens and wires every drive of vm (NULL *out when there are none);
 * refusals in err. Fills linux_pci and linux_words for the command line. */
int vm_disks_create(struct vm *vm, const struct vm_drive *drives, unsigned ndrives,
                    struct vm_disks **out, char *err, size_t errlen);
/* The PCI devices' interrupt routes for the MP table (at most max);
 * returns how many. */
unsigned vm_disks_pci_irqs(const struct vm_disks *d, struct vm_mptable_pci_irq *out,
                           unsigned max);
/* Linux command-line words the disks need (virtio_mmio.device=...), and
 * whether a PCI bus must be probed (no pci=off). */
const char *vm_disks_cmdline(const struct vm_disks *d);
bool vm_disks_have_pci(const struct vm_disks *d);
void vm_disks_pause(struct vm_disks *d);
void vm_disks_resume(struct vm_disks *d);
/* One paragraph per drive for `monitor info disks`: file, transport,
 * how notifications and interrupts travel (KVM_IOEVENTFD or exits;
 * MSI-X through irqfd or KVM_SIGNAL_MSI, INTx or an ISA edge) with their
 * counts, and the requests served. Returns the length snprintf gives. */
int vm_disks_describe(struct vm_disks *d, char *buf, size_t len);
/* Every device back to its power-on state (the driver must set it up
 * again), interrupt lines low. */
void vm_disks_reset(struct vm_disks *d);
/* Workers stopped first, then the devices and files closed. */
void vm_disks_destroy(struct vm_disks *d);

#endif
