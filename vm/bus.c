/* The device buses (bus.h). A handful of ranges per board: a sorted array
 * and a binary search keep the exit path short. */
#include "bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int before(const struct vm_bus_range *a, enum vm_bus_space space, uint64_t addr)
{
    return a->space < space || (a->space == space && a->base + a->len <= addr);
}

int vm_bus_add(struct vm_bus *bus, const struct vm_bus_range *range)
{
    if (range->len == 0 || range->base + (range->len - 1) < range->base)
        return -EINVAL;
    size_t i = 0;
    while (i < bus->n && before(&bus->ranges[i], range->space, range->base))
        i++;
    if (i < bus->n && bus->ranges[i].space == range->space &&
        bus->ranges[i].base <= range->base + (range->len - 1))
        return -EEXIST;
    if (bus->n == bus->cap) {
        size_t cap = bus->cap ? bus->cap * 2 : 8;
        struct vm_bus_range *n = realloc(bus->ranges, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        bus->ranges = n;
        bus->cap = cap;
    }
    memmove(&bus->ranges[i + 1], &bus->ranges[i], (bus->n - i) * sizeof(bus->ranges[0]));
    bus->ranges[i] = *range;
    bus->n++;
    return 0;
}

const struct vm_bus_range *vm_bus_find(const struct vm_bus *bus, enum vm_bus_space space,
                                       uint64_t addr)
{
    size_t lo = 0, hi = bus->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (before(&bus->ranges[mid], space, addr))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < bus->n) {
        const struct vm_bus_range *r = &bus->ranges[lo];
        if (r->space == space && addr >= r->base && addr - r->base < r->len)
            return r;
    }
    return NULL;
}

int vm_bus_add_state(struct vm_bus *bus, const struct vm_bus_state *state)
{
    size_t len = state->name ? strlen(state->name) : 0;
    if (len == 0 || len >= VM_BUS_STATE_NAME || !state->save || !state->load)
        return -EINVAL;
    for (size_t i = 0; i < bus->nstates; i++)
        if (strcmp(bus->states[i].name, state->name) == 0)
            return -EEXIST;
    struct vm_bus_state *n = realloc(bus->states, (bus->nstates + 1) * sizeof(*n));
    if (!n)
        return -ENOMEM;
    bus->states = n;
    bus->states[bus->nstates++] = *state;
    return 0;
}

void vm_bus_free(struct vm_bus *bus)
{
    free(bus->ranges);
    free(bus->states);
    memset(bus, 0, sizeof(*bus));
}
