/* Unit tests of xensim/xs-tree: nodes, Xen's permission checks and per-domain quotas. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "xs-tree.h"

static const XsCaller dom0 = {.domid = 0, .privileged = true};
static const XsCaller dom1 = {.domid = 1, .privileged = false};
static const XsCaller dom2 = {.domid = 2, .privileged = false};

typedef struct Changes {
        int n;
        char last[256];
        bool last_exact;
} Changes;

static void record(void *ud, const char *path, bool exact, const XsPerm *perms, size_t n_perms,
                   const XsPerm *old, size_t n_old)
{
        Changes *c = ud;

        c->n++;
        assert_true(snprintf(c->last, sizeof(c->last), "%s", path) < (int)sizeof(c->last));
        c->last_exact = exact;
}

static int wr(XsTree *t, const XsCaller *c, const char *path, const char *v)
{
        return xs_tree_write(t, c, path, (const uint8_t *)v, strlen(v), NULL, NULL);
}

static int setp(XsTree *t, const XsCaller *c, const char *path, const char *spec)
{
        XsPerm perms[8];
        size_t n = 0;
        char buf[64], *save = NULL;

        assert_true(snprintf(buf, sizeof(buf), "%s", spec) < (int)sizeof(buf));
        for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
                assert_int_equal(xs_perm_parse(tok, &perms[n++]), 0);
        return xs_tree_set_perms(t, c, path, perms, n, NULL, NULL);
}

/* A tree with domain 1's home as xensim creates it. */
static int setup(void **state)
{
        XsTree *t = xs_tree_new();

        assert_non_null(t);
        assert_int_equal(wr(t, &dom0, "/local/domain/1", ""), 0);
        assert_int_equal(setp(t, &dom0, "/local/domain/1", "n0 r1"), 0);
        assert_int_equal(wr(t, &dom0, "/local/domain/1/data", ""), 0);
        assert_int_equal(setp(t, &dom0, "/local/domain/1/data", "n1"), 0);
        *state = t;
        return 0;
}

static int teardown(void **state)
{
        xs_tree_free(*state);
        return 0;
}

static void test_tree_write_read(void **state)
{
        XsTree *t = *state;
        const XsNode *n;
        Changes ch = {0};

        assert_int_equal(xs_tree_write(t, &dom0, "/a/b/c", (const uint8_t *)"v", 1, record, &ch),
                         0);
        assert_int_equal(ch.n, 1);
        assert_string_equal(ch.last, "/a/b/c");
        assert_int_equal(xs_tree_read(t, &dom0, "/a/b/c", &n), 0);
        assert_int_equal(n->n_value, 1);
        assert_memory_equal(n->value, "v", 1);
        /* Missing ancestors were created, empty, and listed by their parents. */
        assert_int_equal(xs_tree_read(t, &dom0, "/a", &n), 0);
        assert_int_equal(n->n_value, 0);
        assert_int_equal(n->n_children, 2);
        assert_memory_equal(n->children, "b", 2);
}

static void test_tree_read_missing(void **state)
{
        const XsNode *n;

        assert_int_equal(xs_tree_read(*state, &dom0, "/nothing", &n), -ENOENT);
}

static void test_tree_children_order(void **state)
{
        XsTree *t = *state;
        const XsNode *n;

        wr(t, &dom0, "/d/z", "");
        wr(t, &dom0, "/d/a", "");
        wr(t, &dom0, "/d/m", "");
        assert_int_equal(xs_tree_read(t, &dom0, "/d", &n), 0);
        assert_int_equal(n->n_children, 6);
        assert_memory_equal(n->children, "z\0a\0m\0", 6);
}

static void test_tree_mkdir(void **state)
{
        XsTree *t = *state;
        const XsNode *n;

        assert_int_equal(wr(t, &dom0, "/m", "keep"), 0);
        assert_int_equal(xs_tree_mkdir(t, &dom0, "/m", NULL, NULL), 0);
        assert_int_equal(xs_tree_read(t, &dom0, "/m", &n), 0);
        assert_int_equal(n->n_value, 4); /* mkdir of an existing node changes nothing */
        assert_int_equal(xs_tree_mkdir(t, &dom1, "/local/domain/1/data/d", NULL, NULL), 0);
        assert_int_equal(xs_tree_mkdir(t, &dom1, "/m2", NULL, NULL), -EACCES);
}

static void test_tree_rm_subtree(void **state)
{
        XsTree *t = *state;
        const XsNode *n;
        Changes ch = {0};
        size_t before = xs_tree_size(t);

        wr(t, &dom0, "/r/a/b", "");
        wr(t, &dom0, "/r/c", "");
        assert_int_equal(xs_tree_rm(t, &dom0, "/r", record, &ch), 0);
        assert_int_equal(ch.n, 4);
        assert_string_equal(ch.last, "/r"); /* root last, non-exact */
        assert_false(ch.last_exact);
        assert_int_equal(xs_tree_size(t), before);
        assert_int_equal(xs_tree_read(t, &dom0, "/r/a", &n), -ENOENT);
}

static void test_tree_rm_missing(void **state)
{
        XsTree *t = *state;

        /* Absent node with an existing parent: success, as in Xen. */
        assert_int_equal(xs_tree_rm(t, &dom0, "/tool/nothing", NULL, NULL), 0);
        assert_int_equal(xs_tree_rm(t, &dom0, "/nothing/deeper", NULL, NULL), -ENOENT);
}

static void test_tree_rm_root_invalid(void **state)
{
        assert_int_equal(xs_tree_rm(*state, &dom0, "/", NULL, NULL), -EINVAL);
        assert_int_equal(xs_tree_rm(*state, &dom0, "@releaseDomain", NULL, NULL), -EINVAL);
        assert_int_equal(wr(*state, &dom0, "@releaseDomain", "x"), -EINVAL);
}

static void test_tree_perm_owner_creates(void **state)
{
        XsTree *t = *state;
        const XsNode *n;

        assert_int_equal(wr(t, &dom1, "/local/domain/1/data/x", "1"), 0);
        assert_int_equal(xs_tree_read(t, &dom1, "/local/domain/1/data/x", &n), 0);
        assert_int_equal(n->perms[0].domid, 1);
        assert_int_equal(xs_tree_count_owned(t, 1), 2);
}

static void test_tree_perm_write_denied(void **state)
{
        XsTree *t = *state;

        /* Dom1 may read its home but not write it, nor anything outside data/. */
        assert_int_equal(wr(t, &dom1, "/local/domain/1", "x"), -EACCES);
        assert_int_equal(wr(t, &dom1, "/local/domain/1/other", "x"), -EACCES);
        assert_int_equal(wr(t, &dom1, "/elsewhere", "x"), -EACCES);
        assert_int_equal(xs_tree_rm(t, &dom1, "/local/domain/1", NULL, NULL), -EACCES);
}

static void test_tree_perm_read_denied(void **state)
{
        XsTree *t = *state;
        const XsNode *n;

        wr(t, &dom1, "/local/domain/1/data/secret", "s");
        assert_int_equal(xs_tree_read(t, &dom2, "/local/domain/1/data/secret", &n), -EACCES);
        /* A missing node below an unreadable one is EACCES too: nothing leaks. */
        assert_int_equal(xs_tree_read(t, &dom2, "/local/domain/1/data/none", &n), -EACCES);
        /* Dom1 itself gets ENOENT for a missing node it could see. */
        assert_int_equal(xs_tree_read(t, &dom1, "/local/domain/1/data/none", &n), -ENOENT);
}

static void test_tree_perm_grant(void **state)
{
        XsTree *t = *state;
        const XsNode *n;

        wr(t, &dom1, "/local/domain/1/data/s", "s");
        assert_int_equal(setp(t, &dom1, "/local/domain/1/data/s", "n1 r2"), 0);
        assert_int_equal(xs_tree_read(t, &dom2, "/local/domain/1/data/s", &n), 0);
        assert_int_equal(wr(t, &dom2, "/local/domain/1/data/s", "x"), -EACCES);
        assert_int_equal(setp(t, &dom1, "/local/domain/1/data/s", "r1 w2"), 0);
        assert_int_equal(wr(t, &dom2, "/local/domain/1/data/s", "x"), 0);
        assert_int_equal(xs_tree_read(t, &dom2, "/local/domain/1/data/s", &n), -EACCES);
}

static void test_tree_set_perms_errors(void **state)
{
        XsTree *t = *state;
        XsPerm six[6] = {{1, 0}, {2, 0}, {3, 0}, {4, 0}, {5, 0}, {6, 0}};

        wr(t, &dom1, "/local/domain/1/data/p", "");
        /* Not the owner. */
        assert_int_equal(setp(t, &dom2, "/local/domain/1/data/p", "n2"), -EACCES);
        /* Unprivileged owners cannot give nodes away. */
        assert_int_equal(setp(t, &dom1, "/local/domain/1/data/p", "n2"), -EPERM);
        /* Quota of 5 entries, empty lists, missing nodes. */
        assert_int_equal(xs_tree_set_perms(t, &dom1, "/local/domain/1/data/p", six, 6, NULL, NULL),
                         -ENOSPC);
        assert_int_equal(xs_tree_set_perms(t, &dom1, "/local/domain/1/data/p", six, 0, NULL, NULL),
                         -EINVAL);
        assert_int_equal(setp(t, &dom1, "/local/domain/1/data/none", "n1"), -ENOENT);
        /* Dom0 may change owners; counts follow. */
        assert_int_equal(setp(t, &dom0, "/local/domain/1/data/p", "n2"), 0);
        assert_int_equal(xs_tree_count_owned(t, 2), 1);
}

static void test_tree_quota_node_size(void **state)
{
        XsTree *t = *state;
        static uint8_t big[XS_QUOTA_NODE_SIZE];

        /* 24-byte header + 8 per permission + data must stay below 2048. */
        assert_int_equal(xs_tree_write(t, &dom1, "/local/domain/1/data/b", big,
                                       XS_QUOTA_NODE_SIZE - 24 - 8 - 1, NULL, NULL),
                         0);
        assert_int_equal(xs_tree_write(t, &dom1, "/local/domain/1/data/b", big,
                                       XS_QUOTA_NODE_SIZE - 24 - 8, NULL, NULL),
                         -ENOSPC);
        assert_int_equal(xs_tree_write(t, &dom0, "/big", big, sizeof(big), NULL, NULL), 0);
}

static void test_tree_quota_nodes(void **state)
{
        XsTree *t = *state;
        char path[64];
        unsigned i = 0;

        /* Each write creates exactly one node (directories of 30 children keep every node
         * under the size quota); dom1 owns data/ already. */
        while (xs_tree_count_owned(t, 1) < XS_QUOTA_NODES) {
                int n;

                if (i % 31 == 0)
                        n = snprintf(path, sizeof(path), "/local/domain/1/data/d%u", i / 31);
                else
                        n = snprintf(path, sizeof(path), "/local/domain/1/data/d%u/n%u", i / 31,
                                     i % 31);
                assert_true(n < (int)sizeof(path));
                assert_int_equal(wr(t, &dom1, path, ""), 0);
                i++;
        }
        assert_int_equal(wr(t, &dom1, "/local/domain/1/data/d0/over", ""), -ENOSPC);
        /* Removing frees quota. */
        assert_int_equal(xs_tree_rm(t, &dom1, "/local/domain/1/data/d0/n1", NULL, NULL), 0);
        assert_int_equal(wr(t, &dom1, "/local/domain/1/data/d0/over", ""), 0);
}

static void test_tree_quota_children(void **state)
{
        XsTree *t = *state;
        char path[64];
        int r = 0;
        unsigned i;

        /* The child list counts toward the parent's node size, as in Xen. */
        for (i = 0; r == 0 && i < 1000; i++) {
                assert_true(snprintf(path, sizeof(path), "/local/domain/1/data/child%u", i) <
                            (int)sizeof(path));
                r = wr(t, &dom1, path, "");
        }
        assert_int_equal(r, -ENOSPC);
        assert_true(i > 100);
}

static void test_tree_forget_domain(void **state)
{
        XsTree *t = *state;
        const XsNode *n;

        wr(t, &dom1, "/local/domain/1/data/f", "");
        assert_int_equal(wr(t, &dom0, "/shared", ""), 0);
        assert_int_equal(setp(t, &dom0, "/shared", "n0 b1"), 0);
        xs_tree_forget_domain(t, 1);
        assert_int_equal(xs_tree_read(t, &dom0, "/local/domain/1/data/f", &n), 0);
        assert_int_equal(n->perms[0].domid, 0);
        assert_int_equal(xs_tree_read(t, &dom0, "/shared", &n), 0);
        assert_int_equal(n->n_perms, 1);
        assert_int_equal(xs_tree_count_owned(t, 1), 0);
}

static void test_tree_special_nodes(void **state)
{
        const XsNode *n;

        assert_int_equal(xs_tree_read(*state, &dom0, "@introduceDomain", &n), 0);
        assert_int_equal(xs_tree_read(*state, &dom1, "@introduceDomain", &n), -EACCES);
        assert_int_equal(setp(*state, &dom0, "@introduceDomain", "n0 r1"), 0);
        assert_int_equal(xs_tree_read(*state, &dom1, "@introduceDomain", &n), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_tree_write_read, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tree_read_missing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tree_children_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tree_mkdir, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tree_rm_subtree, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tree_rm_missing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tree_rm_root_invalid, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tree_perm_owner_creates, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tree_perm_write_denied, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tree_perm_read_denied, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tree_perm_grant, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tree_set_perms_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tree_quota_node_size, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tree_quota_nodes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tree_quota_children, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tree_forget_domain, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tree_special_nodes, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
