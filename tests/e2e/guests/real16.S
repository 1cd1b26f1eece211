/* End-to-end fixture, a flat real-mode binary at 0x1000: bumps the word at
 * 0x3000 five times, prints "R", halts. */
    .code16
    .text
    .globl _start
_start:
    mov $5, %cx
1:  incw 0x3000          /* at 0x1003 */
    loop 1b
    mov $0x3f8, %dx
    mov $'R', %al
    out %al, (%dx)
    hlt
