/* tests/bench/rspbench.c: measures a GDB remote stub from the client side.
 *
 * Speaks the Remote Serial Protocol to any stub at HOST:PORT (or launches
 * one with --launch) and prints one "name value" line per figure on stdout;
 * notes and errors go to stderr. It shares no code with kvmstub on purpose:
 * it is the measuring stick, so a bug in the project's codec cannot flatter
 * the project, and it measures QEMU's gdbstub with exactly the same packets.
 *
 * Every reply is checked (checksum, form, and memory contents against what
 * was written; with --counter-addr also that the guest really ran), because
 * a stub that answers wrongly must not look fast. A wrong or missing reply
 * ends the run with a message naming the packet and the reply.
 *
 * See tests/bench/README.md for the figures and how to run it. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Bounds on what an untrusted stub can make us allocate. */
#define MAX_FRAME (32u << 20)  /* raw bytes between '$' and '#' */
#define MAX_BUFFER (64u << 20) /* any buffer, decoded packets included */
#define MAX_PACKET_SIZE (16u << 20)
#define MIN_PACKET_SIZE 64u
/* Used when qSupported names no PacketSize: small enough for any stub. */
#define FALLBACK_PACKET_SIZE 400u
#define RECV_CHUNK (256u << 10)
/* Booting QEMU's BIOS (--run-to) and starting a stub under nested
 * virtualisation take far longer than one reply. */
#define SLOW_TIMEOUT_S 60.0
#define RUN_TO_TIMEOUT_S 120.0
#define SIGTRAP_NUM 5

/* ---- errors, time, buffers ------------------------------------------- */

static const char *g_stage = "setup";     /* what is being measured, for errors */
static volatile sig_atomic_t g_child = 0; /* launched stub, killed on any exit */

/* Ends the launched stub: politely first, then for sure. Safe to call twice. */
static void stop_child(void)
{
    pid_t pid = (pid_t)g_child;
    if (pid <= 0)
        return;
    g_child = 0;
    kill(pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(pid, NULL, WNOHANG) != 0)
            return;
        struct timespec ms10 = {0, 10 * 1000 * 1000};
        nanosleep(&ms10, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "rspbench: %s: ", g_stage);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    stop_child();
    exit(1);
}

__attribute__((format(printf, 1, 2))) static void note(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "rspbench: note: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* A SIGTERM from a driving script's timeout must not orphan the stub. */
static void on_fatal_signal(int sig)
{
    if (g_child > 0)
        kill((pid_t)g_child, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

struct buf {
    uint8_t *p;
    size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t need)
{
    if (need <= b->cap)
        return;
    if (need > MAX_BUFFER)
        die("a buffer would grow past %u MiB (the stub sent more than any sane reply)",
            MAX_BUFFER >> 20);
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        die("out of memory (%zu bytes)", cap);
    b->p = p;
    b->cap = cap;
}

static void buf_put(struct buf *b, const void *p, size_t n)
{
    buf_reserve(b, b->len + n + 1);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory (%zu bytes)", n);
    return p;
}

/* A printable, bounded rendering of untrusted bytes for error messages. */
static const char *shown(const uint8_t *p, size_t n)
{
    static char out[200];
    size_t o = 0;
    if (n == 0)
        return "an empty packet";
    out[o++] = '\'';
    for (size_t i = 0; i < n; i++) {
        if (o + 8 >= sizeof out) {
            o += (size_t)snprintf(out + o, sizeof out - o, "...(%zu bytes)", n);
            return out;
        }
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
            out[o++] = (char)p[i];
        else
            o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02x", p[i]);
    }
    out[o++] = '\'';
    out[o] = '\0';
    return out;
}

static int hexval(uint8_t ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decodes n hex digits (n even) into n/2 bytes; false on a non-hex digit. */
static bool unhex(const uint8_t *s, size_t n, uint8_t *out)
{
    for (size_t i = 0; i + 1 < n; i += 2) {
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static void put_hex(struct buf *b, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    buf_reserve(b, b->len + 2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        b->p[b->len++] = (uint8_t)digits[p[i] >> 4];
        b->p[b->len++] = (uint8_t)digits[p[i] & 15];
    }
}

/* ---- options ------------------------------------------------------------ */

enum {
    FIG_STEPS = 1u << 0,
    FIG_G = 1u << 1,
    FIG_MREAD = 1u << 2,
    FIG_XREAD = 1u << 3,
    FIG_MWRITE = 1u << 4,
    FIG_XWRITE = 1u << 5,
    FIG_BP = 1u << 6,
    FIG_SERIAL = 1u << 7,
    FIG_WATCH = 1u << 8,
    FIG_INTERRUPT = 1u << 9,
};

static const struct {
    const char *name;
    unsigned bit;
} figure_names[] = {
    {"steps", FIG_STEPS}, {"g", FIG_G},   {"m", FIG_MREAD}, {"x", FIG_XREAD},
    {"M", FIG_MWRITE},    {"X", FIG_XWRITE}, {"bp", FIG_BP},  {"serial", FIG_SERIAL},
    {"watch", FIG_WATCH}, {"interrupt", FIG_INTERRUPT},
};

struct opts {
    const char *host;
    unsigned port;
    double seconds, timeout;
    unsigned figures;
    bool only_given;
    const char *launch;
    bool has_bp, has_counter, has_run_to, has_watch;
    uint64_t bp_addr, counter_addr, run_to, watch_addr;
    uint64_t mem_addr, mem_len;
    bool serial_seq, pingpong, ack_mode;
    unsigned thread; /* steps by vCont;s:THREAD (0: plain 's') */
};

static const char usage_text[] =
    "usage: rspbench [--host H] --port P [options]      measure a running stub\n"
    "       rspbench --launch 'COMMAND {port}' [options] start the stub, then measure\n"
    "       rspbench --pingpong [--seconds N]            loopback TCP floor\n"
    "\n"
    "  --host H            stub address (default 127.0.0.1)\n"
    "  --port P            stub port; with --launch and no --port a free one is\n"
    "                      picked and put in place of {port} in COMMAND\n"
    "  --seconds N         time spent on each figure (default 2)\n"
    "  --timeout S         longest wait for one reply (default 5)\n"
    "  --only LIST         figures to run, comma-separated:\n"
    "                      steps,g,m,x,M,X,bp,serial,watch,interrupt\n"
    "  --launch 'COMMAND'  run COMMAND with /bin/sh, wait for the port, measure the\n"
    "                      start-to-first-reply time and peak RSS, kill it at the end\n"
    "  --run-to ADDR       first run the guest to ADDR (e.g. 0x7c00 past QEMU's BIOS)\n"
    "  --bp-addr ADDR      linear address inside the guest's loop (breakpoint figure)\n"
    "  --counter-addr ADDR 32-bit counter the guest bumps once per loop pass: steps and\n"
    "                      breakpoint stops are checked against it\n"
    "  --mem-addr ADDR     RAM range read and written by m, x, M, X (default 0x10000)\n"
    "  --mem-len LEN       its length (default 0x20000)\n"
    "  --watch-addr ADDR   a RAM address the guest's loop never touches: the watch\n"
    "                      figure compares loop passes per second (--counter-addr)\n"
    "                      without and with a write watchpoint (Z2) there\n"
    "  --serial            add the serial figure: 'c', count 'O' bytes, then 0x03\n"
    "  --serial-seq        check that 'O' bytes follow the cycle 0x20..0x7e that the\n"
    "                      bench_serial guest writes\n"
    "  --ack-mode          stay in ack mode even if the stub offers QStartNoAckMode\n"
    "  --pingpong          only measure 1-byte TCP ping-pong between two threads\n"
    "  --thread N          step with 'vCont;s:N' (only thread N runs) instead of 's'\n"
    "\n"
    "The interrupt figure (only with --only) lets the guest run 20 ms, sends the\n"
    "interrupt byte 0x03 and times the stop reply: the median of 50, in ms.\n";

__attribute__((noreturn, format(printf, 1, 2))) static void usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "rspbench: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(run 'rspbench --help' for the options)\n");
    exit(2);
}

static uint64_t parse_u64(const char *s, const char *what)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || s[0] == '-')
        usage_error("%s wants a number (decimal or 0x hex), not '%s'", what, s);
    return (uint64_t)v;
}

static double parse_seconds(const char *s, const char *what)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0.0 && v <= 3600.0))
        usage_error("%s wants seconds between 0 and 3600, not '%s'", what, s);
    return v;
}

static unsigned parse_figures(const char *list)
{
    unsigned bits = 0;
    char *copy = strdup(list), *save = NULL;
    if (!copy)
        die("out of memory");
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        unsigned bit = 0;
        for (size_t i = 0; i < sizeof figure_names / sizeof figure_names[0]; i++)
            if (strcmp(tok, figure_names[i].name) == 0)
                bit = figure_names[i].bit;
        if (!bit)
            usage_error("--only: unknown figure '%s' (known: steps,g,m,x,M,X,bp,serial,watch,"
                        "interrupt)", tok);
        bits |= bit;
    }
    free(copy);
    if (!bits)
        usage_error("--only names no figure");
    return bits;
}

enum {
    OPT_HOST = 256, OPT_PORT, OPT_SECONDS, OPT_TIMEOUT, OPT_ONLY, OPT_LAUNCH, OPT_RUN_TO,
    OPT_BP, OPT_COUNTER, OPT_MEM_ADDR, OPT_MEM_LEN, OPT_SERIAL, OPT_SERIAL_SEQ, OPT_ACK,
    OPT_PINGPONG, OPT_WATCH, OPT_THREAD,
};

static const struct option long_options[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"seconds", required_argument, NULL, OPT_SECONDS},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"only", required_argument, NULL, OPT_ONLY},
    {"launch", required_argument, NULL, OPT_LAUNCH},
    {"run-to", required_argument, NULL, OPT_RUN_TO},
    {"bp-addr", required_argument, NULL, OPT_BP},
    {"counter-addr", required_argument, NULL, OPT_COUNTER},
    {"mem-addr", required_argument, NULL, OPT_MEM_ADDR},
    {"mem-len", required_argument, NULL, OPT_MEM_LEN},
    {"serial", no_argument, NULL, OPT_SERIAL},
    {"serial-seq", no_argument, NULL, OPT_SERIAL_SEQ},
    {"ack-mode", no_argument, NULL, OPT_ACK},
    {"pingpong", no_argument, NULL, OPT_PINGPONG},
    {"watch-addr", required_argument, NULL, OPT_WATCH},
    {"thread", required_argument, NULL, OPT_THREAD},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void apply_option(struct opts *o, int opt, const char *arg, bool *serial)
{
    switch (opt) {
    case OPT_HOST: o->host = arg; break;
    case OPT_PORT: {
        uint64_t p = parse_u64(arg, "--port");
        if (p > 65535)
            usage_error("--port %s is not a TCP port", arg);
        o->port = (unsigned)p;
        break;
    }
    case OPT_SECONDS: o->seconds = parse_seconds(arg, "--seconds"); break;
    case OPT_TIMEOUT: o->timeout = parse_seconds(arg, "--timeout"); break;
    case OPT_ONLY: o->figures = parse_figures(arg); o->only_given = true; break;
    case OPT_LAUNCH: o->launch = arg; break;
    case OPT_RUN_TO: o->run_to = parse_u64(arg, "--run-to"); o->has_run_to = true; break;
    case OPT_BP: o->bp_addr = parse_u64(arg, "--bp-addr"); o->has_bp = true; break;
    case OPT_COUNTER:
        o->counter_addr = parse_u64(arg, "--counter-addr");
        o->has_counter = true;
        break;
    case OPT_MEM_ADDR: o->mem_addr = parse_u64(arg, "--mem-addr"); break;
    case OPT_MEM_LEN: o->mem_len = parse_u64(arg, "--mem-len"); break;
    case OPT_SERIAL: *serial = true; break;
    case OPT_SERIAL_SEQ: o->serial_seq = true; break;
    case OPT_ACK: o->ack_mode = true; break;
    case OPT_PINGPONG: o->pingpong = true; break;
    case OPT_WATCH: o->watch_addr = parse_u64(arg, "--watch-addr"); o->has_watch = true; break;
    case OPT_THREAD: {
        uint64_t t = parse_u64(arg, "--thread");
        if (t < 1 || t > 0xffff)
            usage_error("--thread %s is not a thread id (1 or more)", arg);
        o->thread = (unsigned)t;
        break;
    }
    case 'h': fputs(usage_text, stdout); exit(0);
    default: usage_error("unknown option");
    }
}

static void parse_options(int argc, char **argv, struct opts *o)
{
    bool serial = false;
    *o = (struct opts){.host = "127.0.0.1", .seconds = 2.0, .timeout = 5.0,
                       .mem_addr = 0x10000, .mem_len = 0x20000};
    int opt;
    while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1)
        apply_option(o, opt, optarg, &serial);
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
    if (o->pingpong)
        return;
    if (!o->only_given)
        o->figures = FIG_STEPS | FIG_G | FIG_MREAD | FIG_XREAD | FIG_MWRITE | FIG_XWRITE | FIG_BP;
    if (serial)
        o->figures |= FIG_SERIAL;
    if (o->has_watch && !o->only_given)
        o->figures |= FIG_WATCH;
    if ((o->figures & FIG_WATCH) && (!o->has_watch || !o->has_counter))
        usage_error("the watch figure needs --watch-addr and --counter-addr");
    if (!o->launch && o->port == 0)
        usage_error("give the stub's --port, or --launch it");
    if (o->only_given && (o->figures & FIG_BP) && !o->has_bp)
        usage_error("--only bp needs --bp-addr (an address inside the guest's loop)");
    if (o->mem_len < 64 || o->mem_len > (64u << 20))
        usage_error("--mem-len must be between 64 bytes and 64 MiB");
    if (o->mem_addr + o->mem_len < o->mem_addr)
        usage_error("--mem-addr + --mem-len wraps around");
}

/* ---- the launched stub -------------------------------------------------- */

/* Asks the kernel for a free port by binding port 0; the stub binds it a
 * moment later (a race only with other programs doing the same). */
static unsigned pick_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        die("cannot find a free TCP port: %s", strerror(errno));
    close(fd);
    return ntohs(sa.sin_port);
}

/* COMMAND with every "{port}" replaced by the port number. */
static char *substitute_port(const char *cmd, unsigned port)
{
    char num[16];
    snprintf(num, sizeof num, "%u", port);
    struct buf b = {0};
    buf_put(&b, "exec ", 5); /* the shell becomes the stub: its pid is ours */
    for (const char *p = cmd; *p;) {
        if (strncmp(p, "{port}", 6) == 0) {
            buf_put(&b, num, strlen(num));
            p += 6;
        } else {
            buf_put(&b, p++, 1);
        }
    }
    b.p[b.len] = '\0';
    return (char *)b.p;
}

static void launch_stub(const char *cmd)
{
    fflush(NULL); /* nothing buffered may be written twice */
    pid_t pid = fork();
    if (pid < 0)
        die("cannot start the stub: fork: %s", strerror(errno));
    if (pid == 0) {
        /* Our stdout carries only figures; the stub's chatter goes to stderr. */
        dup2(STDERR_FILENO, STDOUT_FILENO);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    g_child = pid;
}

/* "" while the launched stub runs, else how it ended (and reaps it). */
static const char *child_exit_note(void)
{
    static char text[96];
    int status;
    pid_t pid = (pid_t)g_child;
    if (pid <= 0 || waitpid(pid, &status, WNOHANG) != pid)
        return "";
    g_child = 0;
    if (WIFEXITED(status))
        snprintf(text, sizeof text, " (the stub exited with status %d)", WEXITSTATUS(status));
    else
        snprintf(text, sizeof text, " (the stub was killed by signal %d)", WTERMSIG(status));
    return text;
}

/* VmHWM of the launched stub in KiB, or -1 when it cannot be read. */
static long peak_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* ---- the connection ------------------------------------------------------ */

struct conn {
    int fd;
    bool no_ack;
    double timeout;
    struct buf in; /* raw bytes received, unparsed from pos on */
    size_t pos;
    struct buf pkt; /* the last packet's payload, decoded, NUL-terminated */
    struct buf out; /* the frame being sent */
    char what[48];  /* the last command, for error messages */
};

static struct addrinfo *resolve(const char *host, unsigned port)
{
    char service[16];
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    snprintf(service, sizeof service, "%u", port);
    int err = getaddrinfo(host, service, &hints, &res);
    if (err)
        die("cannot resolve '%s': %s", host, gai_strerror(err));
    return res;
}

/* One connection attempt over all addresses; -1 with errno set on failure. */
static int try_connect(const struct addrinfo *ai)
{
    int err = ECONNREFUSED;
    for (; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            return fd;
        err = errno;
        close(fd);
    }
    errno = err;
    return -1;
}

static void conn_init(struct conn *c, int fd, double timeout)
{
    *c = (struct conn){.fd = fd, .timeout = timeout};
    int one = 1;
    /* Every request waits for its reply: Nagle would only add delay. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
        die("TCP_NODELAY: %s", strerror(errno));
    /* A stub that stops reading must not block us forever in send(). */
    struct timeval tv = {(time_t)timeout, (suseconds_t)((timeout - (double)(time_t)timeout) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static void send_all(struct conn *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            die("the stub stopped reading: sending '%s' blocked for %.1f s", c->what, c->timeout);
        } else {
            die("sending '%s' failed: %s%s", c->what, w < 0 ? strerror(errno) : "short write",
                child_exit_note());
        }
    }
}

/* Frames an already escaped payload as $payload#cs and sends it. */
static void send_packet(struct conn *c, const uint8_t *payload, size_t n)
{
    uint8_t sum = 0;
    snprintf(c->what, sizeof c->what, "%.*s", (int)(n < 40 ? n : 40), (const char *)payload);
    for (size_t i = 0; i < n; i++)
        sum = (uint8_t)(sum + payload[i]);
    c->out.len = 0;
    buf_reserve(&c->out, n + 5); /* '$', payload, "#nn" and snprintf's NUL */
    c->out.p[c->out.len++] = '$';
    memcpy(c->out.p + c->out.len, payload, n);
    c->out.len += n;
    c->out.len += (size_t)snprintf((char *)c->out.p + c->out.len, 4, "#%02x", sum);
    send_all(c, c->out.p, c->out.len);
}

static void send_str(struct conn *c, const char *s)
{
    send_packet(c, (const uint8_t *)s, strlen(s));
}

/* Waits until more bytes arrive; false when the deadline passes first. */
static bool recv_more(struct conn *c, double deadline)
{
    if (c->pos > 0) {
        memmove(c->in.p, c->in.p + c->pos, c->in.len - c->pos);
        c->in.len -= c->pos;
        c->pos = 0;
    }
    buf_reserve(&c->in, c->in.len + RECV_CHUNK);
    for (;;) {
        double left = deadline - now();
        if (left <= 0)
            return false;
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)(left * 1000.0) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            die("poll: %s", strerror(errno));
        if (r == 0)
            continue; /* re-check the deadline */
        ssize_t n = recv(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len, 0);
        if (n > 0) {
            c->in.len += (size_t)n;
            return true;
        }
        if (n == 0)
            die("the stub closed the connection while we waited for the reply to '%s'%s",
                c->what, child_exit_note());
        if (errno != EINTR && errno != EAGAIN)
            die("reading the reply to '%s': %s%s", c->what, strerror(errno), child_exit_note());
    }
}

/* Undoes '}' escapes and '*' run-length encoding into c->pkt. */
static void decode_payload(struct conn *c, const uint8_t *raw, size_t n)
{
    struct buf *o = &c->pkt;
    o->len = 0;
    buf_reserve(o, n + 1);
    for (size_t i = 0; i < n; i++) {
        uint8_t b = raw[i];
        if (b == '}') {
            if (i + 1 >= n)
                die("the reply to '%s' ends inside a '}' escape", c->what);
            o->p[o->len++] = raw[++i] ^ 0x20;
        } else if (b == '*') {
            if (o->len == 0 || i + 1 >= n || raw[i + 1] < 29 + 3 || raw[i + 1] > 126)
                die("the reply to '%s' has a bad run-length '*' at byte %zu", c->what, i);
            size_t run = (size_t)raw[++i] - 29;
            buf_reserve(o, o->len + run + (n - i) + 1);
            memset(o->p + o->len, o->p[o->len - 1], run);
            o->len += run;
        } else {
            o->p[o->len++] = b;
        }
    }
    o->p[o->len] = '\0';
}

/* Checks the frame in[pos] = '$' .. hash[2] and decodes it. */
static void take_frame(struct conn *c, size_t hash)
{
    const uint8_t *raw = c->in.p + c->pos + 1;
    size_t n = hash - c->pos - 1;
    int hi = hexval(c->in.p[hash + 1]), lo = hexval(c->in.p[hash + 2]);
    uint8_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum = (uint8_t)(sum + raw[i]);
    if (hi < 0 || lo < 0)
        die("the reply to '%s' has a non-hex checksum", c->what);
    if ((uint8_t)(hi << 4 | lo) != sum)
        die("bad checksum in the reply to '%s': it says %02x, the %zu bytes sum to %02x",
            c->what, (unsigned)(hi << 4 | lo), n, sum);
    decode_payload(c, raw, n);
    c->pos = hash + 3;
    if (!c->no_ack)
        send_all(c, (const uint8_t *)"+", 1);
}

/* Reads the next packet into c->pkt; false if the deadline passed first.
 * Acks between packets are skipped; anything else outside one is fatal. */
static bool read_packet(struct conn *c, double deadline)
{
    size_t scanned = 0; /* bytes after '$' known to hold no '#' */
    for (;;) {
        while (c->pos < c->in.len && c->in.p[c->pos] == '+')
            c->pos++;
        if (c->pos < c->in.len) {
            uint8_t b = c->in.p[c->pos];
            if (b == '-')
                die("the stub rejected our packet '%s' ('-'): this client sent a bad checksum?",
                    c->what);
            if (b != '$')
                die("unexpected byte 0x%02x outside a packet while waiting for the reply to '%s'",
                    b, c->what);
            size_t body = c->pos + 1, avail = c->in.len - body;
            const uint8_t *hash = memchr(c->in.p + body + scanned, '#', avail - scanned);
            if (hash) {
                size_t at = (size_t)(hash - c->in.p);
                if (at + 2 < c->in.len) {
                    take_frame(c, at);
                    return true;
                }
                scanned = at - body; /* wait for the two checksum digits */
            } else {
                scanned = avail;
            }
            if (scanned > MAX_FRAME)
                die("the reply to '%s' runs past %u MiB without a '#'", c->what, MAX_FRAME >> 20);
        }
        if (!recv_more(c, deadline))
            return false;
    }
}

/* The next packet, or a fatal timeout naming the command and a hint. */
static const struct buf *reply(struct conn *c, double timeout, const char *hint)
{
    if (!read_packet(c, now() + timeout))
        die("no reply to '%s' within %.1f s%s%s: the stub hangs or ignored the packet (raise "
            "--timeout if it is only slow)", c->what, timeout, hint, child_exit_note());
    return &c->pkt;
}

static const struct buf *request(struct conn *c, const char *cmd)
{
    send_str(c, cmd);
    return reply(c, c->timeout, "");
}

static bool reply_is(const struct buf *r, const char *s)
{
    return r->len == strlen(s) && memcmp(r->p, s, r->len) == 0;
}

static bool is_error_reply(const struct buf *r)
{
    return r->len == 3 && r->p[0] == 'E' && hexval(r->p[1]) >= 0 && hexval(r->p[2]) >= 0;
}

/* For commands whose only good answer is OK; false for the empty packet
 * (not supported) when that is allowed. */
static bool expect_ok(struct conn *c, const char *cmd, bool empty_ok)
{
    const struct buf *r = request(c, cmd);
    if (reply_is(r, "OK"))
        return true;
    if (r->len == 0 && empty_ok)
        return false;
    die("'%s' was answered with %s, expected OK", cmd, shown(r->p, r->len));
}

/* ---- stop replies and console output ---------------------------------- */

/* Bytes the guest wrote to its console, from 'O' packets. */
struct console {
    uint64_t bytes;
    bool check_seq; /* the bench_serial cycle 0x20..0x7e */
    int last;       /* previous byte, -1 before the first */
};

static bool is_console_packet(const struct buf *r)
{
    if (r->len < 3 || r->p[0] != 'O' || (r->len - 1) % 2 != 0)
        return false;
    for (size_t i = 1; i < r->len; i++)
        if (hexval(r->p[i]) < 0)
            return false;
    return true;
}

static void console_take(struct console *con, const struct buf *r)
{
    size_t n = (r->len - 1) / 2;
    for (size_t i = 0; i < n; i++) {
        int b = hexval(r->p[1 + 2 * i]) << 4 | hexval(r->p[2 + 2 * i]);
        if (con->check_seq) {
            int want = con->last < 0 ? b : con->last == 0x7e ? 0x20 : con->last + 1;
            if (b != want || b < 0x20 || b > 0x7e)
                die("serial byte %" PRIu64 " is 0x%02x, expected 0x%02x: output was lost, "
                    "reordered or garbled on its way to the client",
                    con->bytes + i, (unsigned)b, (unsigned)want);
        }
        con->last = b;
    }
    con->bytes += n;
}

/* Signal of a stop reply ('S' or 'T'); -1 after consuming an 'O' packet. */
static int stop_signal(struct conn *c, struct console *con)
{
    const struct buf *r = &c->pkt;
    if (is_console_packet(r)) {
        console_take(con, r);
        return -1;
    }
    if ((r->p[0] == 'S' && r->len == 3) || (r->len >= 3 && r->p[0] == 'T')) {
        int hi = hexval(r->p[1]), lo = hexval(r->p[2]);
        if (hi >= 0 && lo >= 0)
            return hi << 4 | lo;
    }
    if (r->len > 0 && (r->p[0] == 'W' || r->p[0] == 'X'))
        die("the guest is gone: '%s' was answered with %s", c->what, shown(r->p, r->len));
    die("'%s' was answered with %s, expected a stop reply (S or T)", c->what,
        shown(r->p, r->len));
}

/* Waits for the stop reply to a resume command, passing console output to
 * con on the way. */
static int await_stop(struct conn *c, struct console *con, double timeout, const char *hint)
{
    double deadline = now() + timeout;
    for (;;) {
        if (!read_packet(c, deadline))
            die("no stop reply within %.1f s after '%s'%s%s", timeout, c->what, hint,
                child_exit_note());
        int sig = stop_signal(c, con);
        if (sig >= 0)
            return sig;
    }
}

static void expect_trap(int sig, const char *after)
{
    if (sig != SIGTRAP_NUM)
        die("%s stopped with signal %d, expected %d (SIGTRAP)", after, sig, SIGTRAP_NUM);
}

/* ---- the benchmark state ------------------------------------------------ */

enum xfmt { XFMT_NONE, XFMT_B, XFMT_RAW };

struct bench {
    struct conn c;
    const struct opts *o;
    uint64_t packet_size;
    bool offers_noack;
    uint8_t *pattern[3]; /* expected memory: [0] reads, [1] after M, [2] after X */
    enum xfmt xfmt;      /* how the stub answers 'x', if at all */
    bool has_X;
    struct console discard; /* console bytes seen outside the serial figure */
    uint8_t *scratch;       /* decoded read replies */
};

static void print_value(const char *name, double v, int decimals)
{
    printf("%s %.*f\n", name, decimals, v);
    fflush(stdout);
}

static void print_na(const char *name)
{
    printf("%s n/a\n", name);
    fflush(stdout);
}

/* Bytes that need escaping in binary data never appear in the patterns, so a
 * packet's payload size is exact; the escaping itself is checked apart. */
static uint8_t pattern_byte(uint64_t off, unsigned variant)
{
    uint8_t b = (uint8_t)(off * 131u + (off >> 8) * 17u + variant * 61u);
    if (b == '$' || b == '#' || b == '}' || b == '*')
        b = (uint8_t)('A' + variant);
    return b;
}

static void make_patterns(struct bench *b)
{
    for (unsigned v = 0; v < 3; v++) {
        b->pattern[v] = xmalloc(b->o->mem_len);
        for (uint64_t i = 0; i < b->o->mem_len; i++)
            b->pattern[v][i] = pattern_byte(i, v);
    }
    b->scratch = xmalloc(b->o->mem_len + 16);
}

/* ---- handshake ---------------------------------------------------------- */

static void parse_qsupported(struct bench *b, const struct buf *r)
{
    b->packet_size = 0;
    char *copy = xmalloc(r->len + 1), *save = NULL;
    memcpy(copy, r->p, r->len);
    copy[r->len] = '\0';
    for (char *f = strtok_r(copy, ";", &save); f; f = strtok_r(NULL, ";", &save)) {
        if (strncmp(f, "PacketSize=", 11) == 0) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(f + 11, &end, 16);
            if (errno || end == f + 11 || *end || v < MIN_PACKET_SIZE || v > MAX_PACKET_SIZE)
                die("qSupported gives %s: expected a hex size between %#x and %#x", f,
                    MIN_PACKET_SIZE, MAX_PACKET_SIZE);
            b->packet_size = v;
        } else if (strcmp(f, "QStartNoAckMode+") == 0) {
            b->offers_noack = true;
        }
    }
    free(copy);
    if (!b->packet_size) {
        note("the stub advertises no PacketSize; using %u bytes", FALLBACK_PACKET_SIZE);
        b->packet_size = FALLBACK_PACKET_SIZE;
    }
}

/* '?' first (its answer ends the start-up latency), then the features. */
static void handshake(struct bench *b, double t_start, bool launched)
{
    g_stage = "handshake";
    send_str(&b->c, "?");
    reply(&b->c, b->o->timeout, "");
    double first_ms = (now() - t_start) * 1000.0;
    stop_signal(&b->c, &b->discard);
    const struct buf *r = request(&b->c, "qSupported:swbreak+;hwbreak+");
    if (is_error_reply(r))
        die("qSupported was answered with %s", shown(r->p, r->len));
    parse_qsupported(b, r);
    if (b->offers_noack && !b->o->ack_mode) {
        expect_ok(&b->c, "QStartNoAckMode", false);
        b->c.no_ack = true;
    }
    print_value("packet_size", (double)b->packet_size, 0);
    if (launched)
        print_value("first_reply_ms", first_ms, 2);
}

/* ---- guest helpers ------------------------------------------------------- */

static uint32_t read_counter(struct bench *b)
{
    char cmd[48];
    uint8_t v[4];
    snprintf(cmd, sizeof cmd, "m%" PRIx64 ",4", b->o->counter_addr);
    const struct buf *r = request(&b->c, cmd);
    if (r->len != 8 || !unhex(r->p, 8, v))
        die("reading the guest's counter with '%s' gave %s, expected 8 hex digits", cmd,
            shown(r->p, r->len));
    return (uint32_t)v[0] | (uint32_t)v[1] << 8 | (uint32_t)v[2] << 16 | (uint32_t)v[3] << 24;
}

/* Inserts a breakpoint of type '0' (software) or '1' (hardware); false if
 * the stub does not support the type. */
static bool insert_bp(struct bench *b, char type, uint64_t addr)
{
    char cmd[48];
    snprintf(cmd, sizeof cmd, "Z%c,%" PRIx64 ",1", type, addr);
    return expect_ok(&b->c, cmd, true);
}

static void remove_bp(struct bench *b, char type, uint64_t addr)
{
    char cmd[48];
    snprintf(cmd, sizeof cmd, "z%c,%" PRIx64 ",1", type, addr);
    expect_ok(&b->c, cmd, false);
}

/* Inserts a breakpoint of the first type in prefs the stub supports. */
static char insert_any_bp(struct bench *b, const char *prefs, uint64_t addr)
{
    for (const char *t = prefs; *t; t++)
        if (insert_bp(b, *t, addr))
            return *t;
    die("the stub supports neither Z0 nor Z1 breakpoints");
}

/* Continues the guest for at most limit seconds. Returns the stop signal,
 * or -1 if it was still running and had to be interrupted (a breakpoint
 * that hit just before the interrupt counts as not hit: an interrupted stop
 * may report SIGTRAP too, and the caller retries anyway). */
static int continue_for(struct bench *b, double limit)
{
    send_str(&b->c, "c");
    double deadline = now() + limit;
    while (read_packet(&b->c, deadline)) {
        int sig = stop_signal(&b->c, &b->discard);
        if (sig >= 0)
            return sig;
    }
    send_all(&b->c, (const uint8_t *)"\003", 1);
    snprintf(b->c.what, sizeof b->c.what, "0x03 (interrupt)");
    await_stop(&b->c, &b->discard, b->o->timeout, ": the stub ignores the interrupt byte");
    return -1;
}

/* After the hardware breakpoint failed: software breakpoints, put in afresh
 * every --timeout seconds until one hits after the code has been loaded.
 * Returns the stop signal, or -1 when breakpoints never hit although the
 * guest's counter shows it running its loop (or, without a counter, when
 * the time is up): then the guest is measured from where it was stopped. */
static int run_to_software(struct bench *b, uint64_t addr, double deadline)
{
    const struct opts *o = b->o;
    uint32_t last = o->has_counter ? read_counter(b) : 0;
    int moving = 0; /* consecutive tries in which the loop ran */
    while (now() < deadline) {
        if (!insert_bp(b, '0', addr))
            die("the stub supports neither Z0 nor Z1 breakpoints");
        int sig = continue_for(b, o->timeout);
        remove_bp(b, '0', addr);
        if (sig >= 0)
            return sig;
        if (!o->has_counter)
            continue;
        uint32_t count = read_counter(b);
        moving = count != last ? moving + 1 : 0;
        last = count;
        /* Two tries in a row: the loop ran all through the second one, with
         * the breakpoint in place in loaded code, and still no stop. */
        if (moving >= 2) {
            note("breakpoints at --run-to %#" PRIx64 " never hit though the guest runs its loop "
                 "(its counter moves): measuring from where it was stopped", addr);
            return -1;
        }
    }
    if (o->has_counter)
        die("the guest did not reach --run-to %#" PRIx64 " in %.0f s, and its counter at %#" PRIx64
            " does not move", addr, RUN_TO_TIMEOUT_S, o->counter_addr);
    note("breakpoints at --run-to %#" PRIx64 " never hit in %.0f s: measuring from where the "
         "guest was stopped", addr, RUN_TO_TIMEOUT_S);
    return -1;
}

/* Lets a guest that starts in firmware (QEMU's BIOS) reach the code being
 * measured. A hardware breakpoint comes first, since the BIOS copies the
 * boot sector over a software one. Should it not fire (QEMU under nested
 * virtualisation, where neither kind does), software breakpoints follow,
 * which needs ADDR to be inside a loop. */
static void run_to(struct bench *b, uint64_t addr)
{
    g_stage = "run-to";
    double deadline = now() + RUN_TO_TIMEOUT_S;
    int sig = -1;
    if (insert_bp(b, '1', addr)) {
        sig = continue_for(b, b->o->timeout);
        remove_bp(b, '1', addr);
        if (sig < 0)
            note("the hardware breakpoint at --run-to %#" PRIx64 " did not hit in %.1f s; "
                 "trying software breakpoints", addr, b->o->timeout);
    }
    if (sig < 0)
        sig = run_to_software(b, addr, deadline);
    if (sig >= 0)
        expect_trap(sig, "running to --run-to");
}

/* ---- figures: execution ------------------------------------------------ */

static void fig_steps(struct bench *b)
{
    g_stage = "steps";
    uint32_t before = b->o->has_counter ? read_counter(b) : 0;
    uint64_t n = 0;
    double t0 = now(), t;
    char step[32] = "s";
    if (b->o->thread)
        snprintf(step, sizeof step, "vCont;s:%x", b->o->thread);
    do {
        send_str(&b->c, step);
        expect_trap(await_stop(&b->c, &b->discard, b->o->timeout, ""), step);
        n++;
    } while ((t = now() - t0) < b->o->seconds);
    if (b->o->has_counter) {
        uint32_t moved = read_counter(b) - before;
        if (moved > n)
            die("the guest's counter moved %u times in %" PRIu64 " steps: 's' ran more than "
                "one instruction", moved, n);
        if (moved == 0 && n >= 64)
            die("the guest's counter did not move in %" PRIu64 " steps: 's' did not run the "
                "guest (or --counter-addr is wrong)", n);
    }
    print_value("steps_per_sec", (double)n / t, 1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Ctrl-C latency: from the interrupt byte to the stop reply, with the
 * guest (all its vCPUs) running. */
static void fig_interrupt(struct bench *b)
{
    g_stage = "interrupt";
    enum { ROUNDS = 50 };
    double ms[ROUNDS];
    for (int i = 0; i < ROUNDS; i++) {
        send_str(&b->c, "c");
        sleep_ms(20);
        double t0 = now();
        send_all(&b->c, (const uint8_t *)"\003", 1);
        snprintf(b->c.what, sizeof b->c.what, "0x03 (interrupt)");
        int sig = await_stop(&b->c, &b->discard, b->o->timeout,
                             ": the stub ignores the interrupt byte");
        ms[i] = (now() - t0) * 1000;
        if (sig != 2)
            die("the interrupt stopped the guest with signal %d, expected 2 (SIGINT): did the "
                "guest stop by itself within 20 ms?", sig);
    }
    qsort(ms, ROUNDS, sizeof ms[0], cmp_double);
    print_value("interrupt_ms", ms[ROUNDS / 2], 3);
    print_value("interrupt_max_ms", ms[ROUNDS - 1], 3);
}

/* Checks a 'g' reply: hex (or 'x' for unavailable registers), whole bytes,
 * and always the same length. */
static void check_g_reply(const struct buf *r, size_t *len)
{
    if (is_error_reply(r) || r->len == 0 || r->len % 2)
        die("'g' was answered with %s, expected the registers in hex", shown(r->p, r->len));
    for (size_t i = 0; i < r->len; i++)
        if (hexval(r->p[i]) < 0 && r->p[i] != 'x')
            die("'g' reply has %s at offset %zu: not hex", shown(r->p + i, 1), i);
    if (*len && r->len != *len)
        die("'g' replies changed length from %zu to %zu", *len, r->len);
    *len = r->len;
}

static void fig_g(struct bench *b)
{
    g_stage = "g";
    size_t len = 0;
    uint64_t n = 0;
    double t0 = now(), t;
    do {
        check_g_reply(request(&b->c, "g"), &len);
        n++;
    } while ((t = now() - t0) < b->o->seconds);
    print_value("g_per_sec", (double)n / t, 1);
}

/* Each round trip runs the loop once, so passes should equal stops. A few
 * stops without progress are tolerated with a note (QEMU's TCG was once seen
 * reporting one 's' in hundreds without executing it); a stub that fakes
 * stops falls far outside that. */
static void check_bp_passes(uint64_t stops, uint32_t passes)
{
    if (passes > stops || passes + stops / 100 + 1 < stops)
        die("%" PRIu64 " breakpoint stops, but the guest's loop ran %u times: the stub reports "
            "stops without running the guest to the breakpoint", stops, passes);
    if (passes != stops)
        note("%" PRIu64 " breakpoint stops but %u loop passes: a few stops made no progress",
             stops, passes);
}

static void fig_bp(struct bench *b)
{
    g_stage = "bp";
    const struct opts *o = b->o;
    if (!o->has_bp) {
        note("no --bp-addr: skipping the breakpoint figure");
        print_na("bp_roundtrips_per_sec");
        return;
    }
    char type = insert_any_bp(b, "01", o->bp_addr);
    /* Onto the breakpoint, so that every timed pass is whole. A breakpoint
     * that never hits makes the figure n/a rather than ending the run: the
     * other figures still mean something. */
    int sig = continue_for(b, o->timeout);
    if (sig < 0) {
        remove_bp(b, type, o->bp_addr);
        note("the breakpoint (Z%c) at --bp-addr %#" PRIx64 " did not hit in %.1f s: the guest "
             "halted, --bp-addr is not in its loop, or the stub's breakpoints do not work",
             type, o->bp_addr, o->timeout);
        print_na("bp_roundtrips_per_sec");
        return;
    }
    expect_trap(sig, "'c' onto the breakpoint");
    uint32_t before = o->has_counter ? read_counter(b) : 0;
    uint64_t n = 0;
    double t0 = now(), t;
    do {
        /* What gdb sends to continue from a breakpoint: lift it, step off,
         * put it back, continue until the loop comes round again. */
        remove_bp(b, type, o->bp_addr);
        send_str(&b->c, "s");
        expect_trap(await_stop(&b->c, &b->discard, o->timeout, ""), "'s'");
        if (!insert_bp(b, type, o->bp_addr))
            die("re-inserting the breakpoint was answered with an empty packet");
        send_str(&b->c, "c");
        expect_trap(await_stop(&b->c, &b->discard, o->timeout,
                                      ": the guest never came back to --bp-addr"), "'c'");
        n++;
    } while ((t = now() - t0) < o->seconds);
    remove_bp(b, type, o->bp_addr);
    if (o->has_counter)
        check_bp_passes(n, read_counter(b) - before);
    print_value("bp_roundtrips_per_sec", (double)n / t, 1);
}

/* Loop passes per second while the guest runs freely for --seconds. */
static double loop_rate(struct bench *b, const char *what)
{
    uint32_t before = read_counter(b);
    double t0 = now();
    int sig = continue_for(b, b->o->seconds);
    double t = now() - t0;
    if (sig >= 0)
        die("the guest stopped with signal %d while running its loop %s; it should have run "
            "until interrupted", sig, what);
    uint32_t passes = read_counter(b) - before;
    if (passes == 0)
        die("the guest's counter did not move while it ran %s (is --counter-addr right?)", what);
    return (double)passes / t;
}

/* What a watchpoint costs the code that does not touch it: the same loop
 * without and with a write watchpoint on --watch-addr. Debug registers
 * cost nothing; page traps should cost nothing either, as long as the loop
 * stays off the watched page. */
static void fig_watch(struct bench *b)
{
    g_stage = "watch";
    const struct opts *o = b->o;
    double free_rate = loop_rate(b, "without a watchpoint");
    char cmd[64];
    snprintf(cmd, sizeof cmd, "Z2,%" PRIx64 ",4", o->watch_addr);
    const struct buf *r = request(&b->c, cmd);
    if (!reply_is(r, "OK")) {
        note("'%s' was answered with %s: no write watchpoint to measure", cmd,
             shown(r->p, r->len));
        print_value("loop_per_sec", free_rate, 1);
        print_na("loop_watched_per_sec");
        return;
    }
    double watched_rate = loop_rate(b, "with a watchpoint it never touches");
    cmd[0] = 'z';
    expect_ok(&b->c, cmd, false);
    print_value("loop_per_sec", free_rate, 1);
    print_value("loop_watched_per_sec", watched_rate, 1);
}

static void fig_serial(struct bench *b)
{
    g_stage = "serial";
    struct console con = {.check_seq = b->o->serial_seq, .last = -1};
    send_str(&b->c, "c");
    double t0 = now(), end = t0 + b->o->seconds;
    while (now() < end && read_packet(&b->c, end)) {
        if (!is_console_packet(&b->c.pkt))
            die("%s arrived while the guest should be writing to the UART forever",
                shown(b->c.pkt.p, b->c.pkt.len));
        console_take(&con, &b->c.pkt);
    }
    double t = now() - t0;
    send_all(&b->c, (const uint8_t *)"\003", 1);
    snprintf(b->c.what, sizeof b->c.what, "0x03 (interrupt)");
    await_stop(&b->c, &b->discard, b->o->timeout, ": the stub ignores the interrupt byte");
    if (con.bytes == 0) {
        note("no 'O' packets in %.1f s: the stub does not forward the guest's serial output",
             t);
        print_na("serial_MBps");
        return;
    }
    print_value("serial_MBps", (double)con.bytes / t / 1e6, 3);
}

/* ---- figures: memory ------------------------------------------------------- */

/* Compares read data with the pattern; a mismatch names the first bad byte. */
static void check_read(struct bench *b, char op, uint64_t off, const uint8_t *got, size_t n,
                       const uint8_t *expect)
{
    if (memcmp(got, expect + off, n) == 0)
        return;
    size_t i = 0;
    while (got[i] == expect[off + i])
        i++;
    die("'%c' read 0x%02x at 0x%" PRIx64 " where 0x%02x was written: the reply is wrong, or "
        "--mem-addr/--mem-len is not plain RAM",
        op, got[i], b->o->mem_addr + off + i, expect[off + i]);
}

/* One m or x read of want bytes at mem_addr+off, checked against expect.
 * Returns the bytes read (a short read is allowed by the protocol), or 0
 * for an error reply when errors_ok. */
static size_t read_once(struct bench *b, char op, uint64_t off, size_t want,
                        const uint8_t *expect, bool errors_ok)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "%c%" PRIx64 ",%zx", op, b->o->mem_addr + off, want);
    const struct buf *r = request(&b->c, cmd);
    const uint8_t *data = r->p;
    size_t n = r->len;
    if (is_error_reply(r) && errors_ok)
        return 0;
    if (op == 'm') {
        if (n == 0 || n % 2 || n > 2 * want || !unhex(r->p, n, b->scratch))
            die("'%s' was answered with %s, expected %zu hex digits", cmd, shown(r->p, n),
                2 * want);
        data = b->scratch;
        n /= 2;
    } else if (b->xfmt == XFMT_B) {
        if (n < 2 || r->p[0] != 'b' || n - 1 > want)
            die("'%s' was answered with %s, expected 'b' and %zu bytes", cmd, shown(r->p, n),
                want);
        data++;
        n--;
    } else if (n == 0 || n > want) {
        die("'%s' was answered with %s, expected %zu bytes", cmd, shown(r->p, n), want);
    }
    check_read(b, op, off, data, n, expect);
    return n;
}

/* The largest read that fits the advertised packet size; halved while the
 * stub refuses it, with a note (gdb would simply see the errors). */
static size_t probe_read_size(struct bench *b, char op, size_t size)
{
    if (size > b->o->mem_len)
        size = b->o->mem_len;
    while (read_once(b, op, 0, size, b->pattern[0], true) == 0) {
        if (size <= 16)
            die("'%c' fails even for %zu bytes at --mem-addr %#" PRIx64, op, size,
                b->o->mem_addr);
        note("'%c' of %zu bytes fails though PacketSize is %" PRIu64 "; trying %zu", op, size,
             b->packet_size, size / 2);
        size /= 2;
    }
    return size;
}

static void fig_read(struct bench *b, char op)
{
    g_stage = op == 'm' ? "m" : "x";
    /* A reply carries 2 hex digits per byte for m, 1 byte after 'b' for x. */
    size_t size = op == 'm' ? b->packet_size / 2 : b->packet_size - 1;
    size = probe_read_size(b, op, size);
    uint64_t off = 0, bytes = 0;
    double t0 = now(), t;
    do {
        size_t want = size < b->o->mem_len - off ? size : b->o->mem_len - off;
        size_t got = read_once(b, op, off, want, b->pattern[0], false);
        bytes += got;
        off += got;
        if (off >= b->o->mem_len)
            off = 0;
    } while ((t = now() - t0) < b->o->seconds);
    print_value(op == 'm' ? "m_MBps" : "x_MBps", (double)bytes / t / 1e6, 2);
}

/* Data bytes per M or X packet so that the whole frame, "$", "#nn" and a
 * worst-case header included, fits the advertised size (as gdb counts). */
static size_t write_size(struct bench *b, char op)
{
    char hdr[64];
    int h = snprintf(hdr, sizeof hdr, "%c%" PRIx64 ",%" PRIx64 ":", op,
                     b->o->mem_addr + b->o->mem_len, b->packet_size);
    size_t room = b->packet_size > (uint64_t)h + 4 ? b->packet_size - (uint64_t)h - 4 : 0;
    size_t size = op == 'M' ? room / 2 : room;
    if (size == 0)
        die("PacketSize %" PRIu64 " leaves no room for data in '%c'", b->packet_size, op);
    return size < b->o->mem_len ? size : b->o->mem_len;
}

static void put_escaped(struct buf *p, const uint8_t *data, size_t n)
{
    buf_reserve(p, p->len + 2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        uint8_t d = data[i];
        if (d == '$' || d == '#' || d == '}' || d == '*') {
            p->p[p->len++] = '}';
            d ^= 0x20;
        }
        p->p[p->len++] = d;
    }
}

/* Sends one M or X packet writing data[0..n) at addr; returns the reply. */
static const struct buf *write_once(struct bench *b, struct buf *p, char op, uint64_t addr,
                                    const uint8_t *data, size_t n)
{
    char hdr[64];
    int h = snprintf(hdr, sizeof hdr, "%c%" PRIx64 ",%zx:", op, addr, n);
    p->len = 0;
    buf_put(p, hdr, (size_t)h);
    if (op == 'M')
        put_hex(p, data, n);
    else
        put_escaped(p, data, n);
    send_packet(&b->c, p->p, p->len);
    return reply(&b->c, b->o->timeout, "");
}

static void write_checked(struct bench *b, struct buf *p, char op, uint64_t off,
                          const uint8_t *data, size_t n)
{
    const struct buf *r = write_once(b, p, op, b->o->mem_addr + off, data, n);
    if (!reply_is(r, "OK"))
        die("'%s' was answered with %s, expected OK", b->c.what, shown(r->p, r->len));
}

/* Reads [off, off+n) back with m and compares it with expect. */
static void verify_range(struct bench *b, uint64_t off, size_t n, const uint8_t *expect)
{
    size_t chunk = b->packet_size / 2;
    while (n > 0) {
        size_t got = read_once(b, 'm', off, n < chunk ? n : chunk, expect, false);
        off += got;
        n -= got;
    }
}

/* Writes a whole pattern over the range with M (untimed). */
static void fill_range(struct bench *b, unsigned variant)
{
    struct buf p = {0};
    size_t size = write_size(b, 'M');
    for (uint64_t off = 0; off < b->o->mem_len; off += size) {
        size_t n = size < b->o->mem_len - off ? size : b->o->mem_len - off;
        write_checked(b, &p, 'M', off, b->pattern[variant] + off, n);
    }
    free(p.p);
    verify_range(b, 0, 16, b->pattern[variant]);
}

static void fig_write(struct bench *b, char op)
{
    g_stage = op == 'M' ? "M" : "X";
    unsigned variant = op == 'M' ? 1 : 2; /* differs from what is there */
    const uint8_t *pat = b->pattern[variant];
    size_t size = write_size(b, op);
    struct buf p = {0};
    uint64_t off = 0, bytes = 0, last_off = 0;
    size_t last_n = 0;
    double t0 = now(), t;
    do {
        size_t n = size < b->o->mem_len - off ? size : b->o->mem_len - off;
        write_checked(b, &p, op, off, pat + off, n);
        last_off = off;
        last_n = n;
        bytes += n;
        off = off + n >= b->o->mem_len ? 0 : off + n;
    } while ((t = now() - t0) < b->o->seconds);
    free(p.p);
    /* An OK proves nothing by itself: the last packet must have landed. */
    verify_range(b, last_off, last_n, pat);
    print_value(op == 'M' ? "M_MBps" : "X_MBps", (double)bytes / t / 1e6, 2);
}

/* Finds out whether and how the stub answers 'x': gdb's form is 'b' and the
 * data; lldb's is the bare data. The empty packet means unsupported. */
static void probe_x(struct bench *b)
{
    char cmd[48];
    snprintf(cmd, sizeof cmd, "x%" PRIx64 ",10", b->o->mem_addr);
    const struct buf *r = request(&b->c, cmd);
    if (r->len == 0) {
        b->xfmt = XFMT_NONE;
    } else if (r->len == 17 && r->p[0] == 'b' && !memcmp(r->p + 1, b->pattern[0], 16)) {
        b->xfmt = XFMT_B;
    } else if (r->len == 16 && !memcmp(r->p, b->pattern[0], 16)) {
        b->xfmt = XFMT_RAW;
    } else {
        die("'%s' was answered with %s, expected 'b' and the 16 bytes that m reads there", cmd,
            shown(r->p, r->len));
    }
}

/* gdb's own probe for X: a zero-length write. */
static void probe_X(struct bench *b)
{
    char cmd[48];
    snprintf(cmd, sizeof cmd, "X%" PRIx64 ",0:", b->o->mem_addr);
    b->has_X = expect_ok(&b->c, cmd, true);
}

/* Bytes that binary packets must escape (and a few more that are easy to
 * get wrong) go through X and/or x once, before any figure trusts them. */
static void check_binary_escapes(struct bench *b)
{
    static const uint8_t special[8] = {'$', '#', '}', '*', 0x03, 0x00, 0xff, '}' ^ 0x20};
    uint8_t *expect = xmalloc(b->o->mem_len);
    struct buf p = {0};
    memcpy(expect, b->pattern[0], b->o->mem_len);
    memcpy(expect, special, sizeof special);
    write_checked(b, &p, b->has_X ? 'X' : 'M', 0, special, sizeof special);
    verify_range(b, 0, 16, expect);
    if (b->xfmt != XFMT_NONE && read_once(b, 'x', 0, 16, expect, false) != 16)
        die("'x' returned a short read of 16 bytes of RAM");
    write_checked(b, &p, 'M', 0, b->pattern[0], sizeof special);
    free(p.p);
    free(expect);
}

static void memory_figures(struct bench *b)
{
    unsigned f = b->o->figures;
    g_stage = "memory setup";
    make_patterns(b);
    fill_range(b, 0);
    if (f & FIG_XREAD)
        probe_x(b);
    if (f & FIG_XWRITE)
        probe_X(b);
    if (b->xfmt != XFMT_NONE || b->has_X)
        check_binary_escapes(b);
    if (f & FIG_MREAD)
        fig_read(b, 'm');
    if ((f & FIG_XREAD) && b->xfmt != XFMT_NONE)
        fig_read(b, 'x');
    else if (f & FIG_XREAD)
        print_na("x_MBps");
    if (f & FIG_MWRITE)
        fig_write(b, 'M');
    if ((f & FIG_XWRITE) && b->has_X)
        fig_write(b, 'X');
    else if (f & FIG_XWRITE)
        print_na("X_MBps");
}

/* ---- ping-pong: the loopback floor ----------------------------------------- */

static void set_nodelay_and_timeout(int fd)
{
    int one = 1;
    struct timeval tv = {5, 0};
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* Echoes every byte back until the peer closes (or stalls for 5 s). */
static void *echo_thread(void *arg)
{
    int lfd = *(int *)arg;
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    set_nodelay_and_timeout(fd);
    uint8_t byte;
    while (recv(fd, &byte, 1, 0) == 1 && send(fd, &byte, 1, MSG_NOSIGNAL) == 1)
        continue;
    close(fd);
    return NULL;
}

static void pingpong(double seconds)
{
    g_stage = "pingpong";
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 1) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &len) < 0)
        die("cannot listen on loopback: %s", strerror(errno));
    pthread_t echo;
    if (pthread_create(&echo, NULL, echo_thread, &lfd) != 0)
        die("cannot start the echo thread");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        die("cannot connect on loopback: %s", strerror(errno));
    set_nodelay_and_timeout(fd);
    uint64_t n = 0;
    uint8_t byte = 0x55, back;
    double t0 = now(), t;
    do {
        if (send(fd, &byte, 1, MSG_NOSIGNAL) != 1 || recv(fd, &back, 1, 0) != 1 || back != byte)
            die("the loopback echo failed after %" PRIu64 " exchanges: %s", n, strerror(errno));
        n++;
    } while ((t = now() - t0) < seconds);
    close(fd);
    pthread_join(echo, NULL);
    close(lfd);
    print_value("pingpong_per_sec", (double)n / t, 1);
}

/* ---- main ----------------------------------------------------------------- */

/* Connects; with a launched stub, retries until it listens (or dies). */
static int connect_stub(const struct opts *o, bool launched, double t_start)
{
    struct addrinfo *ai = resolve(o->host, o->port);
    double deadline = t_start + (o->timeout > SLOW_TIMEOUT_S ? o->timeout : SLOW_TIMEOUT_S);
    int fd;
    while ((fd = try_connect(ai)) < 0) {
        int err = errno;
        if (!launched)
            die("cannot connect to %s:%u: %s (is the stub running and listening there?)",
                o->host, o->port, strerror(err));
        const char *gone = child_exit_note();
        if (*gone)
            die("no connection to %s:%u%s: see the stub's own messages on stderr", o->host,
                o->port, gone);
        if (now() > deadline)
            die("the stub did not accept connections on %s:%u within %.0f s (%s)", o->host,
                o->port, deadline - t_start, strerror(err));
        sleep_ms(2);
    }
    freeaddrinfo(ai);
    return fd;
}

static void run_figures(struct bench *b)
{
    unsigned f = b->o->figures;
    if (b->o->has_run_to)
        run_to(b, b->o->run_to);
    if (!b->o->has_counter && (f & (FIG_STEPS | FIG_BP)))
        note("no --counter-addr: steps and breakpoint stops are not checked against the guest");
    if (f & FIG_INTERRUPT)
        fig_interrupt(b); /* first: the guest gets going (an SMP guest starts its APs) */
    if (f & FIG_STEPS)
        fig_steps(b);
    if (f & FIG_G)
        fig_g(b);
    if (f & (FIG_MREAD | FIG_XREAD | FIG_MWRITE | FIG_XWRITE))
        memory_figures(b);
    if (f & FIG_BP)
        fig_bp(b);
    if (f & FIG_WATCH)
        fig_watch(b);
    if (f & FIG_SERIAL)
        fig_serial(b);
}

static void free_bench(struct bench *b)
{
    for (unsigned v = 0; v < 3; v++)
        free(b->pattern[v]);
    free(b->scratch);
    free(b->c.in.p);
    free(b->c.pkt.p);
    free(b->c.out.p);
}

int main(int argc, char **argv)
{
    struct opts o;
    parse_options(argc, argv, &o);
    if (o.pingpong) {
        pingpong(o.seconds);
        return 0;
    }
    signal(SIGTERM, on_fatal_signal);
    signal(SIGINT, on_fatal_signal);
    signal(SIGHUP, on_fatal_signal);
    bool launched = o.launch != NULL;
    if (launched && o.port == 0)
        o.port = pick_free_port();
    double t_start = now();
    if (launched) {
        g_stage = "launch";
        char *cmd = substitute_port(o.launch, o.port);
        t_start = now();
        launch_stub(cmd);
        free(cmd);
    }
    struct bench b = {.o = &o};
    conn_init(&b.c, connect_stub(&o, launched, t_start), o.timeout);
    if (!launched)
        t_start = now();
    handshake(&b, t_start, launched);
    run_figures(&b);
    if (launched) {
        g_stage = "peak RSS";
        long kib = peak_rss_kib((pid_t)g_child);
        if (kib < 0)
            die("cannot read VmHWM from /proc/%d/status%s", (int)g_child, child_exit_note());
        print_value("peak_rss_KiB", (double)kib, 0);
    }
    close(b.c.fd);
    stop_child();
    free_bench(&b);
    return 0;
}
