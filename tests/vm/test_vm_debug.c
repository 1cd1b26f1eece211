/* Breakpoints and watchpoints through the vm layer, with the methods this
 * host supports and the ones every host supports (planted hlt, page traps). */
#include "testmain.h"
#include "vmtest.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

/* xor %eax,%eax; 1: inc %eax; cmp $5,%eax; jne 1b; hlt */
static const uint8_t count5[] = {0x31, 0xc0, 0xff, 0xc0, 0x83, 0xf8, 0x05, 0x75, 0xf9, 0xf4};
#define CODE 0x100000u

static struct vm *long_vm(const uint8_t *code, size_t n)
{
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_LONG, CODE, code, n), 0);
    return vm;
}

/* Runs to the next event that is not output. */
static enum vm_event_type next(struct vm *vm, struct vm_event *ev)
{
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, ev, NULL, 0), 0);
    return ev->type;
}

static void breakpoint_loop(enum vm_bp_method method)
{
    struct vm *vm = long_vm(count5, sizeof(count5));
    vm->debug.bp_method = method;
    struct vm_cpu *cpu = &vm->cpus[0];
    CU_ASSERT_EQUAL(vm_bp_insert(cpu, CODE + 2, false), 0);
    CU_ASSERT_EQUAL(vm_bp_insert(cpu, CODE + 2, false), 0); /* again: still one */
    CU_ASSERT_EQUAL(vm->debug.nbps, 1);
    /* Reads show the instruction, not the trap. */
    uint8_t b[4];
    CU_ASSERT_EQUAL(vm_read_linear(cpu, CODE + 2, b, 2, NULL), 0);
    CU_ASSERT_EQUAL(b[0], 0xff);
    CU_ASSERT_EQUAL(vm->mem.host[CODE + 2], vm_planted_trap_byte(vm));
    struct vm_event ev;
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(next(vm, &ev), VM_EVENT_BREAKPOINT);
        CU_ASSERT_EQUAL(ev.u.bp.addr, CODE + 2);
        CU_ASSERT_FALSE(ev.u.bp.hardware);
        CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RIP), CODE + 2);
        CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RAX), (uint64_t)i);
    }
    CU_ASSERT_EQUAL(vm_bp_remove(cpu, CODE + 2, false), 0);
    CU_ASSERT_EQUAL(vm->mem.host[CODE + 2], 0xff);
    CU_ASSERT_EQUAL(next(vm, &ev), VM_EVENT_HALT);
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RAX), 5);
    CU_ASSERT_EQUAL(vm_bp_remove(cpu, CODE + 2, false), -ENOENT);
    vm_destroy(vm);
}

static void test_breakpoints_planted_hlt(void)
{
    breakpoint_loop(VM_BP_HLT);
}

static void test_breakpoints_host_method(void)
{
    /* Whatever the probe chose for this host (int3 where it is reported). */
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    enum vm_bp_method m = vm->caps.sw_bp;
    vm_destroy(vm);
    printf("\n    this host: %s\n", vm_bp_method_name(m));
    breakpoint_loop(m);
}

static void test_step_from_a_breakpoint(void)
{
    struct vm *vm = long_vm(count5, sizeof(count5));
    struct vm_cpu *cpu = &vm->cpus[0];
    CU_ASSERT_EQUAL(vm_bp_insert(cpu, CODE + 2, false), 0);
    struct vm_event ev;
    CU_ASSERT_EQUAL(next(vm, &ev), VM_EVENT_BREAKPOINT);
    /* One step runs the real instruction under the trap, and only it. */
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_STEP, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_STEP);
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RIP), CODE + 4);
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RAX), 1);
    CU_ASSERT_EQUAL(vm->mem.host[CODE + 2], vm_planted_trap_byte(vm)); /* planted again */
    CU_ASSERT_EQUAL(next(vm, &ev), VM_EVENT_BREAKPOINT);
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RAX), 1);
    vm_destroy(vm);
}

static void test_ten_breakpoints_in_order(void)
{
    uint8_t code[32];
    memset(code, 0x90, sizeof(code)); /* nops */
    code[31] = 0xf4;
    struct vm *vm = long_vm(code, sizeof(code));
    struct vm_cpu *cpu = &vm->cpus[0];
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(vm_bp_insert(cpu, CODE + 3 + 2 * (uint64_t)i, false), 0);
    struct vm_event ev;
    for (int i = 0; i < 10; i++) {
        CU_ASSERT_EQUAL(next(vm, &ev), VM_EVENT_BREAKPOINT);
        CU_ASSERT_EQUAL(ev.u.bp.addr, CODE + 3 + 2 * (uint64_t)i);
    }
    CU_ASSERT_EQUAL(next(vm, &ev), VM_EVENT_HALT);
    vm_debug_clear(vm);
    for (int i = 0; i < 31; i++)
        CU_ASSERT_EQUAL(vm->mem.host[CODE + i], 0x90);
    vm_destroy(vm);
}

static void test_debugger_write_over_breakpoint(void)
{
    struct vm *vm = long_vm(count5, sizeof(count5));
    struct vm_cpu *cpu = &vm->cpus[0];
    CU_ASSERT_EQUAL(vm_bp_insert(cpu, CODE + 4, false), 0);
    static const uint8_t patch[] = {0x83, 0xf8, 0x03}; /* cmp $3,%eax */
    CU_ASSERT_EQUAL(vm_write_linear(cpu, CODE + 4, patch, sizeof(patch), NULL), 0);
    uint8_t back[3];
    CU_ASSERT_EQUAL(vm_read_linear(cpu, CODE + 4, back, 3, NULL), 0);
    CU_ASSERT_EQUAL(memcmp(back, patch, 3), 0);
    CU_ASSERT_EQUAL(vm->mem.host[CODE + 4], vm_planted_trap_byte(vm)); /* still planted */
    struct vm_event ev;
    CU_ASSERT_EQUAL(next(vm, &ev), VM_EVENT_BREAKPOINT);
    CU_ASSERT_EQUAL(vm_bp_remove(cpu, CODE + 4, false), 0);
    CU_ASSERT_EQUAL(next(vm, &ev), VM_EVENT_HALT);
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RAX), 3); /* the patched compare ran */
    vm_destroy(vm);
}

static void test_hardware_breakpoints(void)
{
    uint8_t code[16];
    memset(code, 0x90, sizeof(code));
    code[15] = 0xf4;
    struct vm *vm = long_vm(code, sizeof(code));
    struct vm_cpu *cpu = &vm->cpus[0];
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(vm_bp_insert(cpu, CODE + 2 + (uint64_t)i, true), 0);
    CU_ASSERT_EQUAL(vm_bp_insert(cpu, CODE + 9, true), -ENOSPC);
    /* A software breakpoint where a hardware one is: both, one byte. */
    CU_ASSERT_EQUAL(vm_bp_insert(cpu, CODE + 3, false), 0);
    struct vm_event ev;
    CU_ASSERT_EQUAL(next(vm, &ev), VM_EVENT_BREAKPOINT);
    CU_ASSERT_EQUAL(ev.u.bp.addr, CODE + 2);
    CU_ASSERT(ev.u.bp.hardware);
    CU_ASSERT_EQUAL(next(vm, &ev), VM_EVENT_BREAKPOINT);
    CU_ASSERT_EQUAL(ev.u.bp.addr, CODE + 3);
    CU_ASSERT_EQUAL(vm_bp_remove(cpu, CODE + 3, true), 0);
    CU_ASSERT_EQUAL(vm_bp_remove(cpu, CODE + 3, true), -ENOENT);
    CU_ASSERT_EQUAL(vm_bp_insert(cpu, CODE + 9, true), 0); /* a slot is free again */
    CU_ASSERT_EQUAL(next(vm, &ev), VM_EVENT_BREAKPOINT);
    CU_ASSERT_EQUAL(ev.u.bp.addr, CODE + 4);
    CU_ASSERT_EQUAL(next(vm, &ev), VM_EVENT_BREAKPOINT);
    CU_ASSERT_EQUAL(ev.u.bp.addr, CODE + 5);
    CU_ASSERT_EQUAL(next(vm, &ev), VM_EVENT_BREAKPOINT);
    CU_ASSERT_EQUAL(ev.u.bp.addr, CODE + 9);
    CU_ASSERT_EQUAL(next(vm, &ev), VM_EVENT_HALT);
    vm_destroy(vm);
}

static void test_breakpoint_in_real_and_protected_mode(void)
{
    static const uint8_t code[] = {0x90, 0x90, 0x40, 0xf4}; /* nop; nop; inc (e)ax; hlt */
    for (enum vm_mode mode = VM_MODE_REAL; mode <= VM_MODE_PROTECTED; mode++) {
        struct vm *vm = vt_create(0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
        uint64_t at = mode == VM_MODE_REAL ? 0x7c00 : 0x100000;
        CU_ASSERT_EQUAL_FATAL(vt_load(vm, mode, at, code, sizeof(code)), 0);
        CU_ASSERT_EQUAL(vm_bp_insert(&vm->cpus[0], at + 2, false), 0);
        struct vm_event ev;
        CU_ASSERT_EQUAL(next(vm, &ev), VM_EVENT_BREAKPOINT);
        CU_ASSERT_EQUAL(ev.u.bp.addr, at + 2);
        CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RIP), at + 2);
        CU_ASSERT_EQUAL(next(vm, &ev), VM_EVENT_HALT);
        CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RAX) & 0xffff, 1);
        vm_destroy(vm);
    }
}

/* mov $100,%ecx; 1: incl 0x200000; loop 1b; hlt */
static const uint8_t inc100[] = {0xb9, 0x64, 0x00, 0x00, 0x00, 0xff, 0x04, 0x25, 0x00,
                                 0x00, 0x20, 0x00, 0xe2, 0xf7, 0xf4};
#define VAR 0x200000u

static void watch_writes(enum vm_watch_method method)
{
    struct vm *vm = long_vm(inc100, sizeof(inc100));
    vm->debug.watch_method = method;
    struct vm_cpu *cpu = &vm->cpus[0];
    CU_ASSERT_EQUAL_FATAL(vm_watch_insert(cpu, VM_WATCH_WRITE, VAR, 4), 0);
    struct vm_event ev;
    int hits = 0;
    while (next(vm, &ev) == VM_EVENT_WATCH) {
        hits++;
        CU_ASSERT_EQUAL(ev.u.watch.addr, VAR);
        CU_ASSERT_EQUAL(ev.u.watch.type, VM_WATCH_WRITE);
        uint32_t v = 0;
        CU_ASSERT_EQUAL(vm_read_linear(cpu, VAR, &v, 4, NULL), 0);
        CU_ASSERT_EQUAL(v, (uint32_t)hits); /* reported after the write */
        CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RIP), CODE + 12);
    }
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
    CU_ASSERT_EQUAL(hits, 100);
    CU_ASSERT_EQUAL(vm_watch_remove(cpu, VM_WATCH_WRITE, VAR, 4), 0);
    CU_ASSERT_EQUAL(vm->mem.ntraps, 0);
    CU_ASSERT_EQUAL(vm->mem.nslots, 1);
    vm_destroy(vm);
}

static void test_watch_writes_page_traps(void)
{
    watch_writes(VM_WATCH_PAGE_TRAPS);
}

static void test_watch_writes_host_method(void)
{
    watch_writes(VM_WATCH_AUTO);
}

static void test_read_watch_completes_the_read(void)
{
    /* mov $10,%ecx; xor %ebx,%ebx; 1: mov 0x200000,%eax; add %eax,%ebx; loop 1b; hlt */
    static const uint8_t code[] = {0xb9, 0x0a, 0x00, 0x00, 0x00, 0x31, 0xdb, 0x8b, 0x04, 0x25,
                                   0x00, 0x00, 0x20, 0x00, 0x01, 0xc3, 0xe2, 0xf5, 0xf4};
    struct vm *vm = long_vm(code, sizeof(code));
    struct vm_cpu *cpu = &vm->cpus[0];
    uint32_t seven = 7;
    CU_ASSERT_EQUAL(vm_write_linear(cpu, VAR, &seven, 4, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(vm_watch_insert(cpu, VM_WATCH_READ, VAR + 2, 1), 0);
    struct vm_event ev;
    int hits = 0;
    while (next(vm, &ev) == VM_EVENT_WATCH) {
        hits++;
        CU_ASSERT_EQUAL(ev.u.watch.type, VM_WATCH_READ);
        CU_ASSERT_EQUAL(ev.u.watch.addr, VAR + 2);
        /* The read has happened: eax holds the value, rip is past it. */
        CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RAX), 7);
        CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RIP), CODE + 14);
    }
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
    CU_ASSERT_EQUAL(hits, 10);
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RBX), 70);
    vm_destroy(vm);
}

static void test_access_watch_read_modify_write(void)
{
    struct vm *vm = long_vm(inc100, sizeof(inc100));
    struct vm_cpu *cpu = &vm->cpus[0];
    CU_ASSERT_EQUAL_FATAL(vm_watch_insert(cpu, VM_WATCH_ACCESS, VAR, 4), 0);
    struct vm_event ev;
    int hits = 0;
    while (next(vm, &ev) == VM_EVENT_WATCH) {
        hits++;
        CU_ASSERT_EQUAL(ev.u.watch.type, VM_WATCH_ACCESS);
        /* One stop per instruction, after it: the increment is done. */
        uint32_t v = 0;
        CU_ASSERT_EQUAL(vm_read_linear(cpu, VAR, &v, 4, NULL), 0);
        CU_ASSERT_EQUAL(v, (uint32_t)hits);
    }
    CU_ASSERT_EQUAL(hits, 100);
    vm_destroy(vm);
}

static void test_many_watchpoints_lengths_and_page_crossing(void)
{
    static const uint8_t code[] = {
        0xc7, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, /* movl $1,0x200000 */
        0xc7, 0x04, 0x25, 0x00, 0x10, 0x20, 0x00, 0x02, 0x00, 0x00, 0x00, /* movl $2,0x201000 */
        0xc7, 0x04, 0x25, 0x00, 0x20, 0x20, 0x00, 0x03, 0x00, 0x00, 0x00, /* movl $3,0x202000 */
        0xc7, 0x04, 0x25, 0x00, 0x30, 0x20, 0x00, 0x04, 0x00, 0x00, 0x00, /* movl $4,0x203000 */
        0xc7, 0x04, 0x25, 0x00, 0x40, 0x20, 0x00, 0x05, 0x00, 0x00, 0x00, /* movl $5,0x204000 */
        0xc7, 0x04, 0x25, 0x00, 0x50, 0x20, 0x00, 0x06, 0x00, 0x00, 0x00, /* movl $6,0x205000 */
        0xc7, 0x04, 0x25, 0xfe, 0x6f, 0x20, 0x00, 0xdd, 0xcc, 0xbb, 0xaa, /* movl $..,0x206ffe */
        0xf4,
    };
    struct vm *vm = long_vm(code, sizeof(code));
    struct vm_cpu *cpu = &vm->cpus[0];
    /* Six pages; lengths 1, 2, 4, 8, 3 (unaligned), 4096; and one that
     * starts on the next page of a write that crosses into it. */
    CU_ASSERT_EQUAL(vm_watch_insert(cpu, VM_WATCH_WRITE, 0x200000, 1), 0);
    CU_ASSERT_EQUAL(vm_watch_insert(cpu, VM_WATCH_WRITE, 0x201004, 2), 0); /* not written */
    CU_ASSERT_EQUAL(vm_watch_insert(cpu, VM_WATCH_WRITE, 0x202000, 4), 0);
    CU_ASSERT_EQUAL(vm_watch_insert(cpu, VM_WATCH_ACCESS, 0x203000, 8), 0);
    CU_ASSERT_EQUAL(vm_watch_insert(cpu, VM_WATCH_WRITE, 0x204003, 3), 0);
    CU_ASSERT_EQUAL(vm_watch_insert(cpu, VM_WATCH_WRITE, 0x205000, 4096), 0);
    CU_ASSERT_EQUAL(vm_watch_insert(cpu, VM_WATCH_WRITE, 0x207000, 1), 0);
    CU_ASSERT_EQUAL(vm->debug.nwatches, 7);
    struct vm_event ev;
    static const uint64_t expect[] = {0x200000, 0x202000, 0x203000, 0x204003, 0x205000, 0x207000};
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        CU_ASSERT_EQUAL(next(vm, &ev), VM_EVENT_WATCH);
        CU_ASSERT_EQUAL(ev.u.watch.addr, expect[i]);
    }
    CU_ASSERT_EQUAL(next(vm, &ev), VM_EVENT_HALT);
    uint32_t v = 0;
    CU_ASSERT_EQUAL(vm_read_linear(cpu, 0x206ffe, &v, 4, NULL), 0);
    CU_ASSERT_EQUAL(v, 0xaabbccdd);
    CU_ASSERT_EQUAL(vm_watch_insert(cpu, VM_WATCH_WRITE, 0x300000, 0), -EINVAL);
    CU_ASSERT_EQUAL(vm_watch_insert(cpu, VM_WATCH_WRITE, 0x300000, VM_MAX_WATCH_LEN + 1), -EINVAL);
    CU_ASSERT_EQUAL(vm_watch_insert(cpu, VM_WATCH_WRITE, ~0ull - 2, 8), -EINVAL);
    CU_ASSERT_EQUAL(vm_watch_insert(cpu, VM_WATCH_WRITE, 0xc0000000, 4), -EFAULT);
    vm_debug_clear(vm);
    CU_ASSERT_EQUAL(vm->debug.nwatches, 0);
    CU_ASSERT_EQUAL(vm->mem.ntraps, 0);
    CU_ASSERT_EQUAL(vm->mem.nslots, 1);
    vm_destroy(vm);
}

static void test_watch_on_page_with_running_code(void)
{
    /* The counter shares its page with the loop: write watch (read-only
     * slot), read and access watches (the page leaves the map; its code runs
     * a step at a time with the trap lifted, and the reads it makes of the
     * page are found by decoding the instruction). */
    static const uint8_t code[] = {0xb9, 0x14, 0x00, 0x00, 0x00, 0xff, 0x04, 0x25, 0x00,
                                   0x08, 0x10, 0x00, 0xe2, 0xf7, 0xf4};
    for (enum vm_watch_type t = VM_WATCH_WRITE; t <= VM_WATCH_ACCESS; t++) {
        struct vm *vm = long_vm(code, sizeof(code));
        struct vm_cpu *cpu = &vm->cpus[0];
        CU_ASSERT_EQUAL_FATAL(vm_watch_insert(cpu, t, 0x100800, 4), 0);
        struct vm_event ev;
        int hits = 0;
        while (next(vm, &ev) == VM_EVENT_WATCH) {
            hits++;
            CU_ASSERT_EQUAL(ev.u.watch.addr, 0x100800);
        }
        CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
        CU_ASSERT_EQUAL(hits, 20);
        uint32_t v = 0;
        CU_ASSERT_EQUAL(vm_read_linear(cpu, 0x100800, &v, 4, NULL), 0);
        CU_ASSERT_EQUAL(v, 20);
        CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RCX), 0);
        vm_destroy(vm);
    }
}

static void test_watch_in_real_mode(void)
{
    /* mov $7,%cx; 1: incw 0x3000; loop 1b; hlt */
    static const uint8_t code[] = {0xb9, 0x07, 0x00, 0xff, 0x06, 0x00, 0x30, 0xe2, 0xfa, 0xf4};
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_REAL, 0x1000, code, sizeof(code)), 0);
    CU_ASSERT_EQUAL_FATAL(vm_watch_insert(&vm->cpus[0], VM_WATCH_WRITE, 0x3000, 2), 0);
    struct vm_event ev;
    int hits = 0;
    while (next(vm, &ev) == VM_EVENT_WATCH)
        hits++;
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
    CU_ASSERT_EQUAL(hits, 7);
    vm_destroy(vm);
}

static void test_watch_follows_page_tables(void)
{
    /* Virtual 1 GiB maps to physical 2 MiB through a page directory entry
     * the test changes; the guest writes through the virtual address, then
     * remaps it to 4 MiB (a write to the page directory and a TLB flush)
     * and writes again: the watchpoint follows it to the new page. */
    static const uint8_t code[] = {
        0xc7, 0x04, 0x25, 0x10, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00, 0x00, /* movl $0x11,0x40000010 */
        0x48, 0x89, 0x38,                                                 /* mov %rdi,(%rax) */
        0x0f, 0x20, 0xd9,                                                 /* mov %cr3,%rcx */
        0x0f, 0x22, 0xd9,                                                 /* mov %rcx,%cr3 */
        0xe6, 0x80,                                                       /* out %al,$0x80 */
        0xc7, 0x04, 0x25, 0x10, 0x00, 0x00, 0x40, 0x22, 0x00, 0x00, 0x00, /* movl $0x22,0x40000010 */
        0xf4,
    };
    struct vm *vm = long_vm(code, sizeof(code));
    struct vm_cpu *cpu = &vm->cpus[0];
    uint64_t pd1 = vm_boot_area(vm) + 0x3000 + 0x1000; /* the directory for 1-2 GiB */
    uint64_t e = 0x200000 | 0x83;
    CU_ASSERT_EQUAL(vm_mem_write(&vm->mem, pd1, &e, 8), 0);
    CU_ASSERT_EQUAL(vm_reg_set(cpu, VM_REG_RAX, pd1), 0);
    CU_ASSERT_EQUAL(vm_reg_set(cpu, VM_REG_RDI, 0x400000 | 0x83), 0);
    uint64_t gpa;
    CU_ASSERT_EQUAL(vm_translate(cpu, 0x40000010, &gpa), 0);
    CU_ASSERT_EQUAL(gpa, 0x200010);
    CU_ASSERT_EQUAL_FATAL(vm_watch_insert(cpu, VM_WATCH_WRITE, 0x40000010, 4), 0);
    struct vm_event ev;
    CU_ASSERT_EQUAL(next(vm, &ev), VM_EVENT_WATCH);
    CU_ASSERT_EQUAL(ev.u.watch.addr, 0x40000010);
    CU_ASSERT_EQUAL(vm->mem.host[0x200010], 0x11);
    CU_ASSERT_EQUAL(next(vm, &ev), VM_EVENT_WATCH);
    CU_ASSERT_EQUAL(ev.u.watch.addr, 0x40000010);
    CU_ASSERT_EQUAL(vm->mem.host[0x400010], 0x22);
    CU_ASSERT_EQUAL(next(vm, &ev), VM_EVENT_HALT);
    vm_destroy(vm);
}

static void test_step_onto_watched_write(void)
{
    /* A single step whose instruction writes watched bytes reports the
     * watchpoint, as gdb expects after stepi. */
    struct vm *vm = long_vm(inc100, sizeof(inc100));
    struct vm_cpu *cpu = &vm->cpus[0];
    CU_ASSERT_EQUAL_FATAL(vm_watch_insert(cpu, VM_WATCH_WRITE, VAR, 4), 0);
    struct vm_event ev;
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_STEP, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_STEP);
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_STEP, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_WATCH);
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RIP), CODE + 12);
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_STEP, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_STEP);
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RIP), CODE + 5);
    vm_destroy(vm);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("vm_debug", NULL, NULL);
    CU_add_test(s, "software breakpoints by planted hlt", test_breakpoints_planted_hlt);
    CU_add_test(s, "software breakpoints by the host's method", test_breakpoints_host_method);
    CU_add_test(s, "step from a breakpoint", test_step_from_a_breakpoint);
    CU_add_test(s, "ten breakpoints hit in order", test_ten_breakpoints_in_order);
    CU_add_test(s, "debugger write over a planted byte", test_debugger_write_over_breakpoint);
    CU_add_test(s, "hardware breakpoints: four, then ENOSPC", test_hardware_breakpoints);
    CU_add_test(s, "breakpoints in real and protected mode",
                test_breakpoint_in_real_and_protected_mode);
    CU_add_test(s, "write watchpoint by page traps: 100 writes, 100 hits",
                test_watch_writes_page_traps);
    CU_add_test(s, "write watchpoint by the host's method", test_watch_writes_host_method);
    CU_add_test(s, "read watchpoint completes the read", test_read_watch_completes_the_read);
    CU_add_test(s, "access watchpoint on read-modify-write", test_access_watch_read_modify_write);
    CU_add_test(s, "seven watchpoints, lengths, page crossing",
                test_many_watchpoints_lengths_and_page_crossing);
    CU_add_test(s, "watchpoint on a page with running code", test_watch_on_page_with_running_code);
    CU_add_test(s, "watchpoint in real mode", test_watch_in_real_mode);
    CU_add_test(s, "watchpoint follows the page tables", test_watch_follows_page_tables);
    CU_add_test(s, "stepping onto a watched write", test_step_onto_watched_write);
}

int main(void)
{
    return test_main("test_vm_debug", register_suites, true);
}
