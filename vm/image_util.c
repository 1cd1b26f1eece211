/* What the image format parsers share (image_util.h). */
#include "image_util.h"
#include "fail.h"

#include <errno.h>

int vm_image_add_segment(struct vm_image *img, uint64_t paddr, uint64_t offset, uint64_t filesz,
                         uint64_t memsz, char *err, size_t errlen)
{
    if (img->nsegments >= VM_IMAGE_MAX_SEGMENTS)
        return vm_fail(err, errlen, -E2BIG, "%s has more than %d loadable segments",
                       img->name, VM_IMAGE_MAX_SEGMENTS);
    if (filesz > memsz)
        return vm_fail(err, errlen, -EINVAL,
                       "%s is malformed: a segment has more file bytes (0x%llx) than "
                       "memory bytes (0x%llx)",
                       img->name, (unsigned long long)filesz, (unsigned long long)memsz);
    if (offset > img->size || filesz > img->size - offset)
        return vm_fail(err, errlen, -EINVAL,
                       "%s is truncated: a segment needs file bytes 0x%llx-0x%llx but the "
                       "file has 0x%zx",
                       img->name, (unsigned long long)offset,
                       (unsigned long long)(offset + filesz), img->size);
    img->segments[img->nsegments++] =
        (struct vm_segment){.paddr = paddr, .offset = offset, .filesz = filesz, .memsz = memsz};
    return 0;
}
