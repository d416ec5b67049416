/* SPDX-License-Identifier: MIT */
/*
 * discover: where a domain is discovered. The broker watches xenstore for domains coming and
 * going (@introduceDomain, @releaseDomain) and, per guest, for the vchan keys the guest publishes
 * under /local/domain/<guest>/data/vchan/<broker-domid>/vbus; when they appear it connects as the
 * vchan client and hands the link to the broker. At start-up it scans for guests already waiting.
 * A guest whose domain is released is disconnected at once.
 */
#ifndef VCHAND_DISCOVER_H
#define VCHAND_DISCOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "transport.h"

typedef struct Discover Discover;

/* What discover asks of the broker. */
typedef struct DiscoverOps {
        /* A guest's rings are @read_size and @write_size bytes (its orders, from its control
         * page): may the broker map them? Asked before any ring page is mapped.
         * Return: 0; -E2BIG or -ENOSPC (over the broker's bounds, logged: the guest waits for
         * new keys, as for connect). */
        int (*admit)(void *userdata, uint32_t domid, size_t read_size, size_t write_size);
        /* A guest's vchan is connected: make it a peer. @t: moved in (on failure too).
         * Return: 0; -E2BIG or -ENOSPC (its rings are over the broker's bounds: the guest's
         * doing, it waits for new keys); another -errno (the broker's own: retried later). */
        int (*connect)(void *userdata, VbusTransport *t, const Identity *ident, uint32_t domid);
        /* The domain @domid was released: drop its link, whatever its live byte says. */
        void (*released)(void *userdata, uint32_t domid);
} DiscoverOps;

/*
 * Opens xenstore (as the broker's domain), reads its own domid, sets the watches, and scans for
 * the guests already there (a restarted broker finds the ones waiting for it). Discovery holds
 * one xenstore connection for everything, including the setup of every guest's vchan.
 * @ops, @userdata: borrowed for the Discover's life.
 */
int discover_new(const DiscoverOps *ops, void *userdata, Discover **ret);

/* The broker's own domid, as xenstore says (0 if it does not). */
uint32_t discover_get_own_domid(Discover *d);
Discover *discover_free(Discover *d);

/* The xenstore watch fd to poll for POLLIN. */
int discover_get_fd(Discover *d);

/*
 * The one event-channel fd of every guest's vchan (they share one handle), to poll for POLLIN;
 * -1 until the first guest's setup opened it. A guest's vchan costs no descriptor of its own.
 */
int discover_get_events_fd(Discover *d);

/*
 * Takes the next pending event of the guests' vchans, unmasked (vbus__vchan_next_event()):
 * serve the peer whose vchan has port *@ret_port (vbus__vchan_get_port()).
 * Return: 1 and *@ret_port, 0 (none pending), or -errno.
 */
int discover_next_event(Discover *d, uint32_t *ret_port);

/*
 * Handles watch events, then takes LIMIT_DISCOVER_SETUP_STEPS_PER_WAKEUP steps of the setup of
 * the guests they (or the tick) made due, one guest at a time. Call it when the fd is readable and
 * while discover_has_work().
 */
void discover_process(Discover *d);

/* True while guests are due for a look: call discover_process() again without waiting. */
bool discover_has_work(Discover *d);

/*
 * Periodic: retries the guests whose setup failed for a reason of the broker's own (out of
 * descriptors, memory, max_peers...) once their delay has passed. Returns at once when there are
 * none, however many guests are idle: guests are otherwise looked at only on watch events.
 */
void discover_tick(Discover *d);

/* The broker dropped the link of @domid: forget it, so new keys are connected again. */
void discover_peer_gone(Discover *d, uint32_t domid);

#endif /* VCHAND_DISCOVER_H */
