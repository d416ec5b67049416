/* SPDX-License-Identifier: MIT */
/*
 * msgqueue: the compact queue of received messages of a stream (see msgqueue.h).
 */
#include "msgqueue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool vbus__msgqueue_is_empty(const VbusMsgQueue *q)
{
        return q->head == q->tail;
}

static uint32_t get32(const uint8_t *p)
{
        uint32_t v;

        memcpy(&v, p, 4);
        return v;
}

static void put32(uint8_t *p, uint32_t v)
{
        memcpy(p, &v, 4);
}

int vbus__msgqueue_push(VbusMsgQueue *q, const uint8_t *data, size_t n)
{
        size_t need = 4 + (n > 0 ? n : 4);

        if (n > UINT32_MAX)
                return -EMSGSIZE;
        if (n == 0 && q->last_is_empty_run && get32(q->buf + q->last + 4) < UINT32_MAX) {
                put32(q->buf + q->last + 4, get32(q->buf + q->last + 4) + 1);
                q->n_messages++;
                return 0;
        }
        if (q->head > 0 && q->tail + need > q->cap) {
                /* Slide what is left to the front before growing. */
                memmove(q->buf, q->buf + q->head, q->tail - q->head);
                q->tail -= q->head;
                if (q->last_is_empty_run)
                        q->last -= q->head;
                q->head = 0;
        }
        if (q->tail + need > q->cap) {
                size_t cap = q->cap ? q->cap : 4096;
                uint8_t *b;

                while (cap < q->tail + need)
                        cap *= 2;
                b = realloc(q->buf, cap);
                if (!b)
                        return -ENOMEM;
                q->buf = b;
                q->cap = cap;
        }
        put32(q->buf + q->tail, (uint32_t)n);
        if (n > 0) {
                memcpy(q->buf + q->tail + 4, data, n);
                q->last_is_empty_run = false;
        } else {
                put32(q->buf + q->tail + 4, 1);
                q->last = q->tail;
                q->last_is_empty_run = true;
        }
        q->tail += need;
        q->n_messages++;
        return 0;
}

const uint8_t *vbus__msgqueue_peek(const VbusMsgQueue *q, size_t *ret_n)
{
        *ret_n = get32(q->buf + q->head);
        return q->buf + q->head + 4;
}

void vbus__msgqueue_pop(VbusMsgQueue *q)
{
        uint32_t len = get32(q->buf + q->head);

        q->n_messages--;
        if (len == 0) {
                uint32_t count = get32(q->buf + q->head + 4);

                if (count > 1) {
                        put32(q->buf + q->head + 4, count - 1);
                        return;
                }
                if (q->last_is_empty_run && q->last == q->head)
                        q->last_is_empty_run = false;
                q->head += 8;
        } else {
                q->head += 4 + (size_t)len;
        }
        if (q->head == q->tail) {
                q->head = q->tail = 0;
                q->last_is_empty_run = false;
        }
}

size_t vbus__msgqueue_bytes(const VbusMsgQueue *q)
{
        return q->tail - q->head;
}

void vbus__msgqueue_clear(VbusMsgQueue *q)
{
        free(q->buf);
        *q = (VbusMsgQueue){0};
}
