/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the broker as two hostile peers see it: the real vchand modules (broker loop,
 * peer, endpoint, session, pub/sub, RPC relay, services, the broker's own service) driven by a
 * script of frames, not only the decoders.
 *
 * For each input a fresh Broker (no Xen, a private socket) takes two peers, each on one end of
 * a socketpair (an in-memory byte stream through the kernel; the broker's end is an ordinary
 * UNIX transport), and the input is played as a script of steps
 *   [op] [peer] [stream selector] [argument] [length] [length bytes]
 * each becoming one frame from peer A or B: HELLO, OPEN of each kind (names from a small set,
 * so that the two peers meet: one publishes what the other subscribes to, one calls what the
 * other serves), DATA (MORE from the argument), CREDIT, END, RESET, ACCEPT and REJECT (for the
 * streams the broker opens toward a server, whose ids the harness learns from what the broker
 * writes), GOAWAY, PING, or raw bytes. After each step the broker runs one iteration without
 * waiting and the harness reads what it wrote to both peers. At the end both links close and
 * the broker is freed, so a leak of anything it held for a peer is a finding under ASan, as
 * are crashes, over-reads and undefined behaviour. A peer the broker drops is a correct outcome
 * (the script goes on with the other one).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/rawframe.h"
#include "broker.h"
#include "config.h"
#include "control.h"
#include "frame.h"
#include "transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
        N_PEERS = 2,
        MAX_IDS = 32,        /* streams a scripted peer remembers */
        MAX_STEPS = 4096,    /* bounds one input's time */
        STEP_HEADER = 5,     /* op, peer, selector, argument, length */
        DRAIN_BUFFER = 65536 /* what is read from a peer's socket at once */
};

/* $FUZZ_PEER_TRACE: print what the broker writes to each peer (for writing seeds). */
static bool trace;

typedef struct Scripted {
        int n;  /* 0 or 1, for the trace */
        int fd; /* our end of the socketpair; -1 once the broker dropped it */
        uint32_t ids[MAX_IDS];
        size_t n_ids;
        uint32_t next_odd;
        VbusFrameDecoder dec;
} Scripted;

static const char *const topics[] = {"t.a", "t.b", "t.a.c", "vbus.x", ""};
static const char *const patterns[] = {"t.>", "t.*", "t.a", ">", "t.*.c", "t..a"};
static const char *const methods[] = {
        "f.v1.S/M",   "f.v1.S/Other", "vbus.v1.Broker/ListServices", "vbus.v1.Broker/Nope",
        "nobody.S/M", "f.v1.S"};
static const char *const services[] = {"f.v1.S", "vbus.v1.Broker", "g.v1.T", "f.v1.S/M"};

static void remember(Scripted *s, uint32_t id)
{
        if (s->n_ids < MAX_IDS)
                s->ids[s->n_ids++] = id;
        else
                s->ids[id % MAX_IDS] = id;
}

/* Reads what the broker wrote to @s; learns the ids of the streams it opened toward it. */
static void drain(Scripted *s)
{
        static uint8_t buf[DRAIN_BUFFER];
        ssize_t n;

        if (s->fd < 0)
                return;
        while ((n = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
                size_t pos = 0;

                while (pos < (size_t)n) {
                        VbusFrame f;
                        size_t used = 0;
                        int r = vbus__frame_decoder_feed(&s->dec, buf + pos, (size_t)n - pos, &used,
                                                         &f);

                        if (r < 0)
                                return;
                        pos += used;
                        if (r == 0)
                                break;
                        if (f.header.type == VBUS_FRAME_OPEN)
                                remember(s, f.header.stream_id);
                        if (trace)
                                fprintf(stderr, "  peer %d <- type %u stream %u length %u\n", s->n,
                                        f.header.type, f.header.stream_id, f.header.length);
                }
        }
        if (n == 0) {
                close(s->fd); /* the broker dropped this peer */
                s->fd = -1;
        }
}

static uint32_t pick_id(const Scripted *s, uint8_t sel)
{
        if (sel == 0xff)
                return 0; /* the link itself: a stream frame on 0 is a violation */
        return s->n_ids > 0 ? s->ids[sel % s->n_ids] : 1;
}

static void send_open(Scripted *s, uint8_t op, uint8_t arg, const uint8_t *p, size_t len)
{
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;
        Vbus__V1__Header h = VBUS__V1__HEADER__INIT, *hp = &h;
        char name[64];
        uint32_t id = s->next_odd;

        switch (op) {
        case 1:
                o.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH;
                o.name = (char *)topics[arg % 5];
                break;
        case 2:
                o.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE;
                o.name = (char *)patterns[arg % 6];
                o.slow_policy = (arg >> 3) % 3;
                o.queue_limit = arg & 0x40 ? (uint32_t)len : 0;
                break;
        case 3:
                o.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_CALL;
                o.name = (char *)methods[arg % 6];
                o.timeout_us = arg & 0x40 ? 1 + len : 0;
                if (arg & 0x80) {
                        h.key = (char *)"k";
                        h.value.data = (uint8_t *)p;
                        h.value.len = len;
                        o.headers = &hp;
                        o.n_headers = 1;
                }
                break;
        default:
                o.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_SERVE;
                o.name = (char *)services[arg % 4];
                break;
        }
        /* A name from the script itself now and then: whatever the broker makes of it. */
        if ((arg & 0x30) == 0x30 && len > 0 && !memchr(p, 0, len)) {
                /* At most 63 bytes by the precision: it fits. */
                (void)snprintf(name, sizeof(name), "%.*s", (int)(len < 63 ? len : 63),
                               (const char *)p);
                o.name = name;
        }
        o.initial_credit = arg & 4 ? 1u << 20 : (uint32_t)len << (arg % 12);
        if (arg & 0x08 && s->n_ids > 0)
                id = s->ids[arg % s->n_ids]; /* reuse of an id: a violation */
        else
                s->next_odd += 2;
        raw_send_control(s->fd, VBUS_FRAME_OPEN, id, &o.base, MSG_DONTWAIT);
        remember(s, id);
}

static void send_data(Scripted *s, uint32_t id, uint8_t flags, const uint8_t *p, size_t n)
{
        uint8_t hdr[VBUS_FRAME_HEADER_SIZE];
        VbusFrameHeader h = {
                .type = VBUS_FRAME_DATA, .flags = flags, .stream_id = id, .length = (uint32_t)n};

        vbus__frame_header_encode(&h, hdr);
        raw_send_all(s->fd, hdr, sizeof(hdr), MSG_DONTWAIT);
        raw_send_all(s->fd, p, n, MSG_DONTWAIT);
}

static void send_hello(Scripted *s, uint8_t arg)
{
        Vbus__V1__Hello m = VBUS__V1__HELLO__INIT;

        m.version_min = 1;
        m.version_max = arg & 1 ? 1 : 2;
        m.max_frame = arg & 2 ? VBUS_FRAME_MAX_DEFAULT : 256u << (arg % 9);
        m.features = arg & 0x80 ? UINT64_MAX : 0;
        m.peer_name = (char *)"fuzz";
        raw_send_control(s->fd, VBUS_FRAME_HELLO, 0, &m.base, MSG_DONTWAIT);
}

static void step(Scripted *s, uint8_t op, uint8_t sel, uint8_t arg, const uint8_t *p, size_t len)
{
        uint32_t id = pick_id(s, sel);

        switch (op % 14) {
        case 0:
                send_hello(s, arg);
                break;
        case 1:
        case 2:
        case 3:
        case 4:
                send_open(s, op % 14, arg, p, len);
                break;
        case 5:
                send_data(s, id, arg & 1 ? VBUS_FLAG_MORE : 0, p, len);
                break;
        case 6: {
                Vbus__V1__Credit cr = VBUS__V1__CREDIT__INIT;

                cr.increment = arg & 0x80 ? UINT32_MAX : (uint32_t)(arg + 1) << (len % 20);
                raw_send_control(s->fd, VBUS_FRAME_CREDIT, id, &cr.base, MSG_DONTWAIT);
                break;
        }
        case 7:
        case 8: {
                Vbus__V1__End e = VBUS__V1__END__INIT;

                e.status = arg % 16;
                e.message = (char *)(arg & 0x10 ? "bye" : "");
                raw_send_control(s->fd, op % 14 == 7 ? VBUS_FRAME_END : VBUS_FRAME_RESET, id,
                                 &e.base, MSG_DONTWAIT);
                break;
        }
        case 9: {
                Vbus__V1__Accept a = VBUS__V1__ACCEPT__INIT;

                a.initial_credit = arg & 1 ? 1u << 20 : (uint32_t)len << (arg % 16);
                raw_send_control(s->fd, VBUS_FRAME_ACCEPT, id, &a.base, MSG_DONTWAIT);
                break;
        }
        case 10: {
                Vbus__V1__Reject rj = VBUS__V1__REJECT__INIT;

                rj.status = arg % 16;
                raw_send_control(s->fd, VBUS_FRAME_REJECT, id, &rj.base, MSG_DONTWAIT);
                break;
        }
        case 11: {
                Vbus__V1__GoAway g = VBUS__V1__GO_AWAY__INIT;

                g.last_stream_id = id;
                g.status = arg % 16;
                raw_send_control(s->fd, VBUS_FRAME_GOAWAY, 0, &g.base, MSG_DONTWAIT);
                break;
        }
        case 12: {
                Vbus__V1__Ping ping = VBUS__V1__PING__INIT;

                raw_send_control(s->fd, VBUS_FRAME_PING, arg & 1 ? id : 0, &ping.base,
                                 MSG_DONTWAIT);
                break;
        }
        default:
                raw_send_all(s->fd, p, len, MSG_DONTWAIT);
                break;
        }
}

static int add_peer(Broker *b, Scripted *s, uint32_t domid, const char *name)
{
        Identity ident = {.domid = domid};
        VbusTransport t;
        int sv[2];

        *s = (Scripted){.n = (int)domid - 1, .fd = -1, .next_odd = 1};
        vbus__frame_decoder_init(&s->dec, VBUS_FRAME_MAX_LIMIT);
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        (void)snprintf(ident.domain_name, sizeof(ident.domain_name), "%s", name); /* fits */
        if (vbus__transport_init_unix(&t, sv[0]) < 0) {
                close(sv[0]);
                close(sv[1]);
                return -ENOMEM;
        }
        s->fd = sv[1];
        return broker_add_peer(b, &t, &ident, domid);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        BrokerConfig config;
        Scripted peers[N_PEERS];
        Broker b;
        size_t off = 0;

        trace = getenv("FUZZ_PEER_TRACE") != NULL;
        config_defaults(&config);
        config.xen = false;
        /* Every OPEN reaches its feature (the policy itself has its own fuzz target). */
        (void)snprintf(config.policy, sizeof(config.policy), "open");
        (void)snprintf(config.socket_path, sizeof(config.socket_path),
                       "/tmp/vbus-fuzz-peer-%d.sock", (int)getpid()); /* fits */
        if (broker_init(&b, &config) < 0)
                abort();
        if (add_peer(&b, &peers[0], 1, "a") < 0 || add_peer(&b, &peers[1], 2, "b") < 0)
                abort();
        for (int n = 0; off + STEP_HEADER <= size && n < MAX_STEPS; n++) {
                uint8_t op = data[off], who = data[off + 1], sel = data[off + 2];
                uint8_t arg = data[off + 3];
                size_t len = data[off + 4];
                const uint8_t *p = data + off + STEP_HEADER;
                Scripted *s = &peers[who % N_PEERS];

                if (len > size - off - STEP_HEADER)
                        len = size - off - STEP_HEADER;
                off += STEP_HEADER + len;
                if (trace)
                        fprintf(stderr, "peer %d -> op %u sel %u arg %u len %zu\n", s->n, op % 14,
                                sel, arg, len);
                if (s->fd >= 0)
                        step(s, op, sel, arg, p, len);
                for (int i = 0; i < 2; i++) {
                        (void)broker_step(&b, 0);
                        drain(&peers[0]);
                        drain(&peers[1]);
                }
        }
        for (int i = 0; i < N_PEERS; i++) {
                if (peers[i].fd >= 0)
                        close(peers[i].fd);
                vbus__frame_decoder_deinit(&peers[i].dec);
        }
        for (int i = 0; i < 3; i++)
                (void)broker_step(&b, 0); /* sees both links go: every stream is closed */
        broker_deinit(&b);
        return 0;
}
