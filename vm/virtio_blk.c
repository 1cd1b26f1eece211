/* virtio-blk over a raw image. Request layout (virtio 1.x, 5.2.6): a
 * 16-byte header (le32 type, le32 reserved, le64 sector) at the start of
 * the readable part, data, and a status byte at the very end of the
 * writable part, laid out over descriptors any way the driver likes. */
#include "virtio_blk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER_BYTES 16u
#define CONFIG_BYTES 24u /* capacity, size_max, seg_max, geometry, blk_size */
#define QUEUE_SIZE VM_VIRTQ_MAX_SIZE

static void config_read(void *dev, uint32_t offset, uint8_t *data, unsigned size)
{
    struct vm_virtio_blk *b = dev;
    uint8_t cfg[CONFIG_BYTES] = {0};
    uint64_t capacity = b->bytes / VM_VIRTIO_BLK_SECTOR;
    uint32_t seg_max = VM_VIRTQ_MAX_SEGS - 2; /* besides header and status */
    uint32_t blk_size = VM_VIRTIO_BLK_SECTOR;
    memcpy(cfg, &capacity, 8);
    memcpy(cfg + 12, &seg_max, 4);
    memcpy(cfg + 20, &blk_size, 4);
    memcpy(data, cfg + offset, size); /* vm/virtio.c checked the range */
}

/* Moves len bytes between the file at pos and the chain's data segments,
 * which start at byte skip of its readable (out) or writable (in) part.
 * Every segment was checked to lie in RAM; pos + len to lie in the file. */
static int transfer(struct vm_virtio_blk *b, bool to_guest, uint64_t skip, uint64_t pos,
                    uint64_t len)
{
    const struct vm_virtq_chain *c = &b->chain;
    unsigned first = to_guest ? c->nread : 0, end = to_guest ? c->nsegs : c->nread;
    for (unsigned s = first; s < end && len; s++) {
        const struct vm_virtq_seg *seg = &c->segs[s];
        if (skip >= seg->len) {
            skip -= seg->len;
            continue;
        }
        uint8_t *p = seg->host + skip;
        uint64_t n = seg->len - skip;
        if (n > len)
            n = len;
        skip = 0;
        while (n) {
            ssize_t r = to_guest ? pread(b->fd, p, n, (off_t)pos)
                                 : pwrite(b->fd, p, n, (off_t)pos);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return r < 0 ? -errno : -EIO; /* 0: the file shrank under us */
            p += r;
            pos += (uint64_t)r;
            n -= (uint64_t)r;
            len -= (uint64_t)r;
        }
    }
    return len ? -EIO : 0;
}

/* Whether [sector, sector + len) is whole sectors inside the image. */
static bool in_image(const struct vm_virtio_blk *b, uint64_t sector, uint64_t len)
{
    uint64_t sectors = b->bytes / VM_VIRTIO_BLK_SECTOR;
    return len % VM_VIRTIO_BLK_SECTOR == 0 && sector <= sectors &&
           len / VM_VIRTIO_BLK_SECTOR <= sectors - sector;
}

static int sync_image(struct vm_virtio_blk *b)
{
    b->stats.syncs++;
    while (fdatasync(b->fd) < 0)
        if (errno != EINTR)
            return -errno;
    return 0;
}

/* Serves the request in b->chain; returns the bytes written into it. */
static uint32_t serve(struct vm_virtio_blk *b)
{
    const struct vm_virtq_chain *c = &b->chain;
    if (c->write_len == 0)
        return 0; /* nowhere to put a status */
    uint64_t in_len = c->write_len - 1; /* writable bytes before the status */
    uint8_t hdr[HEADER_BYTES];
    uint32_t type = UINT32_MAX;
    uint64_t sector = 0;
    if (vm_virtq_chain_read(c, 0, hdr, sizeof(hdr)) == sizeof(hdr)) {
        memcpy(&type, hdr, 4);
        memcpy(&sector, hdr + 8, 8);
    }
    uint8_t status = VM_VIRTIO_BLK_S_OK;
    uint64_t written = 0;
    switch (type) {
    case VM_VIRTIO_BLK_T_IN:
        b->stats.reads++;
        if (!in_image(b, sector, in_len) ||
            transfer(b, true, 0, sector * VM_VIRTIO_BLK_SECTOR, in_len))
            status = VM_VIRTIO_BLK_S_IOERR;
        else
            written = in_len;
        break;
    case VM_VIRTIO_BLK_T_OUT: {
        b->stats.writes++;
        uint64_t out_len = c->read_len - HEADER_BYTES;
        /* A driver that did not take VIRTIO_BLK_F_FLUSH has no way to ask
         * for durability, so the cache is write-through for it (5.2.6.4). */
        if (b->readonly || !in_image(b, sector, out_len) ||
            transfer(b, false, HEADER_BYTES, sector * VM_VIRTIO_BLK_SECTOR, out_len) ||
            (!(b->vdev.driver_features & VM_VIRTIO_BLK_F_FLUSH) && sync_image(b)))
            status = VM_VIRTIO_BLK_S_IOERR;
        break;
    }
    case VM_VIRTIO_BLK_T_FLUSH:
        b->stats.flushes++;
        if (sync_image(b))
            status = VM_VIRTIO_BLK_S_IOERR;
        break;
    case VM_VIRTIO_BLK_T_GET_ID:
        b->stats.get_ids++;
        written = vm_virtq_chain_write(c, 0, b->serial,
                                       in_len < sizeof(b->serial) ? in_len : sizeof(b->serial));
        break;
    default:
        b->stats.unsupported++;
        status = VM_VIRTIO_BLK_S_UNSUPP;
        break;
    }
    if (status == VM_VIRTIO_BLK_S_IOERR)
        b->stats.errors++;
    vm_virtq_chain_write(c, in_len, &status, 1);
    return (uint32_t)(written + 1);
}

static void queue_notify(void *dev, unsigned index)
{
    struct vm_virtio_blk *b = dev;
    struct vm_virtq *q = vm_virtio_queue(&b->vdev, index);
    bool pushed = false;
    /* At most a ring's worth per notification: a guest that keeps adding
     * from another vCPU notifies again, and this thread gets back to its
     * vCPU meanwhile. */
    for (unsigned n = 0; n < q->size; n++) {
        int r = vm_virtq_pop(q, &b->vdev.mem, &b->chain);
        if (r < 0) {
            vm_virtio_fail(&b->vdev, "a bad available ring or descriptor chain: an index past "
                                     "the ring, a loop, an address outside guest RAM or a "
                                     "chain too long");
            break;
        }
        if (r == 0)
            break;
        vm_virtq_push(q, b->chain.head, serve(b));
        pushed = true;
    }
    if (pushed)
        vm_virtio_used(&b->vdev, index);
}

static const struct vm_virtio_ops blk_ops = {
    .config_read = config_read,
    .queue_notify = queue_notify,
};

/* FNV-1a over the name: the same image gives the same serial every run. */
static void make_serial(char out[VM_VIRTIO_BLK_ID_BYTES], const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = name; *p; p++) {
        h ^= (uint8_t)*p;
        h *= 0x100000001b3ull;
    }
    char buf[32];
    snprintf(buf, sizeof(buf), "kvmstub-%012llx", (unsigned long long)(h & 0xffffffffffffull));
    memcpy(out, buf, VM_VIRTIO_BLK_ID_BYTES); /* exactly 20: no NUL, as the spec allows */
}

int vm_virtio_blk_init_fd(struct vm_virtio_blk *b, int fd, bool readonly, const char *name,
                          const struct vm_virtq_mem *mem, char *err, size_t errlen)
{
    memset(b, 0, sizeof(*b));
    b->fd = fd;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        snprintf(err, errlen, "drive %s: cannot stat it: %s", name, strerror(e));
        return -e;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "drive %s: not a regular file; give a raw disk image", name);
        return -EINVAL;
    }
    if (st.st_size <= 0 || st.st_size % VM_VIRTIO_BLK_SECTOR) {
        snprintf(err, errlen,
                 "drive %s: its size (%lld bytes) is not a positive multiple of 512; "
                 "a raw image is whole sectors (truncate -s to round it up)",
                 name, (long long)st.st_size);
        return -EINVAL;
    }
    b->bytes = (uint64_t)st.st_size;
    b->readonly = readonly;
    make_serial(b->serial, name);
    struct vm_virtio *v = &b->vdev;
    v->device_id = VM_VIRTIO_BLK_ID;
    v->device_features = VM_VIRTIO_BLK_F_SEG_MAX | VM_VIRTIO_BLK_F_BLK_SIZE |
                         VM_VIRTIO_BLK_F_FLUSH | (readonly ? VM_VIRTIO_BLK_F_RO : 0);
    v->nqueues = 1;
    v->queue_max = QUEUE_SIZE;
    v->config_len = CONFIG_BYTES;
    v->ops = &blk_ops;
    v->dev = b;
    v->mem = *mem;
    int r = vm_virtio_init(v);
    if (r)
        snprintf(err, errlen, "drive %s: cannot set up its virtio device: %s", name,
                 strerror(-r));
    return r;
}

int vm_virtio_blk_open(struct vm_virtio_blk *b, const char *path, bool readonly,
                       const struct vm_virtq_mem *mem, char *err, size_t errlen)
{
    int fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "drive %s: %s%s", path, strerror(e),
                 e == EACCES || e == EROFS ? (readonly ? "" : "; add ,readonly to use it read-only")
                                           : "");
        return -e;
    }
    /* The serial comes from the absolute path, so a relative name given
     * from another directory names the same disk. */
    char abs[PATH_MAX];
    const char *name = realpath(path, abs) ? abs : path;
    int r = vm_virtio_blk_init_fd(b, fd, readonly, name, mem, err, errlen);
    if (r) {
        close(fd);
        return r;
    }
    b->owns_fd = true;
    struct flock lk = {.l_type = readonly ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_OFD_SETLK, &lk) < 0) {
        int e = errno;
        vm_virtio_blk_close(b);
        if (e == EAGAIN || e == EACCES) {
            snprintf(err, errlen,
                     "drive %s: another program (or drive) is %s it; stop that one first%s", path,
                     readonly ? "writing" : "using",
                     readonly ? "" : ", or add ,readonly to share it read-only");
            return -EBUSY;
        }
        snprintf(err, errlen, "drive %s: cannot lock it: %s", path, strerror(e));
        return -e;
    }
    return 0;
}

void vm_virtio_blk_close(struct vm_virtio_blk *b)
{
    vm_virtio_destroy(&b->vdev);
    if (b->owns_fd && b->fd >= 0)
        close(b->fd);
    b->fd = -1;
    b->owns_fd = false;
}
