/* SPDX-License-Identifier: MIT */
/*
 * peer: one link to the broker (a UNIX connection or a guest's vchan) on the shared endpoint
 * (libbus/wire/endpoint.h), and the only place, with broker.c, where a link is dropped.
 *
 * Reading: peer_process() hands the peer's frames to the endpoint, which checks each one
 * (protocol.md rules 1-11), answers PING, and passes HELLO, OPEN, GOAWAY and ERROR here and
 * every stream frame to the ops its feature bound to the stream. An OPEN goes to the feature of
 * its kind through the bus's table (bus.h). Every handler returns a result (below) instead of
 * acting on the link; peer_process() drops the peer that sent the frame when the result says so,
 * logged once with its identity.
 *
 * Writing: peer_send_*() go through the session first (a frame it refuses is never written).
 * A write that finds the peer's link full of unread control frames drops *that* peer: it does
 * not read its link, which is its own doing and never the doing of the peer whose frame caused
 * the write. The writer is told -EPIPE, as for a peer that closed, and carries on.
 *
 * Lifetime: a dropped peer (peer_kill) leaves the bus's list of live peers at once and is freed
 * by broker.c at the end of the loop iteration; until then writes to it fail with -EPIPE. Freeing
 * it closes its streams (each feature's ->closed), which is how a feature learns a peer is gone.
 *
 * Agent sessions (protocol.md section 7): a link's frames of session 0 are its own peer's; each
 * other session a guest agent starts with HELLO is a peer of its own (->parent: the link's peer),
 * with its own endpoint session on the shared link, its own streams, windows and quotas, so
 * features see it as any other client. Only the link's peer reads the link and is polled; it
 * routes each other session's frame to that session's peer in O(1) (a keyed map). Who pays:
 *  - a session that breaks a rule of its session (rule 11, a broker rule) is ended alone: ERROR
 *    and GOAWAY for that session, and the link and its other sessions stay;
 *  - a link that breaks a framing rule (1-10), sends a frame for a session above any it started
 *    without HELLO, or does not read its link, is dropped with all its sessions;
 *  - a session over max_sessions is refused with GOAWAY RESOURCE_EXHAUSTED before anything is
 *    allocated for it. Session ids strictly increase on a link, so a frame for a session id
 *    already used and gone (it crossed our GOAWAY) is discarded with one comparison.
 * A link's sessions are always dropped before it (they precede it in the bus's dead list), as
 * their endpoints write on its link.
 */
#ifndef VCHAND_PEER_H
#define VCHAND_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "auth.h"
#include "bus.h"
#include "endpoint.h"
#include "map.h"

/*
 * Results of the handlers of a peer's frames (the stream ops a feature binds, and BusOpenFn),
 * besides 0 (handled: whatever became of the stream, the link is fine):
 *  PEER_E_PROTOCOL  the peer that sent the frame broke a rule of the broker's: it is dropped,
 *                   told with ERROR PROTOCOL_ERROR;
 *  -errno           the peer that sent the frame cannot be served (e.g. -ENOMEM); it is dropped
 *                   with the error in the log. Never -EPIPE nor -EPROTO (the endpoint's own).
 * The values are above any frame count vbus__endpoint_process() returns.
 */
enum {
        PEER_E_PROTOCOL = 0x1000,
};

struct Peer {
        Bus *bus;
        List link;       /* in bus->peers while live */
        List dead_link;  /* in bus->dead once dropped */
        List dirty_link; /* in bus->dirty: flushed once at the end of the iteration */
        uint64_t serial;
        Identity ident;
        char label[192]; /* for logs: "dom3(sensor)", "local uid 1000 pid 42", a key, a session */
        VbusEndpoint ep;
        /* Agent sessions: on a session, the peer of its link; NULL on a link. */
        Peer *parent;
        MapEntry session_entry; /* a session: in its parent's sessions_map, keyed by session_key */
        List session_link;      /* a session: in its parent's sessions */
        /* On a link: its live sessions, and the highest session id its agent started. */
        List sessions;
        Map sessions_map;
        uint64_t created_us;
        uint64_t created_unix_us; /* wall clock of the connection, for admins */
        VbusAuthTranscript auth;  /* keyring.c's: this session's channel auth, from HELLO on */
        /* The per-peer quotas and lists of the features, each kept by its module only. */
        List pending;             /* pubsub.c: subscriptions with queued messages */
        uint64_t bytes_queued;    /* pubsub.c: over all its subscriptions' queues */
        uint64_t publish_granted; /* pubsub.c: sum of its publishers' windows */
        List call_sides;          /* rpc.c: its ends of calls relayed by the broker */
        List intro_calls;         /* introspect.c: its calls the broker answers itself */
        uint64_t mem_held;        /* budget.c: bytes held on its behalf (charged by features) */
        uint64_t link_mem_held;   /* budget.c, on a link: its own mem_held plus its sessions' */
        uint64_t retire_deadline_us;
        /* access.c: what policy granted this peer's streams (re-checked at reload, charged to
         * its budget, freed through Bus.peer_gone); the OPENs policy refused or streams it
         * revoked; its last allowed call. */
        List grants;
        uint64_t n_denied;
        char *policy_last_call; /* the last CALL name policy allowed, at policy_last_gen */
        uint64_t policy_last_gen;
        List publishers;    /* pubsub.c: its publish streams (for admin listings) */
        List subscriptions; /* pubsub.c: its subscriptions (for admin listings) */
        /* Counters for admins (vbusctl peers, metrics), each kept by the module named. */
        uint64_t n_published;  /* pubsub.c: messages it published */
        uint64_t n_dropped;    /* pubsub.c: messages its DROP subscriptions lost */
        uint64_t n_violations; /* peer.c: protocol violations (it was dropped for it) */
        /* The 4-byte and 1-byte fields, together so that the struct has no holes (each is
         * described where its module's fields are above). */
        uint32_t vchan_domid;     /* vchan peers: the guest; UINT32_MAX for UNIX peers */
        uint32_t events;          /* broker.c's: the epoll events registered for the link's fd */
        uint32_t n_sessions;      /* on a link: its live sessions */
        uint32_t last_session_id; /* on a link: the highest session id its agent started */
        uint32_t n_subscriptions; /* pubsub.c */
        uint32_t n_calls;         /* rpc.c and introspect.c: calls in flight as a caller */
        uint32_t grant_pages;     /* budget.c: pages of its rings mapped (vchan peers) */
        uint32_t n_grants;        /* access.c: its grants */
        uint8_t session_key[4];   /* a session: its key in its parent's sessions_map */
        bool dead;
        bool more;       /* stopped at LIMIT_FRAMES_PER_WAKEUP: process again */
        bool registered; /* broker.c's: the link's fd is in the epoll set */
        bool retiring;   /* its stream ids are used up: GOAWAY sent (peer_retire) */
        bool announced;  /* its identity is final: presence told vbus.peer.up (peer_announce) */
};

/**
 * peer_new() - a live peer on @t, in bus->peers.
 * @t: moved in on success; the caller's on failure. @ident: copied.
 * Return: the peer, or NULL (-ENOMEM, or the endpoint refused the transport).
 */
Peer *peer_new(Bus *b, VbusTransport *t, const Identity *ident, uint32_t vchan_domid);

/* Closes every stream still open (each feature's ->closed) and frees the link. Accepts NULL. */
Peer *peer_free(Peer *p);

/* Drops @p as an admin asked (Kick): tells it ERROR PERMISSION_DENIED with @reason first. */
void peer_kick(Peer *p, const char *reason);

/* Drops @p as no longer admitted (a key removed from the keyring): ERROR PERMISSION_DENIED with
 * @why first. Idempotent. */
void peer_deny(Peer *p, const char *why);

/*
 * peer_announce() - @p's identity is final: presence says vbus.peer.up, and admin listings show
 * it. Called at HELLO when no proof can follow, at the proof HELLO (channel auth), at the first
 * OPEN, or by the tick (a client that offered auth, proved nothing and opens nothing). A peer
 * that never gets there (no HELLO, a refused proof) is never announced, nor its end. Idempotent.
 */
void peer_announce(Peer *p);

/* "unix" or "vchan". */
const char *peer_transport_name(const Peer *p);

/* The sizes of the rings (vchan) or buffers (UNIX) of @p's link, each way. */
void peer_ring_sizes(const Peer *p, uint32_t *ret_in, uint32_t *ret_out);

/* Streams open on @p's link. */
uint32_t peer_n_streams(const Peer *p);

/* Calls @fn for each live peer: each link, then each of its agent sessions; a nonzero return
 * stops the walk and is returned. @fn must not drop peers. Return: 0 or that value. */
int peer_foreach(Bus *b, int (*fn)(Peer *p, void *userdata), void *userdata);

/* Drops @p (and, on a link, its sessions): out of the live list and into the dead one, logged
 * once with @why. Idempotent. Presence (vbus.peer.down) is told for each, with @why. */
void peer_kill(Peer *p, const char *why);

/* The peer that owns @p's link (itself, or a session's link peer). */
static inline Peer *peer_link_owner(Peer *p)
{
        return p->parent ? p->parent : p;
}

static inline bool peer_is_alive(const Peer *p)
{
        return !p->dead;
}

/* Notes that @p's link has bytes to flush (once, at the end of the loop iteration). */
void peer_mark_dirty(Peer *p);

/*
 * Reads and dispatches what arrived, up to LIMIT_FRAMES_PER_WAKEUP frames (sets ->more when it
 * stopped there). Drops the peer when a handler or the endpoint says so.
 */
void peer_process(Peer *p);

/* Writes the link's backlog and flushes it; drops the peer on a hard error. */
void peer_flush(Peer *p);

/**
 * peer_send_control() - a control frame to @p, written now or queued in the link's backlog.
 * Return: 0; -EPIPE (@p's link is closed, or @p was dropped here because it does not read it:
 * either way the stream goes with the peer); -EINVAL or -EMSGSIZE (refused before anything was
 * written: a caller bug).
 */
int peer_send_control(Peer *p, uint8_t type, uint8_t flags, uint32_t stream_id,
                      const ProtobufCMessage *msg);

/* END or RESET (@type) with @status and @message (may be NULL). Return: as above. */
int peer_send_end(Peer *p, uint8_t type, uint32_t stream_id, int status, const char *message);

/* Answers an OPEN with REJECT{@status, @message}. Return: as above. */
int peer_reject(Peer *p, uint32_t stream_id, int status, const char *message);

/**
 * peer_open() - open a stream toward @p, with @ops and @obj bound to it.
 * @m: borrowed. @ret_id: written on success.
 * Return: 0; -EMSGSIZE (@m is larger than a control frame) or -EINVAL (@m breaks a rule, or an
 * OPEN is not allowed now): nothing sent, and @p is not to blame; -E2BIG (@p has no stream
 * left); -EPIPE (as above).
 */
int peer_open(Peer *p, const Vbus__V1__Open *m, const VbusStreamOps *ops, void *obj,
              uint32_t *ret_id);

/**
 * peer_send_data() - one DATA frame if the stream's window and the link have room for it.
 * Return: 0; -EAGAIN (no room: nothing written); -EPIPE (the stream or the link is gone);
 * -EINVAL (refused by the session: a caller bug).
 */
int peer_send_data(Peer *p, uint32_t stream_id, uint8_t flags, const struct iovec *pieces,
                   size_t n_pieces);

/* The largest DATA payload that may go on @stream_id now (0: wait for CREDIT), or -ENOENT. */
ssize_t peer_data_room(Peer *p, uint32_t stream_id);

/* Whether @p's link negotiated BATCH (protocol.md 5.5). */
bool peer_batches(const Peer *p);

/* Whether a message of @n bytes under @key would join the batch being written on @p's link for
 * @stream_id (vbus__endpoint_batch_joins()): then it costs no prefix. */
bool peer_batch_joins(Peer *p, uint32_t stream_id, uint64_t key, size_t n);

/* The record bytes peer_batch_add_records() would take now (vbus__endpoint_batch_room()). */
size_t peer_batch_room(Peer *p, uint32_t stream_id, uint64_t key, size_t n_prefix);

/* Whether @n_bytes of batch records under @key would join it (peer_batch_add_records()). */
bool peer_batch_joins_records(Peer *p, uint32_t stream_id, uint64_t key, size_t n_bytes);

/**
 * peer_batch_add() - one whole message in a batch frame with a Meta prefix on @stream_id
 * (vbus__endpoint_batch_add()): joins the open batch when peer_batch_joins(), else starts one
 * with @prefix. Published when anything else is written to the link or at its flush.
 * Return: as peer_send_data().
 */
int peer_batch_add(Peer *p, uint32_t stream_id, uint64_t key, const void *prefix, size_t n_prefix,
                   const void *data, size_t n);

/* peer_batch_add() for @n messages laid out as batch records (vbus__endpoint_batch_add_records():
 * a publisher's batch passed on whole). */
int peer_batch_add_records(Peer *p, uint32_t stream_id, uint64_t key, const void *prefix,
                           size_t n_prefix, const void *records, size_t n_bytes, uint32_t n);

/* The window bytes a message costs beyond its length on @p's link, charged on its last frame:
 * VBUS_MESSAGE_CHARGE once MESSAGE_CHARGE is negotiated, else 0 (protocol.md 5.4). */
uint32_t peer_msg_charge(const Peer *p);

/*
 * peer_retire() - the broker's stream ids toward @p are (nearly) used up (stream_id_limit, at
 * most 2^31): @p is sent GOAWAY, takes no new call (service.c skips it, its own new OPENs are
 * refused SHUTTING_DOWN), and its link is closed once nothing the broker opened toward it is open,
 * or after LIMIT_RETIRE_GRACE_MS: the client reconnects with a fresh session. Idempotent.
 */
void peer_retire(Peer *p);

/* Whether the broker may open a stream toward @p without using up its ids (see peer_retire). */
bool peer_has_ids(const Peer *p);

/* Closes the link of a retiring @p once it is time (see peer_retire). */
void peer_retire_check(Peer *p, uint64_t now_us);

/*
 * peer_log_allowed() - whether one more line about the source @key (ratelimit.h) may be logged,
 * for lines about a source that has no Peer (a guest refused before its link exists, a vchan
 * that cannot be used). Says once how many lines of the last minute were suppressed, naming the
 * source by @what ("dom" or "pid") and the key's number.
 */
bool peer_log_allowed(Bus *b, uint64_t key, const char *what);

/* Log line about this peer, rate-limited per source (its domain, or its local process: see
 * ratelimit.h), for anything a peer can trigger: its connection and disconnection too. */
void peer_log(Peer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* VCHAND_PEER_H */
