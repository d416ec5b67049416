/*
 * vchan-cat: pipes stdin and stdout over one vchan, with vbus's own vchan implementation
 * (libbus/vchan.c), as server or client. Mirrors Xen's vchan-node2 and ocaml-vchan's xencat;
 * used by users to debug vchans and by our interop and real-Xen tests.
 *
 * Data moves without intermediate buffers: stdin is read straight into reserved ring space
 * and the readable part of the ring is written straight to stdout. One poll() loop drives
 * stdin, the event-channel fd and a periodic re-check (a lost wakeup from a broken peer can
 * delay us by at most VCHAN_CAT_RECHECK_MS, never hang us).
 */

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "vchan.h"

#define VCHAN_CAT_RECHECK_MS      1000  /* backstop against lost wakeups */
#define VCHAN_CAT_RETRY_MS        50    /* client: interval between connection attempts */
#define VCHAN_CAT_DEFAULT_SIZE    65536 /* ring bytes each way, as vchan-node2 */
#define VCHAN_CAT_MIN_SIZE        1024
#define VCHAN_CAT_MAX_SIZE        1048576
#define VCHAN_CAT_DEFAULT_TIMEOUT 10 /* seconds a client waits for the server's keys */

static const char usage_text[] =
        "Usage: vchan-cat [OPTIONS] server DOMID PATH [LEFT_SIZE RIGHT_SIZE]\n"
        "       vchan-cat [OPTIONS] client DOMID PATH\n"
        "\n"
        "Copies stdin into a vchan and the vchan to stdout, using vbus's own vchan\n"
        "implementation (wire-compatible with Xen's libxenvchan and ocaml-vchan).\n"
        "\n"
        "  server DOMID PATH   grant the rings to domain DOMID (the client's domain) and\n"
        "                      publish PATH/ring-ref and PATH/event-channel, readable by\n"
        "                      DOMID only; PATH is removed again on exit\n"
        "  client DOMID PATH   connect to the server in domain DOMID that published at PATH\n"
        "  PATH                absolute xenstore directory, conventionally\n"
        "                      /local/domain/<server>/data/vchan/<client>/<port>\n"
        "  LEFT_SIZE           client->server ring bytes (default 65536)\n"
        "  RIGHT_SIZE          server->client ring bytes (default 65536)\n"
        "                      sizes: 1024..1048576, rounded up to a power of two, placed\n"
        "                      exactly as libxenvchan places them\n"
        "\n"
        "Options:\n"
        "  -q, --close-on-eof  close the vchan as soon as everything read from stdin is\n"
        "                      committed to the ring (default: at stdin EOF keep reading\n"
        "                      until the peer closes)\n"
        "  -t, --timeout SEC   client: how long to wait for the server's xenstore keys\n"
        "                      (default 10)\n"
        "  -h, --help          this text\n"
        "\n"
        "When the peer closes, the rest of the ring is drained to stdout (nothing the peer\n"
        "committed is lost) and vchan-cat exits 0. Errors (keys missing after the timeout,\n"
        "a protocol violation by the peer, I/O errors) print one line on stderr and exit 1;\n"
        "usage errors exit 2.\n";

static int usage_error(const char *msg)
{
        fprintf(stderr, "vchan-cat: %s (see --help)\n", msg);
        return 2;
}

static int fail(const char *what, int err)
{
        if (err == -EPROTO)
                fprintf(stderr, "vchan-cat: %s: protocol violation by the peer\n", what);
        else
                fprintf(stderr, "vchan-cat: %s: %s\n", what, strerror(-err));
        return 1;
}

static int parse_size(const char *s, size_t *ret)
{
        uint32_t v;

        if (vbus__vchan_parse_uint(s, strlen(s), VCHAN_CAT_MAX_SIZE, &v) < 0 ||
            v < VCHAN_CAT_MIN_SIZE)
                return -EINVAL;
        *ret = v;
        return 0;
}

static uint64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int connect_client(VbusVchan **ret, uint32_t domid, const char *path, unsigned timeout_s)
{
        uint64_t deadline = now_ms() + (uint64_t)timeout_s * 1000;
        int r;

        for (;;) {
                r = vbus__vchan_client_new(ret, domid, path);
                if (r != -ENOENT)
                        return r;
                if (now_ms() >= deadline)
                        return r;
                poll(NULL, 0, VCHAN_CAT_RETRY_MS);
        }
}

/* Writes everything readable to stdout. Returns 1 at end of stream, 0, or -errno. */
static int drain_to_stdout(VbusVchan *v)
{
        for (;;) {
                struct iovec iov[2];
                ssize_t k = vbus__vchan_peek(v, 1, iov);
                ssize_t n;

                if (k == 0)
                        return 1;
                if (k == -EAGAIN)
                        return 0;
                if (k < 0)
                        return (int)k;
                do {
                        n = writev(STDOUT_FILENO, iov, iov[1].iov_len ? 2 : 1);
                } while (n < 0 && errno == EINTR);
                if (n < 0)
                        return -errno;
                k = vbus__vchan_consume(v, (size_t)n);
                if (k < 0)
                        return (int)k;
        }
}

/* Reads what stdin has into reserved ring space. Returns 1 at stdin EOF, 0, or -errno. */
static int fill_from_stdin(VbusVchan *v)
{
        struct iovec iov[2];
        ssize_t k = vbus__vchan_reserve(v, 1, iov);
        ssize_t n;

        if (k == -EAGAIN || k == -EPIPE)
                return 0;
        if (k < 0)
                return (int)k;
        do {
                n = readv(STDIN_FILENO, iov, iov[1].iov_len ? 2 : 1);
        } while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        if (n == 0)
                return 1;
        return vbus__vchan_commit(v, (size_t)n);
}

static int run(VbusVchan *v, bool close_on_eof)
{
        bool stdin_eof = false;
        int r;

        for (;;) {
                struct pollfd pfd[2] = {
                        {.fd = vbus__vchan_get_fd(v), .events = POLLIN},
                        {.fd = STDIN_FILENO, .events = POLLIN},
                };
                struct iovec iov[2];
                bool want_stdin = false;
                ssize_t space;

                r = drain_to_stdout(v);
                if (r < 0)
                        return fail(r == -EPROTO ? "read" : "stdout", r);
                if (r == 1) {
                        /* the peer closed and the ring is empty after the final re-check */
                        vbus__vchan_flush(v);
                        return 0;
                }
                if (!stdin_eof) {
                        space = vbus__vchan_reserve(v, 1, iov);
                        if (space == -EPROTO)
                                return fail("write", (int)space);
                        want_stdin = space > 0;
                }
                r = vbus__vchan_flush(v);
                if (r < 0)
                        return fail("notify", r);
                if (stdin_eof && close_on_eof) {
                        vbus__vchan_close(v);
                        return 0;
                }
                r = poll(pfd, want_stdin ? 2 : 1, VCHAN_CAT_RECHECK_MS);
                if (r < 0 && errno != EINTR)
                        return fail("poll", -errno);
                if (r <= 0)
                        continue;
                if (pfd[0].revents) {
                        r = vbus__vchan_process(v);
                        if (r < 0)
                                return fail("event channel", r);
                }
                if (want_stdin && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))) {
                        r = fill_from_stdin(v);
                        if (r < 0)
                                return fail(r == -EPROTO ? "write" : "stdin", r);
                        if (r == 1)
                                stdin_eof = true;
                }
        }
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"close-on-eof", no_argument, NULL, 'q'},
                {"timeout", required_argument, NULL, 't'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        size_t left = VCHAN_CAT_DEFAULT_SIZE, right = VCHAN_CAT_DEFAULT_SIZE;
        uint32_t timeout = VCHAN_CAT_DEFAULT_TIMEOUT, domid;
        bool close_on_eof = false, server;
        VbusVchan *v = NULL;
        const char *path;
        int c, r, nargs;

        while ((c = getopt_long(argc, argv, "qt:h", opts, NULL)) != -1) {
                switch (c) {
                case 'q':
                        close_on_eof = true;
                        break;
                case 't':
                        if (vbus__vchan_parse_uint(optarg, strlen(optarg), 86400, &timeout) < 0)
                                return usage_error("--timeout wants whole seconds, 0..86400");
                        break;
                case 'h':
                        fputs(usage_text, stdout);
                        return 0;
                default:
                        return usage_error("unknown option");
                }
        }
        nargs = argc - optind;
        if (nargs < 3)
                return usage_error("missing arguments");
        if (strcmp(argv[optind], "server") == 0)
                server = true;
        else if (strcmp(argv[optind], "client") == 0)
                server = false;
        else
                return usage_error("first argument must be 'server' or 'client'");
        if ((server && nargs != 3 && nargs != 5) || (!server && nargs != 3))
                return usage_error("wrong number of arguments");
        if (vbus__vchan_parse_uint(argv[optind + 1], strlen(argv[optind + 1]), VBUS_VCHAN_DOMID_MAX,
                                   &domid) < 0)
                return usage_error("DOMID must be a domain id (0..32751)");
        path = argv[optind + 2];
        if (!vbus__vchan_path_is_valid(path))
                return usage_error("PATH must be an absolute xenstore path");
        if (nargs == 5 &&
            (parse_size(argv[optind + 3], &left) < 0 || parse_size(argv[optind + 4], &right) < 0))
                return usage_error("ring sizes must be 1024..1048576");

        (void)signal(SIGPIPE, SIG_IGN); /* cannot fail: a valid signal and handler */
        if (server)
                r = vbus__vchan_server_new(&v, domid, path, left, right);
        else
                r = connect_client(&v, domid, path, timeout);
        if (r < 0) {
                if (r == -ENOENT && !server)
                        fprintf(stderr, "vchan-cat: no vchan at %s in domain %u after %u s\n", path,
                                domid, timeout);
                else if (r == -ENOENT)
                        fprintf(stderr, "vchan-cat: cannot read our own domid from xenstore\n");
                else
                        fail(server ? "server setup" : "client connect", r);
                return 1;
        }
        r = run(v, close_on_eof);
        vbus__vchan_free(v);
        return r;
}
