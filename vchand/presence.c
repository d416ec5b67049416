/* SPDX-License-Identifier: MIT */
/*
 * presence: peer and service up/down events on reserved topics (see presence.h).
 *
 * An event is encoded when it is noted (the identity it names may be freed before the flush)
 * and kept in a FIFO of at most LIMIT_PRESENCE_PENDING events until presence_flush().
 */
#include "presence.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/list.h"
#include "vbus/v1/broker.pb-c.h"
#include "vchand-limits.h"

typedef struct PresenceItem {
        List link;
        const char *topic;
        size_t n;
        uint8_t data[];
} PresenceItem;

struct Presence {
        List pending; /* PresenceItem, oldest first */
        uint32_t n_pending;
        uint64_t seq;
        uint64_t lost;
};

int presence_new(Bus *b)
{
        Presence *pr = calloc(1, sizeof(*pr));

        if (!pr)
                return -ENOMEM;
        list_init(&pr->pending);
        b->presence = pr;
        return 0;
}

void presence_free(Bus *b)
{
        Presence *pr = b->presence;
        List *pos, *tmp;

        if (!pr)
                return;
        list_for_each_safe(pos, tmp, &pr->pending) free(list_entry(pos, PresenceItem, link));
        free(pr);
        b->presence = NULL;
}

/* Encodes @ev (its seq is set here) and queues it for @topic. */
static void presence_note(Bus *b, const char *topic, Vbus__V1__PresenceEvent *ev)
{
        Presence *pr = b->presence;
        PresenceItem *it;
        size_t n;

        if (!pr)
                return;
        ev->seq = ++pr->seq;
        if (pr->n_pending >= LIMIT_PRESENCE_PENDING) {
                pr->lost++;
                return;
        }
        n = vbus__v1__presence_event__get_packed_size(ev);
        it = malloc(sizeof(*it) + n);
        if (!it) {
                pr->lost++;
                return;
        }
        it->topic = topic;
        it->n = vbus__v1__presence_event__pack(ev, it->data);
        list_add_tail(&pr->pending, &it->link);
        pr->n_pending++;
}

static void peer_info_identity(Vbus__V1__PeerInfo *pi, const Identity *ident)
{
        pi->domid = ident->domid;
        pi->domain_name = (char *)ident->domain_name;
        pi->local = ident->local;
        pi->uid = ident->uid;
        pi->pid = ident->pid;
}

void presence_peer(Bus *b, const Identity *ident, uint64_t serial, const char *transport, bool up,
                   const char *reason)
{
        Vbus__V1__PresenceEvent ev = VBUS__V1__PRESENCE_EVENT__INIT;
        Vbus__V1__PeerInfo pi = VBUS__V1__PEER_INFO__INIT;

        peer_info_identity(&pi, ident);
        pi.id = serial;
        pi.transport = (char *)transport;
        ev.peer = &pi;
        if (reason)
                ev.reason = (char *)reason;
        presence_note(b, up ? PRESENCE_TOPIC_PEER_UP : PRESENCE_TOPIC_PEER_DOWN, &ev);
}

void presence_service(Bus *b, const char *service, const Identity *server, bool up)
{
        Vbus__V1__PresenceEvent ev = VBUS__V1__PRESENCE_EVENT__INIT;
        Vbus__V1__PeerInfo pi = VBUS__V1__PEER_INFO__INIT;

        if (server) {
                peer_info_identity(&pi, server);
                ev.peer = &pi;
        }
        ev.service = (char *)service;
        presence_note(b, up ? PRESENCE_TOPIC_SERVICE_UP : PRESENCE_TOPIC_SERVICE_DOWN, &ev);
}

void presence_flush(Bus *b)
{
        Presence *pr = b->presence;
        List *pos, *tmp;

        if (!pr)
                return;
        /* A delivery may drop a subscriber, whose peer.down is appended here while we walk:
         * it goes out in this flush or the next one, in order either way. */
        list_for_each_safe(pos, tmp, &pr->pending)
        {
                PresenceItem *it = list_entry(pos, PresenceItem, link);

                list_unlink(&it->link);
                pr->n_pending--;
                if (b->publish_local)
                        b->publish_local(b, it->topic, it->data, it->n);
                free(it);
        }
}

uint64_t presence_get_seq(const Bus *b)
{
        return b->presence ? b->presence->seq : 0;
}

uint64_t presence_get_lost(const Bus *b)
{
        return b->presence ? b->presence->lost : 0;
}
