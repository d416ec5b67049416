/* SPDX-License-Identifier: MIT */
/*
 * name: the grammar of stream names (docs/protocol.md, "Names"): topics, topic patterns, service
 * names and "service/method". Used by the codec to validate OPEN, by the client library before it
 * sends, and by the broker's router. Every function takes (buf, len) and never reads past it.
 */
#ifndef VBUS_LIBBUS_NAME_H
#define VBUS_LIBBUS_NAME_H

#include <stdbool.h>
#include <stddef.h>

/* Limits of names, mirrored in docs/protocol.md, "Limits". The codec (control.h) checks OPEN and
 * headers against them, so they live here, with the grammar, and control.h includes this. */
enum {
        /* Longest stream name (topic, pattern, service/method): fits a log line, bounds tables. */
        VBUS_NAME_MAX = 255,
        /* Longest call header key. */
        VBUS_HEADER_KEY_MAX = 64,
};

/* Most tokens in a topic or pattern: bounds the router's matching work per message. */
#define VBUS_TOPIC_TOKENS_MAX 16

/* A concrete topic: tokens of [A-Za-z0-9_-]+ joined by '.'; 1..VBUS_NAME_MAX bytes. */
bool vbus__name_is_topic(const char *s, size_t len);

/* A subscription pattern: a topic whose tokens may also be "*" (one token), and whose last
 * token may be ">" (one or more tokens). */
bool vbus__name_is_pattern(const char *s, size_t len);

/* A service: identifiers [A-Za-z_][A-Za-z0-9_]* joined by '.', as protobuf full names. */
bool vbus__name_is_service(const char *s, size_t len);

/* "service/method", where method is one identifier. */
bool vbus__name_is_method(const char *s, size_t len);

/* A header key: 1..64 bytes of [a-z0-9_.-]. */
bool vbus__name_is_header_key(const char *s, size_t len);

#endif /* VBUS_LIBBUS_NAME_H */
