/* SPDX-License-Identifier: MIT */
/*
 * stream: the part every feature's stream has, and what any stream may send from the broker's
 * side. A feature's stream (pubsub.c's publisher and subscription, rpc.c's server and call
 * sides, introspect.c's call) embeds a Stream and binds its own VbusStreamOps to the session
 * stream (stream_bind), so the stream's frames reach its module in O(1) and ->closed releases it.
 *
 * Stream.peer is set while the stream is open and NULL once ->closed ran: an object that outlives
 * its stream (held by a reference) tells that way that its stream is gone.
 */
#ifndef VCHAND_STREAM_H
#define VCHAND_STREAM_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "peer.h"

typedef struct Stream {
        Peer *peer; /* NULL once closed */
        uint32_t id;
        /* access.c's, for subscriptions: when policy allows only some of the topics the pattern
         * matches, what access_topic_allowed() needs to check each topic when a publisher's
         * matches are computed; NULL otherwise. */
        const void *policy_filter;
} Stream;

/* Binds @ops and @obj (which embeds @s) to the session stream @vs of @p. */
void stream_bind(Stream *s, Peer *p, VbusStream *vs, const VbusStreamOps *ops, void *obj);

/* The stream closed: it no longer has a peer. */
static inline void stream_unbind(Stream *s)
{
        s->peer = NULL;
}

/* ACCEPT with @credit, and @server as Accept.peer (may be NULL). Return: as peer_send_control. */
int stream_accept(Stream *s, uint32_t credit, const Identity *server);

/* END with @status (OK with a NULL @message, usually). Return: as peer_send_control(). */
int stream_end(Stream *s, int status, const char *message);

/* RESET with @status and @message. Return: as peer_send_control(), -EPIPE once closed. */
int stream_reset(Stream *s, int status, const char *message);

/* One DATA frame. Return: as peer_send_data(), -EPIPE once closed. */
int stream_send_data(Stream *s, uint8_t flags, const struct iovec *pieces, size_t n_pieces);

/* The largest DATA payload that may go now (0: wait for CREDIT); -ENOENT once closed. */
ssize_t stream_data_room(Stream *s);

/* Batches on @s's link (protocol.md 5.5): whether its peer takes them, whether a message of @n
 * bytes under @key joins the open one, and adding one (as peer_batch_add(); -EPIPE once
 * closed). */
bool stream_batches(const Stream *s);
bool stream_batch_joins(Stream *s, uint64_t key, size_t n);
int stream_batch_add(Stream *s, uint64_t key, const void *prefix, size_t n_prefix, const void *data,
                     size_t n);
int stream_batch_add_records(Stream *s, uint64_t key, const void *prefix, size_t n_prefix,
                             const void *records, size_t n_bytes, uint32_t n);

/* The message charge of @s's link (peer_msg_charge()); 0 once the stream has no peer. */
uint32_t stream_msg_charge(const Stream *s);

/*
 * Stream ops shared by the features, for an object whose first member is its Stream (@obj is
 * then the Stream itself; the features check that with a static assertion):
 *  stream_op_refuse_data  DATA on a stream that carries none from the peer (subscribe, serve):
 *                         RESET INVALID_ARGUMENT, the link stays;
 *  stream_op_end_too      the peer ended its side: the broker ends its side too, unless it had.
 * Return: 0.
 */
int stream_op_refuse_data(void *obj, VbusStream *vs, const VbusFrame *f);
int stream_op_end_too(void *obj, VbusStream *vs, const Vbus__V1__End *m);

/* Vbus__V1__Identity from @ident, pointing into it (borrowed). */
void stream_identity(Vbus__V1__Identity *ret, const Identity *ident);

/* The same, plus the agent's claims when the peer is a session that made some (@claims: the
 * storage ret->claims then points to). */
void stream_identity_claims(Vbus__V1__Identity *ret, Vbus__V1__Claims *claims,
                            const Identity *ident);

#endif /* VCHAND_STREAM_H */
