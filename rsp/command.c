#include "command.h"

#include <errno.h>
#include <string.h>

#include "hex.h"

/* A cursor over the payload. The first error sticks: later steps do nothing,
 * so each parser reads as the packet's grammar, with one check at the end. */
struct cur {
    char *p;
    char *end;
    const char *err;
};

static void fail(struct cur *c, const char *why)
{
    if (!c->err)
        c->err = why;
}

static bool at_end(const struct cur *c)
{
    return c->p >= c->end;
}

static bool eat(struct cur *c, char ch)
{
    if (c->err || at_end(c) || *c->p != ch)
        return false;
    c->p++;
    return true;
}

static void expect(struct cur *c, char ch, const char *why)
{
    if (!eat(c, ch))
        fail(c, why);
}

static void expect_end(struct cur *c)
{
    if (!at_end(c))
        fail(c, "trailing garbage");
}

static uint64_t num(struct cur *c, const char *why)
{
    uint64_t v = 0;
    const char *p = c->p;
    if (c->err)
        return 0;
    int err = rsp_hex_parse_u64(&p, c->end, &v);
    if (err) {
        fail(c, err == -ERANGE ? "number wider than 64 bits" : why);
        return 0;
    }
    c->p += p - c->p; /* advance without casting away the const */
    return v;
}

static uint8_t signal_num(struct cur *c)
{
    uint64_t v = num(c, "bad signal number");
    if (v > 0xff)
        fail(c, "signal number out of range");
    return (uint8_t)v;
}

/* Decodes the hex from the cursor to the end of the payload where it lies;
 * returns the byte count. */
static size_t hex_rest(struct cur *c, const char *why)
{
    if (c->err)
        return 0;
    long n = rsp_hex_decode((uint8_t *)c->p, c->p, (size_t)(c->end - c->p));
    if (n < 0) {
        fail(c, why);
        return 0;
    }
    return (size_t)n;
}

static bool has_nul(const struct cur *c)
{
    return memchr(c->p, 0, (size_t)(c->end - c->p)) != NULL;
}

/* "-1", "0" or a hex number. */
static void parse_id(struct cur *c, struct rsp_id *id)
{
    if (eat(c, '-')) {
        expect(c, '1', "bad thread id");
        id->kind = RSP_ID_ALL;
        id->num = 0;
        return;
    }
    id->num = num(c, "bad thread id");
    id->kind = id->num ? RSP_ID_NUM : RSP_ID_ANY;
}

static void parse_tid(struct cur *c, struct rsp_tid *t)
{
    memset(t, 0, sizeof(*t));
    if (eat(c, 'p')) {
        t->has_pid = true;
        parse_id(c, &t->pid);
        if (eat(c, '.'))
            parse_id(c, &t->tid);
        else
            t->tid.kind = RSP_ID_ALL;
    } else {
        parse_id(c, &t->tid);
    }
}

/* m, M, x, X */
static void parse_mem(struct cur *c, struct rsp_cmd *cmd, char op)
{
    switch (op) {
    case 'm':
        cmd->type = RSP_CMD_READ_MEM;
        break;
    case 'x':
        cmd->type = RSP_CMD_READ_MEM_BIN;
        break;
    case 'M':
        cmd->type = RSP_CMD_WRITE_MEM;
        break;
    default:
        cmd->type = RSP_CMD_WRITE_MEM_BIN;
        break;
    }
    cmd->u.mem.addr = num(c, "bad address");
    expect(c, ',', "missing comma");
    cmd->u.mem.len = num(c, "bad length");
    if (op == 'm' || op == 'x') {
        expect_end(c);
        return;
    }
    expect(c, ':', "missing colon");
    if (c->err)
        return;
    size_t n = (size_t)(c->end - c->p);
    cmd->u.mem.data = (const uint8_t *)c->p;
    if (op == 'X') {
        /* Binary data: any byte, ':' and NUL included, counts. */
        if ((uint64_t)n != cmd->u.mem.len)
            fail(c, "binary data length differs from the length field");
    } else if (n % 2 || (uint64_t)(n / 2) != cmd->u.mem.len) {
        fail(c, "hex data length differs from the length field");
    } else {
        hex_rest(c, "bad hex data");
    }
    c->p = c->end;
}

/* c, s, C, S */
static void parse_resume(struct cur *c, struct rsp_cmd *cmd, char op)
{
    cmd->type = (op == 'c' || op == 'C') ? RSP_CMD_CONTINUE : RSP_CMD_STEP;
    if (op == 'C' || op == 'S') {
        cmd->u.resume.has_signal = true;
        cmd->u.resume.signal = signal_num(c);
        if (!eat(c, ';')) {
            expect_end(c);
            return;
        }
    } else if (at_end(c)) {
        return;
    }
    cmd->u.resume.has_addr = true;
    cmd->u.resume.addr = num(c, "bad address");
    expect_end(c);
}

static void parse_vcont(struct cur *c, struct rsp_cmd *cmd)
{
    cmd->type = RSP_CMD_VCONT;
    if (at_end(c))
        fail(c, "vCont without actions");
    while (!c->err && !at_end(c)) {
        expect(c, ';', "missing semicolon");
        if (c->err)
            break;
        if (cmd->u.vcont.count == RSP_VCONT_MAX) {
            fail(c, "too many vCont actions");
            break;
        }
        struct rsp_vcont_action *a = &cmd->u.vcont.actions[cmd->u.vcont.count++];
        if (at_end(c)) {
            fail(c, "empty vCont action");
            break;
        }
        a->action = *c->p++;
        switch (a->action) {
        case 'c':
        case 's':
        case 't':
            break;
        case 'C':
        case 'S':
            a->signal = signal_num(c);
            break;
        case 'r':
            a->start = num(c, "bad range start");
            expect(c, ',', "missing comma");
            a->end = num(c, "bad range end");
            break;
        default:
            fail(c, "unknown vCont action");
            break;
        }
        if (eat(c, ':')) {
            a->has_tid = true;
            parse_tid(c, &a->tid);
        }
    }
}

static void parse_bp(struct cur *c, struct rsp_cmd *cmd, char op)
{
    cmd->type = op == 'Z' ? RSP_CMD_INSERT_BP : RSP_CMD_REMOVE_BP;
    uint64_t type = num(c, "bad breakpoint type");
    if (type > RSP_BP_ACCESS)
        fail(c, "unknown breakpoint type");
    cmd->u.bp.type = (enum rsp_bp_type)type;
    expect(c, ',', "missing comma");
    cmd->u.bp.addr = num(c, "bad address");
    expect(c, ',', "missing comma");
    cmd->u.bp.kind = num(c, "bad breakpoint kind");
    /* Target-side conditions and commands are only sent to a stub that
     * advertised them; one sent anyway is skipped, never evaluated. */
    if (eat(c, ';')) {
        cmd->u.bp.has_conditions = true;
        c->p = c->end;
    }
    expect_end(c);
}

struct feature {
    const char *name;
    uint32_t flag;
};

static const struct feature features[] = {
    {"multiprocess+", RSP_FEAT_MULTIPROCESS},
    {"swbreak+", RSP_FEAT_SWBREAK},
    {"hwbreak+", RSP_FEAT_HWBREAK},
    {"vContSupported+", RSP_FEAT_VCONT_SUPPORTED},
    {"no-resumed+", RSP_FEAT_NO_RESUMED},
    {"qRelocInsn+", RSP_FEAT_QRELOCINSN},
    {"fork-events+", RSP_FEAT_FORK_EVENTS},
    {"vfork-events+", RSP_FEAT_VFORK_EVENTS},
    {"exec-events+", RSP_FEAT_EXEC_EVENTS},
    {"QThreadEvents+", RSP_FEAT_THREAD_EVENTS},
    {"binary-upload+", RSP_FEAT_BINARY_UPLOAD},
};

static bool word_is(const char *p, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(p, word, n) == 0;
}

/* End of the item starting at p in a sep-separated list ending at end. */
static const char *next_item(const char *p, const char *end, char sep)
{
    const char *q = memchr(p, sep, (size_t)(end - p));
    return q ? q : end;
}

static bool list_has(const char *p, const char *end, char sep, const char *word)
{
    for (;;) {
        const char *q = next_item(p, end, sep);
        if (word_is(p, (size_t)(q - p), word))
            return true;
        if (q == end)
            return false;
        p = q + 1;
    }
}

static uint32_t feature_flags(const char *p, const char *end)
{
    static const char xml[] = "xmlRegisters=";
    const size_t xml_len = sizeof(xml) - 1;
    uint32_t flags = 0;

    for (;;) {
        const char *q = next_item(p, end, ';');
        size_t n = (size_t)(q - p);
        for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++)
            if (word_is(p, n, features[i].name))
                flags |= features[i].flag;
        if (n >= xml_len && memcmp(p, xml, xml_len) == 0 && list_has(p + xml_len, q, ',', "i386"))
            flags |= RSP_FEAT_XML_I386;
        if (q == end)
            return flags;
        p = q + 1;
    }
}

static void parse_qsupported(struct cur *c, struct rsp_cmd *cmd)
{
    cmd->type = RSP_CMD_QSUPPORTED;
    cmd->u.supported.raw = "";
    if (at_end(c))
        return;
    expect(c, ':', "missing colon");
    if (c->err)
        return;
    if (has_nul(c)) {
        fail(c, "NUL in feature list");
        return;
    }
    cmd->u.supported.raw = c->p;
    cmd->u.supported.features = feature_flags(c->p, c->end);
    c->p = c->end;
}

/* The target description and the thread list are served; other objects
 * are unsupported. */
static void parse_qxfer(struct cur *c, struct rsp_cmd *cmd)
{
    static const char feats[] = ":features:read:", threads[] = ":threads:read:";
    size_t n = sizeof(feats) - 1, t = sizeof(threads) - 1;

    if ((size_t)(c->end - c->p) >= t && memcmp(c->p, threads, t) == 0) {
        n = t;
        cmd->type = RSP_CMD_QXFER_THREADS;
    } else if ((size_t)(c->end - c->p) >= n && memcmp(c->p, feats, n) == 0) {
        cmd->type = RSP_CMD_QXFER_FEATURES;
    } else {
        return;
    }
    c->p += n;
    char *colon = memchr(c->p, ':', (size_t)(c->end - c->p));
    if (!colon) {
        fail(c, "missing offset");
        return;
    }
    if (memchr(c->p, 0, (size_t)(colon - c->p))) {
        fail(c, "NUL in annex");
        return;
    }
    *colon = '\0';
    cmd->u.xfer.annex = c->p;
    c->p = colon + 1;
    cmd->u.xfer.offset = num(c, "bad offset");
    expect(c, ',', "missing comma");
    cmd->u.xfer.length = num(c, "bad length");
    expect_end(c);
}

static void parse_qrcmd(struct cur *c, struct rsp_cmd *cmd)
{
    cmd->type = RSP_CMD_QRCMD;
    expect(c, ',', "missing command");
    size_t n = hex_rest(c, "bad hex command");
    if (c->err)
        return;
    c->p[n] = '\0'; /* n <= the hex length, so this stays in the payload */
    cmd->u.rcmd.text = c->p;
    cmd->u.rcmd.len = n;
    c->p = c->end;
}

/* "[sep]pid" when present. */
static void optional_pid(struct cur *c, struct rsp_cmd *cmd, char sep)
{
    if (at_end(c))
        return;
    expect(c, sep, "trailing garbage");
    cmd->u.process.has_pid = true;
    cmd->u.process.pid = num(c, "bad process id");
    expect_end(c);
}

/* Length of a q, Q or v packet's name: up to its first separator. */
static size_t name_len(const struct cur *c)
{
    const char *p = c->p;
    while (p < c->end && *p != ':' && *p != ';' && *p != ',' && *p != '?')
        p++;
    return (size_t)(p - c->p);
}

/* Packets that take nothing after their name. */
static void bare(struct cur *c, struct rsp_cmd *cmd, enum rsp_cmd_type type)
{
    cmd->type = type;
    expect_end(c);
}

static void parse_q(struct cur *c, struct rsp_cmd *cmd)
{
    size_t n = name_len(c);
    const char *name = c->p;
    c->p += n;

    if (word_is(name, n, "qSupported"))
        parse_qsupported(c, cmd);
    else if (word_is(name, n, "qXfer"))
        parse_qxfer(c, cmd);
    else if (word_is(name, n, "qC"))
        bare(c, cmd, RSP_CMD_QC);
    else if (word_is(name, n, "qfThreadInfo"))
        bare(c, cmd, RSP_CMD_QFTHREADINFO);
    else if (word_is(name, n, "qsThreadInfo"))
        bare(c, cmd, RSP_CMD_QSTHREADINFO);
    else if (word_is(name, n, "qAttached")) {
        cmd->type = RSP_CMD_QATTACHED;
        optional_pid(c, cmd, ':');
    } else if (word_is(name, n, "qRcmd"))
        parse_qrcmd(c, cmd);
    else if (word_is(name, n, "qOffsets"))
        bare(c, cmd, RSP_CMD_QOFFSETS);
    else if (word_is(name, n, "qSymbol")) {
        /* Every form ("::", ":addr", "addr:name") is gdb offering symbol
         * lookups, which the stub answers the same way, so none is read. */
        cmd->type = RSP_CMD_QSYMBOL;
        expect(c, ':', "missing colon");
        c->p = c->end;
    } else if (word_is(name, n, "QStartNoAckMode"))
        bare(c, cmd, RSP_CMD_START_NOACK);
    else if (word_is(name, n, "qHostInfo"))
        bare(c, cmd, RSP_CMD_QHOSTINFO);
    else if (word_is(name, n, "qProcessInfo"))
        bare(c, cmd, RSP_CMD_QPROCESSINFO);
    else if (word_is(name, n, "QListThreadsInStopReply"))
        bare(c, cmd, RSP_CMD_LIST_THREADS_STOP);
    else if (word_is(name, n, "qThreadExtraInfo")) {
        cmd->type = RSP_CMD_THREAD_EXTRA;
        expect(c, ',', "missing thread id");
        if (!c->err)
            parse_tid(c, &cmd->u.alive);
        expect_end(c);
    } else if (word_is(name, n, "Qqemu.PhyMemMode")) {
        cmd->type = RSP_CMD_PHYMEM_SET;
        expect(c, ':', "missing mode");
        if (!c->err && c->end - c->p == 1 && (*c->p == '0' || *c->p == '1')) {
            cmd->u.phymem = *c->p == '1';
            c->p++;
        } else if (!c->err) {
            fail(c, "mode is 0 or 1");
        }
        expect_end(c);
    } else if (word_is(name, n, "qqemu.PhyMemMode"))
        bare(c, cmd, RSP_CMD_PHYMEM_GET);
    else if (word_is(name, n, "qSupportsDetachAndStayStopped")) {
        /* LLDB sends it with a colon and nothing after. */
        cmd->type = RSP_CMD_QDETACH_STOPPED;
        eat(c, ':');
        expect_end(c);
    }
}

static void parse_v(struct cur *c, struct rsp_cmd *cmd)
{
    size_t n = name_len(c);
    const char *name = c->p;
    c->p += n;

    if (word_is(name, n, "vCont")) {
        if (eat(c, '?'))
            bare(c, cmd, RSP_CMD_VCONT_QUERY);
        else
            parse_vcont(c, cmd);
    } else if (word_is(name, n, "vMustReplyEmpty")) {
        bare(c, cmd, RSP_CMD_VMUSTREPLYEMPTY);
    } else if (word_is(name, n, "vRun")) {
        /* The program and arguments are gdb's; kvmstub runs its image. */
        cmd->type = RSP_CMD_VRUN;
        expect(c, ';', "missing program");
        if (!c->err && has_nul(c))
            fail(c, "NUL in arguments");
        cmd->u.run.args = c->p;
        c->p = c->end;
    } else if (word_is(name, n, "vKill")) {
        cmd->type = RSP_CMD_VKILL;
        expect(c, ';', "missing process id");
        cmd->u.process.has_pid = true;
        cmd->u.process.pid = num(c, "bad process id");
        expect_end(c);
    }
}

static void parse_one(struct cur *c, struct rsp_cmd *cmd)
{
    char op = *c->p;

    /* q, Q and v packets are matched on their whole name, so they keep the
     * first letter; the others are single letters. */
    if (op == 'q' || op == 'Q') {
        parse_q(c, cmd);
        return;
    }
    if (op == 'v') {
        parse_v(c, cmd);
        return;
    }
    c->p++;
    switch (op) {
    case '?':
        bare(c, cmd, RSP_CMD_HALT_REASON);
        break;
    case 'g':
        bare(c, cmd, RSP_CMD_READ_REGS);
        break;
    case 'G':
        cmd->type = RSP_CMD_WRITE_REGS;
        if (at_end(c))
            fail(c, "missing register data");
        cmd->u.regs.data = (const uint8_t *)c->p;
        cmd->u.regs.len = hex_rest(c, "bad hex data");
        c->p = c->end;
        break;
    case 'p':
        cmd->type = RSP_CMD_READ_REG;
        cmd->u.reg.regno = num(c, "bad register number");
        expect_end(c);
        break;
    case 'P':
        cmd->type = RSP_CMD_WRITE_REG;
        cmd->u.reg.regno = num(c, "bad register number");
        expect(c, '=', "missing '='");
        if (!c->err && at_end(c))
            fail(c, "missing register value");
        cmd->u.reg.data = (const uint8_t *)c->p;
        cmd->u.reg.len = hex_rest(c, "bad hex data");
        c->p = c->end;
        break;
    case 'm':
    case 'M':
    case 'x':
    case 'X':
        parse_mem(c, cmd, op);
        break;
    case 'c':
    case 'C':
    case 's':
    case 'S':
        parse_resume(c, cmd, op);
        break;
    case 'Z':
    case 'z':
        parse_bp(c, cmd, op);
        break;
    case 'H':
        cmd->type = RSP_CMD_SET_THREAD;
        if (at_end(c) || (*c->p != 'g' && *c->p != 'c')) {
            fail(c, "unknown H operation");
            break;
        }
        cmd->u.thread.op = *c->p++;
        parse_tid(c, &cmd->u.thread.tid);
        expect_end(c);
        break;
    case 'T':
        cmd->type = RSP_CMD_THREAD_ALIVE;
        parse_tid(c, &cmd->u.alive);
        expect_end(c);
        break;
    case 'k':
        bare(c, cmd, RSP_CMD_KILL);
        break;
    case 'b':
        /* bc, bs: reverse execution. Anything else after 'b' is the long
         * gone baud-rate packet, which stays unsupported. */
        if (c->end - c->p >= 1 && (*c->p == 'c' || *c->p == 's')) {
            enum rsp_cmd_type t = *c->p == 'c' ? RSP_CMD_REVERSE_CONTINUE : RSP_CMD_REVERSE_STEP;
            c->p++;
            bare(c, cmd, t);
        }
        break;
    case '!':
        bare(c, cmd, RSP_CMD_EXTENDED);
        break;
    case 'R':
        /* "R XX": the value means nothing to any stub; it is read and dropped. */
        cmd->type = RSP_CMD_RESTART;
        if (!at_end(c))
            num(c, "bad restart value");
        expect_end(c);
        break;
    case 'D':
        cmd->type = RSP_CMD_DETACH;
        /* LLDB's "detach and stay stopped"; gdb never sends a bare digit. */
        if (c->end - c->p == 1 && *c->p == '1') {
            cmd->u.process.keep_stopped = true;
            c->p++;
            break;
        }
        optional_pid(c, cmd, ';');
        break;
    default:
        break;
    }
}

int rsp_parse(uint8_t *payload, size_t len, struct rsp_cmd *cmd)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->type = RSP_CMD_UNSUPPORTED;
    if (!payload || len == 0)
        return 0;
    /* Strings handed out end at the payload's end; make sure they do. */
    payload[len] = 0;
    struct cur c = {(char *)payload, (char *)payload + len, NULL};
    parse_one(&c, cmd);
    if (c.err) {
        cmd->type = RSP_CMD_MALFORMED;
        cmd->reason = c.err;
        return -EINVAL;
    }
    return 0;
}

const char *rsp_cmd_name(enum rsp_cmd_type type)
{
    static const char *const names[] = {
        [RSP_CMD_UNSUPPORTED] = "unsupported",
        [RSP_CMD_MALFORMED] = "malformed",
        [RSP_CMD_HALT_REASON] = "?",
        [RSP_CMD_READ_REGS] = "g",
        [RSP_CMD_WRITE_REGS] = "G",
        [RSP_CMD_READ_REG] = "p",
        [RSP_CMD_WRITE_REG] = "P",
        [RSP_CMD_READ_MEM] = "m",
        [RSP_CMD_WRITE_MEM] = "M",
        [RSP_CMD_READ_MEM_BIN] = "x",
        [RSP_CMD_WRITE_MEM_BIN] = "X",
        [RSP_CMD_CONTINUE] = "continue",
        [RSP_CMD_STEP] = "step",
        [RSP_CMD_VCONT_QUERY] = "vCont?",
        [RSP_CMD_VCONT] = "vCont",
        [RSP_CMD_VMUSTREPLYEMPTY] = "vMustReplyEmpty",
        [RSP_CMD_VKILL] = "vKill",
        [RSP_CMD_INSERT_BP] = "Z",
        [RSP_CMD_REMOVE_BP] = "z",
        [RSP_CMD_SET_THREAD] = "H",
        [RSP_CMD_THREAD_ALIVE] = "T",
        [RSP_CMD_QSUPPORTED] = "qSupported",
        [RSP_CMD_QXFER_FEATURES] = "qXfer:features:read",
        [RSP_CMD_QC] = "qC",
        [RSP_CMD_QFTHREADINFO] = "qfThreadInfo",
        [RSP_CMD_QSTHREADINFO] = "qsThreadInfo",
        [RSP_CMD_QATTACHED] = "qAttached",
        [RSP_CMD_QRCMD] = "qRcmd",
        [RSP_CMD_QOFFSETS] = "qOffsets",
        [RSP_CMD_QSYMBOL] = "qSymbol",
        [RSP_CMD_START_NOACK] = "QStartNoAckMode",
        [RSP_CMD_KILL] = "k",
        [RSP_CMD_DETACH] = "D",
        [RSP_CMD_QHOSTINFO] = "qHostInfo",
        [RSP_CMD_QPROCESSINFO] = "qProcessInfo",
        [RSP_CMD_LIST_THREADS_STOP] = "QListThreadsInStopReply",
        [RSP_CMD_QDETACH_STOPPED] = "qSupportsDetachAndStayStopped",
        [RSP_CMD_EXTENDED] = "!",
        [RSP_CMD_RESTART] = "R",
        [RSP_CMD_VRUN] = "vRun",
        [RSP_CMD_THREAD_EXTRA] = "qThreadExtraInfo",
        [RSP_CMD_PHYMEM_SET] = "Qqemu.PhyMemMode",
        [RSP_CMD_PHYMEM_GET] = "qqemu.PhyMemMode",
        [RSP_CMD_QXFER_THREADS] = "qXfer:threads:read",
        [RSP_CMD_REVERSE_STEP] = "bs",
        [RSP_CMD_REVERSE_CONTINUE] = "bc",
    };
    if ((unsigned)type >= sizeof(names) / sizeof(names[0]) || !names[type])
        return "?unknown";
    return names[type];
}
