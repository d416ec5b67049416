/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for libbus/protobuf.c (<vbus/vbus-protobuf.h>) where no broker is needed: bounded
 * decoding (valid, empty, malformed, over the allocation budget), what the server does with a
 * call before invoking the implementation (method lookup, malformed request ->
 * INVALID_ARGUMENT), the argument checks of every public function, and a client whose calls
 * cannot start (the closure runs at once with NULL and the status says why). The messages are
 * the library's own control messages (vbus/v1/link.proto) and the service descriptor is written
 * by hand, as protoc-c would generate it. Calls over a broker are tested by
 * tests/integration/rpc-typed.sh.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <vbus/vbus-protobuf.h>

#include "vbus/v1/link.pb-c.h"

/* Internal to libbus/protobuf.c, not in any header: the bounded decoder with its limit as a
 * parameter, and the server's lookup-and-decode step. */
int vbus__protobuf_decode_limited(const ProtobufCMessageDescriptor *desc, const void *data,
                                  size_t size, size_t limit, ProtobufCMessage **ret_msg);
int vbus__protobuf_decode_request(const ProtobufCServiceDescriptor *desc, const char *method,
                                  const void *data, size_t size, unsigned *ret_index,
                                  ProtobufCMessage **ret_input, const char **ret_message);

/* test.v1.Svc: Zeta(Open) returns (End) is method 0, Alpha(End) returns (Open) method 1. */
static const ProtobufCMethodDescriptor svc_methods[] = {
        {"Zeta", &vbus__v1__open__descriptor, &vbus__v1__end__descriptor},
        {"Alpha", &vbus__v1__end__descriptor, &vbus__v1__open__descriptor},
};
static const unsigned svc_by_name[] = {1, 0};
static const ProtobufCServiceDescriptor svc_desc = {
        PROTOBUF_C__SERVICE_DESCRIPTOR_MAGIC,
        "test.v1.Svc",
        "Svc",
        "Test__V1__Svc",
        "test.v1",
        2,
        svc_methods,
        svc_by_name,
};

/* An Open with @n_headers empty headers, packed into a new buffer. */
static uint8_t *pack_open(const char *name, size_t n_headers, size_t *ret_size)
{
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;
        Vbus__V1__Header h = VBUS__V1__HEADER__INIT;
        Vbus__V1__Header **hs = calloc(n_headers ? n_headers : 1, sizeof(Vbus__V1__Header *));
        uint8_t *buf;

        assert_non_null(hs);
        for (size_t i = 0; i < n_headers; i++)
                hs[i] = &h;
        o.name = (char *)name;
        o.timeout_us = 1234;
        o.n_headers = n_headers;
        o.headers = hs;
        *ret_size = protobuf_c_message_get_packed_size(&o.base);
        buf = malloc(*ret_size ? *ret_size : 1);
        assert_non_null(buf);
        assert_int_equal(protobuf_c_message_pack(&o.base, buf), *ret_size);
        free(hs);
        return buf;
}

/* --- decoding ----------------------------------------------------------------------------- */

static void test_decode_valid(void **state)
{
        ProtobufCMessage *m = NULL;
        Vbus__V1__Open *o;
        size_t n;
        uint8_t *buf = pack_open("storage.v1.Store/Get", 3, &n);

        (void)state;
        assert_int_equal(vbus_protobuf_decode(&vbus__v1__open__descriptor, buf, n, &m), 0);
        o = (Vbus__V1__Open *)m;
        assert_ptr_equal(m->descriptor, &vbus__v1__open__descriptor);
        assert_string_equal(o->name, "storage.v1.Store/Get");
        assert_int_equal(o->timeout_us, 1234);
        assert_int_equal(o->n_headers, 3);
        /* Allocated with malloc(): the default allocator frees it. */
        protobuf_c_message_free_unpacked(m, NULL);
        free(buf);
}

static void test_decode_empty_is_defaults(void **state)
{
        ProtobufCMessage *m = NULL;

        (void)state;
        assert_int_equal(vbus_protobuf_decode(&vbus__v1__open__descriptor, NULL, 0, &m), 0);
        assert_string_equal(((Vbus__V1__Open *)m)->name, "");
        assert_int_equal(((Vbus__V1__Open *)m)->n_headers, 0);
        protobuf_c_message_free_unpacked(m, NULL);
}

static void test_decode_malformed(void **state)
{
        /* A length-delimited field that claims 127 bytes and has none; a truncated varint; wire
         * type 7 (does not exist); a field number of 0. */
        static const uint8_t *const inputs[] = {
                (const uint8_t *)"\x0a\x7f",
                (const uint8_t *)"\x28\xff",
                (const uint8_t *)"\x0f",
                (const uint8_t *)"\x00\x01",
        };
        static const size_t sizes[] = {2, 2, 1, 2};
        ProtobufCMessage *m = (ProtobufCMessage *)&m;

        (void)state;
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                assert_int_equal(
                        vbus_protobuf_decode(&vbus__v1__open__descriptor, inputs[i], sizes[i], &m),
                        -EBADMSG);
                /* Written only on success. */
                assert_ptr_equal(m, (ProtobufCMessage *)&m);
        }
}

static void test_decode_bad_arguments(void **state)
{
        ProtobufCMessageDescriptor bad = vbus__v1__open__descriptor;
        ProtobufCMessage *m = NULL;
        uint8_t byte = 0;

        (void)state;
        bad.magic = 0;
        assert_int_equal(vbus_protobuf_decode(NULL, &byte, 1, &m), -EINVAL);
        assert_int_equal(vbus_protobuf_decode(&bad, &byte, 0, &m), -EINVAL);
        assert_int_equal(vbus_protobuf_decode(&vbus__v1__open__descriptor, &byte, 0, NULL),
                         -EINVAL);
        assert_int_equal(vbus_protobuf_decode(&vbus__v1__open__descriptor, NULL, 1, &m), -EINVAL);
        /* The size is checked before the data is read. */
        assert_int_equal(
                vbus_protobuf_decode(&vbus__v1__open__descriptor, &byte, VBUS_MESSAGE_MAX + 1, &m),
                -EMSGSIZE);
        assert_null(m);
}

/* A message of the largest wire size made of empty sub-messages (2 bytes each on the wire, a
 * struct and a pointer each once decoded) needs more than VBUS_PROTOBUF_DECODE_MAX. */
static void test_decode_over_budget(void **state)
{
        size_t n_headers = ((size_t)VBUS_MESSAGE_MAX - 64) / 2, n;
        ProtobufCMessage *m = NULL;
        uint8_t *buf = pack_open("x", n_headers, &n);

        (void)state;
        assert_true(n <= (size_t)VBUS_MESSAGE_MAX);
        assert_true(n_headers * (sizeof(Vbus__V1__Header) + sizeof(void *)) >
                    VBUS_PROTOBUF_DECODE_MAX);
        assert_int_equal(vbus_protobuf_decode(&vbus__v1__open__descriptor, buf, n, &m), -EBADMSG);
        assert_null(m);
        free(buf);
}

static void test_decode_limited(void **state)
{
        size_t n_headers = 1000, n;
        size_t need = n_headers * sizeof(Vbus__V1__Header);
        ProtobufCMessage *m = NULL;
        uint8_t *buf = pack_open("x", n_headers, &n);

        (void)state;
        /* Well under the limit: decodes; the same bytes under a limit smaller than their
         * sub-messages alone: refused. */
        assert_int_equal(
                vbus__protobuf_decode_limited(&vbus__v1__open__descriptor, buf, n, 4 * need, &m),
                0);
        assert_int_equal(((Vbus__V1__Open *)m)->n_headers, n_headers);
        protobuf_c_message_free_unpacked(m, NULL);
        m = NULL;
        assert_int_equal(
                vbus__protobuf_decode_limited(&vbus__v1__open__descriptor, buf, n, need / 2, &m),
                -EBADMSG);
        assert_null(m);
        assert_int_equal(vbus__protobuf_decode_limited(&vbus__v1__open__descriptor, buf, n, 0, &m),
                         -EBADMSG);
        free(buf);
}

/* --- the server's step before invoke ------------------------------------------------------ */

static void test_decode_request_finds_method(void **state)
{
        Vbus__V1__End e = VBUS__V1__END__INIT;
        ProtobufCMessage *in = NULL;
        const char *msg = NULL;
        unsigned index = 99;
        uint8_t buf[64];
        size_t n;

        (void)state;
        e.status = VBUS__V1__STATUS__STATUS_APPLICATION;
        e.message = (char *)"hi";
        n = protobuf_c_message_pack(&e.base, buf);
        assert_int_equal(
                vbus__protobuf_decode_request(&svc_desc, "Alpha", buf, n, &index, &in, &msg),
                VBUS_STATUS_OK);
        assert_int_equal(index, 1);
        assert_ptr_equal(in->descriptor, &vbus__v1__end__descriptor);
        assert_int_equal(((Vbus__V1__End *)in)->status, VBUS__V1__STATUS__STATUS_APPLICATION);
        assert_string_equal(((Vbus__V1__End *)in)->message, "hi");
        protobuf_c_message_free_unpacked(in, NULL);

        in = NULL;
        assert_int_equal(
                vbus__protobuf_decode_request(&svc_desc, "Zeta", NULL, 0, &index, &in, &msg),
                VBUS_STATUS_OK);
        assert_int_equal(index, 0);
        assert_ptr_equal(in->descriptor, &vbus__v1__open__descriptor);
        protobuf_c_message_free_unpacked(in, NULL);
}

static void test_decode_request_unknown_method(void **state)
{
        /* Lookup is exact and case-sensitive. */
        static const char *const names[] = {"Beta", "alpha", "Alph", "Alphaa", ""};
        ProtobufCMessage *in = NULL;
        const char *msg = NULL;
        unsigned index = 99;

        (void)state;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                msg = NULL;
                assert_int_equal(vbus__protobuf_decode_request(&svc_desc, names[i], NULL, 0, &index,
                                                               &in, &msg),
                                 VBUS_STATUS_NOT_FOUND);
                assert_non_null(msg);
        }
        assert_int_equal(vbus__protobuf_decode_request(&svc_desc, NULL, NULL, 0, &index, &in, &msg),
                         VBUS_STATUS_NOT_FOUND);
        assert_int_equal(index, 99);
        assert_null(in);
}

static void test_decode_request_malformed_is_invalid_argument(void **state)
{
        ProtobufCMessage *in = NULL;
        const char *msg = NULL;
        unsigned index = 99;
        size_t n;
        uint8_t *big = pack_open("x", ((size_t)VBUS_MESSAGE_MAX - 64) / 2, &n);

        (void)state;
        assert_int_equal(
                vbus__protobuf_decode_request(&svc_desc, "Zeta", "\x0a\x7f", 2, &index, &in, &msg),
                VBUS_STATUS_INVALID_ARGUMENT);
        assert_non_null(msg);
        /* Well-formed but over the decode budget: refused the same way. */
        msg = NULL;
        assert_int_equal(
                vbus__protobuf_decode_request(&svc_desc, "Zeta", big, n, &index, &in, &msg),
                VBUS_STATUS_INVALID_ARGUMENT);
        assert_non_null(msg);
        assert_int_equal(index, 99);
        assert_null(in);
        free(big);
}

/* --- serving ------------------------------------------------------------------------------ */

static void never_invoked(ProtobufCService *service, unsigned index, const ProtobufCMessage *input,
                          ProtobufCClosure closure, void *closure_data)
{
        (void)service;
        (void)index;
        (void)input;
        (void)closure;
        (void)closure_data;
        fail_msg("invoke must not run without a broker");
}

static vbus_conn *conn_nowhere(void)
{
        vbus_conn *c = NULL;

        /* No broker listens there: the connection stays not ready. */
        assert_int_equal(vbus_conn_open("unix:/nonexistent/vbus-test-protobuf.sock", &c), 0);
        return c;
}

static void test_serve_arguments(void **state)
{
        ProtobufCServiceDescriptor bad_desc = svc_desc;
        ProtobufCService service = {&svc_desc, never_invoked, NULL};
        ProtobufCService no_invoke = {&svc_desc, NULL, NULL};
        ProtobufCService bad = {&bad_desc, never_invoked, NULL};
        vbus_server *srv = NULL;
        vbus_conn *c = conn_nowhere();

        (void)state;
        bad_desc.magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC;
        assert_int_equal(vbus_protobuf_serve(NULL, &service, &srv), -EINVAL);
        assert_int_equal(vbus_protobuf_serve(c, NULL, &srv), -EINVAL);
        assert_int_equal(vbus_protobuf_serve(c, &service, NULL), -EINVAL);
        assert_int_equal(vbus_protobuf_serve(c, &no_invoke, &srv), -EINVAL);
        assert_int_equal(vbus_protobuf_serve(c, &bad, &srv), -EINVAL);
        bad_desc = svc_desc;
        bad_desc.name = "not a service name";
        assert_int_equal(vbus_protobuf_serve(c, &bad, &srv), -EINVAL);
        assert_null(srv);

        assert_int_equal(vbus_protobuf_serve(c, &service, &srv), 0);
        assert_non_null(srv);
        assert_false(vbus_server_is_active(srv));
        vbus_server_free(srv);
        vbus_conn_free(c);
}

static void test_closure_data_not_ours(void **state)
{
        uint64_t foreign[4] = {0};

        (void)state;
        assert_null(vbus_protobuf_get_request(NULL));
        assert_null(vbus_protobuf_get_request(foreign));
        assert_int_equal(vbus_protobuf_fail(NULL, VBUS_STATUS_APPLICATION, "x"), -EINVAL);
        assert_int_equal(vbus_protobuf_fail(foreign, VBUS_STATUS_APPLICATION, "x"), -EINVAL);
}

/* --- calling ------------------------------------------------------------------------------ */

typedef struct Seen {
        int n_calls;
        bool output_was_null;
        int status;
        char message[128];
        ProtobufCService *client;
} Seen;

static void record(const ProtobufCMessage *output, void *closure_data)
{
        Seen *s = closure_data;
        const char *msg = NULL;

        s->n_calls++;
        s->output_was_null = output == NULL;
        /* Inside the closure the client's status is this call's. */
        s->status = vbus_protobuf_client_get_status(s->client, &msg);
        assert_non_null(msg);
        strncpy(s->message, msg, sizeof(s->message) - 1);
}

static void test_client_new_arguments(void **state)
{
        ProtobufCServiceDescriptor bad = svc_desc;
        ProtobufCService *svc = NULL;
        vbus_conn *c = conn_nowhere();

        (void)state;
        bad.magic = 0;
        assert_int_equal(vbus_protobuf_client_new(NULL, &svc_desc, 0, &svc), -EINVAL);
        assert_int_equal(vbus_protobuf_client_new(c, NULL, 0, &svc), -EINVAL);
        assert_int_equal(vbus_protobuf_client_new(c, &bad, 0, &svc), -EINVAL);
        assert_int_equal(vbus_protobuf_client_new(c, &svc_desc, 0, NULL), -EINVAL);
        assert_null(svc);

        assert_int_equal(vbus_protobuf_client_new(c, &svc_desc, 1000000, &svc), 0);
        assert_ptr_equal(svc->descriptor, &svc_desc);
        assert_int_equal(vbus_protobuf_client_get_status(svc, NULL), VBUS_STATUS_UNSPECIFIED);
        assert_null(vbus_protobuf_client_free(svc));
        vbus_conn_free(c);
}

static void test_client_not_ready_fails_at_once(void **state)
{
        Vbus__V1__Open open = VBUS__V1__OPEN__INIT;
        Seen seen = {0};
        vbus_conn *c = conn_nowhere();

        (void)state;
        assert_int_equal(vbus_protobuf_client_new(c, &svc_desc, 0, &seen.client), 0);
        /* As a generated stub calls it. */
        seen.client->invoke(seen.client, 0, &open.base, record, &seen);
        assert_int_equal(seen.n_calls, 1);
        assert_true(seen.output_was_null);
        assert_int_equal(seen.status, VBUS_STATUS_UNAVAILABLE);
        assert_true(strlen(seen.message) > 0);
        /* The same status afterwards. */
        assert_int_equal(vbus_protobuf_client_get_status(seen.client, NULL),
                         VBUS_STATUS_UNAVAILABLE);
        /* protobuf-c's destroy frees a client too. */
        protobuf_c_service_destroy(seen.client);
        vbus_conn_free(c);
}

static void test_client_wrong_input_is_invalid_argument(void **state)
{
        Vbus__V1__Open open = VBUS__V1__OPEN__INIT;
        Vbus__V1__End end = VBUS__V1__END__INIT;
        Seen seen = {0};
        vbus_conn *c = conn_nowhere();
        char *huge = malloc(VBUS_MESSAGE_MAX + 2);

        (void)state;
        assert_non_null(huge);
        assert_int_equal(vbus_protobuf_client_new(c, &svc_desc, 0, &seen.client), 0);
        /* Method 0 takes an Open, not an End. */
        seen.client->invoke(seen.client, 0, &end.base, record, &seen);
        assert_int_equal(seen.n_calls, 1);
        assert_true(seen.output_was_null);
        assert_int_equal(seen.status, VBUS_STATUS_INVALID_ARGUMENT);
        /* No such method index. */
        seen.client->invoke(seen.client, 2, &open.base, record, &seen);
        assert_int_equal(seen.n_calls, 2);
        assert_int_equal(seen.status, VBUS_STATUS_INVALID_ARGUMENT);
        seen.client->invoke(seen.client, 0, NULL, record, &seen);
        assert_int_equal(seen.n_calls, 3);
        assert_int_equal(seen.status, VBUS_STATUS_INVALID_ARGUMENT);
        /* Larger than VBUS_MESSAGE_MAX once packed. */
        memset(huge, 'a', VBUS_MESSAGE_MAX + 1);
        huge[VBUS_MESSAGE_MAX + 1] = '\0';
        open.name = huge;
        seen.client->invoke(seen.client, 0, &open.base, record, &seen);
        assert_int_equal(seen.n_calls, 4);
        assert_int_equal(seen.status, VBUS_STATUS_INVALID_ARGUMENT);
        assert_non_null(strstr(seen.message, "VBUS_MESSAGE_MAX"));
        vbus_protobuf_client_free(seen.client);
        vbus_conn_free(c);
        free(huge);
}

static void test_client_not_ours(void **state)
{
        ProtobufCService other = {&svc_desc, never_invoked, NULL};
        const char *msg = "unchanged";

        (void)state;
        assert_int_equal(vbus_protobuf_client_get_status(NULL, &msg), -EINVAL);
        assert_int_equal(vbus_protobuf_client_get_status(&other, &msg), -EINVAL);
        assert_string_equal(msg, "unchanged");
        assert_null(vbus_protobuf_client_free(NULL));
        assert_null(vbus_protobuf_client_free(&other));
}

static void test_call_arguments(void **state)
{
        Vbus__V1__Open open = VBUS__V1__OPEN__INIT;
        Vbus__V1__End end = VBUS__V1__END__INIT;
        ProtobufCServiceDescriptor bad = svc_desc;
        ProtobufCMessage *out = (ProtobufCMessage *)&out;
        vbus_reply *reply = (vbus_reply *)&reply;
        vbus_conn *c = conn_nowhere();

        (void)state;
        bad.magic = 0;
        assert_int_equal(vbus_protobuf_call(NULL, &svc_desc, "Zeta", &open.base, 0, &out, &reply),
                         -EINVAL);
        assert_int_equal(vbus_protobuf_call(c, NULL, "Zeta", &open.base, 0, &out, &reply), -EINVAL);
        assert_int_equal(vbus_protobuf_call(c, &bad, "Zeta", &open.base, 0, &out, &reply), -EINVAL);
        assert_int_equal(vbus_protobuf_call(c, &svc_desc, NULL, &open.base, 0, &out, &reply),
                         -EINVAL);
        assert_int_equal(vbus_protobuf_call(c, &svc_desc, "Zeta", NULL, 0, &out, &reply), -EINVAL);
        assert_int_equal(vbus_protobuf_call(c, &svc_desc, "Nope", &open.base, 0, &out, &reply),
                         -ENOENT);
        /* Zeta takes an Open. */
        assert_int_equal(vbus_protobuf_call(c, &svc_desc, "Zeta", &end.base, 0, &out, &reply),
                         -EINVAL);
        /* A valid call on a connection that cannot become ready (no such socket): the
         * connection's error, at once (vbus_conn_wait_ready()). */
        assert_int_equal(vbus_protobuf_call(c, &svc_desc, "Zeta", &open.base, 20000, &out, &reply),
                         -ENOENT);
        /* Nothing written on failure. */
        assert_ptr_equal(out, (ProtobufCMessage *)&out);
        assert_ptr_equal(reply, (vbus_reply *)&reply);
        vbus_conn_free(c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_decode_valid),
                cmocka_unit_test(test_decode_empty_is_defaults),
                cmocka_unit_test(test_decode_malformed),
                cmocka_unit_test(test_decode_bad_arguments),
                cmocka_unit_test(test_decode_over_budget),
                cmocka_unit_test(test_decode_limited),
                cmocka_unit_test(test_decode_request_finds_method),
                cmocka_unit_test(test_decode_request_unknown_method),
                cmocka_unit_test(test_decode_request_malformed_is_invalid_argument),
                cmocka_unit_test(test_serve_arguments),
                cmocka_unit_test(test_closure_data_not_ours),
                cmocka_unit_test(test_client_new_arguments),
                cmocka_unit_test(test_client_not_ready_fails_at_once),
                cmocka_unit_test(test_client_wrong_input_is_invalid_argument),
                cmocka_unit_test(test_client_not_ours),
                cmocka_unit_test(test_call_arguments),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
