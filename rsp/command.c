/* Packet kinds matched by name and read by schema (command.h). */
#include "command.h"

#include <errno.h>
#include <string.h>

#include "hex.h"

/* A cursor over the payload. The first error sticks: later steps do nothing,
 * so a schema reads as the packet's grammar, with one check at the end. */
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

static size_t parse_vcont(struct cur *c, struct rsp_vcont_action *actions)
{
    size_t count = 0;
    if (at_end(c))
        fail(c, "vCont without actions");
    while (!c->err && !at_end(c)) {
        expect(c, ';', "missing semicolon");
        if (c->err)
            break;
        if (count == RSP_VCONT_MAX) {
            fail(c, "too many vCont actions");
            break;
        }
        struct rsp_vcont_action *a = &actions[count++];
        memset(a, 0, sizeof(*a));
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
    return count;
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


/* Reads a choice "{...}": the schema's characters up to '}' (stop). */
static uint64_t choice(struct cur *c, const char *set, const char *stop)
{
    if (c->err)
        return 0;
    if (at_end(c) || !memchr(set, *c->p, (size_t)(stop - set))) {
        fail(c, "unexpected character");
        return 0;
    }
    return (uint8_t)*c->p++;
}

/* Data whose length the field before it declares (M's hex, X's binary). */
static void sized_data(struct cur *c, struct rsp_args *a, struct rsp_arg *arg, bool hex)
{
    size_t n = (size_t)(c->end - c->p);
    if (a->count < 2) {
        fail(c, "schema: sized data without a length before it");
        return;
    }
    uint64_t want = a->arg[a->count - 2].num;
    arg->data = (const uint8_t *)c->p;
    if (!hex) {
        /* Binary data: any byte, ':' and NUL included, counts. */
        if ((uint64_t)n != want)
            fail(c, "binary data length differs from the length field");
        arg->len = n;
    } else if (n % 2 || (uint64_t)(n / 2) != want) {
        fail(c, "hex data length differs from the length field");
    } else {
        arg->len = hex_rest(c, "bad hex data");
    }
    c->p = c->end;
}

static void annex(struct cur *c, struct rsp_arg *arg)
{
    char *colon = memchr(c->p, ':', (size_t)(c->end - c->p));
    if (!colon) {
        fail(c, "missing colon after the annex");
        return;
    }
    if (memchr(c->p, 0, (size_t)(colon - c->p))) {
        fail(c, "NUL in annex");
        return;
    }
    *colon = '\0';
    arg->data = (const uint8_t *)c->p;
    arg->text = c->p;
    arg->len = (size_t)(colon - c->p);
    c->p = colon + 1;
}

/* The rest of the payload as text; r decodes it from hex first. */
static void text_rest(struct cur *c, struct rsp_arg *arg, bool hex)
{
    size_t n = (size_t)(c->end - c->p);
    if (hex) {
        n = hex_rest(c, "bad hex text");
        if (c->err)
            return;
        c->p[n] = '\0'; /* n <= the hex length, so this stays in the payload */
    } else if (has_nul(c)) {
        fail(c, "NUL in text");
        return;
    }
    arg->data = (const uint8_t *)c->p;
    arg->text = c->p;
    arg->len = n;
    c->p = c->end;
}

static void field(struct cur *c, char kind, struct rsp_args *a, struct rsp_arg *arg)
{
    uint64_t v;
    switch (kind) {
    case 'n':
        arg->num = num(c, "bad hex number");
        break;
    case 'g':
        arg->num = signal_num(c);
        break;
    case 'k':
        v = num(c, "bad breakpoint type");
        if (v > RSP_BP_ACCESS)
            fail(c, "unknown breakpoint type");
        arg->num = v;
        break;
    case 't':
        parse_tid(c, &arg->tid);
        break;
    case 'x':
        if (at_end(c))
            fail(c, "missing data");
        arg->data = (const uint8_t *)c->p;
        arg->len = hex_rest(c, "bad hex data");
        c->p = c->end;
        break;
    case 'X':
    case 'b':
        sized_data(c, a, arg, kind == 'X');
        break;
    case 'r':
    case 's':
        text_rest(c, arg, kind == 'r');
        break;
    case 'a':
        annex(c, arg);
        break;
    case '*':
        arg->data = (const uint8_t *)c->p;
        arg->len = (size_t)(c->end - c->p);
        c->p = c->end;
        break;
    case 'V':
        arg->num = parse_vcont(c, a->vcont);
        break;
    case 'F':
        if (has_nul(c)) {
            fail(c, "NUL in feature list");
            break;
        }
        arg->text = c->p;
        arg->data = (const uint8_t *)c->p;
        arg->len = (size_t)(c->end - c->p);
        arg->num = feature_flags(c->p, c->end);
        c->p = c->end;
        break;
    }
}

static const char *literal_reason(char ch)
{
    switch (ch) {
    case ',':
        return "missing comma";
    case ':':
        return "missing colon";
    case ';':
        return "missing semicolon";
    case '=':
        return "missing '='";
    default:
        return "unexpected character";
    }
}

static struct rsp_arg *next_arg(struct cur *c, struct rsp_args *a)
{
    if (a->count == RSP_ARGS_MAX) {
        fail(c, "schema: too many fields");
        return NULL;
    }
    return &a->arg[a->count++];
}

static void read_schema(struct cur *c, const char *s, struct rsp_args *a)
{
    /* Inside an optional part the payload does not have: its fields keep
     * their slots, so a handler finds each field at the same index. */
    bool absent = false;
    while (*s && !c->err) {
        char ch = *s++;
        struct rsp_arg *arg;
        if (ch == '[') {
            absent = at_end(c);
        } else if (ch == ']') {
            absent = false;
        } else if (ch == '{') {
            const char *stop = strchr(s, '}');
            if (!stop) {
                fail(c, "schema: '{' without '}'");
                break;
            }
            if ((arg = next_arg(c, a)) && !absent) {
                arg->num = choice(c, s, stop);
                arg->present = !c->err;
            }
            s = stop + 1;
        } else if (strchr("ngktxXbras*VF", ch)) {
            if ((arg = next_arg(c, a)) && !absent) {
                field(c, ch, a, arg);
                arg->present = !c->err;
            }
        } else if (!absent) {
            expect(c, ch, literal_reason(ch));
        }
    }
    expect_end(c);
}

/* A word's name ends at one of these ('?' for "vCont?"). */
static bool is_separator(char ch)
{
    return ch == ':' || ch == ';' || ch == ',' || ch == '?';
}

size_t rsp_command_match(const struct rsp_command *def, const uint8_t *payload, size_t len)
{
    const char *name = def->name;
    size_t n = 0;
    /* One pass, which most names leave at their first byte. */
    for (; name[n]; n++)
        if (n == len || (uint8_t)name[n] != payload[n])
            return 0;
    if (!n)
        return 0;
    bool word = name[0] == 'q' || name[0] == 'Q' || name[0] == 'v';
    if (word && n < len && !is_separator(name[n - 1]) && !is_separator((char)payload[n]))
        return 0;
    return n;
}

int rsp_command_read(const struct rsp_command *def, uint8_t *payload, size_t len,
                    struct rsp_args *args)
{
    args->reason = NULL;
    args->count = 0;
    memset(args->arg, 0, sizeof(args->arg));
    size_t n = rsp_command_match(def, payload, len);
    if (!n) {
        args->reason = "the packet is not of this kind";
        return -EINVAL;
    }
    /* Strings handed out end at the payload's end; make sure they do. */
    payload[len] = 0;
    struct cur c = {(char *)payload + n, (char *)payload + len, NULL};
    read_schema(&c, def->schema, args);
    if (c.err) {
        args->reason = c.err;
        return -EINVAL;
    }
    return 0;
}
