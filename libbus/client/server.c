/* SPDX-License-Identifier: MIT */
/*
 * server: servers and the requests they receive (vbus_serve(), vbus_server_*, vbus_request_* of
 * <vbus/vbus.h>), a feature of the connection (conn.h).
 *
 * A server owns one SERVE stream toward the broker, bound to it, kept across reconnects like a
 * subscription. A call to its service arrives as an OPEN from the broker (the feature's ->open):
 * it becomes a request that owns that stream, gets the request message in DATA frames and the
 * caller's END, and is then handed to the application, which answers when it likes (the answer
 * goes out as far as the window allows, then END with the status, from the push step). A method
 * served as a stream hands the request to a stream at once (stream.c).
 */
#include "server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "name.h"
#include "standing.h"

typedef struct StreamMethod {
        List link; /* in vbus_server.stream_methods */
        char *method;
        vbus_request_cb cb;
        void *userdata;
        const VbusRequestStreamOps *ops;
} StreamMethod;

struct Servers {
        vbus_conn *conn;
        List servers;  /* vbus_server */
        List requests; /* vbus_request received and not answered, that no stream owns */
};

struct vbus_server {
        VbusStanding s; /* first: the SERVE stream, named after the service */
        List link;      /* in Servers.servers */
        Servers *srvs;
        vbus_request_cb cb;
        void *userdata;
        List stream_methods; /* StreamMethod */
        /* vbus_protobuf_describe()'s packed vbus.v1.ServiceDescription (NULL: none), sent as the
         * one message of the SERVE stream on each link whose broker takes it. */
        uint8_t *desc;
        size_t n_desc, desc_off;
        bool desc_empty_sent; /* never: a description is not empty; for send_message() */
};

static const VbusFeatureOps servers_ops;
static const VbusStreamOps server_stream_ops;
static const VbusStreamOps request_stream_ops;

static void *servers_new(vbus_conn *c)
{
        Servers *srvs = calloc(1, sizeof(*srvs));

        if (!srvs)
                return NULL;
        srvs->conn = c;
        list_init(&srvs->servers);
        list_init(&srvs->requests);
        return srvs;
}

/* --- the SERVE stream ------------------------------------------------------------------------ */

static void server_open_stream(vbus_server *srv)
{
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;

        o.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_SERVE;
        srv->desc_off = 0; /* a new stream: the description goes again */
        vbus__standing_open(&srv->s, &o, &server_stream_ops, srv);
}

/* Whether @srv has description bytes to send now: its stream is open, on a broker that takes one
 * (VBUS_FEATURE_DESCRIBE; an older broker gave the stream no window, and is told nothing). */
static bool server_desc_pending(const vbus_server *srv)
{
        return srv->desc && srv->desc_off < srv->n_desc && vbus__standing_is_active(&srv->s) &&
               (srv->s.conn->broker_features & VBUS_FEATURE_DESCRIBE);
}

/* Sends what the window allows of @srv's description. Return: 1 if something went. */
static int server_desc_push(vbus_server *srv)
{
        size_t before = srv->desc_off;

        if (!server_desc_pending(srv))
                return 0;
        (void)vbus__conn_send_message(srv->s.conn, srv->s.id, srv->desc, srv->n_desc,
                                      &srv->desc_off, &srv->desc_empty_sent, 1, 0);
        return srv->desc_off != before;
}

int vbus__server_set_description(vbus_server *srv, uint8_t *buf, size_t n)
{
        /* The stream carries one description: a second would be a protocol error once sent. */
        if (srv->desc)
                return -EALREADY;
        srv->desc = buf;
        srv->n_desc = n;
        srv->desc_off = 0;
        return 0;
}

const char *vbus__server_get_service(const vbus_server *srv)
{
        return srv->s.name;
}

static void server_closed(void *obj, VbusStream *vs)
{
        vbus_server *srv = obj;

        (void)vs;
        vbus__standing_closed(&srv->s);
}

static const VbusStreamOps server_stream_ops = {
        .accept = vbus__standing_on_accept,
        .reject = vbus__standing_on_reject,
        .end = vbus__standing_on_end,
        .reset = vbus__standing_on_reset,
        .closed = server_closed,
};

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
        vbus__standing_deinit(&srv->s);
        list_unlink(&srv->link);
        free(srv->desc);
        free(srv);
}

/* --- public: servers ------------------------------------------------------------------------ */

VBUS_EXPORT int vbus_serve(vbus_conn *c, const char *service, vbus_request_cb cb, void *userdata,
                           vbus_server **ret_server)
{
        vbus_server *srv;
        Servers *srvs;

        if (!c || !service || !cb || !ret_server ||
            !vbus__name_is_service(service, strnlen(service, 256)))
                return -EINVAL;
        srvs = vbus__conn_get_feature(c, &servers_ops, servers_new);
        if (!srvs)
                return -ENOMEM;
        srv = vbus__standing_new(c, sizeof(*srv), service);
        if (!srv)
                return -ENOMEM;
        srv->srvs = srvs;
        srv->cb = cb;
        srv->userdata = userdata;
        list_init(&srv->stream_methods);
        list_add_tail(&srvs->servers, &srv->link);
        server_open_stream(srv);
        *ret_server = srv;
        return 0;
}

int vbus__server_add_stream_method(vbus_server *srv, const char *method, vbus_request_cb cb,
                                   void *userdata, const VbusRequestStreamOps *ops)
{
        size_t len = method ? strnlen(method, VBUS_NAME_MAX + 1) : 0;
        StreamMethod *sm;

        if (!srv || !cb || !ops || len == 0 || len > VBUS_NAME_MAX || strchr(method, '/'))
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
                        sm->ops = ops;
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
        sm->ops = ops;
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
        Servers *srvs;

        if (!srv)
                return NULL;
        srvs = srv->srvs;
        for (List *pos = srvs->requests.next; pos != &srvs->requests; pos = pos->next) {
                vbus_request *req = list_entry(pos, vbus_request, link);

                if (req->srv == srv)
                        req->srv = NULL;
        }
        vbus__conn_release_stream(srv->s.conn, &srv->s.vs, VBUS_FRAME_END, VBUS_STATUS_OK, NULL);
        server_free(srv);
        return NULL;
}

VBUS_EXPORT int vbus_server_get_status(vbus_server *srv, const char **ret_message)
{
        return vbus__standing_get_status(srv ? &srv->s : NULL, ret_message);
}

VBUS_EXPORT bool vbus_server_is_active(vbus_server *srv)
{
        return srv && vbus__standing_is_active(&srv->s);
}

/* --- requests ------------------------------------------------------------------------------- */

void vbus__request_free(vbus_request *req)
{
        if (req->stream) {
                req->stream_ops->detach(req->stream);
                /* the stream is gone; the request is ours again */
        }
        if (req->vs)
                vbus__endpoint_bind(req->vs, NULL, NULL);
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

void vbus__request_adopt(vbus_request *req, VbusStream *vs)
{
        list_add_tail(&req->srvs->requests, &req->link);
        req->vs = vs;
        if (vs)
                vbus__endpoint_bind(vs, &request_stream_ops, req);
}

/* The server of @full_method ("service/method") that is serving now, or NULL. */
static vbus_server *server_for(Servers *srvs, const char *full_method)
{
        const char *slash = strchr(full_method, '/');
        size_t len = slash ? (size_t)(slash - full_method) : 0;

        for (List *pos = srvs->servers.next; pos != &srvs->servers; pos = pos->next) {
                vbus_server *srv = list_entry(pos, vbus_server, link);

                if (srv->s.state == VBUS_STANDING_OPEN && strlen(srv->s.name) == len &&
                    memcmp(srv->s.name, full_method, len) == 0)
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

/* Refuses the call on @vs (which leaves the session: nothing is bound to it). Return: 1 (the
 * OPEN is taken care of). */
static int reject_call(vbus_conn *c, VbusStream *vs, int status, const char *message)
{
        Vbus__V1__Reject rj = VBUS__V1__REJECT__INIT;

        rj.status = status;
        rj.message = (char *)message;
        (void)vbus__conn_send_control(c, VBUS_FRAME_REJECT, vs->id, &rj.base);
        return 1;
}

/*
 * Copies @src (NULL: nothing) into @dst of @size bytes, cut to fit and terminated: what
 * snprintf(dst, size, "%s", src) does, without formatting (once per request, on the hot path).
 */
static void copy_bounded(char *dst, size_t size, const char *src)
{
        size_t n;

        if (!src)
                return;
        n = strnlen(src, size - 1);
        memcpy(dst, src, n);
        dst[n] = '\0';
}

static vbus_request *request_new(Servers *srvs, vbus_server *srv, VbusStream *vs,
                                 const Vbus__V1__Open *m)
{
        vbus_request *req = calloc(1, sizeof(*req));

        if (!req || !(req->full_method = strdup(m->name))) {
                free(req);
                return NULL;
        }
        req->method = strchr(req->full_method, '/') + 1;
        list_init(&req->link);
        req->srvs = srvs;
        req->conn = srvs->conn;
        req->srv = srv;
        req->id = vs->id;
        req->link_valid = true;
        req->deadline = m->timeout_us ? vbus__deadline_after(vbus__client_now(), m->timeout_us)
                                      : UINT64_MAX;
        if (m->caller) {
                req->caller_domid = m->caller->domid;
                req->caller_local = m->caller->local;
                req->caller_uid = m->caller->uid;
                /* A domain name is at most 64 bytes (control.c), so it fits whole. */
                copy_bounded(req->caller_name, sizeof(req->caller_name), m->caller->domain_name);
                /* Fits: control.c bounds key_name to VBUS_AUTH_FIELD_MAX bytes. */
                copy_bounded(req->caller_key, sizeof(req->caller_key), m->caller->key_name);
        }
        if (request_copy_headers(req, m) < 0) {
                vbus__request_free(req);
                return NULL;
        }
        vbus__request_adopt(req, vs);
        return req;
}

/* The broker opened a call toward us: a request of the server of its service, if we serve it. */
static int servers_open(void *state, VbusStream *vs, const Vbus__V1__Open *m)
{
        Servers *srvs = state;
        vbus_conn *c = srvs->conn;
        vbus_server *srv = server_for(srvs, m->name);
        Vbus__V1__Accept a = VBUS__V1__ACCEPT__INIT;
        StreamMethod *sm;
        vbus_request *req;

        if (!srv)
                return 0; /* the connection refuses it: NOT_FOUND */
        req = request_new(srvs, srv, vs, m);
        if (!req)
                return reject_call(c, vs, VBUS_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        sm = server_stream_method(srv, req->method);
        if (sm && !sm->ops->take(req)) {
                vbus__request_free(req);
                return reject_call(c, vs, VBUS_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        }
        a.initial_credit = RPC_WINDOW;
        (void)vbus__conn_send_control(c, VBUS_FRAME_ACCEPT, req->id, &a.base);
        if (sm) {
                /* A streaming method: the handler takes the call now, before any message. */
                req->dispatched = true;
                sm->cb(srv, req, sm->userdata);
        }
        return 1;
}

/* Sends what the window allows of the answer, then END with its status. */
static int request_push(vbus_request *req)
{
        vbus_conn *c = req->conn;
        size_t before = req->off;
        bool empty_done = true; /* a failure carries no reply message */

        if (!req->answered || !vbus__conn_is_up(c) || !req->link_valid)
                return 0;
        if (req->status == VBUS_STATUS_OK)
                empty_done = req->sent_empty;
        if (vbus__conn_send_message(c, req->id, req->out, req->n_out, &req->off, &empty_done, 1,
                                    0) <= 0)
                return req->off != before;
        req->sent_empty = empty_done;
        vbus__conn_release_stream(c, &req->vs, VBUS_FRAME_END, req->status, req->message);
        vbus__request_free(req);
        return 1;
}

/* Fails a request whose caller broke its contract: RESET with @status and @why, then gone. */
static void request_refuse(vbus_request *req, int status, const char *why)
{
        vbus__conn_release_stream(req->conn, &req->vs, VBUS_FRAME_RESET, status, why);
        req->cancelled = true;
        vbus__request_free(req);
}

static int request_on_data(void *obj, VbusStream *vs, const VbusFrame *f)
{
        vbus_request *req = obj;
        vbus_conn *c = req->conn;

        (void)vs;
        if (req->cancelled || req->dispatched)
                return 0;
        if (req->rx_complete) {
                request_refuse(req, VBUS_STATUS_INVALID_ARGUMENT,
                               "this method takes one request message (it is not a streaming "
                               "method)");
                return c->link_error;
        }
        if (vbus__rpc_append(&req->rx, &req->n_rx, f->payload, f->header.length) < 0) {
                request_refuse(req, VBUS_STATUS_INVALID_ARGUMENT,
                               "the request is larger than VBUS_MESSAGE_MAX");
                return c->link_error;
        }
        req->rx_complete = !(f->header.flags & VBUS_FLAG_MORE);
        return 0;
}

static int request_on_end(void *obj, VbusStream *vs, const Vbus__V1__End *m)
{
        vbus_request *req = obj;
        vbus_conn *c = req->conn;

        (void)vs;
        (void)m;
        /* The whole request is here: hand it over (the callback may answer at once). */
        if (!req->dispatched && !req->cancelled) {
                req->dispatched = true;
                if (req->srv)
                        req->srv->cb(req->srv, req, req->srv->userdata);
                else
                        (void)vbus_request_fail(req, VBUS_STATUS_UNAVAILABLE,
                                                "the server stopped serving");
        }
        return c->link_error;
}

static int request_on_reset(void *obj, VbusStream *vs, const Vbus__V1__End *m)
{
        vbus_request *req = obj;

        (void)vs;
        (void)m;
        req->cancelled = true;
        if (!req->dispatched)
                vbus__request_free(req);
        return 0;
}

/* The stream is gone (the caller reset it, or the link was lost): a request the application does
 * not hold, or has answered, goes; one it holds is answered -ECANCELED. */
static void request_closed(void *obj, VbusStream *vs)
{
        vbus_request *req = obj;

        (void)vs;
        req->vs = NULL;
        req->link_valid = false;
        if (!req->dispatched || req->answered)
                vbus__request_free(req);
}

static const VbusStreamOps request_stream_ops = {
        .data = request_on_data,
        .end = request_on_end,
        .reset = request_on_reset,
        .closed = request_closed,
};

/* --- the feature ------------------------------------------------------------------------------ */

static void servers_link_ready(void *state)
{
        Servers *srvs = state;

        for (List *pos = srvs->servers.next; pos != &srvs->servers && vbus__conn_is_up(srvs->conn);
             pos = pos->next)
                server_open_stream(list_entry(pos, vbus_server, link));
}

static int servers_push(void *state)
{
        Servers *srvs = state;
        int progress = 0;
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &srvs->requests)
        {
                vbus_request *req = list_entry(pos, vbus_request, link);

                if (req->answered)
                        progress |= request_push(req);
        }
        for (pos = srvs->servers.next; pos != &srvs->servers; pos = pos->next)
                progress |= server_desc_push(list_entry(pos, vbus_server, link));
        return progress;
}

static bool servers_have_unsent(void *state)
{
        Servers *srvs = state;

        for (List *pos = srvs->requests.next; pos != &srvs->requests; pos = pos->next)
                if (list_entry(pos, vbus_request, link)->answered)
                        return true;
        for (List *pos = srvs->servers.next; pos != &srvs->servers; pos = pos->next)
                if (server_desc_pending(list_entry(pos, vbus_server, link)))
                        return true;
        return false;
}

static void servers_free_all(void *state)
{
        Servers *srvs = state;
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &srvs->requests)
                vbus__request_free(list_entry(pos, vbus_request, link));
        list_for_each_safe(pos, tmp, &srvs->servers)
                server_free(list_entry(pos, vbus_server, link));
        free(srvs);
}

static const VbusFeatureOps servers_ops = {
        .link_ready = servers_link_ready,
        .open = servers_open,
        .push = servers_push,
        .has_unsent = servers_have_unsent,
        .free_all = servers_free_all,
};

/* --- public: requests ----------------------------------------------------------------------- */

static int request_answer(vbus_request *req, int status, const char *message, const void *data,
                          size_t n)
{
        if (req->answered)
                return -EALREADY;
        if (req->stream) {
                if (req->stream_ops->is_taken(req->stream))
                        return -EALREADY; /* answered through its stream */
                /* A streaming method answered at once, without taking the stream. */
                req->stream_ops->detach(req->stream);
        }
        if (req->cancelled || !req->link_valid) {
                vbus__request_free(req);
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

VBUS_EXPORT const char *vbus_request_get_caller_key(const vbus_request *req)
{
        return req ? req->caller_key : "";
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
