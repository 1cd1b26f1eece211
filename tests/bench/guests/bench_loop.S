/* bench_loop: the stepping and breakpoint guest of the benchmark.
 *
 * A boot sector (real mode, 512 bytes, 0x55AA at offset 510), so QEMU's BIOS
 * boots it from a raw disk image at 0x7c00 and kvmstub loads the very same
 * bytes there as a flat binary: both stubs then run identical code.
 *
 * The loop counts its passes in memory at bench_counter, so rspbench
 * (--counter-addr) can check that single steps and breakpoint stops really
 * ran the guest instead of being answered from thin air. bench_bp is the
 * address for --bp-addr: every pass crosses it exactly once. */
    .code16
    .text
    .globl _start, bench_loop, bench_bp, bench_counter

    /* Free conventional memory under any BIOS, well away from this sector;
     * not zeroed on purpose: rspbench only looks at differences. */
    .set bench_counter, 0x600

_start:
    cli                     /* no timer interrupts between steps under QEMU */
    cld
    ljmp $0, $1f            /* some BIOSes enter at 07c0:0000; run at 0000:7cxx */
1:  xor %ax, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $0x7c00, %sp
    xor %bx, %bx
bench_loop:
bench_bp:
    incl bench_counter
    inc %ax
    add %ax, %bx
    jmp bench_loop

    .org 510
    .word 0xaa55
