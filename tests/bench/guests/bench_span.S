/* bench_span: the reverse-execution benchmark's guest (revbench).
 *
 * A boot sector in real mode, loaded by kvmstub at 0x7c00 as a flat binary.
 * Each pass of the outer loop runs the inner loop 3333 times (three
 * instructions each, one of them a write to memory) and then crosses
 * span_bp, placed at offset 0x80 so that revbench knows its address
 * (0x7c80) without reading symbols: 100 breakpoint stops span about a
 * million guest instructions. The inner loop counts in memory at 0x600,
 * which tells revbench how many instructions really ran. */
    .code16
    .text
    .globl _start, span_bp

    .set span_counter, 0x600

_start:
    cli
    cld
    ljmp $0, $1f
1:  xor %ax, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $0x7c00, %sp
outer:
    mov $3333, %cx
inner:
    incl span_counter
    dec %cx
    jnz inner
    jmp span_bp

    .org 0x80
span_bp:
    nop
    jmp outer

    .org 510
    .word 0xaa55
