/* Multiboot version 1 kernels, as GRUB legacy and qemu -kernel boot them. */
#include "boot.h"
#include "fail.h"
#include "image_formats.h"
#include "internal.h"
#include "kvmstub_version.h"

#include <errno.h>
#include <string.h>

#define SEARCH_LIMIT 8192u
#define F_PAGE_ALIGN (1u << 0)
#define F_MEMORY_INFO (1u << 1)
#define F_VIDEO (1u << 2)
#define F_AOUT_KLUDGE (1u << 16)
#define F_UNDERSTOOD (F_PAGE_ALIGN | F_MEMORY_INFO | F_VIDEO)

#define MBI_MEMORY (1u << 0)
#define MBI_CMDLINE (1u << 2)
#define MBI_MMAP (1u << 6)
#define MBI_LOADER_NAME (1u << 9)
#define MBI_SIZE 120u
#define LOADER_NAME "kvmstub " KVMSTUB_VERSION

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

long vm_multiboot_find(const struct vm_image *img)
{
    size_t limit = img->size < SEARCH_LIMIT ? img->size : SEARCH_LIMIT;
    for (size_t off = 0; off + 12 <= limit; off += 4) {
        const uint8_t *h = img->data + off;
        if (le32(h) == VM_MULTIBOOT_MAGIC && le32(h) + le32(h + 4) + le32(h + 8) == 0)
            return (long)off;
    }
    return -1;
}

int vm_multiboot_parse(struct vm_image *img, char *err, size_t errlen)
{
    long off = vm_multiboot_find(img);
    if (off < 0)
        return vm_fail(err, errlen, -EINVAL,
                       "%s has no multiboot header (magic 0x1BADB002 with a valid "
                       "checksum) in its first 8 KiB",
                       img->name);
    const uint8_t *h = img->data + off;
    uint32_t flags = le32(h + 4);
    uint32_t required = flags & 0xffff;
    if (required & ~F_UNDERSTOOD)
        return vm_fail(err, errlen, -ENOTSUP,
                       "%s requires multiboot features kvmstub does not provide (flags "
                       "0x%04x; kvmstub understands 0x%04x)",
                       img->name, required, F_UNDERSTOOD);
    img->mode = VM_MODE_PROTECTED;
    if (!(flags & F_AOUT_KLUDGE)) {
        int r = vm_elf_segments(img, err, errlen);
        if (r == -EINVAL && memcmp(img->data, "\x7f" "ELF", 4) != 0)
            return vm_fail(err, errlen, -EINVAL,
                           "%s is a multiboot kernel that is neither ELF nor gives load "
                           "addresses (flag 16)",
                           img->name);
        return r;
    }
    if ((size_t)off + 32 > img->size)
        return vm_fail(err, errlen, -EINVAL,
                       "%s is truncated: its multiboot header's address fields are cut off",
                       img->name);
    uint32_t header_addr = le32(h + 12), load_addr = le32(h + 16);
    uint32_t load_end = le32(h + 20), bss_end = le32(h + 24), entry = le32(h + 28);
    if (header_addr < load_addr || header_addr - load_addr > (uint32_t)off)
        return vm_fail(err, errlen, -EINVAL,
                       "%s is malformed: multiboot header_addr 0x%x does not fit load_addr "
                       "0x%x at file offset 0x%lx",
                       img->name, header_addr, load_addr, off);
    uint64_t file_off = (uint64_t)off - (header_addr - load_addr);
    uint64_t filesz = load_end ? (uint64_t)load_end - load_addr : img->size - file_off;
    if (load_end && load_end < load_addr)
        return vm_fail(err, errlen, -EINVAL,
                       "%s is malformed: multiboot load_end_addr is below load_addr",
                       img->name);
    uint64_t memsz = filesz;
    if (bss_end) {
        if (bss_end < load_addr + filesz)
            return vm_fail(err, errlen, -EINVAL,
                           "%s is malformed: multiboot bss_end_addr is below the loaded "
                           "data",
                           img->name);
        memsz = (uint64_t)bss_end - load_addr;
    }
    img->entry = entry;
    return vm_image_add_segment(img, load_addr, file_off, filesz, memsz, err, errlen);
}

static size_t cmdline_len(const struct vm_image *img, const char *cmdline)
{
    return strlen(img->name) + (cmdline && *cmdline ? 1 + strlen(cmdline) : 0);
}

int vm_multiboot_info(struct vm *vm, struct vm_image *img, const char *cmdline, char *err,
                      size_t errlen)
{
    /* GRUB and qemu -kernel pass the kernel's name first, then the rest. */
    if (cmdline_len(img, cmdline) >= VM_BOOT_CMDLINE_MAX)
        return vm_fail(err, errlen, -E2BIG,
                       "the multiboot command line is too long: at most %u bytes "
                       "including the image name",
                       VM_BOOT_CMDLINE_MAX - 1);
    img->mbi = vm_boot_area(vm) + VM_BOOT_MBI;
    return 0;
}

int vm_multiboot_write(struct vm *vm, const struct vm_image *img, const char *cmdline)
{
    uint64_t area = vm_boot_area(vm);
    uint8_t mbi[MBI_SIZE] = {0};
    uint8_t mmap[5 * 24];
    /* The memory map of a PC: conventional memory, the EBDA and BIOS
     * reserved, the VGA hole absent, extended memory up to the boot area,
     * which is reserved. */
    const struct {
        uint64_t base, len;
        uint32_t type;
    } ranges[] = {
        {0, 0x9fc00, 1},
        {0x9fc00, 0x400, 2},
        {0xf0000, 0x10000, 2},
        {0x100000, area - 0x100000, 1},
        {area, VM_BOOT_AREA_SIZE, 2},
    };
    for (size_t i = 0; i < 5; i++) {
        uint8_t *e = mmap + i * 24;
        put32(e, 20); /* size of the rest of the entry */
        put64(e + 4, ranges[i].base);
        put64(e + 12, ranges[i].len);
        put32(e + 20, ranges[i].type);
    }
    put32(mbi + 0, MBI_MEMORY | MBI_CMDLINE | MBI_MMAP | MBI_LOADER_NAME);
    put32(mbi + 4, 639);                                        /* mem_lower, KiB */
    put32(mbi + 8, (uint32_t)((area - 0x100000) / 1024));       /* mem_upper, KiB */
    put32(mbi + 16, (uint32_t)(area + VM_BOOT_CMDLINE));        /* cmdline */
    put32(mbi + 44, sizeof(mmap));                              /* mmap_length */
    put32(mbi + 48, (uint32_t)(area + VM_BOOT_MMAP));           /* mmap_addr */
    put32(mbi + 64, (uint32_t)(area + VM_BOOT_LOADER_NAME));    /* boot_loader_name */

    char line[VM_BOOT_CMDLINE_MAX];
    size_t n = cmdline_len(img, cmdline);
    if (n >= sizeof(line))
        return -E2BIG;
    strcpy(line, img->name);
    if (cmdline && *cmdline) {
        strcat(line, " ");
        strcat(line, cmdline);
    }
    int r;
    if ((r = vm_mem_write(&vm->mem, area + VM_BOOT_MBI, mbi, sizeof(mbi))) ||
        (r = vm_mem_write(&vm->mem, area + VM_BOOT_MMAP, mmap, sizeof(mmap))) ||
        (r = vm_mem_write(&vm->mem, area + VM_BOOT_CMDLINE, line, n + 1)) ||
        (r = vm_mem_write(&vm->mem, area + VM_BOOT_LOADER_NAME, LOADER_NAME,
                          sizeof(LOADER_NAME))))
        return r;
    return 0;
}
