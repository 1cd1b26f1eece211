/* vm/boot.h: layout of the boot area, the top VM_BOOT_AREA_SIZE (64 KiB)
 * bytes of guest RAM, where kvmstub places what protected-mode, long-mode
 * and multiboot entry need. Images may not overlap it; the multiboot memory
 * map reports it reserved. Real-mode guests get nothing placed there.
 *
 *   +0x0000  GDT: null, 0x08 flat 32-bit code, 0x10 flat data, 0x18 64-bit code
 *   +0x1000  PML4                    (long mode)
 *   +0x2000  PDPT                    (long mode)
 *   +0x3000  4 page directories, 2 MiB pages identity-mapping 0-4 GiB
 *   +0x7000  multiboot information structure, then its memory map at +0x7100
 *   +0x8000  multiboot command line (up to 4 KiB with its NUL)
 *   +0x9000  multiboot boot loader name
 *   the initial stack pointer of protected and long mode is the area's base */
#ifndef VM_BOOT_H
#define VM_BOOT_H

#define VM_BOOT_GDT 0x0000u
#define VM_BOOT_PML4 0x1000u
#define VM_BOOT_PDPT 0x2000u
#define VM_BOOT_PD 0x3000u
#define VM_BOOT_PD_COUNT 4u
#define VM_BOOT_MBI 0x7000u
#define VM_BOOT_MMAP 0x7100u
#define VM_BOOT_CMDLINE 0x8000u
#define VM_BOOT_CMDLINE_MAX 0x1000u
#define VM_BOOT_LOADER_NAME 0x9000u

#define VM_GDT_ENTRIES 4u
#define VM_SEL_CODE32 0x08u
#define VM_SEL_DATA 0x10u
#define VM_SEL_CODE64 0x18u

#endif
