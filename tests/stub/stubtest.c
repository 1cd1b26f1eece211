#include "stubtest.h"

#include "rsp/hex.h"
#include "rsp/packet.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_write(void *ctx, const uint8_t *data, size_t n)
{
    struct st *t = ctx;
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->cap + n) * 2 + 4096;
        char *p = realloc(t->out, cap);
        if (!p)
            abort();
        t->out = p;
        t->cap = cap;
    }
    memcpy(t->out + t->len, data, n);
    t->len += n;
    t->out[t->len] = 0;
}

static void on_close(void *ctx)
{
    struct st *t = ctx;
    t->closed = true;
}

void st_open(struct st *t, unsigned threads, bool noack)
{
    memset(t, 0, sizeof(*t));
    fake_init(&t->f, threads);
    struct stub_target target = fake_target(&t->f);
    struct stub_link link = {.write = on_write, .close = on_close, .ctx = t};
    CU_ASSERT_EQUAL_FATAL(stub_session_init(&t->s, &target, &link), 0);
    stub_session_attach(&t->s);
    if (noack) {
        st_send(t, "QStartNoAckMode");
        CU_ASSERT_STRING_EQUAL(st_next(t), "OK");
    }
}

void st_close(struct st *t)
{
    stub_session_free(&t->s);
    free(t->out);
    t->out = NULL;
}

void st_send_raw(struct st *t, const void *data, size_t n)
{
    stub_session_input(&t->s, data, n);
}

void st_send(struct st *t, const char *payload)
{
    size_t n = strlen(payload);
    char *frame = malloc(n + 5);
    if (!frame)
        abort();
    frame[0] = '$';
    memcpy(frame + 1, payload, n);
    snprintf(frame + 1 + n, 4, "#%02x", rsp_checksum(payload, n));
    st_send_raw(t, frame, n + 4);
    free(frame);
}

const char *st_next(struct st *t)
{
    while (t->pos < t->len && (t->out[t->pos] == '+' || t->out[t->pos] == '-'))
        t->pos++;
    if (t->pos >= t->len)
        return NULL;
    CU_ASSERT_EQUAL(t->out[t->pos], '$');
    char *end = memchr(t->out + t->pos, '#', t->len - t->pos);
    CU_ASSERT_PTR_NOT_NULL_FATAL(end);
    CU_ASSERT_FATAL(end + 3 <= t->out + t->len);
    size_t n = (size_t)(end - (t->out + t->pos + 1));
    CU_ASSERT_FATAL(n < sizeof(t->pkt));
    memcpy(t->pkt, t->out + t->pos + 1, n);
    t->pkt[n] = 0;
    t->pkt_len = n;
    unsigned sum;
    CU_ASSERT_EQUAL(sscanf(end + 1, "%2x", &sum), 1);
    CU_ASSERT_EQUAL(sum, rsp_checksum(t->pkt, n));
    t->pos = (size_t)(end + 3 - t->out);
    return t->pkt;
}

const char *st_ask(struct st *t, const char *payload)
{
    st_send(t, payload);
    const char *r = st_next(t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    return r;
}

const char *st_next_skip_console(struct st *t, char *text, size_t cap)
{
    size_t used = text ? strlen(text) : 0;
    for (;;) {
        const char *p = st_next(t);
        if (!p || p[0] != 'O' || strcmp(p, "OK") == 0)
            return p;
        size_t hex = strlen(p + 1);
        if (text && used + hex / 2 < cap) {
            uint8_t *dst = (uint8_t *)text + used;
            CU_ASSERT_EQUAL(rsp_hex_decode(dst, p + 1, hex), (long)(hex / 2));
            used += hex / 2;
            text[used] = 0;
        }
    }
}

size_t st_unread(const struct st *t)
{
    return t->len - t->pos;
}

void st_stop(struct st *t, unsigned tid, enum stub_stop_reason reason, uint64_t addr)
{
    struct stub_stop s = {.tid = tid, .signal = STUB_SIGTRAP, .reason = reason, .addr = addr};
    fake_stop(&t->f, &s);
}
