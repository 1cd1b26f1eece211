/* The record layer (stub/record.h) over the fake target made to execute
 * (fake_machine.h), without KVM: reverse-stepi, reverse-continue to a
 * breakpoint and to a watchpoint, the start of history after monitor
 * record start, forward commands in the past, and refusals. */
#include "testmain.h"

#include "fake_machine.h"
#include "stub/record.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#define CODE 0x1000u /* fake_init puts thread 1's rip here */
#define DATA 0x2000u

struct rt {
    struct fake f;
    const char *nondeterministic;
    uv_loop_t loop;
    struct stub_record *rec;
    struct stub_target t;
    unsigned stops;
    struct stub_stop stop; /* the last one that came up */
};

static void on_output(void *ctx, const uint8_t *data, size_t n)
{
    (void)ctx;
    (void)data;
    (void)n;
}

static void on_stopped(void *ctx, const struct stub_stop *st)
{
    struct rt *t = ctx;
    t->stops++;
    t->stop = *st;
}

/* code is placed at CODE; rdi points at DATA, which is zeroed. */
static void rt_open(struct rt *t, const uint8_t *code, size_t n)
{
    memset(t, 0, sizeof(*t));
    fake_init(&t->f, 1);
    memcpy(t->f.mem + CODE, code, n);
    memset(t->f.mem + DATA, 0, 64);
    fake_set_reg(&t->f, 1, VM_REG_RDI, DATA);
    CU_ASSERT_EQUAL_FATAL(uv_loop_init(&t->loop), 0);
    struct stub_checkpoint_ops ck = fake_machine_checkpoints(&t->f, &t->nondeterministic);
    CU_ASSERT_EQUAL_FATAL(stub_record_create(&t->rec, fake_target(&t->f), &ck, &t->loop, 1u << 26),
                          0);
    t->t = stub_record_target(t->rec);
    t->t.ops->attach(t->t.ctx, &(struct stub_target_listener){.output = on_output,
                                                               .stopped = on_stopped,
                                                               .ctx = t});
}

static void rt_close(struct rt *t)
{
    t->t.ops->detach(t->t.ctx, true);
    stub_record_free(t->rec);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    CU_ASSERT_EQUAL(uv_loop_close(&t->loop), 0);
}

/* A command, then the fake runs until it is stopped: the stop that came
 * up last. */
static const struct stub_stop *go(struct rt *t, enum stub_action action)
{
    struct stub_resume r = {.count = 1};
    r.threads[0].action = action;
    unsigned before = t->stops;
    CU_ASSERT_EQUAL(t->t.ops->resume(t->t.ctx, &r), 0);
    fake_machine_settle(&t->f);
    CU_ASSERT_EQUAL(t->stops, before + 1);
    return &t->stop;
}

static const struct stub_stop *back(struct rt *t, enum stub_action action)
{
    unsigned before = t->stops;
    CU_ASSERT_EQUAL(t->t.ops->reverse(t->t.ctx, 1, action), 0);
    fake_machine_settle(&t->f);
    CU_ASSERT_EQUAL(t->stops, before + 1);
    CU_ASSERT_FALSE(t->t.ops->running(t->t.ctx));
    return &t->stop;
}

static uint64_t reg(struct rt *t, enum vm_reg_id id)
{
    uint8_t b[8];
    CU_ASSERT_EQUAL(t->t.ops->reg_read(t->t.ctx, 1, id, b, 8), 0);
    uint64_t v;
    memcpy(&v, b, 8);
    return v;
}

static int monitor(struct rt *t, const char *cmd, char *out, size_t cap)
{
    struct stub_text text = {0};
    int r = t->t.ops->monitor(t->t.ctx, 1, cmd, &text);
    snprintf(out, cap, "%s", text.p ? text.p : "");
    stub_text_free(&text);
    return r;
}

/* inc eax; stosb, five times over, then hlt. */
static const uint8_t counting[] = {0xff, 0xc0, 0xaa, 0xff, 0xc0, 0xaa, 0xff, 0xc0, 0xaa,
                                   0xff, 0xc0, 0xaa, 0xff, 0xc0, 0xaa, 0xf4};

static void test_reverse_stepi_undoes_each_step(void)
{
    struct rt t;
    rt_open(&t, counting, sizeof(counting));
    for (int i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(go(&t, STUB_ACTION_STEP)->cause, STUB_CAUSE_STEP);
    CU_ASSERT_EQUAL(reg(&t, VM_REG_RAX), 3);
    CU_ASSERT_EQUAL(reg(&t, VM_REG_RIP), CODE + 9);
    CU_ASSERT_EQUAL(t.f.mem[DATA + 2], 3);
    /* Back over the third stosb: its byte is unwritten again. */
    const struct stub_stop *st = back(&t, STUB_ACTION_STEP);
    CU_ASSERT_EQUAL(st->signal, STUB_SIGTRAP);
    CU_ASSERT_FALSE(st->refused);
    CU_ASSERT_EQUAL(reg(&t, VM_REG_RIP), CODE + 8);
    CU_ASSERT_EQUAL(t.f.mem[DATA + 2], 0);
    CU_ASSERT_EQUAL(reg(&t, VM_REG_RDI), DATA + 2);
    for (int i = 0; i < 5; i++)
        back(&t, STUB_ACTION_STEP);
    CU_ASSERT_EQUAL(reg(&t, VM_REG_RIP), CODE);
    CU_ASSERT_EQUAL(reg(&t, VM_REG_RAX), 0);
    CU_ASSERT_EQUAL(t.f.mem[DATA], 0);
    /* Nothing before the start. */
    CU_ASSERT_EQUAL(back(&t, STUB_ACTION_STEP)->reason, STUB_REASON_HISTORY_BEGIN);
    /* Forward in the past replays the same steps, then runs live again. */
    go(&t, STUB_ACTION_STEP);
    go(&t, STUB_ACTION_STEP);
    CU_ASSERT_EQUAL(reg(&t, VM_REG_RIP), CODE + 3);
    CU_ASSERT_EQUAL(t.f.mem[DATA], 1);
    CU_ASSERT_EQUAL(go(&t, STUB_ACTION_CONTINUE)->cause, STUB_CAUSE_HALT);
    CU_ASSERT_EQUAL(reg(&t, VM_REG_RAX), 5);
    CU_ASSERT_EQUAL(memcmp(t.f.mem + DATA, "\1\2\3\4\5", 5), 0);
    struct stub_record_stats s;
    stub_record_stats(t.rec, &s);
    CU_ASSERT(s.replay_steps > 0);
    CU_ASSERT_EQUAL(s.current + 1, s.positions);
    rt_close(&t);
}

static void test_reverse_continue_to_breakpoint(void)
{
    struct rt t;
    rt_open(&t, counting, sizeof(counting));
    uint64_t bp = CODE + 6; /* the third inc */
    CU_ASSERT_EQUAL(t.t.ops->bp_insert(t.t.ctx, 1, STUB_BP_SOFTWARE, bp, 1), 0);
    const struct stub_stop *st = go(&t, STUB_ACTION_CONTINUE);
    CU_ASSERT_EQUAL(st->reason, STUB_REASON_SWBREAK);
    CU_ASSERT_EQUAL(reg(&t, VM_REG_RIP), bp);
    CU_ASSERT_EQUAL(go(&t, STUB_ACTION_CONTINUE)->cause, STUB_CAUSE_HALT);
    CU_ASSERT_EQUAL(reg(&t, VM_REG_RAX), 5);
    /* Back to where the run passed the breakpoint, as it was then. */
    st = back(&t, STUB_ACTION_CONTINUE);
    CU_ASSERT_FALSE(st->refused);
    CU_ASSERT_EQUAL(st->reason, STUB_REASON_SWBREAK);
    CU_ASSERT_EQUAL(reg(&t, VM_REG_RIP), bp);
    CU_ASSERT_EQUAL(reg(&t, VM_REG_RAX), 2);
    CU_ASSERT_EQUAL(memcmp(t.f.mem + DATA, "\1\2\0", 3), 0);
    /* ... and from there, to the start of history. */
    CU_ASSERT_EQUAL(back(&t, STUB_ACTION_CONTINUE)->reason, STUB_REASON_HISTORY_BEGIN);
    CU_ASSERT_EQUAL(reg(&t, VM_REG_RIP), CODE);
    /* The breakpoint the replays planted at the spans' ends are gone. */
    CU_ASSERT_EQUAL(t.f.nbps, 1);
    rt_close(&t);
}

static void test_reverse_continue_to_watchpoint(void)
{
    struct rt t;
    rt_open(&t, counting, sizeof(counting));
    CU_ASSERT_EQUAL(go(&t, STUB_ACTION_CONTINUE)->cause, STUB_CAUSE_HALT);
    CU_ASSERT_EQUAL(t.t.ops->bp_insert(t.t.ctx, 1, STUB_WATCH_WRITE, DATA + 1, 1), 0);
    /* Stopped before the instruction that wrote it, which is undone. */
    const struct stub_stop *st = back(&t, STUB_ACTION_CONTINUE);
    CU_ASSERT_FALSE(st->refused);
    CU_ASSERT_EQUAL(st->reason, STUB_REASON_WATCH);
    CU_ASSERT_EQUAL(st->addr, DATA + 1);
    CU_ASSERT_EQUAL(reg(&t, VM_REG_RIP), CODE + 5); /* the second stosb */
    CU_ASSERT_EQUAL(reg(&t, VM_REG_RAX), 2);
    CU_ASSERT_EQUAL(t.f.mem[DATA + 1], 0);
    CU_ASSERT_EQUAL(t.f.mem[DATA], 1);
    /* Forward again: the write happens, and the watchpoint reports it. */
    st = go(&t, STUB_ACTION_CONTINUE);
    CU_ASSERT_EQUAL(st->reason, STUB_REASON_WATCH);
    CU_ASSERT_EQUAL(t.f.mem[DATA + 1], 2);
    rt_close(&t);
}

static void test_record_start_is_the_start_of_history(void)
{
    struct rt t;
    rt_open(&t, counting, sizeof(counting));
    char out[512];
    go(&t, STUB_ACTION_STEP);
    go(&t, STUB_ACTION_STEP);
    CU_ASSERT_EQUAL(monitor(&t, "record start", out, sizeof(out)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "recording: reverse execution can go back to here"));
    go(&t, STUB_ACTION_STEP);
    go(&t, STUB_ACTION_STEP);
    CU_ASSERT_EQUAL(back(&t, STUB_ACTION_CONTINUE)->reason, STUB_REASON_HISTORY_BEGIN);
    CU_ASSERT_EQUAL(reg(&t, VM_REG_RIP), CODE + 3); /* not before the record start */
    CU_ASSERT_EQUAL(monitor(&t, "record info", out, sizeof(out)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "(in the past)"));
    /* Other monitor commands go down to the target. */
    CU_ASSERT_EQUAL(monitor(&t, "info", out, sizeof(out)), 0);
    CU_ASSERT_STRING_EQUAL(t.f.monitor_cmd, "info");
    CU_ASSERT_EQUAL(monitor(&t, "record stop", out, sizeof(out)), 0);
    const struct stub_stop *st = back(&t, STUB_ACTION_STEP);
    CU_ASSERT(st->refused);
    CU_ASSERT_PTR_NOT_NULL(strstr(st->why, "no execution history to go back in"));
    rt_close(&t);
}

static void test_refused_on_a_nondeterministic_target(void)
{
    struct rt t;
    rt_open(&t, counting, sizeof(counting));
    go(&t, STUB_ACTION_STEP);
    t.nondeterministic = "replays do not repeat here";
    const struct stub_stop *st = back(&t, STUB_ACTION_STEP);
    CU_ASSERT(st->refused);
    CU_ASSERT_STRING_EQUAL(st->why, "replays do not repeat here");
    CU_ASSERT_EQUAL(reg(&t, VM_REG_RIP), CODE + 2); /* where it was */
    rt_close(&t);
}

static void test_refused_past_an_instruction_that_differs(void)
{
    /* rdtsc, inc eax, hlt: run to the hlt, then back into the run. */
    static const uint8_t code[] = {0x0f, 0x31, 0xff, 0xc0, 0xf4};
    struct rt t;
    rt_open(&t, code, sizeof(code));
    CU_ASSERT_EQUAL(go(&t, STUB_ACTION_CONTINUE)->cause, STUB_CAUSE_HALT);
    uint64_t rax = reg(&t, VM_REG_RAX);
    const struct stub_stop *st = back(&t, STUB_ACTION_STEP);
    CU_ASSERT(st->refused);
    CU_ASSERT_PTR_NOT_NULL(strstr(st->why, "cannot go back exactly past the"));
    CU_ASSERT_EQUAL(reg(&t, VM_REG_RIP), CODE + 5);
    CU_ASSERT_EQUAL(reg(&t, VM_REG_RAX), rax);
    rt_close(&t);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("stub_record", NULL, NULL);
    CU_add_test(s, "reverse-stepi undoes each step, then forward again",
                test_reverse_stepi_undoes_each_step);
    CU_add_test(s, "reverse-continue to a breakpoint, then to the start",
                test_reverse_continue_to_breakpoint);
    CU_add_test(s, "reverse-continue to a watchpoint: before the write",
                test_reverse_continue_to_watchpoint);
    CU_add_test(s, "monitor record start: replaylog begin there; record stop refuses",
                test_record_start_is_the_start_of_history);
    CU_add_test(s, "a non-deterministic target: reverse refused, nothing moves",
                test_refused_on_a_nondeterministic_target);
    CU_add_test(s, "rdtsc in the way: reverse-stepi refused, nothing moves",
                test_refused_past_an_instruction_that_differs);
}

int main(void)
{
    return test_main("test_stub_record", register_suites, false);
}
