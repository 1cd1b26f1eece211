/* Every example runs under its own gdb script, as examples/README.md shows,
 * and prints what the README says it prints. */
#include "e2e.h"
#include "testmain.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* gdb -batch -ex 'target remote | kvmstub --stdio ARGS IMAGE' -x SCRIPT ELF */
static void run(struct e2e_out *o, const char *args, const char *image, const char *script,
                const char *elf)
{
    char target[1024], x[1024];
    snprintf(target, sizeof(target), "target remote | %s --stdio %s %s", KVMSTUB_BIN, args, image);
    snprintf(x, sizeof(x), "source %s", script);
    const char *argv[] = {"gdb", "-nx", "-batch", "-ex", target, "-ex", x, elf, NULL};
    e2e_run(o, argv, E2E_TIMEOUT_S);
}

#define EX(name) EXAMPLES_BIN "/" name
#define SCRIPT(name) EXAMPLES_SRC "/" name ".gdb"

static void test_demo(void)
{
    struct e2e_out o;
    run(&o, "--reg rax=2 --reg rbx=2", EX("demo.bin"), SCRIPT("demo"), EX("demo.elf"));
    E2E_HAS(o.text, "cs:ip = 0000:1000, al = 2, bl = 2");
    E2E_HAS(o.text, "=> 0x1000 <_start>:\tmov    $0x3f8,%dx");
    E2E_HAS(o.text, "--- continue: the guest prints the sum and halts\n4\n");
    E2E_HAS(o.text, "Program received signal SIGTRAP, Trace/breakpoint trap.\n0x0000100c in ?? ()");
    E2E_HAS(o.text, "ip = 0x100c, dx = 0x3f8, al = 0xa");
    E2E_HAS(o.text, "[Inferior 1 (Remote target) killed]");
    e2e_out_free(&o);
}

static void test_bootsector(void)
{
    struct e2e_out o;
    run(&o, "--load 0x7c00", EX("bootsector.bin"), SCRIPT("bootsector"), EX("bootsector.elf"));
    E2E_HAS(o.text, "cs = 0, ip = 0x7c00");
    E2E_HAS(o.text, "Hello from the boot sector!");
    E2E_HAS(o.text, "Breakpoint 1, count_loop () at bootsector.S:36");
    E2E_HAS(o.text, "count 0001\n");
    E2E_HAS(o.text, "count 0002\n");
    E2E_HAS(o.text, "count 1000\n"); /* after gdb changed the counter */
    E2E_HAS(o.text, "count = 0x1000");
    e2e_out_free(&o);
}

static void test_protected(void)
{
    struct e2e_out o;
    run(&o, "", EX("protected.elf"), SCRIPT("protected"), EX("protected.elf"));
    E2E_HAS(o.text, "eip = 0x100000, cs = 0x8, ds = 0x10, cr0 = 0x33");
    E2E_HAS(o.text, "Breakpoint 1, found_prime () at protected.S:34");
    E2E_HAS(o.text, "prime 89, after 23 others");
    E2E_HAS(o.text, "breakpoint already hit 24 times");
    E2E_HAS(o.text, "adler32(\"Wikipedia\") = 0x11e60398");
    E2E_HAS(o.text, "checksum = 0x11e60398, prime_count = 25");
    e2e_out_free(&o);
}

static void test_ckernel_source_level(void)
{
    struct e2e_out o;
    run(&o, "", EX("ckernel.elf"), SCRIPT("ckernel"), EX("ckernel.elf"));
    /* break main, continue, next, step, bt, finish, print, watch */
    E2E_HAS(o.text, "Breakpoint 1, main () at main.c:43\n43\t    unsigned int n = 5;");
    E2E_HAS(o.text, "46\t    uart_init();\n47\t    uart_puts(");
    E2E_HAS(o.text, "ckernel: hello from 64-bit long mode\n");
    E2E_HAS(o.text, "factorial (n=5) at main.c:22");
    E2E_HAS(o.text, "#0  factorial (n=5) at main.c:22\n#1  main () at main.c:49");
    E2E_HAS(o.text, "#4  factorial (n=5) at main.c:24\n#5  main () at main.c:49");
    E2E_HAS(o.text, "Value returned is $1 = 1");
    E2E_HAS(o.text, "5! = 120\n");
    E2E_HAS(o.text, "n = 5\nresult = 120");
    E2E_HAS(o.text, "Hardware watchpoint 4: counter\n\nOld value = 0\nNew value = 1");
    E2E_HAS(o.text, "Old value = 2\nNew value = 3");
    E2E_HAS(o.text, "counter = 100");
    e2e_out_free(&o);
}

static void test_ckernel_watch_counts_every_write(void)
{
    /* The measure: `watch` on the C kernel's global stops at every
     * write, 100 iterations giving exactly 100 stops. */
    char script[] = "/tmp/e2e-ck-XXXXXX";
    int fd = mkstemp(script);
    static const char text[] = "set pagination off\n"
                               "break count_up\n"
                               "continue\n"
                               "delete\n"
                               "watch counter\n"
                               "set $n = 0\n"
                               "while $n < 100\n"
                               "  continue\n"
                               "  set $n = $n + 1\n"
                               "end\n"
                               "delete\n"
                               "print counter\n"
                               "kill\n";
    CU_ASSERT_FATAL(write(fd, text, sizeof(text) - 1) == (ssize_t)sizeof(text) - 1);
    close(fd);
    struct e2e_out o;
    run(&o, "", EX("ckernel.elf"), script, EX("ckernel.elf"));
    unlink(script);
    CU_ASSERT_EQUAL(e2e_count(o.text, "Hardware watchpoint 2: counter\n\nOld value"), 100);
    for (int i = 0; i < 100; i += 33) {
        char want[64];
        snprintf(want, sizeof(want), "Old value = %d\nNew value = %d\n", i, i + 1);
        E2E_HAS(o.text, want);
    }
    E2E_LACKS(o.text, "New value = 101");
    E2E_HAS(o.text, "$1 = 100");
    e2e_out_free(&o);
}

static void test_multiboot(void)
{
    struct e2e_out o;
    run(&o, "--cmdline 'hello from kvmstub'", EX("multiboot.elf"), SCRIPT("multiboot"),
        EX("multiboot.elf"));
    E2E_HAS(o.text, "eax = 0x2badb002");
    E2E_HAS(o.text, "multiboot.elf hello from kvmstub");
    E2E_HAS(o.text, "memory: lower 639 KiB, upper 64448 KiB");
    E2E_HAS(o.text, "arguments = \"hello from kvmstub\", 5 memory map entries");
    e2e_out_free(&o);
}

static void test_selftest_pass_and_fail(void)
{
    struct e2e_out o;
    run(&o, "", EX("selftest.elf"), SCRIPT("selftest"), EX("selftest.elf"));
    E2E_HAS(o.text, "exited normally]");
    E2E_HAS(o.text, "selftest: PASS");
    CU_ASSERT_EQUAL(o.status, 0);
    e2e_out_free(&o);
    run(&o, "", EX("selftest.elf"), EXAMPLES_SRC "/selftest-fail.gdb", EX("selftest.elf"));
    E2E_HAS(o.text, "not ok 2");
    E2E_HAS(o.text, "exited with code 01]");
    E2E_HAS(o.text, "selftest: FAIL, exit code 1");
    CU_ASSERT_EQUAL(o.status, 1); /* the CI pattern: the guest's verdict as gdb's status */
    e2e_out_free(&o);
}

static void test_runner_mode(void)
{
    /* kvmstub --run --serial - --on-hlt exit: a tiny KVM runner whose exit
     * status is the guest's. */
    struct e2e_out o;
    const char *argv[] = {KVMSTUB_BIN, "--run", "--serial", "-", "--on-hlt", "exit", "--port", "0",
                          "--reg", "rax=2", "--reg", "rbx=2", EX("demo.bin"), NULL};
    e2e_run(&o, argv, E2E_TIMEOUT_S);
    E2E_HAS(o.text, "4\n");
    CU_ASSERT_EQUAL(o.status, 0);
    e2e_out_free(&o);
    const char *self[] = {KVMSTUB_BIN, "--run", "--serial", "-", "--port", "0",
                          EX("selftest.elf"), NULL};
    e2e_run(&o, self, E2E_TIMEOUT_S);
    E2E_HAS(o.text, "ok 1");
    CU_ASSERT_EQUAL(o.status, 0);
    e2e_out_free(&o);
    /* The CI recipe of README and examples/README.md. */
    const char *ci[] = {KVMSTUB_BIN, "--no-gdb", "--serial", "-", "--timeout", "30", "--until",
                        "all checks passed", EX("selftest.elf"), NULL};
    e2e_run(&o, ci, E2E_TIMEOUT_S);
    E2E_HAS(o.text, "ok 5 - popcount(0xdeadbeef) == 24\nselftest: all checks passed");
    CU_ASSERT_EQUAL(o.status, 0);
    e2e_out_free(&o);
}

static void test_ticks(void)
{
    /* A kernel that takes timer interrupts, on the pc board. */
    struct e2e_out o;
    run(&o, "--machine pc", EX("ticks.elf"), SCRIPT("ticks"), EX("ticks.elf"));
    E2E_HAS(o.text, "ticks: the PIT interrupts 100 times a second, through the PIC on IRQ 0");
    E2E_HAS(o.text, "Breakpoint 1, timer_tick () at ticks.c:48");
    /* The backtrace goes from the handler through the interrupt frame. */
    E2E_MATCHES(o.text, "#1  <signal handler called>\n#2  wait_for_interrupt \\(\\) at ticks.c:[0-9]+");
    E2E_HAS(o.text, "ticks = 0, IF = 0 (the CPU cleared it for the handler)");
    E2E_HAS(o.text, "Hardware watchpoint 2: ticks\n\nOld value = 0\nNew value = 1");
    E2E_HAS(o.text, "Old value = 1\nNew value = 2");
    E2E_HAS(o.text, "Old value = 2\nNew value = 3");
    /* 50 or more: under a sanitizer in the emulated machine KVM's PIT
     * catches up on ticks the slow guest missed, and more arrive before the
     * guest's own count ends. */
    E2E_MATCHES(o.text, "ticks: done after [0-9]+ PIT ticks");
    E2E_HAS(o.text, "[Inferior 1 (Remote target) exited normally]");
    e2e_out_free(&o);
}

static void test_smp(void)
{
    /* Two CPUs on the pc board: the BSP starts the AP, both count. */
    struct e2e_out o;
    run(&o, "--machine pc --cpus 2", EX("smp.elf"), SCRIPT("smp"), EX("smp.elf"));
    E2E_MATCHES(o.text, "2 +Thread 2 \"CPU#1\" \\(real mode, waiting for INIT\\)");
    E2E_HAS(o.text, "Thread 2 \"CPU#1\" hit Breakpoint 1, ap_main () at smp.c");
    E2E_HAS(o.text, "Thread 2 \"CPU#1\" hit Breakpoint 2, count_once (cpu=1) at smp.c");
    E2E_MATCHES(o.text, "thread 2, cpu = 1, its count so far: [0-9]+");
    E2E_HAS(o.text, "Thread 1 \"CPU#0\" hit Breakpoint 3, count_once (cpu=0) at smp.c");
    E2E_MATCHES(o.text, "thread 1, cpu = 0, its count so far: [0-9]+");
    E2E_HAS(o.text, "$2 = {10000, 10000}\n$3 = 20000");
    E2E_HAS(o.text, "smp: PASS");
    E2E_HAS(o.text, "[Inferior 1 (Remote target) exited normally]");
    e2e_out_free(&o);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("e2e_examples", NULL, NULL);
    CU_add_test(s, "demo", test_demo);
    CU_add_test(s, "bootsector", test_bootsector);
    CU_add_test(s, "protected", test_protected);
    CU_add_test(s, "ckernel: source-level debugging", test_ckernel_source_level);
    CU_add_test(s, "ckernel: watch counts all 100 writes", test_ckernel_watch_counts_every_write);
    CU_add_test(s, "multiboot", test_multiboot);
    CU_add_test(s, "selftest: pass and fail as gdb's status", test_selftest_pass_and_fail);
    CU_add_test(s, "kvmstub as a runner", test_runner_mode);
    CU_add_test(s, "ticks: timer interrupts on the pc board", test_ticks);
    CU_add_test(s, "smp: two CPUs as gdb threads on the pc board", test_smp);
}

int main(void)
{
    return test_main("test_e2e_examples", register_suites, true);
}
