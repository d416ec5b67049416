/* SPDX-License-Identifier: MIT */
/*
 * introspect: the broker's own service, vbus.v1.Broker (see introspect.h).
 *
 * An IntroCall lives exactly as long as the caller's stream is open: intro_closed() frees it,
 * whatever closes the stream (the broker's END, a RESET either way, the peer going away). It
 * reads the request (one message of at most LIMIT_INTROSPECT_REQUEST bytes), and on the caller's
 * END builds the whole reply at once from the broker's tables, then writes it as the caller's
 * window and the link allow, and ends the stream. The reply is a snapshot: servers that come or
 * go while it is being written are not reflected.
 */
#include "introspect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "budget.h"
#include "control.h"
#include "log.h"
#include "monitor.h"
#include "name.h"
#include "vbus/v1/broker.pb-c.h"
#include "vchand-limits.h"

typedef struct IntroCall {
        Stream base;    /* the caller's stream: the call ends when it closes */
        List link;      /* in bus->intro_calls */
        List peer_link; /* in peer->intro_calls */
        uint64_t deadline_us;
        uint8_t *req;
        size_t n_req;
        bool req_done; /* a whole request message arrived */
        bool replying; /* the reply is being written; the END follows it */
        bool sent_data;
        uint8_t *reply;
        size_t n_reply, off;
        uint64_t charged; /* to the caller (budget.h): the call, then its reply too */
        bool outcome;     /* counted: failed (call_fail) or ended OK (a monitor: once started) */
        const IntroMethod *method;
        MonitorTap *tap; /* Monitor: the tap whose records it writes, until the stream closes */
} IntroCall;

/* The entry of Bus.intro_methods for the method @name ("vbus.v1.Broker/NAME"), or NULL. */
static const IntroMethod *method_find(const Bus *b, const char *name)
{
        static const char prefix[] = INTROSPECT_SERVICE "/";

        if (strncmp(name, prefix, sizeof(prefix) - 1) != 0)
                return NULL;
        name += sizeof(prefix) - 1;
        for (size_t i = 0; i < b->n_intro_methods; i++) {
                if (strcmp(name, b->intro_methods[i].name) == 0)
                        return &b->intro_methods[i];
        }
        return NULL;
}

enum {
        /* Bytes of the reply's own fields at most: truncated (2) and total_services (6). */
        REPLY_FIXED_MAX = 8,
};

static const VbusStreamOps intro_call_ops;

bool introspect_is_reserved(const char *name, size_t len)
{
        return service_name_in_namespace(name, len, INTROSPECT_NAMESPACE);
}

int introspect_open_call(Peer *p, VbusStream *vs, const Vbus__V1__Open *m)
{
        Bus *b = p->bus;
        const IntroMethod *method = method_find(b, m->name);
        Identity self = {.domid = b->own_domid, .local = true};
        IntroCall *ic;

        if (!method) {
                b->stats.n_calls_failed++;
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_NOT_FOUND,
                                  INTROSPECT_SERVICE " has no such method");
                return 0;
        }
        if (method->allowed && !method->allowed(p)) {
                b->stats.n_calls_failed++;
                b->stats.n_denied++;
                p->n_denied++;
                peer_log(p, "refused %s: admin right required", m->name);
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_PERMISSION_DENIED,
                                  "this method needs the broker's admin right");
                return 0;
        }
        if (budget_charge(p, LIMIT_CALL_COST) < 0) {
                b->stats.n_calls_failed++;
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                  "this link holds too much (peer_memory)");
                return 0;
        }
        ic = calloc(1, sizeof(*ic));
        if (!ic) {
                budget_release(p, LIMIT_CALL_COST);
                b->stats.n_calls_failed++;
                (void)peer_reject(p, vs->id, VBUS__V1__STATUS__STATUS_INTERNAL, "out of memory");
                return 0;
        }
        ic->method = method;
        ic->charged = LIMIT_CALL_COST;
        ic->deadline_us = budget_call_deadline(p->bus, m->timeout_us);
        list_add_tail(&b->intro_calls, &ic->link);
        list_add_tail(&p->intro_calls, &ic->peer_link);
        p->n_calls++;
        stream_bind(&ic->base, p, vs, &intro_call_ops, ic);
        /* The server that took the call is the broker: a process of its own domain. */
        self.uid = (uint32_t)geteuid();
        self.pid = (uint32_t)getpid();
        /* Not less than the opening window: a request sent before this ACCEPT arrived is
         * counted against it by the session. The request limit is enforced in _data(). */
        (void)stream_accept(&ic->base, VBUS_OPEN_WINDOW, &self);
        return 0;
}

/* Ends the call with a failure: RESET while the caller is still sending, else END. */
static void call_fail(IntroCall *ic, bool reset, int status, const char *message)
{
        ic->base.peer->bus->stats.n_calls_failed++;
        ic->outcome = true;
        if (reset)
                (void)stream_reset(&ic->base, status, message);
        else
                (void)stream_end(&ic->base, status, message);
}

static int intro_data(void *obj, VbusStream *vs, const VbusFrame *f)
{
        IntroCall *ic = obj;
        uint8_t *buf;

        (void)vs;
        if (ic->req_done) {
                call_fail(ic, true, VBUS__V1__STATUS__STATUS_INVALID_ARGUMENT,
                          INTROSPECT_SERVICE " takes one request message");
                return 0;
        }
        if ((uint64_t)ic->n_req + f->header.length > LIMIT_INTROSPECT_REQUEST) {
                call_fail(ic, true, VBUS__V1__STATUS__STATUS_INVALID_ARGUMENT,
                          "the request is larger than the broker's requests can be");
                return 0;
        }
        if (f->header.length > 0) {
                buf = realloc(ic->req, ic->n_req + f->header.length);
                if (!buf) {
                        call_fail(ic, true, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                  "out of memory");
                        return 0;
                }
                memcpy(buf + ic->n_req, f->payload, f->header.length);
                ic->req = buf;
                ic->n_req += f->header.length;
        }
        ic->req_done = !(f->header.flags & VBUS_FLAG_MORE);
        return 0;
}

/*
 * Reads the prefix of a ListServicesRequest into @prefix (at least VBUS_NAME_MAX + 1 bytes).
 * Return: 0, or -EINVAL with the reason in *ret_why.
 */
static int request_decode(const uint8_t *buf, size_t n, char *prefix, const char **ret_why)
{
        static const uint8_t empty[1];
        Vbus__V1__ListServicesRequest *m;
        size_t len;
        int r = 0;

        if (n == 0)
                buf = empty;
        /* protobuf-c keeps strings NUL-terminated: a NUL inside would shorten the prefix. */
        if (vbus__control_check_strings(&vbus__v1__list_services_request__descriptor, buf, n) !=
            0) {
                *ret_why = "the request is not a ListServicesRequest";
                return -EINVAL;
        }
        /* The request is at most LIMIT_INTROSPECT_REQUEST bytes: so is what decoding takes. */
        m = vbus__v1__list_services_request__unpack(NULL, n, buf);
        if (!m) {
                *ret_why = "the request is not a ListServicesRequest";
                return -EINVAL;
        }
        len = strlen(m->prefix);
        if (len > VBUS_NAME_MAX || strspn(m->prefix, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                     "abcdefghijklmnopqrstuvwxyz"
                                                     "0123456789_.") != len) {
                *ret_why = "the prefix is not the start of a service name";
                r = -EINVAL;
        } else {
                memcpy(prefix, m->prefix, len + 1);
        }
        vbus__v1__list_services_request__free_unpacked(m, NULL);
        return r;
}

typedef struct Collect {
        const char *prefix;
        size_t n_prefix;
        IntroServer *v;
        size_t n, cap;
} Collect;

static int collect_one(const ServiceServerInfo *info, void *userdata)
{
        Collect *c = userdata;

        if (strncmp(info->service, c->prefix, c->n_prefix) != 0)
                return 0;
        if (c->n == c->cap) {
                size_t cap = c->cap ? c->cap * 2 : 16;
                IntroServer *v = realloc(c->v, cap * sizeof(*v));

                if (!v)
                        return -ENOMEM;
                c->v = v;
                c->cap = cap;
        }
        c->v[c->n++] = *info;
        return 0;
}

int introspect_answer_list_services(Peer *p, const uint8_t *req, size_t n_req, uint8_t **ret,
                                    size_t *ret_n, char *why)
{
        char prefix[VBUS_NAME_MAX + 1];
        Collect c = {.prefix = prefix};
        const char *reason = NULL;
        int r;

        if (request_decode(req, n_req, prefix, &reason) < 0) {
                peer_log(p, "ListServices: %s", reason);
                (void)snprintf(why, INTROSPECT_WHY_MAX, "%s", reason);
                return VBUS__V1__STATUS__STATUS_INVALID_ARGUMENT;
        }
        c.n_prefix = strlen(prefix);
        r = service_foreach_server(p->bus, collect_one, &c);
        if (r == 0)
                r = introspect_encode(c.v, c.n, LIMIT_INTROSPECT_REPLY, ret, ret_n);
        free(c.v);
        if (r < 0) {
                (void)snprintf(why, INTROSPECT_WHY_MAX, "out of memory");
                return VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED;
        }
        log_debug("peer %s: ListServices '%s': %zu servers, %zu bytes", p->label, prefix, c.n,
                  *ret_n);
        return 0;
}

int introspect_answer_describe(Peer *p, const uint8_t *req, size_t n_req, uint8_t **ret,
                               size_t *ret_n, char *why)
{
        static const uint8_t empty[1];
        Vbus__V1__DescribeRequest *m = NULL;
        Vbus__V1__DescribeReply reply = VBUS__V1__DESCRIBE_REPLY__INIT;
        const uint8_t *desc = NULL;
        size_t n_desc = 0, len;
        uint32_t n_servers = 0;
        int status = 0, r;

        if (vbus__control_check_strings(&vbus__v1__describe_request__descriptor,
                                        n_req ? req : empty, n_req) != 0 ||
            !(m = vbus__v1__describe_request__unpack(NULL, n_req, n_req ? req : empty))) {
                (void)snprintf(why, INTROSPECT_WHY_MAX, "the request is not a DescribeRequest");
                return VBUS__V1__STATUS__STATUS_INVALID_ARGUMENT;
        }
        if (!vbus__name_is_service(m->service, strlen(m->service))) {
                (void)snprintf(why, INTROSPECT_WHY_MAX, "'%.200s' is not a service name",
                               m->service);
                status = VBUS__V1__STATUS__STATUS_INVALID_ARGUMENT;
                goto out;
        }
        r = service_get_description(p->bus, m->service, &desc, &n_desc, &n_servers);
        if (r == -ENOENT) {
                (void)snprintf(why, INTROSPECT_WHY_MAX, "no server serves %.200s", m->service);
                status = VBUS__V1__STATUS__STATUS_NOT_FOUND;
                goto out;
        }
        if (r == -ENODATA) {
                (void)snprintf(why, INTROSPECT_WHY_MAX,
                               "%.200s has %u server%s, and none registered a description",
                               m->service, n_servers, n_servers == 1 ? "" : "s");
                status = VBUS__V1__STATUS__STATUS_NOT_FOUND;
                goto out;
        }
        reply.description.data = (uint8_t *)desc;
        reply.description.len = n_desc;
        reply.servers = n_servers;
        len = vbus__v1__describe_reply__get_packed_size(&reply);
        *ret = malloc(len);
        if (!*ret) {
                (void)snprintf(why, INTROSPECT_WHY_MAX, "out of memory");
                status = VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED;
                goto out;
        }
        *ret_n = vbus__v1__describe_reply__pack(&reply, *ret);
out:
        vbus__v1__describe_request__free_unpacked(m, NULL);
        return status;
}

static void intro_pump_one(IntroCall *ic);

/* Monitor: decodes the pattern and puts a tap in place; its records go out as they come. */
static int intro_monitor_start(IntroCall *ic, char *why)
{
        static const uint8_t empty[1];
        const uint8_t *req = ic->req ? ic->req : empty;
        Peer *p = ic->base.peer;
        Vbus__V1__MonitorRequest *m;
        int r = 0;

        if (vbus__control_check_strings(&vbus__v1__monitor_request__descriptor, req, ic->n_req) !=
                    0 ||
            !(m = vbus__v1__monitor_request__unpack(NULL, ic->n_req, req))) {
                (void)snprintf(why, INTROSPECT_WHY_MAX, "the request is not a MonitorRequest");
                return VBUS__V1__STATUS__STATUS_INVALID_ARGUMENT;
        }
        switch (monitor_tap_add(p->bus, p, m->pattern[0] ? m->pattern : ">", &ic->tap)) {
        case 0:
                log_info("peer %s: monitor of '%s' started", p->label,
                         m->pattern[0] ? m->pattern : ">");
                break;
        case -EINVAL:
                (void)snprintf(why, INTROSPECT_WHY_MAX, "not a topic pattern: '%.200s'",
                               m->pattern);
                r = VBUS__V1__STATUS__STATUS_INVALID_ARGUMENT;
                break;
        case -EBUSY:
                (void)snprintf(why, INTROSPECT_WHY_MAX, "too many monitors (at most %d)",
                               LIMIT_MONITORS);
                r = VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED;
                break;
        default:
                (void)snprintf(why, INTROSPECT_WHY_MAX, "out of memory");
                r = VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED;
                break;
        }
        vbus__v1__monitor_request__free_unpacked(m, NULL);
        return r;
}

static int intro_end(void *obj, VbusStream *vs, const Vbus__V1__End *m)
{
        IntroCall *ic = obj;
        Peer *p = ic->base.peer;
        char why[INTROSPECT_WHY_MAX] = "";
        int status;

        (void)vs;
        (void)m;
        if (ic->replying)
                return 0; /* a monitor whose caller closed its side: it goes on */
        if (bus_now_us() >= ic->deadline_us) {
                call_fail(ic, true, VBUS__V1__STATUS__STATUS_DEADLINE_EXCEEDED,
                          "deadline exceeded");
                return 0;
        }
        if (!ic->method->answer)
                status = intro_monitor_start(ic, why);
        else
                status = ic->method->answer(p, ic->req, ic->n_req, &ic->reply, &ic->n_reply, why);
        if (status != 0) {
                call_fail(ic, false, status, why);
                return 0;
        }
        /* The reply waits for the caller's window: it is the caller's to hold. */
        if (budget_charge(p, budget_cost(ic->n_reply)) < 0) {
                call_fail(ic, false, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                          "this link holds too much (peer_memory)");
                return 0;
        }
        ic->charged += budget_cost(ic->n_reply);
        /* A monitor has no outcome to count: it runs until its caller stops it. */
        if (ic->tap)
                ic->outcome = true;
        ic->replying = true;
        intro_pump_one(ic);
        return 0;
}

/* Monitor: writes the records waiting in its tap, one MonitorEvent message each, while the
 * caller's window and the link take them whole. Never ends the stream. */
static void intro_pump_monitor(IntroCall *ic)
{
        const MonitorRecord *rec;

        while ((rec = monitor_tap_peek(ic->tap)) != NULL) {
                Vbus__V1__MonitorEvent ev = VBUS__V1__MONITOR_EVENT__INIT;
                uint8_t buf[1024];
                struct iovec piece = {buf, 0};
                ssize_t room = stream_data_room(&ic->base);

                ev.kind = rec->kind;
                ev.name = (char *)rec->name;
                ev.sender = (char *)rec->sender;
                ev.sender_id = rec->sender_id;
                ev.size = rec->size;
                ev.status = rec->status;
                ev.latency_us = rec->latency_us;
                ev.time_unix_us = rec->time_unix_us;
                ev.deliveries = rec->deliveries;
                /* Reported with this event; monitor_tap_pop() clears it once it is sent. */
                ev.dropped = monitor_tap_get_dropped(ic->tap);
                piece.iov_len = vbus__v1__monitor_event__get_packed_size(&ev);
                /* A record's strings are bounded (MonitorRecord): it always fits @buf. */
                if (room < 0 || (size_t)room < piece.iov_len || piece.iov_len > sizeof(buf))
                        return; /* the caller's CREDIT or the link's room brings us back */
                (void)vbus__v1__monitor_event__pack(&ev, buf);
                if (stream_send_data(&ic->base, 0, &piece, 1) < 0)
                        return;
                monitor_tap_pop(ic->tap);
        }
}

/* Writes what the reply still holds, then ends the stream (which frees @ic). */
static void intro_pump_one(IntroCall *ic)
{
        static const uint8_t none;

        if (!ic->replying)
                return;
        if (ic->tap) {
                intro_pump_monitor(ic);
                return;
        }
        /* An empty reply is still one (empty) message, as libvbus's servers send it. */
        while (ic->off < ic->n_reply || !ic->sent_data) {
                ssize_t room = stream_data_room(&ic->base);
                size_t n = ic->n_reply - ic->off;
                struct iovec piece;

                if (room < 0)
                        return;
                if (n > (size_t)room)
                        n = (size_t)room;
                if (n == 0 && ic->n_reply > ic->off)
                        return; /* no window: the caller's CREDIT brings us back */
                piece.iov_base = ic->reply ? ic->reply + ic->off : (void *)&none;
                piece.iov_len = n;
                if (stream_send_data(&ic->base, ic->off + n < ic->n_reply ? VBUS_FLAG_MORE : 0,
                                     &piece, 1) < 0)
                        return; /* the link is full (the pump runs again) or the peer is gone */
                ic->off += n;
                ic->sent_data = true;
        }
        /* Both directions end with this: the stream closes and intro_closed() frees @ic. */
        ic->outcome = true;
        (void)stream_end(&ic->base, VBUS__V1__STATUS__STATUS_OK, NULL);
}

void introspect_pump(Peer *p)
{
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &p->intro_calls)
                intro_pump_one(list_entry(pos, IntroCall, peer_link));
}

static void intro_closed(void *obj, VbusStream *vs)
{
        IntroCall *ic = obj;

        (void)vs;
        /* A call that closed without an outcome (cancelled, or its caller went away) failed. */
        if (!ic->outcome)
                ic->base.peer->bus->stats.n_calls_failed++;
        budget_release(ic->base.peer, ic->charged);
        ic->base.peer->n_calls--;
        if (ic->tap)
                log_info("peer %s: monitor stopped", ic->base.peer->label);
        monitor_tap_remove(ic->tap);
        list_unlink(&ic->link);
        list_unlink(&ic->peer_link);
        free(ic->req);
        free(ic->reply);
        free(ic);
}

static const VbusStreamOps intro_call_ops = {
        .data = intro_data,
        .end = intro_end,
        .closed = intro_closed,
};

uint64_t introspect_expire(Bus *b, uint64_t now_us)
{
        uint64_t next = UINT64_MAX;
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &b->intro_calls)
        {
                IntroCall *ic = list_entry(pos, IntroCall, link);

                if (ic->deadline_us > now_us) {
                        if (ic->deadline_us < next)
                                next = ic->deadline_us;
                        continue;
                }
                if (!peer_is_alive(ic->base.peer))
                        continue; /* dropped in this iteration: the call goes with it */
                ic->deadline_us = UINT64_MAX;
                /* Resetting the stream closes it, which frees @ic. */
                call_fail(ic, true, VBUS__V1__STATUS__STATUS_DEADLINE_EXCEEDED,
                          "deadline exceeded");
        }
        return next;
}

/* --- the reply ---------------------------------------------------------------------------- */

static int server_cmp(const void *a, const void *b)
{
        const IntroServer *x = a, *y = b;
        int r = strcmp(x->service, y->service);

        if (r != 0)
                return r;
        if (x->ident->domid != y->ident->domid)
                return x->ident->domid < y->ident->domid ? -1 : 1;
        if (x->ident->uid != y->ident->uid)
                return x->ident->uid < y->ident->uid ? -1 : 1;
        if (x->ident->pid != y->ident->pid)
                return x->ident->pid < y->ident->pid ? -1 : 1;
        return 0;
}

static size_t varint_size(uint64_t v)
{
        size_t n = 1;

        while (v >= 0x80) {
                v >>= 7;
                n++;
        }
        return n;
}

/* Bytes of a length-delimited field with a one-byte tag. */
static size_t field_size(size_t len)
{
        return 1 + varint_size(len) + len;
}

/* The message structures of one reply: one slot per server, and at most one service each. */
typedef struct Plan {
        Vbus__V1__ListServicesReply reply;
        Vbus__V1__ServerInfo *srv, **srv_ptrs;
        Vbus__V1__ServiceInfo *svc, **svc_ptrs;
} Plan;

/*
 * Fills @pl with the services and servers of @servers (sorted) that fit in @budget bytes of
 * `services` fields; everything after the first entry that does not fit is only counted, and
 * sets `truncated`.
 */
static void plan_fill(Plan *pl, const IntroServer *servers, size_t n_servers, size_t budget)
{
        Vbus__V1__ListServicesReply *reply = &pl->reply;
        size_t used = 0, i = 0;

        vbus__v1__list_services_reply__init(reply);
        reply->services = pl->svc_ptrs;
        /* One service per run of equal names. */
        while (i < n_servers) {
                Vbus__V1__ServiceInfo *si = &pl->svc[reply->n_services];
                size_t first = i, body;

                while (i < n_servers && strcmp(servers[i].service, servers[first].service) == 0)
                        i++;
                reply->total_services++;
                if (reply->truncated)
                        continue;
                vbus__v1__service_info__init(si);
                si->name = (char *)servers[first].service;
                si->calls_in_flight = servers[first].service_calls;
                si->total_servers = (uint32_t)(i - first);
                si->servers = &pl->srv_ptrs[first];
                body = vbus__v1__service_info__get_packed_size(si);
                if (used + field_size(body) > budget) {
                        reply->truncated = true;
                        continue;
                }
                for (size_t k = first; k < i; k++) {
                        Vbus__V1__ServerInfo *e = &pl->srv[k];
                        size_t sz;

                        vbus__v1__server_info__init(e);
                        e->domid = servers[k].ident->domid;
                        e->domain_name = (char *)servers[k].ident->domain_name;
                        e->local = servers[k].ident->local;
                        e->uid = servers[k].ident->uid;
                        e->pid = servers[k].ident->pid;
                        e->calls_in_flight = servers[k].calls_in_flight;
                        e->calls_total = servers[k].calls_total;
                        sz = field_size(vbus__v1__server_info__get_packed_size(e));
                        if (used + field_size(body + sz) > budget) {
                                reply->truncated = true;
                                break;
                        }
                        body += sz;
                        pl->srv_ptrs[k] = e;
                        si->n_servers++;
                }
                used += field_size(body);
                pl->svc_ptrs[reply->n_services++] = si;
        }
}

int introspect_encode(IntroServer *servers, size_t n_servers, size_t max_bytes, uint8_t **ret,
                      size_t *ret_n)
{
        Plan pl = {0};
        size_t n_services = 0, fixed, len;
        uint8_t *buf = NULL;
        int r = -ENOMEM;

        if (max_bytes < REPLY_FIXED_MAX)
                return -EINVAL;
        if (n_servers > 0) {
                pl.srv = calloc(n_servers, sizeof(*pl.srv));
                pl.srv_ptrs = calloc(n_servers, sizeof(Vbus__V1__ServerInfo *));
                pl.svc = calloc(n_servers, sizeof(*pl.svc));
                pl.svc_ptrs = calloc(n_servers, sizeof(Vbus__V1__ServiceInfo *));
                if (!pl.srv || !pl.srv_ptrs || !pl.svc || !pl.svc_ptrs)
                        goto out;
                qsort(servers, n_servers, sizeof(*servers), server_cmp);
        }
        for (size_t i = 0; i < n_servers; i++)
                n_services += i == 0 || strcmp(servers[i].service, servers[i - 1].service) != 0;
        /* The reply's own fields: total_services, and truncated only when it is set, so a list
         * that fits is never cut for the flag's two bytes. */
        fixed = n_services ? 1 + varint_size(n_services) : 0;
        plan_fill(&pl, servers, n_servers, max_bytes - fixed);
        if (pl.reply.truncated)
                plan_fill(&pl, servers, n_servers, max_bytes - fixed - 2);
        len = vbus__v1__list_services_reply__get_packed_size(&pl.reply);
        if (len > max_bytes) {
                /* The sizes above are exact: this is a bug, not a peer's doing. */
                r = -EINVAL;
                goto out;
        }
        if (len > 0) {
                buf = malloc(len);
                if (!buf)
                        goto out;
                vbus__v1__list_services_reply__pack(&pl.reply, buf);
        }
        *ret = buf;
        *ret_n = len;
        r = 0;
out:
        free(pl.srv);
        free(pl.srv_ptrs);
        free(pl.svc);
        free(pl.svc_ptrs);
        return r;
}
