/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of libbus/wire/auth.c: the transcript against the test vector of docs/protocol.md
 * 3.1 (byte for byte, and its signatures), proofs that must be refused (wrong key, replayed
 * challenge, another session, the other role, truncated or padded), key text and key files.
 * Built without libsodium, the transcript is still checked and every key function must say
 * -ENOTSUP.
 */
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

/* --- the test vector of docs/protocol.md 3.1 --------------------------------------------- */

static const char client_key_text[] = "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=";
static const char broker_key_text[] = "AgvUJ0RrcjQk2A0srTUro982SdDvj6rgyn6yVEOUGyk=";

static const uint8_t broker_transcript[VBUS_AUTH_TRANSCRIPT_SIZE] = {
        0x76, 0x62, 0x75, 0x73, 0x20, 0x63, 0x68, 0x61, 0x6e, 0x6e, 0x65, 0x6c, 0x20, 0x61,
        0x75, 0x74, 0x68, 0x20, 0x76, 0x31, 0x3a, 0x20, 0x62, 0x72, 0x6f, 0x6b, 0x65, 0x72,
        0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
        0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23,
        0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x40, 0x41,
        0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f,
        0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d,
        0x5e, 0x5f, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x0b, 0xd4, 0x27, 0x44, 0x6b, 0x72, 0x34,
        0x24, 0xd8, 0x0d, 0x2c, 0xad, 0x35, 0x2b, 0xa3, 0xdf, 0x36, 0x49, 0xd0, 0xef, 0x8f,
        0xaa, 0xe0, 0xca, 0x7e, 0xb2, 0x54, 0x43, 0x94, 0x1b, 0x29, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

/* The client's transcript differs in the context ("client") and in its last 32 bytes. */
static const uint8_t client_key_bytes[VBUS_AUTH_PUBLIC_KEY_SIZE] = {
        0x79, 0xb5, 0x56, 0x2e, 0x8f, 0xe6, 0x54, 0xf9, 0x40, 0x78, 0xb1,
        0x12, 0xe8, 0xa9, 0x8b, 0xa7, 0x90, 0x1f, 0x85, 0x3a, 0xe6, 0x95,
        0xbe, 0xd7, 0xe0, 0xe3, 0x91, 0x0b, 0xad, 0x04, 0x96, 0x64,
};

static const uint8_t broker_signature[VBUS_AUTH_SIGNATURE_SIZE] = {
        0x63, 0x06, 0x80, 0xeb, 0x4e, 0xfc, 0x18, 0xe3, 0xd3, 0xcf, 0x29, 0x53, 0x77,
        0x9c, 0x62, 0xdd, 0x8a, 0x84, 0xf9, 0xac, 0xa1, 0x2b, 0x1c, 0x3f, 0xd4, 0x16,
        0x62, 0x2e, 0x0b, 0x3a, 0xe8, 0x7d, 0x1e, 0x79, 0x51, 0x1a, 0x50, 0x3c, 0xde,
        0x23, 0x05, 0xf7, 0x73, 0x1a, 0x2f, 0x1a, 0x78, 0xae, 0x09, 0xd5, 0xdd, 0xb4,
        0x8e, 0x7c, 0xbb, 0x12, 0x75, 0x25, 0xda, 0x29, 0x74, 0xa9, 0x3b, 0x0f,
};

static const uint8_t client_signature[VBUS_AUTH_SIGNATURE_SIZE] = {
        0xbf, 0x96, 0x0c, 0x6e, 0x37, 0x34, 0x5f, 0xe8, 0x7b, 0x33, 0x74, 0xa1, 0x54,
        0x15, 0xe8, 0x14, 0x35, 0xb1, 0xf0, 0xc9, 0x5b, 0xa9, 0x19, 0xe4, 0xbd, 0x82,
        0x49, 0xf2, 0x05, 0x5c, 0x2c, 0x3d, 0xa8, 0x1e, 0x66, 0xc9, 0x3e, 0xf3, 0xd4,
        0x01, 0x48, 0x1c, 0x0b, 0x76, 0x82, 0xa4, 0x94, 0x8e, 0xd4, 0xd9, 0xc6, 0xf1,
        0x83, 0xef, 0xb3, 0x6e, 0x0d, 0x5d, 0x25, 0x49, 0xe3, 0x92, 0xe6, 0x06,
};

/* The vector's secret seeds: 0x01..0x20 (client), 0x81..0xa0 (broker). */
static void seed(uint8_t first, uint8_t ret[VBUS_AUTH_SEED_SIZE])
{
        for (int i = 0; i < VBUS_AUTH_SEED_SIZE; i++)
                ret[i] = (uint8_t)(first + i);
}

/* The vector's transcript, with the broker's key filled from the vector's bytes (so that the
 * transcript test needs no libsodium) and the client's key zero (as in the broker's proof). */
static VbusAuthTranscript vector_transcript(void)
{
        VbusAuthTranscript t = {.version = 1};

        for (int i = 0; i < VBUS_AUTH_NONCE_SIZE; i++) {
                t.client_nonce[i] = (uint8_t)(0x10 + i);
                t.broker_nonce[i] = (uint8_t)(0x40 + i);
        }
        t.client = (VbusAuthHelloFields){1, 1, VBUS_FEATURE_AUTH};
        t.broker = (VbusAuthHelloFields){1, 1, VBUS_FEATURE_AUTH};
        memcpy(t.broker_key, broker_transcript + 132, VBUS_AUTH_PUBLIC_KEY_SIZE);
        return t;
}

static bool have_auth(void)
{
        return vbus__auth_is_available();
}

/* Built without libsodium: what every proof and key function must answer. */
static void assert_no_auth(void)
{
        VbusAuthTranscript t = {0};
        VbusAuthKey key;
        uint8_t proof[VBUS_AUTH_PROOF_SIZE] = {0};

        assert_int_equal(vbus__auth_verify(&t, VBUS_AUTH_ROLE_CLIENT, proof, sizeof(proof)),
                         -ENOTSUP);
        assert_int_equal(vbus__auth_key_generate(&key), -ENOTSUP);
        assert_int_equal(vbus__auth_random(proof, sizeof(proof)), -ENOTSUP);
}

/* The vector's keys. Only with libsodium. */
static void vector_keys(VbusAuthKey *client, VbusAuthKey *broker)
{
        uint8_t s[VBUS_AUTH_SEED_SIZE];

        seed(0x01, s);
        assert_int_equal(vbus__auth_key_from_seed(s, client), 0);
        seed(0x81, s);
        assert_int_equal(vbus__auth_key_from_seed(s, broker), 0);
}

/* The vector's proofs, as a peer sends them. */
static void vector_proof(VbusAuthRole role, uint8_t ret[VBUS_AUTH_PROOF_SIZE])
{
        if (role == VBUS_AUTH_ROLE_BROKER) {
                memcpy(ret, broker_transcript + 132, VBUS_AUTH_PUBLIC_KEY_SIZE);
                memcpy(ret + VBUS_AUTH_PUBLIC_KEY_SIZE, broker_signature, VBUS_AUTH_SIGNATURE_SIZE);
        } else {
                memcpy(ret, client_key_bytes, VBUS_AUTH_PUBLIC_KEY_SIZE);
                memcpy(ret + VBUS_AUTH_PUBLIC_KEY_SIZE, client_signature, VBUS_AUTH_SIGNATURE_SIZE);
        }
}

/* --- the transcript and the vector ------------------------------------------------------- */

static void test_transcript_vector_bytes(void **state)
{
        VbusAuthTranscript t = vector_transcript();
        uint8_t out[VBUS_AUTH_TRANSCRIPT_SIZE], want[VBUS_AUTH_TRANSCRIPT_SIZE];

        (void)state;
        assert_int_equal(VBUS_AUTH_TRANSCRIPT_SIZE, 196);
        vbus__auth_transcript_encode(&t, VBUS_AUTH_ROLE_BROKER, out);
        assert_memory_equal(out, broker_transcript, sizeof(out));

        /* The client's: "client" in the context, its key in the last 32 bytes. */
        memcpy(t.client_key, client_key_bytes, sizeof(t.client_key));
        memcpy(want, broker_transcript, sizeof(want));
        memcpy(want + 22, "client", 6);
        memcpy(want + 164, client_key_bytes, sizeof(client_key_bytes));
        vbus__auth_transcript_encode(&t, VBUS_AUTH_ROLE_CLIENT, out);
        assert_memory_equal(out, want, sizeof(out));
}

static void test_prove_vector_signatures(void **state)
{
        VbusAuthTranscript t = vector_transcript();
        VbusAuthKey client, broker;
        uint8_t proof[VBUS_AUTH_PROOF_SIZE], want[VBUS_AUTH_PROOF_SIZE];
        char text[VBUS_AUTH_KEY_TEXT_SIZE];

        (void)state;
        if (!have_auth()) {
                assert_int_equal(vbus__auth_key_from_seed(t.client_nonce, &client), -ENOTSUP);
                assert_int_equal(vbus__auth_prove(&t, VBUS_AUTH_ROLE_BROKER, &client, proof),
                                 -ENOTSUP);
                return;
        }
        vector_keys(&client, &broker);
        assert_memory_equal(broker.public_key, t.broker_key, VBUS_AUTH_PUBLIC_KEY_SIZE);
        assert_memory_equal(client.public_key, client_key_bytes, VBUS_AUTH_PUBLIC_KEY_SIZE);
        assert_int_equal(vbus__auth_key_to_text(client.public_key, text), 0);
        assert_string_equal(text, client_key_text);
        assert_int_equal(vbus__auth_key_to_text(broker.public_key, text), 0);
        assert_string_equal(text, broker_key_text);

        assert_int_equal(vbus__auth_prove(&t, VBUS_AUTH_ROLE_BROKER, &broker, proof), 0);
        vector_proof(VBUS_AUTH_ROLE_BROKER, want);
        assert_memory_equal(proof, want, sizeof(proof));

        memcpy(t.client_key, client.public_key, sizeof(t.client_key));
        assert_int_equal(vbus__auth_prove(&t, VBUS_AUTH_ROLE_CLIENT, &client, proof), 0);
        vector_proof(VBUS_AUTH_ROLE_CLIENT, want);
        assert_memory_equal(proof, want, sizeof(proof));

        /* The signer's field must name the signing key: it is part of what is signed. */
        assert_int_equal(vbus__auth_prove(&t, VBUS_AUTH_ROLE_CLIENT, &broker, proof), -EINVAL);
        vbus__auth_key_wipe(&client);
        vbus__auth_key_wipe(&broker);
}

/* --- verification ------------------------------------------------------------------------ */

static void test_verify_good(void **state)
{
        VbusAuthTranscript t = vector_transcript();
        uint8_t proof[VBUS_AUTH_PROOF_SIZE];

        (void)state;
        vector_proof(VBUS_AUTH_ROLE_BROKER, proof);
        memset(t.broker_key, 0, sizeof(t.broker_key)); /* a client learns it from the proof */
        if (!have_auth()) {
                assert_int_equal(vbus__auth_verify(&t, VBUS_AUTH_ROLE_BROKER, proof, sizeof(proof)),
                                 -ENOTSUP);
                return;
        }
        assert_int_equal(vbus__auth_verify(&t, VBUS_AUTH_ROLE_BROKER, proof, sizeof(proof)), 0);
        assert_memory_equal(t.broker_key, proof, VBUS_AUTH_PUBLIC_KEY_SIZE);

        vector_proof(VBUS_AUTH_ROLE_CLIENT, proof);
        assert_int_equal(vbus__auth_verify(&t, VBUS_AUTH_ROLE_CLIENT, proof, sizeof(proof)), 0);
        assert_memory_equal(t.client_key, client_key_bytes, VBUS_AUTH_PUBLIC_KEY_SIZE);
}

/* A proof whose signature was made by another key than the one it names. */
static void test_verify_wrong_key(void **state)
{
        VbusAuthTranscript t = vector_transcript();
        VbusAuthKey client, broker, other;
        uint8_t proof[VBUS_AUTH_PROOF_SIZE];

        (void)state;
        if (!have_auth()) {
                assert_no_auth();
                return;
        }
        vector_keys(&client, &broker);
        assert_int_equal(vbus__auth_key_generate(&other), 0);
        /* The impostor signs with its own key but claims the client's. */
        memcpy(t.client_key, other.public_key, sizeof(t.client_key));
        assert_int_equal(vbus__auth_prove(&t, VBUS_AUTH_ROLE_CLIENT, &other, proof), 0);
        memcpy(proof, client.public_key, VBUS_AUTH_PUBLIC_KEY_SIZE);
        assert_int_equal(vbus__auth_verify(&t, VBUS_AUTH_ROLE_CLIENT, proof, sizeof(proof)),
                         -EACCES);
        assert_false(vbus__auth_key_is_set(t.client_key));

        /* A bit flipped anywhere in the signature. */
        vector_proof(VBUS_AUTH_ROLE_CLIENT, proof);
        proof[VBUS_AUTH_PUBLIC_KEY_SIZE + 17] ^= 0x08;
        assert_int_equal(vbus__auth_verify(&t, VBUS_AUTH_ROLE_CLIENT, proof, sizeof(proof)),
                         -EACCES);
        vbus__auth_key_wipe(&other);
}

/* The client's proof of the vector, recorded and replayed on a link whose broker chose a
 * different nonce (or session, or negotiated other fields): refused. */
static void test_verify_replayed_challenge(void **state)
{
        VbusAuthTranscript t;
        uint8_t proof[VBUS_AUTH_PROOF_SIZE];

        (void)state;
        if (!have_auth()) {
                assert_no_auth();
                return;
        }
        vector_proof(VBUS_AUTH_ROLE_CLIENT, proof);

        t = vector_transcript();
        t.broker_nonce[31] ^= 1;
        assert_int_equal(vbus__auth_verify(&t, VBUS_AUTH_ROLE_CLIENT, proof, sizeof(proof)),
                         -EACCES);

        t = vector_transcript();
        t.client_nonce[0] ^= 0x80;
        assert_int_equal(vbus__auth_verify(&t, VBUS_AUTH_ROLE_CLIENT, proof, sizeof(proof)),
                         -EACCES);

        /* Another version or feature set negotiated. */
        t = vector_transcript();
        t.version = 2;
        assert_int_equal(vbus__auth_verify(&t, VBUS_AUTH_ROLE_CLIENT, proof, sizeof(proof)),
                         -EACCES);

        t = vector_transcript();
        t.broker.features |= 1u << 1;
        assert_int_equal(vbus__auth_verify(&t, VBUS_AUTH_ROLE_CLIENT, proof, sizeof(proof)),
                         -EACCES);

        t = vector_transcript();
        t.client.version_max = 2;
        assert_int_equal(vbus__auth_verify(&t, VBUS_AUTH_ROLE_CLIENT, proof, sizeof(proof)),
                         -EACCES);

        /* Bound to the broker it was made for: another broker key in the transcript. */
        t = vector_transcript();
        t.broker_key[0] ^= 1;
        assert_int_equal(vbus__auth_verify(&t, VBUS_AUTH_ROLE_CLIENT, proof, sizeof(proof)),
                         -EACCES);
}

/* The broker's proof sent back as a client's (reflection), and the reverse. */
static void test_verify_reflected_role(void **state)
{
        VbusAuthTranscript t = vector_transcript();
        uint8_t proof[VBUS_AUTH_PROOF_SIZE];

        (void)state;
        if (!have_auth()) {
                assert_no_auth();
                return;
        }
        vector_proof(VBUS_AUTH_ROLE_BROKER, proof);
        assert_int_equal(vbus__auth_verify(&t, VBUS_AUTH_ROLE_CLIENT, proof, sizeof(proof)),
                         -EACCES);
        vector_proof(VBUS_AUTH_ROLE_CLIENT, proof);
        memcpy(t.client_key, client_key_bytes, sizeof(t.client_key));
        assert_int_equal(vbus__auth_verify(&t, VBUS_AUTH_ROLE_BROKER, proof, sizeof(proof)),
                         -EACCES);
}

static void test_verify_bad_lengths(void **state)
{
        VbusAuthTranscript t = vector_transcript();
        uint8_t proof[VBUS_AUTH_PROOF_SIZE + 1] = {0};

        (void)state;
        if (!have_auth()) {
                assert_no_auth();
                return;
        }
        vector_proof(VBUS_AUTH_ROLE_BROKER, proof);
        /* Truncated by one byte, by the whole signature, empty; padded by one byte. */
        assert_int_equal(vbus__auth_verify(&t, VBUS_AUTH_ROLE_BROKER, proof, 95), -EBADMSG);
        assert_int_equal(vbus__auth_verify(&t, VBUS_AUTH_ROLE_BROKER, proof, 32), -EBADMSG);
        assert_int_equal(vbus__auth_verify(&t, VBUS_AUTH_ROLE_BROKER, proof, 0), -EBADMSG);
        assert_int_equal(vbus__auth_verify(&t, VBUS_AUTH_ROLE_BROKER, NULL, 0), -EBADMSG);
        assert_int_equal(vbus__auth_verify(&t, VBUS_AUTH_ROLE_BROKER, proof, 97), -EBADMSG);
        assert_false(vbus__auth_key_is_set(t.broker_key));
        /* Right length, all zero: the zero key is a small-order point, refused as not verifying. */
        memset(proof, 0, sizeof(proof));
        assert_int_equal(vbus__auth_verify(&t, VBUS_AUTH_ROLE_BROKER, proof, 96), -EACCES);
}

/* --- keys in text and in files ----------------------------------------------------------- */

static void test_key_text(void **state)
{
        uint8_t key[VBUS_AUTH_PUBLIC_KEY_SIZE];
        char text[VBUS_AUTH_KEY_TEXT_SIZE], bad[VBUS_AUTH_KEY_TEXT_SIZE + 2];

        (void)state;
        if (!have_auth()) {
                assert_int_equal(vbus__auth_key_from_text(client_key_text, 44, key), -ENOTSUP);
                return;
        }
        assert_int_equal(vbus__auth_key_from_text(client_key_text, 44, key), 0);
        assert_memory_equal(key, client_key_bytes, sizeof(key));
        assert_int_equal(vbus__auth_key_to_text(key, text), 0);
        assert_string_equal(text, client_key_text);

        /* Without its padding, with one '=' too many, cut short. */
        assert_int_equal(vbus__auth_key_from_text(client_key_text, 43, key), -EINVAL);
        (void)snprintf(bad, sizeof(bad), "%s=", client_key_text);
        assert_int_equal(vbus__auth_key_from_text(bad, 45, key), -EINVAL);
        assert_int_equal(vbus__auth_key_from_text("", 0, key), -EINVAL);
        /* The URL-safe alphabet's '_' for '/' (the vector's text has a '/' at index 6). */
        (void)snprintf(bad, sizeof(bad), "%s", client_key_text);
        assert_int_equal(bad[6], '/');
        bad[6] = '_';
        assert_int_equal(vbus__auth_key_from_text(bad, 44, key), -EINVAL);
        /* A NUL inside; a '=' inside. */
        (void)snprintf(bad, sizeof(bad), "%s", client_key_text);
        bad[10] = '\0';
        assert_int_equal(vbus__auth_key_from_text(bad, 44, key), -EINVAL);
        bad[10] = '=';
        assert_int_equal(vbus__auth_key_from_text(bad, 44, key), -EINVAL);
        /* The 43rd character carries 2 unused bits that must be zero ('Q' = 010000 in the
         * vector's text; 'R' sets one of them): one key, one text. */
        (void)snprintf(bad, sizeof(bad), "%s", client_key_text);
        assert_int_equal(bad[42], 'Q');
        bad[42] = 'R';
        assert_int_equal(vbus__auth_key_from_text(bad, 44, key), -EINVAL);
}

static void test_key_file(void **state)
{
        char dir[] = "/tmp/test-auth-XXXXXX", path[128], pub[128], text[256];
        VbusAuthKey key, loaded;
        struct stat st;
        ssize_t n;
        int fd;

        (void)state;
        assert_non_null(mkdtemp(dir));
        (void)snprintf(path, sizeof(path), "%s/k", dir);
        (void)snprintf(pub, sizeof(pub), "%s/k.pub", dir);
        if (!have_auth()) {
                assert_int_equal(vbus__auth_key_load(path, &loaded), -ENOTSUP);
                assert_int_equal(rmdir(dir), 0);
                return;
        }
        assert_int_equal(vbus__auth_key_generate(&key), 0);
        assert_int_equal(vbus__auth_key_save(&key, path, pub), 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(stat(pub, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0644);
        assert_int_equal(vbus__auth_key_load(path, &loaded), 0);
        assert_memory_equal(&loaded, &key, sizeof(key));

        /* The public file is the key's text and a newline. */
        fd = open(pub, O_RDONLY);
        assert_true(fd >= 0);
        n = read(fd, text, sizeof(text) - 1);
        close(fd);
        assert_int_equal(n, 45);
        text[n] = '\0';
        assert_int_equal(vbus__auth_key_from_text(text, 44, loaded.public_key), 0);
        assert_memory_equal(loaded.public_key, key.public_key, VBUS_AUTH_PUBLIC_KEY_SIZE);

        /* Never overwritten. */
        assert_int_equal(vbus__auth_key_save(&key, path, pub), -EEXIST);
        /* Readable by others: refused. */
        assert_int_equal(chmod(path, 0640), 0);
        assert_int_equal(vbus__auth_key_load(path, &loaded), -EPERM);
        assert_int_equal(chmod(path, 0604), 0);
        assert_int_equal(vbus__auth_key_load(path, &loaded), -EPERM);
        assert_int_equal(chmod(path, 0400), 0);
        assert_int_equal(vbus__auth_key_load(path, &loaded), 0);
        /* A directory, a missing file, a public key given as a secret one. */
        assert_int_equal(vbus__auth_key_load(dir, &loaded), -EPERM);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(vbus__auth_key_load(path, &loaded), -ENOENT);
        assert_int_equal(chmod(pub, 0600), 0);
        assert_int_equal(vbus__auth_key_load(pub, &loaded), -EBADMSG);
        assert_int_equal(unlink(pub), 0);
        assert_int_equal(rmdir(dir), 0);
        vbus__auth_key_wipe(&key);
        vbus__auth_key_wipe(&loaded);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_transcript_vector_bytes),
                cmocka_unit_test(test_prove_vector_signatures),
                cmocka_unit_test(test_verify_good),
                cmocka_unit_test(test_verify_wrong_key),
                cmocka_unit_test(test_verify_replayed_challenge),
                cmocka_unit_test(test_verify_reflected_role),
                cmocka_unit_test(test_verify_bad_lengths),
                cmocka_unit_test(test_key_text),
                cmocka_unit_test(test_key_file),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
