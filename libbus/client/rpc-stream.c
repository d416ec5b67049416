/* SPDX-License-Identifier: MIT */
/*
 * rpc-stream: streaming calls (the vbus_stream part of <vbus/vbus.h>), at the caller and at the
 * server.
 *
 * A stream is one CALL stream carrying any number of messages each way (docs/protocol.md 6.1).
 * Frames are only recorded while the link is read (vbus__stream_dispatch()); the application's
 * callbacks run afterwards, from vbus__stream_push_all(), so a callback may do anything to any
 * stream: a stream released meanwhile is only marked dead and freed once no callback runs.
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
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "msgqueue.h"
#include "name.h"
#include "rpc.h"

struct vbus_stream {
        List link; /* in conn->streams */
        vbus_conn *conn;
        uint32_t id;
        vbus_request *req; /* server end: the call, owned; NULL at the caller */
        bool taken;        /* server end: the application called vbus_request_stream() */
        vbus_stream_handlers h;
        void *userdata;
        uint64_t deadline; /* caller: its deadline plus the grace; UINT64_MAX for none */

        /* Sending: one message at most waits for room, then our END. */
        uint8_t *out;
        size_t n_out, off;
        bool out_pending;
        bool out_empty_sent;
        bool want_writable; /* a send said -EAGAIN */
        bool writable_due;  /* ... and there is room now: on_writable is due */
        bool closing;       /* END after the pending message */
        int finish_status;  /* server: the status of that END */
        char *finish_message;
        bool send_closed; /* our END (or a RESET either way) went: nothing more to send */

        /* Receiving. */
        uint8_t *cur; /* a message being assembled from DATA frames (NULL: none) */
        size_t n_cur, cap_cur;
        VbusMsgQueue queue;
        uint64_t credit_owed;
        bool paused;
        bool eof_due; /* server: the caller closed its side; on_message(NULL) after the queue */

        /* The outcome, delivered by on_end after the queue. */
        bool ended;
        int status;
        char *message;
        bool in_end_cb;
        bool dead; /* released: freed when no callback runs */
};

static vbus_stream *stream_alloc(vbus_conn *c)
{
        vbus_stream *st = calloc(1, sizeof(*st));

        if (!st)
                return NULL;
        st->conn = c;
        st->deadline = UINT64_MAX;
        list_add_tail(&c->streams, &st->link);
        return st;
}

static void stream_free(vbus_stream *st)
{
        list_unlink(&st->link);
        vbus__msgqueue_clear(&st->queue);
        free(st->cur);
        free(st->out);
        free(st->finish_message);
        free(st->message);
        if (st->req) {
                st->req->stream = NULL;
                vbus__rpc_request_free(st->req);
        }
        free(st);
}

/* The application is done with @st: free it now, or when the running callback returns. */
static void stream_release(vbus_stream *st)
{
        st->dead = true;
        if (st->conn->stream_busy == 0)
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

vbus_stream *vbus__stream_find(vbus_conn *c, uint32_t id)
{
        for (List *pos = c->streams.next; pos != &c->streams; pos = pos->next) {
                vbus_stream *st = list_entry(pos, vbus_stream, link);

                if (st->id == id && !st->dead)
                        return st;
        }
        return NULL;
}

vbus_stream *vbus__stream_new_for_request(vbus_request *req)
{
        vbus_stream *st = stream_alloc(req->conn);

        if (!st)
                return NULL;
        st->id = req->id;
        st->req = req;
        req->stream = st;
        list_unlink(&req->link);
        return st;
}

void vbus__stream_detach_request(vbus_stream *st)
{
        vbus_request *req = st->req;

        st->req = NULL;
        req->stream = NULL;
        list_add_tail(&req->conn->requests, &req->link);
        stream_release(st);
}

bool vbus__stream_is_taken(const vbus_stream *st)
{
        return st->taken;
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

        if (st->dead || st->send_closed || !c->have_link)
                return 0;
        if (st->out_pending) {
                r = vbus__rpc_send_message(c, st->id, st->out, st->n_out, &st->off,
                                           &st->out_empty_sent);
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
                Vbus__V1__End e = VBUS__V1__END__INIT;

                e.status = st->req ? st->finish_status : VBUS__V1__STATUS__STATUS_OK;
                e.message = st->finish_message;
                if (vbus__conn_send_control(c, VBUS_FRAME_END, st->id, &e.base) < 0)
                        return 1;
                st->send_closed = true;
                if (st->req) /* the server's END ends the call at this end */
                        stream_release(st);
        }
        return 1;
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
        if (!c->have_link) {
                return -EPIPE; /* the stream's outcome (UNAVAILABLE) is on its way */
        }
        /* Straight from the caller's buffer as far as the window allows; keep the rest. */
        r = vbus__rpc_send_message(c, st->id, data, n, &off, &empty_sent);
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
                vbus__conn_end_stream(c, st->id, VBUS_FRAME_RESET, VBUS_STATUS_INTERNAL,
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
        vbus_conn *c;
        uint32_t id;

        if (!st)
                return -EINVAL;
        c = st->conn;
        id = st->id;
        deadline = timeout_usec == UINT64_MAX ? UINT64_MAX : vbus__client_now() + timeout_usec;
        for (;;) {
                uint64_t now;
                int r = vbus_stream_send(st, data, n);

                if (r != -EAGAIN)
                        return r;
                now = vbus__client_now();
                if (now >= deadline)
                        return -ETIMEDOUT;
                r = vbus_conn_wait(c, deadline == UINT64_MAX ? UINT64_MAX : deadline - now);
                if (r < 0 && r != -ETIMEDOUT && r != -EINTR) {
                        return r;
                }
                /* on_end may have run and freed the stream. */
                if (vbus__stream_find(c, id) != st) {
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
        return r;
}

VBUS_EXPORT int vbus_stream_cancel(vbus_stream *st)
{
        if (!st || st->dead)
                return -EINVAL;
        if (st->in_end_cb)
                return -EALREADY;
        if (!st->ended && !st->send_closed && st->conn->have_link)
                vbus__conn_end_stream(st->conn, st->id, VBUS_FRAME_RESET, VBUS_STATUS_CANCELLED,
                                      st->req ? "the server abandoned the call"
                                              : "cancelled by the caller");
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
        uint32_t id;
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
                st->deadline = vbus__client_now() + timeout + RPC_DEADLINE_GRACE_US;
        r = vbus__rpc_open_call(c, method, opts, &id);
        if (r < 0) {
                stream_free(st);
                return r;
        }
        st->id = id;
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
                        vbus__rpc_request_free(req);
                return -ECANCELED;
        }
        if (!st) {
                /* Server-streaming: the request message was delivered as a plain request and the
                 * caller has closed its side. */
                st = vbus__stream_new_for_request(req);
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

int vbus__stream_dispatch(vbus_stream *st, const VbusFrame *f, const VbusControl *ctl)
{
        vbus_conn *c = st->conn;

        switch (f->header.type) {
        case VBUS_FRAME_DATA: {
                int r;

                if (st->ended)
                        return 1;
                r = stream_take_data(st, f);
                if (r < 0) {
                        const char *why = r == -EMSGSIZE
                                                  ? "a message of the stream is larger than "
                                                    "VBUS_MESSAGE_MAX"
                                                  : "out of memory for a message of the stream";

                        vbus__conn_end_stream(c, st->id, VBUS_FRAME_RESET,
                                              r == -EMSGSIZE ? VBUS_STATUS_INVALID_ARGUMENT
                                                             : VBUS_STATUS_RESOURCE_EXHAUSTED,
                                              why);
                        stream_set_outcome(st,
                                           r == -EMSGSIZE ? VBUS_STATUS_INVALID_ARGUMENT
                                                          : VBUS_STATUS_RESOURCE_EXHAUSTED,
                                           why);
                }
                return 1;
        }
        case VBUS_FRAME_END: {
                const Vbus__V1__End *m = (const Vbus__V1__End *)ctl->msg;

                if (st->req) {
                        st->eof_due = true; /* the caller closed its side */
                        return 1;
                }
                /* The server's END is the call's outcome. Close our side too if it is open:
                 * whatever we still had to send is of no use now. */
                if (!st->send_closed && c->have_link) {
                        Vbus__V1__End e = VBUS__V1__END__INIT;

                        e.status = VBUS__V1__STATUS__STATUS_OK;
                        (void)vbus__conn_send_control(c, VBUS_FRAME_END, st->id, &e.base);
                }
                st->send_closed = true;
                st->out_pending = false;
                stream_set_outcome(st, (int)m->status, m->message);
                return 1;
        }
        case VBUS_FRAME_RESET:
        case VBUS_FRAME_REJECT: {
                int status;
                const char *message;

                if (f->header.type == VBUS_FRAME_RESET) {
                        const Vbus__V1__End *m = (const Vbus__V1__End *)ctl->msg;

                        status = (int)m->status;
                        message = m->message;
                } else {
                        const Vbus__V1__Reject *m = (const Vbus__V1__Reject *)ctl->msg;

                        status = (int)m->status;
                        message = m->message;
                }
                if (status == VBUS_STATUS_OK)
                        status = VBUS_STATUS_UNAVAILABLE; /* a RESET never means success */
                st->send_closed = true;
                st->out_pending = false;
                stream_set_outcome(st, status, message);
                return 1;
        }
        default:
                /* ACCEPT: the window is known now; the next push sends what waits. CREDIT: the
                 * session has counted it. */
                return 1;
        }
}

/* Returns credit for what the application took (see the file comment for the rule). */
static void stream_return_credit(vbus_stream *st)
{
        Vbus__V1__Credit cr = VBUS__V1__CREDIT__INIT;

        if (st->credit_owed == 0 || st->ended || !st->conn->have_link)
                return;
        if (st->credit_owed < RPC_WINDOW / 4 && st->n_cur == 0)
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
                st->credit_owed += n;
                progress = 1;
        }
        if (st->dead)
                return progress;
        if (!st->paused)
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

int vbus__stream_push_all(vbus_conn *c)
{
        int progress = 0;
        List *pos, *tmp;

        c->stream_busy++;
        for (pos = c->streams.next; pos != &c->streams; pos = pos->next) {
                vbus_stream *st = list_entry(pos, vbus_stream, link);

                /* Streams opened by a callback are appended and visited in this same pass. */
                progress |= stream_push(st);
                progress |= stream_deliver(st);
                progress |= stream_push(st);
        }
        c->stream_busy--;
        if (c->stream_busy == 0)
                list_for_each_safe(pos, tmp, &c->streams)
                {
                        vbus_stream *st = list_entry(pos, vbus_stream, link);

                        if (st->dead)
                                stream_free(st);
                }
        return progress;
}

bool vbus__stream_has_unsent(vbus_conn *c)
{
        for (List *pos = c->streams.next; pos != &c->streams; pos = pos->next) {
                vbus_stream *st = list_entry(pos, vbus_stream, link);

                if (!st->dead && !st->send_closed && (st->out_pending || st->closing))
                        return true;
        }
        return false;
}

uint64_t vbus__stream_next_deadline(vbus_conn *c)
{
        uint64_t next = UINT64_MAX;

        for (List *pos = c->streams.next; pos != &c->streams; pos = pos->next) {
                vbus_stream *st = list_entry(pos, vbus_stream, link);

                if (st->dead || (st->req && !st->taken))
                        continue;
                if (!st->paused && (!vbus__msgqueue_is_empty(&st->queue) || st->eof_due))
                        return 0; /* a callback is due */
                if (st->ended && vbus__msgqueue_is_empty(&st->queue))
                        return 0; /* on_end is due (it waits only for the messages) */
                if (st->writable_due && !st->out_pending)
                        return 0;
                if (!st->ended && st->deadline < next)
                        next = st->deadline;
        }
        return next;
}

void vbus__stream_expire(vbus_conn *c, uint64_t now)
{
        for (List *pos = c->streams.next; pos != &c->streams; pos = pos->next) {
                vbus_stream *st = list_entry(pos, vbus_stream, link);

                if (st->dead || st->ended || st->deadline > now)
                        continue;
                if (c->have_link && !st->send_closed)
                        vbus__conn_end_stream(c, st->id, VBUS_FRAME_RESET,
                                              VBUS_STATUS_DEADLINE_EXCEEDED, NULL);
                st->send_closed = true;
                stream_set_outcome(st, VBUS_STATUS_DEADLINE_EXCEEDED,
                                   "deadline exceeded (no answer from the broker)");
        }
}

void vbus__stream_link_dropped(vbus_conn *c)
{
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &c->streams)
        {
                vbus_stream *st = list_entry(pos, vbus_stream, link);

                st->send_closed = true;
                st->out_pending = false;
                if (st->req)
                        st->req->link_valid = false;
                if (st->req && !st->taken) {
                        /* The handler has the request and has not taken it as a stream yet: it
                         * is a plain request again, whose answer will say -ECANCELED. */
                        vbus__stream_detach_request(st);
                        continue;
                }
                stream_set_outcome(st, VBUS_STATUS_UNAVAILABLE,
                                   "the connection to the broker was lost");
        }
}

void vbus__stream_free_all(vbus_conn *c)
{
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &c->streams) stream_free(list_entry(pos, vbus_stream, link));
}
