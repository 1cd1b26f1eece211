/* vm/vm.h: a KVM virtual machine for an x86 guest, as a debugger drives it.
 *
 * The thin layer over /dev/kvm: the VM and its RAM, vCPUs and their run
 * loop, a board (memory layout, devices on a bus, interrupt lines, CPU
 * set-up), the register file (vm/regs.h), memory as a debugger sees it,
 * breakpoints and watchpoints (vm/debug.h), images (vm/image.h). It knows
 * nothing of RSP or event loops. The structures are internal (vm/internal.h).
 *
 * Threads: a vCPU runs only on the thread that calls vm_cpu_run() on it,
 * which owns that vCPU while it runs. While every vCPU is stopped, one
 * thread (the stub's loop thread) owns the whole VM: registers, memory,
 * breakpoints, reset. The hand-over is the caller's business (a mutex gives
 * the ordering). Safe from any thread at any time: vm_cpu_kick(),
 * vm_output_pending(), vm_console_input() and vm_stats().
 *
 * Errors: functions return 0 or a negative errno. Where a user needs to know
 * more than the errno says (creating the VM, loading an image) the function
 * also writes a one-line explanation into err[errlen]. */
#ifndef VM_VM_H
#define VM_VM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "debug.h"
#include "regs.h"

#define VM_DEFAULT_RAM (64ull << 20)
#define VM_MIN_RAM (1ull << 20)
#define VM_MAX_RAM (3ull << 30) /* below the 32-bit MMIO hole of a PC */
#define VM_MAX_CPUS 64u

struct vm;
struct vm_cpu;

enum vm_board_kind {
    VM_BOARD_BARE, /* no interrupt controller, a polled UART, debug-exit */
    VM_BOARD_PC,   /* a PC: KVM's PICs, IOAPIC, LAPICs and PIT, a 16550A on
                    * IRQ 4, an i8042, a CMOS clock, debug-exit (board_pc.c) */
};

/* A board as the program above sees it: found by name (--machine) or as
 * the default for an image, with the rules in which boards differ, so the
 * program keeps no list of boards and no rule of one. */
struct vm_board_info {
    const char *name;
    enum vm_board_kind kind;
    /* KVM's interrupt controllers: hlt waits in KVM for an interrupt and
     * never reaches the program, and interrupts come when the host's
     * timers say, so a replay cannot repeat a recorded run. */
    bool irqchip;
    /* A triple fault resets the machine, as a PC's does. */
    bool resets_on_shutdown;
    /* The board a Linux bzImage gets when none is named. */
    bool boots_linux;
    /* RAM when none is asked for (0: VM_DEFAULT_RAM). */
    uint64_t default_ram;
};
/* The board of that name, or NULL. */
const struct vm_board_info *vm_board_find(const char *name);
/* The board an image gets when none is named: the Linux board for a Linux
 * kernel, else the first board. */
const struct vm_board_info *vm_board_default(bool linux_kernel);
/* Every board's name into out, for a message: "bare or pc". */
void vm_board_names(char *out, size_t len);

enum vm_event_type {
    VM_EVENT_HALT,           /* hlt executed; rip is after it */
    VM_EVENT_SERIAL,         /* console output is waiting: collect it and run again */
    VM_EVENT_DEBUG_EXIT,     /* a write to the debug-exit port: u.exit */
    VM_EVENT_BREAKPOINT,     /* u.bp; rip is at the breakpoint */
    VM_EVENT_STEP,           /* a single step finished */
    VM_EVENT_WATCH,          /* u.watch; the access has completed */
    VM_EVENT_INTERRUPTED,    /* vm_cpu_kick() */
    VM_EVENT_SHUTDOWN,       /* triple fault */
    VM_EVENT_RESET,          /* the guest asked for a reset (pc: i8042 pulse): the
                              * machine is over, as with qemu -no-reboot */
    VM_EVENT_ENTRY_FAILED,   /* KVM could not enter the guest: u.entry */
    VM_EVENT_INTERNAL_ERROR, /* KVM gave up (e.g. emulation failure): u.internal */
    VM_EVENT_IO,             /* a catch on port I/O (vm/debug.h): u.io; the access is done */
};

/* What an internal error was about, as far as kvmstub can tell. */
enum vm_internal_cause {
    VM_INTERNAL_OTHER,          /* not an emulation failure, or nothing known */
    VM_INTERNAL_CANNOT_EMULATE, /* an instruction on RAM, touching RAM */
    VM_INTERNAL_FETCH_NOT_RAM,  /* code at a physical address outside RAM */
    VM_INTERNAL_ACCESS_NOT_RAM, /* an operand outside RAM */
};

struct vm_event {
    enum vm_event_type type;
    union {
        struct {
            uint32_t status;
        } exit;
        struct {
            uint64_t addr; /* linear; ~0 for an int3 that is not ours */
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
            uint16_t port;
            bool out;
            uint8_t size;
            uint32_t value;
            unsigned catch_id;
        } io;
        struct {
            uint32_t exit_reason; /* KVM_EXIT_* */
            uint32_t suberror;
            uint32_t ndata;
            uint64_t data[4];
            enum vm_internal_cause cause;
            uint64_t gpa;      /* VM_INTERNAL_*_NOT_RAM: the address */
            uint8_t insn[15];  /* the instruction at rip, for vm_disasm() */
            uint8_t insn_len;  /* 0: none known */
            bool insn_from_kvm; /* KVM gave the bytes (else read from RAM) */
            uint8_t code_bits; /* 16, 32 or 64 */
        } internal;
    } u;
};

enum vm_run_mode {
    VM_RUN_CONTINUE,
    VM_RUN_STEP, /* one instruction */
};

/* The CPU modes the host probe runs its checks in. */
enum vm_probe_mode { VM_PROBE_REAL, VM_PROBE_PROTECTED, VM_PROBE_LONG, VM_PROBE_MODES };

struct vm_probe_result {
    /* VM_BP_INT3, VM_BP_INT3_INTERNAL_ERROR, or VM_BP_HLT: not delivered */
    enum vm_bp_method sw_bp;
    bool hw_exec_bp;
    bool hw_data_bp;
};

/* What the host's KVM offers; the probed fields come from running a tiny
 * guest once (vm/probe.c), since capability bits do not tell whether #BP
 * interception or DR7 really reach userspace on nested hosts. */

struct vm_caps {
    int api_version;
    bool readonly_mem;
    bool coalesced_pio;
    bool immediate_exit;
    bool xsave;
    uint32_t max_slots;
    uint32_t guest_debug_flags;   /* KVM_CAP_SET_GUEST_DEBUG2, 0 if absent */
    bool probed;
    /* What the probe found in each mode (indexed by enum vm_probe_mode);
     * the three fields below are what works in all of them. */
    struct vm_probe_result mode[VM_PROBE_MODES];
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
    atomic_uint_fast64_t reinjected; /* int3/#DB given back to the guest */
};

/* A raw disk image the guest sees as a virtio block device (pc board
 * only): PCI (00:01.0 onwards, INTx through the MP table) or virtio-mmio
 * (announced on Linux's command line, for kernels with
 * CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES). Linux names them vda, vdb, ... in
 * the order given (each transport probes in order; PCI ones come first). */
#define VM_MAX_DRIVES 8u
enum vm_drive_transport { VM_DRIVE_AUTO, VM_DRIVE_PCI, VM_DRIVE_MMIO };

struct vm_drive {
    const char *path;
    bool readonly;
    enum vm_drive_transport transport; /* AUTO: PCI */
};

typedef void (*vm_log_fn)(void *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct vm_config {
    uint64_t ram_size;    /* 0: VM_DEFAULT_RAM */
    unsigned ncpus;       /* 0: 1 */
    enum vm_board_kind board;
    bool skip_probe;      /* trust defaults instead of probing (unit tests) */
    vm_log_fn log;        /* diagnostics, or NULL */
    void *log_ctx;
    bool trace;           /* log unhandled ports and MMIO */
    /* Behave as if KVM lacked KVM_GUESTDBG_BLOCKIRQ (to exercise the
     * fallback that keeps steps out of interrupt handlers without it). */
    bool no_blockirq;
    /* Disks (vm_disks_check says which are refused), served each by a
     * thread of its own. */
    const struct vm_drive *drives;
    unsigned ndrives;
};

/* Opens /dev/kvm, checks the API version and the capabilities kvmstub relies
 * on, creates the VM with its RAM, board and vCPUs, and probes the host's
 * debugging support. */
int vm_create(const struct vm_config *cfg, struct vm **out, char *err, size_t errlen);
/* What vm_create() checks first: whether the board can be built with ncpus
 * CPUs (the bare board has one). 0, or -EINVAL with what to do instead in
 * err. Touches nothing: a caller may refuse a configuration before doing
 * anything else. */
int vm_board_check(enum vm_board_kind board, unsigned ncpus, char *err, size_t errlen);
void vm_destroy(struct vm *vm);
/* What vm_create() refuses about drives, checked before anything is
 * created: too many, on a board without them, or a file that cannot be a
 * disk (missing, unreadable, not a regular file, not whole 512-byte
 * sectors, locked by another process): a negative errno and one line in
 * err saying which file and what to do. */
int vm_disks_check(enum vm_board_kind board, const struct vm_drive *drives, unsigned ndrives,
                    char *err, size_t errlen);

unsigned vm_ncpus(const struct vm *vm);
struct vm_cpu *vm_cpu(struct vm *vm, unsigned index);
const struct vm_caps *vm_caps(const struct vm *vm);
const struct vm_stats *vm_stats(const struct vm *vm);
uint64_t vm_ram_size(const struct vm *vm);
/* The XSAVE components whose registers vm_reg_read() can give (XCR0 bits:
 * 1 << 2 AVX, 0xe0 AVX-512). */
uint64_t vm_xsave_features(const struct vm *vm);
const char *vm_board_name(const struct vm *vm);
/* The board has KVM's in-kernel interrupt controllers: hlt waits in the
 * kernel for an interrupt instead of exiting to kvmstub. */
bool vm_has_irqchip(const struct vm *vm);

/* Runs the guest until something a debugger cares about happens. Device
 * accesses are handled inside. Returns 0 with *ev filled, or a negative
 * errno when KVM itself failed (the state is left for inspection). */
int vm_cpu_run(struct vm_cpu *cpu, enum vm_run_mode mode, struct vm_event *ev);

/* Makes the vCPU's current or next vm_cpu_run return VM_EVENT_INTERRUPTED
 * promptly. Any thread, any time; wake-ups are never lost. The thread that
 * runs the vCPU must have called vm_cpu_bind_thread() first. */
void vm_cpu_kick(struct vm_cpu *cpu);
int vm_cpu_bind_thread(struct vm_cpu *cpu);
/* Forgets a kick that has not been seen yet; the owner calls it when it
 * starts a new run so a kick meant for an earlier one cannot stop it. */
void vm_cpu_clear_kick(struct vm_cpu *cpu);
/* The linear address of the next instruction (CS base + rip outside long
 * mode). */
int vm_cpu_linear_pc(struct vm_cpu *cpu, uint64_t *pc);
/* The segment, control and descriptor-table registers as KVM holds them
 * (for decoding them in full; a debugger's view is vm/regs.h). */
int vm_cpu_sregs(struct vm_cpu *cpu, struct kvm_sregs *out);
/* The vCPU executed hlt and nothing has woken it (on a board with an
 * irqchip: KVM holds it halted, waiting for an interrupt). */
bool vm_cpu_halted(const struct vm_cpu *cpu);
/* Where a stopped vCPU stands, from KVM_GET_MP_STATE on a board with an
 * irqchip: an application processor waits for INIT, then for a startup
 * IPI, before it runs at all. */
enum vm_cpu_wait { VM_CPU_RUNNABLE, VM_CPU_HALTED, VM_CPU_WAIT_INIT, VM_CPU_WAIT_SIPI };
enum vm_cpu_wait vm_cpu_wait(const struct vm_cpu *cpu);
/* The vCPU sits on a breakpoint planted in RAM: resuming it takes the byte
 * out for one step, so no other vCPU may run meanwhile (it would pass the
 * breakpoint unnoticed). */
bool vm_cpu_on_planted_breakpoint(struct vm_cpu *cpu);

/* The console (the board's UART): what the guest wrote, and input for it.
 * vm_console_take() is for the thread that owns the vCPUs' output: call it
 * after every vm_cpu_run(). vm_output_pending() is true when output waits
 * where only a vCPU exit can collect it (KVM's coalesced ring or the UART
 * buffer). */
size_t vm_console_take(struct vm *vm, uint8_t *out, size_t max);
/* Collects what KVM's coalesced ring still holds into the console, for
 * the owner of a stopped VM (every vCPU stopped) before the guest ends:
 * nothing the guest wrote is lost after its last exit. */
void vm_collect_output(struct vm *vm);
size_t vm_console_input(struct vm *vm, const void *data, size_t n);
bool vm_output_pending(struct vm *vm);

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
 * page by page with this vCPU's page tables when paging is on, software
 * breakpoints hidden on reads and kept on writes. -EFAULT for an unmapped
 * page or an address outside RAM; *done (if not NULL) receives the bytes
 * transferred before the fault. */
int vm_read_linear(struct vm_cpu *cpu, uint64_t addr, void *buf, size_t len, size_t *done);
int vm_write_linear(struct vm_cpu *cpu, uint64_t addr, const void *buf, size_t len, size_t *done);
int vm_translate(struct vm_cpu *cpu, uint64_t linear, uint64_t *gpa);
/* Guest-physical addresses, the same way (page tables, DMA buffers). */
int vm_read_physical(struct vm *vm, uint64_t gpa, void *buf, size_t len, size_t *done);
int vm_write_physical(struct vm *vm, uint64_t gpa, const void *buf, size_t len, size_t *done);

/* Device threads that serve the guest (disk workers) hold still after
 * the request in hand, or go on: for a debugger's stop, during which
 * guest RAM and the rings must not change. Counted: each hold needs its
 * go-on. Any thread; never from a device thread. */
void vm_devices_hold(struct vm *vm, bool hold);
/* The drives (--drive) and how their notifications and interrupts reach
 * KVM, one paragraph each, into buf (cut to len); the length snprintf
 * gives. Any thread. */
int vm_devices_describe_disks(struct vm *vm, char *buf, size_t len);

/* Back to power-on: RAM cleared, devices reset, breakpoints and watchpoints
 * removed. The caller loads the image again. */
int vm_reset(struct vm *vm);

/* Human-readable names, for logs and monitor output. */
const char *vm_event_name(enum vm_event_type type);

#endif
