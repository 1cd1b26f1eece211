/* boot.S: the multiboot header and entry of the ticks example, and the
 * entry points of its interrupts.
 *
 * A multiboot loader (kvmstub, qemu -kernel, GRUB) enters _start in 32-bit
 * protected mode with interrupts off, EAX = 0x2BADB002 and EBX pointing at
 * the multiboot information (for the command line). */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003 /* modules page-aligned; memory information */

    .section .multiboot, "a"
    .balign 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .code32
    .text
    .globl _start
    .type _start, @function
_start:
    .cfi_sections .debug_frame
    .cfi_startproc
    .cfi_undefined eip          /* the outermost frame: backtraces end here */
    mov $stack_top, %esp
    xor %ebp, %ebp
    cld
    push %ebx
    push %eax
    call kmain                  /* kmain(magic, info) ends the guest itself */
1:  cli
    hlt
    jmp 1b
    .cfi_endproc
    .size _start, . - _start

/* The timer interrupt, from the PIT through the PIC (IRQ 0) or from the
 * local APIC's own timer: both vectors lead here. The CPU pushed EFLAGS, CS
 * and EIP and cleared IF; C code may change EAX, ECX and EDX, so those are
 * saved around the call.
 * The CFI tells gdb where the interrupted EIP is, so that a backtrace from
 * timer_tick goes on into the code the interrupt stopped. */
.macro irq_entry name, handler
    .globl \name
    .type \name, @function
\name:
    .cfi_startproc simple
    .cfi_signal_frame
    .cfi_def_cfa esp, 12        /* at entry: EIP, CS, EFLAGS on the stack */
    .cfi_offset eip, -12
    push %eax
    .cfi_adjust_cfa_offset 4
    push %ecx
    .cfi_adjust_cfa_offset 4
    push %edx
    .cfi_adjust_cfa_offset 4
    cld
    call \handler
    pop %edx
    .cfi_adjust_cfa_offset -4
    pop %ecx
    .cfi_adjust_cfa_offset -4
    pop %eax
    .cfi_adjust_cfa_offset -4
    iret
    .cfi_endproc
    .size \name, . - \name
.endm
    irq_entry timer_entry, timer_tick

/* Spurious interrupts: the PIC's IRQ 7 when a request vanished before the
 * CPU took it, and the local APIC's spurious vector. Neither wants an EOI. */
    .globl spurious_entry
    .type spurious_entry, @function
spurious_entry:
    iret
    .size spurious_entry, . - spurious_entry

    .bss
    .balign 16
stack:
    .skip 16384
stack_top:
