/* SPDX-License-Identifier: MIT */
/*
 * standing: a stream kept open across reconnects (see standing.h).
 */
#include "standing.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void *vbus__standing_new(vbus_conn *c, size_t size, const char *name)
{
        VbusStanding *s = calloc(1, size);

        if (!s)
                return NULL;
        s->conn = c;
        s->name = strdup(name);
        if (!s->name) {
                free(s);
                return NULL;
        }
        return s;
}

void vbus__standing_deinit(VbusStanding *s)
{
        if (s->vs)
                vbus__endpoint_bind(s->vs, NULL, NULL);
        free(s->name);
        free(s->status_message);
}

void vbus__standing_open(VbusStanding *s, Vbus__V1__Open *o, const VbusStreamOps *ops, void *obj)
{
        if (s->state != VBUS_STANDING_IDLE || s->conn->state != VBUS_CONN_READY)
                return;
        o->name = s->name;
        if (vbus__conn_open_stream(s->conn, o, ops, obj, &s->vs) == 0) {
                s->id = s->vs->id;
                s->state = VBUS_STANDING_OPENING;
        }
}

/* The broker ended the stream: it never ends with success from its side. */
static void standing_fail(VbusStanding *s, int status, const char *message)
{
        char *copy = message ? strdup(message) : NULL;

        s->state = VBUS_STANDING_FAILED;
        s->status = status == VBUS_STATUS_OK ? VBUS_STATUS_UNAVAILABLE : status;
        free(s->status_message);
        s->status_message = copy;
}

int vbus__standing_on_accept(void *obj, VbusStream *vs, const Vbus__V1__Accept *m)
{
        VbusStanding *s = obj;

        (void)vs;
        (void)m;
        s->state = VBUS_STANDING_OPEN;
        return 0;
}

int vbus__standing_on_reject(void *obj, VbusStream *vs, const Vbus__V1__Reject *m)
{
        (void)vs;
        standing_fail(obj, (int)m->status, m->message);
        return 0;
}

int vbus__standing_on_end(void *obj, VbusStream *vs, const Vbus__V1__End *m)
{
        /* Only an END that closes the stream is an outcome; a half-close is not. */
        if (vs->local_ended && vs->remote_ended)
                standing_fail(obj, (int)m->status, m->message);
        return 0;
}

int vbus__standing_on_reset(void *obj, VbusStream *vs, const Vbus__V1__End *m)
{
        (void)vs;
        standing_fail(obj, (int)m->status, m->message);
        return 0;
}

void vbus__standing_closed(VbusStanding *s)
{
        s->vs = NULL;
        if (s->state != VBUS_STANDING_FAILED)
                s->state = VBUS_STANDING_IDLE;
}

bool vbus__standing_is_active(const VbusStanding *s)
{
        return s->state == VBUS_STANDING_OPEN && s->conn->state == VBUS_CONN_READY;
}

int vbus__standing_get_status(const VbusStanding *s, const char **ret_message)
{
        if (!s)
                return -EINVAL;
        if (ret_message)
                *ret_message = s->status_message ? s->status_message : "";
        return s->state == VBUS_STANDING_FAILED ? s->status : 0;
}
