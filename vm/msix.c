/* MSI-X. Entry layout (address low, address high, data, vector control)
 * and the message control bits are the PCI specification's; Linux's
 * drivers/pci/msi/msi.c sets enable together with the function mask,
 * programs the entries, then clears the function mask, so pending bits
 * must survive that window. */
#include "msix.h"

#include <errno.h>
#include <string.h>

#define CAP_ID_MSIX 0x11u
#define CTRL_ENABLE 0x8000u
#define CTRL_MASKALL 0x4000u
#define ENTRY_MASKED 1u

int vm_msix_init(struct vm_msix *x, struct vm_pci_device *d, unsigned nvec, uint32_t table_off,
                 uint32_t pba_off)
{
    memset(x, 0, sizeof(*x));
    if (!nvec || nvec > VM_MSIX_MAX_VECTORS || (table_off & 7) || (pba_off & 7))
        return -EINVAL;
    x->pdev = d;
    x->nvec = nvec;
    x->table_off = table_off;
    x->pba_off = pba_off;
    /* After id and next: message control (table size - 1), then table
     * and pending-bit offsets with BIR 0 in their low three bits. */
    uint8_t body[10] = {0};
    uint16_t ctrl = (uint16_t)(nvec - 1);
    memcpy(body, &ctrl, 2);
    memcpy(body + 2, &table_off, 4);
    memcpy(body + 6, &pba_off, 4);
    uint8_t at = d->cap_end;
    int r = vm_pci_add_cap(d, CAP_ID_MSIX, body, 12);
    if (r)
        return r;
    x->cap = at;
    d->wmask[at + 3] = (uint8_t)((CTRL_ENABLE | CTRL_MASKALL) >> 8);
    vm_msix_reset(x);
    return 0;
}

void vm_msix_set_sink(struct vm_msix *x, vm_msix_sink_fn fn, void *ctx)
{
    x->sink = fn;
    x->sink_ctx = ctx;
}

static uint16_t control(const struct vm_msix *x)
{
    return x->pdev ? vm_pci_config_read16(x->pdev, x->cap + 2u) : 0;
}

bool vm_msix_enabled(const struct vm_msix *x)
{
    return (control(x) & CTRL_ENABLE) != 0;
}

static uint32_t word(const struct vm_msix *x, unsigned vector, unsigned at)
{
    uint32_t v;
    memcpy(&v, x->table[vector] + at, 4);
    return v;
}

static bool masked(const struct vm_msix *x, uint16_t ctrl, unsigned vector)
{
    return (ctrl & CTRL_MASKALL) || (word(x, vector, 12) & ENTRY_MASKED);
}

static void send(struct vm_msix *x, unsigned vector)
{
    uint64_t address = (uint64_t)word(x, vector, 4) << 32 | word(x, vector, 0);
    x->sent++;
    if (x->sink)
        x->sink(x->sink_ctx, vector, address, word(x, vector, 8));
}

void vm_msix_signal(struct vm_msix *x, unsigned vector)
{
    if (vector >= x->nvec)
        return;
    uint16_t ctrl = control(x);
    if (!(ctrl & CTRL_ENABLE))
        return;
    if (masked(x, ctrl, vector))
        x->pending |= 1u << vector;
    else
        send(x, vector);
}

static void flush_pending(struct vm_msix *x)
{
    uint16_t ctrl = control(x);
    if (!(ctrl & CTRL_ENABLE))
        return;
    for (unsigned v = 0; v < x->nvec; v++) {
        if ((x->pending & (1u << v)) && !masked(x, ctrl, v)) {
            x->pending &= ~(1u << v);
            send(x, v);
        }
    }
}

/* 4- or 8-byte accesses, naturally aligned, as the specification allows. */
static bool access_ok(uint64_t offset, unsigned size)
{
    return (size == 4 || size == 8) && !(offset & (size - 1));
}

bool vm_msix_read(struct vm_msix *x, uint64_t offset, uint8_t *data, unsigned size)
{
    uint64_t table_len = (uint64_t)x->nvec * VM_MSIX_ENTRY;
    if (offset >= x->table_off && offset - x->table_off < table_len) {
        uint64_t at = offset - x->table_off;
        memset(data, 0, size > 8 ? 8 : size);
        if (access_ok(at, size) && at + size <= table_len)
            memcpy(data, x->table[at / VM_MSIX_ENTRY] + at % VM_MSIX_ENTRY, size);
        return true;
    }
    if (offset >= x->pba_off && offset - x->pba_off < 8) {
        uint64_t at = offset - x->pba_off;
        uint64_t pba = x->pending;
        memset(data, 0, size > 8 ? 8 : size);
        if (access_ok(at, size) && at + size <= 8)
            memcpy(data, (const uint8_t *)&pba + at, size);
        return true;
    }
    return false;
}

bool vm_msix_write(struct vm_msix *x, uint64_t offset, const uint8_t *data, unsigned size)
{
    uint64_t table_len = (uint64_t)x->nvec * VM_MSIX_ENTRY;
    if (offset >= x->table_off && offset - x->table_off < table_len) {
        uint64_t at = offset - x->table_off;
        if (!access_ok(at, size) || at + size > table_len)
            return true;
        uint8_t *e = x->table[at / VM_MSIX_ENTRY];
        unsigned in = (unsigned)(at % VM_MSIX_ENTRY);
        memcpy(e + in, data, size);
        /* Only the mask bit of vector control is defined. */
        e[12] &= ENTRY_MASKED;
        memset(e + 13, 0, 3);
        if (in + size > 12)
            flush_pending(x);
        return true;
    }
    return offset >= x->pba_off && offset - x->pba_off < 8;
}

void vm_msix_control_changed(struct vm_msix *x)
{
    flush_pending(x);
}

void vm_msix_reset(struct vm_msix *x)
{
    memset(x->table, 0, sizeof(x->table));
    for (unsigned v = 0; v < VM_MSIX_MAX_VECTORS; v++)
        x->table[v][12] = ENTRY_MASKED;
    x->pending = 0;
}

size_t vm_msix_state_len(const struct vm_msix *x)
{
    return (size_t)x->nvec * VM_MSIX_ENTRY + 4;
}

void vm_msix_save(const struct vm_msix *x, uint8_t *out)
{
    for (unsigned v = 0; v < x->nvec; v++)
        memcpy(out + v * VM_MSIX_ENTRY, x->table[v], VM_MSIX_ENTRY);
    memcpy(out + x->nvec * VM_MSIX_ENTRY, &x->pending, 4);
}

int vm_msix_load(struct vm_msix *x, const uint8_t *in, bool apply)
{
    uint32_t pending;
    memcpy(&pending, in + x->nvec * VM_MSIX_ENTRY, 4);
    if (pending >> x->nvec)
        return -EINVAL;
    if (!apply)
        return 0;
    for (unsigned v = 0; v < x->nvec; v++) {
        memcpy(x->table[v], in + v * VM_MSIX_ENTRY, VM_MSIX_ENTRY);
        x->table[v][12] &= ENTRY_MASKED;
        memset(x->table[v] + 13, 0, 3);
    }
    x->pending = pending;
    return 0;
}
