/* stub/kvm_error.h: what gdb and the log are told when KVM gives up
 * on the guest (KVM_EXIT_INTERNAL_ERROR). */
#ifndef STUB_KVM_ERROR_H
#define STUB_KVM_ERROR_H

#include <stddef.h>
#include <stdint.h>

#include "vm/vm.h"

/* One line: which error, at which rip, the instruction (decoded where
 * kvmstub knows it, its bytes otherwise), and what it means. */
void stub_kvm_error_text(const struct vm_event *ev, uint64_t rip, char *out, size_t cap);

#endif
