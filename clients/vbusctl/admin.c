/* SPDX-License-Identifier: MIT */
/*
 * admin: vbusctl's admin commands (see admin.h). Each is one call to a method of
 * vbus.v1.Broker with the public libvbus API (monitor: a server-streaming call), its reply
 * decoded with the generated code of proto/vbus/v1/broker.proto and printed as aligned text or
 * as JSON (field names as in the .proto; strings that are not UTF-8 get U+FFFD).
 */
#include "admin.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vbus/vbus.h>

#include "json.h"
#include "vbus/v1/broker.pb-c.h"

#define BROKER_SERVICE "vbus.v1.Broker/"

enum {
        /* Bytes of a kick reason the broker keeps (vchand's LIMIT_KICK_REASON). */
        ADMIN_REASON_MAX = 200,
        /* Default deadline of a call to the broker, and of connecting. */
        ADMIN_TIMEOUT_MS = 5000,
};

typedef enum AdminCmd {
        CMD_PEERS,
        CMD_TOPICS,
        CMD_SUBS,
        CMD_STATS,
        CMD_KICK,
        CMD_RELOAD,
        CMD_MONITOR,
} AdminCmd;

static const char *const cmd_names[] = {
        [CMD_PEERS] = "peers",     [CMD_TOPICS] = "topics", [CMD_SUBS] = "subs",
        [CMD_STATS] = "stats",     [CMD_KICK] = "kick",     [CMD_RELOAD] = "reload",
        [CMD_MONITOR] = "monitor",
};

typedef struct AdminOpts {
        AdminCmd cmd;
        const char *url;
        long timeout_ms; /* -1: the default */
        long interval_ms;
        unsigned long count; /* 0: no limit */
        bool json;
        bool watch;
        bool prom;
        const char *reason;
        const char *arg; /* PEER or PATTERN */
} AdminOpts;

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
        (void)sig;
        stop_requested = 1;
}

/* --- output helpers ------------------------------------------------------------------------ */

/* @s as a JSON string (json.c: quotes, escapes, U+FFFD for bytes that are not UTF-8). */
static void json_string(const char *s)
{
        json_print_cstring(stdout, s ? s : "");
}

/* Prints a key and a string value (@first: no comma before). */
static void json_kv_str(bool first, const char *key, const char *v)
{
        printf("%s\"%s\":", first ? "" : ",", key);
        json_string(v);
}

static void json_kv_u64(bool first, const char *key, uint64_t v)
{
        printf("%s\"%s\":%" PRIu64, first ? "" : ",", key, v);
}

static void json_kv_bool(bool first, const char *key, bool v)
{
        printf("%s\"%s\":%s", first ? "" : ",", key, v ? "true" : "false");
}

/* "dom3(sensor)", "dom3" or "local(uid=0,pid=42)", as vbusctl sub prints senders. */
static void format_identity(char *buf, size_t n, uint32_t domid, const char *name, bool local,
                            uint32_t uid, uint32_t pid)
{
        if (local)
                (void)snprintf(buf, n, "local(uid=%" PRIu32 ",pid=%" PRIu32 ")", uid, pid);
        else if (name && name[0])
                (void)snprintf(buf, n, "dom%" PRIu32 "(%s)", domid, name);
        else
                (void)snprintf(buf, n, "dom%" PRIu32, domid);
}

/* Wall-clock microseconds as "2026-12-06T17:59:01" (local time, no spaces: one column). */
static void format_time(char *buf, size_t n, uint64_t unix_us)
{
        time_t t = (time_t)(unix_us / 1000000u);
        struct tm tm;

        if (!localtime_r(&t, &tm) || strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
                (void)snprintf(buf, n, "?");
}

static void format_duration(char *buf, size_t n, uint64_t us)
{
        uint64_t s = us / 1000000u;

        if (s >= 86400)
                (void)snprintf(buf, n, "%" PRIu64 "d%02" PRIu64 "h%02" PRIu64 "m", s / 86400,
                               s / 3600 % 24, s / 60 % 60);
        else if (s >= 3600)
                (void)snprintf(buf, n, "%" PRIu64 "h%02" PRIu64 "m%02" PRIu64 "s", s / 3600,
                               s / 60 % 60, s % 60);
        else if (s >= 60)
                (void)snprintf(buf, n, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
        else
                (void)snprintf(buf, n, "%" PRIu64 ".%03" PRIu64 "s", s, us / 1000 % 1000);
}

static uint64_t now_us(clockid_t clk)
{
        struct timespec ts;

        (void)clock_gettime(clk, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* --- talking to the broker ----------------------------------------------------------------- */

static uint64_t timeout_us(const AdminOpts *o)
{
        return (uint64_t)(o->timeout_ms < 0 ? ADMIN_TIMEOUT_MS : o->timeout_ms) * 1000u;
}

static int admin_connect(const AdminOpts *o, vbus_conn **ret)
{
        vbus_conn *c = NULL;
        int r = vbus_conn_open(o->url, &c);

        if (r < 0) {
                fprintf(stderr, "vbusctl: cannot use URL '%s': %s\n", o->url ? o->url : "(default)",
                        strerror(-r));
                return -1;
        }
        r = vbus_conn_wait_ready(c, timeout_us(o));
        if (r < 0) {
                int why = vbus_conn_get_last_error(c);

                fprintf(stderr, "vbusctl: no broker answered at %s: %s\n",
                        o->url ? o->url : "the default address", strerror(-(why < 0 ? why : r)));
                vbus_conn_free(c);
                return -1;
        }
        *ret = c;
        return 0;
}

/* A status a call to the broker failed with, explained. PERMISSION_DENIED gets a hint. */
static void print_failure(const char *method, int status, const char *msg)
{
        fprintf(stderr, "vbusctl: %s: %s%s%s\n", method, vbus_status_name(status),
                msg && msg[0] ? ": " : "", msg ? msg : "");
        if (status == VBUS_STATUS_PERMISSION_DENIED)
                fprintf(stderr, "vbusctl: admin commands need the broker's admin right (root in "
                                "the broker's domain, or domain 0)\n");
}

/*
 * Calls vbus.v1.Broker/@method with @req (packed) and unpacks the reply with @desc.
 * Return: 0 and the message in *ret; 1 (the failure was printed).
 */
static int broker_call(vbus_conn *c, const AdminOpts *o, const char *method,
                       const ProtobufCMessage *req, const ProtobufCMessageDescriptor *desc,
                       ProtobufCMessage **ret)
{
        char full[64];
        uint8_t buf[512];
        vbus_reply *reply = NULL;
        const void *d;
        size_t n = protobuf_c_message_get_packed_size(req);
        int r, status;

        (void)snprintf(full, sizeof(full), BROKER_SERVICE "%s", method);
        if (n > sizeof(buf))
                return 1; /* our own requests are small: cannot happen */
        n = protobuf_c_message_pack(req, buf);
        r = vbus_call_sync(c, full, buf, n, timeout_us(o), &reply);
        if (r < 0) {
                fprintf(stderr, "vbusctl: %s: %s\n", full, strerror(-r));
                return 1;
        }
        status = vbus_reply_get_status(reply);
        if (status != VBUS_STATUS_OK) {
                print_failure(full, status, vbus_reply_get_message(reply));
                vbus_reply_free(reply);
                return 1;
        }
        d = vbus_reply_get_data(reply, &n);
        *ret = protobuf_c_message_unpack(desc, NULL, n, d);
        vbus_reply_free(reply);
        if (!*ret) {
                fprintf(stderr, "vbusctl: the broker's %s does not decode\n", desc->name);
                return 1;
        }
        return 0;
}

static void print_truncated(bool truncated, size_t shown, uint32_t total, const char *what)
{
        if (truncated)
                fprintf(stderr,
                        "vbusctl: the list is cut at the broker's reply limit: %zu of %" PRIu32
                        " %s shown\n",
                        shown, total, what);
}

/* --- peers --------------------------------------------------------------------------------- */

static void print_peers_json(const Vbus__V1__PeersReply *m)
{
        printf("{\"peers\":[");
        for (size_t i = 0; i < m->n_peers; i++) {
                const Vbus__V1__PeerInfo *p = m->peers[i];

                printf("%s{", i ? "," : "");
                json_kv_u64(true, "id", p->id);
                json_kv_u64(false, "domid", p->domid);
                json_kv_str(false, "domain_name", p->domain_name);
                json_kv_bool(false, "local", p->local);
                json_kv_u64(false, "uid", p->uid);
                json_kv_u64(false, "pid", p->pid);
                json_kv_str(false, "transport", p->transport);
                json_kv_u64(false, "connected_unix_us", p->connected_unix_us);
                json_kv_u64(false, "streams", p->streams);
                json_kv_u64(false, "subscriptions", p->subscriptions);
                json_kv_u64(false, "calls_in_flight", p->calls_in_flight);
                json_kv_u64(false, "frames_in", p->frames_in);
                json_kv_u64(false, "bytes_in", p->bytes_in);
                json_kv_u64(false, "frames_out", p->frames_out);
                json_kv_u64(false, "bytes_out", p->bytes_out);
                json_kv_u64(false, "published", p->published);
                json_kv_u64(false, "dropped", p->dropped);
                json_kv_u64(false, "violations", p->violations);
                json_kv_u64(false, "denials", p->denials);
                json_kv_u64(false, "bytes_queued", p->bytes_queued);
                json_kv_u64(false, "ring_in", p->ring_in);
                json_kv_u64(false, "ring_out", p->ring_out);
                putchar('}');
        }
        printf("]");
        json_kv_u64(false, "total", m->total);
        json_kv_bool(false, "truncated", m->truncated);
        json_kv_u64(false, "presence_seq", m->presence_seq);
        printf("}\n");
}

static void print_peers_text(const Vbus__V1__PeersReply *m)
{
        printf("%-5s %-24s %-5s %-19s %7s %9s %11s %9s %11s %9s %8s %4s %6s %7s %7s\n", "ID",
               "PEER", "LINK", "CONNECTED", "STREAMS", "FRAMES_IN", "BYTES_IN", "FRAMES_OUT",
               "BYTES_OUT", "PUBLISHED", "DROPPED", "VIOL", "DENIED", "RING_IN", "RING_OUT");
        for (size_t i = 0; i < m->n_peers; i++) {
                const Vbus__V1__PeerInfo *p = m->peers[i];
                char who[128], when[32];

                format_identity(who, sizeof(who), p->domid, p->domain_name, p->local, p->uid,
                                p->pid);
                format_time(when, sizeof(when), p->connected_unix_us);
                printf("%-5" PRIu64 " %-24s %-5s %-19s %7" PRIu32 " %9" PRIu64 " %11" PRIu64
                       " %9" PRIu64 " %11" PRIu64 " %9" PRIu64 " %8" PRIu64 " %4" PRIu64
                       " %6" PRIu64 " %7" PRIu32 " %7" PRIu32 "\n",
                       p->id, who, p->transport, when, p->streams, p->frames_in, p->bytes_in,
                       p->frames_out, p->bytes_out, p->published, p->dropped, p->violations,
                       p->denials, p->ring_in, p->ring_out);
        }
        print_truncated(m->truncated, m->n_peers, m->total, "sessions");
}

static int cmd_peers(vbus_conn *c, const AdminOpts *o)
{
        Vbus__V1__PeersRequest rq = VBUS__V1__PEERS_REQUEST__INIT;
        ProtobufCMessage *m;

        if (broker_call(c, o, "Peers", &rq.base, &vbus__v1__peers_reply__descriptor, &m))
                return 1;
        if (o->json)
                print_peers_json((Vbus__V1__PeersReply *)m);
        else
                print_peers_text((Vbus__V1__PeersReply *)m);
        protobuf_c_message_free_unpacked(m, NULL);
        return 0;
}

/* --- topics -------------------------------------------------------------------------------- */

/* Messages per second since the oldest stream opened, or 0. */
static double topic_rate(const Vbus__V1__TopicInfo *t)
{
        return t->oldest_us ? (double)t->messages * 1e6 / (double)t->oldest_us : 0.0;
}

static void print_topics_json(const Vbus__V1__TopicsReply *m)
{
        printf("{\"topics\":[");
        for (size_t i = 0; i < m->n_topics; i++) {
                const Vbus__V1__TopicInfo *t = m->topics[i];

                printf("%s{", i ? "," : "");
                json_kv_str(true, "name", t->name);
                json_kv_u64(false, "publishers", t->publishers);
                json_kv_u64(false, "subscriptions", t->subscriptions);
                json_kv_u64(false, "messages", t->messages);
                json_kv_u64(false, "bytes", t->bytes);
                json_kv_u64(false, "delivered", t->delivered);
                json_kv_u64(false, "dropped", t->dropped);
                json_kv_u64(false, "oldest_us", t->oldest_us);
                printf(",\"rate_per_second\":%.3f}", topic_rate(t));
        }
        printf("]");
        json_kv_u64(false, "total", m->total);
        json_kv_bool(false, "truncated", m->truncated);
        printf("}\n");
}

static void print_topics_text(const Vbus__V1__TopicsReply *m)
{
        printf("%-32s %4s %4s %10s %12s %10s %8s %10s\n", "TOPIC/PATTERN", "PUBS", "SUBS",
               "MESSAGES", "BYTES", "DELIVERED", "DROPPED", "MSG/S");
        for (size_t i = 0; i < m->n_topics; i++) {
                const Vbus__V1__TopicInfo *t = m->topics[i];

                printf("%-32s %4" PRIu32 " %4" PRIu32 " %10" PRIu64 " %12" PRIu64 " %10" PRIu64
                       " %8" PRIu64 " %10.1f\n",
                       t->name, t->publishers, t->subscriptions, t->messages, t->bytes,
                       t->delivered, t->dropped, topic_rate(t));
        }
        print_truncated(m->truncated, m->n_topics, m->total, "topics");
}

static int cmd_topics(vbus_conn *c, const AdminOpts *o)
{
        Vbus__V1__TopicsRequest rq = VBUS__V1__TOPICS_REQUEST__INIT;
        ProtobufCMessage *m;

        if (broker_call(c, o, "Topics", &rq.base, &vbus__v1__topics_reply__descriptor, &m))
                return 1;
        if (o->json)
                print_topics_json((Vbus__V1__TopicsReply *)m);
        else
                print_topics_text((Vbus__V1__TopicsReply *)m);
        protobuf_c_message_free_unpacked(m, NULL);
        return 0;
}

/* --- subs ---------------------------------------------------------------------------------- */

static void print_subs_json(const Vbus__V1__SubsReply *m)
{
        printf("{\"subs\":[");
        for (size_t i = 0; i < m->n_subs; i++) {
                const Vbus__V1__SubInfo *s = m->subs[i];

                printf("%s{", i ? "," : "");
                json_kv_str(true, "pattern", s->pattern);
                json_kv_u64(false, "peer", s->peer);
                json_kv_str(false, "peer_label", s->peer_label);
                json_kv_u64(false, "stream", s->stream);
                json_kv_str(false, "policy", s->block ? "block" : "drop");
                json_kv_u64(false, "queued", s->queued);
                json_kv_u64(false, "queue_limit", s->queue_limit);
                json_kv_u64(false, "bytes_queued", s->bytes_queued);
                json_kv_u64(false, "delivered", s->delivered);
                json_kv_u64(false, "dropped", s->dropped);
                putchar('}');
        }
        printf("]");
        json_kv_u64(false, "total", m->total);
        json_kv_bool(false, "truncated", m->truncated);
        printf("}\n");
}

static void print_subs_text(const Vbus__V1__SubsReply *m)
{
        printf("%-32s %-5s %-26s %6s %-6s %13s %10s %8s\n", "PATTERN", "ID", "SUBSCRIBER", "STREAM",
               "POLICY", "QUEUED/LIMIT", "DELIVERED", "DROPPED");
        for (size_t i = 0; i < m->n_subs; i++) {
                const Vbus__V1__SubInfo *s = m->subs[i];
                char q[32];

                (void)snprintf(q, sizeof(q), "%" PRIu32 "/%" PRIu32, s->queued, s->queue_limit);
                printf("%-32s %-5" PRIu64 " %-26s %6" PRIu32 " %-6s %13s %10" PRIu64 " %8" PRIu64
                       "\n",
                       s->pattern, s->peer, s->peer_label, s->stream, s->block ? "block" : "drop",
                       q, s->delivered, s->dropped);
        }
        print_truncated(m->truncated, m->n_subs, m->total, "subscriptions");
}

static int cmd_subs(vbus_conn *c, const AdminOpts *o)
{
        Vbus__V1__SubsRequest rq = VBUS__V1__SUBS_REQUEST__INIT;
        ProtobufCMessage *m;

        if (broker_call(c, o, "Subs", &rq.base, &vbus__v1__subs_reply__descriptor, &m))
                return 1;
        if (o->json)
                print_subs_json((Vbus__V1__SubsReply *)m);
        else
                print_subs_text((Vbus__V1__SubsReply *)m);
        protobuf_c_message_free_unpacked(m, NULL);
        return 0;
}

/* --- stats --------------------------------------------------------------------------------- */

/* The counters of StatsReply that rates make sense for, in the order printed. */
typedef struct StatRow {
        const char *name;
        uint64_t (*get)(const Vbus__V1__StatsReply *m);
        bool counter; /* print a rate with --watch */
} StatRow;

#define STAT_GETTER(field)                                                                         \
        static uint64_t get_##field(const Vbus__V1__StatsReply *m)                                 \
        {                                                                                          \
                return m->field;                                                                   \
        }
STAT_GETTER(peers)
STAT_GETTER(peers_total)
STAT_GETTER(published)
STAT_GETTER(delivered)
STAT_GETTER(dropped)
STAT_GETTER(violations)
STAT_GETTER(denials)
STAT_GETTER(calls)
STAT_GETTER(calls_failed)
STAT_GETTER(calls_in_flight)
STAT_GETTER(subscriptions)
STAT_GETTER(services)
STAT_GETTER(bytes_in)
STAT_GETTER(bytes_out)
STAT_GETTER(kicks)
STAT_GETTER(monitor_dropped)
STAT_GETTER(presence_seq)
STAT_GETTER(rss_bytes)
STAT_GETTER(fds)
STAT_GETTER(grant_mappings)
#undef STAT_GETTER

static const StatRow stat_rows[] = {
        {"peers", get_peers, false},
        {"peers_total", get_peers_total, true},
        {"published", get_published, true},
        {"delivered", get_delivered, true},
        {"dropped", get_dropped, true},
        {"violations", get_violations, true},
        {"denials", get_denials, true},
        {"calls", get_calls, true},
        {"calls_failed", get_calls_failed, true},
        {"calls_in_flight", get_calls_in_flight, false},
        {"subscriptions", get_subscriptions, false},
        {"services", get_services, false},
        {"bytes_in", get_bytes_in, true},
        {"bytes_out", get_bytes_out, true},
        {"kicks", get_kicks, true},
        {"monitor_dropped", get_monitor_dropped, true},
        {"presence_seq", get_presence_seq, true},
        {"rss_bytes", get_rss_bytes, false},
        {"fds", get_fds, false},
        {"grant_mappings", get_grant_mappings, false},
};

enum {
        N_STAT_ROWS = sizeof(stat_rows) / sizeof(stat_rows[0]),
};

static void print_stats_json(const Vbus__V1__StatsReply *m)
{
        printf("{");
        json_kv_u64(true, "uptime_us", m->uptime_us);
        for (size_t i = 0; i < N_STAT_ROWS; i++)
                json_kv_u64(false, stat_rows[i].name, stat_rows[i].get(m));
        printf("}\n");
}

/* Text; with @prev (and @dt_us between the two), a column of rates per second. */
static void print_stats_text(const Vbus__V1__StatsReply *m, const Vbus__V1__StatsReply *prev,
                             uint64_t dt_us)
{
        char up[32];

        format_duration(up, sizeof(up), m->uptime_us);
        printf("%-16s %s\n", "uptime", up);
        for (size_t i = 0; i < N_STAT_ROWS; i++) {
                const StatRow *row = &stat_rows[i];
                uint64_t v = row->get(m);

                if (prev && row->counter && dt_us > 0 && v >= row->get(prev))
                        printf("%-16s %16" PRIu64 " %12.1f/s\n", row->name, v,
                               (double)(v - row->get(prev)) * 1e6 / (double)dt_us);
                else
                        printf("%-16s %16" PRIu64 "\n", row->name, v);
        }
}

static int cmd_prom(vbus_conn *c, const AdminOpts *o)
{
        Vbus__V1__MetricsRequest rq = VBUS__V1__METRICS_REQUEST__INIT;
        ProtobufCMessage *m;
        const char *text;

        if (broker_call(c, o, "Metrics", &rq.base, &vbus__v1__metrics_reply__descriptor, &m))
                return 1;
        text = ((Vbus__V1__MetricsReply *)m)->text;
        fputs(text, stdout);
        protobuf_c_message_free_unpacked(m, NULL);
        return 0;
}

/* Sleeps @us while processing the connection (so the broker's PINGs are answered). */
static int pause_us(vbus_conn *c, uint64_t us)
{
        uint64_t end = now_us(CLOCK_MONOTONIC) + us;

        while (!stop_requested) {
                uint64_t now = now_us(CLOCK_MONOTONIC);
                int r;

                if (now >= end)
                        return 0;
                r = vbus_conn_wait(c, end - now);
                if (r < 0 && r != -ETIMEDOUT && r != -EINTR)
                        return r;
        }
        return 0;
}

static int cmd_stats(vbus_conn *c, const AdminOpts *o)
{
        Vbus__V1__StatsRequest rq = VBUS__V1__STATS_REQUEST__INIT;
        ProtobufCMessage *m = NULL, *prev = NULL;
        bool tty = isatty(STDOUT_FILENO);
        uint64_t t_prev = 0;
        unsigned long n = 0;
        int status = 0;

        if (o->prom)
                return cmd_prom(c, o);
        for (;;) {
                uint64_t t;

                if (broker_call(c, o, "Stats", &rq.base, &vbus__v1__stats_reply__descriptor, &m)) {
                        status = 1;
                        break;
                }
                t = now_us(CLOCK_MONOTONIC);
                if (o->watch && tty)
                        fputs("\033[H\033[2J", stdout); /* home, clear: like top */
                if (o->json) {
                        print_stats_json((Vbus__V1__StatsReply *)m);
                } else {
                        print_stats_text((Vbus__V1__StatsReply *)m, (Vbus__V1__StatsReply *)prev,
                                         t - t_prev);
                        if (o->watch && !tty)
                                putchar('\n');
                }
                if (fflush(stdout) != 0)
                        break;
                if (prev)
                        protobuf_c_message_free_unpacked(prev, NULL);
                prev = m;
                m = NULL;
                t_prev = t;
                if (!o->watch || (o->count && ++n >= o->count) || stop_requested)
                        break;
                if (pause_us(c, (uint64_t)o->interval_ms * 1000u) < 0 || stop_requested)
                        break;
        }
        if (prev)
                protobuf_c_message_free_unpacked(prev, NULL);
        return status;
}

/* --- kick and reload ----------------------------------------------------------------------- */

/* PEER: a session id, or domN. Return: 0, or -1 (not one). */
static int parse_peer(const char *s, Vbus__V1__KickRequest *rq)
{
        bool dom = strncmp(s, "dom", 3) == 0;
        const char *num = dom ? s + 3 : s;
        char *end;
        unsigned long long v;

        if (num[0] < '0' || num[0] > '9')
                return -1;
        errno = 0;
        v = strtoull(num, &end, 10);
        if (errno || *end)
                return -1;
        if (dom) {
                if (v == 0 || v >= 0x7ff0)
                        return -1; /* domain 0 sessions are kicked by id */
                rq->domid = (uint32_t)v;
        } else {
                if (v == 0)
                        return -1;
                rq->id = v;
        }
        return 0;
}

static int cmd_kick(vbus_conn *c, const AdminOpts *o)
{
        Vbus__V1__KickRequest rq = VBUS__V1__KICK_REQUEST__INIT;
        ProtobufCMessage *m;
        uint32_t n;

        if (parse_peer(o->arg, &rq) < 0) {
                fprintf(stderr,
                        "vbusctl kick: '%s' is not a session id (see `vbusctl peers`) or domN "
                        "(N from 1 to 32751)\n",
                        o->arg);
                return 2;
        }
        rq.reason = (char *)(o->reason ? o->reason : "");
        if (broker_call(c, o, "Kick", &rq.base, &vbus__v1__kick_reply__descriptor, &m))
                return 1;
        n = ((Vbus__V1__KickReply *)m)->kicked;
        if (o->json)
                printf("{\"kicked\":%" PRIu32 "}\n", n);
        else
                printf("kicked %" PRIu32 " session%s\n", n, n == 1 ? "" : "s");
        protobuf_c_message_free_unpacked(m, NULL);
        return 0;
}

static int cmd_reload(vbus_conn *c, const AdminOpts *o)
{
        Vbus__V1__ReloadRequest rq = VBUS__V1__RELOAD_REQUEST__INIT;
        ProtobufCMessage *m;
        const char *msg;

        if (broker_call(c, o, "Reload", &rq.base, &vbus__v1__reload_reply__descriptor, &m))
                return 1;
        msg = ((Vbus__V1__ReloadReply *)m)->message;
        if (o->json) {
                printf("{");
                json_kv_str(true, "message", msg);
                printf("}\n");
        } else {
                printf("%s\n", msg);
        }
        protobuf_c_message_free_unpacked(m, NULL);
        return 0;
}

/* --- monitor ------------------------------------------------------------------------------- */

typedef struct Monitor {
        const AdminOpts *o;
        unsigned long n_events;
        uint64_t n_lost;
        bool done;
        bool output_failed;
        bool bad_event;
        int status;
        char message[1100];
} Monitor;

static void monitor_print_json(const Vbus__V1__MonitorEvent *ev)
{
        bool call = ev->kind == VBUS__V1__MONITOR_EVENT__KIND__KIND_CALL;

        printf("{");
        json_kv_str(true, "kind", call ? "call" : "publish");
        json_kv_str(false, "name", ev->name);
        json_kv_str(false, "sender", ev->sender);
        json_kv_u64(false, "sender_id", ev->sender_id);
        json_kv_u64(false, "size", ev->size);
        if (call) {
                json_kv_str(false, "status", vbus_status_name(ev->status));
                json_kv_u64(false, "latency_us", ev->latency_us);
        } else {
                json_kv_u64(false, "deliveries", ev->deliveries);
        }
        json_kv_u64(false, "dropped", ev->dropped);
        json_kv_u64(false, "time_unix_us", ev->time_unix_us);
        printf("}\n");
}

static void monitor_print_text(const Vbus__V1__MonitorEvent *ev)
{
        char when[32];

        format_time(when, sizeof(when), ev->time_unix_us);
        if (ev->dropped)
                printf("# %" PRIu64 " events lost before this one (the monitor fell behind)\n",
                       ev->dropped);
        if (ev->kind == VBUS__V1__MONITOR_EVENT__KIND__KIND_CALL)
                printf("%s.%06" PRIu64 " call %s from %s [%" PRIu64 "] %" PRIu64
                       " B -> %s in %.3f ms\n",
                       when, ev->time_unix_us % 1000000u, ev->name, ev->sender, ev->sender_id,
                       ev->size, vbus_status_name(ev->status), (double)ev->latency_us / 1000.0);
        else
                printf("%s.%06" PRIu64 " pub  %s from %s [%" PRIu64 "] %" PRIu64 " B -> %" PRIu32
                       " subscriber%s\n",
                       when, ev->time_unix_us % 1000000u, ev->name, ev->sender, ev->sender_id,
                       ev->size, ev->deliveries, ev->deliveries == 1 ? "" : "s");
}

static void monitor_message(vbus_stream *st, const void *data, size_t n, void *userdata)
{
        Monitor *mon = userdata;
        Vbus__V1__MonitorEvent *ev;

        (void)st;
        if (mon->o->count && mon->n_events >= mon->o->count)
                return;
        ev = vbus__v1__monitor_event__unpack(NULL, n, data);
        if (!ev) {
                mon->bad_event = true;
                return;
        }
        mon->n_events++;
        mon->n_lost += ev->dropped;
        if (mon->o->json)
                monitor_print_json(ev);
        else
                monitor_print_text(ev);
        if (ferror(stdout))
                mon->output_failed = true;
        vbus__v1__monitor_event__free_unpacked(ev, NULL);
}

static void monitor_end(vbus_stream *st, int status, const char *message, void *userdata)
{
        Monitor *mon = userdata;

        (void)st;
        mon->done = true;
        mon->status = status;
        /* A status message is at most VBUS_STATUS_MESSAGE_MAX (1024) bytes: it fits. */
        (void)snprintf(mon->message, sizeof(mon->message), "%s", message);
}

static int cmd_monitor(vbus_conn *c, const AdminOpts *o)
{
        static const char method[] = BROKER_SERVICE "Monitor";
        vbus_stream_handlers h = {.on_message = monitor_message, .on_end = monitor_end};
        Vbus__V1__MonitorRequest rq = VBUS__V1__MONITOR_REQUEST__INIT;
        Monitor mon = {.o = o};
        vbus_call_options opts = {0};
        uint8_t req[512];
        vbus_stream *st = NULL;
        size_t n;
        int r;

        (void)setvbuf(stdout, NULL, _IOLBF, 0); /* cannot fail: a valid mode, no output yet */
        rq.pattern = (char *)(o->arg ? o->arg : ">");
        if (strlen(rq.pattern) > 255) {
                fprintf(stderr, "vbusctl monitor: the pattern is longer than 255 bytes\n");
                return 2;
        }
        n = vbus__v1__monitor_request__pack(&rq, req);
        r = vbus_stream_open(c, method, &opts, &h, &mon, &st);
        if (r < 0) {
                fprintf(stderr, "vbusctl: %s: %s\n", method, strerror(-r));
                return 1;
        }
        r = vbus_stream_send_wait(st, req, n, timeout_us(o));
        if (r == 0)
                r = vbus_stream_close_send(st);
        if (r == 0) {
                fprintf(stderr, "# monitoring %s\n", rq.pattern);
        } else {
                /* Refused (the outcome arrives as the stream's end) or the link failed: wait
                 * for the outcome, as long as a call would. */
                uint64_t end = now_us(CLOCK_MONOTONIC) + timeout_us(o);

                while (!mon.done && !stop_requested && now_us(CLOCK_MONOTONIC) < end)
                        (void)vbus_conn_wait(c, 100000);
                if (!mon.done) {
                        fprintf(stderr, "vbusctl: %s: %s\n", method, strerror(-r));
                        (void)vbus_stream_cancel(st);
                        return 1;
                }
        }
        r = 0;
        while (!mon.done && !mon.output_failed && !mon.bad_event && !stop_requested &&
               !(o->count && mon.n_events >= o->count)) {
                r = vbus_conn_wait(c, 200000);
                if (r < 0 && r != -ETIMEDOUT && r != -EINTR) {
                        fprintf(stderr, "vbusctl: %s\n", strerror(-r));
                        break;
                }
        }
        if (!mon.done)
                (void)vbus_stream_cancel(st);
        fprintf(stderr, "# monitor: %lu events shown, %" PRIu64 " lost\n", mon.n_events,
                mon.n_lost);
        if (mon.bad_event) {
                fprintf(stderr, "vbusctl: the broker sent a MonitorEvent that does not decode\n");
                return 1;
        }
        if (mon.output_failed) {
                fprintf(stderr, "vbusctl: cannot write the output\n");
                return 1;
        }
        if (mon.done && mon.status != VBUS_STATUS_OK) {
                print_failure(method, mon.status, mon.message);
                return 1;
        }
        return r < 0 && r != -ETIMEDOUT && r != -EINTR ? 1 : 0;
}

/* --- the command line ---------------------------------------------------------------------- */

static const struct option admin_opts[] = {
        {"url", required_argument, NULL, 'u'},      {"timeout", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'J'},           {"watch", no_argument, NULL, 'w'},
        {"interval", required_argument, NULL, 'i'}, {"count", required_argument, NULL, 'n'},
        {"prom", no_argument, NULL, 'P'},           {"reason", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},           {0},
};

/* The first argument that is not an option or an option's value, or NULL. */
static const char *find_command(int argc, char **argv)
{
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--url") == 0 || strcmp(argv[i], "--timeout") == 0) {
                        i++;
                        continue;
                }
                if (argv[i][0] != '-')
                        return argv[i];
        }
        return NULL;
}

static int parse_number(const char *s, long min, long max, long *ret)
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

/* Return: 0, 1 (--help printed), 2 (usage error printed). */
static int admin_parse(int argc, char **argv, AdminOpts *o)
{
        const char *name = cmd_names[o->cmd];
        bool have_cmd = false;
        long v;

        optind = 1;
        opterr = 0;
        for (;;) {
                int c = getopt_long(argc, argv, "-h", admin_opts, NULL);

                if (c == -1)
                        break;
                switch (c) {
                case 1:
                        if (!have_cmd) {
                                have_cmd = true; /* the command's own name */
                        } else if (!o->arg && (o->cmd == CMD_KICK || o->cmd == CMD_MONITOR)) {
                                o->arg = optarg;
                        } else {
                                fprintf(stderr, "vbusctl %s: unexpected argument '%s'\n", name,
                                        optarg);
                                return 2;
                        }
                        break;
                case 'u':
                        o->url = optarg;
                        break;
                case 't':
                        if (parse_number(optarg, 0, 86400000, &o->timeout_ms) < 0) {
                                fprintf(stderr,
                                        "vbusctl %s: --timeout wants milliseconds (0 to "
                                        "86400000), not '%s'\n",
                                        name, optarg);
                                return 2;
                        }
                        break;
                case 'J':
                        o->json = true;
                        break;
                case 'w':
                        o->watch = true;
                        break;
                case 'i':
                        if (parse_number(optarg, 10, 3600000, &o->interval_ms) < 0) {
                                fprintf(stderr,
                                        "vbusctl %s: --interval wants milliseconds (10 to "
                                        "3600000), not '%s'\n",
                                        name, optarg);
                                return 2;
                        }
                        break;
                case 'n':
                        if (parse_number(optarg, 1, 1000000000, &v) < 0) {
                                fprintf(stderr,
                                        "vbusctl %s: --count wants a number from 1, not '%s'\n",
                                        name, optarg);
                                return 2;
                        }
                        o->count = (unsigned long)v;
                        break;
                case 'P':
                        o->prom = true;
                        break;
                case 'r':
                        o->reason = optarg;
                        break;
                case 'h':
                        printf("Usage: vbusctl [--url URL] COMMAND [ARGS]\n\n%s", ADMIN_USAGE);
                        return 1;
                default:
                        fprintf(stderr,
                                "vbusctl %s: unknown option or missing value: '%s' (see "
                                "vbusctl %s --help)\n",
                                name, argv[optind - 1], name);
                        return 2;
                }
        }
        if (o->cmd == CMD_KICK && !o->arg) {
                fprintf(stderr, "vbusctl kick: missing PEER (a session id from `vbusctl peers`, "
                                "or domN)\n");
                return 2;
        }
        if (o->reason && (o->cmd != CMD_KICK || strlen(o->reason) > ADMIN_REASON_MAX)) {
                fprintf(stderr, "vbusctl %s: --reason goes with kick, at most %d bytes\n", name,
                        ADMIN_REASON_MAX);
                return 2;
        }
        if ((o->watch || o->prom) && o->cmd != CMD_STATS) {
                fprintf(stderr, "vbusctl %s: --watch and --prom go with stats\n", name);
                return 2;
        }
        if (o->prom && (o->watch || o->json)) {
                fprintf(stderr, "vbusctl stats: --prom prints the Prometheus text only (no "
                                "--watch, no --json)\n");
                return 2;
        }
        if (o->count && o->cmd != CMD_MONITOR && !(o->cmd == CMD_STATS && o->watch)) {
                fprintf(stderr, "vbusctl %s: --count goes with monitor and stats --watch\n", name);
                return 2;
        }
        return 0;
}

int admin_main(int argc, char **argv)
{
        const char *cmd = find_command(argc, argv);
        AdminOpts o = {.timeout_ms = -1, .interval_ms = 1000};
        struct sigaction sa = {.sa_handler = on_stop_signal};
        vbus_conn *c = NULL;
        size_t i;
        int r;

        if (!cmd)
                return -1;
        for (i = 0; i < sizeof(cmd_names) / sizeof(cmd_names[0]); i++) {
                if (strcmp(cmd, cmd_names[i]) == 0)
                        break;
        }
        if (i == sizeof(cmd_names) / sizeof(cmd_names[0]))
                return -1;
        o.cmd = (AdminCmd)i;
        r = admin_parse(argc, argv, &o);
        if (r != 0)
                return r == 1 ? 0 : r;
        /* monitor and stats --watch run until interrupted: stop cleanly (the broker is told). */
        (void)sigaction(SIGINT, &sa, NULL);
        (void)sigaction(SIGTERM, &sa, NULL);
        if (admin_connect(&o, &c) < 0)
                return 1;
        switch (o.cmd) {
        case CMD_PEERS:
                r = cmd_peers(c, &o);
                break;
        case CMD_TOPICS:
                r = cmd_topics(c, &o);
                break;
        case CMD_SUBS:
                r = cmd_subs(c, &o);
                break;
        case CMD_STATS:
                r = cmd_stats(c, &o);
                break;
        case CMD_KICK:
                r = cmd_kick(c, &o);
                break;
        case CMD_RELOAD:
                r = cmd_reload(c, &o);
                break;
        default:
                r = cmd_monitor(c, &o);
                break;
        }
        vbus_conn_free(c);
        return r;
}
