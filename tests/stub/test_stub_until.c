/* Watching console output for texts (--until): across writes, overlaps,
 * several texts at once. */
#include "testmain.h"

#include "stub/until.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static int feed(struct stub_until *u, const char *s, size_t *end)
{
    return stub_until_feed(u, (const uint8_t *)s, strlen(s), end);
}

static void test_split_across_writes(void)
{
    struct stub_until u = {0};
    CU_ASSERT_EQUAL(stub_until_add(&u, "login:"), 0);
    size_t end = 99;
    CU_ASSERT_EQUAL(feed(&u, "Debian GNU/Linux 12 lo", &end), -1);
    CU_ASSERT_EQUAL(feed(&u, "gi", &end), -1);
    CU_ASSERT_EQUAL(feed(&u, "n: and more", &end), 0);
    CU_ASSERT_EQUAL(end, 2); /* the text ends after "n:" */
    /* Byte by byte, as a polled UART writes it. */
    const char *s = "xxlogin:";
    int hit = -1;
    for (size_t i = 0; s[i] && hit < 0; i++) {
        hit = stub_until_feed(&u, (const uint8_t *)s + i, 1, &end);
        if (hit >= 0)
            CU_ASSERT_EQUAL(i, 7);
    }
    CU_ASSERT_EQUAL(hit, 0);
}

static void test_overlapping_prefixes(void)
{
    /* KMP: "aab" inside "aaab" must not be missed after the false start. */
    struct stub_until u = {0};
    CU_ASSERT_EQUAL(stub_until_add(&u, "aab"), 0);
    size_t end;
    CU_ASSERT_EQUAL(feed(&u, "aaab", &end), 0);
    CU_ASSERT_EQUAL(end, 4);
    CU_ASSERT_EQUAL(stub_until_add(&u, "abab"), 0);
    CU_ASSERT_EQUAL(feed(&u, "ababab", &end), 1);
    CU_ASSERT_EQUAL(end, 4);
    /* After a match every text starts afresh. */
    CU_ASSERT_EQUAL(feed(&u, "ab", &end), -1);
    CU_ASSERT_EQUAL(feed(&u, "ab", &end), 1);
}

static void test_several_texts_first_wins(void)
{
    struct stub_until u = {0};
    CU_ASSERT_EQUAL(stub_until_add(&u, "panic"), 0);
    CU_ASSERT_EQUAL(stub_until_add(&u, "ok"), 0);
    size_t end;
    CU_ASSERT_EQUAL(feed(&u, "booting... ok, then panic", &end), 1);
    CU_ASSERT_EQUAL(end, 13);
    CU_ASSERT_EQUAL(feed(&u, ", then panic", &end), 0);
    CU_ASSERT_EQUAL(end, 12);
}

static void test_limits_and_clear(void)
{
    struct stub_until u = {0};
    size_t end;
    CU_ASSERT_EQUAL(feed(&u, "anything", &end), -1); /* nothing set: nothing found */
    CU_ASSERT_EQUAL(stub_until_add(&u, ""), -EINVAL);
    char big[STUB_UNTIL_MAX_LEN + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    CU_ASSERT_EQUAL(stub_until_add(&u, big), -EINVAL);
    big[STUB_UNTIL_MAX_LEN] = 0;
    CU_ASSERT_EQUAL(stub_until_add(&u, big), 0);
    CU_ASSERT_EQUAL(stub_until_add(&u, big), -EEXIST);
    for (unsigned i = 1; i < STUB_UNTIL_MAX; i++) {
        char t[8];
        snprintf(t, sizeof(t), "t%u", i);
        CU_ASSERT_EQUAL(stub_until_add(&u, t), 0);
    }
    CU_ASSERT_EQUAL(stub_until_add(&u, "one more"), -ENOSPC);
    stub_until_clear(&u);
    CU_ASSERT_EQUAL(feed(&u, "t1 t2", &end), -1);
    CU_ASSERT_EQUAL(stub_until_add(&u, "t2"), 0);
    CU_ASSERT_EQUAL(feed(&u, "t1 t2", &end), 0);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("stub_until", NULL, NULL);
    CU_add_test(s, "a text split across writes", test_split_across_writes);
    CU_add_test(s, "overlapping prefixes are not missed", test_overlapping_prefixes);
    CU_add_test(s, "several texts: the first to end wins", test_several_texts_first_wins);
    CU_add_test(s, "limits, duplicates, clear", test_limits_and_clear);
}

int main(void)
{
    return test_main("test_stub_until", register_suites, false);
}
