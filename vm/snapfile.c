#include "snapfile.h"
#include "fail.h"

#include "internal.h"

#include "checksum.h"
#include "kvmstub_version.h"

#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
/* The fuzzer sets it to reach the decoders past mutated checksums. */
bool vm_snapfile_fuzz_skip_crc;
#define CRC_BAD(got, want) (!vm_snapfile_fuzz_skip_crc && (got) != (want))
#else
#define CRC_BAD(got, want) ((got) != (want))
#endif

static const uint8_t MAGIC[8] = {0x89, 'K', 'V', 'M', 'S', 'N', 'P', '\n'};

enum { SEC_CPU = 1, SEC_VM = 2, SEC_BLOB = 3, SEC_RAM = 4, SEC_END = 5 };
#define HDR_FIXED 180u
#define SEC_HDR 24u
#define RAM_CHUNK 4096u /* pages per RAM section */
#define MAX_CPUS 256u
#define MAX_CPU_FIXED (64u << 10) /* a vCPU's state besides its XSAVE area */
#define MAX_XSAVE (1u << 20)
#define MAX_BLOB_TOTAL (64u << 20)
#define MAX_VM_PAYLOAD (64u << 10)
#define MAX_SECTIONS 100000u
#define PAGE 4096u

static const char *section_name(uint32_t type)
{
    switch (type) {
    case SEC_CPU: return "vCPU state";
    case SEC_VM: return "VM state";
    case SEC_BLOB: return "device state";
    case SEC_RAM: return "RAM";
    case SEC_END: return "end record";
    }
    return "unknown";
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* --- the host ------------------------------------------------------------ */

int vm_snapfile_host_of(const struct vm *vm, struct vm_snapfile_host *out)
{
    return vm_snapfile_host(vm->kvm_fd, out);
}

/* Vendor, family, model and stepping from leaves 0 and 1 (eax, ebx, ecx,
 * edx of each). */
static void host_name(struct vm_snapfile_host *out, const unsigned l0[4], const unsigned l1[4])
{
    memcpy(out->vendor, &l0[1], 4);
    memcpy(out->vendor + 4, &l0[3], 4);
    memcpy(out->vendor + 8, &l0[2], 4);
    unsigned a = l1[0];
    unsigned family = (a >> 8) & 0xf, model = (a >> 4) & 0xf;
    if (family == 0xf)
        family += (a >> 20) & 0xff;
    if (family == 0x6 || family >= 0xf)
        model |= ((a >> 16) & 0xf) << 4;
    out->family = family;
    out->model = model;
    out->stepping = a & 0xf;
}

int vm_snapfile_host(int kvm_fd, struct vm_snapfile_host *out)
{
    memset(out, 0, sizeof(*out));
    unsigned l0[4] = {0}, l1[4] = {0};
    if (!__get_cpuid(0, &l0[0], &l0[1], &l0[2], &l0[3]))
        return -ENOTSUP;
    __get_cpuid(1, &l1[0], &l1[1], &l1[2], &l1[3]);

    for (uint32_t n = 64; n <= 4096; n *= 2) {
        struct kvm_cpuid2 *cp = calloc(1, sizeof(*cp) + n * sizeof(cp->entries[0]));
        if (!cp)
            return -ENOMEM;
        cp->nent = n;
        if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, cp) < 0) {
            int e = errno;
            free(cp);
            if (e == E2BIG)
                continue;
            return -e;
        }
        uint64_t h = VM_CHECKSUM_FNV64_INIT;
        for (uint32_t i = 0; i < cp->nent; i++) {
            struct kvm_cpuid_entry2 e = cp->entries[i];
            /* The CPU as KVM reports it rather than the CPUID instruction:
             * the same natively, and under valgrind (which makes up its
             * own CPUID) still the host's. */
            if (e.function == 0 && e.index == 0) {
                l0[1] = e.ebx;
                l0[2] = e.ecx;
                l0[3] = e.edx;
            }
            if (e.function == 1)
                l1[0] = e.eax;
            /* Fields that name the host CPU the ioctl ran on. */
            if (e.function == 1)
                e.ebx &= 0x00ffffffu;
            if (e.function == 0xb || e.function == 0x1f)
                e.edx = 0;
            if (e.function == 0x8000001e)
                e.eax = 0;
            uint32_t w[7] = {e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx};
            h = vm_checksum_fnv64(h, w, sizeof(w));
        }
        out->cpuid_digest = h;
        host_name(out, l0, l1);
        free(cp);
        return 0;
    }
    return -E2BIG;
}

/* --- writing ------------------------------------------------------------- */

struct writer {
    FILE *f;
    int err;
    uint32_t sections;
    /* the RAM chunk being gathered */
    uint32_t n;
    uint64_t pages[RAM_CHUNK];
    const uint8_t *data[RAM_CHUNK];
};

static void out_bytes(struct writer *w, const void *p, size_t n)
{
    if (!w->err && n && fwrite(p, 1, n, w->f) != n)
        w->err = errno ? -errno : -EIO;
}

static void section_header(struct writer *w, uint32_t type, uint32_t index, uint64_t len,
                           uint32_t crc)
{
    uint8_t h[SEC_HDR];
    put32(h, type);
    put32(h + 4, index);
    put64(h + 8, len);
    put32(h + 16, crc);
    put32(h + 20, vm_checksum_crc32c(0, h, 20));
    out_bytes(w, h, sizeof(h));
    if (type != SEC_END)
        w->sections++;
}

static void section(struct writer *w, uint32_t type, uint32_t index, const uint8_t *p, size_t n)
{
    section_header(w, type, index, n, vm_checksum_crc32c(0, p, n));
    out_bytes(w, p, n);
}

static void flush_ram(struct writer *w)
{
    if (!w->n)
        return;
    uint8_t head[8];
    put32(head, w->n);
    put32(head + 4, 0);
    uint8_t *idx = malloc((size_t)w->n * 8);
    if (!idx) {
        w->err = -ENOMEM;
        return;
    }
    for (uint32_t i = 0; i < w->n; i++)
        put64(idx + 8 * i, w->pages[i]);
    uint32_t crc = vm_checksum_crc32c(0, head, 8);
    crc = vm_checksum_crc32c(crc, idx, (size_t)w->n * 8);
    for (uint32_t i = 0; i < w->n; i++)
        crc = vm_checksum_crc32c(crc, w->data[i], PAGE);
    section_header(w, SEC_RAM, 0, 8 + (uint64_t)w->n * (8 + PAGE), crc);
    out_bytes(w, head, 8);
    out_bytes(w, idx, (size_t)w->n * 8);
    for (uint32_t i = 0; i < w->n; i++)
        out_bytes(w, w->data[i], PAGE);
    free(idx);
    w->n = 0;
}

static int gather(void *ctx, uint64_t page, const uint8_t *data)
{
    struct writer *w = ctx;
    w->pages[w->n] = page;
    w->data[w->n++] = data;
    if (w->n == RAM_CHUNK)
        flush_ram(w);
    return w->err;
}

static uint32_t count_sections(const struct vm_snapshot *s)
{
    uint64_t pages = vm_pagestore_snap_pages(s->ram);
    return s->ncpus + 1 + (uint32_t)s->nblobs + (uint32_t)((pages + RAM_CHUNK - 1) / RAM_CHUNK);
}

int vm_snapfile_write(const char *path, const struct vm_snapshot *s,
                      const struct vm_snapfile_host *host, const char *image_path,
                      const uint8_t *image_hash, uint32_t hash_len, char *err, size_t errlen)
{
    return vm_snapfile_write_at(AT_FDCWD, path, true, s, host, image_path, image_hash, hash_len,
                                err, errlen);
}

/* tmp becomes path, or (!replace) only if nothing is at path by then. */
static int put_in_place(int dirfd, const char *tmp, const char *path, bool replace)
{
    if (replace)
        return renameat(dirfd, tmp, dirfd, path) ? -errno : 0;
    if (!renameat2(dirfd, tmp, dirfd, path, RENAME_NOREPLACE))
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -errno;
    /* A file system without RENAME_NOREPLACE: a hard link refuses the same. */
    if (linkat(dirfd, tmp, dirfd, path, 0))
        return -errno;
    unlinkat(dirfd, tmp, 0);
    return 0;
}

int vm_snapfile_write_at(int dirfd, const char *path, bool replace, const struct vm_snapshot *s,
                         const struct vm_snapfile_host *host, const char *image_path,
                         const uint8_t *image_hash, uint32_t hash_len, char *err, size_t errlen)
{
    size_t plen = image_path ? strlen(image_path) : 0;
    if (plen > VM_SNAPFILE_MAX_PATH || hash_len > VM_SNAPFILE_MAX_HASH || !s->ram || !s->ncpus)
        return vm_fail(err, errlen, -EINVAL,
                    "cannot write a snapshot with an image path over %u bytes, an image hash "
                    "over %u bytes, or without RAM and vCPUs",
                    VM_SNAPFILE_MAX_PATH, VM_SNAPFILE_MAX_HASH);
    size_t tlen = strlen(path) + 5;
    char *tmp = malloc(tlen);
    struct writer *w = calloc(1, sizeof(*w));
    uint8_t *hdr = calloc(1, HDR_FIXED + plen + 4);
    if (!tmp || !w || !hdr) {
        free(tmp);
        free(w);
        free(hdr);
        return vm_fail(err, errlen, -ENOMEM, "out of memory");
    }
    snprintf(tmp, tlen, "%s.tmp", path);
    /* O_EXCL: a symbolic link planted at the .tmp name is not written
     * through, and neither is anyone else's file truncated. */
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    int r = 0;
    if (fd < 0 && errno == EEXIST) {
        r = vm_fail(err, errlen, -EEXIST,
                    "cannot create %s: it exists (left by an interrupted write?); remove it", tmp);
        goto out;
    }
    if (fd < 0 || !(w->f = fdopen(fd, "wb"))) {
        r = vm_fail(err, errlen, -errno, "cannot create %s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        goto out;
    }
    setvbuf(w->f, NULL, _IOFBF, 1 << 20);

    memcpy(hdr, MAGIC, 8);
    put32(hdr + 8, VM_SNAPFILE_FORMAT);
    put32(hdr + 12, (uint32_t)(HDR_FIXED + plen + 4));
    size_t vlen = strlen(KVMSTUB_VERSION);
    memcpy(hdr + 16, KVMSTUB_VERSION, vlen < 32 ? vlen : 32);
    memcpy(hdr + 48, host->vendor, 12);
    put32(hdr + 60, host->family);
    put32(hdr + 64, host->model);
    put32(hdr + 68, host->stepping);
    put64(hdr + 72, host->cpuid_digest);
    put64(hdr + 80, vm_pagestore_ram_size(s->ps));
    put32(hdr + 88, s->ncpus);
    put32(hdr + 92, s->vm.parts);
    put32(hdr + 96, s->cpus[0].parts);
    put32(hdr + 100, s->cpus[0].xsave_size);
    put32(hdr + 104, count_sections(s));
    put32(hdr + 108, hash_len);
    if (hash_len)
        memcpy(hdr + 112, image_hash, hash_len);
    put32(hdr + 176, (uint32_t)plen);
    if (plen)
        memcpy(hdr + HDR_FIXED, image_path, plen);
    put32(hdr + HDR_FIXED + plen, vm_checksum_crc32c(0, hdr, HDR_FIXED + plen));
    out_bytes(w, hdr, HDR_FIXED + plen + 4);

    for (unsigned i = 0; i < s->ncpus && !w->err; i++) {
        uint8_t *b;
        size_t n;
        if ((w->err = vm_snap_cpu_encode(&s->cpus[i], &b, &n)))
            break;
        section(w, SEC_CPU, i, b, n);
        free(b);
    }
    if (!w->err) {
        uint8_t *b;
        size_t n;
        if (!(w->err = vm_snap_vm_encode(&s->vm, &b, &n))) {
            section(w, SEC_VM, 0, b, n);
            free(b);
        }
    }
    for (size_t i = 0; i < s->nblobs && !w->err; i++) {
        size_t nl = strlen(s->blobs[i].name);
        uint8_t *b = malloc(4 + nl + s->blobs[i].len);
        if (!b) {
            w->err = -ENOMEM;
            break;
        }
        put32(b, (uint32_t)nl);
        memcpy(b + 4, s->blobs[i].name, nl);
        if (s->blobs[i].len)
            memcpy(b + 4 + nl, s->blobs[i].data, s->blobs[i].len);
        section(w, SEC_BLOB, (uint32_t)i, b, 4 + nl + s->blobs[i].len);
        free(b);
    }
    if (!w->err)
        vm_pagestore_foreach(s->ram, gather, w);
    flush_ram(w);
    if (!w->err && w->sections != count_sections(s))
        w->err = -EIO; /* the snapshot changed under us */
    section_header(w, SEC_END, w->sections, 0, vm_checksum_crc32c(0, NULL, 0));
    if (fflush(w->f) && !w->err)
        w->err = -errno;
    if (!w->err && fsync(fileno(w->f)))
        w->err = -errno;
    if (fclose(w->f) && !w->err)
        w->err = -errno;
    if (w->err) {
        r = vm_fail(err, errlen, w->err, "cannot write snapshot %s: %s", tmp, strerror(-w->err));
        unlinkat(dirfd, tmp, 0);
        goto out;
    }
    int pr = put_in_place(dirfd, tmp, path, replace);
    if (pr) {
        r = vm_fail(err, errlen, pr, "cannot rename %s to %s: %s", tmp, path,
                    pr == -EEXIST ? "a file appeared there meanwhile; it is left as it is"
                                  : strerror(-pr));
        unlinkat(dirfd, tmp, 0);
    }
out:
    free(tmp);
    free(w);
    free(hdr);
    return r;
}

/* --- reading ------------------------------------------------------------- */

struct reader {
    FILE *f;
    const char *name;
    uint64_t off;
    char *err;
    size_t errlen;
};

/* Reads n bytes or reports where the file ends. */
static int in_bytes(struct reader *rd, void *p, size_t n, const char *what)
{
    size_t got = n ? fread(p, 1, n, rd->f) : 0;
    rd->off += got;
    if (got == n)
        return 0;
    if (ferror(rd->f))
        return vm_fail(rd->err, rd->errlen, -EIO, "snapshot %s: read error at byte %llu: %s",
                    rd->name, (unsigned long long)rd->off, strerror(errno));
    return vm_fail(rd->err, rd->errlen, -EINVAL,
                "snapshot %s is truncated: it ends at byte %llu, inside %s; the file is "
                "incomplete (a copy or write that did not finish): write the snapshot again",
                rd->name, (unsigned long long)rd->off, what);
}

static int corrupt(struct reader *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int corrupt(struct reader *rd, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return vm_fail(rd->err, rd->errlen, -EINVAL,
                "snapshot %s is corrupt: %s (near byte %llu); it cannot be restored: use "
                "another copy or write the snapshot again",
                rd->name, what, (unsigned long long)rd->off);
}

static int read_header(struct reader *rd, const struct vm_snapfile_host *host,
                       struct vm_snapfile_info *info)
{
    uint8_t h[HDR_FIXED + VM_SNAPFILE_MAX_PATH + 4];
    int r = in_bytes(rd, h, 16, "the header");
    if (r)
        return r;
    if (memcmp(h, MAGIC, 8))
        return vm_fail(rd->err, rd->errlen, -EINVAL,
                    "%s is not a kvmstub snapshot (no snapshot signature at its start): give "
                    "a file written by 'monitor snapshot write'",
                    rd->name);
    info->format = get32(h + 8);
    uint32_t hlen = get32(h + 12);
    /* The format version decides what follows: check it before the rest. */
    if (info->format != VM_SNAPFILE_FORMAT)
        return vm_fail(rd->err, rd->errlen, -EINVAL,
                    "snapshot %s has format version %u, this kvmstub (%s) reads version %u: "
                    "restore it with the kvmstub that wrote it",
                    rd->name, info->format, KVMSTUB_VERSION, VM_SNAPFILE_FORMAT);
    if (hlen < HDR_FIXED + 4 || hlen > sizeof(h))
        return corrupt(rd, "header length %u out of range", hlen);
    if ((r = in_bytes(rd, h + 16, hlen - 16, "the header")))
        return r;
    if (CRC_BAD(get32(h + hlen - 4), vm_checksum_crc32c(0, h, hlen - 4)))
        return corrupt(rd, "header checksum mismatch");
    memcpy(info->version, h + 16, 32);
    info->version[32] = 0;
    if (strcmp(info->version, KVMSTUB_VERSION))
        return vm_fail(rd->err, rd->errlen, -EINVAL,
                    "snapshot %s was written by kvmstub %s; this is kvmstub %s, which restores "
                    "only its own snapshots: use kvmstub %s, or boot the guest again and save "
                    "a new snapshot",
                    rd->name, info->version, KVMSTUB_VERSION, info->version);
    memcpy(info->host.vendor, h + 48, 12);
    info->host.vendor[12] = 0;
    info->host.family = get32(h + 60);
    info->host.model = get32(h + 64);
    info->host.stepping = get32(h + 68);
    info->host.cpuid_digest = get64(h + 72);
    if (strcmp(info->host.vendor, host->vendor) || info->host.family != host->family ||
        info->host.model != host->model || info->host.stepping != host->stepping)
        return vm_fail(rd->err, rd->errlen, -EINVAL,
                    "snapshot %s was saved on a %s CPU of family %u model %u stepping %u; this "
                    "host has a %s CPU of family %u model %u stepping %u: vCPU state does not "
                    "carry over between CPU models: restore it on the host that saved it",
                    rd->name, info->host.vendor, info->host.family, info->host.model,
                    info->host.stepping, host->vendor, host->family, host->model, host->stepping);
    if (info->host.cpuid_digest != host->cpuid_digest)
        return vm_fail(rd->err, rd->errlen, -EINVAL,
                    "snapshot %s was saved on a host whose KVM offers other CPU features (same "
                    "CPU model, different kernel or settings): restore it on the host that "
                    "saved it",
                    rd->name);
    info->ram_size = get64(h + 80);
    info->ncpus = get32(h + 88);
    info->vm_parts = get32(h + 92);
    info->cpu_parts = get32(h + 96);
    info->xsave_size = get32(h + 100);
    info->image_hash_len = get32(h + 108);
    uint32_t plen = get32(h + 176);
    if (info->ram_size < (1ull << 20) || info->ram_size > (3ull << 30) || info->ram_size % PAGE)
        return corrupt(rd, "RAM size %llu is not a whole number of pages between 1 MiB and 3 GiB",
                       (unsigned long long)info->ram_size);
    if (!info->ncpus || info->ncpus > MAX_CPUS)
        return corrupt(rd, "%u vCPUs (1 to %u possible)", info->ncpus, MAX_CPUS);
    if (info->xsave_size > MAX_XSAVE)
        return corrupt(rd, "XSAVE area of %u bytes", info->xsave_size);
    if (info->image_hash_len > VM_SNAPFILE_MAX_HASH || plen != hlen - HDR_FIXED - 4)
        return corrupt(rd, "image identity sizes out of range");
    memcpy(info->image_hash, h + 112, VM_SNAPFILE_MAX_HASH);
    memcpy(info->image_path, h + HDR_FIXED, plen);
    info->image_path[plen] = 0;
    if (strlen(info->image_path) != plen)
        return corrupt(rd, "image path contains a NUL byte");
    return 0;
}

int vm_snapfile_peek(const char *path, const struct vm_snapfile_host *host,
                     struct vm_snapfile_info *info, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rbe");
    if (!f)
        return vm_fail(err, errlen, -errno, "cannot open snapshot %s: %s", path, strerror(errno));
    struct reader rd = {.f = f, .name = path, .err = err, .errlen = errlen};
    memset(info, 0, sizeof(*info));
    int r = read_header(&rd, host, info);
    fclose(f);
    return r;
}

static int read_payload(struct reader *rd, uint64_t len, uint64_t max, uint32_t crc,
                        const char *what, uint8_t **out)
{
    if (len > max)
        return corrupt(rd, "%s section of %llu bytes (at most %llu)", what,
                       (unsigned long long)len, (unsigned long long)max);
    uint8_t *b = malloc(len ? (size_t)len : 1);
    if (!b)
        return vm_fail(rd->err, rd->errlen, -ENOMEM, "out of memory");
    int r = in_bytes(rd, b, (size_t)len, what);
    if (!r && CRC_BAD(vm_checksum_crc32c(0, b, (size_t)len), crc))
        r = corrupt(rd, "%s section checksum mismatch", what);
    if (r)
        free(b);
    else
        *out = b;
    return r;
}

static int read_ram(struct reader *rd, uint64_t len, uint32_t crc, struct vm_pagestore_import *im,
                    uint64_t *next_page, uint64_t npages, uint8_t *page)
{
    uint8_t head[8];
    int r = in_bytes(rd, head, 8, "a RAM section");
    if (r)
        return r;
    uint32_t n = get32(head);
    if (!n || n > RAM_CHUNK || get32(head + 4) || len != 8 + (uint64_t)n * (8 + PAGE))
        return corrupt(rd, "RAM section of %u pages and %llu bytes", n, (unsigned long long)len);
    uint8_t *idx = malloc((size_t)n * 8);
    if (!idx)
        return vm_fail(rd->err, rd->errlen, -ENOMEM, "out of memory");
    if ((r = in_bytes(rd, idx, (size_t)n * 8, "a RAM section")))
        goto out;
    uint32_t c = vm_checksum_crc32c(vm_checksum_crc32c(0, head, 8), idx, (size_t)n * 8);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t p = get64(idx + 8 * i);
        if (p >= npages || p < *next_page) {
            r = corrupt(rd, "RAM page %llu out of order or past the RAM size",
                        (unsigned long long)p);
            goto out;
        }
        *next_page = p + 1;
    }
    /* Pages go into the import as they come; a bad checksum at the end of
     * the section aborts the whole import, so nothing leaks out. */
    for (uint32_t i = 0; i < n; i++) {
        if ((r = in_bytes(rd, page, PAGE, "a RAM section")))
            goto out;
        c = vm_checksum_crc32c(c, page, PAGE);
        r = vm_pagestore_import_page(im, get64(idx + 8 * i), page);
        if (r) {
            r = vm_fail(rd->err, rd->errlen, r, "snapshot %s: cannot hold its RAM: %s", rd->name,
                     strerror(-r));
            goto out;
        }
    }
    if (CRC_BAD(c, crc))
        r = corrupt(rd, "RAM section checksum mismatch");
out:
    free(idx);
    return r;
}

int vm_snapfile_read_stream(FILE *f, const char *name, const struct vm_snapfile_host *host,
                            struct vm_pagestore *ps, struct vm_snapfile_info *info,
                            struct vm_snapshot **out, char *err, size_t errlen)
{
    struct reader rd = {.f = f, .name = name, .err = err, .errlen = errlen};
    struct vm_snapfile_info scratch;
    if (!info)
        info = &scratch;
    memset(info, 0, sizeof(*info));
    int r = read_header(&rd, host, info);
    if (r)
        return r;
    if (info->ram_size != vm_pagestore_ram_size(ps))
        return vm_fail(err, errlen, -EINVAL,
                    "snapshot %s holds %llu MiB of RAM but the guest has %llu MiB: start "
                    "kvmstub with --memory %lluM",
                    name, (unsigned long long)(info->ram_size >> 20),
                    (unsigned long long)(vm_pagestore_ram_size(ps) >> 20),
                    (unsigned long long)(info->ram_size >> 20));

    struct vm_snapshot *s = calloc(1, sizeof(*s));
    uint8_t *page = malloc(PAGE);
    struct vm_pagestore_import *im = NULL;
    bool *cpu_seen = calloc(info->ncpus, sizeof(bool));
    if (!s || !page || !cpu_seen || (r = vm_pagestore_import_begin(ps, &im))) {
        r = vm_fail(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    s->ps = ps;
    s->ncpus = info->ncpus;
    s->cpus = calloc(info->ncpus, sizeof(*s->cpus));
    s->blobs = calloc(VM_SNAPSHOT_MAX_BLOBS, sizeof(*s->blobs));
    if (!s->cpus || !s->blobs) {
        r = vm_fail(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    uint32_t nsec = 0, ncpu = 0;
    uint64_t blob_bytes = 0;
    bool vm_seen = false;
    uint64_t next_page = 0, npages = info->ram_size / PAGE;
    for (;;) {
        uint8_t h[SEC_HDR];
        if ((r = in_bytes(&rd, h, SEC_HDR, "a section header")))
            goto out;
        if (CRC_BAD(get32(h + 20), vm_checksum_crc32c(0, h, 20))) {
            r = corrupt(&rd, "section %u header checksum mismatch", nsec);
            goto out;
        }
        uint32_t type = get32(h), index = get32(h + 4), crc = get32(h + 16);
        uint64_t len = get64(h + 8);
        const char *what = section_name(type);
        if (type == SEC_END) {
            if (index != nsec || len) {
                r = corrupt(&rd, "end record counts %u sections, the file has %u", index, nsec);
                goto out;
            }
            break;
        }
        if (++nsec > MAX_SECTIONS) {
            r = corrupt(&rd, "more than %u sections", MAX_SECTIONS);
            goto out;
        }
        uint8_t *b = NULL;
        switch (type) {
        case SEC_CPU:
            if (index >= info->ncpus || cpu_seen[index]) {
                r = corrupt(&rd, "vCPU %u given twice or not among the %u vCPUs", index,
                            info->ncpus);
                goto out;
            }
            if ((r = read_payload(&rd, len, MAX_CPU_FIXED + (uint64_t)info->xsave_size, crc, what,
                                  &b)))
                goto out;
            r = vm_snap_cpu_decode(b, (size_t)len, &s->cpus[index]);
            free(b);
            if (r) {
                r = corrupt(&rd, "vCPU %u state does not decode", index);
                goto out;
            }
            cpu_seen[index] = true;
            ncpu++;
            if (s->cpus[index].parts != info->cpu_parts ||
                s->cpus[index].xsave_size != info->xsave_size) {
                r = corrupt(&rd, "vCPU %u state disagrees with the header", index);
                goto out;
            }
            break;
        case SEC_VM:
            if (vm_seen) {
                r = corrupt(&rd, "VM state given twice");
                goto out;
            }
            if ((r = read_payload(&rd, len, MAX_VM_PAYLOAD, crc, what, &b)))
                goto out;
            r = vm_snap_vm_decode(b, (size_t)len, &s->vm);
            free(b);
            if (r || s->vm.parts != info->vm_parts) {
                r = corrupt(&rd, "VM state does not decode or disagrees with the header");
                goto out;
            }
            vm_seen = true;
            break;
        case SEC_BLOB: {
            if (s->nblobs == VM_SNAPSHOT_MAX_BLOBS) {
                r = corrupt(&rd, "more than %d device states", VM_SNAPSHOT_MAX_BLOBS);
                goto out;
            }
            if (len > MAX_BLOB_TOTAL - blob_bytes) {
                r = corrupt(&rd, "device states of more than %u bytes in all", MAX_BLOB_TOTAL);
                goto out;
            }
            if ((r = read_payload(&rd, len, 4 + VM_SNAPSHOT_BLOB_NAME + VM_SNAPSHOT_MAX_BLOB, crc,
                                  what, &b)))
                goto out;
            blob_bytes += len;
            uint32_t nl = len >= 4 ? get32(b) : 0;
            if (!nl || nl >= VM_SNAPSHOT_BLOB_NAME || 4 + (uint64_t)nl > len ||
                memchr(b + 4, 0, nl)) {
                free(b);
                r = corrupt(&rd, "device state with a bad name");
                goto out;
            }
            struct vm_snapshot_blob *bl = &s->blobs[s->nblobs];
            memcpy(bl->name, b + 4, nl);
            bl->name[nl] = 0;
            if (vm_snapshot_blob(s, bl->name)) {
                free(b);
                r = corrupt(&rd, "device state '%s' given twice", bl->name);
                goto out;
            }
            bl->len = (size_t)len - 4 - nl;
            memmove(b, b + 4 + nl, bl->len);
            bl->data = b;
            s->nblobs++;
            break;
        }
        case SEC_RAM:
            if ((r = read_ram(&rd, len, crc, im, &next_page, npages, page)))
                goto out;
            break;
        default:
            r = corrupt(&rd, "section %u of unknown type %u", nsec - 1, type);
            goto out;
        }
    }
    if (ncpu != info->ncpus || !vm_seen) {
        r = corrupt(&rd, "%u of %u vCPU states%s", ncpu, info->ncpus,
                    vm_seen ? "" : ", no VM state");
        goto out;
    }
    if (fgetc(f) != EOF) {
        r = corrupt(&rd, "data after the end record");
        goto out;
    }
    s->ram = vm_pagestore_import_end(im);
    im = NULL;
    if (!s->ram) {
        r = vm_fail(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    *out = s;
    s = NULL;
    r = 0;
out:
    vm_pagestore_import_abort(im);
    vm_snapshot_free(s);
    free(page);
    free(cpu_seen);
    return r;
}

int vm_snapfile_read(const char *path, const struct vm_snapfile_host *host,
                     struct vm_pagestore *ps, struct vm_snapfile_info *info,
                     struct vm_snapshot **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rbe");
    if (!f)
        return vm_fail(err, errlen, -errno, "cannot open snapshot %s: %s", path, strerror(errno));
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    int r = vm_snapfile_read_stream(f, path, host, ps, info, out, err, errlen);
    fclose(f);
    return r;
}
