/*
 * Unit tests for xensim/hv/hv-evtchn.c: Xen's event channel port state machine, Linux's
 * deliver-then-mask behaviour and its coalescing, close semantics (the peer returns to
 * unbound), holds for unmap-notify, domain removal, and every documented error.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hv-evtchn.h"
#include "hv-limits.h"
#include "hv-proto.h"

typedef struct Delivery {
        void *owner;
        uint32_t port;
} Delivery;

typedef struct Fixture {
        HvEvtchn ev;
        Delivery got[64];
        size_t n_got;
} Fixture;

/* Distinct owner tokens. */
static int owner_a, owner_b, owner_c;
#define A ((void *)&owner_a)
#define B ((void *)&owner_b)
#define C ((void *)&owner_c)

static void record(void *userdata, void *owner, uint32_t port)
{
        Fixture *f = userdata;

        assert_true(f->n_got < 64);
        f->got[f->n_got++] = (Delivery){owner, port};
}

static int setup(void **state)
{
        static Fixture f;

        memset(&f, 0, sizeof(f));
        hv_evtchn_init(&f.ev, record, &f);
        assert_int_equal(hv_evtchn_add_domain(&f.ev, 0), 0);
        assert_int_equal(hv_evtchn_add_domain(&f.ev, 1), 0);
        assert_int_equal(hv_evtchn_add_domain(&f.ev, 2), 0);
        *state = &f;
        return 0;
}

static int teardown(void **state)
{
        Fixture *f = *state;

        hv_evtchn_deinit(&f->ev);
        return 0;
}

/* dom1 (owner A) offers a port to dom0, dom0 (owner B) binds it; the bind's own event is
 * consumed and unmasked so each test starts quiet. */
static void connect_pair(Fixture *f, uint32_t *p1, uint32_t *p0)
{
        assert_int_equal(hv_evtchn_alloc_unbound(&f->ev, 1, 0, A, p1), 0);
        assert_int_equal(hv_evtchn_bind_interdomain(&f->ev, 0, 1, *p1, B, p0), 0);
        assert_int_equal(f->n_got, 1);
        assert_ptr_equal(f->got[0].owner, B);
        assert_int_equal(hv_evtchn_unmask(&f->ev, 0, *p0, B), 0);
        f->n_got = 0;
}

static void test_evtchn_add_domain_errors(void **state)
{
        Fixture *f = *state;

        assert_int_equal(hv_evtchn_add_domain(&f->ev, 1), -EEXIST);
        assert_int_equal(hv_evtchn_add_domain(&f->ev, HV_DOMID_MAX + 1), -EINVAL);
        assert_int_equal(hv_evtchn_add_domain(&f->ev, HV_DOMID_MAX), 0);
        assert_true(hv_evtchn_has_domain(&f->ev, HV_DOMID_MAX));
}

static void test_evtchn_alloc_unbound_state(void **state)
{
        Fixture *f = *state;
        uint32_t p, st, rd, rp;

        assert_int_equal(hv_evtchn_alloc_unbound(&f->ev, 1, 0, A, &p), 0);
        assert_true(p > 0);
        assert_int_equal(hv_evtchn_status(&f->ev, 1, p, &st, &rd, &rp), 0);
        assert_int_equal(st, HV_EVTCHN_UNBOUND);
        assert_int_equal(rd, 0);
}

static void test_evtchn_alloc_unbound_errors(void **state)
{
        Fixture *f = *state;
        uint32_t p;

        assert_int_equal(hv_evtchn_alloc_unbound(&f->ev, 7, 0, A, &p), -ESRCH);
        assert_int_equal(hv_evtchn_alloc_unbound(&f->ev, 1, HV_DOMID_MAX + 2, A, &p), -EINVAL);
}

static void test_evtchn_alloc_unbound_exhausted(void **state)
{
        Fixture *f = *state;
        uint32_t p;

        for (uint32_t i = 1; i < HV_PORTS_PER_DOMAIN; i++)
                assert_int_equal(hv_evtchn_alloc_unbound(&f->ev, 2, 0, A, &p), 0);
        assert_int_equal(hv_evtchn_alloc_unbound(&f->ev, 2, 0, A, &p), -ENOSPC);
}

static void test_evtchn_bind_interdomain_connects(void **state)
{
        Fixture *f = *state;
        uint32_t p1, p0, st, rd, rp;

        connect_pair(f, &p1, &p0);
        assert_int_equal(hv_evtchn_status(&f->ev, 1, p1, &st, &rd, &rp), 0);
        assert_int_equal(st, HV_EVTCHN_INTERDOMAIN);
        assert_int_equal(rd, 0);
        assert_int_equal(rp, p0);
        assert_int_equal(hv_evtchn_status(&f->ev, 0, p0, &st, &rd, &rp), 0);
        assert_int_equal(st, HV_EVTCHN_INTERDOMAIN);
        assert_int_equal(rd, 1);
        assert_int_equal(rp, p1);
}

static void test_evtchn_bind_interdomain_errors(void **state)
{
        Fixture *f = *state;
        uint32_t p1, p;

        assert_int_equal(hv_evtchn_alloc_unbound(&f->ev, 1, 0, A, &p1), 0);
        /* Remote domain absent. */
        assert_int_equal(hv_evtchn_bind_interdomain(&f->ev, 0, 9, p1, B, &p), -ESRCH);
        /* Port offered to dom0, not dom2. */
        assert_int_equal(hv_evtchn_bind_interdomain(&f->ev, 2, 1, p1, C, &p), -EINVAL);
        /* Free port, port 0 and out of range. */
        assert_int_equal(hv_evtchn_bind_interdomain(&f->ev, 0, 1, p1 + 1, B, &p), -EINVAL);
        assert_int_equal(hv_evtchn_bind_interdomain(&f->ev, 0, 1, 0, B, &p), -EINVAL);
        assert_int_equal(hv_evtchn_bind_interdomain(&f->ev, 0, 1, HV_PORTS_PER_DOMAIN, B, &p),
                         -EINVAL);
        /* Already bound. */
        assert_int_equal(hv_evtchn_bind_interdomain(&f->ev, 0, 1, p1, B, &p), 0);
        assert_int_equal(hv_evtchn_bind_interdomain(&f->ev, 0, 1, p1, B, &p), -EINVAL);
        assert_int_equal(f->n_got, 1);
}

static void test_evtchn_notify_delivers_then_masks(void **state)
{
        Fixture *f = *state;
        uint32_t p1, p0;

        connect_pair(f, &p1, &p0);
        assert_int_equal(hv_evtchn_notify(&f->ev, 1, p1, A), 0);
        assert_int_equal(f->n_got, 1);
        assert_ptr_equal(f->got[0].owner, B);
        assert_int_equal(f->got[0].port, p0);
        /* The other direction. */
        assert_int_equal(hv_evtchn_notify(&f->ev, 0, p0, B), 0);
        assert_int_equal(f->n_got, 2);
        assert_ptr_equal(f->got[1].owner, A);
        assert_int_equal(f->got[1].port, p1);
}

static void test_evtchn_notify_coalesces_while_masked(void **state)
{
        Fixture *f = *state;
        uint32_t p1, p0;

        connect_pair(f, &p1, &p0);
        for (int i = 0; i < 10; i++)
                assert_int_equal(hv_evtchn_notify(&f->ev, 1, p1, A), 0);
        /* One delivery; nine more merged into one pending event. */
        assert_int_equal(f->n_got, 1);
        assert_int_equal(hv_evtchn_unmask(&f->ev, 0, p0, B), 0);
        assert_int_equal(f->n_got, 2);
        /* Nothing left pending: unmasking again delivers nothing. */
        assert_int_equal(hv_evtchn_unmask(&f->ev, 0, p0, B), 0);
        assert_int_equal(f->n_got, 2);
        assert_int_equal(hv_evtchn_unmask(&f->ev, 0, p0, B), 0);
        assert_int_equal(hv_evtchn_notify(&f->ev, 1, p1, A), 0);
        assert_int_equal(f->n_got, 3);
}

static void test_evtchn_notify_unbound_dropped(void **state)
{
        Fixture *f = *state;
        uint32_t p1;

        assert_int_equal(hv_evtchn_alloc_unbound(&f->ev, 1, 0, A, &p1), 0);
        assert_int_equal(hv_evtchn_notify(&f->ev, 1, p1, A), 0);
        assert_int_equal(f->n_got, 0);
}

static void test_evtchn_notify_errors(void **state)
{
        Fixture *f = *state;
        uint32_t p1, p0;

        connect_pair(f, &p1, &p0);
        assert_int_equal(hv_evtchn_notify(&f->ev, 1, p1, C), -ENOTCONN);
        assert_int_equal(hv_evtchn_notify(&f->ev, 1, 0, A), -EINVAL);
        assert_int_equal(hv_evtchn_notify(&f->ev, 1, HV_PORTS_PER_DOMAIN, A), -EINVAL);
        assert_int_equal(hv_evtchn_notify(&f->ev, 7, p1, A), -EINVAL);
        /* As the domain itself (owner NULL), a free port is an error. */
        assert_int_equal(hv_evtchn_notify(&f->ev, 1, p1 + 5, NULL), -EINVAL);
        assert_int_equal(hv_evtchn_unmask(&f->ev, 0, p0, A), -ENOTCONN);
        assert_int_equal(hv_evtchn_unmask(&f->ev, 0, 0, B), -EINVAL);
        assert_int_equal(f->n_got, 0);
}

static void test_evtchn_close_returns_peer_to_unbound(void **state)
{
        Fixture *f = *state;
        uint32_t p1, p0, p, st, rd, rp;

        connect_pair(f, &p1, &p0);
        assert_int_equal(hv_evtchn_close(&f->ev, 0, p0, B), 0);
        assert_int_equal(hv_evtchn_status(&f->ev, 0, p0, &st, &rd, &rp), 0);
        assert_int_equal(st, HV_EVTCHN_FREE);
        assert_int_equal(hv_evtchn_status(&f->ev, 1, p1, &st, &rd, &rp), 0);
        assert_int_equal(st, HV_EVTCHN_UNBOUND);
        assert_int_equal(rd, 0);
        /* The same peer domain can bind it again (vchan client reconnect). */
        assert_int_equal(hv_evtchn_bind_interdomain(&f->ev, 0, 1, p1, C, &p), 0);
}

static void test_evtchn_close_errors(void **state)
{
        Fixture *f = *state;
        uint32_t p1;

        assert_int_equal(hv_evtchn_alloc_unbound(&f->ev, 1, 0, A, &p1), 0);
        assert_int_equal(hv_evtchn_close(&f->ev, 1, p1, B), -ENOTCONN);
        assert_int_equal(hv_evtchn_close(&f->ev, 1, 0, A), -EINVAL);
        assert_int_equal(hv_evtchn_close(&f->ev, 5, p1, A), -EINVAL);
        assert_int_equal(hv_evtchn_close(&f->ev, 1, p1, A), 0);
        assert_int_equal(hv_evtchn_close(&f->ev, 1, p1, A), -ENOTCONN);
}

static void test_evtchn_close_owner_closes_all(void **state)
{
        Fixture *f = *state;
        uint32_t p1, p0, q, st, rd, rp;

        connect_pair(f, &p1, &p0);
        assert_int_equal(hv_evtchn_alloc_unbound(&f->ev, 1, 2, A, &q), 0);
        hv_evtchn_close_owner(&f->ev, 1, A);
        assert_int_equal(hv_evtchn_status(&f->ev, 1, q, &st, &rd, &rp), 0);
        assert_int_equal(st, HV_EVTCHN_FREE);
        assert_int_equal(hv_evtchn_status(&f->ev, 0, p0, &st, &rd, &rp), 0);
        assert_int_equal(st, HV_EVTCHN_UNBOUND);
        assert_int_equal(rd, 1);
}

static void test_evtchn_hold_outlives_owner(void **state)
{
        Fixture *f = *state;
        uint32_t p1, p0, st, rd, rp;

        connect_pair(f, &p1, &p0);
        assert_int_equal(hv_evtchn_hold(&f->ev, 1, p1), 0);
        /* The process dies: its evtchn handle closes before its grant handle. */
        hv_evtchn_close_owner(&f->ev, 1, A);
        assert_int_equal(hv_evtchn_status(&f->ev, 1, p1, &st, &rd, &rp), 0);
        assert_int_equal(st, HV_EVTCHN_INTERDOMAIN);
        /* The unmap-notify still reaches the peer, then the port goes. */
        assert_int_equal(hv_evtchn_notify(&f->ev, 1, p1, NULL), 0);
        assert_int_equal(f->n_got, 1);
        assert_int_equal(f->got[0].port, p0);
        hv_evtchn_release(&f->ev, 1, p1);
        assert_int_equal(hv_evtchn_status(&f->ev, 1, p1, &st, &rd, &rp), 0);
        assert_int_equal(st, HV_EVTCHN_FREE);
        assert_int_equal(hv_evtchn_status(&f->ev, 0, p0, &st, &rd, &rp), 0);
        assert_int_equal(st, HV_EVTCHN_UNBOUND);
}

static void test_evtchn_hold_errors(void **state)
{
        Fixture *f = *state;
        uint32_t p1;

        assert_int_equal(hv_evtchn_hold(&f->ev, 1, 3), -EINVAL);
        assert_int_equal(hv_evtchn_hold(&f->ev, 1, 0), -EINVAL);
        assert_int_equal(hv_evtchn_hold(&f->ev, 9, 1), -EINVAL);
        assert_int_equal(hv_evtchn_alloc_unbound(&f->ev, 1, 0, A, &p1), 0);
        assert_int_equal(hv_evtchn_hold(&f->ev, 1, p1), 0);
        hv_evtchn_close_owner(&f->ev, 1, A);
        /* An orphaned port cannot be held again nor allocated anew. */
        assert_int_equal(hv_evtchn_hold(&f->ev, 1, p1), -EINVAL);
        hv_evtchn_release(&f->ev, 1, p1);
        hv_evtchn_release(&f->ev, 1, p1); /* extra release is harmless */
}

static void test_evtchn_remove_domain_unbinds_peers(void **state)
{
        Fixture *f = *state;
        uint32_t p1, p0, p, st, rd, rp;

        connect_pair(f, &p1, &p0);
        hv_evtchn_remove_domain(&f->ev, 1);
        assert_false(hv_evtchn_has_domain(&f->ev, 1));
        assert_int_equal(hv_evtchn_status(&f->ev, 0, p0, &st, &rd, &rp), 0);
        assert_int_equal(st, HV_EVTCHN_UNBOUND);
        assert_int_equal(rd, 1);
        assert_int_equal(hv_evtchn_status(&f->ev, 1, p1, &st, &rd, &rp), -ESRCH);
        assert_int_equal(hv_evtchn_bind_interdomain(&f->ev, 0, 1, p1, B, &p), -ESRCH);
        /* Notifying a port whose peer is gone is silently dropped, as in Xen. */
        assert_int_equal(hv_evtchn_notify(&f->ev, 0, p0, B), 0);
        assert_int_equal(f->n_got, 0);
        hv_evtchn_remove_domain(&f->ev, 1); /* twice is a no-op */
}

static void test_evtchn_status_errors(void **state)
{
        Fixture *f = *state;
        uint32_t st, rd, rp;

        assert_int_equal(hv_evtchn_status(&f->ev, 8, 1, &st, &rd, &rp), -ESRCH);
        assert_int_equal(hv_evtchn_status(&f->ev, 1, 0, &st, &rd, &rp), -EINVAL);
        assert_int_equal(hv_evtchn_status(&f->ev, 1, HV_PORTS_PER_DOMAIN, &st, &rd, &rp), -EINVAL);
}

static void test_evtchn_loopback_same_domain(void **state)
{
        Fixture *f = *state;
        uint32_t a, b;

        /* Xen allows a domain to connect two of its own ports. */
        assert_int_equal(hv_evtchn_alloc_unbound(&f->ev, 2, 0x7FF0, A, &a), 0);
        assert_int_equal(hv_evtchn_bind_interdomain(&f->ev, 2, 0x7FF0, a, B, &b), 0);
        assert_int_not_equal(a, b);
        f->n_got = 0;
        assert_int_equal(hv_evtchn_notify(&f->ev, 2, b, B), 0);
        assert_int_equal(f->n_got, 1);
        assert_ptr_equal(f->got[0].owner, A);
        assert_int_equal(f->got[0].port, a);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(test_evtchn_add_domain_errors),
                T(test_evtchn_alloc_unbound_state),
                T(test_evtchn_alloc_unbound_errors),
                T(test_evtchn_alloc_unbound_exhausted),
                T(test_evtchn_bind_interdomain_connects),
                T(test_evtchn_bind_interdomain_errors),
                T(test_evtchn_notify_delivers_then_masks),
                T(test_evtchn_notify_coalesces_while_masked),
                T(test_evtchn_notify_unbound_dropped),
                T(test_evtchn_notify_errors),
                T(test_evtchn_close_returns_peer_to_unbound),
                T(test_evtchn_close_errors),
                T(test_evtchn_close_owner_closes_all),
                T(test_evtchn_hold_outlives_owner),
                T(test_evtchn_hold_errors),
                T(test_evtchn_remove_domain_unbinds_peers),
                T(test_evtchn_status_errors),
                T(test_evtchn_loopback_same_domain),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
