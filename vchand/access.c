/* SPDX-License-Identifier: MIT */
/*
 * access: policy at OPEN time, per-topic filtering of mixed subscriptions, reload and revocation
 * (see access.h).
 */
#include "access.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "introspect.h"
#include "log.h"
#include "stream.h"

/* The header that carries a remote caller's identity from the bridge (docs/federation.md). */
#define BRIDGE_ORIGIN_HEADER "vbus-bridge-origin"

enum {
        /* Rules kept with a filtered subscription to check its topics: a pattern that meets more
         * subscribe rules of its subject is checked against the whole policy instead. */
        GRANT_FILTER_RULES = 8,
};

/* What policy granted one stream the peer opened: checked again at reload. */
typedef struct Grant {
        List link; /* in Peer.grants */
        uint32_t id;
        uint8_t kind;
        uint64_t cost; /* charged to the peer's budget */
        int n_filter;  /* a filtered subscription's rules in filter[]; -1: check the policy */
        const PolicyRule *filter[GRANT_FILTER_RULES]; /* of the policy in force */
        char name[];                                  /* the OPEN's name */
} Grant;

/* What a grant for an OPEN named @name costs the peer's budget. */
static uint64_t grant_cost(const char *name)
{
        return budget_cost(sizeof(Grant) + strlen(name) + 1);
}

static void grant_free(Peer *p, Grant *g)
{
        list_unlink(&g->link);
        p->n_grants--;
        budget_release(p, g->cost);
        free(g);
}

void access_subject(PolicySubject *ret, const Identity *id)
{
        *ret = (PolicySubject){
                .local = id->local,
                .domid = id->domid,
                .name = id->domain_name,
                .tags = id->tags,
                .uid = id->uid,
                .gid = id->gid,
                .has_key = id->has_key,
                .key = id->key,
                .key_name = id->key_name,
        };
}

/* "denied by FILE:LINE", "default deny", or for the bridge's prefix "reserved by FILE:LINE". */
static void rule_origin(char *buf, size_t size, const PolicyRule *r, bool allow)
{
        const char *how = allow ? "allowed by" : r && r->allow ? "reserved by" : "denied by";

        /* Cut short: fine for a message. */
        if (r)
                (void)snprintf(buf, size, "%s %s:%u", how, r->file, r->line);
        else
                (void)snprintf(buf, size, "%s", allow ? "allowed" : "default deny");
}

/* An OPEN or a stream refused: counted, logged (rate-limited) with the rule that decided. */
static void note_denial(Peer *p, const char *what, const char *msg)
{
        p->n_denied++;
        p->bus->stats.n_denied++;
        peer_log(p, "%s (%s)", msg, what);
}

/*
 * The decision for an OPEN of @kind named @name by @p. For a subscription, @ret_filter says the
 * pattern matches topics of both kinds. @msg: written when denied: the reason, for REJECT and
 * the log.
 */
static bool decide(Peer *p, uint8_t kind, const char *name, bool *ret_filter, char *msg,
                   size_t n_msg)
{
        const Policy *pol = p->bus->policy;
        const PolicyRule *r = NULL;
        PolicySubject s;
        PolicyAction action;
        const char *resource = name;
        char origin[320];
        bool allow;

        access_subject(&s, &p->ident);
        *ret_filter = false;
        switch (kind) {
        case VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH:
                action = POLICY_PUBLISH;
                break;
        case VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE: {
                PolicyScope scope = policy_check_pattern(pol, &s, name, &r);

                *ret_filter = scope == POLICY_SCOPE_SOME;
                if (scope != POLICY_SCOPE_NONE)
                        return true;
                rule_origin(origin, sizeof(origin), r, false);
                (void)snprintf(msg, n_msg, "policy: subscribe '%.255s': %s", name, origin);
                return false;
        }
        case VBUS__V1__STREAM_KIND__STREAM_KIND_SERVE:
                action = POLICY_SERVE;
                break;
        case VBUS__V1__STREAM_KIND__STREAM_KIND_CALL: {
                size_t n_svc = strcspn(name, "/");

                action = POLICY_CALL;
                if (n_svc == strlen(INTROSPECT_SERVICE) &&
                    memcmp(name, INTROSPECT_SERVICE, n_svc) == 0) {
                        action = POLICY_ADMIN;
                        resource = policy_admin_class(name[n_svc] ? name + n_svc + 1 : "");
                }
                break;
        }
        default:
                (void)snprintf(msg, n_msg, "policy: unknown stream kind");
                return false;
        }
        allow = policy_check(pol, &s, action, resource, &r);
        if (allow)
                return true;
        rule_origin(origin, sizeof(origin), r, false);
        (void)snprintf(msg, n_msg, "policy: %s '%.255s': %s", policy_action_name(action), name,
                       origin);
        return false;
}

/* The bridge's header on a CALL from a peer without the bridge right is refused, not dropped:
 * a caller that sends it means to be taken for a remote one. */
static bool headers_allowed(Peer *p, const Vbus__V1__Open *m)
{
        PolicySubject s;

        for (size_t i = 0; i < m->n_headers; i++) {
                if (m->headers[i] && m->headers[i]->key &&
                    strcmp(m->headers[i]->key, BRIDGE_ORIGIN_HEADER) == 0) {
                        access_subject(&s, &p->ident);
                        return policy_has_bridge_right(p->bus->policy, &s);
                }
        }
        return true;
}

/* Frees the grants of streams that are gone (ids are never reused within a session). */
static void grants_prune(Peer *p)
{
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &p->grants)
        {
                Grant *g = list_entry(pos, Grant, link);

                if (!vbus__session_get_stream(&p->ep.session, g->id))
                        grant_free(p, g);
        }
}

/* Makes @g the filter of subscription @vs (a filtered one: @filter), or none. */
static void grant_set_filter(Peer *p, Grant *g, VbusStream *vs, bool filter)
{
        Stream *s = vs->userdata; /* a Subscription: it starts with its Stream (pubsub.c) */
        PolicySubject subj;

        if (!s)
                return;
        s->policy_filter = NULL;
        if (!filter)
                return;
        access_subject(&subj, &p->ident);
        g->n_filter = policy_relevant_rules(p->bus->policy, &subj, g->name, g->filter,
                                            GRANT_FILTER_RULES);
        if (g->n_filter < 0)
                g->n_filter = -1;
        s->policy_filter = g;
}

/* A grant for stream @id, whose @cost the caller charged (released here on failure). */
static Grant *grant_add(Peer *p, uint32_t id, uint8_t kind, const char *name, uint64_t cost)
{
        size_t n = strlen(name);
        Grant *g;

        /* Amortised: a sweep each time the list doubles past the streams open. */
        if (p->n_grants >= 2 * p->ep.session.n_streams + 16)
                grants_prune(p);
        g = malloc(sizeof(*g) + n + 1);
        if (!g) {
                budget_release(p, cost);
                /* Without its grant the stream would escape a reload: refuse to keep it. */
                (void)peer_send_end(p, VBUS_FRAME_RESET, id, VBUS__V1__STATUS__STATUS_INTERNAL,
                                    "out of memory");
                return NULL;
        }
        g->id = id;
        g->kind = kind;
        g->cost = cost;
        g->n_filter = 0;
        memcpy(g->name, name, n + 1);
        list_add_tail(&p->grants, &g->link);
        p->n_grants++;
        return g;
}

/*
 * A caller usually calls the same method again and again, and each call is a stream: the last
 * call a peer was allowed is remembered until the policy changes, so a repeated call costs a
 * string comparison instead of a walk of the rules.
 */
static bool call_cached(const Peer *p, uint8_t kind, const char *name)
{
        return kind == VBUS__V1__STREAM_KIND__STREAM_KIND_CALL && p->policy_last_call &&
               p->policy_last_gen == p->bus->policy_gen && strcmp(p->policy_last_call, name) == 0;
}

static void call_cache(Peer *p, const char *name)
{
        if (p->policy_last_call && strcmp(p->policy_last_call, name) == 0) {
                p->policy_last_gen = p->bus->policy_gen;
                return;
        }
        free(p->policy_last_call);
        p->policy_last_call = strdup(name); /* NULL: nothing cached, the next call decides */
        p->policy_last_gen = p->bus->policy_gen;
}

/* Bus.open[] for every kind while a policy is in force. */
static int access_open(Peer *p, VbusStream *vs, const Vbus__V1__Open *m)
{
        Bus *b = p->bus;
        uint8_t kind = (uint8_t)m->kind;
        BusOpenFn open = kind < BUS_KINDS ? b->feature_open[kind] : NULL;
        uint32_t id = vs->id;
        bool filter = false;
        char msg[640];
        VbusStream *now;
        uint64_t cost;
        int r;

        if (!open) {
                (void)peer_reject(p, id, VBUS__V1__STATUS__STATUS_UNSUPPORTED,
                                  "this broker has no streams of that kind");
                return 0;
        }
        if (!call_cached(p, kind, m->name) &&
            !decide(p, kind, m->name, &filter, msg, sizeof(msg))) {
                note_denial(p, "OPEN refused", msg);
                (void)peer_reject(p, id, VBUS__V1__STATUS__STATUS_PERMISSION_DENIED, msg);
                return 0;
        }
        if (kind == VBUS__V1__STREAM_KIND__STREAM_KIND_CALL && !headers_allowed(p, m)) {
                (void)snprintf(msg, sizeof(msg),
                               "policy: the header " BRIDGE_ORIGIN_HEADER
                               " is reserved for the bridge (an import rule)");
                note_denial(p, "OPEN refused", msg);
                (void)peer_reject(p, id, VBUS__V1__STATUS__STATUS_PERMISSION_DENIED, msg);
                return 0;
        }
        /* The grant is the peer's to pay, like the stream itself. */
        cost = grant_cost(m->name);
        if (budget_charge(p, cost) < 0) {
                (void)peer_reject(p, id, VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                                  "peer memory budget exhausted (peer_memory)");
                return 0;
        }
        if (kind == VBUS__V1__STREAM_KIND__STREAM_KIND_CALL)
                call_cache(p, m->name);
        r = open(p, vs, m);
        /* Bound by its feature and still open: remember the grant (and mark a filtered
         * subscription: its object starts with its Stream, pubsub.c asserts it). */
        now = peer_is_alive(p) ? vbus__session_get_stream(&p->ep.session, id) : NULL;
        if (r == 0 && now && now->ops) {
                Grant *g = grant_add(p, id, kind, m->name, cost);

                if (g && kind == VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE)
                        grant_set_filter(p, g, now, filter);
        } else {
                budget_release(p, cost);
        }
        return r;
}

bool access_topic_allowed(const void *filter, Peer *p, const char *topic)
{
        const Grant *g = filter;
        const PolicyRule *r;
        PolicySubject s;

        if (!p->bus->policy)
                return true;
        access_subject(&s, &p->ident);
        if (g->n_filter >= 0)
                return policy_check_rules(g->filter, (size_t)g->n_filter, &s, topic);
        return policy_check(p->bus->policy, &s, POLICY_SUBSCRIBE, topic, &r);
}

/* Bus.peer_gone: what access holds for @p, whose streams have all closed. */
static void access_peer_gone(Peer *p)
{
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &p->grants)
        {
                grant_free(p, list_entry(pos, Grant, link));
        }
        free(p->policy_last_call);
        p->policy_last_call = NULL;
}

int access_init(Bus *b, char *err, size_t n_err)
{
        int r;

        b->peer_gone = access_peer_gone;
        if (strcmp(b->config.policy, ACCESS_OPEN) == 0) {
                b->policy = NULL;
                return 0;
        }
        r = policy_load_dir(b->config.policy, &b->policy, err, n_err);
        if (r < 0)
                return r;
        for (int k = 0; k < BUS_KINDS; k++) {
                b->feature_open[k] = b->open[k];
                if (b->open[k])
                        b->open[k] = access_open;
        }
        return 0;
}

void access_deinit(Bus *b)
{
        b->policy = policy_free(b->policy);
}

/* Checks @p's grants against the policy in force; resets the streams it denies. */
static unsigned int revoke_peer(Peer *p)
{
        unsigned int n = 0;
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &p->grants)
        {
                Grant *g = list_entry(pos, Grant, link);
                VbusStream *vs = vbus__session_get_stream(&p->ep.session, g->id);
                bool filter = false;
                char msg[640];
                uint32_t id;

                if (!peer_is_alive(p))
                        break;
                if (!vs) {
                        grant_free(p, g);
                        continue;
                }
                if (decide(p, g->kind, g->name, &filter, msg, sizeof(msg))) {
                        /* The old policy's rules are gone: the filter is made again. */
                        if (g->kind == VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE)
                                grant_set_filter(p, g, vs, filter);
                        continue;
                }
                note_denial(p, "stream revoked", msg);
                id = g->id;
                grant_free(p, g);
                n++;
                /* Runs the feature's ->closed: its object goes with the stream. */
                (void)peer_send_end(p, VBUS_FRAME_RESET, id,
                                    VBUS__V1__STATUS__STATUS_PERMISSION_DENIED, msg);
        }
        return n;
}

int access_reload(Bus *b, char *err, size_t n_err, unsigned int *ret_revoked)
{
        Policy *fresh = NULL, *old;
        Peer **peers;
        uint32_t n = 0, n_all;
        unsigned int revoked = 0;
        List *pos, *tmp, *spos, *stmp;
        int r;

        if (!b->policy) {
                (void)snprintf(err, n_err, "running with --policy open: nothing to reload");
                return -ENOTSUP;
        }
        r = policy_load_dir(b->config.policy, &fresh, err, n_err);
        if (r < 0)
                return r;
        /* Revoking a stream can drop another peer (a write to one that does not read its
         * link): take the list first; dropped peers stay allocated until the loop's end. The
         * agent sessions of each link (peer.h) are peers too. */
        n_all = b->n_peers;
        list_for_each_safe(pos, tmp, &b->peers)
        {
                n_all += list_entry(pos, Peer, link)->n_sessions;
        }
        peers = calloc(n_all ? n_all : 1, sizeof(Peer *));
        if (!peers) {
                policy_free(fresh);
                (void)snprintf(err, n_err, "out of memory");
                return -ENOMEM;
        }
        old = b->policy;
        b->policy = fresh;
        b->policy_gen++; /* forgets every peer's cached call decision */
        list_for_each_safe(pos, tmp, &b->peers)
        {
                Peer *p = list_entry(pos, Peer, link);

                if (n < n_all)
                        peers[n++] = p;
                list_for_each_safe(spos, stmp, &p->sessions)
                {
                        if (n < n_all)
                                peers[n++] = list_entry(spos, Peer, session_link);
                }
        }
        for (uint32_t i = 0; i < n; i++)
                if (peer_is_alive(peers[i]))
                        revoked += revoke_peer(peers[i]);
        free(peers);
        /* Freed only now: until every grant was checked, filters pointed into it. */
        policy_free(old);
        /* Filtered subscriptions may have changed: publishers recompute their matches. */
        b->router.gen++;
        *ret_revoked = revoked;
        return 0;
}
