/* SPDX-License-Identifier: MIT */
/*
 * Batches through the real broker (vchand's loop, peer, endpoint, session and pub/sub), driven
 * in process by scripted peers on socketpairs, as tests/fuzz/fuzz-peer.c does, so that what
 * happens within one loop turn is exact: which frames the broker reads in a turn is the test's
 * choice, and what it writes is read back frame by frame.
 *
 * The guarantees under test (protocol.md 5.5 and 6): every subscriber gets each message at most
 * once, and a DROP subscriber is told of every message it lost, in Meta.dropped of a later
 * delivery, batches or not (a BLOCK one loses none, or its subscription is reset); sequence
 * numbers count deliveries with neither hole nor repeat; received + dropped == published. The
 * payload of message k is the byte k, so a repeat or a loss is seen by content too.
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
        bool reset; /* SUB_ID was reset */
        /* Deliveries on SUB_ID: messages, Meta.dropped summed, the last Meta.sequence. */
        uint64_t received, dropped, last_seq, seq_errors, frames, batches;
        /* The content of each message (its first byte: its number), and how often it came. */
        uint32_t seen[256];
        uint64_t repeats;
        bool same_bytes; /* the test sends messages that do not differ: no repeat check */
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

/* A message delivered: its first byte names it. */
static void seen(Scripted *s, const uint8_t *d, size_t l)
{
        if (l == 0 || s->same_bytes)
                return;
        if (s->seen[d[0]]++ > 0)
                s->repeats++;
}

static void on_frame(Scripted *s, const VbusFrame *f)
{
        if (f->header.type == VBUS_FRAME_HELLO)
                s->hello = true;
        else if (f->header.type == VBUS_FRAME_ACCEPT)
                s->accepted = true;
        else if (f->header.type == VBUS_FRAME_RESET && f->header.stream_id == SUB_ID)
                s->reset = true;
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
                        VbusBatchIter it;
                        const uint8_t *d;
                        size_t l;

                        assert_int_equal(vbus__batch_count(f->payload, f->header.length, true, &n),
                                         0);
                        s->batches++;
                        vbus__batch_iter_init(&it, body, n_body, n);
                        while (vbus__batch_next(&it, &d, &l) == 1)
                                seen(s, d, l);
                } else {
                        seen(s, body, n_body);
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

static void hello(Scripted *s, bool batch)
{
        Vbus__V1__Hello m = VBUS__V1__HELLO__INIT;

        m.version_min = 1;
        m.version_max = 1;
        m.max_frame = VBUS_FRAME_MAX_DEFAULT;
        m.features = VBUS_FEATURE_MESSAGE_CHARGE | (batch ? VBUS_FEATURE_BATCH : 0);
        m.peer_name = (char *)"test";
        raw_send_control(s->fd, VBUS_FRAME_HELLO, 0, &m.base, 0);
}

/* One batch frame on @id: a record of lens[i] bytes for each i, of the byte @fill + i. */
static void send_records(Scripted *s, uint32_t id, const uint32_t *lens, size_t n, uint8_t fill)
{
        static uint8_t buf[VBUS_FRAME_HEADER_SIZE + VBUS_FRAME_MAX_DEFAULT];
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

/* A subscriber of t.a: whether it offers BATCH, its policy, window and queue limit. */
typedef struct SubSpec {
        bool batch;
        Vbus__V1__SlowPolicy policy;
        uint32_t credit;
        uint32_t queue_limit;
} SubSpec;

enum { MAX_SUBS = 3 };

/* A broker in process, a publisher of t.a (dom1) and subscribers of t.a (dom2...). */
typedef struct Bench {
        BrokerConfig config;
        Broker b;
        Scripted pub, subs[MAX_SUBS];
        size_t n_subs;
} Bench;

/* The broker's configuration, to be changed before bench_up(). */
static void bench_config(Bench *t)
{
        config_defaults(&t->config);
        t->config.xen = false;
        (void)snprintf(t->config.policy, sizeof(t->config.policy), "open");
        (void)snprintf(t->config.socket_path, sizeof(t->config.socket_path),
                       "/tmp/vbus-test-batch-broker-%d.sock", (int)getpid());
}

static void bench_turn(Bench *t)
{
        (void)broker_step(&t->b, 0);
        drain(&t->pub);
        for (size_t i = 0; i < t->n_subs; i++)
                drain(&t->subs[i]);
}

/* Starts the broker and its peers; the subscriptions are opened in the order of @specs. */
static void bench_up(Bench *t, const SubSpec *specs, size_t n)
{
        Vbus__V1__Open po = VBUS__V1__OPEN__INIT;
        char name[16];

        assert_true(n <= MAX_SUBS);
        t->n_subs = n;
        assert_int_equal(broker_init(&t->b, &t->config), 0);
        /* The publisher first: its frames are read first in a turn where others have some. */
        add_peer(&t->b, &t->pub, 1, "pub");
        hello(&t->pub, true);
        for (size_t i = 0; i < n; i++) {
                (void)snprintf(name, sizeof(name), "sub%zu", i);
                add_peer(&t->b, &t->subs[i], 2 + (uint32_t)i, name);
                hello(&t->subs[i], specs[i].batch);
        }
        bench_turn(t);
        for (size_t i = 0; i < n; i++) {
                Vbus__V1__Open so = VBUS__V1__OPEN__INIT;

                assert_true(t->subs[i].hello);
                so.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE;
                so.name = (char *)"t.a";
                so.slow_policy = specs[i].policy;
                so.queue_limit = specs[i].queue_limit;
                so.initial_credit = specs[i].credit;
                raw_send_control(t->subs[i].fd, VBUS_FRAME_OPEN, SUB_ID, &so.base, 0);
                bench_turn(t); /* one at a time: the router keeps them in this order */
                assert_true(t->subs[i].accepted);
        }
        po.kind = VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH;
        po.name = (char *)"t.a";
        raw_send_control(t->pub.fd, VBUS_FRAME_OPEN, PUB_ID, &po.base, 0);
        bench_turn(t);
        assert_true(t->pub.accepted);
}

static void bench_down(Bench *t)
{
        close(t->pub.fd);
        vbus__frame_decoder_deinit(&t->pub.dec);
        for (size_t i = 0; i < t->n_subs; i++) {
                close(t->subs[i].fd);
                vbus__frame_decoder_deinit(&t->subs[i].dec);
        }
        for (int i = 0; i < 3; i++)
                (void)broker_step(&t->b, 0);
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
        assert_int_equal(sub->repeats, 0);
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
        static const SubSpec spec = {true, VBUS__V1__SLOW_POLICY__SLOW_POLICY_DROP, 300, 2};
        Bench t;

        bench_config(&t);
        bench_up(&t, &spec, 1);
        if (credit_first)
                credit(&t.subs[0], SUB_ID, 1 << 20);
        send_batch(&t.pub, PUB_ID, 50, 1);
        if (!credit_first)
                credit(&t.subs[0], SUB_ID, 1 << 20);
        for (int i = 0; i < 5; i++)
                bench_turn(&t);
        send_batch(&t.pub, PUB_ID, 1, 51);
        for (int i = 0; i < 4; i++)
                bench_turn(&t);
        check_accounted(&t.subs[0], 51, credit_first ? "credit first" : "credit second");
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

/*
 * One batch frame from the publisher: a one-byte message (it goes straight on toward the
 * subscriber), one of 2000 bytes (more than the subscriber's window has left, so it would wait
 * in its queue, but more than queue_bytes = 1024: dropped, the queue still empty), and a
 * one-byte message (the queue is empty: straight on, after a drop, so it needs a Meta prefix
 * of its own saying dropped = 1, not to join a batch frame still open). Then one more message.
 * received + dropped == 4.
 */
static void test_drop_count_inside_one_batch(void **state)
{
        static const uint32_t lens[] = {1, 2000, 1};
        static const SubSpec spec = {true, VBUS__V1__SLOW_POLICY__SLOW_POLICY_DROP, 300, 0};
        Bench t;

        (void)state;
        bench_config(&t);
        t.config.queue_bytes = 1024;
        bench_up(&t, &spec, 1);
        send_records(&t.pub, PUB_ID, lens, 3, 'a');
        for (int i = 0; i < 3; i++)
                bench_turn(&t);
        credit(&t.subs[0], SUB_ID, 1 << 20);
        send_batch(&t.pub, PUB_ID, 1, 'd');
        for (int i = 0; i < 4; i++)
                bench_turn(&t);
        check_accounted(&t.subs[0], 4, "inside one batch");
        bench_down(&t);
}

/*
 * A drop between two messages that both go in batch frames (the subscriber's window is wide
 * enough for batches): seven messages of 2000 bytes fill most of its 16 KiB window, the eighth
 * does not fit and is dropped (queue_bytes 1024), the ninth (1 byte) fits and must start a new
 * batch whose prefix reports the drop, not join the open one. Then one more message.
 */
static void test_drop_count_joined_batch(void **state)
{
        static const uint32_t lens[] = {2000, 2000, 2000, 2000, 2000, 2000, 2000, 2000, 1};
        static const SubSpec spec = {true, VBUS__V1__SLOW_POLICY__SLOW_POLICY_DROP, 16384, 0};
        Bench t;

        (void)state;
        bench_config(&t);
        t.config.queue_bytes = 1024;
        bench_up(&t, &spec, 1);
        send_records(&t.pub, PUB_ID, lens, 9, 'a');
        for (int i = 0; i < 3; i++)
                bench_turn(&t);
        credit(&t.subs[0], SUB_ID, 1 << 20);
        send_batch(&t.pub, PUB_ID, 1, 'z');
        for (int i = 0; i < 4; i++)
                bench_turn(&t);
        assert_true(t.subs[0].batches > 0);
        check_accounted(&t.subs[0], 10, "a drop between batched messages");
        bench_down(&t);
}

/*
 * A DROP subscriber with a wide window whose link is full: the publisher's batches (24 frames of
 * 500 messages of 100 bytes, 1.2 MB, more than the link's buffers) are routed while the
 * subscriber reads nothing, so after what its link takes its queue of 4 fills and the rest is
 * dropped; then it reads, and one more message comes. Batches carry it all: received + dropped
 * == 12001, and the sequence numbers follow one another across the batch frames.
 */
static void test_drop_count_link_full(void **state)
{
        static const SubSpec spec = {true, VBUS__V1__SLOW_POLICY__SLOW_POLICY_DROP, 1 << 20, 4};
        uint32_t lens[500];
        Bench t;
        int small = 4096;

        (void)state;
        for (int i = 0; i < 500; i++)
                lens[i] = 100;
        bench_config(&t);
        bench_up(&t, &spec, 1);
        t.subs[0].same_bytes = true; /* 12001 messages, 256 byte values */
        assert_int_equal(setsockopt(t.subs[0].fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
        /* The broker routes it all, the subscriber reading nothing meanwhile. */
        for (int f = 0; f < 24; f++) {
                send_records(&t.pub, PUB_ID, lens, 500, 0);
                for (int i = 0; i < 3; i++) {
                        (void)broker_step(&t.b, 0);
                        drain(&t.pub);
                }
        }
        for (int i = 0; i < 40; i++)
                bench_turn(&t);
        send_batch(&t.pub, PUB_ID, 1, 0);
        for (int i = 0; i < 6; i++)
                bench_turn(&t);
        assert_true(t.subs[0].batches > 0);
        check_accounted(&t.subs[0], 12001, "link full");
        bench_down(&t);
}

/*
 * A publisher's batch of 200 messages to three subscribers, opened in the order @order:
 * 'A' a BLOCK subscriber that grants no credit, whose queue goes over peer_queued_bytes during
 * the batch (its subscription is reset: too slow); 'B' one that takes batches and has room: it
 * gets the batch whole; 'C' one that does not take batches: it gets the messages one by one.
 * Whatever the order, B gets each of the 200 exactly once and C all 200, none dropped; A is
 * reset.
 */
static void one_batch_three_subscribers(const char *order)
{
        static const SubSpec a = {true, VBUS__V1__SLOW_POLICY__SLOW_POLICY_BLOCK, 0, 0};
        static const SubSpec b = {true, VBUS__V1__SLOW_POLICY__SLOW_POLICY_DROP, 1 << 20, 0};
        static const SubSpec c = {false, VBUS__V1__SLOW_POLICY__SLOW_POLICY_DROP, 1 << 20, 0};
        SubSpec specs[3];
        Scripted *sa = NULL, *sb = NULL, *sc = NULL;
        Bench t;

        for (int i = 0; i < 3; i++)
                specs[i] = order[i] == 'A' ? a : order[i] == 'B' ? b : c;
        bench_config(&t);
        t.config.peer_queued_bytes = 1024; /* A: 15 messages of 1 byte (65 each), then reset */
        bench_up(&t, specs, 3);
        for (int i = 0; i < 3; i++) {
                Scripted *s = &t.subs[i];

                if (order[i] == 'A')
                        sa = s;
                else if (order[i] == 'B')
                        sb = s;
                else
                        sc = s;
        }
        send_batch(&t.pub, PUB_ID, 200, 1);
        for (int i = 0; i < 6; i++)
                bench_turn(&t);
        fprintf(stderr,
                "order %s: A reset %d; B received %llu (%llu repeats) in %llu frames; C received "
                "%llu dropped %llu (%llu repeats)\n",
                order, sa->reset, (unsigned long long)sb->received, (unsigned long long)sb->repeats,
                (unsigned long long)sb->frames, (unsigned long long)sc->received,
                (unsigned long long)sc->dropped, (unsigned long long)sc->repeats);
        assert_true(sa->reset);
        assert_int_equal(sb->repeats, 0);
        assert_int_equal(sb->received, 200);
        assert_int_equal(sb->seq_errors, 0);
        assert_int_equal(sc->repeats, 0);
        assert_int_equal(sc->received + sc->dropped, 200);
        assert_int_equal(sc->received, 200);
        bench_down(&t);
}

static void test_whole_batch_reset_first(void **state)
{
        (void)state;
        one_batch_three_subscribers("ABC");
}

static void test_whole_batch_reset_between(void **state)
{
        (void)state;
        one_batch_three_subscribers("BAC");
}

static void test_whole_batch_reset_last(void **state)
{
        (void)state;
        one_batch_three_subscribers("CBA");
}

static void test_whole_batch_one_by_one_first(void **state)
{
        (void)state;
        one_batch_three_subscribers("CAB");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_drop_count_publisher_then_credit),
                cmocka_unit_test(test_drop_count_credit_then_publisher),
                cmocka_unit_test(test_drop_count_link_full),
                cmocka_unit_test(test_drop_count_inside_one_batch),
                cmocka_unit_test(test_drop_count_joined_batch),
                cmocka_unit_test(test_whole_batch_reset_first),
                cmocka_unit_test(test_whole_batch_reset_between),
                cmocka_unit_test(test_whole_batch_reset_last),
                cmocka_unit_test(test_whole_batch_one_by_one_first),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
