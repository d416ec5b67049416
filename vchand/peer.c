/* SPDX-License-Identifier: MIT */
/*
 * peer: one link on the endpoint, its frames and its lifecycle, and the agent sessions of a link
 * (see peer.h).
 */
#include "peer.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vbus/vbus.h>

#include "keyring.h"
#include "log.h"
#include "presence.h"
#include "vchand-limits.h"

/* Results of this file's own link-frame handlers: the peer goes, having been told why. */
enum {
        PEER_E_VERSION = PEER_E_PROTOCOL + 1, /* no common protocol version */
        PEER_E_SENT_ERROR,                    /* the peer sent ERROR */
        PEER_E_MAX_FRAME,                     /* internal: the link refused our own max_frame */
        PEER_E_SESSION_GOAWAY,                /* an agent ended its session (GOAWAY) */
        PEER_E_AUTH,                          /* channel auth refused: told with ERROR */
};

static const VbusEndpointOps peer_endpoint_ops;

static void peer_send_error(Peer *p, int status, const char *message);

static uint64_t wall_now_us(void)
{
        struct timespec ts;

        (void)clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The label is for logs: one cut short is fine, hence (void). */
static void peer_make_label(Peer *p)
{
        const Identity *id = &p->ident;
        size_t n;

        if (id->local)
                (void)snprintf(p->label, sizeof(p->label), "local uid %u pid %u", id->uid, id->pid);
        else if (id->domain_name[0])
                (void)snprintf(p->label, sizeof(p->label), "dom%u(%s)", id->domid, id->domain_name);
        else
                (void)snprintf(p->label, sizeof(p->label), "dom%u", id->domid);
        if (id->has_key) {
                n = strlen(p->label);
                (void)snprintf(p->label + n, sizeof(p->label) - n, " %s", id->key_name);
        }
        if (id->session) {
                n = strlen(p->label);
                (void)snprintf(p->label + n, sizeof(p->label) - n, " session %u", id->session);
        }
        if (id->claims.present) {
                n = strlen(p->label);
                (void)snprintf(p->label + n, sizeof(p->label) - n,
                               " (claims uid %u pid %u command %s)", id->claims.uid, id->claims.pid,
                               id->claims.command);
        }
}

static void peer_init_lists(Peer *p)
{
        list_init(&p->link);
        list_init(&p->dead_link);
        list_init(&p->dirty_link);
        list_init(&p->pending);
        list_init(&p->call_sides);
        list_init(&p->intro_calls);
        list_init(&p->grants);
        list_init(&p->publishers);
        list_init(&p->subscriptions);
        list_init(&p->session_link);
        list_init(&p->sessions);
        (void)map_init(&p->sessions_map);
}

Peer *peer_new(Bus *b, VbusTransport *t, const Identity *ident, uint32_t vchan_domid)
{
        Peer *p = calloc(1, sizeof(*p));

        if (!p)
                return NULL;
        p->bus = b;
        p->ident = *ident;
        p->vchan_domid = vchan_domid;
        p->created_us = bus_now_us();
        p->created_unix_us = wall_now_us();
        peer_init_lists(p);
        peer_make_label(p);
        if (vbus__endpoint_init(&p->ep, t, VBUS_ROLE_BROKER, b->config.max_frame,
                                b->config.max_streams, &peer_endpoint_ops, p) < 0) {
                map_deinit(&p->sessions_map);
                free(p);
                return NULL;
        }
        p->serial = ++b->next_serial;
        list_add_tail(&b->peers, &p->link);
        b->n_peers++;
        if (p->ident.local)
                b->n_local_peers++;
        b->stats.n_peers_total++;
        return p;
}

Peer *peer_free(Peer *p)
{
        if (!p)
                return NULL;
        /* A peer is freed dead: writes to it fail, so ->closed cannot reach its own link. */
        p->dead = true;
        /* Its sessions were freed before it (peer.h): none still uses its link. */
        assert(list_is_empty(&p->sessions));
        if (!p->parent) {
                p->bus->stats.bytes_in_gone += p->ep.lk->n_bytes_in;
                p->bus->stats.bytes_out_gone += p->ep.lk->n_bytes_out;
        }
        vbus__endpoint_deinit(&p->ep);
        if (p->bus->peer_gone)
                p->bus->peer_gone(p);
        /* Every stream has closed: each feature released what it charged to this peer. */
        assert(p->mem_held == 0);
        list_unlink(&p->link);
        list_unlink(&p->dead_link);
        list_unlink(&p->dirty_link);
        list_unlink(&p->session_link);
        map_deinit(&p->sessions_map);
        free(p);
        return NULL;
}

/* Moves one peer into the dead list; a session leaves its link's tables. */
static void peer_bury(Peer *p, const char *why, bool quiet)
{
        p->dead = true;
        list_unlink(&p->dirty_link);
        /* An agent can start and end sessions at will: their lines share its link's budget. */
        if (!quiet && p->parent)
                peer_log(p->parent, "session %u: ended: %s", p->ident.session, why);
        else if (!quiet)
                peer_log(p, "disconnected: %s", why);
        if (p->parent) {
                list_unlink(&p->session_link);
                map_remove(&p->parent->sessions_map, &p->session_entry);
                p->parent->n_sessions--;
        } else {
                list_unlink(&p->link);
                p->bus->n_peers--;
                if (p->ident.local)
                        p->bus->n_local_peers--;
        }
        list_add_tail(&p->bus->dead, &p->dead_link);
        if (p->announced)
                presence_peer(p->bus, &p->ident, p->serial, peer_transport_name(p), false, why);
}

void peer_kick(Peer *p, const char *reason)
{
        char why[256];

        if (p->dead)
                return;
        /* A message for the peer and the log: cut short is fine. */
        (void)snprintf(why, sizeof(why), "kicked by an admin: %s", reason);
        peer_send_error(p, VBUS__V1__STATUS__STATUS_PERMISSION_DENIED, why);
        p->bus->stats.n_kicks++;
        peer_kill(p, why);
}

void peer_announce(Peer *p)
{
        if (p->announced || p->dead)
                return;
        p->announced = true;
        presence_peer(p->bus, &p->ident, p->serial, peer_transport_name(p), true, NULL);
}

void peer_deny(Peer *p, const char *why)
{
        if (p->dead)
                return;
        peer_send_error(p, VBUS__V1__STATUS__STATUS_PERMISSION_DENIED, why);
        peer_kill(p, why);
}

const char *peer_transport_name(const Peer *p)
{
        return p->ep.lk->transport.kind == VBUS_TRANSPORT_VCHAN ? "vchan" : "unix";
}

void peer_ring_sizes(const Peer *p, uint32_t *ret_in, uint32_t *ret_out)
{
        const VbusTransport *t = &p->ep.lk->transport;

        if (t->kind == VBUS_TRANSPORT_VCHAN && t->vchan) {
                *ret_in = (uint32_t)vbus__vchan_get_read_size(t->vchan);
                *ret_out = (uint32_t)vbus__vchan_get_write_size(t->vchan);
        } else {
                *ret_in = *ret_out = VBUS_TRANSPORT_UNIX_BUFFER;
        }
}

uint32_t peer_n_streams(const Peer *p)
{
        return p->ep.session.n_streams;
}

int peer_foreach(Bus *b, int (*fn)(Peer *p, void *userdata), void *userdata)
{
        for (List *pos = b->peers.next; pos != &b->peers; pos = pos->next) {
                Peer *p = list_entry(pos, Peer, link);
                int r = fn(p, userdata);

                if (r != 0)
                        return r;
                for (List *q = p->sessions.next; q != &p->sessions; q = q->next) {
                        r = fn(list_entry(q, Peer, session_link), userdata);
                        if (r != 0)
                                return r;
                }
        }
        return 0;
}

void peer_kill(Peer *p, const char *why)
{
        uint32_t n = p->n_sessions;

        if (p->dead)
                return;
        /* A link's sessions go first, so that they are freed before the link they write on. */
        while (!list_is_empty(&p->sessions))
                peer_bury(list_entry(p->sessions.next, Peer, session_link), why, true);
        if (n > 0)
                log_info("peer %s: its %u agent sessions go with it", p->label, n);
        peer_bury(p, why, false);
}

void peer_mark_dirty(Peer *p)
{
        if (!p->dead && !list_is_linked(&p->dirty_link))
                list_add_tail(&p->bus->dirty, &p->dirty_link);
}

bool peer_log_allowed(Bus *b, uint64_t key, const char *what)
{
        uint32_t suppressed;

        if (!ratelimit_allow(&b->logs, key, bus_now_us(), &suppressed))
                return false;
        if (suppressed)
                log_info("%s%u: %u lines about it suppressed in the last minute", what,
                         (uint32_t)key, suppressed);
        return true;
}

void peer_log(Peer *p, const char *fmt, ...)
{
        uint64_t key = p->ident.local ? ratelimit_key_local(p->ident.pid)
                                      : ratelimit_key_domain(p->ident.domid);
        char msg[512];
        va_list ap;

        if (!peer_log_allowed(p->bus, key, p->ident.local ? "pid" : "dom"))
                return;
        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap); /* a log line: cut short is fine */
        va_end(ap);
        log_info("peer %s: %s", p->label, msg);
}

void peer_retire(Peer *p)
{
        Vbus__V1__GoAway g = VBUS__V1__GO_AWAY__INIT;

        if (p->retiring || p->dead)
                return;
        p->retiring = true;
        p->retire_deadline_us = bus_now_us() + (uint64_t)LIMIT_RETIRE_GRACE_MS * 1000u;
        peer_log(p, "stream ids used up: renewing its link once its calls end");
        g.status = VBUS__V1__STATUS__STATUS_UNAVAILABLE;
        g.message = (char *)"the broker's stream ids toward you are used up: reconnect";
        g.last_stream_id = p->ep.session.last_remote_id;
        (void)peer_send_control(p, VBUS_FRAME_GOAWAY, 0, 0, &g.base);
}

bool peer_has_ids(const Peer *p)
{
        uint32_t next = vbus__session_next_id(&p->ep.session);

        return next != 0 && next < p->bus->config.stream_id_limit;
}

void peer_retire_check(Peer *p, uint64_t now_us)
{
        if (!p->retiring || p->dead)
                return;
        if (p->ep.session.n_local_streams == 0 || now_us >= p->retire_deadline_us)
                peer_kill(p, "stream ids used up: link renewed");
}

/* --- writing ----------------------------------------------------------------------------- */

/*
 * A write to @p failed with @r. -ENOBUFS (its backlog is full) and hard link errors are @p's
 * doing: it is dropped. The endpoint's and the session's refusals (-EINVAL, -EMSGSIZE, -E2BIG,
 * -ENOMEM, -EAGAIN, -ENOENT) wrote nothing and leave the link as it was: they are the writer's
 * to handle. Return: what the writer is told.
 */
static int peer_write_failed(Peer *p, int r)
{
        /* A session shares its link: a link that is not read, or broken, is its agent's doing. */
        p = peer_link_owner(p);
        switch (r) {
        case -ENOBUFS:
                peer_kill(p, "does not read its link (control backlog full)");
                return -EPIPE;
        case -EPIPE: /* the peer closed: what it sent before that is still read */
        case -EAGAIN:
        case -EINVAL:
        case -EMSGSIZE:
        case -E2BIG:
                return r;
        case -ENOENT:
                return -EPIPE;
        case -ENOMEM:
                return -EINVAL;
        default:
                peer_kill(p, strerror(-r));
                return -EPIPE;
        }
}

int peer_send_control(Peer *p, uint8_t type, uint8_t flags, uint32_t stream_id,
                      const ProtobufCMessage *msg)
{
        int r;

        if (p->dead)
                return -EPIPE;
        r = vbus__endpoint_send_control(&p->ep, type, flags, stream_id, msg);
        return r < 0 ? peer_write_failed(p, r) : 0;
}

int peer_send_end(Peer *p, uint8_t type, uint32_t stream_id, int status, const char *message)
{
        int r;

        if (p->dead)
                return -EPIPE;
        r = vbus__endpoint_send_end(&p->ep, type, stream_id, status, message);
        return r < 0 ? peer_write_failed(p, r) : 0;
}

int peer_reject(Peer *p, uint32_t stream_id, int status, const char *message)
{
        Vbus__V1__Reject rj = VBUS__V1__REJECT__INIT;

        rj.status = status;
        rj.message = (char *)message;
        return peer_send_control(p, VBUS_FRAME_REJECT, 0, stream_id, &rj.base);
}

int peer_open(Peer *p, const Vbus__V1__Open *m, const VbusStreamOps *ops, void *obj,
              uint32_t *ret_id)
{
        int r;

        if (p->dead)
                return -EPIPE;
        r = vbus__endpoint_open(&p->ep, m, ops, obj, ret_id);
        return r < 0 ? peer_write_failed(p, r) : 0;
}

int peer_send_data(Peer *p, uint32_t stream_id, uint8_t flags, const struct iovec *pieces,
                   size_t n_pieces)
{
        int r;

        if (p->dead)
                return -EPIPE;
        r = vbus__endpoint_send_data(&p->ep, stream_id, flags, pieces, n_pieces);
        return r < 0 ? peer_write_failed(p, r) : 0;
}

bool peer_batches(const Peer *p)
{
        return !p->dead && vbus__session_batch(&p->ep.session);
}

bool peer_batch_joins(Peer *p, uint32_t stream_id, uint64_t key, size_t n)
{
        return vbus__endpoint_batch_joins(&p->ep, stream_id, VBUS_FLAG_META, key, n);
}

size_t peer_batch_room(Peer *p, uint32_t stream_id, uint64_t key, size_t n_prefix)
{
        return p->dead ? 0
                       : vbus__endpoint_batch_room(&p->ep, stream_id, VBUS_FLAG_META, key,
                                                   n_prefix);
}

bool peer_batch_joins_records(Peer *p, uint32_t stream_id, uint64_t key, size_t n_bytes)
{
        return vbus__endpoint_batch_joins_records(&p->ep, stream_id, VBUS_FLAG_META, key, n_bytes);
}

int peer_batch_add(Peer *p, uint32_t stream_id, uint64_t key, const void *prefix, size_t n_prefix,
                   const void *data, size_t n)
{
        int r;

        if (p->dead)
                return -EPIPE;
        r = vbus__endpoint_batch_add(&p->ep, stream_id, VBUS_FLAG_META, key, prefix, n_prefix, data,
                                     n);
        return r < 0 ? peer_write_failed(p, r) : 0;
}

int peer_batch_add_records(Peer *p, uint32_t stream_id, uint64_t key, const void *prefix,
                           size_t n_prefix, const void *records, size_t n_bytes, uint32_t n)
{
        int r;

        if (p->dead)
                return -EPIPE;
        r = vbus__endpoint_batch_add_records(&p->ep, stream_id, VBUS_FLAG_META, key, prefix,
                                             n_prefix, records, n_bytes, n);
        return r < 0 ? peer_write_failed(p, r) : 0;
}

ssize_t peer_data_room(Peer *p, uint32_t stream_id)
{
        return vbus__endpoint_data_room(&p->ep, stream_id);
}

uint32_t peer_msg_charge(const Peer *p)
{
        return vbus__session_msg_charge(&p->ep.session);
}

void peer_flush(Peer *p)
{
        int r;

        if (p->dead)
                return;
        r = vbus__endpoint_flush(&p->ep);
        /* -EPIPE: the peer closed; its last frames are still read before it goes. */
        if (r < 0 && r != -EAGAIN && r != -EPIPE)
                peer_kill(peer_link_owner(p), strerror(-r));
}

/* --- link frames ------------------------------------------------------------------------- */

/* Tells the peer why it is being dropped, as far as its link takes it. */
static void peer_send_error(Peer *p, int status, const char *message)
{
        Vbus__V1__Error e = VBUS__V1__ERROR__INIT;

        e.status = status;
        e.message = (char *)message;
        (void)peer_send_control(p, VBUS_FRAME_ERROR, 0, 0, &e.base);
        if (!p->dead)
                (void)vbus__endpoint_flush(&p->ep);
}

/*
 * Ends agent session @s on its link's behalf: GOAWAY{@status, @message} for the session (which
 * the agent takes as the end of it and of its streams), then drops it alone.
 */
static void peer_end_session(Peer *s, int status, const char *message)
{
        Vbus__V1__GoAway g = VBUS__V1__GO_AWAY__INIT;

        g.status = status;
        g.message = (char *)message;
        g.last_stream_id = s->ep.session.last_remote_id;
        if (vbus__session_is_ready(&s->ep.session))
                (void)peer_send_control(s, VBUS_FRAME_GOAWAY, 0, 0, &g.base);
        else if (!s->dead && !s->parent->dead &&
                 vbus__endpoint_send_sessionless(&s->parent->ep, VBUS_FRAME_GOAWAY,
                                                 s->ident.session, &g.base) < 0)
                peer_kill(s->parent, "does not read its link (control backlog full)");
        peer_kill(s, message);
}

static void peer_violation(Peer *p, int reason, const char *what)
{
        char msg[160];

        /* A message for the peer: cut short is fine. */
        (void)snprintf(msg, sizeof(msg), "protocol violation: %s (%s)", what,
                       vbus__frame_error_name(reason));
        peer_send_error(p, VBUS__V1__STATUS__STATUS_PROTOCOL_ERROR, msg);
        p->bus->stats.n_violations++;
        p->n_violations++;
        if (p->parent)
                peer_end_session(p, VBUS__V1__STATUS__STATUS_PROTOCOL_ERROR, msg);
        else
                peer_kill(p, msg);
}

/* A HELLO step of channel auth (keyring.h) refused the peer: it is told why, and goes. */
static int peer_auth_refused(Peer *p, int result, const char *why)
{
        peer_send_error(p,
                        result == KEYRING_MALFORMED ? VBUS__V1__STATUS__STATUS_PROTOCOL_ERROR
                                                    : VBUS__V1__STATUS__STATUS_PERMISSION_DENIED,
                        why);
        peer_log(p, "%s", why);
        return PEER_E_AUTH;
}

/* The client's proof HELLO (the session let it through: protocol.md 3.1). */
static int peer_on_auth_hello(Peer *p, const Vbus__V1__Hello *m)
{
        const char *why = NULL;
        int r = keyring_check_proof(p->bus->keyring, &p->auth, m, &p->ident, &why);

        if (r != 0)
                return peer_auth_refused(p, r, why);
        peer_make_label(p);
        peer_announce(p);
        return 0;
}

static int peer_on_hello(void *owner, const Vbus__V1__Hello *m)
{
        Vbus__V1__Hello answer = VBUS__V1__HELLO__INIT;
        uint8_t proof[VBUS_AUTH_PROOF_SIZE];
        const char *why = NULL;
        Peer *p = owner;
        int r;

        if (vbus__session_is_ready(&p->ep.session))
                return peer_on_auth_hello(p, m);
        if (m->version_min > VBUS_PROTOCOL_VERSION || m->version_max < VBUS_PROTOCOL_VERSION) {
                peer_send_error(p, VBUS__V1__STATUS__STATUS_UNSUPPORTED,
                                "this broker speaks protocol version 1 only");
                return PEER_E_VERSION;
        }
        answer.version_min = VBUS_PROTOCOL_VERSION;
        answer.version_max = VBUS_PROTOCOL_VERSION;
        answer.version = VBUS_PROTOCOL_VERSION;
        answer.max_frame = p->bus->config.max_frame;
        answer.features = VBUS_FEATURE_RETAIN | VBUS_FEATURE_DESCRIBE |
                          VBUS_FEATURE_MESSAGE_CHARGE | VBUS_FEATURE_BATCH;
        answer.peer_name = (char *)"vchand";
        /* Claims are an agent's, about one of its sessions (protocol.md 7). */
        if (m->claims && !p->parent)
                return PEER_E_PROTOCOL;
        r = keyring_answer_hello(p->bus->keyring, m, &answer, &p->auth, proof, &why);
        if (r != 0)
                return peer_auth_refused(p, r, why);
        if (peer_send_control(p, VBUS_FRAME_HELLO, 0, 0, &answer.base) < 0)
                return 0;
        /* A session's frames are read by its link, set up by the link's own HELLO. */
        if (!p->parent && vbus__link_set_max_frame(&p->ep.link, p->bus->config.max_frame) < 0)
                return PEER_E_MAX_FRAME;
        /* Without AUTH on both sides no proof HELLO may follow: the identity is final. */
        if (!(answer.features & VBUS_FEATURE_AUTH))
                peer_announce(p);
        return 0;
}

/* An OPEN goes to the feature of its kind (the session has checked the kind is known). */
static int peer_on_open(void *owner, VbusStream *vs, const Vbus__V1__Open *m)
{
        Peer *p = owner;
        BusOpenFn open = (unsigned int)m->kind < BUS_KINDS ? p->bus->open[m->kind] : NULL;

        if (p->bus->stopping || p->ep.session.goaway_sent) {
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_SHUTTING_DOWN,
                                  "the broker is shutting down");
                return 0;
        }
        if (keyring_requires_key(p->bus->keyring) && !p->ident.has_key)
                return peer_auth_refused(p, KEYRING_DENIED,
                                         "this broker requires channel auth: prove a key listed "
                                         "in its keyring at HELLO");
        /* No proof HELLO may come after an OPEN: the identity is final. */
        peer_announce(p);
        if (!open) {
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_UNSUPPORTED,
                                  "this broker has no streams of that kind");
                return 0;
        }
        return open(p, vs, m);
}

static int peer_on_goaway(void *owner, const Vbus__V1__GoAway *m)
{
        Peer *p = owner;

        (void)m;
        /* An agent session ends with its GOAWAY (protocol.md 7), its streams with it. */
        if (p->parent)
                return PEER_E_SESSION_GOAWAY;
        /* The client is leaving: nothing new will be opened; streams end as they end. */
        return 0;
}

static int peer_on_error(void *owner, const Vbus__V1__Error *m)
{
        peer_log(owner, "sent ERROR %s: %.200s", vbus_status_name(m->status), m->message);
        return PEER_E_SENT_ERROR;
}

static void peer_on_wrote(void *owner)
{
        peer_mark_dirty(owner);
}

static int peer_on_foreign(void *owner, const VbusFrame *f, const VbusControl *ctl);

static const VbusEndpointOps peer_endpoint_ops = {
        .hello = peer_on_hello,
        .open = peer_on_open,
        .goaway = peer_on_goaway,
        .error = peer_on_error,
        .wrote = peer_on_wrote,
        .foreign = peer_on_foreign,
};

/* --- agent sessions ---------------------------------------------------------------------- */

static void session_key(uint8_t key[4], uint32_t id)
{
        key[0] = (uint8_t)id;
        key[1] = (uint8_t)(id >> 8);
        key[2] = (uint8_t)(id >> 16);
        key[3] = (uint8_t)(id >> 24);
}

static Peer *peer_find_session(Peer *link, uint32_t id)
{
        uint8_t key[4];
        MapEntry *e;

        session_key(key, id);
        e = map_find(&link->sessions_map, (const char *)key, sizeof(key));
        return e ? container_of(e, Peer, session_entry) : NULL;
}

/* A new session peer of @link for session @id, with the agent's @claims (may be NULL). */
static Peer *peer_new_session(Peer *link, uint32_t id, const Vbus__V1__Claims *claims)
{
        Bus *b = link->bus;
        Peer *s = calloc(1, sizeof(*s));

        if (!s)
                return NULL;
        s->bus = b;
        s->parent = link;
        s->ident = link->ident;
        s->ident.session = id;
        s->ident.claims = (IdentityClaims){0};
        if (claims) {
                s->ident.claims.present = true;
                s->ident.claims.uid = claims->uid;
                s->ident.claims.pid = claims->pid;
                /* Checked by the link (at most 64 bytes, no NUL). */
                (void)snprintf(s->ident.claims.command, sizeof(s->ident.claims.command), "%s",
                               claims->command ? claims->command : "");
        }
        s->vchan_domid = UINT32_MAX; /* the link's peer stands for the domain */
        s->created_us = bus_now_us();
        peer_init_lists(s);
        peer_make_label(s);
        session_key(s->session_key, id);
        if (vbus__endpoint_init_session(&s->ep, link->ep.lk, VBUS_ROLE_BROKER, id,
                                        b->config.max_frame, b->config.max_streams,
                                        &peer_endpoint_ops, s) < 0 ||
            map_add(&link->sessions_map, &s->session_entry, (const char *)s->session_key,
                    sizeof(s->session_key)) < 0) {
                vbus__endpoint_deinit(&s->ep);
                map_deinit(&s->sessions_map);
                free(s);
                return NULL;
        }
        s->serial = ++b->next_serial;
        list_add_tail(&link->sessions, &s->session_link);
        link->n_sessions++;
        b->stats.n_peers_total++;
        s->created_unix_us = wall_now_us();
        return s;
}

/* Refuses session @id of @link before anything is allocated for it. Return: 0 or a result. */
static int peer_refuse_session(Peer *link, uint32_t id, int status, const char *message)
{
        Vbus__V1__GoAway g = VBUS__V1__GO_AWAY__INIT;
        int r;

        g.status = status;
        g.message = (char *)message;
        r = vbus__endpoint_send_sessionless(&link->ep, VBUS_FRAME_GOAWAY, id, &g.base);
        if (r == -ENOBUFS)
                return r;
        peer_log(link, "session %u refused: %s", id, message);
        return 0;
}

static int peer_session_failed(Peer *s, int r);

/* A frame of session @id that has no peer here: a new session's HELLO, or a late frame. */
static int peer_start_session(Peer *link, const VbusFrame *f, const VbusControl *ctl)
{
        uint32_t id = f->header.session_id;
        char msg[96];
        Peer *s;
        int r;

        /* Ids strictly increase: a lower one was a session that has ended (its frames may cross
         * our GOAWAY), or one we refused. */
        if (id <= link->last_session_id)
                return 0;
        if (f->header.type != VBUS_FRAME_HELLO || !vbus__session_is_ready(&link->ep.session))
                return PEER_E_PROTOCOL;
        link->last_session_id = id;
        if (link->bus->stopping)
                return peer_refuse_session(link, id, VBUS__V1__STATUS__STATUS_SHUTTING_DOWN,
                                           "the broker is shutting down");
        if (link->n_sessions >= link->bus->config.max_sessions) {
                (void)snprintf(msg, sizeof(msg), "too many sessions on this link (max_sessions %u)",
                               link->bus->config.max_sessions);
                return peer_refuse_session(link, id, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                           msg);
        }
        s = peer_new_session(link, id, ((const Vbus__V1__Hello *)ctl->msg)->claims);
        if (!s)
                return peer_refuse_session(link, id, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                           "out of memory");
        peer_log(link, "session %u: started (%u on the link)%s", id, link->n_sessions,
                 strstr(s->label, " (claims") ? strstr(s->label, " (claims") : "");
        r = vbus__endpoint_dispatch(&s->ep, f, ctl);
        return r == 0 ? 0 : peer_session_failed(s, r);
}

/*
 * Session @s's frame failed with @r: the session pays, alone, unless the link itself failed.
 * Return: 0, or a result for the link's peer_process().
 */
static int peer_session_failed(Peer *s, int r)
{
        switch (r) {
        case -EPROTO:
                peer_violation(s, s->ep.violation,
                               s->ep.bad_type ? vbus__frame_type_name(s->ep.bad_type)
                                              : "bad frame");
                return 0;
        case PEER_E_PROTOCOL:
                peer_violation(s, VBUS_FRAME_E_SEMANTIC, "a rule of the broker's");
                return 0;
        case PEER_E_SESSION_GOAWAY:
                peer_kill(s, "session ended by its agent");
                return 0;
        case PEER_E_SENT_ERROR:
        case PEER_E_VERSION:
                peer_end_session(s, VBUS__V1__STATUS__STATUS_UNAVAILABLE, "session ended");
                return 0;
        case PEER_E_AUTH:
                /* Told with ERROR already: a session's auth is its own (the link's stays). */
                peer_end_session(s, VBUS__V1__STATUS__STATUS_PERMISSION_DENIED,
                                 "channel auth refused");
                return 0;
        case -ENOMEM:
                peer_end_session(s, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED, "out of memory");
                return 0;
        default:
                /* -EPIPE, -ENOBUFS, a transport error: the shared link's, so the link's. */
                return r;
        }
}

static int peer_on_foreign(void *owner, const VbusFrame *f, const VbusControl *ctl)
{
        Peer *link = owner;
        Peer *s;
        int r;

        if (link->parent || link->bus->config.max_sessions == 0)
                return PEER_E_PROTOCOL; /* sessions are off, or (cannot happen) nested */
        s = peer_find_session(link, f->header.session_id);
        if (!s)
                return peer_start_session(link, f, ctl);
        r = vbus__endpoint_dispatch(&s->ep, f, ctl);
        return r == 0 ? 0 : peer_session_failed(s, r);
}

/* --- reading ----------------------------------------------------------------------------- */

/* What vbus__endpoint_process() returned instead of a frame: the peer goes, saying why. */
static void peer_process_failed(Peer *p, int r)
{
        switch (r) {
        case -EPROTO:
                peer_violation(p, p->ep.violation,
                               p->ep.bad_type ? vbus__frame_type_name(p->ep.bad_type)
                                              : "bad frame");
                break;
        case PEER_E_PROTOCOL:
                peer_violation(p, VBUS_FRAME_E_SEMANTIC, "a rule of the broker's");
                break;
        case -EPIPE:
                peer_kill(p, p->ep.violation ? "closed inside a frame" : "closed");
                break;
        case -ENOBUFS:
                peer_kill(p, "does not read its link");
                break;
        case PEER_E_VERSION:
                peer_kill(p, "no common protocol version");
                break;
        case PEER_E_SENT_ERROR:
                peer_kill(p, "peer sent ERROR");
                break;
        case PEER_E_MAX_FRAME:
                peer_kill(p, "internal: bad max_frame");
                break;
        case PEER_E_AUTH:
                peer_kill(p, "channel auth refused");
                break;
        default:
                peer_kill(p, r < 0 ? strerror(-r) : "internal: unknown result");
                break;
        }
}

void peer_process(Peer *p)
{
        bool first = true, write_epipe = false;
        int r = 0, i = 0;

        /* One frame per call, so that a peer dropped by a frame (its own, or a write to it on
         * another's behalf) is not read any further. */
        while (!p->dead && i < LIMIT_FRAMES_PER_WAKEUP) {
                r = vbus__endpoint_process(&p->ep, first, 1);
                first = false;
                if (r == 1) {
                        i++;
                        write_epipe = false;
                        continue;
                }
                /* -EPIPE can come from the endpoint's own answer (PING, or REJECT of an OPEN
                 * over the stream limit) to a peer that has closed: what it sent before that is
                 * still read. At the end of what it sent, the read says -EPIPE again. */
                if (r == -EPIPE && !write_epipe) {
                        write_epipe = true;
                        continue;
                }
                break;
        }
        if (p->dead)
                return;
        p->more = i == LIMIT_FRAMES_PER_WAKEUP;
        if (r != 0 && r != 1)
                peer_process_failed(p, r);
}
