#include "testmain.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int test_kvm_available(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    close(fd);
    return 0;
}

bool test_under_valgrind(void)
{
    const char *v = getenv("KVMSTUB_UNDER_VALGRIND");
    return v && strcmp(v, "1") == 0;
}

int test_main(const char *name, void (*register_suites)(void), bool needs_kvm)
{
    /* Unbuffered (CUnit names a test before it runs, without a newline):
     * when CTest kills a suite at its timeout, its output
     * must still say which test it was in. */
    setvbuf(stdout, NULL, _IONBF, 0);
    if (needs_kvm) {
        int err = test_kvm_available();
        if (err) {
            const char *req = getenv("KVMSTUB_REQUIRE_KVM");
            bool required = req && strcmp(req, "1") == 0;
            fprintf(stderr, "%s: %s: cannot open /dev/kvm: %s\n", name, required ? "FAIL" : "SKIP",
                    strerror(-err));
            if (required) {
                fprintf(stderr, "%s: KVMSTUB_REQUIRE_KVM=1 forbids skipping; run on a host with "
                                "KVM (or through .ci/kvm-machine)\n", name);
                return 1;
            }
            fprintf(stderr, "%s: this suite needs KVM; set KVMSTUB_REQUIRE_KVM=1 to make that "
                            "an error\n", name);
            return TEST_SKIP_CODE;
        }
    }
    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "%s: cannot initialise CUnit: %s\n", name, CU_get_error_msg());
        return 1;
    }
    register_suites();
    if (CU_get_error() != CUE_SUCCESS) {
        fprintf(stderr, "%s: cannot register tests: %s\n", name, CU_get_error_msg());
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    /* Again at the end, on stderr: CI shows a failed suite's last lines, and
     * CUnit printed each failure under its test, far above. */
    for (CU_pFailureRecord f = CU_get_failure_list(); f; f = f->pNext)
        fprintf(stderr, "%s: failed: %s: %s:%u: %s\n", name,
                f->pTest && f->pTest->pName ? f->pTest->pName : "(suite setup)",
                f->strFileName ? f->strFileName : "?", f->uiLineNumber,
                f->strCondition ? f->strCondition : "?");
    unsigned failed = CU_get_number_of_failures();
    unsigned failed_suites = CU_get_number_of_suites_failed();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (failed || failed_suites) {
        fprintf(stderr, "%s: %u assertion(s) failed, %u suite(s) failed to set up\n", name, failed,
                failed_suites);
        return 1;
    }
    if (ran == 0) {
        fprintf(stderr, "%s: no test ran\n", name);
        return 1;
    }
    return 0;
}
