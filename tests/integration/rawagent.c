/* SPDX-License-Identifier: MIT */
/*
 * rawagent: a guest agent played by hand for the integration tests (agent-hostile.sh). It speaks
 * the wire protocol frame by frame over the broker's UNIX socket, with agent sessions
 * (protocol.md section 7), and checks exactly what the broker answers:
 *
 *   rawagent SOCKET cap N       starts N+1 sessions on a broker with max_sessions = N: the first
 *                               N are answered HELLO, the last GOAWAY RESOURCE_EXHAUSTED, and the
 *                               link and the first N sessions stay (each answers a PING)
 *   rawagent SOCKET unknown     sends an OPEN for a session that never said HELLO: the link is
 *                               dropped with ERROR PROTOCOL_ERROR
 *   rawagent SOCKET fault       breaks a rule in session 1 (DATA on a stream never opened): only
 *                               session 1 ends (ERROR and GOAWAY for it); its late frames are
 *                               discarded; session 2 and the link stay
 *   rawagent SOCKET flood N     starts and ends N sessions (HELLO, GOAWAY) back to back, then
 *                               checks that the link still answers a PING
 *   rawagent SOCKET claims      session 1 subscribes, session 2 (claiming uid 4242, pid 7,
 *                               command "liar") publishes: the delivery's Meta.sender has the
 *                               transport's identity (local, this process's uid and pid),
 *                               session 2, and the claims kept apart
 *   rawagent SOCKET claims0     claims in the link's own HELLO (session 0): a protocol violation
 *   rawagent SOCKET burst N     a plain client (session 0 only, as to a guest agent): publishes N
 *                               small messages on burst.x in one go, within the opening window,
 *                               and closes its socket at once, without reading any answer (what
 *                               the agent then writes toward it fails; its messages must all
 *                               still reach the broker)
 *
 * Prints what it saw; exits 0 when the broker behaved as described, 1 otherwise.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/rawframe.h"
#include "control.h"
#include "frame.h"

static int fd = -1;
static VbusFrameDecoder dec;
static uint8_t inbuf[1 << 16];
static size_t in_pos, in_len;

/* One received frame, its control message decoded (msg NULL for DATA). */
typedef struct Got {
        VbusFrameHeader h;
        uint8_t payload[VBUS_FRAME_MAX_DEFAULT];
        VbusControl c;
} Got;

static void send_frame(uint8_t type, uint8_t flags, uint32_t session, uint32_t stream,
                       const ProtobufCMessage *m, const uint8_t *data, size_t n_data)
{
        static uint8_t buf[VBUS_FRAME_HEADER_SIZE + VBUS_FRAME_MAX_DEFAULT];
        VbusFrameHeader h = {
                .type = type, .flags = flags, .stream_id = stream, .session_id = session};
        size_t n;

        if (m) {
                VbusSegments out = {{buf, NULL}, {sizeof(buf), 0}};

                if (vbus__control_encode(&h, m, &out, &n) != 0)
                        return;
        } else {
                h.length = (uint32_t)n_data;
                vbus__frame_header_encode(&h, buf);
                memcpy(buf + VBUS_FRAME_HEADER_SIZE, data, n_data);
                n = VBUS_FRAME_HEADER_SIZE + n_data;
        }
        raw_send_all(fd, buf, n, 0);
}

static void hello(uint32_t session, Vbus__V1__Claims *claims)
{
        Vbus__V1__Hello h = VBUS__V1__HELLO__INIT;

        h.version_min = 1;
        h.version_max = 1;
        h.max_frame = VBUS_FRAME_MAX_DEFAULT;
        h.peer_name = (char *)"rawagent";
        h.claims = claims;
        send_frame(VBUS_FRAME_HELLO, 0, session, 0, &h.base, NULL, 0);
}

static void ping(uint32_t session, uint64_t opaque)
{
        Vbus__V1__Ping p = VBUS__V1__PING__INIT;

        p.opaque = opaque;
        send_frame(VBUS_FRAME_PING, 0, session, 0, &p.base, NULL, 0);
}

static void goaway(uint32_t session)
{
        Vbus__V1__GoAway g = VBUS__V1__GO_AWAY__INIT;

        g.status = VBUS__V1__STATUS__STATUS_OK;
        send_frame(VBUS_FRAME_GOAWAY, 0, session, 0, &g.base, NULL, 0);
}

static void open_stream(uint32_t session, uint32_t id, Vbus__V1__StreamKind kind, const char *name)
{
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;

        o.kind = kind;
        o.name = (char *)name;
        o.initial_credit = 65536;
        send_frame(VBUS_FRAME_OPEN, 0, session, id, &o.base, NULL, 0);
}

/* The next frame, within 10 s. Return: 1 (a frame in @g), 0 (the broker closed), -1 (timeout
 * or a frame we cannot decode). */
static int next_frame(Got *g)
{
        vbus__control_deinit(&g->c);
        for (;;) {
                VbusFrame f;
                size_t used = 0;
                int r;

                if (in_pos < in_len) {
                        r = vbus__frame_decoder_feed(&dec, inbuf + in_pos, in_len - in_pos, &used,
                                                     &f);
                        if (r < 0)
                                return -1;
                        in_pos += used;
                        if (r == 1) {
                                g->h = f.header;
                                memcpy(g->payload, f.payload, f.header.length);
                                if (f.header.type != VBUS_FRAME_DATA &&
                                    vbus__control_decode(&g->h, g->payload, 65536, &g->c) != 0)
                                        return -1;
                                return 1;
                        }
                        continue;
                }
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                ssize_t n;

                if (poll(&pfd, 1, 10000) <= 0) {
                        fprintf(stderr, "rawagent: no frame from the broker in 10 s\n");
                        return -1;
                }
                n = recv(fd, inbuf, sizeof(inbuf), 0);
                if (n <= 0)
                        return 0;
                in_pos = 0;
                in_len = (size_t)n;
        }
}

/* Reads frames until one of @type on @session comes. Return: 1, 0 (closed), -1. */
static int expect(Got *g, uint32_t session, uint8_t type)
{
        for (;;) {
                int r = next_frame(g);

                if (r <= 0)
                        return r;
                if (g->h.session_id == session && g->h.type == type)
                        return 1;
                printf("  (session %u: %s)\n", g->h.session_id, vbus__frame_type_name(g->h.type));
        }
}

static int check(bool ok, const char *what)
{
        printf("%s: %s\n", ok ? "ok" : "FAIL", what);
        return ok ? 0 : 1;
}

static int link_up(Got *g, uint32_t session)
{
        ping(session, 0xfeed);
        return expect(g, session, VBUS_FRAME_PING) == 1 && (g->h.flags & VBUS_FLAG_ACK);
}

static int test_cap(Got *g, unsigned n)
{
        int bad = 0;

        for (unsigned i = 1; i <= n; i++) {
                hello(i, NULL);
                bad |= check(expect(g, i, VBUS_FRAME_HELLO) == 1, "session within the cap");
        }
        hello(n + 1, NULL);
        bad |= check(expect(g, n + 1, VBUS_FRAME_GOAWAY) == 1 &&
                             ((const Vbus__V1__GoAway *)g->c.msg)->status ==
                                     VBUS__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
                     "the session over the cap is refused with RESOURCE_EXHAUSTED");
        if (g->c.msg)
                printf("  GOAWAY: %s\n", ((const Vbus__V1__GoAway *)g->c.msg)->message);
        /* Late frames of the refused session are discarded, not a violation. */
        ping(n + 1, 1);
        bad |= check(link_up(g, 0), "the link stays up");
        for (unsigned i = 1; i <= n; i++)
                bad |= check(link_up(g, i), "a session within the cap stays up");
        return bad;
}

static int test_unknown(Got *g)
{
        open_stream(9, 1, VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "who.am.i");
        if (expect(g, 0, VBUS_FRAME_ERROR) != 1)
                return check(false, "ERROR for a frame of a session that never said HELLO");
        printf("  ERROR: %s\n", ((const Vbus__V1__Error *)g->c.msg)->message);
        return check(((const Vbus__V1__Error *)g->c.msg)->status ==
                                     VBUS__V1__STATUS__STATUS_PROTOCOL_ERROR &&
                             next_frame(g) == 0,
                     "a frame for an unknown session drops the link");
}

static int test_fault(Got *g)
{
        static const uint8_t junk[3] = {1, 2, 3};
        int bad = 0;

        hello(1, NULL);
        bad |= check(expect(g, 1, VBUS_FRAME_HELLO) == 1, "session 1 up");
        hello(2, NULL);
        bad |= check(expect(g, 2, VBUS_FRAME_HELLO) == 1, "session 2 up");
        send_frame(VBUS_FRAME_DATA, 0, 1, 77, NULL, junk, sizeof(junk));
        bad |= check(expect(g, 1, VBUS_FRAME_ERROR) == 1 &&
                             ((const Vbus__V1__Error *)g->c.msg)->status ==
                                     VBUS__V1__STATUS__STATUS_PROTOCOL_ERROR,
                     "session 1 is told PROTOCOL_ERROR");
        bad |= check(expect(g, 1, VBUS_FRAME_GOAWAY) == 1, "session 1 is ended with GOAWAY");
        /* A frame of session 1 that crossed the GOAWAY: discarded. */
        ping(1, 2);
        bad |= check(link_up(g, 2), "session 2 stays up");
        bad |= check(link_up(g, 0), "the link stays up");
        /* A session id is never reused: a new HELLO for 1 is a late frame, discarded. */
        hello(1, NULL);
        bad |= check(link_up(g, 0), "a reused session id is discarded");
        return bad;
}

static int test_flood(Got *g, unsigned n)
{
        for (unsigned i = 1; i <= n; i++) {
                hello(i, NULL);
                goaway(i);
        }
        return check(link_up(g, 0), "the link stays up after a flood of sessions");
}

static int test_claims(Got *g)
{
        Vbus__V1__Claims cl = VBUS__V1__CLAIMS__INIT;
        static const uint8_t msg[5] = "hello";
        const Vbus__V1__Identity *s;
        Vbus__V1__Meta *meta;
        Vbus__V1__Credit cr = VBUS__V1__CREDIT__INIT;
        const uint8_t *mb, *body;
        size_t n_meta = 0, n_body = 0;
        int bad = 0;

        hello(1, NULL);
        bad |= check(expect(g, 1, VBUS_FRAME_HELLO) == 1, "session 1 up");
        cl.uid = 4242;
        cl.pid = 7;
        cl.command = (char *)"liar";
        hello(2, &cl);
        bad |= check(expect(g, 2, VBUS_FRAME_HELLO) == 1, "session 2 up");
        open_stream(1, 1, VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE, "claims.>");
        bad |= check(expect(g, 1, VBUS_FRAME_ACCEPT) == 1, "session 1 subscribed");
        cr.increment = 65536;
        send_frame(VBUS_FRAME_CREDIT, 0, 1, 1, &cr.base, NULL, 0);
        /* The subscription is routed once the broker has read it: a PING answered says so. */
        bad |= check(link_up(g, 1), "session 1 answers");
        open_stream(2, 1, VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "claims.test");
        send_frame(VBUS_FRAME_DATA, 0, 2, 1, NULL, msg, sizeof(msg));
        if (expect(g, 1, VBUS_FRAME_DATA) != 1 || !(g->h.flags & VBUS_FLAG_META))
                return check(false, "session 1 receives the message with Meta");
        if (vbus__meta_split(g->payload, g->h.length, &mb, &n_meta, &body, &n_body) != 0)
                return check(false, "a Meta prefix");
        meta = vbus__v1__meta__unpack(NULL, n_meta, mb);
        if (!meta || !meta->sender)
                return check(false, "Meta.sender");
        s = meta->sender;
        printf("  sender: domid %u local %d uid %u pid %u session %u claims %s\n", s->domid,
               s->local, s->uid, s->pid, s->session, s->claims ? s->claims->command : "(none)");
        bad |= check(s->local && s->uid == (uint32_t)getuid() && s->pid == (uint32_t)getpid(),
                     "the trusted identity is the transport's, not the claims");
        bad |= check(s->session == 2, "the sender's session is stamped");
        bad |= check(s->claims && s->claims->uid == 4242 && s->claims->pid == 7 &&
                             strcmp(s->claims->command, "liar") == 0,
                     "the claims are passed on, apart from the identity");
        vbus__v1__meta__free_unpacked(meta, NULL);
        return bad;
}

static int test_claims0(Got *g)
{
        Vbus__V1__Claims cl = VBUS__V1__CLAIMS__INIT;

        cl.uid = 0;
        cl.command = (char *)"root";
        hello(0, &cl);
        if (expect(g, 0, VBUS_FRAME_ERROR) != 1)
                return check(false, "ERROR for claims in the link's own HELLO");
        return check(((const Vbus__V1__Error *)g->c.msg)->status ==
                             VBUS__V1__STATUS__STATUS_PROTOCOL_ERROR,
                     "claims in the link's own HELLO are a protocol violation");
}

static int test_burst(Got *g, unsigned n)
{
        char msg[32];

        open_stream(0, 1, VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "burst.x");
        for (unsigned i = 1; i <= n; i++) {
                int k = snprintf(msg, sizeof(msg), "m%u", i);

                send_frame(VBUS_FRAME_DATA, 0, 0, 1, NULL, (const uint8_t *)msg, (size_t)k);
        }
        (void)g;
        close(fd);
        fd = -1;
        return check(true, "published and closed");
}

int main(int argc, char **argv)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        static Got g;
        const char *what;
        int r;

        if (argc < 3 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "usage: rawagent SOCKET cap N|unknown|fault|flood N|claims|"
                                "claims0\n");
                return 2;
        }
        what = argv[2];
        memcpy(sa.sun_path, argv[1], strlen(argv[1]) + 1); /* its length checked above */
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                perror("rawagent: connect");
                return 1;
        }
        vbus__frame_decoder_init(&dec, VBUS_FRAME_MAX_LIMIT);
        g.c = (VbusControl)VBUS_CONTROL_NULL;
        if (strcmp(what, "claims0") == 0)
                return test_claims0(&g);
        hello(0, NULL);
        if (expect(&g, 0, VBUS_FRAME_HELLO) != 1)
                return check(false, "the link's HELLO is answered");
        if (strcmp(what, "cap") == 0 && argc == 4)
                r = test_cap(&g, (unsigned)strtoul(argv[3], NULL, 10));
        else if (strcmp(what, "unknown") == 0)
                r = test_unknown(&g);
        else if (strcmp(what, "fault") == 0)
                r = test_fault(&g);
        else if (strcmp(what, "flood") == 0 && argc == 4)
                r = test_flood(&g, (unsigned)strtoul(argv[3], NULL, 10));
        else if (strcmp(what, "claims") == 0)
                r = test_claims(&g);
        else if (strcmp(what, "burst") == 0 && argc == 4)
                r = test_burst(&g, (unsigned)strtoul(argv[3], NULL, 10));
        else
                return 2;
        vbus__control_deinit(&g.c);
        vbus__frame_decoder_deinit(&dec);
        if (fd >= 0)
                close(fd);
        return r;
}
