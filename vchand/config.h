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

/* auth: whether the broker offers channel auth, and whether it insists (docs/vchand.8.md). */
typedef enum ConfigAuth {
        CONFIG_AUTH_DEFAULT = 0, /* not set: optional where built with libsodium, else off */
        CONFIG_AUTH_OFF,
        CONFIG_AUTH_OPTIONAL,
        CONFIG_AUTH_REQUIRED,
} ConfigAuth;

/* metrics_listen: where the Prometheus scrape endpoint listens (docs/vchand.8.md). */
typedef enum ConfigListenKind {
        CONFIG_LISTEN_NONE = 0, /* not configured: no listener */
        CONFIG_LISTEN_UNIX,     /* unix:/PATH */
        CONFIG_LISTEN_TCP4,     /* tcp:127.0.0.1:PORT or tcp:localhost:PORT */
        CONFIG_LISTEN_TCP6,     /* tcp:[::1]:PORT */
} ConfigListenKind;

typedef struct ConfigListen {
        ConfigListenKind kind;
        char path[108]; /* UNIX */
        uint16_t port;  /* TCP */
} ConfigListen;

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
        uint32_t max_sessions; /* agent sessions per link */
        /* The socket's owner and group ("" : root, and the default group) and mode. */
        char socket_owner[33];
        char socket_group[33];
        bool socket_group_set; /* the group is the administrator's choice */
        uint32_t socket_mode;
        /* The guest agent (vchand --agent): where the broker is, and its limits. */
        char agent_upstream[120];
        uint32_t agent_max_clients;
        uint64_t agent_client_queue;
        uint32_t max_calls;           /* calls in flight per caller session */
        uint32_t max_service_calls;   /* calls in flight per service */
        uint64_t peer_memory;         /* budget.h: what the broker holds for one peer */
        uint64_t max_memory;          /* budget.h: what it holds for all peers together */
        uint32_t max_local_peers;     /* of max_peers, UNIX-socket links */
        uint32_t max_call_timeout_ms; /* a call's longest deadline, and a timeout of 0's */
        uint32_t stream_id_limit;     /* tests only: ids the broker uses toward a peer */
        uint32_t max_grant_mappings;  /* budget.h: guests' ring pages mapped at once */
        uint32_t max_ring_order;      /* budget.h: largest ring mapped, log2 of its bytes */
        uint32_t retained_max;        /* retained values kept by the broker */
        uint64_t retained_bytes;      /* bytes charged for them, over the broker */
        uint64_t peer_retained_bytes; /* bytes charged to one publisher identity */
        int verbose;
        ConfigAuth auth;
        char auth_key[256];     /* the broker's secret key file, "" for none */
        char auth_keyring[256]; /* names of client keys, "" for none */
        ConfigListen metrics_listen;
} BrokerConfig;

/*
 * config_listen_parse() - "unix:/PATH" (an absolute path shorter than 108 bytes), or a loopback
 * TCP address: "tcp:127.0.0.1:PORT", "tcp:localhost:PORT" or "tcp:[::1]:PORT" (PORT 1-65535).
 * Other hosts are refused: the metrics are for the host's own monitoring agent.
 * Return: 0 and *ret; -EINVAL.
 */
int config_listen_parse(const char *value, ConfigListen *ret);

/* Writes @l as config_listen_parse() reads it ("" for none) into @buf (at least 128 bytes). */
void config_listen_format(const ConfigListen *l, char *buf, size_t n);

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
