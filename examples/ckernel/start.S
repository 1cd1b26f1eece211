/* start.S: the entry point of ckernel. C needs a stack, and expects static
 * variables without an initial value to start at zero; kvmstub (like a boot
 * loader) promises neither in a way we want to rely on, so _start provides
 * both, calls main, and halts for good when main returns. */
    .code64
    .section .text.boot, "ax"   /* ckernel.ld places this first */
    .globl _start
    .type _start, @function
_start:
    /* Call-frame information for gdb: "the return address is undefined"
     * marks _start as the outermost frame, so backtraces end here cleanly
     * instead of wandering into whatever lies above the stack. */
    .cfi_sections .debug_frame
    .cfi_startproc
    .cfi_undefined rip
    cld                         /* the ABI promises C code DF = 0 */
    /* Clear .bss: rep stosb stores AL into RCX bytes at RDI. */
    lea __bss_start(%rip), %rdi
    lea __bss_end(%rip), %rcx
    sub %rdi, %rcx
    xor %eax, %eax
    rep stosb
    lea stack_top(%rip), %rsp   /* 16-byte aligned, as the ABI wants at a call */
    xor %ebp, %ebp              /* no caller frame */
    call main
    .globl halt
halt:
    hlt                         /* gdb sees a SIGTRAP stop here */
    jmp halt                    /* an interrupt would end hlt: halt again */
    .cfi_endproc
    .size _start, . - _start

    .bss
    .balign 16
stack:
    .skip 16384
stack_top:
