/* Streaming text matching (until.h). */
#include "until.h"

#include <errno.h>
#include <string.h>

int stub_until_add(struct stub_until *u, const char *text)
{
    size_t len = strlen(text);
    if (len == 0 || len > STUB_UNTIL_MAX_LEN)
        return -EINVAL;
    for (size_t i = 0; i < u->n; i++)
        if (strcmp(u->texts[i].text, text) == 0)
            return -EEXIST;
    if (u->n >= STUB_UNTIL_MAX)
        return -ENOSPC;
    struct stub_until_text *t = &u->texts[u->n++];
    memcpy(t->text, text, len + 1);
    t->len = len;
    t->state = 0;
    t->fail[0] = 0;
    for (size_t i = 1, k = 0; i < len; i++) {
        while (k && text[i] != text[k])
            k = t->fail[k - 1];
        if (text[i] == text[k])
            k++;
        t->fail[i] = (uint16_t)k;
    }
    return 0;
}

void stub_until_clear(struct stub_until *u)
{
    u->n = 0;
}

void stub_until_reset(struct stub_until *u)
{
    for (size_t i = 0; i < u->n; i++)
        u->texts[i].state = 0;
}

int stub_until_feed(struct stub_until *u, const uint8_t *data, size_t n, size_t *end)
{
    if (!u->n)
        return -1;
    for (size_t b = 0; b < n; b++) {
        for (size_t i = 0; i < u->n; i++) {
            struct stub_until_text *t = &u->texts[i];
            size_t k = t->state;
            while (k && (uint8_t)t->text[k] != data[b])
                k = t->fail[k - 1];
            if ((uint8_t)t->text[k] == data[b])
                k++;
            if (k == t->len) {
                /* Found: every text starts afresh after it. */
                stub_until_reset(u);
                *end = b + 1;
                return (int)i;
            }
            t->state = k;
        }
    }
    return -1;
}
