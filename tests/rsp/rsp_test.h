/* tests/rsp/rsp_test.h: small helpers shared by the rsp/ suites. */
#ifndef RSP_TEST_H
#define RSP_TEST_H

#include <CUnit/Basic.h>
#include <stddef.h>
#include <stdio.h>

/* An assertion whose failure message says which input failed, for checks
 * made in loops over tables of packets. */
#define CHECKF(cond, ...)                                                                  \
    do {                                                                                   \
        char checkf_msg_[512];                                                             \
        snprintf(checkf_msg_, sizeof(checkf_msg_), __VA_ARGS__);                           \
        CU_assertImplementation((cond) ? CU_TRUE : CU_FALSE, __LINE__, checkf_msg_, __FILE__, \
                                "", CU_FALSE);                                             \
    } while (0)

struct rsp_test {
    const char *name;
    void (*fn)(void);
};


/* clean, if not NULL, runs after the suite's tests. */
static inline void rsp_test_add_suite(const char *name, const struct rsp_test *tests, size_t n,
                                      int (*clean)(void))
{
    CU_pSuite s = CU_add_suite(name, NULL, clean);
    if (!s)
        return;
    for (size_t i = 0; i < n; i++)
        if (!CU_add_test(s, tests[i].name, tests[i].fn))
            return;
}

#endif
