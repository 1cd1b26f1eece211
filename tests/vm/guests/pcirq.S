/* ELF64 fixture for the pc board, behaviour chosen by %edi at entry:
 *   0  take PIT interrupts (IRQ 0 through the 8259 and LINT0) at 1 kHz,
 *      counted in `ticks`, while spinning with interrupts on in
 *      `busy` (a target for single steps)
 *   1  the same, halting between interrupts in `idle`
 *   2  ask the i8042 for a reset
 *   3  cpuid leaf 1, then leave through the debug-exit port (status 0)
 *      with its ebx and ecx in rbx and rcx
 *   4  map `late` at its address + 0xffffffff80000000, make an exit, then
 *      jump there (a breakpoint set there before is pending until then)
 *   5  halt with interrupts off, forever (`stopped`)
 * The long-mode page tables kvmstub gives an ELF64 identity-map 4 GiB. */
    .code64
    .text
    .globl _start, busy, busy_end, handler, handler_end, idle, idle_end, late, late_end
    .globl stopped, stopped_jmp
_start:
    lea stack_top(%rip), %rsp
    cmp $2, %edi
    je reset
    cmp $3, %edi
    je cpuid1
    cmp $4, %edi
    je map_late
    cmp $5, %edi
    je stop_forever

    /* IDT: vector 0x20 (IRQ 0) -> handler, a 64-bit interrupt gate. */
    lea handler(%rip), %rax
    lea idt+0x20*16(%rip), %rbx
    mov %ax, (%rbx)
    mov %cs, %dx
    mov %dx, 2(%rbx)
    movw $0x8e00, 4(%rbx)
    shr $16, %rax
    mov %ax, 6(%rbx)
    shr $16, %rax
    mov %eax, 8(%rbx)
    lidt idtr(%rip)
    /* 8259s: vectors 0x20 and 0x28, cascade on IRQ 2, only IRQ 0 open. */
    mov $0x11, %al
    out %al, $0x20
    out %al, $0xa0
    mov $0x20, %al
    out %al, $0x21
    mov $0x28, %al
    out %al, $0xa1
    mov $0x04, %al
    out %al, $0x21
    mov $0x02, %al
    out %al, $0xa1
    mov $0x01, %al
    out %al, $0x21
    out %al, $0xa1
    mov $0xfe, %al
    out %al, $0x21
    mov $0xff, %al
    out %al, $0xa1
    /* PIT channel 0, rate generator, divisor 1193: 1 kHz, often enough
     * to be due at most steps of a slow host, rare enough for an emulated
     * one to keep up with. */
    mov $0x34, %al
    out %al, $0x43
    mov $(1193 & 0xff), %al
    out %al, $0x40
    mov $(1193 >> 8), %al
    out %al, $0x40
    cmp $1, %edi
    je idle
    sti
busy:
    inc %rbx
    inc %rcx
    jmp busy
busy_end:

idle:
    sti
    hlt
    jmp idle
idle_end:

handler:
    incq ticks(%rip)
    push %rax
    mov $0x20, %al
    out %al, $0x20
    pop %rax
    iretq
handler_end:

reset:
    mov $0xfe, %al
    out %al, $0x64
    jmp reset

cpuid1:
    mov $1, %eax
    xor %ecx, %ecx
    cpuid
    mov %ebx, %ebx
    mov %ecx, %ecx
    xor %al, %al
    out %al, $0xf4
    jmp cpuid1

map_late:
    /* PML4[511] -> pdpt_high, whose entry 510 -> pd_high, whose first
     * 2 MiB page maps physical 0: 0xffffffff80000000 + x is x. */
    mov %cr3, %rax
    and $~0xfff, %rax
    lea pdpt_high(%rip), %rbx
    or $3, %rbx
    mov %rbx, 511*8(%rax)
    lea pd_high(%rip), %rbx
    or $3, %rbx
    mov %rbx, pdpt_high+510*8(%rip)
    movq $0x83, pd_high(%rip)
    mov %cr3, %rax
    mov %rax, %cr3
    out %al, $0x99            /* no device: an exit, where pending breakpoints are planted */
    movabs $(0xffffffff80000000 + late), %rax
    jmp *%rax
late:
    nop
    xor %al, %al
    out %al, $0xf4
late_end:
    jmp late

stop_forever:
    cli
stopped:
    hlt
stopped_jmp:
    jmp stopped

    .data
    .balign 16
idtr:
    .word 256*16 - 1
    .quad idt
    .globl ticks
ticks: .quad 0

    .bss
    .balign 4096
idt: .skip 256*16
    .balign 4096
pdpt_high: .skip 4096
pd_high: .skip 4096
    .skip 4096
stack_top:
