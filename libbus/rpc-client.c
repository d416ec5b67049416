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

#include "client.h"
#include "name.h"

enum {
        /* Extra time after a call's deadline before the library gives up on the broker's
         * answer by itself (the broker normally answers DEADLINE_EXCEEDED first). */
        RPC_DEADLINE_GRACE_US = 200 * 1000,
        /* Window granted for a reply or a request: a whole message fits. */
        RPC_WINDOW = VBUS_MESSAGE_MAX + 4096,
};

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
        uint64_t deadline; /* ours: the caller's deadline plus the grace */
        bool done;
        vbus_reply reply;
};

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
};

struct vbus_request {
        List link; /* in conn->requests */
        vbus_conn *conn;
        vbus_server *srv;
        uint32_t id;
        char *full_method;
        const char *method;
        uint32_t caller_domid, caller_uid;
        char caller_name[65];
        bool caller_local;
        uint64_t deadline;
        uint8_t *rx;
        size_t n_rx;
        bool dispatched; /* handed to the application */
        bool cancelled;
        bool answered; /* the application answered: the library sends it */
        bool link_valid;
        uint8_t *out;
        size_t n_out, off;
        bool sent_empty;
        int status;
        char *message;
};

static char *dup_or_empty(const char *s)
{
        return strdup(s ? s : "");
}

/*
 * Sends *off..n of @buf on stream @id in DATA frames, as far as the window and the link allow
 * (MORE on all but the message's last frame). Return: 1 when all of it is sent (an empty message
 * is one empty frame), 0 when the rest must wait for credit or room, -1 on a failed link.
 */
static int send_message(vbus_conn *c, uint32_t id, const uint8_t *buf, size_t n, size_t *off,
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
        if (send_message(c, call->id, call->out, call->n_out, &call->off, &call->sent_empty) <= 0)
                return call->off != before;
        e.status = VBUS__V1__STATUS__STATUS_OK;
        if (vbus__conn_send_control(c, VBUS_FRAME_END, call->id, &e.base) < 0)
                return call->off != before;
        call->end_sent = true;
        return 1;
}

VBUS_EXPORT int vbus_call_start(vbus_conn *c, const char *method, const void *request, size_t n,
                                uint64_t timeout_usec, vbus_call_cb cb, void *userdata,
                                vbus_call **ret_call)
{
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;
        vbus_call *call;
        uint32_t id;
        int r;

        if (!c || !method || !cb || (n > 0 && !request) ||
            !vbus__name_is_method(method, strnlen(method, 256)))
                return -EINVAL;
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
        id = vbus__session_next_id(&c->session);
        o.name = (char *)method;
        o.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_CALL;
        o.initial_credit = RPC_WINDOW;
        o.timeout_us = timeout_usec;
        r = id ? vbus__conn_send_control(c, VBUS_FRAME_OPEN, id, &o.base) : -E2BIG;
        if (r < 0) {
                free(call->out);
                free(call);
                return c->have_link ? r : -ENOTCONN;
        }
        call->id = id;
        list_init(&call->link);
        list_add_tail(&c->calls, &call->link);
        (void)call_push(call);
        if (ret_call)
                *ret_call = call;
        return 0;
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

VBUS_EXPORT int vbus_call_sync(vbus_conn *c, const char *method, const void *request, size_t n,
                               uint64_t timeout_usec, vbus_reply **ret_reply)
{
        uint64_t start = vbus__client_now();
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
        r = vbus_call_start(c, method, request, n, timeout_usec, sync_cb, &sc, NULL);
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
        id = vbus__session_next_id(&c->session);
        o.name = srv->service;
        o.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_SERVE;
        if (id && vbus__conn_send_control(c, VBUS_FRAME_OPEN, id, &o.base) == 0) {
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
        list_add_tail(&c->servers, &srv->link);
        server_open_stream(srv);
        *ret_server = srv;
        return 0;
}

static void request_free(vbus_request *req)
{
        list_unlink(&req->link);
        free(req->full_method);
        free(req->rx);
        free(req->out);
        free(req->message);
        free(req);
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
        list_unlink(&srv->link);
        free(srv->service);
        free(srv);
        return NULL;
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

static void on_incoming_call(vbus_conn *c, uint32_t id, const Vbus__V1__Open *m)
{
        vbus_server *srv = server_for(c, m->name);
        Vbus__V1__Accept a = VBUS__V1__ACCEPT__INIT;
        vbus_request *req;

        if (!srv) {
                Vbus__V1__Reject rj = VBUS__V1__REJECT__INIT;

                rj.status = VBUS__V1__STATUS__STATUS_NOT_FOUND;
                rj.message = (char *)"this process does not serve that service";
                (void)vbus__conn_send_control(c, VBUS_FRAME_REJECT, id, &rj.base);
                return;
        }
        req = calloc(1, sizeof(*req));
        if (!req || !(req->full_method = strdup(m->name))) {
                Vbus__V1__Reject rj = VBUS__V1__REJECT__INIT;

                free(req);
                rj.status = VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED;
                rj.message = (char *)"out of memory";
                (void)vbus__conn_send_control(c, VBUS_FRAME_REJECT, id, &rj.base);
                return;
        }
        req->method = strchr(req->full_method, '/') + 1;
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
        list_add_tail(&c->requests, &req->link);
        a.initial_credit = RPC_WINDOW;
        (void)vbus__conn_send_control(c, VBUS_FRAME_ACCEPT, id, &a.base);
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
        if (send_message(c, req->id, req->out, req->n_out, &req->off, &empty_done) <= 0)
                return req->off != before;
        req->sent_empty = empty_done;
        e.status = req->status;
        e.message = req->message;
        (void)vbus__conn_send_control(c, VBUS_FRAME_END, req->id, &e.base);
        request_free(req);
        return 1;
}

static int request_answer(vbus_request *req, int status, const char *message, const void *data,
                          size_t n)
{
        if (req->cancelled || !req->link_valid) {
                request_free(req);
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
                if (append(&call->rx, &call->n_rx, f->payload, f->header.length) < 0)
                        call_complete(call, VBUS_STATUS_RESOURCE_EXHAUSTED,
                                      "the reply is larger than VBUS_MESSAGE_MAX");
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
        case VBUS_FRAME_DATA:
                if (append(&req->rx, &req->n_rx, f->payload, f->header.length) < 0) {
                        Vbus__V1__End e = VBUS__V1__END__INIT;

                        e.status = VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED;
                        e.message = (char *)"the request is larger than VBUS_MESSAGE_MAX";
                        (void)vbus__conn_send_control(req->conn, VBUS_FRAME_RESET, req->id,
                                                      &e.base);
                        req->cancelled = true;
                }
                return 1;
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
                        request_free(req);
                return 1;
        default:
                (void)ctl;
                return 1;
        }
}

int vbus__rpc_dispatch(vbus_conn *c, const VbusFrame *f, const VbusControl *ctl, bool closed)
{
        uint32_t id = f->header.stream_id;
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
        call = call_find(c, id);
        if (call)
                return dispatch_call(call, f, ctl);
        req = request_find(c, id);
        if (req)
                return dispatch_request(req, f, ctl);
        srv = server_find_stream(c, id);
        if (srv) {
                if (f->header.type == VBUS_FRAME_ACCEPT)
                        srv->state = SRV_OPEN;
                else if (f->header.type == VBUS_FRAME_REJECT || f->header.type == VBUS_FRAME_RESET)
                        srv->state = SRV_FAILED;
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
                        request_free(req);
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
        return false;
}

uint64_t vbus__rpc_next_deadline(vbus_conn *c)
{
        uint64_t next = UINT64_MAX;

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

        list_for_each_safe(pos, tmp, &c->calls) call_free(list_entry(pos, vbus_call, link));
        list_for_each_safe(pos, tmp, &c->requests)
                request_free(list_entry(pos, vbus_request, link));
        list_for_each_safe(pos, tmp, &c->servers)
        {
                vbus_server *srv = list_entry(pos, vbus_server, link);

                list_unlink(&srv->link);
                free(srv->service);
                free(srv);
        }
}
