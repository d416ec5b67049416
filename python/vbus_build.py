"""Generates the C source of vbus._vbus_cffi, the cffi binding of libvbus (API mode).

Usage: python3 vbus_build.py OUTPUT.c

The declarations below are the part of <vbus/vbus.h> the Python package uses. In API mode the
generated C file includes the real header and is compiled against it (CMake builds it against
the tree's include/ and links the tree's libvbus), so a declaration here that disagrees with
the header (a type, an argument, an enum value) fails the build instead of misbehaving at run
time. Callbacks from C are `extern "Python"` functions (static C stubs, no libffi closures):
the Python side (vbus/_core.py) defines them with @ffi.def_extern() and never lets an
exception cross back into C.
"""

import sys

import cffi

CDEF = r"""
typedef enum vbus_status {
        VBUS_STATUS_UNSPECIFIED = 0,
        VBUS_STATUS_OK = 1,
        VBUS_STATUS_CANCELLED = 2,
        VBUS_STATUS_INVALID_ARGUMENT = 3,
        VBUS_STATUS_DEADLINE_EXCEEDED = 4,
        VBUS_STATUS_NOT_FOUND = 5,
        VBUS_STATUS_PERMISSION_DENIED = 6,
        VBUS_STATUS_RESOURCE_EXHAUSTED = 7,
        VBUS_STATUS_UNAVAILABLE = 8,
        VBUS_STATUS_INTERNAL = 9,
        VBUS_STATUS_APPLICATION = 10,
        VBUS_STATUS_PROTOCOL_ERROR = 11,
        VBUS_STATUS_UNSUPPORTED = 12,
        VBUS_STATUS_SHUTTING_DOWN = 13,
        VBUS_STATUS_N = 14,
} vbus_status;

#define VBUS_PROTOCOL_VERSION ...
#define VBUS_MESSAGE_MAX ...
#define VBUS_CALL_HEADERS_MAX ...
#define VBUS_CALL_HEADER_KEY_MAX ...
#define VBUS_CALL_HEADER_VALUE_MAX ...
#define VBUS_STREAM_WINDOW ...

const char *vbus_version(void);
const char *vbus_status_name(int status);

typedef struct vbus_conn vbus_conn;
typedef struct vbus_publisher vbus_publisher;
typedef struct vbus_subscription vbus_subscription;
typedef struct vbus_message vbus_message;

typedef enum vbus_conn_state {
        VBUS_CONN_CONNECTING = 1,
        VBUS_CONN_READY = 2,
        VBUS_CONN_DISCONNECTED = 3,
} vbus_conn_state;

int vbus_conn_open(const char *url, vbus_conn **ret_conn);
vbus_conn *vbus_conn_free(vbus_conn *conn);
int vbus_conn_get_fd(vbus_conn *conn);
int vbus_conn_get_events(vbus_conn *conn);
int vbus_conn_get_timeout(vbus_conn *conn, uint64_t *ret_usec);
int vbus_conn_process(vbus_conn *conn);
int vbus_conn_wait(vbus_conn *conn, uint64_t timeout_usec);
int vbus_conn_wait_ready(vbus_conn *conn, uint64_t timeout_usec);
int vbus_conn_flush(vbus_conn *conn, uint64_t timeout_usec);
int vbus_conn_get_state(vbus_conn *conn);
int vbus_conn_get_last_error(vbus_conn *conn);
uint64_t vbus_conn_get_reconnects(vbus_conn *conn);

int vbus_publisher_open(vbus_conn *conn, const char *topic, vbus_publisher **ret_pub);
vbus_publisher *vbus_publisher_free(vbus_publisher *pub);
int vbus_publish(vbus_publisher *pub, const void *data, size_t len);
int vbus_publisher_get_status(vbus_publisher *pub, const char **ret_message);

typedef enum vbus_slow_policy {
        VBUS_SLOW_DROP = 1,
        VBUS_SLOW_BLOCK = 2,
} vbus_slow_policy;

typedef void (*vbus_message_cb)(vbus_subscription *sub, const vbus_message *msg, void *userdata);
int vbus_subscribe(vbus_conn *conn, const char *pattern, vbus_slow_policy policy,
                   vbus_message_cb cb, void *userdata, vbus_subscription **ret_sub);
vbus_subscription *vbus_subscription_free(vbus_subscription *sub);
bool vbus_subscription_is_active(vbus_subscription *sub);
int vbus_subscription_get_status(vbus_subscription *sub, const char **ret_message);

const char *vbus_message_get_topic(const vbus_message *msg);
const void *vbus_message_get_data(const vbus_message *msg, size_t *ret_size);
uint32_t vbus_message_get_sender_domid(const vbus_message *msg);
const char *vbus_message_get_sender_name(const vbus_message *msg);
bool vbus_message_is_sender_local(const vbus_message *msg);
uint32_t vbus_message_get_sender_uid(const vbus_message *msg);
uint32_t vbus_message_get_sender_pid(const vbus_message *msg);
uint64_t vbus_message_get_dropped(const vbus_message *msg);
uint64_t vbus_message_get_sequence(const vbus_message *msg);
bool vbus_message_follows_gap(const vbus_message *msg);

typedef struct vbus_call vbus_call;
typedef struct vbus_reply vbus_reply;
typedef struct vbus_server vbus_server;
typedef struct vbus_request vbus_request;
typedef void (*vbus_call_cb)(vbus_call *call, const vbus_reply *reply, void *userdata);

typedef struct vbus_header {
        const char *key;
        const void *value;
        size_t value_size;
} vbus_header;

typedef struct vbus_call_options {
        uint64_t timeout_usec;
        const vbus_header *headers;
        size_t n_headers;
} vbus_call_options;

int vbus_call_start_opts(vbus_conn *conn, const char *method, const void *request,
                         size_t request_size, const vbus_call_options *opts,
                         vbus_call_cb cb, void *userdata, vbus_call **ret_call);
int vbus_call_cancel(vbus_call *call);
int vbus_call_sync_opts(vbus_conn *conn, const char *method, const void *request,
                        size_t request_size, const vbus_call_options *opts,
                        vbus_reply **ret_reply);
int vbus_reply_get_status(const vbus_reply *reply);
const char *vbus_reply_get_message(const vbus_reply *reply);
const void *vbus_reply_get_data(const vbus_reply *reply, size_t *ret_size);
vbus_reply *vbus_reply_free(vbus_reply *reply);

typedef void (*vbus_request_cb)(vbus_server *srv, vbus_request *req, void *userdata);
int vbus_serve(vbus_conn *conn, const char *service, vbus_request_cb cb, void *userdata,
               vbus_server **ret_server);
vbus_server *vbus_server_free(vbus_server *srv);
int vbus_server_get_status(vbus_server *srv, const char **ret_message);
bool vbus_server_is_active(vbus_server *srv);

const char *vbus_request_get_method(const vbus_request *req);
const char *vbus_request_get_full_method(const vbus_request *req);
const void *vbus_request_get_data(const vbus_request *req, size_t *ret_size);
uint32_t vbus_request_get_caller_domid(const vbus_request *req);
const char *vbus_request_get_caller_name(const vbus_request *req);
bool vbus_request_is_caller_local(const vbus_request *req);
uint32_t vbus_request_get_caller_uid(const vbus_request *req);
uint64_t vbus_request_get_deadline(const vbus_request *req);
bool vbus_request_is_cancelled(const vbus_request *req);
size_t vbus_request_get_n_headers(const vbus_request *req);
int vbus_request_get_header(const vbus_request *req, size_t index, const char **ret_key,
                            const void **ret_value, size_t *ret_size);
int vbus_request_reply(vbus_request *req, const void *data, size_t size);
int vbus_request_fail(vbus_request *req, int status, const char *message);

typedef struct vbus_stream vbus_stream;
typedef struct vbus_stream_handlers {
        void (*on_message)(vbus_stream *st, const void *data, size_t size, void *userdata);
        void (*on_end)(vbus_stream *st, int status, const char *message, void *userdata);
        void (*on_writable)(vbus_stream *st, void *userdata);
} vbus_stream_handlers;

int vbus_stream_open(vbus_conn *conn, const char *method, const vbus_call_options *opts,
                     const vbus_stream_handlers *handlers, void *userdata,
                     vbus_stream **ret_stream);
int vbus_stream_send(vbus_stream *st, const void *data, size_t size);
int vbus_stream_close_send(vbus_stream *st);
int vbus_stream_finish(vbus_stream *st, int status, const char *message);
int vbus_stream_cancel(vbus_stream *st);
int vbus_stream_set_paused(vbus_stream *st, bool paused);
vbus_request *vbus_stream_get_request(vbus_stream *st);
int vbus_server_stream_method(vbus_server *srv, const char *method, vbus_request_cb cb,
                              void *userdata);
int vbus_request_stream(vbus_request *req, const vbus_stream_handlers *handlers,
                        void *userdata, vbus_stream **ret_stream);

/* Callbacks into Python (defined in vbus/_core.py with @ffi.def_extern()). */
extern "Python" void _vbus_on_message(vbus_subscription *, const vbus_message *, void *);
extern "Python" void _vbus_on_reply(vbus_call *, const vbus_reply *, void *);
extern "Python" void _vbus_on_request(vbus_server *, vbus_request *, void *);
extern "Python" void _vbus_on_stream_message(vbus_stream *, const void *, size_t, void *);
extern "Python" void _vbus_on_stream_end(vbus_stream *, int, const char *, void *);
extern "Python" void _vbus_on_stream_writable(vbus_stream *, void *);
"""


def builder() -> cffi.FFI:
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    ffi.set_source("vbus._vbus_cffi", "#include <vbus/vbus.h>\n")
    return ffi


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: vbus_build.py OUTPUT.c")
    builder().emit_c_code(sys.argv[1])
