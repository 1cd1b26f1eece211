/* start.S: the entry point of selftest. It gives C a stack, runs main, and
 * hands main's return value to the host through the debug-exit port.
 *
 * Writing a value V to I/O port 0xf4 ends the guest: kvmstub tells gdb
 * "exited with code V" (gdb's $_exitcode), and exits with status V itself
 * when run as "kvmstub --run". Unlike QEMU's isa-debug-exit device, the
 * value is not turned into (V << 1) | 1. */
#define DEBUG_EXIT_PORT 0xf4

    .code64
    .text
    .globl _start
    .type _start, @function
_start:
    .cfi_sections .debug_frame
    .cfi_startproc
    .cfi_undefined rip          /* the outermost frame: backtraces end here */
    cld
    lea stack_top(%rip), %rsp
    xor %ebp, %ebp
    call main                   /* EAX = the number of failed checks */
    .globl report
report:
    outb %al, $DEBUG_EXIT_PORT  /* the guest ends here */
1:  hlt                         /* not reached under kvmstub */
    jmp 1b
    .cfi_endproc
    .size _start, . - _start

    .bss
    .balign 16
stack:
    .skip 16384
stack_top:
