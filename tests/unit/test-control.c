/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for libbus/control.c and libbus/name.c: every control message round-trips, every
 * semantic rule of docs/protocol.md at its limit and one past it, malformed protobuf, embedded
 * NULs, the decode budget, and the Meta prefix of DATA frames.
 */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "control.h"
#include "name.h"

static uint8_t frame_buf[VBUS_FRAME_HEADER_SIZE + VBUS_CONTROL_MAX + 64];

/* Encodes @msg as a control frame of @type and decodes it back; returns the decode result. */
static int roundtrip(uint8_t type, uint32_t stream, const ProtobufCMessage *msg, VbusControl *ret)
{
        VbusSegments out = {{frame_buf, NULL}, {sizeof(frame_buf), 0}};
        VbusFrameHeader h = {.type = type, .stream_id = stream}, got;
        size_t n;
        int r;

        r = vbus__control_encode(&h, msg, &out, &n);
        if (r < 0)
                return r;
        r = vbus__frame_header_decode(frame_buf, n, VBUS_FRAME_MAX_DEFAULT, &got);
        if (r != 0)
                return r;
        return vbus__control_decode(&got, frame_buf + VBUS_FRAME_HEADER_SIZE,
                                    VBUS_CONTROL_DECODE_BUDGET, ret);
}

static int check(uint8_t type, uint32_t stream, const ProtobufCMessage *msg)
{
        VbusControl c = VBUS_CONTROL_NULL;
        int r = roundtrip(type, stream, msg, &c);

        vbus__control_deinit(&c);
        return r;
}

/* Decodes raw payload bytes as a control message of @type. */
static int decode_bytes(uint8_t type, uint32_t stream, const uint8_t *p, size_t n, size_t budget)
{
        VbusFrameHeader h = {.type = type, .stream_id = stream, .length = (uint32_t)n};
        VbusControl c = VBUS_CONTROL_NULL;
        int r = vbus__control_decode(&h, p, budget, &c);

        vbus__control_deinit(&c);
        return r;
}

static char *repeat(char ch, size_t n)
{
        static char buf[8192];

        assert_true(n < sizeof(buf));
        memset(buf, ch, n);
        buf[n] = '\0';
        return buf;
}

static Vbus__V1__Hello good_hello(void)
{
        Vbus__V1__Hello m = VBUS__V1__HELLO__INIT;

        m.version_min = 1;
        m.version_max = 1;
        m.max_frame = VBUS_FRAME_MAX_DEFAULT;
        m.peer_name = (char *)"test";
        return m;
}

static void test_hello_roundtrip(void **state)
{
        Vbus__V1__Hello m = good_hello();
        VbusControl c = VBUS_CONTROL_NULL;
        const Vbus__V1__Hello *got;

        m.features = 0x5;
        assert_int_equal(roundtrip(VBUS_FRAME_HELLO, 0, &m.base, &c), 0);
        got = (const Vbus__V1__Hello *)c.msg;
        assert_int_equal(got->version_min, 1);
        assert_int_equal(got->max_frame, VBUS_FRAME_MAX_DEFAULT);
        assert_int_equal(got->features, 5);
        assert_string_equal(got->peer_name, "test");
        assert_true(c.n_allocated > 0 && c.n_allocated <= VBUS_CONTROL_DECODE_BUDGET);
        vbus__control_deinit(&c);
        assert_null(c.msg);
}

static void test_hello_version_rules(void **state)
{
        Vbus__V1__Hello m = good_hello();

        m.version_min = 0;
        assert_int_equal(check(VBUS_FRAME_HELLO, 0, &m.base), VBUS_FRAME_E_SEMANTIC);
        m = good_hello();
        m.version_min = 2;
        m.version_max = 1;
        assert_int_equal(check(VBUS_FRAME_HELLO, 0, &m.base), VBUS_FRAME_E_SEMANTIC);
        m = good_hello();
        m.version_max = 3;
        m.version = 3;
        assert_int_equal(check(VBUS_FRAME_HELLO, 0, &m.base), 0);
        m.version = 4;
        assert_int_equal(check(VBUS_FRAME_HELLO, 0, &m.base), VBUS_FRAME_E_SEMANTIC);
}

static void test_hello_max_frame_limits(void **state)
{
        Vbus__V1__Hello m = good_hello();

        m.max_frame = VBUS_FRAME_MAX_MIN;
        assert_int_equal(check(VBUS_FRAME_HELLO, 0, &m.base), 0);
        m.max_frame = VBUS_FRAME_MAX_MIN - 1;
        assert_int_equal(check(VBUS_FRAME_HELLO, 0, &m.base), VBUS_FRAME_E_SEMANTIC);
        m.max_frame = VBUS_FRAME_MAX_LIMIT;
        assert_int_equal(check(VBUS_FRAME_HELLO, 0, &m.base), 0);
        m.max_frame = VBUS_FRAME_MAX_LIMIT + 1;
        assert_int_equal(check(VBUS_FRAME_HELLO, 0, &m.base), VBUS_FRAME_E_SEMANTIC);
        m.max_frame = 0;
        assert_int_equal(check(VBUS_FRAME_HELLO, 0, &m.base), VBUS_FRAME_E_SEMANTIC);
}

static void test_hello_string_limits(void **state)
{
        Vbus__V1__Hello m = good_hello();
        uint8_t auth[VBUS_AUTH_FIELD_MAX + 1] = {0};

        m.peer_name = repeat('p', VBUS_PEER_NAME_MAX);
        assert_int_equal(check(VBUS_FRAME_HELLO, 0, &m.base), 0);
        m.peer_name = repeat('p', VBUS_PEER_NAME_MAX + 1);
        assert_int_equal(check(VBUS_FRAME_HELLO, 0, &m.base), VBUS_FRAME_E_SEMANTIC);
        m = good_hello();
        m.auth_proof.data = auth;
        m.auth_proof.len = VBUS_AUTH_FIELD_MAX;
        assert_int_equal(check(VBUS_FRAME_HELLO, 0, &m.base), 0);
        m.auth_proof.len = VBUS_AUTH_FIELD_MAX + 1;
        assert_int_equal(check(VBUS_FRAME_HELLO, 0, &m.base), VBUS_FRAME_E_SEMANTIC);
}

static Vbus__V1__Open open_msg(Vbus__V1__StreamKind kind, const char *name)
{
        Vbus__V1__Open m = VBUS__V1__OPEN__INIT;

        m.kind = kind;
        m.name = (char *)name;
        m.initial_credit = 65536;
        return m;
}

static void test_open_roundtrip_each_kind(void **state)
{
        Vbus__V1__Open m;

        m = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "sensors.kitchen.temp");
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), 0);
        m = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE, "sensors.*.temp");
        m.slow_policy = VBUS__V1__SLOW_POLICY__SLOW_POLICY_BLOCK;
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), 0);
        m = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_CALL, "storage.v1.Store/Get");
        m.timeout_us = 1000000;
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), 0);
        m = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_SERVE, "storage.v1.Store");
        assert_int_equal(check(VBUS_FRAME_OPEN, 2, &m.base), 0);
}

static void test_open_kind_rules(void **state)
{
        Vbus__V1__Open m;

        m = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_UNSPECIFIED, "a.b");
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), VBUS_FRAME_E_SEMANTIC);
        m = open_msg((Vbus__V1__StreamKind)5, "a.b");
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), VBUS_FRAME_E_SEMANTIC);
        /* Wildcards only in subscriptions; a method name needs the slash. */
        m = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "a.*");
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), VBUS_FRAME_E_SEMANTIC);
        m = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_CALL, "storage.v1.Store");
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), VBUS_FRAME_E_SEMANTIC);
        /* Fields that belong to other kinds. */
        m = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "a.b");
        m.slow_policy = VBUS__V1__SLOW_POLICY__SLOW_POLICY_DROP;
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), VBUS_FRAME_E_SEMANTIC);
        m = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE, "a.b");
        m.timeout_us = 5;
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), VBUS_FRAME_E_SEMANTIC);
        m = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE, "a.b");
        m.slow_policy = (Vbus__V1__SlowPolicy)3;
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), VBUS_FRAME_E_SEMANTIC);
        m = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "a.b");
        m.initial_credit = VBUS_CREDIT_MAX;
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), 0);
        m.initial_credit = (uint32_t)VBUS_CREDIT_MAX + 1;
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), VBUS_FRAME_E_SEMANTIC);
}

/* The kinds an Open may have, each with a name valid for it. */
static const struct {
        Vbus__V1__StreamKind kind;
        const char *name;
} open_kinds[] = {
        {VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "a.b"},
        {VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE, "a.*"},
        {VBUS__V1__STREAM_KIND__STREAM_KIND_CALL, "a.S/M"},
        {VBUS__V1__STREAM_KIND__STREAM_KIND_SERVE, "a.S"},
};

/* Checks @m through the decoder and through vbus__control_validate() directly. */
static void assert_open_result(const Vbus__V1__Open *m, int expect)
{
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m->base), expect);
        assert_int_equal(vbus__control_validate(VBUS_FRAME_OPEN, &m->base), expect);
}

/* queue_limit and slow_policy belong to SUBSCRIBE: on any other kind they are semantic errors,
 * at the smallest and the largest value, and on SUBSCRIBE any value is fine. */
static void test_open_subscribe_fields_only_on_subscribe(void **state)
{
        for (size_t i = 0; i < sizeof(open_kinds) / sizeof(open_kinds[0]); i++) {
                bool subscribe = open_kinds[i].kind == VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE;
                int expect = subscribe ? 0 : VBUS_FRAME_E_SEMANTIC;
                Vbus__V1__Open m = open_msg(open_kinds[i].kind, open_kinds[i].name);

                assert_open_result(&m, 0);
                m.queue_limit = 1;
                assert_open_result(&m, expect);
                m.queue_limit = UINT32_MAX;
                assert_open_result(&m, expect);
                m = open_msg(open_kinds[i].kind, open_kinds[i].name);
                m.slow_policy = VBUS__V1__SLOW_POLICY__SLOW_POLICY_DROP;
                assert_open_result(&m, expect);
                m.slow_policy = VBUS__V1__SLOW_POLICY__SLOW_POLICY_BLOCK;
                assert_open_result(&m, expect);
        }
}

/* timeout_us and headers belong to CALL. */
static void test_open_call_fields_only_on_call(void **state)
{
        Vbus__V1__Header hd = VBUS__V1__HEADER__INIT, *hp[1] = {&hd};

        hd.key = (char *)"k";
        for (size_t i = 0; i < sizeof(open_kinds) / sizeof(open_kinds[0]); i++) {
                bool call = open_kinds[i].kind == VBUS__V1__STREAM_KIND__STREAM_KIND_CALL;
                int expect = call ? 0 : VBUS_FRAME_E_SEMANTIC;
                Vbus__V1__Open m = open_msg(open_kinds[i].kind, open_kinds[i].name);

                m.timeout_us = 1;
                assert_open_result(&m, expect);
                m = open_msg(open_kinds[i].kind, open_kinds[i].name);
                m.headers = hp;
                m.n_headers = 1;
                assert_open_result(&m, expect);
        }
}

static void test_open_name_length_limits(void **state)
{
        char name[VBUS_NAME_MAX + 2];
        Vbus__V1__Open m;

        /* 128 tokens would break the token limit, so use long tokens: "aaaa...a.b" */
        memset(name, 'a', sizeof(name));
        name[VBUS_NAME_MAX - 2] = '.';
        name[VBUS_NAME_MAX] = '\0';
        m = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, name);
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), 0);
        name[VBUS_NAME_MAX] = 'a';
        name[VBUS_NAME_MAX + 1] = '\0';
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), VBUS_FRAME_E_SEMANTIC);
        m = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "");
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), VBUS_FRAME_E_SEMANTIC);
}

static void test_open_header_limits(void **state)
{
        Vbus__V1__Header hs[VBUS_HEADERS_MAX + 1], *hp[VBUS_HEADERS_MAX + 1];
        uint8_t value[VBUS_HEADER_VALUE_MAX + 1] = {0};
        char key[VBUS_HEADER_KEY_MAX + 2];
        Vbus__V1__Open m = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_CALL, "a.S/M");

        for (size_t i = 0; i <= VBUS_HEADERS_MAX; i++) {
                vbus__v1__header__init(&hs[i]);
                hs[i].key = (char *)"trace-id";
                hp[i] = &hs[i];
        }
        m.headers = hp;
        m.n_headers = VBUS_HEADERS_MAX;
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), 0);
        m.n_headers = VBUS_HEADERS_MAX + 1;
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), VBUS_FRAME_E_SEMANTIC);

        m.n_headers = 1;
        memset(key, 'k', sizeof(key));
        key[VBUS_HEADER_KEY_MAX] = '\0';
        hs[0].key = key;
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), 0);
        key[VBUS_HEADER_KEY_MAX] = 'k';
        key[VBUS_HEADER_KEY_MAX + 1] = '\0';
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), VBUS_FRAME_E_SEMANTIC);
        hs[0].key = (char *)"Upper";
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), VBUS_FRAME_E_SEMANTIC);
        hs[0].key = (char *)"";
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), VBUS_FRAME_E_SEMANTIC);
        hs[0].key = (char *)"k";
        hs[0].value.data = value;
        hs[0].value.len = VBUS_HEADER_VALUE_MAX;
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), 0);
        hs[0].value.len = VBUS_HEADER_VALUE_MAX + 1;
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), VBUS_FRAME_E_SEMANTIC);
        /* Headers on anything but CALL. */
        hs[0].value.len = 1;
        m.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_SERVE;
        m.name = (char *)"a.S";
        assert_int_equal(check(VBUS_FRAME_OPEN, 1, &m.base), VBUS_FRAME_E_SEMANTIC);
}

static void test_accept_reject_end_reset(void **state)
{
        Vbus__V1__Accept a = VBUS__V1__ACCEPT__INIT;
        Vbus__V1__Identity id = VBUS__V1__IDENTITY__INIT;
        Vbus__V1__Reject rj = VBUS__V1__REJECT__INIT;
        Vbus__V1__End e = VBUS__V1__END__INIT;

        id.domid = 3;
        id.domain_name = (char *)"sensor";
        a.peer = &id;
        a.initial_credit = 1;
        assert_int_equal(check(VBUS_FRAME_ACCEPT, 2, &a.base), 0);
        id.domain_name = repeat('d', VBUS_PEER_NAME_MAX + 1);
        assert_int_equal(check(VBUS_FRAME_ACCEPT, 2, &a.base), VBUS_FRAME_E_SEMANTIC);

        rj.status = VBUS__V1__STATUS__STATUS_NOT_FOUND;
        rj.message = (char *)"no responders";
        assert_int_equal(check(VBUS_FRAME_REJECT, 1, &rj.base), 0);
        rj.status = VBUS__V1__STATUS__STATUS_OK;
        assert_int_equal(check(VBUS_FRAME_REJECT, 1, &rj.base), VBUS_FRAME_E_SEMANTIC);
        rj.status = VBUS__V1__STATUS__STATUS_UNSPECIFIED;
        assert_int_equal(check(VBUS_FRAME_REJECT, 1, &rj.base), VBUS_FRAME_E_SEMANTIC);

        e.status = VBUS__V1__STATUS__STATUS_OK;
        assert_int_equal(check(VBUS_FRAME_END, 1, &e.base), 0);
        e.status = VBUS__V1__STATUS__STATUS_SHUTTING_DOWN; /* highest defined */
        assert_int_equal(check(VBUS_FRAME_END, 1, &e.base), 0);
        e.status = (Vbus__V1__Status)(VBUS__V1__STATUS__STATUS_SHUTTING_DOWN + 1);
        assert_int_equal(check(VBUS_FRAME_END, 1, &e.base), VBUS_FRAME_E_SEMANTIC);
        e.status = VBUS__V1__STATUS__STATUS_OK;
        assert_int_equal(check(VBUS_FRAME_RESET, 1, &e.base), VBUS_FRAME_E_SEMANTIC);
        e.status = VBUS__V1__STATUS__STATUS_CANCELLED;
        e.message = repeat('m', VBUS_STATUS_MESSAGE_MAX);
        assert_int_equal(check(VBUS_FRAME_RESET, 1, &e.base), 0);
        e.message = repeat('m', VBUS_STATUS_MESSAGE_MAX + 1);
        assert_int_equal(check(VBUS_FRAME_RESET, 1, &e.base), VBUS_FRAME_E_SEMANTIC);
}

static void test_credit_limits(void **state)
{
        Vbus__V1__Credit m = VBUS__V1__CREDIT__INIT;

        m.increment = 0;
        assert_int_equal(check(VBUS_FRAME_CREDIT, 1, &m.base), VBUS_FRAME_E_SEMANTIC);
        m.increment = 1;
        assert_int_equal(check(VBUS_FRAME_CREDIT, 1, &m.base), 0);
        m.increment = VBUS_CREDIT_MAX;
        assert_int_equal(check(VBUS_FRAME_CREDIT, 1, &m.base), 0);
        m.increment = (uint32_t)VBUS_CREDIT_MAX + 1;
        assert_int_equal(check(VBUS_FRAME_CREDIT, 1, &m.base), VBUS_FRAME_E_SEMANTIC);
}

static void test_ping_goaway_error(void **state)
{
        Vbus__V1__Ping p = VBUS__V1__PING__INIT;
        Vbus__V1__GoAway g = VBUS__V1__GO_AWAY__INIT;
        Vbus__V1__Error e = VBUS__V1__ERROR__INIT;

        p.opaque = UINT64_MAX;
        assert_int_equal(check(VBUS_FRAME_PING, 0, &p.base), 0);
        g.status = VBUS__V1__STATUS__STATUS_SHUTTING_DOWN;
        g.last_stream_id = 0x7fffffff;
        assert_int_equal(check(VBUS_FRAME_GOAWAY, 0, &g.base), 0);
        g.last_stream_id = 0x80000000;
        assert_int_equal(check(VBUS_FRAME_GOAWAY, 0, &g.base), VBUS_FRAME_E_SEMANTIC);
        g.last_stream_id = 1;
        g.status = VBUS__V1__STATUS__STATUS_UNSPECIFIED;
        assert_int_equal(check(VBUS_FRAME_GOAWAY, 0, &g.base), VBUS_FRAME_E_SEMANTIC);
        e.status = VBUS__V1__STATUS__STATUS_PROTOCOL_ERROR;
        e.stream_id = 5;
        assert_int_equal(check(VBUS_FRAME_ERROR, 0, &e.base), 0);
        e.stream_id = 0x80000000;
        assert_int_equal(check(VBUS_FRAME_ERROR, 0, &e.base), VBUS_FRAME_E_SEMANTIC);
        e.stream_id = 0;
        e.status = VBUS__V1__STATUS__STATUS_OK;
        assert_int_equal(check(VBUS_FRAME_ERROR, 0, &e.base), VBUS_FRAME_E_SEMANTIC);
}

static void test_empty_payload_uses_defaults(void **state)
{
        /* An empty Ping is valid; an empty Open has no name and kind and is not. */
        assert_int_equal(decode_bytes(VBUS_FRAME_PING, 0, NULL, 0, 4096), 0);
        assert_int_equal(decode_bytes(VBUS_FRAME_OPEN, 1, NULL, 0, 4096), VBUS_FRAME_E_SEMANTIC);
        assert_int_equal(decode_bytes(VBUS_FRAME_CREDIT, 1, NULL, 0, 4096), VBUS_FRAME_E_SEMANTIC);
}

static void test_malformed_protobuf(void **state)
{
        /* field 1 (name), length 5, only 1 byte follows */
        const uint8_t truncated[] = {0x0a, 0x05, 'a'};
        /* varint never terminates */
        const uint8_t endless[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
        /* wire type 3 (start group) is not allowed */
        const uint8_t group[] = {0x0b};
        /* name (a string) sent with the varint wire type */
        const uint8_t wrong_type[] = {0x08, 0x01, 0x10, 0x01};

        assert_int_equal(decode_bytes(VBUS_FRAME_OPEN, 1, truncated, sizeof(truncated), 4096),
                         VBUS_FRAME_E_MALFORMED);
        assert_int_equal(decode_bytes(VBUS_FRAME_PING, 0, endless, sizeof(endless), 4096),
                         VBUS_FRAME_E_MALFORMED);
        assert_int_equal(decode_bytes(VBUS_FRAME_PING, 0, group, sizeof(group), 4096),
                         VBUS_FRAME_E_MALFORMED);
        assert_int_equal(decode_bytes(VBUS_FRAME_OPEN, 1, wrong_type, sizeof(wrong_type), 4096),
                         VBUS_FRAME_E_MALFORMED);
}

static void test_embedded_nul_in_string_rejected(void **state)
{
        /* Open{name = "a\0b", kind = PUBLISH} */
        const uint8_t open_nul[] = {0x0a, 0x03, 'a', 0x00, 'b', 0x10, 0x01};
        const uint8_t open_ok[] = {0x0a, 0x03, 'a', '.', 'b', 0x10, 0x01};
        /* Accept{peer = Identity{domain_name = "x\0"}}: nested string */
        const uint8_t accept_nul[] = {0x12, 0x04, 0x12, 0x02, 'x', 0x00};

        assert_int_equal(decode_bytes(VBUS_FRAME_OPEN, 1, open_ok, sizeof(open_ok), 4096), 0);
        assert_int_equal(decode_bytes(VBUS_FRAME_OPEN, 1, open_nul, sizeof(open_nul), 4096),
                         VBUS_FRAME_E_SEMANTIC);
        assert_int_equal(decode_bytes(VBUS_FRAME_ACCEPT, 1, accept_nul, sizeof(accept_nul), 4096),
                         VBUS_FRAME_E_SEMANTIC);
}

static void test_decode_budget_enforced(void **state)
{
        uint8_t buf[VBUS_CONTROL_MAX];
        size_t n = 0;

        /* Open with many empty headers: 2 bytes of input each, a struct each when decoded. */
        const uint8_t head[] = {0x0a, 0x05, 'a', '.', 'S', '/', 'M', 0x10, 0x03};
        memcpy(buf, head, sizeof(head));
        n = sizeof(head);
        while (n + 2 <= sizeof(buf)) {
                buf[n++] = 0x32;
                buf[n++] = 0x00;
        }
        /* Within the normal budget it decodes, then fails the header-count rule. */
        assert_int_equal(
                decode_bytes(VBUS_FRAME_OPEN, 1, buf, n, (size_t)VBUS_CONTROL_DECODE_BUDGET * 4),
                VBUS_FRAME_E_SEMANTIC);
        /* With a small budget the allocator refuses and the payload counts as malformed. */
        assert_int_equal(decode_bytes(VBUS_FRAME_OPEN, 1, buf, n, 1024), VBUS_FRAME_E_MALFORMED);
}

static void test_decode_invalid_arguments(void **state)
{
        VbusFrameHeader h = {.type = VBUS_FRAME_DATA, .stream_id = 1};
        VbusControl c = VBUS_CONTROL_NULL;

        assert_int_equal(vbus__control_decode(&h, NULL, 4096, &c), -EINVAL);
        h.type = VBUS_FRAME_PING;
        h.length = 3;
        assert_int_equal(vbus__control_decode(&h, NULL, 4096, &c), -EINVAL);
        assert_int_equal(vbus__control_decode(NULL, NULL, 4096, &c), -EINVAL);
        vbus__control_deinit(NULL);
}

static void test_encode_errors(void **state)
{
        Vbus__V1__Ping p = VBUS__V1__PING__INIT;
        Vbus__V1__Reject rj = VBUS__V1__REJECT__INIT;
        uint8_t small[VBUS_FRAME_HEADER_SIZE + 1];
        VbusSegments out = {{small, NULL}, {sizeof(small), 0}};
        VbusFrameHeader h = {.type = VBUS_FRAME_PING};
        size_t n;

        p.opaque = 1000;
        assert_int_equal(vbus__control_encode(&h, &p.base, &out, &n), -ENOBUFS);
        h.type = VBUS_FRAME_OPEN;
        assert_int_equal(vbus__control_encode(&h, &p.base, &out, &n), -EINVAL);
        /* A message over VBUS_CONTROL_MAX is refused by the encoder. */
        rj.status = VBUS__V1__STATUS__STATUS_INTERNAL;
        rj.message = repeat('z', VBUS_CONTROL_MAX);
        h.type = VBUS_FRAME_REJECT;
        h.stream_id = 1;
        VbusSegments big = {{frame_buf, NULL}, {sizeof(frame_buf), 0}};
        assert_int_equal(vbus__control_encode(&h, &rj.base, &big, &n), -EINVAL);
}

static void test_encode_split_segments(void **state)
{
        Vbus__V1__Open m = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "a.b.c");
        uint8_t a[7], b[64], joined[71];
        VbusSegments out = {{a, b}, {sizeof(a), sizeof(b)}};
        VbusFrameHeader h = {.type = VBUS_FRAME_OPEN, .stream_id = 1}, got;
        VbusControl c = VBUS_CONTROL_NULL;
        size_t n;

        assert_int_equal(vbus__control_encode(&h, &m.base, &out, &n), 0);
        memcpy(joined, a, sizeof(a));
        memcpy(joined + sizeof(a), b, sizeof(b));
        assert_int_equal(vbus__frame_header_decode(joined, n, 4096, &got), 0);
        assert_int_equal(got.length, n - VBUS_FRAME_HEADER_SIZE);
        assert_int_equal(vbus__control_decode(&got, joined + VBUS_FRAME_HEADER_SIZE, 4096, &c), 0);
        assert_string_equal(((Vbus__V1__Open *)c.msg)->name, "a.b.c");
        vbus__control_deinit(&c);
}

static void test_meta_prefix(void **state)
{
        uint8_t buf[VBUS_META_MAX + 16];
        const uint8_t *m, *b;
        size_t nm, nb;
        int k;

        /* 1-byte prefix */
        k = vbus__meta_encode_prefix(3, buf);
        assert_int_equal(k, 1);
        memcpy(buf + 1, "mmmbody", 7);
        assert_int_equal(vbus__meta_split(buf, 8, &m, &nm, &b, &nb), 0);
        assert_int_equal(nm, 3);
        assert_int_equal(nb, 4);
        assert_memory_equal(b, "body", 4);
        /* 2-byte prefix at the limit */
        k = vbus__meta_encode_prefix(VBUS_META_MAX, buf);
        assert_int_equal(k, 2);
        assert_int_equal(vbus__meta_split(buf, 2 + VBUS_META_MAX, &m, &nm, &b, &nb), 0);
        assert_int_equal(nm, VBUS_META_MAX);
        assert_int_equal(nb, 0);
        assert_int_equal(vbus__meta_encode_prefix(VBUS_META_MAX + 1, buf), -EINVAL);
        /* one past the limit */
        buf[0] = 0x80 | ((VBUS_META_MAX + 1) & 0x7f);
        buf[1] = (VBUS_META_MAX + 1) >> 7;
        assert_int_equal(vbus__meta_split(buf, sizeof(buf), &m, &nm, &b, &nb),
                         VBUS_FRAME_E_OVERSIZE);
        /* three-byte varint */
        buf[0] = 0x80;
        buf[1] = 0x80;
        buf[2] = 0x01;
        assert_int_equal(vbus__meta_split(buf, 3, &m, &nm, &b, &nb), VBUS_FRAME_E_OVERSIZE);
        /* non-canonical: 0x80 0x00 encodes 0 in two bytes */
        buf[0] = 0x80;
        buf[1] = 0x00;
        assert_int_equal(vbus__meta_split(buf, 2, &m, &nm, &b, &nb), VBUS_FRAME_E_MALFORMED);
        /* truncated */
        assert_int_equal(vbus__meta_split(buf, 1, &m, &nm, &b, &nb), VBUS_FRAME_E_MALFORMED);
        assert_int_equal(vbus__meta_split(buf, 0, &m, &nm, &b, &nb), VBUS_FRAME_E_MALFORMED);
        buf[0] = 10;
        assert_int_equal(vbus__meta_split(buf, 5, &m, &nm, &b, &nb), VBUS_FRAME_E_MALFORMED);
        assert_int_equal(vbus__meta_split(NULL, 5, &m, &nm, &b, &nb), -EINVAL);
}

/* The grammar of a service name spelt out as protocol.md states it (a slow reference). */
static bool ref_is_service(const char *s, size_t len)
{
        size_t start = 0;

        if (len == 0 || len > VBUS_NAME_MAX)
                return false;
        for (size_t i = 0; i <= len; i++) {
                if (i < len && s[i] != '.')
                        continue;
                if (i == start || !(isalpha((unsigned char)s[start]) || s[start] == '_'))
                        return false;
                for (size_t k = start + 1; k < i; k++)
                        if (!(isalnum((unsigned char)s[k]) || s[k] == '_'))
                                return false;
                start = i + 1;
        }
        return true;
}

/* vbus__name_is_service() and vbus__name_is_method() agree with the reference on every string of
 * up to 4 bytes over an alphabet of the bytes at and around each class's edge. */
static void test_name_service_matches_reference(void **state)
{
        static const char alpha[] = {'a', 'z',    'A',    'Z',    '0',    '9',   '_',
                                     '.', '-',    '/',    '@',    '[',    '`',   '{',
                                     ' ', '\x80', '\xc1', '\xe1', '\xfa', '\xff'};
        const size_t n = sizeof(alpha);
        char buf[8];

        (void)state;
        for (size_t len = 1; len <= 4; len++) {
                size_t total = 1;

                for (size_t i = 0; i < len; i++)
                        total *= n;
                for (size_t v = 0; v < total; v++) {
                        size_t x = v;

                        for (size_t i = 0; i < len; i++, x /= n)
                                buf[i] = alpha[x % n];
                        assert_int_equal(vbus__name_is_service(buf, len), ref_is_service(buf, len));
                }
        }
        /* A method: a service, '/', an identifier. */
        assert_true(vbus__name_is_method("a._b.C9/_x1", 11));
        assert_false(vbus__name_is_method("a..b/x", 6));
        assert_false(vbus__name_is_method("a.b./x", 6));
        assert_false(vbus__name_is_method("a.b/9x", 6));
        assert_false(vbus__name_is_service("a", 0));
        assert_false(vbus__name_is_service(NULL, 1));
        {
                char longest[VBUS_NAME_MAX + 1];

                memset(longest, 'a', sizeof(longest));
                assert_true(vbus__name_is_service(longest, VBUS_NAME_MAX));
                assert_false(vbus__name_is_service(longest, VBUS_NAME_MAX + 1));
        }
}

static void test_name_grammar(void **state)
{
#define T(f, s) f(s, strlen(s))
        assert_true(T(vbus__name_is_topic, "a"));
        assert_true(T(vbus__name_is_topic, "sensors.kitchen-1.temp_c"));
        assert_false(T(vbus__name_is_topic, "a..b"));
        assert_false(T(vbus__name_is_topic, ".a"));
        assert_false(T(vbus__name_is_topic, "a."));
        assert_false(T(vbus__name_is_topic, "a b"));
        assert_false(T(vbus__name_is_topic, "a.*"));
        assert_false(T(vbus__name_is_topic, ""));
        assert_true(T(vbus__name_is_topic, "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p"));    /* 16 tokens */
        assert_false(T(vbus__name_is_topic, "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q")); /* 17 */
        assert_true(T(vbus__name_is_pattern, "a.*.c"));
        assert_true(T(vbus__name_is_pattern, ">"));
        assert_true(T(vbus__name_is_pattern, "a.>"));
        assert_false(T(vbus__name_is_pattern, "a.>.c"));
        assert_false(T(vbus__name_is_pattern, "a.b*"));
        assert_false(T(vbus__name_is_pattern, "a.>>"));
        assert_true(T(vbus__name_is_service, "storage.v1.Store"));
        assert_false(T(vbus__name_is_service, "storage.1v.Store"));
        assert_false(T(vbus__name_is_service, "storage-v1"));
        assert_true(T(vbus__name_is_method, "storage.v1.Store/Get"));
        assert_false(T(vbus__name_is_method, "storage.v1.Store/"));
        assert_false(T(vbus__name_is_method, "/Get"));
        assert_false(T(vbus__name_is_method, "a/b/c"));
        assert_true(T(vbus__name_is_header_key, "x-trace.id_1"));
        assert_false(T(vbus__name_is_header_key, "X"));
        /* Never reads past len: a valid prefix of an invalid buffer. */
        assert_true(vbus__name_is_topic("ab cd", 2));
        assert_false(vbus__name_is_topic(NULL, 0));
#undef T
}

/* vbus__meta_const_len(): the topic and sender lead, and nothing after them names 1 or 2. */
static void test_meta_const_len(void **state)
{
        Vbus__V1__Meta m = VBUS__V1__META__INIT;
        Vbus__V1__Identity id = VBUS__V1__IDENTITY__INIT;
        uint8_t buf[256];
        size_t n, n_const;

        (void)state;
        m.topic = (char *)"a.b";
        id.domid = 7;
        m.sender = &id;
        n_const = vbus__v1__meta__pack(&m, buf);
        m.sequence = 300;
        m.dropped = 2;
        n = vbus__v1__meta__pack(&m, buf);
        /* The encoder writes fields in order: the first n_const bytes are topic and sender. */
        assert_int_equal(vbus__meta_const_len(buf, n), n_const);
        assert_int_equal(vbus__meta_const_len(buf, n_const), n_const);
        /* No leading field 1 or 2: nothing to share. */
        assert_int_equal(vbus__meta_const_len(buf + n_const, n - n_const), 0);
        assert_int_equal(vbus__meta_const_len(NULL, 0), 0);
        /* A topic after a counter: the split would change what decodes. */
        buf[n] = 0x0a;
        buf[n + 1] = 1;
        buf[n + 2] = 'x';
        assert_int_equal(vbus__meta_const_len(buf, n + 3), 0);
        /* Field 1 as a varint, a group, a truncated length, an overlong varint. */
        assert_int_equal(vbus__meta_const_len((const uint8_t[]){0x08, 0x01}, 2), 0);
        assert_int_equal(vbus__meta_const_len((const uint8_t[]){0x0a, 0x01, 'a', 0x1b}, 4), 0);
        assert_int_equal(vbus__meta_const_len((const uint8_t[]){0x0a, 0x05, 'a'}, 3), 0);
        assert_int_equal(vbus__meta_const_len((const uint8_t[]){0x0a, 0x01, 'a', 0x18, 0xff, 0xff,
                                                                0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                                0xff, 0xff, 0x01},
                                              15),
                         0);
        /* Fixed-width unknown fields after the leading part are skipped. */
        assert_int_equal(vbus__meta_const_len((const uint8_t[]){0x0a, 0x01, 'a', 0x35, 1, 2, 3, 4,
                                                                0x31, 1, 2, 3, 4, 5, 6, 7, 8},
                                              17),
                         3);
        assert_int_equal(vbus__meta_const_len((const uint8_t[]){0x0a, 0x01, 'a', 0x35, 1, 2}, 6),
                         0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hello_roundtrip),
                cmocka_unit_test(test_hello_version_rules),
                cmocka_unit_test(test_hello_max_frame_limits),
                cmocka_unit_test(test_hello_string_limits),
                cmocka_unit_test(test_open_roundtrip_each_kind),
                cmocka_unit_test(test_open_kind_rules),
                cmocka_unit_test(test_open_subscribe_fields_only_on_subscribe),
                cmocka_unit_test(test_open_call_fields_only_on_call),
                cmocka_unit_test(test_open_name_length_limits),
                cmocka_unit_test(test_open_header_limits),
                cmocka_unit_test(test_accept_reject_end_reset),
                cmocka_unit_test(test_credit_limits),
                cmocka_unit_test(test_ping_goaway_error),
                cmocka_unit_test(test_empty_payload_uses_defaults),
                cmocka_unit_test(test_malformed_protobuf),
                cmocka_unit_test(test_embedded_nul_in_string_rejected),
                cmocka_unit_test(test_decode_budget_enforced),
                cmocka_unit_test(test_decode_invalid_arguments),
                cmocka_unit_test(test_encode_errors),
                cmocka_unit_test(test_encode_split_segments),
                cmocka_unit_test(test_meta_prefix),
                cmocka_unit_test(test_meta_const_len),
                cmocka_unit_test(test_name_grammar),
                cmocka_unit_test(test_name_service_matches_reference),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
