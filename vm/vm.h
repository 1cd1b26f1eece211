/* vm/vm.h: a KVM virtual machine for one bare-metal x86 guest.
 *
 * The thin layer over /dev/kvm: the VM and its RAM, vCPUs and their run
 * loop, CPU modes at entry, the register file, images, a few devices and
 * guest debugging. It knows nothing of RSP or event loops.
 *
 * Threads: a struct vm and its vCPUs belong to one thread at a time. The
 * thread that runs a vCPU (vm_cpu_run) owns everything while the guest runs;
 * when the guest is stopped, whoever holds the stopped VM (the stub's loop
 * thread) may read and write registers, memory and breakpoints. The hand-over
 * is the caller's business (a mutex gives the ordering). The exceptions,
 * safe from any thread at any time: vm_cpu_kick(), vm_output_pending(),
 * vm_serial_input() and reading vm->stats counters.
 *
 * Errors: functions return 0 or a negative errno. Where a user needs to know
 * more than the errno says (creating the VM, loading an image) the function
 * also writes a one-line explanation into err[errlen]. */
#ifndef VM_VM_H
#define VM_VM_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "debug.h"
#include "memory.h"
#include "regs.h"
#include "serial.h"

#define VM_DEFAULT_RAM (64ull << 20)
#define VM_MIN_RAM (1ull << 20)
#define VM_MAX_RAM (3ull << 30) /* below the 32-bit MMIO hole of a PC */

/* Ports of the tiny devices. */
#define VM_PORT_DEBUG_EXIT 0xf4u

enum vm_mode {
    VM_MODE_REAL,      /* 16-bit real mode */
    VM_MODE_PROTECTED, /* 32-bit protected mode, flat segments, no paging */
    VM_MODE_LONG,      /* 64-bit long mode, identity-mapped RAM */
};

enum vm_event_type {
    VM_EVENT_HALT,           /* hlt executed; rip is after it */
    VM_EVENT_SERIAL,         /* UART output is waiting: drain it and run again */
    VM_EVENT_DEBUG_EXIT,     /* a write to the debug-exit port: u.exit */
    VM_EVENT_BREAKPOINT,     /* u.bp; rip is at the breakpoint */
    VM_EVENT_STEP,           /* a single step finished */
    VM_EVENT_WATCH,          /* u.watch; the access has completed */
    VM_EVENT_INTERRUPTED,    /* vm_cpu_kick() */
    VM_EVENT_SHUTDOWN,       /* triple fault */
    VM_EVENT_ENTRY_FAILED,   /* KVM could not enter the guest: u.entry */
    VM_EVENT_INTERNAL_ERROR, /* KVM gave up (e.g. emulation failure): u.internal */
};

struct vm_event {
    enum vm_event_type type;
    union {
        struct {
            uint32_t status;
        } exit;
        struct {
            uint64_t addr; /* linear */
            bool hardware;
        } bp;
        struct {
            uint64_t addr; /* linear address of the watched data touched */
            enum vm_watch_type type;
        } watch;
        struct {
            uint64_t reason;
        } entry;
        struct {
            uint32_t exit_reason; /* KVM_EXIT_* */
            uint32_t suberror;
            uint32_t ndata;
            uint64_t data[4];
        } internal;
    } u;
};

enum vm_run_mode {
    VM_RUN_CONTINUE,
    VM_RUN_STEP, /* one instruction */
};

/* What the host's KVM offers; the *_probed fields come from running a tiny
 * guest once (vm/probe.c), since capability bits do not tell whether #BP
 * interception or DR7 really reach userspace on nested hosts. */
struct vm_caps {
    int api_version;
    bool readonly_mem;
    bool coalesced_pio;
    bool immediate_exit;
    bool xsave;
    uint32_t max_slots;
    bool probed;
    enum vm_bp_method sw_bp;      /* how software breakpoints are planted */
    bool hw_exec_bp;              /* DR0-DR3 execution breakpoints fire */
    bool hw_data_bp;              /* DR0-DR3 data breakpoints fire */
    bool ro_slot_traps_writes;    /* read-only slots turn writes into MMIO exits */
};

struct vm_stats {
    atomic_uint_fast64_t exits;
    atomic_uint_fast64_t io_exits;
    atomic_uint_fast64_t mmio_exits;
    atomic_uint_fast64_t hlt_exits;
    atomic_uint_fast64_t debug_exits;
    atomic_uint_fast64_t coalesced;
    atomic_uint_fast64_t watch_traps; /* accesses to trapped pages */
    atomic_uint_fast64_t watch_hits;
    atomic_uint_fast64_t breakpoint_hits;
    atomic_uint_fast64_t steps;
};

typedef void (*vm_log_fn)(void *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct vm;

struct vm_regcache {
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_fpu fpu; /* x87/SSE state, whichever ioctl carried it */
    uint64_t kernel_gs_base;
    unsigned valid; /* VM_RC_* groups read from KVM since the last run */
    unsigned dirty; /* groups to write back before the next run */
};

enum {
    VM_RC_REGS = 1u << 0,
    VM_RC_SREGS = 1u << 1,
    VM_RC_FPU = 1u << 2,
    VM_RC_MSRS = 1u << 3,
};

struct vm_cpu {
    struct vm *vm;
    unsigned index;
    int fd;
    struct kvm_run *run;
    struct kvm_coalesced_mmio_ring *ring; /* NULL without coalesced PIO */
    struct vm_regcache rc;
    /* The XSAVE image the x87/SSE registers travel in (KVM_SET_FPU alone
     * does not mark them in use, so some kernels run the guest with the
     * initial values instead); NULL where KVM has no XSAVE. */
    uint8_t *xsave;
    size_t xsave_size;
    bool halted;           /* executed hlt; stays halted until rip is set */
    bool needs_completion; /* KVM holds a PIO/MMIO instruction to finish */
    bool guest_debug_dirty;
    uint64_t guest_debug_control;
    uint64_t dr7;          /* what our hardware breakpoints put in DR7 */
    uint64_t step_over;    /* linear address of a breakpoint being stepped over */
    bool stepping_over;
    uint64_t last_output_ns; /* when buffered output started waiting */
    /* Kicking: see vm_cpu_kick(). */
    atomic_bool kick;
    atomic_bool thread_known;
    pthread_t thread;
};

struct vm {
    int kvm_fd;
    int vm_fd;
    size_t run_size;
    int coalesced_page; /* page offset of the ring in a vCPU mapping, or 0 */
    struct vm_mem mem;
    struct vm_cpu *cpus;
    unsigned ncpus;
    struct kvm_cpuid2 *cpuid;
    struct vm_serial serial;
    struct vm_debug debug;
    struct vm_caps caps;
    struct vm_stats stats;
    bool exited; /* the guest wrote the debug-exit port */
    uint32_t exit_status;
    vm_log_fn log;
    void *log_ctx;
    bool trace;
    uint8_t ports_seen[65536 / 8];
    uint64_t mmio_seen[64]; /* unbacked pages already logged (+1, 0 is empty) */
    size_t nmmio_seen;
};

struct vm_config {
    uint64_t ram_size;    /* 0: VM_DEFAULT_RAM */
    bool skip_probe;      /* trust defaults instead of probing (unit tests) */
    vm_log_fn log;        /* diagnostics, or NULL */
    void *log_ctx;
    bool trace;           /* log unhandled ports and MMIO */
};

/* Opens /dev/kvm, checks the API version and the capabilities kvmstub relies
 * on, creates the VM with its RAM and one vCPU, and probes the host's
 * debugging support. */
int vm_create(const struct vm_config *cfg, struct vm **out, char *err, size_t errlen);
void vm_destroy(struct vm *vm);

/* The guest's CPU mode now, from CR0, EFER and CS. */
enum vm_mode vm_cpu_mode(struct vm_cpu *cpu);

/* Runs the guest until something a debugger cares about happens. Device
 * accesses are handled inside. Returns 0 with *ev filled, or a negative
 * errno when KVM itself failed (the state is left for inspection). */
int vm_cpu_run(struct vm_cpu *cpu, enum vm_run_mode mode, struct vm_event *ev);

/* Handles the exit described by cpu->run as vm_cpu_run() does: returns 1
 * with *ev filled, 0 when the guest would just continue, or a negative
 * errno. Exposed so tests can feed it exits a host cannot produce. */
int vm_cpu_handle_exit(struct vm_cpu *cpu, enum vm_run_mode mode, struct vm_event *ev);

/* Makes the vCPU's current or next vm_cpu_run return VM_EVENT_INTERRUPTED
 * promptly. Any thread, any time; wake-ups are never lost. The thread that
 * runs the vCPU must have called vm_cpu_bind_thread() first. */
void vm_cpu_kick(struct vm_cpu *cpu);
int vm_cpu_bind_thread(struct vm_cpu *cpu);
/* Forgets a kick that has not been seen yet; the owner calls it when it
 * starts a new run so a kick meant for an earlier one cannot stop it. */
void vm_cpu_clear_kick(struct vm_cpu *cpu);

/* True when guest output is buffered where only a vCPU exit can collect it
 * (the coalesced ring or the UART buffer). Any thread. */
bool vm_output_pending(struct vm *vm);

/* Register cache control (vm/regs.c). */
int vm_regs_fetch(struct vm_cpu *cpu, unsigned groups);
int vm_regs_flush(struct vm_cpu *cpu);
void vm_regs_invalidate(struct vm_cpu *cpu);

/* Sets up the CPU for mode at entry (vm/mode.c). stack may be 0 to leave the
 * mode's default. Protected and long mode place tables in the boot area. */
struct vm_entry {
    enum vm_mode mode;
    uint64_t rip; /* linear */
    uint64_t rsp;
    uint32_t eax, ebx; /* multiboot hands these over */
};
int vm_enter_mode(struct vm *vm, struct vm_cpu *cpu, const struct vm_entry *entry);

/* The boot area: the top VM_BOOT_AREA_SIZE bytes of RAM, where kvmstub puts
 * its GDT, page tables and multiboot information. */
#define VM_BOOT_AREA_SIZE 0x10000u
uint64_t vm_boot_area(const struct vm *vm);

/* Linear addresses, as a debugger sees memory (vm/access.c): translated
 * page by page when paging is on, software breakpoints hidden on reads and
 * kept on writes. -EFAULT for an unmapped page or an address outside RAM;
 * *done (if not NULL) receives the bytes transferred before the fault. */
int vm_read_linear(struct vm_cpu *cpu, uint64_t addr, void *buf, size_t len, size_t *done);
int vm_write_linear(struct vm_cpu *cpu, uint64_t addr, const void *buf, size_t len, size_t *done);
int vm_translate(struct vm_cpu *cpu, uint64_t linear, uint64_t *gpa);

/* Back to power-on: RAM cleared, devices reset, breakpoints and watchpoints
 * removed. The caller loads the image again. */
int vm_reset(struct vm *vm);

/* Human-readable names, for logs and monitor output. */
const char *vm_mode_name(enum vm_mode mode);
const char *vm_event_name(enum vm_event_type type);

#endif
