/* vectors.S: the entry points of exceptions 0-31 for pc.c. Each pushes its
 * vector (and a zero where the CPU pushes no error code, so that every frame
 * looks alike), saves the registers and calls pc_exception(frame), which
 * reports the exception and ends the guest. */
    .code32
    .text

.macro exception vector
    .type exception_\vector, @function
exception_\vector:
    /* The CPU pushes an error code for 8, 10-14, 17, 21, 29 and 30. */
    .if \vector == 8 || (\vector >= 10 && \vector <= 14) || \vector == 17 || \vector == 21 || \vector == 29 || \vector == 30
    .else
    push $0
    .endif
    push $\vector
    jmp exception_common
.endm

    .altmacro
.macro exceptions from, to
    exception %from
    .if \to-\from
    exceptions %(from+1), \to
    .endif
.endm
    exceptions 0, 31

exception_common:
    pusha
    cld
    push %esp                   /* the frame: struct exception_frame * */
    call pc_exception           /* does not return */
1:  cli
    hlt
    jmp 1b

    .section .rodata
    .balign 4
    .globl pc_exception_entries
pc_exception_entries:
.macro entry vector
    .long exception_\vector
.endm
.macro entries from, to
    entry %from
    .if \to-\from
    entries %(from+1), \to
    .endif
.endm
    entries 0, 31
