/* Parsing a bzImage's setup header and laying out a 64-bit Linux boot.
 * Field offsets are boot.rst's (setup header) and zero-page.rst's (the
 * rest of struct boot_params). */
#include "bzimage.h"
#include "fail.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Setup header fields, as file (and zero page) offsets. */
#define HDR_START 0x1f1u
#define HDR_SETUP_SECTS 0x1f1u
#define HDR_SYSSIZE 0x1f4u
#define HDR_BOOT_FLAG 0x1feu
#define HDR_JUMP 0x200u
#define HDR_MAGIC 0x202u
#define HDR_VERSION 0x206u
#define HDR_TYPE_OF_LOADER 0x210u
#define HDR_LOADFLAGS 0x211u
#define HDR_CODE32_START 0x214u
#define HDR_RAMDISK_IMAGE 0x218u
#define HDR_RAMDISK_SIZE 0x21cu
#define HDR_CMD_LINE_PTR 0x228u
#define HDR_INITRD_ADDR_MAX 0x22cu
#define HDR_KERNEL_ALIGNMENT 0x230u
#define HDR_RELOCATABLE 0x234u
#define HDR_XLOADFLAGS 0x236u
#define HDR_CMDLINE_SIZE 0x238u
#define HDR_PREF_ADDRESS 0x258u
#define HDR_INIT_SIZE 0x260u
#define HDR_NEEDED_END 0x264u /* the fields above must all be inside the header */
#define HDR_HOLE_END 0x290u   /* where boot_params' next field starts */

/* boot_params outside the setup header. */
#define BP_EXT_RAMDISK_IMAGE 0x0c0u
#define BP_EXT_RAMDISK_SIZE 0x0c4u
#define BP_EXT_CMD_LINE_PTR 0x0c8u
#define BP_E820_ENTRIES 0x1e8u
#define BP_E820_TABLE 0x2d0u
#define BP_SIZE 0x1000u

#define LOADED_HIGH 0x01u
#define XLF_KERNEL_64 0x01u
#define SECTOR 512u
#define PAGE 0x1000ull
#define LOW_AREA_END (VM_BZIMAGE_CMDLINE + VM_BZIMAGE_CMDLINE_ROOM)

#define CR0_PE (1ull << 0)
#define CR0_ET (1ull << 4)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static double mib(uint64_t n)
{
    return (double)n / (1024.0 * 1024.0);
}

bool vm_bzimage_detect(const void *data, size_t size)
{
    const uint8_t *d = data;
    return size >= HDR_MAGIC + 4 && get16(d + HDR_BOOT_FLAG) == 0xaa55 &&
           memcmp(d + HDR_MAGIC, "HdrS", 4) == 0;
}

int vm_bzimage_parse(struct vm_bzimage *bz, const void *data, size_t size, char *err,
                     size_t errlen)
{
    const uint8_t *d = data;
    memset(bz, 0, sizeof(*bz));
    if (!d || !vm_bzimage_detect(d, size))
        return vm_fail(err, errlen, -ENOEXEC,
                    "not a bzImage: no Linux setup header (boot flag 0xaa55 and \"HdrS\" at 0x202)");
    uint16_t version = get16(d + HDR_VERSION);
    if (version < VM_BZIMAGE_MIN_VERSION)
        return vm_fail(err, errlen, -EPROTONOSUPPORT,
                    "bzImage boot protocol %u.%02u is too old: kvmstub needs 2.12 or later "
                    "(Linux 3.8 and newer)",
                    version >> 8, version & 0xff);
    /* The jump at 0x200 skips the header, so its offset is the header's
     * length; a backward jump or one past boot_params' hole is corrupt. */
    size_t header_end = HDR_MAGIC + d[HDR_JUMP + 1];
    if (d[HDR_JUMP] != 0xeb || header_end < HDR_NEEDED_END || header_end > HDR_HOLE_END ||
        header_end > size)
        return vm_fail(err, errlen, -ENOEXEC,
                    "not a bzImage: its setup header is malformed (jump 0x%02x 0x%02x at 0x200)",
                    d[HDR_JUMP], d[HDR_JUMP + 1]);
    if (!(d[HDR_LOADFLAGS] & LOADED_HIGH))
        return vm_fail(err, errlen, -ENOEXEC,
                    "not a bzImage: a zImage (LOADED_HIGH clear), which has no 64-bit entry");
    uint16_t xlf = get16(d + HDR_XLOADFLAGS);
    if (!(xlf & XLF_KERNEL_64))
        return vm_fail(err, errlen, -ENOTSUP,
                    "this bzImage has no 64-bit entry point (XLF_KERNEL_64 clear): build the "
                    "kernel for x86_64");
    unsigned setup_sects = d[HDR_SETUP_SECTS] ? d[HDR_SETUP_SECTS] : 4;
    size_t setup_size = (setup_sects + 1) * (size_t)SECTOR;
    if (setup_size < header_end || setup_size >= size)
        return vm_fail(err, errlen, -ENOEXEC,
                    "not a bzImage: truncated (%zu bytes, its setup alone takes %zu)", size,
                    setup_size);
    uint64_t syssize = (uint64_t)get32(d + HDR_SYSSIZE) * 16;
    if (syssize > size - setup_size)
        return vm_fail(err, errlen, -ENOEXEC,
                    "not a bzImage: truncated (the header announces %llu bytes of kernel after "
                    "the setup, the file has %zu)",
                    (unsigned long long)syssize, size - setup_size);
    bool relocatable = d[HDR_RELOCATABLE] != 0;
    uint32_t align = get32(d + HDR_KERNEL_ALIGNMENT);
    if (relocatable && (align < PAGE || (align & (align - 1))))
        return vm_fail(err, errlen, -ENOEXEC,
                    "not a bzImage: kernel_alignment 0x%x is not a power of two of at least 4 KiB",
                    align);
    bz->data = d;
    bz->size = size;
    bz->version = version;
    bz->header_end = header_end;
    bz->kernel_offset = setup_size;
    bz->kernel_size = size - setup_size;
    bz->xloadflags = xlf;
    bz->relocatable = relocatable;
    bz->kernel_alignment = align;
    bz->pref_address = get64(d + HDR_PREF_ADDRESS);
    if (!bz->pref_address)
        bz->pref_address = VM_BZIMAGE_LOW_END;
    bz->init_size = get32(d + HDR_INIT_SIZE);
    if (bz->init_size < bz->kernel_size)
        bz->init_size = bz->kernel_size;
    /* "the address of the highest safe byte"; 0 would be nonsense, take
     * the pre-2.03 default. */
    bz->initrd_addr_max = get32(d + HDR_INITRD_ADDR_MAX);
    if (!bz->initrd_addr_max)
        bz->initrd_addr_max = 0x37ffffff;
    bz->cmdline_size = get32(d + HDR_CMDLINE_SIZE);
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int vm_bzimage_e820(uint64_t ram_size, const struct vm_bzimage_range *reserved, size_t nreserved,
                    struct vm_e820_entry *out, size_t max)
{
    if (nreserved > VM_BZIMAGE_MAX_RESERVED || (nreserved && !reserved))
        return -EINVAL;
    for (size_t i = 0; i < nreserved; i++)
        if (!reserved[i].size || reserved[i].start > UINT64_MAX - reserved[i].size)
            return -EINVAL;
    /* Cut the address space at every edge, then type each piece. */
    uint64_t cut[4 + 2 * VM_BZIMAGE_MAX_RESERVED];
    size_t ncut = 0;
    cut[ncut++] = 0;
    cut[ncut++] = VM_BZIMAGE_MPTABLE;
    cut[ncut++] = VM_BZIMAGE_LOW_END;
    cut[ncut++] = ram_size;
    for (size_t i = 0; i < nreserved; i++) {
        cut[ncut++] = reserved[i].start;
        cut[ncut++] = reserved[i].start + reserved[i].size;
    }
    qsort(cut, ncut, sizeof(cut[0]), cmp_u64);
    size_t n = 0;
    for (size_t i = 0; i + 1 < ncut; i++) {
        uint64_t a = cut[i], b = cut[i + 1];
        if (a == b)
            continue;
        uint32_t type = 0;
        if (a >= VM_BZIMAGE_MPTABLE && a < VM_BZIMAGE_LOW_END)
            type = VM_E820_RESERVED;
        for (size_t r = 0; r < nreserved && !type; r++)
            if (a >= reserved[r].start && a - reserved[r].start < reserved[r].size)
                type = VM_E820_RESERVED;
        if (!type && a < ram_size)
            type = VM_E820_RAM;
        if (!type)
            continue;
        if (n && out[n - 1].type == type && out[n - 1].addr + out[n - 1].size == a) {
            out[n - 1].size += b - a;
            continue;
        }
        if (n == max)
            return -E2BIG;
        out[n++] = (struct vm_e820_entry){.addr = a, .size = b - a, .type = type};
    }
    return (int)n;
}

/* True when [start, start + size) lies inside one RAM entry. */
static bool in_ram(const struct vm_e820_entry *map, int n, uint64_t start, uint64_t size)
{
    if (start > UINT64_MAX - size)
        return false;
    for (int i = 0; i < n; i++)
        if (map[i].type == VM_E820_RAM && start >= map[i].addr &&
            start + size <= map[i].addr + map[i].size)
            return true;
    return false;
}

/* The highest 4 KiB-aligned spot for size bytes in RAM, above floor and
 * ending at or below limit (exclusive); 0 when there is none. */
static uint64_t place_high(const struct vm_e820_entry *map, int n, uint64_t size, uint64_t floor,
                           uint64_t limit)
{
    for (int i = n - 1; i >= 0; i--) {
        if (map[i].type != VM_E820_RAM)
            continue;
        uint64_t lo = map[i].addr > floor ? map[i].addr : floor;
        uint64_t hi = map[i].addr + map[i].size;
        if (hi > limit)
            hi = limit;
        if (hi < size || hi - size < lo)
            continue;
        uint64_t at = (hi - size) & ~(PAGE - 1);
        if (at >= lo)
            return at;
    }
    return 0;
}

static uint64_t descriptor(uint16_t flags)
{
    /* Flat: base 0, limit 0xfffff pages. flags: access byte in bits 0-7,
     * the G/DB/L/AVL nibble in bits 12-15. */
    return 0xffffull | ((uint64_t)(flags & 0xff) << 40) | (0xfull << 48) |
           ((uint64_t)((flags >> 12) & 0xf) << 52);
}

static void write_tables(uint8_t *ram)
{
    uint8_t *gdt = ram + VM_BZIMAGE_GDT;
    memset(gdt, 0, 4 * 8);
    put64(gdt + VM_BZIMAGE_BOOT_CS, descriptor(0xa09b)); /* 64-bit code, accessed */
    put64(gdt + VM_BZIMAGE_BOOT_DS, descriptor(0xc093)); /* 32-bit data, accessed */
    uint8_t *pml4 = ram + VM_BZIMAGE_PML4, *pdpt = ram + VM_BZIMAGE_PDPT;
    memset(pml4, 0, PAGE);
    memset(pdpt, 0, PAGE);
    put64(pml4, VM_BZIMAGE_PDPT | 3);
    for (unsigned g = 0; g < VM_BZIMAGE_PD_COUNT; g++) {
        uint64_t pd = VM_BZIMAGE_PD + g * PAGE;
        put64(pdpt + 8 * g, pd | 3);
        for (unsigned i = 0; i < 512; i++)
            put64(ram + pd + 8 * i, (((uint64_t)g << 30) + ((uint64_t)i << 21)) | 0x83);
    }
}

int vm_bzimage_load(const struct vm_bzimage *bz, uint8_t *ram, uint64_t ram_size,
                    const struct vm_bzimage_params *p, struct vm_bzimage_entry *entry, char *err,
                    size_t errlen)
{
    static const struct vm_bzimage_params none = {0};
    if (!p)
        p = &none;
    if (!bz || !bz->data || !ram || !entry || (p->initrd_size && !p->initrd))
        return vm_fail(err, errlen, -EINVAL, "bzImage load: bad arguments");
    const char *cmdline = p->cmdline ? p->cmdline : "";
    size_t cmdlen = strlen(cmdline);
    uint64_t cmd_max = bz->cmdline_size;
    if (cmd_max > VM_BZIMAGE_CMDLINE_ROOM - 1)
        cmd_max = VM_BZIMAGE_CMDLINE_ROOM - 1;
    if (cmdlen > cmd_max)
        return vm_fail(err, errlen, -E2BIG,
                    "the kernel command line is %zu bytes; this kernel takes at most %llu: shorten "
                    "--cmdline",
                    cmdlen, (unsigned long long)cmd_max);

    struct vm_e820_entry map[VM_E820_MAX];
    int n = vm_bzimage_e820(ram_size, p->reserved, p->nreserved, map, VM_E820_MAX);
    if (n < 0)
        return vm_fail(err, errlen, -EINVAL,
                    "bzImage load: the board's reserved ranges are invalid or too many");

    /* The kernel: where it prefers, else (relocatable) as low as allowed. */
    uint64_t span = bz->init_size;
    uint64_t kaddr = bz->pref_address;
    if (kaddr < VM_BZIMAGE_LOW_END || !in_ram(map, n, kaddr, span)) {
        uint64_t low = (VM_BZIMAGE_LOW_END + bz->kernel_alignment - 1) &
                       ~(uint64_t)(bz->kernel_alignment - 1);
        if (!bz->relocatable || !in_ram(map, n, low, span)) {
            uint64_t need = (bz->relocatable ? low : kaddr) + span;
            return vm_fail(err, errlen, -ENOSPC,
                        "the kernel does not fit in %.0f MiB of RAM: loaded at 0x%llx it needs "
                        "%.1f MiB (init_size) up to %.1f MiB; give it more --memory",
                        mib(ram_size), (unsigned long long)(bz->relocatable ? low : kaddr),
                        mib(span), mib(need));
        }
        kaddr = low;
    }
    uint64_t kend = kaddr + span;
    if (!in_ram(map, n, VM_BZIMAGE_GDT, LOW_AREA_END - VM_BZIMAGE_GDT))
        return vm_fail(err, errlen, -EINVAL,
                    "bzImage load: RAM below 0x%x is missing or reserved by the board",
                    LOW_AREA_END);

    uint64_t iaddr = 0;
    if (p->initrd_size) {
        uint64_t limit = bz->initrd_addr_max + 1; /* initrd_addr_max is inclusive */
        iaddr = place_high(map, n, p->initrd_size, kend, limit);
        if (!iaddr)
            return vm_fail(err, errlen, -EFBIG,
                        "the initrd (%.1f MiB) does not fit in RAM between the kernel's end "
                        "(%.1f MiB) and %.1f MiB (RAM %.0f MiB, initrd_addr_max 0x%llx); give "
                        "it more --memory",
                        mib(p->initrd_size), mib(kend),
                        mib(limit < ram_size ? limit : ram_size), mib(ram_size),
                        (unsigned long long)bz->initrd_addr_max);
    }

    /* Everything checked: write. */
    uint8_t *bp = ram + VM_BZIMAGE_ZERO_PAGE;
    memset(bp, 0, BP_SIZE);
    memcpy(bp + HDR_START, bz->data + HDR_START, bz->header_end - HDR_START);
    bp[HDR_TYPE_OF_LOADER] = 0xff;
    put32(bp + HDR_CODE32_START, (uint32_t)kaddr);
    put32(bp + HDR_CMD_LINE_PTR, VM_BZIMAGE_CMDLINE);
    put32(bp + BP_EXT_CMD_LINE_PTR, 0);
    put32(bp + HDR_RAMDISK_IMAGE, (uint32_t)iaddr);
    put32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(iaddr >> 32));
    put32(bp + HDR_RAMDISK_SIZE, (uint32_t)p->initrd_size);
    put32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)((uint64_t)p->initrd_size >> 32));
    bp[BP_E820_ENTRIES] = (uint8_t)n;
    for (int i = 0; i < n; i++) {
        uint8_t *e = bp + BP_E820_TABLE + 20 * i;
        put64(e, map[i].addr);
        put64(e + 8, map[i].size);
        put32(e + 16, map[i].type);
    }
    memcpy(ram + VM_BZIMAGE_CMDLINE, cmdline, cmdlen + 1);
    memcpy(ram + kaddr, bz->data + bz->kernel_offset, bz->kernel_size);
    if (p->initrd_size)
        memcpy(ram + iaddr, p->initrd, p->initrd_size);
    write_tables(ram);

    *entry = (struct vm_bzimage_entry){
        .rip = kaddr + 0x200,
        .rsp = VM_BZIMAGE_STACK,
        .rsi = VM_BZIMAGE_ZERO_PAGE,
        .cr0 = CR0_PE | CR0_ET | CR0_PG,
        .cr3 = VM_BZIMAGE_PML4,
        .cr4 = CR4_PAE,
        .efer = EFER_LME | EFER_LMA,
        .gdt_base = VM_BZIMAGE_GDT,
        .gdt_limit = 4 * 8 - 1,
        .cs = VM_BZIMAGE_BOOT_CS,
        .ds = VM_BZIMAGE_BOOT_DS,
        .kernel_addr = kaddr,
        .kernel_end = kend,
        .initrd_addr = iaddr,
        .initrd_size = p->initrd_size,
        .cmdline_addr = VM_BZIMAGE_CMDLINE,
        .zero_page = VM_BZIMAGE_ZERO_PAGE,
    };
    return 0;
}
