/* SPDX-License-Identifier: MIT */
/*
 * import: NATS subjects to local topics. One NATS subscription per import rule, on
 * <subject-root>.<host|*>.<pattern>; a message on <subject-root>.<h>.<topic> is published
 * locally on <import-root>.<h>.<topic>, prefixed with the envelope line (envelope.h) that
 * carries the origin's identity and the loss counted on the way.
 *
 * Loss accounting, per NATS subject: the exporting bridge numbers the messages of each subject
 * (Vbus-Seq, within an epoch, Vbus-Epoch); a jump in the numbers is a gap of known size (lost
 * in NATS, at a slow consumer, across a reconnect, or by a failed publish at the origin); a new
 * epoch (the origin bridge restarted, or cleared its table) is a gap of unknown size. What this
 * bridge itself drops locally (a topic's queue full while waiting for credit, the broker link
 * down) is added to the gap of the next message delivered on that topic.
 *
 * Only messages with a complete, well-formed set of Vbus-* headers whose Vbus-Host equals the
 * host token of the subject are imported (with NATS permissions that let each host's bridge
 * publish only under its own subject prefix, the host is then authenticated by NATS).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "envelope.h"
#include "limits.h"
#include "names.h"

typedef struct ImportSeq {
        uint64_t epoch, last;
} ImportSeq;

typedef struct ImportItem {
        struct ImportItem *next;
        natsMsg *msg; /* owned: the payload */
        Envelope env;
} ImportItem;

typedef struct ImportPub {
        vbus_publisher *pub;
        TableEntry *entry; /* in b->publishers; its key is the local topic */
        ImportItem *head, *tail;
        size_t n;
        uint64_t pending_gap; /* dropped here, reported with the next message delivered */
        bool busy;
        struct ImportPub *busy_next;
} ImportPub;

static void item_free(ImportItem *it)
{
        natsMsg_Destroy(it->msg);
        free(it);
}

static ImportItem *pub_pop(Bridge *b, ImportPub *p)
{
        ImportItem *it = p->head;

        p->head = it->next;
        if (!p->head)
                p->tail = NULL;
        p->n--;
        b->import_queued_bytes -= (size_t)natsMsg_GetDataLength(it->msg);
        return it;
}

static void pub_drop_all(Bridge *b, ImportPub *p)
{
        while (p->head) {
                item_free(pub_pop(b, p));
                p->pending_gap++;
                b->m.import_local_dropped++;
        }
}

static void pub_free(void *value)
{
        ImportPub *p = value;

        while (p->head) {
                ImportItem *it = p->head;

                p->head = it->next;
                item_free(it);
        }
        vbus_publisher_free(p->pub);
        free(p);
}

static int getu64(natsMsg *m, const char *key, uint64_t *ret)
{
        const char *v = NULL;
        char *end;

        if (natsMsgHeader_Get(m, key, &v) != NATS_OK || !v || v[0] < '0' || v[0] > '9')
                return -EINVAL;
        errno = 0;
        *ret = strtoull(v, &end, 10);
        return errno || *end ? -EINVAL : 0;
}

/* Fills @e from the headers of @m; Return: 0 or -EINVAL. */
static int import_parse_headers(natsMsg *m, const char *host, Envelope *e)
{
        const char *v = NULL;
        uint64_t u;
        char name[3 * (BRIDGE_NAME_MAX + 1)];

        if (natsMsgHeader_Get(m, "Vbus-Host", &v) != NATS_OK || !v || strcmp(v, host) != 0)
                return -EINVAL;
        strcpy(e->host, host);
        if (natsMsgHeader_Get(m, "Vbus-Topic", &v) != NATS_OK || !names_is_topic(v))
                return -EINVAL;
        strcpy(e->topic, v);
        if (natsMsgHeader_Get(m, "Vbus-Name", &v) != NATS_OK || !v)
                v = ""; /* no name (a local sender): the header is left out */
        if (strlen(v) >= sizeof(name))
                return -EINVAL;
        strcpy(name, v);
        if (names_pct_decode(name) < 0 || strlen(name) > BRIDGE_NAME_MAX)
                return -EINVAL;
        strcpy(e->name, name);
        if (getu64(m, "Vbus-Domid", &u) < 0 || u > UINT32_MAX)
                return -EINVAL;
        e->domid = (uint32_t)u;
        if (getu64(m, "Vbus-Uid", &u) < 0 || u > UINT32_MAX)
                return -EINVAL;
        e->uid = (uint32_t)u;
        if (getu64(m, "Vbus-Local", &u) < 0 || u > 1)
                return -EINVAL;
        e->local = u == 1;
        if (getu64(m, "Vbus-Seq", &e->seq) < 0)
                return -EINVAL;
        if (natsMsgHeader_Get(m, "Vbus-Dropped", &v) == NATS_OK &&
            getu64(m, "Vbus-Dropped", &e->dropped) < 0)
                return -EINVAL;
        e->unknown = natsMsgHeader_Get(m, "Vbus-Unknown", &v) == NATS_OK;
        return 0;
}

/* The sequence check: sets e->gap and e->unknown from what this subject saw before. */
static void import_check_seq(Bridge *b, const char *subject, uint64_t epoch, Envelope *e)
{
        TableEntry *te = table_find(&b->import_seq, subject);
        ImportSeq *s;

        if (!te) {
                if (b->import_seq.n >= BRIDGE_SEQ_SUBJECTS_MAX) {
                        table_clear(&b->import_seq, free);
                }
                s = malloc(sizeof(*s));
                if (!s || !(te = table_insert(&b->import_seq, subject, s))) {
                        free(s);
                        e->unknown = true;
                        return;
                }
                /* First sight of the subject since this bridge started (or since it forgot
                 * the subject to make room): what came before cannot be counted, and a
                 * subscriber that already saw this topic (this bridge restarted) must not
                 * take the silence for "nothing lost". */
                e->unknown = true;
                *s = (ImportSeq){.epoch = epoch, .last = e->seq};
                return;
        }
        s = te->value;
        if (epoch != s->epoch || e->seq <= s->last || e->seq == 0)
                e->unknown = true;
        else if (e->seq > s->last + 1)
                e->gap = e->seq - s->last - 1;
        s->epoch = epoch;
        s->last = e->seq;
}

static ImportPub *import_get_pub(Bridge *b, const char *topic)
{
        TableEntry *te = table_find(&b->publishers, topic);
        ImportPub *p;
        int r;

        if (te)
                return te->value;
        if (b->publishers.n >= BRIDGE_PUBLISHERS_MAX) {
                /* Close an idle publisher to make room (a linear scan, only at the bound). */
                TableEntry *e;
                size_t i;
                ImportPub *victim = NULL;

                table_for_each(e, &b->publishers, i)
                {
                        ImportPub *q = e->value;

                        if (!victim && !q->head && !q->busy)
                                victim = q;
                }
                if (!victim)
                        return NULL;
                table_remove(&b->publishers, victim->entry);
                pub_free(victim);
        }
        p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        r = vbus_publisher_open(b->conn, topic, &p->pub);
        if (r < 0 || !(p->entry = table_insert(&b->publishers, topic, p))) {
                vbus_publisher_free(p->pub);
                free(p);
                return NULL;
        }
        return p;
}

/* Publishes the head of @p's queue. Return: 0 (sent or dropped), -EAGAIN (wait for credit). */
static int pub_send_head(Bridge *b, ImportPub *p)
{
        ImportItem *it = p->head;
        size_t size = (size_t)natsMsg_GetDataLength(it->msg);
        char line[ENVELOPE_LINE_MAX];
        int n, r;

        it->env.gap += p->pending_gap;
        n = envelope_encode(&it->env, line, sizeof(line));
        it->env.gap -= p->pending_gap;
        if (n < 0 || (size_t)n + size > VBUS_MESSAGE_MAX) {
                r = -EMSGSIZE;
        } else {
                if (b->scratch_size < (size_t)n + size) {
                        char *s = realloc(b->scratch, (size_t)n + size);

                        if (!s)
                                return -EAGAIN;
                        b->scratch = s;
                        b->scratch_size = (size_t)n + size;
                }
                memcpy(b->scratch, line, (size_t)n);
                memcpy(b->scratch + n, natsMsg_GetData(it->msg), size);
                r = vbus_publish(p->pub, b->scratch, (size_t)n + size);
        }
        if (r == -EAGAIN)
                return r;
        item_free(pub_pop(b, p));
        if (r < 0) {
                p->pending_gap++;
                b->m.import_local_dropped++;
                if (r == -EPIPE)
                        /* The broker refused the stream (a policy, one day): nothing queued
                         * for it can go out. */
                        pub_drop_all(b, p);
                return 0;
        }
        p->pending_gap = 0;
        b->m.imported_messages++;
        b->m.imported_bytes += size;
        return 0;
}

static void pub_mark_busy(Bridge *b, ImportPub *p)
{
        if (p->busy)
                return;
        p->busy = true;
        p->busy_next = b->busy;
        b->busy = p;
}

void import_handle(Bridge *b, Event *ev)
{
        const Config *c = b->cfg;
        natsMsg *m = ev->msg;
        const char *subject = natsMsg_GetSubject(m);
        size_t rootlen = strlen(c->subject_root), hostlen;
        char host[BRIDGE_HOST_MAX], topic[2 * BRIDGE_NAME_MAX];
        const char *rest;
        uint64_t epoch;
        ImportItem *it;
        ImportPub *p;

        /* <subject-root>.<host>.<topic> */
        if (strncmp(subject, c->subject_root, rootlen) != 0 || subject[rootlen] != '.')
                goto invalid;
        rest = subject + rootlen + 1;
        hostlen = strcspn(rest, ".");
        if (hostlen == 0 || hostlen >= sizeof(host) || rest[hostlen] != '.')
                goto invalid;
        memcpy(host, rest, hostlen);
        host[hostlen] = '\0';
        rest += hostlen + 1;
        if (!names_is_host(host) || !names_is_topic(rest))
                goto invalid;
        if (strcmp(host, c->host) == 0) {
                b->m.import_own++;
                return;
        }
        if ((size_t)snprintf(topic, sizeof(topic), "%s.%s.%s", c->import_root, host, rest) >
                    BRIDGE_NAME_MAX ||
            !names_is_topic(topic))
                goto invalid;
        it = calloc(1, sizeof(*it));
        if (!it)
                return;
        if (import_parse_headers(m, host, &it->env) < 0 || getu64(m, "Vbus-Epoch", &epoch) < 0) {
                free(it);
                goto invalid;
        }
        import_check_seq(b, subject, epoch, &it->env);
        if (it->env.gap) {
                b->m.import_gaps++;
                b->m.import_lost += it->env.gap;
        }
        if (it->env.unknown)
                b->m.import_unknown++;
        it->msg = m;
        ev->msg = NULL;

        p = import_get_pub(b, topic);
        if (!p) {
                b->m.import_local_dropped++;
                item_free(it);
                return;
        }
        /* Bounded: the oldest waiting message makes room, and is counted in the next one's
         * gap. */
        while (p->head && (p->n >= BRIDGE_IMPORT_QUEUE_PER_TOPIC ||
                           b->import_queued_bytes + (size_t)natsMsg_GetDataLength(m) >
                                   BRIDGE_IMPORT_QUEUE_BYTES)) {
                item_free(pub_pop(b, p));
                p->pending_gap++;
                b->m.import_local_dropped++;
        }
        if (p->tail)
                p->tail->next = it;
        else
                p->head = it;
        p->tail = it;
        p->n++;
        b->import_queued_bytes += (size_t)natsMsg_GetDataLength(m);
        if (!p->busy && pub_send_head(b, p) == 0 && !p->head)
                return;
        pub_mark_busy(b, p);
        return;

invalid:
        b->m.import_invalid++;
}

bool import_flush(Bridge *b)
{
        ImportPub **pp = &b->busy;

        while (*pp) {
                ImportPub *p = *pp;

                while (p->head && pub_send_head(b, p) == 0)
                        ;
                if (p->head) {
                        pp = &p->busy_next;
                        continue;
                }
                p->busy = false;
                *pp = p->busy_next;
        }
        return b->busy != NULL;
}

int import_start(Bridge *b)
{
        const Config *c = b->cfg;

        b->import_ctx = calloc(c->n_imports ? c->n_imports : 1, sizeof(*b->import_ctx));
        b->import_subs = calloc(c->n_imports ? c->n_imports : 1, sizeof(*b->import_subs));
        if (!b->import_ctx || !b->import_subs)
                return -ENOMEM;
        for (unsigned i = 0; i < c->n_imports; i++) {
                const ConfigImport *im = &c->imports[i];
                char subject[2 * BRIDGE_NAME_MAX];
                natsStatus s;

                b->import_ctx[i] = (SubCtx){.b = b, .kind = EVENT_IMPORT, .index = i};
                snprintf(subject, sizeof(subject), "%s.%s.%s", c->subject_root,
                         im->host[0] ? im->host : "*", im->pattern);
                s = natsConnection_Subscribe(&b->import_subs[i], b->nc, subject, queue_on_msg,
                                             &b->import_ctx[i]);
                if (s != NATS_OK) {
                        fprintf(stderr, "vbus-bridge: import %s: %s\n", subject,
                                natsStatus_GetText(s));
                        return -EIO;
                }
        }
        return 0;
}

void import_stop(Bridge *b)
{
        if (b->import_subs)
                for (unsigned i = 0; i < b->cfg->n_imports; i++)
                        natsSubscription_Destroy(b->import_subs[i]);
        free(b->import_subs);
        b->import_subs = NULL;
}

/* After the NATS connection is closed (no delivery thread can hold a SubCtx any more). */
void import_free(Bridge *b)
{
        free(b->import_ctx);
        b->import_ctx = NULL;
        b->busy = NULL;
        table_clear(&b->publishers, pub_free);
        table_clear(&b->import_seq, free);
        free(b->scratch);
        b->scratch = NULL;
}
