/* Several vCPUs as gdb threads, through the real gdb and a raw RSP client,
 * on the smp example (examples/smp: the BSP starts the APs with INIT and
 * startup IPIs; each CPU calls count_once(cpu) `rounds` times): gdb lists a
 * thread per CPU with what it waits for, a breakpoint hit on CPU 1 is
 * reported as thread 2 with CPU 1's registers, a hundred breakpoint hits
 * spread over the CPUs are each reported once and by the thread that hit,
 * and Ctrl-C stops every CPU, not only the first. Page traps with several
 * CPUs (breakpoints on one-byte instructions, watchpoints) are
 * test_e2e_smp_traps'. */
#include "e2e.h"
#include "testmain.h"

#include <CUnit/CUnit.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SMP_ELF EXAMPLES_BIN "/smp.elf"

static void run(struct e2e_out *o, const char *args, const char *script)
{
    char pc_args[512];
    snprintf(pc_args, sizeof(pc_args), "--machine pc %s", args);
    e2e_gdb_stdio_script(o, pc_args, SMP_ELF, script);
}

static void test_threads_and_their_registers(void)
{
    struct e2e_out o;
    run(&o, "--cpus 2",
        "info threads\n"
        "break ap_main\n"
        "continue\n"
        "info threads\n"
        "thread 2\n"
        "info registers eip\n"
        "thread 1\n"
        "info registers eip\n"
        "kill\n");
    /* Before the BSP starts it, CPU 1 waits for INIT, in real mode at the
     * reset vector, as KVM_GET_MP_STATE says. */
    E2E_MATCHES(o.text, "\\* 1 +Thread 1 \"CPU#0\" \\(protected mode\\)");
    E2E_MATCHES(o.text, "  2 +Thread 2 \"CPU#1\" \\(real mode, waiting for INIT\\) 0x0000fff0");
    E2E_HAS(o.text, "Thread 2 \"CPU#1\" hit Breakpoint 1, ap_main () at smp.c");
    E2E_MATCHES(o.text, "Switching to thread 2 [^\n]*\n(.*\n)*eip +0x[0-9a-f]+ +0x[0-9a-f]+ <ap_main");
    /* CPU 0 is somewhere else: Hg1 switched gdb's view. */
    const char *t1 = strstr(o.text, "[Switching to thread 1");
    CU_ASSERT_PTR_NOT_NULL(t1);
    if (t1) {
        E2E_MATCHES(t1, "eip +0x[0-9a-f]+ +0x[0-9a-f]+ <");
        E2E_LACKS(t1, "<ap_main");
    }
    E2E_MATCHES(o.text, "\\* 2 +Thread 2 \"CPU#1\" \\(protected mode\\)");
    e2e_out_free(&o);
}

/* Each hit checks the counter of the CPU that hit against the hits seen on
 * that thread so far: a stop reported twice would find it one short, a hit
 * run through unreported one ahead, a stop blamed on the wrong thread
 * finds cpu != thread - 1. */
static void test_hundred_hits_each_once(void)
{
    struct e2e_out o;
    run(&o, "--cpus 2",
        "break count_once\n"
        "set $seen0 = 0\n"
        "set $seen1 = 0\n"
        "set $wrong = 0\n"
        "set $lost = 0\n"
        "set $doubled = 0\n"
        "set $i = 0\n"
        "while $i < 100\n"
        "  continue\n"
        "  if cpu != $_thread - 1\n"
        "    set $wrong = $wrong + 1\n"
        "  end\n"
        "  if cpu == 0\n"
        "    set $seen = $seen0\n"
        "    set $seen0 = $seen0 + 1\n"
        "  else\n"
        "    set $seen = $seen1\n"
        "    set $seen1 = $seen1 + 1\n"
        "  end\n"
        "  if per_cpu_count[cpu] > $seen\n"
        "    set $lost = $lost + 1\n"
        "  end\n"
        "  if per_cpu_count[cpu] < $seen\n"
        "    set $doubled = $doubled + 1\n"
        "  end\n"
        "  set $i = $i + 1\n"
        "end\n"
        "printf \"hits: cpu0 %d, cpu1 %d; wrong thread %d, lost %d, doubled %d\\n\", $seen0, "
        "$seen1, $wrong, $lost, $doubled\n"
        "printf \"counters: %u %u\\n\", per_cpu_count[0], per_cpu_count[1]\n"
        "kill\n");
    E2E_MATCHES(o.text, "hits: cpu0 [0-9]+, cpu1 [0-9]+; wrong thread 0, lost 0, doubled 0\n");
    const char *h = strstr(o.text, "hits: cpu0 ");
    int c0 = 0, c1 = 0;
    CU_ASSERT_FATAL(h && sscanf(h, "hits: cpu0 %d, cpu1 %d", &c0, &c1) == 2);
    printf("\n    100 breakpoint hits: %d on CPU 0, %d on CPU 1\n", c0, c1);
    CU_ASSERT_EQUAL(c0 + c1, 100);
    /* Both CPUs run the loop: each gets its stops reported. */
    CU_ASSERT_TRUE(c0 > 0 && c1 > 0);
    e2e_out_free(&o);
}

/* The registers of thread tid ("g"), or an error reply. */
static void regs_of(struct e2e_rsp *c, int tid, char *out, size_t cap)
{
    char cmd[32];
    snprintf(cmd, sizeof(cmd), "Hg%x", tid);
    CU_ASSERT_TRUE(e2e_rsp_cmd(c, cmd, out, cap) > 0 && strcmp(out, "OK") == 0);
    CU_ASSERT_TRUE(e2e_rsp_cmd(c, "g", out, cap) > 0);
}

/* Reads O packets until their text contains want. */
static bool console_until(struct e2e_rsp *c, const char *want)
{
    char r[8192], text[8192];
    size_t len = 0;
    text[0] = 0;
    while (!strstr(text, want)) {
        if (e2e_rsp_recv(c, r, sizeof(r), E2E_TIMEOUT_S * 1000) <= 0 || r[0] != 'O')
            return false;
        for (const char *p = r + 1; p[0] && p[1] && len + 1 < sizeof(text); p += 2) {
            unsigned v;
            if (sscanf(p, "%2x", &v) == 1)
                text[len++] = (char)v;
        }
        text[len] = 0;
        if (len + 1 >= sizeof(text))
            return false;
    }
    return true;
}

static void test_ctrl_c_stops_every_cpu(void)
{
    struct e2e_stub s;
    /* Enough rounds that both CPUs are still counting at the Ctrl-C. */
    CU_ASSERT_EQUAL_FATAL(e2e_stub_start(&s, (const char *[]){"--machine", "pc", "--cpus", "2",
                                                               "--cmdline", "rounds=100000000",
                                                               SMP_ELF, NULL}),
                          0);
    struct e2e_rsp c;
    CU_ASSERT_EQUAL_FATAL(e2e_rsp_connect(&c, s.port), 0);
    char r[8192], a1[2048], a2[2048], b1[2048], b2[2048];
    CU_ASSERT_EQUAL(e2e_rsp_send(&c, "vCont;c"), 0);
    /* Until CPU 1 has started, which the guest announces on its console
     * (O packets, hex). */
    CU_ASSERT_TRUE(console_until(&c, "cpu 1 started"));
    usleep(200 * 1000);
    e2e_rsp_send_raw(&c, "\x03", 1);
    int n;
    do
        n = e2e_rsp_recv(&c, r, sizeof(r), E2E_TIMEOUT_S * 1000);
    while (n > 0 && r[0] == 'O');
    CU_ASSERT_TRUE(n > 0 && strncmp(r, "T02", 3) == 0);
    regs_of(&c, 1, a1, sizeof(a1));
    regs_of(&c, 2, a2, sizeof(a2));
    usleep(300 * 1000);
    regs_of(&c, 1, b1, sizeof(b1));
    regs_of(&c, 2, b2, sizeof(b2));
    /* Both answered with registers (a running vCPU's cannot be read), and
     * neither moved: every CPU stopped. */
    CU_ASSERT_TRUE(a1[0] != 'E' && a2[0] != 'E');
    CU_ASSERT_STRING_EQUAL(a1, b1);
    CU_ASSERT_STRING_EQUAL(a2, b2);
    CU_ASSERT_STRING_NOT_EQUAL(a1, a2);
    /* The same once more, from a resume of all: CPU 1 runs in between.
     * Its registers alone cannot show that: waiting for the lock CPU 0
     * holds, it spins in a three-instruction loop that the emulated machine
     * interrupts at the same instruction every time (measured: identical
     * registers over five rounds while its counter went from 1 to 181,810),
     * so its counter counts too. With one emulated CPU under the sanitizers
     * and the guest's unfair lock, CPU 1 can wait seconds for its turn:
     * rounds, each twice as long, 12.6 s in all. */
    uint64_t counts = e2e_symbol(SMP_ELF, "per_cpu_count");
    CU_ASSERT_TRUE_FATAL(counts != 0);
    char count1[64], cmd[64];
    snprintf(cmd, sizeof(cmd), "m%llx,4", (unsigned long long)counts + 4);
    CU_ASSERT_TRUE(e2e_rsp_cmd(&c, cmd, count1, sizeof(count1)) == 8);
    bool moved = false;
    for (int round = 0; round < 6 && !moved; round++) {
        CU_ASSERT_EQUAL(e2e_rsp_send(&c, "vCont;c"), 0);
        usleep((200u << round) * 1000);
        e2e_rsp_send_raw(&c, "\x03", 1);
        do
            n = e2e_rsp_recv(&c, r, sizeof(r), E2E_TIMEOUT_S * 1000);
        while (n > 0 && r[0] == 'O');
        CU_ASSERT_TRUE(n > 0 && strncmp(r, "T02", 3) == 0);
        regs_of(&c, 2, b2, sizeof(b2));
        char now1[64];
        CU_ASSERT_TRUE(e2e_rsp_cmd(&c, cmd, now1, sizeof(now1)) == 8);
        moved = strcmp(a2, b2) != 0 || strcmp(count1, now1) != 0;
        if (!moved)
            printf("\n    after %u ms: CPU 1 still at the same registers, its counter %s", 200u << round,
                   now1);
    }
    CU_ASSERT_TRUE(moved);
    e2e_rsp_close(&c);
    e2e_stub_kill(&s);
}

/* The smp example never enables interrupts, so both CPUs count with IF=0;
 * with `rounds` near UINT_MAX they would for hours. --timeout must still end
 * the guest: kvmstub's timer runs on its loop thread and kicks the vCPUs out
 * of KVM_RUN, which needs no guest interrupt. */
static void test_timeout_ends_cpus_spinning_with_interrupts_off(void)
{
    struct e2e_out o;
    const char *argv[] = {KVMSTUB_BIN, "--no-gdb",  "--machine", "pc", "--cpus", "2", "--timeout",
                          "3",         "--cmdline", "rounds=4000000000",  SMP_ELF, NULL};
    double t0 = e2e_now();
    e2e_run(&o, argv, E2E_TIMEOUT_S);
    double took = e2e_now() - t0;
    printf("\n    --timeout 3 ended it after %.1f s\n", took);
    CU_ASSERT_EQUAL(o.status, 124);
    E2E_HAS(o.text, "cpu 1 started"); /* both CPUs were running */
    CU_ASSERT_TRUE(took < E2E_TIMEOUT_S);
    e2e_out_free(&o);
}

/* Every CPU in `cli; jmp .`, the loop a hung kernel spins in: no exit, no
 * interrupt window, nothing for KVM to hand back. gdb's Ctrl-C must still
 * stop both (each shown at the loop), and SIGTERM must still end kvmstub
 * while they spin. */
static void test_ctrl_c_and_sigterm_with_every_cpu_in_cli_jmp_self(void)
{
    uint64_t loop = e2e_symbol(SMP_ELF, "count_once");
    CU_ASSERT_TRUE_FATAL(loop != 0);
    struct e2e_stub s;
    CU_ASSERT_EQUAL_FATAL(e2e_stub_start(&s, (const char *[]){"--machine", "pc", "--cpus", "2",
                                                               "--cmdline", "rounds=100000000",
                                                               SMP_ELF, NULL}),
                          0);
    struct e2e_rsp c;
    CU_ASSERT_EQUAL_FATAL(e2e_rsp_connect(&c, s.port), 0);
    char r[8192], cmd[64];
    int n;
    CU_ASSERT_EQUAL(e2e_rsp_send(&c, "vCont;c"), 0);
    CU_ASSERT_TRUE(console_until(&c, "cpu 1 started"));
    e2e_rsp_send_raw(&c, "\x03", 1);
    do
        n = e2e_rsp_recv(&c, r, sizeof(r), E2E_TIMEOUT_S * 1000);
    while (n > 0 && r[0] == 'O');
    CU_ASSERT_TRUE_FATAL(n > 0 && strncmp(r, "T02", 3) == 0);
    /* count_once's first bytes become cli; jmp . (both CPUs call it every
     * round, so both end up there). */
    snprintf(cmd, sizeof(cmd), "M%llx,3:faebfe", (unsigned long long)loop);
    CU_ASSERT_TRUE(e2e_rsp_cmd(&c, cmd, r, sizeof(r)) > 0 && strcmp(r, "OK") == 0);
    CU_ASSERT_EQUAL(e2e_rsp_send(&c, "vCont;c"), 0);
    usleep(1000 * 1000);
    double t0 = e2e_now();
    e2e_rsp_send_raw(&c, "\x03", 1);
    do
        n = e2e_rsp_recv(&c, r, sizeof(r), E2E_TIMEOUT_S * 1000);
    while (n > 0 && r[0] == 'O');
    printf("\n    Ctrl-C stopped both spinning CPUs in %.2f s\n", e2e_now() - t0);
    CU_ASSERT_TRUE(n > 0 && strncmp(r, "T02", 3) == 0);
    /* Each thread's registers hold the address of the jmp (little-endian,
     * as 'g' sends it): both were spinning there. */
    char want[9];
    uint32_t at = (uint32_t)loop + 1;
    snprintf(want, sizeof(want), "%02x%02x%02x%02x", at & 0xff, (at >> 8) & 0xff,
             (at >> 16) & 0xff, at >> 24);
    for (int tid = 1; tid <= 2; tid++) {
        regs_of(&c, tid, r, sizeof(r));
        CU_ASSERT_PTR_NOT_NULL(strstr(r, want));
    }
    CU_ASSERT_EQUAL(e2e_rsp_send(&c, "vCont;c"), 0);
    usleep(500 * 1000);
    t0 = e2e_now();
    kill(s.pid, SIGTERM);
    int status = e2e_stub_wait(&s, E2E_TIMEOUT_S * 1000);
    printf("    SIGTERM ended kvmstub in %.2f s (status %d)\n", e2e_now() - t0, status);
    CU_ASSERT_EQUAL(status, 143);
    e2e_rsp_close(&c);
    e2e_stub_kill(&s);
}

static void test_bare_refuses_two_cpus(void)
{
    struct e2e_out o;
    const char *argv[] = {KVMSTUB_BIN, "--cpus", "2", "--machine", "bare", SMP_ELF, NULL};
    e2e_run(&o, argv, E2E_TIMEOUT_S);
    CU_ASSERT_EQUAL(o.status, 2);
    E2E_HAS(o.text, "2 CPUs need --machine pc");
    e2e_out_free(&o);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("e2e_smp", NULL, NULL);
    CU_add_test(s, "two CPUs: info threads, a breakpoint on CPU 1 is thread 2, Hg switches",
                test_threads_and_their_registers);
    CU_add_test(s, "100 breakpoint hits over two CPUs: each reported once, by its thread",
                test_hundred_hits_each_once);
    CU_add_test(s, "Ctrl-C stops both CPUs of a running guest, twice", test_ctrl_c_stops_every_cpu);
    CU_add_test(s, "--timeout ends two CPUs counting with interrupts off, status 124",
                test_timeout_ends_cpus_spinning_with_interrupts_off);
    CU_add_test(s, "both CPUs in cli; jmp .: Ctrl-C stops both there, SIGTERM ends kvmstub",
                test_ctrl_c_and_sigterm_with_every_cpu_in_cli_jmp_self);
    CU_add_test(s, "--cpus 2 on the bare board: refused, status 2", test_bare_refuses_two_cpus);
}

int main(void)
{
    return test_main("test_e2e_smp", register_suites, true);
}
