#pragma once

/*
 * Our vchan endpoint: server and client setup of a libxenvchan-compatible vchan on
 * libxengnttab/libxengntshr, libxenevtchn and libxenstore, on top of the ring logic of
 * vchan-ring.h.
 *
 * Server: grants the control page (unmap-notify clears srv_live) and any external ring
 * pages to one peer domain, allocates an unbound event channel for that domain, writes the
 * page, and publishes `<path>/ring-ref` and `<path>/event-channel` in one xenstore
 * transaction, readable by the peer only. Client: reads and strictly parses both keys,
 * binds the event channel, maps the control page (unmap-notify clears cli_live), reads the
 * orders and grant list once and checks them, maps the rings (the ring it reads read-only),
 * then sets cli_live = 1 and notifies. In vbus the broker is the client and the guest the
 * server, so the client trusts nothing the server chose.
 *
 * Operation is non-blocking on one pollable fd (vbus__vchan_get_fd): after poll() reports
 * it readable, call vbus__vchan_process(), then read and write until -EAGAIN; call
 * vbus__vchan_flush() after a batch of commits/consumes and before sleeping. Only setup
 * (xenstore requests) and vbus__vchan_wait() block. Events carry no meaning beyond "look
 * again", so spurious ones are harmless. One VbusVchan belongs to one thread at a time.
 *
 * Errors: negative errno. -EPROTO means the peer broke the protocol (impossible indices,
 * invalid orders or grant list, malformed xenstore values): the vchan is unusable, close it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "vchan-ring.h"

/* Limits (see docs/vchan.md). */
#define VBUS_VCHAN_PATH_MAX       3072u   /* xenstore's longest absolute path */
#define VBUS_VCHAN_PORT_MAX       64u     /* longest port name we build into a path */
#define VBUS_VCHAN_XS_VALUE_MAX   16u     /* a decimal uint32 is 10 digits; more is malformed */
#define VBUS_VCHAN_XS_TXN_RETRIES 32u     /* EAGAIN retries of the publishing transaction */
#define VBUS_VCHAN_DOMID_MAX      0x7fefu /* DOMID_FIRST_RESERVED - 1: larger ids are not guests */

/* xenstore key names under the vchan path (libxenvchan's). */
#define VBUS_VCHAN_KEY_RING_REF      "ring-ref"
#define VBUS_VCHAN_KEY_EVENT_CHANNEL "event-channel"
/* Ours, readable by this domain only: which process published (vchan.c, docs/vchan.md). */
#define VBUS_VCHAN_KEY_HOLDER "vbus-holder"

typedef struct VbusVchan VbusVchan;

typedef struct VbusVchanStats {
        uint64_t n_notify;   /* events we sent */
        uint64_t n_events;   /* events we received */
        uint64_t n_requests; /* notify bits we set in the peer's byte */
} VbusVchanStats;

/*
 * Creates a server end for `peer_domid` at the xenstore directory `path` (borrowed; it must
 * be dedicated to this vchan, and is removed on close), with rings of at least `left_min`
 * (peer -> us) and `right_min` (us -> peer) bytes, placed as libxenvchan places them. Reads
 * our own domid from the relative xenstore key "domid". Returns 0 and a new object in
 * *ret_vchan, or -EINVAL (bad path, domid or size), -ENOENT (no "domid" key), or the errno
 * of the failing Xen library call.
 */
int vbus__vchan_server_new(VbusVchan **ret_vchan, uint32_t peer_domid, const char *path,
                           size_t left_min, size_t right_min);

/*
 * Opens this domain's end of the vchan `port` toward `peer_domid`: reads our own domid from
 * xenstore, builds the conventional path `/local/domain/<self>/data/vchan/<peer>/<port>`, and
 * refuses with -EADDRINUSE when a ring-ref is already published there (another process of this
 * domain holds the vchan: taking it over would cut that one off; the peer removes the keys of a
 * holder that died). Otherwise creates the server end as vbus__vchan_server_new() does. Returns 0
 * and a new object in *ret_vchan, -EADDRINUSE, -ENOENT (no "domid" key), -EPROTO (a malformed
 * domid), or as vbus__vchan_server_new().
 */
int vbus__vchan_server_open_to(uint32_t peer_domid, const char *port, size_t left_min,
                               size_t right_min, VbusVchan **ret_vchan);

/*
 * Connects a client end to the server in `server_domid` that published at `path` (borrowed).
 * Returns 0 and a new object, -ENOENT if a key is not there yet or not yet readable to us
 * (xenstored says EACCES for a missing key under a parent we cannot read; retry later, e.g.
 * on a xenstore watch), -EPROTO if the server published or granted something invalid, -EINVAL for
 * bad arguments, or the errno of the failing Xen library call.
 */
int vbus__vchan_client_new(VbusVchan **ret_vchan, uint32_t server_domid, const char *path);

/*
 * The Xen handles a process with many client ends (the broker) shares between them: its one
 * xenstore connection and one grant-table handle. Borrowed by every vchan connected with them,
 * so they must outlive those vchans. Forward-declared so that the layers above need no Xen
 * header: only libbus/vchan opens them (vchan-xs.c).
 */
typedef struct VbusVchanHandles {
        struct xs_handle *xs;
        struct xengntdev_handle *gnttab;
        /* Optional (NULL: each vchan opens its own). One event-channel handle for all the
         * vchans: each binds its port on it, vbus__vchan_get_fd() returns its one fd (poll it
         * once, not per vchan), vbus__vchan_process() takes nothing and vbus__vchan_wait()
         * refuses (-EOPNOTSUPP); the owner takes the events with vbus__vchan_next_event()
         * and serves the vchan whose port each names (vbus__vchan_get_port()). Non-blocking. */
        struct xenevtchn_handle *evtchn;
} VbusVchanHandles;

/*
 * As vbus__vchan_client_new(), on the shared handles @h (borrowed until the vchan is freed):
 * the keys are read first on @h's xenstore connection, so a server that has published nothing
 * costs one read and no handle; a connected vchan holds one event-channel handle of its own and
 * its mappings, and no xenstore connection. Returns as vbus__vchan_client_new().
 */
int vbus__vchan_client_new_with(VbusVchan **ret_vchan, const VbusVchanHandles *h,
                                uint32_t server_domid, const char *path);

/*
 * The same setup in three steps, for a process that serves other peers between them (the
 * broker: each step is a few blocking round trips to xenstore or the hypervisor) and that
 * decides from the ring sizes whether to map the rings at all:
 *
 * vbus__vchan_client_keys() reads and strictly parses the keys at @path on @h's xenstore
 * connection. Returns 0, -ENOENT (not published yet), -EPROTO, -EINVAL, or -errno.
 *
 * vbus__vchan_client_open() binds the server's event channel and maps the control page only,
 * reads the orders and grant list from it once and checks them; *ret_read_size and
 * *ret_write_size are the ring sizes from this end's point of view, as the server asked for
 * them. No ring page is mapped: a caller that refuses those sizes frees the vchan, and what
 * it cost is the one control-page mapping, released then. Returns 0 and a new object that is
 * not usable for I/O until vbus__vchan_client_map_rings(), or as vbus__vchan_client_new().
 *
 * vbus__vchan_client_map_rings() maps the rings and sets our live byte: the vchan is then
 * connected. Returns 0, -EINVAL (not a vchan from vbus__vchan_client_open(), or already
 * mapped), or as vbus__vchan_client_new() (free the vchan after an error).
 */
int vbus__vchan_client_keys(const VbusVchanHandles *h, const char *path, uint32_t *ret_ring_ref,
                            uint32_t *ret_port);
int vbus__vchan_client_open(VbusVchan **ret_vchan, const VbusVchanHandles *h, uint32_t server_domid,
                            const char *path, uint32_t ring_ref, uint32_t port,
                            size_t *ret_read_size, size_t *ret_write_size);
int vbus__vchan_client_map_rings(VbusVchan *v);

/*
 * On shared handles (@h->evtchn set): takes the next pending event without blocking and
 * unmasks its port, then says which local port it came on. Serve the vchan of that port after
 * this returns: a notify after the unmask raises a new event. A port no vchan holds (one closed
 * meanwhile) is ignored by the caller; a spurious event is harmless.
 * Return: 1 and *ret_port, 0 (none pending), -EINVAL (no shared handle), or -errno.
 */
int vbus__vchan_next_event(const VbusVchanHandles *h, uint32_t *ret_port);

/* The local port of this vchan's event channel (for vbus__vchan_next_event()). */
uint32_t vbus__vchan_get_port(const VbusVchan *v);

/* Whether the vchan's events come on shared handles (see VbusVchanHandles.evtchn). */
bool vbus__vchan_has_shared_events(const VbusVchan *v);

/*
 * Whether the error @r of a setup is this side's own (out of descriptors, memory, ports or
 * mappings; no driver; xenstore busy), as opposed to something the peer published or granted:
 * a local error says nothing against the peer's keys, and the setup may succeed later.
 */
bool vbus__vchan_error_is_local(int r);

/*
 * Closes: flushes, clears our live byte, notifies the peer, unmaps or unshares every page,
 * unbinds the event channel, and (server) removes `path` from xenstore. Idempotent; after it
 * every I/O call returns -EPIPE.
 */
void vbus__vchan_close(VbusVchan *v);

/* Closes if needed and frees. Accepts NULL; returns NULL. */
VbusVchan *vbus__vchan_free(VbusVchan *v);

/* The event-channel fd to poll for POLLIN (borrowed, valid until free). */
int vbus__vchan_get_fd(const VbusVchan *v);

/*
 * Takes the pending event, if any, without blocking, and unmasks the port (one event is all
 * there can be: see vchan.c). Returns 1 (an event), 0 (none), or a negative errno. Read the
 * ring after it: a write notified after the unmask raises a new event.
 */
int vbus__vchan_process(VbusVchan *v);

/*
 * Blocking helper: flushes, then waits up to timeout_ms (-1 = forever) for an event and
 * processes it. Returns 0 on an event, -ETIMEDOUT, or a negative errno. A caller that saw
 * -EAGAIN should wait with a finite timeout and look again when it expires: a hostile or
 * dead peer may never send the event (lost wakeups are the peer's only lever).
 */
int vbus__vchan_wait(VbusVchan *v, int timeout_ms);

/* The peer's state from its live byte (see VbusVchanPeer). */
VbusVchanPeer vbus__vchan_get_peer(VbusVchan *v);

/* Ring sizes from this end's point of view. */
size_t vbus__vchan_get_read_size(const VbusVchan *v);
size_t vbus__vchan_get_write_size(const VbusVchan *v);

/* Statistics since creation (copied out). */
void vbus__vchan_get_stats(const VbusVchan *v, VbusVchanStats *ret_stats);

/* Zero-copy I/O: as the vbus__vchan_ring_* functions, -EPIPE after close. */
ssize_t vbus__vchan_peek(VbusVchan *v, size_t want, struct iovec ret_iov[2]);
int vbus__vchan_consume(VbusVchan *v, size_t n);
ssize_t vbus__vchan_reserve(VbusVchan *v, size_t want, struct iovec ret_iov[2]);
int vbus__vchan_commit(VbusVchan *v, size_t n);

/* Sends the one event a batch of commits/consumes may owe the peer. Returns 0 or -errno. */
int vbus__vchan_flush(VbusVchan *v);

/* Whether a vbus__vchan_flush() is due: commits or consumes since the last one. */
bool vbus__vchan_owes_flush(const VbusVchan *v);

/*
 * Copying I/O with an implicit flush. read: bytes read (> 0), 0 at end of stream, -EAGAIN,
 * -EPROTO. write: bytes written (> 0, maybe fewer than n), -EAGAIN (full), -EPIPE (peer
 * closed), -EPROTO.
 */
ssize_t vbus__vchan_read(VbusVchan *v, void *buf, size_t n);
ssize_t vbus__vchan_write(VbusVchan *v, const void *buf, size_t n);

/* Bytes we committed that the peer has not consumed yet. */
size_t vbus__vchan_get_unconsumed(VbusVchan *v);

/*
 * Strict parse of a xenstore value (`buf`, `len` bytes, not NUL-terminated, untrusted):
 * 1..10 decimal digits, no sign, no spaces, no leading zero unless the value is "0", at most
 * `max`. Returns 0 and writes *ret, or -EPROTO.
 */
int vbus__vchan_parse_uint(const char *buf, size_t len, uint32_t max, uint32_t *ret);

/*
 * Builds the conventional path `/local/domain/<server>/data/vchan/<client>/<port>` into
 * `buf` (`size` bytes). `port` must match [A-Za-z0-9_-]{1,VBUS_VCHAN_PORT_MAX}. Returns 0,
 * -EINVAL (bad port or domid) or -ENAMETOOLONG.
 */
int vbus__vchan_path_build(char *buf, size_t size, uint32_t server_domid, uint32_t client_domid,
                           const char *port);

/* Checks an absolute xenstore path: "/" then [A-Za-z0-9_@/-], at most VBUS_VCHAN_PATH_MAX. */
bool vbus__vchan_path_is_valid(const char *path);
