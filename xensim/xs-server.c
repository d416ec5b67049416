/*
 * xs-server: request dispatch, domains, connections and watch delivery (see xs-server.h).
 *
 * Flow of one request: xs_server_conn_process() frames it (xs-wire), handle_request() checks
 * the type, privilege and transaction id as Xen's process_message() does, then one op_*
 * function parses the payload, canonicalizes paths (xs-path) and calls the tree (xs-tree) on
 * the main tree or on the transaction's layer. Changes outside transactions fire watches at
 * once (fire_change); inside, they are recorded and fired at commit (xs-txn). Replies and
 * events are queued on the connection as complete messages.
 *
 * Errors an op returns are negative errnos, sent as XS_ERROR with Xen's error name.
 */
#include "xs-server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xen/io/xs_wire.h>

#include "xs-path.h"
#include "xs-perm.h"

struct XsOutMsg {
        XsOutMsg *next;
        size_t len;
        bool is_reply;
        uint8_t data[];
};

struct XsServer {
        XsTree *tree;
        XsWatchList watches;
        XsDomain *domains;
        XsConn *conns;
        uint32_t next_domid;
        uint32_t n_domains;
        XsServerOps ops;
        void *userdata;
};

/* The change being fired, for the permit callback. */
typedef struct FireCtx {
        XsServer *s;
        const char *path;
        const XsPerm *perms;
        size_t n_perms;
        const XsPerm *old_perms;
        size_t n_old_perms;
} FireCtx;

XsTree *xs_server_tree(XsServer *s)
{
        return s->tree;
}

/* ---- output ---- */

static int queue_msg(XsServer *s, XsConn *c, uint32_t type, uint32_t req_id, uint32_t tx_id,
                     const void *a, size_t na, const void *b, size_t nb, bool is_reply)
{
        XsHeader h = {.type = type, .req_id = req_id, .tx_id = tx_id, .len = (uint32_t)(na + nb)};
        XsOutMsg *m;

        if (na + nb > XS_PAYLOAD_MAX)
                return -E2BIG;
        if (!is_reply &&
            c->out_event_bytes + XS_WIRE_HEADER_SIZE + na + nb > XS_CONN_EVENT_BYTES_MAX)
                return -ENOBUFS;
        m = malloc(sizeof(*m) + XS_WIRE_HEADER_SIZE + na + nb);
        if (!m)
                return -ENOMEM;
        m->next = NULL;
        m->len = XS_WIRE_HEADER_SIZE + na + nb;
        m->is_reply = is_reply;
        xs_wire_encode_header(&h, m->data);
        if (na)
                memcpy(m->data + XS_WIRE_HEADER_SIZE, a, na);
        if (nb)
                memcpy(m->data + XS_WIRE_HEADER_SIZE + na, b, nb);
        *c->out_tail = m;
        c->out_tail = &m->next;
        if (is_reply)
                c->n_out_replies++;
        else
                c->out_event_bytes += m->len;
        if (s->ops.wake)
                s->ops.wake(s->userdata, c);
        return 0;
}

static void send_error(XsServer *s, XsConn *c, const XsHeader *h, int err)
{
        const char *name = xs_wire_error_name(err);

        queue_msg(s, c, XS_ERROR, h->req_id, h->tx_id, name, strlen(name) + 1, NULL, 0, true);
}

/* A reply too large for the wire becomes E2BIG, as in Xen's send_reply(). */
static void send_reply(XsServer *s, XsConn *c, const XsHeader *h, const void *data, size_t len)
{
        int r = queue_msg(s, c, h->type, h->req_id, h->tx_id, data, len, NULL, 0, true);

        if (r < 0)
                send_error(s, c, h, -r);
}

static void send_ok(XsServer *s, XsConn *c, const XsHeader *h)
{
        send_reply(s, c, h, "OK", 3);
}

const uint8_t *xs_server_conn_out_peek(XsConn *c, size_t *ret_len)
{
        if (!c->out_head) {
                *ret_len = 0;
                return NULL;
        }
        *ret_len = c->out_head->len - c->out_off;
        return c->out_head->data + c->out_off;
}

void xs_server_conn_out_consume(XsConn *c, size_t n)
{
        while (n > 0 && c->out_head) {
                XsOutMsg *m = c->out_head;
                size_t left = m->len - c->out_off;

                if (n < left) {
                        c->out_off += n;
                        return;
                }
                n -= left;
                c->out_off = 0;
                c->out_head = m->next;
                if (!c->out_head)
                        c->out_tail = &c->out_head;
                if (m->is_reply)
                        c->n_out_replies--;
                else
                        c->out_event_bytes -= m->len;
                free(m);
        }
}

/* ---- watches ---- */

static bool perms_allow_read(const XsPerm *p, size_t n, const XsWatch *w)
{
        return p && n && (xs_perm_for(p, n, w->domid, w->privileged) & XS_ACC_READ);
}

/* Xen's watch_permitted(): the node (old or new permissions) or its parent is readable. */
static bool fire_permit(void *userdata, const XsWatch *w)
{
        const FireCtx *f = userdata;
        char parent[XS_PATH_BUF];
        const XsNode *pn;

        if (w->privileged)
                return true;
        if (f->path[0] == '@') {
                pn = xs_tree_lookup(f->s->tree, f->path);
                return pn && perms_allow_read(pn->perms, pn->n_perms, w);
        }
        if (perms_allow_read(f->old_perms, f->n_old_perms, w) ||
            perms_allow_read(f->perms, f->n_perms, w))
                return true;
        if (strlen(f->path) >= sizeof(parent) ||
            xs_path_parent(f->path, parent, sizeof(parent)) < 0)
                return false;
        pn = xs_tree_lookup(f->s->tree, parent);
        return pn && perms_allow_read(pn->perms, pn->n_perms, w);
}

static void fire_emit(void *userdata, void *owner, const char *path, const char *token)
{
        const FireCtx *f = userdata;

        /* An event that does not fit, or overflows a non-reading peer, is dropped. */
        queue_msg(f->s, owner, XS_WATCH_EVENT, 0, 0, path, strlen(path) + 1, token,
                  strlen(token) + 1, false);
}

/* XsChangeFn for changes to the main tree. */
static void fire_change(void *userdata, const char *path, bool exact, const XsPerm *perms,
                        size_t n_perms, const XsPerm *old_perms, size_t n_old_perms)
{
        FireCtx f = {
                .s = userdata,
                .path = path,
                .perms = perms,
                .n_perms = n_perms,
                .old_perms = old_perms,
                .n_old_perms = n_old_perms,
        };

        xs_watch_fire(&f.s->watches, path, exact, fire_permit, fire_emit, &f);
}

static void fire_special(XsServer *s, const char *name)
{
        fire_change(s, name, false, NULL, 0, NULL, 0);
}

/* ---- request helpers ---- */

typedef struct Req {
        XsServer *s;
        XsConn *c;
        const XsHeader *h;
        const uint8_t *p;
        size_t n;
        XsTree *tree;
        XsChangeFn change;
        void *change_ud;
        XsCaller caller;
} Req;

static int canon(const Req *r, const char *in, bool allow_special, char *out, bool *ret_relative)
{
        return xs_path_canonicalize(r->c->domid, r->c->privileged, in, allow_special, out,
                                    XS_PATH_BUF, ret_relative);
}

static int onearg_path(const Req *r, bool allow_special, char *out)
{
        const char *arg;

        if (xs_wire_onearg(r->p, r->n, &arg) < 0)
                return -EINVAL;
        return canon(r, arg, allow_special, out, NULL);
}

/* Parses a decimal domid argument (digits only, at most XS_DOMID_MAX... or 0xFFFF). */
static int parse_domid(const char *s, uint32_t *ret)
{
        uint32_t v = 0;

        if (!*s)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                v = v * 10u + (uint32_t)(*s - '0');
                if (v > 0xFFFFu)
                        return -EINVAL;
        }
        *ret = v;
        return 0;
}

static int onearg_domid(const Req *r, uint32_t *ret)
{
        const char *arg;

        if (xs_wire_onearg(r->p, r->n, &arg) < 0)
                return -EINVAL;
        return parse_domid(arg, ret);
}

/* ---- operations ---- */

static int op_read(Req *r)
{
        char path[XS_PATH_BUF];
        const XsNode *node;
        int e = onearg_path(r, false, path);

        if (e == 0)
                e = xs_tree_read(r->tree, &r->caller, path, &node);
        if (e == 0)
                send_reply(r->s, r->c, r->h, node->value, node->n_value);
        return e;
}

static int op_directory(Req *r)
{
        char path[XS_PATH_BUF];
        const XsNode *node;
        int e = onearg_path(r, false, path);

        if (e == 0)
                e = xs_tree_read(r->tree, &r->caller, path, &node);
        if (e == 0)
                send_reply(r->s, r->c, r->h, node->children, node->n_children);
        return e;
}

/*
 * XS_DIRECTORY_PART: path and a byte offset into the child list. The reply is the node's
 * generation, then as many whole child names from the offset as fit; a final empty string
 * marks the end of the list.
 */
static int op_directory_part(Req *r)
{
        char path[XS_PATH_BUF], gen[24];
        uint8_t out[XS_PAYLOAD_MAX];
        const char *argv[2];
        const XsNode *node;
        size_t n_args, genlen, len = 0, maxlen, off;
        int e;

        xs_wire_get_args(r->p, r->n, argv, 2, &n_args);
        if (xs_wire_count_strings(r->p, r->n) != 2 || n_args != 2)
                return -EINVAL;
        e = canon(r, argv[0], false, path, NULL);
        if (e == 0)
                e = xs_tree_read(r->tree, &r->caller, path, &node);
        if (e != 0)
                return e;
        off = (size_t)strtoul(argv[1], NULL, 10);
        genlen = (size_t)snprintf(gen, sizeof(gen), "%" PRIu64, node->generation) + 1;
        memcpy(out, gen, genlen);
        if (off >= node->n_children) {
                out[genlen] = 0;
                send_reply(r->s, r->c, r->h, out, genlen + 1);
                return 0;
        }
        maxlen = XS_PAYLOAD_MAX - genlen - 1;
        while (off + len < node->n_children) {
                size_t l = strlen(node->children + off + len) + 1;

                if (len + l > maxlen)
                        break;
                len += l;
        }
        memcpy(out + genlen, node->children + off, len);
        if (off + len == node->n_children)
                out[genlen + len++] = 0;
        send_reply(r->s, r->c, r->h, out, genlen + len);
        return 0;
}

static int op_get_perms(Req *r)
{
        char path[XS_PATH_BUF], out[XS_PAYLOAD_MAX];
        const XsNode *node;
        size_t len = 0;
        int e = onearg_path(r, true, path);

        if (e == 0)
                e = xs_tree_read(r->tree, &r->caller, path, &node);
        if (e != 0)
                return e;
        for (uint32_t i = 0; i < node->n_perms; i++) {
                if (len + XS_PERM_TEXT_MAX > sizeof(out))
                        return -E2BIG;
                len += xs_perm_format(&node->perms[i], out + len, XS_PERM_TEXT_MAX) + 1;
        }
        send_reply(r->s, r->c, r->h, out, len);
        return 0;
}

static int op_write(Req *r)
{
        char path[XS_PATH_BUF];
        const char *argv[1];
        size_t n_args, off;
        int e;

        xs_wire_get_args(r->p, r->n, argv, 1, &n_args);
        if (n_args < 1)
                return -EINVAL;
        e = canon(r, argv[0], false, path, NULL);
        if (e < 0)
                return e;
        off = strlen(argv[0]) + 1;
        e = xs_tree_write(r->tree, &r->caller, path, r->p + off, r->n - off, r->change,
                          r->change_ud);
        if (e == 0)
                send_ok(r->s, r->c, r->h);
        return e;
}

static int op_mkdir(Req *r)
{
        char path[XS_PATH_BUF];
        int e = onearg_path(r, false, path);

        if (e == 0)
                e = xs_tree_mkdir(r->tree, &r->caller, path, r->change, r->change_ud);
        if (e == 0)
                send_ok(r->s, r->c, r->h);
        return e;
}

static int op_rm(Req *r)
{
        char path[XS_PATH_BUF];
        int e = onearg_path(r, false, path);

        if (e == 0)
                e = xs_tree_rm(r->tree, &r->caller, path, r->change, r->change_ud);
        if (e == 0)
                send_ok(r->s, r->c, r->h);
        return e;
}

static int op_set_perms(Req *r)
{
        char path[XS_PATH_BUF];
        XsPerm perms[XS_PAYLOAD_MAX / 2];
        const char *argv[1];
        size_t n_strings = xs_wire_count_strings(r->p, r->n), n_args, n_perms, off;
        int e;

        if (n_strings < 2)
                return -EINVAL;
        n_perms = n_strings - 1;
        if (!r->caller.privileged && n_perms > XS_QUOTA_PERMS)
                return -ENOSPC;
        xs_wire_get_args(r->p, r->n, argv, 1, &n_args);
        off = strlen(argv[0]) + 1;
        for (size_t i = 0; i < n_perms; i++) {
                const char *s = (const char *)r->p + off;

                if (xs_perm_parse(s, &perms[i]) < 0)
                        return -EINVAL;
                off += strlen(s) + 1;
        }
        /* Xen refuses an owner that is not a live domain. */
        if (!xs_server_domain_find(r->s, perms[0].domid))
                return -ENOENT;
        e = canon(r, argv[0], true, path, NULL);
        if (e == 0)
                e = xs_tree_set_perms(r->tree, &r->caller, path, perms, n_perms, r->change,
                                      r->change_ud);
        if (e == 0)
                send_ok(r->s, r->c, r->h);
        return e;
}

static int op_watch(Req *r)
{
        char path[XS_PATH_BUF];
        const char *argv[2];
        size_t n_args;
        bool relative;
        XsWatch *w;
        int e;

        xs_wire_get_args(r->p, r->n, argv, 2, &n_args);
        if (n_args != 2)
                return -EINVAL;
        e = canon(r, argv[0], true, path, &relative);
        if (e == 0)
                e = xs_watch_add(&r->s->watches, r->c, r->c->domid, r->c->privileged, path,
                                 relative, argv[1], &w);
        if (e != 0)
                return e;
        send_ok(r->s, r->c, r->h);
        /* The initial event, sent whatever the permissions, as Xen does. */
        queue_msg(r->s, r->c, XS_WATCH_EVENT, 0, 0, xs_watch_event_path(w, w->path),
                  strlen(xs_watch_event_path(w, w->path)) + 1, w->token, strlen(w->token) + 1,
                  false);
        return 0;
}

static int op_unwatch(Req *r)
{
        char path[XS_PATH_BUF];
        const char *argv[2];
        size_t n_args;
        int e;

        xs_wire_get_args(r->p, r->n, argv, 2, &n_args);
        if (n_args != 2)
                return -EINVAL;
        e = canon(r, argv[0], true, path, NULL);
        if (e == 0)
                e = xs_watch_remove(&r->s->watches, r->c, path, argv[1]);
        if (e == 0)
                send_ok(r->s, r->c, r->h);
        return e;
}

static int op_transaction_start(Req *r)
{
        char id[16];
        uint32_t tx;
        int e;

        if (r->h->tx_id != 0)
                return -EBUSY;
        e = xs_txn_start(&r->c->txns, r->s->tree, r->c->privileged, &tx);
        if (e < 0)
                return e;
        /* At most 10 digits: fits id[16]. */
        (void)snprintf(id, sizeof(id), "%" PRIu32, tx);
        send_reply(r->s, r->c, r->h, id, strlen(id) + 1);
        return 0;
}

static int op_transaction_end(Req *r)
{
        const char *arg;
        bool commit;
        int e;

        if (xs_wire_onearg(r->p, r->n, &arg) < 0)
                return -EINVAL;
        if (strcmp(arg, "T") == 0)
                commit = true;
        else if (strcmp(arg, "F") == 0)
                commit = false;
        else
                return -EINVAL;
        e = xs_txn_end(&r->c->txns, r->h->tx_id, commit, fire_change, r->s);
        if (e == 0)
                send_ok(r->s, r->c, r->h);
        return e;
}

static int op_get_domain_path(Req *r)
{
        char path[32];
        uint32_t domid;
        int e = onearg_domid(r, &domid);

        if (e < 0)
                return e;
        xs_path_home(domid, path, sizeof(path));
        send_reply(r->s, r->c, r->h, path, strlen(path) + 1);
        return 0;
}

static int op_is_domain_introduced(Req *r)
{
        uint32_t domid;
        int e = onearg_domid(r, &domid);

        if (e < 0)
                return e;
        send_reply(r->s, r->c, r->h, xs_server_domain_find(r->s, domid) ? "T" : "F", 2);
        return 0;
}

/*
 * XS_INTRODUCE: xensim has no rings to map; introducing a domain that xensim already runs
 * is accepted (as Xen accepts a re-introduction); any other domid is refused with ENOENT,
 * since xensim domains are created with `xensim domain create`.
 */
static int op_introduce(Req *r)
{
        const char *argv[3];
        size_t n_args;
        uint32_t domid;

        xs_wire_get_args(r->p, r->n, argv, 3, &n_args);
        if (n_args < 3 || parse_domid(argv[0], &domid) < 0 || domid == 0)
                return -EINVAL;
        if (!xs_server_domain_find(r->s, domid))
                return -ENOENT;
        send_ok(r->s, r->c, r->h);
        return 0;
}

/* XS_RELEASE and XS_RESUME: the domain must exist. Release ends it as destroy does. */
static int op_release(Req *r)
{
        XsDomain *dom;
        uint32_t domid;
        int e = onearg_domid(r, &domid);

        if (e < 0)
                return e;
        if (domid == 0)
                return -EINVAL;
        dom = xs_server_domain_find(r->s, domid);
        if (!dom)
                return -ENOENT;
        if (r->h->type == XS_RELEASE) {
                if (dom == r->c->domain)
                        return -EINVAL;
                xs_server_domain_destroy(r->s, dom);
        }
        send_ok(r->s, r->c, r->h);
        return 0;
}

static int op_reset_watches(Req *r)
{
        xs_watch_remove_owner(&r->s->watches, r->c);
        xs_txn_set_deinit(&r->c->txns);
        send_ok(r->s, r->c, r->h);
        return 0;
}

typedef struct OpInfo {
        int (*fn)(Req *r);
        bool priv;
        bool notid;
} OpInfo;

static const OpInfo op_table[XS_TYPE_COUNT] = {
        [XS_CONTROL] = {NULL, true, false},
        [XS_DIRECTORY] = {op_directory, false, false},
        [XS_READ] = {op_read, false, false},
        [XS_GET_PERMS] = {op_get_perms, false, false},
        [XS_WATCH] = {op_watch, false, true},
        [XS_UNWATCH] = {op_unwatch, false, true},
        [XS_TRANSACTION_START] = {op_transaction_start, false, false},
        [XS_TRANSACTION_END] = {op_transaction_end, false, false},
        [XS_INTRODUCE] = {op_introduce, true, false},
        [XS_RELEASE] = {op_release, true, false},
        [XS_GET_DOMAIN_PATH] = {op_get_domain_path, false, false},
        [XS_WRITE] = {op_write, false, false},
        [XS_MKDIR] = {op_mkdir, false, false},
        [XS_RM] = {op_rm, false, false},
        [XS_SET_PERMS] = {op_set_perms, false, false},
        [XS_IS_DOMAIN_INTRODUCED] = {op_is_domain_introduced, true, false},
        [XS_RESUME] = {op_release, true, false},
        [XS_SET_TARGET] = {NULL, true, false},
        [XS_RESET_WATCHES] = {op_reset_watches, false, true},
        [XS_DIRECTORY_PART] = {op_directory_part, false, false},
};

static void handle_request(XsServer *s, XsConn *c, const XsHeader *h, const uint8_t *p)
{
        Req r = {
                .s = s,
                .c = c,
                .h = h,
                .p = p,
                .n = h->len,
                .tree = s->tree,
                .change = fire_change,
                .change_ud = s,
                .caller = {.domid = c->domid, .privileged = c->privileged},
        };
        const OpInfo *op = h->type < XS_TYPE_COUNT ? &op_table[h->type] : NULL;
        int e;

        /* Privilege is checked before existence, as in Xen: CONTROL and SET_TARGET exist. */
        if (op && op->priv && !c->privileged) {
                send_error(s, c, h, EACCES);
                return;
        }
        if (!op || !op->fn) {
                send_error(s, c, h, ENOSYS);
                return;
        }
        if (!op->notid && h->tx_id != 0 && h->type != XS_TRANSACTION_START) {
                XsTxn *t = xs_txn_find(&c->txns, h->tx_id);

                if (!t) {
                        send_error(s, c, h, ENOENT);
                        return;
                }
                r.tree = t->layer;
                r.change = xs_txn_record_change;
                r.change_ud = t;
        }
        if (h->type == XS_TRANSACTION_END && h->tx_id == 0) {
                send_error(s, c, h, ENOENT);
                return;
        }
        e = op->fn(&r);
        if (e < 0)
                send_error(s, c, h, -e);
}

/* ---- connections ---- */

bool xs_server_conn_wants_read(const XsConn *c)
{
        return c->n_out_replies < XS_QUOTA_OUTSTANDING;
}

void xs_server_conn_rspace(XsConn *c, uint8_t **ret_buf, size_t *ret_space)
{
        *ret_buf = c->in + c->n_in;
        *ret_space = sizeof(c->in) - c->n_in;
}

int xs_server_conn_process(XsServer *s, XsConn *c, size_t n)
{
        size_t off = 0;
        int r = 0;

        c->n_in += n;
        while (xs_server_conn_wants_read(c)) {
                XsHeader h;
                size_t size;

                r = xs_wire_frame(c->in + off, c->n_in - off, &h, &size);
                if (r == -EAGAIN) {
                        r = 0;
                        break;
                }
                if (r < 0)
                        return -EPROTO;
                handle_request(s, c, &h, c->in + off + XS_WIRE_HEADER_SIZE);
                off += size;
        }
        memmove(c->in, c->in + off, c->n_in - off);
        c->n_in -= off;
        return r;
}

XsConn *xs_server_conn_new(XsServer *s, XsDomain *dom, void *io)
{
        XsConn *c;

        if (dom->domid != 0 && dom->n_conns >= XS_MAX_CONNS_PER_DOMAIN)
                return NULL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        c->domain = dom;
        c->domid = dom->domid;
        c->privileged = dom->domid == 0;
        c->out_tail = &c->out_head;
        c->io = io;
        xs_txn_set_init(&c->txns);
        c->next = s->conns;
        s->conns = c;
        dom->n_conns++;
        return c;
}

void xs_server_conn_free(XsServer *s, XsConn *c)
{
        XsConn **slot = &s->conns;

        while (*slot && *slot != c)
                slot = &(*slot)->next;
        if (*slot)
                *slot = c->next;
        xs_watch_remove_owner(&s->watches, c);
        xs_txn_set_deinit(&c->txns);
        while (c->out_head) {
                XsOutMsg *m = c->out_head;

                c->out_head = m->next;
                free(m);
        }
        c->domain->n_conns--;
        free(c);
}

/* ---- domains ---- */

XsDomain *xs_server_domain_find(XsServer *s, uint32_t domid)
{
        for (XsDomain *d = s->domains; d; d = d->next)
                if (d->domid == domid)
                        return d;
        return NULL;
}

XsDomain *xs_server_domain_find_name(XsServer *s, const char *name)
{
        for (XsDomain *d = s->domains; d; d = d->next)
                if (strcmp(d->name, name) == 0)
                        return d;
        return NULL;
}

XsDomain *xs_server_domains(XsServer *s)
{
        return s->domains;
}

static bool name_valid(const char *name)
{
        size_t n = strlen(name);

        if (n == 0 || n > XS_DOMAIN_NAME_MAX)
                return false;
        for (; *name; name++)
                if (!((*name >= 'a' && *name <= 'z') || (*name >= 'A' && *name <= 'Z') ||
                      (*name >= '0' && *name <= '9') || *name == '_' || *name == '-' ||
                      *name == '.'))
                        return false;
        return true;
}

static void domain_link(XsServer *s, XsDomain *d)
{
        XsDomain **slot = &s->domains;

        while (*slot)
                slot = &(*slot)->next;
        *slot = d;
        s->n_domains++;
}

static void domain_unlink(XsServer *s, XsDomain *d)
{
        XsDomain **slot = &s->domains;

        while (*slot && *slot != d)
                slot = &(*slot)->next;
        if (*slot) {
                *slot = d->next;
                s->n_domains--;
        }
}

/* Writes a node as dom0 with the given permissions; fires watches. */
static int write_node(XsServer *s, const char *path, const char *value, const XsPerm *perms,
                      size_t n_perms)
{
        static const XsCaller dom0 = {.domid = 0, .privileged = true};
        int r = xs_tree_write(s->tree, &dom0, path, (const uint8_t *)value, strlen(value),
                              fire_change, s);

        if (r == 0 && perms)
                r = xs_tree_set_perms(s->tree, &dom0, path, perms, n_perms, fire_change, s);
        return r;
}

static int domain_write_nodes(XsServer *s, XsDomain *d)
{
        char home[32], path[64], id[16];
        XsPerm perms[2] = {{0, XS_ACC_NONE}, {d->domid, XS_ACC_READ}};
        XsPerm own = {d->domid, XS_ACC_NONE};
        int r;

        /* None of these can be truncated: a home is at most 24 bytes, a domid 10 digits. */
        xs_path_home(d->domid, home, sizeof(home));
        (void)snprintf(id, sizeof(id), "%" PRIu32, d->domid);
        r = write_node(s, home, "", perms, d->domid ? 2 : 1);
        (void)snprintf(path, sizeof(path), "%s/domid", home);
        if (r == 0)
                r = write_node(s, path, id, perms, d->domid ? 2 : 1);
        (void)snprintf(path, sizeof(path), "%s/name", home);
        if (r == 0)
                r = write_node(s, path, d->name, perms, d->domid ? 2 : 1);
        (void)snprintf(path, sizeof(path), "%s/data", home);
        if (r == 0 && d->domid)
                r = write_node(s, path, "", &own, 1);
        return r;
}

int xs_server_domain_create(XsServer *s, const char *name, XsDomain **ret)
{
        XsDomain *d;
        uint32_t domid;
        int r;

        if (!name_valid(name))
                return -EINVAL;
        if (xs_server_domain_find_name(s, name))
                return -EEXIST;
        if (s->n_domains >= XS_MAX_DOMAINS)
                return -ENOSPC;
        /* Ids grow and are not reused soon, so a stale id in a permission names nobody. */
        domid = s->next_domid;
        while (xs_server_domain_find(s, domid))
                domid = domid >= XS_DOMID_MAX ? 1 : domid + 1;
        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->domid = domid;
        /* name_valid() checked that it fits. */
        (void)snprintf(d->name, sizeof(d->name), "%s", name);
        if (s->ops.domain_added) {
                r = s->ops.domain_added(s->userdata, d);
                if (r < 0) {
                        free(d);
                        return r;
                }
        }
        domain_link(s, d);
        s->next_domid = domid >= XS_DOMID_MAX ? 1 : domid + 1;
        r = domain_write_nodes(s, d);
        if (r < 0) {
                xs_server_domain_destroy(s, d);
                return r;
        }
        fire_special(s, "@introduceDomain");
        *ret = d;
        return 0;
}

void xs_server_domain_destroy(XsServer *s, XsDomain *d)
{
        static const XsCaller dom0 = {.domid = 0, .privileged = true};
        char home[32];
        XsConn *c;

        if (d->domid == 0)
                return;
        c = s->conns;
        while (c) {
                XsConn *next = c->next;

                if (c->domain == d) {
                        if (s->ops.conn_closing)
                                s->ops.conn_closing(s->userdata, c);
                        xs_server_conn_free(s, c);
                }
                c = next;
        }
        xs_path_home(d->domid, home, sizeof(home));
        xs_tree_rm(s->tree, &dom0, home, fire_change, s);
        xs_tree_forget_domain(s->tree, d->domid);
        domain_unlink(s, d);
        if (s->ops.domain_removed)
                s->ops.domain_removed(s->userdata, d);
        free(d);
        fire_special(s, "@releaseDomain");
}

int xs_server_new(const XsServerOps *ops, void *userdata, XsServer **ret)
{
        XsServer *s = calloc(1, sizeof(*s));
        XsDomain *d0;
        int r;

        if (!s)
                return -ENOMEM;
        s->ops = *ops;
        s->userdata = userdata;
        s->next_domid = 1;
        xs_watch_list_init(&s->watches);
        s->tree = xs_tree_new();
        d0 = calloc(1, sizeof(*d0));
        if (!s->tree || !d0) {
                free(d0);
                xs_server_free(s);
                return -ENOMEM;
        }
        (void)snprintf(d0->name, sizeof(d0->name), "Domain-0");
        if (s->ops.domain_added) {
                r = s->ops.domain_added(userdata, d0);
                if (r < 0) {
                        free(d0);
                        xs_server_free(s);
                        return r;
                }
        }
        domain_link(s, d0);
        r = domain_write_nodes(s, d0);
        if (r < 0) {
                xs_server_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

XsServer *xs_server_free(XsServer *s)
{
        if (!s)
                return NULL;
        while (s->conns) {
                if (s->ops.conn_closing)
                        s->ops.conn_closing(s->userdata, s->conns);
                xs_server_conn_free(s, s->conns);
        }
        while (s->domains) {
                XsDomain *d = s->domains;

                s->domains = d->next;
                free(d);
        }
        xs_watch_list_deinit(&s->watches);
        xs_tree_free(s->tree);
        free(s);
        return NULL;
}
