#include "dap.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A message larger than this is a broken stream, not a message. */
#define DAP_MESSAGE_MAX (64u << 20)
#define DAP_HEADER_MAX 1024
#define TRANSCRIPT_MAX (8u << 20)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void note(struct dap *d, const char *dir, const char *text, size_t n)
{
    if (d->tr_len + n + 8 > TRANSCRIPT_MAX)
        return;
    if (d->tr_len + n + 8 > d->tr_cap) {
        size_t cap = (d->tr_len + n + 8) * 2;
        char *p = realloc(d->transcript, cap);
        if (!p)
            return;
        d->transcript = p;
        d->tr_cap = cap;
    }
    d->tr_len += (size_t)snprintf(d->transcript + d->tr_len, d->tr_cap - d->tr_len, "%s %.*s\n",
                                  dir, (int)n, text);
}

static void note_str(struct dap *d, const char *dir, const char *text)
{
    note(d, dir, text, strlen(text));
}

int dap_start(struct dap *d, const char *const *argv)
{
    memset(d, 0, sizeof(*d));
    d->pid = -1;
    d->to = d->from = -1;
    /* A dead adapter must fail a test, not kill it. */
    signal(SIGPIPE, SIG_IGN);
    snprintf(d->err_path, sizeof(d->err_path), "/tmp/e2e-dap-XXXXXX");
    int err_fd = mkstemp(d->err_path);
    int in[2], out[2];
    if (err_fd < 0)
        return -1;
    if (pipe(in)) {
        close(err_fd);
        return -1;
    }
    if (pipe(out)) {
        close(err_fd);
        close(in[0]);
        close(in[1]);
        return -1;
    }
    d->pid = fork();
    if (d->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err_fd, 2);
        close(in[1]);
        close(out[0]);
        setpgid(0, 0); /* so that dap_stop ends what the adapter started */
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(err_fd);
    close(in[0]);
    close(out[1]);
    d->to = in[1];
    d->from = out[0];
    if (d->pid < 0) {
        close(d->to);
        close(d->from);
        d->to = d->from = -1;
        return -1;
    }
    return 0;
}

int dap_send(struct dap *d, const char *command, const char *args_json)
{
    int seq = ++d->seq;
    char *cmd = json_quote(command);
    size_t cap = strlen(cmd) + (args_json ? strlen(args_json) : 0) + 128;
    char *body = malloc(cap);
    char header[64];
    if (!cmd || !body) {
        free(cmd);
        free(body);
        return -1;
    }
    int n = snprintf(body, cap, "{\"seq\":%d,\"type\":\"request\",\"command\":%s%s%s}", seq, cmd,
                     args_json ? ",\"arguments\":" : "", args_json ? args_json : "");
    free(cmd);
    int h = snprintf(header, sizeof(header), "Content-Length: %d\r\n\r\n", n);
    note(d, "->", body, (size_t)n);
    bool ok = true;
    const char *parts[2] = {header, body};
    size_t lens[2] = {(size_t)h, (size_t)n};
    for (int i = 0; i < 2 && ok; i++) {
        for (size_t done = 0; done < lens[i];) {
            ssize_t w = write(d->to, parts[i] + done, lens[i] - done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                ok = false;
                break;
            }
            done += (size_t)w;
        }
    }
    free(body);
    return ok ? seq : -1;
}

/* The Content-Length of a complete header block of hlen bytes (its final
 * blank line excluded), or -1. Other header fields are allowed and ignored,
 * as the protocol says. */
static long content_length(const char *h, size_t hlen)
{
    static const char name[] = "content-length:";
    long len = -1;
    for (size_t pos = 0; pos < hlen;) {
        const char *line = h + pos;
        const char *eol = memchr(line, '\r', hlen - pos);
        size_t n = eol ? (size_t)(eol - line) : hlen - pos;
        if (n > sizeof(name) - 1 && strncasecmp(line, name, sizeof(name) - 1) == 0) {
            char num[24];
            size_t k = n - (sizeof(name) - 1);
            const char *v = line + sizeof(name) - 1;
            while (k && *v == ' ') {
                v++;
                k--;
            }
            if (k == 0 || k >= sizeof(num))
                return -1;
            memcpy(num, v, k);
            num[k] = 0;
            char *end;
            errno = 0;
            long l = strtol(num, &end, 10);
            if (*end || errno || l < 0 || (unsigned long)l > DAP_MESSAGE_MAX)
                return -1;
            len = l;
        }
        pos += n + 2; /* "\r\n" */
    }
    return len;
}

/* The next message, or NULL on timeout or a broken stream. */
static struct json *read_message(struct dap *d, double deadline)
{
    while (!d->broken) {
        char *sep = NULL;
        for (size_t i = 0; i + 4 <= d->in_len && i < DAP_HEADER_MAX; i++) {
            if (memcmp(d->in + i, "\r\n\r\n", 4) == 0) {
                sep = d->in + i;
                break;
            }
        }
        if (sep) {
            size_t hlen = (size_t)(sep - d->in);
            long len = content_length(d->in, hlen);
            if (len < 0) {
                note_str(d, "!!", "bad message header");
                d->broken = true;
                return NULL;
            }
            size_t total = hlen + 4 + (size_t)len;
            if (d->in_len >= total) {
                const char *err = NULL;
                struct json *m = json_parse(sep + 4, (size_t)len, &err);
                note(d, "<-", sep + 4, (size_t)len);
                memmove(d->in, d->in + total, d->in_len - total);
                d->in_len -= total;
                if (!m || m->type != JSON_OBJECT) {
                    note_str(d, "!!", err ? err : "not an object");
                    json_free(m);
                    d->broken = true;
                    return NULL;
                }
                return m;
            }
        } else if (d->in_len >= DAP_HEADER_MAX) {
            note_str(d, "!!", "header too long");
            d->broken = true;
            return NULL;
        }
        int ms = (int)((deadline - now()) * 1000);
        struct pollfd pf = {.fd = d->from, .events = POLLIN};
        if (ms <= 0 || poll(&pf, 1, ms) <= 0)
            return NULL;
        if (d->in_cap - d->in_len < 65536) {
            size_t cap = d->in_cap ? d->in_cap * 2 : 1 << 17;
            char *p = realloc(d->in, cap);
            if (!p) {
                d->broken = true;
                return NULL;
            }
            d->in = p;
            d->in_cap = cap;
        }
        ssize_t r = read(d->from, d->in + d->in_len, d->in_cap - d->in_len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            note_str(d, "!!", "the adapter closed its output");
            d->broken = true;
            return NULL;
        }
        d->in_len += (size_t)r;
    }
    return NULL;
}

static void keep(struct dap *d, struct json *m)
{
    if (d->backlog_len == DAP_BACKLOG_MAX) {
        /* Nobody asked for the oldest; an unbounded test would not end. */
        json_free(d->backlog[0]);
        memmove(d->backlog, d->backlog + 1, (DAP_BACKLOG_MAX - 1) * sizeof(d->backlog[0]));
        d->backlog_len--;
    }
    d->backlog[d->backlog_len++] = m;
}

static struct json *take(struct dap *d, size_t i)
{
    struct json *m = d->backlog[i];
    memmove(d->backlog + i, d->backlog + i + 1, (d->backlog_len - i - 1) * sizeof(d->backlog[0]));
    d->backlog_len--;
    return m;
}

static bool is_response_to(const struct json *m, int seq)
{
    double rs;
    const char *type = json_str(m, "type");
    return type && strcmp(type, "response") == 0 && json_num(m, "request_seq", &rs) &&
           (int)rs == seq;
}

static bool is_event(const struct json *m, const char *event, const char *reason)
{
    const char *type = json_str(m, "type"), *name = json_str(m, "event");
    if (!type || strcmp(type, "event") != 0 || !name || strcmp(name, event) != 0)
        return false;
    if (!reason)
        return true;
    const char *r = json_str(m, "body.reason");
    return r && strcmp(r, reason) == 0;
}

struct json *dap_request(struct dap *d, const char *command, const char *args_json,
                         int timeout_ms)
{
    int seq = dap_send(d, command, args_json);
    if (seq < 0)
        return NULL;
    double deadline = now() + timeout_ms / 1000.0;
    for (;;) {
        struct json *m = read_message(d, deadline);
        if (!m)
            return NULL;
        if (is_response_to(m, seq))
            return m;
        keep(d, m);
    }
}

struct json *dap_wait_event(struct dap *d, const char *event, const char *reason,
                            int timeout_ms)
{
    for (size_t i = 0; i < d->backlog_len; i++)
        if (is_event(d->backlog[i], event, reason))
            return take(d, i);
    double deadline = now() + timeout_ms / 1000.0;
    for (;;) {
        struct json *m = read_message(d, deadline);
        if (!m)
            return NULL;
        if (is_event(m, event, reason))
            return m;
        keep(d, m);
    }
}

void dap_pump(struct dap *d, int timeout_ms)
{
    double deadline = now() + timeout_ms / 1000.0;
    struct json *m;
    while ((m = read_message(d, deadline)))
        keep(d, m);
}

char *dap_output(const struct dap *d, const char *category)
{
    size_t len = 0;
    for (size_t i = 0; i < d->backlog_len; i++) {
        const char *c = json_str(d->backlog[i], "body.category");
        const char *o = json_str(d->backlog[i], "body.output");
        if (is_event(d->backlog[i], "output", NULL) && o && (!category || (c && !strcmp(c, category))))
            len += strlen(o);
    }
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    out[0] = 0;
    for (size_t i = 0; i < d->backlog_len; i++) {
        const char *c = json_str(d->backlog[i], "body.category");
        const char *o = json_str(d->backlog[i], "body.output");
        if (is_event(d->backlog[i], "output", NULL) && o && (!category || (c && !strcmp(c, category))))
            strcat(out, o);
    }
    return out;
}

int dap_stop(struct dap *d, int timeout_ms)
{
    int status = -1;
    if (d->to >= 0)
        close(d->to);
    if (d->pid > 0) {
        bool reaped = false;
        int st = 0;
        for (double end = now() + timeout_ms / 1000.0; now() < end;) {
            if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
                reaped = true;
                break;
            }
            usleep(10000);
        }
        if (!reaped) {
            kill(-d->pid, SIGKILL);
            kill(d->pid, SIGKILL);
            waitpid(d->pid, &st, 0);
        }
        status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    if (d->from >= 0)
        close(d->from);
    for (size_t i = 0; i < d->backlog_len; i++)
        json_free(d->backlog[i]);
    free(d->in);
    free(d->transcript);
    if (d->err_path[0])
        unlink(d->err_path);
    memset(d, 0, sizeof(*d));
    d->pid = -1;
    d->to = d->from = -1;
    return status;
}

char *dap_transcript(const struct dap *d)
{
    char err[16384] = "";
    FILE *f = fopen(d->err_path, "r");
    if (f) {
        size_t n = fread(err, 1, sizeof(err) - 1, f);
        err[n] = 0;
        fclose(f);
    }
    size_t len = d->tr_len + strlen(err) + 64;
    char *out = malloc(len);
    if (out)
        snprintf(out, len, "%.*s--- adapter stderr ---\n%s", (int)d->tr_len,
                 d->transcript ? d->transcript : "", err);
    return out;
}
