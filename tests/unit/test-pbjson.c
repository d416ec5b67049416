/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for clients/vbusctl/pbjson.c, vbusctl's JSON <-> protobuf codec: every field type
 * through JSON to protobuf and back (64-bit integers as strings, bytes in base64, enums by name,
 * repeated and packed fields, nested and recursive messages, the .proto name accepted for the
 * JSON name); exact wire bytes for a negative int32 and a zigzag sint; and each refusal with the
 * place it names: malformed JSON, unknown fields, wrong types, numbers out of range, bad base64,
 * unknown enum names, nesting past PBJSON_DEPTH_MAX; a reply that does not decode.
 *
 * vbusctl is a program, not a library: its modules are compiled into this test directly.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../clients/vbusctl/json.c"   /* NOLINT(bugprone-suspicious-include) */
#include "../../clients/vbusctl/pbjson.c" /* NOLINT(bugprone-suspicious-include) */
#include "describe-fixture.h"

/* JSON -> protobuf -> JSON; returns the printed JSON (free it). */
static char *roundtrip(const Fixture *fx, const char *json)
{
        char err[PBJSON_ERR_MAX], *out = NULL;
        uint8_t *buf = NULL;
        size_t n = 0, len = 0;
        FILE *f;
        int r = pbjson_encode(&fx->d, &fx->msg, json, strlen(json), &buf, &n, err);

        if (r != 0)
                fail_msg("encode '%s': %s", json, err);
        f = open_memstream(&out, &len);
        assert_non_null(f);
        r = pbjson_print(f, &fx->d, &fx->msg, buf, n, err);
        if (r != 0)
                fail_msg("print '%s': %s", json, err);
        (void)fclose(f);
        free(buf);
        return out;
}

static void expect_roundtrip(const Fixture *fx, const char *json, const char *want)
{
        char *got = roundtrip(fx, json);

        if (strcmp(got, want) != 0)
                fail_msg("'%s' came back as '%s', not '%s'", json, got, want);
        free(got);
}

static void expect_refused(const Fixture *fx, const char *json, const char *reason)
{
        char err[PBJSON_ERR_MAX] = "";
        uint8_t *buf = NULL;
        size_t n = 0;

        assert_int_equal(pbjson_encode(&fx->d, &fx->msg, json, strlen(json), &buf, &n, err),
                         -EINVAL);
        assert_null(buf);
        if (!strstr(err, reason))
                fail_msg("'%s': error '%s' lacks '%s'", json, err, reason);
}

static void test_pbjson_roundtrip_scalars(void **state)
{
        Fixture fx;

        (void)state;
        fixture_init(&fx);
        expect_roundtrip(&fx, "{}", "{}");
        expect_roundtrip(&fx, "{\"i32\":-5,\"i64\":\"-9223372036854775808\",\"u32\":4294967295}",
                         "{\"i32\":-5,\"i64\":\"-9223372036854775808\",\"u32\":4294967295}");
        /* 64-bit integers are accepted as numbers too, and printed as strings. */
        expect_roundtrip(&fx, "{\"i64\":42,\"s64\":-3,\"fx\":\"18446744073709551615\"}",
                         "{\"i64\":\"42\",\"s64\":\"-3\",\"fx\":\"18446744073709551615\"}");
        /* Integers in exponent form, and as strings, when whole. */
        expect_roundtrip(&fx, "{\"i32\":1e3,\"u32\":\"7\"}", "{\"i32\":1000,\"u32\":7}");
        expect_roundtrip(&fx, "{\"b\":true,\"s\":\"caf\\u00e9 \\\"q\\\" \\ud83d\\ude00\"}",
                         "{\"b\":true,\"s\":\"caf\xc3\xa9 \\\"q\\\" \xf0\x9f\x98\x80\"}");
        /* Either base64 alphabet, padding optional; printed standard and padded. */
        expect_roundtrip(&fx, "{\"by\":\"-_8\"}", "{\"by\":\"+/8=\"}");
        expect_roundtrip(&fx, "{\"d\":0.5,\"f\":\"-Infinity\"}", "{\"d\":0.5,\"f\":\"-Infinity\"}");
        expect_roundtrip(&fx, "{\"d\":\"NaN\"}", "{\"d\":\"NaN\"}");
        expect_roundtrip(&fx, "{\"e\":\"BLUE\"}", "{\"e\":\"BLUE\"}");
        /* An enum number the description does not name is kept as a number. */
        expect_roundtrip(&fx, "{\"e\":7}", "{\"e\":7}");
        expect_roundtrip(&fx, "{\"s32\":-2147483648}", "{\"s32\":-2147483648}");
        /* JSON name and .proto name; null is the default. */
        expect_roundtrip(&fx, "{\"userId\":\"5\"}", "{\"userId\":\"5\"}");
        expect_roundtrip(&fx, "{\"user_id\":6,\"s\":null}", "{\"userId\":\"6\"}");
}

static void test_pbjson_roundtrip_nested(void **state)
{
        Fixture fx;

        (void)state;
        fixture_init(&fx);
        expect_roundtrip(&fx, "{\"nums\":[1,-2,3],\"tags\":[\"a\",\"\"],\"nums\":[]}",
                         "{\"nums\":[1,-2,3],\"tags\":[\"a\",\"\"]}");
        expect_roundtrip(&fx, "{\"sub\":{\"sub\":{\"i32\":1}},\"kids\":[{},{\"s\":\"x\"}]}",
                         "{\"sub\":{\"sub\":{\"i32\":1}},\"kids\":[{},{\"s\":\"x\"}]}");
}

static void test_pbjson_wire_bytes(void **state)
{
        static const uint8_t want[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0x01, 0x88, 0x01, 0x03};
        char err[PBJSON_ERR_MAX];
        const char *json = "{\"i32\":-1,\"s32\":-2}";
        uint8_t *buf = NULL;
        size_t n = 0;
        Fixture fx;

        (void)state;
        fixture_init(&fx);
        assert_int_equal(pbjson_encode(&fx.d, &fx.msg, json, strlen(json), &buf, &n, err), 0);
        assert_int_equal(n, sizeof(want));
        assert_memory_equal(buf, want, sizeof(want));
        free(buf);
}

static void test_pbjson_refused(void **state)
{
        static const struct {
                const char *json, *reason;
        } cases[] = {
                {"", "at $ (offset 0): expected '{', not the end"},
                {"[]", "at $ (offset 0): expected '{'"},
                {"{\"i32\" 1}", "at $ (offset 7): expected ':'"},
                {"{\"nope\":1}", "at $ (offset 7): t.v1.Msg has no field 'nope'"},
                {"{\"sub\":{\"nope\":1}}", "at $.sub (offset 14): t.v1.Msg has no field 'nope'"},
                {"{\"kids\":[{},{\"i32\":\"x\"}]}", "at $.kids[1].i32"},
                {"{\"nums\":[1,\"a\"]}", "at $.nums[1] (offset"},
                {"{\"i32\":2147483648}",
                 "at $.i32 (offset 17): 2147483648 is out of range for int32"},
                {"{\"u32\":-1}", "-1 is out of range for uint32"},
                {"{\"i64\":\"9223372036854775808\"}", "out of range for int64"},
                {"{\"fx\":\"18446744073709551616\"}", "out of range for fixed64"},
                {"{\"i32\":1.5}", "'1.5' is not a whole number"},
                {"{\"f\":1e39}", "1e39 is out of range for float"},
                {"{\"i32\":01}", "a number with a leading zero"},
                {"{\"b\":\"true\"}", "bool wants true or false"},
                {"{\"s\":5}", "at $.s (offset 5): string wants a string"},
                {"{\"by\":\"a\"}", "bytes want base64"},
                {"{\"e\":\"PURPLE\"}", "'PURPLE' is not a value of t.v1.Color"},
                {"{\"sub\":5}", "at $.sub (offset 7): t.v1.Msg wants an object"},
                {"{\"nums\":5}", "a repeated field wants an array"},
                {"{\"nums\":[null]}", "null in a repeated field"},
                {"{\"s\":\"a\\qb\"}", "a bad escape '\\q'"},
                {"{\"s\":\"\\ud800\"}", "a lone surrogate"},
                {"{\"s\":\"\x01\"}", "a control character inside a string"},
                {"{\"s\":\"abc", "a string without its closing quote"},
                {"{\"i32\":1,}", "expected a member name"},
                {"{} x", "text after the object"},
                {"{\"i32\":tru}", "expected a value"},
        };
        Fixture fx;

        (void)state;
        fixture_init(&fx);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                expect_refused(&fx, cases[i].json, cases[i].reason);
}

static void test_pbjson_depth(void **state)
{
        char json[8 * (PBJSON_DEPTH_MAX + 2) + 8];
        size_t n = 0;
        Fixture fx;

        (void)state;
        fixture_init(&fx);
        n += (size_t)sprintf(json + n, "{");
        for (int i = 0; i < PBJSON_DEPTH_MAX; i++)
                n += (size_t)sprintf(json + n, "\"sub\":{");
        for (int i = 0; i <= PBJSON_DEPTH_MAX; i++)
                n += (size_t)sprintf(json + n, "}");
        expect_refused(&fx, json, "nested deeper than 64");
}

static void test_pbjson_print_malformed(void **state)
{
        static const uint8_t garbage[] = {0x08}; /* a tag without its varint */
        /* Field 11 (sub) 65 levels deep, built from the inside out: tag 0x5a, length, body. */
        uint8_t deep[4 * (PBJSON_DEPTH_MAX + 1)];
        size_t start = sizeof(deep);
        char err[PBJSON_ERR_MAX], *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        Fixture fx;

        (void)state;
        fixture_init(&fx);
        assert_non_null(f);
        assert_int_equal(pbjson_print(f, &fx.d, &fx.msg, garbage, sizeof(garbage), err), -EINVAL);
        assert_non_null(strstr(err, "the t.v1.Msg does not decode"));
        for (size_t i = 0; i <= PBJSON_DEPTH_MAX; i++) {
                size_t body = sizeof(deep) - start;

                if (body >= 0x80) {
                        deep[--start] = (uint8_t)(body >> 7);
                        deep[--start] = (uint8_t)(0x80 | (body & 0x7f));
                } else {
                        deep[--start] = (uint8_t)body;
                }
                deep[--start] = 0x5a;
        }
        assert_int_equal(pbjson_print(f, &fx.d, &fx.msg, deep + start, sizeof(deep) - start, err),
                         -EINVAL);
        assert_non_null(strstr(err, "nested too deep"));
        (void)fclose(f);
        free(out);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pbjson_roundtrip_scalars),
                cmocka_unit_test(test_pbjson_roundtrip_nested),
                cmocka_unit_test(test_pbjson_wire_bytes),
                cmocka_unit_test(test_pbjson_refused),
                cmocka_unit_test(test_pbjson_depth),
                cmocka_unit_test(test_pbjson_print_malformed),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
