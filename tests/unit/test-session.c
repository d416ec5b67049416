/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for libbus/session.c: the HELLO exchange, stream-id rules, the stream lifecycle and
 * flow control of docs/protocol.md sections 3 and 5, each rule from both sides (a peer that
 * breaks it is a protocol violation; our own code breaking it is refused with -EINVAL).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth.h"
#include "session.h"

/* Delivers a frame to @s as if the peer had sent it. */
static int recv_frame(VbusSession *s, uint8_t type, uint8_t flags, uint32_t stream, uint32_t length,
                      const ProtobufCMessage *msg, VbusStream **ret_st, bool *ret_closed)
{
        VbusFrame f = {.header = {.type = type,
                                  .flags = flags,
                                  .length = length,
                                  .stream_id = stream,
                                  .session_id = s->session_id}};
        VbusControl c = {.type = type, .msg = (ProtobufCMessage *)msg};
        VbusStream *st;
        bool closed;

        return vbus__session_recv(s, &f, type == VBUS_FRAME_DATA ? NULL : &c, ret_st ? ret_st : &st,
                                  ret_closed ? ret_closed : &closed);
}

static int send_frame(VbusSession *s, uint8_t type, uint8_t flags, uint32_t stream, uint32_t length,
                      const ProtobufCMessage *msg, bool *ret_closed)
{
        VbusFrameHeader h = {.type = type,
                             .flags = flags,
                             .length = length,
                             .stream_id = stream,
                             .session_id = s->session_id};

        return vbus__session_send(s, &h, msg, NULL, ret_closed);
}

/* Sends from @a and delivers to @b: both must accept. */
static void xfer(VbusSession *a, VbusSession *b, uint8_t type, uint8_t flags, uint32_t stream,
                 uint32_t length, const ProtobufCMessage *msg)
{
        assert_int_equal(send_frame(a, type, flags, stream, length, msg, NULL), 0);
        assert_int_equal(recv_frame(b, type, flags, stream, length, msg, NULL, NULL), 0);
}

static Vbus__V1__Hello hello(uint32_t version)
{
        Vbus__V1__Hello m = VBUS__V1__HELLO__INIT;

        m.version_min = 1;
        m.version_max = 1;
        m.version = version;
        m.max_frame = VBUS_FRAME_MAX_DEFAULT;
        return m;
}

static Vbus__V1__Open open_msg(Vbus__V1__StreamKind kind, const char *name, uint32_t credit)
{
        Vbus__V1__Open m = VBUS__V1__OPEN__INIT;

        m.kind = kind;
        m.name = (char *)name;
        m.initial_credit = credit;
        return m;
}

static Vbus__V1__Accept accept_msg(uint32_t credit)
{
        Vbus__V1__Accept m = VBUS__V1__ACCEPT__INIT;

        m.initial_credit = credit;
        return m;
}

static Vbus__V1__End end_msg(Vbus__V1__Status status)
{
        Vbus__V1__End m = VBUS__V1__END__INIT;

        m.status = status;
        return m;
}

static Vbus__V1__Credit credit_msg(uint32_t inc)
{
        Vbus__V1__Credit m = VBUS__V1__CREDIT__INIT;

        m.increment = inc;
        return m;
}

typedef struct Pair {
        VbusSession client, broker;
} Pair;

static int setup_pair(void **state)
{
        Pair *p = calloc(1, sizeof(*p));
        Vbus__V1__Hello hc = hello(0), hb = hello(1);

        assert_non_null(p);
        assert_int_equal(vbus__session_init(&p->client, VBUS_ROLE_CLIENT, 0, 65536, 64), 0);
        assert_int_equal(vbus__session_init(&p->broker, VBUS_ROLE_BROKER, 0, 65536, 64), 0);
        xfer(&p->client, &p->broker, VBUS_FRAME_HELLO, 0, 0, 0, &hc.base);
        xfer(&p->broker, &p->client, VBUS_FRAME_HELLO, 0, 0, 0, &hb.base);
        assert_true(vbus__session_is_ready(&p->client));
        assert_true(vbus__session_is_ready(&p->broker));
        *state = p;
        return 0;
}

static int teardown_pair(void **state)
{
        Pair *p = *state;

        vbus__session_deinit(&p->client);
        vbus__session_deinit(&p->broker);
        free(p);
        return 0;
}

/* Opens a PUBLISH stream from the client and accepts it with @credit. */
static uint32_t open_accepted(Pair *p, uint32_t credit)
{
        Vbus__V1__Open o = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "a.b", 65536);
        Vbus__V1__Accept a = accept_msg(credit);
        uint32_t id = vbus__session_next_id(&p->client);

        xfer(&p->client, &p->broker, VBUS_FRAME_OPEN, 0, id, 0, &o.base);
        xfer(&p->broker, &p->client, VBUS_FRAME_ACCEPT, 0, id, 0, &a.base);
        return id;
}

static void test_init_invalid_arguments(void **state)
{
        VbusSession s;

        assert_int_equal(vbus__session_init(&s, 0, 0, 65536, 1), -EINVAL);
        assert_int_equal(vbus__session_init(&s, VBUS_ROLE_CLIENT, 0, 65536, 0), -EINVAL);
        assert_int_equal(vbus__session_init(&s, VBUS_ROLE_CLIENT, 0, VBUS_FRAME_MAX_MIN - 1, 1),
                         -EINVAL);
        assert_int_equal(vbus__session_init(NULL, VBUS_ROLE_CLIENT, 0, 65536, 1), -EINVAL);
        vbus__session_deinit(NULL);
}

static void test_hello_exchange_negotiates(void **state)
{
        Pair *p = *state;

        assert_int_equal(p->client.version, 1);
        assert_int_equal(p->broker.version, 1);
        assert_int_equal(p->client.peer_max_frame, VBUS_FRAME_MAX_DEFAULT);
        assert_int_equal(p->broker.peer_max_frame, VBUS_FRAME_MAX_DEFAULT);
}

static void test_hello_order_rules(void **state)
{
        VbusSession c, b;
        Vbus__V1__Hello h0 = hello(0), h1 = hello(1), h2 = hello(2);
        Vbus__V1__Ping ping = VBUS__V1__PING__INIT;

        vbus__session_init(&c, VBUS_ROLE_CLIENT, 0, 65536, 4);
        vbus__session_init(&b, VBUS_ROLE_BROKER, 0, 65536, 4);
        /* The broker cannot speak first, and nothing but HELLO goes before HELLO. */
        assert_int_equal(send_frame(&b, VBUS_FRAME_HELLO, 0, 0, 0, &h1.base, NULL), -EINVAL);
        assert_int_equal(recv_frame(&c, VBUS_FRAME_HELLO, 0, 0, 0, &h1.base, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        assert_int_equal(send_frame(&c, VBUS_FRAME_PING, 0, 0, 0, &ping.base, NULL), -EINVAL);
        assert_int_equal(recv_frame(&b, VBUS_FRAME_PING, 0, 0, 0, &ping.base, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        /* A client HELLO that claims a chosen version. */
        assert_int_equal(recv_frame(&b, VBUS_FRAME_HELLO, 0, 0, 0, &h1.base, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        assert_int_equal(send_frame(&c, VBUS_FRAME_HELLO, 0, 0, 0, &h1.base, NULL), -EINVAL);
        xfer(&c, &b, VBUS_FRAME_HELLO, 0, 0, 0, &h0.base);
        /* Twice is once too many. */
        assert_int_equal(recv_frame(&b, VBUS_FRAME_HELLO, 0, 0, 0, &h0.base, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        /* The broker's answer must choose a version the client offered. */
        h2.version_max = 2;
        assert_int_equal(recv_frame(&c, VBUS_FRAME_HELLO, 0, 0, 0, &h2.base, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        xfer(&b, &c, VBUS_FRAME_HELLO, 0, 0, 0, &h1.base);
        assert_int_equal(send_frame(&c, VBUS_FRAME_HELLO, 0, 0, 0, &h0.base, NULL), -EINVAL);
        assert_int_equal(recv_frame(&c, VBUS_FRAME_HELLO, 0, 0, 0, &h1.base, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        vbus__session_deinit(&c);
        vbus__session_deinit(&b);
}

/* Both sessions after a HELLO exchange where the client set AUTH (@client_auth) and the broker
 * answered with it (@broker_auth). */
static void auth_pair(VbusSession *c, VbusSession *b, bool client_auth, bool broker_auth)
{
        Vbus__V1__Hello h0 = hello(0), h1 = hello(1);

        h0.features = client_auth ? VBUS_FEATURE_AUTH : 0;
        h1.features = broker_auth ? VBUS_FEATURE_AUTH : 0;
        assert_int_equal(vbus__session_init(c, VBUS_ROLE_CLIENT, 0, 65536, 4), 0);
        assert_int_equal(vbus__session_init(b, VBUS_ROLE_BROKER, 0, 65536, 4), 0);
        xfer(c, b, VBUS_FRAME_HELLO, 0, 0, 0, &h0.base);
        xfer(b, c, VBUS_FRAME_HELLO, 0, 0, 0, &h1.base);
}

/* protocol.md 3.1: one proof HELLO from the client, as its first frame after the broker's HELLO,
 * only when both set AUTH, carrying the chosen version. */
static void test_hello_auth_proof_rules(void **state)
{
        VbusSession c, b;
        Vbus__V1__Hello proof = hello(1), h0 = hello(0), h1 = hello(1);
        Vbus__V1__Ping ping = VBUS__V1__PING__INIT;

        (void)state;
        proof.features = VBUS_FEATURE_AUTH;
        auth_pair(&c, &b, true, true);
        /* The first HELLO's form (version 0) is not a proof. */
        assert_int_equal(send_frame(&c, VBUS_FRAME_HELLO, 0, 0, 0, &h0.base, NULL), -EINVAL);
        assert_int_equal(recv_frame(&b, VBUS_FRAME_HELLO, 0, 0, 0, &h0.base, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        /* The broker may not send one. */
        assert_int_equal(send_frame(&b, VBUS_FRAME_HELLO, 0, 0, 0, &h1.base, NULL), -EINVAL);
        xfer(&c, &b, VBUS_FRAME_HELLO, 0, 0, 0, &proof.base);
        /* Once. */
        assert_int_equal(send_frame(&c, VBUS_FRAME_HELLO, 0, 0, 0, &proof.base, NULL), -EINVAL);
        assert_int_equal(recv_frame(&b, VBUS_FRAME_HELLO, 0, 0, 0, &proof.base, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        vbus__session_deinit(&c);
        vbus__session_deinit(&b);

        /* After any other frame of the client's, too late. */
        auth_pair(&c, &b, true, true);
        xfer(&c, &b, VBUS_FRAME_PING, 0, 0, 0, &ping.base);
        assert_int_equal(send_frame(&c, VBUS_FRAME_HELLO, 0, 0, 0, &proof.base, NULL), -EINVAL);
        assert_int_equal(recv_frame(&b, VBUS_FRAME_HELLO, 0, 0, 0, &proof.base, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        vbus__session_deinit(&c);
        vbus__session_deinit(&b);

        /* Not negotiated: the client did not offer, or the broker did not answer with AUTH. */
        for (int i = 0; i < 2; i++) {
                auth_pair(&c, &b, i == 0, i == 1);
                assert_int_equal(send_frame(&c, VBUS_FRAME_HELLO, 0, 0, 0, &proof.base, NULL),
                                 -EINVAL);
                assert_int_equal(recv_frame(&b, VBUS_FRAME_HELLO, 0, 0, 0, &proof.base, NULL, NULL),
                                 VBUS_FRAME_E_SEMANTIC);
                vbus__session_deinit(&c);
                vbus__session_deinit(&b);
        }
}

static void test_error_allowed_before_hello(void **state)
{
        VbusSession b;
        Vbus__V1__Error e = VBUS__V1__ERROR__INIT;

        e.status = VBUS__V1__STATUS__STATUS_UNSUPPORTED;
        vbus__session_init(&b, VBUS_ROLE_BROKER, 0, 65536, 4);
        assert_int_equal(send_frame(&b, VBUS_FRAME_ERROR, 0, 0, 0, &e.base, NULL), 0);
        assert_int_equal(recv_frame(&b, VBUS_FRAME_ERROR, 0, 0, 0, &e.base, NULL, NULL), 0);
        vbus__session_deinit(&b);
}

static void test_session_id_must_match(void **state)
{
        Pair *p = *state;
        Vbus__V1__Ping ping = VBUS__V1__PING__INIT;
        VbusFrame f = {.header = {.type = VBUS_FRAME_PING, .session_id = 7}};
        VbusControl c = {.type = VBUS_FRAME_PING, .msg = &ping.base};
        VbusStream *st;
        bool closed;

        assert_int_equal(vbus__session_recv(&p->broker, &f, &c, &st, &closed),
                         VBUS_FRAME_E_SEMANTIC);
}

static void test_open_id_rules(void **state)
{
        Pair *p = *state;
        Vbus__V1__Open o = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE, "a.>", 1000);

        assert_int_equal(vbus__session_next_id(&p->client), 1);
        assert_int_equal(vbus__session_next_id(&p->broker), 2);
        /* Wrong parity, from either side. */
        assert_int_equal(recv_frame(&p->broker, VBUS_FRAME_OPEN, 0, 2, 0, &o.base, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        assert_int_equal(send_frame(&p->client, VBUS_FRAME_OPEN, 0, 2, 0, &o.base, NULL), -EINVAL);
        xfer(&p->client, &p->broker, VBUS_FRAME_OPEN, 0, 5, 0, &o.base);
        /* Ids strictly increase: 5 again, or 3 after 5, is a violation. */
        assert_int_equal(recv_frame(&p->broker, VBUS_FRAME_OPEN, 0, 5, 0, &o.base, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        assert_int_equal(recv_frame(&p->broker, VBUS_FRAME_OPEN, 0, 3, 0, &o.base, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        assert_int_equal(vbus__session_next_id(&p->client), 7);
}

static void test_open_kind_by_role(void **state)
{
        Pair *p = *state;
        Vbus__V1__Open sub = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE, "a.>", 1);
        Vbus__V1__Open call = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_CALL, "a.S/M", 1);
        Vbus__V1__Identity id = VBUS__V1__IDENTITY__INIT;

        /* The broker opens only calls. */
        assert_int_equal(send_frame(&p->broker, VBUS_FRAME_OPEN, 0, 2, 0, &sub.base, NULL),
                         -EINVAL);
        assert_int_equal(recv_frame(&p->client, VBUS_FRAME_OPEN, 0, 2, 0, &sub.base, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        call.caller = &id;
        xfer(&p->broker, &p->client, VBUS_FRAME_OPEN, 0, 4, 0, &call.base);
        /* Only the broker names a caller. */
        assert_int_equal(send_frame(&p->client, VBUS_FRAME_OPEN, 0, 1, 0, &call.base, NULL),
                         -EINVAL);
        assert_int_equal(recv_frame(&p->broker, VBUS_FRAME_OPEN, 0, 1, 0, &call.base, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
}

static void test_accept_reject_rules(void **state)
{
        Pair *p = *state;
        Vbus__V1__Open o = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "a.b", 10);
        Vbus__V1__Accept a = accept_msg(100);
        Vbus__V1__Reject rj = VBUS__V1__REJECT__INIT;
        bool closed = false;

        rj.status = VBUS__V1__STATUS__STATUS_PERMISSION_DENIED;
        xfer(&p->client, &p->broker, VBUS_FRAME_OPEN, 0, 1, 0, &o.base);
        /* The opener cannot accept its own stream. */
        assert_int_equal(send_frame(&p->client, VBUS_FRAME_ACCEPT, 0, 1, 0, &a.base, NULL),
                         -EINVAL);
        assert_int_equal(recv_frame(&p->broker, VBUS_FRAME_ACCEPT, 0, 1, 0, &a.base, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        xfer(&p->broker, &p->client, VBUS_FRAME_ACCEPT, 0, 1, 0, &a.base);
        /* A second answer. */
        assert_int_equal(recv_frame(&p->client, VBUS_FRAME_REJECT, 0, 1, 0, &rj.base, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        /* A rejected stream is closed on both sides. */
        xfer(&p->client, &p->broker, VBUS_FRAME_OPEN, 0, 3, 0, &o.base);
        assert_int_equal(send_frame(&p->broker, VBUS_FRAME_REJECT, 0, 3, 0, &rj.base, &closed), 0);
        assert_true(closed);
        assert_null(vbus__session_get_stream(&p->broker, 3));
        assert_int_equal(
                recv_frame(&p->client, VBUS_FRAME_REJECT, 0, 3, 0, &rj.base, NULL, &closed), 0);
        assert_true(closed);
        assert_null(vbus__session_get_stream(&p->client, 3));
}

static void test_window_before_and_after_accept(void **state)
{
        Pair *p = *state;
        Vbus__V1__Open o = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_CALL, "a.S/M", 500);
        Vbus__V1__Accept a = accept_msg(VBUS_OPEN_WINDOW + 100);

        xfer(&p->client, &p->broker, VBUS_FRAME_OPEN, 0, 1, 0, &o.base);
        /* Before ACCEPT the opener has VBUS_OPEN_WINDOW bytes; the acceptor may not send. */
        xfer(&p->client, &p->broker, VBUS_FRAME_DATA, 0, 1, 60000, NULL);
        xfer(&p->client, &p->broker, VBUS_FRAME_DATA, 0, 1, VBUS_OPEN_WINDOW - 10 - 60000, NULL);
        /* No frame may exceed the peer's max_frame, whatever the window. */
        assert_int_equal(send_frame(&p->client, VBUS_FRAME_DATA, 0, 1, VBUS_FRAME_MAX_DEFAULT + 1,
                                    NULL, NULL),
                         -EINVAL);
        assert_int_equal(send_frame(&p->client, VBUS_FRAME_DATA, 0, 1, 11, NULL, NULL), -EAGAIN);
        assert_int_equal(recv_frame(&p->broker, VBUS_FRAME_DATA, 0, 1, 11, NULL, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        assert_int_equal(send_frame(&p->broker, VBUS_FRAME_DATA, 0, 1, 1, NULL, NULL), -EINVAL);
        /* ACCEPT counts from the start of the stream: 100 + 10 bytes remain. */
        xfer(&p->broker, &p->client, VBUS_FRAME_ACCEPT, 0, 1, 0, &a.base);
        xfer(&p->client, &p->broker, VBUS_FRAME_DATA, 0, 1, 110, NULL);
        assert_int_equal(send_frame(&p->client, VBUS_FRAME_DATA, 0, 1, 1, NULL, NULL), -EAGAIN);
        /* The acceptor's window is the OPEN's credit. */
        xfer(&p->broker, &p->client, VBUS_FRAME_DATA, 0, 1, 500, NULL);
        assert_int_equal(send_frame(&p->broker, VBUS_FRAME_DATA, 0, 1, 1, NULL, NULL), -EAGAIN);
        assert_int_equal(recv_frame(&p->client, VBUS_FRAME_DATA, 0, 1, 1, NULL, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
}

static void test_negative_window_after_small_accept(void **state)
{
        Pair *p = *state;
        Vbus__V1__Open o = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "a.b", 0);
        Vbus__V1__Accept a = accept_msg(100);
        Vbus__V1__Credit c1 = credit_msg(50), c2 = credit_msg(60);

        xfer(&p->client, &p->broker, VBUS_FRAME_OPEN, 0, 1, 0, &o.base);
        xfer(&p->client, &p->broker, VBUS_FRAME_DATA, 0, 1, 200, NULL);
        xfer(&p->broker, &p->client, VBUS_FRAME_ACCEPT, 0, 1, 0, &a.base);
        assert_int_equal(vbus__session_get_stream(&p->client, 1)->send_window, -100);
        assert_int_equal(send_frame(&p->client, VBUS_FRAME_DATA, 0, 1, 0, NULL, NULL), -EAGAIN);
        xfer(&p->broker, &p->client, VBUS_FRAME_CREDIT, 0, 1, 0, &c1.base);
        xfer(&p->broker, &p->client, VBUS_FRAME_CREDIT, 0, 1, 0, &c2.base);
        xfer(&p->client, &p->broker, VBUS_FRAME_DATA, 0, 1, 10, NULL);
        assert_int_equal(send_frame(&p->client, VBUS_FRAME_DATA, 0, 1, 1, NULL, NULL), -EAGAIN);
}

/* Both sessions after a HELLO exchange where the client (@client) and the broker (@broker) set
 * MESSAGE_CHARGE or not. */
static void charge_pair(VbusSession *c, VbusSession *b, bool client, bool broker)
{
        Vbus__V1__Hello h0 = hello(0), h1 = hello(1);

        h0.features = client ? VBUS_FEATURE_MESSAGE_CHARGE : 0;
        h1.features = broker ? VBUS_FEATURE_MESSAGE_CHARGE : 0;
        assert_int_equal(vbus__session_init(c, VBUS_ROLE_CLIENT, 0, 65536, 4), 0);
        assert_int_equal(vbus__session_init(b, VBUS_ROLE_BROKER, 0, 65536, 4), 0);
        xfer(c, b, VBUS_FRAME_HELLO, 0, 0, 0, &h0.base);
        xfer(b, c, VBUS_FRAME_HELLO, 0, 0, 0, &h1.base);
}

/* protocol.md 5.4: in force only when both HELLOs set it, on both sides alike. */
static void test_message_charge_negotiated(void **state)
{
        (void)state;
        for (int i = 0; i < 4; i++) {
                VbusSession c, b;
                uint32_t want = i == 3 ? VBUS_MESSAGE_CHARGE : 0;

                charge_pair(&c, &b, i & 1, i & 2);
                assert_int_equal(vbus__session_msg_charge(&c), want);
                assert_int_equal(vbus__session_msg_charge(&b), want);
                vbus__session_deinit(&c);
                vbus__session_deinit(&b);
        }
}

/* protocol.md 5.4: a message's last frame costs its length plus the charge, a fragment its
 * length; an empty fragment is a violation; the window counts messages, empty ones too. */
static void test_message_charge_window(void **state)
{
        Vbus__V1__Open o = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "a.b", 0);
        Vbus__V1__Accept a = accept_msg(4 * VBUS_MESSAGE_CHARGE + 100);
        Vbus__V1__Credit cr = credit_msg(VBUS_MESSAGE_CHARGE);
        VbusSession c, b;
        VbusStream *st;

        (void)state;
        charge_pair(&c, &b, true, true);
        xfer(&c, &b, VBUS_FRAME_OPEN, 0, 1, 0, &o.base);
        xfer(&b, &c, VBUS_FRAME_ACCEPT, 0, 1, 0, &a.base);
        st = vbus__session_get_stream(&c, 1);
        /* A fragment of 100 bytes, then its empty last frame: 100 + 64. */
        xfer(&c, &b, VBUS_FRAME_DATA, VBUS_FLAG_MORE, 1, 100, NULL);
        assert_int_equal(st->send_window, 4 * VBUS_MESSAGE_CHARGE);
        xfer(&c, &b, VBUS_FRAME_DATA, 0, 1, 0, NULL);
        assert_int_equal(st->send_window, 3 * VBUS_MESSAGE_CHARGE);
        assert_int_equal(vbus__session_get_stream(&b, 1)->recv_window, 3 * VBUS_MESSAGE_CHARGE);
        /* An empty fragment: refused to send, a violation to receive. */
        assert_int_equal(send_frame(&c, VBUS_FRAME_DATA, VBUS_FLAG_MORE, 1, 0, NULL, NULL),
                         -EINVAL);
        assert_int_equal(recv_frame(&b, VBUS_FRAME_DATA, VBUS_FLAG_MORE, 1, 0, NULL, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        /* Three empty messages fit, a fourth does not: it waits (sending) or is a violation. */
        for (int i = 0; i < 3; i++)
                xfer(&c, &b, VBUS_FRAME_DATA, 0, 1, 0, NULL);
        assert_int_equal(st->send_window, 0);
        assert_int_equal(send_frame(&c, VBUS_FRAME_DATA, 0, 1, 0, NULL, NULL), -EAGAIN);
        assert_int_equal(recv_frame(&b, VBUS_FRAME_DATA, 0, 1, 0, NULL, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        /* A fragment of one byte still fits a window of one byte; its last frame waits for
         * the charge. */
        xfer(&b, &c, VBUS_FRAME_CREDIT, 0, 1, 0, &cr.base);
        xfer(&c, &b, VBUS_FRAME_DATA, VBUS_FLAG_MORE, 1, 1, NULL);
        assert_int_equal(send_frame(&c, VBUS_FRAME_DATA, 0, 1, 0, NULL, NULL), -EAGAIN);
        vbus__session_deinit(&c);
        vbus__session_deinit(&b);
}

/* Without the charge an empty frame costs nothing (the old rule, kept for old peers). */
static void test_no_charge_empty_is_free(void **state)
{
        Vbus__V1__Open o = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "a.b", 0);
        Vbus__V1__Accept a = accept_msg(0);
        VbusSession c, b;

        (void)state;
        charge_pair(&c, &b, true, false);
        xfer(&c, &b, VBUS_FRAME_OPEN, 0, 1, 0, &o.base);
        xfer(&b, &c, VBUS_FRAME_ACCEPT, 0, 1, 0, &a.base);
        for (int i = 0; i < 1000; i++)
                xfer(&c, &b, VBUS_FRAME_DATA, 0, 1, 0, NULL);
        xfer(&c, &b, VBUS_FRAME_DATA, VBUS_FLAG_MORE, 1, 0, NULL);
        assert_int_equal(vbus__session_get_stream(&c, 1)->send_window, 0);
        vbus__session_deinit(&c);
        vbus__session_deinit(&b);
}

static void test_credit_overflow_is_violation(void **state)
{
        Pair *p = *state;
        uint32_t id = open_accepted(p, VBUS_CREDIT_MAX - 10);
        Vbus__V1__Credit ok = credit_msg(10), over = credit_msg(1);

        xfer(&p->broker, &p->client, VBUS_FRAME_CREDIT, 0, id, 0, &ok.base);
        assert_int_equal(send_frame(&p->broker, VBUS_FRAME_CREDIT, 0, id, 0, &over.base, NULL),
                         -EINVAL);
        assert_int_equal(
                recv_frame(&p->client, VBUS_FRAME_CREDIT, 0, id, 0, &over.base, NULL, NULL),
                VBUS_FRAME_E_SEMANTIC);
}

static void test_meta_only_from_broker_and_first_fragment(void **state)
{
        Pair *p = *state;
        uint32_t id = open_accepted(p, 1000), call, sub;
        Vbus__V1__Open c = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_CALL, "a.S/M", 65536);
        Vbus__V1__Open o = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE, "a.>", 65536);
        Vbus__V1__Accept a = accept_msg(1000);

        /* Never from a client. */
        assert_int_equal(send_frame(&p->client, VBUS_FRAME_DATA, VBUS_FLAG_META, id, 5, NULL, NULL),
                         -EINVAL);
        assert_int_equal(
                recv_frame(&p->broker, VBUS_FRAME_DATA, VBUS_FLAG_META, id, 5, NULL, NULL, NULL),
                VBUS_FRAME_E_SEMANTIC);
        /* From the broker, not on a PUBLISH stream, nor on a call: a call's OPEN names its
         * caller, its messages carry no Meta. */
        assert_int_equal(send_frame(&p->broker, VBUS_FRAME_DATA, VBUS_FLAG_META, id, 5, NULL, NULL),
                         -EINVAL);
        assert_int_equal(
                recv_frame(&p->client, VBUS_FRAME_DATA, VBUS_FLAG_META, id, 5, NULL, NULL, NULL),
                VBUS_FRAME_E_SEMANTIC);
        call = vbus__session_next_id(&p->client);
        xfer(&p->client, &p->broker, VBUS_FRAME_OPEN, 0, call, 0, &c.base);
        xfer(&p->broker, &p->client, VBUS_FRAME_ACCEPT, 0, call, 0, &a.base);
        assert_int_equal(
                recv_frame(&p->client, VBUS_FRAME_DATA, VBUS_FLAG_META, call, 5, NULL, NULL, NULL),
                VBUS_FRAME_E_SEMANTIC);
        xfer(&p->broker, &p->client, VBUS_FRAME_DATA, 0, call, 5, NULL);
        /* On a subscription, on a message's first frame only. */
        sub = vbus__session_next_id(&p->client);
        xfer(&p->client, &p->broker, VBUS_FRAME_OPEN, 0, sub, 0, &o.base);
        xfer(&p->broker, &p->client, VBUS_FRAME_ACCEPT, 0, sub, 0, &a.base);
        xfer(&p->broker, &p->client, VBUS_FRAME_DATA, VBUS_FLAG_META | VBUS_FLAG_MORE, sub, 5,
             NULL);
        assert_int_equal(
                recv_frame(&p->client, VBUS_FRAME_DATA, VBUS_FLAG_META, sub, 5, NULL, NULL, NULL),
                VBUS_FRAME_E_SEMANTIC);
        xfer(&p->broker, &p->client, VBUS_FRAME_DATA, 0, sub, 5, NULL);
        xfer(&p->broker, &p->client, VBUS_FRAME_DATA, VBUS_FLAG_META, sub, 5, NULL);
}

static void test_retain_only_client_publish_first_fragment(void **state)
{
        Pair *p = *state;
        uint32_t id = open_accepted(p, 1000);
        Vbus__V1__Open o = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE, "a.>", 65536);
        Vbus__V1__Accept a = accept_msg(1000);
        uint32_t sub;

        /* On a PUBLISH stream, on a message's first frame: allowed. */
        xfer(&p->client, &p->broker, VBUS_FRAME_DATA, VBUS_FLAG_RETAIN, id, 5, NULL);
        xfer(&p->client, &p->broker, VBUS_FRAME_DATA, VBUS_FLAG_RETAIN | VBUS_FLAG_MORE, id, 5,
             NULL);
        /* Not on a later fragment. */
        assert_int_equal(
                recv_frame(&p->broker, VBUS_FRAME_DATA, VBUS_FLAG_RETAIN, id, 5, NULL, NULL, NULL),
                VBUS_FRAME_E_SEMANTIC);
        assert_int_equal(
                send_frame(&p->client, VBUS_FRAME_DATA, VBUS_FLAG_RETAIN, id, 5, NULL, NULL),
                -EINVAL);
        xfer(&p->client, &p->broker, VBUS_FRAME_DATA, 0, id, 5, NULL);
        /* Never from the broker. */
        assert_int_equal(
                recv_frame(&p->client, VBUS_FRAME_DATA, VBUS_FLAG_RETAIN, id, 5, NULL, NULL, NULL),
                VBUS_FRAME_E_SEMANTIC);
        /* Not on another kind of stream. */
        sub = vbus__session_next_id(&p->client);
        xfer(&p->client, &p->broker, VBUS_FRAME_OPEN, 0, sub, 0, &o.base);
        xfer(&p->broker, &p->client, VBUS_FRAME_ACCEPT, 0, sub, 0, &a.base);
        assert_int_equal(
                recv_frame(&p->broker, VBUS_FRAME_DATA, VBUS_FLAG_RETAIN, sub, 5, NULL, NULL, NULL),
                VBUS_FRAME_E_SEMANTIC);
}

static void test_end_half_close_and_close(void **state)
{
        Pair *p = *state;
        uint32_t id = open_accepted(p, 1000);
        Vbus__V1__End ok = end_msg(VBUS__V1__STATUS__STATUS_OK);
        bool closed = true;

        assert_int_equal(send_frame(&p->client, VBUS_FRAME_END, 0, id, 0, &ok.base, &closed), 0);
        assert_false(closed);
        assert_int_equal(recv_frame(&p->broker, VBUS_FRAME_END, 0, id, 0, &ok.base, NULL, &closed),
                         0);
        assert_false(closed);
        /* Nothing more from the client's side of the stream; the broker may still send. */
        assert_int_equal(send_frame(&p->client, VBUS_FRAME_DATA, 0, id, 1, NULL, NULL), -EINVAL);
        assert_int_equal(recv_frame(&p->broker, VBUS_FRAME_DATA, 0, id, 1, NULL, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        assert_int_equal(recv_frame(&p->broker, VBUS_FRAME_END, 0, id, 0, &ok.base, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        xfer(&p->broker, &p->client, VBUS_FRAME_DATA, 0, id, 1, NULL);
        assert_int_equal(send_frame(&p->broker, VBUS_FRAME_END, 0, id, 0, &ok.base, &closed), 0);
        assert_true(closed);
        assert_int_equal(recv_frame(&p->client, VBUS_FRAME_END, 0, id, 0, &ok.base, NULL, &closed),
                         0);
        assert_true(closed);
        assert_int_equal(p->client.n_streams, 0);
        assert_int_equal(p->broker.n_streams, 0);
}

static void test_end_in_middle_of_message(void **state)
{
        Pair *p = *state;
        uint32_t id = open_accepted(p, 1000);
        Vbus__V1__End ok = end_msg(VBUS__V1__STATUS__STATUS_OK);

        xfer(&p->client, &p->broker, VBUS_FRAME_DATA, VBUS_FLAG_MORE, id, 10, NULL);
        assert_int_equal(send_frame(&p->client, VBUS_FRAME_END, 0, id, 0, &ok.base, NULL), -EINVAL);
        assert_int_equal(recv_frame(&p->broker, VBUS_FRAME_END, 0, id, 0, &ok.base, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
}

static void test_frames_for_closed_streams_discarded(void **state)
{
        Pair *p = *state;
        uint32_t id = open_accepted(p, 1000);
        Vbus__V1__End rst = end_msg(VBUS__V1__STATUS__STATUS_CANCELLED);
        Vbus__V1__Credit c = credit_msg(5);
        Vbus__V1__Accept a = accept_msg(1);
        bool closed = false;

        assert_int_equal(send_frame(&p->client, VBUS_FRAME_RESET, 0, id, 0, &rst.base, &closed), 0);
        assert_true(closed);
        /* The broker's DATA and CREDIT crossed the RESET: the client drops them. */
        assert_int_equal(recv_frame(&p->client, VBUS_FRAME_DATA, 0, id, 5, NULL, NULL, NULL),
                         VBUS_SESSION_DISCARD);
        assert_int_equal(recv_frame(&p->client, VBUS_FRAME_CREDIT, 0, id, 0, &c.base, NULL, NULL),
                         VBUS_SESSION_DISCARD);
        assert_int_equal(recv_frame(&p->client, VBUS_FRAME_ACCEPT, 0, id, 0, &a.base, NULL, NULL),
                         VBUS_SESSION_DISCARD);
        /* A stream that was never opened is a violation, and our own sends on closed ones bugs. */
        assert_int_equal(recv_frame(&p->client, VBUS_FRAME_DATA, 0, id + 2, 5, NULL, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        assert_int_equal(send_frame(&p->client, VBUS_FRAME_DATA, 0, id, 1, NULL, NULL), -EINVAL);
        assert_int_equal(
                recv_frame(&p->broker, VBUS_FRAME_RESET, 0, id, 0, &rst.base, NULL, &closed), 0);
        assert_true(closed);
}

static void test_max_streams(void **state)
{
        VbusSession c, b;
        Vbus__V1__Hello h0 = hello(0), h1 = hello(1);
        Vbus__V1__Open o = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "a.b", 1);

        vbus__session_init(&c, VBUS_ROLE_CLIENT, 0, 65536, 100);
        vbus__session_init(&b, VBUS_ROLE_BROKER, 0, 65536, 2);
        xfer(&c, &b, VBUS_FRAME_HELLO, 0, 0, 0, &h0.base);
        xfer(&b, &c, VBUS_FRAME_HELLO, 0, 0, 0, &h1.base);
        xfer(&c, &b, VBUS_FRAME_OPEN, 0, 1, 0, &o.base);
        xfer(&c, &b, VBUS_FRAME_OPEN, 0, 3, 0, &o.base);
        assert_int_equal(send_frame(&c, VBUS_FRAME_OPEN, 0, 5, 0, &o.base, NULL), 0);
        /* Over the limit: the owner answers REJECT, the link stays; the id is used up. */
        assert_int_equal(recv_frame(&b, VBUS_FRAME_OPEN, 0, 5, 0, &o.base, NULL, NULL), -E2BIG);
        assert_int_equal(recv_frame(&b, VBUS_FRAME_OPEN, 0, 5, 0, &o.base, NULL, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        vbus__session_deinit(&c);
        vbus__session_deinit(&b);
}

/* The streams one side opens do not use up the other side's: a broker's calls toward a server
 * leave the server its own max_streams (issue 11, finding 4). */
static void test_max_streams_per_direction(void **state)
{
        VbusSession c, b;
        Vbus__V1__Hello h0 = hello(0), h1 = hello(1);
        Vbus__V1__Open pub = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "a.b", 1);
        Vbus__V1__Open call = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_CALL, "s.v1.S/M", 1);

        (void)state;
        vbus__session_init(&c, VBUS_ROLE_CLIENT, 0, 65536, 100);
        vbus__session_init(&b, VBUS_ROLE_BROKER, 0, 65536, 2);
        xfer(&c, &b, VBUS_FRAME_HELLO, 0, 0, 0, &h0.base);
        xfer(&b, &c, VBUS_FRAME_HELLO, 0, 0, 0, &h1.base);
        /* The broker opens its 2 toward the client... */
        xfer(&b, &c, VBUS_FRAME_OPEN, 0, 2, 0, &call.base);
        xfer(&b, &c, VBUS_FRAME_OPEN, 0, 4, 0, &call.base);
        /* ...and a third is its own limit. */
        assert_int_equal(send_frame(&b, VBUS_FRAME_OPEN, 0, 6, 0, &call.base, NULL), -E2BIG);
        /* The client still has its 2. */
        xfer(&c, &b, VBUS_FRAME_OPEN, 0, 1, 0, &pub.base);
        xfer(&c, &b, VBUS_FRAME_OPEN, 0, 3, 0, &pub.base);
        assert_int_equal(send_frame(&c, VBUS_FRAME_OPEN, 0, 5, 0, &pub.base, NULL), 0);
        assert_int_equal(recv_frame(&b, VBUS_FRAME_OPEN, 0, 5, 0, &pub.base, NULL, NULL), -E2BIG);
        vbus__session_deinit(&c);
        vbus__session_deinit(&b);
}

static void test_goaway_stops_new_streams(void **state)
{
        Pair *p = *state;
        Vbus__V1__GoAway g = VBUS__V1__GO_AWAY__INIT;
        Vbus__V1__Open o = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "a.b", 1);

        g.status = VBUS__V1__STATUS__STATUS_SHUTTING_DOWN;
        xfer(&p->broker, &p->client, VBUS_FRAME_GOAWAY, 0, 0, 0, &g.base);
        assert_true(p->broker.goaway_sent);
        assert_int_equal(send_frame(&p->client, VBUS_FRAME_OPEN, 0, 1, 0, &o.base, NULL), -EINVAL);
}

static void test_many_streams_table_consistent(void **state)
{
        VbusSession c, b;
        Vbus__V1__Hello h0 = hello(0), h1 = hello(1);
        Vbus__V1__Open o = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "a.b", 1);
        Vbus__V1__End rst = end_msg(VBUS__V1__STATUS__STATUS_CANCELLED);
        uint32_t live[300] = {0};
        unsigned seed = 7;

        vbus__session_init(&c, VBUS_ROLE_CLIENT, 0, 65536, 300);
        vbus__session_init(&b, VBUS_ROLE_BROKER, 0, 65536, 300);
        xfer(&c, &b, VBUS_FRAME_HELLO, 0, 0, 0, &h0.base);
        xfer(&b, &c, VBUS_FRAME_HELLO, 0, 0, 0, &h1.base);
        for (int round = 0; round < 20000; round++) {
                uint32_t k = (uint32_t)rand_r(&seed) % 300;

                if (live[k]) {
                        xfer(&c, &b, VBUS_FRAME_RESET, 0, live[k], 0, &rst.base);
                        assert_null(vbus__session_get_stream(&b, live[k]));
                        live[k] = 0;
                } else {
                        uint32_t id = vbus__session_next_id(&c);

                        xfer(&c, &b, VBUS_FRAME_OPEN, 0, id, 0, &o.base);
                        live[k] = id;
                }
                if (round % 1000 == 0)
                        for (uint32_t i = 0; i < 300; i++)
                                if (live[i])
                                        assert_non_null(vbus__session_get_stream(&b, live[i]));
        }
        vbus__session_deinit(&c);
        vbus__session_deinit(&b);
}

/* --- batches (protocol.md 5.5) ------------------------------------------------------------ */

enum {
        BOTH = VBUS_FEATURE_BATCH | VBUS_FEATURE_MESSAGE_CHARGE,
        SUB_ID = 3,   /* batch_pair(): the client's SUBSCRIBE */
        CALL_ID = 5,  /* the client's CALL */
        SERVE_ID = 7, /* the client's SERVE */
        BCALL_ID = 2, /* the broker's CALL toward the client as a server */
};

/*
 * Both sessions after a HELLO exchange with the features @fc (client) and @fb (broker), with one
 * stream of each kind open and accepted with @credit each way: PUBLISH 1, SUBSCRIBE 3, CALL 5,
 * SERVE 7 from the client, CALL 2 from the broker.
 */
static void batch_pair(VbusSession *c, VbusSession *b, uint32_t fc, uint32_t fb, uint32_t credit)
{
        static const Vbus__V1__StreamKind kinds[] = {
                VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH,
                VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE,
                VBUS__V1__STREAM_KIND__STREAM_KIND_CALL,
                VBUS__V1__STREAM_KIND__STREAM_KIND_SERVE,
        };
        Vbus__V1__Hello h0 = hello(0), h1 = hello(1);
        Vbus__V1__Accept a = accept_msg(credit);
        Vbus__V1__Open bc = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_CALL, "s.S/M", credit);
        Vbus__V1__Identity caller = VBUS__V1__IDENTITY__INIT;

        h0.features = fc;
        h1.features = fb;
        assert_int_equal(vbus__session_init(c, VBUS_ROLE_CLIENT, 0, 65536, 8), 0);
        assert_int_equal(vbus__session_init(b, VBUS_ROLE_BROKER, 0, 65536, 8), 0);
        xfer(c, b, VBUS_FRAME_HELLO, 0, 0, 0, &h0.base);
        xfer(b, c, VBUS_FRAME_HELLO, 0, 0, 0, &h1.base);
        for (uint32_t i = 0; i < 4; i++) {
                Vbus__V1__Open o = open_msg(kinds[i], i == 1 ? "a.>" : "a.b", credit);

                xfer(c, b, VBUS_FRAME_OPEN, 0, 1 + 2 * i, 0, &o.base);
                xfer(b, c, VBUS_FRAME_ACCEPT, 0, 1 + 2 * i, 0, &a.base);
        }
        bc.caller = &caller;
        xfer(b, c, VBUS_FRAME_OPEN, 0, BCALL_ID, 0, &bc.base);
        xfer(c, b, VBUS_FRAME_ACCEPT, 0, BCALL_ID, 0, &a.base);
}

static void batch_unpair(VbusSession *c, VbusSession *b)
{
        vbus__session_deinit(c);
        vbus__session_deinit(b);
}

/* Delivers a DATA frame with @payload to @s; *ret_n (if not NULL) gets the n_messages the session
 * wrote. The header's n_messages starts at @claimed, what a lying owner might have left in it. */
static int recv_payload(VbusSession *s, uint8_t flags, uint32_t stream, const uint8_t *payload,
                        uint32_t len, uint32_t claimed, uint32_t *ret_n)
{
        VbusFrame f = {.header = {.type = VBUS_FRAME_DATA,
                                  .flags = flags,
                                  .length = len,
                                  .stream_id = stream,
                                  .session_id = s->session_id,
                                  .n_messages = claimed},
                       .payload = payload};
        VbusStream *st;
        bool closed;
        int r = vbus__session_recv(s, &f, NULL, &st, &closed);

        if (ret_n)
                *ret_n = f.header.n_messages;
        return r;
}

/* Checks a batch header of @len bytes and @n messages from @s, then sends it. */
static int send_batch(VbusSession *s, uint8_t flags, uint32_t stream, uint32_t len, uint32_t n)
{
        VbusFrameHeader h = {.type = VBUS_FRAME_DATA,
                             .flags = flags | VBUS_FLAG_BATCH,
                             .length = len,
                             .stream_id = stream,
                             .session_id = s->session_id,
                             .n_messages = n};
        int r = vbus__session_check_data(s, &h);
        int r2 = vbus__session_send(s, &h, NULL, NULL, NULL);

        assert_int_equal(r, r2); /* the check and the send agree */
        return r2;
}

/* A valid batch: @n records of one byte each (2 bytes a record), after a Meta prefix of 2 bytes
 * when @meta. Returns its length. */
static uint32_t make_batch(uint8_t *buf, uint32_t n, bool meta)
{
        uint32_t len = 0;

        if (meta) {
                buf[len++] = 1;
                buf[len++] = 'M';
        }
        for (uint32_t i = 0; i < n; i++) {
                buf[len++] = 1;
                buf[len++] = (uint8_t)('a' + i % 26);
        }
        return len;
}

static int64_t recv_window(VbusSession *s, uint32_t id)
{
        return vbus__session_get_stream(s, id)->recv_window;
}

static int64_t send_window(VbusSession *s, uint32_t id)
{
        return vbus__session_get_stream(s, id)->send_window;
}

/* In force only when both HELLOs set BATCH and MESSAGE_CHARGE is in force: any one of the four
 * bits missing and a batch is refused both ways, whatever its bytes; with all four it passes. */
static void test_batch_negotiated(void **state)
{
        uint8_t pub[16], sub[16];
        uint32_t n_pub = make_batch(pub, 3, false), n_sub = make_batch(sub, 3, true);

        (void)state;
        for (uint32_t bits = 0; bits < 16; bits++) {
                VbusSession c, b;
                uint32_t fc = (bits & 1 ? VBUS_FEATURE_BATCH : 0) |
                              (bits & 2 ? VBUS_FEATURE_MESSAGE_CHARGE : 0);
                uint32_t fb = (bits & 4 ? VBUS_FEATURE_BATCH : 0) |
                              (bits & 8 ? VBUS_FEATURE_MESSAGE_CHARGE : 0);
                bool want = bits == 15;
                uint32_t n = 99;

                batch_pair(&c, &b, fc, fb, 4096);
                assert_int_equal(vbus__session_batch(&c), want);
                assert_int_equal(vbus__session_batch(&b), want);
                if (want) {
                        assert_int_equal(send_batch(&c, 0, 1, n_pub, 3), 0);
                        assert_int_equal(recv_payload(&b, VBUS_FLAG_BATCH, 1, pub, n_pub, 0, &n),
                                         0);
                        assert_int_equal(n, 3);
                        assert_int_equal(send_batch(&b, VBUS_FLAG_META, SUB_ID, n_sub, 3), 0);
                        assert_int_equal(recv_payload(&c, VBUS_FLAG_BATCH | VBUS_FLAG_META, SUB_ID,
                                                      sub, n_sub, 0, &n),
                                         0);
                        assert_int_equal(n, 3);
                } else {
                        int64_t wb = recv_window(&b, 1), wc = recv_window(&c, SUB_ID);

                        assert_int_equal(send_batch(&c, 0, 1, n_pub, 3), -EINVAL);
                        assert_int_equal(recv_payload(&b, VBUS_FLAG_BATCH, 1, pub, n_pub, 3, NULL),
                                         VBUS_FRAME_E_SEMANTIC);
                        assert_int_equal(send_batch(&b, VBUS_FLAG_META, SUB_ID, n_sub, 3), -EINVAL);
                        assert_int_equal(recv_payload(&c, VBUS_FLAG_BATCH | VBUS_FLAG_META, SUB_ID,
                                                      sub, n_sub, 3, NULL),
                                         VBUS_FRAME_E_SEMANTIC);
                        /* A refused batch charged nothing. */
                        assert_int_equal(recv_window(&b, 1), wb);
                        assert_int_equal(recv_window(&c, SUB_ID), wc);
                }
                batch_unpair(&c, &b);
        }
}

/* The receiver counts the records itself: whatever n_messages the owner left in the header, the
 * session writes the count of the payload and charges that; a plain DATA frame gets 0. */
static void test_batch_receiver_counts(void **state)
{
        VbusSession c, b;
        uint8_t buf[64];
        uint32_t len = make_batch(buf, 5, false), n = 0;

        (void)state;
        batch_pair(&c, &b, BOTH, BOTH, 4096);
        assert_int_equal(recv_payload(&b, VBUS_FLAG_BATCH, 1, buf, len, 1, &n), 0);
        assert_int_equal(n, 5);
        assert_int_equal(recv_window(&b, 1), 4096 - len - 5 * VBUS_MESSAGE_CHARGE);
        assert_int_equal(recv_payload(&b, 0, 1, buf, len, 7, &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(recv_window(&b, 1), 4096 - 2 * len - 6 * VBUS_MESSAGE_CHARGE);
        batch_unpair(&c, &b);
}

/* A batch is whole messages: never with MORE, never inside a message, never RETAIN; a refused
 * one charges nothing. */
static void test_batch_flags_refused(void **state)
{
        static const uint8_t bad_flags[] = {VBUS_FLAG_MORE, VBUS_FLAG_RETAIN,
                                            VBUS_FLAG_MORE | VBUS_FLAG_RETAIN};
        VbusSession c, b;
        uint8_t pub[16], sub[16];
        uint32_t n_pub = make_batch(pub, 2, false), n_sub = make_batch(sub, 2, true);

        (void)state;
        batch_pair(&c, &b, BOTH, BOTH, 4096);
        for (size_t i = 0; i < sizeof(bad_flags); i++) {
                int64_t wb = recv_window(&b, 1), wc = recv_window(&c, SUB_ID);

                assert_int_equal(send_batch(&c, bad_flags[i], 1, n_pub, 2), -EINVAL);
                assert_int_equal(
                        recv_payload(&b, VBUS_FLAG_BATCH | bad_flags[i], 1, pub, n_pub, 2, NULL),
                        VBUS_FRAME_E_SEMANTIC);
                assert_int_equal(send_batch(&b, VBUS_FLAG_META | bad_flags[i], SUB_ID, n_sub, 2),
                                 -EINVAL);
                assert_int_equal(recv_payload(&c, VBUS_FLAG_BATCH | VBUS_FLAG_META | bad_flags[i],
                                              SUB_ID, sub, n_sub, 2, NULL),
                                 VBUS_FRAME_E_SEMANTIC);
                assert_int_equal(recv_window(&b, 1), wb);
                assert_int_equal(recv_window(&c, SUB_ID), wc);
        }
        /* Inside a message: after a fragment with MORE, a batch is refused until it ends. */
        xfer(&c, &b, VBUS_FRAME_DATA, VBUS_FLAG_MORE, 1, 10, NULL);
        assert_int_equal(send_batch(&c, 0, 1, n_pub, 2), -EINVAL);
        assert_int_equal(recv_payload(&b, VBUS_FLAG_BATCH, 1, pub, n_pub, 2, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        xfer(&b, &c, VBUS_FRAME_DATA, VBUS_FLAG_META | VBUS_FLAG_MORE, SUB_ID, 10, NULL);
        assert_int_equal(send_batch(&b, VBUS_FLAG_META, SUB_ID, n_sub, 2), -EINVAL);
        assert_int_equal(
                recv_payload(&c, VBUS_FLAG_BATCH | VBUS_FLAG_META, SUB_ID, sub, n_sub, 2, NULL),
                VBUS_FRAME_E_SEMANTIC);
        /* The message ends; then a batch is fine. */
        xfer(&c, &b, VBUS_FRAME_DATA, 0, 1, 1, NULL);
        assert_int_equal(send_batch(&c, 0, 1, n_pub, 2), 0);
        assert_int_equal(recv_payload(&b, VBUS_FLAG_BATCH, 1, pub, n_pub, 0, NULL), 0);
        batch_unpair(&c, &b);
}

/* A client batches only on PUBLISH; the broker only on SUBSCRIBE, only with META. Every other
 * stream kind, and the broker without META, is refused both ways. */
static void test_batch_stream_kinds(void **state)
{
        static const uint32_t client_bad[] = {SUB_ID, CALL_ID, SERVE_ID, BCALL_ID};
        static const uint32_t broker_bad[] = {1, CALL_ID, SERVE_ID, BCALL_ID};
        VbusSession c, b;
        uint8_t raw[16], meta[16];
        uint32_t n_raw = make_batch(raw, 2, false), n_meta = make_batch(meta, 2, true);

        (void)state;
        batch_pair(&c, &b, BOTH, BOTH, 4096);
        for (size_t i = 0; i < sizeof(client_bad) / sizeof(client_bad[0]); i++) {
                uint32_t id = client_bad[i];

                assert_int_equal(send_batch(&c, 0, id, n_raw, 2), -EINVAL);
                assert_int_equal(recv_payload(&b, VBUS_FLAG_BATCH, id, raw, n_raw, 2, NULL),
                                 VBUS_FRAME_E_SEMANTIC);
        }
        for (size_t i = 0; i < sizeof(broker_bad) / sizeof(broker_bad[0]); i++) {
                uint32_t id = broker_bad[i];

                assert_int_equal(send_batch(&b, VBUS_FLAG_META, id, n_meta, 2), -EINVAL);
                assert_int_equal(recv_payload(&c, VBUS_FLAG_BATCH | VBUS_FLAG_META, id, meta,
                                              n_meta, 2, NULL),
                                 VBUS_FRAME_E_SEMANTIC);
                assert_int_equal(send_batch(&b, 0, id, n_raw, 2), -EINVAL);
                assert_int_equal(recv_payload(&c, VBUS_FLAG_BATCH, id, raw, n_raw, 2, NULL),
                                 VBUS_FRAME_E_SEMANTIC);
        }
        /* The broker on SUBSCRIBE without META (the records parse as records). */
        assert_int_equal(send_batch(&b, 0, SUB_ID, n_raw, 2), -EINVAL);
        assert_int_equal(recv_payload(&c, VBUS_FLAG_BATCH, SUB_ID, raw, n_raw, 2, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        /* A client never sends META, in a batch neither. */
        assert_int_equal(send_batch(&c, VBUS_FLAG_META, 1, n_meta, 2), -EINVAL);
        assert_int_equal(
                recv_payload(&b, VBUS_FLAG_BATCH | VBUS_FLAG_META, 1, meta, n_meta, 2, NULL),
                VBUS_FRAME_E_SEMANTIC);
        /* The right kinds still work after all that. */
        assert_int_equal(send_batch(&c, 0, 1, n_raw, 2), 0);
        assert_int_equal(recv_payload(&b, VBUS_FLAG_BATCH, 1, raw, n_raw, 0, NULL), 0);
        assert_int_equal(send_batch(&b, VBUS_FLAG_META, SUB_ID, n_meta, 2), 0);
        assert_int_equal(
                recv_payload(&c, VBUS_FLAG_BATCH | VBUS_FLAG_META, SUB_ID, meta, n_meta, 0, NULL),
                0);
        batch_unpair(&c, &b);
}

/* What a sender says it carries must be at least one message, and what a receiver gets must
 * parse: an empty batch is semantic, bad records malformed; neither charges anything. */
static void test_batch_malformed_and_empty(void **state)
{
        static const uint8_t past[] = {3, 'a'};
        static const uint8_t non_canonical[] = {0x80, 0x00};
        static const uint8_t meta_only[] = {1, 'M'};
        VbusSession c, b;
        uint8_t ok[8];
        uint32_t n_ok = make_batch(ok, 1, false);

        (void)state;
        batch_pair(&c, &b, BOTH, BOTH, 4096);
        assert_int_equal(send_batch(&c, 0, 1, n_ok, 0), -EINVAL);
        assert_int_equal(send_batch(&c, 0, 1, 0, 0), -EINVAL);
        assert_int_equal(recv_payload(&b, VBUS_FLAG_BATCH, 1, NULL, 0, 0, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        assert_int_equal(recv_payload(&b, VBUS_FLAG_BATCH, 1, past, sizeof(past), 1, NULL),
                         VBUS_FRAME_E_MALFORMED);
        assert_int_equal(
                recv_payload(&b, VBUS_FLAG_BATCH, 1, non_canonical, sizeof(non_canonical), 1, NULL),
                VBUS_FRAME_E_MALFORMED);
        assert_int_equal(recv_window(&b, 1), 4096);
        assert_int_equal(send_batch(&b, VBUS_FLAG_META, SUB_ID, sizeof(meta_only), 0), -EINVAL);
        assert_int_equal(recv_payload(&c, VBUS_FLAG_BATCH | VBUS_FLAG_META, SUB_ID, meta_only,
                                      sizeof(meta_only), 1, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        assert_int_equal(recv_payload(&c, VBUS_FLAG_BATCH | VBUS_FLAG_META, SUB_ID, past,
                                      sizeof(past), 1, NULL),
                         VBUS_FRAME_E_MALFORMED);
        assert_int_equal(recv_window(&c, SUB_ID), 4096);
        batch_unpair(&c, &b);
}

/* The cost is the length plus the charge per record, both ways: a batch that fits exactly
 * empties the window; one byte or one record more waits (sending) or is a violation (receiving),
 * and charges nothing. */
static void test_batch_cost_and_window(void **state)
{
        VbusSession c, b;
        uint8_t pub[64], sub[64];
        uint32_t n_pub = make_batch(pub, 10, false), n_sub = make_batch(sub, 10, true);
        int64_t cost_pub = n_pub + 10 * VBUS_MESSAGE_CHARGE;
        int64_t cost_sub = n_sub + 10 * VBUS_MESSAGE_CHARGE;
        Vbus__V1__Credit one = credit_msg(1);

        (void)state;
        /* A window of the cost less one byte: refused; then one byte of credit: it fits. */
        assert_true(cost_sub > cost_pub);
        batch_pair(&c, &b, BOTH, BOTH, (uint32_t)cost_pub - 1);
        {
                Vbus__V1__Credit top = credit_msg((uint32_t)(cost_sub - cost_pub));

                xfer(&c, &b, VBUS_FRAME_CREDIT, 0, SUB_ID, 0, &top.base);
        }
        assert_int_equal(send_window(&c, 1), cost_pub - 1);
        assert_int_equal(send_window(&b, SUB_ID), cost_sub - 1);
        assert_int_equal(send_batch(&c, 0, 1, n_pub, 10), -EAGAIN);
        assert_int_equal(recv_payload(&b, VBUS_FLAG_BATCH, 1, pub, n_pub, 10, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        assert_int_equal(send_batch(&b, VBUS_FLAG_META, SUB_ID, n_sub, 10), -EAGAIN);
        assert_int_equal(
                recv_payload(&c, VBUS_FLAG_BATCH | VBUS_FLAG_META, SUB_ID, sub, n_sub, 10, NULL),
                VBUS_FRAME_E_SEMANTIC);
        assert_int_equal(recv_window(&b, 1), cost_pub - 1);
        assert_int_equal(recv_window(&c, SUB_ID), cost_sub - 1);
        xfer(&b, &c, VBUS_FRAME_CREDIT, 0, 1, 0, &one.base);
        xfer(&c, &b, VBUS_FRAME_CREDIT, 0, SUB_ID, 0, &one.base);
        assert_int_equal(send_batch(&c, 0, 1, n_pub, 10), 0);
        assert_int_equal(recv_payload(&b, VBUS_FLAG_BATCH, 1, pub, n_pub, 0, NULL), 0);
        assert_int_equal(send_batch(&b, VBUS_FLAG_META, SUB_ID, n_sub, 10), 0);
        assert_int_equal(
                recv_payload(&c, VBUS_FLAG_BATCH | VBUS_FLAG_META, SUB_ID, sub, n_sub, 0, NULL), 0);
        assert_int_equal(send_window(&c, 1), 0);
        assert_int_equal(recv_window(&b, 1), 0);
        assert_int_equal(send_window(&b, SUB_ID), 0);
        assert_int_equal(recv_window(&c, SUB_ID), 0);
        /* Even a batch of one empty record costs the charge: nothing fits a closed window. */
        assert_int_equal(send_batch(&c, 0, 1, 1, 1), -EAGAIN);
        assert_int_equal(recv_payload(&b, VBUS_FLAG_BATCH, 1, (const uint8_t[]){0}, 1, 1, NULL),
                         VBUS_FRAME_E_SEMANTIC);
        batch_unpair(&c, &b);
}

/* The attack the charge exists for: a batch of empty records (one byte each). Each costs the
 * charge, so a window of W bytes takes at most W / 65 of them; without the per-record charge a
 * 60000-byte frame would carry 60000 messages for 60000 bytes of window. */
static void test_batch_empty_records_charged(void **state)
{
        enum { N = 60000 };
        VbusSession c, b;
        uint8_t *zeros = calloc(N, 1);
        uint32_t n = 0, fit = 1000;

        (void)state;
        assert_non_null(zeros);
        batch_pair(&c, &b, BOTH, BOTH, fit * (1 + VBUS_MESSAGE_CHARGE));
        /* N empty records do not fit a window of 1000 of them, whatever their byte count. */
        assert_int_equal(send_batch(&c, 0, 1, N, N), -EAGAIN);
        assert_int_equal(recv_payload(&b, VBUS_FLAG_BATCH, 1, zeros, N, 1, &n),
                         VBUS_FRAME_E_SEMANTIC);
        /* Exactly 1000 fit, and cost 65 each. */
        assert_int_equal(send_batch(&c, 0, 1, fit, fit), 0);
        assert_int_equal(recv_payload(&b, VBUS_FLAG_BATCH, 1, zeros, fit, 1, &n), 0);
        assert_int_equal(n, fit);
        assert_int_equal(send_window(&c, 1), 0);
        assert_int_equal(recv_window(&b, 1), 0);
        free(zeros);
        batch_unpair(&c, &b);
}

/* Before ACCEPT the opener has VBUS_OPEN_WINDOW; a batch sent then is charged per record, and
 * the window after ACCEPT starts from the credit less that cost. */
static void test_batch_before_accept_charged(void **state)
{
        Vbus__V1__Hello h0 = hello(0), h1 = hello(1);
        Vbus__V1__Open o = open_msg(VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "a.b", 0);
        Vbus__V1__Accept a = accept_msg(10000);
        VbusSession c, b;
        uint8_t zeros[100] = {0};

        (void)state;
        h0.features = BOTH;
        h1.features = BOTH;
        assert_int_equal(vbus__session_init(&c, VBUS_ROLE_CLIENT, 0, 65536, 4), 0);
        assert_int_equal(vbus__session_init(&b, VBUS_ROLE_BROKER, 0, 65536, 4), 0);
        xfer(&c, &b, VBUS_FRAME_HELLO, 0, 0, 0, &h0.base);
        xfer(&b, &c, VBUS_FRAME_HELLO, 0, 0, 0, &h1.base);
        xfer(&c, &b, VBUS_FRAME_OPEN, 0, 1, 0, &o.base);
        assert_int_equal(send_batch(&c, 0, 1, sizeof(zeros), sizeof(zeros)), 0);
        assert_int_equal(recv_payload(&b, VBUS_FLAG_BATCH, 1, zeros, sizeof(zeros), 0, NULL), 0);
        assert_int_equal(send_window(&c, 1), VBUS_OPEN_WINDOW - 100 * (1 + VBUS_MESSAGE_CHARGE));
        assert_int_equal(recv_window(&b, 1), VBUS_OPEN_WINDOW - 100 * (1 + VBUS_MESSAGE_CHARGE));
        xfer(&b, &c, VBUS_FRAME_ACCEPT, 0, 1, 0, &a.base);
        assert_int_equal(send_window(&c, 1), 10000 - 100 * (1 + VBUS_MESSAGE_CHARGE));
        assert_int_equal(recv_window(&b, 1), 10000 - 100 * (1 + VBUS_MESSAGE_CHARGE));
        /* The open window bounds what an unaccepted stream can send in batches too: 1008 empty
         * records fit 65536 bytes at 65 each, 1009 do not. */
        {
                uint8_t *more = calloc(1009, 1);

                assert_non_null(more);
                xfer(&c, &b, VBUS_FRAME_OPEN, 0, 3, 0, &o.base);
                assert_int_equal(send_batch(&c, 0, 3, 1009, 1009), -EAGAIN);
                assert_int_equal(recv_payload(&b, VBUS_FLAG_BATCH, 3, more, 1009, 0, NULL),
                                 VBUS_FRAME_E_SEMANTIC);
                assert_int_equal(send_batch(&c, 0, 3, 1008, 1008), 0);
                assert_int_equal(recv_payload(&b, VBUS_FLAG_BATCH, 3, more, 1008, 0, NULL), 0);
                assert_int_equal(recv_window(&b, 3), VBUS_OPEN_WINDOW - 1008 * 65);
                free(more);
        }
        batch_unpair(&c, &b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_init_invalid_arguments),
                cmocka_unit_test_setup_teardown(test_hello_exchange_negotiates, setup_pair,
                                                teardown_pair),
                cmocka_unit_test(test_hello_order_rules),
                cmocka_unit_test(test_hello_auth_proof_rules),
                cmocka_unit_test(test_error_allowed_before_hello),
                cmocka_unit_test_setup_teardown(test_session_id_must_match, setup_pair,
                                                teardown_pair),
                cmocka_unit_test_setup_teardown(test_open_id_rules, setup_pair, teardown_pair),
                cmocka_unit_test_setup_teardown(test_open_kind_by_role, setup_pair, teardown_pair),
                cmocka_unit_test_setup_teardown(test_accept_reject_rules, setup_pair,
                                                teardown_pair),
                cmocka_unit_test_setup_teardown(test_window_before_and_after_accept, setup_pair,
                                                teardown_pair),
                cmocka_unit_test_setup_teardown(test_negative_window_after_small_accept, setup_pair,
                                                teardown_pair),
                cmocka_unit_test_setup_teardown(test_credit_overflow_is_violation, setup_pair,
                                                teardown_pair),
                cmocka_unit_test(test_message_charge_negotiated),
                cmocka_unit_test(test_message_charge_window),
                cmocka_unit_test(test_no_charge_empty_is_free),
                cmocka_unit_test_setup_teardown(test_meta_only_from_broker_and_first_fragment,
                                                setup_pair, teardown_pair),
                cmocka_unit_test_setup_teardown(test_retain_only_client_publish_first_fragment,
                                                setup_pair, teardown_pair),
                cmocka_unit_test_setup_teardown(test_end_half_close_and_close, setup_pair,
                                                teardown_pair),
                cmocka_unit_test_setup_teardown(test_end_in_middle_of_message, setup_pair,
                                                teardown_pair),
                cmocka_unit_test_setup_teardown(test_frames_for_closed_streams_discarded,
                                                setup_pair, teardown_pair),
                cmocka_unit_test(test_max_streams),
                cmocka_unit_test(test_max_streams_per_direction),
                cmocka_unit_test_setup_teardown(test_goaway_stops_new_streams, setup_pair,
                                                teardown_pair),
                cmocka_unit_test(test_many_streams_table_consistent),
                cmocka_unit_test(test_batch_negotiated),
                cmocka_unit_test(test_batch_receiver_counts),
                cmocka_unit_test(test_batch_flags_refused),
                cmocka_unit_test(test_batch_stream_kinds),
                cmocka_unit_test(test_batch_malformed_and_empty),
                cmocka_unit_test(test_batch_cost_and_window),
                cmocka_unit_test(test_batch_empty_records_charged),
                cmocka_unit_test(test_batch_before_accept_charged),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
