/* SPDX-License-Identifier: MIT */
/*
 * control: protobuf-c decoding with a byte budget, the semantic rules of each control message,
 * and packing straight into frame segments.
 *
 * protobuf-c stores a decoded string as a NUL-terminated copy and keeps no length, so a string
 * with an embedded NUL would silently become a shorter one (a name check and a later use could
 * then disagree). Before trusting a decoded message we therefore walk the raw payload once and
 * reject any string field that contains a NUL byte. The walk uses an explicit, bounded stack: no
 * recursion over peer data.
 */
#include "control.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "name.h"

/* --- bounded allocator ------------------------------------------------------------------ */

/* Every block carries its size in front, so free() can run without the decode-time state. */
typedef union AllocHeader {
        size_t size;
        max_align_t align;
} AllocHeader;

typedef struct Budget {
        size_t used;
        size_t budget;
} Budget;

static void *budget_alloc(void *data, size_t size)
{
        Budget *b = data;
        AllocHeader *h;

        if (size > b->budget || b->used > b->budget - size)
                return NULL;
        h = malloc(sizeof(*h) + size);
        if (!h)
                return NULL;
        h->size = size;
        b->used += size;
        return h + 1;
}

static void budget_free(void *data, void *p)
{
        (void)data;
        if (p)
                free((AllocHeader *)p - 1);
}

static ProtobufCAllocator free_allocator = {
        .alloc = budget_alloc, /* never called: only used to free */
        .free = budget_free,
        .allocator_data = NULL,
};

/* --- descriptors -------------------------------------------------------------------------- */

const ProtobufCMessageDescriptor *vbus__control_descriptor(int type)
{
        switch (type) {
        case VBUS_FRAME_HELLO:
                return &vbus__v1__hello__descriptor;
        case VBUS_FRAME_OPEN:
                return &vbus__v1__open__descriptor;
        case VBUS_FRAME_ACCEPT:
                return &vbus__v1__accept__descriptor;
        case VBUS_FRAME_REJECT:
                return &vbus__v1__reject__descriptor;
        case VBUS_FRAME_END:
        case VBUS_FRAME_RESET:
                return &vbus__v1__end__descriptor;
        case VBUS_FRAME_CREDIT:
                return &vbus__v1__credit__descriptor;
        case VBUS_FRAME_PING:
                return &vbus__v1__ping__descriptor;
        case VBUS_FRAME_GOAWAY:
                return &vbus__v1__go_away__descriptor;
        case VBUS_FRAME_ERROR:
                return &vbus__v1__error__descriptor;
        default:
                return NULL;
        }
}

/* --- raw walk: no NUL inside string fields ------------------------------------------------ */

enum { WALK_DEPTH_MAX = 4 };

/* Reads a varint of at most 10 bytes; returns bytes used or 0 when truncated/overlong. */
static size_t walk_varint(const uint8_t *p, const uint8_t *end, uint64_t *ret)
{
        uint64_t v = 0;

        for (size_t i = 0; i < 10 && p + i < end; i++) {
                v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
                if (!(p[i] & 0x80)) {
                        *ret = v;
                        return i + 1;
                }
        }
        return 0;
}

int vbus__control_check_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                                size_t len)
{
        struct {
                const uint8_t *p, *end;
                const ProtobufCMessageDescriptor *desc;
        } stack[WALK_DEPTH_MAX];
        size_t depth = 1;

        stack[0].p = buf;
        stack[0].end = buf + len;
        stack[0].desc = desc;
        while (depth > 0) {
                __typeof__(stack[0]) *top = &stack[depth - 1];
                const ProtobufCFieldDescriptor *fd;
                uint64_t tag, n;
                size_t used;

                if (top->p >= top->end) {
                        depth--;
                        continue;
                }
                used = walk_varint(top->p, top->end, &tag);
                if (used == 0)
                        return VBUS_FRAME_E_MALFORMED;
                top->p += used;
                switch (tag & 7) {
                case 0:
                        used = walk_varint(top->p, top->end, &n);
                        if (used == 0)
                                return VBUS_FRAME_E_MALFORMED;
                        top->p += used;
                        break;
                case 1:
                        if (top->end - top->p < 8)
                                return VBUS_FRAME_E_MALFORMED;
                        top->p += 8;
                        break;
                case 5:
                        if (top->end - top->p < 4)
                                return VBUS_FRAME_E_MALFORMED;
                        top->p += 4;
                        break;
                case 2:
                        used = walk_varint(top->p, top->end, &n);
                        if (used == 0 || n > (uint64_t)(top->end - top->p - used))
                                return VBUS_FRAME_E_MALFORMED;
                        top->p += used;
                        fd = tag >> 3 <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(
                                                              top->desc, (unsigned)(tag >> 3))
                                                    : NULL;
                        if (fd && fd->type == PROTOBUF_C_TYPE_STRING && memchr(top->p, 0, n))
                                return VBUS_FRAME_E_SEMANTIC;
                        if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE && depth < WALK_DEPTH_MAX) {
                                const uint8_t *sub = top->p;

                                top->p += n;
                                stack[depth].p = sub;
                                stack[depth].end = sub + n;
                                stack[depth].desc = fd->descriptor;
                                depth++;
                                continue;
                        }
                        top->p += n;
                        break;
                default:
                        return VBUS_FRAME_E_MALFORMED;
                }
        }
        return 0;
}

/* --- semantic rules ----------------------------------------------------------------------- */

/* NULL is the empty string: protobuf-c encodes it so, and never decodes a string to NULL. */
static bool str_ok(const char *s, size_t max)
{
        return !s || strnlen(s, max + 1) <= max;
}

/* A status that may end a stream or a link: anything defined except UNSPECIFIED. */
static bool status_ok(int s)
{
        return s > VBUS__V1__STATUS__STATUS_UNSPECIFIED &&
               s <= VBUS__V1__STATUS__STATUS_SHUTTING_DOWN;
}

/* A failure status: as status_ok, but not OK. */
static bool status_fail_ok(int s)
{
        return status_ok(s) && s != VBUS__V1__STATUS__STATUS_OK;
}

static int validate_claims(const Vbus__V1__Claims *c)
{
        return !c || str_ok(c->command, VBUS_PEER_NAME_MAX) ? 0 : VBUS_FRAME_E_SEMANTIC;
}

static int validate_hello(const Vbus__V1__Hello *m)
{
        if (m->version_min < 1 || m->version_max < m->version_min)
                return VBUS_FRAME_E_SEMANTIC;
        if (m->version != 0 && (m->version < m->version_min || m->version > m->version_max))
                return VBUS_FRAME_E_SEMANTIC;
        if (m->max_frame < VBUS_FRAME_MAX_MIN || m->max_frame > VBUS_FRAME_MAX_LIMIT)
                return VBUS_FRAME_E_SEMANTIC;
        if (!str_ok(m->peer_name, VBUS_PEER_NAME_MAX) ||
            !str_ok(m->auth_key_name, VBUS_AUTH_FIELD_MAX))
                return VBUS_FRAME_E_SEMANTIC;
        if (m->auth_challenge.len > VBUS_AUTH_FIELD_MAX || m->auth_proof.len > VBUS_AUTH_FIELD_MAX)
                return VBUS_FRAME_E_SEMANTIC;
        return validate_claims(m->claims);
}

static int validate_identity(const Vbus__V1__Identity *id)
{
        if (!id)
                return 0;
        if (!str_ok(id->domain_name, VBUS_PEER_NAME_MAX) ||
            !str_ok(id->key_name, VBUS_AUTH_FIELD_MAX))
                return VBUS_FRAME_E_SEMANTIC;
        return validate_claims(id->claims);
}

static bool open_name_ok(const Vbus__V1__Open *m)
{
        size_t len;

        if (!m->name)
                return false;
        len = strnlen(m->name, VBUS_NAME_MAX + 1);
        switch (m->kind) {
        case VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH:
                return vbus__name_is_topic(m->name, len);
        case VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE:
                return vbus__name_is_pattern(m->name, len);
        case VBUS__V1__STREAM_KIND__STREAM_KIND_CALL:
                return vbus__name_is_method(m->name, len);
        case VBUS__V1__STREAM_KIND__STREAM_KIND_SERVE:
                return vbus__name_is_service(m->name, len);
        default:
                return false;
        }
}

static int validate_open(const Vbus__V1__Open *m)
{
        bool subscribe = m->kind == VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE;
        bool call = m->kind == VBUS__V1__STREAM_KIND__STREAM_KIND_CALL;

        if (!open_name_ok(m))
                return VBUS_FRAME_E_SEMANTIC;
        if (m->initial_credit > VBUS_CREDIT_MAX)
                return VBUS_FRAME_E_SEMANTIC;
        if ((int)m->slow_policy < 0 || m->slow_policy > VBUS__V1__SLOW_POLICY__SLOW_POLICY_BLOCK)
                return VBUS_FRAME_E_SEMANTIC;
        if (!subscribe && (m->slow_policy != 0 || m->queue_limit != 0))
                return VBUS_FRAME_E_SEMANTIC;
        if (!call && (m->timeout_us != 0 || m->n_headers != 0))
                return VBUS_FRAME_E_SEMANTIC;
        if (m->n_headers > VBUS_HEADERS_MAX)
                return VBUS_FRAME_E_SEMANTIC;
        for (size_t i = 0; i < m->n_headers; i++) {
                const Vbus__V1__Header *hd = m->headers[i];

                if (!hd->key ||
                    !vbus__name_is_header_key(hd->key, strnlen(hd->key, VBUS_HEADER_KEY_MAX + 1)))
                        return VBUS_FRAME_E_SEMANTIC;
                if (hd->value.len > VBUS_HEADER_VALUE_MAX)
                        return VBUS_FRAME_E_SEMANTIC;
        }
        return validate_identity(m->caller);
}

int vbus__control_validate(int type, const ProtobufCMessage *msg)
{
        if (!msg || msg->descriptor != vbus__control_descriptor(type))
                return VBUS_FRAME_E_SEMANTIC;

        switch (type) {
        case VBUS_FRAME_HELLO:
                return validate_hello((const Vbus__V1__Hello *)msg);
        case VBUS_FRAME_OPEN:
                return validate_open((const Vbus__V1__Open *)msg);
        case VBUS_FRAME_ACCEPT: {
                const Vbus__V1__Accept *m = (const Vbus__V1__Accept *)msg;

                if (m->initial_credit > VBUS_CREDIT_MAX)
                        return VBUS_FRAME_E_SEMANTIC;
                return validate_identity(m->peer);
        }
        case VBUS_FRAME_REJECT: {
                const Vbus__V1__Reject *m = (const Vbus__V1__Reject *)msg;

                if (!status_fail_ok(m->status) || !str_ok(m->message, VBUS_STATUS_MESSAGE_MAX))
                        return VBUS_FRAME_E_SEMANTIC;
                return 0;
        }
        case VBUS_FRAME_END:
        case VBUS_FRAME_RESET: {
                const Vbus__V1__End *m = (const Vbus__V1__End *)msg;
                bool ok = type == VBUS_FRAME_END ? status_ok(m->status) : status_fail_ok(m->status);

                if (!ok || !str_ok(m->message, VBUS_STATUS_MESSAGE_MAX))
                        return VBUS_FRAME_E_SEMANTIC;
                return 0;
        }
        case VBUS_FRAME_CREDIT: {
                const Vbus__V1__Credit *m = (const Vbus__V1__Credit *)msg;

                if (m->increment == 0 || m->increment > VBUS_CREDIT_MAX)
                        return VBUS_FRAME_E_SEMANTIC;
                return 0;
        }
        case VBUS_FRAME_PING:
                return 0;
        case VBUS_FRAME_GOAWAY: {
                const Vbus__V1__GoAway *m = (const Vbus__V1__GoAway *)msg;

                if (m->last_stream_id >= VBUS_STREAM_ID_LIMIT || !status_ok(m->status) ||
                    !str_ok(m->message, VBUS_STATUS_MESSAGE_MAX))
                        return VBUS_FRAME_E_SEMANTIC;
                return 0;
        }
        case VBUS_FRAME_ERROR: {
                const Vbus__V1__Error *m = (const Vbus__V1__Error *)msg;

                if (!status_fail_ok(m->status) || m->stream_id >= VBUS_STREAM_ID_LIMIT ||
                    !str_ok(m->message, VBUS_STATUS_MESSAGE_MAX))
                        return VBUS_FRAME_E_SEMANTIC;
                return 0;
        }
        default:
                return VBUS_FRAME_E_SEMANTIC;
        }
}

/* --- decode ------------------------------------------------------------------------------- */

int vbus__control_decode(const VbusFrameHeader *h, const uint8_t *payload, size_t budget,
                         VbusControl *ret)
{
        const ProtobufCMessageDescriptor *desc;
        Budget b = {.used = 0, .budget = budget};
        ProtobufCAllocator alloc = {
                .alloc = budget_alloc, .free = budget_free, .allocator_data = &b};
        ProtobufCMessage *msg;
        static const uint8_t empty[1];
        int r;

        if (!h || !ret || (h->length > 0 && !payload))
                return -EINVAL;
        desc = vbus__control_descriptor(h->type);
        if (!desc)
                return -EINVAL;
        if (h->length == 0)
                payload = empty;

        r = vbus__control_check_strings(desc, payload, h->length);
        if (r != 0)
                return r;
        msg = protobuf_c_message_unpack(desc, &alloc, h->length, payload);
        if (!msg)
                return VBUS_FRAME_E_MALFORMED;
        r = vbus__control_validate(h->type, msg);
        if (r != 0) {
                protobuf_c_message_free_unpacked(msg, &free_allocator);
                return r;
        }
        ret->type = h->type;
        ret->msg = msg;
        ret->n_allocated = b.used;
        ret->budget = budget;
        return 0;
}

void vbus__control_deinit(VbusControl *c)
{
        if (!c)
                return;
        if (c->msg)
                protobuf_c_message_free_unpacked(c->msg, &free_allocator);
        *c = (VbusControl)VBUS_CONTROL_NULL;
}

/* --- encode ------------------------------------------------------------------------------- */

typedef struct SegmentBuffer {
        ProtobufCBuffer base;
        const VbusSegments *out;
        size_t offset;
        int error;
} SegmentBuffer;

static void segment_buffer_append(ProtobufCBuffer *buffer, size_t len, const uint8_t *data)
{
        SegmentBuffer *sb = (SegmentBuffer *)buffer;

        if (sb->error == 0)
                sb->error = vbus__segments_write(sb->out, sb->offset, data, len);
        sb->offset += len;
}

int vbus__control_encode(const VbusFrameHeader *h, const ProtobufCMessage *msg,
                         const VbusSegments *out, size_t *ret_written)
{
        VbusFrameHeader hdr;
        uint8_t raw[VBUS_FRAME_HEADER_SIZE];
        SegmentBuffer sb;
        size_t size;
        int r;

        if (!h || !msg || !out || !ret_written ||
            msg->descriptor != vbus__control_descriptor(h->type))
                return -EINVAL;
        size = protobuf_c_message_get_packed_size(msg);
        if (size > VBUS_CONTROL_MAX)
                return -EINVAL;
        if (VBUS_FRAME_HEADER_SIZE + (uint64_t)size > (uint64_t)out->size[0] + out->size[1])
                return -ENOBUFS;
        hdr = *h;
        hdr.length = (uint32_t)size;
        vbus__frame_header_encode(&hdr, raw);
        r = vbus__segments_write(out, 0, raw, sizeof(raw));
        if (r < 0)
                return r;
        sb = (SegmentBuffer){.base = {.append = segment_buffer_append},
                             .out = out,
                             .offset = VBUS_FRAME_HEADER_SIZE};
        protobuf_c_message_pack_to_buffer(msg, &sb.base);
        if (sb.error < 0)
                return sb.error;
        *ret_written = VBUS_FRAME_HEADER_SIZE + size;
        return 0;
}

/* --- Meta prefix -------------------------------------------------------------------------- */

/* Reads a base-128 varint of at most 10 bytes at *@off. Return: false if truncated or longer. */
static bool meta_varint(const uint8_t *p, size_t n, size_t *off, uint64_t *ret)
{
        uint64_t v = 0;

        for (unsigned i = 0; i < 10 && *off < n; i++) {
                uint8_t b = p[(*off)++];

                v |= (uint64_t)(b & 0x7f) << (7 * i);
                if (!(b & 0x80)) {
                        *ret = v;
                        return true;
                }
        }
        return false;
}

size_t vbus__meta_const_len(const uint8_t *meta, size_t n)
{
        size_t off = 0, const_end = 0;
        bool other = false;

        if (!meta)
                return 0;
        while (off < n) {
                uint64_t tag, len;
                uint64_t field;

                if (!meta_varint(meta, n, &off, &tag))
                        return 0;
                field = tag >> 3;
                switch (tag & 7) {
                case 0:
                        if ((field == 1 || field == 2) || !meta_varint(meta, n, &off, &len))
                                return 0;
                        break;
                case 1:
                case 5: {
                        size_t k = (tag & 7) == 1 ? 8 : 4;

                        if (field == 1 || field == 2 || n - off < k)
                                return 0;
                        off += k;
                        break;
                }
                case 2:
                        if (!meta_varint(meta, n, &off, &len) || len > n - off)
                                return 0;
                        off += (size_t)len;
                        break;
                default:
                        return 0; /* groups and unknown wire types: decode the whole */
                }
                if (field == 1 || field == 2) {
                        if (other)
                                return 0;
                        const_end = off;
                } else {
                        other = true;
                }
        }
        return const_end;
}

int vbus__meta_split(const uint8_t *payload, size_t len, const uint8_t **ret_meta,
                     size_t *ret_n_meta, const uint8_t **ret_body, size_t *ret_n_body)
{
        size_t n, used;

        if ((len > 0 && !payload) || !ret_meta || !ret_n_meta || !ret_body || !ret_n_body)
                return -EINVAL;
        if (len < 1)
                return VBUS_FRAME_E_MALFORMED;
        if (!(payload[0] & 0x80)) {
                n = payload[0];
                used = 1;
        } else {
                if (len < 2)
                        return VBUS_FRAME_E_MALFORMED;
                /* Three or more varint bytes encode at least 16384 > VBUS_META_MAX. */
                if (payload[1] & 0x80)
                        return VBUS_FRAME_E_OVERSIZE;
                if (payload[1] == 0)
                        return VBUS_FRAME_E_MALFORMED; /* non-canonical */
                n = (size_t)(payload[0] & 0x7f) | (size_t)payload[1] << 7;
                used = 2;
        }
        if (n > VBUS_META_MAX)
                return VBUS_FRAME_E_OVERSIZE;
        if (n > len - used)
                return VBUS_FRAME_E_MALFORMED;
        *ret_meta = payload + used;
        *ret_n_meta = n;
        *ret_body = payload + used + n;
        *ret_n_body = len - used - n;
        return 0;
}

int vbus__meta_encode_prefix(size_t n_meta, uint8_t out[2])
{
        if (!out || n_meta > VBUS_META_MAX)
                return -EINVAL;
        if (n_meta < 0x80) {
                out[0] = (uint8_t)n_meta;
                return 1;
        }
        out[0] = (uint8_t)(0x80 | (n_meta & 0x7f));
        out[1] = (uint8_t)(n_meta >> 7);
        return 2;
}
