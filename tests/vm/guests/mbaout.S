/* Multiboot fixture in flat form: the header's address fields (flag 16)
 * tell the loader where it goes; bss_end asks for zeroed memory. */
    .code32
    .text
    .globl _start
_start:
    jmp entry
    .align 4
header:
    .long 0x1BADB002
    .long 0x00010000
    .long -(0x1BADB002 + 0x00010000)
    .long header
    .long _start
    .long 0
    .long _start + 0x3000
    .long entry
entry:
    mov %eax, 0x500
    mov $msg, %esi
    mov $0x3f8, %dx
1:  lodsb
    test %al, %al
    jz 2f
    out %al, (%dx)
    jmp 1b
2:  hlt
    jmp 2b
msg: .asciz "a.out kludge\n"
