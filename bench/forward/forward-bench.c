/* SPDX-License-Identifier: MIT */
/*
 * forward-bench: the two ends of bench/forward/run, plain socket programs that know nothing of
 * what carries their connection (a direct loopback socket, vbusctl forward/expose, or Xen's
 * vchan-socket-proxy). Only stream semantics are used, no half-close (vchan-socket-proxy does
 * not carry one), so every carrier runs the same exchange:
 *
 *   forward-bench sink ADDR READYFILE     serve connections one after the other: on accept,
 *                                         write one greeting byte; then read an 8-byte length
 *                                         L and L bytes; answer with 8 bytes (L) and close.
 *   forward-bench tput ADDR BYTES         one connection: wait for the greeting, then time
 *                                         "send L, L bytes, receive the answer". Prints
 *                                         "tput bytes=L secs=S mbps=M".
 *   forward-bench lat ADDR N              N connections one after the other, each timed from
 *                                         connect() to the greeting (the far program accepted
 *                                         and its first byte came back), then closed after an
 *                                         empty exchange (L = 0). Prints "lat n=N p50_us=A
 *                                         p99_us=B".
 * ADDR: tcp:HOST:PORT (port 0 in sink: any; READYFILE gets the real address) or unix:/PATH.
 * A benchmark helper: blocking sockets, no cleverness, dies on any error with a message.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BENCH_BUF ((size_t)256 * 1024) /* bytes per read/write call */

static _Noreturn void die(const char *what, int err)
{
        fprintf(stderr, "forward-bench: %s: %s\n", what, err ? strerror(err) : "failed");
        exit(1);
}

static uint64_t now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static socklen_t parse(const char *addr, struct sockaddr_storage *ss)
{
        memset(ss, 0, sizeof(*ss));
        if (strncmp(addr, "unix:", 5) == 0) {
                struct sockaddr_un *un = (struct sockaddr_un *)ss;

                if (strlen(addr + 5) >= sizeof(un->sun_path))
                        die("unix path too long", 0);
                un->sun_family = AF_UNIX;
                memcpy(un->sun_path, addr + 5, strlen(addr + 5) + 1);
                return sizeof(*un);
        }
        if (strncmp(addr, "tcp:", 4) == 0) {
                struct sockaddr_in *in = (struct sockaddr_in *)ss;
                char host[64];
                const char *colon = strrchr(addr + 4, ':');

                if (!colon || (size_t)(colon - addr - 4) >= sizeof(host))
                        die("expected tcp:IPV4:PORT", 0);
                memcpy(host, addr + 4, (size_t)(colon - addr - 4));
                host[colon - addr - 4] = '\0';
                in->sin_family = AF_INET;
                in->sin_port = htons((uint16_t)strtoul(colon + 1, NULL, 10));
                if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
                        die("expected tcp:IPV4:PORT", 0);
                return sizeof(*in);
        }
        die("ADDR is tcp:IPV4:PORT or unix:/PATH", 0);
}

static void read_all(int fd, void *buf, size_t n)
{
        for (size_t off = 0; off < n;) {
                ssize_t k = read(fd, (char *)buf + off, n - off);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        die("read", k < 0 ? errno : EPIPE);
                off += (size_t)k;
        }
}

static void write_all(int fd, const void *buf, size_t n)
{
        for (size_t off = 0; off < n;) {
                ssize_t k = write(fd, (const char *)buf + off, n - off);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        die("write", errno);
                off += (size_t)k;
        }
}

/* Connects to @addr; @ret_t0 (may be NULL): when the successful connect() started. A listener
 * that is not listening yet (a proxy between bind() and listen()) is retried for 5 s. */
static int dial(const char *addr, uint64_t *ret_t0)
{
        struct sockaddr_storage ss;
        socklen_t len = parse(addr, &ss);
        int one = 1;

        for (int attempt = 0;; attempt++) {
                int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
                uint64_t t0 = now_usec();

                if (fd < 0)
                        die("socket", errno);
                if (connect(fd, (struct sockaddr *)&ss, len) == 0) {
                        if (ss.ss_family == AF_INET)
                                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                        if (ret_t0)
                                *ret_t0 = t0;
                        return fd;
                }
                if ((errno != ECONNREFUSED && errno != ENOENT) || attempt == 500)
                        die("connect", errno);
                close(fd);
                usleep(10000);
        }
}

/* One exchange as the sink: greeting, length, bytes, answer. A peer that goes away early (the
 * latency client) is not an error. */
static void sink_one(int fd, uint8_t *buf)
{
        uint64_t len, left;

        if (write(fd, "G", 1) != 1)
                return;
        for (size_t off = 0; off < sizeof(len);) {
                ssize_t k = read(fd, (char *)&len + off, sizeof(len) - off);

                if (k <= 0)
                        return;
                off += (size_t)k;
        }
        for (left = len; left > 0;) {
                ssize_t k = read(fd, buf, left < BENCH_BUF ? left : BENCH_BUF);

                if (k <= 0)
                        return;
                left -= (uint64_t)k;
        }
        (void)!write(fd, &len, sizeof(len));
}

static _Noreturn void cmd_sink(const char *addr, const char *ready)
{
        struct sockaddr_storage ss;
        socklen_t len = parse(addr, &ss);
        int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
        uint8_t *buf = malloc(BENCH_BUF);
        char name[160];
        FILE *f;

        if (fd < 0 || !buf)
                die("socket", errno);
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ss.ss_family == AF_UNIX)
                (void)unlink(((struct sockaddr_un *)&ss)->sun_path);
        if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0)
                die("bind/listen", errno);
        if (ss.ss_family == AF_INET) {
                struct sockaddr_in in = {0};
                socklen_t n = sizeof(in);

                if (getsockname(fd, (struct sockaddr *)&in, &n) < 0)
                        die("getsockname", errno);
                (void)snprintf(name, sizeof(name), "tcp:127.0.0.1:%u", ntohs(in.sin_port));
        } else if ((size_t)snprintf(name, sizeof(name), "%s", addr) >= sizeof(name)) {
                die("address too long", ENAMETOOLONG);
        }
        f = fopen(ready, "w");
        if (!f || fprintf(f, "%s\n", name) < 0 || fclose(f) != 0)
                die("ready file", errno);
        for (;;) {
                int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

                if (c < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        die("accept", errno);
                }
                if (ss.ss_family == AF_INET)
                        (void)setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                sink_one(c, buf);
                close(c);
        }
}

static int cmd_tput(const char *addr, uint64_t bytes)
{
        uint8_t *buf = malloc(BENCH_BUF);
        uint64_t t0, t1, got, left;
        char greeting;
        int fd;

        if (!buf)
                die("malloc", ENOMEM);
        for (size_t i = 0; i < BENCH_BUF; i++)
                buf[i] = (uint8_t)(i * 7 + 3);
        fd = dial(addr, NULL);
        read_all(fd, &greeting, 1);
        t0 = now_usec();
        write_all(fd, &bytes, sizeof(bytes));
        for (left = bytes; left > 0;) {
                size_t n = left < BENCH_BUF ? (size_t)left : BENCH_BUF;

                write_all(fd, buf, n);
                left -= n;
        }
        read_all(fd, &got, sizeof(got));
        t1 = now_usec();
        if (got != bytes)
                die("the sink counted another length", 0);
        close(fd);
        printf("tput bytes=%llu secs=%.4f mbps=%.1f\n", (unsigned long long)bytes,
               (double)(t1 - t0) / 1e6, (double)bytes / (double)(t1 - t0));
        free(buf);
        return 0;
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return x < y ? -1 : x > y;
}

static int cmd_lat(const char *addr, int n)
{
        uint64_t *t = calloc((size_t)n, sizeof(*t)), zero = 0, echo;
        char greeting;

        if (!t)
                die("calloc", ENOMEM);
        for (int i = 0; i < n; i++) {
                uint64_t t0;
                int fd = dial(addr, &t0);

                read_all(fd, &greeting, 1);
                t[i] = now_usec() - t0;
                /* Finish the exchange, so the far side is idle before the next connection. */
                write_all(fd, &zero, sizeof(zero));
                read_all(fd, &echo, sizeof(echo));
                close(fd);
        }
        qsort(t, (size_t)n, sizeof(*t), cmp_u64);
        printf("lat n=%d p50_us=%llu p99_us=%llu\n", n, (unsigned long long)t[n / 2],
               (unsigned long long)t[(size_t)n * 99 / 100]);
        free(t);
        return 0;
}

int main(int argc, char **argv)
{
        (void)signal(SIGPIPE, SIG_IGN); /* cannot fail: a valid signal and handler */
        if (argc == 4 && strcmp(argv[1], "sink") == 0)
                cmd_sink(argv[2], argv[3]);
        if (argc == 4 && strcmp(argv[1], "tput") == 0)
                return cmd_tput(argv[2], strtoull(argv[3], NULL, 10));
        if (argc == 4 && strcmp(argv[1], "lat") == 0 && strtol(argv[3], NULL, 10) > 0)
                return cmd_lat(argv[2], (int)strtol(argv[3], NULL, 10));
        fprintf(stderr,
                "usage: forward-bench sink ADDR READYFILE | tput ADDR BYTES | lat ADDR N\n");
        return 2;
}
