/* Reverse execution and snapshots through the real gdb, on the target64
 * fixture's counting loop (mode 0: `counter` from 0 to 100): reverse-stepi
 * undoes stepi exactly (the g reply and memory), reverse-continue walks a
 * watchpoint's writes back one by one with gdb's Old/New values and finds a
 * breakpoint passed ten iterations ago, going forward again ends where a run
 * that never went back ends, the start of history is reported as such,
 * snapshots restore registers and memory exactly, a snapshot file starts a
 * new kvmstub where the old one was, and damaged files are refused. */
#include "e2e.h"
#include "testmain.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GUEST E2E_GUEST_ELF

/* The text after the n-th (0-based) "received: " of maint packet. */
static char *reply_n(const char *text, int n)
{
    const char *p = text;
    for (int i = 0; i <= n; i++) {
        p = strstr(p, "received: \"");
        if (!p)
            return NULL;
        p += 11;
    }
    const char *e = strchr(p, '"');
    return e ? strndup(p, (size_t)(e - p)) : NULL;
}

static void same_reply(const char *text, int a, int b)
{
    char *x = reply_n(text, a), *y = reply_n(text, b);
    CU_ASSERT_PTR_NOT_NULL(x);
    CU_ASSERT_PTR_NOT_NULL(y);
    if (x && y && strcmp(x, y) != 0) {
        fprintf(stderr, "\n    reply %d: %.200s\n    reply %d: %.200s\n", a, x, b, y);
        CU_FAIL("replies differ");
    }
    free(x);
    free(y);
}

static void test_stepi_back_exact(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_out o;
    const char *cmds[] = {"break count_loop", "continue", "delete",
                          "maint packet g", "maint packet m101000,100",
                          "stepi 40",
                          "maint packet g", "maint packet m101000,100",
                          "reverse-stepi 40",
                          "maint packet g", "maint packet m101000,100",
                          "reverse-stepi", "print $pc", NULL};
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    same_reply(o.text, 0, 4); /* registers back exactly */
    same_reply(o.text, 1, 5); /* and memory */
    char *mid = reply_n(o.text, 3), *first = reply_n(o.text, 1);
    CU_ASSERT(mid && first && strcmp(mid, first) != 0); /* the counter moved meanwhile */
    free(mid);
    free(first);
    /* One more goes into the continue that reached the breakpoint. */
    E2E_MATCHES(o.text, "\\$1 = .*<sled\\+11>");
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

/* Longer than history keeps without a checkpoint (LIVE_STEPS in
 * stub/history.c): positions rebuilt by stepping from the checkpoint
 * before them, back, forward again, and a watchpoint over them. */
static void test_many_steps_back_and_forth(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_out o;
    const char *cmds[] = {"break count_loop", "continue", "delete",
                          "maint packet g", "maint packet m101000,100",
                          "stepi 250",
                          "maint packet g", "maint packet m101000,100",
                          "reverse-stepi 250",
                          "maint packet g", "maint packet m101000,100",
                          "stepi 250",
                          "maint packet g", "maint packet m101000,100",
                          "watch *(int *)&counter", "reverse-continue", "reverse-continue",
                          "reverse-continue", "print *(int *)&counter", "monitor record info", NULL};
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    same_reply(o.text, 0, 4); /* back to where the steps began */
    same_reply(o.text, 1, 5);
    same_reply(o.text, 2, 6); /* forward again: where they ended */
    same_reply(o.text, 3, 7);
    char *mid = reply_n(o.text, 3), *first = reply_n(o.text, 1);
    CU_ASSERT(mid && first && strcmp(mid, first) != 0);
    free(mid);
    free(first);
    /* 250 steps from the first count_loop (counter 0): 84 increments. */
    for (int v = 84; v > 81; v--) {
        char want[64];
        snprintf(want, sizeof(want), "Old value = %d\nNew value = %d\n", v, v - 1);
        E2E_HAS(o.text, want);
    }
    CU_ASSERT_EQUAL(e2e_count(o.text, "Old value = "), 3);
    E2E_HAS(o.text, "$1 = 81");
    /* Every step is a position (a few of them with checkpoints). */
    E2E_MATCHES(o.text, "recording: 25[0-9] positions");
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

/* The stop reply to what was sent, console output skipped. */
static int stop_of(struct e2e_rsp *c, char *r, size_t cap)
{
    int n;
    do
        n = e2e_rsp_recv(c, r, cap, 30000);
    while (n > 0 && r[0] == 'O' && r[1] != 'K');
    return n;
}

/* A continue of 300 ms (the guest spins, incrementing the counter) ended
 * by Ctrl-C, one reverse-stepi, one stepi: exactly the registers of the
 * interrupted stop again, though the replay counted only from the last of
 * the checkpoints kvmstub took while the guest ran. */
static void test_step_back_after_long_run(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "4"));
    struct e2e_rsp c;
    static char r[16384], g1[16384], g0[16384];
    CU_ASSERT_FATAL(e2e_rsp_connect(&c, s.port) == 0);
    CU_ASSERT(e2e_rsp_noack(&c) == 0);
    CU_ASSERT(e2e_rsp_cmd(&c, "?", r, sizeof(r)) > 0);
    CU_ASSERT(e2e_rsp_send(&c, "c") == 0);
    usleep(300000);
    CU_ASSERT(e2e_rsp_send_raw(&c, "\x03", 1) == 0);
    CU_ASSERT(stop_of(&c, r, sizeof(r)) > 0);
    CU_ASSERT_EQUAL(strncmp(r, "T02", 3), 0);
    CU_ASSERT(e2e_rsp_cmd(&c, "g", g1, sizeof(g1)) > 0);
    double t0 = e2e_now();
    CU_ASSERT(e2e_rsp_send(&c, "bs") == 0);
    CU_ASSERT(stop_of(&c, r, sizeof(r)) > 0);
    double took = e2e_now() - t0;
    CU_ASSERT_EQUAL(strncmp(r, "T05", 3), 0);
    CU_ASSERT(e2e_rsp_cmd(&c, "g", g0, sizeof(g0)) > 0);
    CU_ASSERT(strcmp(g0, g1) != 0);
    CU_ASSERT(e2e_rsp_send(&c, "s") == 0);
    CU_ASSERT(stop_of(&c, r, sizeof(r)) > 0);
    CU_ASSERT(e2e_rsp_cmd(&c, "g", g0, sizeof(g0)) > 0);
    CU_ASSERT_STRING_EQUAL(g0, g1);
    printf("\n    reverse-stepi after a 300 ms continue: %.1f ms\n", took * 1000);
    e2e_rsp_close(&c);
    e2e_stub_kill(&s);
}

static void test_watch_back_50(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_out o;
    const char *cmds[60] = {"break count_done", "continue", "delete", "watch *(int *)&counter"};
    int n = 4;
    for (int i = 0; i < 50; i++)
        cmds[n++] = "reverse-continue";
    cmds[n++] = "print *(int *)&counter";
    cmds[n] = NULL; /* e2e_gdb takes at most 70 commands */
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    for (int v = 100; v > 50; v--) {
        char want[64];
        snprintf(want, sizeof(want), "Old value = %d\nNew value = %d\n", v, v - 1);
        E2E_HAS(o.text, want);
    }
    CU_ASSERT_EQUAL(e2e_count(o.text, "Old value = "), 50);
    E2E_HAS(o.text, "$1 = 50");
    /* Each time before the writing incl, which gdb shows as where it is. */
    CU_ASSERT_EQUAL(e2e_count(o.text, "count_loop () at"), 50);
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_breakpoint_10_back(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_out o;
    const char *cmds[30] = {"break count_done", "continue", "delete", "break count_loop"};
    int n = 4;
    for (int i = 0; i < 10; i++)
        cmds[n++] = "reverse-continue";
    cmds[n++] = "print *(int *)&counter";
    cmds[n] = NULL;
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    CU_ASSERT_EQUAL(e2e_count(o.text, "Breakpoint 2, count_loop"), 10);
    E2E_HAS(o.text, "$1 = 90"); /* ten increments undone */
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

/* g and the counter's page at the final hlt. */
static void final_state(const char *const *middle, char **g, char **mem)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_out o;
    const char *cmds[40];
    int n = 0;
    cmds[n++] = "break count_done";
    cmds[n++] = "continue";
    cmds[n++] = "delete";
    for (int i = 0; middle && middle[i]; i++)
        cmds[n++] = middle[i];
    cmds[n++] = "delete";
    cmds[n++] = "continue";
    cmds[n++] = "maint packet g";
    cmds[n++] = "maint packet m101000,100";
    cmds[n] = NULL;
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    E2E_HAS(o.text, "halt ()");
    *g = reply_n(o.text, 0);
    *mem = reply_n(o.text, 1);
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_forward_again_same_end(void)
{
    char *g0, *m0, *g1, *m1;
    final_state(NULL, &g0, &m0);
    static const char *const back[] = {
        "watch *(int *)&counter", "reverse-continue", "reverse-continue", "reverse-continue",
        "delete", "break count_loop", "reverse-continue", "reverse-continue", "delete",
        "reverse-stepi", "reverse-stepi", "stepi", "next", NULL};
    final_state(back, &g1, &m1);
    CU_ASSERT(g0 && g1 && strcmp(g0, g1) == 0);
    CU_ASSERT(m0 && m1 && strcmp(m0, m1) == 0);
    free(g0);
    free(m0);
    free(g1);
    free(m1);
}

static void test_start_of_history(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_out o;
    const char *cmds[] = {"reverse-stepi", "stepi", "stepi", "reverse-continue", "print $pc",
                          "monitor record stop", "reverse-stepi", NULL};
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    CU_ASSERT(e2e_count(o.text, "No more reverse-execution history.") >= 2);
    E2E_MATCHES(o.text, "\\$1 = .*<_start>");
    E2E_HAS(o.text, "no execution history to go back in: 'monitor record start' starts");
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_snapshot_exact(void)
{
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_out o;
    const char *cmds[] = {"break count_loop", "continue", "continue", "delete",
                          "maint packet g", "maint packet m101000,100",
                          "monitor snapshot save here",
                          "set $rax = 0x1234", "set $rsp = 0x5000",
                          "set var *(int *)&counter = 77", "stepi", "stepi",
                          "maint packet g", "maint packet m101000,100",
                          "monitor snapshot load here", "maint flush register-cache",
                          "maint packet g", "maint packet m101000,100",
                          "monitor snapshot list", "monitor snapshot delete here",
                          "monitor snapshot load here", NULL};
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    same_reply(o.text, 0, 4);
    same_reply(o.text, 1, 5);
    char *changed = reply_n(o.text, 2), *before = reply_n(o.text, 0);
    CU_ASSERT(changed && before && strcmp(changed, before) != 0);
    free(changed);
    free(before);
    E2E_HAS(o.text, "snapshot here saved");
    E2E_HAS(o.text, "snapshot here loaded");
    E2E_HAS(o.text, "no snapshot named here");
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void test_snapshot_file(void)
{
    char dir[] = "/tmp/kvmstub-e2e-snapXXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/m.snap", dir);
    struct e2e_stub s;
    const char *start[] = {"--reg", "rdi=0", "--snapshot-dir", dir, E2E_GUEST_ELF, NULL};
    CU_ASSERT_FATAL(e2e_stub_start(&s, start) == 0);
    struct e2e_out o;
    const char *cmds[] = {"break count_loop", "continue", "continue", "continue", "delete",
                          "maint packet g", "monitor snapshot write m.snap", NULL};
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    E2E_HAS(o.text, "kvmstub --restore");
    E2E_HAS(o.text, path);
    char *g0 = reply_n(o.text, 0);
    e2e_out_free(&o);
    e2e_stub_kill(&s);

    /* A new kvmstub, no image given: the file names it. */
    const char *args[] = {"--restore", path, NULL};
    CU_ASSERT_FATAL(e2e_stub_start(&s, args) == 0);
    const char *cmds2[] = {"maint packet g", "print *(int *)&counter", "continue", NULL};
    e2e_gdb(&o, s.port, NULL, cmds2, GUEST);
    char *g1 = reply_n(o.text, 0);
    CU_ASSERT(g0 && g1 && strcmp(g0, g1) == 0);
    E2E_HAS(o.text, "$1 = 2"); /* three breakpoint hits: two increments done */
    E2E_HAS(o.text, "done\n");  /* it runs on from there and prints */
    free(g0);
    free(g1);
    e2e_out_free(&o);
    e2e_stub_kill(&s);

    /* Damaged files are refused before anything runs. */
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    char *data = malloc((size_t)size);
    CU_ASSERT_EQUAL_FATAL(fread(data, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    struct {
        const char *name, *want;
        long len, flip;
    } bad[] = {{"trunc", "truncated", size / 2, -1},
               {"corrupt", "corrupt", size, size / 3},
               {"header", "", size, 20}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char p[160];
        snprintf(p, sizeof(p), "%s/%s", dir, bad[i].name);
        f = fopen(p, "wb");
        if (bad[i].flip >= 0)
            data[bad[i].flip] ^= 0x40;
        fwrite(data, 1, (size_t)bad[i].len, f);
        if (bad[i].flip >= 0)
            data[bad[i].flip] ^= 0x40;
        fclose(f);
        const char *argv[] = {KVMSTUB_BIN, "--no-gdb", "--restore", p, NULL};
        e2e_run(&o, argv, 60);
        CU_ASSERT_NOT_EQUAL(o.status, 0);
        E2E_HAS(o.text, bad[i].want);
        E2E_LACKS(o.text, "guest exited");
        e2e_out_free(&o);
        unlink(p);
    }
    const char *argv[] = {KVMSTUB_BIN, "--no-gdb", "--restore", GUEST, NULL};
    e2e_run(&o, argv, 60);
    CU_ASSERT_NOT_EQUAL(o.status, 0);
    E2E_HAS(o.text, "not a kvmstub snapshot");
    e2e_out_free(&o);
    free(data);
    unlink(path);
    rmdir(dir);
}

/* monitor snapshot write NAME touches nothing outside --snapshot-dir,
 * and is refused outright without it; 1,000 named snapshots stop at the
 * limit with the guest and the next gdb unharmed. */
static void test_snapshot_write_confined(void)
{
    char dir[] = "/tmp/kvmstub-e2e-confXXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char sub[96], above[128], notes[128], link[128];
    snprintf(sub, sizeof(sub), "%s/snaps", dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0700), 0);
    snprintf(above, sizeof(above), "%s/x", dir);
    snprintf(notes, sizeof(notes), "%s/notes", sub);
    snprintf(link, sizeof(link), "%s/pw", sub);
    FILE *f = fopen(above, "w");
    fputs("above", f);
    fclose(f);
    f = fopen(notes, "w");
    fputs("notes", f);
    fclose(f);
    CU_ASSERT_EQUAL(symlink("/etc/passwd", link), 0);
    struct stat pw0, pw1, ab, no;
    CU_ASSERT_EQUAL(stat("/etc/passwd", &pw0), 0);

    /* Without --snapshot-dir: refused, saying how to allow it. */
    struct e2e_stub s;
    CU_ASSERT_FATAL(e2e_start_target(&s, "0"));
    struct e2e_out o;
    const char *cmds0[] = {"monitor snapshot write m.snap", NULL};
    e2e_gdb(&o, s.port, NULL, cmds0, GUEST);
    E2E_HAS(o.text, "start it with --snapshot-dir DIR");
    e2e_out_free(&o);
    e2e_stub_kill(&s);

    const char *start[] = {"--reg",        "rdi=0", "--snapshot-dir", sub, "--on-detach",
                           "stop",         E2E_GUEST_ELF, NULL};
    CU_ASSERT_FATAL(e2e_stub_start(&s, start) == 0);
    char tmpx[160];
    snprintf(tmpx, sizeof(tmpx), "monitor snapshot write %s", above);
    const char *cmds[] = {tmpx, "monitor snapshot write /tmp/x", "monitor snapshot write ../x",
                          "monitor snapshot write pw", "monitor snapshot write notes",
                          "monitor snapshot write ok.snap", NULL};
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    E2E_HAS(o.text, "is an absolute path: give a name relative to the snapshot directory");
    E2E_HAS(o.text, "contains '..': names stay inside the snapshot directory");
    E2E_HAS(o.text, "pw is a symbolic link: kvmstub does not write through symbolic links");
    E2E_HAS(o.text, "notes exists and is not a kvmstub snapshot");
    E2E_HAS(o.text, "the machine is saved in");
    e2e_out_free(&o);
    CU_ASSERT_EQUAL(stat("/etc/passwd", &pw1), 0);
    CU_ASSERT_EQUAL(pw0.st_mtim.tv_nsec, pw1.st_mtim.tv_nsec);
    CU_ASSERT_EQUAL(pw0.st_size, pw1.st_size);
    CU_ASSERT(stat(above, &ab) == 0 && ab.st_size == 5);
    CU_ASSERT(stat(notes, &no) == 0 && no.st_size == 5);
    CU_ASSERT_EQUAL(access("/tmp/x.tmp", F_OK), -1);

    /* 1,000 named snapshots asked for: the ones past the limit are refused
     * with a message; the guest runs on, and the next gdb is served. */
    FILE *script = fopen("/tmp/kvmstub-e2e-1000.gdb", "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(script);
    for (int i = 0; i < 1000; i++)
        fprintf(script, "monitor snapshot save s%d\n", i);
    fclose(script);
    const char *many[] = {"source /tmp/kvmstub-e2e-1000.gdb", "monitor snapshot list", NULL};
    e2e_gdb(&o, s.port, NULL, many, GUEST);
    E2E_HAS(o.text, "snapshot s63 saved");
    E2E_HAS(o.text, "there are 64 snapshots already: delete one first");
    E2E_LACKS(o.text, "snapshot s64 saved");
    e2e_out_free(&o);
    unlink("/tmp/kvmstub-e2e-1000.gdb");
    const char *after[] = {"break count_loop", "continue", "monitor snapshot load s0",
                           "continue", NULL};
    e2e_gdb(&o, s.port, NULL, after, GUEST);
    E2E_HAS(o.text, "snapshot s0 loaded");
    E2E_HAS(o.text, "Breakpoint 1, ");
    e2e_out_free(&o);
    e2e_stub_kill(&s);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

static void test_snapshot_memory_bound(void)
{
    struct e2e_stub s;
    const char *start[] = {"--reg",           "rdi=0", "--history", "0", "--snapshot-memory",
                           "1K",              E2E_GUEST_ELF, NULL};
    CU_ASSERT_FATAL(e2e_stub_start(&s, start) == 0);
    struct e2e_out o;
    const char *cmds[] = {"monitor snapshot save a", "monitor snapshot list", "stepi",
                          "maint packet qC", NULL};
    e2e_gdb(&o, s.port, NULL, cmds, GUEST);
    E2E_HAS(o.text, "snapshot a not kept: the snapshot store would hold");
    E2E_HAS(o.text, "over the 1 KiB of --snapshot-memory; delete a snapshot first");
    E2E_HAS(o.text, "no snapshots");
    E2E_HAS(o.text, "received: \"QC1\"");
    e2e_out_free(&o);
    e2e_stub_kill(&s);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("e2e_reverse", NULL, NULL);
    CU_add_test(s, "stepi x40 then reverse-stepi x40: identical g and memory",
                test_stepi_back_exact);
    CU_add_test(s, "stepi x250 back and forth, then a watchpoint back over the steps",
                test_many_steps_back_and_forth);
    CU_add_test(s, "reverse-stepi after a 300 ms continue ended by Ctrl-C, stepi: same g",
                test_step_back_after_long_run);
    CU_add_test(s, "reverse-continue with a write watchpoint, 50 times: Old/New each time",
                test_watch_back_50);
    CU_add_test(s, "reverse-continue to a breakpoint 10 iterations back", test_breakpoint_10_back);
    CU_add_test(s, "forward after going back ends as a run that never went back",
                test_forward_again_same_end);
    CU_add_test(s, "start of history: replaylog begin; record stop", test_start_of_history);
    CU_add_test(s, "snapshot save, change, load: g and memory exact", test_snapshot_exact);
    CU_add_test(s, "snapshot file: --restore resumes; damaged files refused", test_snapshot_file);
    CU_add_test(s, "snapshot write: only inside --snapshot-dir; 1,000 saves stop at 64",
                test_snapshot_write_confined);
    CU_add_test(s, "--snapshot-memory 1K: a save past it is refused, the guest goes on",
                test_snapshot_memory_bound);
}

int main(void)
{
    return test_main("test_e2e_reverse", register_suites, true);
}
