#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
    const char *p;
    const char *end;
    const char *err;
};

static void fail(struct parser *ps, const char *why)
{
    if (!ps->err)
        ps->err = why;
}

static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static bool literal(struct parser *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return false;
    ps->p += n;
    return true;
}

static int hex4(struct parser *ps)
{
    if (ps->end - ps->p < 4) {
        fail(ps, "truncated \\u escape");
        return -1;
    }
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = *ps->p++;
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) {
            fail(ps, "bad hex digit in \\u escape");
            return -1;
        }
        v = v * 16 + d;
    }
    return v;
}

static size_t put_utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A string after its opening quote. The decoded text is never longer than
 * the escaped one, so one allocation of the remaining input's size bounds
 * it; it is sized to the closing quote first. */
static char *string(struct parser *ps, size_t *len)
{
    const char *q = ps->p;
    while (q < ps->end && *q != '"') {
        if (*q == '\\')
            q++;
        q++;
    }
    if (q >= ps->end) {
        fail(ps, "unterminated string");
        return NULL;
    }
    char *out = malloc((size_t)(q - ps->p) + 1);
    if (!out) {
        fail(ps, "out of memory");
        return NULL;
    }
    size_t n = 0;
    while (!ps->err && *ps->p != '"') {
        unsigned char c = (unsigned char)*ps->p++;
        if (c < 0x20) {
            fail(ps, "control character in string");
            break;
        }
        if (c != '\\') {
            out[n++] = (char)c;
            continue;
        }
        char e = *ps->p++;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            out[n++] = e;
            break;
        case 'b':
            out[n++] = '\b';
            break;
        case 'f':
            out[n++] = '\f';
            break;
        case 'n':
            out[n++] = '\n';
            break;
        case 'r':
            out[n++] = '\r';
            break;
        case 't':
            out[n++] = '\t';
            break;
        case 'u': {
            int hi = hex4(ps);
            if (hi < 0)
                break;
            uint32_t cp = (uint32_t)hi;
            if (hi >= 0xdc00 && hi <= 0xdfff) {
                fail(ps, "lone low surrogate");
                break;
            }
            if (hi >= 0xd800 && hi <= 0xdbff) {
                if (!literal(ps, "\\u")) {
                    fail(ps, "lone high surrogate");
                    break;
                }
                int lo = hex4(ps);
                if (lo < 0)
                    break;
                if (lo < 0xdc00 || lo > 0xdfff) {
                    fail(ps, "bad low surrogate");
                    break;
                }
                cp = 0x10000 + (((uint32_t)hi - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
            }
            /* Six escaped characters (twelve for a pair) always cover the
             * four UTF-8 bytes at most. */
            n += put_utf8(out + n, cp);
            break;
        }
        default:
            fail(ps, "bad escape in string");
            break;
        }
    }
    if (ps->err) {
        free(out);
        return NULL;
    }
    ps->p++; /* the closing quote */
    out[n] = 0;
    *len = n;
    return out;
}

static bool number(struct parser *ps, double *out)
{
    const char *s = ps->p;
    const char *q = s;
    if (q < ps->end && *q == '-')
        q++;
    if (q < ps->end && *q == '0') {
        q++;
    } else if (q < ps->end && *q >= '1' && *q <= '9') {
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    } else {
        return false;
    }
    if (q < ps->end && *q == '.') {
        q++;
        if (q >= ps->end || *q < '0' || *q > '9')
            return false;
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < ps->end && (*q == '+' || *q == '-'))
            q++;
        if (q >= ps->end || *q < '0' || *q > '9')
            return false;
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    }
    /* strtod needs a terminated copy: the input may end right here. */
    char tmp[64];
    size_t n = (size_t)(q - s);
    if (n >= sizeof(tmp))
        return false;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    *out = strtod(tmp, NULL);
    ps->p = q;
    return isfinite(*out);
}

static struct json *value(struct parser *ps, int depth);

static struct json *node(struct parser *ps, enum json_type type)
{
    struct json *v = calloc(1, sizeof(*v));
    if (!v)
        fail(ps, "out of memory");
    else
        v->type = type;
    return v;
}

/* Elements of an array or members of an object, after the opening bracket. */
static void children(struct parser *ps, struct json *v, int depth)
{
    bool object = v->type == JSON_OBJECT;
    char close = object ? '}' : ']';
    struct json **tail = &v->child;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return;
    }
    for (;;) {
        char *key = NULL;
        size_t key_len = 0;
        skip_ws(ps);
        if (object) {
            if (ps->p >= ps->end || *ps->p != '"') {
                fail(ps, "expected a member name");
                return;
            }
            ps->p++;
            key = string(ps, &key_len);
            if (!key)
                return;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                free(key);
                fail(ps, "expected ':' after a member name");
                return;
            }
            ps->p++;
        }
        struct json *c = value(ps, depth + 1);
        if (!c) {
            free(key);
            return;
        }
        c->key = key;
        *tail = c;
        tail = &c->next;
        v->len++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            return;
        }
        fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
        return;
    }
}

static struct json *value(struct parser *ps, int depth)
{
    if (depth > JSON_MAX_DEPTH) {
        fail(ps, "nested too deep");
        return NULL;
    }
    skip_ws(ps);
    if (ps->p >= ps->end) {
        fail(ps, "expected a value");
        return NULL;
    }
    struct json *v = NULL;
    char c = *ps->p;
    if (c == '{' || c == '[') {
        ps->p++;
        v = node(ps, c == '{' ? JSON_OBJECT : JSON_ARRAY);
        if (v)
            children(ps, v, depth);
    } else if (c == '"') {
        ps->p++;
        v = node(ps, JSON_STRING);
        if (v)
            v->str = string(ps, &v->len);
    } else if (literal(ps, "true")) {
        v = node(ps, JSON_BOOL);
        if (v)
            v->num = 1;
    } else if (literal(ps, "false")) {
        v = node(ps, JSON_BOOL);
    } else if (literal(ps, "null")) {
        v = node(ps, JSON_NULL);
    } else {
        v = node(ps, JSON_NUMBER);
        if (v && !number(ps, &v->num))
            fail(ps, "expected a value");
    }
    if (ps->err) {
        json_free(v);
        return NULL;
    }
    return v;
}

struct json *json_parse(const char *text, size_t len, const char **err)
{
    struct parser ps = {text, text + len, NULL};
    struct json *v = text ? value(&ps, 0) : NULL;
    if (!text)
        fail(&ps, "no text");
    skip_ws(&ps);
    if (v && ps.p != ps.end) {
        fail(&ps, "trailing characters after the value");
        json_free(v);
        v = NULL;
    }
    if (err)
        *err = ps.err;
    return v;
}

void json_free(struct json *v)
{
    while (v) {
        struct json *next = v->next;
        json_free(v->child);
        free(v->key);
        free(v->str);
        free(v);
        v = next;
    }
}

const struct json *json_get(const struct json *v, const char *path)
{
    const char *p = path;
    while (v && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        const struct json *c = v->child;
        if (v->type == JSON_OBJECT) {
            while (c && !(strlen(c->key) == n && memcmp(c->key, p, n) == 0))
                c = c->next;
        } else if (v->type == JSON_ARRAY) {
            char *endp;
            errno = 0;
            unsigned long i = strtoul(p, &endp, 10);
            if (n == 0 || endp != p + n || errno)
                return NULL;
            while (c && i--)
                c = c->next;
        } else {
            return NULL;
        }
        v = c;
        p += n;
        if (*p == '.')
            p++;
    }
    return v;
}

const char *json_str(const struct json *v, const char *path)
{
    const struct json *s = json_get(v, path);
    return s && s->type == JSON_STRING ? s->str : NULL;
}

bool json_num(const struct json *v, const char *path, double *out)
{
    const struct json *s = json_get(v, path);
    if (!s || s->type != JSON_NUMBER)
        return false;
    *out = s->num;
    return true;
}

bool json_true(const struct json *v, const char *path)
{
    const struct json *s = json_get(v, path);
    return s && s->type == JSON_BOOL && s->num != 0;
}

char *json_quote(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n * 6 + 3); /* \u00XX is the longest form */
    if (!out)
        return NULL;
    size_t k = 0;
    out[k++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            out[k++] = '\\';
            out[k++] = (char)*p;
        } else if (*p < 0x20) {
            k += (size_t)snprintf(out + k, 7, "\\u%04x", *p);
        } else {
            out[k++] = (char)*p;
        }
    }
    out[k++] = '"';
    out[k] = 0;
    return out;
}
