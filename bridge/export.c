/* SPDX-License-Identifier: MIT */
/*
 * export: local topics to NATS. One vbus subscription per export rule; each message is
 * published on <subject-root>.<host>.<topic> with the broker's stamp of its sender in headers,
 * and a sequence number per subject so that importers count what is lost on the way.
 *
 * Invariants: a topic under the import root is never exported, nor anything this bridge
 * published itself (the broker's stamp says so: local, our pid), so imported messages never
 * travel again, whatever the patterns. A sequence number is consumed even when the publish
 * fails, so a failure is a gap the importer counts. What the local broker dropped for our
 * subscription (DROP policy) or lost across a broker reconnect is carried on the next exported
 * message of the same rule (Vbus-Dropped, Vbus-Unknown).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "limits.h"
#include "names.h"

typedef struct ExportRule {
        Bridge *b;
        uint64_t pending_dropped;
        bool pending_unknown;
} ExportRule;

static bool export_is_own(const Bridge *b, const vbus_message *msg)
{
        return vbus_message_is_sender_local(msg) &&
               vbus_message_get_sender_pid(msg) == (uint32_t)b->pid;
}

static uint64_t export_next_seq(Bridge *b, const char *topic)
{
        TableEntry *e = table_find(&b->export_seq, topic);
        uint64_t seq;

        if (!e) {
                if (b->export_seq.n >= BRIDGE_SEQ_SUBJECTS_MAX) {
                        /* A new epoch tells importers to expect an uncounted gap. */
                        table_clear(&b->export_seq, NULL);
                        b->epoch++;
                }
                e = table_insert(&b->export_seq, topic, (void *)(uintptr_t)0);
                if (!e)
                        return 0; /* 0: no sequence (the importer then cannot count) */
        }
        seq = (uint64_t)(uintptr_t)e->value + 1;
        e->value = (void *)(uintptr_t)seq;
        return seq;
}

static void export_on_msg(vbus_subscription *sub, const vbus_message *msg, void *userdata)
{
        ExportRule *rule = userdata;
        Bridge *b = rule->b;
        const Config *c = b->cfg;
        const char *topic = vbus_message_get_topic(msg);
        char subject[2 * BRIDGE_NAME_MAX], num[32], name[3 * (BRIDGE_NAME_MAX + 1)], from[1024];
        const char *sname = vbus_message_get_sender_name(msg);
        bool local = vbus_message_is_sender_local(msg);
        size_t size;
        const void *data = vbus_message_get_data(msg, &size);
        natsMsg *m = NULL;
        natsStatus s;
        uint64_t seq;

        rule->pending_dropped += vbus_message_get_dropped(msg);
        rule->pending_unknown |= vbus_message_follows_gap(msg);
        if (names_has_prefix(topic, c->import_root) || export_is_own(b, msg)) {
                b->m.export_skipped_imports++;
                return;
        }
        snprintf(subject, sizeof(subject), "%s.%s.%s", c->subject_root, c->host, topic);
        seq = export_next_seq(b, topic);
        if (!sname)
                sname = "";
        if (names_pct_encode(sname, strlen(sname), name, sizeof(name)) < 0)
                name[0] = '\0';
        if (local)
                snprintf(from, sizeof(from), "%s:local(uid=%" PRIu32 ")", c->host,
                         vbus_message_get_sender_uid(msg));
        else
                snprintf(from, sizeof(from), "%s:dom%" PRIu32 "(%s)", c->host,
                         vbus_message_get_sender_domid(msg), name);

        s = natsMsg_Create(&m, subject, NULL, data, (int)size);
        if (s == NATS_OK)
                s = natsMsgHeader_Set(m, "Vbus-From", from);
        if (s == NATS_OK)
                s = natsMsgHeader_Set(m, "Vbus-Host", c->host);
        if (s == NATS_OK)
                s = natsMsgHeader_Set(m, "Vbus-Topic", topic);
        snprintf(num, sizeof(num), "%" PRIu32, vbus_message_get_sender_domid(msg));
        if (s == NATS_OK)
                s = natsMsgHeader_Set(m, "Vbus-Domid", num);
        /* An empty header value does not survive libnats' parser: no name, no header. */
        if (s == NATS_OK && name[0])
                s = natsMsgHeader_Set(m, "Vbus-Name", name);
        snprintf(num, sizeof(num), "%" PRIu32, vbus_message_get_sender_uid(msg));
        if (s == NATS_OK)
                s = natsMsgHeader_Set(m, "Vbus-Uid", num);
        if (s == NATS_OK)
                s = natsMsgHeader_Set(m, "Vbus-Local", local ? "1" : "0");
        snprintf(num, sizeof(num), "%" PRIu64, b->epoch);
        if (s == NATS_OK)
                s = natsMsgHeader_Set(m, "Vbus-Epoch", num);
        snprintf(num, sizeof(num), "%" PRIu64, seq);
        if (s == NATS_OK)
                s = natsMsgHeader_Set(m, "Vbus-Seq", num);
        snprintf(num, sizeof(num), "%" PRIu64, rule->pending_dropped);
        if (s == NATS_OK && rule->pending_dropped)
                s = natsMsgHeader_Set(m, "Vbus-Dropped", num);
        if (s == NATS_OK && rule->pending_unknown)
                s = natsMsgHeader_Set(m, "Vbus-Unknown", "1");
        if (s == NATS_OK)
                s = natsConnection_PublishMsg(b->nc, m);
        natsMsg_Destroy(m);
        if (s != NATS_OK) {
                /* The sequence number is spent: importers count this message as lost. */
                b->m.export_failed++;
                return;
        }
        if (rule->pending_dropped) {
                b->m.export_origin_dropped += rule->pending_dropped;
                b->m.export_origin_gaps++;
        }
        rule->pending_dropped = 0;
        rule->pending_unknown = false;
        b->m.exported_messages++;
        b->m.exported_bytes += size;
}

static void forged_on_msg(vbus_subscription *sub, const vbus_message *msg, void *userdata)
{
        Bridge *b = userdata;

        if (vbus_message_is_sender_local(msg) &&
            vbus_message_get_sender_pid(msg) == (uint32_t)b->pid)
                return;
        b->m.forged_seen++;
        /* Logged the first ten times, then every thousandth: a guest can trigger it. */
        if (b->m.forged_seen <= 10 || b->m.forged_seen % 1000 == 0) {
                if (vbus_message_is_sender_local(msg))
                        fprintf(stderr,
                                "vbus-bridge: forged import: local(uid=%" PRIu32 ",pid=%" PRIu32
                                ") published on %s (reserved for this bridge); %" PRIu64
                                " so far\n",
                                vbus_message_get_sender_uid(msg), vbus_message_get_sender_pid(msg),
                                vbus_message_get_topic(msg), b->m.forged_seen);
                else
                        fprintf(stderr,
                                "vbus-bridge: forged import: dom%" PRIu32
                                "(%s) published on %s (reserved for this bridge); %" PRIu64
                                " so far\n",
                                vbus_message_get_sender_domid(msg),
                                vbus_message_get_sender_name(msg), vbus_message_get_topic(msg),
                                b->m.forged_seen);
        }
}

int export_start(Bridge *b)
{
        const Config *c = b->cfg;
        int r;

        b->export_rules = calloc(c->n_exports ? c->n_exports : 1, sizeof(*b->export_rules));
        b->export_subs = calloc(c->n_exports ? c->n_exports : 1, sizeof(*b->export_subs));
        if (!b->export_rules || !b->export_subs)
                return -ENOMEM;
        for (unsigned i = 0; i < c->n_exports; i++) {
                b->export_rules[i].b = b;
                r = vbus_subscribe(b->conn, c->exports[i].pattern, c->exports[i].policy,
                                   export_on_msg, &b->export_rules[i], &b->export_subs[i]);
                if (r < 0) {
                        fprintf(stderr, "vbus-bridge: export %s: %s\n", c->exports[i].pattern,
                                strerror(-r));
                        return r;
                }
        }
        if (c->forged_watch) {
                char pattern[BRIDGE_ROOT_MAX + 3];

                snprintf(pattern, sizeof(pattern), "%s.>", c->import_root);
                r = vbus_subscribe(b->conn, pattern, VBUS_SLOW_DROP, forged_on_msg, b,
                                   &b->forged_sub);
                if (r < 0)
                        return r;
        }
        return 0;
}

void export_stop(Bridge *b)
{
        if (b->export_subs)
                for (unsigned i = 0; i < b->cfg->n_exports; i++)
                        b->export_subs[i] = vbus_subscription_free(b->export_subs[i]);
        b->forged_sub = vbus_subscription_free(b->forged_sub);
        free(b->export_subs);
        b->export_subs = NULL;
        free(b->export_rules);
        b->export_rules = NULL;
        table_clear(&b->export_seq, NULL);
}
