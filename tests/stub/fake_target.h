/* tests/stub/fake_target.h: a target (stub/target.h) made of plain memory,
 * for driving sessions and the server packet by packet without KVM. Every
 * call is recorded; stops and output happen when the test says so. */
#ifndef FAKE_TARGET_H
#define FAKE_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stub/target.h"

#define FAKE_THREADS 8
#define FAKE_MEM 65536u

struct fake_bp {
    enum stub_bp_kind kind;
    uint64_t addr, len;
};

struct fake {
    unsigned nthreads;
    unsigned regsets; /* STUB_REGSET_* */
    enum vm_mode mode[FAKE_THREADS];
    bool halted[FAKE_THREADS];
    uint8_t regs[FAKE_THREADS][VM_REG_COUNT][16];
    uint8_t mem[FAKE_MEM]; /* linear 0..FAKE_MEM; reads past it fault */
    struct fake_bp bps[64];
    size_t nbps;
    unsigned hw_slots; /* hardware breakpoints left */
    int refuse_reg;    /* a register id whose writes fail with -EINVAL, or -1 */
    /* execution */
    bool running;
    int resume_error;
    unsigned resumes;
    struct stub_resume last_resume;
    unsigned interrupts;
    /* reverse execution (bs, bc); no_reverse: the target has no such op */
    bool no_reverse;
    unsigned reverses;
    enum stub_action last_reverse;
    unsigned reverse_tid;
    struct stub_stop last;
    /* the debugger */
    struct stub_target_listener listener;
    bool attached;
    unsigned attaches, detaches;
    bool paused;
    unsigned pause_calls;
    bool killed;
    unsigned ended, restarts;  /* extended-remote kill and run */
    bool extended;             /* the session asked for extended mode */
    bool detach_kept_stopped;
    bool last_phys;            /* the last memory access was physical */
    /* monitor */
    char monitor_cmd[256];
    unsigned monitor_tid;
};

void fake_init(struct fake *f, unsigned nthreads);
struct stub_target fake_target(struct fake *f);
/* The target stops: every thread, with this stop reported. */
void fake_stop(struct fake *f, const struct stub_stop *stop);
/* Console output while it runs. */
void fake_output(struct fake *f, const void *data, size_t n);
void fake_set_reg(struct fake *f, unsigned tid, enum vm_reg_id id, uint64_t v);
uint64_t fake_reg(const struct fake *f, unsigned tid, enum vm_reg_id id);

#endif
