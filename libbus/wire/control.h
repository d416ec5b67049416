/* SPDX-License-Identifier: MIT */
/*
 * control: decoding, validation and encoding of control payloads (docs/protocol.md, "Control
 * messages") and of the Meta prefix of DATA frames.
 *
 * A control frame's type says which vbus.v1 message its payload is. Decoding is bounded twice:
 * the payload is at most VBUS_CONTROL_MAX bytes (checked by frame.c), and protobuf-c allocates
 * through a counting allocator that fails past a byte budget. A decoded message is then
 * validated against the rules of protocol.md (enum ranges, string lengths and characters, counts)
 * before anyone acts on it.
 *
 * Result codes as in frame.h: 0, negative errno for local failures, positive VBUS_FRAME_E_* for
 * the peer's faults (VBUS_FRAME_E_MALFORMED: not a protobuf of the right type, or too costly to
 * decode; VBUS_FRAME_E_SEMANTIC: a rule of protocol.md is broken).
 */
#ifndef VBUS_LIBBUS_CONTROL_H
#define VBUS_LIBBUS_CONTROL_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "name.h"
#include "vbus/v1/link.pb-c.h"

/* Limits of control messages (those of names are in name.h). Mirrored in docs/protocol.md,
 * "Limits". */
enum {
        /* Bytes protobuf-c may allocate to decode one control payload: about 16x its size. */
        VBUS_CONTROL_DECODE_BUDGET = 64 * 1024,
        /* Longest human-readable message in REJECT/END/RESET/GOAWAY/ERROR. */
        VBUS_STATUS_MESSAGE_MAX = 1024,
        /* Longest peer_name in HELLO. */
        VBUS_PEER_NAME_MAX = 64,
        /* Longest auth challenge/proof/key name in HELLO (ed25519 signature = 64 bytes). */
        VBUS_AUTH_FIELD_MAX = 128,
        /* Call metadata: at most 16 headers, keys 1..VBUS_HEADER_KEY_MAX bytes (name.h), values
         * at most 1024 bytes. */
        VBUS_HEADERS_MAX = 16,
        VBUS_HEADER_VALUE_MAX = 1024,
        /* Largest Meta prefix of a DATA frame. */
        VBUS_META_MAX = 1024,
        /* Largest credit increment and window: keeps window arithmetic in 31 bits. */
        VBUS_CREDIT_MAX = 0x7fffffff,
};

/* A decoded control message, owned by the struct (release with vbus__control_deinit). */
typedef struct VbusControl {
        uint8_t type;          /* VbusFrameType of the frame it came from */
        ProtobufCMessage *msg; /* the vbus.v1 message for that type */
        size_t n_allocated;    /* bytes the bounded allocator handed out, for accounting */
        size_t budget;
} VbusControl;

#define VBUS_CONTROL_NULL                                                                          \
        {                                                                                          \
                0                                                                                  \
        }

/**
 * vbus__control_descriptor() - the protobuf descriptor of a control frame type.
 * Return: the descriptor, or NULL for DATA and unknown types.
 */
const ProtobufCMessageDescriptor *vbus__control_descriptor(int type);

/**
 * vbus__control_decode() - decode and validate a control payload.
 * @h: borrowed, a header that passed vbus__frame_header_validate(); not DATA.
 * @payload: borrowed, h->length bytes (may be NULL when 0).
 * @budget: allocation budget in bytes (VBUS_CONTROL_DECODE_BUDGET normally).
 * @ret: written only on success; release with vbus__control_deinit().
 *
 * Return: 0, VBUS_FRAME_E_MALFORMED, VBUS_FRAME_E_SEMANTIC, -EINVAL.
 */
int vbus__control_decode(const VbusFrameHeader *h, const uint8_t *payload, size_t budget,
                         VbusControl *ret);

void vbus__control_deinit(VbusControl *c);

/**
 * vbus__control_check_strings() - rule 9 of protocol.md on raw protobuf bytes: no string field
 * of @desc's message (or of its sub-messages, 4 levels deep) contains a NUL byte. Used before
 * protobuf-c decodes, since it keeps strings NUL-terminated without their length.
 * @desc: borrowed; @buf: borrowed, @len bytes (not NULL, even when @len is 0).
 * Return: 0, VBUS_FRAME_E_MALFORMED (not a protobuf encoding), VBUS_FRAME_E_SEMANTIC (a NUL).
 */
int vbus__control_check_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                                size_t len);

/**
 * vbus__control_validate() - the semantic rules of protocol.md for one decoded message.
 * @type: the frame type; @msg: borrowed, a message of vbus__control_descriptor(type).
 * Return: 0 or VBUS_FRAME_E_SEMANTIC.
 */
int vbus__control_validate(int type, const ProtobufCMessage *msg);

/**
 * vbus__control_encode() - write a control frame (header + packed @msg) into @out.
 * @h: borrowed; h->length is ignored and computed from @msg.
 * @msg: borrowed; must be of vbus__control_descriptor(h->type).
 *
 * The message is packed straight into the segments, without an intermediate buffer.
 * Return: 0 and the frame size in *ret_written; -EINVAL for a type/message mismatch or a
 * message larger than VBUS_CONTROL_MAX; -ENOBUFS if @out is too small.
 */
int vbus__control_encode(const VbusFrameHeader *h, const ProtobufCMessage *msg,
                         const VbusSegments *out, size_t *ret_written);

/**
 * vbus__meta_split() - split the payload of a DATA frame with VBUS_FLAG_META.
 * @payload, @len: borrowed.
 * @ret_meta, @ret_n_meta: the Meta bytes (borrowed from @payload).
 * @ret_body, @ret_n_body: the message bytes after them (borrowed).
 *
 * The prefix is a canonical (shortest) base-128 varint N <= VBUS_META_MAX, then N bytes.
 * Return: 0, VBUS_FRAME_E_MALFORMED (truncated or non-canonical varint, N past the payload),
 * VBUS_FRAME_E_OVERSIZE (N > VBUS_META_MAX), -EINVAL.
 */
int vbus__meta_split(const uint8_t *payload, size_t len, const uint8_t **ret_meta,
                     size_t *ret_n_meta, const uint8_t **ret_body, size_t *ret_n_body);

/**
 * vbus__meta_const_len() - the leading bytes of the Meta @meta (@n bytes, borrowed) that hold
 * its topic and sender (fields 1 and 2, length-delimited) and nothing else, provided no later
 * field is 1 or 2. Decoding those bytes and the rest apart then gives what decoding the whole
 * gives (protobuf merges fields in order), so a receiver may decode the leading part once per
 * publisher (the broker sends it unchanged for every message of one publisher to one
 * subscription) and only the rest (dropped, sequence, retained) per message.
 * Return: that length (> 0), or 0: no such split (no field 1 or 2 first, a field 1 or 2 later,
 * a field 1 or 2 that is not length-delimited, a group or an unknown wire type, a truncated or
 * overlong field): decode the whole.
 */
size_t vbus__meta_const_len(const uint8_t *meta, size_t n);

/**
 * vbus__meta_encode_prefix() - write the varint length prefix for @n_meta bytes of Meta.
 * @out: at least 2 bytes (VBUS_META_MAX < 16384).
 * Return: the number of bytes written (1 or 2), or -EINVAL if @n_meta > VBUS_META_MAX.
 */
int vbus__meta_encode_prefix(size_t n_meta, uint8_t out[2]);

#endif /* VBUS_LIBBUS_CONTROL_H */
