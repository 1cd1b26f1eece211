/* Finding a KASLR kernel's text (kaslr.h). */
#include "kaslr.h"

#include "internal.h"
#include "paging.h"

#include <errno.h>

struct first {
    struct vm_mapping m;
    bool found;
};

/* The walk comes in address order: the first leaf that reaches past the
 * mapping's start is its lowest present page, if it starts inside (pages
 * are aligned to their size, so none straddles the 1 GiB-aligned start). */
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
    k->text_virt = f.m.virt;
    k->text_phys = f.m.phys;
    k->slide = (int64_t)(k->text_virt - k->link_virt);
    return 0;
}
