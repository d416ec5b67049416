/* SPDX-License-Identifier: MIT */
/*
 * rawpeer: a hostile local client for the integration tests. It speaks the wire protocol by hand
 * (libbus codec, no session rules) over the broker's UNIX socket and tries to break a rule:
 *
 *   rawpeer SOCKET meta      publishes a DATA frame carrying a forged Meta (claims to be dom0)
 *   rawpeer SOCKET caller    opens a CALL naming a forged caller identity
 *   rawpeer SOCKET garbage   sends bytes that are not frames
 *   rawpeer SOCKET oversize  announces a payload above the negotiated maximum
 *   rawpeer SOCKET nohello   opens a stream before HELLO
 *
 * Exits 0 if the broker answered with ERROR{PROTOCOL_ERROR} and closed the link, 1 otherwise.
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

static void hello(void)
{
        Vbus__V1__Hello h = VBUS__V1__HELLO__INIT;

        h.version_min = 1;
        h.version_max = 1;
        h.max_frame = VBUS_FRAME_MAX_DEFAULT;
        raw_send_control(fd, VBUS_FRAME_HELLO, 0, &h.base, 0);
}

static void open_stream(uint32_t id, Vbus__V1__StreamKind kind, const char *name,
                        Vbus__V1__Identity *caller)
{
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;

        o.kind = kind;
        o.name = (char *)name;
        o.initial_credit = 65536;
        o.caller = caller;
        raw_send_control(fd, VBUS_FRAME_OPEN, id, &o.base, 0);
}

/* Reads until the broker closes; returns 0 if an ERROR with PROTOCOL_ERROR came first. */
static int expect_protocol_error(void)
{
        VbusFrameDecoder d;
        uint8_t buf[65536];
        int got_error = 0;

        vbus__frame_decoder_init(&d, VBUS_FRAME_MAX_LIMIT);
        for (;;) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                ssize_t n;
                size_t pos = 0;

                if (poll(&pfd, 1, 10000) <= 0) {
                        fprintf(stderr, "rawpeer: the broker kept the link open\n");
                        return 1;
                }
                n = recv(fd, buf, sizeof(buf), 0);
                if (n <= 0)
                        break;
                while (pos < (size_t)n) {
                        VbusFrame f;
                        size_t used;
                        int r = vbus__frame_decoder_feed(&d, buf + pos, (size_t)n - pos, &used, &f);

                        if (r < 0)
                                return 1;
                        pos += used;
                        if (r == 0)
                                break;
                        if (f.header.type == VBUS_FRAME_ERROR) {
                                VbusControl c = VBUS_CONTROL_NULL;

                                if (vbus__control_decode(&f.header, f.payload, 65536, &c) == 0) {
                                        const Vbus__V1__Error *e = (const Vbus__V1__Error *)c.msg;

                                        printf("broker: ERROR %d: %s\n", e->status, e->message);
                                        got_error = e->status ==
                                                    VBUS__V1__STATUS__STATUS_PROTOCOL_ERROR;
                                        vbus__control_deinit(&c);
                                }
                        }
                }
        }
        vbus__frame_decoder_deinit(&d);
        return got_error ? 0 : 1;
}

int main(int argc, char **argv)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        const char *what;

        if (argc != 3 || strlen(argv[1]) >= sizeof(sa.sun_path))
                return 2;
        what = argv[2];
        memcpy(sa.sun_path, argv[1], strlen(argv[1]) + 1); /* its length checked above */
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                perror("rawpeer: connect");
                return 1;
        }
        if (strcmp(what, "nohello") != 0 && strcmp(what, "garbage") != 0) {
                uint8_t buf[256];

                hello();
                (void)recv(fd, buf, sizeof(buf), 0); /* the broker's HELLO */
        }
        if (strcmp(what, "meta") == 0) {
                static const uint8_t forged[6] = "forged"; /* the payload: bytes, no NUL */
                Vbus__V1__Meta m = VBUS__V1__META__INIT;
                Vbus__V1__Identity id = VBUS__V1__IDENTITY__INIT;
                uint8_t buf[512];
                size_t n;
                int k;
                VbusFrameHeader h = {
                        .type = VBUS_FRAME_DATA, .flags = VBUS_FLAG_META, .stream_id = 1};

                open_stream(1, VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "lies.about.me", NULL);
                id.domid = 0;
                id.domain_name = (char *)"Domain-0";
                m.topic = (char *)"lies.about.me";
                m.sender = &id;
                n = protobuf_c_message_get_packed_size(&m.base);
                k = vbus__meta_encode_prefix(n, buf + VBUS_FRAME_HEADER_SIZE);
                protobuf_c_message_pack(&m.base, buf + VBUS_FRAME_HEADER_SIZE + k);
                memcpy(buf + VBUS_FRAME_HEADER_SIZE + k + n, forged, sizeof(forged));
                h.length = (uint32_t)(k + n + sizeof(forged));
                vbus__frame_header_encode(&h, buf);
                raw_send_all(fd, buf, VBUS_FRAME_HEADER_SIZE + h.length, 0);
        } else if (strcmp(what, "caller") == 0) {
                Vbus__V1__Identity id = VBUS__V1__IDENTITY__INIT;

                id.domid = 0;
                id.domain_name = (char *)"Domain-0";
                open_stream(1, VBUS__V1__STREAM_KIND__STREAM_KIND_CALL, "storage.v1.Store/Get",
                            &id);
        } else if (strcmp(what, "garbage") == 0) {
                raw_send_all(fd, (const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18, 0);
        } else if (strcmp(what, "oversize") == 0) {
                VbusFrameHeader h = {
                        .type = VBUS_FRAME_DATA, .stream_id = 1, .length = VBUS_FRAME_MAX_LIMIT};
                uint8_t raw[VBUS_FRAME_HEADER_SIZE];

                open_stream(1, VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "big", NULL);
                vbus__frame_header_encode(&h, raw);
                raw_send_all(fd, raw, sizeof(raw), 0);
        } else if (strcmp(what, "nohello") == 0) {
                open_stream(1, VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, "early", NULL);
        } else {
                return 2;
        }
        return expect_protocol_error();
}
