/* SPDX-License-Identifier: MIT */
/*
 * peer: one link on the endpoint, its frames and its lifecycle (see peer.h).
 */
#include "peer.h"

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

        if (id->local)
                (void)snprintf(p->label, sizeof(p->label), "local uid %u pid %u", id->uid, id->pid);
        else if (id->domain_name[0])
                (void)snprintf(p->label, sizeof(p->label), "dom%u(%s)", id->domid, id->domain_name);
        else
                (void)snprintf(p->label, sizeof(p->label), "dom%u", id->domid);
        if (id->has_key) {
                size_t n = strlen(p->label);

                (void)snprintf(p->label + n, sizeof(p->label) - n, " %s", id->key_name);
        }
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
        list_init(&p->link);
        list_init(&p->dead_link);
        list_init(&p->dirty_link);
        list_init(&p->pending);
        list_init(&p->call_sides);
        list_init(&p->intro_calls);
        list_init(&p->publishers);
        list_init(&p->subscriptions);
        list_init(&p->grants);
        peer_make_label(p);
        if (vbus__endpoint_init(&p->ep, t, VBUS_ROLE_BROKER, b->config.max_frame,
                                b->config.max_streams, &peer_endpoint_ops, p) < 0) {
                free(p);
                return NULL;
        }
        p->serial = ++b->next_serial;
        list_add_tail(&b->peers, &p->link);
        b->n_peers++;
        b->stats.n_peers_total++;
        presence_peer(b, &p->ident, p->serial, peer_transport_name(p), true, NULL);
        return p;
}

Peer *peer_free(Peer *p)
{
        List *pos, *tmp;

        if (!p)
                return NULL;
        /* A peer is freed dead: writes to it fail, so ->closed cannot reach its own link. */
        p->dead = true;
        p->bus->stats.bytes_in_gone += p->ep.link.n_bytes_in;
        p->bus->stats.bytes_out_gone += p->ep.link.n_bytes_out;
        vbus__endpoint_deinit(&p->ep);
        list_for_each_safe(pos, tmp, &p->grants)
        {
                list_unlink(pos);
                free(pos); /* access.c's grants start with their link */
        }
        list_unlink(&p->link);
        list_unlink(&p->dead_link);
        list_unlink(&p->dirty_link);
        free(p);
        return NULL;
}

void peer_kill(Peer *p, const char *why)
{
        if (p->dead)
                return;
        p->dead = true;
        list_unlink(&p->dirty_link);
        log_info("peer %s: disconnected: %s", p->label, why);
        list_unlink(&p->link);
        p->bus->n_peers--;
        list_add_tail(&p->bus->dead, &p->dead_link);
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

const char *peer_transport_name(const Peer *p)
{
        return p->ep.link.transport.kind == VBUS_TRANSPORT_VCHAN ? "vchan" : "unix";
}

void peer_ring_sizes(const Peer *p, uint32_t *ret_in, uint32_t *ret_out)
{
        const VbusTransport *t = &p->ep.link.transport;

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

void peer_mark_dirty(Peer *p)
{
        if (!p->dead && !list_is_linked(&p->dirty_link))
                list_add_tail(&p->bus->dirty, &p->dirty_link);
}

void peer_log(Peer *p, const char *fmt, ...)
{
        uint64_t now = bus_now_us();
        char msg[512];
        va_list ap;

        if (now - p->log_window_us > 60 * 1000000ull) {
                p->log_window_us = now;
                p->log_budget = LIMIT_PEER_LOG_PER_MINUTE;
        }
        if (p->log_budget == 0)
                return;
        if (--p->log_budget == 0) {
                log_info("peer %s: further messages suppressed for a minute", p->label);
                return;
        }
        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap); /* a log line: cut short is fine */
        va_end(ap);
        log_info("peer %s: %s", p->label, msg);
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

ssize_t peer_data_room(Peer *p, uint32_t stream_id)
{
        return vbus__endpoint_data_room(&p->ep, stream_id);
}

void peer_flush(Peer *p)
{
        int r;

        if (p->dead)
                return;
        r = vbus__endpoint_flush(&p->ep);
        /* -EPIPE: the peer closed; its last frames are still read before it goes. */
        if (r < 0 && r != -EAGAIN && r != -EPIPE)
                peer_kill(p, strerror(-r));
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

static void peer_violation(Peer *p, int reason, const char *what)
{
        char msg[160];

        /* A message for the peer: cut short is fine. */
        (void)snprintf(msg, sizeof(msg), "protocol violation: %s (%s)", what,
                       vbus__frame_error_name(reason));
        peer_send_error(p, VBUS__V1__STATUS__STATUS_PROTOCOL_ERROR, msg);
        p->bus->stats.n_violations++;
        p->n_violations++;
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
        answer.peer_name = (char *)"vchand";
        r = keyring_answer_hello(p->bus->keyring, p->ep.session.session_id, m, &answer, &p->auth,
                                 proof, &why);
        if (r != 0)
                return peer_auth_refused(p, r, why);
        if (peer_send_control(p, VBUS_FRAME_HELLO, 0, 0, &answer.base) < 0)
                return 0;
        if (vbus__link_set_max_frame(&p->ep.link, p->bus->config.max_frame) < 0)
                return PEER_E_MAX_FRAME;
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
        if (!open) {
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_UNSUPPORTED,
                                  "this broker has no streams of that kind");
                return 0;
        }
        return open(p, vs, m);
}

static int peer_on_goaway(void *owner, const Vbus__V1__GoAway *m)
{
        /* The client is leaving: nothing new will be opened; streams end as they end. */
        (void)owner;
        (void)m;
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

static const VbusEndpointOps peer_endpoint_ops = {
        .hello = peer_on_hello,
        .open = peer_on_open,
        .goaway = peer_on_goaway,
        .error = peer_on_error,
        .wrote = peer_on_wrote,
};

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
