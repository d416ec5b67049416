/* SPDX-License-Identifier: MIT */
/*
 * pubsub: publish and subscribe streams (see pubsub.h).
 *
 * Credit and memory: a publisher gets a window of publish_window bytes, from a per-peer budget
 * (peer_publish_bytes). A message's credit goes back to its publisher once the message is routed
 * and no BLOCK subscription still holds it, so what the broker holds for a peer's publications is
 * bounded by that budget, and a BLOCK subscriber that stops reading stops exactly the publishers
 * whose messages it holds. DROP subscriptions never hold credit; their queues are bounded by
 * queue_messages, queue_bytes and peer_queued_bytes, and every message they drop is counted and
 * reported in the next delivery's Meta.dropped.
 */
#include "pubsub.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "peer.h"
#include "rpc.h"
#include "vchand-limits.h"

Stream *stream_ref(Stream *s)
{
        if (s)
                s->refs++;
        return s;
}

void stream_unref(Stream *s)
{
        if (!s || --s->refs > 0)
                return;
        free(s->topic);
        free(s->rx);
        free(s->meta_const);
        free(s->match);
        free(s);
}

static Msg *msg_unref(Msg *m)
{
        if (m && --m->refs == 0) {
                stream_unref(m->publisher);
                free(m);
        }
        return NULL;
}

/* --- opening ----------------------------------------------------------------------------- */

Stream *stream_new(Peer *p, VbusStream *vs, uint8_t kind)
{
        Stream *s = calloc(1, sizeof(*s));

        if (!s)
                return NULL;
        s->peer = p;
        s->id = vs ? vs->id : 0;
        s->kind = kind;
        s->refs = 1; /* the peer's */
        list_init(&s->queue);
        list_init(&s->pending_link);
        list_init(&s->serve_link);
        list_add_tail(&p->streams, &s->link);
        if (vs)
                vbus__endpoint_bind(vs, &peer_stream_ops, s);
        return s;
}

static void open_publish(Peer *p, VbusStream *vs, const Vbus__V1__Open *m)
{
        const BrokerConfig *cfg = &p->broker->config;
        Vbus__V1__Accept a = VBUS__V1__ACCEPT__INIT;
        Stream *s;

        if (p->publish_granted + cfg->publish_window > cfg->peer_publish_bytes) {
                peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                            "too many publishers on this link (peer_publish_bytes)");
                return;
        }
        s = stream_new(p, vs, VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH);
        if (!s || !(s->topic = strdup(m->name))) {
                if (s)
                        pubsub_close(p, s);
                peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_INTERNAL, "out of memory");
                return;
        }
        s->n_topic = strlen(s->topic);
        s->window = cfg->publish_window;
        p->publish_granted += s->window;
        a.initial_credit = s->window;
        (void)peer_send_control(p, VBUS_FRAME_ACCEPT, 0, vs->id, &a.base);
}

static void open_subscribe(Peer *p, VbusStream *vs, const Vbus__V1__Open *m)
{
        const BrokerConfig *cfg = &p->broker->config;
        Vbus__V1__Accept a = VBUS__V1__ACCEPT__INIT;
        Stream *s;
        int r;

        if (p->n_subscriptions >= cfg->max_subscriptions) {
                peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                            "too many subscriptions on this link (max_subscriptions)");
                return;
        }
        s = stream_new(p, vs, VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE);
        if (!s) {
                peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_INTERNAL, "out of memory");
                return;
        }
        s->slow_policy = m->slow_policy == VBUS__V1__SLOW_POLICY__SLOW_POLICY_BLOCK
                                 ? VBUS__V1__SLOW_POLICY__SLOW_POLICY_BLOCK
                                 : VBUS__V1__SLOW_POLICY__SLOW_POLICY_DROP;
        s->queue_limit = m->queue_limit ? m->queue_limit : cfg->queue_messages;
        if (s->queue_limit > LIMIT_QUEUE_MESSAGES_MAX)
                s->queue_limit = LIMIT_QUEUE_MESSAGES_MAX;
        r = router_add(&p->broker->router, m->name, strlen(m->name), &s->rsub);
        if (r < 0) {
                pubsub_close(p, s);
                peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_INTERNAL,
                            "cannot add subscription");
                return;
        }
        p->n_subscriptions++;
        a.initial_credit = 0; /* a subscriber sends no data */
        (void)peer_send_control(p, VBUS_FRAME_ACCEPT, 0, vs->id, &a.base);
}

void pubsub_open(Peer *p, VbusStream *vs, const Vbus__V1__Open *open)
{
        if (open->kind == VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH)
                open_publish(p, vs, open);
        else
                open_subscribe(p, vs, open);
}

/* --- credit ------------------------------------------------------------------------------ */

void pubsub_return_credit(Stream *pub, uint32_t bytes)
{
        Peer *p = pub->peer;
        Vbus__V1__Credit c = VBUS__V1__CREDIT__INIT;

        if (!p || pub->closed || p->dead)
                return;
        pub->credit_owed += bytes;
        /* Batch: a quarter of the window keeps the publisher going without a frame per message. */
        if (pub->credit_owed < pub->window / 4)
                return;
        c.increment = (uint32_t)pub->credit_owed;
        pub->credit_owed = 0;
        (void)peer_send_control(p, VBUS_FRAME_CREDIT, 0, pub->id, &c.base);
}

/* --- delivery ---------------------------------------------------------------------------- */

/* Encodes the Meta prefix of a delivery into @buf; returns its size. */
/* Packs Meta{topic, sender} once per publish stream: it is the same for all its messages. */
static int meta_const_build(Stream *pub)
{
        Vbus__V1__Meta meta = VBUS__V1__META__INIT;
        Vbus__V1__Identity id = VBUS__V1__IDENTITY__INIT;
        const Identity *from = &pub->peer->ident;

        if (pub->meta_const)
                return 0;
        id.domid = from->domid;
        id.domain_name = (char *)from->domain_name;
        id.local = from->local;
        id.uid = from->uid;
        id.pid = from->pid;
        meta.topic = pub->topic;
        meta.sender = &id;
        pub->n_meta_const = protobuf_c_message_get_packed_size(&meta.base);
        pub->meta_const = malloc(pub->n_meta_const ? pub->n_meta_const : 1);
        if (!pub->meta_const)
                return -ENOMEM;
        protobuf_c_message_pack(&meta.base, pub->meta_const);
        return 0;
}

static size_t varint_put(uint8_t *p, uint64_t v)
{
        size_t n = 0;

        while (v >= 0x80) {
                p[n++] = (uint8_t)(v | 0x80);
                v >>= 7;
        }
        p[n++] = (uint8_t)v;
        return n;
}

/*
 * Encodes the Meta prefix of a delivery into @buf: the length varint, the publisher's constant
 * Meta{topic, sender}, then this subscription's dropped count and sequence as fields 3 and 4
 * (protobuf merges concatenated encodings of one message, so the parts need not be re-packed).
 * Returns its size; @buf holds at least VBUS_META_MAX + 2 bytes.
 */
static size_t meta_encode(Stream *sub, const uint8_t *meta_const, size_t n_const, uint8_t *buf)
{
        uint8_t tail[24];
        size_t n_tail = 0, n;
        int k;

        if (sub->dropped_pending) {
                tail[n_tail++] = 0x18; /* field 3, varint */
                n_tail += varint_put(tail + n_tail, sub->dropped_pending);
        }
        tail[n_tail++] = 0x20; /* field 4, varint */
        n_tail += varint_put(tail + n_tail, sub->sequence + 1);
        n = n_const + n_tail;
        k = vbus__meta_encode_prefix(n, buf);
        if (k < 0)
                return 0; /* cannot happen: topic <= 255 and name <= 64 bytes */
        memcpy(buf + k, meta_const, n_const);
        memcpy(buf + k + n_const, tail, n_tail);
        return (size_t)k + n;
}

/*
 * Sends the next frame of a message to @sub: from @offset, with the Meta prefix if @offset is 0.
 * With @whole_only, sends only if the rest of the message fits this one frame.
 * Return: bytes of the message sent (may be 0 for an empty message), -ENOSPC (the subscriber's
 * window is too small), -EAGAIN (the link is full), or -EPIPE.
 */
static ssize_t deliver_frame(Peer *q, Stream *sub, const uint8_t *meta_const, size_t n_const,
                             const uint8_t *data, size_t n_data, size_t offset, bool whole_only)
{
        ssize_t n_room = peer_data_room(q, sub->id);
        uint8_t meta[VBUS_META_MAX + 2];
        struct iovec pieces[2];
        size_t n_meta = 0, room, chunk;
        uint8_t flags = 0;
        int r;

        if (n_room < 0)
                return -EPIPE;
        room = (size_t)n_room;
        if (offset == 0) {
                n_meta = meta_encode(sub, meta_const, n_const, meta);
                flags |= VBUS_FLAG_META;
        }
        if (room <= n_meta && !(room == n_meta && n_data == 0))
                return -ENOSPC;
        chunk = n_data - offset;
        if (chunk > room - n_meta) {
                if (whole_only)
                        return -ENOSPC;
                chunk = room - n_meta;
        }
        if (offset + chunk < n_data)
                flags |= VBUS_FLAG_MORE;
        pieces[0].iov_base = meta;
        pieces[0].iov_len = n_meta;
        pieces[1].iov_base = (void *)(data + offset);
        pieces[1].iov_len = chunk;
        r = peer_send_data(q, sub->id, flags, pieces, 2);
        if (r < 0)
                return r;
        if (offset == 0) {
                sub->sequence++;
                sub->dropped_pending = 0;
        }
        if (!(flags & VBUS_FLAG_MORE))
                q->broker->stats.n_delivered++;
        return (ssize_t)chunk;
}

static void item_release(Peer *q, Stream *sub, QItem *item)
{
        Msg *m = item->msg;

        list_unlink(&item->link);
        sub->n_queued--;
        sub->bytes_queued -= m->n_data;
        if (q)
                q->bytes_queued -= m->n_data;
        if (item->block_hold && --m->n_block_holds == 0 && m->credit_pending) {
                m->credit_pending = false;
                pubsub_return_credit(m->publisher, m->credit);
        }
        msg_unref(m);
        free(item);
}

/* Routing context of one published message. */
typedef struct Route {
        Stream *pub;
        const uint8_t *data;
        size_t n_data;
        Msg *msg; /* made on first need: a subscriber without room */
} Route;

static Msg *route_msg(Route *rt)
{
        Stream *pub = rt->pub;
        Msg *m;

        if (rt->msg)
                return rt->msg;
        m = malloc(sizeof(*m) + rt->n_data);
        if (!m)
                return NULL;
        *m = (Msg){.refs = 1};
        m->topic = pub->topic;
        m->n_topic = pub->n_topic;
        m->sender_copy = pub->peer->ident;
        m->sender = &m->sender_copy;
        m->meta_const = pub->meta_const;
        m->n_meta_const = pub->n_meta_const;
        m->n_data = rt->n_data;
        memcpy(m->data, rt->data, rt->n_data);
        /* The reference keeps the topic alive, and lets the credit go back later. */
        m->publisher = stream_ref(pub);
        rt->msg = m;
        return m;
}

static void enqueue(Peer *q, Stream *sub, Route *rt)
{
        const BrokerConfig *cfg = &q->broker->config;
        bool block = sub->slow_policy == VBUS__V1__SLOW_POLICY__SLOW_POLICY_BLOCK;
        QItem *item;
        Msg *m;

        if (!block && (sub->n_queued >= sub->queue_limit ||
                       sub->bytes_queued + rt->n_data > cfg->queue_bytes ||
                       q->bytes_queued + rt->n_data > cfg->peer_queued_bytes)) {
                sub->dropped_pending++;
                sub->dropped_total++;
                q->broker->stats.n_dropped++;
                return;
        }
        if (block && q->bytes_queued + rt->n_data > cfg->peer_queued_bytes) {
                /* Lossless was promised, and the subscriber's link holds too much: end it
                 * explicitly rather than drop in silence. */
                peer_log(q, "BLOCK subscription %u over peer_queued_bytes: reset", sub->id);
                peer_reset_stream(q, sub->id, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                  "subscriber too slow: peer_queued_bytes exceeded");
                return;
        }
        m = route_msg(rt);
        item = calloc(1, sizeof(*item));
        if (!m || !item) {
                free(item);
                sub->dropped_pending++;
                sub->dropped_total++;
                q->broker->stats.n_dropped++;
                return;
        }
        item->msg = m;
        m->refs++;
        if (block) {
                item->block_hold = true;
                m->n_block_holds++;
        }
        if (list_is_empty(&sub->queue))
                list_add_tail(&q->pending, &sub->pending_link);
        list_add_tail(&sub->queue, &item->link);
        /* The queue is pumped at the end of this loop iteration, even if q stays idle. */
        broker_mark_dirty(q->broker, q);
        sub->n_queued++;
        sub->bytes_queued += m->n_data;
        q->bytes_queued += m->n_data;
}

static int route_one(RouterSub *rs, void *userdata)
{
        Stream *sub = container_of(rs, Stream, rsub);
        Route *rt = userdata;
        Peer *q = sub->peer;

        if (!q || q->dead || sub->closed)
                return 0;
        /* Fast path, straight from ring to ring: nothing queued before it, and the whole
         * message fits one frame now. A message is never split between the fast path and the
         * queue, so a dropped message is never a half-delivered one. */
        if (list_is_empty(&sub->queue)) {
                ssize_t n = deliver_frame(q, sub, rt->pub->meta_const, rt->pub->n_meta_const,
                                          rt->data, rt->n_data, 0, true);

                if (n >= 0 || (n != -EAGAIN && n != -ENOSPC))
                        return 0;
        }
        enqueue(q, sub, rt);
        return 0;
}

static int match_collect(RouterSub *rs, void *userdata)
{
        Stream *pub = userdata;

        if (pub->n_match == pub->match_cap) {
                uint32_t cap = pub->match_cap ? pub->match_cap * 2 : 8;
                RouterSub **m = realloc(pub->match, cap * sizeof(*m));

                if (!m)
                        return -ENOMEM;
                pub->match = m;
                pub->match_cap = cap;
        }
        pub->match[pub->n_match++] = rs;
        return 0;
}

/*
 * A publish stream's topic never changes, so its matching subscriptions are computed once and
 * reused until any subscription is added or removed (the router's generation changes).
 * Return: 0, or -ENOMEM (the caller then matches without the cache).
 */
static int match_refresh(Router *r, Stream *pub)
{
        if (pub->match_gen == r->gen + 1)
                return 0;
        pub->n_match = 0;
        pub->match_gen = 0;
        if (router_match(r, pub->topic, pub->n_topic, match_collect, pub) != 0)
                return -ENOMEM;
        pub->match_gen = r->gen + 1;
        return 0;
}

static void route(Peer *p, Stream *pub, const uint8_t *data, size_t n, uint32_t credit)
{
        Route rt = {.pub = pub, .data = data, .n_data = n};

        p->broker->stats.n_published++;
        if (meta_const_build(pub) < 0) {
                peer_reset_stream(p, pub->id, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                  "out of memory");
                return;
        }
        if (match_refresh(&p->broker->router, pub) < 0) {
                (void)router_match(&p->broker->router, pub->topic, pub->n_topic, route_one, &rt);
        } else {
                for (uint32_t i = 0; i < pub->n_match; i++)
                        (void)route_one(pub->match[i], &rt);
        }
        if (rt.msg && rt.msg->n_block_holds > 0) {
                /* Returned when the last BLOCK queue lets go of the message. */
                rt.msg->credit = credit;
                rt.msg->credit_pending = true;
        } else {
                pubsub_return_credit(pub, credit);
        }
        msg_unref(rt.msg);
}

void pubsub_data(Peer *p, Stream *s, const VbusFrame *f)
{
        const BrokerConfig *cfg = &p->broker->config;
        bool more = f->header.flags & VBUS_FLAG_MORE;
        size_t len = f->header.length;
        uint8_t *rx;

        if (s->n_rx == 0 && !more) {
                route(p, s, f->payload, len, (uint32_t)len);
                return;
        }
        if (s->n_rx + len > cfg->max_message) {
                peer_log(p, "message on stream %u exceeds max_message (%u bytes)", s->id,
                         cfg->max_message);
                free(s->rx);
                s->rx = NULL;
                s->n_rx = 0;
                s->rx_credit = 0;
                peer_reset_stream(p, s->id, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                  "message larger than the broker's max_message");
                return;
        }
        rx = realloc(s->rx, s->n_rx + len ? s->n_rx + len : 1);
        if (!rx) {
                peer_reset_stream(p, s->id, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                  "out of memory");
                return;
        }
        s->rx = rx;
        memcpy(s->rx + s->n_rx, f->payload, len);
        s->n_rx += len;
        s->rx_credit += (uint32_t)len;
        if (more)
                return;
        route(p, s, s->rx, s->n_rx, s->rx_credit);
        free(s->rx);
        s->rx = NULL;
        s->n_rx = 0;
        s->rx_credit = 0;
}

void pubsub_pump(Peer *q)
{
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &q->pending)
        {
                Stream *sub = list_entry(pos, Stream, pending_link);

                while (!list_is_empty(&sub->queue) && !q->dead) {
                        QItem *item = list_entry(sub->queue.next, QItem, link);
                        Msg *m = item->msg;
                        ssize_t n = deliver_frame(q, sub, m->meta_const, m->n_meta_const, m->data,
                                                  m->n_data, item->offset, false);

                        /* Out of window: try the next subscription. Link full: stop. */
                        if (n == -ENOSPC)
                                break;
                        if (n == -EAGAIN)
                                return;
                        if (n < 0)
                                return;
                        item->offset += (size_t)n;
                        if (item->offset >= m->n_data)
                                item_release(q, sub, item);
                }
                if (list_is_empty(&sub->queue))
                        list_unlink(&sub->pending_link);
        }
}

void pubsub_close(Peer *p, Stream *s)
{
        List *pos, *tmp;

        if (s->closed)
                return;
        if (s->kind == VBUS__V1__STREAM_KIND__STREAM_KIND_CALL ||
            s->kind == VBUS__V1__STREAM_KIND__STREAM_KIND_SERVE)
                rpc_stream_closing(p, s);
        s->closed = true;
        vbus__endpoint_unbind(&p->ep, s->id);
        if (s->kind == VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE) {
                if (s->rsub.node) {
                        router_remove(&p->broker->router, &s->rsub);
                        p->n_subscriptions--;
                }
                list_for_each_safe(pos, tmp, &s->queue)
                        item_release(p, s, list_entry(pos, QItem, link));
                list_unlink(&s->pending_link);
        } else if (s->kind == VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH) {
                p->publish_granted -= s->window;
        }
        list_unlink(&s->link);
        s->peer = NULL;
        stream_unref(s);
}
