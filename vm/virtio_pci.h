/* vm/virtio_pci.h: the modern virtio-pci transport (virtio 1.x, section
 * 4.1) for any vm/virtio.h device, on a vm/pci.h bus.
 *
 * Contract: PCI ids 1af4:1040+id, revision 1 (modern only, no legacy I/O
 * BAR); one 16 KiB memory BAR holding the common configuration (0x0000),
 * the ISR byte (0x1000; reading it clears it and drops INTx), the device
 * configuration (0x2000) and the notification area (0x3000, queue n at
 * 4 * n), the MSI-X table (0x4000) and its pending bits (0x5000);
 * vendor capabilities point at each. Interrupts: MSI-X (vm/msix.h) with
 * one vector for configuration changes and one per queue, as Linux's
 * virtio_pci asks for them, once the driver enables it; INTx (pin A,
 * the ISR) otherwise. No VIRTIO_PCI_CAP_PCI_CFG window (Linux does not
 * need it). BAR accesses take the device's lock (vm/virtio.h), and so does
 * the header-change hook, which keeps the board told where the
 * notification area decodes (for KVM_IOEVENTFD). */
#ifndef VM_VIRTIO_PCI_H
#define VM_VIRTIO_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msix.h"
#include "pci.h"
#include "virtio.h"

#define VM_VIRTIO_PCI_BAR_SIZE 0x8000u
#define VM_VIRTIO_PCI_VENDOR 0x1af4u
/* Queue n's notification register: BAR0 + NOTIFY + NOTIFY_MULT * n,
 * which Linux writes with a 16-bit store of n. */
#define VM_VIRTIO_PCI_NOTIFY 0x3000u
#define VM_VIRTIO_PCI_NOTIFY_MULT 4u
#define VM_VIRTIO_PCI_NO_VECTOR 0xffffu

/* The notification area now decodes at gpa (0: it does not decode). */
typedef void (*vm_virtio_pci_doorbell_fn)(void *ctx, uint64_t gpa);

struct vm_virtio_pci {
    struct vm_virtio *v;
    struct vm_pci_device pdev;
    struct vm_msix msix;
    uint32_t device_features_sel, driver_features_sel;
    uint16_t queue_sel;
    uint16_t config_vector, queue_vector[VM_VIRTIO_MAX_QUEUES];
    vm_virtio_pci_doorbell_fn doorbell;
    void *doorbell_ctx;
};

/* Builds the PCI header and capabilities for v (class_code as PCI class,
 * e.g. 0x010000 for a disk) and takes v's interrupt line. Then
 * vm_pci_add(pci, &p->pdev, VM_VIRTIO_PCI_BAR_SIZE) puts it on a bus. */
int vm_virtio_pci_init(struct vm_virtio_pci *p, struct vm_virtio *v, uint32_t class_code);
/* Where MSI-X messages go (vm/msix.h), and who hears of the notification
 * area moving (told at once, then after every header change). */
void vm_virtio_pci_set_msi(struct vm_virtio_pci *p, vm_msix_sink_fn fn, void *ctx);
void vm_virtio_pci_set_doorbell(struct vm_virtio_pci *p, vm_virtio_pci_doorbell_fn fn, void *ctx);
/* Power-on of the transport: vectors unassigned, MSI-X table masked. The
 * device (vm_virtio_reset) and the header (vm_pci_reset) are reset by
 * their owners. Call with the device's lock held. */
void vm_virtio_pci_reset(struct vm_virtio_pci *p);

/* Snapshot state (vm/bus.h; dev is the struct vm_virtio_pci): the
 * device's (vm_virtio_save), the common configuration's selectors and
 * vectors, the MSI-X table and pending bits. The PCI header is the bus's
 * (vm_pci_save). */
int vm_virtio_pci_save(void *dev, uint8_t **buf, size_t *len);
int vm_virtio_pci_load(void *dev, const uint8_t *buf, size_t len, bool apply);

#endif
