/* Who is connecting (peer.h).
 *
 * /proc/net/tcp rather than NETLINK_SOCK_DIAG: both come from the same
 * kernel table and give the same uid, but the text file needs no netlink
 * request and reply framing, its parser is a pure function the tests can
 * feed, and a loopback connect happens once per gdb session, so reading
 * the whole table costs nothing that matters. */
#include "peer.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define TCP_TIME_WAIT 0x06
#define TCP_LISTEN 0x0a

int stub_peer_policy_parse(const char *s, struct stub_peer_policy *p)
{
    memset(p, 0, sizeof(*p));
    if (strcmp(s, "all") == 0) {
        p->all = true;
        return 0;
    }
    const char *q = s;
    for (;;) {
        if (*q < '0' || *q > '9' || p->nusers == STUB_PEER_MAX_USERS)
            return -EINVAL;
        errno = 0;
        char *end;
        unsigned long v = strtoul(q, &end, 10);
        /* (uid_t)-1 means "no uid" to the kernel: nobody has it. */
        if (errno || v >= 0xffffffffUL)
            return -EINVAL;
        p->users[p->nusers++] = (uid_t)v;
        if (!*end)
            return 0;
        if (*end != ',')
            return -EINVAL;
        q = end + 1;
    }
}

bool stub_peer_allowed(const struct stub_peer_policy *p, uid_t self, uid_t uid)
{
    if (p->all || uid == self || uid == 0)
        return true;
    for (size_t i = 0; i < p->nusers; i++)
        if (p->users[i] == uid)
            return true;
    return false;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Exactly n hex digits (n <= 8) into *out. */
static const char *hexn(const char *s, int n, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++) {
        int d = hexval(s[i]);
        if (d < 0)
            return NULL;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return s + n;
}

/* ADDR:PORT, ADDR 8 or 32 hex digits. */
static const char *addr_port(const char *s, uint32_t a[4], uint16_t *port, bool *v6)
{
    size_t n = 0;
    while (hexval(s[n]) >= 0)
        n++;
    if ((n != 8 && n != 32) || s[n] != ':')
        return NULL;
    *v6 = n == 32;
    memset(a, 0, 4 * sizeof(a[0]));
    for (size_t i = 0; i < n / 8; i++)
        if (!(s = hexn(s, 8, &a[i])))
            return NULL;
    uint32_t p;
    if (!(s = hexn(s + 1, 4, &p)) || *s != ' ')
        return NULL;
    *port = (uint16_t)p;
    return s;
}

static const char *skip_spaces(const char *s)
{
    while (*s == ' ')
        s++;
    return s;
}

/* A field that is not needed: anything up to the next space. */
static const char *skip_field(const char *s)
{
    s = skip_spaces(s);
    const char *start = s;
    while (*s && *s != ' ' && *s != '\n')
        s++;
    return s > start ? s : NULL;
}

int stub_peer_parse_tcp_line(const char *line, struct stub_peer_tcp_line *out)
{
    memset(out, 0, sizeof(*out));
    const char *s = skip_spaces(line);
    /* "sl" is the slot number and a colon. */
    if (*s < '0' || *s > '9')
        return -EINVAL;
    while (*s >= '0' && *s <= '9')
        s++;
    if (*s++ != ':')
        return -EINVAL;
    bool v6r;
    if (!(s = addr_port(skip_spaces(s), out->local, &out->local_port, &out->v6)) ||
        !(s = addr_port(skip_spaces(s), out->remote, &out->remote_port, &v6r)) ||
        v6r != out->v6)
        return -EINVAL;
    uint32_t st;
    if (!(s = hexn(skip_spaces(s), 2, &st)) || *s != ' ')
        return -EINVAL;
    out->state = st;
    /* tx_queue:rx_queue, tr:tm->when, retrnsmt, then the uid. */
    for (int i = 0; i < 3; i++)
        if (!(s = skip_field(s)))
            return -EINVAL;
    s = skip_spaces(s);
    if (*s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long uid = strtoul(s, &end, 10);
    if (errno || uid > 0xffffffffUL || (*end != ' ' && *end != '\n' && *end))
        return -EINVAL;
    out->uid = (uid_t)uid;
    return 0;
}

/* A socket address as the table prints it. */
static int table_form(const struct sockaddr *sa, uint32_t a[4], uint16_t *port, bool *v6)
{
    memset(a, 0, 4 * sizeof(a[0]));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        memcpy(&a[0], &in->sin_addr, 4);
        *port = ntohs(in->sin_port);
        *v6 = false;
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(a, &in6->sin6_addr, 16);
        *port = ntohs(in6->sin6_port);
        *v6 = true;
        return 0;
    }
    return -EAFNOSUPPORT;
}

int stub_peer_find_tcp_uid(FILE *f, const struct sockaddr *client, const struct sockaddr *server,
                           uid_t *uid)
{
    uint32_t ca[4], sa[4];
    uint16_t cp, sp;
    bool cv6, sv6;
    int r = table_form(client, ca, &cp, &cv6);
    if (!r)
        r = table_form(server, sa, &sp, &sv6);
    if (r)
        return r;
    char line[512];
    struct stub_peer_tcp_line l;
    while (fgets(line, sizeof(line), f)) {
        /* A socket in TIME_WAIT has no owner left: the table says uid 0. */
        if (stub_peer_parse_tcp_line(line, &l) || l.v6 != cv6 || l.state == TCP_LISTEN ||
            l.state == TCP_TIME_WAIT)
            continue;
        if (l.local_port == cp && l.remote_port == sp && !memcmp(l.local, ca, sizeof(ca)) &&
            !memcmp(l.remote, sa, sizeof(sa))) {
            *uid = l.uid;
            return 0;
        }
    }
    return -ENOENT;
}

int stub_peer_tcp_uid(int fd, uid_t *uid)
{
    struct sockaddr_storage peer, self;
    socklen_t plen = sizeof(peer), slen = sizeof(self);
    if (getpeername(fd, (struct sockaddr *)&peer, &plen) ||
        getsockname(fd, (struct sockaddr *)&self, &slen))
        return -errno;
    const char *table = peer.ss_family == AF_INET6 ? "/proc/net/tcp6" : "/proc/net/tcp";
    FILE *f = fopen(table, "re");
    if (!f)
        return -errno;
    int r = stub_peer_find_tcp_uid(f, (struct sockaddr *)&peer, (struct sockaddr *)&self, uid);
    fclose(f);
    return r;
}

int stub_peer_unix_uid(int fd, uid_t *uid)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
        return -errno;
    *uid = cred.uid;
    return 0;
}
