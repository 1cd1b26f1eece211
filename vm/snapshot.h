/* vm/snapshot.h: whole-machine snapshots in memory.
 *
 * A snapshot holds guest RAM (an incremental page-store snapshot, see
 * pagestore.h), every vCPU's KVM state (snap_cpu.h), the VM-wide KVM state
 * the board has (snap_vm.h) and named opaque blobs the caller gives (device
 * and debugger state: kvmstub's UART, its own halted flag, ...). It does not
 * hold breakpoints, watchpoints or guest-debug settings: those belong to the
 * debugger session and stay as gdb set them.
 *
 * Opening turns on dirty-page tracking of the VM's RAM (vm_mem_track_dirty),
 * so that saves and loads cost what changed since the previous one. Where
 * the host's KVM cannot log dirty pages, vm_snapshot_incremental() is false
 * and vm_snapshot_note() says so: every save and load then examines all of
 * RAM (memory still grows only with the pages that differ).
 *
 * The caller holds the stopped VM (no vCPU inside KVM_RUN) for every call.
 *
 * Planted breakpoint bytes: saves keep the guest's bytes (cfg.hide, e.g.
 * vm_planted_hide() over the page). A load leaves a page alone when it cannot
 * differ, so a planted byte there survives, while a restored page comes
 * back with the guest's byte. Hence around a load the caller:
 *  - before: takes planted bytes out (RAM then holds the guest's view,
 *    which is what the store compares against);
 *  - after: plants them again, taking each original byte from RAM (and
 *    translating its address again: the page tables may have changed),
 *    applies the blobs (devices, kvmstub's halted flag, the debug-exit
 *    status) and marks the vCPUs' guest-debug state for re-applying.
 * vm_snapshot_load invalidates kvmstub's register cache itself; saves write
 * it back first (vm_regs_flush). */
#ifndef VM_SNAPSHOT_H
#define VM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snap_cpu.h"
#include "pagestore.h"
#include "snap_vm.h"

struct vm;

#define VM_SNAPSHOT_BLOB_NAME 32 /* bytes, with the NUL */
#define VM_SNAPSHOT_MAX_BLOBS 64
#define VM_SNAPSHOT_MAX_BLOB (16u << 20)

struct vm_snapshot_blob {
    char name[VM_SNAPSHOT_BLOB_NAME];
    uint8_t *data;
    size_t len;
};

struct vm_snapshot {
    struct vm_pagestore *ps;
    struct vm_pagestore_snap *ram;
    unsigned ncpus;
    struct vm_snap_cpu *cpus;
    struct vm_snap_vm vm;
    size_t nblobs;
    struct vm_snapshot_blob *blobs;
};

struct vm_snapshot_config {
    unsigned vm_parts;           /* VM_SNAP_VM_* the board created (bare: 0) */
    uint64_t limit;              /* bytes the page store may hold; 0: no limit */
    vm_pagestore_fixup_fn hide;  /* removes planted breakpoint bytes from a page copy */
    void *hide_ctx;
};

struct vm_snapshots {
    struct vm *vm;
    struct vm_pagestore *ps;
    struct vm_snap_cpu_ctx cpu;
    unsigned vm_parts;
    bool incremental;
    vm_pagestore_fixup_fn hide;
    void *hide_ctx;
    char note[200];
};

int vm_snapshot_open(struct vm *vm, const struct vm_snapshot_config *cfg, struct vm_snapshots **out,
                     char *err, size_t errlen);
/* Turns tracking off and frees the page store: free the snapshots first. */
void vm_snapshot_close(struct vm_snapshots *ss);
bool vm_snapshot_incremental(const struct vm_snapshots *ss);
/* Why snapshots are not incremental, or "". */
const char *vm_snapshot_note(const struct vm_snapshots *ss);

/* Saves the machine; blobs are copied. cost (may be NULL) receives what the
 * RAM part did. -EBUSY when a vCPU holds a half-done PIO/MMIO instruction
 * (run it with immediate_exit first), -ENOSPC when the store is at its
 * limit (delete snapshots and retry). */
int vm_snapshot_save(struct vm_snapshots *ss, const struct vm_snapshot_blob *blobs, size_t nblobs,
                     struct vm_snapshot **out, struct vm_pagestore_cost *cost, char *err,
                     size_t errlen);
/* 0 when s fits this machine (RAM size and store, vCPU count, state parts,
 * XSAVE size, MSRs); else -EINVAL with the reason. Touches nothing. */
int vm_snapshot_check(const struct vm_snapshots *ss, const struct vm_snapshot *s, char *err,
                      size_t errlen);
/* Checks s, then restores RAM, VM state and vCPUs. Nothing is touched when
 * the check fails; a KVM refusal after that is reported with the state
 * partly applied (that would be a KVM bug, the check covers what can be
 * checked). */
int vm_snapshot_load(struct vm_snapshots *ss, const struct vm_snapshot *s,
                     struct vm_pagestore_cost *cost, char *err, size_t errlen);
void vm_snapshot_free(struct vm_snapshot *s);
/* Bytes s holds besides its RAM pages (vCPU and VM state, blobs): what a
 * bound on many snapshots must count on top of the page store's usage. */
size_t vm_snapshot_state_bytes(const struct vm_snapshot *s);
/* The blob named name, or NULL. */
const struct vm_snapshot_blob *vm_snapshot_blob(const struct vm_snapshot *s, const char *name);

#endif
