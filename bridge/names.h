/* SPDX-License-Identifier: MIT */
/*
 * names: the grammars vbus-bridge checks on its own side of the public API (libvbus checks them
 * again), the mapping between vbus names and NATS subjects, and the percent-encoding of header
 * and envelope values. Pure functions, no state.
 */
#ifndef VBUS_BRIDGE_NAMES_H
#define VBUS_BRIDGE_NAMES_H

#include <stdbool.h>
#include <stddef.h>

/* A vbus topic: dot-separated tokens of [A-Za-z0-9_-], at most BRIDGE_NAME_MAX bytes. */
bool names_is_topic(const char *s);
/* A topic pattern: a topic whose tokens may be "*", and whose last token may be ">". */
bool names_is_pattern(const char *s);
/* A service name: dot-separated identifiers ([A-Za-z_][A-Za-z0-9_]*). */
bool names_is_service(const char *s);
/* An identifier (a method name). */
bool names_is_identifier(const char *s, size_t len);
/* A host name: [A-Za-z][A-Za-z0-9_]*, at most BRIDGE_HOST_MAX - 1 bytes. */
bool names_is_host(const char *s);
/* A root: one or more topic tokens without wildcards, at most BRIDGE_ROOT_MAX - 1 bytes. */
bool names_is_root(const char *s);

/* names_has_prefix() - true if topic @s is @root itself or starts with "@root.". */
bool names_has_prefix(const char *s, const char *root);

/* names_pattern_may_match_under() - true if some topic under "@root." matches @pattern. */
bool names_pattern_may_match_under(const char *pattern, const char *root);

/*
 * names_pct_encode() - percent-encode @len bytes of @s into @buf (@size bytes, NUL-terminated):
 * every byte outside [A-Za-z0-9_.-] becomes %XX. Return: the length written, or -ENOBUFS.
 */
int names_pct_encode(const void *s, size_t len, char *buf, size_t size);

/* names_pct_decode() - the reverse, in place; Return: the decoded length, or -EINVAL for a
 * malformed escape. */
int names_pct_decode(char *s);

#endif /* VBUS_BRIDGE_NAMES_H */
