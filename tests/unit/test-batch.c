/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for libbus/wire/batch.c (docs/protocol.md 5.5), written as the sender of a batch
 * would attack it: every length encoding at and past its limits (canonical or not, truncated,
 * five bytes, past the payload), a Meta prefix good and bad, no record or only empty ones; and a
 * payload that changes between the count that charged the window and the walk that hands the
 * messages out (the ring's writer can still write it): the walk never yields more records than
 * were counted nor a byte outside the payload, and says -EPROTO unless the bytes still parse
 * exactly as counted.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "batch.h"
#include "frame.h"

/* Counts @len bytes of @buf (no Meta prefix); returns the result, the count in *ret_n. */
static int count(const void *buf, size_t len, uint32_t *ret_n)
{
        return vbus__batch_count(buf, len, false, ret_n);
}

/* Walks @n records of @buf and checks each yielded record stays inside @buf; returns the walk's
 * final result (0 or -EPROTO) and the records yielded in *ret_yielded. */
static int walk(const uint8_t *buf, size_t len, uint32_t n, uint32_t *ret_yielded)
{
        VbusBatchIter it;
        uint32_t yielded = 0;
        int r;

        vbus__batch_iter_init(&it, buf, len, n);
        for (;;) {
                const uint8_t *d = NULL;
                size_t l = SIZE_MAX;

                r = vbus__batch_next(&it, &d, &l);
                if (r != 1)
                        break;
                assert_non_null(d);
                assert_true(d >= buf && l <= len && (size_t)(d - buf) <= len - l);
                yielded++;
                assert_true(yielded <= n);
        }
        assert_true(r == 0 || r == -EPROTO);
        /* Once the walk has ended, it stays ended: a caller that asks again gets nothing more. */
        {
                const uint8_t *d;
                size_t l;

                assert_int_equal(vbus__batch_next(&it, &d, &l), r);
        }
        *ret_yielded = yielded;
        return r;
}

static void test_count_records(void **state)
{
        static const uint8_t one[] = {3, 'a', 'b', 'c'};
        static const uint8_t three[] = {1, 'x', 0, 2, 'y', 'z'};
        uint32_t n = 0, y;

        (void)state;
        assert_int_equal(count(one, sizeof(one), &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(count(three, sizeof(three), &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(walk(three, sizeof(three), 3, &y), 0);
        assert_int_equal(y, 3);
}

static void test_walk_yields_each_record(void **state)
{
        static const uint8_t buf[] = {1, 'x', 0, 2, 'y', 'z'};
        VbusBatchIter it;
        const uint8_t *d;
        size_t l;

        (void)state;
        vbus__batch_iter_init(&it, buf, sizeof(buf), 3);
        assert_int_equal(vbus__batch_next(&it, &d, &l), 1);
        assert_ptr_equal(d, buf + 1);
        assert_int_equal(l, 1);
        assert_int_equal(vbus__batch_next(&it, &d, &l), 1);
        assert_ptr_equal(d, buf + 3); /* an empty record: a pointer into the payload, not NULL */
        assert_int_equal(l, 0);
        assert_int_equal(vbus__batch_next(&it, &d, &l), 1);
        assert_ptr_equal(d, buf + 4);
        assert_int_equal(l, 2);
        assert_int_equal(vbus__batch_next(&it, &d, &l), 0);
        assert_int_equal(vbus__batch_next(&it, &d, &l), 0);
}

/* Every record empty: one byte each, one message each; a record per byte is the most there can
 * be, so the count is bounded by the payload. */
static void test_count_empty_records(void **state)
{
        enum { N = 4096 };
        uint8_t *buf = calloc(N, 1);
        uint32_t n = 0, y;

        (void)state;
        assert_non_null(buf);
        assert_int_equal(count(buf, N, &n), 0);
        assert_int_equal(n, N);
        assert_int_equal(walk(buf, N, n, &y), 0);
        assert_int_equal(y, N);
        assert_int_equal(count(buf, 1, &n), 0);
        assert_int_equal(n, 1);
        free(buf);
}

/* No record at all is semantic (a well-formed frame that breaks a rule), never a count of 0;
 * and bad arguments are -EINVAL. Nothing is written on failure. */
static void test_count_zero_records_and_arguments(void **state)
{
        static const uint8_t meta_only[] = {2, 'M', 'M'};
        static const uint8_t one[] = {0};
        uint32_t n = 77;

        (void)state;
        assert_int_equal(count(one, 0, &n), VBUS_FRAME_E_SEMANTIC);
        assert_int_equal(count(NULL, 0, &n), VBUS_FRAME_E_SEMANTIC);
        assert_int_equal(vbus__batch_count(meta_only, sizeof(meta_only), true, &n),
                         VBUS_FRAME_E_SEMANTIC);
        assert_int_equal(n, 77);
        assert_int_equal(count(NULL, 1, &n), -EINVAL);
        assert_int_equal(count(one, 1, NULL), -EINVAL);
        assert_int_equal(n, 77);
}

/* A length must be the shortest encoding of its value: a trailing zero byte is non-canonical,
 * in the first record or any later one. */
static void test_count_non_canonical(void **state)
{
        static const uint8_t zero2[] = {0x80, 0x00};
        static const uint8_t one2[] = {0x81, 0x00, 'a'};
        static const uint8_t one3[] = {0x81, 0x80, 0x00, 'a'};
        static const uint8_t one4[] = {0x81, 0x80, 0x80, 0x00, 'a'};
        static const uint8_t later[] = {1, 'a', 0x82, 0x00, 'b', 'c'};
        uint32_t n = 77;
        uint8_t ok[2 + 128];

        (void)state;
        assert_int_equal(count(zero2, sizeof(zero2), &n), VBUS_FRAME_E_MALFORMED);
        assert_int_equal(count(one2, sizeof(one2), &n), VBUS_FRAME_E_MALFORMED);
        assert_int_equal(count(one3, sizeof(one3), &n), VBUS_FRAME_E_MALFORMED);
        assert_int_equal(count(one4, sizeof(one4), &n), VBUS_FRAME_E_MALFORMED);
        assert_int_equal(count(later, sizeof(later), &n), VBUS_FRAME_E_MALFORMED);
        assert_int_equal(n, 77);
        /* 128 needs two bytes and takes them: canonical. */
        memset(ok, 'q', sizeof(ok));
        ok[0] = 0x80;
        ok[1] = 0x01;
        assert_int_equal(count(ok, sizeof(ok), &n), 0);
        assert_int_equal(n, 1);
}

/* At most four length bytes: a fifth is malformed whatever the value, and the largest
 * four-byte value still has to fit the payload. */
static void test_count_length_limit(void **state)
{
        static const uint8_t five_2p28[] = {0x80, 0x80, 0x80, 0x80, 0x01};
        static const uint8_t five_small[] = {0x81, 0x80, 0x80, 0x80, 0x00, 'a'};
        static const uint8_t five_cont[] = {0xff, 0xff, 0xff, 0xff, 0x7f};
        static const uint8_t four_max[] = {0xff, 0xff, 0xff, 0x7f};
        static const uint8_t four_cont[] = {0xff, 0xff, 0xff, 0xff};
        uint32_t n = 77;

        (void)state;
        assert_int_equal(count(five_2p28, sizeof(five_2p28), &n), VBUS_FRAME_E_MALFORMED);
        assert_int_equal(count(five_small, sizeof(five_small), &n), VBUS_FRAME_E_MALFORMED);
        assert_int_equal(count(five_cont, sizeof(five_cont), &n), VBUS_FRAME_E_MALFORMED);
        assert_int_equal(count(four_max, sizeof(four_max), &n), VBUS_FRAME_E_MALFORMED);
        assert_int_equal(count(four_cont, sizeof(four_cont), &n), VBUS_FRAME_E_MALFORMED);
        assert_int_equal(n, 77);
}

/* A four-byte length (2^21, the smallest) over a payload that holds it exactly, and one byte
 * short. */
static void test_count_four_byte_length(void **state)
{
        size_t l = (size_t)1 << 21;
        uint8_t *buf = malloc(4 + l);
        uint32_t n = 0, y;

        (void)state;
        assert_non_null(buf);
        memset(buf, 0xa5, 4 + l);
        assert_int_equal(vbus__batch_put_len(buf, (uint32_t)l), 4);
        assert_int_equal(count(buf, 4 + l, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(walk(buf, 4 + l, 1, &y), 0);
        assert_int_equal(y, 1);
        assert_int_equal(count(buf, 4 + l - 1, &n), VBUS_FRAME_E_MALFORMED);
        free(buf);
}

/* A length cut short by the end of the payload, first or later. */
static void test_count_truncated_length(void **state)
{
        static const uint8_t cut1[] = {0x80};
        static const uint8_t cut3[] = {0x80, 0x80, 0x80};
        static const uint8_t later[] = {2, 'a', 'b', 0x81};
        uint32_t n = 77;

        (void)state;
        assert_int_equal(count(cut1, sizeof(cut1), &n), VBUS_FRAME_E_MALFORMED);
        assert_int_equal(count(cut3, sizeof(cut3), &n), VBUS_FRAME_E_MALFORMED);
        assert_int_equal(count(later, sizeof(later), &n), VBUS_FRAME_E_MALFORMED);
        assert_int_equal(n, 77);
}

/* A record that runs past the payload by one byte or by far; the last record too. */
static void test_count_record_past_end(void **state)
{
        static const uint8_t by_one[] = {4, 'a', 'b', 'c'};
        static const uint8_t by_far[] = {0x7f, 'a'};
        static const uint8_t last[] = {1, 'a', 0, 3, 'b', 'c'};
        static const uint8_t big[] = {0xff, 0xff, 0x7f, 'a'};
        uint32_t n = 77;

        (void)state;
        assert_int_equal(count(by_one, sizeof(by_one), &n), VBUS_FRAME_E_MALFORMED);
        assert_int_equal(count(by_far, sizeof(by_far), &n), VBUS_FRAME_E_MALFORMED);
        assert_int_equal(count(last, sizeof(last), &n), VBUS_FRAME_E_MALFORMED);
        assert_int_equal(count(big, sizeof(big), &n), VBUS_FRAME_E_MALFORMED);
        assert_int_equal(n, 77);
}

/* With META the records start after the prefix; a bad prefix is malformed whatever follows. */
static void test_count_meta_prefix(void **state)
{
        static const uint8_t good[] = {2, 'M', 'M', 1, 'x', 0};
        static const uint8_t empty_meta[] = {0, 1, 'x'};
        static const uint8_t past[] = {5, 'M', 'M', 0};
        static const uint8_t non_canonical[] = {0x82, 0x00, 'M', 'M', 0};
        static const uint8_t oversize[] = {0x81, 0x08, 0}; /* 1025 > VBUS_META_MAX */
        static const uint8_t three_bytes[] = {0x81, 0x80, 0x01, 0};
        static const uint8_t cut[] = {0x81};
        static const uint8_t bad_record[] = {1, 'M', 0x80};
        uint8_t at_max[2 + 1024 + 1];
        uint32_t n = 0;

        (void)state;
        assert_int_equal(vbus__batch_count(good, sizeof(good), true, &n), 0);
        assert_int_equal(n, 2);
        /* The same bytes without META are records: 2 'M' 'M', then 1 'x', then one empty. */
        assert_int_equal(vbus__batch_count(good, sizeof(good), false, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(vbus__batch_count(empty_meta, sizeof(empty_meta), true, &n), 0);
        assert_int_equal(n, 1);
        n = 77;
        assert_int_equal(vbus__batch_count(past, sizeof(past), true, &n), VBUS_FRAME_E_MALFORMED);
        assert_int_equal(vbus__batch_count(non_canonical, sizeof(non_canonical), true, &n),
                         VBUS_FRAME_E_MALFORMED);
        assert_int_equal(vbus__batch_count(oversize, sizeof(oversize), true, &n),
                         VBUS_FRAME_E_MALFORMED);
        assert_int_equal(vbus__batch_count(three_bytes, sizeof(three_bytes), true, &n),
                         VBUS_FRAME_E_MALFORMED);
        assert_int_equal(vbus__batch_count(cut, sizeof(cut), true, &n), VBUS_FRAME_E_MALFORMED);
        /* A META frame without even a prefix is malformed, not "no record". */
        assert_int_equal(vbus__batch_count(cut, 0, true, &n), VBUS_FRAME_E_MALFORMED);
        assert_int_equal(vbus__batch_count(bad_record, sizeof(bad_record), true, &n),
                         VBUS_FRAME_E_MALFORMED);
        assert_int_equal(n, 77);
        /* The largest prefix (VBUS_META_MAX bytes of Meta), then one empty record. */
        memset(at_max, 'M', sizeof(at_max));
        at_max[0] = 0x80; /* 1024 = 0x400: 0x80, 0x08 */
        at_max[1] = 0x08;
        at_max[sizeof(at_max) - 1] = 0;
        assert_int_equal(vbus__batch_count(at_max, sizeof(at_max), true, &n), 0);
        assert_int_equal(n, 1);
}

/* Bytes changed after the count: the walk gives no more records than counted, none past the
 * payload, and -EPROTO. Each case is counted on @before and walked on @after (same length). */
static void check_changed(const uint8_t *before, const uint8_t *after, size_t len, uint32_t want_n,
                          uint32_t want_yielded)
{
        uint8_t *buf = malloc(len); /* exactly the payload, so ASan sees any byte past it */
        uint32_t n = 0, y = 0;

        assert_non_null(buf);
        memcpy(buf, before, len);
        assert_int_equal(count(buf, len, &n), 0);
        assert_int_equal(n, want_n);
        memcpy(buf, after, len);
        assert_int_equal(walk(buf, len, n, &y), -EPROTO);
        assert_int_equal(y, want_yielded);
        free(buf);
}

static void test_walk_more_records_than_counted(void **state)
{
        (void)state;
        /* One record of 2 bytes becomes three empty records: one is given, then -EPROTO. */
        check_changed((const uint8_t[]){2, 'a', 'b'}, (const uint8_t[]){0, 0, 0}, 3, 1, 1);
        /* Two records; the second one's bytes become two records. */
        check_changed((const uint8_t[]){1, 'a', 2, 'b', 'c'}, (const uint8_t[]){1, 'a', 0, 1, 'c'},
                      5, 2, 2);
}

static void test_walk_fewer_records_than_counted(void **state)
{
        (void)state;
        /* Three empty records become one of two bytes: it is given, then the payload ends
         * before the third. */
        check_changed((const uint8_t[]){0, 0, 0}, (const uint8_t[]){2, 'a', 'b'}, 3, 3, 1);
        check_changed((const uint8_t[]){0, 0, 0, 0}, (const uint8_t[]){3, 0, 0, 0}, 4, 4, 1);
}

static void test_walk_longer_length(void **state)
{
        (void)state;
        /* The first length grows to swallow the second record: one record, then -EPROTO. */
        check_changed((const uint8_t[]){1, 'a', 1, 'b'}, (const uint8_t[]){3, 'a', 1, 'b'}, 4, 2,
                      1);
        /* A length that now runs past the payload: nothing is given. */
        check_changed((const uint8_t[]){1, 'a', 1, 'b'}, (const uint8_t[]){0x7f, 'a', 1, 'b'}, 4, 2,
                      0);
        /* The last record's length grows past the end. */
        check_changed((const uint8_t[]){1, 'a', 1, 'b'}, (const uint8_t[]){1, 'a', 2, 'b'}, 4, 2,
                      1);
        /* A length that becomes a continuation byte at the end, and one that becomes a five
         * byte varint. */
        check_changed((const uint8_t[]){1, 'a', 0}, (const uint8_t[]){1, 'a', 0x80}, 3, 2, 1);
        check_changed((const uint8_t[]){0, 0, 0, 0, 0, 0},
                      (const uint8_t[]){0x80, 0x80, 0x80, 0x80, 0x01, 0}, 6, 6, 0);
}

static void test_walk_shorter_length(void **state)
{
        (void)state;
        /* The record shrinks: its last byte is left over after the counted record. */
        check_changed((const uint8_t[]){2, 'a', 'b'}, (const uint8_t[]){1, 'a', 'b'}, 3, 1, 1);
        /* A length that becomes non-canonical. */
        check_changed((const uint8_t[]){2, 'a', 'b'}, (const uint8_t[]){0x81, 0x00, 'b'}, 3, 1, 0);
}

/* An iterator asked for records that were never there, or with bytes left after the last. */
static void test_walk_count_mismatch(void **state)
{
        static const uint8_t buf[] = {0, 0};
        uint32_t y;

        (void)state;
        assert_int_equal(walk(buf, 0, 0, &y), 0);
        assert_int_equal(y, 0);
        assert_int_equal(walk(buf, 2, 0, &y), -EPROTO);
        assert_int_equal(y, 0);
        assert_int_equal(walk(buf, 0, 1, &y), -EPROTO);
        assert_int_equal(y, 0);
        assert_int_equal(walk(buf, 2, 1, &y), -EPROTO);
        assert_int_equal(y, 1);
        assert_int_equal(walk(buf, 2, 3, &y), -EPROTO);
        assert_int_equal(y, 2);
        assert_int_equal(walk(buf, 2, UINT32_MAX, &y), -EPROTO);
        assert_int_equal(y, 2);
}

/* A small deterministic generator, so a failure names its seed. */
static uint32_t rnd(uint64_t *s)
{
        *s = *s * 6364136223846793005ull + 1442695040888963407ull;
        return (uint32_t)(*s >> 33);
}

/*
 * Random batches, counted, then changed at random (one to four bytes), then walked: the walk
 * ends with 0 exactly when the changed bytes parse as a batch of the same count (and then it gave
 * all of them), and otherwise with -EPROTO after at most the count; never a byte outside.
 */
static void test_walk_random_changes(void **state)
{
        uint64_t seed = 0x5eed;

        (void)state;
        for (int iter = 0; iter < 20000; iter++) {
                uint8_t tmp[512];
                size_t len = 0;
                uint32_t n = 0, n2 = 0, y = 0;
                uint32_t want = rnd(&seed) % 12 + 1;
                uint8_t *buf;
                int r, r2;

                for (uint32_t i = 0; i < want; i++) {
                        uint32_t l = rnd(&seed) % 3 == 0 ? rnd(&seed) % 200 : rnd(&seed) % 4;

                        if (len + VBUS_BATCH_LEN_MAX + l > sizeof(tmp))
                                break;
                        len += vbus__batch_put_len(tmp + len, l);
                        for (uint32_t k = 0; k < l; k++)
                                tmp[len++] = (uint8_t)rnd(&seed);
                }
                buf = malloc(len);
                assert_non_null(buf);
                memcpy(buf, tmp, len);
                assert_int_equal(count(buf, len, &n), 0);
                for (uint32_t k = rnd(&seed) % 4 + 1; k > 0; k--) {
                        uint32_t v = rnd(&seed);

                        buf[v % len] = (uint8_t)(v >> 8 & 1 ? v >> 16 : v >> 16 & 0x83);
                }
                r = walk(buf, len, n, &y);
                r2 = count(buf, len, &n2);
                if (r2 == 0 && n2 == n) {
                        assert_int_equal(r, 0);
                        assert_int_equal(y, n);
                } else {
                        assert_int_equal(r, -EPROTO);
                        assert_true(y <= n);
                }
                free(buf);
        }
}

/* scan: the count of records alone (no prefix), with the largest length and the sum of the
 * lengths in the same pass; its errors are the count's, and nothing is written on failure. */
static void test_scan_totals_and_errors(void **state)
{
        static const uint8_t recs[] = {1, 'x', 0, 3, 'a', 'b', 'c', 2, 'y', 'z'};
        static const uint8_t bad[] = {1, 'x', 0x80, 0x00};
        uint32_t n = 77;
        size_t max_len = 77;
        uint64_t bytes = 77;

        (void)state;
        assert_int_equal(vbus__batch_scan(recs, sizeof(recs), &n, &max_len, &bytes), 0);
        assert_int_equal(n, 4);
        assert_int_equal(max_len, 3);
        assert_int_equal(bytes, 6);
        /* The outputs besides the count are optional. */
        n = 0;
        assert_int_equal(vbus__batch_scan(recs, sizeof(recs), &n, NULL, NULL), 0);
        assert_int_equal(n, 4);
        /* Only empty records: bytes and the largest are 0. */
        assert_int_equal(vbus__batch_scan((const uint8_t[]){0, 0}, 2, &n, &max_len, &bytes), 0);
        assert_int_equal(n, 2);
        assert_int_equal(max_len, 0);
        assert_int_equal(bytes, 0);
        n = 77;
        max_len = 77;
        bytes = 77;
        assert_int_equal(vbus__batch_scan(bad, sizeof(bad), &n, &max_len, &bytes),
                         VBUS_FRAME_E_MALFORMED);
        assert_int_equal(vbus__batch_scan(recs, 0, &n, &max_len, &bytes), VBUS_FRAME_E_SEMANTIC);
        assert_int_equal(vbus__batch_scan(NULL, 1, &n, &max_len, &bytes), -EINVAL);
        assert_int_equal(vbus__batch_scan(recs, sizeof(recs), NULL, &max_len, &bytes), -EINVAL);
        assert_int_equal(n, 77);
        assert_int_equal(max_len, 77);
        assert_int_equal(bytes, 77);
        /* A Meta prefix is not skipped: these bytes are records to it. */
        assert_int_equal(
                vbus__batch_scan((const uint8_t[]){2, 'M', 'M', 1, 'x'}, 5, &n, &max_len, &bytes),
                0);
        assert_int_equal(n, 2);
}

/* put_len writes what len_size says, and the bytes read back (by the count) to the same value,
 * at each boundary of the encoding. */
static void test_put_len_round_trip(void **state)
{
        static const uint32_t vals[] = {
                0, 1, 127, 128, 16383, 16384, (1u << 21) - 1, 1u << 21, (1u << 28) - 1,
        };
        static const size_t sizes[] = {1, 1, 1, 2, 2, 3, 3, 4, 4};

        (void)state;
        for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
                uint8_t out[VBUS_BATCH_LEN_MAX + 1];
                size_t k;
                uint64_t v = 0;

                memset(out, 0xee, sizeof(out));
                k = vbus__batch_put_len(out, vals[i]);
                assert_int_equal(k, sizes[i]);
                assert_int_equal(vbus__batch_len_size(vals[i]), sizes[i]);
                assert_int_equal(out[VBUS_BATCH_LEN_MAX], 0xee); /* never a fifth byte */
                /* Continuation bits on all but the last byte; the last is not zero unless the
                 * value is (canonical). */
                for (size_t j = 0; j < k; j++) {
                        assert_int_equal(!!(out[j] & 0x80), j + 1 < k);
                        v |= (uint64_t)(out[j] & 0x7f) << (7 * j);
                }
                assert_true(k == 1 || out[k - 1] != 0);
                assert_int_equal(v, vals[i]);
                /* Where the record fits in memory, the count reads the same length back. */
                if (vals[i] <= (1u << 21)) {
                        uint8_t *buf = calloc(k + vals[i], 1);
                        uint32_t n = 0;
                        VbusBatchIter it;
                        const uint8_t *d;
                        size_t l = 0;

                        assert_non_null(buf);
                        memcpy(buf, out, k);
                        assert_int_equal(count(buf, k + vals[i], &n), 0);
                        assert_int_equal(n, 1);
                        vbus__batch_iter_init(&it, buf, k + vals[i], 1);
                        assert_int_equal(vbus__batch_next(&it, &d, &l), 1);
                        assert_int_equal(l, vals[i]);
                        assert_ptr_equal(d, buf + k);
                        free(buf);
                } else {
                        /* 2^28 - 1 with no record bytes after it: past the end. */
                        uint32_t n = 77;

                        assert_int_equal(count(out, k, &n), VBUS_FRAME_E_MALFORMED);
                        assert_int_equal(n, 77);
                }
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_count_records),
                cmocka_unit_test(test_walk_yields_each_record),
                cmocka_unit_test(test_count_empty_records),
                cmocka_unit_test(test_count_zero_records_and_arguments),
                cmocka_unit_test(test_count_non_canonical),
                cmocka_unit_test(test_count_length_limit),
                cmocka_unit_test(test_count_four_byte_length),
                cmocka_unit_test(test_count_truncated_length),
                cmocka_unit_test(test_count_record_past_end),
                cmocka_unit_test(test_count_meta_prefix),
                cmocka_unit_test(test_walk_more_records_than_counted),
                cmocka_unit_test(test_walk_fewer_records_than_counted),
                cmocka_unit_test(test_walk_longer_length),
                cmocka_unit_test(test_walk_shorter_length),
                cmocka_unit_test(test_walk_count_mismatch),
                cmocka_unit_test(test_walk_random_changes),
                cmocka_unit_test(test_scan_totals_and_errors),
                cmocka_unit_test(test_put_len_round_trip),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
