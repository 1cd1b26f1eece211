/* stub/snapstore.h: whole-machine snapshots as kvmstub's user sees them:
 * checkpoints of the stopped machine (vm/snapshot.h plus kvmstub's own
 * state: the stop gdb is told about), the named ones of `monitor snapshot`,
 * files (`monitor snapshot write`, `kvmstub --restore`).
 *
 * One store per machine, shared with reverse execution (stub/record.h):
 * it is opened at first use, which turns on dirty-page logging from then
 * on. Loop thread only, machine stopped. Errors: negative errno with a
 * message for the user in err. */
#ifndef STUB_SNAPSTORE_H
#define STUB_SNAPSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "text.h"
#include "vm/snapshot.h"

struct stub_control;
struct stub_snapstore;

int stub_snapstore_create(struct stub_snapstore **out, struct stub_control *m);
void stub_snapstore_free(struct stub_snapstore *s);

/* The shared store, opened now if it was not. */
int stub_snapstore_store(struct stub_snapstore *s, struct vm_snapshots **out, char *err,
                         size_t errlen);
/* A checkpoint of the machine as it is (stopped). */
int stub_snapstore_take(struct stub_snapstore *s, struct vm_snapshot **out, char *err,
                        size_t errlen);
/* Puts the machine back to a checkpoint: nothing is changed when it is
 * refused. Breakpoints and watchpoints stay as gdb set them. */
int stub_snapstore_apply(struct stub_snapstore *s, const struct vm_snapshot *snap, char *err,
                         size_t errlen);

/* After `monitor snapshot load`: fn(ctx) (the record layer starts its
 * history again there). */
void stub_snapstore_on_load(struct stub_snapstore *s, void (*fn)(void *ctx), void *ctx);

/* --snapshot-memory: what the store (named snapshots and history's
 * checkpoints) may hold; a named save past it is refused. */
#define STUB_SNAPSTORE_DEFAULT_LIMIT (4ull << 30)
void stub_snapstore_set_limit(struct stub_snapstore *s, uint64_t bytes);

/* --snapshot-dir: the directory 'snapshot write NAME' writes in (see
 * stub/hostfile.h); until it is set, the command is refused. */
int stub_snapstore_set_dir(struct stub_snapstore *s, const char *dir, char *err, size_t errlen);

/* `monitor snapshot ARGS`: save NAME, load NAME, list, delete NAME,
 * write FILE. */
int stub_snapstore_command(struct stub_snapstore *s, const char *args, struct stub_text *t);

/* --restore FILE, after the VM was created with the file's RAM size and
 * vCPUs (stub_snapstore_peek). */
int stub_snapstore_restore(struct stub_snapstore *s, const char *path, char *err, size_t errlen);

/* The RAM size, vCPU count and image path a snapshot file records,
 * checked against this host first. */
struct stub_snapstore_file_info {
    uint64_t ram_size;
    unsigned ncpus;
    char image[4097];
};
int stub_snapstore_peek(const char *path, struct stub_snapstore_file_info *info, char *err,
                        size_t errlen);

#endif
