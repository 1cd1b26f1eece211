/* vm/debug_exit.h: the debug-exit port. A write of V (8, 16 or 32 bits)
 * ends the guest with exit status V (QEMU's isa-debug-exit reports
 * (V<<1)|1 instead; kvmstub keeps the value as written). Reads give all
 * ones. No state: the status travels in the VM_EVENT_DEBUG_EXIT event. */
#ifndef VM_DEBUG_EXIT_H
#define VM_DEBUG_EXIT_H

#include <stdint.h>

#include "bus.h"

#define VM_PORT_DEBUG_EXIT 0xf4u

/* Puts the port on the PIO bus. */
int vm_debug_exit_attach(struct vm_bus *bus, uint16_t port);

#endif
