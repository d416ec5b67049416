/* SPDX-License-Identifier: MIT */
/*
 * server: servers and the requests they receive (server.c), and what streaming calls at the
 * server (stream.c) share with them: the request a stream carries. Not installed.
 *
 * A request is the server end of a CALL stream the broker opened toward us. It owns its stream
 * (bound to the request) until a stream takes it over for a method served as a stream
 * (vbus__stream_new_for_request()); if the application answers it as a plain request after all,
 * the stream gives it back (vbus__request_adopt()).
 */
#ifndef VBUS_LIBBUS_SERVER_H
#define VBUS_LIBBUS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vbus/vbus.h>

#include "conn.h"
#include "util/list.h"

typedef struct Servers Servers;

typedef struct RpcHeader {
        char *key;
        uint8_t *value;
        size_t n_value;
} RpcHeader;

struct vbus_request {
        List link; /* in Servers.requests; unlinked while a stream owns the request */
        Servers *srvs;
        vbus_conn *conn;
        vbus_server *srv;
        VbusStream *vs; /* while the request owns its open stream; bound to the request */
        uint32_t id;
        char *full_method;
        const char *method;
        uint32_t caller_domid, caller_uid;
        char caller_name[65];
        char caller_key[VBUS_AUTH_FIELD_MAX + 1]; /* Identity.key_name: "" without a key */
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
        const struct VbusRequestStreamOps *stream_ops; /* the method's, while a stream owns it */
};

/*
 * What a method served as a stream does with its requests. The streaming module provides it and
 * registers it with vbus__server_add_stream_method(), so that servers call streams only through
 * it and the dependency points one way (stream -> server).
 */
typedef struct VbusRequestStreamOps {
        /* Makes the stream that will carry @req (sets req->stream). NULL: out of memory. */
        vbus_stream *(*take)(vbus_request *req);
        /* Frees a stream the application did not take; @req becomes a plain request again. */
        void (*detach)(vbus_stream *st);
        /* Whether the application took @st (vbus_request_stream()). */
        bool (*is_taken)(const vbus_stream *st);
} VbusRequestStreamOps;

/**
 * vbus__server_set_description() - @buf (@n bytes, transferred on success): a packed, valid
 * vbus.v1.ServiceDescription of @srv's service, sent as the only message of its SERVE stream on
 * every link (describe.c makes it). Return: 0; -EALREADY (@srv has one: nothing taken).
 */
int vbus__server_set_description(vbus_server *srv, uint8_t *buf, size_t n);

/* The service @srv serves (borrowed for the server's life). */
const char *vbus__server_get_service(const vbus_server *srv);

/**
 * vbus__server_add_stream_method() - serve @method of @srv as a stream: its requests are handed
 * to @ops->take() as they open, and to @cb at once. A second call for the same method replaces
 * @cb and @userdata. @ops: borrowed for the server's life.
 * Return: 0, -EINVAL (bad method name), -ENOMEM.
 */
int vbus__server_add_stream_method(vbus_server *srv, const char *method, vbus_request_cb cb,
                                   void *userdata, const VbusRequestStreamOps *ops);

/* Frees @req (its stream too, if one owns it), unbinding its stream. */
void vbus__request_free(vbus_request *req);

/**
 * vbus__request_adopt() - @req is a plain request again: back in its server set's list, and
 * owner of @vs (may be NULL: its stream is gone), which is bound to it.
 */
void vbus__request_adopt(vbus_request *req, VbusStream *vs);

#endif /* VBUS_LIBBUS_SERVER_H */
