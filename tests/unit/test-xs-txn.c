/* Unit tests of xensim/xs-txn and the layer commit of xs-tree: snapshots and conflicts. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "xs-txn.h"

static const XsCaller dom0 = {.domid = 0, .privileged = true};
static const XsCaller dom1 = {.domid = 1, .privileged = false};

typedef struct Fixture {
        XsTree *main;
        XsTxnSet set;
        int n_fired;
} Fixture;

static void count_fire(void *ud, const char *path, bool exact, const XsPerm *perms, size_t n_perms,
                       const XsPerm *old, size_t n_old)
{
        ((Fixture *)ud)->n_fired++;
}

static int wr(XsTree *t, const char *path, const char *v, XsChangeFn fn, void *ud)
{
        return xs_tree_write(t, &dom0, path, (const uint8_t *)v, strlen(v), fn, ud);
}

static void assert_value(XsTree *t, const char *path, const char *v)
{
        const XsNode *n;

        assert_int_equal(xs_tree_read(t, &dom0, path, &n), 0);
        assert_int_equal(n->n_value, strlen(v));
        assert_memory_equal(n->value, v, strlen(v));
}

static int setup(void **state)
{
        Fixture *f = calloc(1, sizeof(*f));

        f->main = xs_tree_new();
        xs_txn_set_init(&f->set);
        assert_int_equal(wr(f->main, "/n", "a", NULL, NULL), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        Fixture *f = *state;

        xs_txn_set_deinit(&f->set);
        xs_tree_free(f->main);
        free(f);
        return 0;
}

static XsTxn *start(Fixture *f)
{
        uint32_t id;

        assert_int_equal(xs_txn_start(&f->set, f->main, false, &id), 0);
        assert_int_not_equal(id, 0);
        return xs_txn_find(&f->set, id);
}

static void test_txn_commit_applies(void **state)
{
        Fixture *f = *state;
        XsTxn *t = start(f);

        assert_int_equal(wr(t->layer, "/n", "b", xs_txn_record_change, t), 0);
        assert_int_equal(wr(t->layer, "/new/deep", "c", xs_txn_record_change, t), 0);
        assert_value(f->main, "/n", "a"); /* invisible before commit */
        assert_int_equal(xs_txn_end(&f->set, t->id, true, count_fire, f), 0);
        assert_int_equal(f->n_fired, 2); /* watches fire at commit */
        assert_value(f->main, "/n", "b");
        assert_value(f->main, "/new/deep", "c");
}

static void test_txn_abort_discards(void **state)
{
        Fixture *f = *state;
        XsTxn *t = start(f);

        assert_int_equal(xs_tree_rm(t->layer, &dom0, "/n", xs_txn_record_change, t), 0);
        assert_int_equal(xs_txn_end(&f->set, t->id, false, count_fire, f), 0);
        assert_int_equal(f->n_fired, 0);
        assert_value(f->main, "/n", "a");
}

static void test_txn_snapshot_read(void **state)
{
        Fixture *f = *state;
        XsTxn *t = start(f);

        assert_value(t->layer, "/n", "a");
        assert_int_equal(wr(f->main, "/n", "outside", NULL, NULL), 0);
        assert_value(t->layer, "/n", "a"); /* the transaction keeps its view */
        assert_int_equal(xs_txn_end(&f->set, t->id, true, NULL, NULL), -EAGAIN);
}

static void test_txn_conflict_eagain(void **state)
{
        Fixture *f = *state;
        XsTxn *t = start(f);

        assert_int_equal(wr(t->layer, "/n", "mine", xs_txn_record_change, t), 0);
        assert_int_equal(wr(f->main, "/n", "theirs", NULL, NULL), 0);
        assert_int_equal(xs_txn_end(&f->set, t->id, true, count_fire, f), -EAGAIN);
        assert_int_equal(f->n_fired, 0);
        assert_value(f->main, "/n", "theirs");
}

static void test_txn_conflict_on_absent(void **state)
{
        Fixture *f = *state;
        XsTxn *t = start(f);
        const XsNode *n;

        /* The transaction saw /x absent; someone creates it; commit must fail. */
        assert_int_equal(xs_tree_read(t->layer, &dom0, "/x", &n), -ENOENT);
        assert_int_equal(wr(f->main, "/x", "1", NULL, NULL), 0);
        assert_int_equal(xs_txn_end(&f->set, t->id, true, NULL, NULL), -EAGAIN);
}

static void test_txn_unrelated_no_conflict(void **state)
{
        Fixture *f = *state;
        XsTxn *t = start(f);

        assert_int_equal(wr(t->layer, "/n", "mine", NULL, NULL), 0);
        assert_int_equal(wr(f->main, "/tool/other", "x", NULL, NULL), 0);
        assert_int_equal(xs_txn_end(&f->set, t->id, true, NULL, NULL), 0);
        assert_value(f->main, "/n", "mine");
}

static void test_txn_rm_and_recreate(void **state)
{
        Fixture *f = *state;
        XsTxn *t = start(f);
        const XsNode *n;
        size_t before;

        assert_int_equal(wr(f->main, "/r/a", "1", NULL, NULL), 0);
        before = xs_tree_size(f->main);
        assert_int_equal(xs_tree_rm(t->layer, &dom0, "/r", NULL, NULL), 0);
        assert_int_equal(xs_tree_read(t->layer, &dom0, "/r/a", &n), -ENOENT);
        assert_int_equal(wr(t->layer, "/r/b", "2", NULL, NULL), 0);
        assert_int_equal(xs_txn_end(&f->set, t->id, true, NULL, NULL), 0);
        assert_int_equal(xs_tree_read(f->main, &dom0, "/r/a", &n), -ENOENT);
        assert_value(f->main, "/r/b", "2");
        assert_int_equal(xs_tree_size(f->main), before);
}

static void test_txn_quota(void **state)
{
        Fixture *f = *state;
        uint32_t id;

        for (unsigned i = 0; i < XS_QUOTA_TRANSACTIONS; i++)
                assert_int_equal(xs_txn_start(&f->set, f->main, false, &id), 0);
        assert_int_equal(xs_txn_start(&f->set, f->main, false, &id), -ENOSPC);
        assert_int_equal(xs_txn_start(&f->set, f->main, true, &id), 0); /* dom0: no quota */
}

static void test_txn_end_unknown(void **state)
{
        Fixture *f = *state;

        assert_int_equal(xs_txn_end(&f->set, 42, true, NULL, NULL), -ENOENT);
        assert_null(xs_txn_find(&f->set, 42));
}

static void test_txn_permissions_apply(void **state)
{
        Fixture *f = *state;
        XsTxn *t = start(f);

        assert_int_equal(xs_tree_write(t->layer, &dom1, "/n", (const uint8_t *)"x", 1, NULL, NULL),
                         -EACCES);
        assert_int_equal(xs_txn_end(&f->set, t->id, true, NULL, NULL), 0);
        assert_value(f->main, "/n", "a");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_txn_commit_applies, setup, teardown),
                cmocka_unit_test_setup_teardown(test_txn_abort_discards, setup, teardown),
                cmocka_unit_test_setup_teardown(test_txn_snapshot_read, setup, teardown),
                cmocka_unit_test_setup_teardown(test_txn_conflict_eagain, setup, teardown),
                cmocka_unit_test_setup_teardown(test_txn_conflict_on_absent, setup, teardown),
                cmocka_unit_test_setup_teardown(test_txn_unrelated_no_conflict, setup, teardown),
                cmocka_unit_test_setup_teardown(test_txn_rm_and_recreate, setup, teardown),
                cmocka_unit_test_setup_teardown(test_txn_quota, setup, teardown),
                cmocka_unit_test_setup_teardown(test_txn_end_unknown, setup, teardown),
                cmocka_unit_test_setup_teardown(test_txn_permissions_apply, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
