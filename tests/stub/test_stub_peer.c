/* Who is connecting (stub/peer.h): --allow-users, the /proc/net/tcp line
 * parser fed kernel-format lines, and the lookup against this process's
 * own loopback and Unix sockets. No KVM, no root. */
#include "testmain.h"

#include "stub/peer.h"

#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_allow_users_parsing(void)
{
    struct stub_peer_policy p;
    CU_ASSERT_EQUAL(stub_peer_policy_parse("all", &p), 0);
    CU_ASSERT(p.all);
    CU_ASSERT(stub_peer_allowed(&p, 1000, 4242));
    CU_ASSERT_EQUAL(stub_peer_policy_parse("1001,1002", &p), 0);
    CU_ASSERT_FALSE(p.all);
    CU_ASSERT_EQUAL(p.nusers, 2);
    CU_ASSERT(stub_peer_allowed(&p, 1000, 1000)); /* itself */
    CU_ASSERT(stub_peer_allowed(&p, 1000, 0));    /* root */
    CU_ASSERT(stub_peer_allowed(&p, 1000, 1002));
    CU_ASSERT_FALSE(stub_peer_allowed(&p, 1000, 1003));
    const char *bad[] = {"", "alice", "1,", ",1", "1,,2", "-1", "4294967295", "12x",
                         "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_NOT_EQUAL(stub_peer_policy_parse(bad[i], &p), 0);
    struct stub_peer_policy none = {0};
    CU_ASSERT_FALSE(stub_peer_allowed(&none, 1000, 1001));
}

static void test_tcp_lines_parse(void)
{
    struct stub_peer_tcp_line l;
    CU_ASSERT_NOT_EQUAL(stub_peer_parse_tcp_line("  sl  local_address rem_address   st tx_queue "
                                                 "rx_queue tr tm->when retrnsmt   uid  timeout "
                                                 "inode\n",
                                                 &l),
                        0);
    CU_ASSERT_EQUAL(stub_peer_parse_tcp_line(
                        "   3: 0100007F:A1B2 0100007F:04D2 01 00000000:00000000 00:00000000 "
                        "00000000  1001        0 123456 1 0000000000000000 20 4 30 10 -1\n",
                        &l),
                    0);
    CU_ASSERT_FALSE(l.v6);
    CU_ASSERT_EQUAL(l.local[0], 0x0100007Fu);
    CU_ASSERT_EQUAL(l.local_port, 0xA1B2);
    CU_ASSERT_EQUAL(l.remote_port, 1234);
    CU_ASSERT_EQUAL(l.state, 1);
    CU_ASSERT_EQUAL(l.uid, 1001);
    CU_ASSERT_EQUAL(stub_peer_parse_tcp_line(
                        "   0: 00000000000000000000000001000000:C350 "
                        "00000000000000000000000001000000:04D2 01 00000000:00000000 "
                        "00:00000000 00000000     0        0 99 1 0000000000000000 20 4 1 10 -1\n",
                        &l),
                    0);
    CU_ASSERT(l.v6);
    CU_ASSERT_EQUAL(l.local[3], 0x01000000u);
    CU_ASSERT_EQUAL(l.uid, 0);
    /* Damaged or cut lines are skipped, not half-read. */
    const char *bad[] = {
        "   3: 0100007F:A1B2 0100007F:04D2 01 00000000:00000000 00:00000000\n",
        "   3: 0100007:A1B2 0100007F:04D2 01 00000000:00000000 00:00000000 00000000 1 0 1\n",
        "   3: 0100007F:A1B2 00000000000000000000000001000000:04D2 01 0:0 0:0 0 1 0 1\n",
        "   3: 0100007F:A1B2 0100007F:04D2 01 00000000:00000000 00:00000000 00000000 x 0 1\n",
        "   3: 0100007F:A1B2 0100007F:04D2 01 00000000:00000000 00:00000000 00000000 "
        "99999999999 0 1\n",
        "3 0100007F:A1B2 0100007F:04D2 01 0:0 0:0 0 1 0 1\n",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_NOT_EQUAL(stub_peer_parse_tcp_line(bad[i], &l), 0);
}

static void test_table_lookup_matches_both_ends(void)
{
    static char table[] =
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
        "timeout inode\n"
        "   0: 0100007F:04D2 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0 0 1\n"
        "   1: 0100007F:04D2 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000     0 0 2\n"
        "   2: 0100007F:A1B3 0100007F:04D2 01 00000000:00000000 00:00000000 00000000  2002 0 3\n"
        "   3: 0100007F:A1B2 0100007F:04D2 06 00000000:00000000 00:00000000 00000000     0 0 0\n"
        "   4: 0100007F:A1B2 0100007F:04D2 01 00000000:00000000 00:00000000 00000000  1001 0 4\n";
    struct sockaddr_in client = {.sin_family = AF_INET, .sin_port = htons(0xA1B2)};
    struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons(1234)};
    inet_pton(AF_INET, "127.0.0.1", &client.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &server.sin_addr);
    FILE *f = fmemopen(table, strlen(table), "r");
    uid_t uid = 7;
    CU_ASSERT_EQUAL(stub_peer_find_tcp_uid(f, (struct sockaddr *)&client,
                                           (struct sockaddr *)&server, &uid),
                    0);
    /* Not the server side's 0, not the neighbour's 2002, not an old
     * TIME_WAIT socket's 0 on the same ports. */
    CU_ASSERT_EQUAL(uid, 1001);
    fclose(f);
    client.sin_port = htons(0xA1B4);
    f = fmemopen(table, strlen(table), "r");
    CU_ASSERT_EQUAL(stub_peer_find_tcp_uid(f, (struct sockaddr *)&client,
                                           (struct sockaddr *)&server, &uid),
                    -ENOENT);
    fclose(f);
}

/* The kernel's own tables: a loopback connection made here is ours. */
static void test_own_loopback_socket_is_ours(void)
{
    const char *addrs[] = {"127.0.0.1", "::1"};
    for (int i = 0; i < 2; i++) {
        int fam = i ? AF_INET6 : AF_INET;
        int l = socket(fam, SOCK_STREAM, 0);
        struct sockaddr_storage a = {0};
        socklen_t alen;
        if (fam == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&a;
            in->sin_family = AF_INET;
            inet_pton(AF_INET, addrs[i], &in->sin_addr);
            alen = sizeof(*in);
        } else {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a;
            in6->sin6_family = AF_INET6;
            inet_pton(AF_INET6, addrs[i], &in6->sin6_addr);
            alen = sizeof(*in6);
        }
        if (bind(l, (struct sockaddr *)&a, alen)) {
            close(l);
            CU_ASSERT_EQUAL(fam, AF_INET6); /* a host without IPv6 only */
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(listen(l, 1), 0);
        CU_ASSERT_EQUAL_FATAL(getsockname(l, (struct sockaddr *)&a, &alen), 0);
        int c = socket(fam, SOCK_STREAM, 0);
        CU_ASSERT_EQUAL_FATAL(connect(c, (struct sockaddr *)&a, alen), 0);
        int s = accept(l, NULL, NULL);
        CU_ASSERT_FATAL(s >= 0);
        uid_t uid = 12345;
        CU_ASSERT_EQUAL(stub_peer_tcp_uid(s, &uid), 0);
        CU_ASSERT_EQUAL(uid, geteuid());
        close(s);
        close(c);
        close(l);
    }
}

static void test_unix_peer_is_ours(void)
{
    int sv[2];
    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    uid_t uid = 12345;
    CU_ASSERT_EQUAL(stub_peer_unix_uid(sv[0], &uid), 0);
    CU_ASSERT_EQUAL(uid, geteuid());
    close(sv[0]);
    close(sv[1]);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("stub_peer", NULL, NULL);
    CU_add_test(s, "--allow-users: all, uid lists, malformed lists refused",
                test_allow_users_parsing);
    CU_add_test(s, "/proc/net/tcp lines: v4, v6, header and damaged lines", test_tcp_lines_parse);
    CU_add_test(s, "the lookup picks the connecting socket, not the server's or a neighbour's",
                test_table_lookup_matches_both_ends);
    CU_add_test(s, "a loopback connection made here is found as ours (v4, v6)",
                test_own_loopback_socket_is_ours);
    CU_add_test(s, "SO_PEERCRED names our uid", test_unix_peer_is_ours);
}

int main(void)
{
    return test_main("test_stub_peer", register_suites, false);
}
