/* SPDX-License-Identifier: MIT */
/*
 * session: the protocol state of one session of a link (docs/protocol.md, sections 3, 5 and 7):
 * the HELLO exchange, the stream table, stream-id rules, stream lifecycle and per-stream flow
 * control windows.
 *
 * The session is a pure state machine: it neither reads nor writes bytes. Its owner (the broker
 * for each client session, libvbus for its own) decodes frames with frame.h/control.h, hands each
 * one to vbus__session_recv(), which enforces rule 11 of protocol.md ("the frame is allowed in
 * the current state"), and acts on the result; and before it sends a frame it calls
 * vbus__session_send(), which checks that the frame is allowed and updates windows and states.
 * Both directions share one set of rules, applied from each side's point of view.
 *
 * Result codes of vbus__session_recv(): 0 (act on the frame), VBUS_SESSION_DISCARD (a frame for
 * a stream this side already closed, which may legitimately cross a RESET or END: drop it
 * silently), VBUS_FRAME_E_SEMANTIC (protocol violation: close the link), -ENOMEM.
 * vbus__session_send() returns 0, -EAGAIN (DATA larger than the stream's send window: wait for
 * CREDIT), -EINVAL (the frame is not allowed now: a caller bug), -ENOMEM, -E2BIG (too many
 * streams).
 */
#ifndef VBUS_LIBBUS_SESSION_H
#define VBUS_LIBBUS_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "control.h"
#include "frame.h"

enum {
        /* Bytes the opener may send before ACCEPT (protocol.md 5.3). */
        VBUS_OPEN_WINDOW = 65536,
        /* vbus__session_recv(): drop the frame, it belongs to a stream this side closed. */
        VBUS_SESSION_DISCARD = 100,
};

typedef enum VbusSessionRole {
        VBUS_ROLE_CLIENT = 1, /* speaks first, opens odd stream ids */
        VBUS_ROLE_BROKER = 2, /* answers HELLO, opens even stream ids */
} VbusSessionRole;

typedef enum VbusStreamState {
        VBUS_STREAM_OPENING = 1, /* OPEN sent or received, no ACCEPT yet */
        VBUS_STREAM_OPEN = 2,    /* accepted */
} VbusStreamState;

/* What the owner of a stream does with its frames: see endpoint.h. */
typedef struct VbusStreamOps VbusStreamOps;

typedef struct VbusStream {
        uint32_t id;
        uint8_t kind;           /* vbus.v1.StreamKind */
        uint8_t state;          /* VbusStreamState */
        bool local;             /* this side opened it */
        bool local_ended;       /* this side sent END */
        bool remote_ended;      /* the peer sent END */
        bool local_in_message;  /* this side sent a fragment with MORE */
        bool remote_in_message; /* the peer sent a fragment with MORE */
        int64_t send_window;    /* bytes this side may still send */
        int64_t recv_window;    /* bytes the peer may still send */
        uint64_t sent_before_accept;
        /* The owner's: the endpoint dispatches the stream's frames to ops with userdata. */
        const VbusStreamOps *ops;
        void *userdata;
} VbusStream;

typedef struct VbusSession {
        VbusSessionRole role;
        uint32_t session_id;
        bool hello_sent;
        bool hello_received;
        /* Channel auth (protocol.md 3.1): the client's HELLO set the AUTH feature; then, once the
         * broker's HELLO also set it, the client's next frame may be one more HELLO carrying its
         * proof (auth_proof_due until the client sends any frame). */
        bool auth_offered;
        bool auth_proof_due;
        /* MESSAGE_CHARGE (protocol.md 5.4): the client's HELLO set it; then, once the broker's
         * did too, msg_charge is VBUS_MESSAGE_CHARGE (else 0) for the rest of the session. */
        bool charge_offered;
        uint32_t msg_charge;
        /* BATCH (protocol.md 5.5): the client's HELLO set it; then batch is true once the
         * broker's did too and MESSAGE_CHARGE is in force. */
        bool batch_offered;
        bool batch;
        uint32_t version;        /* negotiated; 0 until both HELLOs passed */
        uint32_t own_max_frame;  /* what this side accepts */
        uint32_t peer_max_frame; /* what the peer accepts; this side's send limit */
        uint32_t own_version_min, own_version_max;
        bool goaway_sent, goaway_received;
        uint32_t last_local_id;  /* highest id this side opened */
        uint32_t last_remote_id; /* highest id the peer opened */
        uint32_t max_streams;    /* streams open at once, per direction (each side's own) */
        /* Open-addressing table of streams, keyed by id; size a power of two. */
        VbusStream **table;
        uint32_t n_table;
        uint32_t n_streams;
        uint32_t n_local_streams; /* of n_streams, those this side opened */
        uint32_t n_tombstones;
        VbusStream *reaped; /* closed by the previous call, freed by the next */
} VbusSession;

/**
 * vbus__session_init() - set up an empty session.
 * @own_max_frame: the max_frame this side will announce (VBUS_FRAME_MAX_MIN..LIMIT).
 * @max_streams: how many streams each side may have open at once that it opened (>= 1): the
 *               peer's opens never use up this side's, so a broker opening calls toward a server
 *               does not take the streams the server opens itself.
 * Return: 0 or -EINVAL.
 */
int vbus__session_init(VbusSession *s, VbusSessionRole role, uint32_t session_id,
                       uint32_t own_max_frame, uint32_t max_streams);

/* Frees every stream (their userdata is the owner's business: walk them first). */
void vbus__session_deinit(VbusSession *s);

/* True once both HELLOs have been exchanged. */
static inline bool vbus__session_is_ready(const VbusSession *s)
{
        return s->hello_sent && s->hello_received;
}

/* The window bytes a message costs on this session beyond its length, charged on its last
 * frame (protocol.md 5.4): VBUS_MESSAGE_CHARGE once negotiated, else 0. */
static inline uint32_t vbus__session_msg_charge(const VbusSession *s)
{
        return s->msg_charge;
}

/* True once both HELLOs set BATCH and MESSAGE_CHARGE is in force (protocol.md 5.5). */
static inline bool vbus__session_batch(const VbusSession *s)
{
        return s->batch;
}

/* The window bytes the DATA frame @h costs: its length, plus the message charge for each message
 * it ends (none for a fragment, h->n_messages for a batch, else one). */
static inline int64_t vbus__session_data_cost(const VbusSession *s, const VbusFrameHeader *h)
{
        uint32_t n = h->flags & VBUS_FLAG_BATCH ? h->n_messages : h->flags & VBUS_FLAG_MORE ? 0 : 1;

        return (int64_t)h->length + (int64_t)n * s->msg_charge;
}

/**
 * vbus__session_get_stream() - the stream with @id, or NULL. Borrowed: valid until the stream
 * closes (vbus__session_recv/send report that with *ret_closed).
 */
VbusStream *vbus__session_get_stream(const VbusSession *s, uint32_t id);

/**
 * vbus__session_next_id() - the id the next OPEN from this side must use.
 * Return: the id, or 0 when this side's ids are exhausted.
 */
uint32_t vbus__session_next_id(const VbusSession *s);

/**
 * vbus__session_recv() - check an incoming frame against the session state and update it.
 * @f: borrowed, a frame whose header passed validation. For a DATA frame with VBUS_FLAG_BATCH,
 *     f->header.n_messages is written with the messages it carries (batch.h), counted before the
 *     window is charged; the owner walks no more than that many.
 * @c: borrowed, its decoded control message (NULL for DATA).
 * @ret_stream: written on 0: the stream the frame belongs to (NULL for link frames). For an OPEN
 *              it is the new stream. Borrowed; for a frame that closed the stream it stays valid
 *              until the next call into the session, so the owner can release its userdata.
 * @ret_closed: written on 0: true when this frame closed the stream.
 *
 * Return: 0, VBUS_SESSION_DISCARD, VBUS_FRAME_E_SEMANTIC, VBUS_FRAME_E_MALFORMED (a batch whose
 * records do not parse), -ENOMEM, -E2BIG (the peer opened more
 * streams than max_streams: answer the OPEN with REJECT RESOURCE_EXHAUSTED; the link stays).
 */
int vbus__session_recv(VbusSession *s, VbusFrame *f, const VbusControl *c, VbusStream **ret_stream,
                       bool *ret_closed);

/**
 * vbus__session_check_data() - would vbus__session_send() take this DATA frame now? Changes
 * nothing, so a frame can be checked before it is written and applied after.
 * Return: 0, -EAGAIN (larger than the stream's send window), -ENOENT (no such stream), -EINVAL
 * (not allowed in the stream's state, or larger than the peer's max_frame).
 */
int vbus__session_check_data(const VbusSession *s, const VbusFrameHeader *h);

/**
 * vbus__session_send_joined() - charge @n more messages, records of @len bytes in all (length
 * varints and bytes), to the batch frame on stream @id whose first message vbus__session_send()
 * took, and which is still being combined: every other rule was checked for that first message
 * and nothing written or read since can change it, so only the window can refuse these.
 * Return: 0, -EAGAIN (over the window), -EINVAL (no such stream, or no batches).
 */
int vbus__session_send_joined(VbusSession *s, uint32_t id, uint32_t len, uint32_t n);

/* vbus__session_send_joined() on the stream itself (@st: the batch's, found by the caller). */
int vbus__session_charge_joined(const VbusSession *s, VbusStream *st, uint32_t len, uint32_t n);

/**
 * vbus__session_send() - check an outgoing frame against the session state and update it.
 * @h: borrowed; for OPEN the stream id must be vbus__session_next_id().
 * @msg: borrowed; the control message (NULL for DATA).
 * @ret_stream, @ret_closed: as for vbus__session_recv() (may be NULL).
 *
 * Return: 0, -EAGAIN, -EINVAL, -ENOMEM, -E2BIG (see the top of this file).
 */
int vbus__session_send(VbusSession *s, const VbusFrameHeader *h, const ProtobufCMessage *msg,
                       VbusStream **ret_stream, bool *ret_closed);

/**
 * vbus__session_take_closed() - take the stream the last call reported closed out of the
 * session's keeping, so that it stays valid across further calls into the session; the caller
 * frees it with free(). Return: the stream, or NULL if none was closed by the last call.
 */
VbusStream *vbus__session_take_closed(VbusSession *s);

/* Calls @fn for each open stream, in no particular order; @fn must not change the session. */
void vbus__session_foreach_stream(const VbusSession *s, void (*fn)(VbusStream *vs, void *data),
                                  void *data);

#endif /* VBUS_LIBBUS_SESSION_H */
