/* The session, packet by packet, against a fake target: what gdb (and
 * other clients) send and what they must get back. No KVM. */
#include "stubtest.h"
#include "testmain.h"

#include "rsp/packet.h"
#include "stub/regmap.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

static void test_supported_and_no_ack(void)
{
    struct st t;
    st_open(&t, 1, false);
    st_send(&t, "qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+");
    CU_ASSERT_EQUAL(t.out[0], '+'); /* acknowledged while acks are on */
    const char *r = st_next(&t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "PacketSize=20000"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "qXfer:features:read+"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "swbreak+"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "QStartNoAckMode+"));
    st_send_raw(&t, "+", 1);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "QStartNoAckMode"), "OK");
    size_t before = t.len;
    st_send(&t, "vMustReplyEmpty");
    CU_ASSERT_EQUAL(t.out[before], '$'); /* no '+' any more */
    CU_ASSERT_STRING_EQUAL(st_next(&t), "");
    st_close(&t);
}

static void test_unknown_and_malformed(void)
{
    struct st t;
    st_open(&t, 1, true);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "qSomethingNew"), "");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "m12345"), "E16");   /* no length */
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "Zq,1000,1"), "E16"); /* bad type */
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "p10000000000000000"), "E16");
    /* Each packet kind in the stub's tables, with its fields broken: gdb
     * gets an error, never the "unsupported" empty reply that would make it
     * stop using the packet. */
    static const char *const broken[] = {
        "g0", "G0", "p", "P1", "mx", "xx", "M1,2:0", "X1,2:0", "Z5,1,1", "z0,1", "?1",
        "cx", "C", "sx", "S", "vCont?x", "vCont;x", "bsx", "bc1", "kk", "vKill", "!x",
        "Rx", "vRun", "D;", "D11", "Hx1", "Tx", "qC:1", "qfThreadInfo,", "qsThreadInfo;",
        "qThreadExtraInfo", "qXfer:threads:read::0", "qSupported,x",
        "qXfer:features:read:target.xml", "qRcmd,zz", "qOffsets:", "qAttached:x", "qSymbol",
        "QStartNoAckMode;", "vMustReplyEmpty:", "Qqemu.PhyMemMode:2", "qqemu.PhyMemMode:",
        "qHostInfo:", "qProcessInfo;", "QListThreadsInStopReply:", "qSupportsDetachAndStayStopped::",
    };
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        const char *r = st_ask(&t, broken[i]);
        CU_ASSERT_STRING_EQUAL(r, "E16");
        if (strcmp(r, "E16") != 0)
            fprintf(stderr, "'%s' got '%s'\n", broken[i], r);
    }
    /* Names that only begin like one of them are other packets. */
    static const char *const unknown[] = {"qCRC:0,1", "vContc", "qSupportedX", "b9600", "Qqemu",
                                          "qXfer:features:write:target.xml:0:", "vKillX", "i"};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
        CU_ASSERT_STRING_EQUAL(st_ask(&t, unknown[i]), "");
    st_close(&t);
}

static void test_halt_reason_and_expedited_registers(void)
{
    struct st t;
    st_open(&t, 2, true);
    char want[128];
    snprintf(want, sizeof(want), "T05thread:1;10:0010000000000000;07:0080000000000000;"
                                 "06:0090000000000000;");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "?"), want);
    /* The stop of thread 2 carries thread 2's registers. */
    t.f.last.tid = 2;
    const char *r = st_ask(&t, "?");
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "thread:2;"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "10:0110000000000000;"));
    st_close(&t);
}

static void test_registers_g_and_p(void)
{
    struct st t;
    st_open(&t, 1, true);
    fake_set_reg(&t.f, 1, VM_REG_RAX, 0x1122334455667788ull);
    static char g[4096];
    snprintf(g, sizeof(g), "%s", st_ask(&t, "g"));
    /* g: the general registers through gs (164 bytes), the rest by p. */
    CU_ASSERT_EQUAL(strlen(g), 2 * 164);
    CU_ASSERT_EQUAL(2 * stub_regmap_g_size(STUB_ARCH_AMD64, 0), 2 * 164);
    CU_ASSERT_EQUAL(strncmp(g, "8877665544332211", 16), 0);
    fake_set_reg(&t.f, 1, VM_REG_CR3, 0x3ff1000);
    size_t cr3 = 0, nregs;
    const struct stub_reg *d = stub_regmap(STUB_ARCH_AMD64, 0, &nregs);
    while (cr3 < nregs && d[cr3].id != VM_REG_CR3)
        cr3++;
    CU_ASSERT_FATAL(cr3 < nregs && cr3 >= stub_regmap_g_count(STUB_ARCH_AMD64, 0));
    char pk[32];
    snprintf(pk, sizeof(pk), "p%zx", cr3);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, pk), "0010ff0300000000");
    /* rip is register 16 in gdb's amd64 layout */
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "p10"), "0010000000000000");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "P10=0020000000000000"), "OK");
    CU_ASSERT_EQUAL(fake_reg(&t.f, 1, VM_REG_RIP), 0x2000);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "P10=0020"), "E16"); /* wrong size */
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "p1ff"), "E16");     /* no register 0x1ff */
    /* A refused value becomes an error, and G stops at it. */
    t.f.refuse_reg = VM_REG_RBX;
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "P1=0100000000000000"), "E16");
    char G[4096];
    int glen = snprintf(G, sizeof(G), "G%s", g);
    CU_ASSERT_FATAL(glen > 0 && (size_t)glen < sizeof(G));
    CU_ASSERT_STRING_EQUAL(st_ask(&t, G), "E16");
    t.f.refuse_reg = -1;
    CU_ASSERT_STRING_EQUAL(st_ask(&t, G), "OK");
    CU_ASSERT_EQUAL(fake_reg(&t.f, 1, VM_REG_RIP), 0x1000); /* G wrote the old values back */
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "G00"), "E16");
    /* A G of every register is taken too. */
    size_t full = stub_regmap_size(STUB_ARCH_AMD64, 0);
    static char Gall[8192];
    Gall[0] = 'G';
    for (size_t i = 0; i < 2 * full; i++)
        Gall[1 + i] = '0';
    Gall[1 + 2 * full] = 0;
    memcpy(Gall + 1 + 2 * 16 * 8, "0030000000000000", 16); /* rip, register 16 */
    CU_ASSERT_STRING_EQUAL(st_ask(&t, Gall), "OK");
    CU_ASSERT_EQUAL(fake_reg(&t.f, 1, VM_REG_RIP), 0x3000);
    st_close(&t);
}

static void test_i386_layout_keeps_upper_halves(void)
{
    /* gdb connected while the guest was in protected mode keeps the i386
     * layout when it moves to long mode: its 32-bit writes keep the upper
     * halves of the registers. */
    struct st t;
    st_open(&t, 1, true);
    t.f.mode[0] = VM_MODE_PROTECTED;
    const char *x = st_ask(&t, "qXfer:features:read:target.xml:0,fff");
    CU_ASSERT_PTR_NOT_NULL(strstr(x, "<architecture>i386</architecture>"));
    t.f.mode[0] = VM_MODE_LONG;
    fake_set_reg(&t.f, 1, VM_REG_RBX, 0x1111111122222222ull);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "P3=33333333"), "OK"); /* ebx is 3 in i386 */
    CU_ASSERT_EQUAL(fake_reg(&t.f, 1, VM_REG_RBX), 0x1111111133333333ull);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "p3"), "33333333");
    CU_ASSERT_EQUAL(strlen(st_ask(&t, "g")), 2 * stub_regmap_g_size(STUB_ARCH_I386, 0));
    st_close(&t);
}

static void test_target_description_per_mode(void)
{
    static const struct {
        enum vm_mode mode;
        const char *arch;
    } cases[] = {{VM_MODE_REAL, "i8086"}, {VM_MODE_PROTECTED, "i386"}, {VM_MODE_LONG, "i386:x86-64"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct st t;
        st_open(&t, 1, true);
        t.f.mode[0] = cases[i].mode;
        char want[64];
        snprintf(want, sizeof(want), "<architecture>%s</architecture>", cases[i].arch);
        const char *x = st_ask(&t, "qXfer:features:read:target.xml:0,3fff");
        CU_ASSERT_EQUAL(x[0], 'l');
        CU_ASSERT_PTR_NOT_NULL(strstr(x, want));
        /* Read in pieces, the description is the same. */
        const char *m = st_ask(&t, "qXfer:features:read:target.xml:0,10");
        CU_ASSERT_EQUAL(m[0], 'm');
        CU_ASSERT_EQUAL(strlen(m), 0x11);
        CU_ASSERT_STRING_EQUAL(st_ask(&t, "qXfer:features:read:other.xml:0,10"), "E00");
        st_close(&t);
    }
}

static void test_memory_m_M_x_X(void)
{
    struct st t;
    st_open(&t, 1, true);
    char want[64];
    snprintf(want, sizeof(want), "%02x%02x%02x", t.f.mem[0x100], t.f.mem[0x101], t.f.mem[0x102]);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "m100,3"), want);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "M100,2:abcd"), "OK");
    CU_ASSERT_EQUAL(t.f.mem[0x100], 0xab);
    CU_ASSERT_EQUAL(t.f.mem[0x101], 0xcd);
    /* A read that runs off the end returns what was there. */
    CU_ASSERT_EQUAL(strlen(st_ask(&t, "mfffe,10")), 4);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "m10000,10"), "E0e"); /* EFAULT */
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "mffffffffffffffff,2"), "E0e");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "m100,0"), "E16");
    /* x with no length is how clients probe for it. */
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "x100,0"), "OK");
    const char *x = st_ask(&t, "x100,2");
    CU_ASSERT_EQUAL(t.pkt_len, 3);
    CU_ASSERT_EQUAL(x[0], 'b');
    CU_ASSERT_EQUAL((uint8_t)x[1], 0xab);
    CU_ASSERT_EQUAL((uint8_t)x[2], 0xcd);
    /* X with escaped binary ('}' escapes '#', '$', '}' and '*'). */
    static const char X[] = "X200,3:}\x03}\x04}]";
    st_send(&t, X);
    CU_ASSERT_STRING_EQUAL(st_next(&t), "OK");
    CU_ASSERT_EQUAL(t.f.mem[0x200], '#');
    CU_ASSERT_EQUAL(t.f.mem[0x201], '$');
    CU_ASSERT_EQUAL(t.f.mem[0x202], '}');
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "X200,0:"), "OK");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "Mfffff,2:0000"), "E0e");
    /* A huge length is answered with what fits a packet. */
    const char *big = st_ask(&t, "m0,100000");
    CU_ASSERT_EQUAL(strlen(big), 2 * 0x10000); /* the fake's memory */
    st_close(&t);
}

static void test_breakpoints_and_watchpoints(void)
{
    struct st t;
    st_open(&t, 1, true);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "Z0,1000,1"), "OK");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "Z2,2000,4"), "OK");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "Z3,3000,8"), "OK");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "Z4,4000,1"), "OK");
    CU_ASSERT_EQUAL_FATAL(t.f.nbps, 4);
    CU_ASSERT_EQUAL(t.f.bps[0].kind, STUB_BP_SOFTWARE);
    CU_ASSERT_EQUAL(t.f.bps[1].kind, STUB_WATCH_WRITE);
    CU_ASSERT_EQUAL(t.f.bps[1].len, 4);
    CU_ASSERT_EQUAL(t.f.bps[2].kind, STUB_WATCH_READ);
    CU_ASSERT_EQUAL(t.f.bps[3].kind, STUB_WATCH_ACCESS);
    /* x86 breakpoints are one byte; a watchpoint has a length. */
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "Z0,1000,2"), "E16");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "Z2,1000,0"), "E16");
    /* Four hardware breakpoints, then the target's ENOSPC. */
    for (int i = 0; i < 4; i++) {
        char b[32];
        snprintf(b, sizeof(b), "Z1,%x,1", 0x5000 + i);
        CU_ASSERT_STRING_EQUAL(st_ask(&t, b), "OK");
    }
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "Z1,6000,1"), "E1c");
    /* Removing is idempotent. */
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "z0,1000,1"), "OK");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "z0,1000,1"), "OK");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "z2,2000,4"), "OK");
    CU_ASSERT_EQUAL(t.f.nbps, 6);
    st_close(&t);
}

static void test_continue_step_and_stop_replies(void)
{
    struct st t;
    st_open(&t, 1, true);
    st_send(&t, "c");
    CU_ASSERT_EQUAL(st_unread(&t), 0); /* no reply until the stop */
    CU_ASSERT(t.f.running);
    CU_ASSERT_EQUAL(t.f.last_resume.threads[0].action, STUB_ACTION_CONTINUE);
    st_stop(&t, 1, STUB_REASON_SWBREAK, 0);
    /* gdb did not announce swbreak: no reason in the reply. */
    CU_ASSERT_PTR_NULL(strstr(st_next(&t), "swbreak"));
    st_send(&t, "qSupported:swbreak+;hwbreak+");
    st_next(&t);
    st_send(&t, "s");
    CU_ASSERT_EQUAL(t.f.last_resume.threads[0].action, STUB_ACTION_STEP);
    st_stop(&t, 1, STUB_REASON_SWBREAK, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(st_next(&t), "T05thread:1;swbreak:;"));
    st_send(&t, "c");
    st_stop(&t, 1, STUB_REASON_HWBREAK, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(st_next(&t), "hwbreak:;"));
    st_send(&t, "c");
    st_stop(&t, 1, STUB_REASON_WATCH, 0x2000);
    CU_ASSERT_PTR_NOT_NULL(strstr(st_next(&t), "watch:2000;"));
    st_send(&t, "c");
    st_stop(&t, 1, STUB_REASON_RWATCH, 0x3004);
    CU_ASSERT_PTR_NOT_NULL(strstr(st_next(&t), "rwatch:3004;"));
    st_send(&t, "c");
    st_stop(&t, 1, STUB_REASON_AWATCH, 0x4000);
    CU_ASSERT_PTR_NOT_NULL(strstr(st_next(&t), "awatch:4000;"));
    /* c with an address moves rip first. */
    st_send(&t, "c1234");
    CU_ASSERT_EQUAL(fake_reg(&t.f, 1, VM_REG_RIP), 0x1234);
    struct stub_stop why = {.tid = 1, .signal = STUB_SIGSEGV};
    snprintf(why.why, sizeof(why.why), "triple fault");
    fake_stop(&t.f, &why);
    char text[256] = "";
    const char *r = st_next_skip_console(&t, text, sizeof(text));
    CU_ASSERT_STRING_EQUAL(text, "kvmstub: triple fault\n");
    CU_ASSERT_EQUAL(strncmp(r, "T0bthread:1;", 12), 0);
    /* The target refuses to run: an error, and no stop is awaited. */
    t.f.resume_error = -EIO;
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "c"), "E05");
    CU_ASSERT_FALSE(t.s.waiting_stop);
    st_close(&t);
}

/* bs and bc: advertised, passed on with the thread, the start of history
 * reported as replaylog:begin, a refusal as its text and an error. */
static void test_reverse_packets(void)
{
    struct st t;
    st_open(&t, 2, true);
    const char *r = st_ask(&t, "qSupported:swbreak+");
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "ReverseStep+;ReverseContinue+"));
    st_ask(&t, "Hc2");
    st_send(&t, "bs");
    CU_ASSERT_EQUAL(st_unread(&t), 0); /* a stop comes later */
    CU_ASSERT_EQUAL(t.f.reverses, 1);
    CU_ASSERT_EQUAL(t.f.last_reverse, STUB_ACTION_STEP);
    CU_ASSERT_EQUAL(t.f.reverse_tid, 2);
    st_stop(&t, 2, STUB_REASON_NONE, 0);
    CU_ASSERT_EQUAL(strncmp(st_next(&t), "T05thread:2;", 12), 0);
    st_send(&t, "bc");
    CU_ASSERT_EQUAL(t.f.last_reverse, STUB_ACTION_CONTINUE);
    st_stop(&t, 1, STUB_REASON_HISTORY_BEGIN, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(st_next(&t), "T05thread:1;replaylog:begin;"));
    st_send(&t, "bc");
    struct stub_stop no = {.tid = 1, .signal = STUB_SIGTRAP, .refused = true};
    snprintf(no.why, sizeof(no.why), "cannot go back past RDTSC");
    fake_stop(&t.f, &no);
    char text[256] = "";
    CU_ASSERT_STRING_EQUAL(st_next_skip_console(&t, text, sizeof(text)), "E01");
    CU_ASSERT_STRING_EQUAL(text, "kvmstub: cannot go back past RDTSC\n");
    CU_ASSERT_FALSE(t.s.waiting_stop);
    st_close(&t);

    /* A target without reverse execution: not advertised, bs unsupported. */
    struct st u;
    st_open(&u, 1, true);
    u.f.no_reverse = true;
    u.s.target = fake_target(&u.f);
    CU_ASSERT_PTR_NULL(strstr(st_ask(&u, "qSupported:swbreak+"), "Reverse"));
    CU_ASSERT_STRING_EQUAL(st_ask(&u, "bs"), "");
    st_close(&u);
}

static void test_exit_is_reported_again(void)
{
    struct st t;
    st_open(&t, 1, true);
    st_send(&t, "c");
    struct stub_stop end = {.tid = 1, .exited = true, .status = 0x42};
    fake_stop(&t.f, &end);
    CU_ASSERT_STRING_EQUAL(st_next(&t), "W42");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "c"), "W42");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "vCont;s:1"), "W42");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "?"), "W42");
    CU_ASSERT_EQUAL(t.f.resumes, 1);
    st_close(&t);
}

static void test_threads(void)
{
    struct st t;
    st_open(&t, 3, true);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "qfThreadInfo"), "m1,2,3");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "qsThreadInfo"), "l");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "qC"), "QC1");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "T2"), "OK");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "T4"), "E03");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "Tp1.3"), "OK");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "Tp2.1"), "E03");
    /* Hg picks whose registers and memory gdb sees. */
    fake_set_reg(&t.f, 3, VM_REG_RAX, 0xabcd);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "Hg3"), "OK");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "p0"), "cdab000000000000");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "Hg0"), "OK"); /* any: keeps thread 3 */
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "p0"), "cdab000000000000");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "Hg9"), "E03");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "Hgp1.1"), "OK");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "p0"), "0000000000000000");
    /* Hc picks who steps with the legacy s; c resumes everyone. */
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "Hc2"), "OK");
    st_send(&t, "s");
    CU_ASSERT_EQUAL(t.f.last_resume.count, 3);
    CU_ASSERT_EQUAL(t.f.last_resume.threads[0].action, STUB_ACTION_NONE);
    CU_ASSERT_EQUAL(t.f.last_resume.threads[1].action, STUB_ACTION_STEP);
    CU_ASSERT_EQUAL(t.f.last_resume.threads[2].action, STUB_ACTION_NONE);
    /* A stop selects its thread for Hg, as gdb assumes: its next g and p
     * read the stopped thread without an Hg (a breakpoint hit on CPU 1
     * while gdb looked at CPU 0). */
    fake_set_reg(&t.f, 2, VM_REG_RAX, 0x1234);
    st_stop(&t, 2, STUB_REASON_NONE, 0);
    CU_ASSERT_EQUAL(strncmp(st_next(&t), "T05thread:2;", 12), 0);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "qC"), "QC2");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "p0"), "3412000000000000");
    st_send(&t, "c");
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(t.f.last_resume.threads[i].action, STUB_ACTION_CONTINUE);
    st_stop(&t, 1, STUB_REASON_NONE, 0);
    st_close(&t);
}

static void test_vcont_actions_per_thread(void)
{
    struct st t;
    st_open(&t, 3, true);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "vCont?"), "vCont;c;C;s;S;t;r");
    /* Step thread 2 while the others run. */
    st_send(&t, "vCont;s:2;c");
    CU_ASSERT_EQUAL(t.f.last_resume.threads[0].action, STUB_ACTION_CONTINUE);
    CU_ASSERT_EQUAL(t.f.last_resume.threads[1].action, STUB_ACTION_STEP);
    CU_ASSERT_EQUAL(t.f.last_resume.threads[2].action, STUB_ACTION_CONTINUE);
    st_stop(&t, 2, STUB_REASON_NONE, 0);
    st_next(&t);
    /* Scheduler locking: only thread 2 steps. */
    st_send(&t, "vCont;s:2");
    CU_ASSERT_EQUAL(t.f.last_resume.threads[0].action, STUB_ACTION_NONE);
    CU_ASSERT_EQUAL(t.f.last_resume.threads[1].action, STUB_ACTION_STEP);
    CU_ASSERT_EQUAL(t.f.last_resume.threads[2].action, STUB_ACTION_NONE);
    st_stop(&t, 2, STUB_REASON_NONE, 0);
    st_next(&t);
    /* Range stepping, multiprocess ids. */
    st_send(&t, "vCont;r1000,1010:p1.3;c:p1.-1");
    CU_ASSERT_EQUAL(t.f.last_resume.threads[2].action, STUB_ACTION_RANGE);
    CU_ASSERT_EQUAL(t.f.last_resume.threads[2].start, 0x1000);
    CU_ASSERT_EQUAL(t.f.last_resume.threads[2].end, 0x1010);
    CU_ASSERT_EQUAL(t.f.last_resume.threads[0].action, STUB_ACTION_CONTINUE);
    st_stop(&t, 3, STUB_REASON_NONE, 0);
    CU_ASSERT_EQUAL(strncmp(st_next(&t), "T05thread:3;", 12), 0);
    /* C and S with signal 0 are c and s. */
    st_send(&t, "vCont;C00:1;S00:3");
    CU_ASSERT_EQUAL(t.f.last_resume.threads[0].action, STUB_ACTION_CONTINUE);
    CU_ASSERT_EQUAL(t.f.last_resume.threads[1].action, STUB_ACTION_NONE);
    CU_ASSERT_EQUAL(t.f.last_resume.threads[2].action, STUB_ACTION_STEP);
    st_stop(&t, 1, STUB_REASON_NONE, 0);
    st_next(&t);
    /* A real signal cannot be given to a bare-metal guest: refused, with
     * the reason on gdb's console, and nothing runs. */
    unsigned resumes = t.f.resumes;
    char text[256] = "";
    st_send(&t, "vCont;C05:1;S02:3");
    CU_ASSERT_STRING_EQUAL(st_next_skip_console(&t, text, sizeof(text)), "E16");
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "cannot deliver SIGTRAP (gdb's signal 5)"));
    text[0] = 0;
    st_send(&t, "C0a");
    CU_ASSERT_STRING_EQUAL(st_next_skip_console(&t, text, sizeof(text)), "E16");
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "cannot deliver SIGBUS (gdb's signal 10)"));
    CU_ASSERT_EQUAL(t.f.resumes, resumes);
    /* Nonexistent thread, or nothing to run. */
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "vCont;s:7"), "E03");
    CU_ASSERT_EQUAL(strncmp(st_ask(&t, "vCont;t:1"), "T05", 3), 0);
    st_close(&t);
}

static void test_console_output_only_while_waiting(void)
{
    struct st t;
    st_open(&t, 1, true);
    fake_output(&t.f, "early", 5);
    CU_ASSERT_EQUAL(st_unread(&t), 0); /* gdb is not waiting: no O packet */
    st_send(&t, "c");
    fake_output(&t.f, "hello\n", 6);
    fake_output(&t.f, "world\n", 6);
    char text[64] = "";
    st_stop(&t, 1, STUB_REASON_NONE, 0);
    const char *r = st_next_skip_console(&t, text, sizeof(text));
    CU_ASSERT_STRING_EQUAL(text, "hello\nworld\n");
    CU_ASSERT_EQUAL(strncmp(r, "T05", 3), 0);
    /* A big burst is split into packets that fit PacketSize. */
    static char burst[300000];
    memset(burst, 'x', sizeof(burst));
    st_send(&t, "c");
    fake_output(&t.f, burst, sizeof(burst));
    size_t packets = 0;
    for (const char *p; (p = st_next(&t)) != NULL; packets++)
        CU_ASSERT(t.pkt_len <= RSP_PACKET_SIZE);
    CU_ASSERT(packets >= 3);
    st_stop(&t, 1, STUB_REASON_NONE, 0);
    st_close(&t);
}

static void test_packets_wait_while_running(void)
{
    struct st t;
    st_open(&t, 1, true);
    st_send(&t, "c");
    /* A gdb attaching to a running guest sends these before it stops. */
    st_send(&t, "qC");
    st_send(&t, "m100,1");
    CU_ASSERT_EQUAL(st_unread(&t), 0);
    st_send_raw(&t, "\x03", 1);
    CU_ASSERT_EQUAL(t.f.interrupts, 1);
    struct stub_stop intr = {.tid = 1, .signal = STUB_SIGINT};
    fake_stop(&t.f, &intr);
    CU_ASSERT_EQUAL(strncmp(st_next(&t), "T02thread:1;", 12), 0);
    CU_ASSERT_STRING_EQUAL(st_next(&t), "QC1");
    char want[8];
    snprintf(want, sizeof(want), "%02x", t.f.mem[0x100]);
    CU_ASSERT_STRING_EQUAL(st_next(&t), want);
    /* A queued c runs the target again: what follows it waits again. */
    st_send(&t, "c");
    st_send(&t, "c");
    st_send(&t, "?");
    st_stop(&t, 1, STUB_REASON_NONE, 0);
    CU_ASSERT_PTR_NOT_NULL(st_next(&t)); /* the first c's stop */
    CU_ASSERT(t.f.running);              /* the second c runs it */
    CU_ASSERT_PTR_NULL(st_next(&t));
    st_stop(&t, 1, STUB_REASON_NONE, 0);
    CU_ASSERT_PTR_NOT_NULL(st_next(&t)); /* its stop */
    CU_ASSERT_PTR_NOT_NULL(st_next(&t)); /* the answer to ? */
    st_close(&t);
}

static void test_queue_is_bounded(void)
{
    struct st t;
    st_open(&t, 1, true);
    st_send(&t, "c");
    static char big[100000];
    memset(big, 'q', sizeof(big) - 1);
    big[0] = 'q';
    big[1] = 'X';
    for (int i = 0; i < 20; i++)
        st_send(&t, big); /* 2 MB of packets against a 1 MiB queue */
    CU_ASSERT(t.s.dropped > 0);
    CU_ASSERT(t.s.queue_len <= STUB_SESSION_QUEUE_MAX);
    st_stop(&t, 1, STUB_REASON_NONE, 0);
    size_t n = 0;
    while (st_next(&t))
        n++;
    CU_ASSERT(n > 1 && n < 21); /* the stop, then the packets that fit */
    st_close(&t);
}

static void test_oversize_packet(void)
{
    struct st t;
    st_open(&t, 1, true);
    static char huge[RSP_PACKET_SIZE + 100];
    memset(huge, 'm', sizeof(huge) - 1);
    st_send(&t, huge);
    CU_ASSERT_STRING_EQUAL(st_next(&t), "E5a"); /* EMSGSIZE */
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "qC"), "QC1"); /* and the session goes on */
    st_close(&t);
}

static void test_bad_checksum_asks_again(void)
{
    struct st t;
    st_open(&t, 1, false);
    st_send_raw(&t, "$qC#00", 6);
    CU_ASSERT_EQUAL(t.len, 1);
    CU_ASSERT_EQUAL(t.out[0], '-');
    st_send(&t, "qC");
    CU_ASSERT_STRING_EQUAL(st_next(&t), "QC1");
    st_close(&t);
}

static void test_monitor(void)
{
    struct st t;
    st_open(&t, 2, true);
    st_ask(&t, "Hg2");
    char text[128] = "";
    st_send(&t, "qRcmd,696e666f"); /* "info" */
    CU_ASSERT_STRING_EQUAL(st_next_skip_console(&t, text, sizeof(text)), "OK");
    CU_ASSERT_STRING_EQUAL(text, "you said: info\n");
    CU_ASSERT_STRING_EQUAL(t.f.monitor_cmd, "info");
    CU_ASSERT_EQUAL(t.f.monitor_tid, 2);
    text[0] = 0;
    st_send(&t, "qRcmd,6661696c"); /* "fail" */
    CU_ASSERT_STRING_EQUAL(st_next_skip_console(&t, text, sizeof(text)), "E05");
    CU_ASSERT_STRING_EQUAL(text, "that went wrong\n");
    st_close(&t);
}

static void test_detach_and_reattach(void)
{
    struct st t;
    st_open(&t, 1, true);
    st_ask(&t, "Z0,1000,1");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "D"), "OK");
    CU_ASSERT(t.closed);
    /* The server detaches the session when the connection closes. */
    stub_session_detach(&t.s);
    CU_ASSERT_EQUAL(t.f.detaches, 1);
    CU_ASSERT_EQUAL(t.f.nbps, 0);
    /* Nothing more is handled on a closing session. */
    size_t before = t.len;
    st_send(&t, "qC");
    CU_ASSERT_EQUAL(t.len, before);
    st_close(&t);
    /* A new gdb: a new session on the same target. */
    struct st u;
    st_open(&u, 1, true);
    CU_ASSERT_EQUAL(u.f.attaches, 1);
    CU_ASSERT_STRING_EQUAL(st_ask(&u, "D;1"), "OK");
    st_close(&u);
}

static void test_kill(void)
{
    struct st t;
    st_open(&t, 1, true);
    /* gdb reads nothing after k; LLDB waits for an exit status. */
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "k"), "X09");
    CU_ASSERT(t.f.killed);
    CU_ASSERT_EQUAL(st_unread(&t), 0);
    st_send(&t, "qC"); /* ignored: the target is gone */
    CU_ASSERT_EQUAL(st_unread(&t), 0);
    st_close(&t);
    st_open(&t, 1, true);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "vKill;1"), "OK");
    CU_ASSERT(t.f.killed);
    st_close(&t);
}

/* What LLDB (14, Debian 12's) sends and needs, in its order. */
static void test_lldb_client(void)
{
    struct st t;
    st_open(&t, 2, true);
    const char *r = st_ask(&t, "qSupported:xmlRegisters=i386,arm,mips,arc;multiprocess+;"
                                "fork-events+;vfork-events+");
    CU_ASSERT_PTR_NOT_NULL(strstr(r, ";binary-upload+"));
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "QThreadSuffixSupported"), "");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "QListThreadsInStopReply"), "OK");
    /* "x86_64-unknown-none", hex-encoded as LLDB reads it. */
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "qHostInfo"),
                           "triple:7838365f36342d756e6b6e6f776e2d6e6f6e65;ptrsize:8;"
                           "endian:little;watchpoint_exceptions_received:after;");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "qProcessInfo"),
                           "pid:1;parent-pid:1;triple:7838365f36342d756e6b6e6f776e2d6e6f6e65;"
                           "ptrsize:8;endian:little;");
    /* Every thread and its pc, before the expedited registers. */
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "?"), "T05thread:1;threads:1,2;thread-pcs:1000,1001;"
                                            "10:0010000000000000;07:0080000000000000;"
                                            "06:0090000000000000;");
    /* Before LLDB's probe, gdb's form; after it, the bare data. Both escape
     * '*', '}' and '#' as '}' and the byte xor 0x20 (as they come here). */
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "M100,3:2a7d23"), "OK");
    const char *x = st_ask(&t, "x100,3");
    CU_ASSERT(t.pkt_len == 7 && memcmp(x, "b}\x0a}]}\x03", 7) == 0);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "x0,0"), "OK");
    x = st_ask(&t, "x100,3");
    CU_ASSERT(t.pkt_len == 6 && memcmp(x, "}\x0a}]}\x03", 6) == 0);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "qSupportsDetachAndStayStopped:"), "OK");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "D1"), "OK");
    CU_ASSERT(t.closed);
    st_close(&t);

    /* A client that announced binary-upload keeps the 'b' even if it
     * probes; an i386 guest is described as such. */
    st_open(&t, 1, true);
    t.f.mode[0] = VM_MODE_PROTECTED;
    st_ask(&t, "qSupported:binary-upload+");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "x0,0"), "OK");
    x = st_ask(&t, "x100,1");
    CU_ASSERT(t.pkt_len == 2 && x[0] == 'b');
    r = st_ask(&t, "qHostInfo");
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "triple:693338362d756e6b6e6f776e2d6e6f6e65;ptrsize:4;"));
    st_close(&t);
}

static void test_simple_queries(void)
{
    struct st t;
    st_open(&t, 1, true);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "qAttached"), "1");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "qAttached:1"), "1");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "qOffsets"), "Text=0;Data=0;Bss=0");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "qSymbol::"), "OK");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "vMustReplyEmpty"), "");
    st_close(&t);
}

static void test_extended_remote(void)
{
    struct st t;
    st_open(&t, 1, true);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "!"), "OK");
    CU_ASSERT(t.f.extended);
    /* run: the image afresh, stopped at its entry, with a stop reply. */
    CU_ASSERT_EQUAL(strncmp(st_ask(&t, "vRun;"), "T05thread:1;", 12), 0);
    CU_ASSERT_EQUAL(t.f.restarts, 1);
    /* kill ends the guest, not kvmstub; run again works. */
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "vKill;1"), "OK");
    CU_ASSERT_FALSE(t.f.killed);
    CU_ASSERT_EQUAL(t.f.ended, 1);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "?"), "W00");
    CU_ASSERT_EQUAL(strncmp(st_ask(&t, "vRun;2f612f62;"), "T05", 3), 0);
    CU_ASSERT_EQUAL(t.f.restarts, 2);
    /* R restarts with no reply at all (a reply would desynchronise gdb). */
    st_send(&t, "R00");
    CU_ASSERT_EQUAL(st_unread(&t), 0);
    CU_ASSERT_EQUAL(t.f.restarts, 3);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "qC"), "QC1");
    st_close(&t);
    /* Without '!', k ends it all. */
    st_open(&t, 1, true);
    st_send(&t, "k");
    CU_ASSERT(t.f.killed);
    st_close(&t);
}

static void test_physical_memory_mode(void)
{
    struct st t;
    st_open(&t, 1, true);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "qqemu.PhyMemMode"), "0");
    st_ask(&t, "m100,1");
    CU_ASSERT_FALSE(t.f.last_phys);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "Qqemu.PhyMemMode:1"), "OK");
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "qqemu.PhyMemMode"), "1");
    st_ask(&t, "m100,1");
    CU_ASSERT(t.f.last_phys);
    st_ask(&t, "M100,1:00");
    CU_ASSERT(t.f.last_phys);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "Qqemu.PhyMemMode:0"), "OK");
    st_ask(&t, "x100,1");
    CU_ASSERT_FALSE(t.f.last_phys);
    st_close(&t);
}

static void test_thread_names(void)
{
    struct st t;
    st_open(&t, 2, true);
    t.f.mode[1] = VM_MODE_REAL;
    t.f.halted[1] = true;
    /* "CPU#1 [real mode, halted]" in hex */
    const char *r = st_ask(&t, "qThreadExtraInfo,2");
    static const char want[] = "CPU#1 [real mode, halted]";
    char hex[128] = "";
    for (size_t i = 0; i < sizeof(want) - 1; i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)want[i]);
    CU_ASSERT_STRING_EQUAL(r, hex);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "qThreadExtraInfo,3"), "E03");
    const char *x = st_ask(&t, "qXfer:threads:read::0,fff");
    CU_ASSERT_EQUAL(x[0], 'l');
    /* (binary replies escape '#' as "}\x03") */
    CU_ASSERT_PTR_NOT_NULL(strstr(x, "<thread id=\"1\" core=\"0\" name=\"CPU}\x03" "0\">long mode</thread>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(x, "<thread id=\"2\" core=\"1\" name=\"CPU}\x03" "1\">real mode, halted"));
    CU_ASSERT_PTR_NOT_NULL(strstr(st_ask(&t, "qSupported"), "qXfer:threads:read+"));
    st_close(&t);
}

static void test_detach_keep_stopped(void)
{
    struct st t;
    st_open(&t, 1, true);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "D1"), "OK");
    stub_session_detach(&t.s);
    CU_ASSERT(t.f.detach_kept_stopped);
    st_close(&t);
    st_open(&t, 1, true);
    CU_ASSERT_STRING_EQUAL(st_ask(&t, "D"), "OK");
    stub_session_detach(&t.s);
    CU_ASSERT_FALSE(t.f.detach_kept_stopped);
    st_close(&t);
}

static void test_forced_layout(void)
{
    /* --gdb-arch amd64: a real-mode guest gets the amd64 layout, which
     * every later mode fits. */
    struct st t;
    st_open(&t, 1, true);
    t.f.mode[0] = VM_MODE_REAL;
    stub_session_set_arch(&t.s, STUB_GDB_ARCH_AMD64);
    CU_ASSERT_PTR_NOT_NULL(strstr(st_ask(&t, "qXfer:features:read:target.xml:0,3fff"), "i386:x86-64"));
    CU_ASSERT_EQUAL(strlen(st_ask(&t, "g")), 2 * stub_regmap_g_size(STUB_ARCH_AMD64, 0));
    st_close(&t);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("stub_session", NULL, NULL);
    CU_add_test(s, "bs and bc: advertised, replaylog:begin, refusals as errors",
                test_reverse_packets);
    CU_add_test(s, "qSupported, acks, then no-ack mode", test_supported_and_no_ack);
    CU_add_test(s, "unknown packets get empty replies, malformed ones errors",
                test_unknown_and_malformed);
    CU_add_test(s, "? with the stopped thread's expedited registers",
                test_halt_reason_and_expedited_registers);
    CU_add_test(s, "g, G, p, P and refused values", test_registers_g_and_p);
    CU_add_test(s, "i386 layout in long mode keeps upper halves",
                test_i386_layout_keeps_upper_halves);
    CU_add_test(s, "target description follows the CPU mode", test_target_description_per_mode);
    CU_add_test(s, "m, M, x, X, faults and bounds", test_memory_m_M_x_X);
    CU_add_test(s, "Z and z of every kind", test_breakpoints_and_watchpoints);
    CU_add_test(s, "c, s and stop replies with and without swbreak/hwbreak",
                test_continue_step_and_stop_replies);
    CU_add_test(s, "an ended target is reported again", test_exit_is_reported_again);
    CU_add_test(s, "threads: qfThreadInfo, qC, T, Hg, Hc", test_threads);
    CU_add_test(s, "vCont actions per thread", test_vcont_actions_per_thread);
    CU_add_test(s, "console output only while gdb waits, split to PacketSize",
                test_console_output_only_while_waiting);
    CU_add_test(s, "packets wait while running; interrupt", test_packets_wait_while_running);
    CU_add_test(s, "the queue of waiting packets is bounded", test_queue_is_bounded);
    CU_add_test(s, "a packet over PacketSize is refused", test_oversize_packet);
    CU_add_test(s, "a bad checksum is asked for again", test_bad_checksum_asks_again);
    CU_add_test(s, "monitor commands", test_monitor);
    CU_add_test(s, "detach, then a new session attaches", test_detach_and_reattach);
    CU_add_test(s, "k and vKill", test_kill);
    CU_add_test(s, "LLDB: x forms, qHostInfo, qProcessInfo, threads in stops, D1",
                test_lldb_client);
    CU_add_test(s, "qAttached, qOffsets, qSymbol, vMustReplyEmpty", test_simple_queries);
    CU_add_test(s, "extended-remote: !, vRun, vKill, R", test_extended_remote);
    CU_add_test(s, "QEMU's physical memory mode", test_physical_memory_mode);
    CU_add_test(s, "qThreadExtraInfo and qXfer:threads:read", test_thread_names);
    CU_add_test(s, "detach, and LLDB's detach that keeps the guest stopped",
                test_detach_keep_stopped);
    CU_add_test(s, "--gdb-arch amd64 in real mode", test_forced_layout);
}

int main(void)
{
    return test_main("test_stub_session", register_suites, false);
}
