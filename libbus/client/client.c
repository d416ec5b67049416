/* SPDX-License-Identifier: MIT */
/*
 * client: the public connection, publish and subscribe API of libvbus (<vbus/vbus.h>).
 *
 * A vbus_conn holds one link (libbus/link.c) and one client session (libbus/session.c). It
 * connects over a UNIX socket (connect) or a vchan (this domain is the vchan server: it publishes
 * its rings and waits for the broker to map them). Publishers and subscriptions are kept across
 * reconnects: when the link is lost every stream is dropped locally, a reconnect is scheduled
 * with back-off, and when the new link is ready every stream is opened again and each
 * subscription marks its next message as following a gap.
 *
 * The library never logs, never aborts on peer input, and runs callbacks only from
 * vbus_conn_process().
 */
#include "client.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <xenstore.h>

#include <vbus/vbus.h>

#include "name.h"

enum {
        /* The max_frame this side announces. */
        CLIENT_MAX_FRAME = VBUS_FRAME_MAX_DEFAULT,
        /* Streams a connection may have open at once. */
        CLIENT_MAX_STREAMS = 4096,
        /* Window granted to the broker per subscription. */
        CLIENT_SUB_WINDOW = 1024 * 1024,
        /* Reconnect back-off, doubling from the first to the last. */
        CLIENT_RECONNECT_MIN_US = 50 * 1000,
        CLIENT_RECONNECT_MAX_US = 2 * 1000 * 1000,
        /* vchan ring size this domain grants each way, unless $VBUS_RING_SIZE says otherwise:
         * 1 MiB lets a whole 64 KiB message and many small ones sit in the ring at once (about
         * 4x the throughput of 64 KiB rings, bench/pubsub), for 512 grant entries per ring. */
        CLIENT_RING_SIZE = 1024 * 1024,
        /* The smallest ring $VBUS_RING_SIZE may ask for: a whole control frame must fit. */
        CLIENT_RING_MIN = 8192,
        /* A published vchan the broker has not mapped by then is withdrawn and published
         * afresh: the broker may have removed it as stale, or be a new broker. */
        CLIENT_VCHAN_WAIT_US = 5 * 1000 * 1000,
};

typedef enum StreamState {
        ST_IDLE = 0,    /* not opened on the current link (yet) */
        ST_OPENING = 1, /* OPEN sent */
        ST_OPEN = 2,    /* ACCEPT received */
        ST_FAILED = 3,  /* REJECT/RESET: will not be reopened */
} StreamState;

struct vbus_publisher {
        List link; /* in conn->publishers */
        vbus_conn *conn;
        char *topic;
        StreamState state;
        uint32_t id;
        int status;
        char *status_message;
        /* The rest of a message being sent in fragments (one message at most). */
        uint8_t *pending;
        size_t n_pending, pending_off;
};

struct vbus_subscription {
        List link; /* in conn->subscriptions */
        vbus_conn *conn;
        char *pattern;
        vbus_slow_policy policy;
        vbus_message_cb cb;
        void *userdata;
        StreamState state;
        uint32_t id;
        int status;
        char *status_message;
        bool gap; /* the next message follows a reconnect */
        uint64_t credit_owed;
        uint8_t *rx; /* fragments being reassembled (Meta prefix included) */
        size_t n_rx;
        uint8_t *scratch; /* private copy of a one-frame delivery, kept across deliveries */
        size_t scratch_cap;
};

struct vbus_message {
        const char *topic;
        const uint8_t *data;
        size_t n_data;
        const Vbus__V1__Identity *sender;
        uint64_t dropped, sequence;
        bool gap;
};

uint64_t vbus__client_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int set_status(int *status, char **message, int st, const char *text)
{
        char *copy = text ? strdup(text) : NULL;

        *status = st;
        free(*message);
        *message = copy;
        return 0;
}

/* --- URL ---------------------------------------------------------------------------------- */

static int parse_url(vbus_conn *c, const char *url)
{
        if (strncmp(url, "unix:", 5) == 0) {
                const char *p = url + 5;

                if (p[0] == '\0' || strlen(p) >= sizeof(c->path))
                        return -EINVAL;
                c->kind = URL_UNIX;
                strcpy(c->path, p);
                return 0;
        }
        if (strncmp(url, "vchan:", 6) == 0) {
                const char *p = url + 6;
                char *end;
                unsigned long v;

                if (p[0] < '0' || p[0] > '9')
                        return -EINVAL;
                errno = 0;
                v = strtoul(p, &end, 10);
                if (errno || *end || v >= 0x7ff0)
                        return -EINVAL;
                c->kind = URL_VCHAN;
                c->broker_domid = (uint32_t)v;
                return 0;
        }
        return strchr(url, ':') ? -EAFNOSUPPORT : -EINVAL;
}

static const char *default_url(void)
{
        const char *env = getenv("VBUS_URL");
        struct stat st;

        if (env && env[0])
                return env;
        if (stat("/run/vbus/broker.sock", &st) == 0 && S_ISSOCK(st.st_mode))
                return "unix:/run/vbus/broker.sock";
        return "vchan:0";
}

/* --- link setup and teardown -------------------------------------------------------------- */

static void conn_drop_link(vbus_conn *c)
{
        List *pos;

        if (c->have_link) {
                c->have_link = false;
                vbus__endpoint_deinit(&c->ep);
        }
        c->hello_sent = false;
        c->link_error = 0;
        vbus__rpc_link_dropped(c);
        for (pos = c->publishers.next; pos != &c->publishers; pos = pos->next) {
                vbus_publisher *p = list_entry(pos, vbus_publisher, link);

                if (p->state != ST_FAILED)
                        p->state = ST_IDLE;
                free(p->pending);
                p->pending = NULL;
                p->n_pending = p->pending_off = 0;
        }
        for (pos = c->subscriptions.next; pos != &c->subscriptions; pos = pos->next) {
                vbus_subscription *s = list_entry(pos, vbus_subscription, link);

                if (s->state != ST_FAILED)
                        s->state = ST_IDLE;
                if (c->ever_ready)
                        s->gap = true;
                free(s->rx);
                s->rx = NULL;
                s->n_rx = 0;
                s->credit_owed = 0;
        }
}

void vbus__conn_lost(vbus_conn *c)
{
        if (c->in_read) {
                /* The endpoint is reading the link: it stops at this frame, then conn_read()
                 * drops the link. */
                if (c->link_error == 0)
                        c->link_error = -ENOTCONN;
                return;
        }
        conn_drop_link(c);
        c->state = c->ever_ready ? VBUS_CONN_DISCONNECTED : VBUS_CONN_CONNECTING;
        c->backoff = c->backoff ? c->backoff * 2 : CLIENT_RECONNECT_MIN_US;
        if (c->backoff > CLIENT_RECONNECT_MAX_US)
                c->backoff = CLIENT_RECONNECT_MAX_US;
        c->reconnect_at = vbus__client_now() + c->backoff;
}

static int connect_unix(vbus_conn *c, VbusTransport *t)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int r;

        if (fd < 0)
                return -errno;
        strcpy(sa.sun_path, c->path);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        r = vbus__transport_init_unix(t, fd);
        if (r < 0)
                close(fd);
        return r;
}

/* $VBUS_RING_SIZE (bytes, CLIENT_RING_MIN..1 MiB) for guests with small grant tables, such as
 * unikernels; otherwise CLIENT_RING_SIZE. A malformed value is ignored. */
static size_t ring_size(void)
{
        const char *env = getenv("VBUS_RING_SIZE");
        char *end;
        unsigned long v;

        if (!env || !env[0])
                return CLIENT_RING_SIZE;
        errno = 0;
        v = strtoul(env, &end, 10);
        if (errno || *end || v < CLIENT_RING_MIN || v > 1024 * 1024)
                return CLIENT_RING_SIZE;
        return v;
}

static int connect_vchan(vbus_conn *c, VbusTransport *t)
{
        struct xs_handle *xs = xs_open(0);
        char path[96], *v;
        unsigned int len = 0;
        uint32_t self;
        VbusVchan *vc = NULL;
        int r;

        if (!xs)
                return -(errno ? errno : EIO);
        v = xs_read(xs, XBT_NULL, "domid", &len);
        xs_close(xs);
        if (!v)
                return -ENOENT;
        r = vbus__vchan_parse_uint(v, len, VBUS_VCHAN_DOMID_MAX, &self);
        free(v);
        if (r < 0)
                return r;
        r = vbus__vchan_path_build(path, sizeof(path), self, c->broker_domid, "vbus");
        if (r < 0)
                return r;
        /* One vchan per domain: if another process of this domain holds it, do not take it over
         * (that would cut it off). The broker removes the keys of a holder that died. */
        xs = xs_open(0);
        if (xs) {
                char key[128];

                snprintf(key, sizeof(key), "%s/%s", path, VBUS_VCHAN_KEY_RING_REF);
                v = xs_read(xs, XBT_NULL, key, &len);
                xs_close(xs);
                if (v) {
                        free(v);
                        return -EADDRINUSE;
                }
        }
        r = vbus__vchan_server_new(&vc, c->broker_domid, path, ring_size(), ring_size());
        if (r < 0)
                return r;
        return vbus__transport_init_vchan(t, vc);
}

static int conn_send_hello(vbus_conn *c)
{
        Vbus__V1__Hello h = VBUS__V1__HELLO__INIT;
        int r;

        h.version_min = VBUS_PROTOCOL_VERSION;
        h.version_max = VBUS_PROTOCOL_VERSION;
        h.max_frame = CLIENT_MAX_FRAME;
        h.peer_name = (char *)"libvbus";
        r = vbus__endpoint_send_control(&c->ep, VBUS_FRAME_HELLO, 0, 0, &h.base);
        if (r < 0)
                return r;
        c->hello_sent = true;
        return vbus__endpoint_flush(&c->ep);
}

static const VbusEndpointOps conn_endpoint_ops;

static int conn_connect(vbus_conn *c)
{
        VbusTransport t;
        int r;

        r = c->kind == URL_UNIX ? connect_unix(c, &t) : connect_vchan(c, &t);
        c->last_error = r < 0 ? r : 0;
        if (r < 0)
                return r;
        r = vbus__endpoint_init(&c->ep, &t, VBUS_ROLE_CLIENT, CLIENT_MAX_FRAME, CLIENT_MAX_STREAMS,
                                &conn_endpoint_ops, c);
        if (r < 0) {
                vbus__transport_deinit(&t);
                return r;
        }
        c->have_link = true;
        c->link_started = vbus__client_now();
        r = conn_send_hello(c);
        if (r < 0 && r != -EAGAIN) {
                conn_drop_link(c);
                return r;
        }
        return 0;
}

/* --- sending ------------------------------------------------------------------------------ */

/* Whether a send's error means the link is unusable, rather than "not now" or "not allowed". */
static bool link_failed(int r)
{
        return r < 0 && r != -EAGAIN && r != -EINVAL && r != -E2BIG && r != -ENOMEM && r != -ENOENT;
}

static bool conn_link_usable(const vbus_conn *c)
{
        return c->have_link && c->link_error == 0;
}

int vbus__conn_send_control(vbus_conn *c, uint8_t type, uint32_t stream_id,
                            const ProtobufCMessage *msg)
{
        int r;

        if (!conn_link_usable(c))
                return -ENOTCONN;
        r = vbus__endpoint_send_control(&c->ep, type, 0, stream_id, msg);
        if (link_failed(r))
                vbus__conn_lost(c);
        return r;
}

void vbus__conn_end_stream(vbus_conn *c, uint32_t stream_id, uint8_t type, int status,
                           const char *message)
{
        int r;

        if (!conn_link_usable(c))
                return;
        r = vbus__endpoint_send_end(&c->ep, type, stream_id, status, message);
        if (link_failed(r))
                vbus__conn_lost(c);
        else
                (void)vbus__endpoint_flush(&c->ep);
}

size_t vbus__conn_data_room(vbus_conn *c, uint32_t stream_id)
{
        ssize_t room;

        if (!conn_link_usable(c))
                return 0;
        room = vbus__endpoint_data_room(&c->ep, stream_id);
        return room > 0 ? (size_t)room : 0;
}

int vbus__conn_send_data(vbus_conn *c, uint32_t stream_id, uint8_t flags, const void *data,
                         size_t n)
{
        struct iovec piece = {(void *)data, n};
        int r;

        if (!conn_link_usable(c))
                return -ENOTCONN;
        r = vbus__endpoint_send_data(&c->ep, stream_id, flags, &piece, 1);
        if (r == -ENOENT)
                return -EPIPE;
        if (link_failed(r)) {
                vbus__conn_lost(c);
                return -ENOTCONN;
        }
        return r;
}

static const VbusStreamOps legacy_stream_ops;

int vbus__conn_open_stream(vbus_conn *c, const Vbus__V1__Open *o, uint32_t *ret_id)
{
        int r;

        if (!conn_link_usable(c))
                return -ENOTCONN;
        r = vbus__endpoint_open(&c->ep, o, &legacy_stream_ops, c, ret_id);
        if (link_failed(r)) {
                vbus__conn_lost(c);
                return -ENOTCONN;
        }
        return r;
}

static int open_stream(vbus_conn *c, Vbus__V1__StreamKind kind, const char *name, uint32_t credit,
                       Vbus__V1__SlowPolicy policy, uint32_t *ret_id)
{
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;

        o.name = (char *)name;
        o.kind = kind;
        o.initial_credit = credit;
        o.slow_policy = policy;
        return vbus__conn_open_stream(c, &o, ret_id);
}

static void publisher_open_stream(vbus_publisher *p)
{
        if (p->state == ST_IDLE &&
            open_stream(p->conn, VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, p->topic, 0,
                        VBUS__V1__SLOW_POLICY__SLOW_POLICY_UNSPECIFIED, &p->id) == 0)
                p->state = ST_OPENING;
}

static void subscription_open_stream(vbus_subscription *s)
{
        Vbus__V1__SlowPolicy pol = s->policy == VBUS_SLOW_BLOCK
                                           ? VBUS__V1__SLOW_POLICY__SLOW_POLICY_BLOCK
                                           : VBUS__V1__SLOW_POLICY__SLOW_POLICY_DROP;

        if (s->state == ST_IDLE &&
            open_stream(s->conn, VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE, s->pattern,
                        CLIENT_SUB_WINDOW, pol, &s->id) == 0)
                s->state = ST_OPENING;
}

static void conn_open_all(vbus_conn *c)
{
        List *pos;

        for (pos = c->publishers.next; pos != &c->publishers && c->have_link; pos = pos->next)
                publisher_open_stream(list_entry(pos, vbus_publisher, link));
        for (pos = c->subscriptions.next; pos != &c->subscriptions && c->have_link; pos = pos->next)
                subscription_open_stream(list_entry(pos, vbus_subscription, link));
}

/*
 * Writes as much of the publisher's pending message as window and link allow.
 * Return: 0 when it is all written, -EAGAIN when some remains, another -errno on failure.
 */
static int publisher_push(vbus_publisher *p)
{
        vbus_conn *c = p->conn;

        while (p->pending_off < p->n_pending || (p->n_pending == 0 && p->pending)) {
                ssize_t room = vbus__endpoint_data_room(&c->ep, p->id);
                size_t chunk = p->n_pending - p->pending_off;
                uint8_t flags = 0;
                int r;

                if (room < 0)
                        return -EPIPE;
                if (chunk > (size_t)room) {
                        /* Fragments of at least 1 KiB, so a small window does not spray frames. */
                        if (room < 1024)
                                return -EAGAIN;
                        chunk = (size_t)room;
                }
                if (p->pending_off + chunk < p->n_pending)
                        flags = VBUS_FLAG_MORE;
                r = vbus__conn_send_data(c, p->id, flags, p->pending + p->pending_off, chunk);
                if (r < 0)
                        return r;
                p->pending_off += chunk;
                if (p->pending_off >= p->n_pending) {
                        free(p->pending);
                        p->pending = NULL;
                        p->n_pending = p->pending_off = 0;
                        return 0;
                }
        }
        return 0;
}

static int conn_push_publishers(vbus_conn *c)
{
        int progress = 0;
        List *pos;

        for (pos = c->publishers.next; pos != &c->publishers && c->have_link; pos = pos->next) {
                vbus_publisher *p = list_entry(pos, vbus_publisher, link);

                if (p->pending && publisher_push(p) == 0)
                        progress = 1;
        }
        return progress;
}

/* --- receiving ---------------------------------------------------------------------------- */

static vbus_publisher *find_publisher(vbus_conn *c, uint32_t id)
{
        for (List *pos = c->publishers.next; pos != &c->publishers; pos = pos->next) {
                vbus_publisher *p = list_entry(pos, vbus_publisher, link);

                if (p->id == id && (p->state == ST_OPENING || p->state == ST_OPEN))
                        return p;
        }
        return NULL;
}

static vbus_subscription *find_subscription(vbus_conn *c, uint32_t id)
{
        for (List *pos = c->subscriptions.next; pos != &c->subscriptions; pos = pos->next) {
                vbus_subscription *s = list_entry(pos, vbus_subscription, link);

                if (s->id == id && (s->state == ST_OPENING || s->state == ST_OPEN))
                        return s;
        }
        return NULL;
}

static void subscription_return_credit(vbus_subscription *s, size_t n)
{
        Vbus__V1__Credit cr = VBUS__V1__CREDIT__INIT;

        s->credit_owed += n;
        if (s->credit_owed < CLIENT_SUB_WINDOW / 4 || s->state != ST_OPEN)
                return;
        cr.increment = (uint32_t)s->credit_owed;
        s->credit_owed = 0;
        (void)vbus__conn_send_control(s->conn, VBUS_FRAME_CREDIT, s->id, &cr.base);
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

/* Decodes a whole delivery (Meta prefix + message) and runs the callback. */
static int subscription_deliver(vbus_subscription *s, const uint8_t *buf, size_t len)
{
        MetaArena arena;
        ProtobufCAllocator alloc = {
                .alloc = arena_alloc, .free = arena_free, .allocator_data = &arena};
        const uint8_t *meta_raw, *body;
        size_t n_meta, n_body;
        Vbus__V1__Meta *meta;
        vbus_message m;
        int r;

        r = vbus__meta_split(buf, len, &meta_raw, &n_meta, &body, &n_body);
        if (r != 0)
                return -EPROTO;
        arena.used = 0;
        meta = vbus__v1__meta__unpack(&alloc, n_meta, meta_raw);
        if (!meta)
                return -EPROTO;
        if (!meta->topic || !vbus__name_is_topic(meta->topic, strnlen(meta->topic, 256)))
                return -EPROTO;
        m = (vbus_message){.topic = meta->topic,
                           .data = body,
                           .n_data = n_body,
                           .sender = meta->sender,
                           .dropped = meta->dropped,
                           .sequence = meta->sequence,
                           .gap = s->gap};
        s->gap = false;
        s->cb(s, &m, s->userdata);
        return 0; /* the arena is on the stack: nothing to free */
}

static int on_data(vbus_conn *c, const VbusFrame *f)
{
        vbus_subscription *s = find_subscription(c, f->header.stream_id);
        bool more = f->header.flags & VBUS_FLAG_MORE;
        const uint8_t *payload = f->payload;
        size_t len = f->header.length;
        uint8_t *copy;
        int r;

        if (!s)
                return 0; /* publishers receive no data; the session bounded it */
        if (!s->rx && !more) {
                /* Copy out of the shared ring before parsing, into a buffer kept across
                 * deliveries. */
                if (len > s->scratch_cap) {
                        copy = realloc(s->scratch, len);
                        if (!copy)
                                return -ENOMEM;
                        s->scratch = copy;
                        s->scratch_cap = len;
                }
                if (len > 0)
                        memcpy(s->scratch, payload, len);
                r = subscription_deliver(s, s->scratch, len);
        } else {
                if (s->n_rx + len > VBUS_MESSAGE_MAX + VBUS_META_MAX + 2)
                        return -EPROTO;
                copy = realloc(s->rx, s->n_rx + len ? s->n_rx + len : 1);
                if (!copy)
                        return -ENOMEM;
                s->rx = copy;
                memcpy(s->rx + s->n_rx, payload, len);
                s->n_rx += len;
                r = 0;
                if (!more) {
                        r = subscription_deliver(s, s->rx, s->n_rx);
                        free(s->rx);
                        s->rx = NULL;
                        s->n_rx = 0;
                }
        }
        /* The callback may have freed the subscription: look it up again. */
        s = find_subscription(c, f->header.stream_id);
        if (r == 0 && s)
                subscription_return_credit(s, len);
        return r;
}

static void on_stream_end(vbus_conn *c, uint32_t id, int status, const char *message)
{
        vbus_publisher *p = find_publisher(c, id);
        vbus_subscription *s = find_subscription(c, id);

        if (p) {
                p->state = ST_FAILED;
                set_status(&p->status, &p->status_message, status, message);
        }
        if (s) {
                s->state = ST_FAILED;
                set_status(&s->status, &s->status_message, status, message);
        }
}

static int conn_dispatch(vbus_conn *c, const VbusFrame *f, const VbusControl *ctl, bool closed)
{
        uint32_t id = f->header.stream_id;
        int r = vbus__rpc_dispatch(c, f, ctl, closed);

        if (r != 0)
                return r < 0 ? r : 0;

        switch (f->header.type) {
        case VBUS_FRAME_ACCEPT: {
                vbus_publisher *p = find_publisher(c, id);
                vbus_subscription *s = find_subscription(c, id);

                if (p)
                        p->state = ST_OPEN;
                if (s)
                        s->state = ST_OPEN;
                return 0;
        }
        case VBUS_FRAME_REJECT: {
                const Vbus__V1__Reject *m = (const Vbus__V1__Reject *)ctl->msg;

                on_stream_end(c, id, m->status, m->message);
                return 0;
        }
        case VBUS_FRAME_END:
        case VBUS_FRAME_RESET: {
                const Vbus__V1__End *m = (const Vbus__V1__End *)ctl->msg;

                if (closed || f->header.type == VBUS_FRAME_RESET)
                        on_stream_end(c, id,
                                      m->status == VBUS__V1__STATUS__STATUS_OK
                                              ? VBUS_STATUS_UNAVAILABLE
                                              : (int)m->status,
                                      m->message);
                return 0;
        }
        case VBUS_FRAME_DATA:
                return on_data(c, f);
        default:
                return 0;
        }
}

/* Hands a stream frame to conn_dispatch(); stops the read when the link failed meanwhile. */
static int legacy_frame(vbus_conn *c, VbusStream *vs, uint8_t type, const void *msg,
                        const VbusFrame *f)
{
        VbusFrame hdr = {.header = {.type = type, .stream_id = vs->id}};
        VbusControl ctl = {.type = type, .msg = (ProtobufCMessage *)msg};
        bool closed = type == VBUS_FRAME_REJECT || type == VBUS_FRAME_RESET ||
                      (vs->local_ended && vs->remote_ended);
        int r = conn_dispatch(c, f ? f : &hdr, &ctl, closed);

        return r < 0 ? r : c->link_error;
}

static int legacy_accept(void *obj, VbusStream *vs, const Vbus__V1__Accept *m)
{
        return legacy_frame(obj, vs, VBUS_FRAME_ACCEPT, m, NULL);
}

static int legacy_reject(void *obj, VbusStream *vs, const Vbus__V1__Reject *m)
{
        return legacy_frame(obj, vs, VBUS_FRAME_REJECT, m, NULL);
}

static int legacy_data(void *obj, VbusStream *vs, const VbusFrame *f)
{
        return legacy_frame(obj, vs, VBUS_FRAME_DATA, NULL, f);
}

static int legacy_end(void *obj, VbusStream *vs, const Vbus__V1__End *m)
{
        return legacy_frame(obj, vs, VBUS_FRAME_END, m, NULL);
}

static int legacy_reset(void *obj, VbusStream *vs, const Vbus__V1__End *m)
{
        return legacy_frame(obj, vs, VBUS_FRAME_RESET, m, NULL);
}

static int legacy_credit(void *obj, VbusStream *vs, const Vbus__V1__Credit *m)
{
        return legacy_frame(obj, vs, VBUS_FRAME_CREDIT, m, NULL);
}

static const VbusStreamOps legacy_stream_ops = {
        .accept = legacy_accept,
        .reject = legacy_reject,
        .data = legacy_data,
        .end = legacy_end,
        .reset = legacy_reset,
        .credit = legacy_credit,
};

static int conn_on_hello(void *owner, const Vbus__V1__Hello *m)
{
        vbus_conn *c = owner;

        (void)m;
        if (vbus__link_set_max_frame(&c->ep.link, CLIENT_MAX_FRAME) < 0)
                return -EPROTO;
        c->state = VBUS_CONN_READY;
        if (c->ever_ready)
                c->n_reconnects++;
        c->ever_ready = true;
        c->backoff = 0;
        conn_open_all(c);
        vbus__rpc_link_ready(c);
        return c->link_error;
}

static int conn_on_open(void *owner, VbusStream *vs, const Vbus__V1__Open *m)
{
        vbus_conn *c = owner;
        VbusFrame f = {.header = {.type = VBUS_FRAME_OPEN, .stream_id = vs->id}};
        VbusControl ctl = {.type = VBUS_FRAME_OPEN, .msg = (ProtobufCMessage *)m};
        int r;

        vbus__endpoint_bind(vs, &legacy_stream_ops, c);
        r = vbus__rpc_dispatch(c, &f, &ctl, false);
        return r < 0 ? r : c->link_error;
}

static int conn_on_goaway(void *owner, const Vbus__V1__GoAway *m)
{
        /* The broker is stopping: the link will close; reconnect then. */
        (void)owner;
        (void)m;
        return 0;
}

static int conn_on_error(void *owner, const Vbus__V1__Error *m)
{
        (void)owner;
        (void)m;
        return -ECONNRESET;
}

static const VbusEndpointOps conn_endpoint_ops = {
        .hello = conn_on_hello,
        .open = conn_on_open,
        .goaway = conn_on_goaway,
        .error = conn_on_error,
};

/*
 * Reads and dispatches what arrived. @take_events: run the transport's process step first (take
 * the vchan's event, move a socket's bytes); without it only what the transport already shows is
 * read (a vchan's ring, a socket's buffer and whatever one recv() brings when that is empty).
 * Return: > 0 progress, 0 nothing, < 0 link lost.
 */
static int conn_read(vbus_conn *c, bool take_events)
{
        int r;

        c->in_read = true;
        r = vbus__endpoint_process(&c->ep, take_events, UINT_MAX);
        c->in_read = false;
        if (r >= 0 && c->link_error)
                r = c->link_error;
        return r < 0 ? r : r > 0;
}

/* --- public: connection ------------------------------------------------------------------- */

VBUS_EXPORT int vbus_conn_open(const char *url, vbus_conn **ret_conn)
{
        vbus_conn *c;
        int r;

        if (!ret_conn)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        list_init(&c->publishers);
        list_init(&c->subscriptions);
        list_init(&c->calls);
        list_init(&c->servers);
        list_init(&c->requests);
        list_init(&c->streams);
        r = parse_url(c, url ? url : default_url());
        if (r < 0) {
                free(c);
                return r;
        }
        c->state = VBUS_CONN_CONNECTING;
        if (conn_connect(c) < 0)
                vbus__conn_lost(c);
        *ret_conn = c;
        return 0;
}

static void publisher_destroy(vbus_publisher *p)
{
        list_unlink(&p->link);
        free(p->topic);
        free(p->pending);
        free(p->status_message);
        free(p);
}

static void subscription_destroy(vbus_subscription *s)
{
        list_unlink(&s->link);
        free(s->pattern);
        free(s->rx);
        free(s->scratch);
        free(s->status_message);
        free(s);
}

VBUS_EXPORT vbus_conn *vbus_conn_free(vbus_conn *c)
{
        List *pos, *tmp;

        if (!c)
                return NULL;
        if (c->have_link)
                (void)vbus__endpoint_flush(&c->ep);
        conn_drop_link(c);
        vbus__rpc_free_all(c);
        list_for_each_safe(pos, tmp, &c->publishers)
                publisher_destroy(list_entry(pos, vbus_publisher, link));
        list_for_each_safe(pos, tmp, &c->subscriptions)
                subscription_destroy(list_entry(pos, vbus_subscription, link));
        free(c);
        return NULL;
}

VBUS_EXPORT int vbus_conn_get_fd(vbus_conn *c)
{
        if (!c)
                return -EINVAL;
        if (!c->have_link)
                return -ENOTCONN;
        return vbus__transport_get_fd(&c->ep.link.transport);
}

VBUS_EXPORT int vbus_conn_get_events(vbus_conn *c)
{
        uint32_t ev;

        if (!c)
                return -EINVAL;
        if (!c->have_link)
                return 0;
        ev = vbus__transport_get_events(&c->ep.link.transport);
        return (int)((ev & POLLOUT) ? (POLLIN | POLLOUT) : POLLIN);
}

VBUS_EXPORT int vbus_conn_get_timeout(vbus_conn *c, uint64_t *ret_usec)
{
        if (!c || !ret_usec)
                return -EINVAL;
        if (!c->have_link)
                *ret_usec = c->reconnect_at;
        else if (c->ep.link.transport.kind == VBUS_TRANSPORT_VCHAN)
                /* Backstop: a shared ring's events can be withheld by the peer; and an unmapped
                 * ring is republished after CLIENT_VCHAN_WAIT_US. */
                *ret_usec = vbus__client_now() + 1000000u;
        else
                *ret_usec = UINT64_MAX;
        if (vbus__rpc_next_deadline(c) < *ret_usec)
                *ret_usec = vbus__rpc_next_deadline(c);
        return 0;
}

/* vbus_conn_process(), taking the transport's events only if @take_events (see conn_read). */
static int conn_process(vbus_conn *c, bool take_events)
{
        int progress = 0, r;

        if (c->in_process)
                return -EBUSY; /* called from a callback */
        c->in_process = true;
        if (!c->have_link) {
                /* Calls failed by the lost link get their outcome now, not after a reconnect. */
                progress = vbus__rpc_push(c);
                if (vbus__client_now() >= c->reconnect_at) {
                        if (conn_connect(c) < 0)
                                vbus__conn_lost(c);
                        else
                                progress = 1;
                }
                c->in_process = false;
                return progress;
        }
        if (c->ep.link.transport.kind == VBUS_TRANSPORT_VCHAN && c->state != VBUS_CONN_READY) {
                if (!c->hello_sent)
                        (void)conn_send_hello(c);
                if (vbus__client_now() - c->link_started > CLIENT_VCHAN_WAIT_US &&
                    vbus__vchan_get_peer(c->ep.link.transport.vchan) == VBUS_VCHAN_PEER_WAITING) {
                        vbus__conn_lost(c);
                        c->in_process = false;
                        return 1;
                }
        }
        r = conn_read(c, take_events);
        if (r < 0) {
                vbus__conn_lost(c);
                c->in_process = false;
                return 1;
        }
        progress |= r;
        if (c->have_link)
                progress |= conn_push_publishers(c);
        if (c->have_link)
                progress |= vbus__rpc_push(c);
        vbus__rpc_expire(c, vbus__client_now());
        if (c->have_link) {
                r = vbus__endpoint_flush(&c->ep);
                if (r < 0 && r != -EAGAIN) {
                        vbus__conn_lost(c);
                        progress = 1;
                }
        }
        c->in_process = false;
        return progress;
}

VBUS_EXPORT int vbus_conn_process(vbus_conn *c)
{
        if (!c)
                return -EINVAL;
        return conn_process(c, true);
}

/*
 * One process step before the poll and one after it, with one system call for the poll: the
 * step before takes no event (the poll sees one that is pending, since taking it is what clears
 * the fd), it only reads what is already there, delivers outcomes and flushes what callbacks and
 * API calls queued; the step after takes the event only when the poll said the fd is readable.
 * No wake-up is lost in between: the step before ends by reading the transport until it is empty,
 * which for a vchan asks the peer for an event on its next write and then looks once more
 * (vchan-ring.c), and an event that comes after that keeps the fd readable until it is taken.
 */
VBUS_EXPORT int vbus_conn_wait(vbus_conn *c, uint64_t timeout_usec)
{
        uint64_t deadline, now, t;
        struct pollfd pfd;
        int r, ms;

        if (!c)
                return -EINVAL;
        r = conn_process(c, false);
        if (r != 0)
                return r;
        now = vbus__client_now();
        deadline = timeout_usec == UINT64_MAX ? UINT64_MAX : now + timeout_usec;
        (void)vbus_conn_get_timeout(c, &t);
        if (t < deadline)
                deadline = t;
        ms = deadline == UINT64_MAX ? -1 : (int)((deadline > now ? deadline - now : 0) / 1000u);
        if (deadline != UINT64_MAX && deadline > now && ms == 0)
                ms = 1;
        pfd.fd = vbus_conn_get_fd(c);
        pfd.events = (short)vbus_conn_get_events(c);
        pfd.revents = 0;
        if (pfd.fd < 0) {
                if (ms > 0)
                        (void)poll(NULL, 0, ms);
        } else {
                r = poll(&pfd, 1, ms);
                if (r < 0)
                        return -errno;
        }
        r = conn_process(c, pfd.revents != 0);
        if (r == 0 && timeout_usec != UINT64_MAX && vbus__client_now() >= now + timeout_usec)
                return -ETIMEDOUT;
        return r;
}

VBUS_EXPORT int vbus_conn_wait_ready(vbus_conn *c, uint64_t timeout_usec)
{
        uint64_t deadline = vbus__client_now() + timeout_usec;

        if (!c)
                return -EINVAL;
        while (c->state != VBUS_CONN_READY) {
                uint64_t now = vbus__client_now();
                int r;

                if (now >= deadline)
                        return -ETIMEDOUT;
                r = vbus_conn_wait(c, deadline - now);
                if (r < 0 && r != -ETIMEDOUT)
                        return r;
        }
        return 0;
}

static bool conn_has_unsent(vbus_conn *c)
{
        if (!c->have_link)
                return false;
        if (vbus__link_has_backlog(&c->ep.link) || vbus__rpc_has_unsent(c))
                return true;
        for (List *pos = c->publishers.next; pos != &c->publishers; pos = pos->next)
                if (list_entry(pos, vbus_publisher, link)->pending)
                        return true;
        return c->ep.link.transport.kind == VBUS_TRANSPORT_UNIX &&
               vbus__transport_has_pending(&c->ep.link.transport);
}

VBUS_EXPORT int vbus_conn_flush(vbus_conn *c, uint64_t timeout_usec)
{
        uint64_t deadline = vbus__client_now() + timeout_usec;

        if (!c)
                return -EINVAL;
        while (conn_has_unsent(c)) {
                uint64_t now = vbus__client_now();
                int r;

                if (now >= deadline)
                        return -ETIMEDOUT;
                r = vbus_conn_wait(c, deadline - now < 10000 ? deadline - now : 10000);
                if (r < 0 && r != -ETIMEDOUT)
                        return r;
        }
        return c->state == VBUS_CONN_READY ? 0 : -ENOTCONN;
}

VBUS_EXPORT int vbus_conn_get_state(vbus_conn *c)
{
        return c ? (int)c->state : -EINVAL;
}

VBUS_EXPORT int vbus_conn_get_last_error(vbus_conn *c)
{
        return c ? c->last_error : -EINVAL;
}

VBUS_EXPORT uint64_t vbus_conn_get_reconnects(vbus_conn *c)
{
        return c ? c->n_reconnects : 0;
}

/* --- public: publish ---------------------------------------------------------------------- */

VBUS_EXPORT int vbus_publisher_open(vbus_conn *c, const char *topic, vbus_publisher **ret_pub)
{
        vbus_publisher *p;

        if (!c || !topic || !ret_pub || !vbus__name_is_topic(topic, strnlen(topic, 256)))
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (!p || !(p->topic = strdup(topic))) {
                free(p);
                return -ENOMEM;
        }
        p->conn = c;
        list_add_tail(&c->publishers, &p->link);
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
        if (p->state == ST_OPEN || p->state == ST_OPENING)
                vbus__conn_end_stream(p->conn, p->id,
                                      p->pending ? VBUS_FRAME_RESET : VBUS_FRAME_END,
                                      p->pending ? VBUS_STATUS_CANCELLED : VBUS_STATUS_OK, NULL);
        publisher_destroy(p);
        return NULL;
}

VBUS_EXPORT int vbus_publish(vbus_publisher *p, const void *data, size_t len)
{
        vbus_conn *c;
        int r;

        if (!p || (len > 0 && !data))
                return -EINVAL;
        if (len > VBUS_MESSAGE_MAX)
                return -EMSGSIZE;
        c = p->conn;
        if (p->state == ST_FAILED)
                return -EPIPE;
        if (c->state == VBUS_CONN_DISCONNECTED)
                return -ENOTCONN;
        if (c->state != VBUS_CONN_READY || p->state == ST_IDLE)
                return -EAGAIN;
        if (p->pending) {
                r = publisher_push(p);
                if (r < 0)
                        return r == -ENOTCONN ? r : -EAGAIN;
        }
        /* Fast path: the whole message in one frame, straight into the link (-EAGAIN: no
         * credit, the broker holds us back, or no room in the link). */
        if (len <= vbus__endpoint_max_payload(&c->ep)) {
                r = vbus__conn_send_data(c, p->id, 0, data, len);
                return r == -EINVAL ? -EPIPE : r;
        }
        /* Too big for one frame: keep a copy and send it in fragments as room appears. */
        p->pending = malloc(len);
        if (!p->pending)
                return -ENOMEM;
        memcpy(p->pending, data, len);
        p->n_pending = len;
        p->pending_off = 0;
        r = publisher_push(p);
        if (r == -ENOTCONN)
                return r;
        return 0;
}

VBUS_EXPORT int vbus_publish_wait(vbus_publisher *p, const void *data, size_t len,
                                  uint64_t timeout_usec)
{
        uint64_t deadline = vbus__client_now() + timeout_usec;

        if (!p)
                return -EINVAL;
        for (;;) {
                uint64_t now;
                int r = vbus_publish(p, data, len);

                if (r != -EAGAIN)
                        return r;
                now = vbus__client_now();
                if (now >= deadline)
                        return -ETIMEDOUT;
                r = vbus_conn_wait(p->conn, deadline - now < 100000 ? deadline - now : 100000);
                if (r < 0 && r != -ETIMEDOUT)
                        return r;
        }
}

VBUS_EXPORT int vbus_publisher_get_status(vbus_publisher *p, const char **ret_message)
{
        if (!p)
                return -EINVAL;
        if (ret_message)
                *ret_message = p->status_message ? p->status_message : "";
        return p->state == ST_FAILED ? p->status : 0;
}

/* --- public: subscribe -------------------------------------------------------------------- */

VBUS_EXPORT int vbus_subscribe(vbus_conn *c, const char *pattern, vbus_slow_policy policy,
                               vbus_message_cb cb, void *userdata, vbus_subscription **ret_sub)
{
        vbus_subscription *s;

        if (!c || !pattern || !cb || !ret_sub ||
            (policy != VBUS_SLOW_DROP && policy != VBUS_SLOW_BLOCK) ||
            !vbus__name_is_pattern(pattern, strnlen(pattern, 256)))
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s || !(s->pattern = strdup(pattern))) {
                free(s);
                return -ENOMEM;
        }
        s->conn = c;
        s->policy = policy;
        s->cb = cb;
        s->userdata = userdata;
        list_add_tail(&c->subscriptions, &s->link);
        if (c->state == VBUS_CONN_READY)
                subscription_open_stream(s);
        *ret_sub = s;
        return 0;
}

VBUS_EXPORT vbus_subscription *vbus_subscription_free(vbus_subscription *s)
{
        if (!s)
                return NULL;
        if (s->state == ST_OPEN || s->state == ST_OPENING)
                vbus__conn_end_stream(s->conn, s->id, VBUS_FRAME_RESET, VBUS_STATUS_CANCELLED,
                                      NULL);
        subscription_destroy(s);
        return NULL;
}

VBUS_EXPORT bool vbus_subscription_is_active(vbus_subscription *s)
{
        return s && s->state == ST_OPEN && s->conn->state == VBUS_CONN_READY;
}

VBUS_EXPORT int vbus_subscription_get_status(vbus_subscription *s, const char **ret_message)
{
        if (!s)
                return -EINVAL;
        if (ret_message)
                *ret_message = s->status_message ? s->status_message : "";
        return s->state == ST_FAILED ? s->status : 0;
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

VBUS_EXPORT uint64_t vbus_message_get_dropped(const vbus_message *m)
{
        return m ? m->dropped : 0;
}

VBUS_EXPORT uint64_t vbus_message_get_sequence(const vbus_message *m)
{
        return m ? m->sequence : 0;
}

VBUS_EXPORT bool vbus_message_follows_gap(const vbus_message *m)
{
        return m && m->gap;
}
