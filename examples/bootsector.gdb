# bootsector.gdb: breaking and stepping in real mode.
#
# This script assumes gdb is already connected to kvmstub running
# bootsector.bin loaded at 0x7c00, and has bootsector.elf's symbols:
#   gdb -batch -ex 'target remote | build/kvmstub --stdio --load 0x7c00 build/examples/bootsector.bin' \
#       -x examples/bootsector.gdb build/examples/bootsector.elf
set pagination off
# No "Kill the program being debugged? (y or n)" question at the end.
set confirm off
# Source file names without their directories, the same in every checkout.
set filename-display basename
# kvmstub describes a real-mode CPU to gdb as i8086, but the symbols come
# from a 32-bit ELF file, and gdb lets the file's i386 win: say it again, or
# the disassembly is of 32-bit code.
set architecture i8086
echo --- where a BIOS would have jumped: 0000:7c00\n
printf "cs = %#x, ip = %#x\n", $cs, $pc
x/3i $pc
echo --- break at the top of the counting loop\n
# A breakpoint on an address; count_loop is 0x7c18, so this is the same as
# "break *0x7c18". gdb addresses real-mode memory linearly (segment * 16 +
# offset), and CS is 0 here, so $pc and the symbols agree.
break *count_loop
continue
info registers
echo --- step through the first instructions of a round\n
# One instruction at a time; x/3i shows the next three, in 16-bit code.
stepi
x/3i $pc
stepi
x/i $pc
# count has no C type in an assembly program: say what it is.
printf "count = %d, si = %#x -> \"%s\"\n", *(unsigned short *)&count, $si, (char *)$si
echo --- two more rounds\n
continue
continue
printf "count = %d\n", *(unsigned short *)&count
echo --- the routine that writes a byte, disassembled by name\n
x/4i putc
echo --- change the counter from gdb; the guest prints the new value\n
set var *(unsigned short *)&count = 0x0fff
continue
printf "count = %#x\n", *(unsigned short *)&count
kill
