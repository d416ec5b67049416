/* SPDX-License-Identifier: MIT */
/*
 * map: a hash table of named entries, keyed by byte strings. Intrusive: embed a MapEntry in each
 * element; the map owns only its bucket array. Names come from peers, so the hash is keyed
 * (SipHash-1-3 with a random key per map): a peer cannot choose names that collide to turn a
 * lookup into a scan. Chains are unbounded only in theory; the table doubles at load 1.
 */
#ifndef VCHAND_MAP_H
#define VCHAND_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct MapEntry {
        struct MapEntry *next;
        uint64_t hash;
        const char *key; /* borrowed from the element, which keeps it while in the map */
        size_t n_key;
} MapEntry;

typedef struct Map {
        MapEntry **buckets;
        size_t n_buckets; /* a power of two, or 0 before the first add */
        size_t n_entries;
        uint64_t k0, k1; /* the hash key */
} Map;

/* An empty map with a fresh random hash key. Return: 0 (cannot fail). */
int map_init(Map *m);

/* Frees the buckets; the entries are their owners' (remove them first, or drop them). */
void map_deinit(Map *m);

/* The entry with key @key (@len bytes), or NULL. Borrowed. */
MapEntry *map_find(const Map *m, const char *key, size_t len);

/**
 * map_add() - add @e under @key.
 * @key, @len: borrowed until map_remove(): @e's owner keeps them.
 * Return: 0, -EEXIST (the key is there: nothing added), -ENOMEM.
 */
int map_add(Map *m, MapEntry *e, const char *key, size_t len);

/* Removes @e, which must be in @m. */
void map_remove(Map *m, MapEntry *e);

#endif /* VCHAND_MAP_H */
