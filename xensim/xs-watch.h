/*
 * xs-watch: registered watches and the matching rule that turns a change into events.
 *
 * A watch belongs to one connection (an opaque owner pointer) of one domain and is keyed by
 * (canonical path, token). A change at path P fires every watch on P or on an ancestor of P;
 * the removal of a subtree also fires, for each removed node below the root, the watches on
 * exactly that node. Watches on "@introduceDomain" and "@releaseDomain" fire for those
 * special events. Events of watches registered with a relative path carry relative paths.
 * Whether the watcher may see the change is the caller's decision (a permit callback), as
 * it needs the tree.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "xs-limits.h"

typedef struct XsWatch XsWatch;

struct XsWatch {
        XsWatch *next;
        void *owner;
        uint32_t domid;
        bool privileged;
        bool relative;
        char *path; /* canonical */
        char *token;
};

typedef struct XsWatchList {
        XsWatch *head;
        XsWatch **tail;
} XsWatchList;

/* Decides whether watch w may receive an event for the change being fired. */
typedef bool (*XsWatchPermitFn)(void *userdata, const XsWatch *w);
/* Delivers one event: path and token are borrowed for the duration of the call. */
typedef void (*XsWatchEmitFn)(void *userdata, void *owner, const char *path, const char *token);

void xs_watch_list_init(XsWatchList *l);
void xs_watch_list_deinit(XsWatchList *l);

/*
 * Adds a watch for owner (borrowed) of domain domid on canonical path, with token (both
 * copied). Returns 0 and the watch (borrowed) in *ret (may be NULL), -EEXIST when owner
 * already watches (path, token), -E2BIG when an unprivileged domain already holds
 * XS_QUOTA_WATCHES watches, or -ENOMEM.
 */
int xs_watch_add(XsWatchList *l, void *owner, uint32_t domid, bool privileged, const char *path,
                 bool relative, const char *token, XsWatch **ret);

/* Removes owner's watch (path, token). Returns 0 or -ENOENT. */
int xs_watch_remove(XsWatchList *l, void *owner, const char *path, const char *token);

/* Removes every watch of owner. */
void xs_watch_remove_owner(XsWatchList *l, void *owner);

/* Number of watches held by domain domid. */
uint32_t xs_watch_count_domain(const XsWatchList *l, uint32_t domid);

/* The path an event for a change at name carries for watch w (borrowed from name). */
const char *xs_watch_event_path(const XsWatch *w, const char *name);

/* Fires the watches matching a change at path (see the module comment). */
void xs_watch_fire(XsWatchList *l, const char *path, bool exact, XsWatchPermitFn permit,
                   XsWatchEmitFn emit, void *userdata);
