/* SPDX-License-Identifier: MIT */
/*
 * json: what vbusctl needs to print valid JSON (RFC 8259) from bytes it does not control: a
 * topic, a peer's domain name, a message's payload. Strings are written as UTF-8; bytes that are
 * not valid UTF-8 become U+FFFD in a string, so the output always parses. A payload that is not
 * valid UTF-8 is printed in base64 (RFC 4648, with padding) instead, so nothing is lost.
 * No allocation, no state: each function writes to a stdio stream.
 */
#ifndef VBUSCTL_JSON_H
#define VBUSCTL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The length (1-4) of the well-formed UTF-8 sequence that starts @s[0..@n), @n > 0; 0 if none. */
size_t json_utf8_len_at(const uint8_t *s, size_t n);

/* Whether @s[0..@n) is valid UTF-8 (no overlong forms, no surrogates, at most U+10FFFF). NUL
 * bytes are valid (JSON escapes them). */
bool json_utf8_is_valid(const uint8_t *s, size_t n);

/* Writes @s[0..@n) to @f as a quoted JSON string: '"', '\\' and control characters escaped,
 * valid UTF-8 sequences as they are, every other byte as \ufffd. */
void json_print_string(FILE *f, const uint8_t *s, size_t n);

/* json_print_string() of a NUL-terminated string. */
void json_print_cstring(FILE *f, const char *s);

/* Writes @d[0..@n) to @f as a quoted base64 string (standard alphabet, padded). */
void json_print_base64(FILE *f, const uint8_t *d, size_t n);

/*
 * Writes a message payload as two members: "encoding":"utf-8","data":"<text>" when @d is valid
 * UTF-8, else "encoding":"base64","data":"<base64>". The object's braces are the caller's.
 */
void json_print_payload(FILE *f, const uint8_t *d, size_t n);

#endif /* VBUSCTL_JSON_H */
