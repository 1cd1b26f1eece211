/* vm/paging.h: the guest's page tables as a list of mappings, for a
 * debugger's "info mem" and "info tlb", or for one address. Walked in guest-physical memory as
 * the CPU would, in whatever paging mode the vCPU is in now: 32-bit (4 KiB
 * and, with CR4.PSE, 4 MiB pages), PAE, 4-level and 5-level long mode.
 * Table entries outside RAM end that branch. Only the owner of the stopped
 * vCPU calls it. */
#ifndef VM_PAGING_H
#define VM_PAGING_H

#include <stdbool.h>
#include <stdint.h>

struct vm_cpu;

#define VM_PTE_P (1ull << 0)
#define VM_PTE_W (1ull << 1)
#define VM_PTE_U (1ull << 2)
#define VM_PTE_PWT (1ull << 3)
#define VM_PTE_PCD (1ull << 4)
#define VM_PTE_A (1ull << 5)
#define VM_PTE_D (1ull << 6)
#define VM_PTE_PS (1ull << 7)
#define VM_PTE_G (1ull << 8)
#define VM_PTE_NX (1ull << 63)

struct vm_mapping {
    uint64_t virt; /* canonical linear address */
    uint64_t phys;
    uint64_t size; /* 4 KiB, 2 MiB, 4 MiB or 1 GiB */
    /* The leaf entry's bits (VM_PTE_*), with W, U cleared and NX set where
     * an upper level takes them away. */
    uint64_t flags;
};

/* Calls fn for each present leaf in address order; fn returns nonzero to
 * stop the walk. -ENODATA when paging is off (linear is physical). */
typedef int (*vm_paging_fn)(void *ctx, const struct vm_mapping *m);
int vm_paging_walk(struct vm_cpu *cpu, vm_paging_fn fn, void *ctx);
/* The leaf that maps linear (m->virt its first address), as the tables
 * are in memory: W, U, NX and the CPU's SMAP and protection keys do not
 * stop it, nor does it set an Accessed bit. -EFAULT where nothing is
 * present (or linear is not canonical), -ENODATA when paging is off. */
int vm_paging_lookup(struct vm_cpu *cpu, uint64_t linear, struct vm_mapping *m);

#endif
