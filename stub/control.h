/* stub/control.h: the guest as kvmstub runs it: the VM and its image, a
 * thread per vCPU, the console, all-stop run control, the stop a debugger
 * asks for with '?', and kvmstub's policies (--on-hlt, the debug-exit port,
 * what a running guest does when gdb goes away). Events reach whoever is
 * attached through a struct stub_target_listener; stub/target_kvm.h turns a
 * machine into a struct stub_target. Loop thread only.
 *
 * All-stop: when one vCPU stops for a reason gdb must hear of, every other
 * running vCPU is interrupted, and the stop is reported once all are
 * stopped. A second vCPU that stopped for a reason of its own meanwhile
 * keeps its stop; the next resume reports it at once instead of running,
 * as gdb expects of an all-stop target.
 *
 * Stepping off a planted breakpoint takes its byte out of shared RAM for one
 * instruction. When other vCPUs are to run as well, the vCPU on the
 * breakpoint first steps alone; the others start only once the byte is back,
 * so none passes the breakpoint unnoticed. (Debug-register breakpoints need
 * none of this: each vCPU leaves only its own out of its DR7.) */
#ifndef STUB_CONTROL_H
#define STUB_CONTROL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "console.h"
#include "input.h"
#include "options.h"
#include "shutdown.h"
#include "target.h"
#include "until.h"
#include "vcpus.h"
#include "vm/image.h"
#include "vm/vm.h"

/* A stop as the machine keeps it: what gdb is told, and what caused it. */
struct stub_control_stop {
    struct stub_stop st;
    enum vm_event_type type;
    bool failed; /* KVM_RUN itself failed */
};

struct stub_snapstore;

/* What the all-stop control keeps of one gdb thread (the vCPU's own state
 * is the vm layer's, its channel stub/vcpus.h's). */
struct stub_control_thread {
    bool has_kept;                /* a stop kept for the next resume */
    struct stub_control_stop kept;
};

struct stub_control {
    const struct stub_options *opts;
    uv_loop_t *loop;
    struct vm *vm;
    struct vm_image image;
    struct vm_image initrd;       /* --initrd, read once (size 0: none) */
    struct vm_image_options image_opts;
    const struct vm_board_info *board; /* its rules (vm/vm.h) */
    bool reset_pending;           /* pc: a triple fault was reported; resuming ends */
    struct stub_vcpus *vcpus;
    unsigned ncpus;
    struct stub_console console;
    struct stub_input input; /* --serial -: stdin to the guest's UART */
    struct stub_stop last; /* valid while stopped */
    bool last_benign;      /* ... and the guest may simply run on from it */
    bool end_at_stop;      /* extended-remote kill of a running guest */
    /* All-stop bookkeeping for the run in progress. */
    bool have_primary;         /* the stop this run will report */
    struct stub_control_stop primary;
    struct stub_control_thread *threads; /* one per vCPU: thread id index + 1 */
    uv_timer_t report_timer;   /* reports a kept stop outside the resume call */
    unsigned kept_to_report;   /* ... this vCPU's */
    /* A vCPU stepping alone off a planted breakpoint before the others run
     * (see stub_control_resume), and the resume that follows. */
    bool private_step;
    unsigned private_index;
    struct stub_resume pending;
    bool interrupting; /* Ctrl-C or a stop of ours since the last resume */
    bool devices_held; /* every vCPU stopped: the disk workers hold still */
    /* The attached debugger. */
    struct stub_target_listener listener;
    bool attached;
    bool extended;       /* set by the attached gdb; see stub_control_set_extended */
    bool clear_at_stop;  /* gdb left a running guest: its breakpoints go */
    bool resume_at_stop; /* ... and the guest runs on without them */
    bool attach_stop;    /* stopping a running guest for a new gdb */
    struct stub_shutdown *shutdown;
    /* --until / monitor until: console texts that stop the guest. Once one
     * matched, output is held back (not shown, not in the --serial file)
     * until the guest is resumed: what the user sees ends at the match. */
    struct stub_until until;
    int until_matched;  /* index of the text, or -1 */
    bool holding;
    uint8_t *held;
    size_t held_len;
    uint64_t held_dropped;
    /* --timeout */
    uv_timer_t timeout_timer;
    bool timed_out;
    /* The last port I/O catch that stopped the guest, for monitor info. */
    char last_catch[200];
    uint64_t stops;
    int port; /* where the server listens, for monitor info */
    /* The run in progress repeats an earlier one (struct stub_resume's
     * replay): its output is dropped and its stop reported as it is. */
    bool replaying;
    struct stub_snapstore *snapstore;
    /* Why this machine cannot go backwards, when nothing above it records
     * (see stub/main.c): the refusal of reverse commands and of monitor
     * record start. */
    const char *reverse_refusal;
    const char *record_refusal;
};

/* Creates the VM, loads the image, sets the initial registers and starts the
 * vCPU threads. On error err holds a message for the user, and
 * *image_problem tells a bad image or option (exit status 2) from a host
 * problem (1). */
int stub_control_init(struct stub_control *m, const struct stub_options *opts, uv_loop_t *loop,
                      struct stub_shutdown *shutdown, char *err, size_t errlen,
                      bool *image_problem);
void stub_control_free(struct stub_control *m);

/* The vCPU of thread id tid (1-based), or NULL. */
struct vm_cpu *stub_control_cpu(struct stub_control *m, unsigned tid);

bool stub_control_running(const struct stub_control *m);
/* Starts the threads the actions name; -ESRCH once the guest ended, -EBUSY
 * while it runs, -EINVAL when no thread was told to run. A replay runs the
 * actions as they are (see struct stub_resume). */
int stub_control_resume(struct stub_control *m, const struct stub_resume *r);
/* Every thread resumes with the same action. */
int stub_control_resume_all(struct stub_control *m, enum stub_action action);
void stub_control_interrupt(struct stub_control *m);

/* A debugger connected / went away (see stub/target.h). */
void stub_control_attach(struct stub_control *m, const struct stub_target_listener *listener);
void stub_control_detach(struct stub_control *m, bool keep_stopped);
/* extended-remote's kill: the guest is over (gdb sees it exited) but
 * kvmstub stays for the next run. */
void stub_control_end_guest(struct stub_control *m);
/* extended-remote: the guest's end leaves kvmstub waiting for 'run'. */
void stub_control_set_extended(struct stub_control *m);

/* Back to the image's initial state, as after start-up. */
int stub_control_reset(struct stub_control *m, char *err, size_t errlen);
/* Adds a text to watch for / forgets them all (monitor until). */
int stub_control_until(struct stub_control *m, const char *text);
void stub_control_until_clear(struct stub_control *m);
/* Ends kvmstub with status once pending output is written. */
void stub_control_exit(struct stub_control *m, int status);

#endif
