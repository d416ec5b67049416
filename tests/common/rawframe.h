/* SPDX-License-Identifier: MIT */
/*
 * rawframe: writing frames by hand, for the test programs that play a hostile or scripted peer
 * (tests/integration/rawpeer.c, services-check.c, tests/fuzz/fuzz-client.c). Header-only.
 */
#ifndef VBUS_TESTS_RAWFRAME_H
#define VBUS_TESTS_RAWFRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "control.h"
#include "frame.h"

/* Sends all of @p on @fd (with @flags added to MSG_NOSIGNAL); stops quietly when the other end
 * is gone or, with MSG_DONTWAIT, full: a scripted peer does not care. */
static inline void raw_send_all(int fd, const uint8_t *p, size_t n, int flags)
{
        while (n > 0) {
                ssize_t w = send(fd, p, n, MSG_NOSIGNAL | flags);

                if (w <= 0)
                        return;
                p += w;
                n -= (size_t)w;
        }
}

/* Encodes and sends one control frame. */
static inline void raw_send_control(int fd, uint8_t type, uint32_t stream,
                                    const ProtobufCMessage *m, int flags)
{
        static uint8_t buf[VBUS_FRAME_HEADER_SIZE + VBUS_CONTROL_MAX];
        VbusSegments out = {{buf, NULL}, {sizeof(buf), 0}};
        VbusFrameHeader h = {.type = type, .stream_id = stream};
        size_t n;

        if (vbus__control_encode(&h, m, &out, &n) == 0)
                raw_send_all(fd, buf, n, flags);
}

#endif /* VBUS_TESTS_RAWFRAME_H */
