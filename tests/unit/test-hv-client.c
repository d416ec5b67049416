/*
 * Unit tests for xensim/hv/hv-client.c, the library side of the xensim-hvd protocol: finding
 * the socket, sending a request, and checking every reply it decodes (wrong op, bad length,
 * too much data, too many descriptors, error replies, asynchronous messages, a daemon that
 * goes away), with the daemon played by the test on the other end of a real socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "hv-client.h"
#include "hv-proto.h"

typedef struct Fixture {
        char dir[64];
        char path[96];
        int listen_fd;
        int daemon_fd; /* the test's end of the connection */
        HvClient client;
        int n_async;
        uint32_t async_port;
        int async_fd;
} Fixture;

static int setup(void **state)
{
        static Fixture f;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};

        memset(&f, 0, sizeof(f));
        f.async_fd = -1;
        assert_true(snprintf(f.dir, sizeof(f.dir), "/tmp/test-hv-client.XXXXXX") <
                    (int)sizeof(f.dir));
        assert_non_null(mkdtemp(f.dir));
        assert_true(snprintf(f.path, sizeof(f.path), "%s/s", f.dir) < (int)sizeof(f.path));
        assert_true(snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f.path) <
                    (int)sizeof(sa.sun_path));
        f.listen_fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
        assert_true(f.listen_fd >= 0);
        assert_int_equal(bind(f.listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(f.listen_fd, 4), 0);
        setenv("XENSIM_HV_SOCKET", f.path, 1);
        assert_int_equal(hv_client_open(&f.client, 1), 0);
        f.daemon_fd = accept(f.listen_fd, NULL, NULL);
        assert_true(f.daemon_fd >= 0);
        *state = &f;
        return 0;
}

static int teardown(void **state)
{
        Fixture *f = *state;

        hv_client_close(&f->client);
        if (f->daemon_fd >= 0)
                close(f->daemon_fd);
        close(f->listen_fd);
        if (f->async_fd >= 0)
                close(f->async_fd);
        unlink(f->path);
        rmdir(f->dir);
        return 0;
}

/* The daemon's side: send a message with optional data words and descriptors. */
static void daemon_send(Fixture *f, const HvMsg *m, const uint32_t *data, const int *fds,
                        size_t n_fds)
{
        uint8_t buf[HV_MSG_MAX];
        union {
                struct cmsghdr h;
                char b[CMSG_SPACE(sizeof(int) * 4)];
        } ctl;
        struct iovec iov;
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        int len = hv_proto_encode(m, data, buf, sizeof(buf));

        assert_true(len > 0);
        iov = (struct iovec){.iov_base = buf, .iov_len = (size_t)len};
        if (n_fds) {
                struct cmsghdr *cm;

                memset(&ctl, 0, sizeof(ctl));
                mh.msg_control = ctl.b;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(cm), fds, sizeof(int) * n_fds);
        }
        assert_int_equal(sendmsg(f->daemon_fd, &mh, 0), len);
}

static void on_async(void *ctx, const HvMsg *m, int fd)
{
        Fixture *f = ctx;

        f->n_async++;
        f->async_port = m->arg[0];
        if (f->async_fd >= 0)
                close(f->async_fd);
        f->async_fd = fd;
}

static int call(Fixture *f, HvMsg *rep, uint32_t *data, size_t max_data, int *fds, size_t max_fds,
                size_t *n_fds)
{
        HvMsg req = {.op = HV_OP_EVT_UNBIND, .arg = {5}};

        return hv_client_call(&f->client, &req, NULL, rep, data, max_data, fds, max_fds, n_fds);
}

static bool fd_is_open(int fd)
{
        return fcntl(fd, F_GETFD) >= 0;
}

static void test_client_open_unset(void **state)
{
        HvClient c;

        unsetenv("XENSIM_HV_SOCKET");
        assert_int_equal(hv_client_open(&c, 1), -ENOENT);
        setenv("XENSIM_HV_SOCKET", "", 1);
        assert_int_equal(hv_client_open(&c, 1), -ENOENT);
}

static void test_client_open_too_long(void **state)
{
        char path[200];
        HvClient c;

        memset(path, 'a', sizeof(path) - 1);
        path[sizeof(path) - 1] = 0;
        setenv("XENSIM_HV_SOCKET", path, 1);
        assert_int_equal(hv_client_open(&c, 1), -ENAMETOOLONG);
}

static void test_client_open_no_daemon(void **state)
{
        HvClient c;

        setenv("XENSIM_HV_SOCKET", "/nonexistent/dom0.hv.sock", 1);
        assert_int_equal(hv_client_open(&c, 1), -ENOENT);
        assert_int_equal(c.fd, -1);
}

static void test_client_call_ok(void **state)
{
        Fixture *f = *state;
        HvMsg rep = {.op = HV_OP_EVT_UNBIND, .arg = {7}, .n_data = 2}, got, req;
        uint32_t words[2] = {11, 12}, out[2];
        int sv[2], fds[2];
        size_t n_fds = 0;
        uint8_t buf[HV_MSG_MAX];
        const uint8_t *data;
        ssize_t n;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        daemon_send(f, &rep, words, sv, 2);
        close(sv[0]);
        close(sv[1]);
        assert_int_equal(call(f, &got, out, 2, fds, 2, &n_fds), 0);
        assert_int_equal(got.arg[0], 7);
        assert_int_equal(out[1], 12);
        assert_int_equal(n_fds, 2);
        /* The two received descriptors are a connected pair. */
        assert_int_equal(write(fds[0], "x", 1), 1);
        close(fds[0]);
        close(fds[1]);
        /* The request arrived as one well-formed datagram. */
        n = recv(f->daemon_fd, buf, sizeof(buf), 0);
        assert_int_equal(hv_proto_decode(buf, (size_t)n, &req, &data), 0);
        assert_int_equal(req.op, HV_OP_EVT_UNBIND);
        assert_int_equal(req.arg[0], 5);
}

static void test_client_call_error_reply(void **state)
{
        Fixture *f = *state;
        HvMsg rep = {.op = HV_OP_EVT_UNBIND, .err = ENOTCONN}, got;

        daemon_send(f, &rep, NULL, NULL, 0);
        assert_int_equal(call(f, &got, NULL, 0, NULL, 0, NULL), -ENOTCONN);
        /* An error out of range is a protocol error, not a made-up errno. */
        rep.err = 100000;
        daemon_send(f, &rep, NULL, NULL, 0);
        assert_int_equal(call(f, &got, NULL, 0, NULL, 0, NULL), -EPROTO);
        rep.err = -3;
        daemon_send(f, &rep, NULL, NULL, 0);
        assert_int_equal(call(f, &got, NULL, 0, NULL, 0, NULL), -EPROTO);
}

static void test_client_call_error_closes_fds(void **state)
{
        Fixture *f = *state;
        HvMsg rep = {.op = HV_OP_EVT_UNBIND, .err = EINVAL}, got;
        int sv[2], fds[2] = {-1, -1};
        size_t n_fds = 0;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        daemon_send(f, &rep, NULL, &sv[0], 1);
        close(sv[0]);
        assert_int_equal(call(f, &got, NULL, 0, fds, 2, &n_fds), -EINVAL);
        /* The descriptor that came with the error was closed: its peer sees EOF. */
        assert_int_equal(read(sv[1], fds, 1), 0);
        close(sv[1]);
}

static void test_client_call_wrong_op(void **state)
{
        Fixture *f = *state;
        HvMsg rep = {.op = HV_OP_GNT_MAP}, got;

        daemon_send(f, &rep, NULL, NULL, 0);
        assert_int_equal(call(f, &got, NULL, 0, NULL, 0, NULL), -EPROTO);
}

static void test_client_call_too_much_data(void **state)
{
        Fixture *f = *state;
        HvMsg rep = {.op = HV_OP_EVT_UNBIND, .n_data = 3}, got;
        uint32_t words[3] = {1, 2, 3}, out[2];

        daemon_send(f, &rep, words, NULL, 0);
        assert_int_equal(call(f, &got, out, 2, NULL, 0, NULL), -EPROTO);
}

static void test_client_call_too_many_fds(void **state)
{
        Fixture *f = *state;
        HvMsg rep = {.op = HV_OP_EVT_UNBIND}, got;
        int sv[2], fd = -1;
        size_t n_fds = 0;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        daemon_send(f, &rep, NULL, sv, 2);
        close(sv[0]);
        close(sv[1]);
        assert_int_equal(call(f, &got, NULL, 0, &fd, 1, &n_fds), -EPROTO);
        assert_int_equal(fd, -1);
}

static void test_client_call_malformed(void **state)
{
        Fixture *f = *state;
        HvMsg got;
        uint8_t junk[10] = {1, 2, 3};

        assert_int_equal(send(f->daemon_fd, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
        assert_int_equal(call(f, &got, NULL, 0, NULL, 0, NULL), -EPROTO);
}

static void test_client_call_daemon_gone(void **state)
{
        Fixture *f = *state;
        HvMsg got;

        close(f->daemon_fd);
        f->daemon_fd = -1;
        /* Either the send or the receive notices. */
        int r = call(f, &got, NULL, 0, NULL, 0, NULL);
        assert_true(r == -ECONNRESET || r == -EPIPE);
}

static void test_client_async_before_reply(void **state)
{
        Fixture *f = *state;
        HvMsg a = {.op = HV_OP_EVT_PEER_CHANGED, .arg = {9}}, rep = {.op = HV_OP_EVT_UNBIND}, got;

        f->client.on_async = on_async;
        f->client.async_ctx = f;
        daemon_send(f, &a, NULL, NULL, 0);
        daemon_send(f, &a, NULL, NULL, 0);
        daemon_send(f, &rep, NULL, NULL, 0);
        assert_int_equal(call(f, &got, NULL, 0, NULL, 0, NULL), 0);
        assert_int_equal(f->n_async, 2);
        assert_int_equal(f->async_port, 9);
}

static void test_client_async_without_handler(void **state)
{
        Fixture *f = *state;
        HvMsg a = {.op = HV_OP_EVT_PEER_CHANGED, .arg = {9}}, got;

        daemon_send(f, &a, NULL, NULL, 0);
        assert_int_equal(call(f, &got, NULL, 0, NULL, 0, NULL), -EPROTO);
}

static void test_client_drain(void **state)
{
        Fixture *f = *state;
        HvMsg a = {.op = HV_OP_EVT_PEER_CHANGED, .arg = {4}}, other = {.op = HV_OP_EVT_UNBIND};
        int sv[2];

        f->client.on_async = on_async;
        f->client.async_ctx = f;
        hv_client_lock(&f->client);
        /* Nothing waiting: returns at once. */
        assert_int_equal(hv_client_drain_async_locked(&f->client), 0);
        daemon_send(f, &a, NULL, NULL, 0);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        daemon_send(f, &a, NULL, &sv[0], 1);
        close(sv[0]);
        assert_int_equal(hv_client_drain_async_locked(&f->client), 0);
        assert_int_equal(f->n_async, 2);
        assert_true(f->async_fd >= 0 && fd_is_open(f->async_fd));
        /* A reply nobody asked for is a protocol error. */
        daemon_send(f, &other, NULL, NULL, 0);
        assert_int_equal(hv_client_drain_async_locked(&f->client), -EPROTO);
        /* The daemon went away. */
        close(f->daemon_fd);
        f->daemon_fd = -1;
        assert_int_equal(hv_client_drain_async_locked(&f->client), -ECONNRESET);
        hv_client_unlock(&f->client);
        close(sv[1]);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_client_open_unset),
                cmocka_unit_test(test_client_open_too_long),
                cmocka_unit_test(test_client_open_no_daemon),
                T(test_client_call_ok),
                T(test_client_call_error_reply),
                T(test_client_call_error_closes_fds),
                T(test_client_call_wrong_op),
                T(test_client_call_too_much_data),
                T(test_client_call_too_many_fds),
                T(test_client_call_malformed),
                T(test_client_call_daemon_gone),
                T(test_client_async_before_reply),
                T(test_client_async_without_handler),
                T(test_client_drain),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
