/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for libbus/wire/describe.c, the rules the broker applies to a server's
 * vbus.v1.ServiceDescription: a valid one (with a recursive type) passes, and each rule broken
 * alone is refused with a reason naming it: wrong service, dangling and wrong-kind references,
 * duplicate names and numbers, field numbers out of range or reserved, unknown types, bad names,
 * packed strings, an empty enum, counts over the limits, bytes that are not a description, a
 * NUL inside a name, and a description over VBUS_DESCRIPTION_MAX.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "describe-fixture.h"
#include "describe.h"

/* Packs @d and validates it for "t.v1.S"; the reason in @why. */
static int check(const Vbus__V1__ServiceDescription *d, char *why)
{
        size_t n = vbus__v1__service_description__get_packed_size(d);
        uint8_t *buf = malloc(n ? n : 1);
        int r;

        assert_non_null(buf);
        (void)vbus__v1__service_description__pack(d, buf);
        why[0] = '\0';
        r = vbus__describe_validate(buf, n, "t.v1.S", why);
        free(buf);
        return r;
}

static void expect_refused(const Vbus__V1__ServiceDescription *d, int err, const char *reason)
{
        char why[VBUS_DESCRIPTION_WHY_MAX];

        assert_int_equal(check(d, why), err);
        if (!strstr(why, reason))
                fail_msg("reason '%s' lacks '%s'", why, reason);
}

static void test_describe_valid(void **state)
{
        Fixture fx;
        char why[VBUS_DESCRIPTION_WHY_MAX];

        (void)state;
        fixture_init(&fx);
        assert_int_equal(check(&fx.d, why), 0);
}

static void test_describe_other_service(void **state)
{
        Fixture fx;

        (void)state;
        fixture_init(&fx);
        fx.d.service = (char *)"t.v1.Other";
        expect_refused(&fx.d, -EINVAL, "not the service served");
}

static void test_describe_dangling_reference(void **state)
{
        Fixture fx;

        (void)state;
        fixture_init(&fx);
        fx.f[10].type_name = (char *)"t.v1.Gone";
        expect_refused(&fx.d, -EINVAL, "field 'sub': no type named 't.v1.Gone'");
        fixture_init(&fx);
        fx.m[0].input = (char *)"t.v1.Gone";
        expect_refused(&fx.d, -EINVAL, "method Get: input 't.v1.Gone' is no message");
        fixture_init(&fx);
        fx.m[1].output = (char *)"t.v1.Color"; /* an enum, not a message */
        expect_refused(&fx.d, -EINVAL, "method Watch: output 't.v1.Color' is no message");
}

static void test_describe_wrong_kind_reference(void **state)
{
        Fixture fx;

        (void)state;
        fixture_init(&fx);
        fx.f[9].type_name = (char *)"t.v1.Msg"; /* an enum field naming a message */
        expect_refused(&fx.d, -EINVAL, "'t.v1.Msg' is not an enum");
        fixture_init(&fx);
        fx.f[0].type_name = (char *)"t.v1.Msg"; /* a scalar with a type name */
        expect_refused(&fx.d, -EINVAL, "type_name on a scalar field");
}

static void test_describe_duplicates(void **state)
{
        Fixture fx;

        (void)state;
        fixture_init(&fx);
        fx.f[1].number = 1;
        expect_refused(&fx.d, -EINVAL, "two fields numbered 1");
        fixture_init(&fx);
        fx.f[1].name = (char *)"i32";
        expect_refused(&fx.d, -EINVAL, "two fields named 'i32'");
        fixture_init(&fx);
        fx.f[1].json_name = (char *)"userId";
        expect_refused(&fx.d, -EINVAL, "two fields with the JSON name 'userId'");
        fixture_init(&fx);
        fx.m[1].name = (char *)"Get";
        expect_refused(&fx.d, -EINVAL, "two methods named 'Get'");
        fixture_init(&fx);
        fx.en.name = (char *)"t.v1.Msg";
        expect_refused(&fx.d, -EINVAL, "two types named 't.v1.Msg'");
        fixture_init(&fx);
        fx.v[2].name = (char *)"RED";
        expect_refused(&fx.d, -EINVAL, "enum t.v1.Color: two values named 'RED'");
}

static void test_describe_field_numbers(void **state)
{
        static const uint32_t bad[] = {0, 19000, 19999, VBUS_FIELD_NUMBER_MAX + 1, UINT32_MAX};
        Fixture fx;

        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                fixture_init(&fx);
                fx.f[0].number = bad[i];
                expect_refused(&fx.d, -EINVAL, "out of range");
        }
        fixture_init(&fx);
        fx.f[0].number = VBUS_FIELD_NUMBER_MAX;
        expect_refused(&fx.d, 0, "");
}

static void test_describe_types_and_names(void **state)
{
        Fixture fx;

        (void)state;
        fixture_init(&fx);
        fx.f[0].type = (Vbus__V1__FieldDescription__Type)0;
        expect_refused(&fx.d, -EINVAL, "unknown type 0");
        fixture_init(&fx);
        fx.f[0].type = (Vbus__V1__FieldDescription__Type)18;
        expect_refused(&fx.d, -EINVAL, "unknown type 18");
        fixture_init(&fx);
        fx.f[12].packed = true; /* repeated strings are never packed */
        expect_refused(&fx.d, -EINVAL, "packed but not a repeated number");
        fixture_init(&fx);
        fx.f[0].name = (char *)"9lives";
        expect_refused(&fx.d, -EINVAL, "not an identifier");
        fixture_init(&fx);
        fx.msg.name = (char *)"t..Msg";
        expect_refused(&fx.d, -EINVAL, "not a full type name");
        fixture_init(&fx);
        fx.m[0].name = (char *)"Get/x";
        expect_refused(&fx.d, -EINVAL, "a method name is not an identifier");
        fixture_init(&fx);
        fx.en.n_values = 0;
        expect_refused(&fx.d, -EINVAL, "enum t.v1.Color: no values");
}

static void test_describe_limits(void **state)
{
        Vbus__V1__MethodDescription **many =
                calloc(VBUS_DESCRIPTION_METHODS_MAX + 1, sizeof(Vbus__V1__MethodDescription *));
        Vbus__V1__MessageDescription **types =
                calloc(VBUS_DESCRIPTION_TYPES_MAX + 1, sizeof(Vbus__V1__MessageDescription *));
        Fixture fx;

        (void)state;
        assert_non_null(many);
        assert_non_null(types);
        fixture_init(&fx);
        for (size_t i = 0; i <= VBUS_DESCRIPTION_METHODS_MAX; i++)
                many[i] = &fx.m[0];
        fx.d.methods = many;
        fx.d.n_methods = VBUS_DESCRIPTION_METHODS_MAX + 1;
        expect_refused(&fx.d, -E2BIG, "more than 256 methods");
        fixture_init(&fx);
        fx.msg.n_fields = 0; /* small, so the count is what is over, not the bytes */
        for (size_t i = 0; i <= VBUS_DESCRIPTION_TYPES_MAX; i++)
                types[i] = &fx.msg;
        fx.d.messages = types;
        fx.d.n_messages = VBUS_DESCRIPTION_TYPES_MAX; /* with the enum: one too many */
        expect_refused(&fx.d, -E2BIG, "more than 512 types");
        free(many);
        free(types);
}

static void test_describe_bytes(void **state)
{
        static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff};
        /* service = (char *)"t.v1\0S": a NUL inside a string. */
        static const uint8_t nul[] = {0x0a, 0x06, 't', '.', 'v', '1', 0, 'S'};
        char why[VBUS_DESCRIPTION_WHY_MAX];
        uint8_t *big = calloc(1, VBUS_DESCRIPTION_MAX + 1);

        (void)state;
        assert_non_null(big);
        assert_int_equal(vbus__describe_validate(garbage, sizeof(garbage), "t.v1.S", why), -EINVAL);
        assert_non_null(strstr(why, "not a vbus.v1.ServiceDescription"));
        assert_int_equal(vbus__describe_validate(nul, sizeof(nul), "t.v1.S", why), -EINVAL);
        assert_int_equal(vbus__describe_validate(big, VBUS_DESCRIPTION_MAX + 1, "t.v1.S", why),
                         -E2BIG);
        /* Empty: a description of no service, which is not "t.v1.S". */
        assert_int_equal(vbus__describe_validate(big, 0, "t.v1.S", why), -EINVAL);
        free(big);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_describe_valid),
                cmocka_unit_test(test_describe_other_service),
                cmocka_unit_test(test_describe_dangling_reference),
                cmocka_unit_test(test_describe_wrong_kind_reference),
                cmocka_unit_test(test_describe_duplicates),
                cmocka_unit_test(test_describe_field_numbers),
                cmocka_unit_test(test_describe_types_and_names),
                cmocka_unit_test(test_describe_limits),
                cmocka_unit_test(test_describe_bytes),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
