/*
 * xs-server: the xenstore protocol engine of xensimd, independent of sockets and epoll.
 *
 * It owns the tree, the watches, the domains and the connections' protocol state. xensimd
 * (the I/O shell) feeds each connection's received bytes in through an input buffer the
 * server provides, and drains its output queue; the server tells the shell through XsServerOps
 * when a connection has new output, when it is about to free a connection (domain release),
 * and when a domain appears or goes away (so the shell creates or removes its socket).
 *
 * Each connection belongs to one domain, decided by the socket it came in on. Requests are
 * handled one at a time, in order; a connection with XS_QUOTA_OUTSTANDING unread replies is
 * not read until its peer catches up (xs_server_conn_wants_read()).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xs-limits.h"
#include "xs-tree.h"
#include "xs-txn.h"
#include "xs-watch.h"
#include "xs-wire.h"

typedef struct XsServer XsServer;
typedef struct XsConn XsConn;
typedef struct XsDomain XsDomain;
typedef struct XsOutMsg XsOutMsg;

struct XsDomain {
        XsDomain *next;
        uint32_t domid;
        char name[XS_DOMAIN_NAME_MAX + 1];
        uint32_t n_conns;
        void *io; /* the shell's data for this domain */
};

/* Twice the largest message, so that a complete message always fits behind a partial one. */
#define XS_CONN_IN_BUF (2u * (XS_WIRE_HEADER_SIZE + XS_PAYLOAD_MAX))

struct XsConn {
        XsConn *next;
        XsDomain *domain; /* borrowed; the domain outlives its connections */
        uint32_t domid;
        bool privileged;
        uint8_t in[XS_CONN_IN_BUF];
        size_t n_in;
        XsOutMsg *out_head;
        XsOutMsg **out_tail;
        size_t out_off; /* bytes of out_head already written */
        uint32_t n_out_replies;
        size_t out_event_bytes;
        XsTxnSet txns;
        void *io; /* the shell's data for this connection */
};

typedef struct XsServerOps {
        /* conn has new output queued. */
        void (*wake)(void *userdata, XsConn *conn);
        /* conn is about to be freed by the server (its domain is going away). */
        void (*conn_closing)(void *userdata, XsConn *conn);
        /* A domain was added: create its socket. Returns 0 or a negative errno (undone). */
        int (*domain_added)(void *userdata, XsDomain *dom);
        /* A domain is being removed: remove its socket. */
        void (*domain_removed)(void *userdata, XsDomain *dom);
} XsServerOps;

/*
 * A server with domain 0 ("Domain-0") and its nodes. ops (copied) and userdata (borrowed)
 * receive the notifications above. ops->domain_added is called for domain 0 too. Returns 0
 * and the server in *ret, or a negative errno.
 */
int xs_server_new(const XsServerOps *ops, void *userdata, XsServer **ret);

/* Frees the server, its connections (notifying conn_closing) and domains. Accepts NULL. */
XsServer *xs_server_free(XsServer *s);

/* The main tree (borrowed), for tests and the benchmark. */
XsTree *xs_server_tree(XsServer *s);

/* ---- domains ---- */

/* The domain with this id, or NULL. */
XsDomain *xs_server_domain_find(XsServer *s, uint32_t domid);

/* The domain with this name, or NULL. */
XsDomain *xs_server_domain_find_name(XsServer *s, const char *name);

/* The first domain (list order: by creation); iterate with dom->next. */
XsDomain *xs_server_domains(XsServer *s);

/*
 * Creates a domain named name ([A-Za-z0-9_.-]{1,64}, unique): allocates the next free domid,
 * asks the shell for its socket, writes /local/domain/<N>/{domid,name} (owned by dom0,
 * readable by N) and /local/domain/<N>/data (owned by N), then fires @introduceDomain.
 * Returns 0 and the domain (borrowed) in *ret, -EINVAL (bad name), -EEXIST (name in use),
 * -ENOSPC (too many domains), or the shell's error.
 */
int xs_server_domain_create(XsServer *s, const char *name, XsDomain **ret);

/*
 * Destroys a domain other than 0: removes /local/domain/<N>, hands its nodes to dom0, closes
 * its connections (dropping their watches and transactions), fires @releaseDomain and asks
 * the shell to remove its socket. dom is freed. Killing the domain's processes is the
 * shell's job, before calling this.
 */
void xs_server_domain_destroy(XsServer *s, XsDomain *dom);

/* ---- connections ---- */

/* A new connection of domain dom (borrowed). Returns NULL on ENOMEM or when an unprivileged
 * domain has XS_MAX_CONNS_PER_DOMAIN connections already (dom0 has no such bound). */
XsConn *xs_server_conn_new(XsServer *s, XsDomain *dom, void *io);

/* Frees a connection (its peer went away): drops its watches and transactions. */
void xs_server_conn_free(XsServer *s, XsConn *c);

/* Where received bytes go: the free space of the connection's input buffer. */
void xs_server_conn_rspace(XsConn *c, uint8_t **ret_buf, size_t *ret_space);

/*
 * n bytes were appended to the input buffer: handles every complete request while the
 * connection is under its outstanding-reply quota. Returns 0, or -EPROTO when the peer broke
 * the protocol (a length above XS_PAYLOAD_MAX): the connection must then be closed.
 */
int xs_server_conn_process(XsServer *s, XsConn *c, size_t n);

/* Whether the connection may be read (under its outstanding-reply quota). */
bool xs_server_conn_wants_read(const XsConn *c);

/* The next bytes to send (borrowed until consumed), or NULL and 0 when nothing is queued. */
const uint8_t *xs_server_conn_out_peek(XsConn *c, size_t *ret_len);

/* n bytes of the peeked output were sent. */
void xs_server_conn_out_consume(XsConn *c, size_t n);
