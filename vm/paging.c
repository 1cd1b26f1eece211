/* Walking the guest's page tables (paging.h). */
#include "paging.h"

#include "internal.h"

#include <errno.h>
#include <string.h>

#define CR0_PG (1ull << 31)
#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define CR4_LA57 (1ull << 12)
#define EFER_LMA (1ull << 10)
#define ADDR_MASK 0x000ffffffffff000ull

struct walk {
    struct vm_cpu *cpu;
    vm_paging_fn fn;
    void *ctx;
    unsigned levels;  /* of this mode */
    unsigned bits;    /* width of linear addresses: 32, 48 or 57 */
    bool wide;        /* 8-byte entries */
    bool pse;         /* large pages in 32-bit paging */
    int stop;
};

static uint64_t canonical(uint64_t v, unsigned bits)
{
    if (bits >= 64 || !(v & (1ull << (bits - 1))))
        return v;
    return v | ~((1ull << bits) - 1);
}

/* PAE's top level: 4 entries of 1 GiB, with no W/U/NX (the permissions
 * come from below) and never a leaf. */
static bool is_pdpte(const struct walk *w, unsigned level)
{
    return w->wide && w->levels == 3 && level == 3;
}

/* log2 of the span of one entry at level. */
static unsigned span_shift(const struct walk *w, unsigned level)
{
    return w->wide ? 12 + 9 * (level - 1) : 12 + 10 * (level - 1);
}

static unsigned entry_count(const struct walk *w, unsigned level)
{
    return is_pdpte(w, level) ? 4 : w->wide ? 512 : 1024;
}

/* A present entry's bits as its leaf keeps them: W and U only where every
 * level above allows them (inherit), NX where any level sets it. */
static uint64_t entry_flags(const struct walk *w, unsigned level, uint64_t e, uint64_t inherit)
{
    if (is_pdpte(w, level))
        return inherit;
    uint64_t flags = (e & 0xfffull) | (e & VM_PTE_NX);
    flags &= inherit | ~(VM_PTE_W | VM_PTE_U);
    return flags | (inherit & VM_PTE_NX);
}

static bool entry_is_leaf(const struct walk *w, unsigned level, uint64_t e)
{
    return level == 1 || (!is_pdpte(w, level) && (e & VM_PTE_PS) && (w->wide || w->pse) &&
                          (level == 2 || (w->wide && level == 3)));
}

static uint64_t leaf_phys(const struct walk *w, unsigned level, uint64_t e)
{
    if (level > 1 && !w->wide) /* 4 MiB page: bits 13-20 extend the address */
        return (e & 0xffc00000ull) | ((e & 0x1fe000ull) << 19);
    return e & ADDR_MASK & ~((1ull << span_shift(w, level)) - 1);
}

static uint64_t next_table(const struct walk *w, uint64_t e)
{
    return w->wide ? e & ADDR_MASK : e & 0xfffff000ull;
}

/* Entry i of the table at gpa into e: 0, or -EFAULT outside RAM. */
static int read_entry(const struct walk *w, uint64_t gpa, uint64_t i, uint64_t *e)
{
    size_t size = w->wide ? 8 : 4;
    *e = 0;
    return vm_mem_read(&w->cpu->vm->mem, gpa + i * size, e, size) ? -EFAULT : 0;
}

/* The table at gpa, level counts down to 1 (the 4 KiB leaves). */
static void table(struct walk *w, uint64_t gpa, unsigned level, uint64_t base, uint64_t inherit)
{
    unsigned entries = entry_count(w, level), shift = span_shift(w, level);
    for (unsigned i = 0; i < entries && !w->stop; i++) {
        uint64_t e;
        if (read_entry(w, gpa, i, &e))
            return; /* a table outside RAM: nothing mapped below it */
        if (!(e & VM_PTE_P))
            continue;
        uint64_t virt = base + ((uint64_t)i << shift);
        uint64_t flags = entry_flags(w, level, e, inherit);
        if (entry_is_leaf(w, level, e)) {
            struct vm_mapping m = {.virt = canonical(virt, w->bits), .size = 1ull << shift,
                                   .phys = leaf_phys(w, level, e), .flags = flags};
            w->stop = w->fn(w->ctx, &m);
            continue;
        }
        table(w, next_table(w, e), level - 1, virt, flags);
    }
}

/* The paging mode the vCPU is in now, and its top table. */
static int walk_start(struct vm_cpu *cpu, struct walk *w, uint64_t *root)
{
    int err = vm_regcache_fetch(&cpu->rc, VM_RC_SREGS);
    if (err)
        return err;
    const struct kvm_sregs *s = &cpu->rc.sregs;
    if (!(s->cr0 & CR0_PG))
        return -ENODATA;
    *w = (struct walk){.cpu = cpu};
    if (s->efer & EFER_LMA) {
        bool la57 = s->cr4 & CR4_LA57;
        w->levels = la57 ? 5 : 4;
        w->bits = la57 ? 57 : 48;
        w->wide = true;
        *root = s->cr3 & ADDR_MASK;
    } else if (s->cr4 & CR4_PAE) {
        w->levels = 3;
        w->bits = 32;
        w->wide = true;
        *root = s->cr3 & 0xffffffe0ull;
    } else {
        w->levels = 2;
        w->bits = 32;
        w->pse = s->cr4 & CR4_PSE;
        *root = s->cr3 & 0xfffff000ull;
    }
    return 0;
}

/* Everything is allowed until a level takes it away. */
#define ALL_ALLOWED (VM_PTE_W | VM_PTE_U)

int vm_paging_walk(struct vm_cpu *cpu, vm_paging_fn fn, void *ctx)
{
    struct walk w;
    uint64_t root;
    int err = walk_start(cpu, &w, &root);
    if (err)
        return err;
    w.fn = fn;
    w.ctx = ctx;
    table(&w, root, w.levels, 0, ALL_ALLOWED);
    return 0;
}

int vm_paging_lookup(struct vm_cpu *cpu, uint64_t linear, struct vm_mapping *m)
{
    struct walk w;
    uint64_t gpa;
    int err = walk_start(cpu, &w, &gpa);
    if (err)
        return err;
    if (w.bits == 32)
        linear &= 0xffffffffull; /* as the CPU forms 32-bit addresses */
    else if (canonical(linear, w.bits) != linear)
        return -EFAULT;
    uint64_t flags = ALL_ALLOWED;
    for (unsigned level = w.levels; level >= 1; level--) {
        unsigned shift = span_shift(&w, level);
        uint64_t e;
        if (read_entry(&w, gpa, (linear >> shift) & (entry_count(&w, level) - 1), &e) ||
            !(e & VM_PTE_P))
            return -EFAULT;
        flags = entry_flags(&w, level, e, flags);
        if (entry_is_leaf(&w, level, e)) {
            *m = (struct vm_mapping){.virt = linear & ~((1ull << shift) - 1),
                                     .size = 1ull << shift,
                                     .phys = leaf_phys(&w, level, e),
                                     .flags = flags};
            return 0;
        }
        gpa = next_table(&w, e);
    }
    return -EFAULT; /* not reached: level 1 is always a leaf */
}
