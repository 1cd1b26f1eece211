/* gdb as its users expect it, through the real gdb: the whole system state
 * as registers, one connection across mode switches, physical memory, the
 * monitor commands QEMU users type, extended-remote, detach that lets go,
 * QEMU's start options, info threads, and an IDE's MI session. */
#include "e2e.h"
#include "kvmstub_version.h"
#include "testmain.h"

#include <CUnit/CUnit.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define GUEST E2E_GUEST_ELF
#define MODES_BIN E2E_MODES_BIN
#define MODES_ELF E2E_MODES_ELF

/* gdb in batch mode with its own target command (extended-remote, a Unix
 * socket). */
static void gdb_with(struct e2e_out *o, const char *target, const char *const *cmds,
                     const char *file)
{
    char t[256];
    snprintf(t, sizeof(t), "target %s", target);
    const char *argv[96] = {"gdb", "-nx", "-batch", "-ex", "set pagination off",
                            "-ex", "set confirm off", "-ex", "set auto-connect-native-target off", "-ex", t};
    int n = 11;
    for (int i = 0; cmds[i] && n < 90; i++) {
        argv[n++] = "-ex";
        argv[n++] = cmds[i];
    }
    if (file)
        argv[n++] = file;
    argv[n] = NULL;
    e2e_run(o, argv, E2E_TIMEOUT_S);
}

static void test_system_registers(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_out o;
    const char *cmds[] = {"info registers cr0 cr4 efer",
                          "info registers cs_attr ds_base ds_limit gdtr_base gdtr_limit idtr_limit",
                          "info registers ldtr tr_attr dr6 dr7",
                          "set $dr0 = 0x101000",
                          "print/x $dr0",
                          "set $gs_base = 0x1234000",
                          "print/x $gs_base",
                          "set $cr0 = 0x10L",
                          "print/x $cr0",
                          "print $ymm0.v4_int64",
                          "kill",
                          NULL};
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    E2E_MATCHES(o.text, "cr0 +0x80010033 +\\[ PE MP ET NE WP PG \\]");
    E2E_MATCHES(o.text, "cr4 +0x620 +\\[ PAE OSFXSR OSXMMEXCPT \\]");
    E2E_MATCHES(o.text, "efer +0x500 +\\[ LME LMA \\]");
    E2E_MATCHES(o.text, "cs_attr +0xa09b +\\[ type=11 S DPL=0 P L G \\]");
    E2E_MATCHES(o.text, "ds_limit +0xffffffff");
    E2E_MATCHES(o.text, "gdtr_base +0x3ff0000");
    E2E_MATCHES(o.text, "gdtr_limit +0x1f");
    E2E_MATCHES(o.text, "dr6 +0xffff0ff0");
    E2E_HAS(o.text, "$1 = 0x101000");
    E2E_HAS(o.text, "$2 = 0x1234000");
    /* Paging without protection in long mode: KVM refuses, gdb says so, the
     * value stays. */
    E2E_HAS(o.text, "Could not write register \"cr0\"");
    E2E_HAS(o.text, "$3 = 0x80010033");
    /* gdb's own AVX feature where the host has AVX; nothing otherwise. */
    E2E_MATCHES(o.text, "\\$4 = (\\{0, 0, 0, 0\\}|<error|void)");
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static uint64_t mark(const char *name)
{
    uint64_t a = e2e_symbol(MODES_ELF, name);
    CU_ASSERT(a != 0);
    return a;
}

/* The boot sector through real, protected and long mode with one gdb. */
static void follow_modes(const char *arch, bool amd64)
{
    struct e2e_stub s;
    const char *args[] = {"--gdb-arch", arch, "--mode", "real", "--load", "0x7c00", "--format",
                          "bin", MODES_BIN, NULL};
    CU_ASSERT_FATAL(e2e_stub_start(&s, args) == 0);
    char b1[64], b2[64], b3[64];
    snprintf(b1, sizeof(b1), "break *0x%llx", (unsigned long long)mark("real_mark"));
    snprintf(b2, sizeof(b2), "break *0x%llx", (unsigned long long)mark("pm_mark"));
    snprintf(b3, sizeof(b3), "break *0x%llx", (unsigned long long)mark("lm_mark"));
    const char *cmds[] = {b1, b2, b3,
                          "continue", "printf \"real: ax=%x cs=%x\\n\", $eax & 0xffff, $cs",
                          "info registers cr0",
                          "continue", "printf \"prot: eax=%x cs=%x\\n\", $eax, $cs",
                          "info registers cr0",
                          "continue", "printf \"long: eax=%x cs=%x\\n\", $eax, $cs",
                          "info registers cr0 efer",
                          amd64 ? "printf \"long: r9=%lx\\n\", $r9" : "echo (no r9 in i386)\\n",
                          "kill", NULL};
    struct e2e_out o;
    e2e_gdb(&o, s.port, NULL, cmds, NULL);
    CU_ASSERT_EQUAL(e2e_count(o.text, "Breakpoint "), 6); /* 3 set, 3 hit */
    E2E_HAS(o.text, "real: ax=1111 cs=0\n");
    E2E_MATCHES(o.text, "cr0 +0x10 +\\[ ET \\]");
    E2E_HAS(o.text, "prot: eax=2222 cs=8\n");
    E2E_MATCHES(o.text, "cr0 +0x11 +\\[ PE ET \\]");
    E2E_HAS(o.text, "long: eax=3333 cs=18\n");
    E2E_MATCHES(o.text, "cr0 +0x80000011 +\\[ PE ET PG \\]");
    E2E_MATCHES(o.text, "efer +0xd00 +\\[ LME LMA NXE \\]|efer +0x500 +\\[ LME LMA \\]");
    if (amd64)
        E2E_HAS(o.text, "long: r9=123456789a");
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_modes_one_connection_amd64(void)
{
    follow_modes("amd64", true);
}

static void test_modes_one_connection_auto(void)
{
    follow_modes("auto", false);
}

static void test_physical_memory(void)
{
    /* The page tables the boot area holds, read through their physical
     * address with QEMU's packet, and the same bytes with monitor xp. */
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_out o;
    const char *cmds[] = {"maintenance packet qqemu.PhyMemMode",
                          "maintenance packet Qqemu.PhyMemMode:1",
                          "x/1gx $cr3",
                          "set {char}($cr3 + 0x800) = 0x5a",
                          "maintenance packet Qqemu.PhyMemMode:0",
                          "monitor xp /1xg 0x3ff1000",
                          "monitor xp /1xb 0x3ff1800",
                          "kill",
                          NULL};
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    E2E_HAS(o.text, "received: \"0\"");
    /* (the CPU may have set the accessed bit, 0x20) */
    E2E_MATCHES(o.text, "0x3ff1000:\t0x0000000003ff20[02]3");
    E2E_MATCHES(o.text, "0000000003ff1000: 0x0000000003ff20[02]3");
    E2E_HAS(o.text, "0000000003ff1800: 0x5a");
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_monitor_commands_qemu_users_type(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_out o;
    /* The kernel's scripts/gdb probe "monitor info version" and take a
     * non-empty answer for a usable remote (utils.probe_qemu). */
    static const char probe[] =
        "python print('lx probe:', gdb.execute('monitor info version', to_string=True) != '')";
    const char *cmds[] = {"monitor info version",
                          probe,
                          "monitor info registers",
                          "monitor info mem",
                          "monitor info tlb",
                          "stepi",
                          "monitor system_reset",
                          "maintenance flush register-cache",
                          "print $pc",
                          "monitor info kaslr",
                          "monitor info nonsense",
                          "monitor frobnicate",
                          "monitor reset now",
                          "kill",
                          NULL};
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    E2E_HAS(o.text, "kvmstub " KVMSTUB_VERSION "\n");
    E2E_HAS(o.text, "lx probe: True");
    E2E_MATCHES(o.text, "RIP=0000000000100000 RFL=00000002");
    E2E_HAS(o.text, "CS =0018 0000000000000000 ffffffff");
    E2E_MATCHES(o.text, "CR0=0000000080010033 CR2=0+ CR3=0000000003ff1000");
    E2E_HAS(o.text, "0000000000000000-0000000100000000 0000000100000000 -rw");
    E2E_HAS(o.text, "0000000000200000: 0000000000200000 --P-----W");
    E2E_HAS(o.text, "the guest is back at its entry point 0x100000");
    E2E_MATCHES(o.text, "\\$1 = .*0x100000 <_start>");
    E2E_HAS(o.text, "not a Linux kernel: 'monitor info kaslr' applies to a 64-bit bzImage");
    E2E_HAS(o.text, "unknown 'monitor info nonsense'; there are: info, info version, "
                    "info registers, info mem, info tlb, info kaslr");
    E2E_HAS(o.text, "unknown monitor command 'frobnicate'; the commands are: help info regs "
                    "reset system_reset serial input until catch xp snapshot record quit");
    E2E_HAS(o.text, "'monitor reset' takes no arguments (got 'now')");
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_extended_remote_run_kill_run(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "2")); /* prints bye, exits 42 */
    char t[64];
    snprintf(t, sizeof(t), "extended-remote :%d", s.port);
    struct e2e_out o;
    const char *cmds[] = {"run", "break exit_path", "run", "kill", "run", "monitor info version",
                          "kill", NULL};
    gdb_with(&o, t, cmds, GUEST);
    /* run starts the image afresh and runs it to its end: gdb sees the
     * exit, kvmstub stays... */
    E2E_HAS(o.text, "bye\n");
    E2E_HAS(o.text, "exited with code 052");
    /* ...run again stops at the breakpoint; kill ends the guest, not
     * kvmstub, and run starts it once more. */
    CU_ASSERT_EQUAL(e2e_count(o.text, "Breakpoint 1, exit_path ()"), 2);
    E2E_HAS(o.text, "kvmstub " KVMSTUB_VERSION);
    e2e_out_free(&o);
    CU_ASSERT_EQUAL(e2e_stub_wait(&s, 300), -1); /* still there */
    /* The next gdb finds the guest ended (no thread to show) and runs it
     * again; a plain "target remote" is told to use extended-remote. */
    const char *again[] = {"info threads", "run", NULL};
    gdb_with(&o, t, again, GUEST);
    E2E_HAS(o.text, "No threads.");
    E2E_HAS(o.text, "exited with code 052");
    CU_ASSERT_EQUAL(e2e_count(o.text, "New Thread"), 0);
    e2e_out_free(&o);
    const char *plain[] = {NULL};
    e2e_gdb(&o, s.port, NULL, plain, GUEST);
    E2E_HAS(o.text, "The target is not running (try extended-remote?)");
    e2e_out_free(&o);
    CU_ASSERT_EQUAL(e2e_stub_wait(&s, 300), -1);
    e2e_stub_kill(&s);
}

static void test_detach_lets_go(void)
{
    /* Mode 4 counts forever. gdb stops it, plants a breakpoint in the loop
     * and detaches: the guest runs on without it. The next gdb stops it
     * where it is, further along. */
    struct e2e_stub s;
    const char *args[] = {"--run", "--reg", "rdi=4", GUEST, NULL};
    CU_ASSERT_FATAL(e2e_stub_start(&s, args) == 0);
    struct e2e_out o;
    const char *first[] = {"break busy", "printf \"first: %u\\n\", (unsigned)counter", "detach",
                           NULL};
    e2e_gdb(&o, s.port, NULL, first, GUEST);
    unsigned a = 0, b = 0;
    const char *p = strstr(o.text, "first: ");
    CU_ASSERT_FATAL(p != NULL);
    sscanf(p, "first: %u", &a);
    e2e_out_free(&o);
    const char *second[] = {"printf \"second: %u\\n\", (unsigned)counter", "info breakpoints",
                            "print $pc", "detach", NULL};
    /* Each look detaches again, so a slow host only takes more looks. */
    for (double end = e2e_now() + E2E_TIMEOUT_S;;) {
        usleep(100000);
        e2e_gdb(&o, s.port, NULL, second, GUEST);
        p = strstr(o.text, "second: ");
        CU_ASSERT_FATAL(p != NULL);
        sscanf(p, "second: %u", &b);
        if (b > a || e2e_now() > end)
            break;
        e2e_out_free(&o);
    }
    CU_ASSERT(b > a);
    E2E_HAS(o.text, "No breakpoints or watchpoints.");
    E2E_MATCHES(o.text, "<busy(\\+[0-9]+)?>");
    char *log = e2e_stub_log(&s);
    E2E_HAS(log, "gdb detached; the guest runs on");
    free(log);
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_signals_refused_and_info_threads(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_out o;
    const char *cmds[] = {"info threads", "signal SIGUSR1", "print $pc", "kill", NULL};
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    E2E_MATCHES(o.text, "\\* 1 +Thread 1 \"CPU#0\" \\(long mode\\)");
    E2E_HAS(o.text, "kvmstub cannot deliver SIGUSR1 (gdb's signal 30) to the guest");
    E2E_MATCHES(o.text, "\\$1 = .*0x100000 <_start>"); /* it did not run */
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_qemu_start_options(void)
{
    /* -gdb tcp::PORT and -gdb unix:PATH, with -S; then -s, which is port
     * 1234 and needs that port free. */
    struct e2e_out o;
    const char *cmds[] = {"print $pc", "kill", NULL};
    char sock[64];
    snprintf(sock, sizeof(sock), "/tmp/kvmstub-e2e-%d.sock", (int)getpid());
    char dev[96];
    snprintf(dev, sizeof(dev), "unix:%s,server=on,wait=off", sock);
    const char *uargv[] = {KVMSTUB_BIN, "-S", "-gdb", dev, GUEST, NULL};
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", 1);
        dup2(null, 2);
        execv(uargv[0], (char *const *)uargv);
        _exit(127);
    }
    struct stat st;
    for (int i = 0; i < E2E_TIMEOUT_S * 100 && stat(sock, &st); i++)
        usleep(10000);
    CU_ASSERT_FATAL(stat(sock, &st) == 0 && S_ISSOCK(st.st_mode));
    char target[128];
    snprintf(target, sizeof(target), "remote %s", sock);
    gdb_with(&o, target, cmds, GUEST);
    E2E_MATCHES(o.text, "\\$1 = .*0x100000 <_start>");
    e2e_out_free(&o);
    int status;
    waitpid(pid, &status, 0);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT(stat(sock, &st) != 0); /* cleaned up */

    struct e2e_stub s;
    const char *args[] = {"-S", "-s", GUEST, NULL};
    /* e2e_stub_start adds --port 0 after these; -s must win for this test,
     * so check the line kvmstub prints instead. */
    (void)args;
    const char *sargv[] = {KVMSTUB_BIN, "-s", "-S", GUEST, NULL};
    pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", 1);
        dup2(null, 2);
        execv(sargv[0], (char *const *)sargv);
        _exit(127);
    }
    usleep(200000);
    for (int i = 0; i < E2E_TIMEOUT_S * 10; i++) {
        struct e2e_rsp c;
        if (e2e_rsp_connect(&c, 1234) == 0) {
            e2e_rsp_close(&c);
            break;
        }
        usleep(100000);
    }
    e2e_gdb(&o, 1234, NULL, cmds, GUEST);
    E2E_MATCHES(o.text, "\\$1 = .*0x100000 <_start>");
    e2e_out_free(&o);
    waitpid(pid, &status, 0);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    (void)s;
}

static void test_mi_session_as_an_ide(void)
{
    /* An IDE: MI, extended-remote, -exec-run, the register names (the new
     * ones among them) and their values in each mode of the boot sector. */
    struct e2e_stub s;
    const char *args[] = {"--gdb-arch", "amd64", "--mode", "real", "--load", "0x7c00", "--format",
                          "bin", MODES_BIN, NULL};
    CU_ASSERT_FATAL(e2e_stub_start(&s, args) == 0);
    struct e2e_mi mi;
    CU_ASSERT_FATAL(e2e_mi_start(&mi, MODES_ELF) == 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "-target-select extended-remote :%d", s.port);
    char *r = e2e_mi_cmd(&mi, cmd);
    E2E_HAS(r, "^connected");
    free(r);
    r = e2e_mi_cmd(&mi, "-exec-run");
    E2E_HAS(r, "^running");
    free(r);
    r = e2e_mi_wait(&mi, "*stopped", E2E_TIMEOUT_S * 1000);
    CU_ASSERT_PTR_NOT_NULL(r);
    free(r);
    r = e2e_mi_cmd(&mi, "-data-list-register-names");
    E2E_HAS(r, "\"rip\"");
    E2E_HAS(r, "\"cr0\"");
    E2E_HAS(r, "\"gdtr_base\"");
    E2E_HAS(r, "\"cs_attr\"");
    E2E_HAS(r, "\"dr7\"");
    /* the number of cr0 in this layout, for the values below */
    int cr0 = -1, idx = 0;
    for (const char *p = strstr(r, "register-names=["); p && *p; p++) {
        if (*p == '"') {
            const char *q = strchr(p + 1, '"');
            if (!q)
                break;
            if (q - p - 1 == 3 && strncmp(p + 1, "cr0", 3) == 0)
                cr0 = idx;
            idx++;
            p = q;
        }
    }
    free(r);
    CU_ASSERT_FATAL(cr0 > 0);
    /* As an IDE does: breakpoints first, then run; each stop shows cr0 as
     * that mode has it. */
    static const char *const marks[] = {"pm_mark", "lm_mark"};
    static const char *const want[] = {"0x11", "0x80000011"};
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof(cmd), "-break-insert *0x%llx", (unsigned long long)mark(marks[i]));
        r = e2e_mi_cmd(&mi, cmd);
        E2E_HAS(r, "^done,bkpt=");
        free(r);
    }
    for (int i = 0; i < 2; i++) {
        r = e2e_mi_cmd(&mi, i == 0 ? "-exec-run" : "-exec-continue");
        E2E_HAS(r, "^running");
        free(r);
        r = e2e_mi_wait(&mi, "*stopped", E2E_TIMEOUT_S * 1000);
        E2E_HAS(r, "reason=\"breakpoint-hit\"");
        free(r);
        snprintf(cmd, sizeof(cmd), "-data-list-register-values x %d", cr0);
        r = e2e_mi_cmd(&mi, cmd);
        char val[64];
        snprintf(val, sizeof(val), "{number=\"%d\",value=\"%s\"}", cr0, want[i]);
        E2E_HAS(r, val);
        free(r);
    }
    r = e2e_mi_cmd(&mi, "-target-detach");
    E2E_HAS(r, "^done");
    free(r);
    e2e_mi_stop(&mi);
    e2e_stub_kill(&s);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("e2e_conventions", NULL, NULL);
    CU_add_test(s, "control, segment, descriptor-table and debug registers",
                test_system_registers);
    CU_add_test(s, "one connection through real, protected and long mode (--gdb-arch amd64)",
                test_modes_one_connection_amd64);
    CU_add_test(s, "one connection through the modes, layout from the first (auto)",
                test_modes_one_connection_auto);
    CU_add_test(s, "physical memory: Qqemu.PhyMemMode and monitor xp", test_physical_memory);
    CU_add_test(s, "monitor commands QEMU users type; the lx scripts' probe",
                test_monitor_commands_qemu_users_type);
    CU_add_test(s, "extended-remote: run, kill, run", test_extended_remote_run_kill_run);
    CU_add_test(s, "detach lets the guest go; the next gdb stops it", test_detach_lets_go);
    CU_add_test(s, "signals refused; info threads", test_signals_refused_and_info_threads);
    CU_add_test(s, "QEMU's -S, -s and -gdb tcp:/unix:", test_qemu_start_options);
    CU_add_test(s, "an IDE's MI session over extended-remote", test_mi_session_as_an_ide);
}

int main(void)
{
    return test_main("test_e2e_conventions", register_suites, true);
}
