/* boot.S: the multiboot header and entry point of the multiboot example.
 *
 * A multiboot (version 1) boot loader, such as GRUB legacy, qemu -kernel or
 * kvmstub, looks for this header in the first 8 KiB of the file: the magic
 * number, flags saying what the kernel needs, and a checksum that makes the
 * three add up to zero. It then loads the ELF segments, and enters _start in
 * 32-bit protected mode (paging off, flat segments) with
 *     EAX = 0x2BADB002, proof that a multiboot loader started us, and
 *     EBX = the physical address of the multiboot information structure. */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003 /* bit 0: modules page-aligned; bit 1: give us memory info */

    .section .multiboot, "a"
    .balign 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .code32
    .text
    .globl _start
    .type _start, @function
_start:
    .cfi_sections .debug_frame
    .cfi_startproc
    .cfi_undefined eip          /* the outermost frame: backtraces end here */
    /* The loader gives no stack; it has zeroed .bss (the ELF memory size
     * past the file size), as the multiboot specification requires. */
    mov $stack_top, %esp
    xor %ebp, %ebp
    cld
    /* kmain(magic, info): the i386 C convention passes arguments on the
     * stack, pushed last first. */
    push %ebx
    push %eax
    call kmain
    .globl halt
halt:
    hlt
    jmp halt
    .cfi_endproc
    .size _start, . - _start

    .bss
    .balign 16
stack:
    .skip 16384
stack_top:
