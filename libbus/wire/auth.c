/* SPDX-License-Identifier: MIT */
/*
 * auth: keys, transcripts and proofs of channel auth (see auth.h). The only file of the tree
 * that calls libsodium; without it (no VBUS_HAVE_AUTH) the key and proof functions return
 * -ENOTSUP.
 */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef VBUS_HAVE_AUTH
#include <sodium.h>
#endif

/* The context strings, one per role (NUL-padded to VBUS_AUTH_CONTEXT_SIZE in the transcript). */
static const char context_client[] = "vbus channel auth v1: client";
static const char context_broker[] = "vbus channel auth v1: broker";

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                *p++ = (uint8_t)(v >> (8 * i));
        return p;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
        for (int i = 0; i < 8; i++)
                *p++ = (uint8_t)(v >> (8 * i));
        return p;
}

static uint8_t *put_bytes(uint8_t *p, const uint8_t *src, size_t n)
{
        memcpy(p, src, n);
        return p + n;
}

static uint8_t *put_hello(uint8_t *p, const VbusAuthHelloFields *h)
{
        p = put_u32(p, h->version_min);
        p = put_u32(p, h->version_max);
        return put_u64(p, h->features);
}

void vbus__auth_transcript_encode(const VbusAuthTranscript *t, VbusAuthRole role,
                                  uint8_t ret_bytes[VBUS_AUTH_TRANSCRIPT_SIZE])
{
        const char *ctx = role == VBUS_AUTH_ROLE_CLIENT ? context_client : context_broker;
        uint8_t *p = ret_bytes;

        _Static_assert(sizeof(context_client) <= VBUS_AUTH_CONTEXT_SIZE, "context too long");
        _Static_assert(sizeof(context_broker) <= VBUS_AUTH_CONTEXT_SIZE, "context too long");
        /* The context's characters, NUL-padded: not a C string once in the transcript. */
        memset(p, 0, VBUS_AUTH_CONTEXT_SIZE);
        for (size_t i = 0; ctx[i]; i++)
                p[i] = (uint8_t)ctx[i];
        p += VBUS_AUTH_CONTEXT_SIZE;
        p = put_u32(p, t->version);
        p = put_bytes(p, t->client_nonce, sizeof(t->client_nonce));
        p = put_bytes(p, t->broker_nonce, sizeof(t->broker_nonce));
        p = put_hello(p, &t->client);
        p = put_hello(p, &t->broker);
        p = put_bytes(p, t->broker_key, sizeof(t->broker_key));
        p = put_bytes(p, t->client_key, sizeof(t->client_key));
        (void)p; /* p == ret_bytes + VBUS_AUTH_TRANSCRIPT_SIZE: the layout above, field by field */
}

bool vbus__auth_key_is_set(const uint8_t key[VBUS_AUTH_PUBLIC_KEY_SIZE])
{
        uint8_t any = 0;

        for (size_t i = 0; i < VBUS_AUTH_PUBLIC_KEY_SIZE; i++)
                any |= key[i];
        return any != 0;
}

static uint8_t *signer_key(VbusAuthTranscript *t, VbusAuthRole role)
{
        return role == VBUS_AUTH_ROLE_CLIENT ? t->client_key : t->broker_key;
}

#ifdef VBUS_HAVE_AUTH

/* The first word of a secret key file's one line. */
static const char secret_tag[] = "vbus-ed25519-secret ";

/* sodium_init() is idempotent and thread-safe; it fails only without a usable random source. */
static int auth_init(void)
{
        return sodium_init() < 0 ? -ENOTSUP : 0;
}

bool vbus__auth_is_available(void)
{
        return auth_init() == 0;
}

int vbus__auth_random(uint8_t *buf, size_t n)
{
        if (auth_init() < 0)
                return -ENOTSUP;
        randombytes_buf(buf, n);
        return 0;
}

int vbus__auth_prove(const VbusAuthTranscript *t, VbusAuthRole role, const VbusAuthKey *key,
                     uint8_t ret_proof[VBUS_AUTH_PROOF_SIZE])
{
        uint8_t msg[VBUS_AUTH_TRANSCRIPT_SIZE];
        const uint8_t *signer = role == VBUS_AUTH_ROLE_CLIENT ? t->client_key : t->broker_key;

        if (auth_init() < 0)
                return -ENOTSUP;
        if (memcmp(signer, key->public_key, VBUS_AUTH_PUBLIC_KEY_SIZE) != 0)
                return -EINVAL;
        vbus__auth_transcript_encode(t, role, msg);
        memcpy(ret_proof, key->public_key, VBUS_AUTH_PUBLIC_KEY_SIZE);
        if (crypto_sign_detached(ret_proof + VBUS_AUTH_PUBLIC_KEY_SIZE, NULL, msg, sizeof(msg),
                                 key->secret_key) != 0)
                return -EINVAL;
        return 0;
}

int vbus__auth_verify(VbusAuthTranscript *t, VbusAuthRole role, const uint8_t *proof, size_t len)
{
        uint8_t msg[VBUS_AUTH_TRANSCRIPT_SIZE];
        uint8_t *signer = signer_key(t, role);

        memset(signer, 0, VBUS_AUTH_PUBLIC_KEY_SIZE);
        if (auth_init() < 0)
                return -ENOTSUP;
        if (!proof || len != VBUS_AUTH_PROOF_SIZE)
                return -EBADMSG;
        memcpy(signer, proof, VBUS_AUTH_PUBLIC_KEY_SIZE);
        vbus__auth_transcript_encode(t, role, msg);
        /* libsodium refuses non-canonical signatures and small-order keys here. */
        if (crypto_sign_verify_detached(proof + VBUS_AUTH_PUBLIC_KEY_SIZE, msg, sizeof(msg),
                                        signer) != 0) {
                memset(signer, 0, VBUS_AUTH_PUBLIC_KEY_SIZE);
                return -EACCES;
        }
        return 0;
}

int vbus__auth_key_generate(VbusAuthKey *ret_key)
{
        if (auth_init() < 0)
                return -ENOTSUP;
        return crypto_sign_keypair(ret_key->public_key, ret_key->secret_key) == 0 ? 0 : -EINVAL;
}

int vbus__auth_key_from_seed(const uint8_t seed[VBUS_AUTH_SEED_SIZE], VbusAuthKey *ret_key)
{
        if (auth_init() < 0)
                return -ENOTSUP;
        return crypto_sign_seed_keypair(ret_key->public_key, ret_key->secret_key, seed) == 0
                       ? 0
                       : -EINVAL;
}

void vbus__auth_key_wipe(VbusAuthKey *key)
{
        sodium_memzero(key, sizeof(*key));
}

int vbus__auth_key_to_text(const uint8_t key[VBUS_AUTH_PUBLIC_KEY_SIZE],
                           char ret_text[VBUS_AUTH_KEY_TEXT_SIZE])
{
        if (auth_init() < 0)
                return -ENOTSUP;
        sodium_bin2base64(ret_text, VBUS_AUTH_KEY_TEXT_SIZE, key, VBUS_AUTH_PUBLIC_KEY_SIZE,
                          sodium_base64_VARIANT_ORIGINAL);
        return 0;
}

/* Exactly 43 characters of the base64 alphabet and one '=', decoding to 32 bytes (the 43rd
 * character's 2 unused bits must be zero: libsodium checks that, so every key has one text). */
static int b64_to_32(const char *text, size_t len, uint8_t ret[32])
{
        uint8_t out[32];
        size_t n = 0;
        const char *end = NULL;

        if (len != VBUS_AUTH_KEY_TEXT_SIZE - 1 || text[len - 1] != '=')
                return -EINVAL;
        for (size_t i = 0; i + 1 < len; i++) {
                char ch = text[i];

                if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                      (ch >= '0' && ch <= '9') || ch == '+' || ch == '/'))
                        return -EINVAL;
        }
        if (sodium_base642bin(out, sizeof(out), text, len, NULL, &n, &end,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            n != sizeof(out) || end != text + len)
                return -EINVAL;
        memcpy(ret, out, sizeof(out));
        sodium_memzero(out, sizeof(out));
        return 0;
}

int vbus__auth_key_from_text(const char *text, size_t len,
                             uint8_t ret_key[VBUS_AUTH_PUBLIC_KEY_SIZE])
{
        if (auth_init() < 0)
                return -ENOTSUP;
        return b64_to_32(text, len, ret_key);
}

int vbus__auth_key_load(const char *path, VbusAuthKey *ret_key)
{
        char buf[VBUS_AUTH_KEY_FILE_MAX];
        uint8_t seed[VBUS_AUTH_SEED_SIZE];
        size_t tag = sizeof(secret_tag) - 1, len;
        struct stat st;
        ssize_t n;
        int fd, r;

        if (auth_init() < 0)
                return -ENOTSUP;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 0077)) {
                close(fd);
                return -EPERM;
        }
        n = read(fd, buf, sizeof(buf));
        r = n < 0 ? -errno : 0;
        close(fd);
        if (r < 0)
                return r;
        len = (size_t)n;
        if (len > 0 && buf[len - 1] == '\n')
                len--;
        if (len >= sizeof(buf) - 1 || len < tag || memcmp(buf, secret_tag, tag) != 0 ||
            b64_to_32(buf + tag, len - tag, seed) < 0) {
                sodium_memzero(buf, sizeof(buf));
                return -EBADMSG;
        }
        sodium_memzero(buf, sizeof(buf));
        r = vbus__auth_key_from_seed(seed, ret_key);
        sodium_memzero(seed, sizeof(seed));
        return r;
}

/* Creates @path with @mode and writes @text to it; nothing is left behind on failure. */
static int write_new(const char *path, mode_t mode, const char *text)
{
        size_t len = strlen(text);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        int r = 0;

        if (fd < 0)
                return -errno;
        /* The umask may have taken bits away, never added any; fchmod makes the mode exact. */
        if (fchmod(fd, mode) < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) < 0)
                r = errno ? -errno : -EIO;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r < 0)
                (void)unlink(path);
        return r;
}

int vbus__auth_key_save(const VbusAuthKey *key, const char *path, const char *public_path)
{
        char secret[VBUS_AUTH_KEY_FILE_MAX], pub[VBUS_AUTH_KEY_TEXT_SIZE + 1];
        char seed_text[VBUS_AUTH_KEY_TEXT_SIZE];
        int r;

        if (auth_init() < 0)
                return -ENOTSUP;
        if (access(public_path, F_OK) == 0 || access(path, F_OK) == 0)
                return -EEXIST;
        sodium_bin2base64(seed_text, sizeof(seed_text), key->secret_key, VBUS_AUTH_SEED_SIZE,
                          sodium_base64_VARIANT_ORIGINAL);
        /* Both fit: a tag of 20 bytes and 44 characters; 44 characters and a newline. */
        (void)snprintf(secret, sizeof(secret), "%s%s\n", secret_tag, seed_text);
        sodium_memzero(seed_text, sizeof(seed_text));
        (void)vbus__auth_key_to_text(key->public_key, pub);
        (void)snprintf(pub + VBUS_AUTH_KEY_TEXT_SIZE - 1, 2, "\n");
        r = write_new(path, 0600, secret);
        sodium_memzero(secret, sizeof(secret));
        if (r < 0)
                return r;
        r = write_new(public_path, 0644, pub);
        if (r < 0)
                (void)unlink(path);
        return r;
}

#else /* !VBUS_HAVE_AUTH */

bool vbus__auth_is_available(void)
{
        return false;
}

int vbus__auth_random(uint8_t *buf, size_t n)
{
        (void)buf;
        (void)n;
        return -ENOTSUP;
}

int vbus__auth_prove(const VbusAuthTranscript *t, VbusAuthRole role, const VbusAuthKey *key,
                     uint8_t ret_proof[VBUS_AUTH_PROOF_SIZE])
{
        (void)t;
        (void)role;
        (void)key;
        (void)ret_proof;
        return -ENOTSUP;
}

int vbus__auth_verify(VbusAuthTranscript *t, VbusAuthRole role, const uint8_t *proof, size_t len)
{
        (void)proof;
        (void)len;
        memset(signer_key(t, role), 0, VBUS_AUTH_PUBLIC_KEY_SIZE);
        return -ENOTSUP;
}

int vbus__auth_key_generate(VbusAuthKey *ret_key)
{
        (void)ret_key;
        return -ENOTSUP;
}

int vbus__auth_key_from_seed(const uint8_t seed[VBUS_AUTH_SEED_SIZE], VbusAuthKey *ret_key)
{
        (void)seed;
        (void)ret_key;
        return -ENOTSUP;
}

void vbus__auth_key_wipe(VbusAuthKey *key)
{
        volatile uint8_t *p = (volatile uint8_t *)key;

        for (size_t i = 0; i < sizeof(*key); i++)
                p[i] = 0;
}

int vbus__auth_key_to_text(const uint8_t key[VBUS_AUTH_PUBLIC_KEY_SIZE],
                           char ret_text[VBUS_AUTH_KEY_TEXT_SIZE])
{
        (void)key;
        (void)ret_text;
        return -ENOTSUP;
}

int vbus__auth_key_from_text(const char *text, size_t len,
                             uint8_t ret_key[VBUS_AUTH_PUBLIC_KEY_SIZE])
{
        (void)text;
        (void)len;
        (void)ret_key;
        return -ENOTSUP;
}

int vbus__auth_key_load(const char *path, VbusAuthKey *ret_key)
{
        (void)path;
        (void)ret_key;
        return -ENOTSUP;
}

int vbus__auth_key_save(const VbusAuthKey *key, const char *path, const char *public_path)
{
        (void)key;
        (void)path;
        (void)public_path;
        return -ENOTSUP;
}

#endif /* VBUS_HAVE_AUTH */
