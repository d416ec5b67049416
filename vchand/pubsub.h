/* SPDX-License-Identifier: MIT */
/*
 * pubsub: publish and subscribe streams. A message that arrives on a publish stream is matched
 * by the router and written to each matching subscriber: straight from the publisher's ring into
 * the subscriber's when there is room (the only copy), else queued. A DROP subscription's queue is
 * bounded and counts what it drops, reporting the count with the next delivery; a BLOCK
 * subscription holds the message's credit, so its publishers slow down instead.
 *
 * Who pays: a publisher's messages are bounded by its window (publish_window, out of the link's
 * peer_publish_bytes); a subscriber's queues by queue_messages, queue_bytes and the link's
 * peer_queued_bytes. A DROP subscriber over them loses its own messages (counted); a BLOCK
 * subscriber over peer_queued_bytes has its subscription reset. No limit drops a link.
 */
#ifndef VCHAND_PUBSUB_H
#define VCHAND_PUBSUB_H

#include "stream.h"

/* OPENs of kind PUBLISH and SUBSCRIBE (BusOpenFn): ACCEPT, or REJECT over a limit. Return: 0. */
int pubsub_open_publish(Peer *p, VbusStream *vs, const Vbus__V1__Open *m);
int pubsub_open_subscribe(Peer *p, VbusStream *vs, const Vbus__V1__Open *m);

/* Writes what @p's subscriptions have queued, as far as their windows and the link allow. */
void pubsub_pump(Peer *p);

#endif /* VCHAND_PUBSUB_H */
