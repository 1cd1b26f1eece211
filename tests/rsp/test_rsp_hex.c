/* Tests of rsp/hex.h and rsp/buf.h. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "rsp/buf.h"
#include "rsp/hex.h"
#include "rsp_test.h"
#include "testmain.h"

static void test_digit_all_bytes(void)
{
    for (int c = 0; c < 256; c++) {
        int want = -1;
        if (c >= '0' && c <= '9')
            want = c - '0';
        else if (c >= 'a' && c <= 'f')
            want = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            want = c - 'A' + 10;
        CHECKF(rsp_hex_digit(c) == want, "rsp_hex_digit(0x%02x)", c);
    }
    CU_ASSERT_EQUAL(rsp_hex_digit(-1), -1);
}

static void test_encode(void)
{
    char out[16] = {0};
    const uint8_t in[] = {0x00, 0x7f, 0xab, 0xff};
    CU_ASSERT_EQUAL(rsp_hex_encode(out, in, sizeof(in)), 8);
    CU_ASSERT_STRING_EQUAL(out, "007fabff");
    CU_ASSERT_EQUAL(rsp_hex_encode(out, in, 0), 0);
}

static void test_decode(void)
{
    uint8_t out[8];
    CU_ASSERT_EQUAL(rsp_hex_decode(out, "00aBFf7e", 8), 4);
    CU_ASSERT_EQUAL(out[0], 0x00);
    CU_ASSERT_EQUAL(out[1], 0xab);
    CU_ASSERT_EQUAL(out[2], 0xff);
    CU_ASSERT_EQUAL(out[3], 0x7e);
    CU_ASSERT_EQUAL(rsp_hex_decode(out, "", 0), 0);
}

static void test_decode_rejects(void)
{
    static const char *const bad[] = {"0", "abc", "0g", "g0", "0x10", " 1", "1 ", "-1", "+1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t out[8];
        memset(out, 0x5a, sizeof(out));
        CHECKF(rsp_hex_decode(out, bad[i], strlen(bad[i])) == -EINVAL, "decode \"%s\"", bad[i]);
        CHECKF(out[0] == 0x5a, "decode \"%s\" wrote output", bad[i]);
    }
    /* A NUL in the counted range is not a digit either. */
    uint8_t out[2];
    CU_ASSERT_EQUAL(rsp_hex_decode(out, "a\0", 2), -EINVAL);
}

static void test_decode_in_place(void)
{
    char buf[] = "48656c6c6f";
    CU_ASSERT_EQUAL(rsp_hex_decode((uint8_t *)buf, buf, 10), 5);
    CU_ASSERT_EQUAL(memcmp(buf, "Hello", 5), 0);

    /* A bad digit late in the string leaves the whole input as it was. */
    char bad[] = "4865zz";
    CU_ASSERT_EQUAL(rsp_hex_decode((uint8_t *)bad, bad, 6), -EINVAL);
    CU_ASSERT_STRING_EQUAL(bad, "4865zz");
}

static int parse(const char *s, uint64_t *v, size_t *used)
{
    const char *p = s;
    int err = rsp_hex_parse_u64(&p, s + strlen(s), v);
    *used = (size_t)(p - s);
    return err;
}

static void test_parse_u64(void)
{
    uint64_t v;
    size_t used;

    CU_ASSERT_EQUAL(parse("0", &v, &used), 0);
    CU_ASSERT_EQUAL(v, 0);
    CU_ASSERT_EQUAL(used, 1);
    CU_ASSERT_EQUAL(parse("1f,20", &v, &used), 0);
    CU_ASSERT_EQUAL(v, 0x1f);
    CU_ASSERT_EQUAL(used, 2);
    CU_ASSERT_EQUAL(parse("DeadBeef", &v, &used), 0);
    CU_ASSERT_EQUAL(v, 0xdeadbeef);
    CU_ASSERT_EQUAL(parse("ffffffffffffffff", &v, &used), 0);
    CU_ASSERT_EQUAL(v, UINT64_MAX);
    CU_ASSERT_EQUAL(used, 16);
    /* Leading zeros are not significant. */
    CU_ASSERT_EQUAL(parse("00000000000000000000000000001", &v, &used), 0);
    CU_ASSERT_EQUAL(v, 1);
    CU_ASSERT_EQUAL(used, 29);
    CU_ASSERT_EQUAL(parse("0000ffffffffffffffff", &v, &used), 0);
    CU_ASSERT_EQUAL(v, UINT64_MAX);
    /* Strict: "0x" stops after the 0. */
    CU_ASSERT_EQUAL(parse("0x10", &v, &used), 0);
    CU_ASSERT_EQUAL(v, 0);
    CU_ASSERT_EQUAL(used, 1);
}

static void test_parse_u64_rejects(void)
{
    uint64_t v = 42;
    size_t used;

    CU_ASSERT_EQUAL(parse("", &v, &used), -EINVAL);
    CU_ASSERT_EQUAL(parse(",1", &v, &used), -EINVAL);
    CU_ASSERT_EQUAL(parse("-1", &v, &used), -EINVAL);
    CU_ASSERT_EQUAL(parse(" 1", &v, &used), -EINVAL);
    CU_ASSERT_EQUAL(used, 0);
    CU_ASSERT_EQUAL(parse("10000000000000000", &v, &used), -ERANGE);
    CU_ASSERT_EQUAL(parse("fffffffffffffffff", &v, &used), -ERANGE);
    CU_ASSERT_EQUAL(parse("123456789abcdef012", &v, &used), -ERANGE);
    CU_ASSERT_EQUAL(used, 0);
    CU_ASSERT_EQUAL(v, 42);

    /* The end bound is honoured even when digits follow it. */
    const char *s = "1234";
    const char *p = s;
    CU_ASSERT_EQUAL(rsp_hex_parse_u64(&p, s + 2, &v), 0);
    CU_ASSERT_EQUAL(v, 0x12);
    CU_ASSERT_PTR_EQUAL(p, s + 2);
    p = s;
    CU_ASSERT_EQUAL(rsp_hex_parse_u64(&p, s, &v), -EINVAL);
}

static void test_format_u64(void)
{
    char out[17];
    CU_ASSERT_EQUAL(rsp_hex_format_u64(out, 0), 1);
    CU_ASSERT_STRING_EQUAL(out, "0");
    CU_ASSERT_EQUAL(rsp_hex_format_u64(out, 0x10), 2);
    CU_ASSERT_STRING_EQUAL(out, "10");
    CU_ASSERT_EQUAL(rsp_hex_format_u64(out, 0xdeadbeef), 8);
    CU_ASSERT_STRING_EQUAL(out, "deadbeef");
    CU_ASSERT_EQUAL(rsp_hex_format_u64(out, UINT64_MAX), 16);
    CU_ASSERT_STRING_EQUAL(out, "ffffffffffffffff");

    /* Formatting and parsing agree. */
    for (int shift = 0; shift < 64; shift++) {
        uint64_t v = (UINT64_C(1) << shift) | (UINT64_C(0x5a5a5a5a5a5a5a5a) >> (63 - shift));
        const char *p = out;
        uint64_t back;
        size_t n = rsp_hex_format_u64(out, v);
        CHECKF(rsp_hex_parse_u64(&p, out + n, &back) == 0 && back == v, "round trip 1<<%d", shift);
    }
}

static void test_buf_append_and_consume(void)
{
    struct rsp_buf b;
    rsp_buf_init(&b, 1 << 20);
    uint8_t block[1000];
    for (size_t i = 0; i < sizeof(block); i++)
        block[i] = (uint8_t)i;
    for (int i = 0; i < 100; i++)
        CU_ASSERT_EQUAL_FATAL(rsp_buf_append(&b, block, sizeof(block)), 0);
    CU_ASSERT_EQUAL(b.len, 100000);
    CU_ASSERT(b.cap >= b.len && b.cap <= b.max);
    CU_ASSERT_EQUAL(memcmp(b.data + 99000, block, sizeof(block)), 0);

    rsp_buf_consume(&b, 99500);
    CU_ASSERT_EQUAL(b.len, 500);
    CU_ASSERT_EQUAL(memcmp(b.data, block + 500, 500), 0);
    rsp_buf_consume(&b, 501);
    CU_ASSERT_EQUAL(b.len, 0);
    CU_ASSERT_EQUAL(rsp_buf_append(&b, NULL, 0), 0);
    rsp_buf_free(&b);
    CU_ASSERT_PTR_NULL(b.data);
    CU_ASSERT_EQUAL(b.len, 0);
}

static void test_buf_ceiling(void)
{
    struct rsp_buf b;
    rsp_buf_init(&b, 10);
    CU_ASSERT_EQUAL(rsp_buf_append(&b, "0123456", 7), 0);
    CU_ASSERT_EQUAL(rsp_buf_append(&b, "7890", 4), -EMSGSIZE);
    CU_ASSERT_EQUAL(b.len, 7); /* a refused append changes nothing */
    CU_ASSERT_EQUAL(rsp_buf_append(&b, "789", 3), 0);
    CU_ASSERT_EQUAL(b.len, 10);
    CU_ASSERT(b.cap <= 10);
    CU_ASSERT_EQUAL(memcmp(b.data, "0123456789", 10), 0);
    CU_ASSERT_EQUAL(rsp_buf_append(&b, "x", 1), -EMSGSIZE);
    CU_ASSERT_EQUAL(rsp_buf_reserve(&b, 0), 0);
    CU_ASSERT_EQUAL(rsp_buf_reserve(&b, SIZE_MAX), -EMSGSIZE);
    rsp_buf_consume(&b, 4);
    CU_ASSERT_EQUAL(rsp_buf_reserve(&b, 4), 0);
    CU_ASSERT_EQUAL(rsp_buf_reserve(&b, 5), -EMSGSIZE);
    rsp_buf_free(&b);

    /* A buffer with no room at all refuses the first byte. */
    rsp_buf_init(&b, 0);
    CU_ASSERT_EQUAL(rsp_buf_append(&b, "x", 1), -EMSGSIZE);
    rsp_buf_free(&b);
}

static void register_suites(void)
{
    static const struct rsp_test hex[] = {
        {"digit of every byte", test_digit_all_bytes},
        {"encode", test_encode},
        {"decode", test_decode},
        {"decode rejects", test_decode_rejects},
        {"decode in place", test_decode_in_place},
        {"parse u64", test_parse_u64},
        {"parse u64 rejects", test_parse_u64_rejects},
        {"format u64", test_format_u64},
    };
    static const struct rsp_test buf[] = {
        {"append and consume", test_buf_append_and_consume},
        {"ceiling", test_buf_ceiling},
    };
    rsp_test_add_suite("rsp hex", hex, sizeof(hex) / sizeof(hex[0]), NULL);
    rsp_test_add_suite("rsp buf", buf, sizeof(buf) / sizeof(buf[0]), NULL);
}

int main(void)
{
    return test_main("test_rsp_hex", register_suites, false);
}
