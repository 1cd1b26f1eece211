#include "snapshot.h"
#include "fail.h"

#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The default fixup: the guest's bytes under kvmstub's planted breakpoints. */
static void hide_planted(void *ctx, uint64_t gpa, uint8_t *page)
{
    vm_planted_hide(ctx, gpa, page, VM_PAGE_SIZE);
}

int vm_snapshot_open(struct vm *vm, const struct vm_snapshot_config *cfg, struct vm_snapshots **out,
                     char *err, size_t errlen)
{
    struct vm_snapshots *ss = calloc(1, sizeof(*ss));
    if (!ss)
        return vm_fail(err, errlen, -ENOMEM, "out of memory");
    ss->vm = vm;
    ss->vm_parts = cfg->vm_parts | vm->board->snap_vm_parts;
    ss->hide = cfg->hide ? cfg->hide : hide_planted;
    ss->hide_ctx = cfg->hide ? cfg->hide_ctx : vm;
    int r = vm_pagestore_create(vm->mem.size, &ss->ps);
    if (r) {
        free(ss);
        return vm_fail(err, errlen, r, "cannot set up snapshots: %s", strerror(-r));
    }
    vm_pagestore_set_limit(ss->ps, cfg->limit);
    r = vm_snap_cpu_ctx_init(&ss->cpu, vm->kvm_fd, vm->vm_fd, vm->cpus[0].fd,
                             (ss->vm_parts & VM_SNAP_VM_IRQCHIP) != 0);
    if (r) {
        vm_pagestore_destroy(ss->ps);
        free(ss);
        return vm_fail(err, errlen, r,
                    "cannot find out which vCPU state this KVM can save: %s (KVM_CAP_MP_STATE "
                    "and KVM_GET_MSR_INDEX_LIST are needed)",
                    strerror(-r));
    }
    r = vm_mem_track_dirty(&vm->mem, true);
    ss->incremental = r == 0;
    if (r)
        snprintf(ss->note, sizeof(ss->note),
                 "this host's KVM cannot log dirty pages (%s): every snapshot save and load "
                 "examines all %llu MiB of guest RAM",
                 strerror(-r), (unsigned long long)(vm->mem.size >> 20));
    /* RAM that is not all zero: what the loader wrote. With tracking the
     * first collect reports it; without, every page counts. */
    *out = ss;
    return 0;
}

void vm_snapshot_close(struct vm_snapshots *ss)
{
    if (!ss)
        return;
    vm_mem_track_dirty(&ss->vm->mem, false);
    vm_pagestore_destroy(ss->ps);
    vm_snap_cpu_ctx_free(&ss->cpu);
    free(ss);
}

bool vm_snapshot_incremental(const struct vm_snapshots *ss)
{
    return ss->incremental;
}

const char *vm_snapshot_note(const struct vm_snapshots *ss)
{
    return ss->note;
}

void vm_snapshot_free(struct vm_snapshot *s)
{
    if (!s)
        return;
    if (s->ram)
        vm_pagestore_delete(s->ps, s->ram);
    for (unsigned i = 0; s->cpus && i < s->ncpus; i++)
        vm_snap_cpu_free(&s->cpus[i]);
    free(s->cpus);
    for (size_t i = 0; i < s->nblobs; i++)
        free(s->blobs[i].data);
    free(s->blobs);
    free(s);
}

size_t vm_snapshot_state_bytes(const struct vm_snapshot *s)
{
    if (!s)
        return 0;
    size_t n = sizeof(*s) + s->nblobs * sizeof(*s->blobs);
    for (unsigned i = 0; s->cpus && i < s->ncpus; i++)
        n += sizeof(s->cpus[i]) + s->cpus[i].xsave_size +
             (size_t)s->cpus[i].nmsrs * sizeof(*s->cpus[i].msrs);
    for (size_t i = 0; i < s->nblobs; i++)
        n += s->blobs[i].len;
    return n;
}

const struct vm_snapshot_blob *vm_snapshot_blob(const struct vm_snapshot *s, const char *name)
{
    for (size_t i = 0; i < s->nblobs; i++)
        if (strcmp(s->blobs[i].name, name) == 0)
            return &s->blobs[i];
    return NULL;
}

/* Every vCPU quiet: no instruction KVM would finish on the next KVM_RUN,
 * and kvmstub's cached register writes in KVM. */
static int settle(struct vm *vm, char *err, size_t errlen)
{
    for (unsigned i = 0; i < vm->ncpus; i++) {
        struct vm_cpu *cpu = &vm->cpus[i];
        if (cpu->needs_completion)
            return vm_fail(err, errlen, -EBUSY,
                        "vCPU %u is in the middle of an I/O instruction: let it complete "
                        "(run with immediate_exit) before a snapshot",
                        i);
        int r = vm_regcache_flush(&cpu->rc);
        if (r)
            return vm_fail(err, errlen, r, "cannot write vCPU %u's registers back: %s", i,
                        strerror(-r));
    }
    return 0;
}

static int copy_blobs(struct vm_snapshot *s, const struct vm_snapshot_blob *blobs, size_t n)
{
    if (!n)
        return 0;
    if (n > VM_SNAPSHOT_MAX_BLOBS)
        return -E2BIG;
    s->blobs = calloc(n, sizeof(*s->blobs));
    if (!s->blobs)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!memchr(blobs[i].name, 0, sizeof(blobs[i].name)) || !blobs[i].name[0] ||
            blobs[i].len > VM_SNAPSHOT_MAX_BLOB)
            return -EINVAL;
        memcpy(s->blobs[i].name, blobs[i].name, sizeof(blobs[i].name));
        s->blobs[i].len = blobs[i].len;
        s->blobs[i].data = malloc(blobs[i].len ? blobs[i].len : 1);
        if (!s->blobs[i].data)
            return -ENOMEM;
        if (blobs[i].len)
            memcpy(s->blobs[i].data, blobs[i].data, blobs[i].len);
        s->nblobs++;
    }
    return 0;
}

/* The vm layer's own state that KVM does not hold, as the blob "vm": per
 * vCPU its halted flag and a device stop waiting behind a catch; the VM's
 * debug-exit status. Layout: version 1, vCPU count (4), exited (1), status
 * (4), then per vCPU halted (1), has_pending (1), the pending event. */
#define SOFT_VERSION 1u
#define SOFT_FIXED 10u
#define SOFT_CPU (2u + sizeof(struct vm_event))

static int soft_save(const struct vm *vm, struct vm_snapshot_blob *b)
{
    size_t len = SOFT_FIXED + (size_t)vm->ncpus * SOFT_CPU;
    uint8_t *p = calloc(1, len);
    if (!p)
        return -ENOMEM;
    p[0] = SOFT_VERSION;
    memcpy(p + 1, &vm->ncpus, 4);
    p[5] = atomic_load(&vm->exited);
    memcpy(p + 6, &vm->exit_status, 4);
    for (unsigned i = 0; i < vm->ncpus; i++) {
        uint8_t *c = p + SOFT_FIXED + (size_t)i * SOFT_CPU;
        c[0] = vm->cpus[i].halted;
        c[1] = vm->cpus[i].has_pending;
        if (vm->cpus[i].has_pending)
            memcpy(c + 2, &vm->cpus[i].pending, sizeof(struct vm_event));
    }
    snprintf(b->name, sizeof(b->name), "vm");
    b->data = p;
    b->len = len;
    return 0;
}

static int soft_load(struct vm *vm, const struct vm_snapshot_blob *b, bool apply)
{
    unsigned n;
    if (!b || b->len < SOFT_FIXED || b->data[0] != SOFT_VERSION)
        return -EINVAL;
    memcpy(&n, b->data + 1, 4);
    if (n != vm->ncpus || b->len != SOFT_FIXED + (size_t)n * SOFT_CPU || b->data[5] > 1)
        return -EINVAL;
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *c = b->data + SOFT_FIXED + (size_t)i * SOFT_CPU;
        struct vm_event ev;
        memcpy(&ev, c + 2, sizeof(ev));
        if (c[0] > 1 || c[1] > 1 || (c[1] && (unsigned)ev.type > VM_EVENT_IO))
            return -EINVAL;
    }
    if (!apply)
        return 0;
    atomic_store(&vm->exited, b->data[5] != 0);
    memcpy(&vm->exit_status, b->data + 6, 4);
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *c = b->data + SOFT_FIXED + (size_t)i * SOFT_CPU;
        struct vm_cpu *cpu = &vm->cpus[i];
        cpu->halted = c[0];
        cpu->has_pending = c[1];
        memcpy(&cpu->pending, c + 2, sizeof(cpu->pending));
    }
    return 0;
}

/* The blob names the vm layer uses itself: "vm" and "dev.<device>". */
static bool reserved_name(const char *name)
{
    return strcmp(name, "vm") == 0 || strncmp(name, "dev.", 4) == 0;
}

static void free_blobs(struct vm_snapshot_blob *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(b[i].data);
    free(b);
}

/* The caller's blobs plus the vm layer's own; *out is freed by the caller. */
static int gather_blobs(struct vm *vm, const struct vm_snapshot_blob *blobs, size_t nblobs,
                        struct vm_snapshot_blob **out, size_t *nout)
{
    size_t total = nblobs + 1 + vm->bus.nstates;
    if (total > VM_SNAPSHOT_MAX_BLOBS)
        return -E2BIG;
    struct vm_snapshot_blob *all = calloc(total, sizeof(*all));
    if (!all)
        return -ENOMEM;
    size_t n = 0;
    int r = soft_save(vm, &all[n]);
    if (r)
        goto fail;
    n++;
    for (size_t i = 0; i < vm->bus.nstates; i++) {
        const struct vm_bus_state *st = &vm->bus.states[i];
        snprintf(all[n].name, sizeof(all[n].name), "dev.%s", st->name);
        if ((r = st->save(st->dev, &all[n].data, &all[n].len)))
            goto fail;
        n++;
    }
    for (size_t i = 0; i < nblobs; i++) {
        if (!memchr(blobs[i].name, 0, sizeof(blobs[i].name)) || reserved_name(blobs[i].name)) {
            r = -EINVAL;
            goto fail;
        }
        all[n] = blobs[i];
        all[n].data = malloc(blobs[i].len ? blobs[i].len : 1);
        if (!all[n].data) {
            r = -ENOMEM;
            goto fail;
        }
        if (blobs[i].len)
            memcpy(all[n].data, blobs[i].data, blobs[i].len);
        n++;
    }
    *out = all;
    *nout = n;
    return 0;
fail:
    free_blobs(all, n);
    return r;
}

/* Checks (apply false) or applies the vm layer's blobs of s. */
static int load_blobs(struct vm *vm, const struct vm_snapshot *s, bool apply, char *err,
                      size_t errlen)
{
    if (soft_load(vm, vm_snapshot_blob(s, "vm"), apply))
        return vm_fail(err, errlen, -EINVAL,
                    "the snapshot's vCPU run state (blob \"vm\") is missing or malformed");
    for (size_t i = 0; i < vm->bus.nstates; i++) {
        const struct vm_bus_state *st = &vm->bus.states[i];
        char name[VM_SNAPSHOT_BLOB_NAME];
        snprintf(name, sizeof(name), "dev.%s", st->name);
        const struct vm_snapshot_blob *b = vm_snapshot_blob(s, name);
        if (!b || st->load(st->dev, b->data, b->len, apply))
            return vm_fail(err, errlen, -EINVAL,
                        "the snapshot's state of device %s is missing or malformed (a snapshot "
                        "of another board?)",
                        st->name);
    }
    return 0;
}

static int save_quiet(struct vm_snapshots *ss, const struct vm_snapshot_blob *blobs,
                      size_t nblobs, struct vm_snapshot **out, struct vm_pagestore_cost *cost,
                      char *err, size_t errlen);

/* Device threads that write guest RAM (disk workers) hold still while RAM
 * and their state are copied in or out, so both tell of the same moment. */
static void quiesce(struct vm *vm, bool pause)
{
    if (vm->board->quiesce)
        vm->board->quiesce(vm, pause);
}

int vm_snapshot_save(struct vm_snapshots *ss, const struct vm_snapshot_blob *blobs, size_t nblobs,
                     struct vm_snapshot **out, struct vm_pagestore_cost *cost, char *err,
                     size_t errlen)
{
    quiesce(ss->vm, true);
    int r = save_quiet(ss, blobs, nblobs, out, cost, err, errlen);
    quiesce(ss->vm, false);
    return r;
}

static int save_quiet(struct vm_snapshots *ss, const struct vm_snapshot_blob *blobs,
                      size_t nblobs, struct vm_snapshot **out, struct vm_pagestore_cost *cost,
                      char *err, size_t errlen)
{
    struct vm *vm = ss->vm;
    int r = settle(vm, err, errlen);
    if (r)
        return r;
    struct vm_snapshot *s = calloc(1, sizeof(*s));
    if (!s)
        return vm_fail(err, errlen, -ENOMEM, "out of memory");
    s->ps = ss->ps;
    s->ncpus = vm->ncpus;
    s->cpus = calloc(vm->ncpus, sizeof(*s->cpus));
    if (!s->cpus) {
        r = vm_fail(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    /* The state without side effects first, RAM (which moves the base)
     * last, so that a failure leaves nothing behind. */
    for (unsigned i = 0; i < vm->ncpus; i++) {
        r = vm_snap_cpu_save(&ss->cpu, vm->cpus[i].fd, &s->cpus[i]);
        if (r) {
            r = vm_fail(err, errlen, r, "cannot read vCPU %u's state: %s", i, strerror(-r));
            goto out;
        }
    }
    r = vm_snap_vm_save(vm->vm_fd, ss->vm_parts, &s->vm);
    if (r) {
        r = vm_fail(err, errlen, r, "cannot read the VM's interrupt controllers, PIT or clock: %s",
                 strerror(-r));
        goto out;
    }
    struct vm_snapshot_blob *all = NULL;
    size_t nall = 0;
    r = gather_blobs(vm, blobs, nblobs, &all, &nall);
    if (!r) {
        r = copy_blobs(s, all, nall);
        free_blobs(all, nall);
    }
    if (r) {
        r = vm_fail(err, errlen, r, "bad device state for the snapshot (at most %d blobs of %u "
                 "bytes with names of 1-31 characters)", VM_SNAPSHOT_MAX_BLOBS,
                 VM_SNAPSHOT_MAX_BLOB);
        goto out;
    }
    r = vm_mem_dirty_collect(&vm->mem, vm_pagestore_changed(ss->ps));
    if (r < 0) {
        r = vm_fail(err, errlen, r, "cannot read KVM's dirty-page log: %s", strerror(-r));
        goto out;
    }
    r = vm_pagestore_save(ss->ps, vm->mem.host, ss->hide, ss->hide_ctx, &s->ram, cost);
    if (r == -ENOSPC) {
        r = vm_fail(err, errlen, r,
                 "the snapshot store is full (%llu bytes held, limit reached): delete "
                 "snapshots and try again",
                 (unsigned long long)vm_pagestore_usage(ss->ps)->bytes);
        goto out;
    }
    if (r) {
        r = vm_fail(err, errlen, r, "cannot copy guest RAM: %s", strerror(-r));
        goto out;
    }
    *out = s;
    return 0;
out:
    vm_snapshot_free(s);
    return r;
}

int vm_snapshot_check(const struct vm_snapshots *ss, const struct vm_snapshot *s, char *err,
                      size_t errlen)
{
    const struct vm *vm = ss->vm;
    if (s->ps != ss->ps || !s->ram)
        return vm_fail(err, errlen, -EINVAL, "the snapshot belongs to another machine");
    if (s->ncpus != vm->ncpus)
        return vm_fail(err, errlen, -EINVAL, "the snapshot has %u vCPUs, this machine %u", s->ncpus,
                    vm->ncpus);
    for (unsigned i = 0; i < s->ncpus; i++) {
        int r = vm_snap_cpu_check(&ss->cpu, &s->cpus[i], err, errlen);
        if (r)
            return r;
    }
    return vm_snap_vm_check(ss->vm_parts, &s->vm, err, errlen);
}

/* Around a load: RAM holds the guest's bytes while the store compares and
 * writes pages; afterwards each breakpoint is translated again (the page
 * tables may differ) and planted over the byte the loaded RAM has. */
static int load_quiet(struct vm_snapshots *ss, const struct vm_snapshot *s,
                      struct vm_pagestore_cost *cost, char *err, size_t errlen);

int vm_snapshot_load(struct vm_snapshots *ss, const struct vm_snapshot *s,
                     struct vm_pagestore_cost *cost, char *err, size_t errlen)
{
    quiesce(ss->vm, true);
    int r = load_quiet(ss, s, cost, err, errlen);
    quiesce(ss->vm, false);
    return r;
}

static int load_quiet(struct vm_snapshots *ss, const struct vm_snapshot *s,
                      struct vm_pagestore_cost *cost, char *err, size_t errlen)
{
    struct vm *vm = ss->vm;
    int r = vm_snapshot_check(ss, s, err, errlen);
    if (r)
        return r;
    for (unsigned i = 0; i < vm->ncpus; i++)
        if (vm->cpus[i].needs_completion)
            return vm_fail(err, errlen, -EBUSY,
                        "vCPU %u is in the middle of an I/O instruction: let it complete "
                        "(run with immediate_exit) before loading a snapshot",
                        i);
    if ((r = load_blobs(vm, s, false, err, errlen)))
        return r;
    vm_bp_unplant_all(vm);
    /* What the guest changed since the last save or load: those pages are
     * restored too. A failure here leaves everything as it was. */
    r = vm_mem_dirty_collect(&vm->mem, vm_pagestore_changed(ss->ps));
    if (r < 0)
        return vm_fail(err, errlen, r, "cannot read KVM's dirty-page log: %s", strerror(-r));
    vm_pagestore_load(ss->ps, s->ram, vm->mem.host, cost);
    /* RAM before the vCPUs: without SREGS2, KVM_SET_SREGS reads the PAE
     * page-directory pointers from guest memory. */
    r = vm_snap_vm_restore(vm->vm_fd, &s->vm, err, errlen);
    for (unsigned i = 0; i < vm->ncpus; i++) {
        struct vm_cpu *cpu = &vm->cpus[i];
        char e[200] = "";
        int c = vm_snap_cpu_restore(&ss->cpu, cpu->fd, &s->cpus[i], e, sizeof(e));
        vm_regcache_invalidate(&cpu->rc);
        if (c && !r)
            r = vm_fail(err, errlen, c, "vCPU %u: %s", i, e);
        /* Guest-debug state (breakpoints, single-step) goes in again at
         * the next entry; nothing of a step in progress survives. */
        cpu->guest_debug_dirty = true;
        cpu->needs_completion = false;
    }
    load_blobs(vm, s, true, NULL, 0);
    vm_bp_replant_all(vm);
    if (vm->ncpus)
        vm_watch_refresh(&vm->cpus[0]);
    return r;
}
