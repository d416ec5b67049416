/* SPDX-License-Identifier: MIT */
/*
 * peer: reading and answering the frames of one link (see peer.h).
 */
#include "peer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vbus/vbus.h>

#include "introspect.h"
#include "log.h"
#include "pubsub.h"
#include "rpc.h"
#include "vchand-limits.h"

static void peer_make_label(Peer *p)
{
        const Identity *id = &p->ident;

        if (id->local)
                snprintf(p->label, sizeof(p->label), "local uid %u pid %u", id->uid, id->pid);
        else if (id->domain_name[0])
                snprintf(p->label, sizeof(p->label), "dom%u(%s)", id->domid, id->domain_name);
        else
                snprintf(p->label, sizeof(p->label), "dom%u", id->domid);
}

static const VbusEndpointOps peer_endpoint_ops;

Peer *peer_new(Broker *b, VbusTransport *t, const Identity *ident, uint32_t vchan_domid)
{
        Peer *p = calloc(1, sizeof(*p));

        if (!p)
                return NULL;
        p->broker = b;
        p->serial = ++b->next_serial;
        p->ident = *ident;
        p->vchan_domid = vchan_domid;
        p->created_us = broker_now_us();
        list_init(&p->link);
        list_init(&p->dead_link);
        list_init(&p->dirty_link);
        list_init(&p->streams);
        list_init(&p->pending);
        peer_make_label(p);
        if (vbus__endpoint_init(&p->ep, t, VBUS_ROLE_BROKER, b->config.max_frame,
                                b->config.max_streams, &peer_endpoint_ops, p) < 0) {
                free(p);
                return NULL;
        }
        return p;
}

/* Closes every stream of the peer: subscriptions leave the router, queues are released. */
static void peer_close_streams(Peer *p)
{
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &p->streams)
        {
                Stream *s = list_entry(pos, Stream, link);

                pubsub_close(p, s);
        }
}

void peer_free(Peer *p)
{
        if (!p)
                return;
        peer_close_streams(p);
        vbus__endpoint_deinit(&p->ep);
        free(p);
}

void peer_log(Peer *p, const char *fmt, ...)
{
        uint64_t now = broker_now_us();
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
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        log_info("peer %s: %s", p->label, msg);
}

/* A write to @p failed: drop @p if the failure is its doing (it does not read its link). */
static int peer_write_failed(Peer *p, int r)
{
        if (r == -ENOBUFS)
                broker_kill_peer(p->broker, p, "does not read its link (control backlog full)");
        else if (r != -EPIPE && r != -EINVAL && r != -ENOMEM && r != -EAGAIN && r != -E2BIG &&
                 r != -ENOENT)
                broker_kill_peer(p->broker, p, strerror(-r));
        return r;
}

int peer_send_control(Peer *p, uint8_t type, uint8_t flags, uint32_t stream_id,
                      const ProtobufCMessage *msg)
{
        int r;

        if (p->dead)
                return -EPIPE;
        r = vbus__endpoint_send_control(&p->ep, type, flags, stream_id, msg);
        /* -EPIPE: the peer closed; keep reading what it sent before that. */
        return r < 0 ? peer_write_failed(p, r) : 0;
}

void peer_reject(Peer *p, uint32_t stream_id, int status, const char *message)
{
        Vbus__V1__Reject rj = VBUS__V1__REJECT__INIT;

        rj.status = status;
        rj.message = (char *)message;
        (void)peer_send_control(p, VBUS_FRAME_REJECT, 0, stream_id, &rj.base);
}

void peer_reset_stream(Peer *p, uint32_t stream_id, int status, const char *message)
{
        Vbus__V1__End e = VBUS__V1__END__INIT;

        e.status = status;
        e.message = (char *)message;
        (void)peer_send_control(p, VBUS_FRAME_RESET, 0, stream_id, &e.base);
}

size_t peer_max_payload(Peer *p)
{
        return vbus__endpoint_max_payload(&p->ep);
}

ssize_t peer_data_room(Peer *p, uint32_t stream_id)
{
        return vbus__endpoint_data_room(&p->ep, stream_id);
}

int peer_send_data(Peer *p, uint32_t stream_id, uint8_t flags, const struct iovec *pieces,
                   size_t n_pieces)
{
        int r;

        if (p->dead)
                return -EPIPE;
        r = vbus__endpoint_send_data(&p->ep, stream_id, flags, pieces, n_pieces);
        if (r == -ENOENT)
                return -EPIPE;
        return r < 0 ? peer_write_failed(p, r) : 0;
}

static void peer_violation(Peer *p, int reason, const char *what)
{
        Vbus__V1__Error e = VBUS__V1__ERROR__INIT;
        char msg[160];

        snprintf(msg, sizeof(msg), "protocol violation: %s (%s)", what,
                 vbus__frame_error_name(reason));
        e.status = VBUS__V1__STATUS__STATUS_PROTOCOL_ERROR;
        e.message = msg;
        (void)peer_send_control(p, VBUS_FRAME_ERROR, 0, 0, &e.base);
        (void)vbus__endpoint_flush(&p->ep);
        p->broker->stats.n_violations++;
        broker_kill_peer(p->broker, p, msg);
}

/* Results of the endpoint ops below that end the link (above any frame count). */
enum {
        PEER_E_VERSION = 0x1000, /* no common protocol version: the peer was told */
        PEER_E_SENT_ERROR,       /* the peer sent ERROR */
        PEER_E_MAX_FRAME,        /* internal: the link refused our own max_frame */
};

static int peer_on_hello(void *owner, const Vbus__V1__Hello *m)
{
        Vbus__V1__Hello answer = VBUS__V1__HELLO__INIT;
        Peer *p = owner;
        Broker *b = p->broker;

        if (m->version_min > VBUS_PROTOCOL_VERSION || m->version_max < VBUS_PROTOCOL_VERSION) {
                Vbus__V1__Error e = VBUS__V1__ERROR__INIT;

                e.status = VBUS__V1__STATUS__STATUS_UNSUPPORTED;
                e.message = (char *)"this broker speaks protocol version 1 only";
                (void)peer_send_control(p, VBUS_FRAME_ERROR, 0, 0, &e.base);
                (void)vbus__endpoint_flush(&p->ep);
                return PEER_E_VERSION;
        }
        answer.version_min = VBUS_PROTOCOL_VERSION;
        answer.version_max = VBUS_PROTOCOL_VERSION;
        answer.version = VBUS_PROTOCOL_VERSION;
        answer.max_frame = b->config.max_frame;
        answer.peer_name = (char *)"vchand";
        if (peer_send_control(p, VBUS_FRAME_HELLO, 0, 0, &answer.base) < 0)
                return 0;
        if (vbus__link_set_max_frame(&p->ep.link, b->config.max_frame) < 0)
                return PEER_E_MAX_FRAME;
        return 0;
}

static int peer_on_open(void *owner, VbusStream *vs, const Vbus__V1__Open *m)
{
        Vbus__V1__Reject rj = VBUS__V1__REJECT__INIT;
        Peer *p = owner;

        if (p->broker->stopping || p->ep.session.goaway_sent) {
                rj.status = VBUS__V1__STATUS__STATUS_SHUTTING_DOWN;
                rj.message = (char *)"the broker is shutting down";
        } else if (m->kind == VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH ||
                   m->kind == VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE) {
                pubsub_open(p, vs, m);
                return 0;
        } else if (m->kind == VBUS__V1__STREAM_KIND__STREAM_KIND_SERVE) {
                rpc_open_serve(p, vs, m);
                return 0;
        } else {
                rpc_open_call(p, vs, m);
                return 0;
        }
        (void)peer_send_control(p, VBUS_FRAME_REJECT, 0, vs->id, &rj.base);
        return 0;
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
        Peer *p = owner;

        broker_mark_dirty(p->broker, p);
}

static const VbusEndpointOps peer_endpoint_ops = {
        .hello = peer_on_hello,
        .open = peer_on_open,
        .goaway = peer_on_goaway,
        .error = peer_on_error,
        .wrote = peer_on_wrote,
};

/* --- stream frames (by kind) ------------------------------------------------------------- */

static int stream_on_accept(void *obj, VbusStream *vs, const Vbus__V1__Accept *m)
{
        Stream *s = obj;

        (void)vs;
        if (s->call)
                rpc_accept(s->peer, s, m);
        return 0;
}

static int stream_on_reject(void *obj, VbusStream *vs, const Vbus__V1__Reject *m)
{
        Stream *s = obj;

        (void)vs;
        if (s->call)
                rpc_reject(s->peer, s, m->status, m->message);
        return 0;
}

static int stream_on_reset(void *obj, VbusStream *vs, const Vbus__V1__End *m)
{
        Stream *s = obj;

        (void)vs;
        if (s->call)
                rpc_reset(s->peer, s, m->status, m->message);
        return 0;
}

static int stream_on_data(void *obj, VbusStream *vs, const VbusFrame *f)
{
        Stream *s = obj;
        Peer *p = s->peer;

        (void)vs;
        if (s->kind == VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH)
                pubsub_data(p, s, f);
        else if (s->call)
                rpc_data(p, s, f);
        else if (s->intro)
                introspect_data(p, s, f);
        else
                /* A subscriber sends no DATA; the window rule already bounded it. */
                peer_reset_stream(p, f->header.stream_id, VBUS__V1__STATUS__STATUS_INVALID_ARGUMENT,
                                  "this stream carries no data from you");
        return 0;
}

static int stream_on_end(void *obj, VbusStream *vs, const Vbus__V1__End *m)
{
        Stream *s = obj;
        Peer *p = s->peer;

        if (s->call) {
                rpc_end(p, s, m->status, m->message);
                return 0;
        }
        if (s->intro) {
                introspect_end(p, s);
                return 0;
        }
        /* The client ends its side: the broker ends its side at once (unless it has). */
        if (!vs->local_ended) {
                Vbus__V1__End e = VBUS__V1__END__INIT;

                e.status = VBUS__V1__STATUS__STATUS_OK;
                (void)peer_send_control(p, VBUS_FRAME_END, 0, vs->id, &e.base);
        }
        return 0;
}

static void stream_on_closed(void *obj, VbusStream *vs)
{
        Stream *s = obj;

        (void)vs;
        pubsub_close(s->peer, s);
}

const VbusStreamOps peer_stream_ops = {
        .accept = stream_on_accept,
        .reject = stream_on_reject,
        .data = stream_on_data,
        .end = stream_on_end,
        .reset = stream_on_reset,
        .closed = stream_on_closed,
};

/* --- reading ----------------------------------------------------------------------------- */

/* What vbus__endpoint_process() returned, other than a frame: drop the peer, saying why. */
static void peer_process_failed(Peer *p, int r)
{
        Broker *b = p->broker;

        switch (r) {
        case -EPROTO:
                peer_violation(p, p->ep.violation,
                               p->ep.bad_type ? vbus__frame_type_name(p->ep.bad_type)
                                              : "bad frame");
                break;
        case -EPIPE:
                broker_kill_peer(b, p, p->ep.violation ? "closed inside a frame" : "closed");
                break;
        case -ENOBUFS:
                broker_kill_peer(b, p, "does not read its link");
                break;
        case PEER_E_VERSION:
                broker_kill_peer(b, p, "no common protocol version");
                break;
        case PEER_E_SENT_ERROR:
                broker_kill_peer(b, p, "peer sent ERROR");
                break;
        case PEER_E_MAX_FRAME:
                broker_kill_peer(b, p, "internal: bad max_frame");
                break;
        default:
                broker_kill_peer(b, p, r < 0 ? strerror(-r) : "internal: unknown result");
                break;
        }
}

void peer_process(Peer *p)
{
        int r = 0, i;

        /* One frame per call, so that a peer dropped by a frame (its own, or one that wrote to
         * it) is not read further. */
        for (i = 0; !p->dead && i < LIMIT_FRAMES_PER_WAKEUP; i++) {
                r = vbus__endpoint_process(&p->ep, i == 0, 1);
                if (r != 1)
                        break;
        }
        if (p->dead)
                return;
        p->more = i == LIMIT_FRAMES_PER_WAKEUP;
        if (r != 0 && r != 1) {
                peer_process_failed(p, r);
                return;
        }
        pubsub_pump(p);
        if (!p->dead)
                rpc_pump(p);
        if (!p->dead) {
                r = vbus__endpoint_flush(&p->ep);
                if (r < 0 && r != -EAGAIN && r != -EPIPE)
                        broker_kill_peer(p->broker, p, strerror(-r));
        }
}
