/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vchand/retain.c: pattern matching against retained topics, replacing and
 * clearing, the three bounds (each refusal changes nothing), the charge moving to a new owner,
 * and delivery in insertion order.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "retain.h"
#include "vchand-limits.h"

static const Identity dom1 = {.domid = 1}, dom2 = {.domid = 2}, uid7 = {.local = true, .uid = 7};
static const uint8_t meta[] = {0x0a, 0x01, 'x'}; /* any bytes: the table never parses them */

static int setup(void **state)
{
        static Bus b;

        b = (Bus){0};
        b.config.retained_max = 4;
        b.config.retained_bytes = 4096;
        b.config.peer_retained_bytes = 2048;
        assert_int_equal(retain_table_new(&b), 0);
        *state = &b;
        return 0;
}

static int teardown(void **state)
{
        retain_table_free(*state);
        return 0;
}

static int set(Bus *b, const Identity *who, const char *topic, const char *data)
{
        return retain_set(b, who, topic, meta, sizeof(meta), (const uint8_t *)data, strlen(data));
}

typedef struct Seen {
        char out[256];
} Seen;

static int collect(const RetainedValue *v, void *ud)
{
        Seen *s = ud;
        size_t k = strlen(s->out);

        /* The Meta is the publisher's with field 5 (retained = true) appended. */
        assert_int_equal(v->n_meta, sizeof(meta) + 2);
        assert_memory_equal(v->meta, meta, sizeof(meta));
        assert_int_equal(v->meta[sizeof(meta)], 0x28);
        assert_int_equal(v->meta[sizeof(meta) + 1], 0x01);
        (void)snprintf(s->out + k, sizeof(s->out) - k, "%s=%.*s ", v->topic, (int)v->n_data,
                       (const char *)v->data);
        return 0;
}

static const char *seen(Bus *b, const char *pattern)
{
        static Seen s;

        s.out[0] = '\0';
        retain_foreach_match(b, pattern, collect, &s);
        return s.out;
}

static uint64_t charge(const char *topic, const char *data)
{
        return strlen(topic) + strlen(data) + LIMIT_RETAIN_ENTRY_COST;
}

static void test_pattern_matches(void **state)
{
        (void)state;
        assert_true(retain_pattern_matches("a.b", "a.b"));
        assert_false(retain_pattern_matches("a.b", "a.bc"));
        assert_false(retain_pattern_matches("a.b", "a.b.c"));
        assert_false(retain_pattern_matches("a.b.c", "a.b"));
        assert_true(retain_pattern_matches("a.*", "a.b"));
        assert_false(retain_pattern_matches("a.*", "a.b.c"));
        assert_false(retain_pattern_matches("a.*", "a"));
        assert_true(retain_pattern_matches("*.b", "x.b"));
        assert_true(retain_pattern_matches("a.>", "a.b"));
        assert_true(retain_pattern_matches("a.>", "a.b.c.d"));
        assert_false(retain_pattern_matches("a.>", "a"));
        assert_true(retain_pattern_matches(">", "a"));
        assert_true(retain_pattern_matches("*.*.>", "a.b.c"));
        assert_false(retain_pattern_matches("*.*.>", "a.b"));
}

static void test_replace_clear_and_order(void **state)
{
        Bus *b = *state;
        uint32_t n;
        uint64_t bytes;

        assert_int_equal(set(b, &dom1, "s.t", "21"), 0);
        assert_int_equal(set(b, &dom1, "s.h", "40"), 0);
        assert_string_equal(seen(b, "s.>"), "s.t=21 s.h=40 ");
        assert_int_equal(set(b, &dom1, "s.t", "22"), 0); /* replaced: now the newest */
        assert_string_equal(seen(b, "s.*"), "s.h=40 s.t=22 ");
        assert_string_equal(seen(b, "s.t"), "s.t=22 ");
        assert_string_equal(seen(b, "x.>"), "");
        retain_get_usage(b, &n, &bytes);
        assert_int_equal(n, 2);
        assert_int_equal(bytes, charge("s.t", "22") + charge("s.h", "40"));
        assert_int_equal(set(b, &dom1, "s.h", ""), 0); /* cleared */
        assert_int_equal(set(b, &dom1, "nothing.here", ""), 0);
        assert_string_equal(seen(b, ">"), "s.t=22 ");
        retain_get_usage(b, &n, &bytes);
        assert_int_equal(n, 1);
        assert_int_equal(bytes, charge("s.t", "22"));
}

static void test_peer_bound_only_for_the_offender(void **state)
{
        Bus *b = *state;
        char big[1500];
        uint32_t n;
        uint64_t bytes;

        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(set(b, &dom1, "a.one", big), 0);
        /* A second one would put dom1 over 2048 bytes: refused, nothing changed. */
        assert_int_equal(set(b, &dom1, "a.two", big), RETAIN_E_OVER_PEER);
        retain_get_usage(b, &n, &bytes);
        assert_int_equal(n, 1);
        assert_int_equal(bytes, charge("a.one", big));
        /* Replacing its own value with one as large is no new charge. */
        assert_int_equal(set(b, &dom1, "a.one", big), 0);
        /* Other identities are not held back by dom1's use. */
        assert_int_equal(set(b, &dom2, "b.one", big), 0);
        assert_int_equal(set(b, &uid7, "c.one", "small"), 0);
        /* dom2 takes over dom1's topic: dom2 is charged, and is now over its own bound. */
        assert_int_equal(set(b, &dom2, "a.one", big), RETAIN_E_OVER_PEER);
        assert_int_equal(set(b, &dom2, "b.one", ""), 0);
        assert_int_equal(set(b, &dom2, "a.one", "mine"), 0);
        /* dom1's charge went with the value: it can retain again. */
        assert_int_equal(set(b, &dom1, "a.two", big), 0);
        assert_int_equal(strncmp(seen(b, "a.*"), "a.one=mine a.two=xxx", 20), 0);
}

/* A destroyed domain's values outlive it, but a new domain with its domid is not charged them. */
static void test_domain_gone_orphans_its_values(void **state)
{
        Bus *b = *state;
        char big[1500];
        uint32_t n;
        uint64_t bytes;

        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(set(b, &dom1, "g.one", big), 0);
        assert_int_equal(set(b, &dom1, "g.two", big), RETAIN_E_OVER_PEER);
        retain_domain_gone(b, 1);
        retain_domain_gone(b, 1); /* twice, and for a domain without values: nothing */
        retain_domain_gone(b, 9);
        /* The next domain 1 has its whole budget; the old value is still there. */
        assert_int_equal(set(b, &dom1, "g.two", big), 0);
        assert_int_equal(strncmp(seen(b, "g.*"), "g.one=xxx", 9), 0);
        retain_get_usage(b, &n, &bytes);
        assert_int_equal(n, 2);
        assert_int_equal(bytes, charge("g.one", big) + charge("g.two", big));
        /* The new domain 1 replaces the orphan: the orphan's owner goes with its last value
         * (ASan checks it is freed once), and the new one is charged. */
        assert_int_equal(set(b, &dom1, "g.one", ""), 0);
        assert_int_equal(set(b, &dom1, "g.one", "new"), 0);
        assert_string_equal(seen(b, "g.one"), "g.one=new ");
        /* Orphans still count against the broker's bounds. */
        retain_domain_gone(b, 1);
        retain_get_usage(b, &n, &bytes);
        assert_int_equal(n, 2);
}

static void test_broker_bounds(void **state)
{
        Bus *b = *state;

        b->config.peer_retained_bytes = 1ull << 20;
        assert_int_equal(set(b, &dom1, "c.1", "a"), 0);
        assert_int_equal(set(b, &dom1, "c.2", "a"), 0);
        assert_int_equal(set(b, &dom2, "c.3", "a"), 0);
        assert_int_equal(set(b, &dom2, "c.4", "a"), 0);
        assert_int_equal(set(b, &uid7, "c.5", "a"), RETAIN_E_OVER_COUNT);
        assert_int_equal(set(b, &uid7, "c.4", "b"), 0); /* a replacement is not a new value */
        assert_int_equal(set(b, &dom1, "c.1", ""), 0);
        b->config.retained_bytes = 4 * charge("c.2", "a"); /* exactly four of these */
        assert_int_equal(set(b, &dom1, "c.1", "0123456789"), RETAIN_E_OVER_BYTES);
        assert_int_equal(set(b, &dom1, "c.1", "a"), 0);
        b->config.retained_max = 0;
        assert_int_equal(set(b, &dom1, "c.9", "a"), RETAIN_E_OVER_COUNT);
        assert_string_equal(seen(b, "c.*"), "c.2=a c.3=a c.4=b c.1=a ");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pattern_matches),
                cmocka_unit_test_setup_teardown(test_replace_clear_and_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_peer_bound_only_for_the_offender, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_broker_bounds, setup, teardown),
                cmocka_unit_test_setup_teardown(test_domain_gone_orphans_its_values, setup,
                                                teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
