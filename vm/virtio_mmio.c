/* virtio-mmio, register layout version 2. Offsets from the virtio 1.x
 * specification, section 4.2.2 (and Linux's uapi virtio_mmio.h). */
#include "virtio_mmio.h"

#include "bus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    REG_MAGIC = 0x000,
    REG_VERSION = 0x004,
    REG_DEVICE_ID = 0x008,
    REG_VENDOR_ID = 0x00c,
    REG_DEVICE_FEATURES = 0x010,
    REG_DEVICE_FEATURES_SEL = 0x014,
    REG_DRIVER_FEATURES = 0x020,
    REG_DRIVER_FEATURES_SEL = 0x024,
    REG_QUEUE_SEL = 0x030,
    REG_QUEUE_NUM_MAX = 0x034,
    REG_QUEUE_NUM = 0x038,
    REG_QUEUE_READY = 0x044,
    REG_QUEUE_NOTIFY = VM_VIRTIO_MMIO_NOTIFY,
    REG_INTERRUPT_STATUS = 0x060,
    REG_INTERRUPT_ACK = 0x064,
    REG_STATUS = 0x070,
    REG_QUEUE_DESC_LOW = 0x080,
    REG_QUEUE_DESC_HIGH = 0x084,
    REG_QUEUE_DRIVER_LOW = 0x090,
    REG_QUEUE_DRIVER_HIGH = 0x094,
    REG_QUEUE_DEVICE_LOW = 0x0a0,
    REG_QUEUE_DEVICE_HIGH = 0x0a4,
    REG_CONFIG_GENERATION = 0x0fc,
    REG_CONFIG = 0x100,
};

#define MAGIC 0x74726976u /* "virt" */
#define VERSION 2u

void vm_virtio_mmio_init(struct vm_virtio_mmio *m, struct vm_virtio *v)
{
    memset(m, 0, sizeof(*m));
    m->v = v;
}

static uint32_t read_reg(struct vm_virtio_mmio *m, uint64_t off)
{
    struct vm_virtio *v = m->v;
    struct vm_virtq *q = vm_virtio_queue(v, m->queue_sel);
    switch (off) {
    case REG_MAGIC:
        return MAGIC;
    case REG_VERSION:
        return VERSION;
    case REG_DEVICE_ID:
        return v->device_id;
    case REG_VENDOR_ID:
        return VM_VIRTIO_MMIO_VENDOR;
    case REG_DEVICE_FEATURES:
        return vm_virtio_device_features(v, m->device_features_sel);
    case REG_QUEUE_NUM_MAX:
        return q ? v->queue_max : 0;
    case REG_QUEUE_READY:
        return q && q->ready;
    case REG_INTERRUPT_STATUS:
        return vm_virtio_isr(v, false);
    case REG_STATUS:
        return v->status;
    case REG_CONFIG_GENERATION:
        return 0; /* the config space never changes while the guest runs */
    default:
        return 0; /* write-only and reserved registers */
    }
}

static void set_half(uint64_t *addr, bool high, uint32_t value)
{
    if (high)
        *addr = (*addr & 0xffffffffull) | (uint64_t)value << 32;
    else
        *addr = (*addr & ~0xffffffffull) | value;
}

static void write_reg(struct vm_virtio_mmio *m, uint64_t off, uint32_t value)
{
    struct vm_virtio *v = m->v;
    struct vm_virtq *q = vm_virtio_queue(v, m->queue_sel);
    /* Placement is the driver's only while the queue is stopped. */
    struct vm_virtq *stopped = q && !q->ready ? q : NULL;
    switch (off) {
    case REG_DEVICE_FEATURES_SEL:
        m->device_features_sel = value;
        break;
    case REG_DRIVER_FEATURES:
        vm_virtio_write_driver_features(v, m->driver_features_sel, value);
        break;
    case REG_DRIVER_FEATURES_SEL:
        m->driver_features_sel = value;
        break;
    case REG_QUEUE_SEL:
        m->queue_sel = value;
        break;
    case REG_QUEUE_NUM:
        if (stopped)
            stopped->size = value > 0xffff ? 0 : (uint16_t)value; /* checked when ready */
        break;
    case REG_QUEUE_READY:
        vm_virtio_queue_ready(v, m->queue_sel, value & 1);
        break;
    case REG_QUEUE_NOTIFY:
        vm_virtio_notify(v, value);
        break;
    case REG_INTERRUPT_ACK:
        vm_virtio_ack(v, value);
        break;
    case REG_STATUS:
        vm_virtio_write_status(v, (uint8_t)value);
        break;
    case REG_QUEUE_DESC_LOW:
    case REG_QUEUE_DESC_HIGH:
        if (stopped)
            set_half(&stopped->desc, off == REG_QUEUE_DESC_HIGH, value);
        break;
    case REG_QUEUE_DRIVER_LOW:
    case REG_QUEUE_DRIVER_HIGH:
        if (stopped)
            set_half(&stopped->avail, off == REG_QUEUE_DRIVER_HIGH, value);
        break;
    case REG_QUEUE_DEVICE_LOW:
    case REG_QUEUE_DEVICE_HIGH:
        if (stopped)
            set_half(&stopped->used, off == REG_QUEUE_DEVICE_HIGH, value);
        break;
    default:
        break; /* read-only and reserved registers */
    }
}

static bool access_ok(uint64_t offset, unsigned size)
{
    return (size == 1 || size == 2 || size == 4 || size == 8) && offset < VM_VIRTIO_MMIO_SIZE &&
           size <= VM_VIRTIO_MMIO_SIZE - offset;
}

int vm_virtio_mmio_read(void *dev, uint64_t offset, uint8_t *data, unsigned size,
                        struct vm_event *ev)
{
    (void)ev;
    struct vm_virtio_mmio *m = dev;
    if (!access_ok(offset, size)) {
        memset(data, 0, size > 8 ? 8 : size);
        return 0;
    }
    memset(data, 0, size);
    pthread_mutex_lock(&m->v->lock);
    if (offset >= REG_CONFIG) {
        vm_virtio_config_read(m->v, (uint32_t)(offset - REG_CONFIG), data, size);
    } else if (size == 4 && !(offset & 3)) {
        uint32_t value = read_reg(m, offset);
        memcpy(data, &value, 4);
    }
    pthread_mutex_unlock(&m->v->lock);
    return 0;
}

int vm_virtio_mmio_write(void *dev, uint64_t offset, const uint8_t *data, unsigned size,
                         struct vm_event *ev)
{
    (void)ev;
    struct vm_virtio_mmio *m = dev;
    if (!access_ok(offset, size))
        return 0;
    pthread_mutex_lock(&m->v->lock);
    if (offset >= REG_CONFIG) {
        vm_virtio_config_write(m->v, (uint32_t)(offset - REG_CONFIG), data, size);
    } else if (size == 4 && !(offset & 3)) {
        uint32_t value;
        memcpy(&value, data, 4);
        write_reg(m, offset, value);
    }
    pthread_mutex_unlock(&m->v->lock);
    return 0;
}

int vm_virtio_mmio_attach(struct vm_bus *bus, struct vm_virtio_mmio *m, uint64_t base,
                          const char *name)
{
    struct vm_bus_range range = {.space = VM_BUS_MMIO, .base = base,
                                 .len = VM_VIRTIO_MMIO_SIZE, .name = name,
                                 .read = vm_virtio_mmio_read, .write = vm_virtio_mmio_write,
                                 .dev = m};
    int r = vm_bus_add(bus, &range);
    if (!r)
        r = vm_bus_add_state(bus, &(struct vm_bus_state){.name = name,
                                                         .save = vm_virtio_mmio_save,
                                                         .load = vm_virtio_mmio_load,
                                                         .dev = m});
    return r;
}

#define SELECTORS 12u

int vm_virtio_mmio_save(void *dev, uint8_t **buf, size_t *len)
{
    struct vm_virtio_mmio *m = dev;
    const uint32_t sel[3] = {m->device_features_sel, m->driver_features_sel, m->queue_sel};
    return vm_virtio_save_tail(m->v, sel, SELECTORS, buf, len);
}

int vm_virtio_mmio_load(void *dev, const uint8_t *buf, size_t len, bool apply)
{
    struct vm_virtio_mmio *m = dev;
    if (len < SELECTORS)
        return -EINVAL;
    int r = vm_virtio_load(m->v, buf, len - SELECTORS, apply);
    if (r || !apply)
        return r;
    uint32_t sel[3];
    memcpy(sel, buf + len - SELECTORS, SELECTORS);
    m->device_features_sel = sel[0];
    m->driver_features_sel = sel[1];
    m->queue_sel = sel[2];
    return 0;
}

int vm_virtio_mmio_cmdline(uint64_t base, unsigned irq, char *buf, size_t len)
{
    return snprintf(buf, len, "virtio_mmio.device=%u@0x%llx:%u", VM_VIRTIO_MMIO_SIZE,
                    (unsigned long long)base, irq);
}
