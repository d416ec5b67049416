/* SPDX-License-Identifier: MIT */
/*
 * keyring: the broker's side of channel auth (docs/protocol.md 3.1, docs/vchand.8.md): its own
 * key (auth_key), the names it gives client keys (auth_keyring), whether it insists on a key
 * (auth), and the two HELLO steps peer.c runs: answering a client's HELLO with a nonce and the
 * broker's proof, and checking the proof HELLO that may follow. The proofs themselves are
 * libbus/wire/auth.c's, shared with the client library.
 *
 * A proven key becomes part of the peer's Identity: its bytes (has_key, key) and its name as
 * stamped on the wire (key_name): the keyring's name for it when listed there, otherwise
 * "key:" and the key in text, so that a name can never be mistaken for a key (names have no
 * ':'). Policy matches the key's bytes (Identity.key), named by its text or a !key name.
 *
 * Loaded by main() before the broker starts; the keyring file (the accepted keys and their
 * names) is read again on SIGHUP and Reload (reload.c), the rest needs a restart. A configuration
 * that asks for auth in a build without it, an unreadable or badly protected file, or a malformed
 * keyring stops the start with a message naming the file (and line).
 */
#ifndef VCHAND_KEYRING_H
#define VCHAND_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "bus.h"
#include "config.h"

typedef struct KeyringEntry {
        char name[LIMIT_KEY_NAME + 1];
        uint8_t key[VBUS_AUTH_PUBLIC_KEY_SIZE];
} KeyringEntry;

struct Keyring {
        ConfigAuth mode; /* OFF, OPTIONAL or REQUIRED (the default resolved) */
        bool has_key;    /* the broker proves its own key */
        VbusAuthKey key;
        KeyringEntry *entries;
        size_t n_entries;
};

/* Results of the HELLO steps besides 0: the peer is told (ERROR with the status) and dropped. */
enum {
        KEYRING_DENIED = 1,   /* PERMISSION_DENIED: no key, a key that does not verify, unlisted */
        KEYRING_MALFORMED = 2 /* PROTOCOL_ERROR: an auth field of the wrong size */
};

/**
 * keyring_new() - load what @c says about auth.
 * @ret: written on success; free with keyring_free().
 * @err: on -EINVAL, a message for the operator (file, line, why).
 * Return: 0, -EINVAL (see @err), -ENOMEM.
 */
int keyring_new(const BrokerConfig *c, Keyring **ret, char *err, size_t n_err);

/**
 * keyring_reload_entries() - read the keyring file @path again into @k (SIGHUP, Reload): the
 * broker's own key and the mode stay as loaded at start.
 * Return: 0; -EINVAL (see @err: @k unchanged), -ENOMEM.
 */
int keyring_reload_entries(Keyring *k, const char *path, char *err, size_t n_err);

/* Wipes the broker's secret key and frees. Accepts NULL. Return: NULL. */
Keyring *keyring_free(Keyring *k);

/* The keyring's name for @key, or NULL when it is not listed. */
const char *keyring_find(const Keyring *k, const uint8_t key[VBUS_AUTH_PUBLIC_KEY_SIZE]);

/**
 * keyring_answer_hello() - the auth part of the broker's HELLO answer to @hello.
 * @k: may be NULL (no auth). @t: the peer's transcript, filled here. @answer: its features and
 * auth fields are set, pointing into @t and @proof (which must outlive the send).
 * @why: on a nonzero result, the reason for the peer (static).
 * Return: 0, KEYRING_DENIED (auth required, the client offers none), KEYRING_MALFORMED.
 */
int keyring_answer_hello(const Keyring *k, const Vbus__V1__Hello *hello, Vbus__V1__Hello *answer,
                         VbusAuthTranscript *t, uint8_t proof[VBUS_AUTH_PROOF_SIZE],
                         const char **why);

/**
 * keyring_check_proof() - the client's proof HELLO @m, against @t (filled by
 * keyring_answer_hello()). On success the key is written into @ident.
 * Return: 0, KEYRING_DENIED or KEYRING_MALFORMED (with @why, static).
 */
int keyring_check_proof(const Keyring *k, VbusAuthTranscript *t, const Vbus__V1__Hello *m,
                        Identity *ident, const char **why);

/* Whether @k refuses streams to a peer that proved no key (auth = required). */
static inline bool keyring_requires_key(const Keyring *k)
{
        return k && k->mode == CONFIG_AUTH_REQUIRED;
}

#endif /* VCHAND_KEYRING_H */
