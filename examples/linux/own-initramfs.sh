#!/usr/bin/env bash
# examples/linux/own-initramfs.sh: the linux example's initramfs with the
# own-kernel example's module in it, at /root/kvmstub_demo.ko (the shell's
# directory), so that `insmod kvmstub_demo.ko` works on the console.
#
#   examples/linux/own-initramfs.sh BASE.cpio.gz MODULE.ko OUT.cpio.gz
#
# The kernel unpacks concatenated archives one after the other, so OUT is
# BASE followed by a small archive holding the module: no root, no
# unpacking, and rebuilt only when BASE or MODULE is newer than OUT.
set -euo pipefail
if [ $# -ne 3 ]; then
    echo "usage: own-initramfs.sh BASE.cpio.gz MODULE.ko OUT.cpio.gz" >&2
    exit 2
fi
base=$1 module=$2 out=$3
for f in "$base" "$module"; do
    [ -r "$f" ] || {
        echo "own-initramfs.sh: $f is missing; build it first (cmake --build BUILD --target linux_assets own_kernel_assets)" >&2
        exit 1
    }
done
if [ -f "$out" ] && [ "$out" -nt "$base" ] && [ "$out" -nt "$(readlink -f "$module")" ]; then
    exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/own-initramfs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/root/root"
cp "$module" "$tmp/root/root/kvmstub_demo.ko"
cp "$base" "$tmp/out"
(cd "$tmp/root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9 -n >>"$tmp/out"
mv "$tmp/out" "$out"
