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
        uint32_t id = open_accepted(p, 1000);

        assert_int_equal(send_frame(&p->client, VBUS_FRAME_DATA, VBUS_FLAG_META, id, 5, NULL, NULL),
                         -EINVAL);
        assert_int_equal(
                recv_frame(&p->broker, VBUS_FRAME_DATA, VBUS_FLAG_META, id, 5, NULL, NULL, NULL),
                VBUS_FRAME_E_SEMANTIC);
        xfer(&p->broker, &p->client, VBUS_FRAME_DATA, VBUS_FLAG_META | VBUS_FLAG_MORE, id, 5, NULL);
        /* META in the middle of a message. */
        assert_int_equal(
                recv_frame(&p->client, VBUS_FRAME_DATA, VBUS_FLAG_META, id, 5, NULL, NULL, NULL),
                VBUS_FRAME_E_SEMANTIC);
        xfer(&p->broker, &p->client, VBUS_FRAME_DATA, 0, id, 5, NULL);
        xfer(&p->broker, &p->client, VBUS_FRAME_DATA, VBUS_FLAG_META, id, 5, NULL);
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
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
