/* demo: the guest of the classic "Using the KVM API" walk-through, here
 * under a debugger.
 *
 * Twelve bytes of 16-bit real-mode code, loaded and entered at 0x1000 (the
 * default of a flat binary). It adds AL and BL, turns the one-digit sum into
 * its ASCII character, writes it and a newline to the serial port, and
 * halts. Nothing sets AL and BL: the host does, before the guest starts, the
 * way the original demo's host program did with KVM_SET_REGS:
 *
 *     kvmstub --reg rax=2 --reg rbx=2 build/examples/demo.bin
 *
 * so the guest prints "4". Writing to I/O port 0x3f8 (the data register of
 * the first PC serial port, COM1) makes the CPU leave the guest (a KVM
 * "I/O exit"); kvmstub's UART model then hands the byte to gdb as console
 * output.
 *
 * The build checks that demo.bin is exactly these 12 bytes. */
    .code16                 /* the CPU starts in real mode: 16-bit code */
    .text
    .globl _start
_start:
    mov $0x3f8, %dx         /* DX = port of the UART's data register */
    add %bl, %al            /* AL = 2 + 2 = 4 */
    add $'0', %al           /* 4 -> '4': the digits are consecutive in ASCII */
    out %al, (%dx)          /* transmit '4' */
    mov $'\n', %al
    out %al, (%dx)          /* and a newline */
    .globl done
done:
    hlt                     /* stop; kvmstub reports this to gdb as SIGTRAP */
