/* vm/memory.h: guest RAM and the KVM memory slots that map it.
 *
 * Guest RAM is one private anonymous mapping at guest-physical 0, so pages
 * the guest never touches cost the host nothing. It is registered with KVM
 * as a set of slots that normally cover it in one piece; single 4 KiB pages
 * can be "trapped" (mapped read-only, or not at all) so that guest writes,
 * or all guest accesses, to them exit to userspace as KVM_EXIT_MMIO. The
 * watchpoint code uses this on hosts whose debug registers do not fire.
 *
 * Physical reads and writes here are the debugger's and the loader's view:
 * they go straight to RAM, traps or not. Every range is checked against the
 * RAM size without overflow; out-of-RAM gives -EFAULT.
 *
 * Dirty-page tracking (for incremental snapshots): when on, every slot that
 * maps RAM carries KVM_MEM_LOG_DIRTY_PAGES, and one RAM-wide bitmap gathers
 * what changed since the last vm_mem_dirty_collect(): guest writes that KVM
 * logged (a slot's log is read before the slot goes away when traps re-tile
 * RAM), writes through vm_mem_write(), ranges given to vm_mem_mark_dirty(),
 * and every trapped page (guest writes to those are done by the MMIO exit
 * handler, which KVM does not log). Writes through vm_mem_ptr() are not
 * seen: whoever writes RAM that way calls vm_mem_mark_dirty().
 * Tracking state belongs to whoever holds the stopped VM, like the slots;
 * vm_mem_mark_dirty() may also be called by vCPU threads while they run
 * (it is atomic). vm_mem_dirty_collect() has one consumer: snapshots. */
#ifndef VM_MEMORY_H
#define VM_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VM_PAGE_SIZE 4096u
#define VM_PAGE_MASK (~(uint64_t)(VM_PAGE_SIZE - 1))

enum vm_page_trap {
    VM_TRAP_NONE = 0,  /* normal RAM */
    VM_TRAP_WRITE = 1, /* read-only slot: writes exit */
    VM_TRAP_ALL = 2,   /* no slot: every access exits */
};

struct vm_slot {
    uint32_t id;
    uint64_t gpa;
    uint64_t size;
    bool readonly;
};

struct vm_trapped_page {
    uint64_t gpa;
    enum vm_page_trap trap;
};

struct vm_mem {
    int vm_fd;
    uint8_t *host;
    uint64_t size;
    bool readonly_slots; /* KVM_CAP_READONLY_MEM */
    uint32_t max_slots;
    /* Slots sorted by gpa; they and the unmapped trapped pages tile RAM. */
    struct vm_slot *slots;
    size_t nslots;
    uint8_t *slot_used; /* by id */
    /* Trapped pages sorted by gpa. */
    struct vm_trapped_page *traps;
    size_t ntraps;
    /* Bumped whenever the slots change: a vCPU that waited (vm/gate.h) can
     * tell whether the traps it exited on are still the same. */
    uint64_t layout_changes;
    /* Dirty-page tracking; bitmaps of vm_mem_bitmap_words() words. */
    bool tracking;
    bool rescan;     /* the next collect adds every page the host has backed */
    uint64_t *dirty; /* pages changed since the last collect */
    uint64_t *log;   /* KVM_GET_DIRTY_LOG buffer */
};

/* Maps size bytes (a multiple of 4 KiB) of RAM into the VM. */
int vm_mem_init(struct vm_mem *m, int vm_fd, uint64_t size, bool readonly_slots, uint32_t max_slots);
void vm_mem_destroy(struct vm_mem *m);
/* Gives every page back to the host (they read as zero again). */
int vm_mem_clear(struct vm_mem *m);

bool vm_mem_contains(const struct vm_mem *m, uint64_t gpa, uint64_t len);
int vm_mem_read(const struct vm_mem *m, uint64_t gpa, void *buf, size_t len);
int vm_mem_write(struct vm_mem *m, uint64_t gpa, const void *buf, size_t len);
/* Host pointer for [gpa, gpa+len), or NULL if not wholly inside RAM. */
void *vm_mem_ptr(const struct vm_mem *m, uint64_t gpa, uint64_t len);

/* Sets the trap of the page holding gpa. Changing a page's slots while a
 * vCPU runs is not allowed: callers own the stopped VM, or hold every vCPU
 * out of the guest (vm/gate.h). -ENOSPC when KVM has
 * no slot left, -ENOTSUP for VM_TRAP_WRITE without read-only slot support. */
int vm_mem_set_trap(struct vm_mem *m, uint64_t gpa, enum vm_page_trap trap);
enum vm_page_trap vm_mem_trap(const struct vm_mem *m, uint64_t gpa);

/* Words of a bitmap with one bit per page of RAM (bit p%64 of word p/64). */
size_t vm_mem_bitmap_words(const struct vm_mem *m);

/* Turns dirty-page tracking on or off. Turning it on re-registers every slot
 * with KVM_MEM_LOG_DIRTY_PAGES and makes the next collect report every page
 * the host has backed so far (what happened before is unknown). KVM offers
 * no capability bit for the bitmap log: a host whose KVM refuses the flag or
 * the log gives -ENOTSUP, and tracking stays off. */
int vm_mem_track_dirty(struct vm_mem *m, bool on);

/* Records that [gpa, gpa+len) changed (clipped to RAM); a no-op when
 * tracking is off. */
void vm_mem_mark_dirty(struct vm_mem *m, uint64_t gpa, uint64_t len);

/* ORs into out the pages changed since the last collect and starts a new
 * interval. Returns 0, 1 when tracking is off (then every bit is set: any
 * page may have changed), or a negative errno when KVM would not hand over a
 * log (nothing is lost: the next collect reports it). */
int vm_mem_dirty_collect(struct vm_mem *m, uint64_t *out);

#endif
