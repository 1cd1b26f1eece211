/* vm/virtio_mmio.h: the virtio-mmio transport, register layout version 2
 * (virtio 1.x, section 4.2.2; no legacy layout), for any vm/virtio.h
 * device.
 *
 * A window of VM_VIRTIO_MMIO_SIZE bytes: registers below 0x100, 32-bit
 * accesses only (others read 0 and are dropped), the device's config space
 * from 0x100 in 1, 2, 4 or 8-byte accesses. Queue placement and size are
 * taken only while the queue is not ready; QueueReady checks them. The
 * interrupt is a level: high while InterruptStatus is not 0.
 *
 * Linux finds such a device from its command line (needs
 * CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES): vm_virtio_mmio_cmdline() writes the
 * word. Handlers take the device's lock (vm/virtio.h), any vCPU thread. */
#ifndef VM_VIRTIO_MMIO_H
#define VM_VIRTIO_MMIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio.h"

struct vm_bus;
struct vm_event;

#define VM_VIRTIO_MMIO_SIZE 0x200u
#define VM_VIRTIO_MMIO_VENDOR 0x4b56534bu /* "KSVK" */
#define VM_VIRTIO_MMIO_NOTIFY 0x050u /* QueueNotify: the queue's index, 32 bits */

struct vm_virtio_mmio {
    struct vm_virtio *v;
    uint32_t device_features_sel, driver_features_sel, queue_sel;
};

void vm_virtio_mmio_init(struct vm_virtio_mmio *m, struct vm_virtio *v);
/* Bus handlers: offset within the window, size 1, 2, 4 or 8. */
int vm_virtio_mmio_read(void *dev, uint64_t offset, uint8_t *data, unsigned size,
                        struct vm_event *ev);
int vm_virtio_mmio_write(void *dev, uint64_t offset, const uint8_t *data, unsigned size,
                         struct vm_event *ev);
/* Registers the window at base on the MMIO bus, and its snapshot state
 * under the same name (1-23 characters, must outlive the bus). */
int vm_virtio_mmio_attach(struct vm_bus *bus, struct vm_virtio_mmio *m, uint64_t base,
                          const char *name);
/* Snapshot state (vm/bus.h; dev is the struct vm_virtio_mmio): the
 * device's (vm_virtio_save) and the selector registers. */
int vm_virtio_mmio_save(void *dev, uint8_t **buf, size_t *len);
int vm_virtio_mmio_load(void *dev, const uint8_t *buf, size_t len, bool apply);
/* "virtio_mmio.device=512@0xBASE:IRQ" into buf; the length snprintf gives. */
int vm_virtio_mmio_cmdline(uint64_t base, unsigned irq, char *buf, size_t len);

#endif
