#include "e2e.h"

#include <CUnit/CUnit.h>
#include <elf.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double e2e_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    size_t cap = 4096, len = 0;
    char *b = malloc(cap);
    size_t n;
    while (b && (n = fread(b + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *nb = realloc(b, cap *= 2);
            if (!nb)
                break;
            b = nb;
        }
    }
    fclose(f);
    if (b)
        b[len] = 0;
    return b;
}

char *e2e_stub_log(const struct e2e_stub *s)
{
    return slurp(s->log_path);
}

int e2e_console_create(char *path, size_t cap, const char *name)
{
    const char *dir = getenv("KVM_MACHINE_PROGRESS");
    int k = snprintf(path, cap, "%s/%s-XXXXXX", dir ? dir : "/tmp", name);
    if (k < 0 || (size_t)k >= cap)
        return -1;
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

char *e2e_console_text(const char *path)
{
    return slurp(path);
}

char *e2e_console_wait(const char *path, const char *needle, int timeout_s)
{
    double t0 = e2e_now();
    for (;;) {
        char *text = slurp(path);
        if (text && strstr(text, needle))
            return text;
        if (e2e_now() - t0 > timeout_s) {
            fprintf(stderr, "the console did not print \"%s\" in %d s; it printed:\n%s\n",
                    needle, timeout_s, text ? text : "");
            free(text);
            return NULL;
        }
        free(text);
        usleep(200 * 1000);
    }
}

void e2e_console_remove(const char *path)
{
    unlink(path);
}

int e2e_stub_start(struct e2e_stub *s, const char *const *args)
{
    return e2e_stub_start_io(s, args, -1, -1);
}

int e2e_stub_start_io(struct e2e_stub *s, const char *const *args, int in_fd, int out_fd)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->log_path, sizeof(s->log_path), "/tmp/e2e-stub-XXXXXX");
    int fd = mkstemp(s->log_path);
    if (fd < 0)
        return -1;
    const char *argv[64];
    int n = 0;
    if (e2e_valgrind()) {
        /* Errors and definite leaks make valgrind exit with 99 and print
         * them into the log; e2e_stub_kill() looks. */
        argv[n++] = "valgrind";
        argv[n++] = "-q";
        argv[n++] = "--error-exitcode=99";
        argv[n++] = "--leak-check=full";
        argv[n++] = "--errors-for-leak-kinds=definite";
        argv[n++] = "--show-leak-kinds=definite";
    }
    argv[n++] = KVMSTUB_BIN;
    argv[n++] = "--port";
    argv[n++] = "0";
    for (int i = 0; args[i] && n < 62; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    s->pid = fork();
    if (s->pid == 0) {
        dup2(fd, 2);
        int null = open("/dev/null", O_RDWR);
        dup2(in_fd >= 0 ? in_fd : null, 0);
        dup2(out_fd >= 0 ? out_fd : null, 1);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fd);
    /* Wait for "listening on ADDR:PORT". */
    for (double end = e2e_now() + E2E_TIMEOUT_S; e2e_now() < end;) {
        char *log = e2e_stub_log(s);
        char *p = log ? strstr(log, "listening on ") : NULL;
        if (p) {
            char *colon = strrchr(strtok(p + 13, "\n"), ':');
            s->port = colon ? atoi(colon + 1) : 0;
            free(log);
            return s->port > 0 ? 0 : -1;
        }
        free(log);
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->reaped = true;
            s->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            char *l = e2e_stub_log(s);
            fprintf(stderr, "kvmstub exited (%d) before listening:\n%s\n", s->status, l);
            free(l);
            return -1;
        }
        usleep(10000);
    }
    fprintf(stderr, "kvmstub did not start listening\n");
    e2e_stub_kill(s);
    return -1;
}

int e2e_stub_wait(struct e2e_stub *s, int timeout_ms)
{
    if (s->reaped)
        return s->status;
    for (double end = e2e_now() + timeout_ms / 1000.0; e2e_now() < end;) {
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->reaped = true;
            s->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return s->status;
        }
        usleep(5000);
    }
    return -1;
}

bool e2e_start_target(struct e2e_stub *s, const char *mode)
{
    char reg[32];
    snprintf(reg, sizeof(reg), "rdi=%s", mode);
    const char *args[] = {"--reg", reg, E2E_GUEST_ELF, NULL};
    return e2e_stub_start(s, args) == 0;
}

bool e2e_valgrind(void)
{
    const char *v = getenv("KVMSTUB_E2E_VALGRIND");
    return v && strcmp(v, "1") == 0;
}

bool e2e_sanitized(void)
{
#ifdef E2E_SANITIZED
    return true;
#else
    return false;
#endif
}

bool e2e_rss_meaningful(void)
{
    return !e2e_sanitized() && !e2e_valgrind();
}

void e2e_stub_kill(struct e2e_stub *s)
{
    if (!s->pid)
        return;
    if (e2e_valgrind()) {
        /* A clean exit, so valgrind can look for leaks. */
        if (!s->reaped) {
            kill(s->pid, SIGTERM);
            e2e_stub_wait(s, E2E_TIMEOUT_S * 1000);
        }
        char *log = e2e_stub_log(s);
        bool dirty = s->status == 99 || strstr(log, "== Invalid") || strstr(log, "definitely lost") ||
                     strstr(log, "uninitialised") || strstr(log, "Mismatched free");
        if (dirty)
            fprintf(stderr, "\nvalgrind found problems in kvmstub:\n%s\n", log);
        CU_ASSERT_FALSE(dirty);
        free(log);
    }
    if (!s->reaped) {
        kill(s->pid, SIGKILL);
        int st;
        waitpid(s->pid, &st, 0);
        s->reaped = true;
        s->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    unlink(s->log_path);
    s->pid = 0;
}

long e2e_stub_rss_kib(const struct e2e_stub *s, bool peak)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)s->pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    const char *key = peak ? "VmHWM:" : "VmRSS:";
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, key, strlen(key)) == 0)
            v = atol(line + strlen(key));
    fclose(f);
    return v;
}

/* Transparent huge pages make VmRSS jump by 2 MiB whenever khugepaged
 * collapses a region, the guest's RAM included, at a moment of its own
 * choosing; a leak check comparing two readings must not count that. */
long e2e_stub_rss_small_pages_kib(const struct e2e_stub *s)
{
    long rss = e2e_stub_rss_kib(s, false);
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)s->pid);
    FILE *f = fopen(path, "r");
    if (!f || rss < 0) {
        if (f)
            fclose(f);
        return rss;
    }
    long huge = 0;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "AnonHugePages:", 14) == 0)
            huge = atol(line + 14);
    fclose(f);
    return rss - huge;
}

/* Runs argv with stdout and stderr into one pipe, reading until EOF. */
/* Inside .ci/kvm-machine, a write below KVM_MACHINE_PROGRESS tells its
 * watchdog that a long client session still makes progress: the test
 * itself prints nothing until the session ends (minutes for gdb under
 * valgrind). At most every 10 s. */
static void note_progress(void)
{
    static double last;
    const char *dir = getenv("KVM_MACHINE_PROGRESS");
    if (!dir || e2e_now() - last < 10)
        return;
    last = e2e_now();
    char path[1024];
    snprintf(path, sizeof(path), "%.900s/e2e-client-output", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        if (write(fd, "1\n", 2) < 0) {
            /* Only a hint to the watchdog. */
        }
        close(fd);
    }
}

int e2e_run(struct e2e_out *o, const char *const *argv, int timeout_s)
{
    memset(o, 0, sizeof(*o));
    int p[2];
    if (pipe(p))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        setpgid(0, 0); /* so a timeout can kill what it started too */
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    size_t cap = 65536, len = 0;
    o->text = malloc(cap);
    /* kvmstub under memcheck answers many times slower: in the emulated
     * machine with the host loaded, 50 reverse-continues took past 120 s. */
    if (e2e_valgrind())
        timeout_s *= 3;
    double end = e2e_now() + timeout_s;
    for (;;) {
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        int ms = (int)((end - e2e_now()) * 1000);
        if (ms <= 0 || poll(&pf, 1, ms) == 0) {
            o->timed_out = true;
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            break;
        }
        if (len + 4096 > cap)
            o->text = realloc(o->text, cap *= 2);
        ssize_t n = read(p[0], o->text + len, cap - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
        note_progress();
    }
    o->text[len] = 0;
    if (o->timed_out) {
        /* Said in the output a failed assertion prints, not only in the
         * return value most callers do not check. */
        char note[256];
        int k = snprintf(note, sizeof(note), "\n[e2e: %s killed after %d s: it had not finished]\n",
                         argv[0], timeout_s);
        if (k > 0 && len + (size_t)k < cap) {
            memcpy(o->text + len, note, (size_t)k + 1);
            len += (size_t)k;
        }
        fprintf(stderr, "%s", note);
    }
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    o->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return o->timed_out ? -1 : 0;
}

int e2e_gdb_run(struct e2e_out *o, int port, const struct e2e_gdb_opts *opts)
{
    char remote[4096];
    if (opts->target)
        snprintf(remote, sizeof(remote), "target remote %s", opts->target);
    else
        snprintf(remote, sizeof(remote), "target remote :%d", port);
    const char *argv[160] = {"gdb", "-nx", "-batch", "-ex", "set pagination off",
                             "-ex", "set confirm off", "-ex", "set auto-connect-native-target off",
                             "-ex", "set remotetimeout 30", "-ex", remote};
    int n = 13;
    for (int i = 0; opts->cmds && opts->cmds[i] && n < 152; i++) {
        argv[n++] = "-ex";
        argv[n++] = opts->cmds[i];
    }
    /* A script goes through a file: gdb takes python blocks and multi-line
     * commands only from a file, never from -ex. */
    char path[] = "/tmp/e2e-gdb-XXXXXX", source[64];
    if (opts->script) {
        int fd = mkstemp(path);
        if (fd < 0) {
            memset(o, 0, sizeof(*o));
            return -1;
        }
        size_t len = strlen(opts->script);
        bool ok = write(fd, opts->script, len) == (ssize_t)len;
        close(fd);
        if (!ok) {
            unlink(path);
            memset(o, 0, sizeof(*o));
            return -1;
        }
        snprintf(source, sizeof(source), "source %s", path);
        argv[n++] = "-ex";
        argv[n++] = source;
    }
    if (opts->file)
        argv[n++] = opts->file;
    argv[n] = NULL;
    int r = e2e_run(o, argv, opts->timeout_s ? opts->timeout_s : E2E_TIMEOUT_S);
    if (opts->script)
        unlink(path);
    return r;
}

int e2e_gdb(struct e2e_out *o, int port, const char *target, const char *const *cmds,
            const char *file)
{
    struct e2e_gdb_opts opts = {.target = target, .cmds = cmds, .file = file};
    return e2e_gdb_run(o, port, &opts);
}

int e2e_gdb_script(struct e2e_out *o, int port, const char *const *cmds, const char *script,
                   const char *file)
{
    struct e2e_gdb_opts opts = {.cmds = cmds, .script = script, .file = file};
    return e2e_gdb_run(o, port, &opts);
}

int e2e_gdb_stdio_script(struct e2e_out *o, const char *args, const char *image,
                         const char *script)
{
    char target[1024];
    snprintf(target, sizeof(target), "| %s --stdio %s %s", KVMSTUB_BIN, args, image);
    const char *cmds[] = {"set filename-display basename", NULL};
    struct e2e_gdb_opts opts = {.target = target, .cmds = cmds, .script = script, .file = image};
    return e2e_gdb_run(o, 0, &opts);
}

void e2e_out_free(struct e2e_out *o)
{
    free(o->text);
    o->text = NULL;
}

void e2e_expect(const char *text, const char *needle, const char *file, int line)
{
    bool ok = text && strstr(text, needle);
    if (!ok)
        fprintf(stderr, "\n%s:%d: expected \"%s\" in:\n----\n%s\n----\n", file, line, needle,
                text ? text : "(null)");
    CU_assertImplementation(ok, (unsigned)line, "output contains the expected text", file, "",
                            CU_FALSE);
}

void e2e_expect_not(const char *text, const char *needle, const char *file, int line)
{
    bool ok = text && !strstr(text, needle);
    if (!ok)
        fprintf(stderr, "\n%s:%d: did not expect \"%s\" in:\n----\n%s\n----\n", file, line, needle,
                text ? text : "(null)");
    CU_assertImplementation(ok, (unsigned)line, "output lacks the unexpected text", file, "",
                            CU_FALSE);
}

void e2e_expect_re(const char *text, const char *regex, const char *file, int line)
{
    regex_t re;
    bool ok = false;
    if (regcomp(&re, regex, REG_EXTENDED | REG_NEWLINE) == 0) {
        ok = text && regexec(&re, text, 0, NULL, 0) == 0;
        regfree(&re);
    }
    if (!ok)
        fprintf(stderr, "\n%s:%d: expected /%s/ in:\n----\n%s\n----\n", file, line, regex,
                text ? text : "(null)");
    CU_assertImplementation(ok, (unsigned)line, "output matches the expected pattern", file, "",
                            CU_FALSE);
}

size_t e2e_count(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* ---- MI ---- */

int e2e_mi_start(struct e2e_mi *mi, const char *file)
{
    memset(mi, 0, sizeof(*mi));
    int in[2], out[2];
    if (pipe(in) || pipe(out))
        return -1;
    mi->pid = fork();
    if (mi->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(out[1], 2);
        close(in[1]);
        close(out[0]);
        execlp("gdb", "gdb", "-nx", "--interpreter=mi3", "-ex", "set pagination off", file,
               (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    mi->to = in[1];
    mi->from = out[0];
    mi->cap = 1 << 16;
    mi->buf = calloc(1, mi->cap);
    char *banner = e2e_mi_wait(mi, "(gdb)", E2E_TIMEOUT_S * 1000);
    free(banner);
    return 0;
}

/* Reads until a line in the unseen part starts with one of prefixes. */
static char *mi_until(struct e2e_mi *mi, const char *const *prefixes, int timeout_ms)
{
    double end = e2e_now() + timeout_ms / 1000.0;
    for (;;) {
        /* Look for a complete matching line. */
        size_t pos = mi->seen;
        while (pos < mi->len) {
            char *nl = memchr(mi->buf + pos, '\n', mi->len - pos);
            if (!nl)
                break;
            for (int i = 0; prefixes[i]; i++) {
                if (strncmp(mi->buf + pos, prefixes[i], strlen(prefixes[i])) == 0) {
                    size_t upto = (size_t)(nl - mi->buf) + 1;
                    char *r = strndup(mi->buf + mi->seen, upto - mi->seen);
                    mi->seen = upto;
                    return r;
                }
            }
            pos = (size_t)(nl - mi->buf) + 1;
        }
        int ms = (int)((end - e2e_now()) * 1000);
        struct pollfd pf = {.fd = mi->from, .events = POLLIN};
        if (ms <= 0 || poll(&pf, 1, ms) <= 0) {
            fprintf(stderr, "MI: timed out waiting for %s; got:\n%.*s\n", prefixes[0],
                    (int)(mi->len - mi->seen), mi->buf + mi->seen);
            return NULL;
        }
        if (mi->cap - mi->len < 4096) {
            mi->buf = realloc(mi->buf, mi->cap *= 2);
        }
        ssize_t n = read(mi->from, mi->buf + mi->len, mi->cap - mi->len - 1);
        if (n <= 0)
            return NULL;
        mi->len += (size_t)n;
        mi->buf[mi->len] = 0;
    }
}

char *e2e_mi_cmd(struct e2e_mi *mi, const char *cmd)
{
    size_t n = strlen(cmd);
    if (write(mi->to, cmd, n) != (ssize_t)n || write(mi->to, "\n", 1) != 1)
        return NULL;
    static const char *const results[] = {"^done", "^running", "^connected", "^error", "^exit",
                                          NULL};
    return mi_until(mi, results, E2E_TIMEOUT_S * 1000);
}

char *e2e_mi_wait(struct e2e_mi *mi, const char *prefix, int timeout_ms)
{
    const char *const p[] = {prefix, NULL};
    return mi_until(mi, p, timeout_ms);
}

char *e2e_mi_target_stream(const char *mi_output)
{
    size_t n = mi_output ? strlen(mi_output) : 0, len = 0;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    for (const char *line = mi_output; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t ll = end ? (size_t)(end - line) : strlen(line);
        /* @"...": the record's text lies between the quotes. */
        if (ll >= 3 && line[0] == '@' && line[1] == '"' && line[ll - 1] == '"') {
            memcpy(out + len, line + 2, ll - 3);
            len += ll - 3;
        }
        line = end ? end + 1 : line + ll;
    }
    out[len] = 0;
    return out;
}

void e2e_mi_stop(struct e2e_mi *mi)
{
    if (mi->pid) {
        if (write(mi->to, "-gdb-exit\n", 10) < 0) {
            /* gone already */
        }
        for (int i = 0; i < 200; i++) {
            if (waitpid(mi->pid, NULL, WNOHANG) == mi->pid) {
                mi->pid = 0;
                break;
            }
            usleep(10000);
        }
        if (mi->pid) {
            kill(mi->pid, SIGKILL);
            waitpid(mi->pid, NULL, 0);
        }
    }
    close(mi->to);
    close(mi->from);
    free(mi->buf);
    memset(mi, 0, sizeof(*mi));
}

/* ---- raw RSP ---- */

int e2e_rsp_connect(struct e2e_rsp *c, int port)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof(a))) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return 0;
}

void e2e_rsp_close(struct e2e_rsp *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

int e2e_rsp_send_raw(struct e2e_rsp *c, const void *data, size_t n)
{
    const char *p = data;
    while (n) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int e2e_rsp_send(struct e2e_rsp *c, const char *payload)
{
    size_t n = strlen(payload);
    char *pkt = malloc(n + 8);
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (unsigned char)payload[i];
    pkt[0] = '$';
    memcpy(pkt + 1, payload, n);
    snprintf(pkt + 1 + n, 5, "#%02x", sum & 0xff);
    int r = e2e_rsp_send_raw(c, pkt, n + 4);
    free(pkt);
    return r;
}

static int fill(struct e2e_rsp *c, int timeout_ms)
{
    struct pollfd pf = {.fd = c->fd, .events = POLLIN};
    if (c->len == sizeof(c->in) || poll(&pf, 1, timeout_ms) <= 0)
        return -1;
    ssize_t n = recv(c->fd, c->in + c->len, sizeof(c->in) - c->len, 0);
    if (n <= 0)
        return -1;
    c->len += (size_t)n;
    return 0;
}

int e2e_rsp_recv(struct e2e_rsp *c, char *out, size_t cap, int timeout_ms)
{
    double end = e2e_now() + timeout_ms / 1000.0;
    for (;;) {
        /* Skip acks; find $...#xx. */
        size_t i = 0;
        while (i < c->len && c->in[i] != '$')
            i++;
        memmove(c->in, c->in + i, c->len - i);
        c->len -= i;
        char *hash = c->len ? memchr(c->in, '#', c->len) : NULL;
        if (hash && (size_t)(hash - c->in) + 3 <= c->len) {
            size_t plen = (size_t)(hash - c->in) - 1;
            unsigned sum = 0;
            for (size_t k = 0; k < plen; k++)
                sum += (unsigned char)c->in[1 + k];
            unsigned want = (unsigned)strtoul((char[3]){hash[1], hash[2], 0}, NULL, 16);
            if ((sum & 0xff) != want || plen + 1 > cap)
                return -1;
            memcpy(out, c->in + 1, plen);
            out[plen] = 0;
            size_t used = plen + 4;
            memmove(c->in, c->in + used, c->len - used);
            c->len -= used;
            if (!c->noack)
                e2e_rsp_send_raw(c, "+", 1);
            return (int)plen;
        }
        int ms = (int)((end - e2e_now()) * 1000);
        if (ms <= 0 || fill(c, ms))
            return -1;
    }
}

int e2e_rsp_cmd(struct e2e_rsp *c, const char *payload, char *out, size_t cap)
{
    if (e2e_rsp_send(c, payload))
        return -1;
    for (;;) {
        int n = e2e_rsp_recv(c, out, cap, E2E_TIMEOUT_S * 1000);
        if (n < 0)
            return n;
        /* Console output is not the reply (but "OK" is). */
        if (out[0] == 'O' && n > 1 && strcmp(out, "OK") != 0)
            continue;
        return n;
    }
}

int e2e_rsp_noack(struct e2e_rsp *c)
{
    char r[64];
    if (e2e_rsp_cmd(c, "QStartNoAckMode", r, sizeof(r)) < 0 || strcmp(r, "OK") != 0)
        return -1;
    c->noack = true;
    return 0;
}

bool e2e_rsp_closed(struct e2e_rsp *c, int timeout_ms)
{
    double end = e2e_now() + timeout_ms / 1000.0;
    for (;;) {
        struct pollfd pf = {.fd = c->fd, .events = POLLIN};
        int ms = (int)((end - e2e_now()) * 1000);
        if (ms <= 0 || poll(&pf, 1, ms) <= 0)
            return false;
        char b[4096];
        ssize_t n = recv(c->fd, b, sizeof(b), 0);
        if (n <= 0)
            return true;
    }
}

/* binutils' nm reads ELF32 and ELF64 alike (the examples are 32-bit, the
 * test guests 64-bit); it is a build dependency already. */
uint64_t e2e_symbol(const char *elf, const char *name)
{
    if (strchr(elf, '\''))
        return 0;
    char cmd[4200], line[512];
    snprintf(cmd, sizeof(cmd), "nm -P '%s' 2>/dev/null", elf);
    FILE *p = popen(cmd, "r");
    if (!p)
        return 0;
    uint64_t found = 0;
    while (fgets(line, sizeof(line), p)) {
        char sym[256], type[8];
        unsigned long long value;
        if (sscanf(line, "%255s %7s %llx", sym, type, &value) == 3 && strcmp(sym, name) == 0 &&
            !found)
            found = value;
    }
    pclose(p);
    return found;
}

int e2e_rsp_expect_raw(struct e2e_rsp *c, const char *want, int timeout_ms)
{
    double end = e2e_now() + timeout_ms / 1000.0;
    size_t n = strlen(want);
    for (;;) {
        for (size_t i = 0; i + n <= c->len; i++) {
            if (memcmp(c->in + i, want, n) == 0) {
                memmove(c->in, c->in + i + n, c->len - i - n);
                c->len -= i + n;
                return 0;
            }
        }
        int ms = (int)((end - e2e_now()) * 1000);
        if (ms <= 0 || fill(c, ms))
            return -1;
    }
}

/* ---- LLDB ---- */

int e2e_lldb(struct e2e_out *o, int port, const char *const *cmds, const char *file)
{
    char remote[64];
    snprintf(remote, sizeof(remote), "gdb-remote %d", port);
    const char *argv[128] = {"lldb", "--no-lldbinit", "--batch", "-o", remote};
    int n = 5;
    for (int i = 0; cmds && cmds[i] && n < 120; i++) {
        argv[n++] = "-o";
        argv[n++] = cmds[i];
    }
    if (file)
        argv[n++] = file;
    argv[n] = NULL;
    return e2e_run(o, argv, E2E_TIMEOUT_S);
}

int e2e_run_sigint(struct e2e_out *o, const char *const *argv, const char *watch,
                   const char *when, const char *done, int timeout_s)
{
    memset(o, 0, sizeof(*o));
    regex_t when_re;
    if (regcomp(&when_re, when, REG_EXTENDED | REG_NEWLINE | REG_NOSUB)) {
        fprintf(stderr, "e2e_run_sigint: bad regular expression %s\n", when);
        return -1;
    }
    int p[2];
    if (pipe(p)) {
        regfree(&when_re);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        setpgid(0, 0);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    size_t cap = 65536, len = 0;
    o->text = malloc(cap);
    bool finished = false;
    double next = 0, interval = 0.5;
    double end = e2e_now() + timeout_s;
    for (;;) {
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        int ms = (int)((end - e2e_now()) * 1000);
        /* Look at the watched file every 20 ms until it shows done. */
        int r = ms <= 0 ? 0 : poll(&pf, 1, finished ? ms : (ms < 20 ? ms : 20));
        if (r == 0 && !finished && ms > 0) {
            char *w = slurp(watch);
            if (w && strstr(w, done)) {
                finished = true;
            } else if (w && regexec(&when_re, w, 0, NULL, 0) == 0 && e2e_now() >= next) {
                kill(pid, SIGINT);
                next = e2e_now() + interval;
                interval *= 2;
            }
            free(w);
            continue;
        }
        if (r <= 0) {
            o->timed_out = true;
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            break;
        }
        if (len + 4096 > cap)
            o->text = realloc(o->text, cap *= 2);
        ssize_t n = read(p[0], o->text + len, cap - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    o->text[len] = 0;
    close(p[0]);
    regfree(&when_re);
    int st;
    waitpid(pid, &st, 0);
    o->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return o->timed_out ? -1 : 0;
}

int e2e_image_bytes(const char *elf, uint64_t addr, void *out, size_t n)
{
    FILE *f = fopen(elf, "rb");
    if (!f)
        return -1;
    int r = -1;
    Elf64_Ehdr eh;
    if (fread(&eh, sizeof(eh), 1, f) == 1 && eh.e_ident[EI_CLASS] == ELFCLASS64) {
        for (unsigned i = 0; i < eh.e_phnum && r; i++) {
            Elf64_Phdr ph;
            if (fseek(f, (long)(eh.e_phoff + i * sizeof(ph)), SEEK_SET) ||
                fread(&ph, sizeof(ph), 1, f) != 1 || ph.p_type != PT_LOAD)
                continue;
            /* Physical addresses: where kvmstub loads the segment. */
            if (addr < ph.p_paddr || addr - ph.p_paddr > ph.p_filesz ||
                n > ph.p_filesz - (addr - ph.p_paddr))
                continue;
            if (fseek(f, (long)(ph.p_offset + (addr - ph.p_paddr)), SEEK_SET) == 0 &&
                fread(out, 1, n, f) == n)
                r = 0;
        }
    }
    fclose(f);
    return r;
}
