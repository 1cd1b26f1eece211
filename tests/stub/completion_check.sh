#!/usr/bin/env bash
# tests/stub/completion_check.sh KVMSTUB COMPLETION: the bash completion
# (stub/kvmstub.bash-completion) completes what kvmstub takes. Checks that
# `kvmstub -<TAB>` offers exactly the options of `kvmstub --help`, that the
# values of the options with a fixed set are completed, and files for the
# options that take one and for the image. No KVM needed.
set -euo pipefail
kvmstub=$1
completion=$2
. "$completion"
fails=0

# complete WORD...: COMPREPLY, sorted, one line, for the command line
# "kvmstub WORD..." with the cursor at the end of the last word.
complete_line() {
    COMP_WORDS=(kvmstub "$@")
    COMP_CWORD=$#
    COMP_LINE="kvmstub $*"
    COMP_POINT=${#COMP_LINE}
    _kvmstub
    printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}

expect() { # expect WANT WORD...
    local want=$1 got
    shift
    got=$(complete_line "$@")
    if [ "$got" != "$want" ]; then
        echo "FAIL: 'kvmstub $*<TAB>' completes to '$got', not '$want'" >&2
        fails=$((fails + 1))
    fi
}

# Every option of --help, and no other.
help_opts=$("$kvmstub" --help | grep '^  -' | tr ',();' '    ' |
    grep -oE '(^| )--?[A-Za-z][A-Za-z0-9-]*' | tr -d ' ' | sort -u | tr '\n' ' ' | sed 's/ $//')
[ -n "$help_opts" ] || { echo "FAIL: no options found in '$kvmstub --help'" >&2; exit 1; }
expect "$help_opts" -

expect "--machine" --mach
expect "--machine" --run --mach
expect "bare pc" --machine ""
expect "pc" --machine p
expect "auto debug-registers page-traps" --watchpoints ""
expect "page-traps" --watchpoints pa
expect "amd64 auto i386 i8086" --gdb-arch ""
expect "auto bin bzimage elf multiboot" --format ""
expect "long protected real" --mode ""
expect "exit stop" --on-hlt ""
expect "run stop" --on-detach ""
expect "" --cpus ""

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
touch "$dir/initramfs.cpio.gz" "$dir/kernel.elf" "$dir/saved.snap"
cd "$dir"
expect "initramfs.cpio.gz" --initrd i
expect "saved.snap" --restore s
expect "kernel.elf" --run k
expect "initramfs.cpio.gz kernel.elf saved.snap" --machine pc ""

if [ $fails -ne 0 ]; then
    echo "completion_check: $fails check(s) failed; fix stub/kvmstub.bash-completion" >&2
    exit 1
fi
echo "completion_check: the completion offers the $(wc -w <<<"$help_opts") options of --help and their values"
