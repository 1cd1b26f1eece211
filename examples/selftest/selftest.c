/* selftest: a guest that tests itself and reports the verdict as its exit
 * status, the pattern for running guest code in a CI pipeline.
 *
 * Each check prints a TAP-style line ("ok 1 - ...", "not ok 2 - ...") on the
 * serial port; main returns the number of failed checks, and start.S writes
 * it to the debug-exit port, so 0 means every check passed. Two ways to get
 * a pass/fail status out of it:
 *
 *   kvmstub --run --serial - build/examples/selftest.elf; echo $?
 *   gdb -batch -ex 'target remote | build/kvmstub --stdio build/examples/selftest.elf' \
 *       -x examples/selftest.gdb build/examples/selftest.elf; echo $?
 *
 * examples/selftest-fail.gdb changes a test input from gdb to show a
 * failing run. */
#include "uart.h"

#include <stddef.h>
#include <stdint.h>

/* The input of the CRC check. Not const, so a debugger can corrupt it
 * (selftest-fail.gdb does) to show what a failing check looks like. */
char crc_input[] = "123456789";

static unsigned int checks, failures;

/* Records one check: prints "ok N - what", or "not ok N - what" with the
 * value found and the one expected. */
static void check(const char *what, uint64_t got, uint64_t expected)
{
    checks++;
    if (got != expected) {
        failures++;
        uart_puts("not ok ");
    } else {
        uart_puts("ok ");
    }
    uart_put_dec(checks);
    uart_puts(" - ");
    uart_puts(what);
    if (got != expected) {
        uart_puts(": got 0x");
        uart_put_hex(got, 8);
        uart_puts(", expected 0x");
        uart_put_hex(expected, 8);
    }
    uart_putc('\n');
}

/* Euclid's algorithm. */
static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* CRC-32 as zlib and PNG compute it (reflected polynomial 0xEDB88320), a
 * bit at a time. Its check value, for "123456789", is 0xCBF43926. */
static uint32_t crc32(const char *data, size_t len)
{
    uint32_t crc = 0xffffffff;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint8_t)data[i];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0xedb88320 & -(crc & 1));
    }
    return ~crc;
}

/* The integer square root, by Newton's method. */
static uint64_t isqrt(uint64_t n)
{
    if (n < 2)
        return n;
    uint64_t x = n, y = (x + 1) / 2;
    while (y < x) {
        x = y;
        y = (x + n / x) / 2;
    }
    return x;
}

/* Counts the bits set, clearing the lowest one each round. */
static unsigned int popcount(uint64_t v)
{
    unsigned int n = 0;
    for (; v; v &= v - 1)
        n++;
    return n;
}

static size_t length(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int main(void)
{
    uart_init();
    uart_puts("selftest: running 5 checks\n");
    check("gcd(1071, 462) == 21", gcd(1071, 462), 21);
    check("crc32(\"123456789\") == 0xcbf43926", crc32(crc_input, length(crc_input)),
          0xcbf43926);
    check("isqrt(1000000) == 1000", isqrt(1000000), 1000);
    check("isqrt(999999) == 999", isqrt(999999), 999);
    check("popcount(0xdeadbeef) == 24", popcount(0xdeadbeef), 24);
    if (failures) {
        uart_puts("selftest: ");
        uart_put_dec(failures);
        uart_puts(" of ");
        uart_put_dec(checks);
        uart_puts(" checks FAILED\n");
    } else {
        uart_puts("selftest: all checks passed\n");
    }
    return (int)failures; /* start.S sends it to the debug-exit port */
}
