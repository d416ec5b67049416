/* SPDX-License-Identifier: MIT */
/*
 * config: the bridge's configuration file, parsed strictly: one directive per line, words
 * separated by blanks, '#' starts a comment at the start of a line or after a blank. Every
 * error names the file and line and the parse fails; nothing is guessed. The format is
 * documented in docs/federation.md and docs/man/vbus-bridge.1.md.
 */
#ifndef VBUS_BRIDGE_CONFIG_H
#define VBUS_BRIDGE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <vbus/vbus.h>

#include "limits.h"

typedef struct ConfigExport {
        char pattern[BRIDGE_NAME_MAX + 1];
        vbus_slow_policy policy;
} ConfigExport;

typedef struct ConfigImport {
        char host[BRIDGE_HOST_MAX]; /* "" for any host ("*" in the file) */
        char pattern[BRIDGE_NAME_MAX + 1];
} ConfigImport;

typedef struct ConfigOffer {
        char service[BRIDGE_NAME_MAX + 1];
} ConfigOffer;

typedef struct ConfigImportService {
        char host[BRIDGE_HOST_MAX]; /* "" for any host */
        char service[BRIDGE_NAME_MAX + 1];
        char local[BRIDGE_NAME_MAX + 1]; /* the name it is served under here */
} ConfigImportService;

typedef struct ConfigStreamMethod {
        char local[BRIDGE_NAME_MAX + 1]; /* local service name of an import-service */
        char method[BRIDGE_NAME_MAX + 1];
        bool server; /* server-streaming (forwarded); else client/bidi (unsupported) */
} ConfigStreamMethod;

typedef struct Config {
        char host[BRIDGE_HOST_MAX];
        char *broker; /* NULL: libvbus' default ($VBUS_URL, ...) */
        char *nats_urls[BRIDGE_URLS_MAX];
        unsigned n_nats_urls;
        char *nats_user, *nats_password, *nats_token;
        char *nats_creds;                     /* a .creds file (JWT and nkey seed) */
        char *nats_nkey_pub, *nats_nkey_seed; /* public key and seed file */
        char *nats_tls_ca, *nats_tls_cert, *nats_tls_key;
        bool nats_tls;
        bool nats_ignore_discovered;
        bool nats_send_asap;
        unsigned nats_reconnect_wait_ms;
        unsigned nats_reconnect_buffer;
        char subject_root[BRIDGE_ROOT_MAX];
        char rpc_root[BRIDGE_ROOT_MAX];
        char import_root[BRIDGE_ROOT_MAX];
        bool forged_watch;
        unsigned rpc_max_calls;
        unsigned rpc_default_timeout_ms;
        ConfigExport exports[BRIDGE_RULES_MAX];
        unsigned n_exports;
        ConfigImport imports[BRIDGE_RULES_MAX];
        unsigned n_imports;
        ConfigOffer offers[BRIDGE_RULES_MAX];
        unsigned n_offers;
        ConfigImportService import_services[BRIDGE_RULES_MAX];
        unsigned n_import_services;
        ConfigStreamMethod stream_methods[BRIDGE_RULES_MAX];
        unsigned n_stream_methods;
} Config;

/**
 * config_load() - parse the file at @path into a new Config.
 * @err: where errors are written, each as "PATH:LINE: message\n".
 * Return: 0 and *@ret_cfg; -EINVAL (a parse error, reported on @err); -errno opening the file;
 * -ENOMEM.
 */
int config_load(const char *path, FILE *err, Config **ret_cfg);

/* config_free() - accepts NULL; returns NULL. */
Config *config_free(Config *cfg);

#endif /* VBUS_BRIDGE_CONFIG_H */
