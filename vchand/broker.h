/* SPDX-License-Identifier: MIT */
/*
 * broker: the state of vchand and its event loop. One thread, one epoll set, no global state:
 * main() builds a Broker and runs it.
 *
 * Objects and who owns what:
 *  - Broker owns its Peers (one per link: a UNIX connection or a guest's vchan), the Router and
 *    the listening socket.
 *  - A Peer owns its Link, its Session, and the Streams opened on it.
 *  - A Stream of kind PUBLISH is reference-counted: queued Msgs keep a reference so they can
 *    return the publisher's credit after it is gone. A SUBSCRIBE stream owns its queue of QItems,
 *    each holding a reference to a Msg.
 *  - A Msg is reference-counted by the queues that hold it.
 * A Peer found dead is unlinked at once and freed at the end of the loop iteration, so callers
 * further up the stack never see freed memory.
 */
#ifndef VCHAND_BROKER_H
#define VCHAND_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "endpoint.h"
#include "router.h"
#include "util/list.h"

typedef struct Broker Broker;
typedef struct Peer Peer;
typedef struct Stream Stream;
typedef struct Call Call;
typedef struct Service Service;
typedef struct IntroCall IntroCall;

/* The configuration (vchand.conf; see docs/vchand.8.md). */
typedef struct BrokerConfig {
        char socket_path[108];
        bool xen; /* discover guests over vchan */
        uint32_t max_frame;
        uint32_t max_message;
        uint32_t max_streams;
        uint32_t max_subscriptions;
        uint32_t publish_window;
        uint32_t queue_messages;
        uint32_t queue_bytes;
        uint64_t peer_queued_bytes;
        uint64_t peer_publish_bytes;
        uint32_t hello_timeout_ms;
        uint32_t max_peers;
        uint32_t max_calls;         /* calls in flight per caller session */
        uint32_t max_service_calls; /* calls in flight per service */
        int verbose;
} BrokerConfig;

/* Who a peer is, as the broker established it from the transport. */
typedef struct Identity {
        uint32_t domid;
        char domain_name[65];
        bool local;
        uint32_t uid;
        uint32_t pid;
} Identity;

/* A message being delivered: a copy of the publisher's bytes, shared by the queues. */
typedef struct Msg {
        uint32_t refs;
        Stream *publisher;      /* reference: owns the topic, and takes the credit back */
        bool credit_pending;    /* its credit has not gone back to the publisher yet */
        uint32_t n_block_holds; /* BLOCK queues holding it: credit returns when 0 */
        uint32_t credit;        /* publisher bytes to return then */
        const Identity *sender; /* the publisher peer's identity (copied below) */
        Identity sender_copy;
        const uint8_t *meta_const; /* the publisher stream's (it holds a reference) */
        size_t n_meta_const;
        char *topic;
        size_t n_topic;
        size_t n_data;
        uint8_t data[];
} Msg;

typedef struct QItem {
        List link;
        Msg *msg;
        size_t offset; /* bytes of the message already sent (fragments) */
        bool block_hold;
} QItem;

struct Stream {
        List link;  /* in peer->streams */
        Peer *peer; /* NULL once the peer is gone */
        uint32_t id;
        uint8_t kind;
        uint32_t refs;
        bool closed;
        /* PUBLISH */
        char *topic;
        size_t n_topic;
        uint8_t *rx; /* message being reassembled from fragments */
        size_t n_rx;
        uint32_t rx_credit;   /* publisher bytes of that message */
        uint64_t credit_owed; /* bytes received and released, not yet returned */
        uint32_t window;      /* the window granted in ACCEPT */
        uint8_t *meta_const;  /* packed Meta{topic, sender}: the same for all its messages */
        size_t n_meta_const;
        RouterSub **match; /* the subscriptions its topic matched, valid while */
        uint32_t n_match, match_cap;
        uint64_t match_gen; /* ...this equals router.gen + 1 */
        /* SUBSCRIBE */
        RouterSub rsub;
        uint8_t slow_policy;
        uint32_t queue_limit;
        List queue;        /* QItems */
        List pending_link; /* in peer->pending while the queue is not empty */
        uint32_t n_queued;
        uint64_t bytes_queued;
        uint64_t dropped_pending; /* drops not yet reported to the subscriber */
        uint64_t dropped_total;
        uint64_t sequence;
        /* SERVE */
        Service *service;
        List serve_link;        /* in service->servers */
        uint32_t n_outstanding; /* calls in flight on this server */
        uint64_t n_calls_total; /* calls routed to this server, in flight included */
        /* CALL (the client's stream, or the one the broker opened toward a server) */
        Call *call;
        IntroCall *intro; /* instead of call: a call the broker answers itself (introspect.c) */
};

struct Peer {
        Broker *broker;
        List link;       /* in broker->peers */
        List dead_link;  /* in broker->dead */
        List dirty_link; /* in broker->dirty: flushed once at the end of the iteration */
        uint64_t serial;
        Identity ident;
        char label[96];  /* for logs: "dom3(sensor)" or "uid 1000 pid 42" */
        VbusEndpoint ep; /* the link and its session */
        bool dead;
        bool registered;
        uint32_t events; /* epoll events currently registered */
        uint64_t created_us;
        List streams; /* all open Streams */
        List pending; /* SUBSCRIBE Streams with queued messages */
        uint32_t n_subscriptions;
        uint32_t n_calls; /* calls this peer has in flight as a caller */
        uint64_t bytes_queued;
        uint64_t publish_granted; /* sum of windows granted to its PUBLISH streams */
        bool more;                /* stopped at LIMIT_FRAMES_PER_WAKEUP: process again */
        uint32_t log_budget;
        uint64_t log_window_us;
        uint32_t vchan_domid; /* vchan peers: the guest; UINT32_MAX for UNIX peers */
};

typedef struct BrokerStats {
        uint64_t n_published;
        uint64_t n_delivered;
        uint64_t n_dropped;
        uint64_t n_violations;
        uint64_t n_calls;
        uint64_t n_calls_failed;
} BrokerStats;

struct Broker {
        BrokerConfig config;
        int epoll_fd;
        int listen_fd;
        int signal_fd;
        bool stopping;
        uint64_t stop_deadline_us;
        uint32_t own_domid;
        List peers;
        List dead;
        List dirty;
        uint32_t n_peers;
        uint64_t next_serial;
        Router router;
        List services;    /* Service, by name */
        List calls;       /* Call, in flight */
        List intro_calls; /* IntroCall: calls to the broker's own service, in progress */
        BrokerStats stats;
        struct Discover *discover; /* xenstore discovery of guests, NULL without Xen */
};

void broker_config_defaults(BrokerConfig *c);

/* Parses vchand.conf text. On error returns -EINVAL and writes a message to @err. */
int broker_config_parse(BrokerConfig *c, const char *text, size_t len, char *err, size_t n_err);

int broker_init(Broker *b, const BrokerConfig *config);
void broker_deinit(Broker *b);

/* Runs until SIGTERM/SIGINT and an orderly shutdown. Return: 0 or a negative errno. */
int broker_run(Broker *b);

/* Adds a peer on an established transport (moved in). Return: 0 or -errno. */
int broker_add_peer(Broker *b, VbusTransport *t, const Identity *ident, uint32_t vchan_domid);

/* Notes that the peer's link has new bytes: they are flushed (one send, or one event for a vchan)
 * once per loop iteration, so a burst of deliveries costs one wakeup of the peer. */
void broker_mark_dirty(Broker *b, Peer *p);

/* Marks a peer dead: unlinks it from everything; it is freed at the end of the iteration. */
void broker_kill_peer(Broker *b, Peer *p, const char *why);

uint64_t broker_now_us(void);

#endif /* VCHAND_BROKER_H */
