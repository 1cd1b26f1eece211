# ticks.gdb: a timer interrupt handler seen from gdb: break in it, watch the
# tick counter it increments, then let the guest end itself.
#
# This script assumes gdb is already connected to kvmstub running ticks.elf
# on the pc board, and has its symbols:
#   gdb -batch -ex 'target remote | build/kvmstub --stdio --machine pc build/examples/ticks.elf' \
#       -x examples/ticks.gdb build/examples/ticks.elf
set pagination off
# No "Kill the program being debugged? (y or n)" question at the end.
set confirm off
# Source file names without their directories, the same in every checkout.
set filename-display basename
# No code addresses, which change with the compiler.
set print address off

echo --- the first timer interrupt: a breakpoint in the handler\n
break timer_tick
continue
echo --- the interrupt came while the main loop halted: the backtrace crosses the interrupt\n
bt
printf "ticks = %u, IF = %d (the CPU cleared it for the handler)\n", ticks, ($eflags >> 9) & 1
delete
echo --- watch the counter: each tick stops right after the handler's write\n
watch ticks
continue
continue
continue
delete
echo --- run to the end: after 50 ticks the guest exits through port 0xf4\n
continue
