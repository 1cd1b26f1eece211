/* vm/bzimage.h: the Linux x86 boot protocol, 64-bit entry
 * (Documentation/arch/x86/boot.rst and zero-page.rst).
 *
 * vm_bzimage_parse validates a bzImage held in an untrusted buffer;
 * vm_bzimage_load builds everything the kernel's 64-bit entry needs in a
 * guest-RAM buffer and returns the CPU state to enter it with. Loading
 * checks everything before it writes a byte: a refused load leaves RAM as
 * it was. Errors are one line in err, and distinct codes:
 *   -ENOEXEC          not a bzImage (or a malformed/truncated one)
 *   -EPROTONOSUPPORT  boot protocol older than 2.12
 *   -ENOTSUP          no 64-bit entry point (XLF_KERNEL_64 clear)
 *   -ENOSPC           the kernel (load address + init_size) does not fit in RAM
 *   -EFBIG            the initrd does not fit in RAM below initrd_addr_max
 *   -E2BIG            the command line is longer than the kernel takes
 *   -EINVAL           a bad argument from the board (reserved ranges, RAM)
 *
 * Guest physical layout below 1 MiB (RAM in the e820 map unless noted);
 * firecracker uses the same addresses for its GDT, zero page, stack and
 * command line, and its MP table sits at 0x9fc00 too:
 *   0x00500  GDT: null, null, 0x10 64-bit code, 0x18 flat data
 *   0x01000  PML4
 *   0x02000  PDPT
 *   0x03000  4 page directories, 2 MiB pages identity-mapping 0-4 GiB
 *   0x07000  zero page (struct boot_params)
 *   0x08ff0  initial stack pointer (stack below it, down to 0x8000)
 *   0x20000  command line (VM_BZIMAGE_CMDLINE_ROOM bytes with its NUL)
 *   0x9fc00  reserved to 1 MiB: room for the MP table (vm/mptable.h)
 * The kernel goes to pref_address (0x100000 when the header has none);
 * a relocatable kernel that does not fit there goes as low as its
 * kernel_alignment allows above 1 MiB. The initrd goes as high as it can,
 * above the kernel's init_size and ending at or below initrd_addr_max. */
#ifndef VM_BZIMAGE_H
#define VM_BZIMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VM_BZIMAGE_MIN_VERSION 0x020cu
#define VM_BZIMAGE_GDT 0x500u
#define VM_BZIMAGE_PML4 0x1000u
#define VM_BZIMAGE_PDPT 0x2000u
#define VM_BZIMAGE_PD 0x3000u
#define VM_BZIMAGE_PD_COUNT 4u
#define VM_BZIMAGE_ZERO_PAGE 0x7000u
#define VM_BZIMAGE_STACK 0x8ff0u
#define VM_BZIMAGE_CMDLINE 0x20000u
#define VM_BZIMAGE_CMDLINE_ROOM 0x10000u
#define VM_BZIMAGE_MPTABLE 0x9fc00u /* end of low RAM, start of the reserved hole */
#define VM_BZIMAGE_LOW_END 0x100000u
#define VM_BZIMAGE_BOOT_CS 0x10u /* __BOOT_CS */
#define VM_BZIMAGE_BOOT_DS 0x18u /* __BOOT_DS */

#define VM_E820_RAM 1u
#define VM_E820_RESERVED 2u
#define VM_E820_MAX 128u /* what the zero page holds */
#define VM_BZIMAGE_MAX_RESERVED 48u

struct vm_e820_entry {
    uint64_t addr, size;
    uint32_t type;
};

struct vm_bzimage_range {
    uint64_t start, size;
};

/* What vm_bzimage_parse learned; data points into the caller's buffer,
 * which must outlive the struct. */
struct vm_bzimage {
    const uint8_t *data;
    size_t size;
    uint16_t version;     /* 0x020f for 2.15 */
    size_t header_end;    /* 0x202 + byte 0x201: end of the setup header */
    size_t kernel_offset; /* the protected-mode kernel in the file */
    size_t kernel_size;
    uint16_t xloadflags;
    bool relocatable;
    uint32_t kernel_alignment;
    uint64_t pref_address;
    uint64_t init_size;       /* at least kernel_size */
    uint64_t initrd_addr_max; /* highest byte an initrd may occupy */
    uint32_t cmdline_size;    /* longest command line, without its NUL */
};

/* True when data starts like a bzImage (boot flag and "HdrS"); a cheap test
 * for format detection before vm_bzimage_parse. */
bool vm_bzimage_detect(const void *data, size_t size);

int vm_bzimage_parse(struct vm_bzimage *bz, const void *data, size_t size, char *err,
                     size_t errlen);

struct vm_bzimage_params {
    const char *cmdline; /* NULL for none */
    const void *initrd;  /* NULL or initrd_size bytes */
    size_t initrd_size;
    /* Ranges the board keeps for itself (firmware tables, MMIO): they are
     * cut out of RAM in the e820 map and reported reserved. At most
     * VM_BZIMAGE_MAX_RESERVED; none may overlap the layout above. */
    const struct vm_bzimage_range *reserved;
    size_t nreserved;
};

/* CPU state at the 64-bit entry: long mode, paging on with cr3's identity
 * map, cs = 0x10 (64-bit code: type 0xb, s, present, l, g, base 0, limit
 * 0xffffffff), ds = es = ss = 0x18 (data: type 3, s, present, db, g),
 * interrupts off (rflags 2), rsi = the zero page. The rest: where things
 * were put. */
struct vm_bzimage_entry {
    uint64_t rip, rsp, rsi;
    uint64_t cr0, cr3, cr4, efer;
    uint64_t gdt_base;
    uint16_t gdt_limit;
    uint16_t cs, ds;
    uint64_t kernel_addr, kernel_end; /* kernel_end = kernel_addr + init_size region */
    uint64_t initrd_addr, initrd_size;
    uint64_t cmdline_addr;
    uint64_t zero_page;
};

int vm_bzimage_load(const struct vm_bzimage *bz, uint8_t *ram, uint64_t ram_size,
                    const struct vm_bzimage_params *p, struct vm_bzimage_entry *entry, char *err,
                    size_t errlen);

/* The e820 map vm_bzimage_load writes: RAM [0, 0x9fc00), reserved to
 * 1 MiB, RAM from 1 MiB to ram_size, with the reserved ranges cut out and
 * listed as reserved; sorted, adjacent entries of one type merged. Returns
 * the number of entries written to out, or -EINVAL (a bad range) or
 * -E2BIG (more than max entries). */
int vm_bzimage_e820(uint64_t ram_size, const struct vm_bzimage_range *reserved, size_t nreserved,
                    struct vm_e820_entry *out, size_t max);

#endif
