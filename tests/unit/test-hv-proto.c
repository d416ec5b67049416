/*
 * Unit tests for xensim/hv/hv-proto.c: framing of the xensim-hvd protocol, and the request
 * checks the daemon applies before acting (each rejection is a disconnect there).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hv-proto.h"

static uint8_t buf[HV_MSG_MAX + 16];

static void test_proto_roundtrip_with_data(void **state)
{
        HvMsg m = {.op = HV_OP_GNT_MAP, .arg = {2, 1, 5, 7}, .n_data = 4}, out;
        uint32_t words[4] = {1, 8, 1, 9};
        const uint8_t *data;
        int len = hv_proto_encode(&m, words, buf, sizeof(buf));

        assert_int_equal(len, (int)(HV_MSG_HEADER_SIZE + 16));
        assert_int_equal(hv_proto_decode(buf, (size_t)len, &out, &data), 0);
        assert_int_equal(out.op, HV_OP_GNT_MAP);
        assert_int_equal(out.arg[2], 5);
        assert_int_equal(out.n_data, 4);
        assert_int_equal(hv_proto_word(data, 3), 9);
        assert_int_equal(hv_proto_validate_request(&out), 0);
}

static void test_proto_decode_short(void **state)
{
        HvMsg out;
        const uint8_t *data;

        memset(buf, 0, sizeof(buf));
        assert_int_equal(hv_proto_decode(buf, HV_MSG_HEADER_SIZE - 1, &out, &data), -EBADMSG);
        assert_int_equal(hv_proto_decode(buf, 0, &out, &data), -EBADMSG);
        assert_int_equal(hv_proto_decode(NULL, 64, &out, &data), -EBADMSG);
}

static void test_proto_decode_length_mismatch(void **state)
{
        HvMsg m = {.op = HV_OP_EVT_UNBIND, .n_data = 2}, out;
        const uint8_t *data;

        memcpy(buf, &m, sizeof(m));
        /* n_data says 8 bytes follow; give 4, then 12. */
        assert_int_equal(hv_proto_decode(buf, HV_MSG_HEADER_SIZE + 4, &out, &data), -EBADMSG);
        assert_int_equal(hv_proto_decode(buf, HV_MSG_HEADER_SIZE + 12, &out, &data), -EBADMSG);
        assert_int_equal(hv_proto_decode(buf, HV_MSG_HEADER_SIZE + 8, &out, &data), 0);
}

static void test_proto_decode_oversized(void **state)
{
        HvMsg m = {.op = HV_OP_GNT_MAP, .n_data = UINT32_MAX}, out;
        const uint8_t *data;

        memcpy(buf, &m, sizeof(m));
        /* A huge n_data must not wrap the length check. */
        assert_int_equal(hv_proto_decode(buf, HV_MSG_HEADER_SIZE, &out, &data), -EBADMSG);
        assert_int_equal(hv_proto_decode(buf, HV_MSG_MAX + 1, &out, &data), -EBADMSG);
        m.n_data = UINT32_MAX / 4u + 1u;
        memcpy(buf, &m, sizeof(m));
        assert_int_equal(hv_proto_decode(buf, HV_MSG_HEADER_SIZE, &out, &data), -EBADMSG);
}

static void test_proto_encode_too_big(void **state)
{
        HvMsg m = {.op = HV_OP_GNT_MAP, .n_data = 8};
        uint32_t words[8] = {0};

        assert_int_equal(hv_proto_encode(&m, words, buf, HV_MSG_HEADER_SIZE + 31), -EMSGSIZE);
        m.n_data = HV_MSG_MAX_DATA + 1;
        assert_int_equal(hv_proto_encode(&m, words, buf, sizeof(buf)), -EMSGSIZE);
}

static void test_proto_validate_unknown_op(void **state)
{
        HvMsg m = {.op = 0};

        assert_int_equal(hv_proto_validate_request(&m), -EOPNOTSUPP);
        m.op = HV_OP_MAX_;
        assert_int_equal(hv_proto_validate_request(&m), -EOPNOTSUPP);
        m.op = 0xffffffffu;
        assert_int_equal(hv_proto_validate_request(&m), -EOPNOTSUPP);
}

static void test_proto_validate_err_in_request(void **state)
{
        HvMsg m = {.op = HV_OP_EVT_UNBIND, .err = 5};

        assert_int_equal(hv_proto_validate_request(&m), -EBADMSG);
}

static void test_proto_validate_unexpected_data(void **state)
{
        HvMsg m = {.op = HV_OP_EVT_BIND_UNBOUND, .n_data = 1};

        assert_int_equal(hv_proto_validate_request(&m), -EBADMSG);
        m.n_data = 0;
        assert_int_equal(hv_proto_validate_request(&m), 0);
}

static void test_proto_validate_share_count(void **state)
{
        HvMsg m = {.op = HV_OP_GNT_SHARE, .arg = {1, 0, 1}};

        assert_int_equal(hv_proto_validate_request(&m), -EBADMSG);
        m.arg[1] = HV_PAGES_PER_REQ + 1;
        assert_int_equal(hv_proto_validate_request(&m), -EBADMSG);
        m.arg[1] = HV_PAGES_PER_REQ;
        assert_int_equal(hv_proto_validate_request(&m), 0);
}

static void test_proto_validate_map_count(void **state)
{
        HvMsg m = {.op = HV_OP_GNT_MAP, .arg = {3}, .n_data = 5};

        /* The data must hold exactly count (domid, ref) pairs. */
        assert_int_equal(hv_proto_validate_request(&m), -EBADMSG);
        m.n_data = 6;
        assert_int_equal(hv_proto_validate_request(&m), 0);
        m.arg[0] = 0;
        m.n_data = 0;
        assert_int_equal(hv_proto_validate_request(&m), -EBADMSG);
        m.arg[0] = HV_PAGES_PER_REQ + 1;
        m.n_data = 2 * (HV_PAGES_PER_REQ + 1);
        assert_int_equal(hv_proto_validate_request(&m), -EBADMSG);
}

static void test_proto_async_ops(void **state)
{
        HvMsg m = {.op = HV_OP_EVT_PEER_CHANGED};

        assert_true(hv_proto_op_is_async(HV_OP_EVT_PEER_CHANGED));
        assert_false(hv_proto_op_is_async(HV_OP_EVT_GET_PEER));
        assert_false(hv_proto_op_is_async(HV_OP_EVT_BIND_UNBOUND));
        assert_false(hv_proto_op_is_async(HV_OP_GNT_MAP));
        /* Only the daemon sends it: as a request it is refused. */
        assert_int_equal(hv_proto_validate_request(&m), -EOPNOTSUPP);
        m.op = HV_OP_EVT_GET_PEER;
        assert_int_equal(hv_proto_validate_request(&m), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_proto_roundtrip_with_data),
                cmocka_unit_test(test_proto_decode_short),
                cmocka_unit_test(test_proto_decode_length_mismatch),
                cmocka_unit_test(test_proto_decode_oversized),
                cmocka_unit_test(test_proto_encode_too_big),
                cmocka_unit_test(test_proto_validate_unknown_op),
                cmocka_unit_test(test_proto_validate_err_in_request),
                cmocka_unit_test(test_proto_validate_unexpected_data),
                cmocka_unit_test(test_proto_validate_share_count),
                cmocka_unit_test(test_proto_validate_map_count),
                cmocka_unit_test(test_proto_async_ops),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
