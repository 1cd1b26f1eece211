/* Snapshot files without KVM: a machine snapshot built by hand is written,
 * read back field by field, and every kind of damage (truncation at any
 * point, a flipped byte in any section, another version, host CPU or RAM
 * size) is refused with a message and leaves the page store as it was. */
#include "kvmstub_version.h"
#include "testmain.h"
#include "vm/checksum.h"
#include "vm/snapfile.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE 4096u
#define NPAGES 9000u /* 35 MiB: three RAM sections */

static const struct vm_snapfile_host HOST = {
    .vendor = "GenuineTest", .family = 6, .model = 0x55, .stepping = 4, .cpuid_digest = 0x1234};

static char dir[64];
static char path[128];

static void fill(void *p, size_t n, unsigned seed)
{
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 8));
}

static void make_cpu(struct vm_snap_cpu *c, unsigned seed)
{
    memset(c, 0, sizeof(*c));
    c->parts = VM_SNAP_CPU_SREGS2 | VM_SNAP_CPU_XSAVE | VM_SNAP_CPU_XCRS | VM_SNAP_CPU_DEBUGREGS |
               VM_SNAP_CPU_EVENTS;
    fill(&c->mp, sizeof(c->mp), seed);
    fill(&c->regs, sizeof(c->regs), seed + 1);
    fill(&c->sregs2, sizeof(c->sregs2), seed + 2);
    c->xsave_size = 4096;
    c->xsave = malloc(4096);
    fill(c->xsave, 4096, seed + 3);
    c->xcrs.nr_xcrs = 1;
    c->xcrs.xcrs[0].value = 7;
    fill(&c->debugregs, sizeof(c->debugregs), seed + 4);
    fill(&c->events, sizeof(c->events), seed + 5);
    c->nmsrs = 3;
    c->msrs = calloc(3, sizeof(*c->msrs));
    for (unsigned i = 0; i < 3; i++)
        c->msrs[i] = (struct kvm_msr_entry){.index = 0xc0000080 + i, .data = seed * 1000ull + i};
}

static struct vm_snapshot *make_snapshot(struct vm_pagestore *ps, uint8_t *ram)
{
    for (unsigned p = 0; p < NPAGES; p += 1 + p % 3)
        fill(ram + (size_t)p * PAGE, PAGE, p);
    vm_pagestore_mark(ps, 0, NPAGES);
    struct vm_snapshot *s = calloc(1, sizeof(*s));
    s->ps = ps;
    CU_ASSERT_EQUAL_FATAL(vm_pagestore_save(ps, ram, NULL, NULL, &s->ram, NULL), 0);
    s->ncpus = 2;
    s->cpus = calloc(2, sizeof(*s->cpus));
    make_cpu(&s->cpus[0], 1);
    make_cpu(&s->cpus[1], 2);
    s->nblobs = 2;
    s->blobs = calloc(2, sizeof(*s->blobs));
    strcpy(s->blobs[0].name, "uart");
    s->blobs[0].len = 300;
    s->blobs[0].data = malloc(300);
    fill(s->blobs[0].data, 300, 9);
    strcpy(s->blobs[1].name, "empty");
    s->blobs[1].data = malloc(1);
    return s;
}

static bool same_cpu(const struct vm_snap_cpu *a, const struct vm_snap_cpu *b)
{
    uint8_t *ea, *eb;
    size_t na, nb;
    if (vm_snap_cpu_encode(a, &ea, &na) || vm_snap_cpu_encode(b, &eb, &nb))
        return false;
    bool same = na == nb && memcmp(ea, eb, na) == 0;
    free(ea);
    free(eb);
    return same;
}

struct fixture {
    struct vm_pagestore *ps;
    uint8_t *ram;
    struct vm_snapshot *s;
    uint8_t *file;
    size_t size;
};

static void setup(struct fixture *f)
{
    CU_ASSERT_EQUAL_FATAL(vm_pagestore_create((uint64_t)NPAGES * PAGE, &f->ps), 0);
    f->ram = calloc(NPAGES, PAGE);
    f->s = make_snapshot(f->ps, f->ram);
    char err[512] = "";
    static const uint8_t hash[4] = {1, 2, 3, 4};
    int r = vm_snapfile_write(path, f->s, &HOST, "/images/guest.elf", hash, 4, err, sizeof(err));
    if (r)
        fprintf(stderr, "write: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(r, 0);
    FILE *fp = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    fseek(fp, 0, SEEK_END);
    f->size = (size_t)ftell(fp);
    rewind(fp);
    f->file = malloc(f->size);
    CU_ASSERT_EQUAL_FATAL(fread(f->file, 1, f->size, fp), f->size);
    fclose(fp);
}

static void teardown(struct fixture *f)
{
    vm_snapshot_free(f->s);
    vm_pagestore_destroy(f->ps);
    free(f->ram);
    free(f->file);
}

/* Reads buf as a file; on refusal checks that the store did not change. */
static int read_buf(struct fixture *f, const uint8_t *buf, size_t n,
                    const struct vm_snapfile_host *host, struct vm_pagestore *ps, char *err,
                    size_t errlen)
{
    FILE *fp = fopen(path, "wb");
    if (n)
        fwrite(buf, 1, n, fp);
    fclose(fp);
    struct vm_pagestore_usage before = *vm_pagestore_usage(ps);
    struct vm_snapshot *s = NULL;
    err[0] = 0;
    int r = vm_snapfile_read(path, host, ps, NULL, &s, err, errlen);
    if (r) {
        CU_ASSERT_PTR_NULL(s);
        CU_ASSERT(err[0] != 0);
        CU_ASSERT_EQUAL(vm_pagestore_usage(ps)->bytes, before.bytes);
        CU_ASSERT_EQUAL(vm_pagestore_usage(ps)->snaps, before.snaps);
    } else {
        vm_snapshot_free(s);
    }
    (void)f;
    return r;
}

static void test_round_trip(void)
{
    struct fixture f;
    setup(&f);
    struct vm_snapshot *t = NULL;
    struct vm_snapfile_info info;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(vm_snapfile_read(path, &HOST, f.ps, &info, &t, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(info.image_path, "/images/guest.elf");
    CU_ASSERT_EQUAL(info.image_hash_len, 4);
    CU_ASSERT_EQUAL(info.image_hash[3], 4);
    CU_ASSERT_EQUAL(info.ram_size, (uint64_t)NPAGES * PAGE);
    CU_ASSERT_EQUAL(info.ncpus, 2);
    CU_ASSERT_STRING_EQUAL(info.version, KVMSTUB_VERSION);
    CU_ASSERT_EQUAL(t->ncpus, 2);
    CU_ASSERT(same_cpu(&t->cpus[0], &f.s->cpus[0]));
    CU_ASSERT(same_cpu(&t->cpus[1], &f.s->cpus[1]));
    CU_ASSERT(!same_cpu(&t->cpus[0], &f.s->cpus[1]));
    CU_ASSERT_EQUAL(t->vm.parts, 0);
    CU_ASSERT_EQUAL(t->nblobs, 2);
    const struct vm_snapshot_blob *b = vm_snapshot_blob(t, "uart");
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(b->len, 300);
    CU_ASSERT_EQUAL(memcmp(b->data, f.s->blobs[0].data, 300), 0);
    CU_ASSERT_EQUAL(vm_snapshot_blob(t, "empty")->len, 0);
    CU_ASSERT_EQUAL(vm_pagestore_snap_pages(t->ram), vm_pagestore_snap_pages(f.s->ram));
    bool ram_same = true;
    for (unsigned p = 0; p < NPAGES; p++) {
        const uint8_t *a = vm_pagestore_page(t->ram, p), *c = vm_pagestore_page(f.s->ram, p);
        ram_same &= (a == NULL) == (c == NULL) && (!a || memcmp(a, c, PAGE) == 0);
    }
    CU_ASSERT(ram_same);
    /* Loading the read snapshot gives the saved RAM. */
    memset(f.ram, 0x5a, (size_t)NPAGES * PAGE);
    vm_pagestore_mark(f.ps, 0, NPAGES);
    vm_pagestore_load(f.ps, t->ram, f.ram, NULL);
    bool loaded = true;
    for (unsigned p = 0; p < NPAGES; p++) {
        const uint8_t *a = vm_pagestore_page(f.s->ram, p);
        for (unsigned i = 0; i < PAGE; i += 512)
            loaded &= f.ram[(size_t)p * PAGE + i] == (a ? a[i] : 0);
    }
    CU_ASSERT(loaded);
    struct vm_snapfile_info peek;
    CU_ASSERT_EQUAL(vm_snapfile_peek(path, &HOST, &peek, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(peek.ram_size, info.ram_size);
    vm_snapshot_free(t);
    teardown(&f);
}

static void test_truncated_anywhere(void)
{
    struct fixture f;
    setup(&f);
    char err[512];
    unsigned refused = 0, tried = 0;
    bool said_truncated = true;
    /* Every byte through the header and the first sections, then spread
     * over the RAM sections. */
    for (size_t n = 0; n < f.size; n += n < 800 ? 1 : f.size / 37) {
        tried++;
        if (read_buf(&f, f.file, n, &HOST, f.ps, err, sizeof(err)) == -EINVAL)
            refused++;
        if (n >= 16)
            said_truncated &= strstr(err, "truncated") != NULL;
    }
    CU_ASSERT_EQUAL(refused, tried);
    CU_ASSERT(said_truncated);
    fprintf(stderr, "\n    e.g. %s\n", err);
    CU_ASSERT_EQUAL(read_buf(&f, f.file, f.size - 1, &HOST, f.ps, err, sizeof(err)), -EINVAL);
    CU_ASSERT_EQUAL(read_buf(&f, f.file, f.size, &HOST, f.ps, err, sizeof(err)), 0);
    teardown(&f);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void test_corrupt_each_section(void)
{
    struct fixture f;
    setup(&f);
    char err[512];
    uint8_t *bad = malloc(f.size);
    /* Flip a byte at the start, middle and end of the header, of every
     * section header and of every payload (the layout is in snapfile.h). */
    size_t offs[256], n = 0;
    uint32_t hlen = le32(f.file + 12);
    offs[n++] = 0;
    offs[n++] = 20;
    offs[n++] = 100;
    offs[n++] = hlen - 1;
    unsigned sections = 0;
    for (size_t at = hlen; at + 24 <= f.size && n < 240;) {
        uint64_t len = le32(f.file + at + 8) | (uint64_t)le32(f.file + at + 12) << 32;
        offs[n++] = at;
        offs[n++] = at + 10;
        offs[n++] = at + 23;
        if (len) {
            offs[n++] = at + 24;
            offs[n++] = at + 24 + len / 2;
            offs[n++] = at + 24 + len - 1;
        }
        at += 24 + len;
        sections++;
    }
    uint64_t ram_sections = (vm_pagestore_snap_pages(f.s->ram) + 4095) / 4096;
    CU_ASSERT(ram_sections >= 2);
    CU_ASSERT_EQUAL(sections, 2 + 1 + 2 + ram_sections + 1); /* vCPUs, VM, blobs, RAM, end */
    for (size_t i = 0; i < n; i++) {
        memcpy(bad, f.file, f.size);
        bad[offs[i]] ^= 0x40;
        int r = read_buf(&f, bad, f.size, &HOST, f.ps, err, sizeof(err));
        CU_ASSERT_EQUAL(r, -EINVAL);
        if (r != -EINVAL)
            fprintf(stderr, "\n    byte %zu flipped and accepted\n", offs[i]);
        if (offs[i] >= hlen)
            CU_ASSERT_PTR_NOT_NULL(strstr(err, "corrupt"));
    }
    fprintf(stderr, "\n    e.g. %s\n", err);
    /* Data after the end record. */
    uint8_t *longer = malloc(f.size + 1);
    memcpy(longer, f.file, f.size);
    longer[f.size] = 0;
    CU_ASSERT_EQUAL(read_buf(&f, longer, f.size + 1, &HOST, f.ps, err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "after the end"));
    free(longer);
    free(bad);
    teardown(&f);
}

/* Rewrites header bytes and its checksum, as another writer would. */
static void patch_header(uint8_t *file, size_t off, const void *bytes, size_t n)
{
    memcpy(file + off, bytes, n);
    uint32_t hlen = le32(file + 12);
    uint32_t crc = vm_checksum_crc32c(0, file, hlen - 4);
    for (int i = 0; i < 4; i++)
        file[hlen - 4 + i] = (uint8_t)(crc >> (8 * i));
}

static void test_foreign_version_and_host(void)
{
    struct fixture f;
    setup(&f);
    char err[512];
    uint8_t *bad = malloc(f.size);

    memcpy(bad, f.file, f.size);
    char v[32] = "9.9.9";
    patch_header(bad, 16, v, 32);
    CU_ASSERT_EQUAL(read_buf(&f, bad, f.size, &HOST, f.ps, err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "written by kvmstub 9.9.9"));
    fprintf(stderr, "\n    %s\n", err);

    memcpy(bad, f.file, f.size);
    uint8_t fmt[4] = {2, 0, 0, 0};
    patch_header(bad, 8, fmt, 4);
    CU_ASSERT_EQUAL(read_buf(&f, bad, f.size, &HOST, f.ps, err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "format version 2"));

    struct vm_snapfile_host other = HOST;
    other.model = 0x8f;
    CU_ASSERT_EQUAL(read_buf(&f, f.file, f.size, &other, f.ps, err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "model 85"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "model 143"));
    fprintf(stderr, "    %s\n", err);
    other = HOST;
    strcpy(other.vendor, "AuthenticAMD");
    CU_ASSERT_EQUAL(read_buf(&f, f.file, f.size, &other, f.ps, err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "AuthenticAMD"));
    other = HOST;
    other.cpuid_digest++;
    CU_ASSERT_EQUAL(read_buf(&f, f.file, f.size, &other, f.ps, err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "other CPU features"));

    struct vm_pagestore *small;
    CU_ASSERT_EQUAL_FATAL(vm_pagestore_create(1024 * PAGE, &small), 0);
    CU_ASSERT_EQUAL(read_buf(&f, f.file, f.size, &HOST, small, err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "--memory 35M"));
    fprintf(stderr, "    %s\n", err);
    vm_pagestore_destroy(small);

    CU_ASSERT_EQUAL(read_buf(&f, (const uint8_t *)"#!/bin/sh\necho hi\n", 18, &HOST, f.ps, err,
                             sizeof(err)),
                    -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a kvmstub snapshot"));
    free(bad);
    teardown(&f);
}

static void test_state_encodings(void)
{
    struct vm_snap_cpu c, d;
    make_cpu(&c, 3);
    uint8_t *b;
    size_t n;
    CU_ASSERT_EQUAL_FATAL(vm_snap_cpu_encode(&c, &b, &n), 0);
    CU_ASSERT_EQUAL_FATAL(vm_snap_cpu_decode(b, n, &d), 0);
    CU_ASSERT(same_cpu(&c, &d));
    vm_snap_cpu_free(&d);
    for (size_t cut = 0; cut < n; cut += 97)
        CU_ASSERT_EQUAL(vm_snap_cpu_decode(b, cut, &d), -EINVAL);
    b[4] |= 0x80; /* an unknown part */
    CU_ASSERT_EQUAL(vm_snap_cpu_decode(b, n, &d), -EINVAL);
    free(b);
    vm_snap_cpu_free(&c);

    struct vm_snap_vm v = {.parts = VM_SNAP_VM_IRQCHIP | VM_SNAP_VM_PIT | VM_SNAP_VM_CLOCK}, w;
    for (unsigned i = 0; i < 3; i++) {
        fill(&v.chips[i], sizeof(v.chips[i]), i);
        v.chips[i].chip_id = i;
    }
    fill(&v.pit, sizeof(v.pit), 5);
    fill(&v.clock, sizeof(v.clock), 6);
    CU_ASSERT_EQUAL_FATAL(vm_snap_vm_encode(&v, &b, &n), 0);
    CU_ASSERT_EQUAL_FATAL(vm_snap_vm_decode(b, n, &w), 0);
    CU_ASSERT_EQUAL(memcmp(&v, &w, sizeof(v)), 0);
    char e[256];
    CU_ASSERT_EQUAL(vm_snap_vm_check(VM_SNAP_VM_ALL_PARTS, &w, e, sizeof(e)), 0);
    CU_ASSERT_EQUAL(vm_snap_vm_check(0, &w, e, sizeof(e)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "another board"));
    CU_ASSERT_EQUAL(vm_snap_vm_decode(b, n - 1, &w), -EINVAL);
    free(b);
}

static int setup_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/kvmstub-snapfile-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof(path), "%s/snap", dir);
    return 0;
}

static int cleanup_dir(void)
{
    unlink(path);
    return rmdir(dir);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("vm_snap_file", setup_dir, cleanup_dir);
    CU_add_test(s, "a machine snapshot round-trips through a file", test_round_trip);
    CU_add_test(s, "a file cut anywhere is refused as truncated", test_truncated_anywhere);
    CU_add_test(s, "a flipped byte in any section is refused", test_corrupt_each_section);
    CU_add_test(s, "another version, CPU or RAM size is refused", test_foreign_version_and_host);
    CU_add_test(s, "vCPU and VM state encodings check their lengths", test_state_encodings);
}

int main(void)
{
    return test_main("test_vm_snap_file", register_suites, false);
}
