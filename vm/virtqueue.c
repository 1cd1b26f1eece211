/* Split virtqueues. Layout and rules from the virtio 1.x specification,
 * section 2.7 (descriptor table 16-byte aligned, available ring 2, used
 * ring 4; indirect tables hold no indirect descriptor and a descriptor is
 * never both INDIRECT and NEXT; device-writable descriptors follow the
 * readable ones; a chain is no longer than the queue). */
#include "virtqueue.h"

#include <errno.h>
#include <string.h>

#define DESC_F_NEXT 1u
#define DESC_F_WRITE 2u
#define DESC_F_INDIRECT 4u
#define AVAIL_F_NO_INTERRUPT 1u
#define DESC_SIZE 16u
#define USED_ELEM_SIZE 8u

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

void *vm_virtq_map(const struct vm_virtq_mem *mem, uint64_t gpa, uint64_t len)
{
    if (!mem->ram || gpa > mem->size || len > mem->size - gpa)
        return NULL;
    return mem->ram + gpa;
}

void vm_virtq_reset(struct vm_virtq *q)
{
    memset(q, 0, sizeof(*q));
}

static int fail(struct vm_virtq *q)
{
    q->broken = true;
    return -EIO;
}

int vm_virtq_start(struct vm_virtq *q, const struct vm_virtq_mem *mem)
{
    uint64_t n = q->size;
    q->last_avail = q->used_idx = 0;
    q->broken = false;
    q->desc_p = q->avail_p = q->used_p = NULL;
    if (n == 0 || n > VM_VIRTQ_MAX_SIZE || (n & (n - 1)) || (q->desc & 15) || (q->avail & 1) ||
        (q->used & 3)) {
        q->broken = true;
        return -EINVAL;
    }
    /* avail: flags, idx, ring[n], used_event; used: flags, idx, ring[n], avail_event */
    q->desc_p = vm_virtq_map(mem, q->desc, n * DESC_SIZE);
    q->avail_p = vm_virtq_map(mem, q->avail, 6 + 2 * n);
    q->used_p = vm_virtq_map(mem, q->used, 6 + USED_ELEM_SIZE * n);
    if (!q->desc_p || !q->avail_p || !q->used_p) {
        q->desc_p = q->avail_p = q->used_p = NULL;
        q->broken = true;
        return -EINVAL;
    }
    return 0;
}

static struct desc read_desc(const uint8_t *table, uint16_t i)
{
    /* One copy: the guest may change the entry while it is being used. */
    uint8_t raw[DESC_SIZE];
    memcpy(raw, table + (size_t)i * DESC_SIZE, DESC_SIZE);
    struct desc d;
    memcpy(&d.addr, raw, 8);
    memcpy(&d.len, raw + 8, 4);
    memcpy(&d.flags, raw + 12, 2);
    memcpy(&d.next, raw + 14, 2);
    return d;
}

static int add_seg(struct vm_virtq *q, const struct vm_virtq_mem *mem, struct vm_virtq_chain *c,
                   const struct desc *d)
{
    bool write = d->flags & DESC_F_WRITE;
    if (!write && c->nsegs > c->nread)
        return fail(q); /* readable after writable */
    if (d->len == 0)
        return 0;
    if (c->nsegs >= VM_VIRTQ_MAX_SEGS)
        return fail(q);
    uint8_t *host = vm_virtq_map(mem, d->addr, d->len);
    if (!host)
        return fail(q);
    c->segs[c->nsegs++] = (struct vm_virtq_seg){.host = host, .len = d->len, .write = write};
    if (write) {
        c->write_len += d->len;
    } else {
        c->nread++;
        c->read_len += d->len;
    }
    return 0;
}

static int walk(struct vm_virtq *q, const struct vm_virtq_mem *mem, struct vm_virtq_chain *c,
                uint16_t head)
{
    const uint8_t *table = q->desc_p;
    uint32_t entries = q->size;
    uint32_t steps = 0;
    bool in_indirect = false;
    uint16_t i = head;
    for (;;) {
        /* A chain visits each entry of its table at most once, so more
         * steps than entries means a loop. */
        if (i >= entries || ++steps > entries)
            return fail(q);
        struct desc d = read_desc(table, i);
        if (d.flags & DESC_F_INDIRECT) {
            if (!q->indirect || in_indirect || (d.flags & DESC_F_NEXT) || d.len == 0 ||
                d.len % DESC_SIZE || d.len / DESC_SIZE > VM_VIRTQ_MAX_SEGS)
                return fail(q);
            /* No alignment asked of an indirect table (the spec aligns only
             * the queue's own three parts): Linux built with SLOB kmallocs
             * it 8-byte aligned, and read_desc copies bytes anyway. */
            table = vm_virtq_map(mem, d.addr, d.len);
            if (!table)
                return fail(q);
            entries = d.len / DESC_SIZE;
            steps = 0;
            in_indirect = true;
            i = 0;
            continue;
        }
        int r = add_seg(q, mem, c, &d);
        if (r)
            return r;
        if (!(d.flags & DESC_F_NEXT))
            return 0;
        i = d.next;
    }
}

int vm_virtq_pop(struct vm_virtq *q, const struct vm_virtq_mem *mem, struct vm_virtq_chain *chain)
{
    if (q->broken || !q->ready || !q->avail_p)
        return -EIO;
    uint16_t avail_idx = __atomic_load_n((uint16_t *)(q->avail_p + 2), __ATOMIC_ACQUIRE);
    uint16_t pending = (uint16_t)(avail_idx - q->last_avail);
    if (pending == 0)
        return 0;
    if (pending > q->size)
        return fail(q); /* the driver claims more than the ring holds */
    uint16_t head;
    memcpy(&head, q->avail_p + 4 + 2 * (size_t)(q->last_avail % q->size), 2);
    chain->head = head;
    chain->nsegs = chain->nread = 0;
    chain->read_len = chain->write_len = 0;
    int r = walk(q, mem, chain, head);
    if (r)
        return r;
    q->last_avail++;
    return 1;
}

void vm_virtq_push(struct vm_virtq *q, uint16_t head, uint32_t len)
{
    if (!q->used_p)
        return;
    uint8_t *elem = q->used_p + 4 + USED_ELEM_SIZE * (size_t)(q->used_idx % q->size);
    uint32_t id = head;
    memcpy(elem, &id, 4);
    memcpy(elem + 4, &len, 4);
    q->used_idx++;
    /* The element is visible before the index that publishes it. */
    __atomic_store_n((uint16_t *)(q->used_p + 2), q->used_idx, __ATOMIC_RELEASE);
}

bool vm_virtq_should_notify(const struct vm_virtq *q)
{
    if (!q->avail_p)
        return false;
    /* The used index store must be visible before the flags are read, or a
     * driver re-enabling interrupts in between would miss this one. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint16_t flags = __atomic_load_n((uint16_t *)q->avail_p, __ATOMIC_RELAXED);
    return !(flags & AVAIL_F_NO_INTERRUPT);
}

static size_t copy_chain(const struct vm_virtq_chain *c, bool write, uint64_t offset, void *buf,
                         const void *src, size_t len)
{
    unsigned first = write ? c->nread : 0, end = write ? c->nsegs : c->nread;
    size_t done = 0;
    for (unsigned s = first; s < end && done < len; s++) {
        const struct vm_virtq_seg *seg = &c->segs[s];
        if (offset >= seg->len) {
            offset -= seg->len;
            continue;
        }
        size_t n = seg->len - offset;
        if (n > len - done)
            n = len - done;
        if (write)
            memcpy(seg->host + offset, (const uint8_t *)src + done, n);
        else
            memcpy((uint8_t *)buf + done, seg->host + offset, n);
        done += n;
        offset = 0;
    }
    return done;
}

size_t vm_virtq_chain_read(const struct vm_virtq_chain *chain, uint64_t offset, void *buf,
                           size_t len)
{
    return copy_chain(chain, false, offset, buf, NULL, len);
}

size_t vm_virtq_chain_write(const struct vm_virtq_chain *chain, uint64_t offset, const void *buf,
                            size_t len)
{
    return copy_chain(chain, true, offset, NULL, buf, len);
}
