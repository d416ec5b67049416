/* SPDX-License-Identifier: MIT */
/*
 * router: where a topic is matched. A trie of subscription patterns, one level per token, with
 * a `*` child per node and a list of `>` subscriptions per node (docs/protocol.md section 6).
 * Matching a topic walks at most two children per level (the literal token and `*`), so its cost
 * depends on the topic's depth and on the patterns that actually match, never on the number of
 * subscriptions. No recursion: the walk uses an explicit stack bounded by the token limit.
 *
 * Ownership: the router owns its nodes; a RouterSub is embedded in its owner (a subscription
 * stream), which must remove it before freeing it.
 */
#ifndef VCHAND_ROUTER_H
#define VCHAND_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct RouterNode RouterNode;

/* A subscription's place in the router; embed it in the subscription. */
typedef struct RouterSub {
        RouterNode *node;       /* NULL while not in a router */
        bool tail;              /* pattern ends with ">" */
        struct RouterSub *prev; /* in the node's list */
        struct RouterSub *next;
} RouterSub;

#define ROUTER_SUB_NULL                                                                            \
        {                                                                                          \
                0                                                                                  \
        }

typedef struct Router {
        RouterNode *root;
        uint64_t n_subs;
        uint64_t gen; /* changes with every add and remove: lets callers cache match results */
        uint64_t n_nodes;
} Router;

/* Called for each matching subscription; a non-zero return stops the walk and is returned. */
typedef int (*RouterMatchFn)(RouterSub *sub, void *userdata);

int router_init(Router *r);
void router_deinit(Router *r);

/**
 * router_add() - subscribe @sub to @pattern.
 * @pattern, @len: borrowed; must satisfy vbus__name_is_pattern() (-EINVAL otherwise).
 * @sub: borrowed until router_remove(); must not be in a router already (-EBUSY).
 * Return: 0, -EINVAL, -EBUSY, -ENOMEM.
 */
int router_add(Router *r, const char *pattern, size_t len, RouterSub *sub);

/* Removes @sub (no-op when not added) and prunes nodes left empty. */
void router_remove(Router *r, RouterSub *sub);

/**
 * router_match() - call @fn for every subscription whose pattern matches @topic.
 * @topic, @len: borrowed; must satisfy vbus__name_is_topic() (-EINVAL otherwise).
 * Each subscription is reported at most once. @fn must not add or remove subscriptions.
 * Return: 0, -EINVAL, or the first non-zero return of @fn.
 */
int router_match(Router *r, const char *topic, size_t len, RouterMatchFn fn, void *userdata);

#endif /* VCHAND_ROUTER_H */
