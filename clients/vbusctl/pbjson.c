/* SPDX-License-Identifier: MIT */
/*
 * pbjson: JSON <-> protobuf by a vbus.v1.ServiceDescription (see pbjson.h).
 *
 * Encoding reads the JSON once, left to right, and writes protobuf as it goes: each open object
 * (a message) and array (a repeated field) is a frame on a stack; a nested message is gathered in
 * its own frame's buffer and appended to its parent, with its length, when its '}' comes.
 * Printing walks each message's fields in the description's order and, for each, the bytes for
 * its occurrences (repeated elements may be spread out on the wire); a nested message is a frame
 * pushed on a stack, printed before its parent goes on.
 */
#include "pbjson.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

typedef Vbus__V1__FieldDescription Field;
typedef Vbus__V1__MessageDescription Message;
typedef Vbus__V1__ServiceDescription Description;

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

#define T(x) VBUS__V1__FIELD_DESCRIPTION__TYPE__TYPE_##x

typedef struct Buf {
        uint8_t *d;
        size_t n, cap;
} Buf;

static int buf_put(Buf *b, const void *p, size_t n)
{
        if (b->n + n > b->cap) {
                size_t cap = b->cap ? b->cap : 64;
                uint8_t *d;

                while (cap < b->n + n)
                        cap *= 2;
                d = realloc(b->d, cap);
                if (!d)
                        return -ENOMEM;
                b->d = d;
                b->cap = cap;
        }
        if (n > 0)
                memcpy(b->d + b->n, p, n);
        b->n += n;
        return 0;
}

static int buf_varint(Buf *b, uint64_t v)
{
        uint8_t tmp[10];
        size_t n = 0;

        do {
                tmp[n] = (uint8_t)(v & 0x7f);
                v >>= 7;
                if (v)
                        tmp[n] |= 0x80;
                n++;
        } while (v);
        return buf_put(b, tmp, n);
}

static int buf_fixed(Buf *b, uint64_t v, size_t n)
{
        uint8_t tmp[8];

        for (size_t i = 0; i < n; i++)
                tmp[i] = (uint8_t)(v >> (8 * i));
        return buf_put(b, tmp, n);
}

static int buf_tag(Buf *b, uint32_t number, int wt)
{
        return buf_varint(b, ((uint64_t)number << 3) | (uint64_t)wt);
}

const Message *pbjson_find_message(const Description *d, const char *name)
{
        for (size_t i = 0; i < d->n_messages; i++)
                if (strcmp(d->messages[i]->name, name) == 0)
                        return d->messages[i];
        return NULL;
}

static const Vbus__V1__EnumDescription *find_enum(const Description *d, const char *name)
{
        for (size_t i = 0; i < d->n_enums; i++)
                if (strcmp(d->enums[i]->name, name) == 0)
                        return d->enums[i];
        return NULL;
}

static const char *type_word(int t)
{
        static const char *const words[] = {
                "?",        "int32",  "sint32",  "sfixed32", "int64",   "sint64",
                "sfixed64", "uint32", "fixed32", "uint64",   "fixed64", "float",
                "double",   "bool",   "enum",    "string",   "bytes",   "message",
        };

        return t >= 0 && t <= T(MESSAGE) ? words[t] : "?";
}

static int wire_type_of(int t)
{
        switch (t) {
        case T(SFIXED32):
        case T(FIXED32):
        case T(FLOAT):
                return WT_I32;
        case T(SFIXED64):
        case T(FIXED64):
        case T(DOUBLE):
                return WT_I64;
        case T(STRING):
        case T(BYTES):
        case T(MESSAGE):
                return WT_LEN;
        default:
                return WT_VARINT;
        }
}

/* --- JSON -> protobuf ---------------------------------------------------------------------- */

enum { F_OBJECT, F_ARRAY };

typedef struct Frame {
        int kind;
        const Message *md;  /* F_OBJECT: its type */
        const Field *field; /* the field it fills (NULL: the root); F_ARRAY: the repeated field */
        Buf buf;            /* F_OBJECT: the message; F_ARRAY: packed elements */
        size_t index;       /* F_ARRAY: elements read */
        bool first;         /* nothing read yet inside it */
} Frame;

typedef struct Enc {
        const Description *d;
        const char *s;
        size_t n, pos;
        Frame st[PBJSON_DEPTH_MAX];
        size_t depth;
        char *err;
        bool in_array; /* the value read is an element: the path ends with its index */
} Enc;

/* Writes the path of the value being read (the frames, then @leaf if not NULL) into @out. */
static void enc_path(const Enc *e, const Field *leaf, char *out, size_t size)
{
        size_t n = 0;

        n += (size_t)snprintf(out, size, "$");
        for (size_t i = 1; i < e->depth && n < size; i++) {
                const Frame *f = &e->st[i];

                /* An element's name is its array's. */
                if (f->kind == F_ARRAY || e->st[i - 1].kind != F_ARRAY)
                        n += (size_t)snprintf(out + n, size - n, ".%s", f->field->json_name);
                if (n < size && f->kind == F_ARRAY && f->index > 0)
                        n += (size_t)snprintf(out + n, size - n, "[%zu]", f->index - 1);
        }
        if (leaf && n < size)
                (void)snprintf(out + n, size - n, ".%s", leaf->json_name);
}

static int enc_fail(Enc *e, const Field *leaf, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int enc_fail(Enc *e, const Field *leaf, const char *fmt, ...)
{
        char path[160], what[160];
        va_list ap;

        enc_path(e, e->in_array ? NULL : leaf, path, sizeof(path));
        va_start(ap, fmt);
        (void)vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        (void)snprintf(e->err, PBJSON_ERR_MAX, "at %s (offset %zu): %s", path, e->pos, what);
        return -EINVAL;
}

static void skip_ws(Enc *e)
{
        while (e->pos < e->n && (e->s[e->pos] == ' ' || e->s[e->pos] == '\t' ||
                                 e->s[e->pos] == '\n' || e->s[e->pos] == '\r'))
                e->pos++;
}

static int peek(Enc *e)
{
        skip_ws(e);
        return e->pos < e->n ? (unsigned char)e->s[e->pos] : -1;
}

static int expect(Enc *e, char c)
{
        if (peek(e) != (unsigned char)c)
                return enc_fail(e, NULL,
                                e->pos < e->n ? "expected '%c'" : "expected '%c', not the end", c);
        e->pos++;
        return 0;
}

static int hex4(const char *s, uint32_t *ret)
{
        uint32_t v = 0;

        for (int i = 0; i < 4; i++) {
                char c = s[i];

                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (uint32_t)(c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (uint32_t)(c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (uint32_t)(c - 'A' + 10);
                else
                        return -1;
        }
        *ret = v;
        return 0;
}

static int put_utf8(Buf *b, uint32_t cp)
{
        uint8_t u[4];
        size_t n;

        if (cp < 0x80) {
                u[0] = (uint8_t)cp;
                n = 1;
        } else if (cp < 0x800) {
                u[0] = (uint8_t)(0xc0 | (cp >> 6));
                u[1] = (uint8_t)(0x80 | (cp & 0x3f));
                n = 2;
        } else if (cp < 0x10000) {
                u[0] = (uint8_t)(0xe0 | (cp >> 12));
                u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
                u[2] = (uint8_t)(0x80 | (cp & 0x3f));
                n = 3;
        } else {
                u[0] = (uint8_t)(0xf0 | (cp >> 18));
                u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
                u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
                u[3] = (uint8_t)(0x80 | (cp & 0x3f));
                n = 4;
        }
        return buf_put(b, u, n);
}

/* A JSON string at the cursor, unescaped into @out (NUL-terminated, not counted in out->n). */
static int read_string(Enc *e, const Field *leaf, Buf *out)
{
        static const char nul;

        out->n = 0;
        if (peek(e) != '"')
                return enc_fail(e, leaf, "expected a string");
        e->pos++;
        while (e->pos < e->n && e->s[e->pos] != '"') {
                unsigned char c = (unsigned char)e->s[e->pos];
                size_t k;

                if (c < 0x20)
                        return enc_fail(e, leaf, "a control character inside a string");
                if (c != '\\') {
                        k = json_utf8_len_at((const uint8_t *)e->s + e->pos, e->n - e->pos);
                        if (k == 0)
                                return enc_fail(e, leaf, "a string that is not UTF-8");
                        if (buf_put(out, e->s + e->pos, k) < 0)
                                return -ENOMEM;
                        e->pos += k;
                        continue;
                }
                if (e->pos + 1 >= e->n)
                        break;
                c = (unsigned char)e->s[e->pos + 1];
                e->pos += 2;
                if (c == 'u') {
                        uint32_t cp, lo;

                        if (e->pos + 4 > e->n || hex4(e->s + e->pos, &cp) < 0)
                                return enc_fail(e, leaf, "a bad \\u escape");
                        e->pos += 4;
                        if (cp >= 0xd800 && cp <= 0xdbff) {
                                if (e->pos + 6 > e->n || e->s[e->pos] != '\\' ||
                                    e->s[e->pos + 1] != 'u' || hex4(e->s + e->pos + 2, &lo) < 0 ||
                                    lo < 0xdc00 || lo > 0xdfff)
                                        return enc_fail(e, leaf, "a lone surrogate in \\u escapes");
                                e->pos += 6;
                                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                                return enc_fail(e, leaf, "a lone surrogate in \\u escapes");
                        }
                        if (put_utf8(out, cp) < 0)
                                return -ENOMEM;
                        continue;
                }
                {
                        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
                        const char *at = c ? strchr(from, (char)c) : NULL;

                        if (!at)
                                return enc_fail(e, leaf, "a bad escape '\\%c'", c);
                        if (buf_put(out, to + (at - from), 1) < 0)
                                return -ENOMEM;
                }
        }
        if (e->pos >= e->n)
                return enc_fail(e, leaf, "a string without its closing quote");
        e->pos++;
        if (buf_put(out, &nul, 1) < 0)
                return -ENOMEM;
        out->n--;
        return 0;
}

/* A JSON number at the cursor: its text (at most 63 bytes) into @tok. */
static int read_number(Enc *e, const Field *leaf, char *tok)
{
        size_t start = e->pos, n;

        if (e->pos < e->n && e->s[e->pos] == '-')
                e->pos++;
        if (e->pos >= e->n || e->s[e->pos] < '0' || e->s[e->pos] > '9')
                return enc_fail(e, leaf, "expected a value");
        if (e->s[e->pos] == '0' && e->pos + 1 < e->n && e->s[e->pos + 1] >= '0' &&
            e->s[e->pos + 1] <= '9')
                return enc_fail(e, leaf, "a number with a leading zero");
        while (e->pos < e->n && strchr("0123456789.eE+-", e->s[e->pos]))
                e->pos++;
        n = e->pos - start;
        if (n > 63)
                return enc_fail(e, leaf, "a number longer than 63 characters");
        memcpy(tok, e->s + start, n);
        tok[n] = '\0';
        return 0;
}

/* A literal (true, false, null) at the cursor: 1, 0 or 2; -EINVAL if none. */
static int read_literal(Enc *e, const Field *leaf)
{
        static const char *const words[] = {"false", "true", "null"};

        for (int i = 0; i < 3; i++) {
                size_t k = strlen(words[i]);

                if (e->n - e->pos >= k && memcmp(e->s + e->pos, words[i], k) == 0) {
                        e->pos += k;
                        return i;
                }
        }
        return enc_fail(e, leaf, "expected a value");
}

/* An integer from @tok (a JSON number or a quoted one), within [@min, @max] (signed) or
 * [0, @umax] (unsigned). */
static int parse_int(Enc *e, const Field *f, const char *tok, bool is_signed, int64_t min,
                     int64_t max, uint64_t umax, uint64_t *ret)
{
        char *end;

        errno = 0;
        if (tok[0] == '\0')
                return enc_fail(e, f, "an empty number");
        if (strpbrk(tok, ".eE")) {
                double v = strtod(tok, &end);
                double lo = is_signed ? (double)min : 0.0;
                double hi = is_signed ? (double)max + 1.0 : (double)umax + 1.0;

                if (*end || errno || v != floor(v))
                        return enc_fail(e, f, "'%s' is not a whole number", tok);
                if (v < lo || v >= hi)
                        return enc_fail(e, f, "%s is out of range for %s", tok,
                                        type_word((int)f->type));
                *ret = is_signed ? (uint64_t)(int64_t)v : (uint64_t)v;
                return 0;
        }
        if (is_signed) {
                long long v = strtoll(tok, &end, 10);

                if (*end || end == tok)
                        return enc_fail(e, f, "'%s' is not a number", tok);
                if (errno == ERANGE || v < min || v > max)
                        return enc_fail(e, f, "%s is out of range for %s", tok,
                                        type_word((int)f->type));
                *ret = (uint64_t)(int64_t)v;
        } else {
                unsigned long long v;

                if (tok[0] == '-')
                        return enc_fail(e, f, "%s is out of range for %s", tok,
                                        type_word((int)f->type));
                v = strtoull(tok, &end, 10);
                if (*end || end == tok)
                        return enc_fail(e, f, "'%s' is not a number", tok);
                if (errno == ERANGE || v > umax)
                        return enc_fail(e, f, "%s is out of range for %s", tok,
                                        type_word((int)f->type));
                *ret = v;
        }
        return 0;
}

static int b64_value(char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+' || c == '-')
                return 62;
        if (c == '/' || c == '_')
                return 63;
        return -1;
}

/* Base64 (either alphabet, padding optional) of @s into @out. */
static int b64_decode(const char *s, size_t n, Buf *out)
{
        uint32_t acc = 0;
        int bits = 0;

        while (n > 0 && s[n - 1] == '=')
                n--;
        for (size_t i = 0; i < n; i++) {
                int v = b64_value(s[i]);

                if (v < 0)
                        return -EINVAL;
                acc = (acc << 6) | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                        uint8_t byte = (uint8_t)(acc >> (bits - 8));

                        bits -= 8;
                        if (buf_put(out, &byte, 1) < 0)
                                return -ENOMEM;
                }
        }
        return bits >= 6 ? -EINVAL : 0; /* one character alone does not make a byte */
}

/* The value of a scalar (non-message) field @f at the cursor, written to @out: with its tag unless
 * @packed. */
static int enc_scalar(Enc *e, const Field *f, Buf *out, bool packed)
{
        int t = (int)f->type, c = peek(e), r;
        char tok[64] = "";
        Buf str = {0};
        uint64_t v = 0;
        bool quoted = c == '"';

        if (quoted) {
                r = read_string(e, f, &str);
                if (r < 0)
                        goto out;
        }
        switch (t) {
        case T(STRING):
        case T(BYTES): {
                Buf raw = {0};

                if (!quoted) {
                        r = enc_fail(e, f, "%s wants a string", type_word(t));
                        goto out;
                }
                if (t == T(BYTES) && (r = b64_decode((const char *)str.d, str.n, &raw)) < 0) {
                        free(raw.d);
                        r = r == -ENOMEM ? r : enc_fail(e, f, "bytes want base64");
                        goto out;
                }
                r = buf_tag(out, f->number, WT_LEN);
                if (r == 0)
                        r = buf_varint(out, t == T(BYTES) ? raw.n : str.n);
                if (r == 0)
                        r = t == T(BYTES) ? buf_put(out, raw.d, raw.n) : buf_put(out, str.d, str.n);
                free(raw.d);
                goto out;
        }
        case T(BOOL):
                if (quoted || (c != 't' && c != 'f')) {
                        r = enc_fail(e, f, "bool wants true or false");
                        goto out;
                }
                r = read_literal(e, f);
                if (r < 0)
                        goto out;
                v = (uint64_t)r;
                break;
        case T(ENUM): {
                const Vbus__V1__EnumDescription *ed = find_enum(e->d, f->type_name);
                bool found = false;

                if (!ed) {
                        r = enc_fail(e, f, "enum %s is not described", f->type_name);
                        goto out;
                }
                if (!quoted) {
                        r = read_number(e, f, tok);
                        if (r == 0)
                                r = parse_int(e, f, tok, true, INT32_MIN, INT32_MAX, 0, &v);
                        if (r < 0)
                                goto out;
                        break;
                }
                for (size_t i = 0; i < ed->n_values && !found; i++) {
                        if (strcmp(ed->values[i]->name, (const char *)str.d) == 0) {
                                v = (uint64_t)(int64_t)ed->values[i]->number;
                                found = true;
                        }
                }
                if (!found) {
                        r = enc_fail(e, f, "'%.60s' is not a value of %s", (const char *)str.d,
                                     ed->name);
                        goto out;
                }
                break;
        }
        case T(FLOAT):
        case T(DOUBLE): {
                double dv;
                char *end;
                union {
                        float f;
                        uint32_t u;
                } f32;
                union {
                        double d;
                        uint64_t u;
                } f64;

                if (quoted && strcmp((const char *)str.d, "NaN") == 0) {
                        dv = NAN;
                } else if (quoted && strcmp((const char *)str.d, "Infinity") == 0) {
                        dv = INFINITY;
                } else if (quoted && strcmp((const char *)str.d, "-Infinity") == 0) {
                        dv = -INFINITY;
                } else {
                        if (quoted) {
                                r = enc_fail(e, f, "%s wants a number, \"NaN\" or \"Infinity\"",
                                             type_word(t));
                                goto out;
                        }
                        if ((r = read_number(e, f, tok)) < 0)
                                goto out;
                        errno = 0;
                        dv = strtod(tok, &end);
                        if (*end || errno == ERANGE || (t == T(FLOAT) && fabs(dv) > FLT_MAX)) {
                                r = enc_fail(e, f, "%s is out of range for %s", tok, type_word(t));
                                goto out;
                        }
                }
                if (t == T(FLOAT)) {
                        f32.f = (float)dv;
                        v = f32.u;
                } else {
                        f64.d = dv;
                        v = f64.u;
                }
                break;
        }
        default: {
                /* Integers: a number, or a string holding one (the only way for 64-bit ones to
                 * keep every digit through JSON). */
                bool is_signed = t == T(INT32) || t == T(SINT32) || t == T(SFIXED32) ||
                                 t == T(INT64) || t == T(SINT64) || t == T(SFIXED64);
                bool wide = t == T(INT64) || t == T(SINT64) || t == T(SFIXED64) || t == T(UINT64) ||
                            t == T(FIXED64);

                if (quoted) {
                        if (str.n > 63) {
                                r = enc_fail(e, f, "a number longer than 63 characters");
                                goto out;
                        }
                        memcpy(tok, str.d, str.n + 1);
                } else if ((r = read_number(e, f, tok)) < 0) {
                        goto out;
                }
                r = parse_int(e, f, tok, is_signed, wide ? INT64_MIN : INT32_MIN,
                              wide ? INT64_MAX : INT32_MAX, wide ? UINT64_MAX : UINT32_MAX, &v);
                if (r < 0)
                        goto out;
                if (t == T(SINT32))
                        v = (uint64_t)(uint32_t)(((uint32_t)(int32_t)v << 1) ^
                                                 (uint32_t)((int32_t)v >> 31));
                else if (t == T(SINT64))
                        v = ((uint64_t)(int64_t)v << 1) ^ (uint64_t)((int64_t)v >> 63);
                break;
        }
        }
        r = packed ? 0 : buf_tag(out, f->number, wire_type_of(t));
        if (r == 0) {
                switch (wire_type_of(t)) {
                case WT_I32:
                        r = buf_fixed(out, v, 4);
                        break;
                case WT_I64:
                        r = buf_fixed(out, v, 8);
                        break;
                default:
                        r = buf_varint(out, v);
                        break;
                }
        }
out:
        free(str.d);
        return r;
}

static int enc_push(Enc *e, int kind, const Message *md, const Field *f)
{
        if (e->depth == PBJSON_DEPTH_MAX)
                return enc_fail(e, f, "nested deeper than %d", PBJSON_DEPTH_MAX);
        e->st[e->depth++] = (Frame){.kind = kind, .md = md, .field = f, .first = true};
        return 0;
}

/* The message that values of the top frame go into. */
static Frame *enc_owner(Enc *e)
{
        Frame *top = &e->st[e->depth - 1];

        return top->kind == F_OBJECT ? top : top - 1;
}

/* A value for @f at the cursor (@in_array: an element of the repeated @f). */
static int enc_value(Enc *e, const Field *f, bool in_array)
{
        int c = peek(e), r;

        if (c == 'n') {
                if (in_array)
                        return enc_fail(e, NULL, "null in a repeated field");
                return read_literal(e, f) < 0 ? -EINVAL : 0; /* null: the default */
        }
        if (f->repeated && !in_array) {
                if (c != '[')
                        return enc_fail(e, f, "a repeated field wants an array");
                e->pos++;
                return enc_push(e, F_ARRAY, NULL, f);
        }
        if (f->type == T(MESSAGE)) {
                const Message *md = pbjson_find_message(e->d, f->type_name);

                if (!md)
                        return enc_fail(e, f, "message %s is not described", f->type_name);
                if (c != '{')
                        return enc_fail(e, in_array ? NULL : f, "%s wants an object", f->type_name);
                e->pos++;
                return enc_push(e, F_OBJECT, md, f);
        }
        e->in_array = in_array;
        r = in_array && f->packed ? enc_scalar(e, f, &e->st[e->depth - 1].buf, true)
                                  : enc_scalar(e, f, &enc_owner(e)->buf, false);
        e->in_array = false;
        return r;
}

/* Closes the top frame into its owner; the root's buffer stays for the caller. */
static int enc_pop(Enc *e)
{
        Frame *top = &e->st[e->depth - 1], *owner;
        int r = 0;

        if (e->depth == 1)
                return 0;
        e->depth--;
        owner = enc_owner(e);
        if (top->kind == F_OBJECT || top->buf.n > 0) {
                r = buf_tag(&owner->buf, top->field->number, WT_LEN);
                if (r == 0)
                        r = buf_varint(&owner->buf, top->buf.n);
                if (r == 0)
                        r = buf_put(&owner->buf, top->buf.d, top->buf.n);
        }
        free(top->buf.d);
        top->buf = (Buf){0};
        return r;
}

static const Field *field_by_key(const Message *md, const char *key)
{
        for (size_t i = 0; i < md->n_fields; i++)
                if (strcmp(md->fields[i]->json_name, key) == 0)
                        return md->fields[i];
        for (size_t i = 0; i < md->n_fields; i++)
                if (strcmp(md->fields[i]->name, key) == 0)
                        return md->fields[i];
        return NULL;
}

/* One step inside the top frame: a member, an element, or its end. Return: 1 when the root
 * closed, 0 to go on, or an error. */
static int enc_step(Enc *e, Buf *key)
{
        Frame *top = &e->st[e->depth - 1];
        int c = peek(e), r;
        const Field *f;
        const char *name;

        if (c == (top->kind == F_OBJECT ? '}' : ']')) {
                e->pos++;
                if (e->depth == 1)
                        return 1;
                return enc_pop(e);
        }
        if (!top->first && (r = expect(e, ',')) < 0)
                return r;
        top->first = false;
        if (top->kind == F_ARRAY) {
                top->index++;
                return enc_value(e, top->field, true);
        }
        if (peek(e) != '"')
                return enc_fail(e, NULL, "expected a member name");
        if ((r = read_string(e, NULL, key)) < 0)
                return r;
        name = key->d ? (const char *)key->d : "";
        f = field_by_key(top->md, name);
        if (!f)
                return enc_fail(e, NULL, "%s has no field '%.60s'", top->md->name, name);
        if ((r = expect(e, ':')) < 0)
                return r;
        return enc_value(e, f, false);
}

int pbjson_encode(const Description *d, const Message *md, const char *json, size_t n,
                  uint8_t **ret, size_t *ret_n, char *err)
{
        Enc *e = calloc(1, sizeof(*e));
        Buf key = {0};
        int r;

        if (!e)
                return -ENOMEM;
        *e = (Enc){.d = d, .s = json, .n = n, .err = err};
        e->st[0] = (Frame){.kind = F_OBJECT, .md = md, .first = true};
        e->depth = 1;
        r = expect(e, '{');
        while (r == 0)
                r = enc_step(e, &key);
        if (r == 1) {
                r = 0;
                if (peek(e) != -1)
                        r = enc_fail(e, NULL, "text after the object");
        }
        if (r == 0) {
                *ret = e->st[0].buf.d;
                *ret_n = e->st[0].buf.n;
                e->st[0].buf.d = NULL;
        } else if (r == -ENOMEM) {
                (void)snprintf(err, PBJSON_ERR_MAX, "out of memory");
        }
        for (size_t i = 0; i < e->depth; i++)
                free(e->st[i].buf.d);
        free(key.d);
        free(e);
        return r;
}

/* --- protobuf -> JSON ---------------------------------------------------------------------- */

typedef struct PFrame {
        const Message *md;
        const uint8_t *buf;
        size_t len;
        size_t fi;    /* the field being printed */
        size_t pos;   /* where the search for its next occurrence goes on */
        size_t n_out; /* elements of the current repeated field printed */
        bool any;     /* a member printed */
        bool open;    /* the current repeated field's '[' is printed */
} PFrame;

static int read_varint(const uint8_t *b, size_t len, size_t *pos, uint64_t *ret)
{
        uint64_t v = 0;

        for (int shift = 0; shift < 64; shift += 7) {
                uint8_t byte;

                if (*pos >= len)
                        return -1;
                byte = b[(*pos)++];
                v |= (uint64_t)(byte & 0x7f) << shift;
                if (!(byte & 0x80)) {
                        *ret = v;
                        return 0;
                }
        }
        return -1;
}

/* The next field of @b from *@pos: its number, wire type and value's span. */
static int next_field(const uint8_t *b, size_t len, size_t *pos, uint32_t *num, int *wt,
                      size_t *vstart, size_t *vlen)
{
        uint64_t key, n;

        if (read_varint(b, len, pos, &key) < 0 || (key >> 3) == 0 || (key >> 3) > UINT32_MAX)
                return -1;
        *num = (uint32_t)(key >> 3);
        *wt = (int)(key & 7);
        switch (*wt) {
        case WT_VARINT:
                *vstart = *pos;
                if (read_varint(b, len, pos, &n) < 0)
                        return -1;
                break;
        case WT_I64:
        case WT_I32:
                n = *wt == WT_I64 ? 8 : 4;
                if (len - *pos < n)
                        return -1;
                *vstart = *pos;
                *pos += n;
                break;
        case WT_LEN:
                if (read_varint(b, len, pos, &n) < 0 || n > len - *pos)
                        return -1;
                *vstart = *pos;
                *pos += n;
                break;
        default:
                return -1;
        }
        *vlen = *pos - *vstart;
        return 0;
}

static uint64_t le(const uint8_t *p, size_t n)
{
        uint64_t v = 0;

        for (size_t i = 0; i < n; i++)
                v |= (uint64_t)p[i] << (8 * i);
        return v;
}

static void print_double(FILE *out, double v, bool is_float)
{
        if (isnan(v))
                fputs("\"NaN\"", out);
        else if (isinf(v))
                fputs(v > 0 ? "\"Infinity\"" : "\"-Infinity\"", out);
        else
                fprintf(out, is_float ? "%.9g" : "%.17g", v);
}

/* Prints one scalar value of @f (wire bytes @p, @n long, already of the right wire type). */
static int print_scalar(FILE *out, const Description *d, const Field *f, const uint8_t *p, size_t n)
{
        int t = (int)f->type;
        uint64_t v = 0;
        size_t pos = 0;

        if (t == T(STRING)) {
                json_print_string(out, p, n);
                return 0;
        }
        if (t == T(BYTES)) {
                json_print_base64(out, p, n);
                return 0;
        }
        if (wire_type_of(t) == WT_VARINT) {
                if (read_varint(p, n, &pos, &v) < 0)
                        return -1;
        } else {
                v = le(p, n);
        }
        switch (t) {
        case T(INT32):
        case T(SFIXED32):
                fprintf(out, "%" PRId32, (int32_t)(uint32_t)v);
                break;
        case T(SINT32):
                fprintf(out, "%" PRId32, (int32_t)((uint32_t)v >> 1) ^ -(int32_t)((uint32_t)v & 1));
                break;
        case T(UINT32):
        case T(FIXED32):
                fprintf(out, "%" PRIu32, (uint32_t)v);
                break;
        case T(INT64):
        case T(SFIXED64):
                fprintf(out, "\"%" PRId64 "\"", (int64_t)v);
                break;
        case T(SINT64):
                fprintf(out, "\"%" PRId64 "\"", (int64_t)(v >> 1) ^ -(int64_t)(v & 1));
                break;
        case T(UINT64):
        case T(FIXED64):
                fprintf(out, "\"%" PRIu64 "\"", v);
                break;
        case T(BOOL):
                fputs(v ? "true" : "false", out);
                break;
        case T(FLOAT): {
                union {
                        uint32_t u;
                        float f;
                } x = {.u = (uint32_t)v};

                print_double(out, x.f, true);
                break;
        }
        case T(DOUBLE): {
                union {
                        uint64_t u;
                        double d;
                } x = {.u = v};

                print_double(out, x.d, false);
                break;
        }
        case T(ENUM): {
                const Vbus__V1__EnumDescription *ed = find_enum(d, f->type_name);
                int32_t num = (int32_t)(uint32_t)v;

                for (size_t i = 0; ed && i < ed->n_values; i++) {
                        if (ed->values[i]->number == num) {
                                json_print_cstring(out, ed->values[i]->name);
                                return 0;
                        }
                }
                fprintf(out, "%" PRId32, num);
                break;
        }
        default:
                return -1;
        }
        return 0;
}

/* Prints each element of a packed run of @f. Return: elements printed, or -1. */
static int print_packed(FILE *out, const Description *d, const Field *f, const uint8_t *p, size_t n,
                        size_t n_before)
{
        int wt = wire_type_of((int)f->type), count = 0;
        size_t pos = 0;

        while (pos < n) {
                size_t start = pos, k;
                uint64_t v;

                if (wt == WT_VARINT) {
                        if (read_varint(p, n, &pos, &v) < 0)
                                return -1;
                        k = pos - start;
                } else {
                        k = wt == WT_I64 ? 8 : 4;
                        if (n - pos < k)
                                return -1;
                        pos += k;
                }
                if (n_before + (size_t)count > 0)
                        fputc(',', out);
                if (print_scalar(out, d, f, p + start, k) < 0)
                        return -1;
                count++;
        }
        return count;
}

static int print_fail(char *err, const PFrame *top, const char *what)
{
        (void)snprintf(err, PBJSON_ERR_MAX, "the %s does not decode: %s",
                       top ? top->md->name : "message", what);
        return -EINVAL;
}

int pbjson_print(FILE *out, const Description *d, const Message *md, const uint8_t *buf, size_t n,
                 char *err)
{
        PFrame st[PBJSON_DEPTH_MAX];
        size_t depth = 1;
        static const uint8_t none;

        st[0] = (PFrame){.md = md, .buf = n ? buf : &none, .len = n};
        fputc('{', out);
        while (depth > 0) {
                PFrame *top = &st[depth - 1];
                const Field *f;
                uint32_t num;
                int wt;
                size_t pos, vs = 0, vl = 0, last_s = 0, last_l = 0;
                bool found = false, packed_run;

                if (top->fi == top->md->n_fields) {
                        fputc('}', out);
                        depth--;
                        continue;
                }
                f = top->md->fields[top->fi];
                /* The next occurrence (repeated) or the last one (singular: the last wins). */
                pos = top->pos;
                while (pos < top->len) {
                        if (next_field(top->buf, top->len, &pos, &num, &wt, &vs, &vl) < 0)
                                return print_fail(err, top, "not a protobuf encoding");
                        if (num != f->number)
                                continue;
                        packed_run = f->repeated && wt == WT_LEN && f->type != T(STRING) &&
                                     f->type != T(BYTES) && f->type != T(MESSAGE);
                        if (wt != wire_type_of((int)f->type) && !packed_run)
                                return print_fail(err, top, "a field of the wrong wire type");
                        found = true;
                        last_s = vs;
                        last_l = vl;
                        if (f->repeated)
                                break;
                }
                if (!found) {
                        if (top->open)
                                fputc(']', out);
                        top->open = false;
                        top->fi++;
                        top->pos = 0;
                        top->n_out = 0;
                        continue;
                }
                if (!f->repeated || !top->open) {
                        if (top->any)
                                fputc(',', out);
                        top->any = true;
                        top->open = f->repeated;
                        json_print_cstring(out, f->json_name);
                        fputs(f->repeated ? ":[" : ":", out);
                }
                if (f->repeated) {
                        top->pos = pos;
                } else {
                        top->fi++;
                        top->pos = 0;
                }
                if (f->type == T(MESSAGE)) {
                        const Message *sub = pbjson_find_message(d, f->type_name);

                        if (!sub)
                                return print_fail(err, top, "a message type not described");
                        if (depth == PBJSON_DEPTH_MAX)
                                return print_fail(err, top, "nested too deep");
                        if (f->repeated && top->n_out++ > 0)
                                fputc(',', out);
                        fputc('{', out);
                        st[depth++] = (PFrame){.md = sub,
                                               .buf = last_l ? top->buf + last_s : &none,
                                               .len = last_l};
                        continue;
                }
                if (f->repeated && wire_type_of((int)f->type) != WT_LEN && wt == WT_LEN) {
                        int k = print_packed(out, d, f, top->buf + last_s, last_l, top->n_out);

                        if (k < 0)
                                return print_fail(err, top, "a bad packed field");
                        top->n_out += (size_t)k;
                        continue;
                }
                if (f->repeated && top->n_out++ > 0)
                        fputc(',', out);
                if (print_scalar(out, d, f, top->buf + last_s, last_l) < 0)
                        return print_fail(err, top, "a bad value");
        }
        return 0;
}
