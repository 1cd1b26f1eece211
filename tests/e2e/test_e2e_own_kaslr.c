/* KASLR on the kernel built from source (examples/linux/own-kernel.sh,
 * CONFIG_RANDOMIZE_BASE=y), booted without nokaslr (issue 28 item 4):
 *   - before the guest runs, `monitor info kaslr` says the kernel has not
 *     chosen its place yet;
 *   - once the initramfs's init runs, `monitor info kaslr` gives the slide
 *     the kernel's own /proc/kallsyms shows (its _text minus vmlinux's);
 *   - on the first boot, the gdb command it prints, typed into a gdb
 *     without vmlinux, makes vmlinux's symbols right: a breakpoint on
 *     version_proc_show is hit with its source line when `cat /proc/version`
 *     is typed on the console, and a per-CPU variable keeps its offset (not
 *     slid); the other boots ask only for the slide, since reading
 *     vmlinux's DWARF costs a minute in the emulated machine;
 *   - on the second boot, with Linux's gdb scripts: examples/linux/kaslr.py's
 *     `kvmstub-kaslr` loads vmlinux at the slide, and after `lx-symbols`
 *     (which reloads vmlinux with a plain symbol-file) vmlinux's functions
 *     are still where the kernel's kallsyms puts them and the per-CPU
 *     variables still at their offsets;
 *   - three boots do not all share one slide.
 * The init prints `_text` and `version_proc_show` from /proc/kallsyms as
 * root (kvmstub.syms=, with kptr_restrict 1). */
#include "e2e.h"
#include "testmain.h"

#include <CUnit/CUnit.h>
#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BOOT_TIMEOUT_S 600
/* gdb reads vmlinux's DWARF: tens of seconds in the emulated machine. */
#define GDB_TIMEOUT_S 400
#define BOOTS 3

static char console_path[1024];

static int suite_init(void)
{
    if (access(E2E_OWN_BZIMAGE, R_OK) || access(E2E_OWN_VMLINUX, R_OK) ||
        access(E2E_LINUX_INITRD, R_OK)) {
        fprintf(stderr,
                "the own-kernel example's files are missing (%s, %s, %s): build them with "
                "'cmake --build %s --target own_kernel_assets linux_assets', then run this "
                "test again\n",
                E2E_OWN_BZIMAGE, E2E_OWN_VMLINUX, E2E_LINUX_INITRD, E2E_BUILD_DIR);
        return -1;
    }
    return e2e_console_create(console_path, sizeof(console_path), "e2e-own-kaslr");
}

static int suite_clean(void)
{
    e2e_console_remove(console_path);
    return 0;
}

/* The hex number after prefix in text, or 0. */
static uint64_t hex_after(const char *text, const char *prefix)
{
    const char *p = text ? strstr(text, prefix) : NULL;
    return p ? strtoull(p + strlen(prefix), NULL, 16) : 0;
}

/* The address the init printed for a symbol ("kvmstub-linux: sym ADDR T NAME"). */
static uint64_t kallsyms(const char *console, const char *name)
{
    char re_text[128];
    snprintf(re_text, sizeof(re_text), "kvmstub-linux: sym ([0-9a-f]+) [tT] %s\r?\n", name);
    regex_t re;
    regmatch_t m[2];
    uint64_t v = 0;
    if (regcomp(&re, re_text, REG_EXTENDED) == 0) {
        if (regexec(&re, console, 2, m, 0) == 0)
            v = strtoull(console + m[1].rm_so, NULL, 16);
        regfree(&re);
    }
    return v;
}

/* gdb without vmlinux on kvmstub at port: `monitor info kaslr`, then the
 * script. */
static int gdb_run(struct e2e_out *o, int port, const char *script)
{
    const char *cmds[] = {"set filename-display basename", "monitor info kaslr", NULL};
    struct e2e_gdb_opts opts = {.cmds = cmds, .script = script, .timeout_s = GDB_TIMEOUT_S};
    return e2e_gdb_run(o, port, &opts);
}

/* gdb without vmlinux runs the command `monitor info kaslr` prints, as a
 * user pastes it (vmlinux's path in), then breaks on version_proc_show,
 * which `cat /proc/version` typed on the console reaches: the breakpoint
 * is where the kernel's own kallsyms puts the function (k_vps, plus its
 * prologue) and is hit at the source line gdb placed it on; a per-CPU
 * variable keeps vmlinux's offset (v_cur), which KASLR does not move. */
static void symbols_at_slide(int port, uint64_t k_vps, uint64_t v_cur, uint64_t *slide,
                             uint64_t *text_virt, double *gdb_s)
{
    struct e2e_out o;
    char script[4096];
    snprintf(script, sizeof(script),
             "python\n"
             "import re\n"
             "out = gdb.execute('monitor info kaslr', to_string=True)\n"
             "cmd = re.search(r'^gdb: (add-symbol-file vmlinux .*)$', out, re.M).group(1)\n"
             "gdb.execute(cmd.replace(' vmlinux ', ' %s ', 1))\n"
             "end\n"
             "break version_proc_show\n"
             "monitor input cat /proc/version\n"
             "continue\n"
             "print &current_task\n"
             "delete\n"
             "detach\n",
             E2E_OWN_VMLINUX);
    double g0 = e2e_now();
    CU_ASSERT_EQUAL(gdb_run(&o, port, script), 0);
    *gdb_s = e2e_now() - g0;
    *slide = hex_after(o.text, "slide: 0x");
    *text_virt = hex_after(o.text, "kernel _text: virtual 0x");

    regex_t re;
    regmatch_t m[4];
    CU_ASSERT_EQUAL_FATAL(
        regcomp(&re, "Breakpoint 1 at 0x([0-9a-f]+): file ([^,\n]+), line ([0-9]+)\\.",
                REG_EXTENDED),
        0);
    bool placed = regexec(&re, o.text, 4, m, 0) == 0;
    regfree(&re);
    E2E_MATCHES(o.text, "Breakpoint 1 at 0x[0-9a-f]+: file [^,\n]+, line [0-9]+\\.");
    if (placed) {
        uint64_t at = strtoull(o.text + m[1].rm_so, NULL, 16);
        CU_ASSERT(at >= k_vps && at < k_vps + 64);
        char hit[256];
        snprintf(hit, sizeof(hit),
                 "\nBreakpoint 1, (0x[0-9a-f]+ in )?version_proc_show \\(m=0x[0-9a-f]+, "
                 "[^\n]*\\) at %.*s:%.*s\n",
                 (int)(m[2].rm_eo - m[2].rm_so), o.text + m[2].rm_so,
                 (int)(m[3].rm_eo - m[3].rm_so), o.text + m[3].rm_so);
        E2E_MATCHES(o.text, hit);
        printf("\n    breakpoint on version_proc_show at 0x%" PRIx64 " (kallsyms 0x%" PRIx64
               "), hit at %.*s:%.*s\n",
               at, k_vps, (int)(m[2].rm_eo - m[2].rm_so), o.text + m[2].rm_so,
               (int)(m[3].rm_eo - m[3].rm_so), o.text + m[3].rm_so);
    }
    char cur[96];
    snprintf(cur, sizeof(cur), "0x%" PRIx64 " <current_task>", v_cur);
    E2E_HAS(o.text, cur);
    e2e_out_free(&o);
}

/* gdb without vmlinux: `kvmstub-kaslr` (examples/linux/kaslr.py) loads it
 * at the slide, Linux's scripts are sourced from the build tree and
 * `lx-symbols` reloads vmlinux (and would load modules): afterwards
 * version_proc_show is still at the kernel's own address (k_vps) and
 * current_task at its per-CPU offset (v_cur), as with the pasted command. */
static void lx_symbols_at_slide(int port, uint64_t k_vps, uint64_t v_cur, uint64_t *slide,
                                uint64_t *text_virt, double *gdb_s)
{
    struct e2e_out o;
    char script[4096];
    snprintf(script, sizeof(script),
             "source %s\n"
             "kvmstub-kaslr %s\n"
             "source %s/vmlinux-gdb.py\n"
             "lx-symbols\n"
             "info address version_proc_show\n"
             "print &current_task\n"
             "detach\n",
             E2E_KASLR_PY, E2E_OWN_VMLINUX, E2E_OWN_TREE);
    double g0 = e2e_now();
    CU_ASSERT_EQUAL(gdb_run(&o, port, script), 0);
    *gdb_s = e2e_now() - g0;
    *slide = hex_after(o.text, "slide: 0x");
    *text_virt = hex_after(o.text, "kernel _text: virtual 0x");
    char want[256];
    snprintf(want, sizeof(want), "loaded at slide 0x%" PRIx64 "\n", *slide);
    E2E_HAS(o.text, want);
    /* lx-symbols ran and its reload of vmlinux went to the slide too, the
     * per-CPU section kept at 0. */
    E2E_HAS(o.text, "loading vmlinux");
    snprintf(want, sizeof(want),
             "loading vmlinux\nadd symbol table from file \"[^\"]*vmlinux\" at\n"
             "\t\\.data\\.\\.percpu_addr = 0x0\nwith other sections offset by 0x%" PRIx64 "\n",
             *slide);
    E2E_MATCHES(o.text, want);
    snprintf(want, sizeof(want), "Symbol \"version_proc_show\" is a function at address 0x%" PRIx64 ".",
             k_vps);
    E2E_HAS(o.text, want);
    snprintf(want, sizeof(want), "0x%" PRIx64 " <current_task>", v_cur);
    E2E_HAS(o.text, want);
    printf("\n    kvmstub-kaslr then lx-symbols: version_proc_show at 0x%" PRIx64
           " as kallsyms says, current_task at 0x%" PRIx64 "\n",
           k_vps, v_cur);
    e2e_out_free(&o);
}

/* One boot: the slide kvmstub says, checked against the kernel's own. */
static uint64_t boot_once(int n, bool with_symbols)
{
    CU_ASSERT_EQUAL_FATAL(truncate(console_path, 0), 0);
    struct e2e_stub stub;
    const char *args[] = {"--serial", console_path, "--initrd", E2E_LINUX_INITRD, "--cmdline",
                          "kvmstub.syms=_text,version_proc_show", E2E_OWN_BZIMAGE, NULL};
    double t0 = e2e_now();
    CU_ASSERT_EQUAL_FATAL(e2e_stub_start(&stub, args), 0);

    /* At the boot protocol's entry nothing is chosen yet. */
    const char *before[] = {"monitor info kaslr", "detach", NULL};
    struct e2e_out o;
    CU_ASSERT_EQUAL(e2e_gdb(&o, stub.port, NULL, before, NULL), 0);
    E2E_HAS(o.text, "the kernel has not chosen its place yet");
    if (n == 1)
        printf("\n    before boot: %s", strstr(o.text, "the kernel has not") ? strstr(o.text, "the kernel has not") : "");
    e2e_out_free(&o);

    char *console = e2e_console_wait(console_path, "kvmstub-linux# ", BOOT_TIMEOUT_S);
    CU_ASSERT_PTR_NOT_NULL_FATAL(console);
    double booted = e2e_now() - t0;
    uint64_t k_text = kallsyms(console, "_text");
    uint64_t k_vps = kallsyms(console, "version_proc_show");
    free(console);
    uint64_t v_text = e2e_symbol(E2E_OWN_VMLINUX, "_text");
    uint64_t v_cur = e2e_symbol(E2E_OWN_VMLINUX, "current_task");
    CU_ASSERT(k_text && k_vps && v_text && v_cur);

    uint64_t slide, text_virt;
    double gdb_s;
    if (with_symbols && n == 1)
        symbols_at_slide(stub.port, k_vps, v_cur, &slide, &text_virt, &gdb_s);
    else if (with_symbols)
        lx_symbols_at_slide(stub.port, k_vps, v_cur, &slide, &text_virt, &gdb_s);
    else {
        const char *ask[] = {"monitor info kaslr", "detach", NULL};
        double g0 = e2e_now();
        CU_ASSERT_EQUAL(e2e_gdb(&o, stub.port, NULL, ask, NULL), 0);
        gdb_s = e2e_now() - g0;
        slide = hex_after(o.text, "slide: 0x");
        text_virt = hex_after(o.text, "kernel _text: virtual 0x");
        e2e_out_free(&o);
    }
    printf("\n    boot %d: kvmstub: _text 0x%" PRIx64 ", slide 0x%" PRIx64 "; kernel: kallsyms "
           "_text 0x%" PRIx64 " - vmlinux _text 0x%" PRIx64 " = 0x%" PRIx64
           " (shell after %.1f s, gdb session %.1f s)\n",
           n, text_virt, slide, k_text, v_text, k_text - v_text, booted, gdb_s);
    CU_ASSERT_EQUAL(text_virt, k_text);
    CU_ASSERT_EQUAL(slide, k_text - v_text);
    e2e_stub_kill(&stub);
    return slide;
}

static void test_three_boots(void)
{
    uint64_t slides[BOOTS];
    for (int i = 0; i < BOOTS; i++)
        slides[i] = boot_once(i + 1, i < 2);
    /* The decompressor draws from RDRAND/RDTSC/the PIT: three equal slides
     * would mean kvmstub (or the test) sees no KASLR at all. */
    CU_ASSERT(slides[0] != slides[1] || slides[1] != slides[2]);
    CU_ASSERT(slides[0] != 0 && slides[1] != 0 && slides[2] != 0);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("e2e_own_kaslr", suite_init, suite_clean);
    CU_add_test(s,
                "3 boots with KASLR: monitor info kaslr says not chosen before boot, then the "
                "kernel's own slide; its gdb command makes a breakpoint on version_proc_show "
                "hit at its line; kvmstub-kaslr keeps the slide through lx-symbols; the slides "
                "differ",
                test_three_boots);
}

int main(void)
{
    return test_main("test_e2e_own_kaslr", register_suites, true);
}
