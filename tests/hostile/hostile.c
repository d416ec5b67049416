/* SPDX-License-Identifier: MIT */
/*
 * hostile: a guest (or local client) that attacks the broker's budgets frame by frame, for the
 * hostile-guest suite (tests/hostile/). It speaks the protocol with the libbus codec and no
 * libvbus session, over vchan (as a real guest: "vchan:0") or the broker's UNIX socket
 * ("unix:PATH"), runs one attack, and prints what the broker did to it as the last line:
 *
 *   refused STATUS on KIND   a stream of the attack got REJECT or RESET with STATUS
 *   disconnected             the broker closed the link (or sent ERROR)
 *   survived                 the attack ran to its end (frame budget or time) unrefused
 *
 *   never connected          (vchan) the broker did not map the rings within 15 s
 *
 * and, before it, "sent N frames". The test decides which outcome is right. $HOSTILE_RING sets
 * the vchan ring size each way (default 1 MiB). HOSTILE_CHARGE=1 offers the MESSAGE_CHARGE
 * feature in HELLO (protocol.md 5.4): the attacker then owes the message charge it ignores.
 *
 *   hostile URL block-empty         SUBSCRIBE x.blk BLOCK without credit, PUBLISH x.blk, then
 *                                   empty messages (finding 1: BLOCK queues had no entry cap)
 *   hostile URL empty-fragments     PUBLISH x.frag, then empty DATA frames with MORE (under
 *                                   MESSAGE_CHARGE a fragment carries at least one byte)
 *   hostile URL drop-empty          255 DROP SUBSCRIBEs of x.drp (queue_limit 65536, no credit),
 *                                   PUBLISH x.drp, then empty messages (finding 1)
 *   hostile URL stuck-serve SERVICE SERVE SERVICE, then never reads its link again (a server that
 *                                   does not read: the victim of call-empty); runs until killed
 *   hostile URL call-empty METHOD   CALL METHOD, then empty messages on it (finding 1: relayed
 *                                   frames were one allocation each)
 *   hostile URL big-open METHOD     CALL METHOD with headers that fit this OPEN but not the one
 *                                   the broker sends on with the caller's stamp (finding 2)
 *   hostile URL open-flood METHOD   18 calls of 60 KB and 40 OPENs of ~3.9 KB in one write toward
 *                                   a busy server (finding 3)
 *   hostile URL hold-calls METHOD   opens calls to METHOD without ever ending them, until the
 *                                   broker refuses one (finding 4: max_service_calls)
 *   hostile URL reconnect-loop N    N times: connect, send garbage, wait to be dropped (finding 8:
 *                                   log lines); prints "disconnected N" when each one was
 *   hostile vchan:0 equivocate TOPIC N
 *                                   publishes N messages of 16 KiB to TOPIC, and after committing
 *                                   each to its ring rewrites its bytes in place until the broker
 *                                   has consumed it (finding 5: one sequence number, one content)
 *   hostile URL describe SERVICE HOW
 *                                   SERVE SERVICE, then send as its description (docs/
 *                                   reflection.md): "garbage" (bytes that are no protobuf),
 *                                   "dangling" (a method whose input names no type), "types"
 *                                   (513 message types, each its own name), "twice" (a valid one,
 *                                   then a second), "huge" (VBUS_DESCRIPTION_MAX + 1 bytes, past
 *                                   the window the broker granted); then waits for the outcome
 *   hostile URL describe-many PREFIX N
 *                                   SERVE PREFIX.S0 ... PREFIX.S<N-1>, each with a valid
 *                                   description of about 60 KiB, until the broker refuses one
 *                                   (the descriptions are charged to this peer's budget); prints
 *                                   "described K" (the streams opened) before the outcome
 *   hostile URL collect TOPIC N     not an attack: subscribes to TOPIC (BLOCK, 1 MiB of credit)
 *                                   and prints each of N deliveries as "SEQ HASH" of its payload
 *                                   (its Meta prefix skipped; "as-written" when all 'A', as
 *                                   published), after "ready" once the subscription is accepted
 *
 * Options: --frames N (attack frames to send at most, default 2000000), --seconds S (default 20),
 * --linger S: once the outcome is printed (and flushed), keep the link (reading it) S seconds
 * more, then print "expired N": the RESETs DEADLINE_EXCEEDED received in all.
 * Every wait is bounded. Exits 0 once it printed its outcome, 1 on a failure of its own.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <vbus/vbus.h>

#include "control.h"
#include "describe.h"
#include "frame.h"
#include "vbus/v1/describe.pb-c.h"
#include "vchan.h"

enum {
        OUT_MAX = 2 << 20,
        IN_MAX = 4 << 20,
        RING = 1 << 20,
        BATCH = 256,
        N_DROP_SUBS = 255,
        N_FLOOD_CALLS = 18,
        N_FLOOD_OPENS = 40,
        FLOOD_DATA = 60 * 1024,
        /* equivocate: large enough that rewriting the ring overlaps the broker's copies */
        EQUIVOCATE_SIZE = 16 * 1024,
};

typedef struct Hostile {
        int fd;        /* UNIX */
        VbusVchan *vc; /* vchan */
        uint8_t *out;
        size_t n_out;
        uint8_t *in;
        size_t n_in;
        uint32_t next_id;
        uint64_t frames, max_frames;
        uint64_t deadline_us;
        bool done;
        char outcome[160];
        uint64_t n_expired; /* RESETs DEADLINE_EXCEEDED seen */
        bool accepted;      /* an ACCEPT came (equivocate's one stream) */
        int64_t window;     /* its credit: ACCEPT's, plus CREDITs, minus what was sent */
} Hostile;

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        fputs("hostile: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        exit(1);
}

static uint64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void link_open(Hostile *h, const char *url)
{
        if (strncmp(url, "unix:", 5) == 0) {
                struct sockaddr_un sa = {.sun_family = AF_UNIX};

                if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", url + 5) >=
                    sizeof(sa.sun_path))
                        die("socket path too long");
                h->fd = socket(AF_UNIX, SOCK_STREAM, 0);
                if (h->fd < 0 || connect(h->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                        die("connect %s: %s", url, strerror(errno));
                return;
        }
        if (strncmp(url, "vchan:", 6) == 0) {
                const char *env = getenv("HOSTILE_RING");
                size_t ring = env ? strtoul(env, NULL, 10) : RING;
                int r = vbus__vchan_server_open_to((uint32_t)strtoul(url + 6, NULL, 10), "vbus",
                                                   ring, ring, &h->vc);

                uint64_t until = now_us() + 15000000u;

                if (r < 0)
                        die("vchan: %s", strerror(-r));
                h->fd = -1;
                /* The broker maps the ring on its own schedule (its discovery). */
                while (vbus__vchan_get_peer(h->vc) == VBUS_VCHAN_PEER_WAITING) {
                        if (now_us() > until) {
                                /* Refused before the link exists: an outcome, not a failure. */
                                printf("sent 0 frames\nnever connected\n");
                                h->vc = vbus__vchan_free(h->vc);
                                free(h->out);
                                free(h->in);
                                exit(0);
                        }
                        (void)vbus__vchan_wait(h->vc, 100);
                }
                return;
        }
        die("URL must be unix:PATH or vchan:DOMID");
}

/* Reads what is there without waiting (or up to @wait_ms). Return: false at end of stream. */
static bool link_read(Hostile *h, int wait_ms)
{
        ssize_t r;

        if (h->n_in == IN_MAX)
                return true;
        if (h->vc) {
                r = vbus__vchan_read(h->vc, h->in + h->n_in, IN_MAX - h->n_in);
                if (r == -EAGAIN && wait_ms > 0) {
                        (void)vbus__vchan_wait(h->vc, wait_ms);
                        r = vbus__vchan_read(h->vc, h->in + h->n_in, IN_MAX - h->n_in);
                }
                if (r == -EAGAIN)
                        return vbus__vchan_get_peer(h->vc) == VBUS_VCHAN_PEER_CONNECTED;
        } else {
                struct pollfd pfd = {.fd = h->fd, .events = POLLIN};

                if (poll(&pfd, 1, wait_ms) <= 0)
                        return true;
                r = recv(h->fd, h->in + h->n_in, IN_MAX - h->n_in, MSG_DONTWAIT);
                if (r < 0 && errno == EAGAIN)
                        return true;
        }
        if (r <= 0)
                return false;
        h->n_in += (size_t)r;
        return true;
}

static const char *kind_of(uint32_t id, const uint32_t *kinds)
{
        static const char *names[] = {"?", "publish", "subscribe", "call", "serve"};
        uint32_t k = id < 4096 ? kinds[id] : 0;

        return names[k < 5 ? k : 0];
}

static uint32_t kinds[4096]; /* stream id -> kind, for the outcome line */

/* Looks at what the broker sent: the first refusal of any stream, ERROR, or the close. */
static void scan(Hostile *h, int wait_ms)
{
        size_t off = 0;

        if (!link_read(h, wait_ms)) {
                if (!h->done)
                        (void)snprintf(h->outcome, sizeof(h->outcome), "disconnected");
                h->done = true;
                return;
        }
        while (h->n_in - off >= VBUS_FRAME_HEADER_SIZE) {
                VbusFrameHeader fh;
                VbusControl c = VBUS_CONTROL_NULL;
                size_t size;
                int status = 0;

                if (vbus__frame_header_decode(h->in + off, h->n_in - off, VBUS_FRAME_MAX_LIMIT,
                                              &fh) != 0)
                        die("bad frame header from the broker");
                size = VBUS_FRAME_HEADER_SIZE + fh.length;
                if (h->n_in - off < size)
                        break;
                if (fh.type != VBUS_FRAME_DATA &&
                    vbus__control_decode(&fh, h->in + off + VBUS_FRAME_HEADER_SIZE,
                                         VBUS_CONTROL_DECODE_BUDGET, &c) == 0) {
                        if (fh.type == VBUS_FRAME_ACCEPT) {
                                h->accepted = true;
                                h->window += ((const Vbus__V1__Accept *)c.msg)->initial_credit;
                        } else if (fh.type == VBUS_FRAME_CREDIT) {
                                h->window += ((const Vbus__V1__Credit *)c.msg)->increment;
                        }
                        if (fh.type == VBUS_FRAME_RESET)
                                status = ((const Vbus__V1__End *)c.msg)->status;
                        else if (fh.type == VBUS_FRAME_REJECT)
                                status = ((const Vbus__V1__Reject *)c.msg)->status;
                        else if (fh.type == VBUS_FRAME_ERROR)
                                status = -1;
                        vbus__control_deinit(&c);
                }
                off += size;
                if (status == VBUS__V1__STATUS__STATUS_DEADLINE_EXCEEDED)
                        h->n_expired++;
                if (h->done)
                        continue;
                if (status == -1) {
                        (void)snprintf(h->outcome, sizeof(h->outcome), "disconnected");
                        h->done = true;
                } else if (status > 0) {
                        (void)snprintf(h->outcome, sizeof(h->outcome), "refused %s on %s",
                                       vbus_status_name(status), kind_of(fh.stream_id, kinds));
                        h->done = true;
                }
        }
        memmove(h->in, h->in + off, h->n_in - off);
        h->n_in -= off;
}

/* Scans what comes for 100 ms. Return: false once the link is gone. */
static bool link_read_more(Hostile *h)
{
        scan(h, 100);
        return strcmp(h->outcome, "disconnected") != 0 || h->vc || h->fd >= 0;
}

/* Writes everything gathered in the out buffer, reading meanwhile. */
static void flush_out(Hostile *h)
{
        size_t done = 0;

        while (done < h->n_out && !h->done) {
                ssize_t w;

                if (h->vc) {
                        w = vbus__vchan_write(h->vc, h->out + done, h->n_out - done);
                        if (w == -EAGAIN) {
                                (void)vbus__vchan_wait(h->vc, 100);
                                w = 0;
                        }
                } else {
                        w = send(h->fd, h->out + done, h->n_out - done,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (w < 0 && errno == EAGAIN)
                                w = 0;
                }
                if (w < 0) {
                        scan(h, 0);
                        if (!h->done)
                                (void)snprintf(h->outcome, sizeof(h->outcome), "disconnected");
                        h->done = true;
                        break;
                }
                done += (size_t)w;
                scan(h, w == 0 ? 50 : 0);
                if (now_us() > h->deadline_us)
                        break;
        }
        h->n_out = 0;
}

static void put_control(Hostile *h, uint8_t type, uint32_t stream, const ProtobufCMessage *m)
{
        VbusSegments seg = {{h->out + h->n_out, NULL}, {OUT_MAX - h->n_out, 0}};
        VbusFrameHeader fh = {.type = type, .stream_id = stream};
        size_t k;

        if (OUT_MAX - h->n_out < VBUS_FRAME_HEADER_SIZE + VBUS_CONTROL_MAX)
                flush_out(h);
        seg.base[0] = h->out + h->n_out;
        seg.size[0] = OUT_MAX - h->n_out;
        if (vbus__control_encode(&fh, m, &seg, &k) < 0)
                die("encode %s", vbus__frame_type_name(type));
        h->n_out += k;
}

static void put_data(Hostile *h, uint32_t stream, uint8_t flags, const void *p, size_t n)
{
        VbusFrameHeader fh = {.type = VBUS_FRAME_DATA, .flags = flags, .stream_id = stream};

        if (OUT_MAX - h->n_out < VBUS_FRAME_HEADER_SIZE + n)
                flush_out(h);
        fh.length = (uint32_t)n;
        vbus__frame_header_encode(&fh, h->out + h->n_out);
        if (n)
                memcpy(h->out + h->n_out + VBUS_FRAME_HEADER_SIZE, p, n);
        h->n_out += VBUS_FRAME_HEADER_SIZE + n;
}

static uint32_t put_open(Hostile *h, Vbus__V1__Open *o)
{
        uint32_t id = h->next_id;

        h->next_id += 2;
        if (id < 4096)
                kinds[id] = (uint32_t)o->kind;
        put_control(h, VBUS_FRAME_OPEN, id, &o->base);
        return id;
}

static void hello(Hostile *h)
{
        Vbus__V1__Hello m = VBUS__V1__HELLO__INIT;
        const char *charge = getenv("HOSTILE_CHARGE");

        m.version_min = 1;
        m.version_max = 1;
        m.max_frame = VBUS_FRAME_MAX_DEFAULT;
        if (charge && strcmp(charge, "1") == 0)
                m.features = VBUS_FEATURE_MESSAGE_CHARGE;
        put_control(h, VBUS_FRAME_HELLO, 0, &m.base);
        flush_out(h);
}

static uint32_t open_kind(Hostile *h, Vbus__V1__StreamKind kind, const char *name, uint32_t credit)
{
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;

        o.kind = kind;
        o.name = (char *)name;
        o.initial_credit = credit;
        return put_open(h, &o);
}

/* Sends empty messages on @id in batches until refused, out of frames or out of time. */
static void empty_messages(Hostile *h, uint32_t id)
{
        while (!h->done && h->frames < h->max_frames && now_us() < h->deadline_us) {
                for (int i = 0; i < BATCH; i++)
                        put_data(h, id, 0, NULL, 0);
                h->frames += BATCH;
                flush_out(h);
                scan(h, 0);
        }
}

static void attack_block_empty(Hostile *h)
{
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;
        uint32_t pub;

        o.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE;
        o.name = (char *)"x.blk";
        o.slow_policy = VBUS__V1__SLOW_POLICY__SLOW_POLICY_BLOCK;
        (void)put_open(h, &o);
        pub = open_kind(h, VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "x.blk", 0);
        flush_out(h);
        empty_messages(h, pub);
}

static void attack_empty_fragments(Hostile *h)
{
        uint32_t pub = open_kind(h, VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "x.frag", 0);

        flush_out(h);
        while (!h->done && h->frames < h->max_frames && now_us() < h->deadline_us) {
                for (int i = 0; i < BATCH; i++)
                        put_data(h, pub, VBUS_FLAG_MORE, NULL, 0);
                h->frames += BATCH;
                flush_out(h);
                scan(h, 0);
        }
}

static void attack_drop_empty(Hostile *h)
{
        uint32_t pub;

        for (int i = 0; i < N_DROP_SUBS; i++) {
                Vbus__V1__Open o = VBUS__V1__OPEN__INIT;

                o.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE;
                o.name = (char *)"x.drp";
                o.queue_limit = 65536;
                (void)put_open(h, &o);
        }
        pub = open_kind(h, VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "x.drp", 0);
        flush_out(h);
        empty_messages(h, pub);
}

static void attack_stuck_serve(Hostile *h, const char *service)
{
        (void)open_kind(h, VBUS__V1__STREAM_KIND__STREAM_KIND_SERVE, service, 0);
        flush_out(h);
        printf("serving\n");
        (void)fflush(stdout);
        /* Never reads again: the broker's writes fill the ring, then its backlog. */
        for (;;)
                pause();
}

static void wait_outcome(Hostile *h);

/* A description of @service: one method M (In -> In); @n_types message types In, T1, T2...;
 * @input: the method's input type name. Packed into a malloc'ed buffer. */
/* A type name's padding in a heavy description: about 60 KiB for 500 types. */
#define HEAVY_PAD                                                                                  \
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
        "x"                                                                                        \
        "xxxxxxxxxxxxxxxxxxxx"

static uint8_t *describe_pack_names(const char *service, const char *input, size_t n_types,
                                    bool heavy, size_t *ret_n);

static uint8_t *describe_pack(const char *service, const char *input, size_t n_types, size_t *ret_n)
{
        return describe_pack_names(service, input, n_types, false, ret_n);
}

/* As describe_pack(), the type names padded to about 120 bytes when @heavy. */
static uint8_t *describe_pack_names(const char *service, const char *input, size_t n_types,
                                    bool heavy, size_t *ret_n)
{
        Vbus__V1__ServiceDescription d = VBUS__V1__SERVICE_DESCRIPTION__INIT;
        Vbus__V1__MethodDescription m = VBUS__V1__METHOD_DESCRIPTION__INIT, *mp = &m;
        Vbus__V1__MessageDescription *msgs = calloc(n_types, sizeof(*msgs));
        Vbus__V1__MessageDescription **ptrs =
                calloc(n_types, sizeof(Vbus__V1__MessageDescription *));
        char(*names)[128] = calloc(n_types, sizeof(*names));
        uint8_t *buf;

        if (!msgs || !ptrs || !names)
                die("out of memory");
        d.service = (char *)service;
        m.name = (char *)"M";
        m.input = (char *)input;
        m.output = (char *)"In";
        d.methods = &mp;
        d.n_methods = 1;
        for (size_t i = 0; i < n_types; i++) {
                vbus__v1__message_description__init(&msgs[i]);
                if (i == 0)
                        (void)snprintf(names[i], sizeof(names[i]), "In");
                else
                        (void)snprintf(names[i], sizeof(names[i]), "T%zu%s", i,
                                       heavy ? HEAVY_PAD : "");
                msgs[i].name = names[i];
                ptrs[i] = &msgs[i];
        }
        d.messages = ptrs;
        d.n_messages = n_types;
        *ret_n = vbus__v1__service_description__get_packed_size(&d);
        buf = malloc(*ret_n + 1);
        if (!buf)
                die("out of memory");
        (void)vbus__v1__service_description__pack(&d, buf);
        free(msgs);
        free(ptrs);
        free(names);
        return buf;
}

static void attack_describe(Hostile *h, const char *service, const char *how)
{
        uint32_t id = open_kind(h, VBUS__V1__STREAM_KIND__STREAM_KIND_SERVE, service, 0);
        uint8_t *buf = NULL;
        size_t n = 0;

        flush_out(h);
        while (!h->accepted && !h->done && now_us() < h->deadline_us)
                scan(h, 100);
        if (!h->accepted)
                return;
        if (strcmp(how, "garbage") == 0) {
                n = 100;
                buf = malloc(n);
                if (!buf)
                        die("out of memory");
                memset(buf, 0xff, n);
        } else if (strcmp(how, "dangling") == 0) {
                buf = describe_pack(service, "Nowhere", 1, &n);
        } else if (strcmp(how, "types") == 0) {
                buf = describe_pack(service, "In", VBUS_DESCRIPTION_TYPES_MAX + 1, &n);
        } else if (strcmp(how, "twice") == 0) {
                buf = describe_pack(service, "In", 1, &n);
                put_data(h, id, 0, buf, n);
                h->frames++;
        } else if (strcmp(how, "huge") == 0) {
                n = VBUS_DESCRIPTION_MAX + 1;
                buf = calloc(1, n);
                if (!buf)
                        die("out of memory");
        } else {
                die("describe: unknown way %s", how);
        }
        /* In frames of at most 32 KiB, MORE on all but the last. */
        for (size_t off = 0; off < n;) {
                size_t k = n - off < 32768 ? n - off : 32768;

                put_data(h, id, off + k < n ? VBUS_FLAG_MORE : 0, buf + off, k);
                h->frames++;
                off += k;
        }
        free(buf);
        flush_out(h);
        wait_outcome(h);
}

/* SERVE PREFIX.S0, PREFIX.S1, ... each with a description of about 60 KiB, until the broker
 * refuses one (the server's budget) or @n are served; prints "described K" first. */
static void attack_describe_many(Hostile *h, const char *prefix, unsigned long n)
{
        unsigned long k;

        for (k = 0; k < n && !h->done && now_us() < h->deadline_us; k++) {
                char service[128];
                uint32_t id;
                uint8_t *buf;
                size_t len;

                (void)snprintf(service, sizeof(service), "%.100s.S%lu", prefix, k);
                h->accepted = false;
                id = open_kind(h, VBUS__V1__STREAM_KIND__STREAM_KIND_SERVE, service, 0);
                flush_out(h);
                while (!h->accepted && !h->done && now_us() < h->deadline_us)
                        scan(h, 100);
                if (!h->accepted)
                        break;
                buf = describe_pack_names(service, "In", 500, true, &len);
                for (size_t off = 0; off < len;) {
                        size_t m = len - off < 32768 ? len - off : 32768;

                        put_data(h, id, off + m < len ? VBUS_FLAG_MORE : 0, buf + off, m);
                        h->frames++;
                        off += m;
                }
                free(buf);
                flush_out(h);
                scan(h, 100); /* a refusal comes at once; an acceptance says nothing */
        }
        printf("described %lu\n", k);
}

static void attack_call_empty(Hostile *h, const char *method)
{
        uint32_t id = open_kind(h, VBUS__V1__STREAM_KIND__STREAM_KIND_CALL, method, 65536);

        flush_out(h);
        empty_messages(h, id);
}

/* A CALL OPEN with five headers of @len bytes each. */
static uint32_t put_big_open(Hostile *h, const char *method, size_t len)
{
        static char value[1025];
        static const char *keys[] = {"a", "b", "c", "d", "e"};
        Vbus__V1__Header hd[5], *hp[5];
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;

        memset(value, 'v', len);
        value[len] = '\0';
        for (int i = 0; i < 5; i++) {
                vbus__v1__header__init(&hd[i]);
                hd[i].key = (char *)keys[i];
                hd[i].value.data = (uint8_t *)value;
                hd[i].value.len = len;
                hp[i] = &hd[i];
        }
        o.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_CALL;
        o.name = (char *)method;
        o.initial_credit = 65536;
        o.headers = hp;
        o.n_headers = 5;
        return put_open(h, &o);
}

/* The largest header size whose OPEN still fits one control frame from us. */
static size_t big_open_len(const char *method)
{
        for (size_t len = 1024; len > 0; len--) {
                static char value[1025];
                static const char *keys[] = {"a", "b", "c", "d", "e"};
                Vbus__V1__Header hd[5], *hp[5];
                Vbus__V1__Open o = VBUS__V1__OPEN__INIT;

                memset(value, 'v', len);
                value[len] = '\0';
                for (int i = 0; i < 5; i++) {
                        vbus__v1__header__init(&hd[i]);
                        hd[i].key = (char *)keys[i];
                        hd[i].value.data = (uint8_t *)value;
                        hd[i].value.len = len;
                        hp[i] = &hd[i];
                }
                o.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_CALL;
                o.name = (char *)method;
                o.initial_credit = 65536;
                o.headers = hp;
                o.n_headers = 5;
                if (protobuf_c_message_get_packed_size(&o.base) <= VBUS_CONTROL_MAX)
                        return len;
        }
        return 0;
}

static void wait_outcome(Hostile *h)
{
        while (!h->done && now_us() < h->deadline_us)
                scan(h, 100);
}

static void attack_big_open(Hostile *h, const char *method)
{
        uint32_t id = put_big_open(h, method, big_open_len(method));
        Vbus__V1__End e = VBUS__V1__END__INIT;

        e.status = VBUS__V1__STATUS__STATUS_OK;
        put_data(h, id, 0, "hi", 2);
        put_control(h, VBUS_FRAME_END, id, &e.base);
        h->frames = 3;
        flush_out(h);
        wait_outcome(h);
}

static void attack_open_flood(Hostile *h, const char *method)
{
        static uint8_t data[FLOOD_DATA];
        Vbus__V1__End e = VBUS__V1__END__INIT;
        size_t len = big_open_len(method) - 8; /* below the limit even with the stamp */

        e.status = VBUS__V1__STATUS__STATUS_OK;

        for (int i = 0; i < N_FLOOD_CALLS; i++) {
                uint32_t id = open_kind(h, VBUS__V1__STREAM_KIND__STREAM_KIND_CALL, method, 65536);

                put_data(h, id, 0, data, sizeof(data));
                put_control(h, VBUS_FRAME_END, id, &e.base);
        }
        for (int i = 0; i < N_FLOOD_OPENS; i++)
                (void)put_big_open(h, method, len);
        h->frames = 3 * N_FLOOD_CALLS + N_FLOOD_OPENS;
        flush_out(h);
        wait_outcome(h);
}

static void attack_equivocate(Hostile *h, const char *topic, unsigned long n)
{
        uint32_t id = open_kind(h, VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, topic, 0);

        if (!h->vc)
                die("equivocate needs vchan: it rewrites its own ring");
        flush_out(h);
        /* The window counts from the start of the stream: wait for ACCEPT, then keep to it. */
        while (!h->accepted && !h->done && now_us() < h->deadline_us)
                scan(h, 100);
        for (unsigned long i = 0; i < n && !h->done && now_us() < h->deadline_us; i++) {
                while (h->window < EQUIVOCATE_SIZE && !h->done && now_us() < h->deadline_us)
                        scan(h, 100);
                if (h->window < EQUIVOCATE_SIZE)
                        break;
                VbusFrameHeader fh = {
                        .type = VBUS_FRAME_DATA, .stream_id = id, .length = EQUIVOCATE_SIZE};
                static uint8_t frame[VBUS_FRAME_HEADER_SIZE + EQUIVOCATE_SIZE];
                struct iovec iov[2];
                ssize_t r;

                vbus__frame_header_encode(&fh, frame);
                memset(frame + VBUS_FRAME_HEADER_SIZE, 'A', EQUIVOCATE_SIZE);
                r = vbus__vchan_reserve(h->vc, sizeof(frame), iov);
                if (r == -EAGAIN) {
                        (void)vbus__vchan_wait(h->vc, 100);
                        i--;
                        scan(h, 0);
                        continue;
                }
                if (r < (ssize_t)sizeof(frame))
                        die("equivocate: the ring refused %zu bytes", sizeof(frame));
                for (size_t k = 0, off = 0; k < 2; off += iov[k].iov_len, k++) {
                        size_t take = iov[k].iov_len;

                        if (off >= sizeof(frame))
                                break;
                        if (take > sizeof(frame) - off)
                                take = sizeof(frame) - off;
                        memcpy(iov[k].iov_base, frame + off, take);
                }
                if (vbus__vchan_commit(h->vc, sizeof(frame)) < 0 || vbus__vchan_flush(h->vc) < 0)
                        die("equivocate: commit");
                h->frames++;
                h->window -= EQUIVOCATE_SIZE;
                /* The payload stays where it was written: rewrite it until the broker read it. */
                for (uint32_t spin = 0; vbus__vchan_get_unconsumed(h->vc) > 0 && spin < 2000000;
                     spin++) {
                        uint8_t c = (uint8_t)('A' + spin % 26);

                        for (size_t k = 0, off = 0; k < 2; off += iov[k].iov_len, k++) {
                                for (size_t b = 0; b < iov[k].iov_len; b++) {
                                        size_t at = off + b;

                                        if (at >= VBUS_FRAME_HEADER_SIZE && at < sizeof(frame))
                                                ((volatile uint8_t *)iov[k].iov_base)[b] = c;
                                }
                        }
                }
                scan(h, 0);
        }
}

/* Writes the out buffer without reading (collect() parses the in buffer itself). */
static void write_out(Hostile *h)
{
        size_t done = 0;

        while (done < h->n_out && now_us() < h->deadline_us) {
                ssize_t w = h->vc ? vbus__vchan_write(h->vc, h->out + done, h->n_out - done)
                                  : send(h->fd, h->out + done, h->n_out - done, MSG_NOSIGNAL);

                if (w == -EAGAIN && h->vc) {
                        (void)vbus__vchan_wait(h->vc, 100);
                        continue;
                }
                if (w <= 0)
                        die("collect: cannot write to the broker");
                done += (size_t)w;
        }
        h->n_out = 0;
}

/* Prints each delivery on @topic as "SEQ HASH" until @n came. */
static void collect(Hostile *h, const char *topic, unsigned long n)
{
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;
        uint64_t hash = 0;
        size_t n_a = 0, n_bytes = 0;
        unsigned long got = 0;
        uint32_t id;
        size_t off = 0;

        /* BLOCK: every subscriber gets every message, to compare them. */
        o.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE;
        o.name = (char *)topic;
        o.initial_credit = 1 << 20;
        o.slow_policy = VBUS__V1__SLOW_POLICY__SLOW_POLICY_BLOCK;
        id = put_open(h, &o);
        flush_out(h);
        printf("ready\n");
        (void)fflush(stdout);
        while (got < n && now_us() < h->deadline_us) {
                VbusFrameHeader fh;

                if (h->n_in - off < VBUS_FRAME_HEADER_SIZE ||
                    vbus__frame_header_decode(h->in + off, h->n_in - off, VBUS_FRAME_MAX_LIMIT,
                                              &fh) != 0 ||
                    h->n_in - off < VBUS_FRAME_HEADER_SIZE + fh.length) {
                        memmove(h->in, h->in + off, h->n_in - off);
                        h->n_in -= off;
                        off = 0;
                        if (!link_read(h, 100))
                                die("collect: the broker closed the link");
                        continue;
                }
                if (fh.type == VBUS_FRAME_DATA && fh.stream_id == id) {
                        const uint8_t *p = h->in + off + VBUS_FRAME_HEADER_SIZE;
                        size_t len = fh.length, k = 0;

                        /* A message's first frame starts with the Meta prefix: a varint
                         * length, then that many bytes. Frames with MORE continue it. */
                        if (fh.flags & VBUS_FLAG_META) {
                                size_t meta = 0;
                                unsigned shift = 0;

                                while (k < len && k < 2) {
                                        meta |= (size_t)(p[k] & 0x7f) << shift;
                                        shift += 7;
                                        if (!(p[k++] & 0x80))
                                                break;
                                }
                                k += meta;
                                hash = 0xcbf29ce484222325ull;
                                n_a = n_bytes = 0;
                        }
                        /* FNV-1a of the payload: equal bytes, equal lines. */
                        for (size_t b = k; b < len; b++) {
                                hash = (hash ^ p[b]) * 0x100000001b3ull;
                                n_a += p[b] == 'A';
                                n_bytes++;
                        }
                        if (!(fh.flags & VBUS_FLAG_MORE))
                                printf("%lu %016llx%s\n", ++got, (unsigned long long)hash,
                                       n_a == n_bytes ? " as-written" : "");
                        if (len > 0) { /* the window back, for what was read */
                                Vbus__V1__Credit cr = VBUS__V1__CREDIT__INIT;

                                cr.increment = (uint32_t)len;
                                put_control(h, VBUS_FRAME_CREDIT, id, &cr.base);
                                write_out(h);
                        }
                }
                off += VBUS_FRAME_HEADER_SIZE + fh.length;
        }
        (void)snprintf(h->outcome, sizeof(h->outcome), "collected %lu", got);
}

static void link_close(Hostile *h)
{
        h->vc = vbus__vchan_free(h->vc);
        if (h->fd >= 0)
                close(h->fd);
        h->fd = -1;
        h->n_in = h->n_out = 0;
}

static void attack_reconnect_loop(Hostile *h, const char *url, unsigned long n)
{
        static const uint8_t garbage[64] = "this is not a vbus frame, and never was one at all";
        unsigned long dropped = 0;

        for (unsigned long i = 0; i < n && now_us() < h->deadline_us; i++) {
                link_open(h, url);
                memcpy(h->out, garbage, sizeof(garbage));
                h->n_out = sizeof(garbage);
                h->done = false;
                flush_out(h);
                h->frames++;
                while (!h->done && now_us() < h->deadline_us)
                        scan(h, 100);
                dropped += h->done;
                link_close(h);
        }
        (void)snprintf(h->outcome, sizeof(h->outcome), "disconnected %lu", dropped);
}

static void attack_hold_calls(Hostile *h, const char *method)
{
        while (!h->done && h->frames < h->max_frames && now_us() < h->deadline_us) {
                (void)open_kind(h, VBUS__V1__STREAM_KIND__STREAM_KIND_CALL, method, 65536);
                h->frames++;
                flush_out(h);
                scan(h, 0);
        }
        /* What we hold stays held until we go: a refusal of a later OPEN is the outcome. */
        wait_outcome(h);
}

int main(int argc, char **argv)
{
        Hostile h = {.next_id = 1, .max_frames = 2000000};
        const char *url, *attack, *arg = NULL, *arg2 = NULL;
        uint64_t seconds = 20, linger = 0;
        int i = 3;

        if (argc < 3 || strcmp(argv[1], "--help") == 0) {
                fprintf(stderr, "usage: hostile URL ATTACK [ARG [ARG2]] [--frames N] [--seconds S] "
                                "[--linger S]\n"
                                "(the attacks are listed at the top of tests/hostile/hostile.c)\n");
                return argc < 3 ? 1 : 0;
        }
        url = argv[1];
        attack = argv[2];
        if (i < argc && strncmp(argv[i], "--", 2) != 0)
                arg = argv[i++];
        if (i < argc && strncmp(argv[i], "--", 2) != 0)
                arg2 = argv[i++];
        for (; i + 1 < argc; i += 2) {
                if (strcmp(argv[i], "--frames") == 0)
                        h.max_frames = strtoull(argv[i + 1], NULL, 10);
                else if (strcmp(argv[i], "--seconds") == 0)
                        seconds = strtoull(argv[i + 1], NULL, 10);
                else if (strcmp(argv[i], "--linger") == 0)
                        linger = strtoull(argv[i + 1], NULL, 10);
                else
                        die("unknown option %s", argv[i]);
        }
        h.out = malloc(OUT_MAX);
        h.in = malloc(IN_MAX);
        if (!h.out || !h.in)
                die("out of memory");
        h.deadline_us = now_us() + seconds * 1000000u;
        (void)snprintf(h.outcome, sizeof(h.outcome), "survived");
        if (strcmp(attack, "reconnect-loop") == 0 && arg) {
                attack_reconnect_loop(&h, url, strtoul(arg, NULL, 10));
                printf("sent %llu frames\n%s\n", (unsigned long long)h.frames, h.outcome);
                free(h.out);
                free(h.in);
                return 0;
        }
        link_open(&h, url);
        hello(&h);
        if (strcmp(attack, "block-empty") == 0)
                attack_block_empty(&h);
        else if (strcmp(attack, "drop-empty") == 0)
                attack_drop_empty(&h);
        else if (strcmp(attack, "empty-fragments") == 0)
                attack_empty_fragments(&h);
        else if (!arg)
                die("%s needs an argument", attack);
        else if (strcmp(attack, "stuck-serve") == 0)
                attack_stuck_serve(&h, arg);
        else if (strcmp(attack, "call-empty") == 0)
                attack_call_empty(&h, arg);
        else if (strcmp(attack, "big-open") == 0)
                attack_big_open(&h, arg);
        else if (strcmp(attack, "open-flood") == 0)
                attack_open_flood(&h, arg);
        else if (strcmp(attack, "hold-calls") == 0)
                attack_hold_calls(&h, arg);
        else if (strcmp(attack, "equivocate") == 0 && arg2)
                attack_equivocate(&h, arg, strtoul(arg2, NULL, 10));
        else if (strcmp(attack, "describe-many") == 0 && arg2)
                attack_describe_many(&h, arg, strtoul(arg2, NULL, 10));
        else if (strcmp(attack, "describe") == 0 && arg2)
                attack_describe(&h, arg, arg2);
        else if (strcmp(attack, "collect") == 0 && arg2)
                collect(&h, arg, strtoul(arg2, NULL, 10));
        else
                die("unknown attack %s", attack);
        printf("sent %llu frames\n%s\n", (unsigned long long)h.frames, h.outcome);
        if (linger) {
                (void)fflush(stdout);
                h.deadline_us = now_us() + linger * 1000000u;
                h.done = true; /* the outcome is told: only count what comes */
                while (now_us() < h.deadline_us && link_read_more(&h))
                        ;
                printf("expired %llu\n", (unsigned long long)h.n_expired);
        }
        link_close(&h);
        free(h.out);
        free(h.in);
        return 0;
}
