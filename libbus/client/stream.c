/* SPDX-License-Identifier: MIT */
/*
 * stream: streaming calls (the vbus_stream part of <vbus/vbus.h>), at the caller and at the
 * server, a feature of the connection (conn.h).
 *
 * A stream is one CALL stream carrying any number of messages each way (docs/protocol.md 6.1),
 * bound to its vbus_stream. Frames are only recorded while the link is read (the stream ops
 * below); the application's callbacks run afterwards, from the feature's push step, so a
 * callback may do anything to any stream: a stream released meanwhile is only marked dead (its
 * frames are ignored) and freed once no callback runs. A stream whose CALL stream closes without
 * an outcome (the link was lost) ends with UNAVAILABLE.
 *
 * Flow control, receiving: the window granted to the other end is RPC_WINDOW bytes (a whole
 * message fits), and credit goes back only for the bytes of messages the application has taken
 * (on_message returned), in batches of a quarter window. A paused or slow application therefore
 * holds at most one window of messages (stored compactly by msgqueue.c) plus the one being
 * assembled; the sender waits. The batch
 * is returned early while a message is half assembled, so a message as large as the window can
 * always complete. Sending: at most one message waits in the library for room; vbus_stream_send()
 * says -EAGAIN until it is out, then on_writable runs.
 */
#include "stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "msgqueue.h"
#include "name.h"

typedef struct Streams {
        vbus_conn *conn;
        List streams; /* vbus_stream, at either end */
        int busy;     /* > 0 while stream callbacks run: frees are deferred */
} Streams;

struct vbus_stream {
        List link; /* in Streams.streams */
        Streams *sts;
        vbus_conn *conn;
        VbusStream *vs;    /* while the CALL stream is open; bound to this object */
        vbus_request *req; /* server end: the call, owned; NULL at the caller */
        vbus_stream_handlers h;
        void *userdata;
        uint64_t deadline; /* caller: its deadline plus the grace; UINT64_MAX for none */
        uint32_t id;

        /* Sending: one message at most waits for room, then our END. */
        int finish_status; /* server: the status of the END after the pending message */
        uint8_t *out;
        size_t n_out, off;
        char *finish_message;

        /* Receiving. */
        uint8_t *cur; /* a message being assembled from DATA frames (NULL: none) */
        size_t n_cur, cap_cur;
        VbusMsgQueue queue;
        uint64_t credit_owed;

        /* The outcome, delivered by on_end after the queue. */
        int status;
        char *message;

        /* Flags, together so that the struct has no holes. */
        bool taken;          /* server end: the application called vbus_request_stream() */
        bool out_pending;    /* a message waits for room */
        bool out_empty_sent; /* ... and it was empty, and its one frame went */
        bool want_writable;  /* a send said -EAGAIN */
        bool writable_due;   /* ... and there is room now: on_writable is due */
        bool closing;        /* END after the pending message */
        bool send_closed;    /* our END (or a RESET either way) went: nothing more to send */
        bool paused;
        bool eof_due; /* server: the caller closed its side; on_message(NULL) after the queue */
        bool ended;
        bool in_end_cb;
        bool dead; /* released: freed when no callback runs */
};

static const VbusFeatureOps streams_ops;
static const VbusStreamOps stream_ops;

static void *streams_new(vbus_conn *c)
{
        Streams *sts = calloc(1, sizeof(*sts));

        if (!sts)
                return NULL;
        sts->conn = c;
        list_init(&sts->streams);
        return sts;
}

static vbus_stream *stream_alloc(vbus_conn *c)
{
        Streams *sts = vbus__conn_get_feature(c, &streams_ops, streams_new);
        vbus_stream *st;

        if (!sts)
                return NULL;
        st = calloc(1, sizeof(*st));
        if (!st)
                return NULL;
        st->sts = sts;
        st->conn = c;
        st->deadline = UINT64_MAX;
        list_add_tail(&sts->streams, &st->link);
        return st;
}

static void stream_free(vbus_stream *st)
{
        if (st->vs)
                vbus__endpoint_bind(st->vs, NULL, NULL);
        list_unlink(&st->link);
        vbus__msgqueue_clear(&st->queue);
        free(st->cur);
        free(st->out);
        free(st->finish_message);
        free(st->message);
        if (st->req) {
                st->req->stream = NULL;
                vbus__request_free(st->req);
        }
        free(st);
}

/* The application is done with @st: free it now, or when the running callback returns. */
static void stream_release(vbus_stream *st)
{
        st->dead = true;
        if (st->sts->busy == 0)
                stream_free(st);
}

static void stream_set_outcome(vbus_stream *st, int status, const char *message)
{
        if (st->ended)
                return;
        st->ended = true;
        st->status = status;
        st->message = strdup(message ? message : "");
        st->send_closed = st->send_closed || status != VBUS_STATUS_OK;
        if (st->req)
                st->req->cancelled = status != VBUS_STATUS_OK;
}

/* Whether @st is still a stream of @sts that the application may use (on_end has not run). */
static bool stream_is_alive(Streams *sts, const vbus_stream *st)
{
        for (List *pos = sts->streams.next; pos != &sts->streams; pos = pos->next)
                if (list_entry(pos, vbus_stream, link) == st)
                        return !st->dead;
        return false;
}

static const VbusRequestStreamOps request_stream_ops;

/* The stream that will carry @req for a method served as a stream, before the application has
 * taken it with vbus_request_stream(): @req's stream is bound to it, and @req leaves its server
 * set's list. NULL on ENOMEM (@req unchanged). */
static vbus_stream *stream_take_request(vbus_request *req)
{
        vbus_stream *st = stream_alloc(req->conn);

        if (!st)
                return NULL;
        st->id = req->id;
        st->req = req;
        req->stream = st;
        req->stream_ops = &request_stream_ops;
        st->vs = req->vs;
        req->vs = NULL;
        if (st->vs)
                vbus__endpoint_bind(st->vs, &stream_ops, st);
        list_unlink(&req->link);
        return st;
}

/* Frees a stream the application did not take, leaving its request to be answered as a plain
 * request (vbus__request_adopt()). */
static void stream_detach_request(vbus_stream *st)
{
        vbus_request *req = st->req;

        st->req = NULL;
        req->stream = NULL;
        vbus__request_adopt(req, st->vs);
        st->vs = NULL;
        stream_release(st);
}

static bool stream_is_taken(const vbus_stream *st)
{
        return st->taken;
}

static const VbusRequestStreamOps request_stream_ops = {
        .take = stream_take_request,
        .detach = stream_detach_request,
        .is_taken = stream_is_taken,
};

VBUS_EXPORT int vbus_server_stream_method(vbus_server *srv, const char *method, vbus_request_cb cb,
                                          void *userdata)
{
        return vbus__server_add_stream_method(srv, method, cb, userdata, &request_stream_ops);
}

uint32_t vbus__stream_get_id(const vbus_stream *st)
{
        return st->id;
}

/* --- sending ------------------------------------------------------------------------------- */

/* Sends the pending message, then our END when asked for. Return: 1 progress, 0 none. */
static int stream_push(vbus_stream *st)
{
        vbus_conn *c = st->conn;
        size_t before = st->off;
        int r;

        if (st->dead || st->send_closed || !vbus__conn_is_up(c))
                return 0;
        if (st->out_pending) {
                r = vbus__conn_send_message(c, st->id, st->out, st->n_out, &st->off,
                                            &st->out_empty_sent, 1, 0);
                if (r <= 0)
                        return st->off != before;
                st->out_pending = false;
                free(st->out);
                st->out = NULL;
                if (st->want_writable && st->h.on_writable)
                        st->writable_due = true;
                st->want_writable = false;
        }
        if (st->closing) {
                if (vbus__conn_send_end(c, VBUS_FRAME_END, st->id,
                                        st->req ? st->finish_status : VBUS_STATUS_OK,
                                        st->finish_message) < 0)
                        return 1;
                st->send_closed = true;
                /* The server's END ends the call at this end: freed by whoever called us, once
                 * no callback runs (stream_sweep()). */
                if (st->req)
                        st->dead = true;
        }
        return 1;
}

/* Frees @st if stream_push() ended it and no callback runs; after a push outside the loop. */
static void stream_sweep(vbus_stream *st)
{
        if (st->dead && st->sts->busy == 0)
                stream_free(st);
}

VBUS_EXPORT int vbus_stream_send(vbus_stream *st, const void *data, size_t n)
{
        vbus_conn *c;
        size_t off = 0;
        bool empty_sent = false;
        int r;

        if (!st || st->dead || (n > 0 && !data) || (st->req && !st->taken))
                return -EINVAL;
        if (n > VBUS_MESSAGE_MAX)
                return -EMSGSIZE;
        if (st->send_closed || st->closing || st->ended) {
                return -EPIPE;
        }
        if (st->out_pending) {
                st->want_writable = true;
                return -EAGAIN;
        }
        c = st->conn;
        if (!vbus__conn_is_up(c)) {
                return -EPIPE; /* the stream's outcome (UNAVAILABLE) is on its way */
        }
        /* Straight from the caller's buffer as far as the window allows; keep the rest. */
        r = vbus__conn_send_message(c, st->id, data, n, &off, &empty_sent, 1, 0);
        if (r == 1)
                return 0;
        if (r < 0) {
                return -EPIPE;
        }
        st->out = malloc(n - off ? n - off : 1);
        if (!st->out) {
                if (off == 0)
                        return -ENOMEM;
                /* Half a message is on the wire: the stream cannot go on. */
                vbus__conn_release_stream(c, &st->vs, VBUS_FRAME_RESET, VBUS_STATUS_INTERNAL,
                                          "out of memory for a message");
                stream_set_outcome(st, VBUS_STATUS_INTERNAL, "out of memory for a message");
                return -ENOMEM;
        }
        if (n - off > 0)
                memcpy(st->out, (const uint8_t *)data + off, n - off);
        st->n_out = n - off;
        st->off = 0;
        /* The first frame of the rest continues a message whose start is out (MORE was set on
         * it), or starts it: either way the frames that follow are the message's next bytes. */
        st->out_empty_sent = false;
        st->out_pending = true;
        return 0;
}

VBUS_EXPORT int vbus_stream_send_wait(vbus_stream *st, const void *data, size_t n,
                                      uint64_t timeout_usec)
{
        uint64_t deadline;
        Streams *sts;
        vbus_conn *c;

        if (!st)
                return -EINVAL;
        c = st->conn;
        sts = st->sts;
        deadline = vbus__deadline_after(vbus__client_now(), timeout_usec);
        for (;;) {
                uint64_t now;
                int r = vbus_stream_send(st, data, n);

                if (r != -EAGAIN)
                        return r;
                now = vbus__client_now();
                if (now >= deadline)
                        return -ETIMEDOUT;
                r = vbus_conn_wait(c, vbus__time_left(deadline, now, UINT64_MAX));
                if (r < 0 && r != -ETIMEDOUT && r != -EINTR) {
                        return r;
                }
                /* on_end may have run and freed the stream. */
                if (!stream_is_alive(sts, st)) {
                        return -EPIPE;
                }
        }
}

VBUS_EXPORT int vbus_stream_close_send(vbus_stream *st)
{
        if (!st || st->dead || st->req)
                return -EINVAL;
        if (st->closing || st->send_closed || st->ended)
                return -EPIPE;
        st->closing = true;
        (void)stream_push(st);
        stream_sweep(st);
        return 0;
}

VBUS_EXPORT int vbus_stream_finish(vbus_stream *st, int status, const char *message)
{
        int r = 0;

        if (!st || st->dead || !st->req || !st->taken)
                return -EINVAL;
        if (st->closing)
                return -EALREADY;
        if (st->ended || st->send_closed || !st->req->link_valid) {
                stream_release(st);
                return -ECANCELED;
        }
        if (status < VBUS_STATUS_OK || status >= VBUS_STATUS_N) {
                status = VBUS_STATUS_INTERNAL;
                message = "the server answered an invalid status";
                r = -EINVAL;
        }
        st->finish_status = status;
        st->finish_message = message && message[0] ? strdup(message) : NULL;
        st->closing = true;
        (void)stream_push(st);
        stream_sweep(st);
        return r;
}

VBUS_EXPORT int vbus_stream_cancel(vbus_stream *st)
{
        if (!st || st->dead)
                return -EINVAL;
        if (st->in_end_cb)
                return -EALREADY;
        /* Also after this side closed (a server-streaming caller that sent its request and
         * END): the other end must still be told, it may be streaming for ever. */
        if (!st->ended && st->vs)
                vbus__conn_release_stream(
                        st->conn, &st->vs, VBUS_FRAME_RESET, VBUS_STATUS_CANCELLED,
                        st->req ? "the server abandoned the call" : "cancelled by the caller");
        stream_release(st);
        return 0;
}

VBUS_EXPORT int vbus_stream_set_paused(vbus_stream *st, bool paused)
{
        if (!st || st->dead)
                return -EINVAL;
        st->paused = paused;
        return 0;
}

VBUS_EXPORT vbus_request *vbus_stream_get_request(vbus_stream *st)
{
        return st ? st->req : NULL;
}

VBUS_EXPORT void *vbus_stream_get_userdata(vbus_stream *st)
{
        return st ? st->userdata : NULL;
}

/* --- opening ------------------------------------------------------------------------------- */

VBUS_EXPORT int vbus_stream_open(vbus_conn *c, const char *method, const vbus_call_options *opts,
                                 const vbus_stream_handlers *handlers, void *userdata,
                                 vbus_stream **ret_stream)
{
        uint64_t timeout = opts ? opts->timeout_usec : 0;
        vbus_stream *st;
        int r;

        if (!c || !method || !handlers || !handlers->on_end || !ret_stream ||
            !vbus__name_is_method(method, strnlen(method, 256)))
                return -EINVAL;
        r = vbus__rpc_check_headers(opts);
        if (r < 0)
                return r;
        if (c->state == VBUS_CONN_DISCONNECTED)
                return -ENOTCONN;
        if (c->state != VBUS_CONN_READY)
                return -EAGAIN;
        st = stream_alloc(c);
        if (!st)
                return -ENOMEM;
        st->h = *handlers;
        st->userdata = userdata;
        if (timeout)
                st->deadline = vbus__rpc_deadline(timeout);
        r = vbus__rpc_open_call(c, method, opts, &stream_ops, st, &st->vs);
        if (r < 0) {
                stream_free(st);
                return r;
        }
        st->id = st->vs->id;
        *ret_stream = st;
        return 0;
}

VBUS_EXPORT int vbus_request_stream(vbus_request *req, const vbus_stream_handlers *handlers,
                                    void *userdata, vbus_stream **ret_stream)
{
        vbus_stream *st;

        if (!req || !handlers || !ret_stream || req->answered)
                return -EINVAL;
        st = req->stream;
        if (st && st->taken)
                return -EALREADY;
        if (req->cancelled || !req->link_valid) {
                if (st)
                        stream_release(st);
                else
                        vbus__request_free(req);
                return -ECANCELED;
        }
        if (!st) {
                /* Server-streaming: the request message was delivered as a plain request and the
                 * caller has closed its side. */
                st = stream_take_request(req);
                if (!st)
                        return -ENOMEM;
        }
        st->taken = true;
        req->dispatched = true;
        st->h = *handlers;
        st->userdata = userdata;
        *ret_stream = st;
        return 0;
}

/* --- receiving ----------------------------------------------------------------------------- */

static int stream_take_data(vbus_stream *st, const VbusFrame *f)
{
        size_t len = f->header.length;
        bool more = f->header.flags & VBUS_FLAG_MORE;

        if (st->n_cur + len > VBUS_MESSAGE_MAX)
                return -EMSGSIZE;
        if (!st->cur && !more)
                return vbus__msgqueue_push(&st->queue, f->payload,
                                           len); /* a message in one frame */
        if (st->n_cur + len > st->cap_cur || !st->cur) {
                size_t cap = st->cap_cur ? st->cap_cur : 16384;
                uint8_t *b;

                while (cap < st->n_cur + len)
                        cap *= 2;
                b = realloc(st->cur, cap);
                if (!b)
                        return -ENOMEM;
                st->cur = b;
                st->cap_cur = cap;
        }
        if (len > 0)
                memcpy(st->cur + st->n_cur, f->payload, len);
        st->n_cur += len;
        if (!more) {
                int r = vbus__msgqueue_push(&st->queue, st->cur, st->n_cur);

                free(st->cur);
                st->cur = NULL;
                st->n_cur = st->cap_cur = 0;
                return r;
        }
        return 0;
}

/* A message of the stream that cannot be taken: the stream fails with @r's reason. */
static void stream_refuse_message(vbus_stream *st, int r)
{
        int status = r == -EMSGSIZE ? VBUS_STATUS_INVALID_ARGUMENT : VBUS_STATUS_RESOURCE_EXHAUSTED;
        const char *why = r == -EMSGSIZE ? "a message of the stream is larger than VBUS_MESSAGE_MAX"
                                         : "out of memory for a message of the stream";

        vbus__conn_release_stream(st->conn, &st->vs, VBUS_FRAME_RESET, status, why);
        stream_set_outcome(st, status, why);
}

static int stream_on_data(void *obj, VbusStream *vs, const VbusFrame *f)
{
        vbus_stream *st = obj;
        int r;

        (void)vs;
        if (st->dead || st->ended)
                return 0;
        r = stream_take_data(st, f);
        if (r < 0)
                stream_refuse_message(st, r);
        return st->conn->link_error;
}

static int stream_on_end(void *obj, VbusStream *vs, const Vbus__V1__End *m)
{
        vbus_stream *st = obj;
        vbus_conn *c = st->conn;

        (void)vs; /* freed if our END below closes the stream */
        if (st->dead)
                return 0;
        if (st->req) {
                st->eof_due = true; /* the caller closed its side */
                return 0;
        }
        /* The server's END is the call's outcome. Close our side too if it is open: whatever we
         * still had to send is of no use now. */
        if (!st->send_closed)
                (void)vbus__conn_send_end(c, VBUS_FRAME_END, st->id, VBUS_STATUS_OK, NULL);
        st->send_closed = true;
        st->out_pending = false;
        stream_set_outcome(st, (int)m->status, m->message);
        return c->link_error;
}

/* A RESET or a REJECT: the outcome, never a success. */
static void stream_on_failure(vbus_stream *st, int status, const char *message)
{
        if (st->dead)
                return;
        if (status == VBUS_STATUS_OK)
                status = VBUS_STATUS_UNAVAILABLE; /* a RESET never means success */
        st->send_closed = true;
        st->out_pending = false;
        stream_set_outcome(st, status, message);
}

static int stream_on_reset(void *obj, VbusStream *vs, const Vbus__V1__End *m)
{
        (void)vs;
        stream_on_failure(obj, (int)m->status, m->message);
        return 0;
}

static int stream_on_reject(void *obj, VbusStream *vs, const Vbus__V1__Reject *m)
{
        (void)vs;
        stream_on_failure(obj, (int)m->status, m->message);
        return 0;
}

/* The CALL stream left the session. After END both ways the outcome came with the frames; after a
 * RESET it is recorded already; otherwise the link was lost. */
static void stream_closed(void *obj, VbusStream *vs)
{
        vbus_stream *st = obj;

        st->vs = NULL;
        if (st->dead || (vs->local_ended && vs->remote_ended))
                return;
        st->send_closed = true;
        st->out_pending = false;
        if (st->req)
                st->req->link_valid = false;
        if (st->req && !st->taken) {
                /* The handler has the request and has not taken it as a stream yet: it is a plain
                 * request again, whose answer will say -ECANCELED. */
                stream_detach_request(st);
                return;
        }
        stream_set_outcome(st, VBUS_STATUS_UNAVAILABLE, "the connection to the broker was lost");
}

/* ACCEPT: the window is known now; the next push sends what waits. CREDIT: the session has
 * counted it. */
static const VbusStreamOps stream_ops = {
        .reject = stream_on_reject,
        .data = stream_on_data,
        .end = stream_on_end,
        .reset = stream_on_reset,
        .closed = stream_closed,
};

/* Whether @st owes the peer a CREDIT now (see the file comment for the rule). */
static bool stream_credit_due(const vbus_stream *st)
{
        if (st->credit_owed == 0 || st->ended || st->paused || !vbus__conn_is_up(st->conn))
                return false;
        return st->credit_owed >= RPC_WINDOW / 4 || st->n_cur > 0;
}

/* Returns credit for what the application took. */
static void stream_return_credit(vbus_stream *st)
{
        Vbus__V1__Credit cr = VBUS__V1__CREDIT__INIT;

        if (!stream_credit_due(st))
                return;
        cr.increment = (uint32_t)st->credit_owed;
        st->credit_owed = 0;
        (void)vbus__conn_send_control(st->conn, VBUS_FRAME_CREDIT, st->id, &cr.base);
}

/* Runs the callbacks that are due for @st. Return: 1 if one ran. */
static int stream_deliver(vbus_stream *st)
{
        int progress = 0;

        if (st->req && !st->taken)
                return 0; /* messages wait for the application to take the call */
        while (!st->dead && !st->paused && !vbus__msgqueue_is_empty(&st->queue)) {
                size_t n;
                const uint8_t *data = vbus__msgqueue_peek(&st->queue, &n);

                /* No frame is read while callbacks run, so the queue does not move under
                 * @data; the record is dropped after the callback. */
                if (st->h.on_message)
                        st->h.on_message(st, data, n, st->userdata);
                vbus__msgqueue_pop(&st->queue);
                /* Its bytes and its charge (protocol.md 5.4): the window bounds the messages held
                 * as well as their bytes. */
                st->credit_owed += n + vbus__conn_msg_charge(st->conn);
                progress = 1;
        }
        if (st->dead)
                return progress;
        stream_return_credit(st);
        if (st->eof_due && !st->paused && vbus__msgqueue_is_empty(&st->queue)) {
                st->eof_due = false;
                if (st->h.on_message)
                        st->h.on_message(st, NULL, 0, st->userdata);
                progress = 1;
        }
        if (!st->dead && st->writable_due && !st->out_pending && !st->send_closed && !st->closing) {
                st->writable_due = false;
                st->h.on_writable(st, st->userdata);
                progress = 1;
        }
        if (!st->dead && st->ended && vbus__msgqueue_is_empty(&st->queue)) {
                st->in_end_cb = true;
                if (st->h.on_end)
                        st->h.on_end(st, st->status, st->message, st->userdata);
                st->in_end_cb = false;
                st->dead = true;
                progress = 1;
        }
        return progress;
}

/* --- the feature ------------------------------------------------------------------------------ */

static int streams_push(void *state)
{
        Streams *sts = state;
        int progress = 0;
        List *pos, *tmp;

        sts->busy++;
        for (pos = sts->streams.next; pos != &sts->streams; pos = pos->next) {
                vbus_stream *st = list_entry(pos, vbus_stream, link);

                /* Streams opened by a callback are appended and visited in this same pass. */
                progress |= stream_push(st);
                progress |= stream_deliver(st);
                progress |= stream_push(st);
        }
        sts->busy--;
        if (sts->busy == 0)
                list_for_each_safe(pos, tmp, &sts->streams)
                {
                        vbus_stream *st = list_entry(pos, vbus_stream, link);

                        if (st->dead)
                                stream_free(st);
                }
        return progress;
}

static bool streams_have_unsent(void *state)
{
        Streams *sts = state;

        for (List *pos = sts->streams.next; pos != &sts->streams; pos = pos->next) {
                vbus_stream *st = list_entry(pos, vbus_stream, link);

                if (!st->dead && !st->send_closed && (st->out_pending || st->closing))
                        return true;
        }
        return false;
}

static uint64_t streams_next_deadline(void *state)
{
        Streams *sts = state;
        uint64_t next = UINT64_MAX;

        for (List *pos = sts->streams.next; pos != &sts->streams; pos = pos->next) {
                vbus_stream *st = list_entry(pos, vbus_stream, link);

                if (st->dead || (st->req && !st->taken))
                        continue;
                if (!st->paused && (!vbus__msgqueue_is_empty(&st->queue) || st->eof_due))
                        return 0; /* a callback is due */
                if (st->ended && vbus__msgqueue_is_empty(&st->queue))
                        return 0; /* on_end is due (it waits only for the messages) */
                if (st->writable_due && !st->out_pending)
                        return 0;
                /* Credit held back while paused goes as soon as the application resumes: the
                 * peer may be waiting for nothing else. */
                if (stream_credit_due(st))
                        return 0;
                if (!st->ended && st->deadline < next)
                        next = st->deadline;
        }
        return next;
}

static void streams_expire(void *state, uint64_t now)
{
        Streams *sts = state;

        for (List *pos = sts->streams.next; pos != &sts->streams; pos = pos->next) {
                vbus_stream *st = list_entry(pos, vbus_stream, link);

                if (st->dead || st->ended || st->deadline > now)
                        continue;
                if (!st->send_closed)
                        vbus__conn_release_stream(sts->conn, &st->vs, VBUS_FRAME_RESET,
                                                  VBUS_STATUS_DEADLINE_EXCEEDED, NULL);
                st->send_closed = true;
                stream_set_outcome(st, VBUS_STATUS_DEADLINE_EXCEEDED,
                                   "deadline exceeded (no answer from the broker)");
        }
}

static void streams_free_all(void *state)
{
        Streams *sts = state;
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &sts->streams) stream_free(list_entry(pos, vbus_stream, link));
        free(sts);
}

static const VbusFeatureOps streams_ops = {
        .push = streams_push,
        .has_unsent = streams_have_unsent,
        .next_deadline = streams_next_deadline,
        .expire = streams_expire,
        .free_all = streams_free_all,
};
