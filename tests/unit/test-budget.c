/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vchand/budget.c and vchand/ratelimit.c: the per-peer and global memory budgets
 * (who is refused once the broker is full), the ring admission rules, the deadline cap, and the
 * per-source log budget.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "budget.h"
#include "link.h"
#include "ratelimit.h"

/* A Bus with @n_peers peers (only what budget.c reads), the given budgets. */
static void setup_bus(Bus *b, Peer *peers, uint32_t n_peers, uint64_t peer_memory,
                      uint64_t max_memory)
{
        memset(b, 0, sizeof(*b));
        config_defaults(&b->config);
        b->config.peer_memory = peer_memory;
        b->config.max_memory = max_memory;
        b->n_peers = n_peers;
        for (uint32_t i = 0; i < n_peers; i++) {
                memset(&peers[i], 0, sizeof(peers[i]));
                peers[i].bus = b;
        }
}

static void test_budget_cost_counts_empty_items(void **state)
{
        (void)state;
        assert_int_equal(budget_cost(0), LIMIT_ITEM_OVERHEAD);
        assert_int_equal(budget_cost(100), 100 + LIMIT_ITEM_OVERHEAD);
}

static void test_budget_charge_peer_limit(void **state)
{
        Bus b;
        Peer p[1];

        (void)state;
        setup_bus(&b, p, 1, 1000, 1u << 20);
        assert_int_equal(budget_charge(&p[0], 600), 0);
        assert_int_equal(budget_charge(&p[0], 401), -ENOBUFS);
        /* A refused charge charges nothing. */
        assert_int_equal(p[0].mem_held, 600);
        assert_int_equal(b.mem_held, 600);
        assert_int_equal(budget_charge(&p[0], 400), 0);
        budget_release(&p[0], 1000);
        assert_int_equal(p[0].mem_held, 0);
        assert_int_equal(b.mem_held, 0);
}

/* Once the broker is full, the peer over its share is refused, the one under it is not. */
static void test_budget_charge_global_share(void **state)
{
        Bus b;
        Peer p[2];

        (void)state;
        setup_bus(&b, p, 2, 1000, 1000); /* share: 500 each */
        assert_int_equal(budget_charge(&p[0], 900), 0);
        assert_int_equal(budget_charge(&p[0], 100), 0); /* the broker is full now */
        assert_int_equal(budget_charge(&p[0], 1), -ENOBUFS);
        assert_false(budget_check(&p[0], 1));
        /* The bystander holds nothing: it is under its share and may go on. */
        assert_true(budget_check(&p[1], 400));
        assert_int_equal(budget_charge(&p[1], 400), 0);
        assert_int_equal(budget_charge(&p[1], 101), -ENOBUFS); /* now over its share */
        budget_release(&p[0], 1000);
        budget_release(&p[1], 400);
        assert_int_equal(b.mem_held, 0);
}

static void test_budget_admit_rings(void **state)
{
        Bus b;
        Peer p[1];

        (void)state;
        setup_bus(&b, p, 1, 1u << 20, 1u << 30);
        b.config.max_ring_order = 16;
        b.config.max_grant_mappings = 100;
        /* 64 KiB rings: 16 + 16 pages and the control page. */
        assert_int_equal(budget_admit_rings(&b, 65536, 65536), 33);
        /* Rings below a page live in the control page. */
        assert_int_equal(budget_admit_rings(&b, 1024, 2048), 1);
        assert_int_equal(budget_admit_rings(&b, 131072, 65536), -E2BIG);
        budget_charge_rings(&p[0], 80);
        assert_int_equal(b.n_grant_pages, 80);
        /* Over the budget, but 33 pages are within the newcomer's share (100 / 2 guests). */
        assert_int_equal(budget_admit_rings(&b, 65536, 65536), 33);
        b.config.max_grant_mappings = 60;
        assert_int_equal(budget_admit_rings(&b, 65536, 65536), -ENOSPC);
        /* Under its share (60 / 2 = 30), a small guest is still admitted. */
        assert_int_equal(budget_admit_rings(&b, 16384, 16384), 9);
        budget_release_rings(&p[0]);
        assert_int_equal(b.n_grant_pages, 0);
        assert_int_equal(b.n_guests, 0);
        budget_release_rings(&p[0]); /* idempotent */
}

static void test_budget_backlog_room(void **state)
{
        Bus b;
        Peer p[1];

        (void)state;
        setup_bus(&b, p, 1, 1u << 20, 1u << 30);
        assert_true(budget_backlog_room(&p[0], VBUS_LINK_BACKLOG_MAX / 2));
        p[0].ep.link.n_backlog = VBUS_LINK_BACKLOG_MAX / 2 - 100;
        assert_true(budget_backlog_room(&p[0], 100));
        assert_false(budget_backlog_room(&p[0], 101));
}

static void test_budget_call_deadline_capped(void **state)
{
        Bus b;
        Peer p[1];
        uint64_t now;

        (void)state;
        setup_bus(&b, p, 1, 1u << 20, 1u << 30);
        b.config.max_call_timeout_ms = 2000;
        now = bus_now_us();
        /* No timeout, or a longer one, gets the cap; a shorter one is kept. */
        assert_true(budget_call_deadline(&b, 0) >= now + 2000000u);
        assert_true(budget_call_deadline(&b, 0) < now + 60000000u);
        assert_true(budget_call_deadline(&b, UINT64_MAX - 1) < now + 60000000u);
        assert_true(budget_call_deadline(&b, 1000) < now + 2000000u);
}

static void test_ratelimit_per_source(void **state)
{
        RateLimit *rl = calloc(1, sizeof(*rl));
        uint64_t t = 1000000;
        uint32_t suppressed = 99;
        int allowed = 0;

        (void)state;
        assert_non_null(rl);
        for (int i = 0; i < 100; i++)
                allowed += ratelimit_allow(rl, ratelimit_key_domain(7), t, &suppressed);
        assert_int_equal(allowed, LIMIT_LOG_PER_MINUTE);
        assert_int_equal(suppressed, 0);
        /* Another source has its own budget. */
        assert_true(ratelimit_allow(rl, ratelimit_key_local(7), t, &suppressed));
        /* A minute later: a fresh budget, and the count of what was suppressed. */
        assert_true(ratelimit_allow(rl, ratelimit_key_domain(7), t + 60000000u, &suppressed));
        assert_int_equal(suppressed, 100 - LIMIT_LOG_PER_MINUTE);
        free(rl);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_budget_cost_counts_empty_items),
                cmocka_unit_test(test_budget_charge_peer_limit),
                cmocka_unit_test(test_budget_charge_global_share),
                cmocka_unit_test(test_budget_admit_rings),
                cmocka_unit_test(test_budget_backlog_room),
                cmocka_unit_test(test_budget_call_deadline_capped),
                cmocka_unit_test(test_ratelimit_per_source),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
