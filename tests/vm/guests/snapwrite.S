/* Snapshot fixture: batches of writes that also churn registers.
 *
 * Each batch stores 512 quadwords (one page) into a 512 KiB window at
 * 0x400000, one after another from where the last batch stopped (index in
 * rcx), mixing every general register into the values, then halts on the
 * hlt before a nop; the test resumes it by moving rip past the nop (a
 * debugger moving rip wakes a halted vCPU). Nothing else writes memory: no
 * stack, no calls. */
    .code64
    .text
    .globl _start
_start:
    mov $0x400000, %rbx
    xor %ecx, %ecx
    movabs $0x0123456789abcdef, %rax
    movabs $0x9e3779b97f4a7c15, %rdx
    jmp 2f
1:  hlt
    nop
2:  mov $512, %edi
3:  mov %rax, (%rbx,%rcx,8)
    add %rdx, %rax
    rol $7, %rax
    xor %rax, %r8
    add %rcx, %r9
    lea 1(%r10,%r8), %r10
    imul %rdx, %r11
    inc %rcx
    and $0xffff, %rcx
    dec %rdi
    jnz 3b
    jmp 1b
