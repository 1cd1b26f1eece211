/* The debug-exit port (debug_exit.h). */
#include "debug_exit.h"

#include "vm.h"

static int exit_write(void *dev, uint64_t offset, const uint8_t *data, unsigned size,
                      struct vm_event *ev)
{
    (void)dev;
    (void)offset;
    uint32_t v = 0;
    for (unsigned b = 0; b < size && b < 4; b++)
        v |= (uint32_t)data[b] << (8 * b);
    ev->type = VM_EVENT_DEBUG_EXIT;
    ev->u.exit.status = v;
    return 1;
}

int vm_debug_exit_attach(struct vm_bus *bus, uint16_t port)
{
    struct vm_bus_range r = {
        .space = VM_BUS_PIO, .base = port, .len = 1, .name = "debug-exit", .write = exit_write};
    return vm_bus_add(bus, &r);
}
