/* SPDX-License-Identifier: MIT */
/*
 * map: a keyed hash table of named entries (see map.h). SipHash-1-3 (Aumasson and Bernstein),
 * 64-bit output, key from getrandom(); chains in power-of-two buckets.
 */
#include "map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void sip_round(uint64_t v[4])
{
        v[0] += v[1];
        v[1] = ROTL(v[1], 13);
        v[1] ^= v[0];
        v[0] = ROTL(v[0], 32);
        v[2] += v[3];
        v[3] = ROTL(v[3], 16);
        v[3] ^= v[2];
        v[0] += v[3];
        v[3] = ROTL(v[3], 21);
        v[3] ^= v[0];
        v[2] += v[1];
        v[1] = ROTL(v[1], 17);
        v[1] ^= v[2];
        v[2] = ROTL(v[2], 32);
}

static uint64_t load64(const uint8_t *p, size_t n)
{
        uint64_t x = 0;

        for (size_t i = 0; i < n; i++)
                x |= (uint64_t)p[i] << (8 * i);
        return x;
}

static uint64_t siphash13(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
        const uint8_t *p = data;
        uint64_t v[4] = {k0 ^ 0x736f6d6570736575ull, k1 ^ 0x646f72616e646f6dull,
                         k0 ^ 0x6c7967656e657261ull, k1 ^ 0x7465646279746573ull};
        uint64_t b = (uint64_t)len << 56, m;
        size_t i;

        for (i = 0; i + 8 <= len; i += 8) {
                m = load64(p + i, 8);
                v[3] ^= m;
                sip_round(v);
                v[0] ^= m;
        }
        b |= load64(p + i, len - i);
        v[3] ^= b;
        sip_round(v);
        v[0] ^= b;
        v[2] ^= 0xff;
        sip_round(v);
        sip_round(v);
        sip_round(v);
        return v[0] ^ v[1] ^ v[2] ^ v[3];
}

int map_init(Map *m)
{
        uint64_t k[2];

        *m = (Map){0};
        if (getrandom(k, sizeof(k), GRND_NONBLOCK) != (ssize_t)sizeof(k)) {
                /* No entropy yet (early boot): a weaker key still differs per process. */
                struct timespec ts;

                clock_gettime(CLOCK_MONOTONIC, &ts);
                k[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)m;
                k[1] = (uint64_t)ts.tv_sec ^ (uint64_t)getpid() << 32;
        }
        m->k0 = k[0];
        m->k1 = k[1];
        return 0;
}

void map_deinit(Map *m)
{
        free(m->buckets);
        m->buckets = NULL;
        m->n_buckets = m->n_entries = 0;
}

MapEntry *map_find(const Map *m, const char *key, size_t len)
{
        uint64_t h;

        if (m->n_buckets == 0)
                return NULL;
        h = siphash13(m->k0, m->k1, key, len);
        for (MapEntry *e = m->buckets[h & (m->n_buckets - 1)]; e; e = e->next)
                if (e->hash == h && e->n_key == len && memcmp(e->key, key, len) == 0)
                        return e;
        return NULL;
}

static int map_grow(Map *m)
{
        size_t n = m->n_buckets ? m->n_buckets * 2 : 16;
        MapEntry **b = calloc(n, sizeof(*b));

        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_buckets; i++) {
                MapEntry *e = m->buckets[i], *next;

                for (; e; e = next) {
                        next = e->next;
                        e->next = b[e->hash & (n - 1)];
                        b[e->hash & (n - 1)] = e;
                }
        }
        free(m->buckets);
        m->buckets = b;
        m->n_buckets = n;
        return 0;
}

int map_add(Map *m, MapEntry *e, const char *key, size_t len)
{
        MapEntry **head;

        if (map_find(m, key, len))
                return -EEXIST;
        if (m->n_entries >= m->n_buckets && map_grow(m) < 0 && m->n_buckets == 0)
                return -ENOMEM; /* a full table still takes entries, in longer chains */
        e->hash = siphash13(m->k0, m->k1, key, len);
        e->key = key;
        e->n_key = len;
        head = &m->buckets[e->hash & (m->n_buckets - 1)];
        e->next = *head;
        *head = e;
        m->n_entries++;
        return 0;
}

void map_remove(Map *m, MapEntry *e)
{
        MapEntry **pp = &m->buckets[e->hash & (m->n_buckets - 1)];

        while (*pp && *pp != e)
                pp = &(*pp)->next;
        if (*pp) {
                *pp = e->next;
                m->n_entries--;
        }
        e->next = NULL;
}
