/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for clients/vbusctl/json.c: the UTF-8 rules of RFC 3629 (overlong forms, surrogates,
 * code points over U+10FFFF and truncated sequences are refused), string escaping (quotes,
 * backslashes, control characters; invalid bytes become U+FFFD so the output always parses),
 * base64 with padding, and the choice between text and base64 for a payload.
 *
 * vbusctl is a program, not a library: the module is compiled into this test directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../clients/vbusctl/json.c" /* NOLINT(bugprone-suspicious-include) */

/* Runs @print over @d[0..@n) into a string; returns it (free it). */
static char *capture(void (*print)(FILE *, const uint8_t *, size_t), const char *d, size_t n)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        assert_non_null(f);
        print(f, (const uint8_t *)d, n);
        assert_int_equal(fclose(f), 0);
        return buf;
}

static void expect_print(void (*print)(FILE *, const uint8_t *, size_t), const char *d, size_t n,
                         const char *want)
{
        char *got = capture(print, d, n);

        assert_string_equal(got, want);
        free(got);
}

static bool valid(const char *s, size_t n)
{
        return json_utf8_is_valid((const uint8_t *)s, n);
}

static void test_utf8_valid_forms(void **state)
{
        (void)state;
        assert_true(valid("", 0));
        assert_true(valid("plain ascii", 11));
        assert_true(valid("\0nul", 4));
        assert_true(valid("21.5\xc2\xb0"
                          "C",
                          7));                     /* U+00B0 */
        assert_true(valid("\xe2\x82\xac", 3));     /* U+20AC */
        assert_true(valid("\xed\x9f\xbf", 3));     /* U+D7FF, just below the surrogates */
        assert_true(valid("\xee\x80\x80", 3));     /* U+E000, just above them */
        assert_true(valid("\xf0\x9f\x98\x80", 4)); /* U+1F600 */
        assert_true(valid("\xf4\x8f\xbf\xbf", 4)); /* U+10FFFF, the last code point */
        assert_int_equal(json_utf8_len_at((const uint8_t *)"\xf0\x9f\x98\x80", 4), 4);
}

static void test_utf8_invalid_forms(void **state)
{
        (void)state;
        assert_false(valid("\x80", 1));             /* a lone continuation byte */
        assert_false(valid("\xc0\xaf", 2));         /* overlong '/' */
        assert_false(valid("\xc1\xbf", 2));         /* overlong */
        assert_false(valid("\xe0\x80\xaf", 3));     /* overlong, three bytes */
        assert_false(valid("\xf0\x80\x80\xaf", 4)); /* overlong, four bytes */
        assert_false(valid("\xed\xa0\x80", 3));     /* U+D800, a surrogate */
        assert_false(valid("\xed\xbf\xbf", 3));     /* U+DFFF */
        assert_false(valid("\xf4\x90\x80\x80", 4)); /* U+110000 */
        assert_false(valid("\xf5\x80\x80\x80", 4)); /* no such lead byte */
        assert_false(valid("\xff", 1));
        assert_false(valid("\xe2\x82", 2));  /* truncated at the end */
        assert_false(valid("\xe2\x82x", 3)); /* a continuation that is not one */
        assert_int_equal(json_utf8_len_at((const uint8_t *)"\xe2\x82", 2), 0);
}

static void test_string_escapes(void **state)
{
        (void)state;
        expect_print(json_print_string, "a\"b\\c", 5, "\"a\\\"b\\\\c\"");
        expect_print(json_print_string, "\n\t\r\x01\x1f\x7f", 6,
                     "\"\\n\\t\\r\\u0001\\u001f\\u007f\"");
        expect_print(json_print_string, "\0", 1, "\"\\u0000\"");
        expect_print(json_print_string,
                     "21.5\xc2\xb0"
                     "C",
                     7,
                     "\"21.5\xc2\xb0"
                     "C\"");
        expect_print(json_print_string, "", 0, "\"\"");
}

static void test_string_invalid_bytes_replaced(void **state)
{
        (void)state;
        /* One U+FFFD per byte that starts no valid sequence; what follows is kept. */
        expect_print(json_print_string,
                     "a\xff"
                     "b",
                     3, "\"a\\ufffdb\"");
        expect_print(json_print_string, "\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");
        expect_print(json_print_string, "\xe2\x82", 2, "\"\\ufffd\\ufffd\"");
}

static void test_base64(void **state)
{
        (void)state;
        /* RFC 4648, section 10. */
        expect_print(json_print_base64, "", 0, "\"\"");
        expect_print(json_print_base64, "f", 1, "\"Zg==\"");
        expect_print(json_print_base64, "fo", 2, "\"Zm8=\"");
        expect_print(json_print_base64, "foo", 3, "\"Zm9v\"");
        expect_print(json_print_base64, "foob", 4, "\"Zm9vYg==\"");
        expect_print(json_print_base64, "fooba", 5, "\"Zm9vYmE=\"");
        expect_print(json_print_base64, "foobar", 6, "\"Zm9vYmFy\"");
        expect_print(json_print_base64, "\xff\xfe\xfd", 3, "\"//79\"");
}

static void test_payload_choice(void **state)
{
        (void)state;
        expect_print(json_print_payload, "hi", 2, "\"encoding\":\"utf-8\",\"data\":\"hi\"");
        expect_print(json_print_payload, "\xff", 1, "\"encoding\":\"base64\",\"data\":\"/w==\"");
        expect_print(json_print_payload, "", 0, "\"encoding\":\"utf-8\",\"data\":\"\"");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_utf8_valid_forms),
                cmocka_unit_test(test_utf8_invalid_forms),
                cmocka_unit_test(test_string_escapes),
                cmocka_unit_test(test_string_invalid_bytes_replaced),
                cmocka_unit_test(test_base64),
                cmocka_unit_test(test_payload_choice),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
