/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vchand/router.c: wildcard semantics, removal and pruning, and a randomised
 * comparison against a naive matcher written straight from docs/protocol.md section 6.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router.h"

typedef struct Sub {
        RouterSub rs; /* first member: the callback gets &rs */
        int id;
        int hits;
} Sub;

static int count_hit(RouterSub *rs, void *userdata)
{
        Sub *s = (Sub *)rs;

        s->hits++;
        (*(int *)userdata)++;
        return 0;
}

static int match(Router *r, const char *topic)
{
        int n = 0;

        assert_int_equal(router_match(r, topic, strlen(topic), count_hit, &n), 0);
        return n;
}

static void add(Router *r, Sub *s, const char *pattern)
{
        assert_int_equal(router_add(r, pattern, strlen(pattern), &s->rs), 0);
}

static void test_router_exact_star_tail(void **state)
{
        Router r;
        Sub exact = {0}, star = {0}, tail = {0}, all = {0};

        assert_int_equal(router_init(&r), 0);
        add(&r, &exact, "sensors.kitchen.temp");
        add(&r, &star, "sensors.*.temp");
        add(&r, &tail, "sensors.>");
        add(&r, &all, ">");
        assert_int_equal(match(&r, "sensors.kitchen.temp"), 4);
        assert_int_equal(exact.hits, 1);
        assert_int_equal(star.hits, 1);
        assert_int_equal(match(&r, "sensors.hall.temp"), 3);
        assert_int_equal(match(&r, "sensors.hall"), 2);
        /* `>` needs at least one token after the prefix. */
        assert_int_equal(match(&r, "sensors"), 1);
        assert_int_equal(all.hits, 4);
        assert_int_equal(match(&r, "other.topic"), 1);
        assert_int_equal(match(&r, "sensors.kitchen.temp.extra"), 2);
        router_deinit(&r);
}

static void test_router_remove_prunes(void **state)
{
        Router r;
        Sub a = {0}, b = {0}, c = {0};

        assert_int_equal(router_init(&r), 0);
        add(&r, &a, "x.y.z");
        add(&r, &b, "x.*.z");
        add(&r, &c, "x.>");
        assert_true(r.n_nodes > 0);
        assert_int_equal(r.n_subs, 3);
        router_remove(&r, &b.rs);
        assert_int_equal(match(&r, "x.y.z"), 2);
        router_remove(&r, &a.rs);
        router_remove(&r, &c.rs);
        router_remove(&r, &c.rs); /* twice is a no-op */
        assert_int_equal(r.n_subs, 0);
        assert_int_equal(r.n_nodes, 0);
        assert_int_equal(match(&r, "x.y.z"), 0);
        /* A removed subscription can be added again. */
        add(&r, &a, "x.y");
        assert_int_equal(match(&r, "x.y"), 1);
        router_deinit(&r);
}

static void test_router_invalid_input(void **state)
{
        Router r;
        Sub a = {0};
        int n = 0;

        assert_int_equal(router_init(&r), 0);
        assert_int_equal(router_add(&r, "a.>.b", 5, &a.rs), -EINVAL);
        assert_int_equal(router_add(&r, "", 0, &a.rs), -EINVAL);
        add(&r, &a, "a.b");
        assert_int_equal(router_add(&r, "a.c", 3, &a.rs), -EBUSY);
        assert_int_equal(router_match(&r, "a.*", 3, count_hit, &n), -EINVAL);
        assert_int_equal(router_match(&r, "a..b", 4, count_hit, &n), -EINVAL);
        router_deinit(&r);
        /* deinit detached the subscription */
        assert_null(a.rs.node);
}

static int stop_at_first(RouterSub *rs, void *userdata)
{
        (*(int *)userdata)++;
        return 42;
}

static void test_router_callback_stops_walk(void **state)
{
        Router r;
        Sub a = {0}, b = {0};
        int n = 0;

        assert_int_equal(router_init(&r), 0);
        add(&r, &a, "a.b");
        add(&r, &b, "a.*");
        assert_int_equal(router_match(&r, "a.b", 3, stop_at_first, &n), 42);
        assert_int_equal(n, 1);
        router_deinit(&r);
}

/* The naive matcher, straight from the definition. */
static bool naive_match(const char *pattern, const char *topic)
{
        char p[256], t[256], *ps, *ts, *pt, *tt;

        assert_true(snprintf(p, sizeof(p), "%s", pattern) < (int)sizeof(p));
        assert_true(snprintf(t, sizeof(t), "%s", topic) < (int)sizeof(t));
        pt = strtok_r(p, ".", &ps);
        tt = strtok_r(t, ".", &ts);
        while (pt) {
                if (strcmp(pt, ">") == 0)
                        return tt != NULL;
                if (!tt || (strcmp(pt, "*") != 0 && strcmp(pt, tt) != 0))
                        return false;
                pt = strtok_r(NULL, ".", &ps);
                tt = strtok_r(NULL, ".", &ts);
        }
        return tt == NULL;
}

/* 1 to 4 tokens of a, b or c; a pattern's may also be * or (last only) >. At most 8 bytes. */
static void random_name(char *buf, unsigned *seed, bool pattern)
{
        static const char toks[] = "abc*>";
        int n = 1 + rand_r(seed) % 4;
        size_t len = 0;

        for (int i = 0; i < n; i++) {
                int k = rand_r(seed) % (pattern ? 5 : 3);

                if (k == 4 && i != n - 1)
                        k = 3;
                if (i)
                        buf[len++] = '.';
                buf[len++] = toks[k];
        }
        buf[len] = '\0';
}

static void test_router_matches_naive_randomised(void **state)
{
        enum { N_SUBS = 200 };
        static Sub subs[N_SUBS];
        static char patterns[N_SUBS][64];
        unsigned seed = 99;
        Router r;

        assert_int_equal(router_init(&r), 0);
        for (int i = 0; i < N_SUBS; i++) {
                memset(&subs[i], 0, sizeof(subs[i]));
                random_name(patterns[i], &seed, true);
                add(&r, &subs[i], patterns[i]);
        }
        for (int round = 0; round < 3000; round++) {
                char topic[64];

                random_name(topic, &seed, false);
                for (int i = 0; i < N_SUBS; i++)
                        subs[i].hits = 0;
                match(&r, topic);
                for (int i = 0; i < N_SUBS; i++) {
                        if (subs[i].hits != (naive_match(patterns[i], topic) ? 1 : 0))
                                fail_msg("pattern %s topic %s: router %d naive %d", patterns[i],
                                         topic, subs[i].hits, naive_match(patterns[i], topic));
                }
                /* Churn: replace one subscription now and then. */
                if (round % 7 == 0) {
                        int k = rand_r(&seed) % N_SUBS;

                        router_remove(&r, &subs[k].rs);
                        random_name(patterns[k], &seed, true);
                        add(&r, &subs[k], patterns[k]);
                }
        }
        for (int i = 0; i < N_SUBS; i++)
                router_remove(&r, &subs[i].rs);
        assert_int_equal(r.n_nodes, 0);
        router_deinit(&r);
}

static void test_router_many_literal_children(void **state)
{
        enum { N = 5000 };
        static Sub subs[N];
        Router r;
        char name[32];

        assert_int_equal(router_init(&r), 0);
        for (int i = 0; i < N; i++) {
                memset(&subs[i], 0, sizeof(subs[i]));
                assert_true(snprintf(name, sizeof(name), "dev.n%d.state", i) < (int)sizeof(name));
                add(&r, &subs[i], name);
        }
        for (int i = 0; i < N; i += 97) {
                assert_true(snprintf(name, sizeof(name), "dev.n%d.state", i) < (int)sizeof(name));
                assert_int_equal(match(&r, name), 1);
                assert_int_equal(subs[i].hits, 1);
        }
        for (int i = 0; i < N; i += 2)
                router_remove(&r, &subs[i].rs);
        for (int i = 1; i < N; i += 97) {
                assert_true(snprintf(name, sizeof(name), "dev.n%d.state", i) < (int)sizeof(name));
                assert_int_equal(match(&r, name), i % 2);
        }
        router_deinit(&r);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_router_exact_star_tail),
                cmocka_unit_test(test_router_remove_prunes),
                cmocka_unit_test(test_router_invalid_input),
                cmocka_unit_test(test_router_callback_stops_walk),
                cmocka_unit_test(test_router_matches_naive_randomised),
                cmocka_unit_test(test_router_many_literal_children),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
