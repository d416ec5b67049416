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
#include "describe.h"
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
        /* Its vbus.v1.ServiceDescription: the one message of its SERVE stream, gathered while
         * !desc_done, validated once whole, charged to the server (desc_charged). */
        uint8_t *desc;
        size_t n_desc;
        bool desc_done;
        uint64_t desc_charged;
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
        /* The window is what a description may be: the stream carries that and nothing else. */
        (void)stream_accept(&srv->base, VBUS_DESCRIPTION_MAX, NULL);
        return 0;
}

/* Refuses @srv's description: the SERVE stream is reset, so the server knows and stops. */
static void server_desc_refuse(Server *srv, int status, const char *why)
{
        char msg[VBUS_DESCRIPTION_WHY_MAX + 32];

        peer_log(srv->base.peer, "description of %s refused: %s", srv->service->name, why);
        /* A message for the peer: cut short is fine. */
        (void)snprintf(msg, sizeof(msg), "description refused: %s", why);
        (void)stream_reset(&srv->base, status, msg);
}

/* DATA on a SERVE stream: the server's description (docs/reflection.md), one message. */
static int server_data(void *obj, VbusStream *vs, const VbusFrame *f)
{
        Server *srv = obj;
        Peer *p = srv->base.peer;
        char why[VBUS_DESCRIPTION_WHY_MAX];
        uint64_t cost = f->header.length + (srv->desc ? 0 : LIMIT_ITEM_OVERHEAD);
        uint8_t *buf;
        int r;

        (void)vs;
        if (srv->desc_done) {
                server_desc_refuse(srv, VBUS__V1__STATUS__STATUS_INVALID_ARGUMENT,
                                   "a server sends one description");
                return 0;
        }
        /* The window (VBUS_DESCRIPTION_MAX) bounds the bytes; the session enforced it. */
        if (budget_charge(p, cost) < 0) {
                server_desc_refuse(srv, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                   "this link holds too much (peer_memory)");
                return 0;
        }
        srv->desc_charged += cost;
        buf = realloc(srv->desc, srv->n_desc + f->header.length + 1);
        if (!buf) {
                server_desc_refuse(srv, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                   "out of memory");
                return 0;
        }
        if (f->header.length > 0)
                memcpy(buf + srv->n_desc, f->payload, f->header.length);
        srv->desc = buf;
        srv->n_desc += f->header.length;
        if (f->header.flags & VBUS_FLAG_MORE)
                return 0;
        srv->desc_done = true;
        r = vbus__describe_validate(srv->desc, srv->n_desc, srv->service->name, why);
        if (r < 0) {
                server_desc_refuse(srv, VBUS__V1__STATUS__STATUS_INVALID_ARGUMENT, why);
                return 0;
        }
        log_debug("peer %s described %s in %zu bytes", p->label, srv->service->name, srv->n_desc);
        return 0;
}

static void server_closed(void *obj, VbusStream *vs)
{
        Server *srv = obj;
        Service *svc = srv->service;

        (void)vs;
        budget_release(srv->base.peer, LIMIT_STREAM_COST + srv->desc_charged);
        srv->desc_charged = 0;
        free(srv->desc);
        srv->desc = NULL;
        srv->n_desc = 0;
        srv->desc_done = false;
        list_unlink(&srv->serve_link);
        srv->service = NULL;
        if (list_is_empty(&svc->servers))
                presence_service(srv->base.peer->bus, svc->name, &srv->base.peer->ident, false);
        service_maybe_free(srv->base.peer->bus->services, svc);
        stream_unbind(&srv->base);
        server_unref(srv);
}

static const VbusStreamOps server_ops = {
        .data = server_data,
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

int service_get_description(Bus *b, const char *name, const uint8_t **ret, size_t *ret_n,
                            uint32_t *ret_servers)
{
        Service *svc = service_find(b, name, strlen(name));
        const Server *found = NULL;
        uint32_t n = 0;

        *ret_servers = 0;
        if (!svc)
                return -ENOENT;
        for (List *pos = svc->servers.next; pos != &svc->servers; pos = pos->next) {
                const Server *srv = list_entry(pos, Server, serve_link);

                if (!peer_is_alive(srv->base.peer))
                        continue;
                n++;
                /* desc_done and still bound: validated (a refused one reset the stream). */
                if (!found && srv->desc_done && srv->desc)
                        found = srv;
        }
        *ret_servers = n;
        if (n == 0)
                return -ENOENT;
        if (!found)
                return -ENODATA;
        *ret = found->desc;
        *ret_n = found->n_desc;
        return 0;
}
