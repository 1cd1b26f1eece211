/* Running guests: the demo guest, each CPU mode, every event kind,
 * single-stepping and interrupting a running guest. */
#include "testmain.h"
#include "vmtest.h"
#include "vm/serial.h"

#include <CUnit/CUnit.h>
#include <cpuid.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The KVM API demo guest: rax + rbx printed as a digit, then a newline. */
static const uint8_t demo[] = {
    0xba, 0xf8, 0x03, /* mov $0x3f8,%dx */
    0x00, 0xd8,       /* add %bl,%al */
    0x04, '0',        /* add $'0',%al */
    0xee,             /* out %al,(%dx) */
    0xb0, '\n',       /* mov $'\n',%al */
    0xee,             /* out %al,(%dx) */
    0xf4,             /* hlt */
};

static struct vm *demo_vm(void)
{
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_REAL, 0x1000, demo, sizeof(demo)), 0);
    CU_ASSERT_EQUAL(vm_reg_set(&vm->cpus[0], VM_REG_RAX, 2), 0);
    CU_ASSERT_EQUAL(vm_reg_set(&vm->cpus[0], VM_REG_RBX, 2), 0);
    return vm;
}

static void test_demo_prints_4_and_halts(void)
{
    struct vm *vm = demo_vm();
    struct vm_event ev;
    char out[64] = "";
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, out, sizeof(out)), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
    CU_ASSERT_STRING_EQUAL(out, "4\n");
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RIP), 0x100c);
    CU_ASSERT_EQUAL(vm_cpu_mode(&vm->cpus[0]), VM_MODE_REAL);
    /* A halted CPU stays halted: nothing raises an interrupt. */
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RIP), 0x100c);
    vm_destroy(vm);
}

static void test_single_step_demo(void)
{
    struct vm *vm = demo_vm();
    static const uint64_t rips[] = {0x1003, 0x1005, 0x1007, 0x1008, 0x100a, 0x100b};
    struct vm_event ev;
    char out[64] = "";
    for (size_t i = 0; i < sizeof(rips) / sizeof(rips[0]); i++) {
        CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_STEP, &ev, out, sizeof(out)), 0);
        CU_ASSERT_EQUAL(ev.type, VM_EVENT_STEP);
        CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RIP), rips[i]);
        if (i == 2)
            CU_ASSERT_STRING_EQUAL(out, ""); /* the out has not run yet */
        if (i == 3)
            CU_ASSERT_STRING_EQUAL(out, "4"); /* one step ran exactly the out */
    }
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RAX) & 0xff, '\n');
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_STEP, &ev, out, sizeof(out)), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
    CU_ASSERT_STRING_EQUAL(out, "4\n");
    vm_destroy(vm);
}

/* popf loads TF from the stack. The flags pushed while the guest ran
 * freely have it clear, so after a step over that popf the trap flag KVM
 * had added for stepping is gone: the next step must still stop after one
 * instruction, not run on to the hlt. */
static void test_step_after_popf_that_clears_tf(void)
{
    static const uint8_t code[] = {
        0x9c, /* pushf: TF clear, the guest runs freely */
        0xf4, /* hlt */
        0x90, /* nop (skipped: moving rip wakes the halted CPU) */
        0x9d, /* popf (stepped) */
        0x90, /* nop (stepped) */
        0x90, /* nop */
        0xf4, /* hlt */
    };
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_REAL, 0x1000, code, sizeof(code)), 0);
    CU_ASSERT_EQUAL(vm_reg_set(&vm->cpus[0], VM_REG_RSP, 0x800), 0);
    struct vm_event ev;
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RIP), 0x1002);
    CU_ASSERT_EQUAL(vm_reg_set(&vm->cpus[0], VM_REG_RIP, 0x1003), 0);
    static const uint64_t rips[] = {0x1004, 0x1005, 0x1006};
    for (size_t i = 0; i < sizeof(rips) / sizeof(rips[0]); i++) {
        CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_STEP, &ev, NULL, 0), 0);
        CU_ASSERT_EQUAL(ev.type, VM_EVENT_STEP);
        CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RIP), rips[i]);
    }
    vm_destroy(vm);
}

static void test_protected_mode(void)
{
    static const uint8_t code[] = {
        0x0f, 0x20, 0xc0,             /* mov %cr0,%eax */
        0xba, 0xf8, 0x03, 0x00, 0x00, /* mov $0x3f8,%edx */
        0x89, 0xc3,                   /* mov %eax,%ebx */
        0xb0, 'P',                    /* mov $'P',%al */
        0xee,                         /* out %al,(%dx) */
        0xf4,                         /* hlt */
    };
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_PROTECTED, 0x100000, code, sizeof(code)), 0);
    struct vm_event ev;
    char out[16] = "";
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, out, sizeof(out)), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
    CU_ASSERT_STRING_EQUAL(out, "P");
    CU_ASSERT_EQUAL(vm_cpu_mode(&vm->cpus[0]), VM_MODE_PROTECTED);
    CU_ASSERT(vt_reg(vm, VM_REG_RBX) & 1);          /* the guest saw CR0.PE */
    CU_ASSERT_FALSE(vt_reg(vm, VM_REG_RBX) >> 31);  /* and no paging */
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_CS), 0x08);
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RIP), 0x10000e);
    vm_destroy(vm);
}

static void test_long_mode(void)
{
    static const uint8_t code[] = {
        0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* movabs $0x1122334455667788,%rax */
        0x48, 0x89, 0xc1,             /* mov %rax,%rcx */
        0x66, 0xba, 0xf8, 0x03,       /* mov $0x3f8,%dx */
        0xb0, 'L',                    /* mov $'L',%al */
        0xee,                         /* out %al,(%dx) */
        0x48, 0x89, 0xe3,             /* mov %rsp,%rbx */
        0xf4,                         /* hlt */
    };
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_LONG, 0x200000, code, sizeof(code)), 0);
    struct vm_event ev;
    char out[16] = "";
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, out, sizeof(out)), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
    CU_ASSERT_STRING_EQUAL(out, "L");
    CU_ASSERT_EQUAL(vm_cpu_mode(&vm->cpus[0]), VM_MODE_LONG);
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RCX), 0x1122334455667788ull);
    /* The initial stack sits just below the boot area. */
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RBX), vm_boot_area(vm));
    vm_destroy(vm);
}

static void test_debug_exit(void)
{
    static const uint8_t code[] = {0xb0, 0x2a, 0xe6, 0xf4, 0xf4}; /* mov $42,%al; out %al,$0xf4; hlt */
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_REAL, 0x1000, code, sizeof(code)), 0);
    struct vm_event ev;
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_DEBUG_EXIT);
    CU_ASSERT_EQUAL(ev.u.exit.status, 42);
    /* The guest has ended; running again reports the same end. */
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_DEBUG_EXIT);
    vm_destroy(vm);
}

static bool host_is_amd(void)
{
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid(0, &a, &b, &c, &d) && b == 0x68747541; /* "Auth"enticAMD */
}

static void test_triple_fault_keeps_state(void)
{
    /* In protected mode with an empty IDT, ud2 faults, the fault cannot be
     * delivered, and the CPU shuts down. */
    static const uint8_t code[] = {0xb8, 0x78, 0x56, 0x34, 0x12, 0x0f, 0x0b}; /* mov $0x12345678,%eax; ud2 */
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_PROTECTED, 0x100000, code, sizeof(code)), 0);
    struct vm_event ev;
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_SHUTDOWN);
    /* KVM on AMD (SVM) re-initialises the vCPU on shutdown, so only the
     * other vendors keep the registers; memory survives everywhere. */
    if (!host_is_amd())
        CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RAX) & 0xffffffff, 0x12345678);
    uint8_t back[sizeof(code)];
    CU_ASSERT_EQUAL(vm_read_linear(&vm->cpus[0], 0x100000, back, sizeof(back), NULL), 0);
    CU_ASSERT_EQUAL(memcmp(back, code, sizeof(code)), 0);
    vm_destroy(vm);
}

static void test_unbacked_fetch_is_internal_error(void)
{
    static const uint8_t code[] = {
        0xb8, 0x00, 0x00, 0x00, 0xc0, /* mov $0xc0000000,%eax (3 GiB: no RAM) */
        0xff, 0xe0,                   /* jmp *%rax */
    };
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_LONG, 0x100000, code, sizeof(code)), 0);
    struct vm_event ev;
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_INTERNAL_ERROR);
    CU_ASSERT_EQUAL(ev.u.internal.exit_reason, KVM_EXIT_INTERNAL_ERROR);
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RIP), 0xc0000000ull);
    /* Said as what it is: code fetched from outside RAM. */
    CU_ASSERT_EQUAL(ev.u.internal.cause, VM_INTERNAL_FETCH_NOT_RAM);
    CU_ASSERT_EQUAL(ev.u.internal.gpa, 0xc0000000ull);
    vm_destroy(vm);
}

static void test_unknown_ports_and_mmio(void)
{
    /* in from an unknown port reads all ones; a write is ignored; an
     * unbacked physical address reads all ones and takes writes. */
    static const uint8_t code[] = {
        0xe4, 0x80,                               /* in $0x80,%al */
        0x88, 0xc3,                               /* mov %al,%bl */
        0xe6, 0x81,                               /* out %al,$0x81 */
        0xb8, 0x00, 0x00, 0x00, 0xc0,             /* mov $0xc0000000,%eax */
        0xc7, 0x00, 0x11, 0x22, 0x33, 0x44,       /* movl $0x44332211,(%rax) */
        0x8b, 0x08,                               /* mov (%rax),%ecx */
        0xf4,                                     /* hlt */
    };
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_LONG, 0x100000, code, sizeof(code)), 0);
    struct vm_event ev;
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RBX) & 0xff, 0xff);
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RCX), 0xffffffffull);
    vm_destroy(vm);
}

static void test_serial_flood_is_batched(void)
{
    /* 20000 bytes out of the UART: they arrive in order, in batches. */
    static const uint8_t code[] = {
        0xba, 0xf8, 0x03,       /* mov $0x3f8,%dx */
        0xb9, 0x20, 0x4e,       /* mov $20000,%cx */
        0xb0, 'x',              /* 1: mov $'x',%al */
        0xee,                   /* out %al,(%dx) */
        0xe2, 0xfb,             /* loop 1b */
        0xf4,                   /* hlt */
    };
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_REAL, 0x1000, code, sizeof(code)), 0);
    size_t total = 0, batches = 0;
    bool all_x = true;
    struct vm_event ev;
    for (;;) {
        CU_ASSERT_EQUAL_FATAL(vm_cpu_run(&vm->cpus[0], VM_RUN_CONTINUE, &ev), 0);
        uint8_t buf[VM_SERIAL_TX_MAX];
        size_t n = vm_console_take(vm, buf, sizeof(buf));
        for (size_t i = 0; i < n; i++)
            all_x &= buf[i] == 'x';
        total += n;
        if (ev.type != VM_EVENT_SERIAL)
            break;
        batches++;
        CU_ASSERT(n > 0);
    }
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
    CU_ASSERT_EQUAL(total, 20000);
    CU_ASSERT(all_x);
    CU_ASSERT(batches >= 1);      /* more than the buffer holds comes out early */
    CU_ASSERT(batches < 20000 / 64); /* and not byte by byte */
    vm_destroy(vm);
}

struct kicker {
    struct vm_cpu *cpu;
    useconds_t delay;
};

static void *kick_later(void *arg)
{
    struct kicker *k = arg;
    usleep(k->delay);
    vm_cpu_kick(k->cpu);
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const uint8_t spin[] = {0xeb, 0xfe}; /* 1: jmp 1b */

static void test_interrupt_spinning_guest(void)
{
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_REAL, 0x1000, spin, sizeof(spin)), 0);
    struct kicker k = {&vm->cpus[0], 50000};
    pthread_t t;
    double start = now_s();
    pthread_create(&t, NULL, kick_later, &k);
    struct vm_event ev;
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    double took = now_s() - start;
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_INTERRUPTED);
    CU_ASSERT(took >= 0.045);
    CU_ASSERT(took < 2.0);
    CU_ASSERT_EQUAL(vt_reg(vm, VM_REG_RIP), 0x1000);
    /* It resumes and can be interrupted again. */
    k.delay = 1000;
    pthread_create(&t, NULL, kick_later, &k);
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_INTERRUPTED);
    vm_destroy(vm);
}

static void test_kick_before_run_is_not_lost(void)
{
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_REAL, 0x1000, spin, sizeof(spin)), 0);
    struct vm_event ev;
    vm_cpu_kick(&vm->cpus[0]);
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_INTERRUPTED);
    /* A cleared kick does not stop the next run. */
    vm_cpu_kick(&vm->cpus[0]);
    vm_cpu_clear_kick(&vm->cpus[0]);
    CU_ASSERT_EQUAL(vm_reg_set(&vm->cpus[0], VM_REG_RIP, 0x1002), 0);
    static const uint8_t hlt = 0xf4;
    CU_ASSERT_EQUAL(vm_write_linear(&vm->cpus[0], 0x1002, &hlt, 1, NULL), 0);
    CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_HALT);
    vm_destroy(vm);
}

static void test_kick_race_many_times(void)
{
    /* Kicks land at every moment around KVM_RUN: none may be lost. */
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_REAL, 0x1000, spin, sizeof(spin)), 0);
    int interrupted = 0;
    for (int i = 0; i < 300; i++) {
        struct kicker k = {&vm->cpus[0], (useconds_t)(i % 7) * 50};
        pthread_t t;
        pthread_create(&t, NULL, kick_later, &k);
        struct vm_event ev;
        CU_ASSERT_EQUAL(vt_run(vm, VM_RUN_CONTINUE, &ev, NULL, 0), 0);
        pthread_join(t, NULL);
        interrupted += ev.type == VM_EVENT_INTERRUPTED;
    }
    CU_ASSERT_EQUAL(interrupted, 300);
    vm_destroy(vm);
}

static void test_made_up_exits(void)
{
    /* Exits this host may never produce are still classified. */
    struct vm *vm = vt_create(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
    CU_ASSERT_EQUAL_FATAL(vt_load(vm, VM_MODE_REAL, 0x1000, spin, sizeof(spin)), 0);
    struct vm_cpu *cpu = &vm->cpus[0];
    struct vm_event ev;
    cpu->run->exit_reason = KVM_EXIT_FAIL_ENTRY;
    cpu->run->fail_entry.hardware_entry_failure_reason = 0x21;
    CU_ASSERT_EQUAL(vm_cpu_handle_exit(cpu, VM_RUN_CONTINUE, &ev), 1);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_ENTRY_FAILED);
    CU_ASSERT_EQUAL(ev.u.entry.reason, 0x21);

    cpu->run->exit_reason = KVM_EXIT_SHUTDOWN;
    CU_ASSERT_EQUAL(vm_cpu_handle_exit(cpu, VM_RUN_CONTINUE, &ev), 1);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_SHUTDOWN);

    cpu->run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
    CU_ASSERT_EQUAL(vm_cpu_handle_exit(cpu, VM_RUN_CONTINUE, &ev), 1);
    CU_ASSERT_EQUAL(ev.type, VM_EVENT_INTERNAL_ERROR);
    CU_ASSERT_EQUAL(ev.u.internal.exit_reason, KVM_EXIT_SYSTEM_EVENT);

    /* The debug exits are test_vm_exits' business. */
    vm_destroy(vm);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("vm_run", NULL, NULL);
    CU_add_test(s, "demo guest prints 4 and halts", test_demo_prints_4_and_halts);
    CU_add_test(s, "single-step the demo guest", test_single_step_demo);
    CU_add_test(s, "a step after a popf that cleared TF stops after one instruction",
                test_step_after_popf_that_clears_tf);
    CU_add_test(s, "32-bit protected mode", test_protected_mode);
    CU_add_test(s, "64-bit long mode", test_long_mode);
    CU_add_test(s, "debug-exit port ends the guest", test_debug_exit);
    CU_add_test(s, "triple fault keeps the state", test_triple_fault_keeps_state);
    CU_add_test(s, "fetch from unbacked memory", test_unbacked_fetch_is_internal_error);
    CU_add_test(s, "unknown ports and unbacked MMIO", test_unknown_ports_and_mmio);
    CU_add_test(s, "serial flood is batched", test_serial_flood_is_batched);
    CU_add_test(s, "interrupt a spinning guest", test_interrupt_spinning_guest);
    CU_add_test(s, "a kick before the run is not lost", test_kick_before_run_is_not_lost);
    CU_add_test(s, "kicks racing KVM_RUN", test_kick_race_many_times);
    CU_add_test(s, "exits the host cannot produce", test_made_up_exits);
}

int main(void)
{
    return test_main("test_vm_run", register_suites, true);
}
