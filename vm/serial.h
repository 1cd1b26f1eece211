/* vm/serial.h: a 16550 UART at COM1 (ports 0x3f8-0x3ff), enough for the
 * usual polled drivers.
 *
 * THR writes collect in an output buffer that the vCPU's owner drains
 * (vm_serial_take) at every event; LSR always reports the transmitter empty
 * and data-ready while input is queued; IER, LCR, MCR, DLL, DLM and SCR hold
 * what is written; RBR reads bytes queued with vm_serial_input. No
 * interrupts are raised: kvmstub's guests poll.
 *
 * Threads: register accesses and vm_serial_take happen on the thread that
 * runs the vCPU; vm_serial_input and vm_serial_pending may be called from
 * any thread. */
#ifndef VM_SERIAL_H
#define VM_SERIAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VM_SERIAL_BASE 0x3f8u
/* The run loop hands output over once VM_SERIAL_TX_HIGH bytes wait; the
 * room above it takes what one exit can add (a drained coalesced ring, one
 * string instruction's page) so nothing is ever dropped. */
#define VM_SERIAL_TX_HIGH 8192u
#define VM_SERIAL_TX_MAX 16384u
#define VM_SERIAL_RX_MAX 4096u

struct vm_serial {
    uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
    uint8_t tx[VM_SERIAL_TX_MAX];
    size_t tx_len;
    atomic_size_t tx_unread; /* tx_len, readable from other threads */
    uint64_t tx_total;
    pthread_mutex_t rx_lock;
    uint8_t rx[VM_SERIAL_RX_MAX];
    size_t rx_head, rx_count;
};

void vm_serial_init(struct vm_serial *s);
void vm_serial_destroy(struct vm_serial *s);
/* Back to power-on register values, dropping queued input and output. */
void vm_serial_reset(struct vm_serial *s);

/* offset is port - VM_SERIAL_BASE (0..7). */
void vm_serial_out(struct vm_serial *s, unsigned offset, uint8_t value);
uint8_t vm_serial_in(struct vm_serial *s, unsigned offset);

/* Moves up to max bytes of guest output to out; returns the count. */
size_t vm_serial_take(struct vm_serial *s, uint8_t *out, size_t max);
/* True once VM_SERIAL_TX_HIGH bytes wait. */
bool vm_serial_tx_full(const struct vm_serial *s);

/* Queues input for the guest to read; returns bytes queued (may be short). */
size_t vm_serial_input(struct vm_serial *s, const void *data, size_t n);

#endif
