/* Hostile and broken clients, and faulty guests: kvmstub answers, keeps
 * serving, and leaves the guest inspectable. */
#include "e2e.h"
#include "testmain.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GUEST E2E_GUEST_ELF
#define R 65536

static char reply[R * 2 + 64];

/* Sends payload and expects exactly want back. */
static void expect(struct e2e_rsp *c, const char *payload, const char *want)
{
    int n = e2e_rsp_cmd(c, payload, reply, sizeof(reply));
    if (n < 0 || strcmp(reply, want) != 0)
        fprintf(stderr, "\n'%.60s' -> '%.200s' (%d), wanted '%s'\n", payload, n < 0 ? "" : reply, n,
                want);
    CU_ASSERT(n >= 0 && strcmp(reply, want) == 0);
}

static void still_serving(struct e2e_rsp *c)
{
    int n = e2e_rsp_cmd(c, "?", reply, sizeof(reply));
    CU_ASSERT(n > 0 && reply[0] == 'T');
}

static void test_bad_checksum_gets_nak_and_no_action(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_rsp c;
    CU_ASSERT_FATAL(e2e_rsp_connect(&c, s.port) == 0);
    /* M with a wrong checksum must neither ack nor write. */
    CU_ASSERT(e2e_rsp_send_raw(&c, "$M101004,1:ff#00", 16) == 0);
    CU_ASSERT(e2e_rsp_expect_raw(&c, "-", 5000) == 0);
    expect(&c, "m101004,1", "34");
    /* Non-hex checksum digits too. */
    CU_ASSERT(e2e_rsp_send_raw(&c, "$?#zz", 5) == 0);
    CU_ASSERT(e2e_rsp_expect_raw(&c, "-", 5000) == 0);
    still_serving(&c);
    e2e_rsp_close(&c);
    e2e_stub_kill(&s);
}

static void test_garbage_between_packets(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_rsp c;
    CU_ASSERT_FATAL(e2e_rsp_connect(&c, s.port) == 0);
    static const char junk[] = "hello\xff\x00\x01#12}}**garbage\r\n";
    CU_ASSERT(e2e_rsp_send_raw(&c, junk, sizeof(junk)) == 0);
    still_serving(&c);
    /* A '$' in the middle restarts: the first packet is lost, the second
     * answered. */
    CU_ASSERT(e2e_rsp_send_raw(&c, "$m1010$?#3f", 11) == 0);
    CU_ASSERT(e2e_rsp_recv(&c, reply, sizeof(reply), 5000) > 0);
    CU_ASSERT_EQUAL(reply[0], 'T');
    e2e_rsp_close(&c);
    e2e_stub_kill(&s);
}

static void test_oversized_packet(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_rsp c;
    CU_ASSERT_FATAL(e2e_rsp_connect(&c, s.port) == 0);
    CU_ASSERT(e2e_rsp_noack(&c) == 0);
    size_t n = 0x20000 + 100;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    big[0] = 'X';
    big[n] = 0;
    expect(&c, big, "E5a"); /* EMSGSIZE, and nothing written */
    free(big);
    still_serving(&c);
    char *log = e2e_stub_log(&s);
    E2E_HAS(log, "longer than PacketSize");
    free(log);
    e2e_rsp_close(&c);
    e2e_stub_kill(&s);
}

static void test_bad_fields(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_rsp c;
    CU_ASSERT_FATAL(e2e_rsp_connect(&c, s.port) == 0);
    CU_ASSERT(e2e_rsp_noack(&c) == 0);
    /* invalid hex */
    expect(&c, "mzz,4", "E16");
    expect(&c, "m101004,", "E16");
    expect(&c, "M101004,2:zz00", "E16");
    expect(&c, "Pzz=00", "E16");
    expect(&c, "p1000", "E16");
    expect(&c, "P0=00", "E16"); /* rax is 8 bytes */
    /* zero, huge and wrapping lengths; addresses outside RAM */
    expect(&c, "m101004,0", "E16");
    expect(&c, "x101004,0", "OK");
    expect(&c, "M101004,0:", "OK");
    expect(&c, "X101004,0:", "OK");
    expect(&c, "mffffffffffffff00,200", "E0e");
    expect(&c, "Mfffffffffffffffe,4:00000000", "E0e");
    expect(&c, "m8000000,10", "E0e");       /* 128 MiB: mapped, no RAM */
    expect(&c, "m800000000000,10", "E0e");  /* not mapped at all */
    expect(&c, "M101004,10:00", "E16");     /* says 16 bytes, carries 1 */
    int n = e2e_rsp_cmd(&c, "m100000,7fffffff", reply, sizeof(reply));
    CU_ASSERT_EQUAL(n, 0x20000); /* capped at what a reply carries */
    /* G of the wrong length */
    expect(&c, "G00", "E16");
    /* breakpoints of a kind x86 does not have */
    expect(&c, "Z0,100000,4", "E16");
    expect(&c, "Z1,100000,2", "E16");
    expect(&c, "Z2,101004,0", "E16");
    expect(&c, "Z2,101004,100000", "E16");
    expect(&c, "Z7,101004,4", "E16");
    expect(&c, "z0,100000,1", "OK"); /* removing what is not there is fine */
    /* unknown packets get the empty reply */
    expect(&c, "qFooBar", "");
    expect(&c, "vFoo;1", "");
    expect(&c, "!", "OK"); /* extended mode: harmless, and answered */
    expect(&c, "Hg99", "E03");
    still_serving(&c);
    e2e_rsp_close(&c);
    e2e_stub_kill(&s);
}

static void test_clients_that_vanish(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "4"));
    struct e2e_rsp c;
    /* mid-packet */
    CU_ASSERT_FATAL(e2e_rsp_connect(&c, s.port) == 0);
    CU_ASSERT(e2e_rsp_send_raw(&c, "$m100000,4", 10) == 0);
    e2e_rsp_close(&c);
    /* while the guest runs */
    CU_ASSERT_FATAL(e2e_rsp_connect(&c, s.port) == 0);
    CU_ASSERT(e2e_rsp_send(&c, "c") == 0);
    e2e_rsp_close(&c);
    /* The next one finds it (stopped on connecting), and it ran meanwhile:
     * a client that finds the counter still 0 (a slow host) lets it run
     * again and looks later. */
    char m[64];
    snprintf(m, sizeof(m), "m%llx,4", (unsigned long long)e2e_symbol(GUEST, "counter"));
    for (double end = e2e_now() + E2E_TIMEOUT_S;;) {
        usleep(100000);
        CU_ASSERT_FATAL(e2e_rsp_connect(&c, s.port) == 0);
        int n = e2e_rsp_cmd(&c, "?", reply, sizeof(reply));
        CU_ASSERT(n > 0 && strncmp(reply, "T05", 3) == 0);
        CU_ASSERT(e2e_rsp_cmd(&c, m, reply, sizeof(reply)) == 8);
        if (strcmp(reply, "00000000") != 0 || e2e_now() > end)
            break;
        CU_ASSERT(e2e_rsp_send(&c, "c") == 0);
        e2e_rsp_close(&c);
    }
    CU_ASSERT(strcmp(reply, "00000000") != 0);
    e2e_rsp_close(&c);
    CU_ASSERT_EQUAL(e2e_stub_wait(&s, 100), -1); /* still there */
    e2e_stub_kill(&s);
}

static void test_thousand_connections(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    long rss0 = 0;
    int ok = 0;
    for (int i = 0; i < 1000; i++) {
        struct e2e_rsp c;
        if (e2e_rsp_connect(&c, s.port))
            continue;
        if (i % 2 == 0) {
            /* half of them ask something, half just hang up */
            if (e2e_rsp_cmd(&c, "?", reply, sizeof(reply)) > 0 && reply[0] == 'T')
                ok++;
        } else {
            ok++;
        }
        e2e_rsp_close(&c);
        if (i == 99)
            rss0 = e2e_stub_rss_small_pages_kib(&s);
    }
    CU_ASSERT_EQUAL(ok, 1000);
    long rss1 = e2e_stub_rss_small_pages_kib(&s);
    printf("\n    RSS after 100 connections %ld KiB, after 1000 %ld KiB\n", rss0, rss1);
    if (e2e_rss_meaningful())
        CU_ASSERT(rss1 - rss0 < 1024);
    struct e2e_rsp c;
    CU_ASSERT_FATAL(e2e_rsp_connect(&c, s.port) == 0);
    still_serving(&c);
    e2e_rsp_close(&c);
    e2e_stub_kill(&s);
}

static void test_two_clients_at_once(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_rsp a, b;
    CU_ASSERT_FATAL(e2e_rsp_connect(&a, s.port) == 0);
    still_serving(&a);
    CU_ASSERT_FATAL(e2e_rsp_connect(&b, s.port) == 0);
    CU_ASSERT(e2e_rsp_send(&b, "?") == 0);
    CU_ASSERT(e2e_rsp_recv(&b, reply, sizeof(reply), 5000) > 0);
    E2E_HAS(reply, "E.kvmstub already has a debugger connected");
    CU_ASSERT(e2e_rsp_closed(&b, 5000));
    e2e_rsp_close(&b);
    still_serving(&a);
    e2e_rsp_close(&a);
    e2e_stub_kill(&s);
}

/* A faulty guest stops with signal, and everything stays inspectable. */
static void faulty(const char *mode, const char *stop, const char *why)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, mode));
    struct e2e_rsp c;
    CU_ASSERT_FATAL(e2e_rsp_connect(&c, s.port) == 0);
    CU_ASSERT(e2e_rsp_noack(&c) == 0);
    CU_ASSERT(e2e_rsp_send(&c, "c") == 0);
    bool said = false;
    int n;
    while ((n = e2e_rsp_recv(&c, reply, sizeof(reply), E2E_TIMEOUT_S * 1000)) > 0 &&
           reply[0] == 'O') {
        if (why && strstr(reply, "6b766d737475623a")) /* hex of "kvmstub:" */
            said = true;
    }
    if (n <= 0 || strncmp(reply, stop, strlen(stop)) != 0)
        fprintf(stderr, "\nmode %s stopped with '%s', wanted '%s'\n", mode, n > 0 ? reply : "",
                stop);
    CU_ASSERT(n > 0 && strncmp(reply, stop, strlen(stop)) == 0);
    if (why)
        CU_ASSERT(said); /* the gdb console was told what happened */
    /* registers and memory can still be read, and the guest resumed */
    CU_ASSERT(e2e_rsp_cmd(&c, "g", reply, sizeof(reply)) > 100);
    CU_ASSERT(e2e_rsp_cmd(&c, "m100000,10", reply, sizeof(reply)) == 32);
    char *log = e2e_stub_log(&s);
    if (why)
        E2E_HAS(log, why);
    free(log);
    e2e_rsp_close(&c);
    CU_ASSERT_EQUAL(e2e_stub_wait(&s, 100), -1);
    e2e_stub_kill(&s);
}

static void test_faulty_triple_fault(void)
{
    faulty("6", "T0b", "triple fault");
}

static void test_faulty_jump_to_unbacked_memory(void)
{
    faulty("7", "T0a", "KVM internal error");
}

static void test_faulty_unknown_ports(void)
{
    faulty("8", "T05", NULL);
}

static void test_never_halting_guest_stays_interruptible(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "4"));
    struct e2e_rsp c;
    CU_ASSERT_FATAL(e2e_rsp_connect(&c, s.port) == 0);
    CU_ASSERT(e2e_rsp_noack(&c) == 0);
    for (int i = 0; i < 20; i++) {
        CU_ASSERT(e2e_rsp_send(&c, "c") == 0);
        usleep(20000);
        /* packets sent while it runs wait for the stop, and are answered */
        CU_ASSERT(e2e_rsp_send_raw(&c, "\x03", 1) == 0);
        CU_ASSERT(e2e_rsp_recv(&c, reply, sizeof(reply), 5000) > 0);
        CU_ASSERT_EQUAL(strncmp(reply, "T02", 3), 0);
        CU_ASSERT(e2e_rsp_cmd(&c, "g", reply, sizeof(reply)) > 100);
    }
    e2e_rsp_close(&c);
    e2e_stub_kill(&s);
}

/* The flood's size: 100 MB on a host with KVM; inside .ci/kvm-machine, where
 * every exit of the nested guest is emulated, 10 MB (about a minute there),
 * and 2 MB of a sanitized build there: what ASan looks at (the output path)
 * runs the same at any size, and the throughput and RSS figures that need
 * the larger flood mean nothing under it. KVMSTUB_FLOOD_MB sets it. The
 * test's name says it. */
static unsigned long long flood_mb(void)
{
    const char *env = getenv("KVMSTUB_FLOOD_MB");
    unsigned long long mb = env                          ? strtoull(env, NULL, 10)
                            : !getenv("KVMSTUB_EMULATED") ? 100
                            : e2e_sanitized()            ? 2
                                                         : 10;
    return mb ? mb : 1;
}

static void test_serial_flood(void)
{
    unsigned long long mb = flood_mb();
    char count[64];
    snprintf(count, sizeof(count), "rsi=%llu", mb * 1000000ull);
    struct e2e_stub s;
    const char *args[] = {"--reg", "rdi=3", "--reg", count, GUEST, NULL};
    CU_ASSERT_FATAL(e2e_stub_start(&s, args) == 0);
    struct e2e_rsp c;
    CU_ASSERT_FATAL(e2e_rsp_connect(&c, s.port) == 0);
    CU_ASSERT(e2e_rsp_noack(&c) == 0);
    long rss_before = e2e_stub_rss_kib(&s, false);
    double t0 = e2e_now();
    CU_ASSERT(e2e_rsp_send(&c, "c") == 0);
    uint64_t bytes = 0, step = (mb >= 10 ? mb / 10 : 1) * 1000000ull, shown = 0;
    bool all_x = true;
    int n;
    while ((n = e2e_rsp_recv(&c, reply, sizeof(reply), E2E_TIMEOUT_S * 1000)) > 0 &&
           reply[0] == 'O') {
        bytes += (uint64_t)(n - 1) / 2;
        /* A line now and then: a slow host takes minutes over this one
         * test, and CI's watchdog takes a silent suite for a hung one. */
        if (bytes - shown >= step) {
            shown = bytes - bytes % step;
            printf("\n    %llu of %llu MB", (unsigned long long)(shown / 1000000), mb);
        }
        for (int i = 1; i + 1 < n && all_x; i += 2)
            all_x = reply[i] == '7' && reply[i + 1] == '8';
    }
    double took = e2e_now() - t0;
    CU_ASSERT(n > 0 && reply[0] == 'T'); /* the halt at the end */
    CU_ASSERT_EQUAL(bytes, mb * 1000000ull);
    CU_ASSERT(all_x);
    long peak = e2e_stub_rss_kib(&s, true);
    printf("\n    %llu MB of serial output in %.1f s (%.1f MB/s), stub RSS %ld KiB before, "
           "peak %ld KiB\n",
           mb, took, (double)mb / took, rss_before, peak);
    /* Output is bounded in flight: the guest waits for a slow client. A stub
     * that kept the flood, or leaked a little of each write, would grow by a
     * share of it, so the bound scales with the size that runs. */
    CU_ASSERT(rss_before > 0);
    if (e2e_rss_meaningful())
        CU_ASSERT(peak - rss_before < (long)(mb * 1000000ull / 1024 / 2));
    still_serving(&c);
    e2e_rsp_close(&c);
    e2e_stub_kill(&s);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("e2e_hostile", NULL, NULL);
    CU_add_test(s, "bad checksums: a '-' and no action", test_bad_checksum_gets_nak_and_no_action);
    CU_add_test(s, "garbage between packets", test_garbage_between_packets);
    CU_add_test(s, "a packet over PacketSize", test_oversized_packet);
    CU_add_test(s, "bad fields, lengths and addresses", test_bad_fields);
    CU_add_test(s, "clients that vanish mid-packet and mid-run", test_clients_that_vanish);
    CU_add_test(s, "1000 connect/disconnect cycles", test_thousand_connections);
    CU_add_test(s, "two clients at once", test_two_clients_at_once);
    CU_add_test(s, "faulty guest: triple fault", test_faulty_triple_fault);
    CU_add_test(s, "faulty guest: jump to unbacked memory", test_faulty_jump_to_unbacked_memory);
    CU_add_test(s, "faulty guest: ports without devices", test_faulty_unknown_ports);
    CU_add_test(s, "a guest that never halts stays interruptible",
                test_never_halting_guest_stays_interruptible);
    static char flood_name[64];
    snprintf(flood_name, sizeof(flood_name), "a serial flood of %llu MB", flood_mb());
    CU_add_test(s, flood_name, test_serial_flood);
}

int main(void)
{
    return test_main("test_e2e_hostile", register_suites, true);
}
