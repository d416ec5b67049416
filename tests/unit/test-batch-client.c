/* SPDX-License-Identifier: MIT */
/*
 * Batches (protocol.md 5.5) as libvbus handles them, against a scripted broker: a vbus_conn
 * connects over a UNIX socket to this test, which answers HELLO with BATCH and MESSAGE_CHARGE and
 * then writes and reads frames by hand.
 *
 * As a subscriber, the client must give each record of a batch as one message, with the Meta's
 * sequence plus its index, the Meta's dropped count on the first only, the same sender on all;
 * return exactly the window it was charged (the length plus the charge per record); and drop the
 * link, giving nothing, for a batch that breaks a rule (over the window, malformed records, a
 * retained Meta). As a publisher it must combine messages into batch frames that keep their order
 * and never take more window than it was granted.
 *
 * A batch where none is allowed (BATCH not negotiated, on a stream that is not a subscription,
 * without its Meta prefix), and a message without its prefix, are protocol errors: the client
 * delivers nothing, tells the broker with ERROR{PROTOCOL_ERROR}, drops the link and says -EPROTO
 * in vbus_conn_get_last_error() until a link is ready again.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include <vbus/vbus.h>

#include "../common/rawframe.h"
#include "batch.h"
#include "control.h"
#include "frame.h"
#include "vbus/v1/link.pb-c.h"

enum {
        SUB_WINDOW = 1024 * 1024, /* what libvbus grants a subscription (pubsub.c) */
        MAX_MSGS = 64,
};

/* The scripted broker's side of one connection, and what the client's callbacks saw. */
typedef struct Rig {
        int listen_fd, fd;
        char path[108];
        VbusFrameDecoder dec;
        vbus_conn *c;
        bool client_offered_batch;
        uint64_t features;   /* what the rig's HELLO grants */
        int error_status;    /* the status of the client's last ERROR frame (0: none) */
        uint32_t open_id;    /* the client's last OPEN */
        uint64_t credit_sum; /* CREDIT increments from the client on open_id */
        uint32_t n_credits;
        /* The DATA frames the client sent on open_id. */
        uint64_t data_cost, data_msgs, batch_frames;
        uint8_t next_byte; /* publisher: the first byte the next message must have */
        uint64_t order_errors;
        /* Subscriber callbacks. */
        vbus_subscription *sub;
        uint32_t n_got;
        uint64_t seq[MAX_MSGS], dropped[MAX_MSGS];
        size_t len[MAX_MSGS];
        uint8_t first[MAX_MSGS];
        uint32_t domid[MAX_MSGS];
        bool gap[MAX_MSGS];
        uint32_t free_at; /* the callback frees the subscription at this message (1-based) */
} Rig;

static void on_client_frame(Rig *r, const VbusFrame *f)
{
        if (f->header.type == VBUS_FRAME_HELLO) {
                VbusControl ctl = VBUS_CONTROL_NULL;

                assert_int_equal(vbus__control_decode(&f->header, f->payload,
                                                      VBUS_CONTROL_DECODE_BUDGET, &ctl),
                                 0);
                r->client_offered_batch =
                        ((const Vbus__V1__Hello *)ctl.msg)->features & VBUS_FEATURE_BATCH;
                vbus__control_deinit(&ctl);
        } else if (f->header.type == VBUS_FRAME_ERROR) {
                VbusControl ctl = VBUS_CONTROL_NULL;

                assert_int_equal(vbus__control_decode(&f->header, f->payload,
                                                      VBUS_CONTROL_DECODE_BUDGET, &ctl),
                                 0);
                r->error_status = (int)((const Vbus__V1__Error *)ctl.msg)->status;
                vbus__control_deinit(&ctl);
        } else if (f->header.type == VBUS_FRAME_OPEN) {
                r->open_id = f->header.stream_id;
        } else if (f->header.type == VBUS_FRAME_CREDIT && f->header.stream_id == r->open_id) {
                VbusControl ctl = VBUS_CONTROL_NULL;

                assert_int_equal(vbus__control_decode(&f->header, f->payload,
                                                      VBUS_CONTROL_DECODE_BUDGET, &ctl),
                                 0);
                r->credit_sum += ((const Vbus__V1__Credit *)ctl.msg)->increment;
                r->n_credits++;
                vbus__control_deinit(&ctl);
        } else if (f->header.type == VBUS_FRAME_DATA && f->header.stream_id == r->open_id) {
                uint32_t n = 1;

                if (f->header.flags & VBUS_FLAG_BATCH) {
                        VbusBatchIter it;
                        const uint8_t *d;
                        size_t l;

                        assert_int_equal(vbus__batch_count(f->payload, f->header.length, false, &n),
                                         0);
                        r->batch_frames++;
                        vbus__batch_iter_init(&it, f->payload, f->header.length, n);
                        while (vbus__batch_next(&it, &d, &l) == 1)
                                if (l == 0 || d[0] != r->next_byte++)
                                        r->order_errors++;
                } else if (f->header.length == 0 || f->payload[0] != r->next_byte++) {
                        r->order_errors++;
                }
                r->data_msgs += n;
                r->data_cost += f->header.length + (uint64_t)n * VBUS_MESSAGE_CHARGE;
        }
}

/* Reads what the client wrote (after letting it process). */
static void pump(Rig *r)
{
        uint8_t buf[65536];
        ssize_t n;

        (void)vbus_conn_process(r->c);
        while ((n = recv(r->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
                size_t pos = 0;

                while (pos < (size_t)n) {
                        VbusFrame f;
                        size_t used = 0;
                        int k = vbus__frame_decoder_feed(&r->dec, buf + pos, (size_t)n - pos, &used,
                                                         &f);

                        assert_true(k >= 0);
                        pos += used;
                        if (k == 0)
                                break;
                        on_client_frame(r, &f);
                }
                (void)vbus_conn_process(r->c);
        }
}

/* Takes the client's connection (a first one or a reconnect) and answers its HELLO with the
 * rig's features: the client is ready. */
static void rig_accept(Rig *r)
{
        Vbus__V1__Hello hello = VBUS__V1__HELLO__INIT;

        r->fd = accept(r->listen_fd, NULL, NULL);
        assert_true(r->fd >= 0);
        vbus__frame_decoder_deinit(&r->dec);
        vbus__frame_decoder_init(&r->dec, VBUS_FRAME_MAX_LIMIT);
        hello.version_min = 1;
        hello.version_max = 1;
        hello.version = 1;
        hello.max_frame = VBUS_FRAME_MAX_DEFAULT;
        hello.features = r->features;
        raw_send_control(r->fd, VBUS_FRAME_HELLO, 0, &hello.base, 0);
        for (int i = 0; i < 50 && vbus_conn_get_state(r->c) != VBUS_CONN_READY; i++)
                pump(r);
        assert_int_equal(vbus_conn_get_state(r->c), VBUS_CONN_READY);
}

static int rig_up_with(void **state, uint64_t features)
{
        Rig *r = calloc(1, sizeof(*r));
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        char url[128];

        assert_non_null(r);
        r->features = features;
        (void)snprintf(r->path, sizeof(r->path), "/tmp/vbus-test-batch-client-%d.sock",
                       (int)getpid());
        (void)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", r->path);
        (void)unlink(r->path);
        r->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
        assert_true(r->listen_fd >= 0);
        assert_int_equal(bind(r->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(r->listen_fd, 1), 0);
        (void)snprintf(url, sizeof(url), "unix:%s", r->path);
        assert_int_equal(vbus_conn_open(url, &r->c), 0);
        (void)vbus_conn_process(r->c); /* connects and sends HELLO */
        vbus__frame_decoder_init(&r->dec, VBUS_FRAME_MAX_LIMIT);
        rig_accept(r);
        assert_true(r->client_offered_batch);
        *state = r;
        return 0;
}

static int rig_up(void **state)
{
        return rig_up_with(state, VBUS_FEATURE_BATCH | VBUS_FEATURE_MESSAGE_CHARGE);
}

/* A broker that charges messages but takes no batches. */
static int rig_up_no_batch(void **state)
{
        return rig_up_with(state, VBUS_FEATURE_MESSAGE_CHARGE);
}

static int rig_down(void **state)
{
        Rig *r = *state;

        r->sub = vbus_subscription_free(r->sub);
        close(r->fd);
        for (int i = 0; i < 3; i++)
                (void)vbus_conn_process(r->c);
        vbus_conn_free(r->c);
        vbus__frame_decoder_deinit(&r->dec);
        close(r->listen_fd);
        (void)unlink(r->path);
        free(r);
        return 0;
}

static void on_msg(vbus_subscription *s, const vbus_message *m, void *userdata)
{
        Rig *r = userdata;
        size_t n;
        const uint8_t *d = vbus_message_get_data(m, &n);
        uint32_t i = r->n_got++;

        if (i < MAX_MSGS) {
                r->seq[i] = vbus_message_get_sequence(m);
                r->dropped[i] = vbus_message_get_dropped(m);
                r->len[i] = n;
                r->first[i] = n ? d[0] : 0;
                r->domid[i] = vbus_message_get_sender_domid(m);
                r->gap[i] = vbus_message_follows_gap(m);
        }
        if (r->free_at && r->n_got == r->free_at) {
                assert_ptr_equal(s, r->sub);
                r->sub = vbus_subscription_free(s);
        }
}

/* Subscribes to t.a (DROP) and accepts the subscription. */
static void subscribe(Rig *r)
{
        Vbus__V1__Accept a = VBUS__V1__ACCEPT__INIT;

        assert_int_equal(vbus_subscribe(r->c, "t.a", VBUS_SLOW_DROP, on_msg, r, &r->sub), 0);
        pump(r);
        assert_true(r->open_id != 0);
        raw_send_control(r->fd, VBUS_FRAME_ACCEPT, r->open_id, &a.base, 0);
        pump(r);
        assert_true(vbus_subscription_is_active(r->sub));
}

/* A Meta prefix (its varint and bytes) for topic t.a from dom7 "x" into @out; its size. */
static size_t meta_prefix(uint8_t *out, uint64_t seq, uint64_t dropped, bool retained)
{
        Vbus__V1__Meta m = VBUS__V1__META__INIT;
        Vbus__V1__Identity id = VBUS__V1__IDENTITY__INIT;
        size_t n;
        int k;

        id.domid = 7;
        id.domain_name = (char *)"x";
        m.topic = (char *)"t.a";
        m.sender = &id;
        m.sequence = seq;
        m.dropped = dropped;
        m.retained = retained;
        n = vbus__v1__meta__get_packed_size(&m);
        k = vbus__meta_encode_prefix(n, out);
        assert_true(k > 0);
        (void)vbus__v1__meta__pack(&m, out + k);
        return (size_t)k + n;
}

/* Sends a batch frame on the subscription: the Meta, then @n records, record i being @lens[i]
 * bytes of the byte @first + i (@lens NULL: one byte each). Returns the frame's cost. */
static uint64_t send_batch(Rig *r, uint64_t seq, uint64_t dropped, bool retained, uint32_t n,
                           const uint32_t *lens, uint8_t first)
{
        static uint8_t buf[VBUS_FRAME_HEADER_SIZE + VBUS_FRAME_MAX_DEFAULT];
        VbusFrameHeader h = {.type = VBUS_FRAME_DATA,
                             .flags = VBUS_FLAG_BATCH | VBUS_FLAG_META,
                             .stream_id = r->open_id};
        size_t len = meta_prefix(buf + VBUS_FRAME_HEADER_SIZE, seq, dropped, retained);

        for (uint32_t i = 0; i < n; i++) {
                uint32_t l = lens ? lens[i] : 1;

                assert_true(len + VBUS_BATCH_LEN_MAX + l <= VBUS_FRAME_MAX_DEFAULT);
                len += vbus__batch_put_len(buf + VBUS_FRAME_HEADER_SIZE + len, l);
                memset(buf + VBUS_FRAME_HEADER_SIZE + len, (uint8_t)(first + i), l);
                len += l;
        }
        h.length = (uint32_t)len;
        vbus__frame_header_encode(&h, buf);
        raw_send_all(r->fd, buf, VBUS_FRAME_HEADER_SIZE + len, 0);
        return len + (uint64_t)n * VBUS_MESSAGE_CHARGE;
}

/* Each record one message: sequence from the Meta's plus its index, dropped on the first only,
 * the sender on all, empty records as empty messages. */
static void test_subscriber_batch_messages(void **state)
{
        static const uint32_t lens[] = {1, 0, 2, 5};
        Rig *r = *state;

        subscribe(r);
        (void)send_batch(r, 10, 5, false, 4, lens, 'a');
        pump(r);
        assert_int_equal(r->n_got, 4);
        for (uint32_t i = 0; i < 4; i++) {
                assert_int_equal(r->seq[i], 10 + i);
                assert_int_equal(r->dropped[i], i == 0 ? 5 : 0);
                assert_int_equal(r->len[i], lens[i]);
                if (lens[i])
                        assert_int_equal(r->first[i], 'a' + i);
                assert_int_equal(r->domid[i], 7);
                assert_false(r->gap[i]);
        }
        /* The next batch goes on from there. */
        (void)send_batch(r, 14, 0, false, 2, NULL, 'x');
        pump(r);
        assert_int_equal(r->n_got, 6);
        assert_int_equal(r->seq[4], 14);
        assert_int_equal(r->seq[5], 15);
        assert_int_equal(vbus_conn_get_state(r->c), VBUS_CONN_READY);
}

/* The window given back is what the batches cost: their length and the charge per record, in
 * one CREDIT once a quarter of the window is owed. */
static void test_subscriber_batch_credit(void **state)
{
        Rig *r = *state;
        uint64_t cost = 0;
        int frames = 0;

        subscribe(r);
        while (r->n_credits == 0 && frames < 100) {
                cost += send_batch(r, 1 + (uint64_t)frames * 500, 0, false, 500, NULL, 0);
                frames++;
                pump(r);
        }
        assert_int_equal(r->n_credits, 1);
        assert_int_equal(r->credit_sum, cost);
        assert_true(cost >= SUB_WINDOW / 4);
        assert_int_equal(r->n_got, (uint32_t)frames * 500);
}

/* A batch of empty records whose charge passes the window: the client drops the link and
 * delivers none of it. */
static void test_subscriber_batch_over_window(void **state)
{
        Rig *r = *state;
        uint32_t *lens = calloc(16400, sizeof(uint32_t));

        assert_non_null(lens);
        subscribe(r);
        /* 16400 empty records: 16400 bytes and 16400 charges, over 1 MiB. */
        assert_true(send_batch(r, 1, 0, false, 16400, lens, 0) > SUB_WINDOW);
        free(lens);
        pump(r);
        assert_int_equal(r->n_got, 0);
        assert_int_not_equal(vbus_conn_get_state(r->c), VBUS_CONN_READY);
}

/* Records that do not parse: the link is dropped, nothing delivered. */
static void test_subscriber_batch_malformed(void **state)
{
        static const uint8_t past_end[] = {1, 'a', 9, 'b'};
        Rig *r = *state;
        uint8_t buf[VBUS_FRAME_HEADER_SIZE + 64];
        VbusFrameHeader h = {.type = VBUS_FRAME_DATA, .flags = VBUS_FLAG_BATCH | VBUS_FLAG_META};
        size_t len;

        subscribe(r);
        h.stream_id = r->open_id;
        len = meta_prefix(buf + VBUS_FRAME_HEADER_SIZE, 1, 0, false);
        memcpy(buf + VBUS_FRAME_HEADER_SIZE + len, past_end, sizeof(past_end));
        len += sizeof(past_end);
        h.length = (uint32_t)len;
        vbus__frame_header_encode(&h, buf);
        raw_send_all(r->fd, buf, VBUS_FRAME_HEADER_SIZE + len, 0);
        pump(r);
        assert_int_equal(r->n_got, 0);
        assert_int_not_equal(vbus_conn_get_state(r->c), VBUS_CONN_READY);
}

/* A retained value is never batched: a batch whose Meta says retained is refused whole. */
static void test_subscriber_batch_retained(void **state)
{
        Rig *r = *state;

        subscribe(r);
        (void)send_batch(r, 1, 0, true, 3, NULL, 'a');
        pump(r);
        assert_int_equal(r->n_got, 0);
        assert_int_not_equal(vbus_conn_get_state(r->c), VBUS_CONN_READY);
}

/* A callback that frees its subscription in the middle of a batch gets no more of it. */
static void test_subscriber_free_inside_batch(void **state)
{
        Rig *r = *state;

        subscribe(r);
        r->free_at = 2;
        (void)send_batch(r, 1, 0, false, 5, NULL, 'a');
        pump(r);
        assert_int_equal(r->n_got, 2);
        assert_null(r->sub);
        assert_int_equal(vbus_conn_get_state(r->c), VBUS_CONN_READY);
}

/* The client refused what the rig sent as a protocol error: nothing delivered, the broker told
 * with ERROR{PROTOCOL_ERROR}, the link dropped, and the reason in vbus_conn_get_last_error(). */
static void assert_refused(Rig *r)
{
        pump(r);
        assert_int_equal(r->n_got, 0);
        assert_int_not_equal(vbus_conn_get_state(r->c), VBUS_CONN_READY);
        assert_int_equal(r->error_status, VBUS__V1__STATUS__STATUS_PROTOCOL_ERROR);
        assert_int_equal(vbus_conn_get_last_error(r->c), -EPROTO);
}

/* Sends one DATA frame of @n bytes (@p, at most a Meta prefix and 64 bytes) on @id with @flags. */
static void send_data_frame(Rig *r, uint32_t id, uint8_t flags, const uint8_t *p, size_t n)
{
        uint8_t buf[VBUS_FRAME_HEADER_SIZE + 2 + VBUS_META_MAX + 64];
        VbusFrameHeader h = {
                .type = VBUS_FRAME_DATA, .flags = flags, .stream_id = id, .length = (uint32_t)n};

        assert_true(n <= 2 + VBUS_META_MAX + 64);
        vbus__frame_header_encode(&h, buf);
        memcpy(buf + VBUS_FRAME_HEADER_SIZE, p, n);
        raw_send_all(r->fd, buf, VBUS_FRAME_HEADER_SIZE + n, 0);
}

/* A good batch toward a client that did not get BATCH in the broker's HELLO. */
static void test_subscriber_batch_not_negotiated(void **state)
{
        Rig *r = *state;

        subscribe(r);
        (void)send_batch(r, 1, 0, false, 2, NULL, 'a');
        assert_refused(r);
}

/* A batch, Meta prefix and all, on the client's PUBLISH stream: the broker batches only toward
 * subscriptions. */
static void test_batch_on_publish_stream(void **state)
{
        Rig *r = *state;
        Vbus__V1__Accept a = VBUS__V1__ACCEPT__INIT;
        vbus_publisher *p = NULL;

        subscribe(r);
        assert_int_equal(vbus_publisher_open(r->c, "t.a", &p), 0);
        pump(r);
        a.initial_credit = 65536;
        raw_send_control(r->fd, VBUS_FRAME_ACCEPT, r->open_id, &a.base, 0);
        pump(r);
        assert_int_equal(vbus_publisher_get_status(p, NULL), 0);
        (void)send_batch(r, 1, 0, false, 2, NULL, 'a');
        assert_refused(r);
        vbus_publisher_free(p);
}

/* A batch on the subscription without its Meta prefix (no META flag: records alone). */
static void test_subscriber_batch_without_meta(void **state)
{
        static const uint8_t records[] = {1, 'a', 1, 'b'};
        Rig *r = *state;

        subscribe(r);
        send_data_frame(r, r->open_id, VBUS_FLAG_BATCH, records, sizeof(records));
        assert_refused(r);
}

/* A message without the META flag whose bytes happen to read as a prefix and a body: the client
 * does not guess a Meta from a message's bytes. */
static void test_subscriber_message_without_meta(void **state)
{
        Rig *r = *state;
        uint8_t buf[64];
        size_t n = meta_prefix(buf, 1, 0, false);

        subscribe(r);
        buf[n++] = 'x';
        send_data_frame(r, r->open_id, 0, buf, n);
        assert_refused(r);
}

/* A Meta with 300 fields this version does not know (a later broker's): protobuf-c keeps them,
 * and their decoded form outgrows the subscriber's stack arena. The message is delivered all
 * the same, with its topic, sender and sequence; unknown fields are no protocol error. */
static void test_subscriber_meta_unknown_fields(void **state)
{
        Rig *r = *state;
        Vbus__V1__Meta m = VBUS__V1__META__INIT;
        Vbus__V1__Identity id = VBUS__V1__IDENTITY__INIT;
        uint8_t meta[VBUS_META_MAX], buf[2 + VBUS_META_MAX + 1];
        size_t n;
        int k;

        id.domid = 7;
        id.domain_name = (char *)"x";
        m.topic = (char *)"t.a";
        m.sender = &id;
        m.sequence = 42;
        n = vbus__v1__meta__pack(&m, meta);
        for (int i = 0; i < 300; i++) {
                meta[n++] = 0xc0; /* field 1000, varint: tag 8000 */
                meta[n++] = 0x3e;
                meta[n++] = 0x01;
        }
        assert_true(n <= VBUS_META_MAX);
        k = vbus__meta_encode_prefix(n, buf);
        assert_true(k > 0);
        memcpy(buf + k, meta, n);
        buf[(size_t)k + n] = 'z';
        subscribe(r);
        send_data_frame(r, r->open_id, VBUS_FLAG_META, buf, (size_t)k + n + 1);
        pump(r);
        assert_int_equal(r->n_got, 1);
        assert_int_equal(r->seq[0], 42);
        assert_int_equal(r->domid[0], 7);
        assert_int_equal(r->len[0], 1);
        assert_int_equal(r->first[0], 'z');
        assert_int_equal(vbus_conn_get_state(r->c), VBUS_CONN_READY);
}

/* The reason stays until a link is ready again: then vbus_conn_get_last_error() is 0. */
static void test_last_error_cleared_when_ready(void **state)
{
        static const uint8_t records[] = {1, 'a'};
        Rig *r = *state;
        struct pollfd pfd;

        subscribe(r);
        send_data_frame(r, r->open_id, VBUS_FLAG_BATCH, records, sizeof(records));
        assert_refused(r);
        close(r->fd);
        /* The client reconnects after its back-off; the rig takes it when it comes. */
        pfd = (struct pollfd){.fd = r->listen_fd, .events = POLLIN};
        for (int i = 0; i < 100 && poll(&pfd, 1, 0) == 0; i++) {
                assert_int_equal(vbus_conn_get_last_error(r->c), -EPROTO);
                (void)vbus_conn_wait(r->c, 100000);
        }
        assert_int_equal(pfd.revents & POLLIN, POLLIN);
        rig_accept(r);
        assert_int_equal(vbus_conn_get_last_error(r->c), 0);
}

/*
 * A publisher whose link is slow to drain (small socket buffers, the broker reads only now and
 * then) combines its messages into batch frames: all of them arrive, in order, and what it sent
 * never costs more window than it was granted.
 */
static void test_publisher_batches_within_window(void **state)
{
        enum { CREDIT = 65536 };
        Rig *r = *state;
        Vbus__V1__Accept a = VBUS__V1__ACCEPT__INIT;
        vbus_publisher *p = NULL;
        int small = 4096;
        uint8_t msg[16];
        uint64_t published = 0, granted = CREDIT;

        assert_int_equal(
                setsockopt(vbus_conn_get_fd(r->c), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)),
                0);
        assert_int_equal(setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
        assert_int_equal(vbus_publisher_open(r->c, "t.a", &p), 0);
        pump(r);
        assert_true(r->open_id != 0);
        a.initial_credit = CREDIT;
        raw_send_control(r->fd, VBUS_FRAME_ACCEPT, r->open_id, &a.base, 0);
        pump(r);
        r->next_byte = 0;
        for (int round = 0; round < 40; round++) {
                int k;

                /* Publish until the client says not now (window or link full). */
                for (k = 0; k < 2000; k++) {
                        memset(msg, (uint8_t)published, sizeof(msg));
                        if (vbus_publish(p, msg, sizeof(msg)) != 0)
                                break;
                        published++;
                }
                pump(r);
                /* Whatever the client sent so far cost at most what it was granted. */
                assert_true(r->data_cost <= granted);
                if (r->data_cost + 1000 > granted) {
                        Vbus__V1__Credit cr = VBUS__V1__CREDIT__INIT;

                        cr.increment = CREDIT;
                        granted += CREDIT;
                        raw_send_control(r->fd, VBUS_FRAME_CREDIT, r->open_id, &cr.base, 0);
                }
        }
        assert_int_equal(vbus_conn_flush(r->c, 5000000), 0);
        for (int i = 0; i < 20; i++)
                pump(r);
        fprintf(stderr, "published %llu, received %llu in %llu batch frames, cost %llu of %llu\n",
                (unsigned long long)published, (unsigned long long)r->data_msgs,
                (unsigned long long)r->batch_frames, (unsigned long long)r->data_cost,
                (unsigned long long)granted);
        assert_int_equal(r->data_msgs, published);
        assert_int_equal(r->order_errors, 0);
        assert_true(r->data_cost <= granted);
        assert_true(r->batch_frames > 0); /* it did combine */
        vbus_publisher_free(p);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_subscriber_batch_messages, rig_up, rig_down),
                cmocka_unit_test_setup_teardown(test_subscriber_batch_credit, rig_up, rig_down),
                cmocka_unit_test_setup_teardown(test_subscriber_batch_over_window, rig_up,
                                                rig_down),
                cmocka_unit_test_setup_teardown(test_subscriber_batch_malformed, rig_up, rig_down),
                cmocka_unit_test_setup_teardown(test_subscriber_batch_retained, rig_up, rig_down),
                cmocka_unit_test_setup_teardown(test_subscriber_free_inside_batch, rig_up,
                                                rig_down),
                cmocka_unit_test_setup_teardown(test_publisher_batches_within_window, rig_up,
                                                rig_down),
                cmocka_unit_test_setup_teardown(test_subscriber_batch_not_negotiated,
                                                rig_up_no_batch, rig_down),
                cmocka_unit_test_setup_teardown(test_batch_on_publish_stream, rig_up, rig_down),
                cmocka_unit_test_setup_teardown(test_subscriber_batch_without_meta, rig_up,
                                                rig_down),
                cmocka_unit_test_setup_teardown(test_subscriber_message_without_meta, rig_up,
                                                rig_down),
                cmocka_unit_test_setup_teardown(test_subscriber_meta_unknown_fields, rig_up,
                                                rig_down),
                cmocka_unit_test_setup_teardown(test_last_error_cleared_when_ready, rig_up,
                                                rig_down),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
