/* SPDX-License-Identifier: MIT */
/*
 * conn: the connection of the client library, which knows no feature. A vbus_conn holds one
 * endpoint (libbus/wire/endpoint.h: a link and a client session) toward the broker, connects
 * (url.h), reconnects with back-off, says HELLO, runs the loop (vbus_conn_process() and the
 * blocking helpers) and gives the features the senders below. Not installed.
 *
 * Features (pubsub.c, call.c, server.c, stream.c) plug in through a VbusFeatureOps table each
 * registers once, on first use, with its own state; the connection calls them through that table
 * only, in the order they registered. Each stream's frames reach the object that owns it through
 * the VbusStreamOps it bound to the stream when it opened it (vbus__conn_open_stream()) or took
 * the peer's OPEN (VbusFeatureOps.open); ->closed tells the owner the stream left the session
 * (a frame closed it, or the link is gone: every bound stream hears ->closed before the features'
 * ->link_lost).
 *
 * Rules for owners: an object that goes away while its stream is still open unbinds it first
 * (vbus__conn_release_stream(), or vbus__endpoint_bind(vs, NULL, NULL)), so that no op reaches it
 * afterwards; a frame that closes a stream frees the stream inside the send, so an owner keeps no
 * VbusStream pointer past ->closed or past its own closing send.
 *
 * A link that fails while the connection is inside vbus_conn_process() (reading, or a callback's
 * send) is only recorded, and dropped at the next step of the loop, so that no feature sees its
 * objects change under an iteration; outside it, it is dropped at once. Senders then fail with
 * -ENOTCONN until the next link is ready.
 */
#ifndef VBUS_LIBBUS_CONN_H
#define VBUS_LIBBUS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vbus/vbus.h>

#include "auth.h"
#include "endpoint.h"
#include "url.h"

enum {
        /* Features a connection can have: publish/subscribe, calls, servers, streams. */
        VBUS_CONN_FEATURES_MAX = 8,
};

/*
 * What a feature does for the connection. Every op may be NULL; @state is what the feature
 * registered with the table (borrowed by the connection until ->free_all).
 */
typedef struct VbusFeatureOps {
        /* HELLO is done: open the feature's streams on the new link. */
        void (*link_ready)(void *state);
        /* The link is gone and every stream's ->closed has run. */
        void (*link_lost)(void *state);
        /* The peer opened @vs: return 1 when the feature took it (bound its ops, or answered it
         * with REJECT), 0 when it is not the feature's, or a negative errno that drops the link. */
        int (*open)(void *state, VbusStream *vs, const Vbus__V1__Open *m);
        /* Sends what waits and delivers what is due (callbacks). Return: 1 progress, 0 none. */
        int (*push)(void *state);
        /* Whether something waits to be sent (vbus_conn_flush()). */
        bool (*has_unsent)(void *state);
        /* The next time ->expire has work (0: a callback is due now; UINT64_MAX: none). */
        uint64_t (*next_deadline)(void *state);
        /* Fails what is past its deadline at @now. */
        void (*expire)(void *state, uint64_t now);
        /* The connection is freed (its link is gone): free every object and @state. */
        void (*free_all)(void *state);
} VbusFeatureOps;

typedef struct VbusFeature {
        const VbusFeatureOps *ops;
        void *state;
} VbusFeature;

struct vbus_conn {
        VbusUrl url;
        char url_text[128]; /* the URL in use, as the user would write it (vbus_conn_get_url) */
        vbus_conn_state state;
        bool have_link;
        bool hello_sent;
        VbusEndpoint ep; /* valid while have_link */
        int link_error;  /* the link failed inside vbus_conn_process(): dropped at the next step */
        VbusFeature features[VBUS_CONN_FEATURES_MAX];
        size_t n_features;
        uint64_t reconnect_at;
        uint64_t backoff;
        uint64_t n_reconnects;
        uint64_t link_started;
        int last_error;
        /* Why the last link was dropped as it was read (-EPROTO: the broker broke the protocol;
         * -ECONNRESET: it sent ERROR; -EPIPE: it closed): vbus_conn_get_last_error() says so
         * until a link is ready again. */
        int lost_error;
        bool ever_ready;
        bool in_process;
        uint64_t broker_features; /* Hello.features of the broker on the current link */
        uint64_t ping_sent;       /* the opaque of the last PING vbus_conn_sync() sent */
        uint64_t pong_seen;       /* the highest opaque the broker answered */
        /* Channel auth (auth.h, protocol.md 3.1): this side's key (NULL: none), the broker key
         * it pins, the link's transcript, the PING whose ACK says the broker took our proof
         * (0: none awaited), and why the last link failed auth (0: it did not). */
        VbusAuthKey *auth_key;
        bool auth_pin;
        uint8_t auth_broker_key[VBUS_AUTH_PUBLIC_KEY_SIZE];
        VbusAuthTranscript auth;
        uint64_t auth_ping;
        int auth_error;
};

/* CLOCK_MONOTONIC in microseconds. */
uint64_t vbus__client_now(void);

/* The absolute time @timeout_usec after @now, or UINT64_MAX (never) when the sum does not fit:
 * a caller's UINT64_MAX (VBUS_TIMEOUT_FOREVER), or any timeout that large, means no limit,
 * never a deadline that wrapped around into the past. */
static inline uint64_t vbus__deadline_after(uint64_t now, uint64_t timeout_usec)
{
        return timeout_usec >= UINT64_MAX - now ? UINT64_MAX : now + timeout_usec;
}

/* What to pass vbus_conn_wait() to wait until @deadline at most @cap: UINT64_MAX stays forever. */
static inline uint64_t vbus__time_left(uint64_t deadline, uint64_t now, uint64_t cap)
{
        if (deadline == UINT64_MAX)
                return cap;
        return deadline - now < cap ? deadline - now : cap;
}

/**
 * vbus__conn_get_feature() - the state of the feature @ops, registering it on first use.
 * @new_state: makes the state (a zeroed, initialised object); called once, on first use.
 * Return: the state (borrowed until vbus_conn_free()), or NULL on ENOMEM or when
 * VBUS_CONN_FEATURES_MAX features are registered.
 */
void *vbus__conn_get_feature(vbus_conn *c, const VbusFeatureOps *ops,
                             void *(*new_state)(vbus_conn *c));

/* True while there is a link that has not failed: senders may be called. */
static inline bool vbus__conn_is_up(const vbus_conn *c)
{
        return c->have_link && c->link_error == 0;
}

/**
 * vbus__conn_open_stream() - opens a stream from this side and binds @ops and @obj to it.
 * @o: borrowed; the OPEN. @ret_vs: written on success: the stream, borrowed until its ->closed.
 * Return: 0; -E2BIG (no stream id left, or too many streams); -EMSGSIZE (@o encodes to more
 * than VBUS_CONTROL_MAX); -EINVAL (@o breaks a rule of the protocol); -ENOTCONN (no usable link,
 * or the link failed); another negative errno.
 */
int vbus__conn_open_stream(vbus_conn *c, const Vbus__V1__Open *o, const VbusStreamOps *ops,
                           void *obj, VbusStream **ret_vs);

/**
 * vbus__conn_send_control() - a control frame on stream @id (0 for the link).
 * Return: 0; -ENOTCONN (no usable link, or the link failed: it is dropped); -EINVAL (the session
 * refuses the frame now); another negative errno.
 */
int vbus__conn_send_control(vbus_conn *c, uint8_t type, uint32_t id, const ProtobufCMessage *msg);

/* END or RESET (@type) with @status and @message (may be NULL) on @id. Return: as above. */
int vbus__conn_send_end(vbus_conn *c, uint8_t type, uint32_t id, int status, const char *message);

/**
 * vbus__conn_release_stream() - the owner is done with *@vs: unbind it (no op reaches the owner
 * any more, ->closed included), forget it (*@vs = NULL), and end it from this side with @type
 * (END or RESET), @status and @message (may be NULL), flushed now when called from outside
 * vbus_conn_process() (inside it, its last step flushes). Nothing when *@vs is NULL.
 */
void vbus__conn_release_stream(vbus_conn *c, VbusStream **vs, uint8_t type, int status,
                               const char *message);

/**
 * vbus__conn_send_data() - one DATA frame of @n bytes from @data on stream @id.
 * Return: 0; -EAGAIN (no window or no room in the link: nothing written); -EPIPE (no such
 * stream, or not allowed on it now); -ENOTCONN (no usable link, or the link failed).
 */
int vbus__conn_send_data(vbus_conn *c, uint32_t id, uint8_t flags, const void *data, size_t n);

/**
 * vbus__conn_batch_add() - one whole message of @n bytes on stream @id, combined into a batch
 * frame (protocol.md 5.5, vbus__endpoint_batch_add()) that the link publishes at the next other
 * write, at the next flush of the connection, when it is full, or at vbus__conn_batch_commit().
 * Only while vbus__conn_batches() is true. Return: as vbus__conn_send_data().
 */
int vbus__conn_batch_add(vbus_conn *c, uint32_t id, const void *data, size_t n);

/* Publishes the batch being combined, if any. Return: 0 or -ENOTCONN (the link failed). */
int vbus__conn_batch_commit(vbus_conn *c);

/* True while a batch is being combined: the connection owes a flush. */
bool vbus__conn_batch_is_open(const vbus_conn *c);

/* The messages of the batch being combined (0: none). */
uint32_t vbus__conn_batch_messages(const vbus_conn *c);

/* True when the current link negotiated BATCH (and MESSAGE_CHARGE). */
bool vbus__conn_batches(const vbus_conn *c);

/* True while what this side committed to the link waits for the broker: a vchan ring the broker
 * has not read to the end, a UNIX buffer not yet sent. The broker is busy then and will read
 * what comes next without being woken: the moment to combine messages. */
bool vbus__conn_peer_busy(vbus_conn *c);

/**
 * vbus__conn_send_message() - sends bytes *@off..@n of the message @buf on stream @id in DATA
 * frames as far as the window and the link allow, MORE on every frame but the message's last,
 * advancing *@off. An empty message is one empty frame, sent once (*@sent_empty).
 * @min_frag: when the rest does not fit, the smallest fragment worth a frame (1: any).
 * @first_flags: flags of the message's first frame besides MORE (VBUS_FLAG_RETAIN), or 0.
 * Return: 1 (all of it is sent), 0 (the rest waits for credit or room), -ENOTCONN (the link
 * failed, or there is none).
 */
int vbus__conn_send_message(vbus_conn *c, uint32_t id, const uint8_t *buf, size_t n, size_t *off,
                            bool *sent_empty, size_t min_frag, uint8_t first_flags);

/* The largest DATA payload that may go on @id now (window and frame size); 0 without a link. */
size_t vbus__conn_data_room(vbus_conn *c, uint32_t id);

/* The window bytes a message costs beyond its length on the current link, charged on its last
 * frame: VBUS_MESSAGE_CHARGE once MESSAGE_CHARGE is negotiated, else 0 (protocol.md 5.4). A
 * receiver gives it back with the message's bytes. */
uint32_t vbus__conn_msg_charge(const vbus_conn *c);

#endif /* VBUS_LIBBUS_CONN_H */
