/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for libbus/link.c and the UNIX side of libbus/transport.c, over a socketpair: whole
 * frames both ways, frames dribbled one byte at a time, control validation, garbage and a peer
 * that stops inside a frame, a peer whose close is a reset (its last frames still read), the
 * all-or-nothing write, and the bounded control backlog.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "link.h"

typedef struct Fixture {
        VbusLink link;
        int peer; /* raw socket of the other end */
} Fixture;

static int setup(void **state)
{
        Fixture *fx = calloc(1, sizeof(*fx));
        VbusTransport t;
        int sv[2];

        assert_non_null(fx);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        assert_int_equal(vbus__transport_init_unix(&t, sv[0]), 0);
        assert_int_equal(vbus__link_init(&fx->link, &t, 65536), 0);
        assert_int_equal(vbus__link_set_max_frame(&fx->link, 65536), 0);
        fx->peer = sv[1];
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        Fixture *fx = *state;

        vbus__link_deinit(&fx->link);
        if (fx->peer >= 0)
                close(fx->peer);
        free(fx);
        return 0;
}

static size_t encode_ping(uint8_t *buf, uint64_t opaque)
{
        Vbus__V1__Ping p = VBUS__V1__PING__INIT;
        VbusSegments out = {{buf, NULL}, {64, 0}};
        VbusFrameHeader h = {.type = VBUS_FRAME_PING};
        size_t n;

        p.opaque = opaque;
        assert_int_equal(vbus__control_encode(&h, &p.base, &out, &n), 0);
        return n;
}

static int next(Fixture *fx, VbusFrame *f, const VbusControl **c)
{
        int r = vbus__transport_process(&fx->link.transport);

        if (r < 0)
                return r;
        return vbus__link_next(&fx->link, f, c);
}

static void test_link_reads_control_and_data(void **state)
{
        Fixture *fx = *state;
        uint8_t buf[256];
        static const uint8_t hello[5] = "hello"; /* a payload: bytes, no NUL */
        size_t n = encode_ping(buf, 77);
        VbusFrameHeader dh = {.type = VBUS_FRAME_DATA, .stream_id = 1, .length = 5};
        VbusFrame f;
        const VbusControl *c;

        vbus__frame_header_encode(&dh, buf + n);
        memcpy(buf + n + VBUS_FRAME_HEADER_SIZE, hello, sizeof(hello));
        n += VBUS_FRAME_HEADER_SIZE + 5;
        assert_int_equal(write(fx->peer, buf, n), (ssize_t)n);
        assert_int_equal(next(fx, &f, &c), 1);
        assert_int_equal(f.header.type, VBUS_FRAME_PING);
        assert_non_null(c);
        assert_int_equal(((const Vbus__V1__Ping *)c->msg)->opaque, 77);
        assert_int_equal(vbus__link_next(&fx->link, &f, &c), 1);
        assert_int_equal(f.header.type, VBUS_FRAME_DATA);
        assert_null(c);
        assert_memory_equal(f.payload, "hello", 5);
        assert_int_equal(vbus__link_next(&fx->link, &f, &c), 0);
}

static void test_link_frames_dribbled_bytewise(void **state)
{
        Fixture *fx = *state;
        uint8_t buf[64];
        size_t n = encode_ping(buf, 123456789);
        VbusFrame f;
        const VbusControl *c;

        for (size_t i = 0; i + 1 < n; i++) {
                assert_int_equal(write(fx->peer, buf + i, 1), 1);
                assert_int_equal(next(fx, &f, &c), 0);
        }
        assert_int_equal(write(fx->peer, buf + n - 1, 1), 1);
        assert_int_equal(next(fx, &f, &c), 1);
        assert_int_equal(((const Vbus__V1__Ping *)c->msg)->opaque, 123456789);
}

static void test_link_garbage_is_violation(void **state)
{
        Fixture *fx = *state;
        VbusFrame f;
        const VbusControl *c;

        assert_int_equal(write(fx->peer, "\x16\x03\x01", 3), 3); /* a TLS hello */
        assert_int_equal(next(fx, &f, &c), -EPROTO);
        assert_int_equal(fx->link.violation, VBUS_FRAME_E_BAD_MAGIC);
}

static void test_link_invalid_control_is_violation(void **state)
{
        Fixture *fx = *state;
        uint8_t buf[64];
        /* CREDIT with increment 0 on stream 1 */
        VbusFrameHeader h = {.type = VBUS_FRAME_CREDIT, .stream_id = 1, .length = 0};
        VbusFrame f;
        const VbusControl *c;

        vbus__frame_header_encode(&h, buf);
        assert_int_equal(write(fx->peer, buf, VBUS_FRAME_HEADER_SIZE), VBUS_FRAME_HEADER_SIZE);
        assert_int_equal(next(fx, &f, &c), -EPROTO);
        assert_int_equal(fx->link.violation, VBUS_FRAME_E_SEMANTIC);
}

static void test_link_peer_closes_inside_frame(void **state)
{
        Fixture *fx = *state;
        uint8_t buf[64];
        size_t n = encode_ping(buf, 1);
        VbusFrame f;
        const VbusControl *c;

        assert_int_equal(write(fx->peer, buf, n - 1), (ssize_t)(n - 1));
        close(fx->peer);
        fx->peer = -1;
        assert_int_equal(next(fx, &f, &c), -EPIPE);
        assert_int_equal(fx->link.violation, VBUS_FRAME_E_MALFORMED);
}

static void test_link_clean_close(void **state)
{
        Fixture *fx = *state;
        VbusFrame f;
        const VbusControl *c;

        close(fx->peer);
        fx->peer = -1;
        assert_int_equal(next(fx, &f, &c), -EPIPE);
        assert_int_equal(fx->link.violation, 0);
}

/*
 * A peer that closes with bytes of ours unread: the kernel reports ECONNRESET once its last bytes
 * have been read, in the same pass of the read as those bytes. They are still frames: every one
 * comes out before the close (a guest agent relaying a publisher that closed at once lost its
 * last messages here).
 */
static void test_link_reset_by_peer_keeps_its_last_frames(void **state)
{
        Fixture *fx = *state;
        VbusFrameHeader h = {.type = VBUS_FRAME_DATA, .stream_id = 1, .length = 1};
        struct iovec one = {(void *)"x", 1};
        uint8_t buf[3 * 64];
        size_t n = 0;
        VbusFrame f;
        const VbusControl *c;

        for (uint64_t i = 1; i <= 3; i++)
                n += encode_ping(buf + n, i);
        assert_int_equal(write(fx->peer, buf, n), (ssize_t)n);
        /* Ours, left unread by the peer when it closes: the close becomes a reset. */
        assert_int_equal(vbus__link_write(&fx->link, &h, &one, 1), 0);
        assert_int_equal(vbus__link_flush(&fx->link), 0);
        close(fx->peer);
        fx->peer = -1;
        /* Read as a relay reads, without vbus__transport_process() first. */
        for (uint64_t i = 1; i <= 3; i++) {
                assert_int_equal(vbus__link_next(&fx->link, &f, &c), 1);
                assert_int_equal(f.header.type, VBUS_FRAME_PING);
                assert_int_equal(((const Vbus__V1__Ping *)c->msg)->opaque, i);
        }
        assert_int_equal(vbus__link_next(&fx->link, &f, &c), -EPIPE);
        assert_int_equal(fx->link.violation, 0);
}

static void test_link_write_roundtrip(void **state)
{
        Fixture *fx = *state;
        VbusFrameHeader h = {.type = VBUS_FRAME_DATA, .stream_id = 3, .length = 8};
        struct iovec pieces[2] = {{(void *)"abc", 3}, {(void *)"defgh", 5}};
        uint8_t buf[64];

        assert_int_equal(vbus__link_write(&fx->link, &h, pieces, 2), 0);
        assert_int_equal(vbus__link_flush(&fx->link), 0);
        assert_int_equal(read(fx->peer, buf, sizeof(buf)), VBUS_FRAME_HEADER_SIZE + 8);
        assert_memory_equal(buf + VBUS_FRAME_HEADER_SIZE, "abcdefgh", 8);
        h.length = 9;
        assert_int_equal(vbus__link_write(&fx->link, &h, pieces, 2), -EINVAL);
}

static void test_link_backlog_bounded_when_peer_never_reads(void **state)
{
        Fixture *fx = *state;
        Vbus__V1__Ping p = VBUS__V1__PING__INIT;
        VbusFrameHeader h = {.type = VBUS_FRAME_PING};
        VbusFrameHeader dh = {.type = VBUS_FRAME_DATA, .stream_id = 1, .length = 1};
        struct iovec one = {(void *)"x", 1};
        int r = 0;
        long n;

        /* Fill the socket and the transport buffer: the peer never reads. */
        for (n = 0; n < 10000000 && r == 0; n++) {
                r = vbus__link_write_control(&fx->link, &h, &p.base);
                if (r == 0 && n % 64 == 0)
                        (void)vbus__link_flush(&fx->link);
        }
        assert_int_equal(r, -ENOBUFS);
        assert_true(vbus__link_has_backlog(&fx->link));
        /* While control frames wait, data frames wait too (order is kept). */
        assert_int_equal(vbus__link_write(&fx->link, &dh, &one, 1), -EAGAIN);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_link_reads_control_and_data, setup, teardown),
                cmocka_unit_test_setup_teardown(test_link_frames_dribbled_bytewise, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_link_garbage_is_violation, setup, teardown),
                cmocka_unit_test_setup_teardown(test_link_invalid_control_is_violation, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_link_peer_closes_inside_frame, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_link_clean_close, setup, teardown),
                cmocka_unit_test_setup_teardown(test_link_reset_by_peer_keeps_its_last_frames,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_link_write_roundtrip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_link_backlog_bounded_when_peer_never_reads,
                                                setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
