/* End-to-end fixture: a 64-bit guest with symbols whose behaviour is chosen
 * by %edi at entry (kvmstub --reg rdi=N):
 *   0  print "hello\n", count `counter` to 100, read `value`, print "done\n", hlt
 *   1  print "hello\n", then spin forever (for interrupting)
 *   2  print "bye\n" and leave through the debug-exit port with status 42
 *   3  write `flood_bytes` bytes of 'x' to the UART without polling, then hlt
 *   4  spin forever incrementing `counter` (for attach/detach while running)
 *   5  increment `code_var`, which shares its page with the loop, 10 times
 * Before the counting loop of mode 0 runs a sled of twelve nops (`sled`),
 * a place for many breakpoints. */
    .code64
    .text
    .globl _start, count_loop, count_done, spin, read_value, exit_path, flood, halt
_start:
    lea stack_top(%rip), %rsp
    cmp $2, %edi
    je exit_path
    cmp $3, %edi
    je flood
    cmp $4, %edi
    je busy
    cmp $5, %edi
    je code_page
    lea hello(%rip), %rsi
    call puts
    cmp $1, %edi
    je spin
    .globl sled
sled:
    .fill 12, 1, 0x90
count_loop:
    incl counter(%rip)
    cmpl $100, counter(%rip)
    jne count_loop
count_done:
read_value:
    mov value(%rip), %ebx
    lea done_msg(%rip), %rsi
    call puts
halt:
    hlt
    jmp halt
spin:
    pause
    jmp spin
busy:
    incl counter(%rip)
    jmp busy
exit_path:
    lea bye(%rip), %rsi
    call puts
    mov $42, %al
    out %al, $0xf4
    jmp halt
flood:
    mov flood_bytes(%rip), %rcx
    mov $0x3f8, %dx
    mov $'x', %al
1:  out %al, (%dx)
    dec %rcx
    jnz 1b
    jmp halt

code_page:
    mov $10, %ecx
1:  incl code_var(%rip)
    loop 1b
    jmp halt
    .balign 4
    .globl code_var
code_var: .long 0

/* puts: print the NUL-terminated string at %rsi */
puts:
    push %rax
    push %rdx
    mov $0x3f8, %dx
1:  lodsb
    test %al, %al
    jz 2f
    out %al, (%dx)
    jmp 1b
2:  pop %rdx
    pop %rax
    ret

    .data
    .balign 4096
    .globl counter, value, flood_bytes
counter:     .long 0
value:       .long 0x1234
flood_bytes: .quad 1000000
hello:       .asciz "hello\n"
done_msg:    .asciz "done\n"
bye:         .asciz "bye\n"

    .bss
    .balign 16
    .skip 8192
stack_top:
