/* SPDX-License-Identifier: MIT */
/*
 * rpc-client: calls and servers of the client library (the RPC part of <vbus/vbus.h>).
 *
 * A call is one CALL stream: OPEN (with the time left before the deadline), the request in DATA
 * frames within the stream's window, END; then the reply's DATA and the server's END with the
 * status, or a REJECT/RESET with one. A request is the server side of a CALL stream that the
 * broker opened toward us. Outcomes are delivered from vbus_conn_process() only: a call that
 * fails because the link dropped is completed on the next process step.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "name.h"
#include "rpc.h"

struct vbus_reply {
        int status;
        char *message;
        uint8_t *data;
        size_t n_data;
};

struct vbus_call {
        List link; /* in conn->calls */
        vbus_conn *conn;
        uint32_t id;
        vbus_call_cb cb;
        void *userdata;
        uint8_t *out;
        size_t n_out, off;
        bool sent_empty;
        bool end_sent;
        uint8_t *rx;
        size_t n_rx;
        bool rx_complete;  /* the reply message is whole: a second one is a fault */
        uint64_t deadline; /* ours: the caller's deadline plus the grace */
        bool done;
        vbus_reply reply;
};

typedef struct StreamMethod {
        List link; /* in vbus_server.stream_methods */
        char *method;
        vbus_request_cb cb;
        void *userdata;
} StreamMethod;

typedef enum ServerState {
        SRV_IDLE = 0,
        SRV_OPENING = 1,
        SRV_OPEN = 2,
        SRV_FAILED = 3,
} ServerState;

struct vbus_server {
        List link; /* in conn->servers */
        vbus_conn *conn;
        char *service;
        uint32_t id;
        ServerState state;
        vbus_request_cb cb;
        void *userdata;
        List stream_methods; /* StreamMethod */
        int status;          /* why the broker refused or ended the SERVE stream, 0 if not */
        char *status_message;
};

static char *dup_or_empty(const char *s)
{
        return strdup(s ? s : "");
}

int vbus__rpc_send_message(vbus_conn *c, uint32_t id, const uint8_t *buf, size_t n, size_t *off,
                           bool *sent_empty)
{
        if (n == 0) {
                if (*sent_empty)
                        return 1;
                if (vbus__conn_send_data(c, id, 0, NULL, 0) < 0)
                        return c->have_link ? 0 : -1;
                *sent_empty = true;
                return 1;
        }
        while (*off < n) {
                size_t k = n - *off, room = vbus__conn_data_room(c, id);
                int r;

                if (room == 0)
                        return 0;
                if (k > room)
                        k = room;
                r = vbus__conn_send_data(c, id, *off + k < n ? VBUS_FLAG_MORE : 0, buf + *off, k);
                if (r < 0)
                        return c->have_link ? 0 : -1;
                *off += k;
        }
        return 1;
}

int vbus__rpc_open_call(vbus_conn *c, const char *method, const vbus_call_options *opts,
                        uint32_t *ret_id)
{
        Vbus__V1__Header hs[VBUS_CALL_HEADERS_MAX], *hp[VBUS_CALL_HEADERS_MAX];
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;
        uint32_t id;
        int r = vbus__rpc_check_headers(opts);

        if (r < 0)
                return r;
        for (size_t i = 0; opts && i < opts->n_headers; i++) {
                vbus__v1__header__init(&hs[i]);
                hs[i].key = (char *)opts->headers[i].key;
                hs[i].value.data = (uint8_t *)opts->headers[i].value;
                hs[i].value.len = opts->headers[i].value_size;
                hp[i] = &hs[i];
        }
        o.headers = hp;
        o.n_headers = opts ? opts->n_headers : 0;
        o.name = (char *)method;
        o.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_CALL;
        o.initial_credit = RPC_WINDOW;
        o.timeout_us = opts ? opts->timeout_usec : 0;
        r = vbus__conn_open_stream(c, &o, &id);
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

int vbus__rpc_check_headers(const vbus_call_options *opts)
{
        if (!opts || opts->n_headers == 0)
                return 0;
        if (opts->n_headers > VBUS_CALL_HEADERS_MAX || !opts->headers)
                return -EINVAL;
        for (size_t i = 0; i < opts->n_headers; i++) {
                const vbus_header *h = &opts->headers[i];

                if (!h->key ||
                    !vbus__name_is_header_key(h->key,
                                              strnlen(h->key, VBUS_CALL_HEADER_KEY_MAX + 1)) ||
                    h->value_size > VBUS_CALL_HEADER_VALUE_MAX || (h->value_size > 0 && !h->value))
                        return -EINVAL;
        }
        return 0;
}

/* --- calls -------------------------------------------------------------------------------- */

static void call_complete(vbus_call *call, int status, const char *message)
{
        if (call->done)
                return;
        call->done = true;
        call->reply.status = status;
        call->reply.message = dup_or_empty(message);
        if (status == VBUS_STATUS_OK) {
                call->reply.data = call->rx;
                call->reply.n_data = call->n_rx;
                call->rx = NULL;
                call->n_rx = 0;
        }
}

static void call_free(vbus_call *call)
{
        list_unlink(&call->link);
        free(call->out);
        free(call->rx);
        free(call->reply.message);
        free(call->reply.data);
        free(call);
}

/* Sends what the window allows of the request, then END. Return: 1 progress, 0 none. */
static int call_push(vbus_call *call)
{
        vbus_conn *c = call->conn;
        Vbus__V1__End e = VBUS__V1__END__INIT;
        size_t before = call->off;

        if (call->done || call->end_sent || !c->have_link)
                return 0;
        if (vbus__rpc_send_message(c, call->id, call->out, call->n_out, &call->off,
                                   &call->sent_empty) <= 0)
                return call->off != before;
        e.status = VBUS__V1__STATUS__STATUS_OK;
        if (vbus__conn_send_control(c, VBUS_FRAME_END, call->id, &e.base) < 0)
                return call->off != before;
        call->end_sent = true;
        return 1;
}

VBUS_EXPORT int vbus_call_start_opts(vbus_conn *c, const char *method, const void *request,
                                     size_t n, const vbus_call_options *opts, vbus_call_cb cb,
                                     void *userdata, vbus_call **ret_call)
{
        uint64_t timeout_usec = opts ? opts->timeout_usec : 0;
        vbus_call *call;
        uint32_t id;
        int r;

        if (!c || !method || !cb || (n > 0 && !request) ||
            !vbus__name_is_method(method, strnlen(method, 256)))
                return -EINVAL;
        r = vbus__rpc_check_headers(opts);
        if (r < 0)
                return r; /* before anything else: bad headers are -EINVAL in every state */
        if (n > VBUS_MESSAGE_MAX)
                return -EMSGSIZE;
        if (c->state == VBUS_CONN_DISCONNECTED)
                return -ENOTCONN;
        if (c->state != VBUS_CONN_READY)
                return -EAGAIN;
        call = calloc(1, sizeof(*call));
        if (!call || (n > 0 && !(call->out = malloc(n)))) {
                free(call);
                return -ENOMEM;
        }
        if (n > 0)
                memcpy(call->out, request, n);
        call->n_out = n;
        call->conn = c;
        call->cb = cb;
        call->userdata = userdata;
        call->deadline = timeout_usec ? vbus__client_now() + timeout_usec + RPC_DEADLINE_GRACE_US
                                      : UINT64_MAX;
        r = vbus__rpc_open_call(c, method, opts, &id);
        if (r < 0) {
                free(call->out);
                free(call);
                return r;
        }
        call->id = id;
        list_init(&call->link);
        list_add_tail(&c->calls, &call->link);
        (void)call_push(call);
        if (ret_call)
                *ret_call = call;
        return 0;
}

VBUS_EXPORT int vbus_call_start(vbus_conn *c, const char *method, const void *request, size_t n,
                                uint64_t timeout_usec, vbus_call_cb cb, void *userdata,
                                vbus_call **ret_call)
{
        vbus_call_options opts = {.timeout_usec = timeout_usec};

        return vbus_call_start_opts(c, method, request, n, &opts, cb, userdata, ret_call);
}

VBUS_EXPORT int vbus_call_cancel(vbus_call *call)
{
        if (!call)
                return -EINVAL;
        if (call->done)
                return -EALREADY; /* its outcome is being delivered: the library frees it */
        vbus__conn_end_stream(call->conn, call->id, VBUS_FRAME_RESET, VBUS_STATUS_CANCELLED,
                              "cancelled by the caller");
        call_free(call);
        return 0;
}

typedef struct SyncCall {
        bool done;
        vbus_reply *reply;
} SyncCall;

static void sync_cb(vbus_call *call, const vbus_reply *reply, void *userdata)
{
        SyncCall *sc = userdata;
        vbus_reply *copy = calloc(1, sizeof(*copy));

        sc->done = true;
        if (!copy)
                return;
        /* Take the buffers: the call is freed after this callback. */
        *copy = call->reply;
        call->reply.message = NULL;
        call->reply.data = NULL;
        (void)reply;
        sc->reply = copy;
}

VBUS_EXPORT int vbus_call_sync_opts(vbus_conn *c, const char *method, const void *request, size_t n,
                                    const vbus_call_options *opts, vbus_reply **ret_reply)
{
        uint64_t start = vbus__client_now();
        uint64_t timeout_usec = opts ? opts->timeout_usec : 0;
        vbus_call_options o = opts ? *opts : (vbus_call_options){0};
        SyncCall sc = {0};
        int r;

        if (!c || !ret_reply)
                return -EINVAL;
        if (c->state != VBUS_CONN_READY) {
                r = vbus_conn_wait_ready(c, timeout_usec ? timeout_usec : 5000000u);
                if (r < 0)
                        return r;
        }
        if (timeout_usec) {
                uint64_t spent = vbus__client_now() - start;

                timeout_usec = spent < timeout_usec ? timeout_usec - spent : 1;
        }
        o.timeout_usec = timeout_usec;
        r = vbus_call_start_opts(c, method, request, n, &o, sync_cb, &sc, NULL);
        if (r < 0)
                return r;
        while (!sc.done) {
                r = vbus_conn_wait(c, 100000);
                if (r < 0 && r != -ETIMEDOUT && r != -EINTR)
                        return r;
        }
        if (!sc.reply)
                return -ENOMEM;
        *ret_reply = sc.reply;
        return 0;
}

VBUS_EXPORT int vbus_call_sync(vbus_conn *c, const char *method, const void *request, size_t n,
                               uint64_t timeout_usec, vbus_reply **ret_reply)
{
        vbus_call_options opts = {.timeout_usec = timeout_usec};

        return vbus_call_sync_opts(c, method, request, n, &opts, ret_reply);
}

VBUS_EXPORT int vbus_reply_get_status(const vbus_reply *reply)
{
        return reply ? reply->status : -EINVAL;
}

VBUS_EXPORT const char *vbus_reply_get_message(const vbus_reply *reply)
{
        return reply && reply->message ? reply->message : "";
}

VBUS_EXPORT const void *vbus_reply_get_data(const vbus_reply *reply, size_t *ret_size)
{
        if (ret_size)
                *ret_size = reply ? reply->n_data : 0;
        return reply ? reply->data : NULL;
}

VBUS_EXPORT vbus_reply *vbus_reply_free(vbus_reply *reply)
{
        if (reply) {
                free(reply->message);
                free(reply->data);
                free(reply);
        }
        return NULL;
}

/* --- servers ------------------------------------------------------------------------------ */

static void server_open_stream(vbus_server *srv)
{
        vbus_conn *c = srv->conn;
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;
        uint32_t id;

        if (srv->state != SRV_IDLE || c->state != VBUS_CONN_READY)
                return;
        o.name = srv->service;
        o.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_SERVE;
        if (vbus__conn_open_stream(c, &o, &id) == 0) {
                srv->id = id;
                srv->state = SRV_OPENING;
        }
}

VBUS_EXPORT int vbus_serve(vbus_conn *c, const char *service, vbus_request_cb cb, void *userdata,
                           vbus_server **ret_server)
{
        vbus_server *srv;

        if (!c || !service || !cb || !ret_server ||
            !vbus__name_is_service(service, strnlen(service, 256)))
                return -EINVAL;
        srv = calloc(1, sizeof(*srv));
        if (!srv || !(srv->service = strdup(service))) {
                free(srv);
                return -ENOMEM;
        }
        srv->conn = c;
        srv->cb = cb;
        srv->userdata = userdata;
        list_init(&srv->stream_methods);
        list_add_tail(&c->servers, &srv->link);
        server_open_stream(srv);
        *ret_server = srv;
        return 0;
}

void vbus__rpc_request_free(vbus_request *req)
{
        if (req->stream) {
                vbus__stream_detach_request(req->stream);
                /* the stream is gone; the request is ours again */
        }
        list_unlink(&req->link);
        for (size_t i = 0; i < req->n_headers; i++) {
                free(req->headers[i].key);
                free(req->headers[i].value);
        }
        free(req->headers);
        free(req->full_method);
        free(req->rx);
        free(req->out);
        free(req->message);
        free(req);
}

static void server_free(vbus_server *srv)
{
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &srv->stream_methods)
        {
                StreamMethod *sm = list_entry(pos, StreamMethod, link);

                list_unlink(&sm->link);
                free(sm->method);
                free(sm);
        }
        list_unlink(&srv->link);
        free(srv->service);
        free(srv->status_message);
        free(srv);
}

VBUS_EXPORT int vbus_server_stream_method(vbus_server *srv, const char *method, vbus_request_cb cb,
                                          void *userdata)
{
        size_t len = method ? strnlen(method, VBUS_NAME_MAX + 1) : 0;
        StreamMethod *sm;

        if (!srv || !cb || len == 0 || len > VBUS_NAME_MAX || strchr(method, '/'))
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                char ch = method[i];

                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '_'))
                        return -EINVAL;
        }
        for (List *pos = srv->stream_methods.next; pos != &srv->stream_methods; pos = pos->next) {
                sm = list_entry(pos, StreamMethod, link);
                if (strcmp(sm->method, method) == 0) {
                        sm->cb = cb;
                        sm->userdata = userdata;
                        return 0;
                }
        }
        sm = calloc(1, sizeof(*sm));
        if (!sm || !(sm->method = strdup(method))) {
                free(sm);
                return -ENOMEM;
        }
        sm->cb = cb;
        sm->userdata = userdata;
        list_add_tail(&srv->stream_methods, &sm->link);
        return 0;
}

static StreamMethod *server_stream_method(vbus_server *srv, const char *method)
{
        for (List *pos = srv->stream_methods.next; pos != &srv->stream_methods; pos = pos->next) {
                StreamMethod *sm = list_entry(pos, StreamMethod, link);

                if (strcmp(sm->method, method) == 0)
                        return sm;
        }
        return NULL;
}

VBUS_EXPORT vbus_server *vbus_server_free(vbus_server *srv)
{
        vbus_conn *c;

        if (!srv)
                return NULL;
        c = srv->conn;
        for (List *pos = c->requests.next; pos != &c->requests; pos = pos->next) {
                vbus_request *req = list_entry(pos, vbus_request, link);

                if (req->srv == srv)
                        req->srv = NULL;
        }
        if (srv->state == SRV_OPEN || srv->state == SRV_OPENING)
                vbus__conn_end_stream(c, srv->id, VBUS_FRAME_END, VBUS_STATUS_OK, NULL);
        server_free(srv);
        return NULL;
}

VBUS_EXPORT int vbus_server_get_status(vbus_server *srv, const char **ret_message)
{
        if (!srv)
                return -EINVAL;
        if (ret_message)
                *ret_message = srv->status_message ? srv->status_message : "";
        return srv->state == SRV_FAILED ? srv->status : 0;
}

VBUS_EXPORT bool vbus_server_is_active(vbus_server *srv)
{
        return srv && srv->state == SRV_OPEN && srv->conn->state == VBUS_CONN_READY;
}

static vbus_server *server_for(vbus_conn *c, const char *full_method)
{
        const char *slash = strchr(full_method, '/');
        size_t len = slash ? (size_t)(slash - full_method) : 0;

        for (List *pos = c->servers.next; pos != &c->servers; pos = pos->next) {
                vbus_server *srv = list_entry(pos, vbus_server, link);

                if (srv->state == SRV_OPEN && strlen(srv->service) == len &&
                    memcmp(srv->service, full_method, len) == 0)
                        return srv;
        }
        return NULL;
}

static int request_copy_headers(vbus_request *req, const Vbus__V1__Open *m)
{
        if (m->n_headers == 0)
                return 0;
        req->headers = calloc(m->n_headers, sizeof(*req->headers));
        if (!req->headers)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_headers; i++) {
                const Vbus__V1__Header *h = m->headers[i];
                RpcHeader *rh = &req->headers[i];

                req->n_headers = i + 1;
                rh->key = strdup(h->key);
                rh->value = malloc(h->value.len ? h->value.len : 1);
                if (!rh->key || !rh->value)
                        return -ENOMEM;
                if (h->value.len > 0)
                        memcpy(rh->value, h->value.data, h->value.len);
                rh->n_value = h->value.len;
        }
        return 0;
}

static void reject_call(vbus_conn *c, uint32_t id, int status, const char *message)
{
        Vbus__V1__Reject rj = VBUS__V1__REJECT__INIT;

        rj.status = status;
        rj.message = (char *)message;
        (void)vbus__conn_send_control(c, VBUS_FRAME_REJECT, id, &rj.base);
}

static void on_incoming_call(vbus_conn *c, uint32_t id, const Vbus__V1__Open *m)
{
        vbus_server *srv = server_for(c, m->name);
        Vbus__V1__Accept a = VBUS__V1__ACCEPT__INIT;
        StreamMethod *sm;
        vbus_request *req;

        if (!srv) {
                reject_call(c, id, VBUS_STATUS_NOT_FOUND,
                            "this process does not serve that service");
                return;
        }
        req = calloc(1, sizeof(*req));
        if (!req || !(req->full_method = strdup(m->name))) {
                free(req);
                reject_call(c, id, VBUS_STATUS_RESOURCE_EXHAUSTED, "out of memory");
                return;
        }
        req->method = strchr(req->full_method, '/') + 1;
        list_init(&req->link);
        req->conn = c;
        req->srv = srv;
        req->id = id;
        req->link_valid = true;
        req->deadline = m->timeout_us ? vbus__client_now() + m->timeout_us : UINT64_MAX;
        if (m->caller) {
                req->caller_domid = m->caller->domid;
                req->caller_local = m->caller->local;
                req->caller_uid = m->caller->uid;
                if (m->caller->domain_name)
                        snprintf(req->caller_name, sizeof(req->caller_name), "%s",
                                 m->caller->domain_name);
        }
        if (request_copy_headers(req, m) < 0) {
                vbus__rpc_request_free(req);
                reject_call(c, id, VBUS_STATUS_RESOURCE_EXHAUSTED, "out of memory");
                return;
        }
        list_add_tail(&c->requests, &req->link);
        sm = server_stream_method(srv, req->method);
        if (sm && !vbus__stream_new_for_request(req)) {
                vbus__rpc_request_free(req);
                reject_call(c, id, VBUS_STATUS_RESOURCE_EXHAUSTED, "out of memory");
                return;
        }
        a.initial_credit = RPC_WINDOW;
        (void)vbus__conn_send_control(c, VBUS_FRAME_ACCEPT, id, &a.base);
        if (sm) {
                /* A streaming method: the handler takes the call now, before any message. */
                req->dispatched = true;
                sm->cb(srv, req, sm->userdata);
        }
}

/* Sends what the window allows of the answer, then END with its status. */
static int request_push(vbus_request *req)
{
        vbus_conn *c = req->conn;
        Vbus__V1__End e = VBUS__V1__END__INIT;
        size_t before = req->off;
        bool empty_done = true; /* a failure carries no reply message */

        if (!req->answered || !c->have_link || !req->link_valid)
                return 0;
        if (req->status == VBUS_STATUS_OK)
                empty_done = req->sent_empty;
        if (vbus__rpc_send_message(c, req->id, req->out, req->n_out, &req->off, &empty_done) <= 0)
                return req->off != before;
        req->sent_empty = empty_done;
        e.status = req->status;
        e.message = req->message;
        (void)vbus__conn_send_control(c, VBUS_FRAME_END, req->id, &e.base);
        vbus__rpc_request_free(req);
        return 1;
}

static int request_answer(vbus_request *req, int status, const char *message, const void *data,
                          size_t n)
{
        if (req->answered)
                return -EALREADY;
        if (req->stream) {
                if (vbus__stream_is_taken(req->stream))
                        return -EALREADY; /* answered through its stream */
                /* A streaming method answered at once, without taking the stream. */
                vbus__stream_detach_request(req->stream);
        }
        if (req->cancelled || !req->link_valid) {
                vbus__rpc_request_free(req);
                return -ECANCELED;
        }
        if (n > 0) {
                req->out = malloc(n);
                if (!req->out) {
                        status = VBUS_STATUS_INTERNAL;
                        message = "the server ran out of memory for its reply";
                        n = 0;
                } else {
                        memcpy(req->out, data, n);
                }
        }
        req->n_out = n;
        req->status = status;
        req->message = message ? strdup(message) : NULL;
        req->answered = true;
        (void)request_push(req);
        return 0;
}

VBUS_EXPORT int vbus_request_reply(vbus_request *req, const void *data, size_t n)
{
        if (!req || (n > 0 && !data))
                return -EINVAL;
        if (n > VBUS_MESSAGE_MAX)
                return request_answer(req, VBUS_STATUS_INTERNAL, "reply too large", NULL, 0) == 0
                               ? -EMSGSIZE
                               : -ECANCELED;
        return request_answer(req, VBUS_STATUS_OK, NULL, data, n);
}

VBUS_EXPORT int vbus_request_fail(vbus_request *req, int status, const char *message)
{
        if (!req)
                return -EINVAL;
        if (status <= VBUS_STATUS_OK || status >= VBUS_STATUS_N) {
                (void)request_answer(req, VBUS_STATUS_INTERNAL,
                                     "the server answered an invalid status", NULL, 0);
                return -EINVAL;
        }
        return request_answer(req, status, message, NULL, 0);
}

VBUS_EXPORT const char *vbus_request_get_method(const vbus_request *req)
{
        return req ? req->method : NULL;
}

VBUS_EXPORT const char *vbus_request_get_full_method(const vbus_request *req)
{
        return req ? req->full_method : NULL;
}

VBUS_EXPORT const void *vbus_request_get_data(const vbus_request *req, size_t *ret_size)
{
        if (ret_size)
                *ret_size = req ? req->n_rx : 0;
        return req ? req->rx : NULL;
}

VBUS_EXPORT uint32_t vbus_request_get_caller_domid(const vbus_request *req)
{
        return req ? req->caller_domid : 0;
}

VBUS_EXPORT const char *vbus_request_get_caller_name(const vbus_request *req)
{
        return req ? req->caller_name : "";
}

VBUS_EXPORT bool vbus_request_is_caller_local(const vbus_request *req)
{
        return req && req->caller_local;
}

VBUS_EXPORT uint32_t vbus_request_get_caller_uid(const vbus_request *req)
{
        return req ? req->caller_uid : 0;
}

VBUS_EXPORT uint64_t vbus_request_get_deadline(const vbus_request *req)
{
        return req ? req->deadline : UINT64_MAX;
}

VBUS_EXPORT size_t vbus_request_get_n_headers(const vbus_request *req)
{
        return req ? req->n_headers : 0;
}

VBUS_EXPORT int vbus_request_get_header(const vbus_request *req, size_t index, const char **ret_key,
                                        const void **ret_value, size_t *ret_size)
{
        if (!req)
                return -EINVAL;
        if (index >= req->n_headers)
                return -ENOENT;
        if (ret_key)
                *ret_key = req->headers[index].key;
        if (ret_value)
                *ret_value = req->headers[index].value;
        if (ret_size)
                *ret_size = req->headers[index].n_value;
        return 0;
}

VBUS_EXPORT const void *vbus_request_find_header(const vbus_request *req, const char *key,
                                                 size_t *ret_size)
{
        if (ret_size)
                *ret_size = 0;
        if (!req || !key)
                return NULL;
        for (size_t i = 0; i < req->n_headers; i++)
                if (strcmp(req->headers[i].key, key) == 0) {
                        if (ret_size)
                                *ret_size = req->headers[i].n_value;
                        return req->headers[i].value;
                }
        return NULL;
}

VBUS_EXPORT bool vbus_request_is_cancelled(const vbus_request *req)
{
        return !req || req->cancelled || !req->link_valid;
}

/* --- hooks for client.c ------------------------------------------------------------------- */

static vbus_call *call_find(vbus_conn *c, uint32_t id)
{
        for (List *pos = c->calls.next; pos != &c->calls; pos = pos->next) {
                vbus_call *call = list_entry(pos, vbus_call, link);

                if (call->id == id && !call->done)
                        return call;
        }
        return NULL;
}

static vbus_request *request_find(vbus_conn *c, uint32_t id)
{
        for (List *pos = c->requests.next; pos != &c->requests; pos = pos->next) {
                vbus_request *req = list_entry(pos, vbus_request, link);

                if (req->id == id && req->link_valid)
                        return req;
        }
        return NULL;
}

static vbus_server *server_find_stream(vbus_conn *c, uint32_t id)
{
        for (List *pos = c->servers.next; pos != &c->servers; pos = pos->next) {
                vbus_server *srv = list_entry(pos, vbus_server, link);

                if (srv->id == id && (srv->state == SRV_OPENING || srv->state == SRV_OPEN))
                        return srv;
        }
        return NULL;
}

static int append(uint8_t **buf, size_t *n, const uint8_t *data, size_t len)
{
        uint8_t *p;

        if (*n + len > VBUS_MESSAGE_MAX)
                return -EMSGSIZE;
        p = realloc(*buf, *n + len ? *n + len : 1);
        if (!p)
                return -ENOMEM;
        memcpy(p + *n, data, len);
        *buf = p;
        *n += len;
        return 0;
}

static int dispatch_call(vbus_call *call, const VbusFrame *f, const VbusControl *ctl)
{
        switch (f->header.type) {
        case VBUS_FRAME_ACCEPT:
                (void)call_push(call);
                return 1;
        case VBUS_FRAME_DATA:
                if (call->rx_complete) {
                        /* A unary call takes one reply message; a server that streams is
                         * answering a streaming call (vbus_stream_open()). */
                        vbus__conn_end_stream(call->conn, call->id, VBUS_FRAME_RESET,
                                              VBUS_STATUS_CANCELLED,
                                              "a unary call takes one reply message");
                        call_complete(call, VBUS_STATUS_INTERNAL,
                                      "the server sent more than one reply message to a unary "
                                      "call");
                        return 1;
                }
                if (append(&call->rx, &call->n_rx, f->payload, f->header.length) < 0)
                        call_complete(call, VBUS_STATUS_RESOURCE_EXHAUSTED,
                                      "the reply is larger than VBUS_MESSAGE_MAX");
                call->rx_complete = !(f->header.flags & VBUS_FLAG_MORE);
                return 1;
        case VBUS_FRAME_REJECT: {
                const Vbus__V1__Reject *m = (const Vbus__V1__Reject *)ctl->msg;

                call_complete(call, m->status, m->message);
                return 1;
        }
        case VBUS_FRAME_END:
        case VBUS_FRAME_RESET: {
                const Vbus__V1__End *m = (const Vbus__V1__End *)ctl->msg;

                call_complete(call, m->status, m->message);
                return 1;
        }
        default:
                return 1;
        }
}

static int dispatch_request(vbus_request *req, const VbusFrame *f, const VbusControl *ctl)
{
        switch (f->header.type) {
        case VBUS_FRAME_DATA: {
                const char *why = NULL;
                int status = VBUS_STATUS_INVALID_ARGUMENT;

                if (req->cancelled || req->dispatched)
                        return 1;
                if (req->rx_complete) {
                        why = "this method takes one request message (it is not a streaming "
                              "method)";
                } else if (append(&req->rx, &req->n_rx, f->payload, f->header.length) < 0) {
                        why = "the request is larger than VBUS_MESSAGE_MAX";
                }
                req->rx_complete = !(f->header.flags & VBUS_FLAG_MORE);
                if (why) {
                        Vbus__V1__End e = VBUS__V1__END__INIT;

                        e.status = status;
                        e.message = (char *)why;
                        (void)vbus__conn_send_control(req->conn, VBUS_FRAME_RESET, req->id,
                                                      &e.base);
                        req->cancelled = true;
                        vbus__rpc_request_free(req);
                }
                return 1;
        }
        case VBUS_FRAME_END:
                /* The whole request is here: hand it over (the callback may answer at once). */
                if (!req->dispatched && !req->cancelled) {
                        req->dispatched = true;
                        if (req->srv)
                                req->srv->cb(req->srv, req, req->srv->userdata);
                        else
                                (void)vbus_request_fail(req, VBUS_STATUS_UNAVAILABLE,
                                                        "the server stopped serving");
                }
                return 1;
        case VBUS_FRAME_RESET:
                req->cancelled = true;
                if (!req->dispatched)
                        vbus__rpc_request_free(req);
                return 1;
        default:
                (void)ctl;
                return 1;
        }
}

int vbus__rpc_dispatch(vbus_conn *c, const VbusFrame *f, const VbusControl *ctl, bool closed)
{
        uint32_t id = f->header.stream_id;
        vbus_stream *st;
        vbus_call *call;
        vbus_request *req;
        vbus_server *srv;

        (void)closed;
        if (f->header.type == VBUS_FRAME_OPEN) {
                on_incoming_call(c, id, (const Vbus__V1__Open *)ctl->msg);
                return 1;
        }
        if (id == 0)
                return 0;
        st = vbus__stream_find(c, id);
        if (st)
                return vbus__stream_dispatch(st, f, ctl);
        call = call_find(c, id);
        if (call)
                return dispatch_call(call, f, ctl);
        req = request_find(c, id);
        if (req)
                return dispatch_request(req, f, ctl);
        srv = server_find_stream(c, id);
        if (srv) {
                if (f->header.type == VBUS_FRAME_ACCEPT) {
                        srv->state = SRV_OPEN;
                } else if (f->header.type == VBUS_FRAME_REJECT ||
                           f->header.type == VBUS_FRAME_RESET) {
                        int status = f->header.type == VBUS_FRAME_REJECT
                                             ? (int)((const Vbus__V1__Reject *)ctl->msg)->status
                                             : (int)((const Vbus__V1__End *)ctl->msg)->status;
                        const char *message =
                                f->header.type == VBUS_FRAME_REJECT
                                        ? ((const Vbus__V1__Reject *)ctl->msg)->message
                                        : ((const Vbus__V1__End *)ctl->msg)->message;

                        srv->state = SRV_FAILED;
                        srv->status = status == VBUS_STATUS_OK ? VBUS_STATUS_UNAVAILABLE : status;
                        free(srv->status_message);
                        srv->status_message = strdup(message ? message : "");
                }
                return 1;
        }
        return 0;
}

void vbus__rpc_link_ready(vbus_conn *c)
{
        for (List *pos = c->servers.next; pos != &c->servers; pos = pos->next)
                server_open_stream(list_entry(pos, vbus_server, link));
}

void vbus__rpc_link_dropped(vbus_conn *c)
{
        List *pos, *tmp;

        vbus__stream_link_dropped(c);
        list_for_each_safe(pos, tmp, &c->calls)
        {
                call_complete(list_entry(pos, vbus_call, link), VBUS_STATUS_UNAVAILABLE,
                              "the connection to the broker was lost");
        }
        list_for_each_safe(pos, tmp, &c->requests)
        {
                vbus_request *req = list_entry(pos, vbus_request, link);

                req->link_valid = false;
                if (!req->dispatched || req->answered)
                        vbus__rpc_request_free(req);
        }
        for (pos = c->servers.next; pos != &c->servers; pos = pos->next) {
                vbus_server *srv = list_entry(pos, vbus_server, link);

                if (srv->state != SRV_FAILED)
                        srv->state = SRV_IDLE;
        }
}

/* The first call with an outcome not yet delivered, or NULL. */
static vbus_call *call_first_done(vbus_conn *c)
{
        for (List *pos = c->calls.next; pos != &c->calls; pos = pos->next) {
                vbus_call *call = list_entry(pos, vbus_call, link);

                if (call->done)
                        return call;
        }
        return NULL;
}

int vbus__rpc_push(vbus_conn *c)
{
        int progress = 0;
        vbus_call *call;
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &c->calls)
        {
                call = list_entry(pos, vbus_call, link);
                if (!call->done)
                        progress |= call_push(call);
        }
        /* Outcomes are delivered here, from inside vbus_conn_process(). A callback may cancel or
         * start other calls, so the list is searched afresh after each one. */
        while ((call = call_first_done(c))) {
                list_unlink(&call->link);
                call->cb(call, &call->reply, call->userdata);
                call_free(call);
                progress = 1;
        }
        list_for_each_safe(pos, tmp, &c->requests)
        {
                vbus_request *req = list_entry(pos, vbus_request, link);

                if (req->answered)
                        progress |= request_push(req);
        }
        progress |= vbus__stream_push_all(c);
        return progress;
}

bool vbus__rpc_has_unsent(vbus_conn *c)
{
        for (List *pos = c->calls.next; pos != &c->calls; pos = pos->next) {
                vbus_call *call = list_entry(pos, vbus_call, link);

                if (!call->done && !call->end_sent)
                        return true;
        }
        for (List *pos = c->requests.next; pos != &c->requests; pos = pos->next)
                if (list_entry(pos, vbus_request, link)->answered)
                        return true;
        return vbus__stream_has_unsent(c);
}

uint64_t vbus__rpc_next_deadline(vbus_conn *c)
{
        uint64_t next = vbus__stream_next_deadline(c);

        for (List *pos = c->calls.next; pos != &c->calls; pos = pos->next) {
                vbus_call *call = list_entry(pos, vbus_call, link);

                if (call->done)
                        return 0; /* an outcome waits to be delivered */
                if (call->deadline < next)
                        next = call->deadline;
        }
        return next;
}

void vbus__rpc_expire(vbus_conn *c, uint64_t now)
{
        vbus__stream_expire(c, now);
        for (List *pos = c->calls.next; pos != &c->calls; pos = pos->next) {
                vbus_call *call = list_entry(pos, vbus_call, link);

                if (call->done || call->deadline > now)
                        continue;
                if (c->have_link) {
                        Vbus__V1__End e = VBUS__V1__END__INIT;

                        e.status = VBUS__V1__STATUS__STATUS_DEADLINE_EXCEEDED;
                        (void)vbus__conn_send_control(c, VBUS_FRAME_RESET, call->id, &e.base);
                }
                call_complete(call, VBUS_STATUS_DEADLINE_EXCEEDED,
                              "deadline exceeded (no answer from the broker)");
        }
}

void vbus__rpc_free_all(vbus_conn *c)
{
        List *pos, *tmp;

        vbus__stream_free_all(c);
        list_for_each_safe(pos, tmp, &c->calls) call_free(list_entry(pos, vbus_call, link));
        list_for_each_safe(pos, tmp, &c->requests)
                vbus__rpc_request_free(list_entry(pos, vbus_request, link));
        list_for_each_safe(pos, tmp, &c->servers)
        {
                server_free(list_entry(pos, vbus_server, link));
        }
}
