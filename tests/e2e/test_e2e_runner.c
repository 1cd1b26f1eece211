/* kvmstub as a CI pipeline uses it: many runners at once, stops on console
 * text and on port I/O, time limits, and the exit statuses a script tests. */
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
#include <unistd.h>

#define GUEST E2E_GUEST_ELF

struct run {
    pid_t pid;
    int out, err; /* pipes */
    char stdout_text[4096];
    size_t out_len;
    int status;
};

static bool emulated(void)
{
    const char *e = getenv("KVMSTUB_EMULATED");
    return e && strcmp(e, "1") == 0;
}

/* Starts kvmstub with args (NULL-terminated), stdout and stderr on pipes
 * of their own, stdin from /dev/null. */
static void run_start(struct run *r, const char *const *args)
{
    memset(r, 0, sizeof(*r));
    int o[2], e[2];
    CU_ASSERT_FATAL(pipe(o) == 0 && pipe(e) == 0);
    const char *argv[32] = {KVMSTUB_BIN};
    size_t n = 1;
    for (; args[n - 1] && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    r->pid = fork();
    if (r->pid == 0) {
        dup2(o[1], 1);
        dup2(e[1], 2);
        close(o[0]);
        close(e[0]);
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(o[1]);
    close(e[1]);
    r->out = o[0];
    r->err = e[0];
}

/* Collects its stdout and waits for its end; false on timeout (then it is
 * killed). */
static bool run_wait(struct run *r, int timeout_ms)
{
    double end = e2e_now() + timeout_ms / 1000.0;
    int fds[2] = {r->out, r->err};
    bool open_fds[2] = {true, true};
    static char sink[4096];
    while (open_fds[0] || open_fds[1]) {
        struct pollfd pf[2];
        nfds_t k = 0;
        for (int i = 0; i < 2; i++)
            if (open_fds[i])
                pf[k++] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        int ms = (int)((end - e2e_now()) * 1000);
        if (ms <= 0 || poll(pf, k, ms) == 0) {
            kill(r->pid, SIGKILL);
            waitpid(r->pid, NULL, 0);
            return false;
        }
        for (nfds_t i = 0; i < k; i++) {
            if (!pf[i].revents)
                continue;
            bool is_out = pf[i].fd == r->out;
            char *dst = is_out ? r->stdout_text + r->out_len : sink;
            size_t room = is_out ? sizeof(r->stdout_text) - 1 - r->out_len : sizeof(sink);
            ssize_t got = read(pf[i].fd, dst, room ? room : 1);
            if (got <= 0) {
                open_fds[is_out ? 0 : 1] = false;
                continue;
            }
            if (is_out)
                r->out_len += (size_t)got;
        }
    }
    r->stdout_text[r->out_len] = 0;
    close(r->out);
    close(r->err);
    int st;
    waitpid(r->pid, &st, 0);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return true;
}

/* Fifty; ten in a sanitized build, where each runner costs as much as
 * several and the concurrency paths are the same. */
static int runners_at_once(void)
{
    return e2e_sanitized() ? 10 : 50;
}

static void test_runners_at_once(void)
{
    /* The seed demo as a CI job runs it: no port given, so no two runners
     * fight over 1234. */
    const int N = runners_at_once();
    static struct run runs[50];
    const char *args[] = {"--run",      "--serial", "-",       "--on-hlt",     "exit",
                          "--reg",      "rax=2",    "--reg",   "rbx=2",        EXAMPLES_DEMO,
                          NULL};
    for (int i = 0; i < N; i++)
        run_start(&runs[i], args);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        CU_ASSERT(run_wait(&runs[i], E2E_TIMEOUT_S * 1000));
        if (runs[i].status == 0 && strcmp(runs[i].stdout_text, "4\n") == 0)
            ok++;
        else
            fprintf(stderr, "runner %d: status %d, output '%s'\n", i, runs[i].status,
                    runs[i].stdout_text);
    }
    CU_ASSERT_EQUAL(ok, N);
}

static void test_until_without_gdb(void)
{
    /* Mode 0 prints hello, counts, prints done: --until hello ends it after
     * hello with status 0, and nothing after the match is printed. */
    struct run r;
    const char *args[] = {"--no-gdb", "--serial", "-", "--reg", "rdi=0", "--until", "llo", GUEST,
                          NULL};
    run_start(&r, args);
    CU_ASSERT_FATAL(run_wait(&r, E2E_TIMEOUT_S * 1000));
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_STRING_EQUAL(r.stdout_text, "hello");
    /* A text that never comes: the guest runs to its end. */
    const char *never[] = {"--no-gdb", "--serial", "-", "--on-hlt", "exit", "--reg", "rdi=0",
                           "--until", "goodbye", GUEST, NULL};
    run_start(&r, never);
    CU_ASSERT_FATAL(run_wait(&r, E2E_TIMEOUT_S * 1000));
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_STRING_EQUAL(r.stdout_text, "hello\ndone\n");
}

static void test_until_under_gdb(void)
{
    /* Mode 1 prints hello and spins: the text stops it, gdb shows a stop
     * with the text, and a later 'monitor until' adds another. */
    struct e2e_stub s;
    const char *args[] = {"--reg", "rdi=1", "--until", "hello", GUEST, NULL};
    CU_ASSERT_FATAL(e2e_stub_start(&s, args) == 0);
    struct e2e_out o;
    const char *cmds[] = {"continue", "info registers rip", "monitor info", "monitor until",
                          "monitor until clear", "kill", NULL};
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    /* The output ends at the match; kvmstub's line starts on a line of its
     * own. */
    E2E_HAS(o.text, "hello\nkvmstub: the guest printed 'hello'\n");
    E2E_HAS(o.text, "Program received signal SIGTRAP");
    /* Stopped soon after the text: in the loop, or still on the way out
     * of puts when the output was collected at once (a flush kick right
     * after the last byte: seen in the emulated machine). */
    E2E_MATCHES(o.text, "rip +0x[0-9a-f]+ +0x[0-9a-f]+ <(spin|puts)");
    E2E_HAS(o.text, "until:         'hello'");
    E2E_HAS(o.text, "stops when the guest prints 'hello'");
    E2E_HAS(o.text, "no more texts to stop at");
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_catch_io(void)
{
    /* The first OUT to the UART's transmit register (a coalesced one, which
     * must exit while the catch is there), then the debug-exit port before
     * the guest ends. */
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "2"));
    struct e2e_out o;
    const char *cmds[] = {"monitor catch io 0x3f8 out",
                          "monitor catch io 0xf4",
                          "monitor catch",
                          "continue",
                          "print/c $al",
                          "monitor catch delete 1",
                          "continue",
                          "print $al",
                          "monitor info",
                          "continue",
                          NULL};
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    E2E_HAS(o.text, "catch 1: the guest stops after an OUT on port 0x3f8");
    E2E_HAS(o.text, "2: an IN or OUT on port 0xf4, 0 hits");
    E2E_HAS(o.text, "kvmstub: port 0x3f8: out of 1 byte, value 0x62 ('b') (catch 1)");
    E2E_HAS(o.text, "$1 = 98 'b'");
    E2E_HAS(o.text, "catch 1 deleted");
    E2E_HAS(o.text, "ye\n"); /* the rest of "bye" */
    E2E_HAS(o.text, "kvmstub: port 0xf4: out of 1 byte, value 0x2a ('*') (catch 2)");
    E2E_HAS(o.text, "$2 = 42");
    E2E_MATCHES(o.text, "last catch: +port 0xf4: out of 1 byte, value 0x2a");
    /* The catch stopped it before the exit; continuing lets it end. */
    E2E_HAS(o.text, "exited with code 052");
    e2e_out_free(&o);
    CU_ASSERT_EQUAL(e2e_stub_wait(&s, E2E_TIMEOUT_S * 1000), 42);
    e2e_stub_kill(&s);
}

static void test_timeout(void)
{
    /* Mode 1 never ends: --timeout 2 ends it with 124 and names its last
     * line. The upper bound only tells "ended by the timeout" from "ended
     * much later by something else", with room for the slowest host (a
     * loaded emulated machine under a sanitizer); the figure is printed. */
    struct run r;
    const char *args[] = {"--no-gdb", "--serial", "-", "--reg", "rdi=1", "--timeout", "2", GUEST,
                          NULL};
    double t0 = e2e_now();
    run_start(&r, args);
    CU_ASSERT_FATAL(run_wait(&r, E2E_TIMEOUT_S * 1000));
    double took = e2e_now() - t0;
    fprintf(stderr, "test_e2e_runner: --timeout 2 ended the guest after %.2f s%s\n", took,
            emulated() ? " (emulated machine)" : "");
    CU_ASSERT_EQUAL(r.status, 124);
    CU_ASSERT(took >= 2.0);
    CU_ASSERT(took < 30.0);
    CU_ASSERT_STRING_EQUAL(r.stdout_text, "hello\n");
}

static void test_timeout_under_gdb(void)
{
    /* gdb waiting in continue is told the guest ended, with status 124.
     * gdb must be connected before the time is up: under emulation gdb
     * alone takes seconds to start. */
    struct e2e_stub s;
    const char *limit = emulated() ? "30" : "3";
    const char *args[] = {"--run", "--reg", "rdi=1", "--timeout", limit, GUEST, NULL};
    CU_ASSERT_FATAL(e2e_stub_start(&s, args) == 0);
    struct e2e_out o;
    const char *cmds[] = {"continue", NULL};
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    E2E_HAS(o.text, "exited with code 0174");
    e2e_out_free(&o);
    CU_ASSERT_EQUAL(e2e_stub_wait(&s, E2E_TIMEOUT_S * 1000), 124);
    char *log = e2e_stub_log(&s);
    char want[128];
    snprintf(want, sizeof(want), "--timeout: the guest did not end within %s s; its last line was "
                                 "'hello'",
             limit);
    E2E_HAS(log, want);
    free(log);
    e2e_stub_kill(&s);
}

static void test_exit_statuses(void)
{
    static const struct {
        const char *mode;
        int status;
        const char *why;
    } cases[] = {
        {"2", 42, "the guest's value on the debug-exit port"},
        {"6", 128 + 11, "a triple fault (SIGSEGV) with no gdb to look"},
        {"7", 128 + SIGBUS, "an internal error (SIGBUS) with no gdb to look"},
        {"0", 128 + 5, "a halt (SIGTRAP) with no gdb to look and --on-hlt stop"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char reg[16];
        snprintf(reg, sizeof(reg), "rdi=%s", cases[i].mode);
        const char *args[] = {"--no-gdb", "--reg", reg, GUEST, NULL};
        struct run r;
        run_start(&r, args);
        CU_ASSERT_FATAL(run_wait(&r, E2E_TIMEOUT_S * 1000));
        if (r.status != cases[i].status)
            fprintf(stderr, "%s: status %d, expected %d\n", cases[i].why, r.status,
                    cases[i].status);
        CU_ASSERT_EQUAL(r.status, cases[i].status);
    }
    /* Bad input: 2. */
    const char *bad[][4] = {{"--until", "", GUEST, NULL},
                            {"--timeout", "soon", GUEST, NULL},
                            {"--no-gdb", "--port", "5", GUEST}};
    for (size_t i = 0; i < 3; i++) {
        const char *args[6] = {bad[i][0], bad[i][1], bad[i][2], bad[i][3], NULL};
        if (i == 2)
            args[4] = NULL;
        struct run r;
        run_start(&r, args);
        CU_ASSERT_FATAL(run_wait(&r, E2E_TIMEOUT_S * 1000));
        CU_ASSERT_EQUAL(r.status, 2);
    }
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("e2e_runner", NULL, NULL);
    static char name[80];
    snprintf(name, sizeof(name), "%d runners of the demo at once all print 4 and exit 0",
             runners_at_once());
    CU_add_test(s, name, test_runners_at_once);
    CU_add_test(s, "--until without gdb exits 0 after the text", test_until_without_gdb);
    CU_add_test(s, "--until under gdb stops the guest", test_until_under_gdb);
    CU_add_test(s, "monitor catch io on the UART and the debug-exit port", test_catch_io);
    CU_add_test(s, "--timeout 2 ends a spinning guest with 124", test_timeout);
    CU_add_test(s, "--timeout under gdb: gdb sees exit code 124", test_timeout_under_gdb);
    CU_add_test(s, "exit statuses of runners", test_exit_statuses);
}

int main(void)
{
    return test_main("test_e2e_runner", register_suites, true);
}
