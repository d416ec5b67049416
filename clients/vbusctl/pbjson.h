/* SPDX-License-Identifier: MIT */
/*
 * pbjson: protobuf messages to and from JSON, driven by a vbus.v1.ServiceDescription that a
 * server registered with the broker (docs/reflection.md), for `vbusctl call --json`. It follows
 * the proto3 JSON mapping: members by JSON name (the .proto name is accepted too), 64-bit
 * integers as strings (numbers accepted), bytes in base64 (standard or URL alphabet, padding
 * optional), enums by name (numbers accepted), repeated fields as arrays, nested messages as
 * objects, null as the default; "NaN", "Infinity" and "-Infinity" for floats. Fields at their
 * default are not printed. Map fields are seen as what protoc makes of them: repeated entry
 * messages with a key and a value.
 *
 * Both directions walk nested messages with an explicit stack (no recursion over input), at most
 * PBJSON_DEPTH_MAX deep. Every error is one line naming where: a JSON path ("$.entries[2].key")
 * and, for malformed JSON, the byte offset.
 */
#ifndef VBUSCTL_PBJSON_H
#define VBUSCTL_PBJSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vbus/v1/describe.pb-c.h"

enum {
        /* Nesting of JSON values and of messages: far beyond any real request, and it bounds
         * the stack a hostile reply or input can make this program build. */
        PBJSON_DEPTH_MAX = 64,
        /* Bytes of an error message. */
        PBJSON_ERR_MAX = 512,
};

/* The message type named @name (a full name) in @d, or NULL. */
const Vbus__V1__MessageDescription *pbjson_find_message(const Vbus__V1__ServiceDescription *d,
                                                        const char *name);

/**
 * pbjson_encode() - the protobuf encoding of the JSON object @json (@n bytes, borrowed) as a
 * message of type @md of the description @d.
 * Return: 0 with a malloc'ed buffer in *@ret (may be NULL when *@ret_n is 0); -EINVAL with the
 * reason in @err (PBJSON_ERR_MAX bytes): malformed JSON, a wrong type, an unknown field, a
 * number out of range, too deep; -ENOMEM.
 */
int pbjson_encode(const Vbus__V1__ServiceDescription *d, const Vbus__V1__MessageDescription *md,
                  const char *json, size_t n, uint8_t **ret, size_t *ret_n, char *err);

/**
 * pbjson_print() - writes the message @buf (@n bytes, borrowed) of type @md as one JSON object to
 * @f (no newline). Fields the description does not know are skipped.
 * Return: 0; -EINVAL with the reason in @err (the bytes are not a protobuf encoding, or nest
 * deeper than PBJSON_DEPTH_MAX); -ENOMEM. On error, part of the object may have been written.
 */
int pbjson_print(FILE *f, const Vbus__V1__ServiceDescription *d,
                 const Vbus__V1__MessageDescription *md, const uint8_t *buf, size_t n, char *err);

#endif /* VBUSCTL_PBJSON_H */
