/* SPDX-License-Identifier: MIT */
/*
 * vbus-bridge-sub: subscribe to imported topics and print each message with the identity of
 * its original sender, after checking that the local broker's stamp of the publisher is the
 * bridge. The reference for what a subscriber must check (docs/federation.md, "Telling a
 * bridged message from a forged one"), and a tool for shells and tests.
 *
 * Output, one line per message:
 *   TOPIC FROM seq=N gap=N dropped=N unknown=0|1 PAYLOAD   the bridge delivered it
 *   TOPIC FORGED by STAMP PAYLOAD                           anyone else published it
 * and with --summary, at exit:
 *   summary received=N gaps=N lost=N dropped=N unknown=N forged=N
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vbus/vbus.h>

#include "envelope.h"
#include "table.h"

static const char usage[] =
        "usage: vbus-bridge-sub [OPTIONS] PATTERN\n"
        "Print imported messages with their original sender, checking that the bridge\n"
        "delivered them (at least one --bridge-* option is required).\n"
        "\n"
        "      --bridge-pid PID       the bridge is the local process PID\n"
        "      --bridge-pid-file FILE ... whose pid is in FILE\n"
        "      --bridge-uid UID       the bridge is a local process of user UID\n"
        "      --bridge-domid N       the bridge runs in domain N (over vchan)\n"
        "      --url URL              the broker (default: $VBUS_URL, ...)\n"
        "      --count N              exit after N messages (forged ones included)\n"
        "      --timeout MS           exit 1 after MS milliseconds without a message\n"
        "      --ready FILE           create FILE once the subscription is active\n"
        "      --summary              print the totals at exit\n"
        "      --quiet                do not print each message\n"
        "  -h, --help                 this text\n";

typedef struct Sub {
        long pid, uid, domid; /* -1: not checked */
        const char *pid_file; /* re-read when the pid does not match: the bridge restarted */
        uint64_t received, gaps, lost, dropped, unknown, forged, total;
        bool quiet;
        Table seen; /* topics seen: unknown=1 on a topic's first message is expected */
} Sub;

static int sub_read_pid(Sub *s)
{
        FILE *f = fopen(s->pid_file, "re");
        long pid;
        int r = -ENOENT;

        if (f && fscanf(f, "%ld", &pid) == 1 && pid > 0) {
                s->pid = pid;
                r = 0;
        }
        if (f)
                fclose(f);
        return r;
}

static bool sub_is_bridge(Sub *s, const vbus_message *m)
{
        if (vbus_message_is_sender_local(m) && s->pid_file &&
            vbus_message_get_sender_pid(m) != (uint32_t)s->pid)
                sub_read_pid(s);
        if (vbus_message_is_sender_local(m)) {
                if (s->domid >= 0)
                        return false;
                if (s->pid >= 0 && vbus_message_get_sender_pid(m) != (uint32_t)s->pid)
                        return false;
                if (s->uid >= 0 && vbus_message_get_sender_uid(m) != (uint32_t)s->uid)
                        return false;
                return s->pid >= 0 || s->uid >= 0;
        }
        return s->domid >= 0 && vbus_message_get_sender_domid(m) == (uint32_t)s->domid;
}

static void on_msg(vbus_subscription *vs, const vbus_message *m, void *userdata)
{
        Sub *s = userdata;
        const char *topic = vbus_message_get_topic(m);
        size_t size;
        const void *data = vbus_message_get_data(m, &size);
        Envelope e;
        char from[1024];

        s->total++;
        if (!sub_is_bridge(s, m) || envelope_parse(data, size, &e) < 0) {
                s->forged++;
                if (s->quiet)
                        return;
                if (vbus_message_is_sender_local(m))
                        printf("%s FORGED by local(uid=%" PRIu32 ",pid=%" PRIu32 ") ", topic,
                               vbus_message_get_sender_uid(m), vbus_message_get_sender_pid(m));
                else
                        printf("%s FORGED by dom%" PRIu32 "(%s) ", topic,
                               vbus_message_get_sender_domid(m), vbus_message_get_sender_name(m));
                fwrite(data, 1, strnlen(data, size), stdout);
                putchar('\n');
                fflush(stdout);
                return;
        }
        s->received++;
        if (e.gap) {
                s->gaps++;
                s->lost += e.gap;
        }
        s->dropped += e.dropped;
        if (table_find(&s->seen, topic))
                s->unknown += e.unknown;
        else
                table_insert(&s->seen, topic, NULL);
        if (s->quiet)
                return;
        envelope_format_from(&e, from, sizeof(from));
        printf("%s %s seq=%" PRIu64 " gap=%" PRIu64 " dropped=%" PRIu64 " unknown=%d ", topic, from,
               e.seq, e.gap, e.dropped, e.unknown ? 1 : 0);
        fwrite(e.data, 1, e.size, stdout);
        putchar('\n');
        fflush(stdout);
}

static long parse_long(const char *s)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || *end || v < 0 || s[0] == '\0') {
                fprintf(stderr, "vbus-bridge-sub: invalid number '%s'\n", s);
                exit(2);
        }
        return v;
}

static uint64_t now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                {"bridge-pid", required_argument, NULL, 'p'},
                {"bridge-pid-file", required_argument, NULL, 'P'},
                {"bridge-uid", required_argument, NULL, 'u'},
                {"bridge-domid", required_argument, NULL, 'd'},
                {"url", required_argument, NULL, 'U'},
                {"count", required_argument, NULL, 'n'},
                {"timeout", required_argument, NULL, 't'},
                {"ready", required_argument, NULL, 'r'},
                {"summary", no_argument, NULL, 's'},
                {"quiet", no_argument, NULL, 'q'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        Sub s = {.pid = -1, .uid = -1, .domid = -1};
        const char *url = NULL, *ready = NULL;
        long count = -1, timeout_ms = -1;
        bool summary = false, was_ready = false;
        vbus_conn *conn = NULL;
        vbus_subscription *sub = NULL;
        uint64_t last;
        int c, r, rc = 0;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'p':
                        s.pid = parse_long(optarg);
                        break;
                case 'P':
                        s.pid_file = optarg;
                        if (sub_read_pid(&s) < 0) {
                                fprintf(stderr, "vbus-bridge-sub: %s: no pid\n", optarg);
                                return 2;
                        }
                        break;
                case 'u':
                        s.uid = parse_long(optarg);
                        break;
                case 'd':
                        s.domid = parse_long(optarg);
                        break;
                case 'U':
                        url = optarg;
                        break;
                case 'n':
                        count = parse_long(optarg);
                        break;
                case 't':
                        timeout_ms = parse_long(optarg);
                        break;
                case 'r':
                        ready = optarg;
                        break;
                case 's':
                        summary = true;
                        break;
                case 'q':
                        s.quiet = true;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return 0;
                default:
                        fputs(usage, stderr);
                        return 2;
                }
        }
        if (optind + 1 != argc || (s.pid < 0 && s.uid < 0 && s.domid < 0)) {
                fputs(usage, stderr);
                return 2;
        }
        r = vbus_conn_open(url, &conn);
        if (r == 0)
                r = vbus_subscribe(conn, argv[optind], VBUS_SLOW_BLOCK, on_msg, &s, &sub);
        if (r < 0) {
                fprintf(stderr, "vbus-bridge-sub: %s\n", strerror(-r));
                vbus_conn_free(conn);
                return 1;
        }
        last = now_usec();
        while (count < 0 || s.total < (uint64_t)count) {
                uint64_t before = s.total;

                r = vbus_conn_wait(conn, 100000);
                if (r < 0 && r != -ETIMEDOUT && r != -EINTR) {
                        fprintf(stderr, "vbus-bridge-sub: %s\n", strerror(-r));
                        rc = 1;
                        break;
                }
                if (!was_ready && vbus_subscription_is_active(sub)) {
                        was_ready = true;
                        if (ready) {
                                FILE *f = fopen(ready, "we");

                                if (f)
                                        fclose(f);
                        }
                }
                if (s.total != before)
                        last = now_usec();
                else if (timeout_ms >= 0 && now_usec() - last > (uint64_t)timeout_ms * 1000) {
                        fprintf(stderr, "vbus-bridge-sub: timed out after %" PRIu64 " messages\n",
                                s.total);
                        rc = 1;
                        break;
                }
        }
        if (summary)
                printf("summary received=%" PRIu64 " gaps=%" PRIu64 " lost=%" PRIu64
                       " dropped=%" PRIu64 " unknown=%" PRIu64 " forged=%" PRIu64 "\n",
                       s.received, s.gaps, s.lost, s.dropped, s.unknown, s.forged);
        vbus_conn_free(conn);
        table_clear(&s.seen, NULL);
        return rc;
}
