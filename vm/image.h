/* vm/image.h: guest images: flat binaries, ELF32/ELF64 executables,
 * multiboot (version 1) kernels and Linux bzImages.
 *
 * An image is read into memory once (vm_image_open) and can be loaded into a
 * VM any number of times (vm_image_load; "monitor reset" loads it again).
 * Loading validates everything first: file bounds, segment sizes, RAM
 * limits, the boot area. A refused image leaves the VM untouched, and the
 * message says what is wrong and what to do.
 *
 *  - flat: copied to the load address (default 0x1000), entered there (or at
 *    the given entry) in the given mode (default real).
 *  - ELF: PT_LOAD segments at their physical addresses, bss zeroed; entry
 *    from the header (its physical address when the segment's virtual and
 *    physical addresses differ); ELF64 enters long mode, ELF32 protected.
 *  - multiboot: the header in the first 8 KiB; ELF segments, or the a.out
 *    kludge addresses when flag 16 is set; entered in 32-bit protected mode
 *    with EAX=0x2BADB002 and EBX pointing at the information structure
 *    (memory sizes, memory map, command line, boot loader name).
 *  - bzImage (the pc board only): Linux's 64-bit boot protocol
 *    (vm/bzimage.h): the setup header copied into a zeroed zero page, the
 *    e820 map, the command line VM_LINUX_CMDLINE followed by the one given,
 *    an initrd below the kernel's initrd_addr_max; entered in long mode at
 *    the 64-bit entry with RSI at the zero page.
 * On the pc board the board's firmware tables (an MP table) are written
 * too, after the image (board_pc.c). */
#ifndef VM_IMAGE_H
#define VM_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vm.h"

#define VM_IMAGE_MAX_FILE (1ull << 30)
#define VM_IMAGE_MAX_SEGMENTS 64
#define VM_DEFAULT_LOAD 0x1000u
#define VM_MULTIBOOT_MAGIC 0x1badb002u
#define VM_MULTIBOOT_BOOT_MAGIC 0x2badb002u

enum vm_image_format {
    VM_IMAGE_AUTO,
    VM_IMAGE_BIN,
    VM_IMAGE_ELF,
    VM_IMAGE_MULTIBOOT,
    VM_IMAGE_BZIMAGE,
};

/* What a Linux kernel is told on the pc board before --cmdline: the serial
 * console, no ACPI tables or PCI bus to look for (the board has neither;
 * the CPUs and interrupt routing come from the MP table), one legacy UART,
 * an i8042 without mouse, multiplexer or PnP probing, reset through the
 * i8042 (which ends the VM) and a reset one second after a panic, as
 * kvmtool and firecracker do. Later words override earlier ones. */
#define VM_LINUX_CMDLINE                                                                          \
    "console=ttyS0 acpi=off pci=off 8250.nr_uarts=1 i8042.noaux i8042.nomux i8042.nopnp "         \
    "i8042.dumbkbd reboot=k panic=1"

struct vm_image_options {
    enum vm_image_format format;
    bool has_mode; /* flat binaries only */
    enum vm_mode mode;
    bool has_load; /* flat binaries only */
    uint64_t load;
    bool has_entry;
    uint64_t entry;
    const char *cmdline; /* multiboot; bzImage (after VM_LINUX_CMDLINE); NULL for none */
    const void *initrd;  /* bzImage: an initial RAM disk, or NULL */
    size_t initrd_size;
    const char *initrd_name; /* for messages */
};

struct vm_segment {
    uint64_t paddr;
    uint64_t offset; /* in the file */
    uint64_t filesz;
    uint64_t memsz;
};

struct vm_image {
    char *name; /* as given, for messages and the multiboot command line */
    uint8_t *data;
    size_t size;
    /* Filled by vm_image_load: */
    enum vm_image_format format;
    enum vm_mode mode;
    uint64_t entry;
    uint64_t mbi;  /* multiboot information address, or 0 */
    /* bzImage: where the initrd went (size 0: none) and the command line
     * the kernel got (malloc'd; NULL for other formats). */
    uint64_t initrd_addr, initrd_size;
    char *cmdline;
    struct vm_segment segments[VM_IMAGE_MAX_SEGMENTS];
    size_t nsegments;
};

int vm_image_open(struct vm_image *img, const char *path, char *err, size_t errlen);
/* The same for any file kvmstub reads whole (an initrd); what names it in
 * messages. */
int vm_image_open_file(struct vm_image *img, const char *path, const char *what, char *err,
                       size_t errlen);
int vm_image_from_buffer(struct vm_image *img, const void *data, size_t size, const char *name);
void vm_image_free(struct vm_image *img);

/* Parses and validates img against opt, then copies it into the VM's RAM
 * and sets the vCPU up at its entry. */
int vm_image_load(struct vm *vm, struct vm_image *img, const struct vm_image_options *opt,
                  char *err, size_t errlen);

const char *vm_image_format_name(enum vm_image_format f);
/* The format --format auto would pick for img. */
enum vm_image_format vm_image_detect(const struct vm_image *img);

#endif
