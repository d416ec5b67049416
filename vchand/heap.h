/* SPDX-License-Identifier: MIT */
/*
 * heap: how the broker's allocator keeps and returns memory (docs/dataplane.md, "The heap").
 *
 * The broker allocates and frees a copy of every large message and of every batch it routes.
 * Left to its defaults, glibc's malloc gives the top of the heap back to the kernel whenever
 * more than 128 KiB of it is free, and the next message takes it back page by page: under
 * steady traffic one page fault per 4 KiB routed, which doubled the broker's CPU per message in
 * bench/pubsub. So the heap keeps up to LIMIT_HEAP_KEEP of freed memory while traffic flows, and
 * gives everything free back once the bus has been quiet for a tick.
 */
#ifndef VCHAND_HEAP_H
#define VCHAND_HEAP_H

#include <stdint.h>

/* Sets the allocator's thresholds (at start, before anything is allocated in earnest). */
void heap_tune(void);

/*
 * Called at every housekeeping tick with a count that grows with traffic (the broker: messages
 * published, delivered, calls; the agent: frames relayed): once it stops moving for a whole
 * tick, the free memory the heap kept goes back to the kernel, once per quiet spell.
 */
void heap_tick(uint64_t activity);

#endif /* VCHAND_HEAP_H */
