/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the bridge's configuration parser (every error names its line), of the
 * envelope (encode, strict parse) and of the name helpers.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "envelope.h"
#include "names.h"

/* Parses @text; returns the result and leaves the error text in @err (at least 1024 bytes). */
static int parse(const char *text, char *err, Config **ret)
{
        char path[] = "/tmp/test-bridge-config.XXXXXX";
        int fd = mkstemp(path);
        FILE *e = fmemopen(err, 1024, "w");
        int r;

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
        memset(err, 0, 1024);
        r = config_load(path, e, ret);
        fclose(e);
        unlink(path);
        /* Make the message independent of the temporary name. */
        if (strncmp(err, path, strlen(path)) == 0)
                memmove(err, err + strlen(path), strlen(err + strlen(path)) + 1);
        return r;
}

static void test_config_full(void **state)
{
        char err[1024];
        Config *c = NULL;

        assert_int_equal(parse("# a comment\n"
                               "host alpha\n"
                               "nats nats://127.0.0.1:4222 nats://127.0.0.1:4223  # two\n"
                               "nats-user bridge s3cret#not-a-comment\n"
                               "export sensors.> block\n"
                               "export alerts.*\n"
                               "import beta sensors.>\n"
                               "import * alerts.>\n"
                               "offer storage.v1.Store\n"
                               "import-service beta kv.v1.Kv beta.kv.v1.Kv\n"
                               "stream-method beta.kv.v1.Kv/Watch\n"
                               "stream-method beta.kv.v1.Kv/Put bidi\n"
                               "rpc-default-timeout 5000\n",
                               err, &c),
                         0);
        assert_string_equal(c->host, "alpha");
        assert_int_equal(c->n_nats_urls, 2);
        assert_string_equal(c->nats_password, "s3cret#not-a-comment");
        assert_int_equal(c->n_exports, 2);
        assert_int_equal(c->exports[0].policy, VBUS_SLOW_BLOCK);
        assert_int_equal(c->exports[1].policy, VBUS_SLOW_DROP);
        assert_string_equal(c->imports[1].host, "");
        assert_string_equal(c->import_services[0].local, "beta.kv.v1.Kv");
        assert_string_equal(c->stream_methods[0].method, "Watch");
        assert_true(c->stream_methods[0].server);
        assert_false(c->stream_methods[1].server);
        assert_string_equal(c->subject_root, "vbus");
        assert_string_equal(c->import_root, "remote");
        assert_int_equal(c->rpc_default_timeout_ms, 5000);
        config_free(c);
}

static void test_config_errors(void **state)
{
        static const struct {
                const char *text, *err;
        } cases[] = {
                {"host alpha\nnats nats://x\nfrobnicate 1\n", ":3: unknown directive 'frobnicate'"},
                {"host alpha\nhost beta\n", ":2: host given twice (first on line 1)"},
                {"host al-pha\n", ":1: host: 'al-pha' is not a valid name"},
                {"host alpha\n", ": no 'nats URL' directive"},
                {"nats nats://x\n", ": no 'host NAME' directive"},
                {"host a\nnats http://x\n", ":2: nats: 'http://x' is not a nats:// or tls:// URL"},
                {"host a\nnats nats://x\nexport a.>.b\n", ":3: export: 'a.>.b' is not a valid"},
                {"host a\nnats nats://x\nexport a.b sometimes\n", ":3: export: 'sometimes'"},
                {"host a\nnats nats://x\nexport\n", ":3: wrong number of arguments: export"},
                {"host a\nnats nats://x\n\nexport remote.>\n", ":4: export remote.>: topics under"},
                {"host a\nnats nats://x\nimport a x.>\n", ":3: import a: that is this host"},
                {"host a\nnats nats://x\noffer s.v1.S\nimport-service b s.v1.S\n",
                 ":4: import-service s.v1.S: also offered"},
                {"host a\nnats nats://x\nrpc-max-calls 0\n",
                 ":3: rpc-max-calls: 0 is out of range"},
                {"host a\nnats nats://x\nrpc-max-calls 12x\n", ":3: rpc-max-calls: '12x' is not"},
                {"host a\nnats nats://x\nstream-method s.v1.S/M\n",
                 ":3: stream-method: s.v1.S is not an imported service"},
                {"host a\nnats nats://x\nsubject-root v\nrpc-root v.rpc\n",
                 ": subject-root v and rpc-root v.rpc overlap"},
                {"host a\nnats nats://x\nforged-watch maybe\n", ":3: forged-watch: 'maybe'"},
                {"host a\nnats nats://x\nimport-service b s.v1.S\nstream-method s.v1.S/M "
                 "sideways\n",
                 ":4: stream-method: 'sideways' is not server, client or bidi"},
                {"host a\nnats nats://x\nimport-service b vbus.v1.Broker\n",
                 ":3: import-service: the vbus namespace"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char err[1024];
                Config *c = NULL;

                assert_int_equal(parse(cases[i].text, err, &c), -EINVAL);
                if (strncmp(err, cases[i].err, strlen(cases[i].err)) != 0)
                        fail_msg("case %zu: got '%s', expected '%s...'", i, err, cases[i].err);
                assert_null(c);
        }
}

static void test_config_missing_file(void **state)
{
        char err[1024] = "";
        FILE *e = fmemopen(err, sizeof(err), "w");
        Config *c = NULL;

        assert_int_equal(config_load("/nonexistent/bridge.conf", e, &c), -ENOENT);
        fclose(e);
        assert_non_null(strstr(err, "/nonexistent/bridge.conf: "));
}

static void test_envelope_roundtrip(void **state)
{
        Envelope e = {.host = "alpha",
                      .domid = 3,
                      .uid = 0,
                      .name = "my guest(1)",
                      .topic = "sensors.t",
                      .seq = 17,
                      .gap = 2,
                      .dropped = 1};
        Envelope p;
        char buf[ENVELOPE_LINE_MAX + 16], from[256];
        int n = envelope_encode(&e, buf, sizeof(buf));

        assert_true(n > 0);
        memcpy(buf + n, "payload", 7);
        assert_int_equal(envelope_parse(buf, (size_t)n + 7, &p), 0);
        assert_string_equal(p.host, "alpha");
        assert_string_equal(p.name, "my guest(1)");
        assert_int_equal(p.seq, 17);
        assert_int_equal(p.gap, 2);
        assert_int_equal(p.dropped, 1);
        assert_false(p.unknown);
        assert_int_equal(p.size, 7);
        assert_memory_equal(p.data, "payload", 7);
        envelope_format_from(&p, from, sizeof(from));
        assert_string_equal(from, "alpha:dom3(my%20guest%281%29)");
}

static void test_envelope_parse_rejects(void **state)
{
        static const char *const bad[] = {
                "hello",
                "vbus-bridge/1 host=a domid=1 name= uid=0 local=0 topic=t seq=1 gap=0 dropped=0\n",
                "vbus-bridge/1 host=a domid=1 name= uid=0 local=0 topic=t seq=1 gap=0 dropped=0 "
                "unknown=0 extra=1\n",
                "vbus-bridge/1 host=a host=a domid=1 name= uid=0 local=0 topic=t seq=1 gap=0 "
                "dropped=0 unknown=0\n",
                "vbus-bridge/1 host=a domid=x name= uid=0 local=0 topic=t seq=1 gap=0 dropped=0 "
                "unknown=0\n",
                "vbus-bridge/1 host=a domid=1 name=%zz uid=0 local=0 topic=t seq=1 gap=0 "
                "dropped=0 unknown=0\n",
                "vbus-bridge/1 host=a domid=1 name= uid=0 local=0 topic=t seq=1 gap=0 dropped=0 "
                "unknown=0", /* no newline */
        };
        Envelope e;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                if (envelope_parse(bad[i], strlen(bad[i]), &e) != -EINVAL)
                        fail_msg("case %zu parsed", i);
}

static void test_names(void **state)
{
        char buf[64];

        assert_true(names_is_pattern(">"));
        assert_true(names_is_pattern("a.*.c"));
        assert_false(names_is_pattern("a.>.c"));
        assert_false(names_is_topic("a.*"));
        assert_true(names_is_host("alpha_1"));
        assert_false(names_is_host("_any"));
        assert_true(names_pattern_may_match_under(">", "remote"));
        assert_true(names_pattern_may_match_under("*.x", "remote"));
        assert_true(names_pattern_may_match_under("remote.a", "remote"));
        assert_false(names_pattern_may_match_under("remote", "remote"));
        assert_false(names_pattern_may_match_under("sensors.>", "remote"));
        assert_true(names_has_prefix("remote.a", "remote"));
        assert_false(names_has_prefix("remotes.a", "remote"));
        assert_int_equal(names_pct_encode("a b%", 4, buf, sizeof(buf)), 8);
        assert_string_equal(buf, "a%20b%25");
        assert_int_equal(names_pct_decode(buf), 4);
        assert_string_equal(buf, "a b%");
        assert_int_equal(names_pct_encode("abc", 3, buf, 3), -ENOBUFS);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config_full),
                cmocka_unit_test(test_config_errors),
                cmocka_unit_test(test_config_missing_file),
                cmocka_unit_test(test_envelope_roundtrip),
                cmocka_unit_test(test_envelope_parse_rejects),
                cmocka_unit_test(test_names),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
