/* SPDX-License-Identifier: MIT */
/*
 * rpc-bench-nats: the NATS half of the RPC benchmark: request/reply with the C client libnats
 * through a nats-server on 127.0.0.1 (bench/rpc/run starts it).
 *
 *   rpc-bench-nats serve URL SUBJECT [--ready FILE]
 *       a synchronous subscription on SUBJECT; answers each request by publishing its 64 bytes
 *       to the request's reply subject. Creates FILE once the server confirmed the
 *       subscription (flush).
 *   rpc-bench-nats call URL SUBJECT [--warm N] [--lat N] [--tput N]
 *       the two phases of rpc-common.h. A call is what natsConnection_Request() does (publish
 *       with a reply subject, wait on the reply inbox), spelt out so that 16 can be in flight:
 *       one synchronous subscription on a wildcard inbox "INBOX.*", and the call number in the
 *       reply subject.
 */
#include <nats/nats.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc-common.h"

static natsConnection *nats_connect(const char *url, const char *who)
{
        natsOptions *opts = NULL;
        natsConnection *nc = NULL;
        natsStatus s = natsOptions_Create(&opts);

        if (s == NATS_OK)
                s = natsOptions_SetURL(opts, url);
        if (s == NATS_OK)
                s = natsOptions_SetAllowReconnect(opts, false);
        if (s == NATS_OK)
                s = natsOptions_SetTimeout(opts, 10000);
        /* Write each publish at once, as natsConnection_Request() does for its request (without
         * it, a publish waits for libnats's flusher thread, about 1 ms each way). */
        if (s == NATS_OK)
                s = natsOptions_SetSendAsap(opts, true);
        if (s == NATS_OK)
                s = natsConnection_Connect(&nc, opts);
        natsOptions_Destroy(opts);
        if (s != NATS_OK) {
                fprintf(stderr, "%s: connect %s: %s\n", who, url, natsStatus_GetText(s));
                return NULL;
        }
        return nc;
}

static int cmd_serve(const char *url, const char *subject, const char *ready)
{
        natsConnection *nc = nats_connect(url, "nats-serve");
        natsSubscription *sub = NULL;
        natsStatus s;

        if (!nc)
                return 1;
        s = natsConnection_SubscribeSync(&sub, nc, subject);
        if (s == NATS_OK)
                s = natsSubscription_SetPendingLimits(sub, -1, -1);
        if (s == NATS_OK)
                s = natsConnection_Flush(nc);
        if (s != NATS_OK || rpc_ready(ready) < 0) {
                fprintf(stderr, "nats-serve: subscribe: %s\n", natsStatus_GetText(s));
                return 1;
        }
        for (;;) {
                natsMsg *m = NULL;

                s = natsSubscription_NextMsg(&m, sub, (int64_t)3600 * 1000);
                if (s == NATS_TIMEOUT)
                        continue;
                if (s != NATS_OK) {
                        fprintf(stderr, "nats-serve: %s\n", natsStatus_GetText(s));
                        return 1;
                }
                if (natsMsg_GetReply(m))
                        s = natsConnection_Publish(nc, natsMsg_GetReply(m), natsMsg_GetData(m),
                                                   natsMsg_GetDataLength(m));
                natsMsg_Destroy(m);
                if (s != NATS_OK) {
                        fprintf(stderr, "nats-serve: reply: %s\n", natsStatus_GetText(s));
                        return 1;
                }
        }
}

typedef struct NatsCaller {
        natsConnection *nc;
        natsSubscription *inbox;
        const char *subject;
        char prefix[64];
} NatsCaller;

static int nats_send(void *ctx, uint64_t id, const uint8_t *req)
{
        NatsCaller *c = ctx;
        char reply[96];
        natsStatus s;

        if ((size_t)snprintf(reply, sizeof(reply), "%s.%llu", c->prefix, (unsigned long long)id) >=
            sizeof(reply))
                return -1;
        s = natsConnection_PublishRequest(c->nc, c->subject, reply, req, RPC_SIZE);
        if (s != NATS_OK)
                fprintf(stderr, "nats-call: publish: %s\n", natsStatus_GetText(s));
        return s == NATS_OK ? 0 : -1;
}

static int nats_wait(void *ctx, uint64_t *ids, int max)
{
        NatsCaller *c = ctx;
        int n = 0;

        while (n < max) {
                natsMsg *m = NULL;
                natsStatus s = natsSubscription_NextMsg(&m, c->inbox, n ? 0 : 30000);

                if (s == NATS_TIMEOUT && n)
                        break;
                if (s != NATS_OK) {
                        fprintf(stderr, "nats-call: reply: %s\n", natsStatus_GetText(s));
                        return -1;
                }
                if (natsMsg_GetDataLength(m) == RPC_SIZE)
                        ids[n++] = rpc_id(natsMsg_GetData(m));
                natsMsg_Destroy(m);
        }
        return n;
}

static int cmd_call(const char *url, const char *subject, const RpcPlan *plan)
{
        static const RpcOps ops = {nats_send, nats_wait};
        NatsCaller c = {.subject = subject};
        char wild[80];
        natsInbox *inbox = NULL;
        natsStatus s;
        int ret = 1;

        c.nc = nats_connect(url, "nats-call");
        if (!c.nc)
                return 1;
        s = natsInbox_Create(&inbox);
        if (s == NATS_OK) {
                if ((size_t)snprintf(c.prefix, sizeof(c.prefix), "%s", (const char *)inbox) >=
                            sizeof(c.prefix) ||
                    (size_t)snprintf(wild, sizeof(wild), "%s.*", c.prefix) >= sizeof(wild))
                        s = NATS_INSUFFICIENT_BUFFER;
                else
                        s = natsConnection_SubscribeSync(&c.inbox, c.nc, wild);
        }
        if (s == NATS_OK)
                s = natsSubscription_SetPendingLimits(c.inbox, -1, -1);
        if (s == NATS_OK)
                s = natsConnection_Flush(c.nc);
        if (s != NATS_OK)
                fprintf(stderr, "nats-call: inbox: %s\n", natsStatus_GetText(s));
        else
                ret = rpc_drive(&ops, &c, plan, "nats-call") < 0 ? 1 : 0;
        natsSubscription_Destroy(c.inbox);
        natsInbox_Destroy(inbox);
        natsConnection_Destroy(c.nc);
        return ret;
}

int main(int argc, char **argv)
{
        RpcPlan plan;
        if (argc < 4 || rpc_parse_plan(argc, argv, &plan) < 0) {
                fprintf(stderr, "usage: rpc-bench-nats serve|call URL SUBJECT [--ready FILE] "
                                "[--warm N] [--lat N] [--tput N]\n");
                return 2;
        }
        if (strcmp(argv[1], "serve") == 0)
                return cmd_serve(argv[2], argv[3], plan.ready);
        if (strcmp(argv[1], "call") == 0)
                return cmd_call(argv[2], argv[3], &plan);
        return 2;
}
