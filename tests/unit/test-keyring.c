/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of vchand/keyring.c: the auth keys of vchand.conf, the keyring file (every error
 * with its line), and the broker's two HELLO steps against a client built from auth.h (a good
 * proof stamped by name or as key:<text>, required mode, malformed fields). Built without
 * libsodium, it checks that any request for auth is refused at start.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

#include "auth.h"
#include "config.h"
#include "keyring.h"

typedef struct Fixture {
        char dir[64];
        char key[96], keyring[96];
        VbusAuthKey broker, alice, mallory;
        char alice_text[VBUS_AUTH_KEY_TEXT_SIZE];
} Fixture;

static void write_text(const char *path, const char *text, mode_t mode)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        assert_int_equal(close(fd), 0);
        assert_int_equal(chmod(path, mode), 0);
}

static int setup(void **state)
{
        Fixture *f = calloc(1, sizeof(*f));
        char pub[128];

        assert_non_null(f);
        (void)snprintf(f->dir, sizeof(f->dir), "/tmp/test-keyring-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        (void)snprintf(f->key, sizeof(f->key), "%s/broker", f->dir);
        (void)snprintf(f->keyring, sizeof(f->keyring), "%s/keyring", f->dir);
        if (vbus__auth_is_available()) {
                (void)snprintf(pub, sizeof(pub), "%s/broker.pub", f->dir);
                assert_int_equal(vbus__auth_key_generate(&f->broker), 0);
                assert_int_equal(vbus__auth_key_save(&f->broker, f->key, pub), 0);
                assert_int_equal(vbus__auth_key_generate(&f->alice), 0);
                assert_int_equal(vbus__auth_key_generate(&f->mallory), 0);
                assert_int_equal(vbus__auth_key_to_text(f->alice.public_key, f->alice_text), 0);
        }
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        Fixture *f = *state;
        struct dirent *e;
        DIR *d = opendir(f->dir);
        char path[sizeof(f->dir) + 256 + 2];

        assert_non_null(d);
        while ((e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                (void)snprintf(path, sizeof(path), "%s/%s", f->dir, e->d_name);
                assert_int_equal(unlink(path), 0);
        }
        assert_int_equal(closedir(d), 0);
        assert_int_equal(rmdir(f->dir), 0);
        free(f);
        return 0;
}

/* @tmpl with each '%' replaced by @key, into @out. */
static void expand(const char *tmpl, const char *key, char *out, size_t n)
{
        size_t o = 0, k = strlen(key);

        for (; *tmpl; tmpl++) {
                assert_true(o + k + 1 < n);
                if (*tmpl == '%') {
                        memcpy(out + o, key, k);
                        o += k;
                } else {
                        out[o++] = *tmpl;
                }
        }
        out[o] = '\0';
}

/* Parses @text as vchand.conf over the defaults; returns config_parse()'s result. */
static int parse(BrokerConfig *c, const char *text, char *err, size_t n_err)
{
        config_defaults(c);
        return config_parse(c, text, strlen(text), err, n_err);
}

/* keyring_new() on @text; on -EINVAL, @err holds the message. */
static int load(const char *text, Keyring **ret, char *err, size_t n_err)
{
        BrokerConfig c;

        assert_int_equal(parse(&c, text, err, n_err), 0);
        return keyring_new(&c, ret, err, n_err);
}

/* Built without libsodium: a keyring is refused at start, whatever it holds. */
static void assert_auth_refused(void)
{
        Keyring *k = NULL;
        char err[512];

        assert_int_equal(load("auth_keyring = /nonexistent\n", &k, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "built without it"));
        assert_null(k);
}

static void test_config_auth_keys(void **state)
{
        BrokerConfig c;
        char err[256];

        (void)state;
        assert_int_equal(
                parse(&c, "auth = required\nauth_key = /a\nauth_keyring = /b\n", err, sizeof(err)),
                0);
        assert_int_equal(c.auth, CONFIG_AUTH_REQUIRED);
        assert_string_equal(c.auth_key, "/a");
        assert_string_equal(c.auth_keyring, "/b");
        assert_int_equal(parse(&c, "auth = sometimes\n", err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "line 1: auth wants off, optional or required");
        assert_int_equal(parse(&c, "xen = no\nauth_key = relative/path\n", err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "line 2: auth_key must be an absolute path"));
        /* Blank and comment lines count: the error names the line an editor shows. */
        assert_int_equal(
                parse(&c, "\n# a comment\n\nxen = no\n\n\nauth = maybe\n", err, sizeof(err)),
                -EINVAL);
        assert_string_equal(err, "line 7: auth wants off, optional or required");
        assert_int_equal(parse(&c, "\r\n\nnot a pair\n", err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "line 3: expected key = value");
        /* A NUL byte does not silently end the file. */
        config_defaults(&c);
        assert_int_equal(config_parse(&c, "xen = no\n\0auth = off\n", 20, err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "NUL"));
}

static void test_keyring_without_auth_refused(void **state)
{
        Fixture *f = *state;
        Keyring *k = NULL;
        char err[512], text[256];

        if (vbus__auth_is_available()) {
                /* auth = required without a keyring; off with a key. */
                assert_int_equal(load("auth = required\n", &k, err, sizeof(err)), -EINVAL);
                assert_non_null(strstr(err, "needs auth_keyring"));
                (void)snprintf(text, sizeof(text), "auth = off\nauth_key = %s\n", f->key);
                assert_int_equal(load(text, &k, err, sizeof(err)), -EINVAL);
                /* Nothing said: optional, no key, empty keyring. */
                assert_int_equal(load("", &k, err, sizeof(err)), 0);
                assert_int_equal(k->mode, CONFIG_AUTH_OPTIONAL);
                assert_false(k->has_key);
                keyring_free(k);
                return;
        }
        assert_int_equal(load("auth = optional\n", &k, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "built without it"));
        assert_int_equal(load("", &k, err, sizeof(err)), 0);
        assert_int_equal(k->mode, CONFIG_AUTH_OFF);
        keyring_free(k);
}

/* The keyring file: good entries with comments and blank lines, then each error at its line. */
static void test_keyring_file(void **state)
{
        Fixture *f = *state;
        Keyring *k = NULL;
        char conf[256], text[512], err[512], mallory[VBUS_AUTH_KEY_TEXT_SIZE];

        if (!vbus__auth_is_available()) {
                assert_auth_refused();
                return;
        }
        assert_int_equal(vbus__auth_key_to_text(f->mallory.public_key, mallory), 0);
        (void)snprintf(conf, sizeof(conf), "auth_key = %s\nauth_keyring = %s\n", f->key,
                       f->keyring);
        (void)snprintf(text, sizeof(text), "# keys\n\n  alice %s  \nmallory.x@y-z\t%s\n",
                       f->alice_text, mallory);
        write_text(f->keyring, text, 0644);
        assert_int_equal(load(conf, &k, err, sizeof(err)), 0);
        assert_true(k->has_key);
        assert_int_equal(k->n_entries, 2);
        assert_string_equal(keyring_find(k, f->alice.public_key), "alice");
        assert_string_equal(keyring_find(k, f->mallory.public_key), "mallory.x@y-z");
        assert_null(keyring_find(k, f->broker.public_key));
        k = keyring_free(k);

        /* Each error names its line. */
        struct {
                const char *tmpl, *want; /* '%' stands for alice's key */
        } bad[] = {
                {"# c\nbad:name %\n", "keyring:2: a name is 1..64"},
                {"alice\n", "keyring:1: expected NAME KEY"},
                {"\n\nalice % extra\n", "keyring:3: expected NAME KEY"},
                {"alice %\nbob %\n", "keyring:2: this key is listed twice"},
                {"alice %x\n", "keyring:1: expected NAME KEY"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                expand(bad[i].tmpl, f->alice_text, text, sizeof(text));
                write_text(f->keyring, text, 0644);
                assert_int_equal(load(conf, &k, err, sizeof(err)), -EINVAL);
                if (!strstr(err, bad[i].want))
                        fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].want);
        }
        (void)snprintf(text, sizeof(text), "alice %s\nalice %s\n", f->alice_text, mallory);
        write_text(f->keyring, text, 0644);
        assert_int_equal(load(conf, &k, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "keyring:2: this name is listed twice"));

        /* Writable by others; a secret key readable by the group. */
        (void)snprintf(text, sizeof(text), "alice %s\n", f->alice_text);
        write_text(f->keyring, text, 0646);
        assert_int_equal(load(conf, &k, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "writable by group or others"));
        assert_int_equal(chmod(f->keyring, 0644), 0);
        assert_int_equal(chmod(f->key, 0640), 0);
        assert_int_equal(load(conf, &k, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "readable by group or others"));
        assert_int_equal(chmod(f->key, 0600), 0);
}

/* What a client sends first: HELLO with AUTH and a nonce of @nonce_len bytes. */
static Vbus__V1__Hello client_hello(VbusAuthTranscript *c, size_t nonce_len)
{
        Vbus__V1__Hello h = VBUS__V1__HELLO__INIT;

        h.version_min = 1;
        h.version_max = 1;
        h.max_frame = 61440;
        h.features = VBUS_FEATURE_AUTH;
        assert_int_equal(vbus__auth_random(c->client_nonce, sizeof(c->client_nonce)), 0);
        h.auth_challenge.data = c->client_nonce;
        h.auth_challenge.len = nonce_len;
        c->client = (VbusAuthHelloFields){1, 1, VBUS_FEATURE_AUTH};
        return h;
}

static Vbus__V1__Hello broker_answer(void)
{
        Vbus__V1__Hello a = VBUS__V1__HELLO__INIT;

        a.version_min = 1;
        a.version_max = 1;
        a.version = 1;
        a.max_frame = 1048576;
        return a;
}

/*
 * The broker's two steps for a client with @key: returns keyring_check_proof()'s result, with
 * the stamped identity in @ident. @proof_len shortens the proof when below 96; @forge flips a
 * bit of the signature.
 */
static int handshake_forged(const Keyring *k, const VbusAuthKey *key, size_t proof_len, bool forge,
                            Identity *ident)
{
        VbusAuthTranscript client = {0}, broker_side = {0};
        Vbus__V1__Hello h = client_hello(&client, VBUS_AUTH_NONCE_SIZE), a = broker_answer(),
                        proof_hello = VBUS__V1__HELLO__INIT;
        uint8_t bproof[VBUS_AUTH_PROOF_SIZE], cproof[VBUS_AUTH_PROOF_SIZE];
        const char *why = NULL;

        assert_int_equal(keyring_answer_hello(k, &h, &a, &broker_side, bproof, &why), 0);
        assert_true(a.features & VBUS_FEATURE_AUTH);
        assert_int_equal(a.auth_challenge.len, VBUS_AUTH_NONCE_SIZE);
        /* The client checks the broker's proof as libvbus does, then proves its key. */
        client.version = a.version;
        memcpy(client.broker_nonce, a.auth_challenge.data, VBUS_AUTH_NONCE_SIZE);
        client.broker = (VbusAuthHelloFields){a.version_min, a.version_max, a.features};
        if (k->has_key) {
                assert_int_equal(a.auth_proof.len, VBUS_AUTH_PROOF_SIZE);
                assert_int_equal(vbus__auth_verify(&client, VBUS_AUTH_ROLE_BROKER,
                                                   a.auth_proof.data, a.auth_proof.len),
                                 0);
                assert_memory_equal(client.broker_key, k->key.public_key,
                                    VBUS_AUTH_PUBLIC_KEY_SIZE);
        } else {
                assert_int_equal(a.auth_proof.len, 0);
        }
        memcpy(client.client_key, key->public_key, VBUS_AUTH_PUBLIC_KEY_SIZE);
        assert_int_equal(vbus__auth_prove(&client, VBUS_AUTH_ROLE_CLIENT, key, cproof), 0);
        if (forge)
                cproof[VBUS_AUTH_PUBLIC_KEY_SIZE + 9] ^= 0x10;
        proof_hello.version = 1;
        proof_hello.auth_proof.data = cproof;
        proof_hello.auth_proof.len = proof_len;
        *ident = (Identity){0};
        return keyring_check_proof(k, &broker_side, &proof_hello, ident, &why);
}

static int handshake(const Keyring *k, const VbusAuthKey *key, size_t proof_len, Identity *ident)
{
        return handshake_forged(k, key, proof_len, false, ident);
}

static void test_keyring_hello_steps(void **state)
{
        Fixture *f = *state;
        Keyring *k = NULL;
        Identity id;
        char conf[256], text[256], err[512], key[VBUS_AUTH_KEY_TEXT_SIZE];
        char want[VBUS_AUTH_KEY_TEXT_SIZE + 4];

        if (!vbus__auth_is_available()) {
                assert_auth_refused();
                return;
        }
        (void)snprintf(text, sizeof(text), "alice %s\n", f->alice_text);
        write_text(f->keyring, text, 0644);
        (void)snprintf(conf, sizeof(conf), "auth_key = %s\nauth_keyring = %s\n", f->key,
                       f->keyring);
        assert_int_equal(load(conf, &k, err, sizeof(err)), 0);

        assert_int_equal(handshake(k, &f->alice, VBUS_AUTH_PROOF_SIZE, &id), 0);
        assert_true(id.has_key);
        assert_string_equal(id.key_name, "alice");
        assert_memory_equal(id.key, f->alice.public_key, VBUS_AUTH_PUBLIC_KEY_SIZE);
        /* Unlisted: stamped as key:<text>. */
        assert_int_equal(handshake(k, &f->mallory, VBUS_AUTH_PROOF_SIZE, &id), 0);
        assert_int_equal(vbus__auth_key_to_text(f->mallory.public_key, key), 0);
        (void)snprintf(want, sizeof(want), "key:%s", key);
        assert_string_equal(id.key_name, want);
        /* Forged (optional mode, where any key may be stamped): refused, nothing stamped. */
        assert_int_equal(handshake_forged(k, &f->mallory, VBUS_AUTH_PROOF_SIZE, true, &id),
                         KEYRING_DENIED);
        assert_false(id.has_key);
        /* Truncated: malformed, nothing stamped. */
        assert_int_equal(handshake(k, &f->alice, VBUS_AUTH_PROOF_SIZE - 1, &id), KEYRING_MALFORMED);
        assert_false(id.has_key);
        k = keyring_free(k);

        /* Required: an unlisted key is refused; alice is not. */
        (void)snprintf(conf, sizeof(conf), "auth = required\nauth_keyring = %s\n", f->keyring);
        assert_int_equal(load(conf, &k, err, sizeof(err)), 0);
        assert_int_equal(handshake(k, &f->mallory, VBUS_AUTH_PROOF_SIZE, &id), KEYRING_DENIED);
        assert_false(id.has_key);
        assert_int_equal(handshake(k, &f->alice, VBUS_AUTH_PROOF_SIZE, &id), 0);
        assert_string_equal(id.key_name, "alice");
        k = keyring_free(k);
}

/* A client HELLO that does not offer auth, or offers it wrong. */
static void test_keyring_hello_refusals(void **state)
{
        Fixture *f = *state;
        VbusAuthTranscript c = {0}, t = {0};
        Vbus__V1__Hello h, a, proof = VBUS__V1__HELLO__INIT;
        uint8_t buf[VBUS_AUTH_PROOF_SIZE] = {0};
        const char *why = NULL;
        Identity id = {0};
        Keyring *k = NULL;
        char conf[256], text[256], err[512];

        if (!vbus__auth_is_available()) {
                assert_auth_refused();
                return;
        }
        (void)snprintf(text, sizeof(text), "alice %s\n", f->alice_text);
        write_text(f->keyring, text, 0644);
        (void)snprintf(conf, sizeof(conf), "auth = required\nauth_keyring = %s\n", f->keyring);
        assert_int_equal(load(conf, &k, err, sizeof(err)), 0);
        /* Required, and the client offers no auth. */
        h = client_hello(&c, VBUS_AUTH_NONCE_SIZE);
        h.features = 0;
        a = broker_answer();
        assert_int_equal(keyring_answer_hello(k, &h, &a, &t, buf, &why), KEYRING_DENIED);
        assert_non_null(strstr(why, "requires channel auth"));
        /* A short nonce. */
        h = client_hello(&c, 31);
        a = broker_answer();
        assert_int_equal(keyring_answer_hello(k, &h, &a, &t, buf, &why), KEYRING_MALFORMED);
        /* A proof HELLO carrying a challenge too. */
        h = client_hello(&c, VBUS_AUTH_NONCE_SIZE);
        a = broker_answer();
        assert_int_equal(keyring_answer_hello(k, &h, &a, &t, buf, &why), 0);
        proof.auth_challenge.data = buf;
        proof.auth_challenge.len = 32;
        proof.auth_proof.data = buf;
        proof.auth_proof.len = sizeof(buf);
        assert_int_equal(keyring_check_proof(k, &t, &proof, &id, &why), KEYRING_MALFORMED);
        /* All zero: does not verify. */
        proof.auth_challenge.len = 0;
        assert_int_equal(keyring_check_proof(k, &t, &proof, &id, &why), KEYRING_DENIED);
        assert_false(id.has_key);
        keyring_free(k);

        /* Optional and no keyring: a client without auth is fine, and gets no AUTH back. */
        assert_int_equal(load("", &k, err, sizeof(err)), 0);
        h = client_hello(&c, VBUS_AUTH_NONCE_SIZE);
        h.features = 0;
        a = broker_answer();
        assert_int_equal(keyring_answer_hello(k, &h, &a, &t, buf, &why), 0);
        assert_false(a.features & VBUS_FEATURE_AUTH);
        keyring_free(k);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config_auth_keys),
                cmocka_unit_test_setup_teardown(test_keyring_without_auth_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_keyring_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_keyring_hello_steps, setup, teardown),
                cmocka_unit_test_setup_teardown(test_keyring_hello_refusals, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
