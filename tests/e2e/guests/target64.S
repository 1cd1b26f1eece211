/* End-to-end fixture: a 64-bit guest with symbols whose behaviour is chosen
 * by %edi at entry (kvmstub --reg rdi=N):
 *   0  print "hello\n", count `counter` to 100, read `value`, print "done\n", hlt
 *   1  print "hello\n", then spin forever (for interrupting)
 *   2  print "bye\n" and leave through the debug-exit port with status 42
 *   3  write `flood_bytes` bytes of 'x' to the UART without polling, then hlt
 *   4  spin forever incrementing `counter` (for attach/detach while running)
 *   5  increment `code_var`, which shares its page with the loop, 10 times
 *   6  ud2 with no IDT: the fault cannot be delivered, the CPU shuts down
 *   7  jump to 0xc0000000, where there is no RAM
 *   8  write and read 1000 ports that have no device (0x400-0x7e7), then hlt
 *   9  echo what arrives on the UART, with "> " in front, until a newline
 * Mode 3 writes %rsi bytes instead when %rsi is not zero. Before the counting loop of mode 0 runs a sled of twelve nops (`sled`),
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
    cmp $6, %edi
    je fault_ud2
    cmp $7, %edi
    je fault_unbacked
    cmp $8, %edi
    je odd_ports
    cmp $9, %edi
    je echo
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
/* rep outsb, a page at a time: the way a driver moves a buffer out fast */
flood:
    mov flood_bytes(%rip), %rbx
    test %rsi, %rsi
    cmovnz %rsi, %rbx
    mov $0x3f8, %dx
1:  mov $4096, %rcx
    cmp %rcx, %rbx
    cmovb %rbx, %rcx
    sub %rcx, %rbx
    lea xbuf(%rip), %rsi
    rep outsb
    test %rbx, %rbx
    jnz 1b
    jmp halt

    .globl fault_ud2, fault_unbacked, odd_ports
fault_ud2:
    mov $0x5a5a5a5a, %eax
    ud2
fault_unbacked:
    mov $0xc0000000, %eax
    jmp *%rax
odd_ports:
    mov $0x400, %edx
1:  out %al, (%dx)
    in (%dx), %al
    inc %edx
    cmp $0x7e8, %edx
    jne 1b
    jmp halt

/* Polled input: LSR bit 0 says a byte waits in RBR. */
    .globl echo
echo:
    mov $0x3f8, %dx
    mov $'>', %al
    out %al, (%dx)
    mov $' ', %al
    out %al, (%dx)
1:  mov $0x3fd, %dx
    in (%dx), %al
    test $1, %al
    jz 1b
    mov $0x3f8, %dx
    in (%dx), %al
    out %al, (%dx)
    cmp $'\n', %al
    jne 1b
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
    .balign 4096
xbuf:        .fill 4096, 1, 'x'

    .bss
    .balign 16
    .skip 8192
stack_top:
