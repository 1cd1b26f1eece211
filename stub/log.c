#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static bool tracing;

static void vlog(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static void vlog(const char *fmt, va_list ap)
{
    char line[1024];
    vsnprintf(line, sizeof(line), fmt, ap);
    fprintf(stderr, "kvmstub: %s\n", line);
}

void stub_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

void stub_trace(const char *fmt, ...)
{
    if (!tracing)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

void stub_set_trace(bool on)
{
    tracing = on;
}

void stub_trace_packet(const char *dir, const void *data, size_t len)
{
    if (!tracing)
        return;
    /* Long packets are cut: the start says what they are. */
    char buf[600];
    size_t o = 0;
    const unsigned char *p = data;
    for (size_t i = 0; i < len && o + 5 < sizeof(buf); i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
            buf[o++] = (char)p[i];
        else
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\\x%02x", p[i]);
    }
    buf[o] = 0;
    stub_log("%s %s%s", dir, buf, o + 5 >= sizeof(buf) ? "..." : "");
}

void stub_vm_log(void *ctx, const char *fmt, ...)
{
    (void)ctx;
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}
