/* tests/vm/vmtest.h: helpers for the vm suites, which run real guests. */
#ifndef VMTEST_H
#define VMTEST_H

#include "vm/image.h"
#include "vm/internal.h"

#include <stddef.h>

/* A VM with ram bytes (0: default), probed like kvmstub does. */
struct vm *vt_create(uint64_t ram);
/* Loads code as a flat binary at addr in mode, entered at addr. */
int vt_load(struct vm *vm, enum vm_mode mode, uint64_t addr, const void *code, size_t n);
/* Runs until a stop that is not serial output; the output seen on the way
 * is appended to out (NUL-terminated, capped at cap). A run that has not
 * stopped after VT_RUN_LIMIT_S is kicked and fails the test with where the
 * guest was: a lost exit shows as a failure, not as a suite that hangs until
 * CTest's timeout kills it with its output unflushed. */
#ifndef VT_RUN_LIMIT_S
#define VT_RUN_LIMIT_S 120
#endif
int vt_run(struct vm *vm, enum vm_run_mode mode, struct vm_event *ev, char *out, size_t cap);
/* Reads register id of vCPU 0. */
uint64_t vt_reg(struct vm *vm, enum vm_reg_id id);

#endif
