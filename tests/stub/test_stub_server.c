/* The server over real loopback TCP, with a fake target behind it: one gdb
 * at a time, attach and detach on connect and disconnect, and backpressure
 * on console output when gdb reads slowly. No KVM. */
#include "fake_target.h"
#include "testmain.h"

#include "rsp/packet.h"
#include "stub/server.h"

#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct env {
    uv_loop_t loop;
    struct fake f;
    struct stub_shutdown shutdown;
    struct stub_server srv;
};

static void env_open(struct env *e)
{
    memset(e, 0, sizeof(*e));
    uv_loop_init(&e->loop);
    fake_init(&e->f, 1);
    struct stub_target target = fake_target(&e->f);
    struct stub_server_config cfg = {.listen = "127.0.0.1", .port = 0};
    char err[256];
    CU_ASSERT_EQUAL_FATAL(stub_server_start(&e->srv, &cfg, &target, &e->shutdown, &e->loop, err,
                                            sizeof(err)),
                          0);
    CU_ASSERT(e->srv.port > 0);
}

static void close_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void env_close(struct env *e)
{
    stub_server_stop(&e->srv);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    uv_walk(&e->loop, close_cb, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    CU_ASSERT_EQUAL(uv_loop_close(&e->loop), 0);
}

/* Turns the loop until cond holds (checked between turns), up to 2 s. */
#define SPIN_UNTIL(e, cond)                                                                        \
    do {                                                                                           \
        for (int i_ = 0; i_ < 2000 && !(cond); i_++) {                                             \
            uv_run(&(e)->loop, UV_RUN_NOWAIT);                                                     \
            usleep(1000);                                                                          \
        }                                                                                          \
    } while (0)

static int connect_to(struct env *e)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)e->srv.port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static void send_packet(int fd, const char *payload)
{
    char frame[512];
    int n = snprintf(frame, sizeof(frame), "$%s#%02x", payload,
                     rsp_checksum(payload, strlen(payload)));
    CU_ASSERT_EQUAL(write(fd, frame, (size_t)n), n);
}

/* Reads what is there into buf (appending), turning the loop meanwhile,
 * until want appears or 2 s pass. */
static bool read_until(struct env *e, int fd, char *buf, size_t cap, const char *want)
{
    size_t len = strlen(buf);
    for (int i = 0; i < 2000; i++) {
        uv_run(&e->loop, UV_RUN_NOWAIT);
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n > 0) {
            len += (size_t)n;
            buf[len] = 0;
        }
        if (strstr(buf, want))
            return true;
        if (n == 0)
            return false;
        usleep(1000);
    }
    return false;
}

static void test_one_gdb_at_a_time(void)
{
    struct env e;
    env_open(&e);
    int a = connect_to(&e);
    send_packet(a, "qC");
    char buf[4096] = "";
    CU_ASSERT(read_until(&e, a, buf, sizeof(buf), "$QC1#"));
    CU_ASSERT(e.f.attached);
    /* A second gdb is told why and disconnected. */
    int b = connect_to(&e);
    char other[512] = "";
    CU_ASSERT(read_until(&e, b, other, sizeof(other), "already has a debugger connected"));
    CU_ASSERT_EQUAL(e.srv.refused, 1);
    CU_ASSERT_EQUAL(e.f.attaches, 1);
    close(b);
    /* The first still works. */
    buf[0] = 0;
    send_packet(a, "qAttached");
    CU_ASSERT(read_until(&e, a, buf, sizeof(buf), "$1#"));
    /* It goes away: the target is detached, and the next one attaches. */
    close(a);
    SPIN_UNTIL(&e, e.f.detaches == 1);
    CU_ASSERT_EQUAL(e.f.detaches, 1);
    int c = connect_to(&e);
    buf[0] = 0;
    send_packet(c, "D");
    CU_ASSERT(read_until(&e, c, buf, sizeof(buf), "$OK#"));
    char rest[64];
    SPIN_UNTIL(&e, read(c, rest, sizeof(rest)) == 0); /* closed after the reply */
    CU_ASSERT_EQUAL(e.f.attaches, 2);
    CU_ASSERT_EQUAL(e.f.detaches, 2);
    close(c);
    env_close(&e);
}

static void test_output_backpressure(void)
{
    struct env e;
    env_open(&e);
    int a = connect_to(&e);
    send_packet(a, "QStartNoAckMode");
    char buf[4096] = "";
    CU_ASSERT(read_until(&e, a, buf, sizeof(buf), "$OK#"));
    send_packet(a, "c");
    SPIN_UNTIL(&e, e.f.running);
    CU_ASSERT_FATAL(e.f.running);
    /* The guest prints far more than gdb reads: the server asks the target
     * to hold its output back instead of queueing it all. */
    static char chunk[65536];
    memset(chunk, 'z', sizeof(chunk));
    for (int i = 0; i < 256 && !e.f.paused; i++) {
        fake_output(&e.f, chunk, sizeof(chunk));
        uv_run(&e.loop, UV_RUN_NOWAIT);
    }
    CU_ASSERT(e.f.paused);
    /* gdb reads it all: output flows again. */
    static char sink[1 << 16];
    size_t total = 0;
    for (int i = 0; i < 5000 && e.f.paused; i++) {
        uv_run(&e.loop, UV_RUN_NOWAIT);
        ssize_t n;
        while ((n = read(a, sink, sizeof(sink))) > 0)
            total += (size_t)n;
        usleep(200);
    }
    CU_ASSERT(total > (1u << 20));
    CU_ASSERT_FALSE(e.f.paused);
    struct stub_stop st = {.tid = 1, .signal = STUB_SIGTRAP};
    fake_stop(&e.f, &st);
    char tail[1 << 16] = "";
    CU_ASSERT(read_until(&e, a, tail, sizeof(tail), "$T05thread:1;"));
    close(a);
    SPIN_UNTIL(&e, e.f.detaches == 1);
    env_close(&e);
}

static void test_kill_ends_the_loop(void)
{
    struct env e;
    env_open(&e);
    int a = connect_to(&e);
    send_packet(a, "k");
    SPIN_UNTIL(&e, e.f.killed);
    CU_ASSERT(e.f.killed);
    close(a);
    env_close(&e);
}

static void test_port_probe_leaves_the_guest_alone(void)
{
    /* A script polling the port until kvmstub listens: no attach (which
     * would stop a running guest), no detach (which would start a stopped
     * one). */
    struct env e;
    env_open(&e);
    int a = connect_to(&e);
    for (int i = 0; i < 50; i++)
        uv_run(&e.loop, UV_RUN_NOWAIT);
    close(a);
    for (int i = 0; i < 50; i++) {
        uv_run(&e.loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    CU_ASSERT_EQUAL(e.f.attaches, 0);
    CU_ASSERT_EQUAL(e.f.detaches, 0);
    /* The next gdb is served as usual. */
    int b = connect_to(&e);
    send_packet(b, "qC");
    char buf[512] = "";
    CU_ASSERT(read_until(&e, b, buf, sizeof(buf), "$QC1#"));
    CU_ASSERT_EQUAL(e.f.attaches, 1);
    close(b);
    SPIN_UNTIL(&e, e.f.detaches == 1);
    CU_ASSERT_EQUAL(e.f.detaches, 1);
    env_close(&e);
}

static void test_flood_without_reading_is_cut_off(void)
{
    struct env e;
    env_open(&e);
    int a = connect_to(&e);
    int small = 4096;
    setsockopt(a, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    send_packet(a, "QStartNoAckMode");
    char buf[4096] = "";
    CU_ASSERT(read_until(&e, a, buf, sizeof(buf), "$OK#"));
    /* 64 KiB replies asked for again and again, none read: kvmstub stops
     * queueing them at its limit and hangs up instead of growing. */
    char frame[64];
    int n = snprintf(frame, sizeof(frame), "$m0,8000#%02x", rsp_checksum("m0,8000", 7));
    size_t sent = 0;
    for (int i = 0; i < 200000 && e.f.detaches == 0; i++) {
        ssize_t w = send(a, frame, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0)
            sent += (size_t)w;
        else if (w < 0 && errno != EAGAIN)
            break;
        uv_run(&e.loop, UV_RUN_NOWAIT);
    }
    SPIN_UNTIL(&e, e.f.detaches == 1);
    CU_ASSERT_EQUAL(e.f.detaches, 1);
    CU_ASSERT(sent > 500u * (size_t)n); /* the limit was reached, not something else */
    CU_ASSERT_FALSE(e.f.killed);
    close(a);
    /* The next gdb is served, and the guest is there. */
    int b = connect_to(&e);
    send_packet(b, "m0,4");
    buf[0] = 0;
    CU_ASSERT(read_until(&e, b, buf, sizeof(buf), "$030a1118#"));
    close(b);
    SPIN_UNTIL(&e, e.f.detaches == 2);
    env_close(&e);
}

static void test_listen_off_loopback_needs_allow_all(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fake f;
    fake_init(&f, 1);
    struct stub_target target = fake_target(&f);
    struct stub_shutdown sd = {0};
    struct stub_server srv;
    struct stub_server_config cfg = {.listen = "0.0.0.0", .port = 0};
    char err[512] = "";
    CU_ASSERT_EQUAL(stub_server_start(&srv, &cfg, &target, &sd, &loop, err, sizeof(err)), -EPERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "--listen 0.0.0.0 is not a loopback address"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "add --allow-users all to listen there anyway"));
    stub_server_stop(&srv);
    struct stub_peer_policy all = {.all = true};
    cfg.allow = &all;
    CU_ASSERT_EQUAL(stub_server_start(&srv, &cfg, &target, &sd, &loop, err, sizeof(err)), 0);
    stub_server_stop(&srv);
    uv_run(&loop, UV_RUN_DEFAULT);
    CU_ASSERT_EQUAL(uv_loop_close(&loop), 0);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("stub_server", NULL, NULL);
    CU_add_test(s, "one gdb at a time; detach and attach follow connections",
                test_one_gdb_at_a_time);
    CU_add_test(s, "console output is held back while gdb does not read",
                test_output_backpressure);
    CU_add_test(s, "k reaches the target", test_kill_ends_the_loop);
    CU_add_test(s, "a connection that sends nothing neither stops nor starts the guest",
                test_port_probe_leaves_the_guest_alone);
    CU_add_test(s, "a gdb that floods packets and reads nothing is cut off; the next is served",
                test_flood_without_reading_is_cut_off);
    CU_add_test(s, "--listen off loopback refuses to start without --allow-users all",
                test_listen_off_loopback_needs_allow_all);
}

int main(void)
{
    return test_main("test_stub_server", register_suites, false);
}
