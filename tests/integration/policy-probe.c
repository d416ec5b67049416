/* SPDX-License-Identifier: MIT */
/*
 * policy-probe: opens one stream through libvbus ($VBUS_URL) and prints what the broker decided,
 * for the policy tests: "ok", or the status name the broker answered (e.g. permission-denied).
 *
 *   policy-probe pub TOPIC          publish one message; "ok" if the broker kept the stream open
 *   policy-probe sub PATTERN        "ok" once the subscription is active
 *   policy-probe serve SERVICE      "ok" once the server is registered
 *   policy-probe call SVC/METHOD [KEY=VALUE]
 *                                   the call's outcome (ok, not-found, permission-denied, ...)
 *                                   with an optional header
 *
 * A publisher is never told it was accepted: libvbus sends the first message before ACCEPT. The
 * probe therefore opens a second stream (a subscription) after it and waits for that one's
 * answer: the broker answers OPENs in the order they came, so by then the publisher's REJECT, if
 * any, has arrived. Every wait is bounded (10 s); exits 0 when it printed an outcome, 1 when it
 * could not get one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vbus/vbus.h>

enum { WAIT_US = 10 * 1000 * 1000 };

static uint64_t left_us(uint64_t *spent)
{
        *spent += 10000;
        return *spent < WAIT_US ? 10000 : 0;
}

static void on_message(vbus_subscription *sub, const vbus_message *msg, void *userdata)
{
        (void)sub;
        (void)msg;
        (void)userdata;
}

static void on_request(vbus_server *srv, vbus_request *req, void *userdata)
{
        (void)srv;
        (void)userdata;
        (void)vbus_request_fail(req, VBUS_STATUS_UNAVAILABLE, "probe");
}

static int outcome(int status)
{
        puts(status == 0 ? "ok" : vbus_status_name(status));
        return 0;
}

/* Waits until @sub is active or ended. Return: its status (0 when active), or -ETIMEDOUT. */
static int wait_sub(vbus_conn *c, vbus_subscription *sub)
{
        uint64_t spent = 0;

        for (;;) {
                int st = vbus_subscription_get_status(sub, NULL);

                if (st != 0)
                        return st;
                if (vbus_subscription_is_active(sub))
                        return 0;
                if (!left_us(&spent))
                        return -ETIMEDOUT;
                (void)vbus_conn_wait(c, 10000);
                (void)vbus_conn_process(c);
        }
}

static int probe_pub(vbus_conn *c, const char *topic)
{
        vbus_publisher *pub = NULL;
        vbus_subscription *sync = NULL;
        int r;

        if (vbus_publisher_open(c, topic, &pub) < 0)
                return -EINVAL;
        r = vbus_publish_wait(pub, "probe", 5, WAIT_US);
        if (r < 0 && r != -EPIPE)
                return r;
        if (vbus_subscribe(c, "policy-probe.sync", VBUS_SLOW_DROP, on_message, NULL, &sync) < 0)
                return -ENOMEM;
        r = wait_sub(c, sync);
        if (r == -ETIMEDOUT)
                return r;
        r = outcome(vbus_publisher_get_status(pub, NULL));
        vbus_subscription_free(sync);
        vbus_publisher_free(pub);
        return r;
}

static int probe_sub(vbus_conn *c, const char *pattern)
{
        vbus_subscription *sub = NULL;
        int r;

        if (vbus_subscribe(c, pattern, VBUS_SLOW_DROP, on_message, NULL, &sub) < 0)
                return -EINVAL;
        r = wait_sub(c, sub);
        if (r != -ETIMEDOUT)
                r = outcome(r);
        vbus_subscription_free(sub);
        return r;
}

static int probe_serve(vbus_conn *c, const char *service)
{
        vbus_server *srv = NULL;
        uint64_t spent = 0;
        int r = -ETIMEDOUT;

        if (vbus_serve(c, service, on_request, NULL, &srv) < 0)
                return -EINVAL;
        while (left_us(&spent)) {
                int st = vbus_server_get_status(srv, NULL);

                if (st != 0 || vbus_server_is_active(srv)) {
                        r = outcome(st);
                        break;
                }
                (void)vbus_conn_wait(c, 10000);
                (void)vbus_conn_process(c);
        }
        vbus_server_free(srv);
        return r;
}

static int probe_call(vbus_conn *c, const char *method, const char *header)
{
        vbus_call_options o = {.timeout_usec = WAIT_US};
        vbus_header h = {0};
        vbus_reply *reply = NULL;
        char key[VBUS_CALL_HEADER_KEY_MAX + 1];
        int r;

        if (header) {
                const char *eq = strchr(header, '=');

                if (!eq || (size_t)(eq - header) > VBUS_CALL_HEADER_KEY_MAX)
                        return -EINVAL;
                memcpy(key, header, (size_t)(eq - header));
                key[eq - header] = '\0';
                h.key = key;
                h.value = eq + 1;
                h.value_size = strlen(eq + 1);
                o.headers = &h;
                o.n_headers = 1;
        }
        r = vbus_call_sync_opts(c, method, "", 0, &o, &reply);
        if (r < 0)
                return r;
        r = outcome(vbus_reply_get_status(reply));
        vbus_reply_free(reply);
        return r;
}

int main(int argc, char **argv)
{
        vbus_conn *c = NULL;
        int r;

        if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[1], "call") != 0)) {
                fprintf(stderr, "usage: policy-probe pub|sub|serve|call NAME [KEY=VALUE]\n");
                return 2;
        }
        if (vbus_conn_open(NULL, &c) < 0 || vbus_conn_wait_ready(c, WAIT_US) < 0) {
                fprintf(stderr, "policy-probe: cannot connect\n");
                return 1;
        }
        if (strcmp(argv[1], "pub") == 0)
                r = probe_pub(c, argv[2]);
        else if (strcmp(argv[1], "sub") == 0)
                r = probe_sub(c, argv[2]);
        else if (strcmp(argv[1], "serve") == 0)
                r = probe_serve(c, argv[2]);
        else if (strcmp(argv[1], "call") == 0)
                r = probe_call(c, argv[2], argc == 4 ? argv[3] : NULL);
        else
                r = -EINVAL;
        vbus_conn_free(c);
        if (r < 0) {
                fprintf(stderr, "policy-probe %s %s: %s\n", argv[1], argv[2], strerror(-r));
                return 1;
        }
        return 0;
}
