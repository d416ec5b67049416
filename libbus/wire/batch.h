/* SPDX-License-Identifier: MIT */
/*
 * batch: the messages of a DATA frame with VBUS_FLAG_BATCH (docs/protocol.md 5.5).
 *
 * A batch frame carries one or more whole messages of one stream, each a record: a canonical
 * (shortest) base-128 varint length L, then L bytes. From the broker, the records follow a Meta
 * prefix (control.h, vbus__meta_split()) that describes the first message; the others share its
 * topic and sender, and their sequence numbers follow it. The records fill the payload exactly.
 *
 * A batch is read twice and may live in a ring its sender can still write: the session counts
 * its messages to charge the window (vbus__batch_count()), and the owner walks them afterwards
 * (VbusBatchIter), never past the count that was charged nor past the frame. Bytes changed in
 * between can therefore cost the reader nothing: the walk stops at the first record that does not
 * parse as counted, and says so (-EPROTO), and what it gave before costs no more than was charged.
 *
 * No I/O; pure functions on (buf, len), unit-tested and fuzzed (tests/fuzz/fuzz-batch.c).
 */
#ifndef VBUS_LIBBUS_BATCH_H
#define VBUS_LIBBUS_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
        /* Bytes of a record's length varint at most: a record is at most a frame, and a frame's
         * payload at most VBUS_FRAME_MAX_LIMIT (16 MiB < 2^28), so four bytes always suffice. */
        VBUS_BATCH_LEN_MAX = 4,
};

/**
 * vbus__batch_count() - check the structure of a batch payload and count its messages.
 * @payload, @len: borrowed (@payload may be NULL when @len is 0).
 * @meta: the frame has VBUS_FLAG_META: the records start after a Meta prefix.
 * @ret_n: written on success: the number of records, >= 1.
 * Return: 0; VBUS_FRAME_E_MALFORMED (a truncated, non-canonical or overlong length, a record
 * past the payload, a bad Meta prefix); VBUS_FRAME_E_SEMANTIC (no record at all); -EINVAL.
 */
int vbus__batch_count(const uint8_t *payload, size_t len, bool meta, uint32_t *ret_n);

/**
 * vbus__batch_scan() - vbus__batch_count() on records alone (no Meta prefix), also giving the
 * largest record's length (@ret_max_len) and the sum of their lengths (@ret_bytes), in one pass.
 * Return: as vbus__batch_count().
 */
int vbus__batch_scan(const uint8_t *records, size_t len, uint32_t *ret_n, size_t *ret_max_len,
                     uint64_t *ret_bytes);

/* Walks the records of a batch that vbus__batch_count() counted. */
typedef struct VbusBatchIter {
        const uint8_t *p;
        size_t left;     /* payload bytes not walked yet */
        uint32_t n_left; /* records still to come, from the count that was charged */
} VbusBatchIter;

/**
 * vbus__batch_iter_init() - start walking @n records in @records (@len bytes, borrowed): the
 * payload after the Meta prefix if there is one.
 */
void vbus__batch_iter_init(VbusBatchIter *it, const uint8_t *records, size_t len, uint32_t n);

/**
 * vbus__batch_next() - the next record.
 * @ret_data, @ret_len: written on 1 (borrowed from the payload; @ret_data is never NULL).
 * Return: 1 (a record), 0 (all @n records walked and the payload ends there), -EPROTO (the bytes
 * no longer parse as counted: a record too long or malformed, more or fewer records than
 * counted).
 */
int vbus__batch_next(VbusBatchIter *it, const uint8_t **ret_data, size_t *ret_len);

/**
 * vbus__batch_put_len() - write @len as a record's length varint.
 * @out: at least VBUS_BATCH_LEN_MAX bytes.
 * Return: the bytes written (1..4); @len must be below 2^28.
 */
size_t vbus__batch_put_len(uint8_t *out, uint32_t len);

/* The bytes of @len's length varint. */
size_t vbus__batch_len_size(uint32_t len);

#endif /* VBUS_LIBBUS_BATCH_H */
