#include "memory.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

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
    vm_mem_mark_dirty(m, gpa, len);
    return 0;
}

static uint64_t npages(const struct vm_mem *m)
{
    return m->size / VM_PAGE_SIZE;
}

size_t vm_mem_bitmap_words(const struct vm_mem *m)
{
    return (size_t)((npages(m) + 63) / 64);
}

/* Atomic, so that vCPU threads running at once (each owning its vCPU) may
 * mark pages; collecting happens with every vCPU stopped. */
static void set_bits(uint64_t *bits, uint64_t first, uint64_t count)
{
    while (count && first % 64) {
        __atomic_fetch_or(&bits[first / 64], 1ull << (first % 64), __ATOMIC_RELAXED);
        first++, count--;
    }
    for (; count >= 64; first += 64, count -= 64)
        __atomic_store_n(&bits[first / 64], ~0ull, __ATOMIC_RELAXED);
    for (; count; first++, count--)
        __atomic_fetch_or(&bits[first / 64], 1ull << (first % 64), __ATOMIC_RELAXED);
}

void vm_mem_mark_dirty(struct vm_mem *m, uint64_t gpa, uint64_t len)
{
    if (!m->tracking || !len || gpa >= m->size)
        return;
    uint64_t end = len > m->size - gpa ? m->size : gpa + len;
    uint64_t first = gpa / VM_PAGE_SIZE;
    set_bits(m->dirty, first, (end - 1) / VM_PAGE_SIZE - first + 1);
}

/* Every page the host has backed (present or swapped out, from
 * /proc/self/pagemap): the others were never touched, or given back by
 * vm_mem_clear(), and read as zero. Where pagemap cannot be read, all. */
static void mark_backed(const struct vm_mem *m, uint64_t *bits)
{
    enum { CHUNK = 4096 };
    uint64_t n = npages(m);
    uint64_t *e = malloc(CHUNK * sizeof(*e));
    int fd = e ? open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC) : -1;
    uint64_t base = (uint64_t)(uintptr_t)m->host / VM_PAGE_SIZE;
    for (uint64_t p = 0; fd >= 0 && p < n; p += CHUNK) {
        size_t want = (size_t)(n - p < CHUNK ? n - p : CHUNK);
        ssize_t got = pread(fd, e, want * sizeof(*e), (off_t)((base + p) * sizeof(*e)));
        if (got != (ssize_t)(want * sizeof(*e))) {
            close(fd);
            fd = -1;
            break;
        }
        for (size_t i = 0; i < want; i++)
            if (e[i] & (3ull << 62)) /* present, swapped */
                bits[(p + i) / 64] |= 1ull << ((p + i) % 64);
    }
    if (fd < 0)
        set_bits(bits, 0, n);
    else
        close(fd);
    free(e);
}

static int set_region(struct vm_mem *m, uint32_t id, uint64_t gpa, uint64_t size, bool readonly)
{
    struct kvm_userspace_memory_region r = {
        .slot = id,
        .flags = (readonly ? KVM_MEM_READONLY : 0) |
                 (m->tracking && size ? KVM_MEM_LOG_DIRTY_PAGES : 0),
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

/* ORs the slot's KVM dirty log into the RAM-wide bitmap; the log is cleared
 * by reading it. */
static int harvest(struct vm_mem *m, const struct vm_slot *s)
{
    uint64_t first = s->gpa / VM_PAGE_SIZE, n = s->size / VM_PAGE_SIZE;
    size_t words = (size_t)((n + 63) / 64);
    /* KVM writes all of the slot's bitmap (rounded up to 64 bits). */
    struct kvm_dirty_log d = {.slot = s->id, .dirty_bitmap = m->log};
    if (ioctl(m->vm_fd, KVM_GET_DIRTY_LOG, &d) < 0)
        return -errno;
    unsigned shift = (unsigned)(first % 64);
    uint64_t *out = &m->dirty[first / 64];
    for (size_t w = 0; w < words; w++) {
        uint64_t v = m->log[w];
        if (w == words - 1 && n % 64)
            v &= (1ull << (n % 64)) - 1;
        if (!v)
            continue;
        out[w] |= v << shift;
        /* Never reaches past the bitmap: bits there would be pages past RAM. */
        if (shift && (v >> (64 - shift)))
            out[w + 1] |= v >> (64 - shift);
    }
    return 0;
}

static int del_slot(struct vm_mem *m, size_t i)
{
    struct vm_slot s = m->slots[i];
    /* Its log dies with it: keep what it holds (all of it if KVM will not
     * say, which costs a few extra pages in the next snapshot). */
    if (m->tracking && harvest(m, &s))
        set_bits(m->dirty, s.gpa / VM_PAGE_SIZE, s.size / VM_PAGE_SIZE);
    int err = set_region(m, s.id, s.gpa, 0, false);
    if (err)
        return err;
    m->slot_used[s.id] = 0;
    memmove(&m->slots[i], &m->slots[i + 1], (m->nslots - i - 1) * sizeof(m->slots[0]));
    m->nslots--;
    return 0;
}

/* The host-side alignment of guest RAM: x86's 2 MiB large page. */
#define RAM_ALIGN ((uint64_t)2 << 20)

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
    /* Guest RAM starts on a 2 MiB boundary of the host's address space, as
     * gpa 0 is: only then can KVM map the guest's 2 MiB ranges with one
     * large page each where the host backs them with a transparent huge
     * page (KVM wants the gfn and the host address congruent modulo the
     * large page size), instead of taking a nested page fault per 4 KiB. */
    uint64_t span = size + RAM_ALIGN;
    char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) {
        int err = -errno;
        vm_mem_destroy(m);
        return err;
    }
    char *start = (char *)(((uintptr_t)p + RAM_ALIGN - 1) & ~(uintptr_t)(RAM_ALIGN - 1));
    if (start > p)
        munmap(p, (size_t)(start - p));
    if (start + size < p + span)
        munmap(start + size, (size_t)(p + span - (start + size)));
    m->host = (uint8_t *)start;
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
    free(m->dirty);
    free(m->log);
    memset(m, 0, sizeof(*m));
}

int vm_mem_clear(struct vm_mem *m)
{
    /* What had content changes to zero; what the loader writes next through
     * vm_mem_ptr() is found by the rescan at the next collect. */
    if (m->tracking) {
        mark_backed(m, m->dirty);
        m->rescan = true;
    }
    if (madvise(m->host, m->size, MADV_DONTNEED) < 0)
        return -errno;
    return 0;
}

/* Re-registers every slot with the current tracking flag; on failure the
 * slots already changed are put back as they were. */
static int reflag_slots(struct vm_mem *m)
{
    for (size_t i = 0; i < m->nslots; i++) {
        const struct vm_slot *s = &m->slots[i];
        int err = set_region(m, s->id, s->gpa, s->size, s->readonly);
        if (err) {
            m->tracking = !m->tracking;
            for (size_t j = 0; j < i; j++)
                set_region(m, m->slots[j].id, m->slots[j].gpa, m->slots[j].size,
                           m->slots[j].readonly);
            m->tracking = !m->tracking;
            return err;
        }
    }
    return 0;
}

int vm_mem_track_dirty(struct vm_mem *m, bool on)
{
    if (on == m->tracking)
        return 0;
    if (!on) {
        m->tracking = false;
        int err = reflag_slots(m);
        if (err) {
            m->tracking = true;
            return err;
        }
        free(m->dirty);
        free(m->log);
        m->dirty = m->log = NULL;
        return 0;
    }
    size_t words = vm_mem_bitmap_words(m);
    m->dirty = calloc(words, sizeof(uint64_t));
    m->log = calloc(words + 1, sizeof(uint64_t));
    if (!m->dirty || !m->log) {
        free(m->dirty);
        free(m->log);
        m->dirty = m->log = NULL;
        return -ENOMEM;
    }
    m->tracking = true;
    int err = reflag_slots(m);
    /* A slot's first log must be readable too, or tracking is useless. */
    for (size_t i = 0; !err && i < m->nslots; i++)
        err = harvest(m, &m->slots[i]);
    if (err) {
        m->tracking = false;
        reflag_slots(m);
        free(m->dirty);
        free(m->log);
        m->dirty = m->log = NULL;
        return err == -EINVAL || err == -ENOENT || err == -ENOTTY ? -ENOTSUP : err;
    }
    m->rescan = true;
    return 0;
}

int vm_mem_dirty_collect(struct vm_mem *m, uint64_t *out)
{
    size_t words = vm_mem_bitmap_words(m);
    if (!m->tracking) {
        set_bits(out, 0, npages(m));
        return 1;
    }
    for (size_t i = 0; i < m->nslots; i++) {
        int err = harvest(m, &m->slots[i]);
        if (err)
            return err;
    }
    /* Guest writes to trapped pages are performed by the MMIO exit handler;
     * counting those pages every time (and when their trap changes) spares
     * it a hook. */
    for (size_t i = 0; i < m->ntraps; i++)
        set_bits(m->dirty, m->traps[i].gpa / VM_PAGE_SIZE, 1);
    if (m->rescan) {
        mark_backed(m, m->dirty);
        m->rescan = false;
    }
    for (size_t w = 0; w < words; w++) {
        out[w] |= m->dirty[w];
        m->dirty[w] = 0;
    }
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
    /* While trapped, guest writes were done by the MMIO exit handler, which
     * KVM does not log: count the page as changed when the trap goes. */
    vm_mem_mark_dirty(m, page, VM_PAGE_SIZE);

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
    m->layout_changes++;
    for (size_t n = 0; n < removing; n++) {
        int err = del_slot(m, first);
        if (err)
            return err;
    }
    /* Should KVM refuse a slot now, the pages left without one still work:
     * their accesses exit as MMIO and the exit handler performs them. */
    return tile(m, lo, hi);
}
