/* SPDX-License-Identifier: MIT */
/*
 * kvstore-server: serves storage.v1.Store (kvstore.proto) from an in-memory map.
 *
 *   kvstore-server [--ready FILE] [--max-keys N]
 *
 * The handlers are the generated Storage__V1__Store_Service's methods; libvbus decodes each
 * request, calls them, and encodes what they pass to their closure. A missing key is an ordinary
 * answer (found = false); an empty key fails with VBUS_STATUS_INVALID_ARGUMENT and a full store
 * with VBUS_STATUS_RESOURCE_EXHAUSTED, through vbus_protobuf_fail(). Each call is logged on
 * stdout with the caller's identity as the broker gives it and the time left before its deadline.
 * --ready FILE creates FILE once the broker routes calls to this server. SIGINT or SIGTERM stops
 * it cleanly.
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

/* The map is a plain array searched linearly: enough for an example, bounded by max_keys. */
typedef struct Store {
        Storage__V1__Store_Service service; /* first: libvbus passes &service.base back */
        Entry *entries;
        size_t n_entries, max_keys;
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
                snprintf(left, sizeof(left), "%" PRIu64 "ms",
                         deadline > now ? (deadline - now) / 1000u : 0);
        if (vbus_request_is_caller_local(req))
                printf("%s key=%s caller local(uid=%u) deadline-left=%s\n", method, key,
                       vbus_request_get_caller_uid(req), left);
        else
                printf("%s key=%s caller dom%u(%s) deadline-left=%s\n", method, key,
                       vbus_request_get_caller_domid(req), vbus_request_get_caller_name(req), left);
        fflush(stdout);
}

static Entry *store_find(Store *st, const char *key)
{
        for (size_t i = 0; i < st->n_entries; i++)
                if (strcmp(st->entries[i].key, key) == 0)
                        return &st->entries[i];
        return NULL;
}

static void store_get(Storage__V1__Store_Service *service, const Storage__V1__GetRequest *input,
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

static void store_put(Storage__V1__Store_Service *service, const Storage__V1__PutRequest *input,
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

static void store_delete(Storage__V1__Store_Service *service,
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
        fprintf(stderr, "usage: kvstore-server [--ready FILE] [--max-keys N]\n");
        return 2;
}

int main(int argc, char **argv)
{
        Store st = {.service = STORAGE__V1__STORE__INIT(store_), .max_keys = 10000};
        const char *ready = NULL;
        struct sigaction sa = {.sa_handler = on_signal};
        vbus_server *srv = NULL;
        vbus_conn *conn = NULL;
        bool announced = false;
        int r;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--ready") == 0 && i + 1 < argc)
                        ready = argv[++i];
                else if (strcmp(argv[i], "--max-keys") == 0 && i + 1 < argc)
                        st.max_keys = strtoul(argv[++i], NULL, 10);
                else
                        return usage();
        }
        /* No SA_RESTART: the signal interrupts vbus_conn_wait(). */
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);

        r = vbus_conn_open(NULL, &conn);
        if (r < 0) {
                fprintf(stderr, "kvstore-server: cannot open a connection: %s\n", strerror(-r));
                return 1;
        }
        r = vbus_protobuf_serve(conn, &st.service.base, &srv);
        if (r < 0) {
                fprintf(stderr, "kvstore-server: cannot serve: %s\n", strerror(-r));
                vbus_conn_free(conn);
                return 1;
        }
        while (!stop_requested) {
                r = vbus_conn_wait(conn, 100000);
                if (r < 0 && r != -ETIMEDOUT && r != -EINTR) {
                        fprintf(stderr, "kvstore-server: %s\n", strerror(-r));
                        break;
                }
                if (!announced && vbus_server_is_active(srv)) {
                        announced = true;
                        printf("serving %s\n", st.service.base.descriptor->name);
                        fflush(stdout);
                        if (ready) {
                                FILE *f = fopen(ready, "w");

                                if (f)
                                        fclose(f);
                        }
                }
        }
        vbus_server_free(srv);
        vbus_conn_flush(conn, 1000000);
        vbus_conn_free(conn);
        store_deinit(&st);
        return r < 0 && r != -ETIMEDOUT && r != -EINTR ? 1 : 0;
}
