/* SPDX-License-Identifier: MIT */
/*
 * Batches through the real broker (vchand's loop, peer, endpoint, session and pub/sub), driven
 * in process by two scripted peers on socketpairs, as tests/fuzz/fuzz-peer.c does, so that what
 * happens within one loop turn is exact: which frames the broker reads in a turn is the test's
 * choice, and what it writes is read back frame by frame.
 *
 * The guarantee under test (protocol.md 5.5 and 6): a DROP subscriber is told of every message
 * it lost, in Meta.dropped of a later delivery, batches or not; its sequence numbers count its
 * deliveries with neither hole nor repeat; received + dropped == published.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "../common/rawframe.h"
#include "batch.h"
#include "broker.h"
#include "config.h"
#include "control.h"
#include "frame.h"
#include "transport.h"
#include "vbus/v1/link.pb-c.h"

enum {
        SUB_ID = 1, /* the subscriber's SUBSCRIBE */
        PUB_ID = 1, /* the publisher's PUBLISH */
};

/* A scripted peer: our end of its socketpair, and what the broker sent it. */
typedef struct Scripted {
        int fd;
        VbusFrameDecoder dec;
        bool hello;
        bool accepted;
        /* Deliveries on SUB_ID: messages, Meta.dropped summed, the last Meta.sequence. */
        uint64_t received, dropped, last_seq, seq_errors, frames, batches;
} Scripted;

static void add_peer(Broker *b, Scripted *s, uint32_t domid, const char *name)
{
        Identity ident = {.domid = domid};
        VbusTransport t;
        int sv[2];

        *s = (Scripted){.fd = -1};
        vbus__frame_decoder_init(&s->dec, VBUS_FRAME_MAX_LIMIT);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        (void)snprintf(ident.domain_name, sizeof(ident.domain_name), "%s", name);
        assert_int_equal(vbus__transport_init_unix(&t, sv[0]), 0);
        s->fd = sv[1];
        assert_int_equal(broker_add_peer(b, &t, &ident, domid), 0);
}

/* One delivery of @n messages (a batch, or one message when @n is 1) with the Meta @meta. */
static void delivery(Scripted *s, const uint8_t *meta, size_t n_meta, uint32_t n)
{
        Vbus__V1__Meta *m = vbus__v1__meta__unpack(NULL, n_meta, meta);

        assert_non_null(m);
        if (m->sequence != s->last_seq + 1)
                s->seq_errors++;
        s->last_seq = m->sequence + n - 1;
        s->dropped += m->dropped;
        s->received += n;
        vbus__v1__meta__free_unpacked(m, NULL);
}

static void on_frame(Scripted *s, const VbusFrame *f)
{
        if (f->header.type == VBUS_FRAME_HELLO)
                s->hello = true;
        else if (f->header.type == VBUS_FRAME_ACCEPT)
                s->accepted = true;
        if (f->header.type != VBUS_FRAME_DATA || f->header.stream_id != SUB_ID)
                return;
        s->frames++;
        {
                const uint8_t *meta, *body;
                size_t n_meta, n_body;
                uint32_t n = 1;

                assert_true(f->header.flags & VBUS_FLAG_META);
                assert_int_equal(vbus__meta_split(f->payload, f->header.length, &meta, &n_meta,
                                                  &body, &n_body),
                                 0);
                if (f->header.flags & VBUS_FLAG_BATCH) {
                        assert_int_equal(vbus__batch_count(f->payload, f->header.length, true, &n),
                                         0);
                        s->batches++;
                }
                delivery(s, meta, n_meta, n);
        }
}

/* Reads everything the broker wrote to @s. */
static void drain(Scripted *s)
{
        uint8_t buf[65536];
        ssize_t n;

        while ((n = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
                size_t pos = 0;

                while (pos < (size_t)n) {
                        VbusFrame f;
                        size_t used = 0;
                        int r = vbus__frame_decoder_feed(&s->dec, buf + pos, (size_t)n - pos, &used,
                                                         &f);

                        assert_true(r >= 0);
                        pos += used;
                        if (r == 0)
                                break;
                        on_frame(s, &f);
                }
        }
}

static void turn(Broker *b, Scripted *a, Scripted *c)
{
        (void)broker_step(b, 0);
        drain(a);
        drain(c);
}

static void hello(Scripted *s)
{
        Vbus__V1__Hello m = VBUS__V1__HELLO__INIT;

        m.version_min = 1;
        m.version_max = 1;
        m.max_frame = VBUS_FRAME_MAX_DEFAULT;
        m.features = VBUS_FEATURE_BATCH | VBUS_FEATURE_MESSAGE_CHARGE;
        m.peer_name = (char *)"test";
        raw_send_control(s->fd, VBUS_FRAME_HELLO, 0, &m.base, 0);
}

/* One batch frame on @id: a record of lens[i] bytes for each i, of the byte @fill + i. */
static void send_records(Scripted *s, uint32_t id, const uint32_t *lens, size_t n, uint8_t fill)
{
        uint8_t buf[VBUS_FRAME_HEADER_SIZE + 16384];
        VbusFrameHeader h = {.type = VBUS_FRAME_DATA, .flags = VBUS_FLAG_BATCH, .stream_id = id};
        size_t len = 0;

        for (size_t i = 0; i < n; i++) {
                assert_true(len + VBUS_BATCH_LEN_MAX + lens[i] <=
                            sizeof(buf) - VBUS_FRAME_HEADER_SIZE);
                len += vbus__batch_put_len(buf + VBUS_FRAME_HEADER_SIZE + len, lens[i]);
                memset(buf + VBUS_FRAME_HEADER_SIZE + len, fill + (int)i, lens[i]);
                len += lens[i];
        }
        h.length = (uint32_t)len;
        vbus__frame_header_encode(&h, buf);
        raw_send_all(s->fd, buf, VBUS_FRAME_HEADER_SIZE + len, 0);
}

/* A batch of @n one-byte messages. */
static void send_batch(Scripted *s, uint32_t id, uint32_t n, uint8_t fill)
{
        uint32_t lens[1024];

        assert_true(n <= 1024);
        for (uint32_t i = 0; i < n; i++)
                lens[i] = 1;
        send_records(s, id, lens, n, fill);
}

static void credit(Scripted *s, uint32_t id, uint32_t inc)
{
        Vbus__V1__Credit c = VBUS__V1__CREDIT__INIT;

        c.increment = inc;
        raw_send_control(s->fd, VBUS_FRAME_CREDIT, id, &c.base, 0);
}

/* A broker in process, a publisher of t.a and a DROP subscriber of t.a (peers dom1, dom2). */
typedef struct Bench {
        BrokerConfig config;
        Broker b;
        Scripted pub, sub;
} Bench;

/* Starts it all: the subscriber's window is @sub_credit bytes and its queue @queue_limit
 * messages; vchand.conf's queue_bytes is @queue_bytes (0: the default). */
static void bench_up(Bench *t, uint32_t sub_credit, uint32_t queue_limit, uint32_t queue_bytes)
{
        Vbus__V1__Open so = VBUS__V1__OPEN__INIT, po = VBUS__V1__OPEN__INIT;

        config_defaults(&t->config);
        t->config.xen = false;
        if (queue_bytes)
                t->config.queue_bytes = queue_bytes;
        (void)snprintf(t->config.policy, sizeof(t->config.policy), "open");
        (void)snprintf(t->config.socket_path, sizeof(t->config.socket_path),
                       "/tmp/vbus-test-batch-broker-%d.sock", (int)getpid());
        assert_int_equal(broker_init(&t->b, &t->config), 0);
        /* The publisher first: its frames are read first in a turn where both have some. */
        add_peer(&t->b, &t->pub, 1, "pub");
        add_peer(&t->b, &t->sub, 2, "sub");
        hello(&t->pub);
        hello(&t->sub);
        turn(&t->b, &t->pub, &t->sub);
        assert_true(t->pub.hello && t->sub.hello);
        so.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE;
        so.name = (char *)"t.a";
        so.slow_policy = VBUS__V1__SLOW_POLICY__SLOW_POLICY_DROP;
        so.queue_limit = queue_limit;
        so.initial_credit = sub_credit;
        raw_send_control(t->sub.fd, VBUS_FRAME_OPEN, SUB_ID, &so.base, 0);
        turn(&t->b, &t->pub, &t->sub);
        assert_true(t->sub.accepted);
        po.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH;
        po.name = (char *)"t.a";
        raw_send_control(t->pub.fd, VBUS_FRAME_OPEN, PUB_ID, &po.base, 0);
        turn(&t->b, &t->pub, &t->sub);
        assert_true(t->pub.accepted);
}

static void bench_down(Bench *t)
{
        close(t->pub.fd);
        close(t->sub.fd);
        for (int i = 0; i < 3; i++)
                (void)broker_step(&t->b, 0);
        vbus__frame_decoder_deinit(&t->pub.dec);
        vbus__frame_decoder_deinit(&t->sub.dec);
        broker_deinit(&t->b);
}

/* What the subscriber saw must account for @published messages exactly. */
static void check_accounted(const Scripted *sub, uint64_t published, const char *what)
{
        fprintf(stderr, "%s: received %llu dropped %llu of %llu in %llu frames (%llu batches)\n",
                what, (unsigned long long)sub->received, (unsigned long long)sub->dropped,
                (unsigned long long)published, (unsigned long long)sub->frames,
                (unsigned long long)sub->batches);
        assert_int_equal(sub->seq_errors, 0);
        assert_int_equal(sub->last_seq, sub->received);
        assert_true(sub->dropped > 0); /* the case did drop */
        assert_int_equal(sub->received + sub->dropped, published);
}

/*
 * A DROP subscriber with a small window and a queue of 2 is sent a batch of 50 one-byte messages
 * in one turn: some go straight into a batch frame toward it, 2 wait in its queue, the rest are
 * dropped. In the same turn the subscriber grants more credit, before or after the publisher's
 * frame (@credit_first): its queue is drained. Then one more message, alone: it carries any drop
 * count not yet told. received + dropped == 51.
 */
static void drop_counts_across_batches(bool credit_first)
{
        Bench t;

        bench_up(&t, 300, 2, 0);
        if (credit_first)
                credit(&t.sub, SUB_ID, 1 << 20);
        send_batch(&t.pub, PUB_ID, 50, 1);
        if (!credit_first)
                credit(&t.sub, SUB_ID, 1 << 20);
        for (int i = 0; i < 5; i++)
                turn(&t.b, &t.pub, &t.sub);
        send_batch(&t.pub, PUB_ID, 1, 51);
        for (int i = 0; i < 4; i++)
                turn(&t.b, &t.pub, &t.sub);
        check_accounted(&t.sub, 51, credit_first ? "credit first" : "credit second");
        bench_down(&t);
}

static void test_drop_count_publisher_then_credit(void **state)
{
        (void)state;
        drop_counts_across_batches(false);
}

static void test_drop_count_credit_then_publisher(void **state)
{
        (void)state;
        drop_counts_across_batches(true);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_drop_count_publisher_then_credit),
                cmocka_unit_test(test_drop_count_credit_then_publisher),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
