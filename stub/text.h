/* stub/text.h: a growable NUL-terminated string, for text meant for the
 * user (monitor answers, target descriptions). Out of memory leaves what
 * fits and sets a flag; nothing here fails loudly. */
#ifndef STUB_TEXT_H
#define STUB_TEXT_H

#include <stdbool.h>
#include <stddef.h>

struct stub_text {
    char *p;   /* NUL-terminated once anything was added, else NULL */
    size_t len, cap;
    bool oom;
};

void stub_text_add(struct stub_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void stub_text_put(struct stub_text *t, const char *s, size_t n);
void stub_text_free(struct stub_text *t);

#endif
