/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for libbus/msgqueue.c, the queue a stream keeps of messages its application has not
 * taken: order, sizes and contents survive every mix of pushes and pops (against a plain model),
 * runs of empty messages cost a fixed 8 bytes however long, and the buffer never holds more
 * than the payload plus 4 bytes a message.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msgqueue.h"

static void fill(uint8_t *p, size_t n, unsigned seed)
{
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t)((size_t)seed * 31u + i * 7u);
}

static void expect_front(VbusMsgQueue *q, size_t n, unsigned seed)
{
        uint8_t want[70000];
        size_t got_n;
        const uint8_t *got;

        assert_false(vbus__msgqueue_is_empty(q));
        got = vbus__msgqueue_peek(q, &got_n);
        assert_non_null(got);
        assert_int_equal(got_n, n);
        fill(want, n, seed);
        assert_memory_equal(got, want, n);
        vbus__msgqueue_pop(q);
}

static void test_empty(void **state)
{
        VbusMsgQueue q = {0};

        (void)state;
        assert_true(vbus__msgqueue_is_empty(&q));
        assert_int_equal(vbus__msgqueue_bytes(&q), 0);
        vbus__msgqueue_clear(&q);
        assert_true(vbus__msgqueue_is_empty(&q));
}

static void test_order_and_contents(void **state)
{
        VbusMsgQueue q = {0};
        uint8_t buf[70000];
        size_t sizes[] = {1, 0, 5, 65536, 0, 0, 17, 4096, 0, 3};

        (void)state;
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                fill(buf, sizes[i], (unsigned)i);
                assert_int_equal(vbus__msgqueue_push(&q, buf, sizes[i]), 0);
        }
        assert_int_equal(q.n_messages, 10);
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
                expect_front(&q, sizes[i], (unsigned)i);
        assert_true(vbus__msgqueue_is_empty(&q));
        assert_int_equal(q.n_messages, 0);
        vbus__msgqueue_clear(&q);
}

/* A million empty messages from a hostile sender: one 8-byte record. */
static void test_empty_runs_are_counted(void **state)
{
        VbusMsgQueue q = {0};
        uint8_t one = 42;

        (void)state;
        for (int i = 0; i < 1000000; i++)
                assert_int_equal(vbus__msgqueue_push(&q, NULL, 0), 0);
        assert_int_equal(vbus__msgqueue_bytes(&q), 8);
        assert_int_equal(q.n_messages, 1000000);
        /* A message between runs starts a new run after it. */
        assert_int_equal(vbus__msgqueue_push(&q, &one, 1), 0);
        assert_int_equal(vbus__msgqueue_push(&q, NULL, 0), 0);
        assert_int_equal(vbus__msgqueue_push(&q, NULL, 0), 0);
        assert_int_equal(vbus__msgqueue_bytes(&q), 8 + 5 + 8);
        for (int i = 0; i < 1000000; i++) {
                size_t n = 99;

                (void)vbus__msgqueue_peek(&q, &n);
                assert_int_equal(n, 0);
                vbus__msgqueue_pop(&q);
        }
        {
                size_t n;
                const uint8_t *p = vbus__msgqueue_peek(&q, &n);

                assert_int_equal(n, 1);
                assert_int_equal(p[0], 42);
                vbus__msgqueue_pop(&q);
        }
        expect_front(&q, 0, 0);
        /* Popping part of a run and then pushing more empties extends the same run. */
        assert_int_equal(vbus__msgqueue_push(&q, NULL, 0), 0);
        assert_int_equal(q.n_messages, 2);
        expect_front(&q, 0, 0);
        expect_front(&q, 0, 0);
        assert_true(vbus__msgqueue_is_empty(&q));
        vbus__msgqueue_clear(&q);
}

/* Random pushes and pops against a model (a ring of sizes and seeds): the buffer slides and
 * grows under every pattern and stays within payload + 4 bytes a message (+ 8 a run). */
static void test_random_against_model(void **state)
{
        enum { MODEL = 4096 };
        static size_t m_size[MODEL];
        static unsigned m_seed[MODEL];
        size_t m_head = 0, m_n = 0, payload = 0;
        VbusMsgQueue q = {0};
        uint8_t buf[70000];
        unsigned rnd = 12345;

        (void)state;
        for (int step = 0; step < 200000; step++) {
                rnd = rnd * 1103515245u + 12345u;
                if (m_n < MODEL && ((rnd >> 16) % 3 != 0 || m_n == 0)) {
                        size_t n = (rnd >> 8) % 7 == 0 ? 0
                                                       : (rnd >> 4) % ((rnd >> 20) % 2 ? 64 : 3000);
                        size_t at = (m_head + m_n) % MODEL;

                        fill(buf, n, (unsigned)step);
                        assert_int_equal(vbus__msgqueue_push(&q, buf, n), 0);
                        m_size[at] = n;
                        m_seed[at] = (unsigned)step;
                        m_n++;
                        payload += n;
                } else {
                        expect_front(&q, m_size[m_head], m_seed[m_head]);
                        payload -= m_size[m_head];
                        m_head = (m_head + 1) % MODEL;
                        m_n--;
                }
                assert_int_equal(q.n_messages, m_n);
                assert_true(vbus__msgqueue_bytes(&q) <= payload + 8 * m_n);
        }
        while (m_n > 0) {
                expect_front(&q, m_size[m_head], m_seed[m_head]);
                m_head = (m_head + 1) % MODEL;
                m_n--;
        }
        assert_true(vbus__msgqueue_is_empty(&q));
        vbus__msgqueue_clear(&q);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_empty),
                cmocka_unit_test(test_order_and_contents),
                cmocka_unit_test(test_empty_runs_are_counted),
                cmocka_unit_test(test_random_against_model),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
