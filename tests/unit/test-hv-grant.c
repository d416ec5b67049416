/*
 * Unit tests for xensim/hv/hv-grant.c: who may map which grant (only the grantee; read-only
 * grants never writable), ref allocation and exhaustion, revocation by free and by domain
 * removal, and every documented error.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hv-grant.h"
#include "hv-limits.h"

static int backing_x, backing_y;

static int setup(void **state)
{
        static HvGrants g;

        hv_grant_init(&g);
        assert_int_equal(hv_grant_add_domain(&g, 0), 0);
        assert_int_equal(hv_grant_add_domain(&g, 1), 0);
        assert_int_equal(hv_grant_add_domain(&g, 2), 0);
        *state = &g;
        return 0;
}

static int teardown(void **state)
{
        hv_grant_deinit(*state);
        return 0;
}

static void test_grant_map_by_grantee(void **state)
{
        HvGrants *g = *state;
        uint32_t ref, page;
        void *back;

        assert_int_equal(hv_grant_alloc(g, 1, 0, false, &backing_x, 3, &ref), 0);
        assert_true(ref >= HV_GRANT_REF_FIRST);
        assert_int_equal(hv_grant_check_map(g, 1, ref, 0, true, &back, &page), 0);
        assert_ptr_equal(back, &backing_x);
        assert_int_equal(page, 3);
        assert_int_equal(hv_grant_check_map(g, 1, ref, 0, false, &back, &page), 0);
}

static void test_grant_map_wrong_domain_eperm(void **state)
{
        HvGrants *g = *state;
        uint32_t ref, page;
        void *back = NULL;

        assert_int_equal(hv_grant_alloc(g, 1, 0, false, &backing_x, 0, &ref), 0);
        assert_int_equal(hv_grant_check_map(g, 1, ref, 2, false, &back, &page), -EPERM);
        /* Not even the granter itself may map its own grant to dom0. */
        assert_int_equal(hv_grant_check_map(g, 1, ref, 1, false, &back, &page), -EPERM);
        assert_null(back);
}

static void test_grant_readonly_not_writable(void **state)
{
        HvGrants *g = *state;
        uint32_t ref, page;
        void *back;

        assert_int_equal(hv_grant_alloc(g, 2, 1, true, &backing_y, 0, &ref), 0);
        assert_int_equal(hv_grant_check_map(g, 2, ref, 1, true, &back, &page), -EPERM);
        assert_int_equal(hv_grant_check_map(g, 2, ref, 1, false, &back, &page), 0);
        assert_ptr_equal(back, &backing_y);
}

static void test_grant_unknown_ref_einval(void **state)
{
        HvGrants *g = *state;
        uint32_t page;
        void *back;

        assert_int_equal(hv_grant_check_map(g, 1, HV_GRANT_REF_FIRST, 0, false, &back, &page),
                         -EINVAL);
        assert_int_equal(hv_grant_check_map(g, 1, 0, 0, false, &back, &page), -EINVAL);
        assert_int_equal(hv_grant_check_map(g, 1, HV_GRANTS_PER_DOMAIN, 0, false, &back, &page),
                         -EINVAL);
        assert_int_equal(hv_grant_check_map(g, 1, UINT32_MAX, 0, false, &back, &page), -EINVAL);
}

static void test_grant_unknown_domain_esrch(void **state)
{
        HvGrants *g = *state;
        uint32_t ref, page;
        void *back;

        assert_int_equal(hv_grant_check_map(g, 9, 8, 0, false, &back, &page), -ESRCH);
        assert_int_equal(hv_grant_alloc(g, 9, 0, false, &backing_x, 0, &ref), -ESRCH);
        assert_int_equal(hv_grant_check_map(g, UINT32_MAX, 8, 0, false, &back, &page), -ESRCH);
}

static void test_grant_alloc_bad_grantee(void **state)
{
        HvGrants *g = *state;
        uint32_t ref;

        assert_int_equal(hv_grant_alloc(g, 1, HV_DOMID_MAX + 1, false, &backing_x, 0, &ref),
                         -EINVAL);
}

static void test_grant_free_revokes(void **state)
{
        HvGrants *g = *state;
        uint32_t ref, ref2, page;
        void *back;

        assert_int_equal(hv_grant_alloc(g, 1, 0, false, &backing_x, 0, &ref), 0);
        hv_grant_free(g, 1, ref);
        assert_int_equal(hv_grant_check_map(g, 1, ref, 0, false, &back, &page), -EINVAL);
        /* A freed ref is not handed out again at once. */
        assert_int_equal(hv_grant_alloc(g, 1, 0, false, &backing_x, 0, &ref2), 0);
        assert_int_not_equal(ref, ref2);
        hv_grant_free(g, 1, 3);          /* reserved: ignored */
        hv_grant_free(g, 1, UINT32_MAX); /* out of range: ignored */
        hv_grant_free(g, 9, ref2);       /* no such domain: ignored */
        assert_int_equal(hv_grant_check_map(g, 1, ref2, 0, false, &back, &page), 0);
}

static void test_grant_exhaustion_enospc(void **state)
{
        HvGrants *g = *state;
        uint32_t ref, first;

        assert_int_equal(hv_grant_alloc(g, 2, 0, false, &backing_x, 0, &first), 0);
        for (uint32_t i = 1; i < HV_GRANTS_PER_DOMAIN - HV_GRANT_REF_FIRST; i++)
                assert_int_equal(hv_grant_alloc(g, 2, 0, false, &backing_x, i, &ref), 0);
        assert_int_equal(hv_grant_alloc(g, 2, 0, false, &backing_x, 0, &ref), -ENOSPC);
        hv_grant_free(g, 2, first);
        assert_int_equal(hv_grant_alloc(g, 2, 0, false, &backing_x, 0, &ref), 0);
        assert_int_equal(ref, first);
}

static void test_grant_remove_domain_revokes_all(void **state)
{
        HvGrants *g = *state;
        uint32_t ref, page;
        void *back;

        assert_int_equal(hv_grant_alloc(g, 1, 0, false, &backing_x, 0, &ref), 0);
        hv_grant_remove_domain(g, 1);
        assert_false(hv_grant_has_domain(g, 1));
        assert_int_equal(hv_grant_check_map(g, 1, ref, 0, false, &back, &page), -ESRCH);
        /* A new domain with the same id starts with an empty table. */
        assert_int_equal(hv_grant_add_domain(g, 1), 0);
        assert_int_equal(hv_grant_check_map(g, 1, ref, 0, false, &back, &page), -EINVAL);
}

static void test_grant_add_domain_errors(void **state)
{
        HvGrants *g = *state;

        assert_int_equal(hv_grant_add_domain(g, 2), -EEXIST);
        assert_int_equal(hv_grant_add_domain(g, HV_DOMID_MAX + 1), -EINVAL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(test_grant_map_by_grantee),
                T(test_grant_map_wrong_domain_eperm),
                T(test_grant_readonly_not_writable),
                T(test_grant_unknown_ref_einval),
                T(test_grant_unknown_domain_esrch),
                T(test_grant_alloc_bad_grantee),
                T(test_grant_free_revokes),
                T(test_grant_exhaustion_enospc),
                T(test_grant_remove_domain_revokes_all),
                T(test_grant_add_domain_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
