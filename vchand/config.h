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
#include <stdio.h>

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
        uint32_t max_calls;           /* calls in flight per caller session */
        uint32_t max_service_calls;   /* calls in flight per service */
        uint32_t retained_max;        /* retained values kept by the broker */
        uint64_t retained_bytes;      /* bytes charged for them, over the broker */
        uint64_t peer_retained_bytes; /* bytes charged to one publisher identity */
        int verbose;
} BrokerConfig;

/* Fills @c with the defaults of vchand-limits.h. */
void config_defaults(BrokerConfig *c);

/*
 * config_parse() - apply vchand.conf text to @c.
 * @text, @len: borrowed, need not be NUL-terminated.
 * Return: 0, or -EINVAL with a message naming the line in @err.
 */
int config_parse(BrokerConfig *c, const char *text, size_t len, char *err, size_t n_err);

/* Writes every key of the configuration with its value in force, one "key = value" line each,
 * in the syntax config_parse() reads (what --check-config prints). */
void config_print(const BrokerConfig *c, FILE *f);

#endif /* VCHAND_CONFIG_H */
