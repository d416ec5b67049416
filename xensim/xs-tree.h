/*
 * xs-tree: the xenstore node tree, its permission checks and its per-domain quotas.
 *
 * Nodes live in a hash table keyed by canonical path; each node keeps its value, its
 * permission list, its children as a NUL-separated list of names in creation order (the form
 * XS_DIRECTORY sends), and a generation number that changes on every modification.
 *
 * A tree is either the main tree or a transaction layer over the main tree. A layer copies a
 * node the first time the transaction touches it (remembering the node's generation in the
 * main tree, or that it was absent) and works on its copies from then on, so a transaction
 * reads a stable snapshot of everything it looked at. Committing a layer fails with -EAGAIN
 * if any node it looked at changed in the main tree since; otherwise the layer's changes are
 * installed. This is the conflict rule of Xen's C xenstored.
 *
 * Every operation takes the caller's identity and applies Xen's rules: read access to read,
 * write access to modify, write access to the closest existing ancestor to create, WRITE and
 * OWNER to change permissions, and ENOENT turned into EACCES when the caller may not know
 * whether the node exists. Quotas (xs-limits.h) apply to unprivileged callers only.
 * Changes are reported through an XsChangeFn so that the caller can fire watches.
 * Paths given to these functions must already be canonical (xs-path.h).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xs-limits.h"
#include "xs-perm.h"

typedef struct XsNode XsNode;
typedef struct XsTree XsTree;

struct XsNode {
        XsNode *hnext;
        char *path;
        uint8_t *value;
        uint32_t n_value;
        XsPerm *perms;
        uint32_t n_perms;
        char *children;      /* NUL-terminated names, back to back */
        uint32_t n_children; /* bytes in children */
        uint64_t generation;
        /* Layer bookkeeping (unused in the main tree). */
        bool absent;
        bool dirty;
        uint64_t base_generation; /* 0: absent from the main tree when first seen */
};

typedef struct XsCaller {
        uint32_t domid;
        bool privileged;
} XsCaller;

/*
 * Called for every change: path changed (borrowed), exact (only watches on exactly this path
 * fire, used for the nodes below the root of a removal), the node's permissions (before a
 * removal, after other changes) and, for a permission change, the old permissions (else NULL).
 */
typedef void (*XsChangeFn)(void *userdata, const char *path, bool exact, const XsPerm *perms,
                           size_t n_perms, const XsPerm *old_perms, size_t n_old_perms);

/* A new main tree holding "/", "/tool", "/tool/xenstored", "/local", "/local/domain" and the
 * special nodes "@introduceDomain" and "@releaseDomain", all owned by domain 0 with no access
 * for others. Returns NULL on allocation failure. */
XsTree *xs_tree_new(void);

/* Frees a tree or layer; accepts NULL; returns NULL. */
XsTree *xs_tree_free(XsTree *t);

/* A transaction layer over main (borrowed; must outlive the layer). NULL on ENOMEM. */
XsTree *xs_tree_layer_new(XsTree *main);

/*
 * Installs the layer's changes into its main tree. Returns 0, -EAGAIN if a node the layer
 * looked at has changed in the main tree meanwhile (nothing is installed), or -ENOMEM. The
 * layer must be freed afterwards either way.
 */
int xs_tree_layer_commit(XsTree *layer);

/* The node at path without permission checks (NULL if absent). In a layer this records the
 * access, as any access does. The node is borrowed until the next change to the tree. */
const XsNode *xs_tree_lookup(XsTree *t, const char *path);

/* Read access to path: 0 and the node (borrowed until the next change), -ENOENT, -EACCES. */
int xs_tree_read(XsTree *t, const XsCaller *c, const char *path, const XsNode **ret);

/*
 * Writes value (n bytes, borrowed) to path, creating it and missing ancestors. Returns 0,
 * -EACCES, -ENOSPC (node-count or node-size quota), -EINVAL (special path), -ENOMEM.
 */
int xs_tree_write(XsTree *t, const XsCaller *c, const char *path, const uint8_t *value, size_t n,
                  XsChangeFn fn, void *userdata);

/* Creates path with an empty value if absent (0 if it exists). Errors as xs_tree_write. */
int xs_tree_mkdir(XsTree *t, const XsCaller *c, const char *path, XsChangeFn fn, void *userdata);

/*
 * Removes path and everything below it. Removing an absent node whose parent exists succeeds.
 * Returns 0, -ENOENT, -EACCES, -EINVAL ("/" or a special path), -ENOMEM.
 */
int xs_tree_rm(XsTree *t, const XsCaller *c, const char *path, XsChangeFn fn, void *userdata);

/*
 * Replaces the permissions of path (special paths allowed) with perms[0..n_perms-1]
 * (borrowed). Returns 0, -EINVAL (n_perms 0), -ENOSPC (more than XS_QUOTA_PERMS entries, or
 * the node-size quota), -EACCES, -ENOENT, -EPERM (an unprivileged caller changing the owner),
 * -ENOMEM.
 */
int xs_tree_set_perms(XsTree *t, const XsCaller *c, const char *path, const XsPerm *perms,
                      size_t n_perms, XsChangeFn fn, void *userdata);

/* Number of nodes owned by domid. */
uint32_t xs_tree_count_owned(const XsTree *t, uint32_t domid);

/*
 * A domain is gone: nodes it owned pass to domain 0 and its explicit permission entries are
 * dropped, so a later domain reusing the id inherits nothing (Xen does the same since XSA-322).
 */
void xs_tree_forget_domain(XsTree *t, uint32_t domid);

/* Number of nodes (tests). */
size_t xs_tree_size(const XsTree *t);
