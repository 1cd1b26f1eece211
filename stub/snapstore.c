/* Snapshots for the user and for reverse execution (snapstore.h). */
#include "snapstore.h"

#include "hostfile.h"
#include "log.h"
#include "control.h"
#include "vm/checksum.h"
#include "vm/snapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_NAMED 64
#define NAME_MAX_LEN 63

struct named {
    char name[NAME_MAX_LEN + 1];
    struct vm_snapshot *snap;
    uint64_t stops; /* the machine's stop count when saved, for list */
};

struct stub_snapstore {
    struct stub_control *m;
    struct vm_snapshots *store;
    struct named named[MAX_NAMED];
    size_t nnamed;
    uint64_t limit;  /* --snapshot-memory: bytes the store may hold before a save is refused */
    int dirfd;       /* --snapshot-dir, or -1: no host file may be written */
    char *dir;       /* its name, for messages */
    void (*on_load)(void *ctx);
    void *on_load_ctx;
};

int stub_snapstore_create(struct stub_snapstore **out, struct stub_control *m)
{
    struct stub_snapstore *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->m = m;
    s->dirfd = -1;
    s->limit = STUB_SNAPSTORE_DEFAULT_LIMIT;
    *out = s;
    return 0;
}

void stub_snapstore_on_load(struct stub_snapstore *s, void (*fn)(void *ctx), void *ctx)
{
    s->on_load = fn;
    s->on_load_ctx = ctx;
}

void stub_snapstore_set_limit(struct stub_snapstore *s, uint64_t bytes)
{
    s->limit = bytes;
}

int stub_snapstore_set_dir(struct stub_snapstore *s, const char *dir, char *err, size_t errlen)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "--snapshot-dir %s: %s; give an existing directory", dir,
                 strerror(e));
        return -e;
    }
    char *copy = strdup(dir);
    if (!copy) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (s->dirfd >= 0)
        close(s->dirfd);
    free(s->dir);
    s->dirfd = fd;
    s->dir = copy;
    return 0;
}

void stub_snapstore_free(struct stub_snapstore *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nnamed; i++)
        vm_snapshot_free(s->named[i].snap);
    vm_snapshot_close(s->store);
    if (s->dirfd >= 0)
        close(s->dirfd);
    free(s->dir);
    free(s);
}

int stub_snapstore_store(struct stub_snapstore *s, struct vm_snapshots **out, char *err,
                         size_t errlen)
{
    if (!s->store) {
        int r = vm_snapshot_open(s->m->vm, &(struct vm_snapshot_config){0}, &s->store, err,
                                 errlen);
        if (r)
            return r;
        if (!vm_snapshot_incremental(s->store))
            stub_log("%s", vm_snapshot_note(s->store));
    }
    *out = s->store;
    return 0;
}

/* kvmstub's own part, the blob "stub": the stop gdb is told about with '?'.
 * Layout: version 1, tid (4), exited (1), status (4), signal (4), reason
 * (4), addr (8), benign (1), why (160, NUL-terminated). */
#define STUB_BLOB_LEN (1 + 4 + 1 + 4 + 4 + 4 + 8 + 1 + 160)

static void stub_blob(const struct stub_control *m, uint8_t *b)
{
    const struct stub_stop *st = &m->last;
    uint32_t reason = st->reason;
    int32_t signal = st->signal;
    b[0] = 1;
    memcpy(b + 1, &st->tid, 4);
    b[5] = st->exited;
    memcpy(b + 6, &st->status, 4);
    memcpy(b + 10, &signal, 4);
    memcpy(b + 14, &reason, 4);
    memcpy(b + 18, &st->addr, 8);
    b[26] = m->last_benign;
    memcpy(b + 27, st->why, 160);
    b[27 + 159] = 0;
}

static int stub_unblob(const struct stub_control *m, const struct vm_snapshot_blob *bl,
                       struct stub_stop *st, bool *benign)
{
    if (!bl || bl->len != STUB_BLOB_LEN || bl->data[0] != 1)
        return -EINVAL;
    const uint8_t *b = bl->data;
    uint32_t reason;
    int32_t signal;
    memset(st, 0, sizeof(*st));
    memcpy(&st->tid, b + 1, 4);
    st->exited = b[5];
    memcpy(&st->status, b + 6, 4);
    memcpy(&signal, b + 10, 4);
    memcpy(&reason, b + 14, 4);
    memcpy(&st->addr, b + 18, 8);
    *benign = b[26];
    if (st->tid < 1 || st->tid > m->ncpus || b[5] > 1 || b[26] > 1 || signal < 0 ||
        signal > 255 || reason > STUB_REASON_HISTORY_BEGIN || b[27 + 159] != 0)
        return -EINVAL;
    st->signal = signal;
    st->reason = (enum stub_stop_reason)reason;
    memcpy(st->why, b + 27, 160);
    return 0;
}

int stub_snapstore_take(struct stub_snapstore *s, struct vm_snapshot **out, char *err,
                        size_t errlen)
{
    struct vm_snapshots *store;
    int r = stub_snapstore_store(s, &store, err, errlen);
    if (r)
        return r;
    struct vm_snapshot_blob b = {.name = "stub", .len = STUB_BLOB_LEN};
    uint8_t data[STUB_BLOB_LEN];
    stub_blob(s->m, data);
    b.data = data;
    return vm_snapshot_save(store, &b, 1, out, NULL, err, errlen);
}

int stub_snapstore_apply(struct stub_snapstore *s, const struct vm_snapshot *snap, char *err,
                         size_t errlen)
{
    struct vm_snapshots *store;
    int r = stub_snapstore_store(s, &store, err, errlen);
    if (r)
        return r;
    struct stub_stop st;
    bool benign;
    if (stub_unblob(s->m, vm_snapshot_blob(snap, "stub"), &st, &benign)) {
        snprintf(err, errlen, "the snapshot has no kvmstub state, or a malformed one");
        return -EINVAL;
    }
    if ((r = vm_snapshot_load(store, snap, NULL, err, errlen)))
        return r;
    s->m->last = st;
    s->m->last_benign = benign;
    return 0;
}

/* ---- monitor snapshot ---- */

static struct named *find(struct stub_snapstore *s, const char *name)
{
    for (size_t i = 0; i < s->nnamed; i++)
        if (strcmp(s->named[i].name, name) == 0)
            return &s->named[i];
    return NULL;
}

static bool good_name(const char *name, struct stub_text *t)
{
    size_t n = strlen(name);
    bool ok = n > 0 && n <= NAME_MAX_LEN;
    for (size_t i = 0; ok && i < n; i++)
        ok = name[i] > ' ' && name[i] < 0x7f;
    if (!ok)
        stub_text_add(t, "a snapshot name is 1-%d printable characters without spaces\n",
                      NAME_MAX_LEN);
    return ok;
}

static int c_save(struct stub_snapstore *s, const char *name, struct stub_text *t)
{
    if (!good_name(name, t))
        return -EINVAL;
    struct named *n = find(s, name);
    if (!n && s->nnamed == MAX_NAMED) {
        stub_text_add(t, "there are %d snapshots already: delete one first\n", MAX_NAMED);
        return -ENOSPC;
    }
    char err[256];
    struct vm_snapshot *snap;
    int r = stub_snapstore_take(s, &snap, err, sizeof(err));
    if (r) {
        stub_text_add(t, "cannot save snapshot %s: %s\n", name, err);
        return r;
    }
    /* The new one is taken before it can be measured; it is given back at
     * once when the store (named snapshots and history's checkpoints, which
     * share pages) would hold more than the limit. */
    uint64_t held = s->store ? vm_pagestore_usage(s->store->ps)->bytes : 0;
    if (held > s->limit) {
        vm_snapshot_free(snap);
        stub_text_add(t, "snapshot %s not kept: the snapshot store would hold %llu KiB, over "
                         "the %llu KiB of --snapshot-memory; delete a snapshot first\n",
                      name, (unsigned long long)(held >> 10),
                      (unsigned long long)(s->limit >> 10));
        return -ENOSPC;
    }
    if (n) {
        vm_snapshot_free(n->snap);
    } else {
        n = &s->named[s->nnamed++];
        snprintf(n->name, sizeof(n->name), "%s", name);
    }
    n->snap = snap;
    n->stops = s->m->stops;
    stub_text_add(t, "snapshot %s saved (%llu KiB of RAM of its own)\n", name,
                  (unsigned long long)(vm_pagestore_snap_bytes(snap->ram) >> 10));
    return 0;
}

static int c_load(struct stub_snapstore *s, const char *name, struct stub_text *t)
{
    struct named *n = find(s, name);
    if (!n) {
        stub_text_add(t, "no snapshot named %s ('monitor snapshot list' shows them)\n", name);
        return -ENOENT;
    }
    char err[256];
    int r = stub_snapstore_apply(s, n->snap, err, sizeof(err));
    if (r) {
        stub_text_add(t, "cannot load snapshot %s: %s\n", name, err);
        return r;
    }
    if (s->on_load)
        s->on_load(s->on_load_ctx);
    stub_text_add(t, "snapshot %s loaded; gdb's view of registers and memory is stale: "
                     "'flushregs' (or 'maint flush register-cache') refreshes it\n",
                  name);
    return 0;
}

static int c_delete(struct stub_snapstore *s, const char *name, struct stub_text *t)
{
    struct named *n = find(s, name);
    if (!n) {
        stub_text_add(t, "no snapshot named %s\n", name);
        return -ENOENT;
    }
    vm_snapshot_free(n->snap);
    *n = s->named[--s->nnamed];
    stub_text_add(t, "snapshot %s deleted\n", name);
    return 0;
}

static void c_list(struct stub_snapstore *s, struct stub_text *t)
{
    if (!s->nnamed)
        stub_text_add(t, "no snapshots ('monitor snapshot save NAME' takes one)\n");
    for (size_t i = 0; i < s->nnamed; i++) {
        const struct vm_snapshot *snap = s->named[i].snap;
        stub_text_add(t, "  %-20s %llu pages in use, %llu KiB of its own, after stop %llu\n",
                      s->named[i].name,
                      (unsigned long long)vm_pagestore_snap_pages(snap->ram),
                      (unsigned long long)(vm_pagestore_snap_bytes(snap->ram) >> 10),
                      (unsigned long long)s->named[i].stops);
    }
    if (s->store) {
        const struct vm_pagestore_usage *u = vm_pagestore_usage(s->store->ps);
        stub_text_add(t, "the store holds %llu KiB (%llu pages) for these and reverse "
                         "execution's checkpoints\n",
                      (unsigned long long)(u->bytes >> 10), (unsigned long long)u->pages);
    }
}

static int c_write(struct stub_snapstore *s, const char *name, struct stub_text *t)
{
    if (!*name) {
        stub_text_add(t, "usage: monitor snapshot write NAME (a file in --snapshot-dir)\n");
        return -EINVAL;
    }
    if (s->dirfd < 0) {
        stub_text_add(t, "refused: kvmstub writes host files only in a directory its user "
                         "names; start it with --snapshot-dir DIR to let 'monitor snapshot "
                         "write NAME' create DIR/NAME\n");
        return -EPERM;
    }
    char err[512];
    int parent;
    const char *leaf;
    bool exists;
    int r = stub_hostfile_resolve(s->dirfd, name, &parent, &leaf, &exists, err, sizeof(err));
    if (r) {
        stub_text_add(t, "refused: %s\n", err);
        return r;
    }
    struct vm_snapshot *snap = NULL;
    r = stub_snapstore_take(s, &snap, err, sizeof(err));
    struct vm_snapfile_host host;
    if (!r && (r = vm_snapfile_host_of(s->m->vm, &host)))
        snprintf(err, sizeof(err), "cannot identify this host's CPU: %s", strerror(-r));
    if (!r) {
        const struct vm_image *img = &s->m->image;
        uint32_t crc = img->data ? vm_checksum_crc32c(0, img->data, img->size) : 0;
        uint8_t hash[4];
        memcpy(hash, &crc, 4);
        r = vm_snapfile_write_at(parent, leaf, exists, snap, &host, img->name ? img->name : "",
                                 hash, img->data ? 4 : 0, err, sizeof(err));
    }
    vm_snapshot_free(snap);
    stub_hostfile_close_parent(s->dirfd, parent);
    if (r) {
        stub_text_add(t, "cannot write the snapshot: %s\n", err);
        return r;
    }
    stub_text_add(t, "the machine is saved in %s/%s ('kvmstub --restore %s/%s' starts it "
                     "again)\n",
                  s->dir, name, s->dir, name);
    return 0;
}

int stub_snapstore_command(struct stub_snapstore *s, const char *args, struct stub_text *t)
{
    while (*args == ' ')
        args++;
    char verb[16] = "";
    size_t k = 0;
    while (*args && *args != ' ' && k + 1 < sizeof(verb))
        verb[k++] = *args++;
    verb[k] = 0;
    while (*args == ' ')
        args++;
    char arg[4096];
    snprintf(arg, sizeof(arg), "%s", args);
    for (size_t n = strlen(arg); n && arg[n - 1] == ' '; n--)
        arg[n - 1] = 0;
    if (strcmp(verb, "save") == 0)
        return c_save(s, arg, t);
    if (strcmp(verb, "load") == 0)
        return c_load(s, arg, t);
    if (strcmp(verb, "delete") == 0)
        return c_delete(s, arg, t);
    if (strcmp(verb, "write") == 0)
        return c_write(s, arg, t);
    if (strcmp(verb, "list") == 0 || !verb[0]) {
        c_list(s, t);
        return 0;
    }
    stub_text_add(t, "usage: monitor snapshot save NAME | load NAME | list | delete NAME | "
                     "write NAME\n");
    return -EINVAL;
}

/* ---- files ---- */

static int this_host(struct vm_snapfile_host *host, char *err, size_t errlen)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot open /dev/kvm: %s", strerror(e));
        return -e;
    }
    int r = vm_snapfile_host(fd, host);
    close(fd);
    if (r)
        snprintf(err, errlen, "cannot identify this host's CPU: %s", strerror(-r));
    return r;
}

int stub_snapstore_peek(const char *path, struct stub_snapstore_file_info *info, char *err,
                        size_t errlen)
{
    struct vm_snapfile_host host;
    int r = this_host(&host, err, errlen);
    if (r)
        return r;
    struct vm_snapfile_info *fi = calloc(1, sizeof(*fi));
    if (!fi)
        return -ENOMEM;
    r = vm_snapfile_peek(path, &host, fi, err, errlen);
    if (!r) {
        info->ram_size = fi->ram_size;
        info->ncpus = fi->ncpus;
        snprintf(info->image, sizeof(info->image), "%s", fi->image_path);
    }
    free(fi);
    return r;
}

int stub_snapstore_restore(struct stub_snapstore *s, const char *path, char *err, size_t errlen)
{
    struct vm_snapfile_host host;
    int r = this_host(&host, err, errlen);
    struct vm_snapshots *store;
    if (r || (r = stub_snapstore_store(s, &store, err, errlen)))
        return r;
    struct vm_snapfile_info *fi = calloc(1, sizeof(*fi));
    if (!fi)
        return -ENOMEM;
    struct vm_snapshot *snap = NULL;
    r = vm_snapfile_read(path, &host, store->ps, fi, &snap, err, errlen);
    if (!r) {
        const struct vm_image *img = &s->m->image;
        uint32_t crc = img->data ? vm_checksum_crc32c(0, img->data, img->size) : 0;
        if (img->data && fi->image_hash_len == 4 && memcmp(fi->image_hash, &crc, 4) != 0)
            stub_log("warning: %s differs from the image the snapshot was taken of; the "
                     "restored guest runs from the snapshot's RAM, 'monitor reset' and 'run' "
                     "start the image as it is now",
                     img->name);
        r = stub_snapstore_apply(s, snap, err, errlen);
    }
    vm_snapshot_free(snap);
    free(fi);
    return r;
}
