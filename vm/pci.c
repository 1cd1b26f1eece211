/* PCI bus 0 behind configuration mechanism 1. Register layout from the
 * PCI Local Bus Specification 3.0 (type-0 header, capability list,
 * BAR sizing by writing all ones); how Linux probes it from
 * arch/x86/pci/direct.c (a 32-bit write to 0xcf8 must read back, and bus
 * 0 must hold a host bridge) as kvmtool's pci.c also answers it. */
#include "pci.h"

#include "bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CFG_VENDOR 0x00
#define CFG_COMMAND 0x04
#define CFG_STATUS 0x06
#define CFG_REVISION 0x08
#define CFG_CLASS 0x09
#define CFG_HEADER_TYPE 0x0e
#define CFG_BAR0 0x10
#define CFG_SUBSYS_VENDOR 0x2c
#define CFG_CAP_PTR 0x34
#define CFG_INT_LINE 0x3c
#define CFG_INT_PIN 0x3d
#define CAP_START 0x40

#define CMD_MEMORY 0x0002u
#define CMD_INTX_DISABLE 0x0400u
#define STATUS_INTX 0x0008u
#define STATUS_CAP_LIST 0x0010u
#define ADDR_ENABLE 0x80000000u

static void put16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, 2);
}

static uint16_t get16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

void vm_pci_device_init(struct vm_pci_device *d, uint16_t vendor, uint16_t device,
                        uint32_t class_code, uint8_t revision, uint16_t subsys_vendor,
                        uint16_t subsys_id)
{
    memset(d, 0, sizeof(*d));
    put16(d->config + CFG_VENDOR, vendor);
    put16(d->config + CFG_VENDOR + 2, device);
    d->config[CFG_REVISION] = revision;
    d->config[CFG_CLASS] = (uint8_t)class_code;
    d->config[CFG_CLASS + 1] = (uint8_t)(class_code >> 8);
    d->config[CFG_CLASS + 2] = (uint8_t)(class_code >> 16);
    put16(d->config + CFG_SUBSYS_VENDOR, subsys_vendor);
    put16(d->config + CFG_SUBSYS_VENDOR + 2, subsys_id);
    d->config[CFG_INT_PIN] = 1; /* INTA */
    d->wmask[CFG_COMMAND] = 0x07;     /* I/O, memory, bus master */
    d->wmask[CFG_COMMAND + 1] = 0x04; /* INTx disable */
    d->wmask[CFG_INT_LINE] = 0xff;
    d->cap_end = CAP_START;
}

int vm_pci_add_cap(struct vm_pci_device *d, uint8_t id, const uint8_t *body, uint8_t len)
{
    if (len < 2 || (unsigned)d->cap_end + len > 256)
        return -ENOSPC;
    uint8_t at = d->cap_end;
    /* Link from the previous capability (or the header's pointer). */
    uint8_t link = CFG_CAP_PTR;
    for (uint8_t p = d->config[CFG_CAP_PTR]; p; p = d->config[p + 1])
        link = (uint8_t)(p + 1);
    d->config[link] = at;
    d->config[at] = id;
    d->config[at + 1] = 0;
    memcpy(d->config + at + 2, body, len - 2u);
    put16(d->config + CFG_STATUS, get16(d->config + CFG_STATUS) | STATUS_CAP_LIST);
    d->cap_end = (uint8_t)((at + len + 3u) & ~3u);
    return 0;
}

int vm_pci_init(struct vm_pci *pci, uint64_t window, uint64_t window_len)
{
    memset(pci, 0, sizeof(*pci));
    if (window_len == 0 || window + window_len < window || window + window_len > (1ull << 32))
        return -EINVAL;
    int r = pthread_mutex_init(&pci->lock, NULL);
    if (r)
        return -r;
    pci->window = pci->window_next = window;
    pci->window_len = window_len;
    /* The host bridge: class 06.00.00, what Linux's sanity check wants. */
    vm_pci_device_init(&pci->bridge, 0x1b36, 0x0008, 0x060000, 0, 0x1b36, 0x0008);
    pci->bridge.config[CFG_INT_PIN] = 0;
    pci->bridge.pci = pci;
    pci->slots[0] = &pci->bridge;
    return 0;
}

void vm_pci_destroy(struct vm_pci *pci)
{
    pthread_mutex_destroy(&pci->lock);
}

void vm_pci_set_intx(struct vm_pci *pci, vm_pci_intx_fn fn, void *ctx)
{
    pci->intx_fn = fn;
    pci->intx_ctx = ctx;
}

int vm_pci_add(struct vm_pci *pci, struct vm_pci_device *d, uint32_t bar_size)
{
    if (bar_size && (bar_size < 4096 || (bar_size & (bar_size - 1))))
        return -EINVAL;
    unsigned slot = 1;
    while (slot < VM_PCI_SLOTS && pci->slots[slot])
        slot++;
    if (slot == VM_PCI_SLOTS)
        return -ENOSPC;
    if (bar_size) {
        /* Naturally aligned, as BAR sizing requires. */
        uint64_t at = (pci->window_next + bar_size - 1) & ~(uint64_t)(bar_size - 1);
        if (at + bar_size > pci->window + pci->window_len)
            return -ENOSPC;
        pci->window_next = at + bar_size;
        uint32_t addr = (uint32_t)at;
        memcpy(d->config + CFG_BAR0, &addr, 4);
        uint32_t mask = ~(bar_size - 1);
        memcpy(d->wmask + CFG_BAR0, &mask, 4);
        d->bar_size = bar_size;
    }
    d->slot = slot;
    d->pci = pci;
    memcpy(d->power_on, d->config, sizeof(d->power_on));
    pci->slots[slot] = d;
    return 0;
}

uint32_t vm_pci_bar0(const struct vm_pci_device *d)
{
    return get32(d->config + CFG_BAR0) & ~0xfu;
}

/* Under the bus lock: whether BAR0 answers accesses now. */
static bool decodes(const struct vm_pci_device *d)
{
    return d->bar_size && (get16(d->config + CFG_COMMAND) & CMD_MEMORY);
}

uint32_t vm_pci_bar0_decoded(struct vm_pci_device *d)
{
    pthread_mutex_lock(&d->pci->lock);
    uint32_t at = decodes(d) ? vm_pci_bar0(d) : 0;
    pthread_mutex_unlock(&d->pci->lock);
    return at;
}

uint16_t vm_pci_config_read16(struct vm_pci_device *d, unsigned reg)
{
    if (reg > 254)
        return 0xffff;
    if (!d->pci)
        return get16(d->config + reg);
    pthread_mutex_lock(&d->pci->lock);
    uint16_t v = get16(d->config + reg);
    pthread_mutex_unlock(&d->pci->lock);
    return v;
}

static void changed(struct vm_pci_device *d)
{
    if (d && d->config_changed)
        d->config_changed(d->dev);
}

/* Called with the bus lock held. */
static void update_intx(struct vm_pci_device *d)
{
    bool out = d->intx_level && !(get16(d->config + CFG_COMMAND) & CMD_INTX_DISABLE);
    uint16_t status = get16(d->config + CFG_STATUS) & (uint16_t)~STATUS_INTX;
    put16(d->config + CFG_STATUS, status | (d->intx_level ? STATUS_INTX : 0));
    if (out == d->intx_out)
        return;
    d->intx_out = out;
    if (d->pci->intx_fn)
        d->pci->intx_fn(d->pci->intx_ctx, d->slot, out);
}

void vm_pci_intx(struct vm_pci_device *d, bool level)
{
    if (!d->pci) {
        d->intx_level = level;
        return;
    }
    pthread_mutex_lock(&d->pci->lock);
    d->intx_level = level;
    update_intx(d);
    pthread_mutex_unlock(&d->pci->lock);
}

/* The device the address register selects, or NULL. */
static struct vm_pci_device *selected(const struct vm_pci *pci)
{
    uint32_t a = pci->address;
    if (!(a & ADDR_ENABLE) || ((a >> 16) & 0xff) || ((a >> 8) & 7))
        return NULL;
    return pci->slots[(a >> 11) & 31];
}

int vm_pci_config_read(void *opaque, uint64_t offset, uint8_t *data, unsigned size,
                       struct vm_event *ev)
{
    (void)ev;
    struct vm_pci *pci = opaque;
    unsigned n = size > 4 ? 4 : size;
    memset(data, 0xff, n);
    pthread_mutex_lock(&pci->lock);
    if (offset == 0 && size == 4) {
        memcpy(data, &pci->address, 4);
    } else if (offset >= 4 && offset - 4 + size <= 4) {
        struct vm_pci_device *d = selected(pci);
        unsigned reg = (pci->address & 0xfc) + (unsigned)(offset - 4);
        if (d)
            memcpy(data, d->config + reg, n);
    }
    pthread_mutex_unlock(&pci->lock);
    return 0;
}

int vm_pci_config_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size,
                        struct vm_event *ev)
{
    (void)ev;
    struct vm_pci *pci = opaque;
    struct vm_pci_device *written = NULL;
    pthread_mutex_lock(&pci->lock);
    if (offset == 0 && size == 4) {
        /* Only a 32-bit access latches; Linux's probe writes bytes to
         * 0xcfb first and they must not. */
        uint32_t a;
        memcpy(&a, data, 4);
        pci->address = a & 0x80fffffcu;
    } else if (offset >= 4 && offset - 4 + size <= 4) {
        struct vm_pci_device *d = selected(pci);
        unsigned reg = (pci->address & 0xfc) + (unsigned)(offset - 4);
        if (d) {
            for (unsigned i = 0; i < size; i++)
                d->config[reg + i] = (uint8_t)((d->config[reg + i] & ~d->wmask[reg + i]) |
                                               (data[i] & d->wmask[reg + i]));
            if (reg <= CFG_COMMAND + 1 && reg + size > CFG_COMMAND && d != &pci->bridge)
                update_intx(d);
            written = d;
        }
    }
    pthread_mutex_unlock(&pci->lock);
    changed(written);
    return 0;
}

/* The device whose enabled BAR0 holds gpa, and the offset into it. */
static struct vm_pci_device *decode(struct vm_pci *pci, uint64_t gpa, unsigned size,
                                    uint64_t *offset)
{
    struct vm_pci_device *found = NULL;
    pthread_mutex_lock(&pci->lock);
    for (unsigned s = 1; s < VM_PCI_SLOTS && !found; s++) {
        struct vm_pci_device *d = pci->slots[s];
        if (!d || !decodes(d))
            continue;
        uint64_t base = vm_pci_bar0(d);
        if (gpa >= base && gpa - base < d->bar_size && size <= d->bar_size - (gpa - base)) {
            found = d;
            *offset = gpa - base;
        }
    }
    pthread_mutex_unlock(&pci->lock);
    return found;
}

int vm_pci_window_read(void *opaque, uint64_t offset, uint8_t *data, unsigned size,
                       struct vm_event *ev)
{
    (void)ev;
    struct vm_pci *pci = opaque;
    uint64_t off;
    struct vm_pci_device *d = decode(pci, pci->window + offset, size, &off);
    if (d && d->bar_read)
        d->bar_read(d->dev, off, data, size);
    else
        memset(data, 0xff, size > 8 ? 8 : size);
    return 0;
}

int vm_pci_window_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size,
                        struct vm_event *ev)
{
    (void)ev;
    struct vm_pci *pci = opaque;
    uint64_t off;
    struct vm_pci_device *d = decode(pci, pci->window + offset, size, &off);
    if (d && d->bar_write)
        d->bar_write(d->dev, off, data, size);
    return 0;
}

int vm_pci_attach(struct vm_pci *pci, struct vm_bus *bus)
{
    struct vm_bus_range ports = {.space = VM_BUS_PIO, .base = VM_PCI_CONFIG_PORT, .len = 8,
                                 .name = "pci-config", .read = vm_pci_config_read,
                                 .write = vm_pci_config_write, .dev = pci};
    int r = vm_bus_add(bus, &ports);
    if (r)
        return r;
    struct vm_bus_range window = {.space = VM_BUS_MMIO, .base = pci->window,
                                  .len = pci->window_len, .name = "pci-window",
                                  .read = vm_pci_window_read, .write = vm_pci_window_write,
                                  .dev = pci};
    r = vm_bus_add(bus, &window);
    if (!r)
        r = vm_bus_add_state(bus, &(struct vm_bus_state){.name = "pci", .save = vm_pci_save,
                                                         .load = vm_pci_load, .dev = pci});
    return r;
}

/* Layout: version (1), the address register (4), a bitmap of occupied
 * slots (4), then each occupied slot's 256-byte header in slot order. */
#define STATE_VERSION 1u
#define STATE_HEAD 9u

static uint32_t occupied(const struct vm_pci *pci)
{
    uint32_t map = 0;
    for (unsigned s = 0; s < VM_PCI_SLOTS; s++)
        if (pci->slots[s])
            map |= 1u << s;
    return map;
}

int vm_pci_save(void *dev, uint8_t **buf, size_t *len)
{
    struct vm_pci *pci = dev;
    uint32_t map = occupied(pci);
    size_t n = STATE_HEAD + 256u * (size_t)__builtin_popcount(map);
    uint8_t *b = malloc(n);
    if (!b)
        return -ENOMEM;
    pthread_mutex_lock(&pci->lock);
    b[0] = STATE_VERSION;
    memcpy(b + 1, &pci->address, 4);
    memcpy(b + 5, &map, 4);
    uint8_t *p = b + STATE_HEAD;
    for (unsigned s = 0; s < VM_PCI_SLOTS; s++) {
        if (pci->slots[s]) {
            memcpy(p, pci->slots[s]->config, 256);
            p += 256;
        }
    }
    pthread_mutex_unlock(&pci->lock);
    *buf = b;
    *len = n;
    return 0;
}

int vm_pci_load(void *dev, const uint8_t *b, size_t len, bool apply)
{
    struct vm_pci *pci = dev;
    uint32_t map = occupied(pci), saved_map;
    if (len < STATE_HEAD || b[0] != STATE_VERSION)
        return -EINVAL;
    memcpy(&saved_map, b + 5, 4);
    if (saved_map != map || len != STATE_HEAD + 256u * (size_t)__builtin_popcount(map))
        return -EINVAL;
    pthread_mutex_lock(&pci->lock);
    const uint8_t *p = b + STATE_HEAD;
    int r = 0;
    for (unsigned s = 0; s < VM_PCI_SLOTS && !r; s++) {
        const struct vm_pci_device *d = pci->slots[s];
        if (!d)
            continue;
        for (unsigned i = 0; i < 256; i++)
            if (i != CFG_STATUS && ((p[i] ^ d->config[i]) & ~d->wmask[i]))
                r = -EINVAL;
        p += 256;
    }
    if (!r && apply) {
        memcpy(&pci->address, b + 1, 4);
        pci->address &= 0x80fffffcu;
        p = b + STATE_HEAD;
        for (unsigned s = 0; s < VM_PCI_SLOTS; s++) {
            struct vm_pci_device *d = pci->slots[s];
            if (!d)
                continue;
            for (unsigned i = 0; i < 256; i++)
                if (i != CFG_STATUS)
                    d->config[i] = (uint8_t)((d->config[i] & ~d->wmask[i]) | (p[i] & d->wmask[i]));
            if (d != &pci->bridge)
                update_intx(d);
            p += 256;
        }
    }
    pthread_mutex_unlock(&pci->lock);
    for (unsigned s = 1; s < VM_PCI_SLOTS && !r && apply; s++)
        changed(pci->slots[s]);
    return r;
}

void vm_pci_reset(struct vm_pci *pci)
{
    pthread_mutex_lock(&pci->lock);
    pci->address = 0;
    for (unsigned s = 1; s < VM_PCI_SLOTS; s++) {
        struct vm_pci_device *d = pci->slots[s];
        if (!d)
            continue;
        memcpy(d->config, d->power_on, sizeof(d->config));
        update_intx(d);
    }
    pthread_mutex_unlock(&pci->lock);
    for (unsigned s = 1; s < VM_PCI_SLOTS; s++)
        changed(pci->slots[s]);
}
