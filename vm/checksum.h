/* vm/checksum.h: checksums for snapshot files.
 *
 * CRC-32C (Castagnoli), computed with the SSE4.2 crc32 instruction where the
 * host has it and with tables otherwise (same results); chain calls by
 * passing the previous value (start with 0). FNV-1a 64 as a cheap identity
 * digest (CPUID tables, images): it detects accidents, not attacks. */
#ifndef VM_CHECKSUM_H
#define VM_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

uint32_t vm_checksum_crc32c(uint32_t crc, const void *buf, size_t len);
/* The table version alone, whatever the host has (tests compare the two). */
uint32_t vm_checksum_crc32c_portable(uint32_t crc, const void *buf, size_t len);
uint64_t vm_checksum_fnv64(uint64_t h, const void *buf, size_t len);
#define VM_CHECKSUM_FNV64_INIT 0xcbf29ce484222325ull

#endif
