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
 * Relayed bytes are coalesced: each direction has one buffer (Pipe.buf) and the list of the
 * message boundaries in it, not one allocation per frame, so a side sending many empty or tiny
 * frames costs what it holds. A call's buffers, both directions, are charged to its caller
 * (budget.h): the payload plus LIMIT_ITEM_OVERHEAD per message boundary, and LIMIT_CALL_COST for
 * the call itself. The window bounds the bytes, LIMIT_CALL_MESSAGES the boundaries; a side that
 * goes over either (or over its caller's budget) has the call refused with RESOURCE_EXHAUSTED,
 * both ends told. Nobody but that call pays.
 *
 * Ownership: each side is owned by its stream while it is open (its ->closed, side_closed(), lets
 * the call go); its storage is inside the call, which is freed once both sides have closed and
 * nobody up the stack holds it (busy); the chosen server and its service are held
 * (service_call_begin()) until then.
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

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "log.h"
#include "metrics.h"
#include "monitor.h"
#include "service.h"
#include "vchand-limits.h"

typedef struct Call Call;

/* One end of a call: the caller's CALL stream, or the one the broker opened toward the server.
 * Owned by its stream while open; stored in its Call (sides[]), so it lives as long as the call. */
typedef struct CallSide {
        Stream base;
        Call *call;
        List peer_link; /* in peer->call_sides */
} CallSide;

/*
 * What a pipe and a call keep inside the Call itself, so that a call of small messages makes one
 * allocation (the Call) instead of eight (the Call, its method name, two sides, and per direction
 * a byte buffer and a boundary list): a first buffer that holds a small unary request or reply,
 * room for a few boundaries, and a method name of a common length. Larger ones are allocated as
 * before. All of it is in sizeof(Call), which LIMIT_CALL_COST covers (checked below).
 */
#define PIPE_INLINE_BYTES  64
#define PIPE_INLINE_ENDS   2
#define CALL_INLINE_METHOD 64

/* One direction of a call: what came from one side and was not yet written to the other. */
typedef struct Pipe {
        uint8_t *buf; /* the bytes: buf[head, head + len), in a buffer of cap bytes (inline_buf
                       * while it fits there) */
        size_t head, len, cap;
        uint64_t *ends; /* message boundaries, as stream positions: ends[ends_head, n_ends)
                         * (inline_ends while they fit there) */
        uint32_t ends_head, n_ends, ends_cap;
        uint64_t in_pos;  /* bytes received from the source so far */
        uint64_t out_pos; /* bytes written to the destination so far */
        uint64_t charged; /* charged to the caller (budget.h) */
        bool end_pending;
        int end_status;
        char *end_message;
        uint64_t credit_owed; /* bytes written on, to return to the sending side */
        uint32_t src_charge;  /* the sending side's message charge (protocol.md 5.4), returned
                               * once a message is written on: its window bounds messages held */
        bool src_ended;       /* the sending side sent END: credit is of no use to it */
        uint8_t inline_buf[PIPE_INLINE_BYTES];
        uint64_t inline_ends[PIPE_INLINE_ENDS];
} Pipe;

struct Call {
        List link; /* in rpc->calls */
        Bus *bus;
        CallSide *client; /* NULL once that stream closed */
        CallSide *server; /* NULL once that stream closed (or before it was opened) */
        Server *serve;    /* the chosen server (service_call_begin()) */
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
        /* For metrics and monitors, reported when the call is freed. */
        char *method;         /* "service/method" */
        size_t n_service;     /* bytes of the service part */
        uint64_t start_us;    /* the caller's OPEN */
        uint64_t n_req_bytes; /* the caller's DATA */
        int status;           /* the outcome, as the first side to decide it told */
        bool status_set;
        uint64_t caller_id; /* the caller's serial and label (it may be gone by then) */
        char caller_label[96];
        /* The storage of client and server (each owned by its stream while open, and not
         * touched once closed: the call outlives both), and of a short method name. */
        CallSide sides[2];
        char inline_method[CALL_INLINE_METHOD];
};

/* The caller's LIMIT_CALL_COST pays for its Call, the sides and short buffers inside it. */
_Static_assert(sizeof(Call) <= LIMIT_CALL_COST, "LIMIT_CALL_COST must cover a Call");

struct Rpc {
        List calls;                /* Call, in flight */
        const char *local_service; /* the broker's own: calls to it go to local_open */
        BusOpenFn local_open;
};

static const VbusStreamOps call_side_ops;

int rpc_new(Bus *b)
{
        Rpc *rpc = calloc(1, sizeof(*rpc));

        if (!rpc)
                return -ENOMEM;
        list_init(&rpc->calls);
        b->rpc = rpc;
        return 0;
}

/* Called once every peer is freed: their streams' ->closed released every call. */
void rpc_free(Bus *b)
{
        if (!b->rpc)
                return;
        free(b->rpc);
        b->rpc = NULL;
}

void rpc_set_local(Bus *b, const char *service, BusOpenFn open)
{
        b->rpc->local_service = service;
        b->rpc->local_open = open;
}

/* --- pipes ------------------------------------------------------------------------------- */

static void pipe_init(Pipe *pp)
{
        *pp = (Pipe){0};
}

static bool pipe_has_data(const Pipe *pp)
{
        return pp->len > 0 || pp->ends_head < pp->n_ends;
}

/* Releases @n bytes of @pp's charge to the caller of @c. */
static void pipe_uncharge(Call *c, Pipe *pp, uint64_t n)
{
        if (n > pp->charged)
                n = pp->charged;
        if (c->caller && n)
                budget_release(c->caller, n);
        pp->charged -= n;
}

/* Drops what @pp holds (its bytes and boundaries), releasing their charge. */
static void pipe_drop_data(Call *c, Pipe *pp)
{
        pipe_uncharge(c, pp, pp->charged);
        if (pp->buf != pp->inline_buf)
                free(pp->buf);
        if (pp->ends != pp->inline_ends)
                free(pp->ends);
        pp->buf = NULL;
        pp->ends = NULL;
        pp->head = pp->len = pp->cap = 0;
        pp->ends_head = pp->n_ends = pp->ends_cap = 0;
        pp->out_pos = pp->in_pos;
}

static void pipe_clear(Call *c, Pipe *pp)
{
        pipe_drop_data(c, pp);
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
        if (dest == c->client && (pipe_has_data(pp) || pp->end_pending)) {
                call_send_accept(c);
                dest = c->client; /* an ACCEPT never closes it, but it is read afresh */
                if (!dest)
                        return;
        }
        while (pipe_has_data(pp)) {
                bool bounded = pp->ends_head < pp->n_ends;
                uint64_t limit = bounded ? pp->ends[pp->ends_head] : pp->in_pos;
                size_t avail = (size_t)(limit - pp->out_pos), n = avail;
                ssize_t room = stream_data_room(&dest->base);
                struct iovec piece;
                uint8_t flags = 0;

                if (room < 0)
                        return;
                if (n > (size_t)room)
                        n = (size_t)room;
                if (n == 0 && (avail > 0 || !bounded))
                        return; /* no window (wait for CREDIT), or a message still coming */
                if (!bounded || pp->out_pos + n < limit)
                        flags = VBUS_FLAG_MORE;
                /* An empty message of a pipe that never held a byte has no buffer at all. */
                piece.iov_base = pp->buf ? pp->buf + pp->head : NULL;
                piece.iov_len = n;
                if (stream_send_data(&dest->base, flags, &piece, 1) < 0)
                        return;
                pp->head += n;
                pp->len -= n;
                pp->out_pos += n;
                pp->credit_owed += n;
                pipe_uncharge(c, pp, n);
                if (bounded && pp->out_pos == limit) {
                        pp->ends_head++;
                        pp->credit_owed += pp->src_charge;
                        pipe_uncharge(c, pp, LIMIT_ITEM_OVERHEAD);
                }
        }
        if (pp->len == 0)
                pp->head = 0;
        if (pp->ends_head == pp->n_ends)
                pp->ends_head = pp->n_ends = 0;
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

/* After a batch: relays both ways; a caller still sending gets its ACCEPT now. */
static void call_pump(Call *c)
{
        /* The caller holds @c (busy) and frees it after: an END written here may close both its
         * streams, and the call must outlive that. */
        assert(c->busy > 0);
        if (c->accept_pending && !c->to_server.src_ended)
                call_send_accept(c);
        pipe_pump(c, true);
        pipe_pump(c, false);
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

/* The outcome of @c, if none was noted before (the first side to decide it wins). */
static void call_note_status(Call *c, int status)
{
        if (c->status_set)
                return;
        c->status = status;
        c->status_set = true;
}

static void call_report(Call *c)
{
        uint64_t latency = bus_now_us() - c->start_us;
        int status = c->status_set ? c->status : VBUS__V1__STATUS__STATUS_CANCELLED;

        metrics_call_observe(c->bus, c->method, c->n_service, status == VBUS__V1__STATUS__STATUS_OK,
                             latency);
        if (monitor_is_active(c->bus))
                monitor_call(c->bus, c->caller_label, c->caller_id, c->method, c->n_req_bytes,
                             status, latency);
}

static void call_maybe_free(Call *c)
{
        if (c->client || c->server || c->busy > 0)
                return;
        call_report(c);
        if (c->method != c->inline_method)
                free(c->method);
        list_unlink(&c->link);
        pipe_clear(c, &c->to_server);
        pipe_clear(c, &c->to_client);
        service_call_end(c->bus, c->service, c->serve);
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

/* The side of @c on @p: @which is 0 for the caller's, 1 for the server's (storage in @c). */
static CallSide *side_new(Call *c, Peer *p, unsigned which)
{
        CallSide *side = &c->sides[which];

        *side = (CallSide){0};
        side->call = c;
        side->base.peer = p;
        list_add_tail(&p->call_sides, &side->peer_link);
        return side;
}

/* @side's call lets it go (its storage is the call's, freed with it). */
static void side_free(CallSide *side)
{
        list_unlink(&side->peer_link);
}

/*
 * Opens the broker's stream toward the server for @c.
 * Return: 0; -EMSGSIZE (the OPEN, with the caller's identity stamped on it, is larger than a
 * control frame: the caller's headers are too large); -E2BIG (the server has no stream left);
 * -EBUSY (the server's link is full: its backlog keeps room for the calls it has); -ENOMEM;
 * -EPIPE (the server's link is gone).
 */
static int call_open_server(Call *c, Server *serve, const Vbus__V1__Open *m, const Peer *caller)
{
        Peer *q = service_server_get_peer(serve);
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;
        Vbus__V1__Identity id;
        Vbus__V1__Claims claims;
        uint64_t now = bus_now_us();
        CallSide *side;
        int r;

        stream_identity_claims(&id, &claims, &caller->ident);
        o.name = m->name;
        o.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_CALL;
        o.initial_credit = LIMIT_CALL_WINDOW;
        o.headers = m->headers;
        o.n_headers = m->n_headers;
        o.caller = &id;
        if (c->deadline_us != UINT64_MAX)
                o.timeout_us = c->deadline_us > now ? c->deadline_us - now : 1;
        if (!peer_has_ids(q))
                return -EBUSY;
        /* The OPEN is at most a control frame (peer_open() refuses a larger one): its exact
         * size, an encoding pass over the caller's identity, is needed only near the limit. */
        if (!budget_backlog_room(q, VBUS_FRAME_HEADER_SIZE + VBUS_CONTROL_MAX) &&
            !budget_backlog_room(q, VBUS_FRAME_HEADER_SIZE +
                                            protobuf_c_message_get_packed_size(&o.base)))
                return -EBUSY;
        side = side_new(c, q, 1);
        r = peer_open(q, &o, &call_side_ops, side, &side->base.id);
        if (r < 0) {
                side_free(side);
                return r;
        }
        c->server = side;
        /* The last id it had: the server takes no new call, and reconnects once this ends. */
        if (!peer_has_ids(q))
                peer_retire(q);
        return 0;
}

static const char *call_open_failure(int r)
{
        switch (r) {
        case -EMSGSIZE:
                return "the call's headers are too large to reach the server";
        case -E2BIG:
                return "the server has too many streams open";
        case -EBUSY:
                return "the server is not keeping up (its link is full): try again later";
        default:
                return "the server could not take the call";
        }
}

/* The service named by a method name "service/method", or NULL; its name's length in *ret_n. */
static Service *call_service(Bus *b, const char *method, size_t *ret_n)
{
        const char *slash = strchr(method, '/');

        *ret_n = slash ? (size_t)(slash - method) : 0;
        return slash ? service_find(b, method, *ret_n) : NULL;
}

/* How many calls to @svc @p has in flight as a caller (at most max_calls: its own sides). */
static uint32_t caller_calls_to(const Peer *p, const Service *svc)
{
        List *pos, *tmp;
        uint32_t n = 0;

        list_for_each_safe(pos, tmp, &p->call_sides)
        {
                const CallSide *side = list_entry(pos, CallSide, peer_link);

                if (side == side->call->client && side->call->service == svc)
                        n++;
        }
        return n;
}

/* Keeps a copy of @name (borrowed) in @c: inside it if short. Return: false if out of memory. */
static bool call_set_method(Call *c, const char *name)
{
        size_t n = strlen(name);

        if (n < sizeof(c->inline_method)) {
                memcpy(c->inline_method, name, n + 1);
                c->method = c->inline_method;
                return true;
        }
        c->method = strdup(name);
        return c->method != NULL;
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
        svc = call_service(b, m->name, &n_svc);
        if (rpc->local_service && n_svc == strlen(rpc->local_service) &&
            memcmp(m->name, rpc->local_service, n_svc) == 0)
                return rpc->local_open(p, vs, m);
        serve = svc ? service_pick(svc) : NULL;
        if (!serve) {
                /* A message for the caller: cut short is fine. */
                (void)snprintf(msg, sizeof(msg), "no responders: nobody serves %.*s", (int)n_svc,
                               m->name);
                b->stats.n_calls_failed++;
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_NOT_FOUND, msg);
                return 0;
        }
        if (service_get_n_calls(svc) >= b->config.max_service_calls &&
            caller_calls_to(p, svc) >=
                    b->config.max_service_calls / (b->n_peers ? b->n_peers : 1)) {
                b->stats.n_calls_failed++;
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                  "too many calls in flight for this service (max_service_calls)");
                return 0;
        }
        if (budget_charge(p, LIMIT_CALL_COST) < 0) {
                b->stats.n_calls_failed++;
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                  "this link holds too much (peer_memory)");
                return 0;
        }
        c = calloc(1, sizeof(*c));
        if (c && !call_set_method(c, m->name)) {
                free(c);
                c = NULL;
        }
        if (!c) {
                budget_release(p, LIMIT_CALL_COST);
                b->stats.n_calls_failed++;
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_INTERNAL, "out of memory");
                return 0;
        }
        c->client = side_new(c, p, 0);
        c->bus = b;
        c->caller = p;
        c->n_service = n_svc;
        c->start_us = bus_now_us();
        c->caller_id = p->serial;
        memcpy(c->caller_label, p->label, sizeof(c->caller_label));
        c->service = svc;
        c->serve = serve;
        c->deadline_us = budget_call_deadline(b, m->timeout_us);
        c->server_reset_status = VBUS__V1__STATUS__STATUS_CANCELLED;
        pipe_init(&c->to_server);
        pipe_init(&c->to_client);
        stream_bind(&c->client->base, p, vs, &call_side_ops, c->client);
        service_call_begin(svc, serve);
        p->n_calls++;
        list_add_tail(&rpc->calls, &c->link);

        r = call_open_server(c, serve, m, p);
        if (r < 0) {
                b->stats.n_calls_failed++;
                call_note_status(c, r == -EMSGSIZE ? VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED
                                                   : VBUS__V1__STATUS__STATUS_UNAVAILABLE);
                /* The REJECT closes the caller's stream, and that frees the call. */
                (void)peer_reject(p, vs->id,
                                  r == -EMSGSIZE ? VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED
                                                 : VBUS__V1__STATUS__STATUS_UNAVAILABLE,
                                  call_open_failure(r));
                return 0;
        }
        /* Sent later (see the top of the file): at the latest by rpc_pump() after this batch. */
        c->server_ident = service_server_get_peer(serve)->ident;
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
        call_note_status(c, m->status);
        call_reset(c, c->client, m->status,
                   m->message && m->message[0] ? m->message : "the server refused the call");
        return 0;
}

/*
 * The call is refused because @side sent more than its relay holds (or its caller's budget
 * allows): both ends get RESOURCE_EXHAUSTED, and nothing else is touched.
 */
static void call_refuse(Call *c, CallSide *side, const char *why)
{
        c->bus->stats.n_calls_failed++;
        if (side == c->client) {
                c->server_reset_status = VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED;
                c->caller_reset = true;
                /* Closing the caller's stream resets the server's (side_closed()). */
                call_reset(c, c->client, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED, why);
                return;
        }
        c->server_ended = true;
        pipe_clear(c, &c->to_client);
        (void)stream_reset(&side->base, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED, why);
        call_reset(c, c->client, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                   "the server's reply exceeded what the broker relays for a call");
}

/* The smallest buffer a pipe allocates (it doubles from there as needed). */
#define PIPE_FIRST_CAP 64

/* Room for @n more bytes in @pp's buffer. Return: 0 or -ENOMEM. */
static int pipe_reserve(Pipe *pp, size_t n)
{
        size_t need = pp->len + n, cap;
        uint8_t *buf;

        if (pp->head + need <= pp->cap)
                return 0;
        if (pp->head > 0) {
                memmove(pp->buf, pp->buf + pp->head, pp->len);
                pp->head = 0;
                if (need <= pp->cap)
                        return 0;
        }
        /*
         * The first buffer fits the first message (a unary call's request or reply is most often
         * small): a fixed 4 KiB one was a malloc outside the allocator's small-chunk caches for
         * every call and direction, which made glibc consolidate its fast bins each time.
         */
        if (!pp->buf && need <= sizeof(pp->inline_buf)) {
                pp->buf = pp->inline_buf;
                pp->cap = sizeof(pp->inline_buf);
                return 0;
        }
        cap = pp->cap ? pp->cap : PIPE_FIRST_CAP;
        while (cap < need)
                cap *= 2;
        if (pp->buf == pp->inline_buf) {
                /* Out of the inline buffer: head is 0 here (moved above). */
                buf = malloc(cap);
                if (buf)
                        memcpy(buf, pp->buf, pp->len);
        } else {
                buf = realloc(pp->buf, cap);
        }
        if (!buf)
                return -ENOMEM;
        pp->buf = buf;
        pp->cap = cap;
        return 0;
}

/* Appends a message boundary at the current end of @pp. Return: 0 or -ENOMEM. */
static int pipe_add_end(Pipe *pp)
{
        if (!pp->ends) {
                pp->ends = pp->inline_ends;
                pp->ends_cap = PIPE_INLINE_ENDS;
        }
        if (pp->n_ends == pp->ends_cap) {
                uint32_t cap = pp->ends_cap < 8 ? 8 : pp->ends_cap * 2;
                uint64_t *ends;

                if (pp->ends_head > 0) {
                        memmove(pp->ends, pp->ends + pp->ends_head,
                                (pp->n_ends - pp->ends_head) * sizeof(uint64_t));
                        pp->n_ends -= pp->ends_head;
                        pp->ends_head = 0;
                }
                if (pp->n_ends == pp->ends_cap) {
                        if (pp->ends == pp->inline_ends) {
                                ends = malloc(cap * sizeof(uint64_t));
                                if (ends)
                                        memcpy(ends, pp->ends, pp->n_ends * sizeof(uint64_t));
                        } else {
                                ends = realloc(pp->ends, cap * sizeof(uint64_t));
                        }
                        if (!ends)
                                return -ENOMEM;
                        pp->ends = ends;
                        pp->ends_cap = cap;
                }
        }
        pp->ends[pp->n_ends++] = pp->in_pos;
        return 0;
}

static int side_data(void *obj, VbusStream *vs, const VbusFrame *f)
{
        CallSide *side = obj;
        Call *c = side->call;
        Pipe *pp = side == c->client ? &c->to_server : &c->to_client;
        size_t len = f->header.length;
        bool last = !(f->header.flags & VBUS_FLAG_MORE);
        uint64_t cost = len + (last ? LIMIT_ITEM_OVERHEAD : 0);

        (void)vs;
        if (!c->caller || (side == c->client ? !c->server : !c->client))
                return 0; /* the other end is gone: nothing to relay to */
        pp->src_charge = stream_msg_charge(&side->base);
        if (cost == 0)
                return 0; /* an empty fragment: nothing to keep */
        if (last && pp->n_ends - pp->ends_head >= LIMIT_CALL_MESSAGES) {
                call_refuse(c, side, "too many messages waiting in the call's relay");
                return 0;
        }
        if (budget_charge(c->caller, cost) < 0) {
                call_refuse(c, side, "the caller's link holds too much (peer_memory)");
                return 0;
        }
        pp->charged += cost;
        if (len > 0) {
                if (pipe_reserve(pp, len) < 0) {
                        call_refuse(c, side, "out of memory");
                        return 0;
                }
                memcpy(pp->buf + pp->head + pp->len, f->payload, len);
                pp->len += len;
                pp->in_pos += len;
                if (side == c->client)
                        c->n_req_bytes += len;
        }
        if (last && pipe_add_end(pp) < 0) {
                call_refuse(c, side, "out of memory");
                return 0;
        }
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
                call_note_status(c, m->status);
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
                call_note_status(c, m->status);
        } else {
                c->server_ended = true;
                c->bus->stats.n_calls_failed++;
                call_note_status(c, m->status);
                pipe_clear(c, &c->to_client);
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
                        /* Nothing is relayed without the caller: what it was charged goes. */
                        pipe_drop_data(c, &c->to_server);
                        pipe_drop_data(c, &c->to_client);
                        budget_release(c->caller, LIMIT_CALL_COST);
                        c->caller->n_calls--;
                        c->caller = NULL;
                }
                call_reset(c, c->server, c->server_reset_status, server_reset_message(c));
        } else {
                c->server = NULL;
                /* A server that goes without an outcome fails the call at once; it is never
                 * retried elsewhere, since it may have had effects. */
                if (!c->server_ended && c->client) {
                        pipe_clear(c, &c->to_client);
                        c->bus->stats.n_calls_failed++;
                        call_note_status(c, VBUS__V1__STATUS__STATUS_UNAVAILABLE);
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
                        Call **more = malloc(2 * cap * sizeof(Call *));

                        if (!more)
                                break; /* the rest waits for the next batch */
                        memcpy(more, calls, n * sizeof(Call *));
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
                call_note_status(c, VBUS__V1__STATUS__STATUS_DEADLINE_EXCEEDED);
                /* Resetting the caller's stream closes it, which resets the server's too. */
                call_reset(c, c->client, VBUS__V1__STATUS__STATUS_DEADLINE_EXCEEDED,
                           "deadline exceeded");
        }
        return next;
}
