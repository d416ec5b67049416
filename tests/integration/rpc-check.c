/* SPDX-License-Identifier: MIT */
/*
 * rpc-check: an RPC server and caller for the integration tests.
 *
 *   rpc-check serve SERVICE NAME [--delay MS] [--ready FILE]
 *       serves SERVICE until killed. Methods: Echo (reply "NAME:" + request), Fail
 *       (APPLICATION "failed on purpose"), Invalid (INVALID_ARGUMENT), Slow (reply "NAME" after
 *       --delay MS, answered asynchronously), Deadline (reply the milliseconds left before the
 *       caller's deadline, as seen on arrival). Prints "cancelled METHOD" when a caller's
 *       cancellation or deadline reaches a request it holds, and "caller DESCRIPTION" for each
 *       call.
 *   rpc-check call METHOD DATA [--timeout MS] [--expect STATUS] [--count N] [--sequential]
 *       N concurrent calls (--sequential: one at a time, each started once the previous one
 *       ended); prints "STATUS REPLY" lines, in the order the outcomes arrived; exits 0 if every
 *       status is STATUS (a vbus_status_name(), default ok).
 *   rpc-check cancel METHOD --after MS
 *       starts a call and cancels it after MS milliseconds.
 *   rpc-check kill-wait METHOD --timeout MS
 *       one call; prints "STATUS end-ms T", T being CLOCK_MONOTONIC in ms when the outcome
 *       arrived (the test compares it with when it killed the server).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vbus/vbus.h>

static uint64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static vbus_conn *connect_or_die(void)
{
        vbus_conn *c = NULL;

        if (vbus_conn_open(NULL, &c) < 0 || vbus_conn_wait_ready(c, 15000000) < 0) {
                fprintf(stderr, "rpc-check: no broker\n");
                exit(1);
        }
        return c;
}

/* --- server ------------------------------------------------------------------------------- */

typedef struct Held {
        vbus_request *req;
        uint64_t due;
        bool reported;
} Held;

typedef struct Server {
        const char *name;
        long delay_ms;
        Held held[256];
        int n_held;
} Server;

static void on_request(vbus_server *srv, vbus_request *req, void *userdata)
{
        Server *s = userdata;
        const char *m = vbus_request_get_method(req);
        size_t n;
        const char *d = vbus_request_get_data(req, &n);
        char buf[512];

        (void)srv;
        if (vbus_request_is_caller_local(req))
                printf("caller local uid %u\n", vbus_request_get_caller_uid(req));
        else
                printf("caller dom%u(%s)\n", vbus_request_get_caller_domid(req),
                       vbus_request_get_caller_name(req));
        if (strcmp(m, "Echo") == 0) {
                int k = snprintf(buf, sizeof(buf), "%s:%.*s", s->name, (int)(n < 400 ? n : 400), d);

                vbus_request_reply(req, buf, (size_t)k);
        } else if (strcmp(m, "Fail") == 0) {
                vbus_request_fail(req, VBUS_STATUS_APPLICATION, "failed on purpose");
        } else if (strcmp(m, "Invalid") == 0) {
                vbus_request_fail(req, VBUS_STATUS_INVALID_ARGUMENT, "bad request");
        } else if (strcmp(m, "Deadline") == 0) {
                uint64_t dl = vbus_request_get_deadline(req), now = now_us();
                int k = snprintf(buf, sizeof(buf), "%lld",
                                 dl == UINT64_MAX ? -1LL
                                                  : (long long)((dl > now ? dl - now : 0) / 1000));

                vbus_request_reply(req, buf, (size_t)k);
        } else if (strcmp(m, "Slow") == 0 && s->n_held < 256) {
                s->held[s->n_held].req = req;
                s->held[s->n_held].due = now_us() + (uint64_t)s->delay_ms * 1000u;
                s->held[s->n_held].reported = false;
                s->n_held++;
        } else {
                vbus_request_fail(req, VBUS_STATUS_NOT_FOUND, "no such method");
        }
}

static int cmd_serve(const char *service, const char *name, long delay_ms, const char *ready)
{
        Server s = {.name = name, .delay_ms = delay_ms};
        vbus_conn *c = connect_or_die();
        vbus_server *srv = NULL;
        bool announced = false;

        (void)setvbuf(stdout, NULL, _IOLBF, 0); /* cannot fail: a valid mode */
        if (vbus_serve(c, service, on_request, &s, &srv) < 0)
                return 1;
        for (;;) {
                (void)vbus_conn_wait(c, 10000);
                if (!announced && vbus_server_is_active(srv) && ready) {
                        FILE *f = fopen(ready, "w");

                        if (!f || fclose(f) != 0)
                                fprintf(stderr, "cannot create %s: %s\n", ready, strerror(errno));
                        announced = true;
                }
                for (int i = 0; i < s.n_held; i++) {
                        Held *h = &s.held[i];

                        if (vbus_request_is_cancelled(h->req) && !h->reported) {
                                printf("cancelled %s\n", vbus_request_get_method(h->req));
                                h->reported = true;
                        }
                        if (now_us() >= h->due || h->reported) {
                                (void)vbus_request_reply(h->req, s.name, strlen(s.name));
                                s.held[i--] = s.held[--s.n_held];
                        }
                }
        }
}

/* --- callers ------------------------------------------------------------------------------ */

typedef struct Outcome {
        int n_done, n_match;
        int expect;
} Outcome;

static void on_reply(vbus_call *call, const vbus_reply *r, void *userdata)
{
        Outcome *o = userdata;
        size_t n;
        const char *d = vbus_reply_get_data(r, &n);
        int st = vbus_reply_get_status(r);

        (void)call;
        o->n_done++;
        o->n_match += st == o->expect;
        printf("%s %.*s%s\n", vbus_status_name(st), (int)n, d ? d : "", vbus_reply_get_message(r));
}

static int cmd_call(const char *method, const char *data, long timeout_ms, const char *expect,
                    int count, bool sequential)
{
        vbus_conn *c = connect_or_die();
        Outcome o = {0};
        vbus_status ex;
        int r;

        if (vbus_status_from_name(expect, &ex) < 0)
                return 2;
        o.expect = (int)ex;
        (void)setvbuf(stdout, NULL, _IOLBF, 0); /* cannot fail: a valid mode */
        for (int i = 0; i < count; i++) {
                r = vbus_call_start(c, method, data, strlen(data),
                                    timeout_ms > 0 ? (uint64_t)timeout_ms * 1000u : 0, on_reply, &o,
                                    NULL);
                if (r < 0) {
                        fprintf(stderr, "rpc-check: call %d: %s\n", i, strerror(-r));
                        return 1;
                }
                while (sequential && o.n_done <= i)
                        (void)vbus_conn_wait(c, 100000);
        }
        while (o.n_done < count)
                (void)vbus_conn_wait(c, 100000);
        vbus_conn_free(c);
        return o.n_match == count ? 0 : 1;
}

static void ignore_reply(vbus_call *call, const vbus_reply *r, void *userdata)
{
        (void)call;
        (void)r;
        *(bool *)userdata = true;
}

static int cmd_cancel(const char *method, long after_ms)
{
        vbus_conn *c = connect_or_die();
        vbus_call *call = NULL;
        bool done = false;
        uint64_t until;

        if (vbus_call_start(c, method, "x", 1, 0, ignore_reply, &done, &call) < 0)
                return 1;
        until = now_us() + (uint64_t)after_ms * 1000u;
        while (now_us() < until && !done)
                (void)vbus_conn_wait(c, 10000);
        if (done) {
                fprintf(stderr, "rpc-check: the call ended before it could be cancelled\n");
                return 1;
        }
        vbus_call_cancel(call);
        (void)vbus_conn_flush(c, 1000000);
        printf("cancelled after %ld ms\n", after_ms);
        vbus_conn_free(c);
        return 0;
}

static int cmd_kill_wait(const char *method, long timeout_ms)
{
        vbus_conn *c = connect_or_die();
        vbus_reply *r = NULL;

        if (vbus_call_sync(c, method, "x", 1, (uint64_t)timeout_ms * 1000u, &r) < 0)
                return 1;
        /* CLOCK_MONOTONIC in ms, comparable with Python's time.monotonic() in the test. */
        printf("%s end-ms %llu\n", vbus_status_name(vbus_reply_get_status(r)),
               (unsigned long long)(now_us() / 1000u));
        vbus_reply_free(r);
        vbus_conn_free(c);
        return 0;
}

int main(int argc, char **argv)
{
        long delay = 0, timeout = 0, after = 0;
        const char *ready = NULL, *expect = "ok";
        int count = 1;
        bool sequential = false;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--sequential") == 0)
                        sequential = true;
                else if (i + 1 >= argc)
                        break;
                else if (strcmp(argv[i], "--delay") == 0)
                        delay = strtol(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--timeout") == 0)
                        timeout = strtol(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--after") == 0)
                        after = strtol(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--ready") == 0)
                        ready = argv[++i];
                else if (strcmp(argv[i], "--expect") == 0)
                        expect = argv[++i];
                else if (strcmp(argv[i], "--count") == 0)
                        count = (int)strtol(argv[++i], NULL, 10);
        }
        if (argc >= 4 && strcmp(argv[1], "serve") == 0)
                return cmd_serve(argv[2], argv[3], delay, ready);
        if (argc >= 4 && strcmp(argv[1], "call") == 0)
                return cmd_call(argv[2], argv[3], timeout, expect, count, sequential);
        if (argc >= 3 && strcmp(argv[1], "cancel") == 0)
                return cmd_cancel(argv[2], after);
        if (argc >= 3 && strcmp(argv[1], "kill-wait") == 0)
                return cmd_kill_wait(argv[2], timeout);
        fprintf(stderr, "usage: see the comment at the top of rpc-check.c\n");
        return 2;
}
