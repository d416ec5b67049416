/* SPDX-License-Identifier: MIT */
/*
 * call: unary calls (vbus_call_* and vbus_reply_* of <vbus/vbus.h>), a feature of the connection
 * (conn.h).
 *
 * A call is one CALL stream, bound to the call: OPEN (with the time left before the deadline),
 * the request in DATA frames within the stream's window, END; then the reply's DATA and the
 * server's END with the status, or a REJECT/RESET with one. A call whose stream closes without an
 * outcome (the link was lost) fails with UNAVAILABLE. Outcomes are recorded while frames are read
 * and delivered from the feature's push step, inside vbus_conn_process(), in the order the calls
 * were started.
 */
#include "call.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "name.h"
#include "util/list.h"

struct vbus_reply {
        int status;
        char *message;
        uint8_t *data;
        size_t n_data;
};

typedef struct Calls {
        vbus_conn *conn;
        List calls; /* vbus_call without an outcome, in the order they started */
        List done;  /* vbus_call with an outcome to deliver, in the order they got it */
} Calls;

struct vbus_call {
        List link; /* in Calls.calls, then in Calls.done */
        Calls *cs;
        vbus_conn *conn;
        VbusStream *vs; /* while the stream is open; bound to the call */
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

static const VbusFeatureOps calls_ops;
static const VbusStreamOps call_stream_ops;

static void *calls_new(vbus_conn *c)
{
        Calls *cs = calloc(1, sizeof(*cs));

        if (!cs)
                return NULL;
        cs->conn = c;
        list_init(&cs->calls);
        list_init(&cs->done);
        return cs;
}

/* --- opening a call (shared with streaming calls) ------------------------------------------- */

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

int vbus__rpc_open_call(vbus_conn *c, const char *method, const vbus_call_options *opts,
                        const VbusStreamOps *ops, void *obj, VbusStream **ret_vs)
{
        Vbus__V1__Header hs[VBUS_CALL_HEADERS_MAX], *hp[VBUS_CALL_HEADERS_MAX];
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;
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
        /* VBUS_TIMEOUT_FOREVER is no deadline, as 0 is; the broker saturates any other. */
        o.timeout_us = opts && opts->timeout_usec != VBUS_TIMEOUT_FOREVER ? opts->timeout_usec : 0;
        return vbus__conn_open_stream(c, &o, ops, obj, ret_vs);
}

/* --- calls -------------------------------------------------------------------------------- */

uint64_t vbus__rpc_deadline(uint64_t timeout_usec)
{
        uint64_t d = vbus__deadline_after(vbus__client_now(), timeout_usec);

        return vbus__deadline_after(d, RPC_DEADLINE_GRACE_US);
}

static void call_complete(vbus_call *call, int status, const char *message)
{
        if (call->done)
                return;
        call->done = true;
        list_unlink(&call->link);
        list_add_tail(&call->cs->done, &call->link);
        call->reply.status = status;
        call->reply.message = strdup(message ? message : "");
        if (status == VBUS_STATUS_OK) {
                call->reply.data = call->rx;
                call->reply.n_data = call->n_rx;
                call->rx = NULL;
                call->n_rx = 0;
        }
}

static void call_free(vbus_call *call)
{
        /* A call completed by the server's END before ours went leaves a half-open stream. */
        if (call->vs)
                vbus__endpoint_bind(call->vs, NULL, NULL);
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
        size_t before = call->off;

        if (call->done || call->end_sent || !vbus__conn_is_up(c))
                return 0;
        if (vbus__conn_send_message(c, call->id, call->out, call->n_out, &call->off,
                                    &call->sent_empty, 1, 0) <= 0)
                return call->off != before;
        if (vbus__conn_send_end(c, VBUS_FRAME_END, call->id, VBUS_STATUS_OK, NULL) < 0)
                return call->off != before;
        call->end_sent = true;
        return 1;
}

int vbus__rpc_append(uint8_t **buf, size_t *n, const uint8_t *data, size_t len)
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

static int call_on_accept(void *obj, VbusStream *vs, const Vbus__V1__Accept *m)
{
        vbus_call *call = obj;

        (void)vs;
        (void)m;
        (void)call_push(call);
        return call->conn->link_error;
}

static int call_on_data(void *obj, VbusStream *vs, const VbusFrame *f)
{
        vbus_call *call = obj;

        (void)vs;
        if (call->done)
                return 0;
        if (call->rx_complete) {
                /* A unary call takes one reply message; a server that streams is answering a
                 * streaming call (vbus_stream_open()). */
                vbus__conn_release_stream(call->conn, &call->vs, VBUS_FRAME_RESET,
                                          VBUS_STATUS_CANCELLED,
                                          "a unary call takes one reply message");
                call_complete(call, VBUS_STATUS_INTERNAL,
                              "the server sent more than one reply message to a unary call");
                return call->conn->link_error;
        }
        if (vbus__rpc_append(&call->rx, &call->n_rx, f->payload, f->header.length) < 0)
                call_complete(call, VBUS_STATUS_RESOURCE_EXHAUSTED,
                              "the reply is larger than VBUS_MESSAGE_MAX");
        call->rx_complete = !(f->header.flags & VBUS_FLAG_MORE);
        return 0;
}

static int call_on_reject(void *obj, VbusStream *vs, const Vbus__V1__Reject *m)
{
        (void)vs;
        call_complete(obj, (int)m->status, m->message);
        return 0;
}

static int call_on_end(void *obj, VbusStream *vs, const Vbus__V1__End *m)
{
        (void)vs;
        call_complete(obj, (int)m->status, m->message);
        return 0;
}

static void call_closed(void *obj, VbusStream *vs)
{
        vbus_call *call = obj;

        (void)vs;
        call->vs = NULL;
        call_complete(call, VBUS_STATUS_UNAVAILABLE, "the connection to the broker was lost");
}

static const VbusStreamOps call_stream_ops = {
        .accept = call_on_accept,
        .reject = call_on_reject,
        .data = call_on_data,
        .end = call_on_end,
        .reset = call_on_end,
        .closed = call_closed,
};

/* --- the feature ------------------------------------------------------------------------------ */

static int calls_push(void *state)
{
        Calls *cs = state;
        int progress = 0;
        vbus_call *call;
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &cs->calls)
        {
                call = list_entry(pos, vbus_call, link);
                if (!call->done)
                        progress |= call_push(call);
        }
        /* Outcomes are delivered here, from inside vbus_conn_process(). A callback may cancel or
         * start other calls, so the list's head is read afresh after each one. */
        while (!list_is_empty(&cs->done)) {
                call = list_entry(cs->done.next, vbus_call, link);
                list_unlink(&call->link);
                /* Said for clang's analyzer, which loses track of the list's aliases. */
                assert(cs->done.next != &call->link);
                call->cb(call, &call->reply, call->userdata);
                call_free(call);
                progress = 1;
        }
        return progress;
}

static bool calls_have_unsent(void *state)
{
        Calls *cs = state;

        for (List *pos = cs->calls.next; pos != &cs->calls; pos = pos->next) {
                vbus_call *call = list_entry(pos, vbus_call, link);

                if (!call->done && !call->end_sent)
                        return true;
        }
        return false;
}

static uint64_t calls_next_deadline(void *state)
{
        Calls *cs = state;
        uint64_t next = UINT64_MAX;

        if (!list_is_empty(&cs->done))
                return 0; /* an outcome waits to be delivered */
        for (List *pos = cs->calls.next; pos != &cs->calls; pos = pos->next) {
                vbus_call *call = list_entry(pos, vbus_call, link);

                if (call->deadline < next)
                        next = call->deadline;
        }
        return next;
}

static void calls_expire(void *state, uint64_t now)
{
        Calls *cs = state;
        List *pos, *tmp;

        /* call_complete() moves a call to cs->done: walk safely. */
        list_for_each_safe(pos, tmp, &cs->calls)
        {
                vbus_call *call = list_entry(pos, vbus_call, link);

                if (call->deadline > now)
                        continue;
                vbus__conn_release_stream(cs->conn, &call->vs, VBUS_FRAME_RESET,
                                          VBUS_STATUS_DEADLINE_EXCEEDED, NULL);
                call_complete(call, VBUS_STATUS_DEADLINE_EXCEEDED,
                              "deadline exceeded (no answer from the broker)");
        }
}

static void calls_free_all(void *state)
{
        Calls *cs = state;
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &cs->calls) call_free(list_entry(pos, vbus_call, link));
        list_for_each_safe(pos, tmp, &cs->done) call_free(list_entry(pos, vbus_call, link));
        free(cs);
}

static const VbusFeatureOps calls_ops = {
        .push = calls_push,
        .has_unsent = calls_have_unsent,
        .next_deadline = calls_next_deadline,
        .expire = calls_expire,
        .free_all = calls_free_all,
};

/* --- public: calls ------------------------------------------------------------------------ */

VBUS_EXPORT int vbus_call_start_opts(vbus_conn *c, const char *method, const void *request,
                                     size_t n, const vbus_call_options *opts, vbus_call_cb cb,
                                     void *userdata, vbus_call **ret_call)
{
        uint64_t timeout_usec = opts ? opts->timeout_usec : 0;
        vbus_call *call;
        Calls *cs;
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
        cs = vbus__conn_get_feature(c, &calls_ops, calls_new);
        if (!cs)
                return -ENOMEM;
        call = calloc(1, sizeof(*call));
        if (!call || (n > 0 && !(call->out = malloc(n)))) {
                free(call);
                return -ENOMEM;
        }
        if (n > 0)
                memcpy(call->out, request, n);
        call->n_out = n;
        call->cs = cs;
        call->conn = c;
        call->cb = cb;
        call->userdata = userdata;
        call->deadline = timeout_usec ? vbus__rpc_deadline(timeout_usec) : UINT64_MAX;
        r = vbus__rpc_open_call(c, method, opts, &call_stream_ops, call, &call->vs);
        if (r < 0) {
                free(call->out);
                free(call);
                return r;
        }
        call->id = call->vs->id;
        list_add_tail(&cs->calls, &call->link);
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
        vbus__conn_release_stream(call->conn, &call->vs, VBUS_FRAME_RESET, VBUS_STATUS_CANCELLED,
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
        if (timeout_usec && timeout_usec != VBUS_TIMEOUT_FOREVER) {
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
