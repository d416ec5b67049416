/*
 * xs-tree: node storage, permission rules, quotas and transaction layers (see xs-tree.h).
 *
 * Invariants: in the main tree every node except "/" and the special "@" nodes has its parent
 * in the table, listing it among its children; generations are unique and never 0. In a
 * layer, an entry is either a copy of a main-tree node (absent=false) or a record that the
 * node does not exist in this transaction's view (absent=true); dirty entries are the ones
 * the transaction changed. Subtrees are walked iteratively (no recursion over peer data).
 */
#include "xs-tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "xs-path.h"

typedef struct XsOwnerCount {
        uint32_t domid;
        uint32_t n;
} XsOwnerCount;

struct XsTree {
        XsNode **buckets;
        size_t n_buckets;
        size_t n_entries;
        XsTree *main; /* NULL for the main tree */
        uint64_t next_generation;
        XsOwnerCount *counts;
        size_t n_counts;
        size_t cap_counts;
};

static uint64_t hash_path(const char *s)
{
        uint64_t h = 1469598103934665603ull;

        for (; *s; s++) {
                h ^= (uint8_t)*s;
                h *= 1099511628211ull;
        }
        return h;
}

static XsNode *node_free(XsNode *n)
{
        if (n) {
                free(n->path);
                free(n->value);
                free(n->perms);
                free(n->children);
                free(n);
        }
        return NULL;
}

static XsNode **table_slot(const XsTree *t, const char *path)
{
        XsNode **slot = &t->buckets[hash_path(path) & (t->n_buckets - 1)];

        while (*slot && strcmp((*slot)->path, path) != 0)
                slot = &(*slot)->hnext;
        return slot;
}

static int table_grow(XsTree *t)
{
        size_t n = t->n_buckets * 2;
        XsNode **b = calloc(n, sizeof(XsNode *));

        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < t->n_buckets; i++) {
                XsNode *node = t->buckets[i];

                while (node) {
                        XsNode *next = node->hnext;
                        size_t k = hash_path(node->path) & (n - 1);

                        node->hnext = b[k];
                        b[k] = node;
                        node = next;
                }
        }
        free(t->buckets);
        t->buckets = b;
        t->n_buckets = n;
        return 0;
}

/* Inserts node (transferred), whose path must not be in the table yet. */
static int table_insert(XsTree *t, XsNode *node)
{
        size_t k;

        if (t->n_entries >= t->n_buckets && table_grow(t) < 0)
                return -ENOMEM;
        k = hash_path(node->path) & (t->n_buckets - 1);
        node->hnext = t->buckets[k];
        t->buckets[k] = node;
        t->n_entries++;
        return 0;
}

static XsNode *table_remove(XsTree *t, const char *path)
{
        XsNode **slot = table_slot(t, path), *node = *slot;

        if (node) {
                *slot = node->hnext;
                node->hnext = NULL;
                t->n_entries--;
        }
        return node;
}

static XsTree *tree_alloc(void)
{
        XsTree *t = calloc(1, sizeof(*t));

        if (!t)
                return NULL;
        t->n_buckets = 64;
        t->buckets = calloc(t->n_buckets, sizeof(XsNode *));
        if (!t->buckets) {
                free(t);
                return NULL;
        }
        t->next_generation = 1;
        return t;
}

XsTree *xs_tree_free(XsTree *t)
{
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_buckets; i++) {
                XsNode *node = t->buckets[i];

                while (node) {
                        XsNode *next = node->hnext;

                        node_free(node);
                        node = next;
                }
        }
        free(t->buckets);
        free(t->counts);
        free(t);
        return NULL;
}

/* ---- ownership counts ---- */

static XsOwnerCount *count_find(const XsTree *t, uint32_t domid)
{
        for (size_t i = 0; i < t->n_counts; i++)
                if (t->counts[i].domid == domid)
                        return &t->counts[i];
        return NULL;
}

uint32_t xs_tree_count_owned(const XsTree *t, uint32_t domid)
{
        const XsOwnerCount *c = count_find(t, domid);

        return c ? c->n : 0;
}

static int count_add(XsTree *t, uint32_t domid, int delta)
{
        XsOwnerCount *c = count_find(t, domid);

        if (!c) {
                if (delta <= 0)
                        return 0;
                if (t->n_counts == t->cap_counts) {
                        size_t cap = t->cap_counts ? t->cap_counts * 2 : 8;
                        XsOwnerCount *n = realloc(t->counts, cap * sizeof(*n));

                        if (!n)
                                return -ENOMEM;
                        t->counts = n;
                        t->cap_counts = cap;
                }
                c = &t->counts[t->n_counts++];
                c->domid = domid;
                c->n = 0;
        }
        if (delta < 0 && c->n < (uint32_t)-delta)
                c->n = 0;
        else
                c->n = (uint32_t)((int64_t)c->n + delta);
        return 0;
}

/* ---- node contents ---- */

static size_t node_size(uint32_t n_perms, size_t n_value, size_t n_children)
{
        return XS_NODE_HEADER_SIZE + (size_t)n_perms * XS_NODE_PERM_SIZE + n_value + n_children;
}

static bool size_allowed(const XsCaller *c, size_t size)
{
        return c->privileged || size < XS_QUOTA_NODE_SIZE;
}

static XsNode *node_new(const char *path, const XsPerm *perms, uint32_t n_perms)
{
        XsNode *n = calloc(1, sizeof(*n));

        if (!n)
                return NULL;
        n->path = strdup(path);
        n->perms = malloc(n_perms * sizeof(*perms));
        if (!n->path || !n->perms)
                return node_free(n);
        memcpy(n->perms, perms, n_perms * sizeof(*perms));
        n->n_perms = n_perms;
        return n;
}

static XsNode *node_copy(const XsNode *src)
{
        XsNode *n = node_new(src->path, src->perms, src->n_perms);

        if (!n)
                return NULL;
        if (src->n_value) {
                n->value = malloc(src->n_value);
                if (!n->value)
                        return node_free(n);
                memcpy(n->value, src->value, src->n_value);
                n->n_value = src->n_value;
        }
        if (src->n_children) {
                n->children = malloc(src->n_children);
                if (!n->children)
                        return node_free(n);
                memcpy(n->children, src->children, src->n_children);
                n->n_children = src->n_children;
        }
        n->generation = src->generation;
        return n;
}

/* Marks node changed: a fresh generation in the main tree, dirty in a layer. */
static void node_touch(XsTree *t, XsNode *n)
{
        if (t->main)
                n->dirty = true;
        else
                n->generation = t->next_generation++;
}

/* ---- lookup (records accesses in layers) ---- */

static XsNode *tree_get(XsTree *t, const char *path)
{
        XsNode *n = *table_slot(t, path), *m;

        if (n)
                return n->absent ? NULL : n;
        if (!t->main)
                return NULL;
        m = *table_slot(t->main, path);
        if (m) {
                n = node_copy(m);
                if (!n)
                        return NULL;
                n->base_generation = m->generation;
        } else {
                n = calloc(1, sizeof(*n));
                if (!n)
                        return NULL;
                n->path = strdup(path);
                if (!n->path)
                        return node_free(n);
                n->absent = true;
        }
        if (table_insert(t, n) < 0) {
                node_free(n);
                return NULL;
        }
        return n->absent ? NULL : n;
}

const XsNode *xs_tree_lookup(XsTree *t, const char *path)
{
        return tree_get(t, path);
}

size_t xs_tree_size(const XsTree *t)
{
        size_t n = 0;

        for (size_t i = 0; i < t->n_buckets; i++)
                for (const XsNode *node = t->buckets[i]; node; node = node->hnext)
                        if (!node->absent)
                                n++;
        return n;
}

static uint32_t access_for(const XsNode *n, const XsCaller *c)
{
        return xs_perm_for(n->perms, n->n_perms, c->domid, c->privileged);
}

/* The closest existing strict ancestor of path ("/" for special paths), or NULL. */
static XsNode *closest_ancestor(XsTree *t, const char *path)
{
        char buf[XS_PATH_BUF];

        if (path[0] == '@')
                return tree_get(t, "/");
        if (strlen(path) >= sizeof(buf) || xs_path_parent(path, buf, sizeof(buf)) < 0)
                return NULL;
        for (;;) {
                XsNode *n = tree_get(t, buf);

                if (n || strcmp(buf, "/") == 0)
                        return n;
                *strrchr(buf, '/') = 0;
                if (buf[0] == 0)
                        strcpy(buf, "/");
        }
}

/*
 * Xen's get_node(): the node if the caller has all of need on it; otherwise -EACCES, or
 * -ENOENT only if the caller has some of need on the closest existing ancestor (so that it
 * learns nothing about nodes it may not see).
 */
static int tree_get_checked(XsTree *t, const XsCaller *c, const char *path, uint32_t need,
                            XsNode **ret)
{
        XsNode *n = tree_get(t, path), *anc;
        int err;

        if (n && (access_for(n, c) & need) == need) {
                *ret = n;
                return 0;
        }
        err = n ? -EACCES : -ENOENT;
        anc = closest_ancestor(t, path);
        if (anc && (access_for(anc, c) & need))
                return err;
        return -EACCES;
}

int xs_tree_read(XsTree *t, const XsCaller *c, const char *path, const XsNode **ret)
{
        XsNode *n;
        int r = tree_get_checked(t, c, path, XS_ACC_READ, &n);

        if (r == 0)
                *ret = n;
        return r;
}

/* ---- creation ---- */

static int children_append(XsNode *parent, const char *name)
{
        size_t len = strlen(name) + 1;
        char *c = realloc(parent->children, parent->n_children + len);

        if (!c)
                return -ENOMEM;
        memcpy(c + parent->n_children, name, len);
        parent->children = c;
        parent->n_children += (uint32_t)len;
        return 0;
}

static void children_remove(XsNode *parent, const char *name)
{
        size_t off = 0, len = strlen(name) + 1;

        while (off < parent->n_children) {
                size_t l = strlen(parent->children + off) + 1;

                if (l == len && memcmp(parent->children + off, name, len) == 0) {
                        memmove(parent->children + off, parent->children + off + l,
                                parent->n_children - off - l);
                        parent->n_children -= (uint32_t)l;
                        return;
                }
                off += l;
        }
}

/*
 * Installs a new node at path (whose parent exists) in t, owned as Xen decides: inherited
 * from the parent, except that unprivileged creators own what they create.
 */
static XsNode *create_one(XsTree *t, const XsCaller *c, XsNode *parent, const char *path)
{
        XsNode *n = node_new(path, parent->perms, parent->n_perms), *old;

        if (!n)
                return NULL;
        if (!c->privileged)
                n->perms[0].domid = c->domid;
        if (children_append(parent, xs_path_basename(path)) < 0)
                return node_free(n);
        old = table_remove(t, path); /* an absent record in a layer */
        if (old) {
                n->base_generation = old->base_generation;
                node_free(old);
        }
        if (table_insert(t, n) < 0) {
                children_remove(parent, xs_path_basename(path));
                return node_free(n);
        }
        node_touch(t, n);
        node_touch(t, parent);
        count_add(t, n->perms[0].domid, 1);
        return n;
}

/* Creates path and its missing ancestors, all checks done before any change. */
static int create_path(XsTree *t, const XsCaller *c, const char *path, const uint8_t *value,
                       size_t n_value, XsNode **ret)
{
        char buf[XS_PATH_BUF];
        size_t n_new = 0, plen = strlen(path);
        XsNode *parent = NULL, *node = NULL;

        if (path[0] != '/' || plen >= sizeof(buf))
                return -EINVAL;
        /* Walk up to the closest existing ancestor, counting the nodes to create. */
        memcpy(buf, path, plen + 1);
        while (!parent) {
                char *slash = strrchr(buf, '/');

                n_new++;
                if (slash == buf)
                        slash[1] = 0;
                else
                        *slash = 0;
                parent = tree_get(t, buf);
                if (!parent && strcmp(buf, "/") == 0)
                        return -ENOMEM; /* no root: only on allocation failure */
        }
        if (!c->privileged) {
                const char *first = path + (parent->path[1] == 0 ? 1 : strlen(parent->path) + 1);
                size_t last = node_size(parent->n_perms, n_value, 0);
                size_t grown = node_size(parent->n_perms, parent->n_value,
                                         parent->n_children + strcspn(first, "/") + 1);

                if (xs_tree_count_owned(t, c->domid) + n_new > XS_QUOTA_NODES)
                        return -ENOSPC;
                if (!size_allowed(c, last) || !size_allowed(c, grown))
                        return -ENOSPC;
        }
        /* Walk down creating each missing level. */
        while (n_new > 0) {
                size_t n_parent = strlen(parent->path);
                const char *end;

                end = strchr(path + (n_parent == 1 ? 1 : n_parent + 1), '/');
                memcpy(buf, path, end ? (size_t)(end - path) : plen);
                buf[end ? (size_t)(end - path) : plen] = 0;
                node = create_one(t, c, parent, buf);
                if (!node)
                        return -ENOMEM;
                parent = node;
                n_new--;
        }
        if (n_value) {
                node->value = malloc(n_value);
                if (!node->value)
                        return -ENOMEM;
                memcpy(node->value, value, n_value);
                node->n_value = (uint32_t)n_value;
        }
        *ret = node;
        return 0;
}

int xs_tree_write(XsTree *t, const XsCaller *c, const char *path, const uint8_t *value, size_t n,
                  XsChangeFn fn, void *userdata)
{
        XsNode *node;
        int r;

        if (path[0] != '/')
                return -EINVAL;
        r = tree_get_checked(t, c, path, XS_ACC_WRITE, &node);
        if (r == -ENOENT) {
                r = create_path(t, c, path, value, n, &node);
        } else if (r == 0) {
                uint8_t *v = NULL;

                if (!size_allowed(c, node_size(node->n_perms, n, node->n_children)))
                        return -ENOSPC;
                if (n) {
                        v = malloc(n);
                        if (!v)
                                return -ENOMEM;
                        memcpy(v, value, n);
                }
                free(node->value);
                node->value = v;
                node->n_value = (uint32_t)n;
                node_touch(t, node);
        }
        if (r == 0 && fn)
                fn(userdata, path, false, node->perms, node->n_perms, NULL, 0);
        return r;
}

int xs_tree_mkdir(XsTree *t, const XsCaller *c, const char *path, XsChangeFn fn, void *userdata)
{
        XsNode *node;
        int r;

        if (path[0] != '/')
                return -EINVAL;
        r = tree_get_checked(t, c, path, XS_ACC_WRITE, &node);
        if (r != -ENOENT)
                return r;
        r = create_path(t, c, path, NULL, 0, &node);
        if (r == 0 && fn)
                fn(userdata, path, false, node->perms, node->n_perms, NULL, 0);
        return r;
}

/* ---- removal ---- */

typedef struct PathList {
        char **v;
        size_t n;
        size_t cap;
} PathList;

static void pathlist_deinit(PathList *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i]);
        free(l->v);
}

static int pathlist_add(PathList *l, const char *a, const char *b)
{
        char *s;

        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 16;
                char **v = realloc(l->v, cap * sizeof(*v));

                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->cap = cap;
        }
        if (b) {
                size_t na = strlen(a), nb = strlen(b);

                s = malloc(na + nb + 2);
                if (!s)
                        return -ENOMEM;
                memcpy(s, a, na);
                s[na] = '/';
                memcpy(s + na + 1, b, nb + 1);
        } else {
                s = strdup(a);
                if (!s)
                        return -ENOMEM;
        }
        l->v[l->n++] = s;
        return 0;
}

/* Deletes node from t: removed from the main tree, marked absent in a layer. */
static void delete_one(XsTree *t, XsNode *node)
{
        count_add(t, node->perms[0].domid, -1);
        if (t->main) {
                free(node->value);
                free(node->perms);
                free(node->children);
                node->value = NULL;
                node->children = NULL;
                node->perms = NULL;
                node->n_value = node->n_children = node->n_perms = 0;
                node->absent = true;
                node->dirty = true;
        } else {
                node_free(table_remove(t, node->path));
        }
}

int xs_tree_rm(XsTree *t, const XsCaller *c, const char *path, XsChangeFn fn, void *userdata)
{
        char parent_path[XS_PATH_BUF];
        XsNode *node, *parent;
        PathList all = {0};
        int r;

        if (path[0] != '/' || strlen(path) >= sizeof(parent_path))
                return -EINVAL;
        r = tree_get_checked(t, c, path, XS_ACC_WRITE, &node);
        if (r == -ENOENT) {
                if (xs_path_parent(path, parent_path, sizeof(parent_path)) == 0 &&
                    tree_get(t, parent_path))
                        return 0;
                return -ENOENT;
        }
        if (r < 0)
                return r;
        if (strcmp(path, "/") == 0)
                return -EINVAL;
        /* Breadth-first list of the subtree; parents come before their children. */
        r = pathlist_add(&all, path, NULL);
        for (size_t i = 0; r == 0 && i < all.n; i++) {
                XsNode *n = tree_get(t, all.v[i]);

                for (size_t off = 0; n && r == 0 && off < n->n_children;
                     off += strlen(n->children + off) + 1)
                        r = pathlist_add(&all, all.v[i], n->children + off);
        }
        if (r < 0) {
                pathlist_deinit(&all);
                return r;
        }
        /* Children first, as Xen's tree walk does; the root last, firing non-exact. */
        for (size_t i = all.n; i-- > 0;) {
                XsNode *n = tree_get(t, all.v[i]);

                if (!n)
                        continue;
                if (fn)
                        fn(userdata, n->path, i != 0, n->perms, n->n_perms, NULL, 0);
                delete_one(t, n);
        }
        pathlist_deinit(&all);
        xs_path_parent(path, parent_path, sizeof(parent_path));
        parent = tree_get(t, parent_path);
        if (parent) {
                children_remove(parent, xs_path_basename(path));
                node_touch(t, parent);
        }
        return 0;
}

/* ---- permissions ---- */

int xs_tree_set_perms(XsTree *t, const XsCaller *c, const char *path, const XsPerm *perms,
                      size_t n_perms, XsChangeFn fn, void *userdata)
{
        XsPerm *np, *old;
        XsNode *node;
        uint32_t old_n;
        int r;

        if (n_perms == 0)
                return -EINVAL;
        if (!c->privileged && n_perms > XS_QUOTA_PERMS)
                return -ENOSPC;
        r = tree_get_checked(t, c, path, XS_ACC_WRITE | XS_ACC_OWNER, &node);
        if (r < 0)
                return r;
        if (!c->privileged && perms[0].domid != node->perms[0].domid)
                return -EPERM;
        if (!size_allowed(c, node_size((uint32_t)n_perms, node->n_value, node->n_children)))
                return -ENOSPC;
        np = malloc(n_perms * sizeof(*np));
        if (!np)
                return -ENOMEM;
        memcpy(np, perms, n_perms * sizeof(*np));
        for (size_t i = 0; i < n_perms; i++)
                np[i].access &= XS_ACC_READ | XS_ACC_WRITE;
        if (node->path[0] != '@') {
                count_add(t, node->perms[0].domid, -1);
                count_add(t, np[0].domid, 1);
        }
        old = node->perms;
        old_n = node->n_perms;
        node->perms = np;
        node->n_perms = (uint32_t)n_perms;
        node_touch(t, node);
        if (fn)
                fn(userdata, path, false, np, n_perms, old, old_n);
        free(old);
        return 0;
}

void xs_tree_forget_domain(XsTree *t, uint32_t domid)
{
        for (size_t i = 0; i < t->n_buckets; i++) {
                for (XsNode *n = t->buckets[i]; n; n = n->hnext) {
                        bool changed = false;
                        uint32_t k = 1;

                        if (n->absent)
                                continue;
                        if (n->perms[0].domid == domid) {
                                n->perms[0].domid = 0;
                                changed = true;
                        }
                        for (uint32_t j = 1; j < n->n_perms; j++) {
                                if (n->perms[j].domid == domid) {
                                        changed = true;
                                        continue;
                                }
                                n->perms[k++] = n->perms[j];
                        }
                        n->n_perms = k;
                        if (changed)
                                node_touch(t, n);
                }
        }
        count_add(t, 0, (int)xs_tree_count_owned(t, domid));
        count_add(t, domid, -(int)xs_tree_count_owned(t, domid));
}

/* ---- construction and commit ---- */

static int add_initial(XsTree *t, const char *path)
{
        static const XsPerm none0 = {.domid = 0, .access = XS_ACC_NONE};
        XsNode *n = node_new(path, &none0, 1);
        char parent_path[XS_PATH_BUF];

        if (!n)
                return -ENOMEM;
        if (table_insert(t, n) < 0) {
                node_free(n);
                return -ENOMEM;
        }
        node_touch(t, n);
        count_add(t, 0, 1);
        if (path[0] == '/' && path[1] != 0) {
                XsNode *parent;

                xs_path_parent(path, parent_path, sizeof(parent_path));
                parent = tree_get(t, parent_path);
                if (!parent || children_append(parent, xs_path_basename(path)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

XsTree *xs_tree_new(void)
{
        static const char *const initial[] = {
                "/",
                "/tool",
                "/tool/xenstored",
                "/local",
                "/local/domain",
                "@introduceDomain",
                "@releaseDomain",
        };
        XsTree *t = tree_alloc();

        if (!t)
                return NULL;
        for (size_t i = 0; i < sizeof(initial) / sizeof(initial[0]); i++)
                if (add_initial(t, initial[i]) < 0)
                        return xs_tree_free(t);
        return t;
}

XsTree *xs_tree_layer_new(XsTree *main)
{
        XsTree *t = tree_alloc();

        if (!t)
                return NULL;
        t->main = main;
        if (main->n_counts) {
                t->counts = malloc(main->n_counts * sizeof(*t->counts));
                if (!t->counts)
                        return xs_tree_free(t);
                memcpy(t->counts, main->counts, main->n_counts * sizeof(*t->counts));
                t->n_counts = t->cap_counts = main->n_counts;
        }
        return t;
}

int xs_tree_layer_commit(XsTree *layer)
{
        XsTree *m = layer->main;

        for (size_t i = 0; i < layer->n_buckets; i++) {
                for (XsNode *e = layer->buckets[i]; e; e = e->hnext) {
                        XsNode *cur = *table_slot(m, e->path);

                        if ((cur ? cur->generation : 0) != e->base_generation)
                                return -EAGAIN;
                }
        }
        /* Copy first so that an allocation failure leaves the main tree untouched. */
        for (size_t i = 0; i < layer->n_buckets; i++) {
                for (XsNode *e = layer->buckets[i]; e; e = e->hnext) {
                        XsNode *cur, *copy;

                        if (!e->dirty)
                                continue;
                        cur = table_remove(m, e->path);
                        if (cur) {
                                count_add(m, cur->perms[0].domid, -1);
                                node_free(cur);
                        }
                        if (e->absent)
                                continue;
                        copy = node_copy(e);
                        if (!copy || table_insert(m, copy) < 0) {
                                node_free(copy);
                                return -ENOMEM;
                        }
                        copy->base_generation = 0;
                        node_touch(m, copy);
                        count_add(m, copy->perms[0].domid, 1);
                }
        }
        return 0;
}
