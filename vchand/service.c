/* SPDX-License-Identifier: MIT */
/*
 * service: services by name and their servers (see service.h).
 *
 * Ownership: a Server is owned by its SERVE stream and reference-counted, since a call counts
 * against its server until the call ends, which may be after the server's stream closed. A Service
 * is freed when it has neither servers nor calls.
 */
#include "service.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "log.h"
#include "map.h"
#include "presence.h"

struct Service {
        MapEntry entry; /* in table->by_name */
        List link;      /* in table->list, for listing */
        char *name;
        List servers; /* Servers */
        uint32_t n_calls;
};

struct Server {
        Stream base;
        uint32_t refs;
        Service *service;       /* NULL once the stream closed */
        List serve_link;        /* in service->servers while open */
        uint32_t n_outstanding; /* calls in flight on this server */
        uint64_t n_calls_total; /* calls routed to this server, in flight included */
};

/* stream_op_*() take the object for its Stream. */
_Static_assert(offsetof(Server, base) == 0, "Server starts with its Stream");

struct ServiceTable {
        Map by_name;          /* Service */
        List list;            /* Service */
        const char *reserved; /* the broker's namespace, or NULL */
};

static const VbusStreamOps server_ops;

int service_table_new(Bus *b)
{
        ServiceTable *t = calloc(1, sizeof(*t));

        if (!t)
                return -ENOMEM;
        (void)map_init(&t->by_name);
        list_init(&t->list);
        b->services = t;
        return 0;
}

void service_table_free(Bus *b)
{
        if (!b->services)
                return;
        map_deinit(&b->services->by_name);
        free(b->services);
        b->services = NULL;
}

void service_reserve(Bus *b, const char *ns)
{
        b->services->reserved = ns;
}

bool service_name_in_namespace(const char *name, size_t len, const char *ns)
{
        size_t n = strlen(ns);

        return len >= n && memcmp(name, ns, n) == 0 && (len == n || name[n] == '.');
}

Service *service_find(Bus *b, const char *name, size_t len)
{
        MapEntry *e = map_find(&b->services->by_name, name, len);

        return e ? container_of(e, Service, entry) : NULL;
}

static Service *service_get(ServiceTable *t, const char *name)
{
        MapEntry *e = map_find(&t->by_name, name, strlen(name));
        Service *svc;

        if (e)
                return container_of(e, Service, entry);
        svc = calloc(1, sizeof(*svc));
        if (!svc || !(svc->name = strdup(name)) ||
            map_add(&t->by_name, &svc->entry, svc->name, strlen(svc->name)) < 0) {
                if (svc)
                        free(svc->name);
                free(svc);
                return NULL;
        }
        list_init(&svc->servers);
        list_add_tail(&t->list, &svc->link);
        return svc;
}

static void service_maybe_free(ServiceTable *t, Service *svc)
{
        if (!list_is_empty(&svc->servers) || svc->n_calls > 0)
                return;
        map_remove(&t->by_name, &svc->entry);
        list_unlink(&svc->link);
        free(svc->name);
        free(svc);
}

static void server_unref(Server *srv)
{
        if (srv && --srv->refs == 0)
                free(srv);
}

int service_open_serve(Peer *p, VbusStream *vs, const Vbus__V1__Open *m)
{
        ServiceTable *t = p->bus->services;
        Service *svc;
        Server *srv;

        if (t->reserved && service_name_in_namespace(m->name, strlen(m->name), t->reserved)) {
                char msg[96];

                peer_log(p, "may not serve %s: the %s namespace is the broker's", m->name,
                         t->reserved);
                /* A message for the peer: cut short is fine. */
                (void)snprintf(msg, sizeof(msg),
                               "services named %s.* are served by the broker only", t->reserved);
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_PERMISSION_DENIED, msg);
                return 0;
        }
        /* A server and, maybe, its service's entry: a stream's worth, charged to the server. */
        if (budget_charge(p, LIMIT_STREAM_COST) < 0) {
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                  "this link holds too much (peer_memory)");
                return 0;
        }
        svc = service_get(t, m->name);
        srv = svc ? calloc(1, sizeof(*srv)) : NULL;
        if (!srv) {
                if (svc)
                        service_maybe_free(t, svc);
                budget_release(p, LIMIT_STREAM_COST);
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_INTERNAL, "out of memory");
                return 0;
        }
        srv->refs = 1; /* the stream's */
        srv->service = svc;
        if (list_is_empty(&svc->servers))
                presence_service(p->bus, svc->name, &p->ident, true);
        list_add_tail(&svc->servers, &srv->serve_link);
        stream_bind(&srv->base, p, vs, &server_ops, srv);
        log_debug("peer %s serves %s", p->label, svc->name);
        (void)stream_accept(&srv->base, 0, NULL);
        return 0;
}

static void server_closed(void *obj, VbusStream *vs)
{
        Server *srv = obj;
        Service *svc = srv->service;

        (void)vs;
        budget_release(srv->base.peer, LIMIT_STREAM_COST);
        list_unlink(&srv->serve_link);
        srv->service = NULL;
        if (list_is_empty(&svc->servers))
                presence_service(srv->base.peer->bus, svc->name, &srv->base.peer->ident, false);
        service_maybe_free(srv->base.peer->bus->services, svc);
        stream_unbind(&srv->base);
        server_unref(srv);
}

static const VbusStreamOps server_ops = {
        .data = stream_op_refuse_data,
        .end = stream_op_end_too,
        .closed = server_closed,
};

Server *service_pick(Service *svc)
{
        Server *best = NULL;

        for (List *pos = svc->servers.next; pos != &svc->servers; pos = pos->next) {
                Server *srv = list_entry(pos, Server, serve_link);

                /* A server whose peer was dropped in this iteration is still listed. */
                if (!peer_is_alive(srv->base.peer) || srv->base.peer->retiring)
                        continue;
                if (!best || srv->n_outstanding < best->n_outstanding)
                        best = srv;
        }
        if (best) {
                list_unlink(&best->serve_link);
                list_add_tail(&svc->servers, &best->serve_link);
        }
        return best;
}

uint32_t service_get_n_calls(const Service *svc)
{
        return svc->n_calls;
}

void service_call_begin(Service *svc, Server *srv)
{
        svc->n_calls++;
        srv->refs++;
        srv->n_outstanding++;
        srv->n_calls_total++;
}

void service_call_end(Bus *b, Service *svc, Server *srv)
{
        srv->n_outstanding--;
        server_unref(srv);
        svc->n_calls--;
        service_maybe_free(b->services, svc);
}

Peer *service_server_get_peer(const Server *srv)
{
        return srv->base.peer;
}

int service_foreach_server(Bus *b, int (*fn)(const ServiceServerInfo *info, void *userdata),
                           void *userdata)
{
        List *head = &b->services->list;

        for (List *pos = head->next; pos != head; pos = pos->next) {
                Service *svc = list_entry(pos, Service, link);

                for (List *q = svc->servers.next; q != &svc->servers; q = q->next) {
                        Server *srv = list_entry(q, Server, serve_link);
                        ServiceServerInfo info = {
                                .service = svc->name,
                                .service_calls = svc->n_calls,
                                .ident = &srv->base.peer->ident,
                                .calls_in_flight = srv->n_outstanding,
                                .calls_total = srv->n_calls_total,
                        };
                        int r;

                        if (!peer_is_alive(srv->base.peer))
                                continue;
                        r = fn(&info, userdata);
                        if (r != 0)
                                return r;
                }
        }
        return 0;
}

uint32_t service_count(const Bus *b)
{
        uint32_t n = 0;

        for (const List *pos = b->services->list.next; pos != &b->services->list; pos = pos->next)
                n++;
        return n;
}
