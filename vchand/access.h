/* SPDX-License-Identifier: MIT */
/*
 * access: the policy (policy.h) applied to the peers' streams. It sits in the bus's OPEN table
 * (Bus.open[], called from peer.c) in front of the features' own handlers (Bus.feature_open[]):
 * an OPEN that policy denies is refused at once with PERMISSION_DENIED and a message naming the
 * rule that decided, logged (rate-limited) and counted for the peer; an OPEN it allows goes to
 * its feature, and what was granted is remembered with the stream (a Grant in Peer.grants).
 *
 * Decisions are taken once per stream, at OPEN, so a message costs nothing. The one exception is
 * a subscription whose pattern matches topics policy allows and topics it denies (for example
 * `>` for a guest that may read only its own prefix): it is accepted and marked
 * (Stream.policy_filter: the few rules that can decide its topics, kept with its grant), and
 * pubsub.c asks access_topic_allowed() once per publish stream and router generation, when it
 * computes the publisher's list of matching subscriptions, never per message. A subscriber
 * therefore never receives a topic it may not read, and a `>` subscriber without rights receives
 * nothing.
 *
 * Reload swaps the policy only when every file parsed; then each grant is checked again, and
 * streams the new policy denies are reset with PERMISSION_DENIED.
 *
 * A grant is charged to its peer's budget (budget.h) before the feature opens the stream, and
 * released when it is freed: lazily once its stream is gone (swept when the grants outnumber the
 * open streams twice over), at reload, or when the peer goes (Bus.peer_gone).
 */
#ifndef VCHAND_ACCESS_H
#define VCHAND_ACCESS_H

#include <stdbool.h>
#include <stddef.h>

#include "peer.h"
#include "policy.h"

/* The policy source that means "allow everything" (development only). */
#define ACCESS_OPEN "open"

/**
 * access_init() - put access's check in front of the features' OPEN handlers in @b->open[] and
 * load the policy of @b->config.policy (a directory, or ACCESS_OPEN).
 * @err: on error, what went wrong (FILE:LINE:COLUMN for a syntax error).
 * Return: 0, or -errno (the broker must not start).
 */
int access_init(Bus *b, char *err, size_t n_err);

/* Frees the policy in force. */
void access_deinit(Bus *b);

/**
 * access_reload() - load the policy directory again and, if every file parsed, put it in force
 * and revoke (RESET PERMISSION_DENIED) every stream it denies.
 * @err: on error, the first error; the old policy stays in force.
 * Return: 0 (@ret_revoked written); -EINVAL and friends (nothing changed); -ENOTSUP (running
 * open: nothing to reload).
 */
int access_reload(Bus *b, char *err, size_t n_err, unsigned int *ret_revoked);

/* May @p receive messages on @topic on a subscription with Stream.policy_filter @filter? */
bool access_topic_allowed(const void *filter, Peer *p, const char *topic);

/* Fills @ret from @id (borrowed: @ret points into @id). */
void access_subject(PolicySubject *ret, const Identity *id);

#endif /* VCHAND_ACCESS_H */
