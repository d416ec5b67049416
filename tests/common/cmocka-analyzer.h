/* SPDX-License-Identifier: MIT */
/*
 * cmocka's assertions as clang's static analyzer should see them. Only scripts/lint uses this
 * file: it adds it (-include) to every tests/unit/test-*.c it hands to clang-tidy; no build
 * includes it, and outside the analyzer it is empty.
 *
 * A cmocka assertion returns when it holds and leaves the test with a longjmp() when it fails.
 * The analyzer sees only a function that returns, so it follows a failed assertion on into the
 * code that the assertion guards: the NULL that assert_non_null() ruled out is dereferenced, the
 * output that an assert_int_equal(r, 0) vouched for is read unwritten. Here each assertion is
 * the same test ending in abort() when it fails: the same control flow, which the analyzer
 * understands. The comparisons are cmocka's (integers as uintmax_t, pointers as uintptr_t).
 */
#ifndef VBUS_TESTS_CMOCKA_ANALYZER_H
#define VBUS_TESTS_CMOCKA_ANALYZER_H

#ifdef __clang_analyzer__
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#undef assert_true
#define assert_true(c) ((c) ? (void)0 : abort())
#undef assert_false
#define assert_false(c) (!(c) ? (void)0 : abort())
#undef assert_non_null
#define assert_non_null(p) ((p) != NULL ? (void)0 : abort())
#undef assert_null
#define assert_null(p) ((p) == NULL ? (void)0 : abort())
#undef assert_int_equal
#define assert_int_equal(a, b) ((uintmax_t)(a) == (uintmax_t)(b) ? (void)0 : abort())
#undef assert_int_not_equal
#define assert_int_not_equal(a, b) ((uintmax_t)(a) != (uintmax_t)(b) ? (void)0 : abort())
#undef assert_ptr_equal
#define assert_ptr_equal(a, b)                                                                     \
        ((uintptr_t)(const void *)(a) == (uintptr_t)(const void *)(b) ? (void)0 : abort())
#undef assert_ptr_not_equal
#define assert_ptr_not_equal(a, b)                                                                 \
        ((uintptr_t)(const void *)(a) != (uintptr_t)(const void *)(b) ? (void)0 : abort())
#undef assert_string_equal
#define assert_string_equal(a, b) (strcmp((a), (b)) == 0 ? (void)0 : abort())
#undef assert_memory_equal
#define assert_memory_equal(a, b, n) (memcmp((a), (b), (n)) == 0 ? (void)0 : abort())
#undef fail
#define fail() abort()
#undef fail_msg
#define fail_msg(...) abort()
#endif /* __clang_analyzer__ */

#endif /* VBUS_TESTS_CMOCKA_ANALYZER_H */
