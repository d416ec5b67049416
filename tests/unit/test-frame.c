/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for libbus/frame.c: every header rule of docs/protocol.md ("Receiving a frame"),
 * each field at its limit and one past it, split delivery at every byte offset, and garbage.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"

static VbusFrameHeader hdr(uint8_t type, uint8_t flags, uint32_t length, uint32_t stream,
                           uint32_t session)
{
        return (VbusFrameHeader){.type = type,
                                 .flags = flags,
                                 .length = length,
                                 .stream_id = stream,
                                 .session_id = session};
}

static int decode_raw(const VbusFrameHeader *h, uint32_t max)
{
        uint8_t raw[VBUS_FRAME_HEADER_SIZE];
        VbusFrameHeader out;

        vbus__frame_header_encode(h, raw);
        return vbus__frame_header_decode(raw, sizeof(raw), max, &out);
}

static void test_header_roundtrip_all_fields(void **state)
{
        VbusFrameHeader h =
                hdr(VBUS_FRAME_DATA, VBUS_FLAG_MORE | VBUS_FLAG_META, 1234, 0x7fffffff, 0xdeadbeef);
        uint8_t raw[VBUS_FRAME_HEADER_SIZE];
        VbusFrameHeader out;

        vbus__frame_header_encode(&h, raw);
        /* Byte for byte as docs/protocol.md lays it out, little-endian. */
        const uint8_t expect[] = {0xb5, 0x01, 0x05, 0x03, 0xd2, 0x04, 0x00, 0x00,
                                  0xff, 0xff, 0xff, 0x7f, 0xef, 0xbe, 0xad, 0xde};
        assert_memory_equal(raw, expect, sizeof(expect));
        assert_int_equal(vbus__frame_header_decode(raw, sizeof(raw), 4096, &out), 0);
        assert_int_equal(out.type, h.type);
        assert_int_equal(out.flags, h.flags);
        assert_int_equal(out.length, h.length);
        assert_int_equal(out.stream_id, h.stream_id);
        assert_int_equal(out.session_id, h.session_id);
}

static void test_header_decode_bad_magic(void **state)
{
        uint8_t raw[VBUS_FRAME_HEADER_SIZE];
        VbusFrameHeader h = hdr(VBUS_FRAME_PING, 0, 0, 0, 0), out;

        vbus__frame_header_encode(&h, raw);
        raw[0] = 0xb4;
        assert_int_equal(vbus__frame_header_decode(raw, sizeof(raw), 4096, &out),
                         VBUS_FRAME_E_BAD_MAGIC);
}

static void test_header_decode_bad_version(void **state)
{
        uint8_t raw[VBUS_FRAME_HEADER_SIZE];
        VbusFrameHeader h = hdr(VBUS_FRAME_PING, 0, 0, 0, 0), out;

        vbus__frame_header_encode(&h, raw);
        raw[1] = 0;
        assert_int_equal(vbus__frame_header_decode(raw, sizeof(raw), 4096, &out),
                         VBUS_FRAME_E_BAD_VERSION);
        raw[1] = 2;
        assert_int_equal(vbus__frame_header_decode(raw, sizeof(raw), 4096, &out),
                         VBUS_FRAME_E_BAD_VERSION);
}

static void test_header_decode_short_buffer(void **state)
{
        uint8_t raw[VBUS_FRAME_HEADER_SIZE] = {0xb5, 1, VBUS_FRAME_PING};
        VbusFrameHeader out;

        assert_int_equal(vbus__frame_header_decode(raw, 15, 4096, &out), -EINVAL);
        assert_int_equal(vbus__frame_header_decode(NULL, 16, 4096, &out), -EINVAL);
}

static void test_header_type_limits(void **state)
{
        VbusFrameHeader h;

        h = hdr(0, 0, 0, 1, 0);
        assert_int_equal(decode_raw(&h, 4096), VBUS_FRAME_E_UNKNOWN_TYPE);
        h = hdr(VBUS_FRAME_ERROR, 0, 0, 0, 0); /* highest defined type */
        assert_int_equal(decode_raw(&h, 4096), 0);
        h = hdr(VBUS_FRAME_TYPE_N, 0, 0, 1, 0); /* one past */
        assert_int_equal(decode_raw(&h, 4096), VBUS_FRAME_E_UNKNOWN_TYPE);
        h = hdr(0xff, 0, 0, 1, 0);
        assert_int_equal(decode_raw(&h, 4096), VBUS_FRAME_E_UNKNOWN_TYPE);
}

static void test_header_length_limits(void **state)
{
        VbusFrameHeader h;

        h = hdr(VBUS_FRAME_DATA, 0, 65536, 1, 0);
        assert_int_equal(decode_raw(&h, 65536), 0);
        h.length = 65537;
        assert_int_equal(decode_raw(&h, 65536), VBUS_FRAME_E_OVERSIZE);
        h.length = UINT32_MAX;
        assert_int_equal(decode_raw(&h, VBUS_FRAME_MAX_LIMIT), VBUS_FRAME_E_OVERSIZE);
        /* Control frames are bounded by VBUS_CONTROL_MAX whatever was negotiated. */
        h = hdr(VBUS_FRAME_OPEN, 0, VBUS_CONTROL_MAX, 1, 0);
        assert_int_equal(decode_raw(&h, 65536), 0);
        h.length = VBUS_CONTROL_MAX + 1;
        assert_int_equal(decode_raw(&h, 65536), VBUS_FRAME_E_OVERSIZE);
        /* Before HELLO the initial maximum applies. */
        h = hdr(VBUS_FRAME_DATA, 0, VBUS_FRAME_MAX_INITIAL + 1, 1, 0);
        assert_int_equal(decode_raw(&h, VBUS_FRAME_MAX_INITIAL), VBUS_FRAME_E_OVERSIZE);
}

static void test_header_flag_rules(void **state)
{
        VbusFrameHeader h;

        h = hdr(VBUS_FRAME_DATA, VBUS_FLAG_MORE | VBUS_FLAG_META | VBUS_FLAG_RETAIN, 0, 1, 0);
        assert_int_equal(decode_raw(&h, 4096), 0);
        /* BATCH is a DATA flag; whether it is negotiated is the session's rule. */
        h.flags = VBUS_FLAG_BATCH;
        assert_int_equal(decode_raw(&h, 4096), 0);
        h.flags = 0x10;
        assert_int_equal(decode_raw(&h, 4096), VBUS_FRAME_E_SEMANTIC);
        h.flags = 0x80;
        assert_int_equal(decode_raw(&h, 4096), VBUS_FRAME_E_SEMANTIC);
        h = hdr(VBUS_FRAME_PING, VBUS_FLAG_ACK, 0, 0, 0);
        assert_int_equal(decode_raw(&h, 4096), 0);
        h.flags = 0x02;
        assert_int_equal(decode_raw(&h, 4096), VBUS_FRAME_E_SEMANTIC);
        /* Every other type allows no flag at all. */
        for (int type = 1; type < VBUS_FRAME_TYPE_N; type++) {
                uint8_t t = (uint8_t)type;

                if (t == VBUS_FRAME_DATA || t == VBUS_FRAME_PING)
                        continue;
                bool link = t == VBUS_FRAME_HELLO || t == VBUS_FRAME_GOAWAY;
                h = hdr(t, 0x01, 0, link ? 0 : 1, 0);
                assert_int_equal(decode_raw(&h, 4096), VBUS_FRAME_E_SEMANTIC);
                h.flags = 0;
                assert_int_equal(decode_raw(&h, 4096), 0);
        }
}

static void test_header_stream_id_rules(void **state)
{
        VbusFrameHeader h;
        const uint8_t link_types[] = {VBUS_FRAME_HELLO, VBUS_FRAME_PING, VBUS_FRAME_GOAWAY};
        const uint8_t stream_types[] = {VBUS_FRAME_OPEN,  VBUS_FRAME_ACCEPT, VBUS_FRAME_REJECT,
                                        VBUS_FRAME_DATA,  VBUS_FRAME_END,    VBUS_FRAME_RESET,
                                        VBUS_FRAME_CREDIT};

        for (size_t i = 0; i < sizeof(link_types); i++) {
                h = hdr(link_types[i], 0, 0, 0, 0);
                assert_int_equal(decode_raw(&h, 4096), 0);
                h.stream_id = 1;
                assert_int_equal(decode_raw(&h, 4096), VBUS_FRAME_E_SEMANTIC);
        }
        for (size_t i = 0; i < sizeof(stream_types); i++) {
                h = hdr(stream_types[i], 0, 0, 0, 0);
                assert_int_equal(decode_raw(&h, 4096), VBUS_FRAME_E_SEMANTIC);
                h.stream_id = 0x7fffffff;
                assert_int_equal(decode_raw(&h, 4096), 0);
                h.stream_id = 0x80000000;
                assert_int_equal(decode_raw(&h, 4096), VBUS_FRAME_E_SEMANTIC);
        }
        h = hdr(VBUS_FRAME_ERROR, 0, 0, 0, 0);
        assert_int_equal(decode_raw(&h, 4096), 0);
        h.stream_id = 7;
        assert_int_equal(decode_raw(&h, 4096), 0);
        h.stream_id = 0xffffffff;
        assert_int_equal(decode_raw(&h, 4096), VBUS_FRAME_E_SEMANTIC);
}

static void test_header_session_any_value(void **state)
{
        VbusFrameHeader h = hdr(VBUS_FRAME_DATA, 0, 0, 1, UINT32_MAX);

        assert_int_equal(decode_raw(&h, 4096), 0);
}

/* A stream of frames of various sizes used by the split tests. */
static size_t build_stream(uint8_t *buf, size_t size)
{
        VbusSegments out = {{buf, NULL}, {size, 0}};
        size_t off = 0, n;
        uint8_t payload[300];

        for (size_t i = 0; i < sizeof(payload); i++)
                payload[i] = (uint8_t)(i * 7);
        const struct {
                uint8_t type, flags;
                uint32_t len, stream;
        } frames[] = {
                {VBUS_FRAME_PING, 0, 0, 0},   {VBUS_FRAME_DATA, 0, 1, 1},
                {VBUS_FRAME_DATA, 1, 300, 3}, {VBUS_FRAME_CREDIT, 0, 5, 3},
                {VBUS_FRAME_DATA, 2, 17, 5},  {VBUS_FRAME_GOAWAY, 0, 0, 0},
        };
        for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
                VbusFrameHeader h = hdr(frames[i].type, frames[i].flags, frames[i].len,
                                        frames[i].stream, (uint32_t)i);
                VbusSegments o = {{out.base[0] + off, NULL}, {size - off, 0}};

                assert_int_equal(vbus__frame_encode(&h, payload, frames[i].len, &o, &n), 0);
                off += n;
        }
        return off;
}

/* Feeds [buf, buf+len) in the given chunking and records each frame's header and payload sum. */
typedef struct Seen {
        size_t n;
        VbusFrameHeader h[16];
        uint32_t sum[16];
} Seen;

static int feed_chunks(const uint8_t *buf, size_t len, const size_t *cuts, size_t n_cuts,
                       Seen *seen)
{
        VbusFrameDecoder d;
        size_t start = 0;
        int result = 0;

        vbus__frame_decoder_init(&d, 4096);
        memset(seen, 0, sizeof(*seen));
        for (size_t c = 0; c <= n_cuts && result == 0; c++) {
                size_t end = c < n_cuts ? cuts[c] : len;
                size_t pos = start;

                while (pos < end) {
                        VbusFrame f;
                        size_t used;
                        int r = vbus__frame_decoder_feed(&d, buf + pos, end - pos, &used, &f);

                        if (r < 0) {
                                result = r;
                                break;
                        }
                        pos += used;
                        if (r == 1) {
                                uint32_t sum = 0;

                                for (uint32_t k = 0; k < f.header.length; k++)
                                        sum = sum * 31 + f.payload[k];
                                seen->h[seen->n] = f.header;
                                seen->sum[seen->n] = sum;
                                seen->n++;
                        }
                }
                start = end;
        }
        vbus__frame_decoder_deinit(&d);
        return result;
}

static void assert_seen_equal(const Seen *a, const Seen *b)
{
        assert_int_equal(a->n, b->n);
        for (size_t i = 0; i < a->n; i++) {
                assert_int_equal(a->h[i].type, b->h[i].type);
                assert_int_equal(a->h[i].flags, b->h[i].flags);
                assert_int_equal(a->h[i].length, b->h[i].length);
                assert_int_equal(a->h[i].stream_id, b->h[i].stream_id);
                assert_int_equal(a->h[i].session_id, b->h[i].session_id);
                assert_int_equal(a->sum[i], b->sum[i]);
        }
}

static void test_decoder_split_every_offset(void **state)
{
        uint8_t buf[1024];
        size_t len = build_stream(buf, sizeof(buf));
        Seen whole, part;

        assert_int_equal(feed_chunks(buf, len, NULL, 0, &whole), 0);
        assert_int_equal(whole.n, 6);
        for (size_t k = 0; k <= len; k++) {
                size_t cut = k;

                assert_int_equal(feed_chunks(buf, len, &cut, 1, &part), 0);
                assert_seen_equal(&whole, &part);
        }
        /* Two cuts at every pair of offsets within the first 120 bytes. */
        for (size_t i = 0; i < 120; i++)
                for (size_t j = i; j < 120; j++) {
                        size_t cuts[2] = {i, j};

                        assert_int_equal(feed_chunks(buf, len, cuts, 2, &part), 0);
                        assert_seen_equal(&whole, &part);
                }
}

static void test_decoder_byte_at_a_time(void **state)
{
        uint8_t buf[1024];
        size_t len = build_stream(buf, sizeof(buf));
        size_t cuts[1024];
        Seen whole, part;

        assert_true(len > 1);
        for (size_t i = 0; i < len; i++)
                cuts[i] = i + 1;
        assert_int_equal(feed_chunks(buf, len, NULL, 0, &whole), 0);
        assert_int_equal(feed_chunks(buf, len, cuts, len - 1, &part), 0);
        assert_seen_equal(&whole, &part);
}

static void test_decoder_zero_copy_when_whole(void **state)
{
        uint8_t buf[64];
        VbusSegments out = {{buf, NULL}, {sizeof(buf), 0}};
        VbusFrameHeader h = hdr(VBUS_FRAME_DATA, 0, 4, 9, 0);
        VbusFrameDecoder d;
        VbusFrame f;
        size_t n, used;

        assert_int_equal(vbus__frame_encode(&h, "abcd", 4, &out, &n), 0);
        vbus__frame_decoder_init(&d, 4096);
        assert_int_equal(vbus__frame_decoder_feed(&d, buf, n, &used, &f), 1);
        assert_int_equal(used, n);
        assert_ptr_equal(f.payload, buf + VBUS_FRAME_HEADER_SIZE);
        assert_memory_equal(f.payload, "abcd", 4);
        vbus__frame_decoder_deinit(&d);
}

static void test_decoder_truncated_header_waits(void **state)
{
        uint8_t buf[VBUS_FRAME_HEADER_SIZE];
        VbusFrameHeader h = hdr(VBUS_FRAME_PING, 0, 0, 0, 0);
        VbusFrameDecoder d;
        VbusFrame f;
        size_t used;

        vbus__frame_encode(&h, NULL, 0, &(VbusSegments){{buf, NULL}, {sizeof(buf), 0}}, &used);
        vbus__frame_decoder_init(&d, 4096);
        assert_true(vbus__frame_decoder_is_idle(&d));
        assert_int_equal(vbus__frame_decoder_feed(&d, buf, 15, &used, &f), 0);
        assert_int_equal(used, 15);
        assert_false(vbus__frame_decoder_is_idle(&d));
        assert_int_equal(vbus__frame_decoder_feed(&d, buf + 15, 1, &used, &f), 1);
        assert_int_equal(f.header.type, VBUS_FRAME_PING);
        assert_true(vbus__frame_decoder_is_idle(&d));
        assert_int_equal(vbus__frame_decoder_feed(&d, NULL, 0, &used, &f), 0);
        assert_int_equal(used, 0);
        vbus__frame_decoder_deinit(&d);
}

static void test_decoder_bad_magic_on_first_byte(void **state)
{
        VbusFrameDecoder d;
        VbusFrame f;
        size_t used;
        const uint8_t garbage[] = {'G'};

        vbus__frame_decoder_init(&d, 4096);
        assert_int_equal(vbus__frame_decoder_feed(&d, garbage, 1, &used, &f), -EPROTO);
        assert_int_equal(vbus__frame_decoder_error(&d), VBUS_FRAME_E_BAD_MAGIC);
        /* Stays failed. */
        const uint8_t ok[VBUS_FRAME_HEADER_SIZE] = {0xb5, 1, VBUS_FRAME_PING};
        assert_int_equal(vbus__frame_decoder_feed(&d, ok, sizeof(ok), &used, &f), -EPROTO);
        vbus__frame_decoder_deinit(&d);
}

static void test_decoder_bad_version_on_second_byte(void **state)
{
        VbusFrameDecoder d;
        VbusFrame f;
        size_t used;
        const uint8_t bytes[] = {0xb5, 9};

        vbus__frame_decoder_init(&d, 4096);
        assert_int_equal(vbus__frame_decoder_feed(&d, bytes, 1, &used, &f), 0);
        assert_int_equal(vbus__frame_decoder_feed(&d, bytes + 1, 1, &used, &f), -EPROTO);
        assert_int_equal(vbus__frame_decoder_error(&d), VBUS_FRAME_E_BAD_VERSION);
        vbus__frame_decoder_deinit(&d);
}

static void test_decoder_oversize_before_allocation(void **state)
{
        uint8_t raw[VBUS_FRAME_HEADER_SIZE];
        VbusFrameHeader h = hdr(VBUS_FRAME_DATA, 0, 4097, 1, 0);
        VbusFrameDecoder d;
        VbusFrame f;
        size_t used;

        vbus__frame_header_encode(&h, raw);
        vbus__frame_decoder_init(&d, 4096);
        /* Split so the slow path (which allocates) is taken. */
        assert_int_equal(vbus__frame_decoder_feed(&d, raw, 8, &used, &f), 0);
        assert_int_equal(vbus__frame_decoder_feed(&d, raw + 8, 8, &used, &f), -EPROTO);
        assert_int_equal(vbus__frame_decoder_error(&d), VBUS_FRAME_E_OVERSIZE);
        assert_null(d.payload);
        vbus__frame_decoder_deinit(&d);
}

static void test_decoder_set_max_limits(void **state)
{
        VbusFrameDecoder d;

        vbus__frame_decoder_init(&d, VBUS_FRAME_MAX_INITIAL);
        assert_int_equal(vbus__frame_decoder_set_max(&d, VBUS_FRAME_MAX_MIN - 1), -EINVAL);
        assert_int_equal(vbus__frame_decoder_set_max(&d, VBUS_FRAME_MAX_MIN), 0);
        assert_int_equal(vbus__frame_decoder_set_max(&d, VBUS_FRAME_MAX_LIMIT), 0);
        assert_int_equal(vbus__frame_decoder_set_max(&d, VBUS_FRAME_MAX_LIMIT + 1), -EINVAL);
        vbus__frame_decoder_deinit(&d);
}

static void test_decoder_garbage_never_crashes(void **state)
{
        uint8_t buf[4096];
        unsigned seed = 12345;

        for (int round = 0; round < 2000; round++) {
                VbusFrameDecoder d;
                size_t len = (size_t)(rand_r(&seed) % sizeof(buf));
                size_t pos = 0;

                for (size_t i = 0; i < len; i++)
                        buf[i] = (uint8_t)rand_r(&seed);
                /* Half the rounds start with a valid magic and version to get deeper. */
                if (round % 2 && len >= 2) {
                        buf[0] = VBUS_FRAME_MAGIC;
                        buf[1] = VBUS_FRAME_VERSION;
                }
                vbus__frame_decoder_init(&d, 4096);
                while (pos < len) {
                        VbusFrame f;
                        size_t used, chunk = 1 + (size_t)(rand_r(&seed) % 64);
                        int r;

                        if (chunk > len - pos)
                                chunk = len - pos;
                        r = vbus__frame_decoder_feed(&d, buf + pos, chunk, &used, &f);
                        if (r < 0) {
                                assert_int_equal(r, -EPROTO);
                                assert_true(vbus__frame_decoder_error(&d) >=
                                            VBUS_FRAME_E_BAD_MAGIC);
                                assert_true(vbus__frame_decoder_error(&d) <= VBUS_FRAME_E_SEMANTIC);
                                break;
                        }
                        assert_true(used <= chunk);
                        pos += used;
                        if (r == 1)
                                assert_true(f.header.length <= 4096);
                }
                vbus__frame_decoder_deinit(&d);
        }
}

static void test_decoder_null_arguments(void **state)
{
        VbusFrameDecoder d;
        VbusFrame f;
        size_t used;
        uint8_t b = 0;

        vbus__frame_decoder_init(&d, 4096);
        assert_int_equal(vbus__frame_decoder_feed(NULL, &b, 1, &used, &f), -EINVAL);
        assert_int_equal(vbus__frame_decoder_feed(&d, NULL, 1, &used, &f), -EINVAL);
        assert_int_equal(vbus__frame_decoder_feed(&d, &b, 1, NULL, &f), -EINVAL);
        assert_int_equal(vbus__frame_decoder_feed(&d, &b, 1, &used, NULL), -EINVAL);
        vbus__frame_decoder_deinit(&d);
        vbus__frame_decoder_deinit(NULL);
}

static void test_encode_into_two_segments(void **state)
{
        uint8_t a[10], b[30], joined[40];
        VbusSegments out = {{a, b}, {sizeof(a), sizeof(b)}};
        VbusFrameHeader h = hdr(VBUS_FRAME_DATA, 0, 20, 3, 0);
        char payload[20];
        VbusFrameDecoder d;
        VbusFrame f;
        size_t n, used;

        memset(payload, 'x', sizeof(payload));
        assert_int_equal(vbus__frame_encode(&h, payload, sizeof(payload), &out, &n), 0);
        assert_int_equal(n, 36);
        memcpy(joined, a, sizeof(a));
        memcpy(joined + sizeof(a), b, sizeof(b));
        vbus__frame_decoder_init(&d, 4096);
        assert_int_equal(vbus__frame_decoder_feed(&d, joined, n, &used, &f), 1);
        assert_memory_equal(f.payload, payload, sizeof(payload));
        vbus__frame_decoder_deinit(&d);
}

static void test_encode_errors(void **state)
{
        uint8_t a[20];
        VbusSegments out = {{a, NULL}, {sizeof(a), 0}};
        VbusFrameHeader h = hdr(VBUS_FRAME_DATA, 0, 5, 3, 0);
        size_t n;

        assert_int_equal(vbus__frame_encode(&h, "abcde", 5, &out, &n), -ENOBUFS);
        assert_int_equal(vbus__frame_encode(&h, "abcd", 4, &out, &n), -EINVAL);
        assert_int_equal(vbus__frame_encode(&h, NULL, 5, &out, &n), -EINVAL);
        h.length = 4;
        assert_int_equal(vbus__frame_encode(&h, "abcd", 4, &out, &n), 0);
        assert_int_equal(n, 20);
        assert_int_equal(vbus__segments_write(&out, 21, "x", 1), -ENOBUFS);
        assert_int_equal(vbus__segments_write(&out, 19, "xy", 2), -ENOBUFS);
}

static void test_names_of_types_and_errors(void **state)
{
        assert_string_equal(vbus__frame_type_name(VBUS_FRAME_HELLO), "hello");
        assert_string_equal(vbus__frame_type_name(VBUS_FRAME_ERROR), "error");
        assert_string_equal(vbus__frame_type_name(0), "unknown");
        assert_string_equal(vbus__frame_type_name(VBUS_FRAME_TYPE_N), "unknown");
        assert_string_equal(vbus__frame_error_name(VBUS_FRAME_E_OVERSIZE), "oversize");
        assert_string_equal(vbus__frame_error_name(99), "unknown");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_header_roundtrip_all_fields),
                cmocka_unit_test(test_header_decode_bad_magic),
                cmocka_unit_test(test_header_decode_bad_version),
                cmocka_unit_test(test_header_decode_short_buffer),
                cmocka_unit_test(test_header_type_limits),
                cmocka_unit_test(test_header_length_limits),
                cmocka_unit_test(test_header_flag_rules),
                cmocka_unit_test(test_header_stream_id_rules),
                cmocka_unit_test(test_header_session_any_value),
                cmocka_unit_test(test_decoder_split_every_offset),
                cmocka_unit_test(test_decoder_byte_at_a_time),
                cmocka_unit_test(test_decoder_zero_copy_when_whole),
                cmocka_unit_test(test_decoder_truncated_header_waits),
                cmocka_unit_test(test_decoder_bad_magic_on_first_byte),
                cmocka_unit_test(test_decoder_bad_version_on_second_byte),
                cmocka_unit_test(test_decoder_oversize_before_allocation),
                cmocka_unit_test(test_decoder_set_max_limits),
                cmocka_unit_test(test_decoder_garbage_never_crashes),
                cmocka_unit_test(test_decoder_null_arguments),
                cmocka_unit_test(test_encode_into_two_segments),
                cmocka_unit_test(test_encode_errors),
                cmocka_unit_test(test_names_of_types_and_errors),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
