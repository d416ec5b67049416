/* Unit tests of xensim/xs-wire: framing, argument splitting, error names. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <xen/io/xs_wire.h>

#include <cmocka.h>

#include "xs-wire.h"

static size_t make_msg(uint8_t *buf, uint32_t type, uint32_t len)
{
        XsHeader h = {.type = type, .req_id = 7, .tx_id = 3, .len = len};

        xs_wire_encode_header(&h, buf);
        memset(buf + XS_WIRE_HEADER_SIZE, 'a', len);
        return XS_WIRE_HEADER_SIZE + len;
}

static void test_frame_complete(void **state)
{
        uint8_t buf[64];
        size_t n = make_msg(buf, XS_READ, 5), size;
        XsHeader h;

        assert_int_equal(xs_wire_frame(buf, n, &h, &size), 0);
        assert_int_equal(size, n);
        assert_int_equal(h.type, XS_READ);
        assert_int_equal(h.req_id, 7);
        assert_int_equal(h.tx_id, 3);
        assert_int_equal(h.len, 5);
}

static void test_frame_partial_header(void **state)
{
        uint8_t buf[64];
        XsHeader h;
        size_t size;

        make_msg(buf, XS_READ, 5);
        for (size_t n = 0; n < XS_WIRE_HEADER_SIZE; n++)
                assert_int_equal(xs_wire_frame(buf, n, &h, &size), -EAGAIN);
}

static void test_frame_partial_payload(void **state)
{
        uint8_t buf[64];
        size_t n = make_msg(buf, XS_WRITE, 20), size;
        XsHeader h;

        assert_int_equal(xs_wire_frame(buf, n - 1, &h, &size), -EAGAIN);
}

static void test_frame_max_payload(void **state)
{
        static uint8_t buf[XS_WIRE_HEADER_SIZE + XS_PAYLOAD_MAX];
        size_t n = make_msg(buf, XS_WRITE, XS_PAYLOAD_MAX), size;
        XsHeader h;

        assert_int_equal(xs_wire_frame(buf, n, &h, &size), 0);
        assert_int_equal(size, n);
}

static void test_frame_oversized(void **state)
{
        uint8_t buf[XS_WIRE_HEADER_SIZE];
        XsHeader h = {.type = XS_WRITE, .len = XS_PAYLOAD_MAX + 1};
        size_t size;

        xs_wire_encode_header(&h, buf);
        assert_int_equal(xs_wire_frame(buf, sizeof(buf), &h, &size), -EMSGSIZE);
        h.len = UINT32_MAX;
        xs_wire_encode_header(&h, buf);
        assert_int_equal(xs_wire_frame(buf, sizeof(buf), &h, &size), -EMSGSIZE);
}

static void test_args_split(void **state)
{
        static const uint8_t p[] = "a\0bc\0\0tail";
        const char *argv[2];
        size_t n;

        assert_int_equal(xs_wire_get_args(p, sizeof(p) - 1, argv, 2, &n), 0);
        assert_int_equal(n, 3); /* "a", "bc", ""; "tail" has no NUL */
        assert_string_equal(argv[0], "a");
        assert_string_equal(argv[1], "bc");
        assert_int_equal(xs_wire_count_strings(p, sizeof(p) - 1), 3);
}

static void test_args_no_room(void **state)
{
        const char *argv[1];
        size_t n;

        assert_int_equal(xs_wire_get_args((const uint8_t *)"a", 2, argv, 0, &n), -EINVAL);
}

static void test_onearg_valid(void **state)
{
        const char *s;

        assert_int_equal(xs_wire_onearg((const uint8_t *)"path", 5, &s), 0);
        assert_string_equal(s, "path");
}

static void test_onearg_invalid(void **state)
{
        const char *s;

        assert_int_equal(xs_wire_onearg((const uint8_t *)"", 0, &s), -EINVAL);
        assert_int_equal(xs_wire_onearg((const uint8_t *)"path", 4, &s), -EINVAL);
        assert_int_equal(xs_wire_onearg((const uint8_t *)"a\0b", 4, &s), -EINVAL);
}

static void test_error_names(void **state)
{
        assert_string_equal(xs_wire_error_name(EACCES), "EACCES");
        assert_string_equal(xs_wire_error_name(E2BIG), "E2BIG");
        assert_string_equal(xs_wire_error_name(ENOTTY), "EINVAL");
        assert_int_equal(xs_wire_error_from_name("EAGAIN", 7), EAGAIN);
        assert_int_equal(xs_wire_error_from_name("EAGAINX", 7), 0);
        assert_string_equal(xs_wire_type_name(XS_READ), "READ");
        assert_string_equal(xs_wire_type_name(12345), "UNKNOWN");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_frame_complete),
                cmocka_unit_test(test_frame_partial_header),
                cmocka_unit_test(test_frame_partial_payload),
                cmocka_unit_test(test_frame_max_payload),
                cmocka_unit_test(test_frame_oversized),
                cmocka_unit_test(test_args_split),
                cmocka_unit_test(test_args_no_room),
                cmocka_unit_test(test_onearg_valid),
                cmocka_unit_test(test_onearg_invalid),
                cmocka_unit_test(test_error_names),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
