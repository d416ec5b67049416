/*
 * Unit tests for xensim/hv/hv-evtchn.c: Xen's event channel port state machine, which port an
 * event raises, close semantics (the peer returns to unbound and is told), holds for
 * unmap-notify, domain removal, and every documented error. (Delivery, masking and coalescing
 * are the doorbells' job and are tested end to end in tests/xensim/hv-coalesce.sh.)
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

enum { EV_RAISE, EV_UNPEER, EV_FREED };

typedef struct Delivery {
        int kind;
        uint32_t domid;
        uint32_t port;
        void *owner;
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

static void record(Fixture *f, int kind, uint32_t domid, uint32_t port, HvPort *p)
{
        assert_true(f->n_got < 64);
        f->got[f->n_got++] = (Delivery){kind, domid, port, p->owner};
}

static void on_raise(void *userdata, uint32_t domid, uint32_t port, HvPort *p)
{
        record(userdata, EV_RAISE, domid, port, p);
}

static void on_unpeer(void *userdata, uint32_t domid, uint32_t port, HvPort *p)
{
        /* Already unbound when told. */
        assert_int_equal(p->state, HV_EVTCHN_UNBOUND);
        record(userdata, EV_UNPEER, domid, port, p);
}

static void on_freed(void *userdata, uint32_t domid, uint32_t port, HvPort *p)
{
        record(userdata, EV_FREED, domid, port, p);
}

static const HvEvtchnOps ops = {.raise = on_raise, .unpeer = on_unpeer, .freed = on_freed};

/* Expect the n-th callback to be (kind, domid, port). */
static void expect(Fixture *f, size_t n, int kind, uint32_t domid, uint32_t port)
{
        assert_true(n < f->n_got);
        assert_int_equal(f->got[n].kind, kind);
        assert_int_equal(f->got[n].domid, domid);
        assert_int_equal(f->got[n].port, port);
}

static int setup(void **state)
{
        static Fixture f;

        memset(&f, 0, sizeof(f));
        hv_evtchn_init(&f.ev, &ops, &f);
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

/* dom1 (owner A) offers a port to dom0, dom0 (owner B) binds it (no callback: raising the
 * new port is the caller's job). */
static void connect_pair(Fixture *f, uint32_t *p1, uint32_t *p0)
{
        assert_int_equal(hv_evtchn_alloc_unbound(&f->ev, 1, 0, A, p1), 0);
        assert_int_equal(hv_evtchn_bind_interdomain(&f->ev, 0, 1, *p1, B, p0), 0);
        assert_int_equal(f->n_got, 0);
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
        assert_int_equal(f->n_got, 0);
}

static void test_evtchn_notify_raises_peer(void **state)
{
        Fixture *f = *state;
        uint32_t p1, p0;

        connect_pair(f, &p1, &p0);
        assert_int_equal(hv_evtchn_notify(&f->ev, 1, p1, A), 0);
        assert_int_equal(f->n_got, 1);
        expect(f, 0, EV_RAISE, 0, p0);
        assert_ptr_equal(f->got[0].owner, B);
        /* The other direction. */
        assert_int_equal(hv_evtchn_notify(&f->ev, 0, p0, B), 0);
        assert_int_equal(f->n_got, 2);
        expect(f, 1, EV_RAISE, 1, p1);
        assert_ptr_equal(f->got[1].owner, A);
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
        assert_int_equal(hv_evtchn_notify(&f->ev, 0, p0, A), -ENOTCONN);
        assert_int_equal(f->n_got, 0);
}

static void test_evtchn_close_returns_peer_to_unbound(void **state)
{
        Fixture *f = *state;
        uint32_t p1, p0, p, st, rd, rp;

        connect_pair(f, &p1, &p0);
        assert_int_equal(hv_evtchn_close(&f->ev, 0, p0, B), 0);
        /* The peer is told, then the closed port is freed. */
        assert_int_equal(f->n_got, 2);
        expect(f, 0, EV_UNPEER, 1, p1);
        assert_ptr_equal(f->got[0].owner, A);
        expect(f, 1, EV_FREED, 0, p0);
        assert_int_equal(hv_evtchn_status(&f->ev, 0, p0, &st, &rd, &rp), 0);
        assert_int_equal(st, HV_EVTCHN_FREE);
        assert_int_equal(hv_evtchn_status(&f->ev, 1, p1, &st, &rd, &rp), 0);
        assert_int_equal(st, HV_EVTCHN_UNBOUND);
        assert_int_equal(rd, 0);
        /* The same peer domain can bind it again (vchan client reconnect). */
        assert_int_equal(hv_evtchn_bind_interdomain(&f->ev, 0, 1, p1, C, &p), 0);
}

static void test_evtchn_doorbell_initialised_and_freed(void **state)
{
        Fixture *f = *state;
        uint32_t p;

        assert_int_equal(hv_evtchn_alloc_unbound(&f->ev, 1, 0, A, &p), 0);
        assert_int_equal(hv_evtchn_port(&f->ev, 1, p)->doorbell, -1);
        hv_evtchn_port(&f->ev, 1, p)->doorbell = 42;
        assert_int_equal(hv_evtchn_close(&f->ev, 1, p, A), 0);
        /* Unbound: no peer to tell; freed (the I/O layer releases the doorbell then). */
        assert_int_equal(f->n_got, 1);
        expect(f, 0, EV_FREED, 1, p);
        assert_int_equal(hv_evtchn_port(&f->ev, 1, p)->doorbell, -1);
        assert_null(hv_evtchn_port(&f->ev, 1, 0));
        assert_null(hv_evtchn_port(&f->ev, 1, HV_PORTS_PER_DOMAIN));
        assert_null(hv_evtchn_port(&f->ev, 6, 1));
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
        assert_int_equal(f->n_got, 0);
        assert_int_equal(hv_evtchn_status(&f->ev, 1, p1, &st, &rd, &rp), 0);
        assert_int_equal(st, HV_EVTCHN_INTERDOMAIN);
        /* The unmap-notify still reaches the peer, then the port goes. */
        assert_int_equal(hv_evtchn_notify(&f->ev, 1, p1, NULL), 0);
        assert_int_equal(f->n_got, 1);
        expect(f, 0, EV_RAISE, 0, p0);
        hv_evtchn_release(&f->ev, 1, p1);
        assert_int_equal(f->n_got, 3);
        expect(f, 1, EV_UNPEER, 0, p0);
        expect(f, 2, EV_FREED, 1, p1);
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
        assert_int_equal(f->n_got, 2);
        expect(f, 0, EV_UNPEER, 0, p0);
        expect(f, 1, EV_FREED, 1, p1);
        f->n_got = 0;
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
        assert_int_equal(hv_evtchn_notify(&f->ev, 2, b, B), 0);
        assert_int_equal(f->n_got, 1);
        expect(f, 0, EV_RAISE, 2, a);
        assert_ptr_equal(f->got[0].owner, A);
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
                T(test_evtchn_notify_raises_peer),
                T(test_evtchn_notify_unbound_dropped),
                T(test_evtchn_notify_errors),
                T(test_evtchn_close_returns_peer_to_unbound),
                T(test_evtchn_doorbell_initialised_and_freed),
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
