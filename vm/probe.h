/* vm/probe.h: finds out, by running a tiny real-mode guest in a VM of its
 * own, which debugging mechanisms the host's KVM really delivers.
 *
 * Capability bits are not enough: on nested and paravirtualized hosts
 * KVM_SET_GUEST_DEBUG succeeds while #BP interception or DR7 breakpoints
 * never reach userspace. Each check runs a few instructions whose every
 * outcome ends in hlt or a KVM exit, so a host that does not deliver an
 * event cannot hang the probe. Takes a few milliseconds on real hardware. */
#ifndef VM_PROBE_H
#define VM_PROBE_H

struct vm_caps;

/* Fills caps->sw_bp, hw_exec_bp, hw_data_bp, ro_slot_traps_writes and sets
 * caps->probed. Returns 0, or a negative errno if not even hlt reaches
 * userspace (then no breakpoint method can work). */
int vm_probe(int kvm_fd, struct vm_caps *caps);

#endif
