/* SPDX-License-Identifier: MIT */
/*
 * rpc-common.h: what the RPC benchmark programs share: the clock, the 64-byte call layout, the
 * two measurements and the report line the run script parses.
 *
 * Every request starts with its 64-bit call number; the server echoes the first 8 bytes into a
 * reply of the same size, so the caller can match replies to calls when several are in flight.
 *
 * A caller runs two phases, one after the other on the same connection:
 *   1. LAT calls one at a time (after WARM calls that are not counted): the round-trip time of
 *      each, from just before the request is handed to the library to the reply in hand;
 *   2. TPUT calls with RPC_INFLIGHT in flight: a new call as soon as one ends; calls per second
 *      over the whole phase.
 * It prints "rpc p50_us=... p99_us=... calls_s=... cpu_us=..." (cpu_us: this process, both
 * phases).
 */
#ifndef BENCH_RPC_COMMON_H
#define BENCH_RPC_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

enum {
        RPC_SIZE = 64,     /* request and reply size */
        RPC_INFLIGHT = 16, /* calls in flight in the throughput phase */
};

typedef struct RpcPlan {
        uint64_t warm, lat, tput;
        const char *ready; /* --ready FILE: created once a server serves; NULL if not given */
} RpcPlan;

static inline uint64_t rpc_now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t rpc_cpu_us(void)
{
        struct rusage ru;

        if (getrusage(RUSAGE_SELF, &ru) < 0)
                return 0;
        return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
               (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* A request: the call number then filler. */
static inline void rpc_fill(uint8_t *buf, uint64_t id)
{
        for (size_t i = 8; i < RPC_SIZE; i++)
                buf[i] = (uint8_t)(i * 7 + 1);
        memcpy(buf, &id, sizeof(id));
}

static inline uint64_t rpc_id(const void *buf)
{
        uint64_t id;

        memcpy(&id, buf, sizeof(id));
        return id;
}

static int rpc_cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return x < y ? -1 : x > y;
}

/* Sorts @lat_ns (@n round trips) and prints the report line. */
static inline void rpc_report(uint64_t *lat_ns, uint64_t n, uint64_t tput_calls, uint64_t tput_ns)
{
        double p50 = 0, p99 = 0;

        if (n) {
                uint64_t i50 = n / 2, i99 = n * 99 / 100 < n ? n * 99 / 100 : n - 1;

                qsort(lat_ns, n, sizeof(*lat_ns), rpc_cmp_u64);
                p50 = (double)lat_ns[i50] / 1000.0;
                p99 = (double)lat_ns[i99] / 1000.0;
        }
        printf("rpc p50_us=%.1f p99_us=%.1f calls_s=%.0f cpu_us=%llu\n", p50, p99,
               tput_ns ? (double)tput_calls * 1e9 / (double)tput_ns : 0.0,
               (unsigned long long)rpc_cpu_us());
        /* The report line is what the driver reads: losing it is fatal. */
        if (fflush(stdout) != 0 || ferror(stdout)) {
                fprintf(stderr, "rpc-bench: cannot write the report: %s\n", strerror(errno));
                exit(1);
        }
}

static inline int rpc_parse_plan(int argc, char **argv, RpcPlan *p)
{
        char *end;

        p->warm = 1000;
        p->lat = 20000;
        p->tput = 100000;
        p->ready = NULL;
        for (int i = 0; i + 1 < argc; i++) {
                uint64_t *dst = NULL;

                if (strcmp(argv[i], "--ready") == 0)
                        p->ready = argv[++i];
                else if (strcmp(argv[i], "--warm") == 0)
                        dst = &p->warm;
                else if (strcmp(argv[i], "--lat") == 0)
                        dst = &p->lat;
                else if (strcmp(argv[i], "--tput") == 0)
                        dst = &p->tput;
                if (dst) {
                        *dst = strtoull(argv[++i], &end, 10);
                        if (*end)
                                return -1;
                }
        }
        return 0;
}

/*
 * A caller, seen by the driver: @send starts call @id with the 64-byte @req (it must not block
 * for long: up to RPC_INFLIGHT calls are outstanding); @wait blocks until at least one reply
 * arrived and writes the call numbers of the replies to @ids (at most @max), returning how many
 * (> 0), or < 0 on failure.
 */
typedef struct RpcOps {
        int (*send)(void *ctx, uint64_t id, const uint8_t *req);
        int (*wait)(void *ctx, uint64_t *ids, int max);
} RpcOps;

/* Runs both phases of @plan with @ops and prints the report line. Return: 0 or -1. */
static inline int rpc_drive(const RpcOps *ops, void *ctx, const RpcPlan *plan, const char *who)
{
        uint8_t req[RPC_SIZE];
        uint64_t ids[RPC_INFLIGHT * 4], id = 0, *lat = calloc(plan->lat ? plan->lat : 1, 8);
        uint64_t sent, done, t0;
        int n;

        if (!lat)
                return -1;
        /* Phase 1: warm-up, then one call at a time. */
        for (uint64_t i = 0; i < plan->warm + plan->lat; i++) {
                uint64_t start;
                int got = 0;

                rpc_fill(req, ++id);
                start = rpc_now_ns();
                if (ops->send(ctx, id, req) < 0)
                        goto fail;
                while (!got) {
                        n = ops->wait(ctx, ids, RPC_INFLIGHT * 4);
                        if (n < 0)
                                goto fail;
                        for (int k = 0; k < n; k++)
                                got |= ids[k] == id;
                }
                if (i >= plan->warm)
                        lat[i - plan->warm] = rpc_now_ns() - start;
        }
        /* Phase 2: RPC_INFLIGHT calls in flight. */
        sent = done = 0;
        t0 = rpc_now_ns();
        while (done < plan->tput) {
                while (sent < plan->tput && sent - done < RPC_INFLIGHT) {
                        rpc_fill(req, ++id);
                        if (ops->send(ctx, id, req) < 0)
                                goto fail;
                        sent++;
                }
                n = ops->wait(ctx, ids, RPC_INFLIGHT * 4);
                if (n < 0)
                        goto fail;
                done += (uint64_t)n;
        }
        rpc_report(lat, plan->lat, plan->tput, rpc_now_ns() - t0);
        free(lat);
        return 0;
fail:
        fprintf(stderr, "%s: call %llu failed\n", who, (unsigned long long)id);
        free(lat);
        return -1;
}

/* Creates @path (if not NULL) to tell the run script this process is ready. */
static inline int rpc_ready(const char *path)
{
        FILE *f;

        if (!path)
                return 0;
        f = fopen(path, "w");
        if (!f)
                return -1;
        return fclose(f) == 0 ? 0 : -1;
}

#endif
