/* SPDX-License-Identifier: MIT */
/*
 * config: vchand.conf, "key = value" lines, '#' comments (a whole line, or the rest of a line
 * from a '#' that follows a space or a tab). Strict: an unknown key, a value out of range or
 * trailing garbage is an error naming the line, so a typo never silently keeps a default. The
 * table of keys is the only list of them: the parser and config_print() both walk it.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "vchand-limits.h"

typedef struct Key {
        const char *name;
        size_t offset;
        int width; /* 4 or 8 bytes; 0 for the socket path, 1 for booleans */
        uint64_t min, max;
} Key;

#define KEY32(n, lo, hi)                                                                           \
        {                                                                                          \
#n, offsetof(BrokerConfig, n), 4, (lo), (hi)                                       \
        }
#define KEY64(n, lo, hi)                                                                           \
        {                                                                                          \
#n, offsetof(BrokerConfig, n), 8, (lo), (hi)                                       \
        }

static const Key keys[] = {
        {"socket", offsetof(BrokerConfig, socket_path), 0, 0, 0},
        {"xen", offsetof(BrokerConfig, xen), 1, 0, 1},
        KEY32(max_frame, VBUS_FRAME_MAX_MIN, VBUS_FRAME_MAX_LIMIT),
        KEY32(max_message, 1, (uint64_t)64u * 1024 * 1024),
        KEY32(max_streams, 1, 1u << 20),
        KEY32(max_subscriptions, 1, 1u << 20),
        KEY32(publish_window, VBUS_FRAME_MAX_MIN, 0x7fffffffu),
        KEY32(queue_messages, 1, 65536),
        KEY32(queue_bytes, 1024, 1u << 30),
        KEY64(peer_queued_bytes, 1024, 1ull << 34),
        KEY64(peer_publish_bytes, VBUS_FRAME_MAX_MIN, 1ull << 34),
        KEY32(hello_timeout_ms, 100, 600000),
        KEY32(max_peers, 1, 65536),
        KEY32(max_sessions, 0, 65536),
        KEY32(agent_max_clients, 1, 65536),
        KEY64(agent_client_queue, 1u << 20, 1ull << 34),
        KEY32(max_calls, 1, 1u << 20),
        KEY32(max_service_calls, 1, 1u << 20),
        KEY64(peer_memory, 1u << 20, 1ull << 40),
        KEY64(max_memory, 1u << 20, 1ull << 44),
        KEY32(max_local_peers, 1, 65536),
        KEY32(max_call_timeout_ms, 1, 0xffffffffu),
        KEY32(stream_id_limit, 64, VBUS_STREAM_ID_LIMIT),
        KEY32(max_grant_mappings, 3, 1u << 24),
        KEY32(max_ring_order, 12, 20),
        KEY32(retained_max, 0, 1u << 20),
        KEY64(retained_bytes, 0, 1ull << 34),
        KEY64(peer_retained_bytes, 0, 1ull << 34),
};

/* Cuts @s at a comment: a '#' that starts it or follows a blank ("x = 1 # why"). A '#' inside a
 * word (a socket path "/run/a#b") is part of the value. */
static void cut_comment(char *s)
{
        for (char *p = s; *p; p++) {
                if (*p == '#' && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
                        *p = '\0';
                        return;
                }
        }
}

static char *trim(char *s)
{
        char *e;

        while (*s == ' ' || *s == '\t')
                s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                *--e = '\0';
        return s;
}

/* A user or group name as useradd takes it: [a-z_][a-z0-9_-]*, shorter than @n. */
static bool name_ok(const char *v, size_t n)
{
        if (strlen(v) >= n || !((v[0] >= 'a' && v[0] <= 'z') || v[0] == '_'))
                return false;
        return strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_-") == strlen(v);
}

/* The keys that are not numbers: the socket's owner, group and mode, and the agent's upstream.
 * Return: 1 (not one of these), 0 (set), -EINVAL (with a message). */
static int config_set_text(BrokerConfig *c, const char *key, const char *value, char *err,
                           size_t n_err, unsigned line)
{
        if (strcmp(key, "socket_mode") == 0) {
                char *end;
                unsigned long v;

                errno = 0;
                v = strtoul(value, &end, 8);
                if (errno || end == value || *end || value[0] != '0' || v > 0777) {
                        (void)snprintf(err, n_err,
                                       "line %u: socket_mode wants octal permission bits, e.g. "
                                       "0660",
                                       line);
                        return -EINVAL;
                }
                c->socket_mode = (uint32_t)v;
                return 0;
        }
        if (strcmp(key, "socket_owner") == 0 || strcmp(key, "socket_group") == 0) {
                bool owner = key[7] == 'o';
                char *dst = owner ? c->socket_owner : c->socket_group;

                if (!name_ok(value, sizeof(c->socket_owner))) {
                        (void)snprintf(err, n_err, "line %u: %s wants a user or group name", line,
                                       key);
                        return -EINVAL;
                }
                (void)snprintf(dst, sizeof(c->socket_owner), "%s", value); /* checked above */
                if (!owner)
                        c->socket_group_set = true;
                return 0;
        }
        if (strcmp(key, "agent_upstream") == 0) {
                if ((strncmp(value, "vchan:", 6) != 0 && strncmp(value, "unix:/", 6) != 0) ||
                    strlen(value) >= sizeof(c->agent_upstream)) {
                        (void)snprintf(err, n_err,
                                       "line %u: agent_upstream wants vchan:<domid> or "
                                       "unix:<absolute path>",
                                       line);
                        return -EINVAL;
                }
                (void)snprintf(c->agent_upstream, sizeof(c->agent_upstream), "%s", value);
                return 0;
        }
        return 1;
}

/* The auth keys (auth, auth_key, auth_keyring). Return: 1 not one of them, 0, -EINVAL. */
static int config_set_auth(BrokerConfig *c, const char *key, const char *value, char *err,
                           size_t n_err, unsigned line)
{
        static const char *const modes[] = {"", "off", "optional", "required"};
        char *path;

        if (strcmp(key, "auth") == 0) {
                for (size_t i = CONFIG_AUTH_OFF; i <= CONFIG_AUTH_REQUIRED; i++) {
                        if (strcmp(value, modes[i]) == 0) {
                                c->auth = (ConfigAuth)i;
                                return 0;
                        }
                }
                (void)snprintf(err, n_err, "line %u: auth wants off, optional or required", line);
                return -EINVAL;
        }
        if (strcmp(key, "auth_key") == 0)
                path = c->auth_key;
        else if (strcmp(key, "auth_keyring") == 0)
                path = c->auth_keyring;
        else
                return 1;
        if (value[0] != '/' || strlen(value) >= sizeof(c->auth_key)) {
                (void)snprintf(err, n_err,
                               "line %u: %s must be an absolute path shorter than %zu bytes", line,
                               key, sizeof(c->auth_key));
                return -EINVAL;
        }
        (void)snprintf(path, sizeof(c->auth_key), "%s", value); /* fits: checked above */
        return 0;
}

int config_listen_parse(const char *value, ConfigListen *ret)
{
        ConfigListen l = {0};
        const char *port = NULL;
        char *end;
        unsigned long v;

        if (strncmp(value, "unix:/", 6) == 0) {
                if (strlen(value + 5) >= sizeof(l.path))
                        return -EINVAL;
                l.kind = CONFIG_LISTEN_UNIX;
                memcpy(l.path, value + 5, strlen(value + 5) + 1);
                *ret = l;
                return 0;
        }
        if (strncmp(value, "tcp:127.0.0.1:", 14) == 0 ||
            strncmp(value, "tcp:localhost:", 14) == 0) {
                l.kind = CONFIG_LISTEN_TCP4;
                port = value + 14;
        } else if (strncmp(value, "tcp:[::1]:", 10) == 0) {
                l.kind = CONFIG_LISTEN_TCP6;
                port = value + 10;
        } else {
                return -EINVAL;
        }
        errno = 0;
        v = strtoul(port, &end, 10);
        if (errno || end == port || *end || port[0] < '0' || port[0] > '9' || v == 0 || v > 65535)
                return -EINVAL;
        l.port = (uint16_t)v;
        *ret = l;
        return 0;
}

void config_listen_format(const ConfigListen *l, char *buf, size_t n)
{
        /* Fits: a path is shorter than 108 bytes. */
        switch (l->kind) {
        case CONFIG_LISTEN_UNIX:
                (void)snprintf(buf, n, "unix:%s", l->path);
                break;
        case CONFIG_LISTEN_TCP4:
                (void)snprintf(buf, n, "tcp:127.0.0.1:%u", (unsigned int)l->port);
                break;
        case CONFIG_LISTEN_TCP6:
                (void)snprintf(buf, n, "tcp:[::1]:%u", (unsigned int)l->port);
                break;
        default:
                (void)snprintf(buf, n, "%s", "");
                break;
        }
}

/* Here and in config_parse(), an error message cut to @n_err is fine: hence (void)snprintf. */
static int config_set(BrokerConfig *c, const char *key, const char *value, char *err, size_t n_err,
                      unsigned line)
{
        int r = config_set_auth(c, key, value, err, n_err, line);

        if (r > 0)
                r = config_set_text(c, key, value, err, n_err, line);

        if (r <= 0)
                return r;
        if (strcmp(key, "metrics_listen") == 0) {
                if (config_listen_parse(value, &c->metrics_listen) < 0) {
                        (void)snprintf(err, n_err,
                                       "line %u: metrics_listen wants unix:/PATH or a loopback "
                                       "tcp:127.0.0.1:PORT, tcp:localhost:PORT, tcp:[::1]:PORT",
                                       line);
                        return -EINVAL;
                }
                return 0;
        }
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                const Key *k = &keys[i];
                char *end;
                unsigned long long v;

                if (strcmp(k->name, key) != 0)
                        continue;
                if (k->width == 0) {
                        if (value[0] != '/' || strlen(value) >= sizeof(c->socket_path)) {
                                (void)snprintf(err, n_err,
                                               "line %u: socket must be an absolute path "
                                               "shorter than %zu bytes",
                                               line, sizeof(c->socket_path));
                                return -EINVAL;
                        }
                        /* Fits: its length was checked above. */
                        (void)snprintf(c->socket_path, sizeof(c->socket_path), "%s", value);
                        return 0;
                }
                if (k->width == 1) {
                        if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0) {
                                (void)snprintf(err, n_err, "line %u: %s wants yes or no", line,
                                               key);
                                return -EINVAL;
                        }
                        c->xen = strcmp(value, "yes") == 0;
                        return 0;
                }
                errno = 0;
                v = strtoull(value, &end, 10);
                if (errno || end == value || *end || value[0] == '-' || v < k->min || v > k->max) {
                        (void)snprintf(err, n_err, "line %u: %s wants an integer in %llu..%llu",
                                       line, key, (unsigned long long)k->min,
                                       (unsigned long long)k->max);
                        return -EINVAL;
                }
                if (k->width == 4) {
                        uint32_t v32 = (uint32_t)v;

                        memcpy((char *)c + k->offset, &v32, sizeof(v32));
                } else {
                        memcpy((char *)c + k->offset, &v, sizeof(v));
                }
                return 0;
        }
        (void)snprintf(err, n_err, "line %u: unknown key '%.64s'", line, key);
        return -EINVAL;
}

int config_parse(BrokerConfig *c, const char *text, size_t len, char *err, size_t n_err)
{
        char *copy, *next, *ln;
        unsigned line = 0;
        int r = 0;

        if (memchr(text, '\0', len)) {
                (void)snprintf(err, n_err, "the file holds a NUL byte: not a text file");
                return -EINVAL;
        }
        copy = strndup(text, len);
        if (!copy)
                return -ENOMEM;
        /* Line by line, blank lines included, so that every error names the right line. */
        for (ln = copy; ln && r == 0; ln = next) {
                char *eq, *s;

                next = strchr(ln, '\n');
                if (next)
                        *next++ = '\0';
                line++;
                cut_comment(ln);
                s = trim(ln);
                if (*s == '\0' || *s == '#')
                        continue;
                eq = strchr(s, '=');
                if (!eq) {
                        (void)snprintf(err, n_err, "line %u: expected key = value", line);
                        r = -EINVAL;
                        break;
                }
                *eq = '\0';
                r = config_set(c, trim(s), trim(eq + 1), err, n_err, line);
        }
        free(copy);
        if (r == 0 && c->max_message > c->publish_window) {
                (void)snprintf(err, n_err, "max_message (%u) must not exceed publish_window (%u)",
                               c->max_message, c->publish_window);
                r = -EINVAL;
        }
        if (r == 0 && c->publish_window > c->peer_publish_bytes) {
                (void)snprintf(err, n_err, "publish_window must not exceed peer_publish_bytes");
                r = -EINVAL;
        }
        return r;
}

void config_print(const BrokerConfig *c, FILE *f)
{
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                const Key *k = &keys[i];
                const char *field = (const char *)c + k->offset;

                if (k->width == 0) {
                        fprintf(f, "%s = %s\n", k->name, field);
                } else if (k->width == 1) {
                        bool v;

                        memcpy(&v, field, sizeof(v));
                        fprintf(f, "%s = %s\n", k->name, v ? "yes" : "no");
                } else if (k->width == 4) {
                        uint32_t v;

                        memcpy(&v, field, sizeof(v));
                        fprintf(f, "%s = %" PRIu32 "\n", k->name, v);
                } else {
                        uint64_t v;

                        memcpy(&v, field, sizeof(v));
                        fprintf(f, "%s = %" PRIu64 "\n", k->name, v);
                }
        }
}

void config_defaults(BrokerConfig *c)
{
        *c = (BrokerConfig){
                .xen = true,
                .max_frame = LIMIT_MAX_FRAME,
                .max_message = LIMIT_MAX_MESSAGE,
                .max_streams = LIMIT_MAX_STREAMS,
                .max_subscriptions = LIMIT_MAX_SUBSCRIPTIONS,
                .publish_window = LIMIT_PUBLISH_WINDOW,
                .queue_messages = LIMIT_QUEUE_MESSAGES,
                .queue_bytes = LIMIT_QUEUE_BYTES,
                .peer_queued_bytes = LIMIT_PEER_QUEUED_BYTES,
                .peer_publish_bytes = LIMIT_PEER_PUBLISH_BYTES,
                .hello_timeout_ms = LIMIT_HELLO_TIMEOUT_MS,
                .max_peers = LIMIT_MAX_PEERS,
                .max_sessions = LIMIT_MAX_SESSIONS,
                .socket_mode = LIMIT_SOCKET_MODE,
                .agent_max_clients = LIMIT_AGENT_MAX_CLIENTS,
                .agent_client_queue = LIMIT_AGENT_CLIENT_QUEUE,
                .max_calls = LIMIT_MAX_CALLS,
                .max_service_calls = LIMIT_MAX_SERVICE_CALLS,
                .peer_memory = LIMIT_PEER_MEMORY,
                .max_memory = LIMIT_MAX_MEMORY,
                .max_local_peers = LIMIT_MAX_LOCAL_PEERS,
                .max_call_timeout_ms = LIMIT_MAX_CALL_TIMEOUT_MS,
                .stream_id_limit = VBUS_STREAM_ID_LIMIT,
                .max_grant_mappings = LIMIT_MAX_GRANT_MAPPINGS,
                .max_ring_order = LIMIT_MAX_RING_ORDER,
                .retained_max = LIMIT_RETAINED_MAX,
                .retained_bytes = LIMIT_RETAINED_BYTES,
                .peer_retained_bytes = LIMIT_PEER_RETAINED_BYTES,
        };
        /* Both fit. */
        (void)snprintf(c->socket_path, sizeof(c->socket_path), "%s", "/run/vbus/broker.sock");
        (void)snprintf(c->policy, sizeof(c->policy), "%s", "/etc/vchand/policy.d");
        (void)snprintf(c->socket_group, sizeof(c->socket_group), "%s", LIMIT_SOCKET_GROUP);
        (void)snprintf(c->agent_upstream, sizeof(c->agent_upstream), "%s", "vchan:0");
}
