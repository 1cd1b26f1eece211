# smp.gdb: several CPUs seen from gdb, each a thread: list them, switch
# between them, stop one CPU's loop and then the other's, and catch the
# race-free result before the guest ends itself.
#
# This script assumes gdb is already connected to kvmstub running smp.elf
# on the pc board with two CPUs, and has its symbols:
#   gdb -batch -ex 'target remote | build/kvmstub --stdio --machine pc --cpus 2 build/examples/smp.elf' \
#       -x examples/smp.gdb build/examples/smp.elf
# Where CPU 0 is when CPU 1 stops depends on timing, so that backtrace
# varies from run to run.
set pagination off
# No "Kill the program being debugged? (y or n)" question at the end.
set confirm off
# Source file names without their directories, the same in every checkout.
set filename-display basename
# No code addresses, which change with the compiler.
set print address off

echo --- one thread per CPU; CPU 1 (thread 2) waits for its startup IPI\n
info threads
echo --- run until CPU 1 arrives in C, started by CPU 0's INIT and startup IPIs\n
break ap_main
continue
info threads
echo --- CPU 1's registers: it left its real-mode trampoline for the kernel's segments\n
thread 2
info registers eip esp cs ss
bt
echo --- CPU 0 meanwhile, waiting for CPU 1 to say it started\n
thread 1
bt
delete
echo --- the per-CPU loop, stopped on CPU 1, then on CPU 0: a breakpoint for each thread\n
break count_once thread 2
continue
printf "thread %d, cpu = %u, its count so far: %u\n", $_thread, cpu, per_cpu_count[cpu]
delete
break count_once thread 1
continue
printf "thread %d, cpu = %u, its count so far: %u\n", $_thread, cpu, per_cpu_count[cpu]
delete
echo --- every CPU is done: the shared counter against the per-CPU ones\n
break report
continue
print ncpus
print per_cpu_count[0]@ncpus
print shared_count
echo --- run to the end: the guest exits through port 0xf4 with 0 when the counts agree\n
continue
