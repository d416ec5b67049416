/* SPDX-License-Identifier: MIT */
/*
 * pubsub-check: a publisher and a subscriber that verify what they deliver, for the integration
 * tests. Every message carries its sequence number and a checksum of its bytes, so the
 * subscriber can tell exactly what arrived, what was lost and whether anything was corrupted or
 * reordered.
 *
 *   pubsub-check pub TOPIC COUNT SIZE [--rate N] [--start S]
 *       publishes COUNT messages of SIZE bytes (>= 16), numbered from S (default 1);
 *       --rate N: N messages per second.
 *   pubsub-check sub PATTERN COUNT [--block] [--slow US] [--timeout MS] [--sender S]
 *                    [--sender-key K]
 *                    [--ready FILE] [--progress FILE] [--gaps-at LIST] [--markers]
 *       receives until COUNT messages are accounted for (received + reported dropped), checks
 *       order and checksums (messages of one publisher, by sequence), sleeps US microseconds per
 *       message with --slow, and with --sender checks that every message was stamped
 *       "domN(name)", "local(uid=U)" or (any local sender) "local" as S says, and with
 *       --sender-key that each was stamped with the key K (channel auth). Creates the
 *       --ready FILE once the subscription is active, and keeps the --progress FILE holding the
 *       number of messages received so far.
 *       Gaps: the messages flagged as following a gap (a reconnect) must be exactly those at the
 *       positions of --gaps-at (comma-separated, 1 = the first message received), and none
 *       without it: after one reconnect, only the first message after it is flagged.
 *       --markers: messages numbered above COUNT are markers (published after the others to
 *       carry the count of what was dropped before them): the subscriber stops at the first
 *       marker it receives, and requires R + D == that marker's number (every message published
 *       before it received or reported dropped, lost markers included).
 *       Prints "received R dropped D corrupt C reordered O gaps G" (and " marker K") and exits 0
 *       when R + D == COUNT (or the marker's number), C == O == 0, the gaps are as expected (and
 *       D == 0 with --block).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vbus/vbus.h>

static uint64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t checksum(const uint8_t *p, size_t n)
{
        uint64_t h = 1469598103934665603ull;

        for (size_t i = 0; i < n; i++)
                h = (h ^ p[i]) * 1099511628211ull;
        return h;
}

/* Message layout: u64 sequence, u64 checksum of the rest, then filler bytes. */
static void fill(uint8_t *buf, size_t size, uint64_t seq)
{
        uint64_t sum;

        memcpy(buf, &seq, 8);
        for (size_t i = 16; i < size; i++)
                buf[i] = (uint8_t)(seq * 31 + i);
        sum = checksum(buf + 16, size - 16);
        memcpy(buf + 8, &sum, 8);
}

static int cmd_pub(const char *topic, unsigned long count, size_t size, unsigned long rate,
                   unsigned long start)
{
        vbus_conn *c = NULL;
        vbus_publisher *p = NULL;
        uint8_t *buf = malloc(size);
        int r, status = 1;

        if (!buf || vbus_conn_open(NULL, &c) < 0)
                goto out;
        r = vbus_conn_wait_ready(c, 10000000);
        if (r < 0) {
                fprintf(stderr, "pub: no broker: %s\n", strerror(-r));
                goto out;
        }
        if (vbus_publisher_open(c, topic, &p) < 0)
                goto out;
        for (unsigned long i = start; i < start + count; i++) {
                fill(buf, size, i);
                r = vbus_publish_wait(p, buf, size, 30000000);
                if (r < 0) {
                        const char *why = "";

                        vbus_publisher_get_status(p, &why);
                        fprintf(stderr, "pub: message %lu: %s %s\n", i, strerror(-r), why);
                        goto out;
                }
                if (rate)
                        usleep((useconds_t)(1000000 / rate));
        }
        r = vbus_conn_flush(c, 30000000);
        if (r < 0) {
                fprintf(stderr, "pub: flush: %s\n", strerror(-r));
                goto out;
        }
        printf("published %lu\n", count);
        status = 0;
out:
        vbus_publisher_free(p);
        vbus_conn_free(c);
        free(buf);
        return status;
}

enum { GAPS_MAX = 16 };

typedef struct Sub {
        unsigned long count;
        unsigned long received, dropped, corrupt, reordered, gaps, wrong_sender;
        unsigned long gap_at[GAPS_MAX]; /* positions (1 = first received) of the first gaps */
        bool markers;
        uint64_t marker; /* the first marker received, 0 before */
        struct {
                uint64_t who, last_seq;
        } senders[64]; /* order is per publisher: the last sequence seen from each */
        unsigned n_senders;
        unsigned long slow_us;
        const char *sender;
        const char *sender_key;
} Sub;

static void on_msg(vbus_subscription *s, const vbus_message *m, void *userdata)
{
        Sub *st = userdata;
        size_t n;
        const uint8_t *d = vbus_message_get_data(m, &n);
        uint64_t seq, sum;

        if (st->marker)
                return; /* done: what comes after the marker is not counted */
        st->dropped += vbus_message_get_dropped(m);
        if (vbus_message_follows_gap(m)) {
                if (st->gaps < GAPS_MAX)
                        st->gap_at[st->gaps] = st->received + 1;
                st->gaps++;
        }
        if (st->sender) {
                bool local = vbus_message_is_sender_local(m);
                char who[96];

                /* A domain name is at most 64 bytes, a uid 10 digits: either form fits. */
                if (local)
                        (void)snprintf(who, sizeof(who), "local(uid=%u)",
                                       vbus_message_get_sender_uid(m));
                else
                        (void)snprintf(who, sizeof(who), "dom%u(%s)",
                                       vbus_message_get_sender_domid(m),
                                       vbus_message_get_sender_name(m));
                if (strcmp(who, st->sender) != 0 && !(local && strcmp(st->sender, "local") == 0)) {
                        if (st->wrong_sender++ == 0)
                                fprintf(stderr, "sub: sender %s, expected %s\n", who, st->sender);
                }
        }
        if (st->sender_key && strcmp(vbus_message_get_sender_key(m), st->sender_key) != 0) {
                if (st->wrong_sender++ == 0)
                        fprintf(stderr, "sub: sender key '%s', expected '%s'\n",
                                vbus_message_get_sender_key(m), st->sender_key);
        }
        st->received++;
        if (n < 16) {
                st->corrupt++;
                return;
        }
        memcpy(&seq, d, 8);
        memcpy(&sum, d + 8, 8);
        if (st->markers && seq > st->count)
                st->marker = seq;
        if (checksum(d + 16, n - 16) != sum)
                st->corrupt++;
        {
                /* Processes of one guest behind its agent are told apart by their session. */
                uint64_t who = vbus_message_is_sender_local(m)
                                       ? (1ull << 63) | vbus_message_get_sender_pid(m)
                                       : (uint64_t)vbus_message_get_sender_domid(m) << 32 |
                                                 vbus_message_get_sender_session(m);
                unsigned k;

                for (k = 0; k < st->n_senders && st->senders[k].who != who; k++)
                        ;
                if (k == st->n_senders && k < 64) {
                        st->senders[k].who = who;
                        st->senders[k].last_seq = 0;
                        st->n_senders++;
                }
                if (k < 64) {
                        if (seq <= st->senders[k].last_seq)
                                st->reordered++;
                        st->senders[k].last_seq = seq;
                }
        }
        if (st->slow_us)
                usleep((useconds_t)st->slow_us);
}

/* Rewrites @path with the number of messages received, atomically (a reader never sees it
 * half written). */
static void progress_write(const char *path, unsigned long received)
{
        char tmp[4096];
        FILE *f;

        if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
                return;
        f = fopen(tmp, "w");
        if (!f)
                return;
        fprintf(f, "%lu\n", received);
        if (fclose(f) == 0)
                (void)rename(tmp, path);
}

/* Whether the gaps seen are exactly at the positions of @expect ("4,9"; NULL: none at all). */
static bool gaps_as_expected(const Sub *st, const char *expect)
{
        unsigned long n = 0;
        const char *p = expect;

        while (p && *p) {
                char *end;
                unsigned long at = strtoul(p, &end, 10);

                if (end == p || n >= GAPS_MAX || n >= st->gaps || st->gap_at[n] != at)
                        return false;
                n++;
                p = *end == ',' ? end + 1 : end;
        }
        return n == st->gaps;
}

static bool sub_done(const Sub *st)
{
        return st->markers ? st->marker != 0 : st->received + st->dropped >= st->count;
}

static int cmd_sub(const char *pattern, Sub *st, bool block, long timeout_ms, const char *ready,
                   const char *progress, const char *gaps_at)
{
        vbus_conn *c = NULL;
        vbus_subscription *s = NULL;
        uint64_t deadline;
        bool announced = false;
        unsigned long reported = (unsigned long)-1;
        int r, ok;

        if (vbus_conn_open(NULL, &c) < 0)
                return 1;
        r = vbus_conn_wait_ready(c, 10000000);
        if (r < 0) {
                fprintf(stderr, "sub: no broker: %s\n", strerror(-r));
                return 1;
        }
        if (vbus_subscribe(c, pattern, block ? VBUS_SLOW_BLOCK : VBUS_SLOW_DROP, on_msg, st, &s) <
            0)
                return 1;
        deadline = now_us() + (uint64_t)timeout_ms * 1000u;
        while (!sub_done(st) && now_us() < deadline) {
                const char *why = "";

                r = vbus_conn_wait(c, 50000);
                if (r < 0 && r != -ETIMEDOUT && r != -EINTR) {
                        fprintf(stderr, "sub: %s\n", strerror(-r));
                        break;
                }
                if (vbus_subscription_get_status(s, &why) > 0) {
                        fprintf(stderr, "sub: subscription ended: %s\n", why);
                        break;
                }
                if (!announced && vbus_subscription_is_active(s) && ready) {
                        FILE *f = fopen(ready, "w");

                        if (!f || fclose(f) != 0)
                                fprintf(stderr, "cannot create %s: %s\n", ready, strerror(errno));
                        announced = true;
                }
                if (progress && st->received != reported) {
                        progress_write(progress, st->received);
                        reported = st->received;
                }
        }
        printf("received %lu dropped %lu corrupt %lu reordered %lu gaps %lu", st->received,
               st->dropped, st->corrupt, st->reordered, st->gaps);
        if (st->markers)
                printf(" marker %llu", (unsigned long long)st->marker);
        printf("\n");
        if (!gaps_as_expected(st, gaps_at)) {
                fprintf(stderr, "sub: %lu messages flagged as following a gap, at", st->gaps);
                for (unsigned long i = 0; i < st->gaps && i < GAPS_MAX; i++)
                        fprintf(stderr, " %lu", st->gap_at[i]);
                fprintf(stderr, "; expected at: %s\n", gaps_at ? gaps_at : "none");
        }
        ok = st->received + st->dropped == (st->markers ? st->marker : st->count) &&
             st->corrupt == 0 && st->reordered == 0 && st->wrong_sender == 0 &&
             (!block || st->dropped == 0) && gaps_as_expected(st, gaps_at);
        vbus_subscription_free(s);
        vbus_conn_free(c);
        return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
        if (argc >= 5 && strcmp(argv[1], "pub") == 0) {
                unsigned long rate = 0, start = 1;
                size_t size = strtoul(argv[4], NULL, 10);

                for (int i = 5; i + 1 < argc; i += 2) {
                        if (strcmp(argv[i], "--rate") == 0)
                                rate = strtoul(argv[i + 1], NULL, 10);
                        else if (strcmp(argv[i], "--start") == 0)
                                start = strtoul(argv[i + 1], NULL, 10);
                        else
                                return 2;
                }
                if (size < 16 || start == 0)
                        return 2;
                return cmd_pub(argv[2], strtoul(argv[3], NULL, 10), size, rate, start);
        }
        if (argc >= 4 && strcmp(argv[1], "sub") == 0) {
                Sub st = {.count = strtoul(argv[3], NULL, 10)};
                bool block = false;
                long timeout_ms = 30000;
                const char *ready = NULL, *progress = NULL, *gaps_at = NULL;

                for (int i = 4; i < argc; i++) {
                        if (strcmp(argv[i], "--block") == 0)
                                block = true;
                        else if (strcmp(argv[i], "--markers") == 0)
                                st.markers = true;
                        else if (strcmp(argv[i], "--gaps-at") == 0 && i + 1 < argc)
                                gaps_at = argv[++i];
                        else if (strcmp(argv[i], "--progress") == 0 && i + 1 < argc)
                                progress = argv[++i];
                        else if (strcmp(argv[i], "--slow") == 0 && i + 1 < argc)
                                st.slow_us = strtoul(argv[++i], NULL, 10);
                        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
                                timeout_ms = strtol(argv[++i], NULL, 10);
                        else if (strcmp(argv[i], "--sender") == 0 && i + 1 < argc)
                                st.sender = argv[++i];
                        else if (strcmp(argv[i], "--sender-key") == 0 && i + 1 < argc)
                                st.sender_key = argv[++i];
                        else if (strcmp(argv[i], "--ready") == 0 && i + 1 < argc)
                                ready = argv[++i];
                        else
                                return 2;
                }
                return cmd_sub(argv[2], &st, block, timeout_ms, ready, progress, gaps_at);
        }
        fprintf(stderr, "usage: see the comment at the top of pubsub-check.c\n");
        return 2;
}
