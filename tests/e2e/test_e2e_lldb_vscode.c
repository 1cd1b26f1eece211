/* kvmstub driven through lldb-vscode, LLDB's Debug Adapter Protocol server,
 * by a DAP client that sends what VS Code sends: initialize, attach (or
 * launch) whose commands run "gdb-remote PORT", setBreakpoints on a source
 * line, configurationDone, then on the "stopped" event threads, stackTrace,
 * scopes and variables, and finally disconnect. The guest is the C kernel
 * example; the values checked are the ones its source computes. */
#include "dap.h"
#include "e2e.h"
#include "testmain.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CKERNEL EXAMPLES_BIN "/ckernel.elf"
#define MAIN_C EXAMPLES_SRC "/ckernel/main.c"
#define TARGET E2E_GUEST_ELF
#define WAIT_MS (E2E_TIMEOUT_S * 1000)

/* The line of main.c that holds text (1-based), so the test follows the
 * source if it is edited. */
static int line_of(const char *text)
{
    FILE *f = fopen(MAIN_C, "r");
    char buf[512];
    int n = 0, found = 0;
    while (f && !found && fgets(buf, sizeof(buf), f)) {
        n++;
        if (strstr(buf, text))
            found = n;
    }
    if (f)
        fclose(f);
    return found;
}

/* A failed check prints the whole exchange: what went wrong is in it. */
static bool check(struct dap *d, bool ok, const char *what, int line)
{
    if (!ok) {
        char *t = dap_transcript(d);
        fprintf(stderr, "\n%s:%d: %s\n---- DAP transcript ----\n%s\n----\n", __FILE__, line, what,
                t ? t : "");
        free(t);
    }
    CU_assertImplementation(ok, (unsigned)line, what, __FILE__, "", CU_FALSE);
    return ok;
}
#define CHECK(d, cond) check((d), (cond), #cond, __LINE__)

static bool str_is(const struct json *v, const char *path, const char *want)
{
    const char *s = json_str(v, path);
    return s && strcmp(s, want) == 0;
}

static bool num_is(const struct json *v, const char *path, double want)
{
    double n;
    return json_num(v, path, &n) && n == want;
}

static bool succeeded(const struct json *r)
{
    return r && json_true(r, "success");
}

/* The value lldb-vscode shows for variable name in the container ref. */
static const char *variable(struct dap *d, struct json **keep, double ref, const char *name)
{
    char args[64];
    snprintf(args, sizeof(args), "{\"variablesReference\":%.0f}", ref);
    json_free(*keep);
    *keep = dap_request(d, "variables", args, WAIT_MS);
    const struct json *vars = json_get(*keep, "body.variables");
    for (const struct json *v = vars ? vars->child : NULL; v; v = v->next)
        if (str_is(v, "name", name))
            return json_str(v, "value");
    return NULL;
}

/* The variablesReference of child name in a variables response. */
static double child_ref(const struct json *vars, const char *name)
{
    double ref = 0;
    const struct json *list = json_get(vars, "body.variables");
    for (const struct json *v = list ? list->child : NULL; v; v = v->next)
        if (str_is(v, "name", name))
            json_num(v, "variablesReference", &ref);
    return ref;
}

/* Scope "Locals", "Globals" or "Registers" of frame id. */
static double scope(struct dap *d, double frame, const char *name)
{
    char args[64];
    snprintf(args, sizeof(args), "{\"frameId\":%.0f}", frame);
    struct json *r = dap_request(d, "scopes", args, WAIT_MS);
    const struct json *scopes = json_get(r, "body.scopes");
    double ref = 0;
    for (const struct json *s = scopes ? scopes->child : NULL; s; s = s->next)
        if (str_is(s, "name", name))
            json_num(s, "variablesReference", &ref);
    json_free(r);
    return ref;
}

/* Whether the program's output (the guest's serial console) comes to hold
 * text within the timeout: output events come in pieces, and may trail the
 * stop they preceded. */
static bool output_has(struct dap *d, const char *text)
{
    bool found = false;
    for (double end = e2e_now() + E2E_TIMEOUT_S; !found && e2e_now() < end;) {
        char *out = dap_output(d, "stdout");
        found = out && strstr(out, text);
        free(out);
        if (!found)
            dap_pump(d, 100);
    }
    return found;
}

static const char *const adapter[] = {LLDB_VSCODE, NULL};

/* initialize, as VS Code opens every session. */
static bool initialize(struct dap *d)
{
    struct json *r = dap_request(d, "initialize",
                                 "{\"clientID\":\"vscode\",\"clientName\":\"Visual Studio Code\","
                                 "\"adapterID\":\"lldb-vscode\",\"pathFormat\":\"path\","
                                 "\"linesStartAt1\":true,\"columnsStartAt1\":true,"
                                 "\"supportsVariableType\":true,\"supportsRunInTerminalRequest\":false,"
                                 "\"locale\":\"en-us\"}",
                                 WAIT_MS);
    bool ok = CHECK(d, succeeded(r)) && CHECK(d, json_true(r, "body.supportsConfigurationDoneRequest"));
    json_free(r);
    return ok;
}

static void test_attach_breakpoints_stack_variables_disconnect(void)
{
    struct e2e_stub s;
    const char *args[] = {CKERNEL, NULL};
    CU_ASSERT_FATAL(e2e_stub_start(&s, args) == 0);
    int after_factorial = line_of("print_value(\"5! = \", result);");
    int in_count_up = line_of("counter++;");
    CU_ASSERT_FATAL(after_factorial > 0 && in_count_up > 0);

    struct dap d;
    CU_ASSERT_FATAL(dap_start(&d, adapter) == 0);
    if (!initialize(&d))
        goto out;

    /* The attach configuration of examples/vscode/launch.json. */
    char *program = json_quote(CKERNEL);
    char attach[1024];
    snprintf(attach, sizeof(attach),
             "{\"name\":\"kvmstub: ckernel (lldb-vscode)\",\"type\":\"lldb-vscode\","
             "\"request\":\"attach\",\"program\":%s,"
             "\"attachCommands\":[\"gdb-remote 127.0.0.1:%d\"]}",
             program, s.port);
    free(program);
    struct json *r = dap_request(&d, "attach", attach, WAIT_MS);
    bool ok = CHECK(&d, succeeded(r));
    json_free(r);
    if (!ok)
        goto out;
    json_free(dap_wait_event(&d, "initialized", NULL, WAIT_MS));

    char *src = json_quote(MAIN_C);
    char bps[1024];
    snprintf(bps, sizeof(bps),
             "{\"source\":{\"name\":\"main.c\",\"path\":%s},"
             "\"breakpoints\":[{\"line\":%d},{\"line\":%d}],\"sourceModified\":false}",
             src, after_factorial, in_count_up);
    free(src);
    r = dap_request(&d, "setBreakpoints", bps, WAIT_MS);
    CHECK(&d, succeeded(r));
    CHECK(&d, json_true(r, "body.breakpoints.0.verified"));
    CHECK(&d, num_is(r, "body.breakpoints.0.line", after_factorial));
    CHECK(&d, json_true(r, "body.breakpoints.1.verified"));
    CHECK(&d, num_is(r, "body.breakpoints.1.line", in_count_up));
    json_free(r);
    r = dap_request(&d, "setExceptionBreakpoints", "{\"filters\":[]}", WAIT_MS);
    json_free(r);

    /* Not stopping on entry, the adapter lets the guest run now. */
    r = dap_request(&d, "configurationDone", NULL, WAIT_MS);
    CHECK(&d, succeeded(r));
    json_free(r);
    struct json *ev = dap_wait_event(&d, "stopped", "breakpoint", WAIT_MS);
    if (!CHECK(&d, ev != NULL))
        goto out;
    double tid = 0;
    CHECK(&d, json_num(ev, "body.threadId", &tid) && tid == 1);
    json_free(ev);
    /* The guest's serial output shows as the program's output. */
    CHECK(&d, output_has(&d, "ckernel: hello from 64-bit long mode\n"));

    r = dap_request(&d, "threads", NULL, WAIT_MS);
    CHECK(&d, num_is(r, "body.threads.0.id", 1));
    CHECK(&d, json_get(r, "body.threads.1") == NULL);
    json_free(r);
    r = dap_request(&d, "stackTrace", "{\"threadId\":1,\"startFrame\":0,\"levels\":20}", WAIT_MS);
    CHECK(&d, str_is(r, "body.stackFrames.0.name", "main"));
    CHECK(&d, num_is(r, "body.stackFrames.0.line", after_factorial));
    CHECK(&d, str_is(r, "body.stackFrames.0.source.path", MAIN_C));
    CHECK(&d, str_is(r, "body.stackFrames.1.name", "_start"));
    CHECK(&d, json_get(r, "body.stackFrames.2") == NULL);
    double frame = 0;
    CHECK(&d, json_num(r, "body.stackFrames.0.id", &frame));
    json_free(r);
    struct json *keep = NULL;
    double locals = scope(&d, frame, "Locals"), globals = scope(&d, frame, "Globals");
    const char *v = variable(&d, &keep, locals, "n");
    CHECK(&d, v && strcmp(v, "5") == 0);
    v = variable(&d, &keep, locals, "result");
    CHECK(&d, v && strcmp(v, "120") == 0);
    v = variable(&d, &keep, globals, "counter");
    CHECK(&d, v && strcmp(v, "0") == 0);
    /* Registers, as the Variables pane shows them. */
    double regs = scope(&d, frame, "Registers");
    CHECK(&d, variable(&d, &keep, regs, "general") != NULL);
    v = variable(&d, &keep, child_ref(keep, "general"), "cs");
    CHECK(&d, v && strcmp(v, "0x00000018") == 0);

    /* On to the loop in count_up(), one frame deeper. */
    r = dap_request(&d, "continue", "{\"threadId\":1}", WAIT_MS);
    CHECK(&d, succeeded(r));
    json_free(r);
    ev = dap_wait_event(&d, "stopped", "breakpoint", WAIT_MS);
    if (!CHECK(&d, ev != NULL))
        goto out_keep;
    json_free(ev);
    r = dap_request(&d, "stackTrace", "{\"threadId\":1,\"startFrame\":0,\"levels\":20}", WAIT_MS);
    CHECK(&d, output_has(&d, "5! = 120\n"));
    CHECK(&d, str_is(r, "body.stackFrames.0.name", "count_up"));
    CHECK(&d, num_is(r, "body.stackFrames.0.line", in_count_up));
    CHECK(&d, str_is(r, "body.stackFrames.1.name", "main"));
    CHECK(&d, str_is(r, "body.stackFrames.2.name", "_start"));
    CHECK(&d, json_num(r, "body.stackFrames.0.id", &frame));
    json_free(r);
    locals = scope(&d, frame, "Locals");
    v = variable(&d, &keep, locals, "times");
    CHECK(&d, v && strcmp(v, "100") == 0);
    v = variable(&d, &keep, locals, "i");
    CHECK(&d, v && strcmp(v, "0") == 0);

    /* VS Code's stop button on an attach session: disconnect without
     * terminating. The guest runs on, and kvmstub waits for the next client. */
    r = dap_request(&d, "disconnect", "{\"restart\":false,\"terminateDebuggee\":false}", WAIT_MS);
    CHECK(&d, succeeded(r));
    json_free(r);
    CHECK(&d, dap_stop(&d, WAIT_MS) == 0);
    CU_ASSERT_EQUAL(e2e_stub_wait(&s, 200), -1);
    char *log = e2e_stub_log(&s);
    E2E_HAS(log, "gdb detached; the guest runs on");
    free(log);
out_keep:
    json_free(keep);
out:
    if (d.pid > 0)
        dap_stop(&d, WAIT_MS);
    e2e_stub_kill(&s);
}

static void test_launch_pause_terminate(void)
{
    /* The guest starts in its spin loop, so wherever the pause lands it is
     * there (from _start it would first run a dozen instructions, which a
     * pause can beat in a slow machine); kvmstub's trace shows when the
     * adapter has let it run. */
    struct e2e_stub s;
    uint64_t spin = e2e_symbol(TARGET, "spin");
    CU_ASSERT_FATAL(spin != 0);
    char rip[64];
    snprintf(rip, sizeof(rip), "rip=%#llx", (unsigned long long)spin);
    const char *stub_args[] = {"--trace", "--reg", rip, TARGET, NULL};
    CU_ASSERT_FATAL(e2e_stub_start(&s, stub_args) == 0);
    struct dap d;
    CU_ASSERT_FATAL(dap_start(&d, adapter) == 0);
    if (!initialize(&d))
        goto out;
    /* lldb-vscode's "launch" with launchCommands that connect instead of
     * starting a process (CodeLLDB's equivalent is processCreateCommands). */
    char *program = json_quote(TARGET);
    char launch[1024];
    snprintf(launch, sizeof(launch),
             "{\"name\":\"kvmstub\",\"type\":\"lldb-vscode\",\"request\":\"launch\","
             "\"program\":%s,\"launchCommands\":[\"gdb-remote %d\"]}",
             program, s.port);
    free(program);
    struct json *r = dap_request(&d, "launch", launch, WAIT_MS);
    bool ok = CHECK(&d, succeeded(r));
    json_free(r);
    if (!ok)
        goto out;
    json_free(dap_wait_event(&d, "initialized", NULL, WAIT_MS));
    /* The stop LLDB finds on connecting, at the entry point. */
    json_free(dap_wait_event(&d, "stopped", NULL, WAIT_MS));
    r = dap_request(&d, "configurationDone", NULL, WAIT_MS);
    CHECK(&d, succeeded(r));
    json_free(r);
    bool running = false;
    for (double end = e2e_now() + E2E_TIMEOUT_S; !running && e2e_now() < end; usleep(20000)) {
        char *log = e2e_stub_log(&s);
        running = strstr(log, "<- c\n") != NULL;
        free(log);
    }
    CHECK(&d, running);
    /* The pause button. (LLDB 14 calls the stop an "exception": it comes
     * from the SIGINT that stands for the interrupt.) */
    r = dap_request(&d, "pause", "{\"threadId\":1}", WAIT_MS);
    CHECK(&d, succeeded(r));
    json_free(r);
    struct json *ev = dap_wait_event(&d, "stopped", NULL, WAIT_MS);
    CHECK(&d, ev != NULL);
    json_free(ev);
    char *log = e2e_stub_log(&s);
    E2E_HAS(log, "<- interrupt (0x03)");
    free(log);
    r = dap_request(&d, "stackTrace", "{\"threadId\":1,\"startFrame\":0,\"levels\":1}", WAIT_MS);
    CHECK(&d, str_is(r, "body.stackFrames.0.name", "spin"));
    json_free(r);
    /* Stop with "terminate the debuggee": LLDB kills the guest and kvmstub
     * ends cleanly. */
    r = dap_request(&d, "disconnect", "{\"restart\":false,\"terminateDebuggee\":true}", WAIT_MS);
    CHECK(&d, succeeded(r));
    json_free(r);
    CHECK(&d, dap_stop(&d, WAIT_MS) == 0);
    CU_ASSERT_EQUAL(e2e_stub_wait(&s, WAIT_MS), 0);
    log = e2e_stub_log(&s);
    E2E_HAS(log, "gdb killed the guest; exiting");
    free(log);
out:
    if (d.pid > 0)
        dap_stop(&d, WAIT_MS);
    e2e_stub_kill(&s);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("e2e_lldb_vscode", NULL, NULL);
    CU_add_test(s, "lldb-vscode: attach, breakpoints on main.c lines, stack, variables, disconnect",
                test_attach_breakpoints_stack_variables_disconnect);
    CU_add_test(s, "lldb-vscode: launch with launchCommands, pause, terminate",
                test_launch_pause_terminate);
}

int main(void)
{
    return test_main("test_e2e_lldb_vscode", register_suites, true);
}
