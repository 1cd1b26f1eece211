/* The debug paths that real Intel and AMD hosts take, driven by scripted
 * KVM exits. Development hosts of kvmstub may never produce them (nested
 * SVM under emulation intercepts no int3 and fires no DR breakpoint), so
 * each test writes into kvm_run what the KVM API document says KVM writes
 * for that exit, calls the run loop's own exit handler (vm_cpu_handle_exit)
 * on a real vCPU with real registers, and then, where the outcome is an
 * action on KVM (an exception given back to the guest, the debug state of
 * the next entry), checks it through KVM itself and lets the guest run.
 *
 * What this proves: kvmstub's decisions for each documented exit. What it
 * does not: that a host delivers those exits (vm/probe.c finds that out,
 * and test_vm_debug runs whatever this host delivers for real). */
#include "testmain.h"
#include "vmtest.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#define CODE 0x1000u
#define DB_HANDLER 0x2000u
#define BP_HANDLER 0x2100u
#define DR6_BS (1u << 14)
#define DR6_FIXED 0xffff0ff0u

/* A real-mode guest at CODE (nop x 8; hlt) whose #DB and #BP handlers end
 * it through the debug-exit port with 0x41 and 0x42: seeing that status
 * means the guest's own handler ran. */
static struct vm *guest(void)
{
    static const uint8_t code[] = {0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0xf4};
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_REAL, CODE, code, sizeof(code)), 0);
    static const uint8_t db[] = {0xb0, 0x41, 0xe6, 0xf4, 0xf4}; /* mov $0x41,%al; out %al,$0xf4 */
    static const uint8_t bp[] = {0xb0, 0x42, 0xe6, 0xf4, 0xf4};
    uint32_t ivt1 = DB_HANDLER, ivt3 = BP_HANDLER; /* segment 0, offset */
    CU_ASSERT_EQUAL(vm_mem_write(&vm->mem, 1 * 4, &ivt1, 4), 0);
    CU_ASSERT_EQUAL(vm_mem_write(&vm->mem, 3 * 4, &ivt3, 4), 0);
    CU_ASSERT_EQUAL(vm_mem_write(&vm->mem, DB_HANDLER, db, sizeof(db)), 0);
    CU_ASSERT_EQUAL(vm_mem_write(&vm->mem, BP_HANDLER, bp, sizeof(bp)), 0);
    return vm;
}

static void script_debug(struct vm_cpu *cpu, unsigned vector, uint64_t pc, uint64_t dr6)
{
    cpu->run->exit_reason = KVM_EXIT_DEBUG;
    cpu->run->debug.arch.exception = vector;
    cpu->run->debug.arch.pc = pc;
    cpu->run->debug.arch.dr6 = dr6;
    cpu->run->debug.arch.dr7 = 0x400;
}

/* The exception KVM holds for the guest's next entry, or -1. */
static int pending_exception(struct vm_cpu *cpu)
{
    struct kvm_vcpu_events e;
    CU_ASSERT_EQUAL_FATAL(ioctl(cpu->fd, KVM_GET_VCPU_EVENTS, &e), 0);
    return e.exception.pending || e.exception.injected ? e.exception.nr : -1;
}

static void test_planted_int3_is_a_hit_with_rip_on_it(void)
{
    /* VMX and SVM both leave rip on the int3 and report its linear address
     * in debug.arch.pc. */
    struct vm *vm = guest();
    struct vm_cpu *cpu = &vm->cpus[0];
    vm->debug.bp_method = VM_BP_INT3;
    CU_ASSERT_EQUAL(vm_bp_insert(cpu, CODE + 2, false), 0);
    CU_ASSERT_EQUAL(vm_reg_set(cpu, VM_REG_RIP, CODE + 2), 0);
    script_debug(cpu, 3, CODE + 2, 0);
    struct vm_event ev;
    CU_ASSERT_EQUAL(vm_cpu_handle_exit(cpu, VM_RUN_CONTINUE, &ev), 1);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_BREAKPOINT);
    CU_ASSERT_EQUAL(ev.u.bp.addr, CODE + 2);
    CU_ASSERT_FALSE(ev.u.bp.hardware);
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RIP), CODE + 2);
    /* A host that reports the trap after the int3 gets rip moved back. */
    CU_ASSERT_EQUAL(vm_reg_set(cpu, VM_REG_RIP, CODE + 3), 0);
    script_debug(cpu, 3, CODE + 2, 0);
    CU_ASSERT_EQUAL(vm_cpu_handle_exit(cpu, VM_RUN_CONTINUE, &ev), 1);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_BREAKPOINT);
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RIP), CODE + 2);
    vm_destroy(vm);
}

static void test_guest_int3_goes_back_to_the_guest(void)
{
    /* A #BP at an address with no breakpoint of ours is the guest's own: it
     * must reach the guest's handler, not stop the debugger. */
    struct vm *vm = guest();
    struct vm_cpu *cpu = &vm->cpus[0];
    vm->debug.bp_method = VM_BP_INT3;
    CU_ASSERT_EQUAL(vm_bp_insert(cpu, CODE + 6, false), 0); /* interception on */
    uint8_t int3 = 0xcc;
    CU_ASSERT_EQUAL(vm_mem_write(&vm->mem, CODE + 1, &int3, 1), 0);
    CU_ASSERT_EQUAL(vm_reg_set(cpu, VM_REG_RIP, CODE + 1), 0);
    script_debug(cpu, 3, CODE + 1, 0);
    struct vm_event ev;
    CU_ASSERT_EQUAL(vm_cpu_handle_exit(cpu, VM_RUN_CONTINUE, &ev), 0); /* no stop */
    CU_ASSERT_EQUAL(cpu->inject, KVM_GUESTDBG_INJECT_BP);
    /* KVM takes it with the next KVM_SET_GUEST_DEBUG (it does not show
     * software exceptions in KVM_GET_VCPU_EVENTS, so the run below is what
     * shows it arrived). */
    CU_ASSERT_EQUAL(vm_cpu_prepare(cpu, false), 0);
    CU_ASSERT_EQUAL(cpu->inject, 0);
    CU_ASSERT_EQUAL(vm_stats(vm)->reinjected, 1);
    /* VMX injects a software exception with the length of the instruction
     * that exited, which a scripted exit never set: run it where the host
     * does not intercept int3 (there the scripted exit stands in for it). */
    if (vm_caps(vm)->sw_bp != VM_BP_INT3) {
        CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
        CU_ASSERT_EQUAL(ev.type, VM_EVENT_DEBUG_EXIT);
        CU_ASSERT_EQUAL(ev.u.exit.status, 0x42);
    }
    vm_destroy(vm);
}

static void test_guest_int3_runs_its_handler_for_real(void)
{
    /* The same without a script: whatever this host does with an int3
     * while kvmstub has a breakpoint planted, the guest's handler runs. */
    struct vm *vm = guest();
    struct vm_cpu *cpu = &vm->cpus[0];
    CU_ASSERT_EQUAL(vm_bp_insert(cpu, CODE + 6, false), 0);
    uint8_t int3 = 0xcc;
    CU_ASSERT_EQUAL(vm_mem_write(&vm->mem, CODE + 1, &int3, 1), 0);
    struct vm_event ev;
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_DEBUG_EXIT);
    CU_ASSERT_EQUAL(ev.u.exit.status, 0x42);
    vm_destroy(vm);
}

static void test_guest_db_goes_back_with_its_dr6(void)
{
    /* A #DB while kvmstub is not stepping and no slot of ours fired (the
     * guest's own trap flag, ICEBP): back to the guest, DR6 as KVM gave it. */
    struct vm *vm = guest();
    struct vm_cpu *cpu = &vm->cpus[0];
    cpu->single_step = false;
    script_debug(cpu, 1, CODE, DR6_FIXED | DR6_BS);
    struct vm_event ev;
    CU_ASSERT_EQUAL(vm_cpu_handle_exit(cpu, VM_RUN_CONTINUE, &ev), 0);
    CU_ASSERT_EQUAL(vm_cpu_prepare(cpu, false), 0);
    CU_ASSERT_EQUAL(pending_exception(cpu), 1);
    struct kvm_debugregs dr;
    CU_ASSERT_EQUAL(ioctl(cpu->fd, KVM_GET_DEBUGREGS, &dr), 0);
    CU_ASSERT(dr.dr6 & DR6_BS);
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_DEBUG_EXIT);
    CU_ASSERT_EQUAL(ev.u.exit.status, 0x41);
    vm_destroy(vm);
}

static void test_db_of_our_step_is_a_step(void)
{
    struct vm *vm = guest();
    struct vm_cpu *cpu = &vm->cpus[0];
    CU_ASSERT_EQUAL(vm_cpu_prepare(cpu, true), 0); /* kvmstub steps */
    script_debug(cpu, 1, CODE + 1, DR6_FIXED | DR6_BS);
    struct vm_event ev;
    CU_ASSERT_EQUAL(vm_cpu_handle_exit(cpu, VM_RUN_STEP, &ev), 1);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_STEP);
    CU_ASSERT_EQUAL(pending_exception(cpu), -1);
    /* Stepping over a breakpoint inside a continue is not a stop. */
    CU_ASSERT_EQUAL(vm_cpu_handle_exit(cpu, VM_RUN_CONTINUE, &ev), 0);
    vm_destroy(vm);
}

static void test_dr_execution_breakpoint(void)
{
    /* DR6.B<n> for a slot holding an execution breakpoint: a hardware
     * breakpoint hit at the slot's address. */
    struct vm *vm = guest();
    struct vm_cpu *cpu = &vm->cpus[0];
    vm->debug.hw_exec = true;
    CU_ASSERT_EQUAL(vm_bp_insert(cpu, CODE + 4, true), 0);
    int slot = vm_debugreg_exec_slot(vm, CODE + 4);
    CU_ASSERT_FATAL(slot >= 0);
    CU_ASSERT_EQUAL(vm_reg_set(cpu, VM_REG_RIP, CODE + 4), 0);
    script_debug(cpu, 1, CODE + 4, DR6_FIXED | (1u << slot));
    struct vm_event ev;
    CU_ASSERT_EQUAL(vm_cpu_handle_exit(cpu, VM_RUN_CONTINUE, &ev), 1);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_BREAKPOINT);
    CU_ASSERT_EQUAL(ev.u.bp.addr, CODE + 4);
    CU_ASSERT(ev.u.bp.hardware);
    /* Resuming there: an instruction breakpoint is a fault and would fire
     * again before the instruction runs, and KVM ignores RFLAGS.RF for the
     * breakpoints it checks itself. The next entry steps with the slot left
     * out of DR7; the one after has it back. */
    CU_ASSERT_EQUAL(vm_cpu_begin_run(cpu), 0);
    CU_ASSERT(cpu->step.stepping_over);
    CU_ASSERT_EQUAL(vm_cpu_prepare(cpu, true), 0);
    CU_ASSERT_EQUAL(cpu->dr7 & (3u << (2 * slot)), 0);
    CU_ASSERT(cpu->single_step);
    script_debug(cpu, 1, CODE + 5, DR6_FIXED | DR6_BS);
    CU_ASSERT_EQUAL(vm_cpu_handle_exit(cpu, VM_RUN_CONTINUE, &ev), 0);
    CU_ASSERT_FALSE(cpu->step.stepping_over);
    CU_ASSERT_EQUAL(vm_cpu_prepare(cpu, false), 0);
    CU_ASSERT(cpu->dr7 & (1u << (2 * slot)));
    vm_destroy(vm);
}

static void test_dr_data_breakpoint(void)
{
    struct vm *vm = guest();
    struct vm_cpu *cpu = &vm->cpus[0];
    vm->debug.hw_data = true;
    CU_ASSERT_EQUAL(vm_watch_insert(cpu, VM_WATCH_WRITE, 0x5000, 4), 0);
    CU_ASSERT_EQUAL(vm->debug.watches[0].dr, 0);
    CU_ASSERT_EQUAL(vm_watch_insert(cpu, VM_WATCH_ACCESS, 0x6000, 8), 0);
    CU_ASSERT_EQUAL(vm->debug.watches[1].dr, 1);
    script_debug(cpu, 1, CODE + 3, DR6_FIXED | (1u << 1));
    struct vm_event ev;
    CU_ASSERT_EQUAL(vm_cpu_handle_exit(cpu, VM_RUN_CONTINUE, &ev), 1);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_WATCH);
    CU_ASSERT_EQUAL(ev.u.watch.addr, 0x6000);
    CU_ASSERT_EQUAL(ev.u.watch.type, VM_WATCH_ACCESS);
    /* DR7 carries both: R/W 01 and 11, lengths 4 and 8. */
    CU_ASSERT_EQUAL(vm_cpu_prepare(cpu, false), 0);
    CU_ASSERT_EQUAL((cpu->dr7 >> 16) & 0xf, 0x1 | (0x3 << 2));
    CU_ASSERT_EQUAL((cpu->dr7 >> 20) & 0xf, 0x3 | (0x2 << 2));
    vm_destroy(vm);
}

static void test_hbreak_takes_a_register_from_a_watchpoint(void)
{
    /* Four watchpoints in DR0-DR3, then hbreak: a watchpoint moves to page
     * traps and keeps working; the hardware breakpoint gets its register. */
    struct vm *vm = guest();
    struct vm_cpu *cpu = &vm->cpus[0];
    vm->debug.hw_data = true;
    vm->debug.hw_exec = true;
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(vm_watch_insert(cpu, VM_WATCH_WRITE, 0x5000 + 0x1000 * (uint64_t)i, 4), 0);
    for (int i = 0; i < 4; i++)
        CU_ASSERT(vm->debug.watches[i].dr >= 0);
    CU_ASSERT_EQUAL(vm_bp_insert(cpu, CODE + 4, true), 0);
    CU_ASSERT(vm_debugreg_exec_slot(vm, CODE + 4) >= 0);
    int moved = -1;
    for (int i = 0; i < 4; i++)
        if (vm->debug.watches[i].dr < 0)
            moved = i;
    CU_ASSERT_FATAL(moved >= 0);
    /* The moved one now traps its page: a guest write there is a hit. */
    uint64_t addr = vm->debug.watches[moved].addr;
    uint8_t store[] = {0xc7, 0x06, (uint8_t)addr, (uint8_t)(addr >> 8), 0x34, 0x12}; /* movw $0x1234,addr */
    CU_ASSERT_EQUAL(vm_mem_write(&vm->mem, CODE, store, sizeof(store)), 0);
    CU_ASSERT_EQUAL(vm_bp_remove(cpu, CODE + 4, true), 0);
    struct vm_event ev;
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_WATCH);
    CU_ASSERT_EQUAL(ev.u.watch.addr, addr);
    /* A fifth hardware breakpoint has no register left to take once all
     * four belong to hardware breakpoints. */
    vm_debug_clear(vm);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(vm_bp_insert(cpu, CODE + (uint64_t)i, true), 0);
    CU_ASSERT_EQUAL(vm_bp_insert(cpu, CODE + 5, true), -ENOSPC);
    vm_destroy(vm);
}

static void test_debug_registers_only_on_a_host_without_data_breakpoints(void)
{
    struct vm *vm = guest();
    struct vm_cpu *cpu = &vm->cpus[0];
    vm->debug.hw_data = false;
    vm->debug.watch_method = VM_WATCH_DEBUG_REGS;
    CU_ASSERT_EQUAL(vm_watch_insert(cpu, VM_WATCH_WRITE, 0x5000, 4), -EOPNOTSUPP);
    vm->debug.hw_data = true;
    CU_ASSERT_EQUAL(vm_watch_insert(cpu, VM_WATCH_READ, 0x5000, 4), -ENOTSUP);
    CU_ASSERT_EQUAL(vm_watch_insert(cpu, VM_WATCH_WRITE, 0x5000, 4), 0);
    vm_destroy(vm);
}

static void test_int3_as_internal_error(void)
{
    /* Some nested hosts report the int3 as KVM_EXIT_INTERNAL_ERROR with rip
     * on it: a hit at a planted breakpoint, with KVM's #UD dropped. */
    struct vm *vm = guest();
    struct vm_cpu *cpu = &vm->cpus[0];
    vm->debug.bp_method = VM_BP_INT3_INTERNAL_ERROR;
    CU_ASSERT_EQUAL(vm_bp_insert(cpu, CODE, false), 0);
    cpu->run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
    cpu->run->internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
    cpu->run->internal.ndata = 0;
    struct vm_event ev;
    CU_ASSERT_EQUAL(vm_cpu_handle_exit(cpu, VM_RUN_CONTINUE, &ev), 1);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_BREAKPOINT);
    CU_ASSERT_EQUAL(ev.u.bp.addr, CODE);
    CU_ASSERT_EQUAL(pending_exception(cpu), -1);
    CU_ASSERT_EQUAL(vm_bp_remove(cpu, CODE, false), 0);
    CU_ASSERT_EQUAL(vm_cpu_handle_exit(cpu, VM_RUN_CONTINUE, &ev), 1);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_INTERNAL_ERROR);
    CU_ASSERT_EQUAL(ev.u.internal.suberror, KVM_INTERNAL_ERROR_EMULATION);
    vm_destroy(vm);
}

/* An emulation failure as KVM reports it, with the instruction's bytes
 * (KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES): flags in
 * data[0], size and bytes in the next two words. */
static void script_emulation_failure(struct vm_cpu *cpu, const uint8_t *insn, uint8_t n)
{
    memset(&cpu->run->emulation_failure, 0, sizeof(cpu->run->emulation_failure));
    cpu->run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
    cpu->run->emulation_failure.suberror = KVM_INTERNAL_ERROR_EMULATION;
    cpu->run->emulation_failure.ndata = n ? 3 : 1;
    cpu->run->emulation_failure.flags = n ? KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES : 0;
    cpu->run->emulation_failure.insn_size = n;
    if (n)
        memcpy(cpu->run->emulation_failure.insn_bytes, insn, n);
}

static void test_emulation_failure_names_the_instruction(void)
{
    /* What kvm-pvm hosts report for SSE: an instruction on RAM, touching
     * no memory, that KVM could not emulate. Not a memory problem. */
    struct vm *vm = guest();
    struct vm_cpu *cpu = &vm->cpus[0];
    static const uint8_t movq[] = {0x66, 0x48, 0x0f, 0x6e, 0xd9}; /* movq %rcx,%xmm3 */
    script_emulation_failure(cpu, movq, sizeof(movq));
    struct vm_event ev;
    CU_ASSERT_EQUAL(vm_cpu_handle_exit(cpu, VM_RUN_CONTINUE, &ev), 1);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_INTERNAL_ERROR);
    CU_ASSERT_EQUAL(ev.u.internal.cause, VM_INTERNAL_CANNOT_EMULATE);
    CU_ASSERT_TRUE(ev.u.internal.insn_from_kvm);
    CU_ASSERT_EQUAL(ev.u.internal.insn_len, sizeof(movq));
    CU_ASSERT_EQUAL(memcmp(ev.u.internal.insn, movq, sizeof(movq)), 0);
    CU_ASSERT_EQUAL(ev.u.internal.code_bits, 16);
    /* Without bytes from KVM, RAM's (the nop at rip) are decoded. */
    script_emulation_failure(cpu, NULL, 0);
    CU_ASSERT_EQUAL(vm_cpu_handle_exit(cpu, VM_RUN_CONTINUE, &ev), 1);
    CU_ASSERT_EQUAL(ev.u.internal.cause, VM_INTERNAL_CANNOT_EMULATE);
    CU_ASSERT_FALSE(ev.u.internal.insn_from_kvm);
    CU_ASSERT_TRUE(ev.u.internal.insn_len > 0);
    CU_ASSERT_EQUAL(ev.u.internal.insn[0], 0x90);
    vm_destroy(vm);
}

static void test_emulation_failure_outside_ram(void)
{
    /* A load through fs, whose base is 3 GiB (no RAM there): the error
     * names that physical address, as the memory-not-RAM case. */
    struct vm *vm = guest();
    struct vm_cpu *cpu = &vm->cpus[0];
    static const uint8_t load[] = {0x64, 0x8a, 0x07}; /* mov %fs:(%bx),%al */
    CU_ASSERT_EQUAL(vm_regcache_fetch(&cpu->rc, VM_RC_SREGS | VM_RC_REGS), 0);
    cpu->rc.sregs.fs.base = 0xc0000000ull;
    cpu->rc.regs.rbx = 0x10;
    cpu->rc.dirty |= VM_RC_SREGS | VM_RC_REGS;
    CU_ASSERT_EQUAL(vm_regcache_flush(&cpu->rc), 0);
    script_emulation_failure(cpu, load, sizeof(load));
    struct vm_event ev;
    CU_ASSERT_EQUAL(vm_cpu_handle_exit(cpu, VM_RUN_CONTINUE, &ev), 1);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_INTERNAL_ERROR);
    CU_ASSERT_EQUAL(ev.u.internal.cause, VM_INTERNAL_ACCESS_NOT_RAM);
    CU_ASSERT_EQUAL(ev.u.internal.gpa, 0xc0000010ull);
    vm_destroy(vm);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("vm_exits", NULL, NULL);
    CU_add_test(s, "scripted #BP at a planted int3: a hit, rip on it",
                test_planted_int3_is_a_hit_with_rip_on_it);
    CU_add_test(s, "scripted #BP of the guest's own int3: given back to the guest",
                test_guest_int3_goes_back_to_the_guest);
    CU_add_test(s, "real run: the guest's int3 reaches its handler with a breakpoint planted",
                test_guest_int3_runs_its_handler_for_real);
    CU_add_test(s, "scripted #DB kvmstub did not cause: given back with its DR6",
                test_guest_db_goes_back_with_its_dr6);
    CU_add_test(s, "scripted #DB of kvmstub's step: a step", test_db_of_our_step_is_a_step);
    CU_add_test(s, "scripted DR execution hit, and stepping off it", test_dr_execution_breakpoint);
    CU_add_test(s, "scripted DR data hits and the DR7 they set", test_dr_data_breakpoint);
    CU_add_test(s, "hbreak takes a debug register from a watchpoint",
                test_hbreak_takes_a_register_from_a_watchpoint);
    CU_add_test(s, "--watchpoints debug-registers where data breakpoints never fire",
                test_debug_registers_only_on_a_host_without_data_breakpoints);
    CU_add_test(s, "scripted int3 reported as an internal error", test_int3_as_internal_error);
    CU_add_test(s, "scripted emulation failure on RAM: the instruction KVM gave back, decoded",
                test_emulation_failure_names_the_instruction);
    CU_add_test(s, "scripted emulation failure with an operand past RAM: that address",
                test_emulation_failure_outside_ram);
}

int main(void)
{
    return test_main("test_vm_exits", register_suites, true);
}
