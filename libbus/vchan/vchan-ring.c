/*
 * vchan ring logic on plain memory (see vchan-ring.h for the contract and trust model).
 *
 * Notify protocol (vchan-brief 1.7, with the TLA+ refinements): each side *requests* an event
 * by OR-ing a bit into the peer's notify byte and *signals* by fetch-and-clearing bits in its
 * own. The request/check pairs form a Dekker-style store->load handshake (reader: store
 * request bit, then load prod; writer: store prod, then load request bit), so both sides use
 * full barriers between the store and the load; acquire/release alone would not do.
 *
 * Batching: commit and consume only record which bits we may owe (`owed`); the check of our
 * notify byte, and so at most one event, happens in vbus__vchan_ring_flush(), which callers
 * run once per batch before they sleep.
 *
 * Invariants kept against a hostile peer:
 * - rd_cons and wr_prod are private; the page only ever receives stores of them.
 * - ready = prod - rd_cons and used = wr_prod - cons are computed in uint32 from one load each
 *   and must be <= the ring size, else the ring fails with -EPROTO (XSA-86 would clamp them
 *   to 0; we report instead, since an honest peer can never produce such values).
 * - every position is masked with size - 1 and every length is bounded by the validated
 *   count, so no access leaves the ring even on the failing path.
 */

#include "vchan-ring.h"

#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <string.h>

/* Shared-memory accessors: exactly one access per call, never merged or split. */
static uint32_t shared_load32(const uint8_t *page, uint32_t off)
{
        const uint32_t *p = (const uint32_t *)(const void *)(page + off);

        return le32toh(__atomic_load_n(p, __ATOMIC_RELAXED));
}

static void shared_store32(uint8_t *page, uint32_t off, uint32_t v)
{
        uint32_t *p = (uint32_t *)(void *)(page + off);

        __atomic_store_n(p, htole32(v), __ATOMIC_RELAXED);
}

static uint16_t shared_load16(const uint8_t *page, uint32_t off)
{
        const uint16_t *p = (const uint16_t *)(const void *)(page + off);

        return le16toh(__atomic_load_n(p, __ATOMIC_RELAXED));
}

static void shared_store16(uint8_t *page, uint32_t off, uint16_t v)
{
        uint16_t *p = (uint16_t *)(void *)(page + off);

        __atomic_store_n(p, htole16(v), __ATOMIC_RELAXED);
}

static uint8_t shared_load8(const uint8_t *page, uint32_t off)
{
        return __atomic_load_n(page + off, __ATOMIC_RELAXED);
}

static void shared_store8(uint8_t *page, uint32_t off, uint8_t v)
{
        __atomic_store_n(page + off, v, __ATOMIC_RELAXED);
}

static void full_barrier(void)
{
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static uint32_t in_page_offset(uint32_t order)
{
        if (order == 10)
                return 1024;
        if (order == 11)
                return 2048;
        return 0;
}

int vbus__vchan_layout_from_orders(uint32_t left_order, uint32_t right_order,
                                   VbusVchanLayout *ret_layout)
{
        VbusVchanLayout l = {.order = {left_order, right_order}};
        uint32_t lowest = VBUS_VCHAN_PAGE_SIZE;

        for (int i = 0; i < 2; i++) {
                if (l.order[i] < VBUS_VCHAN_ORDER_MIN || l.order[i] > VBUS_VCHAN_ORDER_MAX)
                        return -EPROTO;
                l.offset[i] = in_page_offset(l.order[i]);
                if (l.offset[i] != 0) {
                        if (l.offset[i] < lowest)
                                lowest = l.offset[i];
                } else {
                        l.n_pages[i] = 1u << (l.order[i] - VBUS_VCHAN_ORDER_EXTERNAL);
                }
        }
        /* Two in-page rings of the same order would occupy the same bytes. */
        if (l.offset[0] != 0 && l.offset[0] == l.offset[1])
                return -EPROTO;
        /* The grant list must end before the first in-page ring (and inside the page). */
        if (VBUS_VCHAN_OFF_GRANTS + 4ull * (l.n_pages[0] + l.n_pages[1]) > lowest)
                return -EPROTO;
        *ret_layout = l;
        return 0;
}

static uint32_t order_for_size(size_t size)
{
        uint32_t order = VBUS_VCHAN_ORDER_EXTERNAL;

        while (order < VBUS_VCHAN_ORDER_MAX && ((size_t)1 << order) < size)
                order++;
        return order;
}

int vbus__vchan_layout_from_sizes(size_t left_min, size_t right_min, VbusVchanLayout *ret_layout)
{
        uint32_t lo, ro;

        if (left_min > VBUS_VCHAN_MAX_RING_SIZE || right_min > VBUS_VCHAN_MAX_RING_SIZE)
                return -EINVAL;
        lo = order_for_size(left_min);
        ro = order_for_size(right_min);
        /* libxenvchan's placement, so that both implementations agree on a given request. */
        if (left_min <= 1024 && right_min <= 2048) {
                lo = 10;
                ro = 11;
        } else if (left_min <= 2048 && right_min <= 1024) {
                lo = 11;
                ro = 10;
        } else if (left_min <= 2048) {
                lo = 11;
        } else if (right_min <= 2048) {
                ro = 11;
        }
        return vbus__vchan_layout_from_orders(lo, ro, ret_layout);
}

uint32_t vbus__vchan_layout_n_grants(const VbusVchanLayout *layout)
{
        return layout->n_pages[0] + layout->n_pages[1];
}

void vbus__vchan_page_init_server(void *page, const VbusVchanLayout *layout, const uint32_t *grants)
{
        uint8_t *p = page;
        uint32_t n = vbus__vchan_layout_n_grants(layout);

        memset(p, 0, VBUS_VCHAN_PAGE_SIZE);
        shared_store16(p, VBUS_VCHAN_OFF_LEFT_ORDER, (uint16_t)layout->order[0]);
        shared_store16(p, VBUS_VCHAN_OFF_RIGHT_ORDER, (uint16_t)layout->order[1]);
        shared_store8(p, VBUS_VCHAN_OFF_CLI_LIVE, VBUS_VCHAN_LIVE_WAITING);
        shared_store8(p, VBUS_VCHAN_OFF_SRV_LIVE, VBUS_VCHAN_LIVE_ON);
        shared_store8(p, VBUS_VCHAN_OFF_CLI_NOTIFY, VBUS_VCHAN_NOTIFY_WRITE);
        shared_store8(p, VBUS_VCHAN_OFF_SRV_NOTIFY, 0);
        for (uint32_t i = 0; i < n; i++)
                shared_store32(p, VBUS_VCHAN_OFF_GRANTS + 4 * i, grants[i]);
        full_barrier();
}

int vbus__vchan_page_read_layout(const void *page, VbusVchanLayout *ret_layout,
                                 uint32_t *ret_grants)
{
        const uint8_t *p = page;
        VbusVchanLayout l;
        uint32_t lo, ro, n;
        int r;

        lo = shared_load16(p, VBUS_VCHAN_OFF_LEFT_ORDER);
        ro = shared_load16(p, VBUS_VCHAN_OFF_RIGHT_ORDER);
        r = vbus__vchan_layout_from_orders(lo, ro, &l);
        if (r < 0)
                return r;
        n = vbus__vchan_layout_n_grants(&l);
        assert(n <= VBUS_VCHAN_MAX_GRANTS);
        for (uint32_t i = 0; i < n; i++)
                ret_grants[i] = shared_load32(p, VBUS_VCHAN_OFF_GRANTS + 4 * i);
        *ret_layout = l;
        return 0;
}

void vbus__vchan_ring_init(VbusVchanRing *r, void *page, bool server, const VbusVchanLayout *layout,
                           void *left, void *right)
{
        uint8_t *p = page;
        uint8_t *bufs[2];
        uint32_t sizes[2];
        int rd = server ? VBUS_VCHAN_LEFT : VBUS_VCHAN_RIGHT;
        int wr = server ? VBUS_VCHAN_RIGHT : VBUS_VCHAN_LEFT;

        bufs[0] = layout->offset[0] ? p + layout->offset[0] : left;
        bufs[1] = layout->offset[1] ? p + layout->offset[1] : right;
        assert(bufs[0] && bufs[1]);
        sizes[0] = 1u << layout->order[0];
        sizes[1] = 1u << layout->order[1];

        *r = (VbusVchanRing){
                .page = p,
                .server = server,
                .rd_buf = bufs[rd],
                .rd_size = sizes[rd],
                .wr_buf = bufs[wr],
                .wr_size = sizes[wr],
                .off_rd_cons = server ? VBUS_VCHAN_OFF_LEFT_CONS : VBUS_VCHAN_OFF_RIGHT_CONS,
                .off_rd_prod = server ? VBUS_VCHAN_OFF_LEFT_PROD : VBUS_VCHAN_OFF_RIGHT_PROD,
                .off_wr_cons = server ? VBUS_VCHAN_OFF_RIGHT_CONS : VBUS_VCHAN_OFF_LEFT_CONS,
                .off_wr_prod = server ? VBUS_VCHAN_OFF_RIGHT_PROD : VBUS_VCHAN_OFF_LEFT_PROD,
                .off_own_live = server ? VBUS_VCHAN_OFF_SRV_LIVE : VBUS_VCHAN_OFF_CLI_LIVE,
                .off_peer_live = server ? VBUS_VCHAN_OFF_CLI_LIVE : VBUS_VCHAN_OFF_SRV_LIVE,
                .off_own_notify = server ? VBUS_VCHAN_OFF_SRV_NOTIFY : VBUS_VCHAN_OFF_CLI_NOTIFY,
                .off_peer_notify = server ? VBUS_VCHAN_OFF_CLI_NOTIFY : VBUS_VCHAN_OFF_SRV_NOTIFY,
        };
        /* Our own counters, once: a reconnecting client continues the previous client's. */
        r->rd_cons = shared_load32(p, r->off_rd_cons);
        r->wr_prod = shared_load32(p, r->off_wr_prod);
}

static int ring_fail(VbusVchanRing *r)
{
        r->error = -EPROTO;
        r->rd_ready = 0;
        r->wr_space = 0;
        return r->error;
}

/* Bytes ready to read, from one load of the peer's producer counter. */
static int ring_load_ready(VbusVchanRing *r, uint32_t *ret_ready)
{
        uint32_t ready = shared_load32(r->page, r->off_rd_prod) - r->rd_cons;

        if (ready > r->rd_size)
                return ring_fail(r);
        *ret_ready = ready;
        return 0;
}

/* Bytes we wrote that the peer has not consumed, from one load of its consumer counter. */
static int ring_load_used(VbusVchanRing *r, uint32_t *ret_used)
{
        uint32_t used = r->wr_prod - shared_load32(r->page, r->off_wr_cons);

        if (used > r->wr_size)
                return ring_fail(r);
        *ret_used = used;
        return 0;
}

void vbus__vchan_ring_request(VbusVchanRing *r, uint8_t bits)
{
        __atomic_fetch_or(r->page + r->off_peer_notify, bits, __ATOMIC_SEQ_CST);
        full_barrier();
        r->n_requests++;
}

VbusVchanPeer vbus__vchan_ring_peer(VbusVchanRing *r)
{
        uint8_t live;

        if (r->peer_closed_sticky)
                return VBUS_VCHAN_PEER_CLOSED;
        live = shared_load8(r->page, r->off_peer_live);
        if (live == VBUS_VCHAN_LIVE_ON)
                return VBUS_VCHAN_PEER_CONNECTED;
        if (r->server && live == VBUS_VCHAN_LIVE_WAITING)
                return VBUS_VCHAN_PEER_WAITING;
        /*
         * A server that closed never comes back on the same page (a restarted server publishes
         * a new one), so for a client "closed" is final; a server must see a new client flip
         * cli_live back to 1 (vchan-brief 1.10).
         */
        if (!r->server)
                r->peer_closed_sticky = true;
        return VBUS_VCHAN_PEER_CLOSED;
}

void vbus__vchan_ring_set_live(VbusVchanRing *r, uint8_t live)
{
        full_barrier();
        shared_store8(r->page, r->off_own_live, live);
        full_barrier();
}

static void fill_iov(struct iovec iov[2], const uint8_t *buf, uint32_t size, uint32_t counter,
                     uint32_t n)
{
        uint32_t pos = counter & (size - 1);
        uint32_t first = size - pos < n ? size - pos : n;

        /* const dropped on purpose: one iovec type serves both directions */
        iov[0].iov_base = (void *)(buf + pos);
        iov[0].iov_len = first;
        iov[1].iov_base = (void *)buf;
        iov[1].iov_len = n - first;
}

ssize_t vbus__vchan_ring_peek(VbusVchanRing *r, size_t want, struct iovec ret_iov[2])
{
        uint32_t ready = 0;
        int k;

        if (r->error < 0)
                return r->error;
        if (want == 0)
                want = 1;
        k = ring_load_ready(r, &ready);
        if (k < 0)
                return k;
        if (ready < want) {
                vbus__vchan_ring_request(r, VBUS_VCHAN_NOTIFY_WRITE);
                k = ring_load_ready(r, &ready);
                if (k < 0)
                        return k;
        }
        if (ready == 0) {
                if (vbus__vchan_ring_peer(r) != VBUS_VCHAN_PEER_CLOSED)
                        return -EAGAIN;
                /*
                 * The final re-check: the peer stored its last prod before clearing its live
                 * byte, so after seeing the live byte clear we must look once more.
                 */
                full_barrier();
                k = ring_load_ready(r, &ready);
                if (k < 0)
                        return k;
                if (ready == 0)
                        return 0;
        }
        /* Read barrier: the data must not be read before the producer counter. */
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        fill_iov(ret_iov, r->rd_buf, r->rd_size, r->rd_cons, ready);
        r->rd_ready = ready;
        return ready;
}

int vbus__vchan_ring_consume(VbusVchanRing *r, size_t n)
{
        if (r->error < 0)
                return r->error;
        if (n > r->rd_ready)
                return -EINVAL;
        if (n == 0)
                return 0;
        /* Full barrier: all reads of the data happen before the peer may overwrite it. */
        full_barrier();
        r->rd_cons += (uint32_t)n;
        r->rd_ready -= (uint32_t)n;
        shared_store32(r->page, r->off_rd_cons, r->rd_cons);
        r->owed |= VBUS_VCHAN_NOTIFY_READ;
        return 0;
}

ssize_t vbus__vchan_ring_reserve(VbusVchanRing *r, size_t want, struct iovec ret_iov[2])
{
        uint32_t used = 0, space;
        int k;

        if (r->error < 0)
                return r->error;
        if (want == 0)
                want = 1;
        /*
         * Space seen at the last look and not yet committed is still free (the consumer
         * counter only moves forward for an honest peer), so while it suffices we touch
         * neither the peer's counter nor its cache line, and need no new barrier: the load
         * that established it was followed by one.
         */
        if (r->wr_space < want) {
                if (vbus__vchan_ring_peer(r) == VBUS_VCHAN_PEER_CLOSED)
                        return -EPIPE;
                k = ring_load_used(r, &used);
                if (k < 0)
                        return k;
                space = r->wr_size - used;
                if (space < want) {
                        vbus__vchan_ring_request(r, VBUS_VCHAN_NOTIFY_READ);
                        k = ring_load_used(r, &used);
                        if (k < 0)
                                return k;
                        space = r->wr_size - used;
                }
                if (space == 0)
                        return -EAGAIN;
                /* Full barrier: the consumer counter is read before we overwrite freed bytes. */
                full_barrier();
                r->wr_space = space;
        }
        fill_iov(ret_iov, r->wr_buf, r->wr_size, r->wr_prod, r->wr_space);
        return r->wr_space;
}

int vbus__vchan_ring_commit(VbusVchanRing *r, size_t n)
{
        if (r->error < 0)
                return r->error;
        if (n > r->wr_space)
                return -EINVAL;
        if (n == 0)
                return 0;
        /* Write barrier: the data is visible before the producer counter that covers it. */
        __atomic_thread_fence(__ATOMIC_RELEASE);
        r->wr_prod += (uint32_t)n;
        r->wr_space -= (uint32_t)n;
        shared_store32(r->page, r->off_wr_prod, r->wr_prod);
        r->owed |= VBUS_VCHAN_NOTIFY_WRITE;
        return 0;
}

int vbus__vchan_ring_flush(VbusVchanRing *r)
{
        uint8_t owed = r->owed;
        uint8_t old;

        if (owed == 0)
                return 0;
        r->owed = 0;
        full_barrier();
        old = __atomic_fetch_and(r->page + r->off_own_notify, (uint8_t)~owed, __ATOMIC_SEQ_CST);
        return (old & owed) ? 1 : 0;
}

ssize_t vbus__vchan_ring_read(VbusVchanRing *r, void *buf, size_t n)
{
        struct iovec iov[2] = {{0}};
        ssize_t k;
        size_t a, b;
        int e;

        if (n == 0)
                return r->error ? r->error : 0;
        k = vbus__vchan_ring_peek(r, 1, iov);
        if (k <= 0)
                return k;
        a = iov[0].iov_len < n ? iov[0].iov_len : n;
        b = iov[1].iov_len < n - a ? iov[1].iov_len : n - a;
        memcpy(buf, iov[0].iov_base, a);
        memcpy((uint8_t *)buf + a, iov[1].iov_base, b);
        e = vbus__vchan_ring_consume(r, a + b);
        if (e < 0)
                return e;
        return (ssize_t)(a + b);
}

ssize_t vbus__vchan_ring_write(VbusVchanRing *r, const void *buf, size_t n)
{
        struct iovec iov[2] = {{0}};
        ssize_t k;
        size_t a, b;
        int e;

        if (n == 0)
                return r->error ? r->error : 0;
        k = vbus__vchan_ring_reserve(r, n, iov);
        if (k <= 0)
                return k;
        a = iov[0].iov_len < n ? iov[0].iov_len : n;
        b = iov[1].iov_len < n - a ? iov[1].iov_len : n - a;
        memcpy(iov[0].iov_base, buf, a);
        memcpy(iov[1].iov_base, (const uint8_t *)buf + a, b);
        e = vbus__vchan_ring_commit(r, a + b);
        if (e < 0)
                return e;
        return (ssize_t)(a + b);
}

uint32_t vbus__vchan_ring_read_size(const VbusVchanRing *r)
{
        return r->rd_size;
}

uint32_t vbus__vchan_ring_write_size(const VbusVchanRing *r)
{
        return r->wr_size;
}

uint32_t vbus__vchan_ring_unconsumed(VbusVchanRing *r)
{
        uint32_t used = 0;

        if (r->error || ring_load_used(r, &used) < 0)
                return 0;
        return used;
}
