/* SPDX-License-Identifier: MIT */
/*
 * link: frames over a transport (see link.h for the contract).
 */
#include "link.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"

int vbus__link_init(VbusLink *l, VbusTransport *t, uint32_t own_max_frame)
{
        if (!l || !t)
                return -EINVAL;
        *l = (VbusLink){0};
        l->ctl = malloc(VBUS_CONTROL_MAX);
        l->backlog = malloc(VBUS_LINK_BACKLOG_MAX);
        if (!l->ctl || !l->backlog) {
                free(l->ctl);
                free(l->backlog);
                return -ENOMEM;
        }
        l->transport = *t;
        *t = (VbusTransport)VBUS_TRANSPORT_NULL;
        vbus__frame_decoder_init(&l->decoder, VBUS_FRAME_MAX_INITIAL);
        (void)own_max_frame; /* announced in HELLO, applied by vbus__link_set_max_frame() */
        return 0;
}

void vbus__link_deinit(VbusLink *l)
{
        if (!l)
                return;
        vbus__control_deinit(&l->control);
        vbus__frame_decoder_deinit(&l->decoder);
        vbus__transport_deinit(&l->transport);
        free(l->ctl);
        free(l->backlog);
        *l = (VbusLink){0};
        l->transport = (VbusTransport)VBUS_TRANSPORT_NULL;
}

int vbus__link_set_max_frame(VbusLink *l, uint32_t own_max_frame)
{
        return vbus__frame_decoder_set_max(&l->decoder, own_max_frame);
}

/* Releases what the previous frame held. */
static int link_release(VbusLink *l)
{
        int r = 0;

        vbus__control_deinit(&l->control);
        if (l->n_unconsumed > 0) {
                r = vbus__transport_consume(&l->transport, l->n_unconsumed);
                l->n_unconsumed = 0;
        }
        return r;
}

int vbus__link_next(VbusLink *l, VbusFrame *ret_frame, const VbusControl **ret_control)
{
        int r;

        r = link_release(l);
        if (r < 0)
                return r;
        for (;;) {
                struct iovec iov[2];
                VbusFrame f;
                size_t used = 0;
                ssize_t n = vbus__transport_peek(&l->transport, iov);

                if (n == -EAGAIN)
                        return 0;
                if (n == -EPIPE && !vbus__frame_decoder_is_idle(&l->decoder))
                        l->violation = VBUS_FRAME_E_MALFORMED;
                if (n < 0)
                        return (int)n;
                r = vbus__frame_decoder_feed(&l->decoder, iov[0].iov_base, iov[0].iov_len, &used,
                                             &f);
                if (r == -EPROTO)
                        l->violation = vbus__frame_decoder_error(&l->decoder);
                if (r < 0)
                        return r;
                if (r == 0) {
                        r = vbus__transport_consume(&l->transport, used);
                        if (r < 0)
                                return r;
                        continue;
                }
                /* A frame: its bytes are consumed when the caller asks for the next one. */
                l->n_unconsumed = used;
                if (f.header.type != VBUS_FRAME_DATA) {
                        /* Copy first: a shared ring can change under a validator. */
                        if (f.header.length > 0)
                                memcpy(l->ctl, f.payload, f.header.length);
                        f.payload = l->ctl;
                        r = vbus__control_decode(&f.header, l->ctl, VBUS_CONTROL_DECODE_BUDGET,
                                                 &l->control);
                        if (r > 0) {
                                l->violation = r;
                                return -EPROTO;
                        }
                        if (r < 0)
                                return r;
                }
                *ret_frame = f;
                *ret_control = f.header.type == VBUS_FRAME_DATA ? NULL : &l->control;
                l->n_frames_in++;
                l->n_bytes_in += VBUS_FRAME_HEADER_SIZE + (uint64_t)f.header.length;
                return 1;
        }
}

size_t vbus__link_max_payload(VbusLink *l, uint32_t peer_max_frame)
{
        size_t room = VBUS_TRANSPORT_UNIX_BUFFER;

        if (l->transport.kind == VBUS_TRANSPORT_VCHAN)
                room = vbus__vchan_get_write_size(l->transport.vchan);
        room -= VBUS_FRAME_HEADER_SIZE;
        return room < peer_max_frame ? room : peer_max_frame;
}

/* Copies @n bytes at @off of the reserved pieces. */
static void iov_write(const struct iovec dst[2], size_t off, const void *src, size_t n)
{
        const uint8_t *p = src;

        if (n == 0)
                return; /* @src may be NULL for an empty payload */

        if (off < dst[0].iov_len) {
                size_t k = dst[0].iov_len - off < n ? dst[0].iov_len - off : n;

                memcpy((uint8_t *)dst[0].iov_base + off, p, k);
                p += k;
                n -= k;
                off = 0;
        } else {
                off -= dst[0].iov_len;
        }
        if (n > 0)
                memcpy((uint8_t *)dst[1].iov_base + off, p, n);
}

int vbus__link_batch_commit(VbusLink *l)
{
        VbusLinkBatch *b = &l->batch;
        uint8_t hdr[VBUS_FRAME_HEADER_SIZE];
        size_t total;
        int r;

        if (!b->open)
                return 0;
        b->open = false;
        total = VBUS_FRAME_HEADER_SIZE + b->h.length;
        vbus__frame_header_encode(&b->h, hdr);
        iov_write(b->dst, 0, hdr, sizeof(hdr));
        r = vbus__transport_commit(&l->transport, total);
        if (r == 0) {
                l->n_frames_out++;
                l->n_bytes_out += total;
        }
        return r;
}

/* Whether @rec more bytes under @key join the open batch. */
static bool batch_joins(const VbusLink *l, const VbusFrameHeader *h, uint64_t key, size_t rec,
                        size_t max_payload)
{
        const VbusLinkBatch *b = &l->batch;

        return b->open && b->h.stream_id == h->stream_id && b->h.session_id == h->session_id &&
               b->h.flags == h->flags && b->key == key && b->h.length + rec <= max_payload &&
               VBUS_FRAME_HEADER_SIZE + b->h.length + rec <= b->room;
}

bool vbus__link_batch_joins(const VbusLink *l, const VbusFrameHeader *h, uint64_t key, size_t len,
                            size_t max_payload)
{
        return batch_joins(l, h, key, vbus__batch_len_size((uint32_t)len) + len, max_payload);
}

/* Appends @n messages, @lead (a length varint, or nothing) then @body, to the open batch, or to a
 * new one that starts with @prefix. */
static int batch_append(VbusLink *l, const VbusFrameHeader *h, uint64_t key, const void *prefix,
                        size_t n_prefix, const uint8_t *lead, size_t n_lead, const void *body,
                        size_t n_body, uint32_t n, size_t max_payload)
{
        VbusLinkBatch *b = &l->batch;
        size_t rec = n_lead + n_body;
        int r;

        if (!l || !h || h->type != VBUS_FRAME_DATA || !(h->flags & VBUS_FLAG_BATCH) ||
            (n_body > 0 && !body) || (n_prefix > 0 && !prefix) || n == 0)
                return -EINVAL;
        /* A prefix starts a batch: it describes the batch's first message. */
        if (n_prefix > 0 || !batch_joins(l, h, key, rec, max_payload)) {
                ssize_t room;
                size_t first = VBUS_FRAME_HEADER_SIZE + n_prefix + rec;

                r = vbus__link_batch_commit(l);
                if (r < 0)
                        return r;
                if (n_prefix + rec > max_payload)
                        return -EINVAL;
                if (l->n_backlog > 0) {
                        r = vbus__link_flush(l);
                        if (r < 0)
                                return r;
                        if (l->n_backlog > 0)
                                return -EAGAIN;
                }
                room = vbus__transport_reserve(&l->transport, first, b->dst);
                if (room < 0)
                        return (int)room;
                if ((size_t)room < first)
                        return -EAGAIN;
                b->room = (size_t)room;
                if (b->room > VBUS_FRAME_HEADER_SIZE + max_payload)
                        b->room = VBUS_FRAME_HEADER_SIZE + max_payload;
                b->h = *h;
                b->h.length = (uint32_t)n_prefix;
                b->h.n_messages = 0;
                b->key = key;
                b->open = true;
                b->serial++;
                iov_write(b->dst, VBUS_FRAME_HEADER_SIZE, prefix, n_prefix);
        }
        iov_write(b->dst, VBUS_FRAME_HEADER_SIZE + b->h.length, lead, n_lead);
        iov_write(b->dst, VBUS_FRAME_HEADER_SIZE + b->h.length + n_lead, body, n_body);
        b->h.length += (uint32_t)rec;
        b->h.n_messages += n;
        return 0;
}

int vbus__link_batch_add(VbusLink *l, const VbusFrameHeader *h, uint64_t key, const void *prefix,
                         size_t n_prefix, const void *data, size_t len, size_t max_payload)
{
        uint8_t lenbuf[VBUS_BATCH_LEN_MAX];

        if (len >= (1u << 28))
                return -EINVAL;
        return batch_append(l, h, key, prefix, n_prefix, lenbuf,
                            vbus__batch_put_len(lenbuf, (uint32_t)len), data, len, 1, max_payload);
}

void vbus__link_batch_join(VbusLink *l, const void *data, size_t len)
{
        VbusLinkBatch *b = &l->batch;
        uint8_t lenbuf[VBUS_BATCH_LEN_MAX];
        size_t n_len = vbus__batch_put_len(lenbuf, (uint32_t)len);

        iov_write(b->dst, VBUS_FRAME_HEADER_SIZE + b->h.length, lenbuf, n_len);
        iov_write(b->dst, VBUS_FRAME_HEADER_SIZE + b->h.length + n_len, data, len);
        b->h.length += (uint32_t)(n_len + len);
        b->h.n_messages++;
}

bool vbus__link_batch_joins_records(const VbusLink *l, const VbusFrameHeader *h, uint64_t key,
                                    size_t n_bytes, size_t max_payload)
{
        return batch_joins(l, h, key, n_bytes, max_payload);
}

size_t vbus__link_batch_room(VbusLink *l, const VbusFrameHeader *h, uint64_t key, size_t n_prefix,
                             size_t max_payload)
{
        VbusLinkBatch *b = &l->batch;
        struct iovec dst[2];
        ssize_t room;
        size_t k;

        if (n_prefix == 0 && batch_joins(l, h, key, 0, max_payload)) {
                k = b->room - VBUS_FRAME_HEADER_SIZE - b->h.length;
                return k < max_payload - b->h.length ? k : max_payload - b->h.length;
        }
        if (vbus__link_batch_commit(l) < 0 || l->n_backlog > 0 || n_prefix >= max_payload)
                return 0;
        room = vbus__transport_reserve(&l->transport, VBUS_FRAME_HEADER_SIZE + n_prefix + 1, dst);
        if (room < (ssize_t)(VBUS_FRAME_HEADER_SIZE + n_prefix + 1))
                return 0;
        k = (size_t)room - VBUS_FRAME_HEADER_SIZE - n_prefix;
        return k < max_payload - n_prefix ? k : max_payload - n_prefix;
}

int vbus__link_batch_add_records(VbusLink *l, const VbusFrameHeader *h, uint64_t key,
                                 const void *prefix, size_t n_prefix, const void *records,
                                 size_t n_bytes, uint32_t n, size_t max_payload)
{
        return batch_append(l, h, key, prefix, n_prefix, NULL, 0, records, n_bytes, n, max_payload);
}

int vbus__link_process(VbusLink *l)
{
        int r = vbus__link_batch_commit(l);

        return r < 0 ? r : vbus__transport_process(&l->transport);
}

static int link_write_raw(VbusLink *l, const VbusFrameHeader *h, const struct iovec *pieces,
                          size_t n_pieces)
{
        uint8_t hdr[VBUS_FRAME_HEADER_SIZE];
        struct iovec dst[2];
        size_t total = VBUS_FRAME_HEADER_SIZE + h->length, off;
        ssize_t room;
        int r;

        /* A batch being combined goes first: frames keep their order. */
        r = vbus__link_batch_commit(l);
        if (r < 0)
                return r;
        room = vbus__transport_reserve(&l->transport, total, dst);

        if (room < 0)
                return (int)room;
        if ((size_t)room < total)
                return -EAGAIN;
        vbus__frame_header_encode(h, hdr);
        iov_write(dst, 0, hdr, sizeof(hdr));
        off = sizeof(hdr);
        for (size_t i = 0; i < n_pieces; i++) {
                iov_write(dst, off, pieces[i].iov_base, pieces[i].iov_len);
                off += pieces[i].iov_len;
        }
        r = vbus__transport_commit(&l->transport, total);
        if (r == 0) {
                l->n_frames_out++;
                l->n_bytes_out += total;
        }
        return r;
}

int vbus__link_write(VbusLink *l, const VbusFrameHeader *h, const struct iovec *pieces,
                     size_t n_pieces)
{
        uint64_t sum = 0;

        if (!l || !h || (n_pieces > 0 && !pieces))
                return -EINVAL;
        for (size_t i = 0; i < n_pieces; i++)
                sum += pieces[i].iov_len;
        if (sum != h->length)
                return -EINVAL;
        if (l->n_backlog > 0) {
                int r = vbus__link_flush(l);

                if (r < 0)
                        return r;
                if (l->n_backlog > 0)
                        return -EAGAIN;
        }
        return link_write_raw(l, h, pieces, n_pieces);
}

int vbus__link_write_control(VbusLink *l, const VbusFrameHeader *h, const ProtobufCMessage *msg)
{
        uint8_t buf[VBUS_FRAME_HEADER_SIZE + VBUS_CONTROL_MAX];
        VbusSegments out = {{buf, NULL}, {sizeof(buf), 0}};
        size_t n;
        int r;

        if (!l || !h || !msg)
                return -EINVAL;
        r = vbus__control_encode(h, msg, &out, &n);
        if (r < 0)
                return r;
        if (l->n_backlog == 0) {
                VbusFrameHeader hh;
                struct iovec piece = {buf + VBUS_FRAME_HEADER_SIZE, n - VBUS_FRAME_HEADER_SIZE};

                (void)vbus__frame_header_decode(buf, n, VBUS_FRAME_MAX_LIMIT, &hh);
                r = link_write_raw(l, &hh, &piece, 1);
                if (r != -EAGAIN)
                        return r;
        }
        if (l->n_backlog + n > VBUS_LINK_BACKLOG_MAX)
                return -ENOBUFS;
        memcpy(l->backlog + l->n_backlog, buf, n);
        l->n_backlog += n;
        return 0;
}

int vbus__link_flush(VbusLink *l)
{
        size_t done = 0;
        int r;

        r = vbus__link_batch_commit(l);
        if (r < 0)
                return r;
        while (done < l->n_backlog) {
                VbusFrameHeader h;
                struct iovec piece;

                r = vbus__frame_header_decode(l->backlog + done, l->n_backlog - done,
                                              VBUS_FRAME_MAX_LIMIT, &h);
                if (r != 0)
                        return -EINVAL; /* we wrote it: cannot happen */
                piece.iov_base = l->backlog + done + VBUS_FRAME_HEADER_SIZE;
                piece.iov_len = h.length;
                r = link_write_raw(l, &h, &piece, 1);
                if (r == -EAGAIN)
                        break;
                if (r < 0)
                        return r;
                done += VBUS_FRAME_HEADER_SIZE + h.length;
        }
        if (done > 0) {
                memmove(l->backlog, l->backlog + done, l->n_backlog - done);
                l->n_backlog -= done;
        }
        return vbus__transport_flush(&l->transport);
}
