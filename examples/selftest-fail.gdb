# selftest-fail.gdb: the selftest guest made to fail from gdb, to see what a
# failing run looks like: one corrupted test input, one failed check, exit
# status 1.
#
# This script assumes gdb is already connected to kvmstub running
# selftest.elf, and has its symbols:
#   gdb -batch -ex 'target remote | build/kvmstub --stdio build/examples/selftest.elf' \
#       -x examples/selftest-fail.gdb build/examples/selftest.elf; echo "status $?"
set pagination off
# No "Kill the program being debugged? (y or n)" question at the end.
set confirm off

# The guest has not run yet: change the input of the CRC check in its
# memory, '1' -> 'X', before it is read.
set var crc_input[0] = 'X'
print crc_input

# From here on, the same as selftest.gdb.
continue
if $_isvoid($_exitcode)
  echo selftest: the guest stopped without exiting:\n
  info program
  kill
  quit 125
end
if $_exitcode == 0
  echo selftest: PASS\n
else
  printf "selftest: FAIL, exit code %d\n", $_exitcode
end
quit $_exitcode
