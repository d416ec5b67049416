/*
 * xs-bench: xenstore operations per second against a running xensimd (or any xenstored
 * socket). One connection, one request in flight at a time, as libxenstore clients work:
 * the figure is round trips per second, per operation type.
 *
 *   xs-bench [--dir D] [--domid N] [--socket PATH] [--seconds S]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <xen/io/xs_wire.h>

#include "xs-wire.h"

typedef struct Bench {
        int fd;
        const char *base; /* directory the benchmark works in */
        uint32_t req_id;
        uint8_t buf[XS_WIRE_HEADER_SIZE + XS_PAYLOAD_MAX];
} Bench;

static uint64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int full_io(int fd, void *p, size_t n, bool wr)
{
        uint8_t *b = p;

        while (n) {
                ssize_t r = wr ? send(fd, b, n, MSG_NOSIGNAL) : recv(fd, b, n, 0);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return -EIO;
                b += r;
                n -= (size_t)r;
        }
        return 0;
}

/* One request, one reply (watch events are skipped). Returns 0 or -errno from XS_ERROR. */
static int call(Bench *b, uint32_t type, const void *a, size_t na, const void *c, size_t nc)
{
        XsHeader h = {.type = type, .req_id = ++b->req_id, .len = (uint32_t)(na + nc)};
        uint8_t hdr[XS_WIRE_HEADER_SIZE];

        xs_wire_encode_header(&h, hdr);
        if (full_io(b->fd, hdr, sizeof(hdr), true) || full_io(b->fd, (void *)a, na, true) ||
            full_io(b->fd, (void *)c, nc, true))
                return -EIO;
        for (;;) {
                XsHeader rh;
                size_t size;

                if (full_io(b->fd, b->buf, XS_WIRE_HEADER_SIZE, false))
                        return -EIO;
                memcpy(&rh.len, b->buf + 12, 4);
                if (rh.len > XS_PAYLOAD_MAX ||
                    full_io(b->fd, b->buf + XS_WIRE_HEADER_SIZE, rh.len, false))
                        return -EIO;
                if (xs_wire_frame(b->buf, XS_WIRE_HEADER_SIZE + rh.len, &rh, &size) < 0)
                        return -EIO;
                if (rh.type == XS_WATCH_EVENT)
                        continue;
                if (rh.type == XS_ERROR)
                        return -xs_wire_error_from_name((const char *)b->buf + 16, rh.len);
                return 0;
        }
}

static double run_op(Bench *b, const char *name, double seconds, int (*op)(Bench *, uint64_t))
{
        uint64_t start = now_us(), end = start + (uint64_t)(seconds * 1e6), n = 0, t;

        do {
                for (int i = 0; i < 64; i++, n++) {
                        int r = op(b, n);

                        if (r < 0) {
                                fprintf(stderr, "xs-bench: %s failed: %s\n", name, strerror(-r));
                                exit(1);
                        }
                }
                t = now_us();
        } while (t < end);
        printf("%-10s %10.0f ops/s  (%" PRIu64 " ops in %.2f s)\n", name,
               (double)n * 1e6 / (double)(t - start), n, (double)(t - start) / 1e6);
        return (double)n * 1e6 / (double)(t - start);
}

/* The key of operation i: base/<prefix><i mod 100>. False if it does not fit. */
static bool bench_path(const Bench *b, char prefix, uint64_t i, char *buf, size_t size)
{
        int n = snprintf(buf, size, "%s/%c%" PRIu64, b->base, prefix, i % 100);

        return n > 0 && (size_t)n < size;
}

static int op_write(Bench *b, uint64_t i)
{
        char path[64], val[32];
        int n = snprintf(val, sizeof(val), "%" PRIu64, i);

        if (!bench_path(b, 'k', i, path, sizeof(path)))
                return -ENAMETOOLONG;
        return call(b, XS_WRITE, path, strlen(path) + 1, val, (size_t)n);
}

static int op_read(Bench *b, uint64_t i)
{
        char path[64];

        if (!bench_path(b, 'k', i, path, sizeof(path)))
                return -ENAMETOOLONG;
        return call(b, XS_READ, path, strlen(path) + 1, NULL, 0);
}

static int op_dir(Bench *b, uint64_t i)
{
        (void)i;
        return call(b, XS_DIRECTORY, b->base, strlen(b->base) + 1, NULL, 0);
}

static int op_txn(Bench *b, uint64_t i)
{
        char end_commit[] = "T"; /* TRANSACTION_END's argument: commit */
        uint32_t saved;
        char path[64], val[32];
        int r = call(b, XS_TRANSACTION_START, "", 1, NULL, 0), n;
        XsHeader h;

        if (r < 0)
                return r;
        saved = (uint32_t)strtoul((const char *)b->buf + 16, NULL, 10);
        n = snprintf(val, sizeof(val), "%" PRIu64, i);
        if (!bench_path(b, 't', i, path, sizeof(path)))
                return -ENAMETOOLONG;
        /* Requests inside the transaction carry its id in the header. */
        h = (XsHeader){.type = XS_WRITE,
                       .req_id = ++b->req_id,
                       .tx_id = saved,
                       .len = (uint32_t)(strlen(path) + 1 + (size_t)n)};
        {
                uint8_t hdr[XS_WIRE_HEADER_SIZE];

                xs_wire_encode_header(&h, hdr);
                if (full_io(b->fd, hdr, sizeof(hdr), true) ||
                    full_io(b->fd, path, strlen(path) + 1, true) ||
                    full_io(b->fd, val, (size_t)n, true) ||
                    full_io(b->fd, b->buf, XS_WIRE_HEADER_SIZE, false))
                        return -EIO;
                memcpy(&h.len, b->buf + 12, 4);
                if (h.len > XS_PAYLOAD_MAX || full_io(b->fd, b->buf + 16, h.len, false))
                        return -EIO;
                h = (XsHeader){.type = XS_TRANSACTION_END,
                               .req_id = ++b->req_id,
                               .tx_id = saved,
                               .len = 2};
                xs_wire_encode_header(&h, hdr);
                if (full_io(b->fd, hdr, sizeof(hdr), true) ||
                    full_io(b->fd, end_commit, sizeof(end_commit), true) ||
                    full_io(b->fd, b->buf, XS_WIRE_HEADER_SIZE, false))
                        return -EIO;
                memcpy(&h.len, b->buf + 12, 4);
                if (h.len > XS_PAYLOAD_MAX || full_io(b->fd, b->buf + 16, h.len, false))
                        return -EIO;
        }
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"dir", required_argument, NULL, 'd'},    {"domid", required_argument, NULL, 'n'},
                {"socket", required_argument, NULL, 's'}, {"seconds", required_argument, NULL, 't'},
                {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
        };
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        const char *dir = getenv("XENSIM_DIR"), *sock = NULL;
        unsigned long domid = 0;
        double seconds = 2.0;
        Bench b = {0};
        char *end;
        int opt, n;

        while ((opt = getopt_long(argc, argv, "d:n:s:t:h", opts, NULL)) != -1) {
                switch (opt) {
                case 'd':
                        dir = optarg;
                        break;
                case 'n':
                        domid = strtoul(optarg, NULL, 10);
                        break;
                case 's':
                        sock = optarg;
                        break;
                case 't':
                        seconds = strtod(optarg, &end);
                        if (end == optarg || *end || !(seconds > 0 && seconds < 3600)) {
                                fprintf(stderr, "xs-bench: --seconds wants a number of seconds "
                                                "in (0, 3600)\n");
                                return 2;
                        }
                        break;
                case 'h':
                        printf("Usage: xs-bench [--dir D] [--domid N] [--socket PATH] "
                               "[--seconds S]\n"
                               "Measures xenstore round trips per second (write, read, "
                               "directory, transaction) as domain N (default 0).\n");
                        return 0;
                default:
                        return 2;
                }
        }
        if (sock)
                n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
        else if (dir && *dir)
                n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/dom%lu.sock", dir, domid);
        else
                n = snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/xensim-%u/dom%lu.sock",
                             (unsigned)getuid(), domid);
        if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
                fprintf(stderr, "xs-bench: socket path too long: %s...\n", sa.sun_path);
                return 2;
        }
        b.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (b.fd < 0 || connect(b.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                fprintf(stderr, "xs-bench: cannot connect to %s: %s\n", sa.sun_path,
                        strerror(errno));
                return 1;
        }
        /* A domain may write only below its data/ directory. */
        b.base = domid != 0 ? "data/xs-bench" : "xs-bench";
        printf("xs-bench: %s, one request in flight, %.1f s per operation\n", sa.sun_path, seconds);
        run_op(&b, "write", seconds, op_write);
        run_op(&b, "read", seconds, op_read);
        run_op(&b, "directory", seconds, op_dir);
        run_op(&b, "txn-write", seconds, op_txn);
        call(&b, XS_RM, b.base, strlen(b.base) + 1, NULL, 0);
        close(b.fd);
        return 0;
}
