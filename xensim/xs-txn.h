/*
 * xs-txn: the transactions of one connection.
 *
 * A transaction is a layer over the main tree (xs-tree.h) plus the list of changes made in
 * it. Watches do not fire while a transaction is open; the recorded changes fire when it
 * commits, and are dropped when it aborts or conflicts. Ids are per connection, never 0
 * (0 means "no transaction" on the wire).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "xs-tree.h"

typedef struct XsTxnChange XsTxnChange;
typedef struct XsTxn XsTxn;

struct XsTxn {
        XsTxn *next;
        uint32_t id;
        XsTree *layer;
        XsTxnChange *changes;
        XsTxnChange **changes_tail;
};

typedef struct XsTxnSet {
        XsTxn *head;
        uint32_t n;
        uint32_t next_id;
} XsTxnSet;

/* Initializes an empty set (a zeroed XsTxnSet is also valid). */
void xs_txn_set_init(XsTxnSet *s);

/* Aborts every transaction of the set. */
void xs_txn_set_deinit(XsTxnSet *s);

/*
 * Starts a transaction over main (borrowed). Unprivileged connections may hold at most
 * XS_QUOTA_TRANSACTIONS. Returns 0 and the id, -ENOSPC, or -ENOMEM.
 */
int xs_txn_start(XsTxnSet *s, XsTree *main, bool privileged, uint32_t *ret_id);

/* The open transaction with this id, or NULL. Borrowed until it ends. */
XsTxn *xs_txn_find(XsTxnSet *s, uint32_t id);

/* An XsChangeFn recording a change in the transaction given as userdata (an XsTxn *). */
void xs_txn_record_change(void *userdata, const char *path, bool exact, const XsPerm *perms,
                          size_t n_perms, const XsPerm *old_perms, size_t n_old_perms);

/*
 * Ends transaction id: with commit, installs it into the main tree and reports every
 * recorded change, in order, to fire (may be NULL). Returns 0, -ENOENT (no such id),
 * -EAGAIN (conflict: nothing installed), -ENOMEM. The transaction is gone afterwards.
 */
int xs_txn_end(XsTxnSet *s, uint32_t id, bool commit, XsChangeFn fire, void *userdata);
