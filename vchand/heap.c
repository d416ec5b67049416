/* SPDX-License-Identifier: MIT */
/*
 * heap: the broker's allocator thresholds and its release of free memory when quiet (heap.h).
 * Only glibc's malloc has these knobs; with another C library both functions do nothing.
 */
#include "heap.h"

#include <stdbool.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "vchand-limits.h"

void heap_tune(void)
{
#if defined(__GLIBC__)
        /* Setting one threshold turns glibc's adaptive thresholds off, so both are set: freed
         * memory at the top of the heap is kept up to LIMIT_HEAP_KEEP, and every allocation up
         * to LIMIT_HEAP_MMAP (a reassembled message of max_message, an admin reply) comes from
         * the heap rather than from an mmap() of its own, paid again in page faults each time. */
        (void)mallopt(M_TRIM_THRESHOLD, LIMIT_HEAP_KEEP);
        (void)mallopt(M_MMAP_THRESHOLD, LIMIT_HEAP_MMAP);
#endif
}

void heap_tick(uint64_t activity)
{
        static uint64_t last;
        static bool released = true;

        if (activity != last) {
                last = activity;
                released = false;
                return;
        }
        if (released)
                return;
        released = true;
#if defined(__GLIBC__)
        (void)malloc_trim(0);
#endif
}
