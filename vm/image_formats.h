/* vm/image_formats.h: what the format parsers share with vm/image.c.
 * Internal to vm/. */
#ifndef VM_IMAGE_FORMATS_H
#define VM_IMAGE_FORMATS_H

#include "image.h"
#include "image_util.h"

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
