/* bootsector: a real-mode program in the shape of a PC boot sector.
 *
 * A BIOS loads the first 512 bytes of a disk at 0x7c00 and jumps there in
 * 16-bit real mode, provided the sector ends in the signature bytes 0x55
 * 0xAA. kvmstub has no BIOS, so it is told where to load the sector:
 *
 *     kvmstub --load 0x7c00 build/examples/bootsector.bin
 *
 * The program prints a greeting on the serial port, then counts forever,
 * printing the counter in hexadecimal ("count 0001", "count 0002", ...).
 * Without a BIOS there is no "int $0x10" to print with, so it drives the
 * UART (COM1, I/O ports 0x3f8-0x3ff) directly, as a kernel would.
 *
 * In real mode an address is segment * 16 + offset. Every segment register
 * is 0 here, so offsets equal addresses and gdb's $pc matches the symbols.
 * The build checks that bootsector.bin is 512 bytes ending in 0x55 0xAA. */
    .code16
    .text
    .globl _start
_start:
    cli                     /* no interrupt handlers are installed: keep IF clear */
    cld                     /* lodsb walks strings upwards */
    ljmp $0, $start16       /* some BIOSes enter at 07c0:0000; make it 0000:7cxx */
start16:
    xor %ax, %ax
    mov %ax, %ds            /* data at 0000:xxxx, where the linker put it */
    mov %ax, %es
    mov %ax, %ss
    mov $0x7c00, %sp        /* the stack grows down, below the boot sector */

    mov $greeting, %si
    call print

    .globl count_loop
count_loop:                 /* one round per number printed, forever */
    incw count              /* the counter lives in memory, so gdb can watch it */
    mov $prefix, %si
    call print
    mov count, %ax
    call print_hex
    mov $newline, %si
    call print
    jmp count_loop

/* print: writes the NUL-terminated string at DS:SI. Clobbers AL and SI. */
    .globl print
print:
    lodsb                   /* AL = *SI++ */
    test %al, %al
    jz 1f
    call putc
    jmp print
1:  ret

/* print_hex: writes AX as four hexadecimal digits. Clobbers BX and CX. */
    .globl print_hex
print_hex:
    push %ax
    mov $4, %cx             /* four nibbles, most significant first */
1:  rol $4, %ax             /* bring the next nibble into the low four bits */
    push %ax
    and $0x0f, %al
    mov $hexdigits, %bx
    xlat                    /* AL = hexdigits[AL] */
    call putc
    pop %ax
    loop 1b                 /* CX--, repeat while CX != 0 */
    pop %ax
    ret

/* putc: writes AL to the UART. A real 16550 accepts a byte only when its
 * transmit holding register is empty (bit 5 of the line status register at
 * 0x3fd), so wait for that first. */
    .globl putc
putc:
    push %dx
    push %ax
    mov $0x3fd, %dx         /* line status register */
1:  in (%dx), %al
    test $0x20, %al         /* THRE: ready for the next byte? */
    jz 1b
    pop %ax
    mov $0x3f8, %dx         /* transmit holding register */
    out %al, (%dx)
    pop %dx
    ret

greeting:  .asciz "Hello from the boot sector!\n"
prefix:    .asciz "count "
newline:   .asciz "\n"
hexdigits: .ascii "0123456789abcdef"
    .globl count
    .balign 2
count:     .word 0          /* in .text: a boot sector is one flat 512-byte block */

    .org 510                /* pad to the end of the sector (fails if the code grew past it) */
    .byte 0x55, 0xaa        /* the boot signature the BIOS checks */
