/* vm/virtio_pci.h: the modern virtio-pci transport (virtio 1.x, section
 * 4.1) for any vm/virtio.h device, on a vm/pci.h bus.
 *
 * Contract: PCI ids 1af4:1040+id, revision 1 (modern only, no legacy I/O
 * BAR); one 16 KiB memory BAR holding the common configuration (0x0000),
 * the ISR byte (0x1000; reading it clears it and drops INTx), the device
 * configuration (0x2000) and the notification area (0x3000, queue n at
 * 4 * n); vendor capabilities point at each. Interrupts are INTx (pin A):
 * there is no MSI-X capability, so the MSI-X vector registers read
 * VIRTIO_MSI_NO_VECTOR and Linux's virtio_pci falls back to INTx. No
 * VIRTIO_PCI_CAP_PCI_CFG window yet (Linux does not need it). BAR
 * accesses take the device's lock (vm/virtio.h). */
#ifndef VM_VIRTIO_PCI_H
#define VM_VIRTIO_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pci.h"
#include "virtio.h"

#define VM_VIRTIO_PCI_BAR_SIZE 0x4000u
#define VM_VIRTIO_PCI_VENDOR 0x1af4u

struct vm_virtio_pci {
    struct vm_virtio *v;
    struct vm_pci_device pdev;
    uint32_t device_features_sel, driver_features_sel;
    uint16_t queue_sel;
};

/* Builds the PCI header and capabilities for v (class_code as PCI class,
 * e.g. 0x010000 for a disk) and takes v's interrupt line. Then
 * vm_pci_add(pci, &p->pdev, VM_VIRTIO_PCI_BAR_SIZE) puts it on a bus. */
int vm_virtio_pci_init(struct vm_virtio_pci *p, struct vm_virtio *v, uint32_t class_code);

/* Snapshot state (vm/bus.h; dev is the struct vm_virtio_pci): the
 * device's (vm_virtio_save) and the common configuration's selectors.
 * The PCI header is the bus's (vm_pci_save). */
int vm_virtio_pci_save(void *dev, uint8_t **buf, size_t *len);
int vm_virtio_pci_load(void *dev, const uint8_t *buf, size_t len, bool apply);

#endif
