/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for clients/vbusctl/fwd-addr.c, the socket addresses of vbusctl's forwarding
 * commands: parsing (every error it documents), listening (a stale unix socket is replaced, a
 * live one or a file that is not a socket is refused and left alone), non-blocking connecting
 * (a refusal), and the reset a TCP peer sees after fwd_addr_close_reset().
 *
 * vbusctl is a program, not a library: the module is compiled into this test directly.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../clients/vbusctl/fwd-addr.c" /* NOLINT(bugprone-suspicious-include) */

static void test_parse_tcp_forms(void **state)
{
        FwdAddr a = {0};
        const char *why = NULL;

        (void)state;
        assert_int_equal(fwd_addr_parse("tcp:127.0.0.1:5432", false, &a, &why), 0);
        assert_false(a.is_unix);
        assert_int_equal(a.sa.ss_family, AF_INET);
        assert_int_equal(ntohs(((struct sockaddr_in *)&a.sa)->sin_port), 5432);
        assert_string_equal(a.text, "tcp:127.0.0.1:5432");
        assert_int_equal(fwd_addr_parse("tcp:[::1]:80", false, &a, &why), 0);
        assert_int_equal(a.sa.ss_family, AF_INET6);
        assert_int_equal(ntohs(((struct sockaddr_in6 *)&a.sa)->sin6_port), 80);
        assert_int_equal(fwd_addr_parse("tcp:localhost:1", false, &a, &why), 0);
        /* Port 0 only where the kernel may choose. */
        assert_int_equal(fwd_addr_parse("tcp:127.0.0.1:0", true, &a, &why), 0);
        assert_int_equal(fwd_addr_parse("tcp:127.0.0.1:0", false, &a, &why), -EINVAL);
}

static void test_parse_unix(void **state)
{
        FwdAddr a = {0};
        const char *why = NULL;
        char long_path[sizeof(((struct sockaddr_un *)0)->sun_path) + 16];

        (void)state;
        assert_int_equal(fwd_addr_parse("unix:/run/x.sock", false, &a, &why), 0);
        assert_true(a.is_unix);
        assert_string_equal(((struct sockaddr_un *)&a.sa)->sun_path, "/run/x.sock");
        assert_int_equal(fwd_addr_parse("unix:", false, &a, &why), -EINVAL);
        memset(long_path, 'a', sizeof(long_path) - 1);
        memcpy(long_path, "unix:/", 6);
        long_path[sizeof(long_path) - 1] = '\0';
        assert_int_equal(fwd_addr_parse(long_path, true, &a, &why), -ENAMETOOLONG);
}

static void test_parse_errors(void **state)
{
        static const char *const bad[] = {
                "",
                "127.0.0.1:80",
                "udp:127.0.0.1:80",
                "tcp:",
                "tcp:127.0.0.1",
                "tcp::80",
                "tcp:127.0.0.1:",
                "tcp:127.0.0.1:65536",
                "tcp:127.0.0.1:-1",
                "tcp:127.0.0.1:80x",
                "tcp:[::1:80",
                "tcp:[::1]80",
        };
        FwdAddr a = {.len = 12345};
        const char *why = NULL;

        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                why = NULL;
                assert_int_equal(fwd_addr_parse(bad[i], true, &a, &why), -EINVAL);
                assert_non_null(why);
                assert_int_equal(a.len, 12345); /* written only on success */
        }
        assert_int_equal(fwd_addr_parse("tcp:no-such-host.invalid:80", false, &a, &why), -ENOENT);
        assert_non_null(why);
}

static void tmp_path(char *buf, size_t n, const char *name)
{
        assert_true(snprintf(buf, n, "/tmp/test-fwd-addr.%ld.%s", (long)getpid(), name) < (int)n);
        unlink(buf);
}

static void test_listen_unix_stale_live_and_file(void **state)
{
        char path[96], text[128];
        FwdAddr a = {0};
        const char *why;
        struct stat st;
        int fd, fd2, stale;

        (void)state;
        tmp_path(path, sizeof(path), "sock");
        assert_true(snprintf(text, sizeof(text), "unix:%s", path) < (int)sizeof(text));
        assert_int_equal(fwd_addr_parse(text, true, &a, &why), 0);

        /* A socket file nobody accepts on (its listener is gone) is replaced. */
        stale = fwd_addr_listen(&a);
        assert_true(stale >= 0);
        close(stale);
        fd = fwd_addr_listen(&a);
        assert_true(fd >= 0);

        /* Somebody accepts there: refused, and the socket stays. */
        assert_int_equal(fwd_addr_listen(&a), -EADDRINUSE);
        assert_int_equal(lstat(path, &st), 0);
        close(fd);
        unlink(path);

        /* A file that is not a socket is never removed. */
        fd2 = open(path, O_CREAT | O_WRONLY, 0600);
        assert_true(fd2 >= 0);
        close(fd2);
        assert_int_equal(fwd_addr_listen(&a), -EADDRINUSE);
        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        unlink(path);
}

/* A TCP port on 127.0.0.1 where nobody listens (bound, never listened on, then closed). */
static int free_port(void)
{
        struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t n = sizeof(in);
        int fd = socket(AF_INET, SOCK_STREAM, 0), port;

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&in, &n), 0);
        port = ntohs(in.sin_port);
        close(fd);
        return port;
}

static void test_connect_refused(void **state)
{
        char text[64];
        FwdAddr a = {0};
        const char *why;
        int fd = -1, r;

        (void)state;
        assert_true(snprintf(text, sizeof(text), "tcp:127.0.0.1:%d", free_port()) <
                    (int)sizeof(text));
        assert_int_equal(fwd_addr_parse(text, false, &a, &why), 0);
        r = fwd_addr_connect(&a, &fd);
        if (r == -EINPROGRESS) {
                struct pollfd p = {.fd = fd, .events = POLLOUT};

                assert_int_equal(poll(&p, 1, 5000), 1);
                r = fwd_addr_connected(fd);
                close(fd);
        }
        assert_int_equal(r, -ECONNREFUSED);
}

static void test_close_reset_is_seen_as_reset(void **state)
{
        char bound[FWD_ADDR_TEXT_MAX], buf[8];
        FwdAddr a = {0}, b = {0};
        const char *why;
        int lfd, cfd = -1, sfd, r;

        (void)state;
        assert_int_equal(fwd_addr_parse("tcp:127.0.0.1:0", true, &a, &why), 0);
        lfd = fwd_addr_listen(&a);
        assert_true(lfd >= 0);
        fwd_addr_describe_bound(&a, lfd, bound, sizeof(bound));
        assert_true(strncmp(bound, "tcp:127.0.0.1:", 14) == 0);
        assert_int_equal(fwd_addr_parse(bound, false, &b, &why), 0);
        r = fwd_addr_connect(&b, &cfd);
        assert_true(r == 0 || r == -EINPROGRESS);
        {
                struct pollfd p = {.fd = lfd, .events = POLLIN};

                assert_int_equal(poll(&p, 1, 5000), 1);
        }
        sfd = accept(lfd, NULL, NULL);
        assert_true(sfd >= 0);
        fwd_addr_close_reset(sfd);
        {
                struct pollfd p = {.fd = cfd, .events = POLLIN};

                assert_int_equal(poll(&p, 1, 5000), 1);
        }
        assert_int_equal(read(cfd, buf, sizeof(buf)), -1);
        assert_int_equal(errno, ECONNRESET);
        close(cfd);
        close(lfd);
        fwd_addr_close_reset(-1); /* accepted: nothing to close */
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_tcp_forms),
                cmocka_unit_test(test_parse_unix),
                cmocka_unit_test(test_parse_errors),
                cmocka_unit_test(test_listen_unix_stale_live_and_file),
                cmocka_unit_test(test_connect_refused),
                cmocka_unit_test(test_close_reset_is_seen_as_reset),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
