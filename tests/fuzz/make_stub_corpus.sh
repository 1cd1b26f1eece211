#!/usr/bin/env bash
# Regenerates tests/fuzz/corpus/stub from real gdb sessions: kvmstub runs
# with --trace, and every packet gdb sent becomes a line of a seed (the
# format fuzz_stub.c reads: a first byte 0x01, then payloads, one per line).
#   tests/fuzz/make_stub_corpus.sh BUILD_DIR     (needs /dev/kvm, gdb, perl)
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
out="$here/corpus/stub"
guest="$build/tests/e2e/e2e_target64.elf"
mkdir -p "$out"
session() { # name, rdi mode, gdb commands...
    local name=$1 mode=$2
    shift 2
    local args=()
    for c in "$@"; do args+=(-ex "$c"); done
    gdb -nx -batch -ex "target remote | $build/kvmstub --stdio --trace --reg rdi=$mode $guest" \
        "${args[@]}" "$guest" >/dev/null 2>"$out/.trace" || true
    # "kvmstub: <- PAYLOAD" lines; \xNN escapes back to bytes
    { printf '\001'; perl -ne 'if (/^kvmstub: <- (.*)$/ && $1 ne "interrupt (0x03)") {
          my $p = $1; $p =~ s/\\x([0-9a-f]{2})/chr(hex($1))/ge; print "$p\n"; }' "$out/.trace"; } \
        >"$out/$name"
    rm -f "$out/.trace"
}
session connect 0 "info registers" "x/16xb &value" "print \$pc"
session step_and_break 0 "stepi" "stepi" "break count_done" "continue" "info registers rip"
session watch 0 "watch *(int *)&counter" "continue" "continue" "rwatch *(int *)&value" "continue"
session write 0 "set \$rax = 5" "set var *(int *)&counter = 3" "print *(int *)&counter" "kill"
session monitor 0 "monitor help" "monitor info" "monitor regs" "monitor reset" "monitor serial"
session exit 2 "continue"
session detach 0 "hbreak halt" "continue" "detach"
session reverse_gdb 0 "break count_loop" "continue" "stepi" "stepi" "reverse-stepi" \
    "reverse-stepi" "reverse-stepi" "continue" "reverse-continue" "delete" \
    "watch *(int *)&counter" "reverse-continue" "continue" "reverse-step" "reverse-next" \
    "monitor record info" "monitor snapshot save a" "stepi" "monitor snapshot load a" \
    "monitor record stop" "reverse-stepi"
echo "seeds in $out:"
ls -la "$out"
