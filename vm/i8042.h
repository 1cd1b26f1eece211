/* vm/i8042.h: the PC keyboard controller (ports 0x60 and 0x64), as much as
 * a Linux guest needs: reboot=k resets through it (command 0xfe, or an
 * output-port write with the reset line low), and its i8042 driver probes
 * it quickly and quietly with the usual options (i8042.noaux,
 * i8042.nomux, i8042.dumbkbd, i8042.nopnp, i8042.direct) and without them.
 *
 * Controller commands: read/write the configuration byte (0x20/0x60),
 * self test (0xaa -> 0x55), keyboard interface test (0xab -> 0x00),
 * enable/disable the keyboard and AUX interfaces (0xae/0xad, 0xa8/0xa7),
 * read/write the output port (0xd0/0xd1), write the keyboard or AUX
 * output buffer (0xd2/0xd3), pulse output lines (0xf0-0xff; bit 0 clear
 * pulses reset). There is no AUX device: the AUX loopback answers with a
 * byte that is not the one sent and the AUX interface test reports a
 * stuck clock, so Linux finds no mouse port at once instead of waiting
 * for timeouts; bytes for the AUX device (0xd4) get 0xfe with the timeout
 * bit. A keyboard is present: bytes written to port 0x60 are acknowledged
 * (0xfa; 0xff reset adds 0xaa, 0xf2 identify adds 0xab 0x83).
 *
 * IRQ 1 (keyboard) is output-buffer-full with keyboard data and the
 * configuration byte's interrupt bit; IRQ 12 the same for AUX data. Both
 * are reported through one optional callback, with the line number.
 * Port 0x61 is not here: KVM's PIT emulates it (KVM_PIT_SPEAKER_DUMMY).
 *
 * Threads: one mutex inside; callbacks run with it held and must not call
 * back into the controller. */
#ifndef VM_I8042_H
#define VM_I8042_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define VM_I8042_DATA 0x60u
#define VM_I8042_CMD 0x64u /* status on reads */
#define VM_I8042_KBD_IRQ 1u
#define VM_I8042_AUX_IRQ 12u
#define VM_I8042_QUEUE 16u

typedef void (*vm_i8042_reset_fn)(void *ctx);
typedef void (*vm_i8042_irq_fn)(void *ctx, unsigned irq, bool level);

struct vm_i8042 {
    pthread_mutex_t lock;
    uint8_t status, ctr, outp;
    uint8_t pending_cmd; /* a command waiting for its data byte, or 0 */
    struct {
        uint8_t byte;
        bool aux;
        bool timeout;
    } q[VM_I8042_QUEUE];
    unsigned q_head, q_len;
    bool kbd_level, aux_level;
    vm_i8042_reset_fn reset_fn;
    void *reset_ctx;
    vm_i8042_irq_fn irq_fn;
    void *irq_ctx;
    uint64_t resets; /* reset requests seen */
};

void vm_i8042_init(struct vm_i8042 *k);
void vm_i8042_destroy(struct vm_i8042 *k);
/* Power-on state; callbacks stay, lines drop. */
void vm_i8042_reset(struct vm_i8042 *k);

/* The guest asked for a CPU reset: the board ends or restarts the guest. */
void vm_i8042_set_reset(struct vm_i8042 *k, vm_i8042_reset_fn fn, void *ctx);
void vm_i8042_set_irq(struct vm_i8042 *k, vm_i8042_irq_fn fn, void *ctx);

/* port is 0x60 or 0x64; other ports are ignored (reads give 0xff). */
void vm_i8042_out(struct vm_i8042 *k, uint16_t port, uint8_t value);
uint8_t vm_i8042_in(struct vm_i8042 *k, uint16_t port);

#endif
