/* ELF32 and ELF64 executables for x86. */
#include "fail.h"
#include "image_formats.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

#define MAX_PHNUM 1024

struct elf_info {
    bool is64;
    uint64_t entry;
    uint64_t phoff;
    uint16_t phnum;
    uint16_t phentsize;
};

static int header(const struct vm_image *img, struct elf_info *e, char *err, size_t errlen)
{
    const uint8_t *d = img->data;
    if (img->size < EI_NIDENT || memcmp(d, ELFMAG, SELFMAG) != 0)
        return vm_fail(err, errlen, -EINVAL, "%s is not an ELF file", img->name);
    if (d[EI_CLASS] != ELFCLASS32 && d[EI_CLASS] != ELFCLASS64)
        return vm_fail(err, errlen, -EINVAL, "%s is malformed: unknown ELF class %u",
                       img->name, d[EI_CLASS]);
    e->is64 = d[EI_CLASS] == ELFCLASS64;
    size_t need = e->is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
    if (img->size < need)
        return vm_fail(err, errlen, -EINVAL,
                       "%s is truncated: %zu bytes, shorter than an ELF header", img->name,
                       img->size);
    if (d[EI_DATA] != ELFDATA2LSB)
        return vm_fail(err, errlen, -EINVAL, "%s is big-endian; x86 guests are little-endian",
                       img->name);
    uint16_t type, machine;
    if (e->is64) {
        Elf64_Ehdr h;
        memcpy(&h, d, sizeof(h));
        type = h.e_type;
        machine = h.e_machine;
        e->entry = h.e_entry;
        e->phoff = h.e_phoff;
        e->phnum = h.e_phnum;
        e->phentsize = h.e_phentsize;
    } else {
        Elf32_Ehdr h;
        memcpy(&h, d, sizeof(h));
        type = h.e_type;
        machine = h.e_machine;
        e->entry = h.e_entry;
        e->phoff = h.e_phoff;
        e->phnum = h.e_phnum;
        e->phentsize = h.e_phentsize;
    }
    if (type == ET_DYN)
        return vm_fail(err, errlen, -EINVAL,
                       "%s is position-independent (ET_DYN); link a bare-metal guest as a "
                       "fixed executable (ld without -pie, gcc -no-pie)",
                       img->name);
    if (type != ET_EXEC)
        return vm_fail(err, errlen, -EINVAL,
                       "%s is not an ELF executable (e_type %u); link it into one",
                       img->name, type);
    if (machine != (e->is64 ? EM_X86_64 : EM_386))
        return vm_fail(err, errlen, -EINVAL, "%s is an ELF%d file for machine %u, not x86",
                       img->name, e->is64 ? 64 : 32, machine);
    if (e->phnum == 0)
        return vm_fail(err, errlen, -EINVAL, "%s has no program headers: nothing to load",
                       img->name);
    if (e->phnum > MAX_PHNUM)
        return vm_fail(err, errlen, -EINVAL, "%s is malformed: %u program headers",
                       img->name, e->phnum);
    if (e->phentsize != (e->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr)))
        return vm_fail(err, errlen, -EINVAL,
                       "%s is malformed: program header size %u", img->name, e->phentsize);
    if (e->phoff > img->size || (uint64_t)e->phnum * e->phentsize > img->size - e->phoff)
        return vm_fail(err, errlen, -EINVAL,
                       "%s is truncated: its program headers lie past the end of the file",
                       img->name);
    return 0;
}

int vm_elf_segments(struct vm_image *img, char *err, size_t errlen)
{
    struct elf_info e = {0};
    int r = header(img, &e, err, errlen);
    if (r)
        return r;
    img->entry = e.entry;
    bool entry_mapped = false;
    for (uint16_t i = 0; i < e.phnum; i++) {
        const uint8_t *ph = img->data + e.phoff + (uint64_t)i * e.phentsize;
        uint64_t ptype, off, vaddr, paddr, filesz, memsz;
        if (e.is64) {
            Elf64_Phdr p;
            memcpy(&p, ph, sizeof(p));
            ptype = p.p_type, off = p.p_offset, vaddr = p.p_vaddr, paddr = p.p_paddr;
            filesz = p.p_filesz, memsz = p.p_memsz;
        } else {
            Elf32_Phdr p;
            memcpy(&p, ph, sizeof(p));
            ptype = p.p_type, off = p.p_offset, vaddr = p.p_vaddr, paddr = p.p_paddr;
            filesz = p.p_filesz, memsz = p.p_memsz;
        }
        if (ptype != PT_LOAD || memsz == 0)
            continue;
        if (paddr + memsz < paddr || vaddr + memsz < vaddr)
            return vm_fail(err, errlen, -EINVAL,
                           "%s is malformed: a segment wraps around the address space",
                           img->name);
        if ((r = vm_image_add_segment(img, paddr, off, filesz, memsz, err, errlen)))
            return r;
        /* An entry given as a virtual address inside a segment loaded
         * elsewhere starts at the matching physical address. */
        if (!entry_mapped && e.entry >= vaddr && e.entry - vaddr < memsz) {
            img->entry = paddr + (e.entry - vaddr);
            entry_mapped = true;
        }
    }
    if (img->nsegments == 0)
        return vm_fail(err, errlen, -EINVAL, "%s has no loadable (PT_LOAD) segment",
                       img->name);
    return 0;
}

int vm_elf_parse(struct vm_image *img, char *err, size_t errlen)
{
    int r = vm_elf_segments(img, err, errlen);
    if (r)
        return r;
    img->mode = img->data[EI_CLASS] == ELFCLASS64 ? VM_MODE_LONG : VM_MODE_PROTECTED;
    return 0;
}
