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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream.h"

/* OPENs of kind PUBLISH and SUBSCRIBE (BusOpenFn): ACCEPT, or REJECT over a limit. Return: 0. */
int pubsub_open_publish(Peer *p, VbusStream *vs, const Vbus__V1__Open *m);
int pubsub_open_subscribe(Peer *p, VbusStream *vs, const Vbus__V1__Open *m);

/* Writes what @p's subscriptions have queued, as far as their windows and the link allow. */
void pubsub_pump(Peer *p);

/*
 * pubsub_publish_local() - the broker publishes a message of its own (presence events): routed
 * like a peer's, with the broker's identity as its sender. Subscribers without room lose it
 * (DROP, counted) or queue it; nothing waits for credit. @topic, @data: borrowed.
 */
void pubsub_publish_local(Bus *b, const char *topic, const uint8_t *data, size_t n);

/* One open publish stream, for admin listings (borrowed pointers). */
typedef struct PubsubPublisherInfo {
        const Peer *peer;
        const char *topic;
        uint32_t stream;
        uint64_t n_messages, n_bytes;
        uint64_t opened_us;
} PubsubPublisherInfo;

/* One subscription, for admin listings (borrowed pointers). */
typedef struct PubsubSubscriptionInfo {
        const Peer *peer;
        const char *pattern;
        uint32_t stream;
        bool block;
        uint32_t n_queued, queue_limit;
        uint64_t bytes_queued;
        uint64_t n_delivered, n_dropped;
        uint64_t opened_us;
} PubsubSubscriptionInfo;

/* Calls @fn for each publish stream (subscription) of each live peer; a nonzero return stops the
 * walk and is returned. Return: 0 or that value. */
int pubsub_foreach_publisher(Bus *b, int (*fn)(const PubsubPublisherInfo *info, void *userdata),
                             void *userdata);
int pubsub_foreach_subscription(Bus *b,
                                int (*fn)(const PubsubSubscriptionInfo *info, void *userdata),
                                void *userdata);

#endif /* VCHAND_PUBSUB_H */
