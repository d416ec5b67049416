/* SPDX-License-Identifier: MIT */
/*
 * stream-check: the programs of the streaming-call integration test (stream.sh).
 *
 *   stream-check serve SERVICE [--ready FILE]
 *       Serves SERVICE with these methods, and prints a line for each call that ends:
 *         Count  (server-streaming) request "N": N messages, each the 8-byte sequence number
 *                1..N, then OK. A line "count-done N".
 *         Sum    (client-streaming) 8-byte numbers until the caller closes; one reply: their sum.
 *         Echo   (bidirectional) each message back as it comes; OK when the caller closes.
 *         Hold   (server-streaming) a message every 20 ms until the call ends: "ended Hold
 *                STATUS MESSAGE".
 *         Headers (unary) replies "key=value;" for each header of the call.
 *         Two    (unary method whose handler streams two messages).
 *         Later  (streaming method whose handler keeps the request without taking it; the main
 *                loop answers it once the link to the broker is lost: "later ECODE").
 *   stream-check count SERVICE N [--pause-after K --pause-ms MS]
 *       Server-streaming: checks every sequence number in order; may pause delivery for MS
 *       after K messages (flow control must hold the server back, not buffer). "ok N".
 *   stream-check sum SERVICE N        client-streaming 1..N; "ok SUM".
 *   stream-check echo SERVICE N MAX   bidirectional: N messages of sizes 0..MAX (MAX up to
 *                                     VBUS_MESSAGE_MAX), contents checked; "ok N BYTES".
 *   stream-check hold SERVICE [--timeout MS] [--cancel-after N] [--streaming FILE]
 *       Holds a Hold call; after 3 messages creates FILE; with --cancel-after cancels after N
 *       messages. Prints "STATUS MESSAGES END_MS" (END_MS: CLOCK_MONOTONIC milliseconds).
 *   stream-check headers SERVICE      a unary call with headers, prints the reply.
 *   stream-check bad-headers          every malformed header set is refused with -EINVAL.
 *   stream-check unary SERVICE/METHOD [PAYLOAD]   a unary call: "STATUS MESSAGE".
 *   stream-check two-requests SERVICE/METHOD      a stream sending two messages to a unary
 *                                                 method: "STATUS MESSAGE".
 *   stream-check oversize SERVICE/METHOD          sends a message over VBUS_MESSAGE_MAX by hand
 *       (DATA frames with MORE); prints "STATUS MESSAGE" and then whether the link still works.
 *
 * Exit status 0 when the run went as described, 1 otherwise (with a line on stderr).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vbus/vbus.h>

#include "conn.h"
#include "stream.h"

static vbus_conn *conn;
static const char *service;

static uint64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void die(const char *what, int r)
{
        fprintf(stderr, "stream-check: %s: %s\n", what, r < 0 ? strerror(-r) : "failed");
        exit(1);
}

static void put64(uint8_t *p, uint64_t v)
{
        memcpy(p, &v, 8);
}

static uint64_t get64(const void *p)
{
        uint64_t v;

        memcpy(&v, p, 8);
        return v;
}

/* The content of echo message @i, of @n bytes. */
static uint8_t pattern(uint64_t i, size_t k)
{
        return (uint8_t)(i * 131u + k * 7u + (k >> 8));
}

/* --- server ----------------------------------------------------------------------------- */

typedef struct CountCall {
        uint64_t n, sent;
} CountCall;

static void count_pump(vbus_stream *st, void *userdata)
{
        CountCall *cc = userdata;
        uint8_t b[8];

        while (cc->sent < cc->n) {
                put64(b, cc->sent + 1);
                if (vbus_stream_send(st, b, sizeof(b)) < 0)
                        return; /* -EAGAIN: on_writable calls again */
                cc->sent++;
        }
        printf("count-done %llu\n", (unsigned long long)cc->n);
        (void)vbus_stream_finish(st, VBUS_STATUS_OK, NULL);
        free(cc);
}

static void count_end(vbus_stream *st, int status, const char *message, void *userdata)
{
        (void)st;
        printf("ended Count %s %s\n", vbus_status_name(status), message);
        free(userdata);
}

typedef struct SumCall {
        uint64_t sum;
} SumCall;

static void sum_message(vbus_stream *st, const void *data, size_t n, void *userdata)
{
        SumCall *sc = userdata;
        uint8_t b[8];

        if (data && n == 8) {
                sc->sum += get64(data);
                return;
        }
        if (data) {
                (void)vbus_stream_finish(st, VBUS_STATUS_INVALID_ARGUMENT,
                                         "Sum takes 8-byte numbers");
                free(sc);
                return;
        }
        put64(b, sc->sum);
        if (vbus_stream_send(st, b, sizeof(b)) < 0)
                die("Sum reply", -EIO);
        (void)vbus_stream_finish(st, VBUS_STATUS_OK, NULL);
        free(sc);
}

static void free_end(vbus_stream *st, int status, const char *message, void *userdata)
{
        (void)st;
        printf("ended %s %s %s\n", vbus_request_get_method(vbus_stream_get_request(st)),
               vbus_status_name(status), message);
        free(userdata);
}

typedef struct EchoCall {
        uint8_t *held; /* a message not taken by vbus_stream_send() yet (-EAGAIN) */
        size_t n_held;
        bool eof;
} EchoCall;

static void echo_writable(vbus_stream *st, void *userdata)
{
        EchoCall *ec = userdata;

        if (ec->held) {
                if (vbus_stream_send(st, ec->held, ec->n_held) == -EAGAIN)
                        return;
                free(ec->held);
                ec->held = NULL;
                (void)vbus_stream_set_paused(st, false);
        }
        if (ec->eof) {
                (void)vbus_stream_finish(st, VBUS_STATUS_OK, NULL);
                free(ec);
        }
}

static void echo_message(vbus_stream *st, const void *data, size_t n, void *userdata)
{
        EchoCall *ec = userdata;
        int r;

        if (!data) {
                ec->eof = true;
                if (!ec->held)
                        echo_writable(st, ec);
                return;
        }
        r = vbus_stream_send(st, data, n);
        if (r == -EAGAIN) {
                /* Hold it and stop taking messages until it is out: flow control reaches the
                 * caller through the window this server no longer returns. */
                ec->held = malloc(n ? n : 1);
                if (!ec->held)
                        die("malloc", -ENOMEM);
                memcpy(ec->held, data, n);
                ec->n_held = n;
                (void)vbus_stream_set_paused(st, true);
        } else if (r < 0) {
                die("Echo send", r);
        }
}

static void echo_end(vbus_stream *st, int status, const char *message, void *userdata)
{
        EchoCall *ec = userdata;

        (void)st;
        printf("ended Echo %s %s\n", vbus_status_name(status), message);
        free(ec->held);
        free(ec);
}

#define MAX_HOLDS 16
static vbus_stream *holds[MAX_HOLDS];

static void hold_end(vbus_stream *st, int status, const char *message, void *userdata)
{
        (void)userdata;
        for (int i = 0; i < MAX_HOLDS; i++)
                if (holds[i] == st)
                        holds[i] = NULL;
        printf("ended Hold %s %s\n", vbus_status_name(status), message);
}

static vbus_request *later;

static void on_stream_method(vbus_server *srv, vbus_request *req, void *userdata)
{
        const char *m = vbus_request_get_method(req);
        vbus_stream *st;
        int r;

        (void)srv;
        (void)userdata;
        if (strcmp(m, "Later") == 0) {
                later = req;
                printf("later-held\n");
                return;
        }
        if (strcmp(m, "Sum") == 0) {
                vbus_stream_handlers h = {.on_message = sum_message, .on_end = free_end};
                SumCall *sc = calloc(1, sizeof(*sc));

                r = sc ? vbus_request_stream(req, &h, sc, &st) : -ENOMEM;
                if (r < 0)
                        die("vbus_request_stream", r);
        } else {
                vbus_stream_handlers h = {.on_message = echo_message,
                                          .on_end = echo_end,
                                          .on_writable = echo_writable};
                EchoCall *ec = calloc(1, sizeof(*ec));

                r = ec ? vbus_request_stream(req, &h, ec, &st) : -ENOMEM;
                if (r < 0)
                        die("vbus_request_stream", r);
        }
}

static void on_request(vbus_server *srv, vbus_request *req, void *userdata)
{
        const char *m = vbus_request_get_method(req);
        size_t n;
        const char *data = vbus_request_get_data(req, &n);
        vbus_stream *st;
        int r;

        (void)srv;
        (void)userdata;
        if (strcmp(m, "Count") == 0) {
                vbus_stream_handlers h = {.on_end = count_end, .on_writable = count_pump};
                CountCall *cc = calloc(1, sizeof(*cc));
                char num[32];

                if (!cc)
                        die("calloc", -ENOMEM);
                /* At most 31 bytes by the precision: it fits. */
                (void)snprintf(num, sizeof(num), "%.*s", (int)(n < 31 ? n : 31), data ? data : "");
                cc->n = strtoull(num, NULL, 10);
                r = vbus_request_stream(req, &h, cc, &st);
                if (r < 0)
                        die("vbus_request_stream", r);
                count_pump(st, cc);
        } else if (strcmp(m, "Hold") == 0) {
                vbus_stream_handlers h = {.on_end = hold_end};

                for (int i = 0; i < MAX_HOLDS; i++) {
                        if (holds[i])
                                continue;
                        r = vbus_request_stream(req, &h, NULL, &holds[i]);
                        if (r < 0)
                                die("vbus_request_stream", r);
                        return;
                }
                (void)vbus_request_fail(req, VBUS_STATUS_RESOURCE_EXHAUSTED, "too many holds");
        } else if (strcmp(m, "Headers") == 0) {
                char out[4096] = "";
                size_t used = 0;

                for (size_t i = 0; i < vbus_request_get_n_headers(req); i++) {
                        const char *k;
                        const void *v;
                        size_t vn;

                        if (vbus_request_get_header(req, i, &k, &v, &vn) < 0)
                                die("vbus_request_get_header", -EIO);
                        used += (size_t)snprintf(out + used, sizeof(out) - used, "%s=%.*s;", k,
                                                 (int)vn, (const char *)v);
                        if (used >= sizeof(out))
                                die("headers too long", -E2BIG);
                }
                if (vbus_request_get_header(req, vbus_request_get_n_headers(req), NULL, NULL,
                                            NULL) != -ENOENT)
                        die("header past the end", -EIO);
                (void)vbus_request_reply(req, out, used);
        } else if (strcmp(m, "Two") == 0) {
                vbus_stream_handlers h = {0};

                if (vbus_request_stream(req, &h, NULL, &st) < 0)
                        die("vbus_request_stream", -EIO);
                (void)vbus_stream_send(st, "one", 3);
                (void)vbus_stream_send(st, "two", 3);
                (void)vbus_stream_finish(st, VBUS_STATUS_OK, NULL);
        } else {
                (void)vbus_request_fail(req, VBUS_STATUS_NOT_FOUND, "no such method");
        }
}

static _Noreturn void serve(int argc, char **argv)
{
        const char *ready = NULL;
        vbus_server *srv;
        uint64_t last = 0, seq = 0;
        int r;

        for (int i = 3; i + 1 < argc; i += 2)
                if (strcmp(argv[i], "--ready") == 0)
                        ready = argv[i + 1];
        r = vbus_serve(conn, service, on_request, NULL, &srv);
        if (r < 0)
                die("vbus_serve", r);
        if (vbus_server_stream_method(srv, "Sum", on_stream_method, NULL) < 0 ||
            vbus_server_stream_method(srv, "Echo", on_stream_method, NULL) < 0 ||
            vbus_server_stream_method(srv, "Later", on_stream_method, NULL) < 0 ||
            vbus_server_stream_method(srv, "bad/name", on_stream_method, NULL) != -EINVAL)
                die("vbus_server_stream_method", -EIO);
        while (!vbus_server_is_active(srv))
                (void)vbus_conn_wait(conn, 100000);
        if (ready) {
                FILE *f = fopen(ready, "w");

                if (!f || fclose(f) != 0)
                        die("cannot create the ready file", -errno);
        }
        for (;;) {
                (void)vbus_conn_wait(conn, 20000);
                if (later && vbus_conn_get_state(conn) == VBUS_CONN_DISCONNECTED) {
                        r = vbus_request_reply(later, "late", 4);

                        printf("later %s\n", r == -ECANCELED ? "ECANCELED" : strerror(-r));
                        later = NULL;
                }
                if (now_ms() - last >= 20) {
                        uint8_t b[8];

                        last = now_ms();
                        put64(b, ++seq);
                        for (int i = 0; i < MAX_HOLDS; i++)
                                if (holds[i])
                                        (void)vbus_stream_send(holds[i], b, sizeof(b));
                }
        }
}

/* --- callers ---------------------------------------------------------------------------- */

typedef struct Caller {
        bool done;
        int status;
        char message[1100];
        uint64_t n_msgs, bytes, expect_seq;
        uint64_t pause_after, pause_ms, paused_at;
        uint64_t value;
        const char *streaming_file;
        uint64_t cancel_after;
        bool cancelled;
        uint64_t echo_next; /* index of the next echo expected */
        size_t echo_max;
        bool bad;
} Caller;

static void caller_end(vbus_stream *st, int status, const char *message, void *userdata)
{
        Caller *cl = userdata;

        (void)st;
        cl->done = true;
        cl->status = status;
        /* A status message is at most 1024 bytes (VBUS_STATUS_MESSAGE_MAX): it fits. */
        (void)snprintf(cl->message, sizeof(cl->message), "%s", message);
}

static size_t echo_size(uint64_t i, size_t max)
{
        /* Mostly small, with a few large and some at the very limit. */
        if (i % 97 == 5)
                return max;
        if (i % 13 == 1)
                return (size_t)((i * 2654435761u) % (max + 1));
        return (size_t)(i % 300) % (max + 1);
}

static void caller_message(vbus_stream *st, const void *data, size_t n, void *userdata)
{
        Caller *cl = userdata;
        const uint8_t *p = data;

        cl->n_msgs++;
        cl->bytes += n;
        if (cl->echo_max) {
                size_t want = echo_size(cl->echo_next, cl->echo_max);

                if (n != want) {
                        fprintf(stderr, "echo %llu: %zu bytes, expected %zu\n",
                                (unsigned long long)cl->echo_next, n, want);
                        cl->bad = true;
                }
                for (size_t k = 0; k < n && !cl->bad; k++)
                        if (p[k] != pattern(cl->echo_next, k)) {
                                fprintf(stderr, "echo %llu: byte %zu differs\n",
                                        (unsigned long long)cl->echo_next, k);
                                cl->bad = true;
                        }
                cl->echo_next++;
                return;
        }
        if (n == 8)
                cl->value = get64(data);
        if (cl->expect_seq) {
                if (n != 8 || get64(data) != cl->expect_seq) {
                        fprintf(stderr, "message %llu out of order\n",
                                (unsigned long long)cl->expect_seq);
                        cl->bad = true;
                }
                cl->expect_seq++;
        }
        if (cl->pause_after && cl->n_msgs == cl->pause_after) {
                (void)vbus_stream_set_paused(st, true);
                cl->paused_at = now_ms();
        }
        if (cl->streaming_file && cl->n_msgs == 3) {
                FILE *f = fopen(cl->streaming_file, "w");

                if (!f || fclose(f) != 0)
                        die("cannot create the streaming file", -errno);
        }
        if (cl->cancel_after && cl->n_msgs == cl->cancel_after && !cl->cancelled) {
                if (vbus_stream_cancel(st) < 0)
                        die("vbus_stream_cancel", -EIO);
                cl->cancelled = true;
                cl->done = true;
                cl->status = VBUS_STATUS_CANCELLED;
                (void)snprintf(cl->message, sizeof(cl->message), "cancelled here");
        }
}

static vbus_stream *open_stream(const char *method, Caller *cl, uint64_t timeout_ms)
{
        vbus_stream_handlers h = {.on_message = caller_message, .on_end = caller_end};
        vbus_call_options o = {.timeout_usec = timeout_ms * 1000u};
        char full[300];
        vbus_stream *st;
        int r;

        if ((size_t)snprintf(full, sizeof(full), "%s/%s", service, method) >= sizeof(full))
                die("service/method too long", -ENAMETOOLONG);
        r = vbus_stream_open(conn, full, &o, &h, cl, &st);
        if (r < 0)
                die("vbus_stream_open", r);
        return st;
}

static void run_until_done(Caller *cl)
{
        while (!cl->done)
                (void)vbus_conn_wait(conn, 50000);
}

static int finish(Caller *cl, const char *want)
{
        if (cl->bad)
                return 1;
        if (strcmp(vbus_status_name(cl->status), want) != 0) {
                fprintf(stderr, "outcome %s (%s), expected %s\n", vbus_status_name(cl->status),
                        cl->message, want);
                return 1;
        }
        return 0;
}

static int do_count(int argc, char **argv)
{
        Caller cl = {.expect_seq = 1};
        uint64_t n = strtoull(argv[3], NULL, 10);
        vbus_stream *st;

        for (int i = 4; i + 1 < argc; i += 2) {
                if (strcmp(argv[i], "--pause-after") == 0)
                        cl.pause_after = strtoull(argv[i + 1], NULL, 10);
                if (strcmp(argv[i], "--pause-ms") == 0)
                        cl.pause_ms = strtoull(argv[i + 1], NULL, 10);
        }
        st = open_stream("Count", &cl, 0);
        if (vbus_stream_send(st, argv[3], strlen(argv[3])) < 0 || vbus_stream_close_send(st) < 0)
                die("send", -EIO);
        while (!cl.done) {
                if (cl.paused_at && now_ms() - cl.paused_at >= cl.pause_ms) {
                        cl.paused_at = 0;
                        (void)vbus_stream_set_paused(st, false);
                }
                (void)vbus_conn_wait(conn, 20000);
        }
        if (finish(&cl, "ok"))
                return 1;
        if (cl.n_msgs != n) {
                fprintf(stderr, "%llu messages, expected %llu\n", (unsigned long long)cl.n_msgs,
                        (unsigned long long)n);
                return 1;
        }
        printf("ok %llu\n", (unsigned long long)cl.n_msgs);
        return 0;
}

static int do_sum(char **argv)
{
        Caller cl = {0};
        uint64_t n = strtoull(argv[3], NULL, 10);
        vbus_stream *st = open_stream("Sum", &cl, 0);
        uint8_t b[8];

        for (uint64_t i = 1; i <= n; i++) {
                int r;

                put64(b, i);
                r = vbus_stream_send_wait(st, b, sizeof(b), 10000000u);
                if (r < 0)
                        die("vbus_stream_send_wait", r);
        }
        if (vbus_stream_close_send(st) < 0 || vbus_stream_close_send(st) != -EPIPE)
                die("vbus_stream_close_send", -EIO);
        run_until_done(&cl);
        if (finish(&cl, "ok"))
                return 1;
        if (cl.n_msgs != 1 || cl.value != n * (n + 1) / 2) {
                fprintf(stderr, "sum %llu in %llu messages\n", (unsigned long long)cl.value,
                        (unsigned long long)cl.n_msgs);
                return 1;
        }
        printf("ok %llu\n", (unsigned long long)cl.value);
        return 0;
}

static int do_echo(char **argv)
{
        Caller cl = {0};
        uint64_t n = strtoull(argv[3], NULL, 10);
        size_t max = strtoull(argv[4], NULL, 10);
        vbus_stream *st;
        uint8_t *buf = malloc(max ? max : 1);

        if (!buf)
                die("malloc", -ENOMEM);
        cl.echo_max = max;
        st = open_stream("Echo", &cl, 0);
        for (uint64_t i = 0; i < n && !cl.done; i++) {
                size_t k = echo_size(i, max);
                int r;

                for (size_t j = 0; j < k; j++)
                        buf[j] = pattern(i, j);
                r = vbus_stream_send_wait(st, buf, k, 20000000u);
                if (r == -EPIPE && cl.done)
                        break; /* the outcome says why */
                if (r < 0)
                        die("vbus_stream_send_wait", r);
        }
        free(buf);
        if (!cl.done && vbus_stream_close_send(st) < 0)
                die("vbus_stream_close_send", -EIO);
        run_until_done(&cl);
        if (finish(&cl, "ok"))
                return 1;
        if (cl.echo_next != n) {
                fprintf(stderr, "%llu echoes of %llu\n", (unsigned long long)cl.echo_next,
                        (unsigned long long)n);
                return 1;
        }
        printf("ok %llu %llu\n", (unsigned long long)n, (unsigned long long)cl.bytes);
        return 0;
}

static int do_hold(int argc, char **argv)
{
        Caller cl = {0};
        uint64_t timeout = 0;
        vbus_stream *st;

        for (int i = 3; i + 1 < argc; i += 2) {
                if (strcmp(argv[i], "--timeout") == 0)
                        timeout = strtoull(argv[i + 1], NULL, 10);
                if (strcmp(argv[i], "--cancel-after") == 0)
                        cl.cancel_after = strtoull(argv[i + 1], NULL, 10);
                if (strcmp(argv[i], "--streaming") == 0)
                        cl.streaming_file = argv[i + 1];
        }
        st = open_stream("Hold", &cl, timeout);
        /* Server-streaming: the one request message, then this side is done. */
        if (vbus_stream_send(st, NULL, 0) < 0 || vbus_stream_close_send(st) < 0)
                die("send", -EIO);
        run_until_done(&cl);
        printf("%s %llu %llu %s\n", vbus_status_name(cl.status), (unsigned long long)cl.n_msgs,
               (unsigned long long)now_ms(), cl.message);
        return 0;
}

static int do_headers(void)
{
        vbus_header hs[3] = {
                {.key = "trace-id", .value = "abc123", .value_size = 6},
                {.key = "tenant", .value = "blue", .value_size = 4},
                {.key = "empty.v", .value = NULL, .value_size = 0},
        };
        vbus_call_options o = {.timeout_usec = 5000000u, .headers = hs, .n_headers = 3};
        char full[300];
        vbus_reply *reply;
        size_t n;
        const char *data;
        int r;

        if ((size_t)snprintf(full, sizeof(full), "%s/Headers", service) >= sizeof(full))
                die("service/method too long", -ENAMETOOLONG);
        r = vbus_call_sync_opts(conn, full, NULL, 0, &o, &reply);
        if (r < 0)
                die("vbus_call_sync_opts", r);
        data = vbus_reply_get_data(reply, &n);
        printf("%s %.*s\n", vbus_status_name(vbus_reply_get_status(reply)), (int)n,
               data ? data : "");
        vbus_reply_free(reply);
        return 0;
}

static int do_bad_headers(void)
{
        char big[VBUS_CALL_HEADER_VALUE_MAX + 1] = {0};
        char longkey[VBUS_CALL_HEADER_KEY_MAX + 2];
        vbus_header many[VBUS_CALL_HEADERS_MAX + 1];
        vbus_header bad[] = {
                {.key = "Upper"},
                {.key = ""},
                {.key = NULL},
                {.key = "sp ace"},
                {.key = longkey},
                {.key = "big", .value = big, .value_size = sizeof(big)},
                {.key = "null-value", .value = NULL, .value_size = 1},
        };
        vbus_stream_handlers h = {.on_end = caller_end};
        vbus_stream *st;
        vbus_reply *reply;

        memset(longkey, 'a', sizeof(longkey) - 1);
        longkey[sizeof(longkey) - 1] = '\0';
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                vbus_call_options o = {.headers = &bad[i], .n_headers = 1};

                if (vbus_call_sync_opts(conn, "x.v1.S/M", NULL, 0, &o, &reply) != -EINVAL ||
                    vbus_stream_open(conn, "x.v1.S/M", &o, &h, NULL, &st) != -EINVAL) {
                        fprintf(stderr, "header %zu was accepted\n", i);
                        return 1;
                }
        }
        for (size_t i = 0; i < VBUS_CALL_HEADERS_MAX + 1; i++)
                many[i] = (vbus_header){.key = "k"};
        {
                vbus_call_options o = {.headers = many, .n_headers = VBUS_CALL_HEADERS_MAX + 1};

                if (vbus_call_sync_opts(conn, "x.v1.S/M", NULL, 0, &o, &reply) != -EINVAL) {
                        fprintf(stderr, "%d headers were accepted\n", VBUS_CALL_HEADERS_MAX + 1);
                        return 1;
                }
        }
        printf("ok\n");
        return 0;
}

static int do_unary(int argc, char **argv)
{
        vbus_reply *reply;
        const char *payload = argc > 3 ? argv[3] : "";
        int r = vbus_call_sync(conn, argv[2], payload, strlen(payload), 5000000u, &reply);

        if (r < 0)
                die("vbus_call_sync", r);
        printf("%s %s\n", vbus_status_name(vbus_reply_get_status(reply)),
               vbus_reply_get_message(reply));
        vbus_reply_free(reply);
        return 0;
}

static int do_two_requests(char **argv)
{
        vbus_stream_handlers h = {.on_message = caller_message, .on_end = caller_end};
        vbus_call_options o = {.timeout_usec = 5000000u};
        Caller cl = {0};
        vbus_stream *st;
        int r = vbus_stream_open(conn, argv[2], &o, &h, &cl, &st);

        if (r < 0)
                die("vbus_stream_open", r);
        if (vbus_stream_send(st, "a", 1) < 0 || vbus_stream_send(st, "b", 1) < 0 ||
            vbus_stream_close_send(st) < 0)
                die("send", -EIO);
        run_until_done(&cl);
        printf("%s %s\n", vbus_status_name(cl.status), cl.message);
        return 0;
}

/* Speaks below the API on purpose: DATA frames with MORE past VBUS_MESSAGE_MAX on a stream. */
static int do_oversize(char **argv)
{
        static uint8_t chunk[16384];
        vbus_stream_handlers h = {.on_end = caller_end};
        vbus_call_options o = {.timeout_usec = 20000000u};
        Caller cl = {0};
        vbus_stream *st;
        uint32_t id;
        size_t sent = 0;
        vbus_reply *reply;
        int r = vbus_stream_open(conn, argv[2], &o, &h, &cl, &st);

        if (r < 0)
                die("vbus_stream_open", r);
        id = vbus__stream_get_id(st);
        while (!cl.done && sent <= (size_t)VBUS_MESSAGE_MAX + sizeof(chunk)) {
                size_t room = vbus__conn_data_room(conn, id);

                if (room > sizeof(chunk))
                        room = sizeof(chunk);
                if (room > 0 && vbus__conn_send_data(conn, id, VBUS_FLAG_MORE, chunk, room) == 0)
                        sent += room;
                else
                        (void)vbus_conn_wait(conn, 50000);
        }
        run_until_done(&cl);
        printf("%s %s\n", vbus_status_name(cl.status), cl.message);
        /* The link is still up and usable. */
        r = vbus_call_sync(conn, "nobody.v1.Svc/M", NULL, 0, 5000000u, &reply);
        if (r < 0)
                die("vbus_call_sync after the oversized message", r);
        printf("after: %s reconnects %llu\n", vbus_status_name(vbus_reply_get_status(reply)),
               (unsigned long long)vbus_conn_get_reconnects(conn));
        vbus_reply_free(reply);
        return 0;
}

int main(int argc, char **argv)
{
        int r;

        (void)setvbuf(stdout, NULL, _IOLBF, 0); /* cannot fail: a valid mode */
        if (argc < 2) {
                fprintf(stderr, "usage: see the comment at the top of stream-check.c\n");
                return 2;
        }
        r = vbus_conn_open(NULL, &conn);
        if (r < 0)
                die("vbus_conn_open", r);
        r = vbus_conn_wait_ready(conn, 10000000u);
        if (r < 0)
                die("vbus_conn_wait_ready", r);
        if (strcmp(argv[1], "bad-headers") == 0)
                return do_bad_headers();
        if (argc < 3) {
                fprintf(stderr, "usage: see the comment at the top of stream-check.c\n");
                return 2;
        }
        service = argv[2];
        if (strcmp(argv[1], "serve") == 0)
                serve(argc, argv);
        if (strcmp(argv[1], "count") == 0 && argc >= 4)
                return do_count(argc, argv);
        if (strcmp(argv[1], "sum") == 0 && argc >= 4)
                return do_sum(argv);
        if (strcmp(argv[1], "echo") == 0 && argc >= 5)
                return do_echo(argv);
        if (strcmp(argv[1], "hold") == 0)
                return do_hold(argc, argv);
        if (strcmp(argv[1], "headers") == 0)
                return do_headers();
        if (strcmp(argv[1], "unary") == 0)
                return do_unary(argc, argv);
        if (strcmp(argv[1], "two-requests") == 0)
                return do_two_requests(argv);
        if (strcmp(argv[1], "oversize") == 0)
                return do_oversize(argv);
        fprintf(stderr, "usage: see the comment at the top of stream-check.c\n");
        return 2;
}
