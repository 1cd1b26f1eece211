/* vm/virtio_blk.h: a virtio block device (virtio 1.x, section 5.2) over a
 * raw image file, on any vm/virtio.h transport.
 *
 * Contract: one request queue of up to VM_VIRTQ_MAX_SIZE entries;
 * VIRTIO_BLK_T_IN and _OUT move whole sectors (512 bytes) between the
 * image and guest RAM, and a request any byte of which lies past the end
 * of the image, or whose length is not whole sectors, gets
 * VIRTIO_BLK_S_IOERR without touching the file, so the guest never reads
 * or writes outside the image and the file never grows. _FLUSH completes
 * only after fdatasync(2) returned. _GET_ID gives a serial derived from
 * the image's absolute path (stable across runs). A read-only drive offers
 * VIRTIO_BLK_F_RO and answers writes with _IOERR. Unknown types get
 * _UNSUPP. A chain with no byte for the status cannot be answered and
 * goes back with nothing written.
 *
 * The image is opened with an open-file-description lock (F_OFD_SETLK:
 * shared for a read-only drive, exclusive otherwise), so a second kvmstub,
 * or a second drive on the same file, is refused while one writes it.
 *
 * Requests are served in queue_notify, on the thread that notified, under
 * the device's lock (vm/virtio.h). */
#ifndef VM_VIRTIO_BLK_H
#define VM_VIRTIO_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio.h"

#define VM_VIRTIO_BLK_ID 2u
#define VM_VIRTIO_BLK_SECTOR 512u
#define VM_VIRTIO_BLK_ID_BYTES 20u

#define VM_VIRTIO_BLK_T_IN 0u
#define VM_VIRTIO_BLK_T_OUT 1u
#define VM_VIRTIO_BLK_T_FLUSH 4u
#define VM_VIRTIO_BLK_T_GET_ID 8u
#define VM_VIRTIO_BLK_S_OK 0u
#define VM_VIRTIO_BLK_S_IOERR 1u
#define VM_VIRTIO_BLK_S_UNSUPP 2u

#define VM_VIRTIO_BLK_F_SEG_MAX (1ull << 2)
#define VM_VIRTIO_BLK_F_RO (1ull << 5)
#define VM_VIRTIO_BLK_F_BLK_SIZE (1ull << 6)
#define VM_VIRTIO_BLK_F_FLUSH (1ull << 9)

struct vm_virtio_blk_stats {
    uint64_t reads, writes, flushes, get_ids, errors, unsupported;
    uint64_t syncs; /* fdatasync calls: flushes, and writes without FLUSH */
};

struct vm_virtio_blk {
    struct vm_virtio vdev;
    int fd;
    bool owns_fd;
    uint64_t bytes; /* the image's size: a whole number of sectors */
    bool readonly;
    char serial[VM_VIRTIO_BLK_ID_BYTES];
    struct vm_virtio_blk_stats stats;
    struct vm_virtq_chain chain; /* scratch for the request being served */
};

/* Opens path as a drive for guest RAM mem. Refused (with one line in err
 * saying why and what to do): a missing or unreadable file (-errno), not
 * a regular file (-EINVAL), empty or not a whole number of 512-byte sectors
 * (-EINVAL), locked by another user (-EBUSY). */
int vm_virtio_blk_open(struct vm_virtio_blk *b, const char *path, bool readonly,
                       const struct vm_virtq_mem *mem, char *err, size_t errlen);
/* The same over an open descriptor (not closed by vm_virtio_blk_close);
 * name only feeds the serial. No lock is taken. */
int vm_virtio_blk_init_fd(struct vm_virtio_blk *b, int fd, bool readonly, const char *name,
                          const struct vm_virtq_mem *mem, char *err, size_t errlen);
void vm_virtio_blk_close(struct vm_virtio_blk *b);

#endif
