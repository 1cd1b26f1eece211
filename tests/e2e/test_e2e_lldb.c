/* kvmstub driven by the real lldb (Debian's LLDB 14) in batch mode, as a
 * user of `gdb-remote PORT` drives it: registers, memory against the
 * image's bytes, disassembly, memory writes, stepping, breakpoints,
 * watchpoints, Ctrl-C, detach and kill. Then, packet by packet, the places
 * where LLDB and gdb want different answers: the 'x' reply's form and the
 * reply to 'k', with gdb 13 checked to stay on 'm'. */
#include "e2e.h"
#include "testmain.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CKERNEL EXAMPLES_BIN "/ckernel.elf"
#define TARGET E2E_GUEST_ELF

static bool start_ckernel(struct e2e_stub *s)
{
    const char *args[] = {CKERNEL, NULL};
    return e2e_stub_start(s, args) == 0;
}

/* "0x00100000: fc 48 ..." as lldb's memory read prints n bytes at addr. */
static void memory_line(char *out, size_t cap, uint64_t addr, const uint8_t *b, size_t n)
{
    size_t k = (size_t)snprintf(out, cap, "0x%08llx:", (unsigned long long)addr);
    for (size_t i = 0; i < n && k + 4 < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, " %02x", b[i]);
}

static void test_registers_memory_disassembly_kill(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(start_ckernel(&s));
    uint8_t image[0x300];
    CU_ASSERT_FATAL(e2e_image_bytes(CKERNEL, 0x100000, image, sizeof(image)) == 0);
    uint64_t counter = e2e_symbol(CKERNEL, "counter");
    CU_ASSERT_FATAL(counter != 0);
    char dump[] = "/tmp/e2e-lldb-dump-XXXXXX";
    int fd = mkstemp(dump);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    char read_binary[256], write_cmd[128], read_back[64];
    /* The whole start of the image in one go, written raw to a file: every
     * byte value the code holds, '#', '$', '}' and '*' among them, through
     * the x packet's escapes. */
    snprintf(read_binary, sizeof(read_binary),
             "memory read --force --binary --outfile %s --count %zu 0x100000", dump, sizeof(image));
    /* Bytes the protocol must escape, written and read back. */
    snprintf(write_cmd, sizeof(write_cmd), "memory write 0x%llx 0x23 0x24 0x7d 0x2a",
             (unsigned long long)counter);
    snprintf(read_back, sizeof(read_back), "memory read --count 4 0x%llx",
             (unsigned long long)counter);
    const char *cmds[] = {
        "register read rip rsp cr0 efer",
        "register read --all",
        "memory read --count 16 0x100000",
        read_binary,
        "disassemble --start-address 0x100000 --count 3",
        write_cmd,
        read_back,
        "expression/x counter",
        "kill",
        NULL,
    };
    struct e2e_out o;
    e2e_lldb(&o, s.port, cmds, CKERNEL);

    E2E_MATCHES(o.text, "rip = 0x0000000000100000 +ckernel.elf`_start");
    E2E_MATCHES(o.text, "cr0 = 0x0000000080010033");
    E2E_MATCHES(o.text, "efer = 0x0000000000000500");
    /* Every register of every set in the target description. */
    E2E_MATCHES(o.text, "^general:$");
    E2E_MATCHES(o.text, "^float:$");
    E2E_MATCHES(o.text, "^vector:$");
    E2E_MATCHES(o.text, "^system:$");
    static const char *const regs[] = {
        "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15", "rip", "eflags", "cs", "ss", "ds", "es", "fs", "gs", "st0", "st1",
        "st2", "st3", "st4", "st5", "st6", "st7", "fctrl", "fstat", "ftag", "fiseg", "fioff",
        "foseg", "fooff", "fop", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
        "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "mxcsr", "fs_base",
        "gs_base", "k_gs_base", "cr0", "cr2", "cr3", "cr4", "cr8", "efer",
    };
    for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
        char re[64];
        snprintf(re, sizeof(re), "^ +%s = (0x[0-9a-f]+|\\{)", regs[i]);
        E2E_MATCHES(o.text, re);
    }
    E2E_MATCHES(o.text, "fctrl = 0x0000037f");
    E2E_MATCHES(o.text, "mxcsr = 0x00001f80");

    char line[128];
    memory_line(line, sizeof(line), 0x100000, image, 16);
    E2E_HAS(o.text, line);
    char *got = NULL;
    FILE *f = fopen(dump, "rb");
    if (f) {
        got = calloc(1, sizeof(image) + 1);
        size_t n = fread(got, 1, sizeof(image) + 1, f);
        fclose(f);
        CU_ASSERT_EQUAL(n, sizeof(image));
        CU_ASSERT(memcmp(got, image, sizeof(image)) == 0);
    }
    CU_ASSERT_PTR_NOT_NULL(got);
    free(got);
    unlink(dump);

    /* start.S begins with cld, then two lea. */
    E2E_MATCHES(o.text, "0x100000 <\\+0>: +cld");
    E2E_MATCHES(o.text, "0x100001 <\\+1>: +leaq +0x[0-9a-f]+\\(%rip\\), %rdi");
    E2E_MATCHES(o.text, "0x100008 <\\+8>: +leaq +0x[0-9a-f]+\\(%rip\\), %rcx");

    snprintf(line, sizeof(line), "0x%08llx: 23 24 7d 2a", (unsigned long long)counter);
    E2E_HAS(o.text, line);
    E2E_MATCHES(o.text, "\\(unsigned long\\) \\$0 = 0x0*2a7d2423");

    E2E_HAS(o.text, "Process 1 exited with status = 9 (0x00000009)");
    E2E_LACKS(o.text, "failed to send the k packet");
    E2E_LACKS(o.text, "error:");
    CU_ASSERT_EQUAL(e2e_stub_wait(&s, E2E_TIMEOUT_S * 1000), 0);
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_step_breakpoint_watchpoint(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(start_ckernel(&s));
    const char *cmds[] = {
        "breakpoint set --name factorial",
        "continue",
        "thread backtrace",
        "thread step-inst",
        "thread step-over",
        "breakpoint delete 1",
        "breakpoint set --name count_up",
        "continue",
        "watchpoint set variable counter",
        "continue",
        "continue",
        "watchpoint delete 1",
        "breakpoint delete 2",
        "continue",
        NULL,
    };
    struct e2e_out o;
    e2e_lldb(&o, s.port, cmds, CKERNEL);
    E2E_MATCHES(o.text, "Breakpoint 1: where = ckernel.elf`factorial \\+ [0-9]+ at main.c:22");
    E2E_MATCHES(o.text, "stop reason = breakpoint 1.1\n +frame #0: 0x[0-9a-f]+ "
                        "ckernel.elf`factorial\\(n=5\\) at main.c:22");
    E2E_MATCHES(o.text, "frame #1: 0x[0-9a-f]+ ckernel.elf`main at main.c:49");
    E2E_MATCHES(o.text, "frame #2: 0x[0-9a-f]+ ckernel.elf`_start at start.S:25");
    E2E_MATCHES(o.text, "stop reason = instruction step into\n +frame #0: 0x[0-9a-f]+ "
                        "ckernel.elf`factorial\\(n=5\\) at main.c:22");
    E2E_MATCHES(o.text, "stop reason = step over\n +frame #0: 0x[0-9a-f]+ "
                        "ckernel.elf`factorial\\(n=5\\) at main.c:24");
    E2E_MATCHES(o.text, "ckernel.elf`count_up\\(times=100\\) at main.c:30");
    E2E_HAS(o.text, "Watchpoint created: Watchpoint 1: addr = 0x00101000 size = 8 state = enabled "
                    "type = w");
    E2E_HAS(o.text, "Watchpoint 1 hit:\nold value: 0\nnew value: 1");
    E2E_HAS(o.text, "Watchpoint 1 hit:\nold value: 1\nnew value: 2");
    CU_ASSERT_EQUAL(e2e_count(o.text, "stop reason = watchpoint 1"), 2);
    /* The guest's serial output reaches lldb's console; it ends in hlt. */
    E2E_HAS(o.text, "ckernel: hello from 64-bit long mode");
    E2E_HAS(o.text, "5! = 120");
    E2E_HAS(o.text, "counter = 100");
    E2E_MATCHES(o.text, "ckernel.elf`_start at start.S:29");
    E2E_LACKS(o.text, "error:");
    /* lldb kills what it is attached to when a batch run ends, silently. */
    CU_ASSERT_EQUAL(e2e_stub_wait(&s, E2E_TIMEOUT_S * 1000), 0);
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_ctrl_c_detach_and_attach_again(void)
{
    /* Mode 1 prints "hello" and spins: once kvmstub's trace shows that
     * output going to lldb, the guest is at the loop and only an interrupt
     * stops it. Waiting for the 'c' alone let a slow machine (valgrind in
     * the emulated one) interrupt it before it had left _start. lldb in
     * batch mode shows nothing while the process runs, so its output
     * cannot tell. */
    struct e2e_stub s;
    const char *stub_args[] = {"--trace", "--reg", "rdi=1", TARGET, NULL};
    CU_ASSERT_FATAL(e2e_stub_start(&s, stub_args) == 0);
    char remote[64];
    snprintf(remote, sizeof(remote), "gdb-remote %d", s.port);
    const char *argv[] = {"lldb", "--no-lldbinit", "--batch", "-o", remote, "-o", "continue",
                          "-o", "thread backtrace", "-o", "detach", TARGET, NULL};
    struct e2e_out o;
    /* The newline may leave in an O packet of its own: a slow machine's
     * loop thread can drain the UART between "hello" and "\n". */
    e2e_run_sigint(&o, argv, s.log_path, "-> \\$O([0-9a-f]{2})*0a#", "<- interrupt (0x03)",
                   E2E_TIMEOUT_S);
    E2E_HAS(o.text, "stop reason = signal SIGINT");
    E2E_MATCHES(o.text, "frame #0: 0x[0-9a-f]+ e2e_target64.elf`spin");
    E2E_HAS(o.text, "Process 1 detached");
    e2e_out_free(&o);
    /* Detached, the guest runs on (as under QEMU) and kvmstub waits for
     * the next client, which stops it where it is. */
    CU_ASSERT_EQUAL(e2e_stub_wait(&s, 200), -1);
    char *log = e2e_stub_log(&s);
    E2E_HAS(log, "gdb detached; the guest runs on");
    free(log);
    const char *again[] = {"register read rip", "kill", NULL};
    e2e_lldb(&o, s.port, again, TARGET);
    E2E_MATCHES(o.text, "rip = 0x[0-9a-f]+ +e2e_target64.elf`spin");
    E2E_HAS(o.text, "Process 1 exited with status = 9 (0x00000009)");
    CU_ASSERT_EQUAL(e2e_stub_wait(&s, E2E_TIMEOUT_S * 1000), 0);
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

/* The x reply's payload with its binary escapes undone. */
static size_t unescape(const char *in, size_t n, uint8_t *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        out[k++] = in[i] == '}' && i + 1 < n ? (uint8_t)(in[++i] ^ 0x20) : (uint8_t)in[i];
    return k;
}

static void expect_x(struct e2e_rsp *c, bool b_form, const uint8_t *want)
{
    char r[256];
    uint8_t got[64];
    int n = e2e_rsp_cmd(c, "x100000,10", r, sizeof(r));
    CU_ASSERT_FATAL(n > 0);
    size_t k = unescape(r, (size_t)n, got);
    if (b_form) {
        CU_ASSERT(k == 17 && got[0] == 'b' && memcmp(got + 1, want, 16) == 0);
    } else {
        CU_ASSERT(k == 16 && memcmp(got, want, 16) == 0);
    }
}

static void test_x_reply_form_follows_the_client(void)
{
    uint8_t want[16];
    CU_ASSERT_FATAL(e2e_image_bytes(TARGET, 0x100000, want, sizeof(want)) == 0);
    struct e2e_stub s;
    /* Each client here must find the guest where the last one left it. */
    const char *args[] = {"--on-detach", "stop", "--reg", "rdi=0", TARGET, NULL};
    CU_ASSERT_FATAL(e2e_stub_start(&s, args) == 0);
    char r[4096];

    /* gdb 16 uses x only when the stub advertises binary-upload, and wants
     * the 'b'; LLDB 14 probes with x0,0 and wants the bare data. */
    struct e2e_rsp c;
    CU_ASSERT_FATAL(e2e_rsp_connect(&c, s.port) == 0);
    CU_ASSERT(e2e_rsp_cmd(&c, "qSupported:xmlRegisters=i386,arm,mips,arc;multiprocess+", r,
                          sizeof(r)) > 0);
    E2E_HAS(r, ";binary-upload+");
    expect_x(&c, true, want);
    CU_ASSERT(e2e_rsp_cmd(&c, "x0,0", r, sizeof(r)) > 0);
    CU_ASSERT_STRING_EQUAL(r, "OK");
    expect_x(&c, false, want);
    e2e_rsp_close(&c);

    /* A new connection starts in gdb's form; a client that announced
     * binary-upload keeps it even if it probes. */
    for (double end = e2e_now() + E2E_TIMEOUT_S; e2e_now() < end; usleep(10000)) {
        char *log = e2e_stub_log(&s);
        bool gone = strstr(log, "gdb disconnected") != NULL;
        free(log);
        if (gone)
            break;
    }
    CU_ASSERT_FATAL(e2e_rsp_connect(&c, s.port) == 0);
    CU_ASSERT(e2e_rsp_cmd(&c, "qSupported:multiprocess+;binary-upload+", r, sizeof(r)) > 0);
    CU_ASSERT(e2e_rsp_cmd(&c, "x0,0", r, sizeof(r)) > 0);
    CU_ASSERT_STRING_EQUAL(r, "OK");
    expect_x(&c, true, want);

    /* LLDB's other questions get cheap, sane answers. */
    CU_ASSERT(e2e_rsp_cmd(&c, "qHostInfo", r, sizeof(r)) > 0);
    /* "x86_64-unknown-none", hex-encoded as LLDB reads it */
    E2E_HAS(r, "triple:7838365f36342d756e6b6e6f776e2d6e6f6e65;ptrsize:8;endian:little;");
    E2E_HAS(r, "watchpoint_exceptions_received:after;");
    CU_ASSERT(e2e_rsp_cmd(&c, "qProcessInfo", r, sizeof(r)) > 0);
    E2E_HAS(r, "pid:1;");
    E2E_HAS(r, "triple:7838365f36342d756e6b6e6f776e2d6e6f6e65;");
    CU_ASSERT(e2e_rsp_cmd(&c, "QListThreadsInStopReply", r, sizeof(r)) > 0);
    CU_ASSERT_STRING_EQUAL(r, "OK");
    CU_ASSERT(e2e_rsp_cmd(&c, "?", r, sizeof(r)) > 0);
    E2E_MATCHES(r, "^T05thread:1;threads:1;thread-pcs:100000;");
    CU_ASSERT(e2e_rsp_cmd(&c, "qSupportsDetachAndStayStopped:", r, sizeof(r)) > 0);
    CU_ASSERT_STRING_EQUAL(r, "OK");
    CU_ASSERT(e2e_rsp_cmd(&c, "QThreadSuffixSupported", r, sizeof(r)) == 0);

    /* k: the exit status LLDB waits for, then kvmstub ends. */
    CU_ASSERT(e2e_rsp_cmd(&c, "k", r, sizeof(r)) > 0);
    CU_ASSERT_STRING_EQUAL(r, "X09");
    CU_ASSERT_EQUAL(e2e_stub_wait(&s, E2E_TIMEOUT_S * 1000), 0);
    e2e_rsp_close(&c);
    e2e_stub_kill(&s);
}

static void test_gdb_13_reads_memory_with_m(void)
{
    uint8_t want[4];
    CU_ASSERT_FATAL(e2e_image_bytes(TARGET, 0x100000, want, sizeof(want)) == 0);
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    const char *cmds[] = {"set debug remote 1", "print/x *(unsigned char (*)[4])0x100000",
                          "set debug remote 0", "kill", NULL};
    struct e2e_out o;
    e2e_gdb(&o, s.port, NULL, cmds, TARGET);
    char line[128];
    snprintf(line, sizeof(line), "$1 = {0x%x, 0x%x, 0x%x, 0x%x}", want[0], want[1], want[2],
             want[3]);
    E2E_HAS(o.text, line);
    E2E_MATCHES(o.text, "Sending packet: \\$m100000,4#");
    E2E_LACKS(o.text, "Sending packet: $x");
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

/* examples/ckernel.lldb, run the way examples/README.md shows. */
static void test_ckernel_example_script(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(start_ckernel(&s));
    char remote[64];
    snprintf(remote, sizeof(remote), "gdb-remote %d", s.port);
    const char *argv[] = {"lldb", "--no-lldbinit", "--batch", "-o", remote,
                          "-s", EXAMPLES_SRC "/ckernel.lldb", CKERNEL, NULL};
    struct e2e_out o;
    e2e_run(&o, argv, E2E_TIMEOUT_S);
    E2E_MATCHES(o.text, "stop reason = breakpoint 1.1\n +frame #0: 0x[0-9a-f]+ "
                        "ckernel.elf`main at main.c:43");
    E2E_MATCHES(o.text, "stop reason = step in\n +frame #0: 0x[0-9a-f]+ "
                        "ckernel.elf`factorial\\(n=5\\) at main.c:22");
    E2E_MATCHES(o.text, "frame #4: 0x[0-9a-f]+ ckernel.elf`factorial\\(n=5\\) at main.c:24");
    E2E_MATCHES(o.text, "frame #6: 0x[0-9a-f]+ ckernel.elf`_start at start.S:25");
    E2E_HAS(o.text, "Return value: (unsigned long) $0 = 1");
    E2E_HAS(o.text, "(unsigned int) n = 2\n");
    E2E_HAS(o.text, "(unsigned int) n = 3\n");
    E2E_HAS(o.text, "(unsigned int) n = 5\n(unsigned long) result = 120\n");
    E2E_HAS(o.text, "(unsigned long) counter = 0\n");
    E2E_HAS(o.text, "old value: 0\nnew value: 1");
    E2E_HAS(o.text, "old value: 1\nnew value: 2");
    E2E_HAS(o.text, "old value: 2\nnew value: 3");
    E2E_HAS(o.text, "(unsigned int) i = 2\n");
    E2E_HAS(o.text, "5! = 120\n");
    E2E_HAS(o.text, "counter = 100\n");
    E2E_HAS(o.text, "(unsigned long) counter = 100\n");
    E2E_MATCHES(o.text, "cr0 = 0x0000000080010033");
    E2E_MATCHES(o.text, "0x100000 <\\+0>: +cld");
    E2E_HAS(o.text, "Process 1 exited with status = 9 (0x00000009)");
    E2E_LACKS(o.text, "error:");
    CU_ASSERT_EQUAL(e2e_stub_wait(&s, E2E_TIMEOUT_S * 1000), 0);
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("e2e_lldb", NULL, NULL);
    CU_add_test(s, "lldb: registers, memory against the image, disassembly, memory write, kill",
                test_registers_memory_disassembly_kill);
    CU_add_test(s, "lldb: breakpoint, backtrace, step, next, watchpoint",
                test_step_breakpoint_watchpoint);
    CU_add_test(s, "lldb: Ctrl-C, detach, attach again, kill", test_ctrl_c_detach_and_attach_again);
    CU_add_test(s, "lldb: examples/ckernel.lldb", test_ckernel_example_script);
    CU_add_test(s, "raw RSP: x reply in the client's form, LLDB's queries, k",
                test_x_reply_form_follows_the_client);
    CU_add_test(s, "gdb 13 reads memory with m, not x", test_gdb_13_reads_memory_with_m);
}

int main(void)
{
    return test_main("test_e2e_lldb", register_suites, true);
}
