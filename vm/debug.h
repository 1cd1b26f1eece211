/* vm/debug.h: breakpoints and watchpoints, on any KVM host.
 *
 * Software breakpoints replace the first byte of an instruction with a
 * one-byte trap. Where KVM intercepts #BP (KVM_GUESTDBG_USE_SW_BP) that is
 * int3; some nested hosts report the int3 as KVM_EXIT_INTERNAL_ERROR with rip
 * on it, which counts as a hit too; hosts that do not intercept #BP at all
 * get hlt instead, which exits to userspace on every KVM without an in-kernel
 * irqchip (a hlt stop at a planted address is a hit, and rip is moved back).
 * vm/probe.c decides which at start-up. The original byte is remembered,
 * hidden from debugger reads and restored on removal; resuming from a
 * breakpoint steps over it.
 *
 * Hardware breakpoints use DR0-DR3 where they fire, otherwise the same
 * planted trap, still limited to four so gdb's hbreak keeps its meaning.
 *
 * Watchpoints use a free debug register where data breakpoints fire and the
 * range fits one, otherwise page traps (vm/memory.h): the pages holding the
 * watched bytes leave the guest's memory map (or become read-only for write
 * watchpoints), each access exits, is performed by kvmstub on real RAM, and
 * is a hit only if it touches the watched bytes. Any number, any length.
 * Linear addresses are translated when inserted, and again at every exit
 * and resume while paging is on, so the traps follow the guest's page
 * tables (a remapping the guest makes between two exits is seen at the
 * next one). */
#ifndef VM_DEBUG_H
#define VM_DEBUG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct vm_cpu;

enum vm_bp_method {
    VM_BP_INT3,                /* int3, reported as KVM_EXIT_DEBUG */
    VM_BP_INT3_INTERNAL_ERROR, /* int3, reported as KVM_EXIT_INTERNAL_ERROR */
    VM_BP_HLT,                 /* hlt, reported as KVM_EXIT_HLT */
};

enum vm_watch_type {
    VM_WATCH_WRITE = 1,
    VM_WATCH_READ = 2,
    VM_WATCH_ACCESS = 3,
};

enum vm_watch_method {
    VM_WATCH_AUTO,
    VM_WATCH_DEBUG_REGS,
    VM_WATCH_PAGE_TRAPS,
};

#define VM_MAX_BREAKPOINTS 4096u
#define VM_MAX_WATCHPOINTS 256u
#define VM_MAX_WATCH_LEN (64u << 10)
#define VM_NUM_DEBUG_REGS 4u

struct vm_breakpoint {
    uint64_t addr; /* linear, as gdb gave it */
    uint64_t gpa;  /* where the trap byte is planted */
    uint8_t orig;  /* the byte it replaced */
    bool software; /* wanted by a Z0 */
    bool hardware; /* wanted by a Z1 emulated by planting */
};

/* One page a page-trapped watchpoint covers. */
struct vm_watch_page {
    uint64_t linear; /* page-aligned */
    uint64_t gpa;    /* page-aligned; ~0 when the page is not mapped now */
};

struct vm_watchpoint {
    uint64_t addr;
    uint64_t len;
    enum vm_watch_type type;
    int dr; /* debug register used, or -1 for page traps */
    struct vm_watch_page *pages;
    size_t npages;
};

struct vm_hw_slot {
    bool used;
    uint8_t rw;  /* DR7 R/W field: 0 execute, 1 write, 3 access */
    uint8_t len; /* bytes: 1, 2, 4 or 8 */
    uint64_t addr;
};

/* A trapped page lifted for one single-step, with its bytes before it. */
struct vm_lifted_page {
    uint64_t gpa;
    uint8_t before[4096];
};

struct vm_debug {
    enum vm_bp_method bp_method;
    enum vm_watch_method watch_method; /* what the owner asked for */
    bool hw_exec;                      /* DR execution breakpoints usable */
    bool hw_data;                      /* DR data breakpoints usable */
    struct vm_breakpoint *bps;
    size_t nbps, capbps;
    size_t nhw_emulated;
    struct vm_hw_slot dr[VM_NUM_DEBUG_REGS];
    struct vm_watchpoint *watches;
    size_t nwatches;
    uint64_t xlate_cr0; /* CR0.PG when the watch pages were last translated */
    /* Instructions KVM cannot emulate against a trapped page, and code
     * fetched from one, run for one step with the traps lifted; writes to
     * watched bytes are then found by comparing the pages. */
    struct vm_lifted_page *lifted;
    size_t nlifted;
    /* What the instruction stepped with traps lifted will access, when that
     * touches watched bytes (vm/decode.h): reads leave no other trace. */
    bool predicted;
    uint64_t predicted_addr;
    enum vm_watch_type predicted_type;
};

/* Insert or remove a breakpoint at a linear address. hardware selects Z1.
 * Inserting an existing one succeeds (gdb re-sends); -ENOSPC when four
 * hardware breakpoints are in use or the table is full, -EFAULT when the
 * address is not mapped, -ENOENT when removing an unknown one. */
int vm_bp_insert(struct vm_cpu *cpu, uint64_t addr, bool hardware);
int vm_bp_remove(struct vm_cpu *cpu, uint64_t addr, bool hardware);
/* The planted breakpoint at linear addr, or NULL. */
const struct vm_breakpoint *vm_bp_find(const struct vm *vm, uint64_t addr);

/* Insert or remove a watchpoint. -EINVAL for len 0 or over VM_MAX_WATCH_LEN,
 * -ENOSPC when the table or KVM's slots are full, -EFAULT when a page is not
 * mapped, -ENOENT when removing an unknown one. */
int vm_watch_insert(struct vm_cpu *cpu, enum vm_watch_type type, uint64_t addr, uint64_t len);
int vm_watch_remove(struct vm_cpu *cpu, enum vm_watch_type type, uint64_t addr, uint64_t len);

/* Removes every breakpoint and watchpoint (detach, reset). */
void vm_debug_clear(struct vm_cpu *cpu);

/* Overlays the original bytes of planted breakpoints onto buf, which holds
 * guest-physical [gpa, gpa+len). */
void vm_debug_hide(const struct vm *vm, uint64_t gpa, uint8_t *buf, size_t len);
/* A debugger write to [gpa, gpa+len) that covers planted bytes: keeps the
 * trap planted and records the new byte as the original instead. */
void vm_debug_write_through(struct vm *vm, uint64_t gpa, const uint8_t *buf, size_t len);

const char *vm_bp_method_name(enum vm_bp_method m);

/* For vm/ itself. */
void vm_debug_init(struct vm *vm);
void vm_debug_free(struct vm *vm);
/* Debug register slots (DR0-DR3); -ENOSPC when all four are taken. */
int vm_dr_alloc(struct vm_cpu *cpu, uint8_t rw, uint8_t len, uint64_t addr);
void vm_dr_free(struct vm_cpu *cpu, int slot);
/* The breakpoint trap byte for the host's method. */
uint8_t vm_bp_trap_byte(const struct vm *vm);
/* KVM_SET_GUEST_DEBUG for the current breakpoints plus single-stepping. */
int vm_debug_apply(struct vm_cpu *cpu, bool single_step);
/* Temporarily restores / re-plants the breakpoint at gpa (stepping over). */
void vm_bp_unplant(struct vm *vm, uint64_t addr);
void vm_bp_replant(struct vm *vm, uint64_t addr);
/* The watchpoint hit by a guest access to guest-physical [gpa, gpa+len),
 * if any: fills *addr (linear) and *type, returns true. */
bool vm_watch_match(const struct vm *vm, uint64_t gpa, uint64_t len, bool write, uint64_t *addr,
                    enum vm_watch_type *type);
/* Watchpoint of debug register slot i, for a DR6 hit. */
bool vm_watch_dr_hit(const struct vm *vm, unsigned slot, uint64_t *addr, enum vm_watch_type *type);
/* Re-translates page-trapped watchpoints when the paging state changed. */
int vm_watch_refresh(struct vm_cpu *cpu);
bool vm_watch_active(const struct vm *vm);
/* Lifts the trap of one page (gpa) or of every trapped page (gpa ~0) for a
 * single step; vm_watch_unlift() puts them back and reports a write to
 * watched bytes made meanwhile. Returns true on a hit. */
int vm_watch_lift(struct vm *vm, uint64_t gpa);
/* Decodes the instruction at rip and remembers a watchpoint it will hit,
 * for vm_watch_unlift() to report. */
void vm_watch_predict(struct vm_cpu *cpu);
bool vm_watch_unlift(struct vm *vm, uint64_t *addr, enum vm_watch_type *type);

#endif
