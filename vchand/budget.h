/* SPDX-License-Identifier: MIT */
/*
 * budget: what the broker holds on each peer's behalf, and on all peers' together, counted in
 * bytes with a fixed charge per item (LIMIT_ITEM_OVERHEAD), so that a flood of empty frames
 * costs as much of a budget as the memory it makes the broker allocate.
 *
 * Every module that allocates for a peer charges that peer first (budget_charge) and releases
 * exactly what it charged when it frees (budget_release). Who is charged is the module's choice,
 * made so that the peer that caused the holding pays: a subscriber for its queues, a caller for
 * its calls' relays (both directions), a peer for its own streams. A refused charge is never
 * acted on here: the module refuses that peer's stream (RESOURCE_EXHAUSTED), drops that peer's
 * own message (counted), or as a last resort returns an error that drops that peer alone.
 *
 * The global rule (max_memory): once all peers together hold max_memory, a charge is refused
 * only to a peer that holds more than its share (max_memory / live peers). A peer under its share
 * is never refused because of what others hold; the total then passes max_memory by at most what
 * the peers under their share hold.
 *
 * Invariant: a peer holds nothing once its streams are closed (peer_free() checks it).
 */
#ifndef VCHAND_BUDGET_H
#define VCHAND_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peer.h"
#include "vchand-limits.h"

/* What an item of @n payload bytes costs. */
static inline uint64_t budget_cost(size_t n)
{
        return (uint64_t)n + LIMIT_ITEM_OVERHEAD;
}

/**
 * budget_check() - whether @p may hold @bytes more, without charging them.
 * Return: true if budget_charge() would succeed now.
 */
bool budget_check(const Peer *p, uint64_t bytes);

/**
 * budget_charge() - charge @bytes to @p (its peer_memory, and the broker's max_memory).
 * Return: 0, or -ENOBUFS (over @p's budget, or the broker is full and @p holds more than its
 * share): nothing charged, and the caller refuses @p.
 */
int budget_charge(Peer *p, uint64_t bytes);

/* Releases @bytes that were charged to @p. */
void budget_release(Peer *p, uint64_t bytes);

/**
 * budget_backlog_room() - whether @q's link may take a control frame of @size bytes that the
 * broker sends on another peer's behalf (an OPEN toward a server).
 *
 * The link's backlog (VBUS_LINK_BACKLOG_MAX) holds control frames that found @q's ring full, and
 * overflowing it drops @q as not reading its link. So frames that start something new for
 * someone else may fill only half of it (LIMIT_BACKLOG_NEW_SHARE): the rest stays for the frames
 * of what is already open (END, RESET, CREDIT), and a busy server is never dropped because others
 * called it. Return: true if the frame may be sent now.
 */
bool budget_backlog_room(const Peer *q, size_t size);

/**
 * budget_admit_rings() - whether the broker keeps a guest's vchan whose rings are @read_size and
 * @write_size bytes: each at most 2^max_ring_order, and their pages (plus the control page)
 * within max_grant_mappings, or once that is reached, within the guest's share of it
 * (max_grant_mappings / guests). Asked twice: by discovery once the guest's control page is
 * mapped and its orders read, before any ring page is mapped (libbus/vchan's
 * vbus__vchan_client_open()), so a guest asking for more is refused having cost one page; and
 * when the link becomes a peer, where the pages are charged (guests may have come between).
 * Return: the pages to charge (> 0), or -E2BIG (a ring larger than max_ring_order) or -ENOSPC
 * (over the budget and over its share).
 */
int budget_admit_rings(const Bus *b, size_t read_size, size_t write_size);

/* Charges @pages of rings to @p (a new vchan peer), and releases them when it goes. */
void budget_charge_rings(Peer *p, uint32_t pages);
void budget_release_rings(Peer *p);

/**
 * budget_call_deadline() - the deadline of a call that asked for @timeout_us (0: none), on
 * CLOCK_MONOTONIC: at most max_call_timeout_ms from now, so no call is held for ever.
 */
uint64_t budget_call_deadline(const Bus *b, uint64_t timeout_us);

#endif /* VCHAND_BUDGET_H */
