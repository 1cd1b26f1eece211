/* The 16550A model. Register semantics follow the National PC16550D data
 * sheet as Linux's 8250 driver (8250_port.c) probes them; where the sheet
 * leaves timing open the transmitter is instantaneous and the receiver's
 * character timeout fires at once. */
#include "serial.h"

#include "bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
    REG_DATA = 0, /* RBR/THR, or DLL with DLAB */
    REG_IER = 1,  /* or DLM with DLAB */
    REG_IIR = 2,  /* FCR on write; never affected by DLAB */
    REG_LCR = 3,
    REG_MCR = 4,
    REG_LSR = 5,
    REG_MSR = 6,
    REG_SCR = 7,
};

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IER_RLSI 0x04
#define IER_MSI 0x08

#define IIR_NONE 0x01
#define IIR_MSI 0x00
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_RLSI 0x06
#define IIR_TIMEOUT 0x0c
#define IIR_FIFO 0xc0

#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define FCR_KEPT 0xc9 /* enable, DMA mode, trigger; the clear bits self-clear */

#define LCR_DLAB 0x80
#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80
/* The far end holds CTS, DSR and DCD asserted, so drivers waiting for
 * them (and UPF_CONS_FLOW consoles) proceed. */
#define MSR_IDLE (MSR_CTS | MSR_DSR | MSR_DCD)

static size_t fifo_size(const struct vm_serial *s)
{
    return (s->fcr & FCR_ENABLE) ? VM_SERIAL_FIFO : 1;
}

/* Bytes the receiver holds: in loopback its own FIFO, otherwise the head
 * of the backlog. */
static size_t rx_fill(const struct vm_serial *s)
{
    size_t n = (s->mcr & MCR_LOOP) ? s->loop_count : s->rx_count;
    size_t max = fifo_size(s);
    return n < max ? n : max;
}

static size_t rx_trigger(const struct vm_serial *s)
{
    static const uint8_t level[4] = {1, 4, 8, 14};
    return level[s->fcr >> 6];
}

static uint8_t msr_inputs(uint8_t mcr)
{
    if (!(mcr & MCR_LOOP))
        return MSR_IDLE;
    /* Loopback wires RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD. */
    return (uint8_t)(((mcr & MCR_RTS) ? MSR_CTS : 0) | ((mcr & MCR_DTR) ? MSR_DSR : 0) |
                     ((mcr & MCR_OUT1) ? MSR_RI : 0) | ((mcr & MCR_OUT2) ? MSR_DCD : 0));
}

/* The highest-priority pending interrupt, as IIR bits 3:0. */
static uint8_t pending_id(const struct vm_serial *s)
{
    if ((s->ier & IER_RLSI) && s->lsr_err)
        return IIR_RLSI;
    size_t fill = rx_fill(s);
    if ((s->ier & IER_RDI) && fill) {
        if (!(s->fcr & FCR_ENABLE) || fill >= rx_trigger(s))
            return IIR_RDI;
        return IIR_TIMEOUT;
    }
    if ((s->ier & IER_THRI) && s->thre_pending)
        return IIR_THRI;
    if ((s->ier & IER_MSI) && s->msr_delta)
        return IIR_MSI;
    return IIR_NONE;
}

/* Recomputes the output line and tells the board when it changed. PCs
 * gate INTR through OUT2; loopback forces OUT2's pin inactive. */
static void update_irq(struct vm_serial *s)
{
    bool level = pending_id(s) != IIR_NONE && (s->mcr & MCR_OUT2) && !(s->mcr & MCR_LOOP);
    if (level == s->irq_level)
        return;
    s->irq_level = level;
    if (s->irq_fn)
        s->irq_fn(s->irq_ctx, level);
}

static void update_coalescable(struct vm_serial *s)
{
    atomic_store_explicit(&s->coalescable, !s->irq_fn || !(s->ier & IER_THRI),
                          memory_order_relaxed);
}

/* Drops up to n bytes from the receiver (an FCR clear). */
static void rx_drop(struct vm_serial *s, size_t n)
{
    if (s->mcr & MCR_LOOP) {
        s->loop_count = 0;
        return;
    }
    if (n > s->rx_count)
        n = s->rx_count;
    s->rx_head = (s->rx_head + n) % VM_SERIAL_RX_MAX;
    s->rx_count -= n;
}

void vm_serial_init(struct vm_serial *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    vm_serial_reset(s);
}

void vm_serial_destroy(struct vm_serial *s)
{
    pthread_mutex_destroy(&s->lock);
}

void vm_serial_reset(struct vm_serial *s)
{
    pthread_mutex_lock(&s->lock);
    s->ier = s->lcr = s->mcr = s->scr = s->dlm = s->fcr = 0;
    s->dll = 0x0c; /* 9600 baud, what firmware usually leaves */
    s->lsr_err = s->msr_delta = 0;
    s->thre_pending = false;
    s->tx_len = 0;
    atomic_store(&s->tx_unread, 0);
    s->rx_head = s->rx_count = 0;
    s->loop_count = 0;
    update_coalescable(s);
    update_irq(s);
    pthread_mutex_unlock(&s->lock);
}

void vm_serial_set_irq(struct vm_serial *s, vm_serial_irq_fn fn, void *ctx)
{
    pthread_mutex_lock(&s->lock);
    s->irq_fn = fn;
    s->irq_ctx = ctx;
    if (fn)
        fn(ctx, s->irq_level);
    update_coalescable(s);
    pthread_mutex_unlock(&s->lock);
}

static void transmit(struct vm_serial *s, uint8_t c)
{
    if (s->mcr & MCR_LOOP) {
        /* The receiver takes what fits in its FIFO; more is an overrun,
         * which is how Linux's size_fifo() measures the FIFO. */
        if (s->loop_count < fifo_size(s))
            s->loop[s->loop_count++] = c;
        else
            s->lsr_err |= LSR_OE;
        return;
    }
    if (s->tx_len < VM_SERIAL_TX_MAX) {
        s->tx[s->tx_len++] = c;
        atomic_store_explicit(&s->tx_unread, s->tx_len, memory_order_relaxed);
    }
    s->tx_total++;
}

static void write_fcr(struct vm_serial *s, uint8_t value)
{
    uint8_t old = s->fcr;
    /* Switching the FIFOs on or off empties them; the other bits are only
     * programmed while bit 0 is written as 1. */
    if ((value ^ old) & FCR_ENABLE)
        rx_drop(s, fifo_size(s));
    if (!(value & FCR_ENABLE)) {
        s->fcr = 0;
        return;
    }
    s->fcr = value & FCR_KEPT;
    if (value & FCR_CLEAR_RX)
        rx_drop(s, fifo_size(s));
}

static void write_mcr(struct vm_serial *s, uint8_t value)
{
    uint8_t old_in = msr_inputs(s->mcr);
    if ((s->mcr & MCR_LOOP) && !(value & MCR_LOOP))
        s->loop_count = 0;
    s->mcr = value & 0x1f;
    uint8_t in = msr_inputs(s->mcr);
    uint8_t changed = old_in ^ in;
    if (changed & MSR_CTS)
        s->msr_delta |= MSR_DCTS;
    if (changed & MSR_DSR)
        s->msr_delta |= MSR_DDSR;
    if ((old_in & MSR_RI) && !(in & MSR_RI))
        s->msr_delta |= MSR_TERI;
    if (changed & MSR_DCD)
        s->msr_delta |= MSR_DDCD;
}

void vm_serial_out(struct vm_serial *s, unsigned offset, uint8_t value)
{
    pthread_mutex_lock(&s->lock);
    switch (offset & 7) {
    case REG_DATA:
        if (s->lcr & LCR_DLAB) {
            s->dll = value;
            break;
        }
        /* Writing THR clears a pending THRE interrupt; the byte leaves at
         * once, so THR is empty again and THRE is pending anew. The board
         * sees both edges. */
        s->thre_pending = false;
        update_irq(s);
        transmit(s, value);
        s->thre_pending = true;
        break;
    case REG_IER:
        if (s->lcr & LCR_DLAB) {
            s->dlm = value;
            break;
        }
        /* Enabling THRI with THR empty raises THRE at once, as Linux's
         * UART_BUG_THRE and UART_BUG_TXEN probes expect. */
        if ((value & IER_THRI) && !(s->ier & IER_THRI))
            s->thre_pending = true;
        s->ier = value & 0x0f;
        update_coalescable(s);
        break;
    case REG_IIR:
        write_fcr(s, value);
        break;
    case REG_LCR:
        s->lcr = value;
        break;
    case REG_MCR:
        write_mcr(s, value);
        break;
    case REG_SCR:
        s->scr = value;
        break;
    default: /* LSR and MSR are read-only */
        break;
    }
    update_irq(s);
    pthread_mutex_unlock(&s->lock);
}

static uint8_t read_rbr(struct vm_serial *s)
{
    uint8_t v = 0;
    if (s->mcr & MCR_LOOP) {
        if (s->loop_count) {
            v = s->loop[0];
            memmove(s->loop, s->loop + 1, --s->loop_count);
        }
    } else if (s->rx_count) {
        v = s->rx[s->rx_head];
        s->rx_head = (s->rx_head + 1) % VM_SERIAL_RX_MAX;
        s->rx_count--;
    }
    return v;
}

uint8_t vm_serial_in(struct vm_serial *s, unsigned offset)
{
    uint8_t v = 0xff;
    pthread_mutex_lock(&s->lock);
    switch (offset & 7) {
    case REG_DATA:
        v = (s->lcr & LCR_DLAB) ? s->dll : read_rbr(s);
        break;
    case REG_IER:
        v = (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
        break;
    case REG_IIR: {
        uint8_t id = pending_id(s);
        if (id == IIR_THRI)
            s->thre_pending = false; /* reading IIR acknowledges THRE */
        v = id | ((s->fcr & FCR_ENABLE) ? IIR_FIFO : 0);
        break;
    }
    case REG_LCR:
        v = s->lcr;
        break;
    case REG_MCR:
        v = s->mcr;
        break;
    case REG_LSR:
        v = LSR_THRE | LSR_TEMT | s->lsr_err | (rx_fill(s) ? LSR_DR : 0);
        s->lsr_err = 0;
        break;
    case REG_MSR:
        v = msr_inputs(s->mcr) | s->msr_delta;
        s->msr_delta = 0;
        break;
    case REG_SCR:
        v = s->scr;
        break;
    }
    update_irq(s);
    pthread_mutex_unlock(&s->lock);
    return v;
}

bool vm_serial_thr_coalescable(const struct vm_serial *s)
{
    return atomic_load_explicit(&s->coalescable, memory_order_relaxed);
}

size_t vm_serial_take(struct vm_serial *s, uint8_t *out, size_t max)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->tx_len < max ? s->tx_len : max;
    memcpy(out, s->tx, n);
    memmove(s->tx, s->tx + n, s->tx_len - n);
    s->tx_len -= n;
    atomic_store_explicit(&s->tx_unread, s->tx_len, memory_order_relaxed);
    pthread_mutex_unlock(&s->lock);
    return n;
}

bool vm_serial_tx_pending(const struct vm_serial *s)
{
    return atomic_load_explicit(&s->tx_unread, memory_order_relaxed) != 0;
}

bool vm_serial_tx_full(const struct vm_serial *s)
{
    return atomic_load_explicit(&s->tx_unread, memory_order_relaxed) >= VM_SERIAL_TX_HIGH;
}

size_t vm_serial_input(struct vm_serial *s, const void *data, size_t n)
{
    const uint8_t *p = data;
    size_t done = 0;
    pthread_mutex_lock(&s->lock);
    while (done < n && s->rx_count < VM_SERIAL_RX_MAX) {
        s->rx[(s->rx_head + s->rx_count) % VM_SERIAL_RX_MAX] = p[done++];
        s->rx_count++;
    }
    update_irq(s);
    pthread_mutex_unlock(&s->lock);
    return done;
}

/* Layout: version 1, ier lcr mcr scr dll dlm fcr lsr_err msr_delta
 * thre_pending, rx count (2, little-endian), the queued bytes, loop count
 * (1), the loopback bytes. */
#define STATE_VERSION 1u
#define STATE_FIXED 11u

int vm_serial_save(void *dev, uint8_t **buf, size_t *len)
{
    struct vm_serial *s = dev;
    pthread_mutex_lock(&s->lock);
    size_t n = STATE_FIXED + 2 + s->rx_count + 1 + s->loop_count;
    uint8_t *b = malloc(n);
    if (!b) {
        pthread_mutex_unlock(&s->lock);
        return -ENOMEM;
    }
    size_t k = 0;
    b[k++] = STATE_VERSION;
    const uint8_t regs[] = {s->ier, s->lcr, s->mcr, s->scr, s->dll, s->dlm,
                            s->fcr, s->lsr_err, s->msr_delta, s->thre_pending};
    memcpy(b + k, regs, sizeof(regs));
    k += sizeof(regs);
    b[k++] = (uint8_t)s->rx_count;
    b[k++] = (uint8_t)(s->rx_count >> 8);
    for (size_t i = 0; i < s->rx_count; i++)
        b[k++] = s->rx[(s->rx_head + i) % VM_SERIAL_RX_MAX];
    b[k++] = (uint8_t)s->loop_count;
    memcpy(b + k, s->loop, s->loop_count);
    pthread_mutex_unlock(&s->lock);
    *buf = b;
    *len = n;
    return 0;
}

int vm_serial_load(void *dev, const uint8_t *b, size_t len, bool apply)
{
    struct vm_serial *s = dev;
    if (len < STATE_FIXED + 3 || b[0] != STATE_VERSION)
        return -EINVAL;
    size_t rx = b[STATE_FIXED] | (size_t)b[STATE_FIXED + 1] << 8;
    if (rx > VM_SERIAL_RX_MAX || len < STATE_FIXED + 2 + rx + 1)
        return -EINVAL;
    size_t lp = b[STATE_FIXED + 2 + rx];
    if (lp > VM_SERIAL_FIFO || len != STATE_FIXED + 2 + rx + 1 + lp || b[10] > 1)
        return -EINVAL;
    if (!apply)
        return 0;
    pthread_mutex_lock(&s->lock);
    s->ier = b[1] & 0x0f;
    s->lcr = b[2];
    s->mcr = b[3] & 0x1f;
    s->scr = b[4];
    s->dll = b[5];
    s->dlm = b[6];
    s->fcr = b[7] & FCR_KEPT;
    s->lsr_err = b[8];
    s->msr_delta = b[9];
    s->thre_pending = b[10];
    s->rx_head = 0;
    s->rx_count = rx;
    memcpy(s->rx, b + STATE_FIXED + 2, rx);
    s->loop_count = lp;
    memcpy(s->loop, b + STATE_FIXED + 3 + rx, lp);
    update_coalescable(s);
    update_irq(s);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static int bus_read(void *dev, uint64_t offset, uint8_t *data, unsigned size, struct vm_event *ev)
{
    (void)size;
    (void)ev;
    data[0] = vm_serial_in(dev, (unsigned)offset);
    return 0;
}

static int bus_write(void *dev, uint64_t offset, const uint8_t *data, unsigned size,
                     struct vm_event *ev)
{
    (void)size;
    (void)ev;
    struct vm_serial *s = dev;
    vm_serial_out(s, (unsigned)offset, data[0]);
    if (offset == REG_IER && s->ier_fn) /* (or DLM, which changes nothing) */
        s->ier_fn(s->ier_ctx);
    return 0;
}

int vm_serial_attach(struct vm_serial *s, struct vm_bus *bus, uint64_t coalesce_len,
                     vm_serial_ier_fn ier_written, void *ctx)
{
    s->ier_fn = ier_written;
    s->ier_ctx = ctx;
    struct vm_bus_range range = {.space = VM_BUS_PIO, .base = VM_SERIAL_BASE, .len = 8,
                                 .name = "uart", .read = bus_read, .write = bus_write, .dev = s,
                                 .bytewise = true, .coalesce_len = coalesce_len};
    int r = vm_bus_add(bus, &range);
    if (!r)
        r = vm_bus_add_state(bus, &(struct vm_bus_state){.name = "uart",
                                                         .save = vm_serial_save,
                                                         .load = vm_serial_load,
                                                         .dev = s});
    return r;
}
