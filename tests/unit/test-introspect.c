/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vchand/introspect.c: the reserved namespace, and the ListServicesReply encoder
 * (order, grouping, counts, and the size limit: truncation at service and server boundaries,
 * checked against every budget up to the full size).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "introspect.h"
#include "vbus/v1/broker.pb-c.h"

static Identity guest(uint32_t domid, const char *name)
{
        Identity id = {.domid = domid};

        assert_true(snprintf(id.domain_name, sizeof(id.domain_name), "%s", name) <
                    (int)sizeof(id.domain_name));
        return id;
}

static Vbus__V1__ListServicesReply *encode(IntroServer *v, size_t n, size_t max, size_t *ret_n)
{
        Vbus__V1__ListServicesReply *m;
        uint8_t *buf = NULL;
        size_t len = 0;

        assert_int_equal(introspect_encode(v, n, max, &buf, &len), 0);
        assert_true(len <= max);
        assert_true(len == 0 || buf != NULL);
        m = vbus__v1__list_services_reply__unpack(NULL, len, buf);
        assert_non_null(m);
        free(buf);
        if (ret_n)
                *ret_n = len;
        return m;
}

static void test_introspect_reserved_names(void **state)
{
        static const char *yes[] = {"vbus", "vbus.v1.Broker", "vbus.Anything"};
        static const char *no[] = {"vbusx", "vbus2.v1.Broker", "myvbus.v1.Broker", "vbu",
                                   "Vbus.v1"};

        (void)state;
        for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
                assert_true(introspect_is_reserved(yes[i], strlen(yes[i])));
        for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
                assert_false(introspect_is_reserved(no[i], strlen(no[i])));
        /* Only @len bytes count: "vbus.x" cut to 4 bytes is "vbus". */
        assert_true(introspect_is_reserved("vbus.x", 4));
        assert_false(introspect_is_reserved("vbus", 3));
}

static void test_introspect_encode_sorts_and_groups(void **state)
{
        Identity a = guest(7, "kv-b"), b = guest(3, "kv-a"), c = guest(5, "clock");
        Identity l = {.domid = 0, .local = true, .uid = 1000, .pid = 42};
        IntroServer v[] = {
                {.service = "storage.v1.Store",
                 .service_calls = 2,
                 .ident = &a,
                 .calls_in_flight = 2,
                 .calls_total = 10},
                {.service = "clock.v1.Time", .service_calls = 0, .ident = &c, .calls_total = 1},
                {.service = "storage.v1.Store", .service_calls = 2, .ident = &b, .calls_total = 4},
                {.service = "clock.v1.Time", .service_calls = 0, .ident = &l, .calls_total = 0},
        };
        Vbus__V1__ListServicesReply *m = encode(v, 4, 65536, NULL);
        const Vbus__V1__ServiceInfo *s0, *s1;

        (void)state;
        assert_false(m->truncated);
        assert_int_equal(m->total_services, 2);
        assert_int_equal(m->n_services, 2);
        s0 = m->services[0];
        s1 = m->services[1];
        assert_string_equal(s0->name, "clock.v1.Time");
        assert_int_equal(s0->total_servers, 2);
        assert_int_equal(s0->n_servers, 2);
        /* By domid: the local process (dom0) first. */
        assert_true(s0->servers[0]->local);
        assert_int_equal(s0->servers[0]->uid, 1000);
        assert_int_equal(s0->servers[0]->pid, 42);
        assert_int_equal(s0->servers[1]->domid, 5);
        assert_string_equal(s0->servers[1]->domain_name, "clock");
        assert_int_equal(s0->servers[1]->calls_total, 1);
        assert_string_equal(s1->name, "storage.v1.Store");
        assert_int_equal(s1->calls_in_flight, 2);
        assert_int_equal(s1->n_servers, 2);
        assert_int_equal(s1->servers[0]->domid, 3);
        assert_string_equal(s1->servers[0]->domain_name, "kv-a");
        assert_false(s1->servers[0]->local);
        assert_int_equal(s1->servers[0]->calls_total, 4);
        assert_int_equal(s1->servers[1]->domid, 7);
        assert_int_equal(s1->servers[1]->calls_in_flight, 2);
        assert_int_equal(s1->servers[1]->calls_total, 10);
        vbus__v1__list_services_reply__free_unpacked(m, NULL);
}

static void test_introspect_encode_empty(void **state)
{
        uint8_t *buf = (uint8_t *)"not written";
        size_t len = 99;
        Vbus__V1__ListServicesReply *m;

        (void)state;
        assert_int_equal(introspect_encode(NULL, 0, 8, &buf, &len), 0);
        assert_int_equal(len, 0);
        assert_null(buf);
        m = encode(NULL, 0, 8, NULL);
        assert_int_equal(m->n_services, 0);
        assert_int_equal(m->total_services, 0);
        assert_false(m->truncated);
        vbus__v1__list_services_reply__free_unpacked(m, NULL);
}

static void test_introspect_encode_budget_too_small(void **state)
{
        Identity a = guest(1, "a");
        IntroServer v[] = {{.service = "a.S", .ident = &a}};
        uint8_t *buf = NULL;
        size_t len = 0;

        (void)state;
        assert_int_equal(introspect_encode(v, 1, 7, &buf, &len), -EINVAL);
        assert_null(buf);
        assert_int_equal(len, 0);
}

/* Many services of several servers each: for every budget, the reply fits it, is a prefix of
 * the full list in the same order, counts everything, and says whether it is complete. */
static void test_introspect_encode_truncates_at_every_budget(void **state)
{
        enum { N_SVC = 12, PER = 3, N_ALL = N_SVC * PER };
        Identity ids[PER];
        char names[N_SVC][32];
        IntroServer v[N_ALL];
        Vbus__V1__ListServicesReply *full;
        size_t full_len, n_full_servers = 0;

        (void)state;
        for (int k = 0; k < PER; k++)
                ids[k] = guest((uint32_t)(10 + k), "a-guest-with-a-long-name");
        for (int i = 0; i < N_SVC; i++) {
                assert_true(snprintf(names[i], sizeof(names[i]), "svc%02d.v1.Service", i) <
                            (int)sizeof(names[i]));
                for (int k = 0; k < PER; k++)
                        v[i * PER + k] = (IntroServer){
                                .service = names[i], .ident = &ids[k], .calls_total = (uint64_t)k};
        }
        full = encode(v, N_ALL, 1 << 20, &full_len);
        assert_false(full->truncated);
        assert_int_equal(full->n_services, N_SVC);
        for (size_t budget = 8; budget <= full_len + 1; budget++) {
                size_t len = 0, n_servers = 0;
                Vbus__V1__ListServicesReply *m = encode(v, N_ALL, budget, &len);

                assert_int_equal(m->total_services, N_SVC);
                assert_true(m->truncated == (budget < full_len));
                for (size_t i = 0; i < m->n_services; i++) {
                        const Vbus__V1__ServiceInfo *s = m->services[i];

                        assert_string_equal(s->name, names[i]);
                        assert_int_equal(s->total_servers, PER);
                        /* Only the last service listed may lack servers. */
                        if (i + 1 < m->n_services)
                                assert_int_equal(s->n_servers, PER);
                        for (size_t k = 0; k < s->n_servers; k++)
                                assert_int_equal(s->servers[k]->domid, 10 + k);
                        n_servers += s->n_servers;
                }
                if (m->truncated)
                        assert_true(n_servers < N_ALL);
                vbus__v1__list_services_reply__free_unpacked(m, NULL);
        }
        for (size_t i = 0; i < full->n_services; i++)
                n_full_servers += full->services[i]->n_servers;
        assert_int_equal(n_full_servers, N_SVC * PER);
        vbus__v1__list_services_reply__free_unpacked(full, NULL);
}

/* One service with more servers than fit: listed with the servers that fit, total_servers
 * counting all of them. */
static void test_introspect_encode_truncates_servers(void **state)
{
        enum { N = 2000 };
        IntroServer *v = calloc(N, sizeof(*v));
        Identity *ids = calloc(N, sizeof(*ids));
        Vbus__V1__ListServicesReply *m;
        size_t len;

        (void)state;
        assert_non_null(v);
        assert_non_null(ids);
        for (int i = 0; i < N; i++) {
                ids[i] = guest((uint32_t)i + 1, "guest");
                v[i] = (IntroServer){.service = "big.v1.Service", .ident = &ids[i]};
        }
        m = encode(v, N, 4096, &len);
        assert_true(m->truncated);
        assert_int_equal(m->total_services, 1);
        assert_int_equal(m->n_services, 1);
        assert_int_equal(m->services[0]->total_servers, N);
        assert_true(m->services[0]->n_servers > 100);
        assert_true(m->services[0]->n_servers < N);
        for (size_t k = 0; k < m->services[0]->n_servers; k++)
                assert_int_equal(m->services[0]->servers[k]->domid, k + 1);
        vbus__v1__list_services_reply__free_unpacked(m, NULL);
        free(v);
        free(ids);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_introspect_reserved_names),
                cmocka_unit_test(test_introspect_encode_sorts_and_groups),
                cmocka_unit_test(test_introspect_encode_empty),
                cmocka_unit_test(test_introspect_encode_budget_too_small),
                cmocka_unit_test(test_introspect_encode_truncates_at_every_budget),
                cmocka_unit_test(test_introspect_encode_truncates_servers),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
