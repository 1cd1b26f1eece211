/* vm/pagestore.h: incremental snapshots of guest RAM.
 *
 * A snapshot is a persistent radix tree (64 slots a node) over RAM's pages
 * whose leaves are immutable, reference-counted 4 KiB page copies; an
 * all-zero page or subtree is stored as nothing. Snapshots share every page
 * and subtree they have in common, so memory grows with what differs.
 *
 * The store keeps a "base": the snapshot RAM equalled at the last save or
 * load, plus the set of pages changed since (the caller reports them into
 * vm_pagestore_changed(), e.g. with vm_mem_dirty_collect()). Then
 *   save    copies only the changed pages (a changed page whose content
 *           equals the base's copy shares it) and builds the new tree by
 *           path copying; untouched subtrees are shared, not walked;
 *   load S  writes only the pages that can differ between RAM and S: the
 *           changed ones, and those whose copies differ between the base
 *           and S, found by walking both trees and skipping every subtree
 *           they share;
 *   delete  frees what no other snapshot (or the base) references.
 * Each costs O(pages involved × tree depth), plus a scan of the changed
 * bitmap (RAM/32 KiB words). With every page reported changed (no dirty
 * tracking) save and load look at all of RAM, and memory still grows only
 * with the pages that differ.
 *
 * Single-threaded: one owner (whoever holds the stopped VM). Handles stay
 * valid until deleted or the store is destroyed. */
#ifndef VM_PAGESTORE_H
#define VM_PAGESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm_pagestore;
struct vm_pagestore_snap;

/* What the store holds: page copies and tree nodes of every snapshot and
 * of the base, each counted once however many snapshots share it. */
struct vm_pagestore_usage {
    uint64_t bytes; /* heap bytes for pages and nodes */
    uint64_t pages;
    uint64_t nodes;
    uint64_t snaps;
    uint64_t pooled; /* freed pages kept for reuse (at most 4096), not in bytes */
};

/* What one save or load did. */
struct vm_pagestore_cost {
    uint64_t changed; /* pages reported changed since the last save/load */
    uint64_t visited; /* pages looked at */
    uint64_t copied;  /* save: new page copies; load: pages written to RAM */
    uint64_t shared;  /* save: changed pages equal to the base's copy */
};

/* Hides kvmstub's own bytes (planted breakpoints) in a copy of the page at
 * gpa, so that snapshots hold the guest's view. */
typedef void (*vm_pagestore_fixup_fn)(void *ctx, uint64_t gpa, uint8_t *page);

/* A store for RAM of ram_size bytes (whole pages). The base starts as all
 * zeros, with nothing changed: RAM that is not all zero must be reported
 * changed before the first save. */
int vm_pagestore_create(uint64_t ram_size, struct vm_pagestore **out);
/* Frees every snapshot. */
void vm_pagestore_destroy(struct vm_pagestore *ps);

uint64_t vm_pagestore_ram_size(const struct vm_pagestore *ps);
/* The changed-page bitmap (bit p%64 of word p/64 for page p, one bit per
 * page of ram_size), to OR into. Cleared by a successful save or load. */
uint64_t *vm_pagestore_changed(struct vm_pagestore *ps);
void vm_pagestore_mark(struct vm_pagestore *ps, uint64_t first_page, uint64_t count);

/* At most this many bytes held (0: no limit); a save that would go beyond
 * it fails with -ENOSPC and changes nothing, so that the caller can delete
 * old snapshots and retry. */
void vm_pagestore_set_limit(struct vm_pagestore *ps, uint64_t bytes);
/* An upper bound of the bytes the next save can add. */
uint64_t vm_pagestore_save_bound(const struct vm_pagestore *ps);

/* Snapshots RAM (ram_size bytes at ram). fixup may be NULL. The new
 * snapshot becomes the base. -ENOMEM, -ENOSPC: nothing changed. */
int vm_pagestore_save(struct vm_pagestore *ps, const uint8_t *ram, vm_pagestore_fixup_fn fixup,
                      void *fixup_ctx, struct vm_pagestore_snap **out,
                      struct vm_pagestore_cost *cost);
/* Makes RAM equal s; s becomes the base. Cannot fail. */
void vm_pagestore_load(struct vm_pagestore *ps, const struct vm_pagestore_snap *s, uint8_t *ram,
                       struct vm_pagestore_cost *cost);
void vm_pagestore_delete(struct vm_pagestore *ps, struct vm_pagestore_snap *s);

const struct vm_pagestore_usage *vm_pagestore_usage(const struct vm_pagestore *ps);
/* Bytes that deleting s would give back now. */
uint64_t vm_pagestore_snap_bytes(const struct vm_pagestore_snap *s);
/* Pages of s that are not all zero. */
uint64_t vm_pagestore_snap_pages(const struct vm_pagestore_snap *s);

/* Calls fn for every page of s that is not all zero, in ascending order;
 * stops at, and returns, the first non-zero return. */
int vm_pagestore_foreach(const struct vm_pagestore_snap *s,
                         int (*fn)(void *ctx, uint64_t page, const uint8_t *data), void *ctx);
/* The page's bytes in s, or NULL when it is all zero (or past RAM). */
const uint8_t *vm_pagestore_page(const struct vm_pagestore_snap *s, uint64_t page);

/* Building a snapshot from pages read elsewhere (a snapshot file): pages
 * must come in strictly ascending order, inside RAM (-EINVAL otherwise).
 * The result does not become the base until loaded. */
struct vm_pagestore_import;
int vm_pagestore_import_begin(struct vm_pagestore *ps, struct vm_pagestore_import **out);
int vm_pagestore_import_page(struct vm_pagestore_import *im, uint64_t page, const uint8_t *data);
struct vm_pagestore_snap *vm_pagestore_import_end(struct vm_pagestore_import *im);
void vm_pagestore_import_abort(struct vm_pagestore_import *im);

#endif
