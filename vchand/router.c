/* SPDX-License-Identifier: MIT */
/*
 * router: the subscription trie. Each node stands for a token sequence; its children are a small
 * open-addressing table keyed by token, plus one `*` child. A node keeps two subscription lists:
 * patterns that end exactly at it, and patterns that end with `>` after it. A node with no
 * subscriptions and no children is freed at once, so the trie's size follows the live patterns.
 */
#include "router.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "name.h"

struct RouterNode {
        RouterNode *parent;
        char *token;           /* NULL for the root and for `*` nodes */
        bool star;             /* this is its parent's `*` child */
        RouterNode **children; /* open addressing, n_slots a power of two */
        uint32_t n_slots;
        uint32_t n_children; /* literal children */
        RouterNode *star_child;
        RouterSub *exact; /* patterns ending here */
        RouterSub *tail;  /* patterns ending with `>` after this node */
};

static uint32_t token_hash(const char *s, size_t n)
{
        uint32_t h = 2166136261u;

        for (size_t i = 0; i < n; i++)
                h = (h ^ (uint8_t)s[i]) * 16777619u;
        return h;
}

static RouterNode *node_new(RouterNode *parent, const char *token, size_t n, bool star)
{
        RouterNode *node = calloc(1, sizeof(*node));

        if (!node)
                return NULL;
        if (token) {
                node->token = strndup(token, n);
                if (!node->token) {
                        free(node);
                        return NULL;
                }
        }
        node->parent = parent;
        node->star = star;
        return node;
}

static RouterNode **child_slot(const RouterNode *node, const char *tok, size_t n)
{
        if (node->n_slots == 0)
                return NULL;
        for (uint32_t i = token_hash(tok, n) & (node->n_slots - 1);;
             i = (i + 1) & (node->n_slots - 1)) {
                RouterNode *c = node->children[i];

                if (!c || (strncmp(c->token, tok, n) == 0 && c->token[n] == '\0'))
                        return &node->children[i];
        }
}

static RouterNode *child_get(const RouterNode *node, const char *tok, size_t n)
{
        RouterNode **slot = child_slot(node, tok, n);

        return slot ? *slot : NULL;
}

static int children_grow(RouterNode *node)
{
        uint32_t n = node->n_slots ? node->n_slots * 2 : 4;
        RouterNode **t = calloc(n, sizeof(*t));

        if (!t)
                return -ENOMEM;
        for (uint32_t i = 0; i < node->n_slots; i++) {
                RouterNode *c = node->children[i];
                uint32_t k;

                if (!c)
                        continue;
                for (k = token_hash(c->token, strlen(c->token)) & (n - 1); t[k];
                     k = (k + 1) & (n - 1))
                        ;
                t[k] = c;
        }
        free(node->children);
        node->children = t;
        node->n_slots = n;
        return 0;
}

/* Removes a literal child, re-inserting the rest of its probe chain. */
static void children_remove(RouterNode *node, RouterNode *child)
{
        uint32_t mask = node->n_slots - 1, i;

        for (i = token_hash(child->token, strlen(child->token)) & mask; node->children[i] != child;
             i = (i + 1) & mask)
                ;
        node->children[i] = NULL;
        node->n_children--;
        for (i = (i + 1) & mask; node->children[i]; i = (i + 1) & mask) {
                RouterNode *c = node->children[i];
                uint32_t k;

                node->children[i] = NULL;
                for (k = token_hash(c->token, strlen(c->token)) & mask; node->children[k];
                     k = (k + 1) & mask)
                        ;
                node->children[k] = c;
        }
}

static RouterNode *child_add(Router *r, RouterNode *node, const char *tok, size_t n)
{
        RouterNode **slot, *c;

        if ((node->n_children + 1) * 2 > node->n_slots && children_grow(node) < 0)
                return NULL;
        /* Never NULL once the table has slots; checked, so that no path dereferences NULL. */
        slot = child_slot(node, tok, n);
        if (!slot)
                return NULL;
        c = node_new(node, tok, n, false);
        if (!c)
                return NULL;
        *slot = c;
        node->n_children++;
        r->n_nodes++;
        return c;
}

static bool node_is_empty(const RouterNode *node)
{
        return !node->exact && !node->tail && node->n_children == 0 && !node->star_child;
}

/* Frees @node and every ancestor that becomes empty, stopping at the root. */
static void node_prune(Router *r, RouterNode *node)
{
        while (node && node != r->root && node_is_empty(node)) {
                RouterNode *parent = node->parent;

                if (node->star)
                        parent->star_child = NULL;
                else
                        children_remove(parent, node);
                free(node->children);
                free(node->token);
                free(node);
                r->n_nodes--;
                node = parent;
        }
}

int router_init(Router *r)
{
        *r = (Router){0};
        r->root = node_new(NULL, NULL, 0, false);
        return r->root ? 0 : -ENOMEM;
}

/* Frees the whole trie without recursion: detach leaves until only the root is left. */
void router_deinit(Router *r)
{
        RouterNode *node = r->root;

        while (node) {
                RouterNode *next = NULL;

                if (node->star_child) {
                        next = node->star_child;
                        node->star_child = NULL;
                } else {
                        for (uint32_t i = 0; i < node->n_slots && !next; i++) {
                                if (node->children[i]) {
                                        next = node->children[i];
                                        node->children[i] = NULL;
                                }
                        }
                }
                if (next) {
                        node = next;
                        continue;
                }
                for (RouterSub *s = node->exact; s; s = s->next)
                        s->node = NULL;
                for (RouterSub *s = node->tail; s; s = s->next)
                        s->node = NULL;
                next = node->parent;
                free(node->children);
                free(node->token);
                free(node);
                node = next;
        }
        *r = (Router){0};
}

static void list_push(RouterSub **head, RouterSub *sub)
{
        sub->prev = NULL;
        sub->next = *head;
        if (*head)
                (*head)->prev = sub;
        *head = sub;
}

int router_add(Router *r, const char *pattern, size_t len, RouterSub *sub)
{
        RouterNode *node = r->root;
        size_t start = 0;
        bool tail = false;

        if (!vbus__name_is_pattern(pattern, len))
                return -EINVAL;
        if (sub->node)
                return -EBUSY;
        for (size_t i = 0; i <= len; i++) {
                const char *tok = pattern + start;
                size_t n = i - start;
                RouterNode *next;

                if (i < len && pattern[i] != '.')
                        continue;
                start = i + 1;
                if (n == 1 && tok[0] == '>') {
                        tail = true;
                        break;
                }
                if (n == 1 && tok[0] == '*') {
                        next = node->star_child;
                        if (!next) {
                                next = node_new(node, NULL, 0, true);
                                if (!next)
                                        goto fail;
                                node->star_child = next;
                                r->n_nodes++;
                        }
                } else {
                        next = child_get(node, tok, n);
                        if (!next)
                                next = child_add(r, node, tok, n);
                        if (!next)
                                goto fail;
                }
                node = next;
        }
        sub->node = node;
        sub->tail = tail;
        list_push(tail ? &node->tail : &node->exact, sub);
        r->n_subs++;
        r->gen++;
        return 0;
fail:
        node_prune(r, node);
        return -ENOMEM;
}

void router_remove(Router *r, RouterSub *sub)
{
        RouterNode *node = sub->node;
        RouterSub **head;

        if (!node)
                return;
        head = sub->tail ? &node->tail : &node->exact;
        if (sub->prev)
                sub->prev->next = sub->next;
        else
                *head = sub->next;
        if (sub->next)
                sub->next->prev = sub->prev;
        sub->node = NULL;
        sub->prev = sub->next = NULL;
        r->n_subs--;
        r->gen++;
        node_prune(r, node);
}

int router_match(Router *r, const char *topic, size_t len, RouterMatchFn fn, void *userdata)
{
        /* At most two entries are pushed per level: the stack never exceeds 2 * tokens + 1. */
        struct {
                RouterNode *node;
                uint32_t depth;
        } stack[2 * VBUS_TOPIC_TOKENS_MAX + 2];
        const char *tok[VBUS_TOPIC_TOKENS_MAX];
        size_t tok_len[VBUS_TOPIC_TOKENS_MAX];
        uint32_t n_tok = 0, sp = 0;
        size_t start = 0;

        if (!vbus__name_is_topic(topic, len))
                return -EINVAL;
        for (size_t i = 0; i <= len; i++) {
                if (i < len && topic[i] != '.')
                        continue;
                tok[n_tok] = topic + start;
                tok_len[n_tok] = i - start;
                n_tok++;
                start = i + 1;
        }

        stack[sp].node = r->root;
        stack[sp].depth = 0;
        sp++;
        while (sp > 0) {
                RouterNode *node, *child;
                uint32_t depth;
                int k;

                sp--;
                node = stack[sp].node;
                depth = stack[sp].depth;
                if (depth == n_tok) {
                        for (RouterSub *s = node->exact; s; s = s->next)
                                if ((k = fn(s, userdata)) != 0)
                                        return k;
                        continue;
                }
                /* One or more tokens remain: `>` after this node matches them all. */
                for (RouterSub *s = node->tail; s; s = s->next)
                        if ((k = fn(s, userdata)) != 0)
                                return k;
                child = child_get(node, tok[depth], tok_len[depth]);
                if (child) {
                        stack[sp].node = child;
                        stack[sp].depth = depth + 1;
                        sp++;
                }
                if (node->star_child) {
                        stack[sp].node = node->star_child;
                        stack[sp].depth = depth + 1;
                        sp++;
                }
        }
        return 0;
}
