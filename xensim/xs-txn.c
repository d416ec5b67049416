/*
 * xs-txn: per-connection transaction bookkeeping (see xs-txn.h). The conflict rule itself
 * lives in xs-tree's layer commit.
 */
#include "xs-txn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct XsTxnChange {
        XsTxnChange *next;
        char *path;
        bool exact;
        XsPerm *perms;
        size_t n_perms;
        XsPerm *old_perms;
        size_t n_old_perms;
};

static XsTxnChange *change_free(XsTxnChange *c)
{
        if (c) {
                free(c->path);
                free(c->perms);
                free(c->old_perms);
                free(c);
        }
        return NULL;
}

static XsTxn *txn_free(XsTxn *t)
{
        if (t) {
                XsTxnChange *c = t->changes;

                while (c) {
                        XsTxnChange *next = c->next;

                        change_free(c);
                        c = next;
                }
                xs_tree_free(t->layer);
                free(t);
        }
        return NULL;
}

void xs_txn_set_init(XsTxnSet *s)
{
        memset(s, 0, sizeof(*s));
}

void xs_txn_set_deinit(XsTxnSet *s)
{
        while (s->head) {
                XsTxn *t = s->head;

                s->head = t->next;
                txn_free(t);
        }
        s->n = 0;
}

XsTxn *xs_txn_find(XsTxnSet *s, uint32_t id)
{
        for (XsTxn *t = s->head; t; t = t->next)
                if (t->id == id)
                        return t;
        return NULL;
}

int xs_txn_start(XsTxnSet *s, XsTree *main, bool privileged, uint32_t *ret_id)
{
        XsTxn *t;

        if (!privileged && s->n >= XS_QUOTA_TRANSACTIONS)
                return -ENOSPC;
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->layer = xs_tree_layer_new(main);
        if (!t->layer) {
                free(t);
                return -ENOMEM;
        }
        do {
                s->next_id++;
        } while (s->next_id == 0 || xs_txn_find(s, s->next_id));
        t->id = s->next_id;
        t->changes_tail = &t->changes;
        t->next = s->head;
        s->head = t;
        s->n++;
        *ret_id = t->id;
        return 0;
}

static XsPerm *perms_dup(const XsPerm *p, size_t n)
{
        XsPerm *d;

        if (!p || n == 0)
                return NULL;
        d = malloc(n * sizeof(*d));
        if (d)
                memcpy(d, p, n * sizeof(*d));
        return d;
}

void xs_txn_record_change(void *userdata, const char *path, bool exact, const XsPerm *perms,
                          size_t n_perms, const XsPerm *old_perms, size_t n_old_perms)
{
        XsTxn *t = userdata;
        XsTxnChange *c = calloc(1, sizeof(*c));

        if (!c)
                return; /* a lost watch event under memory pressure, as in Xen */
        c->path = strdup(path);
        c->exact = exact;
        c->perms = perms_dup(perms, n_perms);
        c->n_perms = c->perms ? n_perms : 0;
        c->old_perms = perms_dup(old_perms, n_old_perms);
        c->n_old_perms = c->old_perms ? n_old_perms : 0;
        if (!c->path) {
                change_free(c);
                return;
        }
        *t->changes_tail = c;
        t->changes_tail = &c->next;
}

int xs_txn_end(XsTxnSet *s, uint32_t id, bool commit, XsChangeFn fire, void *userdata)
{
        XsTxn **slot = &s->head, *t;
        int r = 0;

        while (*slot && (*slot)->id != id)
                slot = &(*slot)->next;
        t = *slot;
        if (!t)
                return -ENOENT;
        *slot = t->next;
        s->n--;
        if (commit) {
                r = xs_tree_layer_commit(t->layer);
                for (XsTxnChange *c = t->changes; r == 0 && fire && c; c = c->next)
                        fire(userdata, c->path, c->exact, c->perms, c->n_perms, c->old_perms,
                             c->n_old_perms);
        }
        txn_free(t);
        return r;
}
