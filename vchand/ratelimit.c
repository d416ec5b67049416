/* SPDX-License-Identifier: MIT */
/*
 * ratelimit: per-source log budgets (see ratelimit.h).
 */
#include "ratelimit.h"

static uint32_t slot_of(uint64_t key)
{
        /* Fibonacci hashing: domids and pids are small and dense. */
        return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) % LIMIT_LOG_SOURCES;
}

bool ratelimit_allow(RateLimit *rl, uint64_t key, uint64_t now_us, uint32_t *ret_suppressed)
{
        RateSlot *s = &rl->slots[slot_of(key)];

        *ret_suppressed = 0;
        if (s->key != key || s->window_us == 0) {
                *s = (RateSlot){.key = key, .window_us = now_us ? now_us : 1};
        } else if (now_us - s->window_us >= 60 * 1000000ull) {
                *ret_suppressed = s->suppressed;
                s->window_us = now_us;
                s->n = 0;
                s->suppressed = 0;
        }
        if (s->n >= LIMIT_LOG_PER_MINUTE) {
                s->suppressed++;
                return false;
        }
        s->n++;
        return true;
}
