/* protected: a 32-bit protected-mode program, as an ELF32 executable.
 *
 * kvmstub loads an ELF32 file at its physical addresses (1 MiB here) and
 * enters it in 32-bit protected mode with flat 4 GiB code and data segments
 * and paging off, so addresses are plain physical addresses:
 *
 *     kvmstub build/examples/protected.elf
 *
 * It computes two things and prints them on the serial port:
 *   - the primes below 100, by trial division;
 *   - the Adler-32 checksum of "Wikipedia" (0x11e60398, the example of the
 *     Wikipedia article on Adler-32, so the result can be checked).
 * Then it halts. Its labels (found_prime, checksum_ready, done, ...) are
 * global symbols so that gdb can break on them by name. */
    .code32
    .text
    .globl _start
_start:
    /* kvmstub leaves ESP at the top of RAM, but a boot loader promises
     * nothing about the stack: use our own. */
    mov $stack_top, %esp
    mov $title, %esi
    call puts

    /* Print every prime below 100; EBX is the candidate. */
    mov $2, %ebx
next_candidate:
    mov %ebx, %eax
    call is_prime
    test %eax, %eax
    jz not_prime
    .globl found_prime
found_prime:                /* EBX is prime */
    incl prime_count
    cmpl $1, prime_count
    je 1f                   /* a space before every prime but the first */
    mov $' ', %al
    call putc
1:  mov %ebx, %eax
    call print_dec
not_prime:
    inc %ebx
    cmp $100, %ebx
    jb next_candidate

    mov $'\n', %al
    call putc
    mov prime_count, %eax
    call print_dec
    mov $count_text, %esi
    call puts

    /* Checksum the text. */
    mov $text, %esi
    mov $text_len, %ecx
    call adler32
    .globl checksum_ready
checksum_ready:             /* EAX holds the checksum */
    mov %eax, checksum
    mov $adler_text, %esi
    call puts
    mov checksum, %eax
    call print_hex
    mov $'\n', %al
    call putc

    .globl done
done:
    hlt                     /* gdb sees a SIGTRAP stop here */
    jmp done                /* hlt returns on an interrupt: halt again */

/* is_prime: EAX = 1 if EAX (at least 2) is prime, else 0. Tries every
 * divisor d with d * d <= n. */
    .globl is_prime
is_prime:
    push %ebx
    push %ecx
    push %edx
    mov %eax, %ecx          /* ECX = n */
    mov $2, %ebx            /* EBX = d */
1:  mov %ebx, %eax
    mul %ebx                /* EDX:EAX = d * d */
    cmp %ecx, %eax
    ja 2f                   /* d * d > n: no divisor left, n is prime */
    mov %ecx, %eax
    xor %edx, %edx
    div %ebx                /* EDX = n % d */
    test %edx, %edx
    jz 3f                   /* d divides n */
    inc %ebx
    jmp 1b
2:  mov $1, %eax
    jmp 4f
3:  xor %eax, %eax
4:  pop %edx
    pop %ecx
    pop %ebx
    ret

/* adler32: EAX = Adler-32 of the ECX bytes at ESI. Two running sums modulo
 * 65521 (the largest prime below 2^16): A = 1 + the bytes, B = the sum of
 * every A. A < 65521 before a byte (at most 255) is added, and B < 65521
 * before A is, so one subtraction keeps each in range without a division. */
    .globl adler32
adler32:
    push %ebx
    push %edi
    mov $1, %ebx            /* EBX = A */
    xor %edi, %edi          /* EDI = B */
1:  jecxz 2f
    movzbl (%esi), %eax
    inc %esi
    add %eax, %ebx
    cmp $65521, %ebx
    jb 3f
    sub $65521, %ebx
3:  add %ebx, %edi
    cmp $65521, %edi
    jb 4f
    sub $65521, %edi
4:  dec %ecx
    jmp 1b
2:  mov %edi, %eax
    shl $16, %eax
    or %ebx, %eax           /* the checksum is B:A */
    pop %edi
    pop %ebx
    ret

/* print_dec: writes EAX in decimal. Divides by 10 until nothing is left,
 * pushing the remainders (the digits, last first), then pops them. */
    .globl print_dec
print_dec:
    push %ebx
    push %ecx
    push %edx
    mov $10, %ebx
    xor %ecx, %ecx          /* ECX = number of digits pushed */
1:  xor %edx, %edx
    div %ebx
    push %edx
    inc %ecx
    test %eax, %eax
    jnz 1b
2:  pop %eax
    add $'0', %al
    call putc
    loop 2b
    pop %edx
    pop %ecx
    pop %ebx
    ret

/* print_hex: writes EAX as eight hexadecimal digits. */
    .globl print_hex
print_hex:
    push %ecx
    push %edx
    mov %eax, %edx
    mov $8, %ecx
1:  rol $4, %edx            /* next nibble, most significant first */
    mov %edx, %eax
    and $0xf, %eax
    mov hexdigits(%eax), %al
    call putc
    loop 1b
    pop %edx
    pop %ecx
    ret

/* puts: writes the NUL-terminated string at ESI. */
    .globl puts
puts:
    push %esi
1:  lodsb
    test %al, %al
    jz 2f
    call putc
    jmp 1b
2:  pop %esi
    ret

/* putc: writes AL to the UART at 0x3f8 once its transmit register is empty
 * (bit 5 of the line status register, 0x3fd). */
    .globl putc
putc:
    push %edx
    push %eax
    mov $0x3fd, %dx
1:  in (%dx), %al
    test $0x20, %al
    jz 1b
    pop %eax
    mov $0x3f8, %dx
    out %al, (%dx)
    pop %edx
    ret

    .section .rodata
title:      .asciz "protected mode: the primes below 100:\n"
count_text: .asciz " primes\n"
adler_text: .asciz "adler32(\"Wikipedia\") = 0x"
hexdigits:  .ascii "0123456789abcdef"
    .globl text
text:       .ascii "Wikipedia"
    .set text_len, . - text

    .data
    .globl prime_count, checksum
prime_count: .long 0
checksum:    .long 0

    .bss
    .balign 16
stack:      .skip 4096
stack_top:
