/* SPDX-License-Identifier: MIT */
/*
 * envelope: how an imported message is delivered on the local bus. The payload is prefixed with
 * one text line that carries what vbus pub/sub has no field for: the original sender as the
 * origin host's broker stamped it, and the loss the bridges saw on the way:
 *
 *   vbus-bridge/1 from=alpha:dom3(sensor) host=alpha domid=3 name=sensor uid=0 local=0
 *     topic=sensors.t seq=17 gap=0 dropped=0 unknown=0\n<payload>
 *
 * (one line; values percent-encoded outside [A-Za-z0-9_.-], except from=, which is for people).
 * The line is trustworthy only when the local broker's own stamp of the publisher is the bridge
 * (docs/federation.md, "Telling a bridged message from a forged one").
 */
#ifndef VBUS_BRIDGE_ENVELOPE_H
#define VBUS_BRIDGE_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits.h"

#define ENVELOPE_MAGIC "vbus-bridge/1 "
/* The longest envelope line, newline included. */
#define ENVELOPE_LINE_MAX 2048

typedef struct Envelope {
        char host[BRIDGE_HOST_MAX];
        uint32_t domid;
        uint32_t uid;
        bool local;
        char name[BRIDGE_NAME_MAX + 1];  /* the origin domain's name (may be empty) */
        char topic[BRIDGE_NAME_MAX + 1]; /* the topic at the origin */
        uint64_t seq;     /* the exporting bridge's sequence number on this subject */
        uint64_t gap;     /* messages of this subject lost just before this one (counted) */
        uint64_t dropped; /* messages the origin broker dropped for the exporting bridge's
                           * subscription just before this one (any topic of its pattern) */
        bool unknown;     /* an uncounted number may be missing before this one */
        const void *data; /* after envelope_parse(): the payload, borrowed from the input */
        size_t size;
} Envelope;

/* envelope_format_from() - "host:domN(name)" or "host:local(uid=N)" into @buf. */
void envelope_format_from(const Envelope *e, char *buf, size_t size);

/**
 * envelope_encode() - the envelope line for @e into @buf (@size bytes, at least
 * ENVELOPE_LINE_MAX). Return: its length (newline included, no NUL counted), or -ENOBUFS.
 */
int envelope_encode(const Envelope *e, char *buf, size_t size);

/**
 * envelope_parse() - parse @len bytes of @buf (an imported message) into @ret.
 * Return: 0; -EINVAL if @buf does not start with a well-formed envelope line.
 */
int envelope_parse(const void *buf, size_t len, Envelope *ret);

#endif /* VBUS_BRIDGE_ENVELOPE_H */
