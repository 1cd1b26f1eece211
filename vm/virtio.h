/* vm/virtio.h: a virtio 1.x device as its transports see it (virtio-mmio
 * now, virtio-pci later): device status, feature negotiation, the queues,
 * the interrupt status, and what a device model plugs in.
 *
 * Contract: the transport maps its registers onto these calls; the device
 * model (vm/virtio_blk.h) supplies its id, features, config space and a
 * queue_notify that serves requests. Only modern (VERSION_1) drivers are
 * accepted: FEATURES_OK is refused without VIRTIO_F_VERSION_1 or with a
 * feature the device did not offer. A device that finds the guest broke
 * the rules (a bad ring or chain) sets DEVICE_NEEDS_RESET, raises a config
 * interrupt and serves that queue no more until the driver resets it.
 *
 * Locking: every vm_virtio_* call but init/destroy is made with v->lock
 * held (the transport takes it around a register access; queue_notify and
 * reset run under it), so a reset never overlaps a request being served. */
#ifndef VM_VIRTIO_H
#define VM_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtqueue.h"

#define VM_VIRTIO_MAX_QUEUES 2u

#define VM_VIRTIO_S_ACKNOWLEDGE 1u
#define VM_VIRTIO_S_DRIVER 2u
#define VM_VIRTIO_S_DRIVER_OK 4u
#define VM_VIRTIO_S_FEATURES_OK 8u
#define VM_VIRTIO_S_NEEDS_RESET 0x40u
#define VM_VIRTIO_S_FAILED 0x80u

#define VM_VIRTIO_F_INDIRECT_DESC (1ull << 28)
#define VM_VIRTIO_F_VERSION_1 (1ull << 32)

#define VM_VIRTIO_ISR_QUEUE 1u
#define VM_VIRTIO_ISR_CONFIG 2u

struct vm_virtio_ops {
    /* Config space reads and writes, offset and size already checked to
     * lie within config_len. write may be NULL (read-only config). */
    void (*config_read)(void *dev, uint32_t offset, uint8_t *data, unsigned size);
    void (*config_write)(void *dev, uint32_t offset, const uint8_t *data, unsigned size);
    /* The driver notified queue index (ready, DRIVER_OK, not broken). */
    void (*queue_notify)(void *dev, unsigned index);
    /* The driver reset the device: forget every request. May be NULL. */
    void (*reset)(void *dev);
};

/* The interrupt line as the transport wires it: level is whether the
 * interrupt status is non-zero. */
typedef void (*vm_virtio_irq_fn)(void *ctx, bool level);
/* Per-event interrupts (MSI-X): queue is the queue's index, or
 * VM_VIRTIO_CONFIG_EVENT for a configuration change. True when the
 * transport took the event as a message (or dropped it, as a vector of
 * VIRTIO_MSI_NO_VECTOR asks); false leaves it to the interrupt status and
 * the line. */
typedef bool (*vm_virtio_vector_fn)(void *ctx, int queue);
#define VM_VIRTIO_CONFIG_EVENT (-1)

struct vm_virtio {
    pthread_mutex_t lock;
    /* What the device is (set before vm_virtio_init). */
    uint32_t device_id;
    uint64_t device_features; /* VERSION_1 and INDIRECT_DESC are added */
    unsigned nqueues;
    uint16_t queue_max;
    uint32_t config_len;
    const struct vm_virtio_ops *ops;
    void *dev;
    struct vm_virtq_mem mem;
    vm_virtio_irq_fn irq_fn;
    void *irq_ctx;
    vm_virtio_vector_fn vector_fn; /* NULL: every event goes through the ISR */
    void *vector_ctx;
    /* Where a breakage is told (vm/vm.h's vm_log_fn shape; any thread),
     * under the name given; NULL: silent. */
    void (*log_fn)(void *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
    void *log_ctx;
    const char *name;
    /* When set (vm/virtio_worker.h), a notification is handed to another
     * thread instead of being served on the notifying one. */
    void (*kick_fn)(void *ctx, unsigned index);
    void *kick_ctx;
    /* What the driver set. */
    uint8_t status;
    uint64_t driver_features;
    uint32_t isr;
    bool irq_level;
    struct vm_virtq queues[VM_VIRTIO_MAX_QUEUES];
};

/* v's identity fields above are filled; this adds the transport features
 * and resets the rest. 0 or -EINVAL (nqueues or queue_max out of range). */
int vm_virtio_init(struct vm_virtio *v);
void vm_virtio_destroy(struct vm_virtio *v);
void vm_virtio_set_irq(struct vm_virtio *v, vm_virtio_irq_fn fn, void *ctx);
void vm_virtio_set_vector(struct vm_virtio *v, vm_virtio_vector_fn fn, void *ctx);

/* Device reset: status, features, queues and interrupt status cleared. */
void vm_virtio_reset(struct vm_virtio *v);
/* The driver writes the status byte (0 resets). */
void vm_virtio_write_status(struct vm_virtio *v, uint8_t status);
/* Feature words (sel 0: bits 0-31, 1: 32-63, others 0). Driver features
 * are taken only between DRIVER and FEATURES_OK. */
uint32_t vm_virtio_device_features(const struct vm_virtio *v, uint32_t sel);
void vm_virtio_write_driver_features(struct vm_virtio *v, uint32_t sel, uint32_t value);
/* The selected queue, or NULL when index is not one of the device's. */
struct vm_virtq *vm_virtio_queue(struct vm_virtio *v, uint32_t index);
/* The driver makes queue index ready (or not): its placement is checked;
 * a bad one sets DEVICE_NEEDS_RESET. */
void vm_virtio_queue_ready(struct vm_virtio *v, uint32_t index, bool ready);
/* The driver notified queue index: handed to the device when it may run
 * (to kick_fn when one is set). */
void vm_virtio_notify(struct vm_virtio *v, uint32_t index);
/* Serves queue index now, on this thread, when it may run (for the thread
 * kick_fn wakes). */
void vm_virtio_serve(struct vm_virtio *v, uint32_t index);
/* For the device: it pushed used buffers on queue index; raises the
 * queue interrupt when the driver wants one. */
void vm_virtio_used(struct vm_virtio *v, uint32_t index);
/* For the device: the guest broke the rules (why: what it did, for the
 * log); needs a reset. Logged once per breakage through log_fn. */
void vm_virtio_fail(struct vm_virtio *v, const char *why);
/* The driver acknowledges interrupt status bits. */
void vm_virtio_ack(struct vm_virtio *v, uint32_t bits);
/* Reading the interrupt status (PCI's ISR clears it on read; MMIO's not). */
uint32_t vm_virtio_isr(struct vm_virtio *v, bool clear);
/* Config space access checked against config_len; outside it reads 0 and
 * writes are dropped. */
void vm_virtio_config_read(struct vm_virtio *v, uint32_t offset, uint8_t *data, unsigned size);
void vm_virtio_config_write(struct vm_virtio *v, uint32_t offset, const uint8_t *data,
                            unsigned size);

/* Snapshot state (vm/bus.h's vm_bus_state contract; dev is the struct
 * vm_virtio): status, features, interrupt status and each queue's
 * placement and indices. A load checks everything (the bytes may come from
 * a file): features the device does not offer, a queue count that is not
 * the device's, a ready queue whose rings do not fit RAM are refused with
 * -EINVAL. Taking the lock, a save never sees half a request. After a
 * load each ready queue is looked at once, as if notified, so a kick the
 * guest gave just before the save is not lost. */
int vm_virtio_save(void *dev, uint8_t **buf, size_t *len);
/* vm_virtio_save() of v followed by a transport's own tail bytes (its
 * register selectors): one buffer the transport's load splits again. */
int vm_virtio_save_tail(struct vm_virtio *v, const void *tail, size_t tail_len, uint8_t **buf,
                        size_t *len);
int vm_virtio_load(void *dev, const uint8_t *buf, size_t len, bool apply);
/* The bytes vm_virtio_save() gives for v. */
size_t vm_virtio_state_len(const struct vm_virtio *v);

#endif
