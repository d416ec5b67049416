/* SPDX-License-Identifier: MIT */
/*
 * fwd-addr: socket addresses for vbusctl's forwarding commands (see fwd-addr.h). Host names
 * are resolved once, when the address is parsed; the first address getaddrinfo() gives is the
 * one used (listen on "tcp:[::]:P" or "tcp:0.0.0.0:P" to choose the family).
 */
#include "fwd-addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define FWD_LISTEN_BACKLOG 128 /* connections the kernel holds while the forwarder is busy */

static int parse_tcp(const char *rest, bool passive, FwdAddr *ret, const char **ret_why)
{
        char host[256], port[8];
        const char *colon;
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
        size_t n_host;
        char *end;
        long p;
        int r;

        if (rest[0] == '[') {
                const char *close = strchr(rest, ']');

                if (!close || close[1] != ':') {
                        *ret_why = "expected tcp:[IPV6]:PORT";
                        return -EINVAL;
                }
                n_host = (size_t)(close - rest - 1);
                memcpy(host, rest + 1, n_host < sizeof(host) ? n_host : 0);
                colon = close + 1;
        } else {
                colon = strrchr(rest, ':');
                if (!colon) {
                        *ret_why = "expected tcp:HOST:PORT";
                        return -EINVAL;
                }
                n_host = (size_t)(colon - rest);
                memcpy(host, rest, n_host < sizeof(host) ? n_host : 0);
        }
        if (n_host == 0 || n_host >= sizeof(host)) {
                *ret_why = "the host is empty or too long";
                return -EINVAL;
        }
        host[n_host] = '\0';
        errno = 0;
        p = strtol(colon + 1, &end, 10);
        if (errno || *end || end == colon + 1 || p < (passive ? 0 : 1) || p > 65535) {
                *ret_why = passive ? "the port must be 0..65535" : "the port must be 1..65535";
                return -EINVAL;
        }
        (void)snprintf(port, sizeof(port), "%ld", p); /* 0..65535: it fits */
        hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
        r = getaddrinfo(host, port, &hints, &res);
        if (r != 0 || !res) {
                *ret_why = r == EAI_NONAME ? "unknown host" : gai_strerror(r);
                return -ENOENT;
        }
        memcpy(&ret->sa, res->ai_addr, res->ai_addrlen);
        ret->len = res->ai_addrlen;
        ret->is_unix = false;
        freeaddrinfo(res);
        return 0;
}

int fwd_addr_parse(const char *text, bool passive, FwdAddr *ret, const char **ret_why)
{
        FwdAddr a = {0};
        int r;

        *ret_why = "expected tcp:HOST:PORT or unix:/PATH";
        if (strlen(text) >= sizeof(a.text))
                return -EINVAL;
        if (strncmp(text, "unix:", 5) == 0) {
                struct sockaddr_un *un = (struct sockaddr_un *)&a.sa;
                size_t n = strlen(text + 5);

                if (n == 0) {
                        *ret_why = "the path is empty";
                        return -EINVAL;
                }
                if (n >= sizeof(un->sun_path)) {
                        *ret_why = "the path is longer than a unix socket address allows";
                        return -ENAMETOOLONG;
                }
                un->sun_family = AF_UNIX;
                memcpy(un->sun_path, text + 5, n + 1);
                a.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
                a.is_unix = true;
        } else if (strncmp(text, "tcp:", 4) == 0) {
                r = parse_tcp(text + 4, passive, &a, ret_why);
                if (r < 0)
                        return r;
        } else {
                return -EINVAL;
        }
        (void)snprintf(a.text, sizeof(a.text), "%s", text); /* its length checked above */
        *ret = a;
        return 0;
}

static int new_socket(const FwdAddr *a)
{
        int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

        return fd < 0 ? -errno : fd;
}

/* True if the unix path of @a is a socket (never remove anything else). */
static bool path_is_socket(const FwdAddr *a)
{
        struct stat st;

        return lstat(((const struct sockaddr_un *)&a->sa)->sun_path, &st) == 0 &&
               S_ISSOCK(st.st_mode);
}

/* True if something accepts connections at the unix path of @a. */
static bool unix_path_is_live(const FwdAddr *a)
{
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool live;

        if (fd < 0)
                return true; /* cannot tell: do not remove it */
        live = connect(fd, (const struct sockaddr *)&a->sa, a->len) == 0 || errno != ECONNREFUSED;
        close(fd);
        return live;
}

int fwd_addr_listen(const FwdAddr *a)
{
        int one = 1, fd, r;

        fd = new_socket(a);
        if (fd < 0)
                return fd;
        if (!a->is_unix)
                (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        r = bind(fd, (const struct sockaddr *)&a->sa, a->len);
        if (r < 0 && errno == EADDRINUSE && a->is_unix && path_is_socket(a) &&
            !unix_path_is_live(a)) {
                /* A socket file nobody accepts on: left by a forwarder that was killed. */
                (void)unlink(((const struct sockaddr_un *)&a->sa)->sun_path);
                r = bind(fd, (const struct sockaddr *)&a->sa, a->len);
        }
        if (r < 0 || listen(fd, FWD_LISTEN_BACKLOG) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

int fwd_addr_connect(const FwdAddr *a, int *ret_fd)
{
        int fd = new_socket(a), r;

        if (fd < 0)
                return fd;
        if (connect(fd, (const struct sockaddr *)&a->sa, a->len) == 0) {
                *ret_fd = fd;
                return 0;
        }
        if (errno == EINPROGRESS) {
                *ret_fd = fd;
                return -EINPROGRESS;
        }
        r = -errno;
        close(fd);
        /* A unix listener with a full backlog says EAGAIN: for us that is a refusal. */
        return r == -EAGAIN ? -ECONNREFUSED : r;
}

int fwd_addr_connected(int fd)
{
        int err = 0;
        socklen_t n = sizeof(err);

        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &n) < 0)
                return -errno;
        return -err;
}

/* Display text into @buf: cut short if @n is, which FWD_ADDR_TEXT_MAX never is. */
static void describe(const struct sockaddr_storage *ss, char *buf, size_t n)
{
        char host[INET6_ADDRSTRLEN] = "?";

        if (ss->ss_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

                inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
                (void)snprintf(buf, n, "tcp:%s:%u", host, ntohs(in->sin_port));
        } else if (ss->ss_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

                inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
                (void)snprintf(buf, n, "tcp:[%s]:%u", host, ntohs(in6->sin6_port));
        } else {
                (void)snprintf(buf, n, "unix");
        }
}

void fwd_addr_describe_bound(const FwdAddr *a, int fd, char *buf, size_t n)
{
        struct sockaddr_storage ss = {0};
        socklen_t len = sizeof(ss);

        if (a->is_unix || getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
                (void)snprintf(buf, n, "%s", a->text); /* display text, as describe() */
                return;
        }
        describe(&ss, buf, n);
}

void fwd_addr_describe_peer(int fd, char *buf, size_t n)
{
        struct sockaddr_storage ss = {0};
        socklen_t len = sizeof(ss);

        if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0) {
                (void)snprintf(buf, n, "?");
                return;
        }
        describe(&ss, buf, n);
}

void fwd_addr_close_reset(int fd)
{
        struct linger l = {.l_onoff = 1, .l_linger = 0};

        if (fd < 0)
                return;
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        close(fd);
}
