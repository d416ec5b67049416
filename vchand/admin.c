/* SPDX-License-Identifier: MIT */
/*
 * admin: the admin methods of vbus.v1.Broker (see admin.h).
 *
 * Listings are built in two passes: the entries are collected from the tables (pointers into
 * them, valid for the call: nothing runs in between), then encoded into one reply, stopping at
 * the first entry that would take it past LIMIT_ADMIN_REPLY.
 */
#include "admin.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "metrics.h"
#include "presence.h"
#include "pubsub.h"
#include "reload.h"
#include "service.h"
#include "vbus/v1/broker.pb-c.h"
#include "vchand-limits.h"

bool admin_allowed(const Peer *p)
{
        /* A policy in force decided already, at OPEN (access.c: action admin, by method class). */
        if (p->bus->policy)
                return true;
        /* --policy open: the admin methods stay with the host's administrators. */
        if (p->ident.local)
                return p->ident.uid == 0 || p->ident.uid == (uint32_t)geteuid();
        return p->ident.domid == 0;
}

/* --- requests ------------------------------------------------------------------------------ */

/*
 * Decodes @req as a message of @desc (checked for NULs in strings first).
 * Return: the message (free with protobuf_c_message_free_unpacked), or NULL with @why set.
 */
static ProtobufCMessage *request_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *req,
                                        size_t n, char *why)
{
        static const uint8_t empty[1];
        ProtobufCMessage *m;

        if (n == 0)
                req = empty;
        if (vbus__control_check_strings(desc, req, n) != 0 ||
            !(m = protobuf_c_message_unpack(desc, NULL, n, req))) {
                (void)snprintf(why, INTROSPECT_WHY_MAX, "the request is not a %s", desc->name);
                return NULL;
        }
        return m;
}

/* Checks that @req is a valid (empty or extended) request of @desc. Return: 0 or a status. */
static int request_check(const ProtobufCMessageDescriptor *desc, const uint8_t *req, size_t n,
                         char *why)
{
        ProtobufCMessage *m = request_decode(desc, req, n, why);

        if (!m)
                return VBUS__V1__STATUS__STATUS_INVALID_ARGUMENT;
        protobuf_c_message_free_unpacked(m, NULL);
        return 0;
}

/* Packs @m into a malloc'ed buffer. Return: 0 or RESOURCE_EXHAUSTED with @why. */
static int reply_pack(const ProtobufCMessage *m, uint8_t **ret, size_t *ret_n, char *why)
{
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t *buf = NULL;

        if (n > 0) {
                buf = malloc(n);
                if (!buf) {
                        (void)snprintf(why, INTROSPECT_WHY_MAX, "out of memory");
                        return VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED;
                }
                protobuf_c_message_pack(m, buf);
        }
        *ret = buf;
        *ret_n = n;
        return 0;
}

static int out_of_memory(char *why)
{
        (void)snprintf(why, INTROSPECT_WHY_MAX, "out of memory");
        return VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED;
}

/* Bytes a repeated field's element of @body bytes takes (one-byte tag). */
static size_t element_size(size_t body)
{
        size_t n = 1;

        for (uint64_t v = body; v >= 0x80; v >>= 7)
                n++;
        return 1 + n + body;
}

/* Room for the replies' own fields (truncated, total, presence_seq) besides the entries. */
enum {
        REPLY_FIXED_MAX = 32,
};

/* --- Peers --------------------------------------------------------------------------------- */

static void peer_info_fill(Vbus__V1__PeerInfo *pi, const Peer *q)
{
        vbus__v1__peer_info__init(pi);
        pi->domid = q->ident.domid;
        pi->domain_name = (char *)q->ident.domain_name;
        pi->local = q->ident.local;
        pi->uid = q->ident.uid;
        pi->pid = q->ident.pid;
        pi->id = q->serial;
        pi->transport = (char *)peer_transport_name(q);
        pi->connected_unix_us = q->created_unix_us;
        pi->streams = peer_n_streams(q);
        pi->bytes_in = q->ep.lk->n_bytes_in;
        pi->bytes_out = q->ep.lk->n_bytes_out;
        pi->frames_in = q->ep.lk->n_frames_in;
        pi->frames_out = q->ep.lk->n_frames_out;
        pi->dropped = q->n_dropped;
        pi->violations = q->n_violations;
        pi->denials = q->n_denied;
        peer_ring_sizes(q, &pi->ring_in, &pi->ring_out);
        pi->subscriptions = q->n_subscriptions;
        pi->calls_in_flight = q->n_calls;
        pi->bytes_queued = q->bytes_queued;
        pi->published = q->n_published;
}

typedef struct PeersAcc {
        Vbus__V1__PeersReply *reply;
        Vbus__V1__PeerInfo *v;
        size_t cap;
        size_t used;
} PeersAcc;

/* Peers are listed once announced (peer_announce()), so that a listing and the presence events
 * up to its presence_seq always agree. */
static int peers_count(Peer *q, void *userdata)
{
        if (q->announced)
                ((PeersAcc *)userdata)->cap++;
        return 0;
}

static int peers_add(Peer *q, void *userdata)
{
        PeersAcc *a = userdata;
        Vbus__V1__PeerInfo *pi = &a->v[a->reply->n_peers];
        size_t sz;

        if (!q->announced)
                return 0;
        a->reply->total++;
        if (a->reply->truncated || a->reply->n_peers == a->cap)
                return 0;
        peer_info_fill(pi, q);
        sz = element_size(vbus__v1__peer_info__get_packed_size(pi));
        if (a->used + sz > LIMIT_ADMIN_REPLY) {
                a->reply->truncated = true;
                return 0;
        }
        a->used += sz;
        a->reply->peers[a->reply->n_peers++] = pi;
        return 0;
}

int admin_answer_peers(Peer *p, const uint8_t *req, size_t n_req, uint8_t **ret, size_t *ret_n,
                       char *why)
{
        Vbus__V1__PeersReply reply = VBUS__V1__PEERS_REPLY__INIT;
        PeersAcc a = {.reply = &reply, .used = REPLY_FIXED_MAX};
        Bus *b = p->bus;
        int r;

        r = request_check(&vbus__v1__peers_request__descriptor, req, n_req, why);
        if (r)
                return r;
        /* Links and their agent sessions; links in order of connection. */
        (void)peer_foreach(b, peers_count, &a);
        a.v = calloc(a.cap + 1, sizeof(*a.v));
        reply.peers = calloc(a.cap + 1, sizeof(Vbus__V1__PeerInfo *));
        if (!a.v || !reply.peers) {
                free(a.v);
                free(reply.peers);
                return out_of_memory(why);
        }
        (void)peer_foreach(b, peers_add, &a);
        reply.presence_seq = presence_get_seq(b);
        r = reply_pack(&reply.base, ret, ret_n, why);
        free(a.v);
        free(reply.peers);
        return r;
}

/* --- Topics -------------------------------------------------------------------------------- */

typedef struct TopicAcc {
        Vbus__V1__TopicInfo *v;
        size_t n, cap;
        uint64_t now;
} TopicAcc;

/* The entry for @name, added if new. NULL: out of memory. Linear: admin listings are rare, and
 * the entries are sorted and merged afterwards would cost as much for the sizes at hand. */
static Vbus__V1__TopicInfo *topic_get(TopicAcc *a, const char *name)
{
        for (size_t i = 0; i < a->n; i++) {
                if (strcmp(a->v[i].name, name) == 0)
                        return &a->v[i];
        }
        if (a->n == a->cap) {
                size_t cap = a->cap ? a->cap * 2 : 32;
                Vbus__V1__TopicInfo *v = realloc(a->v, cap * sizeof(*v));

                if (!v)
                        return NULL;
                a->v = v;
                a->cap = cap;
        }
        vbus__v1__topic_info__init(&a->v[a->n]);
        a->v[a->n].name = (char *)name;
        return &a->v[a->n++];
}

static void topic_age(Vbus__V1__TopicInfo *t, uint64_t now, uint64_t opened)
{
        uint64_t age = now - opened;

        if (age > t->oldest_us)
                t->oldest_us = age;
}

static int topic_add_publisher(const PubsubPublisherInfo *info, void *userdata)
{
        TopicAcc *a = userdata;
        Vbus__V1__TopicInfo *t = topic_get(a, info->topic);

        if (!t)
                return -ENOMEM;
        t->publishers++;
        t->messages += info->n_messages;
        t->bytes += info->n_bytes;
        topic_age(t, a->now, info->opened_us);
        return 0;
}

static int topic_add_subscription(const PubsubSubscriptionInfo *info, void *userdata)
{
        TopicAcc *a = userdata;
        Vbus__V1__TopicInfo *t = topic_get(a, info->pattern);

        if (!t)
                return -ENOMEM;
        t->subscriptions++;
        t->delivered += info->n_delivered;
        t->dropped += info->n_dropped;
        topic_age(t, a->now, info->opened_us);
        return 0;
}

static int topic_cmp(const void *x, const void *y)
{
        return strcmp(((const Vbus__V1__TopicInfo *)x)->name,
                      ((const Vbus__V1__TopicInfo *)y)->name);
}

int admin_answer_topics(Peer *p, const uint8_t *req, size_t n_req, uint8_t **ret, size_t *ret_n,
                        char *why)
{
        Vbus__V1__TopicsReply reply = VBUS__V1__TOPICS_REPLY__INIT;
        TopicAcc a = {.now = bus_now_us()};
        Vbus__V1__TopicInfo **ptrs = NULL;
        size_t used = REPLY_FIXED_MAX;
        int r;

        r = request_check(&vbus__v1__topics_request__descriptor, req, n_req, why);
        if (r)
                return r;
        if (pubsub_foreach_publisher(p->bus, topic_add_publisher, &a) != 0 ||
            pubsub_foreach_subscription(p->bus, topic_add_subscription, &a) != 0 ||
            !(ptrs = calloc(a.n + 1, sizeof(Vbus__V1__TopicInfo *)))) {
                free(a.v);
                return out_of_memory(why);
        }
        if (a.n > 0)
                qsort(a.v, a.n, sizeof(*a.v), topic_cmp);
        reply.topics = ptrs;
        for (size_t i = 0; i < a.n; i++) {
                size_t sz = element_size(vbus__v1__topic_info__get_packed_size(&a.v[i]));

                reply.total++;
                if (reply.truncated || used + sz > LIMIT_ADMIN_REPLY) {
                        reply.truncated = true;
                        continue;
                }
                used += sz;
                ptrs[reply.n_topics++] = &a.v[i];
        }
        r = reply_pack(&reply.base, ret, ret_n, why);
        free(a.v);
        free(ptrs);
        return r;
}

/* --- Subs ---------------------------------------------------------------------------------- */

typedef struct SubAcc {
        Vbus__V1__SubsReply *reply;
        Vbus__V1__SubInfo *v;
        Vbus__V1__SubInfo **ptrs;
        size_t cap;
        size_t used;
} SubAcc;

static int sub_add(const PubsubSubscriptionInfo *info, void *userdata)
{
        SubAcc *a = userdata;
        Vbus__V1__SubInfo *si;
        size_t sz;

        a->reply->total++;
        if (a->reply->truncated)
                return 0;
        if (a->reply->n_subs == a->cap) {
                size_t cap = a->cap ? a->cap * 2 : 32;
                Vbus__V1__SubInfo *v = realloc(a->v, cap * sizeof(*v));

                if (!v)
                        return -ENOMEM;
                a->v = v;
                a->cap = cap;
        }
        si = &a->v[a->reply->n_subs];
        vbus__v1__sub_info__init(si);
        si->pattern = (char *)info->pattern;
        si->peer = info->peer->serial;
        si->peer_label = (char *)info->peer->label;
        si->stream = info->stream;
        si->block = info->block;
        si->queued = info->n_queued;
        si->queue_limit = info->queue_limit;
        si->bytes_queued = info->bytes_queued;
        si->delivered = info->n_delivered;
        si->dropped = info->n_dropped;
        sz = element_size(vbus__v1__sub_info__get_packed_size(si));
        if (a->used + sz > LIMIT_ADMIN_REPLY) {
                a->reply->truncated = true;
                return 0;
        }
        a->used += sz;
        a->reply->n_subs++;
        return 0;
}

int admin_answer_subs(Peer *p, const uint8_t *req, size_t n_req, uint8_t **ret, size_t *ret_n,
                      char *why)
{
        Vbus__V1__SubsReply reply = VBUS__V1__SUBS_REPLY__INIT;
        SubAcc a = {.reply = &reply, .used = REPLY_FIXED_MAX};
        int r;

        r = request_check(&vbus__v1__subs_request__descriptor, req, n_req, why);
        if (r)
                return r;
        if (pubsub_foreach_subscription(p->bus, sub_add, &a) != 0 ||
            !(a.ptrs = calloc(reply.n_subs + 1, sizeof(Vbus__V1__SubInfo *)))) {
                free(a.v);
                return out_of_memory(why);
        }
        /* The pointers are taken only now: the array may have moved while it grew. */
        for (size_t i = 0; i < reply.n_subs; i++)
                a.ptrs[i] = &a.v[i];
        reply.subs = a.ptrs;
        r = reply_pack(&reply.base, ret, ret_n, why);
        free(a.v);
        free(a.ptrs);
        return r;
}

/* --- Stats --------------------------------------------------------------------------------- */

/* The broker's resident memory, from /proc/self/statm; 0 if unknown. */
static uint64_t rss_bytes(void)
{
        char line[128], *p, *end;
        unsigned long long resident;
        FILE *f = fopen("/proc/self/statm", "re");
        long page = sysconf(_SC_PAGESIZE);
        bool ok;

        if (!f)
                return 0;
        /* "size resident shared ...", in pages. */
        ok = fgets(line, sizeof(line), f) != NULL;
        (void)fclose(f); /* read-only: nothing to lose */
        if (!ok || !(p = strchr(line, ' ')))
                return 0;
        errno = 0;
        resident = strtoull(p + 1, &end, 10);
        if (errno || end == p + 1)
                return 0;
        return page > 0 ? resident * (uint64_t)page : 0;
}

/* File descriptors open in the broker, from /proc/self/fd; 0 if unknown. */
static uint32_t fd_count(void)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        uint32_t n = 0;

        if (!d)
                return 0;
        while ((e = readdir(d)) != NULL) {
                if (e->d_name[0] != '.')
                        n++;
        }
        closedir(d);
        return n > 0 ? n - 1 : 0; /* not the one opendir() holds */
}

/* Grant pages the broker maps for its vchan peers: a control page, and the ring pages of rings
 * that do not fit in it. */
static uint32_t grant_pages(const Bus *b)
{
        uint32_t n = 0;

        for (const List *pos = b->peers.next; pos != &b->peers; pos = pos->next) {
                const Peer *q = list_entry(pos, Peer, link);
                uint32_t in, out;

                if (q->ep.lk->transport.kind != VBUS_TRANSPORT_VCHAN)
                        continue;
                peer_ring_sizes(q, &in, &out);
                n += 1 + (in >= 4096 ? in / 4096 : 0) + (out >= 4096 ? out / 4096 : 0);
        }
        return n;
}

typedef struct Totals {
        uint64_t bytes_in, bytes_out;
        uint32_t subscriptions, calls_in_flight;
} Totals;

static int totals_add(Peer *q, void *userdata)
{
        Totals *t = userdata;

        /* Bytes are counted by the link: its sessions share it. */
        if (!q->parent) {
                t->bytes_in += q->ep.lk->n_bytes_in;
                t->bytes_out += q->ep.lk->n_bytes_out;
        }
        t->subscriptions += q->n_subscriptions;
        t->calls_in_flight += q->n_calls;
        return 0;
}

static void totals(Bus *b, Totals *t)
{
        *t = (Totals){.bytes_in = b->stats.bytes_in_gone, .bytes_out = b->stats.bytes_out_gone};
        (void)peer_foreach(b, totals_add, t);
}

int admin_answer_stats(Peer *p, const uint8_t *req, size_t n_req, uint8_t **ret, size_t *ret_n,
                       char *why)
{
        Vbus__V1__StatsReply reply = VBUS__V1__STATS_REPLY__INIT;
        Bus *b = p->bus;
        const BusStats *st = &b->stats;
        Totals t;
        int r;

        r = request_check(&vbus__v1__stats_request__descriptor, req, n_req, why);
        if (r)
                return r;
        totals(b, &t);
        reply.uptime_us = bus_now_us() - b->start_us;
        reply.peers = b->n_peers;
        reply.peers_total = st->n_peers_total;
        reply.published = st->n_published;
        reply.delivered = st->n_delivered;
        reply.dropped = st->n_dropped;
        reply.violations = st->n_violations;
        reply.denials = st->n_denied;
        reply.calls = st->n_calls;
        reply.calls_failed = st->n_calls_failed;
        reply.calls_in_flight = t.calls_in_flight;
        reply.subscriptions = t.subscriptions;
        reply.services = service_count(b);
        reply.bytes_in = t.bytes_in;
        reply.bytes_out = t.bytes_out;
        reply.kicks = st->n_kicks;
        reply.rss_bytes = rss_bytes();
        reply.fds = fd_count();
        reply.grant_mappings = grant_pages(b);
        reply.monitor_dropped = st->n_monitor_dropped;
        reply.presence_seq = presence_get_seq(b);
        return reply_pack(&reply.base, ret, ret_n, why);
}

/* --- Kick ---------------------------------------------------------------------------------- */

typedef struct KickFind {
        uint64_t id;
        Peer *found;
} KickFind;

static int kick_find(Peer *q, void *userdata)
{
        KickFind *kf = userdata;

        if (q->serial != kf->id)
                return 0;
        kf->found = q;
        return 1;
}

int admin_answer_kick(Peer *p, const uint8_t *req, size_t n_req, uint8_t **ret, size_t *ret_n,
                      char *why)
{
        Vbus__V1__KickReply reply = VBUS__V1__KICK_REPLY__INIT;
        Vbus__V1__KickRequest *m;
        char reason[LIMIT_KICK_REASON + 1];
        List *pos, *tmp;
        int r = 0;

        m = (Vbus__V1__KickRequest *)request_decode(&vbus__v1__kick_request__descriptor, req, n_req,
                                                    why);
        if (!m)
                return VBUS__V1__STATUS__STATUS_INVALID_ARGUMENT;
        (void)snprintf(reason, sizeof(reason), "%s", m->reason[0] ? m->reason : "no reason given");
        if (m->id == 0 && m->domid == 0) {
                /* An empty request must not mean "every session of domain 0". */
                (void)snprintf(why, INTROSPECT_WHY_MAX,
                               "name a session id, or a domain other than 0");
                r = VBUS__V1__STATUS__STATUS_INVALID_ARGUMENT;
                goto out;
        }
        if (m->id == p->serial) {
                (void)snprintf(why, INTROSPECT_WHY_MAX, "a session cannot kick itself");
                r = VBUS__V1__STATUS__STATUS_INVALID_ARGUMENT;
                goto out;
        }
        if (m->id) {
                /* One session: a link (its agent sessions go with it) or an agent session. */
                KickFind kf = {.id = m->id};

                (void)peer_foreach(p->bus, kick_find, &kf);
                if (kf.found && kf.found != p) {
                        peer_kick(kf.found, reason);
                        reply.kicked++;
                }
        } else {
                /* A domain: its links (vchan; local processes carry the broker's domid and are
                 * kicked by id only), each with its sessions. */
                list_for_each_safe(pos, tmp, &p->bus->peers)
                {
                        Peer *q = list_entry(pos, Peer, link);

                        if (q == p || q->ident.domid != m->domid || q->ident.local)
                                continue;
                        peer_kick(q, reason);
                        reply.kicked++;
                }
        }
        if (reply.kicked == 0) {
                if (m->id)
                        (void)snprintf(why, INTROSPECT_WHY_MAX, "no session %llu",
                                       (unsigned long long)m->id);
                else
                        (void)snprintf(why, INTROSPECT_WHY_MAX, "no session of domain %u",
                                       m->domid);
                r = VBUS__V1__STATUS__STATUS_NOT_FOUND;
                goto out;
        }
        r = reply_pack(&reply.base, ret, ret_n, why);
out:
        protobuf_c_message_free_unpacked(&m->base, NULL);
        return r;
}

/* --- Reload -------------------------------------------------------------------------------- */

int admin_answer_reload(Peer *p, const uint8_t *req, size_t n_req, uint8_t **ret, size_t *ret_n,
                        char *why)
{
        Vbus__V1__ReloadReply reply = VBUS__V1__RELOAD_REPLY__INIT;
        char msg[INTROSPECT_WHY_MAX];
        int r;

        r = request_check(&vbus__v1__reload_request__descriptor, req, n_req, why);
        if (r)
                return r;
        if (reload_all(p->bus, msg, sizeof(msg)) < 0) {
                (void)snprintf(why, INTROSPECT_WHY_MAX, "%s", msg);
                return VBUS__V1__STATUS__STATUS_APPLICATION;
        }
        reply.message = msg;
        return reply_pack(&reply.base, ret, ret_n, why);
}

/* --- Metrics ------------------------------------------------------------------------------- */

static void family(FILE *f, const char *name, const char *type, const char *help)
{
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(FILE *f, const char *name, const char *type, const char *help, uint64_t v)
{
        family(f, name, type, help);
        fprintf(f, "%s %llu\n", name, (unsigned long long)v);
}

typedef uint64_t (*PeerValueFn)(const Peer *q);

static uint64_t pv_bytes_in(const Peer *q)
{
        return q->ep.lk->n_bytes_in;
}
static uint64_t pv_bytes_out(const Peer *q)
{
        return q->ep.lk->n_bytes_out;
}
static uint64_t pv_frames_in(const Peer *q)
{
        return q->ep.lk->n_frames_in;
}
static uint64_t pv_frames_out(const Peer *q)
{
        return q->ep.lk->n_frames_out;
}
static uint64_t pv_published(const Peer *q)
{
        return q->n_published;
}
static uint64_t pv_dropped(const Peer *q)
{
        return q->n_dropped;
}
static uint64_t pv_denials(const Peer *q)
{
        return q->n_denied;
}
static uint64_t pv_queued(const Peer *q)
{
        return q->bytes_queued;
}
static uint64_t pv_streams(const Peer *q)
{
        return peer_n_streams(q);
}

typedef struct FamilyCtx {
        FILE *f;
        const char *name;
        PeerValueFn fn;
} FamilyCtx;

static int peer_sample(Peer *q, void *userdata)
{
        FamilyCtx *c = userdata;

        fprintf(c->f, "%s{id=\"%llu\",peer=\"", c->name, (unsigned long long)q->serial);
        metrics_write_label_value(c->f, q->label);
        fprintf(c->f, "\",transport=\"%s\"} %llu\n", peer_transport_name(q),
                (unsigned long long)c->fn(q));
        return 0;
}

static void peer_family(FILE *f, Bus *b, const char *name, const char *type, const char *help,
                        PeerValueFn fn)
{
        FamilyCtx c = {.f = f, .name = name, .fn = fn};

        family(f, name, type, help);
        (void)peer_foreach(b, peer_sample, &c);
}

int admin_metrics_text(Bus *b, char **ret, size_t *ret_n)
{
        const BusStats *st = &b->stats;
        char *text = NULL;
        size_t n = 0;
        Totals t;
        FILE *f = open_memstream(&text, &n);

        if (!f)
                return -ENOMEM;
        totals(b, &t);
        family(f, "vbus_uptime_seconds", "gauge", "Time since the broker started.");
        fprintf(f, "vbus_uptime_seconds %.3f\n", (double)(bus_now_us() - b->start_us) / 1e6);
        sample(f, "vbus_peers", "gauge", "Client sessions connected now.", b->n_peers);
        sample(f, "vbus_peers_connected_total", "counter", "Client sessions accepted.",
               st->n_peers_total);
        sample(f, "vbus_messages_published_total", "counter", "Messages published.",
               st->n_published);
        sample(f, "vbus_messages_delivered_total", "counter",
               "Messages delivered to subscriptions.", st->n_delivered);
        sample(f, "vbus_messages_dropped_total", "counter",
               "Messages DROP subscriptions lost because they were too slow.", st->n_dropped);
        sample(f, "vbus_protocol_violations_total", "counter",
               "Sessions disconnected for breaking the protocol.", st->n_violations);
        sample(f, "vbus_denials_total", "counter", "OPENs refused by policy.", st->n_denied);
        sample(f, "vbus_kicks_total", "counter", "Sessions disconnected by an admin.", st->n_kicks);
        sample(f, "vbus_calls_total", "counter", "Calls opened.", st->n_calls);
        sample(f, "vbus_calls_failed_total", "counter", "Calls whose outcome was not OK.",
               st->n_calls_failed);
        sample(f, "vbus_calls_in_flight", "gauge", "Calls open now.", t.calls_in_flight);
        sample(f, "vbus_subscriptions", "gauge", "Subscriptions open now.", t.subscriptions);
        sample(f, "vbus_services", "gauge", "Services known now.", service_count(b));
        sample(f, "vbus_received_bytes_total", "counter",
               "Frame bytes read from all links, headers included.", t.bytes_in);
        sample(f, "vbus_sent_bytes_total", "counter",
               "Frame bytes written to all links, headers included.", t.bytes_out);
        sample(f, "vbus_monitor_events_dropped_total", "counter",
               "Monitor events lost because a monitor did not keep up.", st->n_monitor_dropped);
        sample(f, "vbus_presence_events_total", "counter", "Presence events noted.",
               presence_get_seq(b));
        sample(f, "vbus_resident_memory_bytes", "gauge", "Resident memory of the broker.",
               rss_bytes());
        sample(f, "vbus_open_fds", "gauge", "File descriptors open in the broker.", fd_count());
        sample(f, "vbus_grant_mapped_pages", "gauge", "Grant pages mapped for the vchan peers.",
               grant_pages(b));
        peer_family(f, b, "vbus_peer_received_bytes_total", "counter",
                    "Frame bytes read from the session's link.", pv_bytes_in);
        peer_family(f, b, "vbus_peer_sent_bytes_total", "counter",
                    "Frame bytes written to the session's link.", pv_bytes_out);
        peer_family(f, b, "vbus_peer_received_frames_total", "counter",
                    "Frames read from the session's link.", pv_frames_in);
        peer_family(f, b, "vbus_peer_sent_frames_total", "counter",
                    "Frames written to the session's link.", pv_frames_out);
        peer_family(f, b, "vbus_peer_published_messages_total", "counter",
                    "Messages the session published.", pv_published);
        peer_family(f, b, "vbus_peer_dropped_messages_total", "counter",
                    "Messages the session's DROP subscriptions lost.", pv_dropped);
        peer_family(f, b, "vbus_peer_denials_total", "counter",
                    "OPENs of the session refused by policy.", pv_denials);
        peer_family(f, b, "vbus_peer_queued_bytes", "gauge",
                    "Bytes queued for the session's subscriptions.", pv_queued);
        peer_family(f, b, "vbus_peer_streams", "gauge", "Streams open on the session's link.",
                    pv_streams);
        metrics_write_calls(b, f);
        if (fclose(f) != 0 || !text) {
                free(text);
                return -ENOMEM;
        }
        *ret = text;
        *ret_n = n;
        return 0;
}

int admin_answer_metrics(Peer *p, const uint8_t *req, size_t n_req, uint8_t **ret, size_t *ret_n,
                         char *why)
{
        Vbus__V1__MetricsReply reply = VBUS__V1__METRICS_REPLY__INIT;
        char *text;
        size_t n;
        int r;

        r = request_check(&vbus__v1__metrics_request__descriptor, req, n_req, why);
        if (r)
                return r;
        if (admin_metrics_text(p->bus, &text, &n) < 0)
                return out_of_memory(why);
        if (n > LIMIT_ADMIN_REPLY) {
                free(text);
                (void)snprintf(why, INTROSPECT_WHY_MAX, "the metrics are larger than %u bytes",
                               (unsigned int)LIMIT_ADMIN_REPLY);
                return VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED;
        }
        reply.text = text;
        r = reply_pack(&reply.base, ret, ret_n, why);
        free(text);
        return r;
}
