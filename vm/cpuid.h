/* vm/cpuid.h: the CPUID table each vCPU of the pc board gets.
 *
 * vm_cpuid_supported asks KVM (KVM_GET_SUPPORTED_CPUID on the /dev/kvm fd)
 * for what it can offer, growing the buffer while KVM answers E2BIG.
 * vm_cpuid_for_vcpu derives vCPU index's table for an ncpus guest from it:
 * the hypervisor bit (leaf 1 ECX[31]), the initial APIC id (leaf 1
 * EBX[31:24]) and the x2APIC id (leaves 0xB/0x1F EDX) equal to index, and
 * one package of ncpus single-threaded cores in leaves 1, 4, 0xB, 0x1F,
 * 0x80000008 and 0x8000001E. Everything else, KVM's own 0x40000000 leaves
 * (kvm-clock) included, is kept as KVM reported it.
 * APIC ids must match the MP table (vm/mptable.h) and the vCPU ids given
 * to KVM_CREATE_VCPU, since KVM's in-kernel LAPIC takes its id from the
 * vCPU id. Tables are malloc'd; the caller frees them with free(). */
#ifndef VM_CPUID_H
#define VM_CPUID_H

#include <linux/kvm.h>
#include <stdint.h>

#define VM_CPUID_MAX_ENTRIES 4096u
#define VM_CPUID_MAX_CPUS 254u

/* 0 with *out set, or a negative errno (-E2BIG if KVM wants more than
 * VM_CPUID_MAX_ENTRIES entries). */
int vm_cpuid_supported(int kvm_fd, struct kvm_cpuid2 **out);

/* 0 with *out set, -EINVAL for an index/ncpus out of range or a table
 * larger than VM_CPUID_MAX_ENTRIES, -ENOMEM. */
int vm_cpuid_for_vcpu(const struct kvm_cpuid2 *supported, unsigned index, unsigned ncpus,
                      struct kvm_cpuid2 **out);

/* The entry for (function, index), or NULL; index is ignored for leaves
 * KVM does not mark as indexed. */
struct kvm_cpuid_entry2 *vm_cpuid_find(struct kvm_cpuid2 *c, uint32_t function, uint32_t index);

#endif
