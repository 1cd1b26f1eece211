/* A kernel built from source (examples/linux/own-kernel.sh: tinyconfig,
 * DWARF, no CONFIG_KVM_GUEST and so no kvm-clock) with the busybox
 * initramfs of examples/linux, on the pc board, debugged with the real
 * gdb on its vmlinux, as a kernel developer starts (issues 28 and 30):
 *   - `hbreak start_kernel` set before the guest runs is hit, with one and
 *     two CPUs, over TCP and over --stdio (`target remote | kvmstub ...`);
 *   - after it the kernel boots on to the initramfs's init, which counts
 *     the CPUs the kernel brought up (1, 2): the PIT, the LAPIC timer and
 *     the startup IPIs carry a kernel that has no kvm-clock;
 *   - gdb attached to the idle two-CPU kernel lists both CPUs, each in
 *     kernel code, with function names and source lines from vmlinux.
 * Every boot passes `nokaslr` so that vmlinux's addresses are the
 * kernel's. The console goes to a file the test reads. */
#include "e2e.h"
#include "testmain.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Under the emulated machine the kernel takes tens of seconds to its init
 * and several to start_kernel (the decompressor); on hardware a second. */
#define BOOT_TIMEOUT_S 600
#define GDB_TIMEOUT_S 300

static char console_path[1024];

static int suite_init(void)
{
    if (access(E2E_OWN_BZIMAGE, R_OK) || access(E2E_OWN_VMLINUX, R_OK) ||
        access(E2E_LINUX_INITRD, R_OK)) {
        fprintf(stderr,
                "the own-kernel example's files are missing (%s, %s, %s); the default build "
                "never builds them: build them with 'cmake --build %s --target "
                "own_kernel_assets' (needs linux-source-6.1 and the tools .ci/deps installs, "
                "and a few minutes), then run this test again\n",
                E2E_OWN_BZIMAGE, E2E_OWN_VMLINUX, E2E_LINUX_INITRD, E2E_BUILD_DIR);
        return -1;
    }
    return e2e_console_create(console_path, sizeof(console_path), "e2e-own-kernel");
}

static int suite_clean(void)
{
    e2e_console_remove(console_path);
    return 0;
}

/* Waits until the console has printed needle; its seconds, or -1. */
static double console_wait(const char *needle, int timeout_s)
{
    double t0 = e2e_now();
    char *text = e2e_console_wait(console_path, needle, timeout_s);
    double s = text ? e2e_now() - t0 : -1;
    free(text);
    return s;
}

/* gdb in batch mode on vmlinux, connected with `target remote TARGET`,
 * running cmds (NULL-terminated). */
static int gdb_vmlinux(struct e2e_out *o, const char *target, const char *const *cmds)
{
    const char *all[32] = {"set filename-display basename"};
    int n = 1;
    for (int i = 0; cmds[i] && n < 31; i++)
        all[n++] = cmds[i];
    all[n] = NULL;
    struct e2e_gdb_opts opts = {
        .target = target, .cmds = all, .file = E2E_OWN_VMLINUX, .timeout_s = GDB_TIMEOUT_S};
    return e2e_gdb_run(o, 0, &opts);
}

/* gdb's report of the hit: "Breakpoint 1, start_kernel () at main.c:LINE"
 * (an hbreak's hit reads as a breakpoint's). */
#define START_KERNEL_HIT "Breakpoint 1, (0x[0-9a-f]+ in )?start_kernel \\(\\) at main\\.c:[0-9]+"

/* One boot over TCP: gdb sets `hbreak start_kernel` before the guest runs,
 * sees the hit, deletes it and detaches; the kernel boots on to its init. */
static void boot_over_tcp(const char *cpus)
{
    CU_ASSERT_EQUAL_FATAL(truncate(console_path, 0), 0);
    struct e2e_stub stub;
    const char *args[] = {"--cpus", cpus, "--serial", console_path, "--initrd", E2E_LINUX_INITRD,
                          "--cmdline", "nokaslr", E2E_OWN_BZIMAGE, NULL};
    double t0 = e2e_now();
    CU_ASSERT_EQUAL_FATAL(e2e_stub_start(&stub, args), 0);
    char target[32];
    snprintf(target, sizeof(target), ":%d", stub.port);
    const char *first[] = {"hbreak start_kernel", "continue", "delete", "detach", NULL};
    struct e2e_out o;
    CU_ASSERT_EQUAL(gdb_vmlinux(&o, target, first), 0);
    E2E_MATCHES(o.text, START_KERNEL_HIT);
    double hit = e2e_now() - t0;
    e2e_out_free(&o);

    double init = console_wait("kvmstub-linux: init reached", BOOT_TIMEOUT_S);
    CU_ASSERT(init >= 0);
    char want[64];
    snprintf(want, sizeof(want), "kvmstub-linux: cpus=%s", cpus);
    CU_ASSERT(console_wait(want, 60) >= 0);
    printf("\n    %s CPU(s): start_kernel after %.1f s, init %.1f s later (%s)\n", cpus, hit,
           init, getenv("KVMSTUB_EMULATED") ? "emulated" : "native");

    if (strcmp(cpus, "1") != 0) {
        /* A new gdb attaches to the idle kernel: every CPU is a thread, and
         * each is somewhere in the kernel gdb can name from vmlinux. */
        const char *look[] = {"info threads", NULL};
        CU_ASSERT_EQUAL(gdb_vmlinux(&o, target, look), 0);
        E2E_MATCHES(o.text, "\n\\* 1 +Thread 1 \"CPU#0\" \\([^\n]*\\) +(0x[0-9a-f]+ in )?"
                            "[a-z_][a-z_0-9.]* \\([^\n]*\\) at [a-z_0-9-]+\\.[chS]:[0-9]+");
        E2E_MATCHES(o.text, "\n +2 +Thread 2 \"CPU#1\" \\([^\n]*\\) +(0x[0-9a-f]+ in )?"
                            "[a-z_][a-z_0-9.]* \\([^\n]*\\) at [a-z_0-9-]+\\.[chS]:[0-9]+");
        E2E_LACKS(o.text, "?? (");
        e2e_out_free(&o);
    }
    e2e_stub_kill(&stub);
}

/* The same breakpoint over --stdio: gdb starts kvmstub itself. */
static void start_kernel_over_stdio(const char *cpus)
{
    char target[3072];
    snprintf(target, sizeof(target),
             "| %s --stdio --cpus %s --serial %s --initrd %s --cmdline nokaslr %s", KVMSTUB_BIN,
             cpus, console_path, E2E_LINUX_INITRD, E2E_OWN_BZIMAGE);
    const char *cmds[] = {"hbreak start_kernel", "continue", "info threads", NULL};
    struct e2e_out o;
    CU_ASSERT_EQUAL(gdb_vmlinux(&o, target, cmds), 0);
    E2E_MATCHES(o.text, START_KERNEL_HIT);
    /* The APs wait for the BSP's INIT and startup IPIs. */
    if (strcmp(cpus, "2") == 0)
        E2E_MATCHES(o.text, "\n +2 +Thread 2 \"CPU#1\" \\([^\n]*waiting for INIT");
    e2e_out_free(&o);
}

static void test_one_cpu_tcp(void)
{
    boot_over_tcp("1");
}

static void test_two_cpus_tcp(void)
{
    boot_over_tcp("2");
}

static void test_one_cpu_stdio(void)
{
    start_kernel_over_stdio("1");
}

static void test_two_cpus_stdio(void)
{
    start_kernel_over_stdio("2");
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("e2e_own_kernel", suite_init, suite_clean);
    CU_add_test(s, "1 CPU over TCP: hbreak start_kernel before boot is hit; init is reached",
                test_one_cpu_tcp);
    CU_add_test(s,
                "2 CPUs over TCP: hbreak start_kernel is hit; init counts 2 CPUs; info threads "
                "names both CPUs' kernel functions",
                test_two_cpus_tcp);
    CU_add_test(s, "1 CPU over --stdio: hbreak start_kernel before boot is hit",
                test_one_cpu_stdio);
    CU_add_test(s, "2 CPUs over --stdio: hbreak start_kernel is hit; CPU 1 waits for INIT",
                test_two_cpus_stdio);
}

int main(void)
{
    return test_main("test_e2e_own_kernel", register_suites, true);
}
