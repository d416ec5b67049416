/* SPDX-License-Identifier: MIT */
/*
 * introspect: vbus.v1.Broker, the service the broker serves itself (proto/vbus/v1/broker.proto,
 * docs/protocol.md section 6.2). A CALL to "vbus.v1.Broker/ListServices" is not routed to a
 * server: rpc.c hands it here, and the broker reads the request, answers from its own tables and
 * ends the stream like a server would (END with the outcome). No client may serve a service in
 * the reserved "vbus" namespace.
 *
 * The call keeps the rules of every call: it counts against max_calls, the broker resets it with
 * DEADLINE_EXCEEDED when the caller's deadline passes before the reply is written, a request that
 * is not a valid ListServicesRequest ends with INVALID_ARGUMENT (the link stays up), and the
 * reply is bounded by LIMIT_INTROSPECT_REPLY (cut at a service or server boundary, with
 * `truncated` set).
 *
 * Identities in the reply are the servers' Peer identities: what the broker established from
 * their transports, never what they claim.
 */
#ifndef VCHAND_INTROSPECT_H
#define VCHAND_INTROSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"

/* The service the broker serves, and the namespace no client may serve. */
#define INTROSPECT_SERVICE   "vbus.v1.Broker"
#define INTROSPECT_NAMESPACE "vbus"

/* True if @name (@len bytes) is "vbus" or starts with "vbus.": only the broker serves those. */
bool introspect_is_reserved(const char *name, size_t len);

/*
 * An OPEN of kind SERVE: if its service is reserved, rejects it with PERMISSION_DENIED.
 * Return: true if the OPEN was answered here (the caller does nothing more).
 */
bool introspect_open_serve(Peer *p, VbusStream *vs, const Vbus__V1__Open *m);

/*
 * An OPEN of kind CALL: if it names a method of vbus.v1.Broker, accepts it (or rejects an unknown
 * method with NOT_FOUND) and serves it. Return: true if the call is the broker's own.
 */
bool introspect_open_call(Peer *p, VbusStream *vs, const Vbus__V1__Open *m);

/* Frames of the caller on such a call (s->intro is set). */
void introspect_data(Peer *p, Stream *s, const VbusFrame *f);
void introspect_end(Peer *p, Stream *s);

/* The stream is closing for any reason: releases the call. */
void introspect_close(Peer *p, Stream *s);

/* Writes what the reply still holds, as the caller's window and the link allow. */
void introspect_pump(Stream *s);

/* Resets the calls whose deadline passed; returns the next deadline (UINT64_MAX for none). */
uint64_t introspect_expire(Broker *b, uint64_t now_us);

/* One server, as ListServices lists it (borrowed pointers; pure data for the encoder). */
typedef struct IntroServer {
        const char *service;
        uint32_t service_calls; /* the service's calls in flight, over all its servers */
        const Identity *ident;
        uint32_t calls_in_flight;
        uint64_t calls_total;
} IntroServer;

/*
 * introspect_encode() - pack a ListServicesReply of @servers, at most @max_bytes long.
 * @servers: borrowed; sorted in place (by service name, then domid, uid, pid).
 *
 * Services are listed by name, each with its servers; when the next service or server would make
 * the reply longer than @max_bytes the list stops there and `truncated` is set, while
 * `n_services` and each `n_servers` still count everything.
 * Return: 0 and a malloc'ed buffer in *ret (NULL when *ret_n is 0); -ENOMEM; -EINVAL if
 * @max_bytes cannot hold even an empty reply's counters.
 */
int introspect_encode(IntroServer *servers, size_t n_servers, size_t max_bytes, uint8_t **ret,
                      size_t *ret_n);

#endif /* VCHAND_INTROSPECT_H */
