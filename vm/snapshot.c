#include "snapshot.h"

#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

int vm_snapshot_open(struct vm *vm, const struct vm_snapshot_config *cfg, struct vm_snapshots **out,
                     char *err, size_t errlen)
{
    struct vm_snapshots *ss = calloc(1, sizeof(*ss));
    if (!ss)
        return fail(err, errlen, -ENOMEM, "out of memory");
    ss->vm = vm;
    ss->vm_parts = cfg->vm_parts;
    ss->hide = cfg->hide;
    ss->hide_ctx = cfg->hide_ctx;
    int r = vm_pagestore_create(vm->mem.size, &ss->ps);
    if (r) {
        free(ss);
        return fail(err, errlen, r, "cannot set up snapshots: %s", strerror(-r));
    }
    vm_pagestore_set_limit(ss->ps, cfg->limit);
    r = vm_cpustate_ctx_init(&ss->cpu, vm->kvm_fd, vm->vm_fd, vm->cpus[0].fd,
                             (cfg->vm_parts & VM_VMSTATE_IRQCHIP) != 0);
    if (r) {
        vm_pagestore_destroy(ss->ps);
        free(ss);
        return fail(err, errlen, r,
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
    vm_cpustate_ctx_free(&ss->cpu);
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
        vm_cpustate_free(&s->cpus[i]);
    free(s->cpus);
    for (size_t i = 0; i < s->nblobs; i++)
        free(s->blobs[i].data);
    free(s->blobs);
    free(s);
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
            return fail(err, errlen, -EBUSY,
                        "vCPU %u is in the middle of an I/O instruction: let it complete "
                        "(run with immediate_exit) before a snapshot",
                        i);
        int r = vm_regcache_flush(&cpu->rc);
        if (r)
            return fail(err, errlen, r, "cannot write vCPU %u's registers back: %s", i,
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

int vm_snapshot_save(struct vm_snapshots *ss, const struct vm_snapshot_blob *blobs, size_t nblobs,
                     struct vm_snapshot **out, struct vm_pagestore_cost *cost, char *err,
                     size_t errlen)
{
    struct vm *vm = ss->vm;
    int r = settle(vm, err, errlen);
    if (r)
        return r;
    struct vm_snapshot *s = calloc(1, sizeof(*s));
    if (!s)
        return fail(err, errlen, -ENOMEM, "out of memory");
    s->ps = ss->ps;
    s->ncpus = vm->ncpus;
    s->cpus = calloc(vm->ncpus, sizeof(*s->cpus));
    if (!s->cpus) {
        r = fail(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    /* The state without side effects first, RAM (which moves the base)
     * last, so that a failure leaves nothing behind. */
    for (unsigned i = 0; i < vm->ncpus; i++) {
        r = vm_cpustate_save(&ss->cpu, vm->cpus[i].fd, &s->cpus[i]);
        if (r) {
            r = fail(err, errlen, r, "cannot read vCPU %u's state: %s", i, strerror(-r));
            goto out;
        }
    }
    r = vm_vmstate_save(vm->vm_fd, ss->vm_parts, &s->vm);
    if (r) {
        r = fail(err, errlen, r, "cannot read the VM's interrupt controllers, PIT or clock: %s",
                 strerror(-r));
        goto out;
    }
    r = copy_blobs(s, blobs, nblobs);
    if (r) {
        r = fail(err, errlen, r, "bad device state for the snapshot (at most %d blobs of %u "
                 "bytes with names of 1-31 characters)", VM_SNAPSHOT_MAX_BLOBS,
                 VM_SNAPSHOT_MAX_BLOB);
        goto out;
    }
    r = vm_mem_dirty_collect(&vm->mem, vm_pagestore_changed(ss->ps));
    if (r < 0) {
        r = fail(err, errlen, r, "cannot read KVM's dirty-page log: %s", strerror(-r));
        goto out;
    }
    r = vm_pagestore_save(ss->ps, vm->mem.host, ss->hide, ss->hide_ctx, &s->ram, cost);
    if (r == -ENOSPC) {
        r = fail(err, errlen, r,
                 "the snapshot store is full (%llu bytes held, limit reached): delete "
                 "snapshots and try again",
                 (unsigned long long)vm_pagestore_usage(ss->ps)->bytes);
        goto out;
    }
    if (r) {
        r = fail(err, errlen, r, "cannot copy guest RAM: %s", strerror(-r));
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
        return fail(err, errlen, -EINVAL, "the snapshot belongs to another machine");
    if (s->ncpus != vm->ncpus)
        return fail(err, errlen, -EINVAL, "the snapshot has %u vCPUs, this machine %u", s->ncpus,
                    vm->ncpus);
    for (unsigned i = 0; i < s->ncpus; i++) {
        int r = vm_cpustate_check(&ss->cpu, &s->cpus[i], err, errlen);
        if (r)
            return r;
    }
    return vm_vmstate_check(ss->vm_parts, &s->vm, err, errlen);
}

int vm_snapshot_load(struct vm_snapshots *ss, const struct vm_snapshot *s,
                     struct vm_pagestore_cost *cost, char *err, size_t errlen)
{
    struct vm *vm = ss->vm;
    int r = vm_snapshot_check(ss, s, err, errlen);
    if (r)
        return r;
    for (unsigned i = 0; i < vm->ncpus; i++)
        if (vm->cpus[i].needs_completion)
            return fail(err, errlen, -EBUSY,
                        "vCPU %u is in the middle of an I/O instruction: let it complete "
                        "(run with immediate_exit) before loading a snapshot",
                        i);
    /* What the guest changed since the last save or load: those pages are
     * restored too. A failure here leaves everything as it was. */
    r = vm_mem_dirty_collect(&vm->mem, vm_pagestore_changed(ss->ps));
    if (r < 0)
        return fail(err, errlen, r, "cannot read KVM's dirty-page log: %s", strerror(-r));
    vm_pagestore_load(ss->ps, s->ram, vm->mem.host, cost);
    /* RAM before the vCPUs: without SREGS2, KVM_SET_SREGS reads the PAE
     * page-directory pointers from guest memory. */
    r = vm_vmstate_restore(vm->vm_fd, &s->vm, err, errlen);
    for (unsigned i = 0; i < vm->ncpus; i++) {
        struct vm_cpu *cpu = &vm->cpus[i];
        char e[200] = "";
        int c = vm_cpustate_restore(&ss->cpu, cpu->fd, &s->cpus[i], e, sizeof(e));
        vm_regcache_invalidate(&cpu->rc);
        if (c && !r)
            r = fail(err, errlen, c, "vCPU %u: %s", i, e);
    }
    return r;
}
