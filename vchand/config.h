/* SPDX-License-Identifier: MIT */
/*
 * config: the broker's configuration (vchand.conf; see docs/vchand.8.md): its defaults, from
 * vchand-limits.h, and a strict parser of "key = value" lines.
 */
#ifndef VCHAND_CONFIG_H
#define VCHAND_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* auth: whether the broker offers channel auth, and whether it insists (docs/vchand.8.md). */
typedef enum ConfigAuth {
        CONFIG_AUTH_DEFAULT = 0, /* not set: optional where built with libsodium, else off */
        CONFIG_AUTH_OFF,
        CONFIG_AUTH_OPTIONAL,
        CONFIG_AUTH_REQUIRED,
} ConfigAuth;

typedef struct BrokerConfig {
        char socket_path[108];
        char policy[256]; /* the policy directory, or "open" (access.h) */
        bool xen;         /* discover guests over vchan */
        uint32_t max_frame;
        uint32_t max_message;
        uint32_t max_streams;
        uint32_t max_subscriptions;
        uint32_t publish_window;
        uint32_t queue_messages;
        uint32_t queue_bytes;
        uint64_t peer_queued_bytes;
        uint64_t peer_publish_bytes;
        uint32_t hello_timeout_ms;
        uint32_t max_peers;
        uint32_t max_calls;         /* calls in flight per caller session */
        uint32_t max_service_calls; /* calls in flight per service */
        int verbose;
        ConfigAuth auth;
        char auth_key[256];     /* the broker's secret key file, "" for none */
        char auth_keyring[256]; /* names of client keys, "" for none */
} BrokerConfig;

/* Fills @c with the defaults of vchand-limits.h. */
void config_defaults(BrokerConfig *c);

/*
 * config_parse() - apply vchand.conf text to @c.
 * @text, @len: borrowed, need not be NUL-terminated.
 * Return: 0, or -EINVAL with a message naming the line in @err.
 */
int config_parse(BrokerConfig *c, const char *text, size_t len, char *err, size_t n_err);

#endif /* VCHAND_CONFIG_H */
