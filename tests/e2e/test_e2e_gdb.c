/* kvmstub driven by the real gdb, in batch mode and through MI, the way
 * users, scripts and IDEs drive it. */
#include "e2e.h"
#include "testmain.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GUEST E2E_GUEST_ELF

static void test_ordinary_session(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_out o;
    const char *cmds[] = {
        "info registers rip",
        "x/4xb &value",
        "set $rax = 5",
        "print $rax",
        "stepi",
        "print $pc",
        "break count_done",
        "continue",
        "print (int)counter",
        "hbreak halt",
        "continue",
        "print/x $rbx",
        "info registers cr0 efer",
        "kill",
        NULL,
    };
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    E2E_MATCHES(o.text, "rip +0x100000 +0x100000 <_start>");
    E2E_MATCHES(o.text, "0x101004:\t0x34\t0x12\t0x00\t0x00");
    E2E_HAS(o.text, "$1 = 5");
    E2E_MATCHES(o.text, "\\$2 = \\(void \\(\\*\\)\\(\\)\\) 0x100007 <_start\\+7>");
    E2E_HAS(o.text, "Breakpoint 1 at 0x");
    E2E_HAS(o.text, "hello\n"); /* the guest's UART, in the gdb console */
    E2E_MATCHES(o.text, "Breakpoint 1, (count_done|read_value) \\(\\) at .*target64.S");
    E2E_HAS(o.text, "$3 = 100");
    E2E_HAS(o.text, "Hardware assisted breakpoint 2 at 0x");
    E2E_HAS(o.text, "done\n");
    E2E_MATCHES(o.text, "Breakpoint 2, halt \\(\\) at .*target64.S");
    E2E_HAS(o.text, "$4 = 0x1234");
    E2E_MATCHES(o.text, "cr0 +0x80010033");
    E2E_MATCHES(o.text, "efer +0x500");
    E2E_HAS(o.text, "killed");
    CU_ASSERT_EQUAL(e2e_stub_wait(&s, 10000), 0);
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_watchpoint_old_and_new_values(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_out o;
    const char *cmds[] = {"watch *(int *)&counter", "continue", "continue", "continue", "kill", NULL};
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    E2E_HAS(o.text, "Hardware watchpoint 1: *(int *)&counter");
    E2E_HAS(o.text, "Old value = 0\nNew value = 1");
    E2E_HAS(o.text, "Old value = 1\nNew value = 2");
    E2E_HAS(o.text, "Old value = 2\nNew value = 3");
    /* The stop is after the write, in the loop. */
    E2E_MATCHES(o.text, "count_loop \\(\\) at .*target64.S:[0-9]+\n[0-9]+\t    cmpl");
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_exit_status_from_debug_exit(void)
{
    struct e2e_stub s;
    /* --trace: should the guest's output ever come short, the packet log
     * says whether kvmstub sent it. */
    const char *args[] = {"--trace", "--reg", "rdi=2", GUEST, NULL};
    CU_ASSERT_FATAL(e2e_stub_start(&s, args) == 0);
    struct e2e_out o;
    const char *cmds[] = {"continue", NULL};
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    E2E_HAS(o.text, "bye\n");
    if (!strstr(o.text, "bye\n")) {
        char *log = e2e_stub_log(&s);
        fprintf(stderr, "kvmstub's log:\n%s\n", log ? log : "(none)");
        free(log);
    }
    /* gdb prints exit codes in octal: 052 is 42. */
    E2E_HAS(o.text, "exited with code 052]");
    CU_ASSERT_EQUAL(e2e_stub_wait(&s, 10000), 42);
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_stdio_transport(void)
{
    char target[512];
    /* kvmstub's own messages would land in gdb's output here, between the
     * guest's bytes as gdb prints them ("by", a log line, "e"). */
    snprintf(target, sizeof(target), "| %s --stdio --reg rdi=2 %s 2>/dev/null", KVMSTUB_BIN,
             GUEST);
    struct e2e_out o;
    const char *cmds[] = {"print $pc", "continue", NULL};
    e2e_gdb(&o, 0, target, cmds, GUEST);
    E2E_HAS(o.text, "<_start>");
    E2E_HAS(o.text, "bye\n");
    E2E_HAS(o.text, "exited with code 052]");
    e2e_out_free(&o);
}

/* gdb re-sends a packet that is not acked within remotetimeout (2 s unless
 * set); a kvmstub that starts slower than that (a large guest, ASan, a
 * nested KVM) receives gdb's first packet twice. The sleep stands for the
 * slow start: gdb's qSupported and its copy wait in the pipe. */
static void test_slow_start_under_default_remotetimeout(void)
{
    char target[512];
    snprintf(target, sizeof(target),
             "target remote | sh -c 'sleep 3; exec %s --stdio --reg rdi=2 %s 2>/dev/null'",
             KVMSTUB_BIN, GUEST);
    const char *argv[] = {"gdb", "-nx", "-batch", "-ex", "show remotetimeout", "-ex", target,
                          "-ex", "print $pc", "-ex", "continue", GUEST, NULL};
    struct e2e_out o;
    e2e_run(&o, argv, E2E_TIMEOUT_S);
    E2E_HAS(o.text, "Timeout limit to wait for target to respond is 2.");
    E2E_LACKS(o.text, "replied unexpectedly");
    E2E_HAS(o.text, "<_start>");
    E2E_HAS(o.text, "bye\n");
    E2E_HAS(o.text, "exited with code 052]");
    e2e_out_free(&o);
}

static void test_monitor_commands(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_out o;
    const char *cmds[] = {
        "monitor help",
        "monitor info",
        "monitor regs",
        "break count_done",
        "continue",
        "monitor serial",
        "monitor reset",
        "flushregs",
        "print $pc",
        "print (int)counter",
        "monitor bogus",
        "monitor quit",
        NULL,
    };
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    E2E_HAS(o.text, "kvmstub monitor commands:");
    E2E_HAS(o.text, "monitor reset");
    E2E_HAS(o.text, "cpu mode:      long (gdb sees amd64)");
    E2E_MATCHES(o.text, "image: +.*target64.elf \\(ELF, long mode, entry 0x100000\\)");
    E2E_HAS(o.text, "host probe:");
    E2E_MATCHES(o.text, "cr0  0*80010033 \\[ PE MP ET NE WP PG \\]");
    E2E_MATCHES(o.text, "efer 0*500 \\[ LME LMA \\]");
    E2E_MATCHES(o.text, "cs   0018 base 0+ limit ffffffff type b code/data dpl 0 present 64-bit");
    /* monitor serial repeats what the guest printed so far. */
    CU_ASSERT(e2e_count(o.text, "hello\n") >= 2);
    E2E_HAS(o.text, "the guest is back at its entry point 0x100000");
    E2E_MATCHES(o.text, "0x100000 <_start>");
    E2E_HAS(o.text, "= 0\n"); /* counter back to its initial value */
    E2E_HAS(o.text, "unknown monitor command 'bogus'; the commands are: help info");
    E2E_HAS(o.text, "kvmstub exits");
    CU_ASSERT_EQUAL(e2e_stub_wait(&s, 10000), 0);
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_monitor_input_reaches_the_uart(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "9"));
    struct e2e_out o;
    const char *cmds[] = {"monitor input typed into the guest", "continue", "kill", NULL};
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    E2E_HAS(o.text, "queued 21 bytes for the guest's UART");
    E2E_HAS(o.text, "> typed into the guest\n");
    E2E_MATCHES(o.text, "halt \\(\\) at .*target64.S");
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_detach_then_attach_sees_same_state(void)
{
    /* --on-detach stop: the next gdb finds the guest as the last one left it. */
    struct e2e_stub s;
    const char *args[] = {"--on-detach", "stop", "--reg", "rdi=0", GUEST, NULL};
    CU_ASSERT_FATAL(e2e_stub_start(&s, args) == 0);
    struct e2e_out o;
    const char *first[] = {"break count_loop", "continue", "set var *(int *)&counter = 77",
                           "set $r12 = 0x1234abcd", "stepi", "print $pc", "detach", NULL};
    e2e_gdb(&o, s.port, NULL, first, GUEST);
    E2E_HAS(o.text, "[Inferior 1 (Remote target) detached]");
    e2e_out_free(&o);
    const char *second[] = {"print (int)counter", "print/x $r12", "print $pc", "info breakpoints",
                            "kill", NULL};
    e2e_gdb(&o, s.port, NULL, second, GUEST);
    E2E_HAS(o.text, "$1 = 78"); /* 77, then the stepped incl */
    E2E_HAS(o.text, "$2 = 0x1234abcd");
    E2E_MATCHES(o.text, "\\$3 = \\(void \\(\\*\\)\\(\\)\\) 0x[0-9a-f]+ <count_loop\\+[0-9]+>");
    E2E_HAS(o.text, "No breakpoints or watchpoints.");
    char *log = e2e_stub_log(&s);
    E2E_HAS(log, "gdb detached; the guest stays stopped");
    free(log);
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_attach_to_running_guest(void)
{
    struct e2e_stub s;
    const char *args[] = {"--run", "--reg", "rdi=4", GUEST, NULL};
    CU_ASSERT_FATAL(e2e_stub_start(&s, args) == 0);
    struct e2e_out o;
    const char *cmds[] = {"print (int)counter > 0", "print $pc", "detach", NULL};
    /* However slow the host, the guest has counted by some attach: each
     * detach lets it run on. */
    for (double end = e2e_now() + E2E_TIMEOUT_S;;) {
        e2e_gdb(&o, s.port, NULL, cmds, GUEST);
        if (strstr(o.text, "$1 = 1") || e2e_now() > end)
            break;
        e2e_out_free(&o);
        usleep(100000);
    }
    E2E_HAS(o.text, "$1 = 1");
    E2E_HAS(o.text, "<busy");
    char *log = e2e_stub_log(&s);
    E2E_HAS(log, "stopping the running guest");
    free(log);
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_disconnect_leaves_running_guest_running(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "4"));
    struct e2e_rsp c;
    char r[4096], z[64];
    CU_ASSERT_FATAL(e2e_rsp_connect(&c, s.port) == 0);
    /* A breakpoint the client leaves behind goes with it. */
    snprintf(z, sizeof(z), "Z0,%llx,1", (unsigned long long)e2e_symbol(GUEST, "halt"));
    CU_ASSERT(e2e_rsp_cmd(&c, z, r, sizeof(r)) > 0);
    CU_ASSERT_STRING_EQUAL(r, "OK");
    CU_ASSERT(e2e_rsp_send(&c, "c") == 0);
    e2e_rsp_close(&c);
    struct e2e_out o;
    const char *cmds[] = {"print (int)counter > 1000", "monitor info", "detach", NULL};
    /* The guest runs on without the client; each look detaches again, so
     * a slow host only takes more looks. */
    for (double end = e2e_now() + E2E_TIMEOUT_S;;) {
        usleep(200000);
        e2e_gdb(&o, s.port, NULL, cmds, GUEST);
        if (strstr(o.text, "$1 = 1") || e2e_now() > end)
            break;
        e2e_out_free(&o);
    }
    E2E_HAS(o.text, "$1 = 1");
    E2E_HAS(o.text, "0 planted");
    e2e_out_free(&o);
    char *log = e2e_stub_log(&s);
    E2E_HAS(log, "gdb disconnected; waiting for the next one");
    free(log);
    e2e_stub_kill(&s);
}

static void test_second_gdb_is_refused(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_rsp c;
    char r[4096];
    CU_ASSERT_FATAL(e2e_rsp_connect(&c, s.port) == 0);
    CU_ASSERT(e2e_rsp_cmd(&c, "?", r, sizeof(r)) > 0);
    struct e2e_out o;
    const char *cmds[] = {"print 1", NULL};
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    E2E_HAS(o.text, "kvmstub already has a debugger connected");
    e2e_out_free(&o);
    /* The first one is undisturbed. */
    CU_ASSERT(e2e_rsp_cmd(&c, "?", r, sizeof(r)) > 0);
    CU_ASSERT_EQUAL(r[0], 'T');
    e2e_rsp_close(&c);
    char *log = e2e_stub_log(&s);
    E2E_HAS(log, "refused a second gdb connection");
    free(log);
    e2e_stub_kill(&s);
}

static void test_interrupt_latency(void)
{
    /* gdb's Ctrl-C is the 0x03 byte; the stop must come back promptly
     * however busy the guest is. */
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "1"));
    struct e2e_rsp c;
    char r[4096];
    CU_ASSERT_FATAL(e2e_rsp_connect(&c, s.port) == 0);
    CU_ASSERT(e2e_rsp_noack(&c) == 0);
    double worst = 0;
    for (int i = 0; i < 5; i++) {
        CU_ASSERT(e2e_rsp_send(&c, "c") == 0);
        usleep(100000);
        double t0 = e2e_now();
        CU_ASSERT(e2e_rsp_send_raw(&c, "\x03", 1) == 0);
        /* The guest spins without a single exit, so any stop proves the
         * kick; how fast it comes is a figure, not a verdict (the host's
         * speed sets it: tests/bench/smp.sh measures it). */
        int n;
        do
            n = e2e_rsp_recv(&c, r, sizeof(r), E2E_TIMEOUT_S * 1000);
        while (n > 0 && r[0] == 'O');
        double took = e2e_now() - t0;
        if (took > worst)
            worst = took;
        CU_ASSERT(n > 0);
        CU_ASSERT_EQUAL(strncmp(r, "T02", 3), 0);
    }
    printf("\n    interrupt latency, worst of 5: %.1f ms\n", worst * 1000);
    e2e_rsp_close(&c);
    e2e_stub_kill(&s);
}

static void test_mi_session(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "1"));
    struct e2e_mi mi;
    CU_ASSERT_FATAL(e2e_mi_start(&mi, GUEST) == 0);
    /* Front ends run gdb asynchronously, so they can interrupt. */
    char *r = e2e_mi_cmd(&mi, "-gdb-set mi-async on");
    E2E_HAS(r, "^done");
    free(r);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "-target-select remote :%d", s.port);
    r = e2e_mi_cmd(&mi, cmd);
    E2E_HAS(r, "^connected");
    free(r);
    r = e2e_mi_cmd(&mi, "-data-list-register-values x 16");
    E2E_HAS(r, "{number=\"16\",value=\"0x100000\"}");
    free(r);
    r = e2e_mi_cmd(&mi, "-data-read-memory-bytes &value 4");
    E2E_HAS(r, "contents=\"34120000\"");
    free(r);
    r = e2e_mi_cmd(&mi, "-break-insert spin");
    E2E_HAS(r, "^done,bkpt={number=\"1\"");
    free(r);
    r = e2e_mi_cmd(&mi, "-exec-continue");
    E2E_HAS(r, "^running");
    free(r);
    r = e2e_mi_wait(&mi, "*stopped", E2E_TIMEOUT_S * 1000);
    /* The guest's output comes as the target stream, in as many records as
     * it took O packets (a slow machine splits "hello\n"). */
    char *stream = e2e_mi_target_stream(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(stream);
    E2E_HAS(stream, "hello\\n");
    CU_ASSERT_STRING_EQUAL(stream, "hello\\n");
    free(stream);
    E2E_HAS(r, "reason=\"breakpoint-hit\"");
    E2E_HAS(r, "func=\"spin\"");
    free(r);
    r = e2e_mi_cmd(&mi, "-break-delete 1");
    free(r);
    r = e2e_mi_cmd(&mi, "-exec-continue");
    E2E_HAS(r, "^running");
    free(r);
    usleep(300000);
    r = e2e_mi_cmd(&mi, "-exec-interrupt");
    E2E_HAS(r, "^done");
    free(r);
    r = e2e_mi_wait(&mi, "*stopped", E2E_TIMEOUT_S * 1000);
    E2E_HAS(r, "signal-name=\"SIGINT\"");
    E2E_HAS(r, "func=\"spin\"");
    free(r);
    r = e2e_mi_cmd(&mi, "-exec-step-instruction");
    free(r);
    r = e2e_mi_wait(&mi, "*stopped", E2E_TIMEOUT_S * 1000);
    E2E_HAS(r, "reason=\"end-stepping-range\"");
    free(r);
    r = e2e_mi_cmd(&mi, "-data-evaluate-expression (int)counter+1");
    E2E_HAS(r, "^done,value=\"1\"");
    free(r);
    r = e2e_mi_cmd(&mi, "-target-detach");
    E2E_HAS(r, "^done");
    free(r);
    e2e_mi_stop(&mi);
    e2e_stub_kill(&s);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("e2e_gdb", NULL, NULL);
    CU_add_test(s, "an ordinary gdb session", test_ordinary_session);
    CU_add_test(s, "watchpoint shows old and new values", test_watchpoint_old_and_new_values);
    CU_add_test(s, "debug-exit status reaches gdb and the shell", test_exit_status_from_debug_exit);
    CU_add_test(s, "target remote | kvmstub --stdio", test_stdio_transport);
    CU_add_test(s, "a start slower than gdb's remotetimeout: its re-sent packet answered once",
                test_slow_start_under_default_remotetimeout);
    CU_add_test(s, "monitor commands", test_monitor_commands);
    CU_add_test(s, "monitor input reaches the guest's UART", test_monitor_input_reaches_the_uart);
    CU_add_test(s, "detach, attach again, same state", test_detach_then_attach_sees_same_state);
    CU_add_test(s, "attach to a running guest", test_attach_to_running_guest);
    CU_add_test(s, "disconnect leaves a running guest running",
                test_disconnect_leaves_running_guest_running);
    CU_add_test(s, "a second gdb is refused", test_second_gdb_is_refused);
    CU_add_test(s, "interrupt latency under 100 ms", test_interrupt_latency);
    CU_add_test(s, "gdb/MI session as IDEs drive it", test_mi_session);
}

int main(void)
{
    return test_main("test_e2e_gdb", register_suites, true);
}
