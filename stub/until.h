/* stub/until.h: watching the guest's console output for texts (--until,
 * "monitor until"). Matching is streaming and exact: a text split across
 * any number of writes is found, and each byte is looked at once per text
 * (KMP). With no text set, feeding costs one comparison. Loop thread. */
#ifndef STUB_UNTIL_H
#define STUB_UNTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STUB_UNTIL_MAX 16u
#define STUB_UNTIL_MAX_LEN 256u

struct stub_until_text {
    char text[STUB_UNTIL_MAX_LEN + 1];
    size_t len;
    uint16_t fail[STUB_UNTIL_MAX_LEN]; /* KMP failure function */
    size_t state;                      /* bytes of text matched so far */
};

struct stub_until {
    struct stub_until_text texts[STUB_UNTIL_MAX];
    size_t n;
};

/* -EINVAL for an empty text or one longer than STUB_UNTIL_MAX_LEN, -ENOSPC
 * past STUB_UNTIL_MAX, -EEXIST if already there. */
int stub_until_add(struct stub_until *u, const char *text);
void stub_until_clear(struct stub_until *u);
/* Forgets partial matches (the output they were in is gone). */
void stub_until_reset(struct stub_until *u);
/* Looks at data[0..n): returns the index of the text whose last byte is
 * data[*end - 1], or -1 when no text ended in it. Feeding stops at the
 * first match; the rest of data is the caller's. */
int stub_until_feed(struct stub_until *u, const uint8_t *data, size_t n, size_t *end);

#endif
