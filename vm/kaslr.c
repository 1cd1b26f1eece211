/* Finding a KASLR kernel's text (kaslr.h). */
#include "kaslr.h"

#include "internal.h"
#include "paging.h"

#include <errno.h>

struct first {
    struct vm_mapping m;
    bool found;
};

/* The walk comes in address order: the first leaf at or above the mapping's
 * start is the lowest present page of it, if it lies inside. */
static int first_in_text_map(void *ctx, const struct vm_mapping *m)
{
    struct first *f = ctx;
    if (m->virt + m->size <= VM_LINUX_TEXT_MAP)
        return 0;
    if (m->virt - VM_LINUX_TEXT_MAP < VM_LINUX_TEXT_MAP_SIZE) {
        f->m = *m;
        f->found = true;
    }
    return 1;
}

int vm_kaslr_find(struct vm_cpu *cpu, struct vm_kaslr *k)
{
    const struct vm *vm = cpu->vm;
    if (!vm->linux_text)
        return -ENOEXEC;
    struct first f = {.found = false};
    int r = vm_paging_walk(cpu, first_in_text_map, &f);
    if (r)
        return r;
    if (!f.found)
        return -EAGAIN;
    k->link_phys = vm->linux_link_phys;
    k->link_virt = VM_LINUX_TEXT_MAP + vm->linux_link_phys;
    /* A large page reaching below the mapping's start cannot be the
     * kernel's (which starts at least LOAD_PHYSICAL_ADDR above it). */
    uint64_t skip = f.m.virt < VM_LINUX_TEXT_MAP ? VM_LINUX_TEXT_MAP - f.m.virt : 0;
    k->text_virt = f.m.virt + skip;
    k->text_phys = f.m.phys + skip;
    k->slide = (int64_t)(k->text_virt - k->link_virt);
    return 0;
}
