/* vm/virtqueue.h: split virtqueues (virtio 1.x, section 2.7) as a device
 * sees them in guest memory.
 *
 * Everything in guest memory is hostile: ring placement, indices and every
 * descriptor are checked before use, each descriptor is copied out once
 * (the guest may rewrite it meanwhile), and a chain is walked at most as
 * many steps as its table has entries, so a loop ends the walk instead of
 * spinning. A queue that breaks a rule is marked broken and gives nothing
 * more until vm_virtq_reset(): the device then asks for a reset
 * (vm/virtio.h). Segments are host pointers into guest RAM, each checked to
 * lie wholly inside it.
 *
 * Not thread-safe: the device that owns the queue serialises calls (its
 * lock). Guest RAM is read and written with the orderings the spec asks
 * for (acquire on avail->idx, release on used->idx), since vCPUs run
 * while the device works. The host is little-endian (x86), as virtio 1.x. */
#ifndef VM_VIRTQUEUE_H
#define VM_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest queue offered, and the most segments one chain may have
 * (the spec caps a chain, indirect or not, at the queue size). */
#define VM_VIRTQ_MAX_SIZE 256u
#define VM_VIRTQ_MAX_SEGS VM_VIRTQ_MAX_SIZE

/* Guest RAM: guest-physical 0 up to size, at ram in this process. */
struct vm_virtq_mem {
    uint8_t *ram;
    uint64_t size;
};

/* The host address of [gpa, gpa + len) when all of it is RAM, else NULL. */
void *vm_virtq_map(const struct vm_virtq_mem *mem, uint64_t gpa, uint64_t len);

struct vm_virtq {
    /* Set by the driver through the transport while the queue is not ready. */
    uint16_t size; /* entries: a power of two, at most VM_VIRTQ_MAX_SIZE */
    uint64_t desc, avail, used; /* guest-physical addresses of the three parts */
    bool ready;
    /* VIRTIO_F_INDIRECT_DESC was negotiated. */
    bool indirect;
    /* Device state. */
    uint16_t last_avail; /* the next avail entry to take */
    uint16_t used_idx;   /* the next used entry to fill */
    bool broken;
    uint8_t *desc_p, *avail_p, *used_p; /* mapped by vm_virtq_start */
};

struct vm_virtq_seg {
    uint8_t *host;
    uint32_t len;
    bool write; /* device-writable */
};

/* One descriptor chain: its readable segments, then its writable ones. */
struct vm_virtq_chain {
    uint16_t head;
    unsigned nsegs;
    unsigned nread; /* segs[0..nread) are readable, the rest writable */
    uint64_t read_len, write_len;
    struct vm_virtq_seg segs[VM_VIRTQ_MAX_SEGS];
};

/* Back to the state after a device reset: nothing set, not ready. */
void vm_virtq_reset(struct vm_virtq *q);
/* Checks the driver's size and ring placement (inside RAM, aligned as the
 * spec says) and maps the rings. 0, or -EINVAL (the queue is then broken). */
int vm_virtq_start(struct vm_virtq *q, const struct vm_virtq_mem *mem);
/* Takes the next available chain into *chain: 1 when one was taken, 0 when
 * the driver has offered none, -EIO when the queue is (now) broken. */
int vm_virtq_pop(struct vm_virtq *q, const struct vm_virtq_mem *mem, struct vm_virtq_chain *chain);
/* Returns chain head to the driver with len bytes written into it. */
void vm_virtq_push(struct vm_virtq *q, uint16_t head, uint32_t len);
/* After pushes: whether the driver wants an interrupt (it has not set
 * VIRTQ_AVAIL_F_NO_INTERRUPT). */
bool vm_virtq_should_notify(const struct vm_virtq *q);

/* Scatter-gather helpers over a chain's readable (from) or writable (to)
 * bytes, counted from the start of that part: copy what fits and return
 * the number of bytes copied. */
size_t vm_virtq_chain_read(const struct vm_virtq_chain *chain, uint64_t offset, void *buf,
                           size_t len);
size_t vm_virtq_chain_write(const struct vm_virtq_chain *chain, uint64_t offset, const void *buf,
                            size_t len);

#endif
