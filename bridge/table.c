/* SPDX-License-Identifier: MIT */
/*
 * table: string-keyed chained hash table (see table.h). FNV-1a: keys are names the bridge chose
 * or validated, and every table is bounded by its owner, so a poor distribution costs time in a
 * bounded chain, never memory.
 */
#include "table.h"

#include <stdlib.h>
#include <string.h>

static uint64_t table_hash(const char *key)
{
        uint64_t h = 1469598103934665603ull;

        for (; *key; key++) {
                h ^= (uint8_t)*key;
                h *= 1099511628211ull;
        }
        return h;
}

TableEntry *table_find(Table *t, const char *key)
{
        uint64_t h;

        if (t->n_buckets == 0)
                return NULL;
        h = table_hash(key);
        for (TableEntry *e = t->buckets[h & (t->n_buckets - 1)]; e; e = e->next)
                if (e->hash == h && strcmp(e->key, key) == 0)
                        return e;
        return NULL;
}

static int table_grow(Table *t)
{
        size_t n = t->n_buckets ? t->n_buckets * 2 : 64;
        TableEntry **b = calloc(n, sizeof(*b));

        if (!b)
                return -1;
        for (size_t i = 0; i < t->n_buckets; i++) {
                TableEntry *e = t->buckets[i], *next;

                for (; e; e = next) {
                        next = e->next;
                        e->next = b[e->hash & (n - 1)];
                        b[e->hash & (n - 1)] = e;
                }
        }
        free(t->buckets);
        t->buckets = b;
        t->n_buckets = n;
        return 0;
}

TableEntry *table_insert(Table *t, const char *key, void *value)
{
        size_t len = strlen(key);
        TableEntry *e;

        if (t->n >= t->n_buckets && table_grow(t) < 0 && t->n_buckets == 0)
                return NULL;
        e = malloc(sizeof(*e) + len + 1);
        if (!e)
                return NULL;
        memcpy(e->key, key, len + 1);
        e->hash = table_hash(key);
        e->value = value;
        e->next = t->buckets[e->hash & (t->n_buckets - 1)];
        t->buckets[e->hash & (t->n_buckets - 1)] = e;
        t->n++;
        return e;
}

void table_remove(Table *t, TableEntry *e)
{
        TableEntry **p = &t->buckets[e->hash & (t->n_buckets - 1)];

        while (*p != e)
                p = &(*p)->next;
        *p = e->next;
        t->n--;
        free(e);
}

void table_clear(Table *t, void (*free_value)(void *value))
{
        for (size_t i = 0; i < t->n_buckets; i++) {
                TableEntry *e = t->buckets[i], *next;

                for (; e; e = next) {
                        next = e->next;
                        if (free_value)
                                free_value(e->value);
                        free(e);
                }
        }
        free(t->buckets);
        t->buckets = NULL;
        t->n_buckets = 0;
        t->n = 0;
}
