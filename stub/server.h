/* stub/server.h: the transport: a libuv TCP or Unix-socket listener (one
 * gdb at a time) or stdin/stdout, feeding a session and writing its replies. Loop thread
 * only; the only place that touches sockets. */
#ifndef STUB_SERVER_H
#define STUB_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "peer.h"
#include "session.h"
#include "shutdown.h"
#include "target.h"

struct stub_client;

struct stub_server {
    uv_loop_t *loop;
    struct stub_target target;
    struct stub_shutdown *shutdown;
    enum stub_gdb_arch gdb_arch;
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } listener;
    const char *unix_path; /* listening on a Unix socket there, or NULL */
    bool listening;
    int port;            /* the bound port */
    struct stub_client *client;
    bool stdio;
    uint64_t connections;
    uint64_t refused;       /* second debuggers turned away */
    uint64_t refused_users; /* peers of another user turned away */
    struct stub_peer_policy allow;
    uid_t self;             /* kvmstub's own (effective) uid */
};

/* Binds and listens (or sets up stdio) and prints the ready line. On error
 * err holds a message for the user. */
struct stub_server_config {
    const char *listen; /* address to bind */
    int port;           /* 0 picks a free one */
    const char *unix_path; /* a Unix socket instead of TCP, or NULL */
    enum stub_gdb_arch gdb_arch; /* the layout sessions give gdb */
    bool stdio;         /* stdin/stdout instead */
    /* --allow-users; NULL: kvmstub's own user and root only. A TCP
     * listener off loopback needs all (nobody can be identified there). */
    const struct stub_peer_policy *allow;
};

int stub_server_start(struct stub_server *srv, const struct stub_server_config *cfg,
                      const struct stub_target *target, struct stub_shutdown *shutdown,
                      uv_loop_t *loop, char *err, size_t errlen);
/* Closes the listener and any client; pending replies are written first
 * when the loop runs on. */
void stub_server_stop(struct stub_server *srv);

#endif
