/* SPDX-License-Identifier: MIT */
/*
 * reload: vchand.conf again, without a restart (see reload.h).
 */
#include "reload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access.h"
#include "keyring.h"
#include "log.h"
#include "peer.h"

enum {
        /* vchand.conf is read whole; main.c reads it with the same bound. */
        RELOAD_FILE_MAX = 65536,
};

/* Reads @path into a malloc'ed buffer. Return: 0 or -errno (-EFBIG: too large). */
static int read_file(const char *path, char **ret, size_t *ret_n)
{
        char *buf = malloc(RELOAD_FILE_MAX);
        ssize_t n;
        int fd;

        if (!buf)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                free(buf);
                return -errno;
        }
        n = read(fd, buf, RELOAD_FILE_MAX);
        close(fd);
        if (n < 0 || n == RELOAD_FILE_MAX) {
                free(buf);
                return n < 0 ? -EIO : -EFBIG;
        }
        *ret = buf;
        *ret_n = (size_t)n;
        return 0;
}

/* Appends ", @key" to @msg (cut short is fine: it is a message). */
static void note(char *msg, size_t n_msg, const char *key)
{
        size_t len = strlen(msg);

        if (len < n_msg)
                (void)snprintf(msg + len, n_msg - len, "%s%s", len ? ", " : "", key);
}

static int reload_config(Bus *b, char *msg, size_t n_msg)
{
        BrokerConfig *cur = &b->config, next;
        char err[256], fixed[256] = "";
        char *text = NULL;
        size_t n = 0;
        int r;

        config_defaults(&next);
        if (b->config_path) {
                r = read_file(b->config_path, &text, &n);
                if (r == -ENOENT) {
                        /* As at start: without the file, the defaults. */
                        text = NULL;
                        n = 0;
                } else if (r < 0) {
                        (void)snprintf(msg, n_msg, "%s: %s", b->config_path, strerror(-r));
                        return r;
                }
                r = text ? config_parse(&next, text, n, err, sizeof(err)) : 0;
                free(text);
                if (r < 0) {
                        (void)snprintf(msg, n_msg, "%s: %s (nothing changed)", b->config_path, err);
                        return -EINVAL;
                }
        }
        /* The command line's, and what links and streams already open were made with. */
        memcpy(next.socket_path, cur->socket_path, sizeof(next.socket_path));
        next.xen = cur->xen;
        next.verbose = cur->verbose;
        /* Where the policy and the keys come from is decided at start (--policy may override
         * the file); the policy itself is reloaded by reload_all(). */
        if (strcmp(next.policy, cur->policy) != 0 && strcmp(cur->policy, ACCESS_OPEN) != 0)
                note(fixed, sizeof(fixed), "policy");
        memcpy(next.policy, cur->policy, sizeof(next.policy));
        if (next.auth != cur->auth || strcmp(next.auth_key, cur->auth_key) != 0 ||
            strcmp(next.auth_keyring, cur->auth_keyring) != 0)
                note(fixed, sizeof(fixed), "auth");
        next.auth = cur->auth;
        memcpy(next.auth_key, cur->auth_key, sizeof(next.auth_key));
        memcpy(next.auth_keyring, cur->auth_keyring, sizeof(next.auth_keyring));
#define KEEP(field, key)                                                                           \
        do {                                                                                       \
                if (next.field != cur->field) {                                                    \
                        note(fixed, sizeof(fixed), key);                                           \
                        next.field = cur->field;                                                   \
                }                                                                                  \
        } while (0)
        KEEP(max_frame, "max_frame");
        KEEP(max_message, "max_message");
        KEEP(max_streams, "max_streams");
        KEEP(publish_window, "publish_window");
#undef KEEP
        if (next.metrics_listen.kind != cur->metrics_listen.kind ||
            next.metrics_listen.port != cur->metrics_listen.port ||
            strcmp(next.metrics_listen.path, cur->metrics_listen.path) != 0)
                note(fixed, sizeof(fixed), "metrics_listen");
        next.metrics_listen = cur->metrics_listen;
        *cur = next;
        if (fixed[0])
                (void)snprintf(msg, n_msg, "configuration reloaded from %s; needs a restart: %s",
                               b->config_path ? b->config_path : "the defaults", fixed);
        else
                (void)snprintf(msg, n_msg, "configuration reloaded from %s",
                               b->config_path ? b->config_path : "the defaults");
        return 0;
}

typedef struct KeyCheck {
        const Keyring *k;
        Peer **drop; /* peers whose key the keyring no longer accepts (auth = required) */
        size_t n_drop, max_drop;
        unsigned int renamed;
} KeyCheck;

/* A peer's proven key named again by the new keyring; peers it no longer admits are noted. */
static int key_check(Peer *p, void *userdata)
{
        KeyCheck *kc = userdata;
        char name[sizeof(p->ident.key_name)], text[VBUS_AUTH_KEY_TEXT_SIZE];
        const char *found;

        if (!p->ident.has_key)
                return 0;
        found = keyring_find(kc->k, p->ident.key);
        if (!found && keyring_requires_key(kc->k)) {
                if (kc->n_drop < kc->max_drop)
                        kc->drop[kc->n_drop++] = p;
                return 0;
        }
        if (found) {
                (void)snprintf(name, sizeof(name), "%s", found); /* fits: same bound */
        } else {
                (void)vbus__auth_key_to_text(p->ident.key, text);
                (void)snprintf(name, sizeof(name), "key:%s", text); /* fits */
        }
        if (strcmp(name, p->ident.key_name) != 0) {
                memcpy(p->ident.key_name, name, sizeof(name));
                kc->renamed++;
        }
        return 0;
}

static int count_peers(Peer *p, void *userdata)
{
        (void)p;
        ++*(size_t *)userdata;
        return 0;
}

/*
 * The keyring file again (keyring.c), appended to @msg: links and sessions already open are
 * named by the new keyring (policy's @key: rules match the new names once the policy is
 * re-checked, which reload_policy() does next); under auth = required a peer whose key is no
 * longer listed is told PERMISSION_DENIED and dropped. A file with an error changes nothing.
 */
static int reload_keyring(Bus *b, char *msg, size_t n_msg)
{
        size_t len = strlen(msg), n_peers = 0;
        KeyCheck kc = {.k = b->keyring};
        char err[512];
        int r;

        if (!b->keyring || !b->config.auth_keyring[0])
                return 0;
        r = keyring_reload_entries(b->keyring, b->config.auth_keyring, err, sizeof(err));
        if (r < 0) {
                if (len < n_msg)
                        (void)snprintf(msg + len, n_msg - len,
                                       "%skeyring reload failed, the previous keys stay in force: "
                                       "%s",
                                       len ? "; " : "", r == -EINVAL ? err : strerror(-r));
                return r;
        }
        (void)peer_foreach(b, count_peers, &n_peers);
        kc.drop = calloc(n_peers ? n_peers : 1, sizeof(Peer *));
        if (!kc.drop)
                return -ENOMEM; /* the new keys are in force; links keep their names */
        kc.max_drop = n_peers;
        (void)peer_foreach(b, key_check, &kc);
        for (size_t i = 0; i < kc.n_drop; i++)
                peer_deny(kc.drop[i],
                          "channel auth: its key was removed from the broker's keyring");
        free(kc.drop);
        if (len < n_msg)
                (void)snprintf(msg + len, n_msg - len,
                               "%skeyring reloaded: %zu keys, %u links renamed, %zu dropped",
                               len ? "; " : "", b->keyring->n_entries, kc.renamed, kc.n_drop);
        return 0;
}

/* The policy directory again (access.c): appended to @msg. */
static int reload_policy(Bus *b, char *msg, size_t n_msg)
{
        size_t len = strlen(msg);
        unsigned int revoked = 0;
        char err[512];
        int r = access_reload(b, err, sizeof(err), &revoked);

        if (len >= n_msg)
                return r == -ENOTSUP ? 0 : r;
        /* Messages: cut short is fine. */
        if (r == -ENOTSUP)
                (void)snprintf(msg + len, n_msg - len, "; no policy to reload (--policy open)");
        else if (r < 0)
                (void)snprintf(msg + len, n_msg - len,
                               "; policy reload failed, the previous policy stays in force: %s",
                               err);
        else
                (void)snprintf(msg + len, n_msg - len,
                               "; policy reloaded: %zu rules from %s, %u streams revoked",
                               policy_get_n_rules(b->policy), b->config.policy, revoked);
        return r == -ENOTSUP ? 0 : r;
}

int reload_keys_and_policy(Bus *b, char *msg, size_t n_msg)
{
        int r = reload_keyring(b, msg, n_msg);
        int r2 = reload_policy(b, msg, n_msg);

        return r < 0 ? r : r2;
}

int reload_all(Bus *b, char *msg, size_t n_msg)
{
        int r = reload_config(b, msg, n_msg);

        if (r == 0)
                r = reload_keys_and_policy(b, msg, n_msg);
        if (r < 0)
                log_error("reload: %s", msg);
        else
                log_info("reload: %s", msg);
        return r;
}
