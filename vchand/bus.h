/* SPDX-License-Identifier: MIT */
/*
 * bus: the state the broker's modules share, below all of them. broker.c owns the Bus (inside its
 * Broker) and the event loop; peer.c keeps the lists of peers; each feature keeps its own part
 * (pubsub.c the router, service.c the services, rpc.c and introspect.c their calls) and nothing
 * here knows what is inside them.
 *
 * Invariants: a Peer is in exactly one of peers (live) and dead (dropped during this loop
 * iteration, freed at its end, so that no caller up the stack sees freed memory); dirty holds the
 * live peers with bytes to flush once at the end of the iteration.
 */
#ifndef VCHAND_BUS_H
#define VCHAND_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "config.h"
#include "ratelimit.h"
#include "router.h"
#include "session.h"
#include "util/list.h"
#include "vchand-limits.h"

typedef struct IntroMethod IntroMethod;
typedef struct Keyring Keyring;
typedef struct Peer Peer;
typedef struct Policy Policy;
typedef struct Rpc Rpc;
typedef struct ServiceTable ServiceTable;
typedef struct Metrics Metrics;
typedef struct Presence Presence;

enum {
        /* Bytes of a guest's toolstack tags (policy @tag:): a few short words. */
        IDENTITY_TAGS_MAX = 255,
        /* Bytes of a channel-auth public key (Ed25519). */
        IDENTITY_KEY_BYTES = 32,
};

/*
 * What a guest agent says about the local process behind one of its sessions (protocol.md 7).
 * Not identity: the broker cannot check any of it. It is passed on marked as claims, and nothing
 * that decides (policy) may use it unless a rule opts in for that domain.
 */
typedef struct IdentityClaims {
        bool present; /* the peer is an agent session that made claims */
        uint32_t uid;
        uint32_t pid;
        char command[65];
} IdentityClaims;

/*
 * Who a peer is. The trusted part (all but session and claims) is what the broker
 * established from the transport, never from what the peer says; session is the agent session
 * id (0: the link's own); claims are the agent's word only (above).
 */
typedef struct Identity {
        uint32_t domid;
        char domain_name[65];
        bool local;
        uint32_t uid;
        uint32_t pid;
        uint32_t gid; /* local peers: primary gid from SO_PEERCRED */
        /* vchan peers: the words of /local/domain/<domid>/vbus-tags, read only when the guest
         * cannot write that key (discover.c), space-separated; "" if none. */
        char tags[IDENTITY_TAGS_MAX + 1];
        /* Channel auth (keyring.h): a key the peer proved at HELLO, for policy's @key:, and its
         * name as stamped on the wire: the keyring's name for it, or "key:<text>"; "" without. */
        bool has_key;
        uint8_t key[IDENTITY_KEY_BYTES];
        char key_name[LIMIT_KEY_NAME + 1];
        uint32_t session;
        IdentityClaims claims;
} Identity;

typedef struct BusStats {
        uint64_t n_published;
        uint64_t n_delivered;
        uint64_t n_dropped;
        uint64_t n_violations;
        uint64_t n_calls;
        uint64_t n_calls_failed;
        uint64_t n_refused_stopping; /* publications refused after the stop began */
        uint64_t n_denied;           /* OPENs policy refused, and streams it revoked */
        uint64_t n_peers_total;      /* sessions accepted since start */
        uint64_t n_kicks;            /* sessions disconnected by an admin (Kick) */
        uint64_t n_monitor_events;   /* events queued for monitors */
        uint64_t n_monitor_dropped;  /* events a monitor lost: it did not read fast enough */
        uint64_t bytes_in_gone;      /* link bytes of the sessions that have gone */
        uint64_t bytes_out_gone;
} BusStats;

/*
 * What a feature does with a peer's OPEN of its kind (the session has made @vs): bind its ops to
 * @vs (stream_bind) and answer ACCEPT, or answer REJECT. @m is borrowed for the call.
 * Return: as a stream op (peer.h: 0, a PEER_E_* code, or -errno).
 */
typedef int (*BusOpenFn)(Peer *p, VbusStream *vs, const Vbus__V1__Open *m);

enum {
        /* Open.kind values: vbus.v1.StreamKind PUBLISH (1) to SERVE (4). */
        BUS_KINDS = 5,
};

typedef struct Bus {
        BrokerConfig config;
        BusStats stats;
        bool stopping;             /* GOAWAY sent: new OPENs are refused */
        uint64_t next_batch_key;   /* pubsub.c: the last publisher's batch key given out */
        uint64_t next_batch_stamp; /* pubsub.c: the last batch routed */
        struct Msg *batch_spare;   /* pubsub.c: a batch copy kept for the next batch */
        size_t batch_spare_cap;
        size_t batch_taken_cap; /* pubsub.c: the size of the batch copy in use */
        uint32_t own_domid;     /* the broker's domain */
        Keyring *keyring;       /* keyring.c's: channel auth; NULL for none; owned by main() */
        List peers;             /* live Peers (peer.c) */
        List dead;              /* Peers dropped in this iteration (peer.c), freed by broker.c */
        List dirty;             /* Peers to flush at the end of the iteration (peer.c) */
        uint32_t n_peers;
        uint32_t n_local_peers; /* of n_peers, UNIX-socket links (peer.c) */
        uint64_t mem_held;      /* budget.c: held for all peers together */
        uint32_t n_grant_pages; /* budget.c: guests' ring pages mapped */
        uint32_t n_guests;      /* budget.c: vchan peers holding some of them */
        uint64_t next_serial;
        BusOpenFn open[BUS_KINDS]; /* by Open.kind; set by broker.c; NULL: refused */
        /* access.c's: the features' own OPEN handlers, called once policy allowed (open[] then
         * holds access.c's check), and the policy in force (NULL: --policy open). */
        BusOpenFn feature_open[BUS_KINDS];
        Policy *policy;
        uint64_t policy_gen; /* changes with every reload */
        /* access.c's: releases what it holds for a peer being freed, once its streams closed. */
        void (*peer_gone)(Peer *p);
        Router router;                    /* pubsub.c's: the subscriptions */
        ServiceTable *services;           /* service.c's: services by name, and their servers */
        Rpc *rpc;                         /* rpc.c's: calls in flight */
        List intro_calls;                 /* introspect.c's: calls the broker answers itself */
        RateLimit logs;                   /* peer.c's: log lines per source (peer_log) */
        struct RetainTable *retained;     /* retain.c's: the topics' retained values */
        const IntroMethod *intro_methods; /* vbus.v1.Broker's methods (broker.c's table) */
        size_t n_intro_methods;
        List monitors;           /* monitor.c's: taps of admin's Monitor calls */
        Metrics *metrics;        /* metrics.c's: call latency histograms */
        Presence *presence;      /* presence.c's: events waiting to be published */
        uint64_t start_us;       /* when the broker started (bus_now_us()) */
        const char *config_path; /* vchand.conf as read at start (NULL: defaults), for Reload */
        /* The broker publishing a message of its own (pubsub.c's, set by broker.c, so that the
         * modules below the features can publish): @data is borrowed. */
        void (*publish_local)(struct Bus *b, const char *topic, const uint8_t *data, size_t n);
} Bus;

/* CLOCK_MONOTONIC in microseconds. */
uint64_t bus_now_us(void);

#endif /* VCHAND_BUS_H */
