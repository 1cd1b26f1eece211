/* Soak: a million mixed packets (steps, register reads, memory reads,
 * breakpoint insertions and removals) against one kvmstub, with no error
 * and less than 1 MiB of growth in its resident memory from the first tenth
 * of them to the end. Inside the emulated machine, where each packet costs
 * 10-50 times more, 100,000 (a leak of 12 bytes a packet still fails the
 * bound), and 10,000 in a sanitized build there; KVMSTUB_SOAK_PACKETS sets the
 * count. The test's name says it. */
#include "e2e.h"
#include "testmain.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUEST E2E_GUEST_ELF

static char reply[1 << 17];

static long soak_packets(void)
{
    const char *env = getenv("KVMSTUB_SOAK_PACKETS");
    /* A sanitized build checks each packet's memory accesses and finds
     * leaks at exit, where the RSS bound means nothing: 10,000 run every
     * path of the mix as the larger counts do. */
    long n = env                         ? atol(env)
             : !getenv("KVMSTUB_EMULATED") ? 1000000
             : e2e_sanitized()             ? 10000
                                           : 100000;
    return n > 0 ? n : 1;
}

static void test_mixed_packets(void)
{
    long total = soak_packets();
    struct e2e_stub s;
    /* Mode 4 spins incrementing a counter: stepping never reaches a hlt.
     * Reverse execution keeps every stop (a position of about 200 bytes,
     * a checkpoint now and then) up to --history: a bound small enough to
     * be reached within the first tenth makes growth after it a leak, not
     * history. A step is every fifth packet, so 4M fills within the first
     * tenth of a million packets, 256K within that of 100,000. */
    const char *args[] = {"--history", total >= 1000000 ? "4M" : "256K", "--reg", "rdi=4", GUEST,
                          NULL};
    CU_ASSERT_FATAL(e2e_stub_start(&s, args) == 0);
    struct e2e_rsp c;
    CU_ASSERT_FATAL(e2e_rsp_connect(&c, s.port) == 0);
    CU_ASSERT_FATAL(e2e_rsp_noack(&c) == 0);
    char z[64], zz[64], m[64];
    uint64_t busy = e2e_symbol(GUEST, "busy");
    snprintf(z, sizeof(z), "Z0,%llx,1", (unsigned long long)busy);
    snprintf(zz, sizeof(zz), "z0,%llx,1", (unsigned long long)busy);
    snprintf(m, sizeof(m), "m%llx,400", (unsigned long long)e2e_symbol(GUEST, "counter"));
    long errors = 0, rss_start = 0;
    double t0 = e2e_now();
    for (long i = 0; i < total; i++) {
        const char *p;
        switch (i % 10) {
        case 0: case 5: p = "s"; break;
        case 1: case 6: case 8: p = "g"; break;
        case 2: case 7: p = m; break;
        case 3: p = z; break;
        case 4: p = zz; break;
        default: p = "?"; break;
        }
        int n = e2e_rsp_cmd(&c, p, reply, sizeof(reply));
        bool ok = n > 0 && (p[0] == 's' || p[0] == '?' ? reply[0] == 'T'
                            : p[0] == 'g'               ? n == 2 * 164
                            : p[0] == 'm'               ? n == 0x800
                                                        : strcmp(reply, "OK") == 0);
        if (!ok && errors++ < 5)
            fprintf(stderr, "\npacket %ld '%s' -> '%.80s'\n", i, p, n > 0 ? reply : "(none)");
        if (n < 0)
            break;
        if (i == total / 10)
            rss_start = e2e_stub_rss_small_pages_kib(&s);
    }
    double took = e2e_now() - t0;
    long rss_end = e2e_stub_rss_small_pages_kib(&s);
    printf("\n    %ld packets in %.1f s (%.0f/s), %ld errors, RSS %ld KiB after %ld packets, "
           "%ld KiB at the end\n",
           total, took, (double)total / took, errors, rss_start, total / 10, rss_end);
    CU_ASSERT_EQUAL(errors, 0);
    CU_ASSERT(rss_start > 0);
    if (e2e_rss_meaningful())
        CU_ASSERT(rss_end - rss_start < 1024);
    e2e_rsp_close(&c);
    e2e_stub_kill(&s);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("e2e_soak", NULL, NULL);
    static char name[64];
    snprintf(name, sizeof(name), "%ld mixed packets", soak_packets());
    CU_add_test(s, name, test_mixed_packets);
}

int main(void)
{
    return test_main("test_e2e_soak", register_suites, true);
}
