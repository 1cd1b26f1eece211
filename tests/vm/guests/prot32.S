/* ELF32 fixture: runs in 32-bit protected mode, prints, halts. */
    .code32
    .text
    .globl _start
_start:
    mov %cr0, %eax
    mov %eax, cr0_seen
    mov $msg, %esi
    mov $0x3f8, %dx
1:  lodsb
    test %al, %al
    jz 2f
    out %al, (%dx)
    jmp 1b
2:  hlt
    jmp 2b

    .data
    .globl cr0_seen
cr0_seen: .long 0
msg:      .asciz "protected mode\n"
