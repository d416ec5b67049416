/* SPDX-License-Identifier: MIT */
/*
 * endpoint: one link plus one session, the part of a connection that the broker (one endpoint
 * per peer, vchand/peer.c) and the client library (one per connection, libbus/client/conn.c)
 * share. It owns the receive loop, the frame senders and the answers that need no owner (PING,
 * a REJECT for an OPEN over the stream limit), and it hands every other frame to whoever owns
 * it in O(1):
 *
 *  - a stream frame (ACCEPT, REJECT, DATA, END, RESET, CREDIT) goes to the ops table bound to
 *    the stream (VbusStream.ops, with VbusStream.userdata as the object), found by the session's
 *    hash of stream ids; a stream with no ops bound has its frames checked and dropped;
 *  - a link frame (HELLO, GOAWAY, ERROR) and a peer's OPEN go to the endpoint's owner ops.
 *
 * Sending: a frame goes through the session first, which checks that it is allowed now (state,
 * window, size) and only then is it written, so a refused frame never reaches the link. A
 * control frame that finds the link full waits in the link's bounded backlog; DATA never does
 * (-EAGAIN: try again when the peer has read or granted credit).
 *
 * Errors are returned, never acted on here: vbus__endpoint_process() stops at the first frame
 * that breaks the protocol (-EPROTO, with the reason in ->violation) or at the first nonzero
 * code an op returns, and hands it to its caller, the only layer that may drop the link.
 *
 * Closing: when a frame in either direction closes a stream, its ops->closed runs once, after
 * the frame's own op for an incoming frame and inside the send call for an outgoing one (the
 * caller must not touch the object after sending a closing frame unless it holds a reference).
 * vbus__endpoint_deinit() runs ->closed for every stream still open.
 */
#ifndef VBUS_LIBBUS_ENDPOINT_H
#define VBUS_LIBBUS_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "control.h"
#include "frame.h"
#include "link.h"
#include "session.h"
#include "transport.h"

typedef struct VbusEndpoint VbusEndpoint;

/*
 * What a stream's owner does with the frames of its stream. Every op may be NULL (the frame is
 * dropped once the session has checked it). @obj is VbusStream.userdata; @vs is borrowed for the
 * call. Return: 0, or a nonzero code that stops vbus__endpoint_process() and is returned by it.
 */
struct VbusStreamOps {
        int (*accept)(void *obj, VbusStream *vs, const Vbus__V1__Accept *m);
        int (*reject)(void *obj, VbusStream *vs, const Vbus__V1__Reject *m);
        int (*data)(void *obj, VbusStream *vs, const VbusFrame *f);
        int (*end)(void *obj, VbusStream *vs, const Vbus__V1__End *m);
        int (*reset)(void *obj, VbusStream *vs, const Vbus__V1__End *m);
        int (*credit)(void *obj, VbusStream *vs, const Vbus__V1__Credit *m);
        /* The stream left the session: a frame closed it, or the endpoint is going away. */
        void (*closed)(void *obj, VbusStream *vs);
};

/* What the endpoint's owner does with link frames and the peer's OPENs. Ops as above. */
typedef struct VbusEndpointOps {
        int (*hello)(void *owner, const Vbus__V1__Hello *m);
        /* The peer opened @vs: bind ops to it (vbus__endpoint_bind) or answer REJECT. */
        int (*open)(void *owner, VbusStream *vs, const Vbus__V1__Open *m);
        int (*goaway)(void *owner, const Vbus__V1__GoAway *m);
        int (*error)(void *owner, const Vbus__V1__Error *m);
        /* The peer answered one of our PINGs (PING with ACK). */
        int (*pong)(void *owner, const Vbus__V1__Ping *m);
        /* Bytes were written to the link (the owner may want to flush them once, later). */
        void (*wrote)(void *owner);
        /*
         * A frame of another session than the endpoint's own (protocol.md section 7): the owner
         * of a link with sessions routes it (vbus__endpoint_dispatch() on that session's
         * endpoint). @f and @ctl are borrowed for the call. NULL: such a frame breaks rule 11.
         */
        int (*foreign)(void *owner, const VbusFrame *f, const VbusControl *ctl);
} VbusEndpointOps;

struct VbusEndpoint {
        VbusLink link; /* the link, when this endpoint owns it (session 0) */
        VbusLink *lk;  /* the link it uses: &link, or the link of the session-0 endpoint */
        VbusSession session;
        const VbusEndpointOps *ops;
        void *owner;
        int violation;    /* VBUS_FRAME_E_* after -EPROTO from vbus__endpoint_process() */
        uint8_t bad_type; /* the type of the frame that broke the protocol */
        bool closing;     /* deinit in progress: sends fail with -EPIPE */
        /* The stream of the link's open batch, while its serial is batch_serial: found once per
         * batch, not once per message it takes (vbus__endpoint_batch_add()). */
        VbusStream *batch_stream;
        uint64_t batch_serial;
};

/**
 * vbus__endpoint_init() - a link over @t and an empty session.
 * @t: moved in on success (the caller's copy must not be used again); the caller's on failure.
 * @ops, @owner: borrowed for the endpoint's life.
 * Return: 0, -EINVAL, -ENOMEM.
 */
int vbus__endpoint_init(VbusEndpoint *e, VbusTransport *t, VbusSessionRole role, uint32_t max_frame,
                        uint32_t max_streams, const VbusEndpointOps *ops, void *owner);

/**
 * vbus__endpoint_init_session() - an endpoint for session @session_id (>= 1) of a link that
 * another endpoint owns (protocol.md section 7): it sends on @link with its session id in every
 * header, and receives the frames its link's owner hands it with vbus__endpoint_dispatch().
 * @link: borrowed; must outlive this endpoint.
 * Return: 0, -EINVAL, -ENOMEM.
 */
int vbus__endpoint_init_session(VbusEndpoint *e, VbusLink *link, VbusSessionRole role,
                                uint32_t session_id, uint32_t max_frame, uint32_t max_streams,
                                const VbusEndpointOps *ops, void *owner);

/* Runs ->closed for each stream still open, then frees the session and, if it owns it, the
 * link. */
void vbus__endpoint_deinit(VbusEndpoint *e);

/* Binds @ops and @obj (borrowed until ->closed) to @vs; NULL @ops unbinds. */
static inline void vbus__endpoint_bind(VbusStream *vs, const VbusStreamOps *ops, void *obj)
{
        vs->ops = ops;
        vs->userdata = obj;
}

/* Unbinds the stream with @id, if any, so that its object can go before the stream closes. */
void vbus__endpoint_unbind(VbusEndpoint *e, uint32_t id);

/**
 * vbus__endpoint_process() - read and dispatch up to @max_frames frames.
 * @take_events: run the transport's process step first (take a vchan's event, read a socket);
 *               without it only what the transport already holds is read.
 * Return: the number of frames read (>= 0; @max_frames means there may be more); -EPROTO (the
 * peer broke a rule: ->violation and ->bad_type say which); -EPIPE (the peer closed; ->violation
 * is nonzero if it stopped inside a frame); the nonzero code an op returned; another -errno
 * from the transport or -ENOMEM.
 */
int vbus__endpoint_process(VbusEndpoint *e, bool take_events, unsigned int max_frames);

/**
 * vbus__endpoint_dispatch() - check one received frame of this endpoint's session and hand it to
 * its owner or stream, as vbus__endpoint_process() does for each frame it reads.
 * @f, @ctl: borrowed (from vbus__link_next() on the shared link).
 * Return: 0, or as vbus__endpoint_process() for one frame.
 */
int vbus__endpoint_dispatch(VbusEndpoint *e, const VbusFrame *f, const VbusControl *ctl);

/**
 * vbus__endpoint_send_sessionless() - GOAWAY or ERROR (@type) for session @session_id, which
 * has no endpoint here (a session refused before it was set up), written on this endpoint's
 * link. Return: as vbus__endpoint_send_control(); -EINVAL for another type or for this
 * endpoint's own session.
 */
int vbus__endpoint_send_sessionless(VbusEndpoint *e, uint8_t type, uint32_t session_id,
                                    const ProtobufCMessage *msg);

/**
 * vbus__endpoint_open() - open a stream from this side.
 * @m: borrowed; the OPEN to send. @ops, @obj: bound to the new stream.
 * @ret_id: written on success.
 * Return: 0; -E2BIG (no stream id left, or too many streams); -EINVAL (not allowed now, or a
 * message the peer would refuse); -EMSGSIZE (@m encodes to more than VBUS_CONTROL_MAX);
 * -ENOBUFS (the peer is not reading: the backlog is full); another -errno from the link.
 */
int vbus__endpoint_open(VbusEndpoint *e, const Vbus__V1__Open *m, const VbusStreamOps *ops,
                        void *obj, uint32_t *ret_id);

/**
 * vbus__endpoint_send_control() - a control frame, written now or queued in the backlog.
 * The message is checked as the peer will check it (protocol.md's rules for its type, and its
 * encoded size) before the session applies it, so a refused frame changes nothing.
 * Return: 0; -EINVAL (the session or the message rules refuse it: a caller bug); -EMSGSIZE
 * (it encodes to more than VBUS_CONTROL_MAX); -ENOBUFS (backlog full: the peer is not reading
 * its link); -EPIPE (the peer closed); another -errno from the link.
 */
int vbus__endpoint_send_control(VbusEndpoint *e, uint8_t type, uint8_t flags, uint32_t id,
                                const ProtobufCMessage *msg);

/* END or RESET with @status and @message (may be NULL) on stream @id. Return: as above. */
int vbus__endpoint_send_end(VbusEndpoint *e, uint8_t type, uint32_t id, int status,
                            const char *message);

/**
 * vbus__endpoint_send_data() - one DATA frame whose payload is the concatenation of @pieces.
 * The session checks the frame (the stream's state and window, the peer's max_frame) before
 * anything is written.
 * Return: 0; -EAGAIN (no window or no room in the link: nothing written); -ENOENT (no such
 * stream); -EINVAL (not allowed now: a caller bug); -EPIPE (the peer closed); another -errno.
 */
int vbus__endpoint_send_data(VbusEndpoint *e, uint32_t id, uint8_t flags,
                             const struct iovec *pieces, size_t n_pieces);

/**
 * vbus__endpoint_send_batch() - one DATA frame with VBUS_FLAG_BATCH (and @flags) carrying
 * @n_messages whole messages, already laid out as batch records in @pieces (batch.h); charged
 * @n_messages message charges. Return: as vbus__endpoint_send_data(); -EINVAL also when BATCH is
 * not in force (vbus__session_batch()).
 */
int vbus__endpoint_send_batch(VbusEndpoint *e, uint32_t id, uint8_t flags,
                              const struct iovec *pieces, size_t n_pieces, uint32_t n_messages);

/**
 * vbus__endpoint_batch_add() - one whole message on stream @id, combined into the batch frame
 * being written (vbus__link_batch_add()): the session checks and charges it as a record of a
 * batch (its length varint, its bytes, one message charge, and @prefix when it starts a batch),
 * the link publishes the frame when anything else is written, at vbus__endpoint_flush() or when
 * it is full. BATCH must be in force (vbus__session_batch()).
 * @flags: VBUS_FLAG_META with a Meta prefix (the broker's), else 0.
 * @key, @prefix, @n_prefix: as vbus__link_batch_add(): a prefix starts a new batch (it
 *                           describes the batch's first message); without one the message joins
 *                           the open batch of @id under the same @key, or (only without META)
 *                           starts a batch with no prefix; with META it must join (-EINVAL).
 * Return: as vbus__endpoint_send_data().
 */
int vbus__endpoint_batch_add(VbusEndpoint *e, uint32_t id, uint8_t flags, uint64_t key,
                             const void *prefix, size_t n_prefix, const void *data, size_t len);

/**
 * vbus__endpoint_batch_add_records() - as vbus__endpoint_batch_add(), for @n whole messages
 * already laid out as batch records (@records, @n_bytes; the caller checked them: a batch passed
 * on whole, one copy), charged @n_bytes and @n message charges (and the prefix when they start a
 * batch). Return: as vbus__endpoint_send_data().
 */
int vbus__endpoint_batch_add_records(VbusEndpoint *e, uint32_t id, uint8_t flags, uint64_t key,
                                     const void *prefix, size_t n_prefix, const void *records,
                                     size_t n_bytes, uint32_t n);

/* The record bytes vbus__endpoint_batch_add_records() would take now (link room only: the
 * window is the caller's to check), as vbus__link_batch_room(). */
size_t vbus__endpoint_batch_room(VbusEndpoint *e, uint32_t id, uint8_t flags, uint64_t key,
                                 size_t n_prefix);

/* Whether @n_bytes of records would join the open batch (vbus__endpoint_batch_add_records()). */
bool vbus__endpoint_batch_joins_records(VbusEndpoint *e, uint32_t id, uint8_t flags, uint64_t key,
                                        size_t n_bytes);

/* Whether vbus__endpoint_batch_add() would join the open batch (no prefix written, none
 * charged), as vbus__link_batch_joins(). */
bool vbus__endpoint_batch_joins(VbusEndpoint *e, uint32_t id, uint8_t flags, uint64_t key,
                                size_t len);

/* The largest DATA payload the peer accepts in one frame on this link. */
size_t vbus__endpoint_max_payload(VbusEndpoint *e);

/* The largest DATA payload that may go on stream @id now (frame size and window); -ENOENT. */
ssize_t vbus__endpoint_data_room(VbusEndpoint *e, uint32_t id);

/* Writes what the backlog holds as space allows, then flushes the transport. 0 or -errno. */
int vbus__endpoint_flush(VbusEndpoint *e);

#endif /* VBUS_LIBBUS_ENDPOINT_H */
