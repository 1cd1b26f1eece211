/* The CMOS RTC as Linux's x86 RTC code reads it (no KVM needed). */
#include "testmain.h"
#include "vm/cmos.h"

#include <CUnit/CUnit.h>

static time_t fixed_clock(void)
{
    return 1795701605; /* 2026-11-26 14:00:05 UTC, a Thursday */
}

static uint8_t rd(struct vm_cmos *c, uint8_t reg)
{
    vm_cmos_out(c, 0x70, reg);
    return vm_cmos_in(c, 0x71);
}

static void test_linux_reads_a_valid_bcd_time(void)
{
    struct vm_cmos c;
    vm_cmos_init(&c, fixed_clock);
    /* mc146818_get_time: register D valid, no update in progress. */
    CU_ASSERT_EQUAL(rd(&c, 0x0d) & 0x40, 0);
    CU_ASSERT(rd(&c, 0x0d) & 0x80);
    CU_ASSERT_EQUAL(rd(&c, 0x0a) & 0x80, 0);
    CU_ASSERT_EQUAL(rd(&c, 0x0b) & 0x06, 0x02); /* BCD, 24 hour */
    CU_ASSERT_EQUAL(rd(&c, 0x00), 0x05);
    CU_ASSERT_EQUAL(rd(&c, 0x02), 0x00);
    CU_ASSERT_EQUAL(rd(&c, 0x04), 0x14);
    CU_ASSERT_EQUAL(rd(&c, 0x06), 0x05);
    CU_ASSERT_EQUAL(rd(&c, 0x07), 0x26);
    CU_ASSERT_EQUAL(rd(&c, 0x08), 0x11);
    CU_ASSERT_EQUAL(rd(&c, 0x09), 0x26);
    CU_ASSERT_EQUAL(rd(&c, 0x32), 0x20);
    /* NMI-disable bit in the index does not change the register. */
    CU_ASSERT_EQUAL(rd(&c, 0x80 | 0x09), 0x26);
    vm_cmos_destroy(&c);
}

static void test_binary_and_12_hour_modes(void)
{
    struct vm_cmos c;
    vm_cmos_init(&c, fixed_clock);
    vm_cmos_out(&c, 0x70, 0x0b);
    vm_cmos_out(&c, 0x71, 0x04); /* binary, 12 hour */
    CU_ASSERT_EQUAL(rd(&c, 0x04), 0x80 | 2); /* 2 PM */
    CU_ASSERT_EQUAL(rd(&c, 0x07), 26);
    CU_ASSERT_EQUAL(rd(&c, 0x09), 26);
    vm_cmos_destroy(&c);
}

static void test_ram_and_read_only_registers(void)
{
    struct vm_cmos c;
    vm_cmos_init(&c, NULL);
    vm_cmos_out(&c, 0x70, 0x40);
    vm_cmos_out(&c, 0x71, 0xa5);
    CU_ASSERT_EQUAL(rd(&c, 0x40), 0xa5);
    vm_cmos_out(&c, 0x70, 0x0d);
    vm_cmos_out(&c, 0x71, 0x00);
    CU_ASSERT(rd(&c, 0x0d) & 0x80);
    CU_ASSERT_EQUAL(rd(&c, 0x0c), 0);
    CU_ASSERT_EQUAL(vm_cmos_in(&c, 0x70), 0xff);
    CU_ASSERT_EQUAL(vm_cmos_in(&c, 0x72), 0xff);
    unsigned sec = rd(&c, 0x00); /* the host clock: a BCD second */
    CU_ASSERT((sec & 0x0f) <= 9 && (sec >> 4) <= 5);
    vm_cmos_destroy(&c);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("vm_cmos", NULL, NULL);
    CU_add_test(s, "Linux reads a valid BCD time, never an update in progress",
                test_linux_reads_a_valid_bcd_time);
    CU_add_test(s, "binary and 12-hour modes", test_binary_and_12_hour_modes);
    CU_add_test(s, "CMOS RAM and read-only status registers", test_ram_and_read_only_registers);
}

int main(void)
{
    return test_main("test_vm_cmos", register_suites, false);
}
