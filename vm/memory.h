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
 * RAM size without overflow; out-of-RAM gives -EFAULT. */
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

/* Sets the trap of the page holding gpa. Changing a page's slots while the
 * vCPU runs is not allowed: callers own the stopped VM. -ENOSPC when KVM has
 * no slot left, -ENOTSUP for VM_TRAP_WRITE without read-only slot support. */
int vm_mem_set_trap(struct vm_mem *m, uint64_t gpa, enum vm_page_trap trap);
enum vm_page_trap vm_mem_trap(const struct vm_mem *m, uint64_t gpa);

#endif
