/* ckernel: a tiny 64-bit kernel in freestanding C, made for source-level
 * debugging: a few functions, a global, a loop, a recursive call.
 *
 * kvmstub enters an ELF64 file in 64-bit long mode with RAM identity-mapped,
 * so C runs from the first instruction; start.S only sets up a stack and
 * .bss. "Freestanding" means no C library: the UART driver in
 * ../common/uart.c is all the output there is.
 *
 * Built with -O0 so that every variable lives in memory and every line has
 * its own code: "next", "step" and "print" then behave as in the source. */
#include "uart.h"

#define COUNT_TO 100

/* The global of the watchpoint example: count_up() writes it COUNT_TO
 * times. The section attribute gives it a page of its own (ckernel.ld). */
unsigned long counter __attribute__((section(".watched")));

/* n! computed the recursive way, to have a deep stack for "bt". */
unsigned long factorial(unsigned int n)
{
    if (n <= 1)
        return 1;
    return n * factorial(n - 1);
}

/* Increments the global `times` times: one write per round. */
void count_up(unsigned int times)
{
    for (unsigned int i = 0; i < times; i++)
        counter++;
}

static void print_value(const char *label, unsigned long value)
{
    uart_puts(label);
    uart_put_dec(value);
    uart_putc('\n');
}

int main(void)
{
    unsigned int n = 5;
    unsigned long result;

    uart_init();
    uart_puts("ckernel: hello from 64-bit long mode\n");

    result = factorial(n);
    print_value("5! = ", result);

    count_up(COUNT_TO);
    print_value("counter = ", counter);
    return 0;
}
