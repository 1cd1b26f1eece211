/* uart.h: a small polling driver for the PC's first serial port (COM1, a
 * 16550 UART at I/O ports 0x3f8-0x3ff), shared by the C example guests. It
 * builds for 32-bit and 64-bit guests alike.
 *
 * Polling means no interrupts: before each byte the driver reads the line
 * status register until the transmitter has room. Under kvmstub the UART is
 * emulated and always has room, but the same code works on real hardware and
 * under QEMU, where it may not. */
#ifndef EXAMPLES_UART_H
#define EXAMPLES_UART_H

#include <stdint.h>

void uart_init(void);
void uart_putc(char c);
void uart_puts(const char *s);
/* Decimal, in the native width (unsigned long is 32 bits in a 32-bit guest,
 * where a 64-bit division would need libgcc). */
void uart_put_dec(unsigned long v);
/* Hexadecimal, exactly `digits` digits (1-16), without a "0x". */
void uart_put_hex(uint64_t v, int digits);

#endif
