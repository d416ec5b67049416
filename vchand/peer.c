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
        if (vbus__link_init(&p->link_io, t, b->config.max_frame) < 0 ||
            vbus__session_init(&p->session, VBUS_ROLE_BROKER, 0, b->config.max_frame,
                               b->config.max_streams) < 0) {
                vbus__link_deinit(&p->link_io);
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
        vbus__session_deinit(&p->session);
        vbus__link_deinit(&p->link_io);
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

int peer_send_control(Peer *p, uint8_t type, uint8_t flags, uint32_t stream_id,
                      const ProtobufCMessage *msg)
{
        VbusFrameHeader h = {.type = type, .flags = flags, .stream_id = stream_id};
        VbusStream *vs = NULL;
        bool closed = false;
        int r;

        if (p->dead)
                return -EPIPE;
        r = vbus__session_send(&p->session, &h, msg, &vs, &closed);
        if (r < 0)
                return r;
        r = vbus__link_write_control(&p->link_io, &h, msg);
        if (r == 0)
                broker_mark_dirty(p->broker, p);
        if (r == -EPIPE)
                return r; /* the peer closed: keep reading what it sent before that */
        if (r == -ENOBUFS) {
                broker_kill_peer(p->broker, p, "does not read its link (control backlog full)");
                return r;
        }
        if (r < 0) {
                broker_kill_peer(p->broker, p, strerror(-r));
                return r;
        }
        if (closed && vs && vs->userdata)
                pubsub_close(p, vs->userdata);
        return 0;
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
        return vbus__link_max_payload(&p->link_io, p->session.peer_max_frame);
}

ssize_t peer_data_room(Peer *p, uint32_t stream_id)
{
        VbusStream *vs = vbus__session_get_stream(&p->session, stream_id);
        size_t room = peer_max_payload(p);

        if (!vs)
                return -ENOENT;
        if (vs->send_window < (int64_t)room)
                room = vs->send_window > 0 ? (size_t)vs->send_window : 0;
        return (ssize_t)room;
}

int peer_send_data(Peer *p, uint32_t stream_id, uint8_t flags, const struct iovec *pieces,
                   size_t n_pieces)
{
        VbusFrameHeader h = {.type = VBUS_FRAME_DATA, .flags = flags, .stream_id = stream_id};
        VbusStream *vs = vbus__session_get_stream(&p->session, stream_id);
        size_t len = 0;
        int r;

        if (p->dead || !vs)
                return -EPIPE;
        for (size_t i = 0; i < n_pieces; i++)
                len += pieces[i].iov_len;
        if ((int64_t)len > vs->send_window)
                return -EAGAIN;
        h.length = (uint32_t)len;
        r = vbus__link_write(&p->link_io, &h, pieces, n_pieces);
        if (r == -EAGAIN || r == -EPIPE)
                return r;
        if (r < 0) {
                broker_kill_peer(p->broker, p, strerror(-r));
                return r;
        }
        broker_mark_dirty(p->broker, p);
        /* Cannot fail now: window and state were checked. */
        r = vbus__session_send(&p->session, &h, NULL, NULL, NULL);
        if (r < 0) {
                broker_kill_peer(p->broker, p, "internal: session refused a checked DATA frame");
                return r;
        }
        return 0;
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
        (void)vbus__link_flush(&p->link_io);
        p->broker->stats.n_violations++;
        broker_kill_peer(p->broker, p, msg);
}

static void peer_on_hello(Peer *p, const Vbus__V1__Hello *m)
{
        Vbus__V1__Hello answer = VBUS__V1__HELLO__INIT;
        Broker *b = p->broker;

        if (m->version_min > VBUS_PROTOCOL_VERSION || m->version_max < VBUS_PROTOCOL_VERSION) {
                Vbus__V1__Error e = VBUS__V1__ERROR__INIT;

                e.status = VBUS__V1__STATUS__STATUS_UNSUPPORTED;
                e.message = (char *)"this broker speaks protocol version 1 only";
                (void)peer_send_control(p, VBUS_FRAME_ERROR, 0, 0, &e.base);
                (void)vbus__link_flush(&p->link_io);
                broker_kill_peer(b, p, "no common protocol version");
                return;
        }
        answer.version_min = VBUS_PROTOCOL_VERSION;
        answer.version_max = VBUS_PROTOCOL_VERSION;
        answer.version = VBUS_PROTOCOL_VERSION;
        answer.max_frame = b->config.max_frame;
        answer.peer_name = (char *)"vchand";
        if (peer_send_control(p, VBUS_FRAME_HELLO, 0, 0, &answer.base) < 0)
                return;
        if (vbus__link_set_max_frame(&p->link_io, b->config.max_frame) < 0)
                broker_kill_peer(b, p, "internal: bad max_frame");
}

static void peer_on_open(Peer *p, VbusStream *vs, const Vbus__V1__Open *m)
{
        Vbus__V1__Reject rj = VBUS__V1__REJECT__INIT;

        if (p->broker->stopping || p->session.goaway_sent) {
                rj.status = VBUS__V1__STATUS__STATUS_SHUTTING_DOWN;
                rj.message = (char *)"the broker is shutting down";
        } else if (m->kind == VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH ||
                   m->kind == VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE) {
                pubsub_open(p, vs, m);
                return;
        } else if (m->kind == VBUS__V1__STREAM_KIND__STREAM_KIND_SERVE) {
                rpc_open_serve(p, vs, m);
                return;
        } else {
                rpc_open_call(p, vs, m);
                return;
        }
        (void)peer_send_control(p, VBUS_FRAME_REJECT, 0, vs->id, &rj.base);
}

/* One frame, already checked by the link (rules 1-10) and the session (rule 11). */
static void peer_dispatch(Peer *p, const VbusFrame *f, const VbusControl *c, VbusStream *vs,
                          bool closed)
{
        Stream *s = vs ? vs->userdata : NULL;

        switch (f->header.type) {
        case VBUS_FRAME_HELLO:
                peer_on_hello(p, (const Vbus__V1__Hello *)c->msg);
                break;
        case VBUS_FRAME_PING: {
                const Vbus__V1__Ping *m = (const Vbus__V1__Ping *)c->msg;
                Vbus__V1__Ping ack = VBUS__V1__PING__INIT;

                if (f->header.flags & VBUS_FLAG_ACK)
                        break;
                ack.opaque = m->opaque;
                (void)peer_send_control(p, VBUS_FRAME_PING, VBUS_FLAG_ACK, 0, &ack.base);
                break;
        }
        case VBUS_FRAME_GOAWAY:
                /* The client is leaving: nothing new will be opened; streams end as they end. */
                break;
        case VBUS_FRAME_ERROR: {
                const Vbus__V1__Error *m = (const Vbus__V1__Error *)c->msg;

                peer_log(p, "sent ERROR %s: %.200s", vbus_status_name(m->status), m->message);
                broker_kill_peer(p->broker, p, "peer sent ERROR");
                break;
        }
        case VBUS_FRAME_OPEN:
                peer_on_open(p, vs, (const Vbus__V1__Open *)c->msg);
                break;
        case VBUS_FRAME_ACCEPT:
                if (s && s->call)
                        rpc_accept(p, s, (const Vbus__V1__Accept *)c->msg);
                break;
        case VBUS_FRAME_REJECT:
                if (s && s->call) {
                        const Vbus__V1__Reject *m = (const Vbus__V1__Reject *)c->msg;

                        rpc_reject(p, s, m->status, m->message);
                }
                break;
        case VBUS_FRAME_RESET:
                if (s && s->call) {
                        const Vbus__V1__End *m = (const Vbus__V1__End *)c->msg;

                        rpc_reset(p, s, m->status, m->message);
                }
                break;
        case VBUS_FRAME_DATA:
                if (s && s->kind == VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH)
                        pubsub_data(p, s, f);
                else if (s && s->call)
                        rpc_data(p, s, f);
                else if (s && s->intro)
                        introspect_data(p, s, f);
                else
                        /* A subscriber sends no DATA; the window rule already bounded it. */
                        peer_reset_stream(p, f->header.stream_id,
                                          VBUS__V1__STATUS__STATUS_INVALID_ARGUMENT,
                                          "this stream carries no data from you");
                break;
        case VBUS_FRAME_END:
                if (s && s->call) {
                        const Vbus__V1__End *m = (const Vbus__V1__End *)c->msg;

                        rpc_end(p, s, m->status, m->message);
                        break;
                }
                if (s && s->intro) {
                        introspect_end(p, s);
                        break;
                }
                /* The client ends its side: the broker ends its side at once. */
                if (s && !closed) {
                        Vbus__V1__End e = VBUS__V1__END__INIT;

                        e.status = VBUS__V1__STATUS__STATUS_OK;
                        (void)peer_send_control(p, VBUS_FRAME_END, 0, f->header.stream_id, &e.base);
                }
                break;
        case VBUS_FRAME_CREDIT:
                /* The window grew: queued deliveries may go now (pump runs after the batch). */
                break;
        default:
                break;
        }
        if (closed && s)
                pubsub_close(p, s);
}

void peer_process(Peer *p)
{
        Broker *b = p->broker;
        int r, i;

        r = vbus__transport_process(&p->link_io.transport);
        for (i = 0; r >= 0 && !p->dead && i < LIMIT_FRAMES_PER_WAKEUP; i++) {
                const VbusControl *c = NULL;
                VbusStream *vs = NULL;
                bool closed = false;
                VbusFrame f;

                r = vbus__link_next(&p->link_io, &f, &c);
                if (r <= 0)
                        break;
                r = vbus__session_recv(&p->session, &f, c, &vs, &closed);
                if (r == VBUS_SESSION_DISCARD) {
                        r = 0;
                        continue;
                }
                if (r == -E2BIG) {
                        Vbus__V1__Reject rj = VBUS__V1__REJECT__INIT;

                        rj.status = VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED;
                        rj.message = (char *)"too many streams on this link";
                        /* The session did not create the stream: answer it by hand. */
                        {
                                VbusFrameHeader h = {.type = VBUS_FRAME_REJECT,
                                                     .stream_id = f.header.stream_id};

                                r = vbus__link_write_control(&p->link_io, &h, &rj.base);
                        }
                        if (r < 0)
                                broker_kill_peer(b, p, "does not read its link");
                        continue;
                }
                if (r > 0) {
                        peer_violation(p, r, vbus__frame_type_name(f.header.type));
                        return;
                }
                if (r < 0) {
                        broker_kill_peer(b, p, strerror(-r));
                        return;
                }
                peer_dispatch(p, &f, c, vs, closed);
        }
        if (p->dead)
                return;
        p->more = i == LIMIT_FRAMES_PER_WAKEUP;
        if (r == -EPROTO) {
                peer_violation(p, p->link_io.violation, "bad frame");
                return;
        }
        if (r == -EPIPE) {
                broker_kill_peer(b, p, p->link_io.violation ? "closed inside a frame" : "closed");
                return;
        }
        if (r < 0) {
                broker_kill_peer(b, p, strerror(-r));
                return;
        }
        pubsub_pump(p);
        if (!p->dead)
                rpc_pump(p);
        if (!p->dead) {
                r = vbus__link_flush(&p->link_io);
                if (r < 0 && r != -EAGAIN && r != -EPIPE)
                        broker_kill_peer(b, p, strerror(-r));
        }
}
