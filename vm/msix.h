/* vm/msix.h: a PCI device's MSI-X capability, vector table and pending
 * bits (PCI Local Bus Specification 3.0, section 6.8.2), for any
 * vm/pci.h device whose BAR0 holds the table.
 *
 * Contract: vm_msix_init() adds the capability (table and pending bits in
 * BAR0 at the offsets given) before the device goes on the bus. The
 * enable and function-mask bits live in the PCI header (the bus's lock);
 * the table, the pending bits and the counters are the owner's, who
 * serializes every other call (vm/virtio_pci.c: under the device's lock).
 * vm_msix_signal() sends a vector's message through the sink when MSI-X is
 * on and neither the function nor the vector is masked, or marks it
 * pending; unmasking (a table write, or the function mask cleared, which
 * the owner reports with vm_msix_control_changed) sends what is pending,
 * as the specification requires. Table entries start masked. */
#ifndef VM_MSIX_H
#define VM_MSIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pci.h"

#define VM_MSIX_MAX_VECTORS 8u
#define VM_MSIX_ENTRY 16u

/* Delivers one message (the guest's address and data for vector). */
typedef void (*vm_msix_sink_fn)(void *ctx, unsigned vector, uint64_t address, uint32_t data);

struct vm_msix {
    struct vm_pci_device *pdev;
    uint8_t cap;     /* the capability's offset in the header */
    unsigned nvec;
    uint32_t table_off, pba_off; /* in BAR0 */
    uint8_t table[VM_MSIX_MAX_VECTORS][VM_MSIX_ENTRY];
    uint32_t pending;
    uint64_t sent;   /* messages delivered, for `monitor info disks` */
    vm_msix_sink_fn sink;
    void *sink_ctx;
};

/* 0, -EINVAL (nvec 0 or over VM_MSIX_MAX_VECTORS, offsets not 8-aligned)
 * or -ENOSPC (no room for the capability). */
int vm_msix_init(struct vm_msix *x, struct vm_pci_device *d, unsigned nvec, uint32_t table_off,
                 uint32_t pba_off);
void vm_msix_set_sink(struct vm_msix *x, vm_msix_sink_fn fn, void *ctx);
/* The enable bit (MSI-X replaces INTx while it is set). */
bool vm_msix_enabled(const struct vm_msix *x);
/* Sends vector's message or marks it pending; a vector past the table is
 * dropped. */
void vm_msix_signal(struct vm_msix *x, unsigned vector);
/* BAR0 accesses: true when offset falls in the table or the pending bits
 * (then handled: reads fill data, writes to the table take effect, the
 * pending bits are read-only). Entries take 4- and 8-byte accesses. */
bool vm_msix_read(struct vm_msix *x, uint64_t offset, uint8_t *data, unsigned size);
bool vm_msix_write(struct vm_msix *x, uint64_t offset, const uint8_t *data, unsigned size);
/* The guest wrote the header (the enable or function-mask bit may have
 * changed): pending messages now unmasked go out. */
void vm_msix_control_changed(struct vm_msix *x);
/* Power-on: every entry masked and zero, nothing pending. */
void vm_msix_reset(struct vm_msix *x);

/* Snapshot state: the table and the pending bits (the enable bits travel
 * with the PCI header). */
size_t vm_msix_state_len(const struct vm_msix *x);
void vm_msix_save(const struct vm_msix *x, uint8_t *out);
/* -EINVAL for pending bits past the table; applies only when apply. */
int vm_msix_load(struct vm_msix *x, const uint8_t *in, bool apply);

#endif
