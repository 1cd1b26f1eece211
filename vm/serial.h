/* vm/serial.h: a 16550A UART at COM1 (ports 0x3f8-0x3ff).
 *
 * Polled drivers and Linux's interrupt-driven 8250 driver both work: the
 * registers behave as a 16550A does (Linux's autoconfig detects a 16550A,
 * its THRE and TXEN probes find no bug). The transmitter is infinitely
 * fast: THR writes go straight to an output buffer that the vCPU's owner
 * drains (vm_serial_take), so LSR always reports THRE and TEMT. Input
 * queued with vm_serial_input waits in a backlog (VM_SERIAL_RX_MAX bytes)
 * that plays the remote sender: the receiver FIFO (16 bytes with FCR bit 0,
 * else 1) is its head, refilled as the guest reads RBR. Clearing the
 * receiver FIFO drops only what is in it, as on QEMU's UART.
 *
 * Interrupts: with vm_serial_set_irq the UART drives an interrupt line,
 * the 16550's INTR output gated by MCR.OUT2 as on a PC (and off in
 * loopback). The callback is told every change of the level, including the
 * brief drop a THR write makes while THRE is pending (an edge-triggered
 * IOAPIC pin sees a new edge for every byte, as with a real UART). Without
 * a callback (the bare board) nothing is signalled.
 *
 * Threads: every function may be called from any thread; one mutex inside
 * serializes them. The IRQ callback runs with that mutex held, so levels
 * arrive in order; it must not call back into the UART.
 * vm_serial_thr_coalescable and tx_unread are lock-free reads. */
#ifndef VM_SERIAL_H
#define VM_SERIAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VM_SERIAL_BASE 0x3f8u
#define VM_SERIAL_IRQ 4u /* COM1's ISA interrupt */
/* The run loop hands output over once VM_SERIAL_TX_HIGH bytes wait; the
 * room above it takes what one exit can add (a drained coalesced ring, one
 * string instruction's page) so nothing is ever dropped. */
#define VM_SERIAL_TX_HIGH 8192u
#define VM_SERIAL_TX_MAX 16384u
#define VM_SERIAL_RX_MAX 4096u
#define VM_SERIAL_FIFO 16u

typedef void (*vm_serial_irq_fn)(void *ctx, bool level);
typedef void (*vm_serial_ier_fn)(void *ctx);

struct vm_bus;

/* The fields are the model's state; only tx_len (read by the vCPU's owner
 * between exits), tx_unread and tx_total are meant to be read outside. */
struct vm_serial {
    pthread_mutex_t lock;
    uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
    uint8_t lsr_err; /* overrun, kept until LSR is read */
    uint8_t msr_delta;
    bool thre_pending; /* THRE interrupt: set when THR empties, cleared by IIR/THR */
    bool irq_level;
    vm_serial_irq_fn irq_fn;
    void *irq_ctx;
    vm_serial_ier_fn ier_fn; /* vm_serial_attach's */
    void *ier_ctx;
    atomic_bool coalescable;
    uint8_t tx[VM_SERIAL_TX_MAX];
    size_t tx_len;
    atomic_size_t tx_unread; /* tx_len, readable from other threads */
    uint64_t tx_total;
    uint8_t rx[VM_SERIAL_RX_MAX]; /* backlog; its head is the receiver FIFO */
    size_t rx_head, rx_count;
    uint8_t loop[VM_SERIAL_FIFO]; /* the receiver in loopback mode */
    size_t loop_count;
};

void vm_serial_init(struct vm_serial *s);
void vm_serial_destroy(struct vm_serial *s);
/* Back to power-on register values, dropping queued input and output. The
 * IRQ callback stays; the line drops if it was up. */
void vm_serial_reset(struct vm_serial *s);

/* Connects the interrupt output (NULL to disconnect). The callback is
 * called at once with the current level. */
void vm_serial_set_irq(struct vm_serial *s, vm_serial_irq_fn fn, void *ctx);

/* offset is port - VM_SERIAL_BASE (0..7). */
void vm_serial_out(struct vm_serial *s, unsigned offset, uint8_t value);
uint8_t vm_serial_in(struct vm_serial *s, unsigned offset);

/* True while THR writes need no exit each: no THRE interrupt is wanted
 * (no IRQ callback, or IER.THRI clear), so writes may pass through KVM's
 * coalesced PIO ring and be replayed later with vm_serial_out. Changes only
 * on IER writes, vm_serial_set_irq and reset: check it after those. */
bool vm_serial_thr_coalescable(const struct vm_serial *s);

/* Puts the UART on the port bus at VM_SERIAL_BASE as an 8-bit ISA device,
 * and its state into snapshots (as "uart"). Writes to the first
 * coalesce_len ports may be batched by KVM (vm/bus.h). ier_written, if not
 * NULL, is called after each write to IER, outside the UART's lock: what
 * vm_serial_thr_coalescable() says may have changed. */
int vm_serial_attach(struct vm_serial *s, struct vm_bus *bus, uint64_t coalesce_len,
                     vm_serial_ier_fn ier_written, void *ctx);

/* Moves up to max bytes of guest output to out; returns the count. */
size_t vm_serial_take(struct vm_serial *s, uint8_t *out, size_t max);
/* True while output waits to be taken. */
bool vm_serial_tx_pending(const struct vm_serial *s);
/* True once VM_SERIAL_TX_HIGH bytes wait. */
bool vm_serial_tx_full(const struct vm_serial *s);

/* Queues input for the guest to read; returns bytes queued (may be short).
 * Raises the receive interrupt if the guest enabled it. */
size_t vm_serial_input(struct vm_serial *s, const void *data, size_t n);

/* The model's state for snapshots (vm/bus.h's vm_bus_state): registers,
 * queued input and the loopback receiver; output is not part of it (its
 * owner has taken it at every stop). load checks the bytes first and
 * changes nothing unless they are whole and consistent. */
int vm_serial_save(void *s, uint8_t **buf, size_t *len);
int vm_serial_load(void *s, const uint8_t *buf, size_t len, bool apply);

#endif
