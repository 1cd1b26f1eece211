/* Breakpoints and watchpoints through gdb, on whatever this host offers:
 * exact hit counts, read and access watchpoints, many at once, a watched
 * page that also holds running code, and every CPU mode. */
#include "e2e.h"
#include "testmain.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUEST E2E_GUEST_ELF

static void test_hundred_writes_hundred_stops(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_out o;
    static const char script[] = "watch *(int *)&counter\n"
                                 "set $n = 0\n"
                                 "while $n < 100\n"
                                 "  continue\n"
                                 "  set $n = $n + 1\n"
                                 "end\n"
                                 "continue\n"
                                 "print $n\n"
                                 "monitor info\n"
                                 "kill\n";
    e2e_gdb_script(&o, s.port, NULL, script, GUEST);
    CU_ASSERT_EQUAL(e2e_count(o.text, "Hardware watchpoint 1: *(int *)&counter\n\nOld value"), 100);
    E2E_HAS(o.text, "Old value = 0\nNew value = 1\n");
    E2E_HAS(o.text, "Old value = 99\nNew value = 100\n");
    E2E_LACKS(o.text, "New value = 101");
    /* After the hundredth the guest runs to its end. */
    E2E_HAS(o.text, "done\n");
    E2E_MATCHES(o.text, "halt \\(\\) at .*target64.S");
    E2E_HAS(o.text, "$1 = 100");
    E2E_MATCHES(o.text, "watchpoint hits 100");
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_read_and_access_watchpoints(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_out o;
    const char *cmds[] = {"rwatch *(int *)&value", "awatch *(int *)&counter", "continue",
                          "continue", "delete 2", "continue", "print/x $rbx", "kill", NULL};
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    E2E_HAS(o.text, "Hardware read watchpoint 1: *(int *)&value");
    E2E_HAS(o.text, "Hardware access (read/write) watchpoint 2: *(int *)&counter");
    /* incl reads and writes: the access watchpoint reports the change. */
    E2E_HAS(o.text, "Old value = 0\nNew value = 1\n");
    /* ... and the cmpl that follows reads it: an access too. */
    E2E_HAS(o.text, "Old value = 0\nNew value = 1\ncount_loop () at");
    E2E_HAS(o.text, "Value = 1\ncount_loop () at");
    /* The read of value, reported after it happened. */
    E2E_HAS(o.text, "Value = 4660\n");
    E2E_HAS(o.text, "$1 = 0x1234");
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_six_watchpoints_at_once(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_out o;
    const char *cmds[] = {
        "watch *(int *)&flood_bytes",  "watch *(char *)&hello",   "rwatch *(int *)&value",
        "watch *(int *)&counter",      "awatch *(long *)&done_msg", "watch *((char *)&bye + 2)",
        "continue",                    "delete 4",                "continue",
        "continue",                    "info watchpoints",        "kill",
        NULL,
    };
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    for (int i = 1; i <= 6; i++) {
        char want[32];
        snprintf(want, sizeof(want), "watchpoint %d: ", i);
        E2E_HAS(o.text, want);
    }
    E2E_LACKS(o.text, "Could not insert");
    E2E_HAS(o.text, "Hardware watchpoint 4: *(int *)&counter\n\nOld value = 0\nNew value = 1");
    E2E_HAS(o.text, "Hardware read watchpoint 3: *(int *)&value\n\nValue = 4660");
    /* puts reads done_msg: the access watchpoint. */
    E2E_HAS(o.text, "Hardware access (read/write) watchpoint 5: *(long *)&done_msg");
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_watch_on_page_with_running_code(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "5"));
    struct e2e_out o;
    /* The loop's incl reads and writes code_var, on the page its own code
     * is on. Where the instruction fetch traps first, the instruction runs
     * with the traps lifted and its read and write are one stop, after it,
     * as a hardware access watchpoint reports them; where the data read
     * traps first (seen in the emulated machine), the read is reported
     * before the instruction and the write after it. Either way every
     * write is reported once, with its old and new value. */
    static const char script[] = "awatch *(int *)&code_var\n"
                                 "set $n = 0\n"
                                 "while *(int *)&code_var < 10 && $n < 40\n"
                                 "  continue\n"
                                 "  set $n = $n + 1\n"
                                 "end\n"
                                 "printf \"stops: %d\\n\", $n\n"
                                 "delete\n"
                                 "continue\n"
                                 "print *(int *)&code_var\n"
                                 "print $rcx\n"
                                 "kill\n";
    e2e_gdb_script(&o, s.port, NULL, script, GUEST);
    for (int v = 0; v < 10; v++) {
        char want[64];
        snprintf(want, sizeof(want), "Old value = %d\nNew value = %d\n", v, v + 1);
        CU_ASSERT_EQUAL(e2e_count(o.text, want), 1);
    }
    const char *st = strstr(o.text, "stops: ");
    int stops = st ? atoi(st + 7) : -1;
    /* One stop for each of the ten increments where the fetch traps
     * first; where the read traps first it may be reported again when the
     * instruction restarts (seen under valgrind in the emulated machine):
     * at most three. */
    CU_ASSERT(stops >= 10 && stops <= 30);
    if (stops < 10 || stops > 30)
        fprintf(stderr, "\n%s\n", o.text);
    E2E_MATCHES(o.text, "halt \\(\\) at .*target64.S");
    E2E_HAS(o.text, "$1 = 10");
    E2E_HAS(o.text, "$2 = 0");
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_ten_software_breakpoints(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_out o;
    static const char script[] = "set $i = 0\n"
                                 "while $i < 10\n"
                                 "  eval \"break *(sled + %d)\", $i\n"
                                 "  set $i = $i + 1\n"
                                 "end\n"
                                 "set $i = 0\n"
                                 "while $i < 10\n"
                                 "  continue\n"
                                 "  printf \"at sled+%d\\n\", $pc - (long)&sled\n"
                                 "  set $i = $i + 1\n"
                                 "end\n"
                                 "delete\n"
                                 "continue\n"
                                 "print *(int *)&counter\n"
                                 "kill\n";
    e2e_gdb_script(&o, s.port, NULL, script, GUEST);
    for (int i = 0; i < 10; i++) {
        char want[64];
        snprintf(want, sizeof(want), "Breakpoint %d, ", i + 1);
        E2E_HAS(o.text, want);
        snprintf(want, sizeof(want), "at sled+%d\n", i);
        E2E_HAS(o.text, want);
    }
    E2E_HAS(o.text, "$1 = 100"); /* the program ran on correctly after them */
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_real_mode(void)
{
    struct e2e_stub s;
    const char *args[] = {E2E_REAL16_BIN, NULL};
    CU_ASSERT_FATAL(e2e_stub_start(&s, args) == 0);
    struct e2e_out o;
    const char *cmds[] = {"show architecture",
                          "x/2i $cs*16+$pc",
                          "break *0x1003",
                          "watch *(short *)0x3000",
                          "continue",
                          "continue",
                          "delete 1",
                          "continue",
                          "continue",
                          "delete",
                          "hbreak *0x1009",
                          "continue",
                          "print/x *(short *)0x3000",
                          "kill",
                          NULL};
    e2e_gdb(&o, s.port, NULL, cmds, NULL);
    E2E_HAS(o.text, "(currently \"i8086\")");
    E2E_MATCHES(o.text, "0x1000:\tmov +\\$0x5,%cx"); /* 16-bit disassembly */
    E2E_HAS(o.text, "Breakpoint 1, 0x00001003 in ?? ()");
    E2E_HAS(o.text, "Old value = 0\nNew value = 1\n");
    E2E_HAS(o.text, "Old value = 1\nNew value = 2\n");
    E2E_HAS(o.text, "Old value = 2\nNew value = 3\n");
    E2E_HAS(o.text, "Breakpoint 3, 0x00001009 in ?? ()");
    E2E_HAS(o.text, "= 0x5");
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_protected_mode(void)
{
    struct e2e_stub s;
    const char *args[] = {E2E_PROT32_ELF, NULL};
    CU_ASSERT_FATAL(e2e_stub_start(&s, args) == 0);
    struct e2e_out o;
    const char *cmds[] = {"show architecture", "break pdone", "watch *(int *)&pcount",
                          "continue", "continue", "delete 2", "continue", "print *(int *)&pcount",
                          "info registers eip", "kill", NULL};
    e2e_gdb(&o, s.port, NULL, cmds, E2E_PROT32_ELF);
    E2E_HAS(o.text, "(currently \"i386\")");
    E2E_HAS(o.text, "Old value = 0\nNew value = 1\n");
    E2E_HAS(o.text, "Old value = 1\nNew value = 2\n");
    E2E_MATCHES(o.text, "Breakpoint 1, pdone \\(\\) at .*prot32.S");
    E2E_HAS(o.text, "$1 = 5");
    E2E_MATCHES(o.text, "eip +0x10[0-9a-f]+ +0x10[0-9a-f]+ <pdone>");
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

/* Starts the target64 fixture (mode 0) with extra options before it. */
static bool start_with(struct e2e_stub *s, const char *opt1, const char *opt2)
{
    const char *args[] = {"--reg", "rdi=0", opt1, opt2, E2E_GUEST_ELF, NULL};
    if (!opt2) {
        args[3] = E2E_GUEST_ELF;
        args[4] = NULL;
    }
    return e2e_stub_start(s, args) == 0;
}

static void test_option_hlt_breakpoints(void)
{
    /* --hlt-breakpoints: planted hlt even where int3 would work; gdb sees no
     * difference. */
    struct e2e_stub s;
    CU_ASSERT_FATAL(start_with(&s, "--hlt-breakpoints", NULL));
    struct e2e_out o;
    const char *cmds[] = {"break count_loop", "continue", "continue", "print $pc == count_loop",
                          "monitor info", "kill", NULL};
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    E2E_HAS(o.text, "Breakpoint 1, count_loop ()");
    CU_ASSERT_EQUAL(e2e_count(o.text, "Breakpoint 1, count_loop ()"), 2);
    E2E_HAS(o.text, "$1 = 1");
    E2E_HAS(o.text, "breakpoints:   planted hlt (--hlt-breakpoints)");
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_option_watchpoints_page_traps(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(start_with(&s, "--watchpoints", "page-traps"));
    struct e2e_out o;
    const char *cmds[] = {"watch *(int *)&counter", "continue", "continue", "monitor info", "kill",
                          NULL};
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    E2E_HAS(o.text, "Old value = 0\nNew value = 1\n");
    E2E_HAS(o.text, "Old value = 1\nNew value = 2\n");
    E2E_HAS(o.text, "watchpoints:   page traps (any number, any length) (--watchpoints page-traps)");
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_option_watchpoints_debug_registers(void)
{
    /* Where the host's data breakpoints fire, watchpoints use them; where
     * they never fire, kvmstub says at start that gdb's watch commands will
     * be refused, and they are (gdb then says it cannot insert one). */
    struct e2e_stub s;
    CU_ASSERT_FATAL(start_with(&s, "--watchpoints", "debug-registers"));
    struct e2e_out o;
    const char *cmds[] = {"monitor info", "watch *(int *)&counter", "continue", "kill", NULL};
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    char *log = e2e_stub_log(&s);
    if (strstr(o.text, "data breakpoints fire")) {
        E2E_HAS(o.text, "Old value = 0\nNew value = 1\n");
        E2E_LACKS(log, "will be refused");
    } else {
        E2E_HAS(o.text, "data breakpoints do not fire");
        E2E_HAS(log, "gdb's watch commands will be refused");
        E2E_MATCHES(o.text, "Could not insert hardware watchpoint 1|Could not insert watchpoint");
        E2E_LACKS(o.text, "New value = 1");
    }
    free(log);
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("e2e_watch", NULL, NULL);
    CU_add_test(s, "100 writes give exactly 100 watchpoint stops",
                test_hundred_writes_hundred_stops);
    CU_add_test(s, "rwatch and awatch", test_read_and_access_watchpoints);
    CU_add_test(s, "six watchpoints at once", test_six_watchpoints_at_once);
    CU_add_test(s, "a watched page that holds running code", test_watch_on_page_with_running_code);
    CU_add_test(s, "ten software breakpoints", test_ten_software_breakpoints);
    CU_add_test(s, "real mode: breakpoints and watchpoints", test_real_mode);
    CU_add_test(s, "protected mode: breakpoints and watchpoints", test_protected_mode);
    CU_add_test(s, "--hlt-breakpoints", test_option_hlt_breakpoints);
    CU_add_test(s, "--watchpoints page-traps", test_option_watchpoints_page_traps);
    CU_add_test(s, "--watchpoints debug-registers", test_option_watchpoints_debug_registers);
}

int main(void)
{
    return test_main("test_e2e_watch", register_suites, true);
}
