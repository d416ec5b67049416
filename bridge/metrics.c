/* SPDX-License-Identifier: MIT */
/*
 * metrics: the bridge's counters in a simple text form, printed on SIGUSR1 and at exit:
 *
 *   # vbus-bridge metrics host=<host> uptime_s=<n>
 *   <name> <value>          (one line per counter, names as below, values decimal)
 *   # end
 *
 * The names and their meaning are documented in docs/federation.md ("Metrics"); new counters
 * are added at the end, existing ones never change meaning.
 */
#include <inttypes.h>
#include <stdio.h>

#include "bridge.h"

void metrics_print(const Bridge *b, FILE *f)
{
        const Metrics *m = &b->m;
        const struct {
                const char *name;
                uint64_t value;
        } rows[] = {
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

        fprintf(f, "# vbus-bridge metrics host=%s uptime_s=%" PRIu64 "\n", b->cfg->host,
                (bridge_now_usec() - b->started_usec) / 1000000);
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
                fprintf(f, "%s %" PRIu64 "\n", rows[i].name, rows[i].value);
        fprintf(f, "# end\n");
        fflush(f);
}
