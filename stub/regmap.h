/* stub/regmap.h: how gdb numbers, sizes and describes x86 registers: the
 * amd64 and i386 layouts. One table per layout feeds the 'g'/'G' packets,
 * 'p'/'P', the stop replies' expedited registers, the target description
 * (stub/tdesc.h) and --reg, so they cannot disagree. Register numbers are
 * positions in these tables; the machine knows registers by enum vm_reg_id. */
#ifndef STUB_REGMAP_H
#define STUB_REGMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "target.h"
#include "vm/regs.h"

enum stub_arch {
    STUB_ARCH_I386,
    STUB_ARCH_AMD64,
};

/* No layout's 'g' packet is longer than this many bytes (checked by the
 * tests). */
#define STUB_REGMAP_MAX_BYTES 4096u

/* The layout a debugger is given: chosen from the CPU mode when it
 * connects (auto), or one for the whole connection. */
enum stub_gdb_arch {
    STUB_GDB_ARCH_AUTO,
    STUB_GDB_ARCH_I8086,
    STUB_GDB_ARCH_I386,
    STUB_GDB_ARCH_AMD64,
};

struct stub_reg {
    enum vm_reg_id id;
    const char *name;    /* gdb's name */
    uint8_t size;        /* bytes in the 'g' packet */
    const char *type;    /* target-description type */
    const char *group;   /* target-description group, or NULL */
    const char *feature; /* target-description feature */
};

/* The layout for arch with the register sets (STUB_REGSET_*, from the
 * target) the host has; *count receives its length. */
const struct stub_reg *stub_regmap(enum stub_arch arch, unsigned sets, size_t *count);
/* Bytes of all its registers: what a 'G' may carry. */
size_t stub_regmap_size(enum stub_arch arch, unsigned sets);
/* The leading registers a 'g' reply carries: the general ones, through gs,
 * which gdb needs at every stop. gdb reads the rest (x87, SSE, AVX, the
 * system registers) with 'p' when it shows them, as it does for the
 * register sets QEMU keeps out of 'g'; LLDB does the same. A 'g' of every
 * register would cost each stop kilobytes of hex on hosts with AVX-512. */
size_t stub_regmap_g_count(enum stub_arch arch, unsigned sets);
size_t stub_regmap_g_size(enum stub_arch arch, unsigned sets);
/* The entry of register number regno, or NULL. */
const struct stub_reg *stub_regmap_reg(enum stub_arch arch, unsigned sets, size_t regno);
/* A register name of either layout, with every set ("rax", "eip", "cr3",
 * "ymm3h") to its id. */
int stub_regmap_find(const char *name, enum vm_reg_id *id);
/* The layout gdb is given for a CPU mode, and whether it is described as
 * i8086 (real mode). */
enum stub_arch stub_regmap_arch(enum vm_mode mode, bool *real_mode);
/* The mode's name as gdb users read it ("long", "protected", "real"), and
 * whether a register is kept 64 bits wide whatever the mode: the
 * session's view of vm/regs.h, so that it calls nothing in vm/. */
const char *stub_regmap_mode_name(enum vm_mode mode);
bool stub_regmap_is_wide(enum vm_reg_id id);

#endif
