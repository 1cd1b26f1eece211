#!/usr/bin/env bash
# tests/bench/smp.sh: what more vCPUs cost a gdb session, in one run.
#
#   tests/bench/smp.sh [--seconds N] [BUILD_DIR]
#
# rspbench launches kvmstub on the smp example (examples/smp, --machine pc)
# with 1, 2 and 4 vCPUs, each counting without end (rounds=4000000000), and
# measures the two things issue 14 bounds: stepping one vCPU with the others
# held (vCont;s:1, gdb's scheduler-locking step; the interrupt figure runs
# first, so the APs have started) and the time from Ctrl-C (0x03) to the
# stop reply with every vCPU running (median of 50). The table gives each
# figure and its ratio to the 1-vCPU one. Needs /dev/kvm; on a host without
# it: .ci/kvm-machine -- tests/bench/smp.sh BUILD_DIR
set -uo pipefail

seconds=2
build=build
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds)
        [ $# -ge 2 ] || { echo "smp.sh: --seconds needs a value" >&2; exit 2; }
        seconds=$2
        shift 2
        ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "smp.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) build=$1; shift ;;
    esac
done
rspbench=$build/tests/bench/rspbench
kvmstub=$build/kvmstub
elf=$build/examples/smp.elf
for f in "$rspbench" "$kvmstub" "$elf"; do
    if [ ! -e "$f" ]; then
        echo "smp.sh: $f is missing: build first (cmake --build $build)" >&2
        exit 1
    fi
done

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs: $0 $*"
printf '%-6s %14s %8s %14s %8s %14s\n' vcpus steps_per_sec ratio interrupt_ms ratio \
    interrupt_max_ms
base_steps="" base_int=""
for n in 1 2 4; do
    out=$("$rspbench" --seconds "$seconds" --timeout 30 --only interrupt,steps --thread 1 \
        --launch "$kvmstub --port {port} --history 0 --machine pc --cpus $n --cmdline rounds=4000000000 $elf" \
        2>/tmp/smp-bench.$$) || { cat /tmp/smp-bench.$$ >&2; rm -f /tmp/smp-bench.$$; exit 1; }
    rm -f /tmp/smp-bench.$$
    steps=$(awk '$1 == "steps_per_sec" {print $2}' <<<"$out")
    int=$(awk '$1 == "interrupt_ms" {print $2}' <<<"$out")
    intmax=$(awk '$1 == "interrupt_max_ms" {print $2}' <<<"$out")
    [ -n "$base_steps" ] || { base_steps=$steps; base_int=$int; }
    # Step cost is the inverse of the rate: ratio = cost(n) / cost(1).
    printf '%-6s %14s %8s %14s %8s %14s\n' "$n" "$steps" \
        "$(awk -v a="$base_steps" -v b="$steps" 'BEGIN {printf "%.2f", a / b}')" "$int" \
        "$(awk -v a="$int" -v b="$base_int" 'BEGIN {printf "%.2f", a / b}')" "$intmax"
done
