/* tests/stub/stubtest.h: a session on a fake target, driven packet by
 * packet the way gdb would, with what the session writes collected. */
#ifndef STUBTEST_H
#define STUBTEST_H

#include <stdbool.h>
#include <stddef.h>

#include "fake_target.h"
#include "stub/session.h"

struct st {
    struct fake f;
    struct stub_session s;
    char *out;
    size_t len, cap, pos; /* everything written; pos: what the test consumed */
    bool closed;
    char pkt[1 << 18];    /* the last packet read, NUL-terminated */
    size_t pkt_len;
};

/* A session on a fake target with threads threads, attached; noack turns
 * acknowledgements off first, as gdb does. */
void st_open(struct st *t, unsigned threads, bool noack);
void st_close(struct st *t);
void st_send_raw(struct st *t, const void *data, size_t n);
/* Frames payload with its checksum and sends it. */
void st_send(struct st *t, const char *payload);
/* The next packet the session wrote (acks skipped), or NULL. */
const char *st_next(struct st *t);
/* Sends payload and returns the next packet, which must exist. */
const char *st_ask(struct st *t, const char *payload);
/* Skips console ('O') packets, appending their decoded text to text. */
const char *st_next_skip_console(struct st *t, char *text, size_t cap);
/* Bytes written and not read yet. */
size_t st_unread(const struct st *t);
/* A stop of the fake target on thread tid with signal 5 and a reason. */
void st_stop(struct st *t, unsigned tid, enum stub_stop_reason reason, uint64_t addr);

#endif
