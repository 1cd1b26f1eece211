#include "hex.h"

#include <errno.h>

static const char hex_digits[] = "0123456789abcdef";

int rsp_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t rsp_hex_encode(char *out, const void *in, size_t n)
{
    const uint8_t *p = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[p[i] >> 4];
        out[2 * i + 1] = hex_digits[p[i] & 0xf];
    }
    return 2 * n;
}

long rsp_hex_decode(uint8_t *out, const char *in, size_t n_chars)
{
    if (n_chars % 2)
        return -EINVAL;
    /* Validate first so that a rejected packet's data is left as it came
     * when decoding in place. */
    for (size_t i = 0; i < n_chars; i++)
        if (rsp_hex_digit((unsigned char)in[i]) < 0)
            return -EINVAL;
    /* Output index i never passes input index 2i, so in-place is safe. */
    for (size_t i = 0; i < n_chars / 2; i++) {
        int hi = rsp_hex_digit((unsigned char)in[2 * i]);
        int lo = rsp_hex_digit((unsigned char)in[2 * i + 1]);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (long)(n_chars / 2);
}

int rsp_hex_parse_u64(const char **p, const char *end, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    int d;

    if (s >= end || rsp_hex_digit((unsigned char)*s) < 0)
        return -EINVAL;
    /* Leading zeros are not significant, so any number of them is fine. */
    for (; s < end && (d = rsp_hex_digit((unsigned char)*s)) >= 0; s++) {
        if (v >> 60)
            return -ERANGE;
        v = v << 4 | (uint64_t)d;
    }
    *p = s;
    *out = v;
    return 0;
}

size_t rsp_hex_format_u64(char *out, uint64_t v)
{
    size_t n = 1;
    for (uint64_t t = v >> 4; t; t >>= 4)
        n++;
    for (size_t i = n; i-- > 0; v >>= 4)
        out[i] = hex_digits[v & 0xf];
    out[n] = '\0';
    return n;
}
