/* SPDX-License-Identifier: MIT */
/*
 * auth: channel auth at HELLO (docs/protocol.md 3.1), the part both ends share: Ed25519 keys
 * (libsodium), their file and text forms, the nonces, the transcript each side signs, and the
 * proofs. It does no I/O on the link and keeps no state of its own: the broker's peer and the
 * client's connection each keep one VbusAuthTranscript per session and fill it from the HELLOs
 * as they pass, then call vbus__auth_prove() or vbus__auth_verify() on it.
 *
 * Why a transcript and not just the challenge: each proof covers both sides' fresh nonces, the
 * chosen version, both HELLOs' version ranges and features and both public keys, under a context
 * string that names the signer's role. A proof therefore cannot be replayed on another link or
 * session (the other side's nonce differs), reflected to the other role (the context differs),
 * nor moved to a HELLO that negotiated another version or feature set. It leaves out what a
 * guest agent legitimately changes on the way (the session id, max_frame: protocol.md 7), so a
 * process behind an agent proves its key to the broker end to end.
 *
 * Built without libsodium (VBUS_AUTH=OFF, or AUTO without it), every function that needs a key
 * or randomness returns -ENOTSUP and vbus__auth_is_available() says false; the transcript
 * encoding works either way, so the protocol text is tested on every build.
 *
 * Keys in text: the 32 public key bytes in standard base64 with its padding (RFC 4648 section
 * 4: 43 characters of [A-Za-z0-9+/] and one '='), the form of VBUS_BROKER_KEY, a keyring line, a
 * policy's @key: and the stamped "key:<text>". A secret key file holds one line,
 * "vbus-ed25519-secret " and the 32-byte seed in the same base64, and must not be readable by
 * group or others.
 */
#ifndef VBUS_LIBBUS_AUTH_H
#define VBUS_LIBBUS_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sizes of the exchange. Mirrored in docs/protocol.md 3.1 and 9. */
enum {
        /* Hello.features bit 0: the sender speaks channel auth. */
        VBUS_FEATURE_AUTH = 1u << 0,
        /* Hello.auth_challenge: a fresh random nonce from each side. */
        VBUS_AUTH_NONCE_SIZE = 32,
        VBUS_AUTH_PUBLIC_KEY_SIZE = 32,
        VBUS_AUTH_SEED_SIZE = 32,
        VBUS_AUTH_SECRET_KEY_SIZE = 64, /* libsodium's form: seed, then public key */
        VBUS_AUTH_SIGNATURE_SIZE = 64,
        /* Hello.auth_proof: the signer's public key, then its signature of the transcript. */
        VBUS_AUTH_PROOF_SIZE = VBUS_AUTH_PUBLIC_KEY_SIZE + VBUS_AUTH_SIGNATURE_SIZE,
        /* The context string's field in the transcript (NUL-padded). */
        VBUS_AUTH_CONTEXT_SIZE = 32,
        /* The signed bytes (layout in protocol.md 3.1). */
        VBUS_AUTH_TRANSCRIPT_SIZE = VBUS_AUTH_CONTEXT_SIZE + 4 + 2 * VBUS_AUTH_NONCE_SIZE +
                                    2 * (4 + 4 + 8) + 2 * VBUS_AUTH_PUBLIC_KEY_SIZE,
        /* A public key in text: 44 characters of base64 (the last one '='), and a NUL. */
        VBUS_AUTH_KEY_TEXT_SIZE = 45,
        /* A secret key file is one short line: anything longer is not one. */
        VBUS_AUTH_KEY_FILE_MAX = 256,
};

/* Who signs: selects the context string, so a proof made in one role is void in the other. */
typedef enum VbusAuthRole {
        VBUS_AUTH_ROLE_CLIENT = 1,
        VBUS_AUTH_ROLE_BROKER = 2,
} VbusAuthRole;

/* The fields of one HELLO that the transcript covers (not max_frame: an agent caps it). */
typedef struct VbusAuthHelloFields {
        uint32_t version_min;
        uint32_t version_max;
        uint64_t features;
} VbusAuthHelloFields;

/* What both sides agree on once the broker's HELLO has passed; the signers fill it. */
typedef struct VbusAuthTranscript {
        uint32_t version; /* the chosen version (the broker's Hello.version) */
        uint8_t client_nonce[VBUS_AUTH_NONCE_SIZE];
        uint8_t broker_nonce[VBUS_AUTH_NONCE_SIZE];
        VbusAuthHelloFields client;
        VbusAuthHelloFields broker;
        /* All zero when that side proves no key (the client's, in the broker's own proof). */
        uint8_t broker_key[VBUS_AUTH_PUBLIC_KEY_SIZE];
        uint8_t client_key[VBUS_AUTH_PUBLIC_KEY_SIZE];
} VbusAuthTranscript;

/* A key pair. Holds a secret: wipe it with vbus__auth_key_wipe() before it goes. */
typedef struct VbusAuthKey {
        uint8_t public_key[VBUS_AUTH_PUBLIC_KEY_SIZE];
        uint8_t secret_key[VBUS_AUTH_SECRET_KEY_SIZE];
} VbusAuthKey;

/* Whether this build has channel auth (libsodium). */
bool vbus__auth_is_available(void);

/* Fills @buf with @n bytes from the system's CSPRNG. Return: 0, -ENOTSUP. */
int vbus__auth_random(uint8_t *buf, size_t n);

/**
 * vbus__auth_transcript_encode() - the bytes a proof in @role signs (protocol.md 3.1).
 * @ret_bytes: VBUS_AUTH_TRANSCRIPT_SIZE bytes, written.
 */
void vbus__auth_transcript_encode(const VbusAuthTranscript *t, VbusAuthRole role,
                                  uint8_t ret_bytes[VBUS_AUTH_TRANSCRIPT_SIZE]);

/**
 * vbus__auth_prove() - @key's proof in @role over @t. The signer's own key field in @t must
 * already hold @key's public key (the caller fills it: it is part of what is signed).
 * @ret_proof: VBUS_AUTH_PROOF_SIZE bytes, written on success.
 * Return: 0; -EINVAL (@t does not name @key as the signer of @role); -ENOTSUP.
 */
int vbus__auth_prove(const VbusAuthTranscript *t, VbusAuthRole role, const VbusAuthKey *key,
                     uint8_t ret_proof[VBUS_AUTH_PROOF_SIZE]);

/**
 * vbus__auth_verify() - check a peer's proof (@proof, @len: borrowed, untrusted) in @role.
 * The signer's key is taken from the proof and put in @t's field for @role before the
 * signature is checked against the transcript that includes it.
 * Return: 0 (@t now names the signer's key); -EBADMSG (not VBUS_AUTH_PROOF_SIZE bytes: a
 * truncated or padded proof); -EACCES (the signature does not verify: a wrong key, another
 * link's proof, a replay); -ENOTSUP. On failure @t's key field for @role is zero.
 */
int vbus__auth_verify(VbusAuthTranscript *t, VbusAuthRole role, const uint8_t *proof, size_t len);

/* A new key pair from the system's CSPRNG. Return: 0, -ENOTSUP. */
int vbus__auth_key_generate(VbusAuthKey *ret_key);

/* The key pair of a 32-byte seed (for test vectors). Return: 0, -ENOTSUP. */
int vbus__auth_key_from_seed(const uint8_t seed[VBUS_AUTH_SEED_SIZE], VbusAuthKey *ret_key);

/* Zeroes @key (a compiler may not drop it). */
void vbus__auth_key_wipe(VbusAuthKey *key);

/**
 * vbus__auth_key_load() - read a secret key file (@path, borrowed).
 * Return: 0 (@ret_key written); -EPERM (the file is readable or writable by group or others:
 * refused, the secret may have leaked; or it is not a regular file); -EBADMSG (not a key
 * file); -ENOTSUP; another -errno from open/read.
 */
int vbus__auth_key_load(const char *path, VbusAuthKey *ret_key);

/**
 * vbus__auth_key_save() - write @key's secret file at @path (mode 0600) and its public key at
 * @public_path (mode 0644), both created new (never overwritten).
 * Return: 0; -EEXIST (either file exists: nothing written); -ENOTSUP; another -errno (then
 * nothing is left behind).
 */
int vbus__auth_key_save(const VbusAuthKey *key, const char *path, const char *public_path);

/* @key's public key in text (44 characters and a NUL). Return: 0, -ENOTSUP. */
int vbus__auth_key_to_text(const uint8_t key[VBUS_AUTH_PUBLIC_KEY_SIZE],
                           char ret_text[VBUS_AUTH_KEY_TEXT_SIZE]);

/**
 * vbus__auth_key_from_text() - parse a public key in text (@text, @len: borrowed, no NUL
 * needed). Exactly 44 characters of base64, padding included, nothing else.
 * Return: 0 (@ret_key written); -EINVAL; -ENOTSUP.
 */
int vbus__auth_key_from_text(const char *text, size_t len,
                             uint8_t ret_key[VBUS_AUTH_PUBLIC_KEY_SIZE]);

/* Whether a key field of a transcript is set (not all zero). */
bool vbus__auth_key_is_set(const uint8_t key[VBUS_AUTH_PUBLIC_KEY_SIZE]);

#endif /* VBUS_LIBBUS_AUTH_H */
