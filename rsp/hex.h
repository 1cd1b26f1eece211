/* rsp/hex.h: strict hexadecimal helpers for RSP payloads.
 *
 * Decoders accept upper- and lower-case digits and nothing else: no "0x",
 * no signs, no whitespace. Encoders write lower case, as gdb does. */
#ifndef RSP_HEX_H
#define RSP_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Value of one hex digit, or -1. */
int rsp_hex_digit(int c);
/* Writes 2*n characters (no NUL) and returns 2*n. */
size_t rsp_hex_encode(char *out, const void *in, size_t n);
/* Decodes exactly n_chars characters into n_chars/2 bytes; out may alias in.
 * Returns the byte count, or -EINVAL for an odd count or a non-hex digit. */
long rsp_hex_decode(uint8_t *out, const char *in, size_t n_chars);
/* Parses a hex number of 1..16 significant digits at *p (< end) and advances
 * *p past it. -EINVAL if there is no digit, -ERANGE if it does not fit. */
int rsp_hex_parse_u64(const char **p, const char *end, uint64_t *out);
/* Writes v as minimal lower-case hex (at least one digit) plus a NUL into
 * out (>= 17 bytes); returns the digit count. */
size_t rsp_hex_format_u64(char *out, uint64_t v);

#endif
