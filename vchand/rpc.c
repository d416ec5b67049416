/* SPDX-License-Identifier: MIT */
/*
 * rpc: services, calls and the relay between a caller's stream and a server's (see rpc.h).
 *
 * A Call joins two streams: the caller's (call->client) and the one the broker opened toward the
 * chosen server (call->server). Each direction has a Pipe: the DATA received from one side and
 * not yet written to the other, then the END to forward. The broker grants each side a window of
 * LIMIT_CALL_WINDOW bytes and returns credit only as it writes the bytes on, so a call buffers at
 * most that much per direction, and a slow side holds back only its own call.
 *
 * Frames are relayed once per batch, not per frame: rpc_data() and rpc_end() only queue, and
 * rpc_pump() (run by peer.c after each batch read from a peer, and by broker.c for every peer
 * written to) moves what is queued. So when a side sends its last DATA and its END in one batch,
 * the END is known before the credit for that DATA would go back, and none is sent: a side that
 * has ended its direction never gets CREDIT (nor the wake-up it would cost).
 *
 * The caller's ACCEPT is deferred in the same spirit. A unary caller sends OPEN, its request and
 * END in one batch and then only waits for the outcome: an ACCEPT sent at once would wake it for
 * nothing. So rpc_open_call() only notes it (accept_pending), and it is sent just before the first
 * frame the broker writes to the caller's stream (the reply, END or RESET), or at the end of the
 * batch if the caller has not sent END by then (a larger or streaming request needs the window
 * and credit that come with it). Every call ends with an END or RESET toward a caller that is
 * still there, so a deferred ACCEPT is always sent, and always before anything else on its
 * stream: the caller sees the same frames in the same order as before, the ACCEPT only later.
 */
#include "rpc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "introspect.h"
#include "log.h"
#include "peer.h"
#include "pubsub.h"
#include "vchand-limits.h"

struct Service {
        List link; /* in broker->services */
        char *name;
        List servers; /* SERVE Streams */
        uint32_t n_calls;
};

typedef struct Chunk {
        List link;
        size_t len, off;
        bool more;
        uint8_t data[];
} Chunk;

typedef struct Pipe {
        List chunks;
        bool end_pending;
        int end_status;
        char *end_message;
        uint64_t credit_owed; /* bytes written on, to return to the sending side */
        bool src_ended;       /* the sending side sent END: credit is of no use to it */
} Pipe;

struct Call {
        List link; /* in broker->calls */
        Broker *broker;
        Stream *client; /* reference; NULL once that stream closed */
        Stream *server; /* reference; NULL once that stream closed */
        Stream *serve;  /* reference: the SERVE stream of the chosen server */
        Service *service;
        Peer *caller; /* for the per-caller count; NULL once it went away */
        uint64_t deadline_us;
        Pipe to_server, to_client;
        bool server_ended;       /* the server sent END: its outcome is in to_client */
        bool accept_pending;     /* the caller's ACCEPT is deferred (see the top of the file) */
        Identity server_ident;   /* Accept.peer of that ACCEPT: the chosen server */
        int busy;                /* nesting of rpc_stream_closing(): free only at the outermost */
        int server_reset_status; /* status for RESET toward the server if the caller goes */
        bool caller_reset;       /* the caller sent RESET (else it went away, if it goes) */
};

/* --- services ---------------------------------------------------------------------------- */

static Service *service_find(Broker *b, const char *name, size_t len)
{
        for (List *pos = b->services.next; pos != &b->services; pos = pos->next) {
                Service *svc = list_entry(pos, Service, link);

                if (strlen(svc->name) == len && memcmp(svc->name, name, len) == 0)
                        return svc;
        }
        return NULL;
}

static void service_maybe_free(Service *svc)
{
        if (!list_is_empty(&svc->servers) || svc->n_calls > 0)
                return;
        list_unlink(&svc->link);
        free(svc->name);
        free(svc);
}

void rpc_open_serve(Peer *p, VbusStream *vs, const Vbus__V1__Open *m)
{
        Vbus__V1__Accept a = VBUS__V1__ACCEPT__INIT;
        size_t len = strlen(m->name);
        Service *svc = service_find(p->broker, m->name, len);
        Stream *s;

        if (introspect_open_serve(p, vs, m))
                return;
        if (!svc) {
                svc = calloc(1, sizeof(*svc));
                if (!svc || !(svc->name = strdup(m->name))) {
                        free(svc);
                        peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_INTERNAL, "out of memory");
                        return;
                }
                list_init(&svc->servers);
                list_add_tail(&p->broker->services, &svc->link);
        }
        s = stream_new(p, vs, VBUS__V1__STREAM_KIND__STREAM_KIND_SERVE);
        if (!s) {
                service_maybe_free(svc);
                peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_INTERNAL, "out of memory");
                return;
        }
        s->service = svc;
        list_add_tail(&svc->servers, &s->serve_link);
        log_debug("peer %s serves %s", p->label, svc->name);
        (void)peer_send_control(p, VBUS_FRAME_ACCEPT, 0, vs->id, &a.base);
}

/* The server with the fewest calls in flight; ties go round-robin (the chosen one moves last). */
static Stream *service_pick(Service *svc)
{
        Stream *best = NULL;

        for (List *pos = svc->servers.next; pos != &svc->servers; pos = pos->next) {
                Stream *s = list_entry(pos, Stream, serve_link);

                if (!s->peer || s->peer->dead || s->closed)
                        continue;
                if (!best || s->n_outstanding < best->n_outstanding)
                        best = s;
        }
        if (best) {
                list_unlink(&best->serve_link);
                list_add_tail(&svc->servers, &best->serve_link);
        }
        return best;
}

/* --- pipes ------------------------------------------------------------------------------- */

static void pipe_init(Pipe *pp)
{
        *pp = (Pipe){0};
        list_init(&pp->chunks);
}

static void pipe_clear(Pipe *pp)
{
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &pp->chunks)
        {
                list_unlink(pos);
                free(list_entry(pos, Chunk, link));
        }
        free(pp->end_message);
        pp->end_message = NULL;
        pp->end_pending = false;
}

static void pipe_set_end(Pipe *pp, int status, const char *message)
{
        free(pp->end_message);
        pp->end_message = message && message[0] ? strdup(message) : NULL;
        pp->end_status = status;
        pp->end_pending = true;
        pp->src_ended = true;
}

static bool stream_usable(const Stream *s)
{
        return s && s->peer && !s->peer->dead && !s->closed;
}

static void call_send_accept(Call *c);

/* Writes what @pp holds to @dest, then its END, and returns credit to @src. */
static void pipe_pump(Call *call, Pipe *pp, Stream *dest, Stream *src)
{
        Peer *q;

        if (!stream_usable(dest))
                return;
        q = dest->peer;
        if (dest == call->client && (!list_is_empty(&pp->chunks) || pp->end_pending))
                call_send_accept(call);
        while (!list_is_empty(&pp->chunks)) {
                Chunk *c = list_entry(pp->chunks.next, Chunk, link);
                ssize_t room = peer_data_room(q, dest->id);
                size_t n = c->len - c->off;
                struct iovec piece;
                uint8_t flags = 0;
                int r;

                if (room < 0)
                        return;
                if (n > (size_t)room)
                        n = (size_t)room;
                if (n == 0 && c->len > c->off)
                        break; /* no window: wait for CREDIT */
                if (c->off + n < c->len || c->more)
                        flags = VBUS_FLAG_MORE;
                piece.iov_base = c->data + c->off;
                piece.iov_len = n;
                r = peer_send_data(q, dest->id, flags, &piece, 1);
                if (r < 0)
                        break;
                c->off += n;
                pp->credit_owed += n;
                if (c->off >= c->len) {
                        list_unlink(&c->link);
                        free(c);
                }
        }
        if (list_is_empty(&pp->chunks) && pp->end_pending && stream_usable(dest)) {
                Vbus__V1__End e = VBUS__V1__END__INIT;

                e.status = pp->end_status;
                e.message = pp->end_message;
                pp->end_pending = false;
                (void)peer_send_control(q, VBUS_FRAME_END, 0, dest->id, &e.base);
        }
        /* A side that has ended its direction will send nothing more: no CREDIT (and no
         * wakeup) for it, which saves one event per call for a unary call's server. */
        if (pp->credit_owed > 0 && !pp->src_ended && stream_usable(src)) {
                Vbus__V1__Credit cr = VBUS__V1__CREDIT__INIT;

                if (src == call->client)
                        call_send_accept(call);
                cr.increment = (uint32_t)pp->credit_owed;
                pp->credit_owed = 0;
                (void)peer_send_control(src->peer, VBUS_FRAME_CREDIT, 0, src->id, &cr.base);
        }
}

/* Sends the caller's deferred ACCEPT, if any (before anything else on its stream). */
static void call_send_accept(Call *c)
{
        Vbus__V1__Accept a = VBUS__V1__ACCEPT__INIT;
        Vbus__V1__Identity sid = VBUS__V1__IDENTITY__INIT;

        if (!c->accept_pending)
                return;
        c->accept_pending = false;
        if (!stream_usable(c->client))
                return;
        sid.domid = c->server_ident.domid;
        sid.domain_name = c->server_ident.domain_name;
        sid.local = c->server_ident.local;
        sid.uid = c->server_ident.uid;
        sid.pid = c->server_ident.pid;
        a.initial_credit = LIMIT_CALL_WINDOW;
        a.peer = &sid;
        (void)peer_send_control(c->client->peer, VBUS_FRAME_ACCEPT, 0, c->client->id, &a.base);
}

static void call_maybe_free(Call *c);

/*
 * After a batch: relays both ways; a caller still sending gets its ACCEPT now. An END written
 * here can close a stream and with it the call's last one: the call is held (busy) until both
 * pipes are done, and the second pipe reads the call's stream pointers afresh.
 */
static void call_pump(Call *c)
{
        c->busy++;
        if (c->accept_pending && !c->to_server.src_ended)
                call_send_accept(c);
        pipe_pump(c, &c->to_server, c->server, c->client);
        pipe_pump(c, &c->to_client, c->client, c->server);
        c->busy--;
        call_maybe_free(c);
}

/* --- calls -------------------------------------------------------------------------------- */

/*
 * Something came from @from's side of @c: the other side's peer is marked for the broker's
 * end-of-iteration flush, which runs rpc_pump() on it. peer.c also pumps @from's own peer after
 * its batch, but not when that batch ended with the link (a server that replies and exits): the
 * mark makes sure that what was queued is relayed all the same.
 */
static void call_mark(Call *c, const Stream *from)
{
        Stream *dest = from == c->client ? c->server : c->client;

        if (stream_usable(dest))
                broker_mark_dirty(c->broker, dest->peer);
}

static void call_maybe_free(Call *c)
{
        if (c->client || c->server || c->busy > 0)
                return;
        list_unlink(&c->link);
        pipe_clear(&c->to_server);
        pipe_clear(&c->to_client);
        if (c->serve) {
                c->serve->n_outstanding--;
                stream_unref(c->serve);
        }
        if (c->service) {
                c->service->n_calls--;
                service_maybe_free(c->service);
        }
        free(c);
}

static void reset_stream(Stream *s, int status, const char *message)
{
        if (!stream_usable(s))
                return;
        /* A caller sees its ACCEPT before the RESET, as when it was not deferred. */
        if (s->call && s == s->call->client)
                call_send_accept(s->call);
        peer_reset_stream(s->peer, s->id, status, message);
}

/*
 * Opens the broker's stream toward the server for @c.
 * Return: 0; -EMSGSIZE (the OPEN, with the caller's identity stamped on, is larger than a control
 * frame: the caller's headers are too large); -E2BIG (the server has no stream left); -ENOMEM;
 * -EPIPE (the server's link is gone or was dropped).
 */
static int call_open_server(Call *c, Stream *serve, const Vbus__V1__Open *m, const Peer *caller)
{
        Peer *q = serve->peer;
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;
        Vbus__V1__Identity id = VBUS__V1__IDENTITY__INIT;
        uint64_t now = broker_now_us();
        uint32_t sid;
        Stream *s;
        int r;

        id.domid = caller->ident.domid;
        id.domain_name = (char *)caller->ident.domain_name;
        id.local = caller->ident.local;
        id.uid = caller->ident.uid;
        id.pid = caller->ident.pid;
        o.name = m->name;
        o.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_CALL;
        o.initial_credit = LIMIT_CALL_WINDOW;
        o.headers = m->headers;
        o.n_headers = m->n_headers;
        o.caller = &id;
        if (c->deadline_us != UINT64_MAX)
                o.timeout_us = c->deadline_us > now ? c->deadline_us - now : 1;
        /* The caller's OPEN fitted a control frame; with the identity added it may not: that
         * is the caller's to hear, not a fault of the server's link. */
        if (protobuf_c_message_get_packed_size(&o.base) > VBUS_CONTROL_MAX)
                return -EMSGSIZE;
        s = stream_new(q, NULL, VBUS__V1__STREAM_KIND__STREAM_KIND_CALL);
        if (!s)
                return -ENOMEM;
        r = vbus__endpoint_open(&q->ep, &o, &peer_stream_ops, s, &sid);
        if (r < 0) {
                pubsub_close(q, s);
                if (r == -E2BIG || r == -EPIPE)
                        return r;
                broker_kill_peer(q->broker, q, "does not read its link");
                return -EPIPE;
        }
        s->id = sid;
        s->call = c;
        c->server = stream_ref(s);
        return 0;
}

void rpc_open_call(Peer *p, VbusStream *vs, const Vbus__V1__Open *m)
{
        Broker *b = p->broker;
        const char *slash = strchr(m->name, '/');
        Service *svc;
        Stream *serve, *s;
        Call *c;
        char msg[320];
        int r;

        /* Every call opened counts, and every one whose outcome is not OK counts as failed. */
        b->stats.n_calls++;
        if (p->n_calls >= b->config.max_calls) {
                b->stats.n_calls_failed++;
                peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                            "too many calls in flight on this link (max_calls)");
                return;
        }
        if (introspect_open_call(p, vs, m))
                return;
        svc = slash ? service_find(b, m->name, (size_t)(slash - m->name)) : NULL;
        serve = svc ? service_pick(svc) : NULL;
        if (!serve) {
                snprintf(msg, sizeof(msg), "no responders: nobody serves %.*s",
                         slash ? (int)(slash - m->name) : 0, m->name);
                b->stats.n_calls_failed++;
                peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_NOT_FOUND, msg);
                return;
        }
        if (svc->n_calls >= b->config.max_service_calls) {
                b->stats.n_calls_failed++;
                peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                            "too many calls in flight for this service (max_service_calls)");
                return;
        }
        c = calloc(1, sizeof(*c));
        s = c ? stream_new(p, vs, VBUS__V1__STREAM_KIND__STREAM_KIND_CALL) : NULL;
        if (!s) {
                free(c);
                b->stats.n_calls_failed++;
                peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_INTERNAL, "out of memory");
                return;
        }
        c->broker = b;
        c->caller = p;
        c->service = svc;
        c->serve = stream_ref(serve);
        c->client = stream_ref(s);
        c->deadline_us = m->timeout_us ? broker_now_us() + m->timeout_us : UINT64_MAX;
        c->server_reset_status = VBUS__V1__STATUS__STATUS_CANCELLED;
        pipe_init(&c->to_server);
        pipe_init(&c->to_client);
        s->call = c;
        svc->n_calls++;
        serve->n_outstanding++;
        serve->n_calls_total++;
        p->n_calls++;
        list_add_tail(&b->calls, &c->link);

        r = call_open_server(c, serve, m, p);
        if (r < 0) {
                b->stats.n_calls_failed++;
                if (r == -EMSGSIZE)
                        peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                    "the call's headers are too large to reach the server");
                else
                        peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_UNAVAILABLE,
                                    r == -E2BIG ? "the server has too many streams open"
                                                : "the server could not take the call");
                return;
        }
        /* Sent later (see the top of the file): at the latest by rpc_pump() after this batch. */
        c->server_ident = serve->peer->ident;
        c->accept_pending = true;
}

void rpc_accept(Peer *p, Stream *s, const Vbus__V1__Accept *m)
{
        (void)p;
        (void)m;
        /* The server's window is known now: what waits for it goes after the batch. */
        if (s->call)
                call_mark(s->call, s);
}

void rpc_reject(Peer *p, Stream *s, int status, const char *message)
{
        Call *c = s->call;

        (void)p;
        if (!c || s != c->server)
                return;
        c->server_ended = true;
        p->broker->stats.n_calls_failed++;
        reset_stream(c->client, status,
                     message && message[0] ? message : "the server refused the call");
}

void rpc_data(Peer *p, Stream *s, const VbusFrame *f)
{
        Call *c = s->call;
        Pipe *pp;
        Chunk *ch;

        if (!c)
                return;
        pp = s == c->client ? &c->to_server : &c->to_client;
        ch = malloc(sizeof(*ch) + f->header.length);
        if (!ch) {
                peer_reset_stream(p, s->id, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                  "out of memory");
                return;
        }
        ch->len = f->header.length;
        ch->off = 0;
        ch->more = f->header.flags & VBUS_FLAG_MORE;
        memcpy(ch->data, f->payload, f->header.length);
        list_add_tail(&pp->chunks, &ch->link);
        call_mark(c, s);
}

void rpc_end(Peer *p, Stream *s, int status, const char *message)
{
        Call *c = s->call;

        if (!c)
                return;
        if (s == c->client) {
                pipe_set_end(&c->to_server, VBUS__V1__STATUS__STATUS_OK, NULL);
        } else {
                c->server_ended = true;
                if (status != VBUS__V1__STATUS__STATUS_OK)
                        p->broker->stats.n_calls_failed++;
                pipe_set_end(&c->to_client, status, message);
        }
        call_mark(c, s);
}

void rpc_reset(Peer *p, Stream *s, int status, const char *message)
{
        Call *c = s->call;

        (void)p;
        if (!c)
                return;
        if (s == c->client) {
                /* Cancellation: the server is told, with the caller's status. */
                c->server_reset_status = status;
                c->caller_reset = true;
                if (!c->server_ended)
                        p->broker->stats.n_calls_failed++;
        } else {
                c->server_ended = true;
                p->broker->stats.n_calls_failed++;
                pipe_clear(&c->to_client);
                reset_stream(c->client, status, message);
        }
}

void rpc_stream_closing(Peer *p, Stream *s)
{
        Call *c = s->call;

        if (s->kind == VBUS__V1__STREAM_KIND__STREAM_KIND_SERVE) {
                Service *svc = s->service;

                list_unlink(&s->serve_link);
                s->service = NULL;
                if (svc)
                        service_maybe_free(svc);
                return;
        }
        if (s->intro)
                introspect_close(p, s);
        if (!c)
                return;
        s->call = NULL;
        /* Closing one side may close the other (a RESET is sent to it) and come back here:
         * the call is freed only once both have gone, by the outermost call. */
        c->busy++;
        if (s == c->client) {
                c->client = NULL;
                if (c->caller) {
                        c->caller->n_calls--;
                        c->caller = NULL;
                }
                if (c->server && !c->server->closed)
                        reset_stream(c->server, c->server_reset_status,
                                     c->server_reset_status ==
                                                     VBUS__V1__STATUS__STATUS_DEADLINE_EXCEEDED
                                             ? "deadline exceeded"
                                     : c->caller_reset ? "the caller cancelled the call"
                                                       : "the caller went away");
                stream_unref(s);
        } else {
                c->server = NULL;
                /* A server that goes without an outcome fails the call at once; it is never
                 * retried elsewhere, since it may have had effects. */
                if (!c->server_ended && c->client && !c->client->closed) {
                        pipe_clear(&c->to_client);
                        p->broker->stats.n_calls_failed++;
                        reset_stream(c->client, VBUS__V1__STATUS__STATUS_UNAVAILABLE,
                                     "the server went away during the call");
                }
                stream_unref(s);
        }
        c->busy--;
        call_maybe_free(c);
}

/*
 * Pumps every call with a stream on @p. Pumping one call can close streams of @p other than the
 * one in hand (a caller calling a server on its own link), so the calls are collected first, each
 * held busy, and pumped from that list.
 */
void rpc_pump(Peer *p)
{
        Call *few[32], **calls = few;
        size_t n = 0, cap = sizeof(few) / sizeof(few[0]);
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &p->streams)
        {
                Stream *s = list_entry(pos, Stream, link);

                if (s->kind == VBUS__V1__STREAM_KIND__STREAM_KIND_CALL && s->call) {
                        if (n == cap) {
                                Call **more = malloc(2 * cap * sizeof(*more));

                                if (!more)
                                        break; /* the rest waits for the next batch */
                                memcpy(more, calls, n * sizeof(*more));
                                if (calls != few)
                                        free(calls);
                                calls = more;
                                cap *= 2;
                        }
                        s->call->busy++;
                        calls[n++] = s->call;
                } else if (s->intro) {
                        introspect_pump(s);
                }
        }
        for (size_t i = 0; i < n; i++) {
                call_pump(calls[i]);
                calls[i]->busy--;
                call_maybe_free(calls[i]);
        }
        if (calls != few)
                free(calls);
}

uint64_t rpc_expire(Broker *b, uint64_t now)
{
        uint64_t next = introspect_expire(b, now);
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &b->calls)
        {
                Call *c = list_entry(pos, Call, link);

                if (c->deadline_us > now) {
                        if (c->deadline_us < next)
                                next = c->deadline_us;
                        continue;
                }
                if (!c->client)
                        continue;
                c->deadline_us = UINT64_MAX;
                c->server_reset_status = VBUS__V1__STATUS__STATUS_DEADLINE_EXCEEDED;
                b->stats.n_calls_failed++;
                /* Resetting the caller's stream closes it, which resets the server's too. */
                reset_stream(c->client, VBUS__V1__STATUS__STATUS_DEADLINE_EXCEEDED,
                             "deadline exceeded");
        }
        return next;
}

int rpc_foreach_server(Broker *b, RpcServerFn fn, void *userdata)
{
        for (List *pos = b->services.next; pos != &b->services; pos = pos->next) {
                Service *svc = list_entry(pos, Service, link);

                for (List *q = svc->servers.next; q != &svc->servers; q = q->next) {
                        Stream *s = list_entry(q, Stream, serve_link);
                        int r;

                        if (!stream_usable(s))
                                continue;
                        r = fn(svc->name, svc->n_calls, s, userdata);
                        if (r != 0)
                                return r;
                }
        }
        return 0;
}
