/* SPDX-License-Identifier: MIT */
/*
 * ratelimit: how many log lines each source of trouble may cause, per minute. A source is what
 * outlives a link: a guest's domain, or a local process (a peer that reconnects in a loop is a
 * new Peer each time, so a per-peer budget would start afresh on every connection).
 *
 * A fixed table of LIMIT_LOG_SOURCES slots, chosen by a hash of the source's key: a source that
 * finds its slot held by another takes it over with a fresh budget. Only log lines depend on it,
 * so the worst a collision does is let two sources' lines through at twice the rate; the table
 * never grows, whatever the peers do.
 */
#ifndef VCHAND_RATELIMIT_H
#define VCHAND_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "vchand-limits.h"

typedef struct RateSlot {
        uint64_t key;
        uint64_t window_us; /* start of the current minute */
        uint32_t n;         /* lines let through in it */
        uint32_t suppressed;
} RateSlot;

typedef struct RateLimit {
        RateSlot slots[LIMIT_LOG_SOURCES];
} RateLimit;

/* Keys: a domain's id, or a local process. */
static inline uint64_t ratelimit_key_domain(uint32_t domid)
{
        return domid;
}

static inline uint64_t ratelimit_key_local(uint32_t pid)
{
        return (1ull << 32) | pid;
}

/**
 * ratelimit_allow() - whether one more line of @key may be logged at @now_us.
 * @ret_suppressed: written when a new minute starts with lines of the last one suppressed (so
 *                  the caller can say how many); 0 otherwise.
 * Return: true to log it.
 */
bool ratelimit_allow(RateLimit *rl, uint64_t key, uint64_t now_us, uint32_t *ret_suppressed);

#endif /* VCHAND_RATELIMIT_H */
