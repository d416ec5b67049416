/* SPDX-License-Identifier: MIT */
/*
 * bridge: the state of one vbus-bridge process and the contracts between its modules.
 *
 * Threads: libvbus is single-threaded, libnats delivers on its own threads. Everything that
 * touches the vbus connection runs on the main thread (the loop in main.c). libnats' delivery
 * threads only push received messages onto the event queue (queue.c) and wake the loop; they
 * never touch vbus state. Publishing to NATS is done from the main thread (libnats is
 * thread-safe). Counters written from libnats' threads are atomics; all others are the main
 * thread's.
 *
 * Modules: config (the file), queue (libnats threads -> loop), nats (connection and
 * subscriptions), export/import (pub/sub, export.c and import.c), rpc (calls both ways),
 * metrics (counters and their text form), main (the loop, signals).
 */
#ifndef VBUS_BRIDGE_BRIDGE_H
#define VBUS_BRIDGE_BRIDGE_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <vbus/vbus.h>

#include "config.h"
#include "table.h"

/* What a queued event is. */
typedef enum EventKind {
        EVENT_IMPORT = 1,  /* a message on an import subscription */
        EVENT_RPC_REQUEST, /* a call from another host to an offered service */
        EVENT_RPC_REPLY,   /* a reply to a call this bridge made */
        EVENT_RPC_CANCEL,  /* a caller's bridge gave up on a call */
} EventKind;

typedef struct Event {
        struct Event *next;
        EventKind kind;
        unsigned index; /* the rule the subscription belongs to */
        natsMsg *msg;   /* owned by the event */
        size_t cost;
} Event;

typedef struct Queue {
        pthread_mutex_t lock;
        pthread_cond_t room;
        Event *head, *tail;
        size_t n, bytes;
        bool closing;
        int wake[2]; /* a pipe: written when the queue goes from empty to not empty */
        bool woken;
} Queue;

/* The closure of one NATS subscription. */
typedef struct SubCtx {
        struct Bridge *b;
        EventKind kind;
        unsigned index;
} SubCtx;

typedef struct Metrics {
        uint64_t exported_messages, exported_bytes, export_failed, export_origin_dropped,
                export_origin_gaps, export_skipped_imports;
        uint64_t imported_messages, imported_bytes, import_gaps, import_lost, import_unknown,
                import_local_dropped, import_invalid, import_own;
        uint64_t forged_seen;
        uint64_t rpc_out_calls, rpc_out_ok, rpc_out_failed, rpc_out_no_responders, rpc_out_deadline,
                rpc_out_cancelled;
        uint64_t rpc_in_calls, rpc_in_ok, rpc_in_failed, rpc_in_cancelled, rpc_in_refused;
        _Atomic uint64_t nats_disconnects, nats_reconnects, nats_slow_consumer, nats_errors;
        _Atomic uint64_t queue_waits;
} Metrics;

typedef struct Bridge {
        const Config *cfg;
        vbus_conn *conn;
        natsConnection *nc;
        Queue q;
        Metrics m;
        bool metrics_prom; /* --metrics-format prom */
        uint64_t epoch;    /* random per start: lets importers tell a restart from a gap */
        pid_t pid;
        uid_t uid;
        uint64_t started_usec;

        /* export.c */
        struct ExportRule *export_rules;
        vbus_subscription **export_subs;
        Table export_seq; /* topic -> uint64_t seq (in the entry's num; no value) */
        vbus_subscription *forged_sub;

        /* import.c */
        SubCtx *import_ctx;
        natsSubscription **import_subs;
        Table import_seq;       /* NATS subject -> ImportSeq */
        Table publishers;       /* local topic -> ImportPub */
        struct ImportPub *busy; /* publishers with messages waiting for credit */
        size_t import_queued_bytes;
        char *scratch; /* one imported message with its envelope */
        size_t scratch_size;

        /* rpc.c */
        struct Rpc *rpc;
} Bridge;

uint64_t bridge_now_usec(void);

/* queue.c */
int queue_init(Queue *q);
void queue_deinit(Queue *q);
void queue_close(Queue *q);
/* Called on libnats' threads; takes @msg. Waits while the queue is full (unless closing). */
void queue_push(Bridge *b, EventKind kind, unsigned index, natsMsg *msg);
/* Takes up to @max events off the queue into a list; returns its head. */
Event *queue_pop(Queue *q, unsigned max);
void queue_drain_wake(Queue *q);
/* The libnats callback that queues: closure is a SubCtx. */
void queue_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure);

/* nats.c */
int nats_connect(Bridge *b);
void nats_close(Bridge *b);

/* export.c */
int export_start(Bridge *b);
void export_stop(Bridge *b);

/* import.c */
int import_start(Bridge *b);
void import_stop(Bridge *b);
/* Takes ev->msg (sets it NULL) when it keeps it. */
void import_handle(Bridge *b, Event *ev);
void import_free(Bridge *b);
/* Retries messages waiting for credit. Return: true if some are still waiting. */
bool import_flush(Bridge *b);

/* rpc.c */
int rpc_start(Bridge *b);
void rpc_stop(Bridge *b);
void rpc_free(Bridge *b);
/* True once every imported service is registered with the broker. */
bool rpc_is_active(Bridge *b);
void rpc_handle(Bridge *b, Event *ev);
/* Checks calls in flight for cancellation and deadlines. Return: the next time it must run
 * (UINT64_MAX for none). */
uint64_t rpc_sweep(Bridge *b, uint64_t now);

/* metrics.c */
/* The counters as text, or (@prom) in the Prometheus text exposition format. */
void metrics_print(const Bridge *b, FILE *f, bool prom);

#endif /* VBUS_BRIDGE_BRIDGE_H */
