/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the batch codec (libbus/wire/batch.c, docs/protocol.md 5.5): the count that
 * charges the window, and the walk that hands the records out afterwards, over bytes a peer
 * controls and may change in between (a batch can sit in a ring its writer still writes).
 *
 * Input: byte 0: bit 0 = the frame has META (the records follow a Meta prefix); the rest of
 * byte 0 and byte 1 say which byte changes between the count and the walk and how. Bytes 2..:
 * the payload.
 *
 * Checked, besides crashes, over-reads (ASan, the payload is its own exact-size allocation) and
 * undefined behaviour (UBSan):
 * - the count returns 0 (with 1 <= n <= payload bytes), VBUS_FRAME_E_MALFORMED or
 *   VBUS_FRAME_E_SEMANTIC, nothing else;
 * - on the unchanged payload the walk gives exactly n records, each inside the payload, each
 *   length encoded in its canonical size (vbus__batch_len_size), and ends with 0;
 * - on the changed payload the walk gives at most n records, each inside the payload, and ends
 *   with 0 exactly when the changed bytes count as a batch of n records, else -EPROTO;
 * - a record's length written back with vbus__batch_put_len() is the bytes it was read from;
 * - vbus__batch_scan() on the records agrees with the count and the walk: the same number, the
 *   largest length and the sum of the lengths.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "control.h"
#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The records of @payload: after its Meta prefix if @meta (the count accepted it). */
static void records_of(const uint8_t *payload, size_t len, bool meta, const uint8_t **ret_rec,
                       size_t *ret_len)
{
        const uint8_t *m;
        size_t n_m;

        if (!meta) {
                *ret_rec = payload;
                *ret_len = len;
                return;
        }
        if (vbus__meta_split(payload, len, &m, &n_m, ret_rec, ret_len) != 0)
                abort();
}

/* Walks @n records of @rec (@len bytes); checks each is inside; @exact: the bytes are those
 * counted, so every length is canonical and put_len writes it back byte for byte. */
static size_t walk_max;   /* the largest record the last walk gave */
static uint64_t walk_sum; /* and the sum of their lengths */

static int walk(const uint8_t *rec, size_t len, uint32_t n, bool exact, uint32_t *ret_yielded)
{
        VbusBatchIter it;
        const uint8_t *pos = rec;
        uint32_t y = 0;
        int r;

        walk_max = 0;
        walk_sum = 0;
        vbus__batch_iter_init(&it, rec, len, n);
        for (;;) {
                const uint8_t *d = NULL;
                size_t l = 0;

                r = vbus__batch_next(&it, &d, &l);
                if (r != 1)
                        break;
                if (!d || d < rec || l > len || (size_t)(d - rec) > len - l || ++y > n)
                        abort();
                if (exact) {
                        uint8_t enc[VBUS_BATCH_LEN_MAX];
                        size_t k = (size_t)(d - pos);

                        if (k != vbus__batch_len_size((uint32_t)l) ||
                            vbus__batch_put_len(enc, (uint32_t)l) != k || memcmp(enc, pos, k) != 0)
                                abort();
                }
                pos = d + l;
                walk_sum += l;
                if (l > walk_max)
                        walk_max = l;
        }
        if (r != 0 && r != -EPROTO)
                abort();
        *ret_yielded = y;
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        bool meta;
        size_t len, at;
        uint8_t *buf;
        const uint8_t *rec;
        size_t n_rec;
        uint32_t n = 0, n2 = 0, y = 0;
        int r, r2;

        if (size < 2)
                return 0;
        meta = data[0] & 1;
        len = size - 2;
        buf = malloc(len ? len : 1);
        if (!buf)
                return 0;
        memcpy(buf, data + 2, len);
        r = vbus__batch_count(len ? buf : NULL, len, meta, &n);
        if (r != 0 && r != VBUS_FRAME_E_MALFORMED && r != VBUS_FRAME_E_SEMANTIC)
                abort();
        if (r != 0)
                goto out;
        if (n == 0 || n > len)
                abort();
        records_of(buf, len, meta, &rec, &n_rec);
        if (walk(rec, n_rec, n, true, &y) != 0 || y != n)
                abort();
        {
                uint32_t n_scan = 0;
                size_t max_len = 0;
                uint64_t sum = 0;

                if (vbus__batch_scan(rec, n_rec, &n_scan, &max_len, &sum) != 0 || n_scan != n ||
                    max_len != walk_max || sum != walk_sum)
                        abort();
        }

        /* The writer changes one byte of the records after the count (0 would change nothing,
         * so byte 1's value goes in unchanged only when it is not 0). */
        if (n_rec == 0)
                abort();
        at = ((size_t)(data[0] >> 1) * 251 + data[1]) % n_rec;
        ((uint8_t *)rec)[at] = data[1] ? (uint8_t)(rec[at] ^ data[1]) : (uint8_t)(rec[at] + 1);
        r = walk(rec, n_rec, n, false, &y);
        r2 = vbus__batch_count(rec, n_rec, false, &n2);
        if (r2 == 0 && n2 == n) {
                if (r != 0 || y != n)
                        abort();
        } else if (r != -EPROTO || y > n) {
                abort();
        }
out:
        free(buf);
        return 0;
}
