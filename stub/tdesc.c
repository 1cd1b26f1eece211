#include "tdesc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define TDESC_MAX 16384

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

static void sse_types(struct out *o)
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
    static const char *const mx[] = {"IE", "DE", "ZE", "OE", "UE", "PE", "DAZ", "IM",
                                     "DM", "ZM", "OM", "UM", "PM", NULL, NULL, "FZ"};
    put(o, "    <flags id=\"i386_mxcsr\" size=\"4\">\n");
    for (int b = 0; b < 16; b++)
        if (mx[b])
            put(o, "      <field name=\"%s\" start=\"%d\" end=\"%d\"/>\n", mx[b], b, b);
    put(o, "    </flags>\n");
}

const char *stub_tdesc(enum stub_arch arch, bool real_mode, size_t *len)
{
    static char buf[3][TDESC_MAX];
    static size_t lens[3];
    int which = arch == STUB_ARCH_AMD64 ? 2 : real_mode ? 0 : 1;
    if (!lens[which]) {
        struct out o = {buf[which], 0, TDESC_MAX};
        put(&o, "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n"
                "<target version=\"1.0\">\n  <architecture>%s</architecture>\n"
                "  <osabi>none</osabi>\n",
            which == 2 ? "i386:x86-64" : which == 1 ? "i386" : "i8086");
        size_t n;
        const struct stub_reg *d = stub_regmap(arch, &n);
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
            }
            put(&o, "    <reg name=\"%s\" bitsize=\"%u\" type=\"%s\" regnum=\"%zu\"", d[i].name,
                d[i].size * 8u, d[i].type, i);
            if (d[i].group)
                put(&o, " group=\"%s\"", d[i].group);
            put(&o, "/>\n");
        }
        put(&o, "  </feature>\n</target>\n");
        lens[which] = o.len;
    }
    *len = lens[which];
    return buf[which];
}
