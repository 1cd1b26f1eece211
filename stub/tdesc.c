#include "tdesc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define TDESC_MAX 65536

struct out {
    char *p;
    size_t len, cap;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len = o->len + (size_t)n < o->cap ? o->len + (size_t)n : o->cap - 1;
}

/* Types the registers use that gdb does not predefine. */
static void core_types(struct out *o)
{
    static const struct {
        const char *name;
        int bit;
    } eflags[] = {{"CF", 0},  {"PF", 2},  {"AF", 4},  {"ZF", 6},  {"SF", 7},
                  {"TF", 8},  {"IF", 9},  {"DF", 10}, {"OF", 11}, {"NT", 14}, {"RF", 16},
                  {"VM", 17}, {"AC", 18}, {"VIF", 19}, {"VIP", 20}, {"ID", 21}};
    put(o, "    <flags id=\"i386_eflags\" size=\"4\">\n");
    for (size_t i = 0; i < sizeof(eflags) / sizeof(eflags[0]); i++)
        put(o, "      <field name=\"%s\" start=\"%d\" end=\"%d\"/>\n", eflags[i].name, eflags[i].bit,
            eflags[i].bit);
    put(o, "    </flags>\n");
}

static void vec128_types(struct out *o)
{
    put(o, "    <vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/>\n"
           "    <vector id=\"v2d\" type=\"ieee_double\" count=\"2\"/>\n"
           "    <vector id=\"v16i8\" type=\"int8\" count=\"16\"/>\n"
           "    <vector id=\"v8i16\" type=\"int16\" count=\"8\"/>\n"
           "    <vector id=\"v4i32\" type=\"int32\" count=\"4\"/>\n"
           "    <vector id=\"v2i64\" type=\"int64\" count=\"2\"/>\n"
           "    <union id=\"vec128\">\n"
           "      <field name=\"v4_float\" type=\"v4f\"/>\n"
           "      <field name=\"v2_double\" type=\"v2d\"/>\n"
           "      <field name=\"v16_int8\" type=\"v16i8\"/>\n"
           "      <field name=\"v8_int16\" type=\"v8i16\"/>\n"
           "      <field name=\"v4_int32\" type=\"v4i32\"/>\n"
           "      <field name=\"v2_int64\" type=\"v2i64\"/>\n"
           "      <field name=\"uint128\" type=\"uint128\"/>\n"
           "    </union>\n");
}

static void sse_types(struct out *o)
{
    vec128_types(o);
    static const char *const mx[] = {"IE", "DE", "ZE", "OE", "UE", "PE", "DAZ", "IM",
                                     "DM", "ZM", "OM", "UM", "PM", NULL, NULL, "FZ"};
    put(o, "    <flags id=\"i386_mxcsr\" size=\"4\">\n");
    for (int b = 0; b < 16; b++)
        if (mx[b])
            put(o, "      <field name=\"%s\" start=\"%d\" end=\"%d\"/>\n", mx[b], b, b);
    put(o, "    </flags>\n");
}

/* A flags type: one-bit fields by name, and multi-bit ones (start-end). */
struct field {
    const char *name;
    int start, end;
};

static void flags(struct out *o, const char *id, int size, const struct field *f, size_t n)
{
    put(o, "    <flags id=\"%s\" size=\"%d\">\n", id, size);
    for (size_t i = 0; i < n; i++)
        if (f[i].start < size * 8)
            put(o, "      <field name=\"%s\" start=\"%d\" end=\"%d\"/>\n", f[i].name, f[i].start,
                f[i].end);
    put(o, "    </flags>\n");
}

#define FLAGS(o, id, size, f) flags(o, id, size, f, sizeof(f) / sizeof(f[0]))

/* The control, segment and debug register types of kvmstub's system
 * feature, so "info registers cr0" decodes the bits as gdb does eflags. */
static void system_types(struct out *o, bool wide)
{
    static const struct field cr0[] = {{"PE", 0, 0},   {"MP", 1, 1},   {"EM", 2, 2},
                                       {"TS", 3, 3},   {"ET", 4, 4},   {"NE", 5, 5},
                                       {"WP", 16, 16}, {"AM", 18, 18}, {"NW", 29, 29},
                                       {"CD", 30, 30}, {"PG", 31, 31}};
    static const struct field cr4[] = {
        {"VME", 0, 0},         {"PVI", 1, 1},     {"TSD", 2, 2},         {"DE", 3, 3},
        {"PSE", 4, 4},         {"PAE", 5, 5},     {"MCE", 6, 6},         {"PGE", 7, 7},
        {"PCE", 8, 8},         {"OSFXSR", 9, 9},  {"OSXMMEXCPT", 10, 10}, {"UMIP", 11, 11},
        {"LA57", 12, 12},      {"VMXE", 13, 13},  {"SMXE", 14, 14},      {"FSGSBASE", 16, 16},
        {"PCIDE", 17, 17},     {"OSXSAVE", 18, 18}, {"SMEP", 20, 20},    {"SMAP", 21, 21},
        {"PKE", 22, 22},       {"CET", 23, 23},   {"PKS", 24, 24}};
    static const struct field efer[] = {{"SCE", 0, 0},   {"LME", 8, 8},   {"LMA", 10, 10},
                                        {"NXE", 11, 11}, {"SVME", 12, 12}, {"LMSLE", 13, 13},
                                        {"FFXSR", 14, 14}, {"TCE", 15, 15}};
    static const struct field seg[] = {{"type", 0, 3}, {"S", 4, 4},    {"DPL", 5, 6},
                                       {"P", 7, 7},    {"AVL", 12, 12}, {"L", 13, 13},
                                       {"DB", 14, 14}, {"G", 15, 15},  {"unusable", 16, 16}};
    static const struct field dr6[] = {{"B0", 0, 0},   {"B1", 1, 1},   {"B2", 2, 2},
                                       {"B3", 3, 3},   {"BD", 13, 13}, {"BS", 14, 14},
                                       {"BT", 15, 15}, {"RTM", 16, 16}};
    static const struct field dr7[] = {{"L0", 0, 0},     {"G0", 1, 1},     {"L1", 2, 2},
                                       {"G1", 3, 3},     {"L2", 4, 4},     {"G2", 5, 5},
                                       {"L3", 6, 6},     {"G3", 7, 7},     {"LE", 8, 8},
                                       {"GE", 9, 9},     {"GD", 13, 13},   {"RW0", 16, 17},
                                       {"LEN0", 18, 19}, {"RW1", 20, 21},  {"LEN1", 22, 23},
                                       {"RW2", 24, 25},  {"LEN2", 26, 27}, {"RW3", 28, 29},
                                       {"LEN3", 30, 31}};
    const char *sfx = wide ? "" : "_32";
    int w = wide ? 8 : 4;
    char id[32];
    snprintf(id, sizeof(id), "cr0_flags%s", sfx);
    FLAGS(o, id, w, cr0);
    snprintf(id, sizeof(id), "cr4_flags%s", sfx);
    FLAGS(o, id, w, cr4);
    FLAGS(o, "efer_flags", 8, efer);
    FLAGS(o, "seg_attr", 4, seg);
    snprintf(id, sizeof(id), "dr6_flags%s", sfx);
    FLAGS(o, id, w, dr6);
    snprintf(id, sizeof(id), "dr7_flags%s", sfx);
    FLAGS(o, id, w, dr7);
}

const char *stub_tdesc(enum stub_arch arch, unsigned sets, bool real_mode, size_t *len)
{
    static char buf[3][4][TDESC_MAX];
    static size_t lens[3][4];
    int which = arch == STUB_ARCH_AMD64 ? 2 : real_mode ? 0 : 1;
    unsigned k = sets & 3;
    if (!lens[which][k]) {
        struct out o = {buf[which][k], 0, TDESC_MAX};
        put(&o, "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n"
                "<target version=\"1.0\">\n  <architecture>%s</architecture>\n"
                "  <osabi>none</osabi>\n",
            which == 2 ? "i386:x86-64" : which == 1 ? "i386" : "i8086");
        size_t n;
        const struct stub_reg *d = stub_regmap(arch, sets, &n);
        const char *feature = NULL;
        for (size_t i = 0; i < n; i++) {
            if (!feature || strcmp(feature, d[i].feature) != 0) {
                if (feature)
                    put(&o, "  </feature>\n");
                feature = d[i].feature;
                put(&o, "  <feature name=\"%s\">\n", feature);
                if (strcmp(feature, "org.gnu.gdb.i386.core") == 0)
                    core_types(&o);
                else if (strcmp(feature, "org.gnu.gdb.i386.sse") == 0)
                    sse_types(&o);
                else if (strcmp(feature, "org.gnu.gdb.i386.avx512") == 0) {
                    /* gdb looks types up within their feature. */
                    vec128_types(&o);
                    put(&o, "    <vector id=\"v2ui128\" type=\"uint128\" count=\"2\"/>\n");
                }
                else if (strcmp(feature, "org.kvmstub.x86.system") == 0)
                    system_types(&o, arch == STUB_ARCH_AMD64);
            }
            put(&o, "    <reg name=\"%s\" bitsize=\"%u\" type=\"%s\" regnum=\"%zu\"", d[i].name,
                d[i].size * 8u, d[i].type, i);
            if (d[i].group)
                put(&o, " group=\"%s\"", d[i].group);
            put(&o, "/>\n");
        }
        put(&o, "  </feature>\n</target>\n");
        lens[which][k] = o.len;
    }
    *len = lens[which][k];
    return buf[which][k];
}
