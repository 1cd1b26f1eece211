/* The Linux boot protocol: synthetic bzImages for every refusal and for
 * the zero page, e820 map and placement; the Debian kernel from the
 * kvm-machine cache when it is there (no KVM needed). */
#include "testmain.h"
#include "vm/bzimage.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB (1024ull * 1024)
#define SETUP_SECTS 4u
#define KERNEL_OFFSET ((SETUP_SECTS + 1) * 512u)
#define KERNEL_LEN 0x10000u
#define HDR_END 0x26cu

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

/* A bzImage as Debian's looks (protocol 2.15, relocatable, 2 MiB aligned,
 * loaded at 16 MiB), with a 64 KiB patterned "kernel" and 32 MiB init_size. */
static uint8_t img[KERNEL_OFFSET + KERNEL_LEN];

static void make_image(void)
{
    memset(img, 0, sizeof(img));
    img[0x1f1] = SETUP_SECTS;
    put32(img + 0x1f4, KERNEL_LEN / 16);
    put16(img + 0x1fa, 0xffff); /* vid_mode */
    put16(img + 0x1fe, 0xaa55);
    img[0x200] = 0xeb;
    img[0x201] = HDR_END - 0x202;
    memcpy(img + 0x202, "HdrS", 4);
    put16(img + 0x206, 0x020f);
    img[0x211] = 0x01; /* LOADED_HIGH */
    put32(img + 0x214, 0x100000);
    put32(img + 0x22c, 0x7fffffff);
    put32(img + 0x230, 0x200000);
    img[0x234] = 1;
    img[0x235] = 21;
    put16(img + 0x236, 0x7f);
    put32(img + 0x238, 0x7ff);
    put64(img + 0x258, 0x1000000);
    put32(img + 0x260, 0x2000000);
    for (size_t i = 0; i < KERNEL_LEN; i++)
        img[KERNEL_OFFSET + i] = (uint8_t)(i * 7 + 3);
}

static uint8_t *ram_new(uint64_t size)
{
    uint8_t *r = calloc(1, size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    return r;
}

static int parse(struct vm_bzimage *bz, char *err, size_t errlen)
{
    return vm_bzimage_parse(bz, img, sizeof(img), err, errlen);
}

static void test_parse_reads_the_header(void)
{
    make_image();
    struct vm_bzimage bz;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(parse(&bz, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(bz.version, 0x020f);
    CU_ASSERT_EQUAL(bz.header_end, HDR_END);
    CU_ASSERT_EQUAL(bz.kernel_offset, KERNEL_OFFSET);
    CU_ASSERT_EQUAL(bz.kernel_size, KERNEL_LEN);
    CU_ASSERT(bz.relocatable);
    CU_ASSERT_EQUAL(bz.kernel_alignment, 0x200000);
    CU_ASSERT_EQUAL(bz.pref_address, 0x1000000);
    CU_ASSERT_EQUAL(bz.init_size, 0x2000000);
    CU_ASSERT_EQUAL(bz.initrd_addr_max, 0x7fffffff);
    CU_ASSERT_EQUAL(bz.cmdline_size, 0x7ff);
    CU_ASSERT(vm_bzimage_detect(img, sizeof(img)));
    /* setup_sects 0 means 4. */
    img[0x1f1] = 0;
    CU_ASSERT_EQUAL(parse(&bz, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(bz.kernel_offset, KERNEL_OFFSET);
}

struct refusal {
    const char *what;
    void (*mutate)(void);
    int code;
};

static void m_no_magic(void) { img[0x203] = 'x'; }
static void m_no_boot_flag(void) { put16(img + 0x1fe, 0); }
static void m_zimage(void) { img[0x211] = 0; }
static void m_truncated(void) { put32(img + 0x1f4, KERNEL_LEN / 16 + 1); }
static void m_setup_past_end(void) { img[0x1f1] = 200; }
static void m_bad_jump(void) { img[0x201] = 0x90; }
static void m_short_header(void) { img[0x201] = 0x40; }
static void m_bad_alignment(void) { put32(img + 0x230, 0x300000); }
static void m_old_protocol(void) { put16(img + 0x206, 0x020b); }
static void m_no_64bit(void) { put16(img + 0x236, 0x7e); }

static void test_parse_refusals(void)
{
    static const struct refusal cases[] = {
        {"no HdrS", m_no_magic, -ENOEXEC},
        {"no 0xaa55", m_no_boot_flag, -ENOEXEC},
        {"zImage", m_zimage, -ENOEXEC},
        {"syssize past the end", m_truncated, -ENOEXEC},
        {"setup past the end", m_setup_past_end, -ENOEXEC},
        {"backward jump", m_bad_jump, -ENOEXEC},
        {"header too short for 2.12", m_short_header, -ENOEXEC},
        {"alignment not a power of two", m_bad_alignment, -ENOEXEC},
        {"protocol 2.11", m_old_protocol, -EPROTONOSUPPORT},
        {"no XLF_KERNEL_64", m_no_64bit, -ENOTSUP},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        make_image();
        cases[i].mutate();
        struct vm_bzimage bz;
        char err[256] = "";
        int r = parse(&bz, err, sizeof(err));
        if (r != cases[i].code)
            fprintf(stderr, "\n  %s: got %d (%s)\n", cases[i].what, r, err);
        CU_ASSERT_EQUAL(r, cases[i].code);
        CU_ASSERT(err[0] != 0);
        CU_ASSERT_PTR_NULL(strchr(err, '\n'));
    }
    /* Too short to hold a header at all; random bytes; NULL. */
    struct vm_bzimage bz;
    CU_ASSERT_EQUAL(vm_bzimage_parse(&bz, img, 0x205, NULL, 0), -ENOEXEC);
    uint8_t noise[4096];
    for (size_t i = 0; i < sizeof(noise); i++)
        noise[i] = (uint8_t)(i * 131 + 17);
    CU_ASSERT_EQUAL(vm_bzimage_parse(&bz, noise, sizeof(noise), NULL, 0), -ENOEXEC);
    CU_ASSERT_EQUAL(vm_bzimage_parse(&bz, NULL, 100, NULL, 0), -ENOEXEC);
    CU_ASSERT_FALSE(vm_bzimage_detect(noise, sizeof(noise)));
}

static void test_load_builds_zero_page_and_tables(void)
{
    make_image();
    struct vm_bzimage bz;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(parse(&bz, err, sizeof(err)), 0);
    const uint64_t ram_size = 128 * MiB;
    uint8_t *ram = ram_new(ram_size);
    static uint8_t initrd[3 * 4096 + 100];
    for (size_t i = 0; i < sizeof(initrd); i++)
        initrd[i] = (uint8_t)(i ^ 0x5a);
    struct vm_bzimage_params p = {
        .cmdline = "console=ttyS0 nokaslr",
        .initrd = initrd,
        .initrd_size = sizeof(initrd),
    };
    struct vm_bzimage_entry e;
    CU_ASSERT_EQUAL_FATAL(vm_bzimage_load(&bz, ram, ram_size, &p, &e, err, sizeof(err)), 0);

    /* Entry state. */
    CU_ASSERT_EQUAL(e.kernel_addr, 0x1000000);
    CU_ASSERT_EQUAL(e.kernel_end, 0x3000000);
    CU_ASSERT_EQUAL(e.rip, 0x1000200);
    CU_ASSERT_EQUAL(e.rsi, VM_BZIMAGE_ZERO_PAGE);
    CU_ASSERT_EQUAL(e.cr3, VM_BZIMAGE_PML4);
    CU_ASSERT(e.cr0 & (1ull << 31));
    CU_ASSERT(e.cr4 & (1ull << 5));
    CU_ASSERT_EQUAL(e.efer & 0x500, 0x500);
    CU_ASSERT_EQUAL(e.cs, 0x10);
    CU_ASSERT_EQUAL(e.ds, 0x18);
    CU_ASSERT_EQUAL(e.gdt_base, VM_BZIMAGE_GDT);
    CU_ASSERT_EQUAL(e.gdt_limit, 31);
    CU_ASSERT(e.rsp > VM_BZIMAGE_ZERO_PAGE + 0x1000 && e.rsp < VM_BZIMAGE_CMDLINE);

    /* The kernel, at its preferred address. */
    CU_ASSERT_EQUAL(memcmp(ram + 0x1000000, img + KERNEL_OFFSET, KERNEL_LEN), 0);
    /* The initrd: as high as RAM allows, page aligned, intact. */
    CU_ASSERT_EQUAL(e.initrd_addr, (ram_size - sizeof(initrd)) & ~0xfffull);
    CU_ASSERT_EQUAL(e.initrd_size, sizeof(initrd));
    CU_ASSERT_EQUAL(memcmp(ram + e.initrd_addr, initrd, sizeof(initrd)), 0);
    CU_ASSERT_STRING_EQUAL((char *)ram + VM_BZIMAGE_CMDLINE, "console=ttyS0 nokaslr");

    /* The zero page: header copied, loader fields set, the rest zero. */
    const uint8_t *bp = ram + VM_BZIMAGE_ZERO_PAGE;
    CU_ASSERT_EQUAL(bp[0x210], 0xff);
    CU_ASSERT_EQUAL(get32(bp + 0x228), VM_BZIMAGE_CMDLINE);
    CU_ASSERT_EQUAL(get32(bp + 0x218), e.initrd_addr);
    CU_ASSERT_EQUAL(get32(bp + 0x21c), sizeof(initrd));
    CU_ASSERT_EQUAL(get32(bp + 0x214), 0x1000000);
    CU_ASSERT_EQUAL(bp[0x1ef], 0); /* sentinel */
    for (size_t off = 0x1f1; off < HDR_END; off++) {
        bool written = off == 0x210 || (off >= 0x214 && off < 0x220) || (off >= 0x228 && off < 0x22c);
        if (!written && bp[off] != img[off]) {
            CU_FAIL("setup header byte not copied");
            break;
        }
    }
    CU_ASSERT_EQUAL(get16(bp + 0x1fa), 0xffff);
    CU_ASSERT_EQUAL(get16(bp + 0x236), 0x7f);
    size_t nonzero_outside = 0;
    for (size_t off = 0; off < 0x1000; off++) {
        bool field = (off >= 0x1f1 && off < HDR_END) || off == 0x1e8 ||
                     (off >= 0x2d0 && off < 0x2d0 + 20 * 128);
        if (!field && bp[off])
            nonzero_outside++;
    }
    CU_ASSERT_EQUAL(nonzero_outside, 0);

    /* e820: low RAM, the reserved hole, RAM above 1 MiB. */
    CU_ASSERT_EQUAL(bp[0x1e8], 3);
    const uint8_t *t = bp + 0x2d0;
    CU_ASSERT_EQUAL(get64(t), 0);
    CU_ASSERT_EQUAL(get64(t + 8), 0x9fc00);
    CU_ASSERT_EQUAL(get32(t + 16), 1);
    CU_ASSERT_EQUAL(get64(t + 20), 0x9fc00);
    CU_ASSERT_EQUAL(get64(t + 28), 0x100000 - 0x9fc00);
    CU_ASSERT_EQUAL(get32(t + 36), 2);
    CU_ASSERT_EQUAL(get64(t + 40), 0x100000);
    CU_ASSERT_EQUAL(get64(t + 48), ram_size - 0x100000);
    CU_ASSERT_EQUAL(get32(t + 56), 1);

    /* GDT: __BOOT_CS is 64-bit code, __BOOT_DS flat data. */
    const uint8_t *gdt = ram + VM_BZIMAGE_GDT;
    CU_ASSERT_EQUAL(get64(gdt), 0);
    CU_ASSERT_EQUAL(get64(gdt + 0x10), 0x00af9b000000ffffull);
    CU_ASSERT_EQUAL(get64(gdt + 0x18), 0x00cf93000000ffffull);
    /* Page tables: identity, 2 MiB pages, covering the kernel and initrd. */
    CU_ASSERT_EQUAL(get64(ram + VM_BZIMAGE_PML4), VM_BZIMAGE_PDPT | 3);
    for (int g = 0; g < 4; g++)
        CU_ASSERT_EQUAL(get64(ram + VM_BZIMAGE_PDPT + 8 * g), (VM_BZIMAGE_PD + 0x1000ull * g) | 3);
    uint64_t pde = get64(ram + VM_BZIMAGE_PD + 8 * (0x1000000 >> 21));
    CU_ASSERT_EQUAL(pde, 0x1000000 | 0x83);
    pde = get64(ram + VM_BZIMAGE_PD + 0x3000 + 8 * 511);
    CU_ASSERT_EQUAL(pde, 0xffe00000ull | 0x83);
    free(ram);
}

static void test_reserved_ranges_shape_e820_and_placement(void)
{
    make_image();
    struct vm_bzimage bz;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(parse(&bz, err, sizeof(err)), 0);
    const uint64_t ram_size = 256 * MiB;
    uint8_t *ram = ram_new(ram_size);
    /* A board reserving the top 1 MiB of RAM and the LAPIC page. */
    struct vm_bzimage_range res[] = {
        {ram_size - MiB, MiB},
        {0xfee00000, 0x1000},
    };
    static uint8_t initrd[8192];
    struct vm_bzimage_params p = {.initrd = initrd, .initrd_size = sizeof(initrd),
                                  .reserved = res, .nreserved = 2};
    struct vm_bzimage_entry e;
    CU_ASSERT_EQUAL_FATAL(vm_bzimage_load(&bz, ram, ram_size, &p, &e, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(e.initrd_addr, ram_size - MiB - sizeof(initrd));
    const uint8_t *bp = ram + VM_BZIMAGE_ZERO_PAGE;
    CU_ASSERT_EQUAL(bp[0x1e8], 5);
    const uint8_t *t = bp + 0x2d0 + 2 * 20;
    CU_ASSERT_EQUAL(get64(t), 0x100000);
    CU_ASSERT_EQUAL(get64(t + 8), ram_size - MiB - 0x100000);
    CU_ASSERT_EQUAL(get32(t + 16), 1);
    CU_ASSERT_EQUAL(get64(t + 20), ram_size - MiB);
    CU_ASSERT_EQUAL(get32(t + 36), 2);
    CU_ASSERT_EQUAL(get64(t + 40), 0xfee00000);
    CU_ASSERT_EQUAL(get32(t + 56), 2);
    CU_ASSERT_STRING_EQUAL((char *)ram + VM_BZIMAGE_CMDLINE, ""); /* NULL cmdline: empty */
    free(ram);

    /* The e820 builder alone: overlaps merge, bad ranges refused. */
    struct vm_e820_entry map[VM_E820_MAX];
    struct vm_bzimage_range over[] = {{0x200000, 0x100000}, {0x280000, 0x100000}};
    int n = vm_bzimage_e820(16 * MiB, over, 2, map, VM_E820_MAX);
    CU_ASSERT_EQUAL(n, 5);
    CU_ASSERT_EQUAL(map[3].addr, 0x200000);
    CU_ASSERT_EQUAL(map[3].size, 0x180000);
    CU_ASSERT_EQUAL(map[3].type, 2);
    CU_ASSERT_EQUAL(map[4].addr, 0x380000);
    CU_ASSERT_EQUAL(map[4].type, 1);
    struct vm_bzimage_range zero = {0x200000, 0}, wrap = {UINT64_MAX - 10, 100};
    CU_ASSERT_EQUAL(vm_bzimage_e820(16 * MiB, &zero, 1, map, VM_E820_MAX), -EINVAL);
    CU_ASSERT_EQUAL(vm_bzimage_e820(16 * MiB, &wrap, 1, map, VM_E820_MAX), -EINVAL);
    CU_ASSERT_EQUAL(vm_bzimage_e820(16 * MiB, over, VM_BZIMAGE_MAX_RESERVED + 1, map, VM_E820_MAX),
                    -EINVAL);
    CU_ASSERT_EQUAL(vm_bzimage_e820(16 * MiB, over, 2, map, 3), -E2BIG);
}

/* Loads that must be refused, each with its own code and one line, and
 * without touching RAM. */
static void expect_refused(uint64_t ram_size, const struct vm_bzimage_params *p, int code)
{
    struct vm_bzimage bz;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(parse(&bz, err, sizeof(err)), 0);
    uint8_t *ram = ram_new(ram_size);
    memset(ram, 0xcc, ram_size);
    struct vm_bzimage_entry e;
    int r = vm_bzimage_load(&bz, ram, ram_size, p, &e, err, sizeof(err));
    CU_ASSERT_EQUAL(r, code);
    CU_ASSERT(err[0] != 0);
    CU_ASSERT_PTR_NULL(strchr(err, '\n'));
    size_t touched = 0;
    for (uint64_t i = 0; i < ram_size; i += 61)
        touched += ram[i] != 0xcc;
    CU_ASSERT_EQUAL(touched, 0);
    free(ram);
}

static void test_load_refusals(void)
{
    static uint8_t initrd[20 * 1024 * 1024];
    struct vm_bzimage_params none = {0};
    /* 32 MiB: not at 16 MiB (needs 48), nor at 2 MiB (needs 34). */
    make_image();
    expect_refused(32 * MiB, &none, -ENOSPC);
    /* Not relocatable: 40 MiB would do at 2 MiB, but it must go to 16. */
    make_image();
    img[0x234] = 0;
    expect_refused(40 * MiB, &none, -ENOSPC);
    /* The initrd: 20 MiB above a kernel ending at 48 MiB in 64 MiB. */
    make_image();
    struct vm_bzimage_params big = {.initrd = initrd, .initrd_size = sizeof(initrd)};
    expect_refused(64 * MiB, &big, -EFBIG);
    /* ...or a kernel whose initrd_addr_max is below its own end. */
    make_image();
    put32(img + 0x22c, 0x2ffffff);
    struct vm_bzimage_params small = {.initrd = initrd, .initrd_size = 4096};
    expect_refused(128 * MiB, &small, -EFBIG);
    /* The command line: cmdline_size is the longest without the NUL. */
    make_image();
    put32(img + 0x238, 16);
    struct vm_bzimage_params longer = {.cmdline = "0123456789abcdefg"};
    expect_refused(128 * MiB, &longer, -E2BIG);
    /* Board mistakes: a reserved range over the boot structures. */
    make_image();
    struct vm_bzimage_range low = {0x7000, 0x1000};
    struct vm_bzimage_params bad = {.reserved = &low, .nreserved = 1};
    expect_refused(128 * MiB, &bad, -EINVAL);
}

static void test_load_edges_that_fit(void)
{
    char err[256] = "";
    struct vm_bzimage bz;
    struct vm_bzimage_entry e;
    /* Exactly cmdline_size bytes is fine. */
    make_image();
    put32(img + 0x238, 16);
    CU_ASSERT_EQUAL_FATAL(parse(&bz, err, sizeof(err)), 0);
    uint8_t *ram = ram_new(64 * MiB);
    struct vm_bzimage_params p = {.cmdline = "0123456789abcdef"};
    CU_ASSERT_EQUAL(vm_bzimage_load(&bz, ram, 64 * MiB, &p, &e, err, sizeof(err)), 0);
    free(ram);
    /* A relocatable kernel too big for 16 MiB goes to 2 MiB. */
    make_image();
    CU_ASSERT_EQUAL_FATAL(parse(&bz, err, sizeof(err)), 0);
    ram = ram_new(40 * MiB);
    CU_ASSERT_EQUAL(vm_bzimage_load(&bz, ram, 40 * MiB, NULL, &e, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(e.kernel_addr, 0x200000);
    CU_ASSERT_EQUAL(e.rip, 0x200200);
    CU_ASSERT_EQUAL(memcmp(ram + 0x200000, img + KERNEL_OFFSET, KERNEL_LEN), 0);
    free(ram);
    /* initrd_addr_max is the last byte the initrd may use. */
    make_image();
    put32(img + 0x22c, 0x37ffffff);
    CU_ASSERT_EQUAL_FATAL(parse(&bz, err, sizeof(err)), 0);
    ram = ram_new(1024 * MiB);
    static uint8_t initrd[4096];
    struct vm_bzimage_params q = {.initrd = initrd, .initrd_size = sizeof(initrd)};
    CU_ASSERT_EQUAL(vm_bzimage_load(&bz, ram, 1024 * MiB, &q, &e, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(e.initrd_addr, 0x38000000 - 4096);
    free(ram);
}

/* The real thing, when the kvm-machine cache holds it. */
static void test_debian_kernel(void)
{
    const char *cache = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    char pattern[512];
    if (cache && *cache)
        snprintf(pattern, sizeof(pattern), "%s/kvmstub-machine/root/boot/vmlinuz-*", cache);
    else
        snprintf(pattern, sizeof(pattern), "%s/.cache/kvmstub-machine/root/boot/vmlinuz-*",
                 home ? home : "");
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0 || g.gl_pathc == 0) {
        fprintf(stderr, "\n  SKIP: no Debian kernel at %s (run .ci/kvm-machine once to fetch "
                        "it)\n", pattern);
        globfree(&g);
        return;
    }
    FILE *f = fopen(g.gl_pathv[0], "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    CU_ASSERT_FATAL(size > 0 && size < 256 * 1024 * 1024);
    uint8_t *data = malloc((size_t)size);
    CU_ASSERT_FATAL(data && fread(data, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
    fprintf(stderr, "\n  %s: ", g.gl_pathv[0]);
    globfree(&g);

    struct vm_bzimage bz;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(vm_bzimage_parse(&bz, data, (size_t)size, err, sizeof(err)), 0);
    fprintf(stderr, "protocol %x.%02x, pref 0x%llx, init_size %.1f MiB ", bz.version >> 8,
            bz.version & 0xff, (unsigned long long)bz.pref_address,
            (double)bz.init_size / MiB);
    CU_ASSERT(bz.version >= 0x020c);
    CU_ASSERT(bz.xloadflags & 1);
    CU_ASSERT(bz.relocatable);
    CU_ASSERT_EQUAL(bz.pref_address, 0x1000000);
    CU_ASSERT(bz.init_size > bz.kernel_size);
    /* 64 MiB is too little for this kernel; 128 MiB with a 16 MiB initrd fits. */
    uint8_t *ram = ram_new(128 * MiB);
    struct vm_bzimage_entry e;
    CU_ASSERT_EQUAL(vm_bzimage_load(&bz, ram, 64 * MiB, NULL, &e, err, sizeof(err)), -ENOSPC);
    fprintf(stderr, "[64 MiB: %s] ", err);
    uint8_t *initrd = calloc(1, 16 * MiB);
    CU_ASSERT_PTR_NOT_NULL_FATAL(initrd);
    struct vm_bzimage_params p = {.cmdline = "console=ttyS0 nokaslr reboot=k panic=-1",
                                  .initrd = initrd, .initrd_size = 16 * MiB};
    CU_ASSERT_EQUAL(vm_bzimage_load(&bz, ram, 128 * MiB, &p, &e, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(e.kernel_addr, 0x1000000);
    CU_ASSERT_EQUAL(e.rip, 0x1000200);
    CU_ASSERT(e.initrd_addr >= e.kernel_end);
    CU_ASSERT(e.initrd_addr + e.initrd_size <= bz.initrd_addr_max + 1);
    CU_ASSERT_EQUAL(memcmp(ram + e.kernel_addr, data + bz.kernel_offset, bz.kernel_size), 0);
    CU_ASSERT_EQUAL(memcmp(ram + VM_BZIMAGE_ZERO_PAGE + 0x202, "HdrS", 4), 0);
    free(initrd);
    free(ram);
    free(data);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("vm_bzimage", NULL, NULL);
    CU_add_test(s, "parse reads a 2.15 header", test_parse_reads_the_header);
    CU_add_test(s, "parse refuses non-bzImages, old protocols, 32-bit kernels", test_parse_refusals);
    CU_add_test(s, "load: zero page, e820, kernel, initrd, cmdline, GDT, page tables",
                test_load_builds_zero_page_and_tables);
    CU_add_test(s, "load: board reserved ranges in e820 and initrd placement",
                test_reserved_ranges_shape_e820_and_placement);
    CU_add_test(s, "load refuses kernel, initrd, cmdline that do not fit; RAM untouched",
                test_load_refusals);
    CU_add_test(s, "load: limits that still fit", test_load_edges_that_fit);
    CU_add_test(s, "the Debian kernel from the kvm-machine cache", test_debian_kernel);
}

int main(void)
{
    return test_main("test_vm_bzimage", register_suites, false);
}
