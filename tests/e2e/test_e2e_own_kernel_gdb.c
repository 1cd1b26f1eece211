/* Source-level debugging of a kernel built from source, as a kernel
 * developer types it (issue 28, items 2, 3 and 5): the real gdb on
 * own-vmlinux, the kernel of examples/linux/own-kernel.sh (DWARF, frame
 * pointers, GDB_SCRIPTS, HZ 1000) with two CPUs, `nokaslr`, and the
 * initramfs that holds the module (own-initramfs.cpio.gz). One boot
 * serves every test, in order; what a user would type on the guest's
 * console goes in with `monitor input`:
 *   1. vmlinux alone: the boot runs to the shell's prompt (`monitor
 *      until`); `info threads` names both CPUs; `break
 *      __do_sys_sethostname` is hit from `hostname kvmstub-test` with its
 *      source line; `bt` goes through do_syscall_64 to entry_SYSCALL_64;
 *      `info locals`, and a struct field by name before and after `finish`;
 *   2. Linux's gdb scripts (`source vmlinux-gdb.py`): lx-dmesg, lx-ps,
 *      lx-cpus, $lx_per_cpu and $lx_current on two CPUs; insmod, lx-lsmod,
 *      lx-symbols; a breakpoint in the module hit from `echo hi
 *      >/proc/kvmstub_demo` with its source line, `next` line by line in
 *      the module's function while the 1000 Hz timer ticks, `info
 *      locals`, `finish` with the value returned;
 *   3. gdb/MI with what examples/vscode/launch.json's "kvmstub: own
 *      kernel" makes VS Code's cppdbg send: -target-select remote,
 *      -break-insert, -exec-continue, -stack-list-frames,
 *      -stack-list-variables. */
#include "e2e.h"
#include "testmain.h"

#include <CUnit/CUnit.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Under the emulated machine the kernel takes tens of seconds to its
 * shell, and gdb reads vmlinux's DWARF slowly there too. */
#define GDB_TIMEOUT_S 600

static struct {
    struct e2e_stub stub;
    bool booted;      /* test 1 ran the kernel to its shell */
    bool module;      /* test 2 loaded the module */
    char target[32];  /* ":PORT" */
    char console[1024];
    double t0;
} S;

static int suite_init(void)
{
    if (access(E2E_OWN_BZIMAGE, R_OK) || access(E2E_OWN_VMLINUX, R_OK) ||
        access(E2E_OWN_INITRD, R_OK) || access(E2E_OWN_GDB_PY, R_OK) ||
        access(E2E_OWN_MODULES "/kvmstub_demo.ko", R_OK)) {
        fprintf(stderr,
                "the own-kernel example's files are missing (%s, %s, %s, %s, %s); the default "
                "build never builds them: build them with 'cmake --build %s --target "
                "linux_assets own_kernel_assets' (needs linux-source-6.1 and the tools "
                ".ci/deps installs), then run this test again\n",
                E2E_OWN_BZIMAGE, E2E_OWN_VMLINUX, E2E_OWN_INITRD, E2E_OWN_GDB_PY,
                E2E_OWN_MODULES "/kvmstub_demo.ko", E2E_BUILD_DIR);
        return -1;
    }
    if (e2e_console_create(S.console, sizeof(S.console), "e2e-own-gdb"))
        return -1;
    const char *args[] = {"--cpus", "2", "--serial", S.console, "--initrd", E2E_OWN_INITRD,
                          "--cmdline", "nokaslr", E2E_OWN_BZIMAGE, NULL};
    S.t0 = e2e_now();
    if (e2e_stub_start(&S.stub, args))
        return -1;
    snprintf(S.target, sizeof(S.target), ":%d", S.stub.port);
    return 0;
}

static int suite_clean(void)
{
    e2e_stub_kill(&S.stub);
    printf("\n    one boot, all tests: %.1f s (%s)\n", e2e_now() - S.t0,
           getenv("KVMSTUB_EMULATED") ? "emulated" : "native");
    e2e_console_remove(S.console);
    return 0;
}

/* gdb -batch on own-vmlinux as a user starts it, then each of cmds as
 * typed at its prompt (an -ex each, so that one failing command does not
 * hide the output of the others). Prints what gdb printed. */
static int gdb_session(struct e2e_out *o, const char *const *cmds)
{
    const char *all[64] = {"set width 0", "set filename-display basename"};
    int n = 2;
    for (int i = 0; cmds[i] && n < 63; i++)
        all[n++] = cmds[i];
    all[n] = NULL;
    struct e2e_gdb_opts opts = {
        .target = S.target, .cmds = all, .file = E2E_OWN_VMLINUX, .timeout_s = GDB_TIMEOUT_S};
    double t = e2e_now();
    int r = e2e_gdb_run(o, 0, &opts);
    printf("\n---- gdb (%.1f s) ----\n%s---- end of gdb ----\n", e2e_now() - t, o->text);
    return r;
}

/* 1. Only vmlinux: a system call reached from the console. */
static void test_syscall_from_console(void)
{
    const char *cmds[] = {
        /* The boot, up to the shell's prompt. */
        "monitor until kvmstub-linux#", "continue", "monitor until clear",
        "info threads",
        "break __do_sys_sethostname",
        "monitor input hostname kvmstub-test",
        "continue",
        "bt",
        "info locals",
        "p init_uts_ns.name.nodename",
        /* The system call's function proper (the two frames above it are
         * inlined into it): finish runs it to its return. */
        "up 2",
        "finish",
        "p init_uts_ns.name.nodename",
        "delete", "detach", NULL};
    struct e2e_out o;
    CU_ASSERT_EQUAL(gdb_session(&o, cmds), 0);
    S.booted = strstr(o.text, "kvmstub: the guest printed 'kvmstub-linux#'") != NULL;
    CU_ASSERT(S.booted);
    /* Both CPUs, each somewhere gdb names from vmlinux. */
    E2E_MATCHES(o.text, "\n\\* 1 +Thread 1 \"CPU#0\" \\([^\n]*\\) +(0x[0-9a-f]+ in )?"
                        "[A-Za-z_][A-Za-z_0-9.]* \\([^\n]*\\) at [a-z_0-9-]+\\.[chS]:[0-9]+");
    E2E_MATCHES(o.text, "\n +2 +Thread 2 \"CPU#1\" \\([^\n]*\\) +(0x[0-9a-f]+ in )?"
                        "[A-Za-z_][A-Za-z_0-9.]* \\([^\n]*\\) at [a-z_0-9-]+\\.[chS]:[0-9]+");
    /* The hit, on whichever CPU ran the shell, with its source line. */
    E2E_MATCHES(o.text, "Breakpoint 1, (0x[0-9a-f]+ in )?__do_sys_sethostname \\([^\n]*\\) at "
                        "sys\\.c:13[67][0-9]\n13[67][0-9]\t[^\n]+\n");
    /* The backtrace through the system call's entry. */
    E2E_MATCHES(o.text, "\n#0 [^\n]*__do_sys_sethostname \\([^\n]*\\) at sys\\.c:[0-9]+\n");
    E2E_MATCHES(o.text, "\n#[3-9] [^\n]* in do_syscall_64 \\([^\n]*\\) at common\\.c:[0-9]+\n|"
                        "\n#[3-9] +do_syscall_64 \\([^\n]*\\) at common\\.c:[0-9]+\n");
    E2E_MATCHES(o.text, "\n#[4-9] +0x[0-9a-f]+ in entry_SYSCALL_64 \\(\\) at entry_64\\.S:[0-9]+\n");
    /* info locals: the function's own locals (the optimiser keeps some in
     * registers only at some points). */
    E2E_MATCHES(o.text, "\nerrno = [^\n]+\ntmp = [^\n]+\n");
    /* The field before the system call and after finish. */
    E2E_HAS(o.text, "$1 = \"(none)\", '\\000' <repeats 58 times>");
    E2E_MATCHES(o.text, "\n#2  __x64_sys_sethostname \\(regs=0x[0-9a-f]+\\) at sys\\.c:1367\n");
    E2E_MATCHES(o.text, "\n0x[0-9a-f]+ in x64_sys_call \\([^\n]*\\) at syscalls_64\\.h:[0-9]+\n");
    E2E_MATCHES(o.text, "\nValue returned is \\$2 = 0\n");
    E2E_HAS(o.text, "$3 = \"kvmstub-test\", '\\000' <repeats 52 times>");
    E2E_LACKS(o.text, "internal-error");
    e2e_out_free(&o);
}

/* 2. Linux's gdb scripts, the module, next and finish. */
static void test_lx_scripts_and_module(void)
{
    CU_ASSERT_FATAL(S.booted);
    char source[PATH_MAX + 16], symbols[PATH_MAX + 16];
    snprintf(source, sizeof(source), "source %s", E2E_OWN_GDB_PY);
    snprintf(symbols, sizeof(symbols), "lx-symbols %s", E2E_OWN_MODULES);
    const char *cmds[] = {
        source,
        "lx-dmesg",
        "lx-ps",
        "lx-cpus",
        "p $lx_per_cpu(\"cpu_number\", 0)",
        "p $lx_per_cpu(\"cpu_number\", 1)",
        "p $lx_current(1).comm",
        "monitor input insmod kvmstub_demo.ko",
        /* The prompt again: insmod has returned (during the module's init
         * lx-lsmod counts insmod's reference). */
        "monitor until kvmstub-linux#", "continue", "monitor until clear",
        "lx-lsmod",
        symbols,
        "break kvmstub_demo_write",
        "monitor input echo hi >/proc/kvmstub_demo",
        "continue",
        "bt",
        "p $lx_current().comm",
        "x/s buf",
        /* SMAP among them where the CPU has it: the kernel reads user
         * memory only with EFLAGS.AC set, and gdb's reads must pass. */
        "p $cr4",
        "next", "next", "next", "next",
        "info locals",
        "p kvmstub_demo_state.last",
        "finish",
        "p kvmstub_demo_state.writes",
        "delete", "detach", NULL};
    struct e2e_out o;
    CU_ASSERT_EQUAL(gdb_session(&o, cmds), 0);
    /* lx-dmesg: the boot log, with the kernel's own timestamps. */
    E2E_MATCHES(o.text, "\\[ +0\\.000000\\] Linux version 6\\.1\\.[0-9]+ ");
    E2E_MATCHES(o.text, "\\] smp: Brought up 1 node, 2 CPUs\n");
    /* lx-ps: init (PID 1) and the shell it started. */
    E2E_MATCHES(o.text, "\n0x[0-9a-f]+ +1 +init\n");
    E2E_MATCHES(o.text, "\n0x[0-9a-f]+ +[0-9]+ +sh\n");
    E2E_HAS(o.text, "Online CPUs   : [0, 1]\n");
    E2E_HAS(o.text, "$1 = 0\n");
    E2E_HAS(o.text, "$2 = 1\n");
    E2E_HAS(o.text, "$3 = \"swapper/1\\000\\000\\000\\000\\000\\000\"\n");
    S.module = strstr(o.text, "] kvmstub_demo: loaded") &&
               strstr(o.text, "kvmstub: the guest printed 'kvmstub-linux#'");
    CU_ASSERT(S.module);
    /* lx-lsmod: the module, then lx-symbols loading its symbols. */
    E2E_MATCHES(o.text, "\n0x[0-9a-f]+ +kvmstub_demo +[0-9]+ +0 *\n");
    E2E_MATCHES(o.text, "loading @0x[0-9a-f]+: [^\n]*/kvmstub_demo\\.ko\n");
    /* The hit in the module, with its source line. */
    E2E_MATCHES(o.text, "Breakpoint 1, kvmstub_demo_write \\(file=[^\n]*len=3[^\n]*\\) at "
                        "kvmstub_demo\\.c:2[0-9]\n2[0-9]\t[^\n]+\n");
    E2E_MATCHES(o.text, "\n#1 +0x[0-9a-f]+ in [a-z_]*write[a-z_]* \\(");
    E2E_MATCHES(o.text, "in entry_SYSCALL_64 \\(\\) at entry_64\\.S:[0-9]+\n");
    E2E_HAS(o.text, "$4 = \"sh\", '\\000' <repeats 13 times>");
    /* The user's buffer, read from the kernel's side (past SMAP). */
    E2E_MATCHES(o.text, "\n0x[0-9a-f]+:\t\"hi\\\\n\"\n");
    /* Four nexts: the function's next four lines, one after the other,
     * never the timer's interrupt handler (1000 ticks a second). */
    E2E_HAS(o.text, "\n27\t\tif (copy_from_user(kvmstub_demo_state.last, buf, n))\n"
                    "29\t\tkvmstub_demo_state.last[n] = '\\0';\n"
                    "30\t\tif (n && kvmstub_demo_state.last[n - 1] == '\\n')\n"
                    "31\t\t\tkvmstub_demo_state.last[n - 1] = '\\0';\n"
                    "n = 3\n");
    E2E_HAS(o.text, "$6 = \"hi\\n\", '\\000' <repeats 28 times>");
    /* finish: back in the caller, with the value returned. */
    E2E_MATCHES(o.text, "\n0x[0-9a-f]+ in proc_reg_write \\([^\n]*\\) at inode\\.c:[0-9]+\n");
    E2E_MATCHES(o.text, "\nValue returned is \\$7 = 3\n");
    E2E_HAS(o.text, "$8 = 1\n");
    E2E_LACKS(o.text, "internal-error");
    e2e_out_free(&o);
}

static bool mi_ok(char *r, const char *want)
{
    bool ok = r && strstr(r, want);
    if (!ok)
        fprintf(stderr, "MI: expected %s in:\n%s\n", want, r ? r : "(timeout)");
    free(r);
    return ok;
}

/* 3. What VS Code's cppdbg sends with examples/vscode/launch.json's
 * "kvmstub: own kernel" (setupCommands, miDebuggerServerAddress,
 * postRemoteConnectCommands), then a breakpoint set in the editor. */
static void test_vscode_mi(void)
{
    CU_ASSERT_FATAL(S.module);
    struct e2e_mi mi;
    CU_ASSERT_EQUAL_FATAL(e2e_mi_start(&mi, E2E_OWN_VMLINUX), 0);
    char cmd[PATH_MAX + 64];
    CU_ASSERT(mi_ok(e2e_mi_cmd(&mi, "-enable-pretty-printing"), "^done"));
    snprintf(cmd, sizeof(cmd), "-interpreter-exec console \"source %s\"", E2E_OWN_GDB_PY);
    CU_ASSERT(mi_ok(e2e_mi_cmd(&mi, cmd), "^done"));
    snprintf(cmd, sizeof(cmd), "-target-select remote %s", S.target);
    CU_ASSERT_FATAL(mi_ok(e2e_mi_cmd(&mi, cmd), "^connected"));
    snprintf(cmd, sizeof(cmd), "-interpreter-exec console \"lx-symbols %s\"", E2E_OWN_MODULES);
    CU_ASSERT(mi_ok(e2e_mi_cmd(&mi, cmd), "^done"));
    CU_ASSERT(mi_ok(e2e_mi_cmd(&mi, "-break-insert -f kvmstub_demo_write"),
                    "func=\"kvmstub_demo_write\""));
    /* Typed on the guest's console while the debugger waits. */
    CU_ASSERT(mi_ok(e2e_mi_cmd(&mi, "-interpreter-exec console \"monitor input echo mi "
                                    ">/proc/kvmstub_demo\""),
                    "^done"));
    CU_ASSERT(mi_ok(e2e_mi_cmd(&mi, "-exec-continue"), "^running"));
    char *stop = e2e_mi_wait(&mi, "*stopped", GDB_TIMEOUT_S * 1000);
    CU_ASSERT(stop && strstr(stop, "reason=\"breakpoint-hit\"") &&
              strstr(stop, "func=\"kvmstub_demo_write\"") && strstr(stop, "/kvmstub_demo.c\",line="));
    if (stop)
        printf("\n---- MI stop ----\n%s\n", stop);
    free(stop);
    char *frames = e2e_mi_cmd(&mi, "-stack-list-frames");
    CU_ASSERT_PTR_NOT_NULL_FATAL(frames);
    printf("---- -stack-list-frames ----\n%s\n", frames);
    E2E_MATCHES(frames, "frame=\\{level=\"0\",addr=\"0x[0-9a-f]+\",func=\"kvmstub_demo_write\","
                        "file=\"[^\"]*/kvmstub_demo\\.c\",fullname=\"[^\"]*/kvmstub_demo\\.c\","
                        "line=\"2[0-9]\"");
    E2E_MATCHES(frames, "func=\"vfs_write\",file=\"[^\"]*/fs/read_write\\.c\"");
    E2E_MATCHES(frames, "func=\"do_syscall_64\",file=\"[^\"]*/entry/common\\.c\"");
    E2E_MATCHES(frames, "func=\"entry_SYSCALL_64\",file=\"[^\"]*/entry_64\\.S\"");
    free(frames);
    char *vars = e2e_mi_cmd(&mi, "-stack-list-variables --simple-values");
    CU_ASSERT_PTR_NOT_NULL_FATAL(vars);
    printf("---- -stack-list-variables --simple-values ----\n%s\n", vars);
    E2E_MATCHES(vars, "\\{name=\"file\",arg=\"1\",type=\"struct file \\*\",value=\"0x[0-9a-f]+\"\\}");
    E2E_MATCHES(vars, "\\{name=\"len\",arg=\"1\",type=\"size_t\",value=\"3\"\\}");
    /* The user's buffer the system call was handed (read past SMAP). */
    E2E_HAS(vars, " \\\"mi\\\\n\\\"\"}");
    free(vars);
    CU_ASSERT(mi_ok(e2e_mi_cmd(&mi, "-break-delete"), "^done"));
    CU_ASSERT(mi_ok(e2e_mi_cmd(&mi, "-target-detach"), "^done"));
    e2e_mi_stop(&mi);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("e2e_own_kernel_gdb", suite_init, suite_clean);
    CU_add_test(s,
                "gdb on vmlinux, 2 CPUs: boot to the shell; hostname on the console hits "
                "break __do_sys_sethostname with its line; bt to entry_SYSCALL_64; info "
                "locals; a struct field before and after finish; info threads",
                test_syscall_from_console);
    CU_add_test(s,
                "vmlinux-gdb.py: lx-dmesg, lx-ps, lx-cpus, $lx_per_cpu, $lx_current; insmod, "
                "lx-lsmod, lx-symbols; the module's function hit from the console, next "
                "line by line, info locals, finish",
                test_lx_scripts_and_module);
    CU_add_test(s,
                "gdb/MI as VS Code's cppdbg drives it: -target-select remote, -break-insert "
                "in the module, -exec-continue, -stack-list-frames, -stack-list-variables",
                test_vscode_mi);
}

int main(void)
{
    return test_main("test_e2e_own_kernel_gdb", register_suites, true);
}
