/* SPDX-License-Identifier: MIT */
/*
 * names: grammars, prefixes and percent-encoding (see names.h). The grammars are those of
 * docs/protocol.md; the bridge checks them itself so that a configuration error is reported
 * with its line, and so that a subject arriving from NATS is never turned into a local name
 * that libvbus would refuse half-way.
 */
#include "names.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "limits.h"

static bool is_alpha(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static bool is_token_char(char c)
{
        return is_alpha(c) || is_digit(c) || c == '_' || c == '-';
}

/* Checks dot-separated tokens; wildcards only when @pattern. */
static bool names_check_tokens(const char *s, bool pattern)
{
        size_t len, start = 0;

        if (!s)
                return false;
        len = strlen(s);
        if (len == 0 || len > BRIDGE_NAME_MAX)
                return false;
        for (size_t i = 0; i <= len; i++) {
                size_t n;

                if (i < len && s[i] != '.')
                        continue;
                n = i - start;
                if (n == 0)
                        return false;
                if (pattern && n == 1 && s[start] == '*') {
                        start = i + 1;
                        continue;
                }
                if (pattern && n == 1 && s[start] == '>') {
                        if (i != len)
                                return false;
                        start = i + 1;
                        continue;
                }
                for (size_t k = start; k < i; k++)
                        if (!is_token_char(s[k]))
                                return false;
                start = i + 1;
        }
        return true;
}

bool names_is_topic(const char *s)
{
        return names_check_tokens(s, false);
}

bool names_is_pattern(const char *s)
{
        return names_check_tokens(s, true);
}

bool names_is_identifier(const char *s, size_t len)
{
        if (len == 0 || !(is_alpha(s[0]) || s[0] == '_'))
                return false;
        for (size_t i = 1; i < len; i++)
                if (!(is_alpha(s[i]) || is_digit(s[i]) || s[i] == '_'))
                        return false;
        return true;
}

bool names_is_service(const char *s)
{
        size_t len, start = 0;

        if (!s)
                return false;
        len = strlen(s);
        if (len == 0 || len > BRIDGE_NAME_MAX)
                return false;
        for (size_t i = 0; i <= len; i++) {
                if (i < len && s[i] != '.')
                        continue;
                if (!names_is_identifier(s + start, i - start))
                        return false;
                start = i + 1;
        }
        return true;
}

bool names_is_host(const char *s)
{
        size_t len;

        if (!s)
                return false;
        len = strlen(s);
        if (len == 0 || len >= BRIDGE_HOST_MAX || !is_alpha(s[0]))
                return false;
        for (size_t i = 1; i < len; i++)
                if (!(is_alpha(s[i]) || is_digit(s[i]) || s[i] == '_'))
                        return false;
        return true;
}

bool names_is_root(const char *s)
{
        return s && strlen(s) < BRIDGE_ROOT_MAX && names_is_topic(s);
}

bool names_has_prefix(const char *s, const char *root)
{
        size_t n = strlen(root);

        return strncmp(s, root, n) == 0 && (s[n] == '\0' || s[n] == '.');
}

bool names_pattern_may_match_under(const char *pattern, const char *root)
{
        const char *p = pattern, *r = root;

        /* Walk the root's tokens against the pattern's: a literal must be equal, "*" matches
         * any one token, ">" matches everything that is left. */
        for (;;) {
                size_t pn = strcspn(p, "."), rn = strcspn(r, ".");

                if (pn == 1 && p[0] == '>')
                        return true;
                if (!(pn == 1 && p[0] == '*') && (pn != rn || strncmp(p, r, pn) != 0))
                        return false;
                p += pn;
                r += rn;
                if (*r == '\0')
                        /* The root is used up: something under it matches if the pattern has
                         * more tokens. */
                        return *p == '.';
                if (*p == '\0')
                        return false;
                p++;
                r++;
        }
}

int names_pct_encode(const void *s, size_t len, char *buf, size_t size)
{
        static const char hex[] = "0123456789ABCDEF";
        const uint8_t *in = s;
        size_t o = 0;

        for (size_t i = 0; i < len; i++) {
                char c = (char)in[i];

                if (is_alpha(c) || is_digit(c) || c == '_' || c == '.' || c == '-') {
                        if (o + 1 >= size)
                                return -ENOBUFS;
                        buf[o++] = c;
                } else {
                        if (o + 3 >= size)
                                return -ENOBUFS;
                        buf[o++] = '%';
                        buf[o++] = hex[in[i] >> 4];
                        buf[o++] = hex[in[i] & 15];
                }
        }
        if (o >= size)
                return -ENOBUFS;
        buf[o] = '\0';
        return (int)o;
}

static int hex_value(char c)
{
        if (is_digit(c))
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

int names_pct_decode(char *s)
{
        size_t o = 0;

        for (size_t i = 0; s[i]; i++) {
                if (s[i] == '%') {
                        int hi, lo;

                        if (!s[i + 1] || !s[i + 2])
                                return -EINVAL;
                        hi = hex_value(s[i + 1]);
                        lo = hex_value(s[i + 2]);
                        if (hi < 0 || lo < 0)
                                return -EINVAL;
                        s[o++] = (char)(hi * 16 + lo);
                        i += 2;
                } else {
                        s[o++] = s[i];
                }
        }
        s[o] = '\0';
        return (int)o;
}
