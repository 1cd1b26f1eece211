/* The transport-independent part of a virtio 1.x device (specification
 * sections 2.1-2.4 and 3.1: status, feature bits, reset, notifications). */
#include "virtio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void update_irq(struct vm_virtio *v)
{
    bool level = v->isr != 0;
    if (level == v->irq_level)
        return;
    v->irq_level = level;
    if (v->irq_fn)
        v->irq_fn(v->irq_ctx, level);
}

int vm_virtio_init(struct vm_virtio *v)
{
    if (v->nqueues == 0 || v->nqueues > VM_VIRTIO_MAX_QUEUES || v->queue_max == 0 ||
        v->queue_max > VM_VIRTQ_MAX_SIZE || (v->queue_max & (v->queue_max - 1)) || !v->ops)
        return -EINVAL;
    v->device_features |= VM_VIRTIO_F_VERSION_1 | VM_VIRTIO_F_INDIRECT_DESC;
    int r = pthread_mutex_init(&v->lock, NULL);
    if (r)
        return -r;
    v->irq_level = false;
    v->status = 0;
    v->driver_features = 0;
    v->isr = 0;
    for (unsigned i = 0; i < VM_VIRTIO_MAX_QUEUES; i++)
        vm_virtq_reset(&v->queues[i]);
    return 0;
}

void vm_virtio_destroy(struct vm_virtio *v)
{
    pthread_mutex_destroy(&v->lock);
}

void vm_virtio_set_irq(struct vm_virtio *v, vm_virtio_irq_fn fn, void *ctx)
{
    v->irq_fn = fn;
    v->irq_ctx = ctx;
    if (fn)
        fn(ctx, v->irq_level);
}

void vm_virtio_set_vector(struct vm_virtio *v, vm_virtio_vector_fn fn, void *ctx)
{
    v->vector_fn = fn;
    v->vector_ctx = ctx;
}

void vm_virtio_reset(struct vm_virtio *v)
{
    if (v->ops->reset)
        v->ops->reset(v->dev);
    v->status = 0;
    v->driver_features = 0;
    for (unsigned i = 0; i < VM_VIRTIO_MAX_QUEUES; i++)
        vm_virtq_reset(&v->queues[i]);
    v->isr = 0;
    update_irq(v);
}

static bool features_acceptable(const struct vm_virtio *v)
{
    return (v->driver_features & VM_VIRTIO_F_VERSION_1) &&
           !(v->driver_features & ~v->device_features);
}

void vm_virtio_write_status(struct vm_virtio *v, uint8_t status)
{
    if (status == 0) {
        vm_virtio_reset(v);
        return;
    }
    /* NEEDS_RESET is the device's to set; FEATURES_OK sticks only for a
     * feature set the device can serve, which the driver reads back. */
    uint8_t next = (uint8_t)((status & ~VM_VIRTIO_S_NEEDS_RESET) |
                             (v->status & VM_VIRTIO_S_NEEDS_RESET));
    if ((next & VM_VIRTIO_S_FEATURES_OK) && !(v->status & VM_VIRTIO_S_FEATURES_OK) &&
        !features_acceptable(v))
        next &= (uint8_t)~VM_VIRTIO_S_FEATURES_OK;
    /* DRIVER_OK before FEATURES_OK is a driver bug: the device stays unusable. */
    if ((next & VM_VIRTIO_S_DRIVER_OK) && !(next & VM_VIRTIO_S_FEATURES_OK))
        next &= (uint8_t)~VM_VIRTIO_S_DRIVER_OK;
    v->status = next;
    bool indirect = (v->driver_features & VM_VIRTIO_F_INDIRECT_DESC) != 0;
    for (unsigned i = 0; i < v->nqueues; i++)
        v->queues[i].indirect = indirect;
}

uint32_t vm_virtio_device_features(const struct vm_virtio *v, uint32_t sel)
{
    return sel < 2 ? (uint32_t)(v->device_features >> (32 * sel)) : 0;
}

void vm_virtio_write_driver_features(struct vm_virtio *v, uint32_t sel, uint32_t value)
{
    if (sel >= 2 || !(v->status & VM_VIRTIO_S_DRIVER) || (v->status & VM_VIRTIO_S_FEATURES_OK))
        return;
    uint64_t mask = 0xffffffffull << (32 * sel);
    v->driver_features = (v->driver_features & ~mask) | ((uint64_t)value << (32 * sel));
}

struct vm_virtq *vm_virtio_queue(struct vm_virtio *v, uint32_t index)
{
    return index < v->nqueues ? &v->queues[index] : NULL;
}

void vm_virtio_queue_ready(struct vm_virtio *v, uint32_t index, bool ready)
{
    struct vm_virtq *q = vm_virtio_queue(v, index);
    if (!q)
        return;
    if (!ready) {
        q->ready = false;
        return;
    }
    if (q->ready)
        return;
    q->indirect = (v->driver_features & VM_VIRTIO_F_INDIRECT_DESC) != 0;
    if (q->size > v->queue_max || vm_virtq_start(q, &v->mem)) {
        vm_virtio_fail(v, "a queue enabled with a size the device does not allow, or rings "
                          "misaligned or outside guest RAM");
        return;
    }
    q->ready = true;
}

static bool may_serve(struct vm_virtio *v, uint32_t index)
{
    struct vm_virtq *q = vm_virtio_queue(v, index);
    return q && q->ready && !q->broken && (v->status & VM_VIRTIO_S_DRIVER_OK) &&
           !(v->status & VM_VIRTIO_S_NEEDS_RESET);
}

void vm_virtio_notify(struct vm_virtio *v, uint32_t index)
{
    if (!may_serve(v, index))
        return;
    if (v->kick_fn)
        v->kick_fn(v->kick_ctx, index);
    else
        v->ops->queue_notify(v->dev, index);
}

void vm_virtio_serve(struct vm_virtio *v, uint32_t index)
{
    if (may_serve(v, index))
        v->ops->queue_notify(v->dev, index);
}

void vm_virtio_used(struct vm_virtio *v, uint32_t index)
{
    struct vm_virtq *q = vm_virtio_queue(v, index);
    if (!q || !vm_virtq_should_notify(q))
        return;
    if (v->vector_fn && v->vector_fn(v->vector_ctx, (int)index))
        return;
    v->isr |= VM_VIRTIO_ISR_QUEUE;
    update_irq(v);
}

void vm_virtio_fail(struct vm_virtio *v, const char *why)
{
    if (v->status & VM_VIRTIO_S_NEEDS_RESET)
        return;
    /* A guest driver rarely recovers from this, so a hang that follows is
     * otherwise silent: say it once. */
    if (v->log_fn)
        v->log_fn(v->log_ctx,
                  "%s: the guest's driver broke the virtio rules (%s); the device set "
                  "DEVICE_NEEDS_RESET and serves nothing until the driver resets it",
                  v->name ? v->name : "virtio device", why);
    v->status |= VM_VIRTIO_S_NEEDS_RESET;
    if (v->status & VM_VIRTIO_S_DRIVER_OK) {
        if (v->vector_fn && v->vector_fn(v->vector_ctx, VM_VIRTIO_CONFIG_EVENT))
            return;
        v->isr |= VM_VIRTIO_ISR_CONFIG;
        update_irq(v);
    }
}

void vm_virtio_ack(struct vm_virtio *v, uint32_t bits)
{
    v->isr &= ~bits;
    update_irq(v);
}

uint32_t vm_virtio_isr(struct vm_virtio *v, bool clear)
{
    uint32_t isr = v->isr;
    if (clear) {
        v->isr = 0;
        update_irq(v);
    }
    return isr;
}

static bool config_range(const struct vm_virtio *v, uint32_t offset, unsigned size)
{
    return size <= 8 && offset <= v->config_len && size <= v->config_len - offset;
}

void vm_virtio_config_read(struct vm_virtio *v, uint32_t offset, uint8_t *data, unsigned size)
{
    if (!config_range(v, offset, size)) {
        memset(data, 0, size > 8 ? 8 : size);
        return;
    }
    v->ops->config_read(v->dev, offset, data, size);
}

void vm_virtio_config_write(struct vm_virtio *v, uint32_t offset, const uint8_t *data,
                            unsigned size)
{
    if (config_range(v, offset, size) && v->ops->config_write)
        v->ops->config_write(v->dev, offset, data, size);
}

/* Layout, little-endian: version (1), queue count (1), status (1), 0 (1),
 * isr (4), driver features (8); per queue: size, last_avail, used_idx (2
 * each), ready, broken (1 each), desc, avail, used (8 each). */
#define STATE_VERSION 1u
#define STATE_HEAD 16u
#define STATE_QUEUE 32u

size_t vm_virtio_state_len(const struct vm_virtio *v)
{
    return STATE_HEAD + STATE_QUEUE * (size_t)v->nqueues;
}

int vm_virtio_save(void *dev, uint8_t **buf, size_t *len)
{
    struct vm_virtio *v = dev;
    size_t n = vm_virtio_state_len(v);
    uint8_t *b = calloc(1, n);
    if (!b)
        return -ENOMEM;
    pthread_mutex_lock(&v->lock);
    b[0] = STATE_VERSION;
    b[1] = (uint8_t)v->nqueues;
    b[2] = v->status;
    memcpy(b + 4, &v->isr, 4);
    memcpy(b + 8, &v->driver_features, 8);
    for (unsigned i = 0; i < v->nqueues; i++) {
        const struct vm_virtq *q = &v->queues[i];
        uint8_t *p = b + STATE_HEAD + STATE_QUEUE * i;
        memcpy(p, &q->size, 2);
        memcpy(p + 2, &q->last_avail, 2);
        memcpy(p + 4, &q->used_idx, 2);
        p[6] = q->ready;
        p[7] = q->broken;
        memcpy(p + 8, &q->desc, 8);
        memcpy(p + 16, &q->avail, 8);
        memcpy(p + 24, &q->used, 8);
    }
    pthread_mutex_unlock(&v->lock);
    *buf = b;
    *len = n;
    return 0;
}

int vm_virtio_save_tail(struct vm_virtio *v, const void *tail, size_t tail_len, uint8_t **buf,
                        size_t *len)
{
    uint8_t *inner;
    size_t n;
    int r = vm_virtio_save(v, &inner, &n);
    if (r)
        return r;
    uint8_t *b = realloc(inner, n + tail_len);
    if (!b) {
        free(inner);
        return -ENOMEM;
    }
    memcpy(b + n, tail, tail_len);
    *buf = b;
    *len = n + tail_len;
    return 0;
}

int vm_virtio_load(void *dev, const uint8_t *b, size_t len, bool apply)
{
    struct vm_virtio *v = dev;
    if (len != vm_virtio_state_len(v) || b[0] != STATE_VERSION || b[1] != v->nqueues || b[3])
        return -EINVAL;
    uint64_t features;
    uint32_t isr;
    memcpy(&isr, b + 4, 4);
    memcpy(&features, b + 8, 8);
    /* The driver may write any feature word; only an accepted set (one
     * FEATURES_OK stuck to) must be one the device offers. */
    if (((b[2] & VM_VIRTIO_S_FEATURES_OK) &&
         ((features & ~v->device_features) || !(features & VM_VIRTIO_F_VERSION_1))) ||
        (isr & ~3u))
        return -EINVAL;
    struct vm_virtq qs[VM_VIRTIO_MAX_QUEUES];
    for (unsigned i = 0; i < v->nqueues; i++) {
        const uint8_t *p = b + STATE_HEAD + STATE_QUEUE * i;
        struct vm_virtq *q = &qs[i];
        vm_virtq_reset(q);
        memcpy(&q->size, p, 2);
        memcpy(&q->desc, p + 8, 8);
        memcpy(&q->avail, p + 16, 8);
        memcpy(&q->used, p + 24, 8);
        /* A stopped queue may hold any size the driver wrote; only a ready
         * one must have passed the checks vm_virtio_queue_ready makes. */
        if (p[6] > 1 || p[7] > 1 || (p[6] && q->size > v->queue_max))
            return -EINVAL;
        q->indirect = (features & VM_VIRTIO_F_INDIRECT_DESC) != 0;
        if (p[6] && vm_virtq_start(q, &v->mem))
            return -EINVAL; /* a ready queue's rings must lie in RAM */
        q->ready = p[6];
        q->broken = p[7];
        memcpy(&q->last_avail, p + 2, 2);
        memcpy(&q->used_idx, p + 4, 2);
    }
    if (!apply)
        return 0;
    pthread_mutex_lock(&v->lock);
    v->status = b[2];
    v->driver_features = features;
    for (unsigned i = 0; i < v->nqueues; i++)
        v->queues[i] = qs[i];
    v->isr = isr;
    update_irq(v);
    for (unsigned i = 0; i < v->nqueues; i++)
        vm_virtio_notify(v, i);
    pthread_mutex_unlock(&v->lock);
    return 0;
}
