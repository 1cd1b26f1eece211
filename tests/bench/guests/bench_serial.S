/* bench_serial: the serial flood guest of the benchmark.
 *
 * A boot sector like bench_loop. It writes the printable ASCII cycle
 * 0x20..0x7e to the UART data port (COM1, 0x3f8) forever and never polls
 * the line status register: a stub may then batch the writes (KVM's
 * coalesced PIO) instead of taking one exit per byte, which is the cost the
 * serial figure measures. rspbench --serial-seq checks that the bytes
 * arriving in 'O' packets continue this cycle without a gap.
 *
 * bench_counter counts whole cycles (one memory increment per 95 bytes), so
 * that rspbench --run-to can tell that the guest runs its loop when a stub's
 * breakpoints do not fire. */
    .code16
    .text
    .globl _start, bench_flood, bench_counter

    .set bench_counter, 0x600   /* as in bench_loop; not zeroed on purpose */

_start:
    cli
    cld
    ljmp $0, $1f            /* some BIOSes enter at 07c0:0000; run at 0000:7cxx */
1:  xor %ax, %ax
    mov %ax, %ds
    mov %ax, %ss
    mov $0x7c00, %sp
    mov $0x3f8, %dx
    mov $0x20, %al
bench_flood:
    out %al, %dx
    inc %al
    cmp $0x7f, %al
    jb bench_flood
    incl bench_counter
    mov $0x20, %al
    jmp bench_flood

    .org 510
    .word 0xaa55
