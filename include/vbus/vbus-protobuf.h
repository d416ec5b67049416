/* SPDX-License-Identifier: MIT */
/*
 * vbus-protobuf: typed RPC over vbus through protobuf-c.
 *
 * protoc-c generates, for each `service` of a .proto file, a ProtobufCServiceDescriptor
 * (<pkg>__<service>__descriptor), a <Service>_Service struct of method handlers with an INIT
 * macro, and client stubs <pkg>__<service>__<method>(service, input, closure, closure_data) that
 * call service->invoke(). This header connects both sides to the bus:
 *
 * - A server fills a generated <Service>_Service with its handlers and passes it to
 *   vbus_protobuf_serve(): each call to "<full service name>/<Method>" is decoded and handed to
 *   the handler, whose closure encodes the reply and answers the call.
 * - A client gets a ProtobufCService from vbus_protobuf_client_new() and calls the generated
 *   stubs on it: each stub becomes one vbus call, and its closure runs from vbus_conn_process()
 *   with the decoded reply (or NULL on failure; vbus_protobuf_client_get_status() says why).
 *   vbus_protobuf_call() is the blocking form.
 *
 * The wire payload of a call is the packed protobuf message, nothing else, so untyped callers
 * (vbusctl call) and untyped servers interoperate with typed ones.
 *
 * Decoding is bounded: a message decoded by this module may allocate at most
 * VBUS_PROTOBUF_DECODE_MAX bytes in total, whatever its wire size (protobuf's encoding lets a
 * small input ask for much more memory, e.g. many empty sub-messages). Every message this module
 * hands out is allocated with the system allocator, so protobuf_c_message_free_unpacked(msg,
 * NULL) frees it.
 *
 * Threading: as <vbus/vbus.h>: nothing here is thread-safe; use one connection per thread.
 */
#ifndef VBUS_VBUS_PROTOBUF_H
#define VBUS_VBUS_PROTOBUF_H

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

#include <vbus/vbus.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The most memory one decoded message may take (the sum of its allocations), in bytes: eight
 * times the largest wire message, enough for any honest message, small enough to bound what a
 * hostile peer can make the decoder allocate. */
#define VBUS_PROTOBUF_DECODE_MAX ((size_t)8 * (size_t)VBUS_MESSAGE_MAX)

/* ---------------------------------------------------------------------------------------------
 * Serving
 *
 * For each call the library:
 *   - looks the method up by name in the service's descriptor: an unknown method fails with
 *     VBUS_STATUS_NOT_FOUND; a method whose handler is NULL in a generated service fails with
 *     VBUS_STATUS_UNSUPPORTED;
 *   - decodes the request with the method's input descriptor, bounded as above: a request that
 *     does not decode fails with VBUS_STATUS_INVALID_ARGUMENT (the caller's link stays up, and
 *     the server goes on serving);
 *   - calls service->invoke(service, method_index, input, closure, closure_data).
 * The handler answers by calling closure(output, closure_data) exactly once, now or later (an
 * asynchronous handler keeps @input, @closure and @closure_data until then: all stay valid until
 * the closure or vbus_protobuf_fail() is called, and become invalid after). The closure encodes
 * @output (borrowed: the handler keeps ownership of it) and answers the call with it:
 *   - output NULL: the call fails with VBUS_STATUS_APPLICATION, "the service failed" (the
 *     application's own failure; VBUS_STATUS_INTERNAL is kept for faults of the bus or the
 *     library). vbus_protobuf_fail() answers with any status and message instead;
 *   - output of another type than the method's output: VBUS_STATUS_INTERNAL;
 *   - output larger than VBUS_MESSAGE_MAX once encoded: VBUS_STATUS_INTERNAL;
 *   - out of memory: VBUS_STATUS_INTERNAL.
 * If the caller cancelled meanwhile, the answer is discarded silently.
 *
 * Every pending call must be answered before the connection is freed (vbus_conn_free() frees
 * the requests the closures refer to); vbus_server_free() may come before the answers.
 */

/**
 * vbus_protobuf_serve() - serve a protobuf-c service on the bus.
 * @conn: borrowed; must outlive the server.
 * @service: borrowed until vbus_server_free(): a generated <Service>_Service (its base) or any
 *           ProtobufCService with a valid descriptor and invoke function. The service is
 *           registered under its descriptor's full name (for example "storage.v1.Store").
 * @ret_server: written on success; stop serving with vbus_server_free().
 *
 * Registration proceeds as vbus_serve() (kept across reconnects; vbus_server_is_active() says
 * when calls are routed). Calls run from vbus_conn_process().
 *
 * Return: 0; -EINVAL (a NULL argument, no invoke function, a descriptor without the protobuf-c
 * service magic, or a service name the bus does not accept); -ENOMEM.
 */
VBUS_EXPORT int vbus_protobuf_serve(vbus_conn *conn, ProtobufCService *service,
                                    vbus_server **ret_server);

/* How a method's messages flow, for vbus_protobuf_describe(): protoc-c's descriptors do not say. */
typedef struct vbus_protobuf_method_kind {
        const char *method; /* a method of the service ("Scan"), borrowed for the call */
        bool client_streaming;
        bool server_streaming;
} vbus_protobuf_method_kind;

/**
 * vbus_protobuf_describe() - register the protobuf description of @srv's service with the broker,
 * so that `vbusctl describe` shows its methods and types and `vbusctl call --json` can build
 * requests and read replies (docs/reflection.md).
 * @srv: borrowed: a server of the service @desc describes (from vbus_protobuf_serve() or
 *       vbus_serve() with the same full name).
 * @desc: borrowed for the call: the generated <pkg>__<service>__descriptor. Its methods'
 *        input and output types are described, and every message and enum type they use,
 *        nested ones included, by their full names.
 * @kinds, @n_kinds: borrowed for the call, may be NULL/0: the streaming methods (every other
 *        method is described as unary).
 *
 * The description is sent as the only message of the server's SERVE stream, once the broker has
 * accepted it, and again on each reconnect; a broker older than the feature is sent nothing. The
 * broker keeps it while this server serves, charged to this connection, and answers it to any
 * caller its policy allows `admin list` (vbus.v1.Broker/Describe). Call it once per server, right
 * after registering.
 *
 * Return: 0; -EINVAL (a NULL argument, a descriptor without the service magic, a service other
 * than @srv's, a kind naming no method of @desc); -EALREADY (@srv has a description); -E2BIG
 * (over a limit of docs/protocol.md: 64 KiB packed, 256 methods, 512 types, 4096 fields and enum
 * values); -ENOMEM.
 */
VBUS_EXPORT int vbus_protobuf_describe(vbus_server *srv, const ProtobufCServiceDescriptor *desc,
                                       const vbus_protobuf_method_kind *kinds, size_t n_kinds);

/**
 * vbus_protobuf_get_request() - the bus request behind a handler's @closure_data.
 * @closure_data: borrowed: the closure_data the library passed to the handler.
 *
 * Gives the handler the caller's identity (vbus_request_get_caller_domid() and friends), the
 * deadline (vbus_request_get_deadline()) and whether the call was cancelled meanwhile
 * (vbus_request_is_cancelled()). The request is borrowed: valid until the closure or
 * vbus_protobuf_fail() is called; do not answer it with vbus_request_reply() or
 * vbus_request_fail() (the closure does that).
 *
 * Return: the request, or NULL if @closure_data is NULL or was not made by this library (an
 * in-process call of the same handler, for example). Only closure_data values this library
 * passed, and not yet answered, may be given: any other non-NULL pointer must point to at least
 * 8 readable bytes.
 */
VBUS_EXPORT const vbus_request *vbus_protobuf_get_request(void *closure_data);

/**
 * vbus_protobuf_fail() - answer a call with a failure instead of calling its closure.
 * @closure_data: transferred: the closure_data the library passed to the handler; invalid after
 *                this call, and the closure must not be called any more.
 * @status: a failure status, 2..13 (VBUS_STATUS_APPLICATION for the application's own errors;
 *          VBUS_STATUS_INVALID_ARGUMENT, VBUS_STATUS_NOT_FOUND and so on when they fit).
 * @message: borrowed, may be NULL: shown to the caller.
 *
 * The handler's @input is freed by this call.
 *
 * Return: 0; -ECANCELED (the caller cancelled or went away: nothing was sent, the call is
 * released); -EINVAL (@closure_data is NULL or not this library's: nothing happened; or @status
 * is not a failure status: the call is released with VBUS_STATUS_INTERNAL).
 */
VBUS_EXPORT int vbus_protobuf_fail(void *closure_data, int status, const char *message);

/* ---------------------------------------------------------------------------------------------
 * Calling
 */

/**
 * vbus_protobuf_client_new() - a ProtobufCService whose methods are calls over the bus.
 * @conn: borrowed; must outlive the client (free the client first).
 * @desc: borrowed, must outlive the client (generated descriptors are static): the service to
 *        call, addressed by its full name.
 * @timeout_usec: the deadline of each call, from its start; 0 or VBUS_TIMEOUT_FOREVER for none.
 * @ret_service: written on success: pass it to the generated stubs; free it with
 *               vbus_protobuf_client_free() (or protobuf_c_service_destroy()).
 *
 * A stub call service->invoke(service, index, input, closure, closure_data) packs @input
 * (borrowed for the call) and starts the call "<service>/<method>" with vbus_call_start(). The
 * closure runs exactly once:
 *   - from vbus_conn_process(), with the decoded reply (borrowed: freed when the closure
 *     returns; copy what you keep), or with NULL if the call failed;
 *   - or at once, before invoke returns, with NULL, if the call could not be started: the link is
 *     down or still connecting (VBUS_STATUS_UNAVAILABLE; wait with vbus_conn_wait_ready()
 *     first), @input is not the method's input type or the index is out of range
 *     (VBUS_STATUS_INVALID_ARGUMENT), the packed input exceeds VBUS_MESSAGE_MAX
 *     (VBUS_STATUS_INVALID_ARGUMENT), or out of memory (VBUS_STATUS_RESOURCE_EXHAUSTED);
 *   - or from vbus_protobuf_client_free() with NULL (VBUS_STATUS_CANCELLED).
 * Inside the closure, vbus_protobuf_client_get_status() gives that call's outcome. A reply that
 * does not decode as the method's output type (or needs more than VBUS_PROTOBUF_DECODE_MAX)
 * gives NULL with VBUS_STATUS_INTERNAL. Several calls may be in flight at once.
 *
 * Return: 0; -EINVAL (a NULL argument or a descriptor without the protobuf-c service magic);
 * -ENOMEM.
 */
VBUS_EXPORT int vbus_protobuf_client_new(vbus_conn *conn, const ProtobufCServiceDescriptor *desc,
                                         uint64_t timeout_usec, ProtobufCService **ret_service);

/**
 * vbus_protobuf_client_free() - cancel the client's calls in flight (each closure runs with NULL
 * and the status VBUS_STATUS_CANCELLED; each server is told, as by vbus_call_cancel()) and free
 * the client. May be called from inside one of its closures or any other callback of the
 * connection: there the calls in flight are abandoned rather than cancelled (their closures
 * still run now with NULL, but the servers are not told, and the library releases each call
 * when its outcome arrives; a connection freed before that leaks a few dozen bytes per call).
 * Accepts NULL, and ignores services not made by vbus_protobuf_client_new(). Return: NULL.
 */
VBUS_EXPORT ProtobufCService *vbus_protobuf_client_free(ProtobufCService *service);

/**
 * vbus_protobuf_client_get_status() - the outcome of the client's last finished call.
 * @service: borrowed: a client from vbus_protobuf_client_new().
 * @ret_message: optional: written with a borrowed message ("" if none), valid until the next
 *               call finishes or the client is freed.
 *
 * Inside a closure this is that call's outcome (the status is set just before the closure runs).
 *
 * Return: a vbus_status (VBUS_STATUS_OK after a success, VBUS_STATUS_UNSPECIFIED before any
 * call finished); -EINVAL if @service is NULL or not a client made by this library.
 */
VBUS_EXPORT int vbus_protobuf_client_get_status(ProtobufCService *service,
                                                const char **ret_message);

/**
 * vbus_protobuf_call() - call one method and wait for its outcome (blocking helper: runs
 * vbus_conn_process(), so other callbacks of @conn may run meanwhile).
 * @conn: borrowed. Waits for the connection to be ready within the same timeout.
 * @desc: borrowed: the service.
 * @method: borrowed: the method's name as in the .proto (for example "Get").
 * @input: borrowed: a message of the method's input type.
 * @timeout_usec: the call's deadline; 0 or VBUS_TIMEOUT_FOREVER for none.
 * @ret_output: optional; written on 0: the decoded reply if the status is VBUS_STATUS_OK, else
 *              NULL; free with protobuf_c_message_free_unpacked(output, NULL).
 * @ret_reply: optional; written on 0: the outcome (vbus_reply_get_status() and
 *             vbus_reply_get_message()), to free with vbus_reply_free().
 *
 * Return: 0 when the call has an outcome (check the status); -EINVAL (a NULL @conn, @desc,
 * @method or @input, a bad descriptor, or @input not of the method's input type); -ENOENT
 * (@desc has no method @method); -EMSGSIZE (the packed input exceeds VBUS_MESSAGE_MAX);
 * -EBADMSG (the status is OK but the reply does not decode as the output type within
 * VBUS_PROTOBUF_DECODE_MAX: nothing is written); -ENOTCONN; -ETIMEDOUT (the connection never
 * became ready); at once, the error of a first attempt to connect that waiting cannot mend
 * (-ENOENT, -ECONNREFUSED, ...: see vbus_conn_wait_ready()); -ENOMEM.
 */
VBUS_EXPORT int vbus_protobuf_call(vbus_conn *conn, const ProtobufCServiceDescriptor *desc,
                                   const char *method, const ProtobufCMessage *input,
                                   uint64_t timeout_usec, ProtobufCMessage **ret_output,
                                   vbus_reply **ret_reply);

/**
 * vbus_protobuf_decode() - decode a message as this library does, within
 * VBUS_PROTOBUF_DECODE_MAX bytes of allocations.
 * @desc: borrowed: the message type.
 * @data: borrowed, @size bytes (untrusted input is fine).
 * @ret_msg: written on success; free with protobuf_c_message_free_unpacked(msg, NULL).
 *
 * Return: 0; -EINVAL (a NULL @desc or @ret_msg, or NULL @data with a non-zero @size); -EMSGSIZE
 * (@size > VBUS_MESSAGE_MAX); -EBADMSG (malformed, or it would need more than
 * VBUS_PROTOBUF_DECODE_MAX bytes).
 */
VBUS_EXPORT int vbus_protobuf_decode(const ProtobufCMessageDescriptor *desc, const void *data,
                                     size_t size, ProtobufCMessage **ret_msg);

/* ---------------------------------------------------------------------------------------------
 * Streaming methods
 *
 * protoc-c accepts `stream` in a .proto but generates the same one-request, one-reply handler
 * and stub for such a method as for a unary one, so streaming methods do not go through the
 * ProtobufCService: name them on the server with vbus_server_stream_method() (on the server
 * vbus_protobuf_serve() returned: the service's other methods are still served by it), open
 * them with vbus_stream_open(), send with vbus_protobuf_stream_send() and decode what arrives
 * in on_message with vbus_protobuf_decode() and the generated message descriptor.
 */

/**
 * vbus_protobuf_stream_send() - pack @msg and send it on @st (vbus_stream_send()).
 * Return: as vbus_stream_send(); -EINVAL also for a @msg without a valid descriptor.
 */
VBUS_EXPORT int vbus_protobuf_stream_send(vbus_stream *st, const ProtobufCMessage *msg);

#ifdef __cplusplus
}
#endif

#endif /* VBUS_VBUS_PROTOBUF_H */
