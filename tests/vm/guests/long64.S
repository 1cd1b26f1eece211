/* ELF64 fixture: proves it runs in 64-bit mode, prints, halts. */
    .code64
    .text
    .globl _start
_start:
    movabs $0x1122334455667788, %rax
    mov %rax, result(%rip)
    lea msg(%rip), %rsi
    mov $0x3f8, %dx
1:  lodsb
    test %al, %al
    jz 2f
    out %al, (%dx)
    jmp 1b
2:  hlt
    jmp 2b

    .data
    .globl result
result: .quad 0
msg:    .asciz "long mode\n"
