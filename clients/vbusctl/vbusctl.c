/* SPDX-License-Identifier: MIT */
/*
 * vbusctl: the vbus command-line client for users and scripts. It uses only the public libvbus
 * API (<vbus/vbus.h>), and the generated code of proto/vbus/v1/broker.proto to call the broker's
 * own service (services).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vbus/vbus.h>

#include "admin.h"
#include "forward.h"
#include "json.h"
#include "keygen.h"
#include "reflect.h"
#include "vbus/v1/broker.pb-c.h"

static const char usage[] =
        "Usage: vbusctl [--url URL] COMMAND [ARGS]\n"
        "\n"
        "Commands:\n"
        "  pub TOPIC [MESSAGE | -]   publish MESSAGE (or each line of stdin with '-')\n"
        "      --count N             publish it N times (default 1)\n"
        "      --interval MS         wait MS milliseconds between messages\n"
        "      --binary              with '-': all of stdin is one message (at most 1 MiB)\n"
        "      --retain              the broker keeps the (last) message as the topic's\n"
        "                            retained value: later subscribers get it first; an\n"
        "                            empty message ('') clears it\n"
        "  sub PATTERN               print the messages of topics matching PATTERN\n"
        "      --drop                fall behind by dropping, counted (default)\n"
        "      --block               never drop: slow the publishers down instead\n"
        "      --count N             exit after N messages\n"
        "      --text | --hex | --json   how to print each message (default text; --json: one\n"
        "                            object per line, the payload as UTF-8 text or base64,\n"
        "                            see vbusctl(1))\n"
        "  call SERVICE/METHOD [PAYLOAD | @FILE | -]\n"
        "                            call a method with PAYLOAD, the contents of FILE or all of\n"
        "                            stdin (at most 1 MiB); print the reply and a newline on\n"
        "                            stdout. On failure print the status and message, exit 1\n"
        "      --raw                 print the reply's bytes only, without the newline\n"
        "      --header KEY=VALUE    send a header with the call (repeatable, at most 16;\n"
        "                            KEY: 1-64 of [a-z0-9_.-], VALUE: at most 1024 bytes)\n"
        "      --stream              a server-streaming call: print each reply message as it\n"
        "                            arrives, each followed by a newline\n"
        "      --json                PAYLOAD is a JSON object: encode it as the method's\n"
        "                            request by the description its server registered (see\n"
        "                            describe), print each reply as one line of JSON\n"
        "                            (proto3 JSON mapping; server-streaming methods print\n"
        "                            every message). Bad JSON, unknown fields, wrong types\n"
        "                            and out-of-range numbers: one line saying where, exit 2\n"
        "  describe SERVICE          print the methods (with their streaming kinds) and the\n"
        "                            message and enum types of SERVICE, as its server\n"
        "                            registered them; says so when none did\n"
        "  serve SERVICE --exec CMD  serve SERVICE: each call runs CMD (with sh -c), one at a\n"
        "                            time, the request on its stdin, its stdout as the reply.\n"
        "                            Exit status 0: ok; 100+S: status S (103 invalid-argument,\n"
        "                            105 not-found, 106 permission-denied, 107 resource-\n"
        "                            exhausted, 108 unavailable, 109 internal, ...); killed by\n"
        "                            a signal (or 129-192): internal; any other: application\n"
        "                            error. CMD's stderr is the failure message.\n"
        "                            CMD sees VBUS_METHOD, VBUS_CALLER (domN(name) or\n"
        "                            local(uid=U)), VBUS_CALLER_KEY (the key the caller\n"
        "                            proved, empty if none), VBUS_TIMEOUT_MS (time left,\n"
        "                            empty if none)\n"
        "                            and VBUS_HEADER_<KEY> for each header (KEY upper-cased,\n"
        "                            '.' and '-' as '_')\n"
        "  services [PREFIX]         list the services registered with the broker, only\n"
        "                            those whose name starts with PREFIX if given: one line\n"
        "                            per server, with its identity as the broker knows it,\n"
        "                            its calls in flight and the calls routed to it so far\n"
        "      --json                one JSON object (the ListServicesReply) instead\n"
        /* clang-format off */
        FORWARD_USAGE /* expose, forward, connect: forward.h */
        KEYGEN_USAGE  /* keygen: keygen.h */
        "\n"
        ADMIN_USAGE /* peers, topics, subs, stats, kick, reload, monitor: admin.h */
        /* clang-format on */
        "\n"
        "Common options:\n"
        "  --url URL        unix:/path or vchan:<broker-domid> (default: $VBUS_URL, else\n"
        "                   unix:/run/vbus/broker.sock if it exists, else vchan:0)\n"
        "  --timeout MS     give up after MS milliseconds (waiting for messages with sub;\n"
        "                   default 5000 for pub, none for sub; the call's deadline for\n"
        "                   call and services, default 5000). Connecting has its own\n"
        "                   budget of 5 s, and fails at once when no broker can be there\n"
        "                   (no socket, refused, permission denied), naming the URL\n"
        /* clang-format off */
        KEYGEN_OPTIONS_USAGE /* --key, --broker-key: keygen.h */
        /* clang-format on */
        "  -v, --verbose    say what happens on stderr (connect, subscription active,\n"
        "                   messages published and received, each call and its outcome)\n"
        "  --version        print the versions of vbusctl, libvbus and the protocol\n"
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
        const char *exec;
        long timeout_ms;
        unsigned long count;
        long interval_ms;
        bool binary;
        bool block;
        bool stream;
        bool raw;
        bool verbose;
        bool retain;
        int format;
        vbus_header headers[VBUS_CALL_HEADERS_MAX];
        char header_keys[VBUS_CALL_HEADERS_MAX][VBUS_CALL_HEADER_KEY_MAX + 1];
        size_t n_headers;
} Options;

static uint64_t ms_to_us(long ms)
{
        return ms < 0 ? UINT64_MAX : (uint64_t)ms * 1000u;
}

/* With -v: one line on stderr saying what happens. */
__attribute__((format(printf, 2, 3))) static void verbose(const Options *o, const char *fmt, ...)
{
        va_list ap;

        if (!o->verbose)
                return;
        fputs("vbusctl: ", stderr);
        va_start(ap, fmt);
        (void)vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

static uint64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The URL a connection uses, for messages: --url, else $VBUS_URL, else the library's default. */
static const char *url_name(const Options *o)
{
        const char *env = getenv("VBUS_URL");

        if (o->url)
                return o->url;
        return env && env[0] ? env : "the default address";
}

/* How long connecting may take (a broker being started, a vchan being mapped): its own budget,
 * never --timeout, so that "--timeout 0" never makes connecting time out. */
enum { CONNECT_BUDGET_MS = 5000 };

/* What to tell a user whose connection to @url failed with @r: what it means, what to do. */
static const char *connect_hint(const char *url, int r)
{
        bool vchan = strncmp(url, "vchan:", 6) == 0;

        switch (r) {
        case -ENOENT:
                return vchan ? "no Xen here (this domain has no domid in xenstore)"
                             : "no socket there: is vchand running (in a guest: vchand --agent)?";
        case -ECONNREFUSED:
                return "nothing listens there: a broker or agent that died left its socket";
        case -EACCES:
                return "the socket's permissions refuse this user (vchand.conf socket_group, "
                       "socket_mode)";
        case -EADDRINUSE:
                return "another vbus process of this domain holds its vchan to the broker (one "
                       "per domain: run vchand --agent and connect through it)";
        case -ETIMEDOUT:
                return vchan ? "this domain's vchan is published, but no broker mapped it: is "
                               "vchand running in that domain, and does it see this one?"
                             : "the socket accepted, but no HELLO came back";
        default:
                return NULL;
        }
}

static int connect_ready(const Options *o, vbus_conn **ret)
{
        const char *env = getenv("VBUS_URL");
        const char *from = o->url ? "--url" : env && env[0] ? "$VBUS_URL" : "the default";
        uint64_t start = now_us();
        vbus_conn *c = NULL;
        const char *hint;
        int r;

        verbose(o, "connecting to %s", url_name(o));
        r = vbus_conn_open(o->url, &c);
        if (r < 0) {
                if (!keygen_explain_open(r))
                        fprintf(stderr,
                                "vbusctl: cannot use URL '%s' (%s): %s; URLs are unix:<path> or "
                                "vchan:<domid>\n",
                                o->url ? o->url
                                : env  ? env
                                       : "",
                                from, strerror(-r));
                return -1;
        }
        r = vbus_conn_wait_ready(c, ms_to_us(CONNECT_BUDGET_MS));
        if (r < 0) {
                /* Channel auth refused (EPERM), or the pinned broker key not proven (EACCES
                 * with a key pinned): keygen.c explains; anything else is the connection's. */
                const char *pinned = getenv("VBUS_BROKER_KEY");
                bool auth = r == -EPERM || (r == -EACCES && pinned && pinned[0]);

                hint = auth ? NULL : connect_hint(vbus_conn_get_url(c), r);
                if (r == -ETIMEDOUT)
                        fprintf(stderr, "vbusctl: no broker answered at %s (%s) within %d s",
                                vbus_conn_get_url(c), from, CONNECT_BUDGET_MS / 1000);
                else
                        fprintf(stderr, "vbusctl: cannot connect to %s (%s): %s",
                                vbus_conn_get_url(c), from, strerror(-r));
                fprintf(stderr, "%s%s\n", hint ? ": " : "", hint ? hint : "");
                if (auth)
                        keygen_explain(r);
                vbus_conn_free(c);
                return -1;
        }
        verbose(o, "connected to %s in %" PRIu64 " ms", url_name(o), (now_us() - start) / 1000u);
        *ret = c;
        return 0;
}

/*
 * Reads all of @f (named @what in messages) as one message: at most VBUS_MESSAGE_MAX bytes, so a
 * message of exactly the limit is accepted and one byte more is refused. Return: 0 or -1 (the
 * reason printed).
 */
static int read_message(FILE *f, const char *what, char **ret, size_t *ret_n)
{
        size_t n = 0, cap = 65536;
        char *buf = malloc(cap);

        while (buf) {
                size_t k;

                if (n == cap) {
                        /* One byte past the limit tells a message of exactly the limit from a
                         * larger one. */
                        size_t want =
                                cap * 2 > VBUS_MESSAGE_MAX ? (size_t)VBUS_MESSAGE_MAX + 1 : cap * 2;
                        char *b = n > VBUS_MESSAGE_MAX ? NULL : realloc(buf, want);

                        if (!b) {
                                free(buf);
                                if (n > VBUS_MESSAGE_MAX)
                                        fprintf(stderr,
                                                "vbusctl: %s is larger than the %d-byte message "
                                                "limit\n",
                                                what, VBUS_MESSAGE_MAX);
                                else
                                        fprintf(stderr, "vbusctl: out of memory\n");
                                return -1;
                        }
                        buf = b;
                        cap = want;
                }
                k = fread(buf + n, 1, cap - n, f);
                n += k;
                if (k == 0)
                        break;
        }
        if (!buf) {
                fprintf(stderr, "vbusctl: out of memory\n");
                return -1;
        }
        if (ferror(f)) {
                fprintf(stderr, "vbusctl: cannot read %s: %s\n", what, strerror(errno));
                free(buf);
                return -1;
        }
        *ret = buf;
        *ret_n = n;
        return 0;
}

/* read_message() of the file @path. */
static int read_message_file(const char *path, char **ret, size_t *ret_n)
{
        FILE *f = fopen(path, "rb");
        int r;

        if (!f) {
                fprintf(stderr, "vbusctl: cannot open '%s': %s\n", path, strerror(errno));
                return -1;
        }
        r = read_message(f, path, ret, ret_n);
        (void)fclose(f); /* read only */
        return r;
}

typedef struct PubCount {
        unsigned long n;
        uint64_t bytes;
} PubCount;

static int publish_one(vbus_publisher *p, const void *data, size_t len, const Options *o,
                       PubCount *cnt)
{
        uint64_t t = ms_to_us(o->timeout_ms < 0 ? 5000 : o->timeout_ms);
        int r = o->retain ? vbus_publish_retained_wait(p, data, len, t)
                          : vbus_publish_wait(p, data, len, t);
        const char *why = NULL;

        if (r == 0) {
                cnt->n++;
                cnt->bytes += len;
                return 0;
        }
        if (r == -EPIPE) {
                int st = vbus_publisher_get_status(p, &why);

                fprintf(stderr, "vbusctl: the broker refused to publish: %s%s%s\n",
                        vbus_status_name(st), why && why[0] ? ": " : "", why ? why : "");
        } else if (r == -EOPNOTSUPP) {
                fprintf(stderr, "vbusctl: this broker keeps no retained values (--retain needs "
                                "a newer vchand)\n");
        } else if (r == -ETIMEDOUT) {
                fprintf(stderr, "vbusctl: publish timed out (no credit from the broker: a "
                                "--block subscriber may be holding it back)\n");
        } else {
                fprintf(stderr, "vbusctl: publish failed: %s\n", strerror(-r));
        }
        return -1;
}

/* Waits @ms milliseconds while serving the connection: what was published goes out now, not
 * after the last message, and the broker's credit and PINGs are answered meanwhile. */
static void pause_serving(vbus_conn *c, long ms)
{
        uint64_t end = now_us() + (uint64_t)ms * 1000u;

        for (uint64_t now = now_us(); now < end; now = now_us()) {
                int r = vbus_conn_wait(c, end - now);

                if (r < 0 && r != -ETIMEDOUT && r != -EINTR)
                        return; /* the next publish reports what is wrong */
        }
}

static int cmd_pub(const Options *o, const char *topic, const char *message)
{
        vbus_conn *c = NULL;
        vbus_publisher *p = NULL;
        const char *why = NULL;
        PubCount cnt = {0};
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
                                pause_serving(c, o->interval_ms);
                        if (publish_one(p, message, strlen(message), o, &cnt) < 0)
                                status = 1;
                }
        } else if (o->binary) {
                char *buf = NULL;
                size_t n = 0;

                if (read_message(stdin, "stdin", &buf, &n) < 0 ||
                    publish_one(p, buf, n, o, &cnt) < 0)
                        status = 1;
                free(buf);
        } else {
                char *line = NULL;
                size_t cap = 0;
                ssize_t n;

                while (status == 0 && (n = getline(&line, &cap, stdin)) >= 0) {
                        if (n > 0 && line[n - 1] == '\n')
                                n--;
                        if (publish_one(p, line, (size_t)n, o, &cnt) < 0)
                                status = 1;
                        /* The next line may be long in coming: what was published (perhaps
                         * combined with earlier lines) goes to the broker now. */
                        (void)vbus_conn_flush(c, 0);
                }
                free(line);
        }
        /* The round trip makes sure the broker handled every message: one it refused (a
         * retained value over a bound, a broker that is stopping) is reported, not lost. */
        if (status == 0 &&
            vbus_conn_sync(c, ms_to_us(o->timeout_ms < 0 ? 5000 : o->timeout_ms)) < 0) {
                fprintf(stderr, "vbusctl: could not hand every message to the broker\n");
                status = 1;
        }
        if (status == 0 && vbus_publisher_get_status(p, &why) > 0) {
                fprintf(stderr, "vbusctl: the broker refused to publish: %s%s%s\n",
                        vbus_status_name(vbus_publisher_get_status(p, NULL)),
                        why && why[0] ? ": " : "", why ? why : "");
                status = 1;
        }
        verbose(o, "published %lu message%s (%" PRIu64 " bytes) to %s%s", cnt.n,
                cnt.n == 1 ? "" : "s", cnt.bytes, topic,
                status == 0 ? ", all handed to the broker" : "");
        vbus_publisher_free(p);
        vbus_conn_free(c);
        return status;
}

typedef struct SubState {
        const Options *o;
        unsigned long n_seen;
        uint64_t n_dropped;
} SubState;

/* Text: printable ASCII and UTF-8 characters as they are (21.5°C), every other byte (controls,
 * C1 controls, bytes that are not UTF-8) as \xNN, so a payload cannot drive the terminal. Hex:
 * two digits per byte. */
static void print_data(const uint8_t *d, size_t n, int format)
{
        for (size_t i = 0; i < n;) {
                size_t k = format == FMT_HEX ? 0 : json_utf8_len_at(d + i, n - i);

                if (format == FMT_HEX) {
                        printf("%02x", d[i]);
                } else if (k > 1 && !(d[i] == 0xc2 && d[i + 1] < 0xa0)) {
                        (void)fwrite(d + i, 1, k, stdout);
                        i += k;
                        continue;
                } else if (d[i] >= 0x20 && d[i] < 0x7f) {
                        putchar(d[i]);
                } else {
                        printf("\\x%02x", d[i]);
                }
                i++;
        }
}

/* What the sender's guest agent claims about the process behind its session (never checked by
 * the broker): after the identity, marked as claims. */
static void print_sender_claims(const vbus_message *m, bool json)
{
        uint32_t uid, pid;
        const char *cmd;

        if (!vbus_message_get_sender_claims(m, &uid, &pid, &cmd))
                return;
        if (json)
                printf(",\"session\":%" PRIu32 ",\"claims\":{\"uid\":%" PRIu32 ",\"pid\":%" PRIu32
                       ",\"command\":",
                       vbus_message_get_sender_session(m), uid, pid);
        else
                printf(" claims(session=%" PRIu32 ",uid=%" PRIu32 ",pid=%" PRIu32 ",command=",
                       vbus_message_get_sender_session(m), uid, pid);
        if (json)
                json_print_cstring(stdout, cmd);
        else
                print_data((const uint8_t *)cmd, strlen(cmd), FMT_TEXT);
        printf(json ? "}" : ")");
}

static void print_sender(const vbus_message *m, bool json)
{
        if (vbus_message_is_sender_local(m)) {
                if (json)
                        printf("{\"local\":true,\"domid\":%" PRIu32 ",\"uid\":%" PRIu32
                               ",\"pid\":%" PRIu32,
                               vbus_message_get_sender_domid(m), vbus_message_get_sender_uid(m),
                               vbus_message_get_sender_pid(m));
                else
                        printf("local(uid=%" PRIu32 ",pid=%" PRIu32 ")",
                               vbus_message_get_sender_uid(m), vbus_message_get_sender_pid(m));
                print_sender_claims(m, json);
                if (json)
                        putchar('}');
                return;
        }
        if (json) {
                printf("{\"local\":false,\"domid\":%" PRIu32 ",\"name\":",
                       vbus_message_get_sender_domid(m));
                json_print_cstring(stdout, vbus_message_get_sender_name(m));
        } else {
                const char *name = vbus_message_get_sender_name(m);

                printf("dom%" PRIu32 "(", vbus_message_get_sender_domid(m));
                print_data((const uint8_t *)name, strlen(name), FMT_TEXT);
                putchar(')');
        }
        print_sender_claims(m, json);
        if (json)
                putchar('}');
}

/*
 * Whether the broker now refuses this connection for good: libvbus reconnects after a lost link
 * whatever the cause, but a broker that refuses the key (it was removed from the keyring) or
 * proves another one will not change its mind; a long-running command says so and stops.
 */
static bool refused_for_good(vbus_conn *c)
{
        int e;

        if (vbus_conn_get_state(c) == VBUS_CONN_READY)
                return false;
        e = vbus_conn_get_last_error(c);
        if (e != -EPERM && e != -EACCES)
                return false;
        keygen_explain(e);
        return true;
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
        st->n_dropped += dropped;
        if (st->o->format == FMT_JSON) {
                printf("{\"topic\":");
                json_print_cstring(stdout, vbus_message_get_topic(m));
                printf(",\"sender\":");
                print_sender(m, true);
                printf(",\"sequence\":%" PRIu64 ",\"dropped\":%" PRIu64
                       ",\"gap\":%s,\"retained\":%s,",
                       vbus_message_get_sequence(m), dropped,
                       vbus_message_follows_gap(m) ? "true" : "false",
                       vbus_message_is_retained(m) ? "true" : "false");
                json_print_payload(stdout, d, n);
                printf("}\n");
                return;
        }
        if (vbus_message_follows_gap(m))
                printf("# reconnected to the broker: messages published meanwhile were missed\n");
        if (dropped)
                printf("# %" PRIu64 " messages dropped (this subscriber fell behind)\n", dropped);
        if (vbus_message_is_retained(m))
                printf("# retained value (published before this subscription began)\n");
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

        (void)setvbuf(stdout, NULL, _IOLBF, 0); /* cannot fail: a valid mode, no output yet */
        if (connect_ready(o, &c) < 0)
                return 1;
        r = vbus_subscribe(c, pattern, o->block ? VBUS_SLOW_BLOCK : VBUS_SLOW_DROP, on_message, &st,
                           &s);
        if (r < 0) {
                fprintf(stderr, "vbusctl: '%s' is not a valid pattern\n", pattern);
                vbus_conn_free(c);
                return 2;
        }
        start = now_us();
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
                if (refused_for_good(c)) {
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
                        /* The broker accepted it: what is published from now on reaches us. */
                        fprintf(stderr, "# subscribed to %s\n", pattern);
                        announced = true;
                }
                now = now_us();
                if (o->timeout_ms >= 0 && now - start >= ms_to_us(o->timeout_ms)) {
                        fprintf(stderr, "vbusctl: timed out after %lu of %lu messages\n", st.n_seen,
                                o->count);
                        status = 1;
                        break;
                }
        }
        verbose(o, "received %lu message%s on %s; %" PRIu64 " dropped by the broker", st.n_seen,
                st.n_seen == 1 ? "" : "s", pattern, st.n_dropped);
        vbus_subscription_free(s);
        vbus_conn_free(c);
        return status;
}

typedef struct StreamCall {
        bool raw;
        bool done;
        bool output_failed;
        int status;
        char message[1100];
} StreamCall;

static void stream_message(vbus_stream *st, const void *data, size_t n, void *userdata)
{
        StreamCall *sc = userdata;

        (void)st;
        if (fwrite(data, 1, n, stdout) != n || (!sc->raw && putchar('\n') == EOF) ||
            fflush(stdout) != 0)
                sc->output_failed = true;
}

static void stream_end(vbus_stream *st, int status, const char *message, void *userdata)
{
        StreamCall *sc = userdata;

        (void)st;
        sc->done = true;
        sc->status = status;
        /* A status message is at most VBUS_STATUS_MESSAGE_MAX (1024) bytes: it fits. */
        (void)snprintf(sc->message, sizeof(sc->message), "%s", message);
}

/* A server-streaming call: the one request, then every reply message until the server ends. */
static int call_stream(vbus_conn *c, const char *method, const void *req, size_t n,
                       const vbus_call_options *opts, bool raw)
{
        vbus_stream_handlers h = {.on_message = stream_message, .on_end = stream_end};
        StreamCall sc = {.raw = raw};
        vbus_stream *st;
        int r = vbus_stream_open(c, method, opts, &h, &sc, &st);

        if (r == -EINVAL) {
                fprintf(stderr, "vbusctl: '%s' is not SERVICE/METHOD\n", method);
                return 2;
        }
        if (r == 0)
                r = vbus_stream_send_wait(st, req, n, 5000000u);
        if (r == 0)
                r = vbus_stream_close_send(st);
        while (r == 0 && !sc.done && !sc.output_failed) {
                r = vbus_conn_wait(c, 200000);
                if (r == -ETIMEDOUT || r == -EINTR || r > 0)
                        r = 0;
        }
        if (sc.output_failed) {
                fprintf(stderr, "vbusctl: cannot write the output: %s\n", strerror(errno));
                return 1;
        }
        if (!sc.done) {
                fprintf(stderr, "vbusctl: call failed: %s\n", strerror(-r));
                return 1;
        }
        if (sc.status != VBUS_STATUS_OK) {
                fprintf(stderr, "vbusctl: %s: %s%s%s\n", method, vbus_status_name(sc.status),
                        sc.message[0] ? ": " : "", sc.message);
                return 1;
        }
        return 0;
}

static int cmd_call(const Options *o, const char *method, const char *payload)
{
        vbus_call_options call_opts = {0};
        vbus_conn *c = NULL;
        vbus_reply *reply = NULL;
        char *buf = NULL;
        size_t n = 0, len;
        long timeout_ms = o->timeout_ms < 0 ? 5000 : o->timeout_ms;
        const void *d;
        uint64_t start;
        int r, status;

        if (strcmp(payload, "-") == 0) {
                if (read_message(stdin, "stdin", &buf, &n) < 0)
                        return 1;
        } else if (payload[0] == '@') {
                if (read_message_file(payload + 1, &buf, &n) < 0)
                        return 1;
        } else {
                buf = strdup(payload);
                if (!buf)
                        return 1;
                n = strlen(payload);
        }
        if (connect_ready(o, &c) < 0) {
                free(buf);
                return 1;
        }
        call_opts.timeout_usec = ms_to_us(timeout_ms);
        if (call_opts.timeout_usec == UINT64_MAX)
                call_opts.timeout_usec = 0;
        call_opts.headers = o->headers;
        call_opts.n_headers = o->n_headers;
        if (o->format == FMT_JSON) {
                /* The request from JSON, the replies to JSON, by the service's description. */
                r = reflect_call_json(c, method, buf, n, &call_opts);
                free(buf);
                vbus_conn_free(c);
                return r;
        }
        if (o->stream) {
                r = call_stream(c, method, buf, n, &call_opts, o->raw);
                free(buf);
                vbus_conn_free(c);
                return r;
        }
        verbose(o, "calling %s with %zu bytes and %zu header%s, deadline %ld ms", method, n,
                o->n_headers, o->n_headers == 1 ? "" : "s", timeout_ms);
        start = now_us();
        r = vbus_call_sync_opts(c, method, buf, n, &call_opts, &reply);
        free(buf);
        if (r == -EINVAL) {
                fprintf(stderr,
                        "vbusctl: '%s' is not SERVICE/METHOD (service: dot-separated "
                        "identifiers; method: one identifier)\n",
                        method);
                vbus_conn_free(c);
                return 2;
        }
        if (r < 0) {
                fprintf(stderr, "vbusctl: call failed: %s\n", strerror(-r));
                vbus_conn_free(c);
                return 1;
        }
        status = vbus_reply_get_status(reply);
        d = vbus_reply_get_data(reply, &len);
        verbose(o, "reply: %s, %zu bytes, after %" PRIu64 " ms", vbus_status_name(status), len,
                (now_us() - start) / 1000u);
        if (status == VBUS_STATUS_OK) {
                /* A failure is sticky on stdout and reported by main() at exit. The newline
                 * ends the line as --stream does after each message; --raw leaves the bytes
                 * alone (binary replies, files). */
                (void)fwrite(d, 1, len, stdout);
                if (!o->raw)
                        putchar('\n');
        } else {
                const char *msg = vbus_reply_get_message(reply);

                fprintf(stderr, "vbusctl: %s: %s%s%s\n", method, vbus_status_name(status),
                        msg[0] ? ": " : "", msg);
        }
        vbus_reply_free(reply);
        vbus_conn_free(c);
        return status == VBUS_STATUS_OK ? 0 : 1;
}

typedef struct ServeState {
        const Options *o;
        unsigned long n_calls;
} ServeState;

/* Waits for the child @pid; returns its wait status, or -1. */
static int wait_child(pid_t pid)
{
        int wstatus;

        while (waitpid(pid, &wstatus, 0) < 0)
                if (errno != EINTR)
                        return -1;
        return wstatus;
}

/* The status a command's exit status stands for: 100+S is status S (2..13); death by a signal
 * (which the shell reports as 128+N) is INTERNAL; anything else non-zero is the application's
 * own failure. */
static int exit_status_to_vbus(int wstatus)
{
        int code;

        if (!WIFEXITED(wstatus))
                return VBUS_STATUS_INTERNAL;
        code = WEXITSTATUS(wstatus);
        if (code > 100 + VBUS_STATUS_OK && code < 100 + VBUS_STATUS_N)
                return code - 100;
        if (code > 128 && code <= 128 + 64)
                return VBUS_STATUS_INTERNAL;
        return VBUS_STATUS_APPLICATION;
}

/* Exports the call's headers as VBUS_HEADER_<KEY> (KEY upper-cased, '.' and '-' as '_'), after
 * removing those of the previous call. A value is cut at its first NUL byte. */
static void set_header_env(const vbus_request *req)
{
        static char *names[VBUS_CALL_HEADERS_MAX];

        for (size_t i = 0; i < VBUS_CALL_HEADERS_MAX; i++) {
                if (names[i])
                        unsetenv(names[i]);
                free(names[i]);
                names[i] = NULL;
        }
        for (size_t i = 0; i < vbus_request_get_n_headers(req) && i < VBUS_CALL_HEADERS_MAX; i++) {
                char name[16 + VBUS_CALL_HEADER_KEY_MAX], value[VBUS_CALL_HEADER_VALUE_MAX + 1];
                const char *key;
                const void *v;
                size_t vn, k;

                if (vbus_request_get_header(req, i, &key, &v, &vn) < 0)
                        continue;
                k = (size_t)snprintf(name, sizeof(name), "VBUS_HEADER_");
                for (const char *p = key; *p && k + 1 < sizeof(name); p++) {
                        char ch = *p;

                        if (ch == '.' || ch == '-')
                                ch = '_';
                        else if (ch >= 'a' && ch <= 'z')
                                ch = (char)(ch - 'a' + 'A');
                        name[k++] = ch;
                }
                name[k] = '\0';
                memcpy(value, v, vn);
                value[vn] = '\0';
                setenv(name, value, 1);
                names[i] = strdup(name);
        }
}

/*
 * Starts "/bin/sh -c CMD" with stdin from @fd_in (read from its start) and stderr to @fd_err.
 * Returns a stream of its stdout (new) and its pid in @ret_pid, or NULL. The command is the
 * shell's argument as the user wrote it, never pasted into a longer command line (as popen()
 * would need for the redirections), so nothing can cut it short or change what it means.
 */
static FILE *spawn_exec(const char *cmd, int fd_in, int fd_err, pid_t *ret_pid)
{
        char *argv[] = {(char *)"sh", (char *)"-c", (char *)cmd, NULL};
        posix_spawn_file_actions_t fa;
        int out[2], r;
        FILE *f;

        if (lseek(fd_in, 0, SEEK_SET) < 0 || pipe2(out, O_CLOEXEC) < 0)
                return NULL;
        r = posix_spawn_file_actions_init(&fa);
        if (r == 0) {
                if (posix_spawn_file_actions_adddup2(&fa, fd_in, STDIN_FILENO) != 0 ||
                    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO) != 0 ||
                    posix_spawn_file_actions_adddup2(&fa, fd_err, STDERR_FILENO) != 0)
                        r = -1;
                else
                        r = posix_spawn(ret_pid, "/bin/sh", &fa, NULL, argv, environ);
                posix_spawn_file_actions_destroy(&fa);
        }
        close(out[1]);
        f = r == 0 ? fdopen(out[0], "r") : NULL;
        if (!f) {
                close(out[0]);
                if (r == 0)
                        (void)wait_child(*ret_pid);
        }
        return f;
}

/* Runs the command for one call: request on stdin, reply from stdout, message from stderr. */
static void on_request(vbus_server *srv, vbus_request *req, void *userdata)
{
        ServeState *st = userdata;
        char caller[96], left[32] = "", drain[4096];
        size_t n, cap = 65536, len = 0;
        const void *d = vbus_request_get_data(req, &n);
        uint64_t deadline = vbus_request_get_deadline(req);
        /* Anonymous memory files, not files in /tmp: nothing of a request (it may be secret) is
         * left behind when vbusctl is killed during a call, and nothing needs cleaning up. */
        int fd_in = memfd_create("vbusctl-request", MFD_CLOEXEC);
        int fd_err = memfd_create("vbusctl-stderr", MFD_CLOEXEC), status;
        char *out = malloc(cap);
        bool too_big = false;
        pid_t pid;
        FILE *p;

        (void)srv;
        st->n_calls++;
        if (fd_in < 0 || fd_err < 0 || !out || write(fd_in, d, n) != (ssize_t)n) {
                (void)vbus_request_fail(req, VBUS_STATUS_INTERNAL, "vbusctl serve: local error");
                goto out;
        }
        /* caller holds either form: a domain name is at most 64 bytes. */
        if (vbus_request_is_caller_local(req))
                (void)snprintf(caller, sizeof(caller), "local(uid=%u)",
                               vbus_request_get_caller_uid(req));
        else
                (void)snprintf(caller, sizeof(caller), "dom%u(%s)",
                               vbus_request_get_caller_domid(req),
                               vbus_request_get_caller_name(req));
        if (deadline != UINT64_MAX) {
                uint64_t now = now_us();

                (void)snprintf(left, sizeof(left), "%" PRIu64,
                               deadline > now ? (deadline - now) / 1000u : 0);
        }
        set_header_env(req);
        setenv("VBUS_METHOD", vbus_request_get_method(req), 1);
        setenv("VBUS_CALLER", caller, 1);
        setenv("VBUS_CALLER_KEY", vbus_request_get_caller_key(req), 1);
        setenv("VBUS_TIMEOUT_MS", left, 1);
        p = spawn_exec(st->o->exec, fd_in, fd_err, &pid);
        if (!p) {
                (void)vbus_request_fail(req, VBUS_STATUS_INTERNAL, "vbusctl serve: cannot run");
                goto out;
        }
        for (;;) {
                size_t k;

                if (len == cap) {
                        char *b = cap > VBUS_MESSAGE_MAX ? NULL : realloc(out, cap * 2);

                        if (!b) {
                                too_big = true;
                                while (fread(drain, 1, sizeof(drain), p) > 0)
                                        ; /* let the command finish */
                                break;
                        }
                        out = b;
                        cap *= 2;
                }
                k = fread(out + len, 1, cap - len, p);
                if (k == 0)
                        break;
                len += k;
        }
        (void)fclose(p); /* a pipe we only read: nothing to lose */
        status = wait_child(pid);
        if (too_big || len > VBUS_MESSAGE_MAX) {
                (void)vbus_request_fail(req, VBUS_STATUS_RESOURCE_EXHAUSTED,
                                        "the command's output is larger than a message (1 MiB)");
        } else if (status == 0) {
                /* Said before the answer, which frees the request. */
                verbose(st->o, "call %lu: %s from %s: ok, %zu bytes", st->n_calls,
                        vbus_request_get_method(req), caller, len);
                (void)vbus_request_reply(req, out, len);
        } else {
                char msg[1024];
                ssize_t k = pread(fd_err, msg, sizeof(msg) - 1, 0);

                msg[k > 0 ? k : 0] = '\0';
                if (k > 0 && msg[k - 1] == '\n')
                        msg[k - 1] = '\0';
                if (!msg[0] && WIFEXITED(status) && WEXITSTATUS(status) > 128 &&
                    WEXITSTATUS(status) <= 128 + 64)
                        (void)snprintf(msg, sizeof(msg), "the command was killed by signal %d",
                                       WEXITSTATUS(status) - 128);
                else if (!msg[0])
                        (void)snprintf(msg, sizeof(msg), "exit status %d",
                                       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
                verbose(st->o, "call %lu: %s from %s: %s: %s", st->n_calls,
                        vbus_request_get_method(req), caller,
                        vbus_status_name(exit_status_to_vbus(status)), msg);
                (void)vbus_request_fail(req, exit_status_to_vbus(status), msg);
        }
out:
        free(out);
        if (fd_in >= 0)
                close(fd_in);
        if (fd_err >= 0)
                close(fd_err);
}

static int cmd_serve(const Options *o, const char *service)
{
        ServeState st = {.o = o};
        vbus_server *srv = NULL;
        vbus_conn *c = NULL;
        bool announced = false, failed = false;
        const char *why = "";

        if (!o->exec) {
                fprintf(stderr, "vbusctl serve: --exec CMD is required\n");
                return 2;
        }
        (void)setvbuf(stdout, NULL, _IOLBF, 0); /* cannot fail: a valid mode, no output yet */
        if (connect_ready(o, &c) < 0)
                return 1;
        if (vbus_serve(c, service, on_request, &st, &srv) < 0) {
                fprintf(stderr, "vbusctl: '%s' is not a valid service name\n", service);
                vbus_conn_free(c);
                return 2;
        }
        while (!o->count || st.n_calls < o->count) {
                int r = vbus_conn_wait(c, 200000);

                if (r < 0 && r != -ETIMEDOUT && r != -EINTR) {
                        fprintf(stderr, "vbusctl: %s\n", strerror(-r));
                        break;
                }
                if (refused_for_good(c)) {
                        failed = true;
                        break;
                }
                if (!announced && vbus_server_is_active(srv)) {
                        fprintf(stderr, "# serving %s\n", service);
                        announced = true;
                }
                if (vbus_server_get_status(srv, &why) > 0) {
                        fprintf(stderr,
                                "vbusctl: the broker refused to let this serve %s: %s%s%s\n",
                                service, vbus_status_name(vbus_server_get_status(srv, NULL)),
                                why[0] ? ": " : "", why);
                        failed = true;
                        break;
                }
        }
        (void)vbus_conn_flush(c, 2000000);
        vbus_server_free(srv);
        vbus_conn_free(c);
        return failed ? 1 : 0;
}

/* A server's identity as vbusctl prints it everywhere, into @buf: domN(name), or
 * local(uid=U,pid=P). Bytes of the domain name that are not printable ASCII are escaped. */
static void format_server(const Vbus__V1__ServerInfo *s, char *buf, size_t n)
{
        size_t k;

        /* 64 bytes hold the local form (at most 38) and the start of the other (at most 15),
         * and the loop keeps room for an escape, the ')' and the NUL: nothing below is cut. */
        assert(n >= 64);
        if (s->local) {
                (void)snprintf(buf, n, "local(uid=%" PRIu32 ",pid=%" PRIu32 ")", s->uid, s->pid);
                return;
        }
        k = (size_t)snprintf(buf, n, "dom%" PRIu32 "(", s->domid);
        for (const char *p = s->domain_name; *p && k + 6 < n; p++) {
                unsigned char ch = (unsigned char)*p;

                if (ch >= 0x20 && ch < 0x7f)
                        buf[k++] = (char)ch;
                else
                        k += (size_t)snprintf(buf + k, n - k, "\\x%02x", ch);
        }
        (void)snprintf(buf + k, n - k, ")");
}

static void print_json_string(const char *s)
{
        json_print_cstring(stdout, s);
}

static void print_services_json(const Vbus__V1__ListServicesReply *m)
{
        printf("{\"services\":[");
        for (size_t i = 0; i < m->n_services; i++) {
                const Vbus__V1__ServiceInfo *svc = m->services[i];

                printf("%s{\"name\":", i ? "," : "");
                print_json_string(svc->name);
                printf(",\"calls_in_flight\":%" PRIu32 ",\"total_servers\":%" PRIu32
                       ",\"servers\":[",
                       svc->calls_in_flight, svc->total_servers);
                for (size_t k = 0; k < svc->n_servers; k++) {
                        const Vbus__V1__ServerInfo *s = svc->servers[k];

                        printf("%s{\"domid\":%" PRIu32 ",\"domain_name\":", k ? "," : "", s->domid);
                        print_json_string(s->domain_name);
                        printf(",\"local\":%s,\"uid\":%" PRIu32 ",\"pid\":%" PRIu32
                               ",\"calls_in_flight\":%" PRIu32 ",\"calls_total\":%" PRIu64 "}",
                               s->local ? "true" : "false", s->uid, s->pid, s->calls_in_flight,
                               s->calls_total);
                }
                printf("]}");
        }
        printf("],\"total_services\":%" PRIu32 ",\"truncated\":%s}\n", m->total_services,
               m->truncated ? "true" : "false");
}

static void print_services_text(const Vbus__V1__ListServicesReply *m)
{
        printf("%-32s %-28s %9s %9s\n", "SERVICE", "SERVER", "IN-FLIGHT", "CALLS");
        for (size_t i = 0; i < m->n_services; i++) {
                const Vbus__V1__ServiceInfo *svc = m->services[i];

                for (size_t k = 0; k < svc->n_servers; k++) {
                        const Vbus__V1__ServerInfo *s = svc->servers[k];
                        char who[128];

                        format_server(s, who, sizeof(who));
                        printf("%-32s %-28s %9" PRIu32 " %9" PRIu64 "\n", svc->name, who,
                               s->calls_in_flight, s->calls_total);
                }
        }
        if (m->truncated)
                fprintf(stderr,
                        "vbusctl: the list is cut at the broker's reply limit: %zu of %" PRIu32
                        " services shown; a longer PREFIX shows the others\n",
                        m->n_services, m->total_services);
}

static int cmd_services(const Options *o, const char *prefix)
{
        Vbus__V1__ListServicesRequest rq = VBUS__V1__LIST_SERVICES_REQUEST__INIT;
        Vbus__V1__ListServicesReply *m;
        long timeout_ms = o->timeout_ms < 0 ? 5000 : o->timeout_ms;
        static const char method[] = "vbus.v1.Broker/ListServices";
        uint8_t req[512];
        vbus_conn *c = NULL;
        vbus_reply *reply = NULL;
        const void *d;
        size_t n;
        int r, status;

        if (strlen(prefix) > 255 ||
            strspn(prefix, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.") !=
                    strlen(prefix)) {
                fprintf(stderr, "vbusctl services: '%s' is not the start of a service name\n",
                        prefix);
                return 2;
        }
        rq.prefix = (char *)prefix;
        n = vbus__v1__list_services_request__pack(&rq, req);
        if (connect_ready(o, &c) < 0)
                return 1;
        r = vbus_call_sync(c, method, req, n, ms_to_us(timeout_ms), &reply);
        if (r < 0) {
                fprintf(stderr, "vbusctl: services: %s\n", strerror(-r));
                vbus_conn_free(c);
                return 1;
        }
        status = vbus_reply_get_status(reply);
        if (status != VBUS_STATUS_OK) {
                const char *msg = vbus_reply_get_message(reply);

                fprintf(stderr, "vbusctl: %s: %s%s%s\n", method, vbus_status_name(status),
                        msg[0] ? ": " : "", msg);
                vbus_reply_free(reply);
                vbus_conn_free(c);
                return 1;
        }
        d = vbus_reply_get_data(reply, &n);
        m = vbus__v1__list_services_reply__unpack(NULL, n, d);
        if (!m) {
                fprintf(stderr, "vbusctl: the broker's ListServicesReply does not decode\n");
                status = VBUS_STATUS_INTERNAL;
        } else if (o->format == FMT_JSON) {
                print_services_json(m);
        } else {
                print_services_text(m);
        }
        vbus__v1__list_services_reply__free_unpacked(m, NULL);
        vbus_reply_free(reply);
        vbus_conn_free(c);
        return status == VBUS_STATUS_OK ? 0 : 1;
}

static const char hint[] = "Try 'vbusctl --help' for more information.\n";

/* A numeric option's value: decimal digits only, within [@min, @max]. On error, says which
 * option wants what, in one line, and the hint. Return: 0 or -1. */
static int parse_number(const char *opt, const char *s, long min, long max, const char *unit,
                        long *ret)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || *end || end == s || s[0] == '-' || s[0] == '+' || s[0] == ' ' || v < min ||
            v > max) {
                fprintf(stderr,
                        "vbusctl: %s wants a whole number of %s from %ld to %ld, not '%s'\n", opt,
                        unit, min, max, s);
                fputs(hint, stderr);
                return -1;
        }
        *ret = v;
        return 0;
}

static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"timeout", required_argument, NULL, 't'},
        {"count", required_argument, NULL, 'n'},
        {"interval", required_argument, NULL, 'i'},
        {"binary", no_argument, NULL, 'b'},
        {"drop", no_argument, NULL, 'D'},
        {"block", no_argument, NULL, 'B'},
        {"text", no_argument, NULL, 'T'},
        {"hex", no_argument, NULL, 'H'},
        {"json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},
        {"exec", required_argument, NULL, 'e'},
        {"header", required_argument, NULL, 'k'},
        {"stream", no_argument, NULL, 's'},
        {"raw", no_argument, NULL, 'r'},
        {"retain", no_argument, NULL, 'R'},
        {"verbose", no_argument, NULL, 'v'},
        {"version", no_argument, NULL, 'V'},
        {0},
};

/* Applies one option. Return: 0, 1 for --help, 3 for --version, -1 on a bad value or an unknown
 * option (the reason printed). */
static int apply_option(int c, const char *arg, Options *o, bool *count_set)
{
        long v;

        switch (c) {
        case 'u':
                o->url = arg;
                return 0;
        case 't':
                return parse_number("--timeout", arg, 0, 86400000, "milliseconds", &o->timeout_ms);
        case 'n':
                if (parse_number("--count", arg, 1, 1000000000, "messages", &v) < 0)
                        return -1;
                o->count = (unsigned long)v;
                *count_set = true;
                return 0;
        case 'i':
                return parse_number("--interval", arg, 0, 3600000, "milliseconds", &o->interval_ms);
        case 'r':
                o->raw = true;
                return 0;
        case 'R':
                o->retain = true;
                return 0;
        case 'v':
                o->verbose = true;
                return 0;
        case 'V':
                return 3;
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
        case 'e':
                o->exec = arg;
                return 0;
        case 'k': {
                const char *eq = strchr(arg, '=');
                vbus_header *h;

                if (o->n_headers == VBUS_CALL_HEADERS_MAX) {
                        fprintf(stderr, "vbusctl: --header: at most %d headers\n%s",
                                VBUS_CALL_HEADERS_MAX, hint);
                        return -1;
                }
                if (!eq || eq == arg || (size_t)(eq - arg) > VBUS_CALL_HEADER_KEY_MAX ||
                    strlen(eq + 1) > VBUS_CALL_HEADER_VALUE_MAX ||
                    strspn(arg, "abcdefghijklmnopqrstuvwxyz0123456789_.-") != (size_t)(eq - arg)) {
                        fprintf(stderr,
                                "vbusctl: --header wants KEY=VALUE (KEY: 1-%d of [a-z0-9_.-], "
                                "VALUE: at most %d bytes), not '%s'\n%s",
                                VBUS_CALL_HEADER_KEY_MAX, VBUS_CALL_HEADER_VALUE_MAX, arg, hint);
                        return -1;
                }
                memcpy(o->header_keys[o->n_headers], arg, (size_t)(eq - arg));
                o->header_keys[o->n_headers][eq - arg] = '\0';
                h = &o->headers[o->n_headers];
                h->key = o->header_keys[o->n_headers];
                h->value = eq + 1;
                h->value_size = strlen(eq + 1);
                o->n_headers++;
                return 0;
        }
        case 's':
                o->stream = true;
                return 0;
        case 'h':
                return 1;
        default: /* getopt_long() said what is wrong */
                fputs(hint, stderr);
                return -1;
        }
}

static int run(int argc, char **argv)
{
        Options o = {.timeout_ms = -1, .count = 0, .format = FMT_TEXT};
        const char *args[3] = {NULL, NULL, NULL};
        bool count_set = false;
        int n_args = 0, fr = keygen_take_options(&argc, argv);

        if (fr == 0)
                fr = keygen_main(argc, argv); /* keygen, --key, --broker-key: keygen.c */
        if (fr < 0)
                fr = forward_main(argc, argv);
        if (fr >= 0) /* expose, forward, connect: forward.c */
                return fr;
        fr = admin_main(argc, argv);
        if (fr >= 0) /* peers, topics, subs, stats, kick, reload, monitor: admin.c */
                return fr;

        /* Options may come before or after the command and its arguments. */
        for (;;) {
                /* "-": every non-option argument comes back as option 1, in order. */
                int c = getopt_long(argc, argv, "-hv", opts, NULL);
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
                if (r == 3) {
                        printf("vbusctl %s (libvbus %s, protocol %d)\n", VBUS_CTL_VERSION,
                               vbus_version(), VBUS_PROTOCOL_VERSION);
                        return 0;
                }
                if (r < 0)
                        return 2;
        }
        if (n_args == 0) {
                fprintf(stderr, "vbusctl: missing COMMAND\n%s", hint);
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
        if (strcmp(args[0], "call") == 0) {
                if (n_args < 2) {
                        fprintf(stderr, "vbusctl call: missing SERVICE/METHOD (see --help)\n");
                        return 2;
                }
                return cmd_call(&o, args[1], n_args == 3 ? args[2] : "-");
        }
        if (strcmp(args[0], "describe") == 0) {
                vbus_conn *c = NULL;
                int r;

                if (n_args != 2) {
                        fprintf(stderr,
                                "vbusctl describe: want exactly one SERVICE (see --help)\n");
                        return 2;
                }
                if (o.format != FMT_TEXT) {
                        fprintf(stderr, "vbusctl describe: prints text (.proto-like) only; "
                                        "--json and --hex are for sub and call\n");
                        return 2;
                }
                if (connect_ready(&o, &c) < 0)
                        return 1;
                r = reflect_describe(c, args[1], ms_to_us(o.timeout_ms < 0 ? 5000 : o.timeout_ms));
                vbus_conn_free(c);
                return r;
        }
        if (strcmp(args[0], "serve") == 0) {
                if (n_args != 2) {
                        fprintf(stderr, "vbusctl serve: want exactly one SERVICE (see --help)\n");
                        return 2;
                }
                return cmd_serve(&o, args[1]);
        }
        if (strcmp(args[0], "services") == 0) {
                if (n_args > 2) {
                        fprintf(stderr, "vbusctl services: at most one PREFIX (see --help)\n");
                        return 2;
                }
                return cmd_services(&o, n_args == 2 ? args[1] : "");
        }
        fprintf(stderr, "vbusctl: unknown command '%s' (see --help)\n", args[0]);
        return 2;
}

int main(int argc, char **argv)
{
        int status = run(argc, argv);

        /* Errors are sticky on a stream, so this one check reports any write to stdout that
         * failed (a full disk, a closed pipe), as coreutils' close_stdout() does. */
        if (fflush(stdout) != 0 || ferror(stdout)) {
                fprintf(stderr, "vbusctl: cannot write the output\n");
                return status ? status : 1;
        }
        return status;
}
