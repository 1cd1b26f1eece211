/* The worker thread behind a virtio device. An eventfd rather than a
 * condition variable wakes it because KVM can write one straight from a
 * guest's MMIO or PIO write (KVM_IOEVENTFD), without an exit to userspace. */
#include "virtio_worker.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void kick(void *ctx, unsigned index)
{
    (void)index; /* every queue is looked at on each wake */
    struct vm_virtio_worker *w = ctx;
    uint64_t one = 1;
    __atomic_add_fetch(&w->kicks, 1, __ATOMIC_RELAXED);
    /* EAGAIN means the counter is saturated: a wake is pending anyway. */
    while (write(w->efd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

static void *run(void *arg)
{
    struct vm_virtio_worker *w = arg;
    for (;;) {
        uint64_t count;
        ssize_t got = read(w->efd, &count, sizeof(count));
        if (got < 0 && errno != EAGAIN && errno != EINTR)
            break;
        if (got == sizeof(count))
            __atomic_add_fetch(&w->notifications, count, __ATOMIC_RELAXED);
        pthread_mutex_lock(&w->lock);
        while (w->paused && !w->stop)
            pthread_cond_wait(&w->cond, &w->lock);
        if (w->stop) {
            pthread_mutex_unlock(&w->lock);
            break;
        }
        w->busy = true;
        pthread_mutex_unlock(&w->lock);

        pthread_mutex_lock(&w->v->lock);
        for (unsigned i = 0; i < w->v->nqueues; i++)
            vm_virtio_serve(w->v, i);
        pthread_mutex_unlock(&w->v->lock);

        pthread_mutex_lock(&w->lock);
        w->busy = false;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
    }
    return NULL;
}

int vm_virtio_worker_start(struct vm_virtio_worker *w, struct vm_virtio *v)
{
    memset(w, 0, sizeof(*w));
    w->v = v;
    w->efd = eventfd(0, EFD_CLOEXEC);
    if (w->efd < 0)
        return -errno;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    int r = pthread_create(&w->thread, NULL, run, w);
    if (r) {
        close(w->efd);
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        return -r;
    }
    w->started = true;
    pthread_mutex_lock(&v->lock);
    v->kick_ctx = w;
    v->kick_fn = kick;
    pthread_mutex_unlock(&v->lock);
    return 0;
}

void vm_virtio_worker_stop(struct vm_virtio_worker *w)
{
    if (!w->started)
        return;
    pthread_mutex_lock(&w->v->lock);
    w->v->kick_fn = NULL;
    w->v->kick_ctx = NULL;
    pthread_mutex_unlock(&w->v->lock);
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    kick(w, 0);
    pthread_join(w->thread, NULL);
    close(w->efd);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    w->started = false;
}

void vm_virtio_worker_pause(struct vm_virtio_worker *w)
{
    pthread_mutex_lock(&w->lock);
    w->paused++;
    while (w->busy)
        pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

void vm_virtio_worker_resume(struct vm_virtio_worker *w)
{
    pthread_mutex_lock(&w->lock);
    if (w->paused)
        w->paused--;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

int vm_virtio_worker_eventfd(const struct vm_virtio_worker *w)
{
    return w->efd;
}

void vm_virtio_worker_counts(const struct vm_virtio_worker *w, uint64_t *notifications,
                             uint64_t *kicks)
{
    *notifications = __atomic_load_n(&w->notifications, __ATOMIC_RELAXED);
    *kicks = __atomic_load_n(&w->kicks, __ATOMIC_RELAXED);
}
