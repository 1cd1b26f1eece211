/* The server against another user: a user this test creates (useradd)
 * connects over loopback TCP and over the Unix socket, and is refused
 * unless --allow-users names it; the refusal is one log line naming its
 * uid and the option. The other user's client is a forked child that drops
 * to that uid the way setpriv --reuid/--regid/--clear-groups does, so no
 * binary needs to be readable by it. Fake target, no KVM; needs root (to
 * create the user and switch to it): skips otherwise. */
#include "fake_target.h"
#include "testmain.h"

#include "rsp/packet.h"
#include "stub/server.h"

#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static char user[32];
static bool user_made;
static uid_t other_uid;
static gid_t other_gid;

/* What the other user's client saw. */
enum { SERVED = 0, CLOSED = 1, NO_ACCESS = 2, CONNECT_FAILED = 3, NO_ANSWER = 4 };

struct env {
    uv_loop_t loop;
    struct fake f;
    struct stub_shutdown shutdown;
    struct stub_server srv;
    char dir[64], path[96];
    int log_fd, saved_stderr;
};

static void env_open(struct env *e, bool unix_socket, const char *allow)
{
    memset(e, 0, sizeof(*e));
    uv_loop_init(&e->loop);
    fake_init(&e->f, 1);
    struct stub_target target = fake_target(&e->f);
    struct stub_peer_policy policy;
    struct stub_server_config cfg = {.listen = "127.0.0.1", .port = 0};
    if (allow) {
        CU_ASSERT_EQUAL_FATAL(stub_peer_policy_parse(allow, &policy), 0);
        cfg.allow = &policy;
    }
    if (unix_socket) {
        snprintf(e->dir, sizeof(e->dir), "/tmp/kvmstub-users-XXXXXX");
        CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(e->dir));
        chmod(e->dir, 0711); /* the other user may reach the socket: its mode decides */
        snprintf(e->path, sizeof(e->path), "%s/gdb.sock", e->dir);
        cfg.unix_path = e->path;
    }
    char err[256];
    CU_ASSERT_EQUAL_FATAL(stub_server_start(&e->srv, &cfg, &target, &e->shutdown, &e->loop, err,
                                            sizeof(err)),
                          0);
    /* kvmstub's log lines, to look for the refusal's. */
    char logname[] = "/tmp/kvmstub-users-log-XXXXXX";
    e->log_fd = mkstemp(logname);
    CU_ASSERT_FATAL(e->log_fd >= 0);
    unlink(logname);
    fflush(stderr);
    e->saved_stderr = dup(2);
    dup2(e->log_fd, 2);
}

/* What kvmstub logged since env_open. */
static void env_log(struct env *e, char *buf, size_t cap)
{
    fflush(stderr);
    ssize_t n = pread(e->log_fd, buf, cap - 1, 0);
    buf[n > 0 ? n : 0] = 0;
}

static void close_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void env_close(struct env *e)
{
    fflush(stderr);
    dup2(e->saved_stderr, 2);
    close(e->saved_stderr);
    close(e->log_fd);
    stub_server_stop(&e->srv);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    uv_walk(&e->loop, close_cb, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    CU_ASSERT_EQUAL(uv_loop_close(&e->loop), 0);
    if (e->dir[0])
        rmdir(e->dir);
}

static int connect_as_self(struct env *e)
{
    int fd;
    if (e->path[0]) {
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", e->path);
        CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    } else {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)e->srv.port)};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    }
    return fd;
}

/* The child: become uid, connect, ask qC, report what came back. */
static int client_as(struct env *e, uid_t uid, gid_t gid)
{
    if (setgroups(0, NULL) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid))
        return CONNECT_FAILED;
    int fd;
    int r;
    if (e->path[0]) {
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", e->path);
        r = connect(fd, (struct sockaddr *)&a, sizeof(a));
    } else {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)e->srv.port)};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        r = connect(fd, (struct sockaddr *)&a, sizeof(a));
    }
    if (r)
        return errno == EACCES ? NO_ACCESS : CONNECT_FAILED;
    static const char qc[] = "$qC#b4";
    /* A refusal can close the connection before this write: without
     * MSG_NOSIGNAL the SIGPIPE would kill the client instead of letting it
     * report CLOSED. */
    if (send(fd, qc, sizeof(qc) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(qc) - 1)
        return CLOSED;
    char buf[256];
    size_t len = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        /* Generous: under valgrind on a loaded host the refusal, though
         * immediate, can take seconds to come round. */
        if (poll(&p, 1, 60000) <= 0)
            return NO_ANSWER;
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            return CLOSED;
        len += (size_t)n;
        buf[len] = 0;
        if (strstr(buf, "$QC1#"))
            return SERVED;
    }
}

/* Runs the other user's client while the server's loop turns. */
static int other_user_connects(struct env *e, uid_t uid)
{
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0)
        _exit(client_as(e, uid, other_gid));
    int status;
    /* The client's own deadline (60 s) ends it first. */
    for (int i = 0; i < 120000; i++) {
        uv_run(&e->loop, UV_RUN_NOWAIT);
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        usleep(1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* Our own connection is still served after a refusal. */
static void self_is_served(struct env *e)
{
    int fd = connect_as_self(e);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    CU_ASSERT_EQUAL(write(fd, "$qC#b4", 6), 6);
    char buf[512] = "";
    size_t len = 0;
    for (int i = 0; i < 60000 && !strstr(buf, "$QC1#"); i++) {
        uv_run(&e->loop, UV_RUN_NOWAIT);
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n > 0)
            buf[len += (size_t)n] = 0;
        usleep(1000);
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "$QC1#"));
    close(fd);
    for (int i = 0; i < 100 && e->f.detaches < e->f.attaches; i++) {
        uv_run(&e->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

/* first: nobody was served before, so no "gdb connected" either. */
static void expect_refusal_logged(struct env *e, uid_t uid, bool first)
{
    char log[4096], want[160];
    env_log(e, log, sizeof(log));
    snprintf(want, sizeof(want), "refused a gdb connection from uid %u:", (unsigned)uid);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, want));
    snprintf(want, sizeof(want), "--allow-users %u", (unsigned)uid);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, want));
    if (first)
        CU_ASSERT_PTR_NULL(strstr(log, "gdb connected"));
}

static void test_tcp_other_user_refused(void)
{
    struct env e;
    env_open(&e, false, NULL);
    CU_ASSERT_EQUAL(other_user_connects(&e, other_uid), CLOSED);
    CU_ASSERT_EQUAL(e.srv.refused_users, 1);
    CU_ASSERT_EQUAL(e.f.attaches, 0);
    expect_refusal_logged(&e, other_uid, true);
    self_is_served(&e);
    env_close(&e);
}

static void test_tcp_other_user_allowed(void)
{
    char allow[32];
    snprintf(allow, sizeof(allow), "%u", (unsigned)other_uid);
    struct env e;
    env_open(&e, false, allow);
    CU_ASSERT_EQUAL(other_user_connects(&e, other_uid), SERVED);
    CU_ASSERT_EQUAL(e.srv.refused_users, 0);
    env_close(&e);
    env_open(&e, false, "all");
    CU_ASSERT_EQUAL(other_user_connects(&e, other_uid), SERVED);
    env_close(&e);
}

static void test_unix_socket_0600_and_peercred(void)
{
    struct env e;
    env_open(&e, true, NULL);
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(e.path, &st), 0);
    CU_ASSERT(S_ISSOCK(st.st_mode));
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    CU_ASSERT_EQUAL(other_user_connects(&e, other_uid), NO_ACCESS);
    /* Were the mode widened behind kvmstub's back, SO_PEERCRED still
     * turns the peer away. */
    chmod(e.path, 0666);
    CU_ASSERT_EQUAL(other_user_connects(&e, other_uid), CLOSED);
    CU_ASSERT_EQUAL(e.srv.refused_users, 1);
    expect_refusal_logged(&e, other_uid, true);
    self_is_served(&e);
    env_close(&e);
}

static void test_unix_socket_other_user_allowed(void)
{
    char allow[32];
    snprintf(allow, sizeof(allow), "%u", (unsigned)other_uid);
    struct env e;
    env_open(&e, true, allow);
    CU_ASSERT_EQUAL(other_user_connects(&e, other_uid), SERVED);
    /* A third uid, not in the list, reaches the socket and is refused. */
    CU_ASSERT_EQUAL(other_user_connects(&e, other_uid + 1), CLOSED);
    CU_ASSERT_EQUAL(e.srv.refused_users, 1);
    expect_refusal_logged(&e, other_uid + 1, false);
    env_close(&e);
}

static int make_user(void)
{
    snprintf(user, sizeof(user), "kvmstubt%d", (int)getpid());
    char cmd[160];
    snprintf(cmd, sizeof(cmd),
             "useradd --system --no-create-home --shell /usr/sbin/nologin %s >/dev/null 2>&1",
             user);
    struct passwd *pw = system(cmd) == 0 ? getpwnam(user) : NULL;
    if (pw) {
        user_made = true;
        other_uid = pw->pw_uid;
        other_gid = pw->pw_gid;
        return 0;
    }
    /* A read-only /etc: the kernel needs no passwd entry to run as a uid. */
    fprintf(stderr, "test_stub_server_users: useradd failed; using uid 64123 without a name\n");
    other_uid = other_gid = 64123;
    return 0;
}

static int drop_user(void)
{
    if (user_made) {
        char cmd[96];
        snprintf(cmd, sizeof(cmd), "userdel %s >/dev/null 2>&1", user);
        if (system(cmd) != 0)
            fprintf(stderr, "test_stub_server_users: userdel %s failed\n", user);
    }
    return 0;
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("stub_server_users", make_user, drop_user);
    CU_add_test(s, "TCP: another user is refused, logged with its uid; ours still served",
                test_tcp_other_user_refused);
    CU_add_test(s, "TCP: --allow-users UID and all let the other user in",
                test_tcp_other_user_allowed);
    CU_add_test(s, "Unix socket: mode 0600; SO_PEERCRED refuses another user",
                test_unix_socket_0600_and_peercred);
    CU_add_test(s, "Unix socket: --allow-users UID lets that user in and no other",
                test_unix_socket_other_user_allowed);
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "test_stub_server_users: SKIP: needs root to create a second user "
                        "(useradd) and connect as it; run it as root (CI does)\n");
        return TEST_SKIP_CODE;
    }
    return test_main("test_stub_server_users", register_suites, false);
}
