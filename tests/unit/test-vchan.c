/*
 * Unit tests of libbus/vchan.c parts that need no Xen: strict parsing of xenstore values and
 * the path convention. Setup over grants, event channels and xenstore is tested over xensim
 * in tests/interop/.
 */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
/* cmocka.h needs the headers above. */
#include <cmocka.h>

#include "vchan.h"

static int parse(const char *s, uint32_t max, uint32_t *ret)
{
        return vbus__vchan_parse_uint(s, strlen(s), max, ret);
}

static void test_parse_uint_accepts_canonical_decimal(void **state)
{
        uint32_t v = 0;

        assert_int_equal(parse("0", 10, &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(parse("8", 10, &v), 0);
        assert_int_equal(v, 8);
        assert_int_equal(parse("4294967295", UINT32_MAX, &v), 0);
        assert_int_equal(v, UINT32_MAX);
        assert_int_equal(parse("32751", VBUS_VCHAN_DOMID_MAX, &v), 0);
        assert_int_equal(v, 32751);
}

static void test_parse_uint_rejects_malformed(void **state)
{
        static const char *bad[] = {"",    " 1", "1 ",         "+1",          "-1",
                                    "01",  "00", "0x1",        "1a",          "1\n",
                                    "1.0", "١",  "4294967296", "99999999999", "12345678901"};
        uint32_t v = 77;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(parse(bad[i], UINT32_MAX, &v), -EPROTO);
        assert_int_equal(parse("11", 10, &v), -EPROTO);
        assert_int_equal(parse("32752", VBUS_VCHAN_DOMID_MAX, &v), -EPROTO);
        /* embedded NUL inside the stated length */
        assert_int_equal(vbus__vchan_parse_uint("1\0"
                                                "2",
                                                3, UINT32_MAX, &v),
                         -EPROTO);
        assert_int_equal(vbus__vchan_parse_uint(NULL, 0, UINT32_MAX, &v), -EPROTO);
        /* not NUL-terminated: only len bytes are looked at */
        assert_int_equal(vbus__vchan_parse_uint("123xyz", 3, UINT32_MAX, &v), 0);
        assert_int_equal(v, 123);
}

static void test_path_build_convention(void **state)
{
        char buf[128];

        assert_int_equal(vbus__vchan_path_build(buf, sizeof(buf), 5, 0, "vbus"), 0);
        assert_string_equal(buf, "/local/domain/5/data/vchan/0/vbus");
        assert_int_equal(vbus__vchan_path_build(buf, sizeof(buf), 0, 12, "my_Port-9"), 0);
        assert_string_equal(buf, "/local/domain/0/data/vchan/12/my_Port-9");
        assert_true(vbus__vchan_path_is_valid(buf));
}

static void test_path_build_rejects_bad_port_and_domid(void **state)
{
        char buf[64];

        assert_int_equal(vbus__vchan_path_build(buf, sizeof(buf), 1, 0, ""), -EINVAL);
        assert_int_equal(vbus__vchan_path_build(buf, sizeof(buf), 1, 0, "a/b"), -EINVAL);
        assert_int_equal(vbus__vchan_path_build(buf, sizeof(buf), 1, 0, "a b"), -EINVAL);
        assert_int_equal(vbus__vchan_path_build(buf, sizeof(buf), 1, 0, ".."), -EINVAL);
        assert_int_equal(vbus__vchan_path_build(buf, sizeof(buf), 1, 0, NULL), -EINVAL);
        assert_int_equal(vbus__vchan_path_build(buf, sizeof(buf), 0x7ff0, 0, "p"), -EINVAL);
        assert_int_equal(vbus__vchan_path_build(buf, 20, 1, 0, "port"), -ENAMETOOLONG);
}

static void test_path_is_valid_rules(void **state)
{
        assert_true(vbus__vchan_path_is_valid("/local/domain/1/data/vchan/0/test"));
        assert_true(vbus__vchan_path_is_valid("/a@b"));
        assert_false(vbus__vchan_path_is_valid(NULL));
        assert_false(vbus__vchan_path_is_valid(""));
        assert_false(vbus__vchan_path_is_valid("/"));
        assert_false(vbus__vchan_path_is_valid("data/vchan"));
        assert_false(vbus__vchan_path_is_valid("/a//b"));
        assert_false(vbus__vchan_path_is_valid("/a/b/"));
        assert_false(vbus__vchan_path_is_valid("/a b"));
        assert_false(vbus__vchan_path_is_valid("/a.b"));
}

/* The broker's own shortages are local; what a guest published or granted is not. */
static void test_error_is_local_splits_blame(void **state)
{
        static const int local[] = {-EMFILE, -ENFILE, -ENOMEM, -ENOSPC, -ENOBUFS, -ENODEV, -EAGAIN};
        static const int guest[] = {-EPROTO, -EINVAL, -EPERM,  -ESRCH, -EACCES,
                                    -EFAULT, -EBUSY,  -ENOENT, 0};

        (void)state;
        for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
                assert_true(vbus__vchan_error_is_local(local[i]));
        for (size_t i = 0; i < sizeof(guest) / sizeof(guest[0]); i++)
                assert_false(vbus__vchan_error_is_local(guest[i]));
}

/* Bad arguments are refused before any Xen handle is touched (none exists here). */
static void test_client_new_with_rejects_bad_arguments(void **state)
{
        VbusVchanHandles none = {0};
        VbusVchan *v = NULL;

        (void)state;
        assert_int_equal(vbus__vchan_client_new_with(&v, NULL, 1, "/local/domain/1/x"), -EINVAL);
        assert_int_equal(vbus__vchan_client_new_with(&v, &none, 1, "/local/domain/1/x"), -EINVAL);
        assert_int_equal(vbus__vchan_client_new_with(NULL, &none, 1, "/local/domain/1/x"), -EINVAL);
        assert_null(v);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_uint_accepts_canonical_decimal),
                cmocka_unit_test(test_parse_uint_rejects_malformed),
                cmocka_unit_test(test_path_build_convention),
                cmocka_unit_test(test_path_build_rejects_bad_port_and_domid),
                cmocka_unit_test(test_path_is_valid_rules),
                cmocka_unit_test(test_error_is_local_splits_blame),
                cmocka_unit_test(test_client_new_with_rejects_bad_arguments),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
