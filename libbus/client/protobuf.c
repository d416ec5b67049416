/* SPDX-License-Identifier: MIT */
/*
 * protobuf: typed RPC through protobuf-c (<vbus/vbus-protobuf.h>), built only on the public RPC
 * API of <vbus/vbus.h> (vbus_serve(), vbus_call_start()).
 *
 * Server side: one PbRequest per call, created when the call arrives and freed when the
 * implementation answers (its closure or vbus_protobuf_fail()); it owns the decoded input, so an
 * implementation may answer later. The closure_data handed to the implementation is the
 * PbRequest, marked with a magic number so that vbus_protobuf_get_request() and
 * vbus_protobuf_fail() can refuse pointers that are not ours.
 *
 * Client side: a PbClient embeds the ProtobufCService the generated stubs call; each invoke is
 * one PbPending in the client's list until vbus_call_start()'s callback delivers the reply (from
 * vbus_conn_process()) or the client is freed. The status of the call being delivered is stored
 * in the client before its closure runs.
 *
 * Every decode goes through a bounded allocator: the sum of the allocations of one message may
 * not exceed VBUS_PROTOBUF_DECODE_MAX. It allocates with malloc() and never needs to free with
 * anything else, so decoded messages are freed with protobuf_c_message_free_unpacked(m, NULL).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vbus/vbus-protobuf.h>

#include "conn.h"
#include "util/list.h"

enum {
        PB_REQUEST_MAGIC = 0x76627072u, /* "vbpr" */
        /* service (at most 255) + '/' + method (at most 255) + NUL, as vbus_call_start(). */
        PB_FULL_METHOD_MAX = 512,
};

/* --- bounded decoding --------------------------------------------------------------------- */

typedef struct PbBudget {
        ProtobufCAllocator allocator;
        size_t used, limit;
        bool over;      /* an allocation was refused: over the limit */
        bool no_memory; /* malloc() failed */
} PbBudget;

static void *budget_alloc(void *data, size_t size)
{
        PbBudget *b = data;
        void *p;

        /* Freed memory is not given back to the budget: it bounds all a decode allocates. */
        if (size > b->limit - b->used) {
                b->over = true;
                return NULL;
        }
        p = malloc(size ? size : 1);
        if (!p) {
                b->no_memory = true;
                return NULL;
        }
        b->used += size;
        return p;
}

static void budget_free(void *data, void *p)
{
        (void)data;
        free(p);
}

/* Used by vbus_protobuf_decode() with VBUS_PROTOBUF_DECODE_MAX, and by the unit test with small
 * limits. Return: 0, -EINVAL, -EMSGSIZE, -EBADMSG (malformed or over @limit), -ENOMEM. */
int vbus__protobuf_decode_limited(const ProtobufCMessageDescriptor *desc, const void *data,
                                  size_t size, size_t limit, ProtobufCMessage **ret_msg);

int vbus__protobuf_decode_limited(const ProtobufCMessageDescriptor *desc, const void *data,
                                  size_t size, size_t limit, ProtobufCMessage **ret_msg)
{
        PbBudget b = {
                .allocator = {.alloc = budget_alloc, .free = budget_free},
                .limit = limit,
        };
        ProtobufCMessage *m;

        if (!desc || desc->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC || !ret_msg ||
            (size > 0 && !data))
                return -EINVAL;
        if (size > (size_t)VBUS_MESSAGE_MAX)
                return -EMSGSIZE;
        b.allocator.allocator_data = &b;
        /* protobuf-c reads no byte of @data when @size is 0; give it a valid pointer anyway. */
        m = protobuf_c_message_unpack(desc, &b.allocator, size, size ? data : (const void *)"");
        if (!m)
                return b.no_memory && !b.over ? -ENOMEM : -EBADMSG;
        *ret_msg = m;
        return 0;
}

VBUS_EXPORT int vbus_protobuf_decode(const ProtobufCMessageDescriptor *desc, const void *data,
                                     size_t size, ProtobufCMessage **ret_msg)
{
        return vbus__protobuf_decode_limited(desc, data, size, VBUS_PROTOBUF_DECODE_MAX, ret_msg);
}

/* Packs @msg into a new buffer. Return: 0, -EMSGSIZE (over VBUS_MESSAGE_MAX), -ENOMEM. */
static int pb_encode(const ProtobufCMessage *msg, uint8_t **ret_buf, size_t *ret_size)
{
        size_t n = protobuf_c_message_get_packed_size(msg);
        uint8_t *buf;

        if (n > (size_t)VBUS_MESSAGE_MAX)
                return -EMSGSIZE;
        buf = malloc(n ? n : 1);
        if (!buf)
                return -ENOMEM;
        if (protobuf_c_message_pack(msg, buf) != n) {
                free(buf);
                return -EMSGSIZE; /* cannot happen for a consistent message */
        }
        *ret_buf = buf;
        *ret_size = n;
        return 0;
}

static bool service_descriptor_is_valid(const ProtobufCServiceDescriptor *desc)
{
        return desc && desc->magic == PROTOBUF_C__SERVICE_DESCRIPTOR_MAGIC && desc->name &&
               (desc->n_methods == 0 || (desc->methods && desc->method_indices_by_name));
}

/* The method of @desc named @method. Return: its index, or -ENOENT. */
static int method_find(const ProtobufCServiceDescriptor *desc, const char *method)
{
        const ProtobufCMethodDescriptor *m =
                protobuf_c_service_descriptor_get_method_by_name(desc, method);

        if (!m)
                return -ENOENT;
        return (int)(m - desc->methods);
}

/* Looks @method up in @desc and decodes @data as its input; what the server does with each call
 * before invoking the implementation. Used by the unit test.
 * Return: VBUS_STATUS_OK with *@ret_index and *@ret_input written, else the failure status to
 * answer with and *@ret_message written with a static message. */
int vbus__protobuf_decode_request(const ProtobufCServiceDescriptor *desc, const char *method,
                                  const void *data, size_t size, unsigned *ret_index,
                                  ProtobufCMessage **ret_input, const char **ret_message);

int vbus__protobuf_decode_request(const ProtobufCServiceDescriptor *desc, const char *method,
                                  const void *data, size_t size, unsigned *ret_index,
                                  ProtobufCMessage **ret_input, const char **ret_message)
{
        ProtobufCMessage *input;
        int index, r;

        index = method ? method_find(desc, method) : -ENOENT;
        if (index < 0) {
                *ret_message = "the service has no such method";
                return VBUS_STATUS_NOT_FOUND;
        }
        r = vbus_protobuf_decode(desc->methods[index].input, data, size, &input);
        if (r == -ENOMEM) {
                *ret_message = "the server ran out of memory decoding the request";
                return VBUS_STATUS_RESOURCE_EXHAUSTED;
        }
        if (r < 0) {
                *ret_message = "the request is not a valid message of the method's input type";
                return VBUS_STATUS_INVALID_ARGUMENT;
        }
        *ret_index = (unsigned)index;
        *ret_input = input;
        return VBUS_STATUS_OK;
}

/* --- serving ------------------------------------------------------------------------------ */

typedef struct PbRequest {
        uint32_t magic; /* first: read by pb_request_from() */
        vbus_request *req;
        const ProtobufCMethodDescriptor *method;
        ProtobufCMessage *input;
} PbRequest;

static PbRequest *pb_request_from(void *closure_data)
{
        PbRequest *pr = closure_data;

        if (!pr || pr->magic != PB_REQUEST_MAGIC)
                return NULL;
        return pr;
}

static void pb_request_free(PbRequest *pr)
{
        if (pr->input)
                protobuf_c_message_free_unpacked(pr->input, NULL);
        pr->magic = 0; /* a second answer with this pointer is refused while the memory lasts */
        free(pr);
}

static void pb_closure(const ProtobufCMessage *output, void *closure_data)
{
        PbRequest *pr = pb_request_from(closure_data);
        uint8_t *buf = NULL;
        size_t n = 0;
        int r;

        if (!pr)
                return;
        if (!output) {
                (void)vbus_request_fail(pr->req, VBUS_STATUS_APPLICATION, "the service failed");
        } else if (output->descriptor != pr->method->output) {
                (void)vbus_request_fail(pr->req, VBUS_STATUS_INTERNAL,
                                        "the service answered a message of the wrong type");
        } else if ((r = pb_encode(output, &buf, &n)) < 0) {
                (void)vbus_request_fail(pr->req, VBUS_STATUS_INTERNAL,
                                        r == -EMSGSIZE ? "the reply is larger than VBUS_MESSAGE_MAX"
                                                       : "the server ran out of memory");
        } else {
                (void)vbus_request_reply(pr->req, buf, n);
                free(buf);
        }
        pb_request_free(pr);
}

/* A generated service's invoke (protobuf_c_service_invoke_internal) calls the handler table that
 * follows the base struct without checking for NULL; look first. */
static bool handler_is_missing(ProtobufCService *service, unsigned index)
{
        typedef void (*Handler)(void);
        Handler handler;

        if (service->invoke != protobuf_c_service_invoke_internal)
                return false;
        memcpy(&handler, (const uint8_t *)(service + 1) + index * sizeof(Handler), sizeof(handler));
        return handler == NULL;
}

static void pb_on_request(vbus_server *srv, vbus_request *req, void *userdata)
{
        ProtobufCService *service = userdata;
        const char *message = NULL;
        ProtobufCMessage *input = NULL;
        unsigned index = 0;
        const void *data;
        PbRequest *pr;
        size_t n;
        int status;

        (void)srv;
        data = vbus_request_get_data(req, &n);
        status = vbus__protobuf_decode_request(service->descriptor, vbus_request_get_method(req),
                                               data, n, &index, &input, &message);
        if (status != VBUS_STATUS_OK) {
                (void)vbus_request_fail(req, status, message);
                return;
        }
        if (handler_is_missing(service, index)) {
                protobuf_c_message_free_unpacked(input, NULL);
                (void)vbus_request_fail(req, VBUS_STATUS_UNSUPPORTED,
                                        "the service does not implement this method");
                return;
        }
        pr = calloc(1, sizeof(*pr));
        if (!pr) {
                protobuf_c_message_free_unpacked(input, NULL);
                (void)vbus_request_fail(req, VBUS_STATUS_RESOURCE_EXHAUSTED,
                                        "the server ran out of memory");
                return;
        }
        pr->magic = PB_REQUEST_MAGIC;
        pr->req = req;
        pr->method = &service->descriptor->methods[index];
        pr->input = input;
        /* The implementation may answer inside this call (and free @pr) or later. */
        service->invoke(service, index, input, pb_closure, pr);
}

VBUS_EXPORT int vbus_protobuf_serve(vbus_conn *conn, ProtobufCService *service,
                                    vbus_server **ret_server)
{
        if (!conn || !service || !service->invoke || !ret_server ||
            !service_descriptor_is_valid(service->descriptor))
                return -EINVAL;
        return vbus_serve(conn, service->descriptor->name, pb_on_request, service, ret_server);
}

VBUS_EXPORT const vbus_request *vbus_protobuf_get_request(void *closure_data)
{
        PbRequest *pr = pb_request_from(closure_data);

        return pr ? pr->req : NULL;
}

VBUS_EXPORT int vbus_protobuf_fail(void *closure_data, int status, const char *message)
{
        PbRequest *pr = pb_request_from(closure_data);
        int r;

        if (!pr)
                return -EINVAL;
        r = vbus_request_fail(pr->req, status, message);
        pb_request_free(pr);
        return r;
}

/* --- calling ------------------------------------------------------------------------------ */

typedef struct PbClient {
        ProtobufCService base; /* first: the generated stubs see only this */
        vbus_conn *conn;
        uint64_t timeout_usec;
        List pending; /* PbPending */
        int last_status;
        char *last_message;
        bool destroying; /* inside pb_client_destroy() */
} PbClient;

typedef struct PbPending {
        List link; /* in client->pending */
        PbClient *client;
        const ProtobufCMethodDescriptor *method;
        ProtobufCClosure closure;
        void *closure_data;
        vbus_call *call;
} PbPending;

static void client_set_status(PbClient *cl, int status, const char *message)
{
        free(cl->last_message);
        cl->last_status = status;
        /* Without memory for the message the status alone is still right. */
        cl->last_message = strdup(message ? message : "");
}

/* "service/method" into @buf. Return: 0 or -ENAMETOOLONG. */
static int full_method_name(char *buf, size_t size, const ProtobufCServiceDescriptor *desc,
                            const ProtobufCMethodDescriptor *m)
{
        int len = snprintf(buf, size, "%s/%s", desc->name, m->name);

        return len < 0 || (size_t)len >= size ? -ENAMETOOLONG : 0;
}

static void pb_call_done(vbus_call *call, const vbus_reply *reply, void *userdata)
{
        PbPending *p = userdata;
        PbClient *cl = p->client;
        ProtobufCClosure closure = p->closure;
        void *closure_data = p->closure_data;
        ProtobufCMessage *output = NULL;
        int status = vbus_reply_get_status(reply);

        (void)call;
        if (!cl) {
                /* Abandoned by pb_client_destroy(): its closure already ran. */
                free(p);
                return;
        }
        list_unlink(&p->link);
        if (status == VBUS_STATUS_OK) {
                size_t n;
                const void *data = vbus_reply_get_data(reply, &n);
                int r = vbus_protobuf_decode(p->method->output, data, n, &output);

                if (r < 0)
                        client_set_status(cl, VBUS_STATUS_INTERNAL,
                                          r == -ENOMEM ? "out of memory decoding the reply"
                                                       : "the reply is not a valid message of "
                                                         "the method's output type");
                else
                        client_set_status(cl, VBUS_STATUS_OK, NULL);
        } else {
                client_set_status(cl, status, vbus_reply_get_message(reply));
        }
        free(p);
        /* The closure may free the client: nothing of it is touched after. */
        closure(output, closure_data);
        if (output)
                protobuf_c_message_free_unpacked(output, NULL);
}

/* Starts the call for pb_client_invoke(). Return: VBUS_STATUS_OK (the call is pending), or the
 * status to fail the invoke with and *@ret_message. */
static int pb_client_start(PbClient *cl, unsigned index, const ProtobufCMessage *input,
                           ProtobufCClosure closure, void *closure_data, const char **ret_message)
{
        const ProtobufCServiceDescriptor *desc = cl->base.descriptor;
        char name[PB_FULL_METHOD_MAX];
        const ProtobufCMethodDescriptor *m;
        uint8_t *buf = NULL;
        PbPending *p;
        size_t n = 0;
        int r;

        *ret_message = "out of memory";
        if (index >= desc->n_methods || !input || input->descriptor != desc->methods[index].input) {
                *ret_message = "the input is not a message of the method's input type";
                return VBUS_STATUS_INVALID_ARGUMENT;
        }
        m = &desc->methods[index];
        if (full_method_name(name, sizeof(name), desc, m) < 0) {
                *ret_message = "the method's name is too long";
                return VBUS_STATUS_INVALID_ARGUMENT;
        }
        r = pb_encode(input, &buf, &n);
        if (r == -EMSGSIZE) {
                *ret_message = "the request is larger than VBUS_MESSAGE_MAX";
                return VBUS_STATUS_INVALID_ARGUMENT;
        }
        if (r < 0)
                return VBUS_STATUS_RESOURCE_EXHAUSTED;
        p = calloc(1, sizeof(*p));
        if (!p) {
                free(buf);
                return VBUS_STATUS_RESOURCE_EXHAUSTED;
        }
        p->client = cl;
        p->method = m;
        p->closure = closure;
        p->closure_data = closure_data;
        r = vbus_call_start(cl->conn, name, buf, n, cl->timeout_usec, pb_call_done, p, &p->call);
        free(buf);
        if (r < 0) {
                free(p);
                switch (r) {
                case -ENOTCONN:
                        *ret_message = "not connected to the broker";
                        return VBUS_STATUS_UNAVAILABLE;
                case -EAGAIN:
                        *ret_message = "the connection to the broker is not ready yet";
                        return VBUS_STATUS_UNAVAILABLE;
                case -ENOMEM:
                        return VBUS_STATUS_RESOURCE_EXHAUSTED;
                default:
                        *ret_message = "the bus refused the call's name or size";
                        return VBUS_STATUS_INVALID_ARGUMENT;
                }
        }
        list_init(&p->link);
        list_add_tail(&cl->pending, &p->link);
        return VBUS_STATUS_OK;
}

static void pb_client_invoke(ProtobufCService *service, unsigned index,
                             const ProtobufCMessage *input, ProtobufCClosure closure,
                             void *closure_data)
{
        PbClient *cl = (PbClient *)service;
        const char *message = NULL;
        int status;

        if (!closure)
                return; /* nobody to tell: protobuf-c's stubs always pass one */
        if (cl->destroying) {
                status = VBUS_STATUS_CANCELLED;
                message = "the client is being freed";
        } else {
                status = pb_client_start(cl, index, input, closure, closure_data, &message);
        }
        if (status != VBUS_STATUS_OK) {
                /* Failed before it started: the closure runs at once. */
                client_set_status(cl, status, message);
                closure(NULL, closure_data);
        }
}

static void pb_client_destroy(ProtobufCService *service)
{
        PbClient *cl = (PbClient *)service;

        if (cl->destroying)
                return; /* called again from one of the closures run below */
        cl->destroying = true;
        /* One at a time from the head: a closure may not start new calls (they fail at once).
         * Inside vbus_conn_process() (a callback of this connection) a call may not be
         * cancelled: the library's loop over the calls may hold the next one. Such calls are
         * abandoned instead: pb_call_done() frees them when their outcome arrives. */
        while (!list_is_empty(&cl->pending)) {
                PbPending *p = list_entry(cl->pending.next, PbPending, link);
                /* The analyzer does not see that list_unlink() below takes @p off the list
                 * before it is freed. */
                ProtobufCClosure closure = p->closure; /* NOLINT(clang-analyzer-unix.Malloc) */
                void *closure_data = p->closure_data;

                list_unlink(&p->link);
                if (cl->conn->in_process) {
                        p->client = NULL;
                } else {
                        (void)vbus_call_cancel(p->call);
                        free(p);
                }
                client_set_status(cl, VBUS_STATUS_CANCELLED, "the client was freed");
                closure(NULL, closure_data);
        }
        free(cl->last_message);
        free(cl);
}

VBUS_EXPORT int vbus_protobuf_client_new(vbus_conn *conn, const ProtobufCServiceDescriptor *desc,
                                         uint64_t timeout_usec, ProtobufCService **ret_service)
{
        PbClient *cl;

        if (!conn || !service_descriptor_is_valid(desc) || !ret_service)
                return -EINVAL;
        cl = calloc(1, sizeof(*cl));
        if (!cl)
                return -ENOMEM;
        cl->base.descriptor = desc;
        cl->base.invoke = pb_client_invoke;
        cl->base.destroy = pb_client_destroy;
        cl->conn = conn;
        cl->timeout_usec = timeout_usec;
        cl->last_status = VBUS_STATUS_UNSPECIFIED;
        list_init(&cl->pending);
        *ret_service = &cl->base;
        return 0;
}

static PbClient *client_from(ProtobufCService *service)
{
        return service && service->invoke == pb_client_invoke ? (PbClient *)service : NULL;
}

VBUS_EXPORT ProtobufCService *vbus_protobuf_client_free(ProtobufCService *service)
{
        PbClient *cl = client_from(service);

        if (cl)
                pb_client_destroy(&cl->base);
        return NULL;
}

VBUS_EXPORT int vbus_protobuf_client_get_status(ProtobufCService *service, const char **ret_message)
{
        PbClient *cl = client_from(service);

        if (!cl)
                return -EINVAL;
        if (ret_message)
                *ret_message = cl->last_message ? cl->last_message : "";
        return cl->last_status;
}

VBUS_EXPORT int vbus_protobuf_call(vbus_conn *conn, const ProtobufCServiceDescriptor *desc,
                                   const char *method, const ProtobufCMessage *input,
                                   uint64_t timeout_usec, ProtobufCMessage **ret_output,
                                   vbus_reply **ret_reply)
{
        char name[PB_FULL_METHOD_MAX];
        ProtobufCMessage *output = NULL;
        vbus_reply *reply = NULL;
        uint8_t *buf = NULL;
        size_t n = 0;
        int index, r;

        if (!conn || !service_descriptor_is_valid(desc) || !method || !input)
                return -EINVAL;
        index = method_find(desc, method);
        if (index < 0)
                return -ENOENT;
        if (input->descriptor != desc->methods[index].input)
                return -EINVAL;
        if (full_method_name(name, sizeof(name), desc, &desc->methods[index]) < 0)
                return -EINVAL;
        r = pb_encode(input, &buf, &n);
        if (r < 0)
                return r;
        r = vbus_call_sync(conn, name, buf, n, timeout_usec, &reply);
        free(buf);
        if (r < 0)
                return r;
        if (vbus_reply_get_status(reply) == VBUS_STATUS_OK) {
                const void *data = vbus_reply_get_data(reply, &n);

                r = vbus_protobuf_decode(desc->methods[index].output, data, n, &output);
                if (r < 0) {
                        vbus_reply_free(reply);
                        return r == -ENOMEM ? r : -EBADMSG;
                }
        }
        if (ret_output)
                *ret_output = output;
        else if (output)
                protobuf_c_message_free_unpacked(output, NULL);
        if (ret_reply)
                *ret_reply = reply;
        else
                vbus_reply_free(reply);
        return 0;
}

VBUS_EXPORT int vbus_protobuf_stream_send(vbus_stream *st, const ProtobufCMessage *msg)
{
        uint8_t *buf;
        size_t n;
        int r;

        if (!st || !msg || msg->descriptor->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
                return -EINVAL;
        r = pb_encode(msg, &buf, &n);
        if (r < 0)
                return r;
        r = vbus_stream_send(st, buf, n);
        free(buf);
        return r;
}
