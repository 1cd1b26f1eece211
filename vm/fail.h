/* vm/fail.h: the vm layer's way to fail with a message. Writes the
 * formatted text into err (when err and errlen allow) and returns code, a
 * negative errno, so a caller can `return vm_fail(err, errlen, -EINVAL, ...)`. */
#ifndef VM_FAIL_H
#define VM_FAIL_H
#include <stddef.h>

__attribute__((format(printf, 4, 5))) int vm_fail(char *err, size_t errlen, int code,
                                                  const char *fmt, ...);

#endif
