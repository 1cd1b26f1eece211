/* tests/e2e/e2e.h: driving the real kvmstub and the real gdb.
 *
 * kvmstub is started on port 0 (the port is read from its "listening on"
 * line) with its stderr kept in a file; gdb runs in batch mode or in MI
 * mode (as IDEs drive it); a raw RSP client speaks to kvmstub directly for
 * what gdb cannot do on purpose (bad packets, timing). Every wait has a
 * timeout so a broken stub fails a test instead of hanging it. */
#ifndef E2E_H
#define E2E_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Timeouts are generous: CI may run inside an emulated machine. */
#define E2E_TIMEOUT_S 120

struct e2e_stub {
    pid_t pid;
    int port;
    char log_path[64];
    bool reaped;
    int status; /* exit status once reaped, 128+signal if killed */
};

/* Starts KVMSTUB_BIN with args (NULL-terminated, image last) plus
 * --port 0, and waits until it listens. Returns 0 or -1 (with the log on
 * stderr). */
int e2e_stub_start(struct e2e_stub *s, const char *const *args);
/* The same with stdin and stdout on the given descriptors (a pipe, a pty)
 * instead of /dev/null; -1 keeps /dev/null. */
int e2e_stub_start_io(struct e2e_stub *s, const char *const *args, int in_fd, int out_fd);
/* Starts kvmstub on the target64 fixture in one of its modes (its rdi at
 * entry: see guests/target64.S); true once it listens. */
bool e2e_start_target(struct e2e_stub *s, const char *mode);
/* Waits up to timeout_ms for it to exit; returns its status or -1. */
int e2e_stub_wait(struct e2e_stub *s, int timeout_ms);
/* Under KVMSTUB_E2E_VALGRIND=1 kvmstub runs in valgrind's memcheck, and
 * e2e_stub_kill() ends it with SIGTERM and fails the test on any error or
 * definite leak in the log. */
bool e2e_valgrind(void);
/* True in a sanitized (ASan/UBSan) build of the tests and kvmstub. */
bool e2e_sanitized(void);
/* False when kvmstub's RSS measures a tool rather than kvmstub: under
 * valgrind, or in an AddressSanitizer build, whose quarantine keeps freed
 * memory resident by design. Bounds on RSS growth are checked only when
 * true (the plain CI build); the figures are printed either way. */
bool e2e_rss_meaningful(void);
/* Kills it if still running and reaps it. */
void e2e_stub_kill(struct e2e_stub *s);
/* Its stderr so far (malloc'd, NUL-terminated). */
char *e2e_stub_log(const struct e2e_stub *s);
/* Peak and current resident memory in KiB from /proc. */
long e2e_stub_rss_kib(const struct e2e_stub *s, bool peak);
/* VmRSS without anonymous huge pages: what a leak check compares. */
long e2e_stub_rss_small_pages_kib(const struct e2e_stub *s);

struct e2e_out {
    char *text;
    int status;
    bool timed_out;
};

/* Runs "gdb -nx -batch" with pagination off, "target remote :PORT" (or
 * target when it is not NULL, e.g. "| kvmstub --stdio ..."), then each of
 * cmds (NULL-terminated, passed as -ex), then file (may be NULL). */
int e2e_gdb(struct e2e_out *o, int port, const char *target, const char *const *cmds,
            const char *file);
void e2e_out_free(struct e2e_out *o);
/* As e2e_gdb, with a gdb script (multi-line text) run after cmds. */
int e2e_gdb_script(struct e2e_out *o, int port, const char *const *cmds, const char *script,
                   const char *file);
/* gdb on "target remote | kvmstub --stdio ARGS IMAGE" with IMAGE's symbols,
 * file names shown without directories, then the script. */
int e2e_gdb_stdio_script(struct e2e_out *o, const char *args, const char *image,
                         const char *script);
/* The general form of the three above: a zero field takes the default. */
struct e2e_gdb_opts {
    const char *target;      /* as e2e_gdb's; NULL: ":port" */
    const char *const *cmds; /* -ex each, after the connection */
    const char *script;      /* sourced after cmds */
    const char *file;        /* the symbol file */
    int timeout_s;           /* E2E_TIMEOUT_S */
};
int e2e_gdb_run(struct e2e_out *o, int port, const struct e2e_gdb_opts *opts);

/* Runs a command line (argv, NULL-terminated) and captures stdout+stderr. */
int e2e_run(struct e2e_out *o, const char *const *argv, int timeout_s);

/* A guest's console in a file (kvmstub --serial PATH) that a test reads
 * while the guest runs. Inside .ci/kvm-machine it lies below
 * KVM_MACHINE_PROGRESS, whose watchdog counts its growth as progress;
 * elsewhere in /tmp. */
/* Creates an empty one named NAME-XXXXXX (mkstemp) into path; 0 or -1. */
int e2e_console_create(char *path, size_t cap, const char *name);
/* Everything it holds (malloc'd; "" when the file is missing). */
char *e2e_console_text(const char *path);
/* Its text once it holds needle (malloc'd), or NULL after timeout_s with
 * what it did print on stderr. */
char *e2e_console_wait(const char *path, const char *needle, int timeout_s);
void e2e_console_remove(const char *path);

/* Assertions that print the whole output when they fail. */
void e2e_expect(const char *text, const char *needle, const char *file, int line);
void e2e_expect_not(const char *text, const char *needle, const char *file, int line);
void e2e_expect_re(const char *text, const char *regex, const char *file, int line);
#define E2E_HAS(text, needle) e2e_expect((text), (needle), __FILE__, __LINE__)
#define E2E_LACKS(text, needle) e2e_expect_not((text), (needle), __FILE__, __LINE__)
#define E2E_MATCHES(text, re) e2e_expect_re((text), (re), __FILE__, __LINE__)
/* Occurrences of needle in text. */
size_t e2e_count(const char *text, const char *needle);

/* gdb/MI. */
struct e2e_mi {
    pid_t pid;
    int to, from;
    char *buf;
    size_t len, cap;
    size_t seen;
};
int e2e_mi_start(struct e2e_mi *mi, const char *file);
/* Sends cmd and returns everything up to and including its result record
 * (^done, ^running, ^connected, ^error, ^exit), or NULL on timeout. */
char *e2e_mi_cmd(struct e2e_mi *mi, const char *cmd);
/* Returns everything up to and including the first line starting with
 * prefix (e.g. "*stopped"), or NULL on timeout. */
char *e2e_mi_wait(struct e2e_mi *mi, const char *prefix, int timeout_ms);
void e2e_mi_stop(struct e2e_mi *mi);
/* The contents of every target-stream record (@"...") in MI output, joined
 * and still C-escaped as gdb wrote them: gdb writes one record per O packet,
 * and where kvmstub splits the guest's output depends on timing. Caller
 * frees. */
char *e2e_mi_target_stream(const char *mi_output);

/* A raw RSP client (acks on until e2e_rsp_noack). */
struct e2e_rsp {
    int fd;
    bool noack;
    char in[1 << 18];
    size_t len;
};
int e2e_rsp_connect(struct e2e_rsp *c, int port);
void e2e_rsp_close(struct e2e_rsp *c);
int e2e_rsp_send_raw(struct e2e_rsp *c, const void *data, size_t n);
int e2e_rsp_send(struct e2e_rsp *c, const char *payload);
/* Next packet's payload (console 'O' packets included), NUL-terminated in
 * out; -1 on timeout, bad checksum or a closed connection. */
int e2e_rsp_recv(struct e2e_rsp *c, char *out, size_t cap, int timeout_ms);
/* Sends and returns the reply, skipping 'O' packets. */
int e2e_rsp_cmd(struct e2e_rsp *c, const char *payload, char *out, size_t cap);
int e2e_rsp_noack(struct e2e_rsp *c);
/* Waits until the raw bytes received contain want; drops them up to its
 * end. Returns 0, or -1 on timeout. */
int e2e_rsp_expect_raw(struct e2e_rsp *c, const char *want, int timeout_ms);
/* True when the connection was closed by the stub (EOF within timeout). */
bool e2e_rsp_closed(struct e2e_rsp *c, int timeout_ms);

/* LLDB. Runs "lldb --no-lldbinit --batch" with "gdb-remote PORT" and then
 * each of cmds (NULL-terminated, passed as -o) on file (may be NULL). At
 * the end of a batch run lldb kills a process it is still attached to. */
int e2e_lldb(struct e2e_out *o, int port, const char *const *cmds, const char *file);
/* As e2e_run, and sends SIGINT to the command (as Ctrl-C in its terminal
 * does) once the file watch (e.g. kvmstub's log) matches the extended
 * regular expression when (REG_NEWLINE: ^ and $ are line ends), then again
 * at growing intervals until watch contains done: a program may miss a
 * Ctrl-C that comes too early (lldb does, just after it resumes). */
int e2e_run_sigint(struct e2e_out *o, const char *const *argv, const char *watch,
                   const char *when, const char *done, int timeout_s);

double e2e_now(void);
/* Address of a symbol in an ELF64 file, or 0. */
uint64_t e2e_symbol(const char *elf, const char *name);
/* n bytes of an ELF64 file's loadable image at address addr (a PT_LOAD
 * segment's file bytes), as the guest has them at start. 0 or -1. */
int e2e_image_bytes(const char *elf, uint64_t addr, void *out, size_t n);

#endif
