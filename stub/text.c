/* Growable text (text.h). */
#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(struct stub_text *t, size_t more)
{
    if (t->oom)
        return false;
    if (t->p && t->len + more < t->cap)
        return true;
    size_t cap = (t->cap ? t->cap * 2 : 1024) + more;
    char *np = realloc(t->p, cap);
    if (!np) {
        t->oom = true;
        return false;
    }
    t->p = np;
    t->cap = cap;
    return true;
}

void stub_text_add(struct stub_text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(t, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

void stub_text_put(struct stub_text *t, const char *s, size_t n)
{
    if (!reserve(t, n))
        return;
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = 0;
}

void stub_text_free(struct stub_text *t)
{
    free(t->p);
    memset(t, 0, sizeof(*t));
}
