/* The keyboard controller, driven through the sequences of Linux's i8042
 * driver (drivers/input/serio/i8042.c), atkbd and reboot=k (no KVM). */
#include "testmain.h"
#include "vm/i8042.h"

#include <CUnit/CUnit.h>

#define STR_OBF 0x01
#define STR_IBF 0x02
#define STR_AUXDATA 0x20
#define STR_KEYLOCK 0x10

struct board {
    unsigned resets;
    bool level[16];
    unsigned rises[16];
};

static void on_reset(void *ctx)
{
    ((struct board *)ctx)->resets++;
}

static void on_irq(void *ctx, unsigned irq, bool level)
{
    struct board *b = ctx;
    if (level && !b->level[irq])
        b->rises[irq]++;
    b->level[irq] = level;
}

static uint8_t status(struct vm_i8042 *k) { return vm_i8042_in(k, 0x64); }

/* i8042_wait_read/write poll up to 10000 times with 50 us delays: a
 * controller that never answers costs half a second each time. */
static int wait_read(struct vm_i8042 *k)
{
    for (int i = 0; i < 10000; i++)
        if (status(k) & STR_OBF)
            return 0;
    return -1;
}

static int wait_write(struct vm_i8042 *k)
{
    for (int i = 0; i < 10000; i++)
        if (!(status(k) & STR_IBF))
            return 0;
    return -1;
}

/* __i8042_command: command byte, parameters, results. */
static int command(struct vm_i8042 *k, uint8_t *param, unsigned cmd)
{
    if (wait_write(k))
        return -1;
    vm_i8042_out(k, 0x64, (uint8_t)cmd);
    for (unsigned i = 0; i < ((cmd >> 12) & 0xf); i++) {
        if (wait_write(k))
            return -1;
        vm_i8042_out(k, 0x60, param[i]);
    }
    for (unsigned i = 0; i < ((cmd >> 8) & 0xf); i++) {
        if (wait_read(k))
            return -1;
        if (cmd == 0x11d3 && !(status(k) & STR_AUXDATA))
            return -1;
        param[i] = vm_i8042_in(k, 0x60);
    }
    return 0;
}

static int flush(struct vm_i8042 *k)
{
    int i = 0;
    while ((status(k) & STR_OBF) && i < 16) {
        vm_i8042_in(k, 0x60);
        i++;
    }
    return i;
}

static void test_linux_probe_without_options(void)
{
    struct vm_i8042 k;
    struct board b = {0};
    vm_i8042_init(&k);
    vm_i8042_set_irq(&k, on_irq, &b);
    /* i8042_controller_check: a buffer that never empties means "no controller". */
    CU_ASSERT_EQUAL(flush(&k), 0);
    /* i8042_controller_selftest */
    uint8_t param = 0;
    CU_ASSERT_EQUAL(command(&k, &param, 0x01aa), 0);
    CU_ASSERT_EQUAL(param, 0x55);
    /* i8042_controller_init: two equal CTR reads, no keylock warning, write back. */
    uint8_t ctr[2];
    CU_ASSERT_EQUAL(command(&k, &ctr[0], 0x0120), 0);
    CU_ASSERT_EQUAL(command(&k, &ctr[1], 0x0120), 0);
    CU_ASSERT_EQUAL(ctr[0], ctr[1]);
    CU_ASSERT(status(&k) & STR_KEYLOCK);
    uint8_t newctr = (uint8_t)((ctr[0] | 0x10) & ~0x01);
    CU_ASSERT_EQUAL(command(&k, &newctr, 0x1060), 0);
    CU_ASSERT_EQUAL(command(&k, &param, 0x0120), 0);
    CU_ASSERT_EQUAL(param, newctr);
    /* i8042_check_aux: the loopback fails, the AUX test reports an error,
     * so there is no AUX port; nothing is left in the buffer. */
    param = 0x5a;
    int r = command(&k, &param, 0x11d3);
    CU_ASSERT(r != 0 || param != 0x5a);
    CU_ASSERT_EQUAL(command(&k, &param, 0x01a9), 0);
    CU_ASSERT(param != 0 && param != 0xfa && param != 0xff);
    CU_ASSERT_EQUAL(status(&k) & STR_OBF, 0);
    /* i8042_set_mux_mode: the first loopback byte does not come back. */
    param = 0xf0;
    r = command(&k, &param, 0x11d3);
    CU_ASSERT(r != 0 || param != 0xf0);
    CU_ASSERT_EQUAL(flush(&k), 0);
    /* i8042_enable_kbd_port */
    newctr = (uint8_t)((newctr & ~0x10) | 0x01);
    CU_ASSERT_EQUAL(command(&k, &newctr, 0x1060), 0);
    CU_ASSERT_FALSE(b.level[1]);
    CU_ASSERT_EQUAL(b.rises[12], 0); /* no AUX interrupt with AUXINT off */
    vm_i8042_destroy(&k);
}

static void test_atkbd_probe_gets_answers_by_interrupt(void)
{
    struct vm_i8042 k;
    struct board b = {0};
    vm_i8042_init(&k);
    vm_i8042_set_irq(&k, on_irq, &b);
    /* ATKBD_CMD_GETID through i8042_kbd_write; the answer comes by IRQ 1. */
    CU_ASSERT_EQUAL(wait_write(&k), 0);
    vm_i8042_out(&k, 0x60, 0xf2);
    uint8_t got[3];
    for (int i = 0; i < 3; i++) {
        CU_ASSERT(b.level[1]);
        CU_ASSERT_EQUAL(status(&k) & (STR_OBF | STR_AUXDATA), STR_OBF);
        got[i] = vm_i8042_in(&k, 0x60);
    }
    CU_ASSERT_FALSE(b.level[1]);
    CU_ASSERT_EQUAL(b.rises[1], 3); /* one edge per byte */
    CU_ASSERT_EQUAL(got[0], 0xfa);
    CU_ASSERT_EQUAL(got[1], 0xab);
    CU_ASSERT_EQUAL(got[2], 0x83);
    vm_i8042_out(&k, 0x60, 0xed); /* set LEDs: ack only */
    CU_ASSERT_EQUAL(vm_i8042_in(&k, 0x60), 0xfa);
    CU_ASSERT_EQUAL(status(&k) & STR_OBF, 0);
    /* With the interrupt bit off in CTR the line stays low. */
    uint8_t ctr = 0x44;
    CU_ASSERT_EQUAL(command(&k, &ctr, 0x1060), 0);
    vm_i8042_out(&k, 0x60, 0xff);
    CU_ASSERT_FALSE(b.level[1]);
    CU_ASSERT_EQUAL(vm_i8042_in(&k, 0x60), 0xfa);
    CU_ASSERT_EQUAL(vm_i8042_in(&k, 0x60), 0xaa);
    vm_i8042_destroy(&k);
}

static void test_reboot_k_resets(void)
{
    struct vm_i8042 k;
    struct board b = {0};
    vm_i8042_init(&k);
    vm_i8042_set_reset(&k, on_reset, &b);
    /* native_machine_emergency_restart, BOOT_KBD: kb_wait(), then 0xfe. */
    CU_ASSERT_EQUAL(wait_write(&k), 0);
    vm_i8042_out(&k, 0x64, 0xfe);
    CU_ASSERT_EQUAL(b.resets, 1);
    /* The output port's reset line, written low, resets too. */
    vm_i8042_out(&k, 0x64, 0xd1);
    vm_i8042_out(&k, 0x60, 0x02);
    CU_ASSERT_EQUAL(b.resets, 2);
    /* ...written high does not; nor does pulsing only other lines. */
    vm_i8042_out(&k, 0x64, 0xd1);
    vm_i8042_out(&k, 0x60, 0x03);
    vm_i8042_out(&k, 0x64, 0xff);
    vm_i8042_out(&k, 0x64, 0xfd);
    CU_ASSERT_EQUAL(b.resets, 2);
    uint8_t outp = 0;
    CU_ASSERT_EQUAL(command(&k, &outp, 0x01d0), 0);
    CU_ASSERT_EQUAL(outp, 0x03);
    vm_i8042_destroy(&k);
}

static void test_reset_without_callback_and_other_ports(void)
{
    struct vm_i8042 k;
    vm_i8042_init(&k);
    vm_i8042_out(&k, 0x64, 0xfe); /* nobody listening: counted, no crash */
    CU_ASSERT_EQUAL(k.resets, 1);
    CU_ASSERT_EQUAL(vm_i8042_in(&k, 0x61), 0xff);
    vm_i8042_out(&k, 0x61, 0x03);
    /* Unknown commands are ignored and do not wedge the controller. */
    vm_i8042_out(&k, 0x64, 0x12);
    uint8_t param;
    CU_ASSERT_EQUAL(command(&k, &param, 0x01aa), 0);
    CU_ASSERT_EQUAL(param, 0x55);
    /* Reading an empty buffer gives 0 and leaves OBF clear. */
    CU_ASSERT_EQUAL(vm_i8042_in(&k, 0x60), 0);
    CU_ASSERT_EQUAL(status(&k) & STR_OBF, 0);
    vm_i8042_reset(&k);
    CU_ASSERT_EQUAL(status(&k) & (STR_OBF | STR_IBF), 0);
    vm_i8042_destroy(&k);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("vm_i8042", NULL, NULL);
    CU_add_test(s, "Linux's probe: self test, CTR, no AUX, no MUX, no waiting",
                test_linux_probe_without_options);
    CU_add_test(s, "atkbd's identify answered byte by byte on IRQ 1",
                test_atkbd_probe_gets_answers_by_interrupt);
    CU_add_test(s, "reboot=k (0xfe) and the output port reset line", test_reboot_k_resets);
    CU_add_test(s, "no reset callback, other ports, unknown commands",
                test_reset_without_callback_and_other_ports);
}

int main(void)
{
    return test_main("test_vm_i8042", register_suites, false);
}
