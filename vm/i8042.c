/* The 8042 controller model. Status and configuration bits are those
 * Linux's drivers/input/serio/i8042.h names; the command set is the
 * IBM PC/AT controller's. */
#include "i8042.h"

#include <string.h>

#define STR_OBF 0x01
#define STR_IBF 0x02
#define STR_SYS 0x04 /* self test passed */
#define STR_CMD 0x08 /* last write was to port 0x64 */
#define STR_UNLOCKED 0x10
#define STR_AUXDATA 0x20
#define STR_TIMEOUT 0x40

#define CTR_KBDINT 0x01
#define CTR_AUXINT 0x02
#define CTR_SYS 0x04
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE 0x40

#define OUTP_RESET 0x01 /* the CPU reset line, active low */
#define OUTP_A20 0x02

enum {
    CMD_READ_CTR = 0x20,
    CMD_WRITE_CTR = 0x60,
    CMD_AUX_DISABLE = 0xa7,
    CMD_AUX_ENABLE = 0xa8,
    CMD_AUX_TEST = 0xa9,
    CMD_SELF_TEST = 0xaa,
    CMD_KBD_TEST = 0xab,
    CMD_KBD_DISABLE = 0xad,
    CMD_KBD_ENABLE = 0xae,
    CMD_READ_OUTP = 0xd0,
    CMD_WRITE_OUTP = 0xd1,
    CMD_WRITE_KBD_OBUF = 0xd2,
    CMD_WRITE_AUX_OBUF = 0xd3, /* Linux's AUX loopback */
    CMD_WRITE_AUX = 0xd4,
    CMD_PULSE_FIRST = 0xf0,
};

/* What a BIOS leaves: keyboard interrupt on, translation on, POST passed,
 * no mouse in use. */
#define CTR_POWER_ON (CTR_KBDINT | CTR_SYS | CTR_AUXDIS | CTR_XLATE)
#define AUX_TEST_CLOCK_STUCK 0x01

static void set_line(struct vm_i8042 *k, unsigned irq, bool *cur, bool level)
{
    if (level == *cur)
        return;
    *cur = level;
    if (k->irq_fn)
        k->irq_fn(k->irq_ctx, irq, level);
}

static void update_irq(struct vm_i8042 *k)
{
    bool kbd = false, aux = false;
    if (k->q_len) {
        bool is_aux = k->q[k->q_head].aux;
        kbd = !is_aux && (k->ctr & CTR_KBDINT);
        aux = is_aux && (k->ctr & CTR_AUXINT);
    }
    set_line(k, VM_I8042_KBD_IRQ, &k->kbd_level, kbd);
    set_line(k, VM_I8042_AUX_IRQ, &k->aux_level, aux);
}

/* The status register's data bits describe the byte at the head. */
static void update_status(struct vm_i8042 *k)
{
    k->status &= (uint8_t)~(STR_OBF | STR_AUXDATA | STR_TIMEOUT);
    if (k->q_len) {
        k->status |= STR_OBF;
        if (k->q[k->q_head].aux)
            k->status |= STR_AUXDATA;
        if (k->q[k->q_head].timeout)
            k->status |= STR_TIMEOUT;
    }
}

static void push(struct vm_i8042 *k, uint8_t byte, bool aux, bool timeout)
{
    if (k->q_len == VM_I8042_QUEUE)
        return; /* a real controller holds one byte; sixteen never fill up here */
    unsigned at = (k->q_head + k->q_len++) % VM_I8042_QUEUE;
    k->q[at].byte = byte;
    k->q[at].aux = aux;
    k->q[at].timeout = timeout;
}

static void flush(struct vm_i8042 *k)
{
    k->q_head = k->q_len = 0;
}

static void request_reset(struct vm_i8042 *k)
{
    k->resets++;
    if (k->reset_fn)
        k->reset_fn(k->reset_ctx);
}

void vm_i8042_init(struct vm_i8042 *k)
{
    memset(k, 0, sizeof(*k));
    pthread_mutex_init(&k->lock, NULL);
    vm_i8042_reset(k);
}

void vm_i8042_destroy(struct vm_i8042 *k)
{
    pthread_mutex_destroy(&k->lock);
}

void vm_i8042_reset(struct vm_i8042 *k)
{
    pthread_mutex_lock(&k->lock);
    k->status = STR_SYS | STR_UNLOCKED;
    k->ctr = CTR_POWER_ON;
    k->outp = OUTP_RESET | OUTP_A20;
    k->pending_cmd = 0;
    flush(k);
    update_status(k);
    update_irq(k);
    pthread_mutex_unlock(&k->lock);
}

void vm_i8042_set_reset(struct vm_i8042 *k, vm_i8042_reset_fn fn, void *ctx)
{
    pthread_mutex_lock(&k->lock);
    k->reset_fn = fn;
    k->reset_ctx = ctx;
    pthread_mutex_unlock(&k->lock);
}

void vm_i8042_set_irq(struct vm_i8042 *k, vm_i8042_irq_fn fn, void *ctx)
{
    pthread_mutex_lock(&k->lock);
    k->irq_fn = fn;
    k->irq_ctx = ctx;
    if (fn) {
        fn(ctx, VM_I8042_KBD_IRQ, k->kbd_level);
        fn(ctx, VM_I8042_AUX_IRQ, k->aux_level);
    }
    pthread_mutex_unlock(&k->lock);
}

static void command(struct vm_i8042 *k, uint8_t cmd)
{
    switch (cmd) {
    case CMD_READ_CTR:
        flush(k);
        push(k, k->ctr, false, false);
        break;
    case CMD_WRITE_CTR:
    case CMD_WRITE_OUTP:
    case CMD_WRITE_KBD_OBUF:
    case CMD_WRITE_AUX_OBUF:
    case CMD_WRITE_AUX:
        k->pending_cmd = cmd;
        break;
    case CMD_AUX_DISABLE:
        k->ctr |= CTR_AUXDIS;
        break;
    case CMD_AUX_ENABLE:
        k->ctr &= (uint8_t)~CTR_AUXDIS;
        break;
    case CMD_AUX_TEST:
        flush(k);
        push(k, AUX_TEST_CLOCK_STUCK, false, false);
        break;
    case CMD_SELF_TEST:
        flush(k);
        push(k, 0x55, false, false);
        k->status |= STR_SYS;
        break;
    case CMD_KBD_TEST:
        flush(k);
        push(k, 0x00, false, false);
        break;
    case CMD_KBD_DISABLE:
        k->ctr |= CTR_KBDDIS;
        break;
    case CMD_KBD_ENABLE:
        k->ctr &= (uint8_t)~CTR_KBDDIS;
        break;
    case CMD_READ_OUTP:
        flush(k);
        push(k, k->outp, false, false);
        break;
    default:
        /* 0xf0-0xff pulse output port lines low for a moment; line 0 is
         * the CPU reset (0xfe is what reboot=k sends). */
        if (cmd >= CMD_PULSE_FIRST && !(cmd & OUTP_RESET))
            request_reset(k);
        break; /* anything else is ignored, as unknown commands are */
    }
}

static void data(struct vm_i8042 *k, uint8_t v)
{
    uint8_t cmd = k->pending_cmd;
    k->pending_cmd = 0;
    switch (cmd) {
    case CMD_WRITE_CTR:
        k->ctr = v;
        return;
    case CMD_WRITE_OUTP:
        k->outp = v;
        if (!(v & OUTP_RESET))
            request_reset(k);
        return;
    case CMD_WRITE_KBD_OBUF:
        push(k, v, false, false);
        return;
    case CMD_WRITE_AUX_OBUF:
        /* Linux's AUX loopback: no AUX port here, so the byte does not
         * come back as sent and the driver gives the port up at once. */
        push(k, (uint8_t)~v, true, false);
        return;
    case CMD_WRITE_AUX:
        push(k, 0xfe, true, true); /* no device answered */
        return;
    default:
        break;
    }
    /* A byte for the keyboard itself. */
    flush(k);
    push(k, 0xfa, false, false);
    if (v == 0xff)
        push(k, 0xaa, false, false); /* reset: self test passed */
    else if (v == 0xf2) {
        push(k, 0xab, false, false); /* identify: an MF2 keyboard */
        push(k, 0x83, false, false);
    }
}

void vm_i8042_out(struct vm_i8042 *k, uint16_t port, uint8_t value)
{
    pthread_mutex_lock(&k->lock);
    if (port == VM_I8042_CMD) {
        k->status |= STR_CMD;
        command(k, value);
    } else if (port == VM_I8042_DATA) {
        k->status &= (uint8_t)~STR_CMD;
        data(k, value);
    }
    update_status(k);
    update_irq(k);
    pthread_mutex_unlock(&k->lock);
}

uint8_t vm_i8042_in(struct vm_i8042 *k, uint16_t port)
{
    uint8_t v = 0xff;
    pthread_mutex_lock(&k->lock);
    if (port == VM_I8042_CMD) {
        v = k->status;
    } else if (port == VM_I8042_DATA) {
        v = 0;
        if (k->q_len) {
            v = k->q[k->q_head].byte;
            k->q_head = (k->q_head + 1) % VM_I8042_QUEUE;
            k->q_len--;
        }
        /* A real controller holds one byte: reading it drops the line and
         * the next byte raises it again, a new edge for the PIC. */
        set_line(k, VM_I8042_KBD_IRQ, &k->kbd_level, false);
        set_line(k, VM_I8042_AUX_IRQ, &k->aux_level, false);
        update_status(k);
        update_irq(k);
    }
    pthread_mutex_unlock(&k->lock);
    return v;
}
