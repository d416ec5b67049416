/* SPDX-License-Identifier: MIT */
/*
 * vbusctl: the vbus command-line client for users and scripts. It uses only the public libvbus
 * API (<vbus/vbus.h>).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vbus/vbus.h>

static const char usage[] =
        "Usage: vbusctl [--url URL] COMMAND [ARGS]\n"
        "\n"
        "Commands:\n"
        "  pub TOPIC [MESSAGE | -]   publish MESSAGE (or each line of stdin with '-')\n"
        "      --count N             publish it N times (default 1)\n"
        "      --interval MS         wait MS milliseconds between messages\n"
        "      --binary              with '-': all of stdin is one message\n"
        "  sub PATTERN               print the messages of topics matching PATTERN\n"
        "      --drop                fall behind by dropping, counted (default)\n"
        "      --block               never drop: slow the publishers down instead\n"
        "      --count N             exit after N messages\n"
        "      --text | --hex | --json   how to print each message (default text)\n"
        "\n"
        "Common options:\n"
        "  --url URL        unix:/path or vchan:<broker-domid> (default: $VBUS_URL, else\n"
        "                   unix:/run/vbus/broker.sock if it exists, else vchan:0)\n"
        "  --timeout MS     give up after MS milliseconds (connecting, or waiting for\n"
        "                   messages with sub; default 5000 for pub, none for sub)\n"
        "  -h, --help       this text\n"
        "\n"
        "Topics are dot-separated tokens of [A-Za-z0-9_-]; in patterns '*' matches one token\n"
        "and a final '>' one or more. Each message printed by sub shows the sender as the\n"
        "broker knows it: domN(name) for a guest, local(uid=U,pid=P) for a local process.\n"
        "\n"
        "Exit status: 0 on success, 1 on failure, 2 on usage errors.\n";

enum { FMT_TEXT, FMT_HEX, FMT_JSON };

typedef struct Options {
        const char *url;
        long timeout_ms;
        unsigned long count;
        long interval_ms;
        bool binary;
        bool block;
        int format;
} Options;

static uint64_t ms_to_us(long ms)
{
        return ms < 0 ? UINT64_MAX : (uint64_t)ms * 1000u;
}

static int connect_ready(const Options *o, vbus_conn **ret)
{
        vbus_conn *c = NULL;
        int r = vbus_conn_open(o->url, &c);

        if (r < 0) {
                fprintf(stderr, "vbusctl: cannot use URL '%s': %s\n", o->url ? o->url : "(default)",
                        strerror(-r));
                return -1;
        }
        r = vbus_conn_wait_ready(c, ms_to_us(o->timeout_ms < 0 ? 5000 : o->timeout_ms));
        if (r < 0) {
                int why = vbus_conn_get_last_error(c);

                fprintf(stderr, "vbusctl: no broker answered at %s: %s\n",
                        o->url ? o->url : "the default address", strerror(-(why < 0 ? why : r)));
                if (why == -EADDRINUSE)
                        fprintf(stderr, "vbusctl: another vbus process of this domain holds its "
                                        "vchan to the broker (one per domain, or use the guest "
                                        "agent)\n");
                vbus_conn_free(c);
                return -1;
        }
        *ret = c;
        return 0;
}

static int publish_one(vbus_publisher *p, const void *data, size_t len, const Options *o)
{
        int r = vbus_publish_wait(p, data, len, ms_to_us(o->timeout_ms < 0 ? 5000 : o->timeout_ms));
        const char *why = NULL;

        if (r == 0)
                return 0;
        if (r == -EPIPE) {
                int st = vbus_publisher_get_status(p, &why);

                fprintf(stderr, "vbusctl: the broker refused to publish: %s%s%s\n",
                        vbus_status_name(st), why && why[0] ? ": " : "", why ? why : "");
        } else if (r == -ETIMEDOUT) {
                fprintf(stderr, "vbusctl: publish timed out (no credit from the broker: a "
                                "--block subscriber may be holding it back)\n");
        } else {
                fprintf(stderr, "vbusctl: publish failed: %s\n", strerror(-r));
        }
        return -1;
}

static int cmd_pub(const Options *o, const char *topic, const char *message)
{
        vbus_conn *c = NULL;
        vbus_publisher *p = NULL;
        int status = 0, r;

        if (connect_ready(o, &c) < 0)
                return 1;
        r = vbus_publisher_open(c, topic, &p);
        if (r < 0) {
                fprintf(stderr,
                        "vbusctl: '%s' is not a valid topic (tokens of [A-Za-z0-9_-] "
                        "joined by '.', no wildcards)\n",
                        topic);
                vbus_conn_free(c);
                return 2;
        }
        if (strcmp(message, "-") != 0) {
                for (unsigned long i = 0; i < o->count && status == 0; i++) {
                        if (i > 0 && o->interval_ms > 0)
                                usleep((useconds_t)o->interval_ms * 1000u);
                        if (publish_one(p, message, strlen(message), o) < 0)
                                status = 1;
                }
        } else if (o->binary) {
                size_t n = 0, cap = 65536;
                char *buf = malloc(cap);

                while (buf && !feof(stdin) && !ferror(stdin)) {
                        if (n == cap) {
                                char *b = cap >= VBUS_MESSAGE_MAX ? NULL : realloc(buf, cap * 2);

                                if (!b) {
                                        fprintf(stderr,
                                                "vbusctl: stdin is larger than the %d-byte "
                                                "message limit\n",
                                                VBUS_MESSAGE_MAX);
                                        status = 1;
                                        break;
                                }
                                buf = b;
                                cap *= 2;
                        }
                        n += fread(buf + n, 1, cap - n, stdin);
                }
                if (status == 0 && buf && publish_one(p, buf, n, o) < 0)
                        status = 1;
                free(buf);
        } else {
                char *line = NULL;
                size_t cap = 0;
                ssize_t n;

                while (status == 0 && (n = getline(&line, &cap, stdin)) >= 0) {
                        if (n > 0 && line[n - 1] == '\n')
                                n--;
                        if (publish_one(p, line, (size_t)n, o) < 0)
                                status = 1;
                }
                free(line);
        }
        if (status == 0 &&
            vbus_conn_flush(c, ms_to_us(o->timeout_ms < 0 ? 5000 : o->timeout_ms)) < 0) {
                fprintf(stderr, "vbusctl: could not hand every message to the broker\n");
                status = 1;
        }
        vbus_publisher_free(p);
        vbus_conn_free(c);
        return status;
}

typedef struct SubState {
        const Options *o;
        unsigned long n_seen;
} SubState;

static void print_sender(const vbus_message *m, bool json)
{
        if (vbus_message_is_sender_local(m)) {
                if (json)
                        printf("{\"local\":true,\"domid\":%" PRIu32 ",\"uid\":%" PRIu32
                               ",\"pid\":%" PRIu32 "}",
                               vbus_message_get_sender_domid(m), vbus_message_get_sender_uid(m),
                               vbus_message_get_sender_pid(m));
                else
                        printf("local(uid=%" PRIu32 ",pid=%" PRIu32 ")",
                               vbus_message_get_sender_uid(m), vbus_message_get_sender_pid(m));
                return;
        }
        if (json)
                printf("{\"local\":false,\"domid\":%" PRIu32 ",\"name\":\"%s\"}",
                       vbus_message_get_sender_domid(m), vbus_message_get_sender_name(m));
        else
                printf("dom%" PRIu32 "(%s)", vbus_message_get_sender_domid(m),
                       vbus_message_get_sender_name(m));
}

static void print_data(const uint8_t *d, size_t n, int format)
{
        for (size_t i = 0; i < n; i++) {
                if (format == FMT_HEX)
                        printf("%02x", d[i]);
                else if (format == FMT_JSON && (d[i] == '"' || d[i] == '\\'))
                        printf("\\%c", d[i]);
                else if (d[i] >= 0x20 && d[i] < 0x7f)
                        putchar(d[i]);
                else
                        printf(format == FMT_JSON ? "\\u%04x" : "\\x%02x", d[i]);
        }
}

static void on_message(vbus_subscription *sub, const vbus_message *m, void *userdata)
{
        SubState *st = userdata;
        size_t n;
        const uint8_t *d = vbus_message_get_data(m, &n);
        uint64_t dropped = vbus_message_get_dropped(m);

        if (st->o->count && st->n_seen >= st->o->count)
                return;
        st->n_seen++;
        if (st->o->format == FMT_JSON) {
                printf("{\"topic\":\"%s\",\"sender\":", vbus_message_get_topic(m));
                print_sender(m, true);
                printf(",\"sequence\":%" PRIu64 ",\"dropped\":%" PRIu64 ",\"gap\":%s,\"data\":\"",
                       vbus_message_get_sequence(m), dropped,
                       vbus_message_follows_gap(m) ? "true" : "false");
                print_data(d, n, FMT_JSON);
                printf("\"}\n");
                return;
        }
        if (vbus_message_follows_gap(m))
                printf("# reconnected to the broker: messages published meanwhile were missed\n");
        if (dropped)
                printf("# %" PRIu64 " messages dropped (this subscriber fell behind)\n", dropped);
        printf("%s ", vbus_message_get_topic(m));
        print_sender(m, false);
        putchar(' ');
        print_data(d, n, st->o->format);
        putchar('\n');
}

static int cmd_sub(const Options *o, const char *pattern)
{
        SubState st = {.o = o};
        vbus_subscription *s = NULL;
        vbus_conn *c = NULL;
        uint64_t start;
        bool announced = false;
        int r, status = 0;
        struct timespec ts;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (connect_ready(o, &c) < 0)
                return 1;
        r = vbus_subscribe(c, pattern, o->block ? VBUS_SLOW_BLOCK : VBUS_SLOW_DROP, on_message, &st,
                           &s);
        if (r < 0) {
                fprintf(stderr, "vbusctl: '%s' is not a valid pattern\n", pattern);
                vbus_conn_free(c);
                return 2;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        start = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
        while (!o->count || st.n_seen < o->count) {
                const char *why = NULL;
                uint64_t now;
                int state;

                r = vbus_conn_wait(c, 100000);
                if (r < 0 && r != -ETIMEDOUT && r != -EINTR) {
                        fprintf(stderr, "vbusctl: %s\n", strerror(-r));
                        status = 1;
                        break;
                }
                state = vbus_subscription_get_status(s, &why);
                if (state > 0) {
                        fprintf(stderr, "vbusctl: subscription ended: %s%s%s\n",
                                vbus_status_name(state), why[0] ? ": " : "", why);
                        status = 1;
                        break;
                }
                if (!announced && vbus_subscription_is_active(s)) {
                        fprintf(stderr, "# subscribed to %s\n", pattern);
                        announced = true;
                }
                clock_gettime(CLOCK_MONOTONIC, &ts);
                now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
                if (o->timeout_ms >= 0 && now - start >= ms_to_us(o->timeout_ms)) {
                        fprintf(stderr, "vbusctl: timed out after %lu of %lu messages\n", st.n_seen,
                                o->count);
                        status = 1;
                        break;
                }
        }
        vbus_subscription_free(s);
        vbus_conn_free(c);
        return status;
}

static int parse_long(const char *s, long min, long max, long *ret)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || *end || end == s || v < min || v > max)
                return -1;
        *ret = v;
        return 0;
}

static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},   {"timeout", required_argument, NULL, 't'},
        {"count", required_argument, NULL, 'n'}, {"interval", required_argument, NULL, 'i'},
        {"binary", no_argument, NULL, 'b'},      {"drop", no_argument, NULL, 'D'},
        {"block", no_argument, NULL, 'B'},       {"text", no_argument, NULL, 'T'},
        {"hex", no_argument, NULL, 'H'},         {"json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},        {0},
};

/* Applies one option. Return: 0, 1 for --help, -1 on a bad value or unknown option. */
static int apply_option(int c, const char *arg, Options *o, bool *count_set)
{
        long v;

        switch (c) {
        case 'u':
                o->url = arg;
                return 0;
        case 't':
                return parse_long(arg, 0, 86400000, &o->timeout_ms);
        case 'n':
                if (parse_long(arg, 1, 1000000000, &v) < 0)
                        return -1;
                o->count = (unsigned long)v;
                *count_set = true;
                return 0;
        case 'i':
                return parse_long(arg, 0, 3600000, &o->interval_ms);
        case 'b':
                o->binary = true;
                return 0;
        case 'D':
                o->block = false;
                return 0;
        case 'B':
                o->block = true;
                return 0;
        case 'T':
                o->format = FMT_TEXT;
                return 0;
        case 'H':
                o->format = FMT_HEX;
                return 0;
        case 'J':
                o->format = FMT_JSON;
                return 0;
        case 'h':
                return 1;
        default:
                return -1;
        }
}

int main(int argc, char **argv)
{
        Options o = {.timeout_ms = -1, .count = 0, .format = FMT_TEXT};
        const char *args[3] = {NULL, NULL, NULL};
        bool count_set = false;
        int n_args = 0;

        /* Options may come before or after the command and its arguments. */
        for (;;) {
                /* "-": every non-option argument comes back as option 1, in order. */
                int c = getopt_long(argc, argv, "-h", opts, NULL);
                int r;

                if (c == -1)
                        break;
                if (c == 1) {
                        if (n_args == 3) {
                                fprintf(stderr, "vbusctl: too many arguments (see --help)\n");
                                return 2;
                        }
                        args[n_args++] = optarg;
                        continue;
                }
                r = apply_option(c, optarg, &o, &count_set);
                if (r == 1) {
                        fputs(usage, stdout);
                        return 0;
                }
                if (r < 0) {
                        if (c != '?')
                                fprintf(stderr, "vbusctl: invalid value '%s' for %s\n", optarg,
                                        argv[optind - 1]);
                        fputs(usage, stderr);
                        return 2;
                }
        }
        if (n_args == 0) {
                fputs(usage, stderr);
                return 2;
        }
        if (strcmp(args[0], "pub") == 0) {
                if (n_args < 2) {
                        fprintf(stderr, "vbusctl pub: missing TOPIC (see --help)\n");
                        return 2;
                }
                if (!count_set)
                        o.count = 1;
                return cmd_pub(&o, args[1], n_args == 3 ? args[2] : "-");
        }
        if (strcmp(args[0], "sub") == 0) {
                if (n_args != 2) {
                        fprintf(stderr, "vbusctl sub: want exactly one PATTERN (see --help)\n");
                        return 2;
                }
                return cmd_sub(&o, args[1]);
        }
        fprintf(stderr, "vbusctl: unknown command '%s' (see --help)\n", args[0]);
        return 2;
}
