/* vm/gate.h: which vCPUs may be inside KVM_RUN while a vCPU thread changes
 * the VM's memory slots during a run.
 *
 * Memory slots are VM-wide. While one is replaced, a vCPU inside KVM_RUN
 * finds no RAM there (its code fetches fail, its accesses exit as MMIO),
 * and a page trap lifted for one vCPU's step is lifted for every vCPU. So
 * a vCPU thread that changes slots while others may run (a page trap
 * lifted for its step, and restored; traps moved after the guest remapped
 * a watched page; a pending breakpoint planted as a page trap) first takes
 * the gate exclusively: every other vCPU thread leaves KVM_RUN (a nudge,
 * never reported as a stop) and waits at the top of its run loop until the
 * holder releases the gate. Requests are served in order, and a requester
 * lets the vCPUs the last holder held into the guest first (or waits a
 * millisecond for them), so a vCPU stepping through a trapped page cannot
 * starve one that holds the lock it spins on.
 *
 * Who calls what: the vCPU's own thread, from vm_cpu_run(), enters and
 * leaves the gate, parks at the top of every round of its run loop, and
 * takes and releases it (nested; a no-op on any other thread, such as the
 * loop thread changing the tables of a stopped VM). Lock order: the gate
 * before vm->debug.lock; nobody waits for the gate holding that lock. */
#ifndef VM_GATE_H
#define VM_GATE_H

#include <stdbool.h>

struct vm;
struct vm_cpu;

void vm_gate_init(struct vm *vm);
void vm_gate_destroy(struct vm *vm);
/* Around vm_cpu_run(): from here on the thread counts as running. */
void vm_gate_enter(struct vm_cpu *cpu);
void vm_gate_leave(struct vm_cpu *cpu);
/* Before every KVM_RUN: waits while another vCPU holds the gate. */
void vm_gate_park(struct vm_cpu *cpu);
/* Holds every other vCPU out of the guest until the matching release; for
 * the calling thread's vCPU, a no-op on a thread that runs none of vm's. */
void vm_gate_exclusive(struct vm *vm);
void vm_gate_release(struct vm *vm);
bool vm_gate_held(const struct vm_cpu *cpu);
/* Another vCPU waits for the gate. */
bool vm_gate_contended(const struct vm *vm);

#endif
