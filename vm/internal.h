/* vm/internal.h: the structures behind vm/vm.h, for vm/ itself (and the
 * white-box tests in tests/vm). Nothing outside vm/ may include it.
 *
 * Ownership, refining vm/vm.h: a vm_cpu's fields belong to the thread
 * running it while it runs (its run loop, register cache, step state);
 * `kick` and `thread_known` are atomics any thread may touch. The VM-wide
 * debug tables, memory slots and the board are changed only while every
 * vCPU is stopped, and only read while vCPUs run, but for what a vCPU
 * thread changes during a run holding the gate (vm/gate.h) with every other
 * vCPU out of the guest. Devices lock themselves. */
#ifndef VM_INTERNAL_H
#define VM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "bus.h"
#include "memory.h"
#include "regcache.h"
#include "vm.h"

/* ---- breakpoints and watchpoints (debug.c, watch.c) ---- */

/* A breakpoint whose address the guest has not mapped yet is pending:
 * gpa is VM_BP_PENDING until vm_bp_plant_pending() finds the mapping. */
#define VM_BP_PENDING (~0ull)

/* The port a VM_BP_PORT_IN breakpoint reads: unassigned on a PC, and no
 * device KVM emulates in the kernel, so the read always exits. */
#define VM_BP_PORT 0xe5u
#define VM_BP_MAX_TRAP 2u
/* Linux's __START_KERNEL_map on x86-64: its text, data and bss are mapped
 * from here (at most 1 GiB), physical = linear - this + phys_base. */
#define VM_LINUX_TEXT_MAP 0xffffffff80000000ull
#define VM_LINUX_TEXT_MAP_SIZE (1ull << 30)

struct vm_breakpoint {
    uint64_t addr; /* linear, as gdb gave it */
    uint64_t gpa;  /* where the trap is planted (or the byte on the trapped
                    * page), or VM_BP_PENDING */
    uint8_t len;   /* trap bytes planted at gpa; 0: the page is trapped */
    uint8_t orig[VM_BP_MAX_TRAP]; /* the bytes the trap replaced */
    bool software; /* wanted by a Z0 */
    bool hardware; /* wanted by a Z1 emulated by planting */
    bool predicted; /* not mapped yet: its page trapped where the kernel's
                     * text will be (vm->linux_text), still counted pending */
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

struct vm_debug {
    /* Pending breakpoints get planted by whichever vCPU thread sees the
     * mapping first, while the others run; this lock (recursive) orders
     * that with every change of the page traps made during a run. */
    pthread_mutex_t lock;
    bool initialized;
    atomic_uint npending;
    enum vm_bp_method bp_method;
    enum vm_watch_method watch_method; /* what the owner asked for */
    bool hw_exec;                      /* DR execution breakpoints usable */
    bool hw_data;                      /* DR data breakpoints usable */
    struct vm_breakpoint *bps;
    size_t nbps, capbps;
    size_t nhw_emulated;
    struct vm_hw_slot dr[VM_NUM_DEBUG_REGS];
    unsigned generation; /* bumped whenever dr[] or bps change: vCPUs re-apply */
    struct vm_watchpoint *watches;
    size_t nwatches;
    uint64_t xlate_cr0; /* CR0.PG when the watch pages were last translated */
    struct vm_io_catch catches[VM_MAX_IO_CATCHES];
    size_t ncatches;
    unsigned next_catch_id;
};

/* A trapped page lifted for one single-step, with its bytes before it. */
struct vm_lifted_page {
    uint64_t gpa;
    uint8_t before[4096];
};

/* What one vCPU's current step over our own traps holds. Instructions KVM
 * cannot emulate against a trapped page, and code fetched from one, run for
 * one step with the traps lifted; writes to watched bytes are then found by
 * comparing the pages, and reads by decoding the instruction first. */
struct vm_cpu_step {
    uint64_t over;      /* linear address of a breakpoint being stepped over
                         * (planted: taken out; DR: left out of DR7) */
    bool stepping_over;
    struct vm_lifted_page *lifted;
    size_t nlifted;
    bool predicted;
    uint64_t predicted_addr;
    enum vm_watch_type predicted_type;
    /* The lifted page is a trapped code page, and the guest runs on it
     * step by step (interrupts allowed) until it leaves the page, reaches
     * a breakpoint or makes a watched access: one lift per visit of the
     * page, not one per instruction (memory-slot changes are costly). */
    bool visiting;
    bool visit_watched;   /* a watchpoint covers the page: check each step */
    unsigned visit_steps; /* steps of this visit so far */
};

/* ---- vCPUs and the VM ---- */

/* The gate (gate.h): its fields are changed under its lock; holder and
 * waiters are also read without it. */
enum vm_gate_state {
    VM_GATE_OUT,     /* not inside vm_cpu_run() */
    VM_GATE_RUNNING, /* may be inside KVM_RUN */
    VM_GATE_PARKED,  /* held out of the guest by the holder */
    VM_GATE_WAITING, /* waits to hold the gate */
    VM_GATE_HOLDER,
};

struct vm_gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool initialized;
    atomic_int holder; /* vCPU index, or -1 */
    unsigned depth;    /* the holder's nesting */
    atomic_uint waiters;
    uint64_t next_ticket, serving;
    uint64_t epoch;       /* exclusive sections ended so far */
    uint64_t released_ns; /* when the last one ended */
};

struct vm_cpu {
    struct vm *vm;
    unsigned index;
    int fd;
    struct kvm_run *run;
    struct kvm_coalesced_mmio_ring *ring; /* NULL without coalesced PIO */
    struct vm_regcache rc;
    struct vm_cpu_step step;
    bool halted;           /* executed hlt; stays halted until rip is set */
    /* A VM_BP_PORT_IN trap was hit: once KVM has completed the in (rax
     * written, rip past it), both go back to these. */
    bool bp_io_fixup;
    uint64_t bp_io_rip, bp_io_rax;
    /* A device's stop that a catch on the same access went before: the
     * next run reports it. */
    bool has_pending;
    struct vm_event pending;
    bool needs_completion; /* KVM holds a PIO/MMIO instruction to finish */
    /* A read-modify-write on a trapped page holds the gate until KVM has
     * done its write half (cpu.c, handle_mmio). */
    bool rmw_held;
    /* KVM_SET_GUEST_DEBUG as last applied. */
    bool guest_debug_dirty;
    bool single_step;      /* the applied state single-steps */
    uint32_t inject;       /* KVM_GUESTDBG_INJECT_BP/DB for the next entry */
    unsigned debug_generation;
    uint64_t guest_debug_control;
    uint64_t dr7;
    uint64_t last_output_ns; /* when buffered output started waiting */
    /* The gate: its lock guards these. gate_entered is the epoch at which
     * the last KVM_RUN began, gate_ran that of the one before it (one that
     * has come back). */
    enum vm_gate_state gate_state;
    uint64_t gate_entered, gate_ran;
    /* The board's own state of this vCPU (vm_board.cpu_data_size bytes,
     * zeroed before its cpu_setup; freed with the VM), or NULL. */
    void *board_data;
    /* Kicking: see vm_cpu_kick(). */
    atomic_bool kick;
    atomic_bool thread_known;
    pthread_t thread;
};

/* A board: what vm_create() builds around the CPUs and RAM (vm/board_*.c). */
struct vm_image;
struct vm_serial;

struct vm_board {
    struct vm_board_info info; /* name, kind and rules (vm/vm.h) */
    /* VM_SNAP_VM_* (vm/snap_vm.h) the board creates in KVM, which
     * snapshots save and restore; devices' own state travels through the
     * bus (vm_bus_add_state). */
    unsigned snap_vm_parts;
    /* Bytes of the board's own state per vCPU (vm_cpu.board_data). */
    size_t cpu_data_size;
    /* What the board refuses, before anything is created: 0, or -EINVAL
     * with what to do instead in err. NULL: up to VM_MAX_CPUS CPUs. */
    int (*check)(unsigned ncpus, char *err, size_t errlen);
    /* Before any vCPU exists: devices on the bus, VM-wide KVM state. */
    int (*create)(struct vm *vm, char *err, size_t errlen);
    /* Each vCPU, right after KVM_CREATE_VCPU. */
    int (*cpu_setup)(struct vm *vm, struct vm_cpu *cpu, char *err, size_t errlen);
    /* The image is in RAM and the boot CPU set up: firmware tables (NULL:
     * none). A refusal explains itself in err. */
    int (*image_loaded)(struct vm *vm, const struct vm_image *img, char *err, size_t errlen);
    /* Devices (and, with an irqchip, the interrupt controllers and every
     * vCPU's LAPIC, MSRs and run state) back to power-on. */
    void (*reset)(struct vm *vm);
    void (*destroy)(struct vm *vm);
    /* Around a snapshot's save or load: device threads that write guest
     * RAM (disk workers) held still (pause true), then let go. May be NULL. */
    void (*quiesce)(struct vm *vm, bool pause);
    /* `monitor info disks` (vm_devices_describe_disks). May be NULL. */
    int (*describe_disks)(struct vm *vm, char *buf, size_t len);
};

extern const struct vm_board vm_board_bare;
extern const struct vm_board vm_board_pc;

struct vm {
    int kvm_fd;
    int vm_fd;
    size_t run_size;
    int coalesced_page; /* page offset of the ring in a vCPU mapping, or 0 */
    /* The ring is the VM's, mapped into every vCPU: one drains it at a time
     * (vCPU threads, in drain_ring). */
    pthread_mutex_t ring_lock;
    struct vm_mem mem;
    struct vm_cpu *cpus;
    unsigned ncpus;
    struct kvm_cpuid2 *cpuid;
    struct vm_xsave_layout xlayout;
    const struct vm_board *board;
    void *board_data;
    struct vm_serial *console; /* the board's UART (set by its create) */
    struct vm_bus bus;
    struct vm_debug debug;
    struct vm_gate gate;
    struct vm_caps caps;
    struct vm_stats stats;
    /* The guest ended through a device (debug-exit, a reset request); set
     * by the vCPU thread that saw it, read by every run loop. */
    atomic_bool exited;
    enum vm_event_type exit_type; /* VM_EVENT_DEBUG_EXIT or VM_EVENT_RESET */
    uint32_t exit_status;
    vm_log_fn log;
    void *log_ctx;
    bool trace;
    pthread_mutex_t note_lock; /* the "seen" sets below, from any vCPU thread */
    uint8_t ports_seen[65536 / 8];
    uint64_t mmio_seen[64]; /* unbacked pages already logged (+1, 0 is empty) */
    size_t nmmio_seen;
    /* A 64-bit Linux loaded by its boot protocol: its text mapping at
     * VM_LINUX_TEXT_MAP will point at linux_text_gpa, unless KASLR moves
     * the kernel (image.c; debug.c plants pending breakpoints there). */
    bool linux_text;
    uint64_t linux_text_gpa;
    uint64_t linux_link_phys; /* pref_address: where vmlinux's _text is linked (kaslr.c) */
    /* vm_config's drives, for the board's create only (the caller's). */
    const struct vm_drive *drives;
    unsigned ndrives;
    /* What a Linux command line needs from the board's devices (image.c):
     * its PCI bus probed (no pci=off), and words to append. */
    bool linux_pci;
    const char *linux_words;
};

/* What a new run does first: step off a breakpoint under rip (the next
 * entry single-steps with it out of the way), watch pages re-translated. */
int vm_cpu_begin_run(struct vm_cpu *cpu);
/* Everything the run loop does right before KVM_RUN: the register cache
 * written back, the guest debug state (breakpoints, the one being stepped
 * over left out, single-step, an exception to re-inject) applied.
 * Exposed for the tests that script KVM's exits. */
int vm_cpu_prepare(struct vm_cpu *cpu, bool step);
/* Handles the exit described by cpu->run as vm_cpu_run() does: returns 1
 * with *ev filled, 0 when the guest would just continue, or a negative
 * errno (exits.c). Exposed so tests can feed it exits a host cannot
 * produce. */
int vm_cpu_handle_exit(struct vm_cpu *cpu, enum vm_run_mode mode, struct vm_event *ev);
/* Hands the writes KVM batched in the coalesced ring to their devices, in
 * guest order; the run loop calls it after every KVM_RUN, before the exit
 * is handled (exits.c). */
void vm_exits_drain_ring(struct vm_cpu *cpu);

/* Registers or unregisters KVM's coalesced zone of a bus range, as its
 * device and the I/O catches allow (coalesce.c). */
int vm_coalesce_refresh(struct vm *vm);

/* Fills ev with the internal error in cpu->run, at linear pc: what the
 * instruction was and whether it met memory outside RAM
 * (internal_error.c). */
void vm_internal_error_event(struct vm_cpu *cpu, uint64_t pc, struct vm_event *ev);

/* CPU state at a Linux kernel's 64-bit entry (mode.c). */
struct vm_bzimage_entry;
int vm_enter_bzimage(struct vm_cpu *cpu, const struct vm_bzimage_entry *e);

/* ---- debugreg.c: the debug register slots (DR0-DR3) ---- */

/* A free slot for rw (DR7's R/W field), len and addr; -ENOSPC when all
 * four are taken. */
int vm_debugreg_alloc(struct vm *vm, uint8_t rw, uint8_t len, uint64_t addr);
void vm_debugreg_free(struct vm *vm, int slot);
/* The slot holding exactly that, or -1. */
int vm_debugreg_find(const struct vm *vm, uint8_t rw, uint8_t len, uint64_t addr);
/* The DR execution breakpoint slot at linear addr, or -1. */
int vm_debugreg_exec_slot(const struct vm *vm, uint64_t addr);

/* ---- planted.c: trap bytes in guest RAM ---- */

/* The trap bytes the breakpoint method plants (0 for page traps). */
size_t vm_planted_trap(const struct vm *vm, uint8_t out[VM_BP_MAX_TRAP]);
/* The first of them. */
uint8_t vm_planted_trap_byte(const struct vm *vm);
/* The breakpoint's trap bytes are in RAM (not pending, not a page trap). */
bool vm_planted_in_ram(const struct vm_breakpoint *bp);
/* Overlays the original bytes of planted breakpoints onto buf, which holds
 * guest-physical [gpa, gpa+len). */
void vm_planted_hide(const struct vm *vm, uint64_t gpa, uint8_t *buf, size_t len);
/* A debugger write to [gpa, gpa+len) that covers planted bytes: keeps the
 * trap planted and records the new byte as the original instead. */
void vm_planted_write_through(struct vm *vm, uint64_t gpa, const uint8_t *buf, size_t len);

/* ---- debug.c / watch.c internals ---- */

void vm_debug_init(struct vm *vm);
void vm_debug_free(struct vm *vm);
/* KVM_SET_GUEST_DEBUG for the current breakpoints plus single-stepping. */
int vm_debug_apply(struct vm_cpu *cpu, bool single_step);
/* The planted breakpoint at linear addr, or NULL. */
const struct vm_breakpoint *vm_bp_find(const struct vm *vm, uint64_t addr);
/* Temporarily restores / re-plants the breakpoint at addr (stepping over).
 * A page-trapped breakpoint's page is lifted for cpu's next step instead
 * (vm_watch_lift), and put back by vm_watch_unlift. */
int vm_bp_unplant(struct vm_cpu *cpu, uint64_t addr);
void vm_bp_replant(struct vm *vm, uint64_t addr);
/* Around a snapshot load: every planted trap taken out (RAM holds the
 * guest's bytes), then every breakpoint translated again with vCPU 0's page
 * tables (they may differ) and planted over what the loaded RAM has; one
 * the loaded guest has not mapped becomes pending. */
void vm_bp_unplant_all(struct vm *vm);
void vm_bp_replant_all(struct vm *vm);
/* Plants the pending breakpoints the guest has mapped by now, as cpu's
 * page tables say; cheap when there are none. Any vCPU thread. */
int vm_bp_plant_pending(struct vm_cpu *cpu);
/* Some breakpoint waits, its page trapped, where a kernel's text will be. */
bool vm_bp_predicted(struct vm *vm);
/* The watchpoint hit by a guest access to guest-physical [gpa, gpa+len),
 * if any: fills *addr (linear) and *type, returns true. */
bool vm_watch_match(const struct vm *vm, uint64_t gpa, uint64_t len, bool write, uint64_t *addr,
                    enum vm_watch_type *type);
/* Watchpoint of debug register slot i, for a DR6 hit. */
bool vm_watch_dr_hit(const struct vm *vm, unsigned slot, uint64_t *addr, enum vm_watch_type *type);
/* vm_watch_remove() without a vCPU: removal needs no translation. */
int vm_watch_drop(struct vm *vm, enum vm_watch_type type, uint64_t addr, uint64_t len);
/* Moves a watchpoint off debug register slot onto page traps, freeing the
 * slot for a hardware breakpoint. */
int vm_watch_release_dr(struct vm_cpu *cpu, int slot);
/* Re-translates page-trapped watchpoints when the paging state changed. */
int vm_watch_refresh(struct vm_cpu *cpu);
bool vm_watch_active(const struct vm *vm);
/* Some page-trapped watchpoint covers the page at gpa. */
bool vm_watch_covers(const struct vm *vm, uint64_t gpa);
/* Brings the memory slots in line with what page-trapped watchpoints and
 * breakpoints need. */
int vm_watch_apply_traps(struct vm *vm);
/* Lifts the trap of one page (gpa) or of every trapped page (gpa ~0) for
 * this vCPU's next single step; vm_watch_unlift() puts them back and
 * reports a write to watched bytes made meanwhile. */
int vm_watch_lift(struct vm_cpu *cpu, uint64_t gpa);
/* Decodes the instruction at rip and remembers a watchpoint it will hit,
 * for vm_watch_unlift() to report. */
void vm_watch_predict(struct vm_cpu *cpu);
bool vm_watch_unlift(struct vm_cpu *cpu, uint64_t *addr, enum vm_watch_type *type);
/* During a visit of a lifted watched page: whether the step just made
 * touched watched bytes (then vm_watch_unlift() reports it), and the
 * page's bytes and the prediction brought up to date for the next step. */
bool vm_watch_visit_hit(struct vm_cpu *cpu);
void vm_watch_visit_next(struct vm_cpu *cpu);

#endif
