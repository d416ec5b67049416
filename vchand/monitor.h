/* SPDX-License-Identifier: MIT */
/*
 * monitor: taps on the traffic for vbusctl monitor (vbus.v1.Broker/Monitor, an admin method).
 * pubsub.c reports each message it routes (monitor_publish) and rpc.c each call that ends
 * (monitor_call); every tap whose pattern matches gets a record in its own queue, which
 * introspect.c writes to the monitoring caller as its window allows.
 *
 * A monitor never slows the traffic it watches: a record that finds its tap's queue full
 * (LIMIT_MONITOR_QUEUE) is dropped and counted, in the tap (reported to the monitor in the next
 * event's `dropped`) and in the bus (stats.n_monitor_dropped). The queue's memory is charged to
 * the monitoring peer's budget (budget.h), so a monitor is bounded like any subscriber: a queue
 * its budget cannot grow is full. With no tap, each report is one test of an empty list. At most
 * LIMIT_MONITORS taps exist at once.
 *
 * Patterns are topic patterns ('*' one token, '>' the rest); a call matches by its service name
 * (the part of "service/method" before the '/').
 */
#ifndef VCHAND_MONITOR_H
#define VCHAND_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peer.h"

typedef struct MonitorTap MonitorTap;

enum {
        MONITOR_NAME_MAX = 2 * 255 + 1, /* "service/method" */
};

/* One event, as it waits in a tap's queue. */
typedef struct MonitorRecord {
        uint8_t kind; /* vbus.v1.MonitorEvent.Kind */
        int32_t status;
        uint32_t deliveries;
        uint64_t size;
        uint64_t latency_us;
        uint64_t sender_id;
        uint64_t time_unix_us;
        char sender[96];
        char name[MONITOR_NAME_MAX + 1];
} MonitorRecord;

/**
 * monitor_tap_add() - a tap for @watcher, who is told (peer_mark_dirty) when records wait.
 * @pattern: copied. @watcher: borrowed until monitor_tap_remove().
 * Return: 0 and the tap in *ret; -EBUSY (LIMIT_MONITORS taps exist); -EINVAL (not a topic
 * pattern); -ENOMEM.
 */
int monitor_tap_add(Bus *b, Peer *watcher, const char *pattern, MonitorTap **ret);

/* Removes and frees @tap and what it holds. Accepts NULL. */
void monitor_tap_remove(MonitorTap *tap);

/* The oldest record waiting in @tap, or NULL; it stays until monitor_tap_pop(). */
const MonitorRecord *monitor_tap_peek(const MonitorTap *tap);

/* The oldest record was sent, with the count of records lost so far: both go. */
void monitor_tap_pop(MonitorTap *tap);

/* Records @tap lost (its queue was full) since the last monitor_tap_pop(). */
uint64_t monitor_tap_get_dropped(const MonitorTap *tap);

static inline bool monitor_is_active(const Bus *b)
{
        return !list_is_empty(&b->monitors);
}

/* A message of @size bytes from @sender on @topic (@n_topic bytes) reached @deliveries
 * subscriptions (delivered or queued). */
void monitor_publish(Bus *b, const Peer *sender, const char *topic, size_t n_topic, size_t size,
                     uint32_t deliveries);

/* A call to @method by @caller_label (@caller_id) ended with @status after @latency_us; its
 * request was @size bytes. */
void monitor_call(Bus *b, const char *caller_label, uint64_t caller_id, const char *method,
                  uint64_t size, int status, uint64_t latency_us);

/* True if the topic pattern @pattern matches @name (@n bytes), token by token. */
bool monitor_match(const char *pattern, const char *name, size_t n);

#endif /* VCHAND_MONITOR_H */
