/* Multiboot ELF32 fixture: records EAX/EBX and prints its command line. */
    .code32
    .text
    .globl _start
_start:
    jmp entry
    .align 4
    .long 0x1BADB002
    .long 0x00000003
    .long -(0x1BADB002 + 0x00000003)
entry:
    mov %eax, mb_magic
    mov %ebx, mb_info
    mov 16(%ebx), %esi
    mov $0x3f8, %dx
1:  lodsb
    test %al, %al
    jz 2f
    out %al, (%dx)
    jmp 1b
2:  mov $'\n', %al
    out %al, (%dx)
    hlt
    jmp 2b

    .data
    .globl mb_magic, mb_info
mb_magic: .long 0
mb_info:  .long 0
