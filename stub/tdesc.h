/* stub/tdesc.h: the target description gdb reads with
 * qXfer:features:read:target.xml, generated from stub/regmap.h's layouts so the
 * 'g' packet and the description cannot disagree. */
#ifndef STUB_TDESC_H
#define STUB_TDESC_H

#include <stdbool.h>
#include <stddef.h>

#include "regmap.h"

/* The XML for arch with the register sets STUB_REGSET_* (i8086 instead of
 * i386 when real_mode), NUL-terminated,
 * in a static buffer; *len receives its length. */
const char *stub_tdesc(enum stub_arch arch, unsigned sets, bool real_mode, size_t *len);

#endif
