/* SPDX-License-Identifier: MIT */
/*
 * keyring: the broker's key, its keyring and the HELLO steps of channel auth (see keyring.h).
 *
 * The keyring file: one key per line, "NAME KEY" (NAME: 1..64 characters of [A-Za-z0-9_.@-];
 * KEY: a public key in text, auth.h), '#' starts a comment line, blank lines are fine. A name
 * or a key listed twice is an error, so that a key never has two names.
 */
#include "keyring.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Here and below, a message cut to @n_err is fine: hence (void)snprintf. */

static bool name_char_ok(char ch)
{
        return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
               ch == '_' || ch == '.' || ch == '@' || ch == '-';
}

static bool name_ok(const char *s, size_t len)
{
        if (len == 0 || len > LIMIT_KEY_NAME)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!name_char_ok(s[i]))
                        return false;
        return true;
}

/* Reads all of @path (at most @max bytes) into a NUL-terminated buffer, refusing a file that
 * is not regular or that group or others may write (anyone who can write it can add a key). */
static int read_keyring_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
        struct stat st;
        char *buf;
        size_t len = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 0022)) {
                close(fd);
                return -EPERM;
        }
        buf = malloc(max + 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        for (;;) {
                ssize_t n = read(fd, buf + len, max + 1 - len);

                if (n < 0) {
                        int r = -errno;

                        free(buf);
                        close(fd);
                        return r;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > max) {
                        free(buf);
                        close(fd);
                        return -EFBIG;
                }
        }
        close(fd);
        buf[len] = '\0';
        *ret = buf;
        *ret_len = len;
        return 0;
}

/* One line, "NAME KEY", trimmed. Return: 0 (entry written), 1 (blank or comment), -EINVAL. */
static int parse_line(char *ln, KeyringEntry *ret, const char **why)
{
        char *name, *key, *end;
        size_t n_name;

        while (*ln == ' ' || *ln == '\t')
                ln++;
        end = ln + strlen(ln);
        while (end > ln && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
                *--end = '\0';
        if (*ln == '\0' || *ln == '#')
                return 1;
        name = ln;
        n_name = strcspn(name, " \t");
        key = name + n_name;
        while (*key == ' ' || *key == '\t')
                key++;
        if (!name_ok(name, n_name)) {
                *why = "a name is 1..64 characters of [A-Za-z0-9_.@-]";
                return -EINVAL;
        }
        if (*key == '\0' || vbus__auth_key_from_text(key, strlen(key), ret->key) < 0) {
                *why = "expected NAME KEY, KEY a public key in text (44 characters, as "
                       "vbusctl keygen writes it)";
                return -EINVAL;
        }
        memcpy(ret->name, name, n_name);
        ret->name[n_name] = '\0';
        return 0;
}

static int keyring_add(Keyring *k, const KeyringEntry *e, const char **why)
{
        KeyringEntry *grown;

        for (size_t i = 0; i < k->n_entries; i++) {
                if (strcmp(k->entries[i].name, e->name) == 0) {
                        *why = "this name is listed twice";
                        return -EINVAL;
                }
                if (memcmp(k->entries[i].key, e->key, sizeof(e->key)) == 0) {
                        *why = "this key is listed twice";
                        return -EINVAL;
                }
        }
        if (k->n_entries == LIMIT_KEYRING_KEYS) {
                *why = "more keys than the limit (4096)";
                return -EINVAL;
        }
        grown = realloc(k->entries, (k->n_entries + 1) * sizeof(*grown));
        if (!grown)
                return -ENOMEM;
        k->entries = grown;
        k->entries[k->n_entries++] = *e;
        return 0;
}

static int keyring_load(Keyring *k, const char *path, char *err, size_t n_err)
{
        char *buf = NULL, *ln;
        const char *why = NULL;
        size_t len = 0, line = 0;
        int r = read_keyring_file(path, LIMIT_KEYRING_FILE, &buf, &len);

        if (r == -EPERM) {
                (void)snprintf(err, n_err,
                               "auth_keyring %s: not a regular file, or writable by group or "
                               "others (anyone who can write it can add a key)",
                               path);
                return -EINVAL;
        }
        if (r < 0) {
                (void)snprintf(err, n_err, "auth_keyring %s: %s", path,
                               r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
                return r == -ENOMEM ? r : -EINVAL;
        }
        assert(buf); /* read_keyring_file() returned 0 */
        if (memchr(buf, '\0', len)) {
                (void)snprintf(err, n_err, "auth_keyring %s: not a text file", path);
                free(buf);
                return -EINVAL;
        }
        r = 0;
        /* Line by line by hand (strtok_r would skip empty lines and so miscount them). */
        for (char *p = buf; r == 0 && p; p = ln) {
                KeyringEntry e;

                ln = strchr(p, '\n');
                if (ln)
                        *ln++ = '\0';
                line++;
                r = parse_line(p, &e, &why);
                if (r == 0)
                        r = keyring_add(k, &e, &why);
                else if (r == 1)
                        r = 0;
        }
        free(buf);
        if (r == -EINVAL)
                (void)snprintf(err, n_err, "auth_keyring %s:%zu: %s", path, line, why);
        return r;
}

static int keyring_load_key(Keyring *k, const char *path, char *err, size_t n_err)
{
        int r = vbus__auth_key_load(path, &k->key);

        switch (r) {
        case 0:
                k->has_key = true;
                return 0;
        case -EPERM:
                (void)snprintf(err, n_err,
                               "auth_key %s: not a regular file, or readable by group or others: "
                               "refused, the secret may have leaked (chmod 600, or make a new key "
                               "with vbusctl keygen)",
                               path);
                break;
        case -EBADMSG:
                (void)snprintf(err, n_err,
                               "auth_key %s: not a secret key file (vbusctl keygen writes one)",
                               path);
                break;
        default:
                (void)snprintf(err, n_err, "auth_key %s: %s", path, strerror(-r));
                break;
        }
        return -EINVAL;
}

int keyring_new(const BrokerConfig *c, Keyring **ret, char *err, size_t n_err)
{
        Keyring *k;
        int r;

        if (!vbus__auth_is_available()) {
                if (c->auth == CONFIG_AUTH_OPTIONAL || c->auth == CONFIG_AUTH_REQUIRED ||
                    c->auth_key[0] || c->auth_keyring[0]) {
                        (void)snprintf(err, n_err,
                                       "the configuration asks for channel auth (auth, auth_key or "
                                       "auth_keyring) but this vchand was built without it "
                                       "(libsodium; VBUS_AUTH=ON)");
                        return -EINVAL;
                }
        }
        if (c->auth == CONFIG_AUTH_REQUIRED && !c->auth_keyring[0]) {
                (void)snprintf(err, n_err,
                               "auth = required needs auth_keyring: the keys that may connect");
                return -EINVAL;
        }
        if (c->auth == CONFIG_AUTH_OFF && (c->auth_key[0] || c->auth_keyring[0])) {
                (void)snprintf(err, n_err, "auth = off, but auth_key or auth_keyring is set");
                return -EINVAL;
        }
        k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        k->mode = c->auth;
        if (k->mode == CONFIG_AUTH_DEFAULT)
                k->mode = vbus__auth_is_available() ? CONFIG_AUTH_OPTIONAL : CONFIG_AUTH_OFF;
        r = c->auth_key[0] ? keyring_load_key(k, c->auth_key, err, n_err) : 0;
        if (r == 0 && c->auth_keyring[0])
                r = keyring_load(k, c->auth_keyring, err, n_err);
        if (r < 0) {
                keyring_free(k);
                return r;
        }
        *ret = k;
        return 0;
}

int keyring_reload_entries(Keyring *k, const char *path, char *err, size_t n_err)
{
        Keyring next = {0};
        int r = keyring_load(&next, path, err, n_err);

        if (r < 0) {
                free(next.entries);
                return r;
        }
        free(k->entries);
        k->entries = next.entries;
        k->n_entries = next.n_entries;
        return 0;
}

Keyring *keyring_free(Keyring *k)
{
        if (!k)
                return NULL;
        vbus__auth_key_wipe(&k->key);
        free(k->entries);
        free(k);
        return NULL;
}

const char *keyring_find(const Keyring *k, const uint8_t key[VBUS_AUTH_PUBLIC_KEY_SIZE])
{
        for (size_t i = 0; k && i < k->n_entries; i++)
                if (memcmp(k->entries[i].key, key, VBUS_AUTH_PUBLIC_KEY_SIZE) == 0)
                        return k->entries[i].name;
        return NULL;
}

static void hello_fields(const Vbus__V1__Hello *m, VbusAuthHelloFields *ret)
{
        *ret = (VbusAuthHelloFields){
                .version_min = m->version_min,
                .version_max = m->version_max,
                .features = m->features,
        };
}

int keyring_answer_hello(const Keyring *k, const Vbus__V1__Hello *hello, Vbus__V1__Hello *answer,
                         VbusAuthTranscript *t, uint8_t proof[VBUS_AUTH_PROOF_SIZE],
                         const char **why)
{
        bool offered = hello->features & VBUS_FEATURE_AUTH;

        if (!k || k->mode == CONFIG_AUTH_OFF || !offered) {
                if (keyring_requires_key(k)) {
                        *why = "this broker requires channel auth: connect with a key listed in "
                               "its keyring";
                        return KEYRING_DENIED;
                }
                return 0;
        }
        if (hello->auth_challenge.len != VBUS_AUTH_NONCE_SIZE) {
                *why = "channel auth: the client's auth_challenge must be 32 bytes";
                return KEYRING_MALFORMED;
        }
        *t = (VbusAuthTranscript){.version = answer->version};
        memcpy(t->client_nonce, hello->auth_challenge.data, VBUS_AUTH_NONCE_SIZE);
        if (vbus__auth_random(t->broker_nonce, VBUS_AUTH_NONCE_SIZE) < 0) {
                *why = "channel auth: no random source";
                return KEYRING_DENIED;
        }
        answer->features |= VBUS_FEATURE_AUTH;
        hello_fields(hello, &t->client);
        hello_fields(answer, &t->broker);
        answer->auth_challenge.data = t->broker_nonce;
        answer->auth_challenge.len = VBUS_AUTH_NONCE_SIZE;
        if (k->has_key) {
                memcpy(t->broker_key, k->key.public_key, VBUS_AUTH_PUBLIC_KEY_SIZE);
                if (vbus__auth_prove(t, VBUS_AUTH_ROLE_BROKER, &k->key, proof) < 0) {
                        *why = "channel auth: the broker cannot sign";
                        return KEYRING_DENIED;
                }
                answer->auth_proof.data = proof;
                answer->auth_proof.len = VBUS_AUTH_PROOF_SIZE;
        }
        return 0;
}

int keyring_check_proof(const Keyring *k, VbusAuthTranscript *t, const Vbus__V1__Hello *m,
                        Identity *ident, const char **why)
{
        char text[VBUS_AUTH_KEY_TEXT_SIZE];
        const char *name;
        int r;

        if (m->auth_challenge.len != 0 || (m->auth_key_name && m->auth_key_name[0] != '\0')) {
                *why = "channel auth: a proof HELLO carries auth_proof only";
                return KEYRING_MALFORMED;
        }
        r = vbus__auth_verify(t, VBUS_AUTH_ROLE_CLIENT, m->auth_proof.data, m->auth_proof.len);
        if (r == -EBADMSG) {
                *why = "channel auth: auth_proof must be 96 bytes (a public key and a signature)";
                return KEYRING_MALFORMED;
        }
        if (r < 0) {
                *why = "channel auth: the proof does not verify (a wrong key, or a HELLO replayed "
                       "from another link)";
                return KEYRING_DENIED;
        }
        name = keyring_find(k, t->client_key);
        if (!name && keyring_requires_key(k)) {
                *why = "channel auth: this key is not in the broker's keyring";
                return KEYRING_DENIED;
        }
        ident->has_key = true;
        memcpy(ident->key, t->client_key, sizeof(ident->key));
        if (name) {
                (void)snprintf(ident->key_name, sizeof(ident->key_name), "%s", name); /* fits */
        } else {
                (void)vbus__auth_key_to_text(t->client_key, text);
                (void)snprintf(ident->key_name, sizeof(ident->key_name), "key:%s", text); /* fits */
        }
        return 0;
}
