/* SPDX-License-Identifier: MIT */
/*
 * kvstore-client: calls storage.v1.Store (kvstore.proto) over vbus.
 *
 *   kvstore-client [--timeout MS] [--sync | --count N [--give-up-after MS]]
 *                  put KEY VALUE | get KEY | delete KEY
 *   kvstore-client [--timeout MS] scan [PREFIX]
 *
 * By default through the stubs protoc-c generated (storage__v1__store__get() and so on) on the
 * ProtobufCService that vbus_protobuf_client_new() returns: the closure runs from
 * vbus_conn_process() with the decoded reply. With --sync, through the blocking
 * vbus_protobuf_call() instead. Both print the same. --count N starts the call N times at once
 * (all in flight together) and prints each outcome; --give-up-after MS frees the client after MS
 * milliseconds if calls are still in flight, which cancels them (each prints "cancelled").
 *
 * Output and exit status: put prints "ok (new)" or "ok (replaced)"; get prints the value; delete
 * prints "deleted"; 0. A missing key (get, delete): "not found" on stderr, 1. A failed call:
 * "kvstore-client: STATUS: MESSAGE" on stderr, 3. Usage errors: 2.
 *
 * scan is a server-streaming call (Scan returns a stream of ScanEntry): it opens a vbus_stream,
 * sends the one ScanRequest with vbus_protobuf_stream_send() and prints "KEY=VALUE" for each
 * entry as it arrives, then "N entries"; 0, or 3 if the call failed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vbus/vbus-protobuf.h>

#include "kvstore.pb-c.h"

enum {
        EXIT_NOT_FOUND = 1,
        EXIT_USAGE = 2,
        EXIT_CALL_FAILED = 3,
};

/* Prints a reply (any of the three output types) and returns the exit status. */
static int print_reply(const ProtobufCMessage *msg)
{
        if (msg->descriptor == &storage__v1__get_response__descriptor) {
                const Storage__V1__GetResponse *r = (const Storage__V1__GetResponse *)msg;

                if (!r->found) {
                        fprintf(stderr, "not found\n");
                        return EXIT_NOT_FOUND;
                }
                /* An error is sticky on stdout: the fflush() after each reply reports it. */
                (void)fwrite(r->value.data, 1, r->value.len, stdout);
                putchar('\n');
        } else if (msg->descriptor == &storage__v1__put_response__descriptor) {
                printf("ok (%s)\n",
                       ((const Storage__V1__PutResponse *)msg)->replaced ? "replaced" : "new");
        } else {
                if (!((const Storage__V1__DeleteResponse *)msg)->found) {
                        fprintf(stderr, "not found\n");
                        return EXIT_NOT_FOUND;
                }
                printf("deleted\n");
        }
        return 0;
}

static int print_failure(int status, const char *message)
{
        fprintf(stderr, "kvstore-client: %s%s%s\n", vbus_status_name(status),
                message[0] ? ": " : "", message);
        return EXIT_CALL_FAILED;
}

typedef struct StubCall {
        ProtobufCService *service;
        unsigned n_done;
        int exit_code; /* the highest of the calls' */
} StubCall;

/* What every closure does: @msg is the decoded reply, or NULL if the call failed. */
static void on_reply(const ProtobufCMessage *msg, void *closure_data)
{
        StubCall *sc = closure_data;
        const char *message;
        int code;

        sc->n_done++;
        if (msg) {
                code = print_reply(msg);
        } else {
                int status = vbus_protobuf_client_get_status(sc->service, &message);

                code = print_failure(status, message);
        }
        if (fflush(stdout) != 0) {
                fprintf(stderr, "kvstore-client: cannot write the reply: %s\n", strerror(errno));
                code = EXIT_CALL_FAILED;
        }
        if (code > sc->exit_code)
                sc->exit_code = code;
}

/* The closures, one per output type as the stubs declare them. */
static void on_get(const Storage__V1__GetResponse *msg, void *closure_data)
{
        on_reply(msg ? &msg->base : NULL, closure_data);
}

static void on_put(const Storage__V1__PutResponse *msg, void *closure_data)
{
        on_reply(msg ? &msg->base : NULL, closure_data);
}

static void on_delete(const Storage__V1__DeleteResponse *msg, void *closure_data)
{
        on_reply(msg ? &msg->base : NULL, closure_data);
}

/* The three requests; only the one for the command is used. */
typedef struct Requests {
        Storage__V1__GetRequest get;
        Storage__V1__PutRequest put;
        Storage__V1__DeleteRequest del;
} Requests;

static uint64_t now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int run_stubs(vbus_conn *conn, const char *cmd, Requests *rq, uint64_t timeout_usec,
                     unsigned count, uint64_t give_up_usec)
{
        uint64_t give_up_at = give_up_usec ? now_usec() + give_up_usec : UINT64_MAX;
        StubCall sc = {0};
        int r;

        r = vbus_protobuf_client_new(conn, &storage__v1__store__descriptor, timeout_usec,
                                     &sc.service);
        if (r < 0) {
                fprintf(stderr, "kvstore-client: %s\n", strerror(-r));
                return EXIT_CALL_FAILED;
        }
        /* The generated stubs, unchanged: each one is a call over the bus. */
        for (unsigned i = 0; i < count; i++) {
                if (strcmp(cmd, "get") == 0)
                        storage__v1__store__get(sc.service, &rq->get, on_get, &sc);
                else if (strcmp(cmd, "put") == 0)
                        storage__v1__store__put(sc.service, &rq->put, on_put, &sc);
                else
                        storage__v1__store__delete(sc.service, &rq->del, on_delete, &sc);
        }
        while (sc.n_done < count && now_usec() < give_up_at) {
                uint64_t now = now_usec(), wait = 100000;

                if (give_up_at - now < wait)
                        wait = give_up_at - now;
                r = vbus_conn_wait(conn, wait);
                if (r < 0 && r != -ETIMEDOUT && r != -EINTR) {
                        fprintf(stderr, "kvstore-client: %s\n", strerror(-r));
                        break;
                }
        }
        /* Frees the client; calls still in flight are cancelled (their closures run now). */
        vbus_protobuf_client_free(sc.service);
        /* Send the cancellations before the connection goes. */
        (void)vbus_conn_flush(conn, 1000000);
        return sc.n_done == count ? sc.exit_code : EXIT_CALL_FAILED;
}

static int run_sync(vbus_conn *conn, const char *cmd, Requests *rq, uint64_t timeout_usec)
{
        const ProtobufCMessage *input;
        ProtobufCMessage *output = NULL;
        vbus_reply *reply = NULL;
        const char *method;
        int r, code;

        if (strcmp(cmd, "get") == 0) {
                method = "Get";
                input = &rq->get.base;
        } else if (strcmp(cmd, "put") == 0) {
                method = "Put";
                input = &rq->put.base;
        } else {
                method = "Delete";
                input = &rq->del.base;
        }
        r = vbus_protobuf_call(conn, &storage__v1__store__descriptor, method, input, timeout_usec,
                               &output, &reply);
        if (r < 0) {
                fprintf(stderr, "kvstore-client: %s\n", strerror(-r));
                return EXIT_CALL_FAILED;
        }
        if (output)
                code = print_reply(output);
        else
                code = print_failure(vbus_reply_get_status(reply), vbus_reply_get_message(reply));
        if (output)
                protobuf_c_message_free_unpacked(output, NULL);
        vbus_reply_free(reply);
        return code;
}

typedef struct ScanCall {
        bool done;
        int status;
        char message[1100];
        unsigned n;
        bool bad;
} ScanCall;

static void scan_entry(vbus_stream *st, const void *data, size_t size, void *userdata)
{
        ScanCall *sc = userdata;
        ProtobufCMessage *msg;
        const Storage__V1__ScanEntry *e;

        if (vbus_protobuf_decode(&storage__v1__scan_entry__descriptor, data, size, &msg) < 0) {
                sc->bad = true;
                (void)vbus_stream_cancel(st);
                sc->done = true;
                return;
        }
        e = (const Storage__V1__ScanEntry *)msg;
        printf("%s=%.*s\n", e->key, (int)e->value.len, (const char *)e->value.data);
        sc->n++;
        protobuf_c_message_free_unpacked(msg, NULL);
}

static void scan_end(vbus_stream *st, int status, const char *message, void *userdata)
{
        ScanCall *sc = userdata;

        (void)st;
        sc->done = true;
        sc->status = status;
        /* A status message is at most 1024 bytes (VBUS_STATUS_MESSAGE_MAX): it fits. */
        (void)snprintf(sc->message, sizeof(sc->message), "%s", message);
}

static int run_scan(vbus_conn *conn, const char *prefix, uint64_t timeout_usec)
{
        Storage__V1__ScanRequest rq = STORAGE__V1__SCAN_REQUEST__INIT;
        vbus_stream_handlers h = {.on_message = scan_entry, .on_end = scan_end};
        vbus_call_options o = {.timeout_usec = timeout_usec};
        ScanCall sc = {0};
        vbus_stream *st;
        int r;

        r = vbus_stream_open(conn, "storage.v1.Store/Scan", &o, &h, &sc, &st);
        if (r < 0) {
                fprintf(stderr, "kvstore-client: %s\n", strerror(-r));
                return EXIT_CALL_FAILED;
        }
        rq.prefix = (char *)prefix;
        /* Server-streaming: one request, then this side is done. */
        r = vbus_protobuf_stream_send(st, &rq.base);
        if (r == 0)
                r = vbus_stream_close_send(st);
        if (r < 0) {
                fprintf(stderr, "kvstore-client: %s\n", strerror(-r));
                (void)vbus_stream_cancel(st);
                return EXIT_CALL_FAILED;
        }
        while (!sc.done) {
                r = vbus_conn_wait(conn, 100000);
                if (r < 0 && r != -ETIMEDOUT && r != -EINTR) {
                        fprintf(stderr, "kvstore-client: %s\n", strerror(-r));
                        return EXIT_CALL_FAILED;
                }
        }
        if (sc.bad) {
                fprintf(stderr, "kvstore-client: the server sent something that is not a "
                                "ScanEntry\n");
                return EXIT_CALL_FAILED;
        }
        if (sc.status != VBUS_STATUS_OK)
                return print_failure(sc.status, sc.message);
        printf("%u entries\n", sc.n);
        return 0;
}

static int usage(void)
{
        fprintf(stderr, "usage: kvstore-client [--timeout MS] [--sync | --count N "
                        "[--give-up-after MS]] put KEY VALUE | get KEY | delete KEY | "
                        "scan [PREFIX]\n");
        return EXIT_USAGE;
}

int main(int argc, char **argv)
{
        Requests rq = {
                .get = STORAGE__V1__GET_REQUEST__INIT,
                .put = STORAGE__V1__PUT_REQUEST__INIT,
                .del = STORAGE__V1__DELETE_REQUEST__INIT,
        };
        uint64_t timeout_usec = 5000000, give_up_usec = 0;
        unsigned count = 1;
        vbus_conn *conn = NULL;
        bool sync = false;
        const char *cmd;
        int i, r, code;

        for (i = 1; i < argc && argv[i][0] == '-'; i++) {
                if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
                        timeout_usec = strtoull(argv[++i], NULL, 10) * 1000u;
                else if (strcmp(argv[i], "--sync") == 0)
                        sync = true;
                else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
                        count = (unsigned)strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--give-up-after") == 0 && i + 1 < argc)
                        give_up_usec = strtoull(argv[++i], NULL, 10) * 1000u;
                else
                        return usage();
        }
        if (i >= argc || count == 0 || count > 1000 || (sync && (count > 1 || give_up_usec)))
                return usage();
        cmd = argv[i++];
        if (strcmp(cmd, "put") == 0 && argc - i == 2) {
                rq.put.key = argv[i];
                rq.put.value.data = (uint8_t *)argv[i + 1];
                rq.put.value.len = strlen(argv[i + 1]);
        } else if (strcmp(cmd, "get") == 0 && argc - i == 1) {
                rq.get.key = argv[i];
        } else if (strcmp(cmd, "delete") == 0 && argc - i == 1) {
                rq.del.key = argv[i];
        } else if (strcmp(cmd, "scan") == 0 && argc - i <= 1 && !sync && count == 1) {
                /* the optional PREFIX is taken below */
        } else {
                return usage();
        }

        r = vbus_conn_open(NULL, &conn);
        if (r == 0)
                r = vbus_conn_wait_ready(conn, timeout_usec ? timeout_usec : 5000000);
        if (r < 0) {
                fprintf(stderr, "kvstore-client: cannot reach the broker: %s\n", strerror(-r));
                vbus_conn_free(conn);
                return EXIT_CALL_FAILED;
        }
        if (strcmp(cmd, "scan") == 0)
                code = run_scan(conn, argc - i == 1 ? argv[i] : "", timeout_usec);
        else
                code = sync ? run_sync(conn, cmd, &rq, timeout_usec)
                            : run_stubs(conn, cmd, &rq, timeout_usec, count, give_up_usec);
        vbus_conn_free(conn);
        return code;
}
