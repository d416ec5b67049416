/* SPDX-License-Identifier: MIT */
/*
 * monitor: taps on the traffic (see monitor.h).
 *
 * A tap's queue is a ring of MonitorRecords that grows by doubling up to LIMIT_MONITOR_QUEUE, so
 * an idle monitor costs little memory and a busy one is bounded. The ring is charged to the
 * watcher (budget.h), like a subscriber's queue: a growth its budget refuses leaves the ring as
 * it is, full, and the record is dropped and counted as any other the monitor was too slow for.
 */
#include "monitor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "budget.h"
#include "name.h"
#include "vbus/v1/broker.pb-c.h"
#include "vchand-limits.h"

struct MonitorTap {
        List link; /* in bus->monitors */
        Bus *bus;
        Peer *watcher;
        char *pattern;
        MonitorRecord *ring;
        uint32_t cap, head, n;
        uint64_t dropped;
        uint64_t charged; /* to the watcher: the ring */
};

int monitor_tap_add(Bus *b, Peer *watcher, const char *pattern, MonitorTap **ret)
{
        uint32_t n_taps = 0;
        MonitorTap *tap;

        for (List *pos = b->monitors.next; pos != &b->monitors; pos = pos->next)
                n_taps++;
        if (n_taps >= LIMIT_MONITORS)
                return -EBUSY;
        if (!vbus__name_is_pattern(pattern, strlen(pattern)))
                return -EINVAL;
        tap = calloc(1, sizeof(*tap));
        if (!tap || !(tap->pattern = strdup(pattern))) {
                free(tap);
                return -ENOMEM;
        }
        tap->bus = b;
        tap->watcher = watcher;
        list_add_tail(&b->monitors, &tap->link);
        *ret = tap;
        return 0;
}

void monitor_tap_remove(MonitorTap *tap)
{
        if (!tap)
                return;
        list_unlink(&tap->link);
        budget_release(tap->watcher, tap->charged);
        free(tap->pattern);
        free(tap->ring);
        free(tap);
}

const MonitorRecord *monitor_tap_peek(const MonitorTap *tap)
{
        return tap->n ? &tap->ring[tap->head] : NULL;
}

void monitor_tap_pop(MonitorTap *tap)
{
        if (!tap->n)
                return;
        tap->head = (tap->head + 1) % tap->cap;
        tap->n--;
        tap->dropped = 0;
}

uint64_t monitor_tap_get_dropped(const MonitorTap *tap)
{
        return tap->dropped;
}

/* Doubles the ring, keeping the order. Return: 0, -ENOBUFS (the watcher's budget refused it) or
 * -ENOMEM. */
static int tap_grow(MonitorTap *tap)
{
        uint32_t cap = tap->cap ? tap->cap * 2 : 64;
        uint64_t more;
        MonitorRecord *ring;

        if (cap > LIMIT_MONITOR_QUEUE)
                cap = LIMIT_MONITOR_QUEUE;
        more = (uint64_t)(cap - tap->cap) * sizeof(*ring);
        if (budget_charge(tap->watcher, more) < 0)
                return -ENOBUFS;
        ring = malloc((size_t)cap * sizeof(*ring));
        if (!ring) {
                budget_release(tap->watcher, more);
                return -ENOMEM;
        }
        tap->charged += more;
        for (uint32_t i = 0; i < tap->n; i++)
                ring[i] = tap->ring[(tap->head + i) % tap->cap];
        free(tap->ring);
        tap->ring = ring;
        tap->cap = cap;
        tap->head = 0;
        return 0;
}

/* A slot at the tail of @tap's queue, or NULL (full: the record is counted as dropped). */
static MonitorRecord *tap_push(MonitorTap *tap)
{
        if (tap->n == tap->cap && (tap->cap >= LIMIT_MONITOR_QUEUE || tap_grow(tap) < 0)) {
                tap->dropped++;
                tap->bus->stats.n_monitor_dropped++;
                return NULL;
        }
        tap->bus->stats.n_monitor_events++;
        peer_mark_dirty(tap->watcher);
        return &tap->ring[(tap->head + tap->n++) % tap->cap];
}

static uint64_t wall_us(void)
{
        struct timespec ts;

        (void)clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

bool monitor_match(const char *pattern, const char *name, size_t n)
{
        const char *p = pattern;
        size_t i = 0;

        for (;;) {
                size_t pl = strcspn(p, "."), nl = 0;

                while (i + nl < n && name[i + nl] != '.')
                        nl++;
                if (pl == 1 && p[0] == '>')
                        return i < n;
                if (!(pl == 1 && p[0] == '*') && (pl != nl || memcmp(p, name + i, nl) != 0))
                        return false;
                p += pl;
                i += nl;
                if (*p == '\0' || i >= n)
                        return *p == '\0' && i >= n;
                p++;
                i++;
        }
}

void monitor_publish(Bus *b, const Peer *sender, const char *topic, size_t n_topic, size_t size,
                     uint32_t deliveries)
{
        uint64_t now = 0;

        for (List *pos = b->monitors.next; pos != &b->monitors; pos = pos->next) {
                MonitorTap *tap = list_entry(pos, MonitorTap, link);
                MonitorRecord *r;

                if (!monitor_match(tap->pattern, topic, n_topic) || !(r = tap_push(tap)))
                        continue;
                if (!now)
                        now = wall_us();
                *r = (MonitorRecord){
                        .kind = VBUS__V1__MONITOR_EVENT__KIND__KIND_PUBLISH,
                        .size = size,
                        .deliveries = deliveries,
                        .sender_id = sender->serial,
                        .time_unix_us = now,
                };
                if (n_topic > MONITOR_NAME_MAX)
                        n_topic = MONITOR_NAME_MAX;
                memcpy(r->name, topic, n_topic);
                r->name[n_topic] = '\0';
                memcpy(r->sender, sender->label, sizeof(r->sender));
                r->sender[sizeof(r->sender) - 1] = '\0';
        }
}

void monitor_call(Bus *b, const char *caller_label, uint64_t caller_id, const char *method,
                  uint64_t size, int status, uint64_t latency_us)
{
        size_t n_service = strcspn(method, "/");
        uint64_t now = 0;

        for (List *pos = b->monitors.next; pos != &b->monitors; pos = pos->next) {
                MonitorTap *tap = list_entry(pos, MonitorTap, link);
                MonitorRecord *r;

                if (!monitor_match(tap->pattern, method, n_service) || !(r = tap_push(tap)))
                        continue;
                if (!now)
                        now = wall_us();
                *r = (MonitorRecord){
                        .kind = VBUS__V1__MONITOR_EVENT__KIND__KIND_CALL,
                        .size = size,
                        .status = status,
                        .latency_us = latency_us,
                        .sender_id = caller_id,
                        .time_unix_us = now,
                };
                /* Both fit: a label is shorter than its buffer, a method name is bounded. */
                (void)snprintf(r->name, sizeof(r->name), "%s", method);
                (void)snprintf(r->sender, sizeof(r->sender), "%s", caller_label);
        }
}
