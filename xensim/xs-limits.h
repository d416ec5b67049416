/*
 * xs-limits: every limit xensimd enforces, in one place, each with its reason.
 *
 * The quotas mirror the defaults of Xen 4.17's C xenstored (xenstored --help) so that a guest
 * that works on xensim also stays within bounds on real Xen. Quotas apply to unprivileged
 * domains only; domain 0 is privileged, as on Xen. docs/xensim.md repeats this table.
 */
#pragma once

#include <stdint.h>

/* The wire payload bound from xs_wire.h: a larger length is a protocol violation. */
#define XS_PAYLOAD_MAX 4096u
/* Absolute and relative (below /local/domain/<N>/) path length bounds from xs_wire.h. */
#define XS_ABS_PATH_MAX 3072u
#define XS_REL_PATH_MAX 2048u

/* Xen's -N / quota_nb_entry_per_domain: nodes a domain may own. */
#define XS_QUOTA_NODES 1000u
/* Xen's -S / quota_max_entry_size: stored size of one node (header, perms, data, children). */
#define XS_QUOTA_NODE_SIZE 2048u
/* Xen's -W / quota_nb_watch_per_domain: watches a domain may hold. */
#define XS_QUOTA_WATCHES 128u
/* Xen's -t / quota_max_transaction: open transactions per connection. */
#define XS_QUOTA_TRANSACTIONS 10u
/* Xen's -A / quota_nb_perms_per_node: permission entries in one node. */
#define XS_QUOTA_PERMS 5u
/* Xen's -Q / quota_req_outstanding: replies queued before we stop reading a connection. */
#define XS_QUOTA_OUTSTANDING 20u

/*
 * Xen's C xenstored accounts a node as a 24-byte record header plus 8 bytes per permission
 * entry plus data plus the NUL-separated child list; the node-size quota applies to that sum.
 */
#define XS_NODE_HEADER_SIZE 24u
#define XS_NODE_PERM_SIZE   8u

/* Domain ids: 0 is dom0; Xen reserves 0x7FF0 and above (DOMID_FIRST_RESERVED). */
#define XS_DOMID_MAX 0x7FEFu
/*
 * Domains one xensim instance manages at once. Xen has no limit of its own below the domid
 * space (DOMID_FIRST_RESERVED, 0x7FF0: dom0 plus 32751 guests), and neither does its
 * xenstored; each domain costs xensimd one listening socket and its nodes, and xensimd raises
 * its descriptor limit to the hard limit at start.
 */
#define XS_MAX_DOMAINS (XS_DOMID_MAX + 1u)
/*
 * Connections per unprivileged domain. On Xen a guest has one xenstore connection, its ring,
 * which the guest kernel multiplexes among its processes; xensim gives each process its own
 * socket connection, so this bounds what a misbehaving guest can make xensimd hold. Domain 0
 * has no such limit, as on Xen, where a dom0 socket connection is bounded only by xenstored's
 * descriptor limit (XENSTORED_MAX_OPEN_FDS in xencommons, "unlimited" by default, capped by
 * /proc/sys/fs/nr_open).
 */
#define XS_MAX_CONNS_PER_DOMAIN 64u
/*
 * Bytes of watch events queued for a connection that does not read them. Xen drops events
 * for a slow unprivileged reader after a timeout; we drop events beyond this bound instead.
 */
#define XS_CONN_EVENT_BYTES_MAX ((size_t)1024 * 1024)
/* Length of a domain name given to `xensim domain create`. */
#define XS_DOMAIN_NAME_MAX 64u
