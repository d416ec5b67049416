/* SPDX-License-Identifier: MIT */
/*
 * msgqueue: the messages a stream has received and its application has not taken yet, in one
 * buffer of records: a 4-byte length and the payload. An empty message is a record of length 0
 * whose next 4 bytes count how many empty messages in a row it stands for, because flow-control
 * windows count payload bytes only and a peer could otherwise queue any number of them. So the
 * buffer holds at most the payload plus 4 bytes per non-empty message (plus one growth step),
 * and a message is copied once, into the queue. Not installed.
 */
#ifndef VBUS_LIBBUS_MSGQUEUE_H
#define VBUS_LIBBUS_MSGQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct VbusMsgQueue {
        uint8_t *buf;
        size_t cap, head, tail;
        size_t last; /* offset of the last record, when it is a run of empty ones */
        bool last_is_empty_run;
        size_t n_messages; /* messages queued, each empty one counted */
} VbusMsgQueue;

/* A zeroed VbusMsgQueue is an empty queue. */
bool vbus__msgqueue_is_empty(const VbusMsgQueue *q);

/* Appends a message of @n bytes (@n < 2^32) copied from @data. Return: 0 or -ENOMEM (the queue
 * is unchanged). */
int vbus__msgqueue_push(VbusMsgQueue *q, const uint8_t *data, size_t n);

/* The first message's payload (valid until the next push or pop) and size. The queue must not
 * be empty. */
const uint8_t *vbus__msgqueue_peek(const VbusMsgQueue *q, size_t *ret_n);

/* Drops the first message. The queue must not be empty. */
void vbus__msgqueue_pop(VbusMsgQueue *q);

/* Bytes of the buffer in use (for tests and accounting). */
size_t vbus__msgqueue_bytes(const VbusMsgQueue *q);

/* Frees the buffer; the queue is empty and usable again. */
void vbus__msgqueue_clear(VbusMsgQueue *q);

#endif /* VBUS_LIBBUS_MSGQUEUE_H */
