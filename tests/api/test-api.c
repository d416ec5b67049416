/* SPDX-License-Identifier: MIT */
/*
 * Links libvbus.so, the INSTALLED one through pkg-config (scripts/test, tests/api/CMakeLists.txt)
 * or the build tree's (ctest: libvbus-api, tests/CMakeLists.txt), and calls every exported
 * symbol of libbus/libbus.sym, checking each documented result: first the argument checks, then
 * real use against a broker it starts itself (vchand --no-xen on a private socket, its path in
 * argv[1]): publish/subscribe and a call to a service it serves. tests/api/check-exports.sh
 * checks that the export list and the library agree, so no symbol can be exported without being
 * called here.
 *
 * Usage: test-api VCHAND
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vbus/vbus-protobuf.h>
#include <vbus/vbus.h>

static int n_failed;

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "test-api: %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, \
                                #cond);                                                            \
                        n_failed++;                                                                \
                }                                                                                  \
        } while (0)

static void check_status_names(void)
{
        vbus_status s = VBUS_STATUS_UNSPECIFIED;

        CHECK(vbus_version() != NULL && strcmp(vbus_version(), "0.0.0") > 0);
        CHECK(strcmp(vbus_status_name(VBUS_STATUS_OK), "ok") == 0);
        CHECK(strcmp(vbus_status_name(-1), "unknown") == 0);
        CHECK(vbus_status_from_name("unavailable", &s) == 0 && s == VBUS_STATUS_UNAVAILABLE);
        CHECK(vbus_status_from_name("no-such-status", &s) == -ENOENT);
        CHECK(vbus_status_from_name(NULL, &s) == -EINVAL);
        for (int i = 0; i < VBUS_STATUS_N; i++) {
                vbus_status back;

                CHECK(vbus_status_from_name(vbus_status_name(i), &back) == 0 && (int)back == i);
        }
}

/* Every function refuses NULL and bad arguments with -EINVAL (or a neutral value). */
static void check_argument_errors(void)
{
        vbus_conn *c = NULL;
        vbus_publisher *p = NULL;
        vbus_subscription *s = NULL;
        vbus_server *srv = NULL;
        vbus_reply *r = NULL;
        uint64_t t;

        CHECK(vbus_conn_open("bogus", &c) == -EINVAL);
        CHECK(vbus_conn_open("tcp:1.2.3.4", &c) == -EAFNOSUPPORT);
        CHECK(vbus_conn_open(NULL, NULL) == -EINVAL);
        CHECK(vbus_conn_open_auth(NULL, NULL, NULL, NULL) == -EINVAL);
        CHECK(vbus_key_generate(NULL, NULL, 0) == -EINVAL);
        CHECK(vbus_key_generate("", NULL, 0) == -EINVAL);
        CHECK(vbus_key_generate("/nonexistent/k", (char[4]){0}, 4) == -EINVAL);
        CHECK(vbus_key_generate("/nonexistent/k", NULL, 0) == -ENOENT ||
              vbus_key_generate("/nonexistent/k", NULL, 0) == -ENOTSUP);
        CHECK(vbus_conn_open_auth("bogus", NULL, NULL, &c) == -EINVAL);
        /* A broker key that is not one (too short; then one without its '=' padding). */
        CHECK(vbus_conn_open_auth("unix:/nonexistent", NULL, "AgvUJ0", &c) == -EINVAL ||
              vbus_conn_open_auth("unix:/nonexistent", NULL, "AgvUJ0", &c) == -ENOTSUP);
        CHECK(vbus_conn_open_auth("unix:/nonexistent", NULL,
                                  "AgvUJ0Rr+jQk2A0srTUro982SdDvj6rgyn6yVEOUGyk", &c) == -EINVAL ||
              vbus_conn_open_auth("unix:/nonexistent", NULL,
                                  "AgvUJ0Rr+jQk2A0srTUro982SdDvj6rgyn6yVEOUGyk", &c) == -ENOTSUP);
        CHECK(vbus_conn_open_auth("unix:/nonexistent", "/nonexistent/key", NULL, &c) == -ENOENT ||
              vbus_conn_open_auth("unix:/nonexistent", "/nonexistent/key", NULL, &c) == -ENOTSUP);
        CHECK(vbus_conn_free(NULL) == NULL);
        CHECK(vbus_conn_get_fd(NULL) == -EINVAL);
        CHECK(vbus_conn_get_events(NULL) == -EINVAL);
        CHECK(vbus_conn_get_timeout(NULL, &t) == -EINVAL);
        CHECK(vbus_conn_process(NULL) == -EINVAL);
        CHECK(vbus_conn_wait(NULL, 0) == -EINVAL);
        CHECK(vbus_conn_wait_ready(NULL, 0) == -EINVAL);
        CHECK(vbus_conn_flush(NULL, 0) == -EINVAL);
        CHECK(vbus_conn_sync(NULL, 0) == -EINVAL);
        CHECK(vbus_conn_get_state(NULL) == -EINVAL);
        CHECK(vbus_conn_get_last_error(NULL) == -EINVAL);
        CHECK(vbus_conn_get_reconnects(NULL) == 0);
        CHECK(vbus_publisher_open(NULL, "a.b", &p) == -EINVAL);
        CHECK(vbus_publisher_free(NULL) == NULL);
        CHECK(vbus_publish(NULL, "x", 1) == -EINVAL);
        CHECK(vbus_publish_wait(NULL, "x", 1, 0) == -EINVAL);
        CHECK(vbus_publish_retained(NULL, "x", 1) == -EINVAL);
        CHECK(vbus_publish_retained_wait(NULL, "x", 1, 0) == -EINVAL);
        CHECK(vbus_publisher_get_status(NULL, NULL) == -EINVAL);
        CHECK(vbus_subscribe(NULL, "a.>", VBUS_SLOW_DROP, NULL, NULL, &s) == -EINVAL);
        CHECK(vbus_subscription_free(NULL) == NULL);
        CHECK(!vbus_subscription_is_active(NULL));
        CHECK(vbus_subscription_get_status(NULL, NULL) == -EINVAL);
        CHECK(vbus_message_get_topic(NULL) == NULL);
        CHECK(vbus_message_get_data(NULL, NULL) == NULL);
        CHECK(vbus_message_get_sender_domid(NULL) == 0);
        CHECK(vbus_message_get_sender_name(NULL)[0] == '\0');
        CHECK(!vbus_message_is_sender_local(NULL));
        CHECK(vbus_message_get_sender_uid(NULL) == 0);
        CHECK(vbus_message_get_sender_pid(NULL) == 0);
        CHECK(vbus_message_get_sender_session(NULL) == 0);
        CHECK(!vbus_message_get_sender_claims(NULL, NULL, NULL, NULL));
        CHECK(vbus_message_get_dropped(NULL) == 0);
        CHECK(vbus_message_get_sequence(NULL) == 0);
        CHECK(!vbus_message_follows_gap(NULL));
        CHECK(!vbus_message_is_retained(NULL));
        CHECK(vbus_call_start(NULL, "a.B/C", NULL, 0, 0, NULL, NULL, NULL) == -EINVAL);
        CHECK(vbus_call_cancel(NULL) == -EINVAL);
        CHECK(vbus_call_sync(NULL, "a.B/C", NULL, 0, 0, &r) == -EINVAL);
        CHECK(vbus_reply_get_status(NULL) == -EINVAL);
        CHECK(vbus_reply_get_message(NULL)[0] == '\0');
        CHECK(vbus_reply_get_data(NULL, NULL) == NULL);
        CHECK(vbus_reply_free(NULL) == NULL);
        CHECK(vbus_serve(NULL, "a.B", NULL, NULL, &srv) == -EINVAL);
        CHECK(vbus_server_free(NULL) == NULL);
        CHECK(!vbus_server_is_active(NULL));
        CHECK(vbus_server_get_status(NULL, NULL) == -EINVAL);
        CHECK(vbus_request_get_method(NULL) == NULL);
        CHECK(vbus_request_get_full_method(NULL) == NULL);
        CHECK(vbus_request_get_data(NULL, NULL) == NULL);
        CHECK(vbus_request_get_caller_domid(NULL) == 0);
        CHECK(vbus_request_get_caller_name(NULL)[0] == '\0');
        CHECK(!vbus_request_is_caller_local(NULL));
        CHECK(vbus_request_get_caller_uid(NULL) == 0);
        CHECK(vbus_request_get_caller_key(NULL)[0] == '\0');
        CHECK(vbus_message_get_sender_key(NULL)[0] == '\0');
        CHECK(vbus_request_get_deadline(NULL) == UINT64_MAX);
        CHECK(vbus_request_is_cancelled(NULL));
        CHECK(vbus_request_reply(NULL, NULL, 0) == -EINVAL);
        CHECK(vbus_request_fail(NULL, VBUS_STATUS_INTERNAL, NULL) == -EINVAL);
        CHECK(vbus_call_start_opts(NULL, "a.B/C", NULL, 0, NULL, NULL, NULL, NULL) == -EINVAL);
        CHECK(vbus_call_sync_opts(NULL, "a.B/C", NULL, 0, NULL, &r) == -EINVAL);
        CHECK(vbus_request_get_n_headers(NULL) == 0);
        CHECK(vbus_request_get_header(NULL, 0, NULL, NULL, NULL) == -EINVAL);
        CHECK(vbus_request_find_header(NULL, "k", NULL) == NULL);
        CHECK(vbus_stream_open(NULL, "a.B/C", NULL, NULL, NULL, NULL) == -EINVAL);
        CHECK(vbus_stream_send(NULL, "x", 1) == -EINVAL);
        CHECK(vbus_stream_send_wait(NULL, "x", 1, 0) == -EINVAL);
        CHECK(vbus_stream_close_send(NULL) == -EINVAL);
        CHECK(vbus_stream_finish(NULL, VBUS_STATUS_OK, NULL) == -EINVAL);
        CHECK(vbus_stream_cancel(NULL) == -EINVAL);
        CHECK(vbus_stream_set_paused(NULL, true) == -EINVAL);
        CHECK(vbus_stream_get_request(NULL) == NULL);
        CHECK(vbus_stream_get_userdata(NULL) == NULL);
        CHECK(vbus_server_stream_method(NULL, "M", NULL, NULL) == -EINVAL);
        CHECK(vbus_request_stream(NULL, NULL, NULL, NULL) == -EINVAL);
}

/* The protobuf-c glue (vbus-protobuf.h): argument errors here; real typed calls are exercised
 * by examples/kvstore and tests/integration/rpc-typed.sh. */
static void check_protobuf_argument_errors(void)
{
        ProtobufCService *svc = NULL;
        ProtobufCMessage *msg = NULL;
        vbus_server *srv = NULL;

        CHECK(vbus_protobuf_serve(NULL, NULL, &srv) == -EINVAL);
        CHECK(vbus_protobuf_get_request(NULL) == NULL);
        CHECK(vbus_protobuf_fail(NULL, VBUS_STATUS_APPLICATION, "x") == -EINVAL);
        CHECK(vbus_protobuf_describe(NULL, NULL, NULL, 0) == -EINVAL);
        CHECK(vbus_protobuf_client_new(NULL, NULL, 0, &svc) == -EINVAL);
        CHECK(vbus_protobuf_client_free(NULL) == NULL);
        CHECK(vbus_protobuf_client_get_status(NULL, NULL) == -EINVAL);
        CHECK(vbus_protobuf_call(NULL, NULL, "Get", NULL, 0, NULL, NULL) == -EINVAL);
        CHECK(vbus_protobuf_decode(NULL, "", 0, &msg) == -EINVAL);
}

typedef struct Seen {
        int n;
        char topic[64], data[64];
        bool local;
} Seen;

static void on_message(vbus_subscription *sub, const vbus_message *m, void *userdata)
{
        Seen *seen = userdata;
        size_t n;
        const char *d = vbus_message_get_data(m, &n);

        (void)sub;
        seen->n++;
        CHECK(snprintf(seen->topic, sizeof(seen->topic), "%s", vbus_message_get_topic(m)) <
              (int)sizeof(seen->topic));
        CHECK(snprintf(seen->data, sizeof(seen->data), "%.*s", (int)n, d) <
              (int)sizeof(seen->data));
        seen->local = vbus_message_is_sender_local(m) &&
                      vbus_message_get_sender_pid(m) == (uint32_t)getpid() &&
                      vbus_message_get_sender_uid(m) == getuid();
        (void)vbus_message_get_sender_domid(m);
        (void)vbus_message_get_sender_name(m);
        CHECK(vbus_message_get_sequence(m) == 1 && vbus_message_get_dropped(m) == 0);
        CHECK(!vbus_message_follows_gap(m));
        CHECK(!vbus_message_is_retained(m));
        /* A direct link: no agent session, no claims (and nothing written). */
        {
                uint32_t uid = 77;

                CHECK(vbus_message_get_sender_session(m) == 0);
                CHECK(!vbus_message_get_sender_claims(m, &uid, NULL, NULL) && uid == 77);
        }
}

static void on_retained(vbus_subscription *sub, const vbus_message *m, void *userdata)
{
        Seen *seen = userdata;
        size_t n;
        const char *d = vbus_message_get_data(m, &n);

        (void)sub;
        seen->n++;
        CHECK(snprintf(seen->data, sizeof(seen->data), "%.*s", (int)n, d) <
              (int)sizeof(seen->data));
        seen->local = vbus_message_is_retained(m);
}

static void on_request(vbus_server *srv, vbus_request *req, void *userdata)
{
        size_t n;
        const char *d = vbus_request_get_data(req, &n);

        (void)srv;
        (void)userdata;
        CHECK(strcmp(vbus_request_get_method(req), "Upper") == 0);
        CHECK(strcmp(vbus_request_get_full_method(req), "api.v1.Text/Upper") == 0);
        CHECK(vbus_request_is_caller_local(req) && vbus_request_get_caller_uid(req) == getuid());
        CHECK(vbus_request_get_caller_domid(req) == 0);
        CHECK(vbus_request_get_caller_name(req) != NULL);
        CHECK(vbus_request_get_deadline(req) != UINT64_MAX);
        CHECK(!vbus_request_is_cancelled(req));
        if (n == 4 && memcmp(d, "fail", 4) == 0) {
                CHECK(vbus_request_fail(req, VBUS_STATUS_APPLICATION, "as asked") == 0);
        } else {
                char up[64];

                for (size_t i = 0; i < n && i < sizeof(up); i++)
                        up[i] = (char)(d[i] >= 'a' && d[i] <= 'z' ? d[i] - 32 : d[i]);
                CHECK(vbus_request_reply(req, up, n < sizeof(up) ? n : sizeof(up)) == 0);
        }
}

/* Streaming: api.v1.Text/Shout takes words and answers each upper-cased, then the count. */
typedef struct StreamSeen {
        int n, status;
        bool ended;
        char last[64];
} StreamSeen;

static void shout_message(vbus_stream *st, const void *data, size_t n, void *userdata)
{
        int *count = userdata;
        char up[64];

        if (!data) {
                char line[32];

                (void)snprintf(line, sizeof(line), "%d", *count); /* an int: it fits */
                CHECK(vbus_stream_send(st, line, strlen(line)) == 0);
                CHECK(vbus_stream_finish(st, VBUS_STATUS_OK, NULL) == 0);
                return;
        }
        for (size_t i = 0; i < n && i < sizeof(up); i++)
                up[i] = (char)(((const char *)data)[i] & ~0x20);
        (*count)++;
        CHECK(vbus_stream_send(st, up, n < sizeof(up) ? n : sizeof(up)) == 0);
}

static void on_shout(vbus_server *srv, vbus_request *req, void *userdata)
{
        vbus_stream_handlers h = {.on_message = shout_message};
        const void *v;
        size_t vn;
        vbus_stream *st;

        (void)srv;
        CHECK(vbus_request_get_n_headers(req) == 1);
        v = vbus_request_find_header(req, "lang", &vn);
        CHECK(v && vn == 2 && memcmp(v, "en", 2) == 0);
        CHECK(vbus_request_stream(req, &h, userdata, &st) == 0);
        CHECK(vbus_stream_get_request(st) == req && vbus_stream_get_userdata(st) == userdata);
}

static void caller_message(vbus_stream *st, const void *data, size_t n, void *userdata)
{
        StreamSeen *seen = userdata;

        (void)st;
        seen->n++;
        CHECK(snprintf(seen->last, sizeof(seen->last), "%.*s", (int)n, (const char *)data) <
              (int)sizeof(seen->last));
}

static void caller_end(vbus_stream *st, int status, const char *message, void *userdata)
{
        StreamSeen *seen = userdata;

        (void)st;
        (void)message;
        seen->ended = true;
        seen->status = status;
}

static void on_reply(vbus_call *call, const vbus_reply *r, void *userdata)
{
        (void)call;
        *(int *)userdata = vbus_reply_get_status(r);
}

static void check_with_broker(const char *sock)
{
        char url[200];
        vbus_conn *c = NULL;
        vbus_publisher *p = NULL;
        vbus_subscription *s = NULL;
        vbus_server *srv = NULL;
        vbus_reply *r = NULL;
        vbus_call *call = NULL;
        Seen seen = {0};
        const char *msg = NULL;
        uint64_t t;
        size_t n;
        int st = -1;

        CHECK(snprintf(url, sizeof(url), "unix:%s", sock) < (int)sizeof(url));
        CHECK(vbus_conn_open(url, &c) == 0);
        CHECK(vbus_conn_wait_ready(c, 5000000) == 0);
        CHECK(vbus_conn_get_state(c) == VBUS_CONN_READY);
        CHECK(vbus_conn_get_last_error(c) == 0);
        CHECK(vbus_conn_get_fd(c) >= 0);
        CHECK(vbus_conn_get_events(c) & POLLIN);
        CHECK(vbus_conn_get_timeout(c, &t) == 0);
        CHECK(vbus_conn_get_reconnects(c) == 0);

        CHECK(vbus_subscribe(c, "api.>", VBUS_SLOW_BLOCK, on_message, &seen, &s) == 0);
        CHECK(vbus_publisher_open(c, "api.test", &p) == 0);
        CHECK(vbus_publisher_open(c, "api.*", &p) == -EINVAL || p != NULL);
        for (int i = 0; i < 50 && !vbus_subscription_is_active(s); i++)
                (void)vbus_conn_wait(c, 100000);
        CHECK(vbus_subscription_is_active(s));
        CHECK(vbus_subscription_get_status(s, &msg) == 0);
        CHECK(vbus_publish_wait(p, "hello", 5, 5000000) == 0);
        CHECK(vbus_publish(p, "x", VBUS_MESSAGE_MAX + 1) == -EMSGSIZE);
        CHECK(vbus_publisher_get_status(p, &msg) == 0);
        CHECK(vbus_conn_flush(c, 5000000) == 0);
        for (int i = 0; i < 50 && seen.n == 0; i++)
                (void)vbus_conn_wait(c, 100000);
        CHECK(seen.n == 1 && strcmp(seen.topic, "api.test") == 0 &&
              strcmp(seen.data, "hello") == 0 && seen.local);
        (void)vbus_conn_process(c);

        CHECK(vbus_serve(c, "api.v1.Text", on_request, NULL, &srv) == 0);
        for (int i = 0; i < 50 && !vbus_server_is_active(srv); i++)
                (void)vbus_conn_wait(c, 100000);
        CHECK(vbus_server_is_active(srv));
        CHECK(vbus_server_get_status(srv, NULL) == 0);
        /* The caller and the server are on the same connection: the async API serves both. */
        CHECK(vbus_call_start(c, "api.v1.Text/Upper", "abc", 3, 5000000, on_reply, &st, &call) ==
              0);
        for (int i = 0; i < 50 && st < 0; i++)
                (void)vbus_conn_wait(c, 100000);
        CHECK(st == VBUS_STATUS_OK);
        st = -1;
        CHECK(vbus_call_start(c, "api.v1.Text/Upper", "fail", 4, 5000000, on_reply, &st, NULL) ==
              0);
        for (int i = 0; i < 50 && st < 0; i++)
                (void)vbus_conn_wait(c, 100000);
        CHECK(st == VBUS_STATUS_APPLICATION);
        CHECK(vbus_call_sync(c, "nobody.v1.X/Y", "x", 1, 2000000, &r) == 0);
        CHECK(vbus_reply_get_status(r) == VBUS_STATUS_NOT_FOUND);
        CHECK(strstr(vbus_reply_get_message(r), "no responders") != NULL);
        CHECK(vbus_reply_get_data(r, &n) == NULL || n == 0);
        vbus_reply_free(r);

        {
                vbus_header hd = {.key = "lang", .value = "en", .value_size = 2};
                vbus_call_options o = {.timeout_usec = 5000000, .headers = &hd, .n_headers = 1};
                vbus_stream_handlers h = {.on_message = caller_message, .on_end = caller_end};
                StreamSeen ss = {0};
                vbus_stream *cs = NULL;
                int count = 0;

                CHECK(vbus_server_stream_method(srv, "Shout", on_shout, &count) == 0);
                CHECK(vbus_stream_open(c, "api.v1.Text/Shout", &o, &h, &ss, &cs) == 0);
                CHECK(vbus_stream_set_paused(cs, false) == 0);
                CHECK(vbus_stream_send_wait(cs, "abc", 3, 5000000) == 0);
                CHECK(vbus_stream_send(cs, "xyz", 3) == 0);
                CHECK(vbus_stream_close_send(cs) == 0);
                CHECK(vbus_stream_send(cs, "late", 4) == -EPIPE);
                for (int i = 0; i < 50 && !ss.ended; i++)
                        (void)vbus_conn_wait(c, 100000);
                CHECK(ss.ended && ss.status == VBUS_STATUS_OK && ss.n == 3 &&
                      strcmp(ss.last, "2") == 0);
                CHECK(vbus_call_sync_opts(c, "api.v1.Text/Upper", "q", 1, &o, &r) == 0);
                CHECK(vbus_reply_get_status(r) == VBUS_STATUS_OK);
                vbus_reply_free(r);
        }
        /* Last: the server on this same connection never gets to see the cancelled call. */
        CHECK(vbus_call_start(c, "api.v1.Text/Upper", "zzz", 3, 0, on_reply, &st, &call) == 0);
        CHECK(vbus_call_cancel(call) == 0);

        /* Retained values: a subscription that begins later gets the last one, marked. */
        {
                Seen kept = {0};
                vbus_subscription *s2 = NULL;

                s = vbus_subscription_free(s); /* it saw exactly one message: keep it so */
                CHECK(vbus_publish_retained_wait(p, "kept", 4, 5000000) == 0);
                CHECK(vbus_conn_sync(c, 5000000) == 0);
                CHECK(vbus_publisher_get_status(p, NULL) == 0);
                CHECK(vbus_subscribe(c, "api.*", VBUS_SLOW_DROP, on_retained, &kept, &s2) == 0);
                for (int i = 0; i < 50 && kept.n == 0; i++)
                        (void)vbus_conn_wait(c, 100000);
                CHECK(kept.n == 1 && strcmp(kept.data, "kept") == 0 && kept.local);
                vbus_subscription_free(s2);
        }

        vbus_server_free(srv);
        vbus_publisher_free(p);
        vbus_subscription_free(s);
        vbus_conn_free(c);
}

int main(int argc, char **argv)
{
        char sock[] = "/tmp/vbus-api-XXXXXX";
        char path[128];
        pid_t broker;

        check_status_names();
        check_argument_errors();
        check_protobuf_argument_errors();
        if (argc != 2) {
                fprintf(stderr, "usage: test-api VCHAND\n");
                return 2;
        }
        if (!mkdtemp(sock))
                return 1;
        if ((size_t)snprintf(path, sizeof(path), "%s/broker.sock", sock) >= sizeof(path))
                return 1;
        broker = fork();
        if (broker == 0) {
                execl(argv[1], argv[1], "--no-xen", "--policy", "open", "--socket", path,
                      (char *)NULL);
                _exit(127);
        }
        for (int i = 0; i < 100 && access(path, F_OK) != 0; i++)
                usleep(50000);
        check_with_broker(path);
        kill(broker, SIGTERM);
        waitpid(broker, NULL, 0);
        unlink(path);
        rmdir(sock);
        printf("test-api: libvbus %s: %s\n", vbus_version(),
               n_failed ? "FAILED" : "every exported symbol called, all results as documented");
        return n_failed ? 1 : 0;
}
