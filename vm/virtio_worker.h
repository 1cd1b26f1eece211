/* vm/virtio_worker.h: a thread that serves a virtio device's queues, so
 * that a vCPU's notification costs a counter increment and the disk I/O
 * happens elsewhere.
 *
 * Contract: started on a device (vm/virtio.h), the worker owns an eventfd;
 * each notification (vm_virtio_notify, or KVM writing the eventfd itself
 * when it is registered with KVM_IOEVENTFD on the notify address) wakes it
 * and it serves every ready queue under the device's lock, so resets and
 * snapshot saves never overlap a request. vm_virtio_worker_pause() returns
 * once no request is being served and none will start until
 * vm_virtio_worker_resume() (pauses nest): what a debugger stop or a RAM
 * snapshot needs, since the worker writes guest RAM. Notifications made
 * while paused are served after the resume, none lost. Pause, resume and
 * stop are for the thread that owns the VM; the worker never touches
 * vCPUs. Stop the worker before the device is destroyed (it uses the
 * device's lock), and do not pause it while holding that lock. */
#ifndef VM_VIRTIO_WORKER_H
#define VM_VIRTIO_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "virtio.h"

struct vm_virtio_worker {
    struct vm_virtio *v;
    int efd;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned paused;
    bool busy, stop, started;
    /* Notifications the eventfd counted (KVM's ioeventfd writes and the
     * kicks below), and those handed over by a vCPU thread after an exit
     * to userspace; atomics, for `monitor info disks`. */
    uint64_t notifications, kicks;
};

/* 0, or a negative errno (no eventfd, no thread). */
int vm_virtio_worker_start(struct vm_virtio_worker *w, struct vm_virtio *v);
/* Joins the thread (after the request in hand) and closes the eventfd. */
void vm_virtio_worker_stop(struct vm_virtio_worker *w);
void vm_virtio_worker_pause(struct vm_virtio_worker *w);
void vm_virtio_worker_resume(struct vm_virtio_worker *w);
/* The eventfd that wakes the worker (for KVM_IOEVENTFD). */
int vm_virtio_worker_eventfd(const struct vm_virtio_worker *w);
/* The counters above, read atomically. */
void vm_virtio_worker_counts(const struct vm_virtio_worker *w, uint64_t *notifications,
                             uint64_t *kicks);

#endif
