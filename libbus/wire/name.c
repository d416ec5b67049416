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

/*
 * The first and the other characters of an identifier, [A-Za-z_] and [A-Za-z0-9_], without a
 * chain of comparisons: every OPEN of a call is checked by the caller, the broker (received and
 * sent) and the server, so these run several times per call (bench/rpc/README.md, third pass).
 * c | 0x20 folds 'A'-'Z' onto 'a'-'z', and no other byte onto them.
 */
static bool ident_first(unsigned char c)
{
        return (unsigned char)((c | 0x20) - 'a') < 26 || c == '_';
}

static bool ident_rest(unsigned char c)
{
        return ident_first(c) || (unsigned char)(c - '0') < 10;
}

static bool name_is_identifier(const char *s, size_t len)
{
        if (len == 0 || !ident_first((unsigned char)s[0]))
                return false;
        for (size_t i = 1; i < len; i++)
                if (!ident_rest((unsigned char)s[i]))
                        return false;
        return true;
}

/* Identifiers joined by '.', in one pass: a token starts after each '.', none may be empty. */
bool vbus__name_is_service(const char *s, size_t len)
{
        bool token_start = true;

        if (!s || len == 0 || len > VBUS_NAME_MAX)
                return false;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];

                if (c == '.') {
                        if (token_start)
                                return false;
                        token_start = true;
                } else if (token_start ? !ident_first(c) : !ident_rest(c)) {
                        return false;
                } else {
                        token_start = false;
                }
        }
        return !token_start;
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
