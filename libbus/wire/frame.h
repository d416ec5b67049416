/* SPDX-License-Identifier: MIT */
/*
 * frame: the frame layer of the vbus wire protocol (docs/protocol.md, "Frames").
 *
 * A link carries a sequence of frames. Each frame is a 16-byte little-endian header followed by
 * `length` payload bytes. This module encodes headers and frames into caller buffers (one or two
 * segments, so a frame can be written straight into a ring that wraps), and decodes a byte
 * stream that arrives in arbitrary chunks. It validates each header completely (magic, version,
 * type, flags, stream id, and the length against the negotiated maximum) before it allocates
 * anything. Control payloads are decoded by control.h.
 *
 * Result codes: functions return 0 on success, a negative errno for local failures (-ENOMEM,
 * -EINVAL for caller bugs, -ENOBUFS when an output buffer is too small), or one of the positive
 * VBUS_FRAME_E_* codes below when the peer's bytes break a rule. A positive code means: tear the
 * link down (docs/protocol.md, "Errors").
 */
#ifndef VBUS_LIBBUS_FRAME_H
#define VBUS_LIBBUS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits of the frame layer. Mirrored in docs/protocol.md, "Limits". */
enum {
        /* Size of the fixed header; never changes within frame format version 1. */
        VBUS_FRAME_HEADER_SIZE = 16,
        /* First byte of every header: catches a desynchronised or foreign byte stream at once. */
        VBUS_FRAME_MAGIC = 0xB5,
        /* Second byte: the frame format version this code reads and writes. */
        VBUS_FRAME_VERSION = 1,
        /* max_frame a side assumes until HELLO says otherwise; HELLO itself must fit in it. */
        VBUS_FRAME_MAX_INITIAL = 4096,
        /* Smallest max_frame a HELLO may announce: every control frame must always fit. */
        VBUS_FRAME_MAX_MIN = 4096,
        /* Largest max_frame a HELLO may announce: bounds one allocation per peer at 16 MiB. */
        VBUS_FRAME_MAX_LIMIT = 16 * 1024 * 1024,
        /* max_frame this implementation announces by default: a 64 KiB message and its Meta
         * travel in one frame, not two (bench/pubsub: 1.9x the rate of 60 KiB frames at 64
         * KiB). A writer never makes a frame larger than its ring can hold
         * (vbus__link_max_payload()), so a smaller ring just means smaller frames. */
        VBUS_FRAME_MAX_DEFAULT = 128 * 1024,
        /* Largest control payload: control messages are small; bounds their decoding cost. */
        VBUS_CONTROL_MAX = 4096,
};

/* Highest stream id + 1: the top bit is reserved (docs/protocol.md, "Stream ids"). */
#define VBUS_STREAM_ID_LIMIT 0x80000000u

/* Frame types (header byte 2). Values are wire values and never change. */
typedef enum VbusFrameType {
        VBUS_FRAME_HELLO = 1,
        VBUS_FRAME_OPEN = 2,
        VBUS_FRAME_ACCEPT = 3,
        VBUS_FRAME_REJECT = 4,
        VBUS_FRAME_DATA = 5,
        VBUS_FRAME_END = 6,
        VBUS_FRAME_RESET = 7,
        VBUS_FRAME_CREDIT = 8,
        VBUS_FRAME_PING = 9,
        VBUS_FRAME_GOAWAY = 10,
        VBUS_FRAME_ERROR = 11,
        VBUS_FRAME_TYPE_N = 12, /* one past the highest type */
} VbusFrameType;

/* Frame flags (header byte 3). Each is defined for one frame type only. */
enum {
        VBUS_FLAG_MORE = 0x01, /* DATA: the message continues in the next DATA frame */
        VBUS_FLAG_META = 0x02, /* DATA: the payload starts with a Meta prefix */
        /* DATA, client to broker, first frame of a message on a PUBLISH stream: keep this
         * message as the topic's retained value (protocol.md 6.5). */
        VBUS_FLAG_RETAIN = 0x04,
        /* DATA, once BATCH is in force: the payload is one or more whole messages, each a
         * length varint and its bytes (batch.h, protocol.md 5.5). */
        VBUS_FLAG_BATCH = 0x08,
        VBUS_FLAG_ACK = 0x01, /* PING: this is the answer to a PING */
};

/* Feature bits of Hello.features (protocol.md section 3, "Features"). */
enum {
        /* The broker keeps retained values (RETAIN on PUBLISH streams, Meta.retained). */
        VBUS_FEATURE_RETAIN = 1u << 1,
        /* The broker takes a server's vbus.v1.ServiceDescription as the DATA of its SERVE
         * stream and answers vbus.v1.Broker/Describe (protocol.md 6.6). */
        VBUS_FEATURE_DESCRIBE = 1u << 2,
        /* Every message costs its length plus VBUS_MESSAGE_CHARGE of its stream's window
         * (protocol.md 5.4), when both HELLOs set this bit. */
        VBUS_FEATURE_MESSAGE_CHARGE = 1u << 3,
        /* DATA frames may carry several whole messages (VBUS_FLAG_BATCH, protocol.md 5.5) on
         * PUBLISH and SUBSCRIBE streams, when both HELLOs set this bit and MESSAGE_CHARGE is in
         * force. */
        VBUS_FEATURE_BATCH = 1u << 4,
};

enum {
        /* Window bytes a message costs beyond its payload once MESSAGE_CHARGE is negotiated,
         * charged on its last DATA frame (the one without MORE): what the broker charges a queued
         * message against its budgets (vchand's LIMIT_ITEM_OVERHEAD is the same figure), so that
         * a window bounds a stream's messages as well as its bytes, and a flood of tiny or empty
         * messages waits for credit like any other. */
        VBUS_MESSAGE_CHARGE = 64,
};

/* Reasons a peer's bytes are rejected. Positive, so they never mix with -errno. */
typedef enum VbusFrameError {
        VBUS_FRAME_E_BAD_MAGIC = 1,    /* header byte 0 is not VBUS_FRAME_MAGIC */
        VBUS_FRAME_E_BAD_VERSION = 2,  /* header byte 1 is not VBUS_FRAME_VERSION */
        VBUS_FRAME_E_UNKNOWN_TYPE = 3, /* header byte 2 is not a VbusFrameType */
        VBUS_FRAME_E_OVERSIZE = 4,     /* length over the negotiated or control maximum */
        VBUS_FRAME_E_MALFORMED = 5,    /* payload is not a valid protobuf of its type */
        VBUS_FRAME_E_SEMANTIC = 6,     /* well-formed, but breaks a rule of the protocol */
} VbusFrameError;

typedef struct VbusFrameHeader {
        uint8_t type;        /* VbusFrameType */
        uint8_t flags;       /* VBUS_FLAG_* allowed for the type */
        uint32_t length;     /* payload bytes that follow the header */
        uint32_t stream_id;  /* 0 = the link itself */
        uint32_t session_id; /* agent session, 0 = the link's own session */
        /* Not on the wire: the messages a DATA frame with VBUS_FLAG_BATCH carries (the sender
         * sets it; vbus__session_recv() counts them from the payload), 0 otherwise. */
        uint32_t n_messages;
} VbusFrameHeader;

/* A decoded frame. `payload` is borrowed (see vbus__frame_decoder_feed). */
typedef struct VbusFrame {
        VbusFrameHeader header;
        const uint8_t *payload;
} VbusFrame;

/* An output area of up to two segments: a contiguous buffer, or the two halves of a ring. */
typedef struct VbusSegments {
        uint8_t *base[2];
        size_t size[2];
} VbusSegments;

/**
 * vbus__frame_error_name() - a short name for a VbusFrameError, for logs.
 * Return: static string, "unknown" for other values.
 */
const char *vbus__frame_error_name(int error);

/**
 * vbus__frame_type_name() - "hello", "open", ..., or "unknown".
 */
const char *vbus__frame_type_name(int type);

/**
 * vbus__frame_header_validate() - apply the header rules of docs/protocol.md, "Receiving".
 * @h: borrowed.
 * @max_payload: the maximum payload this side negotiated (VBUS_FRAME_MAX_INITIAL before HELLO).
 *
 * Return: 0, or VBUS_FRAME_E_UNKNOWN_TYPE, VBUS_FRAME_E_OVERSIZE or VBUS_FRAME_E_SEMANTIC.
 * Magic and version are checked by vbus__frame_header_decode().
 */
int vbus__frame_header_validate(const VbusFrameHeader *h, uint32_t max_payload);

/**
 * vbus__frame_header_decode() - parse and validate 16 header bytes.
 * @buf: borrowed, at least VBUS_FRAME_HEADER_SIZE bytes (-EINVAL otherwise).
 * @ret_header: written only on success.
 *
 * Return: 0, a positive VBUS_FRAME_E_* code, or -EINVAL.
 */
int vbus__frame_header_decode(const uint8_t *buf, size_t len, uint32_t max_payload,
                              VbusFrameHeader *ret_header);

/**
 * vbus__frame_header_encode() - write the 16 header bytes of @h into @out.
 */
void vbus__frame_header_encode(const VbusFrameHeader *h, uint8_t out[VBUS_FRAME_HEADER_SIZE]);

/**
 * vbus__frame_encode() - write a whole frame (header + @payload) into @out.
 * @h: borrowed; h->length must equal @n_payload.
 * @payload: borrowed, may be NULL when @n_payload is 0.
 * @out: borrowed; the frame is written from the start of segment 0 and continues in segment 1.
 *
 * Return: 0 and the frame size in *ret_written; -EINVAL if h->length != n_payload;
 * -ENOBUFS if the segments are too small (nothing useful is written then).
 */
int vbus__frame_encode(const VbusFrameHeader *h, const void *payload, size_t n_payload,
                       const VbusSegments *out, size_t *ret_written);

/**
 * vbus__segments_write() - copy @n bytes at @offset into the two segments.
 * Return: 0, or -ENOBUFS when offset + n exceeds the segments.
 */
int vbus__segments_write(const VbusSegments *out, size_t offset, const void *src, size_t n);

/*
 * The incremental decoder: feed it the byte stream in chunks of any size; it returns one frame
 * at a time. A frame that arrives whole within one chunk is returned in place (zero copy); a
 * frame split across chunks is reassembled in a buffer allocated after its header validated.
 * After any positive error the decoder stays failed and returns the same code.
 */
typedef struct VbusFrameDecoder {
        uint32_t max_payload;
        int error;
        size_t n_header;
        uint8_t header_buf[VBUS_FRAME_HEADER_SIZE];
        bool have_header;
        VbusFrameHeader header;
        uint8_t *payload;
        size_t n_payload;
        bool frame_out; /* the previous feed returned a frame from `payload` */
} VbusFrameDecoder;

#define VBUS_FRAME_DECODER_NULL(max)                                                               \
        {                                                                                          \
                .max_payload = (max)                                                               \
        }

void vbus__frame_decoder_init(VbusFrameDecoder *d, uint32_t max_payload);
void vbus__frame_decoder_deinit(VbusFrameDecoder *d);

/**
 * vbus__frame_decoder_set_max() - change the maximum payload (after HELLO negotiated it).
 * Return: 0, or -EINVAL when @max_payload is outside [VBUS_FRAME_MAX_MIN, VBUS_FRAME_MAX_LIMIT].
 */
int vbus__frame_decoder_set_max(VbusFrameDecoder *d, uint32_t max_payload);

/**
 * vbus__frame_decoder_feed() - consume bytes, return at most one complete frame.
 * @buf: borrowed; may be NULL when @len is 0.
 * @ret_consumed: how many bytes of @buf were used (always written on 0 return).
 * @ret_frame: written when a frame is complete; its payload is borrowed from @buf or from the
 *             decoder, valid until the next feed or deinit and while @buf is unchanged.
 *
 * Return: 1 if *ret_frame holds a frame (more of @buf may remain: feed the rest again), 0 if
 * more bytes are needed (all of @buf was consumed), -EPROTO when the peer's bytes break a rule
 * (the positive VBUS_FRAME_E_* reason is then in vbus__frame_decoder_error(); the decoder stays
 * failed), -ENOMEM when the payload buffer cannot be allocated, -EINVAL for a NULL argument.
 */
int vbus__frame_decoder_feed(VbusFrameDecoder *d, const uint8_t *buf, size_t len,
                             size_t *ret_consumed, VbusFrame *ret_frame);

static inline int vbus__frame_decoder_error(const VbusFrameDecoder *d)
{
        return d->error;
}

/* True when no partial frame is buffered: the stream may end here without losing bytes. */
static inline bool vbus__frame_decoder_is_idle(const VbusFrameDecoder *d)
{
        return d->n_header == 0 || d->frame_out;
}

/* Little-endian helpers for the header fields. */
static inline uint32_t vbus__le32_read(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void vbus__le32_write(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
        p[2] = (uint8_t)(v >> 16);
        p[3] = (uint8_t)(v >> 24);
}

#endif /* VBUS_LIBBUS_FRAME_H */
