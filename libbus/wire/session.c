/* SPDX-License-Identifier: MIT */
/*
 * session: protocol state of one session, enforcing docs/protocol.md sections 3, 5 and 7.
 *
 * Every rule is written once, from the point of view of "the sender" of a frame, and applied to
 * incoming frames (the sender is the peer; a broken rule is a protocol violation) and to outgoing
 * ones (the sender is us; a broken rule is a caller bug). Invariants:
 *  - a stream is in the table from its OPEN until it closes (REJECT, RESET, or END both ways);
 *  - each side's stream ids strictly increase, so an id at or below the opener's highest id that
 *    is not in the table belongs to a closed stream, and frames for it are dropped, not errors;
 *  - windows are int64_t and every increment is bounded by VBUS_CREDIT_MAX, so they never
 *    overflow; a window may go negative only through ACCEPT (protocol.md 5.3).
 */
#include "session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "batch.h"

/* A freed slot that keeps probe chains intact. */
static VbusStream tombstone_marker;
#define TOMBSTONE (&tombstone_marker)

enum { OUTBOUND, INBOUND };

/* A closed stream stays allocated until the next call, so the caller can read it once more. */
static void session_reap(VbusStream **pending)
{
        free(*pending);
        *pending = NULL;
}

int vbus__session_init(VbusSession *s, VbusSessionRole role, uint32_t session_id,
                       uint32_t own_max_frame, uint32_t max_streams)
{
        if (!s || (role != VBUS_ROLE_CLIENT && role != VBUS_ROLE_BROKER) || max_streams == 0 ||
            own_max_frame < VBUS_FRAME_MAX_MIN || own_max_frame > VBUS_FRAME_MAX_LIMIT)
                return -EINVAL;
        *s = (VbusSession){
                .role = role,
                .session_id = session_id,
                .own_max_frame = own_max_frame,
                .peer_max_frame = VBUS_FRAME_MAX_INITIAL,
                .own_version_min = 1,
                .own_version_max = 1,
                .max_streams = max_streams,
        };
        return 0;
}

void vbus__session_deinit(VbusSession *s)
{
        if (!s)
                return;
        for (uint32_t i = 0; i < s->n_table; i++)
                if (s->table[i] && s->table[i] != TOMBSTONE)
                        free(s->table[i]);
        free(s->table);
        s->table = NULL;
        session_reap(&s->reaped);
        s->n_table = s->n_streams = s->n_local_streams = s->n_tombstones = 0;
}

/* --- stream table ------------------------------------------------------------------------ */

static uint32_t slot_of(uint32_t id, uint32_t n_table)
{
        /* Ids of one side are consecutive odd or even numbers: spread them. */
        return (id * 2654435761u) & (n_table - 1);
}

VbusStream *vbus__session_get_stream(const VbusSession *s, uint32_t id)
{
        if (!s || s->n_table == 0)
                return NULL;
        for (uint32_t i = slot_of(id, s->n_table), n = 0; n < s->n_table;
             i = (i + 1) & (s->n_table - 1), n++) {
                VbusStream *st = s->table[i];

                if (!st)
                        return NULL;
                if (st != TOMBSTONE && st->id == id)
                        return st;
        }
        return NULL;
}

static int table_grow(VbusSession *s)
{
        uint32_t n = s->n_table ? s->n_table * 2 : 16;
        VbusStream **t;

        /* Rehash in place of growing when tombstones are what fills the table. */
        if (s->n_table && s->n_streams * 4 < s->n_table)
                n = s->n_table;
        t = calloc(n, sizeof(VbusStream *));
        if (!t)
                return -ENOMEM;
        for (uint32_t i = 0; i < s->n_table; i++) {
                VbusStream *st = s->table[i];
                uint32_t k;

                if (!st || st == TOMBSTONE)
                        continue;
                for (k = slot_of(st->id, n); t[k]; k = (k + 1) & (n - 1))
                        ;
                t[k] = st;
        }
        free(s->table);
        s->table = t;
        s->n_table = n;
        s->n_tombstones = 0;
        return 0;
}

static int table_add(VbusSession *s, VbusStream *st)
{
        uint32_t k;
        int r;

        if ((uint64_t)(s->n_streams + s->n_tombstones + 1) * 2 > s->n_table) {
                r = table_grow(s);
                if (r < 0)
                        return r;
        }
        for (k = slot_of(st->id, s->n_table); s->table[k] && s->table[k] != TOMBSTONE;
             k = (k + 1) & (s->n_table - 1))
                ;
        if (s->table[k] == TOMBSTONE)
                s->n_tombstones--;
        s->table[k] = st;
        s->n_streams++;
        if (st->local)
                s->n_local_streams++;
        return 0;
}

static void table_remove(VbusSession *s, const VbusStream *st)
{
        for (uint32_t k = slot_of(st->id, s->n_table);; k = (k + 1) & (s->n_table - 1)) {
                if (s->table[k] == st) {
                        s->table[k] = TOMBSTONE;
                        s->n_streams--;
                        if (st->local)
                                s->n_local_streams--;
                        s->n_tombstones++;
                        return;
                }
        }
}

/* --- rules ------------------------------------------------------------------------------- */

static bool sender_is_client(const VbusSession *s, int dir)
{
        return (dir == OUTBOUND) == (s->role == VBUS_ROLE_CLIENT);
}

/* The failure code for the direction: a violation inbound, a caller bug outbound. */
static int bad(int dir)
{
        return dir == INBOUND ? VBUS_FRAME_E_SEMANTIC : -EINVAL;
}

/*
 * The client's proof HELLO (protocol.md 3.1): allowed once, as the client's first frame after
 * the broker's HELLO, when both HELLOs set the AUTH feature; it repeats the negotiated version.
 * What it proves is the owner's business (auth.h).
 */
static int apply_auth_hello(VbusSession *s, int dir, const Vbus__V1__Hello *m)
{
        if (!s->auth_proof_due || m->version != s->version)
                return bad(dir);
        s->auth_proof_due = false;
        return 0;
}

/* After the broker's HELLO: whether the client may still send its proof, and what a DATA frame
 * costs from now on. */
static void note_broker_hello(VbusSession *s, const Vbus__V1__Hello *m)
{
        s->auth_proof_due = s->auth_offered && (m->features & VBUS_FEATURE_AUTH);
        s->msg_charge = s->charge_offered && (m->features & VBUS_FEATURE_MESSAGE_CHARGE)
                                ? VBUS_MESSAGE_CHARGE
                                : 0;
        s->batch = s->batch_offered && (m->features & VBUS_FEATURE_BATCH) && s->msg_charge;
}

static void note_client_hello(VbusSession *s, const Vbus__V1__Hello *m)
{
        s->auth_offered = m->features & VBUS_FEATURE_AUTH;
        s->charge_offered = m->features & VBUS_FEATURE_MESSAGE_CHARGE;
        s->batch_offered = m->features & VBUS_FEATURE_BATCH;
}

static int apply_hello(VbusSession *s, int dir, const Vbus__V1__Hello *m)
{
        bool from_client = sender_is_client(s, dir);

        if (from_client && vbus__session_is_ready(s))
                return apply_auth_hello(s, dir, m);
        if (dir == OUTBOUND) {
                if (s->hello_sent)
                        return -EINVAL;
                /* The client speaks first; the broker answers with the chosen version. */
                if (!from_client && (!s->hello_received || m->version == 0))
                        return -EINVAL;
                if (from_client && m->version != 0)
                        return -EINVAL;
                s->hello_sent = true;
                if (from_client)
                        note_client_hello(s, m);
                else {
                        s->version = m->version;
                        note_broker_hello(s, m);
                }
                return 0;
        }
        if (s->hello_received)
                return VBUS_FRAME_E_SEMANTIC;
        if (from_client) {
                if (m->version != 0)
                        return VBUS_FRAME_E_SEMANTIC;
                note_client_hello(s, m);
        } else {
                if (!s->hello_sent || m->version < s->own_version_min ||
                    m->version > s->own_version_max)
                        return VBUS_FRAME_E_SEMANTIC;
                s->version = m->version;
                note_broker_hello(s, m);
        }
        s->hello_received = true;
        s->peer_max_frame = m->max_frame;
        return 0;
}

static uint32_t *opener_last_id(VbusSession *s, uint32_t id)
{
        bool odd = id & 1;
        bool local_is_client = s->role == VBUS_ROLE_CLIENT;

        /* Odd ids belong to the client. */
        return odd == local_is_client ? &s->last_local_id : &s->last_remote_id;
}

uint32_t vbus__session_next_id(const VbusSession *s)
{
        uint32_t next;

        if (s->last_local_id == 0)
                return s->role == VBUS_ROLE_CLIENT ? 1 : 2;
        next = s->last_local_id + 2;
        return next < VBUS_STREAM_ID_LIMIT ? next : 0;
}

static int apply_open(VbusSession *s, int dir, uint32_t id, const Vbus__V1__Open *m,
                      VbusStream **ret_stream)
{
        bool from_client = sender_is_client(s, dir);
        uint32_t *last = dir == OUTBOUND ? &s->last_local_id : &s->last_remote_id;
        VbusStream *st;
        int r;

        if ((id & 1) != (from_client ? 1u : 0u) || id <= *last)
                return bad(dir);
        /* The broker opens only calls toward servers, and only it names the caller. */
        if (!from_client && m->kind != VBUS__V1__STREAM_KIND__STREAM_KIND_CALL)
                return bad(dir);
        if (from_client && m->caller)
                return bad(dir);
        if (dir == OUTBOUND && s->goaway_received)
                return -EINVAL;
        *last = id;
        /* Each side's opens count against its own limit only. */
        if ((dir == OUTBOUND ? s->n_local_streams : s->n_streams - s->n_local_streams) >=
            s->max_streams)
                return -E2BIG;
        st = calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        st->id = id;
        st->kind = (uint8_t)m->kind;
        st->state = VBUS_STREAM_OPENING;
        st->local = dir == OUTBOUND;
        if (st->local) {
                st->send_window = VBUS_OPEN_WINDOW;
                st->recv_window = m->initial_credit;
        } else {
                st->recv_window = VBUS_OPEN_WINDOW;
                st->send_window = m->initial_credit;
        }
        r = table_add(s, st);
        if (r < 0) {
                free(st);
                return r;
        }
        *ret_stream = st;
        return 0;
}

/* Finds the stream of a stream frame, or says why there is none. */
static int find_stream(VbusSession *s, int dir, uint32_t id, VbusStream **ret)
{
        VbusStream *st = vbus__session_get_stream(s, id);

        if (st) {
                *ret = st;
                return 0;
        }
        if (id <= *opener_last_id(s, id))
                return dir == INBOUND ? VBUS_SESSION_DISCARD : -EINVAL;
        return bad(dir);
}

static void stream_close(VbusSession *s, VbusStream *st, VbusStream **pending, bool *ret_closed)
{
        table_remove(s, st);
        *pending = st;
        *ret_closed = true;
}

/*
 * A batch (protocol.md 5.5): once negotiated, whole messages only (no MORE, not inside a
 * message), never RETAIN; a client's on its PUBLISH stream, the broker's on a SUBSCRIBE stream
 * with its Meta prefix; at least one message.
 */
static bool batch_allowed(const VbusSession *s, int dir, const VbusFrameHeader *h,
                          const VbusStream *st, bool sender_in_message)
{
        bool client = sender_is_client(s, dir);

        if (!s->batch || sender_in_message || h->n_messages == 0 ||
            (h->flags & (VBUS_FLAG_MORE | VBUS_FLAG_RETAIN)))
                return false;
        if (client)
                return st->kind == VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH;
        return st->kind == VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE &&
               (h->flags & VBUS_FLAG_META);
}

/* The DATA rules, from the sender's point of view; changes nothing. */
static int check_data(const VbusSession *s, int dir, const VbusFrameHeader *h, const VbusStream *st)
{
        bool out = dir == OUTBOUND;
        bool sender_opened = st->local == out;
        bool sender_ended = out ? st->local_ended : st->remote_ended;
        bool sender_in_message = out ? st->local_in_message : st->remote_in_message;
        int64_t sender_window = out ? st->send_window : st->recv_window;

        if (sender_ended)
                return bad(dir);
        if (st->state == VBUS_STREAM_OPENING && !sender_opened)
                return bad(dir);
        /* META: from the broker, on a SUBSCRIBE stream, on a message's first frame only (calls
         * carry the caller's identity in their OPEN, not per message). */
        if ((h->flags & VBUS_FLAG_META) &&
            (sender_is_client(s, dir) || sender_in_message ||
             st->kind != VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE))
                return bad(dir);
        /* RETAIN: from a client, on its PUBLISH stream, on a message's first frame only. */
        if ((h->flags & VBUS_FLAG_RETAIN) &&
            (!sender_is_client(s, dir) || sender_in_message ||
             st->kind != VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH))
                return bad(dir);
        /* Under MESSAGE_CHARGE, a fragment carries at least one byte: a message's empty frames
         * would cost no window, and only its last frame is charged (5.4). */
        if (s->msg_charge && (h->flags & VBUS_FLAG_MORE) && h->length == 0)
                return bad(dir);
        if ((h->flags & VBUS_FLAG_BATCH) && !batch_allowed(s, dir, h, st, sender_in_message))
                return bad(dir);
        if (vbus__session_data_cost(s, h) > sender_window)
                return out ? -EAGAIN : VBUS_FRAME_E_SEMANTIC;
        return 0;
}

static int apply_stream_frame(VbusSession *s, int dir, const VbusFrameHeader *h,
                              const ProtobufCMessage *msg, VbusStream *st, VbusStream **pending,
                              bool *ret_closed)
{
        bool out = dir == OUTBOUND;
        bool sender_opened = st->local == out;
        bool *sender_ended = out ? &st->local_ended : &st->remote_ended;
        bool *receiver_ended = out ? &st->remote_ended : &st->local_ended;
        bool *sender_in_message = out ? &st->local_in_message : &st->remote_in_message;
        int64_t *sender_window = out ? &st->send_window : &st->recv_window;
        int64_t *receiver_window = out ? &st->recv_window : &st->send_window;
        int r;

        switch (h->type) {
        case VBUS_FRAME_ACCEPT: {
                const Vbus__V1__Accept *m = (const Vbus__V1__Accept *)msg;

                if (sender_opened || st->state != VBUS_STREAM_OPENING)
                        return bad(dir);
                st->state = VBUS_STREAM_OPEN;
                /* The opener's window restarts from the acceptor's credit (5.3). */
                *receiver_window = (int64_t)m->initial_credit - (int64_t)st->sent_before_accept;
                if (*sender_ended && *receiver_ended)
                        stream_close(s, st, pending, ret_closed);
                return 0;
        }
        case VBUS_FRAME_REJECT:
                if (sender_opened || st->state != VBUS_STREAM_OPENING)
                        return bad(dir);
                stream_close(s, st, pending, ret_closed);
                return 0;
        case VBUS_FRAME_DATA:
                r = check_data(s, dir, h, st);
                if (r != 0)
                        return r;
                *sender_window -= vbus__session_data_cost(s, h);
                if (st->state == VBUS_STREAM_OPENING)
                        st->sent_before_accept += (uint64_t)vbus__session_data_cost(s, h);
                *sender_in_message = h->flags & VBUS_FLAG_MORE;
                return 0;
        case VBUS_FRAME_END:
                if (*sender_ended || *sender_in_message)
                        return bad(dir);
                if (st->state == VBUS_STREAM_OPENING && !sender_opened)
                        return bad(dir);
                *sender_ended = true;
                if (*receiver_ended && st->state == VBUS_STREAM_OPEN)
                        stream_close(s, st, pending, ret_closed);
                return 0;
        case VBUS_FRAME_RESET:
                stream_close(s, st, pending, ret_closed);
                return 0;
        case VBUS_FRAME_CREDIT: {
                const Vbus__V1__Credit *m = (const Vbus__V1__Credit *)msg;

                if (*receiver_ended)
                        return 0; /* harmless: nothing more will come that way */
                if (*receiver_window + (int64_t)m->increment > VBUS_CREDIT_MAX)
                        return bad(dir);
                *receiver_window += m->increment;
                return 0;
        }
        default:
                return bad(dir);
        }
}

static int session_apply(VbusSession *s, int dir, const VbusFrameHeader *h,
                         const ProtobufCMessage *msg, VbusStream **pending, VbusStream **ret_stream,
                         bool *ret_closed)
{
        VbusStream *st = NULL;
        int r;

        *ret_stream = NULL;
        *ret_closed = false;
        if (h->session_id != s->session_id)
                return bad(dir);
        if (h->type != VBUS_FRAME_DATA && !msg)
                return bad(dir);
        /* Any other frame from the client closes its chance to prove a key. */
        if (h->type != VBUS_FRAME_HELLO && sender_is_client(s, dir))
                s->auth_proof_due = false;
        if (h->type == VBUS_FRAME_HELLO)
                return apply_hello(s, dir, (const Vbus__V1__Hello *)msg);
        if (h->type == VBUS_FRAME_ERROR)
                return 0;
        if (!vbus__session_is_ready(s))
                return bad(dir);

        switch (h->type) {
        case VBUS_FRAME_PING:
                return 0;
        case VBUS_FRAME_GOAWAY:
                if (dir == OUTBOUND)
                        s->goaway_sent = true;
                else
                        s->goaway_received = true;
                return 0;
        case VBUS_FRAME_OPEN:
                r = apply_open(s, dir, h->stream_id, (const Vbus__V1__Open *)msg, &st);
                if (r == 0)
                        *ret_stream = st;
                return r;
        default:
                break;
        }

        r = find_stream(s, dir, h->stream_id, &st);
        if (r != 0)
                return r;
        r = apply_stream_frame(s, dir, h, msg, st, pending, ret_closed);
        if (r == 0)
                *ret_stream = st;
        return r;
}

int vbus__session_recv(VbusSession *s, VbusFrame *f, const VbusControl *c, VbusStream **ret_stream,
                       bool *ret_closed)
{
        VbusStream *st = NULL;
        bool closed = false;
        int r;

        if (!s || !f || !ret_stream || !ret_closed)
                return -EINVAL;
        if (f->header.type != VBUS_FRAME_DATA && (!c || c->type != f->header.type))
                return -EINVAL;
        f->header.n_messages = 0;
        if (f->header.type == VBUS_FRAME_DATA && (f->header.flags & VBUS_FLAG_BATCH)) {
                /* Counted before the window is charged; a batch nobody negotiated is refused
                 * by the rules below whatever its bytes. */
                if (!s->batch)
                        return VBUS_FRAME_E_SEMANTIC;
                r = vbus__batch_count(f->payload, f->header.length,
                                      f->header.flags & VBUS_FLAG_META, &f->header.n_messages);
                if (r != 0)
                        return r;
        }
        session_reap(&s->reaped);
        r = session_apply(s, INBOUND, &f->header, c ? c->msg : NULL, &s->reaped, &st, &closed);
        if (r != 0)
                return r;
        *ret_stream = st;
        *ret_closed = closed;
        return 0;
}

int vbus__session_check_data(const VbusSession *s, const VbusFrameHeader *h)
{
        const VbusStream *st;

        if (!s || !h || h->type != VBUS_FRAME_DATA || h->session_id != s->session_id)
                return -EINVAL;
        if (h->length > s->peer_max_frame || !vbus__session_is_ready(s))
                return -EINVAL;
        st = vbus__session_get_stream(s, h->stream_id);
        if (!st)
                return -ENOENT;
        return check_data(s, OUTBOUND, h, st);
}

int vbus__session_send(VbusSession *s, const VbusFrameHeader *h, const ProtobufCMessage *msg,
                       VbusStream **ret_stream, bool *ret_closed)
{
        VbusStream *st = NULL;
        bool closed = false;
        int r;

        if (!s || !h)
                return -EINVAL;
        if (h->type != VBUS_FRAME_DATA &&
            (!msg || msg->descriptor != vbus__control_descriptor(h->type)))
                return -EINVAL;
        if (h->type == VBUS_FRAME_DATA && h->length > s->peer_max_frame)
                return -EINVAL;
        session_reap(&s->reaped);
        r = session_apply(s, OUTBOUND, h, msg, &s->reaped, &st, &closed);
        if (r != 0)
                return r;
        if (ret_stream)
                *ret_stream = st;
        if (ret_closed)
                *ret_closed = closed;
        return 0;
}

int vbus__session_send_joined(VbusSession *s, uint32_t id, uint32_t len, uint32_t n)
{
        return vbus__session_charge_joined(s, vbus__session_get_stream(s, id), len, n);
}

int vbus__session_charge_joined(const VbusSession *s, VbusStream *st, uint32_t len, uint32_t n)
{
        int64_t cost = (int64_t)len + (int64_t)n * s->msg_charge;

        if (!st || !s->batch)
                return -EINVAL;
        if (cost > st->send_window)
                return -EAGAIN;
        st->send_window -= cost;
        if (st->state == VBUS_STREAM_OPENING)
                st->sent_before_accept += (uint64_t)cost;
        return 0;
}

VbusStream *vbus__session_take_closed(VbusSession *s)
{
        VbusStream *st = s->reaped;

        s->reaped = NULL;
        return st;
}

void vbus__session_foreach_stream(const VbusSession *s, void (*fn)(VbusStream *vs, void *data),
                                  void *data)
{
        for (uint32_t i = 0; i < s->n_table; i++)
                if (s->table[i] && s->table[i] != TOMBSTONE)
                        fn(s->table[i], data);
}
