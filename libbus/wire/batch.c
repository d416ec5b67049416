/* SPDX-License-Identifier: MIT */
/*
 * batch: counting and walking the records of a batch frame (see batch.h for the contract).
 */
#include "batch.h"

#include <errno.h>

#include "control.h"
#include "frame.h"

/*
 * Reads one record's length varint at @p (@left bytes). The value read once is the value used.
 * Return: the varint's size (1..VBUS_BATCH_LEN_MAX), or 0 if it is truncated, non-canonical, longer
 * than VBUS_BATCH_LEN_MAX bytes, or its record runs past @left.
 */
static size_t record_len(const uint8_t *p, size_t left, uint32_t *ret_len)
{
        uint32_t v = 0;

        for (size_t i = 0; i < VBUS_BATCH_LEN_MAX && i < left; i++) {
                uint8_t b = p[i];

                v |= (uint32_t)(b & 0x7f) << (7 * i);
                if (b & 0x80)
                        continue;
                /* Canonical: a last byte of 0 after the first adds nothing. */
                if (i > 0 && b == 0)
                        return 0;
                if (v > left - (i + 1))
                        return 0;
                *ret_len = v;
                return i + 1;
        }
        return 0;
}

static int records_start(const uint8_t *payload, size_t len, bool meta, const uint8_t **ret_rec,
                         size_t *ret_n)
{
        const uint8_t *m, *body;
        size_t n_m, n_body;
        int r;

        if (!meta) {
                *ret_rec = payload;
                *ret_n = len;
                return 0;
        }
        r = vbus__meta_split(payload, len, &m, &n_m, &body, &n_body);
        if (r != 0)
                return r > 0 ? VBUS_FRAME_E_MALFORMED : r;
        *ret_rec = body;
        *ret_n = n_body;
        return 0;
}

static int scan(const uint8_t *p, size_t left, uint32_t *ret_n, size_t *ret_max_len,
                uint64_t *ret_bytes)
{
        uint64_t bytes = 0;
        size_t max_len = 0;
        uint32_t n = 0;

        if (left == 0)
                return VBUS_FRAME_E_SEMANTIC;
        while (left > 0) {
                uint32_t l;
                size_t k = record_len(p, left, &l);

                if (k == 0)
                        return VBUS_FRAME_E_MALFORMED;
                p += k + l;
                left -= k + l;
                bytes += l;
                if (l > max_len)
                        max_len = l;
                n++; /* at most one record per payload byte: no overflow */
        }
        *ret_n = n;
        if (ret_max_len)
                *ret_max_len = max_len;
        if (ret_bytes)
                *ret_bytes = bytes;
        return 0;
}

int vbus__batch_count(const uint8_t *payload, size_t len, bool meta, uint32_t *ret_n)
{
        const uint8_t *p;
        size_t left;
        int r;

        if ((len > 0 && !payload) || !ret_n)
                return -EINVAL;
        r = records_start(payload, len, meta, &p, &left);
        if (r != 0)
                return r;
        return scan(p, left, ret_n, NULL, NULL);
}

int vbus__batch_scan(const uint8_t *records, size_t len, uint32_t *ret_n, size_t *ret_max_len,
                     uint64_t *ret_bytes)
{
        if ((len > 0 && !records) || !ret_n)
                return -EINVAL;
        return scan(records, len, ret_n, ret_max_len, ret_bytes);
}

void vbus__batch_iter_init(VbusBatchIter *it, const uint8_t *records, size_t len, uint32_t n)
{
        it->p = records;
        it->left = len;
        it->n_left = n;
}

int vbus__batch_next(VbusBatchIter *it, const uint8_t **ret_data, size_t *ret_len)
{
        uint32_t l;
        size_t k;

        if (it->n_left == 0)
                return it->left == 0 ? 0 : -EPROTO;
        if (it->left == 0)
                return -EPROTO;
        k = record_len(it->p, it->left, &l);
        if (k == 0)
                return -EPROTO;
        *ret_data = it->p + k;
        *ret_len = l;
        it->p += k + l;
        it->left -= k + l;
        it->n_left--;
        return 1;
}

size_t vbus__batch_put_len(uint8_t *out, uint32_t len)
{
        size_t n = 0;

        while (len >= 0x80) {
                out[n++] = (uint8_t)(len | 0x80);
                len >>= 7;
        }
        out[n++] = (uint8_t)len;
        return n;
}

size_t vbus__batch_len_size(uint32_t len)
{
        return len < (1u << 7) ? 1 : len < (1u << 14) ? 2 : len < (1u << 21) ? 3 : 4;
}
