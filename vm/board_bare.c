/* The "bare" board: RAM from 0, one or more CPUs entered in the mode the
 * image asks for, no interrupt controller (so hlt always exits to kvmstub),
 * a 16550 UART at COM1 driven by polling, and the debug-exit port. What a
 * small bare-metal program needs and nothing that makes it nondeterministic. */
#include "internal.h"

#include "debug_exit.h"
#include "serial.h"

#include <errno.h>
#include <stdlib.h>

struct bare {
    struct vm_serial uart;
};

static int uart_read(void *dev, uint64_t offset, uint8_t *data, unsigned size, struct vm_event *ev)
{
    (void)size;
    (void)ev;
    data[0] = vm_serial_in(dev, (unsigned)offset);
    return 0;
}

static int uart_write(void *dev, uint64_t offset, const uint8_t *data, unsigned size,
                      struct vm_event *ev)
{
    (void)size;
    (void)ev;
    vm_serial_out(dev, (unsigned)offset, data[0]);
    return 0;
}

static int bare_create(struct vm *vm, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct bare *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    vm->board_data = b;
    vm_serial_init(&b->uart);
    /* Only the transmit register coalesces: a polled driver reads LSR
     * between bytes, and LSR always says "empty" here, so batching the
     * writes changes nothing the guest can see. */
    struct vm_bus_range uart = {.space = VM_BUS_PIO, .base = VM_SERIAL_BASE, .len = 8,
                                .name = "uart", .read = uart_read, .write = uart_write,
                                .dev = &b->uart, .bytewise = true, .coalesce_len = 1};
    int r = vm_bus_add(&vm->bus, &uart);
    if (!r)
        r = vm_debug_exit_attach(&vm->bus, VM_PORT_DEBUG_EXIT);
    if (!r)
        r = vm_bus_add_state(&vm->bus, &(struct vm_bus_state){.name = "uart",
                                                              .save = vm_serial_save,
                                                              .load = vm_serial_load,
                                                              .dev = &b->uart});
    return r;
}

static int bare_cpu_setup(struct vm *vm, struct vm_cpu *cpu, char *err, size_t errlen)
{
    (void)vm;
    (void)cpu;
    (void)err;
    (void)errlen;
    return 0;
}

static void bare_reset(struct vm *vm)
{
    struct bare *b = vm->board_data;
    vm_serial_reset(&b->uart);
}

static void bare_destroy(struct vm *vm)
{
    struct bare *b = vm->board_data;
    if (!b)
        return;
    vm_serial_destroy(&b->uart);
    free(b);
    vm->board_data = NULL;
}

static size_t bare_console_take(struct vm *vm, uint8_t *out, size_t max)
{
    struct bare *b = vm->board_data;
    return vm_serial_take(&b->uart, out, max);
}

static size_t bare_console_input(struct vm *vm, const void *data, size_t n)
{
    struct bare *b = vm->board_data;
    return vm_serial_input(&b->uart, data, n);
}

static bool bare_console_pending(struct vm *vm)
{
    struct bare *b = vm->board_data;
    return atomic_load_explicit(&b->uart.tx_unread, memory_order_relaxed) != 0;
}

const struct vm_board vm_board_bare = {
    .name = "bare",
    .vmstate_parts = 0, /* no in-kernel irqchip, PIT or clock: all is in the devices */
    .create = bare_create,
    .cpu_setup = bare_cpu_setup,
    .reset = bare_reset,
    .destroy = bare_destroy,
    .console_take = bare_console_take,
    .console_input = bare_console_input,
    .console_pending = bare_console_pending,
};
