/* Reading images, choosing their format, checking and placing segments. */
#include "image.h"

#include "boot.h"
#include "bzimage.h"
#include "fail.h"
#include "image_formats.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

const char *vm_image_format_name(enum vm_image_format f)
{
    switch (f) {
    case VM_IMAGE_AUTO: return "auto";
    case VM_IMAGE_BIN: return "flat binary";
    case VM_IMAGE_ELF: return "ELF";
    case VM_IMAGE_MULTIBOOT: return "multiboot";
    case VM_IMAGE_BZIMAGE: return "Linux bzImage";
    }
    return "?";
}

int vm_image_open(struct vm_image *img, const char *path, char *err, size_t errlen)
{
    return vm_image_open_file(img, path, "image", err, errlen);
}

int vm_image_open_file(struct vm_image *img, const char *path, const char *what, char *err,
                       size_t errlen)
{
    memset(img, 0, sizeof(*img));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vm_fail(err, errlen, -errno, "cannot open %s %s: %s", what, path,
                       strerror(errno));
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) < 0) {
        r = vm_fail(err, errlen, -errno, "cannot stat %s %s: %s", what, path,
                    strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        r = vm_fail(err, errlen, -EINVAL, "%s %s is not a regular file", what,
                    path);
        goto out;
    }
    if (st.st_size == 0) {
        r = vm_fail(err, errlen, -EINVAL, "%s %s is empty", what, path);
        goto out;
    }
    if ((uint64_t)st.st_size > VM_IMAGE_MAX_FILE) {
        r = vm_fail(err, errlen, -EFBIG, "%s %s is %lld bytes; kvmstub loads at most 1 GiB",
                    what, path, (long long)st.st_size);
        goto out;
    }
    img->size = (size_t)st.st_size;
    img->data = malloc(img->size);
    img->name = strdup(path);
    if (!img->data || !img->name) {
        r = vm_fail(err, errlen, -ENOMEM, "out of memory reading %s", path);
        goto out;
    }
    for (size_t done = 0; done < img->size;) {
        ssize_t n = read(fd, img->data + done, img->size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = vm_fail(err, errlen, n < 0 ? -errno : -EIO, "cannot read %s %s: %s",
                        what, path, n < 0 ? strerror(errno) : "file shrank while reading");
            goto out;
        }
        done += (size_t)n;
    }
out:
    close(fd);
    if (r)
        vm_image_free(img);
    return r;
}

int vm_image_from_buffer(struct vm_image *img, const void *data, size_t size, const char *name)
{
    memset(img, 0, sizeof(*img));
    if (size == 0)
        return -EINVAL;
    img->data = malloc(size);
    img->name = strdup(name ? name : "buffer");
    if (!img->data || !img->name) {
        vm_image_free(img);
        return -ENOMEM;
    }
    memcpy(img->data, data, size);
    img->size = size;
    return 0;
}

void vm_image_free(struct vm_image *img)
{
    free(img->data);
    free(img->name);
    free(img->cmdline);
    memset(img, 0, sizeof(*img));
}

/* Every segment inside RAM and clear of the boot area the mode needs. */
static int check_placement(struct vm *vm, struct vm_image *img, char *err, size_t errlen)
{
    uint64_t ram = vm->mem.size;
    uint64_t area = vm_boot_area(vm);
    for (size_t i = 0; i < img->nsegments; i++) {
        const struct vm_segment *s = &img->segments[i];
        if (s->memsz == 0)
            continue;
        if (!vm_mem_contains(&vm->mem, s->paddr, s->memsz))
            return vm_fail(err, errlen, -E2BIG,
                           "%s does not fit in guest RAM: it needs 0x%llx-0x%llx but the "
                           "guest has 0x%llx bytes; give it more with --memory or link "
                           "it lower",
                           img->name, (unsigned long long)s->paddr,
                           (unsigned long long)(s->paddr + s->memsz - 1),
                           (unsigned long long)ram);
        if (img->mode != VM_MODE_REAL && s->paddr + s->memsz > area)
            return vm_fail(err, errlen, -EBUSY,
                           "%s overlaps kvmstub's boot area: it needs 0x%llx-0x%llx, and "
                           "0x%llx-0x%llx (the top 64 KiB of RAM) holds the GDT, page "
                           "tables and multiboot data; give the guest more memory with "
                           "--memory",
                           img->name, (unsigned long long)s->paddr,
                           (unsigned long long)(s->paddr + s->memsz - 1),
                           (unsigned long long)area, (unsigned long long)(ram - 1));
    }
    return 0;
}

static bool is_elf(const struct vm_image *img)
{
    return img->size >= 4 && memcmp(img->data, "\x7f" "ELF", 4) == 0;
}

static int parse_flat(struct vm_image *img, const struct vm_image_options *opt, char *err,
                      size_t errlen)
{
    uint64_t load = opt->has_load ? opt->load : VM_DEFAULT_LOAD;
    img->mode = opt->has_mode ? opt->mode : VM_MODE_REAL;
    img->entry = load;
    return vm_image_add_segment(img, load, 0, img->size, img->size, err, errlen);
}

enum vm_image_format vm_image_detect(const struct vm_image *img)
{
    if (vm_multiboot_find(img) >= 0)
        return VM_IMAGE_MULTIBOOT;
    if (is_elf(img))
        return VM_IMAGE_ELF;
    if (vm_bzimage_detect(img->data, img->size))
        return VM_IMAGE_BZIMAGE;
    return VM_IMAGE_BIN;
}

static const char *a_format(enum vm_image_format f)
{
    switch (f) {
    case VM_IMAGE_ELF: return "an ELF file";
    case VM_IMAGE_MULTIBOOT: return "a multiboot kernel";
    case VM_IMAGE_BZIMAGE: return "a Linux bzImage";
    default: return "a flat binary";
    }
}

/* " tsc_early_khz=N" with the vCPUs' TSC rate, or nothing where KVM does
 * not say it. A PC's firmware never tells the kernel its TSC rate: Linux
 * measures it against the PIT (Intel parts also report it in CPUID 0x15),
 * and only a kernel with kvm-clock asks the hypervisor. Under KVM that
 * measurement fails whenever port I/O exits are slow against the PIT's
 * period (nested KVM, a loaded host): the kernel then marks the TSC
 * unstable, drops the TSC-deadline timer, calibrates the LAPIC timer and
 * the delay loop against PIT interrupts, and times every CPU bring-up on
 * jiffies. tsc_early_khz (Linux 5.0 and newer; older kernels ignore it) is
 * the kernel's own way to be told the rate; --cmdline comes after it, so a
 * user can override it. */
static void tsc_words(struct vm *vm, char *out, size_t len)
{
    out[0] = '\0';
    if (!vm->board->info.irqchip || vm->ncpus == 0)
        return;
    int khz = ioctl(vm->cpus[0].fd, KVM_GET_TSC_KHZ, 0);
    if (khz > 0)
        snprintf(out, len, " tsc_early_khz=%d", khz);
}

/* Linux's boot protocol: everything vm/bzimage.c lays out in low RAM, the
 * kernel, the initrd; then the boot CPU at the 64-bit entry. */
static int load_bzimage(struct vm *vm, struct vm_image *img, const struct vm_image_options *opt,
                        char *err, size_t errlen)
{
    struct vm_bzimage bz;
    int r = vm_bzimage_parse(&bz, img->data, img->size, err, errlen);
    if (r)
        return r;
    char clock[40];
    tsc_words(vm, clock, sizeof(clock));
    /* With a PCI device on the board the kernel must probe the bus. */
    char base[sizeof(VM_LINUX_CMDLINE)];
    snprintf(base, sizeof(base), "%s", VM_LINUX_CMDLINE);
    char *off = strstr(base, " pci=off");
    if (vm->linux_pci && off)
        memmove(off, off + strlen(" pci=off"), strlen(off + strlen(" pci=off")) + 1);
    const char *words = vm->linux_words ? vm->linux_words : "";
    size_t n = strlen(base) + strlen(clock) + strlen(words) +
               (opt->cmdline ? 1 + strlen(opt->cmdline) : 0) + 1;
    char *cmdline = malloc(n);
    if (!cmdline)
        return vm_fail(err, errlen, -ENOMEM, "out of memory");
    snprintf(cmdline, n, "%s%s%s%s%s", base, clock, words, opt->cmdline ? " " : "",
             opt->cmdline ? opt->cmdline : "");
    struct vm_bzimage_params p = {.cmdline = cmdline,
                                  .initrd = opt->initrd,
                                  .initrd_size = opt->initrd ? opt->initrd_size : 0};
    struct vm_bzimage_entry e;
    char why[400];
    r = vm_bzimage_load(&bz, vm->mem.host, vm->mem.size, &p, &e, why, sizeof(why));
    if (r) {
        free(cmdline);
        /* The loader names no file; the initrd's problems name it. */
        if (r == -EFBIG && opt->initrd_name)
            return vm_fail(err, errlen, r, "initrd %s: %s", opt->initrd_name, why);
        return vm_fail(err, errlen, r, "%s: %s", img->name, why);
    }
    free(img->cmdline);
    img->cmdline = cmdline;
    img->mode = VM_MODE_LONG;
    img->entry = e.rip;
    img->initrd_addr = e.initrd_addr;
    img->initrd_size = e.initrd_size;
    img->segments[0] = (struct vm_segment){.paddr = e.kernel_addr,
                                           .offset = bz.kernel_offset,
                                           .filesz = bz.kernel_size,
                                           .memsz = e.kernel_end - e.kernel_addr};
    img->nsegments = 1;
    /* Where the decompressor unpacks the kernel unless KASLR moves it: its
     * load address rounded up to kernel_alignment, not below pref_address
     * (LOAD_PHYSICAL_ADDR, where its text is linked to run); the kernel
     * maps VM_LINUX_TEXT_MAP to that minus pref_address (its phys_base).
     * Pending breakpoints on kernel text are planted there (debug.c). */
    uint64_t unpacked = e.kernel_addr;
    if (bz.relocatable)
        unpacked = (unpacked + bz.kernel_alignment - 1) & ~(uint64_t)(bz.kernel_alignment - 1);
    if (unpacked < bz.pref_address)
        unpacked = bz.pref_address;
    vm->linux_text = true;
    vm->linux_text_gpa = unpacked - bz.pref_address;
    vm->linux_link_phys = bz.pref_address;
    if ((r = vm_enter_bzimage(&vm->cpus[0], &e)))
        return vm_fail(err, errlen, r, "cannot set up the vCPU for the kernel's entry: %s",
                       strerror(-r));
    return 0;
}

static int board_tables(struct vm *vm, const struct vm_image *img, char *err, size_t errlen)
{
    return vm->board->image_loaded ? vm->board->image_loaded(vm, img, err, errlen) : 0;
}

int vm_image_load(struct vm *vm, struct vm_image *img, const struct vm_image_options *opt,
                  char *err, size_t errlen)
{
    img->nsegments = 0;
    img->mbi = 0;
    img->initrd_addr = img->initrd_size = 0;
    enum vm_image_format f = opt->format;
    if (f == VM_IMAGE_AUTO)
        f = vm_image_detect(img);
    if (f != VM_IMAGE_BIN && (opt->has_mode || opt->has_load))
        return vm_fail(err, errlen, -EINVAL,
                       "--mode and --load apply to flat binaries only; %s is %s",
                       img->name, a_format(f));
    if (f != VM_IMAGE_BZIMAGE && opt->initrd)
        return vm_fail(err, errlen, -EINVAL,
                       "--initrd applies to Linux bzImages only; %s is %s, which kvmstub "
                       "gives no initrd",
                       img->name, a_format(f));
    img->format = f;
    if (f == VM_IMAGE_BZIMAGE) {
        if (!vm->board->info.irqchip)
            return vm_fail(err, errlen, -EINVAL,
                           "%s is a Linux bzImage, which needs the pc board: use "
                           "--machine pc (or leave --machine out)",
                           img->name);
        if (opt->has_entry)
            return vm_fail(err, errlen, -EINVAL,
                           "--entry does not apply to a Linux bzImage: the boot protocol "
                           "fixes its entry point");
        int r = load_bzimage(vm, img, opt, err, errlen);
        return r ? r : board_tables(vm, img, err, errlen);
    }
    int r;
    switch (f) {
    case VM_IMAGE_BIN:
        r = parse_flat(img, opt, err, errlen);
        break;
    case VM_IMAGE_ELF:
        r = vm_elf_parse(img, err, errlen);
        break;
    case VM_IMAGE_MULTIBOOT:
        r = vm_multiboot_parse(img, err, errlen);
        break;
    default:
        r = -EINVAL;
    }
    if (r)
        return r;
    if (opt->has_entry)
        img->entry = opt->entry;
    if ((r = check_placement(vm, img, err, errlen)))
        return r;
    if (img->mode == VM_MODE_REAL && img->entry >= 0x100000)
        return vm_fail(err, errlen, -ERANGE,
                       "entry point 0x%llx cannot be reached in real mode (it must be "
                       "below 1 MiB); use --mode protected or --mode long",
                       (unsigned long long)img->entry);
    if (!vm_mem_contains(&vm->mem, img->entry, 1))
        return vm_fail(err, errlen, -ERANGE,
                       "entry point 0x%llx of %s is outside guest RAM (0x%llx bytes)",
                       (unsigned long long)img->entry, img->name,
                       (unsigned long long)vm->mem.size);
    struct vm_entry entry = {.mode = img->mode, .rip = img->entry};
    if (f == VM_IMAGE_MULTIBOOT) {
        if ((r = vm_multiboot_info(vm, img, opt->cmdline, err, errlen)))
            return r;
        entry.eax = VM_MULTIBOOT_BOOT_MAGIC;
        entry.ebx = (uint32_t)img->mbi;
    }
    /* Checked: now place it. */
    for (size_t i = 0; i < img->nsegments; i++) {
        const struct vm_segment *s = &img->segments[i];
        uint8_t *dst = vm_mem_ptr(&vm->mem, s->paddr, s->memsz);
        if (!dst)
            continue;
        memcpy(dst, img->data + s->offset, s->filesz);
        memset(dst + s->filesz, 0, s->memsz - s->filesz);
        /* Behind KVM's back: snapshots would not see a reloaded image. */
        vm_mem_mark_dirty(&vm->mem, s->paddr, s->memsz);
    }
    if (f == VM_IMAGE_MULTIBOOT && (r = vm_multiboot_write(vm, img, opt->cmdline)))
        return r;
    if ((r = vm_enter_mode(vm, &vm->cpus[0], &entry)))
        return vm_fail(err, errlen, r, "cannot set up the vCPU for %s mode: %s",
                       vm_mode_name(img->mode), strerror(-r));
    return board_tables(vm, img, err, errlen);
}
