#include "buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Small buffers start here so that a connection's first acks and replies do
 * not each cost a realloc. */
#define RSP_BUF_MIN_CAP 256u

void rsp_buf_init(struct rsp_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void rsp_buf_free(struct rsp_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int rsp_buf_reserve(struct rsp_buf *b, size_t extra)
{
    if (b->len > b->max || extra > b->max - b->len)
        return -EMSGSIZE;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    /* Doubling keeps appends amortised O(1); the ceiling caps the doubling
     * so a buffer never holds more memory than its owner allowed. */
    size_t cap = b->cap < RSP_BUF_MIN_CAP ? RSP_BUF_MIN_CAP : b->cap;
    while (cap < need)
        cap = cap > b->max / 2 ? b->max : cap * 2;
    if (cap > b->max)
        cap = b->max;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int rsp_buf_append(struct rsp_buf *b, const void *p, size_t n)
{
    int err = rsp_buf_reserve(b, n);
    if (err)
        return err;
    if (n) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    }
    return 0;
}

void rsp_buf_consume(struct rsp_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}
