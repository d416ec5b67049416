/* SPDX-License-Identifier: MIT */
/*
 * rpc: what the two RPC modules of the client library share. rpc-client.c has unary calls,
 * servers and requests (and the hooks client.c calls); rpc-stream.c has streaming calls, at the
 * caller and at the server. Not installed.
 */
#ifndef VBUS_LIBBUS_RPC_H
#define VBUS_LIBBUS_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"

enum {
        /* Window granted for what the other end sends on a call: a whole message fits. */
        RPC_WINDOW = VBUS_STREAM_WINDOW,
        /* Extra time after a call's deadline before the library gives up on the broker's
         * answer by itself (the broker normally answers DEADLINE_EXCEEDED first). */
        RPC_DEADLINE_GRACE_US = 200 * 1000,
};

typedef struct RpcHeader {
        char *key;
        uint8_t *value;
        size_t n_value;
} RpcHeader;

struct vbus_request {
        List link; /* in conn->requests; unlinked while a stream owns the request */
        vbus_conn *conn;
        vbus_server *srv;
        uint32_t id;
        char *full_method;
        const char *method;
        uint32_t caller_domid, caller_uid;
        char caller_name[65];
        bool caller_local;
        uint64_t deadline;
        RpcHeader *headers;
        size_t n_headers;
        uint8_t *rx;
        size_t n_rx;
        bool rx_complete; /* the request message is whole (a DATA frame without MORE came) */
        bool dispatched;  /* handed to the application */
        bool cancelled;
        bool answered; /* the application answered: the library sends it */
        bool link_valid;
        uint8_t *out;
        size_t n_out, off;
        bool sent_empty;
        int status;
        char *message;
        vbus_stream *stream; /* the stream that owns this request, if any */
};

/* Sends *off..n of @buf on stream @id in DATA frames, as far as the window and the link allow
 * (MORE on all but the message's last frame). Return: 1 when all of it is sent (an empty message
 * is one empty frame), 0 when the rest must wait for credit or room, -1 on a failed link. */
int vbus__rpc_send_message(vbus_conn *c, uint32_t id, const uint8_t *buf, size_t n, size_t *off,
                           bool *sent_empty);

/* Checks @opts' headers (@opts may be NULL). Return: 0, or -EINVAL for too many headers, a
 * malformed key or a value too large. */
int vbus__rpc_check_headers(const vbus_call_options *opts);

/* Opens a CALL stream to @method with @opts' timeout and headers (@opts may be NULL), and
 * writes its id to @ret_id. Return: 0; -EINVAL (headers); -E2BIG (no stream id left);
 * -ENOTCONN (the link failed); another negative errno. */
int vbus__rpc_open_call(vbus_conn *c, const char *method, const vbus_call_options *opts,
                        uint32_t *ret_id);

/* Frees a request (and unlinks it). */
void vbus__rpc_request_free(vbus_request *req);

/* rpc-stream.c */

/* Makes the stream that will carry @req for a method served as a stream (before the application
 * has taken it with vbus_request_stream()). Return: the stream, or NULL on ENOMEM. */
vbus_stream *vbus__stream_new_for_request(vbus_request *req);
/* Frees a stream made by vbus__stream_new_for_request() that the application did not take,
 * leaving @req to be answered as a plain request. */
void vbus__stream_detach_request(vbus_stream *st);
bool vbus__stream_is_taken(const vbus_stream *st);
/* The stream's id (for tests that speak the protocol by hand on a stream). */
uint32_t vbus__stream_get_id(const vbus_stream *st);
vbus_stream *vbus__stream_find(vbus_conn *c, uint32_t id);
int vbus__stream_dispatch(vbus_stream *st, const VbusFrame *f, const VbusControl *ctl);
int vbus__stream_push_all(vbus_conn *c);
bool vbus__stream_has_unsent(vbus_conn *c);
uint64_t vbus__stream_next_deadline(vbus_conn *c);
void vbus__stream_expire(vbus_conn *c, uint64_t now);
void vbus__stream_link_dropped(vbus_conn *c);
void vbus__stream_free_all(vbus_conn *c);

#endif /* VBUS_LIBBUS_RPC_H */
