/*
 * xs-wire: the xenstore wire format (xen/io/xs_wire.h), bounded decode and encode.
 *
 * A message is a 16-byte header (type, req_id, tx_id, len; host byte order, as every
 * xenstore client on the same machine writes it) followed by len payload bytes, len at most
 * XS_PAYLOAD_MAX. Payloads are sequences of NUL-terminated strings, except the data part of
 * XS_WRITE, which is raw bytes. Nothing here trusts the peer: every decoder takes
 * (buf, len), never reads past len and never assumes NUL termination.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "xs-limits.h"

#define XS_WIRE_HEADER_SIZE 16u

typedef struct XsHeader {
        uint32_t type;
        uint32_t req_id;
        uint32_t tx_id;
        uint32_t len;
} XsHeader;

/*
 * Finds the first complete message in buf. On success writes the header to ret_hdr and the
 * message's total size (header + payload) to ret_size. Returns -EAGAIN when buf holds only
 * part of a message and -EMSGSIZE when the header announces a payload larger than
 * XS_PAYLOAD_MAX (a protocol violation: the connection must be closed).
 */
int xs_wire_frame(const uint8_t *buf, size_t len, XsHeader *ret_hdr, size_t *ret_size);

/* Writes hdr into out (XS_WIRE_HEADER_SIZE bytes). */
void xs_wire_encode_header(const XsHeader *hdr, uint8_t *out);

/* Number of NUL bytes in the payload, i.e. of complete strings (Xen's count_strings). */
size_t xs_wire_count_strings(const uint8_t *p, size_t len);

/*
 * Splits the payload into its leading NUL-terminated strings: stores up to n_max pointers
 * (borrowed, into p) in argv and the number of complete strings found in *ret_n (which may
 * exceed n_max). Returns 0, or -EINVAL when n_max is 0.
 */
int xs_wire_get_args(const uint8_t *p, size_t len, const char **argv, size_t n_max, size_t *ret_n);

/*
 * The payload must be exactly one string: non-empty, with its only NUL as the last byte.
 * Returns 0 and the string (borrowed) in *ret, or -EINVAL.
 */
int xs_wire_onearg(const uint8_t *p, size_t len, const char **ret);

/*
 * The xenstore error name of a positive errno ("EACCES", ...); errnos Xen has no name for
 * are sent as "EINVAL", as Xen's send_error() does.
 */
const char *xs_wire_error_name(int err);

/* The errno for an error name, or 0 if unknown (used by clients such as xs-bench). */
int xs_wire_error_from_name(const char *name, size_t len);

/* A short name for a message type, for logs ("READ", ...; "UNKNOWN" otherwise). */
const char *xs_wire_type_name(uint32_t type);
