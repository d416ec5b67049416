/* SPDX-License-Identifier: MIT */
/*
 * rpc: calls between services across domains. A server opens a SERVE stream naming its service;
 * a caller opens a CALL stream naming "service/method". The broker picks one of the service's
 * servers (the one with the fewest calls in flight), opens a CALL stream toward it carrying the
 * time left before the caller's deadline, the call's headers and the caller's identity, and then
 * relays DATA, END and RESET between the two streams with flow control on both sides.
 *
 * Every call has exactly one outcome for the caller: the server's END status, or a RESET from the
 * broker: NOT_FOUND at once when no server serves the service ("no responders"),
 * DEADLINE_EXCEEDED when the deadline passes (the server is told too), UNAVAILABLE when the
 * server's process or domain goes away (never retried elsewhere: the call may have had effects),
 * RESOURCE_EXHAUSTED over a limit (max_calls, max_service_calls, or headers that do not fit the
 * OPEN toward the server once the caller's identity is stamped on them). A caller's RESET
 * (cancellation) reaches the server as RESET CANCELLED. No outcome of a call drops a link.
 *
 * Services and their servers are service.c's; this module picks one for each call.
 */
#ifndef VCHAND_RPC_H
#define VCHAND_RPC_H

#include <stdint.h>

#include "stream.h"

/* The state of the feature, in bus->rpc. Return: 0 or -ENOMEM. */
int rpc_new(Bus *b);
void rpc_free(Bus *b);

/*
 * The broker's own service: every call to @service goes to @open (after the per-caller limit was
 * applied) instead of to a server. @service: borrowed for the broker's life.
 */
void rpc_set_local(Bus *b, const char *service, BusOpenFn open);

/* An OPEN of kind CALL (BusOpenFn): routed to a server, to the broker's own service, or
 * refused. Return: 0. */
int rpc_open_call(Peer *p, VbusStream *vs, const Vbus__V1__Open *m);

/* Writes what @p's calls have buffered toward it, and the credit owed to it. */
void rpc_pump(Peer *p);

/* Fails the calls whose deadline passed; returns the next deadline (UINT64_MAX for none). */
uint64_t rpc_expire(Bus *b, uint64_t now_us);

#endif /* VCHAND_RPC_H */
