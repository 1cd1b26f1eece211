#include "kvm_error.h"

#include "vm/disasm.h"

#include <stdio.h>

static const char *suberror_name(uint32_t e)
{
    switch (e) {
    case KVM_INTERNAL_ERROR_EMULATION: return "emulation failure";
    case KVM_INTERNAL_ERROR_SIMUL_EX: return "an exception while delivering one";
    case KVM_INTERNAL_ERROR_DELIVERY_EV: return "an event KVM could not deliver";
    case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON: return "an exit KVM did not expect";
    default: return "unknown to kvmstub";
    }
}

void stub_kvm_error_text(const struct vm_event *ev, uint64_t rip, char *out, size_t cap)
{
    /* The instruction: `text` where known, its bytes always. */
    char text[80] = "", bytes[48] = "", insn[140] = "an instruction";
    size_t k = 0;
    for (unsigned i = 0; i < ev->u.internal.insn_len && k + 4 < sizeof(bytes); i++)
        k += (size_t)snprintf(bytes + k, sizeof(bytes) - k, "%s%02x", i ? " " : "",
                              ev->u.internal.insn[i]);
    if (ev->u.internal.insn_len &&
        vm_disasm(ev->u.internal.insn, ev->u.internal.insn_len, ev->u.internal.code_bits, text,
                  sizeof(text)))
        snprintf(insn, sizeof(insn), "`%s` (%s)", text, bytes);
    else if (ev->u.internal.insn_len)
        snprintf(insn, sizeof(insn), "an instruction kvmstub does not decode (%s)", bytes);
    unsigned sub = ev->u.internal.suberror;
    unsigned long long pc = (unsigned long long)rip, gpa = ev->u.internal.gpa;
    switch (ev->u.internal.cause) {
    case VM_INTERNAL_FETCH_NOT_RAM:
        snprintf(out, cap,
                 "KVM internal error %u at rip 0x%llx: code fetched from physical 0x%llx, which "
                 "is not RAM (a bad jump, or code not loaded there?)",
                 sub, pc, gpa);
        break;
    case VM_INTERNAL_ACCESS_NOT_RAM:
        snprintf(out, cap,
                 "KVM internal error %u at rip 0x%llx: %s touches physical 0x%llx, not RAM, "
                 "and KVM could not emulate it",
                 sub, pc, insn, gpa);
        break;
    case VM_INTERNAL_CANNOT_EMULATE:
        snprintf(out, cap,
                 "KVM internal error %u at rip 0x%llx: the host's KVM could not emulate %s "
                 "(on RAM; kvm-pvm cannot emulate SSE)",
                 sub, pc, insn);
        break;
    default:
        snprintf(out, cap, "KVM internal error %u (%s) at rip 0x%llx", sub, suberror_name(sub),
                 pc);
        break;
    }
}
