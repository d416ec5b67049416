/* SPDX-License-Identifier: MIT */
/*
 * bridge-nats-check: a plain libnats client for the bridge tests (what any NATS user would run
 * against the cluster, no vbus involved).
 *
 *   bridge-nats-check sub URL SUBJECT COUNT [TIMEOUT_MS]
 *       prints "SUBJECT Vbus-From=.. Vbus-Seq=.. Vbus-Topic=.. | PAYLOAD" per message, exits 0
 *       after COUNT messages, 1 on timeout; "ready" on stderr once subscribed.
 *   bridge-nats-check req URL SUBJECT PAYLOAD [TIMEOUT_MS]
 *       one request; prints "no-responders" or "status=S message=M | DATA".
 *   bridge-nats-check pub URL SUBJECT PAYLOAD [KEY=VALUE...]
 *       publishes one message with the given headers.
 */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static natsConnection *connect_to(const char *url)
{
        natsConnection *nc = NULL;
        natsStatus s = natsConnection_ConnectTo(&nc, url);

        if (s != NATS_OK) {
                fprintf(stderr, "connect %s: %s\n", url, natsStatus_GetText(s));
                exit(1);
        }
        return nc;
}

static const char *header(natsMsg *m, const char *key)
{
        const char *v = NULL;

        return natsMsgHeader_Get(m, key, &v) == NATS_OK && v ? v : "-";
}

static int cmd_sub(const char *url, const char *subject, long count, long timeout_ms)
{
        natsConnection *nc = connect_to(url);
        natsSubscription *sub = NULL;
        long n = 0;

        if (natsConnection_SubscribeSync(&sub, nc, subject) != NATS_OK ||
            natsConnection_Flush(nc) != NATS_OK)
                return 1;
        fprintf(stderr, "ready\n");
        while (n < count) {
                natsMsg *m = NULL;

                if (natsSubscription_NextMsg(&m, sub, timeout_ms) != NATS_OK) {
                        fprintf(stderr, "timed out after %ld messages\n", n);
                        return 1;
                }
                printf("%s Vbus-From=%s Vbus-Seq=%s Vbus-Topic=%s Vbus-Domid=%s | %.*s\n",
                       natsMsg_GetSubject(m), header(m, "Vbus-From"), header(m, "Vbus-Seq"),
                       header(m, "Vbus-Topic"), header(m, "Vbus-Domid"), natsMsg_GetDataLength(m),
                       natsMsg_GetData(m));
                fflush(stdout);
                natsMsg_Destroy(m);
                n++;
        }
        natsSubscription_Destroy(sub);
        natsConnection_Destroy(nc);
        return 0;
}

static int cmd_req(const char *url, const char *subject, const char *payload, long timeout_ms)
{
        natsConnection *nc = connect_to(url);
        natsMsg *req = NULL, *reply = NULL;
        natsStatus s;

        natsMsg_Create(&req, subject, NULL, payload, (int)strlen(payload));
        natsMsgHeader_Set(req, "Vbus-From", "plain-nats");
        s = natsConnection_RequestMsg(&reply, nc, req, timeout_ms);
        if (s == NATS_NO_RESPONDERS || (s == NATS_OK && natsMsg_IsNoResponders(reply))) {
                printf("no-responders\n");
        } else if (s != NATS_OK) {
                printf("error %s\n", natsStatus_GetText(s));
        } else {
                printf("status=%s message=%s | %.*s\n", header(reply, "Vbus-Status"),
                       header(reply, "Vbus-Message"), natsMsg_GetDataLength(reply),
                       natsMsg_GetData(reply));
        }
        natsMsg_Destroy(reply);
        natsMsg_Destroy(req);
        natsConnection_Destroy(nc);
        return 0;
}

static int cmd_pub(const char *url, const char *subject, const char *payload, char **hdrs, int n)
{
        natsConnection *nc = connect_to(url);
        natsMsg *m = NULL;

        natsMsg_Create(&m, subject, NULL, payload, (int)strlen(payload));
        for (int i = 0; i < n; i++) {
                char *eq = strchr(hdrs[i], '=');

                if (!eq)
                        return 2;
                *eq = '\0';
                natsMsgHeader_Add(m, hdrs[i], eq + 1);
        }
        if (natsConnection_PublishMsg(nc, m) != NATS_OK || natsConnection_Flush(nc) != NATS_OK)
                return 1;
        natsMsg_Destroy(m);
        natsConnection_Destroy(nc);
        return 0;
}

int main(int argc, char **argv)
{
        int r = 2;

        if (argc >= 5 && strcmp(argv[1], "sub") == 0)
                r = cmd_sub(argv[2], argv[3], atol(argv[4]), argc > 5 ? atol(argv[5]) : 10000);
        else if (argc >= 5 && strcmp(argv[1], "req") == 0)
                r = cmd_req(argv[2], argv[3], argv[4], argc > 5 ? atol(argv[5]) : 5000);
        else if (argc >= 5 && strcmp(argv[1], "pub") == 0)
                r = cmd_pub(argv[2], argv[3], argv[4], argv + 5, argc - 5);
        else
                fprintf(stderr, "usage: see the comment at the top of bridge-nats-check.c\n");
        nats_Close();
        return r;
}
