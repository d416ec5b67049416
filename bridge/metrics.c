/* SPDX-License-Identifier: MIT */
/*
 * metrics: the bridge's counters in a simple text form, printed on SIGUSR1 and at exit:
 *
 *   # vbus-bridge metrics host=<host> uptime_s=<n>
 *   <name> <value>          (one line per counter, names as below, values decimal)
 *   # end
 *
 * or, with --metrics-format prom, in the Prometheus text exposition format (0.0.4), for a
 * textfile collector: each counter as vbus_bridge_<name>_total{host="<host>"}, and
 * vbus_bridge_uptime_seconds.
 *
 * The names and their meaning are documented in docs/federation.md ("Metrics"); new counters
 * are added at the end, existing ones never change meaning.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>

#include "bridge.h"

typedef struct Row {
        const char *name;
        uint64_t value;
} Row;

/* A host name as a Prometheus label value: \\, \" and newlines escaped. */
static void print_label_value(FILE *f, const char *s)
{
        for (; *s; s++) {
                if (*s == '\\' || *s == '"')
                        fputc('\\', f);
                if (*s == '\n')
                        fputs("\\n", f);
                else
                        fputc(*s, f);
        }
}

static void print_prom(const Bridge *b, FILE *f, const Row *rows, size_t n_rows)
{
        fprintf(f, "# HELP vbus_bridge_uptime_seconds Time since the bridge started.\n"
                   "# TYPE vbus_bridge_uptime_seconds gauge\nvbus_bridge_uptime_seconds{host=\"");
        print_label_value(f, b->cfg->host);
        fprintf(f, "\"} %.3f\n", (double)(bridge_now_usec() - b->started_usec) / 1e6);
        for (size_t i = 0; i < n_rows; i++) {
                fprintf(f,
                        "# HELP vbus_bridge_%s_total The bridge's %s counter (docs/federation.md, "
                        "Metrics).\n# TYPE vbus_bridge_%s_total counter\n"
                        "vbus_bridge_%s_total{host=\"",
                        rows[i].name, rows[i].name, rows[i].name, rows[i].name);
                print_label_value(f, b->cfg->host);
                fprintf(f, "\"} %" PRIu64 "\n", rows[i].value);
        }
}

void metrics_print(const Bridge *b, FILE *f, bool prom)
{
        const Metrics *m = &b->m;
        const Row rows[] = {
                {"exported_messages", m->exported_messages},
                {"exported_bytes", m->exported_bytes},
                {"export_failed", m->export_failed},
                {"export_origin_dropped", m->export_origin_dropped},
                {"export_skipped_imports", m->export_skipped_imports},
                {"imported_messages", m->imported_messages},
                {"imported_bytes", m->imported_bytes},
                {"import_gaps", m->import_gaps},
                {"import_lost", m->import_lost},
                {"import_unknown_gaps", m->import_unknown},
                {"import_local_dropped", m->import_local_dropped},
                {"import_invalid", m->import_invalid},
                {"forged_seen", m->forged_seen},
                {"rpc_out_calls", m->rpc_out_calls},
                {"rpc_out_ok", m->rpc_out_ok},
                {"rpc_out_failed", m->rpc_out_failed},
                {"rpc_out_no_responders", m->rpc_out_no_responders},
                {"rpc_out_deadline_exceeded", m->rpc_out_deadline},
                {"rpc_out_cancelled", m->rpc_out_cancelled},
                {"rpc_in_calls", m->rpc_in_calls},
                {"rpc_in_ok", m->rpc_in_ok},
                {"rpc_in_failed", m->rpc_in_failed},
                {"rpc_in_cancelled", m->rpc_in_cancelled},
                {"rpc_in_refused", m->rpc_in_refused},
                {"nats_disconnects", atomic_load(&m->nats_disconnects)},
                {"nats_reconnects", atomic_load(&m->nats_reconnects)},
                {"nats_slow_consumer", atomic_load(&m->nats_slow_consumer)},
                {"nats_errors", atomic_load(&m->nats_errors)},
                {"queue_waits", atomic_load(&m->queue_waits)},
        };

        if (prom) {
                print_prom(b, f, rows, sizeof(rows) / sizeof(rows[0]));
                (void)fflush(f);
                return;
        }
        fprintf(f, "# vbus-bridge metrics host=%s uptime_s=%" PRIu64 "\n", b->cfg->host,
                (bridge_now_usec() - b->started_usec) / 1000000);
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
                fprintf(f, "%s %" PRIu64 "\n", rows[i].name, rows[i].value);
        fprintf(f, "# end\n");
        /* A file's write error is reported by the caller's fclose(); stderr's has nowhere to go. */
        (void)fflush(f);
}
