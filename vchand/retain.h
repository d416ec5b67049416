/* SPDX-License-Identifier: MIT */
/*
 * retain: the retained values of topics (docs/protocol.md 6.5). A publisher marks a message
 * RETAIN; the broker keeps the last such message of each topic, and a subscription that begins
 * later gets the retained values of the topics its pattern matches first, each with
 * Meta.retained set. An empty retained message clears the topic's value.
 *
 * Bounds (vchand.conf): retained_max values and retained_bytes bytes over the whole broker, and
 * peer_retained_bytes per publisher identity (a domain, or a local uid: the same budget across
 * its reconnects, since a value outlives the link that set it; a destroyed domain's values are
 * orphaned, retain_domain_gone()). A value is charged its bytes,
 * its topic and LIMIT_RETAIN_ENTRY_COST, so the count per identity is bounded too. A value over
 * a bound is refused (RETAIN_E_OVER) and only its publisher is told; the values already kept
 * stay. The table never parses a payload.
 *
 * The table is keyed by topic (map.h, keyed hash: topics come from peers) and also kept in
 * insertion order for delivery, so a new subscription walks at most retained_max entries.
 */
#ifndef VCHAND_RETAIN_H
#define VCHAND_RETAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"

/* Result codes of retain_set(): positive, so they never mix with -errno. */
enum {
        RETAIN_E_OVER_PEER = 1,  /* over peer_retained_bytes for this identity */
        RETAIN_E_OVER_COUNT = 2, /* over retained_max for the broker */
        RETAIN_E_OVER_BYTES = 3, /* over retained_bytes for the broker */
};

/* One retained value, as a subscription receives it. Borrowed during retain_foreach_match(). */
typedef struct RetainedValue {
        const char *topic;
        const uint8_t *meta; /* packed Meta{topic, sender, retained = true} */
        size_t n_meta;
        const uint8_t *data;
        size_t n_data;
} RetainedValue;

typedef struct RetainTable RetainTable;

/* A new, empty table for @b (b->retained). Return: 0 or -ENOMEM. */
int retain_table_new(Bus *b);

/* Frees every value and the table. Accepts a Bus without one. */
void retain_table_free(Bus *b);

/**
 * retain_set() - keep @data as @topic's retained value, or clear it when @n is 0.
 * @who: the publisher's identity (charged); @meta: its packed Meta{topic, sender} (copied, with
 * the retained field added).
 * Return: 0; RETAIN_E_OVER_* (nothing changed); -ENOMEM (nothing changed).
 */
int retain_set(Bus *b, const Identity *who, const char *topic, const uint8_t *meta, size_t n_meta,
               const uint8_t *data, size_t n);

/* The number of values and the bytes charged for them, for logs and tests. */
void retain_get_usage(const Bus *b, uint32_t *ret_n, uint64_t *ret_bytes);

/* Calls @fn for each retained value whose topic @pattern matches, oldest first; stops when @fn
 * returns non-zero. */
void retain_foreach_match(Bus *b, const char *pattern, int (*fn)(const RetainedValue *v, void *ud),
                          void *ud);

/* Whether @topic matches @pattern (docs/protocol.md section 6: '*' one token, a final '>' one or
 * more). Both are valid names (name.c). */
bool retain_pattern_matches(const char *pattern, const char *topic);

/*
 * retain_domain_gone() - domain @domid was destroyed: the values it set stay (a retained value
 * outlives its publisher) but are no longer charged to "domain @domid", so that a new domain
 * given the same domid starts with an empty peer_retained_bytes budget. They still count against
 * the broker's retained_max and retained_bytes until replaced or cleared.
 */
void retain_domain_gone(Bus *b, uint32_t domid);

#endif /* VCHAND_RETAIN_H */
