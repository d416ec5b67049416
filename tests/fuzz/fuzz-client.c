/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the client library as a hostile broker (or a hostile peer behind an honest
 * one) sees it: everything a vbus_conn does with the frames it reads, its session rules, calls,
 * streaming calls at both ends, servers and requests.
 *
 * For each input a vbus_conn connects over a UNIX socket to this harness, which answers HELLO,
 * lets the client open a unary call, a streaming call and a server (with a streaming method),
 * and then plays the input as a script of frames toward the client: each step is
 *   [op] [stream selector] [argument] [length] [length bytes]
 * and becomes DATA (MORE from the argument), END or RESET (a status from it), ACCEPT, REJECT,
 * CREDIT, an OPEN of a call toward the served service (even ids, as the broker opens them), or
 * raw bytes. An input of odd length gets a HELLO with MESSAGE_CHARGE (protocol.md 5.4), so that
 * the charged window rules are played too. The client processes after every step; its callbacks
 * answer, stream, pause and cancel as the data tells them. A crash, a leak, an over-read or
 * undefined behaviour is a finding; a link the client drops as a protocol error is a correct
 * outcome.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <vbus/vbus.h>

#include "../common/rawframe.h"
#include "control.h"
#include "frame.h"
#include "fuzz-listen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int listen_fd = -1;

/* Streams the script may name: the client's three (learnt from its OPENs) and ours. */
static uint32_t ids[8];
static size_t n_ids;
static uint32_t next_even = 2;
static vbus_request *kept; /* a request the server keeps to answer at the end */

static void setup(void)
{
        if (listen_fd >= 0)
                return;
        listen_fd = fuzz_listen("client", 0);
}

static void send_data(int fd, uint32_t stream, uint8_t flags, const uint8_t *p, size_t n)
{
        uint8_t hdr[VBUS_FRAME_HEADER_SIZE];
        VbusFrameHeader h = {.type = VBUS_FRAME_DATA,
                             .flags = flags,
                             .stream_id = stream,
                             .length = (uint32_t)n};

        vbus__frame_header_encode(&h, hdr);
        raw_send_all(fd, hdr, sizeof(hdr), MSG_DONTWAIT);
        raw_send_all(fd, p, n, MSG_DONTWAIT);
}

/* Reads what the client wrote; remembers the ids of the streams it opened. */
static void drain(int fd, VbusFrameDecoder *d)
{
        uint8_t buf[65536];
        ssize_t n;

        while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
                size_t pos = 0;

                while (pos < (size_t)n) {
                        VbusFrame f;
                        size_t used = 0;
                        int r = vbus__frame_decoder_feed(d, buf + pos, (size_t)n - pos, &used, &f);

                        if (r < 0)
                                return;
                        pos += used;
                        if (r == 0)
                                break;
                        if (f.header.type == VBUS_FRAME_OPEN && n_ids < 3)
                                ids[n_ids++] = f.header.stream_id;
                }
        }
}

/* --- the client's callbacks: what they do comes from the data they get --------------- */

static void on_reply(vbus_call *call, const vbus_reply *reply, void *userdata)
{
        (void)call;
        (void)userdata;
        (void)vbus_reply_get_status(reply);
}

static void st_message(vbus_stream *st, const void *data, size_t n, void *userdata)
{
        const uint8_t *p = data;

        (void)userdata;
        if (!p) {
                if (vbus_stream_get_request(st))
                        (void)vbus_stream_finish(st, VBUS_STATUS_OK, NULL);
                return;
        }
        switch (n > 0 ? p[0] % 6 : 0) {
        case 1:
                (void)vbus_stream_send(st, p, n);
                break;
        case 2:
                (void)vbus_stream_set_paused(st, true);
                break;
        case 3:
                (void)vbus_stream_cancel(st);
                break;
        case 4:
                if (vbus_stream_get_request(st))
                        (void)vbus_stream_finish(st, n > 1 ? p[1] % 15 : 1, "done");
                else
                        (void)vbus_stream_close_send(st);
                break;
        default:
                break;
        }
}

static void st_end(vbus_stream *st, int status, const char *message, void *userdata)
{
        (void)st;
        (void)status;
        (void)message;
        (void)userdata;
}

static void st_writable(vbus_stream *st, void *userdata)
{
        (void)userdata;
        (void)vbus_stream_send(st, "w", 1);
}

static const vbus_stream_handlers handlers = {
        .on_message = st_message, .on_end = st_end, .on_writable = st_writable};

static void on_request(vbus_server *srv, vbus_request *req, void *userdata)
{
        size_t n;
        const uint8_t *p = vbus_request_get_data(req, &n);
        vbus_stream *st;

        (void)srv;
        (void)userdata;
        (void)vbus_request_find_header(req, "k", NULL);
        switch (n > 0 ? p[0] % 4 : 0) {
        case 0:
                (void)vbus_request_reply(req, p, n);
                break;
        case 1:
                (void)vbus_request_fail(req, n > 1 ? p[1] % 16 : 9, "no");
                break;
        case 2:
                if (vbus_request_stream(req, &handlers, NULL, &st) == 0)
                        (void)vbus_stream_send(st, "s", 1);
                break;
        default:
                if (kept)
                        (void)vbus_request_reply(kept, NULL, 0);
                kept = req;
                break;
        }
}

static void on_stream_call(vbus_server *srv, vbus_request *req, void *userdata)
{
        vbus_stream *st;

        (void)srv;
        (void)userdata;
        if (!kept && vbus_request_get_n_headers(req) > 0) {
                kept = req; /* taken as a stream never: answered at the end */
                return;
        }
        (void)vbus_request_stream(req, &handlers, NULL, &st);
}

/* --- the script ----------------------------------------------------------------------- */

static void play(int fd, const uint8_t *data, size_t size, vbus_conn *c, VbusFrameDecoder *d)
{
        size_t off = 0;

        while (off + 4 <= size) {
                uint8_t op = data[off], sel = data[off + 1], arg = data[off + 2];
                size_t len = data[off + 3];
                const uint8_t *p = data + off + 4;
                uint32_t id;

                if (len > size - off - 4)
                        len = size - off - 4;
                off += 4 + len;
                id = n_ids > 0 ? ids[sel % n_ids] : 1;
                switch (op % 9) {
                case 0:
                        send_data(fd, id, arg & 1 ? VBUS_FLAG_MORE : 0, p, len);
                        break;
                case 1:
                case 2: {
                        Vbus__V1__End e = VBUS__V1__END__INIT;
                        char msg[64];

                        /* At most 63 bytes by the precision: it fits. */
                        (void)snprintf(msg, sizeof(msg), "%.*s", (int)(len < 63 ? len : 63),
                                       (const char *)p);
                        e.status = arg % 14;
                        e.message = memchr(p, 0, len) ? (char *)"" : msg;
                        raw_send_control(fd, op % 9 == 1 ? VBUS_FRAME_END : VBUS_FRAME_RESET, id,
                                         &e.base, MSG_DONTWAIT);
                        break;
                }
                case 3: {
                        Vbus__V1__Accept a = VBUS__V1__ACCEPT__INIT;

                        a.initial_credit = (uint32_t)arg << (len % 24);
                        raw_send_control(fd, VBUS_FRAME_ACCEPT, id, &a.base, MSG_DONTWAIT);
                        break;
                }
                case 4: {
                        Vbus__V1__Reject rj = VBUS__V1__REJECT__INIT;

                        rj.status = arg % 14;
                        raw_send_control(fd, VBUS_FRAME_REJECT, id, &rj.base, MSG_DONTWAIT);
                        break;
                }
                case 5: {
                        Vbus__V1__Credit cr = VBUS__V1__CREDIT__INIT;

                        cr.increment = (uint32_t)arg << (len % 24);
                        raw_send_control(fd, VBUS_FRAME_CREDIT, id, &cr.base, MSG_DONTWAIT);
                        break;
                }
                case 6: {
                        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;
                        Vbus__V1__Identity who = VBUS__V1__IDENTITY__INIT;
                        Vbus__V1__Header h = VBUS__V1__HEADER__INIT, *hp = &h;

                        o.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_CALL;
                        o.name = arg & 1 ? (char *)"f.v1.S/Bidi" : (char *)"f.v1.S/Unary";
                        o.initial_credit = arg & 2 ? 65536 : (uint32_t)len;
                        o.timeout_us = arg & 4 ? 1 : 0;
                        who.domid = 7;
                        o.caller = &who;
                        if (arg & 8) {
                                h.key = (char *)"k";
                                h.value.data = (uint8_t *)p;
                                h.value.len = len;
                                o.headers = &hp;
                                o.n_headers = 1;
                        }
                        raw_send_control(fd, VBUS_FRAME_OPEN, next_even, &o.base, MSG_DONTWAIT);
                        if (n_ids < sizeof(ids) / sizeof(ids[0]))
                                ids[n_ids++] = next_even;
                        next_even += 2;
                        break;
                }
                case 7:
                        raw_send_all(fd, p, len, MSG_DONTWAIT);
                        break;
                default: {
                        Vbus__V1__Ping ping = VBUS__V1__PING__INIT;

                        raw_send_control(fd, VBUS_FRAME_PING, 0, &ping.base, MSG_DONTWAIT);
                        break;
                }
                }
                for (int i = 0; i < 3; i++) {
                        (void)vbus_conn_process(c);
                        drain(fd, d);
                }
                if (vbus_conn_get_state(c) != VBUS_CONN_READY)
                        return; /* the client dropped the link: a protocol error, as it should */
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        Vbus__V1__Hello hello = VBUS__V1__HELLO__INIT;
        VbusFrameDecoder d;
        vbus_conn *c = NULL;
        vbus_server *srv = NULL;
        vbus_stream *st = NULL;
        char url[128];
        int fd;

        setup();
        n_ids = 0;
        next_even = 2;
        kept = NULL;
        if ((size_t)snprintf(url, sizeof(url), "unix:%s", fuzz_sock_path) >= sizeof(url) ||
            vbus_conn_open(url, &c) < 0)
                abort();
        (void)vbus_conn_process(c); /* connects and sends HELLO */
        fd = accept(listen_fd, NULL, NULL);
        if (fd < 0)
                abort();
        vbus__frame_decoder_init(&d, VBUS_FRAME_MAX_LIMIT);
        hello.version_min = 1;
        hello.version_max = 1;
        hello.version = 1;
        hello.max_frame = VBUS_FRAME_MAX_DEFAULT;
        hello.features = size & 1 ? VBUS_FEATURE_MESSAGE_CHARGE : 0;
        raw_send_control(fd, VBUS_FRAME_HELLO, 0, &hello.base, MSG_DONTWAIT);
        for (int i = 0; i < 50 && vbus_conn_get_state(c) != VBUS_CONN_READY; i++) {
                drain(fd, &d);
                (void)vbus_conn_process(c);
        }
        if (vbus_conn_get_state(c) == VBUS_CONN_READY) {
                vbus_call_options o = {.timeout_usec = 60000000u};

                (void)vbus_call_start_opts(c, "f.v1.S/Unary", "q", 1, &o, on_reply, NULL, NULL);
                (void)vbus_stream_open(c, "f.v1.S/Bidi", &o, &handlers, NULL, &st);
                (void)vbus_serve(c, "f.v1.S", on_request, NULL, &srv);
                (void)vbus_server_stream_method(srv, "Bidi", on_stream_call, NULL);
                (void)vbus_conn_process(c);
                drain(fd, &d);
                play(fd, data, size, c, &d);
        }
        if (kept)
                (void)vbus_request_reply(kept, NULL, 0);
        close(fd);
        for (int i = 0; i < 3; i++)
                (void)vbus_conn_process(c); /* sees the link go: every outcome is delivered */
        vbus_conn_free(c);
        vbus__frame_decoder_deinit(&d);
        return 0;
}
