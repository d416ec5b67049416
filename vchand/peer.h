/* SPDX-License-Identifier: MIT */
/*
 * peer: one link to the broker and the frames on it. peer_process() reads the frames that
 * arrived, applies the session rules (libbus/session.c), answers HELLO and PING, and hands
 * stream frames to pubsub.c. A peer that breaks the protocol is disconnected, logged once with its
 * identity; everything else a peer can get wrong is answered with a status and the link stays.
 */
#ifndef VCHAND_PEER_H
#define VCHAND_PEER_H

#include <sys/uio.h>

#include "broker.h"

/* The frames of a Stream's session stream go to its kind's module through these. */
extern const VbusStreamOps peer_stream_ops;

Peer *peer_new(Broker *b, VbusTransport *t, const Identity *ident, uint32_t vchan_domid);
void peer_free(Peer *p);

/* Handles readiness of the peer's fd; may kill the peer. */
void peer_process(Peer *p);

/* Sends a control frame (queued if the link is full); kills the peer if it never reads. */
int peer_send_control(Peer *p, uint8_t type, uint8_t flags, uint32_t stream_id,
                      const ProtobufCMessage *msg);

/* Ends a stream from the broker's side with RESET and a status. */
void peer_reset_stream(Peer *p, uint32_t stream_id, int status, const char *message);
/* Answers an OPEN with REJECT{@status, @message}. */
void peer_reject(Peer *p, uint32_t stream_id, int status, const char *message);

/*
 * Writes one DATA frame if the stream's window and the link both have room for it.
 * Return: 0, -EAGAIN (no room: nothing written), or -errno (the peer was killed).
 */
int peer_send_data(Peer *p, uint32_t stream_id, uint8_t flags, const struct iovec *pieces,
                   size_t n_pieces);

/* The largest DATA payload the broker may write to this peer in one frame. */
size_t peer_max_payload(Peer *p);

/* The largest DATA payload the broker may write on @stream_id now: one frame, within the
 * stream's send window. Return: that size (0: wait for CREDIT), or -ENOENT without the stream. */
ssize_t peer_data_room(Peer *p, uint32_t stream_id);

/* Rate-limited log line about this peer (things a peer can trigger). */
void peer_log(Peer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* VCHAND_PEER_H */
