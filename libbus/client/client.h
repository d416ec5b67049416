/* SPDX-License-Identifier: MIT */
/*
 * client: the connection object shared by the client library's modules: client.c (connection,
 * publish, subscribe) and rpc-client.c (calls and servers). Not installed.
 */
#ifndef VBUS_LIBBUS_CLIENT_H
#define VBUS_LIBBUS_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/un.h>

#include <vbus/vbus.h>

#include "endpoint.h"
#include "util/list.h"

typedef enum UrlKind {
        URL_UNIX = 1,
        URL_VCHAN = 2,
} UrlKind;

struct vbus_conn {
        UrlKind kind;
        char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
        uint32_t broker_domid;
        vbus_conn_state state;
        bool have_link;
        bool hello_sent;
        VbusEndpoint ep; /* valid while have_link */
        bool in_read;    /* inside vbus__endpoint_process(): a lost link is only recorded */
        int link_error;  /* the link failed while it was being read: dropped after the read */
        List publishers;
        List subscriptions;
        List calls;      /* vbus_call in flight */
        List servers;    /* vbus_server */
        List requests;   /* vbus_request received, not yet answered */
        List streams;    /* vbus_stream: streaming calls, at either end */
        int stream_busy; /* > 0 while stream callbacks run: frees are deferred */
        uint64_t reconnect_at;
        uint64_t backoff;
        uint64_t n_reconnects;
        uint64_t link_started;
        int last_error;
        bool ever_ready;
        bool in_process;
};

/* CLOCK_MONOTONIC in microseconds. */
uint64_t vbus__client_now(void);

/* Applies an outgoing control frame to the session and writes it (or queues it). A link that
 * fails is dropped (a reconnect is scheduled). Return: 0 or a negative errno. */
int vbus__conn_send_control(vbus_conn *c, uint8_t type, uint32_t stream_id,
                            const ProtobufCMessage *msg);

/* Opens a stream from this side with @o (borrowed). Return: 0 and the id in *ret_id; -E2BIG (no
 * stream id left); -ENOTCONN (no link, or the link failed and was dropped); another -errno. */
int vbus__conn_open_stream(vbus_conn *c, const Vbus__V1__Open *o, uint32_t *ret_id);

/* Writes one DATA frame if the stream's window and the link allow it. Return: 0, -EAGAIN,
 * -EPIPE (no such stream), -ENOTCONN (the link failed and was dropped). */
int vbus__conn_send_data(vbus_conn *c, uint32_t stream_id, uint8_t flags, const void *data,
                         size_t n);

/* The largest DATA payload that may be sent now on @stream_id (window and frame size). */
size_t vbus__conn_data_room(vbus_conn *c, uint32_t stream_id);

/* Ends a stream from this side (@type END or RESET with @status and @message, which may be NULL)
 * and flushes, when there is a link; used when a handle is freed. */
void vbus__conn_end_stream(vbus_conn *c, uint32_t stream_id, uint8_t type, int status,
                           const char *message);

/* Drops the link and schedules a reconnect. */
void vbus__conn_lost(vbus_conn *c);

/* rpc-client.c hooks, called by client.c. */
void vbus__rpc_link_ready(vbus_conn *c);
void vbus__rpc_link_dropped(vbus_conn *c);
/* Return: 1 if the frame belonged to a call or a request (handled), 0 if not, < 0 on a
 * protocol error. */
int vbus__rpc_dispatch(vbus_conn *c, const VbusFrame *f, const VbusControl *ctl, bool closed);
int vbus__rpc_push(vbus_conn *c);
bool vbus__rpc_has_unsent(vbus_conn *c);
uint64_t vbus__rpc_next_deadline(vbus_conn *c);
void vbus__rpc_expire(vbus_conn *c, uint64_t now);
void vbus__rpc_free_all(vbus_conn *c);

#endif /* VBUS_LIBBUS_CLIENT_H */
