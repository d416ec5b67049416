/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for libvbus's publish/subscribe side as a hostile broker (or a guest agent, or
 * anything on a UNIX socket) sees it: subscriptions in both slow policies, their Meta prefixes,
 * batches (protocol.md 5.5), fragments, drop counts, gaps and retained values, and a publisher
 * that combines small messages into batch frames and fragments large ones while the broker
 * plays CREDIT, RESET and END at it. fuzz-client covers calls and servers; this one never opens
 * them.
 *
 * For each input a vbus_conn connects over a UNIX socket to this harness, which answers HELLO
 * with the features the input's first byte grants (MESSAGE_CHARGE, BATCH, RETAIN: any
 * combination, BATCH without MESSAGE_CHARGE included, which the client must not take as BATCH),
 * with the smallest or the default max_frame. The client subscribes to t.* (VBUS_SLOW_BLOCK)
 * and t.> (VBUS_SLOW_DROP) and opens a publisher to t.a; the first byte may also have the
 * harness accept the client's streams as it opens them, and serve one reconnect after a lost link
 * (waiting out the client's 50 ms back-off), so that gaps and streams opened again are played.
 * The rest of the input is a script: each step is
 *   [op] [selector] [argument] [length] [length bytes]
 * and becomes a frame toward the client (DATA with any flags and bytes, DATA behind a Meta prefix
 * the harness builds, a batch whose records a small program in the bytes lays out, good or
 * broken, a message in two fragments with a batch or a PING between them, END, RESET, ACCEPT,
 * REJECT, CREDIT, PING, GOAWAY, ERROR, raw bytes, the link closed) or an action of the client
 * (publish small, large, empty or retained messages, several in a row into one batch, free and
 * reopen the publisher or a subscription, flush, sync). The client processes after each step unless
 * the op's top bit says not to, so frames can arrive while a batch is open in its ring.
 *
 * The message callback reads every byte and every field it is given (so ASan sees any
 * over-read) and, as the message's first byte says, frees its own subscription or the other
 * one, subscribes anew, publishes, frees or reopens the publisher, or calls the loop, flush or
 * sync from inside the callback. The harness also checks the client's flow control as a broker
 * would (flow_check()): no window given back that was not spent, no DATA past what was granted.
 * A crash, a leak, an over-read, a hang, undefined behaviour or a broken flow check is a finding;
 * a link the client drops as a protocol error is a correct outcome.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <vbus/vbus.h>

#include "batch.h"
#include "control.h"
#include "frame.h"
#include "fuzz-listen.h"
#include "session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
        /* The first byte of an input. */
        CFG_CHARGE = 0x01, /* the HELLO grants MESSAGE_CHARGE */
        CFG_BATCH = 0x02,  /* ... BATCH */
        CFG_RETAIN = 0x04, /* ... RETAIN */
        CFG_SMALL = 0x08,  /* ... and says max_frame 4096 (else the default) */
        CFG_ACCEPT = 0x10, /* the client's streams are accepted as it opens them */
        /* A lost link is served again, once (see reconnect()), when the top three bits are
         * these: an eighth of the inputs, since each reconnect waits out the client's back-off.*/
        CFG_TOP_MASK = 0xe0,
        CFG_RECONNECT = 0xa0,
        /* Or these: the link's socket buffers are the smallest, so that the client's writes
         * fill its link (a publisher's fragments, a batch or a control frame that must wait). */
        CFG_SMALL_BUFFERS = 0x40,
        /* A step whose op has this bit is not followed by vbus_conn_process(). */
        OP_NO_PROCESS = 0x80,
        /* The largest frame the harness builds: over the client's max_frame
         * (VBUS_FRAME_MAX_DEFAULT), so that oversize is played, and under a socket's default
         * buffer, so that it is not cut. */
        FRAME_BUILD_MAX = VBUS_FRAME_MAX_DEFAULT + 4096,
        MAX_IDS = 16,
};

static int listen_fd = -1;

/* Per input. */
static uint32_t ids[MAX_IDS]; /* the client's streams, in the order it opened them */
static size_t n_ids;
static uint64_t next_seq;
static vbus_conn *conn;
static vbus_subscription *sub_block, *sub_drop;
static vbus_publisher *pub;
static uint8_t cfg;            /* the input's first byte */
static bool reconnected;       /* the one reconnect an input may have was played */
static int link_fd = -1;       /* the harness's end of the client's current link */
static VbusFrameDecoder dec;   /* what the client writes on it */
static volatile uint64_t sink; /* what the callback read, so that no read is optimised away */
static uint8_t frame[VBUS_FRAME_HEADER_SIZE + FRAME_BUILD_MAX];
static uint8_t big[300 * 1024]; /* the bytes of large publications */

static void setup(void)
{
        if (listen_fd >= 0)
                return;
        listen_fd = fuzz_listen("subscriber", SOCK_NONBLOCK);
        for (size_t i = 0; i < sizeof(big); i++)
                big[i] = (uint8_t)(i * 7 + 1);
}

/* Connections a freed client left in the backlog (a reconnect) would be taken for the next. */
static void flush_backlog(void)
{
        int fd;

        while ((fd = accept(listen_fd, NULL, NULL)) >= 0)
                close(fd);
}

/*
 * Flow control as the harness sees it, per stream of the current link (ids are small): the
 * client must never give back more window than the harness's DATA cost (credit it was not owed
 * would let a broker overrun it), nor send DATA that costs more than it was ever granted (the
 * window before ACCEPT, the ACCEPT's credit and every CREDIT: a loose bound, but one a client
 * that ignored its window would break). Either is a finding. The checks are off for the rest of
 * a link on which the script wrote raw bytes or a write was cut short (a full socket), since
 * the harness then no longer knows what the client read.
 */
enum { FLOW_IDS = 128 };

typedef struct Flow {
        uint64_t to_client;   /* cost of the DATA the harness sent */
        uint64_t credited;    /* CREDIT the client gave back */
        uint64_t granted;     /* ACCEPT and CREDIT the harness gave */
        uint64_t from_client; /* cost of the DATA the client sent */
} Flow;

static Flow flows[FLOW_IDS];
static bool flow_off;

static Flow *flow(uint32_t id)
{
        return id < FLOW_IDS ? &flows[id] : NULL;
}

/* What a DATA frame costs of its window (protocol.md 5.3-5.5); a batch that does not count is
 * refused whole by its receiver, so its length will do. */
static uint64_t data_cost(uint8_t flags, const uint8_t *p, size_t n)
{
        uint64_t charge = cfg & CFG_CHARGE ? VBUS_MESSAGE_CHARGE : 0;
        uint32_t k = 0;

        if (flags & VBUS_FLAG_BATCH)
                return vbus__batch_count(p, n, flags & VBUS_FLAG_META, &k) == 0 ? n + k * charge
                                                                                : n;
        return n + (flags & VBUS_FLAG_MORE ? 0 : charge);
}

static void flow_check(uint32_t id, const Flow *f)
{
        uint64_t allowed = VBUS_OPEN_WINDOW + f->granted;

        if (flow_off)
                return;
        if (f->credited > f->to_client) {
                fprintf(stderr, "stream %u: the client gave back %llu bytes of window for %llu\n",
                        id, (unsigned long long)f->credited, (unsigned long long)f->to_client);
                abort();
        }
        if (f->from_client > allowed) {
                fprintf(stderr, "stream %u: the client sent %llu bytes of window, granted %llu\n",
                        id, (unsigned long long)f->from_client, (unsigned long long)allowed);
                abort();
        }
}

/* Sends all of @p, or notes that the link's bytes were cut (the socket is full). */
static void send_bytes(int fd, const uint8_t *p, size_t n)
{
        while (n > 0) {
                ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);

                if (w <= 0) {
                        flow_off = true;
                        return;
                }
                p += w;
                n -= (size_t)w;
        }
}

static void send_control(int fd, uint8_t type, uint32_t stream, const ProtobufCMessage *m)
{
        static uint8_t buf[VBUS_FRAME_HEADER_SIZE + VBUS_CONTROL_MAX];
        VbusSegments out = {{buf, NULL}, {sizeof(buf), 0}};
        VbusFrameHeader h = {.type = type, .stream_id = stream};
        size_t n;

        if (vbus__control_encode(&h, m, &out, &n) == 0)
                send_bytes(fd, buf, n);
}

/* Gives the client @n more bytes of window on @id (ACCEPT or CREDIT). */
static void send_grant(int fd, uint8_t type, uint32_t id, uint32_t n)
{
        Vbus__V1__Accept a = VBUS__V1__ACCEPT__INIT;
        Vbus__V1__Credit cr = VBUS__V1__CREDIT__INIT;
        Flow *f = flow(id);

        if (f)
                f->granted += n;
        a.initial_credit = n;
        cr.increment = n;
        send_control(fd, type, id, type == VBUS_FRAME_ACCEPT ? &a.base : &cr.base);
}

/* Sends the DATA frame whose @n payload bytes are already in frame[] after the header. */
static void send_frame(int fd, uint32_t stream, uint8_t flags, size_t n)
{
        VbusFrameHeader h = {.type = VBUS_FRAME_DATA,
                             .flags = flags,
                             .stream_id = stream,
                             .length = (uint32_t)n};
        Flow *f = flow(stream);

        if (f)
                f->to_client += data_cost(flags, frame + VBUS_FRAME_HEADER_SIZE, n);
        vbus__frame_header_encode(&h, frame);
        send_bytes(fd, frame, VBUS_FRAME_HEADER_SIZE + n);
}

static void send_data(int fd, uint32_t stream, uint8_t flags, const uint8_t *p, size_t n)
{
        memcpy(frame + VBUS_FRAME_HEADER_SIZE, p, n);
        send_frame(fd, stream, flags, n);
}

/* The flow of a frame the client wrote. */
static void account(const VbusFrame *fr)
{
        Flow *f = flow(fr->header.stream_id);
        VbusControl ctl = VBUS_CONTROL_NULL;

        if (!f)
                return;
        if (fr->header.type == VBUS_FRAME_DATA)
                f->from_client += data_cost(fr->header.flags, fr->payload, fr->header.length);
        if (fr->header.type == VBUS_FRAME_CREDIT &&
            vbus__control_decode(&fr->header, fr->payload, VBUS_CONTROL_DECODE_BUDGET, &ctl) == 0)
                f->credited += ((const Vbus__V1__Credit *)ctl.msg)->increment;
        vbus__control_deinit(&ctl);
        flow_check(fr->header.stream_id, f);
}

/* Reads what the client wrote; remembers the ids of the streams it opened. */
static void drain(int fd, VbusFrameDecoder *d)
{
        static uint8_t buf[65536];
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
                        if (f.header.type == VBUS_FRAME_OPEN && n_ids < MAX_IDS)
                                ids[n_ids++] = f.header.stream_id;
                        account(&f);
                }
        }
}

static void process(int fd, VbusFrameDecoder *d)
{
        for (int i = 0; i < 3; i++) {
                (void)vbus_conn_process(conn);
                drain(fd, d);
        }
}

/*
 * A Meta prefix into @out (at least 2 + VBUS_META_MAX bytes); its size. @variant picks a good
 * one (of three publishers), one with an agent's claims and a key, one without a sender (allowed),
 * or one the client must refuse: a topic that is not one, no topic, or bytes that are no Meta.
 */
static size_t meta_prefix(uint8_t *out, unsigned variant, bool retained, uint64_t dropped)
{
        static const uint8_t garbage[] = {0x0a, 0xff, 0x01, 0x12};
        Vbus__V1__Meta m = VBUS__V1__META__INIT;
        Vbus__V1__Identity who = VBUS__V1__IDENTITY__INIT;
        Vbus__V1__Claims claims = VBUS__V1__CLAIMS__INIT;
        size_t n;
        int k;

        who.domid = 7;
        who.domain_name = (char *)"x";
        m.topic = (char *)"t.a";
        m.sender = &who;
        m.sequence = next_seq++;
        m.dropped = dropped;
        m.retained = retained;
        switch (variant % 8) {
        case 1: /* other publishers: the client's cache of recent topics and senders turns over */
                m.topic = (char *)"t.c";
                who.domid = 8;
                break;
        case 2:
                who.domain_name = (char *)"y";
                break;
        case 3:
                m.topic = (char *)"t.b.c";
                who.key_name = (char *)"k1";
                who.local = true;
                who.uid = 1000;
                who.pid = 42;
                who.session = 3;
                claims.uid = 5;
                claims.pid = 6;
                claims.command = (char *)"cmd";
                who.claims = &claims;
                break;
        case 4:
                m.topic = (char *)"t..a";
                break;
        case 5:
                m.topic = (char *)"";
                break;
        case 6:
                m.sender = NULL;
                break;
        case 7:
                out[0] = sizeof(garbage);
                memcpy(out + 1, garbage, sizeof(garbage));
                return 1 + sizeof(garbage);
        default:
                break;
        }
        n = vbus__v1__meta__get_packed_size(&m);
        k = vbus__meta_encode_prefix(n, out);
        if (k <= 0)
                abort(); /* the harness's own Meta: always small */
        (void)vbus__v1__meta__pack(&m, out + k);
        return (size_t)k + n;
}

/* Appends @n bytes to the frame being built at *@len, if they fit. */
static void put(size_t *len, const void *p, size_t n)
{
        if (n > FRAME_BUILD_MAX - *len)
                return;
        memcpy(frame + VBUS_FRAME_HEADER_SIZE + *len, p, n);
        *len += n;
}

static void put_record(size_t *len, uint32_t l, uint8_t fill)
{
        uint8_t v[VBUS_BATCH_LEN_MAX];

        if (VBUS_BATCH_LEN_MAX + (size_t)l > FRAME_BUILD_MAX - *len)
                return;
        put(len, v, vbus__batch_put_len(v, l));
        memset(frame + VBUS_FRAME_HEADER_SIZE + *len, fill, l);
        *len += l;
}

/*
 * Lays out records from a little program in @p: pairs [kind][v]: a good record of v % 64 bytes,
 * an empty one, a non-canonical length, a 5-byte length, a length that runs past the frame, a
 * raw byte, v * 64 empty records (more than any window takes), or a record of v * 16 bytes.
 */
static void put_records(size_t *len, const uint8_t *p, size_t n)
{
        for (size_t i = 0; i + 1 < n; i += 2) {
                uint8_t v = p[i + 1];

                switch (p[i] % 8) {
                case 0:
                        put_record(len, v % 64, v);
                        break;
                case 1:
                        put_record(len, 0, 0);
                        break;
                case 2: {
                        uint8_t nc[] = {(uint8_t)(0x80 | (v & 0x7f)), 0x00};

                        put(len, nc, sizeof(nc));
                        for (uint8_t j = 0; j < (v & 0x7f); j++)
                                put(len, &v, 1);
                        break;
                }
                case 3: {
                        uint8_t five[] = {0x81, 0x80, 0x80, 0x80, 0x00};

                        put(len, five, sizeof(five));
                        put(len, &v, 1);
                        break;
                }
                case 4: {
                        uint8_t l[VBUS_BATCH_LEN_MAX];

                        put(len, l, vbus__batch_put_len(l, (uint32_t)v + 70000));
                        put(len, &v, 1);
                        break;
                }
                case 5:
                        put(len, &v, 1);
                        break;
                case 6:
                        for (uint32_t j = 0; j < (uint32_t)v * 64; j++)
                                put_record(len, 0, 0);
                        break;
                default:
                        put_record(len, (uint32_t)v * 16, v);
                        break;
                }
        }
}

/* --- the client's side ------------------------------------------------------------------ */

static void on_message(vbus_subscription *s, const vbus_message *m, void *userdata);

static void subscribe(vbus_subscription **ret, vbus_slow_policy policy, const char *pattern)
{
        if (vbus_subscribe(conn, pattern, policy, on_message, ret, ret) < 0)
                *ret = NULL;
}

static uint64_t read_string(const char *s)
{
        return s ? strlen(s) : 0;
}

static void on_message(vbus_subscription *s, const vbus_message *m, void *userdata)
{
        vbus_subscription **self = userdata;
        const char *command = NULL;
        uint32_t uid = 0, pid = 0;
        uint64_t sum = 0;
        size_t n = 0;
        const uint8_t *p = vbus_message_get_data(m, &n);

        for (size_t i = 0; i < n; i++)
                sum += p[i];
        sum += read_string(vbus_message_get_topic(m));
        sum += read_string(vbus_message_get_sender_name(m));
        sum += read_string(vbus_message_get_sender_key(m));
        if (vbus_message_get_sender_claims(m, &uid, &pid, &command))
                sum += uid + pid + read_string(command);
        sum += vbus_message_get_sender_domid(m) + vbus_message_get_sender_uid(m) +
               vbus_message_get_sender_pid(m) + vbus_message_get_sender_session(m);
        sum += vbus_message_get_dropped(m) + vbus_message_get_sequence(m);
        sum += vbus_message_is_retained(m) + vbus_message_follows_gap(m) +
               vbus_message_is_sender_local(m);
        sink += sum;
        if (n == 0)
                return;
        switch (p[0] % 8) {
        case 1: /* unsubscribe from inside the callback */
                *self = vbus_subscription_free(s);
                break;
        case 2: /* cancel the other subscription */
                if (self == &sub_block)
                        sub_drop = vbus_subscription_free(sub_drop);
                else
                        sub_block = vbus_subscription_free(sub_block);
                break;
        case 3: /* publish from the callback: into a batch opened while the link is read */
                if (pub)
                        (void)vbus_publish(pub, p, n);
                break;
        case 4:
                if (pub)
                        (void)vbus_publish(pub, big, 2049 + (size_t)p[n - 1] * 512);
                break;
        case 5:
                (void)vbus_conn_process(conn); /* -EBUSY */
                break;
        case 6: /* free the publisher (its batch may be open), and maybe open another */
                pub = vbus_publisher_free(pub);
                if ((p[0] >> 3) & 1 && vbus_publisher_open(conn, "t.a", &pub) < 0)
                        pub = NULL;
                break;
        case 7:
                switch ((p[0] >> 3) % 4) {
                case 1:
                        (void)vbus_conn_sync(conn, 0);
                        break;
                case 2:
                        (void)vbus_conn_flush(conn, 0);
                        break;
                case 3: /* subscribe anew from inside the callback: a stream opened while the
                         * link is read */
                        *self = vbus_subscription_free(s);
                        subscribe(self, self == &sub_block ? VBUS_SLOW_BLOCK : VBUS_SLOW_DROP,
                                  "t.>");
                        break;
                default:
                        break;
                }
                break;
        default:
                break;
        }
}

/* An action of the client, from the script. */
static void client_act(uint8_t sel, uint8_t arg, const uint8_t *p, size_t len)
{
        const char *msg = NULL;
        uint64_t t;

        switch (arg % 12) {
        case 0: /* a few small messages in a row: one batch where BATCH is in force */
                for (int i = 0; i <= sel % 8 && pub; i++)
                        (void)vbus_publish(pub, p, len);
                break;
        case 1: /* a large one: fragments as window and link allow */
                if (pub)
                        (void)vbus_publish(pub, big, 2049 + (size_t)sel * 1024 + len * 37);
                break;
        case 2:
                if (pub)
                        (void)vbus_publish_retained(pub, p, len);
                break;
        case 3:
                if (pub)
                        (void)vbus_publish(pub, NULL, 0);
                break;
        case 4:
                pub = vbus_publisher_free(pub);
                if (vbus_publisher_open(conn, sel & 1 ? "t.a" : "t.b.c", &pub) < 0)
                        pub = NULL;
                break;
        case 5:
                sub_block = vbus_subscription_free(sub_block);
                subscribe(&sub_block, VBUS_SLOW_BLOCK, sel & 1 ? "t.*" : "t.a");
                break;
        case 6:
                sub_drop = vbus_subscription_free(sub_drop);
                subscribe(&sub_drop, VBUS_SLOW_DROP, sel & 1 ? "t.>" : ">");
                break;
        case 7:
                (void)vbus_conn_flush(conn, 0);
                break;
        case 8:
                (void)vbus_conn_sync(conn, 0);
                break;
        case 9:
                if (pub)
                        (void)vbus_publish_wait(pub, p, len, 0);
                break;
        case 10: /* many small ones: fills a batch frame, the window or the link */
                for (int i = 0; i < 64 + sel * 4 && pub; i++)
                        if (vbus_publish(pub, big + i, len + (size_t)i) < 0)
                                break;
                break;
        default:
                (void)vbus_conn_get_timeout(conn, &t);
                sink += (uint64_t)vbus_publisher_get_status(pub, &msg) + read_string(msg);
                sink += (uint64_t)vbus_subscription_get_status(sub_block, &msg) + read_string(msg);
                sink += vbus_subscription_is_active(sub_drop);
                break;
        }
}

/* --- the script ------------------------------------------------------------------------- */

static uint32_t pick_stream(uint8_t sel)
{
        if ((sel & 0x0f) == 0x0f)
                return sel & 0x10 ? 2 : 999; /* one the client never opened */
        return n_ids > 0 ? ids[(sel & 0x0f) % n_ids] : 1;
}

/* A batch toward @id: flags from @arg (META unless 0x40; MORE, RETAIN as asked), its prefix
 * good or not (@sel's top bits), then the records @p lays out. */
static void send_batch(int fd, uint32_t id, uint8_t sel, uint8_t arg, const uint8_t *p, size_t n)
{
        uint8_t flags = VBUS_FLAG_BATCH;
        size_t len = 0;

        if (!(arg & 0x40)) {
                flags |= VBUS_FLAG_META;
                len = meta_prefix(frame + VBUS_FRAME_HEADER_SIZE, sel >> 5, arg & 1,
                                  arg & 2 ? 3 : 0);
        }
        if (arg & 0x20)
                flags |= VBUS_FLAG_MORE;
        if (arg & 0x10)
                flags |= VBUS_FLAG_RETAIN;
        put_records(&len, p, n);
        send_frame(fd, id, flags, len);
}

/* A message in two fragments, its first behind a Meta prefix; between them, as @arg says,
 * nothing, a batch (not allowed inside a message), a PING or a frame of another stream. */
static void send_fragments(int fd, uint32_t id, uint8_t sel, uint8_t arg, const uint8_t *p,
                           size_t n)
{
        Vbus__V1__Ping ping = VBUS__V1__PING__INIT;
        size_t len = meta_prefix(frame + VBUS_FRAME_HEADER_SIZE, sel >> 5, arg & 1, arg & 2);
        size_t half = n / 2;

        put(&len, p, half);
        send_frame(fd, id, VBUS_FLAG_MORE | VBUS_FLAG_META, len);
        switch ((arg >> 2) % 4) {
        case 1:
                len = 0;
                put_record(&len, 1, 'b');
                send_frame(fd, id, VBUS_FLAG_BATCH, len);
                break;
        case 2:
                send_control(fd, VBUS_FRAME_PING, 0, &ping.base);
                break;
        case 3:
                len = meta_prefix(frame + VBUS_FRAME_HEADER_SIZE, 0, false, 0);
                put(&len, "o", 1);
                send_frame(fd, pick_stream((uint8_t)(sel + 1)), VBUS_FLAG_META, len);
                break;
        default:
                break;
        }
        send_data(fd, id, arg & 0x40 ? VBUS_FLAG_MORE : 0, p + half, n - half);
}

static void send_end(int fd, uint8_t type, uint32_t id, uint8_t arg, const uint8_t *p, size_t n)
{
        Vbus__V1__End e = VBUS__V1__END__INIT;
        char msg[64];

        /* At most 63 bytes by the precision: it fits. */
        (void)snprintf(msg, sizeof(msg), "%.*s", (int)(n < 63 ? n : 63), (const char *)p);
        e.status = arg % 14;
        e.message = memchr(p, 0, n) ? (char *)"" : msg;
        send_control(fd, type, id, &e.base);
}

static void send_link_frame(int fd, uint8_t arg)
{
        Vbus__V1__Ping ping = VBUS__V1__PING__INIT;
        Vbus__V1__GoAway g = VBUS__V1__GO_AWAY__INIT;
        Vbus__V1__Error err = VBUS__V1__ERROR__INIT;

        switch (arg % 4) {
        case 0:
                ping.opaque = arg;
                send_control(fd, VBUS_FRAME_PING, 0, &ping.base);
                break;
        case 1:
                g.status = VBUS__V1__STATUS__STATUS_SHUTTING_DOWN;
                send_control(fd, VBUS_FRAME_GOAWAY, 0, &g.base);
                break;
        case 2:
                err.status = VBUS__V1__STATUS__STATUS_PROTOCOL_ERROR;
                send_control(fd, VBUS_FRAME_ERROR, 0, &err.base);
                break;
        default: /* the broker goes away without a word */
                (void)shutdown(fd, SHUT_RDWR);
                break;
        }
}

static void step(int fd, uint8_t op, uint8_t sel, uint8_t arg, const uint8_t *p, size_t len)
{
        uint32_t id = pick_stream(sel);
        size_t n;

        switch ((op & ~OP_NO_PROCESS) % 12) {
        case 0: /* any flags, any bytes */
                send_data(fd, id, arg & 0x0f, p, len);
                break;
        case 1: /* behind a Meta prefix, with the flags @arg adds */
                n = meta_prefix(frame + VBUS_FRAME_HEADER_SIZE, sel >> 5, arg & 1,
                                arg & 2 ? len : 0);
                put(&n, p, len);
                send_frame(fd, id,
                           (uint8_t)(VBUS_FLAG_META | (arg & 0x10 ? VBUS_FLAG_MORE : 0) |
                                     (arg & 0x20 ? VBUS_FLAG_BATCH : 0) |
                                     (arg & 0x40 ? VBUS_FLAG_RETAIN : 0)),
                           n);
                break;
        case 2:
                send_batch(fd, id, sel, arg, p, len);
                break;
        case 3:
                send_end(fd, VBUS_FRAME_END, id, arg, p, len);
                break;
        case 4:
                send_end(fd, VBUS_FRAME_RESET, id, arg, p, len);
                break;
        case 5:
                send_grant(fd, VBUS_FRAME_ACCEPT, id, (uint32_t)arg << (len % 24));
                break;
        case 6: {
                Vbus__V1__Reject rj = VBUS__V1__REJECT__INIT;

                rj.status = arg % 14;
                send_control(fd, VBUS_FRAME_REJECT, id, &rj.base);
                break;
        }
        case 7:
                send_grant(fd, VBUS_FRAME_CREDIT, id, (uint32_t)arg << (len % 24));
                break;
        case 8:
                client_act(sel, arg, p, len);
                break;
        case 9:
                send_fragments(fd, id, sel, arg, p, len);
                break;
        case 10:
                send_link_frame(fd, arg);
                break;
        default:
                flow_off = true; /* any bytes: the harness no longer knows what the client read */
                send_bytes(fd, p, len);
                break;
        }
}

/* Accepts the client's streams opened since the @from-th: the publisher with a window of
 * 1 MiB. */
static void accept_from(size_t from)
{
        for (size_t i = from; i < n_ids; i++)
                send_grant(link_fd, VBUS_FRAME_ACCEPT, ids[i], 1024 * 1024);
        process(link_fd, &dec);
}

/* Takes the client's connection and answers its HELLO with what the config grants. Return:
 * whether the client is ready. */
static bool broker_accept(void)
{
        Vbus__V1__Hello hello = VBUS__V1__HELLO__INIT;

        link_fd = accept(listen_fd, NULL, NULL);
        if (link_fd < 0)
                return false;
        if ((cfg & CFG_TOP_MASK) == CFG_SMALL_BUFFERS) {
                int small = 4096;

                (void)setsockopt(vbus_conn_get_fd(conn), SOL_SOCKET, SO_SNDBUF, &small,
                                 sizeof(small));
                (void)setsockopt(link_fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
        }
        vbus__frame_decoder_deinit(&dec);
        vbus__frame_decoder_init(&dec, VBUS_FRAME_MAX_LIMIT);
        memset(flows, 0, sizeof(flows)); /* stream ids start again on a new link */
        flow_off = false;
        hello.version_min = 1;
        hello.version_max = 1;
        hello.version = 1;
        hello.max_frame = cfg & CFG_SMALL ? VBUS_FRAME_MAX_MIN : VBUS_FRAME_MAX_DEFAULT;
        hello.features = (cfg & CFG_CHARGE ? VBUS_FEATURE_MESSAGE_CHARGE : 0) |
                         (cfg & CFG_BATCH ? VBUS_FEATURE_BATCH : 0) |
                         (cfg & CFG_RETAIN ? VBUS_FEATURE_RETAIN : 0);
        send_control(link_fd, VBUS_FRAME_HELLO, 0, &hello.base);
        for (int i = 0; i < 50 && vbus_conn_get_state(conn) != VBUS_CONN_READY; i++) {
                drain(link_fd, &dec);
                (void)vbus_conn_process(conn);
        }
        drain(link_fd, &dec); /* the OPENs of the streams it (re)opens once ready */
        return vbus_conn_get_state(conn) == VBUS_CONN_READY;
}

/*
 * The client lost its link (it refused what it read, or the harness closed it). Once per input,
 * when the config asks, the harness waits for its reconnect (after a back-off of 50 ms) and
 * serves it again, so that what follows a lost link is played too: messages after a gap, streams
 * opened again, a publisher's abandoned fragments. Return: whether the script goes on.
 */
static bool reconnect(void)
{
        struct pollfd pfd = {.fd = listen_fd, .events = POLLIN};
        size_t from = n_ids;

        if ((cfg & CFG_TOP_MASK) != CFG_RECONNECT || reconnected)
                return false;
        reconnected = true;
        close(link_fd);
        link_fd = -1;
        for (int i = 0; i < 100 && poll(&pfd, 1, 0) == 0; i++)
                (void)vbus_conn_wait(conn, 20000);
        if (!(pfd.revents & POLLIN) || !broker_accept())
                return false;
        if (cfg & CFG_ACCEPT)
                accept_from(from);
        return true;
}

static void play(const uint8_t *data, size_t size)
{
        size_t off = 0;

        while (off + 4 <= size) {
                uint8_t op = data[off], sel = data[off + 1], arg = data[off + 2];
                size_t len = data[off + 3];
                const uint8_t *p = data + off + 4;

                if (len > size - off - 4)
                        len = size - off - 4;
                off += 4 + len;
                step(link_fd, op, sel, arg, p, len);
                if (!(op & OP_NO_PROCESS))
                        process(link_fd, &dec);
                /* The client dropped the link (a protocol error, as it should), or the harness
                 * closed it. */
                if (vbus_conn_get_state(conn) != VBUS_CONN_READY && !reconnect())
                        return;
        }
        process(link_fd, &dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char url[128];

        setup();
        flush_backlog();
        cfg = size > 0 ? data[0] : 0;
        reconnected = false;
        n_ids = 0;
        next_seq = 1;
        sub_block = sub_drop = NULL;
        pub = NULL;
        if ((size_t)snprintf(url, sizeof(url), "unix:%s", fuzz_sock_path) >= sizeof(url) ||
            vbus_conn_open(url, &conn) < 0)
                abort();
        (void)vbus_conn_process(conn); /* connects and sends HELLO */
        if (broker_accept()) {
                subscribe(&sub_block, VBUS_SLOW_BLOCK, "t.*");
                subscribe(&sub_drop, VBUS_SLOW_DROP, "t.>");
                if (vbus_publisher_open(conn, "t.a", &pub) < 0)
                        pub = NULL;
                process(link_fd, &dec);
                if (cfg & CFG_ACCEPT)
                        accept_from(0);
                if (size > 0)
                        play(data + 1, size - 1);
        }
        if (link_fd >= 0)
                close(link_fd);
        link_fd = -1;
        for (int i = 0; i < 3; i++)
                (void)vbus_conn_process(conn); /* sees the link go */
        /* The handles the script left are freed by the connection. */
        conn = vbus_conn_free(conn);
        vbus__frame_decoder_deinit(&dec);
        return 0;
}
