/* uart.c: see uart.h. */
#include "uart.h"

#define COM1 0x3f8
/* Register offsets from the base port. */
#define UART_DATA 0 /* transmit holding register (write), receive buffer (read) */
#define UART_IER 1  /* interrupt enable */
#define UART_FCR 2  /* FIFO control */
#define UART_LCR 3  /* line control: word length, parity, stop bits, DLAB */
#define UART_MCR 4  /* modem control */
#define UART_LSR 5  /* line status */
#define UART_DLL 0  /* divisor latch, low byte (when LCR.DLAB is set) */
#define UART_DLM 1  /* divisor latch, high byte (when LCR.DLAB is set) */

#define LCR_8N1 0x03  /* 8 data bits, no parity, 1 stop bit */
#define LCR_DLAB 0x80 /* the first two registers become the divisor latch */
#define LSR_THRE 0x20 /* transmit holding register empty */

/* The x86 reaches devices like the UART through a separate I/O address
 * space, with the in and out instructions, which C cannot express. */
static inline void outb(uint16_t port, uint8_t value)
{
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

void uart_init(void)
{
    outb(COM1 + UART_IER, 0x00);     /* we poll: no interrupts */
    outb(COM1 + UART_LCR, LCR_DLAB); /* to set the baud rate ... */
    outb(COM1 + UART_DLL, 1);        /* ... divide 115200 by 1 */
    outb(COM1 + UART_DLM, 0);
    outb(COM1 + UART_LCR, LCR_8N1);  /* also clears DLAB */
    outb(COM1 + UART_FCR, 0x07);     /* enable and clear the FIFOs */
    outb(COM1 + UART_MCR, 0x03);     /* DTR and RTS: "we are ready" */
}

void uart_putc(char c)
{
    while (!(inb(COM1 + UART_LSR) & LSR_THRE))
        ; /* wait until the transmitter can take a byte */
    outb(COM1 + UART_DATA, (uint8_t)c);
}

void uart_puts(const char *s)
{
    while (*s)
        uart_putc(*s++);
}

void uart_put_dec(unsigned long v)
{
    char digits[20]; /* 2^64 - 1 has 20 decimal digits */
    int n = 0;
    do { /* the digits come out last first */
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        uart_putc(digits[--n]);
}

void uart_put_hex(uint64_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    /* Shifts only: a 32-bit guest can shift 64-bit values without libgcc. */
    for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4)
        uart_putc(hex[(v >> shift) & 0xf]);
}
