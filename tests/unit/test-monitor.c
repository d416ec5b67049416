/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vchand/monitor.c: a tap's queue is charged to the monitoring peer's budget, so
 * a monitor is bounded like any subscriber. A watcher with a small peer_memory gets a queue that
 * stops growing where its budget ends, and what does not fit is dropped and counted (in the tap
 * and the bus), never charged to the publisher; removing the tap releases everything. A tap
 * within its budget keeps LIMIT_MONITOR_QUEUE records, then drops; patterns select.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "budget.h"
#include "monitor.h"

typedef struct Setup {
        Bus b;
        Peer watcher, sender;
} Setup;

static void setup_bus(Setup *s, uint64_t peer_memory)
{
        memset(s, 0, sizeof(*s));
        config_defaults(&s->b.config);
        s->b.config.peer_memory = peer_memory;
        list_init(&s->b.monitors);
        list_init(&s->b.dirty);
        s->b.n_peers = 2;
        s->watcher.bus = &s->b;
        s->sender.bus = &s->b;
        s->sender.serial = 7;
        (void)snprintf(s->sender.label, sizeof(s->sender.label), "dom3(sensor)");
}

static void publish_n(Setup *s, unsigned n)
{
        for (unsigned i = 0; i < n; i++)
                monitor_publish(&s->b, &s->sender, "sensors.temp", 12, 64, 1);
}

static void test_monitor_queue_charged_to_watcher(void **state)
{
        /* Room for the first rings (64, 128, 256 records) but not the next doubling. */
        uint64_t budget = 512 * sizeof(MonitorRecord) - 1;
        MonitorTap *tap = NULL;
        Setup s;

        (void)state;
        setup_bus(&s, budget);
        assert_int_equal(monitor_tap_add(&s.b, &s.watcher, ">", &tap), 0);
        publish_n(&s, 1000);
        /* The ring stopped at 256 records: 256 charged, the rest dropped and counted. */
        assert_int_equal(s.watcher.mem_held, 256 * sizeof(MonitorRecord));
        assert_true(s.watcher.mem_held <= budget);
        assert_int_equal(s.b.stats.n_monitor_events, 256);
        assert_int_equal(s.b.stats.n_monitor_dropped, 1000 - 256);
        assert_int_equal(monitor_tap_get_dropped(tap), 1000 - 256);
        /* The publisher pays nothing for being watched. */
        assert_int_equal(s.sender.mem_held, 0);
        /* Records come out in order, and the drop count goes with the next one sent. */
        assert_non_null(monitor_tap_peek(tap));
        assert_string_equal(monitor_tap_peek(tap)->name, "sensors.temp");
        assert_string_equal(monitor_tap_peek(tap)->sender, "dom3(sensor)");
        monitor_tap_pop(tap);
        assert_int_equal(monitor_tap_get_dropped(tap), 0);
        monitor_tap_remove(tap);
        assert_int_equal(s.watcher.mem_held, 0);
        assert_int_equal(s.b.mem_held, 0);
}

static void test_monitor_queue_bounded(void **state)
{
        MonitorTap *tap = NULL;
        Setup s;

        (void)state;
        setup_bus(&s, 64ull << 20);
        assert_int_equal(monitor_tap_add(&s.b, &s.watcher, "sensors.*", &tap), 0);
        publish_n(&s, LIMIT_MONITOR_QUEUE + 10);
        /* Another topic does not match the pattern: not queued, not dropped. */
        monitor_publish(&s.b, &s.sender, "other.temp", 10, 1, 0);
        assert_int_equal(s.b.stats.n_monitor_events, LIMIT_MONITOR_QUEUE);
        assert_int_equal(s.b.stats.n_monitor_dropped, 10);
        assert_int_equal(s.watcher.mem_held, (uint64_t)LIMIT_MONITOR_QUEUE * sizeof(MonitorRecord));
        monitor_tap_remove(tap);
        assert_int_equal(s.watcher.mem_held, 0);
}

static void test_monitor_tap_limits(void **state)
{
        MonitorTap *taps[LIMIT_MONITORS], *extra = NULL;
        Setup s;

        (void)state;
        setup_bus(&s, 64ull << 20);
        assert_int_equal(monitor_tap_add(&s.b, &s.watcher, "bad..pattern", &extra), -EINVAL);
        for (int i = 0; i < LIMIT_MONITORS; i++)
                assert_int_equal(monitor_tap_add(&s.b, &s.watcher, ">", &taps[i]), 0);
        assert_int_equal(monitor_tap_add(&s.b, &s.watcher, ">", &extra), -EBUSY);
        for (int i = 0; i < LIMIT_MONITORS; i++)
                monitor_tap_remove(taps[i]);
        assert_int_equal(s.watcher.mem_held, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_monitor_queue_charged_to_watcher),
                cmocka_unit_test(test_monitor_queue_bounded),
                cmocka_unit_test(test_monitor_tap_limits),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
