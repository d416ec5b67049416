/* SPDX-License-Identifier: MIT */
/*
 * policy: who may publish, subscribe, serve, call, administer and import what (docs/policy.md,
 * vchand-policy(5)). A Policy is the ordered list of rules of the *.policy files of a directory,
 * read in name order; the first rule that matches a request decides, and a request no rule
 * matches is denied ("default deny"), as in qrexec's policy.
 *
 * This module is pure: it knows nothing of peers, streams or the bus. The parser turns text into
 * rules and reports the first error as FILE:LINE:COLUMN; the evaluator answers a question about a
 * PolicySubject (the caller fills it from the broker's Identity). access.c applies the answers.
 *
 * Invariants: a Policy is immutable once loaded (a reload builds a new one and swaps it), so a
 * rule pointer returned by the evaluator stays valid as long as its Policy.
 */
#ifndef VCHAND_POLICY_H
#define VCHAND_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a rule governs (the first column of a rule). */
typedef enum PolicyAction {
        POLICY_PUBLISH,   /* resource: topic pattern */
        POLICY_SUBSCRIBE, /* resource: topic pattern */
        POLICY_SERVE,     /* resource: service pattern */
        POLICY_CALL,      /* resource: service pattern, optionally /method */
        POLICY_ADMIN,     /* resource: list, monitor, kick, reload or * */
        POLICY_IMPORT,    /* resource: topic pattern, reserved for the bridge (federation.md) */
        POLICY_N_ACTIONS,
} PolicyAction;

typedef enum PolicySubjectKind {
        POLICY_SUBJ_ANYONE,  /* "*" */
        POLICY_SUBJ_ANYVM,   /* @anyvm: any guest over vchan other than domain 0 */
        POLICY_SUBJ_ADMINVM, /* @adminvm: domain 0 over vchan */
        POLICY_SUBJ_NAME,    /* a bare name: a guest over vchan by its xenstore name */
        POLICY_SUBJ_DOMID,   /* @id:N: a guest over vchan by domid */
        POLICY_SUBJ_TAG,     /* @tag:T: a guest the toolstack tagged T */
        POLICY_SUBJ_LOCAL,   /* @local: any local UNIX peer */
        POLICY_SUBJ_UID,     /* @uid:N: a local UNIX peer by uid */
        POLICY_SUBJ_GID,     /* @gid:N: a local UNIX peer by primary gid */
        /* @key:BASE64, or @key:NAME (a key named by !key, else by the broker's keyring): a peer
         * that proved that key (channel auth) */
        POLICY_SUBJ_KEY,
} PolicySubjectKind;

enum {
        /* Bytes of an Ed25519 public key, the principal of @key: subjects. */
        POLICY_KEY_BYTES = 32,
        /* Longest domain name, tag, or key name in a rule (xenstore's domain names are short). */
        POLICY_NAME_MAX = 64,
};

typedef struct PolicyRule {
        PolicyAction action;
        PolicySubjectKind subject;
        bool allow;
        bool self;    /* the resource has a @self token */
        bool keyring; /* @key:NAME names a key of the broker's keyring (in name), not a !key */
        uint32_t id;  /* domid, uid or gid */
        char name[POLICY_NAME_MAX + 1]; /* domain name, tag, or keyring key name */
        uint8_t key[POLICY_KEY_BYTES];
        char *resource;   /* pattern (for call: service pattern) */
        char *method;     /* call only: the method, "*", or NULL (any method) */
        const char *file; /* the file's name, owned by the Policy */
        uint32_t line;
} PolicyRule;

typedef struct Policy Policy;

/* Who asks: what the broker established from the transport. Strings are borrowed. */
typedef struct PolicySubject {
        const char *name;     /* the domain's xenstore name, "" if unknown */
        const char *tags;     /* toolstack tags, space-separated ("" if none) */
        const uint8_t *key;   /* with has_key: the key the peer proved (channel auth) */
        const char *key_name; /* the keyring's name of that key, "" if none */
        uint32_t domid;       /* the domain of a vchan peer */
        uint32_t uid, gid;
        bool local; /* a UNIX peer of the broker (uid, gid valid) */
        bool has_key;
} PolicySubject;

/* What a subscription pattern may receive (policy_check_pattern). */
typedef enum PolicyScope {
        POLICY_SCOPE_NONE, /* no topic it can match is allowed */
        POLICY_SCOPE_ALL,  /* every topic it can match is allowed */
        POLICY_SCOPE_SOME, /* some are: deliver only the topics policy_check() allows */
} PolicyScope;

/* Policy_new() - an empty policy (it denies everything). Return: NULL on -ENOMEM. */
Policy *policy_new(void);

/* Frees @p. Accepts NULL; returns NULL. */
Policy *policy_free(Policy *p);

/**
 * policy_parse() - append the rules of one file's text to @p.
 * @file: the name used in errors and in the rules' origin (copied).
 * @text, @len: borrowed; need not be NUL-terminated (a NUL byte is an error).
 * @err: on error, "FILE:LINE:COLUMN: what" (cut to @n_err).
 * Return: 0; -EINVAL (a syntax error: @p may hold the rules before it, discard it); -E2BIG (over
 * LIMIT_POLICY_RULES); -ENOMEM.
 */
int policy_parse(Policy *p, const char *file, const char *text, size_t len, char *err,
                 size_t n_err);

/**
 * policy_load_dir() - a new Policy from the *.policy files of @dir, in name order.
 * @err: on error, the first error as "FILE:LINE:COLUMN: what" or "DIR: what".
 * Return: 0 and the policy in *@ret; -errno (nothing in *@ret).
 */
int policy_load_dir(const char *dir, Policy **ret, char *err, size_t n_err);

/* Rules in @p, and the @i-th (borrowed; i < policy_get_n_rules()). */
size_t policy_get_n_rules(const Policy *p);
const PolicyRule *policy_get_rule(const Policy *p, size_t i);

/**
 * policy_check() - may @s do @action on @resource?
 * @resource: a topic (publish, subscribe), a service (serve), "service/method" (call), or an
 *            admin class (admin: policy_admin_class()).
 * @ret_rule: the rule that decided, or NULL for the default deny (always written).
 * A publish on a topic that an import rule's pattern covers is decided by the import rules alone
 * (the reserved prefix of the bridge): the first import rule that matches subject and topic, and
 * deny when none does, whatever the publish rules say.
 * Return: true to allow.
 */
bool policy_check(const Policy *p, const PolicySubject *s, PolicyAction action,
                  const char *resource, const PolicyRule **ret_rule);

/**
 * policy_check_pattern() - what a subscription to @pattern may receive.
 * @ret_rule: the rule that decided for POLICY_SCOPE_ALL or _NONE (NULL: default deny); NULL for
 *            _SOME (always written).
 */
PolicyScope policy_check_pattern(const Policy *p, const PolicySubject *s, const char *pattern,
                                 const PolicyRule **ret_rule);

/**
 * policy_relevant_rules() - the subscribe rules that can decide a topic of @pattern for @s: those
 * whose subject is @s and whose pattern meets @pattern, in order. For a topic the pattern
 * matches, policy_check_rules() over them decides as policy_check() over the whole policy.
 * @ret: up to @max rule pointers (borrowed from @p).
 * Return: how many; -E2BIG when there are more than @max (use policy_check()).
 */
int policy_relevant_rules(const Policy *p, const PolicySubject *s, const char *pattern,
                          const PolicyRule **ret, size_t max);

/* The first of @rules (from policy_relevant_rules() for @s) matching @topic allows? */
bool policy_check_rules(const PolicyRule *const *rules, size_t n, const PolicySubject *s,
                        const char *topic);

/* Whether some import rule allows @s (the bridge right: the vbus-bridge-origin header). */
bool policy_has_bridge_right(const Policy *p, const PolicySubject *s);

/* The admin class ("list", "monitor", "kick", "reload") of a vbus.v1.Broker method name. */
const char *policy_admin_class(const char *method);

/* The name of @a as written in rules. */
const char *policy_action_name(PolicyAction a);

#endif /* VCHAND_POLICY_H */
