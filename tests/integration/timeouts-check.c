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
 * Prints one "ok ..." line per check; exits 1 at the first failure.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        fprintf(stderr, "usage: timeouts-check helpers | call METHOD\n");
        return 2;
}
