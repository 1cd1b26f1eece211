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

/* The table at gpa, level counts down to 1 (the 4 KiB leaves). */
static void table(struct walk *w, uint64_t gpa, unsigned level, uint64_t base, uint64_t inherit)
{
    unsigned entries = w->wide ? 512 : 1024, shift = w->wide ? 12 + 9 * (level - 1)
                                                              : 12 + 10 * (level - 1);
    /* PAE's top level has 4 entries of 1 GiB. */
    if (w->wide && w->levels == 3 && level == 3)
        entries = 4;
    for (unsigned i = 0; i < entries && !w->stop; i++) {
        uint64_t e = 0;
        size_t size = w->wide ? 8 : 4;
        if (vm_mem_read(&w->cpu->vm->mem, gpa + (uint64_t)i * size, &e, size))
            return; /* a table outside RAM: nothing mapped below it */
        if (!(e & VM_PTE_P))
            continue;
        uint64_t virt = base + ((uint64_t)i << shift);
        /* PAE's PDPTEs carry no W/U/NX: the permissions come from below. */
        bool pdpte = w->wide && w->levels == 3 && level == 3;
        uint64_t flags = pdpte ? inherit : (e & 0xfffull) | (e & VM_PTE_NX);
        if (!pdpte) {
            flags &= inherit | ~(VM_PTE_W | VM_PTE_U);
            flags |= inherit & VM_PTE_NX;
        }
        bool leaf = level == 1 || (!pdpte && (e & VM_PTE_PS) && (w->wide || w->pse) &&
                                   (level == 2 || (w->wide && level == 3)));
        if (leaf) {
            struct vm_mapping m = {.virt = canonical(virt, w->bits), .size = 1ull << shift,
                                   .flags = flags};
            if (level > 1 && !w->wide) /* 4 MiB page: bits 13-20 extend the address */
                m.phys = (e & 0xffc00000ull) | ((e & 0x1fe000ull) << 19);
            else
                m.phys = e & ADDR_MASK & ~(m.size - 1);
            w->stop = w->fn(w->ctx, &m);
            continue;
        }
        uint64_t next = w->wide ? e & ADDR_MASK : e & 0xfffff000ull;
        table(w, next, level - 1, virt, pdpte ? inherit : flags);
    }
}

int vm_paging_walk(struct vm_cpu *cpu, vm_paging_fn fn, void *ctx)
{
    int err = vm_regcache_fetch(&cpu->rc, VM_RC_SREGS);
    if (err)
        return err;
    const struct kvm_sregs *s = &cpu->rc.sregs;
    if (!(s->cr0 & CR0_PG))
        return -ENODATA;
    struct walk w = {.cpu = cpu, .fn = fn, .ctx = ctx};
    uint64_t root;
    if (s->efer & EFER_LMA) {
        bool la57 = s->cr4 & CR4_LA57;
        w.levels = la57 ? 5 : 4;
        w.bits = la57 ? 57 : 48;
        w.wide = true;
        root = s->cr3 & ADDR_MASK;
    } else if (s->cr4 & CR4_PAE) {
        w.levels = 3;
        w.bits = 32;
        w.wide = true;
        root = s->cr3 & 0xffffffe0ull;
    } else {
        w.levels = 2;
        w.bits = 32;
        w.pse = s->cr4 & CR4_PSE;
        root = s->cr3 & 0xfffff000ull;
    }
    /* Everything is allowed until a level takes it away. */
    table(&w, root, w.levels, 0, VM_PTE_W | VM_PTE_U);
    return 0;
}
