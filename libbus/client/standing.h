/* SPDX-License-Identifier: MIT */
/*
 * standing: a stream this side keeps open for an object across reconnects (a publisher, a
 * subscription, a server): opened when the link is ready, failed for good by the broker's REJECT,
 * RESET or closing END (with the status it gave), and back to idle when the link loses it, to be
 * opened again on the next link. The object embeds a VbusStanding as its first member and uses
 * the vbus__standing_on_* functions in its VbusStreamOps (their @obj is the object). Not
 * installed.
 */
#ifndef VBUS_LIBBUS_STANDING_H
#define VBUS_LIBBUS_STANDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"

typedef enum VbusStandingState {
        VBUS_STANDING_IDLE = 0,    /* not opened on the current link (yet) */
        VBUS_STANDING_OPENING = 1, /* OPEN sent */
        VBUS_STANDING_OPEN = 2,    /* ACCEPT received */
        VBUS_STANDING_FAILED = 3,  /* REJECT, RESET or END from the broker: never reopened */
} VbusStandingState;

typedef struct VbusStanding {
        vbus_conn *conn;
        char *name; /* the topic, pattern or service the stream is opened with */
        VbusStandingState state;
        VbusStream *vs; /* while the stream is open; bound to the object */
        uint32_t id;
        int status; /* why it failed, once FAILED */
        char *status_message;
} VbusStanding;

/**
 * vbus__standing_new() - a zeroed object of @size bytes whose first member is a VbusStanding,
 * idle, for @name (copied).
 * Return: the object (free it with vbus__standing_deinit() and free()), or NULL on ENOMEM.
 */
void *vbus__standing_new(vbus_conn *c, size_t size, const char *name);

/* Unbinds the stream (if open) and frees what vbus__standing_new() allocated for it. */
void vbus__standing_deinit(VbusStanding *s);

/**
 * vbus__standing_open() - opens the stream if it is idle and the connection is ready.
 * @o: borrowed; the OPEN, whose name is set here. @ops, @obj: bound to the stream.
 * Failing to open leaves it idle (it is tried again on the next link).
 */
void vbus__standing_open(VbusStanding *s, Vbus__V1__Open *o, const VbusStreamOps *ops, void *obj);

/* Stream ops for an object that embeds a VbusStanding first. */
int vbus__standing_on_accept(void *obj, VbusStream *vs, const Vbus__V1__Accept *m);
int vbus__standing_on_reject(void *obj, VbusStream *vs, const Vbus__V1__Reject *m);
int vbus__standing_on_end(void *obj, VbusStream *vs, const Vbus__V1__End *m);
int vbus__standing_on_reset(void *obj, VbusStream *vs, const Vbus__V1__End *m);

/* For the object's ->closed: the stream is gone; unless it failed, it is idle again. */
void vbus__standing_closed(VbusStanding *s);

/* True when the stream is open and the connection ready. */
bool vbus__standing_is_active(const VbusStanding *s);

/* The public get_status of the object: 0, or the status it failed with; the message in
 * *@ret_message (may be NULL; "" when none). Return: -EINVAL for a NULL @s. */
int vbus__standing_get_status(const VbusStanding *s, const char **ret_message);

#endif /* VBUS_LIBBUS_STANDING_H */
