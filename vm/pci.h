/* vm/pci.h: a minimal PCI bus 0 as a PC without firmware presents it: a
 * host bridge at 00:00.0 behind configuration mechanism 1 (ports
 * 0xcf8-0xcff), single-function devices in further slots, and one MMIO
 * window where their memory BARs decode.
 *
 * Contract: the board adds devices before any vCPU runs; each has a
 * 256-byte type-0 configuration header with a capability list, and at most
 * one BAR (BAR0, 32-bit memory, non-prefetchable, a power of two of at
 * least 4 KiB) which vm_pci_add() places in the window as firmware would;
 * Linux keeps such assignments. The guest may resize-probe and move BAR0
 * within the window; accesses reach the device only while the command
 * register's memory bit is set. Config writes only change the bits a real
 * device lets change (command, interrupt line, BAR address bits).
 * Nonexistent devices, functions other than 0 and buses other than 0
 * read as all ones. INTx is a level the device raises and the board routes
 * (slot n, pin INTA). Handlers may run on any vCPU thread: the bus has its
 * own lock, and calls a device's BAR handlers outside it. */
#ifndef VM_PCI_H
#define VM_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm_bus;
struct vm_event;

#define VM_PCI_SLOTS 32u
#define VM_PCI_CONFIG_PORT 0xcf8u
#define VM_PCI_CAP_VENDOR 0x09u

typedef void (*vm_pci_intx_fn)(void *ctx, unsigned slot, bool level);

struct vm_pci_device {
    uint8_t config[256];
    uint8_t wmask[256];  /* bits the guest may change */
    uint32_t bar_size;   /* 0: no BAR0 */
    uint8_t cap_end;     /* where the next capability goes */
    unsigned slot;
    bool intx_level; /* what the device drives */
    bool intx_out;   /* what the board sees (after INTx-disable) */
    struct vm_pci *pci;
    /* BAR0 accesses, offset within the BAR, size 1, 2, 4 or 8. */
    void (*bar_read)(void *dev, uint64_t offset, uint8_t *data, unsigned size);
    void (*bar_write)(void *dev, uint64_t offset, const uint8_t *data, unsigned size);
    /* After the guest wrote this header, a snapshot load or a reset: the
     * BAR, the decode bits or a capability may have changed. Called
     * outside the bus lock, on the thread that made the change. May be
     * NULL. */
    void (*config_changed)(void *dev);
    void *dev;
    uint8_t power_on[256]; /* the header vm_pci_add() placed */
};

struct vm_pci {
    pthread_mutex_t lock;
    uint32_t address; /* the 0xcf8 register */
    uint64_t window, window_len, window_next;
    struct vm_pci_device bridge;
    struct vm_pci_device *slots[VM_PCI_SLOTS];
    vm_pci_intx_fn intx_fn;
    void *intx_ctx;
};

/* A bus with its host bridge; BARs go in [window, window + len). */
int vm_pci_init(struct vm_pci *pci, uint64_t window, uint64_t window_len);
void vm_pci_destroy(struct vm_pci *pci);
void vm_pci_set_intx(struct vm_pci *pci, vm_pci_intx_fn fn, void *ctx);
/* Registers the config ports and the window on bus. */
int vm_pci_attach(struct vm_pci *pci, struct vm_bus *bus);

/* A device header: ids, class (24 bits), revision; INTA; no BAR yet. */
void vm_pci_device_init(struct vm_pci_device *d, uint16_t vendor, uint16_t device,
                        uint32_t class_code, uint8_t revision, uint16_t subsys_vendor,
                        uint16_t subsys_id);
/* Appends a capability (id, then len - 2 bytes of body) to the list. 0 or
 * -ENOSPC. */
int vm_pci_add_cap(struct vm_pci_device *d, uint8_t id, const uint8_t *body, uint8_t len);
/* Puts d in the next free slot with BAR0 of bar_size bytes (0: none)
 * placed in the window. 0, -ENOSPC or -EINVAL. */
int vm_pci_add(struct vm_pci *pci, struct vm_pci_device *d, uint32_t bar_size);
/* The device's INTx level (kept in the status register, gated by the
 * command register's INTx-disable bit). */
void vm_pci_intx(struct vm_pci_device *d, bool level);
/* BAR0's guest-physical address now. */
uint32_t vm_pci_bar0(const struct vm_pci_device *d);
/* Whether BAR0 decodes now (memory bit set), and where: 0 when not. */
uint32_t vm_pci_bar0_decoded(struct vm_pci_device *d);
/* A 16-bit header field, read under the bus lock. */
uint16_t vm_pci_config_read16(struct vm_pci_device *d, unsigned reg);
/* Every device's header back to what vm_pci_add() placed (power-on),
 * INTx low; config_changed is called for each. */
void vm_pci_reset(struct vm_pci *pci);

/* Snapshot state (vm/bus.h; dev is the struct vm_pci), registered by
 * vm_pci_attach as "pci": the address register and each device's header.
 * A load refuses a header whose read-only bits differ (another device, or
 * a file from another configuration). */
int vm_pci_save(void *dev, uint8_t **buf, size_t *len);
int vm_pci_load(void *dev, const uint8_t *buf, size_t len, bool apply);

/* Bus handlers (also for tests): config ports from 0xcf8, the window. */
int vm_pci_config_read(void *pci, uint64_t offset, uint8_t *data, unsigned size,
                       struct vm_event *ev);
int vm_pci_config_write(void *pci, uint64_t offset, const uint8_t *data, unsigned size,
                        struct vm_event *ev);
int vm_pci_window_read(void *pci, uint64_t offset, uint8_t *data, unsigned size,
                       struct vm_event *ev);
int vm_pci_window_write(void *pci, uint64_t offset, const uint8_t *data, unsigned size,
                        struct vm_event *ev);

#endif
