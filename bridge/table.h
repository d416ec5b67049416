/* SPDX-License-Identifier: MIT */
/*
 * table: a string-keyed hash table with chaining, for the bridge's per-subject and per-topic
 * state. The caller bounds its size (limits.h); the table only grows its bucket array. Keys are
 * copied; values are borrowed pointers the caller owns.
 */
#ifndef VBUS_BRIDGE_TABLE_H
#define VBUS_BRIDGE_TABLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct TableEntry {
        struct TableEntry *next;
        uint64_t hash;
        void *value;
        char key[];
} TableEntry;

typedef struct Table {
        TableEntry **buckets;
        size_t n_buckets; /* a power of two, or 0 before the first insertion */
        size_t n;
} Table;

/* table_find() - the entry for @key, or NULL. */
TableEntry *table_find(Table *t, const char *key);

/* table_insert() - add @key (not present yet) with @value. Return: the entry, or NULL (ENOMEM). */
TableEntry *table_insert(Table *t, const char *key, void *value);

/* table_remove() - unlink and free @e (its value is the caller's). */
void table_remove(Table *t, TableEntry *e);

/* table_clear() - free every entry, calling @free_value (may be NULL) on each value, and the
 * buckets. The table is then empty and usable. */
void table_clear(Table *t, void (*free_value)(void *value));

/* Iterates over every entry; do not insert or remove meanwhile. */
#define table_for_each(e, t, i)                                                                    \
        for ((i) = 0; (i) < (t)->n_buckets; (i)++)                                                 \
                for ((e) = (t)->buckets[i]; (e); (e) = (e)->next)

#endif /* VBUS_BRIDGE_TABLE_H */
