/* stub/target_kvm.h: kvmstub's machine (stub/control.h) behind the target
 * interface (stub/target.h): thread N is vCPU N-1, registers and memory are
 * the vm layer's, breakpoints and watchpoints are made however this host
 * allows (vm/debug.h), monitor commands are stub/monitor.h's. */
#ifndef STUB_TARGET_KVM_H
#define STUB_TARGET_KVM_H

#include "control.h"
#include "target.h"

struct stub_target stub_target_kvm(struct stub_control *m);

#endif
