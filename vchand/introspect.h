/* SPDX-License-Identifier: MIT */
/*
 * introspect: vbus.v1.Broker, the service the broker serves itself (proto/vbus/v1/broker.proto,
 * docs/protocol.md section 6.2). A CALL to "vbus.v1.Broker/ListServices" is not routed to a
 * server: rpc.c hands it here (rpc_set_local()), and the broker reads the request, answers from its
 * own tables and ends the stream like a server would (END with the outcome). No client may serve a
 * service in the reserved "vbus" namespace.
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

#include "service.h"

/* The service the broker serves, and the namespace no client may serve. */
#define INTROSPECT_SERVICE   "vbus.v1.Broker"
#define INTROSPECT_NAMESPACE "vbus"

enum {
        /* Bytes of the message that goes with a failed answer. */
        INTROSPECT_WHY_MAX = 256,
};

/*
 * An answer to one request of a method of vbus.v1.Broker: @req (@n_req bytes, borrowed) is the
 * request message. Return: 0 with a malloc'ed reply in *ret (NULL when *ret_n is 0), or a
 * vbus.v1.Status (INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, ...) with a message for the
 * caller in @why (INTROSPECT_WHY_MAX bytes).
 */
typedef int (*IntroAnswerFn)(Peer *p, const uint8_t *req, size_t n_req, uint8_t **ret,
                             size_t *ret_n, char *why);

/*
 * One method of vbus.v1.Broker, in the table broker.c gives the bus (Bus.intro_methods): the
 * methods are the admin module's and this one's, and introspect.c only carries their calls.
 */
struct IntroMethod {
        const char *name;               /* after "vbus.v1.Broker/" */
        bool (*allowed)(const Peer *p); /* NULL: anyone; false: PERMISSION_DENIED, counted */
        IntroAnswerFn answer;           /* NULL: Monitor, which streams (monitor.h) */
};

/* ListServices (the answer of the table's entry). */
int introspect_answer_list_services(Peer *p, const uint8_t *req, size_t n_req, uint8_t **ret,
                                    size_t *ret_n, char *why);

/* Describe: the description a server of the service registered (docs/reflection.md); NOT_FOUND
 * with a message that tells "no server" from "no description". */
int introspect_answer_describe(Peer *p, const uint8_t *req, size_t n_req, uint8_t **ret,
                               size_t *ret_n, char *why);

/* True if @name (@len bytes) is "vbus" or starts with "vbus.": only the broker serves those. */
bool introspect_is_reserved(const char *name, size_t len);

/*
 * A CALL to INTROSPECT_SERVICE (a BusOpenFn, registered with rpc_set_local()): accepts it (or
 * rejects an unknown method with NOT_FOUND) and serves it. Return: 0.
 */
int introspect_open_call(Peer *p, VbusStream *vs, const Vbus__V1__Open *m);

/* Writes what @p's replies still hold, as their windows and the link allow. */
void introspect_pump(Peer *p);

/* Resets the calls whose deadline passed; returns the next deadline (UINT64_MAX for none). */
uint64_t introspect_expire(Bus *b, uint64_t now_us);

/* One server, as ListServices lists it (borrowed pointers; pure data for the encoder). */
typedef ServiceServerInfo IntroServer;

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
