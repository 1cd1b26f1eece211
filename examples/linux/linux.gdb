# linux.gdb: stops a Debian Linux kernel at named functions: start_kernel
# during the boot, then a system call that a command typed on the serial
# console makes, and ends it with 'reboot -f' typed the same way.
#
# This script assumes gdb is connected to kvmstub serving the kernel with
# the example's initramfs, booted nokaslr (examples/README.md, "linux"),
# and has loaded the kernel's symbols from vmlinux-kallsyms.elf
# (examples/linux/assets.sh symbols), so that function names stand for
# their addresses:
#   gdb -batch -ex 'target remote | build/kvmstub --stdio --machine pc --initrd build/examples/linux/initramfs.cpio.gz --cmdline "..." build/examples/linux/bzImage' \
#       -x examples/linux/linux.gdb build/examples/linux/vmlinux-kallsyms.elf
# Those symbols carry no types: variables need a cast, as in
# 'print (unsigned long)jiffies'.
set pagination off
# No "Kill the program being debugged? (y or n)" question at the end.
set confirm off

echo --- the 64-bit entry of the compressed kernel: nothing of Linux proper is in memory yet\n
info registers rip
echo --- a breakpoint on start_kernel, set by address before the kernel is unpacked there\n
# *NAME is NAME's address: the breakpoint needs no debug information.
break *start_kernel
continue
info registers rip
x/5i $pc
bt
delete
echo --- the init starts the shell in a new session: by then the console takes input\n
break *__x64_sys_setsid
continue
delete
echo --- type 'sync' on the console: the shell's sync() enters the kernel here\n
break *__x64_sys_sync
monitor input sync
continue
info registers rip
x/5i $pc
bt
# On x86-64 a system call's entry takes the user registers (struct pt_regs)
# in RDI: orig_ax, the call's number, at +120, and the user RIP at +128.
printf "system call %ld, from user space at %#lx\n", *(long *)($rdi + 120), *(long *)($rdi + 128)
delete
echo --- type 'reboot -f': the kernel resets the machine, which ends kvmstub\n
monitor input reboot -f
continue
