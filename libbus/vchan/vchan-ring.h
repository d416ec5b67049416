#pragma once

/*
 * vchan ring logic on plain memory: the control-page layout of Xen's libxenvchan protocol
 * (struct vchan_interface), ring placement for orders 10..20, index arithmetic, the
 * notify-bit protocol, and zero-copy peek/consume and reserve/commit.
 *
 * This module never touches grants, event channels or xenstore (vchan.c does): it works on
 * any memory that holds a control page and two rings, which is what lets the unit tests,
 * the hostile-peer test and the fuzzer drive it directly.
 *
 * Trust model: every byte of the control page and of both rings may be written by the peer
 * at any time. We therefore keep private copies of everything we own (our producer counter,
 * our consumer counter, both orders, the ring geometry), load each shared field exactly once
 * per operation with an atomic load into a local, validate the local, and only ever *store*
 * our own counters. A peer index that cannot come from an honest peer (more bytes ready than
 * the ring holds, or more consumed than we produced) makes the ring fail with -EPROTO, and
 * the ring stays failed. Positions are always masked with size - 1, so even before the check
 * no access can leave the ring.
 *
 * Not thread-safe: one VbusVchanRing belongs to one thread at a time.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Limits and constants of the wire format (see docs/vchan.md). */
#define VBUS_VCHAN_PAGE_SIZE      4096u /* Xen grants whole 4 KiB pages */
#define VBUS_VCHAN_ORDER_MIN      10u   /* smallest ring: 1 KiB, in the control page at 1024 */
#define VBUS_VCHAN_ORDER_MAX      20u   /* largest ring: 1 MiB; more grant refs would not fit */
#define VBUS_VCHAN_ORDER_EXTERNAL 12u   /* rings of this order and above live in granted pages */
#define VBUS_VCHAN_MAX_RING_SIZE  (1u << VBUS_VCHAN_ORDER_MAX) /* libxenvchan's MAX_RING_SHIFT */
#define VBUS_VCHAN_MAX_GRANTS     512u /* two order-20 rings: 2 * 256 pages, fits at 24..2072 */

/* Byte offsets inside the control page, little-endian (vchan-brief 1.2). */
#define VBUS_VCHAN_OFF_LEFT_CONS   0u  /* written by the server */
#define VBUS_VCHAN_OFF_LEFT_PROD   4u  /* written by the client */
#define VBUS_VCHAN_OFF_RIGHT_CONS  8u  /* written by the client */
#define VBUS_VCHAN_OFF_RIGHT_PROD  12u /* written by the server */
#define VBUS_VCHAN_OFF_LEFT_ORDER  16u /* uint16, set once by the server */
#define VBUS_VCHAN_OFF_RIGHT_ORDER 18u /* uint16, set once by the server */
#define VBUS_VCHAN_OFF_CLI_LIVE    20u /* client liveness; cleared by the client's unmap-notify */
#define VBUS_VCHAN_OFF_SRV_LIVE    21u /* server liveness; cleared by the server's unmap-notify */
#define VBUS_VCHAN_OFF_CLI_NOTIFY  22u /* bits the server sets to ask the client for events */
#define VBUS_VCHAN_OFF_SRV_NOTIFY  23u /* bits the client sets to ask the server for events */
#define VBUS_VCHAN_OFF_GRANTS      24u /* uint32 grant refs: left pages, then right pages */

/* Values of the notify bytes. */
#define VBUS_VCHAN_NOTIFY_WRITE 0x1u /* "send an event when you write data" */
#define VBUS_VCHAN_NOTIFY_READ  0x2u /* "send an event when you consume data" */

/* Values of the live bytes. */
#define VBUS_VCHAN_LIVE_EXITED  0u /* closed, or the process died (unmap-notify) */
#define VBUS_VCHAN_LIVE_ON      1u /* connected */
#define VBUS_VCHAN_LIVE_WAITING 2u /* client not yet connected (cli_live only) */

/* Which ring is which: left = client writes, server reads; right = server writes. */
enum {
        VBUS_VCHAN_LEFT = 0,
        VBUS_VCHAN_RIGHT = 1,
};

/* Peer state as our end sees it. */
typedef enum VbusVchanPeer {
        VBUS_VCHAN_PEER_WAITING = 0,   /* server only: no client has connected yet */
        VBUS_VCHAN_PEER_CONNECTED = 1, /* the peer's live byte says it is there */
        VBUS_VCHAN_PEER_CLOSED = 2,    /* live byte 0 or any unknown value */
} VbusVchanPeer;

/*
 * Geometry of both rings, computed from the two orders. For an in-page ring `offset` is its
 * byte offset in the control page and `n_pages` is 0; for an external ring `offset` is 0 and
 * `n_pages` is 2^(order-12). All of it is private memory, never re-read from the page.
 */
typedef struct VbusVchanLayout {
        uint32_t order[2];
        uint32_t offset[2];
        uint32_t n_pages[2];
} VbusVchanLayout;

/*
 * Computes and validates the layout for the given orders (as read from a control page, so
 * untrusted): each order in [10, 20], at most one ring at offset 1024 and one at 2048, and
 * the grant list (24 + 4 * pages) ending at or before the lowest in-page ring. Returns 0, or
 * -EPROTO if the orders are not a valid layout. ret_layout is written only on success.
 */
int vbus__vchan_layout_from_orders(uint32_t left_order, uint32_t right_order,
                                   VbusVchanLayout *ret_layout);

/*
 * The server's choice of orders for ring sizes of at least left_min (client -> server) and
 * right_min (server -> client) bytes, with libxenvchan's rules so that both implementations
 * pick the same layout: default order is the smallest n >= 12 with 2^n >= size, and small
 * requests are moved into the control page (1 KiB / 2 KiB). Returns 0, or -EINVAL if a size
 * exceeds VBUS_VCHAN_MAX_RING_SIZE.
 */
int vbus__vchan_layout_from_sizes(size_t left_min, size_t right_min, VbusVchanLayout *ret_layout);

/* Total number of external pages (left then right); at most VBUS_VCHAN_MAX_GRANTS. */
uint32_t vbus__vchan_layout_n_grants(const VbusVchanLayout *layout);

/*
 * Writes the server's initial control page: zeroes all 4096 bytes, then both orders,
 * cli_live = 2 (waiting), srv_live = 1, cli_notify = WRITE (the server wants to hear about
 * client writes), srv_notify = 0 and the grant refs (`grants`, borrowed, holding
 * vbus__vchan_layout_n_grants() refs: left pages first). `page` is borrowed, 4096 bytes.
 */
void vbus__vchan_page_init_server(void *page, const VbusVchanLayout *layout,
                                  const uint32_t *grants);

/*
 * Reads the orders and the grant list of a control page written by a server, once each, and
 * validates them (vbus__vchan_layout_from_orders). `ret_grants` must hold
 * VBUS_VCHAN_MAX_GRANTS entries; the first vbus__vchan_layout_n_grants() are written.
 * Returns 0 or -EPROTO.
 */
int vbus__vchan_page_read_layout(const void *page, VbusVchanLayout *ret_layout,
                                 uint32_t *ret_grants);

/*
 * One end of a vchan on mapped memory. Fields are private to vchan-ring.c; the struct is in
 * the header only so that callers can embed it.
 */
typedef struct VbusVchanRing {
        uint8_t *page;
        bool server;
        int error; /* sticky: 0 or -EPROTO */
        bool peer_closed_sticky;

        /* The ring we read. */
        const uint8_t *rd_buf;
        uint32_t rd_size;
        uint32_t rd_cons;  /* private copy of our consumer counter */
        uint32_t rd_ready; /* validated byte count seen by the last peek */
        uint32_t off_rd_cons, off_rd_prod;

        /* The ring we write. */
        uint8_t *wr_buf;
        uint32_t wr_size;
        uint32_t wr_prod;  /* private copy of our producer counter */
        uint32_t wr_space; /* free space known from the last look, minus commits since */
        uint32_t off_wr_cons, off_wr_prod;

        uint32_t off_own_live, off_peer_live, off_own_notify, off_peer_notify;
        uint8_t owed; /* notify bits we may owe the peer since the last flush */

        uint64_t n_requests; /* times we set a bit in the peer's notify byte */
} VbusVchanRing;

/*
 * Attaches to a mapped vchan. `page` (4096 bytes) and the external rings `left`/`right`
 * (NULL for an in-page ring; else 2^order bytes) are borrowed for the ring's lifetime and
 * must not overlap. `layout` is copied. Our own counters are loaded once from the page (they
 * are zero for a fresh server; a reconnecting client continues where the previous client
 * stopped). Never fails; a missing external ring is an internal error (assert).
 */
void vbus__vchan_ring_init(VbusVchanRing *r, void *page, bool server, const VbusVchanLayout *layout,
                           void *left, void *right);

/*
 * Zero-copy read: `ret_iov[0..1]` describe the readable bytes in place (the second is empty
 * unless the data wraps). The bytes stay in shared memory, so the peer may change them under
 * the caller: copy before validating. When fewer than `want` (at least 1) bytes are ready,
 * asks the peer for a write event and looks again, so a caller may sleep on the fd after a
 * short peek. Returns the number of bytes ready (> 0; may be < want), -EAGAIN if none and the
 * peer is there or waiting, 0 at end of stream (peer closed and the ring re-checked empty
 * after that), or -EPROTO if the peer broke the protocol.
 */
ssize_t vbus__vchan_ring_peek(VbusVchanRing *r, size_t want, struct iovec ret_iov[2]);

/* Consumes n bytes of the last peek. Returns 0, -EINVAL if n is more than it saw, or -EPROTO. */
int vbus__vchan_ring_consume(VbusVchanRing *r, size_t n);

/*
 * Zero-copy write: `ret_iov[0..1]` describe the free space in place. While the space seen at
 * the last look (minus what was committed since) covers `want` (at least 1), it is returned
 * without looking at the shared page again; otherwise the peer's counter is loaded, and when
 * less than `want` is free, the peer is asked for a read event and we look again. Returns
 * the free bytes (> 0; may be < want), -EAGAIN if the ring is full, -EPIPE if the peer closed
 * (noticed when we look at the page), or -EPROTO.
 */
ssize_t vbus__vchan_ring_reserve(VbusVchanRing *r, size_t want, struct iovec ret_iov[2]);

/* Publishes n bytes of the last reserve. Returns 0, -EINVAL if n exceeds it, or -EPROTO. */
int vbus__vchan_ring_commit(VbusVchanRing *r, size_t n);

/*
 * Ends a batch: after any number of commits and consumes, checks (full barrier, then
 * fetch-and-clear of the matching bits in our notify byte) whether the peer asked to hear
 * about them. Returns 1 if one event must be sent, else 0. Call it before sleeping.
 */
int vbus__vchan_ring_flush(VbusVchanRing *r);

/* Whether commits or consumes since the last flush may owe the peer an event (no shared-memory
 * access: our own bookkeeping only). */
static inline bool vbus__vchan_ring_owes(const VbusVchanRing *r)
{
        return r->owed != 0;
}

/* Copying helpers over peek/consume and reserve/commit; same returns as peek/reserve. */
ssize_t vbus__vchan_ring_read(VbusVchanRing *r, void *buf, size_t n);
ssize_t vbus__vchan_ring_write(VbusVchanRing *r, const void *buf, size_t n);

/* The peer's liveness (one load of its live byte; unknown values are CLOSED). */
VbusVchanPeer vbus__vchan_ring_peer(VbusVchanRing *r);

/* Stores our own live byte (VBUS_VCHAN_LIVE_*), after a full barrier. */
void vbus__vchan_ring_set_live(VbusVchanRing *r, uint8_t live);

/* Sets the given bits in the peer's notify byte (atomic OR, full barrier after). */
void vbus__vchan_ring_request(VbusVchanRing *r, uint8_t bits);

/* Ring sizes in bytes as seen from this end. */
uint32_t vbus__vchan_ring_read_size(const VbusVchanRing *r);
uint32_t vbus__vchan_ring_write_size(const VbusVchanRing *r);

/* Bytes we committed that the peer has not consumed yet (0 after a failure). */
uint32_t vbus__vchan_ring_unconsumed(VbusVchanRing *r);
