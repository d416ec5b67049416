/* SPDX-License-Identifier: MIT */
/*
 * pubsub: publishers, subscriptions and the messages they deliver (the publish/subscribe part of
 * <vbus/vbus.h>), a feature of the connection (conn.h).
 *
 * Each publisher and subscription owns one stream toward the broker, bound to it with the ops
 * below, so a frame reaches its object in O(1). Both are kept across reconnects: when the link is
 * lost their streams close (->closed puts them back to idle, and a subscription marks its next
 * message as following a gap), and when the next link is ready they are opened again.
 *
 * Publishing: a message that fits one frame and the window goes straight into the link, with no
 * copy and no allocation: when the broker takes batches (protocol.md 5.5) and it is small, into
 * the batch frame being combined there. A larger one is copied once and sent in fragments as
 * room appears (one message at most waits per publisher). Receiving: of a message in one frame,
 * or a batch of them, only the Meta prefix is copied out of the shared ring and decoded (into an
 * arena on the stack), and the callback runs for each message on its bytes where they lie, with
 * no copy and no allocation per message; fragments are reassembled first.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <vbus/vbus.h>

#include "batch.h"
#include "conn.h"
#include "name.h"
#include "standing.h"
#include "util/list.h"

enum {
        /* Window granted to the broker per subscription. */
        PUBSUB_SUB_WINDOW = 1024 * 1024,
        /* The smallest fragment of a message that does not fit: a small window does not spray
         * small frames. */
        PUBSUB_FRAGMENT_MIN = 1024,
        /* The largest message combined into a batch frame (protocol.md 5.5): above it, a
         * frame's own cost is small beside the message's copy (vchand passes batches on whole
         * up to the same size, LIMIT_BATCH_MESSAGE_MAX). */
        PUBSUB_BATCH_MESSAGE_MAX = 2048,
        /* A batch being combined goes as soon as the broker has caught up, checked every this
         * many messages (at most that many more publish calls later: well under a microsecond). */
        PUBSUB_BATCH_LOOK = 16,
};

typedef struct PubSub PubSub;

struct vbus_publisher {
        VbusStanding s; /* first: the standing stream ops take the object */
        List link;      /* in PubSub.publishers */
        PubSub *ps;
        /* The rest of a message being sent in fragments (one message at most). */
        uint8_t *pending;
        size_t n_pending, pending_off;
        uint8_t pending_flags; /* of its first frame: VBUS_FLAG_RETAIN or 0 */
};

/*
 * The topic and sender of recent deliveries, decoded once: the broker sends a publisher's Meta
 * fields 1 and 2 as the same bytes on every message it delivers to one subscription, so a
 * delivery whose leading Meta bytes equal an entry's (vbus__meta_const_len()) decodes only the
 * rest (dropped, sequence, retained): no protobuf decode of the topic and identity, and no topic
 * check, per message. A few entries, for subscriptions fed by a few publishers in turn.
 */
enum { META_CACHE_ENTRIES = 4 };

typedef struct MetaCacheEntry {
        uint8_t *raw; /* the leading Meta bytes (topic and sender) */
        size_t n_raw;
        Vbus__V1__Meta *meta; /* decoded from them alone; topic checked */
} MetaCacheEntry;

struct vbus_subscription {
        VbusStanding s; /* first: the standing stream ops take the object */
        List link;      /* in PubSub.subscriptions */
        PubSub *ps;
        vbus_slow_policy policy;
        vbus_message_cb cb;
        void *userdata;
        bool gap; /* the next message follows a reconnect */
        uint64_t credit_owed;
        uint8_t *rx; /* fragments being reassembled (Meta prefix included) */
        size_t n_rx;
        MetaCacheEntry meta_cache[META_CACHE_ENTRIES];
        unsigned meta_cache_next; /* the entry to replace next */
};

struct vbus_message {
        const char *topic;
        const uint8_t *data;
        size_t n_data;
        const Vbus__V1__Identity *sender;
        uint64_t dropped, sequence;
        bool gap;
        bool retained;
};

struct PubSub {
        vbus_conn *conn;
        List publishers;
        List subscriptions;
        /* The subscription whose callback runs; set to NULL if the callback frees it. */
        vbus_subscription *delivering;
};

static const VbusFeatureOps pubsub_ops;
static const VbusStreamOps publisher_stream_ops;
static const VbusStreamOps subscription_stream_ops;

static void *pubsub_new(vbus_conn *c)
{
        PubSub *ps = calloc(1, sizeof(*ps));

        if (!ps)
                return NULL;
        ps->conn = c;
        list_init(&ps->publishers);
        list_init(&ps->subscriptions);
        return ps;
}

static PubSub *pubsub_get(vbus_conn *c)
{
        return vbus__conn_get_feature(c, &pubsub_ops, pubsub_new);
}

/* --- publishers ----------------------------------------------------------------------------- */

static void publisher_drop_pending(vbus_publisher *p)
{
        free(p->pending);
        p->pending = NULL;
        p->n_pending = p->pending_off = 0;
}

static void publisher_closed(void *obj, VbusStream *vs)
{
        vbus_publisher *p = obj;

        (void)vs;
        vbus__standing_closed(&p->s);
        publisher_drop_pending(p);
}

static const VbusStreamOps publisher_stream_ops = {
        .accept = vbus__standing_on_accept,
        .reject = vbus__standing_on_reject,
        .end = vbus__standing_on_end,
        .reset = vbus__standing_on_reset,
        .closed = publisher_closed,
};

static void publisher_open_stream(vbus_publisher *p)
{
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;

        o.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH;
        vbus__standing_open(&p->s, &o, &publisher_stream_ops, p);
}

/* Writes as much of the pending message as window and link allow. Return: 0 when it is all
 * written, -EAGAIN when some remains, -ENOTCONN when the link failed. */
static int publisher_push(vbus_publisher *p)
{
        bool unused = false;
        int r = vbus__conn_send_message(p->s.conn, p->s.id, p->pending, p->n_pending,
                                        &p->pending_off, &unused, PUBSUB_FRAGMENT_MIN,
                                        p->pending_flags);

        if (r <= 0)
                return r == 0 ? -EAGAIN : r;
        publisher_drop_pending(p);
        return 0;
}

static void publisher_destroy(vbus_publisher *p)
{
        list_unlink(&p->link);
        vbus__standing_deinit(&p->s);
        free(p->pending);
        free(p);
}

/* --- subscriptions -------------------------------------------------------------------------- */

static void subscription_open_stream(vbus_subscription *s)
{
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;

        o.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE;
        o.initial_credit = PUBSUB_SUB_WINDOW;
        o.slow_policy = s->policy == VBUS_SLOW_BLOCK ? VBUS__V1__SLOW_POLICY__SLOW_POLICY_BLOCK
                                                     : VBUS__V1__SLOW_POLICY__SLOW_POLICY_DROP;
        vbus__standing_open(&s->s, &o, &subscription_stream_ops, s);
}

static void subscription_return_credit(vbus_subscription *s, size_t n)
{
        Vbus__V1__Credit cr = VBUS__V1__CREDIT__INIT;

        s->credit_owed += n;
        if (s->credit_owed < PUBSUB_SUB_WINDOW / 4 || s->s.state != VBUS_STANDING_OPEN)
                return;
        cr.increment = (uint32_t)s->credit_owed;
        s->credit_owed = 0;
        (void)vbus__conn_send_control(s->s.conn, VBUS_FRAME_CREDIT, s->s.id, &cr.base);
}

/*
 * A bump allocator on the stack for decoding one Meta: a Meta is at most VBUS_META_MAX bytes, so
 * its decoded form fits META_ARENA_SIZE, and each delivery costs no malloc/free.
 */
enum { META_ARENA_SIZE = 4 * VBUS_META_MAX };

typedef struct MetaArena {
        size_t used;
        max_align_t buf[META_ARENA_SIZE / sizeof(max_align_t)];
} MetaArena;

static void *arena_alloc(void *data, size_t size)
{
        MetaArena *a = data;
        size_t n = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);

        if (n > sizeof(a->buf) - a->used)
                return NULL;
        a->used += n;
        return (char *)a->buf + a->used - n;
}

static void arena_free(void *data, void *p)
{
        (void)data;
        (void)p;
}

static void meta_cache_clear(vbus_subscription *s)
{
        for (unsigned i = 0; i < META_CACHE_ENTRIES; i++) {
                MetaCacheEntry *e = &s->meta_cache[i];

                free(e->raw);
                if (e->meta)
                        vbus__v1__meta__free_unpacked(e->meta, NULL);
                *e = (MetaCacheEntry){0};
        }
}

/* The entry for the leading Meta bytes @raw, decoded now if no entry has them; NULL if they do
 * not decode to a valid topic (or out of memory): the caller then decodes the whole Meta. */
static const Vbus__V1__Meta *meta_cache_get(vbus_subscription *s, const uint8_t *raw, size_t n)
{
        MetaCacheEntry *e;
        Vbus__V1__Meta *meta;
        uint8_t *copy;

        for (unsigned i = 0; i < META_CACHE_ENTRIES; i++) {
                e = &s->meta_cache[i];
                if (e->meta && e->n_raw == n && memcmp(e->raw, raw, n) == 0)
                        return e->meta;
        }
        meta = vbus__v1__meta__unpack(NULL, n, raw);
        if (!meta)
                return NULL;
        copy = malloc(n);
        if (!copy || !meta->topic || !vbus__name_is_topic(meta->topic, strnlen(meta->topic, 256))) {
                free(copy);
                vbus__v1__meta__free_unpacked(meta, NULL);
                return NULL;
        }
        memcpy(copy, raw, n);
        e = &s->meta_cache[s->meta_cache_next];
        s->meta_cache_next = (s->meta_cache_next + 1) % META_CACHE_ENTRIES;
        free(e->raw);
        if (e->meta)
                vbus__v1__meta__free_unpacked(e->meta, NULL);
        *e = (MetaCacheEntry){.raw = copy, .n_raw = n, .meta = meta};
        return meta;
}

/* Runs the callback. Return: whether the subscription is still alive after it. */
static bool subscription_call(vbus_subscription *s, const vbus_message *m)
{
        PubSub *ps = s->ps;
        bool alive;

        s->gap = false;
        ps->delivering = s;
        s->cb(s, m, s->userdata);
        alive = ps->delivering == s;
        ps->delivering = NULL;
        return alive;
}

/*
 * The messages of a batch (protocol.md 5.5), in @body (private memory), @n_batch of them as the
 * session counted: the Meta describes the first, the others follow it in sequence, with nothing
 * dropped between them. A retained value is never batched.
 */
static int subscription_deliver_batch(vbus_subscription *s, vbus_message *m, const uint8_t *body,
                                      size_t n_body, uint32_t n_batch, bool *ret_alive)
{
        VbusBatchIter it;
        uint64_t first = m->sequence;
        const uint8_t *data;
        size_t len;
        int r;

        if (m->retained)
                return -EPROTO;
        vbus__batch_iter_init(&it, body, n_body, n_batch);
        for (uint64_t i = 0; (r = vbus__batch_next(&it, &data, &len)) == 1; i++) {
                m->data = data;
                m->n_data = len;
                m->sequence = first + i;
                if (i > 0) {
                        m->dropped = 0;
                        m->gap = false;
                }
                if (!subscription_call(s, m)) {
                        *ret_alive = false;
                        return 0;
                }
        }
        return r < 0 ? -EPROTO : 0;
}

/*
 * Decodes a delivery's Meta (@meta_raw, @n_meta bytes, private memory) and runs the callback with
 * @body (the message, or the records of a batch of @n_batch messages; 0: not a batch).
 * Return: 0 (*@ret_alive says whether the callback left the subscription alive), -EPROTO.
 */
static int subscription_deliver_parts(vbus_subscription *s, const uint8_t *meta_raw, size_t n_meta,
                                      const uint8_t *body, size_t n_body, uint32_t n_batch,
                                      bool *ret_alive)
{
        MetaArena arena;
        ProtobufCAllocator alloc = {
                .alloc = arena_alloc, .free = arena_free, .allocator_data = &arena};
        size_t n_const;
        const Vbus__V1__Meta *fixed = NULL;
        Vbus__V1__Meta *meta = NULL, *heap = NULL;
        vbus_message m;
        int r = 0;

        arena.used = 0;
        /* Topic and sender from the cache, the rest decoded alone: the same as decoding the whole
         * (vbus__meta_const_len()); anything else takes the whole decode, and its verdict. */
        n_const = vbus__meta_const_len(meta_raw, n_meta);
        if (n_const > 0 && (fixed = meta_cache_get(s, meta_raw, n_const)) != NULL)
                meta = vbus__v1__meta__unpack(&alloc, n_meta - n_const, meta_raw + n_const);
        if (!meta) {
                fixed = NULL;
                arena.used = 0;
                meta = vbus__v1__meta__unpack(&alloc, n_meta, meta_raw);
                /* Fields this version does not know are kept by protobuf-c, so a valid Meta of a
                 * later broker can outgrow the arena: decoded on the heap then. */
                if (!meta)
                        meta = heap = vbus__v1__meta__unpack(NULL, n_meta, meta_raw);
                if (!meta)
                        return -EPROTO;
                if (!meta->topic || !vbus__name_is_topic(meta->topic, strnlen(meta->topic, 256))) {
                        r = -EPROTO;
                        goto out;
                }
        }
        m = (vbus_message){.topic = fixed ? fixed->topic : meta->topic,
                           .data = body,
                           .n_data = n_body,
                           .sender = fixed ? fixed->sender : meta->sender,
                           .dropped = meta->dropped,
                           .sequence = meta->sequence,
                           .gap = s->gap,
                           .retained = meta->retained};
        /* The arena is on the stack: only a Meta decoded on the heap is freed. */
        if (n_batch > 0)
                r = subscription_deliver_batch(s, &m, body, n_body, n_batch, ret_alive);
        else
                *ret_alive = subscription_call(s, &m);
out:
        if (heap)
                vbus__v1__meta__free_unpacked(heap, NULL);
        return r;
}

/* A whole delivery in private memory (a reassembled message): Meta prefix, then the message. */
static int subscription_deliver(vbus_subscription *s, const uint8_t *buf, size_t len,
                                bool *ret_alive)
{
        const uint8_t *meta_raw, *body;
        size_t n_meta, n_body;

        if (vbus__meta_split(buf, len, &meta_raw, &n_meta, &body, &n_body) != 0)
                return -EPROTO;
        return subscription_deliver_parts(s, meta_raw, n_meta, body, n_body, 0, ret_alive);
}

/*
 * A delivery in one frame (a message, or a batch of @n_batch): its Meta prefix is copied out of
 * the shared ring before it is checked and decoded, so that what is checked is what is used;
 * the message bytes are handed to the callback where they lie, in the ring, which the broker
 * does not write again before they are consumed (after the callbacks). A batch is walked bounded
 * by the count the session charged, each length read once and checked against what is left of
 * the frame, so a writer changing the ring meanwhile cannot take the walk outside it
 * (vbus__batch_next(): a protocol error then).
 */
static int subscription_deliver_frame(vbus_subscription *s, const uint8_t *payload, size_t len,
                                      uint32_t n_batch, bool *ret_alive)
{
        uint8_t prefix[2 + VBUS_META_MAX];
        size_t n_prefix, n_meta, n_body;
        const uint8_t *meta_raw, *body;

        /* Where the prefix ends, read from the ring; then the prefix is copied and split again:
         * what is checked and decoded is the copy, which must be exactly one prefix. */
        if (vbus__meta_split(payload, len, &meta_raw, &n_meta, &body, &n_body) != 0)
                return -EPROTO;
        n_prefix = (size_t)(body - payload); /* at most 2 + VBUS_META_MAX */
        memcpy(prefix, payload, n_prefix);
        if (vbus__meta_split(prefix, n_prefix, &meta_raw, &n_meta, &body, &n_body) != 0 ||
            n_body != 0)
                return -EPROTO;
        return subscription_deliver_parts(s, meta_raw, n_meta, payload + n_prefix, len - n_prefix,
                                          n_batch, ret_alive);
}

/* A fragment: appended, and the message delivered when it is whole. */
static int subscription_take_fragment(vbus_subscription *s, const uint8_t *payload, size_t len,
                                      bool more, bool *ret_alive)
{
        uint8_t *copy;
        int r;

        if (s->n_rx + len > VBUS_MESSAGE_MAX + VBUS_META_MAX + 2)
                return -EPROTO;
        copy = realloc(s->rx, s->n_rx + len ? s->n_rx + len : 1);
        if (!copy)
                return -ENOMEM;
        s->rx = copy;
        memcpy(s->rx + s->n_rx, payload, len);
        s->n_rx += len;
        if (more)
                return 0;
        /* Taken out first: the callback may free the subscription. */
        copy = s->rx;
        len = s->n_rx;
        s->rx = NULL;
        s->n_rx = 0;
        r = subscription_deliver(s, copy, len, ret_alive);
        free(copy);
        return r;
}

static int subscription_on_data(void *obj, VbusStream *vs, const VbusFrame *f)
{
        vbus_subscription *s = obj;
        vbus_conn *c = s->s.conn;
        bool more = f->header.flags & VBUS_FLAG_MORE;
        bool alive = true;
        int r;

        (void)vs; /* may be gone once the callback has run: not used */
        /* The broker starts every message it delivers with a Meta prefix (protocol.md 2.4): one
         * without is a protocol violation, not bytes to read a Meta from. */
        if (!s->rx && !(f->header.flags & VBUS_FLAG_META))
                return -EPROTO;
        if (!s->rx && !more)
                r = subscription_deliver_frame(s, f->payload, f->header.length,
                                               f->header.n_messages, &alive);
        else
                r = subscription_take_fragment(s, f->payload, f->header.length, more, &alive);
        /* Given back as it was charged: the length, and a charge per message it ends. */
        if (r == 0 && alive)
                subscription_return_credit(s, f->header.length +
                                                      (uint64_t)(f->header.flags & VBUS_FLAG_BATCH
                                                                         ? f->header.n_messages
                                                                         : !more) *
                                                              vbus__conn_msg_charge(c));
        return r < 0 ? r : c->link_error;
}

static void subscription_closed(void *obj, VbusStream *vs)
{
        vbus_subscription *s = obj;

        (void)vs;
        if (s->s.state != VBUS_STANDING_FAILED)
                s->gap = true; /* lost with the link: the next message follows a gap */
        vbus__standing_closed(&s->s);
        free(s->rx);
        s->rx = NULL;
        s->n_rx = 0;
        s->credit_owed = 0;
}

static const VbusStreamOps subscription_stream_ops = {
        .accept = vbus__standing_on_accept,
        .reject = vbus__standing_on_reject,
        .data = subscription_on_data,
        .end = vbus__standing_on_end,
        .reset = vbus__standing_on_reset,
        .closed = subscription_closed,
};

static void subscription_destroy(vbus_subscription *s)
{
        if (s->ps->delivering == s)
                s->ps->delivering = NULL;
        list_unlink(&s->link);
        vbus__standing_deinit(&s->s);
        free(s->rx);
        meta_cache_clear(s);
        free(s);
}

/* --- the feature ------------------------------------------------------------------------------ */

static void pubsub_link_ready(void *state)
{
        PubSub *ps = state;
        List *pos;

        for (pos = ps->publishers.next; pos != &ps->publishers && vbus__conn_is_up(ps->conn);
             pos = pos->next)
                publisher_open_stream(list_entry(pos, vbus_publisher, link));
        for (pos = ps->subscriptions.next; pos != &ps->subscriptions && vbus__conn_is_up(ps->conn);
             pos = pos->next)
                subscription_open_stream(list_entry(pos, vbus_subscription, link));
}

static int pubsub_push(void *state)
{
        PubSub *ps = state;
        int progress = 0;

        for (List *pos = ps->publishers.next; pos != &ps->publishers && vbus__conn_is_up(ps->conn);
             pos = pos->next) {
                vbus_publisher *p = list_entry(pos, vbus_publisher, link);

                if (p->pending && publisher_push(p) == 0)
                        progress = 1;
        }
        return progress;
}

static bool pubsub_has_unsent(void *state)
{
        PubSub *ps = state;

        for (List *pos = ps->publishers.next; pos != &ps->publishers; pos = pos->next)
                if (list_entry(pos, vbus_publisher, link)->pending)
                        return true;
        return false;
}

static void pubsub_free_all(void *state)
{
        PubSub *ps = state;
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &ps->publishers)
                publisher_destroy(list_entry(pos, vbus_publisher, link));
        list_for_each_safe(pos, tmp, &ps->subscriptions)
                subscription_destroy(list_entry(pos, vbus_subscription, link));
        free(ps);
}

static const VbusFeatureOps pubsub_ops = {
        .link_ready = pubsub_link_ready,
        .push = pubsub_push,
        .has_unsent = pubsub_has_unsent,
        .free_all = pubsub_free_all,
};

/* --- public: publish ---------------------------------------------------------------------- */

VBUS_EXPORT int vbus_publisher_open(vbus_conn *c, const char *topic, vbus_publisher **ret_pub)
{
        vbus_publisher *p;
        PubSub *ps;

        if (!c || !topic || !ret_pub || !vbus__name_is_topic(topic, strnlen(topic, 256)))
                return -EINVAL;
        ps = pubsub_get(c);
        p = ps ? vbus__standing_new(c, sizeof(*p), topic) : NULL;
        if (!p)
                return -ENOMEM;
        p->ps = ps;
        list_add_tail(&ps->publishers, &p->link);
        if (c->state == VBUS_CONN_READY)
                publisher_open_stream(p);
        *ret_pub = p;
        return 0;
}

VBUS_EXPORT vbus_publisher *vbus_publisher_free(vbus_publisher *p)
{
        if (!p)
                return NULL;
        /* A message still in fragments is abandoned: RESET tells the broker to drop it. */
        vbus__conn_release_stream(p->s.conn, &p->s.vs,
                                  p->pending ? VBUS_FRAME_RESET : VBUS_FRAME_END,
                                  p->pending ? VBUS_STATUS_CANCELLED : VBUS_STATUS_OK, NULL);
        publisher_destroy(p);
        return NULL;
}

/* vbus_publish() and vbus_publish_retained(): @flags is 0 or VBUS_FLAG_RETAIN. */
static int publish(vbus_publisher *p, const void *data, size_t len, uint8_t flags)
{
        vbus_conn *c;
        int r;

        if (!p || (len > 0 && !data))
                return -EINVAL;
        if (len > VBUS_MESSAGE_MAX)
                return -EMSGSIZE;
        c = p->s.conn;
        if (p->s.state == VBUS_STANDING_FAILED)
                return -EPIPE;
        if (c->state == VBUS_CONN_DISCONNECTED)
                return -ENOTCONN;
        if (c->state != VBUS_CONN_READY || p->s.state == VBUS_STANDING_IDLE)
                return -EAGAIN;
        /* Known once ready: a broker without retained values would take RETAIN as a
         * protocol violation. */
        if ((flags & VBUS_FLAG_RETAIN) && !(c->broker_features & VBUS_FEATURE_RETAIN))
                return -EOPNOTSUPP;
        if (p->pending) {
                r = publisher_push(p);
                if (r < 0)
                        return r == -ENOTCONN ? r : -EAGAIN;
        }
        /* Combined (protocol.md 5.5): a small message joins the batch frame being written in
         * the link, which goes out as soon as the broker has caught up with what came before
         * (looked at every PUBSUB_BATCH_LOOK messages: its side of the ring is a cache line it
         * writes), at the connection's next flush (which vbus_conn_get_timeout() asks for at
         * once, as it did for a single frame), before anything else is written, or when full.
         * No message waits longer than it would alone: a sleeping broker learnt of a single
         * frame only at that flush too. */
        if (flags == 0 && len <= PUBSUB_BATCH_MESSAGE_MAX && vbus__conn_batches(c)) {
                r = vbus__conn_batch_add(c, p->s.id, data, len);
                if (r == 0 && vbus__conn_batch_messages(c) % PUBSUB_BATCH_LOOK == 0 &&
                    !vbus__conn_peer_busy(c))
                        r = vbus__conn_batch_commit(c);
                return r;
        }
        /* Fast path: the whole message in one frame, straight into the link (-EAGAIN: no
         * credit, the broker holds us back, or no room in the link). */
        if (len <= vbus__endpoint_max_payload(&c->ep))
                return vbus__conn_send_data(c, p->s.id, flags, data, len);
        /* Too big for one frame: keep a copy and send it in fragments as room appears. */
        p->pending = malloc(len);
        if (!p->pending)
                return -ENOMEM;
        memcpy(p->pending, data, len);
        p->n_pending = len;
        p->pending_off = 0;
        p->pending_flags = flags;
        r = publisher_push(p);
        return r == -ENOTCONN ? r : 0;
}

VBUS_EXPORT int vbus_publish(vbus_publisher *p, const void *data, size_t len)
{
        return publish(p, data, len, 0);
}

VBUS_EXPORT int vbus_publish_retained(vbus_publisher *p, const void *data, size_t len)
{
        return publish(p, data, len, VBUS_FLAG_RETAIN);
}

static int publish_wait(vbus_publisher *p, const void *data, size_t len, uint64_t timeout_usec,
                        uint8_t flags)
{
        uint64_t deadline = vbus__deadline_after(vbus__client_now(), timeout_usec);

        if (!p)
                return -EINVAL;
        for (;;) {
                uint64_t now;
                int r = publish(p, data, len, flags);

                if (r != -EAGAIN)
                        return r;
                now = vbus__client_now();
                if (now >= deadline)
                        return -ETIMEDOUT;
                r = vbus_conn_wait(p->s.conn, vbus__time_left(deadline, now, 100000));
                if (r < 0 && r != -ETIMEDOUT)
                        return r;
        }
}

VBUS_EXPORT int vbus_publish_wait(vbus_publisher *p, const void *data, size_t len,
                                  uint64_t timeout_usec)
{
        return publish_wait(p, data, len, timeout_usec, 0);
}

VBUS_EXPORT int vbus_publish_retained_wait(vbus_publisher *p, const void *data, size_t len,
                                           uint64_t timeout_usec)
{
        return publish_wait(p, data, len, timeout_usec, VBUS_FLAG_RETAIN);
}

VBUS_EXPORT int vbus_publisher_get_status(vbus_publisher *p, const char **ret_message)
{
        return vbus__standing_get_status(p ? &p->s : NULL, ret_message);
}

/* --- public: subscribe -------------------------------------------------------------------- */

VBUS_EXPORT int vbus_subscribe(vbus_conn *c, const char *pattern, vbus_slow_policy policy,
                               vbus_message_cb cb, void *userdata, vbus_subscription **ret_sub)
{
        vbus_subscription *s;
        PubSub *ps;

        if (!c || !pattern || !cb || !ret_sub ||
            (policy != VBUS_SLOW_DROP && policy != VBUS_SLOW_BLOCK) ||
            !vbus__name_is_pattern(pattern, strnlen(pattern, 256)))
                return -EINVAL;
        ps = pubsub_get(c);
        s = ps ? vbus__standing_new(c, sizeof(*s), pattern) : NULL;
        if (!s)
                return -ENOMEM;
        s->ps = ps;
        list_add_tail(&ps->subscriptions, &s->link);
        s->policy = policy;
        s->cb = cb;
        s->userdata = userdata;
        if (c->state == VBUS_CONN_READY)
                subscription_open_stream(s);
        *ret_sub = s;
        return 0;
}

VBUS_EXPORT vbus_subscription *vbus_subscription_free(vbus_subscription *s)
{
        if (!s)
                return NULL;
        vbus__conn_release_stream(s->s.conn, &s->s.vs, VBUS_FRAME_RESET, VBUS_STATUS_CANCELLED,
                                  NULL);
        subscription_destroy(s);
        return NULL;
}

VBUS_EXPORT bool vbus_subscription_is_active(vbus_subscription *s)
{
        return s && vbus__standing_is_active(&s->s);
}

VBUS_EXPORT int vbus_subscription_get_status(vbus_subscription *s, const char **ret_message)
{
        return vbus__standing_get_status(s ? &s->s : NULL, ret_message);
}

/* --- public: messages --------------------------------------------------------------------- */

VBUS_EXPORT const char *vbus_message_get_topic(const vbus_message *m)
{
        return m ? m->topic : NULL;
}

VBUS_EXPORT const void *vbus_message_get_data(const vbus_message *m, size_t *ret_size)
{
        if (!m)
                return NULL;
        if (ret_size)
                *ret_size = m->n_data;
        return m->data;
}

VBUS_EXPORT uint32_t vbus_message_get_sender_domid(const vbus_message *m)
{
        return m && m->sender ? m->sender->domid : 0;
}

VBUS_EXPORT const char *vbus_message_get_sender_name(const vbus_message *m)
{
        return m && m->sender && m->sender->domain_name ? m->sender->domain_name : "";
}

VBUS_EXPORT const char *vbus_message_get_sender_key(const vbus_message *m)
{
        return m && m->sender && m->sender->key_name ? m->sender->key_name : "";
}

VBUS_EXPORT bool vbus_message_is_sender_local(const vbus_message *m)
{
        return m && m->sender && m->sender->local;
}

VBUS_EXPORT uint32_t vbus_message_get_sender_uid(const vbus_message *m)
{
        return m && m->sender ? m->sender->uid : 0;
}

VBUS_EXPORT uint32_t vbus_message_get_sender_pid(const vbus_message *m)
{
        return m && m->sender ? m->sender->pid : 0;
}

VBUS_EXPORT uint32_t vbus_message_get_sender_session(const vbus_message *m)
{
        return m && m->sender ? m->sender->session : 0;
}

VBUS_EXPORT bool vbus_message_get_sender_claims(const vbus_message *m, uint32_t *ret_uid,
                                                uint32_t *ret_pid, const char **ret_command)
{
        const Vbus__V1__Claims *c = m && m->sender ? m->sender->claims : NULL;

        if (!c)
                return false;
        if (ret_uid)
                *ret_uid = c->uid;
        if (ret_pid)
                *ret_pid = c->pid;
        if (ret_command)
                *ret_command = c->command ? c->command : "";
        return true;
}

VBUS_EXPORT uint64_t vbus_message_get_dropped(const vbus_message *m)
{
        return m ? m->dropped : 0;
}

VBUS_EXPORT uint64_t vbus_message_get_sequence(const vbus_message *m)
{
        return m ? m->sequence : 0;
}

VBUS_EXPORT bool vbus_message_is_retained(const vbus_message *m)
{
        return m && m->retained;
}

VBUS_EXPORT bool vbus_message_follows_gap(const vbus_message *m)
{
        return m && m->gap;
}
