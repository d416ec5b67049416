/*
 * libFuzzer harness for the vchan ring logic (libbus/vchan-ring.c): the input is a control
 * page written by a hostile peer (orders, counters, live and notify bytes, grant list), the
 * ring contents, and a script of operations that interleaves our end's reads and writes with
 * the peer rewriting any shared field. Rings are allocated to their exact size, so ASan
 * reports any access outside them, and every iovec we are handed is checked here too.
 *
 * Input: [0] role (bit 0: we are the server) | [1..4] left and right order (uint16 LE) |
 * [5..28] the rest of the header (counters 0..15 and live/notify 20..23, as in the page) |
 * [29] grant count to fill | then that many uint32 refs | then the script, one opcode byte
 * followed by its operands.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vchan-ring.h"

typedef struct Input {
        const uint8_t *p;
        size_t n;
} Input;

static uint32_t take(Input *in, unsigned bytes)
{
        uint32_t v = 0;

        for (unsigned i = 0; i < bytes; i++) {
                v |= (uint32_t)(in->n ? *in->p : 0) << (8 * i);
                if (in->n) {
                        in->p++;
                        in->n--;
                }
        }
        return v;
}

static void check_iov(const struct iovec iov[2], const uint8_t *buf, uint32_t size, ssize_t n)
{
        const uint8_t *b0 = iov[0].iov_base, *b1 = iov[1].iov_base;

        if (n <= 0 || (size_t)n > size || iov[0].iov_len + iov[1].iov_len != (size_t)n)
                abort();
        if (b0 < buf || b0 + iov[0].iov_len > buf + size || b1 < buf ||
            b1 + iov[1].iov_len > buf + size)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint32_t grants[VBUS_VCHAN_MAX_GRANTS];
        uint8_t tmp[300];
        Input in = {data, size};
        VbusVchanLayout layout;
        VbusVchanRing r;
        uint8_t *page, *ext[2] = {NULL, NULL};
        const uint8_t *rd;
        uint8_t *wr;
        bool server;
        uint32_t n_grants;

        page = aligned_alloc(VBUS_VCHAN_PAGE_SIZE, VBUS_VCHAN_PAGE_SIZE);
        if (!page)
                return 0;
        memset(page, 0, VBUS_VCHAN_PAGE_SIZE);
        server = take(&in, 1) & 1;
        for (uint32_t off = VBUS_VCHAN_OFF_LEFT_ORDER; off < VBUS_VCHAN_OFF_CLI_LIVE; off++)
                page[off] = (uint8_t)take(&in, 1);
        for (uint32_t off = 0; off < VBUS_VCHAN_OFF_LEFT_ORDER; off++)
                page[off] = (uint8_t)take(&in, 1);
        for (uint32_t off = VBUS_VCHAN_OFF_CLI_LIVE; off < VBUS_VCHAN_OFF_GRANTS; off++)
                page[off] = (uint8_t)take(&in, 1);
        n_grants = take(&in, 1);
        for (uint32_t i = 0; i < n_grants; i++) {
                uint32_t g = take(&in, 4);

                memcpy(page + VBUS_VCHAN_OFF_GRANTS + 4 * (size_t)i, &g, 4);
        }

        /* What a client does at connect: one validated read of orders and grants. */
        if (vbus__vchan_page_read_layout(page, &layout, grants) < 0)
                goto out;
        if (VBUS_VCHAN_OFF_GRANTS + 4 * vbus__vchan_layout_n_grants(&layout) > 4096)
                abort();
        for (int i = 0; i < 2; i++) {
                if (layout.n_pages[i] == 0)
                        continue;
                ext[i] = malloc((size_t)1 << layout.order[i]);
                if (!ext[i])
                        goto out;
                memset(ext[i], 0x55 + i, (size_t)1 << layout.order[i]);
        }
        vbus__vchan_ring_init(&r, page, server, &layout, ext[0], ext[1]);
        rd = r.rd_buf;
        wr = r.wr_buf;

        while (in.n > 0) {
                struct iovec iov[2];
                ssize_t k;
                uint8_t acc = 0;

                switch (take(&in, 1) % 10) {
                case 0:
                        k = vbus__vchan_ring_peek(&r, take(&in, 2), iov);
                        if (k > 0) {
                                check_iov(iov, rd, vbus__vchan_ring_read_size(&r), k);
                                for (int i = 0; i < 2; i++)
                                        for (size_t j = 0; j < iov[i].iov_len; j++)
                                                acc ^= ((const uint8_t *)iov[i].iov_base)[j];
                                tmp[0] = acc;
                        }
                        break;
                case 1:
                        (void)vbus__vchan_ring_consume(&r, take(&in, 2));
                        break;
                case 2:
                        k = vbus__vchan_ring_reserve(&r, take(&in, 3), iov);
                        if (k > 0) {
                                check_iov(iov, wr, vbus__vchan_ring_write_size(&r), k);
                                memset(iov[0].iov_base, 0xee, iov[0].iov_len);
                                memset(iov[1].iov_base, 0xef, iov[1].iov_len);
                        }
                        break;
                case 3:
                        (void)vbus__vchan_ring_commit(&r, take(&in, 3));
                        break;
                case 4:
                        (void)vbus__vchan_ring_flush(&r);
                        break;
                case 5:
                        k = vbus__vchan_ring_read(&r, tmp, take(&in, 1) + 1);
                        if (k > (ssize_t)sizeof(tmp))
                                abort();
                        break;
                case 6:
                        k = vbus__vchan_ring_write(&r, tmp, take(&in, 1) + 1);
                        if (k > 256)
                                abort();
                        break;
                case 7: {
                        /* the peer rewrites a counter (ours or its own) */
                        uint32_t off = 4 * (take(&in, 1) % 4), v = take(&in, 4);

                        __atomic_store_n((uint32_t *)(void *)(page + off), v, __ATOMIC_RELAXED);
                        break;
                }
                case 8: {
                        /* the peer rewrites a live or notify byte, or an order */
                        uint32_t off = 16 + take(&in, 1) % 8;

                        page[off] = (uint8_t)take(&in, 1);
                        break;
                }
                default:
                        (void)vbus__vchan_ring_peer(&r);
                        (void)vbus__vchan_ring_unconsumed(&r);
                        break;
                }
        }
out:
        free(ext[0]);
        free(ext[1]);
        free(page);
        return 0;
}
