/* rsp/buf.h: a growable byte buffer with a hard ceiling.
 *
 * Every buffer the protocol layer fills from untrusted input has a maximum
 * size fixed by its owner; growth past it fails with -EMSGSIZE instead of
 * allocating what a peer asked for. Functions return 0 or a negative errno. */
#ifndef RSP_BUF_H
#define RSP_BUF_H

#include <stddef.h>
#include <stdint.h>

struct rsp_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t max; /* hard ceiling for len */
};

void rsp_buf_init(struct rsp_buf *b, size_t max);
void rsp_buf_free(struct rsp_buf *b);
/* Make room for 'extra' more bytes: -EMSGSIZE past b->max, -ENOMEM. */
int rsp_buf_reserve(struct rsp_buf *b, size_t extra);
int rsp_buf_append(struct rsp_buf *b, const void *p, size_t n);
/* Drop the first n bytes (after they were sent). */
void rsp_buf_consume(struct rsp_buf *b, size_t n);

#endif
