/* SPDX-License-Identifier: MIT */
/*
 * pubsub: publish and subscribe streams. A message that arrives on a PUBLISH stream is matched
 * by the router and written to each matching subscriber: straight from the publisher's ring into
 * the subscriber's when there is room (the only copy), else queued. A DROP subscription's queue is
 * bounded and counts what it drops, reporting the count with the next delivery; a BLOCK
 * subscription holds the message's credit, so its publishers slow down instead.
 */
#ifndef VCHAND_PUBSUB_H
#define VCHAND_PUBSUB_H

#include "broker.h"

/* An OPEN of kind PUBLISH or SUBSCRIBE was accepted by the session: set it up and answer. */
void pubsub_open(Peer *p, VbusStream *vs, const Vbus__V1__Open *open);

/* A DATA frame on a PUBLISH stream. */
void pubsub_data(Peer *p, Stream *s, const VbusFrame *f);

/* The stream closed (END both ways, RESET, or the peer went away): release everything. */
void pubsub_close(Peer *p, Stream *s);

/* Writes what the peer's subscriptions have queued, as far as windows and the link allow. */
void pubsub_pump(Peer *p);

/* Returns credit a publisher is owed (called when it may be worth a CREDIT frame). */
void pubsub_return_credit(Stream *pub, uint32_t bytes);

/* A new stream object for a session stream (sets vs->userdata), owned by the peer. NULL: -ENOMEM.
 */
Stream *stream_new(Peer *p, VbusStream *vs, uint8_t kind);

/* Closes any stream (publish, subscribe, call or serve): the kind's cleanup, then the stream. */
#define stream_close pubsub_close

Stream *stream_ref(Stream *s);
void stream_unref(Stream *s);

#endif /* VCHAND_PUBSUB_H */
