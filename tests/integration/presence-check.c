/* SPDX-License-Identifier: MIT */
/*
 * presence-check: a subscriber of the broker's presence events (vbus.peer.up/down,
 * vbus.service.up/down), for the integration tests (presence.sh).
 *
 *   presence-check [--ready FILE] [--snapshot]
 *       subscribes to vbus.> over $VBUS_URL and prints each event as one line:
 *         event TOPIC seq=N id=I domid=D name=NAME transport=T local=0|1 service=S reason=R
 *               sender=local|domN
 *       (sender: who the broker stamped on the message). Creates FILE once the subscription is
 *       active. With --snapshot, it then asks vbus.v1.Broker/Peers and prints
 *         snapshot seq=N
 *         peer id=I domid=D name=NAME transport=T
 *       so a test can check that events after the snapshot's seq are exactly what changed since.
 *       Runs until killed; exits 1 if the subscription ends.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vbus/vbus.h>

#include "vbus/v1/broker.pb-c.h"

static void on_event(vbus_subscription *sub, const vbus_message *msg, void *userdata)
{
        const char *topic = vbus_message_get_topic(msg);
        Vbus__V1__PresenceEvent *ev;
        const void *d;
        size_t n;

        (void)sub;
        (void)userdata;
        d = vbus_message_get_data(msg, &n);
        ev = vbus__v1__presence_event__unpack(NULL, n, d);
        if (!ev) {
                printf("undecodable %s %zu bytes\n", topic, n);
                return;
        }
        printf("event %s seq=%" PRIu64, topic, ev->seq);
        if (ev->peer)
                printf(" id=%" PRIu64 " domid=%" PRIu32 " name=%s transport=%s local=%d",
                       ev->peer->id, ev->peer->domid, ev->peer->domain_name, ev->peer->transport,
                       ev->peer->local);
        printf(" service=%s reason=%s", ev->service, ev->reason);
        if (vbus_message_is_sender_local(msg))
                printf(" sender=local\n");
        else
                printf(" sender=dom%" PRIu32 "\n", vbus_message_get_sender_domid(msg));
        vbus__v1__presence_event__free_unpacked(ev, NULL);
}

static int snapshot(vbus_conn *c)
{
        Vbus__V1__PeersRequest rq = VBUS__V1__PEERS_REQUEST__INIT;
        Vbus__V1__PeersReply *m;
        uint8_t req[16];
        vbus_reply *reply = NULL;
        const void *d;
        size_t n = vbus__v1__peers_request__pack(&rq, req);

        if (vbus_call_sync(c, "vbus.v1.Broker/Peers", req, n, 5000000, &reply) < 0 ||
            vbus_reply_get_status(reply) != VBUS_STATUS_OK) {
                fprintf(stderr, "presence-check: Peers failed\n");
                vbus_reply_free(reply);
                return -1;
        }
        d = vbus_reply_get_data(reply, &n);
        m = vbus__v1__peers_reply__unpack(NULL, n, d);
        vbus_reply_free(reply);
        if (!m)
                return -1;
        printf("snapshot seq=%" PRIu64 "\n", m->presence_seq);
        for (size_t i = 0; i < m->n_peers; i++)
                printf("peer id=%" PRIu64 " domid=%" PRIu32 " name=%s transport=%s\n",
                       m->peers[i]->id, m->peers[i]->domid, m->peers[i]->domain_name,
                       m->peers[i]->transport);
        vbus__v1__peers_reply__free_unpacked(m, NULL);
        return 0;
}

int main(int argc, char **argv)
{
        const char *ready = NULL;
        bool want_snapshot = false, announced = false;
        vbus_subscription *s = NULL;
        vbus_conn *c = NULL;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--ready") == 0 && i + 1 < argc)
                        ready = argv[++i];
                else if (strcmp(argv[i], "--snapshot") == 0)
                        want_snapshot = true;
                else
                        return 2;
        }
        (void)setvbuf(stdout, NULL, _IOLBF, 0);
        if (vbus_conn_open(NULL, &c) < 0 || vbus_conn_wait_ready(c, 5000000) < 0 ||
            vbus_subscribe(c, "vbus.>", VBUS_SLOW_DROP, on_event, NULL, &s) < 0) {
                fprintf(stderr, "presence-check: cannot subscribe\n");
                return 1;
        }
        for (;;) {
                const char *why = NULL;
                int r = vbus_conn_wait(c, 100000);

                if (r < 0 && r != -ETIMEDOUT && r != -EINTR)
                        return 1;
                if (vbus_subscription_get_status(s, &why) > 0) {
                        fprintf(stderr, "presence-check: subscription ended: %s\n", why);
                        return 1;
                }
                if (!announced && vbus_subscription_is_active(s)) {
                        announced = true;
                        if (want_snapshot && snapshot(c) < 0)
                                return 1;
                        if (ready) {
                                FILE *f = fopen(ready, "w");

                                if (f)
                                        (void)fclose(f); /* empty: nothing to lose */
                        }
                }
        }
}
