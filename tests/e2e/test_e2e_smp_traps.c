/* Page traps with several vCPUs, on the smp example (examples/smp: each
 * CPU calls count_once(cpu) `rounds` times, incrementing shared counters
 * under a spinlock): where int3 is not intercepted and DR0-DR3 do not fire
 * (the emulated machine, nested and paravirtual hosts), a breakpoint on a
 * one-byte instruction traps its whole code page and watchpoints trap
 * theirs, while every CPU runs from those pages. Breakpoint hits and
 * watched writes must each be reported once, by the thread that made
 * them, with no KVM error on any CPU, and the guest's own lock must still
 * exclude (its check at the end). Where int3 works the breakpoint tests
 * plant it instead, and must pass all the same. */
#include "e2e.h"
#include "testmain.h"

#include <CUnit/CUnit.h>
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

/* A breakpoint on count_once's first instruction, a one-byte push %ebp:
 * where neither int3 nor DR0-DR3 reach kvmstub (the emulated machine),
 * no two-byte trap fits there, and kvmstub traps the whole code page,
 * which every CPU runs from. Each of 100 hits in a row must be reported
 * once, by the thread that hit, without a KVM error on any CPU (the page
 * is lifted for one CPU's steps while the others are held). The checks
 * are those of test_e2e_smp's hundred hits, for any number of CPUs. */
static void hundred_one_byte_hits(unsigned ncpus)
{
    char args[32], script[4096];
    snprintf(args, sizeof(args), "--cpus %u", ncpus);
    size_t k = (size_t)snprintf(script, sizeof(script),
                                "break *count_once\n"
                                "set $wrong = 0\n"
                                "set $lost = 0\n"
                                "set $doubled = 0\n"
                                "set $i = 0\n");
    for (unsigned c = 0; c < ncpus; c++)
        k += (size_t)snprintf(script + k, sizeof(script) - k, "set $seen%u = 0\n", c);
    k += (size_t)snprintf(script + k, sizeof(script) - k,
                          "while $i < 100\n"
                          "  continue\n"
                          "  if $pc != count_once || cpu != $_thread - 1\n"
                          "    set $wrong = $wrong + 1\n"
                          "  end\n");
    for (unsigned c = 0; c < ncpus; c++)
        k += (size_t)snprintf(script + k, sizeof(script) - k,
                              "  if cpu == %u\n"
                              "    set $seen = $seen%u\n"
                              "    set $seen%u = $seen%u + 1\n"
                              "  end\n",
                              c, c, c, c);
    k += (size_t)snprintf(script + k, sizeof(script) - k,
                          "  if per_cpu_count[cpu] > $seen\n"
                          "    set $lost = $lost + 1\n"
                          "  end\n"
                          "  if per_cpu_count[cpu] < $seen\n"
                          "    set $doubled = $doubled + 1\n"
                          "  end\n"
                          "  set $i = $i + 1\n"
                          "end\n"
                          "printf \"one-byte hits: wrong %%d, lost %%d, doubled %%d; per CPU:\", "
                          "$wrong, $lost, $doubled\n");
    for (unsigned c = 0; c < ncpus; c++)
        k += (size_t)snprintf(script + k, sizeof(script) - k, "printf \" %%d\", $seen%u\n", c);
    snprintf(script + k, sizeof(script) - k, "printf \"\\n\"\nmonitor info\nkill\n");
    struct e2e_out o;
    double t0 = e2e_now();
    run(&o, args, script);
    E2E_HAS(o.text, "one-byte hits: wrong 0, lost 0, doubled 0; per CPU:");
    E2E_HAS(o.text, "hit Breakpoint 1, count_once (cpu=");
    E2E_LACKS(o.text, "SIGBUS");
    E2E_LACKS(o.text, "internal error");
    const char *h = strstr(o.text, "per CPU:");
    int total = 0, on[8] = {0};
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    h += strlen("per CPU:");
    for (unsigned c = 0; c < ncpus && c < 8; c++) {
        int used = 0;
        CU_ASSERT_FATAL(sscanf(h, " %d%n", &on[c], &used) == 1);
        total += on[c];
        h += used;
    }
    CU_ASSERT_EQUAL(total, 100);
    /* The emulated machine's method: the breakpoint traps the code page. */
    printf("\n    %u CPUs, 100 hits on a one-byte instruction in %.1f s: CPU 0 %d, CPU 1 %d%s\n",
           ncpus, e2e_now() - t0, on[0], on[1], ncpus > 2 ? ", ..." : "");
    if (strstr(o.text, "page traps on one-byte instructions"))
        printf("    (page traps, as on hosts without int3 interception)\n");
    e2e_out_free(&o);
}

static void test_one_byte_breakpoint_two_cpus(void)
{
    hundred_one_byte_hits(2);
}

static void test_one_byte_breakpoint_four_cpus(void)
{
    hundred_one_byte_hits(4);
}

/* A watchpoint on a counter the CPUs increment under the guest's lock,
 * `total` times in all: set once every CPU counts (at the first
 * count_once, whose breakpoint is after its one-byte first instruction),
 * it reports every write from then on, by the thread that wrote, with Old
 * and New one apart and each Old the previous New, until the guest ends
 * (its own check of the counters passing: status 0). code_page_count
 * lives on the code page every CPU runs (examples/smp/boot.S). */
static void watch_writes(const char *var, const char *args, unsigned total)
{
    char script[1024];
    snprintf(script, sizeof(script),
             "tbreak count_once\n"
             "continue\n"
             "watch %s\n"
             "printf \"watch from %%u\\n\", %s\n"
             "while %s < %u\n"
             "  continue\n"
             "end\n"
             "delete\n"
             "continue\n",
             var, var, var, total);
    struct e2e_out o;
    double t0 = e2e_now();
    run(&o, args, script);
    E2E_LACKS(o.text, "SIGBUS");
    E2E_LACKS(o.text, "internal error");
    char hit[128];
    snprintf(hit, sizeof(hit), "Thread [0-9] \"CPU#[0-9]\" hit (Hardware )?[Ww]atchpoint 2: %s", var);
    E2E_MATCHES(o.text, hit);
    E2E_HAS(o.text, "exited normally");
    const char *from = strstr(o.text, "watch from ");
    unsigned start = 0, seen = 0, bad = 0;
    CU_ASSERT_FATAL(from && sscanf(from, "watch from %u", &start) == 1 && start < total);
    unsigned prev = start;
    for (const char *p = strstr(from, "Old value = "); p; p = strstr(p + 1, "Old value = ")) {
        unsigned old = 0, new = 0;
        if (sscanf(p, "Old value = %u\nNew value = %u", &old, &new) != 2 || old != prev ||
            new != old + 1)
            bad++;
        prev = new;
        seen++;
    }
    printf("\n    %s, watch %s: %u writes reported in %.1f s, %u out of order\n", args, var,
           seen, e2e_now() - t0, bad);
    CU_ASSERT_EQUAL(seen, total - start);
    CU_ASSERT_EQUAL(bad, 0);
    e2e_out_free(&o);
}

static void test_watch_code_page_two_cpus(void)
{
    watch_writes("code_page_count", "--cpus 2 --cmdline rounds=5", 10);
}

static void test_watch_code_page_four_cpus_page_traps(void)
{
    watch_writes("code_page_count", "--cpus 4 --cmdline rounds=3 --watchpoints page-traps", 12);
}

/* shared_count shares its page with the guest's spinlock, which every CPU
 * takes with xchg: with the page trapped, that xchg must stay atomic (the
 * guest's own check at the end fails when two CPUs get the lock). */
static void test_watch_next_to_the_lock_two_cpus(void)
{
    watch_writes("shared_count", "--cpus 2 --cmdline rounds=5", 10);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("e2e_smp_traps", NULL, NULL);
    CU_add_test(s, "two CPUs: 100 hits in a row on a one-byte instruction, each by its thread",
                test_one_byte_breakpoint_two_cpus);
    CU_add_test(s, "four CPUs: 100 hits in a row on a one-byte instruction, each by its thread",
                test_one_byte_breakpoint_four_cpus);
    CU_add_test(s, "two CPUs: a watchpoint on the code page reports every write, Old/New in order",
                test_watch_code_page_two_cpus);
    CU_add_test(s, "four CPUs, --watchpoints page-traps: every write on the code page, in order",
                test_watch_code_page_four_cpus_page_traps);
    CU_add_test(s, "two CPUs: a watchpoint beside the guest's spinlock, its xchg still atomic",
                test_watch_next_to_the_lock_two_cpus);
}

int main(void)
{
    return test_main("test_e2e_smp_traps", register_suites, true);
}
