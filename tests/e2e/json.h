/* tests/e2e/json.h: just enough JSON for a test to speak the Debug Adapter
 * Protocol: a strict parser into a tree, lookups by path, and quoting for
 * the requests a test builds with printf.
 *
 * The parser takes RFC 8259 JSON and nothing else: it refuses trailing
 * garbage, bad escapes, raw control characters in strings, lone surrogates
 * and nesting deeper than JSON_MAX_DEPTH, and never reads past len. Numbers
 * are kept as doubles (DAP's ids and line numbers fit). */
#ifndef E2E_JSON_H
#define E2E_JSON_H

#include <stdbool.h>
#include <stddef.h>

#define JSON_MAX_DEPTH 64

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
    enum json_type type;
    char *key;          /* member name, when the parent is an object */
    char *str;          /* JSON_STRING, decoded to UTF-8 (may hold NULs: see len) */
    size_t len;         /* JSON_STRING: bytes in str; JSON_ARRAY/OBJECT: children */
    double num;         /* JSON_NUMBER; JSON_BOOL: 0 or 1 */
    struct json *child; /* first element or member */
    struct json *next;  /* next sibling */
};

/* Parses text[0..len). Returns the tree (free with json_free) or NULL, with
 * a reason in *err when err is not NULL. */
struct json *json_parse(const char *text, size_t len, const char **err);
void json_free(struct json *v);

/* The value at path below v: member names and array indexes separated by
 * dots, e.g. "body.stackFrames.0.name"; "" is v itself. NULL when any step
 * is missing. */
const struct json *json_get(const struct json *v, const char *path);
/* The string at path, or NULL when it is absent or not a string. */
const char *json_str(const struct json *v, const char *path);
/* The number at path into *out; false when absent or not a number. */
bool json_num(const struct json *v, const char *path, double *out);
/* True only for a JSON true at path. */
bool json_true(const struct json *v, const char *path);

/* s as a JSON string literal, quotes included (malloc'd). */
char *json_quote(const char *s);

#endif
