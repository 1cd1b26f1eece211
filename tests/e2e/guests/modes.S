/* End-to-end fixture: a boot sector's journey, loaded at 0x7c00 and entered
 * in real mode. It leaves a mark in each mode (a register value at a
 * labelled nop), switches real -> 32-bit protected -> 64-bit long mode the
 * way a boot loader does (GDT, CR0.PE, far jump; page tables, CR4.PAE,
 * EFER.LME, CR0.PG, far jump), and halts. gdb follows it with one
 * connection: registers before and after each switch, a breakpoint in
 * each mode. */
    .code16
    .text
    .globl _start, real_mark, pm_mark, lm_mark, lm_done
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %ss
    mov $0x7c00, %sp
    mov $0x1111, %ax
real_mark:
    nop
    lgdtl gdt_desc
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $0x08, $pm_entry

    .code32
pm_entry:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $0x2222, %eax
pm_mark:
    nop
    /* Page tables at 0x10000: PML4 -> PDPT -> PD of 2 MiB pages, the
     * first GiB identity-mapped. */
    mov $0x10000, %edi
    xor %eax, %eax
    mov $(3 * 4096 / 4), %ecx
    rep stosl
    movl $0x11003, 0x10000
    movl $0x12003, 0x11000
    mov $0x12000, %edi
    mov $0x83, %eax
    mov $512, %ecx
1:  mov %eax, (%edi)
    add $0x200000, %eax
    add $8, %edi
    loop 1b
    mov $0x10000, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $0x20, %eax          /* PAE */
    mov %eax, %cr4
    mov $0xc0000080, %ecx   /* EFER */
    rdmsr
    or $0x100, %eax         /* LME */
    wrmsr
    mov %cr0, %eax
    or $0x80000000, %eax    /* PG */
    mov %eax, %cr0
    ljmp $0x18, $lm_entry

    .code64
lm_entry:
    mov $0x3333, %rax
    movabs $0x123456789a, %r9
lm_mark:
    nop
lm_done:
    hlt
    jmp lm_done

    .balign 8
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff /* 0x08: 32-bit code */
    .quad 0x00cf92000000ffff /* 0x10: data */
    .quad 0x00af9a000000ffff /* 0x18: 64-bit code */
gdt_desc:
    .word gdt_desc - gdt - 1
    .long gdt
