/* stub/machine.h: the guest as the stub sees it: the VM and its image, the
 * vCPU thread, the console, and what happened last (the stop gdb asks for
 * with '?'). It connects the vCPU thread's events to whichever session is
 * attached, and applies kvmstub's policies (--on-hlt, the debug-exit port,
 * what happens to a running guest when gdb goes away). Loop thread only. */
#ifndef STUB_MACHINE_H
#define STUB_MACHINE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "console.h"
#include "options.h"
#include "vcpu.h"
#include "vm/image.h"
#include "vm/vm.h"

/* Signal numbers gdb knows (its own numbering equals Linux's for these). */
#define STUB_SIGINT 2
#define STUB_SIGILL 4
#define STUB_SIGTRAP 5
#define STUB_SIGBUS 7
#define STUB_SIGSEGV 11

enum stub_stop_reason {
    STUB_REASON_NONE,
    STUB_REASON_SWBREAK,
    STUB_REASON_HWBREAK,
    STUB_REASON_WATCH,
    STUB_REASON_RWATCH,
    STUB_REASON_AWATCH,
};

struct stub_stop {
    bool exited;       /* the guest ended: status */
    uint32_t status;
    int signal;        /* otherwise: the signal gdb is told */
    enum stub_stop_reason reason;
    uint64_t addr;     /* data address for watchpoints */
    char why[160];     /* for the gdb console and the log; may be empty */
};

struct stub_session;

struct stub_machine {
    const struct stub_options *opts;
    uv_loop_t *loop;
    struct vm *vm;
    struct vm_image image;
    struct stub_vcpu vcpu;
    struct stub_console console;
    struct stub_stop last;        /* valid while stopped */
    struct stub_session *session; /* attached gdb, or NULL */
    bool clear_at_stop;           /* gdb left a running guest: its breakpoints go */
    bool resume_at_stop;          /* ... and the guest runs on without them */
    bool attach_stop;             /* stopping a running guest for a new gdb */
    bool exit_requested;          /* kvmstub should end once output is flushed */
    int exit_status;
    uint64_t stops;
    int port; /* where the server listens, for monitor info */
    /* Server hooks, so the machine can ask for the loop to end. */
    void (*request_exit)(void *ctx);
    void *server_ctx;
};

/* Creates the VM, loads the image and sets the initial registers. On error
 * err holds a message for the user. */
int stub_machine_init(struct stub_machine *m, const struct stub_options *opts, uv_loop_t *loop,
                      char *err, size_t errlen, bool *image_problem);
void stub_machine_free(struct stub_machine *m);

bool stub_machine_running(const struct stub_machine *m);
/* Starts the guest (it must be stopped and not exited). */
int stub_machine_resume(struct stub_machine *m, const struct stub_run *run);
void stub_machine_interrupt(struct stub_machine *m);

/* A gdb connected / went away. Attaching to a running guest stops it; a
 * gdb that leaves takes its breakpoints and watchpoints with it. */
void stub_machine_attach(struct stub_machine *m, struct stub_session *s);
void stub_machine_detach(struct stub_machine *m, struct stub_session *s);

/* Back to the image's initial state, as after start-up. */
int stub_machine_reset(struct stub_machine *m, char *err, size_t errlen);
/* Ends kvmstub with status once pending output is written. */
void stub_machine_exit(struct stub_machine *m, int status);

/* The architecture gdb should be told about now, from the CPU mode. */
enum vm_arch stub_machine_arch(struct stub_machine *m, bool *real_mode);

#endif
