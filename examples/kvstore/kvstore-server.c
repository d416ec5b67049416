/* SPDX-License-Identifier: MIT */
/*
 * kvstore-server: serves storage.v1.Store (kvstore.proto) from an in-memory map.
 *
 *   kvstore-server [--ready FILE] [--max-keys N] [--delay MS] [--read-only]
 *
 * The handlers are the generated Storage__V1__Store_Service's methods; libvbus decodes each
 * request, calls them, and encodes what they pass to their closure. A missing key is an ordinary
 * answer (found = false); an empty key fails with VBUS_STATUS_INVALID_ARGUMENT and a full store
 * with VBUS_STATUS_RESOURCE_EXHAUSTED, through vbus_protobuf_fail(). Each call is logged on
 * stdout with the caller's identity as the broker gives it and the time left before its deadline.
 * --ready FILE creates FILE once the broker routes calls to this server. SIGINT or SIGTERM stops
 * it cleanly.
 *
 * --delay MS answers every call MS milliseconds later, from the main loop: the handler keeps the
 * input, closure and closure_data libvbus gave it (all valid until the closure is called), which
 * is how a server answers asynchronously. A call whose caller gave up meanwhile (deadline,
 * cancellation) is logged as "cancelled" and still answered (libvbus discards the answer).
 * --read-only leaves the Put and Delete handlers NULL: libvbus answers those calls with
 * VBUS_STATUS_UNSUPPORTED.
 *
 * Scan is a server-streaming method (`returns (stream ScanEntry)`). protoc-c gives it a handler
 * slot like any other, but a stream does not fit a one-reply closure, so the method is named
 * with vbus_server_stream_method() and served from a vbus_stream: one ScanEntry per matching
 * key, sent as fast as the caller takes them (flow control: when vbus_protobuf_stream_send()
 * says -EAGAIN, on_writable resumes the scan).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vbus/vbus-protobuf.h>

#include "kvstore.pb-c.h"

typedef struct Entry {
        char *key;
        uint8_t *value;
        size_t n_value;
} Entry;

/* A call to answer later (--delay). */
typedef struct Deferred {
        struct Deferred *next;
        unsigned method_index; /* in storage__v1__store__descriptor: 0 Get, 1 Put, 2 Delete */
        const ProtobufCMessage *input;
        ProtobufCClosure closure; /* the method's typed closure, cast back before the call */
        void *closure_data;
        uint64_t due;
} Deferred;

/* The map is a plain array searched linearly: enough for an example, bounded by max_keys. */
typedef struct Store {
        Storage__V1__Store_Service service; /* first: libvbus passes &service.base back */
        Entry *entries;
        size_t n_entries, max_keys;
        uint64_t delay_usec;
        Deferred *deferred, **deferred_tail; /* in arrival order, so in due order */
} Store;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
        (void)sig;
        stop_requested = 1;
}

static uint64_t now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Logs one call: method, key, caller and the time left. */
static void log_call(const char *method, const char *key, void *closure_data)
{
        const vbus_request *req = vbus_protobuf_get_request(closure_data);
        uint64_t deadline = vbus_request_get_deadline(req), now = now_usec();
        char left[32] = "none";

        if (deadline != UINT64_MAX)
                /* At most 22 bytes: it fits. */
                (void)snprintf(left, sizeof(left), "%" PRIu64 "ms",
                               deadline > now ? (deadline - now) / 1000u : 0);
        if (vbus_request_is_caller_local(req))
                printf("%s key=%s caller local(uid=%u) deadline-left=%s\n", method, key,
                       vbus_request_get_caller_uid(req), left);
        else
                printf("%s key=%s caller dom%u(%s) deadline-left=%s\n", method, key,
                       vbus_request_get_caller_domid(req), vbus_request_get_caller_name(req), left);
}

static Entry *store_find(Store *st, const char *key)
{
        for (size_t i = 0; i < st->n_entries; i++)
                if (strcmp(st->entries[i].key, key) == 0)
                        return &st->entries[i];
        return NULL;
}

static void store_get_now(Storage__V1__Store_Service *service, const Storage__V1__GetRequest *input,
                          Storage__V1__GetResponse_Closure closure, void *closure_data)
{
        Store *st = (Store *)service;
        Storage__V1__GetResponse out = STORAGE__V1__GET_RESPONSE__INIT;
        Entry *e;

        log_call("Get", input->key, closure_data);
        e = store_find(st, input->key);
        if (e) {
                out.found = true;
                out.value.data = e->value;
                out.value.len = e->n_value;
        }
        /* @out is borrowed by the closure, which encodes it before returning. */
        closure(&out, closure_data);
}

static int store_set(Store *st, const char *key, const ProtobufCBinaryData *value, bool *ret_old)
{
        Entry *e = store_find(st, key);
        uint8_t *copy = malloc(value->len ? value->len : 1);

        if (!copy)
                return -ENOMEM;
        if (value->len)
                memcpy(copy, value->data, value->len);
        *ret_old = e != NULL;
        if (!e) {
                Entry *entries;
                char *k;

                if (st->n_entries >= st->max_keys) {
                        free(copy);
                        return -ENOSPC;
                }
                entries = realloc(st->entries, (st->n_entries + 1) * sizeof(*entries));
                if (!entries || !(k = strdup(key))) {
                        if (entries)
                                st->entries = entries;
                        free(copy);
                        return -ENOMEM;
                }
                st->entries = entries;
                e = &st->entries[st->n_entries++];
                e->key = k;
                e->value = NULL;
        }
        free(e->value);
        e->value = copy;
        e->n_value = value->len;
        return 0;
}

static void store_put_now(Storage__V1__Store_Service *service, const Storage__V1__PutRequest *input,
                          Storage__V1__PutResponse_Closure closure, void *closure_data)
{
        Store *st = (Store *)service;
        Storage__V1__PutResponse out = STORAGE__V1__PUT_RESPONSE__INIT;
        bool old = false;
        int r;

        log_call("Put", input->key, closure_data);
        if (input->key[0] == '\0') {
                (void)vbus_protobuf_fail(closure_data, VBUS_STATUS_INVALID_ARGUMENT,
                                         "the key is empty");
                return;
        }
        r = store_set(st, input->key, &input->value, &old);
        if (r == -ENOSPC) {
                (void)vbus_protobuf_fail(closure_data, VBUS_STATUS_RESOURCE_EXHAUSTED,
                                         "the store is full");
                return;
        }
        if (r < 0) {
                closure(NULL, closure_data); /* VBUS_STATUS_APPLICATION for the caller */
                return;
        }
        out.replaced = old;
        closure(&out, closure_data);
}

static void store_delete_now(Storage__V1__Store_Service *service,
                             const Storage__V1__DeleteRequest *input,
                             Storage__V1__DeleteResponse_Closure closure, void *closure_data)
{
        Store *st = (Store *)service;
        Storage__V1__DeleteResponse out = STORAGE__V1__DELETE_RESPONSE__INIT;
        Entry *e;

        log_call("Delete", input->key, closure_data);
        e = store_find(st, input->key);
        if (e) {
                free(e->key);
                free(e->value);
                *e = st->entries[--st->n_entries];
                out.found = true;
        }
        closure(&out, closure_data);
}

/* Keeps a call to answer st->delay_usec later. Return: true if deferred. */
static bool store_defer(Store *st, unsigned method_index, const ProtobufCMessage *input,
                        ProtobufCClosure closure, void *closure_data)
{
        Deferred *d;

        if (st->delay_usec == 0)
                return false;
        d = calloc(1, sizeof(*d));
        if (!d)
                return false; /* answer now instead */
        d->method_index = method_index;
        d->input = input;
        d->closure = closure;
        d->closure_data = closure_data;
        d->due = now_usec() + st->delay_usec;
        *st->deferred_tail = d;
        st->deferred_tail = &d->next;
        return true;
}

static void store_get(Storage__V1__Store_Service *service, const Storage__V1__GetRequest *input,
                      Storage__V1__GetResponse_Closure closure, void *closure_data)
{
        if (!store_defer((Store *)service, 0, &input->base, (ProtobufCClosure)closure,
                         closure_data))
                store_get_now(service, input, closure, closure_data);
}

static void store_put(Storage__V1__Store_Service *service, const Storage__V1__PutRequest *input,
                      Storage__V1__PutResponse_Closure closure, void *closure_data)
{
        if (!store_defer((Store *)service, 1, &input->base, (ProtobufCClosure)closure,
                         closure_data))
                store_put_now(service, input, closure, closure_data);
}

static void store_delete(Storage__V1__Store_Service *service,
                         const Storage__V1__DeleteRequest *input,
                         Storage__V1__DeleteResponse_Closure closure, void *closure_data)
{
        if (!store_defer((Store *)service, 2, &input->base, (ProtobufCClosure)closure,
                         closure_data))
                store_delete_now(service, input, closure, closure_data);
}

/* Never called: Scan is served as a stream (see scan_start()); the generated handler table needs
 * an entry for it all the same. */
static void store_scan(Storage__V1__Store_Service *service, const Storage__V1__ScanRequest *input,
                       Storage__V1__ScanEntry_Closure closure, void *closure_data)
{
        (void)service;
        (void)input;
        (void)closure;
        (void)vbus_protobuf_fail(closure_data, VBUS_STATUS_INTERNAL, "Scan is served as a stream");
}

/* One Scan call in progress. */
typedef struct Scan {
        Store *store;
        char *prefix; /* NULL until the request arrived */
        size_t next;  /* index of the next entry to look at */
} Scan;

static void scan_free(Scan *sc)
{
        free(sc->prefix);
        free(sc);
}

/* Sends matching entries until the window is full (on_writable calls again) or all are out. */
static void scan_pump(vbus_stream *s, void *userdata)
{
        Scan *sc = userdata;
        size_t n_prefix = strlen(sc->prefix);

        for (; sc->next < sc->store->n_entries; sc->next++) {
                const Entry *e = &sc->store->entries[sc->next];
                Storage__V1__ScanEntry out = STORAGE__V1__SCAN_ENTRY__INIT;
                int r;

                if (strncmp(e->key, sc->prefix, n_prefix) != 0)
                        continue;
                out.key = e->key;
                out.value.data = e->value;
                out.value.len = e->n_value;
                r = vbus_protobuf_stream_send(s, &out.base);
                if (r == -EAGAIN)
                        return; /* this entry again once there is room */
                if (r < 0) {
                        (void)vbus_stream_cancel(s);
                        scan_free(sc);
                        return;
                }
        }
        (void)vbus_stream_finish(s, VBUS_STATUS_OK, NULL);
        scan_free(sc);
}

static void scan_message(vbus_stream *s, const void *data, size_t size, void *userdata)
{
        Scan *sc = userdata;
        ProtobufCMessage *msg;

        if (sc->prefix)
                return; /* the scan runs; the caller's end of its side needs nothing */
        if (!data ||
            vbus_protobuf_decode(&storage__v1__scan_request__descriptor, data, size, &msg) < 0) {
                (void)vbus_stream_finish(s, VBUS_STATUS_INVALID_ARGUMENT,
                                         data ? "the request is not a ScanRequest"
                                              : "Scan takes one ScanRequest");
                scan_free(sc);
                return;
        }
        sc->prefix = strdup(((Storage__V1__ScanRequest *)msg)->prefix);
        protobuf_c_message_free_unpacked(msg, NULL);
        if (!sc->prefix) {
                (void)vbus_stream_finish(s, VBUS_STATUS_INTERNAL, "out of memory");
                scan_free(sc);
                return;
        }
        scan_pump(s, sc);
}

/* The call ended before the scan did: the caller cancelled, its deadline passed, it went away. */
static void scan_end(vbus_stream *s, int status, const char *message, void *userdata)
{
        (void)s;
        printf("cancelled Scan: %s: %s\n", vbus_status_name(status), message);
        scan_free(userdata);
}

/* Runs when a Scan call opens: takes it as a stream. */
static void scan_start(vbus_server *srv, vbus_request *req, void *userdata)
{
        vbus_stream_handlers h = {
                .on_message = scan_message, .on_end = scan_end, .on_writable = scan_pump};
        Scan *sc = calloc(1, sizeof(*sc));
        vbus_stream *s;
        int r;

        (void)srv;
        printf("Scan caller dom%u(%s)\n", vbus_request_get_caller_domid(req),
               vbus_request_get_caller_name(req));
        if (!sc) {
                (void)vbus_request_fail(req, VBUS_STATUS_RESOURCE_EXHAUSTED, "out of memory");
                return;
        }
        sc->store = userdata;
        r = vbus_request_stream(req, &h, sc, &s);
        if (r < 0)
                free(sc);
        if (r == -ENOMEM) /* the request is still ours to answer (-ECANCELED: it is gone) */
                (void)vbus_request_fail(req, VBUS_STATUS_RESOURCE_EXHAUSTED, "out of memory");
}

/* Answers the deferred calls that are due. Return: the next due time, or UINT64_MAX. */
static uint64_t store_run_deferred(Store *st)
{
        uint64_t now = now_usec();

        while (st->deferred && st->deferred->due <= now) {
                Deferred *d = st->deferred;
                const vbus_request *req = vbus_protobuf_get_request(d->closure_data);

                st->deferred = d->next;
                if (!st->deferred)
                        st->deferred_tail = &st->deferred;
                if (vbus_request_is_cancelled(req)) {
                        printf("cancelled %s\n", vbus_request_get_method(req));
                }
                /* Each closure is cast back to the type it had. */
                switch (d->method_index) {
                case 0:
                        store_get_now(&st->service, (const Storage__V1__GetRequest *)d->input,
                                      (Storage__V1__GetResponse_Closure)d->closure,
                                      d->closure_data);
                        break;
                case 1:
                        store_put_now(&st->service, (const Storage__V1__PutRequest *)d->input,
                                      (Storage__V1__PutResponse_Closure)d->closure,
                                      d->closure_data);
                        break;
                default:
                        store_delete_now(&st->service, (const Storage__V1__DeleteRequest *)d->input,
                                         (Storage__V1__DeleteResponse_Closure)d->closure,
                                         d->closure_data);
                        break;
                }
                free(d);
        }
        return st->deferred ? st->deferred->due : UINT64_MAX;
}

static void store_deinit(Store *st)
{
        for (size_t i = 0; i < st->n_entries; i++) {
                free(st->entries[i].key);
                free(st->entries[i].value);
        }
        free(st->entries);
}

static int usage(void)
{
        fprintf(stderr,
                "usage: kvstore-server [--ready FILE] [--max-keys N] [--delay MS] [--read-only]\n");
        return 2;
}

static const vbus_protobuf_method_kind scan_kind = {.method = "Scan", .server_streaming = true};

int main(int argc, char **argv)
{
        Store st = {.service = STORAGE__V1__STORE__INIT(store_), .max_keys = 10000};
        const char *ready = NULL;
        struct sigaction sa = {.sa_handler = on_signal};
        vbus_server *srv = NULL;
        vbus_conn *conn = NULL;
        bool announced = false;
        int r;

        st.deferred_tail = &st.deferred;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--ready") == 0 && i + 1 < argc)
                        ready = argv[++i];
                else if (strcmp(argv[i], "--max-keys") == 0 && i + 1 < argc)
                        st.max_keys = strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--delay") == 0 && i + 1 < argc)
                        st.delay_usec = strtoull(argv[++i], NULL, 10) * 1000u;
                else if (strcmp(argv[i], "--read-only") == 0) {
                        st.service.put = NULL;
                        st.service.delete = NULL;
                } else {
                        return usage();
                }
        }
        /* The log goes out a line at a time, to a terminal, a pipe or a file alike. Cannot
         * fail: a valid mode, and before any output. */
        (void)setvbuf(stdout, NULL, _IOLBF, 0);
        /* No SA_RESTART: the signal interrupts vbus_conn_wait(). */
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);

        r = vbus_conn_open(NULL, &conn);
        if (r < 0) {
                fprintf(stderr, "kvstore-server: cannot open a connection: %s\n", strerror(-r));
                return 1;
        }
        r = vbus_protobuf_serve(conn, &st.service.base, &srv);
        if (r == 0)
                r = vbus_server_stream_method(srv, "Scan", scan_start, &st);
        /* The types of the service, for `vbusctl describe` and `vbusctl call --json`; protoc-c's
         * descriptors do not say which methods stream, so Scan is named here. */
        if (r == 0)
                r = vbus_protobuf_describe(srv, &storage__v1__store__descriptor, &scan_kind, 1);
        if (r < 0) {
                fprintf(stderr, "kvstore-server: cannot serve: %s\n", strerror(-r));
                vbus_conn_free(conn);
                return 1;
        }
        while (!stop_requested) {
                uint64_t next = store_run_deferred(&st), now = now_usec(), wait = 100000;

                if (next != UINT64_MAX)
                        wait = next <= now ? 1 : next - now < wait ? next - now : wait;
                r = vbus_conn_wait(conn, wait);
                if (r < 0 && r != -ETIMEDOUT && r != -EINTR) {
                        fprintf(stderr, "kvstore-server: %s\n", strerror(-r));
                        break;
                }
                if (!announced && vbus_server_is_active(srv)) {
                        announced = true;
                        printf("serving %s\n", st.service.base.descriptor->name);
                        if (ready) {
                                FILE *f = fopen(ready, "w");

                                if (!f || fclose(f) != 0)
                                        fprintf(stderr, "kvstore-server: cannot create %s: %s\n",
                                                ready, strerror(errno));
                        }
                }
        }
        /* Every call still kept must be answered before the connection goes. */
        while (st.deferred) {
                Deferred *d = st.deferred;

                st.deferred = d->next;
                (void)vbus_protobuf_fail(d->closure_data, VBUS_STATUS_UNAVAILABLE,
                                         "the server is stopping");
                free(d);
        }
        vbus_server_free(srv);
        vbus_conn_flush(conn, 1000000);
        vbus_conn_free(conn);
        store_deinit(&st);
        return r < 0 && r != -ETIMEDOUT && r != -EINTR ? 1 : 0;
}
