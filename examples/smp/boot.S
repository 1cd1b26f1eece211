/* boot.S: the multiboot entry of the smp example, for the boot processor
 * (BSP), and the way in for the other processors (APs).
 *
 * An AP starts where its startup IPI (SIPI) says: in 16-bit real mode at
 * CS:IP = vector * 0x100 : 0, that is at physical vector * 4096, below
 * 1 MiB. The BSP copies the trampoline (trampoline_start..trampoline_end)
 * there; it switches to 32-bit protected mode with the kernel's GDT and
 * jumps to ap_start32 in the kernel proper, which takes the stack the BSP
 * prepared and calls ap_main(). */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003 /* modules page-aligned; memory information */

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
    mov $bsp_stack_top, %esp
    xor %ebp, %ebp
    cld
    push %ebx                   /* bsp_main(magic, multiboot information) */
    push %eax
    call bsp_main               /* ends the guest itself */
1:  cli
    hlt
    jmp 1b
    .cfi_endproc
    .size _start, . - _start

/* A counter on the code page every CPU runs (smp.c: count_once): a
 * watchpoint on it traps that page, which the tests use. The guest runs
 * without paging, so code pages are writable. */
    .globl code_page_count
    .type code_page_count, @object
    .balign 4
code_page_count:
    .long 0
    .size code_page_count, 4

/* The trampoline runs at whatever page it was copied to, with CS = that
 * page's segment and IP = 0: it addresses its own data relative to its
 * start, through DS = CS. */
    .code16
    .globl trampoline_start, trampoline_end
trampoline_start:
    cli
    mov %cs, %ax
    mov %ax, %ds
    /* lgdtl: the 32-bit form, which loads all 32 bits of the base. */
    lgdtl trampoline_gdtr - trampoline_start
    mov %cr0, %eax
    or $1, %eax                 /* PE: protected mode */
    mov %eax, %cr0
    ljmpl $0x08, $ap_start32    /* reload CS from the GDT; 32-bit code from here */
    .balign 4
trampoline_gdtr:
    .word 3 * 8 - 1
    .long pc_gdt
trampoline_end:

    .code32
    .type ap_start32, @function
ap_start32:
    .cfi_startproc
    .cfi_undefined eip
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %fs
    mov %ax, %gs
    mov %ax, %ss
    mov ap_stack_top, %esp      /* the BSP set it before the SIPI */
    xor %ebp, %ebp
    cld
    call ap_main                /* returns when its work is done */
1:  cli
    hlt
    jmp 1b
    .cfi_endproc
    .size ap_start32, . - ap_start32

    .bss
    .balign 16
bsp_stack:
    .skip 16384
bsp_stack_top:
