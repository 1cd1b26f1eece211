/* stub/console.h: where the guest's serial output goes besides gdb: a
 * record of the last STUB_CONSOLE_RECENT bytes (for "monitor serial" and
 * for gdbs that attach later) and the --serial file. Loop thread only. */
#ifndef STUB_CONSOLE_H
#define STUB_CONSOLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define STUB_CONSOLE_RECENT 65536u

struct stub_console {
    uint8_t ring[STUB_CONSOLE_RECENT];
    size_t head; /* next write position */
    uint64_t total;
    FILE *file;  /* --serial, or NULL */
    int file_error;
};

/* path: NULL for none, "-" for stdout. Returns 0 or -errno. */
int stub_console_open(struct stub_console *c, const char *path);
void stub_console_close(struct stub_console *c);
void stub_console_write(struct stub_console *c, const uint8_t *data, size_t n);
/* Copies the recent output it keeps (oldest first) into out; returns the
 * byte count. */
size_t stub_console_recent(const struct stub_console *c, uint8_t *out, size_t max);
void stub_console_clear(struct stub_console *c);

#endif
