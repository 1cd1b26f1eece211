/* What a KVM internal error was about: the instruction at rip (the bytes
 * KVM hands back with an emulation failure, or RAM's), and whether its
 * code or an operand lay outside RAM. Runs on the vCPU's thread at the
 * exit, while the registers are those of the failed instruction. */
#include "decode.h"
#include "internal.h"

#include <string.h>

/* A linear address whose page tables lead outside RAM: 1 with *gpa. */
static int outside_ram(struct vm_cpu *cpu, uint64_t linear, uint64_t *gpa)
{
    return vm_translate(cpu, linear, gpa) == 0 && !vm_mem_contains(&cpu->vm->mem, *gpa, 1);
}

void vm_internal_error_event(struct vm_cpu *cpu, uint64_t pc, struct vm_event *ev)
{
    const struct kvm_run *run = cpu->run;
    ev->type = VM_EVENT_INTERNAL_ERROR;
    memset(&ev->u.internal, 0, sizeof(ev->u.internal));
    ev->u.internal.exit_reason = KVM_EXIT_INTERNAL_ERROR;
    ev->u.internal.suberror = run->internal.suberror;
    ev->u.internal.ndata = run->internal.ndata < 4 ? run->internal.ndata : 4;
    for (uint32_t i = 0; i < ev->u.internal.ndata; i++)
        ev->u.internal.data[i] = run->internal.data[i];
    if (run->internal.suberror != KVM_INTERNAL_ERROR_EMULATION ||
        vm_regcache_fetch(&cpu->rc, VM_RC_REGS | VM_RC_SREGS))
        return;
    const struct kvm_sregs *s = &cpu->rc.sregs;
    ev->u.internal.code_bits = (s->efer & (1u << 10)) && s->cs.l ? 64 : s->cs.db ? 32 : 16;
    /* The flags are data[0]; the bytes follow, when KVM says they do. */
    if (run->emulation_failure.ndata >= 3 &&
        (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) &&
        run->emulation_failure.insn_size) {
        uint8_t n = run->emulation_failure.insn_size;
        if (n > sizeof(ev->u.internal.insn))
            n = sizeof(ev->u.internal.insn);
        memcpy(ev->u.internal.insn, run->emulation_failure.insn_bytes, n);
        ev->u.internal.insn_len = n;
        ev->u.internal.insn_from_kvm = true;
    }
    uint64_t gpa;
    if (outside_ram(cpu, pc, &gpa)) {
        ev->u.internal.cause = VM_INTERNAL_FETCH_NOT_RAM;
        ev->u.internal.gpa = gpa;
        return;
    }
    if (!ev->u.internal.insn_len) {
        size_t got = 0;
        vm_read_linear(cpu, pc, ev->u.internal.insn, sizeof(ev->u.internal.insn), &got);
        ev->u.internal.insn_len = (uint8_t)got;
    }
    if (!ev->u.internal.insn_len)
        return; /* rip is not mapped: nothing more to say */
    struct vm_access acc[VM_DECODE_MAX_ACCESSES];
    size_t n = vm_decode_access(ev->u.internal.insn, ev->u.internal.insn_len, &cpu->rc.regs, s,
                                acc);
    for (size_t i = 0; i < n; i++) {
        if (outside_ram(cpu, acc[i].addr, &gpa) ||
            (acc[i].size > 1 && outside_ram(cpu, acc[i].addr + acc[i].size - 1, &gpa))) {
            ev->u.internal.cause = VM_INTERNAL_ACCESS_NOT_RAM;
            ev->u.internal.gpa = gpa;
            return;
        }
    }
    ev->u.internal.cause = VM_INTERNAL_CANNOT_EMULATE;
}
