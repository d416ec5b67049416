/* SPDX-License-Identifier: MIT */
/*
 * rpc: calls across hosts over NATS request/reply.
 *
 * Calls out (import-service): the bridge serves the local name of each imported service; each
 * call is published on <rpc-root>.<host|_any>.<service>.<method> with a reply subject
 * <inbox>.<slot>_<generation> of the bridge's one inbox subscription, the caller's identity
 * and forwarded headers in NATS headers, and the time left in Vbus-Timeout-Us. The outcome
 * comes back as a reply message with Vbus-Status (the vbus_status wire value) and Vbus-Message;
 * a NATS "no responders" status is NOT_FOUND at once. The bridge enforces the deadline itself
 * (NATS cannot tell it that the serving bridge died): at the deadline, or when the local
 * caller cancels, the call fails locally and a cancel goes to <rpc-root>._cancel, best effort.
 *
 * Calls in (offer): a queue subscription (group "vbus-bridge") on <rpc-root>.<host>.<service>.*
 * and <rpc-root>._any.<service>.* per offered service; each request becomes a local call with
 * the remaining time as its timeout (so the local broker enforces the deadline on this side
 * too), the remote caller in the header vbus-bridge-origin, and the forwarded headers. The
 * local outcome is published to the reply subject. A cancel for a call in flight cancels the
 * local call.
 *
 * Server-streaming calls (methods named by "stream-method ... server"): the request carries
 * Vbus-Stream: 1; the serving bridge opens a streaming call locally and publishes each message
 * of it to the reply subject with Vbus-Stream-Seq 1, 2, ..., then the end (Vbus-Status) with the
 * next number. The caller's bridge turns the local request into a stream (vbus_request_stream)
 * and sends the messages on in order; a missing number ends the call with unavailable (lost in
 * NATS, never silently), and a caller slower than the server beyond BRIDGE_STREAM_QUEUE_* ends
 * it with resource-exhausted (NATS has no flow control to hold the server back).
 *
 * Host tokens are [A-Za-z][A-Za-z0-9_]*, so "_any" and "_cancel" never collide with a host.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "limits.h"
#include "names.h"
#include "util/list.h"

#define RPC_QUEUE_GROUP "vbus-bridge"
#define RPC_ORIGIN_KEY  "vbus-bridge-origin"

typedef struct StreamItem {
        struct StreamItem *next;
        natsMsg *msg;
} StreamItem;

typedef struct OutCall {
        List link; /* in Rpc.out_used or Rpc.out_free */
        struct Rpc *rpc;
        uint32_t gen;
        vbus_request *req; /* a unary call; or NULL and: */
        vbus_stream *st;   /* a server-streaming call: the local caller's stream */
        uint64_t deadline;
        uint64_t next_seq; /* the stream message expected next from NATS */
        StreamItem *head, *tail;
        size_t n_items, bytes;
        bool end_pending; /* the remote end arrived; sent once the queue is empty */
        int end_status;
        char *end_message;
} OutCall;

typedef struct InCall {
        List link;
        struct Rpc *rpc;
        vbus_call *call;
        vbus_stream *st; /* a server-streaming call instead of @call */
        uint64_t seq;    /* stream messages published so far */
        char *reply;     /* the caller bridge's reply subject, also the key in in_by_reply */
        TableEntry *entry;
} InCall;

typedef struct ImportSvc {
        struct Rpc *rpc;
        unsigned index;
        vbus_server *srv;
} ImportSvc;

typedef struct Rpc {
        Bridge *b;
        natsInbox *inbox;
        natsSubscription *inbox_sub;
        SubCtx inbox_ctx;
        ImportSvc *svcs;
        OutCall *out;
        List out_used, out_free;
        SubCtx *offer_ctx;
        natsSubscription **offer_subs; /* two per offer */
        natsSubscription *cancel_sub;
        SubCtx cancel_ctx;
        InCall *in;
        List in_used, in_free;
        Table in_by_reply;
        uint64_t next_sweep;
} Rpc;

/* ---- helpers ---- */

static void rpc_format_caller(const Bridge *b, const vbus_request *req, char *buf, size_t size)
{
        const char *name = vbus_request_get_caller_name(req);
        char enc[3 * (BRIDGE_NAME_MAX + 1)];

        if (vbus_request_is_caller_local(req)) {
                snprintf(buf, size, "%s:local(uid=%" PRIu32 ")", b->cfg->host,
                         vbus_request_get_caller_uid(req));
                return;
        }
        if (!name || names_pct_encode(name, strlen(name), enc, sizeof(enc)) < 0)
                enc[0] = '\0';
        snprintf(buf, size, "%s:dom%" PRIu32 "(%s)", b->cfg->host,
                 vbus_request_get_caller_domid(req), enc);
}

static void rpc_publish_reply(Bridge *b, const char *reply, int status, const char *message,
                              const void *data, size_t size)
{
        natsMsg *m = NULL;
        char num[16], enc[3 * 1024 + 1];
        natsStatus s;

        snprintf(num, sizeof(num), "%d", status);
        if (!message || names_pct_encode(message, strnlen(message, 1024), enc, sizeof(enc)) < 0)
                enc[0] = '\0';
        s = natsMsg_Create(&m, reply, NULL, data, (int)size);
        if (s == NATS_OK)
                s = natsMsgHeader_Set(m, "Vbus-Status", num);
        if (s == NATS_OK && enc[0])
                s = natsMsgHeader_Set(m, "Vbus-Message", enc);
        if (s == NATS_OK)
                s = natsConnection_PublishMsg(b->nc, m);
        natsMsg_Destroy(m);
        /* A reply that cannot be sent is the caller's deadline to find out. */
}

/* ---- calls out ---- */

static void out_release(Rpc *rpc, OutCall *oc)
{
        while (oc->head) {
                StreamItem *it = oc->head;

                oc->head = it->next;
                natsMsg_Destroy(it->msg);
                free(it);
        }
        oc->tail = NULL;
        oc->n_items = oc->bytes = 0;
        oc->end_pending = false;
        free(oc->end_message);
        oc->end_message = NULL;
        oc->st = NULL;
        oc->req = NULL;
        oc->gen++;
        list_unlink(&oc->link);
        list_add_tail(&rpc->out_free, &oc->link);
}

static void out_reply_subject(const Rpc *rpc, const OutCall *oc, char *buf, size_t size)
{
        snprintf(buf, size, "%s.%zu_%" PRIu32, rpc->inbox, (size_t)(oc - rpc->out), oc->gen);
}

static void out_send_cancel(Rpc *rpc, const OutCall *oc)
{
        char reply[256];
        natsMsg *m = NULL;
        char subject[BRIDGE_ROOT_MAX + 16];

        out_reply_subject(rpc, oc, reply, sizeof(reply));
        snprintf(subject, sizeof(subject), "%s._cancel", rpc->b->cfg->rpc_root);
        if (natsMsg_Create(&m, subject, NULL, NULL, 0) == NATS_OK &&
            natsMsgHeader_Set(m, "Vbus-Call", reply) == NATS_OK)
                natsConnection_PublishMsg(rpc->b->nc, m);
        natsMsg_Destroy(m);
}

static void out_fail(Rpc *rpc, OutCall *oc, int status, const char *message)
{
        if (oc->st)
                vbus_stream_finish(oc->st, status, message);
        else
                vbus_request_fail(oc->req, status, message);
        if (status == VBUS_STATUS_OK)
                rpc->b->m.rpc_out_ok++;
        else
                rpc->b->m.rpc_out_failed++;
        out_release(rpc, oc);
}

static vbus_request *out_request(const OutCall *oc)
{
        return oc->st ? vbus_stream_get_request(oc->st) : oc->req;
}

/* Sends what waits for the local caller, then the end once nothing waits. */
static void out_stream_flush(Rpc *rpc, OutCall *oc)
{
        while (oc->head) {
                StreamItem *it = oc->head;
                int r = vbus_stream_send(oc->st, natsMsg_GetData(it->msg),
                                         (size_t)natsMsg_GetDataLength(it->msg));

                if (r == -EAGAIN)
                        return;
                oc->head = it->next;
                if (!oc->head)
                        oc->tail = NULL;
                oc->n_items--;
                oc->bytes -= (size_t)natsMsg_GetDataLength(it->msg);
                natsMsg_Destroy(it->msg);
                free(it);
                if (r < 0)
                        return; /* the stream ended: on_end releases the call */
        }
        if (oc->end_pending)
                out_fail(rpc, oc, oc->end_status, oc->end_message);
}

static void out_stream_on_writable(vbus_stream *st, void *userdata)
{
        OutCall *oc = userdata;

        out_stream_flush(oc->rpc, oc);
}

static void out_send_cancel(Rpc *rpc, const OutCall *oc);

/* The local caller's side ended without our finish: cancelled, deadline, caller gone. */
static void out_stream_on_end(vbus_stream *st, int status, const char *message, void *userdata)
{
        OutCall *oc = userdata;
        Rpc *rpc = oc->rpc;

        out_send_cancel(rpc, oc);
        if (status == VBUS_STATUS_DEADLINE_EXCEEDED)
                rpc->b->m.rpc_out_deadline++;
        else
                rpc->b->m.rpc_out_cancelled++;
        oc->st = NULL; /* freed by libvbus when this returns */
        out_release(rpc, oc);
}

static const vbus_stream_handlers out_stream_handlers = {
        .on_end = out_stream_on_end,
        .on_writable = out_stream_on_writable,
};

static int out_add_headers(const Bridge *b, vbus_request *req, natsMsg *m, uint64_t remaining)
{
        char buf[4 * 1024], from[1024];
        natsStatus s;
        size_t n = vbus_request_get_n_headers(req);

        rpc_format_caller(b, req, from, sizeof(from));
        snprintf(buf, sizeof(buf), "%" PRIu64, remaining);
        s = natsMsgHeader_Set(m, "Vbus-Timeout-Us", buf);
        if (s == NATS_OK)
                s = natsMsgHeader_Set(m, "Vbus-From", from);
        if (s == NATS_OK)
                s = natsMsgHeader_Set(m, "Vbus-Host", b->cfg->host);
        for (size_t i = 0; i < n && s == NATS_OK; i++) {
                const char *key;
                const void *value;
                size_t size;
                int k;

                if (vbus_request_get_header(req, i, &key, &value, &size) < 0)
                        return -EINVAL;
                k = snprintf(buf, sizeof(buf), "%s=", key);
                if (k < 0 || (size_t)k >= sizeof(buf) ||
                    names_pct_encode(value, size, buf + k, sizeof(buf) - (size_t)k) < 0)
                        return -EINVAL;
                s = natsMsgHeader_Add(m, "Vbus-Hdr", buf);
        }
        return s == NATS_OK ? 0 : -ENOMEM;
}

/* 1: a server-streaming method of @local; 2: client-streaming or bidirectional; 0: unary. */
static int rpc_stream_kind(const Bridge *b, const char *local, const char *method)
{
        const Config *c = b->cfg;

        for (unsigned i = 0; i < c->n_stream_methods; i++)
                if (strcmp(c->stream_methods[i].local, local) == 0 &&
                    strcmp(c->stream_methods[i].method, method) == 0)
                        return c->stream_methods[i].server ? 1 : 2;
        return 0;
}

static void out_on_request(vbus_server *srv, vbus_request *req, void *userdata)
{
        ImportSvc *svc = userdata;
        Rpc *rpc = svc->rpc;
        Bridge *b = rpc->b;
        const ConfigImportService *cs = &b->cfg->import_services[svc->index];
        char subject[2 * BRIDGE_NAME_MAX + BRIDGE_ROOT_MAX], reply[256];
        uint64_t now = bridge_now_usec(), deadline = vbus_request_get_deadline(req);
        size_t size;
        const void *data = vbus_request_get_data(req, &size);
        natsMsg *m = NULL;
        OutCall *oc;
        natsStatus s;

        b->m.rpc_out_calls++;
        if (vbus_request_find_header(req, RPC_ORIGIN_KEY, NULL)) {
                /* It came from another host through a bridge: never forwarded again. */
                vbus_request_fail(req, VBUS_STATUS_UNAVAILABLE,
                                  "vbus-bridge: a call that already crossed a bridge is not "
                                  "forwarded again");
                b->m.rpc_out_failed++;
                return;
        }
        if (list_is_empty(&rpc->out_free)) {
                vbus_request_fail(req, VBUS_STATUS_RESOURCE_EXHAUSTED,
                                  "vbus-bridge: rpc-max-calls calls in flight");
                b->m.rpc_out_failed++;
                return;
        }
        if (deadline == UINT64_MAX)
                deadline = now + (uint64_t)b->cfg->rpc_default_timeout_ms * 1000;
        if (deadline <= now) {
                vbus_request_fail(req, VBUS_STATUS_DEADLINE_EXCEEDED, "vbus-bridge: no time left");
                b->m.rpc_out_deadline++;
                return;
        }
        oc = list_entry(rpc->out_free.next, OutCall, link);
        list_unlink(&oc->link);
        list_add_tail(&rpc->out_used, &oc->link);
        oc->req = req;
        oc->deadline = deadline;
        oc->next_seq = 1;
        if (rpc_stream_kind(b, cs->local, vbus_request_get_method(req)) == 1) {
                int r = vbus_request_stream(req, &out_stream_handlers, oc, &oc->st);

                if (r < 0) {
                        if (r != -ECANCELED)
                                vbus_request_fail(req, VBUS_STATUS_INTERNAL,
                                                  "vbus-bridge: cannot stream");
                        b->m.rpc_out_failed++;
                        oc->st = NULL;
                        out_release(rpc, oc);
                        return;
                }
                oc->req = NULL;
        }
        out_reply_subject(rpc, oc, reply, sizeof(reply));
        snprintf(subject, sizeof(subject), "%s.%s.%s.%s", b->cfg->rpc_root,
                 cs->host[0] ? cs->host : "_any", cs->service, vbus_request_get_method(req));
        s = natsMsg_Create(&m, subject, reply, data, (int)size);
        if (s == NATS_OK && oc->st)
                s = natsMsgHeader_Set(m, "Vbus-Stream", "1");
        if (s != NATS_OK || out_add_headers(b, req, m, deadline - now) < 0) {
                natsMsg_Destroy(m);
                out_fail(rpc, oc, VBUS_STATUS_INVALID_ARGUMENT,
                         "vbus-bridge: the call's headers cannot be forwarded");
                return;
        }
        s = natsConnection_PublishMsg(b->nc, m);
        natsMsg_Destroy(m);
        if (s != NATS_OK) {
                char msg[128];

                snprintf(msg, sizeof(msg), "vbus-bridge: NATS: %s", natsStatus_GetText(s));
                out_fail(rpc, oc, VBUS_STATUS_UNAVAILABLE, msg);
                return;
        }
        /* Checked for cancellation every BRIDGE_RPC_SWEEP_USEC, and at its deadline. */
        if (now + BRIDGE_RPC_SWEEP_USEC < rpc->next_sweep)
                rpc->next_sweep = now + BRIDGE_RPC_SWEEP_USEC;
        if (deadline < rpc->next_sweep)
                rpc->next_sweep = deadline;
}

static void out_on_stream_request(vbus_server *srv, vbus_request *req, void *userdata)
{
        Bridge *b = ((ImportSvc *)userdata)->rpc->b;

        b->m.rpc_out_calls++;
        b->m.rpc_out_failed++;
        vbus_request_fail(req, VBUS_STATUS_UNSUPPORTED,
                          "vbus-bridge: client-streaming and bidirectional calls across hosts "
                          "are not implemented");
}

/* A message of a server-streaming call: in order, or the call ends. Takes ev->msg. */
static void out_on_stream_reply(Rpc *rpc, OutCall *oc, Event *ev)
{
        natsMsg *m = ev->msg;
        const char *v = NULL;
        char *end, msg[3 * 1024 + 1];
        unsigned long long seq;
        long status;
        StreamItem *it;

        if (natsMsgHeader_Get(m, "Vbus-Stream-Seq", &v) != NATS_OK &&
            natsMsgHeader_Get(m, "Vbus-Status", &v) == NATS_OK) {
                /* The serving bridge failed the call before it became a stream. */
                seq = oc->next_seq;
        } else if (natsMsgHeader_Get(m, "Vbus-Stream-Seq", &v) != NATS_OK || !v ||
                   (seq = strtoull(v, &end, 10), *end)) {
                out_send_cancel(rpc, oc);
                out_fail(rpc, oc, VBUS_STATUS_INTERNAL,
                         "vbus-bridge: malformed stream message from the remote bridge");
                return;
        }
        if (seq != oc->next_seq) {
                snprintf(msg, sizeof(msg),
                         "vbus-bridge: %llu stream message(s) lost in NATS before message %llu",
                         seq > oc->next_seq ? seq - oc->next_seq : 0ull, seq);
                out_send_cancel(rpc, oc);
                out_fail(rpc, oc, VBUS_STATUS_UNAVAILABLE, msg);
                return;
        }
        oc->next_seq++;
        if (natsMsgHeader_Get(m, "Vbus-Status", &v) == NATS_OK && v) {
                status = strtol(v, &end, 10);
                if (*end || status < VBUS_STATUS_OK || status >= VBUS_STATUS_N)
                        status = VBUS_STATUS_INTERNAL;
                msg[0] = '\0';
                if (natsMsgHeader_Get(m, "Vbus-Message", &v) == NATS_OK && v &&
                    strlen(v) < sizeof(msg)) {
                        strcpy(msg, v);
                        if (names_pct_decode(msg) < 0)
                                msg[0] = '\0';
                }
                oc->end_pending = true;
                oc->end_status = (int)status;
                oc->end_message = strdup(msg);
                out_stream_flush(rpc, oc);
                return;
        }
        if (oc->n_items >= BRIDGE_STREAM_QUEUE_MSGS ||
            oc->bytes + (size_t)natsMsg_GetDataLength(m) > BRIDGE_STREAM_QUEUE_BYTES ||
            !(it = calloc(1, sizeof(*it)))) {
                out_send_cancel(rpc, oc);
                out_fail(rpc, oc, VBUS_STATUS_RESOURCE_EXHAUSTED,
                         "vbus-bridge: the caller is slower than the remote server (no flow "
                         "control across NATS)");
                return;
        }
        it->msg = m;
        ev->msg = NULL;
        if (oc->tail)
                oc->tail->next = it;
        else
                oc->head = it;
        oc->tail = it;
        oc->n_items++;
        oc->bytes += (size_t)natsMsg_GetDataLength(m);
        out_stream_flush(rpc, oc);
}

static void out_on_reply(Rpc *rpc, Event *ev)
{
        Bridge *b = rpc->b;
        natsMsg *m = ev->msg;
        const char *subject = natsMsg_GetSubject(m), *v = NULL;
        size_t inbox_len = strlen(rpc->inbox);
        unsigned long idx, gen;
        char *end, msg[3 * 1024 + 1];
        OutCall *oc;
        long status;

        if (strncmp(subject, rpc->inbox, inbox_len) != 0 || subject[inbox_len] != '.')
                return;
        idx = strtoul(subject + inbox_len + 1, &end, 10);
        if (*end != '_' || idx >= b->cfg->rpc_max_calls)
                return;
        gen = strtoul(end + 1, &end, 10);
        oc = &rpc->out[idx];
        if (*end || !(oc->req || oc->st) || oc->gen != gen)
                return; /* a late reply to a call that already ended */
        if (natsMsg_IsNoResponders(m)) {
                b->m.rpc_out_no_responders++;
                out_fail(rpc, oc, VBUS_STATUS_NOT_FOUND,
                         "no responders: no host serves it (vbus-bridge)");
                return;
        }
        if (oc->st) {
                out_on_stream_reply(rpc, oc, ev);
                return;
        }
        if (natsMsgHeader_Get(m, "Vbus-Status", &v) != NATS_OK || !v ||
            (status = strtol(v, &end, 10), *end) || status < VBUS_STATUS_OK ||
            status >= VBUS_STATUS_N) {
                out_fail(rpc, oc, VBUS_STATUS_INTERNAL,
                         "vbus-bridge: malformed reply from the remote bridge");
                return;
        }
        if (status == VBUS_STATUS_OK) {
                vbus_request_reply(oc->req, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
                b->m.rpc_out_ok++;
                out_release(rpc, oc);
                return;
        }
        msg[0] = '\0';
        if (natsMsgHeader_Get(m, "Vbus-Message", &v) == NATS_OK && v && strlen(v) < sizeof(msg)) {
                strcpy(msg, v);
                if (names_pct_decode(msg) < 0)
                        msg[0] = '\0';
        }
        out_fail(rpc, oc, (int)status, msg);
}

uint64_t rpc_sweep(Bridge *b, uint64_t now)
{
        Rpc *rpc = b->rpc;
        List *pos, *tmp;
        uint64_t next = UINT64_MAX;

        if (!rpc || list_is_empty(&rpc->out_used))
                return UINT64_MAX;
        if (now < rpc->next_sweep)
                return rpc->next_sweep;
        list_for_each_safe(pos, tmp, &rpc->out_used)
        {
                OutCall *oc = list_entry(pos, OutCall, link);

                /* Within a sweep of the deadline, the broker's deadline cancelled it. */
                if (vbus_request_is_cancelled(out_request(oc)) &&
                    now + 2 * BRIDGE_RPC_SWEEP_USEC < oc->deadline) {
                        /* Cancelled by the caller, gone, or the broker's deadline passed: the
                         * answer is discarded, the remote side is told. */
                        out_send_cancel(rpc, oc);
                        b->m.rpc_out_cancelled++;
                        out_fail(rpc, oc, VBUS_STATUS_CANCELLED, "cancelled");
                } else if (now >= oc->deadline || vbus_request_is_cancelled(out_request(oc))) {
                        out_send_cancel(rpc, oc);
                        b->m.rpc_out_deadline++;
                        out_fail(rpc, oc, VBUS_STATUS_DEADLINE_EXCEEDED,
                                 "deadline exceeded (vbus-bridge: no answer from the remote "
                                 "host in time)");
                } else if (oc->deadline < next) {
                        next = oc->deadline;
                }
        }
        if (!list_is_empty(&rpc->out_used) && now + BRIDGE_RPC_SWEEP_USEC < next)
                next = now + BRIDGE_RPC_SWEEP_USEC;
        rpc->next_sweep = next;
        return next;
}

/* ---- calls in ---- */

static void in_release(Rpc *rpc, InCall *ic)
{
        if (ic->entry)
                table_remove(&rpc->in_by_reply, ic->entry);
        ic->entry = NULL;
        free(ic->reply);
        ic->reply = NULL;
        ic->call = NULL;
        ic->st = NULL;
        ic->seq = 0;
        list_unlink(&ic->link);
        list_add_tail(&rpc->in_free, &ic->link);
}

static void in_on_outcome(vbus_call *call, const vbus_reply *reply, void *userdata)
{
        InCall *ic = userdata;
        Rpc *rpc = ic->rpc;
        int status = vbus_reply_get_status(reply);
        size_t size = 0;
        const void *data = vbus_reply_get_data(reply, &size);

        if (status == VBUS_STATUS_OK)
                rpc->b->m.rpc_in_ok++;
        else
                rpc->b->m.rpc_in_failed++;
        rpc_publish_reply(rpc->b, ic->reply, status, vbus_reply_get_message(reply), data, size);
        in_release(rpc, ic);
}

static void in_stream_on_message(vbus_stream *st, const void *data, size_t size, void *userdata)
{
        InCall *ic = userdata;
        natsMsg *m = NULL;
        char num[32];

        if (!data)
                return;
        snprintf(num, sizeof(num), "%llu", (unsigned long long)++ic->seq);
        if (natsMsg_Create(&m, ic->reply, NULL, data, (int)size) == NATS_OK &&
            natsMsgHeader_Set(m, "Vbus-Stream-Seq", num) == NATS_OK)
                natsConnection_PublishMsg(ic->rpc->b->nc, m);
        natsMsg_Destroy(m);
}

static void in_stream_on_end(vbus_stream *st, int status, const char *message, void *userdata)
{
        InCall *ic = userdata;
        Rpc *rpc = ic->rpc;
        natsMsg *m = NULL;
        char num[32], enc[3 * 1024 + 1];
        natsStatus s;

        if (status == VBUS_STATUS_OK)
                rpc->b->m.rpc_in_ok++;
        else
                rpc->b->m.rpc_in_failed++;
        snprintf(num, sizeof(num), "%llu", (unsigned long long)++ic->seq);
        s = natsMsg_Create(&m, ic->reply, NULL, NULL, 0);
        if (s == NATS_OK)
                s = natsMsgHeader_Set(m, "Vbus-Stream-Seq", num);
        snprintf(enc, sizeof(enc), "%d", status);
        if (s == NATS_OK)
                s = natsMsgHeader_Set(m, "Vbus-Status", enc);
        if (s == NATS_OK && message && message[0] &&
            names_pct_encode(message, strnlen(message, 1024), enc, sizeof(enc)) > 0)
                s = natsMsgHeader_Set(m, "Vbus-Message", enc);
        if (s == NATS_OK)
                natsConnection_PublishMsg(rpc->b->nc, m);
        natsMsg_Destroy(m);
        ic->st = NULL; /* freed by libvbus when this returns */
        in_release(rpc, ic);
}

static const vbus_stream_handlers in_stream_handlers = {
        .on_message = in_stream_on_message,
        .on_end = in_stream_on_end,
};

/* The vbus headers of a call from another host: the origin first, then those forwarded. */
static int in_build_headers(natsMsg *m, vbus_header *h, char (*vals)[1025], size_t *ret_n)
{
        const char *from = NULL;
        const char **values = NULL;
        int count = 0;
        size_t n = 0;

        if (natsMsgHeader_Get(m, "Vbus-From", &from) != NATS_OK || !from || strlen(from) > 1024)
                return -EINVAL;
        h[n++] = (vbus_header){.key = RPC_ORIGIN_KEY, .value = from, .value_size = strlen(from)};
        if (natsMsgHeader_Values(m, "Vbus-Hdr", &values, &count) != NATS_OK)
                count = 0;
        for (int i = 0; i < count; i++) {
                char *eq;
                int len;

                if (n == VBUS_CALL_HEADERS_MAX || strlen(values[i]) > 3 * 1024 + 65) {
                        free((void *)values);
                        return -E2BIG;
                }
                /* key=value: the key is kept in the value buffer's tail half. */
                eq = strchr(values[i], '=');
                if (!eq || eq == values[i] || eq - values[i] > VBUS_CALL_HEADER_KEY_MAX ||
                    strlen(eq + 1) > 3 * 1024) {
                        free((void *)values);
                        return -EINVAL;
                }
                {
                        char tmp[3 * 1024 + 1];

                        strcpy(tmp, eq + 1);
                        len = names_pct_decode(tmp);
                        if (len < 0 || len > VBUS_CALL_HEADER_VALUE_MAX) {
                                free((void *)values);
                                return -EINVAL;
                        }
                        memcpy(vals[2 * n], tmp, (size_t)len);
                        memcpy(vals[2 * n + 1], values[i], (size_t)(eq - values[i]));
                        vals[2 * n + 1][eq - values[i]] = '\0';
                }
                h[n] = (vbus_header){
                        .key = vals[2 * n + 1], .value = vals[2 * n], .value_size = (size_t)len};
                n++;
        }
        free((void *)values);
        *ret_n = n;
        return 0;
}

static void in_on_request(Rpc *rpc, natsMsg *m, unsigned index)
{
        Bridge *b = rpc->b;
        const char *service = b->cfg->offers[index].service;
        const char *subject = natsMsg_GetSubject(m), *reply = natsMsg_GetReply(m), *v = NULL;
        const char *method;
        char full[2 * BRIDGE_NAME_MAX + 2];
        char vals[2 * VBUS_CALL_HEADERS_MAX][1025];
        vbus_header h[VBUS_CALL_HEADERS_MAX];
        vbus_call_options opts = {0};
        size_t n_h = 0;
        InCall *ic;
        int r;

        if (!reply || !reply[0]) {
                b->m.rpc_in_refused++;
                return;
        }
        b->m.rpc_in_calls++;
        method = strrchr(subject, '.');
        if (!method || !names_is_identifier(method + 1, strlen(method + 1))) {
                rpc_publish_reply(b, reply, VBUS_STATUS_INVALID_ARGUMENT,
                                  "vbus-bridge: malformed method", NULL, 0);
                b->m.rpc_in_failed++;
                return;
        }
        method++;
        if (list_is_empty(&rpc->in_free) || table_find(&rpc->in_by_reply, reply)) {
                rpc_publish_reply(b, reply, VBUS_STATUS_RESOURCE_EXHAUSTED,
                                  "vbus-bridge: rpc-max-calls calls in flight", NULL, 0);
                b->m.rpc_in_failed++;
                return;
        }
        opts.timeout_usec = (uint64_t)b->cfg->rpc_default_timeout_ms * 1000;
        if (natsMsgHeader_Get(m, "Vbus-Timeout-Us", &v) == NATS_OK && v) {
                char *end;
                unsigned long long t = strtoull(v, &end, 10);

                if (*end || t == 0) {
                        rpc_publish_reply(b, reply, VBUS_STATUS_DEADLINE_EXCEEDED,
                                          "vbus-bridge: no time left", NULL, 0);
                        b->m.rpc_in_failed++;
                        return;
                }
                opts.timeout_usec = t;
        }
        r = in_build_headers(m, h, vals, &n_h);
        if (r < 0) {
                rpc_publish_reply(b, reply, VBUS_STATUS_INVALID_ARGUMENT,
                                  r == -E2BIG ? "vbus-bridge: too many headers to forward"
                                              : "vbus-bridge: malformed call headers",
                                  NULL, 0);
                b->m.rpc_in_failed++;
                return;
        }
        opts.headers = h;
        opts.n_headers = n_h;
        ic = list_entry(rpc->in_free.next, InCall, link);
        ic->reply = strdup(reply);
        if (!ic->reply || !(ic->entry = table_insert(&rpc->in_by_reply, reply, ic))) {
                free(ic->reply);
                ic->reply = NULL;
                rpc_publish_reply(b, reply, VBUS_STATUS_RESOURCE_EXHAUSTED, "vbus-bridge: ENOMEM",
                                  NULL, 0);
                b->m.rpc_in_failed++;
                return;
        }
        list_unlink(&ic->link);
        list_add_tail(&rpc->in_used, &ic->link);
        snprintf(full, sizeof(full), "%s/%s", service, method);
        if (natsMsgHeader_Get(m, "Vbus-Stream", &v) == NATS_OK) {
                /* Server-streaming: the one request, then half-close. */
                r = vbus_stream_open(b->conn, full, &opts, &in_stream_handlers, ic, &ic->st);
                if (r == 0)
                        r = vbus_stream_send(ic->st, natsMsg_GetData(m),
                                             (size_t)natsMsg_GetDataLength(m));
                if (r == 0)
                        r = vbus_stream_close_send(ic->st);
                if (r < 0 && ic->st) {
                        vbus_stream_cancel(ic->st);
                        ic->st = NULL;
                }
        } else {
                r = vbus_call_start_opts(b->conn, full, natsMsg_GetData(m),
                                         (size_t)natsMsg_GetDataLength(m), &opts, in_on_outcome, ic,
                                         &ic->call);
        }
        if (r < 0) {
                char msg[128];
                int status = VBUS_STATUS_UNAVAILABLE;

                if (r == -EINVAL)
                        status = VBUS_STATUS_INVALID_ARGUMENT;
                else if (r == -EMSGSIZE)
                        status = VBUS_STATUS_INVALID_ARGUMENT;
                snprintf(msg, sizeof(msg), "vbus-bridge on %s: %s", b->cfg->host, strerror(-r));
                rpc_publish_reply(b, reply, status, msg, NULL, 0);
                b->m.rpc_in_failed++;
                in_release(rpc, ic);
        }
}

static void in_on_cancel(Rpc *rpc, natsMsg *m)
{
        const char *call = NULL;
        TableEntry *e;
        InCall *ic;

        if (natsMsgHeader_Get(m, "Vbus-Call", &call) != NATS_OK || !call)
                return;
        e = table_find(&rpc->in_by_reply, call);
        if (!e)
                return; /* not ours, or already over */
        ic = e->value;
        if (ic->st)
                vbus_stream_cancel(ic->st);
        else
                vbus_call_cancel(ic->call);
        rpc->b->m.rpc_in_cancelled++;
        in_release(rpc, ic);
}

void rpc_handle(Bridge *b, Event *ev)
{
        switch (ev->kind) {
        case EVENT_RPC_REPLY:
                out_on_reply(b->rpc, ev);
                break;
        case EVENT_RPC_REQUEST:
                in_on_request(b->rpc, ev->msg, ev->index);
                break;
        case EVENT_RPC_CANCEL:
                in_on_cancel(b->rpc, ev->msg);
                break;
        default:
                break;
        }
}

/* ---- setup ---- */

static int rpc_subscribe(Rpc *rpc, natsSubscription **sub, const char *subject, const char *queue,
                         SubCtx *ctx)
{
        natsStatus s;

        if (queue)
                s = natsConnection_QueueSubscribe(sub, rpc->b->nc, subject, queue, queue_on_msg,
                                                  ctx);
        else
                s = natsConnection_Subscribe(sub, rpc->b->nc, subject, queue_on_msg, ctx);
        if (s != NATS_OK) {
                fprintf(stderr, "vbus-bridge: subscribe %s: %s\n", subject, natsStatus_GetText(s));
                return -EIO;
        }
        return 0;
}

int rpc_start(Bridge *b)
{
        const Config *c = b->cfg;
        unsigned max = c->rpc_max_calls;
        char subject[2 * BRIDGE_NAME_MAX + BRIDGE_ROOT_MAX];
        Rpc *rpc;
        int r;

        rpc = calloc(1, sizeof(*rpc));
        if (!rpc)
                return -ENOMEM;
        b->rpc = rpc;
        rpc->b = b;
        rpc->next_sweep = UINT64_MAX;
        list_init(&rpc->out_used);
        list_init(&rpc->out_free);
        list_init(&rpc->in_used);
        list_init(&rpc->in_free);
        rpc->out = calloc(max, sizeof(*rpc->out));
        rpc->in = calloc(max, sizeof(*rpc->in));
        rpc->svcs = calloc(c->n_import_services + 1, sizeof(*rpc->svcs));
        rpc->offer_ctx = calloc(c->n_offers + 1, sizeof(*rpc->offer_ctx));
        rpc->offer_subs = calloc(2 * c->n_offers + 1, sizeof(*rpc->offer_subs));
        if (!rpc->out || !rpc->in || !rpc->svcs || !rpc->offer_ctx || !rpc->offer_subs)
                return -ENOMEM;
        for (unsigned i = 0; i < max; i++) {
                list_init(&rpc->out[i].link);
                rpc->out[i].rpc = rpc;
                list_add_tail(&rpc->out_free, &rpc->out[i].link);
                list_init(&rpc->in[i].link);
                rpc->in[i].rpc = rpc;
                list_add_tail(&rpc->in_free, &rpc->in[i].link);
        }

        if (c->n_import_services) {
                if (natsInbox_Create(&rpc->inbox) != NATS_OK)
                        return -ENOMEM;
                rpc->inbox_ctx = (SubCtx){.b = b, .kind = EVENT_RPC_REPLY};
                snprintf(subject, sizeof(subject), "%s.*", rpc->inbox);
                r = rpc_subscribe(rpc, &rpc->inbox_sub, subject, NULL, &rpc->inbox_ctx);
                if (r < 0)
                        return r;
        }
        for (unsigned i = 0; i < c->n_import_services; i++) {
                ImportSvc *svc = &rpc->svcs[i];

                *svc = (ImportSvc){.rpc = rpc, .index = i};
                r = vbus_serve(b->conn, c->import_services[i].local, out_on_request, svc,
                               &svc->srv);
                if (r < 0) {
                        fprintf(stderr, "vbus-bridge: serve %s: %s\n", c->import_services[i].local,
                                strerror(-r));
                        return r;
                }
                for (unsigned k = 0; k < c->n_stream_methods; k++) {
                        if (strcmp(c->stream_methods[k].local, c->import_services[i].local) != 0 ||
                            c->stream_methods[k].server)
                                continue;
                        r = vbus_server_stream_method(svc->srv, c->stream_methods[k].method,
                                                      out_on_stream_request, svc);
                        if (r < 0)
                                return r;
                }
        }

        for (unsigned i = 0; i < c->n_offers; i++) {
                rpc->offer_ctx[i] = (SubCtx){.b = b, .kind = EVENT_RPC_REQUEST, .index = i};
                snprintf(subject, sizeof(subject), "%s.%s.%s.*", c->rpc_root, c->host,
                         c->offers[i].service);
                r = rpc_subscribe(rpc, &rpc->offer_subs[2 * i], subject, RPC_QUEUE_GROUP,
                                  &rpc->offer_ctx[i]);
                if (r < 0)
                        return r;
                snprintf(subject, sizeof(subject), "%s._any.%s.*", c->rpc_root,
                         c->offers[i].service);
                r = rpc_subscribe(rpc, &rpc->offer_subs[2 * i + 1], subject, RPC_QUEUE_GROUP,
                                  &rpc->offer_ctx[i]);
                if (r < 0)
                        return r;
        }
        if (c->n_offers) {
                rpc->cancel_ctx = (SubCtx){.b = b, .kind = EVENT_RPC_CANCEL};
                snprintf(subject, sizeof(subject), "%s._cancel", c->rpc_root);
                r = rpc_subscribe(rpc, &rpc->cancel_sub, subject, NULL, &rpc->cancel_ctx);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Unsubscribes from NATS and answers what is in flight; the memory goes in rpc_free(). */
void rpc_stop(Bridge *b)
{
        Rpc *rpc = b->rpc;
        List *pos, *tmp;

        if (!rpc)
                return;
        natsSubscription_Destroy(rpc->inbox_sub);
        rpc->inbox_sub = NULL;
        natsSubscription_Destroy(rpc->cancel_sub);
        rpc->cancel_sub = NULL;
        if (rpc->offer_subs)
                for (unsigned i = 0; i < 2 * b->cfg->n_offers; i++) {
                        natsSubscription_Destroy(rpc->offer_subs[i]);
                        rpc->offer_subs[i] = NULL;
                }
        if (rpc->out_used.next)
                list_for_each_safe(pos, tmp, &rpc->out_used)
                {
                        OutCall *oc = list_entry(pos, OutCall, link);

                        out_send_cancel(rpc, oc);
                        out_fail(rpc, oc, VBUS_STATUS_UNAVAILABLE, "vbus-bridge: shutting down");
                }
        if (rpc->in_used.next)
                list_for_each_safe(pos, tmp, &rpc->in_used)
                {
                        InCall *ic = list_entry(pos, InCall, link);

                        rpc_publish_reply(b, ic->reply, VBUS_STATUS_UNAVAILABLE,
                                          "vbus-bridge: shutting down", NULL, 0);
                        if (ic->st)
                                vbus_stream_cancel(ic->st);
                        else
                                vbus_call_cancel(ic->call);
                        in_release(rpc, ic);
                }
        if (rpc->svcs)
                for (unsigned i = 0; i < b->cfg->n_import_services; i++)
                        rpc->svcs[i].srv = vbus_server_free(rpc->svcs[i].srv);
}

void rpc_free(Bridge *b)
{
        Rpc *rpc = b->rpc;

        if (!rpc)
                return;
        table_clear(&rpc->in_by_reply, NULL);
        free(rpc->out);
        free(rpc->in);
        free(rpc->svcs);
        free(rpc->offer_ctx);
        free(rpc->offer_subs);
        natsInbox_Destroy(rpc->inbox);
        free(rpc);
        b->rpc = NULL;
}

bool rpc_is_active(Bridge *b)
{
        if (!b->rpc)
                return false;
        for (unsigned i = 0; i < b->cfg->n_import_services; i++)
                if (!vbus_server_is_active(b->rpc->svcs[i].srv))
                        return false;
        return true;
}
