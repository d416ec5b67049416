/*
 * Hostile-peer test of the vchan ring logic: a peer thread maps (shares) the same control
 * page and rings and, while our end reads and writes, writes random and adversarial values
 * into the indices (its own and ours), the orders, the live and the notify bytes, and the
 * ring contents. Our end must never touch memory outside the rings (rings are allocated to
 * their exact size so ASan sees any overrun, and every iovec is checked against its ring),
 * must never block (every call is non-blocking; the loop is bounded by an operation count),
 * and must report the violation (-EPROTO) rather than carry on with impossible indices.
 * Each end is tested: the server (guest) role and the client (broker) role.
 */

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
/* cmocka.h needs the headers above. */
#include <cmocka.h>

#include "vchan-ring.h"

#define N_OPS 200000 /* operations of our end per role; the peer runs until we stop */

typedef struct Shared {
        VbusVchanLayout layout;
        uint8_t *page;
        uint8_t *ext[2];
        atomic_bool stop;
        uint64_t seed;
        uint64_t n_steps;    /* written by the peer only */
        bool peer_is_server; /* which role the hostile peer plays */
} Shared;

static uint64_t rnd(uint64_t *s)
{
        /* xorshift64*: deterministic per seed, so a failure can be replayed */
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        return *s * 0x2545F4914F6CDD1Dull;
}

static void store32(uint8_t *page, uint32_t off, uint32_t v)
{
        __atomic_store_n((uint32_t *)(void *)(page + off), v, __ATOMIC_RELAXED);
}

static void store8(uint8_t *page, uint32_t off, uint8_t v)
{
        __atomic_store_n(page + off, v, __ATOMIC_RELAXED);
}

static uint32_t load32(const uint8_t *page, uint32_t off)
{
        return __atomic_load_n((const uint32_t *)(const void *)(page + off), __ATOMIC_RELAXED);
}

/* Adversarial index values relative to the current counter and ring size. */
static uint32_t evil_index(uint64_t *s, uint32_t cur, uint32_t size)
{
        switch (rnd(s) % 10) {
        case 0:
                return cur + size + 1; /* one byte beyond a full ring */
        case 1:
                return cur - 1; /* "negative" */
        case 2:
                return cur + 0x80000000u;
        case 3:
                return 0xffffffffu;
        case 4:
                return cur + size; /* exactly full: legal */
        case 5:
                return cur + (uint32_t)(rnd(s) % (size + 1)); /* plausible */
        case 6:
                return cur; /* unchanged */
        default:
                return (uint32_t)rnd(s);
        }
}

/*
 * One step of the peer: mostly an honest peer (it produces into the ring it writes and
 * consumes what we wrote, so data flows), one step in four something hostile.
 */
static void peer_step(Shared *sh, uint64_t *s)
{
        bool srv = sh->peer_is_server;
        uint32_t lsize = 1u << sh->layout.order[0], rsize = 1u << sh->layout.order[1];
        uint8_t *left = sh->layout.offset[0] ? sh->page + sh->layout.offset[0] : sh->ext[0];
        uint8_t *right = sh->layout.offset[1] ? sh->page + sh->layout.offset[1] : sh->ext[1];
        uint32_t wsize = srv ? rsize : lsize, rsize_ = srv ? lsize : rsize;
        uint32_t off_wprod = srv ? VBUS_VCHAN_OFF_RIGHT_PROD : VBUS_VCHAN_OFF_LEFT_PROD;
        uint32_t off_wcons = srv ? VBUS_VCHAN_OFF_RIGHT_CONS : VBUS_VCHAN_OFF_LEFT_CONS;
        uint32_t off_rprod = srv ? VBUS_VCHAN_OFF_LEFT_PROD : VBUS_VCHAN_OFF_RIGHT_PROD;
        uint32_t off_rcons = srv ? VBUS_VCHAN_OFF_LEFT_CONS : VBUS_VCHAN_OFF_RIGHT_CONS;
        uint64_t dice = rnd(s) % 32;

        __atomic_store_n(&sh->n_steps, sh->n_steps + 1, __ATOMIC_RELAXED);
        if (dice < 12) {
                /* honest produce */
                uint32_t prod = load32(sh->page, off_wprod);
                uint32_t used = prod - load32(sh->page, off_wcons);

                if (used <= wsize && used < wsize) {
                        uint32_t n = 1 + (uint32_t)(rnd(s) % (wsize - used));
                        uint8_t *buf = srv ? right : left;

                        for (uint32_t i = 0; i < n; i++)
                                buf[(prod + i) & (wsize - 1)] = (uint8_t)i;
                        store32(sh->page, off_wprod, prod + n);
                }
                return;
        }
        if (dice < 24) {
                /* honest consume of everything we wrote */
                store32(sh->page, off_rcons, load32(sh->page, off_rprod));
                store8(sh->page, srv ? VBUS_VCHAN_OFF_SRV_LIVE : VBUS_VCHAN_OFF_CLI_LIVE, 1);
                return;
        }
        switch (dice - 24) {
        case 0:
                store32(sh->page, off_wprod, evil_index(s, load32(sh->page, off_wcons), wsize));
                break;
        case 1:
                store32(sh->page, off_rcons, evil_index(s, load32(sh->page, off_rprod), rsize_));
                break;
        case 2:
                /* our own counters: we must not care */
                store32(sh->page, (rnd(s) % 2) ? off_wcons : off_rprod, (uint32_t)rnd(s));
                break;
        case 3:
                store8(sh->page, VBUS_VCHAN_OFF_CLI_LIVE, (uint8_t)rnd(s));
                store8(sh->page, VBUS_VCHAN_OFF_SRV_LIVE, (uint8_t)(rnd(s) % 4));
                break;
        case 4:
                store8(sh->page, VBUS_VCHAN_OFF_CLI_NOTIFY, (uint8_t)rnd(s));
                store8(sh->page, VBUS_VCHAN_OFF_SRV_NOTIFY, (uint8_t)rnd(s));
                break;
        case 5:
                /* orders and grant list: read once at connect, never again */
                store8(sh->page, VBUS_VCHAN_OFF_LEFT_ORDER, (uint8_t)rnd(s));
                store8(sh->page, VBUS_VCHAN_OFF_RIGHT_ORDER + 1, (uint8_t)rnd(s));
                store32(sh->page, VBUS_VCHAN_OFF_GRANTS + 4 * (uint32_t)(rnd(s) % 16),
                        (uint32_t)rnd(s));
                break;
        case 6:
                memset(left + rnd(s) % lsize, (int)rnd(s), 1);
                break;
        default:
                memset(right + rnd(s) % rsize, (int)rnd(s), 1);
                break;
        }
}

static void *hostile_peer(void *arg)
{
        Shared *sh = arg;
        uint64_t s = sh->seed;

        while (!atomic_load_explicit(&sh->stop, memory_order_relaxed))
                peer_step(sh, &s);
        return NULL;
}

static void assert_iov_in(const struct iovec iov[2], const uint8_t *buf, uint32_t size, ssize_t n)
{
        const uint8_t *b0 = iov[0].iov_base, *b1 = iov[1].iov_base;

        assert_true(n > 0 && (size_t)n <= size);
        assert_int_equal(iov[0].iov_len + iov[1].iov_len, (size_t)n);
        assert_true(b0 >= buf && b0 + iov[0].iov_len <= buf + size);
        assert_true(b1 >= buf && b1 + iov[1].iov_len <= buf + size);
}

static void run_role(uint32_t lo, uint32_t ro, bool we_are_server, bool concurrent, uint64_t seed)
{
        uint32_t grants[VBUS_VCHAN_MAX_GRANTS] = {0};
        uint64_t s = seed ^ 0x9e3779b97f4a7c15ull;
        uint64_t n_proto = 0, n_data = 0, n_space = 0, ps = seed;
        uint8_t scratch[512];
        pthread_t peer;
        VbusVchanRing r;
        Shared sh = {.seed = seed, .peer_is_server = !we_are_server};
        const uint8_t *rd_buf;
        uint8_t *wr_buf;

        assert_int_equal(vbus__vchan_layout_from_orders(lo, ro, &sh.layout), 0);
        sh.page = aligned_alloc(VBUS_VCHAN_PAGE_SIZE, VBUS_VCHAN_PAGE_SIZE);
        assert_non_null(sh.page);
        for (int i = 0; i < 2; i++) {
                if (sh.layout.n_pages[i]) {
                        sh.ext[i] = malloc((size_t)1 << sh.layout.order[i]);
                        assert_non_null(sh.ext[i]);
                }
        }
        vbus__vchan_page_init_server(sh.page, &sh.layout, grants);
        vbus__vchan_ring_init(&r, sh.page, we_are_server, &sh.layout, sh.ext[0], sh.ext[1]);
        rd_buf = r.rd_buf;
        wr_buf = r.wr_buf;
        memset(scratch, 0x3c, sizeof(scratch));
        if (concurrent)
                assert_int_equal(pthread_create(&peer, NULL, hostile_peer, &sh), 0);

        /*
         * Interleaved: the peer takes one step before each of our operations (deterministic).
         * Concurrent: the peer runs in its own thread, and we go on until it has taken at
         * least N_OPS steps too, whatever the scheduler did.
         */
        for (uint64_t op = 0;
             op < N_OPS || (concurrent && __atomic_load_n(&sh.n_steps, __ATOMIC_RELAXED) < N_OPS);
             op++) {
                struct iovec iov[2];
                ssize_t k;

                if (!concurrent)
                        peer_step(&sh, &ps);

                if (rnd(&s) % 2) {
                        k = vbus__vchan_ring_peek(&r, 1 + rnd(&s) % 64, iov);
                        if (k > 0) {
                                assert_iov_in(iov, rd_buf, vbus__vchan_ring_read_size(&r), k);
                                /* touch every byte we were handed */
                                for (int i = 0; i < 2; i++)
                                        for (size_t j = 0; j < iov[i].iov_len; j++)
                                                scratch[j % sizeof(scratch)] ^=
                                                        ((const uint8_t *)iov[i].iov_base)[j];
                                k = vbus__vchan_ring_consume(&r, (size_t)k);
                                assert_true(k == 0 || k == -EPROTO);
                                n_data++;
                        } else {
                                assert_true(k == 0 || k == -EAGAIN || k == -EPROTO);
                        }
                } else {
                        k = vbus__vchan_ring_reserve(&r, 1 + rnd(&s) % 600, iov);
                        if (k > 0) {
                                assert_iov_in(iov, wr_buf, vbus__vchan_ring_write_size(&r), k);
                                memset(iov[0].iov_base, 0xab, iov[0].iov_len);
                                memset(iov[1].iov_base, 0xcd, iov[1].iov_len);
                                k = vbus__vchan_ring_commit(&r, (size_t)k);
                                assert_true(k == 0 || k == -EPROTO);
                                n_space++;
                        } else {
                                assert_true(k == -EAGAIN || k == -EPIPE || k == -EPROTO);
                        }
                }
                (void)vbus__vchan_ring_flush(&r);
                if (k == -EPROTO) {
                        /* reported; a failed ring stays failed, then we "reconnect" */
                        assert_int_equal(vbus__vchan_ring_read(&r, scratch, 8), -EPROTO);
                        assert_int_equal(vbus__vchan_ring_write(&r, scratch, 8), -EPROTO);
                        n_proto++;
                        vbus__vchan_ring_init(&r, sh.page, we_are_server, &sh.layout, sh.ext[0],
                                              sh.ext[1]);
                }
        }
        if (concurrent) {
                atomic_store(&sh.stop, true);
                assert_int_equal(pthread_join(peer, NULL), 0);
        }
        /*
         * Interleaved, the peer wrote impossible indices many times: we must have said so, and
         * the honest steps between must have got data through both ways. Concurrent runs
         * depend on the scheduler, so they check safety only (ASan, bounds, return codes).
         */
        if (!concurrent) {
                assert_true(n_proto > 1000);
                assert_true(n_data > 1000 && n_space > 1000);
        }
        print_message("orders (%u,%u) %s %s: %llu violations reported, %llu reads, %llu writes\n",
                      lo, ro, we_are_server ? "server" : "client",
                      concurrent ? "concurrent" : "interleaved", (unsigned long long)n_proto,
                      (unsigned long long)n_data, (unsigned long long)n_space);
        free(sh.page);
        free(sh.ext[0]);
        free(sh.ext[1]);
}

static void test_hostile_peer_against_server(void **state)
{
        run_role(10, 11, true, false, 1);
        run_role(12, 16, true, false, 2);
        run_role(10, 11, true, true, 3);
        run_role(20, 20, true, true, 4);
}

static void test_hostile_peer_against_client(void **state)
{
        run_role(11, 10, false, false, 5);
        run_role(13, 12, false, false, 6);
        run_role(11, 10, false, true, 7);
        run_role(12, 18, false, true, 8);
}

/* A client validating a page whose orders and grant list a hostile server keeps changing. */
static void test_hostile_layout_reads_are_validated(void **state)
{
        uint32_t grants[VBUS_VCHAN_MAX_GRANTS];
        uint64_t s = 42;
        uint8_t *page = aligned_alloc(4096, 4096);
        int n_bad = 0, n_ok = 0;

        assert_non_null(page);
        for (int i = 0; i < 100000; i++) {
                VbusVchanLayout l;
                int r;

                page[16] = (uint8_t)(rnd(&s) % 24);
                page[17] = (uint8_t)(rnd(&s) % 8 == 0 ? rnd(&s) : 0);
                page[18] = (uint8_t)(rnd(&s) % 24);
                page[19] = (uint8_t)(rnd(&s) % 8 == 0 ? rnd(&s) : 0);
                r = vbus__vchan_page_read_layout(page, &l, grants);
                if (r < 0) {
                        assert_int_equal(r, -EPROTO);
                        n_bad++;
                        continue;
                }
                n_ok++;
                assert_true(l.order[0] >= 10 && l.order[0] <= 20);
                assert_true(l.order[1] >= 10 && l.order[1] <= 20);
                assert_true(24 + 4 * vbus__vchan_layout_n_grants(&l) <= 4096);
                for (int k = 0; k < 2; k++)
                        if (l.offset[k])
                                assert_true(24 + 4 * vbus__vchan_layout_n_grants(&l) <=
                                            l.offset[k]);
        }
        assert_true(n_bad > 0 && n_ok > 0);
        free(page);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hostile_peer_against_server),
                cmocka_unit_test(test_hostile_peer_against_client),
                cmocka_unit_test(test_hostile_layout_reads_are_validated),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
