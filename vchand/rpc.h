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
 * RESOURCE_EXHAUSTED over a limit. A caller's RESET (cancellation) reaches the server as RESET
 * CANCELLED.
 */
#ifndef VCHAND_RPC_H
#define VCHAND_RPC_H

#include "broker.h"

/* An OPEN of kind SERVE (a client registering a server) or CALL (a client calling). */
void rpc_open_serve(Peer *p, VbusStream *vs, const Vbus__V1__Open *open);
void rpc_open_call(Peer *p, VbusStream *vs, const Vbus__V1__Open *open);

/* Frames on a CALL stream (either side). */
void rpc_accept(Peer *p, Stream *s, const Vbus__V1__Accept *m);
void rpc_reject(Peer *p, Stream *s, int status, const char *message);
void rpc_data(Peer *p, Stream *s, const VbusFrame *f);
void rpc_end(Peer *p, Stream *s, int status, const char *message);
void rpc_reset(Peer *p, Stream *s, int status, const char *message);

/* The stream is closing for any reason (frames, or its peer going away). */
void rpc_stream_closing(Peer *p, Stream *s);

/* Writes what the peer's calls have buffered toward it. */
void rpc_pump(Peer *p);

/* Fails the calls whose deadline passed; returns the next deadline (UINT64_MAX for none). */
uint64_t rpc_expire(Broker *b, uint64_t now_us);

/* Called for one server of a service; returns 0 to go on, else stops the walk. */
typedef int (*RpcServerFn)(const char *service, uint32_t service_calls, const Stream *serve,
                           void *userdata);

/* Calls @fn for each live server of each service (introspection). Return: 0 or what @fn
 * returned to stop. */
int rpc_foreach_server(Broker *b, RpcServerFn fn, void *userdata);

#endif /* VCHAND_RPC_H */
