/* SPDX-License-Identifier: MIT */
/*
 * envelope: encoding and strict parsing of the line that prefixes imported messages (see
 * envelope.h). The parser reads at most ENVELOPE_LINE_MAX bytes of the message, copies the line
 * before touching it, and accepts only the keys it knows, each once.
 */
#include "envelope.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

void envelope_format_from(const Envelope *e, char *buf, size_t size)
{
        char name[3 * (BRIDGE_NAME_MAX + 1)];

        if (e->local) {
                snprintf(buf, size, "%s:local(uid=%" PRIu32 ")", e->host, e->uid);
                return;
        }
        if (names_pct_encode(e->name, strlen(e->name), name, sizeof(name)) < 0)
                name[0] = '\0';
        snprintf(buf, size, "%s:dom%" PRIu32 "(%s)", e->host, e->domid, name);
}

int envelope_encode(const Envelope *e, char *buf, size_t size)
{
        char name[3 * (BRIDGE_NAME_MAX + 1)], from[4 * (BRIDGE_NAME_MAX + 1)];
        int n;

        if (names_pct_encode(e->name, strlen(e->name), name, sizeof(name)) < 0)
                return -ENOBUFS;
        envelope_format_from(e, from, sizeof(from));
        n = snprintf(buf, size,
                     ENVELOPE_MAGIC "from=%s host=%s domid=%" PRIu32 " name=%s uid=%" PRIu32
                                    " local=%d topic=%s seq=%" PRIu64 " gap=%" PRIu64
                                    " dropped=%" PRIu64 " unknown=%d\n",
                     from, e->host, e->domid, name, e->uid, e->local ? 1 : 0, e->topic, e->seq,
                     e->gap, e->dropped, e->unknown ? 1 : 0);
        if (n < 0 || (size_t)n >= size || (size_t)n > ENVELOPE_LINE_MAX)
                return -ENOBUFS;
        return n;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *ret)
{
        char *end;
        unsigned long long v;

        if (s[0] < '0' || s[0] > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || *end || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

enum {
        KEY_FROM,
        KEY_HOST,
        KEY_DOMID,
        KEY_NAME,
        KEY_UID,
        KEY_LOCAL,
        KEY_TOPIC,
        KEY_SEQ,
        KEY_GAP,
        KEY_DROPPED,
        KEY_UNKNOWN,
        KEY_N,
};

static const char *const keys[KEY_N] = {
        "from",  "host", "domid", "name",    "uid",     "local",
        "topic", "seq",  "gap",   "dropped", "unknown",
};

static int parse_field(Envelope *e, int key, char *v)
{
        uint64_t u;

        switch (key) {
        case KEY_FROM:
                return 0; /* for people; rebuilt from the other fields */
        case KEY_HOST:
                if (!names_is_host(v))
                        return -EINVAL;
                strcpy(e->host, v);
                return 0;
        case KEY_NAME:
                if (strlen(v) > 3 * BRIDGE_NAME_MAX || names_pct_decode(v) < 0 ||
                    strlen(v) > BRIDGE_NAME_MAX)
                        return -EINVAL;
                strcpy(e->name, v);
                return 0;
        case KEY_TOPIC:
                if (!names_is_topic(v))
                        return -EINVAL;
                strcpy(e->topic, v);
                return 0;
        case KEY_DOMID:
        case KEY_UID:
                if (parse_u64(v, UINT32_MAX, &u) < 0)
                        return -EINVAL;
                *(key == KEY_DOMID ? &e->domid : &e->uid) = (uint32_t)u;
                return 0;
        case KEY_LOCAL:
        case KEY_UNKNOWN:
                if (parse_u64(v, 1, &u) < 0)
                        return -EINVAL;
                *(key == KEY_LOCAL ? &e->local : &e->unknown) = u == 1;
                return 0;
        case KEY_SEQ:
                return parse_u64(v, UINT64_MAX, &e->seq);
        case KEY_GAP:
                return parse_u64(v, UINT64_MAX, &e->gap);
        case KEY_DROPPED:
                return parse_u64(v, UINT64_MAX, &e->dropped);
        default:
                return -EINVAL;
        }
}

int envelope_parse(const void *buf, size_t len, Envelope *ret)
{
        char line[ENVELOPE_LINE_MAX + 1];
        const char *nl;
        size_t n;
        unsigned seen = 0;
        Envelope e = {0};
        char *s, *save = NULL;

        if (!buf || len < strlen(ENVELOPE_MAGIC) ||
            memcmp(buf, ENVELOPE_MAGIC, strlen(ENVELOPE_MAGIC)) != 0)
                return -EINVAL;
        nl = memchr(buf, '\n', len < ENVELOPE_LINE_MAX ? len : ENVELOPE_LINE_MAX);
        if (!nl)
                return -EINVAL;
        n = (size_t)(nl - (const char *)buf);
        memcpy(line, buf, n);
        line[n] = '\0';
        if (strlen(line) != n)
                return -EINVAL;
        for (s = strtok_r(line + strlen(ENVELOPE_MAGIC), " ", &save); s;
             s = strtok_r(NULL, " ", &save)) {
                char *eq = strchr(s, '=');
                int key = -1;

                if (!eq)
                        return -EINVAL;
                *eq = '\0';
                for (int k = 0; k < KEY_N; k++)
                        if (strcmp(keys[k], s) == 0)
                                key = k;
                if (key < 0 || (seen & (1u << key)) || parse_field(&e, key, eq + 1) < 0)
                        return -EINVAL;
                seen |= 1u << key;
        }
        /* Every field but from= is required. */
        if ((seen | (1u << KEY_FROM)) != (1u << KEY_N) - 1)
                return -EINVAL;
        e.data = nl + 1;
        e.size = len - n - 1;
        *ret = e;
        return 0;
}
