/*
 * xs-watch: the watch registry (see xs-watch.h). A singly linked list in registration
 * order; the number of watches is bounded by the per-domain quota times the domains.
 */
#include "xs-watch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "xs-path.h"

static XsWatch *watch_free(XsWatch *w)
{
        if (w) {
                free(w->path);
                free(w->token);
                free(w);
        }
        return NULL;
}

void xs_watch_list_init(XsWatchList *l)
{
        l->head = NULL;
        l->tail = &l->head;
}

void xs_watch_list_deinit(XsWatchList *l)
{
        while (l->head) {
                XsWatch *w = l->head;

                l->head = w->next;
                watch_free(w);
        }
        l->tail = &l->head;
}

uint32_t xs_watch_count_domain(const XsWatchList *l, uint32_t domid)
{
        uint32_t n = 0;

        for (const XsWatch *w = l->head; w; w = w->next)
                if (w->domid == domid)
                        n++;
        return n;
}

int xs_watch_add(XsWatchList *l, void *owner, uint32_t domid, bool privileged, const char *path,
                 bool relative, const char *token, XsWatch **ret)
{
        XsWatch *w;

        for (w = l->head; w; w = w->next)
                if (w->owner == owner && strcmp(w->path, path) == 0 && strcmp(w->token, token) == 0)
                        return -EEXIST;
        if (!privileged && xs_watch_count_domain(l, domid) >= XS_QUOTA_WATCHES)
                return -E2BIG;
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->owner = owner;
        w->domid = domid;
        w->privileged = privileged;
        w->relative = relative;
        w->path = strdup(path);
        w->token = strdup(token);
        if (!w->path || !w->token) {
                watch_free(w);
                return -ENOMEM;
        }
        *l->tail = w;
        l->tail = &w->next;
        if (ret)
                *ret = w;
        return 0;
}

static void list_fix_tail(XsWatchList *l)
{
        l->tail = &l->head;
        while (*l->tail)
                l->tail = &(*l->tail)->next;
}

int xs_watch_remove(XsWatchList *l, void *owner, const char *path, const char *token)
{
        for (XsWatch **slot = &l->head; *slot; slot = &(*slot)->next) {
                XsWatch *w = *slot;

                if (w->owner == owner && strcmp(w->path, path) == 0 &&
                    strcmp(w->token, token) == 0) {
                        *slot = w->next;
                        watch_free(w);
                        list_fix_tail(l);
                        return 0;
                }
        }
        return -ENOENT;
}

void xs_watch_remove_owner(XsWatchList *l, void *owner)
{
        XsWatch **slot = &l->head;

        while (*slot) {
                XsWatch *w = *slot;

                if (w->owner == owner) {
                        *slot = w->next;
                        watch_free(w);
                } else {
                        slot = &w->next;
                }
        }
        list_fix_tail(l);
}

const char *xs_watch_event_path(const XsWatch *w, const char *name)
{
        return xs_path_for_event(name, w->relative, w->domid);
}

void xs_watch_fire(XsWatchList *l, const char *path, bool exact, XsWatchPermitFn permit,
                   XsWatchEmitFn emit, void *userdata)
{
        for (XsWatch *w = l->head; w; w = w->next) {
                bool match = exact ? strcmp(path, w->path) == 0 : xs_path_is_child(path, w->path);

                if (!match || (permit && !permit(userdata, w)))
                        continue;
                emit(userdata, w->owner, xs_watch_event_path(w, path), w->token);
        }
}
