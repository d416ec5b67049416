/* SPDX-License-Identifier: MIT */
/*
 * rawcall: one call between a hand-written caller and a hand-written server, both on the
 * broker's UNIX socket (libbus codec, no libvbus session), printing every frame each side gets
 * on the call's streams, so a test can check what the broker relays and in which order:
 *
 *   rawcall SOCKET unary      OPEN+DATA+END in one write, the server answers ACCEPT+DATA+END
 *                             in one write: the caller must get exactly ACCEPT, DATA, END, and
 *                             the server no CREDIT for its reply (it had ended its direction)
 *   rawcall SOCKET streaming  OPEN+DATA without END: the caller must get ACCEPT before the
 *                             server answers (it may need the window), then DATA, END
 *   rawcall SOCKET deadline   a 200 ms call the server never answers: ACCEPT then RESET
 *                             DEADLINE_EXCEEDED for the caller, RESET for the server
 *   rawcall SOCKET deadline-tick
 *                             the same, timed against the broker's own 1 s housekeeping tick
 *                             (the broker must run with hello_timeout_ms = 600): a link that
 *                             never says HELLO is closed at the first tick after 600 ms, so
 *                             the close of a first such probe marks a tick T. The call starts
 *                             at once, with a second probe: the broker must reset the call at
 *                             its deadline, T + 200 ms, before it closes the second probe at
 *                             the tick T + 1 s (or, were HELLO timed exactly, at T + 600 ms).
 *                             A broker that checks deadlines only on its tick resets the call
 *                             after that close. Neither side of the call has a timer here, so
 *                             only the broker's can end it.
 *   rawcall SOCKET reject     the server REJECTs: ACCEPT then RESET with its status
 *   rawcall SOCKET exits      the server answers and closes its link at once: the caller still
 *                             gets ACCEPT, DATA, END (not UNAVAILABLE, and not never)
 *   rawcall SOCKET pieces     five messages each way in one write (1, 63, 0, 100 in two
 *                             fragments, 200 bytes): each side must get exactly those messages,
 *                             in order, whatever the broker's relay buffer does with them (its
 *                             first buffer and boundary list are small and grow: vchand/rpc.c)
 *
 * Every wait is bounded (10 s): a frame that never comes is a failure, not a hang.
 * Exits 0 when every check held, 1 otherwise (the reason on stderr).
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "frame.h"

enum { WAIT_MS = 10000, BUF_SIZE = 1 << 20, CALL_ID = 1, SERVE_ID = 1 };

typedef struct Link {
        const char *name;
        int fd;
        uint8_t *buf;
        size_t n;
} Link;

typedef struct Got {
        VbusFrameHeader h;
        int status; /* END/RESET/REJECT */
        uint32_t increment;
        bool peer_local; /* ACCEPT: Accept.peer.local */
        uint8_t data[256];
} Got;

__attribute__((format(printf, 1, 2))) static void die(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        fputs("rawcall: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        exit(1);
}

static void link_open(Link *l, const char *name, const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};

        l->name = name;
        l->n = 0;
        l->buf = malloc(BUF_SIZE);
        if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path) >= sizeof(sa.sun_path))
                die("%s: socket path too long: %s", name, path);
        l->fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (!l->buf || l->fd < 0 || connect(l->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                die("%s: connect: %s", name, strerror(errno));
}

static void send_all(Link *l, const uint8_t *p, size_t n)
{
        while (n > 0) {
                ssize_t w = send(l->fd, p, n, MSG_NOSIGNAL);

                if (w <= 0)
                        die("%s: send: %s", l->name, strerror(errno));
                p += w;
                n -= (size_t)w;
        }
}

/* Appends one frame to @out (frames are gathered so that several go in one write). */
static void put_control(uint8_t *out, size_t *n, uint8_t type, uint8_t flags, uint32_t stream,
                        const ProtobufCMessage *m)
{
        VbusSegments seg = {{out + *n, NULL}, {VBUS_FRAME_HEADER_SIZE + VBUS_CONTROL_MAX, 0}};
        VbusFrameHeader h = {.type = type, .flags = flags, .stream_id = stream};
        size_t k;

        if (vbus__control_encode(&h, m, &seg, &k) < 0)
                die("encode %s", vbus__frame_type_name(type));
        *n += k;
}

static void put_data(uint8_t *out, size_t *n, uint32_t stream, const char *text)
{
        VbusFrameHeader h = {.type = VBUS_FRAME_DATA, .stream_id = stream};

        h.length = (uint32_t)strlen(text);
        vbus__frame_header_encode(&h, out + *n);
        memcpy(out + *n + VBUS_FRAME_HEADER_SIZE, text, h.length);
        *n += VBUS_FRAME_HEADER_SIZE + h.length;
}

/* A DATA frame of @len bytes of @fill, with @flags (VBUS_FLAG_MORE: a fragment). */
static void put_bytes(uint8_t *out, size_t *n, uint32_t stream, uint8_t flags, char fill,
                      uint32_t len)
{
        VbusFrameHeader h = {.type = VBUS_FRAME_DATA, .flags = flags, .stream_id = stream};

        h.length = len;
        vbus__frame_header_encode(&h, out + *n);
        memset(out + *n + VBUS_FRAME_HEADER_SIZE, fill, len);
        *n += VBUS_FRAME_HEADER_SIZE + len;
}

static void put_end(uint8_t *out, size_t *n, uint8_t type, uint32_t stream, int status)
{
        Vbus__V1__End e = VBUS__V1__END__INIT;

        e.status = status;
        put_control(out, n, type, 0, stream, &e.base);
}

/* The fields of one frame the checks look at (@p: its @h->length payload bytes). */
static Got decode(const Link *l, const VbusFrameHeader *h, const uint8_t *p)
{
        VbusControl c = VBUS_CONTROL_NULL;
        Got g = {.h = *h};

        if (h->type == VBUS_FRAME_DATA) {
                memcpy(g.data, p, h->length < sizeof(g.data) - 1 ? h->length : sizeof(g.data) - 1);
                return g;
        }
        if (vbus__control_decode(h, p, VBUS_CONTROL_DECODE_BUDGET, &c) != 0)
                die("%s: bad %s payload", l->name, vbus__frame_type_name(h->type));
        if (h->type == VBUS_FRAME_END || h->type == VBUS_FRAME_RESET)
                g.status = ((const Vbus__V1__End *)c.msg)->status;
        else if (h->type == VBUS_FRAME_REJECT)
                g.status = ((const Vbus__V1__Reject *)c.msg)->status;
        else if (h->type == VBUS_FRAME_CREDIT)
                g.increment = ((const Vbus__V1__Credit *)c.msg)->increment;
        else if (h->type == VBUS_FRAME_ACCEPT)
                g.peer_local = ((const Vbus__V1__Accept *)c.msg)->peer &&
                               ((const Vbus__V1__Accept *)c.msg)->peer->local;
        vbus__control_deinit(&c);
        return g;
}

/* The next frame from @l (any stream), waiting at most WAIT_MS. */
static Got next_frame(Link *l)
{
        for (;;) {
                struct pollfd pfd = {.fd = l->fd, .events = POLLIN};
                VbusFrameHeader h = {0};
                size_t size;
                ssize_t r;
                Got g;

                if (l->n >= VBUS_FRAME_HEADER_SIZE &&
                    vbus__frame_header_decode(l->buf, l->n, VBUS_FRAME_MAX_LIMIT, &h) != 0)
                        die("%s: bad frame header from the broker", l->name);
                size = VBUS_FRAME_HEADER_SIZE + (size_t)h.length;
                if (l->n >= VBUS_FRAME_HEADER_SIZE && l->n >= size) {
                        g = decode(l, &h, l->buf + VBUS_FRAME_HEADER_SIZE);
                        l->n -= size;
                        memmove(l->buf, l->buf + size, l->n);
                        printf("%s: %s stream %u\n", l->name, vbus__frame_type_name(h.type),
                               h.stream_id);
                        return g;
                }
                if (poll(&pfd, 1, WAIT_MS) <= 0)
                        die("%s: nothing from the broker in %d ms", l->name, WAIT_MS);
                r = recv(l->fd, l->buf + l->n, BUF_SIZE - l->n, 0);
                if (r <= 0)
                        die("%s: the broker closed the link", l->name);
                l->n += (size_t)r;
        }
}

/* The next frame of @type on @stream; frames on other streams are skipped. */
static Got expect(Link *l, uint32_t stream, uint8_t type)
{
        for (;;) {
                Got g = next_frame(l);

                if (g.h.stream_id != stream && g.h.type != VBUS_FRAME_PING)
                        continue;
                if (g.h.type != type)
                        die("%s: got %s where %s was due", l->name, vbus__frame_type_name(g.h.type),
                            vbus__frame_type_name(type));
                return g;
        }
}

static void hello(Link *l)
{
        Vbus__V1__Hello m = VBUS__V1__HELLO__INIT;
        uint8_t out[VBUS_FRAME_HEADER_SIZE + VBUS_CONTROL_MAX];
        size_t n = 0;

        m.version_min = 1;
        m.version_max = 1;
        m.max_frame = VBUS_FRAME_MAX_DEFAULT;
        put_control(out, &n, VBUS_FRAME_HELLO, 0, 0, &m.base);
        send_all(l, out, n);
        (void)expect(l, 0, VBUS_FRAME_HELLO);
}

static void put_open(uint8_t *out, size_t *n, uint32_t id, Vbus__V1__StreamKind kind,
                     const char *name, uint64_t timeout_us)
{
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;

        o.kind = kind;
        o.name = (char *)name;
        o.initial_credit = 65536;
        o.timeout_us = timeout_us;
        put_control(out, n, VBUS_FRAME_OPEN, 0, id, &o.base);
}

/* A link that never says HELLO: the broker closes it at its first tick after hello_timeout_ms. */
static int probe_open(const char *path)
{
        Link l;

        link_open(&l, "probe", path);
        free(l.buf);
        return l.fd;
}

/* Whether the broker has closed @fd (EOF or an error is readable; it never sends anything). */
static bool probe_is_closed(int fd)
{
        struct pollfd pfd = {.fd = fd, .events = POLLIN};

        return poll(&pfd, 1, 0) > 0;
}

/* Waits for the broker to close @fd, at most 10 s. */
static void probe_wait_closed(int fd, const char *which)
{
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        char c;

        if (poll(&pfd, 1, WAIT_MS) <= 0)
                die("%s: the broker did not close a link without HELLO in %d ms", which, WAIT_MS);
        if (recv(fd, &c, 1, 0) != 0)
                die("%s: the broker sent something to a link without HELLO", which);
}

/* The server's side: reads its call's OPEN, the request and (if @want_end) the caller's END. */
static uint32_t server_take_call(Link *srv, bool want_end)
{
        Got g;

        do
                g = next_frame(srv);
        while (g.h.type != VBUS_FRAME_OPEN);
        (void)expect(srv, g.h.stream_id, VBUS_FRAME_DATA);
        if (want_end)
                (void)expect(srv, g.h.stream_id, VBUS_FRAME_END);
        return g.h.stream_id;
}

/* The server answers ACCEPT, DATA, END in one write (or REJECT). */
static void server_answer(Link *srv, uint32_t id, bool reject)
{
        Vbus__V1__Accept a = VBUS__V1__ACCEPT__INIT;
        Vbus__V1__Reject rj = VBUS__V1__REJECT__INIT;
        uint8_t out[4096];
        size_t n = 0;

        if (reject) {
                rj.status = VBUS__V1__STATUS__STATUS_PERMISSION_DENIED;
                put_control(out, &n, VBUS_FRAME_REJECT, 0, id, &rj.base);
        } else {
                a.initial_credit = 65536;
                put_control(out, &n, VBUS_FRAME_ACCEPT, 0, id, &a.base);
                put_data(out, &n, id, "pong");
                put_end(out, &n, VBUS_FRAME_END, id, VBUS__V1__STATUS__STATUS_OK);
        }
        send_all(srv, out, n);
}

/* After the reply reached the caller: the server gets nothing on @id before a PING's answer. */
static void server_expect_quiet(Link *srv, uint32_t id)
{
        Vbus__V1__Ping p = VBUS__V1__PING__INIT;
        uint8_t out[256];
        size_t n = 0;

        p.opaque = 42;
        put_control(out, &n, VBUS_FRAME_PING, 0, 0, &p.base);
        send_all(srv, out, n);
        for (;;) {
                Got g = next_frame(srv);

                if (g.h.type == VBUS_FRAME_PING)
                        return;
                if (g.h.stream_id == id)
                        die("server: got %s on its ended call", vbus__frame_type_name(g.h.type));
        }
}

/* The messages of "pieces": their sizes and fill bytes (the fourth goes in two fragments). */
static const uint32_t piece_len[] = {1, 63, 0, 100, 200};
static const char piece_fill[] = {'a', 'b', 'c', 'd', 'e'};
enum { N_PIECES = sizeof(piece_len) / sizeof(piece_len[0]), PIECE_SPLIT = 3, PIECE_FIRST = 40 };

/* Appends the messages of "pieces" on @stream, then END. */
static void put_pieces(uint8_t *out, size_t *n, uint32_t stream)
{
        for (unsigned i = 0; i < N_PIECES; i++) {
                if (i == PIECE_SPLIT) {
                        put_bytes(out, n, stream, VBUS_FLAG_MORE, piece_fill[i], PIECE_FIRST);
                        put_bytes(out, n, stream, 0, piece_fill[i], piece_len[i] - PIECE_FIRST);
                        continue;
                }
                put_bytes(out, n, stream, 0, piece_fill[i], piece_len[i]);
        }
        put_end(out, n, VBUS_FRAME_END, stream, VBUS__V1__STATUS__STATUS_OK);
}

/* Reads the messages of "pieces" on @stream (fragments joined) up to its END, and checks them. */
static void expect_pieces(Link *l, uint32_t stream)
{
        uint8_t msg[256];
        uint32_t got = 0, len = 0;

        for (;;) {
                Got g = next_frame(l);

                if (g.h.stream_id != stream)
                        continue;
                if (g.h.type == VBUS_FRAME_END)
                        break;
                if (g.h.type == VBUS_FRAME_CREDIT || g.h.type == VBUS_FRAME_ACCEPT)
                        continue;
                if (g.h.type != VBUS_FRAME_DATA)
                        die("%s: got %s in the pieces", l->name, vbus__frame_type_name(g.h.type));
                if (len + g.h.length > sizeof(msg) || g.h.length > sizeof(g.data) - 1)
                        die("%s: a message longer than sent", l->name);
                memcpy(msg + len, g.data, g.h.length);
                len += g.h.length;
                if (g.h.flags & VBUS_FLAG_MORE)
                        continue;
                if (got >= N_PIECES || len != piece_len[got])
                        die("%s: message %u has %u bytes", l->name, got, len);
                for (uint32_t i = 0; i < len; i++)
                        if (msg[i] != (uint8_t)piece_fill[got])
                                die("%s: message %u has a wrong byte at %u", l->name, got, i);
                got++;
                len = 0;
        }
        if (got != N_PIECES || len != 0)
                die("%s: %u whole messages before END, %u sent", l->name, got, N_PIECES);
}

int main(int argc, char **argv)
{
        Link srv, cli;
        const char *what;
        uint8_t out[8192];
        size_t n = 0;
        uint32_t id;
        int probe = -1;
        bool deadline;
        Got g;

        if (argc != 3)
                return 2;
        what = argv[2];
        (void)setvbuf(stdout, NULL, _IOLBF, 0); /* cannot fail: a valid mode */
        link_open(&srv, "server", argv[1]);
        link_open(&cli, "caller", argv[1]);
        hello(&srv);
        hello(&cli);
        put_open(out, &n, SERVE_ID, VBUS__V1__STREAM_KIND__STREAM_KIND_SERVE, "raw.v1.Svc", 0);
        send_all(&srv, out, n);
        (void)expect(&srv, SERVE_ID, VBUS_FRAME_ACCEPT);

        deadline = strcmp(what, "deadline") == 0 || strcmp(what, "deadline-tick") == 0;
        if (strcmp(what, "deadline-tick") == 0) {
                int first = probe_open(argv[1]);

                probe_wait_closed(first, "first probe");
                close(first);
                probe = probe_open(argv[1]);
        }
        n = 0;
        put_open(out, &n, CALL_ID, VBUS__V1__STREAM_KIND__STREAM_KIND_CALL, "raw.v1.Svc/Ping",
                 deadline ? 200000 : 0);
        if (strcmp(what, "pieces") == 0) {
                Vbus__V1__Accept a = VBUS__V1__ACCEPT__INIT;
                Got o;

                put_pieces(out, &n, CALL_ID);
                send_all(&cli, out, n);
                do
                        o = next_frame(&srv);
                while (o.h.type != VBUS_FRAME_OPEN);
                expect_pieces(&srv, o.h.stream_id);
                n = 0;
                a.initial_credit = 65536;
                put_control(out, &n, VBUS_FRAME_ACCEPT, 0, o.h.stream_id, &a.base);
                put_pieces(out, &n, o.h.stream_id);
                send_all(&srv, out, n);
                expect_pieces(&cli, CALL_ID);
                printf("ok\n");
                close(cli.fd);
                close(srv.fd);
                free(cli.buf);
                free(srv.buf);
                return 0;
        }
        put_data(out, &n, CALL_ID, "ping");
        if (strcmp(what, "streaming") != 0)
                put_end(out, &n, VBUS_FRAME_END, CALL_ID, VBUS__V1__STATUS__STATUS_OK);
        send_all(&cli, out, n);

        if (strcmp(what, "unary") == 0 || strcmp(what, "exits") == 0) {
                id = server_take_call(&srv, true);
                server_answer(&srv, id, false);
                if (strcmp(what, "exits") == 0) {
                        close(srv.fd);
                        srv.fd = -1;
                }
                g = expect(&cli, CALL_ID, VBUS_FRAME_ACCEPT);
                if (!g.peer_local)
                        die("caller: the ACCEPT does not name the (local) server");
                g = expect(&cli, CALL_ID, VBUS_FRAME_DATA);
                if (strcmp((const char *)g.data, "pong") != 0)
                        die("caller: the reply is '%s'", g.data);
                g = expect(&cli, CALL_ID, VBUS_FRAME_END);
                if (g.status != VBUS__V1__STATUS__STATUS_OK)
                        die("caller: END status %d", g.status);
                if (strcmp(what, "unary") == 0)
                        server_expect_quiet(&srv, id);
        } else if (strcmp(what, "streaming") == 0) {
                id = server_take_call(&srv, false);
                /* The server holds its answer: the ACCEPT must come without it. */
                (void)expect(&cli, CALL_ID, VBUS_FRAME_ACCEPT);
                n = 0;
                put_end(out, &n, VBUS_FRAME_END, CALL_ID, VBUS__V1__STATUS__STATUS_OK);
                send_all(&cli, out, n);
                (void)expect(&srv, id, VBUS_FRAME_END);
                server_answer(&srv, id, false);
                do
                        g = next_frame(&cli);
                while (g.h.stream_id == CALL_ID && g.h.type == VBUS_FRAME_CREDIT);
                if (g.h.stream_id != CALL_ID || g.h.type != VBUS_FRAME_DATA)
                        die("caller: got %s where DATA was due", vbus__frame_type_name(g.h.type));
                (void)expect(&cli, CALL_ID, VBUS_FRAME_END);
        } else if (deadline) {
                id = server_take_call(&srv, true);
                (void)expect(&cli, CALL_ID, VBUS_FRAME_ACCEPT);
                g = expect(&cli, CALL_ID, VBUS_FRAME_RESET);
                if (g.status != VBUS__V1__STATUS__STATUS_DEADLINE_EXCEEDED)
                        die("caller: RESET status %d", g.status);
                if (probe >= 0 && probe_is_closed(probe))
                        die("caller: the 200 ms deadline was enforced only after the broker's "
                            "next tick (its timer does not wake it for deadlines)");
                (void)expect(&srv, id, VBUS_FRAME_RESET);
                if (probe >= 0) {
                        /* The probe does measure the tick: the broker closes it in the end. */
                        probe_wait_closed(probe, "second probe");
                        close(probe);
                }
        } else if (strcmp(what, "reject") == 0) {
                id = server_take_call(&srv, true);
                server_answer(&srv, id, true);
                (void)expect(&cli, CALL_ID, VBUS_FRAME_ACCEPT);
                g = expect(&cli, CALL_ID, VBUS_FRAME_RESET);
                if (g.status != VBUS__V1__STATUS__STATUS_PERMISSION_DENIED)
                        die("caller: RESET status %d", g.status);
        } else {
                return 2;
        }
        printf("ok\n");
        close(cli.fd);
        if (srv.fd >= 0)
                close(srv.fd);
        free(cli.buf);
        free(srv.buf);
        return 0;
}
