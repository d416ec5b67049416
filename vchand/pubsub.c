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
 *
 * Budgets (budget.h): every queued item is charged to its subscriber as its payload plus
 * LIMIT_ITEM_OVERHEAD, against queue_bytes, peer_queued_bytes and the subscriber's peer_memory,
 * so empty messages are bounded too. A DROP queue over a bound drops (its subscriber loses its own
 * messages, counted); a BLOCK queue over one resets its subscription (RESOURCE_EXHAUSTED), unless
 * the publisher is the one holding too much. A message costs its publisher its length plus the
 * message charge of window (protocol.md 5.4), so on a link that negotiated MESSAGE_CHARGE a
 * publisher of tiny or empty messages is slowed by a slow BLOCK subscriber like any other; on a
 * link that did not, empty messages use no window, so a publisher whose messages fill BLOCK queues
 * beyond what its window would allow at LIMIT_ITEM_OVERHEAD each (window / LIMIT_ITEM_OVERHEAD
 * messages) is refused instead, and the subscriber is told of the message as dropped. A reassembly
 * buffer is charged to its publisher, and each stream costs its peer LIMIT_STREAM_COST.
 *
 * A message that arrived whole in one frame is read from the publisher's ring in place when it
 * has one subscriber, and copied once first when it has more: the publisher can rewrite its ring
 * at any time, and subscribers must not see different bytes under one sequence number.
 *
 * Ownership: a Subscription is owned by its stream and freed by its ->closed, with its queue of
 * QItems; a QItem holds a reference to its Msg; a Msg holds a reference to its Publisher (for its
 * packed Meta, and to return its credit), so a Publisher outlives its stream while messages of it
 * are queued, with base.peer NULL from the moment its stream closed.
 */
#include "pubsub.h"

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access.h"
#include "batch.h"
#include "budget.h"
#include "log.h"
#include "monitor.h"
#include "presence.h"
#include "retain.h"
#include "service.h"
#include "vchand-limits.h"

/* A publish stream. Reference-counted: queued messages hold it for its topic and its credit. */
typedef struct Publisher {
        Stream base;
        uint32_t refs;
        char *topic;
        size_t n_topic;
        /* The message being reassembled from fragments: n_rx bytes of rx->data, room for
         * rx_cap; routed as it is, without another copy (route_reassembled()). */
        struct Msg *rx;
        size_t n_rx, rx_cap;
        uint32_t rx_credit;   /* publisher bytes of that message */
        bool rx_retain;       /* that message's first frame had RETAIN */
        uint64_t credit_owed; /* bytes received and released, not yet returned */
        uint32_t window;      /* the window granted in ACCEPT */
        uint8_t *meta_const;  /* packed Meta{topic, sender}: the same for all its messages */
        size_t n_meta_const;
        uint64_t batch_key; /* never 0, unique: its messages may share a batch frame */
        RouterSub **match;  /* the subscriptions its topic matched, valid while */
        uint32_t n_match, match_cap;
        uint64_t match_gen;    /* ...this equals router.gen + 1 */
        uint32_t n_block_held; /* its messages held by BLOCK queues (Msgs, not QItems) */
        uint64_t rx_charged;   /* bytes of rx (its room) charged to its peer */
        List peer_link;        /* in peer->publishers while its stream is open */
        uint64_t n_messages, n_bytes, opened_us;
} Publisher;

/* A subscribe stream, with its queue. Freed when its stream closes. */
typedef struct Subscription {
        Stream base;
        RouterSub rsub;
        uint8_t slow_policy;
        uint32_t queue_limit;
        List queue;        /* QItems */
        List pending_link; /* in peer->pending while the queue is not empty */
        uint32_t n_queued;
        uint64_t bytes_queued;
        uint64_t dropped_pending; /* drops not yet reported to the subscriber */
        uint64_t dropped_total;
        uint64_t sequence;
        uint32_t window; /* Open.initial_credit: the window it has whenever it is caught up */
        /* The batch being routed (its stamp) of which it already got the first batch_done
         * messages with one copy (publisher_batch()): route() gives it only the others. */
        uint64_t batch_stamp;
        uint32_t batch_done;
        bool refused;   /* RESET sent for being over a bound: nothing more is queued */
        List peer_link; /* in peer->subscriptions */
        char *pattern;
        uint64_t n_delivered, opened_us;
} Subscription;

/* A message being delivered: a copy of the publisher's bytes, shared by the queues. */
typedef struct Msg {
        uint32_t refs;
        Publisher *publisher;      /* reference: owns the topic, and takes the credit back */
        bool credit_pending;       /* its credit has not gone back to the publisher yet */
        bool pooled;               /* of the small size (POOL_MSG_DATA), returns to the pool */
        uint32_t n_block_holds;    /* BLOCK queues holding it: credit returns when 0 */
        uint32_t credit;           /* publisher bytes to return then */
        const uint8_t *meta_const; /* the publisher's (it holds a reference) */
        size_t n_meta_const;
        uint64_t batch_key; /* the publisher's, 0 for a retained value (never batched) */
        /* 0: one message of n_data bytes; else data holds the records of a batch of this many
         * messages (protocol.md 5.5), queued whole by publisher_batch() */
        uint32_t n_msgs;
        size_t n_data;
        uint8_t data[];
} Msg;

/* stream_op_*() take the object for its Stream. */
_Static_assert(offsetof(Publisher, base) == 0, "Publisher starts with its Stream");
_Static_assert(offsetof(Subscription, base) == 0, "Subscription starts with its Stream");

typedef struct QItem {
        List link;
        Msg *msg;
        size_t offset;   /* bytes of the message already sent (fragments; of a batch: records) */
        uint32_t index;  /* of a batch: the messages already sent */
        uint32_t n_msgs; /* the messages it counts in its queue (1, or a batch's rest) */
        uint64_t cost;   /* what it is charged in its queue and to its subscriber's budget */
        bool block_hold;
} QItem;

static Publisher *publisher_ref(Publisher *pub)
{
        pub->refs++;
        return pub;
}

static void publisher_unref(Publisher *pub)
{
        if (!pub || --pub->refs > 0)
                return;
        free(pub->topic);
        free(pub->rx);
        free(pub->meta_const);
        free(pub->match);
        free(pub);
}

/*
 * Freed QItems and small Msgs, kept for reuse: a subscriber that cannot keep up has every message
 * queued, and two allocations per message were a fifth of the broker's time at 64 B. At most
 * POOL_MAX of each are kept (about 300 KiB), outside the peers' budgets, which charge what is
 * queued whatever its allocation. The broker is single-threaded.
 */
enum {
        POOL_MAX = 1024,
        POOL_MSG_DATA = 256, /* a Msg with at most this many bytes of data is of the pooled size */
};

typedef struct Pool {
        void *free[POOL_MAX];
        uint32_t n;
} Pool;

static Pool item_pool, msg_pool;

static void *pool_get(Pool *pool, size_t size)
{
        return pool->n > 0 ? pool->free[--pool->n] : malloc(size);
}

/* Under AddressSanitizer nothing is kept, so that a use after free is still found. */
#if defined(__SANITIZE_ADDRESS__)
#define POOL_KEEPS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_KEEPS 0
#endif
#endif
#ifndef POOL_KEEPS
#define POOL_KEEPS 1
#endif

static void pool_put(Pool *pool, void *p)
{
        if (POOL_KEEPS && pool->n < POOL_MAX)
                pool->free[pool->n++] = p;
        else
                free(p);
}

/* A Msg for @n bytes (data and, for retained values, Meta), refs 1, the rest zero. */
static Msg *msg_alloc(size_t n)
{
        bool pooled = n <= POOL_MSG_DATA;
        Msg *m =
                pooled ? pool_get(&msg_pool, sizeof(Msg) + POOL_MSG_DATA) : malloc(sizeof(Msg) + n);

        if (m)
                *m = (Msg){.refs = 1, .pooled = pooled};
        return m;
}

static QItem *item_alloc(void)
{
        QItem *item = pool_get(&item_pool, sizeof(QItem));

        if (item)
                *item = (QItem){0};
        return item;
}

static void item_free(QItem *item)
{
        if (item)
                pool_put(&item_pool, item);
}

static Msg *msg_unref(Msg *m)
{
        if (m && --m->refs == 0) {
                publisher_unref(m->publisher);
                if (m->pooled)
                        pool_put(&msg_pool, m);
                else
                        free(m);
        }
        return NULL;
}

static void pubsub_return_credit(Publisher *pub, uint32_t bytes);
static int enqueue_retained(const RetainedValue *v, void *ud);
static const VbusStreamOps publisher_ops, subscription_ops;

/* --- opening ----------------------------------------------------------------------------- */

int pubsub_open_publish(Peer *p, VbusStream *vs, const Vbus__V1__Open *m)
{
        const BrokerConfig *cfg = &p->bus->config;
        Publisher *pub;

        if (p->publish_granted + cfg->publish_window > cfg->peer_publish_bytes) {
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                  "too many publishers on this link (peer_publish_bytes)");
                return 0;
        }
        /* The broker's own topics (presence): nobody else publishes there. */
        if (service_name_in_namespace(m->name, strlen(m->name), PRESENCE_NAMESPACE)) {
                peer_log(p, "may not publish on %s: the vbus.* topics are the broker's", m->name);
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_PERMISSION_DENIED,
                                  "topics vbus.* are published by the broker only");
                return 0;
        }
        if (budget_charge(p, LIMIT_STREAM_COST) < 0) {
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                  "this link holds too much (peer_memory)");
                return 0;
        }
        pub = calloc(1, sizeof(*pub));
        if (!pub || !(pub->topic = strdup(m->name))) {
                free(pub);
                budget_release(p, LIMIT_STREAM_COST);
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_INTERNAL, "out of memory");
                return 0;
        }
        pub->refs = 1; /* the stream's */
        pub->batch_key = ++p->bus->next_batch_key;
        pub->n_topic = strlen(pub->topic);
        pub->window = cfg->publish_window;
        pub->opened_us = bus_now_us();
        list_add_tail(&p->publishers, &pub->peer_link);
        p->publish_granted += pub->window;
        stream_bind(&pub->base, p, vs, &publisher_ops, pub);
        /* Plus one message charge (protocol.md 5.4): a message of publish_window bytes (as large
         * as max_message may be) still fits the window whole. */
        (void)stream_accept(&pub->base, pub->window + peer_msg_charge(p), NULL);
        return 0;
}

int pubsub_open_subscribe(Peer *p, VbusStream *vs, const Vbus__V1__Open *m)
{
        const BrokerConfig *cfg = &p->bus->config;
        Subscription *sub;

        if (p->n_subscriptions >= cfg->max_subscriptions) {
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                  "too many subscriptions on this link (max_subscriptions)");
                return 0;
        }
        if (budget_charge(p, LIMIT_STREAM_COST) < 0) {
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                  "this link holds too much (peer_memory)");
                return 0;
        }
        sub = calloc(1, sizeof(*sub));
        if (!sub || !(sub->pattern = strdup(m->name))) {
                free(sub);
                budget_release(p, LIMIT_STREAM_COST);
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_INTERNAL, "out of memory");
                return 0;
        }
        sub->opened_us = bus_now_us();
        sub->window = m->initial_credit;
        list_init(&sub->queue);
        list_init(&sub->pending_link);
        sub->slow_policy = m->slow_policy == VBUS__V1__SLOW_POLICY__SLOW_POLICY_BLOCK
                                   ? VBUS__V1__SLOW_POLICY__SLOW_POLICY_BLOCK
                                   : VBUS__V1__SLOW_POLICY__SLOW_POLICY_DROP;
        sub->queue_limit = m->queue_limit ? m->queue_limit : cfg->queue_messages;
        if (sub->queue_limit > LIMIT_QUEUE_MESSAGES_MAX)
                sub->queue_limit = LIMIT_QUEUE_MESSAGES_MAX;
        if (router_add(&p->bus->router, m->name, strlen(m->name), &sub->rsub) < 0) {
                free(sub->pattern);
                free(sub);
                budget_release(p, LIMIT_STREAM_COST);
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_INTERNAL,
                                  "cannot add subscription");
                return 0;
        }
        p->n_subscriptions++;
        list_add_tail(&p->subscriptions, &sub->peer_link);
        stream_bind(&sub->base, p, vs, &subscription_ops, sub);
        (void)stream_accept(&sub->base, 0, NULL); /* a subscriber sends no data */
        /* The retained values of matching topics come first: anything routed from now on
         * queues behind them (route_one() takes the fast path only with an empty queue). */
        retain_foreach_match(p->bus, m->name, enqueue_retained, sub);
        return 0;
}

/* --- credit ------------------------------------------------------------------------------ */

/* Sends the credit a publisher is owed, if any. */
static void pubsub_flush_credit(Publisher *pub)
{
        Vbus__V1__Credit c = VBUS__V1__CREDIT__INIT;

        if (!pub->base.peer || pub->credit_owed == 0)
                return; /* its stream is gone, or nothing is owed */
        c.increment = (uint32_t)pub->credit_owed;
        pub->credit_owed = 0;
        (void)peer_send_control(pub->base.peer, VBUS_FRAME_CREDIT, 0, pub->base.id, &c.base);
}

/* Returns credit a publisher is owed, batched: once a quarter of its window is owed. */
static void pubsub_return_credit(Publisher *pub, uint32_t bytes)
{
        if (!pub->base.peer)
                return; /* its stream is gone */
        pub->credit_owed += bytes;
        if (pub->credit_owed < pub->window / 4)
                return;
        pubsub_flush_credit(pub);
}

/* --- delivery ---------------------------------------------------------------------------- */

/* Packs Meta{topic, sender} once per publish stream: it is the same for all its messages. */
static int meta_const_build(Publisher *pub)
{
        Vbus__V1__Meta meta = VBUS__V1__META__INIT;
        Vbus__V1__Identity id;
        Vbus__V1__Claims claims;

        if (pub->meta_const)
                return 0;
        stream_identity_claims(&id, &claims, &pub->base.peer->ident);
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
static size_t meta_encode(Subscription *sub, const uint8_t *meta_const, size_t n_const,
                          uint8_t *buf)
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

/* A delivery made: the subscription's sequence moves on, its drops have been reported. */
static void delivered(Subscription *sub)
{
        sub->sequence++;
        sub->dropped_pending = 0;
        sub->base.peer->bus->stats.n_delivered++;
        sub->n_delivered++;
}

/*
 * A whole small message of the publisher @key into the batch frame being written to @sub's link
 * (protocol.md 5.5): it joins the open batch when that is @sub's, of the same publisher, with
 * nothing dropped since (the batch's Meta describes its first message; the others follow it in
 * sequence), else it starts a batch with its Meta prefix. The link publishes the batch before
 * anything else it writes, and at the end of the loop turn, so batching adds no wait.
 * Return: as deliver_frame(); -ENOTSUP: not for a batch (the caller sends a frame).
 */
static ssize_t deliver_batched(Subscription *sub, uint64_t key, const uint8_t *meta_const,
                               size_t n_const, const uint8_t *data, size_t n_data)
{
        ssize_t n_room;
        uint8_t meta[VBUS_META_MAX + 2];
        size_t n_meta = 0;
        bool join;
        int r;

        /* A batch's message is never split in fragments: only where the window the subscriber
         * has when caught up takes it whole, or it could wait for room for ever. */
        if (key == 0 || n_data > LIMIT_BATCH_MESSAGE_MAX ||
            sub->window < LIMIT_BATCH_QUEUE_MIN_WINDOW || !stream_batches(&sub->base))
                return -ENOTSUP;
        n_room = stream_data_room(&sub->base);
        if (n_room < 0)
                return -EPIPE;
        join = sub->dropped_pending == 0 && stream_batch_joins(&sub->base, key, n_data);
        if (!join)
                n_meta = meta_encode(sub, meta_const, n_const, meta);
        if (n_meta + vbus__batch_len_size((uint32_t)n_data) + n_data > (size_t)n_room)
                return -ENOSPC;
        /* Starting anew also publishes the open batch: a batch never takes a second prefix. */
        r = stream_batch_add(&sub->base, key, join ? NULL : meta, n_meta, data, n_data);
        if (r < 0)
                return r;
        delivered(sub);
        return (ssize_t)n_data;
}

/*
 * Sends the next frame of a message to @sub: from @offset, with the Meta prefix if @offset is 0.
 * With @whole_only, sends only if the rest of the message fits this one frame. A whole small
 * message of a publisher (@key, 0 for none: a retained value, the broker's own) goes into a batch
 * frame when the subscriber's link takes batches (deliver_batched()).
 * Return: bytes of the message sent (may be 0 for an empty message), -ENOSPC (the subscriber's
 * window is too small), -EAGAIN (the link is full), or -EPIPE.
 */
static ssize_t deliver_frame(Subscription *sub, uint64_t key, const uint8_t *meta_const,
                             size_t n_const, const uint8_t *data, size_t n_data, size_t offset,
                             bool whole_only)
{
        ssize_t n_room;
        uint8_t meta[VBUS_META_MAX + 2];
        struct iovec pieces[2];
        size_t n_meta = 0, room, chunk;
        uint8_t flags = 0;
        int r;

        if (offset == 0) {
                ssize_t n = deliver_batched(sub, key, meta_const, n_const, data, n_data);

                if (n != -ENOTSUP)
                        return n;
        }
        n_room = stream_data_room(&sub->base);
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
        r = stream_send_data(&sub->base, flags, pieces, 2);
        if (r < 0)
                return r;
        /* Counted once a message is under way (its sequence) and once it is whole. */
        if (offset == 0) {
                sub->sequence++;
                sub->dropped_pending = 0;
        }
        if (!(flags & VBUS_FLAG_MORE)) {
                sub->base.peer->bus->stats.n_delivered++;
                sub->n_delivered++;
        }
        return (ssize_t)chunk;
}

static void item_release(Peer *q, Subscription *sub, QItem *item)
{
        Msg *m = item->msg;
        uint64_t cost = item->cost;

        list_unlink(&item->link);
        sub->n_queued -= item->n_msgs;
        sub->bytes_queued -= cost;
        q->bytes_queued -= cost;
        budget_release(q, cost);
        if (item->block_hold && --m->n_block_holds == 0) {
                m->publisher->n_block_held -= m->n_msgs ? m->n_msgs : 1;
                if (m->credit_pending) {
                        m->credit_pending = false;
                        pubsub_return_credit(m->publisher, m->credit);
                }
        }
        msg_unref(m);
        item_free(item);
}

/* Routing context of one published message. */
typedef struct Route {
        Publisher *pub;
        const uint8_t *data;
        size_t n_data;
        Msg *msg; /* made on first need: a subscriber without room, or a second subscriber */
        uint64_t batch_stamp; /* of the batch it is a message of (0: none), */
        uint32_t batch_index; /* ...and its place in it */
        bool pub_refused;     /* the publisher was reset while routing this message */
        uint32_t n_matched;
} Route;

static Msg *route_msg(Route *rt)
{
        Publisher *pub = rt->pub;
        Msg *m;

        if (rt->msg)
                return rt->msg;
        m = msg_alloc(rt->n_data);
        if (!m)
                return NULL;
        m->meta_const = pub->meta_const;
        m->n_meta_const = pub->n_meta_const;
        m->batch_key = pub->batch_key;
        m->n_data = rt->n_data;
        if (rt->n_data) /* an empty frame's payload may be NULL */
                memcpy(m->data, rt->data, rt->n_data);
        /* The reference keeps the Meta alive, and lets the credit go back later. */
        m->publisher = publisher_ref(pub);
        rt->msg = m;
        return m;
}

static void count_drop(Peer *q, Subscription *sub)
{
        sub->dropped_pending++;
        sub->dropped_total++;
        q->n_dropped++;
        q->bus->stats.n_dropped++;
}

/* A BLOCK subscription over a bound of its own: it ends, explicitly, rather than lose in
 * silence what was promised lossless. */
static void block_refuse(Peer *q, Subscription *sub, const char *bound)
{
        char msg[128];

        sub->refused = true;
        peer_log(q, "BLOCK subscription %u over %s: reset", sub->base.id, bound);
        /* A message for the subscriber: cut short is fine. */
        (void)snprintf(msg, sizeof(msg), "subscriber too slow: %s exceeded", bound);
        (void)stream_reset(&sub->base, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED, msg);
}

/* Whether @pub holds more messages in BLOCK queues than its window allows at
 * LIMIT_ITEM_OVERHEAD each. A publisher whose link negotiated MESSAGE_CHARGE pays at least
 * VBUS_MESSAGE_CHARGE (>= LIMIT_ITEM_OVERHEAD) of its window (publish_window plus one charge)
 * per message, its credit held while BLOCK queues hold the message, so with the message being
 * routed it holds at most window / LIMIT_ITEM_OVERHEAD: it waits for credit before it reaches
 * this bound. On a link without it, empty messages use no window and this is their bound. */
_Static_assert(LIMIT_BATCH_MESSAGE_MAX + VBUS_META_MAX + 2 + VBUS_BATCH_LEN_MAX <=
                       VBUS_FRAME_MAX_MIN - VBUS_FRAME_HEADER_SIZE,
               "a batch's largest message with its prefix fits the smallest frame");
_Static_assert(LIMIT_BATCH_MESSAGE_MAX + VBUS_META_MAX + 2 + VBUS_BATCH_LEN_MAX +
                               VBUS_MESSAGE_CHARGE <=
                       LIMIT_BATCH_QUEUE_MIN_WINDOW,
               "a batch's largest message with its prefix and charge fits the window");
_Static_assert((int)VBUS_MESSAGE_CHARGE >= (int)LIMIT_ITEM_OVERHEAD,
               "a charged publisher reaches its window before publisher_holds_too_many()");

static bool publisher_holds_too_many(const Publisher *pub)
{
        return pub->n_block_held > pub->window / LIMIT_ITEM_OVERHEAD;
}

/* Appends @item (holding its reference to its Msg, charged @cost to @q's budget) to @sub's
 * queue. */
static void queue_push(Peer *q, Subscription *sub, QItem *item, uint64_t cost)
{
        item->cost = cost;
        if (item->n_msgs == 0)
                item->n_msgs = 1;
        if (list_is_empty(&sub->queue))
                list_add_tail(&q->pending, &sub->pending_link);
        list_add_tail(&sub->queue, &item->link);
        /* The queue is pumped at the end of this loop iteration, even if q stays idle. */
        peer_mark_dirty(q);
        sub->n_queued += item->n_msgs;
        sub->bytes_queued += cost;
        q->bytes_queued += cost;
}

static void enqueue(Peer *q, Subscription *sub, Route *rt)
{
        const BrokerConfig *cfg = &q->bus->config;
        bool block = sub->slow_policy == VBUS__V1__SLOW_POLICY__SLOW_POLICY_BLOCK;
        uint64_t cost = budget_cost(rt->n_data);
        QItem *item;
        Msg *m;

        if (sub->refused)
                return;
        if (!block &&
            (sub->n_queued >= sub->queue_limit || sub->bytes_queued + cost > cfg->queue_bytes ||
             q->bytes_queued + cost > cfg->peer_queued_bytes || !budget_check(q, cost))) {
                count_drop(q, sub);
                return;
        }
        /* A message already held by another BLOCK queue costs the publisher nothing more: the
         * bound is on its messages, not on its subscribers (a fan-out to many BLOCK subscribers
         * is honest). */
        if (block && !(rt->msg && rt->msg->n_block_holds > 0) &&
            publisher_holds_too_many(rt->pub)) {
                /* The publisher is the one over its bound: it is refused, and the subscriber
                 * told that it missed this message. */
                count_drop(q, sub);
                if (!rt->pub_refused) {
                        rt->pub_refused = true;
                        peer_log(rt->pub->base.peer,
                                 "publisher %u: BLOCK subscribers hold too many of its messages",
                                 rt->pub->base.id);
                        (void)stream_reset(&rt->pub->base,
                                           VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                           "BLOCK subscribers hold too many of your messages");
                }
                return;
        }
        if (block && sub->n_queued >= LIMIT_BLOCK_QUEUE_MESSAGES) {
                block_refuse(q, sub, "its queue's entry limit");
                return;
        }
        if (block && (q->bytes_queued + cost > cfg->peer_queued_bytes || !budget_check(q, cost))) {
                block_refuse(q, sub, "peer_queued_bytes");
                return;
        }
        m = route_msg(rt);
        item = item_alloc();
        if (!m || !item || budget_charge(q, cost) < 0) {
                item_free(item);
                count_drop(q, sub);
                return;
        }
        item->msg = m;
        m->refs++;
        if (block) {
                item->block_hold = true;
                if (m->n_block_holds++ == 0)
                        rt->pub->n_block_held++;
        }
        queue_push(q, sub, item, cost);
}

/*
 * The policy's subscription rule for one retained value: what a live message of @topic would be
 * checked against. Asked here (and not through Stream.policy_filter): access.c sets a
 * subscription's filter only once the open has returned, after the retained values are queued.
 */
static bool retained_allowed(Peer *q, const char *topic)
{
        const PolicyRule *r;
        PolicySubject s;

        if (!q->bus->policy)
                return true;
        access_subject(&s, &q->ident);
        return policy_check(q->bus->policy, &s, POLICY_SUBSCRIBE, topic, &r);
}

/*
 * Queues the retained value @v for the subscription @ud, which has just begun: a Msg of its own,
 * with no publisher and no credit, its Meta (retained set) after its bytes, charged to the
 * subscriber's budget like any queued message. Whatever the subscription's policy, the DROP
 * bounds apply (nobody can be held back for it): over them, or out of memory, it is dropped and
 * counted like any message. Return: 0 (go on).
 */
static int enqueue_retained(const RetainedValue *v, void *ud)
{
        Subscription *sub = ud;
        Peer *q = sub->base.peer;
        const BrokerConfig *cfg = &q->bus->config;
        uint64_t cost = budget_cost(v->n_data);
        QItem *item;
        Msg *m;

        if (!retained_allowed(q, v->topic))
                return 0;
        if (sub->n_queued >= sub->queue_limit || sub->bytes_queued + cost > cfg->queue_bytes ||
            q->bytes_queued + cost > cfg->peer_queued_bytes || !budget_check(q, cost)) {
                count_drop(q, sub);
                return 0;
        }
        m = msg_alloc(v->n_data + v->n_meta);
        item = item_alloc();
        if (!m || !item || budget_charge(q, cost) < 0) {
                msg_unref(m);
                item_free(item);
                count_drop(q, sub);
                return 0;
        }
        m->n_data = v->n_data;
        m->n_meta_const = v->n_meta;
        memcpy(m->data, v->data, v->n_data);
        memcpy(m->data + v->n_data, v->meta, v->n_meta);
        m->meta_const = m->data + v->n_data;
        item->msg = m;
        queue_push(q, sub, item, cost);
        return 0;
}

static int route_one(RouterSub *rs, void *userdata)
{
        Subscription *sub = container_of(rs, Subscription, rsub);
        Route *rt = userdata;
        Peer *q = sub->base.peer;

        /* It took this message with the rest of the batch's leading ones (publisher_batch()). */
        if (rt->batch_stamp != 0 && sub->batch_stamp == rt->batch_stamp &&
            rt->batch_index < sub->batch_done)
                return 0;
        rt->n_matched++;
        /* Fast path, straight from ring to ring: nothing queued before it, and the whole
         * message fits one frame now. A message is never split between the fast path and the
         * queue, so a dropped message is never a half-delivered one. */
        if (list_is_empty(&sub->queue) && !sub->refused) {
                ssize_t n = deliver_frame(sub, rt->pub->batch_key, rt->pub->meta_const,
                                          rt->pub->n_meta_const, rt->data, rt->n_data, 0, true);

                if (n >= 0 || (n != -EAGAIN && n != -ENOSPC))
                        return 0;
        }
        enqueue(q, sub, rt);
        return 0;
}

/* A subscription policy filters (access.h) takes only the topics its peer may read. */
static bool sub_may_receive(RouterSub *rs, const Publisher *pub)
{
        Subscription *sub = container_of(rs, Subscription, rsub);

        return !sub->base.policy_filter ||
               access_topic_allowed(sub->base.policy_filter, sub->base.peer, pub->topic);
}

static int match_collect(RouterSub *rs, void *userdata)
{
        Publisher *pub = userdata;

        if (!sub_may_receive(rs, pub))
                return 0;
        if (pub->n_match == pub->match_cap) {
                uint32_t cap = pub->match_cap ? pub->match_cap * 2 : 8;
                RouterSub **m = realloc(pub->match, cap * sizeof(RouterSub *));

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
static int match_refresh(Router *r, Publisher *pub)
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

/*
 * Keeps a RETAIN message as its topic's retained value (an empty one clears it). Return: true if
 * the message is to be routed as well; false when it was empty (a clear reaches no one) or
 * refused (the stream is reset: only this publisher learns that its value is over a bound).
 */
static bool retain_message(Publisher *pub, const uint8_t *data, size_t n, uint32_t credit)
{
        static const char *const why[] = {
                [RETAIN_E_OVER_PEER] = "retained values over this publisher's "
                                       "peer_retained_bytes",
                [RETAIN_E_OVER_COUNT] = "the broker keeps retained_max retained values already",
                [RETAIN_E_OVER_BYTES] = "retained values over the broker's retained_bytes",
        };
        Peer *p = pub->base.peer;
        int r = retain_set(p->bus, &p->ident, pub->topic, pub->meta_const, pub->n_meta_const, data,
                           n);

        if (r == 0 && n > 0)
                return true;
        pubsub_return_credit(pub, credit); /* routed nowhere: its credit goes back now */
        if (r == 0)
                return false;
        peer_log(p, "retained value on %s refused: %s", pub->topic,
                 r > 0 ? why[r] : "out of memory");
        (void)stream_reset(&pub->base, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                           r > 0 ? why[r] : "out of memory");
        return false;
}

/* route_one() where the match list could not be cached (-ENOMEM): policy checked here. */
static int route_one_allowed(RouterSub *rs, void *userdata)
{
        Route *rt = userdata;

        return sub_may_receive(rs, rt->pub) ? route_one(rs, rt) : 0;
}

/*
 * Reads the message from the publisher's ring once, into the Msg every subscriber then gets.
 * Return: 0, or -ENOMEM (the publisher was refused; its credit goes back).
 */
static int route_copy(Route *rt)
{
        Msg *m = route_msg(rt);

        if (!m) {
                (void)stream_reset(&rt->pub->base, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                   "out of memory");
                return -ENOMEM;
        }
        rt->data = m->data;
        return 0;
}

/*
 * Routes one whole message of @pub (open, held by the caller across the call). @from_copy: @data
 * is the broker's own copy (a reassembled message), not the publisher's live ring. @retain: the
 * message had RETAIN (it is also kept as its topic's value, from the same copy subscribers get).
 * @stamp, @index: the message is the @index'th of the batch stamped @stamp (0: not of a batch),
 * which a subscription whose batch_stamp it is took the first batch_done messages of.
 */
static void route_rt(Route rt, uint32_t credit, bool from_copy, bool retain)
{
        Publisher *pub = rt.pub;
        size_t n = rt.n_data;
        Peer *p = pub->base.peer;
        Bus *b = p->bus;

        if (meta_const_build(pub) < 0) {
                msg_unref(rt.msg);
                (void)stream_reset(&pub->base, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                   "out of memory");
                return;
        }
        if (rt.msg) { /* a reassembled message, routed as it is */
                rt.msg->meta_const = pub->meta_const;
                rt.msg->n_meta_const = pub->n_meta_const;
        }
        if (retain) {
                /* The ring is read once: what is kept is what the subscribers get. */
                if (!from_copy && route_copy(&rt) < 0)
                        return;
                from_copy = true;
                if (!retain_message(pub, rt.data, n, credit)) {
                        /* As below: the caller holds @pub too, dropping the copy never frees it. */
                        assert(!rt.msg || (rt.msg->publisher == pub && pub->refs >= 2));
                        msg_unref(rt.msg);
                        return;
                }
        }
        b->stats.n_published++;
        p->n_published++;
        pub->n_messages++;
        pub->n_bytes += n;
        if (match_refresh(&b->router, pub) < 0) {
                /* Copied once first: the subscribers are not counted here. */
                if (!from_copy && route_copy(&rt) < 0)
                        return;
                (void)router_match(&b->router, pub->topic, pub->n_topic, route_one_allowed, &rt);
        } else {
                if (!from_copy && pub->n_match > 1 && route_copy(&rt) < 0)
                        return;
                for (uint32_t i = 0; i < pub->n_match; i++)
                        (void)route_one(pub->match[i], &rt);
        }
        if (monitor_is_active(b))
                monitor_publish(b, p, pub->topic, pub->n_topic, n, rt.n_matched);
        if (rt.msg && rt.msg->n_block_holds > 0) {
                /* Returned when the last BLOCK queue lets go of the message. */
                rt.msg->credit = credit;
                rt.msg->credit_pending = true;
        } else {
                pubsub_return_credit(pub, credit);
        }
        /* The message holds @pub and so does the caller: dropping the message never frees it. */
        assert(!rt.msg || (rt.msg->publisher == pub && pub->refs >= 2));
        msg_unref(rt.msg);
}

static void route(Publisher *pub, const uint8_t *data, size_t n, uint32_t credit, bool from_copy,
                  bool retain, uint64_t stamp, uint32_t index)
{
        route_rt((Route){.pub = pub,
                         .data = data,
                         .n_data = n,
                         .batch_stamp = stamp,
                         .batch_index = index},
                 credit, from_copy, retain);
}

static void rx_clear(Publisher *pub)
{
        if (pub->rx_charged && pub->base.peer)
                budget_release(pub->base.peer, pub->rx_charged);
        pub->rx_charged = 0;
        free(pub->rx);
        pub->rx = NULL;
        pub->n_rx = 0;
        pub->rx_cap = 0;
        pub->rx_credit = 0;
        pub->rx_retain = false;
}

/*
 * Routes the message @pub has just reassembled: its buffer is already a Msg, which becomes the
 * message the queues share (route_msg() copies nothing), so a message in fragments is copied
 * once into the broker and once out of it. Its charge as reassembly buffer is released: the
 * queues that keep it charge their subscribers, as for any queued copy.
 */
static void route_reassembled(Publisher *pub)
{
        Msg *m = pub->rx;
        size_t n = pub->n_rx;
        uint32_t credit = pub->rx_credit;
        bool retain = pub->rx_retain;

        pub->rx = NULL;
        rx_clear(pub);
        /* Its Meta is set by route_rt(), which builds the publisher's on first need. */
        *m = (Msg){.refs = 1,
                   .publisher = publisher_ref(pub),
                   .batch_key = pub->batch_key,
                   .n_data = n};
        route_rt((Route){.pub = pub, .data = m->data, .n_data = n, .msg = m}, credit, true, retain);
}

/*
 * Appends a fragment to the message being reassembled, in a Msg that route_reassembled() passes
 * on as it is. Its room grows by doubling (capped at max_message; the first fragment of a
 * message in fragments is known to be followed by more), so a message costs a few reallocs, not
 * one per fragment; what is charged to the peer is the room, which is what the broker holds.
 * Return: 0, or a RESET was sent.
 */
static int rx_append(Publisher *pub, const VbusFrame *f)
{
        const BrokerConfig *cfg = &pub->base.peer->bus->config;
        size_t len = f->header.length, need = pub->n_rx + len, cap = pub->rx_cap;
        Msg *rx;

        if (need > cfg->max_message) {
                peer_log(pub->base.peer, "message on stream %u exceeds max_message (%u bytes)",
                         pub->base.id, cfg->max_message);
                rx_clear(pub);
                (void)stream_reset(&pub->base, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                   "message larger than the broker's max_message");
                return -EMSGSIZE;
        }
        if (need > cap || !pub->rx) {
                cap = cap * 2 > need ? cap * 2 : need;
                if (f->header.flags & VBUS_FLAG_MORE && cap < 2 * need)
                        cap = 2 * need;
                if (cap > cfg->max_message)
                        cap = cfg->max_message > need ? cfg->max_message : need;
                if (cap > pub->rx_cap && budget_charge(pub->base.peer, cap - pub->rx_cap) < 0) {
                        rx_clear(pub);
                        (void)stream_reset(&pub->base, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                           "this link holds too much (peer_memory)");
                        return -ENOBUFS;
                }
                pub->rx_charged += cap - pub->rx_cap;
                rx = realloc(pub->rx, sizeof(Msg) + (cap ? cap : 1));
                if (!rx) {
                        (void)stream_reset(&pub->base, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                           "out of memory");
                        return -ENOMEM;
                }
                pub->rx = rx;
                pub->rx_cap = cap;
        }
        if (len > 0)
                memcpy(pub->rx->data + pub->n_rx, f->payload, len);
        pub->n_rx = need;
        pub->rx_credit += (uint32_t)len;
        if (!(f->header.flags & VBUS_FLAG_MORE))
                pub->rx_credit += stream_msg_charge(&pub->base); /* its last frame's charge */
        return 0;
}

/*
 * Passes the leading messages of a batch on to @sub as they are: as many of its @n records
 * (@recs, @n_recs bytes, private memory, well-formed) as its window and link take now, copied
 * once into its link after a Meta prefix, or joining the open batch of the same publisher (@key)
 * there. Only when nothing queued comes before them: from the head of the queue, or with an
 * empty queue. @ret_bytes: written with the record bytes taken.
 * Return: the messages delivered (0: none).
 */
static uint32_t deliver_records(Subscription *sub, uint64_t key, const uint8_t *meta_const,
                                size_t n_const, const uint8_t *recs, size_t n_recs, uint32_t n,
                                size_t *ret_bytes)
{
        uint8_t meta[VBUS_META_MAX + 2];
        uint32_t charge, k = 0;
        size_t n_meta = 0, room, take = 0;
        ssize_t n_room;
        VbusBatchIter it;
        const uint8_t *data;
        size_t len;

        *ret_bytes = 0;
        if (sub->refused || sub->window < LIMIT_BATCH_QUEUE_MIN_WINDOW ||
            !stream_batches(&sub->base))
                return 0;
        n_room = stream_data_room(&sub->base);
        if (n_room <= 0)
                return 0;
        /* Joining the open batch of this publisher when its first message fits what is left of
         * it (and nothing was dropped since: the count travels in a prefix), else a new batch. */
        room = 0;
        if (sub->dropped_pending == 0 &&
            peer_batch_joins_records(sub->base.peer, sub->base.id, key, 0)) {
                vbus__batch_iter_init(&it, recs, n_recs, n);
                if (vbus__batch_next(&it, &data, &len) == 1)
                        room = peer_batch_room(sub->base.peer, sub->base.id, key, 0);
                if ((size_t)(data + len - recs) > room)
                        room = 0;
        }
        if (room == 0) {
                n_meta = meta_encode(sub, meta_const, n_const, meta);
                room = peer_batch_room(sub->base.peer, sub->base.id, key, n_meta);
        }
        charge = stream_msg_charge(&sub->base);
        /* The window room counts one message charge already. All of it, mostly: */
        if (n_recs <= room && n_meta + n_recs + (uint64_t)(n - 1) * charge <= (uint64_t)n_room) {
                take = n_recs;
                k = n;
        }
        vbus__batch_iter_init(&it, recs, n_recs, k == n ? 0 : n);
        while (k < n && vbus__batch_next(&it, &data, &len) == 1) {
                size_t end = (size_t)(data + len - recs);

                if (n_meta + end + (uint64_t)k * charge > (uint64_t)n_room)
                        break; /* the CREDIT that makes room pumps the queue again */
                if (end > room) {
                        /* Short of link room: the first message is tried all the same, so that
                         * the link asks its peer to signal when it reads (else nothing would
                         * wake the queue). */
                        if (k == 0) {
                                take = end;
                                k = 1;
                        }
                        break;
                }
                take = end;
                k++;
        }
        if (k == 0 || stream_batch_add_records(&sub->base, key, n_meta ? meta : NULL, n_meta, recs,
                                               take, k) < 0)
                return 0;
        sub->sequence += k;
        sub->dropped_pending = 0;
        sub->base.peer->bus->stats.n_delivered += k;
        sub->n_delivered += k;
        *ret_bytes = take;
        return k;
}

enum { ROUTE_BATCH_STACK = 64 };

/* What a subscriber did not take of a batch, queued as one item (a copy of the batch shared by
 * the queues that hold its rest). */
typedef struct BatchRest {
        uint32_t done; /* messages it took (deliver_records()) */
        size_t offset; /* their record bytes */
} BatchRest;

/*
 * Whether @sub may queue the rest of a batch as one item (@k messages, @cost): a subscription
 * that takes batches, whose window can always take one record with its prefix once it is caught
 * up, and whose bounds take all @k now. Anything else, and any bound met, is left to the
 * one-by-one path (route()), whose DROP counts and BLOCK refusals are exact per message.
 */
static bool rest_fits(Subscription *sub, Publisher *pub, uint32_t k, uint64_t cost)
{
        Peer *q = sub->base.peer;
        const BrokerConfig *cfg = &q->bus->config;

        if (!stream_batches(&sub->base) || sub->window < LIMIT_BATCH_QUEUE_MIN_WINDOW)
                return false; /* deliver_records() would never take its messages */
        if (q->bytes_queued + cost > cfg->peer_queued_bytes || !budget_check(q, cost))
                return false;
        if (sub->slow_policy == VBUS__V1__SLOW_POLICY__SLOW_POLICY_BLOCK)
                return sub->n_queued + k <= LIMIT_BLOCK_QUEUE_MESSAGES &&
                       pub->n_block_held + k <= pub->window / LIMIT_ITEM_OVERHEAD;
        return sub->n_queued + k <= sub->queue_limit &&
               sub->bytes_queued + cost <= cfg->queue_bytes;
}

/*
 * Queues the rests of a batch, each as one item sharing one copy of the batch (@m), when every
 * subscriber with a rest may (rest_fits()). Return: true (queued, or nothing to queue), false
 * (route them one by one; nothing was queued).
 */
static bool queue_rests(Publisher *pub, Msg *m, const BatchRest *rest, size_t n_recs, uint32_t n,
                        uint64_t n_bytes)
{
        bool any = false;

        for (uint32_t i = 0; i < pub->n_match; i++) {
                Subscription *sub = container_of(pub->match[i], Subscription, rsub);
                uint32_t k = n - rest[i].done;

                if (k == 0 || sub->refused)
                        continue;
                /* Charged as the messages would be one by one (payload + item overhead each);
                 * the record lengths' bytes count as payload. */
                if (!rest_fits(sub, pub, k,
                               (uint64_t)(n_recs - rest[i].offset) +
                                       (uint64_t)k * LIMIT_ITEM_OVERHEAD))
                        return false;
                any = true;
        }
        (void)n_bytes;
        if (!any)
                return true;
        for (uint32_t i = 0; i < pub->n_match; i++) {
                Subscription *sub = container_of(pub->match[i], Subscription, rsub);
                Peer *q = sub->base.peer;
                uint32_t k = n - rest[i].done;
                uint64_t cost =
                        (uint64_t)(n_recs - rest[i].offset) + (uint64_t)k * LIMIT_ITEM_OVERHEAD;
                QItem *item;

                if (k == 0 || sub->refused)
                        continue;
                item = item_alloc();
                if (!item || budget_charge(q, cost) < 0) {
                        /* Out of memory: lost, and counted as such, message by message. */
                        item_free(item);
                        for (uint32_t j = 0; j < k; j++)
                                count_drop(q, sub);
                        continue;
                }
                item->msg = m;
                m->refs++;
                item->offset = rest[i].offset;
                item->index = rest[i].done;
                item->n_msgs = k;
                if (sub->slow_policy == VBUS__V1__SLOW_POLICY__SLOW_POLICY_BLOCK) {
                        item->block_hold = true;
                        if (m->n_block_holds++ == 0)
                                pub->n_block_held += n;
                }
                queue_push(q, sub, item, cost);
        }
        return true;
}

/*
 * The private copy of a batch being routed: a Msg, so that the queues that keep its rest share
 * it without another copy. One of the largest size seen is kept for the next batch when no queue
 * kept it.
 */
static Msg *batch_msg_take(Bus *b, size_t n)
{
        Msg *m = NULL;

        if (b->batch_spare && b->batch_spare_cap >= n) {
                m = b->batch_spare;
                b->batch_taken_cap = b->batch_spare_cap;
                b->batch_spare = NULL;
        } else {
                m = malloc(sizeof(Msg) + (n ? n : 1));
                b->batch_taken_cap = n;
        }
        if (m)
                *m = (Msg){.refs = 1, .n_data = n};
        return m;
}

static void batch_msg_give(Bus *b, Msg *m)
{
        size_t cap = b->batch_taken_cap;

        if (m->refs > 1) {
                msg_unref(m); /* the queues keep it */
                return;
        }
        publisher_unref(m->publisher);
        m->publisher = NULL;
        if (b->batch_spare && b->batch_spare_cap >= cap) {
                free(m);
                return;
        }
        free(b->batch_spare);
        b->batch_spare = m;
        b->batch_spare_cap = cap;
}

/*
 * Routes a batch of @n messages, @len_recs bytes of records in @m (private, well-formed; its
 * largest message @max_len bytes, @n_bytes in all) of @pub: see publisher_batch().
 */
static void route_batch(Publisher *pub, Msg *m, uint32_t n, size_t len_recs, size_t max_len,
                        uint64_t n_bytes)
{
        Bus *b = pub->base.peer->bus;
        uint32_t charge = stream_msg_charge(&pub->base);
        uint64_t credit = len_recs + (uint64_t)n * charge;
        BatchRest rest_stack[ROUTE_BATCH_STACK], *rest = NULL;
        uint64_t stamp = ++b->next_batch_stamp;
        bool any_left = false, queued = false;
        const uint8_t *data;
        VbusBatchIter it;
        size_t len;

        /* Held: routing may reset this very stream (out of memory), which closes it. */
        publisher_ref(pub);
        if (!monitor_is_active(b) && match_refresh(&b->router, pub) == 0) {
                rest = pub->n_match <= ROUTE_BATCH_STACK ? rest_stack
                                                         : malloc(pub->n_match * sizeof(*rest));
                for (uint32_t i = 0; rest && i < pub->n_match; i++) {
                        Subscription *sub = container_of(pub->match[i], Subscription, rsub);

                        rest[i].offset = 0;
                        rest[i].done =
                                list_is_empty(&sub->queue)
                                        ? deliver_records(sub, pub->batch_key, pub->meta_const,
                                                          pub->n_meta_const, m->data, len_recs, n,
                                                          &rest[i].offset)
                                        : 0;
                        /* By identity, not by place: routing one by one may change the list. */
                        sub->batch_stamp = stamp;
                        sub->batch_done = rest[i].done;
                        any_left |= rest[i].done < n;
                }
        }
        if (rest && any_left && max_len <= LIMIT_BATCH_MESSAGE_MAX) {
                /* The copy becomes the queues' (they hold a reference each). */
                m->meta_const = pub->meta_const;
                m->n_meta_const = pub->n_meta_const;
                m->batch_key = pub->batch_key;
                m->n_msgs = n;
                m->n_data = len_recs;
                m->publisher = publisher_ref(pub);
                queued = queue_rests(pub, m, rest, len_recs, n, n_bytes);
        }
        if (rest && (!any_left || queued)) {
                b->stats.n_published += n;
                pub->base.peer->n_published += n;
                pub->n_messages += n;
                pub->n_bytes += n_bytes;
                if (m->n_block_holds > 0) {
                        /* Returned when the last BLOCK queue lets go of the batch. */
                        m->credit = (uint32_t)credit;
                        m->credit_pending = true;
                } else {
                        pubsub_return_credit(pub, (uint32_t)credit);
                }
        } else {
                /* One by one, each to the subscribers that did not take it with the batch. */
                vbus__batch_iter_init(&it, m->data, len_recs, n);
                for (uint32_t j = 0; vbus__batch_next(&it, &data, &len) == 1 && pub->base.peer;
                     j++) {
                        uint32_t c = (uint32_t)(vbus__batch_len_size((uint32_t)len) + len) + charge;

                        route(pub, data, len, c, true, false, rest ? stamp : 0, j);
                }
        }
        if (rest != rest_stack)
                free(rest);
        publisher_unref(pub);
}

/*
 * A batch of whole messages (protocol.md 5.5; the session counted them and charged the window).
 * Copied once out of the publisher's ring and counted again there, so that every subscriber gets
 * the same, well-formed records whatever the publisher writes meanwhile. Each subscriber then
 * gets as many of its leading messages as it can take now with one copy (deliver_records()); the
 * rests are queued as one item each, sharing one copy of the batch, whose credit goes back to the
 * publisher when no BLOCK queue holds it any more (queue_rests()); where a queue's bounds do not
 * take a rest whole, every rest goes one message at a time (route()), as if each had come alone.
 * Records that no longer parse as counted (the publisher rewrote its ring) are a protocol
 * violation.
 */
static int publisher_batch(Publisher *pub, const VbusFrame *f)
{
        Bus *b = pub->base.peer->bus;
        uint32_t n = f->header.n_messages, n_copy = 0;
        size_t len_recs = f->header.length, max_len = 0;
        uint64_t n_bytes = 0;
        Msg *m = batch_msg_take(b, len_recs);
        int r = 0;

        if (!m)
                return -ENOMEM;
        memcpy(m->data, f->payload, len_recs);
        if (vbus__batch_scan(m->data, len_recs, &n_copy, &max_len, &n_bytes) != 0 || n_copy != n)
                r = PEER_E_PROTOCOL;
        else if (max_len > b->config.max_message) {
                peer_log(pub->base.peer, "message on stream %u exceeds max_message (%u bytes)",
                         pub->base.id, b->config.max_message);
                (void)stream_reset(&pub->base, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                   "message larger than the broker's max_message");
        } else if (meta_const_build(pub) < 0) {
                (void)stream_reset(&pub->base, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                   "out of memory");
        } else {
                route_batch(pub, m, n, len_recs, max_len, n_bytes);
        }
        batch_msg_give(b, m);
        return r;
}

static int publisher_data(void *obj, VbusStream *vs, const VbusFrame *f)
{
        Publisher *pub = obj;
        bool more = f->header.flags & VBUS_FLAG_MORE;

        (void)vs;
        if (pub->base.peer->bus->stopping) {
                /* After GOAWAY nothing new is routed: the publisher is told at once (its stream
                 * ends SHUTTING_DOWN) and the message is counted, never silently lost. */
                pub->base.peer->bus->stats.n_refused_stopping += !more;
                rx_clear(pub);
                if (f->header.flags & VBUS_FLAG_BATCH)
                        pub->base.peer->bus->stats.n_refused_stopping += f->header.n_messages - 1;
                (void)stream_reset(&pub->base, VBUS__V1__STATUS__STATUS_SHUTTING_DOWN,
                                   "the broker is stopping");
                return 0;
        }
        if (f->header.flags & VBUS_FLAG_BATCH)
                return publisher_batch(pub, f);
        /* Held: routing may reset this very stream (out of memory), which closes it. */
        publisher_ref(pub);
        if (pub->n_rx == 0)
                pub->rx_retain = f->header.flags & VBUS_FLAG_RETAIN; /* first frame only */
        if (pub->n_rx == 0 && !more &&
            f->header.length <= pub->base.peer->bus->config.max_message) {
                /* A whole message in one frame: routed from the ring, no copy. */
                route(pub, f->payload, f->header.length,
                      f->header.length + stream_msg_charge(&pub->base), false, pub->rx_retain, 0,
                      0);
        } else if (rx_append(pub, f) == 0) {
                if (!more) {
                        route_reassembled(pub);
                } else {
                        /* A message in fragments may need the whole window (max_message may
                         * equal publish_window), and its own bytes are held until its last
                         * fragment: credit still batched from earlier messages goes back now,
                         * or such a message would wait forever for the bytes the batch keeps. */
                        pubsub_flush_credit(pub);
                }
        }
        publisher_unref(pub);
        return 0;
}

static void publisher_closed(void *obj, VbusStream *vs)
{
        Publisher *pub = obj;

        (void)vs;
        pub->base.peer->publish_granted -= pub->window;
        list_unlink(&pub->peer_link);
        rx_clear(pub);
        budget_release(pub->base.peer, LIMIT_STREAM_COST);
        stream_unbind(&pub->base);
        publisher_unref(pub);
}

static const VbusStreamOps publisher_ops = {
        .data = publisher_data,
        .end = stream_op_end_too,
        .closed = publisher_closed,
};

/* --- subscriptions ----------------------------------------------------------------------- */

static void subscription_closed(void *obj, VbusStream *vs)
{
        Subscription *sub = obj;
        Peer *p = sub->base.peer;
        List *pos, *tmp;

        (void)vs;
        router_remove(&p->bus->router, &sub->rsub);
        p->n_subscriptions--;
        list_for_each_safe(pos, tmp, &sub->queue)
                item_release(p, sub, list_entry(pos, QItem, link));
        list_unlink(&sub->pending_link);
        list_unlink(&sub->peer_link);
        free(sub->pattern);
        budget_release(p, LIMIT_STREAM_COST);
        free(sub);
}

static const VbusStreamOps subscription_ops = {
        .data = stream_op_refuse_data,
        .end = stream_op_end_too,
        .closed = subscription_closed,
};

void pubsub_pump(Peer *q)
{
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &q->pending)
        {
                Subscription *sub = list_entry(pos, Subscription, pending_link);

                while (!list_is_empty(&sub->queue)) {
                        QItem *item = list_entry(sub->queue.next, QItem, link);
                        Msg *m = item->msg;

                        if (m->n_msgs > 0) {
                                /* A batch's rest: as many of its messages as go now, one copy. */
                                size_t took = 0;
                                uint32_t k = deliver_records(
                                        sub, m->batch_key, m->meta_const, m->n_meta_const,
                                        m->data + item->offset, m->n_data - item->offset,
                                        m->n_msgs - item->index, &took);

                                if (k == 0)
                                        break;
                                item->offset += took;
                                item->index += k;
                                if (item->index >= m->n_msgs)
                                        item_release(q, sub, item);
                                continue;
                        }
                        ssize_t n = deliver_frame(sub, m->batch_key, m->meta_const, m->n_meta_const,
                                                  m->data, m->n_data, item->offset, false);

                        /* Out of window: try the next subscription. Link full or gone: stop. */
                        if (n == -ENOSPC)
                                break;
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

/* --- the broker's own messages ------------------------------------------------------------ */

/* The broker's topics reach only patterns that name them: one starting with a wildcard ("*" or
 * ">") does not get them, so a subscriber of everything does not see traffic it never asked
 * for (NATS treats its $SYS subjects the same way). */
static int route_local_one(RouterSub *rs, void *userdata)
{
        Subscription *sub = container_of(rs, Subscription, rsub);

        if (sub->pattern[0] == '*' || sub->pattern[0] == '>')
                return 0;
        return route_one(rs, userdata);
}

void pubsub_publish_local(Bus *b, const char *topic, const uint8_t *data, size_t n)
{
        Vbus__V1__Meta meta = VBUS__V1__META__INIT;
        Vbus__V1__Identity id;
        Identity self = {.domid = b->own_domid, .local = true};
        Publisher *pub;
        Route rt = {.data = data, .n_data = n};

        /* A publisher without a stream (base.peer NULL): queued messages hold it for its Meta,
         * and pubsub_return_credit() has nobody to return credit to. */
        pub = calloc(1, sizeof(*pub));
        if (!pub || !(pub->topic = strdup(topic))) {
                free(pub);
                return;
        }
        pub->refs = 1;
        pub->n_topic = strlen(topic);
        /* BLOCK queues may hold a few of its messages: as many as a peer's publisher. */
        pub->window = b->config.publish_window;
        self.uid = (uint32_t)geteuid();
        self.pid = (uint32_t)getpid();
        stream_identity(&id, &self);
        meta.topic = pub->topic;
        meta.sender = &id;
        pub->n_meta_const = protobuf_c_message_get_packed_size(&meta.base);
        pub->meta_const = malloc(pub->n_meta_const ? pub->n_meta_const : 1);
        if (pub->meta_const) {
                protobuf_c_message_pack(&meta.base, pub->meta_const);
                rt.pub = pub;
                (void)router_match(&b->router, pub->topic, pub->n_topic, route_local_one, &rt);
                /* BLOCK queues may hold it: with no credit pending, they return none. */
                msg_unref(rt.msg);
        }
        publisher_unref(pub);
}

/* --- listings ------------------------------------------------------------------------------ */

typedef struct Walk {
        int (*pub_fn)(const PubsubPublisherInfo *info, void *userdata);
        int (*sub_fn)(const PubsubSubscriptionInfo *info, void *userdata);
        void *userdata;
} Walk;

static int walk_publishers(Peer *p, void *userdata)
{
        Walk *w = userdata;

        for (List *q = p->publishers.next; q != &p->publishers; q = q->next) {
                const Publisher *pub = list_entry(q, Publisher, peer_link);
                PubsubPublisherInfo info = {
                        .peer = p,
                        .topic = pub->topic,
                        .stream = pub->base.id,
                        .n_messages = pub->n_messages,
                        .n_bytes = pub->n_bytes,
                        .opened_us = pub->opened_us,
                };
                int r = w->pub_fn(&info, w->userdata);

                if (r != 0)
                        return r;
        }
        return 0;
}

static int walk_subscriptions(Peer *p, void *userdata)
{
        Walk *w = userdata;

        for (List *q = p->subscriptions.next; q != &p->subscriptions; q = q->next) {
                const Subscription *sub = list_entry(q, Subscription, peer_link);
                PubsubSubscriptionInfo info = {
                        .peer = p,
                        .pattern = sub->pattern,
                        .stream = sub->base.id,
                        .block = sub->slow_policy == VBUS__V1__SLOW_POLICY__SLOW_POLICY_BLOCK,
                        .n_queued = sub->n_queued,
                        .queue_limit = sub->queue_limit,
                        .bytes_queued = sub->bytes_queued,
                        .n_delivered = sub->n_delivered,
                        .n_dropped = sub->dropped_total,
                        .opened_us = sub->opened_us,
                };
                int r = w->sub_fn(&info, w->userdata);

                if (r != 0)
                        return r;
        }
        return 0;
}

int pubsub_foreach_publisher(Bus *b, int (*fn)(const PubsubPublisherInfo *info, void *userdata),
                             void *userdata)
{
        Walk w = {.pub_fn = fn, .userdata = userdata};

        return peer_foreach(b, walk_publishers, &w);
}

int pubsub_foreach_subscription(Bus *b,
                                int (*fn)(const PubsubSubscriptionInfo *info, void *userdata),
                                void *userdata)
{
        Walk w = {.sub_fn = fn, .userdata = userdata};

        return peer_foreach(b, walk_subscriptions, &w);
}
