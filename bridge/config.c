/* SPDX-License-Identifier: MIT */
/*
 * config: a strict parser for the bridge's configuration (see config.h and the format in
 * docs/federation.md). The file is read line by line; each line is split into words and handed
 * to the handler of its directive, found in a table, which checks the number and the grammar
 * of its words. Checks that need the whole file (required directives, rules that would loop)
 * run at the end and name the line of the offending rule.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

#define CONFIG_WORDS_MAX 8

typedef struct Parser {
        const char *path;
        unsigned line;
        FILE *err;
        Config *cfg;
        unsigned line_of_host;
        unsigned line_of_export[BRIDGE_RULES_MAX];
        unsigned line_of_import_service[BRIDGE_RULES_MAX];
        unsigned line_of_stream_method[BRIDGE_RULES_MAX];
        unsigned line_of_import[BRIDGE_RULES_MAX];
} Parser;

__attribute__((format(printf, 2, 3))) static int parser_error(Parser *p, const char *fmt, ...)
{
        va_list ap;

        if (p->line)
                fprintf(p->err, "%s:%u: ", p->path, p->line);
        else
                fprintf(p->err, "%s: ", p->path);
        va_start(ap, fmt);
        vfprintf(p->err, fmt, ap);
        va_end(ap);
        fputc('\n', p->err);
        return -EINVAL;
}

static int parse_uint(Parser *p, const char *what, const char *s, unsigned long long min,
                      unsigned long long max, unsigned *ret)
{
        char *end;
        unsigned long long v;

        if (s[0] < '0' || s[0] > '9')
                return parser_error(p, "%s: '%s' is not a number", what, s);
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || *end)
                return parser_error(p, "%s: '%s' is not a number", what, s);
        if (v < min || v > max)
                return parser_error(p, "%s: %llu is out of range %llu..%llu", what, v, min, max);
        *ret = (unsigned)v;
        return 0;
}

static int set_string(Parser *p, char **dst, const char *what, const char *value)
{
        if (*dst)
                return parser_error(p, "%s given twice", what);
        *dst = strdup(value);
        return *dst ? 0 : -ENOMEM;
}

static int copy_name(Parser *p, char *dst, size_t size, const char *what, const char *value,
                     bool (*valid)(const char *))
{
        if (!valid(value) || strlen(value) >= size)
                return parser_error(p, "%s: '%s' is not a valid name", what, value);
        strcpy(dst, value);
        return 0;
}

/* A host word: a host name, or "*" for any host (stored as ""). */
static int parse_host(Parser *p, char *dst, const char *value)
{
        if (strcmp(value, "*") == 0) {
                dst[0] = '\0';
                return 0;
        }
        return copy_name(p, dst, BRIDGE_HOST_MAX, "host", value, names_is_host);
}

static int do_host(Parser *p, char **w, unsigned n)
{
        if (p->line_of_host)
                return parser_error(p, "host given twice (first on line %u)", p->line_of_host);
        p->line_of_host = p->line;
        return copy_name(p, p->cfg->host, sizeof(p->cfg->host), "host", w[1], names_is_host);
}

static int do_broker(Parser *p, char **w, unsigned n)
{
        if (strncmp(w[1], "unix:", 5) != 0 && strncmp(w[1], "vchan:", 6) != 0)
                return parser_error(p, "broker: '%s' is not unix:PATH or vchan:DOMID", w[1]);
        return set_string(p, &p->cfg->broker, "broker", w[1]);
}

static int do_nats(Parser *p, char **w, unsigned n)
{
        Config *c = p->cfg;

        for (unsigned i = 1; i < n; i++) {
                if (strncmp(w[i], "nats://", 7) != 0 && strncmp(w[i], "tls://", 6) != 0)
                        return parser_error(p, "nats: '%s' is not a nats:// or tls:// URL", w[i]);
                if (c->n_nats_urls == BRIDGE_URLS_MAX)
                        return parser_error(p, "nats: more than %d URLs", BRIDGE_URLS_MAX);
                c->nats_urls[c->n_nats_urls] = strdup(w[i]);
                if (!c->nats_urls[c->n_nats_urls])
                        return -ENOMEM;
                c->n_nats_urls++;
        }
        return 0;
}

static int do_nats_user(Parser *p, char **w, unsigned n)
{
        int r = set_string(p, &p->cfg->nats_user, "nats-user", w[1]);

        return r < 0 ? r : set_string(p, &p->cfg->nats_password, "nats-user", w[2]);
}

static int do_nats_token(Parser *p, char **w, unsigned n)
{
        return set_string(p, &p->cfg->nats_token, "nats-token", w[1]);
}

static int do_nats_creds(Parser *p, char **w, unsigned n)
{
        return set_string(p, &p->cfg->nats_creds, "nats-creds", w[1]);
}

static int do_nats_nkey(Parser *p, char **w, unsigned n)
{
        int r = set_string(p, &p->cfg->nats_nkey_pub, "nats-nkey", w[1]);

        return r < 0 ? r : set_string(p, &p->cfg->nats_nkey_seed, "nats-nkey", w[2]);
}

static int do_nats_tls(Parser *p, char **w, unsigned n)
{
        if (strcmp(w[1], "on") != 0)
                return parser_error(p, "nats-tls: '%s': only 'on' (TLS is off by default)", w[1]);
        p->cfg->nats_tls = true;
        return 0;
}

static int do_nats_discovered(Parser *p, char **w, unsigned n)
{
        if (strcmp(w[1], "use") != 0 && strcmp(w[1], "ignore") != 0)
                return parser_error(p, "nats-discovered: '%s' is not use or ignore", w[1]);
        p->cfg->nats_ignore_discovered = strcmp(w[1], "ignore") == 0;
        return 0;
}

static int do_nats_send_asap(Parser *p, char **w, unsigned n)
{
        if (strcmp(w[1], "on") != 0 && strcmp(w[1], "off") != 0)
                return parser_error(p, "nats-send-asap: '%s' is not on or off", w[1]);
        p->cfg->nats_send_asap = strcmp(w[1], "on") == 0;
        return 0;
}

static int do_nats_tls_ca(Parser *p, char **w, unsigned n)
{
        p->cfg->nats_tls = true;
        return set_string(p, &p->cfg->nats_tls_ca, "nats-tls-ca", w[1]);
}

static int do_nats_tls_cert(Parser *p, char **w, unsigned n)
{
        int r;

        p->cfg->nats_tls = true;
        r = set_string(p, &p->cfg->nats_tls_cert, "nats-tls-cert", w[1]);
        return r < 0 ? r : set_string(p, &p->cfg->nats_tls_key, "nats-tls-cert", w[2]);
}

static int do_reconnect_wait(Parser *p, char **w, unsigned n)
{
        return parse_uint(p, "nats-reconnect-wait", w[1], 10, 60000,
                          &p->cfg->nats_reconnect_wait_ms);
}

static int do_reconnect_buffer(Parser *p, char **w, unsigned n)
{
        return parse_uint(p, "nats-reconnect-buffer", w[1], 0, 1024u * 1024 * 1024,
                          &p->cfg->nats_reconnect_buffer);
}

static int do_root(Parser *p, char *dst, const char *what, const char *value)
{
        if (!names_is_root(value))
                return parser_error(p,
                                    "%s: '%s' is not a topic prefix (tokens of [A-Za-z0-9_-], "
                                    "no wildcards, under %d bytes)",
                                    what, value, BRIDGE_ROOT_MAX);
        strcpy(dst, value);
        return 0;
}

static int do_subject_root(Parser *p, char **w, unsigned n)
{
        return do_root(p, p->cfg->subject_root, "subject-root", w[1]);
}

static int do_rpc_root(Parser *p, char **w, unsigned n)
{
        return do_root(p, p->cfg->rpc_root, "rpc-root", w[1]);
}

static int do_import_root(Parser *p, char **w, unsigned n)
{
        return do_root(p, p->cfg->import_root, "import-root", w[1]);
}

static int do_forged_watch(Parser *p, char **w, unsigned n)
{
        if (strcmp(w[1], "on") != 0 && strcmp(w[1], "off") != 0)
                return parser_error(p, "forged-watch: '%s' is not on or off", w[1]);
        p->cfg->forged_watch = strcmp(w[1], "on") == 0;
        return 0;
}

static int do_rpc_max_calls(Parser *p, char **w, unsigned n)
{
        return parse_uint(p, "rpc-max-calls", w[1], 1, BRIDGE_RPC_CALLS_MAX,
                          &p->cfg->rpc_max_calls);
}

static int do_rpc_default_timeout(Parser *p, char **w, unsigned n)
{
        return parse_uint(p, "rpc-default-timeout", w[1], 1, 3600u * 1000,
                          &p->cfg->rpc_default_timeout_ms);
}

static int do_export(Parser *p, char **w, unsigned n)
{
        Config *c = p->cfg;
        ConfigExport *e;
        int r;

        if (c->n_exports == BRIDGE_RULES_MAX)
                return parser_error(p, "more than %d export rules", BRIDGE_RULES_MAX);
        e = &c->exports[c->n_exports];
        r = copy_name(p, e->pattern, sizeof(e->pattern), "export", w[1], names_is_pattern);
        if (r < 0)
                return r;
        e->policy = VBUS_SLOW_DROP;
        if (n == 3 && strcmp(w[2], "block") == 0)
                e->policy = VBUS_SLOW_BLOCK;
        else if (n == 3 && strcmp(w[2], "drop") != 0)
                return parser_error(p, "export: '%s' is not drop or block", w[2]);
        p->line_of_export[c->n_exports++] = p->line;
        return 0;
}

static int do_import(Parser *p, char **w, unsigned n)
{
        Config *c = p->cfg;
        ConfigImport *i;
        int r;

        if (c->n_imports == BRIDGE_RULES_MAX)
                return parser_error(p, "more than %d import rules", BRIDGE_RULES_MAX);
        i = &c->imports[c->n_imports];
        r = parse_host(p, i->host, w[1]);
        if (r < 0)
                return r;
        r = copy_name(p, i->pattern, sizeof(i->pattern), "import", w[2], names_is_pattern);
        if (r < 0)
                return r;
        p->line_of_import[c->n_imports++] = p->line;
        return 0;
}

static int do_offer(Parser *p, char **w, unsigned n)
{
        Config *c = p->cfg;
        int r;

        if (c->n_offers == BRIDGE_RULES_MAX)
                return parser_error(p, "more than %d offer rules", BRIDGE_RULES_MAX);
        r = copy_name(p, c->offers[c->n_offers].service, sizeof(c->offers[0].service), "offer",
                      w[1], names_is_service);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < c->n_offers; i++)
                if (strcmp(c->offers[i].service, w[1]) == 0)
                        return parser_error(p, "offer %s given twice", w[1]);
        c->n_offers++;
        return 0;
}

static int do_import_service(Parser *p, char **w, unsigned n)
{
        Config *c = p->cfg;
        ConfigImportService *s;
        int r;

        if (c->n_import_services == BRIDGE_RULES_MAX)
                return parser_error(p, "more than %d import-service rules", BRIDGE_RULES_MAX);
        s = &c->import_services[c->n_import_services];
        r = parse_host(p, s->host, w[1]);
        if (r < 0)
                return r;
        r = copy_name(p, s->service, sizeof(s->service), "import-service", w[2], names_is_service);
        if (r < 0)
                return r;
        r = copy_name(p, s->local, sizeof(s->local), "import-service", n == 4 ? w[3] : w[2],
                      names_is_service);
        if (r < 0)
                return r;
        if (strcmp(s->local, "vbus") == 0 || strncmp(s->local, "vbus.", 5) == 0)
                return parser_error(p, "import-service: the vbus namespace is the broker's");
        p->line_of_import_service[c->n_import_services++] = p->line;
        return 0;
}

static int do_stream_method(Parser *p, char **w, unsigned n)
{
        Config *c = p->cfg;
        ConfigStreamMethod *m;
        const char *slash = strchr(w[1], '/');

        if (c->n_stream_methods == BRIDGE_RULES_MAX)
                return parser_error(p, "more than %d stream-method rules", BRIDGE_RULES_MAX);
        m = &c->stream_methods[c->n_stream_methods];
        if (!slash || (size_t)(slash - w[1]) > BRIDGE_NAME_MAX ||
            !names_is_identifier(slash + 1, strlen(slash + 1)) ||
            strlen(slash + 1) > BRIDGE_NAME_MAX)
                return parser_error(p, "stream-method: '%s' is not SERVICE/METHOD", w[1]);
        memcpy(m->local, w[1], (size_t)(slash - w[1]));
        m->local[slash - w[1]] = '\0';
        if (!names_is_service(m->local))
                return parser_error(p, "stream-method: '%s' is not SERVICE/METHOD", w[1]);
        strcpy(m->method, slash + 1);
        m->server = true;
        if (n == 3 && (strcmp(w[2], "client") == 0 || strcmp(w[2], "bidi") == 0))
                m->server = false;
        else if (n == 3 && strcmp(w[2], "server") != 0)
                return parser_error(p, "stream-method: '%s' is not server, client or bidi", w[2]);
        p->line_of_stream_method[c->n_stream_methods++] = p->line;
        return 0;
}

typedef struct Directive {
        const char *name;
        unsigned min_args, max_args;
        const char *usage;
        int (*handle)(Parser *p, char **w, unsigned n);
} Directive;

static const Directive directives[] = {
        {"host", 1, 1, "host NAME", do_host},
        {"broker", 1, 1, "broker unix:PATH|vchan:DOMID", do_broker},
        {"nats", 1, BRIDGE_URLS_MAX, "nats URL...", do_nats},
        {"nats-user", 2, 2, "nats-user USER PASSWORD", do_nats_user},
        {"nats-token", 1, 1, "nats-token TOKEN", do_nats_token},
        {"nats-creds", 1, 1, "nats-creds FILE", do_nats_creds},
        {"nats-nkey", 2, 2, "nats-nkey PUBLIC-KEY SEED-FILE", do_nats_nkey},
        {"nats-tls", 1, 1, "nats-tls on", do_nats_tls},
        {"nats-discovered", 1, 1, "nats-discovered use|ignore", do_nats_discovered},
        {"nats-send-asap", 1, 1, "nats-send-asap on|off", do_nats_send_asap},
        {"nats-tls-ca", 1, 1, "nats-tls-ca FILE", do_nats_tls_ca},
        {"nats-tls-cert", 2, 2, "nats-tls-cert CERT-FILE KEY-FILE", do_nats_tls_cert},
        {"nats-reconnect-wait", 1, 1, "nats-reconnect-wait MS", do_reconnect_wait},
        {"nats-reconnect-buffer", 1, 1, "nats-reconnect-buffer BYTES", do_reconnect_buffer},
        {"subject-root", 1, 1, "subject-root PREFIX", do_subject_root},
        {"rpc-root", 1, 1, "rpc-root PREFIX", do_rpc_root},
        {"import-root", 1, 1, "import-root PREFIX", do_import_root},
        {"forged-watch", 1, 1, "forged-watch on|off", do_forged_watch},
        {"rpc-max-calls", 1, 1, "rpc-max-calls N", do_rpc_max_calls},
        {"rpc-default-timeout", 1, 1, "rpc-default-timeout MS", do_rpc_default_timeout},
        {"export", 1, 2, "export PATTERN [drop|block]", do_export},
        {"import", 2, 2, "import HOST|* PATTERN", do_import},
        {"offer", 1, 1, "offer SERVICE", do_offer},
        {"import-service", 2, 3, "import-service HOST|* SERVICE [LOCAL-SERVICE]",
         do_import_service},
        {"stream-method", 1, 2, "stream-method LOCAL-SERVICE/METHOD [server|client|bidi]",
         do_stream_method},
};

static int parse_line(Parser *p, char *line)
{
        char *w[CONFIG_WORDS_MAX + 1];
        unsigned n = 0;
        char *s = line;

        for (;;) {
                while (*s == ' ' || *s == '\t')
                        s++;
                if (*s == '\0' || *s == '#')
                        break;
                if (n == CONFIG_WORDS_MAX + 1)
                        return parser_error(p, "too many words");
                w[n++] = s;
                while (*s && *s != ' ' && *s != '\t')
                        s++;
                if (*s)
                        *s++ = '\0';
        }
        if (n == 0)
                return 0;
        for (size_t i = 0; i < sizeof(directives) / sizeof(directives[0]); i++) {
                const Directive *d = &directives[i];

                if (strcmp(d->name, w[0]) != 0)
                        continue;
                if (n - 1 < d->min_args || n - 1 > d->max_args)
                        return parser_error(p, "wrong number of arguments: %s", d->usage);
                return d->handle(p, w, n);
        }
        return parser_error(p, "unknown directive '%s'", w[0]);
}

/* Checks that need the whole file; p->line is set to the line each error is about. */
static int parse_finish(Parser *p)
{
        Config *c = p->cfg;

        p->line = 0;
        if (!c->host[0])
                return parser_error(p, "no 'host NAME' directive (required)");
        if (c->n_nats_urls == 0)
                return parser_error(p, "no 'nats URL' directive (at least one is required)");
        if (c->nats_creds && c->nats_nkey_pub)
                return parser_error(p, "nats-creds and nats-nkey exclude each other");
        if (c->nats_user && c->nats_token)
                return parser_error(p, "nats-user and nats-token exclude each other");
        if (names_has_prefix(c->subject_root, c->rpc_root) ||
            names_has_prefix(c->rpc_root, c->subject_root))
                return parser_error(p, "subject-root %s and rpc-root %s overlap", c->subject_root,
                                    c->rpc_root);
        for (unsigned i = 0; i < c->n_exports; i++) {
                p->line = p->line_of_export[i];
                if (names_has_prefix(c->exports[i].pattern, c->import_root))
                        return parser_error(p,
                                            "export %s: topics under the import root %s are "
                                            "never exported (they would loop)",
                                            c->exports[i].pattern, c->import_root);
        }
        for (unsigned i = 0; i < c->n_imports; i++) {
                p->line = p->line_of_import[i];
                if (strcmp(c->imports[i].host, c->host) == 0)
                        return parser_error(p, "import %s: that is this host", c->host);
        }
        for (unsigned i = 0; i < c->n_import_services; i++) {
                ConfigImportService *s = &c->import_services[i];

                p->line = p->line_of_import_service[i];
                if (strcmp(s->host, c->host) == 0)
                        return parser_error(p, "import-service %s: that is this host", c->host);
                for (unsigned k = 0; k < c->n_offers; k++)
                        if (strcmp(c->offers[k].service, s->local) == 0)
                                return parser_error(p,
                                                    "import-service %s: also offered, calls "
                                                    "would loop through this bridge",
                                                    s->local);
                for (unsigned k = 0; k < i; k++)
                        if (strcmp(c->import_services[k].local, s->local) == 0)
                                return parser_error(p,
                                                    "import-service: %s is already served "
                                                    "(line %u)",
                                                    s->local, p->line_of_import_service[k]);
        }
        for (unsigned i = 0; i < c->n_stream_methods; i++) {
                bool found = false;

                p->line = p->line_of_stream_method[i];
                for (unsigned k = 0; k < c->n_import_services; k++)
                        found |= strcmp(c->import_services[k].local, c->stream_methods[i].local) ==
                                 0;
                if (!found)
                        return parser_error(p, "stream-method: %s is not an imported service",
                                            c->stream_methods[i].local);
        }
        return 0;
}

int config_load(const char *path, FILE *err, Config **ret_cfg)
{
        Parser p = {.path = path, .err = err};
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        FILE *f;
        int r = 0;

        p.cfg = calloc(1, sizeof(*p.cfg));
        if (!p.cfg)
                return -ENOMEM;
        strcpy(p.cfg->subject_root, "vbus");
        strcpy(p.cfg->rpc_root, "vbus-rpc");
        strcpy(p.cfg->import_root, "remote");
        p.cfg->forged_watch = true;
        p.cfg->rpc_max_calls = BRIDGE_RPC_CALLS_DEFAULT;
        p.cfg->rpc_default_timeout_ms = BRIDGE_RPC_DEFAULT_TIMEOUT_MS;
        p.cfg->nats_reconnect_wait_ms = 250;
        p.cfg->nats_reconnect_buffer = 8u * 1024 * 1024;

        f = fopen(path, "re");
        if (!f) {
                r = -errno;
                fprintf(err, "%s: %s\n", path, strerror(errno));
                config_free(p.cfg);
                return r;
        }
        while ((len = getline(&line, &cap, f)) >= 0) {
                p.line++;
                if (len > 0 && line[len - 1] == '\n')
                        line[--len] = '\0';
                if (len > BRIDGE_LINE_MAX) {
                        r = parser_error(&p, "line longer than %d bytes", BRIDGE_LINE_MAX);
                        break;
                }
                if (strlen(line) != (size_t)len) {
                        r = parser_error(&p, "NUL byte in line");
                        break;
                }
                r = parse_line(&p, line);
                if (r < 0)
                        break;
        }
        free(line);
        fclose(f);
        if (r == 0)
                r = parse_finish(&p);
        if (r < 0) {
                config_free(p.cfg);
                return r;
        }
        *ret_cfg = p.cfg;
        return 0;
}

Config *config_free(Config *cfg)
{
        if (!cfg)
                return NULL;
        free(cfg->broker);
        for (unsigned i = 0; i < cfg->n_nats_urls; i++)
                free(cfg->nats_urls[i]);
        free(cfg->nats_user);
        free(cfg->nats_password);
        free(cfg->nats_token);
        free(cfg->nats_creds);
        free(cfg->nats_nkey_pub);
        free(cfg->nats_nkey_seed);
        free(cfg->nats_tls_ca);
        free(cfg->nats_tls_cert);
        free(cfg->nats_tls_key);
        free(cfg);
        return NULL;
}
