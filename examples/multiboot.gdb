# multiboot.gdb: what a multiboot loader hands a kernel, seen from gdb.
#
# This script assumes gdb is already connected to kvmstub running
# multiboot.elf with a command line, and has its symbols:
#   gdb -batch -ex 'target remote | build/kvmstub --stdio --cmdline "hello from kvmstub" build/examples/multiboot.elf' \
#       -x examples/multiboot.gdb build/examples/multiboot.elf
# The command line starts with the image's file name as given to kvmstub,
# so that part of the output depends on how kvmstub was started.
set pagination off
# No "Kill the program being debugged? (y or n)" question at the end.
set confirm off
# Source file names without their directories, the same in every checkout.
set filename-display basename

echo --- at the entry point: EAX proves a multiboot loader, EBX points at the information\n
printf "eax = %#x, ebx = %#x\n", $eax, $ebx
echo --- kmain receives both as arguments\n
# (without its code address, which changes with the compiler)
set print address off
break kmain
set print address on
continue
bt
print/x magic
print/x mbi->flags
print mbi->mem_lower
print mbi->mem_upper
print (char *)mbi->boot_loader_name
print (char *)mbi->cmdline
echo --- the first memory map entry, read through the C type\n
print/x *(struct multiboot_mmap_entry *)mbi->mmap_addr
echo --- run kmain to its end: it prints the same on the serial port\n
finish
printf "arguments = \"%s\", %d memory map entries\n", arguments, mmap_entries
kill
