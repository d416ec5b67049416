/* SPDX-License-Identifier: MIT */
/*
 * presence: the broker tells who comes and goes, on reserved topics. A session that connects or
 * goes is published on vbus.peer.up / vbus.peer.down; a service that gets its first server or
 * loses its last one on vbus.service.up / vbus.service.down. Each event is a
 * vbus.v1.PresenceEvent (proto/vbus/v1/broker.proto) numbered by one counter (seq), and the
 * snapshots (Peers and Stats of vbus.v1.Broker) carry the number of the last event published, so
 * a late joiner subscribes first, then asks for the snapshot, and skips the events numbered up to
 * it: nothing is missed and nothing is counted twice.
 *
 * Events are noted where things happen (peer.c, service.c) and published later, by
 * presence_flush() from the broker's loop, never from inside a frame handler or a stream's
 * ->closed: publishing delivers to other peers, and a delivery may drop a subscriber that does
 * not read its link, which must not happen while a caller up the stack holds it. What waits is
 * bounded by LIMIT_PRESENCE_PENDING; past it an event is counted and lost (its seq is skipped,
 * so subscribers see the gap).
 *
 * Nobody but the broker publishes under "vbus." (pubsub.c refuses such a publish stream with
 * PERMISSION_DENIED).
 */
#ifndef VCHAND_PRESENCE_H
#define VCHAND_PRESENCE_H

#include <stdbool.h>
#include <stdint.h>

#include "bus.h"

#define PRESENCE_TOPIC_PEER_UP      "vbus.peer.up"
#define PRESENCE_TOPIC_PEER_DOWN    "vbus.peer.down"
#define PRESENCE_TOPIC_SERVICE_UP   "vbus.service.up"
#define PRESENCE_TOPIC_SERVICE_DOWN "vbus.service.down"
/* The namespace of the broker's topics: nobody else publishes in it. */
#define PRESENCE_NAMESPACE "vbus"

/* Sets up b->presence. Return: 0 or -ENOMEM. */
int presence_new(Bus *b);
/* Frees it, with the events that were never published. Accepts a bus without one. */
void presence_free(Bus *b);

/* A session came (@up) or went (with @reason, may be NULL). @ident, @transport: copied. */
void presence_peer(Bus *b, const Identity *ident, uint64_t serial, const char *transport, bool up,
                   const char *reason);

/* @service got its first server (@up) or lost its last one; @server: copied, may be NULL. */
void presence_service(Bus *b, const char *service, const Identity *server, bool up);

/* Publishes the events noted so far (b->publish_local), in order. */
void presence_flush(Bus *b);

/* The seq of the last event noted (0: none yet). */
uint64_t presence_get_seq(const Bus *b);

/* Events lost because too many waited (LIMIT_PRESENCE_PENDING). */
uint64_t presence_get_lost(const Bus *b);

#endif /* VCHAND_PRESENCE_H */
