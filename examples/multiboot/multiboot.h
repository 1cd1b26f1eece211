/* multiboot.h: the parts of the multiboot (version 1) information structure
 * that the example reads. The boot loader fills it in; `flags` says which
 * fields are valid. All addresses are physical, all fields little-endian. */
#ifndef EXAMPLES_MULTIBOOT_H
#define EXAMPLES_MULTIBOOT_H

#include <stdint.h>

#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002 /* in EAX at entry */

#define MULTIBOOT_INFO_MEMORY (1u << 0)      /* mem_lower, mem_upper */
#define MULTIBOOT_INFO_CMDLINE (1u << 2)     /* cmdline */
#define MULTIBOOT_INFO_MEM_MAP (1u << 6)     /* mmap_length, mmap_addr */
#define MULTIBOOT_INFO_LOADER_NAME (1u << 9) /* boot_loader_name */

struct multiboot_info {
    uint32_t flags;
    uint32_t mem_lower; /* KiB of memory below 1 MiB */
    uint32_t mem_upper; /* KiB of memory from 1 MiB up to the first hole */
    uint32_t boot_device;
    uint32_t cmdline; /* address of a NUL-terminated string */
    uint32_t mods_count;
    uint32_t mods_addr;
    uint32_t syms[4];
    uint32_t mmap_length; /* bytes of memory map */
    uint32_t mmap_addr;
    uint32_t drives_length;
    uint32_t drives_addr;
    uint32_t config_table;
    uint32_t boot_loader_name; /* address of a NUL-terminated string */
};

/* One memory map entry. `size` counts the bytes after itself, so the next
 * entry is at (char *)entry + entry->size + 4; entries may grow in later
 * versions. Packed: the 64-bit fields are not 8-byte aligned. */
struct multiboot_mmap_entry {
    uint32_t size;
    uint64_t addr;
    uint64_t len;
    uint32_t type; /* 1: available RAM; anything else: reserved */
} __attribute__((packed));

#endif
