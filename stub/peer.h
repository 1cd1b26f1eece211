/* stub/peer.h: who is at the other end of a gdb connection, and whether
 * they may stay. The kernel knows the owner of every socket: a Unix
 * socket's peer from SO_PEERCRED, a loopback TCP peer from its own socket's
 * line in /proc/net/tcp or /proc/net/tcp6 (the line whose local address is
 * our peer's and whose remote address is ours). Nothing here touches libuv;
 * the parsing is pure so that tests can feed it lines. Errors: negative
 * errno. */
#ifndef STUB_PEER_H
#define STUB_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#define STUB_PEER_MAX_USERS 16

/* --allow-users: all, or these uids besides kvmstub's own and root. */
struct stub_peer_policy {
    bool all;
    uid_t users[STUB_PEER_MAX_USERS];
    size_t nusers;
};

/* Parses "all" or "UID[,UID...]" into p. */
int stub_peer_policy_parse(const char *s, struct stub_peer_policy *p);
/* Whether uid may connect to a kvmstub running as self. */
bool stub_peer_allowed(const struct stub_peer_policy *p, uid_t self, uid_t uid);

/* One socket's line of /proc/net/tcp{,6}: addresses as the kernel prints
 * them (IPv4 as one 32-bit word, IPv6 as four, each in the host's order of
 * the network-order bytes) and the port in host order. */
struct stub_peer_tcp_line {
    uint32_t local[4], remote[4];
    uint16_t local_port, remote_port;
    unsigned state;
    uid_t uid;
    bool v6;
};
/* Parses one line; -EINVAL for the header or anything malformed. */
int stub_peer_parse_tcp_line(const char *line, struct stub_peer_tcp_line *out);
/* Looks through f (a /proc/net/tcp or tcp6 table) for the socket that
 * connected from client to server; -ENOENT if it is not there. */
int stub_peer_find_tcp_uid(FILE *f, const struct sockaddr *client, const struct sockaddr *server,
                           uid_t *uid);
/* The owner of the socket at the other end of a loopback TCP connection
 * fd, from the kernel's tables; -ENOENT when it is not on this host. */
int stub_peer_tcp_uid(int fd, uid_t *uid);
/* The uid of a Unix socket's peer (SO_PEERCRED). */
int stub_peer_unix_uid(int fd, uid_t *uid);

#endif
