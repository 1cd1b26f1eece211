#include "checksum.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#define POLY 0x82f63b78u /* CRC-32C, reflected */

static uint32_t table[8][256];
static bool hw;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
#if defined(__x86_64__)
    __builtin_cpu_init();
    hw = __builtin_cpu_supports("sse4.2");
#endif
}

/* Slicing by 8: eight table look-ups per 8 bytes. */
static uint32_t soft(uint32_t c, const uint8_t *p, size_t n)
{
    for (; n && ((uintptr_t)p & 7); n--)
        c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= c;
        c = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
            table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^
            table[2][(w >> 40) & 0xff] ^ table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
    }
    for (; n; n--)
        c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t hard(uint32_t c, const uint8_t *p, size_t n)
{
    uint64_t c64 = c;
    for (; n && ((uintptr_t)p & 7); n--)
        c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++);
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c64 = __builtin_ia32_crc32di(c64, w);
    }
    for (; n; n--)
        c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++);
    return (uint32_t)c64;
}
#endif

uint32_t vm_checksum_crc32c(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&once, init);
    uint32_t c = ~crc;
#if defined(__x86_64__)
    if (hw)
        return ~hard(c, buf, len);
#endif
    return ~soft(c, buf, len);
}

uint32_t vm_checksum_crc32c_portable(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&once, init);
    return ~soft(~crc, buf, len);
}

uint64_t vm_checksum_fnv64(uint64_t h, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
