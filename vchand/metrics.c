/* SPDX-License-Identifier: MIT */
/*
 * metrics: call latency histograms per service (see metrics.h).
 *
 * A histogram is kept as counts per bucket (not cumulative) and summed when written, so an
 * observation costs one bucket search over METRICS_N_BUCKETS bounds and three increments.
 */
#include "metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "util/list.h"
#include "vchand-limits.h"

/* Upper bounds of the buckets, in microseconds (the exposition prints them in seconds). */
static const uint64_t bucket_us[] = {
        100,   250,    500,    1000,   2500,    5000,    10000,   25000,
        50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

enum {
        METRICS_N_BUCKETS = sizeof(bucket_us) / sizeof(bucket_us[0]),
};

typedef struct CallHist {
        MapEntry entry; /* in metrics->by_name, except for the _other one */
        List link;      /* in metrics->list, in order of creation */
        char *name;
        uint64_t buckets[METRICS_N_BUCKETS + 1]; /* the last one: above every bound */
        uint64_t sum_us;
        uint64_t n_ok, n_failed;
} CallHist;

struct Metrics {
        Map by_name;
        List list;
        uint32_t n_hists;
        CallHist other;
};

int metrics_new(Bus *b)
{
        Metrics *m = calloc(1, sizeof(*m));

        if (!m)
                return -ENOMEM;
        (void)map_init(&m->by_name);
        list_init(&m->list);
        m->other.name = (char *)METRICS_OTHER_SERVICE;
        b->metrics = m;
        return 0;
}

void metrics_free(Bus *b)
{
        Metrics *m = b->metrics;
        List *pos, *tmp;

        if (!m)
                return;
        list_for_each_safe(pos, tmp, &m->list)
        {
                CallHist *h = list_entry(pos, CallHist, link);

                free(h->name);
                free(h);
        }
        map_deinit(&m->by_name);
        free(m);
        b->metrics = NULL;
}

/* The histogram of @service, made on first use; the _other one past the limit or without
 * memory. */
static CallHist *hist_get(Metrics *m, const char *service, size_t n)
{
        MapEntry *e = map_find(&m->by_name, service, n);
        CallHist *h;

        if (e)
                return container_of(e, CallHist, entry);
        if (m->n_hists >= LIMIT_METRICS_SERVICES)
                return &m->other;
        h = calloc(1, sizeof(*h));
        if (!h || !(h->name = strndup(service, n))) {
                free(h);
                return &m->other;
        }
        if (map_add(&m->by_name, &h->entry, h->name, n) < 0) {
                free(h->name);
                free(h);
                return &m->other;
        }
        list_add_tail(&m->list, &h->link);
        m->n_hists++;
        return h;
}

void metrics_call_observe(Bus *b, const char *service, size_t n, bool ok, uint64_t latency_us)
{
        CallHist *h;
        size_t i = 0;

        if (!b->metrics)
                return;
        h = hist_get(b->metrics, service, n);
        while (i < METRICS_N_BUCKETS && latency_us > bucket_us[i])
                i++;
        h->buckets[i]++;
        h->sum_us += latency_us;
        if (ok)
                h->n_ok++;
        else
                h->n_failed++;
}

void metrics_write_label_value(FILE *f, const char *s)
{
        for (; *s; s++) {
                if (*s == '\\')
                        fputs("\\\\", f);
                else if (*s == '"')
                        fputs("\\\"", f);
                else if (*s == '\n')
                        fputs("\\n", f);
                else
                        fputc(*s, f);
        }
}

static void hist_write(const CallHist *h, FILE *f)
{
        uint64_t cum = 0;

        for (size_t i = 0; i <= METRICS_N_BUCKETS; i++) {
                cum += h->buckets[i];
                fprintf(f, "vbus_call_duration_seconds_bucket{service=\"");
                metrics_write_label_value(f, h->name);
                if (i < METRICS_N_BUCKETS)
                        fprintf(f, "\",le=\"%g\"} %llu\n", (double)bucket_us[i] / 1e6,
                                (unsigned long long)cum);
                else
                        fprintf(f, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        fprintf(f, "vbus_call_duration_seconds_sum{service=\"");
        metrics_write_label_value(f, h->name);
        fprintf(f, "\"} %.6f\n", (double)h->sum_us / 1e6);
        fprintf(f, "vbus_call_duration_seconds_count{service=\"");
        metrics_write_label_value(f, h->name);
        fprintf(f, "\"} %llu\n", (unsigned long long)cum);
}

static void finished_write(const CallHist *h, FILE *f)
{
        fprintf(f, "vbus_calls_finished_total{service=\"");
        metrics_write_label_value(f, h->name);
        fprintf(f, "\",outcome=\"ok\"} %llu\n", (unsigned long long)h->n_ok);
        fprintf(f, "vbus_calls_finished_total{service=\"");
        metrics_write_label_value(f, h->name);
        fprintf(f, "\",outcome=\"error\"} %llu\n", (unsigned long long)h->n_failed);
}

void metrics_write_calls(const Bus *b, FILE *f)
{
        const Metrics *m = b->metrics;
        bool other = m && (m->other.n_ok || m->other.n_failed);

        fprintf(f, "# HELP vbus_call_duration_seconds Time from a call's OPEN to its end, by "
                   "service.\n# TYPE vbus_call_duration_seconds histogram\n");
        if (m) {
                for (const List *pos = m->list.next; pos != &m->list; pos = pos->next)
                        hist_write(list_entry(pos, CallHist, link), f);
                if (other)
                        hist_write(&m->other, f);
        }
        fprintf(f, "# HELP vbus_calls_finished_total Calls that ended, by service and outcome.\n"
                   "# TYPE vbus_calls_finished_total counter\n");
        if (m) {
                for (const List *pos = m->list.next; pos != &m->list; pos = pos->next)
                        finished_write(list_entry(pos, CallHist, link), f);
                if (other)
                        finished_write(&m->other, f);
        }
}
