/* vm/image_util.h: what the image format parsers (elf.c, multiboot.c) and
 * image.c share: checked segment bookkeeping (errors through vm_fail, fail.h).
 * Internal to vm/. */
#ifndef VM_IMAGE_UTIL_H
#define VM_IMAGE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"

/* Appends a segment after checking it against the file. */
int vm_image_add_segment(struct vm_image *img, uint64_t paddr, uint64_t offset, uint64_t filesz,
                         uint64_t memsz, char *err, size_t errlen);

#endif
