/* SPDX-License-Identifier: MIT */
/*
 * policy: the parser of *.policy files and the evaluator of their rules (see policy.h and
 * docs/policy.md for the format).
 *
 * Parsing is strict: the first thing that is not exactly a rule or a directive stops the load
 * with its position, so a typo never silently turns into a narrower or wider rule. Patterns are
 * walked token by token without recursion; a pattern has at most VBUS_TOPIC_TOKENS_MAX tokens and
 * VBUS_NAME_MAX bytes, so every check is bounded by the number of rules times that.
 */
#include "policy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "name.h"
#include "vchand-limits.h"

typedef struct PolicyKey {
        char name[POLICY_NAME_MAX + 1];
        uint8_t key[POLICY_KEY_BYTES];
} PolicyKey;

struct Policy {
        PolicyRule *rules;
        size_t n_rules, cap_rules;
        char **files;
        size_t n_files;
        PolicyKey *keys;
        size_t n_keys, cap_keys;
};

static const char *const action_names[POLICY_N_ACTIONS] = {
        [POLICY_PUBLISH] = "publish", [POLICY_SUBSCRIBE] = "subscribe", [POLICY_SERVE] = "serve",
        [POLICY_CALL] = "call",       [POLICY_ADMIN] = "admin",         [POLICY_IMPORT] = "import",
};

static const char *const admin_classes[] = {"list", "monitor", "kick", "reload"};

const char *policy_action_name(PolicyAction a)
{
        return (unsigned int)a < POLICY_N_ACTIONS ? action_names[a] : "?";
}

Policy *policy_new(void)
{
        return calloc(1, sizeof(Policy));
}

Policy *policy_free(Policy *p)
{
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_rules; i++) {
                free(p->rules[i].resource);
                free(p->rules[i].method);
        }
        for (size_t i = 0; i < p->n_files; i++)
                free(p->files[i]);
        free(p->rules);
        free(p->files);
        free(p->keys);
        free(p);
        return NULL;
}

size_t policy_get_n_rules(const Policy *p)
{
        return p->n_rules;
}

const PolicyRule *policy_get_rule(const Policy *p, size_t i)
{
        return &p->rules[i];
}

/* --- patterns ---------------------------------------------------------------------------- */

/* The length of the token at @s (up to '.', '/' or the end). */
static size_t tok_len(const char *s)
{
        return strcspn(s, "./");
}

static bool tok_is(const char *s, size_t n, const char *word)
{
        return n == strlen(word) && memcmp(s, word, n) == 0;
}

/* Does the rule's token @r (of @nr bytes) stand for exactly the token @t? */
static bool tok_literal_eq(const char *r, size_t nr, const char *t, size_t nt, const char *self)
{
        if (tok_is(r, nr, "@self"))
                return self && nt == strlen(self) && memcmp(t, self, nt) == 0;
        return nr == nt && memcmp(r, t, nr) == 0;
}

/* Moves both walkers past their token and its '.'. Return: false when either has no more. */
static bool tok_next(const char **a, size_t na, const char **b, size_t nb, bool *ret_both_end)
{
        *a += na;
        *b += nb;
        *ret_both_end = **a != '.' && **b != '.';
        if (**a != '.' || **b != '.')
                return false;
        (*a)++;
        (*b)++;
        return true;
}

/* Does the rule pattern @pat match the concrete name @name ('.'-separated, up to '/' or NUL)? */
static bool pattern_match(const char *pat, const char *name, const char *self)
{
        for (;;) {
                size_t np = tok_len(pat), nn = tok_len(name);
                bool both_end;

                if (tok_is(pat, np, ">"))
                        return nn > 0;
                if (!tok_is(pat, np, "*") && !tok_literal_eq(pat, np, name, nn, self))
                        return false;
                if (!tok_next(&pat, np, &name, nn, &both_end))
                        return both_end;
        }
}

/* Does every name the subscription pattern @sub matches match the rule pattern @pat? */
static bool pattern_covers(const char *pat, const char *sub, const char *self)
{
        for (;;) {
                size_t np = tok_len(pat), ns = tok_len(sub);
                bool both_end;

                if (tok_is(pat, np, ">"))
                        return true;
                if (tok_is(sub, ns, ">"))
                        return false;
                if (tok_is(pat, np, "*"))
                        ; /* any one token, literal or '*' */
                else if (tok_is(sub, ns, "*") || !tok_literal_eq(pat, np, sub, ns, self))
                        return false;
                if (!tok_next(&pat, np, &sub, ns, &both_end))
                        return both_end;
        }
}

/* Is there a name that both the rule pattern @pat and the subscription pattern @sub match? */
static bool pattern_intersects(const char *pat, const char *sub, const char *self)
{
        for (;;) {
                size_t np = tok_len(pat), ns = tok_len(sub);
                bool both_end;

                if (tok_is(pat, np, ">") || tok_is(sub, ns, ">"))
                        return true;
                if (!tok_is(pat, np, "*") && !tok_is(sub, ns, "*") &&
                    !tok_literal_eq(pat, np, sub, ns, self))
                        return false;
                if (!tok_next(&pat, np, &sub, ns, &both_end))
                        return both_end;
        }
}

/* --- evaluation -------------------------------------------------------------------------- */

static bool has_tag(const char *tags, const char *tag)
{
        size_t n = strlen(tag);

        while (tags && *tags) {
                size_t k = strcspn(tags, " ");

                if (k == n && memcmp(tags, tag, n) == 0)
                        return true;
                tags += k;
                tags += strspn(tags, " ");
        }
        return false;
}

static bool subject_match(const PolicyRule *r, const PolicySubject *s)
{
        switch (r->subject) {
        case POLICY_SUBJ_ANYONE:
                return true;
        case POLICY_SUBJ_ANYVM:
                return !s->local && s->domid != 0;
        case POLICY_SUBJ_ADMINVM:
                return !s->local && s->domid == 0;
        case POLICY_SUBJ_NAME:
                return !s->local && s->name && strcmp(s->name, r->name) == 0;
        case POLICY_SUBJ_DOMID:
                return !s->local && s->domid == r->id;
        case POLICY_SUBJ_TAG:
                return !s->local && has_tag(s->tags, r->name);
        case POLICY_SUBJ_LOCAL:
                return s->local;
        case POLICY_SUBJ_UID:
                return s->local && s->uid == r->id;
        case POLICY_SUBJ_GID:
                return s->local && s->gid == r->id;
        case POLICY_SUBJ_KEY:
                if (!s->has_key)
                        return false;
                if (r->keyring)
                        return s->key_name && strcmp(s->key_name, r->name) == 0;
                return s->key && memcmp(s->key, r->key, POLICY_KEY_BYTES) == 0;
        }
        return false;
}

static bool is_topic_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
}

static bool is_ident(const char *s, size_t n)
{
        if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_topic_char(s[i]) || s[i] == '-')
                        return false;
        return true;
}

/* The subject's own name as a token of @action's names, or NULL: @self then matches nothing. */
static const char *self_token(const PolicySubject *s, PolicyAction action)
{
        size_t n;

        if (s->local || !s->name || !s->name[0])
                return NULL;
        n = strlen(s->name);
        if (action == POLICY_SERVE || action == POLICY_CALL)
                return is_ident(s->name, n) ? s->name : NULL;
        for (size_t i = 0; i < n; i++)
                if (!is_topic_char(s->name[i]))
                        return NULL;
        return s->name;
}

static bool resource_match(const PolicyRule *r, const char *resource, const char *self)
{
        if (r->self && !self)
                return false;
        switch (r->action) {
        case POLICY_ADMIN:
                return strcmp(r->resource, "*") == 0 || strcmp(r->resource, resource) == 0;
        case POLICY_CALL: {
                const char *slash = strchr(resource, '/');

                if (!pattern_match(r->resource, resource, self))
                        return false;
                if (!r->method || strcmp(r->method, "*") == 0)
                        return true;
                return slash && strcmp(slash + 1, r->method) == 0;
        }
        default:
                return pattern_match(r->resource, resource, self);
        }
}

/* The first rule of @action matching @s and @resource, or NULL. */
static const PolicyRule *first_match(const Policy *p, const PolicySubject *s, PolicyAction action,
                                     const char *resource)
{
        const char *self = self_token(s, action);

        for (size_t i = 0; i < p->n_rules; i++) {
                const PolicyRule *r = &p->rules[i];

                if (r->action == action && subject_match(r, s) && resource_match(r, resource, self))
                        return r;
        }
        return NULL;
}

/* The first import rule whose pattern covers @topic whoever publishes, or NULL. */
static const PolicyRule *reserving_rule(const Policy *p, const char *topic)
{
        for (size_t i = 0; i < p->n_rules; i++) {
                const PolicyRule *r = &p->rules[i];

                if (r->action == POLICY_IMPORT && pattern_match(r->resource, topic, NULL))
                        return r;
        }
        return NULL;
}

bool policy_check(const Policy *p, const PolicySubject *s, PolicyAction action,
                  const char *resource, const PolicyRule **ret_rule)
{
        const PolicyRule *r;

        if (action == POLICY_PUBLISH) {
                const PolicyRule *reserved = reserving_rule(p, resource);

                if (reserved) {
                        r = first_match(p, s, POLICY_IMPORT, resource);
                        *ret_rule = r ? r : reserved;
                        return r && r->allow;
                }
        }
        r = first_match(p, s, action, resource);
        *ret_rule = r;
        return r && r->allow;
}

PolicyScope policy_check_pattern(const Policy *p, const PolicySubject *s, const char *pattern,
                                 const PolicyRule **ret_rule)
{
        const char *self = self_token(s, POLICY_SUBSCRIBE);
        bool seen_allow = false, seen_deny = false;

        *ret_rule = NULL;
        for (size_t i = 0; i < p->n_rules; i++) {
                const PolicyRule *r = &p->rules[i];

                if (r->action != POLICY_SUBSCRIBE || !subject_match(r, s) || (r->self && !self))
                        continue;
                if (pattern_covers(r->resource, pattern, self)) {
                        /* Every topic left is this rule's; earlier rules took some of them. */
                        if (r->allow ? seen_deny : seen_allow)
                                return POLICY_SCOPE_SOME;
                        *ret_rule = r;
                        return r->allow ? POLICY_SCOPE_ALL : POLICY_SCOPE_NONE;
                }
                if (pattern_intersects(r->resource, pattern, self)) {
                        seen_allow |= r->allow;
                        seen_deny |= !r->allow;
                }
        }
        /* The default deny takes what no rule covered. */
        return seen_allow ? POLICY_SCOPE_SOME : POLICY_SCOPE_NONE;
}

int policy_relevant_rules(const Policy *p, const PolicySubject *s, const char *pattern,
                          const PolicyRule **ret, size_t max)
{
        const char *self = self_token(s, POLICY_SUBSCRIBE);
        size_t n = 0;

        for (size_t i = 0; i < p->n_rules; i++) {
                const PolicyRule *r = &p->rules[i];

                if (r->action != POLICY_SUBSCRIBE || !subject_match(r, s) || (r->self && !self) ||
                    !pattern_intersects(r->resource, pattern, self))
                        continue;
                if (n == max)
                        return -E2BIG;
                ret[n++] = r;
        }
        return (int)n;
}

bool policy_check_rules(const PolicyRule *const *rules, size_t n, const PolicySubject *s,
                        const char *topic)
{
        const char *self = self_token(s, POLICY_SUBSCRIBE);

        for (size_t i = 0; i < n; i++)
                if (resource_match(rules[i], topic, self))
                        return rules[i]->allow;
        return false;
}

bool policy_has_bridge_right(const Policy *p, const PolicySubject *s)
{
        for (size_t i = 0; i < p->n_rules; i++) {
                const PolicyRule *r = &p->rules[i];

                if (r->action == POLICY_IMPORT && r->allow && subject_match(r, s))
                        return true;
        }
        return false;
}

const char *policy_admin_class(const char *method)
{
        static const struct {
                const char *method, *cls;
        } map[] = {
                /* vbus.v1.Broker's methods (proto/vbus/v1/broker.proto). */
                {"ListServices", "list"}, {"Describe", "list"},   {"Peers", "list"},
                {"Topics", "list"},       {"Subs", "list"},       {"Stats", "list"},
                {"Metrics", "list"},      {"Monitor", "monitor"}, {"Kick", "kick"},
                {"Reload", "reload"},
        };

        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
                if (strcmp(map[i].method, method) == 0)
                        return map[i].cls;
        return ""; /* only "admin *" rules match a method of no class */
}

/* --- parsing ----------------------------------------------------------------------------- */

typedef struct Word {
        const char *s;
        size_t n;
        size_t col; /* 1-based */
} Word;

typedef struct Parser {
        Policy *p;
        const char *file;
        unsigned int line;
        char *err;
        size_t n_err;
} Parser;

/* Sets the error at @col of the current line. Return: -EINVAL. */
static int perr(Parser *ps, size_t col, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int perr(Parser *ps, size_t col, const char *fmt, ...)
{
        char what[200];
        va_list ap;

        /* Cut messages are fine (the position comes first): hence (void). */
        va_start(ap, fmt);
        (void)vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        (void)snprintf(ps->err, ps->n_err, "%s:%u:%zu: %s", ps->file, ps->line, col, what);
        return -EINVAL;
}

static int decode_u32(Parser *ps, const char *s, size_t n, size_t col, uint32_t *ret)
{
        uint64_t v = 0;

        if (n == 0 || n > 10)
                return perr(ps, col, "expected a number from 0 to 4294967295");
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return perr(ps, col + i, "expected a decimal digit");
                v = v * 10 + (uint64_t)(s[i] - '0');
        }
        if (v > UINT32_MAX)
                return perr(ps, col, "expected a number from 0 to 4294967295");
        *ret = (uint32_t)v;
        return 0;
}

/* Names of domains, tags and keys: 1..POLICY_NAME_MAX of [A-Za-z0-9_.-]. */
static int check_name(Parser *ps, const char *s, size_t n, size_t col, const char *what)
{
        if (n == 0 || n > POLICY_NAME_MAX)
                return perr(ps, col, "%s must be 1 to 64 characters", what);
        for (size_t i = 0; i < n; i++)
                if (!is_topic_char(s[i]) && s[i] != '.')
                        return perr(ps, col + i, "%s may hold only A-Z a-z 0-9 _ . -", what);
        return 0;
}

static int b64_value(char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

/* Standard base64 of exactly POLICY_KEY_BYTES bytes: 43 characters and one '='. */
static bool decode_key(const char *s, size_t n, uint8_t *ret)
{
        uint32_t acc = 0;
        size_t bits = 0, out = 0;

        if (n != 44 || s[43] != '=')
                return false;
        for (size_t i = 0; i < 43; i++) {
                int v = b64_value(s[i]);

                if (v < 0)
                        return false;
                acc = (acc << 6) | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        if (out == POLICY_KEY_BYTES)
                                return false;
                        ret[out++] = (uint8_t)(acc >> bits);
                }
        }
        /* The 2 bits left over must be zero, so one key has one spelling. */
        return out == POLICY_KEY_BYTES && (acc & ((1u << bits) - 1)) == 0;
}

static const PolicyKey *find_key(const Policy *p, const char *s, size_t n)
{
        for (size_t i = 0; i < p->n_keys; i++)
                if (strlen(p->keys[i].name) == n && memcmp(p->keys[i].name, s, n) == 0)
                        return &p->keys[i];
        return NULL;
}

static int parse_subject(Parser *ps, const Word *w, PolicyRule *r)
{
        static const struct {
                const char *word;
                PolicySubjectKind kind;
        } fixed[] = {
                {"*", POLICY_SUBJ_ANYONE},         {"@anyvm", POLICY_SUBJ_ANYVM},
                {"@adminvm", POLICY_SUBJ_ADMINVM}, {"@dom0", POLICY_SUBJ_ADMINVM},
                {"@local", POLICY_SUBJ_LOCAL},
        };
        static const struct {
                const char *prefix;
                PolicySubjectKind kind;
        } valued[] = {
                {"@id:", POLICY_SUBJ_DOMID}, {"@uid:", POLICY_SUBJ_UID}, {"@gid:", POLICY_SUBJ_GID},
                {"@tag:", POLICY_SUBJ_TAG},  {"@key:", POLICY_SUBJ_KEY},
        };

        for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
                if (tok_is(w->s, w->n, fixed[i].word)) {
                        r->subject = fixed[i].kind;
                        return 0;
                }
        }
        for (size_t i = 0; i < sizeof(valued) / sizeof(valued[0]); i++) {
                size_t k = strlen(valued[i].prefix), nv, col;
                const char *v;

                if (w->n < k || memcmp(w->s, valued[i].prefix, k) != 0)
                        continue;
                v = w->s + k;
                nv = w->n - k;
                col = w->col + k;
                r->subject = valued[i].kind;
                switch (r->subject) {
                case POLICY_SUBJ_TAG:
                        if (check_name(ps, v, nv, col, "a tag") < 0)
                                return -EINVAL;
                        memcpy(r->name, v, nv);
                        r->name[nv] = '\0';
                        return 0;
                case POLICY_SUBJ_KEY: {
                        const PolicyKey *named = find_key(ps->p, v, nv);

                        if (named) {
                                memcpy(r->key, named->key, POLICY_KEY_BYTES);
                                return 0;
                        }
                        if (decode_key(v, nv, r->key))
                                return 0;
                        /* Otherwise the name the broker's keyring gives the key. */
                        if (nv == 44 && v[43] == '=')
                                return perr(ps, col, "not the base64 of a 32-byte public key");
                        if (check_name(ps, v, nv, col, "a key name") < 0)
                                return -EINVAL;
                        r->keyring = true;
                        memcpy(r->name, v, nv);
                        r->name[nv] = '\0';
                        return 0;
                }
                default:
                        return decode_u32(ps, v, nv, col, &r->id);
                }
        }
        if (w->s[0] == '@')
                return perr(ps, w->col,
                            "unknown subject (expected *, @anyvm, @adminvm, @dom0, @local, @id:N, "
                            "@uid:N, @gid:N, @tag:T, @key:K or a domain name)");
        if (check_name(ps, w->s, w->n, w->col, "a domain name") < 0)
                return -EINVAL;
        r->subject = POLICY_SUBJ_NAME;
        memcpy(r->name, w->s, w->n);
        r->name[w->n] = '\0';
        return 0;
}

/*
 * A pattern of @action's names in @s..@s+@n: tokens joined by '.', each "*", "@self" (not for
 * import), ">" (last only), or a token of the grammar (topics: [A-Za-z0-9_-]+; services:
 * identifiers).
 */
static int check_pattern(Parser *ps, PolicyAction action, const char *s, size_t n, size_t col,
                         bool *ret_self)
{
        bool service = action == POLICY_SERVE || action == POLICY_CALL;
        size_t i = 0, n_tok = 0;

        if (n == 0)
                return perr(ps, col, "empty pattern");
        if (n > VBUS_NAME_MAX)
                return perr(ps, col, "pattern longer than 255 bytes");
        *ret_self = false;
        for (;;) {
                size_t k = 0;

                while (i + k < n && s[i + k] != '.')
                        k++;
                if (++n_tok > VBUS_TOPIC_TOKENS_MAX)
                        return perr(ps, col + i, "more than 16 tokens");
                if (k == 0)
                        return perr(ps, col + i, "empty token");
                if (tok_is(s + i, k, ">")) {
                        if (i + k != n)
                                return perr(ps, col + i, "'>' must be the last token");
                } else if (tok_is(s + i, k, "@self")) {
                        if (action == POLICY_IMPORT)
                                return perr(ps, col + i, "@self has no meaning in an import rule");
                        *ret_self = true;
                } else if (!tok_is(s + i, k, "*")) {
                        for (size_t j = 0; j < k; j++) {
                                char c = s[i + j];

                                if (!is_topic_char(c) || (service && c == '-'))
                                        return perr(ps, col + i + j,
                                                    service ? "a service token may hold only "
                                                              "A-Z a-z 0-9 _, or be * > @self"
                                                            : "a topic token may hold only A-Z "
                                                              "a-z 0-9 _ -, or be * > @self");
                        }
                        if (service && s[i] >= '0' && s[i] <= '9')
                                return perr(ps, col + i, "a service token starts with a letter");
                }
                i += k;
                if (i == n)
                        return 0;
                i++; /* the '.' */
                if (i == n)
                        return perr(ps, col + i, "empty token");
        }
}

static int parse_resource(Parser *ps, const Word *w, PolicyRule *r)
{
        size_t n = w->n;

        if (r->action == POLICY_ADMIN) {
                bool ok = tok_is(w->s, w->n, "*");

                for (size_t i = 0; i < sizeof(admin_classes) / sizeof(admin_classes[0]); i++)
                        ok |= tok_is(w->s, w->n, admin_classes[i]);
                if (!ok)
                        return perr(ps, w->col, "expected list, monitor, kick, reload or *");
                r->resource = strndup(w->s, w->n);
                return r->resource ? 0 : -ENOMEM;
        }
        if (r->action == POLICY_CALL) {
                const char *slash = memchr(w->s, '/', w->n);

                if (slash) {
                        size_t off = (size_t)(slash - w->s), nm = w->n - off - 1;

                        n = off;
                        if (!tok_is(slash + 1, nm, "*") && !is_ident(slash + 1, nm))
                                return perr(ps, w->col + off + 1,
                                            "expected a method name (an identifier) or *");
                        r->method = strndup(slash + 1, nm);
                        if (!r->method)
                                return -ENOMEM;
                }
        } else if (memchr(w->s, '/', w->n)) {
                return perr(ps, w->col + (size_t)((const char *)memchr(w->s, '/', w->n) - w->s),
                            "a method is only for call rules");
        }
        if (check_pattern(ps, r->action, w->s, n, w->col, &r->self) < 0)
                return -EINVAL;
        r->resource = strndup(w->s, n);
        return r->resource ? 0 : -ENOMEM;
}

static int add_rule(Parser *ps, const PolicyRule *r)
{
        Policy *p = ps->p;

        if (p->n_rules == LIMIT_POLICY_RULES) {
                (void)snprintf(ps->err, ps->n_err, "%s:%u:1: more than %d rules", ps->file,
                               ps->line, LIMIT_POLICY_RULES);
                return -E2BIG;
        }
        if (p->n_rules == p->cap_rules) {
                size_t cap = p->cap_rules ? p->cap_rules * 2 : 64;
                PolicyRule *n = realloc(p->rules, cap * sizeof(*n));

                if (!n)
                        return -ENOMEM;
                p->rules = n;
                p->cap_rules = cap;
        }
        p->rules[p->n_rules++] = *r;
        return 0;
}

static int parse_key_directive(Parser *ps, const Word *w, size_t n_words)
{
        Policy *p = ps->p;
        PolicyKey k = {0};

        if (n_words < 2)
                return perr(ps, w[0].col + w[0].n + 1, "expected: !key NAME BASE64");
        if (check_name(ps, w[1].s, w[1].n, w[1].col, "a key name") < 0)
                return -EINVAL;
        if (find_key(p, w[1].s, w[1].n))
                return perr(ps, w[1].col, "this key name is already defined");
        if (n_words < 3)
                return perr(ps, w[1].col + w[1].n + 1, "expected the key in base64 after its name");
        if (!decode_key(w[2].s, w[2].n, k.key))
                return perr(ps, w[2].col, "expected the base64 of a 32-byte public key");
        if (n_words > 3)
                return perr(ps, w[3].col, "unexpected text after the key");
        if (p->n_keys == LIMIT_POLICY_KEYS)
                return perr(ps, w[0].col, "too many named keys");
        if (p->n_keys == p->cap_keys) {
                size_t cap = p->cap_keys ? p->cap_keys * 2 : 8;
                PolicyKey *n = realloc(p->keys, cap * sizeof(*n));

                if (!n)
                        return -ENOMEM;
                p->keys = n;
                p->cap_keys = cap;
        }
        memcpy(k.name, w[1].s, w[1].n);
        p->keys[p->n_keys++] = k;
        return 0;
}

/* One line, without its '\n'. Blank lines and comments ('#' first) are skipped. */
static int parse_line(Parser *ps, const char *s, size_t n, const char *file_name)
{
        static const char *const what[] = {"an action", "a resource", "a subject",
                                           "a decision (allow or deny)"};
        PolicyRule r = {0};
        Word w[5];
        size_t n_words = 0, i = 0;
        int ret;

        if (n > LIMIT_POLICY_LINE)
                return perr(ps, LIMIT_POLICY_LINE + 1, "line longer than 4096 bytes");
        if (n > 0 && s[n - 1] == '\r')
                n--;
        for (size_t j = 0; j < n; j++) {
                unsigned char c = (unsigned char)s[j];

                if (c == '#')
                        break; /* checked below: a comment only where a line starts */
                if ((c < 0x20 && c != '\t') || c >= 0x7f)
                        return perr(ps, j + 1, "unexpected byte (rules are printable ASCII)");
        }
        while (i < n && n_words < 5) {
                while (i < n && (s[i] == ' ' || s[i] == '\t'))
                        i++;
                if (i == n)
                        break;
                if (n_words == 0 && s[i] == '#')
                        return 0; /* a comment: anything may follow */
                w[n_words].s = s + i;
                w[n_words].col = i + 1;
                while (i < n && s[i] != ' ' && s[i] != '\t')
                        i++;
                w[n_words].n = (size_t)(s + i - w[n_words].s);
                n_words++;
        }
        if (n_words == 0)
                return 0;
        if (w[0].s[0] == '!') {
                if (tok_is(w[0].s, w[0].n, "!key"))
                        return parse_key_directive(ps, w, n_words);
                return perr(ps, w[0].col, "unknown directive (expected !key)");
        }
        if (n_words < 4)
                return perr(ps, n + 1, "expected %s", what[n_words]);
        if (n_words > 4)
                return perr(ps, w[4].col,
                            "unexpected text after the decision (a comment starts a line)");
        r.action = POLICY_N_ACTIONS;
        for (int a = 0; a < POLICY_N_ACTIONS; a++)
                if (tok_is(w[0].s, w[0].n, action_names[a]))
                        r.action = (PolicyAction)a;
        if (r.action == POLICY_N_ACTIONS)
                return perr(ps, w[0].col,
                            "unknown action (expected publish, subscribe, serve, call, admin or "
                            "import)");
        ret = parse_resource(ps, &w[1], &r);
        if (ret == 0)
                ret = parse_subject(ps, &w[2], &r);
        if (ret == 0 && tok_is(w[3].s, w[3].n, "allow"))
                r.allow = true;
        else if (ret == 0 && !tok_is(w[3].s, w[3].n, "deny"))
                ret = perr(ps, w[3].col, "expected allow or deny");
        r.file = file_name;
        r.line = ps->line;
        if (ret == 0)
                ret = add_rule(ps, &r);
        if (ret < 0) {
                free(r.resource);
                free(r.method);
        }
        return ret;
}

int policy_parse(Policy *p, const char *file, const char *text, size_t len, char *err, size_t n_err)
{
        Parser ps = {.p = p, .file = file, .line = 0, .err = err, .n_err = n_err};
        char **files;
        char *name;
        size_t i = 0;

        files = realloc(p->files, (p->n_files + 1) * sizeof(*files));
        if (!files)
                return -ENOMEM;
        p->files = files;
        name = strdup(file);
        if (!name)
                return -ENOMEM;
        p->files[p->n_files++] = name;
        while (i < len) {
                const char *nl = memchr(text + i, '\n', len - i);
                size_t n = nl ? (size_t)(nl - (text + i)) : len - i;
                const char *nul = memchr(text + i, '\0', n);
                int r;

                ps.line++;
                if (nul)
                        return perr(&ps, (size_t)(nul - (text + i)) + 1, "NUL byte");
                r = parse_line(&ps, text + i, n, name);
                if (r < 0)
                        return r;
                i += n + 1;
        }
        return 0;
}

/* --- loading ----------------------------------------------------------------------------- */

static int cmp_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_policy_file(const char *name)
{
        size_t n = strlen(name);

        return name[0] != '.' && n > 7 && strcmp(name + n - 7, ".policy") == 0;
}

/* Reads @path whole into a new buffer. Return: 0, -EFBIG, -errno. */
static int read_file(const char *path, char **ret, size_t *ret_len)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        size_t len = 0;
        char *buf;

        if (fd < 0)
                return -errno;
        buf = malloc(LIMIT_POLICY_FILE_BYTES + 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        for (;;) {
                ssize_t k = read(fd, buf + len, LIMIT_POLICY_FILE_BYTES + 1 - len);

                if (k < 0) {
                        int r = -errno;

                        free(buf);
                        close(fd);
                        return r;
                }
                if (k == 0)
                        break;
                len += (size_t)k;
                if (len > LIMIT_POLICY_FILE_BYTES) {
                        free(buf);
                        close(fd);
                        return -EFBIG;
                }
        }
        close(fd);
        *ret = buf;
        *ret_len = len;
        return 0;
}

static int load_names(const char *dir, char ***ret, size_t *ret_n, char *err, size_t n_err)
{
        DIR *d = opendir(dir);
        struct dirent *de;
        char **names = NULL;
        size_t n = 0;
        int r = 0;

        if (!d) {
                r = -errno;
                (void)snprintf(err, n_err, "%s: %s", dir, strerror(-r));
                return r;
        }
        while ((de = readdir(d))) {
                char **more;

                if (!is_policy_file(de->d_name))
                        continue;
                if (n == LIMIT_POLICY_FILES) {
                        (void)snprintf(err, n_err, "%s: more than %d *.policy files", dir,
                                       LIMIT_POLICY_FILES);
                        r = -E2BIG;
                        break;
                }
                more = realloc(names, (n + 1) * sizeof(*names));
                if (!more || !(more[n] = strdup(de->d_name))) {
                        names = more ? more : names;
                        r = -ENOMEM;
                        break;
                }
                names = more;
                n++;
        }
        closedir(d);
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        free(names[i]);
                free(names);
                return r;
        }
        if (n > 1)
                qsort(names, n, sizeof(*names), cmp_names);
        *ret = names;
        *ret_n = n;
        return 0;
}

int policy_load_dir(const char *dir, Policy **ret, char *err, size_t n_err)
{
        Policy *p = policy_new();
        char **names = NULL;
        size_t n = 0;
        int r;

        if (!p)
                return -ENOMEM;
        r = load_names(dir, &names, &n, err, n_err);
        for (size_t i = 0; r == 0 && i < n; i++) {
                char path[4096];
                char *text = NULL;
                size_t len = 0;

                if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= (int)sizeof(path)) {
                        (void)snprintf(err, n_err, "%s/%s: path too long", dir, names[i]);
                        r = -ENAMETOOLONG;
                        break;
                }
                r = read_file(path, &text, &len);
                if (r < 0) {
                        (void)snprintf(err, n_err, "%s: %s", path,
                                       r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
                        break;
                }
                r = policy_parse(p, path, text, len, err, n_err);
                if (r == -ENOMEM)
                        (void)snprintf(err, n_err, "%s: out of memory", path);
                free(text);
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        if (r < 0) {
                policy_free(p);
                return r;
        }
        *ret = p;
        return 0;
}
