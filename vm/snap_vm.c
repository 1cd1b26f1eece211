#include "snap_vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define ENC_MAGIC 0x534d5456u /* "VTMS" */
#define ENC_HEAD 12u          /* magic, parts, reserved */

int vm_snap_vm_save(int vm_fd, unsigned parts, struct vm_snap_vm *out)
{
    memset(out, 0, sizeof(*out));
    if (parts & ~(unsigned)VM_SNAP_VM_ALL_PARTS)
        return -EINVAL;
    out->parts = parts;
    if (parts & VM_SNAP_VM_IRQCHIP) {
        for (unsigned i = 0; i < 3; i++) {
            out->chips[i].chip_id = i;
            if (ioctl(vm_fd, KVM_GET_IRQCHIP, &out->chips[i]) < 0)
                return -errno;
        }
    }
    if ((parts & VM_SNAP_VM_PIT) && ioctl(vm_fd, KVM_GET_PIT2, &out->pit) < 0)
        return -errno;
    if ((parts & VM_SNAP_VM_CLOCK) && ioctl(vm_fd, KVM_GET_CLOCK, &out->clock) < 0)
        return -errno;
    return 0;
}

int vm_snap_vm_check(unsigned parts, const struct vm_snap_vm *s, char *err, size_t errlen)
{
    if (s->parts == parts)
        return 0;
    snprintf(err, errlen,
             "the saved VM state has parts 0x%x (irqchip 1, PIT 2, clock 4) but this board has "
             "0x%x: it was saved on another board",
             s->parts, parts);
    return -EINVAL;
}

int vm_snap_vm_restore(int vm_fd, const struct vm_snap_vm *s, char *err, size_t errlen)
{
    const char *what = NULL;
    if (s->parts & VM_SNAP_VM_IRQCHIP) {
        for (unsigned i = 0; i < 3 && !what; i++) {
            struct kvm_irqchip c = s->chips[i];
            c.chip_id = i;
            if (ioctl(vm_fd, KVM_SET_IRQCHIP, &c) < 0)
                what = "KVM_SET_IRQCHIP";
        }
    }
    if (!what && (s->parts & VM_SNAP_VM_PIT)) {
        struct kvm_pit_state2 p = s->pit;
        if (ioctl(vm_fd, KVM_SET_PIT2, &p) < 0)
            what = "KVM_SET_PIT2";
    }
    if (!what && (s->parts & VM_SNAP_VM_CLOCK)) {
        struct kvm_clock_data c = {.clock = s->clock.clock};
        if (ioctl(vm_fd, KVM_SET_CLOCK, &c) < 0)
            what = "KVM_SET_CLOCK";
    }
    if (!what)
        return 0;
    int e = errno;
    snprintf(err, errlen, "%s failed: %s", what, strerror(e));
    return -e;
}

static size_t enc_size(unsigned parts)
{
    size_t n = ENC_HEAD;
    if (parts & VM_SNAP_VM_IRQCHIP)
        n += 3 * sizeof(struct kvm_irqchip);
    if (parts & VM_SNAP_VM_PIT)
        n += sizeof(struct kvm_pit_state2);
    if (parts & VM_SNAP_VM_CLOCK)
        n += sizeof(struct kvm_clock_data);
    return n;
}

int vm_snap_vm_encode(const struct vm_snap_vm *s, uint8_t **buf, size_t *len)
{
    size_t n = enc_size(s->parts);
    uint8_t *b = calloc(1, n), *p = b + ENC_HEAD;
    if (!b)
        return -ENOMEM;
    uint32_t head[3] = {ENC_MAGIC, s->parts, 0};
    memcpy(b, head, sizeof(head));
    if (s->parts & VM_SNAP_VM_IRQCHIP) {
        memcpy(p, s->chips, sizeof(s->chips));
        p += sizeof(s->chips);
    }
    if (s->parts & VM_SNAP_VM_PIT) {
        memcpy(p, &s->pit, sizeof(s->pit));
        p += sizeof(s->pit);
    }
    if (s->parts & VM_SNAP_VM_CLOCK)
        memcpy(p, &s->clock, sizeof(s->clock));
    *buf = b;
    *len = n;
    return 0;
}

int vm_snap_vm_decode(const uint8_t *buf, size_t len, struct vm_snap_vm *out)
{
    memset(out, 0, sizeof(*out));
    uint32_t head[3];
    if (len < ENC_HEAD)
        return -EINVAL;
    memcpy(head, buf, sizeof(head));
    if (head[0] != ENC_MAGIC || head[2] || head[1] & ~(unsigned)VM_SNAP_VM_ALL_PARTS ||
        len != enc_size(head[1]))
        return -EINVAL;
    out->parts = head[1];
    const uint8_t *p = buf + ENC_HEAD;
    if (out->parts & VM_SNAP_VM_IRQCHIP) {
        memcpy(out->chips, p, sizeof(out->chips));
        p += sizeof(out->chips);
        for (unsigned i = 0; i < 3; i++)
            if (out->chips[i].chip_id != i)
                return -EINVAL;
    }
    if (out->parts & VM_SNAP_VM_PIT) {
        memcpy(&out->pit, p, sizeof(out->pit));
        p += sizeof(out->pit);
    }
    if (out->parts & VM_SNAP_VM_CLOCK)
        memcpy(&out->clock, p, sizeof(out->clock));
    return 0;
}
