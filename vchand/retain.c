/* SPDX-License-Identifier: MIT */
/*
 * retain: retained values (see retain.h). Each Retained is in the topic map and in the list
 * in insertion order; each Owner (one per identity that holds values) is in the owner map and
 * counts what its values are charged. Invariants: table.bytes is the sum of the values'
 * charges, each Owner's bytes the sum of its values', and an Owner with no value is freed.
 */
#include "retain.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "util/list.h"
#include "vchand-limits.h"

typedef struct Owner {
        MapEntry entry;
        char key[16]; /* "d<domid>" or "u<uid>" */
        uint64_t bytes;
        uint32_t n_values;
        bool gone; /* its domain was destroyed: out of the map, its values orphans */
} Owner;

typedef struct Retained {
        MapEntry entry;
        List link; /* in RetainTable.order */
        Owner *owner;
        uint64_t charge;
        char *topic;
        uint8_t *meta;
        size_t n_meta;
        size_t n_data;
        uint8_t data[];
} Retained;

struct RetainTable {
        Map topics;
        Map owners;
        List order;
        uint32_t n;
        uint64_t bytes;
};

int retain_table_new(Bus *b)
{
        RetainTable *t = calloc(1, sizeof(*t));

        if (!t)
                return -ENOMEM;
        (void)map_init(&t->topics);
        (void)map_init(&t->owners);
        list_init(&t->order);
        b->retained = t;
        return 0;
}

static void owner_release(RetainTable *t, Owner *o, uint64_t charge)
{
        o->bytes -= charge;
        if (--o->n_values == 0) {
                if (!o->gone)
                        map_remove(&t->owners, &o->entry);
                free(o);
        }
}

void retain_domain_gone(Bus *b, uint32_t domid)
{
        RetainTable *t = b->retained;
        char key[16];
        int n = snprintf(key, sizeof(key), "d%u", domid);
        MapEntry *e = t ? map_find(&t->owners, key, (size_t)n) : NULL;
        Owner *o;

        if (!e)
                return;
        o = container_of(e, Owner, entry);
        map_remove(&t->owners, &o->entry);
        o->gone = true;
}

static void retained_free(RetainTable *t, Retained *r)
{
        map_remove(&t->topics, &r->entry);
        list_unlink(&r->link);
        t->n--;
        t->bytes -= r->charge;
        owner_release(t, r->owner, r->charge);
        free(r->topic);
        free(r->meta);
        free(r);
}

void retain_table_free(Bus *b)
{
        RetainTable *t = b->retained;
        List *pos, *tmp;

        if (!t)
                return;
        list_for_each_safe(pos, tmp, &t->order) retained_free(t, list_entry(pos, Retained, link));
        map_deinit(&t->topics);
        map_deinit(&t->owners);
        free(t);
        b->retained = NULL;
}

/* The identity's Owner, made if need be (not yet in the map's count of values). */
static Owner *owner_get(RetainTable *t, const Identity *who)
{
        char key[16];
        int n = snprintf(key, sizeof(key), "%c%u", who->local ? 'u' : 'd',
                         who->local ? who->uid : who->domid);
        MapEntry *e = map_find(&t->owners, key, (size_t)n);
        Owner *o;

        if (e)
                return container_of(e, Owner, entry);
        o = calloc(1, sizeof(*o));
        if (!o)
                return NULL;
        memcpy(o->key, key, (size_t)n + 1);
        if (map_add(&t->owners, &o->entry, o->key, (size_t)n) < 0) {
                free(o);
                return NULL;
        }
        return o;
}

static Retained *retained_find(RetainTable *t, const char *topic)
{
        MapEntry *e = map_find(&t->topics, topic, strlen(topic));

        return e ? container_of(e, Retained, entry) : NULL;
}

/* Checks that @charge more for @o (@old of it released first if @o owns it) fits every bound. */
static int check_bounds(const Bus *b, const RetainTable *t, const Owner *o, const Retained *old,
                        uint64_t charge)
{
        const BrokerConfig *cfg = &b->config;
        uint64_t own = o->bytes - (old && old->owner == o ? old->charge : 0);
        uint64_t all = t->bytes - (old ? old->charge : 0);

        if (own + charge > cfg->peer_retained_bytes)
                return RETAIN_E_OVER_PEER;
        if (!old && t->n >= cfg->retained_max)
                return RETAIN_E_OVER_COUNT;
        if (all + charge > cfg->retained_bytes)
                return RETAIN_E_OVER_BYTES;
        return 0;
}

int retain_set(Bus *b, const Identity *who, const char *topic, const uint8_t *meta, size_t n_meta,
               const uint8_t *data, size_t n)
{
        static const uint8_t retained_field[] = {0x28, 0x01}; /* Meta field 5, varint, true */
        RetainTable *t = b->retained;
        Retained *old = retained_find(t, topic), *r;
        size_t n_topic = strlen(topic);
        uint64_t charge = (uint64_t)n + n_topic + LIMIT_RETAIN_ENTRY_COST;
        Owner *o;
        int rc;

        if (n == 0) {
                if (old)
                        retained_free(t, old);
                return 0;
        }
        o = owner_get(t, who);
        if (!o)
                return -ENOMEM;
        rc = check_bounds(b, t, o, old, charge);
        r = rc ? NULL : malloc(sizeof(*r) + n);
        if (rc == 0 && r) {
                *r = (Retained){.owner = o, .charge = charge, .n_data = n, .n_meta = n_meta + 2};
                r->topic = strdup(topic);
                r->meta = malloc(r->n_meta);
                if (!r->topic || !r->meta) {
                        free(r->topic);
                        free(r->meta);
                        free(r);
                        r = NULL;
                }
        }
        if (!r) {
                if (o->n_values == 0) { /* made for this value: nothing else holds it */
                        map_remove(&t->owners, &o->entry);
                        free(o);
                }
                return rc ? rc : -ENOMEM;
        }
        memcpy(r->data, data, n);
        memcpy(r->meta, meta, n_meta);
        memcpy(r->meta + n_meta, retained_field, sizeof(retained_field));
        o->n_values++;
        o->bytes += charge;
        if (old)
                retained_free(t, old); /* after: @o may be @old's owner, kept alive by r */
        /* Cannot fail: @topic was just removed if it was there, and the bucket array grows
         * only by doubling; on -ENOMEM the value is dropped, counted as never kept. */
        if (map_add(&t->topics, &r->entry, r->topic, n_topic) < 0) {
                owner_release(t, o, charge);
                free(r->topic);
                free(r->meta);
                free(r);
                return -ENOMEM;
        }
        list_add_tail(&t->order, &r->link);
        t->n++;
        t->bytes += charge;
        return 0;
}

void retain_get_usage(const Bus *b, uint32_t *ret_n, uint64_t *ret_bytes)
{
        *ret_n = b->retained ? b->retained->n : 0;
        *ret_bytes = b->retained ? b->retained->bytes : 0;
}

void retain_foreach_match(Bus *b, const char *pattern, int (*fn)(const RetainedValue *v, void *ud),
                          void *ud)
{
        RetainTable *t = b->retained;

        if (!t)
                return;
        for (List *pos = t->order.next; pos != &t->order; pos = pos->next) {
                Retained *r = list_entry(pos, Retained, link);
                RetainedValue v = {.topic = r->topic,
                                   .meta = r->meta,
                                   .n_meta = r->n_meta,
                                   .data = r->data,
                                   .n_data = r->n_data};

                if (retain_pattern_matches(pattern, r->topic) && fn(&v, ud) != 0)
                        return;
        }
}

bool retain_pattern_matches(const char *pattern, const char *topic)
{
        const char *p = pattern, *s = topic;

        for (;;) {
                size_t np = strcspn(p, "."), ns = strcspn(s, ".");

                if (np == 1 && p[0] == '>')
                        return ns > 0; /* one or more tokens left */
                if (!(np == 1 && p[0] == '*') && (np != ns || memcmp(p, s, np) != 0))
                        return false;
                p += np;
                s += ns;
                if (!*p || !*s)
                        return !*p && !*s;
                p++;
                s++;
        }
}
