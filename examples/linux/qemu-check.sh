#!/usr/bin/env bash
# examples/linux/qemu-check.sh: boots the Linux example under QEMU's software
# emulation (TCG) and checks what the kvmstub tests will check, so that the
# kernel, the initramfs and the command line are known to be good apart from
# kvmstub.
#
#   examples/linux/qemu-check.sh [--cpus N] [--accel tcg|kvm] [--cache DIR] [--append WORDS]
#
# Boots with -smp N (default 1) under TCG (or KVM: --accel kvm), waits for
# the init's marker, checks that the init counts N CPUs, types a command on
# the serial console and waits for its answer, then types 'reboot -f' and
# checks that QEMU ends (-no-reboot) with status 0. Prints the seconds from QEMU's start to the marker and to each
# answer. Exit status 0 when all of it worked, 1 otherwise.
set -euo pipefail

cpus=1
accel=tcg
cache_args=()
extra=""
while [ $# -gt 0 ]; do
    case "$1" in
    --cpus) cpus="$2"; shift 2 ;;
    --accel) accel="$2"; shift 2 ;;
    --cache) cache_args=(--cache "$2"); shift 2 ;;
    --append) extra="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/{/^set -e/!p}' "$0"; exit 0 ;;
    *) echo "qemu-check: unknown argument '$1'; see --help" >&2; exit 2 ;;
    esac
done
here=$(dirname "$0")
paths=$("$here/assets.sh" "${cache_args[@]}" paths)
eval "$paths"

start=$(date +%s%N)
elapsed() {
    local ms=$(( ($(date +%s%N) - start) / 1000000 ))
    printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}
# -nic none: no network card, hence no iPXE ROM delaying the BIOS. One
# socket per CPU: the BIOS's MP table, which acpi=off makes the kernel read,
# lists only the first CPU of each socket, and kvmstub's lists every CPU.
coproc QEMU { exec qemu-system-x86_64 -accel "$accel" -m 256 -smp "$cpus,sockets=$cpus" -nographic -no-reboot \
    -nic none -monitor none -serial stdio -kernel "$KERNEL" -initrd "$INITRD" \
    -append "$CMDLINE $extra" 2>&1; }
qemu_pid=$QEMU_PID
trap 'kill "$qemu_pid" 2>/dev/null || true' EXIT

# expect PATTERN SECONDS: read console lines until one matches (grep -E)
expect() {
    local line deadline=$(( $(date +%s) + $2 ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        if IFS= read -r -t 1 line <&"${QEMU[0]}"; then
            line=${line//$'\r'/}
            printf '  | %s\n' "$line"
            if [[ "$line" =~ $1 ]]; then
                matched=$line
                return 0
            fi
        elif [ -z "${QEMU_PID:-}" ]; then
            break
        fi
    done
    echo "qemu-check: no line matching '$1' within $2 s" >&2
    return 1
}
send() { printf '%s\n' "$1" >&"${QEMU[1]}"; }

expect '^kvmstub-linux: init reached' 120
echo "qemu-check: marker after $(elapsed) s"
expect '^kvmstub-linux: cpus=' 10
if [ "$matched" != "kvmstub-linux: cpus=$cpus" ]; then
    echo "qemu-check: expected $cpus CPUs, the init says: $matched" >&2
    exit 1
fi
# The shell's prompt may arrive without a newline: answer lines are what count.
# shellcheck disable=SC2016 # the guest's shell expands it
send 'echo answer=$((6*7))'
expect '^answer=42' 30
echo "qemu-check: shell answered after $(elapsed) s"
send 'uname -m'
expect '^x86_64' 30
send 'reboot -f'
status=0
wait "$qemu_pid" || status=$?
trap - EXIT
if [ "$status" -ne 0 ]; then
    echo "qemu-check: QEMU ended with status $status after 'reboot -f'" >&2
    exit 1
fi
echo "qemu-check: 'reboot -f' ended QEMU with status 0 after $(elapsed) s"
