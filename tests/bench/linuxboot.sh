#!/usr/bin/env bash
# tests/bench/linuxboot.sh: Linux boot time, kvmstub against QEMU with KVM.
#
#   tests/bench/linuxboot.sh [--rounds N] [BUILD_DIR]
#   tests/bench/linuxboot.sh --disk [--kernel debian|own|both] [--rounds N]
#                            [--boot-timeout S] [--consoles DIR] [BUILD_DIR]
#
# Without --disk: boots the Linux example (Debian's kernel, the busybox
# initramfs and the command line of examples/linux/assets.sh, 256 MiB, one
# CPU) under `kvmstub --no-gdb --serial - --until MARKER` and under
# `qemu-system-x86_64 -accel kvm -kernel ... -initrd ... -append ...`,
# alternating, N rounds each (default 3), and prints the seconds from start
# to the init's first line ("kvmstub-linux: init reached"), the medians,
# their ratio (kvmstub / QEMU) and kvmstub's peak RSS beside the guest's
# RAM. Needs /dev/kvm and qemu-system-x86_64; on a host without KVM:
# .ci/kvm-machine -- tests/bench/linuxboot.sh BUILD_DIR
#
# With --disk: times a boot to the init ON A DISK (root=/dev/vda, an ext4
# image made here without root by mke2fs -d, holding busybox and an init
# that prints "... init on the disk reached"), 256 MiB, one CPU, the
# VMMs alternating within each round:
#   debian: Debian's kernel, whose virtio_pci, virtio_blk and ext4 are
#     modules: an initramfs made from the disk initramfs of assets.sh loads
#     them, mounts /dev/vda read-only and switch_roots to it. kvmstub
#     --machine pc --drive IMG (virtio-blk over PCI) against QEMU -M pc
#     with virtio-blk-pci. Not QEMU -M microvm: that kernel lacks
#     CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES and would never see the disk.
#   own: the kernel built from source (build/examples/linux/own-bzImage,
#     virtio-pci, virtio-mmio with command-line devices, virtio-blk and
#     ext4 built in), no initramfs: kvmstub over PCI and over MMIO
#     (transport=mmio) against QEMU -M pc (virtio-blk-pci) and QEMU
#     -M microvm,acpi=off (virtio-blk-device, announced by QEMU on the
#     command line).
# Each line gives the wall time from starting the VMM to the marker and the
# guest kernel's uptime at the marker (from /proc/uptime: the difference is
# what ran before the kernel's clock: the VMM, firmware, decompression).
# Then the medians and the ratios of each kvmstub transport to each QEMU
# machine. --kernel picks the kernels (default both, debian alone when
# own-bzImage was not built), --boot-timeout the longest wait for one boot
# (default 300 s: a boot that does not reach its marker is reported and
# left out of the medians), --consoles DIR keeps every console there.
# In the emulated machine: .ci/kvm-machine --timeout 1500 --stall 600 --
# tests/bench/linuxboot.sh --disk BUILD_DIR
set -uo pipefail

args="$*"
rounds=3
build=build
disk=0
kernels=""
boot_timeout=300
consoles=""
need() { [ $# -ge 2 ] || { echo "linuxboot.sh: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) need "$@"; rounds=$2; shift 2 ;;
    --disk) disk=1; shift ;;
    --kernel) need "$@"; kernels=$2; shift 2 ;;
    --boot-timeout) need "$@"; boot_timeout=$2; shift 2 ;;
    --consoles) need "$@"; consoles=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -uo/{/^set -uo/!p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "linuxboot.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) build=$1; shift ;;
    esac
done
case "$rounds" in '' | *[!0-9]* | 0) echo "linuxboot.sh: --rounds wants a positive number, not '$rounds'" >&2; exit 2 ;; esac
case "$boot_timeout" in '' | *[!0-9]* | 0) echo "linuxboot.sh: --boot-timeout wants seconds, not '$boot_timeout'" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")/../.." && pwd)
kvmstub=$build/kvmstub
[ -x "$kvmstub" ] || { echo "linuxboot.sh: $kvmstub is missing: build first (cmake --build $build)" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null ||
    { echo "linuxboot.sh: qemu-system-x86_64 is missing: apt-get install qemu-system-x86" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "linuxboot.sh: /usr/bin/time is missing: apt-get install time" >&2; exit 1; }
# The files the build linked (cmake --build BUILD --target linux_assets),
# so that no download is needed where the bench runs.
KERNEL=$build/examples/linux/bzImage
INITRD=$build/examples/linux/initramfs.cpio.gz
DISK_INITRD=$build/examples/linux/initramfs-disk.cpio.gz
OWN_KERNEL=$build/examples/linux/own-bzImage
needed=("$KERNEL" "$INITRD")
[ "$disk" = 1 ] && needed=("$KERNEL" "$DISK_INITRD")
for f in "${needed[@]}"; do
    [ -r "$f" ] || { echo "linuxboot.sh: $f is missing: cmake --build $build --target linux_assets" >&2; exit 1; }
done
CMDLINE=$("$here/examples/linux/assets.sh" cmdline) || exit 1
marker="kvmstub-linux: init reached"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b - a) / 1e9}'; }
median() { sort -n | awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]; else print "-"}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b}'; }

# run_kvmstub LOG ARGS...: kvmstub to the marker; prints the seconds.
run_kvmstub() {
    local log=$1 t0 t1
    shift
    t0=$(now)
    /usr/bin/time -f '%M' -o "$tmp/rss" "$kvmstub" --no-gdb --serial - --memory 256M \
        --until "$marker" --timeout "$boot_timeout" "$@" >"$log" 2>&1 </dev/null || {
        echo "linuxboot.sh: kvmstub did not reach the marker:" >&2
        tail -5 "$log" >&2
        return 1
    }
    t1=$(now)
    secs "$t0" "$t1"
}

# run_qemu LOG ARGS...: QEMU to the marker on its console; prints the
# seconds, then ends it.
run_qemu() {
    local log=$1 t0 t1 line left
    shift
    t0=$(now)
    coproc Q { exec qemu-system-x86_64 -accel kvm -m 256 -nographic -no-reboot -nic none \
        "$@" 2>&1 </dev/null; }
    : >"$log"
    while :; do
        left=$(( boot_timeout - ($(now) - t0) / 1000000000 ))
        [ "$left" -gt 0 ] || break
        IFS= read -r -t "$left" line <&"${Q[0]}" || break
        printf '%s\n' "$line" >>"$log"
        if [[ $line == *"$marker"* ]]; then
            t1=$(now)
            kill "$Q_PID" 2>/dev/null
            wait "$Q_PID" 2>/dev/null
            secs "$t0" "$t1"
            return 0
        fi
    done
    kill "$Q_PID" 2>/dev/null
    wait "$Q_PID" 2>/dev/null
    echo "linuxboot.sh: QEMU did not reach the marker:" >&2
    tail -5 "$log" >&2
    return 1
}

if [ "$disk" = 0 ]; then
    echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs: $0 $args"
    echo "# kernel $(basename "$(readlink -f "$KERNEL")"), 256 MiB, 1 CPU, to '$marker'"
    : >"$tmp/k"
    : >"$tmp/q"
    for ((i = 1; i <= rounds; i++)); do
        k=$(run_kvmstub "$tmp/kvmstub.out" --initrd "$INITRD" --cmdline "$CMDLINE" "$KERNEL") || exit 1
        q=$(run_qemu "$tmp/qemu.out" -kernel "$KERNEL" -initrd "$INITRD" -append "$CMDLINE") || exit 1
        echo "round $i: kvmstub $k s, qemu $q s"
        echo "$k" >>"$tmp/k"
        echo "$q" >>"$tmp/q"
    done
    km=$(median <"$tmp/k")
    qm=$(median <"$tmp/q")
    echo "kvmstub_boot_s $km"
    echo "qemu_boot_s $qm"
    echo "ratio $(ratio "$km" "$qm")"
    echo "kvmstub_peak_rss_MiB $(awk '{printf "%.1f", $1 / 1024}' "$tmp/rss") (guest RAM 256 MiB)"
    exit 0
fi

# --- --disk ---------------------------------------------------------------
if [ -z "$kernels" ]; then
    kernels=both
    [ -r "$OWN_KERNEL" ] || {
        kernels=debian
        echo "# $OWN_KERNEL is missing (cmake --build $build --target own_kernel_assets): Debian's kernel only"
    }
fi
case "$kernels" in
debian) kernels="debian" ;;
own) kernels="own" ;;
both) kernels="debian own" ;;
*) echo "linuxboot.sh: --kernel wants debian, own or both, not '$kernels'" >&2; exit 2 ;;
esac
if [[ $kernels == *own* ]] && [ ! -r "$OWN_KERNEL" ]; then
    echo "linuxboot.sh: $OWN_KERNEL is missing: cmake --build $build --target own_kernel_assets" >&2
    exit 1
fi
PATH="$PATH:/usr/sbin:/sbin"
for p in mke2fs cpio gzip; do
    command -v "$p" >/dev/null || { echo "linuxboot.sh: $p is missing: apt-get install e2fsprogs cpio gzip" >&2; exit 1; }
done
[ -z "$consoles" ] || mkdir -p "$consoles" || exit 1
marker="init on the disk reached"

# The disk initramfs of assets.sh, unpacked: its busybox goes onto the disk,
# its modules (and their load order) into the bench's own initramfs.
mkdir -p "$tmp/ird" "$tmp/disk"/{bin,sbin,dev,proc,sys,mnt} || exit 1
gzip -dc "$DISK_INITRD" | (cd "$tmp/ird" && cpio -id --quiet --no-absolute-filenames) || {
    echo "linuxboot.sh: cannot unpack $DISK_INITRD" >&2
    exit 1
}
cp "$tmp/ird/bin/busybox" "$tmp/disk/bin/busybox" && ln -s busybox "$tmp/disk/bin/sh" || exit 1
# The init on the disk: the kernel's uptime, what / is, then the marker at
# the end of the line (the VMMs stop at the marker, so the line is whole).
cat >"$tmp/disk/sbin/init" <<'INIT'
#!/bin/sh
export PATH=/bin
busybox mount -t proc proc /proc
echo "kvmstub-bench: uptime $(busybox cut -d' ' -f1 /proc/uptime) s, / is $(busybox awk '$2 == "/" {r = $1 " " $3 " " substr($4, 1, 2)} END {print r}' /proc/mounts): init on the disk reached"
busybox reboot -f
INIT
chmod +x "$tmp/disk/sbin/init"
IMG=$tmp/root.img
mke2fs -q -F -t ext4 -d "$tmp/disk" "$IMG" 64M >/dev/null || { echo "linuxboot.sh: mke2fs -d failed" >&2; exit 1; }

# Debian's kernel: load the modules, mount /dev/vda read-only (so that the
# image stays as made, whichever VMM is killed when), switch to it.
cat >"$tmp/ird/init" <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
[ -e /proc/self/fd/1 ] || exec </dev/console >/dev/console 2>&1
up() { cut -d' ' -f1 /proc/uptime; }
echo "kvmstub-bench: initramfs at $(up) s"
for m in $(cat /lib/modules/order); do
    insmod "/lib/modules/$m.ko" || echo "kvmstub-bench: insmod $m failed"
done
echo "kvmstub-bench: modules loaded at $(up) s"
i=0
while [ ! -b /dev/vda ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
mkdir -p /newroot
if ! mount -t ext4 -o ro /dev/vda /newroot; then
    echo "kvmstub-bench: cannot mount /dev/vda (disks: $(ls /sys/block))"
    reboot -f
fi
echo "kvmstub-bench: /dev/vda mounted at $(up) s"
mount --move /dev /newroot/dev
umount /sys /proc
exec switch_root /newroot /sbin/init
INIT
chmod +x "$tmp/ird/init"
(cd "$tmp/ird" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -n >"$tmp/initrd-switch.cpio.gz" || exit 1

# QEMU -M pc has a PCI bus, so no pci=off; kvmstub drops it by itself when
# it has a PCI drive, and takes the same words here.
DISK_CMDLINE="${CMDLINE//pci=off /} root=/dev/vda ro rootwait"

# The configurations: KERNEL-VMM names, and how each boots.
configs=()
for kn in $kernels; do
    if [ "$kn" = debian ]; then
        configs+=(debian/kvmstub-pci debian/qemu-pc)
    else
        configs+=(own/kvmstub-pci own/kvmstub-mmio own/qemu-pc own/qemu-microvm)
    fi
done

boot() { # boot KERNEL/VMM LOG: prints the seconds
    local kn=${1%/*} vmm=${1#*/} log=$2 k=$KERNEL ird=() qird=()
    if [ "$kn" = debian ]; then
        ird=(--initrd "$tmp/initrd-switch.cpio.gz")
        qird=(-initrd "$tmp/initrd-switch.cpio.gz")
    else
        k=$OWN_KERNEL
    fi
    case "$vmm" in
    kvmstub-pci) run_kvmstub "$log" --machine pc --drive "$IMG" "${ird[@]}" --cmdline "$DISK_CMDLINE" "$k" ;;
    kvmstub-mmio) run_kvmstub "$log" --machine pc --drive "$IMG,transport=mmio" "${ird[@]}" --cmdline "$DISK_CMDLINE" "$k" ;;
    qemu-pc)
        run_qemu "$log" -M pc -drive "file=$IMG,format=raw,if=none,id=d0" -device virtio-blk-pci,drive=d0 \
            -kernel "$k" "${qird[@]}" -append "$DISK_CMDLINE" ;;
    qemu-microvm)
        run_qemu "$log" -M microvm,acpi=off -drive "file=$IMG,format=raw,if=none,id=d0" \
            -device virtio-blk-device,drive=d0 -kernel "$k" "${qird[@]}" -append "$DISK_CMDLINE" ;;
    esac
}
uptime_of() { sed -n 's/.*kvmstub-bench: uptime \([0-9.]*\) s.*/\1/p' "$1" | tail -n1; }

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs, $(qemu-system-x86_64 --version | head -n1): $0 $args"
echo "# root=/dev/vda: ext4 image (mke2fs -d, 64 MiB), 256 MiB, 1 CPU, to '$marker'"
echo "# debian: $(basename "$(readlink -f "$KERNEL")") with an initramfs loading virtio_pci, virtio_blk, ext4, then switch_root"
[[ $kernels == *own* ]] && echo "# own: $OWN_KERNEL (virtio-pci, virtio-mmio, virtio-blk, ext4 built in), no initramfs"
[[ $kernels == *debian* ]] && echo "# debian on QEMU -M microvm: not run, the kernel has no CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES"
echo "# command line: $DISK_CMDLINE"
mkdir -p "$tmp/t"
for ((i = 1; i <= rounds; i++)); do
    for c in "${configs[@]}"; do
        f=${c//\//-}
        log=$tmp/console.log
        [ -z "$consoles" ] || log=$consoles/round$i-$f.log
        if s=$(boot "$c" "$log"); then
            echo "$s" >>"$tmp/t/$f"
            echo "round $i: $c $s s (guest uptime at the marker $(uptime_of "$log") s)"
            [[ $c == */kvmstub-* ]] && awk '{printf "%.1f\n", $1 / 1024}' "$tmp/rss" >"$tmp/t/$f.rss"
        else
            echo "round $i: $c did not reach the marker within $boot_timeout s"
        fi
    done
done
echo "# medians (boots that reached the marker / rounds)"
for c in "${configs[@]}"; do
    f=${c//\//-}
    touch "$tmp/t/$f"
    extra=""
    [ -f "$tmp/t/$f.rss" ] && extra=", peak RSS $(cat "$tmp/t/$f.rss") MiB"
    echo "$c $(median <"$tmp/t/$f") s ($(wc -l <"$tmp/t/$f")/$rounds$extra)"
done
for kn in $kernels; do
    for kv in kvmstub-pci kvmstub-mmio; do
        [ -f "$tmp/t/$kn-$kv" ] || continue
        for qv in qemu-pc qemu-microvm; do
            [ -f "$tmp/t/$kn-$qv" ] || continue
            echo "ratio $kn $kv/$qv $(ratio "$(median <"$tmp/t/$kn-$kv")" "$(median <"$tmp/t/$kn-$qv")")"
        done
    done
done
