/* vm/debug.h: breakpoints and watchpoints, on any KVM host.
 *
 * Software breakpoints replace the first byte of an instruction with a
 * one-byte trap. Where KVM intercepts #BP (KVM_GUESTDBG_USE_SW_BP) that is
 * int3; some nested hosts report the int3 as KVM_EXIT_INTERNAL_ERROR with rip
 * on it, which counts as a hit too; hosts that do not intercept #BP at all
 * get hlt instead, which exits to userspace on every KVM without an in-kernel
 * irqchip (a hlt stop at a planted address is a hit, and rip is moved back).
 * On a board whose hlt stays in the kernel (pc) a host that does not
 * intercept int3 leaves no one-byte trap that always exits. There a
 * breakpoint on an instruction of two bytes or more gets the two-byte
 * `in $0xe5,%al` (port 0xe5 has no device, in KVM or kvmstub, so the read
 * exits; the hit is reported with rip and rax as they were). One on a
 * one-byte instruction (the second byte would land on the next one, where
 * a jump may lead) or across a page end takes its page out of the guest's
 * memory map instead (a page trap, as for watchpoints): fetching code from
 * it exits, a fetch at the breakpoint is a hit, and other code on that
 * page runs step by step until it leaves the page, which is slow for code
 * the guest runs a lot. Both trap only in kernel mode (CPL 0), like hlt.
 * vm/probe.c decides which at start-up. The original bytes are remembered,
 * hidden from debugger reads and restored on removal; resuming from a
 * breakpoint steps over it. An int3 or #DB the guest raises itself (no
 * breakpoint of ours there, no step of ours) is given back to the guest,
 * so it behaves the same with and without breakpoints set.
 *
 * A software (or planted hardware) breakpoint at an address the guest has
 * not mapped yet (a kernel's text before it builds its page tables) is
 * accepted and kept pending: at every exit to kvmstub and every resume,
 * pending breakpoints are translated again and planted once the mapping
 * exists. A guest that maps the address and runs it without any exit in
 * between runs through it; DR0-DR3 breakpoints, where they fire, work on
 * linear addresses from the first instruction. The exception: a Linux
 * kernel loaded by its boot protocol, whose decompressor unpacks and
 * enters it without an exit. A pending breakpoint on its text mapping
 * traps the page where the kernel will be unless KASLR moves it, so the
 * first fetch there exits; it then moves to the real mapping.
 *
 * Hardware breakpoints use DR0-DR3 where they fire, otherwise the same
 * planted trap, still limited to four so gdb's hbreak keeps its meaning. A
 * watchpoint holding a debug register gives it up (and moves to page traps)
 * when a hardware breakpoint needs it. Resuming at a DR execution
 * breakpoint sets RFLAGS.RF so it does not fire again at once.
 *
 * Watchpoints use a free debug register where data breakpoints fire and the
 * range fits one, otherwise page traps (vm/memory.h): the pages holding the
 * watched bytes leave the guest's memory map (or become read-only for write
 * watchpoints), each access exits, is performed by kvmstub on real RAM, and
 * is a hit only if it touches the watched bytes. Any number, any length.
 * Linear addresses are translated when inserted, and again at every exit
 * and resume while paging is on, so the traps follow the guest's page
 * tables (a remapping the guest makes between two exits is seen at the
 * next one).
 *
 * Breakpoints and watchpoints belong to the VM: they apply to every vCPU.
 * Addresses are linear, translated with the page tables of the vCPU given.
 * Only the owner of the stopped VM changes them (vm/vm.h). */
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
    VM_BP_PAGE_TRAP,           /* the code page trapped, fetches there exit */
    VM_BP_PORT_IN,             /* in $0xe5,%al (page traps where it cannot go) */
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

/* Insert or remove a breakpoint at a linear address. hardware selects Z1.
 * Inserting an existing one succeeds (gdb re-sends); -ENOSPC when four
 * hardware breakpoints are in use or the table is full, -EFAULT when the
 * address maps outside RAM (an address not mapped at all is kept pending),
 * -ENOENT when removing an unknown one. */
int vm_bp_insert(struct vm_cpu *cpu, uint64_t addr, bool hardware);
int vm_bp_remove(struct vm_cpu *cpu, uint64_t addr, bool hardware);

/* Insert or remove a watchpoint. -EINVAL for len 0 or over VM_MAX_WATCH_LEN,
 * -ENOSPC when the table or KVM's slots are full, -EFAULT when a page is not
 * mapped, -ENOENT when removing an unknown one; with the debug-registers
 * method, -ENOTSUP for what no debug register can watch (reads, odd sizes)
 * and -EOPNOTSUPP on a host whose data breakpoints do not fire. */
int vm_watch_insert(struct vm_cpu *cpu, enum vm_watch_type type, uint64_t addr, uint64_t len);
int vm_watch_remove(struct vm_cpu *cpu, enum vm_watch_type type, uint64_t addr, uint64_t len);

/* Some breakpoint waits for the guest to map its address. Any thread: the
 * owner of running vCPUs makes them exit now and then while this holds, so
 * pending breakpoints are checked even when the guest makes no exits. */
bool vm_bp_pending(const struct vm *vm);

/* Removes every breakpoint and watchpoint (detach, reset). */
void vm_debug_clear(struct vm *vm);

/* How breakpoints and watchpoints are made here, for monitor output. */
struct vm_debug_info {
    enum vm_bp_method bp_method;
    enum vm_watch_method watch_method;
    bool hw_exec;        /* hardware breakpoints use DR0-DR3 */
    bool hw_data;        /* watchpoints may use DR0-DR3 */
    size_t breakpoints;  /* software breakpoints (and planted hardware ones) */
    size_t pending;      /* of those, waiting for the guest to map them */
    size_t watchpoints;
    size_t page_trapped; /* watchpoints on page traps */
    size_t pages;        /* pages trapped */
};
void vm_debug_info(const struct vm *vm, struct vm_debug_info *out);

/* Chooses how software breakpoints are planted and how watchpoints are
 * made; before any is set. The bp method must be one the host delivers
 * (VM_BP_PAGE_TRAP and VM_BP_PORT_IN always are, VM_BP_HLT on a board
 * without an irqchip) or -ENOTSUP. */
int vm_debug_configure(struct vm *vm, enum vm_bp_method bp, enum vm_watch_method watch);

const char *vm_bp_method_name(enum vm_bp_method m);

/* Catches on port I/O: the vCPU stops after an IN or OUT that touches
 * ports lo..hi in direction dir (the access is done, VM_EVENT_IO tells
 * which). A device's own stop on that access (debug-exit) comes at the
 * next run, so a catch on the debug-exit port stops before the guest ends.
 * Writes KVM would batch in its coalesced ring exit one by one while a
 * catch covers them. Changed only while every vCPU is stopped. */
enum vm_io_dir {
    VM_IO_IN = 1,
    VM_IO_OUT = 2,
    VM_IO_ANY = 3,
};

#define VM_MAX_IO_CATCHES 32u

struct vm_io_catch {
    unsigned id; /* from 1, never reused */
    uint16_t lo, hi;
    enum vm_io_dir dir;
    uint64_t hits;
};

/* -EINVAL for lo > hi or a bad dir, -ENOSPC when VM_MAX_IO_CATCHES are set. */
int vm_io_catch_add(struct vm *vm, uint16_t lo, uint16_t hi, enum vm_io_dir dir, unsigned *id);
/* -ENOENT for an unknown id. */
int vm_io_catch_remove(struct vm *vm, unsigned id);
/* Copies up to max catches to out; returns how many there are. */
size_t vm_io_catch_list(const struct vm *vm, struct vm_io_catch *out, size_t max);

#endif
