#include "server.h"

#include "log.h"
#include "peer.h"
#include "rsp/packet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Console output stops being collected from the vCPU thread above this
 * much unsent data, and resumes below the low mark: a gdb that reads slowly
 * slows the guest instead of growing kvmstub's memory. */
#define QUEUE_HIGH (1u << 20)
#define QUEUE_LOW (256u << 10)
#define READ_BUF 65536
/* Replies a gdb has not read: far above what a reading gdb ever leaves
 * (console output pauses at QUEUE_HIGH, one reply is at most RSP_OUT_MAX),
 * so only a peer that sends and never reads gets here, and it is cut off
 * instead of growing kvmstub's memory without end. */
#define QUEUE_CUTOFF (32u << 20)

struct stub_client {
    struct stub_server *srv;
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_tty_t tty;
    } in;
    union {
        uv_pipe_t pipe;
        uv_tty_t tty;
    } out;
    uv_stream_t *rd, *wr;
    int open_handles;
    bool closing;
    bool detached; /* the target has forgotten this session */
    struct stub_session session;
    char buf[READ_BUF];
};

struct write_req {
    uv_write_t req;
    struct stub_client *client;
    uint8_t data[];
};

static void maybe_finish(struct stub_server *srv);

static void target_pause_output(struct stub_server *srv, bool paused)
{
    srv->target.ops->pause_output(srv->target.ctx, paused);
}

static size_t queued(const struct stub_client *c)
{
    return c->wr ? uv_stream_get_write_queue_size(c->wr) : 0;
}

static void on_closed(uv_handle_t *h)
{
    struct stub_client *c = h->data;
    if (--c->open_handles > 0)
        return;
    struct stub_server *srv = c->srv;
    stub_session_free(&c->session);
    free(c);
    maybe_finish(srv);
}

static void close_handles(struct stub_client *c)
{
    c->open_handles = 0;
    uv_handle_t *hs[2] = {(uv_handle_t *)c->rd, c->wr != c->rd ? (uv_handle_t *)c->wr : NULL};
    for (int i = 0; i < 2; i++) {
        if (hs[i] && !uv_is_closing(hs[i])) {
            c->open_handles++;
            uv_close(hs[i], on_closed);
        }
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    struct stub_client *c = req->data;
    free(req);
    close_handles(c);
}

/* lingering: let queued replies (detach's OK) reach gdb before closing. */
static void close_client_ex(struct stub_client *c, const char *why, bool lingering)
{
    if (c->closing)
        return;
    c->closing = true;
    /* The next gdb may connect before the handles finish closing. */
    if (c->srv->client == c)
        c->srv->client = NULL;
    if (why)
        stub_log("%s", why);
    if (!c->detached) {
        c->detached = true;
        stub_session_detach(&c->session);
    }
    /* Output collection may have been paused for this client. */
    target_pause_output(c->srv, false);
    uv_read_stop(c->rd);
    bool shutting_down = false;
    if (lingering && queued(c)) {
        uv_shutdown_t *req = malloc(sizeof(*req));
        if (req) {
            req->data = c;
            shutting_down = uv_shutdown(req, c->wr, on_shutdown) == 0;
            if (!shutting_down)
                free(req);
        }
    }
    if (!shutting_down)
        close_handles(c);
    if (c->srv->stdio)
        stub_shutdown_request(c->srv->shutdown, 0);
}

static void close_client(struct stub_client *c, const char *why)
{
    close_client_ex(c, why, false);
}

static void on_write(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct stub_client *c = w->client;
    free(w);
    if (status < 0) {
        if (!c->closing) {
            char why[128];
            snprintf(why, sizeof(why), "gdb connection lost while writing: %s", uv_strerror(status));
            close_client(c, why);
        }
        return;
    }
    if (!c->closing && queued(c) < QUEUE_LOW)
        target_pause_output(c->srv, false);
    maybe_finish(c->srv);
}

static void client_write(void *ctx, const uint8_t *data, size_t len)
{
    struct stub_client *c = ctx;
    if (!len || c->closing)
        return;
    stub_trace_packet("->", data, len);
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)data, (unsigned)len);
    int n = 0;
    if (queued(c) == 0) {
        n = uv_try_write(c->wr, &b, 1);
        if (n == UV_EAGAIN || n == UV_ENOSYS)
            n = 0;
        if (n < 0) {
            close_client(c, "gdb connection lost");
            return;
        }
    }
    size_t rest = len - (size_t)n;
    if (rest && queued(c) + rest > QUEUE_CUTOFF) {
        close_client(c, "gdb sends packets without reading the replies (32 MiB unread); "
                        "closing the connection");
        return;
    }
    if (rest) {
        struct write_req *w = malloc(sizeof(*w) + rest);
        if (!w) {
            close_client(c, "out of memory writing to gdb; closing the connection");
            return;
        }
        w->client = c;
        memcpy(w->data, data + n, rest);
        uv_buf_t wb = uv_buf_init((char *)w->data, (unsigned)rest);
        int r = uv_write(&w->req, c->wr, &wb, 1, on_write);
        if (r) {
            free(w);
            close_client(c, "gdb connection lost");
            return;
        }
    }
    if (queued(c) > QUEUE_HIGH)
        target_pause_output(c->srv, true);
}

static void client_close(void *ctx)
{
    struct stub_client *c = ctx;
    close_client_ex(c, NULL, true);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct stub_client *c = h->data;
    *buf = uv_buf_init(c->buf, sizeof(c->buf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct stub_client *c = s->data;
    if (n > 0) {
        stub_session_input(&c->session, (const uint8_t *)buf->base, (size_t)n);
        return;
    }
    if (n == UV_EOF || n == UV_ECONNRESET)
        close_client(c, c->srv->stdio ? "gdb closed the connection; exiting"
                                      : "gdb disconnected; waiting for the next one");
    else if (n < 0) {
        char why[128];
        snprintf(why, sizeof(why), "gdb connection failed: %s", uv_strerror((int)n));
        close_client(c, why);
    }
}

static struct stub_client *new_client(struct stub_server *srv)
{
    struct stub_client *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->srv = srv;
    struct stub_link link = {.write = client_write, .close = client_close, .ctx = c};
    if (stub_session_init(&c->session, &srv->target, &link)) {
        free(c);
        return NULL;
    }
    stub_session_set_arch(&c->session, srv->gdb_arch);
    return c;
}

static void start_client(struct stub_server *srv, struct stub_client *c)
{
    srv->client = c;
    srv->connections++;
    c->rd->data = c;
    c->wr->data = c;
    stub_session_attach(&c->session);
    uv_read_start(c->rd, on_alloc, on_read);
}

/* A second gdb: tell it why in a way it prints, then hang up gently: a
 * close with its packet unread would reset the connection before gdb reads
 * the reason. */
struct refusal {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } conn;
    uv_write_t req;
    uv_shutdown_t shut;
    uv_timer_t timer;
    char msg[128];
    char buf[256];
    int open_handles;
};

static void refusal_freed(uv_handle_t *h)
{
    struct refusal *r = h->data;
    /* libuv runs close callbacks in no promised order: free after both. */
    if (--r->open_handles == 0)
        free(r);
}

static void refusal_close(struct refusal *r)
{
    if (uv_is_closing((uv_handle_t *)&r->conn))
        return;
    r->open_handles = 2;
    uv_close((uv_handle_t *)&r->conn, refusal_freed);
    uv_close((uv_handle_t *)&r->timer, refusal_freed);
}

static void refusal_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct refusal *r = h->data;
    *buf = uv_buf_init(r->buf, sizeof(r->buf));
}

static void refusal_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    if (n < 0)
        refusal_close(s->data);
}

static void refusal_timeout(uv_timer_t *t)
{
    refusal_close(t->data);
}

static void refusal_shut(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status;
}

/* Whether the peer on h may stay: the kernel names its uid (peer.h). One
 * log line says who was turned away and what would let them in. */
static bool peer_admitted(struct stub_server *srv, uv_handle_t *h)
{
    if (srv->allow.all)
        return true;
    uv_os_fd_t fd;
    uid_t uid;
    int r = uv_fileno(h, &fd);
    if (!r)
        r = srv->unix_path ? stub_peer_unix_uid(fd, &uid) : stub_peer_tcp_uid(fd, &uid);
    if (r) {
        srv->refused_users++;
        stub_log("refused a gdb connection: cannot tell which user it comes from (%s); "
                 "--allow-users all accepts connections from anyone",
                 strerror(-r));
        return false;
    }
    if (stub_peer_allowed(&srv->allow, srv->self, uid))
        return true;
    srv->refused_users++;
    stub_log("refused a gdb connection from uid %u: only kvmstub's own user (uid %u) and root "
             "may connect; start kvmstub with --allow-users %u to let it in",
             (unsigned)uid, (unsigned)srv->self, (unsigned)uid);
    return false;
}

static void refuse(struct stub_server *srv)
{
    struct refusal *r = calloc(1, sizeof(*r));
    if (!r)
        return;
    if (srv->unix_path)
        uv_pipe_init(srv->loop, &r->conn.pipe, 0);
    else
        uv_tcp_init(srv->loop, &r->conn.tcp);
    uv_timer_init(srv->loop, &r->timer);
    r->conn.tcp.data = r->timer.data = r;
    if (uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)&r->conn) ||
        !peer_admitted(srv, (uv_handle_t *)&r->conn)) {
        refusal_close(r);
        return;
    }
    srv->refused++;
    stub_log("refused a second gdb connection: only one debugger at a time");
    static const char text[] = "E.kvmstub already has a debugger connected; only one at a time";
    snprintf(r->msg, sizeof(r->msg), "+$%s#%02x", text, rsp_checksum(text, sizeof(text) - 1));
    uv_buf_t b = uv_buf_init(r->msg, (unsigned)strlen(r->msg));
    if (uv_write(&r->req, (uv_stream_t *)&r->conn, &b, 1, NULL) ||
        uv_shutdown(&r->shut, (uv_stream_t *)&r->conn, refusal_shut) ||
        uv_read_start((uv_stream_t *)&r->conn, refusal_alloc, refusal_read)) {
        refusal_close(r);
        return;
    }
    /* A peer that never hangs up does not keep it forever. */
    uv_timer_start(&r->timer, refusal_timeout, 5000, 0);
}

/* Whether the current gdb is still there. Its hang-up may be queued
 * behind this accept, behind bytes it sent last: those are read and handled
 * now, as they would have been a moment later. */
static bool client_alive(struct stub_client *c)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)c->rd, &fd))
        return true;
    for (;;) {
        ssize_t n = recv(fd, c->buf, sizeof(c->buf), MSG_DONTWAIT);
        if (n > 0) {
            stub_session_input(&c->session, (const uint8_t *)c->buf, (size_t)n);
            if (c->closing)
                return false;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct stub_server *srv = listener->data;
    if (status < 0) {
        stub_log("accepting a connection failed: %s", uv_strerror(status));
        return;
    }
    /* A gdb that has just hung up may not have been noticed yet: its EOF
     * waits behind this accept. Look before refusing the newcomer. */
    if (srv->client && !client_alive(srv->client) && srv->client)
        close_client(srv->client, "gdb disconnected; waiting for the next one");
    if (srv->client) {
        refuse(srv);
        return;
    }
    struct stub_client *c = new_client(srv);
    if (!c) {
        stub_log("out of memory accepting a connection");
        return;
    }
    if (srv->unix_path)
        uv_pipe_init(srv->loop, &c->in.pipe, 0);
    else
        uv_tcp_init(srv->loop, &c->in.tcp);
    c->rd = c->wr = (uv_stream_t *)&c->in;
    c->in.tcp.data = c;
    if (uv_accept(listener, c->rd) || !peer_admitted(srv, (uv_handle_t *)c->rd)) {
        c->open_handles = 1;
        c->closing = c->detached = true;
        uv_close((uv_handle_t *)&c->in, on_closed);
        return;
    }
    struct sockaddr_storage peer;
    int len = sizeof(peer);
    char host[64] = "?";
    if (srv->unix_path) {
        snprintf(host, sizeof(host), "%s", "the Unix socket");
    } else if (uv_tcp_nodelay(&c->in.tcp, 1),
               uv_tcp_getpeername(&c->in.tcp, (struct sockaddr *)&peer, &len) == 0) {
        if (peer.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&peer, host, sizeof(host));
        else
            uv_ip4_name((struct sockaddr_in *)&peer, host, sizeof(host));
    }
    stub_log("gdb connected from %s%s", host,
             srv->target.ops->running(srv->target.ctx) ? "; stopping the running guest" : "");
    start_client(srv, c);
}

static int open_std(struct stub_server *srv, int fd, uv_stream_t **out, void *storage,
                    bool readable, char *err, size_t errlen)
{
    uv_handle_type t = uv_guess_handle(fd);
    int r;
    switch (t) {
    case UV_NAMED_PIPE:
        r = uv_pipe_init(srv->loop, storage, 0);
        if (!r)
            r = uv_pipe_open(storage, fd);
        break;
    case UV_TCP:
        r = uv_tcp_init(srv->loop, storage);
        if (!r)
            r = uv_tcp_open(storage, fd);
        break;
    case UV_TTY:
        r = uv_tty_init(srv->loop, storage, fd, readable);
        break;
    default:
        snprintf(err, errlen,
                 "--stdio needs %s to be a pipe, socket or terminal (as gdb's 'target remote | "
                 "kvmstub --stdio IMAGE' gives it)",
                 fd == 0 ? "stdin" : "stdout");
        return -EINVAL;
    }
    if (r) {
        snprintf(err, errlen, "cannot use %s for --stdio: %s", fd == 0 ? "stdin" : "stdout",
                 uv_strerror(r));
        return r;
    }
    *out = storage;
    return 0;
}

static bool loopback(const char *addr)
{
    return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 ||
           strcmp(addr, "localhost") == 0;
}

static void request_exit(void *ctx)
{
    maybe_finish(ctx);
}

/* The loop ends once kvmstub should exit and everything queued for gdb
 * has been written. */
static void maybe_finish(struct stub_server *srv)
{
    if (!srv->shutdown->requested)
        return;
    if (srv->client && !srv->client->closing && queued(srv->client))
        return;
    uv_stop(srv->loop);
}

/* -gdb unix:PATH, as firecracker and cloud-hypervisor offer gdb. A socket
 * left behind by an earlier run is replaced; any other file is not. */
static int listen_unix(struct stub_server *srv, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "cannot listen on %s: it exists and is not a socket; give "
                                  "another path", path);
            return -EEXIST;
        }
        unlink(path);
    }
    uv_pipe_init(srv->loop, &srv->listener.pipe, 0);
    srv->listener.pipe.data = srv;
    srv->listening = true;
    srv->unix_path = path;
    /* The socket file is born 0600 (0666 when --allow-users names others,
     * whom SO_PEERCRED then sorts out): a chmod after bind would leave a
     * moment with the wrong mode, and would follow a symlink swapped in. */
    bool others = srv->allow.all || srv->allow.nusers;
    mode_t old = umask(others ? 0111 : 0177);
    int r = uv_pipe_bind(&srv->listener.pipe, path);
    umask(old);
    if (!r)
        r = uv_listen((uv_stream_t *)&srv->listener, 4, on_connection);
    if (r) {
        snprintf(err, errlen, "cannot listen on %s: %s", path, uv_strerror(r));
        srv->unix_path = NULL;
        return r;
    }
    stub_log("listening on %s", path);
    return 0;
}

int stub_server_start(struct stub_server *srv, const struct stub_server_config *o,
                      const struct stub_target *target, struct stub_shutdown *shutdown,
                      uv_loop_t *loop, char *err, size_t errlen)
{
    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->target = *target;
    srv->shutdown = shutdown;
    srv->gdb_arch = o->gdb_arch;
    srv->self = geteuid();
    if (o->allow)
        srv->allow = *o->allow;
    shutdown->notify = request_exit;
    shutdown->ctx = srv;
    if (o->stdio) {
        srv->stdio = true;
        struct stub_client *c = new_client(srv);
        if (!c) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        int r = open_std(srv, 0, &c->rd, &c->in, true, err, errlen);
        if (!r)
            r = open_std(srv, 1, &c->wr, &c->out, false, err, errlen);
        if (r) {
            stub_session_free(&c->session);
            free(c);
            return r;
        }
        start_client(srv, c);
        return 0;
    }
    if (o->unix_path)
        return listen_unix(srv, o->unix_path, err, errlen);
    if (!loopback(o->listen) && !srv->allow.all) {
        snprintf(err, errlen,
                 "--listen %s is not a loopback address: kvmstub cannot tell which user connects "
                 "from there, and anyone who reaches the port controls the guest; add "
                 "--allow-users all to listen there anyway",
                 o->listen);
        return -EPERM;
    }
    struct sockaddr_storage addr;
    const char *host = strcmp(o->listen, "localhost") == 0 ? "127.0.0.1" : o->listen;
    int r = strchr(host, ':') ? uv_ip6_addr(host, o->port, (struct sockaddr_in6 *)&addr)
                              : uv_ip4_addr(host, o->port, (struct sockaddr_in *)&addr);
    if (r) {
        snprintf(err, errlen, "--listen %s is not an IPv4 or IPv6 address", o->listen);
        return -EINVAL;
    }
    uv_tcp_init(loop, &srv->listener.tcp);
    srv->listener.tcp.data = srv;
    srv->listening = true;
    r = uv_tcp_bind(&srv->listener.tcp, (struct sockaddr *)&addr, 0);
    if (!r)
        r = uv_listen((uv_stream_t *)&srv->listener, 4, on_connection);
    if (r) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s%s", o->listen, o->port, uv_strerror(r),
                 r == UV_EADDRINUSE ? "; pick another port with --port (0 picks a free one)" : "");
        return r;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&srv->listener.tcp, (struct sockaddr *)&bound, &len);
    srv->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                  : ((struct sockaddr_in *)&bound)->sin_port);
    if (!loopback(o->listen))
        stub_log("warning: listening on %s, which is not a loopback address: anyone who can "
                 "reach this port gets full control of the guest",
                 o->listen);
    stub_log("listening on %s:%d", o->listen, srv->port);
    return 0;
}

void stub_server_stop(struct stub_server *srv)
{
    if (srv->client)
        close_client(srv->client, NULL);
    if (srv->listening && !uv_is_closing((uv_handle_t *)&srv->listener))
        uv_close((uv_handle_t *)&srv->listener, NULL);
    if (srv->listening && srv->unix_path)
        unlink(srv->unix_path);
    srv->listening = false;
}
