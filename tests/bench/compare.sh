#!/usr/bin/env bash
# tests/bench/compare.sh: kvmstub against QEMU's gdbstub, same guests, one run.
#
#   tests/bench/compare.sh [--seconds N] [--timeout S] [BUILD_DIR]
#
# BUILD_DIR (default: build) holds kvmstub, tests/bench/rspbench and the
# benchmark guests. rspbench launches each stub itself, first kvmstub, then
# (when qemu-system-x86_64 is installed) QEMU with KVM, on the same boot
# sectors: bench_loop for stepping, registers, memory and breakpoints,
# bench_serial for guest serial output. The table gives each figure for both
# and the ratio kvmstub/QEMU; the header (date, kernel, CPU, this command
# line, the loopback ping-pong floor) makes the output ready for a README.
# --seconds is the time spent on each figure (default 2); --timeout the
# longest wait for one reply (default 5). Needs /dev/kvm; on a host without
# it: .ci/kvm-machine -- tests/bench/compare.sh BUILD_DIR
set -uo pipefail

cmdline="$0 $*"
seconds=2
timeout_s=5
build=build
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds | --timeout)
        if [ $# -lt 2 ]; then
            echo "compare.sh: $1 needs a value" >&2
            exit 2
        fi
        if [ "$1" = --seconds ]; then seconds=$2; else timeout_s=$2; fi
        shift 2
        ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) build=$1; shift ;;
    esac
done

bench=$build/tests/bench
rspbench=$bench/rspbench
missing=""
for f in "$rspbench" "$bench/bench_loop.elf" "$bench/bench_loop.bin" "$bench/bench_loop.img" \
    "$bench/bench_serial.elf" "$bench/bench_serial.bin" "$bench/bench_serial.img"; do
    [ -e "$f" ] || missing="$missing $f"
done
if [ -n "$missing" ]; then
    echo "compare.sh: missing from the build:$missing" >&2
    echo "compare.sh: build them with 'cmake --build $build --target rspbench kvmstep bench_images'" \
        "(KVMSTUB_BENCH=ON), or pass the build directory as the argument" >&2
    exit 2
fi
if [ ! -w /dev/kvm ]; then
    echo "compare.sh: /dev/kvm is missing or not writable, so neither stub can run a guest;" \
        "on a host without KVM run '.ci/kvm-machine -- $cmdline'" >&2
    exit 2
fi

# Addresses come from the guests' symbols, so editing a guest cannot leave
# stale numbers here. symbol GUEST NAME
symbol() {
    nm "$bench/$1.elf" | awk -v s="$2" '$3 == s { print "0x" $1; found = 1 }
        END { if (!found) exit 1 }'
}
if ! bp_addr=$(symbol bench_loop bench_bp) || ! counter_addr=$(symbol bench_loop bench_counter) ||
    ! loop_addr=$(symbol bench_loop bench_loop) || ! flood_addr=$(symbol bench_serial bench_flood); then
    echo "compare.sh: a guest lacks its bench_* symbols (is nm installed? is the build stale?)" >&2
    exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

kvmstub=""
for k in "$build/kvmstub" "$build/stub/kvmstub"; do
    if [ -x "$k" ]; then kvmstub=$k; break; fi
done
qemu=$(command -v qemu-system-x86_64 || true)

q() { printf '%q' "$1"; }
# {port} is replaced by rspbench with a free port it picked.
kvmstub_cmd() { echo "$(q "$kvmstub") --port {port} --load 0x7c00 --format bin --mode real $(q "$1")"; }
qemu_cmd() {
    echo "$(q "$qemu") -enable-kvm -display none -nodefaults -S -gdb tcp:127.0.0.1:{port}" \
        "-drive format=raw,file=$(q "$1")"
}

common=(--seconds "$seconds" --timeout "$timeout_s")
loop_args=(--bp-addr "$bp_addr" --counter-addr "$counter_addr" --mem-addr 0x10000 --mem-len 0x20000
    --watch-addr 0x40000)
serial_args=(--serial --only serial --serial-seq --counter-addr "$counter_addr")

failed=0
# measure LABEL COMMAND ARGS...: one rspbench run; figures in $tmp/LABEL.out.
measure() {
    local label=$1 cmd=$2
    shift 2
    # rspbench bounds every reply itself; this only guards against the
    # unforeseen, generously.
    if timeout 1800 "$rspbench" --launch "$cmd" "${common[@]}" "$@" \
        >"$tmp/$label.out" 2>"$tmp/$label.log"; then
        return 0
    fi
    failed=1
    echo "compare.sh: the $label run failed; its last messages:" >&2
    tail -n 8 "$tmp/$label.log" | sed 's/^/    /' >&2
    return 1
}

# value LABEL FIGURE: the figure from one run, empty if absent.
value() { awk -v k="$2" '$1 == k { print $2 }' "$tmp/$1.out" 2>/dev/null; }

# figure STUB FIGURE: the stub's value for the table ('-' if not measured).
figure() {
    local v
    case "$2" in
    serial_MBps) v=$(value "$1-serial" "$2") ;;
    peak_rss_KiB) # the higher of the two runs
        v=$( { value "$1-loop" "$2"; value "$1-serial" "$2"; } | sort -n | tail -n 1) ;;
    *) v=$(value "$1-loop" "$2") ;;
    esac
    echo "${v:--}"
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b + 0 > 0) printf "%.2f", a / b
        else printf "-" }'
}

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
pingpong=$("$rspbench" --pingpong --seconds "$seconds" | awk '{ print $2 }')
step_us=""
if [ -x "$bench/kvmstep" ]; then
    step_us=$("$bench/kvmstep" --seconds "$seconds" "$bench/bench_loop.bin" |
        awk '$1 == "kvm_step_us" { print $2 }')
fi
serial_ceiling=""
if [ -x "$bench/kvmstep" ]; then
    serial_ceiling=$("$bench/kvmstep" --seconds "$seconds" --serial "$bench/bench_serial.bin" |
        awk '$1 == "kvm_serial_MBps" { print $2 }')
fi
# No stub steps faster than one loopback exchange plus one KVM step.
floor=$(awk -v p="${pingpong:-0}" -v s="${step_us:-0}" 'BEGIN {
    if (p > 0 && s > 0) printf "%.1f", 1 / (1 / p + s / 1e6) }')
echo "rspbench: kvmstub against QEMU's gdbstub, both on KVM, same boot-sector guests"
echo "date:      $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "kernel:    $(uname -r)"
echo "cpu:       ${cpu:-unknown} ($(nproc) online)"
echo "command:   $cmdline"
echo "loopback:  ${pingpong:-?} 1-byte TCP ping-pong exchanges/s between two threads (the floor"
echo "           under every round trip below)"
echo "kvm step:  ${step_us:-?} µs per single step through kvmstub's vm layer (kvmstep)"
echo "floor:     ${floor:-?} steps/s = 1 / (1/loopback + one KVM step)"
echo "serial:    ${serial_ceiling:-?} MB/s written by bench_serial and collected by kvmstub's vm"
echo "           layer alone, without protocol or client (kvmstep --serial): the ceiling"
echo "figures:   ${seconds} s each; MB = 10^6 bytes; higher is better except first_reply_ms, peak_rss_KiB"
if [ -n "$kvmstub" ]; then
    echo "kvmstub:   $(kvmstub_cmd "$bench/bench_loop.bin")"
else
    echo "kvmstub:   not built ($build/kvmstub is missing): its column stays empty"
fi
if [ -n "$qemu" ]; then
    echo "qemu:      $("$qemu" --version | head -n 1)"
    echo "           $(qemu_cmd "$bench/bench_loop.img")"
else
    echo "qemu:      qemu-system-x86_64 is not installed: its column stays empty"
fi
echo

if [ -n "$kvmstub" ]; then
    measure kvmstub-loop "$(kvmstub_cmd "$bench/bench_loop.bin")" "${loop_args[@]}"
    measure kvmstub-serial "$(kvmstub_cmd "$bench/bench_serial.bin")" "${serial_args[@]}"
fi
if [ -n "$qemu" ]; then
    # QEMU starts in its BIOS: run into the guest's loop first, so that both
    # stubs measure the same code. (The loop, not 0x7c00: should the hardware
    # breakpoint not fire, as under nested KVM, rspbench falls back to
    # software ones, and only an address the guest keeps coming back to
    # catches those after the BIOS has loaded the sector.)
    measure qemu-loop "$(qemu_cmd "$bench/bench_loop.img")" "${loop_args[@]}" --run-to "$loop_addr"
    measure qemu-serial "$(qemu_cmd "$bench/bench_serial.img")" "${serial_args[@]}" \
        --run-to "$flood_addr"
fi

printf '%-22s %14s %14s %14s\n' figure kvmstub QEMU kvmstub/QEMU
for f in packet_size first_reply_ms steps_per_sec g_per_sec m_MBps x_MBps M_MBps X_MBps \
    bp_roundtrips_per_sec loop_per_sec loop_watched_per_sec serial_MBps peak_rss_KiB; do
    k=$(figure kvmstub "$f")
    qv=$(figure qemu "$f")
    printf '%-22s %14s %14s %14s\n' "$f" "$k" "$qv" "$(ratio "$k" "$qv")"
done
k=$(figure kvmstub steps_per_sec)
if [ -n "$floor" ] && [ "$k" != - ]; then
    echo "kvmstub steps_per_sec / floor: $(ratio "$k" "$floor")"
fi
k=$(figure kvmstub serial_MBps)
if [ -n "$serial_ceiling" ] && [ "$k" != - ]; then
    echo "kvmstub serial_MBps / ceiling: $(ratio "$k" "$serial_ceiling")"
fi
# rspbench's notes explain an n/a or a fallback: keep them with the table.
for label in kvmstub-loop kvmstub-serial qemu-loop qemu-serial; do
    [ -f "$tmp/$label.log" ] || continue
    sed -n "s/^rspbench: note: /note ($label): /p" "$tmp/$label.log"
done
exit "$failed"
