/*
 * xensim-hv-vchan-bench: stream throughput of Xen's own libxenvchan (Debian's, unmodified)
 * with chosen ring sizes, which vchan-socket-proxy does not let one choose (it asks for the
 * smallest rings). Run the server in one domain and the client in another with `xensim run`:
 *
 *   xensim-hv-vchan-bench server PEER_DOMID XS_PATH RING_BYTES TOTAL_BYTES
 *   xensim-hv-vchan-bench client SERVER_DOMID XS_PATH TOTAL_BYTES
 *
 * The server writes TOTAL_BYTES of a counting pattern; the client reads them, checks every
 * byte and prints "MB/s <value>" (10^6 bytes per second, first to last byte). Each side waits
 * for a one-byte acknowledgement before closing so that no data is discarded at close.
 */
#include <errno.h>
#include <inttypes.h>
#include <libxenvchan.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_CHUNK 65536

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench_server(int peer, const char *path, size_t ring, uint64_t total)
{
        static uint8_t buf[BENCH_CHUNK];
        struct libxenvchan *v = libxenvchan_server_init(NULL, peer, path, ring, ring);
        uint64_t sent = 0;
        char ack;

        if (!v) {
                perror("libxenvchan_server_init");
                return 1;
        }
        v->blocking = -1; /* a signed 1-bit field: -1 is "set" */
        while (libxenvchan_is_open(v) != 1)
                libxenvchan_wait(v);
        while (sent < total) {
                size_t n = total - sent < sizeof(buf) ? (size_t)(total - sent) : sizeof(buf);
                int w;

                for (size_t i = 0; i < n; i++)
                        buf[i] = (uint8_t)(sent + i);
                w = libxenvchan_write(v, buf, n);
                if (w <= 0) {
                        fprintf(stderr, "vchan write failed\n");
                        return 1;
                }
                /* Blocking write sends everything; keep the pattern keyed on the offset. */
                sent += (uint64_t)w;
        }
        if (libxenvchan_read(v, &ack, 1) != 1)
                fprintf(stderr, "no acknowledgement from the client\n");
        libxenvchan_close(v);
        return 0;
}

static int bench_client(int server, const char *path, uint64_t total)
{
        static uint8_t buf[BENCH_CHUNK];
        struct libxenvchan *v = libxenvchan_client_init(NULL, server, path);
        uint64_t got = 0;
        double t0 = 0;
        char ack = 1;

        if (!v) {
                perror("libxenvchan_client_init");
                return 1;
        }
        v->blocking = -1; /* a signed 1-bit field: -1 is "set" */
        while (got < total) {
                int r = libxenvchan_read(v, buf, sizeof(buf));

                if (r <= 0) {
                        fprintf(stderr, "vchan read failed after %llu bytes\n",
                                (unsigned long long)got);
                        return 1;
                }
                if (got == 0)
                        t0 = now_s();
                for (int i = 0; i < r; i++) {
                        if (buf[i] != (uint8_t)(got + (uint64_t)i)) {
                                fprintf(stderr, "data differ at byte %" PRIu64 "\n",
                                        got + (uint64_t)i);
                                return 1;
                        }
                }
                got += (uint64_t)r;
        }
        printf("MB/s %.1f\n", (double)total / 1e6 / (now_s() - t0));
        libxenvchan_write(v, &ack, 1);
        libxenvchan_close(v);
        return 0;
}

/* A domain id (decimal, 0..65535), or -1. */
static int parse_domid(const char *s)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < 0 || v > 65535)
                return -1;
        return (int)v;
}

int main(int argc, char **argv)
{
        int domid = argc >= 3 ? parse_domid(argv[2]) : -1;

        if (argc == 6 && !strcmp(argv[1], "server") && domid >= 0)
                return bench_server(domid, argv[3], strtoull(argv[4], NULL, 0),
                                    strtoull(argv[5], NULL, 0));
        if (argc == 5 && !strcmp(argv[1], "client") && domid >= 0)
                return bench_client(domid, argv[3], strtoull(argv[4], NULL, 0));
        fprintf(stderr, "usage: %s server PEER PATH RING_BYTES TOTAL | client SERVER PATH TOTAL\n",
                argv[0]);
        return 2;
}
