/* Unit tests of xensim/xs-watch: registration, quota, matching and event paths. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "xs-watch.h"

typedef struct Events {
        int n;
        char paths[8][128];
} Events;

static void emit(void *ud, void *owner, const char *path, const char *token)
{
        Events *e = ud;

        if (e->n < 8)
                assert_true(snprintf(e->paths[e->n], sizeof(e->paths[0]), "%s %s", path, token) <
                            (int)sizeof(e->paths[0]));
        e->n++;
}

static bool deny_domu(void *ud, const XsWatch *w)
{
        return w->privileged;
}

static int owner_a, owner_b;

static void test_watch_add_remove(void **state)
{
        XsWatchList l;

        xs_watch_list_init(&l);
        assert_int_equal(xs_watch_add(&l, &owner_a, 1, false, "/x", false, "t", NULL), 0);
        assert_int_equal(xs_watch_add(&l, &owner_a, 1, false, "/x", false, "t", NULL), -EEXIST);
        assert_int_equal(xs_watch_add(&l, &owner_b, 1, false, "/x", false, "t", NULL), 0);
        assert_int_equal(xs_watch_count_domain(&l, 1), 2);
        assert_int_equal(xs_watch_remove(&l, &owner_a, "/x", "t"), 0);
        assert_int_equal(xs_watch_remove(&l, &owner_a, "/x", "t"), -ENOENT);
        xs_watch_remove_owner(&l, &owner_b);
        assert_int_equal(xs_watch_count_domain(&l, 1), 0);
        assert_int_equal(xs_watch_add(&l, &owner_a, 1, false, "/y", false, "t", NULL), 0);
        xs_watch_list_deinit(&l);
}

static void test_watch_quota(void **state)
{
        XsWatchList l;
        char tok[16];

        xs_watch_list_init(&l);
        for (unsigned i = 0; i < XS_QUOTA_WATCHES; i++) {
                assert_true(snprintf(tok, sizeof(tok), "%u", i) < (int)sizeof(tok));
                assert_int_equal(xs_watch_add(&l, &owner_a, 3, false, "/x", false, tok, NULL), 0);
        }
        assert_int_equal(xs_watch_add(&l, &owner_a, 3, false, "/x", false, "over", NULL), -E2BIG);
        assert_int_equal(xs_watch_add(&l, &owner_b, 0, true, "/x", false, "dom0", NULL), 0);
        xs_watch_list_deinit(&l);
}

static void test_watch_fire_ancestors(void **state)
{
        XsWatchList l;
        Events e = {0};

        xs_watch_list_init(&l);
        xs_watch_add(&l, &owner_a, 0, true, "/a", false, "t1", NULL);
        xs_watch_add(&l, &owner_a, 0, true, "/a/b/c", false, "t2", NULL);
        xs_watch_add(&l, &owner_a, 0, true, "/ab", false, "t3", NULL);
        xs_watch_add(&l, &owner_a, 0, true, "/", false, "t4", NULL);
        xs_watch_fire(&l, "/a/b", false, NULL, emit, &e);
        assert_int_equal(e.n, 2);
        assert_string_equal(e.paths[0], "/a/b t1");
        assert_string_equal(e.paths[1], "/a/b t4");
        /* Exact firing (children of a removed subtree) reaches only the exact watch. */
        e.n = 0;
        xs_watch_fire(&l, "/a/b/c", true, NULL, emit, &e);
        assert_int_equal(e.n, 1);
        assert_string_equal(e.paths[0], "/a/b/c t2");
        xs_watch_list_deinit(&l);
}

static void test_watch_fire_relative(void **state)
{
        XsWatchList l;
        Events e = {0};

        xs_watch_list_init(&l);
        xs_watch_add(&l, &owner_a, 4, false, "/local/domain/4/data", true, "rel", NULL);
        xs_watch_fire(&l, "/local/domain/4/data/x", false, NULL, emit, &e);
        assert_int_equal(e.n, 1);
        assert_string_equal(e.paths[0], "data/x rel");
        xs_watch_list_deinit(&l);
}

static void test_watch_fire_special(void **state)
{
        XsWatchList l;
        Events e = {0};

        xs_watch_list_init(&l);
        xs_watch_add(&l, &owner_a, 0, true, "@releaseDomain", false, "r", NULL);
        xs_watch_add(&l, &owner_a, 0, true, "@introduceDomain", false, "i", NULL);
        xs_watch_fire(&l, "@releaseDomain", false, NULL, emit, &e);
        assert_int_equal(e.n, 1);
        assert_string_equal(e.paths[0], "@releaseDomain r");
        xs_watch_list_deinit(&l);
}

static void test_watch_fire_denied(void **state)
{
        XsWatchList l;
        Events e = {0};

        xs_watch_list_init(&l);
        xs_watch_add(&l, &owner_a, 5, false, "/p", false, "domu", NULL);
        xs_watch_add(&l, &owner_b, 0, true, "/p", false, "dom0", NULL);
        xs_watch_fire(&l, "/p", false, deny_domu, emit, &e);
        assert_int_equal(e.n, 1);
        assert_string_equal(e.paths[0], "/p dom0");
        xs_watch_list_deinit(&l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_watch_add_remove),
                cmocka_unit_test(test_watch_quota),
                cmocka_unit_test(test_watch_fire_ancestors),
                cmocka_unit_test(test_watch_fire_relative),
                cmocka_unit_test(test_watch_fire_special),
                cmocka_unit_test(test_watch_fire_denied),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
