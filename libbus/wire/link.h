/* SPDX-License-Identifier: MIT */
/*
 * link: frames over a transport. Reads whole frames (decoder + validated control messages) and
 * writes whole frames (all or nothing), with a small bounded backlog for control frames that
 * find the transport full, so a side can always answer PING or grant CREDIT without blocking.
 *
 * Reading: vbus__link_next() returns one frame at a time. A DATA payload may point straight into
 * the transport (a shared ring: zero copy, but the peer can still change those bytes; treat them
 * as opaque); a control payload is first copied to private memory, then decoded and validated, so
 * no check can be raced. The frame stays valid until the next vbus__link_next(), and the caller
 * must not call vbus__transport_process() while it holds one.
 *
 * Batches (protocol.md 5.5): vbus__link_batch_add() writes messages into one batch frame in
 * reserved transport space, so that a message costs a length varint and a copy, not a frame; the
 * frame is published (its header written, the space committed) before anything else is written
 * to the link, read from it, or flushed, so frames keep their order.
 *
 * Writing: a frame is written only if it fits whole; otherwise -EAGAIN and nothing is written
 * (the transport asked the peer to signal when it reads). Control frames that do not fit go to
 * the backlog (at most VBUS_LINK_BACKLOG_MAX bytes; a peer that lets it overflow is not reading
 * its link and gets disconnected: -ENOBUFS). While the backlog holds anything, data frames wait,
 * so frames keep their order.
 */
#ifndef VBUS_LIBBUS_LINK_H
#define VBUS_LIBBUS_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "control.h"
#include "frame.h"
#include "transport.h"

enum {
        /* Control frames queued while the transport is full: 16 full-size ones. */
        VBUS_LINK_BACKLOG_MAX = 16 * (VBUS_FRAME_HEADER_SIZE + VBUS_CONTROL_MAX),
        /* Smallest ring a vchan link accepts each way: a full control frame must fit at once. */
        VBUS_LINK_RING_MIN = 8192,
};

/* A batch frame being combined in reserved transport space (vbus__link_batch_add()). */
typedef struct VbusLinkBatch {
        bool open;
        VbusFrameHeader h;   /* DATA + BATCH, its stream; length and n_messages so far */
        uint64_t key;        /* vbus__link_batch_add()'s */
        struct iovec dst[2]; /* the reserved space: the header's place, then the records */
        size_t room;         /* bytes of dst the frame may fill (header included) */
        uint64_t serial;     /* counts the batches opened: which one is open now */
} VbusLinkBatch;

typedef struct VbusLink {
        VbusTransport transport;
        VbusFrameDecoder decoder;
        size_t n_unconsumed; /* bytes of the returned frame still to consume */
        uint8_t *ctl;        /* private copy of a control payload (VBUS_CONTROL_MAX) */
        VbusControl control; /* the decoded control message of the returned frame */
        uint8_t *backlog;
        size_t n_backlog;
        int violation; /* VBUS_FRAME_E_* after -EPROTO from vbus__link_next() */
        VbusLinkBatch batch;
        /* Frames and their bytes (headers included) read and written, for statistics. */
        uint64_t n_frames_in, n_bytes_in, n_frames_out, n_bytes_out;
} VbusLink;

/* Takes the transport (moved in: the caller's copy must not be used again). */
int vbus__link_init(VbusLink *l, VbusTransport *t, uint32_t own_max_frame);
void vbus__link_deinit(VbusLink *l);

/* After HELLO: the largest payload this side accepts from now on. */
int vbus__link_set_max_frame(VbusLink *l, uint32_t own_max_frame);

/**
 * vbus__link_next() - the next received frame.
 * @ret_frame: written on 1.
 * @ret_control: written on 1: the decoded control message (borrowed until the next call), or
 *               NULL for DATA.
 * Return: 1 (a frame), 0 (nothing complete yet), -EPROTO (the peer broke a rule:
 * l->violation says which), -EPIPE (the peer closed; l->violation is 0 unless it stopped
 * inside a frame), -ENOMEM, other -errno from the transport.
 */
int vbus__link_next(VbusLink *l, VbusFrame *ret_frame, const VbusControl **ret_control);

/* The largest DATA payload this link can write in one frame, given the peer's max_frame. */
size_t vbus__link_max_payload(VbusLink *l, uint32_t peer_max_frame);

/**
 * vbus__link_write() - write one frame whose payload is the concatenation of @pieces.
 * @h: borrowed; h->length must equal the pieces' total.
 * Return: 0, -EAGAIN (not enough room, or control frames are waiting), -EINVAL, -EPIPE, -errno.
 */
int vbus__link_write(VbusLink *l, const VbusFrameHeader *h, const struct iovec *pieces,
                     size_t n_pieces);

/**
 * vbus__link_write_control() - write a control frame now, or queue it in the backlog.
 * Return: 0, -ENOBUFS (backlog full: the peer is not reading), -EINVAL, -EPIPE, -errno.
 */
int vbus__link_write_control(VbusLink *l, const VbusFrameHeader *h, const ProtobufCMessage *msg);

/* Moves the backlog into the transport as space allows, then flushes it. Return: 0 or -errno. */
int vbus__link_flush(VbusLink *l);

/**
 * vbus__link_batch_joins() - whether a message of @len bytes for @h's stream and @key would join
 * the batch being combined (same stream, session, flags and @key, and room for it within
 * @max_payload and the reserved space) rather than start a new one.
 */
bool vbus__link_batch_joins(const VbusLink *l, const VbusFrameHeader *h, uint64_t key, size_t len,
                            size_t max_payload);

/**
 * vbus__link_batch_add() - append one message to the batch frame being combined for @h's stream
 * (protocol.md 5.5), written straight into reserved transport space and published by
 * vbus__link_batch_commit(). Any other write, vbus__link_flush() and vbus__link_process() publish
 * it first, so frames keep their order and a message taken is never lost while the link lives.
 * With a prefix (@n_prefix > 0: a Meta prefix, which describes a batch's first message), or
 * unless vbus__link_batch_joins() said so, the open batch is published first and a new one starts
 * with @prefix (or none).
 * @h: borrowed: type DATA, flags with VBUS_FLAG_BATCH, the stream and session ids.
 * @key: what the messages of one batch share besides their stream (the broker: the publisher).
 * Return: 0; -EAGAIN (no room in the transport: nothing appended); -EINVAL; -errno.
 */
int vbus__link_batch_add(VbusLink *l, const VbusFrameHeader *h, uint64_t key, const void *prefix,
                         size_t n_prefix, const void *data, size_t len, size_t max_payload);

/* vbus__link_batch_add() of a message that vbus__link_batch_joins() said joins the open batch,
 * with nothing done to the link since: appended without further checks. */
void vbus__link_batch_join(VbusLink *l, const void *data, size_t len);

/**
 * vbus__link_batch_add_records() - as vbus__link_batch_add(), for @n messages already laid out
 * as batch records (@records, @n_bytes: length varints and bytes, checked by the caller: a batch
 * passed on whole); vbus__link_batch_joins_records() says whether they would join.
 */
bool vbus__link_batch_joins_records(const VbusLink *l, const VbusFrameHeader *h, uint64_t key,
                                    size_t n_bytes, size_t max_payload);
/* The record bytes vbus__link_batch_add_records() would take now for @h's stream and @key:
 * without a prefix, what is left of the open batch they would join; else (publishing the open
 * batch) what a new batch with an @n_prefix-byte prefix would find free. */
size_t vbus__link_batch_room(VbusLink *l, const VbusFrameHeader *h, uint64_t key, size_t n_prefix,
                             size_t max_payload);
int vbus__link_batch_add_records(VbusLink *l, const VbusFrameHeader *h, uint64_t key,
                                 const void *prefix, size_t n_prefix, const void *records,
                                 size_t n_bytes, uint32_t n, size_t max_payload);

/* Publishes the batch being combined, if any. Return: 0 or -errno from the transport. */
int vbus__link_batch_commit(VbusLink *l);

/* Whether a batch is being combined (vbus__link_batch_commit() is owed). */
static inline bool vbus__link_batch_is_open(const VbusLink *l)
{
        return l->batch.open;
}

/* The transport's own work (vbus__transport_process()), after publishing an open batch. */
int vbus__link_process(VbusLink *l);

static inline bool vbus__link_has_backlog(const VbusLink *l)
{
        return l->n_backlog > 0;
}

#endif /* VBUS_LIBBUS_LINK_H */
