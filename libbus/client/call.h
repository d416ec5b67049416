/* SPDX-License-Identifier: MIT */
/*
 * call: unary calls (call.c), and what they share with streaming calls (stream.c): the checks of
 * a call's options and the opening of its CALL stream. Not installed.
 */
#ifndef VBUS_LIBBUS_CALL_H
#define VBUS_LIBBUS_CALL_H

#include <stddef.h>
#include <stdint.h>

#include <vbus/vbus.h>

#include "conn.h"

enum {
        /* Window granted for what the other end sends on a call: a whole message fits. */
        RPC_WINDOW = VBUS_STREAM_WINDOW,
        /* Extra time after a call's deadline before the library gives up on the broker's
         * answer by itself (the broker normally answers DEADLINE_EXCEEDED first). */
        RPC_DEADLINE_GRACE_US = 200 * 1000,
};

/**
 * vbus__rpc_check_headers() - checks @opts' headers (@opts may be NULL).
 * Return: 0, or -EINVAL for too many headers, a malformed key or a value too large.
 */
int vbus__rpc_check_headers(const vbus_call_options *opts);

/**
 * vbus__rpc_open_call() - opens a CALL stream to @method with @opts' timeout and headers (@opts
 * may be NULL), bound to @ops and @obj.
 * @ret_vs: written on success: the stream, borrowed until its ->closed.
 * Return: 0; -EINVAL (headers); -E2BIG (no stream id left); -ENOTCONN (no usable link); another
 * negative errno.
 */
int vbus__rpc_open_call(vbus_conn *c, const char *method, const vbus_call_options *opts,
                        const VbusStreamOps *ops, void *obj, VbusStream **ret_vs);

/* The library's own deadline for a call of @timeout_usec (not 0): the caller's deadline plus the
 * grace, UINT64_MAX (none) when that does not fit in 64 bits. */
uint64_t vbus__rpc_deadline(uint64_t timeout_usec);

/**
 * vbus__rpc_append() - appends @len bytes of @data to the message *@buf of *@n bytes.
 * Return: 0; -EMSGSIZE (the message would exceed VBUS_MESSAGE_MAX); -ENOMEM. Unchanged on error.
 */
int vbus__rpc_append(uint8_t **buf, size_t *n, const uint8_t *data, size_t len);

#endif /* VBUS_LIBBUS_CALL_H */
