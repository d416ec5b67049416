/*
 * vchan-bench: one end of a one-way vchan throughput run, with our vchan (libbus/vchan.c) or
 * Xen's libxenvchan, so that both are measured in the same run by bench/vchan/run.
 *
 *   vchan-bench ours|xen writer PEER_DOMID PATH MSG_SIZE RING_SIZE TOTAL_BYTES
 *   vchan-bench ours|xen reader PEER_DOMID PATH MSG_SIZE RING_SIZE TOTAL_BYTES
 *
 * The writer is the server (it creates both rings of RING_SIZE) and writes TOTAL_BYTES in
 * writes of MSG_SIZE bytes each: one API call per message with either implementation. The
 * reader is the client; it reads as much as is there each time, copying it out, until it has
 * TOTAL_BYTES, then sends one byte back so that the writer closes only after everything
 * arrived. Each prints one line:
 *   "impl role bytes seconds notifications events cpu_seconds voluntary_cs involuntary_cs"
 * where cpu is the user + system time of this process and the last two are its context
 * switches (sleeps, and preemptions by other processes), all three counted from the moment
 * the vchan is set up (writer: server created; reader: connected) to the end of the transfer,
 * so that setup (xenstore, grant mapping: about 2.5 ms per process) is not in them; seconds is
 * the reader's transfer time (0 for the writer).
 *
 * How each is driven is how each is meant to be used. libxenvchan: blocking mode,
 * libxenvchan_write per message, libxenvchan_read with a 64 KiB buffer. Ours: reserve/commit
 * per message with the event check batched (flush every 4 KiB and before sleeping),
 * peek/consume on the reader. Notifications are counted the same way for both: this
 * executable interposes xenevtchn_notify and xenevtchn_pending (libxenvchan.so's calls
 * resolve to these first) and forwards to the real libxenevtchn.
 */

#include <dlfcn.h>
#include <errno.h>
#include <libxenvchan.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <xenevtchn.h>

#include "vchan.h"

#define BENCH_READ_BUF   65536 /* reader copy-out buffer, both implementations */
#define BENCH_CONNECT_MS 10000 /* how long a reader waits for the writer's keys */
#define BENCH_WAIT_MS    1000  /* backstop poll timeout */
#define BENCH_BATCH      4096  /* writer: bytes committed between event checks */

static uint64_t n_notify, n_pending;

/* Interposed: counts every event sent by either implementation. */
int xenevtchn_notify(xenevtchn_handle *xce, evtchn_port_t port)
{
        static int (*real)(xenevtchn_handle *, evtchn_port_t);

        if (!real)
                real = (int (*)(xenevtchn_handle *, evtchn_port_t))dlsym(RTLD_NEXT,
                                                                         "xenevtchn_notify");
        n_notify++;
        return real(xce, port);
}

/* Interposed: counts every event received. */
xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *xce)
{
        static xenevtchn_port_or_error_t (*real)(xenevtchn_handle *);

        if (!real)
                real = (xenevtchn_port_or_error_t(*)(xenevtchn_handle *))dlsym(RTLD_NEXT,
                                                                               "xenevtchn_pending");
        n_pending++;
        return real(xce);
}

static double now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Resource use of this process over the transfer: started by span_begin, ended by span_end. */
typedef struct Span {
        double cpu;         /* user + system seconds */
        long n_voluntary;   /* sleeps */
        long n_involuntary; /* preemptions */
} Span;

static Span span_now(void)
{
        struct rusage ru;

        if (getrusage(RUSAGE_SELF, &ru) != 0)
                return (Span){0};
        return (Span){
                .cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6,
                .n_voluntary = ru.ru_nvcsw,
                .n_involuntary = ru.ru_nivcsw,
        };
}

static Span span;

static void span_begin(void)
{
        span = span_now();
}

static void span_end(void)
{
        Span e = span_now();

        span = (Span){
                .cpu = e.cpu - span.cpu,
                .n_voluntary = e.n_voluntary - span.n_voluntary,
                .n_involuntary = e.n_involuntary - span.n_involuntary,
        };
}

static void die(const char *what, int err)
{
        fprintf(stderr, "vchan-bench: %s: %s\n", what, strerror(err < 0 ? -err : err));
        exit(1);
}

static void copy_to_iov(const struct iovec iov[2], const uint8_t *src, size_t n)
{
        size_t a = iov[0].iov_len < n ? iov[0].iov_len : n;

        memcpy(iov[0].iov_base, src, a);
        memcpy(iov[1].iov_base, src + a, n - a);
}

static void ours_writer(uint32_t peer, const char *path, size_t msg, size_t ring, uint64_t total)
{
        uint8_t *buf = malloc(msg);
        /* one event check per BENCH_BATCH bytes (or quarter ring), not per message */
        size_t batch = ring / 4 < BENCH_BATCH ? ring / 4 : BENCH_BATCH;
        size_t since_flush = 0;
        uint64_t sent = 0;
        VbusVchan *v;
        uint8_t ack;
        int r;

        if (!buf)
                die("malloc", ENOMEM);
        memset(buf, 0x5a, msg);
        r = vbus__vchan_server_new(&v, peer, path, ring, ring);
        if (r < 0)
                die("server", r);
        span_begin();
        while (sent < total) {
                struct iovec iov[2];
                /* stream semantics, as libxenvchan_write: a write goes in as space allows */
                size_t left = msg - (size_t)(sent % msg);
                ssize_t k = vbus__vchan_reserve(v, 1, iov);

                if (k > 0) {
                        size_t n = (size_t)k < left ? (size_t)k : left;

                        copy_to_iov(iov, buf + (msg - left), n);
                        r = vbus__vchan_commit(v, n);
                        if (r < 0)
                                die("commit", r);
                        sent += n;
                        since_flush += n;
                        if (since_flush >= batch) {
                                since_flush = 0;
                                r = vbus__vchan_flush(v);
                                if (r < 0)
                                        die("flush", r);
                        }
                        continue;
                }
                if (k < 0 && k != -EAGAIN)
                        die("reserve", (int)k);
                since_flush = 0;
                r = vbus__vchan_wait(v, BENCH_WAIT_MS); /* flushes first */
                if (r < 0 && r != -ETIMEDOUT)
                        die("wait", r);
        }
        while (vbus__vchan_read(v, &ack, 1) == -EAGAIN)
                vbus__vchan_wait(v, BENCH_WAIT_MS);
        span_end();
        vbus__vchan_free(v);
        free(buf);
}

static void ours_reader(uint32_t peer, const char *path, uint64_t total, double *ret_secs)
{
        static uint8_t out[BENCH_READ_BUF];
        uint64_t got = 0;
        double t0 = 0;
        VbusVchan *v = NULL;
        int r;

        for (int i = 0; i < BENCH_CONNECT_MS / 10; i++) {
                r = vbus__vchan_client_new(&v, peer, path);
                if (r != -ENOENT)
                        break;
                poll(NULL, 0, 10);
        }
        if (r < 0)
                die("client", r);
        span_begin();
        t0 = now();
        while (got < total) {
                struct iovec iov[2];
                ssize_t k = vbus__vchan_peek(v, 1, iov);

                if (k > 0) {
                        /*
                         * Copy out and consume at most BENCH_READ_BUF at a time, as a
                         * libxenvchan_read with the same buffer does: space goes back to the
                         * writer as soon as each piece is copied.
                         */
                        size_t n = (size_t)k < sizeof(out) ? (size_t)k : sizeof(out);
                        size_t a = iov[0].iov_len < n ? iov[0].iov_len : n;

                        memcpy(out, iov[0].iov_base, a);
                        memcpy(out + a, iov[1].iov_base, n - a);
                        r = vbus__vchan_consume(v, n);
                        if (r < 0)
                                die("consume", r);
                        got += n;
                        r = vbus__vchan_flush(v);
                        if (r < 0)
                                die("flush", r);
                        continue;
                }
                if (k == 0)
                        die("peer closed early", EPIPE);
                if (k != -EAGAIN)
                        die("peek", (int)k);
                r = vbus__vchan_wait(v, BENCH_WAIT_MS);
                if (r < 0 && r != -ETIMEDOUT)
                        die("wait", r);
        }
        *ret_secs = now() - t0;
        if (vbus__vchan_write(v, "!", 1) != 1)
                die("ack", EIO);
        span_end();
        vbus__vchan_free(v);
}

static void xen_writer(uint32_t peer, const char *path, size_t msg, size_t ring, uint64_t total)
{
        uint8_t *buf = malloc(msg);
        struct libxenvchan *c;
        uint64_t sent = 0;
        uint8_t ack;

        if (!buf)
                die("malloc", ENOMEM);
        memset(buf, 0x5a, msg);
        c = libxenvchan_server_init(NULL, (int)peer, path, ring, ring);
        if (!c)
                die("libxenvchan_server_init", errno);
        c->blocking = 1;
        span_begin();
        while (sent < total) {
                if (libxenvchan_write(c, buf, msg) != (int)msg)
                        die("libxenvchan_write", EIO);
                sent += msg;
        }
        if (libxenvchan_read(c, &ack, 1) != 1)
                die("libxenvchan_read ack", EIO);
        span_end();
        libxenvchan_close(c);
        free(buf);
}

static void xen_reader(uint32_t peer, const char *path, uint64_t total, double *ret_secs)
{
        static uint8_t out[BENCH_READ_BUF];
        struct libxenvchan *c = NULL;
        uint64_t got = 0;
        double t0;

        for (int i = 0; i < BENCH_CONNECT_MS / 10 && !c; i++) {
                c = libxenvchan_client_init(NULL, (int)peer, path);
                if (!c)
                        poll(NULL, 0, 10);
        }
        if (!c)
                die("libxenvchan_client_init", errno);
        c->blocking = 1;
        span_begin();
        t0 = now();
        while (got < total) {
                int k = libxenvchan_read(c, out, sizeof(out));

                if (k <= 0)
                        die("libxenvchan_read", EIO);
                got += (uint64_t)k;
        }
        *ret_secs = now() - t0;
        if (libxenvchan_write(c, "!", 1) != 1)
                die("libxenvchan_write ack", EIO);
        span_end();
        libxenvchan_close(c);
}

int main(int argc, char **argv)
{
        uint32_t peer, msg, ring;
        unsigned long long total;
        double secs = 0;
        bool ours, writer;

        if (argc != 8) {
                fprintf(stderr, "usage: vchan-bench ours|xen writer|reader PEER_DOMID PATH "
                                "MSG_SIZE RING_SIZE TOTAL_BYTES\n");
                return 2;
        }
        ours = strcmp(argv[1], "ours") == 0;
        writer = strcmp(argv[2], "writer") == 0;
        peer = (uint32_t)strtoul(argv[3], NULL, 10);
        msg = (uint32_t)strtoul(argv[5], NULL, 10);
        ring = (uint32_t)strtoul(argv[6], NULL, 10);
        total = strtoull(argv[7], NULL, 10);
        if (msg == 0 || msg > ring || total % msg != 0)
                return 2;
        if (writer) {
                if (ours)
                        ours_writer(peer, argv[4], msg, ring, total);
                else
                        xen_writer(peer, argv[4], msg, ring, total);
        } else {
                if (ours)
                        ours_reader(peer, argv[4], total, &secs);
                else
                        xen_reader(peer, argv[4], total, &secs);
        }
        printf("%s %s %llu %.6f %llu %llu %.6f %ld %ld\n", argv[1], argv[2], total, secs,
               (unsigned long long)n_notify, (unsigned long long)n_pending, span.cpu,
               span.n_voluntary, span.n_involuntary);
        return 0;
}
