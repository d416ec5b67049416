/* SPDX-License-Identifier: MIT */
/*
 * metrics: the call latency histograms of the broker, one per service, and the helpers of the
 * Prometheus text exposition (format 0.0.4) that admin.c writes from all of the broker's
 * counters. rpc.c reports each call that ends (metrics_call_observe), with the time from the
 * caller's OPEN to the call's end and whether it ended OK.
 *
 * Service names are chosen by peers, so the number of histograms is bounded:
 * LIMIT_METRICS_SERVICES services get their own, the calls of any other are counted under
 * service="_other". A service's histogram stays after its servers went (Prometheus counters do
 * not go backwards while the broker runs).
 */
#ifndef VCHAND_METRICS_H
#define VCHAND_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bus.h"

/* The service label of the calls of services past LIMIT_METRICS_SERVICES. */
#define METRICS_OTHER_SERVICE "_other"

/* Sets up b->metrics. Return: 0 or -ENOMEM. */
int metrics_new(Bus *b);
/* Frees it; accepts a bus without one. */
void metrics_free(Bus *b);

/* A call to @service (@n bytes) ended, OK or not (@ok), @latency_us after its OPEN. */
void metrics_call_observe(Bus *b, const char *service, size_t n, bool ok, uint64_t latency_us);

/* Writes the families vbus_call_duration_seconds (histogram) and vbus_calls_finished_total
 * (counter, by service and outcome) to @f. */
void metrics_write_calls(const Bus *b, FILE *f);

/* Writes @s as a label value: \\, \" and \n escaped, as the format requires. */
void metrics_write_label_value(FILE *f, const char *s);

#endif /* VCHAND_METRICS_H */
