/* SPDX-License-Identifier: MIT */
/*
 * batch-check: a publisher of many small numbered messages and a subscriber that accounts for
 * every one of them exactly, for tests/integration/pubsub-batch.sh (batches, protocol.md 5.5).
 * Public libvbus API only: batching is libvbus's and the broker's business, and must be
 * invisible here but for its speed.
 *
 *   batch-check pub TOPIC COUNT SIZE [--start S] [--hold FILE]
 *       publishes COUNT messages of SIZE bytes (>= 16) numbered from S (default 1), as fast as
 *       the bus takes them, flushes, prints "published COUNT"; with --hold, then keeps its link
 *       open until FILE exists (so the test can read the broker's counters of it).
 *   batch-check sub PATTERN COUNT SIZE [--block] [--slow US] [--markers] [--ready FILE]
 *                   [--progress FILE] [--timeout MS] [--hold FILE]
 *       checks every delivery as it comes:
 *       - sequence: vbus_message_get_sequence() is the previous one plus 1, from 1: the
 *         subscription's delivery counter has neither hole nor repeat, batch or no batch;
 *       - loss: the message numbers grow, and every message numbered below the one delivered
 *         has been received or reported dropped (vbus_message_get_dropped(), summed) by then:
 *         nothing is lost unreported; with --block, the numbers follow one another and nothing
 *         is dropped;
 *       - content: SIZE bytes and its checksum; never retained, never after a gap.
 *       It stops once COUNT messages are received or reported dropped, or with --markers at the
 *       first message numbered above COUNT (a marker, published after the others to carry the
 *       count of the last ones dropped). Prints "received R dropped D sequence-errors S
 *       loss-errors L corrupt C" (and " marker K") and exits 0 when there is no error and
 *       R + D == COUNT (or K), with D == 0 under --block. With --hold, it prints that line,
 *       then keeps its link up (counting nothing more) until FILE exists, and then exits.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
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

/* Message layout: u64 number, u64 checksum of the rest, then filler bytes. */
static void fill(uint8_t *buf, size_t size, uint64_t num)
{
        uint64_t sum;

        memcpy(buf, &num, 8);
        for (size_t i = 16; i < size; i++)
                buf[i] = (uint8_t)(num * 131 + i);
        sum = checksum(buf + 16, size - 16);
        memcpy(buf + 8, &sum, 8);
}

/* Keeps the link up (processing it) until @hold exists, at most 2 minutes. */
static int hold_link(vbus_conn *c, const char *hold)
{
        uint64_t until = now_us() + 120000000u;

        while (access(hold, F_OK) != 0 && now_us() < until) {
                int r = vbus_conn_wait(c, 50000);

                if (r < 0 && r != -ETIMEDOUT && r != -EINTR) {
                        fprintf(stderr, "link lost while held: %s\n", strerror(-r));
                        return r;
                }
        }
        return 0;
}

static int cmd_pub(const char *topic, unsigned long count, size_t size, unsigned long start,
                   const char *hold)
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
                r = vbus_publish_wait(p, buf, size, 60000000);
                if (r < 0) {
                        const char *why = "";

                        vbus_publisher_get_status(p, &why);
                        fprintf(stderr, "pub: message %lu: %s %s\n", i, strerror(-r), why);
                        goto out;
                }
        }
        r = vbus_conn_flush(c, 60000000);
        if (r < 0) {
                fprintf(stderr, "pub: flush: %s\n", strerror(-r));
                goto out;
        }
        printf("published %lu\n", count);
        (void)fflush(stdout);
        if (hold && hold_link(c, hold) < 0)
                goto out;
        status = 0;
out:
        vbus_publisher_free(p);
        vbus_conn_free(c);
        free(buf);
        return status;
}

typedef struct Sub {
        unsigned long count;
        size_t size;
        bool block, markers;
        unsigned long slow_us;
        unsigned long received, dropped, seq_errors, loss_errors, corrupt;
        uint64_t last_seq; /* the subscription's delivery counter, last seen */
        uint64_t last_num; /* the publisher's number of the last message received */
        uint64_t marker;
} Sub;

/* Reports the first few errors of a kind, then only counts them. */
__attribute__((format(printf, 2, 3))) static void complain(unsigned long *n, const char *fmt, ...)
{
        va_list ap;

        if ((*n)++ >= 5)
                return;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

static bool sub_done(const Sub *st)
{
        return st->markers ? st->marker != 0 : st->received + st->dropped >= st->count;
}

static void on_msg(vbus_subscription *s, const vbus_message *m, void *userdata)
{
        Sub *st = userdata;
        size_t n;
        const uint8_t *d = vbus_message_get_data(m, &n);
        uint64_t seq = vbus_message_get_sequence(m), dropped = vbus_message_get_dropped(m);
        uint64_t num, sum;

        (void)s;
        if (sub_done(st))
                return; /* done: what comes after is not counted */
        st->received++;
        st->dropped += dropped;
        if (seq != st->last_seq + 1)
                complain(&st->seq_errors, "sub: delivery %lu has sequence %llu (expected %llu)",
                         st->received, (unsigned long long)seq,
                         (unsigned long long)st->last_seq + 1);
        st->last_seq = seq;
        if (vbus_message_is_retained(m) || vbus_message_follows_gap(m))
                complain(&st->corrupt, "sub: delivery %lu is retained (%d) or follows a gap (%d)",
                         st->received, vbus_message_is_retained(m), vbus_message_follows_gap(m));
        if (n != st->size) {
                complain(&st->corrupt, "sub: delivery %lu has %zu bytes, not %zu", st->received, n,
                         st->size);
                return;
        }
        memcpy(&num, d, 8);
        memcpy(&sum, d + 8, 8);
        if (checksum(d + 16, n - 16) != sum)
                complain(&st->corrupt, "sub: message %llu (delivery %lu) corrupt",
                         (unsigned long long)num, st->received);
        /* Numbers only grow; every message numbered below this one was received or reported
         * dropped by now (a drop is reported in the delivery after it happens, which may be of
         * a message queued before it); under BLOCK they follow one another. */
        if (num <= st->last_num || st->received + st->dropped < num ||
            (st->block && (dropped || num != st->last_num + 1)))
                complain(&st->loss_errors,
                         "sub: message %llu after %llu, delivery %lu, %lu reported dropped in all",
                         (unsigned long long)num, (unsigned long long)st->last_num, st->received,
                         st->dropped);
        st->last_num = num;
        if (st->markers && num > st->count)
                st->marker = num;
        if (st->slow_us)
                usleep((useconds_t)st->slow_us);
}

/* Rewrites @path with the number of messages received, atomically. */
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

static int cmd_sub(const char *pattern, Sub *st, long timeout_ms, const char *ready,
                   const char *progress, const char *hold)
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
                vbus_conn_free(c);
                return 1;
        }
        if (vbus_subscribe(c, pattern, st->block ? VBUS_SLOW_BLOCK : VBUS_SLOW_DROP, on_msg, st,
                           &s) < 0) {
                vbus_conn_free(c);
                return 1;
        }
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
        printf("received %lu dropped %lu sequence-errors %lu loss-errors %lu corrupt %lu",
               st->received, st->dropped, st->seq_errors, st->loss_errors, st->corrupt);
        if (st->markers)
                printf(" marker %llu", (unsigned long long)st->marker);
        printf("\n");
        (void)fflush(stdout);
        /* Later deliveries (markers) are not counted once done (on_msg). */
        if (hold && hold_link(c, hold) < 0)
                st->corrupt++;
        ok = st->received + st->dropped == (st->markers ? st->marker : st->count) &&
             st->seq_errors == 0 && st->loss_errors == 0 && st->corrupt == 0 &&
             (!st->block || st->dropped == 0);
        vbus_subscription_free(s);
        vbus_conn_free(c);
        return ok ? 0 : 1;
}

/* The options of sub that take a value. */
typedef struct SubOpts {
        unsigned long slow_us;
        long timeout_ms;
        const char *ready, *progress, *hold;
} SubOpts;

/* Takes the option @opt with its value @val. Return: false if @opt is none of them. */
static bool sub_option(SubOpts *o, const char *opt, const char *val)
{
        if (strcmp(opt, "--slow") == 0)
                o->slow_us = strtoul(val, NULL, 10);
        else if (strcmp(opt, "--timeout") == 0)
                o->timeout_ms = strtol(val, NULL, 10);
        else if (strcmp(opt, "--ready") == 0)
                o->ready = val;
        else if (strcmp(opt, "--progress") == 0)
                o->progress = val;
        else if (strcmp(opt, "--hold") == 0)
                o->hold = val;
        else
                return false;
        return true;
}

static int usage(void)
{
        fprintf(stderr,
                "usage: batch-check pub TOPIC COUNT SIZE [--start S] [--hold FILE]\n"
                "       batch-check sub PATTERN COUNT SIZE [--block] [--slow US] "
                "[--markers] [--ready FILE] [--progress FILE] [--timeout MS] [--hold FILE]\n");
        return 2;
}

int main(int argc, char **argv)
{
        if (argc >= 5 && strcmp(argv[1], "pub") == 0) {
                unsigned long start = 1;
                size_t size = strtoul(argv[4], NULL, 10);
                const char *hold = NULL;

                for (int i = 5; i + 1 < argc; i += 2) {
                        if (strcmp(argv[i], "--start") == 0)
                                start = strtoul(argv[i + 1], NULL, 10);
                        else if (strcmp(argv[i], "--hold") == 0)
                                hold = argv[i + 1];
                        else
                                return usage();
                }
                if (size < 16 || start == 0)
                        return usage();
                return cmd_pub(argv[2], strtoul(argv[3], NULL, 10), size, start, hold);
        }
        if (argc >= 5 && strcmp(argv[1], "sub") == 0) {
                Sub st = {.count = strtoul(argv[3], NULL, 10), .size = strtoul(argv[4], NULL, 10)};
                SubOpts opts = {.timeout_ms = 60000};

                for (int i = 5; i < argc; i++) {
                        if (strcmp(argv[i], "--block") == 0)
                                st.block = true;
                        else if (strcmp(argv[i], "--markers") == 0)
                                st.markers = true;
                        else if (i + 1 < argc && sub_option(&opts, argv[i], argv[i + 1]))
                                i++;
                        else
                                return usage();
                }
                if (st.size < 16 || st.count == 0)
                        return usage();
                st.slow_us = opts.slow_us;
                return cmd_sub(argv[2], &st, opts.timeout_ms, opts.ready, opts.progress, opts.hold);
        }
        return usage();
}
