/* MSI through KVM's GSI routing and irqfds (KVM API: KVM_SET_GSI_ROUTING,
 * KVM_IRQFD, KVM_SIGNAL_MSI). */
#include "msi_routes.h"

#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define DEFAULT_ROUTES (16u * 2u + 8u)

struct source {
    bool routed;
    uint64_t address;
    uint32_t data;
    int efd; /* -1 until the route exists */
};

struct vm_msi_routes {
    int vm_fd;
    pthread_mutex_t lock;
    bool use_irqfd;   /* routing + irqfd available and working */
    bool signal_msi;  /* KVM_SIGNAL_MSI available */
    unsigned n;
    struct source *src;
    struct kvm_irq_routing *table; /* room for every source */
};

static void route_irqchip(struct kvm_irq_routing_entry *e, unsigned gsi, unsigned chip,
                          unsigned pin)
{
    memset(e, 0, sizeof(*e));
    e->gsi = gsi;
    e->type = KVM_IRQ_ROUTING_IRQCHIP;
    e->u.irqchip.irqchip = chip;
    e->u.irqchip.pin = pin;
}

int vm_msi_routes_create(int kvm_fd, int vm_fd, unsigned nsources, struct vm_msi_routes **out)
{
    *out = NULL;
    struct vm_msi_routes *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->vm_fd = vm_fd;
    r->n = nsources;
    r->src = calloc(nsources ? nsources : 1, sizeof(*r->src));
    r->table = calloc(1, sizeof(*r->table) +
                             (DEFAULT_ROUTES + nsources) * sizeof(struct kvm_irq_routing_entry));
    if (!r->src || !r->table) {
        free(r->src);
        free(r->table);
        free(r);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < nsources; i++)
        r->src[i].efd = -1;
    pthread_mutex_init(&r->lock, NULL);
    r->use_irqfd = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQ_ROUTING) > 0 &&
                   ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD) > 0;
    r->signal_msi = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SIGNAL_MSI) > 0;
    if (!r->use_irqfd && !r->signal_msi) {
        vm_msi_routes_destroy(r);
        return -ENOTSUP;
    }
    *out = r;
    return 0;
}

void vm_msi_routes_destroy(struct vm_msi_routes *r)
{
    if (!r)
        return;
    for (unsigned i = 0; i < r->n; i++) {
        if (r->src[i].efd < 0)
            continue;
        struct kvm_irqfd fd = {.fd = (uint32_t)r->src[i].efd,
                               .gsi = VM_MSI_ROUTES_FIRST_GSI + i,
                               .flags = KVM_IRQFD_FLAG_DEASSIGN};
        ioctl(r->vm_fd, KVM_IRQFD, &fd);
        close(r->src[i].efd);
    }
    pthread_mutex_destroy(&r->lock);
    free(r->src);
    free(r->table);
    free(r);
}

/* The whole table: KVM's defaults, then every routed source. */
static int set_table(struct vm_msi_routes *r)
{
    struct kvm_irq_routing_entry *e = r->table->entries;
    unsigned n = 0;
    for (unsigned gsi = 0; gsi < 24; gsi++) {
        route_irqchip(&e[n++], gsi, KVM_IRQCHIP_IOAPIC, gsi);
        if (gsi < 16)
            route_irqchip(&e[n++], gsi, gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
                          gsi % 8);
    }
    for (unsigned i = 0; i < r->n; i++) {
        const struct source *s = &r->src[i];
        if (!s->routed)
            continue;
        memset(&e[n], 0, sizeof(e[n]));
        e[n].gsi = VM_MSI_ROUTES_FIRST_GSI + i;
        e[n].type = KVM_IRQ_ROUTING_MSI;
        e[n].u.msi.address_lo = (uint32_t)s->address;
        e[n].u.msi.address_hi = (uint32_t)(s->address >> 32);
        e[n].u.msi.data = s->data;
        n++;
    }
    r->table->nr = n;
    r->table->flags = 0;
    return ioctl(r->vm_fd, KVM_SET_GSI_ROUTING, r->table) < 0 ? -errno : 0;
}

/* Under the lock: source i routed to (address, data), with its irqfd. */
static int route(struct vm_msi_routes *r, unsigned i, uint64_t address, uint32_t data)
{
    struct source *s = &r->src[i];
    if (s->routed && s->efd >= 0 && s->address == address && s->data == data)
        return 0;
    struct source old = *s;
    s->routed = true;
    s->address = address;
    s->data = data;
    int err = set_table(r);
    if (err) {
        *s = old;
        return err;
    }
    if (s->efd >= 0)
        return 0;
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0)
        return -errno;
    struct kvm_irqfd fd = {.fd = (uint32_t)efd, .gsi = VM_MSI_ROUTES_FIRST_GSI + i};
    if (ioctl(r->vm_fd, KVM_IRQFD, &fd) < 0) {
        err = -errno;
        close(efd);
        return err;
    }
    s->efd = efd;
    return 0;
}

int vm_msi_routes_send(struct vm_msi_routes *r, unsigned source, uint64_t address, uint32_t data)
{
    if (source >= r->n)
        return -EINVAL;
    pthread_mutex_lock(&r->lock);
    int err = -ENOTSUP;
    if (r->use_irqfd) {
        err = route(r, source, address, data);
        if (!err) {
            uint64_t one = 1;
            /* EAGAIN: the counter is full, an interrupt is on its way. */
            if (write(r->src[source].efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
                err = -errno;
        }
        if (err)
            r->use_irqfd = false; /* KVM refused it once: keep to the ioctl */
    }
    if (err && r->signal_msi) {
        struct kvm_msi msi = {.address_lo = (uint32_t)address,
                              .address_hi = (uint32_t)(address >> 32),
                              .data = data};
        /* > 0 delivered, 0 blocked by the guest (its APIC), both fine. */
        err = ioctl(r->vm_fd, KVM_SIGNAL_MSI, &msi) < 0 ? -errno : 0;
    }
    pthread_mutex_unlock(&r->lock);
    return err;
}

const char *vm_msi_routes_path(struct vm_msi_routes *r)
{
    pthread_mutex_lock(&r->lock);
    const char *p = r->use_irqfd ? "irqfd on KVM's GSI routing" : "KVM_SIGNAL_MSI";
    pthread_mutex_unlock(&r->lock);
    return p;
}
