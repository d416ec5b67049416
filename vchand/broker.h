/* SPDX-License-Identifier: MIT */
/*
 * broker: vchand's event loop, at the top of its modules. One thread, one epoll set, no global
 * state: main() builds a Broker and runs it.
 *
 * Objects and who owns what:
 *  - The Broker owns the Bus (bus.h: the state the modules share), the listening socket, the
 *    signal fd, the epoll set and the xenstore discovery of guests.
 *  - The Bus's live peers (peer.h) each own their endpoint and, through the ops bound to its
 *    streams, the features' stream objects (pubsub.c, rpc.c, introspect.c).
 *  - A peer dropped during an iteration (peer_kill(), by peer.c or here) is freed here at the end
 *    of that iteration, so that no caller further up the stack sees freed memory; freeing it
 *    closes its streams, which releases what the features held for it.
 */
#ifndef VCHAND_BROKER_H
#define VCHAND_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "transport.h"

typedef struct Discover Discover;
typedef struct Scrape Scrape;

typedef struct Broker {
        Bus bus;
        int epoll_fd;
        int listen_fd;
        int signal_fd;
        uint64_t stop_started_us;  /* when SIGTERM or SIGINT began the orderly stop */
        uint64_t stop_deadline_us; /* stop_started_us + LIMIT_STOP_GRACE_MS */
        uint64_t next_tick_us;     /* the next housekeeping tick (0: set by the first step) */
        uint64_t accept_resume_us; /* accept paused (out of fds or memory) until then; 0: not */
        uint64_t accept_logged_us; /* when that was last logged (once per 10 s) */
        uint64_t n_accept_pauses;  /* pauses since that line */
        Discover *discover;        /* NULL without Xen */
        Scrape *scrape;            /* the metrics listener; NULL unless metrics_listen is set */
} Broker;

/* Sets up the bus, the socket, the signals and (with config->xen) xenstore discovery. On
 * failure the caller still calls broker_deinit(). Return: 0 or -errno. */
int broker_init(Broker *b, const BrokerConfig *config);
void broker_deinit(Broker *b);

/* Runs until SIGTERM/SIGINT and an orderly shutdown. Return: 0 or a negative errno. */
int broker_run(Broker *b);

/*
 * One iteration of the loop broker_run() repeats: waits for events (at most @max_wait_ms, -1
 * for the next deadline), serves them, runs the tick when due, frees the peers that died. For
 * broker_run() and for harnesses that drive the broker themselves (tests/fuzz/fuzz-peer.c).
 * Return: 0 (go on), 1 (stopped), or a negative errno.
 */
int broker_step(Broker *b, int max_wait_ms);

/* Adds a peer on an established transport (moved in, also on failure). Return: 0 or -errno. */
int broker_add_peer(Broker *b, VbusTransport *t, const Identity *ident, uint32_t vchan_domid);

#endif /* VCHAND_BROKER_H */
