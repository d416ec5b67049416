/* SPDX-License-Identifier: MIT */
/*
 * bridge-bench: the programs of bench/bridge/run. Prints figures, asserts nothing. Times are
 * CLOCK_MONOTONIC nanoseconds, comparable across the processes of one machine.
 *
 *   bridge-bench vbus-pub TOPIC COUNT SIZE            publish as fast as credit allows
 *   bridge-bench vbus-sub PATTERN COUNT [READY]       count imported messages (envelope + data)
 *   bridge-bench vbus-serve SERVICE [READY]           answer every call with its request
 *   bridge-bench vbus-call SERVICE/METHOD COUNT SIZE  sequential calls; latency percentiles
 *   bridge-bench nats-pub URL SUBJECT COUNT SIZE      publish, flushing every 1 MiB
 *   bridge-bench nats-sub URL SUBJECT COUNT [READY]
 *   bridge-bench nats-serve URL SUBJECT [READY]       reply with the request
 *   bridge-bench nats-call URL SUBJECT COUNT SIZE
 *
 * BENCH_NATS_ASAP=1 makes the NATS clients write each publish at once (natsOptions_SetSendAsap).
 *
 * Output lines: "pub start_ns=N", "sub received=N first_ns=N last_ns=N lost=N",
 * "call n=N p50_us=X p90_us=X p99_us=X".
 */
#include <errno.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vbus/vbus.h>

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void touch(const char *path)
{
        FILE *f;

        if (path && (f = fopen(path, "we")))
                fclose(f);
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return x < y ? -1 : x > y;
}

static void print_latency(uint64_t *lat, size_t n)
{
        if (n == 0) {
                printf("call n=0\n");
                return;
        }
        qsort(lat, n, sizeof(*lat), cmp_u64);
        printf("call n=%zu p50_us=%.1f p90_us=%.1f p99_us=%.1f\n", n, lat[n / 2] / 1000.0,
               lat[n * 9 / 10] / 1000.0, lat[n * 99 / 100] / 1000.0);
}

static vbus_conn *vbus_connect(void)
{
        vbus_conn *c = NULL;

        if (vbus_conn_open(NULL, &c) < 0 || vbus_conn_wait_ready(c, 10000000) < 0) {
                fprintf(stderr, "bridge-bench: no broker\n");
                exit(1);
        }
        return c;
}

/* ---- vbus ---- */

static int vbus_pub(const char *topic, unsigned long count, size_t size)
{
        vbus_conn *c = vbus_connect();
        vbus_publisher *p = NULL;
        char *buf = calloc(1, size ? size : 1);

        if (vbus_publisher_open(c, topic, &p) < 0)
                return 1;
        printf("pub start_ns=%llu\n", (unsigned long long)now_ns());
        for (unsigned long i = 0; i < count; i++) {
                int r = vbus_publish_wait(p, buf, size, 30000000);

                if (r < 0) {
                        fprintf(stderr, "bridge-bench: publish: %s\n", strerror(-r));
                        return 1;
                }
        }
        vbus_conn_flush(c, 30000000);
        vbus_conn_free(c);
        free(buf);
        return 0;
}

typedef struct Tally {
        unsigned long received, lost;
        uint64_t first, last;
} Tally;

static void on_vbus_msg(vbus_subscription *s, const vbus_message *m, void *userdata)
{
        Tally *t = userdata;
        size_t size;
        const char *d = vbus_message_get_data(m, &size);
        const char *g = memmem(d, size < 2048 ? size : 2048, " gap=", 5);

        if (g)
                t->lost += strtoul(g + 5, NULL, 10);
        if (!t->received++)
                t->first = now_ns();
        t->last = now_ns();
}

static int vbus_sub(const char *pattern, unsigned long count, const char *ready)
{
        vbus_conn *c = vbus_connect();
        vbus_subscription *s = NULL;
        Tally t = {0};
        uint64_t idle = 0;

        if (vbus_subscribe(c, pattern, VBUS_SLOW_BLOCK, on_vbus_msg, &t, &s) < 0)
                return 1;
        while (!vbus_subscription_is_active(s))
                vbus_conn_wait(c, 100000);
        touch(ready);
        while (t.received + t.lost < count) {
                unsigned long before = t.received;

                vbus_conn_wait(c, 100000);
                idle = t.received == before ? idle + 1 : 0;
                if (idle > (t.received ? 50 : 600))
                        break;
        }
        printf("sub received=%lu first_ns=%llu last_ns=%llu lost=%lu\n", t.received,
               (unsigned long long)t.first, (unsigned long long)t.last, t.lost);
        vbus_conn_free(c);
        return 0;
}

static void on_vbus_call(vbus_server *srv, vbus_request *req, void *userdata)
{
        size_t size;
        const void *d = vbus_request_get_data(req, &size);

        vbus_request_reply(req, d, size);
}

static int vbus_serve_cmd(const char *service, const char *ready)
{
        vbus_conn *c = vbus_connect();
        vbus_server *srv = NULL;

        if (vbus_serve(c, service, on_vbus_call, NULL, &srv) < 0)
                return 1;
        while (!vbus_server_is_active(srv))
                vbus_conn_wait(c, 100000);
        touch(ready);
        for (;;)
                vbus_conn_wait(c, 1000000);
}

static int vbus_call_cmd(const char *method, unsigned long count, size_t size)
{
        vbus_conn *c = vbus_connect();
        char *buf = calloc(1, size ? size : 1);
        uint64_t *lat = calloc(count, sizeof(*lat));
        size_t n = 0;

        for (unsigned long i = 0; i < count; i++) {
                vbus_reply *r = NULL;
                uint64_t t0 = now_ns();

                if (vbus_call_sync(c, method, buf, size, 5000000, &r) < 0 ||
                    vbus_reply_get_status(r) != VBUS_STATUS_OK) {
                        fprintf(stderr, "bridge-bench: call: %s\n",
                                r ? vbus_reply_get_message(r) : "failed");
                        vbus_reply_free(r);
                        continue;
                }
                lat[n++] = now_ns() - t0;
                vbus_reply_free(r);
        }
        print_latency(lat, n);
        vbus_conn_free(c);
        free(buf);
        free(lat);
        return 0;
}

/* ---- NATS ---- */

/* BENCH_NATS_ASAP=1: publishes are written at once, as by a bridge with nats-send-asap on. */
static natsConnection *nats_connect(const char *url)
{
        natsConnection *nc = NULL;
        natsOptions *o = NULL;
        natsStatus s = natsOptions_Create(&o);

        if (s == NATS_OK)
                s = natsOptions_SetURL(o, url);
        if (s == NATS_OK && getenv("BENCH_NATS_ASAP"))
                s = natsOptions_SetSendAsap(o, true);
        if (s == NATS_OK)
                s = natsConnection_Connect(&nc, o);
        natsOptions_Destroy(o);
        if (s != NATS_OK) {
                fprintf(stderr, "bridge-bench: NATS %s\n", url);
                exit(1);
        }
        return nc;
}

static int nats_pub(const char *url, const char *subject, unsigned long count, size_t size)
{
        natsConnection *nc = nats_connect(url);
        char *buf = calloc(1, size ? size : 1);
        size_t since = 0;

        printf("pub start_ns=%llu\n", (unsigned long long)now_ns());
        for (unsigned long i = 0; i < count; i++) {
                if (natsConnection_Publish(nc, subject, buf, (int)size) != NATS_OK)
                        return 1;
                since += size;
                if (since >= 1024 * 1024) {
                        natsConnection_FlushTimeout(nc, 30000);
                        since = 0;
                }
        }
        natsConnection_FlushTimeout(nc, 30000);
        natsConnection_Destroy(nc);
        free(buf);
        return 0;
}

static int nats_sub(const char *url, const char *subject, unsigned long count, const char *ready)
{
        natsConnection *nc = nats_connect(url);
        natsSubscription *s = NULL;
        Tally t = {0};
        int idle = 0;
        int64_t dropped = 0;

        if (natsConnection_SubscribeSync(&s, nc, subject) != NATS_OK ||
            natsSubscription_SetPendingLimits(s, -1, -1) != NATS_OK ||
            natsConnection_Flush(nc) != NATS_OK)
                return 1;
        touch(ready);
        while (t.received < count) {
                natsMsg *m = NULL;
                natsStatus st = natsSubscription_NextMsg(&m, s, 100);

                if (st == NATS_TIMEOUT) {
                        if (++idle > (t.received ? 50 : 600))
                                break;
                        continue;
                }
                if (st != NATS_OK)
                        continue;
                idle = 0;
                if (!t.received++)
                        t.first = now_ns();
                t.last = now_ns();
                natsMsg_Destroy(m);
        }
        natsSubscription_GetDropped(s, &dropped);
        printf("sub received=%lu first_ns=%llu last_ns=%llu lost=%lld\n", t.received,
               (unsigned long long)t.first, (unsigned long long)t.last,
               (long long)(count - t.received));
        natsSubscription_Destroy(s);
        natsConnection_Destroy(nc);
        return 0;
}

static void on_nats_req(natsConnection *nc, natsSubscription *s, natsMsg *m, void *closure)
{
        natsConnection_Publish(nc, natsMsg_GetReply(m), natsMsg_GetData(m),
                               natsMsg_GetDataLength(m));
        natsMsg_Destroy(m);
}

static int nats_serve(const char *url, const char *subject, const char *ready)
{
        natsConnection *nc = nats_connect(url);
        natsSubscription *s = NULL;

        if (natsConnection_Subscribe(&s, nc, subject, on_nats_req, NULL) != NATS_OK ||
            natsConnection_Flush(nc) != NATS_OK)
                return 1;
        touch(ready);
        for (;;)
                nats_Sleep(1000);
}

static int nats_call(const char *url, const char *subject, unsigned long count, size_t size)
{
        natsConnection *nc = nats_connect(url);
        char *buf = calloc(1, size ? size : 1);
        uint64_t *lat = calloc(count, sizeof(*lat));
        size_t n = 0;

        for (unsigned long i = 0; i < count; i++) {
                natsMsg *r = NULL;
                uint64_t t0 = now_ns();

                if (natsConnection_Request(&r, nc, subject, buf, (int)size, 5000) != NATS_OK)
                        continue;
                lat[n++] = now_ns() - t0;
                natsMsg_Destroy(r);
        }
        print_latency(lat, n);
        natsConnection_Destroy(nc);
        free(buf);
        free(lat);
        return 0;
}

int main(int argc, char **argv)
{
        const char *c = argc > 1 ? argv[1] : "";

        if (!strcmp(c, "vbus-pub") && argc == 5)
                return vbus_pub(argv[2], strtoul(argv[3], NULL, 10), strtoul(argv[4], NULL, 10));
        if (!strcmp(c, "vbus-sub") && argc >= 4)
                return vbus_sub(argv[2], strtoul(argv[3], NULL, 10), argc > 4 ? argv[4] : NULL);
        if (!strcmp(c, "vbus-serve") && argc >= 3)
                return vbus_serve_cmd(argv[2], argc > 3 ? argv[3] : NULL);
        if (!strcmp(c, "vbus-call") && argc == 5)
                return vbus_call_cmd(argv[2], strtoul(argv[3], NULL, 10),
                                     strtoul(argv[4], NULL, 10));
        if (!strcmp(c, "nats-pub") && argc == 6)
                return nats_pub(argv[2], argv[3], strtoul(argv[4], NULL, 10),
                                strtoul(argv[5], NULL, 10));
        if (!strcmp(c, "nats-sub") && argc >= 5)
                return nats_sub(argv[2], argv[3], strtoul(argv[4], NULL, 10),
                                argc > 5 ? argv[5] : NULL);
        if (!strcmp(c, "nats-serve") && argc >= 4)
                return nats_serve(argv[2], argv[3], argc > 4 ? argv[4] : NULL);
        if (!strcmp(c, "nats-call") && argc == 6)
                return nats_call(argv[2], argv[3], strtoul(argv[4], NULL, 10),
                                 strtoul(argv[5], NULL, 10));
        fprintf(stderr, "usage: see the comment at the top of bench/bridge/bridge-bench.c\n");
        return 2;
}
