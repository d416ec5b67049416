/* SPDX-License-Identifier: MIT */
/*
 * vbus-wire: encode sample frames of the vbus wire protocol, and decode a byte stream of frames
 * into readable lines. A debugging aid for protocol implementers: `vbus-wire sample | vbus-wire
 * decode` shows the codec on both sides, and `decode` reads any captured link.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vbus/vbus.h>

#include "control.h"
#include "frame.h"

static const char usage[] =
        "Usage: vbus-wire sample\n"
        "       vbus-wire decode [--chunk N] [--max BYTES]\n"
        "\n"
        "sample   write a short, valid link conversation (HELLO, OPEN, ACCEPT, DATA with\n"
        "         and without META, CREDIT, PING, END, GOAWAY) as raw frames to stdout.\n"
        "decode   read raw frames from stdin and print one line per frame; control payloads\n"
        "         are decoded and validated as docs/protocol.md says. Stops at the first\n"
        "         violation and prints its reason.\n"
        "\n"
        "Options:\n"
        "  --chunk N     feed the decoder N bytes at a time (default 4096), to show that\n"
        "                frames split anywhere decode the same\n"
        "  --max BYTES   the negotiated maximum payload (default 131072)\n"
        "  -h, --help    this text\n"
        "\n"
        "Exit status: 0 on success, 1 on a protocol violation or I/O error, 2 on usage errors.\n";

static int write_all(const uint8_t *p, size_t n)
{
        while (n > 0) {
                ssize_t w = write(STDOUT_FILENO, p, n);

                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return -errno;
                p += w;
                n -= (size_t)w;
        }
        return 0;
}

static int emit_control(uint8_t type, uint8_t flags, uint32_t stream, const ProtobufCMessage *m)
{
        uint8_t buf[VBUS_FRAME_HEADER_SIZE + VBUS_CONTROL_MAX];
        VbusSegments out = {{buf, NULL}, {sizeof(buf), 0}};
        VbusFrameHeader h = {.type = type, .flags = flags, .stream_id = stream};
        size_t n;
        int r = vbus__control_encode(&h, m, &out, &n);

        return r < 0 ? r : write_all(buf, n);
}

/* A DATA frame of @n_body bytes of @body, with @meta (may be NULL) as its Meta prefix. */
static int emit_data(uint32_t stream, const ProtobufCMessage *meta, const void *body, size_t n_body)
{
        uint8_t buf[VBUS_FRAME_HEADER_SIZE + 2 + VBUS_META_MAX + 256];
        size_t n_meta = meta ? protobuf_c_message_get_packed_size(meta) : 0;
        size_t off = VBUS_FRAME_HEADER_SIZE;
        VbusFrameHeader h = {.type = VBUS_FRAME_DATA, .stream_id = stream};

        if (meta) {
                int k;

                if (n_meta > VBUS_META_MAX)
                        return -ENOBUFS;
                k = vbus__meta_encode_prefix(n_meta, buf + off);

                if (k < 0)
                        return k;
                off += (size_t)k;
                off += protobuf_c_message_pack(meta, buf + off);
                h.flags = VBUS_FLAG_META;
        }
        if (off + n_body > sizeof(buf))
                return -ENOBUFS;
        memcpy(buf + off, body, n_body);
        h.length = (uint32_t)(off + n_body - VBUS_FRAME_HEADER_SIZE);
        vbus__frame_header_encode(&h, buf);
        return write_all(buf, off + n_body);
}

/* A DATA frame whose payload is the bytes of @text, without its NUL. */
static int emit_text(uint32_t stream, const ProtobufCMessage *meta, const char *text)
{
        return emit_data(stream, meta, text, strlen(text));
}

static int cmd_sample(void)
{
        Vbus__V1__Hello hello = VBUS__V1__HELLO__INIT;
        Vbus__V1__Open open = VBUS__V1__OPEN__INIT;
        Vbus__V1__Accept accept = VBUS__V1__ACCEPT__INIT;
        Vbus__V1__Identity id = VBUS__V1__IDENTITY__INIT;
        Vbus__V1__Meta meta = VBUS__V1__META__INIT;
        Vbus__V1__Credit credit = VBUS__V1__CREDIT__INIT;
        Vbus__V1__Ping ping = VBUS__V1__PING__INIT;
        Vbus__V1__End end = VBUS__V1__END__INIT;
        Vbus__V1__GoAway goaway = VBUS__V1__GO_AWAY__INIT;
        int r = 0;

        hello.version_min = 1;
        hello.version_max = 1;
        hello.max_frame = VBUS_FRAME_MAX_DEFAULT;
        hello.peer_name = (char *)"vbus-wire";
        open.name = (char *)"sensors.kitchen.temp";
        open.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE;
        open.name = (char *)"sensors.>";
        open.slow_policy = VBUS__V1__SLOW_POLICY__SLOW_POLICY_DROP;
        open.initial_credit = 65536;
        accept.initial_credit = 65536;
        id.domid = 3;
        id.domain_name = (char *)"sensor";
        meta.topic = (char *)"sensors.kitchen.temp";
        meta.sender = &id;
        meta.sequence = 1;
        credit.increment = 4096;
        ping.opaque = 42;
        end.status = VBUS__V1__STATUS__STATUS_OK;
        goaway.status = VBUS__V1__STATUS__STATUS_SHUTTING_DOWN;
        goaway.message = (char *)"broker stopping";
        goaway.last_stream_id = 1;

        r = r ?: emit_control(VBUS_FRAME_HELLO, 0, 0, &hello.base);
        r = r ?: emit_control(VBUS_FRAME_OPEN, 0, 1, &open.base);
        r = r ?: emit_control(VBUS_FRAME_ACCEPT, 0, 1, &accept.base);
        r = r ?: emit_text(1, &meta.base, "21.5 C");
        meta.sequence = 2;
        meta.dropped = 3;
        r = r ?: emit_text(1, &meta.base, "21.7 C");
        r = r ?: emit_text(1, NULL, "raw bytes");
        r = r ?: emit_control(VBUS_FRAME_CREDIT, 0, 1, &credit.base);
        r = r ?: emit_control(VBUS_FRAME_PING, 0, 0, &ping.base);
        r = r ?: emit_control(VBUS_FRAME_PING, VBUS_FLAG_ACK, 0, &ping.base);
        r = r ?: emit_control(VBUS_FRAME_END, 0, 1, &end.base);
        r = r ?: emit_control(VBUS_FRAME_GOAWAY, 0, 0, &goaway.base);
        if (r < 0) {
                fprintf(stderr, "vbus-wire: encoding failed: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}

/* Prints up to 48 bytes of peer data with anything unprintable escaped. */
static void print_escaped(const uint8_t *p, size_t n)
{
        size_t shown = n < 48 ? n : 48;

        putchar('"');
        for (size_t i = 0; i < shown; i++) {
                if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
                        putchar(p[i]);
                else
                        printf("\\x%02x", p[i]);
        }
        putchar('"');
        if (shown < n)
                printf("...(%zu bytes)", n);
}

static void print_identity(const Vbus__V1__Identity *id)
{
        if (!id)
                return;
        if (id->local)
                printf(" from=uid:%u", id->uid);
        else
                printf(" from=dom%u(%s)", id->domid, id->domain_name);
}

static int print_control(const VbusFrame *f)
{
        VbusControl c = VBUS_CONTROL_NULL;
        int r = vbus__control_decode(&f->header, f->payload, VBUS_CONTROL_DECODE_BUDGET, &c);

        if (r != 0)
                return r;
        switch (f->header.type) {
        case VBUS_FRAME_HELLO: {
                const Vbus__V1__Hello *m = (const Vbus__V1__Hello *)c.msg;

                printf(" versions=%u..%u max_frame=%u peer=%s", m->version_min, m->version_max,
                       m->max_frame, m->peer_name);
                break;
        }
        case VBUS_FRAME_OPEN: {
                const Vbus__V1__Open *m = (const Vbus__V1__Open *)c.msg;

                printf(" name=%s kind=%d credit=%u", m->name, m->kind, m->initial_credit);
                break;
        }
        case VBUS_FRAME_ACCEPT: {
                const Vbus__V1__Accept *m = (const Vbus__V1__Accept *)c.msg;

                printf(" credit=%u", m->initial_credit);
                print_identity(m->peer);
                break;
        }
        case VBUS_FRAME_REJECT: {
                const Vbus__V1__Reject *m = (const Vbus__V1__Reject *)c.msg;

                printf(" status=%s message=%s", vbus_status_name(m->status), m->message);
                break;
        }
        case VBUS_FRAME_END:
        case VBUS_FRAME_RESET: {
                const Vbus__V1__End *m = (const Vbus__V1__End *)c.msg;

                printf(" status=%s", vbus_status_name(m->status));
                break;
        }
        case VBUS_FRAME_CREDIT:
                printf(" increment=%u", ((const Vbus__V1__Credit *)c.msg)->increment);
                break;
        case VBUS_FRAME_PING:
                printf(" opaque=%llu%s",
                       (unsigned long long)((const Vbus__V1__Ping *)c.msg)->opaque,
                       f->header.flags & VBUS_FLAG_ACK ? " ack" : "");
                break;
        case VBUS_FRAME_GOAWAY: {
                const Vbus__V1__GoAway *m = (const Vbus__V1__GoAway *)c.msg;

                printf(" last_stream=%u status=%s message=%s", m->last_stream_id,
                       vbus_status_name(m->status), m->message);
                break;
        }
        case VBUS_FRAME_ERROR: {
                const Vbus__V1__Error *m = (const Vbus__V1__Error *)c.msg;

                printf(" status=%s message=%s", vbus_status_name(m->status), m->message);
                break;
        }
        default:
                break;
        }
        vbus__control_deinit(&c);
        return 0;
}

static int print_data(const VbusFrame *f)
{
        const uint8_t *body = f->payload, *meta_raw;
        size_t n_body = f->header.length, n_meta;

        if (f->header.flags & VBUS_FLAG_META) {
                Vbus__V1__Meta *meta;
                int r = vbus__meta_split(f->payload, f->header.length, &meta_raw, &n_meta, &body,
                                         &n_body);

                if (r != 0)
                        return r;
                meta = vbus__v1__meta__unpack(NULL, n_meta, meta_raw);
                if (!meta)
                        return VBUS_FRAME_E_MALFORMED;
                printf(" topic=%s seq=%llu dropped=%llu", meta->topic,
                       (unsigned long long)meta->sequence, (unsigned long long)meta->dropped);
                print_identity(meta->sender);
                vbus__v1__meta__free_unpacked(meta, NULL);
        }
        printf("%s body=", f->header.flags & VBUS_FLAG_MORE ? " more" : "");
        print_escaped(body, n_body);
        return 0;
}

static int cmd_decode(size_t chunk, uint32_t max)
{
        VbusFrameDecoder d;
        uint8_t *buf = malloc(chunk);
        unsigned long n_frames = 0;
        int status = 0;

        if (!buf)
                return 1;
        vbus__frame_decoder_init(&d, max);
        for (;;) {
                ssize_t n = read(STDIN_FILENO, buf, chunk);
                size_t pos = 0;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        perror("vbus-wire: read");
                        status = 1;
                        break;
                }
                if (n == 0) {
                        if (!vbus__frame_decoder_is_idle(&d)) {
                                fprintf(stderr, "vbus-wire: stream ends inside a frame\n");
                                status = 1;
                        }
                        break;
                }
                while (pos < (size_t)n && status == 0) {
                        VbusFrame f;
                        size_t used;
                        int r = vbus__frame_decoder_feed(&d, buf + pos, (size_t)n - pos, &used, &f);

                        if (r == -EPROTO) {
                                fprintf(stderr, "vbus-wire: protocol violation: %s\n",
                                        vbus__frame_error_name(vbus__frame_decoder_error(&d)));
                                status = 1;
                                break;
                        }
                        if (r < 0) {
                                fprintf(stderr, "vbus-wire: %s\n", strerror(-r));
                                status = 1;
                                break;
                        }
                        pos += used;
                        if (r == 0)
                                break;
                        n_frames++;
                        printf("%-7s stream=%u session=%u len=%u",
                               vbus__frame_type_name(f.header.type), f.header.stream_id,
                               f.header.session_id, f.header.length);
                        r = f.header.type == VBUS_FRAME_DATA ? print_data(&f) : print_control(&f);
                        putchar('\n');
                        if (r != 0) {
                                fprintf(stderr, "vbus-wire: protocol violation: %s\n",
                                        vbus__frame_error_name(r));
                                status = 1;
                        }
                }
                if (status)
                        break;
        }
        printf("%lu frames\n", n_frames);
        vbus__frame_decoder_deinit(&d);
        free(buf);
        return status;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"chunk", required_argument, NULL, 'c'},
                {"max", required_argument, NULL, 'm'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        unsigned long chunk = 4096, max = VBUS_FRAME_MAX_DEFAULT;
        char *end;
        int c;

        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        errno = 0;
                        chunk = strtoul(optarg, &end, 10);
                        if (errno || *end || chunk == 0 || chunk > 1 << 20) {
                                fprintf(stderr, "vbus-wire: --chunk wants 1..1048576\n");
                                return 2;
                        }
                        break;
                case 'm':
                        errno = 0;
                        max = strtoul(optarg, &end, 10);
                        if (errno || *end || max < VBUS_FRAME_MAX_MIN ||
                            max > VBUS_FRAME_MAX_LIMIT) {
                                fprintf(stderr, "vbus-wire: --max wants %d..%d\n",
                                        VBUS_FRAME_MAX_MIN, VBUS_FRAME_MAX_LIMIT);
                                return 2;
                        }
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return 0;
                default:
                        fputs(usage, stderr);
                        return 2;
                }
        }
        if (optind + 1 != argc) {
                fputs(usage, stderr);
                return 2;
        }
        if (strcmp(argv[optind], "sample") == 0)
                return cmd_sample();
        if (strcmp(argv[optind], "decode") == 0)
                return cmd_decode(chunk, (uint32_t)max);
        fprintf(stderr, "vbus-wire: unknown command '%s'\n\n%s", argv[optind], usage);
        return 2;
}
