/* SPDX-License-Identifier: MIT */
/*
 * json: valid JSON strings from untrusted bytes (see json.h). The UTF-8 rules are those of
 * RFC 3629, section 4 (the table of well-formed byte sequences), checked byte by byte, so a
 * string that passes is exactly what a strict JSON parser accepts.
 */
#include "json.h"

#include <string.h>

size_t json_utf8_len_at(const uint8_t *s, size_t n)
{
        uint8_t lo = 0x80, hi = 0xbf;
        size_t len;

        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xc2 && s[0] <= 0xdf)
                len = 2;
        else if (s[0] >= 0xe0 && s[0] <= 0xef)
                len = 3;
        else if (s[0] >= 0xf0 && s[0] <= 0xf4)
                len = 4;
        else
                return 0; /* a continuation byte, an overlong lead (c0, c1), or over U+10FFFF */
        if (n < len)
                return 0;
        /* The second byte's range is narrower after some leads (RFC 3629, section 4). */
        if (s[0] == 0xe0)
                lo = 0xa0; /* overlong */
        else if (s[0] == 0xed)
                hi = 0x9f; /* surrogates */
        else if (s[0] == 0xf0)
                lo = 0x90; /* overlong */
        else if (s[0] == 0xf4)
                hi = 0x8f; /* over U+10FFFF */
        if (s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 2; i < len; i++)
                if (s[i] < 0x80 || s[i] > 0xbf)
                        return 0;
        return len;
}

bool json_utf8_is_valid(const uint8_t *s, size_t n)
{
        for (size_t i = 0; i < n;) {
                size_t k = json_utf8_len_at(s + i, n - i);

                if (k == 0)
                        return false;
                i += k;
        }
        return true;
}

void json_print_string(FILE *f, const uint8_t *s, size_t n)
{
        (void)fputc('"', f);
        for (size_t i = 0; i < n;) {
                size_t k = json_utf8_len_at(s + i, n - i);
                uint8_t ch = s[i];

                if (k == 0) {
                        (void)fputs("\\ufffd", f);
                        i++;
                        continue;
                }
                if (k > 1)
                        (void)fwrite(s + i, 1, k, f);
                else if (ch == '"' || ch == '\\')
                        (void)fprintf(f, "\\%c", ch);
                else if (ch == '\n')
                        (void)fputs("\\n", f);
                else if (ch == '\t')
                        (void)fputs("\\t", f);
                else if (ch == '\r')
                        (void)fputs("\\r", f);
                else if (ch < 0x20 || ch == 0x7f)
                        (void)fprintf(f, "\\u%04x", ch);
                else
                        (void)fputc(ch, f);
                i += k;
        }
        (void)fputc('"', f);
}

void json_print_cstring(FILE *f, const char *s)
{
        json_print_string(f, (const uint8_t *)s, strlen(s));
}

void json_print_base64(FILE *f, const uint8_t *d, size_t n)
{
        static const char abc[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

        (void)fputc('"', f);
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t)d[i] << 16;
                char out[4];

                if (i + 1 < n)
                        v |= (uint32_t)d[i + 1] << 8;
                if (i + 2 < n)
                        v |= d[i + 2];
                out[0] = abc[(v >> 18) & 63];
                out[1] = abc[(v >> 12) & 63];
                out[2] = '=';
                out[3] = '=';
                if (i + 1 < n)
                        out[2] = abc[(v >> 6) & 63];
                if (i + 2 < n)
                        out[3] = abc[v & 63];
                (void)fwrite(out, 1, sizeof(out), f);
        }
        (void)fputc('"', f);
}

void json_print_payload(FILE *f, const uint8_t *d, size_t n)
{
        if (json_utf8_is_valid(d, n)) {
                (void)fputs("\"encoding\":\"utf-8\",\"data\":", f);
                json_print_string(f, d, n);
        } else {
                (void)fputs("\"encoding\":\"base64\",\"data\":", f);
                json_print_base64(f, d, n);
        }
}
