/* SPDX-License-Identifier: MIT */
/*
 * rawsub: a DROP subscriber that grants no credit, written by hand (libbus codec, no libvbus
 * session), so that a test can see exactly how many messages the broker keeps for it:
 *
 *   rawsub SOCKET LIMIT COUNT SIZE KEPT
 *
 * On one link to the broker's UNIX socket it
 *   1. subscribes to "rawsub.q" (DROP, Open.queue_limit = LIMIT, 0 = the broker's default)
 *      with initial_credit 0: the broker can deliver nothing, so it must queue or drop;
 *   2. publishes COUNT messages of SIZE bytes (>= 8; the first 8 bytes are the sequence number
 *      1..COUNT) to "rawsub.q" on the same link, then sends a PING: the broker reads a link in
 *      order, so when the PING's answer arrives every message has been queued or dropped;
 *   3. grants credit, waits for KEPT messages, then publishes a marker (sequence COUNT + 1) and
 *      requires it to be the very next delivery.
 * The checks: the deliveries are messages 1..KEPT then the marker, nothing else (the broker
 * kept exactly the first KEPT); the first delivery's Meta.dropped is COUNT - KEPT and every
 * other's is 0 (each drop reported once, in the next delivery); Meta.sequence counts 1, 2, ...
 * Prints one line per delivery; exits 0 when every check held, 1 otherwise (the reason on
 * stderr). Every wait is bounded (10 s).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/rawframe.h"
#include "control.h"
#include "frame.h"

enum { WAIT_MS = 10000, BUF_SIZE = 1 << 20, SUB_ID = 1, PUB_ID = 3 };

static const char TOPIC[] = "rawsub.q";

static int fd = -1;
static uint8_t buf[BUF_SIZE];
static size_t n_buf;

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        fputs("rawsub: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        exit(1);
}

/* The next frame from the broker, waiting at most WAIT_MS; its payload is copied to @payload
 * (at most @size bytes, the frame's length is in the header). */
static VbusFrameHeader next_frame(uint8_t *payload, size_t size)
{
        for (;;) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                VbusFrameHeader h = {0};
                size_t whole;
                ssize_t r;

                if (n_buf >= VBUS_FRAME_HEADER_SIZE &&
                    vbus__frame_header_decode(buf, n_buf, VBUS_FRAME_MAX_LIMIT, &h) != 0)
                        die("bad frame header from the broker");
                whole = VBUS_FRAME_HEADER_SIZE + (size_t)h.length;
                if (n_buf >= VBUS_FRAME_HEADER_SIZE && n_buf >= whole) {
                        if (h.length > size)
                                die("%s frame of %u bytes", vbus__frame_type_name(h.type),
                                    h.length);
                        memcpy(payload, buf + VBUS_FRAME_HEADER_SIZE, h.length);
                        n_buf -= whole;
                        memmove(buf, buf + whole, n_buf);
                        return h;
                }
                if (poll(&pfd, 1, WAIT_MS) <= 0)
                        die("nothing from the broker in %d ms", WAIT_MS);
                r = recv(fd, buf + n_buf, sizeof(buf) - n_buf, 0);
                if (r <= 0)
                        die("the broker closed the link");
                n_buf += (size_t)r;
        }
}

/* Skips frames until one of @type on @stream; an END, RESET, REJECT or ERROR on the way fails. */
static VbusFrameHeader expect(uint32_t stream, uint8_t type, uint8_t *payload, size_t size)
{
        for (;;) {
                VbusFrameHeader h = next_frame(payload, size);

                if (h.type == type && h.stream_id == stream)
                        return h;
                if (h.type == VBUS_FRAME_END || h.type == VBUS_FRAME_RESET ||
                    h.type == VBUS_FRAME_REJECT || h.type == VBUS_FRAME_ERROR)
                        die("got %s on stream %u while waiting for %s",
                            vbus__frame_type_name(h.type), h.stream_id,
                            vbus__frame_type_name(type));
                if (h.type == VBUS_FRAME_DATA && h.stream_id == SUB_ID)
                        die("a delivery while waiting for %s", vbus__frame_type_name(type));
        }
}

static void send_open(uint32_t id, Vbus__V1__StreamKind kind, uint32_t credit, uint32_t limit)
{
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;

        o.kind = kind;
        o.name = (char *)TOPIC;
        o.initial_credit = credit;
        o.queue_limit = limit;
        raw_send_control(fd, VBUS_FRAME_OPEN, id, &o.base, 0);
}

static void publish(uint64_t seq, size_t size)
{
        uint8_t frame[VBUS_FRAME_HEADER_SIZE + 4096];
        VbusFrameHeader h = {.type = VBUS_FRAME_DATA, .stream_id = PUB_ID};

        h.length = (uint32_t)size;
        vbus__frame_header_encode(&h, frame);
        memset(frame + VBUS_FRAME_HEADER_SIZE, 'x', size);
        memcpy(frame + VBUS_FRAME_HEADER_SIZE, &seq, sizeof(seq));
        raw_send_all(fd, frame, VBUS_FRAME_HEADER_SIZE + size, 0);
}

/* A PING and its answer: everything sent before it has been processed by the broker. */
static void barrier(void)
{
        Vbus__V1__Ping p = VBUS__V1__PING__INIT;
        uint8_t payload[VBUS_CONTROL_MAX];

        p.opaque = 7;
        raw_send_control(fd, VBUS_FRAME_PING, 0, &p.base, 0);
        (void)expect(0, VBUS_FRAME_PING, payload, sizeof(payload));
}

typedef struct Delivery {
        uint64_t seq, dropped, sequence;
} Delivery;

static Delivery next_delivery(size_t size)
{
        static uint8_t payload[VBUS_FRAME_MAX_DEFAULT];
        const uint8_t *meta, *body;
        size_t n_meta, n_body;
        Vbus__V1__Meta *m;
        Delivery d = {0};
        VbusFrameHeader h = expect(SUB_ID, VBUS_FRAME_DATA, payload, sizeof(payload));

        if (!(h.flags & VBUS_FLAG_META) || (h.flags & VBUS_FLAG_MORE))
                die("a delivery with flags 0x%x", h.flags);
        if (vbus__meta_split(payload, h.length, &meta, &n_meta, &body, &n_body) != 0)
                die("a delivery with a bad Meta prefix");
        m = vbus__v1__meta__unpack(NULL, n_meta, meta);
        if (!m)
                die("a delivery whose Meta does not decode");
        if (n_body != size)
                die("a delivery of %zu bytes, %zu sent", n_body, size);
        if (!m->topic || strcmp(m->topic, TOPIC) != 0)
                die("a delivery on topic '%s'", m->topic ? m->topic : "");
        memcpy(&d.seq, body, sizeof(d.seq));
        d.dropped = m->dropped;
        d.sequence = m->sequence;
        vbus__v1__meta__free_unpacked(m, NULL);
        printf("delivery seq %" PRIu64 " dropped %" PRIu64 " sequence %" PRIu64 "\n", d.seq,
               d.dropped, d.sequence);
        return d;
}

int main(int argc, char **argv)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        Vbus__V1__Hello hello = VBUS__V1__HELLO__INIT;
        Vbus__V1__Credit credit = VBUS__V1__CREDIT__INIT;
        uint8_t payload[VBUS_CONTROL_MAX];
        unsigned long limit, count, size, kept;
        Delivery d;

        if (argc != 6 || strlen(argv[1]) >= sizeof(sa.sun_path))
                return 2;
        limit = strtoul(argv[2], NULL, 10);
        count = strtoul(argv[3], NULL, 10);
        size = strtoul(argv[4], NULL, 10);
        kept = strtoul(argv[5], NULL, 10);
        if (size < 8 || size > 4096 || kept > count || count * (size + 16) > 65536)
                return 2; /* all of it must fit the window a publisher has before ACCEPT */
        (void)setvbuf(stdout, NULL, _IOLBF, 0);            /* cannot fail: a valid mode */
        memcpy(sa.sun_path, argv[1], strlen(argv[1]) + 1); /* its length checked above */
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                die("connect: %s", strerror(errno));
        hello.version_min = 1;
        hello.version_max = 1;
        hello.max_frame = VBUS_FRAME_MAX_DEFAULT;
        raw_send_control(fd, VBUS_FRAME_HELLO, 0, &hello.base, 0);
        (void)expect(0, VBUS_FRAME_HELLO, payload, sizeof(payload));

        send_open(SUB_ID, VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE, 0, (uint32_t)limit);
        (void)expect(SUB_ID, VBUS_FRAME_ACCEPT, payload, sizeof(payload));
        send_open(PUB_ID, VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, 0, 0);
        for (uint64_t i = 1; i <= count; i++)
                publish(i, size);
        barrier();

        credit.increment = 1u << 20;
        raw_send_control(fd, VBUS_FRAME_CREDIT, SUB_ID, &credit.base, 0);
        for (uint64_t i = 1; i <= kept; i++) {
                d = next_delivery(size);
                if (d.seq != i)
                        die("delivery %" PRIu64 " is message %" PRIu64 ": the queue did not keep "
                            "the first %lu in order",
                            i, d.seq, kept);
                if (d.dropped != (i == 1 ? count - kept : 0))
                        die("delivery %" PRIu64 " reports %" PRIu64 " dropped, expected %lu", i,
                            d.dropped, i == 1 ? count - kept : 0);
                if (d.sequence != i)
                        die("delivery %" PRIu64 " has Meta.sequence %" PRIu64, i, d.sequence);
        }
        /* The marker must come next: a message kept beyond KEPT would come before it. */
        publish(count + 1, size);
        d = next_delivery(size);
        if (d.seq != count + 1)
                die("after %lu deliveries came message %" PRIu64 ", not the marker %lu: the "
                    "queue kept more than %lu",
                    kept, d.seq, count + 1, kept);
        if (d.dropped != 0 || d.sequence != kept + 1)
                die("the marker reports %" PRIu64 " dropped and sequence %" PRIu64, d.dropped,
                    d.sequence);
        printf("ok: kept %lu of %lu, told of %lu dropped\n", kept, count, count - kept);
        close(fd);
        return 0;
}
