#include "console.h"

#include <errno.h>
#include <string.h>

int stub_console_open(struct stub_console *c, const char *path)
{
    memset(c, 0, sizeof(*c));
    if (!path)
        return 0;
    if (strcmp(path, "-") == 0) {
        c->file = stdout;
        return 0;
    }
    c->file = fopen(path, "w");
    return c->file ? 0 : -errno;
}

void stub_console_close(struct stub_console *c)
{
    if (c->file && c->file != stdout)
        fclose(c->file);
    else if (c->file)
        fflush(c->file);
    c->file = NULL;
}

void stub_console_write(struct stub_console *c, const uint8_t *data, size_t n)
{
    c->total += n;
    if (c->file && !c->file_error) {
        /* Flushed at once: someone may be watching it with tail -f. */
        if (fwrite(data, 1, n, c->file) != n || fflush(c->file) != 0)
            c->file_error = errno ? errno : EIO;
    }
    if (n > STUB_CONSOLE_RECENT) {
        data += n - STUB_CONSOLE_RECENT;
        n = STUB_CONSOLE_RECENT;
    }
    size_t first = STUB_CONSOLE_RECENT - c->head;
    if (first > n)
        first = n;
    memcpy(c->ring + c->head, data, first);
    memcpy(c->ring, data + first, n - first);
    c->head = (c->head + n) % STUB_CONSOLE_RECENT;
}

size_t stub_console_recent(const struct stub_console *c, uint8_t *out, size_t max)
{
    size_t have = c->total < STUB_CONSOLE_RECENT ? (size_t)c->total : STUB_CONSOLE_RECENT;
    size_t n = have < max ? have : max;
    /* The newest n bytes end just before head. */
    size_t start = (c->head + STUB_CONSOLE_RECENT - n) % STUB_CONSOLE_RECENT;
    size_t first = STUB_CONSOLE_RECENT - start;
    if (first > n)
        first = n;
    memcpy(out, c->ring + start, first);
    memcpy(out + first, c->ring, n - first);
    return n;
}

void stub_console_clear(struct stub_console *c)
{
    c->head = 0;
    c->total = 0;
}
