/* Watchpoints: debug registers where the host honours them, page traps
 * everywhere else (see debug.h). */
#include "decode.h"
#include "gate.h"
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CR0_PG (1ull << 31)

static uint8_t dr_rw(enum vm_watch_type t)
{
    return t == VM_WATCH_WRITE ? 1 : 3;
}

bool vm_watch_active(const struct vm *vm)
{
    for (size_t i = 0; i < vm->debug.nwatches; i++)
        if (vm->debug.watches[i].dr < 0)
            return true;
    return false;
}

bool vm_watch_covers(const struct vm *vm, uint64_t gpa)
{
    for (size_t i = 0; i < vm->debug.nwatches; i++) {
        const struct vm_watchpoint *w = &vm->debug.watches[i];
        for (size_t p = 0; w->dr < 0 && p < w->npages; p++)
            if (w->pages[p].gpa == (gpa & VM_PAGE_MASK))
                return true;
    }
    return false;
}

/* The trap each page needs: every access for read and access watchpoints
 * and for page-trapped breakpoints (code fetches must exit), only writes
 * for write watchpoints (when read-only slots trap them). */
static enum vm_page_trap wanted(const struct vm *vm, uint64_t gpa)
{
    enum vm_page_trap t = VM_TRAP_NONE;
    for (size_t i = 0; i < vm->debug.nbps; i++) {
        const struct vm_breakpoint *bp = &vm->debug.bps[i];
        if (bp->gpa != VM_BP_PENDING && !bp->len && (bp->gpa & VM_PAGE_MASK) == gpa)
            return VM_TRAP_ALL;
    }
    for (size_t i = 0; i < vm->debug.nwatches; i++) {
        const struct vm_watchpoint *w = &vm->debug.watches[i];
        if (w->dr >= 0)
            continue;
        for (size_t p = 0; p < w->npages; p++) {
            if (w->pages[p].gpa != gpa)
                continue;
            /* With several vCPUs a read-only slot would let KVM do the
             * read half of a read-modify-write (a lock's xchg) in the
             * kernel and only the write half here, with other vCPUs free
             * in between; trapping the reads too lets kvmstub make the
             * pair atomic (cpu.c, handle_mmio). */
            enum vm_page_trap need = (w->type == VM_WATCH_WRITE &&
                                      vm->caps.ro_slot_traps_writes && vm->ncpus == 1)
                                         ? VM_TRAP_WRITE
                                         : VM_TRAP_ALL;
            if (need > t)
                t = need;
        }
    }
    return t;
}

static int set_trap(struct vm_mem *m, uint64_t gpa, enum vm_page_trap t, int err)
{
    if (vm_mem_trap(m, gpa) == t)
        return err;
    int e = vm_mem_set_trap(m, gpa, t);
    return err ? err : e;
}

/* Brings the memory slots in line with the watchpoint and breakpoint
 * tables. */
static int apply_traps(struct vm *vm)
{
    struct vm_mem *m = &vm->mem;
    int err = 0;
    for (size_t i = 0; i < vm->debug.nbps; i++) {
        const struct vm_breakpoint *bp = &vm->debug.bps[i];
        if (bp->gpa != VM_BP_PENDING && !bp->len)
            err = set_trap(m, bp->gpa & VM_PAGE_MASK, wanted(vm, bp->gpa & VM_PAGE_MASK), err);
    }
    /* Drop traps no watchpoint wants any more (iterate from the end: the
     * table shrinks as we go). */
    for (size_t i = m->ntraps; i-- > 0;) {
        if (i >= m->ntraps)
            continue;
        uint64_t gpa = m->traps[i].gpa;
        enum vm_page_trap t = wanted(vm, gpa);
        if (t != m->traps[i].trap) {
            int e = vm_mem_set_trap(m, gpa, t);
            if (e && !err)
                err = e;
        }
    }
    for (size_t i = 0; i < vm->debug.nwatches; i++) {
        const struct vm_watchpoint *w = &vm->debug.watches[i];
        for (size_t p = 0; w->dr < 0 && p < w->npages; p++) {
            uint64_t gpa = w->pages[p].gpa;
            if (gpa == ~0ull)
                continue;
            enum vm_page_trap t = wanted(vm, gpa);
            if (vm_mem_trap(m, gpa) != t) {
                int e = vm_mem_set_trap(m, gpa, t);
                if (e && !err)
                    err = e;
            }
        }
    }
    return err;
}

int vm_watch_apply_traps(struct vm *vm)
{
    vm_gate_exclusive(vm); /* slots change: nobody may be in the guest */
    pthread_mutex_lock(&vm->debug.lock);
    int err = apply_traps(vm);
    pthread_mutex_unlock(&vm->debug.lock);
    vm_gate_release(vm);
    return err;
}

static int translate_pages(struct vm_cpu *cpu, struct vm_watchpoint *w, bool strict)
{
    for (size_t p = 0; p < w->npages; p++) {
        uint64_t gpa;
        int err = vm_translate(cpu, w->pages[p].linear, &gpa);
        if (!err && !vm_mem_contains(&cpu->vm->mem, gpa & VM_PAGE_MASK, VM_PAGE_SIZE))
            err = -EFAULT;
        if (err && strict)
            return err;
        w->pages[p].gpa = err ? ~0ull : (gpa & VM_PAGE_MASK);
    }
    return 0;
}

static void remember_paging(struct vm_cpu *cpu)
{
    struct vm_debug *d = &cpu->vm->debug;
    d->xlate_cr0 = cpu->rc.sregs.cr0 & CR0_PG;
}

/* Gives w the pages its bytes lie on, translated now; strict refuses a
 * page that is not mapped (a new watchpoint), otherwise it waits for the
 * guest to map it. */
static int trap_pages(struct vm_cpu *cpu, struct vm_watchpoint *w, bool strict)
{
    uint64_t first = w->addr & VM_PAGE_MASK, last = (w->addr + w->len - 1) & VM_PAGE_MASK;
    w->npages = (size_t)((last - first) / VM_PAGE_SIZE + 1);
    w->pages = calloc(w->npages, sizeof(*w->pages));
    if (!w->pages)
        return -ENOMEM;
    for (size_t p = 0; p < w->npages; p++)
        w->pages[p].linear = first + p * VM_PAGE_SIZE;
    int err = translate_pages(cpu, w, strict);
    if (!err)
        err = vm_regcache_fetch(&cpu->rc, VM_RC_SREGS);
    if (err) {
        free(w->pages);
        w->pages = NULL;
        w->npages = 0;
        return err;
    }
    remember_paging(cpu);
    return 0;
}

int vm_watch_release_dr(struct vm_cpu *cpu, int slot)
{
    struct vm *vm = cpu->vm;
    struct vm_debug *d = &vm->debug;
    if (d->watch_method == VM_WATCH_DEBUG_REGS)
        return -EBUSY; /* the user asked for debug registers only */
    for (size_t i = 0; i < d->nwatches; i++) {
        struct vm_watchpoint *w = &d->watches[i];
        if (w->dr != slot)
            continue;
        int err = trap_pages(cpu, w, false);
        if (err)
            return err;
        w->dr = -1;
        vm_debugreg_free(vm, slot);
        return vm_watch_apply_traps(vm);
    }
    return -ENOENT;
}

int vm_watch_insert(struct vm_cpu *cpu, enum vm_watch_type type, uint64_t addr, uint64_t len)
{
    struct vm *vm = cpu->vm;
    struct vm_debug *d = &vm->debug;
    if (len == 0 || len > VM_MAX_WATCH_LEN || addr + (len - 1) < addr ||
        type < VM_WATCH_WRITE || type > VM_WATCH_ACCESS)
        return -EINVAL;
    if (d->nwatches >= VM_MAX_WATCHPOINTS)
        return -ENOSPC;
    struct vm_watchpoint w = {.addr = addr, .len = len, .type = type, .dr = -1};

    /* x86 has no read-only data breakpoint, so read watchpoints always use
     * page traps; the others take a debug register when one fits. */
    bool fits = (len == 1 || len == 2 || len == 4 || len == 8) && addr % len == 0;
    if (d->watch_method == VM_WATCH_DEBUG_REGS && !d->hw_data)
        return -EOPNOTSUPP; /* this host's data breakpoints never fire */
    if (d->watch_method != VM_WATCH_PAGE_TRAPS && d->hw_data && type != VM_WATCH_READ && fits) {
        int slot = vm_debugreg_alloc(vm, dr_rw(type), (uint8_t)len, addr);
        if (slot >= 0)
            w.dr = slot;
        else if (d->watch_method == VM_WATCH_DEBUG_REGS)
            return -ENOSPC;
    } else if (d->watch_method == VM_WATCH_DEBUG_REGS) {
        return -ENOTSUP;
    }
    if (w.dr < 0) {
        int err = trap_pages(cpu, &w, true);
        if (err)
            return err;
    }
    struct vm_watchpoint *n = realloc(d->watches, (d->nwatches + 1) * sizeof(*n));
    if (!n) {
        free(w.pages);
        vm_debugreg_free(vm, w.dr);
        return -ENOMEM;
    }
    d->watches = n;
    d->watches[d->nwatches++] = w;
    if (w.dr >= 0)
        return 0;
    int err = vm_watch_apply_traps(vm);
    if (err) {
        vm_watch_drop(vm, type, addr, len);
        return err;
    }
    return 0;
}

int vm_watch_remove(struct vm_cpu *cpu, enum vm_watch_type type, uint64_t addr, uint64_t len)
{
    return vm_watch_drop(cpu->vm, type, addr, len);
}

int vm_watch_drop(struct vm *vm, enum vm_watch_type type, uint64_t addr, uint64_t len)
{
    struct vm_debug *d = &vm->debug;
    for (size_t i = d->nwatches; i-- > 0;) {
        struct vm_watchpoint *w = &d->watches[i];
        if (w->type != type || w->addr != addr || w->len != len)
            continue;
        int slot = w->dr;
        free(w->pages);
        d->watches[i] = d->watches[--d->nwatches];
        if (slot >= 0)
            vm_debugreg_free(vm, slot);
        else
            vm_watch_apply_traps(vm);
        return 0;
    }
    return -ENOENT;
}

static bool type_matches(enum vm_watch_type t, bool write)
{
    return t == VM_WATCH_ACCESS || (write ? t == VM_WATCH_WRITE : t == VM_WATCH_READ);
}

bool vm_watch_match(const struct vm *vm, uint64_t gpa, uint64_t len, bool write, uint64_t *addr,
                    enum vm_watch_type *type)
{
    for (size_t i = 0; i < vm->debug.nwatches; i++) {
        const struct vm_watchpoint *w = &vm->debug.watches[i];
        if (w->dr >= 0 || !type_matches(w->type, write))
            continue;
        for (size_t p = 0; p < w->npages; p++) {
            uint64_t page = w->pages[p].gpa;
            if (page == ~0ull || gpa + len <= page || gpa >= page + VM_PAGE_SIZE)
                continue;
            /* The access in linear terms, clipped to this page. */
            uint64_t lo = gpa > page ? gpa : page;
            uint64_t hi = gpa + len < page + VM_PAGE_SIZE ? gpa + len : page + VM_PAGE_SIZE;
            uint64_t llo = w->pages[p].linear + (lo - page), lhi = w->pages[p].linear + (hi - page);
            if (lhi <= w->addr || llo >= w->addr + w->len)
                continue;
            *addr = llo > w->addr ? llo : w->addr;
            *type = w->type;
            return true;
        }
    }
    return false;
}

bool vm_watch_dr_hit(const struct vm *vm, unsigned slot, uint64_t *addr, enum vm_watch_type *type)
{
    for (size_t i = 0; i < vm->debug.nwatches; i++) {
        const struct vm_watchpoint *w = &vm->debug.watches[i];
        if (w->dr == (int)slot) {
            *addr = w->addr;
            *type = w->type;
            return true;
        }
    }
    return false;
}

int vm_watch_refresh(struct vm_cpu *cpu)
{
    struct vm *vm = cpu->vm;
    struct vm_debug *d = &vm->debug;
    if (!vm_watch_active(vm))
        return 0;
    int err = vm_regcache_fetch(&cpu->rc, VM_RC_SREGS);
    if (err)
        return err;
    if (!(cpu->rc.sregs.cr0 & CR0_PG) && !d->xlate_cr0)
        return 0; /* no paging then or now: linear is physical */
    /* The guest can rewrite a page table without reloading CR3, so every
     * page is translated again (a few ioctls per exit while watchpoints on
     * page traps exist); the traps move only when a translation changed,
     * and then with the other vCPUs out of the guest, which also keeps them
     * from matching accesses against a table being rewritten. */
    bool changed = false;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            if (!changed)
                break;
            vm_gate_exclusive(vm);
            pthread_mutex_lock(&d->lock);
        }
        for (size_t i = 0; i < d->nwatches; i++) {
            struct vm_watchpoint *w = &d->watches[i];
            for (size_t p = 0; w->dr < 0 && p < w->npages; p++) {
                uint64_t gpa;
                if (vm_translate(cpu, w->pages[p].linear, &gpa) ||
                    !vm_mem_contains(&vm->mem, gpa & VM_PAGE_MASK, VM_PAGE_SIZE))
                    gpa = ~0ull;
                else
                    gpa &= VM_PAGE_MASK;
                if (gpa != w->pages[p].gpa) {
                    if (pass == 1)
                        w->pages[p].gpa = gpa;
                    changed = true;
                }
            }
        }
    }
    remember_paging(cpu);
    if (!changed)
        return 0;
    err = vm_watch_apply_traps(vm);
    pthread_mutex_unlock(&d->lock);
    vm_gate_release(vm);
    return err;
}

int vm_watch_lift(struct vm_cpu *cpu, uint64_t gpa)
{
    struct vm_cpu_step *d = &cpu->step;
    struct vm_mem *m = &cpu->vm->mem;
    /* Held until vm_watch_unlift(): no other vCPU may run while the page
     * is lifted, or it would run through the trap unseen. */
    vm_gate_exclusive(cpu->vm);
    pthread_mutex_lock(&cpu->vm->debug.lock);
    size_t n = 0;
    for (size_t i = 0; i < m->ntraps; i++)
        if (gpa == ~0ull || m->traps[i].gpa == (gpa & VM_PAGE_MASK))
            n++;
    struct vm_lifted_page *l = n ? calloc(n, sizeof(*l)) : NULL;
    if (!l) {
        pthread_mutex_unlock(&cpu->vm->debug.lock);
        vm_gate_release(cpu->vm);
        return n ? -ENOMEM : 0;
    }
    size_t k = 0;
    for (size_t i = 0; i < m->ntraps && k < n; i++) {
        if (gpa != ~0ull && m->traps[i].gpa != (gpa & VM_PAGE_MASK))
            continue;
        l[k].gpa = m->traps[i].gpa;
        vm_mem_read(m, l[k].gpa, l[k].before, VM_PAGE_SIZE);
        k++;
    }
    free(d->lifted);
    d->lifted = l;
    d->nlifted = k;
    for (size_t i = 0; i < k; i++)
        vm_mem_set_trap(m, l[i].gpa, VM_TRAP_NONE);
    pthread_mutex_unlock(&cpu->vm->debug.lock);
    return 0;
}

void vm_watch_predict(struct vm_cpu *cpu)
{
    struct vm_cpu_step *d = &cpu->step;
    d->predicted = false;
    if (vm_regcache_fetch(&cpu->rc, VM_RC_REGS | VM_RC_SREGS))
        return;
    const struct kvm_sregs *s = &cpu->rc.sregs;
    uint64_t pc = cpu->rc.regs.rip;
    if (!((s->efer & (1u << 10)) && s->cs.l))
        pc = (s->cs.base + pc) & 0xffffffffull;
    uint8_t insn[15];
    size_t got = 0;
    vm_read_linear(cpu, pc, insn, sizeof(insn), &got);
    struct vm_access acc[VM_DECODE_MAX_ACCESSES];
    size_t n = vm_decode_access(insn, got, &cpu->rc.regs, s, acc);
    for (size_t i = 0; i < n && !d->predicted; i++) {
        /* Byte by byte through the page tables: an access may cross pages. */
        for (uint32_t b = 0; b < acc[i].size && !d->predicted; b++) {
            uint64_t gpa;
            if (vm_translate(cpu, acc[i].addr + b, &gpa))
                continue;
            if ((acc[i].read && vm_watch_match(cpu->vm, gpa, 1, false, &d->predicted_addr,
                                               &d->predicted_type)) ||
                (acc[i].write && vm_watch_match(cpu->vm, gpa, 1, true, &d->predicted_addr,
                                                &d->predicted_type)))
                d->predicted = true;
        }
    }
}

bool vm_watch_visit_hit(struct vm_cpu *cpu)
{
    struct vm_cpu_step *d = &cpu->step;
    uint64_t addr;
    enum vm_watch_type type;
    if (d->predicted)
        return true;
    for (size_t i = 0; i < d->nlifted; i++) {
        const uint8_t *now = vm_mem_ptr(&cpu->vm->mem, d->lifted[i].gpa, VM_PAGE_SIZE);
        for (size_t b = 0; now && b < VM_PAGE_SIZE; b++)
            if (now[b] != d->lifted[i].before[b] &&
                vm_watch_match(cpu->vm, d->lifted[i].gpa + b, 1, true, &addr, &type))
                return true;
    }
    return false;
}

void vm_watch_visit_next(struct vm_cpu *cpu)
{
    struct vm_cpu_step *d = &cpu->step;
    for (size_t i = 0; i < d->nlifted; i++)
        vm_mem_read(&cpu->vm->mem, d->lifted[i].gpa, d->lifted[i].before, VM_PAGE_SIZE);
    vm_watch_predict(cpu);
}

bool vm_watch_unlift(struct vm_cpu *cpu, uint64_t *addr, enum vm_watch_type *type)
{
    struct vm *vm = cpu->vm;
    struct vm_cpu_step *d = &cpu->step;
    bool hit = false;
    for (size_t i = 0; i < d->nlifted; i++) {
        const uint8_t *now = vm_mem_ptr(&vm->mem, d->lifted[i].gpa, VM_PAGE_SIZE);
        for (size_t b = 0; now && !hit && b < VM_PAGE_SIZE; b++)
            if (now[b] != d->lifted[i].before[b])
                hit = vm_watch_match(vm, d->lifted[i].gpa + b, 1, true, addr, type);
    }
    if (!hit && d->predicted) {
        *addr = d->predicted_addr;
        *type = d->predicted_type;
        hit = true;
    }
    d->predicted = false;
    d->visiting = false;
    d->visit_watched = false;
    d->visit_steps = 0;
    free(d->lifted);
    d->lifted = NULL;
    d->nlifted = 0;
    vm_watch_apply_traps(vm);
    vm_gate_release(vm); /* taken by vm_watch_lift() */
    return hit;
}
