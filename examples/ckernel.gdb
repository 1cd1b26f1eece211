# ckernel.gdb: source-level debugging of a 64-bit kernel written in C.
#
# This script assumes gdb is already connected to kvmstub running
# ckernel.elf, and has its symbols:
#   gdb -batch -ex 'target remote | build/kvmstub --stdio build/examples/ckernel.elf' \
#       -x examples/ckernel.gdb build/examples/ckernel.elf
set pagination off
# No "Kill the program being debugged? (y or n)" question at the end.
set confirm off
# Source file names without their directories, the same in every checkout,
# and no code addresses in frame lines: they change with the compiler.
set filename-display basename
set print address off

echo --- run to main\n
break main
continue
echo --- next: run a line, stepping over calls\n
next
next
next
echo --- step: into factorial()\n
step
bt
echo --- deeper: stop when n reaches 1\n
break factorial if n == 1
continue
bt
echo --- finish: run until factorial(1) returns, and show its value\n
finish
print n
up
print n
echo --- back in main\n
delete
break count_up
continue
up
info locals
print result
print counter
down
echo --- watch the global: every write stops, with the old and new values\n
# count_up() writes counter 100 times: left in place, this watchpoint would
# stop 100 times. Three are enough to see the pattern.
watch counter
continue
continue
continue
print i
info watchpoints
echo --- delete the watchpoint and run to the end, where _start halts\n
delete
continue
print counter
kill
