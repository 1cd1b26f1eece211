#!/usr/bin/env bash
# examples/linux/assets.sh: the Linux example's kernel, initramfs and symbols.
#
#   examples/linux/assets.sh [--cache DIR] [--out DIR] [paths|kernel|initrd|disk-initrd|symbols|cmdline]
#
#   paths    (default) make kernel and initramfs ready; print KERNEL=, INITRD=, CMDLINE=
#   kernel   print the path of Debian's bzImage
#   initrd   build the initramfs if its inputs changed; print its path
#   disk-initrd  build a second initramfs for booting with a disk (see below)
#            if its inputs changed; print its path
#   symbols  build an ELF file holding the kernel's symbols (from its own
#            /proc/kallsyms, read once in a QEMU TCG boot) if missing; print its path
#   cmdline  print the kernel command line the example boots with
#
# --cache DIR (default ${XDG_CACHE_HOME:-~/.cache}/kvmstub-machine, the cache
# of .ci/kvm-machine) holds Debian's kernel package unpacked under root/ and
# busybox-static as root/bin/busybox; what is missing is fetched with
# apt-get download into it, never into the source tree. Built files go to
# DIR/linux/ and are rebuilt only when their inputs change. --out DIR also
# links them there as bzImage, initramfs.cpio.gz, vmlinux-kallsyms.elf and
# vmlinux-kallsyms.map (the symbols as text), at paths a build system can
# name in advance.
#
# The initramfs's init reads these from the kernel command line:
#   kvmstub.syms=NAME,NAME   print "kvmstub-linux: sym ADDRESS TYPE NAME" for each
#   kvmstub.kallsyms         print the whole /proc/kallsyms (gzip, base64), then reboot
#   kvmstub.reboot           reboot (reboot -f) right after its first lines
# and otherwise runs a shell on the console, again whenever it exits.
#
# The disk initramfs (--out: initramfs-disk.cpio.gz) also holds the Debian
# kernel's virtio_pci, virtio_blk and ext4 modules with what they need
# (fetched from the kernel package once), loads them, mounts root= (ext4)
# on /mnt and reads kvmstub.disk=ACTION: write (writes /mnt/file, syncs),
# hold (the same, then waits an hour with the file system mounted),
# readonly (tries a write and says whether it was refused), or nothing
# (mount and list only); it prints "kvmstub-disk: ..." lines, unmounts,
# and ends the machine with reboot -f.
set -euo pipefail

cache="${XDG_CACHE_HOME:-$HOME/.cache}/kvmstub-machine"
out=""
command=paths
while [ $# -gt 0 ]; do
    case "$1" in
    --cache) cache="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/{/^set -e/!p}' "$0"; exit 0 ;;
    paths|kernel|initrd|disk-initrd|symbols|cmdline) command="$1"; shift ;;
    *) echo "assets.sh: unknown argument '$1'; see examples/linux/assets.sh --help" >&2; exit 2 ;;
    esac
done

# The command line for a PC with a serial port, an i8042 and interrupt
# controllers, but no ACPI tables or PCI bus (what kvmstub's pc board and
# kvmtool offer): acpi=off makes the kernel take its CPUs from the MP table;
# 8250.nr_uarts=1 stops it probing three more legacy UARTs; the i8042 options
# skip probes for a mouse, a multiplexer and PnP; reboot=k resets through the
# i8042 and panic=-1 resets at once on a panic, so that both end the VMM.
# nokaslr keeps every kernel symbol at its link address, where gdb (and the
# symbols built here) expect it; quiet keeps the boot log off the console.
cmdline="console=ttyS0 nokaslr acpi=off pci=off 8250.nr_uarts=1 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd reboot=k panic=-1 quiet"

if [ "$command" = cmdline ]; then
    echo "$cmdline"
    exit 0
fi

linux="$cache/linux"
mkdir -p "$linux" 2>/dev/null || true
# Two builds (two build trees, parallel tests) may share the cache. A
# read-only cache (inside .ci/kvm-machine) can only be read: no lock then,
# and anything out of date fails when written.
if [ -w "$linux" ]; then
    exec 9>"$linux/.lock"
    flock 9
fi

fetch() { # fetch PACKAGE: unpack a Debian package into $cache/root
    local tmp
    tmp=$(mktemp -d "$cache/fetch.XXXXXX")
    if ! (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$1" >/dev/null 2>&1); then
        rm -rf "$tmp"
        echo "assets.sh: apt-get cannot download $1; run 'apt-get update' first (and check the network)" >&2
        exit 1
    fi
    for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$cache/root"; done
    rm -rf "$tmp"
}

find_kernel() { # the newest bzImage in the cache
    local k newest=""
    for k in "$cache"/root/boot/vmlinuz-*; do
        [ -f "$k" ] && newest=$(printf '%s\n%s\n' "$newest" "$k" | sort -V | tail -n1)
    done
    [ -n "$newest" ] && echo "$newest"
}

kernel=$(find_kernel || true)
if [ -z "$kernel" ]; then
    echo "assets.sh: fetching Debian's kernel package into $cache (once)" >&2
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/.*Depends: \(linux-image-[0-9].*\)/\1/p' | head -n1)
    if [ -z "$pkg" ]; then
        echo "assets.sh: cannot find Debian's kernel package linux-image-amd64; run 'apt-get update' first" >&2
        exit 1
    fi
    fetch "$pkg"
    kernel=$(find_kernel) || { echo "assets.sh: $pkg holds no /boot/vmlinuz-*" >&2; exit 1; }
fi
kver=${kernel##*/vmlinuz-}
busybox="$cache/root/bin/busybox"
[ -x "$busybox" ] || fetch busybox-static

if [ "$command" = kernel ]; then
    echo "$kernel"
    exit 0
fi

link() { # link FILE NAME: give FILE a fixed name in --out DIR
    [ -n "$out" ] || return 0
    mkdir -p "$out"
    ln -sfn "$1" "$out/$2"
}

# The init, PID 1. Its first line is the marker the tests wait for; it reads
# its options from /proc/cmdline (the kernel keeps dotted words out of init's
# arguments and environment).
write_init() {
    cat >"$1" <<'INIT'
#!/bin/sh
export PATH=/bin HOME=/root PS1='kvmstub-linux# '
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The kernel opens /dev/console for init from its built-in initramfs; should
# that have failed, open it now.
[ -e /proc/self/fd/1 ] || exec </dev/console >/dev/console 2>&1
echo "kvmstub-linux: init reached"
echo "kvmstub-linux: cpus=$(grep -c '^processor' /proc/cpuinfo)"
echo "kvmstub-linux: kernel $(uname -r)"
opt() { tr ' ' '\n' </proc/cmdline | sed -n "s/^kvmstub\.$1\(=\|$\)//p" | head -n1; }
has() { tr ' ' '\n' </proc/cmdline | grep -q "^kvmstub\.$1\(=\|$\)"; }
# Root may read kernel addresses from /proc/kallsyms unless kptr_restrict is 2.
echo 1 >/proc/sys/kernel/kptr_restrict
syms=$(opt syms)
if [ -n "$syms" ]; then
    awk -v want="$syms" 'BEGIN { n = split(want, w, ","); for (i = 1; i <= n; i++) s[w[i]] = 1 }
        ($3 in s) && NF == 3 { print "kvmstub-linux: sym " $1 " " $2 " " $3 }' /proc/kallsyms
fi
if has kallsyms; then
    echo "kvmstub-linux: kallsyms begin"
    gzip -c /proc/kallsyms | base64
    echo "kvmstub-linux: kallsyms end"
    reboot -f
fi
has reboot && reboot -f
cd /root
while :; do
    # A session with the console as controlling terminal, so that Ctrl-C and
    # job control work in the shell.
    setsid cttyhack sh
    echo "kvmstub-linux: the shell ended; starting another ('reboot -f' ends the machine)"
done
INIT
    chmod +x "$1"
}

initrd="$linux/initramfs.cpio.gz"
# The inputs: busybox, the init, and how the archive is laid out (bump the
# 1 when that changes); edits elsewhere in this script keep the stamp.
stamp=$({ echo 1; declare -f write_init; cat "$busybox"; } | md5sum | cut -c1-16)
if [ ! -f "$initrd" ] || [ "$(cat "$initrd.stamp" 2>/dev/null)" != "$stamp" ]; then
    tmp=$(mktemp -d "$linux/initrd.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp"/root/{bin,dev,proc,sys,tmp,root,etc}
    cp "$busybox" "$tmp/root/bin/busybox"
    for app in $("$busybox" --list); do
        [ "$app" = busybox ] || ln -s busybox "$tmp/root/bin/$app"
    done
    write_init "$tmp/root/init"
    (cd "$tmp/root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$tmp/newc"
    gzip -9 -n <"$tmp/newc" >"$tmp/initrd"
    mv "$tmp/initrd" "$initrd"
    echo "$stamp" >"$initrd.stamp"
    rm -rf "$tmp"
    trap - EXIT
fi
link "$initrd" initramfs.cpio.gz
link "$kernel" bzImage

# The disk initramfs: busybox, the modules a disk root needs, in the order
# insmod loads them (Debian ships no modules.dep; ext4 needs crc32c from
# the crypto API, which nothing would load on demand here).
disk_modules=(crc32c_generic crc16 mbcache jbd2 ext4 virtio_ring virtio virtio_pci_modern_dev
    virtio_pci_legacy_dev virtio_pci virtio_blk)
write_disk_init() {
    cat >"$1" <<'INIT'
#!/bin/sh
export PATH=/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
[ -e /proc/self/fd/1 ] || exec </dev/console >/dev/console 2>&1
echo "kvmstub-disk: init reached"
for m in $(cat /lib/modules/order); do
    insmod "/lib/modules/$m.ko" || echo "kvmstub-disk: insmod $m failed"
done
word() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p" | head -n1; }
root=$(word root)
root=${root:-/dev/vda}
i=0
while [ ! -b "$root" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
echo "kvmstub-disk: disks $(cd /sys/block && ls -d vd* 2>/dev/null | tr '\n' ' ')"
mkdir -p /mnt
if mount -t ext4 "$root" /mnt; then
    echo "kvmstub-disk: mounted $root $(awk '$2 == "/mnt" { split($4, o, ","); print o[1] }' /proc/mounts)"
    [ -f /mnt/hello ] && echo "kvmstub-disk: hello says $(cat /mnt/hello)"
    case "$(word kvmstub.disk)" in
    write|hold)
        echo "written by the guest" >/mnt/file && sync && echo "kvmstub-disk: synced"
        # hold: stay here, the file system mounted, for the host to kill the VMM.
        [ "$(word kvmstub.disk)" = hold ] && sleep 3600 ;;
    readonly)
        if echo x 2>/dev/null >/mnt/file; then echo "kvmstub-disk: write accepted"; else echo "kvmstub-disk: write refused"; fi
        if dd if=/dev/zero of="$root" bs=512 count=1 conv=fsync 2>/dev/null; then
            echo "kvmstub-disk: raw write accepted"
        else
            echo "kvmstub-disk: raw write refused"
        fi ;;
    esac
    umount /mnt
else
    echo "kvmstub-disk: cannot mount $root"
fi
# How the disks interrupt (MSI-X vectors, an IOAPIC level, an ISA edge).
grep virtio /proc/interrupts | tr -s ' ' | sed 's/^ *\(.*\)/kvmstub-disk: irq \1/'
echo "kvmstub-disk: done"
reboot -f
INIT
    chmod +x "$1"
}

disk_initrd() {
    local kdir="$cache/root/lib/modules/$kver" m missing=()
    for m in "${disk_modules[@]}"; do
        [ -n "$(find "$kdir" -name "$m.ko" 2>/dev/null | head -n1)" ] || missing+=("$m")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "assets.sh: fetching the disk modules of $kver (${missing[*]}) from its package (once)" >&2
        local tmp pat=()
        tmp=$(mktemp -d "$cache/fetch.XXXXXX")
        if ! (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "linux-image-$kver" >/dev/null 2>&1); then
            rm -rf "$tmp"
            echo "assets.sh: apt-get cannot download linux-image-$kver; run 'apt-get update' first" >&2
            exit 1
        fi
        for m in "${missing[@]}"; do pat+=("*/$m.ko"); done
        dpkg-deb --fsys-tarfile "$tmp"/*.deb | tar -x -C "$cache/root" --wildcards "${pat[@]}"
        rm -rf "$tmp"
    fi
    local dinitrd="$linux/initramfs-disk.cpio.gz" dstamp
    dstamp=$({ echo 1; declare -f write_disk_init; echo "${disk_modules[*]}"; cat "$busybox"; } | md5sum | cut -c1-16)
    if [ ! -f "$dinitrd" ] || [ "$(cat "$dinitrd.stamp" 2>/dev/null)" != "$dstamp" ]; then
        local t
        t=$(mktemp -d "$linux/initrd.XXXXXX")
        mkdir -p "$t"/root/{bin,dev,proc,sys,tmp,root,etc,mnt,lib/modules}
        cp "$busybox" "$t/root/bin/busybox"
        for app in $("$busybox" --list); do
            [ "$app" = busybox ] || ln -s busybox "$t/root/bin/$app"
        done
        for m in "${disk_modules[@]}"; do
            cp "$(find "$kdir" -name "$m.ko" | head -n1)" "$t/root/lib/modules/$m.ko"
        done
        echo "${disk_modules[*]}" >"$t/root/lib/modules/order"
        write_disk_init "$t/root/init"
        (cd "$t/root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9 -n >"$t/initrd"
        mv "$t/initrd" "$dinitrd"
        echo "$dstamp" >"$dinitrd.stamp"
        rm -rf "$t"
    fi
    link "$dinitrd" initramfs-disk.cpio.gz
    echo "$dinitrd"
}

case "$command" in
initrd) echo "$initrd"; exit 0 ;;
disk-initrd) disk_initrd; exit 0 ;;
paths)
    # Quoted for the shell: eval "$(assets.sh)" sets the three variables.
    printf 'KERNEL=%q\nINITRD=%q\nCMDLINE=%q\n' "$kernel" "$initrd" "$cmdline"
    exit 0 ;;
esac

# symbols: the kernel's own symbol table, as an ELF file for gdb.
elf="$linux/vmlinux-kallsyms-$kver.elf"
sstamp="1 $(md5sum <"$kernel" | cut -c1-16)"
if [ ! -f "$elf" ] || [ "$(cat "$elf.stamp" 2>/dev/null)" != "$sstamp" ]; then
    if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
        echo "assets.sh: the symbols need qemu-system-x86_64 (apt-get install qemu-system-x86)" >&2
        exit 1
    fi
    echo "assets.sh: reading the symbols of $kver from a QEMU TCG boot (once, about 15 s)" >&2
    log="$linux/kallsyms-boot.log"
    # The same command line as the example's, so that the boot is the same
    # (nokaslr in particular); the init prints the table and resets.
    timeout 600 qemu-system-x86_64 -accel tcg -m 256 -display none -no-reboot -nic none \
        -monitor none -serial "file:$log" -kernel "$kernel" -initrd "$initrd" \
        -append "$cmdline kvmstub.kallsyms" </dev/null ||
        { echo "assets.sh: the QEMU boot that reads the symbols failed; its console is in $log" >&2; exit 1; }
    "$(dirname "$0")/kallsyms-elf.sh" "$log" "$elf"
    rm -f "$log"
    echo "$sstamp" >"$elf.stamp"
fi
link "$elf" vmlinux-kallsyms.elf
link "${elf%.elf}.map" vmlinux-kallsyms.map
echo "$elf"
