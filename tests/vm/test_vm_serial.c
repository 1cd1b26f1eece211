/* The 16550 UART model, register by register (no KVM needed). */
#include "testmain.h"
#include "vm/serial.h"

#include <CUnit/CUnit.h>
#include <string.h>

enum { THR = 0, IER = 1, IIR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

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

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("vm_serial", NULL, NULL);
    CU_add_test(s, "transmit and LSR", test_transmit_and_lsr);
    CU_add_test(s, "divisor latch and registers hold values", test_divisor_latch_and_registers_hold);
    CU_add_test(s, "receive queue", test_receive_queue);
    CU_add_test(s, "loopback", test_loopback);
    CU_add_test(s, "output high-water mark", test_output_high_water);
}

int main(void)
{
    return test_main("test_vm_serial", register_suites, false);
}
