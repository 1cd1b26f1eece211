# protected.gdb: breakpoints on labels in 32-bit protected-mode assembly.
#
# This script assumes gdb is already connected to kvmstub running
# protected.elf, and has its symbols:
#   gdb -batch -ex 'target remote | build/kvmstub --stdio build/examples/protected.elf' \
#       -x examples/protected.gdb build/examples/protected.elf
set pagination off
# No "Kill the program being debugged? (y or n)" question at the end.
set confirm off
# Source file names without their directories, the same in every checkout.
set filename-display basename
echo --- 32-bit protected mode: flat segments, paging off\n
printf "eip = %#x, cs = %#x, ds = %#x, cr0 = %#x\n", $eip, $cs, $ds, $cr0
x/3i $pc
echo --- stop at each prime found; EBX holds it\n
break found_prime
continue
printf "prime %d\n", $ebx
continue
printf "prime %d\n", $ebx
continue
printf "prime %d\n", $ebx
echo --- skip the next 20 hits\n
# Let breakpoint 1 pass 20 times without stopping.
ignore 1 20
continue
printf "prime %d, after %d others\n", $ebx, (int)prime_count
info breakpoints
delete
echo --- the checksum, in EAX after adler32 returns\n
break checksum_ready
continue
printf "adler32 = %#010x\n", $eax
x/s &text
echo --- the last instructions, then the halt\n
break done
continue
x/2i $pc
# Execute the hlt: kvmstub reports it as a SIGTRAP stop.
continue
# Globals without C types need a cast.
printf "checksum = %#010x, prime_count = %d\n", (unsigned int)checksum, (int)prime_count
kill
