#include "serial.h"

#include <string.h>

enum {
    REG_DATA = 0, /* RBR/THR, or DLL with DLAB */
    REG_IER = 1,  /* or DLM with DLAB */
    REG_IIR = 2,  /* FCR on write */
    REG_LCR = 3,
    REG_MCR = 4,
    REG_LSR = 5,
    REG_MSR = 6,
    REG_SCR = 7,
};

#define LCR_DLAB 0x80
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MCR_LOOP 0x10

void vm_serial_init(struct vm_serial *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->rx_lock, NULL);
    vm_serial_reset(s);
}

void vm_serial_destroy(struct vm_serial *s)
{
    pthread_mutex_destroy(&s->rx_lock);
}

void vm_serial_reset(struct vm_serial *s)
{
    s->ier = s->lcr = s->mcr = s->scr = s->dlm = s->fcr = 0;
    s->dll = 0x0c; /* 9600 baud, what firmware usually leaves */
    s->tx_len = 0;
    atomic_store(&s->tx_unread, 0);
    pthread_mutex_lock(&s->rx_lock);
    s->rx_head = s->rx_count = 0;
    pthread_mutex_unlock(&s->rx_lock);
}

static void transmit(struct vm_serial *s, uint8_t c)
{
    /* In loopback mode a real 16550 feeds its own receiver instead. */
    if (s->mcr & MCR_LOOP) {
        vm_serial_input(s, &c, 1);
        return;
    }
    if (s->tx_len < VM_SERIAL_TX_MAX) {
        s->tx[s->tx_len++] = c;
        atomic_store_explicit(&s->tx_unread, s->tx_len, memory_order_relaxed);
    }
    s->tx_total++;
}

void vm_serial_out(struct vm_serial *s, unsigned offset, uint8_t value)
{
    switch (offset & 7) {
    case REG_DATA:
        if (s->lcr & LCR_DLAB)
            s->dll = value;
        else
            transmit(s, value);
        break;
    case REG_IER:
        if (s->lcr & LCR_DLAB)
            s->dlm = value;
        else
            s->ier = value & 0x0f;
        break;
    case REG_IIR:
        s->fcr = value & 0xc9; /* the clear bits (1, 2) are self-clearing */
        break;
    case REG_LCR:
        s->lcr = value;
        break;
    case REG_MCR:
        s->mcr = value & 0x1f;
        break;
    case REG_SCR:
        s->scr = value;
        break;
    default: /* LSR and MSR are read-only */
        break;
    }
}

uint8_t vm_serial_in(struct vm_serial *s, unsigned offset)
{
    uint8_t v = 0;
    switch (offset & 7) {
    case REG_DATA:
        if (s->lcr & LCR_DLAB)
            return s->dll;
        pthread_mutex_lock(&s->rx_lock);
        if (s->rx_count) {
            v = s->rx[s->rx_head];
            s->rx_head = (s->rx_head + 1) % VM_SERIAL_RX_MAX;
            s->rx_count--;
        }
        pthread_mutex_unlock(&s->rx_lock);
        return v;
    case REG_IER:
        return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
    case REG_IIR:
        /* No interrupt pending; FIFO-enabled bits mirror FCR bit 0. */
        return (s->fcr & 1) ? 0xc1 : 0x01;
    case REG_LCR:
        return s->lcr;
    case REG_MCR:
        return s->mcr;
    case REG_LSR:
        pthread_mutex_lock(&s->rx_lock);
        v = LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0);
        pthread_mutex_unlock(&s->rx_lock);
        return v;
    case REG_MSR:
        /* CTS, DSR and DCD asserted, so drivers that wait for them proceed;
         * in loopback the outputs of MCR show up instead. */
        if (s->mcr & MCR_LOOP)
            return (uint8_t)(((s->mcr & 0x02) << 3) | ((s->mcr & 0x01) << 5) |
                             ((s->mcr & 0x04) << 4) | ((s->mcr & 0x08) << 4));
        return 0xb0;
    case REG_SCR:
        return s->scr;
    }
    return 0xff;
}

size_t vm_serial_take(struct vm_serial *s, uint8_t *out, size_t max)
{
    size_t n = s->tx_len < max ? s->tx_len : max;
    memcpy(out, s->tx, n);
    memmove(s->tx, s->tx + n, s->tx_len - n);
    s->tx_len -= n;
    atomic_store_explicit(&s->tx_unread, s->tx_len, memory_order_relaxed);
    return n;
}

bool vm_serial_tx_full(const struct vm_serial *s)
{
    return s->tx_len >= VM_SERIAL_TX_HIGH;
}

size_t vm_serial_input(struct vm_serial *s, const void *data, size_t n)
{
    const uint8_t *p = data;
    size_t done = 0;
    pthread_mutex_lock(&s->rx_lock);
    while (done < n && s->rx_count < VM_SERIAL_RX_MAX) {
        s->rx[(s->rx_head + s->rx_count) % VM_SERIAL_RX_MAX] = p[done++];
        s->rx_count++;
    }
    pthread_mutex_unlock(&s->rx_lock);
    return done;
}
