/* stub/record_kvm.h: checkpoints of kvmstub's machine for the record
 * layer (stub/record.h): snapshots from the machine's store
 * (stub/snapstore.h), compared part by part. */
#ifndef STUB_RECORD_KVM_H
#define STUB_RECORD_KVM_H

#include "control.h"
#include "record.h"

struct stub_checkpoint_ops stub_record_kvm_checkpoints(struct stub_control *m);

#endif
