/* SPDX-License-Identifier: MIT */
/*
 * service: the services served on the bus, found by name in a keyed hash table (map.h), and their
 * servers: one SERVE stream each. rpc.c picks a server for each call and counts the call against
 * it and its service; introspect.c lists them. A service exists while it has a server or a call.
 *
 * A namespace can be reserved for the broker's own services (service_reserve()): an OPEN of kind
 * SERVE in it is refused with PERMISSION_DENIED, and the link stays.
 */
#ifndef VCHAND_SERVICE_H
#define VCHAND_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream.h"

typedef struct Service Service;
typedef struct Server Server;

/* The table, in bus->services. Return: 0 or -ENOMEM. */
int service_table_new(Bus *b);

/* Called once every peer is freed (their SERVE streams, and the calls, released every service). */
void service_table_free(Bus *b);

/* No client may serve a service named @ns or "@ns.*". @ns: borrowed for the broker's life. */
void service_reserve(Bus *b, const char *ns);

/* True if @name (@len bytes) is @ns or starts with "@ns.". */
bool service_name_in_namespace(const char *name, size_t len, const char *ns);

/* An OPEN of kind SERVE (BusOpenFn): ACCEPT, or REJECT (reserved name, out of memory). */
int service_open_serve(Peer *p, VbusStream *vs, const Vbus__V1__Open *m);

/* The service named @name (@len bytes, borrowed), or NULL. Borrowed: see service_call_begin(). */
Service *service_find(Bus *b, const char *name, size_t len);

/* The live server of @svc with the fewest calls in flight (ties go round-robin), or NULL. */
Server *service_pick(Service *svc);

/* Calls in flight to @svc, over all its servers. */
uint32_t service_get_n_calls(const Service *svc);

/* A call to @svc goes to @srv: it counts against both, which stay allocated (even after the
 * server's stream closed) until service_call_end(). */
void service_call_begin(Service *svc, Server *srv);
void service_call_end(Bus *b, Service *svc, Server *srv);

/* The peer of @srv's SERVE stream; NULL once that stream closed. */
Peer *service_server_get_peer(const Server *srv);

/* One live server of a service, as introspection lists it (borrowed pointers). */
typedef struct ServiceServerInfo {
        const char *service;
        const Identity *ident;
        uint64_t calls_total;
        uint32_t service_calls; /* the service's calls in flight, over all its servers */
        uint32_t calls_in_flight;
} ServiceServerInfo;

/* Calls @fn for each live server of each service; a nonzero return stops the walk and is
 * returned. Return: 0 or that value. */
int service_foreach_server(Bus *b, int (*fn)(const ServiceServerInfo *info, void *userdata),
                           void *userdata);

/**
 * service_get_description() - the description one live server of the service @name registered
 * (docs/reflection.md): validated, borrowed until the broker's loop runs again.
 * Return: 0 with the packed vbus.v1.ServiceDescription in *@ret, *@ret_n; -ENOENT (no live server:
 * *@ret_servers is 0); -ENODATA (servers, none with a description). *@ret_servers: live servers.
 */
int service_get_description(Bus *b, const char *name, const uint8_t **ret, size_t *ret_n,
                            uint32_t *ret_servers);

/* Services known now (with a server, or with calls still in flight). */
uint32_t service_count(const Bus *b);

#endif /* VCHAND_SERVICE_H */
