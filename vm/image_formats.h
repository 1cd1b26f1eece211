/* vm/image_formats.h: what the format parsers share with vm/image.c.
 * Internal to vm/. */
#ifndef VM_IMAGE_FORMATS_H
#define VM_IMAGE_FORMATS_H

#include "image.h"

int vm_image_error(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Appends a segment after checking it against the file. */
int vm_image_add_segment(struct vm_image *img, uint64_t paddr, uint64_t offset, uint64_t filesz,
                         uint64_t memsz, char *err, size_t errlen);

/* ELF: segments, entry and mode (ELF64 long, ELF32 protected). */
int vm_elf_parse(struct vm_image *img, char *err, size_t errlen);
/* ELF segments and entry only, for multiboot kernels in ELF form. */
int vm_elf_segments(struct vm_image *img, char *err, size_t errlen);

/* Offset of a valid multiboot header in the first 8 KiB, or -1. */
long vm_multiboot_find(const struct vm_image *img);
int vm_multiboot_parse(struct vm_image *img, char *err, size_t errlen);
/* Checks the command line fits and decides where the information goes. */
int vm_multiboot_info(struct vm *vm, struct vm_image *img, const char *cmdline, char *err,
                      size_t errlen);
/* Writes the information structure, memory map and strings. */
int vm_multiboot_write(struct vm *vm, const struct vm_image *img, const char *cmdline);

#endif
