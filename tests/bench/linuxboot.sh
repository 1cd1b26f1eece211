#!/usr/bin/env bash
# tests/bench/linuxboot.sh: Linux boot time, kvmstub against QEMU with KVM.
#
#   tests/bench/linuxboot.sh [--rounds N] [BUILD_DIR]
#
# Boots the Linux example (Debian's kernel, the busybox initramfs and the
# command line of examples/linux/assets.sh, 256 MiB, one CPU) under
# `kvmstub --no-gdb --serial - --until MARKER` and under
# `qemu-system-x86_64 -accel kvm -kernel ... -initrd ... -append ...`,
# alternating, N rounds each (default 3), and prints the seconds from start
# to the init's first line ("kvmstub-linux: init reached"), the medians,
# their ratio (kvmstub / QEMU) and kvmstub's peak RSS beside the guest's
# RAM. Needs /dev/kvm and qemu-system-x86_64; on a host without KVM:
# .ci/kvm-machine -- tests/bench/linuxboot.sh BUILD_DIR
set -uo pipefail

rounds=3
build=build
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds)
        [ $# -ge 2 ] || { echo "linuxboot.sh: --rounds needs a value" >&2; exit 2; }
        rounds=$2
        shift 2
        ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "linuxboot.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) build=$1; shift ;;
    esac
done
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
for f in "$KERNEL" "$INITRD"; do
    [ -r "$f" ] || { echo "linuxboot.sh: $f is missing: cmake --build $build --target linux_assets" >&2; exit 1; }
done
CMDLINE=$("$here/examples/linux/assets.sh" cmdline) || exit 1
marker="kvmstub-linux: init reached"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b - a) / 1e9}'; }

boot_kvmstub() {
    local t0 t1
    t0=$(now)
    /usr/bin/time -f '%M' -o "$tmp/rss" "$kvmstub" --no-gdb --serial - --memory 256M \
        --initrd "$INITRD" --cmdline "$CMDLINE" --until "$marker" --timeout 600 "$KERNEL" \
        >"$tmp/kvmstub.out" 2>&1 </dev/null || {
        echo "linuxboot.sh: kvmstub did not reach the marker:" >&2
        tail -5 "$tmp/kvmstub.out" >&2
        return 1
    }
    t1=$(now)
    secs "$t0" "$t1"
}

boot_qemu() {
    local t0 t1 line
    t0=$(now)
    coproc Q { exec qemu-system-x86_64 -accel kvm -m 256 -nographic -no-reboot -nic none \
        -kernel "$KERNEL" -initrd "$INITRD" -append "$CMDLINE" 2>&1 </dev/null; }
    while IFS= read -r -t 600 line <&"${Q[0]}"; do
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
    echo "linuxboot.sh: QEMU did not reach the marker" >&2
    return 1
}

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs: $0 $*"
echo "# kernel $(basename "$(readlink -f "$KERNEL")"), 256 MiB, 1 CPU, to '$marker'"
: >"$tmp/k"
: >"$tmp/q"
for ((i = 1; i <= rounds; i++)); do
    k=$(boot_kvmstub) || exit 1
    q=$(boot_qemu) || exit 1
    echo "round $i: kvmstub $k s, qemu $q s"
    echo "$k" >>"$tmp/k"
    echo "$q" >>"$tmp/q"
done
km=$(median <"$tmp/k")
qm=$(median <"$tmp/q")
echo "kvmstub_boot_s $km"
echo "qemu_boot_s $qm"
echo "ratio $(awk -v a="$km" -v b="$qm" 'BEGIN {printf "%.2f", a / b}')"
echo "kvmstub_peak_rss_MiB $(awk '{printf "%.1f", $1 / 1024}' "$tmp/rss") (guest RAM 256 MiB)"
