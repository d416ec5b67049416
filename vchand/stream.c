/* SPDX-License-Identifier: MIT */
/*
 * stream: the generic part of the broker's streams (see stream.h).
 */
#include "stream.h"

#include <errno.h>

void stream_bind(Stream *s, Peer *p, VbusStream *vs, const VbusStreamOps *ops, void *obj)
{
        s->peer = p;
        s->id = vs->id;
        vbus__endpoint_bind(vs, ops, obj);
}

void stream_identity(Vbus__V1__Identity *ret, const Identity *ident)
{
        vbus__v1__identity__init(ret);
        ret->domid = ident->domid;
        ret->domain_name = (char *)ident->domain_name;
        ret->local = ident->local;
        ret->uid = ident->uid;
        ret->pid = ident->pid;
        ret->key_name = (char *)ident->key_name;
        ret->session = ident->session;
}

void stream_identity_claims(Vbus__V1__Identity *ret, Vbus__V1__Claims *claims,
                            const Identity *ident)
{
        stream_identity(ret, ident);
        if (!ident->claims.present)
                return;
        vbus__v1__claims__init(claims);
        claims->uid = ident->claims.uid;
        claims->pid = ident->claims.pid;
        claims->command = (char *)ident->claims.command;
        ret->claims = claims;
}

int stream_accept(Stream *s, uint32_t credit, const Identity *server)
{
        Vbus__V1__Accept a = VBUS__V1__ACCEPT__INIT;
        Vbus__V1__Identity id;
        Vbus__V1__Claims claims;

        if (!s->peer)
                return -EPIPE;
        a.initial_credit = credit;
        if (server) {
                stream_identity_claims(&id, &claims, server);
                a.peer = &id;
        }
        return peer_send_control(s->peer, VBUS_FRAME_ACCEPT, 0, s->id, &a.base);
}

int stream_end(Stream *s, int status, const char *message)
{
        if (!s->peer)
                return -EPIPE;
        return peer_send_end(s->peer, VBUS_FRAME_END, s->id, status, message);
}

int stream_reset(Stream *s, int status, const char *message)
{
        if (!s->peer)
                return -EPIPE;
        return peer_send_end(s->peer, VBUS_FRAME_RESET, s->id, status, message);
}

int stream_send_data(Stream *s, uint8_t flags, const struct iovec *pieces, size_t n_pieces)
{
        if (!s->peer)
                return -EPIPE;
        return peer_send_data(s->peer, s->id, flags, pieces, n_pieces);
}

ssize_t stream_data_room(Stream *s)
{
        if (!s->peer)
                return -ENOENT;
        return peer_data_room(s->peer, s->id);
}

bool stream_batches(const Stream *s)
{
        return s->peer && peer_batches(s->peer);
}

bool stream_batch_joins(Stream *s, uint64_t key, size_t n)
{
        return s->peer && peer_batch_joins(s->peer, s->id, key, n);
}

int stream_batch_add(Stream *s, uint64_t key, const void *prefix, size_t n_prefix, const void *data,
                     size_t n)
{
        if (!s->peer)
                return -EPIPE;
        return peer_batch_add(s->peer, s->id, key, prefix, n_prefix, data, n);
}

int stream_batch_add_records(Stream *s, uint64_t key, const void *prefix, size_t n_prefix,
                             const void *records, size_t n_bytes, uint32_t n)
{
        if (!s->peer)
                return -EPIPE;
        return peer_batch_add_records(s->peer, s->id, key, prefix, n_prefix, records, n_bytes, n);
}

uint32_t stream_msg_charge(const Stream *s)
{
        return s->peer ? peer_msg_charge(s->peer) : 0;
}

int stream_op_refuse_data(void *obj, VbusStream *vs, const VbusFrame *f)
{
        (void)vs;
        (void)f;
        /* The window rule already bounded what the peer could send. */
        (void)stream_reset(obj, VBUS__V1__STATUS__STATUS_INVALID_ARGUMENT,
                           "this stream carries no data from you");
        return 0;
}

int stream_op_end_too(void *obj, VbusStream *vs, const Vbus__V1__End *m)
{
        (void)m;
        /* Unless the broker had ended first: then this END closed the stream. */
        if (!vs->local_ended)
                (void)stream_end(obj, VBUS__V1__STATUS__STATUS_OK, NULL);
        return 0;
}
