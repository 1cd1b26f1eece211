#include "memory.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

bool vm_mem_contains(const struct vm_mem *m, uint64_t gpa, uint64_t len)
{
    return gpa <= m->size && len <= m->size - gpa;
}

void *vm_mem_ptr(const struct vm_mem *m, uint64_t gpa, uint64_t len)
{
    if (!vm_mem_contains(m, gpa, len))
        return NULL;
    return m->host + gpa;
}

int vm_mem_read(const struct vm_mem *m, uint64_t gpa, void *buf, size_t len)
{
    if (!vm_mem_contains(m, gpa, len))
        return -EFAULT;
    memcpy(buf, m->host + gpa, len);
    return 0;
}

int vm_mem_write(struct vm_mem *m, uint64_t gpa, const void *buf, size_t len)
{
    if (!vm_mem_contains(m, gpa, len))
        return -EFAULT;
    memcpy(m->host + gpa, buf, len);
    return 0;
}

static int set_region(struct vm_mem *m, uint32_t id, uint64_t gpa, uint64_t size, bool readonly)
{
    struct kvm_userspace_memory_region r = {
        .slot = id,
        .flags = readonly ? KVM_MEM_READONLY : 0,
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr = (uint64_t)(uintptr_t)(m->host + gpa),
    };
    if (ioctl(m->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
        return -errno;
    return 0;
}

static int alloc_id(struct vm_mem *m, uint32_t *id)
{
    for (uint32_t i = 0; i < m->max_slots; i++) {
        if (!m->slot_used[i]) {
            m->slot_used[i] = 1;
            *id = i;
            return 0;
        }
    }
    return -ENOSPC;
}

static int add_slot(struct vm_mem *m, uint64_t gpa, uint64_t size, bool readonly)
{
    uint32_t id;
    int err = alloc_id(m, &id);
    if (err)
        return err;
    err = set_region(m, id, gpa, size, readonly);
    if (err) {
        m->slot_used[id] = 0;
        return err;
    }
    size_t i = 0;
    while (i < m->nslots && m->slots[i].gpa < gpa)
        i++;
    memmove(&m->slots[i + 1], &m->slots[i], (m->nslots - i) * sizeof(m->slots[0]));
    m->slots[i] = (struct vm_slot){.id = id, .gpa = gpa, .size = size, .readonly = readonly};
    m->nslots++;
    return 0;
}

static int del_slot(struct vm_mem *m, size_t i)
{
    struct vm_slot s = m->slots[i];
    int err = set_region(m, s.id, s.gpa, 0, false);
    if (err)
        return err;
    m->slot_used[s.id] = 0;
    memmove(&m->slots[i], &m->slots[i + 1], (m->nslots - i - 1) * sizeof(m->slots[0]));
    m->nslots--;
    return 0;
}

int vm_mem_init(struct vm_mem *m, int vm_fd, uint64_t size, bool readonly_slots, uint32_t max_slots)
{
    memset(m, 0, sizeof(*m));
    if (size == 0 || size % VM_PAGE_SIZE)
        return -EINVAL;
    if (max_slots < 4)
        return -ENOTSUP;
    /* One slot per trapped page plus the runs between them; a cap keeps the
     * table (and KVM's work on each change) small. */
    if (max_slots > 1024)
        max_slots = 1024;
    m->vm_fd = vm_fd;
    m->size = size;
    m->readonly_slots = readonly_slots;
    m->max_slots = max_slots;
    m->slots = calloc(max_slots, sizeof(*m->slots));
    m->slot_used = calloc(max_slots, 1);
    m->traps = calloc(max_slots, sizeof(*m->traps));
    if (!m->slots || !m->slot_used || !m->traps) {
        vm_mem_destroy(m);
        return -ENOMEM;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) {
        int err = -errno;
        vm_mem_destroy(m);
        return err;
    }
    m->host = p;
    int err = add_slot(m, 0, size, false);
    if (err) {
        vm_mem_destroy(m);
        return err;
    }
    return 0;
}

void vm_mem_destroy(struct vm_mem *m)
{
    if (m->host)
        munmap(m->host, m->size);
    free(m->slots);
    free(m->slot_used);
    free(m->traps);
    memset(m, 0, sizeof(*m));
}

int vm_mem_clear(struct vm_mem *m)
{
    if (madvise(m->host, m->size, MADV_DONTNEED) < 0)
        return -errno;
    return 0;
}

static size_t trap_index(const struct vm_mem *m, uint64_t page)
{
    size_t lo = 0, hi = m->ntraps;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->traps[mid].gpa < page)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

enum vm_page_trap vm_mem_trap(const struct vm_mem *m, uint64_t gpa)
{
    uint64_t page = gpa & VM_PAGE_MASK;
    size_t i = trap_index(m, page);
    if (i < m->ntraps && m->traps[i].gpa == page)
        return m->traps[i].trap;
    return VM_TRAP_NONE;
}

/* Slots that [lo, hi) needs under the current trap table. */
static size_t count_tiles(const struct vm_mem *m, uint64_t lo, uint64_t hi)
{
    size_t n = 0;
    uint64_t run = lo;
    for (size_t i = trap_index(m, lo); i < m->ntraps && m->traps[i].gpa < hi; i++) {
        if (m->traps[i].gpa > run)
            n++;
        if (m->traps[i].trap == VM_TRAP_WRITE)
            n++;
        run = m->traps[i].gpa + VM_PAGE_SIZE;
    }
    return n + (run < hi);
}

static int tile(struct vm_mem *m, uint64_t lo, uint64_t hi)
{
    uint64_t run = lo;
    int err;
    for (size_t i = trap_index(m, lo); i < m->ntraps && m->traps[i].gpa < hi; i++) {
        const struct vm_trapped_page *t = &m->traps[i];
        if (t->gpa > run && (err = add_slot(m, run, t->gpa - run, false)))
            return err;
        if (t->trap == VM_TRAP_WRITE && (err = add_slot(m, t->gpa, VM_PAGE_SIZE, true)))
            return err;
        run = t->gpa + VM_PAGE_SIZE;
    }
    if (run < hi)
        return add_slot(m, run, hi - run, false);
    return 0;
}

int vm_mem_set_trap(struct vm_mem *m, uint64_t gpa, enum vm_page_trap trap)
{
    uint64_t page = gpa & VM_PAGE_MASK;
    if (!vm_mem_contains(m, page, VM_PAGE_SIZE))
        return -EFAULT;
    if (trap == VM_TRAP_WRITE && !m->readonly_slots)
        return -ENOTSUP;
    size_t ti = trap_index(m, page);
    bool present = ti < m->ntraps && m->traps[ti].gpa == page;
    enum vm_page_trap old = present ? m->traps[ti].trap : VM_TRAP_NONE;
    if (old == trap)
        return 0;
    if (!present && m->ntraps >= m->max_slots)
        return -ENOSPC;

    /* The window to re-tile: the slots touching the page, so that runs of
     * normal RAM are merged again when a trap goes away. */
    uint64_t lo = page, hi = page + VM_PAGE_SIZE;
    size_t first = m->nslots, last = 0;
    for (size_t i = 0; i < m->nslots; i++) {
        const struct vm_slot *s = &m->slots[i];
        uint64_t end = s->gpa + s->size;
        bool touches = (s->gpa <= page && end > page) ||
                       (trap == VM_TRAP_NONE && (end == page || s->gpa == page + VM_PAGE_SIZE) &&
                        !s->readonly);
        if (!touches)
            continue;
        if (i < first)
            first = i;
        last = i;
        if (s->gpa < lo)
            lo = s->gpa;
        if (end > hi)
            hi = end;
    }

    /* Update the table first, so the new tiling can be counted and checked
     * against the free slots before anything is unmapped. */
    struct vm_trapped_page saved_old = {page, old};
    if (trap == VM_TRAP_NONE) {
        memmove(&m->traps[ti], &m->traps[ti + 1], (m->ntraps - ti - 1) * sizeof(m->traps[0]));
        m->ntraps--;
    } else if (present) {
        m->traps[ti].trap = trap;
    } else {
        memmove(&m->traps[ti + 1], &m->traps[ti], (m->ntraps - ti) * sizeof(m->traps[0]));
        m->traps[ti] = (struct vm_trapped_page){page, trap};
        m->ntraps++;
    }
    size_t removing = first < m->nslots ? last - first + 1 : 0;
    if (m->nslots - removing + count_tiles(m, lo, hi) > m->max_slots) {
        /* Put the table back as it was. */
        if (trap == VM_TRAP_NONE) {
            memmove(&m->traps[ti + 1], &m->traps[ti], (m->ntraps - ti) * sizeof(m->traps[0]));
            m->traps[ti] = saved_old;
            m->ntraps++;
        } else if (present) {
            m->traps[ti].trap = old;
        } else {
            memmove(&m->traps[ti], &m->traps[ti + 1], (m->ntraps - ti - 1) * sizeof(m->traps[0]));
            m->ntraps--;
        }
        return -ENOSPC;
    }
    for (size_t n = 0; n < removing; n++) {
        int err = del_slot(m, first);
        if (err)
            return err;
    }
    /* Should KVM refuse a slot now, the pages left without one still work:
     * their accesses exit as MMIO and the exit handler performs them. */
    return tile(m, lo, hi);
}
