/* A real Linux kernel (Debian's, with the busybox initramfs of
 * examples/linux) on the pc board, debugged with the real gdb. One boot
 * serves every check, in order, as a kernel developer's session goes:
 *   1. gdb sets a breakpoint on kernel_init before the kernel has mapped
 *      itself; it is hit once the kernel runs there;
 *   2. the initramfs's init prints its marker on the console;
 *   3. a line typed on the console (a terminal: kvmstub --serial - on a
 *      pty) reaches the shell, and its answer comes back;
 *   4. a new gdb attaches to the idle kernel (two CPUs: --cpus 2, two
 *      threads), breaks on chdir's entry when
 *      the shell runs `cd /`, and three stepi stay in that function;
 *   5. Ctrl-C stops the idle kernel (the figures are printed);
 *   6. `reboot -f` in the shell ends kvmstub with status 0, gdb sees the
 *      end, and the terminal is as kvmstub found it.
 * Addresses come from the symbols examples/linux/assets.sh read from the
 * kernel's own /proc/kallsyms (nokaslr), not from the -dbg package. */
#include "e2e.h"
#include "testmain.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/* Under the emulated machine a boot takes tens of seconds; on hardware
 * a second or two. */
#define BOOT_TIMEOUT_S 900
#define STEP_TIMEOUT_S 300

static struct {
    bool up;
    struct e2e_stub stub;
    int master, slave; /* the pty kvmstub has as its terminal */
    char *out;         /* everything the console printed */
    size_t len, cap, seen;
    struct termios before;
    char *map;         /* vmlinux-kallsyms.map */
    size_t map_len;
} L = {.master = -1, .slave = -1};

/* ---- symbols ---- */

static int load_map(void)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s", E2E_LINUX_SYMBOLS);
    char *dot = strrchr(path, '.');
    if (!dot)
        return -1;
    strcpy(dot, ".map");
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    L.map = malloc((size_t)n + 1);
    L.map_len = fread(L.map, 1, (size_t)n, f);
    L.map[L.map_len] = 0;
    fclose(f);
    return 0;
}

/* The address of a kernel symbol and of the one after it (its end). */
static bool symbol(const char *name, uint64_t *addr, uint64_t *end)
{
    size_t nl = strlen(name);
    for (char *line = L.map; line && *line;) {
        char *next = strchr(line, '\n');
        char *stop = next ? next : line + strlen(line);
        /* "ADDRESS TYPE NAME": the name follows the line's last space. */
        char *sp = NULL;
        for (char *p = line; p < stop; p++)
            if (*p == ' ')
                sp = p;
        size_t len = sp ? (size_t)(stop - sp - 1) : 0;
        if (sp && len == nl && strncmp(sp + 1, name, nl) == 0) {
            *addr = strtoull(line, NULL, 16);
            *end = next ? strtoull(next + 1, NULL, 16) : *addr + 1;
            return true;
        }
        line = next ? next + 1 : NULL;
    }
    return false;
}

/* ---- the console ---- */

/* Reads what the console printed so far (waiting up to ms). */
static void console_read(int ms)
{
    struct pollfd pf = {.fd = L.master, .events = POLLIN};
    while (poll(&pf, 1, ms) > 0) {
        if (L.cap - L.len < 4096)
            L.out = realloc(L.out, L.cap = L.cap ? L.cap * 2 : 65536);
        ssize_t n = read(L.master, L.out + L.len, L.cap - L.len - 1);
        if (n <= 0)
            break;
        L.len += (size_t)n;
        L.out[L.len] = 0;
        ms = 0;
    }
}

/* Waits until the console, past what was consumed, prints needle. */
static bool console_wait(const char *needle, int timeout_s)
{
    double end = e2e_now() + timeout_s;
    do {
        console_read(100);
        char *p = L.out ? strstr(L.out + L.seen, needle) : NULL;
        if (p) {
            L.seen = (size_t)(p - L.out) + strlen(needle);
            return true;
        }
    } while (e2e_now() < end);
    fprintf(stderr, "the console did not print \"%s\" in %d s; it printed:\n%s\n", needle,
            timeout_s, L.out ? L.out : "(nothing)");
    return false;
}

static void console_type(const char *text)
{
    CU_ASSERT_EQUAL(write(L.master, text, strlen(text)), (ssize_t)strlen(text));
}

/* ---- gdb/MI ---- */

static bool mi_ok(char *r, const char *want)
{
    bool ok = r && strstr(r, want);
    if (!ok)
        fprintf(stderr, "MI: expected %s in:\n%s\n", want, r ? r : "(timeout)");
    free(r);
    return ok;
}

/* The next *stopped record (waiting up to timeout_s). */
static char *mi_stopped(struct e2e_mi *mi, int timeout_s)
{
    return e2e_mi_wait(mi, "*stopped", timeout_s * 1000);
}

static uint64_t mi_addr(const char *stopped)
{
    const char *a = stopped ? strstr(stopped, "addr=\"") : NULL;
    return a ? strtoull(a + 6, NULL, 16) : 0;
}

static void mi_connect(struct e2e_mi *mi)
{
    CU_ASSERT_EQUAL_FATAL(e2e_mi_start(mi, E2E_LINUX_SYMBOLS), 0);
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "-target-select remote :%d", L.stub.port);
    CU_ASSERT_FATAL(mi_ok(e2e_mi_cmd(mi, cmd), "^connected"));
}

/* ---- the suite ---- */

static int suite_init(void)
{
    if (access(E2E_LINUX_KERNEL, R_OK) || access(E2E_LINUX_INITRD, R_OK) ||
        access(E2E_LINUX_SYMBOLS, R_OK)) {
        fprintf(stderr,
                "the Linux example's files are missing (%s, %s, %s); the default build "
                "never downloads them: fetch and build them with "
                "'cmake --build %s --target linux_assets' (needs apt-get and the network), "
                "then run this test again\n",
                E2E_LINUX_KERNEL, E2E_LINUX_INITRD, E2E_LINUX_SYMBOLS, E2E_BUILD_DIR);
        return -1;
    }
    if (load_map())
        return -1;
    L.master = posix_openpt(O_RDWR | O_NOCTTY);
    if (L.master < 0 || grantpt(L.master) || unlockpt(L.master))
        return -1;
    L.slave = open(ptsname(L.master), O_RDWR | O_NOCTTY);
    if (L.slave < 0 || tcgetattr(L.slave, &L.before))
        return -1;
    /* Not --run: gdb comes first, to set a breakpoint before the boot. */
    const char *args[] = {"--serial", "-", "--cpus", "2", "--initrd", E2E_LINUX_INITRD,
                          "--cmdline", E2E_LINUX_CMDLINE, E2E_LINUX_KERNEL, NULL};
    if (e2e_stub_start_io(&L.stub, args, L.slave, L.slave))
        return -1;
    L.up = true;
    return 0;
}

static int suite_clean(void)
{
    if (L.up)
        e2e_stub_kill(&L.stub);
    if (L.master >= 0)
        close(L.master);
    if (L.slave >= 0)
        close(L.slave);
    free(L.out);
    free(L.map);
    return 0;
}

static void test_breakpoint_set_before_boot(void)
{
    uint64_t addr, end;
    CU_ASSERT_FATAL(symbol("kernel_init", &addr, &end));
    struct e2e_mi mi;
    mi_connect(&mi);
    /* The kernel has not even been unpacked there yet. */
    CU_ASSERT(mi_ok(e2e_mi_cmd(&mi, "-break-insert *kernel_init"), "^done"));
    CU_ASSERT(mi_ok(e2e_mi_cmd(&mi, "-exec-continue"), "^running"));
    char *st = mi_stopped(&mi, BOOT_TIMEOUT_S);
    CU_ASSERT_PTR_NOT_NULL(st);
    if (st) {
        E2E_HAS(st, "reason=\"breakpoint-hit\"");
        E2E_HAS(st, "func=\"kernel_init\"");
        CU_ASSERT_EQUAL(mi_addr(st), addr);
    }
    free(st);
    CU_ASSERT(mi_ok(e2e_mi_cmd(&mi, "-break-delete"), "^done"));
    CU_ASSERT(mi_ok(e2e_mi_cmd(&mi, "-exec-continue"), "^running"));
    /* This gdb goes away with the kernel running: it runs on. */
    kill(mi.pid, SIGKILL);
    waitpid(mi.pid, NULL, 0);
    mi.pid = 0;
    e2e_mi_stop(&mi);
}

static void test_init_reached(void)
{
    CU_ASSERT_FATAL(console_wait("kvmstub-linux: init reached", BOOT_TIMEOUT_S));
    /* --cpus 2: the MP table names two CPUs, and the kernel brought the
     * second up with INIT and startup IPIs through the in-kernel LAPICs. */
    CU_ASSERT(console_wait("kvmstub-linux: cpus=2", 60));
}

static void test_console_input_reaches_the_shell(void)
{
    CU_ASSERT_FATAL(console_wait("kvmstub-linux# ", BOOT_TIMEOUT_S));
    /* A terminal sends CR for Enter: kvmstub passes it as is (raw), and
     * the guest's tty turns it into a newline, as behind a serial line. */
    console_type("echo $((6*7))-answer\r");
    CU_ASSERT(console_wait("42-answer", 120));
    CU_ASSERT(console_wait("kvmstub-linux# ", 120));
}

static void test_syscall_breakpoint_and_stepi(void)
{
    uint64_t chdir, chdir_end;
    CU_ASSERT_FATAL(symbol("__x64_sys_chdir", &chdir, &chdir_end));
    struct e2e_mi mi;
    mi_connect(&mi); /* attaching stops the idle kernel */
    char *r = e2e_mi_cmd(&mi, "-interpreter-exec console \"monitor info\"");
    CU_ASSERT_PTR_NOT_NULL(r);
    if (r) {
        E2E_HAS(r, "board:         pc, 2 CPUs");
        /* CPU 0 (the thread gdb selects) may be handling a tick just then. */
        E2E_MATCHES(r, "state:         (halted \\(hlt\\)|stopped)");
    }
    free(r);
    /* A thread per CPU, both idle in hlt. */
    r = e2e_mi_cmd(&mi, "-thread-info");
    CU_ASSERT_PTR_NOT_NULL(r);
    if (r) {
        CU_ASSERT_EQUAL(e2e_count(r, "{id=\""), 2);
        E2E_HAS(r, "name=\"CPU#1\"");
    }
    free(r);
    CU_ASSERT(mi_ok(e2e_mi_cmd(&mi, "-break-insert *__x64_sys_chdir"), "^done"));
    CU_ASSERT(mi_ok(e2e_mi_cmd(&mi, "-exec-continue"), "^running"));
    console_type("cd /\r");
    char *st = mi_stopped(&mi, STEP_TIMEOUT_S);
    CU_ASSERT_PTR_NOT_NULL(st);
    if (st) {
        E2E_HAS(st, "reason=\"breakpoint-hit\"");
        E2E_HAS(st, "func=\"__x64_sys_chdir\"");
        CU_ASSERT_EQUAL(mi_addr(st), chdir);
    }
    free(st);
    CU_ASSERT(mi_ok(e2e_mi_cmd(&mi, "-break-delete"), "^done"));
    /* Three instructions on, still in chdir: no interrupt handler. */
    uint64_t last = chdir;
    for (int i = 0; i < 3; i++) {
        CU_ASSERT(mi_ok(e2e_mi_cmd(&mi, "-exec-step-instruction"), "^running"));
        st = mi_stopped(&mi, STEP_TIMEOUT_S);
        CU_ASSERT_PTR_NOT_NULL(st);
        uint64_t a = mi_addr(st);
        if (st)
            E2E_HAS(st, "func=\"__x64_sys_chdir\"");
        CU_ASSERT(a > last && a < chdir_end);
        last = a;
        free(st);
    }
    /* Detaching lets the kernel run on; the shell finishes the cd. */
    CU_ASSERT(mi_ok(e2e_mi_cmd(&mi, "-target-detach"), "^done"));
    e2e_mi_stop(&mi);
    CU_ASSERT(console_wait("kvmstub-linux# ", 120));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static struct e2e_rsp client;
static bool client_up;

static void test_ctrl_c_stops_the_idle_kernel(void)
{
    CU_ASSERT_EQUAL_FATAL(e2e_rsp_connect(&client, L.stub.port), 0);
    client_up = true;
    char r[4096];
    CU_ASSERT(e2e_rsp_cmd(&client, "?", r, sizeof(r)) > 0); /* attach stop */
    enum { ROUNDS = 10 };
    double ms[ROUNDS];
    for (int i = 0; i < ROUNDS; i++) {
        CU_ASSERT_EQUAL(e2e_rsp_send(&client, "vCont;c"), 0);
        usleep(300 * 1000); /* idle again: halted in KVM */
        double t0 = e2e_now();
        e2e_rsp_send_raw(&client, "\x03", 1);
        int n;
        do
            n = e2e_rsp_recv(&client, r, sizeof(r), STEP_TIMEOUT_S * 1000);
        while (n > 0 && r[0] == 'O');
        ms[i] = (e2e_now() - t0) * 1000;
        CU_ASSERT(n > 0 && strncmp(r, "T02", 3) == 0);
    }
    qsort(ms, ROUNDS, sizeof(ms[0]), cmp_double);
    printf("\n    Ctrl-C to stop reply, idle Linux: median %.2f ms, max %.2f ms (%s)\n",
           ms[ROUNDS / 2], ms[ROUNDS - 1], getenv("KVMSTUB_EMULATED") ? "emulated" : "native");
    /* 100 ms on hardware; the emulated machine is 10-50 times slower. */
    CU_ASSERT(ms[ROUNDS - 1] < (getenv("KVMSTUB_EMULATED") ? 2000 : 100));
}

static void test_reboot_ends_kvmstub(void)
{
    CU_ASSERT_FATAL(client_up);
    CU_ASSERT_EQUAL(e2e_rsp_send(&client, "vCont;c"), 0);
    console_type("reboot -f\r");
    char r[4096];
    int n;
    do
        n = e2e_rsp_recv(&client, r, sizeof(r), STEP_TIMEOUT_S * 1000);
    while (n > 0 && r[0] == 'O');
    CU_ASSERT(n > 0 && strcmp(r, "W00") == 0);
    e2e_rsp_close(&client);
    client_up = false;
    CU_ASSERT_EQUAL(e2e_stub_wait(&L.stub, 60 * 1000), 0);
    L.up = false;
    /* kvmstub gave the terminal back as it found it. */
    struct termios now;
    CU_ASSERT_EQUAL(tcgetattr(L.slave, &now), 0);
    CU_ASSERT_EQUAL(now.c_lflag & (ECHO | ICANON | ISIG), L.before.c_lflag & (ECHO | ICANON | ISIG));
    CU_ASSERT_EQUAL(now.c_iflag & ICRNL, L.before.c_iflag & ICRNL);
    char *log = e2e_stub_log(&L.stub);
    E2E_HAS(log, "the guest reset the machine (a reboot)");
    free(log);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("e2e_linux", suite_init, suite_clean);
    CU_add_test(s, "a breakpoint set before boot on kernel_init is hit",
                test_breakpoint_set_before_boot);
    CU_add_test(s, "the initramfs's init prints its marker", test_init_reached);
    CU_add_test(s, "a line typed on the console reaches the shell and comes back",
                test_console_input_reaches_the_shell);
    CU_add_test(s, "gdb attaches to the idle kernel; chdir's entry; three stepi stay in it",
                test_syscall_breakpoint_and_stepi);
    CU_add_test(s, "Ctrl-C stops the idle kernel", test_ctrl_c_stops_the_idle_kernel);
    CU_add_test(s, "reboot -f ends kvmstub with status 0", test_reboot_ends_kvmstub);
}

int main(void)
{
    return test_main("test_e2e_linux", register_suites, true);
}
