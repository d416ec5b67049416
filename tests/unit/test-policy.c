/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vchand/policy.c: every syntax error the parser reports, with its exact
 * FILE:LINE:COLUMN; first match and default deny for each action and each kind of subject;
 * @self; the import reservation; subscription scopes (all, none, some); loading a directory in
 * name order.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy.h"

/* A 32-byte key of bytes 0..31 and another of 32 x 0xff, in base64. */
#define KEY_A "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY_B "//////////////////////////////////////////8="

static const uint8_t key_a[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                  16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

static Policy *parse_ok(const char *text)
{
        Policy *p = policy_new();
        char err[256] = "";
        int r;

        assert_non_null(p);
        r = policy_parse(p, "t.policy", text, strlen(text), err, sizeof(err));
        if (r != 0)
                fail_msg("unexpected error %d: %s", r, err);
        return p;
}

static int n_mismatches;

/* Parses @text and checks that it fails with @want ("t.policy:L:C: message" or its start). */
static void expect_error(const char *text, const char *want)
{
        Policy *p = policy_new();
        char err[256] = "";
        int r;

        assert_non_null(p);
        r = policy_parse(p, "t.policy", text, strlen(text), err, sizeof(err));
        if (r != -EINVAL || strncmp(err, want, strlen(want)) != 0) {
                print_error("for %s: got %d '%s', want '%s'\n", text, r, err, want);
                n_mismatches++;
        }
        policy_free(p);
}

static void test_policy_syntax_errors(void **state)
{
        (void)state;
        expect_error("bogus a allow\n", "t.policy:1:14: expected a decision");
        expect_error("fly a.b * allow\n", "t.policy:1:1: unknown action");
        expect_error("publish\n", "t.policy:1:8: expected a resource");
        expect_error("publish a.b\n", "t.policy:1:12: expected a subject");
        expect_error("publish a.b *\n", "t.policy:1:14: expected a decision");
        expect_error("publish a.b * maybe\n", "t.policy:1:15: expected allow or deny");
        expect_error("publish a.b * allow extra\n", "t.policy:1:21: unexpected text after");
        expect_error("# ok\n\npublish a..b * allow\n", "t.policy:3:11: empty token");
        expect_error("publish a. * allow\n", "t.policy:1:11: empty token");
        expect_error("publish .a * allow\n", "t.policy:1:9: empty token");
        expect_error("publish a.>.b * allow\n", "t.policy:1:11: '>' must be the last token");
        expect_error("publish a.b$c * allow\n", "t.policy:1:12: a topic token may hold only");
        expect_error("serve a.b-c * allow\n", "t.policy:1:10: a service token may hold only");
        expect_error("serve a.9b * allow\n", "t.policy:1:9: a service token starts with a letter");
        expect_error("serve a/b * allow\n", "t.policy:1:8: a method is only for call rules");
        expect_error("call a/9 * allow\n", "t.policy:1:8: expected a method name");
        expect_error("call a/b/c * allow\n", "t.policy:1:8: expected a method name");
        expect_error("call /m * allow\n", "t.policy:1:6: empty pattern");
        expect_error("publish a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q * allow\n",
                     "t.policy:1:41: more than 16 tokens");
        expect_error("import remote.@self * allow\n", "t.policy:1:15: @self has no meaning");
        expect_error("admin kill * allow\n", "t.policy:1:7: expected list, monitor, kick");
        expect_error("publish a @bogus allow\n", "t.policy:1:11: unknown subject");
        expect_error("publish a @id: allow\n", "t.policy:1:15: expected a number");
        expect_error("publish a @id:12x allow\n", "t.policy:1:17: expected a decimal digit");
        expect_error("publish a @uid:99999999999 allow\n", "t.policy:1:16: expected a number");
        expect_error("publish a @gid:4294967296 allow\n", "t.policy:1:16: expected a number");
        expect_error("publish a @tag: allow\n", "t.policy:1:16: a tag must be 1 to 64");
        expect_error("publish a @tag:a/b allow\n", "t.policy:1:17: a tag may hold only");
        expect_error("publish a bad/name allow\n", "t.policy:1:14: a domain name may hold only");
        expect_error("publish a @key:no/body allow\n", "t.policy:1:18: a key name may hold only");
        expect_error("publish a @key: allow\n", "t.policy:1:16: a key name must be 1 to 64");
        expect_error("!key\n", "t.policy:1:6: expected: !key NAME BASE64");
        expect_error("!key k\n", "t.policy:1:8: expected the key in base64");
        expect_error("!key k notbase64\n", "t.policy:1:8: expected the base64");
        expect_error("!key k " KEY_A " more\n", "t.policy:1:53: unexpected text after the key");
        expect_error("!key k " KEY_A "\n!key k " KEY_B "\n", "t.policy:2:6: this key name is");
        expect_error("!key b@d " KEY_A "\n", "t.policy:1:7: a key name may hold only");
        expect_error("!include x\n", "t.policy:1:1: unknown directive");
        expect_error("publish a * allow\n\tpublish\x01 a * allow\n",
                     "t.policy:2:9: unexpected byte");
        expect_error("publish a * allow # no\n", "t.policy:1:19: unexpected text after");
        expect_error("publish \xc3\xa9 * allow\n", "t.policy:1:9: unexpected byte");
        /* The last bit of a key's base64 that no byte holds must be zero: one spelling per key. */
        expect_error("publish a @key:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9= allow\n",
                     "t.policy:1:16: not the base64 of a 32-byte public key");
        assert_int_equal(n_mismatches, 0);
}

static void test_policy_syntax_error_nul_and_long_line(void **state)
{
        Policy *p = policy_new();
        char err[256] = "", *big;
        static const char nul[] = "publish a * allow\npub\0lish a * allow\n";

        (void)state;
        assert_int_equal(policy_parse(p, "t.policy", nul, sizeof(nul) - 1, err, sizeof(err)),
                         -EINVAL);
        assert_string_equal(err, "t.policy:2:4: NUL byte");
        policy_free(p);

        big = malloc(5000);
        assert_non_null(big);
        memset(big, 'a', 5000);
        p = policy_new();
        assert_int_equal(policy_parse(p, "t.policy", big, 5000, err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "t.policy:1:4097: line longer than 4096 bytes");
        policy_free(p);
        free(big);
}

static void test_policy_blank_comments_crlf(void **state)
{
        Policy *p = parse_ok("\n   \n# comment é\n  # indented\r\npublish a.b * allow\r\n"
                             "\tsubscribe\t>\t@anyvm\tdeny");

        (void)state;
        assert_int_equal(policy_get_n_rules(p), 2);
        assert_int_equal(policy_get_rule(p, 0)->line, 5);
        assert_int_equal(policy_get_rule(p, 1)->line, 6);
        assert_string_equal(policy_get_rule(p, 1)->file, "t.policy");
        policy_free(p);
}

static const PolicySubject guest_sensor = {.domid = 3, .name = "sensor", .tags = "trusted lab"};
static const PolicySubject guest_web = {.domid = 5, .name = "web", .tags = ""};
static const PolicySubject dom0_vchan = {.domid = 0, .name = "Domain-0", .tags = ""};
static const PolicySubject local_root = {.local = true, .uid = 0, .gid = 0};
static const PolicySubject local_user = {.local = true, .uid = 1000, .gid = 100};

static bool check(const Policy *p, const PolicySubject *s, PolicyAction a, const char *res)
{
        const PolicyRule *r;

        return policy_check(p, s, a, res, &r);
}

static void test_policy_first_match_default_deny(void **state)
{
        Policy *p = parse_ok("publish sensors.secret sensor deny\n"
                             "publish sensors.> sensor allow\n"
                             "publish sensors.> @anyvm allow\n");
        const PolicyRule *r;

        (void)state;
        assert_false(policy_check(p, &guest_sensor, POLICY_PUBLISH, "sensors.secret", &r));
        assert_int_equal(r->line, 1);
        assert_true(policy_check(p, &guest_sensor, POLICY_PUBLISH, "sensors.t", &r));
        assert_int_equal(r->line, 2);
        assert_true(policy_check(p, &guest_web, POLICY_PUBLISH, "sensors.secret", &r));
        assert_int_equal(r->line, 3);
        /* '>' takes one token or more, never none. */
        assert_false(policy_check(p, &guest_web, POLICY_PUBLISH, "sensors", &r));
        assert_null(r);
        /* Another action, another subject: the default. */
        assert_false(check(p, &guest_web, POLICY_SUBSCRIBE, "sensors.t"));
        assert_false(check(p, &local_root, POLICY_PUBLISH, "sensors.t"));
        assert_false(check(p, &dom0_vchan, POLICY_PUBLISH, "sensors.t"));
        policy_free(p);
}

static void test_policy_subject_kinds(void **state)
{
        Policy *p = parse_ok("!key alice " KEY_A "\n"
                             "publish t.any * allow\n"
                             "publish t.vm @anyvm allow\n"
                             "publish t.admin @adminvm allow\n"
                             "publish t.admin2 @dom0 allow\n"
                             "publish t.name web allow\n"
                             "publish t.id @id:3 allow\n"
                             "publish t.tag @tag:lab allow\n"
                             "publish t.local @local allow\n"
                             "publish t.uid @uid:1000 allow\n"
                             "publish t.gid @gid:0 allow\n"
                             "publish t.key @key:alice allow\n"
                             "publish t.rawkey @key:" KEY_A " allow\n"
                             "publish t.otherkey @key:" KEY_B " allow\n"
                             "publish t.keyring @key:backup allow\n");
        PolicySubject keyed = guest_web;

        (void)state;
        keyed.has_key = true;
        keyed.key = key_a;
        keyed.key_name = "backup";
        for (int i = 0; i < 5; i++) {
                const PolicySubject *s = (const PolicySubject *[]){
                        &guest_sensor, &guest_web, &dom0_vchan, &local_root, &local_user}[i];

                assert_true(check(p, s, POLICY_PUBLISH, "t.any"));
                assert_int_equal(check(p, s, POLICY_PUBLISH, "t.vm"), i < 2);
                assert_int_equal(check(p, s, POLICY_PUBLISH, "t.admin"), i == 2);
                assert_int_equal(check(p, s, POLICY_PUBLISH, "t.admin2"), i == 2);
                assert_int_equal(check(p, s, POLICY_PUBLISH, "t.name"), i == 1);
                assert_int_equal(check(p, s, POLICY_PUBLISH, "t.id"), i == 0);
                assert_int_equal(check(p, s, POLICY_PUBLISH, "t.tag"), i == 0);
                assert_int_equal(check(p, s, POLICY_PUBLISH, "t.local"), i >= 3);
                assert_int_equal(check(p, s, POLICY_PUBLISH, "t.uid"), i == 4);
                assert_int_equal(check(p, s, POLICY_PUBLISH, "t.gid"), i == 3);
                assert_false(check(p, s, POLICY_PUBLISH, "t.key"));
        }
        /* A tag is a whole word of the list: "la" is not "lab". */
        assert_false(check(p, &(PolicySubject){.domid = 9, .name = "x", .tags = "la labs"},
                           POLICY_PUBLISH, "t.tag"));
        assert_true(check(p, &keyed, POLICY_PUBLISH, "t.key"));
        assert_true(check(p, &keyed, POLICY_PUBLISH, "t.rawkey"));
        assert_false(check(p, &keyed, POLICY_PUBLISH, "t.otherkey"));
        /* A name no !key defines is the keyring's: it matches a proven key of that name only. */
        assert_true(check(p, &keyed, POLICY_PUBLISH, "t.keyring"));
        keyed.key_name = "other";
        assert_false(check(p, &keyed, POLICY_PUBLISH, "t.keyring"));
        keyed.has_key = false;
        keyed.key_name = "backup";
        assert_false(check(p, &keyed, POLICY_PUBLISH, "t.keyring"));
        assert_false(check(p, &keyed, POLICY_PUBLISH, "t.key"));
        policy_free(p);
}

static void test_policy_self(void **state)
{
        Policy *p = parse_ok("publish guests.@self.> @anyvm allow\n"
                             "serve @self.* @anyvm allow\n"
                             "call @self.Store/Get @anyvm allow\n");

        (void)state;
        assert_true(check(p, &guest_web, POLICY_PUBLISH, "guests.web.x"));
        assert_false(check(p, &guest_web, POLICY_PUBLISH, "guests.sensor.x"));
        assert_true(check(p, &guest_web, POLICY_SERVE, "web.Store"));
        assert_false(check(p, &guest_web, POLICY_SERVE, "sensor.Store"));
        assert_true(check(p, &guest_web, POLICY_CALL, "web.Store/Get"));
        assert_false(check(p, &guest_web, POLICY_CALL, "web.Store/Put"));
        /* A name that is not a token of the grammar matches nothing; local peers have none. */
        assert_false(check(p, &(PolicySubject){.domid = 7, .name = "sys-net", .tags = ""},
                           POLICY_SERVE, "sys-net.Store"));
        assert_true(check(p, &(PolicySubject){.domid = 7, .name = "sys-net", .tags = ""},
                          POLICY_PUBLISH, "guests.sys-net.up"));
        assert_false(check(p, &(PolicySubject){.domid = 7, .name = "a.b", .tags = ""},
                           POLICY_PUBLISH, "guests.a.b.x"));
        assert_false(check(p, &local_root, POLICY_PUBLISH, "guests..x"));
        policy_free(p);
}

static void test_policy_call_admin(void **state)
{
        Policy *p = parse_ok("call storage.Store/Delete @anyvm deny\n"
                             "call storage.Store @anyvm allow\n"
                             "call net.* web allow\n"
                             "call net.>/Ping @anyvm allow\n"
                             "admin list @anyvm allow\n"
                             "admin * @uid:0 allow\n");

        (void)state;
        assert_false(check(p, &guest_web, POLICY_CALL, "storage.Store/Delete"));
        assert_true(check(p, &guest_web, POLICY_CALL, "storage.Store/Get"));
        assert_false(check(p, &guest_web, POLICY_CALL, "storage.Other/Get"));
        assert_true(check(p, &guest_web, POLICY_CALL, "net.Dns/Resolve"));
        assert_false(check(p, &guest_web, POLICY_CALL, "net.a.Dns/Resolve"));
        assert_true(check(p, &guest_sensor, POLICY_CALL, "net.a.Dns/Ping"));
        assert_false(check(p, &guest_sensor, POLICY_CALL, "net.a.Dns/Resolve"));
        assert_true(check(p, &guest_web, POLICY_ADMIN, policy_admin_class("ListServices")));
        assert_false(check(p, &guest_web, POLICY_ADMIN, policy_admin_class("Kick")));
        assert_true(check(p, &local_root, POLICY_ADMIN, policy_admin_class("Kick")));
        assert_true(check(p, &local_root, POLICY_ADMIN, policy_admin_class("NoSuchMethod")));
        assert_false(check(p, &guest_web, POLICY_ADMIN, policy_admin_class("NoSuchMethod")));
        assert_string_equal(policy_admin_class("Reload"), "reload");
        assert_string_equal(policy_admin_class("Monitor"), "monitor");
        policy_free(p);
}

static void test_policy_import_reservation(void **state)
{
        Policy *p = parse_ok("import remote.> @uid:990 allow\n"
                             "publish > * allow\n");
        const PolicyRule *r;
        PolicySubject bridge = {.local = true, .uid = 990, .gid = 990};

        (void)state;
        /* A later allow of everything does not open the reserved prefix. */
        assert_false(policy_check(p, &guest_web, POLICY_PUBLISH, "remote.beta.t", &r));
        assert_non_null(r);
        assert_int_equal(r->line, 1);
        assert_false(check(p, &local_root, POLICY_PUBLISH, "remote.beta.t"));
        assert_true(check(p, &bridge, POLICY_PUBLISH, "remote.beta.t"));
        assert_true(check(p, &guest_web, POLICY_PUBLISH, "remotely.t"));
        assert_true(policy_has_bridge_right(p, &bridge));
        assert_false(policy_has_bridge_right(p, &local_root));
        policy_free(p);
}

static void test_policy_subscription_scope(void **state)
{
        Policy *p = parse_ok("subscribe sensors.secret.> @anyvm deny\n"
                             "subscribe sensors.> @anyvm allow\n"
                             "subscribe public.* web allow\n"
                             "subscribe guests.@self.> @anyvm allow\n");
        const PolicyRule *r;

        (void)state;
        assert_int_equal(policy_check_pattern(p, &guest_web, "public.x", &r), POLICY_SCOPE_ALL);
        assert_int_equal(r->line, 3);
        assert_int_equal(policy_check_pattern(p, &guest_web, "public.*", &r), POLICY_SCOPE_ALL);
        assert_int_equal(policy_check_pattern(p, &guest_web, "public.>", &r), POLICY_SCOPE_SOME);
        assert_int_equal(policy_check_pattern(p, &guest_web, "private.>", &r), POLICY_SCOPE_NONE);
        assert_null(r);
        assert_int_equal(policy_check_pattern(p, &guest_web, "sensors.secret.>", &r),
                         POLICY_SCOPE_NONE);
        assert_int_equal(r->line, 1);
        assert_int_equal(policy_check_pattern(p, &guest_web, "sensors.>", &r), POLICY_SCOPE_SOME);
        assert_int_equal(policy_check_pattern(p, &guest_web, "sensors.t", &r), POLICY_SCOPE_ALL);
        assert_int_equal(policy_check_pattern(p, &guest_web, "*.t", &r), POLICY_SCOPE_SOME);
        assert_int_equal(policy_check_pattern(p, &guest_web, ">", &r), POLICY_SCOPE_SOME);
        assert_int_equal(policy_check_pattern(p, &guest_web, "guests.web.>", &r), POLICY_SCOPE_ALL);
        assert_int_equal(policy_check_pattern(p, &guest_web, "guests.*.>", &r), POLICY_SCOPE_SOME);
        assert_int_equal(policy_check_pattern(p, &local_root, ">", &r), POLICY_SCOPE_NONE);
        /* Per topic, for SOME: what the subscriber may receive. */
        assert_true(check(p, &guest_web, POLICY_SUBSCRIBE, "sensors.t"));
        assert_false(check(p, &guest_web, POLICY_SUBSCRIBE, "sensors.secret.k"));
        assert_false(check(p, &guest_web, POLICY_SUBSCRIBE, "guests.sensor.x"));
        policy_free(p);
}

/* The rules kept for a filtered subscription decide each of its topics as the whole policy. */
static void test_policy_relevant_rules(void **state)
{
        /* Each pattern with topics it matches. */
        static const char *const cases[][5] = {
                {">", "a", "a.secret", "web.b", "x.y.z"},
                {"a.>", "a.b", "a.secret", "a.b.c", "a.x.y"},
                {"*.b", "a.b", "web.b", "x.b", "q.b"},
                {"web.>", "web.b", "web.a.b", "web.x", "web.secret"},
                {"x.>", "x.b", "x.y.z", "x.y", "x.y.z.w"},
        };
        Policy *p = parse_ok("subscribe a.secret web deny\n"
                             "subscribe a.> @anyvm allow\n"
                             "subscribe *.b web allow\n"
                             "subscribe @self.> @anyvm allow\n"
                             "subscribe x.y.z * deny\n"
                             "subscribe x.> sensor allow\n"
                             "publish > * allow\n");
        const PolicySubject *subjects[] = {&guest_web, &guest_sensor, &local_root};
        const PolicyRule *rules[8], *r;

        (void)state;
        for (size_t s = 0; s < 3; s++) {
                for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                        int n = policy_relevant_rules(p, subjects[s], cases[i][0], rules, 8);

                        assert_true(n >= 0 && n <= 6);
                        for (size_t t = 1; t < 5; t++)
                                assert_int_equal(policy_check_rules(rules, (size_t)n, subjects[s],
                                                                    cases[i][t]),
                                                 policy_check(p, subjects[s], POLICY_SUBSCRIBE,
                                                              cases[i][t], &r));
                }
        }
        /* Only the rules that can matter: web's "x.>" meets *.b (x.b) and x.y.z, in order. */
        assert_int_equal(policy_relevant_rules(p, &guest_web, "x.>", rules, 8), 2);
        assert_int_equal(rules[0]->line, 3);
        assert_int_equal(rules[1]->line, 5);
        /* More rules than room: -E2BIG (the caller checks the whole policy). */
        assert_int_equal(policy_relevant_rules(p, &guest_web, ">", rules, 2), -E2BIG);
        policy_free(p);
}

static void write_file(const char *dir, const char *name, const char *text)
{
        char path[512];
        FILE *f;

        assert_true(snprintf(path, sizeof(path), "%s/%s", dir, name) < (int)sizeof(path));
        f = fopen(path, "w");
        assert_non_null(f);
        assert_int_equal(fputs(text, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
}

static void test_policy_load_dir(void **state)
{
        char dir[] = "/tmp/test-policy.XXXXXX", err[512];
        Policy *p = NULL;
        const PolicyRule *r;

        (void)state;
        assert_non_null(mkdtemp(dir));
        /* Name order: 10- before 20-; other names and hidden files are not read. */
        write_file(dir, "20-b.policy", "publish a * allow\n");
        write_file(dir, "10-a.policy", "publish a web deny\n");
        write_file(dir, "30-c.policy.bak", "this is not read\n");
        write_file(dir, ".99-hidden.policy", "this is not read\n");
        assert_int_equal(policy_load_dir(dir, &p, err, sizeof(err)), 0);
        assert_int_equal(policy_get_n_rules(p), 2);
        assert_false(policy_check(p, &guest_web, POLICY_PUBLISH, "a", &r));
        assert_non_null(strstr(r->file, "10-a.policy"));
        assert_true(check(p, &guest_sensor, POLICY_PUBLISH, "a"));
        p = policy_free(p);

        /* An error names the file, line and column; nothing is returned. */
        write_file(dir, "25-bad.policy", "\npublish a web allw\n");
        assert_int_equal(policy_load_dir(dir, &p, err, sizeof(err)), -EINVAL);
        assert_null(p);
        assert_non_null(strstr(err, "/25-bad.policy:2:15: expected allow or deny"));
        {
                static const char *const names[] = {"25-bad.policy", "10-a.policy", "20-b.policy",
                                                    "30-c.policy.bak", ".99-hidden.policy"};
                char path[512];

                for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                        assert_true(snprintf(path, sizeof(path), "%s/%s", dir, names[i]) <
                                    (int)sizeof(path));
                        assert_int_equal(unlink(path), 0);
                }
        }
        /* An empty directory is a policy that denies everything. */
        assert_int_equal(policy_load_dir(dir, &p, err, sizeof(err)), 0);
        assert_int_equal(policy_get_n_rules(p), 0);
        p = policy_free(p);
        assert_int_equal(rmdir(dir), 0);
        /* A missing directory is an error naming it. */
        assert_int_equal(policy_load_dir(dir, &p, err, sizeof(err)), -ENOENT);
        assert_non_null(strstr(err, "No such file"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_policy_syntax_errors),
                cmocka_unit_test(test_policy_syntax_error_nul_and_long_line),
                cmocka_unit_test(test_policy_blank_comments_crlf),
                cmocka_unit_test(test_policy_first_match_default_deny),
                cmocka_unit_test(test_policy_subject_kinds),
                cmocka_unit_test(test_policy_self),
                cmocka_unit_test(test_policy_call_admin),
                cmocka_unit_test(test_policy_import_reservation),
                cmocka_unit_test(test_policy_subscription_scope),
                cmocka_unit_test(test_policy_relevant_rules),
                cmocka_unit_test(test_policy_load_dir),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
