# demo.gdb: the KVM API demo guest under gdb: the "4" arrives as console
# output, and the guest stops at its hlt.
#
# This script assumes gdb is already connected to kvmstub running demo.bin
# with AL = BL = 2, and has demo.elf's symbols, for example:
#   gdb -batch -ex 'target remote | build/kvmstub --stdio --reg rax=2 --reg rbx=2 build/examples/demo.bin' \
#       -x examples/demo.gdb build/examples/demo.elf
set pagination off
# No "Kill the program being debugged? (y or n)" question at the end.
set confirm off
# Source file names without their directories, the same in every checkout.
set filename-display basename
# kvmstub describes a real-mode CPU to gdb as i8086, but the symbols come
# from a 32-bit ELF file, and gdb lets the file's i386 win: say it again.
set architecture i8086
echo --- the guest waits at its first instruction, in real mode\n
printf "cs:ip = %04x:%04x, al = %d, bl = %d\n", $cs, $pc, $al, $bl
x/7i $pc
echo --- continue: the guest prints the sum and halts\n
continue
echo --- the stop: IP is past the hlt, DX still holds the UART's port\n
x/i $pc - 1
printf "ip = %#x, dx = %#x, al = %#x (the newline, the last byte written)\n", $pc, $dx, $al
kill
