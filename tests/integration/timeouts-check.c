/* SPDX-License-Identifier: MIT */
/*
 * timeouts-check: the timeouts of the public API at their extremes (include/vbus/vbus.h,
 * "Timeouts"), against a running broker ($VBUS_URL). VBUS_TIMEOUT_FOREVER (UINT64_MAX) and
 * values close to it once made now + timeout wrap around, so that the blocking helpers returned
 * -ETIMEDOUT at once and calls failed with deadline-exceeded; 0 means "check once" for the
 * helpers and "no deadline" for calls.
 *
 *   timeouts-check helpers
 *       on fresh connections (so the first attempt cannot succeed): vbus_conn_wait_ready(),
 *       vbus_publish_wait() and vbus_conn_flush() with VBUS_TIMEOUT_FOREVER must wait and
 *       succeed; vbus_conn_wait_ready(0) must only check.
 *   timeouts-check call METHOD
 *       vbus_call_sync() of METHOD (a server slower than the library's grace) with
 *       VBUS_TIMEOUT_FOREVER, UINT64_MAX - 1 and 0, each on a connection still connecting and
 *       on a ready one: each must get the server's reply.
 *
 *   timeouts-check loop TOPIC N
 *       an application's own event loop (poll on vbus_conn_get_fd(), sleeping until
 *       vbus_conn_get_timeout()) publishes N messages on TOPIC, one per turn: right after
 *       vbus_publish() the timeout must be now, since over a vchan the broker is told of the
 *       message only by the next vbus_conn_process() (it used to be now + 1 s: each message
 *       waited a second in a loop that trusted the timeout).
 *
 * Prints one "ok ..." line per check; exits 1 at the first failure.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vbus/vbus.h>

static int failed(const char *what, int r)
{
        fprintf(stderr, "timeouts-check: %s: %s\n", what, r < 0 ? strerror(-r) : "unexpected");
        return 1;
}

static vbus_conn *open_conn(void)
{
        vbus_conn *c = NULL;

        if (vbus_conn_open(NULL, &c) < 0) {
                fprintf(stderr, "timeouts-check: vbus_conn_open failed\n");
                exit(1);
        }
        return c;
}

static int check_helpers(void)
{
        static uint8_t big[VBUS_MESSAGE_MAX];
        vbus_publisher *p = NULL;
        vbus_conn *c = open_conn();
        int r;

        /* Right after open the HELLO cannot have been answered: 0 only checks. */
        r = vbus_conn_wait_ready(c, 0);
        if (r != -ETIMEDOUT)
                return failed("vbus_conn_wait_ready(0) on a fresh connection", r);
        printf("ok vbus_conn_wait_ready(0): -ETIMEDOUT at once\n");
        r = vbus_conn_wait_ready(c, VBUS_TIMEOUT_FOREVER);
        if (r != 0)
                return failed("vbus_conn_wait_ready(FOREVER)", r);
        printf("ok vbus_conn_wait_ready(FOREVER): ready\n");
        vbus_conn_free(c);

        /* A fresh connection is not ready: the first vbus_publish() is -EAGAIN. */
        c = open_conn();
        if (vbus_publisher_open(c, "timeouts.check", &p) < 0)
                return failed("vbus_publisher_open", -EINVAL);
        r = vbus_publish_wait(p, "x", 1, VBUS_TIMEOUT_FOREVER);
        if (r != 0)
                return failed("vbus_publish_wait(FOREVER) on a fresh connection", r);
        printf("ok vbus_publish_wait(FOREVER): published once ready\n");

        /* A whole message is 16 windows of credit: it cannot all be sent before the flush. */
        memset(big, 0x5a, sizeof(big));
        r = vbus_publish_wait(p, big, sizeof(big), VBUS_TIMEOUT_FOREVER);
        if (r != 0)
                return failed("vbus_publish_wait(FOREVER) of 1 MiB", r);
        r = vbus_conn_flush(c, VBUS_TIMEOUT_FOREVER);
        if (r != 0)
                return failed("vbus_conn_flush(FOREVER)", r);
        printf("ok vbus_conn_flush(FOREVER): everything handed over\n");
        r = vbus_conn_flush(c, UINT64_MAX - 1);
        if (r != 0)
                return failed("vbus_conn_flush(UINT64_MAX - 1)", r);
        printf("ok vbus_conn_flush(UINT64_MAX - 1)\n");
        vbus_publisher_free(p);
        vbus_conn_free(c);
        return 0;
}

static uint64_t mono_us(void)
{
        struct timespec ts;

        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* One turn of an application's loop: sleep on the fd until the library's timeout, process. */
static int loop_turn(vbus_conn *c)
{
        uint64_t t = 0, now = mono_us();
        struct pollfd pfd = {.fd = vbus_conn_get_fd(c), .events = (short)vbus_conn_get_events(c)};
        int ms = 1000;

        if (vbus_conn_get_timeout(c, &t) == 0 && t != UINT64_MAX)
                ms = t > now ? (int)((t - now + 999) / 1000u) : 0;
        if (pfd.fd >= 0)
                (void)poll(&pfd, 1, ms);
        else if (ms > 0)
                (void)poll(NULL, 0, ms);
        return vbus_conn_process(c);
}

static int check_loop(const char *topic, unsigned long n)
{
        vbus_publisher *p = NULL;
        vbus_conn *c = open_conn();
        unsigned long sent = 0;
        int r;

        r = vbus_conn_wait_ready(c, VBUS_TIMEOUT_FOREVER);
        if (r < 0)
                return failed("vbus_conn_wait_ready", r);
        if (vbus_publisher_open(c, topic, &p) < 0)
                return failed("vbus_publisher_open", -EINVAL);
        while (sent < n) {
                char msg[32];
                uint64_t t = 0;

                (void)snprintf(msg, sizeof(msg), "m%lu", sent);
                r = vbus_publish(p, msg, strlen(msg));
                if (r == 0) {
                        sent++;
                        if (vbus_conn_get_timeout(c, &t) < 0 || t > mono_us())
                                return failed("vbus_conn_get_timeout() after vbus_publish() is "
                                              "later than now: the message would wait",
                                              0);
                } else if (r != -EAGAIN) {
                        return failed("vbus_publish", r);
                }
                r = loop_turn(c);
                if (r < 0)
                        return failed("vbus_conn_process", r);
        }
        /* The last one handed over, through the same loop. */
        for (int i = 0; i < 50 && vbus_conn_flush(c, 0) != 0; i++)
                (void)loop_turn(c);
        printf("ok own event loop: %lu messages, the timeout was now after each publish\n", n);
        vbus_publisher_free(p);
        vbus_conn_free(c);
        return 0;
}

static int check_call(const char *method)
{
        static const uint64_t timeouts[] = {VBUS_TIMEOUT_FOREVER, UINT64_MAX - 1, 0};

        for (size_t i = 0; i < 2 * sizeof(timeouts) / sizeof(timeouts[0]); i++) {
                uint64_t t = timeouts[i / 2];
                vbus_conn *c = open_conn();
                vbus_reply *reply = NULL;
                int r;

                /* Even i: not ready yet, vbus_call_sync() waits within the same timeout. Odd
                 * i: ready, the timeout is all the call's deadline. */
                if (i % 2 && vbus_conn_wait_ready(c, 15000000) < 0)
                        return failed("vbus_conn_wait_ready", -ETIMEDOUT);
                r = vbus_call_sync(c, method, "x", 1, t, &reply);

                if (r < 0)
                        return failed("vbus_call_sync", r);
                if (vbus_reply_get_status(reply) != VBUS_STATUS_OK) {
                        fprintf(stderr, "timeouts-check: call with timeout %" PRIu64 ": %s: %s\n",
                                t, vbus_status_name(vbus_reply_get_status(reply)),
                                vbus_reply_get_message(reply));
                        return 1;
                }
                printf("ok vbus_call_sync(timeout %" PRIu64 ", %s): ok\n", t,
                       i % 2 ? "ready" : "connecting");
                vbus_reply_free(reply);
                vbus_conn_free(c);
        }
        return 0;
}

int main(int argc, char **argv)
{
        (void)setvbuf(stdout, NULL, _IOLBF, 0); /* each line as it happens */
        if (argc == 2 && strcmp(argv[1], "helpers") == 0)
                return check_helpers();
        if (argc == 3 && strcmp(argv[1], "call") == 0)
                return check_call(argv[2]);
        if (argc == 4 && strcmp(argv[1], "loop") == 0)
                return check_loop(argv[2], strtoul(argv[3], NULL, 10));
        fprintf(stderr, "usage: timeouts-check helpers | call METHOD\n");
        return 2;
}
