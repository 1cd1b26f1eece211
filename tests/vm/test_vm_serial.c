/* The 16550A UART model, register by register, and replayed against the
 * exact register sequences of Linux's 8250 driver (no KVM needed). */
#include "testmain.h"
#include "vm/serial.h"

#include <CUnit/CUnit.h>
#include <pthread.h>
#include <string.h>

enum { THR = 0, IER = 1, IIR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };
enum { FCR = 2, EFR = 2 };

static void test_transmit_and_lsr(void)
{
    struct vm_serial s;
    vm_serial_init(&s);
    /* A polled driver waits for THRE, then writes. */
    CU_ASSERT_EQUAL(vm_serial_in(&s, LSR) & 0x60, 0x60);
    CU_ASSERT_EQUAL(vm_serial_in(&s, LSR) & 0x01, 0);
    const char *msg = "hello";
    for (size_t i = 0; msg[i]; i++)
        vm_serial_out(&s, THR, (uint8_t)msg[i]);
    uint8_t buf[16];
    CU_ASSERT_EQUAL(vm_serial_take(&s, buf, sizeof(buf)), 5);
    CU_ASSERT_EQUAL(memcmp(buf, "hello", 5), 0);
    CU_ASSERT_EQUAL(vm_serial_take(&s, buf, sizeof(buf)), 0);
    CU_ASSERT_EQUAL(s.tx_total, 5);
    vm_serial_destroy(&s);
}

static void test_divisor_latch_and_registers_hold(void)
{
    struct vm_serial s;
    vm_serial_init(&s);
    vm_serial_out(&s, LCR, 0x80); /* DLAB */
    vm_serial_out(&s, THR, 0x01); /* DLL: 115200 baud */
    vm_serial_out(&s, IER, 0x00); /* DLM */
    CU_ASSERT_EQUAL(vm_serial_in(&s, THR), 0x01);
    CU_ASSERT_EQUAL(vm_serial_in(&s, IER), 0x00);
    uint8_t buf[4];
    CU_ASSERT_EQUAL(vm_serial_take(&s, buf, sizeof(buf)), 0); /* DLL writes are not output */
    vm_serial_out(&s, LCR, 0x03); /* 8N1, DLAB off */
    CU_ASSERT_EQUAL(vm_serial_in(&s, LCR), 0x03);
    vm_serial_out(&s, IER, 0x05);
    CU_ASSERT_EQUAL(vm_serial_in(&s, IER), 0x05);
    vm_serial_out(&s, MCR, 0x0b);
    CU_ASSERT_EQUAL(vm_serial_in(&s, MCR), 0x0b);
    vm_serial_out(&s, SCR, 0xa5);
    CU_ASSERT_EQUAL(vm_serial_in(&s, SCR), 0xa5);
    vm_serial_out(&s, IIR, 0x07); /* FCR: enable and clear FIFOs */
    CU_ASSERT_EQUAL(vm_serial_in(&s, IIR), 0xc1);
    CU_ASSERT_EQUAL(vm_serial_in(&s, MSR) & 0xb0, 0xb0);
    vm_serial_out(&s, THR, 'A');
    CU_ASSERT_EQUAL(vm_serial_take(&s, buf, sizeof(buf)), 1);
    CU_ASSERT_EQUAL(buf[0], 'A');
    vm_serial_destroy(&s);
}

static void test_receive_queue(void)
{
    struct vm_serial s;
    vm_serial_init(&s);
    CU_ASSERT_EQUAL(vm_serial_input(&s, "ok", 2), 2);
    CU_ASSERT_EQUAL(vm_serial_in(&s, LSR) & 1, 1);
    CU_ASSERT_EQUAL(vm_serial_in(&s, THR), 'o');
    CU_ASSERT_EQUAL(vm_serial_in(&s, THR), 'k');
    CU_ASSERT_EQUAL(vm_serial_in(&s, LSR) & 1, 0);
    CU_ASSERT_EQUAL(vm_serial_in(&s, THR), 0); /* empty: nothing new */
    /* The queue is bounded and says how much it took. */
    static uint8_t big[VM_SERIAL_RX_MAX + 10];
    CU_ASSERT_EQUAL(vm_serial_input(&s, big, sizeof(big)), VM_SERIAL_RX_MAX);
    vm_serial_destroy(&s);
}

static void test_loopback(void)
{
    struct vm_serial s;
    vm_serial_init(&s);
    vm_serial_out(&s, MCR, 0x10);
    vm_serial_out(&s, THR, 'z');
    uint8_t buf[4];
    CU_ASSERT_EQUAL(vm_serial_take(&s, buf, sizeof(buf)), 0);
    CU_ASSERT_EQUAL(vm_serial_in(&s, LSR) & 1, 1);
    CU_ASSERT_EQUAL(vm_serial_in(&s, THR), 'z');
    vm_serial_destroy(&s);
}

static void test_output_high_water(void)
{
    struct vm_serial s;
    vm_serial_init(&s);
    for (unsigned i = 0; i < VM_SERIAL_TX_HIGH - 1; i++)
        vm_serial_out(&s, THR, 'a');
    CU_ASSERT_FALSE(vm_serial_tx_full(&s));
    vm_serial_out(&s, THR, 'a');
    CU_ASSERT(vm_serial_tx_full(&s));
    CU_ASSERT_EQUAL(atomic_load(&s.tx_unread), VM_SERIAL_TX_HIGH);
    vm_serial_reset(&s);
    CU_ASSERT_FALSE(vm_serial_tx_full(&s));
    CU_ASSERT_EQUAL(atomic_load(&s.tx_unread), 0);
    vm_serial_destroy(&s);
}

/* ---- Linux's 8250 driver, replayed register by register ----
 * The sequences below follow drivers/tty/serial/8250/8250_port.c
 * (autoconfig, autoconfig_16550a, size_fifo, serial8250_do_startup,
 * serial8250_do_set_termios, serial8250_handle_irq) for a PC COM port. */

#define UART_BUG_THRE 1u
#define UART_BUG_TXEN 2u

static uint8_t rd(struct vm_serial *s, unsigned r) { return vm_serial_in(s, r); }
static void wr(struct vm_serial *s, unsigned r, uint8_t v) { vm_serial_out(s, r, v); }

static int linux_size_fifo(struct vm_serial *s)
{
    uint8_t old_lcr = rd(s, LCR);
    wr(s, LCR, 0);
    uint8_t old_fcr = rd(s, FCR); /* Linux really reads IIR here */
    uint8_t old_mcr = rd(s, MCR);
    wr(s, FCR, 0x07);
    wr(s, MCR, 0x10);
    wr(s, LCR, 0x80);
    unsigned old_dl = rd(s, 0) | (unsigned)rd(s, 1) << 8;
    wr(s, 0, 1);
    wr(s, 1, 0);
    wr(s, LCR, 0x03);
    for (int c = 0; c < 256; c++)
        wr(s, THR, (uint8_t)c);
    int count;
    for (count = 0; (rd(s, LSR) & 0x01) && count < 256; count++)
        rd(s, THR);
    wr(s, FCR, old_fcr);
    wr(s, MCR, old_mcr);
    wr(s, LCR, 0x80);
    wr(s, 0, (uint8_t)old_dl);
    wr(s, 1, (uint8_t)(old_dl >> 8));
    wr(s, LCR, old_lcr);
    return count;
}

static const char *linux_autoconfig_16550a(struct vm_serial *s)
{
    wr(s, LCR, 0x80); /* UART_LCR_CONF_MODE_A */
    if (rd(s, EFR) == 0)
        return "ST16650 (EFR with DLAB)";
    wr(s, LCR, 0xbf); /* UART_LCR_CONF_MODE_B */
    if (rd(s, EFR) == 0)
        return "EFR UART (16650V2 family)";
    wr(s, LCR, 0);
    uint8_t status1 = rd(s, MCR);
    wr(s, LCR, 0xe0);
    uint8_t status2 = rd(s, 2); /* NatSemi EXCR1 */
    if (!((status2 ^ status1) & 0x10)) {
        wr(s, LCR, 0);
        wr(s, MCR, status1 ^ 0x10);
        wr(s, LCR, 0xe0);
        status2 = rd(s, 2);
        wr(s, LCR, 0);
        wr(s, MCR, status1);
        if ((status2 ^ status1) & 0x10)
            return "NS16550A";
    }
    wr(s, LCR, 0);
    wr(s, FCR, 0x21); /* ENABLE_FIFO | FCR7_64BYTE */
    status1 = rd(s, IIR) >> 5;
    wr(s, FCR, 0x01);
    wr(s, LCR, 0x80);
    wr(s, FCR, 0x21);
    status2 = rd(s, IIR) >> 5;
    wr(s, FCR, 0x01);
    wr(s, LCR, 0);
    if (status1 == 6 && status2 == 7)
        return "TI16750";
    uint8_t iersave = rd(s, IER);
    wr(s, IER, iersave & ~0x40);
    if (!(rd(s, IER) & 0x40)) {
        wr(s, IER, iersave | 0x40);
        if (rd(s, IER) & 0x40)
            return "XScale";
    }
    wr(s, IER, iersave);
    if (linux_size_fifo(s) == 64)
        return "U6_16550A";
    return "16550A";
}

/* autoconfig() without UPF_SKIP_TEST, so the loopback test runs too. */
static const char *linux_autoconfig(struct vm_serial *s)
{
    uint8_t scratch = rd(s, IER);
    wr(s, IER, 0);
    uint8_t scratch2 = rd(s, IER) & 0x0f;
    wr(s, IER, 0x0f);
    uint8_t scratch3 = rd(s, IER) & 0x0f;
    wr(s, IER, scratch);
    if (scratch2 != 0 || scratch3 != 0x0f)
        return "nothing (IER test failed)";
    uint8_t save_mcr = rd(s, MCR), save_lcr = rd(s, LCR);
    wr(s, MCR, 0x10 | 0x0a);
    uint8_t status1 = rd(s, MSR) & 0xf0;
    wr(s, MCR, save_mcr);
    if (status1 != 0x90)
        return "nothing (loop test failed)";
    wr(s, LCR, 0xbf);
    wr(s, EFR, 0);
    wr(s, LCR, 0);
    wr(s, FCR, 0x01);
    const char *type;
    switch (rd(s, IIR) >> 6) {
    case 0: type = "8250/16450"; break;
    case 1: type = "unknown"; break;
    case 2: type = "16550"; break;
    default: type = linux_autoconfig_16550a(s); break;
    }
    wr(s, LCR, save_lcr);
    wr(s, MCR, save_mcr);
    wr(s, FCR, 0x01); /* serial8250_clear_fifos */
    wr(s, FCR, 0x07);
    wr(s, FCR, 0);
    rd(s, THR);
    wr(s, IER, 0);
    return type;
}

/* serial8250_do_startup() with an IRQ, then set_termios for 115200 8N1:
 * returns the bugs Linux would record, or -1 when it gives up. */
static int linux_startup(struct vm_serial *s)
{
    unsigned bugs = 0;
    wr(s, FCR, 0x01);
    wr(s, FCR, 0x07);
    wr(s, FCR, 0);
    rd(s, LSR);
    rd(s, THR);
    rd(s, IIR);
    rd(s, MSR);
    if (rd(s, LSR) == 0xff)
        return -1; /* "LSR safety check engaged" */
    int spins = 0;
    while (!(rd(s, LSR) & 0x20) && ++spins < 10000) /* wait_for_xmitr(THRE) */
        ;
    wr(s, IER, 0x02);
    uint8_t iir1 = rd(s, IIR);
    wr(s, IER, 0);
    wr(s, IER, 0x02);
    uint8_t iir = rd(s, IIR);
    wr(s, IER, 0);
    if (!(iir1 & 0x01) && (iir & 0x01))
        bugs |= UART_BUG_THRE;
    wr(s, LCR, 0x03);
    wr(s, MCR, 0x08); /* TIOCM_OUT2: "most PC uarts need OUT2 raised" */
    wr(s, IER, 0x02);
    uint8_t lsr = rd(s, LSR);
    iir = rd(s, IIR);
    wr(s, IER, 0);
    if ((lsr & 0x40) && (iir & 0x01))
        bugs |= UART_BUG_TXEN;
    rd(s, LSR);
    rd(s, THR);
    rd(s, IIR);
    rd(s, MSR);
    /* set_termios: IER first, then the divisor, then the FIFO. */
    wr(s, IER, 0x05); /* RLSI | RDI */
    wr(s, LCR, 0x83);
    wr(s, 0, 1);
    wr(s, 1, 0);
    wr(s, LCR, 0x03);
    wr(s, FCR, 0x01);
    wr(s, FCR, 0x87); /* ENABLE | R_TRIG_10 | clear both */
    wr(s, MCR, 0x0b); /* DTR | RTS | OUT2 */
    return (int)bugs;
}

struct linux_port {
    const char *xmit;
    size_t xmit_len, xmit_pos;
    char rx[256];
    size_t rx_len;
    uint8_t ier;
    unsigned handled, spurious;
};

static void linux_tx_chars(struct vm_serial *s, struct linux_port *p)
{
    for (int count = 16; count > 0 && p->xmit_pos < p->xmit_len; count--)
        wr(s, THR, (uint8_t)p->xmit[p->xmit_pos++]);
    if (p->xmit_pos == p->xmit_len && (p->ier & 0x02)) { /* __stop_tx */
        p->ier &= ~0x02;
        wr(s, IER, p->ier);
    }
}

/* serial8250_interrupt(): handle the port until its IIR says nothing more. */
static void linux_interrupt(struct vm_serial *s, struct linux_port *p)
{
    bool any = false;
    for (int pass = 0; pass < 64; pass++) {
        uint8_t iir = rd(s, IIR);
        if (iir & 0x01)
            break;
        any = true;
        uint8_t lsr = rd(s, LSR);
        if ((lsr & 0x01) && (iir & 0x04)) {
            int max = 256;
            do {
                uint8_t c = rd(s, THR);
                if (p->rx_len < sizeof(p->rx))
                    p->rx[p->rx_len++] = (char)c;
                lsr = rd(s, LSR);
            } while ((lsr & 0x01) && --max);
        }
        rd(s, MSR);
        if (lsr & 0x20)
            linux_tx_chars(s, p);
    }
    if (any)
        p->handled++;
    else
        p->spurious++;
}

static void linux_start_tx(struct vm_serial *s, struct linux_port *p, const char *text)
{
    p->xmit = text;
    p->xmit_len = strlen(text);
    p->xmit_pos = 0;
    if (!(p->ier & 0x02)) {
        p->ier |= 0x02;
        wr(s, IER, p->ier);
    }
}

struct irq_log {
    bool level;
    unsigned rises, falls, calls;
};

static void record_irq(void *ctx, bool level)
{
    struct irq_log *l = ctx;
    l->calls++;
    if (level && !l->level)
        l->rises++;
    if (!level && l->level)
        l->falls++;
    l->level = level;
}

static void test_linux_detects_16550a(void)
{
    struct vm_serial s;
    vm_serial_init(&s);
    CU_ASSERT_STRING_EQUAL(linux_autoconfig(&s), "16550A");
    /* autoconfig leaves the chip as it found it: quiet, FIFOs off. */
    CU_ASSERT_EQUAL(rd(&s, IIR), 0x01);
    CU_ASSERT_EQUAL(rd(&s, LSR), 0x60);
    CU_ASSERT_EQUAL(rd(&s, MCR), 0);
    CU_ASSERT_EQUAL(rd(&s, LCR), 0);
    uint8_t buf[8];
    CU_ASSERT_EQUAL(vm_serial_take(&s, buf, sizeof(buf)), 0); /* loopback bytes are not output */
    /* size_fifo() counts what a loopback burst leaves in the receiver. */
    CU_ASSERT_EQUAL(linux_size_fifo(&s), 16);
    vm_serial_destroy(&s);
}

static void test_linux_startup_finds_no_bugs(void)
{
    struct vm_serial s;
    struct irq_log log = {0};
    vm_serial_init(&s);
    vm_serial_set_irq(&s, record_irq, &log);
    CU_ASSERT_STRING_EQUAL(linux_autoconfig(&s), "16550A");
    CU_ASSERT_EQUAL(linux_startup(&s), 0); /* neither UART_BUG_THRE nor UART_BUG_TXEN */
    CU_ASSERT_FALSE(log.level);
    CU_ASSERT_EQUAL(rd(&s, IIR), 0xc1); /* FIFO on, nothing pending */
    CU_ASSERT_EQUAL(rd(&s, LCR), 0x03);
    CU_ASSERT_EQUAL(rd(&s, IER), 0x05);
    vm_serial_destroy(&s);
}

/* THRE comes back on a 0->1 THRI edge only (Linux's probe makes that edge
 * with IER=0 in between); rewriting IER with THRI already set does not
 * re-raise an acknowledged THRE. */
static void test_thre_needs_thri_edge(void)
{
    struct vm_serial s;
    vm_serial_init(&s);
    linux_autoconfig(&s);
    /* Leave THRI on across the probe: the second enable is no 0->1 edge,
     * so a UART that latched THRE once and had it read does not re-raise. */
    wr(&s, IER, 0x02);
    uint8_t iir1 = rd(&s, IIR);
    wr(&s, IER, 0x02); /* no IER=0 in between */
    uint8_t iir2 = rd(&s, IIR);
    CU_ASSERT_EQUAL(iir1 & 0x0f, 0x02);
    CU_ASSERT_EQUAL(iir2 & 0x01, 0x01);
    vm_serial_destroy(&s);
}

static void test_linux_interrupt_driven_tx_and_rx(void)
{
    struct vm_serial s;
    struct irq_log log = {0};
    struct linux_port p = {.ier = 0x05};
    vm_serial_init(&s);
    vm_serial_set_irq(&s, record_irq, &log);
    linux_autoconfig(&s);
    CU_ASSERT_EQUAL(linux_startup(&s), 0);
    CU_ASSERT_FALSE(log.level);

    const char *msg = "Welcome to the guest, this line is longer than one FIFO load\r\n";
    linux_start_tx(&s, &p, msg);
    unsigned irqs = 0;
    while (log.level && irqs < 100) { /* the CPU takes the interrupt */
        linux_interrupt(&s, &p);
        irqs++;
    }
    CU_ASSERT_FALSE(log.level);
    CU_ASSERT(irqs >= 1);
    CU_ASSERT_EQUAL(p.spurious, 0);
    CU_ASSERT_EQUAL(p.xmit_pos, strlen(msg));
    uint8_t out[128];
    size_t n = vm_serial_take(&s, out, sizeof(out));
    CU_ASSERT_EQUAL(n, strlen(msg));
    CU_ASSERT_EQUAL(memcmp(out, msg, n), 0);
    CU_ASSERT_EQUAL(rd(&s, IER) & 0x02, 0); /* __stop_tx turned THRI off */

    /* Typed input raises the line (3 bytes < trigger 8: character timeout). */
    unsigned rises = log.rises;
    CU_ASSERT_EQUAL(vm_serial_input(&s, "ls\n", 3), 3);
    CU_ASSERT(log.level);
    CU_ASSERT_EQUAL(log.rises, rises + 1);
    linux_interrupt(&s, &p);
    CU_ASSERT_FALSE(log.level);
    CU_ASSERT_EQUAL(p.rx_len, 3);
    CU_ASSERT_EQUAL(memcmp(p.rx, "ls\n", 3), 0);
    CU_ASSERT_EQUAL(p.spurious, 0);
    vm_serial_destroy(&s);
}

static void test_thre_interrupt_semantics(void)
{
    struct vm_serial s;
    struct irq_log log = {0};
    vm_serial_init(&s);
    vm_serial_set_irq(&s, record_irq, &log);
    CU_ASSERT_EQUAL(log.calls, 1); /* told the current level at once */
    CU_ASSERT_FALSE(log.level);

    /* Pending but gated: OUT2 is off. */
    wr(&s, IER, 0x02);
    CU_ASSERT_FALSE(log.level);
    wr(&s, MCR, 0x08);
    CU_ASSERT(log.level);
    /* Reading IIR reports THRE once and acknowledges it. */
    CU_ASSERT_EQUAL(rd(&s, IIR), 0x02);
    CU_ASSERT_FALSE(log.level);
    CU_ASSERT_EQUAL(rd(&s, IIR), 0x01);
    /* A THR write: the transmitter empties at once and THRE is back. */
    wr(&s, THR, 'x');
    CU_ASSERT(log.level);
    CU_ASSERT_EQUAL(log.rises, 2);
    /* A second write while it is pending makes a fresh edge. */
    wr(&s, THR, 'y');
    CU_ASSERT(log.level);
    CU_ASSERT_EQUAL(log.rises, 3);
    CU_ASSERT_EQUAL(log.falls, 2);
    /* Disabling THRI drops the line; re-enabling raises it again. */
    wr(&s, IER, 0);
    CU_ASSERT_FALSE(log.level);
    rd(&s, IIR);
    wr(&s, IER, 0x02);
    CU_ASSERT(log.level);
    /* Loopback forces OUT2's pin inactive. */
    wr(&s, MCR, 0x18);
    CU_ASSERT_FALSE(log.level);
    wr(&s, MCR, 0x08);
    CU_ASSERT(log.level);
    /* Reset brings the line down. */
    vm_serial_reset(&s);
    CU_ASSERT_FALSE(log.level);
    vm_serial_destroy(&s);
}

static void test_no_callback_is_the_bare_board(void)
{
    struct vm_serial s;
    vm_serial_init(&s);
    wr(&s, MCR, 0x08);
    wr(&s, IER, 0x0f);
    CU_ASSERT_EQUAL(rd(&s, IIR), 0x02); /* registers still behave */
    wr(&s, THR, 'a');
    uint8_t b;
    CU_ASSERT_EQUAL(vm_serial_take(&s, &b, 1), 1);
    CU_ASSERT(vm_serial_thr_coalescable(&s));
    vm_serial_destroy(&s);
}

static void test_coalescable_follows_thri(void)
{
    struct vm_serial s;
    struct irq_log log = {0};
    vm_serial_init(&s);
    CU_ASSERT(vm_serial_thr_coalescable(&s));
    vm_serial_set_irq(&s, record_irq, &log);
    CU_ASSERT(vm_serial_thr_coalescable(&s));
    wr(&s, IER, 0x01);
    CU_ASSERT(vm_serial_thr_coalescable(&s));
    wr(&s, IER, 0x03);
    CU_ASSERT_FALSE(vm_serial_thr_coalescable(&s));
    wr(&s, LCR, 0x80);
    wr(&s, IER, 0x00); /* DLM, not IER */
    CU_ASSERT_FALSE(vm_serial_thr_coalescable(&s));
    wr(&s, LCR, 0x03);
    wr(&s, IER, 0x01);
    CU_ASSERT(vm_serial_thr_coalescable(&s));
    wr(&s, IER, 0x02);
    vm_serial_set_irq(&s, NULL, NULL);
    CU_ASSERT(vm_serial_thr_coalescable(&s));
    vm_serial_destroy(&s);
}

static void test_rx_fifo_trigger_levels(void)
{
    struct vm_serial s;
    struct irq_log log = {0};
    vm_serial_init(&s);
    vm_serial_set_irq(&s, record_irq, &log);
    wr(&s, MCR, 0x08);
    wr(&s, IER, 0x01);
    /* No FIFO: any byte is "data available". */
    vm_serial_input(&s, "a", 1);
    CU_ASSERT(log.level);
    CU_ASSERT_EQUAL(rd(&s, IIR), 0x04);
    CU_ASSERT_EQUAL(rd(&s, THR), 'a');
    CU_ASSERT_FALSE(log.level);
    /* FIFO with trigger 8: below it a character timeout, from 8 on RDA. */
    wr(&s, FCR, 0x81);
    vm_serial_input(&s, "0123456", 7);
    CU_ASSERT_EQUAL(rd(&s, IIR), 0xcc);
    vm_serial_input(&s, "7", 1);
    CU_ASSERT_EQUAL(rd(&s, IIR), 0xc4);
    CU_ASSERT(log.level);
    /* Reading IIR does not acknowledge receive interrupts; RBR does. */
    CU_ASSERT(log.level);
    for (int i = 0; i < 8; i++)
        CU_ASSERT_EQUAL(rd(&s, THR), '0' + i);
    CU_ASSERT_FALSE(log.level);
    CU_ASSERT_EQUAL(rd(&s, IIR), 0xc1);
    CU_ASSERT_EQUAL(rd(&s, LSR) & 0x01, 0);
    /* RDI has priority over THRE. */
    wr(&s, IER, 0x03);
    vm_serial_input(&s, "z", 1);
    CU_ASSERT_EQUAL(rd(&s, IIR), 0xcc);
    CU_ASSERT_EQUAL(rd(&s, THR), 'z');
    CU_ASSERT_EQUAL(rd(&s, IIR), 0xc2);
    vm_serial_destroy(&s);
}

static void test_rx_fifo_clear_drops_only_the_fifo(void)
{
    struct vm_serial s;
    vm_serial_init(&s);
    wr(&s, FCR, 0x01);
    char in[40];
    for (int i = 0; i < 40; i++)
        in[i] = (char)('A' + i);
    CU_ASSERT_EQUAL(vm_serial_input(&s, in, sizeof(in)), 40);
    wr(&s, FCR, 0x03); /* clear the receiver: 16 bytes */
    CU_ASSERT_EQUAL(rd(&s, THR), 'A' + 16);
    wr(&s, FCR, 0x00); /* leaving FIFO mode clears it too */
    CU_ASSERT_EQUAL(rd(&s, THR), 'A' + 33);
    /* Clear bits without bit 0 are not programmed. */
    wr(&s, FCR, 0x02);
    CU_ASSERT_EQUAL(rd(&s, THR), 'A' + 34);
    vm_serial_destroy(&s);
}

static void test_loopback_overrun_and_line_status(void)
{
    struct vm_serial s;
    struct irq_log log = {0};
    vm_serial_init(&s);
    vm_serial_set_irq(&s, record_irq, &log);
    vm_serial_input(&s, "host", 4);
    wr(&s, MCR, 0x10);
    CU_ASSERT_EQUAL(rd(&s, LSR) & 0x01, 0); /* the receiver is disconnected from the line */
    wr(&s, IER, 0x04);
    wr(&s, THR, '1');
    wr(&s, THR, '2'); /* no FIFO: the second byte overruns */
    CU_ASSERT_EQUAL(rd(&s, IIR), 0x06);
    CU_ASSERT_FALSE(log.level); /* loopback: OUT2 pin inactive */
    CU_ASSERT_EQUAL(rd(&s, LSR), 0x63); /* DR, OE, THRE, TEMT */
    CU_ASSERT_EQUAL(rd(&s, LSR), 0x61); /* OE clears on read */
    CU_ASSERT_EQUAL(rd(&s, IIR), 0x01);
    CU_ASSERT_EQUAL(rd(&s, THR), '1');
    wr(&s, MCR, 0x00);
    /* Back on the line, the host's bytes are still there. */
    CU_ASSERT_EQUAL(rd(&s, THR), 'h');
    vm_serial_destroy(&s);
}

static void test_modem_status_deltas(void)
{
    struct vm_serial s;
    vm_serial_init(&s);
    CU_ASSERT_EQUAL(rd(&s, MSR), 0xb0);
    wr(&s, IER, 0x08);
    wr(&s, MCR, 0x10); /* loopback: inputs follow MCR, all low now */
    CU_ASSERT_EQUAL(rd(&s, IIR), 0x00); /* modem status interrupt */
    CU_ASSERT_EQUAL(rd(&s, MSR), 0x0b); /* DCTS, DDSR, DDCD */
    CU_ASSERT_EQUAL(rd(&s, IIR), 0x01);
    wr(&s, MCR, 0x14); /* OUT1 -> RI */
    CU_ASSERT_EQUAL(rd(&s, MSR), 0x40);
    wr(&s, MCR, 0x10); /* RI falling: TERI */
    CU_ASSERT_EQUAL(rd(&s, MSR), 0x04);
    vm_serial_destroy(&s);
}

struct writer {
    struct vm_serial *s;
    unsigned n;
};

static void *write_many(void *arg)
{
    struct writer *w = arg;
    for (unsigned i = 0; i < w->n; i++) {
        vm_serial_out(w->s, THR, 'w');
        vm_serial_in(w->s, IIR);
        vm_serial_in(w->s, LSR);
    }
    return NULL;
}

static void *feed_and_drain(void *arg)
{
    struct writer *w = arg;
    uint8_t buf[512];
    for (unsigned i = 0; i < w->n; i++) {
        vm_serial_input(w->s, "k", 1);
        vm_serial_take(w->s, buf, sizeof(buf));
    }
    return NULL;
}

struct counting_irq {
    bool level;
    unsigned bad;
};

static void check_alternates(void *ctx, bool level)
{
    struct counting_irq *c = ctx;
    /* The UART reports changes only, in order: never the same level twice. */
    if (c->level == level)
        c->bad++;
    c->level = level;
}

static void test_threads_share_one_uart(void)
{
    static struct vm_serial s;
    /* vm_serial_set_irq reports the current level (low) once at once. */
    struct counting_irq c = {.level = true};
    vm_serial_init(&s);
    vm_serial_set_irq(&s, check_alternates, &c);
    vm_serial_out(&s, MCR, 0x08);
    vm_serial_out(&s, IER, 0x03);
    enum { WRITERS = 3, EACH = 3000 };
    pthread_t t[WRITERS + 1];
    struct writer w = {.s = &s, .n = EACH};
    for (int i = 0; i < WRITERS; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, write_many, &w), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t[WRITERS], NULL, feed_and_drain, &w), 0);
    for (int i = 0; i <= WRITERS; i++)
        pthread_join(t[i], NULL);
    CU_ASSERT_EQUAL(s.tx_total, (uint64_t)WRITERS * EACH);
    CU_ASSERT_EQUAL(c.bad, 0);
    vm_serial_destroy(&s);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("vm_serial", NULL, NULL);
    CU_add_test(s, "transmit and LSR", test_transmit_and_lsr);
    CU_add_test(s, "divisor latch and registers hold values", test_divisor_latch_and_registers_hold);
    CU_add_test(s, "receive queue", test_receive_queue);
    CU_add_test(s, "loopback", test_loopback);
    CU_add_test(s, "output high-water mark", test_output_high_water);
    CU_add_test(s, "Linux autoconfig detects a 16550A with a 16-byte FIFO", test_linux_detects_16550a);
    CU_add_test(s, "Linux startup finds neither UART_BUG_THRE nor UART_BUG_TXEN",
                test_linux_startup_finds_no_bugs);
    CU_add_test(s, "THRE is re-raised by a 0-1 THRI edge only", test_thre_needs_thri_edge);
    CU_add_test(s, "Linux transmits and receives by interrupts", test_linux_interrupt_driven_tx_and_rx);
    CU_add_test(s, "THRE interrupt: raise, acknowledge, re-raise, OUT2 gate",
                test_thre_interrupt_semantics);
    CU_add_test(s, "no IRQ callback: registers only (bare board)", test_no_callback_is_the_bare_board);
    CU_add_test(s, "THR coalescing allowed only without THRE interrupts", test_coalescable_follows_thri);
    CU_add_test(s, "RX FIFO trigger levels and interrupt priority", test_rx_fifo_trigger_levels);
    CU_add_test(s, "RX FIFO clear drops only the FIFO's bytes", test_rx_fifo_clear_drops_only_the_fifo);
    CU_add_test(s, "loopback overrun and line status interrupt", test_loopback_overrun_and_line_status);
    CU_add_test(s, "modem status deltas in loopback", test_modem_status_deltas);
    CU_add_test(s, "vCPU threads and the input thread share one UART", test_threads_share_one_uart);
}

int main(void)
{
    return test_main("test_vm_serial", register_suites, false);
}
