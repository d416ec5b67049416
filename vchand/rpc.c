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
 * Frames are relayed once per batch, not per frame: side_data() and side_end() only queue, and
 * rpc_pump() (run by broker.c after each batch read from a peer, and for every peer written to)
 * moves what is queued. So when a side sends its last DATA and its END in one batch,
 * the END is known before the credit for that DATA would go back, and none is sent: a side that
 * has ended its direction never gets CREDIT (nor the wake-up it would cost).
 *
 * Ownership: each side is owned by its stream (its ->closed, side_closed(), lets the call go and
 * frees it); the call is freed once both sides have closed and nobody up the stack holds it
 * (busy); a Server is reference-counted, since a call counts against it until the call ends.
 * Nothing here drops a link: a server that does not read its link is dropped by the peer layer
 * when the broker writes to it, and its calls then fail with UNAVAILABLE.
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

#include "log.h"
#include "map.h"
#include "vchand-limits.h"

typedef struct Call Call;

typedef struct Service {
        MapEntry entry; /* in rpc->services, by name */
        List link;      /* in rpc->service_list, for listing */
        char *name;
        List servers; /* Servers */
        uint32_t n_calls;
} Service;

/* A SERVE stream. Reference-counted: a call holds its server for the count of calls in flight. */
typedef struct Server {
        Stream base;
        uint32_t refs;
        Service *service;       /* NULL once the stream closed */
        List serve_link;        /* in service->servers while open */
        uint32_t n_outstanding; /* calls in flight on this server */
        uint64_t n_calls_total; /* calls routed to this server, in flight included */
} Server;

/* One end of a call: the caller's CALL stream, or the one the broker opened toward the server.
 * Owned by its stream: freed when it closes, after the call has let go of it. */
typedef struct CallSide {
        Stream base;
        Call *call;
        List peer_link; /* in peer->call_sides */
} CallSide;

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
        List link; /* in rpc->calls */
        Bus *bus;
        CallSide *client; /* NULL once that stream closed */
        CallSide *server; /* NULL once that stream closed (or before it was opened) */
        Server *serve;    /* reference: the SERVE stream of the chosen server */
        Service *service;
        Peer *caller; /* for the per-caller count; NULL once it went away */
        uint64_t deadline_us;
        Pipe to_server, to_client;
        bool server_ended;       /* the server sent END: its outcome is in to_client */
        bool accept_pending;     /* the caller's ACCEPT is deferred (see the top of the file) */
        Identity server_ident;   /* Accept.peer of that ACCEPT: the chosen server */
        int busy;                /* held by a caller up the stack: free only when 0 */
        int server_reset_status; /* status for RESET toward the server if the caller goes */
        bool caller_reset;       /* the caller sent RESET (else it went away, if it goes) */
};

struct Rpc {
        Map services;              /* Service, by name */
        List service_list;         /* Service */
        List calls;                /* Call, in flight */
        const char *local_ns;      /* the broker's own namespace: nobody else serves in it */
        const char *local_service; /* calls to it go to local_open */
        BusOpenFn local_open;
};

static const VbusStreamOps server_ops, call_side_ops;

int rpc_new(Bus *b)
{
        Rpc *rpc = calloc(1, sizeof(*rpc));

        if (!rpc)
                return -ENOMEM;
        (void)map_init(&rpc->services);
        list_init(&rpc->service_list);
        list_init(&rpc->calls);
        b->rpc = rpc;
        return 0;
}

/* Called once every peer is freed: their streams' ->closed released every service and call. */
void rpc_free(Bus *b)
{
        if (!b->rpc)
                return;
        map_deinit(&b->rpc->services);
        free(b->rpc);
        b->rpc = NULL;
}

void rpc_set_local(Bus *b, const char *ns, const char *service, BusOpenFn open)
{
        b->rpc->local_ns = ns;
        b->rpc->local_service = service;
        b->rpc->local_open = open;
}

bool rpc_name_in_namespace(const char *name, size_t len, const char *ns)
{
        size_t n = strlen(ns);

        return len >= n && memcmp(name, ns, n) == 0 && (len == n || name[n] == '.');
}

/* --- services ---------------------------------------------------------------------------- */

static Service *service_find(Rpc *rpc, const char *name, size_t len)
{
        MapEntry *e = map_find(&rpc->services, name, len);

        return e ? container_of(e, Service, entry) : NULL;
}

static Service *service_get(Rpc *rpc, const char *name)
{
        Service *svc = service_find(rpc, name, strlen(name));

        if (svc)
                return svc;
        svc = calloc(1, sizeof(*svc));
        if (!svc || !(svc->name = strdup(name)) ||
            map_add(&rpc->services, &svc->entry, svc->name, strlen(svc->name)) < 0) {
                if (svc)
                        free(svc->name);
                free(svc);
                return NULL;
        }
        list_init(&svc->servers);
        list_add_tail(&rpc->service_list, &svc->link);
        return svc;
}

static void service_maybe_free(Rpc *rpc, Service *svc)
{
        if (!list_is_empty(&svc->servers) || svc->n_calls > 0)
                return;
        map_remove(&rpc->services, &svc->entry);
        list_unlink(&svc->link);
        free(svc->name);
        free(svc);
}

static Server *server_ref(Server *srv)
{
        srv->refs++;
        return srv;
}

static void server_unref(Server *srv)
{
        if (srv && --srv->refs == 0)
                free(srv);
}

int rpc_open_serve(Peer *p, VbusStream *vs, const Vbus__V1__Open *m)
{
        Rpc *rpc = p->bus->rpc;
        Service *svc;
        Server *srv;

        if (rpc->local_ns && rpc_name_in_namespace(m->name, strlen(m->name), rpc->local_ns)) {
                char msg[96];

                peer_log(p, "may not serve %s: the %s namespace is the broker's", m->name,
                         rpc->local_ns);
                snprintf(msg, sizeof(msg), "services named %s.* are served by the broker only",
                         rpc->local_ns);
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_PERMISSION_DENIED, msg);
                return 0;
        }
        svc = service_get(rpc, m->name);
        srv = svc ? calloc(1, sizeof(*srv)) : NULL;
        if (!srv) {
                if (svc)
                        service_maybe_free(rpc, svc);
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_INTERNAL, "out of memory");
                return 0;
        }
        srv->refs = 1; /* the stream's */
        srv->service = svc;
        list_add_tail(&svc->servers, &srv->serve_link);
        stream_bind(&srv->base, p, vs, &server_ops, srv);
        log_debug("peer %s serves %s", p->label, svc->name);
        (void)stream_accept(&srv->base, 0, NULL);
        return 0;
}

static int server_data(void *obj, VbusStream *vs, const VbusFrame *f)
{
        Server *srv = obj;

        (void)vs;
        (void)f;
        return stream_refuse_data(&srv->base);
}

static int server_end(void *obj, VbusStream *vs, const Vbus__V1__End *m)
{
        Server *srv = obj;

        (void)m;
        return stream_end_too(&srv->base, vs);
}

static void server_closed(void *obj, VbusStream *vs)
{
        Server *srv = obj;
        Service *svc = srv->service;

        (void)vs;
        list_unlink(&srv->serve_link);
        srv->service = NULL;
        service_maybe_free(srv->base.peer->bus->rpc, svc);
        stream_unbind(&srv->base);
        server_unref(srv);
}

static const VbusStreamOps server_ops = {
        .data = server_data,
        .end = server_end,
        .closed = server_closed,
};

/* The server with the fewest calls in flight; ties go round-robin (the chosen one moves last). */
static Server *service_pick(Service *svc)
{
        Server *best = NULL;

        for (List *pos = svc->servers.next; pos != &svc->servers; pos = pos->next) {
                Server *srv = list_entry(pos, Server, serve_link);

                /* A server whose peer was dropped in this iteration is still listed. */
                if (!peer_is_alive(srv->base.peer))
                        continue;
                if (!best || srv->n_outstanding < best->n_outstanding)
                        best = srv;
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

/* Sends the caller's deferred ACCEPT, if any (before anything else on its stream). */
static void call_send_accept(Call *c)
{
        if (!c->accept_pending)
                return;
        c->accept_pending = false;
        if (c->client)
                (void)stream_accept(&c->client->base, LIMIT_CALL_WINDOW, &c->server_ident);
}

/* Writes what @pp holds to @dest: its DATA as the window allows, then its END. */
static void pipe_write(Call *c, Pipe *pp, CallSide *dest)
{
        if (dest == c->client && (!list_is_empty(&pp->chunks) || pp->end_pending))
                call_send_accept(c);
        while (!list_is_empty(&pp->chunks)) {
                Chunk *ch = list_entry(pp->chunks.next, Chunk, link);
                ssize_t room = stream_data_room(&dest->base);
                size_t n = ch->len - ch->off;
                struct iovec piece;
                uint8_t flags = 0;

                if (room < 0)
                        return;
                if (n > (size_t)room)
                        n = (size_t)room;
                if (n == 0 && ch->len > ch->off)
                        return; /* no window: wait for CREDIT */
                if (ch->off + n < ch->len || ch->more)
                        flags = VBUS_FLAG_MORE;
                piece.iov_base = ch->data + ch->off;
                piece.iov_len = n;
                if (stream_send_data(&dest->base, flags, &piece, 1) < 0)
                        return;
                ch->off += n;
                pp->credit_owed += n;
                if (ch->off >= ch->len) {
                        list_unlink(&ch->link);
                        free(ch);
                }
        }
        if (pp->end_pending) {
                pp->end_pending = false;
                /* May close @dest, and with it the call's other side: the caller re-reads. */
                (void)stream_end(&dest->base, pp->end_status, pp->end_message);
        }
}

/*
 * Relays one direction of @c: what the pipe holds goes to its destination, and the credit for it
 * back to its source. Both ends are read from the call afresh after each write, since an END can
 * close one and, through it, the other.
 */
static void pipe_pump(Call *c, bool to_server)
{
        Pipe *pp = to_server ? &c->to_server : &c->to_client;
        CallSide *dest = to_server ? c->server : c->client;
        CallSide *src;

        if (!dest)
                return;
        pipe_write(c, pp, dest);
        src = to_server ? c->client : c->server;
        /* A side that has ended its direction will send nothing more: no CREDIT (and no
         * wakeup) for it, which saves one event per call for a unary call's server. */
        if (pp->credit_owed > 0 && !pp->src_ended && src) {
                Vbus__V1__Credit cr = VBUS__V1__CREDIT__INIT;

                if (src == c->client)
                        call_send_accept(c);
                cr.increment = (uint32_t)pp->credit_owed;
                pp->credit_owed = 0;
                if (c->client == src || c->server == src)
                        (void)peer_send_control(src->base.peer, VBUS_FRAME_CREDIT, 0, src->base.id,
                                                &cr.base);
        }
}

static void call_maybe_free(Call *c);

/* After a batch: relays both ways; a caller still sending gets its ACCEPT now. */
static void call_pump(Call *c)
{
        c->busy++;
        if (c->accept_pending && !c->to_server.src_ended)
                call_send_accept(c);
        pipe_pump(c, true);
        pipe_pump(c, false);
        c->busy--;
        call_maybe_free(c);
}

/* --- calls -------------------------------------------------------------------------------- */

/*
 * Something came from @from's side of @c: the other side's peer is marked for the broker's
 * end-of-iteration flush, which pumps its calls. The broker also pumps @from's own peer after
 * its batch, but not when that batch ended with the link (a server that replies and exits): the
 * mark makes sure that what was queued is relayed all the same.
 */
static void call_mark(Call *c, const CallSide *from)
{
        CallSide *dest = from == c->client ? c->server : c->client;

        if (dest)
                peer_mark_dirty(dest->base.peer);
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
                server_unref(c->serve);
        }
        if (c->service) {
                c->service->n_calls--;
                service_maybe_free(c->bus->rpc, c->service);
        }
        free(c);
}

/* Ends @side of @c with RESET; a caller sees its ACCEPT first, as when it was not deferred. */
static void call_reset(Call *c, CallSide *side, int status, const char *message)
{
        if (!side)
                return;
        if (side == c->client)
                call_send_accept(c);
        (void)stream_reset(&side->base, status, message);
}

static CallSide *side_new(Call *c, Peer *p)
{
        CallSide *side = calloc(1, sizeof(*side));

        if (!side)
                return NULL;
        side->call = c;
        side->base.peer = p;
        list_add_tail(&p->call_sides, &side->peer_link);
        return side;
}

static void side_free(CallSide *side)
{
        list_unlink(&side->peer_link);
        free(side);
}

/*
 * Opens the broker's stream toward the server for @c.
 * Return: 0; -EMSGSIZE (the OPEN, with the caller's identity stamped on it, is larger than a
 * control frame: the caller's headers are too large); -E2BIG (the server has no stream left);
 * -ENOMEM; -EPIPE (the server's link is gone, or it was dropped for not reading it).
 */
static int call_open_server(Call *c, Server *serve, const Vbus__V1__Open *m, const Peer *caller)
{
        Peer *q = serve->base.peer;
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;
        Vbus__V1__Identity id;
        uint64_t now = bus_now_us();
        CallSide *side;
        int r;

        stream_identity(&id, &caller->ident);
        o.name = m->name;
        o.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_CALL;
        o.initial_credit = LIMIT_CALL_WINDOW;
        o.headers = m->headers;
        o.n_headers = m->n_headers;
        o.caller = &id;
        if (c->deadline_us != UINT64_MAX)
                o.timeout_us = c->deadline_us > now ? c->deadline_us - now : 1;
        side = side_new(c, q);
        if (!side)
                return -ENOMEM;
        r = peer_open(q, &o, &call_side_ops, side, &side->base.id);
        if (r < 0) {
                side_free(side);
                return r;
        }
        c->server = side;
        return 0;
}

static const char *call_open_failure(int r)
{
        switch (r) {
        case -EMSGSIZE:
                return "the call's headers are too large to reach the server";
        case -E2BIG:
                return "the server has too many streams open";
        default:
                return "the server could not take the call";
        }
}

/* The service named by a method name "service/method", or NULL; its name's length in *ret_n. */
static Service *call_service(Rpc *rpc, const char *method, size_t *ret_n)
{
        const char *slash = strchr(method, '/');

        *ret_n = slash ? (size_t)(slash - method) : 0;
        return slash ? service_find(rpc, method, *ret_n) : NULL;
}

int rpc_open_call(Peer *p, VbusStream *vs, const Vbus__V1__Open *m)
{
        Bus *b = p->bus;
        Rpc *rpc = b->rpc;
        Service *svc;
        Server *serve;
        size_t n_svc;
        Call *c;
        char msg[320];
        int r;

        /* Every call opened counts, and every one whose outcome is not OK counts as failed. */
        b->stats.n_calls++;
        if (p->n_calls >= b->config.max_calls) {
                b->stats.n_calls_failed++;
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                  "too many calls in flight on this link (max_calls)");
                return 0;
        }
        svc = call_service(rpc, m->name, &n_svc);
        if (rpc->local_service && n_svc == strlen(rpc->local_service) &&
            memcmp(m->name, rpc->local_service, n_svc) == 0)
                return rpc->local_open(p, vs, m);
        serve = svc ? service_pick(svc) : NULL;
        if (!serve) {
                snprintf(msg, sizeof(msg), "no responders: nobody serves %.*s", (int)n_svc,
                         m->name);
                b->stats.n_calls_failed++;
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_NOT_FOUND, msg);
                return 0;
        }
        if (svc->n_calls >= b->config.max_service_calls) {
                b->stats.n_calls_failed++;
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                  "too many calls in flight for this service (max_service_calls)");
                return 0;
        }
        c = calloc(1, sizeof(*c));
        if (c)
                c->client = side_new(c, p);
        if (!c || !c->client) {
                free(c);
                b->stats.n_calls_failed++;
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_INTERNAL, "out of memory");
                return 0;
        }
        c->bus = b;
        c->caller = p;
        c->service = svc;
        c->serve = server_ref(serve);
        c->deadline_us = m->timeout_us ? bus_now_us() + m->timeout_us : UINT64_MAX;
        c->server_reset_status = VBUS__V1__STATUS__STATUS_CANCELLED;
        pipe_init(&c->to_server);
        pipe_init(&c->to_client);
        stream_bind(&c->client->base, p, vs, &call_side_ops, c->client);
        svc->n_calls++;
        serve->n_outstanding++;
        serve->n_calls_total++;
        p->n_calls++;
        list_add_tail(&rpc->calls, &c->link);

        r = call_open_server(c, serve, m, p);
        if (r < 0) {
                b->stats.n_calls_failed++;
                /* The REJECT closes the caller's stream, and that frees the call. */
                (void)peer_reject(p, vs->id,
                                  r == -EMSGSIZE ? VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED
                                                 : VBUS__V1__STATUS__STATUS_UNAVAILABLE,
                                  call_open_failure(r));
                return 0;
        }
        /* Sent later (see the top of the file): at the latest by rpc_pump() after this batch. */
        c->server_ident = serve->base.peer->ident;
        c->accept_pending = true;
        return 0;
}

/* --- the frames of a call's two streams ---------------------------------------------------- */

static int side_accept(void *obj, VbusStream *vs, const Vbus__V1__Accept *m)
{
        CallSide *side = obj;

        (void)vs;
        (void)m;
        /* The server's window is known now: what waits for it goes after the batch. */
        call_mark(side->call, side);
        return 0;
}

static int side_reject(void *obj, VbusStream *vs, const Vbus__V1__Reject *m)
{
        CallSide *side = obj;
        Call *c = side->call;

        (void)vs;
        if (side != c->server)
                return 0;
        c->server_ended = true;
        c->bus->stats.n_calls_failed++;
        call_reset(c, c->client, m->status,
                   m->message && m->message[0] ? m->message : "the server refused the call");
        return 0;
}

static int side_data(void *obj, VbusStream *vs, const VbusFrame *f)
{
        CallSide *side = obj;
        Call *c = side->call;
        Pipe *pp = side == c->client ? &c->to_server : &c->to_client;
        Chunk *ch = malloc(sizeof(*ch) + f->header.length);

        (void)vs;
        if (!ch) {
                (void)stream_reset(&side->base, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                   "out of memory");
                return 0;
        }
        ch->len = f->header.length;
        ch->off = 0;
        ch->more = f->header.flags & VBUS_FLAG_MORE;
        memcpy(ch->data, f->payload, f->header.length);
        list_add_tail(&pp->chunks, &ch->link);
        call_mark(c, side);
        return 0;
}

static int side_end(void *obj, VbusStream *vs, const Vbus__V1__End *m)
{
        CallSide *side = obj;
        Call *c = side->call;

        (void)vs;
        if (side == c->client) {
                pipe_set_end(&c->to_server, VBUS__V1__STATUS__STATUS_OK, NULL);
        } else {
                c->server_ended = true;
                if (m->status != VBUS__V1__STATUS__STATUS_OK)
                        c->bus->stats.n_calls_failed++;
                pipe_set_end(&c->to_client, m->status, m->message);
        }
        call_mark(c, side);
        return 0;
}

static int side_reset(void *obj, VbusStream *vs, const Vbus__V1__End *m)
{
        CallSide *side = obj;
        Call *c = side->call;

        (void)vs;
        if (side == c->client) {
                /* Cancellation: the server is told, with the caller's status. */
                c->server_reset_status = m->status;
                c->caller_reset = true;
                if (!c->server_ended)
                        c->bus->stats.n_calls_failed++;
        } else {
                c->server_ended = true;
                c->bus->stats.n_calls_failed++;
                pipe_clear(&c->to_client);
                call_reset(c, c->client, m->status, m->message);
        }
        return 0;
}

static const char *server_reset_message(const Call *c)
{
        if (c->server_reset_status == VBUS__V1__STATUS__STATUS_DEADLINE_EXCEEDED)
                return "deadline exceeded";
        return c->caller_reset ? "the caller cancelled the call" : "the caller went away";
}

/*
 * A side's stream closed, for any reason (frames, or its peer going away). Closing one side may
 * close the other (a RESET is sent to it) and come back here: the call is held (busy) and freed
 * only once both have gone.
 */
static void side_closed(void *obj, VbusStream *vs)
{
        CallSide *side = obj;
        Call *c = side->call;

        (void)vs;
        c->busy++;
        if (side == c->client) {
                c->client = NULL;
                if (c->caller) {
                        c->caller->n_calls--;
                        c->caller = NULL;
                }
                call_reset(c, c->server, c->server_reset_status, server_reset_message(c));
        } else {
                c->server = NULL;
                /* A server that goes without an outcome fails the call at once; it is never
                 * retried elsewhere, since it may have had effects. */
                if (!c->server_ended && c->client) {
                        pipe_clear(&c->to_client);
                        c->bus->stats.n_calls_failed++;
                        call_reset(c, c->client, VBUS__V1__STATUS__STATUS_UNAVAILABLE,
                                   "the server went away during the call");
                }
        }
        side_free(side);
        c->busy--;
        call_maybe_free(c);
}

static const VbusStreamOps call_side_ops = {
        .accept = side_accept,
        .reject = side_reject,
        .data = side_data,
        .end = side_end,
        .reset = side_reset,
        .closed = side_closed,
};

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

        list_for_each_safe(pos, tmp, &p->call_sides)
        {
                CallSide *side = list_entry(pos, CallSide, peer_link);

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
                side->call->busy++;
                calls[n++] = side->call;
        }
        for (size_t i = 0; i < n; i++) {
                call_pump(calls[i]);
                calls[i]->busy--;
                call_maybe_free(calls[i]);
        }
        if (calls != few)
                free(calls);
}

uint64_t rpc_expire(Bus *b, uint64_t now)
{
        uint64_t next = UINT64_MAX;
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &b->rpc->calls)
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
                call_reset(c, c->client, VBUS__V1__STATUS__STATUS_DEADLINE_EXCEEDED,
                           "deadline exceeded");
        }
        return next;
}

int rpc_foreach_server(Bus *b, RpcServerFn fn, void *userdata)
{
        List *head = &b->rpc->service_list;

        for (List *pos = head->next; pos != head; pos = pos->next) {
                Service *svc = list_entry(pos, Service, link);

                for (List *q = svc->servers.next; q != &svc->servers; q = q->next) {
                        Server *srv = list_entry(q, Server, serve_link);
                        RpcServerInfo info = {
                                .service = svc->name,
                                .service_calls = svc->n_calls,
                                .ident = &srv->base.peer->ident,
                                .calls_in_flight = srv->n_outstanding,
                                .calls_total = srv->n_calls_total,
                        };
                        int r;

                        if (!peer_is_alive(srv->base.peer))
                                continue;
                        r = fn(&info, userdata);
                        if (r != 0)
                                return r;
                }
        }
        return 0;
}
