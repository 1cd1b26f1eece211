#!/usr/bin/env bash
# examples/linux/kallsyms-elf.sh: turns a kernel's /proc/kallsyms into an ELF
# file that gdb loads for the symbols, in place of the vmlinux that only
# Debian's -dbg package has.
#
#   examples/linux/kallsyms-elf.sh INPUT OUTPUT.elf
#
# INPUT is either /proc/kallsyms text ("ADDRESS TYPE NAME" lines) or a console
# log of the example's init booted with kvmstub.kallsyms, which prints the
# table gzipped and base64-encoded between two marker lines (any VMM's log:
# QEMU's, kvmstub's --serial). Also writes OUTPUT.map, the table as text
# (sorted, like a System.map).
#
# The ELF file has no code or data, only the kernel's address ranges as
# sections without contents (gdb reads the bytes from the target) and a
# symbol at each address: functions in executable sections, so that gdb
# names them in backtraces and disassembly and `break NAME` works; variables
# in data sections, so that `print (long)jiffies` and `x/gx &jiffies` work.
# No types, no line numbers: that needs the -dbg package's vmlinux. Where a
# name appears more than once (static functions in different files), the
# lowest address keeps it. The addresses are those of the boot that printed
# the table: boot `nokaslr` to get the same ones every time.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: examples/linux/kallsyms-elf.sh INPUT OUTPUT.elf" >&2
    exit 2
fi
input=$1
out=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if grep -q '^kvmstub-linux: kallsyms begin' "$input"; then
    tr -d '\r' <"$input" | sed -n '/^kvmstub-linux: kallsyms begin/,/^kvmstub-linux: kallsyms end/p' |
        sed '1d;$d' | base64 -d | gunzip >"$tmp/kallsyms"
else
    cp "$input" "$tmp/kallsyms"
fi
# Kernel addresses only: per-CPU symbols are offsets (type A, small values),
# and a table read without the right to see addresses is all zeros.
awk 'NF >= 3 && $1 ~ /^ffff/ && $2 ~ /^[tTwWdDbBrRvV]$/ { print $1, $2, $3 }' "$tmp/kallsyms" |
    LC_ALL=C sort -k1,1 -k3,3 >"$tmp/sorted"
if [ ! -s "$tmp/sorted" ]; then
    echo "kallsyms-elf: $input holds no kernel addresses (read as root, with kptr_restrict below 2?)" >&2
    exit 1
fi

# One section for each run of consecutive symbols of one kind (code or data),
# from its first symbol to the next run's; the last ends at the last symbol.
# Addresses are 64-bit: awk's doubles cannot hold them, so offsets are
# computed from the low 32 bits of addresses that share their high 32 bits.
awk '
function hex(s,    i, v) { v = 0; for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1; return v }
BEGIN { n = 0 }
{
    kind = ($2 ~ /[tTwW]/) ? "text" : "data"
    if (substr($1, 1, 8) != high && n > 0) { print "kallsyms-elf: the kernel spans more than 4 GiB" > "/dev/stderr"; exit 1 }
    high = substr($1, 1, 8); low = hex(substr($1, 9))
    if (n == 0 || kind != kinds[n]) { n++; kinds[n] = kind; starts[n] = low }
    if ($3 in seen) next
    seen[$3] = 1
    sec[NR] = n; off[NR] = low - starts[n]; name[NR] = $3; typ[NR] = $2
    last = low
}
END {
    for (i = 1; i <= n; i++) {
        ends = (i < n) ? starts[i + 1] : last + 1
        printf "%s %s %x %x\n", i, kinds[i], starts[i], ends - starts[i] > "'"$tmp/sections"'"
    }
    printf "" > "'"$tmp/syms.s"'"
    cur = 0
    for (r = 1; r <= NR; r++) {
        if (!(r in sec)) continue
        if (sec[r] != cur) {
            cur = sec[r]
            printf "\t.section .k%d,\"%s\",@nobits\n", cur, kinds[cur] == "text" ? "ax" : "aw" >> "'"$tmp/syms.s"'"
        }
        printf "\t.org 0x%x\n", off[r] >> "'"$tmp/syms.s"'"
        # ld leaves out local symbols of sections without contents: all are
        # global (or weak), which the removal of repeated names allows.
        printf "\t.%s \"%s\"\n", typ[r] ~ /[wW]/ ? "weak" : "globl", name[r] >> "'"$tmp/syms.s"'"
        printf "\t.type \"%s\", %s\n\"%s\":\n", name[r], kinds[cur] == "text" ? "@function" : "@object", name[r] >> "'"$tmp/syms.s"'"
    }
}' "$tmp/sorted"
high=$(head -n1 "$tmp/sorted" | cut -c1-8)
starts=()
while read -r i _kind start size; do
    starts+=("--section-start=.k$i=0x$high$(printf %08x "0x$start")")
    # Back into each section, to give it its full size.
    printf '\t.section .k%s\n\t.org 0x%s\n' "$i" "$size" >>"$tmp/syms.s"
done <"$tmp/sections"
as --64 -o "$tmp/syms.o" "$tmp/syms.s"
# Code and data ranges are contiguous, so ld makes one writable, executable
# segment of them; nothing ever runs from this file.
quiet=()
case "$(ld --help 2>/dev/null)" in
*--no-warn-rwx-segments*) quiet=(--no-warn-rwx-segments) ;;
esac
ld -m elf_x86_64 -nostdlib -static --no-dynamic-linker -z noexecstack --build-id=none \
    -z max-page-size=0x1000 -e 0x"$(head -n1 "$tmp/sorted" | cut -d' ' -f1)" \
    "${quiet[@]}" "${starts[@]}" -o "$tmp/out.elf" "$tmp/syms.o"
mv "$tmp/out.elf" "$out"
cp "$tmp/sorted" "${out%.elf}.map"
