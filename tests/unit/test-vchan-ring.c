/*
 * Unit tests of the vchan ring logic (libbus/vchan-ring.c) on plain memory: both ends of a
 * vchan share one control page and two ring buffers in this process, exactly as two domains
 * share granted pages.
 */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
/* cmocka.h needs the headers above. */
#include <cmocka.h>

#include "vchan-ring.h"

/* A vchan in memory: the control page, external rings sized exactly (so ASan sees overruns). */
typedef struct Mem {
        VbusVchanLayout layout;
        uint8_t *page;
        uint8_t *ext[2];
        VbusVchanRing srv, cli;
} Mem;

static void mem_init(Mem *m, uint32_t lo, uint32_t ro)
{
        uint32_t grants[VBUS_VCHAN_MAX_GRANTS];

        memset(m, 0, sizeof(*m));
        assert_int_equal(vbus__vchan_layout_from_orders(lo, ro, &m->layout), 0);
        m->page = aligned_alloc(VBUS_VCHAN_PAGE_SIZE, VBUS_VCHAN_PAGE_SIZE);
        assert_non_null(m->page);
        for (int i = 0; i < 2; i++) {
                if (m->layout.n_pages[i]) {
                        m->ext[i] = malloc((size_t)1 << m->layout.order[i]);
                        assert_non_null(m->ext[i]);
                }
        }
        for (uint32_t i = 0; i < vbus__vchan_layout_n_grants(&m->layout); i++)
                grants[i] = 100 + i;
        vbus__vchan_page_init_server(m->page, &m->layout, grants);
        vbus__vchan_ring_init(&m->srv, m->page, true, &m->layout, m->ext[0], m->ext[1]);
        /* The client connects: as libxenvchan's client does after mapping. */
        vbus__vchan_ring_init(&m->cli, m->page, false, &m->layout, m->ext[0], m->ext[1]);
        vbus__vchan_ring_set_live(&m->cli, VBUS_VCHAN_LIVE_ON);
        m->page[VBUS_VCHAN_OFF_SRV_NOTIFY] = VBUS_VCHAN_NOTIFY_WRITE;
}

static void mem_deinit(Mem *m)
{
        free(m->page);
        free(m->ext[0]);
        free(m->ext[1]);
}

static uint32_t get32(const uint8_t *p, size_t off)
{
        return (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 | (uint32_t)p[off + 2] << 16 |
               (uint32_t)p[off + 3] << 24;
}

static void put32(uint8_t *p, size_t off, uint32_t v)
{
        p[off] = (uint8_t)v;
        p[off + 1] = (uint8_t)(v >> 8);
        p[off + 2] = (uint8_t)(v >> 16);
        p[off + 3] = (uint8_t)(v >> 24);
}

static void test_layout_orders_all_valid_pairs(void **state)
{
        VbusVchanLayout l;

        for (uint32_t lo = 10; lo <= 20; lo++) {
                for (uint32_t ro = 10; ro <= 20; ro++) {
                        int r = vbus__vchan_layout_from_orders(lo, ro, &l);
                        uint32_t pages =
                                (lo >= 12 ? 1u << (lo - 12) : 0) + (ro >= 12 ? 1u << (ro - 12) : 0);
                        uint32_t lowest = 4096;
                        bool overlap = (lo == ro && lo < 12);

                        if (lo == 10 || ro == 10)
                                lowest = 1024;
                        else if (lo == 11 || ro == 11)
                                lowest = 2048;
                        if (overlap || 24 + 4 * pages > lowest) {
                                assert_int_equal(r, -EPROTO);
                                continue;
                        }
                        assert_int_equal(r, 0);
                        assert_int_equal(l.order[0], lo);
                        assert_int_equal(l.order[1], ro);
                        assert_int_equal(l.offset[0], lo == 10 ? 1024 : lo == 11 ? 2048 : 0);
                        assert_int_equal(l.offset[1], ro == 10 ? 1024 : ro == 11 ? 2048 : 0);
                        assert_int_equal(vbus__vchan_layout_n_grants(&l), pages);
                }
        }
}

static void test_layout_orders_rejects_invalid(void **state)
{
        VbusVchanLayout l = {.order = {77, 77}};

        assert_int_equal(vbus__vchan_layout_from_orders(9, 12, &l), -EPROTO);
        assert_int_equal(vbus__vchan_layout_from_orders(12, 21, &l), -EPROTO);
        assert_int_equal(vbus__vchan_layout_from_orders(0, 0, &l), -EPROTO);
        assert_int_equal(vbus__vchan_layout_from_orders(65535, 12, &l), -EPROTO);
        assert_int_equal(vbus__vchan_layout_from_orders(10, 10, &l), -EPROTO);
        assert_int_equal(vbus__vchan_layout_from_orders(11, 11, &l), -EPROTO);
        /* order 20 = 256 refs = bytes 24..1048, overlapping an order-10 ring at 1024 */
        assert_int_equal(vbus__vchan_layout_from_orders(10, 20, &l), -EPROTO);
        assert_int_equal(vbus__vchan_layout_from_orders(20, 10, &l), -EPROTO);
        /* output untouched on failure */
        assert_int_equal(l.order[0], 77);
        assert_int_equal(vbus__vchan_layout_from_orders(10, 19, &l), 0);
        assert_int_equal(vbus__vchan_layout_from_orders(11, 20, &l), 0);
        assert_int_equal(vbus__vchan_layout_from_orders(20, 20, &l), 0);
}

static void check_sizes(size_t left, size_t right, uint32_t lo, uint32_t ro)
{
        VbusVchanLayout l;

        assert_int_equal(vbus__vchan_layout_from_sizes(left, right, &l), 0);
        assert_int_equal(l.order[0], lo);
        assert_int_equal(l.order[1], ro);
}

static void test_layout_sizes_match_libxenvchan(void **state)
{
        VbusVchanLayout l;

        check_sizes(0, 0, 10, 11);
        check_sizes(1024, 2048, 10, 11);
        check_sizes(2048, 1024, 11, 10);
        check_sizes(2048, 2048, 11, 12);
        check_sizes(3000, 1500, 12, 11);
        check_sizes(4096, 65536, 12, 16);
        check_sizes(65536, 65536, 16, 16);
        check_sizes(65537, 4097, 17, 13);
        check_sizes(1 << 20, 1 << 20, 20, 20);
        check_sizes(1024, 1 << 20, 11, 20);
        assert_int_equal(vbus__vchan_layout_from_sizes((1 << 20) + 1, 1024, &l), -EINVAL);
        assert_int_equal(vbus__vchan_layout_from_sizes(1024, (1 << 20) + 1, &l), -EINVAL);
}

/* The MirageOS 2014 dump (vchan-brief 1.2): both orders 13, grants 9, 10 (left), 11, 12. */
static void test_page_init_server_matches_mirage_vector(void **state)
{
        static const uint8_t want[24] = {0x0d, 0x00, 0x0d, 0x00, 0x02, 0x01, 0x01, 0x00,
                                         0x09, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00,
                                         0x0b, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00};
        uint32_t grants[4] = {9, 10, 11, 12};
        VbusVchanLayout l;
        uint8_t *page = aligned_alloc(4096, 4096);

        assert_non_null(page);
        memset(page, 0xa5, 4096);
        assert_int_equal(vbus__vchan_layout_from_orders(13, 13, &l), 0);
        vbus__vchan_page_init_server(page, &l, grants);
        for (int i = 0; i < 16; i++)
                assert_int_equal(page[i], 0);
        assert_memory_equal(page + 16, want, sizeof(want));
        for (int i = 40; i < 4096; i++)
                assert_int_equal(page[i], 0);
        free(page);
}

/* Every field at its documented offset, for an in-page pair (10, 11) and an external one. */
static void test_page_init_server_field_offsets(void **state)
{
        uint32_t grants[256 + 16];
        VbusVchanLayout l;
        uint8_t *page = aligned_alloc(4096, 4096);

        assert_non_null(page);
        assert_int_equal(vbus__vchan_layout_from_orders(10, 11, &l), 0);
        vbus__vchan_page_init_server(page, &l, NULL);
        assert_int_equal(page[16] | page[17] << 8, 10);
        assert_int_equal(page[18] | page[19] << 8, 11);
        assert_int_equal(page[20], 2);
        assert_int_equal(page[21], 1);
        assert_int_equal(page[22], VBUS_VCHAN_NOTIFY_WRITE);
        assert_int_equal(page[23], 0);
        for (int i = 24; i < 4096; i++)
                assert_int_equal(page[i], 0);

        for (uint32_t i = 0; i < 256 + 16; i++)
                grants[i] = 0x01020304u + i;
        assert_int_equal(vbus__vchan_layout_from_orders(20, 16, &l), 0);
        vbus__vchan_page_init_server(page, &l, grants);
        assert_int_equal(page[16] | page[17] << 8, 20);
        assert_int_equal(page[18] | page[19] << 8, 16);
        for (uint32_t i = 0; i < 256 + 16; i++)
                assert_int_equal(get32(page, 24 + 4 * i), 0x01020304u + i);
        assert_int_equal(page[24 + 4 * 272], 0);
        free(page);
}

static void test_page_read_layout_roundtrip_and_rejects(void **state)
{
        uint32_t grants[4] = {9, 10, 11, 12}, got[VBUS_VCHAN_MAX_GRANTS];
        VbusVchanLayout l, r;
        uint8_t *page = aligned_alloc(4096, 4096);

        assert_non_null(page);
        assert_int_equal(vbus__vchan_layout_from_orders(13, 13, &l), 0);
        vbus__vchan_page_init_server(page, &l, grants);
        assert_int_equal(vbus__vchan_page_read_layout(page, &r, got), 0);
        assert_memory_equal(&l, &r, sizeof(l));
        assert_memory_equal(got, grants, sizeof(grants));

        page[16] = 21;
        assert_int_equal(vbus__vchan_page_read_layout(page, &r, got), -EPROTO);
        page[16] = 10;
        page[18] = 20;
        assert_int_equal(vbus__vchan_page_read_layout(page, &r, got), -EPROTO);
        page[16] = 11;
        page[18] = 11;
        assert_int_equal(vbus__vchan_page_read_layout(page, &r, got), -EPROTO);
        page[16] = 13;
        page[17] = 1; /* order 269 */
        page[18] = 13;
        assert_int_equal(vbus__vchan_page_read_layout(page, &r, got), -EPROTO);
        free(page);
}

/* Streams a pseudo-random byte sequence both ways through every valid order pair. */
static void transfer(Mem *m, size_t total, size_t chunk)
{
        uint8_t *out = malloc(chunk), *in = malloc(chunk);
        size_t sent[2] = {0, 0}, recvd[2] = {0, 0};
        VbusVchanRing *w[2] = {&m->srv, &m->cli}, *rd[2] = {&m->cli, &m->srv};

        assert_non_null(out);
        assert_non_null(in);
        while (recvd[0] < total || recvd[1] < total) {
                for (int d = 0; d < 2; d++) {
                        size_t n = total - sent[d] < chunk ? total - sent[d] : chunk;
                        ssize_t k;

                        for (size_t i = 0; i < n; i++)
                                out[i] = (uint8_t)((sent[d] + i) * 131 + d);
                        if (n > 0) {
                                k = vbus__vchan_ring_write(w[d], out, n);
                                assert_true(k > 0 || k == -EAGAIN);
                                if (k > 0)
                                        sent[d] += (size_t)k;
                        }
                        vbus__vchan_ring_flush(w[d]);
                        k = vbus__vchan_ring_read(rd[d], in, chunk);
                        assert_true(k > 0 || k == -EAGAIN);
                        for (ssize_t i = 0; i < k; i++)
                                assert_int_equal(in[i], (uint8_t)((recvd[d] + i) * 131 + d));
                        if (k > 0)
                                recvd[d] += (size_t)k;
                        vbus__vchan_ring_flush(rd[d]);
                }
        }
        free(out);
        free(in);
}

static void test_ring_transfer_every_order_pair(void **state)
{
        for (uint32_t lo = 10; lo <= 20; lo++) {
                for (uint32_t ro = 10; ro <= 20; ro++) {
                        VbusVchanLayout l;
                        Mem m;

                        if (vbus__vchan_layout_from_orders(lo, ro, &l) < 0)
                                continue;
                        mem_init(&m, lo, ro);
                        assert_int_equal(vbus__vchan_ring_read_size(&m.srv), 1u << lo);
                        assert_int_equal(vbus__vchan_ring_write_size(&m.srv), 1u << ro);
                        assert_int_equal(vbus__vchan_ring_read_size(&m.cli), 1u << ro);
                        transfer(&m, (3u << (lo > ro ? lo : ro)) + 17, 777);
                        mem_deinit(&m);
                }
        }
}

/* A completely full ring (prod - cons == size) is legal (Xen 4.5). */
static void test_ring_full_ring_is_legal(void **state)
{
        uint8_t buf[2048], in[2048];
        Mem m;

        mem_init(&m, 10, 11);
        memset(buf, 0x5a, sizeof(buf));
        assert_int_equal(vbus__vchan_ring_write(&m.srv, buf, 2048), 2048);
        assert_int_equal(vbus__vchan_ring_write(&m.srv, buf, 1), -EAGAIN);
        assert_int_equal(vbus__vchan_ring_unconsumed(&m.srv), 2048);
        assert_int_equal(vbus__vchan_ring_read(&m.cli, in, sizeof(in)), 2048);
        assert_memory_equal(in, buf, 2048);
        assert_int_equal(vbus__vchan_ring_unconsumed(&m.srv), 0);
        mem_deinit(&m);
}

static void test_ring_peek_wraps_in_two_segments(void **state)
{
        struct iovec iov[2];
        uint8_t buf[1024];
        Mem m;

        mem_init(&m, 10, 11);
        for (int i = 0; i < 1024; i++)
                buf[i] = (uint8_t)i;
        /* client writes 1000, server consumes 1000, client writes 100: wraps at 1024 */
        assert_int_equal(vbus__vchan_ring_write(&m.cli, buf, 1000), 1000);
        assert_int_equal(vbus__vchan_ring_read(&m.srv, buf + 0, 0), 0);
        assert_int_equal(vbus__vchan_ring_peek(&m.srv, 1, iov), 1000);
        assert_int_equal(vbus__vchan_ring_consume(&m.srv, 1000), 0);
        assert_int_equal(vbus__vchan_ring_write(&m.cli, buf, 100), 100);
        assert_int_equal(vbus__vchan_ring_peek(&m.srv, 1, iov), 100);
        assert_int_equal(iov[0].iov_len, 24);
        assert_int_equal(iov[1].iov_len, 76);
        assert_ptr_equal(iov[0].iov_base, m.page + 1024 + 1000);
        assert_ptr_equal(iov[1].iov_base, m.page + 1024);
        assert_memory_equal(iov[0].iov_base, buf, 24);
        assert_memory_equal(iov[1].iov_base, buf + 24, 76);
        /* partial consume, then more than seen */
        assert_int_equal(vbus__vchan_ring_consume(&m.srv, 30), 0);
        assert_int_equal(vbus__vchan_ring_consume(&m.srv, 71), -EINVAL);
        assert_int_equal(vbus__vchan_ring_consume(&m.srv, 70), 0);
        assert_int_equal(vbus__vchan_ring_peek(&m.srv, 1, iov), -EAGAIN);
        mem_deinit(&m);
}

static void test_ring_reserve_commit_in_place(void **state)
{
        struct iovec iov[2];
        uint8_t in[16];
        Mem m;

        mem_init(&m, 12, 12);
        assert_int_equal(vbus__vchan_ring_reserve(&m.srv, 16, iov), 4096);
        assert_ptr_equal(iov[0].iov_base, m.ext[1]);
        memcpy(iov[0].iov_base, "hello, vchan 123", 16);
        assert_int_equal(vbus__vchan_ring_commit(&m.srv, 4097), -EINVAL);
        assert_int_equal(vbus__vchan_ring_commit(&m.srv, 16), 0);
        assert_int_equal(get32(m.page, VBUS_VCHAN_OFF_RIGHT_PROD), 16);
        assert_int_equal(vbus__vchan_ring_read(&m.cli, in, sizeof(in)), 16);
        assert_memory_equal(in, "hello, vchan 123", 16);
        assert_int_equal(get32(m.page, VBUS_VCHAN_OFF_RIGHT_CONS), 16);
        mem_deinit(&m);
}

/* The reader asks for WRITE events only when it runs short; the writer signals once per batch. */
static void test_ring_notify_requests_and_batching(void **state)
{
        uint8_t buf[64];
        Mem m;

        mem_init(&m, 12, 12);
        m.page[VBUS_VCHAN_OFF_CLI_NOTIFY] = 0;
        m.page[VBUS_VCHAN_OFF_SRV_NOTIFY] = 0;

        /* empty: the client's peek requests WRITE in the server's byte */
        assert_int_equal(vbus__vchan_ring_read(&m.cli, buf, sizeof(buf)), -EAGAIN);
        assert_int_equal(m.page[VBUS_VCHAN_OFF_SRV_NOTIFY], VBUS_VCHAN_NOTIFY_WRITE);

        /* server writes three frames, one flush: exactly one event, bit cleared */
        for (int i = 0; i < 3; i++)
                assert_int_equal(vbus__vchan_ring_write(&m.srv, buf, 10), 10);
        assert_int_equal(vbus__vchan_ring_flush(&m.srv), 1);
        assert_int_equal(m.page[VBUS_VCHAN_OFF_SRV_NOTIFY], 0);
        assert_int_equal(vbus__vchan_ring_flush(&m.srv), 0);
        assert_int_equal(vbus__vchan_ring_write(&m.srv, buf, 10), 10);
        assert_int_equal(vbus__vchan_ring_flush(&m.srv), 0);

        /* client reads while data is there: no new request */
        assert_int_equal(vbus__vchan_ring_read(&m.cli, buf, 5), 5);
        assert_int_equal(m.page[VBUS_VCHAN_OFF_SRV_NOTIFY], 0);
        /* nobody asked for READ: consume sends nothing */
        assert_int_equal(vbus__vchan_ring_flush(&m.cli), 0);

        /* the server fills its ring: reserve requests READ in the client's byte */
        memset(buf, 0, sizeof(buf));
        while (vbus__vchan_ring_write(&m.srv, buf, sizeof(buf)) > 0)
                ;
        assert_int_equal(m.page[VBUS_VCHAN_OFF_CLI_NOTIFY], VBUS_VCHAN_NOTIFY_READ);
        assert_int_equal(vbus__vchan_ring_read(&m.cli, buf, sizeof(buf)), sizeof(buf));
        assert_int_equal(vbus__vchan_ring_flush(&m.cli), 1);
        assert_int_equal(m.page[VBUS_VCHAN_OFF_CLI_NOTIFY], 0);

        /* unknown bits set by the peer are left alone */
        m.page[VBUS_VCHAN_OFF_CLI_NOTIFY] = 0xf0 | VBUS_VCHAN_NOTIFY_READ;
        assert_int_equal(vbus__vchan_ring_read(&m.cli, buf, 1), 1);
        assert_int_equal(vbus__vchan_ring_flush(&m.cli), 1);
        assert_int_equal(m.page[VBUS_VCHAN_OFF_CLI_NOTIFY], 0xf0);
        mem_deinit(&m);
}

/* The peer commits, then closes: the last bytes are still delivered, then end of stream. */
static void test_ring_final_recheck_after_close(void **state)
{
        uint8_t buf[32];
        Mem m;

        mem_init(&m, 10, 11);
        assert_int_equal(vbus__vchan_ring_write(&m.cli, "last words", 10), 10);
        vbus__vchan_ring_set_live(&m.cli, VBUS_VCHAN_LIVE_EXITED);
        assert_int_equal(vbus__vchan_ring_peer(&m.srv), VBUS_VCHAN_PEER_CLOSED);
        assert_int_equal(vbus__vchan_ring_read(&m.srv, buf, sizeof(buf)), 10);
        assert_memory_equal(buf, "last words", 10);
        assert_int_equal(vbus__vchan_ring_read(&m.srv, buf, sizeof(buf)), 0);
        assert_int_equal(vbus__vchan_ring_write(&m.srv, buf, 1), -EPIPE);
        mem_deinit(&m);
}

static void test_ring_peer_states(void **state)
{
        uint8_t buf[4];
        Mem m;

        mem_init(&m, 10, 11);
        m.page[VBUS_VCHAN_OFF_CLI_LIVE] = VBUS_VCHAN_LIVE_WAITING;
        assert_int_equal(vbus__vchan_ring_peer(&m.srv), VBUS_VCHAN_PEER_WAITING);
        /* a server may write before the client comes */
        assert_int_equal(vbus__vchan_ring_write(&m.srv, "x", 1), 1);
        assert_int_equal(vbus__vchan_ring_read(&m.srv, buf, 4), -EAGAIN);
        for (int v = 3; v < 256; v++) {
                m.page[VBUS_VCHAN_OFF_CLI_LIVE] = (uint8_t)v;
                assert_int_equal(vbus__vchan_ring_peer(&m.srv), VBUS_VCHAN_PEER_CLOSED);
        }
        /* a new client on the same page (reconnect) */
        m.page[VBUS_VCHAN_OFF_CLI_LIVE] = VBUS_VCHAN_LIVE_ON;
        assert_int_equal(vbus__vchan_ring_peer(&m.srv), VBUS_VCHAN_PEER_CONNECTED);

        /* client: 2 is not a server value; any closed value is final */
        m.page[VBUS_VCHAN_OFF_SRV_LIVE] = 2;
        assert_int_equal(vbus__vchan_ring_peer(&m.cli), VBUS_VCHAN_PEER_CLOSED);
        m.page[VBUS_VCHAN_OFF_SRV_LIVE] = 1;
        assert_int_equal(vbus__vchan_ring_peer(&m.cli), VBUS_VCHAN_PEER_CLOSED);
        mem_deinit(&m);
}

/* A client that reconnects to the same page continues from the counters it finds. */
static void test_ring_client_reconnect_continues_counters(void **state)
{
        uint8_t buf[8];
        Mem m;

        mem_init(&m, 10, 11);
        assert_int_equal(vbus__vchan_ring_write(&m.srv, "abcdef", 6), 6);
        assert_int_equal(vbus__vchan_ring_read(&m.cli, buf, 2), 2);
        assert_int_equal(vbus__vchan_ring_write(&m.cli, "xy", 2), 2);
        vbus__vchan_ring_set_live(&m.cli, VBUS_VCHAN_LIVE_EXITED);
        vbus__vchan_ring_init(&m.cli, m.page, false, &m.layout, NULL, NULL);
        vbus__vchan_ring_set_live(&m.cli, VBUS_VCHAN_LIVE_ON);
        assert_int_equal(vbus__vchan_ring_read(&m.cli, buf, 8), 4);
        assert_memory_equal(buf, "cdef", 4);
        assert_int_equal(vbus__vchan_ring_write(&m.cli, "z", 1), 1);
        assert_int_equal(vbus__vchan_ring_read(&m.srv, buf, 8), 3);
        assert_memory_equal(buf, "xyz", 3);
        mem_deinit(&m);
}

/* XSA-86: indices that no honest peer can produce are a protocol error, and it sticks. */
static void test_ring_hostile_prod_is_protocol_error(void **state)
{
        struct iovec iov[2];
        uint8_t buf[8];
        Mem m;

        mem_init(&m, 10, 11);
        put32(m.page, VBUS_VCHAN_OFF_LEFT_PROD, 1025);
        assert_int_equal(vbus__vchan_ring_peek(&m.srv, 1, iov), -EPROTO);
        put32(m.page, VBUS_VCHAN_OFF_LEFT_PROD, 0);
        assert_int_equal(vbus__vchan_ring_read(&m.srv, buf, 8), -EPROTO);
        assert_int_equal(vbus__vchan_ring_write(&m.srv, buf, 8), -EPROTO);
        assert_int_equal(vbus__vchan_ring_consume(&m.srv, 0), -EPROTO);
        mem_deinit(&m);

        /* "negative" ready: prod behind cons */
        mem_init(&m, 10, 11);
        put32(m.page, VBUS_VCHAN_OFF_RIGHT_PROD, 0xffffffffu);
        assert_int_equal(vbus__vchan_ring_read(&m.cli, buf, 8), -EPROTO);
        mem_deinit(&m);

        /* exactly full is fine */
        mem_init(&m, 10, 11);
        put32(m.page, VBUS_VCHAN_OFF_LEFT_PROD, 1024);
        assert_int_equal(vbus__vchan_ring_peek(&m.srv, 1, iov), 1024);
        assert_true((uint8_t *)iov[0].iov_base >= m.page + 1024);
        assert_true((uint8_t *)iov[0].iov_base + iov[0].iov_len <= m.page + 2048);
        mem_deinit(&m);
}

static void test_ring_hostile_cons_is_protocol_error(void **state)
{
        uint8_t buf[8] = {0};
        Mem m;

        mem_init(&m, 12, 12);
        assert_int_equal(vbus__vchan_ring_write(&m.srv, buf, 8), 8);
        /* the client claims to have consumed bytes never written */
        put32(m.page, VBUS_VCHAN_OFF_RIGHT_CONS, 9);
        /* the writer uses up the space it already knew of without looking ... */
        {
                uint8_t big[4088] = {0};

                assert_int_equal(vbus__vchan_ring_write(&m.srv, big, sizeof(big)), 4088);
        }
        /* ... and when it looks again the claim is still beyond what it produced */
        put32(m.page, VBUS_VCHAN_OFF_RIGHT_CONS, 4097);
        assert_int_equal(vbus__vchan_ring_write(&m.srv, buf, 8), -EPROTO);
        assert_int_equal(vbus__vchan_ring_write(&m.srv, buf, 8), -EPROTO);
        assert_int_equal(vbus__vchan_ring_unconsumed(&m.srv), 0);
        mem_deinit(&m);

        /* looking at the counter by other means reports it as well */
        mem_init(&m, 12, 12);
        assert_int_equal(vbus__vchan_ring_write(&m.srv, buf, 8), 8);
        put32(m.page, VBUS_VCHAN_OFF_RIGHT_CONS, 9);
        assert_int_equal(vbus__vchan_ring_unconsumed(&m.srv), 0);
        assert_int_equal(vbus__vchan_ring_write(&m.srv, buf, 8), -EPROTO);
        mem_deinit(&m);

        /* cons moving backwards within the ring only loses the peer space */
        mem_init(&m, 12, 12);
        assert_int_equal(vbus__vchan_ring_write(&m.srv, buf, 8), 8);
        assert_int_equal(vbus__vchan_ring_read(&m.cli, buf, 8), 8);
        put32(m.page, VBUS_VCHAN_OFF_RIGHT_CONS, 0);
        assert_int_equal(vbus__vchan_ring_unconsumed(&m.srv), 8);
        assert_int_equal(vbus__vchan_ring_write(&m.srv, buf, 8), 8);
        mem_deinit(&m);
}

/* Our own counters live in private memory: the peer overwriting them changes nothing. */
static void test_ring_own_counters_are_private(void **state)
{
        uint8_t buf[8];
        Mem m;

        mem_init(&m, 10, 11);
        assert_int_equal(vbus__vchan_ring_write(&m.cli, "12345678", 8), 8);
        put32(m.page, VBUS_VCHAN_OFF_LEFT_CONS, 0xdeadbeef); /* the server's own cons */
        assert_int_equal(vbus__vchan_ring_read(&m.srv, buf, 8), 8);
        assert_memory_equal(buf, "12345678", 8);
        assert_int_equal(get32(m.page, VBUS_VCHAN_OFF_LEFT_CONS), 8);
        mem_deinit(&m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_layout_orders_all_valid_pairs),
                cmocka_unit_test(test_layout_orders_rejects_invalid),
                cmocka_unit_test(test_layout_sizes_match_libxenvchan),
                cmocka_unit_test(test_page_init_server_matches_mirage_vector),
                cmocka_unit_test(test_page_init_server_field_offsets),
                cmocka_unit_test(test_page_read_layout_roundtrip_and_rejects),
                cmocka_unit_test(test_ring_transfer_every_order_pair),
                cmocka_unit_test(test_ring_full_ring_is_legal),
                cmocka_unit_test(test_ring_peek_wraps_in_two_segments),
                cmocka_unit_test(test_ring_reserve_commit_in_place),
                cmocka_unit_test(test_ring_notify_requests_and_batching),
                cmocka_unit_test(test_ring_final_recheck_after_close),
                cmocka_unit_test(test_ring_peer_states),
                cmocka_unit_test(test_ring_client_reconnect_continues_counters),
                cmocka_unit_test(test_ring_hostile_prod_is_protocol_error),
                cmocka_unit_test(test_ring_hostile_cons_is_protocol_error),
                cmocka_unit_test(test_ring_own_counters_are_private),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
