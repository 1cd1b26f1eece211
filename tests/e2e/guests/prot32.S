/* End-to-end fixture, ELF32 in protected mode: bumps `pcount` five times
 * in `ploop`, prints "P", halts. */
    .code32
    .text
    .globl _start, ploop, pdone
_start:
    mov $5, %ecx
ploop:
    incl pcount
    loop ploop
pdone:
    mov $0x3f8, %dx
    mov $'P', %al
    out %al, (%dx)
1:  hlt
    jmp 1b
    .data
    .balign 4096
    .globl pcount
pcount: .long 0
