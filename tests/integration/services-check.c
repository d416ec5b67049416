/* SPDX-License-Identifier: MIT */
/*
 * services-check: the broker's own service (vbus.v1.Broker) misused, for the integration tests.
 *
 *   services-check errors
 *       over one libvbus link ($VBUS_URL): requests that are not a valid ListServicesRequest
 *       (garbage, a NUL inside the prefix, a prefix that cannot start a service name, more bytes
 *       than the request limit) get INVALID_ARGUMENT, an unknown method NOT_FOUND, and then a
 *       valid ListServices still succeeds on the same link, which never reconnected. Prints
 *       "STATUS what" per call.
 *   services-check raw SOCKET
 *       speaks the wire protocol by hand on the broker's UNIX socket: SERVE vbus.v1.Broker and
 *       SERVE vbus.Other are refused with PERMISSION_DENIED; a ListServices call whose request
 *       never ends is reset with DEADLINE_EXCEEDED when its 300 ms deadline passes; a
 *       ListServices call that grants a 16-byte window gets its whole reply through CREDITs and
 *       then END{OK}; a PING is still answered.
 *
 * Exits 0 if everything went as described, 1 otherwise.
 */
#include <errno.h>
#include <poll.h>
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
#include "vbus/v1/broker.pb-c.h"

static const char method[] = "vbus.v1.Broker/ListServices";

/* --- errors: through libvbus --------------------------------------------------------------- */

static int expect_call(vbus_conn *c, const char *m, const void *req, size_t n, int expect,
                       const char *what)
{
        vbus_reply *reply = NULL;
        int r = vbus_call_sync(c, m, req, n, 5000000, &reply), st;

        if (r < 0) {
                printf("error %s: %s\n", what, strerror(-r));
                return 1;
        }
        st = vbus_reply_get_status(reply);
        printf("%s %s: %s\n", vbus_status_name(st), what, vbus_reply_get_message(reply));
        if (st == VBUS_STATUS_OK) {
                size_t len;
                const void *d = vbus_reply_get_data(reply, &len);
                Vbus__V1__ListServicesReply *m2 =
                        vbus__v1__list_services_reply__unpack(NULL, len, d);

                if (!m2) {
                        printf("the reply does not decode\n");
                        st = -1;
                }
                vbus__v1__list_services_reply__free_unpacked(m2, NULL);
        }
        vbus_reply_free(reply);
        return st == expect ? 0 : 1;
}

static int cmd_errors(void)
{
        static const uint8_t nul_prefix[] = {0x0a, 0x03, 'a', 0x00, 'b'};
        Vbus__V1__ListServicesRequest rq = VBUS__V1__LIST_SERVICES_REQUEST__INIT;
        uint8_t bad_chars[64], *big;
        vbus_conn *c = NULL;
        size_t n;
        int fails = 0;

        if (vbus_conn_open(NULL, &c) < 0 || vbus_conn_wait_ready(c, 15000000) < 0) {
                fprintf(stderr, "services-check: no broker\n");
                return 1;
        }
        rq.prefix = (char *)"a/b";
        n = vbus__v1__list_services_request__pack(&rq, bad_chars);
        big = calloc(1, 5000);
        if (!big)
                return 1;
        fails += expect_call(c, method, "garbage", 7, VBUS_STATUS_INVALID_ARGUMENT, "garbage");
        fails += expect_call(c, method, nul_prefix, sizeof(nul_prefix),
                             VBUS_STATUS_INVALID_ARGUMENT, "NUL in the prefix");
        fails += expect_call(c, method, bad_chars, n, VBUS_STATUS_INVALID_ARGUMENT, "prefix a/b");
        fails += expect_call(c, method, big, 5000, VBUS_STATUS_INVALID_ARGUMENT,
                             "5000-byte request");
        fails += expect_call(c, "vbus.v1.Broker/Nope", "", 0, VBUS_STATUS_NOT_FOUND,
                             "unknown method");
        fails += expect_call(c, method, "", 0, VBUS_STATUS_OK, "valid request");
        free(big);
        if (vbus_conn_get_reconnects(c) != 0) {
                printf("the link was re-established %llu times\n",
                       (unsigned long long)vbus_conn_get_reconnects(c));
                fails++;
        }
        vbus_conn_free(c);
        return fails ? 1 : 0;
}

/* --- raw: by hand on the UNIX socket ------------------------------------------------------- */

static int fd = -1;
static VbusFrameDecoder dec;
static uint8_t rbuf[65536];
static size_t rpos, rlen;

static void send_data(uint32_t stream, const void *data, size_t n)
{
        uint8_t buf[VBUS_FRAME_HEADER_SIZE + 256];
        VbusFrameHeader h = {.type = VBUS_FRAME_DATA, .stream_id = stream, .length = (uint32_t)n};

        if (n > 256)
                return;
        vbus__frame_header_encode(&h, buf);
        memcpy(buf + VBUS_FRAME_HEADER_SIZE, data, n);
        raw_send_all(fd, buf, VBUS_FRAME_HEADER_SIZE + n, 0);
}

/* The next frame from the broker (payload valid until the next call). Return: 0, or -1 when
 * the link closed, broke or stayed silent for 10 s. */
static int next_frame(VbusFrame *f)
{
        for (;;) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                ssize_t n;

                while (rpos < rlen) {
                        size_t used;
                        int r = vbus__frame_decoder_feed(&dec, rbuf + rpos, rlen - rpos, &used, f);

                        if (r < 0)
                                return -1;
                        rpos += used;
                        if (r == 1)
                                return 0;
                }
                if (poll(&pfd, 1, 10000) <= 0)
                        return -1;
                n = recv(fd, rbuf, sizeof(rbuf), 0);
                if (n <= 0)
                        return -1;
                rpos = 0;
                rlen = (size_t)n;
        }
}

/* Waits for REJECT or RESET on @stream (skipping other frames); returns its status or -1. */
static int wait_refusal(uint32_t stream, char *msg, size_t n_msg)
{
        VbusFrame f;

        msg[0] = '\0';
        while (next_frame(&f) == 0) {
                VbusControl c = VBUS_CONTROL_NULL;
                int st;

                if (f.header.stream_id != stream ||
                    (f.header.type != VBUS_FRAME_REJECT && f.header.type != VBUS_FRAME_RESET))
                        continue;
                if (vbus__control_decode(&f.header, f.payload, 65536, &c) != 0)
                        return -1;
                if (f.header.type == VBUS_FRAME_REJECT) {
                        st = ((const Vbus__V1__Reject *)c.msg)->status;
                        /* Cut to n_msg (1100) if longer: it is only shown in a report. */
                        (void)snprintf(msg, n_msg, "%s",
                                       ((const Vbus__V1__Reject *)c.msg)->message);
                } else {
                        st = ((const Vbus__V1__End *)c.msg)->status;
                        (void)snprintf(msg, n_msg, "%s", ((const Vbus__V1__End *)c.msg)->message);
                }
                vbus__control_deinit(&c);
                return st;
        }
        return -1;
}

static void open_stream(uint32_t id, Vbus__V1__StreamKind kind, const char *name, uint32_t credit,
                        uint64_t timeout_us)
{
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;

        o.kind = kind;
        o.name = (char *)name;
        o.initial_credit = credit;
        o.timeout_us = timeout_us;
        raw_send_control(fd, VBUS_FRAME_OPEN, id, &o.base, 0);
}

static int check_status(const char *what, int got, int want, const char *msg)
{
        printf("%s: %s: %s\n", what, got < 0 ? "(no answer)" : vbus_status_name(got), msg);
        return got == want ? 0 : 1;
}

/* A ListServices call with a 16-byte window: the reply comes in pieces as CREDIT allows. */
static int small_window_call(uint32_t id)
{
        Vbus__V1__End end = VBUS__V1__END__INIT;
        Vbus__V1__ListServicesReply *m;
        uint8_t reply[65536];
        size_t n_reply = 0, n_frames = 0;
        VbusFrame f;

        open_stream(id, VBUS__V1__STREAM_KIND__STREAM_KIND_CALL, method, 16, 10000000);
        send_data(id, "", 0);
        end.status = VBUS__V1__STATUS__STATUS_OK;
        raw_send_control(fd, VBUS_FRAME_END, id, &end.base, 0);
        while (next_frame(&f) == 0) {
                if (f.header.stream_id != id)
                        continue;
                if (f.header.type == VBUS_FRAME_DATA) {
                        Vbus__V1__Credit cr = VBUS__V1__CREDIT__INIT;

                        if (f.header.length > 16 || n_reply + f.header.length > sizeof(reply)) {
                                printf("small window: a DATA frame of %u bytes\n", f.header.length);
                                return 1;
                        }
                        memcpy(reply + n_reply, f.payload, f.header.length);
                        n_reply += f.header.length;
                        n_frames++;
                        cr.increment = f.header.length ? f.header.length : 1;
                        raw_send_control(fd, VBUS_FRAME_CREDIT, id, &cr.base, 0);
                } else if (f.header.type == VBUS_FRAME_END) {
                        VbusControl c = VBUS_CONTROL_NULL;
                        int st = -1;

                        if (vbus__control_decode(&f.header, f.payload, 65536, &c) == 0)
                                st = ((const Vbus__V1__End *)c.msg)->status;
                        vbus__control_deinit(&c);
                        m = vbus__v1__list_services_reply__unpack(NULL, n_reply, reply);
                        printf("small window: %zu bytes in %zu DATA frames, %s, %u services\n",
                               n_reply, n_frames, vbus_status_name(st), m ? m->total_services : 0);
                        if (!m || st != VBUS_STATUS_OK || m->total_services == 0 || n_frames < 2)
                                st = -1;
                        vbus__v1__list_services_reply__free_unpacked(m, NULL);
                        return st == VBUS_STATUS_OK ? 0 : 1;
                } else if (f.header.type == VBUS_FRAME_RESET) {
                        printf("small window: RESET\n");
                        return 1;
                }
        }
        printf("small window: no END\n");
        return 1;
}

static int cmd_raw(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        Vbus__V1__Hello h = VBUS__V1__HELLO__INIT;
        Vbus__V1__Ping ping = VBUS__V1__PING__INIT;
        char msg[1100];
        int fails = 0;
        VbusFrame f;

        if (strlen(path) >= sizeof(sa.sun_path))
                return 2;
        memcpy(sa.sun_path, path, strlen(path) + 1); /* its length checked above */
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                perror("services-check: connect");
                return 1;
        }
        vbus__frame_decoder_init(&dec, VBUS_FRAME_MAX_LIMIT);
        h.version_min = 1;
        h.version_max = 1;
        h.max_frame = VBUS_FRAME_MAX_DEFAULT;
        raw_send_control(fd, VBUS_FRAME_HELLO, 0, &h.base, 0);
        if (next_frame(&f) < 0 || f.header.type != VBUS_FRAME_HELLO) {
                printf("no HELLO from the broker\n");
                return 1;
        }

        open_stream(1, VBUS__V1__STREAM_KIND__STREAM_KIND_SERVE, "vbus.v1.Broker", 0, 0);
        fails += check_status("serve vbus.v1.Broker", wait_refusal(1, msg, sizeof(msg)),
                              VBUS_STATUS_PERMISSION_DENIED, msg);
        open_stream(3, VBUS__V1__STREAM_KIND__STREAM_KIND_SERVE, "vbus.Other", 0, 0);
        fails += check_status("serve vbus.Other", wait_refusal(3, msg, sizeof(msg)),
                              VBUS_STATUS_PERMISSION_DENIED, msg);
        /* A request that never ends: the broker's deadline, not ours, ends the call. */
        open_stream(5, VBUS__V1__STREAM_KIND__STREAM_KIND_CALL, method, 65536, 300000);
        send_data(5, "\x0a\x01", 2);
        fails += check_status("request never ended", wait_refusal(5, msg, sizeof(msg)),
                              VBUS_STATUS_DEADLINE_EXCEEDED, msg);
        fails += small_window_call(7);

        ping.opaque = 42;
        raw_send_control(fd, VBUS_FRAME_PING, 0, &ping.base, 0);
        for (;;) {
                if (next_frame(&f) < 0) {
                        printf("no PING answer: the link is gone\n");
                        fails++;
                        break;
                }
                if (f.header.type == VBUS_FRAME_PING && (f.header.flags & VBUS_FLAG_ACK)) {
                        printf("PING answered: the link is up\n");
                        break;
                }
        }
        vbus__frame_decoder_deinit(&dec);
        close(fd);
        return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
        (void)setvbuf(stdout, NULL, _IOLBF, 0); /* cannot fail: a valid mode */
        if (argc == 2 && strcmp(argv[1], "errors") == 0)
                return cmd_errors();
        if (argc == 3 && strcmp(argv[1], "raw") == 0)
                return cmd_raw(argv[2]);
        fprintf(stderr, "usage: services-check errors | raw SOCKET\n");
        return 2;
}
