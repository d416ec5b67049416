/* SPDX-License-Identifier: MIT */
/*
 * pubsub-bench-nats: the NATS half of the pub/sub benchmark, with the C client libnats against
 * a nats-server on 127.0.0.1 (bench/pubsub/run starts it). A benchmark prints figures and
 * asserts nothing.
 *
 *   pubsub-bench-nats pub URL SUBJECT COUNT SIZE [--flush-bytes N]
 *       publishes COUNT messages of SIZE bytes, and every N bytes (default 1 MiB) waits for the
 *       server to have processed everything so far (natsConnection_Flush, a PING/PONG round
 *       trip), so the publisher cannot run ahead of the server by more than N bytes; flushes
 *       once more at the end.
 *   pubsub-bench-nats sub URL SUBJECT COUNT [--ready FILE]
 *       subscribes (synchronous subscription, no client-side pending limit, so the library
 *       never drops), tells the server and waits for its answer before creating FILE, and
 *       receives until COUNT messages are accounted for.
 *
 * NATS core has no lossless mode: the server cuts off a "slow consumer" whose outbound buffer
 * exceeds its limit. The flushes bound what the publisher has in flight; the subscriber counts
 * every sequence number that never arrived, and the run script reports it.
 */
#include <nats/nats.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench-common.h"

enum {
        NATS_TIMEOUT_MS = 120 * 1000,
        NATS_IDLE_TIMEOUT_MS = 10 * 1000,
};

static natsConnection *nats_connect(const char *url, const char *who)
{
        natsOptions *opts = NULL;
        natsConnection *nc = NULL;
        natsStatus s = natsOptions_Create(&opts);

        if (s == NATS_OK)
                s = natsOptions_SetURL(opts, url);
        if (s == NATS_OK)
                s = natsOptions_SetAllowReconnect(opts, false);
        if (s == NATS_OK)
                s = natsOptions_SetTimeout(opts, 10000);
        if (s == NATS_OK)
                s = natsConnection_Connect(&nc, opts);
        natsOptions_Destroy(opts);
        if (s != NATS_OK) {
                fprintf(stderr, "%s: connect %s: %s\n", who, url, natsStatus_GetText(s));
                return NULL;
        }
        return nc;
}

static int cmd_pub(const char *url, const char *subject, uint64_t count, size_t size,
                   uint64_t flush_bytes)
{
        natsConnection *nc = nats_connect(url, "nats-pub");
        uint8_t *buf = bench_buf_new(size);
        uint64_t start, since_flush = 0, flushes = 0, interval = bench_interval_us();
        natsStatus s = NATS_OK;

        if (!nc || !buf) {
                if (nc)
                        natsConnection_Destroy(nc);
                free(buf);
                return 1;
        }
        start = bench_now_ns();
        for (uint64_t i = 1; i <= count && s == NATS_OK; i++) {
                bench_buf_seq(buf, i);
                if (interval) {
                        bench_pause_us(interval);
                        bench_buf_stamp(buf, size);
                }
                s = natsConnection_Publish(nc, subject, buf, (int)size);
                since_flush += size;
                if (s == NATS_OK && (interval || since_flush >= flush_bytes)) {
                        s = natsConnection_FlushTimeout(nc, NATS_TIMEOUT_MS);
                        since_flush = 0;
                        flushes++;
                }
        }
        if (s == NATS_OK)
                s = natsConnection_FlushTimeout(nc, NATS_TIMEOUT_MS);
        if (s != NATS_OK) {
                fprintf(stderr, "nats-pub: %s\n", natsStatus_GetText(s));
        } else {
                bench_pub_print(count, start, bench_now_ns());
                fprintf(stderr, "nats-pub: %llu flushes\n", (unsigned long long)flushes);
        }
        natsConnection_Destroy(nc);
        free(buf);
        nats_Close();
        return s == NATS_OK ? 0 : 1;
}

static int cmd_sub(const char *url, const char *subject, uint64_t count, const char *ready)
{
        natsConnection *nc = nats_connect(url, "nats-sub");
        natsSubscription *sub = NULL;
        BenchTally t;
        int64_t dropped = 0;
        int64_t idle_ms = 0;
        natsStatus s;

        bench_tally_init(&t);
        if (!nc)
                return 1;
        s = natsConnection_SubscribeSync(&sub, nc, subject);
        if (s == NATS_OK)
                s = natsSubscription_SetPendingLimits(sub, -1, -1);
        if (s == NATS_OK)
                s = natsConnection_FlushTimeout(nc, NATS_TIMEOUT_MS);
        if (s != NATS_OK || bench_ready(ready) < 0) {
                fprintf(stderr, "nats-sub: subscribe: %s\n", natsStatus_GetText(s));
                return 1;
        }
        while (bench_tally_done(&t) < count) {
                natsMsg *m = NULL;

                s = natsSubscription_NextMsg(&m, sub, 100);
                if (s == NATS_TIMEOUT) {
                        idle_ms += 100;
                        if (idle_ms > (t.received ? NATS_IDLE_TIMEOUT_MS : NATS_TIMEOUT_MS)) {
                                fprintf(stderr, "nats-sub: timed out\n");
                                break;
                        }
                        continue;
                }
                if (s != NATS_OK) {
                        /* NATS_SLOW_CONSUMER (the library dropped) is counted below. */
                        fprintf(stderr, "nats-sub: %s\n", natsStatus_GetText(s));
                        if (s == NATS_SLOW_CONSUMER)
                                continue;
                        break;
                }
                idle_ms = 0;
                bench_tally_add(&t, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
                natsMsg_Destroy(m);
        }
        if (natsSubscription_GetDropped(sub, &dropped) == NATS_OK && dropped > 0)
                t.dropped = (uint64_t)dropped;
        bench_tally_print(&t, count);
        natsSubscription_Destroy(sub);
        natsConnection_Destroy(nc);
        nats_Close();
        return 0;
}

static int usage(void)
{
        fprintf(stderr, "usage: pubsub-bench-nats pub URL SUBJECT COUNT SIZE [--flush-bytes N]\n"
                        "       pubsub-bench-nats sub URL SUBJECT COUNT [--ready FILE]\n");
        return 2;
}

int main(int argc, char **argv)
{
        uint64_t count = 0, size = 0, flush_bytes = (uint64_t)1 << 20;
        const char *ready = NULL;
        int i = 5;

        if (argc < 5 || bench_parse_u64(argv[4], &count) < 0)
                return usage();
        if (strcmp(argv[1], "pub") == 0) {
                if (argc < 6 || bench_parse_u64(argv[5], &size) < 0 || size < BENCH_MIN_SIZE ||
                    size > (uint64_t)1 << 20)
                        return usage();
                i = 6;
        }
        for (; i < argc; i++) {
                if (strcmp(argv[i], "--ready") == 0 && i + 1 < argc)
                        ready = argv[++i];
                else if (strcmp(argv[i], "--flush-bytes") == 0 && i + 1 < argc &&
                         bench_parse_u64(argv[i + 1], &flush_bytes) == 0 && flush_bytes > 0)
                        i++;
                else
                        return usage();
        }
        if (strcmp(argv[1], "pub") == 0)
                return cmd_pub(argv[2], argv[3], count, (size_t)size, flush_bytes);
        if (strcmp(argv[1], "sub") == 0)
                return cmd_sub(argv[2], argv[3], count, ready);
        return usage();
}
