/* SPDX-License-Identifier: MIT */
/*
 * name: validators for the stream-name grammar of docs/protocol.md, "Names".
 */
#include "name.h"

#include <string.h>

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

/* Splits on '.' and checks each token with the rule for patterns or plain topics. */
static bool name_check_tokens(const char *s, size_t len, bool pattern)
{
        size_t start = 0, n_tokens = 0;

        if (!s || len == 0 || len > VBUS_NAME_MAX)
                return false;
        for (size_t i = 0; i <= len; i++) {
                size_t n;
                const char *tok;

                if (i < len && s[i] != '.')
                        continue;
                tok = s + start;
                n = i - start;
                if (n == 0 || ++n_tokens > VBUS_TOPIC_TOKENS_MAX)
                        return false;
                if (pattern && n == 1 && tok[0] == '*') {
                        /* one token wildcard */
                } else if (pattern && n == 1 && tok[0] == '>') {
                        if (i != len)
                                return false;
                } else {
                        for (size_t k = 0; k < n; k++)
                                if (!is_token_char(tok[k]))
                                        return false;
                }
                start = i + 1;
        }
        return true;
}

bool vbus__name_is_topic(const char *s, size_t len)
{
        return name_check_tokens(s, len, false);
}

bool vbus__name_is_pattern(const char *s, size_t len)
{
        return name_check_tokens(s, len, true);
}

static bool name_is_identifier(const char *s, size_t len)
{
        if (len == 0 || !(is_alpha(s[0]) || s[0] == '_'))
                return false;
        for (size_t i = 1; i < len; i++)
                if (!(is_alpha(s[i]) || is_digit(s[i]) || s[i] == '_'))
                        return false;
        return true;
}

bool vbus__name_is_service(const char *s, size_t len)
{
        size_t start = 0;

        if (!s || len == 0 || len > VBUS_NAME_MAX)
                return false;
        for (size_t i = 0; i <= len; i++) {
                if (i < len && s[i] != '.')
                        continue;
                if (!name_is_identifier(s + start, i - start))
                        return false;
                start = i + 1;
        }
        return true;
}

bool vbus__name_is_method(const char *s, size_t len)
{
        const char *slash;

        if (!s || len == 0 || len > VBUS_NAME_MAX)
                return false;
        slash = memchr(s, '/', len);
        if (!slash)
                return false;
        return vbus__name_is_service(s, (size_t)(slash - s)) &&
               name_is_identifier(slash + 1, len - (size_t)(slash - s) - 1);
}

bool vbus__name_is_header_key(const char *s, size_t len)
{
        if (!s || len == 0 || len > VBUS_HEADER_KEY_MAX)
                return false;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];

                if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '_' || c == '.' || c == '-'))
                        return false;
        }
        return true;
}
