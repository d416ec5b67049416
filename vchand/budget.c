/* SPDX-License-Identifier: MIT */
/*
 * budget: per-peer and global memory budgets (see budget.h).
 */
#include "budget.h"

#include <assert.h>
#include <errno.h>

#include "link.h"

bool budget_check(const Peer *p, uint64_t bytes)
{
        const Bus *b = p->bus;
        uint64_t share;

        if (p->mem_held + bytes > b->config.peer_memory)
                return false;
        if (b->mem_held + bytes <= b->config.max_memory)
                return true;
        /* The share is per link: an agent's sessions (peer.h) share their link's, so opening
         * sessions does not multiply what one guest may hold once memory is short. */
        share = b->config.max_memory / (b->n_peers ? b->n_peers : 1);
        return (p->parent ? p->parent : p)->link_mem_held + bytes <= share;
}

int budget_charge(Peer *p, uint64_t bytes)
{
        if (!budget_check(p, bytes))
                return -ENOBUFS;
        p->mem_held += bytes;
        peer_link_owner(p)->link_mem_held += bytes;
        p->bus->mem_held += bytes;
        return 0;
}

void budget_release(Peer *p, uint64_t bytes)
{
        assert(p->mem_held >= bytes && p->bus->mem_held >= bytes);
        p->mem_held -= bytes;
        peer_link_owner(p)->link_mem_held -= bytes;
        p->bus->mem_held -= bytes;
}

bool budget_backlog_room(const Peer *q, size_t size)
{
        /* ep.lk: an agent session's link is its link peer's (NULL only before the endpoint
         * is set up: then its own). */
        const VbusLink *l = q->ep.lk ? q->ep.lk : &q->ep.link;

        return l->n_backlog + size <= VBUS_LINK_BACKLOG_MAX * LIMIT_BACKLOG_NEW_SHARE_PERCENT / 100;
}

uint64_t budget_call_deadline(const Bus *b, uint64_t timeout_us)
{
        uint64_t max_us = (uint64_t)b->config.max_call_timeout_ms * 1000u;

        if (timeout_us == 0 || timeout_us > max_us)
                timeout_us = max_us;
        return bus_now_us() + timeout_us;
}

static uint32_t ring_pages(size_t size)
{
        /* Rings below a page live in the control page (vchan-ring.h). */
        return size >= 4096 ? (uint32_t)(size / 4096) : 0;
}

int budget_admit_rings(const Bus *b, size_t read_size, size_t write_size)
{
        size_t max = (size_t)1 << b->config.max_ring_order;
        uint32_t pages = 1 + ring_pages(read_size) + ring_pages(write_size);
        uint32_t share = b->config.max_grant_mappings / (b->n_guests + 1);

        if (read_size > max || write_size > max)
                return -E2BIG;
        if ((uint64_t)b->n_grant_pages + pages > b->config.max_grant_mappings && pages > share)
                return -ENOSPC;
        return (int)pages;
}

void budget_charge_rings(Peer *p, uint32_t pages)
{
        p->grant_pages = pages;
        p->bus->n_grant_pages += pages;
        p->bus->n_guests++;
}

void budget_release_rings(Peer *p)
{
        if (!p->grant_pages)
                return;
        p->bus->n_grant_pages -= p->grant_pages;
        p->bus->n_guests--;
        p->grant_pages = 0;
}
