/* SPDX-License-Identifier: MIT */
/*
 * frame: header codec, frame encoder and the incremental frame decoder.
 *
 * The decoder is the first code that touches a peer's bytes. Its invariants:
 *  - nothing is allocated before the whole header has been validated, and then exactly
 *    header.length bytes, which the validation bounded by the negotiated maximum;
 *  - no byte outside [buf, buf + len) is read, whatever the chunking;
 *  - after a rule is broken the decoder stays failed, so a caller cannot resynchronise on a
 *    stream whose framing it no longer trusts.
 */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[VBUS_FRAME_TYPE_N] = {
        [VBUS_FRAME_HELLO] = "hello",   [VBUS_FRAME_OPEN] = "open",
        [VBUS_FRAME_ACCEPT] = "accept", [VBUS_FRAME_REJECT] = "reject",
        [VBUS_FRAME_DATA] = "data",     [VBUS_FRAME_END] = "end",
        [VBUS_FRAME_RESET] = "reset",   [VBUS_FRAME_CREDIT] = "credit",
        [VBUS_FRAME_PING] = "ping",     [VBUS_FRAME_GOAWAY] = "goaway",
        [VBUS_FRAME_ERROR] = "error",
};

const char *vbus__frame_type_name(int type)
{
        if (type <= 0 || type >= VBUS_FRAME_TYPE_N)
                return "unknown";
        return type_names[type];
}

const char *vbus__frame_error_name(int error)
{
        switch (error) {
        case VBUS_FRAME_E_BAD_MAGIC:
                return "bad-magic";
        case VBUS_FRAME_E_BAD_VERSION:
                return "bad-version";
        case VBUS_FRAME_E_UNKNOWN_TYPE:
                return "unknown-type";
        case VBUS_FRAME_E_OVERSIZE:
                return "oversize";
        case VBUS_FRAME_E_MALFORMED:
                return "malformed";
        case VBUS_FRAME_E_SEMANTIC:
                return "semantic";
        default:
                return "unknown";
        }
}

/* The flags a frame type may carry; any other bit set is a protocol violation. */
static uint8_t frame_allowed_flags(uint8_t type)
{
        switch (type) {
        case VBUS_FRAME_DATA:
                return VBUS_FLAG_MORE | VBUS_FLAG_META | VBUS_FLAG_RETAIN | VBUS_FLAG_BATCH;
        case VBUS_FRAME_PING:
                return VBUS_FLAG_ACK;
        default:
                return 0;
        }
}

/* Which frame types address the link (stream id 0) and which address a stream (non-zero). */
enum { STREAM_ZERO, STREAM_NONZERO, STREAM_ANY };

static int frame_stream_rule(uint8_t type)
{
        switch (type) {
        case VBUS_FRAME_HELLO:
        case VBUS_FRAME_PING:
        case VBUS_FRAME_GOAWAY:
                return STREAM_ZERO;
        case VBUS_FRAME_ERROR:
                return STREAM_ANY;
        default:
                return STREAM_NONZERO;
        }
}

int vbus__frame_header_validate(const VbusFrameHeader *h, uint32_t max_payload)
{
        int rule;

        if (h->type == 0 || h->type >= VBUS_FRAME_TYPE_N)
                return VBUS_FRAME_E_UNKNOWN_TYPE;
        if (h->length > max_payload)
                return VBUS_FRAME_E_OVERSIZE;
        if (h->type != VBUS_FRAME_DATA && h->length > VBUS_CONTROL_MAX)
                return VBUS_FRAME_E_OVERSIZE;
        if (h->flags & ~frame_allowed_flags(h->type))
                return VBUS_FRAME_E_SEMANTIC;
        if (h->stream_id >= VBUS_STREAM_ID_LIMIT)
                return VBUS_FRAME_E_SEMANTIC;
        rule = frame_stream_rule(h->type);
        if (rule == STREAM_ZERO && h->stream_id != 0)
                return VBUS_FRAME_E_SEMANTIC;
        if (rule == STREAM_NONZERO && h->stream_id == 0)
                return VBUS_FRAME_E_SEMANTIC;
        return 0;
}

int vbus__frame_header_decode(const uint8_t *buf, size_t len, uint32_t max_payload,
                              VbusFrameHeader *ret_header)
{
        VbusFrameHeader h;
        int r;

        if (!buf || len < VBUS_FRAME_HEADER_SIZE || !ret_header)
                return -EINVAL;
        if (buf[0] != VBUS_FRAME_MAGIC)
                return VBUS_FRAME_E_BAD_MAGIC;
        if (buf[1] != VBUS_FRAME_VERSION)
                return VBUS_FRAME_E_BAD_VERSION;
        h.type = buf[2];
        h.flags = buf[3];
        h.length = vbus__le32_read(buf + 4);
        h.stream_id = vbus__le32_read(buf + 8);
        h.session_id = vbus__le32_read(buf + 12);
        h.n_messages = 0;
        r = vbus__frame_header_validate(&h, max_payload);
        if (r != 0)
                return r;
        *ret_header = h;
        return 0;
}

void vbus__frame_header_encode(const VbusFrameHeader *h, uint8_t out[VBUS_FRAME_HEADER_SIZE])
{
        out[0] = VBUS_FRAME_MAGIC;
        out[1] = VBUS_FRAME_VERSION;
        out[2] = h->type;
        out[3] = h->flags;
        vbus__le32_write(out + 4, h->length);
        vbus__le32_write(out + 8, h->stream_id);
        vbus__le32_write(out + 12, h->session_id);
}

int vbus__segments_write(const VbusSegments *out, size_t offset, const void *src, size_t n)
{
        const uint8_t *p = src;
        size_t first;

        if (n == 0)
                return 0;
        if (offset > out->size[0] + out->size[1] || n > out->size[0] + out->size[1] - offset)
                return -ENOBUFS;
        if (offset < out->size[0]) {
                first = out->size[0] - offset;
                if (first > n)
                        first = n;
                memcpy(out->base[0] + offset, p, first);
                p += first;
                n -= first;
                offset = 0;
        } else {
                offset -= out->size[0];
        }
        if (n > 0)
                memcpy(out->base[1] + offset, p, n);
        return 0;
}

int vbus__frame_encode(const VbusFrameHeader *h, const void *payload, size_t n_payload,
                       const VbusSegments *out, size_t *ret_written)
{
        uint8_t hdr[VBUS_FRAME_HEADER_SIZE];
        int r;

        if (!h || !out || !ret_written || (n_payload > 0 && !payload) || h->length != n_payload)
                return -EINVAL;
        if (VBUS_FRAME_HEADER_SIZE + (uint64_t)n_payload > (uint64_t)out->size[0] + out->size[1])
                return -ENOBUFS;
        vbus__frame_header_encode(h, hdr);
        r = vbus__segments_write(out, 0, hdr, sizeof(hdr));
        if (r < 0)
                return r;
        r = vbus__segments_write(out, sizeof(hdr), payload, n_payload);
        if (r < 0)
                return r;
        *ret_written = VBUS_FRAME_HEADER_SIZE + n_payload;
        return 0;
}

void vbus__frame_decoder_init(VbusFrameDecoder *d, uint32_t max_payload)
{
        *d = (VbusFrameDecoder)VBUS_FRAME_DECODER_NULL(max_payload);
}

void vbus__frame_decoder_deinit(VbusFrameDecoder *d)
{
        if (!d)
                return;
        free(d->payload);
        d->payload = NULL;
        d->n_payload = 0;
        d->have_header = false;
        d->n_header = 0;
        d->frame_out = false;
}

int vbus__frame_decoder_set_max(VbusFrameDecoder *d, uint32_t max_payload)
{
        if (!d || max_payload < VBUS_FRAME_MAX_MIN || max_payload > VBUS_FRAME_MAX_LIMIT)
                return -EINVAL;
        d->max_payload = max_payload;
        return 0;
}

static int decoder_fail(VbusFrameDecoder *d, int error)
{
        d->error = error;
        return -EPROTO;
}

/* Forget the frame returned by the previous call, so the next one can start. */
static void decoder_reset_frame(VbusFrameDecoder *d)
{
        free(d->payload);
        d->payload = NULL;
        d->n_payload = 0;
        d->have_header = false;
        d->n_header = 0;
        d->frame_out = false;
}

int vbus__frame_decoder_feed(VbusFrameDecoder *d, const uint8_t *buf, size_t len,
                             size_t *ret_consumed, VbusFrame *ret_frame)
{
        size_t used = 0, take;
        int r;

        if (!d || !ret_consumed || !ret_frame || (len > 0 && !buf))
                return -EINVAL;
        if (d->error)
                return -EPROTO;
        if (d->frame_out)
                decoder_reset_frame(d);

        /* Fast path: a whole frame at the start of this chunk and nothing buffered. */
        if (d->n_header == 0 && len >= VBUS_FRAME_HEADER_SIZE) {
                VbusFrameHeader h;

                r = vbus__frame_header_decode(buf, len, d->max_payload, &h);
                if (r > 0)
                        return decoder_fail(d, r);
                if (r < 0)
                        return r;
                if (len - VBUS_FRAME_HEADER_SIZE >= h.length) {
                        ret_frame->header = h;
                        ret_frame->payload = buf + VBUS_FRAME_HEADER_SIZE;
                        *ret_consumed = VBUS_FRAME_HEADER_SIZE + (size_t)h.length;
                        return 1;
                }
        }

        if (!d->have_header) {
                take = VBUS_FRAME_HEADER_SIZE - d->n_header;
                if (take > len)
                        take = len;
                if (take > 0)
                        memcpy(d->header_buf + d->n_header, buf, take);
                d->n_header += take;
                used += take;
                /* Check the magic and version as soon as their bytes arrive. */
                if (d->n_header >= 1 && d->header_buf[0] != VBUS_FRAME_MAGIC)
                        return decoder_fail(d, VBUS_FRAME_E_BAD_MAGIC);
                if (d->n_header >= 2 && d->header_buf[1] != VBUS_FRAME_VERSION)
                        return decoder_fail(d, VBUS_FRAME_E_BAD_VERSION);
                if (d->n_header < VBUS_FRAME_HEADER_SIZE) {
                        *ret_consumed = used;
                        return 0;
                }
                r = vbus__frame_header_decode(d->header_buf, VBUS_FRAME_HEADER_SIZE, d->max_payload,
                                              &d->header);
                if (r > 0)
                        return decoder_fail(d, r);
                if (r < 0)
                        return r;
                d->have_header = true;
                if (d->header.length > 0) {
                        d->payload = malloc(d->header.length);
                        if (!d->payload) {
                                d->have_header = false;
                                d->n_header = 0;
                                return -ENOMEM;
                        }
                }
        }

        take = d->header.length - d->n_payload;
        if (take > len - used)
                take = len - used;
        if (take > 0)
                memcpy(d->payload + d->n_payload, buf + used, take);
        d->n_payload += take;
        used += take;
        *ret_consumed = used;
        if (d->n_payload < d->header.length)
                return 0;

        ret_frame->header = d->header;
        ret_frame->payload = d->payload;
        d->frame_out = true;
        return 1;
}
