/* vm/kaslr.h: where a Linux kernel loaded by its boot protocol runs now.
 *
 * With KASLR (CONFIG_RANDOMIZE_BASE) the kernel's decompressor picks a
 * physical address and, on x86-64 independently, a virtual offset for the
 * kernel's text, applies its relocations and jumps there; nothing of it
 * reaches kvmstub. Once the kernel runs on its own page tables (head64.c's
 * __startup_64 marks every 2 MiB page of the kernel-image mapping outside
 * _text.._end not present, cleanup_highmap() keeps it so), the first
 * present page of that mapping (0xffffffff80000000, 1 GiB) is _text, which
 * the kernel aligns to CONFIG_PHYSICAL_ALIGN, at least 2 MiB on x86-64.
 * vmlinux links _text at 0xffffffff80000000 + LOAD_PHYSICAL_ADDR, the
 * setup header's pref_address.
 *
 * vm_kaslr_find walks the page tables cpu uses now (its owner calls it,
 * with the vCPU stopped). Errors:
 *   -ENOEXEC  the image is not a 64-bit Linux loaded by its boot protocol
 *   -ENODATA  the CPU's paging is off (an AP not started yet)
 *   -EAGAIN   nothing is mapped there yet: the kernel has not chosen its
 *             place (still in the decompressor, or before it)
 *   others    from the page-table walk */
#ifndef VM_KASLR_H
#define VM_KASLR_H

#include <stdint.h>

struct vm_cpu;

struct vm_kaslr {
    uint64_t link_virt, link_phys; /* _text as vmlinux links it */
    uint64_t text_virt, text_phys; /* _text where it runs */
    int64_t slide;                 /* text_virt - link_virt: what gdb adds to vmlinux */
};

int vm_kaslr_find(struct vm_cpu *cpu, struct vm_kaslr *k);

#endif
