/* Modern virtio-pci. The capability format and the common configuration
 * layout (struct virtio_pci_common_cfg) are from the virtio 1.x
 * specification, section 4.1.4; Linux's virtio_pci_modern_dev.c reads
 * 64-bit fields as two 32-bit halves, which any access width here allows. */
#include "virtio_pci.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
    COMMON = 0x0000,
    ISR = 0x1000,
    DEVICE = 0x2000,
    NOTIFY = VM_VIRTIO_PCI_NOTIFY,
    MSIX_TABLE = 0x4000,
    MSIX_PBA = 0x5000,
    COMMON_LEN = 0x40,
    DEVICE_LEN = 0x1000,
    NOTIFY_MULT = VM_VIRTIO_PCI_NOTIFY_MULT,
};

enum { CAP_COMMON = 1, CAP_NOTIFY = 2, CAP_ISR = 3, CAP_DEVICE = 4 };

/* struct virtio_pci_common_cfg */
enum {
    C_DFSELECT = 0x00,
    C_DF = 0x04,
    C_GFSELECT = 0x08,
    C_GF = 0x0c,
    C_MSIX = 0x10,
    C_NUMQ = 0x12,
    C_STATUS = 0x14,
    C_GENERATION = 0x15,
    C_QSELECT = 0x16,
    C_QSIZE = 0x18,
    C_QMSIX = 0x1a,
    C_QENABLE = 0x1c,
    C_QNOTIFY_OFF = 0x1e,
    C_QDESC = 0x20,
    C_QDRIVER = 0x28,
    C_QDEVICE = 0x30,
    C_QNOTIFY_DATA = 0x38,
};

#define NO_VECTOR VM_VIRTIO_PCI_NO_VECTOR

static void put16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static void common_image(struct vm_virtio_pci *p, uint8_t img[COMMON_LEN])
{
    struct vm_virtio *v = p->v;
    struct vm_virtq *q = vm_virtio_queue(v, p->queue_sel);
    memset(img, 0, COMMON_LEN);
    put32(img + C_DFSELECT, p->device_features_sel);
    put32(img + C_DF, vm_virtio_device_features(v, p->device_features_sel));
    put32(img + C_GFSELECT, p->driver_features_sel);
    if (p->driver_features_sel < 2)
        put32(img + C_GF, (uint32_t)(v->driver_features >> (32 * p->driver_features_sel)));
    put16(img + C_MSIX, p->config_vector);
    put16(img + C_NUMQ, (uint16_t)v->nqueues);
    img[C_STATUS] = v->status;
    img[C_GENERATION] = 0;
    put16(img + C_QSELECT, p->queue_sel);
    if (q) {
        put16(img + C_QMSIX, p->queue_vector[p->queue_sel]);
        /* Until the driver picks a size the register offers the largest. */
        put16(img + C_QSIZE, q->size ? q->size : v->queue_max);
        put16(img + C_QENABLE, q->ready);
        put16(img + C_QNOTIFY_OFF, p->queue_sel);
        memcpy(img + C_QDESC, &q->desc, 8);
        memcpy(img + C_QDRIVER, &q->avail, 8);
        memcpy(img + C_QDEVICE, &q->used, 8);
        put16(img + C_QNOTIFY_DATA, p->queue_sel);
    } else {
        put16(img + C_QMSIX, NO_VECTOR);
    }
}

static bool touches(uint64_t off, unsigned size, unsigned field, unsigned len)
{
    return off < field + len && field < off + size;
}

/* A vector the table does not have reads back as NO_VECTOR, which is how
 * the driver learns the mapping failed (virtio 1.x, 4.1.5.1.2). */
static uint16_t valid_vector(const struct vm_virtio_pci *p, uint16_t vector)
{
    return vector < p->msix.nvec ? vector : NO_VECTOR;
}

void vm_virtio_pci_reset(struct vm_virtio_pci *p)
{
    p->config_vector = NO_VECTOR;
    for (unsigned i = 0; i < VM_VIRTIO_MAX_QUEUES; i++)
        p->queue_vector[i] = NO_VECTOR;
    p->queue_sel = 0;
    vm_msix_reset(&p->msix);
}

static void common_write(struct vm_virtio_pci *p, uint64_t off, const uint8_t *data,
                         unsigned size)
{
    struct vm_virtio *v = p->v;
    uint8_t img[COMMON_LEN];
    common_image(p, img);
    memcpy(img + off, data, size);
    uint32_t u32;
    uint16_t u16;
    if (touches(off, size, C_DFSELECT, 4))
        memcpy(&p->device_features_sel, img + C_DFSELECT, 4);
    if (touches(off, size, C_GFSELECT, 4))
        memcpy(&p->driver_features_sel, img + C_GFSELECT, 4);
    if (touches(off, size, C_GF, 4)) {
        memcpy(&u32, img + C_GF, 4);
        vm_virtio_write_driver_features(v, p->driver_features_sel, u32);
    }
    if (touches(off, size, C_MSIX, 2)) {
        memcpy(&u16, img + C_MSIX, 2);
        p->config_vector = valid_vector(p, u16);
    }
    if (touches(off, size, C_STATUS, 1)) {
        vm_virtio_write_status(v, img[C_STATUS]);
        if (img[C_STATUS] == 0) {
            /* A device reset unassigns the vectors; the table is the PCI
             * function's and stays. */
            p->queue_sel = 0;
            p->config_vector = NO_VECTOR;
            for (unsigned i = 0; i < VM_VIRTIO_MAX_QUEUES; i++)
                p->queue_vector[i] = NO_VECTOR;
        }
    }
    if (touches(off, size, C_QSELECT, 2))
        memcpy(&p->queue_sel, img + C_QSELECT, 2);
    struct vm_virtq *q = vm_virtio_queue(v, p->queue_sel);
    if (!q)
        return;
    /* Placement is the driver's only while the queue is not enabled. */
    if (!q->ready) {
        if (touches(off, size, C_QSIZE, 2))
            memcpy(&q->size, img + C_QSIZE, 2);
        if (touches(off, size, C_QDESC, 8))
            memcpy(&q->desc, img + C_QDESC, 8);
        if (touches(off, size, C_QDRIVER, 8))
            memcpy(&q->avail, img + C_QDRIVER, 8);
        if (touches(off, size, C_QDEVICE, 8))
            memcpy(&q->used, img + C_QDEVICE, 8);
    }
    if (touches(off, size, C_QMSIX, 2)) {
        memcpy(&u16, img + C_QMSIX, 2);
        p->queue_vector[p->queue_sel] = valid_vector(p, u16);
    }
    if (touches(off, size, C_QENABLE, 2)) {
        memcpy(&u16, img + C_QENABLE, 2);
        if (u16 == 1) /* the spec lets the driver write 1 only */
            vm_virtio_queue_ready(v, p->queue_sel, true);
    }
}

static void bar_read(void *dev, uint64_t off, uint8_t *data, unsigned size)
{
    struct vm_virtio_pci *p = dev;
    unsigned n = size > 8 ? 8 : size;
    memset(data, 0, n);
    pthread_mutex_lock(&p->v->lock);
    if (vm_msix_read(&p->msix, off, data, n)) {
        /* the table or the pending bits */
    } else if (off < COMMON + COMMON_LEN && n <= COMMON_LEN - off) {
        uint8_t img[COMMON_LEN];
        common_image(p, img);
        memcpy(data, img + off, n);
    } else if (off == ISR) {
        data[0] = (uint8_t)vm_virtio_isr(p->v, true);
    } else if (off >= DEVICE && off < DEVICE + DEVICE_LEN) {
        vm_virtio_config_read(p->v, (uint32_t)(off - DEVICE), data, n);
    }
    pthread_mutex_unlock(&p->v->lock);
}

static void bar_write(void *dev, uint64_t off, const uint8_t *data, unsigned size)
{
    struct vm_virtio_pci *p = dev;
    unsigned n = size > 8 ? 8 : size;
    pthread_mutex_lock(&p->v->lock);
    if (vm_msix_write(&p->msix, off, data, n))
        ; /* the table or the pending bits */
    else if (off < COMMON + COMMON_LEN && n <= COMMON_LEN - off)
        common_write(p, off, data, n);
    else if (off >= DEVICE && off < DEVICE + DEVICE_LEN)
        vm_virtio_config_write(p->v, (uint32_t)(off - DEVICE), data, n);
    else if (off >= NOTIFY && off < NOTIFY + NOTIFY_MULT * p->v->nqueues)
        vm_virtio_notify(p->v, (uint32_t)((off - NOTIFY) / NOTIFY_MULT));
    pthread_mutex_unlock(&p->v->lock);
}

/* INTx carries the ISR only while MSI-X is off (PCI 3.0, 6.8.2: a
 * function with MSI-X enabled does not use INTx). */
static void on_irq(void *ctx, bool level)
{
    struct vm_virtio_pci *p = ctx;
    vm_pci_intx(&p->pdev, level && !vm_msix_enabled(&p->msix));
}

/* Under the device's lock. */
static bool on_event(void *ctx, int queue)
{
    struct vm_virtio_pci *p = ctx;
    if (!vm_msix_enabled(&p->msix))
        return false;
    uint16_t vector = queue < 0 ? p->config_vector : p->queue_vector[queue];
    if (vector != NO_VECTOR)
        vm_msix_signal(&p->msix, vector);
    return true;
}

static void tell_doorbell(struct vm_virtio_pci *p)
{
    if (!p->doorbell)
        return;
    uint32_t bar = p->pdev.pci ? vm_pci_bar0_decoded(&p->pdev) : 0;
    p->doorbell(p->doorbell_ctx, bar ? (uint64_t)bar + NOTIFY : 0);
}

/* The header changed: the enable or mask bits of MSI-X, the BAR, the
 * memory bit. */
static void on_config_changed(void *dev)
{
    struct vm_virtio_pci *p = dev;
    pthread_mutex_lock(&p->v->lock);
    vm_msix_control_changed(&p->msix);
    on_irq(p, p->v->irq_level);
    tell_doorbell(p);
    pthread_mutex_unlock(&p->v->lock);
}

void vm_virtio_pci_set_msi(struct vm_virtio_pci *p, vm_msix_sink_fn fn, void *ctx)
{
    pthread_mutex_lock(&p->v->lock);
    vm_msix_set_sink(&p->msix, fn, ctx);
    pthread_mutex_unlock(&p->v->lock);
}

void vm_virtio_pci_set_doorbell(struct vm_virtio_pci *p, vm_virtio_pci_doorbell_fn fn, void *ctx)
{
    pthread_mutex_lock(&p->v->lock);
    p->doorbell = fn;
    p->doorbell_ctx = ctx;
    tell_doorbell(p);
    pthread_mutex_unlock(&p->v->lock);
}

static int add_cap(struct vm_virtio_pci *p, uint8_t type, uint32_t offset, uint32_t length,
                   bool notify)
{
    /* struct virtio_pci_cap after id and next: cap_len, cfg_type, bar, id,
     * padding[2], offset, length; the notify one adds the multiplier. */
    uint8_t body[18] = {0};
    uint8_t len = notify ? 20 : 16;
    body[0] = len;
    body[1] = type;
    body[2] = 0; /* BAR0 */
    put32(body + 6, offset);
    put32(body + 10, length);
    if (notify)
        put32(body + 14, NOTIFY_MULT);
    return vm_pci_add_cap(&p->pdev, VM_PCI_CAP_VENDOR, body, len);
}

int vm_virtio_pci_init(struct vm_virtio_pci *p, struct vm_virtio *v, uint32_t class_code)
{
    memset(p, 0, sizeof(*p));
    p->v = v;
    if (v->device_id > 0xffff - 0x1040)
        return -EINVAL;
    vm_pci_device_init(&p->pdev, VM_VIRTIO_PCI_VENDOR, (uint16_t)(0x1040 + v->device_id),
                       class_code, 1, VM_VIRTIO_PCI_VENDOR, (uint16_t)v->device_id);
    p->pdev.bar_read = bar_read;
    p->pdev.bar_write = bar_write;
    p->pdev.config_changed = on_config_changed;
    p->pdev.dev = p;
    int r = add_cap(p, CAP_COMMON, COMMON, COMMON_LEN, false);
    if (!r)
        r = add_cap(p, CAP_NOTIFY, NOTIFY, NOTIFY_MULT * v->nqueues, true);
    if (!r)
        r = add_cap(p, CAP_ISR, ISR, 1, false);
    if (!r)
        r = add_cap(p, CAP_DEVICE, DEVICE, v->config_len ? v->config_len : 1, false);
    /* One vector for configuration changes and one per queue: the first
     * layout Linux's vp_find_vqs tries. */
    if (!r)
        r = vm_msix_init(&p->msix, &p->pdev, v->nqueues + 1, MSIX_TABLE, MSIX_PBA);
    if (r)
        return r;
    vm_virtio_pci_reset(p);
    vm_virtio_set_irq(v, on_irq, p);
    vm_virtio_set_vector(v, on_event, p);
    return 0;
}

/* Selectors (10 bytes), the config vector and each queue's (2 each), then
 * the MSI-X state. */
#define SELECTORS 10u
#define VECTORS (2u + 2u * VM_VIRTIO_MAX_QUEUES)

static size_t tail_len(const struct vm_virtio_pci *p)
{
    return SELECTORS + VECTORS + vm_msix_state_len(&p->msix);
}

int vm_virtio_pci_save(void *dev, uint8_t **buf, size_t *len)
{
    struct vm_virtio_pci *p = dev;
    uint8_t tail[SELECTORS + VECTORS + VM_MSIX_MAX_VECTORS * VM_MSIX_ENTRY + 4];
    pthread_mutex_lock(&p->v->lock);
    memcpy(tail, &p->device_features_sel, 4);
    memcpy(tail + 4, &p->driver_features_sel, 4);
    memcpy(tail + 8, &p->queue_sel, 2);
    memcpy(tail + SELECTORS, &p->config_vector, 2);
    memcpy(tail + SELECTORS + 2, p->queue_vector, 2u * VM_VIRTIO_MAX_QUEUES);
    vm_msix_save(&p->msix, tail + SELECTORS + VECTORS);
    pthread_mutex_unlock(&p->v->lock);
    return vm_virtio_save_tail(p->v, tail, tail_len(p), buf, len);
}

int vm_virtio_pci_load(void *dev, const uint8_t *buf, size_t len, bool apply)
{
    struct vm_virtio_pci *p = dev;
    size_t tl = tail_len(p);
    if (len < tl)
        return -EINVAL;
    const uint8_t *s = buf + len - tl;
    uint16_t vectors[1 + VM_VIRTIO_MAX_QUEUES];
    memcpy(vectors, s + SELECTORS, sizeof(vectors));
    for (unsigned i = 0; i < 1 + VM_VIRTIO_MAX_QUEUES; i++)
        if (vectors[i] != NO_VECTOR && vectors[i] >= p->msix.nvec)
            return -EINVAL;
    int r = vm_msix_load(&p->msix, s + SELECTORS + VECTORS, false);
    if (!r)
        r = vm_virtio_load(p->v, buf, len - tl, false);
    if (r || !apply)
        return r;
    /* The transport's state first, so that the notifications the device's
     * load replays find the vectors in place. */
    pthread_mutex_lock(&p->v->lock);
    memcpy(&p->device_features_sel, s, 4);
    memcpy(&p->driver_features_sel, s + 4, 4);
    memcpy(&p->queue_sel, s + 8, 2);
    p->config_vector = vectors[0];
    memcpy(p->queue_vector, vectors + 1, sizeof(p->queue_vector));
    vm_msix_load(&p->msix, s + SELECTORS + VECTORS, true);
    pthread_mutex_unlock(&p->v->lock);
    return vm_virtio_load(p->v, buf, len - tl, true);
}
