/*
 * xenvchan-peer: the other end of our interop tests, built on Xen's own libxenvchan (Debian's
 * libxenvchan.so from libxen-dev), never on our code. Same stdin/stdout contract as
 * vchan-cat, plus --expect N: after stdin EOF, keep reading until N bytes have arrived, then
 * close (so that a 64 MiB transfer in each direction can finish with this side closing
 * first, without losing the bytes still in flight).
 *
 *   xenvchan-peer [-q] [--expect N] server DOMID PATH LEFT_SIZE RIGHT_SIZE
 *   xenvchan-peer [-q] [--expect N] client DOMID PATH
 *
 * libxenvchan has no final re-check after the peer closed, so this program does one itself
 * (data_ready after is_open == 0), to test *our* writer's close, not libxenvchan's reader.
 * Exit: 0 when the peer closed (or --expect was met / -q closed), 1 on error, 2 usage.
 */

#include <errno.h>
#include <getopt.h>
#include <libxenvchan.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PEER_BUF 65536

/* A whole decimal number in min..max, or -1. */
static long long parse_number(const char *s, long long min, long long max)
{
        char *end;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max)
                return -1;
        return v;
}

static int write_all(int fd, const char *p, size_t n)
{
        while (n > 0) {
                ssize_t k = write(fd, p, n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return -1;
                p += k;
                n -= (size_t)k;
        }
        return 0;
}

/* Reads everything ready to stdout. Returns bytes moved, or -1. */
static long long drain(struct libxenvchan *c, char *buf)
{
        long long total = 0;
        int n;

        while ((n = libxenvchan_data_ready(c)) > 0) {
                int k = libxenvchan_read(c, buf, n < PEER_BUF ? (size_t)n : PEER_BUF);

                if (k <= 0)
                        return k < 0 ? -1 : total;
                if (write_all(STDOUT_FILENO, buf, (size_t)k) < 0)
                        return -1;
                total += k;
        }
        return total;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"close-on-eof", no_argument, NULL, 'q'},
                {"expect", required_argument, NULL, 'e'},
                {0},
        };
        static char inbuf[PEER_BUF], outbuf[PEER_BUF];
        long long expect = -1, received = 0;
        size_t pending = 0, pending_off = 0;
        bool close_on_eof = false, stdin_eof = false, server;
        struct libxenvchan *c = NULL;
        int opt, domid;

        while ((opt = getopt_long(argc, argv, "qe:", opts, NULL)) != -1) {
                if (opt == 'q') {
                        close_on_eof = true;
                } else if (opt == 'e') {
                        expect = parse_number(optarg, 0, LLONG_MAX);
                        if (expect < 0)
                                return 2;
                } else {
                        return 2;
                }
        }
        if (argc - optind != 3 && argc - optind != 5)
                return 2;
        server = strcmp(argv[optind], "server") == 0;
        domid = (int)parse_number(argv[optind + 1], 0, 0x7fef);
        if (domid < 0)
                return 2;
        (void)signal(SIGPIPE, SIG_IGN); /* cannot fail: a valid signal and handler */
        if (server) {
                size_t left = argc - optind == 5 ? strtoul(argv[optind + 3], NULL, 10) : 65536;
                size_t right = argc - optind == 5 ? strtoul(argv[optind + 4], NULL, 10) : 65536;

                c = libxenvchan_server_init(NULL, domid, argv[optind + 2], left, right);
        } else {
                /* wait for the server's keys, as vchan-socket-proxy does */
                for (int i = 0; i < 200 && !c; i++) {
                        c = libxenvchan_client_init(NULL, domid, argv[optind + 2]);
                        if (!c)
                                poll(NULL, 0, 50);
                }
        }
        if (!c) {
                fprintf(stderr, "xenvchan-peer: %s init failed: %s\n", server ? "server" : "client",
                        strerror(errno));
                return 1;
        }
        c->blocking = 0;

        for (;;) {
                struct pollfd pfd[2] = {
                        {.fd = libxenvchan_fd_for_select(c), .events = POLLIN},
                        {.fd = STDIN_FILENO, .events = POLLIN},
                };
                long long got;
                int open;

                got = drain(c, outbuf);
                if (got < 0) {
                        fprintf(stderr, "xenvchan-peer: read/stdout failed\n");
                        return 1;
                }
                received += got;
                open = libxenvchan_is_open(c);
                if (open == 0) {
                        /* our own final re-check of the ring after the peer closed */
                        if (drain(c, outbuf) < 0)
                                return 1;
                        libxenvchan_close(c);
                        return 0;
                }
                if (pending > 0) {
                        int k = libxenvchan_write(c, inbuf + pending_off, pending);

                        if (k < 0) {
                                fprintf(stderr, "xenvchan-peer: write failed\n");
                                return 1;
                        }
                        pending -= (size_t)k;
                        pending_off += (size_t)k;
                }
                if (stdin_eof && pending == 0 &&
                    (close_on_eof || (expect >= 0 && received >= expect))) {
                        libxenvchan_close(c);
                        return 0;
                }
                if (poll(pfd, (!stdin_eof && pending == 0) ? 2 : 1, 200) < 0 && errno != EINTR)
                        return 1;
                if (pfd[0].revents & POLLIN)
                        libxenvchan_wait(c);
                if (!stdin_eof && pending == 0 && (pfd[1].revents & (POLLIN | POLLHUP))) {
                        ssize_t k = read(STDIN_FILENO, inbuf, sizeof(inbuf));

                        if (k < 0 && errno != EINTR)
                                return 1;
                        if (k == 0)
                                stdin_eof = true;
                        if (k > 0) {
                                pending = (size_t)k;
                                pending_off = 0;
                        }
                }
        }
}
