/* tests/common/testmain.h: the main() every CUnit suite executable shares.
 *
 * A suite that needs /dev/kvm skips (exit 77, which CTest reports as
 * skipped) with a message saying why when the device is absent, and fails
 * instead when KVMSTUB_REQUIRE_KVM=1, so CI can never pass by skipping. */
#ifndef TESTMAIN_H
#define TESTMAIN_H

#include <stdbool.h>

#define TEST_SKIP_CODE 77

/* Registers suites through register_suites() and runs them. Returns the
 * process exit status: 0 on success, 1 on failures, 77 when skipped. */
int test_main(const char *name, void (*register_suites)(void), bool needs_kvm);

/* 0 when /dev/kvm can be opened read-write, else a negative errno. */
int test_kvm_available(void);

/* True when the suite runs under valgrind (KVMSTUB_UNDER_VALGRIND=1, which
 * the *_valgrind tests set): randomised model tests then take fewer steps,
 * since valgrind looks for uninitialised reads, which a few steps reach as
 * well as many, at 30-50 times the cost of each. */
bool test_under_valgrind(void);

#endif
