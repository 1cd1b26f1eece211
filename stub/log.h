/* stub/log.h: what kvmstub says on stderr. Every line starts with
 * "kvmstub: ". Safe from any thread (one fprintf per line). */
#ifndef STUB_LOG_H
#define STUB_LOG_H

#include <stdbool.h>
#include <stddef.h>

void stub_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Only with --trace. */
void stub_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void stub_set_trace(bool on);
/* Logs a packet for --trace, escaping what is not printable. */
void stub_trace_packet(const char *dir, const void *data, size_t len);
/* For the vm layer's diagnostics callback. */
void stub_vm_log(void *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
