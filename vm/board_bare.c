/* The "bare" board: RAM from 0, one CPU entered in the mode the image asks
 * for, no interrupt controller (so hlt always exits to kvmstub, and a first
 * CPU could not start others), a 16550 UART at COM1 driven by polling, and
 * the debug-exit port. What a small bare-metal program needs and nothing
 * that makes it nondeterministic. */
#include "internal.h"

#include "debug_exit.h"
#include "fail.h"
#include "serial.h"

#include <errno.h>
#include <stdlib.h>

struct bare {
    struct vm_serial uart;
};

static int bare_create(struct vm *vm, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct bare *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    vm->board_data = b;
    vm_serial_init(&b->uart);
    vm->console = &b->uart;
    /* Only the transmit register coalesces: a polled driver reads LSR
     * between bytes, and LSR always says "empty" here, so batching the
     * writes changes nothing the guest can see. */
    int r = vm_serial_attach(&b->uart, &vm->bus, 1, NULL, NULL);
    if (!r)
        r = vm_debug_exit_attach(&vm->bus, VM_PORT_DEBUG_EXIT);
    return r;
}

static int bare_check(unsigned ncpus, char *err, size_t errlen)
{
    if (ncpus > 1)
        return vm_fail(err, errlen, -EINVAL,
                       "%u CPUs need --machine pc: the bare board has no interrupt controllers, "
                       "so its first CPU could not start the others (INIT and startup IPIs)",
                       ncpus);
    return 0;
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

const struct vm_board vm_board_bare = {
    .info = {.name = "bare", .kind = VM_BOARD_BARE},
    .snap_vm_parts = 0, /* no in-kernel irqchip, PIT or clock: all is in the devices */
    .check = bare_check,
    .create = bare_create,
    .cpu_setup = bare_cpu_setup,
    .reset = bare_reset,
    .destroy = bare_destroy,
};
