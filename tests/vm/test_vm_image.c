/* Images: each format runs, each malformed image is refused with a message
 * saying why, and a refused image leaves the VM untouched. */
#include "testmain.h"
#include "vmtest.h"

#include <CUnit/CUnit.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct vm_image open_fixture(const char *path)
{
    struct vm_image img;
    char err[256];
    int r = vm_image_open(&img, path, err, sizeof(err));
    if (r)
        fprintf(stderr, "%s\n", err);
    CU_ASSERT_EQUAL_FATAL(r, 0);
    return img;
}

static uint64_t symbol(const struct vm_image *img, const char *name)
{
    /* Finds a symbol in an ELF fixture's .symtab, so tests read variables
     * the guest wrote without hard-coding addresses. */
    const uint8_t *d = img->data;
    bool is64 = d[EI_CLASS] == ELFCLASS64;
    uint64_t shoff = is64 ? ((const Elf64_Ehdr *)d)->e_shoff : ((const Elf32_Ehdr *)d)->e_shoff;
    unsigned shnum = is64 ? ((const Elf64_Ehdr *)d)->e_shnum : ((const Elf32_Ehdr *)d)->e_shnum;
    for (unsigned i = 0; i < shnum; i++) {
        uint32_t type, link;
        uint64_t off, size, entsize, stroff;
        if (is64) {
            const Elf64_Shdr *s = (const Elf64_Shdr *)(d + shoff) + i;
            type = s->sh_type, link = s->sh_link, off = s->sh_offset, size = s->sh_size;
            entsize = s->sh_entsize;
            stroff = ((const Elf64_Shdr *)(d + shoff) + link)->sh_offset;
        } else {
            const Elf32_Shdr *s = (const Elf32_Shdr *)(d + shoff) + i;
            type = s->sh_type, link = s->sh_link, off = s->sh_offset, size = s->sh_size;
            entsize = s->sh_entsize;
            stroff = ((const Elf32_Shdr *)(d + shoff) + link)->sh_offset;
        }
        if (type != SHT_SYMTAB)
            continue;
        for (uint64_t k = 0; k < size / entsize; k++) {
            uint32_t nm;
            uint64_t value;
            if (is64) {
                const Elf64_Sym *sym = (const Elf64_Sym *)(d + off) + k;
                nm = sym->st_name, value = sym->st_value;
            } else {
                const Elf32_Sym *sym = (const Elf32_Sym *)(d + off) + k;
                nm = sym->st_name, value = sym->st_value;
            }
            if (strcmp((const char *)d + stroff + nm, name) == 0)
                return value;
        }
    }
    CU_FAIL("symbol not found");
    return 0;
}

static void test_elf64_long_mode(void)
{
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    struct vm_image img = open_fixture(FIXTURE_LONG64);
    struct vm_image_options opt = {0};
    char err[256];
    CU_ASSERT_EQUAL_FATAL(vm_image_load(vm, &img, &opt, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(img.format, VM_IMAGE_ELF);
    CU_ASSERT_EQUAL(img.mode, VM_MODE_LONG);
    CU_ASSERT_EQUAL(img.entry, 0x100000);
    struct vm_event ev;
    char out[64] = "";
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, out, sizeof(out)), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
    CU_ASSERT_STRING_EQUAL(out, "long mode\n");
    uint64_t v = 0;
    CU_ASSERT_EQUAL(vm_read_linear(&vm->cpus[0], symbol(&img, "result"), &v, 8, NULL), 0);
    CU_ASSERT_EQUAL(v, 0x1122334455667788ull);
    vm_image_free(&img);
    vm_destroy(vm);
}

static void test_elf32_protected_mode(void)
{
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    struct vm_image img = open_fixture(FIXTURE_PROT32);
    struct vm_image_options opt = {0};
    char err[256];
    CU_ASSERT_EQUAL_FATAL(vm_image_load(vm, &img, &opt, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(img.mode, VM_MODE_PROTECTED);
    struct vm_event ev;
    char out[64] = "";
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, out, sizeof(out)), 0);
    CU_ASSERT_STRING_EQUAL(out, "protected mode\n");
    uint32_t cr0 = 0;
    CU_ASSERT_EQUAL(vm_read_linear(&vm->cpus[0], symbol(&img, "cr0_seen"), &cr0, 4, NULL), 0);
    CU_ASSERT_EQUAL(cr0 & 0x80000001u, 1); /* PE, no PG */
    vm_image_free(&img);
    vm_destroy(vm);
}

static void test_multiboot_elf(void)
{
    struct vm *vm = vt_create(32ull << 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    struct vm_image img = open_fixture(FIXTURE_MBELF);
    struct vm_image_options opt = {.cmdline = "console=ttyS0 hello"};
    char err[256];
    CU_ASSERT_EQUAL_FATAL(vm_image_load(vm, &img, &opt, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(img.format, VM_IMAGE_MULTIBOOT);
    CU_ASSERT_EQUAL(img.mode, VM_MODE_PROTECTED);
    struct vm_event ev;
    char out[512] = "";
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, out, sizeof(out)), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
    char want[512];
    snprintf(want, sizeof(want), "%s console=ttyS0 hello\n", FIXTURE_MBELF);
    CU_ASSERT_STRING_EQUAL(out, want);
    struct vm_cpu *cpu = &vm->cpus[0];
    uint32_t magic = 0, info = 0;
    CU_ASSERT_EQUAL(vm_read_linear(cpu, symbol(&img, "mb_magic"), &magic, 4, NULL), 0);
    CU_ASSERT_EQUAL(vm_read_linear(cpu, symbol(&img, "mb_info"), &info, 4, NULL), 0);
    CU_ASSERT_EQUAL(magic, VM_MULTIBOOT_BOOT_MAGIC);
    /* The information structure: memory sizes in KiB and a memory map. */
    uint32_t mbi[13];
    CU_ASSERT_EQUAL(vm_read_linear(cpu, info, mbi, sizeof(mbi), NULL), 0);
    CU_ASSERT(mbi[0] & 1);                         /* mem_lower/mem_upper valid */
    CU_ASSERT(mbi[0] & (1u << 6));                 /* memory map valid */
    CU_ASSERT_EQUAL(mbi[1], 639);
    CU_ASSERT_EQUAL(mbi[2], (32u << 10) - 1024 - 64); /* up to the boot area */
    uint8_t mmap[24 * 5];
    CU_ASSERT_EQUAL(mbi[11], sizeof(mmap));
    CU_ASSERT_EQUAL(vm_read_linear(cpu, mbi[12], mmap, sizeof(mmap), NULL), 0);
    uint64_t base, len;
    uint32_t type;
    memcpy(&base, mmap + 3 * 24 + 4, 8);
    memcpy(&len, mmap + 3 * 24 + 12, 8);
    memcpy(&type, mmap + 3 * 24 + 20, 4);
    CU_ASSERT_EQUAL(base, 0x100000);
    CU_ASSERT_EQUAL(base + len, vm_boot_area(vm));
    CU_ASSERT_EQUAL(type, 1);
    vm_image_free(&img);
    vm_destroy(vm);
}

static void test_multiboot_aout_kludge(void)
{
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    struct vm_image img = open_fixture(FIXTURE_MBAOUT);
    struct vm_cpu *cpu = &vm->cpus[0];
    /* Garbage where the requested bss goes: the loader must clear it. */
    uint8_t junk[64];
    memset(junk, 0xee, sizeof(junk));
    CU_ASSERT_EQUAL(vm_write_linear(cpu, 0x100000 + img.size + 16, junk, sizeof(junk), NULL), 0);
    struct vm_image_options opt = {0};
    char err[256];
    CU_ASSERT_EQUAL_FATAL(vm_image_load(vm, &img, &opt, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(img.format, VM_IMAGE_MULTIBOOT);
    uint8_t back[64];
    CU_ASSERT_EQUAL(vm_read_linear(cpu, 0x100000 + img.size + 16, back, sizeof(back), NULL), 0);
    static const uint8_t zero[64];
    CU_ASSERT_EQUAL(memcmp(back, zero, sizeof(zero)), 0);
    struct vm_event ev;
    char out[64] = "";
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, out, sizeof(out)), 0);
    CU_ASSERT_STRING_EQUAL(out, "a.out kludge\n");
    uint32_t magic = 0;
    CU_ASSERT_EQUAL(vm_read_linear(cpu, 0x500, &magic, 4, NULL), 0);
    CU_ASSERT_EQUAL(magic, VM_MULTIBOOT_BOOT_MAGIC);
    vm_image_free(&img);
    vm_destroy(vm);
}

static void test_flat_defaults_and_entry(void)
{
    static const uint8_t code[] = {0x90, 0xf4, 0xf4}; /* nop; hlt; hlt */
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    struct vm_image img;
    CU_ASSERT_EQUAL(vm_image_from_buffer(&img, code, sizeof(code), "flat"), 0);
    struct vm_image_options opt = {0};
    char err[256];
    CU_ASSERT_EQUAL_FATAL(vm_image_load(vm, &img, &opt, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(img.format, VM_IMAGE_BIN);
    CU_ASSERT_EQUAL(img.mode, VM_MODE_REAL);
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RIP), VM_DEFAULT_LOAD);
    opt.has_entry = true;
    opt.entry = VM_DEFAULT_LOAD + 2;
    CU_ASSERT_EQUAL_FATAL(vm_image_load(vm, &img, &opt, err, sizeof(err)), 0);
    struct vm_event ev;
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RIP), VM_DEFAULT_LOAD + 3);
    vm_image_free(&img);
    vm_destroy(vm);
}

/* Loads a mutated copy of a fixture and expects a refusal mentioning want;
 * the VM's memory must not change. */
static void expect_refusal(const uint8_t *data, size_t size, const struct vm_image_options *opt,
                           const char *want)
{
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    struct vm_image img;
    CU_ASSERT_EQUAL_FATAL(vm_image_from_buffer(&img, data, size, "bad-image"), 0);
    uint64_t rip_before = vt_reg(vm, VM_REG_RIP);
    char err[512] = "";
    int r = vm_image_load(vm, &img, opt, err, sizeof(err));
    CU_ASSERT(r < 0);
    if (!strstr(err, want)) {
        fprintf(stderr, "expected \"%s\" in \"%s\"\n", want, err);
        CU_FAIL("refusal message");
    }
    /* Nothing was placed and nothing set up to run. */
    uint8_t probe[16];
    static const uint8_t zero[16];
    CU_ASSERT_EQUAL(vm_mem_read(&vm->mem, 0x100000, probe, sizeof(probe)), 0);
    CU_ASSERT_EQUAL(memcmp(probe, zero, sizeof(zero)), 0);
    CU_ASSERT_EQUAL(vm_mem_read(&vm->mem, 0x1000, probe, sizeof(probe)), 0);
    CU_ASSERT_EQUAL(memcmp(probe, zero, sizeof(zero)), 0);
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RIP), rip_before);
    vm_image_free(&img);
    vm_destroy(vm);
}

static void test_malformed_elf_refused(void)
{
    struct vm_image base = open_fixture(FIXTURE_LONG64);
    const struct vm_image_options opt = {0};
    uint8_t *m = malloc(base.size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    Elf64_Ehdr *eh = (Elf64_Ehdr *)m;
    Elf64_Phdr *ph;
#define RESET() (memcpy(m, base.data, base.size), ph = (Elf64_Phdr *)(m + eh->e_phoff))
    RESET();
    expect_refusal(m, 40, &opt, "truncated");
    RESET();
    eh->e_phoff = base.size - 8;
    expect_refusal(m, base.size, &opt, "truncated");
    RESET();
    ph[0].p_offset = base.size - 4;
    expect_refusal(m, base.size, &opt, "truncated");
    RESET();
    m[EI_CLASS] = 7;
    expect_refusal(m, base.size, &opt, "ELF class");
    RESET();
    eh->e_machine = EM_AARCH64;
    expect_refusal(m, base.size, &opt, "not x86");
    RESET();
    eh->e_type = ET_DYN;
    expect_refusal(m, base.size, &opt, "position-independent");
    RESET();
    eh->e_type = ET_REL;
    expect_refusal(m, base.size, &opt, "not an ELF executable");
    RESET();
    m[EI_DATA] = ELFDATA2MSB;
    expect_refusal(m, base.size, &opt, "big-endian");
    RESET();
    eh->e_phentsize = 12;
    expect_refusal(m, base.size, &opt, "program header size");
    RESET();
    for (unsigned i = 0; i < eh->e_phnum; i++)
        ph[i].p_type = PT_NOTE;
    expect_refusal(m, base.size, &opt, "no loadable");
    RESET();
    ph[0].p_filesz = ph[0].p_memsz + 1;
    expect_refusal(m, base.size, &opt, "more file bytes");
    RESET();
    ph[0].p_paddr = 0xf0000000; /* beyond 64 MiB of RAM */
    expect_refusal(m, base.size, &opt, "does not fit in guest RAM");
    RESET();
    ph[0].p_paddr = 0xffffffffffffff00ull; /* + p_memsz passes 2^64 */
    expect_refusal(m, base.size, &opt, "wraps");
    RESET();
    ph[0].p_paddr = VM_DEFAULT_RAM - 0x800; /* into the boot area */
    expect_refusal(m, base.size, &opt, "boot area");
    RESET();
    expect_refusal(m, base.size,
                   &(struct vm_image_options){.has_mode = true, .mode = VM_MODE_REAL},
                   "flat binaries only");
#undef RESET
    free(m);
    vm_image_free(&base);
}

static void test_malformed_multiboot_refused(void)
{
    struct vm_image base = open_fixture(FIXTURE_MBAOUT);
    const struct vm_image_options opt = {0};
    uint8_t *m = malloc(base.size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    memcpy(m, base.data, base.size);
    uint32_t *h = (uint32_t *)(m + 4); /* the header follows a 2-byte jmp, aligned */
    CU_ASSERT_EQUAL_FATAL(h[0], VM_MULTIBOOT_MAGIC);
    /* A required feature kvmstub does not offer (bit 3: unknown). */
    h[1] |= 1u << 3;
    h[2] -= 1u << 3;
    expect_refusal(m, base.size, &opt, "requires multiboot features");
    memcpy(m, base.data, base.size);
    h[3] = h[4] - 4; /* header_addr below load_addr */
    expect_refusal(m, base.size, &opt, "header_addr");
    memcpy(m, base.data, base.size);
    h[6] = h[4] + 4; /* bss_end inside the loaded data */
    expect_refusal(m, base.size, &opt, "bss_end_addr");
    memcpy(m, base.data, base.size);
    static char longline[5000];
    memset(longline, 'x', sizeof(longline) - 1);
    expect_refusal(m, base.size,
                   &(struct vm_image_options){.format = VM_IMAGE_MULTIBOOT, .cmdline = longline},
                   "command line is too long");
    /* A header whose checksum is wrong is no header: as a flat binary at
     * 1 MiB it would not reach real mode, so asking for multiboot fails. */
    memcpy(m, base.data, base.size);
    h[2] += 1;
    expect_refusal(m, base.size, &(struct vm_image_options){.format = VM_IMAGE_MULTIBOOT},
                   "no multiboot header");
    free(m);
    vm_image_free(&base);
}

static void test_flat_refusals(void)
{
    static const uint8_t code[] = {0xf4};
    expect_refusal(code, 1,
                   &(struct vm_image_options){.format = VM_IMAGE_BIN, .has_load = true,
                                              .load = VM_DEFAULT_RAM - 0x800,
                                              .has_mode = true, .mode = VM_MODE_LONG},
                   "boot area");
    expect_refusal(code, 1,
                   &(struct vm_image_options){.format = VM_IMAGE_BIN, .has_load = true,
                                              .load = 0x200000},
                   "real mode");
    expect_refusal(code, 1,
                   &(struct vm_image_options){.format = VM_IMAGE_BIN, .has_load = true,
                                              .load = 0x7fffffffffff},
                   "does not fit");
    /* Oversized: bigger than the guest's RAM. */
    size_t big = VM_DEFAULT_RAM + 4096;
    uint8_t *b = calloc(1, big);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    expect_refusal(b, big, &(struct vm_image_options){.format = VM_IMAGE_BIN}, "does not fit");
    free(b);
}

static void test_open_refusals(void)
{
    struct vm_image img;
    char err[256];
    CU_ASSERT_EQUAL(vm_image_open(&img, "/nonexistent/kernel.elf", err, sizeof(err)), -ENOENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/kernel.elf"));
    CU_ASSERT(vm_image_open(&img, "/dev/null", err, sizeof(err)) < 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a regular file"));
    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fileno(f));
    CU_ASSERT(vm_image_open(&img, path, err, sizeof(err)) < 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "empty"));
    fclose(f);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("vm_image", NULL, NULL);
    CU_add_test(s, "ELF64 runs in long mode", test_elf64_long_mode);
    CU_add_test(s, "ELF32 runs in protected mode", test_elf32_protected_mode);
    CU_add_test(s, "multiboot ELF kernel", test_multiboot_elf);
    CU_add_test(s, "multiboot a.out kludge", test_multiboot_aout_kludge);
    CU_add_test(s, "flat binary defaults and entry", test_flat_defaults_and_entry);
    CU_add_test(s, "malformed ELF refused", test_malformed_elf_refused);
    CU_add_test(s, "malformed multiboot refused", test_malformed_multiboot_refused);
    CU_add_test(s, "flat binary refusals", test_flat_refusals);
    CU_add_test(s, "unreadable images refused", test_open_refusals);
}

int main(void)
{
    return test_main("test_vm_image", register_suites, true);
}
