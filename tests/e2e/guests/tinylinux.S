/* End-to-end fixture: the 64-bit entry of a "Linux kernel" small enough to
 * read. The test wraps it in a bzImage setup header (test_e2e_pc.c); the
 * loader places it 0x200 bytes into the protected-mode kernel, the 64-bit
 * entry, with RSI at the zero page. It prints what the boot protocol
 * handed over:
 *   cmdline: <the command line at cmd_line_ptr>
 *   initrd: <the first 16 bytes at ramdisk_image> (<ramdisk_size> bytes)
 *   e820: <entries>
 * then does what the initrd's first byte says:
 *   'R'  ask the i8042 for a reset (what Linux's reboot=k does)
 *   'T'  triple-fault (an empty IDT, then ud2)
 *   'H'  halt with interrupts off, forever (an idle CPU for Ctrl-C)
 *   else leave through the debug-exit port with the e820 entry count. */
    .code64
    .text
    .globl _start
_start:
    mov %rsi, %rbx                  /* the zero page */
    lea msg_cmdline(%rip), %rsi
    call puts
    mov 0x228(%rbx), %esi           /* cmd_line_ptr */
    call puts
    lea msg_initrd(%rip), %rsi
    call puts
    mov 0x218(%rbx), %esi           /* ramdisk_image */
    mov $16, %ecx
1:  mov (%rsi), %al
    call putc
    inc %rsi
    loop 1b
    lea msg_open(%rip), %rsi
    call puts
    mov 0x21c(%rbx), %eax           /* ramdisk_size */
    call putdec
    lea msg_bytes(%rip), %rsi
    call puts
    movzbl 0x1e8(%rbx), %eax        /* e820_entries */
    call putdec
    mov $'\n', %al
    call putc

    mov 0x218(%rbx), %esi
    mov (%rsi), %al
    cmp $'R', %al
    je reset
    cmp $'T', %al
    je triple
    cmp $'H', %al
    je idle
    movzbl 0x1e8(%rbx), %eax
    mov $0xf4, %dx
    out %al, %dx
    hlt

reset:
    mov $0xfe, %al
    out %al, $0x64
    hlt

triple:
    lidt null_idt(%rip)
    ud2

idle:
    cli
2:  hlt
    jmp 2b

/* puts: the NUL-terminated string at %rsi. */
puts:
    push %rsi
1:  mov (%rsi), %al
    test %al, %al
    jz 2f
    call putc
    inc %rsi
    jmp 1b
2:  pop %rsi
    ret

putc:
    push %rdx
    mov $0x3f8, %dx
    out %al, %dx
    pop %rdx
    ret

/* putdec: %eax in decimal. */
putdec:
    push %rbx
    push %rdx
    mov $10, %ebx
    xor %ecx, %ecx
1:  xor %edx, %edx
    div %ebx
    push %rdx
    inc %ecx
    test %eax, %eax
    jnz 1b
2:  pop %rax
    add $'0', %al
    call putc
    loop 2b
    pop %rdx
    pop %rbx
    ret

    .data
null_idt:
    .word 0
    .quad 0
msg_cmdline: .asciz "cmdline: "
msg_initrd: .asciz "\ninitrd: "
msg_open: .asciz " ("
msg_bytes: .asciz " bytes)\ne820: "
