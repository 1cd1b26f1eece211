/* multiboot: a multiboot kernel in C that prints what its boot loader told
 * it: the command line, the memory sizes and the memory map.
 *
 *     kvmstub --cmdline "hello from kvmstub" build/examples/multiboot.elf
 *
 * kvmstub, like GRUB, passes the kernel's own file name as the first word
 * of the command line, then the text given with --cmdline. */
#include "multiboot.h"
#include "uart.h"

/* What kmain found, kept in globals for gdb to look at. */
struct multiboot_info *boot_info;
const char *arguments; /* the command line after the kernel's name */
unsigned int mmap_entries;

/* Skips the first word of the command line, and the spaces after it. */
static const char *skip_kernel_name(const char *cmdline)
{
    while (*cmdline && *cmdline != ' ')
        cmdline++;
    while (*cmdline == ' ')
        cmdline++;
    return cmdline;
}

/* Addresses in 8 hexadecimal digits, or 16 when they need more. */
static void print_address(uint64_t a)
{
    uart_puts("0x");
    uart_put_hex(a, a >> 32 ? 16 : 8);
}

static void print_mmap(const struct multiboot_info *mbi)
{
    uintptr_t p = mbi->mmap_addr;
    uintptr_t end = p + mbi->mmap_length;

    uart_puts("memory map:\n");
    while (p < end) {
        const struct multiboot_mmap_entry *e = (const struct multiboot_mmap_entry *)p;
        uart_puts("  ");
        print_address(e->addr);
        uart_putc('-');
        print_address(e->addr + e->len - 1);
        uart_puts(e->type == 1 ? " available\n" : " reserved\n");
        mmap_entries++;
        p += e->size + sizeof(e->size);
    }
}

void kmain(uint32_t magic, struct multiboot_info *mbi)
{
    uart_init();
    if (magic != MULTIBOOT_BOOTLOADER_MAGIC) {
        uart_puts("multiboot: not started by a multiboot loader (EAX = 0x");
        uart_put_hex(magic, 8);
        uart_puts(")\n");
        return;
    }
    boot_info = mbi;
    if (mbi->flags & MULTIBOOT_INFO_LOADER_NAME) {
        uart_puts("multiboot: booted by ");
        uart_puts((const char *)mbi->boot_loader_name);
        uart_putc('\n');
    }
    if (mbi->flags & MULTIBOOT_INFO_CMDLINE) {
        const char *cmdline = (const char *)mbi->cmdline;
        arguments = skip_kernel_name(cmdline);
        uart_puts("command line: ");
        uart_puts(cmdline);
        uart_puts("\narguments: ");
        uart_puts(arguments);
        uart_putc('\n');
    }
    if (mbi->flags & MULTIBOOT_INFO_MEMORY) {
        uart_puts("memory: lower ");
        uart_put_dec(mbi->mem_lower);
        uart_puts(" KiB, upper ");
        uart_put_dec(mbi->mem_upper);
        uart_puts(" KiB\n");
    }
    if (mbi->flags & MULTIBOOT_INFO_MEM_MAP)
        print_mmap(mbi);
}
