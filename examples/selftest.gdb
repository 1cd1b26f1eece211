# selftest.gdb: turns the selftest guest's verdict into gdb's exit status,
# the pattern for running a guest's own tests in a CI pipeline.
#
# This script assumes gdb is already connected to kvmstub running
# selftest.elf, for example:
#   gdb -batch -ex 'target remote | build/kvmstub --stdio build/examples/selftest.elf' \
#       -x examples/selftest.gdb build/examples/selftest.elf; echo "status $?"
# gdb then exits with the guest's exit code: 0 when every check passed, the
# number of failed checks otherwise, and 125 when the guest never exits.
set pagination off
# No "Kill the program being debugged? (y or n)" question at the end.
set confirm off

# Run to the end. The guest ends itself by writing its result to the
# debug-exit port (0xf4), which gdb sees as the process exiting, with the
# value in $_exitcode.
continue

# Any other stop (a crash reported as a signal, a hlt) leaves $_exitcode
# void: report it, and fail with a status of our own.
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
