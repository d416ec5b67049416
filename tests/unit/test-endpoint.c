/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for libbus/wire/endpoint.c: a client endpoint and a broker endpoint over a
 * socketpair. Dispatch to the ops bound to a stream, ->closed exactly once (by a frame either
 * way, or at deinit), DATA refused by the session before anything is written, PING answered by
 * the endpoint itself, an op's error returned to the caller, and a violation reported with its
 * reason.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "endpoint.h"

typedef struct Obj {
        int n_accept, n_data, n_end, n_reset, n_closed;
        int last_status;       /* of the last END or RESET */
        char last_message[64]; /* of the last END or RESET ("" without one) */
        size_t bytes;
        int data_result; /* what the data op returns */
} Obj;

typedef struct Side {
        VbusEndpoint ep;
        int n_hello, n_open, n_wrote;
        Obj obj; /* bound to the streams this side accepts */
} Side;

typedef struct Fixture {
        Side client, broker;
        Obj objs[3]; /* bound to the client's streams: they outlive a test, up to teardown */
} Fixture;

static int obj_accept(void *o, VbusStream *vs, const Vbus__V1__Accept *m)
{
        ((Obj *)o)->n_accept++;
        return 0;
}

static int obj_data(void *o, VbusStream *vs, const VbusFrame *f)
{
        Obj *obj = o;

        obj->n_data++;
        obj->bytes += f->header.length;
        return obj->data_result;
}

static void obj_note_end(Obj *obj, const Vbus__V1__End *m)
{
        obj->last_status = m->status;
        (void)snprintf(obj->last_message, sizeof(obj->last_message), "%s",
                       m->message ? m->message : "");
}

static int obj_end(void *o, VbusStream *vs, const Vbus__V1__End *m)
{
        ((Obj *)o)->n_end++;
        obj_note_end(o, m);
        return 0;
}

static int obj_reset(void *o, VbusStream *vs, const Vbus__V1__End *m)
{
        ((Obj *)o)->n_reset++;
        obj_note_end(o, m);
        return 0;
}

static void obj_closed(void *o, VbusStream *vs)
{
        ((Obj *)o)->n_closed++;
}

static const VbusStreamOps obj_ops = {
        .accept = obj_accept,
        .data = obj_data,
        .end = obj_end,
        .reset = obj_reset,
        .closed = obj_closed,
};

static int side_hello(void *owner, const Vbus__V1__Hello *m)
{
        Side *s = owner;

        s->n_hello++;
        if (s->ep.session.role == VBUS_ROLE_BROKER) {
                Vbus__V1__Hello a = VBUS__V1__HELLO__INIT;

                a.version_min = a.version_max = a.version = 1;
                a.max_frame = 65536;
                return vbus__endpoint_send_control(&s->ep, VBUS_FRAME_HELLO, 0, 0, &a.base);
        }
        return 0;
}

static int side_open(void *owner, VbusStream *vs, const Vbus__V1__Open *m)
{
        Side *s = owner;
        Vbus__V1__Accept a = VBUS__V1__ACCEPT__INIT;

        s->n_open++;
        vbus__endpoint_bind(vs, &obj_ops, &s->obj);
        a.initial_credit = 100;
        return vbus__endpoint_send_control(&s->ep, VBUS_FRAME_ACCEPT, 0, vs->id, &a.base);
}

static void side_wrote(void *owner)
{
        ((Side *)owner)->n_wrote++;
}

static const VbusEndpointOps side_ops = {
        .hello = side_hello,
        .open = side_open,
        .wrote = side_wrote,
};

/* Runs both sides until neither reads a frame. */
static void pump(Fixture *fx)
{
        for (int i = 0; i < 20; i++) {
                int a = vbus__endpoint_process(&fx->client.ep, true, 64);
                int b = vbus__endpoint_process(&fx->broker.ep, true, 64);

                if (a < 0 || b < 0)
                        fail_msg("process: client %d broker %d (violation %d/%d type %d)", a, b,
                                 fx->client.ep.violation, fx->broker.ep.violation,
                                 fx->broker.ep.bad_type);
                (void)vbus__endpoint_flush(&fx->client.ep);
                (void)vbus__endpoint_flush(&fx->broker.ep);
                if (a == 0 && b == 0)
                        return;
        }
}

static int setup(void **state)
{
        Fixture *fx = calloc(1, sizeof(*fx));
        Vbus__V1__Hello h = VBUS__V1__HELLO__INIT;
        VbusTransport tc, tb;
        int sv[2];

        assert_non_null(fx);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        assert_int_equal(vbus__transport_init_unix(&tc, sv[0]), 0);
        assert_int_equal(vbus__transport_init_unix(&tb, sv[1]), 0);
        assert_int_equal(vbus__endpoint_init(&fx->client.ep, &tc, VBUS_ROLE_CLIENT, 65536, 8,
                                             &side_ops, &fx->client),
                         0);
        assert_int_equal(vbus__endpoint_init(&fx->broker.ep, &tb, VBUS_ROLE_BROKER, 65536, 2,
                                             &side_ops, &fx->broker),
                         0);
        h.version_min = h.version_max = 1;
        h.max_frame = 65536;
        assert_int_equal(
                vbus__endpoint_send_control(&fx->client.ep, VBUS_FRAME_HELLO, 0, 0, &h.base), 0);
        pump(fx);
        assert_int_equal(fx->broker.n_hello, 1);
        assert_int_equal(fx->client.n_hello, 1);
        assert_true(vbus__session_is_ready(&fx->client.ep.session));
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        Fixture *fx = *state;

        vbus__endpoint_deinit(&fx->client.ep);
        vbus__endpoint_deinit(&fx->broker.ep);
        free(fx);
        return 0;
}

static uint32_t open_publish(Fixture *fx, Obj *obj)
{
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;
        uint32_t id = 0;

        o.name = (char *)"a.b";
        o.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH;
        assert_int_equal(vbus__endpoint_open(&fx->client.ep, &o, &obj_ops, obj, &id), 0);
        assert_int_not_equal(id, 0);
        return id;
}

static int send_bytes(VbusEndpoint *e, uint32_t id, size_t n)
{
        static uint8_t buf[1024];
        struct iovec piece = {buf, n};

        return vbus__endpoint_send_data(e, id, 0, &piece, 1);
}

static void test_endpoint_dispatch_to_stream_ops(void **state)
{
        Fixture *fx = *state;
        Obj *mine = &fx->objs[0];
        uint32_t id = open_publish(fx, mine);

        assert_int_equal(send_bytes(&fx->client.ep, id, 10), 0);
        pump(fx);
        assert_int_equal(fx->broker.n_open, 1);
        assert_int_equal(mine->n_accept, 1);
        assert_int_equal(fx->broker.obj.n_data, 1);
        assert_int_equal(fx->broker.obj.bytes, 10);
}

static void test_endpoint_data_over_window_not_written(void **state)
{
        Fixture *fx = *state;
        Obj *mine = &fx->objs[0];
        uint32_t id = open_publish(fx, mine);
        int wrote;

        pump(fx); /* ACCEPT: the window is now 100 bytes */
        wrote = fx->client.n_wrote;
        assert_int_equal(send_bytes(&fx->client.ep, id, 101), -EAGAIN);
        assert_int_equal(fx->client.n_wrote, wrote);
        assert_int_equal(send_bytes(&fx->client.ep, id, 100), 0);
        assert_int_equal(send_bytes(&fx->client.ep, id, 1), -EAGAIN);
        pump(fx);
        assert_int_equal(fx->broker.obj.bytes, 100);
}

static void test_endpoint_data_after_end_refused(void **state)
{
        Fixture *fx = *state;
        Obj *mine = &fx->objs[0];
        uint32_t id = open_publish(fx, mine);
        int wrote;

        assert_int_equal(vbus__endpoint_send_end(&fx->client.ep, VBUS_FRAME_END, id,
                                                 VBUS__V1__STATUS__STATUS_OK, NULL),
                         0);
        wrote = fx->client.n_wrote;
        assert_int_equal(send_bytes(&fx->client.ep, id, 1), -EINVAL);
        assert_int_equal(send_bytes(&fx->client.ep, 999, 1), -ENOENT);
        assert_int_equal(fx->client.n_wrote, wrote);
        pump(fx);
        assert_int_equal(fx->broker.obj.n_end, 1);
        assert_int_equal(fx->broker.obj.n_data, 0);
}

static void test_endpoint_bad_control_changes_nothing(void **state)
{
        Fixture *fx = *state;
        Obj *mine = &fx->objs[0];
        uint32_t id = open_publish(fx, mine);
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;
        Vbus__V1__Header hdr = VBUS__V1__HEADER__INIT, *hdrs[1] = {&hdr};
        static uint8_t big[VBUS_CONTROL_MAX];
        uint32_t next = vbus__session_next_id(&fx->client.ep.session);
        uint32_t id2 = 0;
        int wrote = fx->client.n_wrote;

        /* END with status 0 (unspecified) breaks protocol.md's rules: refused, stream intact. */
        assert_int_equal(vbus__endpoint_send_end(&fx->client.ep, VBUS_FRAME_END, id, 0, NULL),
                         -EINVAL);
        assert_non_null(vbus__session_get_stream(&fx->client.ep.session, id));
        /* An OPEN that does not fit a control frame: no id used, no stream made. */
        o.name = (char *)"svc.v1.S/M";
        o.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_CALL;
        hdr.key = (char *)"k";
        hdr.value.data = big;
        hdr.value.len = sizeof(big);
        o.n_headers = 1;
        o.headers = hdrs;
        assert_int_equal(vbus__endpoint_open(&fx->client.ep, &o, &obj_ops, mine, &id2), -EMSGSIZE);
        assert_int_equal(id2, 0);
        assert_int_equal(vbus__session_next_id(&fx->client.ep.session), next);
        assert_int_equal(fx->client.n_wrote, wrote);
        pump(fx);
        assert_int_equal(fx->broker.n_open, 1);
}

static void test_endpoint_closed_once_each_way(void **state)
{
        Fixture *fx = *state;
        Obj *mine = &fx->objs[0];
        uint32_t id = open_publish(fx, mine);

        pump(fx);
        assert_int_equal(vbus__endpoint_send_end(&fx->client.ep, VBUS_FRAME_RESET, id,
                                                 VBUS__V1__STATUS__STATUS_CANCELLED, "bye"),
                         0);
        assert_int_equal(mine->n_closed, 1); /* inside the send */
        pump(fx);
        assert_int_equal(fx->broker.obj.n_reset, 1);
        assert_int_equal(fx->broker.obj.n_closed, 1);
        assert_int_equal(mine->n_reset, 0);
        assert_int_equal(mine->n_closed, 1);
}

static void test_endpoint_closed_at_deinit(void **state)
{
        Fixture *fx = *state;
        Obj *a = &fx->objs[0], *b = &fx->objs[1];

        (void)open_publish(fx, a);
        (void)open_publish(fx, b);
        pump(fx);
        vbus__endpoint_deinit(&fx->client.ep);
        assert_int_equal(a->n_closed, 1);
        assert_int_equal(b->n_closed, 1);
        /* The broker sees the link close. */
        assert_int_equal(vbus__endpoint_process(&fx->broker.ep, true, 64), -EPIPE);
        vbus__endpoint_deinit(&fx->broker.ep);
        assert_int_equal(fx->broker.obj.n_closed, 2);
        /* Deinit twice is not allowed: set up fresh ends for teardown. */
        {
                VbusTransport tc, tb;
                int sv[2];

                assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
                assert_int_equal(vbus__transport_init_unix(&tc, sv[0]), 0);
                assert_int_equal(vbus__transport_init_unix(&tb, sv[1]), 0);
                assert_int_equal(vbus__endpoint_init(&fx->client.ep, &tc, VBUS_ROLE_CLIENT, 65536,
                                                     8, &side_ops, &fx->client),
                                 0);
                assert_int_equal(vbus__endpoint_init(&fx->broker.ep, &tb, VBUS_ROLE_BROKER, 65536,
                                                     8, &side_ops, &fx->broker),
                                 0);
        }
}

static void test_endpoint_op_error_returned(void **state)
{
        Fixture *fx = *state;
        Obj *mine = &fx->objs[0];
        uint32_t id = open_publish(fx, mine);

        fx->broker.obj.data_result = 42;
        assert_int_equal(send_bytes(&fx->client.ep, id, 1), 0);
        assert_int_equal(vbus__endpoint_flush(&fx->client.ep), 0);
        /* OPEN is frame 1 (accepted), DATA frame 2: its op's code stops the loop. */
        assert_int_equal(vbus__endpoint_process(&fx->broker.ep, true, 64), 42);
}

static void test_endpoint_ping_answered(void **state)
{
        Fixture *fx = *state;
        Vbus__V1__Ping p = VBUS__V1__PING__INIT;
        int wrote = fx->broker.n_wrote;

        p.opaque = 7;
        assert_int_equal(
                vbus__endpoint_send_control(&fx->client.ep, VBUS_FRAME_PING, 0, 0, &p.base), 0);
        pump(fx);
        assert_int_equal(fx->broker.n_wrote, wrote + 1);
}

static void test_endpoint_stream_limit_rejected(void **state)
{
        Fixture *fx = *state;
        Obj *a = &fx->objs[0], *b = &fx->objs[1], *c = &fx->objs[2];

        /* The broker side allows 2 streams: the third OPEN is refused, the link stays. */
        (void)open_publish(fx, a);
        (void)open_publish(fx, b);
        (void)open_publish(fx, c);
        pump(fx);
        assert_int_equal(fx->broker.n_open, 2);
        assert_int_equal(a->n_accept + b->n_accept, 2);
        assert_int_equal(c->n_closed, 1); /* REJECT ended it (no reject op bound) */
        assert_null(vbus__session_get_stream(&fx->client.ep.session, 5));
}

static void test_endpoint_violation_reported(void **state)
{
        Fixture *fx = *state;
        Vbus__V1__Credit cr = VBUS__V1__CREDIT__INIT;
        VbusFrameHeader h = {.type = VBUS_FRAME_CREDIT, .stream_id = 41};

        /* CREDIT on a stream the client never opened (an id above its highest). */
        cr.increment = 1;
        assert_int_equal(vbus__link_write_control(&fx->client.ep.link, &h, &cr.base), 0);
        assert_int_equal(vbus__endpoint_flush(&fx->client.ep), 0);
        assert_int_equal(vbus__endpoint_process(&fx->broker.ep, true, 64), -EPROTO);
        assert_int_equal(fx->broker.ep.violation, VBUS_FRAME_E_SEMANTIC);
        assert_int_equal(fx->broker.ep.bad_type, VBUS_FRAME_CREDIT);
}

/* --- agent sessions (protocol.md 7): session endpoints on the fixture's links --------------- */

/* Where each link's owner routes the frames of other sessions (one session per side here). */
static Side *route_client, *route_broker;

static int route_to(Side *target, const VbusFrame *f, const VbusControl *ctl)
{
        if (!target || f->header.session_id != target->ep.session.session_id)
                return -ENOENT;
        return vbus__endpoint_dispatch(&target->ep, f, ctl);
}

static int client_foreign(void *owner, const VbusFrame *f, const VbusControl *ctl)
{
        return route_to(route_client, f, ctl);
}

static int broker_foreign(void *owner, const VbusFrame *f, const VbusControl *ctl)
{
        return route_to(route_broker, f, ctl);
}

static const VbusEndpointOps client_routing_ops = {
        .hello = side_hello,
        .open = side_open,
        .wrote = side_wrote,
        .foreign = client_foreign,
};

static const VbusEndpointOps broker_routing_ops = {
        .hello = side_hello,
        .open = side_open,
        .wrote = side_wrote,
        .foreign = broker_foreign,
};

static void session_hello(Side *s)
{
        Vbus__V1__Hello h = VBUS__V1__HELLO__INIT;

        h.version_min = h.version_max = 1;
        h.max_frame = 65536;
        assert_int_equal(vbus__endpoint_send_control(&s->ep, VBUS_FRAME_HELLO, 0, 0, &h.base), 0);
}

static void test_endpoint_session_init_refused(void **state)
{
        Fixture *fx = *state;
        VbusEndpoint e;

        assert_int_equal(vbus__endpoint_init_session(&e, &fx->client.ep.link, VBUS_ROLE_CLIENT, 0,
                                                     65536, 8, &side_ops, NULL),
                         -EINVAL);
        assert_int_equal(vbus__endpoint_init_session(&e, NULL, VBUS_ROLE_CLIENT, 3, 65536, 8,
                                                     &side_ops, NULL),
                         -EINVAL);
        assert_int_equal(vbus__endpoint_init_session(&e, &fx->client.ep.link, VBUS_ROLE_CLIENT, 3,
                                                     65536, 8, NULL, NULL),
                         -EINVAL);
}

static void test_endpoint_session_routed(void **state)
{
        Fixture *fx = *state;
        Side csess = {0}, bsess = {0};
        Obj *mine = &fx->objs[0];
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;
        uint32_t id = 0;

        assert_int_equal(vbus__endpoint_init_session(&csess.ep, &fx->client.ep.link,
                                                     VBUS_ROLE_CLIENT, 3, 65536, 8, &side_ops,
                                                     &csess),
                         0);
        assert_int_equal(vbus__endpoint_init_session(&bsess.ep, &fx->broker.ep.link,
                                                     VBUS_ROLE_BROKER, 3, 65536, 8, &side_ops,
                                                     &bsess),
                         0);
        route_client = &csess;
        route_broker = &bsess;
        fx->client.ep.ops = &client_routing_ops;
        fx->broker.ep.ops = &broker_routing_ops;
        session_hello(&csess);
        pump(fx);
        /* The session's HELLO reached the session, not the link's own session. */
        assert_int_equal(bsess.n_hello, 1);
        assert_int_equal(csess.n_hello, 1);
        assert_int_equal(fx->broker.n_hello, 1);
        assert_true(vbus__session_is_ready(&csess.ep.session));
        /* A stream of the session: ids and windows are the session's own. */
        o.name = (char *)"a.b";
        o.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH;
        assert_int_equal(vbus__endpoint_open(&csess.ep, &o, &obj_ops, mine, &id), 0);
        assert_int_equal(id, 1);
        assert_int_equal(send_bytes(&csess.ep, id, 10), 0);
        pump(fx);
        assert_int_equal(bsess.n_open, 1);
        assert_int_equal(fx->broker.n_open, 0);
        assert_int_equal(mine->n_accept, 1);
        assert_int_equal(bsess.obj.bytes, 10);
        /* Deinit of a session leaves the shared link to its owner: the link still works. */
        vbus__endpoint_deinit(&csess.ep);
        vbus__endpoint_deinit(&bsess.ep);
        route_client = route_broker = NULL;
        assert_int_equal(mine->n_closed, 1);
        fx->client.ep.ops = &side_ops;
        fx->broker.ep.ops = &side_ops;
        test_endpoint_ping_answered(state);
}

static void test_endpoint_session_without_foreign_is_violation(void **state)
{
        Fixture *fx = *state;
        Side csess = {0};

        assert_int_equal(vbus__endpoint_init_session(&csess.ep, &fx->client.ep.link,
                                                     VBUS_ROLE_CLIENT, 5, 65536, 8, &side_ops,
                                                     &csess),
                         0);
        session_hello(&csess);
        assert_int_equal(vbus__endpoint_flush(&fx->client.ep), 0);
        /* The broker side has no ->foreign: a frame of session 5 breaks rule 11. */
        assert_int_equal(vbus__endpoint_process(&fx->broker.ep, true, 64), -EPROTO);
        assert_int_equal(fx->broker.ep.violation, VBUS_FRAME_E_SEMANTIC);
        assert_int_equal(fx->broker.ep.bad_type, VBUS_FRAME_HELLO);
        vbus__endpoint_deinit(&csess.ep);
}

static void test_endpoint_send_sessionless(void **state)
{
        Fixture *fx = *state;
        Vbus__V1__GoAway g = VBUS__V1__GO_AWAY__INIT;
        Vbus__V1__Ping p = VBUS__V1__PING__INIT;

        g.status = VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED;
        /* Only GOAWAY and ERROR, and never for the endpoint's own session. */
        assert_int_equal(
                vbus__endpoint_send_sessionless(&fx->broker.ep, VBUS_FRAME_PING, 9, &p.base),
                -EINVAL);
        assert_int_equal(
                vbus__endpoint_send_sessionless(&fx->broker.ep, VBUS_FRAME_GOAWAY, 0, &g.base),
                -EINVAL);
        /* A status the peer would refuse is refused here. */
        g.status = 0;
        assert_int_equal(
                vbus__endpoint_send_sessionless(&fx->broker.ep, VBUS_FRAME_GOAWAY, 9, &g.base),
                -EINVAL);
        g.status = VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED;
        assert_int_equal(
                vbus__endpoint_send_sessionless(&fx->broker.ep, VBUS_FRAME_GOAWAY, 9, &g.base), 0);
        assert_int_equal(vbus__endpoint_flush(&fx->broker.ep), 0);
        /* The client, with no session 9 and no ->foreign, takes it for a violation. */
        assert_int_equal(vbus__endpoint_process(&fx->client.ep, true, 64), -EPROTO);
}

/*
 * vbus__endpoint_send_end() writes a short END or RESET (no message) without protobuf-c: the
 * frame must be as long as protobuf-c's encoding of the same End, and the peer must decode the
 * same status and message, for every status the session lets through and with or without a
 * message (which takes protobuf-c's path).
 */
static void test_endpoint_end_encoding_as_protobuf(void **state)
{
        static const char *const messages[] = {NULL, "", "why"};
        Fixture *fx = *state;
        int n_sent = 0;

        for (int status = -1; status <= 130; status++) {
                for (size_t k = 0; k < sizeof(messages) / sizeof(messages[0]); k++) {
                        Vbus__V1__End m = VBUS__V1__END__INIT;
                        Obj *mine = &fx->objs[1];
                        uint32_t id = open_publish(fx, mine);
                        uint64_t before;
                        int r;

                        pump(fx);
                        before = fx->client.ep.link.n_bytes_out;
                        m.status = status;
                        m.message = (char *)messages[k];
                        r = vbus__endpoint_send_end(&fx->client.ep, VBUS_FRAME_RESET, id, status,
                                                    messages[k]);
                        if (vbus__control_validate(VBUS_FRAME_RESET, &m.base) != 0) {
                                assert_int_equal(r, -EINVAL);
                                /* the stream stays open: end it for the next round */
                                assert_int_equal(vbus__endpoint_send_end(
                                                         &fx->client.ep, VBUS_FRAME_RESET, id,
                                                         VBUS__V1__STATUS__STATUS_CANCELLED, NULL),
                                                 0);
                                pump(fx);
                                continue;
                        }
                        assert_int_equal(r, 0);
                        assert_int_equal(fx->client.ep.link.n_bytes_out - before,
                                         VBUS_FRAME_HEADER_SIZE +
                                                 protobuf_c_message_get_packed_size(&m.base));
                        pump(fx);
                        assert_int_equal(fx->broker.obj.last_status, status);
                        assert_string_equal(fx->broker.obj.last_message,
                                            messages[k] ? messages[k] : "");
                        n_sent++;
                }
        }
        assert_true(n_sent > 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_endpoint_dispatch_to_stream_ops, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_endpoint_data_over_window_not_written, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_endpoint_data_after_end_refused, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_endpoint_bad_control_changes_nothing, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_endpoint_closed_once_each_way, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_endpoint_closed_at_deinit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_endpoint_op_error_returned, setup, teardown),
                cmocka_unit_test_setup_teardown(test_endpoint_ping_answered, setup, teardown),
                cmocka_unit_test_setup_teardown(test_endpoint_stream_limit_rejected, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_endpoint_violation_reported, setup, teardown),
                cmocka_unit_test_setup_teardown(test_endpoint_session_init_refused, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_endpoint_session_routed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_endpoint_session_without_foreign_is_violation,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_endpoint_send_sessionless, setup, teardown),
                cmocka_unit_test_setup_teardown(test_endpoint_end_encoding_as_protobuf, setup,
                                                teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
