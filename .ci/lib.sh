# .ci/lib.sh: sourced by .ci/deps, .ci/test, .ci/start and .ci/run. The one
# place that decides where kvmstub and the tests that need KVM run here.
#
# Natively when /dev/kvm exists and the CPU has hardware virtualization (vmx
# or svm in /proc/cpuinfo). Otherwise (no /dev/kvm, or a software KVM such as
# kvm-pvm, whose quirks break tests: int3 and data breakpoints never reach
# userspace, SSE ends in emulation failures) inside .ci/kvm-machine, an
# emulated x86 machine whose Linux kernel offers a real KVM: slow, but real.
#
#   KVMSTUB_NATIVE=1      run natively on any /dev/kvm, software ones included
#   KVMSTUB_NO_MACHINE=1  never use the emulated machine: run here with what
#                         this host has (without /dev/kvm the KVM suites skip,
#                         or fail under KVMSTUB_REQUIRE_KVM=1)

# ci_decide: sets ci_where to "native" or "machine", and ci_why to one line
# saying why. Returns 2, with a message, for KVMSTUB_NATIVE=1 on a host with
# no /dev/kvm at all.
ci_decide() {
    local hw=0
    grep -qwE 'vmx|svm' /proc/cpuinfo 2>/dev/null && hw=1
    if [ "${KVMSTUB_NO_MACHINE:-0}" = 1 ]; then
        ci_where=native
        ci_why="KVMSTUB_NO_MACHINE=1: running here, without the emulated machine"
    elif [ "${KVMSTUB_NATIVE:-0}" = 1 ]; then
        if [ ! -e /dev/kvm ]; then
            echo "KVMSTUB_NATIVE=1, but this host has no /dev/kvm; unset it to use the emulated" \
                "machine, or set KVMSTUB_NO_MACHINE=1 to run without KVM (the KVM suites skip)" >&2
            return 2
        fi
        ci_where=native
        ci_why="KVMSTUB_NATIVE=1: using this host's /dev/kvm"
    elif [ -e /dev/kvm ] && [ $hw = 1 ]; then
        ci_where=native
        ci_why="this host has /dev/kvm with hardware virtualization"
    elif [ -e /dev/kvm ]; then
        ci_where=machine
        ci_why="this host's /dev/kvm is a software KVM (no vmx or svm in /proc/cpuinfo);"
        ci_why+=" running in an emulated machine with KVM (slow; KVMSTUB_NATIVE=1 uses it anyway)"
    else
        ci_where=machine
        ci_why="this host has no /dev/kvm; running in an emulated machine with KVM (slow)"
    fi
    return 0
}

# ci_run_kvm PREFIX COMMAND [ARGS...]: runs COMMAND where ci_decide says,
# after one line "PREFIX: <why>" when that is the emulated machine.
ci_run_kvm() {
    local prefix=$1
    shift
    ci_decide || return
    if [ "$ci_where" = native ]; then
        "$@"
    else
        echo "$prefix: $ci_why" >&2
        "$(dirname "${BASH_SOURCE[0]}")/kvm-machine" -- "$@"
    fi
}
