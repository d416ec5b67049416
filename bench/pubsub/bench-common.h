/* SPDX-License-Identifier: MIT */
/*
 * bench-common.h: what the pub/sub benchmark programs share: the clock, the message layout and
 * the report lines the run script parses.
 *
 * Every message starts with its 64-bit sequence number (1, 2, ...), so a subscriber can count
 * what was lost or reordered without any other cost per message; the rest is filler. Times are
 * CLOCK_MONOTONIC nanoseconds, comparable between processes of the same host (xensim domains
 * are processes of one kernel), so the run script takes the elapsed time of a run as the last
 * receipt over all subscribers minus the publisher's first send.
 *
 * Latency mode (environment BENCH_INTERVAL_US=N, N > 0, for publisher and subscribers): the
 * publisher writes its send time into bytes 8..15 of each message (size >= BENCH_LAT_MIN_SIZE),
 * sends each message at once (no batching of its own, a flush after each) and sleeps N us
 * between messages, so that each finds an idle bus; each subscriber records receipt minus send
 * time per message and adds lat_p50_ns= and lat_p99_ns= to its result line.
 */
#ifndef BENCH_PUBSUB_COMMON_H
#define BENCH_PUBSUB_COMMON_H

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* The smallest message: room for the sequence number. */
#define BENCH_MIN_SIZE 8
/* The smallest message in latency mode: the sequence number, then the send time. */
#define BENCH_LAT_MIN_SIZE 16

static inline uint64_t bench_now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time this process used so far (all threads, user + system), in microseconds. */
static inline uint64_t bench_cpu_us(void)
{
        struct rusage ru;

        if (getrusage(RUSAGE_SELF, &ru) < 0)
                return 0;
        return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
               (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* Per-subscriber tally of what arrived. */
typedef struct BenchTally {
        uint64_t expected;  /* next sequence number expected */
        uint64_t received;  /* messages received */
        uint64_t lost;      /* sequence numbers skipped (never received) */
        uint64_t reordered; /* messages with a sequence number at or below one already seen */
        uint64_t dropped;   /* losses the bus itself reported (vbus DROP counts) */
        uint64_t first_ns, last_ns;
        bool latency;  /* latency mode: record each message's latency */
        uint64_t *lat; /* latencies in ns, n_lat of cap_lat */
        size_t n_lat, cap_lat;
} BenchTally;

/* Latency mode's pause between messages, in us; 0 outside latency mode. */
static inline uint64_t bench_interval_us(void)
{
        const char *e = getenv("BENCH_INTERVAL_US");

        return e ? strtoull(e, NULL, 10) : 0;
}

/* Latency mode: the send time, in bytes 8..15 of @buf, just before it is sent. */
static inline void bench_buf_stamp(uint8_t *buf, size_t size)
{
        uint64_t now = bench_now_ns();

        if (size >= BENCH_LAT_MIN_SIZE)
                memcpy(buf + 8, &now, sizeof(now));
}

static inline void bench_pause_us(uint64_t us)
{
        struct timespec ts = {.tv_sec = (time_t)(us / 1000000u),
                              .tv_nsec = (long)(us % 1000000u) * 1000};

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static inline void bench_tally_init(BenchTally *t)
{
        memset(t, 0, sizeof(*t));
        t->expected = 1;
        t->latency = bench_interval_us() > 0;
}

static inline void bench_tally_add(BenchTally *t, const void *data, size_t size)
{
        uint64_t seq = 0;

        t->last_ns = bench_now_ns();
        if (t->received++ == 0)
                t->first_ns = t->last_ns;
        if (size < BENCH_MIN_SIZE) {
                t->reordered++;
                return;
        }
        memcpy(&seq, data, sizeof(seq));
        if (t->latency && size >= BENCH_LAT_MIN_SIZE) {
                uint64_t sent;

                memcpy(&sent, (const uint8_t *)data + 8, sizeof(sent));
                if (t->n_lat == t->cap_lat) {
                        size_t cap = t->cap_lat ? t->cap_lat * 2 : 4096;
                        uint64_t *lat = realloc(t->lat, cap * sizeof(*lat));

                        if (!lat) {
                                fprintf(stderr, "bench: out of memory for latencies\n");
                                exit(1);
                        }
                        t->lat = lat;
                        t->cap_lat = cap;
                }
                t->lat[t->n_lat++] = t->last_ns > sent ? t->last_ns - sent : 0;
        }
        if (seq < t->expected) {
                t->reordered++;
                return;
        }
        t->lost += seq - t->expected;
        t->expected = seq + 1;
}

/* Messages accounted for: received, or known lost because a later one arrived. */
static inline uint64_t bench_tally_done(const BenchTally *t)
{
        return t->received + t->lost;
}

/* The result lines are what the driver reads: losing one is fatal. */
static inline void bench_flush(void)
{
        if (fflush(stdout) != 0 || ferror(stdout)) {
                fprintf(stderr, "bench: cannot write the results: %s\n", strerror(errno));
                exit(1);
        }
}

static inline int bench_cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return x < y ? -1 : x > y;
}

static inline void bench_tally_print(BenchTally *t, uint64_t count)
{
        /* Messages still missing at the end (the tail) are lost too. */
        uint64_t tail = count > bench_tally_done(t) ? count - bench_tally_done(t) : 0;

        printf("sub received=%" PRIu64 " lost=%" PRIu64 " reordered=%" PRIu64 " dropped=%" PRIu64
               " first_ns=%" PRIu64 " last_ns=%" PRIu64 " cpu_us=%" PRIu64,
               t->received, t->lost + tail, t->reordered, t->dropped, t->first_ns, t->last_ns,
               bench_cpu_us());
        if (t->n_lat > 0) {
                qsort(t->lat, t->n_lat, sizeof(*t->lat), bench_cmp_u64);
                printf(" lat_p50_ns=%" PRIu64 " lat_p99_ns=%" PRIu64, t->lat[t->n_lat / 2],
                       t->lat[(t->n_lat * 99) / 100]);
        }
        printf("\n");
        free(t->lat);
        t->lat = NULL;
        t->n_lat = t->cap_lat = 0;
        bench_flush();
}

static inline void bench_pub_print(uint64_t sent, uint64_t start_ns, uint64_t end_ns)
{
        printf("pub sent=%llu start_ns=%llu end_ns=%llu cpu_us=%llu\n", (unsigned long long)sent,
               (unsigned long long)start_ns, (unsigned long long)end_ns,
               (unsigned long long)bench_cpu_us());
        bench_flush();
}

/* A message buffer of @size bytes of filler; the caller writes the sequence number. */
static inline uint8_t *bench_buf_new(size_t size)
{
        uint8_t *buf = malloc(size < BENCH_MIN_SIZE ? BENCH_MIN_SIZE : size);

        if (buf)
                for (size_t i = 0; i < size; i++)
                        buf[i] = (uint8_t)(i * 7 + 1);
        return buf;
}

static inline void bench_buf_seq(uint8_t *buf, uint64_t seq)
{
        memcpy(buf, &seq, sizeof(seq));
}

/* Creates @path (if not NULL) to tell the run script this process is ready. */
static inline int bench_ready(const char *path)
{
        FILE *f;

        if (!path)
                return 0;
        f = fopen(path, "w");
        if (!f)
                return -1;
        return fclose(f) == 0 ? 0 : -1;
}

static inline int bench_parse_u64(const char *s, uint64_t *ret)
{
        char *end;
        unsigned long long v;

        if (!s || !*s)
                return -1;
        v = strtoull(s, &end, 10);
        if (*end)
                return -1;
        *ret = v;
        return 0;
}

#endif
