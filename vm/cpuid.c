/* Building per-vCPU CPUID. Topology encodings follow the Intel SDM
 * (leaves 1, 4, 0xB, 0x1F) and AMD's APM (0x80000008, 0x8000001E). */
#include "cpuid.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define FIRST_TRY 64u
#define TOPOLOGY_EXTRA 6u /* subleaves 0-2 of 0xB and 0x1F we may add */

#define LEAF1_ECX_HYPERVISOR (1u << 31)
#define LEAF1_EDX_HTT (1u << 28)
#define LEVEL_SMT 1u
#define LEVEL_CORE 2u

static size_t table_bytes(uint32_t nent)
{
    return sizeof(struct kvm_cpuid2) + (size_t)nent * sizeof(struct kvm_cpuid_entry2);
}

int vm_cpuid_supported(int kvm_fd, struct kvm_cpuid2 **out)
{
    for (uint32_t n = FIRST_TRY; n <= VM_CPUID_MAX_ENTRIES; n *= 2) {
        struct kvm_cpuid2 *c = calloc(1, table_bytes(n));
        if (!c)
            return -ENOMEM;
        c->nent = n;
        if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
            if (c->nent > n) { /* KVM never grows nent; do not trust one that did */
                free(c);
                return -EIO;
            }
            *out = c;
            return 0;
        }
        int e = errno;
        free(c);
        if (e != E2BIG)
            return -e;
    }
    return -E2BIG;
}

struct kvm_cpuid_entry2 *vm_cpuid_find(struct kvm_cpuid2 *c, uint32_t function, uint32_t index)
{
    for (uint32_t i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function != function)
            continue;
        if (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index)
            return e;
    }
    return NULL;
}

static unsigned bits_for(unsigned n)
{
    unsigned b = 0;
    while ((1u << b) < n)
        b++;
    return b;
}

/* Leaf 0xB or 0x1F: SMT level (1 thread), core level (ncpus cores), then
 * an invalid level that ends the enumeration; EDX is the x2APIC id in all. */
static void extended_topology(struct kvm_cpuid2 *c, uint32_t leaf, unsigned apic, unsigned ncpus)
{
    if (!vm_cpuid_find(c, leaf, 0) && !vm_cpuid_find(c, leaf, 1))
        return; /* KVM does not offer the leaf: do not invent it */
    for (uint32_t sub = 0; sub < 3; sub++) {
        struct kvm_cpuid_entry2 *e = vm_cpuid_find(c, leaf, sub);
        if (!e || e->index != sub) {
            e = &c->entries[c->nent++];
            memset(e, 0, sizeof(*e));
            e->function = leaf;
            e->index = sub;
            e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
        }
        switch (sub) {
        case 0:
            e->eax = 0; /* no SMT bits */
            e->ebx = 1;
            e->ecx = LEVEL_SMT << 8;
            break;
        case 1:
            e->eax = bits_for(ncpus);
            e->ebx = ncpus;
            e->ecx = 1 | LEVEL_CORE << 8;
            break;
        default:
            e->eax = e->ebx = 0;
            e->ecx = sub;
            break;
        }
        e->edx = apic;
    }
    /* Higher subleaves KVM copied from the host describe levels we do not
     * have: make them invalid too. */
    for (uint32_t i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function == leaf && e->index >= 3) {
            e->eax = e->ebx = 0;
            e->ecx = e->index & 0xff;
            e->edx = apic;
        }
    }
}

int vm_cpuid_for_vcpu(const struct kvm_cpuid2 *supported, unsigned index, unsigned ncpus,
                      struct kvm_cpuid2 **out)
{
    if (!supported || !out || ncpus == 0 || ncpus > VM_CPUID_MAX_CPUS || index >= ncpus ||
        supported->nent > VM_CPUID_MAX_ENTRIES)
        return -EINVAL;
    struct kvm_cpuid2 *c = calloc(1, table_bytes(supported->nent + TOPOLOGY_EXTRA));
    if (!c)
        return -ENOMEM;
    c->nent = supported->nent;
    memcpy(c->entries, supported->entries, (size_t)supported->nent * sizeof(c->entries[0]));

    unsigned apic = index;
    unsigned core_bits = bits_for(ncpus);
    unsigned ids = 1u << core_bits; /* addressable ids in the package */
    struct kvm_cpuid_entry2 *e;
    if ((e = vm_cpuid_find(c, 1, 0))) {
        e->ecx |= LEAF1_ECX_HYPERVISOR;
        e->ebx = (e->ebx & 0xffff) | (uint32_t)(ids > 255 ? 255 : ids) << 16 | (uint32_t)apic << 24;
        if (ncpus > 1)
            e->edx |= LEAF1_EDX_HTT;
        else
            e->edx &= ~LEAF1_EDX_HTT;
    }
    /* Leaf 4, one entry per cache: cores per package, and who shares it. */
    for (uint32_t i = 0; i < c->nent; i++) {
        e = &c->entries[i];
        if (e->function != 4 || !(e->eax & 0x1f))
            continue;
        unsigned level = (e->eax >> 5) & 7;
        uint32_t cores = ids - 1 > 63 ? 63 : ids - 1;
        uint32_t sharing = level >= 3 ? ids - 1 : 0;
        e->eax = (e->eax & 0x3fff) | sharing << 14 | cores << 26;
    }
    extended_topology(c, 0xb, apic, ncpus);
    extended_topology(c, 0x1f, apic, ncpus);
    if ((e = vm_cpuid_find(c, 0x80000008, 0)))
        e->ecx = (e->ecx & ~0xf0ffu) | (ncpus - 1) | core_bits << 12;
    if ((e = vm_cpuid_find(c, 0x8000001e, 0))) {
        e->eax = apic;
        e->ebx = (e->ebx & ~0xffffu) | (index & 0xff); /* core id; one thread per core */
        e->ecx &= ~0x7ffu;                              /* node 0, one node */
    }
    *out = c;
    return 0;
}
