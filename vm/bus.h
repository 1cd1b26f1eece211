/* vm/bus.h: the port I/O and MMIO buses: which device answers an address.
 *
 * A board registers each device's ranges with its handlers; the vCPU run
 * loop dispatches every PIO and MMIO exit (and every write KVM batched in
 * its coalesced ring) through vm_bus_find(). Addresses no device claims
 * read as all ones and ignore writes; the run loop logs them under --trace.
 *
 * Handlers run on the thread of the vCPU that made the access, and may run
 * on several vCPU threads at once: a device with state protects it itself.
 * A handler returns 0 to let the guest go on, 1 when the access is a stop a
 * debugger must hear of (it has filled *ev), or a negative errno.
 *
 * The table is built before any vCPU runs and never changes afterwards, so
 * lookups take no lock. */
#ifndef VM_BUS_H
#define VM_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm_event;

enum vm_bus_space {
    VM_BUS_PIO,
    VM_BUS_MMIO,
};

struct vm_bus_range {
    enum vm_bus_space space;
    uint64_t base, len;
    const char *name; /* for --trace and monitor output */
    /* offset is from base; size is 1, 2, 4 or 8 (1 only, if bytewise). */
    int (*read)(void *dev, uint64_t offset, uint8_t *data, unsigned size, struct vm_event *ev);
    int (*write)(void *dev, uint64_t offset, const uint8_t *data, unsigned size,
                 struct vm_event *ev);
    void *dev;
    /* An 8-bit device on the ISA bus: a wider access reaches consecutive
     * byte ports, each dispatched on its own, as the hardware does. */
    bool bytewise;
    /* Writes to the first coalesce_len bytes may be batched by KVM's
     * coalesced MMIO/PIO ring (a transmit register: nothing the guest can
     * observe depends on the write having been handled before the next
     * exit). The run loop hands them to write() in order, before the exit
     * that follows them. */
    uint64_t coalesce_len;
    /* Whether the zone is registered with KVM now (vm_coalesce_refresh). */
    bool coalesced;
};

/* A device's state for snapshots (vm/snapshot.h), registered next to its
 * ranges. save fills a malloc'd byte string; load checks one (it may come
 * from a file: untrusted) and, only when apply is set and the check passed,
 * puts it into the device. Called while every vCPU is stopped. */
#define VM_BUS_STATE_NAME 24 /* bytes, with the NUL */

struct vm_bus_state {
    const char *name; /* unique on the bus, 1-23 characters */
    int (*save)(void *dev, uint8_t **buf, size_t *len);
    int (*load)(void *dev, const uint8_t *buf, size_t len, bool apply);
    void *dev;
};

struct vm_bus {
    struct vm_bus_range *ranges;
    size_t n, cap;
    struct vm_bus_state *states;
    size_t nstates;
};

/* -EEXIST when the range overlaps one already there, -EINVAL when empty or
 * wrapping, -ENOMEM. */
int vm_bus_add(struct vm_bus *bus, const struct vm_bus_range *range);
/* The range holding addr in space, or NULL. */
const struct vm_bus_range *vm_bus_find(const struct vm_bus *bus, enum vm_bus_space space,
                                       uint64_t addr);
/* -EEXIST for a name already there, -EINVAL for a bad name. */
int vm_bus_add_state(struct vm_bus *bus, const struct vm_bus_state *state);
void vm_bus_free(struct vm_bus *bus);

#endif
