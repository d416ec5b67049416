/* Unit tests of xensim/xs-path and xs-perm: path syntax and the permission rule. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "xs-path.h"
#include "xs-perm.h"

static int canon(uint32_t domid, bool priv, const char *in, bool special, char *out)
{
        return xs_path_canonicalize(domid, priv, in, special, out, XS_PATH_BUF, NULL);
}

static void test_canonicalize_absolute(void **state)
{
        char out[XS_PATH_BUF];

        assert_int_equal(canon(0, true, "/a/b-c_d@e", false, out), 0);
        assert_string_equal(out, "/a/b-c_d@e");
        assert_int_equal(canon(0, true, "/", false, out), 0);
        assert_string_equal(out, "/");
}

static void test_canonicalize_relative(void **state)
{
        char out[XS_PATH_BUF];
        bool rel;

        assert_int_equal(xs_path_canonicalize(7, false, "data/x", false, out, sizeof(out), &rel),
                         0);
        assert_string_equal(out, "/local/domain/7/data/x");
        assert_true(rel);
}

static void test_canonicalize_special(void **state)
{
        char out[XS_PATH_BUF];

        assert_int_equal(canon(1, false, "@releaseDomain", true, out), 0);
        assert_int_equal(canon(1, false, "@releaseDomain", false, out), -EINVAL);
}

static void test_canonicalize_invalid(void **state)
{
        char out[XS_PATH_BUF];

        assert_int_equal(canon(0, true, "/a//b", false, out), -EINVAL);
        assert_int_equal(canon(0, true, "/a/", false, out), -EINVAL);
        assert_int_equal(canon(0, true, "/a b", false, out), -EINVAL);
        assert_int_equal(canon(0, true, "/a\xc3\xa9", false, out), -EINVAL);
        assert_int_equal(canon(0, true, "", false, out), -EINVAL);
        assert_int_equal(canon(0, true, "/a.b", false, out), -EINVAL);
}

static void test_canonicalize_length(void **state)
{
        static char in[XS_ABS_PATH_MAX + 8];
        char out[XS_PATH_BUF];

        /* Relative part of 2048 bytes is fine, 2049 is not (unprivileged only). */
        memset(in, 'x', sizeof(in));
        in[XS_REL_PATH_MAX] = 0;
        assert_int_equal(canon(3, false, in, false, out), 0);
        in[XS_REL_PATH_MAX] = 'x';
        in[XS_REL_PATH_MAX + 1] = 0;
        assert_int_equal(canon(3, false, in, false, out), -EINVAL);
        assert_int_equal(canon(0, true, in, false, out), 0);
        /* Absolute bound for everybody. */
        in[0] = '/';
        in[XS_ABS_PATH_MAX + 1] = 0;
        memset(in + 1, 'y', XS_ABS_PATH_MAX);
        assert_int_equal(canon(0, true, in, false, out), -EINVAL);
}

static void test_is_child(void **state)
{
        assert_true(xs_path_is_child("/a/b", "/a"));
        assert_true(xs_path_is_child("/a", "/a"));
        assert_false(xs_path_is_child("/ab", "/a"));
        assert_true(xs_path_is_child("/anything", "/"));
        assert_true(xs_path_is_child("@introduceDomain", "/"));
        assert_false(xs_path_is_child("/a", "/a/b"));
}

static void test_parent(void **state)
{
        char out[XS_PATH_BUF];

        assert_int_equal(xs_path_parent("/a/b", out, sizeof(out)), 0);
        assert_string_equal(out, "/a");
        assert_int_equal(xs_path_parent("/a", out, sizeof(out)), 0);
        assert_string_equal(out, "/");
        assert_int_equal(xs_path_parent("/", out, sizeof(out)), -EINVAL);
        assert_int_equal(xs_path_parent("@x", out, sizeof(out)), -EINVAL);
        assert_string_equal(xs_path_basename("/a/bc"), "bc");
}

static void test_event_path(void **state)
{
        assert_string_equal(xs_path_for_event("/local/domain/3/data/x", true, 3), "data/x");
        assert_string_equal(xs_path_for_event("/local/domain/3", true, 3), "");
        assert_string_equal(xs_path_for_event("/local/domain/3/x", false, 3), "/local/domain/3/x");
        assert_string_equal(xs_path_for_event("/local/domain/33/x", true, 3), "/local/domain/33/x");
}

static void test_perm_parse_valid(void **state)
{
        XsPerm p;
        char buf[XS_PERM_TEXT_MAX];

        assert_int_equal(xs_perm_parse("b12", &p), 0);
        assert_int_equal(p.domid, 12);
        assert_int_equal(p.access, XS_ACC_READ | XS_ACC_WRITE);
        xs_perm_format(&p, buf, sizeof(buf));
        assert_string_equal(buf, "b12");
        assert_int_equal(xs_perm_parse("n0", &p), 0);
        assert_int_equal(p.access, XS_ACC_NONE);
}

static void test_perm_parse_invalid(void **state)
{
        XsPerm p;

        assert_int_equal(xs_perm_parse("x1", &p), -EINVAL);
        assert_int_equal(xs_perm_parse("r", &p), -EINVAL);
        assert_int_equal(xs_perm_parse("r1a", &p), -EINVAL);
        assert_int_equal(xs_perm_parse("r99999999999", &p), -EINVAL);
        assert_int_equal(xs_perm_parse("", &p), -EINVAL);
}

static void test_perm_for_rules(void **state)
{
        const XsPerm perms[] = {{5, XS_ACC_READ}, {6, XS_ACC_WRITE}, {7, XS_ACC_NONE}};

        /* Owner and dom0 get everything, including OWNER. */
        assert_int_equal(xs_perm_for(perms, 3, 5, false),
                         XS_ACC_READ | XS_ACC_WRITE | XS_ACC_OWNER);
        assert_int_equal(xs_perm_for(perms, 3, 0, true), XS_ACC_READ | XS_ACC_WRITE | XS_ACC_OWNER);
        /* Explicit entries, then the default from the first entry. */
        assert_int_equal(xs_perm_for(perms, 3, 6, false), XS_ACC_WRITE);
        assert_int_equal(xs_perm_for(perms, 3, 7, false), XS_ACC_NONE);
        assert_int_equal(xs_perm_for(perms, 3, 8, false), XS_ACC_READ);
        /* dom0 owning a node does not make an unprivileged caller 0 special. */
        assert_int_equal(xs_perm_for(perms, 1, 0, false), XS_ACC_READ);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_canonicalize_absolute),
                cmocka_unit_test(test_canonicalize_relative),
                cmocka_unit_test(test_canonicalize_special),
                cmocka_unit_test(test_canonicalize_invalid),
                cmocka_unit_test(test_canonicalize_length),
                cmocka_unit_test(test_is_child),
                cmocka_unit_test(test_parent),
                cmocka_unit_test(test_event_path),
                cmocka_unit_test(test_perm_parse_valid),
                cmocka_unit_test(test_perm_parse_invalid),
                cmocka_unit_test(test_perm_for_rules),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
