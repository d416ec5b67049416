/* SPDX-License-Identifier: MIT */
/*
 * endpoint: the receive loop, the senders and the dispatch of one link and its session (see
 * endpoint.h). Invariants:
 *  - every frame read is checked by the link (rules 1-10 of protocol.md) and by the session
 *    (rule 11) before any op sees it;
 *  - every frame written has been allowed by the session first; DATA is checked before it is
 *    written and applied after, so a frame the session refuses never reaches the link;
 *  - a stream's ->closed runs exactly once, with the stream still allocated: the endpoint takes
 *    the closed stream out of the session's keeping for the call.
 */
#include "endpoint.h"

#include <errno.h>
#include <stdlib.h>

#include "batch.h"

int vbus__endpoint_init(VbusEndpoint *e, VbusTransport *t, VbusSessionRole role, uint32_t max_frame,
                        uint32_t max_streams, const VbusEndpointOps *ops, void *owner)
{
        int r;

        if (!e || !t || !ops)
                return -EINVAL;
        *e = (VbusEndpoint){.ops = ops, .owner = owner};
        e->lk = &e->link;
        r = vbus__session_init(&e->session, role, 0, max_frame, max_streams);
        if (r < 0)
                return r;
        r = vbus__link_init(e->lk, t, max_frame);
        if (r < 0) {
                vbus__session_deinit(&e->session);
                return r;
        }
        return 0;
}

int vbus__endpoint_init_session(VbusEndpoint *e, VbusLink *link, VbusSessionRole role,
                                uint32_t session_id, uint32_t max_frame, uint32_t max_streams,
                                const VbusEndpointOps *ops, void *owner)
{
        int r;

        if (!e || !link || !ops || session_id == 0)
                return -EINVAL;
        *e = (VbusEndpoint){.ops = ops, .owner = owner, .lk = link};
        e->link.transport = (VbusTransport)VBUS_TRANSPORT_NULL;
        r = vbus__session_init(&e->session, role, session_id, max_frame, max_streams);
        return r < 0 ? r : 0;
}

static void stream_closed_at_deinit(VbusStream *vs, void *data)
{
        (void)data;
        if (vs->ops && vs->ops->closed)
                vs->ops->closed(vs->userdata, vs);
}

void vbus__endpoint_deinit(VbusEndpoint *e)
{
        if (!e)
                return;
        /* Sends fail from here on, so ->closed cannot change the table being walked. */
        e->closing = true;
        vbus__session_foreach_stream(&e->session, stream_closed_at_deinit, NULL);
        vbus__session_deinit(&e->session);
        /* A session on a shared link leaves the link to its owner. */
        if (e->lk == &e->link)
                vbus__link_deinit(&e->link);
}

static void endpoint_wrote(VbusEndpoint *e)
{
        if (e->ops->wrote)
                e->ops->wrote(e->owner);
}

/* @vs was just closed by a frame: run its ->closed while it is still allocated. */
static void endpoint_closed(VbusEndpoint *e, VbusStream *vs)
{
        VbusStream *held = vbus__session_take_closed(&e->session);

        if (vs->ops && vs->ops->closed)
                vs->ops->closed(vs->userdata, vs);
        free(held);
}

void vbus__endpoint_unbind(VbusEndpoint *e, uint32_t id)
{
        VbusStream *vs = vbus__session_get_stream(&e->session, id);

        if (vs)
                vbus__endpoint_bind(vs, NULL, NULL);
}

/* --- sending ----------------------------------------------------------------------------- */

/*
 * The rules the peer will apply to a control message it receives, applied before the session
 * sees it: a message the peer would take for a violation, or one too large to encode, is this
 * side's error and must neither change the session nor reach the link.
 */
static int check_control(uint8_t type, const ProtobufCMessage *msg)
{
        if (!msg || msg->descriptor != vbus__control_descriptor(type))
                return -EINVAL;
        if (protobuf_c_message_get_packed_size(msg) > VBUS_CONTROL_MAX)
                return -EMSGSIZE;
        return vbus__control_validate(type, msg) == 0 ? 0 : -EINVAL;
}

/* A control payload encoded once, by checked_control(), for write_control(). */
typedef struct Encoded {
        uint8_t buf[VBUS_CONTROL_MAX];
        size_t n;
} Encoded;

/* check_control(), and @msg's encoding into @ret (its size is computed once, for both). */
static int checked_control(uint8_t type, const ProtobufCMessage *msg, Encoded *ret)
{
        size_t n;

        if (!msg || msg->descriptor != vbus__control_descriptor(type))
                return -EINVAL;
        n = protobuf_c_message_get_packed_size(msg);
        if (n > VBUS_CONTROL_MAX)
                return -EMSGSIZE;
        if (vbus__control_validate(type, msg) != 0)
                return -EINVAL;
        ret->n = protobuf_c_message_pack(msg, ret->buf);
        return ret->n == n ? 0 : -EINVAL;
}

/*
 * Writes the control frame @h (its length set here) whose payload @enc holds: directly when the
 * link has no backlog and the frame fits now (the common case: no second encoding pass), else
 * through vbus__link_write_control(), which keeps it in the backlog as before.
 */
static int write_control(VbusEndpoint *e, VbusFrameHeader *h, const ProtobufCMessage *msg,
                         const Encoded *enc)
{
        struct iovec piece = {(void *)enc->buf, enc->n};
        int r;

        h->length = (uint32_t)enc->n;
        if (!vbus__link_has_backlog(e->lk)) {
                r = vbus__link_write(e->lk, h, &piece, 1);
                if (r != -EAGAIN)
                        return r;
        }
        h->length = 0;
        return vbus__link_write_control(e->lk, h, msg);
}

/* Sends the control frame @msg, whose checked encoding @enc holds (checked_control()). */
static int send_encoded(VbusEndpoint *e, uint8_t type, uint8_t flags, uint32_t id,
                        const ProtobufCMessage *msg, const Encoded *enc)
{
        VbusFrameHeader h = {
                .type = type, .flags = flags, .stream_id = id, .session_id = e->session.session_id};
        VbusStream *vs = NULL;
        bool closed = false;
        int r;

        r = vbus__session_send(&e->session, &h, msg, &vs, &closed);
        if (r < 0)
                return r;
        r = write_control(e, &h, msg, enc);
        if (r == 0)
                endpoint_wrote(e);
        /* The session has applied the frame: the stream is gone whether or not it was written. */
        if (closed && vs)
                endpoint_closed(e, vs);
        return r;
}

int vbus__endpoint_send_control(VbusEndpoint *e, uint8_t type, uint8_t flags, uint32_t id,
                                const ProtobufCMessage *msg)
{
        Encoded enc;
        int r;

        if (e->closing)
                return -EPIPE;
        r = checked_control(type, msg, &enc);
        if (r < 0)
                return r;
        return send_encoded(e, type, flags, id, msg, &enc);
}

/*
 * The encoding of End{status, message} when it is what most ENDs are, no message and a status
 * below 128 (every vbus.v1.Status is): field 1 as a one-byte varint, or nothing for 0, exactly
 * what protobuf-c writes for it (test-endpoint compares the two). Every call ends with four
 * ENDs, and this spares each a sizing and a packing pass. Return: false for any other END.
 */
static bool end_encode_short(int status, const char *message, Encoded *ret)
{
        if ((message && message[0]) || status < 0 || status > 127)
                return false;
        ret->n = 0;
        if (status != 0) {
                ret->buf[0] = 1 << 3 | 0; /* field 1, varint */
                ret->buf[1] = (uint8_t)status;
                ret->n = 2;
        }
        return true;
}

int vbus__endpoint_send_end(VbusEndpoint *e, uint8_t type, uint32_t id, int status,
                            const char *message)
{
        Vbus__V1__End m = VBUS__V1__END__INIT;
        Encoded enc;

        m.status = status;
        m.message = (char *)message;
        if (e->closing)
                return -EPIPE;
        if (!end_encode_short(status, message, &enc))
                return vbus__endpoint_send_control(e, type, 0, id, &m.base);
        /* The checks of checked_control(), but the encoding's. */
        if (m.base.descriptor != vbus__control_descriptor(type) ||
            vbus__control_validate(type, &m.base) != 0)
                return -EINVAL;
        return send_encoded(e, type, 0, id, &m.base, &enc);
}

int vbus__endpoint_send_sessionless(VbusEndpoint *e, uint8_t type, uint32_t session_id,
                                    const ProtobufCMessage *msg)
{
        VbusFrameHeader h = {.type = type, .session_id = session_id};
        int r;

        if (e->closing)
                return -EPIPE;
        if (session_id == e->session.session_id ||
            (type != VBUS_FRAME_GOAWAY && type != VBUS_FRAME_ERROR))
                return -EINVAL;
        r = check_control(type, msg);
        if (r < 0)
                return r;
        r = vbus__link_write_control(e->lk, &h, msg);
        if (r == 0)
                endpoint_wrote(e);
        return r;
}

int vbus__endpoint_open(VbusEndpoint *e, const Vbus__V1__Open *m, const VbusStreamOps *ops,
                        void *obj, uint32_t *ret_id)
{
        VbusFrameHeader h = {.type = VBUS_FRAME_OPEN, .session_id = e->session.session_id};
        VbusStream *vs = NULL;
        bool closed = false;
        Encoded enc;
        int r;

        if (e->closing)
                return -EPIPE;
        r = checked_control(VBUS_FRAME_OPEN, &m->base, &enc);
        if (r < 0)
                return r;
        h.stream_id = vbus__session_next_id(&e->session);
        if (h.stream_id == 0)
                return -E2BIG;
        r = vbus__session_send(&e->session, &h, &m->base, &vs, &closed);
        if (r < 0)
                return r;
        r = write_control(e, &h, &m->base, &enc);
        if (r < 0)
                return r; /* the link is lost; the stream has no owner to tell */
        vbus__endpoint_bind(vs, ops, obj);
        endpoint_wrote(e);
        *ret_id = h.stream_id;
        return 0;
}

static int send_data(VbusEndpoint *e, uint32_t id, uint8_t flags, const struct iovec *pieces,
                     size_t n_pieces, uint32_t n_messages)
{
        VbusFrameHeader h = {.type = VBUS_FRAME_DATA,
                             .flags = flags,
                             .stream_id = id,
                             .session_id = e->session.session_id,
                             .n_messages = n_messages};
        uint64_t len = 0;
        int r;

        if (e->closing)
                return -EPIPE;
        for (size_t i = 0; i < n_pieces; i++)
                len += pieces[i].iov_len;
        if (len > UINT32_MAX)
                return -EINVAL;
        h.length = (uint32_t)len;
        r = vbus__session_check_data(&e->session, &h);
        if (r != 0)
                return r;
        r = vbus__link_write(e->lk, &h, pieces, n_pieces);
        if (r < 0)
                return r;
        endpoint_wrote(e);
        /* Checked above, so it is applied; DATA never closes a stream. */
        return vbus__session_send(&e->session, &h, NULL, NULL, NULL);
}

int vbus__endpoint_send_data(VbusEndpoint *e, uint32_t id, uint8_t flags,
                             const struct iovec *pieces, size_t n_pieces)
{
        return send_data(e, id, flags & ~VBUS_FLAG_BATCH, pieces, n_pieces, 0);
}

int vbus__endpoint_send_batch(VbusEndpoint *e, uint32_t id, uint8_t flags,
                              const struct iovec *pieces, size_t n_pieces, uint32_t n_messages)
{
        return send_data(e, id, flags | VBUS_FLAG_BATCH, pieces, n_pieces, n_messages);
}

/* The header of a batch frame (or of one of its records) on stream @id. */
static VbusFrameHeader batch_header(const VbusEndpoint *e, uint32_t id, uint8_t flags)
{
        return (VbusFrameHeader){.type = VBUS_FRAME_DATA,
                                 .flags = (uint8_t)(flags | VBUS_FLAG_BATCH),
                                 .stream_id = id,
                                 .session_id = e->session.session_id};
}

bool vbus__endpoint_batch_joins(VbusEndpoint *e, uint32_t id, uint8_t flags, uint64_t key,
                                size_t len)
{
        VbusFrameHeader h = batch_header(e, id, flags);

        return vbus__link_batch_joins(e->lk, &h, key, len, vbus__endpoint_max_payload(e));
}

size_t vbus__endpoint_batch_room(VbusEndpoint *e, uint32_t id, uint8_t flags, uint64_t key,
                                 size_t n_prefix)
{
        VbusFrameHeader h = batch_header(e, id, flags);

        if (e->closing)
                return 0;
        return vbus__link_batch_room(e->lk, &h, key, n_prefix, vbus__endpoint_max_payload(e));
}

bool vbus__endpoint_batch_joins_records(VbusEndpoint *e, uint32_t id, uint8_t flags, uint64_t key,
                                        size_t n_bytes)
{
        VbusFrameHeader h = batch_header(e, id, flags);

        return vbus__link_batch_joins_records(e->lk, &h, key, n_bytes,
                                              vbus__endpoint_max_payload(e));
}

int vbus__endpoint_batch_add(VbusEndpoint *e, uint32_t id, uint8_t flags, uint64_t key,
                             const void *prefix, size_t n_prefix, const void *data, size_t len)
{
        VbusFrameHeader h = batch_header(e, id, flags);
        size_t max_payload;
        bool join;
        int r;

        if (e->closing)
                return -EPIPE;
        if (len >= (1u << 28) || n_prefix > VBUS_CONTROL_MAX)
                return -EINVAL;
        h.n_messages = 1;
        /* The stream of the open batch, once per batch: it cannot close while the batch is open
         * (anything that could close it, a frame read or an END written, publishes the batch
         * first). The ring's free space is not asked again per message (a cache line the reader
         * writes): the open batch's reserved room was capped at the largest payload when it
         * was reserved, so the peer's max_frame is the only other bound. */
        if (e->batch_stream && e->lk->batch.open && e->lk->batch.serial == e->batch_serial &&
            e->batch_stream->id == id && n_prefix == 0 &&
            vbus__link_batch_joins(e->lk, &h, key, len, e->session.peer_max_frame)) {
                h.length = (uint32_t)(vbus__batch_len_size((uint32_t)len) + len);
                r = vbus__session_charge_joined(&e->session, e->batch_stream, h.length, 1);
                if (r != 0)
                        return r;
                vbus__link_batch_join(e->lk, data, len);
                endpoint_wrote(e);
                return 0;
        }
        max_payload = vbus__endpoint_max_payload(e);
        join = n_prefix == 0 && vbus__link_batch_joins(e->lk, &h, key, len, max_payload);
        if (!join && n_prefix == 0 && (flags & VBUS_FLAG_META))
                return -EINVAL; /* a batch with META starts with its prefix */
        /* Charged as what it adds to the frame: a batch's cost is the sum of its records', plus
         * its prefix, charged with its first. */
        h.length = (uint32_t)((join ? 0 : n_prefix) + vbus__batch_len_size((uint32_t)len) + len);
        if (join) {
                /* The batch's first message passed every rule, and the link publishes the batch
                 * before anything is written or read: only the window is left to check. */
                r = vbus__session_send_joined(&e->session, id, h.length, 1);
                if (r != 0)
                        return r;
                vbus__link_batch_join(e->lk, data, len);
                endpoint_wrote(e);
                return 0;
        }
        r = vbus__session_check_data(&e->session, &h);
        if (r != 0)
                return r;
        r = vbus__link_batch_add(e->lk, &h, key, prefix, n_prefix, data, len, max_payload);
        if (r < 0)
                return r;
        endpoint_wrote(e);
        r = vbus__session_send(&e->session, &h, NULL, NULL, NULL);
        e->batch_stream = r == 0 ? vbus__session_get_stream(&e->session, id) : NULL;
        e->batch_serial = e->lk->batch.serial;
        return r;
}

int vbus__endpoint_batch_add_records(VbusEndpoint *e, uint32_t id, uint8_t flags, uint64_t key,
                                     const void *prefix, size_t n_prefix, const void *records,
                                     size_t n_bytes, uint32_t n)
{
        VbusFrameHeader h = batch_header(e, id, flags);
        size_t max_payload = vbus__endpoint_max_payload(e);
        bool join;
        int r;

        if (e->closing)
                return -EPIPE;
        if (n == 0 || n_bytes > max_payload || n_prefix > VBUS_CONTROL_MAX)
                return -EINVAL;
        h.n_messages = n;
        join = n_prefix == 0 &&
               vbus__link_batch_joins_records(e->lk, &h, key, n_bytes, max_payload);
        if (!join && n_prefix == 0 && (flags & VBUS_FLAG_META))
                return -EINVAL; /* a batch with META starts with its prefix */
        h.length = (uint32_t)((join ? 0 : n_prefix) + n_bytes);
        r = join ? vbus__session_send_joined(&e->session, id, h.length, n)
                 : vbus__session_check_data(&e->session, &h);
        if (r != 0)
                return r;
        r = vbus__link_batch_add_records(e->lk, &h, key, prefix, n_prefix, records, n_bytes, n,
                                         max_payload);
        if (r < 0)
                return r; /* joined: cannot happen */
        endpoint_wrote(e);
        return join ? 0 : vbus__session_send(&e->session, &h, NULL, NULL, NULL);
}

size_t vbus__endpoint_max_payload(VbusEndpoint *e)
{
        return vbus__link_max_payload(e->lk, e->session.peer_max_frame);
}

ssize_t vbus__endpoint_data_room(VbusEndpoint *e, uint32_t id)
{
        VbusStream *vs = vbus__session_get_stream(&e->session, id);
        int64_t window;
        size_t room;

        if (!vs)
                return -ENOENT;
        /* What may go in one frame that ends a message: the window less the message charge
         * (protocol.md 5.4); a fragment could take the charge too, but need not. */
        window = vs->send_window - vbus__session_msg_charge(&e->session);
        room = vbus__endpoint_max_payload(e);
        if (window < (int64_t)room)
                room = window > 0 ? (size_t)window : 0;
        return (ssize_t)room;
}

int vbus__endpoint_flush(VbusEndpoint *e)
{
        return vbus__link_flush(e->lk);
}

/* --- receiving --------------------------------------------------------------------------- */

/* An OPEN over the stream limit: the session made no stream, so REJECT it by hand. */
static int reject_over_limit(VbusEndpoint *e, uint32_t id)
{
        VbusFrameHeader h = {
                .type = VBUS_FRAME_REJECT, .stream_id = id, .session_id = e->session.session_id};
        Vbus__V1__Reject rj = VBUS__V1__REJECT__INIT;
        int r;

        rj.status = VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED;
        rj.message = (char *)"too many streams on this link";
        r = vbus__link_write_control(e->lk, &h, &rj.base);
        if (r == 0)
                endpoint_wrote(e);
        return r;
}

static int answer_ping(VbusEndpoint *e, const VbusFrame *f, const Vbus__V1__Ping *m)
{
        Vbus__V1__Ping ack = VBUS__V1__PING__INIT;

        if (f->header.flags & VBUS_FLAG_ACK)
                return e->ops->pong ? e->ops->pong(e->owner, m) : 0;
        ack.opaque = m->opaque;
        return vbus__endpoint_send_control(e, VBUS_FRAME_PING, VBUS_FLAG_ACK, 0, &ack.base);
}

/* A stream frame, to the ops bound to its stream. */
static int dispatch_stream(const VbusFrame *f, const ProtobufCMessage *msg, VbusStream *vs)
{
        const VbusStreamOps *ops = vs->ops;
        void *obj = vs->userdata;

        if (!ops)
                return 0;
        switch (f->header.type) {
        case VBUS_FRAME_ACCEPT:
                return ops->accept ? ops->accept(obj, vs, (const Vbus__V1__Accept *)msg) : 0;
        case VBUS_FRAME_REJECT:
                return ops->reject ? ops->reject(obj, vs, (const Vbus__V1__Reject *)msg) : 0;
        case VBUS_FRAME_DATA:
                return ops->data ? ops->data(obj, vs, f) : 0;
        case VBUS_FRAME_END:
                return ops->end ? ops->end(obj, vs, (const Vbus__V1__End *)msg) : 0;
        case VBUS_FRAME_RESET:
                return ops->reset ? ops->reset(obj, vs, (const Vbus__V1__End *)msg) : 0;
        case VBUS_FRAME_CREDIT:
                return ops->credit ? ops->credit(obj, vs, (const Vbus__V1__Credit *)msg) : 0;
        default:
                return 0;
        }
}

static int dispatch(VbusEndpoint *e, const VbusFrame *f, const VbusControl *ctl, VbusStream *vs,
                    bool closed)
{
        const ProtobufCMessage *msg = ctl ? ctl->msg : NULL;
        const VbusEndpointOps *ops = e->ops;
        int r;

        /* The link decodes every control frame (vbus__link_next): only DATA comes without. */
        if (!msg && f->header.type != VBUS_FRAME_DATA)
                return -EPROTO;

        switch (f->header.type) {
        case VBUS_FRAME_HELLO:
                return ops->hello ? ops->hello(e->owner, (const Vbus__V1__Hello *)msg) : 0;
        case VBUS_FRAME_PING:
                return answer_ping(e, f, (const Vbus__V1__Ping *)msg);
        case VBUS_FRAME_GOAWAY:
                return ops->goaway ? ops->goaway(e->owner, (const Vbus__V1__GoAway *)msg) : 0;
        case VBUS_FRAME_ERROR:
                return ops->error ? ops->error(e->owner, (const Vbus__V1__Error *)msg) : 0;
        case VBUS_FRAME_OPEN:
                return ops->open ? ops->open(e->owner, vs, (const Vbus__V1__Open *)msg) : 0;
        default:
                break;
        }
        if (!closed)
                return dispatch_stream(f, msg, vs);
        /* The frame closed the stream: hold it across the op, then tell the owner. */
        {
                VbusStream *held = vbus__session_take_closed(&e->session);

                r = dispatch_stream(f, msg, vs);
                if (vs->ops && vs->ops->closed)
                        vs->ops->closed(vs->userdata, vs);
                free(held);
        }
        return r;
}

int vbus__endpoint_dispatch(VbusEndpoint *e, const VbusFrame *frame, const VbusControl *ctl)
{
        VbusFrame copy = *frame; /* the session writes n_messages of a batch into it */
        const VbusFrame *f = &copy;
        VbusStream *vs = NULL;
        bool closed = false;
        int r;

        /* Nothing is read while a batch is open on the link: a frame could close its stream. */
        r = vbus__link_batch_commit(e->lk);
        if (r < 0)
                return r;
        r = vbus__session_recv(&e->session, &copy, ctl, &vs, &closed);
        if (r == VBUS_SESSION_DISCARD)
                return 0;
        if (r == -E2BIG)
                return reject_over_limit(e, f->header.stream_id);
        if (r > 0) {
                e->violation = r;
                e->bad_type = f->header.type;
                return -EPROTO;
        }
        if (r < 0)
                return r;
        return dispatch(e, f, ctl, vs, closed);
}

int vbus__endpoint_process(VbusEndpoint *e, bool take_events, unsigned int max_frames)
{
        unsigned int n = 0;
        int r;

        /* A batch being combined goes out before anything is read, so that no frame read can
         * change the stream it is for while it is open. */
        if (take_events) {
                r = vbus__link_process(e->lk);
                if (r < 0)
                        return r;
        } else {
                r = vbus__link_batch_commit(e->lk);
                if (r < 0)
                        return r;
        }
        while (n < max_frames) {
                const VbusControl *ctl = NULL;
                VbusFrame f;

                r = vbus__link_next(e->lk, &f, &ctl);
                if (r == 0)
                        break;
                if (r < 0) {
                        e->violation = e->lk->violation;
                        e->bad_type = 0;
                        return r;
                }
                n++;
                /* Another session's frame goes to the owner, who knows the link's sessions. */
                if (f.header.session_id != e->session.session_id && e->ops->foreign)
                        r = e->ops->foreign(e->owner, &f, ctl);
                else
                        r = vbus__endpoint_dispatch(e, &f, ctl);
                if (r != 0)
                        return r;
        }
        return (int)n;
}
