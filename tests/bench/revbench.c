/* revbench: what reverse execution costs, against going forward.
 *
 *   revbench [--steps N] [--stops N] [--long-ms N] [--history SIZE] KVMSTUB BENCH_SPAN.bin
 *
 * Starts KVMSTUB on a free port with the bench_span guest (real mode, at
 * 0x7c00), speaks RSP to it directly (no gdb, no code of kvmstub's) and
 * prints one figure a line:
 *   stepi_us / reverse_stepi_us      N forward steps, then N back (bs)
 *   continue_ms / reverse_continue_ms
 *                                    N stops at the breakpoint that ends each
 *                                    10k-instruction pass (about a million
 *                                    instructions for 100), then N back (bc);
 *                                    reverse_continue_ratio divides the two
 *   span_insns                       guest instructions those stops spanned
 *   first_reverse_stepi_into_run_ms  a reverse step into a pass that was run
 *                                    (the replay counts it once)
 *   next_reverse_stepi_us            the reverse steps after it, each
 *   reverse_stepi_after_long_run_ms  a reverse step after a continue of
 *                                    --long-ms (default 300) ended by Ctrl-C:
 *                                    counted from the last checkpoint kvmstub
 *                                    took while it ran, not from its start
 *   peak_rss_KiB                     kvmstub's, at the end
 * Every stop is checked (a trap; the breakpoint's at its address; going
 * back ends where the same run forward was). Exit status 0 when every
 * figure was measured, 1 otherwise. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BP_ADDR 0x7c80u
#define COUNTER_ADDR 0x600u
#define INSNS_PER_ITER 3u

static pid_t g_child;
static int g_fd = -1;
static char g_rx[1 << 16];
static size_t g_rxlen;

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "revbench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    if (g_child > 0)
        kill(g_child, SIGKILL);
    exit(1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void send_packet(const char *payload)
{
    char buf[512];
    unsigned sum = 0;
    for (const char *p = payload; *p; p++)
        sum += (unsigned char)*p;
    int n = snprintf(buf, sizeof(buf), "$%s#%02x", payload, sum & 0xff);
    if (n < 0 || (size_t)n >= sizeof(buf))
        die("packet too long: %s", payload);
    for (int off = 0; off < n;) {
        ssize_t w = write(g_fd, buf + off, (size_t)(n - off));
        if (w <= 0)
            die("cannot send to kvmstub: %s", strerror(errno));
        off += (int)w;
    }
}

/* The next packet's payload (acks skipped; no-ack mode after the start). */
static const char *recv_packet(double timeout)
{
    static char out[sizeof(g_rx)];
    double end = now() + timeout;
    for (;;) {
        char *dollar = memchr(g_rx, '$', g_rxlen);
        char *hash = dollar ? memchr(dollar, '#', g_rxlen - (size_t)(dollar - g_rx)) : NULL;
        if (hash && (size_t)(hash - g_rx) + 3 <= g_rxlen) {
            size_t len = (size_t)(hash - dollar - 1);
            memcpy(out, dollar + 1, len);
            out[len] = 0;
            size_t used = (size_t)(hash - g_rx) + 3;
            memmove(g_rx, g_rx + used, g_rxlen - used);
            g_rxlen -= used;
            return out;
        }
        if (g_rxlen == sizeof(g_rx))
            die("a reply longer than %zu bytes", sizeof(g_rx));
        if (now() > end)
            die("no reply from kvmstub within %.0f s", timeout);
        ssize_t r = read(g_fd, g_rx + g_rxlen, sizeof(g_rx) - g_rxlen);
        if (r <= 0)
            die("kvmstub closed the connection");
        g_rxlen += (size_t)r;
    }
}

static const char *request(const char *cmd)
{
    send_packet(cmd);
    return recv_packet(60);
}

/* The stop reply to cmd (sent unless NULL), console output ('O' packets)
 * skipped: signal sig (hex). */
static const char *stop_reply_sig(const char *cmd, const char *sig)
{
    if (cmd)
        send_packet(cmd);
    else
        cmd = "the interrupt";
    for (;;) {
        const char *r = recv_packet(120);
        if (r[0] == 'O' && r[1] && r[1] != 'K')
            continue;
        if (r[0] != 'T' && r[0] != 'S')
            die("'%s' was answered '%.100s', not a stop", cmd, r);
        if (strncmp(r + 1, sig, 2) != 0)
            die("'%s' stopped with signal %.2s, not %s: %.100s", cmd, r + 1, sig, r);
        return r;
    }
}

static const char *stop_reply(const char *cmd)
{
    return stop_reply_sig(cmd, "05");
}

static char *copy(const char *s)
{
    char *c = strdup(s);
    if (!c)
        die("out of memory");
    return c;
}

static uint32_t read_counter(void)
{
    char cmd[32];
    snprintf(cmd, sizeof(cmd), "m%x,4", COUNTER_ADDR);
    const char *r = request(cmd);
    unsigned b[4];
    if (sscanf(r, "%2x%2x%2x%2x", &b[0], &b[1], &b[2], &b[3]) != 4)
        die("cannot read the counter: %.100s", r);
    return b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24;
}

static unsigned free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
        getsockname(fd, (struct sockaddr *)&sa, &len))
        die("cannot find a free port: %s", strerror(errno));
    close(fd);
    return ntohs(sa.sin_port);
}

static void start(const char *kvmstub, const char *guest, const char *history)
{
    unsigned port = free_port();
    char ports[16];
    snprintf(ports, sizeof(ports), "%u", port);
    fflush(NULL);
    g_child = fork();
    if (g_child < 0)
        die("fork: %s", strerror(errno));
    if (g_child == 0) {
        dup2(STDERR_FILENO, STDOUT_FILENO);
        execl(kvmstub, kvmstub, "--port", ports, "--history", history, "--load", "0x7c00",
              "--format", "bin", "--mode", "real", guest, (char *)NULL);
        fprintf(stderr, "revbench: cannot run %s: %s\n", kvmstub, strerror(errno));
        _exit(127);
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (double end = now() + 30; g_fd < 0; ) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            g_fd = fd;
            break;
        }
        close(fd);
        int status;
        if (waitpid(g_child, &status, WNOHANG) == g_child) {
            g_child = 0;
            die("kvmstub ended before it listened (status 0x%x)", status);
        }
        if (now() > end)
            die("kvmstub did not listen on port %u within 30 s", port);
        usleep(10000);
    }
    int one = 1;
    setsockopt(g_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (write(g_fd, "+", 1) != 1)
        die("cannot write to kvmstub");
    const char *r = request("qSupported:swbreak+;hwbreak+");
    if (!strstr(r, "ReverseStep+") || !strstr(r, "ReverseContinue+"))
        die("kvmstub does not offer reverse execution: %.200s", r);
    send_packet("QStartNoAckMode");
    for (;;) {
        r = recv_packet(10);
        if (strcmp(r, "OK") == 0)
            break;
    }
    request("?");
}

static long peak_rss_kib(void)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)g_child);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmHWM: %ld", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

static unsigned parse_count(const char *s, const char *what)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || v < 1 || v > 1000000)
        die("%s must be a number from 1 to 1000000, not '%s'", what, s);
    return (unsigned)v;
}

int main(int argc, char **argv)
{
    unsigned steps = 2000, stops = 100, long_ms = 300;
    const char *history = "256M";
    int i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (strcmp(argv[i], "--steps") == 0)
            steps = parse_count(argv[i + 1], "--steps");
        else if (strcmp(argv[i], "--stops") == 0)
            stops = parse_count(argv[i + 1], "--stops");
        else if (strcmp(argv[i], "--long-ms") == 0)
            long_ms = parse_count(argv[i + 1], "--long-ms");
        else if (strcmp(argv[i], "--history") == 0)
            history = argv[i + 1];
        else
            break;
    }
    if (argc - i != 2) {
        fprintf(stderr, "usage: revbench [--steps N] [--stops N] [--long-ms N] [--history SIZE] "
                        "KVMSTUB BENCH_SPAN.bin\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    start(argv[i], argv[i + 1], history);

    /* A long run from the start, Ctrl-C, one step back (and forward again). */
    send_packet("c");
    usleep(long_ms * 1000);
    if (write(g_fd, "\x03", 1) != 1)
        die("cannot send the interrupt");
    stop_reply_sig(NULL, "02");
    double t0 = now();
    stop_reply("bs");
    printf("reverse_stepi_after_long_run_ms %.2f\n", (now() - t0) * 1e3);
    stop_reply("s");

    /* Steps forward, then as many back: the registers end where they began. */
    char *g0 = copy(request("g"));
    t0 = now();
    for (unsigned k = 0; k < steps; k++)
        stop_reply("s");
    double fwd = now() - t0;
    t0 = now();
    for (unsigned k = 0; k < steps; k++)
        stop_reply("bs");
    double back = now() - t0;
    if (strcmp(request("g"), g0) != 0)
        die("%u reverse steps did not return to the registers %u steps began with", steps,
            steps);
    printf("stepi_us %.1f\n", fwd / steps * 1e6);
    printf("reverse_stepi_us %.1f\n", back / steps * 1e6);

    /* Breakpoint stops forward over many passes, then as many back. */
    char z[32];
    snprintf(z, sizeof(z), "Z0,%x,1", BP_ADDR);
    if (strcmp(request(z), "OK") != 0)
        die("cannot set the breakpoint at 0x%x", BP_ADDR);
    stop_reply("c"); /* to the end of the first pass */
    char *g1 = copy(request("g"));
    uint32_t c0 = read_counter();
    t0 = now();
    for (unsigned k = 0; k < stops; k++)
        stop_reply("c");
    fwd = now() - t0;
    uint32_t c1 = read_counter();
    t0 = now();
    for (unsigned k = 0; k < stops; k++) {
        const char *r = stop_reply("bc");
        if (!strstr(r, "swbreak") && !strstr(r, "hwbreak"))
            die("reverse-continue %u did not stop at the breakpoint: %.100s", k + 1, r);
    }
    back = now() - t0;
    if (strcmp(request("g"), g1) != 0 || read_counter() != c0)
        die("%u reverse-continues did not return to where the %u stops began", stops, stops);
    printf("span_insns %llu\n", (unsigned long long)(c1 - c0) * INSNS_PER_ITER);
    printf("continue_ms %.2f\n", fwd * 1e3);
    printf("reverse_continue_ms %.2f\n", back * 1e3);
    printf("reverse_continue_ratio %.2f\n", back / fwd);

    /* Forward one stop (replayed), then back into that pass by steps. */
    stop_reply("c");
    t0 = now();
    stop_reply("bs");
    double first = now() - t0;
    const unsigned next = 20;
    t0 = now();
    for (unsigned k = 0; k < next; k++)
        stop_reply("bs");
    double rest = now() - t0;
    printf("first_reverse_stepi_into_run_ms %.2f\n", first * 1e3);
    printf("next_reverse_stepi_us %.1f\n", rest / next * 1e6);

    printf("peak_rss_KiB %ld\n", peak_rss_kib());
    fflush(stdout);
    free(g0);
    free(g1);
    kill(g_child, SIGTERM);
    waitpid(g_child, NULL, 0);
    return 0;
}
