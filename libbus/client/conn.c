/* SPDX-License-Identifier: MIT */
/*
 * conn: the connection (see conn.h) and the connection part of the public API of
 * <vbus/vbus.h>: open, free, the loop (fd, events, timeout, process, wait) and state.
 *
 * A connection connects over a UNIX socket or a vchan (this domain is the vchan server: it
 * publishes its rings and waits for the broker to map them), says HELLO, and on the broker's
 * HELLO tells every feature the link is ready. When the link is lost every stream is closed
 * locally (->closed), the features are told (->link_lost), and a reconnect is scheduled with
 * back-off; the features open their streams again on the next link.
 *
 * Invariants: the connection names no feature and never looks a stream up by scanning; the
 * library never logs, never aborts on peer input, and runs callbacks only from
 * vbus_conn_process() (through the features' ops and the streams' ops).
 */
#include "conn.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <vbus/vbus.h>

#include "vchan.h"

enum {
        /* The max_frame this side announces. */
        CLIENT_MAX_FRAME = VBUS_FRAME_MAX_DEFAULT,
        /* Streams a connection may have open at once. */
        CLIENT_MAX_STREAMS = 4096,
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

uint64_t vbus__client_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* --- features ----------------------------------------------------------------------------- */

void *vbus__conn_get_feature(vbus_conn *c, const VbusFeatureOps *ops,
                             void *(*new_state)(vbus_conn *c))
{
        void *state;

        for (size_t i = 0; i < c->n_features; i++)
                if (c->features[i].ops == ops)
                        return c->features[i].state;
        if (c->n_features == VBUS_CONN_FEATURES_MAX)
                return NULL;
        state = new_state(c);
        if (!state)
                return NULL;
        c->features[c->n_features++] = (VbusFeature){.ops = ops, .state = state};
        return state;
}

/* The features, in registration order: for (f = features_begin(c); f < features_end(c); f++). */
static VbusFeature *features_begin(vbus_conn *c)
{
        return c->features;
}

static VbusFeature *features_end(vbus_conn *c)
{
        return c->features + c->n_features;
}

/* --- link setup and teardown -------------------------------------------------------------- */

static void conn_drop_link(vbus_conn *c)
{
        if (c->have_link) {
                /* Senders fail from here on; every bound stream hears ->closed. */
                c->have_link = false;
                vbus__endpoint_deinit(&c->ep);
        }
        c->hello_sent = false;
        c->link_error = 0;
        for (VbusFeature *f = features_begin(c); f < features_end(c); f++) {
                if (!f->ops->link_lost)
                        continue;
                f->ops->link_lost(f->state);
        }
}

static void conn_lost_now(vbus_conn *c)
{
        conn_drop_link(c);
        c->state = c->ever_ready ? VBUS_CONN_DISCONNECTED : VBUS_CONN_CONNECTING;
        c->backoff = c->backoff ? c->backoff * 2 : CLIENT_RECONNECT_MIN_US;
        if (c->backoff > CLIENT_RECONNECT_MAX_US)
                c->backoff = CLIENT_RECONNECT_MAX_US;
        c->reconnect_at = vbus__client_now() + c->backoff;
}

/* The link failed: drop it and schedule a reconnect, at the next step of the loop when this is
 * inside vbus_conn_process(). */
static void conn_lost(vbus_conn *c)
{
        if (!c->have_link)
                return;
        if (c->in_process) {
                if (c->link_error == 0)
                        c->link_error = -ENOTCONN;
                return;
        }
        conn_lost_now(c);
}

/* Drops a link that failed during the last step of the loop. Return: 1 if it did. */
static int conn_check_link(vbus_conn *c)
{
        if (!c->have_link || c->link_error == 0)
                return 0;
        conn_lost_now(c);
        return 1;
}

static int connect_unix(vbus_conn *c, VbusTransport *t)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int r;

        if (fd < 0)
                return -errno;
        memcpy(sa.sun_path, c->url.path, strlen(c->url.path) + 1); /* length checked by url.c */
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
        if (errno || *end || v < CLIENT_RING_MIN || v > 1024UL * 1024)
                return CLIENT_RING_SIZE;
        return v;
}

/* One vchan per domain: vbus__vchan_server_open_to() refuses (-EADDRINUSE) when another process
 * of this domain holds it, rather than cutting that one off. */
static int connect_vchan(vbus_conn *c, VbusTransport *t)
{
        VbusVchan *vc = NULL;
        int r;

        r = vbus__vchan_server_open_to(c->url.broker_domid, "vbus", ring_size(), ring_size(), &vc);
        if (r < 0)
                return r;
        return vbus__transport_init_vchan(t, vc);
}

/* Whether this connection asks for channel auth: it holds a key or pins the broker's. */
static bool conn_wants_auth(const vbus_conn *c)
{
        return c->auth_key || c->auth_pin;
}

static int conn_send_hello(vbus_conn *c)
{
        Vbus__V1__Hello h = VBUS__V1__HELLO__INIT;
        int r;

        h.version_min = VBUS_PROTOCOL_VERSION;
        h.version_max = VBUS_PROTOCOL_VERSION;
        h.max_frame = CLIENT_MAX_FRAME;
        h.peer_name = (char *)"libvbus";
        h.features = VBUS_FEATURE_MESSAGE_CHARGE | VBUS_FEATURE_BATCH;
        c->auth = (VbusAuthTranscript){0};
        c->auth_ping = 0;
        if (conn_wants_auth(c)) {
                /* A fresh nonce per link: the broker's proof must cover it. */
                r = vbus__auth_random(c->auth.client_nonce, VBUS_AUTH_NONCE_SIZE);
                if (r < 0)
                        return r;
                h.features |= VBUS_FEATURE_AUTH;
                h.auth_challenge.data = c->auth.client_nonce;
                h.auth_challenge.len = VBUS_AUTH_NONCE_SIZE;
        }
        c->auth.client = (VbusAuthHelloFields){h.version_min, h.version_max, h.features};
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

        r = c->url.kind == VBUS_URL_UNIX ? connect_unix(c, &t) : connect_vchan(c, &t);
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

/* Whether a send's error means the link is unusable, rather than "not now" or "not allowed"
 * (-EMSGSIZE: a control message too large to encode, such as an OPEN with many large headers,
 * is refused before it reaches the session or the link, which stay as they were). */
static bool link_failed(int r)
{
        return r < 0 && r != -EAGAIN && r != -EINVAL && r != -E2BIG && r != -ENOMEM &&
               r != -ENOENT && r != -EMSGSIZE;
}

/* A send failed with @r: drop the link if that is what it means. Return: @r, or -ENOTCONN. */
static int conn_sent(vbus_conn *c, int r)
{
        if (!link_failed(r))
                return r;
        conn_lost(c);
        return -ENOTCONN;
}

int vbus__conn_open_stream(vbus_conn *c, const Vbus__V1__Open *o, const VbusStreamOps *ops,
                           void *obj, VbusStream **ret_vs)
{
        uint32_t id;
        int r;

        if (!vbus__conn_is_up(c))
                return -ENOTCONN;
        r = conn_sent(c, vbus__endpoint_open(&c->ep, o, ops, obj, &id));
        if (r < 0)
                return r;
        *ret_vs = vbus__session_get_stream(&c->ep.session, id);
        return 0;
}

int vbus__conn_send_control(vbus_conn *c, uint8_t type, uint32_t id, const ProtobufCMessage *msg)
{
        if (!vbus__conn_is_up(c))
                return -ENOTCONN;
        return conn_sent(c, vbus__endpoint_send_control(&c->ep, type, 0, id, msg));
}

int vbus__conn_send_end(vbus_conn *c, uint8_t type, uint32_t id, int status, const char *message)
{
        if (!vbus__conn_is_up(c))
                return -ENOTCONN;
        return conn_sent(c, vbus__endpoint_send_end(&c->ep, type, id, status, message));
}

void vbus__conn_release_stream(vbus_conn *c, VbusStream **vs, uint8_t type, int status,
                               const char *message)
{
        uint32_t id;

        if (!*vs)
                return;
        id = (*vs)->id;
        vbus__endpoint_bind(*vs, NULL, NULL);
        *vs = NULL;
        /* Inside the loop, its last step flushes; outside it, nothing else would. */
        if (vbus__conn_send_end(c, type, id, status, message) == 0 && !c->in_process)
                (void)vbus__endpoint_flush(&c->ep);
}

int vbus__conn_send_data(vbus_conn *c, uint32_t id, uint8_t flags, const void *data, size_t n)
{
        struct iovec piece = {(void *)data, n};
        int r;

        if (!vbus__conn_is_up(c))
                return -ENOTCONN;
        r = vbus__endpoint_send_data(&c->ep, id, flags, &piece, 1);
        if (r == -ENOENT || r == -EINVAL)
                return -EPIPE;
        return conn_sent(c, r);
}

int vbus__conn_batch_add(vbus_conn *c, uint32_t id, const void *data, size_t n)
{
        int r;

        if (!vbus__conn_is_up(c))
                return -ENOTCONN;
        r = vbus__endpoint_batch_add(&c->ep, id, 0, 0, NULL, 0, data, n);
        if (r == -ENOENT || r == -EINVAL)
                return -EPIPE;
        return conn_sent(c, r);
}

int vbus__conn_batch_commit(vbus_conn *c)
{
        if (!c->have_link)
                return 0;
        return conn_sent(c, vbus__link_batch_commit(&c->ep.link));
}

bool vbus__conn_batch_is_open(const vbus_conn *c)
{
        return c->have_link && vbus__link_batch_is_open(&c->ep.link);
}

uint32_t vbus__conn_batch_messages(const vbus_conn *c)
{
        return vbus__conn_batch_is_open(c) ? c->ep.link.batch.h.n_messages : 0;
}

bool vbus__conn_batches(const vbus_conn *c)
{
        return c->have_link && vbus__session_batch(&c->ep.session);
}

bool vbus__conn_peer_busy(vbus_conn *c)
{
        return c->have_link && vbus__transport_has_pending(&c->ep.link.transport);
}

int vbus__conn_send_message(vbus_conn *c, uint32_t id, const uint8_t *buf, size_t n, size_t *off,
                            bool *sent_empty, size_t min_frag, uint8_t first_flags)
{
        int r;

        if (n == 0) {
                if (*sent_empty)
                        return 1;
                r = vbus__conn_send_data(c, id, first_flags, NULL, 0);
                if (r < 0)
                        return r == -ENOTCONN ? r : 0;
                *sent_empty = true;
                return 1;
        }
        while (*off < n) {
                size_t k = n - *off, room = vbus__conn_data_room(c, id);

                if (k > room) {
                        /* A fragment, if it is worth a frame (a small window does not spray
                         * small frames). */
                        if (room == 0 || room < min_frag)
                                return vbus__conn_is_up(c) ? 0 : -ENOTCONN;
                        k = room;
                }
                r = vbus__conn_send_data(
                        c, id, (*off + k < n ? VBUS_FLAG_MORE : 0) | (*off == 0 ? first_flags : 0),
                        buf + *off, k);
                if (r < 0)
                        return r == -ENOTCONN ? r : 0;
                *off += k;
        }
        return 1;
}

uint32_t vbus__conn_msg_charge(const vbus_conn *c)
{
        return vbus__session_msg_charge(&c->ep.session);
}

size_t vbus__conn_data_room(vbus_conn *c, uint32_t id)
{
        ssize_t room;

        if (!vbus__conn_is_up(c))
                return 0;
        room = vbus__endpoint_data_room(&c->ep, id);
        return room > 0 ? (size_t)room : 0;
}

/* --- receiving ---------------------------------------------------------------------------- */

/*
 * Channel auth on the broker's HELLO @m (protocol.md 3.1): check the broker's proof (against the
 * pinned key, if any), then send ours and a PING whose ACK tells that the broker took it.
 * Return: 0; -EACCES (the broker does not prove the pinned key, proves none, or does not speak
 * auth); -EPROTO (a malformed auth field); another -errno from sending.
 */
static int conn_auth_hello(vbus_conn *c, const Vbus__V1__Hello *m)
{
        Vbus__V1__Hello h = VBUS__V1__HELLO__INIT;
        Vbus__V1__Ping ping = VBUS__V1__PING__INIT;
        uint8_t proof[VBUS_AUTH_PROOF_SIZE];
        VbusAuthTranscript *t = &c->auth;
        int r;

        if (!conn_wants_auth(c))
                return 0;
        if (!(m->features & VBUS_FEATURE_AUTH))
                return -EACCES;
        if (m->auth_challenge.len != VBUS_AUTH_NONCE_SIZE)
                return -EPROTO;
        t->version = m->version;
        memcpy(t->broker_nonce, m->auth_challenge.data, VBUS_AUTH_NONCE_SIZE);
        t->broker = (VbusAuthHelloFields){m->version_min, m->version_max, m->features};
        if (m->auth_proof.len > 0 || c->auth_pin) {
                r = vbus__auth_verify(t, VBUS_AUTH_ROLE_BROKER, m->auth_proof.data,
                                      m->auth_proof.len);
                if (r == -EBADMSG && m->auth_proof.len > 0)
                        return -EPROTO;
                if (r < 0)
                        return -EACCES;
                if (c->auth_pin &&
                    memcmp(t->broker_key, c->auth_broker_key, VBUS_AUTH_PUBLIC_KEY_SIZE) != 0)
                        return -EACCES;
        }
        if (!c->auth_key)
                return 0;
        memcpy(t->client_key, c->auth_key->public_key, VBUS_AUTH_PUBLIC_KEY_SIZE);
        r = vbus__auth_prove(t, VBUS_AUTH_ROLE_CLIENT, c->auth_key, proof);
        if (r < 0)
                return r;
        h.version_min = t->client.version_min;
        h.version_max = t->client.version_max;
        h.version = m->version;
        h.max_frame = CLIENT_MAX_FRAME; /* as in the first HELLO */
        h.features = VBUS_FEATURE_AUTH;
        h.auth_proof.data = proof;
        h.auth_proof.len = sizeof(proof);
        r = vbus__endpoint_send_control(&c->ep, VBUS_FRAME_HELLO, 0, 0, &h.base);
        if (r < 0)
                return r;
        /* The broker reads in order: the ACK comes only once it has taken the proof. */
        do {
                r = vbus__auth_random((uint8_t *)&c->auth_ping, sizeof(c->auth_ping));
        } while (r == 0 && c->auth_ping == 0);
        if (r < 0)
                return r;
        ping.opaque = c->auth_ping;
        return vbus__endpoint_send_control(&c->ep, VBUS_FRAME_PING, 0, 0, &ping.base);
}

/* HELLO (and channel auth, if any) is done: the link is ready for the features. */
static int conn_ready(vbus_conn *c)
{
        c->state = VBUS_CONN_READY;
        c->auth_error = 0;
        c->lost_error = 0;
        if (c->ever_ready)
                c->n_reconnects++;
        c->ever_ready = true;
        c->backoff = 0;
        for (VbusFeature *f = features_begin(c); f < features_end(c); f++) {
                if (!f->ops->link_ready)
                        continue;
                f->ops->link_ready(f->state);
                if (!vbus__conn_is_up(c))
                        break;
        }
        return c->link_error;
}

static int conn_on_hello(void *owner, const Vbus__V1__Hello *m)
{
        vbus_conn *c = owner;
        int r;

        if (vbus__link_set_max_frame(&c->ep.link, CLIENT_MAX_FRAME) < 0)
                return -EPROTO;
        c->broker_features = m->features;
        r = conn_auth_hello(c, m);
        if (r < 0) {
                if (r == -EACCES || r == -EPROTO || r == -ENOTSUP)
                        c->auth_error = -EACCES;
                return r;
        }
        return c->auth_ping ? 0 : conn_ready(c);
}

static int conn_on_pong(void *owner, const Vbus__V1__Ping *m)
{
        vbus_conn *c = owner;

        if (c->auth_ping != 0 && m->opaque == c->auth_ping) {
                c->auth_ping = 0;
                return conn_ready(c);
        }
        /* vbus_conn_sync()'s: only answers to our own PINGs count (an ACK for one we did not
         * send yet is a broker's bug, ignored). */
        if (c->state == VBUS_CONN_READY && m->opaque <= c->ping_sent && m->opaque > c->pong_seen)
                c->pong_seen = m->opaque;
        return 0;
}

/* The broker opened a stream toward us (a call to a service we serve): the first feature that
 * takes it owns it; one that nobody takes is refused. */
static int conn_on_open(void *owner, VbusStream *vs, const Vbus__V1__Open *m)
{
        vbus_conn *c = owner;
        Vbus__V1__Reject rj = VBUS__V1__REJECT__INIT;
        uint32_t id = vs->id;

        for (VbusFeature *f = features_begin(c); f < features_end(c); f++) {
                if (!f->ops->open)
                        continue;
                int r = f->ops->open(f->state, vs, m);

                if (r != 0)
                        return r < 0 ? r : c->link_error;
        }
        rj.status = VBUS__V1__STATUS__STATUS_NOT_FOUND;
        rj.message = (char *)"this process does not serve that service";
        (void)vbus__conn_send_control(c, VBUS_FRAME_REJECT, id, &rj.base);
        return c->link_error;
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
        vbus_conn *c = owner;

        /* Refused before the link was ready: the broker wants a key (another one). */
        if (c->state != VBUS_CONN_READY && m->status == VBUS__V1__STATUS__STATUS_PERMISSION_DENIED)
                c->auth_error = -EPERM;
        return -ECONNRESET;
}

static const VbusEndpointOps conn_endpoint_ops = {
        .hello = conn_on_hello,
        .pong = conn_on_pong,
        .open = conn_on_open,
        .goaway = conn_on_goaway,
        .error = conn_on_error,
};

/*
 * Reads and dispatches what arrived. @take_events: run the transport's process step first (take
 * the vchan's event, move a socket's bytes); without it only what the transport already shows is
 * read (a vchan's ring, a socket's buffer and whatever one recv() brings when that is empty).
 * A stream op that sees the link fail returns c->link_error, which stops the read.
 * Return: 1 progress, 0 nothing, < 0 the link is lost.
 */
static int conn_read(vbus_conn *c, bool take_events)
{
        int r = vbus__endpoint_process(&c->ep, take_events, UINT_MAX);

        if (r >= 0 && c->link_error)
                r = c->link_error;
        return r < 0 ? r : r > 0;
}

/* --- public: connection ------------------------------------------------------------------- */

/* The argument, else the environment variable @env if set and not empty, else NULL. */
static const char *arg_or_env(const char *arg, const char *env)
{
        const char *v = arg ? arg : getenv(env);

        return v && v[0] ? v : NULL;
}

static void conn_free_key(vbus_conn *c)
{
        if (c->auth_key) {
                vbus__auth_key_wipe(c->auth_key);
                free(c->auth_key);
                c->auth_key = NULL;
        }
}

/* The key to prove and the broker key to pin (each may be NULL: none). */
static int conn_set_auth(vbus_conn *c, const char *key_file, const char *broker_key)
{
        int r;

        if ((key_file || broker_key) && !vbus__auth_is_available())
                return -ENOTSUP;
        if (broker_key) {
                r = vbus__auth_key_from_text(broker_key, strlen(broker_key), c->auth_broker_key);
                if (r < 0)
                        return r;
                c->auth_pin = true;
        }
        if (key_file) {
                c->auth_key = calloc(1, sizeof(*c->auth_key));
                if (!c->auth_key)
                        return -ENOMEM;
                r = vbus__auth_key_load(key_file, c->auth_key);
                if (r < 0) {
                        conn_free_key(c);
                        return r;
                }
        }
        return 0;
}

VBUS_EXPORT int vbus_conn_open(const char *url, vbus_conn **ret_conn)
{
        return vbus_conn_open_auth(url, NULL, NULL, ret_conn);
}

VBUS_EXPORT int vbus_conn_open_auth(const char *url, const char *key_file, const char *broker_key,
                                    vbus_conn **ret_conn)
{
        vbus_conn *c;
        int r;

        if (!ret_conn)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        r = vbus__url_parse(url ? url : vbus__url_default(), &c->url);
        if (r == 0)
                r = conn_set_auth(c, arg_or_env(key_file, "VBUS_KEY_FILE"),
                                  arg_or_env(broker_key, "VBUS_BROKER_KEY"));
        if (r < 0) {
                free(c);
                return r;
        }
        /* Rebuilt from the parsed URL (fits: a path is shorter than 108 bytes), so that a
         * message names exactly what is tried, whichever way it was chosen. */
        if (c->url.kind == VBUS_URL_UNIX)
                (void)snprintf(c->url_text, sizeof(c->url_text), "unix:%s", c->url.path);
        else
                (void)snprintf(c->url_text, sizeof(c->url_text), "vchan:%u", c->url.broker_domid);
        c->state = VBUS_CONN_CONNECTING;
        if (conn_connect(c) < 0)
                conn_lost_now(c);
        *ret_conn = c;
        return 0;
}

VBUS_EXPORT vbus_conn *vbus_conn_free(vbus_conn *c)
{
        if (!c)
                return NULL;
        if (c->have_link)
                (void)vbus__endpoint_flush(&c->ep);
        conn_drop_link(c);
        /* Last registered first: a later feature may hold objects of an earlier one. */
        while (c->n_features > 0) {
                VbusFeature *f = &c->features[--c->n_features];

                if (f->ops->free_all)
                        f->ops->free_all(f->state);
        }
        conn_free_key(c);
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
        uint64_t t;

        if (!c || !ret_usec)
                return -EINVAL;
        if (!c->have_link)
                t = c->reconnect_at;
        else if (vbus__transport_owes_flush(&c->ep.link.transport) ||
                 vbus__link_batch_is_open(&c->ep.link))
                /* vbus_publish() and friends wrote into the ring but the broker may be asleep
                 * and is told only by the flush in vbus_conn_process(): that is due now, as is a
                 * batch being combined, published by that flush. (A full ring is not: its reader
                 * signals when it makes room.) */
                t = vbus__client_now();
        else if (c->ep.link.transport.kind == VBUS_TRANSPORT_VCHAN)
                /* Backstop: a shared ring's events can be withheld by the peer; and an unmapped
                 * ring is republished after CLIENT_VCHAN_WAIT_US. */
                t = vbus__client_now() + 1000000u;
        else
                t = UINT64_MAX;
        for (VbusFeature *f = features_begin(c); f < features_end(c); f++) {
                if (!f->ops->next_deadline)
                        continue;
                uint64_t d = f->ops->next_deadline(f->state);

                if (d < t)
                        t = d;
        }
        *ret_usec = t;
        return 0;
}

/* Every feature's push. Return: 1 progress, 0 none. */
static int conn_push(vbus_conn *c)
{
        int progress = 0;

        for (VbusFeature *f = features_begin(c); f < features_end(c); f++) {
                if (!f->ops->push)
                        continue;
                progress |= f->ops->push(f->state);
        }
        return progress;
}

/* The broker broke the protocol on a ready link: it is told why (protocol.md 2.6) before the
 * link is dropped, if the link still takes a frame. Not before: a broker whose HELLO or proof
 * fails gets nothing more from a client that checks it (3.1). */
static void conn_report_violation(vbus_conn *c)
{
        Vbus__V1__Error e = VBUS__V1__ERROR__INIT;
        char msg[64];

        /* Fits: at most 41 bytes. */
        (void)snprintf(msg, sizeof(msg), "protocol violation (%s)",
                       c->ep.violation ? vbus__frame_error_name(c->ep.violation)
                                       : "in a stream's data");
        e.status = VBUS__V1__STATUS__STATUS_PROTOCOL_ERROR;
        e.message = msg;
        if (vbus__endpoint_send_control(&c->ep, VBUS_FRAME_ERROR, 0, 0, &e.base) == 0)
                (void)vbus__endpoint_flush(&c->ep);
}

/* vbus_conn_process(), taking the transport's events only if @take_events (see conn_read). */
static int conn_process_step(vbus_conn *c, bool take_events)
{
        uint64_t now;
        int progress = 0, r;

        if (!c->have_link) {
                /* Outcomes of what the lost link failed are delivered now, not after a
                 * reconnect. */
                progress = conn_push(c);
                if (vbus__client_now() >= c->reconnect_at) {
                        if (conn_connect(c) < 0)
                                conn_lost_now(c);
                        else
                                progress = 1;
                }
                return progress;
        }
        if (c->ep.link.transport.kind == VBUS_TRANSPORT_VCHAN && c->state != VBUS_CONN_READY) {
                if (!c->hello_sent)
                        (void)conn_send_hello(c);
                if (vbus__client_now() - c->link_started > CLIENT_VCHAN_WAIT_US &&
                    vbus__vchan_get_peer(c->ep.link.transport.vchan) == VBUS_VCHAN_PEER_WAITING) {
                        conn_lost_now(c);
                        return 1;
                }
        }
        r = conn_read(c, take_events);
        if (r < 0) {
                if (r == -EPROTO && c->state == VBUS_CONN_READY)
                        conn_report_violation(c);
                c->lost_error = r;
                conn_lost_now(c);
                return 1;
        }
        progress |= r;
        progress |= conn_push(c);
        progress |= conn_check_link(c);
        now = vbus__client_now();
        for (VbusFeature *f = features_begin(c); f < features_end(c); f++) {
                if (!f->ops->expire)
                        continue;
                f->ops->expire(f->state, now);
        }
        progress |= conn_check_link(c);
        if (c->have_link) {
                r = vbus__endpoint_flush(&c->ep);
                if (r < 0 && r != -EAGAIN) {
                        conn_lost_now(c);
                        progress = 1;
                }
        }
        return progress;
}

static int conn_process(vbus_conn *c, bool take_events)
{
        int r;

        if (c->in_process)
                return -EBUSY; /* called from a callback */
        c->in_process = true;
        r = conn_process_step(c, take_events);
        c->in_process = false;
        return r;
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
        uint64_t deadline, end, now, t;
        struct pollfd pfd;
        int r, ms;

        if (!c)
                return -EINVAL;
        r = conn_process(c, false);
        if (r != 0)
                return r;
        now = vbus__client_now();
        end = vbus__deadline_after(now, timeout_usec);
        deadline = end;
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
        if (r == 0 && end != UINT64_MAX && vbus__client_now() >= end)
                return -ETIMEDOUT;
        return r;
}

/*
 * Whether a failed first attempt to connect is one that waiting cannot mend: nothing listens at
 * that socket, or may not be reached by us, or this domain's vchan is taken, or there is no Xen.
 * (A connection that was ready once keeps retrying whatever the error: its broker or agent is
 * expected back.)
 */
static bool connect_error_is_permanent(int r)
{
        switch (r) {
        case -ENOENT:
        case -EACCES:
        case -EPERM:
        case -ECONNREFUSED:
        case -ENOTSOCK:
        case -EADDRINUSE:
        case -ENODEV:
                return true;
        default:
                return false;
        }
}

VBUS_EXPORT int vbus_conn_wait_ready(vbus_conn *c, uint64_t timeout_usec)
{
        uint64_t deadline = vbus__deadline_after(vbus__client_now(), timeout_usec);

        if (!c)
                return -EINVAL;
        while (c->state != VBUS_CONN_READY) {
                uint64_t now = vbus__client_now();
                int r;

                if (!c->ever_ready && connect_error_is_permanent(c->last_error))
                        return c->last_error;
                if (now >= deadline)
                        return -ETIMEDOUT;
                r = vbus_conn_wait(c, vbus__time_left(deadline, now, UINT64_MAX));
                if (r < 0 && r != -ETIMEDOUT)
                        return r;
                /* Auth failed: waiting will not change the broker's mind nor its key. */
                if (c->auth_error < 0 && c->state != VBUS_CONN_READY)
                        return c->auth_error;
        }
        return 0;
}

static bool conn_has_unsent(vbus_conn *c)
{
        if (!c->have_link)
                return false;
        if (vbus__link_has_backlog(&c->ep.link) || vbus__link_batch_is_open(&c->ep.link))
                return true;
        for (VbusFeature *f = features_begin(c); f < features_end(c); f++) {
                if (!f->ops->has_unsent)
                        continue;
                if (f->ops->has_unsent(f->state))
                        return true;
        }
        return c->ep.link.transport.kind == VBUS_TRANSPORT_UNIX &&
               vbus__transport_has_pending(&c->ep.link.transport);
}

VBUS_EXPORT int vbus_conn_flush(vbus_conn *c, uint64_t timeout_usec)
{
        uint64_t deadline = vbus__deadline_after(vbus__client_now(), timeout_usec);

        if (!c)
                return -EINVAL;
        /* What the ring took counts as handed over once the broker is told (a vchan ring tells
         * the peer only in its flush): without this, a message published with nothing unsent
         * left would wait for the application's next vbus_conn_process(). */
        if (c->have_link && !c->in_process) {
                int r = vbus__endpoint_flush(&c->ep);

                if (r < 0 && r != -EAGAIN)
                        conn_lost_now(c);
        }
        while (conn_has_unsent(c)) {
                uint64_t now = vbus__client_now();
                int r;

                if (now >= deadline)
                        return -ETIMEDOUT;
                r = vbus_conn_wait(c, vbus__time_left(deadline, now, 10000));
                if (r < 0 && r != -ETIMEDOUT)
                        return r;
        }
        return c->state == VBUS_CONN_READY ? 0 : -ENOTCONN;
}

VBUS_EXPORT int vbus_conn_sync(vbus_conn *c, uint64_t timeout_usec)
{
        uint64_t deadline = vbus__deadline_after(vbus__client_now(), timeout_usec);
        Vbus__V1__Ping ping = VBUS__V1__PING__INIT;
        uint64_t links;
        int r;

        if (!c)
                return -EINVAL;
        r = vbus_conn_flush(c, timeout_usec);
        if (r < 0)
                return r;
        links = c->n_reconnects;
        ping.opaque = ++c->ping_sent;
        r = vbus__endpoint_send_control(&c->ep, VBUS_FRAME_PING, 0, 0, &ping.base);
        if (r < 0)
                return vbus__conn_is_up(c) ? r : -ENOTCONN;
        while (c->pong_seen < ping.opaque) {
                uint64_t now = vbus__client_now();

                /* The PING went on a link that is gone: its answer never comes. */
                if (c->state != VBUS_CONN_READY || c->n_reconnects != links)
                        return -ENOTCONN;
                if (now >= deadline)
                        return -ETIMEDOUT;
                r = vbus_conn_wait(c, vbus__time_left(deadline, now, 100000));
                if (r < 0 && r != -ETIMEDOUT && r != -EINTR)
                        return r;
        }
        return 0;
}

VBUS_EXPORT int vbus_conn_get_state(vbus_conn *c)
{
        return c ? (int)c->state : -EINVAL;
}

VBUS_EXPORT int vbus_conn_get_last_error(vbus_conn *c)
{
        if (!c)
                return -EINVAL;
        if (c->auth_error < 0)
                return c->auth_error;
        return c->last_error < 0 ? c->last_error : c->lost_error;
}

VBUS_EXPORT const char *vbus_conn_get_url(vbus_conn *c)
{
        return c ? c->url_text : "";
}

VBUS_EXPORT uint64_t vbus_conn_get_reconnects(vbus_conn *c)
{
        return c ? c->n_reconnects : 0;
}
