/* Tests of rsp/command.h: packet kinds matched by name and read by schema.
 * The table below gives kvmstub's packets as stub/packets_*.c name them,
 * so every packet kind the stub handles is read here, good and malformed,
 * and the unknown ones must match no name. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsp/command.h"
#include "rsp/packet.h"
#include "rsp_test.h"
#include "testmain.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The names and schemas of the stub's tables (stub/packets_*.c). */
static const struct rsp_command defs[] = {
    {"g", ""},          {"G", "x"},         {"p", "n"},         {"P", "n=x"},
    {"m", "n,n"},       {"x", "n,n"},       {"M", "n,n:X"},     {"X", "n,n:b"},
    {"Z", "k,n,n[;*]"}, {"z", "k,n,n[;*]"}, {"?", ""},          {"c", "[n]"},
    {"C", "g[;n]"},     {"s", "[n]"},       {"S", "g[;n]"},     {"vCont?", ""},
    {"vCont", "V"},     {"bs", ""},         {"bc", ""},         {"k", ""},
    {"vKill", ";n"},    {"!", ""},          {"R", "[n]"},       {"vRun", ";s"},
    {"D", "[;n]"},      {"D1", ""},         {"H", "{gc}t"},     {"T", "t"},
    {"qC", ""},         {"qfThreadInfo", ""}, {"qsThreadInfo", ""},
    {"qThreadExtraInfo", ",t"},             {"qXfer:threads:read:", "an,n"},
    {"qSupported", "[:F]"},                 {"qXfer:features:read:", "an,n"},
    {"qRcmd", ",r"},    {"qOffsets", ""},   {"qAttached", "[:n]"}, {"qSymbol", ":*"},
    {"QStartNoAckMode", ""},                {"vMustReplyEmpty", ""},
    {"Qqemu.PhyMemMode", ":{01}"},          {"qqemu.PhyMemMode", ""},
    {"qHostInfo", ""},  {"qProcessInfo", ""}, {"QListThreadsInStopReply", ""},
    {"qSupportsDetachAndStayStopped", "[:]"},
};

/* Each payload gets a heap block of exactly len + 1 bytes, so that the
 * address sanitizer catches any read or write past what a reader hands
 * out. The byte after the payload is not NUL: the reader must not rely on
 * it. */
static uint8_t *buf;
static struct rsp_args args;
static const char *kind; /* the name matched, NULL for none */
static int rc;

#define A(i) (args.arg[i])

/* The packet's kind, as the stub finds it: the longest name that matches. */
static const struct rsp_command *find(const uint8_t *p, size_t n)
{
    const struct rsp_command *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < COUNT(defs); i++) {
        size_t k = rsp_command_match(&defs[i], p, n);
        if (k > best_len) {
            best = &defs[i];
            best_len = k;
        }
    }
    return best;
}

static int parse_n(const void *s, size_t n)
{
    free(buf);
    buf = malloc(n + 1);
    CU_ASSERT_FATAL(buf != NULL);
    if (n)
        memcpy(buf, s, n);
    buf[n] = 0x55;
    memset(&args, 0, sizeof(args));
    const struct rsp_command *d = find(buf, n);
    kind = d ? d->name : NULL;
    rc = d ? rsp_command_read(d, buf, n, &args) : 0;
    return rc;
}

static int parse(const char *s)
{
    return parse_n(s, strlen(s));
}

static int clean(void)
{
    free(buf);
    buf = NULL;
    return 0;
}

static bool is(const char *name)
{
    return rc == 0 && (name ? kind && strcmp(kind, name) == 0 : !kind);
}

static bool is_malformed(int r)
{
    return r == -EINVAL && kind && args.reason && args.reason[0];
}

static void check_malformed(const char *const *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int r = parse(cases[i]);
        CHECKF(is_malformed(r), "\"%s\" should be malformed, is %s (rc %d)", cases[i],
               kind ? kind : "unsupported", r);
    }
}

static void check_type(const char *const *cases, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        parse(cases[i]);
        CHECKF(is(name) && args.reason == NULL, "\"%s\" should be %s, is %s (%s)", cases[i],
               name ? name : "unsupported", kind ? kind : "unsupported",
               args.reason ? args.reason : "");
    }
}

static bool data_is(const uint8_t *data, size_t len, const void *want, size_t want_len)
{
    return len == want_len && (len == 0 || memcmp(data, want, len) == 0);
}

/* ---- packets without arguments ---- */

static void test_bare_packets(void)
{
    static const struct {
        const char *s;
        const char *type;
    } good[] = {
        {"?", "?"},
        {"g", "g"},
        {"k", "k"},
        {"qC", "qC"},
        {"qfThreadInfo", "qfThreadInfo"},
        {"qsThreadInfo", "qsThreadInfo"},
        {"qOffsets", "qOffsets"},
        {"vMustReplyEmpty", "vMustReplyEmpty"},
        {"QStartNoAckMode", "QStartNoAckMode"},
        {"vCont?", "vCont?"},
        {"qHostInfo", "qHostInfo"},
        {"qProcessInfo", "qProcessInfo"},
        {"QListThreadsInStopReply", "QListThreadsInStopReply"},
        {"qSupportsDetachAndStayStopped:", "qSupportsDetachAndStayStopped"},
        {"qSupportsDetachAndStayStopped", "qSupportsDetachAndStayStopped"},
        {"bs", "bs"},
        {"bc", "bc"},
    };
    for (size_t i = 0; i < COUNT(good); i++)
        check_type(&good[i].s, 1, good[i].type);

    static const char *const bad[] = {
        "?x",         "g0",         "kk",        "k;1",           "qC:1",
        "qC,1",       "qC;",        "qfThreadInfo;", "qsThreadInfo:x", "qOffsets:",
        "vMustReplyEmpty;1", "QStartNoAckMode:1", "vCont?c", "vCont??", "g ",
        "qHostInfo:", "qProcessInfo;1", "QListThreadsInStopReply:1",
        "qSupportsDetachAndStayStopped:1", "qSupportsDetachAndStayStopped::",
        "bc0", "bs;", "bss", "bc1000",
    };
    check_malformed(bad, COUNT(bad));

    /* A NUL after a one-letter command is trailing garbage; in a q packet
     * it is part of a name nobody knows. */
    CU_ASSERT(is_malformed(parse_n("g\0", 2)));
    CU_ASSERT_EQUAL(parse_n("qC\0", 3), 0);
    CU_ASSERT(is(NULL));
}

/* ---- registers ---- */

static void test_read_regs_write_regs(void)
{
    CU_ASSERT_EQUAL(parse("G0011aaBB"), 0);
    CU_ASSERT(is("G"));
    CU_ASSERT(data_is(A(0).data, A(0).len, "\x00\x11\xaa\xbb", 4));
    /* Decoded where it lay: right after the 'G'. */
    CU_ASSERT_PTR_EQUAL(A(0).data, buf + 1);

    static const char *const bad[] = {"G", "G0", "G001", "Gzz", "G00 ", "G0x00", "G00:"};
    check_malformed(bad, COUNT(bad));
}

static void test_read_reg(void)
{
    CU_ASSERT_EQUAL(parse("p1f"), 0);
    CU_ASSERT(is("p"));
    CU_ASSERT_EQUAL(A(0).num, 0x1f);
    CU_ASSERT_EQUAL(parse("p0"), 0);
    CU_ASSERT_EQUAL(A(0).num, 0);
    CU_ASSERT_EQUAL(parse("pffffffffffffffff"), 0);
    CU_ASSERT_EQUAL(A(0).num, UINT64_MAX);

    static const char *const bad[] = {
        "p", "px", "p1,", "p-1", "p 1", "p10000000000000000", "p1=00", "p1;",
    };
    check_malformed(bad, COUNT(bad));
    CU_ASSERT_STRING_EQUAL((parse("p10000000000000000"), args.reason), "number wider than 64 bits");
}

static void test_write_reg(void)
{
    CU_ASSERT_EQUAL(parse("P1f=deadBEEF"), 0);
    CU_ASSERT(is("P"));
    CU_ASSERT_EQUAL(A(0).num, 0x1f);
    CU_ASSERT(data_is(A(1).data, A(1).len, "\xde\xad\xbe\xef", 4));
    CU_ASSERT_EQUAL(parse("P8=0000000000000000"), 0);
    CU_ASSERT_EQUAL(A(1).len, 8);

    static const char *const bad[] = {
        "P",        "P1f",      "P1f=",     "P1f=abc",   "P=12",  "P1f=zz",
        "P1f=12x4", "P1f:1234", "P1f==12",  "P10000000000000000=00", "Pz=00",
    };
    check_malformed(bad, COUNT(bad));
}

/* ---- memory ---- */

static void test_read_mem(void)
{
    CU_ASSERT_EQUAL(parse("m1000,20"), 0);
    CU_ASSERT(is("m"));
    CU_ASSERT_EQUAL(A(0).num, 0x1000);
    CU_ASSERT_EQUAL(A(1).num, 0x20);
    /* Not clamped: bounding is the stub's job. */
    CU_ASSERT_EQUAL(parse("mffffffffffffffff,ffffffffffffffff"), 0);
    CU_ASSERT_EQUAL(A(0).num, UINT64_MAX);
    CU_ASSERT_EQUAL(A(1).num, UINT64_MAX);
    CU_ASSERT_EQUAL(parse("x7c00,0"), 0);
    CU_ASSERT(is("x"));
    CU_ASSERT_EQUAL(A(0).num, 0x7c00);
    CU_ASSERT_EQUAL(A(1).num, 0);

    static const char *const bad[] = {
        "m",        "m1000",     "m1000,",   "m,20",      "m1000;20", "m1000,20x",
        "m1000,20:", "m10000000000000000,1", "m1,10000000000000000",  "m-1,1",
        "x",        "x1000",     "x1000,",   "x1000,4:",  "xg,1",
    };
    check_malformed(bad, COUNT(bad));
}

static void test_write_mem(void)
{
    CU_ASSERT_EQUAL(parse("M1000,2:abCD"), 0);
    CU_ASSERT(is("M"));
    CU_ASSERT_EQUAL(A(0).num, 0x1000);
    CU_ASSERT_EQUAL(A(1).num, 2);
    CU_ASSERT(data_is(A(2).data, 2, "\xab\xcd", 2));
    CU_ASSERT_EQUAL(parse("M1000,0:"), 0);
    CU_ASSERT_EQUAL(A(1).num, 0);

    static const char *const bad[] = {
        "M1000,2:abc",  "M1000,2:abcdef", "M1000,2abcd", "M1000,2:zzzz", "M1000,2:",
        "M1000:2:abcd", "M,2:abcd",        "M1000,2",     "M1000,1:0",    "M1000,:00",
        /* A length twice which wraps to the data length must not match. */
        "M1000,8000000000000001:00", "Mffff,ffffffffffffffff:00",
    };
    check_malformed(bad, COUNT(bad));
}

static void test_write_mem_binary(void)
{
    /* Binary data may hold ':' , NUL and anything else. */
    static const char pkt[] = "X1000,5:a:\0}\xff";
    CU_ASSERT_EQUAL(parse_n(pkt, sizeof(pkt) - 1), 0);
    CU_ASSERT(is("X"));
    CU_ASSERT_EQUAL(A(0).num, 0x1000);
    CU_ASSERT_EQUAL(A(1).num, 5);
    CU_ASSERT(data_is(A(2).data, 5, "a:\0}\xff", 5));
    /* gdb probes for X with an empty write. */
    CU_ASSERT_EQUAL(parse("X1000,0:"), 0);
    CU_ASSERT(is("X"));
    CU_ASSERT_EQUAL(A(1).num, 0);

    static const char *const bad[] = {
        "X1000,4:abc", "X1000,4:abcde", "X1000,4", "X1000:4:abcd", "X1000,4abcd",
        "X,4:abcd",    "X1000,:",      "X1000,ffffffffffffffff:a",  "X1000,10000000000000000:",
    };
    check_malformed(bad, COUNT(bad));
}

/* ---- resume ---- */

static void test_continue_step(void)
{
    /* An optional part not sent keeps its slot, not present. */
    CU_ASSERT_EQUAL(parse("c"), 0);
    CU_ASSERT(is("c"));
    CU_ASSERT_EQUAL(args.count, 1);
    CU_ASSERT_FALSE(A(0).present);
    CU_ASSERT_EQUAL(parse("c7c00"), 0);
    CU_ASSERT(A(0).present);
    CU_ASSERT_EQUAL(A(0).num, 0x7c00);
    CU_ASSERT_EQUAL(parse("s"), 0);
    CU_ASSERT(is("s"));
    CU_ASSERT_FALSE(A(0).present);
    CU_ASSERT_EQUAL(parse("sffffffff80000000"), 0);
    CU_ASSERT_EQUAL(A(0).num, 0xffffffff80000000u);

    CU_ASSERT_EQUAL(parse("C05"), 0);
    CU_ASSERT(is("C"));
    CU_ASSERT(A(0).present);
    CU_ASSERT_EQUAL(A(0).num, 5);
    CU_ASSERT_EQUAL(args.count, 2);
    CU_ASSERT_FALSE(A(1).present);
    CU_ASSERT_EQUAL(parse("Cff;1000"), 0);
    CU_ASSERT_EQUAL(A(0).num, 0xff);
    CU_ASSERT(A(1).present);
    CU_ASSERT_EQUAL(A(1).num, 0x1000);
    CU_ASSERT_EQUAL(parse("S0b"), 0);
    CU_ASSERT(is("S"));
    CU_ASSERT_EQUAL(A(0).num, 0xb);
    CU_ASSERT_EQUAL(parse("S0b;2000"), 0);
    CU_ASSERT_EQUAL(A(1).num, 0x2000);

    static const char *const bad[] = {
        "cx",   "c1000,", "c10000000000000000", "c;1000", "c 1",  "s1000x", "s,",
        "C",    "C100",   "C05;",               "C05;x",  "C05x", "Szz",    "S;1000",
        "C05;1000;", "C-1", "S05,1000",
    };
    check_malformed(bad, COUNT(bad));
}

/* ---- vCont ---- */

static void test_vcont(void)
{
    CU_ASSERT_EQUAL(parse("vCont;c"), 0);
    CU_ASSERT(is("vCont"));
    CU_ASSERT_EQUAL(A(0).num, 1);
    CU_ASSERT_EQUAL(args.vcont[0].action, 'c');
    CU_ASSERT_FALSE(args.vcont[0].has_tid);

    CU_ASSERT_EQUAL(parse("vCont;s:1;c"), 0);
    CU_ASSERT_EQUAL(A(0).num, 2);
    CU_ASSERT_EQUAL(args.vcont[0].action, 's');
    CU_ASSERT(args.vcont[0].has_tid);
    CU_ASSERT_FALSE(args.vcont[0].tid.has_pid);
    CU_ASSERT_EQUAL(args.vcont[0].tid.tid.kind, RSP_ID_NUM);
    CU_ASSERT_EQUAL(args.vcont[0].tid.tid.num, 1);
    CU_ASSERT_EQUAL(args.vcont[1].action, 'c');
    CU_ASSERT_FALSE(args.vcont[1].has_tid);

    CU_ASSERT_EQUAL(parse("vCont;C05:p1.2;S0b:-1;t:0;r1000,2000:p1.-1;c:p1"), 0);
    CU_ASSERT_EQUAL(A(0).num, 5);
    const struct rsp_vcont_action *a = args.vcont;
    CU_ASSERT_EQUAL(a[0].action, 'C');
    CU_ASSERT_EQUAL(a[0].signal, 5);
    CU_ASSERT(a[0].tid.has_pid);
    CU_ASSERT_EQUAL(a[0].tid.pid.kind, RSP_ID_NUM);
    CU_ASSERT_EQUAL(a[0].tid.pid.num, 1);
    CU_ASSERT_EQUAL(a[0].tid.tid.kind, RSP_ID_NUM);
    CU_ASSERT_EQUAL(a[0].tid.tid.num, 2);
    CU_ASSERT_EQUAL(a[1].action, 'S');
    CU_ASSERT_EQUAL(a[1].signal, 0xb);
    CU_ASSERT_EQUAL(a[1].tid.tid.kind, RSP_ID_ALL);
    CU_ASSERT_EQUAL(a[2].action, 't');
    CU_ASSERT(a[2].has_tid);
    CU_ASSERT_EQUAL(a[2].tid.tid.kind, RSP_ID_ANY);
    CU_ASSERT_EQUAL(a[3].action, 'r');
    CU_ASSERT_EQUAL(a[3].start, 0x1000);
    CU_ASSERT_EQUAL(a[3].end, 0x2000);
    CU_ASSERT_EQUAL(a[3].tid.pid.num, 1);
    CU_ASSERT_EQUAL(a[3].tid.tid.kind, RSP_ID_ALL);
    CU_ASSERT_EQUAL(a[4].action, 'c');
    CU_ASSERT(a[4].tid.has_pid);
    CU_ASSERT_EQUAL(a[4].tid.tid.kind, RSP_ID_ALL);

    /* Exactly RSP_VCONT_MAX actions fit; one more does not. */
    char many[8 * (RSP_VCONT_MAX + 2)] = "vCont";
    for (int i = 0; i < RSP_VCONT_MAX; i++)
        strcat(many, ";s:1");
    CU_ASSERT_EQUAL(parse(many), 0);
    CU_ASSERT_EQUAL(A(0).num, RSP_VCONT_MAX);
    strcat(many, ";c");
    CU_ASSERT(is_malformed(parse(many)));

    static const char *const bad[] = {
        "vCont",      "vCont;",       "vCont;c;",     "vCont;x",      "vCont;C",
        "vCont;C100", "vCont;r1000",  "vCont;r1000,", "vCont;r,2000", "vCont;c:",
        "vCont;c:zz", "vCont;cc",     "vCont;c:1x",   "vCont;;c",     "vCont:c",
        "vCont;c:p",  "vCont;c:p1.",  "vCont;c:-2",   "vCont;s:1:2",  "vCont;C05x",
        "vCont;r1000,2000,3000",      "vCont;c,1",
    };
    check_malformed(bad, COUNT(bad));
}

/* ---- breakpoints ---- */

static void test_breakpoints(void)
{
    CU_ASSERT_EQUAL(parse("Z0,7c00,1"), 0);
    CU_ASSERT(is("Z"));
    CU_ASSERT_EQUAL(A(0).num, RSP_BP_SOFTWARE);
    CU_ASSERT_EQUAL(A(1).num, 0x7c00);
    CU_ASSERT_EQUAL(A(2).num, 1);
    CU_ASSERT_FALSE(A(3).present);

    static const struct {
        const char *s;
        const char *type;
        enum rsp_bp_type bp;
    } kinds[] = {
        {"z0,1000,1", "z", RSP_BP_SOFTWARE},
        {"Z1,1000,1", "Z", RSP_BP_HARDWARE},
        {"z1,1000,1", "z", RSP_BP_HARDWARE},
        {"Z2,1000,4", "Z", RSP_BP_WRITE},
        {"z2,1000,4", "z", RSP_BP_WRITE},
        {"Z3,1000,8", "Z", RSP_BP_READ},
        {"z3,1000,8", "z", RSP_BP_READ},
        {"Z4,1000,2", "Z", RSP_BP_ACCESS},
        {"z4,1000,2", "z", RSP_BP_ACCESS},
    };
    for (size_t i = 0; i < COUNT(kinds); i++) {
        parse(kinds[i].s);
        CHECKF(rc == 0 && is(kinds[i].type) && A(0).num == kinds[i].bp &&
                   A(1).num == 0x1000,
               "breakpoint \"%s\"", kinds[i].s);
    }

    /* Conditions and commands are noted and skipped. */
    CU_ASSERT_EQUAL(parse("Z0,1000,1;X3,220c02"), 0);
    CU_ASSERT(A(3).present);
    CU_ASSERT_EQUAL(A(2).num, 1);
    CU_ASSERT_EQUAL(parse("Z0,1000,1;X2,0a01;cmds:0,X3,220c02"), 0);
    CU_ASSERT(A(3).present);
    CU_ASSERT_EQUAL(parse("Z1,ffffffffffffffff,ffffffffffffffff"), 0);
    CU_ASSERT_EQUAL(A(1).num, UINT64_MAX);
    CU_ASSERT_EQUAL(A(2).num, UINT64_MAX);

    static const char *const bad[] = {
        "Z5,1000,1", "z5,1000,1", "Z10,1000,1", "Zf,1000,1", "Z0,1000", "Z0,,1",
        "Z0,1000,",  "Z,1000,1",  "Z0;1000,1",  "Z0,1000,1x", "Zffffffffffffffffff,1,1",
        "Z0,1000:1", "Z",         "z",          "Z0",         "Z0,1000,10000000000000000",
        "Z0,g,1",
    };
    check_malformed(bad, COUNT(bad));
}

/* ---- thread ids ---- */

static void test_set_thread(void)
{
    CU_ASSERT_EQUAL(parse("Hg0"), 0);
    CU_ASSERT(is("H"));
    CU_ASSERT_EQUAL(A(0).num, 'g');
    CU_ASSERT_FALSE(A(1).tid.has_pid);
    CU_ASSERT_EQUAL(A(1).tid.tid.kind, RSP_ID_ANY);

    CU_ASSERT_EQUAL(parse("Hc-1"), 0);
    CU_ASSERT_EQUAL(A(0).num, 'c');
    CU_ASSERT_EQUAL(A(1).tid.tid.kind, RSP_ID_ALL);

    CU_ASSERT_EQUAL(parse("Hg1f"), 0);
    CU_ASSERT_EQUAL(A(1).tid.tid.kind, RSP_ID_NUM);
    CU_ASSERT_EQUAL(A(1).tid.tid.num, 0x1f);

    static const struct {
        const char *s;
        enum rsp_id_kind pid;
        uint64_t pid_num;
        enum rsp_id_kind tid;
        uint64_t tid_num;
    } mp[] = {
        {"Hgp1.2", RSP_ID_NUM, 1, RSP_ID_NUM, 2},
        {"Hgp1", RSP_ID_NUM, 1, RSP_ID_ALL, 0}, /* all threads of process 1 */
        {"Hgp-1", RSP_ID_ALL, 0, RSP_ID_ALL, 0},
        {"Hgp1.-1", RSP_ID_NUM, 1, RSP_ID_ALL, 0},
        {"Hgp1.0", RSP_ID_NUM, 1, RSP_ID_ANY, 0},
        {"Hcp0.0", RSP_ID_ANY, 0, RSP_ID_ANY, 0},
        {"Hcpa2b.fffffffffffffffe", RSP_ID_NUM, 0xa2b, RSP_ID_NUM, 0xfffffffffffffffe},
    };
    for (size_t i = 0; i < COUNT(mp); i++) {
        parse(mp[i].s);
        const struct rsp_tid *t = &A(1).tid;
        CHECKF(rc == 0 && t->has_pid && t->pid.kind == mp[i].pid &&
                   (mp[i].pid != RSP_ID_NUM || t->pid.num == mp[i].pid_num) &&
                   t->tid.kind == mp[i].tid && (mp[i].tid != RSP_ID_NUM || t->tid.num == mp[i].tid_num),
               "thread id \"%s\"", mp[i].s);
    }

    static const char *const bad[] = {
        "H",       "Hx1",       "Hm1",       "Hg",        "Hg-2",    "Hg-",   "Hgp",
        "Hgp1.",   "Hgp1.2.3",  "Hg1x",      "Hg10000000000000000",  "Hgp.1", "Hg-10",
        "Hgp1.-2", "Hgp1.2x",   "Hg 1",      "Hgp1;2",    "Hg-1.2",  "HG1",
    };
    check_malformed(bad, COUNT(bad));
}

static void test_thread_alive(void)
{
    CU_ASSERT_EQUAL(parse("T1"), 0);
    CU_ASSERT(is("T"));
    CU_ASSERT_FALSE(A(0).tid.has_pid);
    CU_ASSERT_EQUAL(A(0).tid.tid.kind, RSP_ID_NUM);
    CU_ASSERT_EQUAL(A(0).tid.tid.num, 1);
    CU_ASSERT_EQUAL(parse("Tp1.2"), 0);
    CU_ASSERT(A(0).tid.has_pid);
    CU_ASSERT_EQUAL(A(0).tid.pid.num, 1);
    CU_ASSERT_EQUAL(A(0).tid.tid.num, 2);

    static const char *const bad[] = {"T", "Tx", "T1,", "Tp", "T1.2", "T-1x"};
    check_malformed(bad, COUNT(bad));
}

/* ---- q packets ---- */

static void test_qsupported(void)
{
    static const char gdb[] =
        "qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;vfork-events+;"
        "exec-events+;vContSupported+;QThreadEvents+;no-resumed+;memory-tagging+;"
        "xmlRegisters=i386";
    CU_ASSERT_EQUAL(parse(gdb), 0);
    CU_ASSERT(is("qSupported"));
    CU_ASSERT_EQUAL(A(0).num,
                    RSP_FEAT_MULTIPROCESS | RSP_FEAT_SWBREAK | RSP_FEAT_HWBREAK |
                        RSP_FEAT_QRELOCINSN | RSP_FEAT_FORK_EVENTS | RSP_FEAT_VFORK_EVENTS |
                        RSP_FEAT_EXEC_EVENTS | RSP_FEAT_VCONT_SUPPORTED |
                        RSP_FEAT_THREAD_EVENTS | RSP_FEAT_NO_RESUMED | RSP_FEAT_XML_I386);
    CU_ASSERT_STRING_EQUAL(A(0).text, gdb + strlen("qSupported:"));

    CU_ASSERT_EQUAL(parse("qSupported"), 0);
    CU_ASSERT(is("qSupported"));
    CU_ASSERT_EQUAL(A(0).num, 0);
    CU_ASSERT_FALSE(A(0).present);
    CU_ASSERT_PTR_NULL(A(0).text);

    static const struct {
        const char *s;
        uint32_t features;
    } cases[] = {
        {"qSupported:", 0},
        {"qSupported:swbreak+", RSP_FEAT_SWBREAK},
        {"qSupported:swbreak-;hwbreak?;multiprocess", 0},
        {"qSupported:xmlRegisters=arm,i386", RSP_FEAT_XML_I386},
        {"qSupported:xmlRegisters=i386,arm;no-resumed+", RSP_FEAT_XML_I386 | RSP_FEAT_NO_RESUMED},
        {"qSupported:xmlRegisters=i3861", 0},
        {"qSupported:xmlRegisters=", 0},
        {"qSupported:xmlregisters=i386", 0},
        {"qSupported:i386", 0},
        {"qSupported:;;swbreak+;;", RSP_FEAT_SWBREAK},
        {"qSupported:SWBREAK+", 0},
        {"qSupported:swbreak+x", 0},
        {"qSupported:binary-upload+", RSP_FEAT_BINARY_UPLOAD},
        {"qSupported:binary-upload-", 0},
        {"qSupported:xmlRegisters=i386,arm,mips,arc;multiprocess+;fork-events+;vfork-events+",
         RSP_FEAT_XML_I386 | RSP_FEAT_MULTIPROCESS | RSP_FEAT_FORK_EVENTS | RSP_FEAT_VFORK_EVENTS},
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        parse(cases[i].s);
        CHECKF(rc == 0 && is("qSupported") && A(0).num == cases[i].features,
               "\"%s\" features %#x", cases[i].s, (unsigned)A(0).num);
    }

    static const char *const bad[] = {"qSupported;swbreak+", "qSupported,x"};
    check_malformed(bad, COUNT(bad));
    static const char nul[] = "qSupported:swbreak+\0hwbreak+";
    CU_ASSERT(is_malformed(parse_n(nul, sizeof(nul) - 1)));
    static const char *const other[] = {"qSupportedX", "qSupport"};
    check_type(other, COUNT(other), NULL);
}

static void test_qxfer_features(void)
{
    CU_ASSERT_EQUAL(parse("qXfer:features:read:target.xml:0,ffb"), 0);
    CU_ASSERT(is("qXfer:features:read:"));
    CU_ASSERT_STRING_EQUAL(A(0).text, "target.xml");
    CU_ASSERT_EQUAL(A(1).num, 0);
    CU_ASSERT_EQUAL(A(2).num, 0xffb);
    CU_ASSERT_EQUAL(parse("qXfer:features:read:64bit-core.xml:1000,ffffffffffffffff"), 0);
    CU_ASSERT_STRING_EQUAL(A(0).text, "64bit-core.xml");
    CU_ASSERT_EQUAL(A(1).num, 0x1000);
    CU_ASSERT_EQUAL(A(2).num, UINT64_MAX);

    static const char *const other[] = {
        "qXfer:auxv:read::0,100",           "qXfer:features:write:target.xml:0:abc",
        "qXfer:memory-map:read::0,100",     "qXfer:libraries-svr4:read::0,fff",
        "qXfer",
        "qXfer:",                           "qXfer:features",
        "qXfer:featuresread:target.xml:0,1", "qXfer:exec-file:read:1:0,100",
    };
    check_type(other, COUNT(other), NULL);

    static const char *const bad[] = {
        "qXfer:features:read:target.xml",     "qXfer:features:read:target.xml:0",
        "qXfer:features:read:target.xml:x,1", "qXfer:features:read:target.xml:0,1x",
        "qXfer:features:read:target.xml:0,",  "qXfer:features:read:target.xml:,1",
        "qXfer:features:read:a:b:0,1",
    };
    check_malformed(bad, COUNT(bad));
    static const char nul[] = "qXfer:features:read:target.xml\0x:0,1";
    CU_ASSERT(is_malformed(parse_n(nul, sizeof(nul) - 1)));
}

static void test_qattached(void)
{
    CU_ASSERT_EQUAL(parse("qAttached"), 0);
    CU_ASSERT(is("qAttached"));
    CU_ASSERT_FALSE(A(0).present);
    CU_ASSERT_EQUAL(parse("qAttached:2a"), 0);
    CU_ASSERT(A(0).present);
    CU_ASSERT_EQUAL(A(0).num, 0x2a);

    static const char *const bad[] = {"qAttached:", "qAttached:zz", "qAttached;1", "qAttached:1:"};
    check_malformed(bad, COUNT(bad));
}

static void test_qrcmd(void)
{
    CU_ASSERT_EQUAL(parse("qRcmd,7265736574"), 0);
    CU_ASSERT(is("qRcmd"));
    CU_ASSERT_STRING_EQUAL(A(0).text, "reset");
    CU_ASSERT_EQUAL(A(0).len, 5);
    /* "monitor" with no argument. */
    CU_ASSERT_EQUAL(parse("qRcmd,"), 0);
    CU_ASSERT_STRING_EQUAL(A(0).text, "");
    CU_ASSERT_PTR_EQUAL(A(0).text, buf + 6); /* the NUL after the payload */
    CU_ASSERT_EQUAL(A(0).len, 0);
    /* A NUL in the text is kept; len tells. */
    CU_ASSERT_EQUAL(parse("qRcmd,610062"), 0);
    CU_ASSERT_EQUAL(A(0).len, 3);
    CU_ASSERT_EQUAL(memcmp(A(0).text, "a\0b", 4), 0);

    static const char *const bad[] = {"qRcmd", "qRcmd,abc", "qRcmd,zz", "qRcmd:7265", "qRcmd;72"};
    check_malformed(bad, COUNT(bad));
}

static void test_qsymbol(void)
{
    static const char *const good[] = {"qSymbol::", "qSymbol:6d61696e", "qSymbol:1000:6d61696e",
                                       "qSymbol:"};
    check_type(good, COUNT(good), "qSymbol");
    static const char *const bad[] = {"qSymbol", "qSymbol,"};
    check_malformed(bad, COUNT(bad));
}

/* ---- process ---- */

static void test_detach_kill(void)
{
    CU_ASSERT_EQUAL(parse("D"), 0);
    CU_ASSERT(is("D"));
    CU_ASSERT_FALSE(A(0).present);
    CU_ASSERT_EQUAL(parse("D;1"), 0);
    CU_ASSERT(A(0).present);
    CU_ASSERT_EQUAL(A(0).num, 1);
    CU_ASSERT(is("D"));
    /* LLDB's "detach and stay stopped": the longer name wins. */
    CU_ASSERT_EQUAL(parse("D1"), 0);
    CU_ASSERT(is("D1"));
    CU_ASSERT_EQUAL(parse("vKill;a"), 0);
    CU_ASSERT(is("vKill"));
    CU_ASSERT(A(0).present);
    CU_ASSERT_EQUAL(A(0).num, 0xa);

    static const char *const bad[] = {
        "D;", "Dx", "D;zz", "D;1x", "D11", "D0", "D1;1", "D:1", "vKill", "vKill;", "vKill;zz",
        "vKill;1x", "vKill:1",
    };
    check_malformed(bad, COUNT(bad));
}

/* ---- unknown packets ---- */

static void test_extended_and_qemu_packets(void)
{
    CU_ASSERT_EQUAL(parse("!"), 0);
    CU_ASSERT(is("!"));
    CU_ASSERT_EQUAL(parse("R00"), 0);
    CU_ASSERT(is("R"));
    CU_ASSERT_EQUAL(parse("R"), 0);
    CU_ASSERT(is("R"));
    CU_ASSERT_EQUAL(parse("vRun;"), 0);
    CU_ASSERT(is("vRun"));
    CU_ASSERT_STRING_EQUAL(A(0).text, "");
    CU_ASSERT_EQUAL(parse("vRun;2f746d702f61;6172670a"), 0);
    CU_ASSERT(is("vRun"));
    CU_ASSERT_STRING_EQUAL(A(0).text, "2f746d702f61;6172670a");
    CU_ASSERT_EQUAL(parse("qThreadExtraInfo,2"), 0);
    CU_ASSERT(is("qThreadExtraInfo"));
    CU_ASSERT_EQUAL(A(0).tid.tid.num, 2);
    CU_ASSERT_EQUAL(parse("qThreadExtraInfo,p1.3"), 0);
    CU_ASSERT_EQUAL(A(0).tid.tid.num, 3);
    CU_ASSERT_EQUAL(parse("Qqemu.PhyMemMode:1"), 0);
    CU_ASSERT(is("Qqemu.PhyMemMode"));
    CU_ASSERT_EQUAL(A(0).num, '1');
    CU_ASSERT_EQUAL(parse("Qqemu.PhyMemMode:0"), 0);
    CU_ASSERT_EQUAL(A(0).num, '0');
    CU_ASSERT_EQUAL(parse("qqemu.PhyMemMode"), 0);
    CU_ASSERT(is("qqemu.PhyMemMode"));
    CU_ASSERT_EQUAL(parse("qXfer:threads:read::0,fff"), 0);
    CU_ASSERT(is("qXfer:threads:read:"));
    CU_ASSERT_EQUAL(A(2).num, 0xfff);
    static const char *const bad[] = {"!x", "Rzz", "qThreadExtraInfo", "qThreadExtraInfo,",
                                      "Qqemu.PhyMemMode:2", "Qqemu.PhyMemMode", "vRun",
                                      "qqemu.PhyMemModeX:1"};
    for (size_t i = 0; i < COUNT(bad); i++) {
        parse(bad[i]);
        CHECKF(is_malformed(rc) || is(NULL), "'%s' parsed as %s", bad[i], kind);
    }
}

static void test_unsupported(void)
{
    static const char *const cases[] = {
        "qTStatus",       "vFile:open:6a7573742070726f6273,0,1c0", "QNonStop:0",
        "qL1200000000000000000", "qXfer:auxv:read::0,100", "vAttach;1",
        "vStopped",   "vCtrlC",     "QPassSignals:e;10",
        "qGetTLSAddr:1,0,0", "qCRC:1000,10", "b9600", "i",          "A",
        "qP0000001f0000000000000001", "vContc",       "vCont_",    "vMustReplyEmptyX",
        "vKillX", "QStartNoAckModeX", "q",            "Q",          "v",          "qc",
        "t1000:0,0", "F-1,4,0",       "\x03",         "+",          "$",
        /* LLDB's other queries, answered "unsupported" on purpose */
        "QThreadSuffixSupported", "qVAttachOrWaitSupported", "QEnableErrorStrings",
        "qStructuredDataPlugins", "jThreadsInfo", "jThreadExtendedInfo:", "qMemoryRegionInfo:0",
        "qWatchpointSupportInfo:", "qHostInfoX", "qProcessInfoPID:1", "QListThreadsInStopReplyX",
    };
    check_type(cases, COUNT(cases), NULL);

    CU_ASSERT_EQUAL(parse_n("", 0), 0);
    CU_ASSERT(is(NULL));
    CU_ASSERT_EQUAL(rsp_command_match(&defs[0], NULL, 0), 0);
    CU_ASSERT(is(NULL));
    CU_ASSERT_EQUAL(parse_n("\0g", 2), 0);
    CU_ASSERT(is(NULL));
}

/* ---- through the decoder ---- */

static void test_decoded_payload(void)
{
    /* What the decoder hands out parses in place: an X packet whose binary
     * data came escaped and run-length encoded. */
    struct rsp_conn c;
    struct rsp_event ev;
    CU_ASSERT_FATAL(rsp_conn_init(&c) == 0);
    static const char raw[] = "X20,6:}\x03:*!";
    char pkt[64];
    unsigned sum = 0;
    for (size_t i = 0; i < sizeof(raw) - 1; i++)
        sum += (uint8_t)raw[i];
    int n = snprintf(pkt, sizeof(pkt), "$%s#%02x", raw, sum & 0xff);
    CU_ASSERT_EQUAL(rsp_conn_feed(&c, (const uint8_t *)pkt, (size_t)n, &ev), (size_t)n);
    CU_ASSERT_EQUAL_FATAL(ev.type, RSP_EVENT_PACKET);
    const struct rsp_command *d = find(ev.payload, ev.len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_STRING_EQUAL(d->name, "X");
    CU_ASSERT_EQUAL(rsp_command_read(d, ev.payload, ev.len, &args), 0);
    CU_ASSERT_EQUAL(A(0).num, 0x20);
    CU_ASSERT(data_is(A(2).data, 6, "#:::::", 6));
    rsp_conn_free(&c);
}

/* ---- the schema language itself ---- */

static int read_with(const char *name, const char *schema, const char *payload)
{
    const struct rsp_command d = {name, schema};
    size_t n = strlen(payload);
    free(buf);
    buf = malloc(n + 1);
    CU_ASSERT_FATAL(buf != NULL);
    memcpy(buf, payload, n);
    buf[n] = 0x55;
    CU_ASSERT_FATAL(rsp_command_match(&d, buf, n) == strlen(name));
    kind = name;
    rc = rsp_command_read(&d, buf, n, &args);
    return rc;
}

static void test_names_match(void)
{
    static const struct rsp_command qc = {"qC", ""}, xfer = {"qXfer:a:", "an,n"},
                                       m = {"m", "n,n"}, vq = {"vCont?", ""};
    /* A word ends at the payload's end or a separator; a letter is a prefix. */
    CU_ASSERT_EQUAL(rsp_command_match(&qc, (const uint8_t *)"qC", 2), 2);
    CU_ASSERT_EQUAL(rsp_command_match(&qc, (const uint8_t *)"qC:1", 4), 2);
    CU_ASSERT_EQUAL(rsp_command_match(&qc, (const uint8_t *)"qC;1", 4), 2);
    CU_ASSERT_EQUAL(rsp_command_match(&qc, (const uint8_t *)"qC,1", 4), 2);
    CU_ASSERT_EQUAL(rsp_command_match(&qc, (const uint8_t *)"qCRC:1", 6), 0);
    CU_ASSERT_EQUAL(rsp_command_match(&qc, (const uint8_t *)"q", 1), 0);
    CU_ASSERT_EQUAL(rsp_command_match(&qc, (const uint8_t *)"qc", 2), 0);
    /* A name ending in a separator goes straight on into its fields. */
    CU_ASSERT_EQUAL(rsp_command_match(&xfer, (const uint8_t *)"qXfer:a:x:0,1", 13), 8);
    CU_ASSERT_EQUAL(rsp_command_match(&m, (const uint8_t *)"m10,1", 5), 1);
    CU_ASSERT_EQUAL(rsp_command_match(&m, (const uint8_t *)"M10,1:00", 8), 0);
    CU_ASSERT_EQUAL(rsp_command_match(&vq, (const uint8_t *)"vCont", 5), 0);
    CU_ASSERT_EQUAL(rsp_command_match(&vq, (const uint8_t *)"vCont?c", 7), 6); /* then malformed */
    CU_ASSERT_EQUAL(rsp_command_match(&m, (const uint8_t *)"m", 0), 0);
    /* The longest name wins whatever the order: D1 is listed after D. */
    CU_ASSERT_EQUAL(parse("D1"), 0);
    CU_ASSERT(is("D1"));
    CU_ASSERT_EQUAL(parse("vCont?"), 0);
    CU_ASSERT(is("vCont?"));
    /* Reading a packet of another kind is refused, not misread. */
    static const struct rsp_command g = {"g", ""};
    uint8_t p[] = "m1,1";
    CU_ASSERT_EQUAL(rsp_command_read(&g, p, 4, &args), -EINVAL);
}

static void test_schema_parts(void)
{
    /* Optional parts: absent only where the payload has ended. */
    CU_ASSERT_EQUAL(read_with("w", "n[,n][;s]", "w1"), 0);
    CU_ASSERT_EQUAL(args.count, 3);
    CU_ASSERT(A(0).present && !A(1).present && !A(2).present);
    CU_ASSERT_EQUAL(read_with("w", "n[,n][;s]", "w1,2;ab"), 0);
    CU_ASSERT(A(1).present && A(1).num == 2 && A(2).present);
    CU_ASSERT_STRING_EQUAL(A(2).text, "ab");
    CU_ASSERT(is_malformed(read_with("w", "n[,n]", "w1,")));
    CU_ASSERT(is_malformed(read_with("w", "n[,n]", "w1;2")));
    /* A choice takes one of its characters, no other. */
    CU_ASSERT_EQUAL(read_with("w", "{ab}n", "wb7"), 0);
    CU_ASSERT_EQUAL(A(0).num, 'b');
    CU_ASSERT_EQUAL(A(1).num, 7);
    CU_ASSERT(is_malformed(read_with("w", "{ab}n", "wc7")));
    CU_ASSERT(is_malformed(read_with("w", "{ab}n", "w")));
    /* Sized data counts against the field just before it. */
    CU_ASSERT_EQUAL(read_with("w", "n:X", "w2:0a0b"), 0);
    CU_ASSERT(data_is(A(1).data, A(1).len, "\x0a\x0b", 2));
    CU_ASSERT(is_malformed(read_with("w", "n:X", "w3:0a0b")));
    CU_ASSERT(is_malformed(read_with("w", "n:b", "w3:ab")));
    /* Schema mistakes are reported as such, never read past. */
    CU_ASSERT(is_malformed(read_with("w", "X", "w00")));
    CU_ASSERT(is_malformed(read_with("w", "{ab", "wa")));
    CU_ASSERT(is_malformed(read_with("w", "[nnnnnnn]", "w")));
    CU_ASSERT_PTR_NOT_NULL(strstr(args.reason, "schema"));
    /* Text with a NUL is refused; hex text keeps one, its length tells. */
    static const char nul[] = "wa\0b";
    free(buf);
    buf = malloc(sizeof(nul));
    CU_ASSERT_FATAL(buf != NULL);
    memcpy(buf, nul, sizeof(nul));
    static const struct rsp_command w = {"w", "s"};
    CU_ASSERT_EQUAL(rsp_command_read(&w, buf, sizeof(nul) - 1, &args), -EINVAL);
}

static void register_suites(void)
{
    static const struct rsp_test tests[] = {
        {"bare packets", test_bare_packets},
        {"g and G", test_read_regs_write_regs},
        {"p", test_read_reg},
        {"P", test_write_reg},
        {"m and x", test_read_mem},
        {"M", test_write_mem},
        {"X", test_write_mem_binary},
        {"c, s, C, S", test_continue_step},
        {"vCont", test_vcont},
        {"Z and z", test_breakpoints},
        {"H", test_set_thread},
        {"T", test_thread_alive},
        {"qSupported", test_qsupported},
        {"qXfer:features:read", test_qxfer_features},
        {"qAttached", test_qattached},
        {"qRcmd", test_qrcmd},
        {"qSymbol", test_qsymbol},
        {"D and vKill", test_detach_kill},
        {"extended-remote and QEMU's packets", test_extended_and_qemu_packets},
        {"unsupported", test_unsupported},
        {"decoded payload", test_decoded_payload},
        {"names match", test_names_match},
        {"schema parts", test_schema_parts},
    };
    rsp_test_add_suite("rsp command", tests, COUNT(tests), clean);
}

int main(void)
{
    return test_main("test_rsp_command", register_suites, false);
}
