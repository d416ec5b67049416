/* SPDX-License-Identifier: MIT */
/*
 * queue: hands messages from libnats' delivery threads to the bridge's loop (see bridge.h).
 * Bounded in events and bytes (limits.h): a full queue makes the delivering thread wait, so
 * the backlog moves into libnats' per-subscription pending buffer, whose overflow libnats
 * reports as a slow consumer and the importer sees as a sequence gap: loss is never silent.
 * The loop is woken through a pipe written once per empty-to-non-empty transition.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "bridge.h"
#include "limits.h"

int queue_init(Queue *q)
{
        *q = (Queue){.wake = {-1, -1}};
        if (pipe2(q->wake, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        pthread_mutex_init(&q->lock, NULL);
        pthread_cond_init(&q->room, NULL);
        return 0;
}

void queue_deinit(Queue *q)
{
        Event *e = q->head, *next;

        for (; e; e = next) {
                next = e->next;
                natsMsg_Destroy(e->msg);
                free(e);
        }
        q->head = q->tail = NULL;
        if (q->wake[0] >= 0) {
                close(q->wake[0]);
                close(q->wake[1]);
                pthread_mutex_destroy(&q->lock);
                pthread_cond_destroy(&q->room);
        }
        q->wake[0] = q->wake[1] = -1;
}

void queue_close(Queue *q)
{
        pthread_mutex_lock(&q->lock);
        q->closing = true;
        pthread_cond_broadcast(&q->room);
        pthread_mutex_unlock(&q->lock);
}

void queue_push(Bridge *b, EventKind kind, unsigned index, natsMsg *msg)
{
        Queue *q = &b->q;
        Event *e = malloc(sizeof(*e));
        bool wake = false;

        if (!e) {
                /* Counted as the importer's loss by its sequence check; a call times out. */
                natsMsg_Destroy(msg);
                return;
        }
        *e = (Event){.kind = kind, .index = index, .msg = msg};
        e->cost = (size_t)natsMsg_GetDataLength(msg) + BRIDGE_QUEUE_EVENT_COST;
        pthread_mutex_lock(&q->lock);
        while (!q->closing &&
               (q->n >= BRIDGE_QUEUE_MAX_EVENTS || q->bytes + e->cost > BRIDGE_QUEUE_MAX_BYTES) &&
               q->n > 0) {
                atomic_fetch_add(&b->m.queue_waits, 1);
                pthread_cond_wait(&q->room, &q->lock);
        }
        if (q->closing) {
                pthread_mutex_unlock(&q->lock);
                natsMsg_Destroy(msg);
                free(e);
                return;
        }
        if (q->tail)
                q->tail->next = e;
        else
                q->head = e;
        q->tail = e;
        q->n++;
        q->bytes += e->cost;
        if (!q->woken) {
                q->woken = true;
                wake = true;
        }
        pthread_mutex_unlock(&q->lock);
        if (wake) {
                char c = 1;
                ssize_t r = write(q->wake[1], &c, 1);

                (void)r; /* a full pipe already wakes the loop */
        }
}

Event *queue_pop(Queue *q, unsigned max)
{
        Event *head, *last = NULL, *e;
        unsigned n = 0;

        pthread_mutex_lock(&q->lock);
        head = q->head;
        for (e = q->head; e && n < max; e = e->next) {
                last = e;
                q->bytes -= e->cost;
                n++;
        }
        if (last) {
                q->head = last->next;
                last->next = NULL;
                if (!q->head)
                        q->tail = NULL;
                q->n -= n;
                pthread_cond_broadcast(&q->room);
        } else {
                head = NULL;
        }
        if (!q->head)
                q->woken = false;
        pthread_mutex_unlock(&q->lock);
        return head;
}

void queue_drain_wake(Queue *q)
{
        char buf[64];

        while (read(q->wake[0], buf, sizeof(buf)) > 0)
                ;
}

void queue_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
        SubCtx *ctx = closure;

        queue_push(ctx->b, ctx->kind, ctx->index, msg);
}
