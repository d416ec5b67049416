/* SPDX-License-Identifier: MIT */
/*
 * hostile-batch: a guest that attacks the broker with batch DATA frames (protocol.md 5.5), for
 * tests/hostile/batch-*.sh. Like hostile.c it speaks the protocol frame by frame with the libbus
 * codec and no libvbus session, over vchan ("vchan:0", as a real guest) or the broker's UNIX
 * socket ("unix:PATH"). It prints, in order:
 *
 *   batch negotiated | batch not negotiated    what the two HELLOs gave (BATCH and
 *                                              MESSAGE_CHARGE both set by both sides)
 *   credit C messages M frames F               what it was granted on its PUBLISH stream in all,
 *                                              and what it sent
 *   OUTCOME                                    the last line: "disconnected" (the broker closed
 *                                              the link or sent ERROR), "refused STATUS" (a
 *                                              stream of it got REJECT or RESET), "survived"
 *
 *   hostile-batch URL unnegotiated   HELLO with MESSAGE_CHARGE only; PUBLISH, then a valid batch
 *   hostile-batch URL no-charge      HELLO with BATCH only (no MESSAGE_CHARGE); the same
 *   hostile-batch URL empty-paced    BATCH and MESSAGE_CHARGE; SUBSCRIBE x.bpace BLOCK with no
 *                                    credit, PUBLISH x.bpace; then batches of empty records
 *                                    (one byte each), never more than its window: each record
 *                                    must cost the message charge, so it soon has no credit
 *   hostile-batch URL empty-flood    the same setup, then batches of empty records as fast as
 *                                    the link takes them, ignoring its window (their bytes
 *                                    alone would fit it: only the charge says no)
 *   hostile-batch URL over-window    PUBLISH x.bover (nobody subscribes), then one batch of
 *                                    empty records one more than the credit ACCEPT gave takes
 *                                    at 65 bytes each
 *   hostile-batch URL malformed HOW  PUBLISH x.bmal, then a batch whose records are broken: HOW
 *                                    is non-canonical, past-end, five-byte, truncated or empty
 *                                    (no record at all)
 *   hostile-batch URL flag FLAG      PUBLISH x.bflag, then a batch with FLAG: retain, more or meta
 *   hostile-batch URL on-subscribe   SUBSCRIBE x.bsub, then a batch on it
 *   hostile-batch vchan:0 equivocate TOPIC N HOW
 *                                    publishes N batch frames of EQ_RECORDS records of EQ_SIZE
 *                                    bytes ('A') on TOPIC, within its window, and after
 *                                    committing each to its ring rewrites it in place until the
 *                                    broker has read it: HOW is "bytes" (the records' bytes) or
 *                                    "lengths" (their bytes and the first record's length, so
 *                                    that the frame no longer parses as counted)
 *   hostile-batch URL collect TOPIC N
 *                                    not an attack: subscribes to TOPIC (BLOCK, giving the window
 *                                    back as it reads) and prints each of N messages as "SEQ
 *                                    HASH" (SEQ from its Meta, plus its index in a batch; HASH of
 *                                    its bytes; "as-written" when all 'A'), after "ready" once
 *                                    accepted; the outcome is then "collected N". With
 *                                    $HOSTILE_NO_BATCH=1 it does not offer BATCH (messages come
 *                                    one per frame)
 *
 * Every attack but the first two waits for its streams' ACCEPT first, so the refusal is about
 * the batch. Options: --seconds S (default 10): how long empty-paced and empty-flood go on, and
 * the bound of every wait. Exits 0 once it printed its outcome, 1 on a failure of its own.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <vbus/vbus.h>

#include "batch.h"
#include "control.h"
#include "frame.h"
#include "vbus/v1/link.pb-c.h"
#include "vchan.h"

enum {
        RING = 1 << 20,
        IN_MAX = 4 << 20,
        /* The first client stream ids: the PUBLISH stream (or SUBSCRIBE for on-subscribe). */
        FIRST_ID = 1,
        /* equivocate: records per batch frame and bytes per record */
        EQ_RECORDS = 8,
        EQ_SIZE = 512,
};

typedef struct Peer {
        int fd;        /* UNIX */
        VbusVchan *vc; /* vchan */
        uint8_t *in;
        size_t n_in;
        uint32_t next_id;
        uint64_t deadline_us;
        bool done;
        char outcome[160];
        bool hello_seen;
        uint32_t peer_features;
        uint32_t peer_max_frame;
        uint32_t pub_id; /* the stream whose ACCEPT and CREDIT are counted */
        bool pub_accepted;
        int64_t window;  /* pub_id's: credit granted less what was sent */
        uint64_t credit; /* pub_id's credit granted in all */
        uint64_t messages, frames;
        /* collect: the DATA frames of this stream go to on_data. */
        uint32_t data_id;
        void (*on_data)(struct Peer *p, const VbusFrameHeader *fh, const uint8_t *payload);
        uint64_t collected, collect_max;
        uint64_t owed; /* collect: window to give back, sent once the frames are scanned */
} Peer;

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        fputs("hostile-batch: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        exit(1);
}

static uint64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void link_open(Peer *p, const char *url)
{
        if (strncmp(url, "unix:", 5) == 0) {
                struct sockaddr_un sa = {.sun_family = AF_UNIX};

                if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", url + 5) >=
                    sizeof(sa.sun_path))
                        die("socket path too long");
                p->fd = socket(AF_UNIX, SOCK_STREAM, 0);
                if (p->fd < 0 || connect(p->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                        die("connect %s: %s", url, strerror(errno));
                return;
        }
        if (strncmp(url, "vchan:", 6) == 0) {
                uint64_t until = now_us() + 15000000u;
                int r = vbus__vchan_server_open_to((uint32_t)strtoul(url + 6, NULL, 10), "vbus",
                                                   RING, RING, &p->vc);

                if (r < 0)
                        die("vchan: %s", strerror(-r));
                p->fd = -1;
                while (vbus__vchan_get_peer(p->vc) == VBUS_VCHAN_PEER_WAITING) {
                        if (now_us() > until)
                                die("the broker did not map the rings within 15 s");
                        (void)vbus__vchan_wait(p->vc, 100);
                }
                return;
        }
        die("URL must be unix:PATH or vchan:DOMID");
}

static void link_close(Peer *p)
{
        if (p->vc)
                p->vc = vbus__vchan_free(p->vc);
        if (p->fd >= 0)
                (void)close(p->fd);
        p->fd = -1;
}

static void set_outcome(Peer *p, const char *what)
{
        if (!p->done)
                (void)snprintf(p->outcome, sizeof(p->outcome), "%s", what);
        p->done = true;
}

/* Reads what is there (waiting up to @wait_ms). Return: false at the end of the stream. */
static bool link_read(Peer *p, int wait_ms)
{
        ssize_t r;

        if (p->n_in == IN_MAX)
                return true;
        if (p->vc) {
                r = vbus__vchan_read(p->vc, p->in + p->n_in, IN_MAX - p->n_in);
                if (r == -EAGAIN && wait_ms > 0) {
                        (void)vbus__vchan_wait(p->vc, wait_ms);
                        r = vbus__vchan_read(p->vc, p->in + p->n_in, IN_MAX - p->n_in);
                }
                if (r == -EAGAIN)
                        return vbus__vchan_get_peer(p->vc) == VBUS_VCHAN_PEER_CONNECTED;
        } else {
                struct pollfd pfd = {.fd = p->fd, .events = POLLIN};

                if (poll(&pfd, 1, wait_ms) <= 0)
                        return true;
                r = recv(p->fd, p->in + p->n_in, IN_MAX - p->n_in, MSG_DONTWAIT);
                if (r < 0 && errno == EAGAIN)
                        return true;
        }
        if (r <= 0)
                return false;
        p->n_in += (size_t)r;
        return true;
}

/* One control frame from the broker: HELLO, the PUBLISH stream's window, refusals. */
static void on_control(Peer *p, const VbusFrameHeader *fh, const VbusControl *c)
{
        char what[128];

        switch (fh->type) {
        case VBUS_FRAME_HELLO:
                p->hello_seen = true;
                p->peer_features = ((const Vbus__V1__Hello *)c->msg)->features;
                p->peer_max_frame = ((const Vbus__V1__Hello *)c->msg)->max_frame;
                break;
        case VBUS_FRAME_ACCEPT:
                if (fh->stream_id == p->pub_id) {
                        uint32_t credit = ((const Vbus__V1__Accept *)c->msg)->initial_credit;

                        p->pub_accepted = true;
                        p->window += credit;
                        p->credit += credit;
                }
                break;
        case VBUS_FRAME_CREDIT:
                if (fh->stream_id == p->pub_id) {
                        uint32_t inc = ((const Vbus__V1__Credit *)c->msg)->increment;

                        p->window += inc;
                        p->credit += inc;
                }
                break;
        case VBUS_FRAME_REJECT:
        case VBUS_FRAME_RESET: {
                uint32_t st = fh->type == VBUS_FRAME_REJECT
                                      ? ((const Vbus__V1__Reject *)c->msg)->status
                                      : ((const Vbus__V1__End *)c->msg)->status;

                (void)snprintf(what, sizeof(what), "refused %s", vbus_status_name((int)st));
                set_outcome(p, what);
                break;
        }
        case VBUS_FRAME_ERROR:
        case VBUS_FRAME_GOAWAY:
                set_outcome(p, "disconnected");
                break;
        default:
                break;
        }
}

/* Takes in what the broker sent (waiting up to @wait_ms). */
static void scan(Peer *p, int wait_ms)
{
        size_t off = 0;

        if (!link_read(p, wait_ms)) {
                set_outcome(p, "disconnected");
                return;
        }
        while (p->n_in - off >= VBUS_FRAME_HEADER_SIZE) {
                VbusFrameHeader fh;
                VbusControl c = VBUS_CONTROL_NULL;
                size_t size;

                if (vbus__frame_header_decode(p->in + off, p->n_in - off, VBUS_FRAME_MAX_LIMIT,
                                              &fh) != 0)
                        die("bad frame header from the broker");
                size = VBUS_FRAME_HEADER_SIZE + fh.length;
                if (p->n_in - off < size)
                        break;
                if (fh.type == VBUS_FRAME_DATA && p->on_data && fh.stream_id == p->data_id)
                        p->on_data(p, &fh, p->in + off + VBUS_FRAME_HEADER_SIZE);
                if (fh.type != VBUS_FRAME_DATA &&
                    vbus__control_decode(&fh, p->in + off + VBUS_FRAME_HEADER_SIZE,
                                         VBUS_CONTROL_DECODE_BUDGET, &c) == 0) {
                        on_control(p, &fh, &c);
                        vbus__control_deinit(&c);
                }
                off += size;
        }
        memmove(p->in, p->in + off, p->n_in - off);
        p->n_in -= off;
}

/* Writes @n bytes, reading meanwhile; stops when the link is gone or time is up. */
static void write_all(Peer *p, const uint8_t *buf, size_t n)
{
        size_t done = 0;

        while (done < n && !p->done && now_us() < p->deadline_us) {
                ssize_t w;

                if (p->vc) {
                        w = vbus__vchan_write(p->vc, buf + done, n - done);
                        if (w == -EAGAIN) {
                                (void)vbus__vchan_wait(p->vc, 100);
                                w = 0;
                        }
                } else {
                        w = send(p->fd, buf + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (w < 0 && errno == EAGAIN)
                                w = 0;
                }
                if (w < 0) {
                        scan(p, 0);
                        set_outcome(p, "disconnected");
                        return;
                }
                done += (size_t)w;
                scan(p, w == 0 ? 50 : 0);
        }
}

static void send_control(Peer *p, uint8_t type, uint32_t stream, const ProtobufCMessage *m)
{
        uint8_t buf[VBUS_FRAME_HEADER_SIZE + VBUS_CONTROL_MAX];
        VbusSegments seg = {{buf, NULL}, {sizeof(buf), 0}};
        VbusFrameHeader fh = {.type = type, .stream_id = stream};
        size_t k;

        if (vbus__control_encode(&fh, m, &seg, &k) < 0)
                die("encode %s", vbus__frame_type_name(type));
        write_all(p, buf, k);
}

/* One DATA frame: @flags, @payload (@len bytes), as the batch's sender says it is. */
static void send_data(Peer *p, uint32_t stream, uint8_t flags, const uint8_t *payload, size_t len)
{
        uint8_t *buf = malloc(VBUS_FRAME_HEADER_SIZE + len);
        VbusFrameHeader fh = {.type = VBUS_FRAME_DATA,
                              .flags = flags,
                              .length = (uint32_t)len,
                              .stream_id = stream};

        if (!buf)
                die("out of memory");
        vbus__frame_header_encode(&fh, buf);
        if (len)
                memcpy(buf + VBUS_FRAME_HEADER_SIZE, payload, len);
        write_all(p, buf, VBUS_FRAME_HEADER_SIZE + len);
        free(buf);
        p->frames++;
}

static void hello(Peer *p, uint32_t features)
{
        Vbus__V1__Hello m = VBUS__V1__HELLO__INIT;
        bool both;

        m.version_min = 1;
        m.version_max = 1;
        m.max_frame = VBUS_FRAME_MAX_DEFAULT;
        m.features = features;
        send_control(p, VBUS_FRAME_HELLO, 0, &m.base);
        while (!p->hello_seen && !p->done && now_us() < p->deadline_us)
                scan(p, 100);
        if (!p->hello_seen)
                die("no HELLO from the broker");
        both = features & p->peer_features & VBUS_FEATURE_BATCH &&
               features & p->peer_features & VBUS_FEATURE_MESSAGE_CHARGE;
        printf("batch %s\n", both ? "negotiated" : "not negotiated");
        (void)fflush(stdout);
}

/* Opens a stream; @counted: it is the one whose ACCEPT and CREDIT are counted (set before the
 * OPEN goes out, since its ACCEPT may come while the OPEN is being written). */
static uint32_t open_stream(Peer *p, Vbus__V1__StreamKind kind, const char *name,
                            Vbus__V1__SlowPolicy slow, uint32_t credit, bool counted)
{
        Vbus__V1__Open o = VBUS__V1__OPEN__INIT;
        uint32_t id = p->next_id;

        p->next_id += 2;
        if (counted)
                p->pub_id = id;
        o.kind = kind;
        o.name = (char *)name;
        o.slow_policy = slow;
        o.initial_credit = credit;
        send_control(p, VBUS_FRAME_OPEN, id, &o.base);
        return id;
}

/* Opens the PUBLISH stream whose window is counted, and waits for its ACCEPT. */
static uint32_t open_publish(Peer *p, const char *topic)
{
        (void)open_stream(p, VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH, topic, 0, 0, true);
        while (!p->pub_accepted && !p->done && now_us() < p->deadline_us)
                scan(p, 100);
        if (!p->pub_accepted && !p->done)
                die("no ACCEPT of the PUBLISH stream");
        return p->pub_id;
}

static void wait_outcome(Peer *p)
{
        while (!p->done && now_us() < p->deadline_us)
                scan(p, 100);
}

/* A valid batch of three small records. */
static size_t valid_batch(uint8_t *buf)
{
        static const uint8_t b[] = {1, 'a', 0, 2, 'b', 'c'};

        memcpy(buf, b, sizeof(b));
        return sizeof(b);
}

static void attack_unnegotiated(Peer *p)
{
        uint8_t buf[16];
        size_t n = valid_batch(buf);
        uint32_t id = open_publish(p, "x.bneg");

        send_data(p, id, VBUS_FLAG_BATCH, buf, n);
        p->messages += 3;
        wait_outcome(p);
}

/* Batches of empty records on @id; @paced: never past the window. */
static void empty_batches(Peer *p, uint32_t id, bool paced)
{
        size_t max = p->peer_max_frame < VBUS_FRAME_MAX_DEFAULT ? p->peer_max_frame
                                                                : VBUS_FRAME_MAX_DEFAULT;
        uint8_t *zeros = calloc(max, 1);

        if (!zeros)
                die("out of memory");
        while (!p->done && now_us() < p->deadline_us) {
                size_t n = max;

                if (paced) {
                        int64_t fit = p->window / (1 + VBUS_MESSAGE_CHARGE);

                        if (fit <= 0) {
                                scan(p, 100);
                                continue;
                        }
                        if ((uint64_t)fit < n)
                                n = (size_t)fit;
                }
                send_data(p, id, VBUS_FLAG_BATCH, zeros, n);
                p->window -= (int64_t)n * (1 + VBUS_MESSAGE_CHARGE);
                p->messages += n;
                scan(p, 0);
        }
        free(zeros);
}

static void attack_empty(Peer *p, bool paced)
{
        uint32_t id;

        (void)open_stream(p, VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE, "x.bpace",
                          VBUS__V1__SLOW_POLICY__SLOW_POLICY_BLOCK, 0, false);
        id = open_publish(p, "x.bpace");
        empty_batches(p, id, paced);
}

static void attack_over_window(Peer *p)
{
        uint32_t id = open_publish(p, "x.bover");
        /* One empty record more than the window takes at 1 + VBUS_MESSAGE_CHARGE each: its
         * bytes alone fit many times over, its cost is over by less than one record. */
        size_t n = (size_t)(p->window / (1 + VBUS_MESSAGE_CHARGE)) + 1;
        uint8_t *zeros;

        if (n > p->peer_max_frame)
                die("a window of %lld is too large for one frame", (long long)p->window);
        zeros = calloc(n, 1);
        if (!zeros)
                die("out of memory");
        send_data(p, id, VBUS_FLAG_BATCH, zeros, n);
        p->messages += n;
        free(zeros);
        wait_outcome(p);
}

static void attack_malformed(Peer *p, const char *how)
{
        static const uint8_t non_canonical[] = {1, 'a', 0x81, 0x00, 'b'};
        static const uint8_t past_end[] = {1, 'a', 5, 'b', 'c'};
        static const uint8_t five_byte[] = {0x81, 0x80, 0x80, 0x80, 0x00, 'a'};
        static const uint8_t truncated[] = {1, 'a', 0x80};
        const uint8_t *b;
        size_t n;
        uint32_t id;

        if (strcmp(how, "non-canonical") == 0)
                b = non_canonical, n = sizeof(non_canonical);
        else if (strcmp(how, "past-end") == 0)
                b = past_end, n = sizeof(past_end);
        else if (strcmp(how, "five-byte") == 0)
                b = five_byte, n = sizeof(five_byte);
        else if (strcmp(how, "truncated") == 0)
                b = truncated, n = sizeof(truncated);
        else if (strcmp(how, "empty") == 0)
                b = NULL, n = 0;
        else
                die("malformed: unknown HOW %s", how);
        id = open_publish(p, "x.bmal");
        send_data(p, id, VBUS_FLAG_BATCH, b, n);
        wait_outcome(p);
}

static void attack_flag(Peer *p, const char *flag)
{
        uint8_t buf[16];
        size_t n = valid_batch(buf);
        uint8_t f;
        uint32_t id;

        if (strcmp(flag, "retain") == 0)
                f = VBUS_FLAG_RETAIN;
        else if (strcmp(flag, "more") == 0)
                f = VBUS_FLAG_MORE;
        else if (strcmp(flag, "meta") == 0)
                f = VBUS_FLAG_META;
        else
                die("flag: unknown FLAG %s", flag);
        id = open_publish(p, "x.bflag");
        send_data(p, id, VBUS_FLAG_BATCH | f, buf, n);
        p->messages += 3;
        wait_outcome(p);
}

static void attack_on_subscribe(Peer *p)
{
        uint8_t buf[16];
        size_t n = valid_batch(buf);

        /* Counted as the "publish" stream so that its ACCEPT is waited for. */
        (void)open_stream(p, VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE, "x.bsub",
                          VBUS__V1__SLOW_POLICY__SLOW_POLICY_DROP, 65536, true);
        while (!p->pub_accepted && !p->done && now_us() < p->deadline_us)
                scan(p, 100);
        if (!p->pub_accepted && !p->done)
                die("no ACCEPT of the SUBSCRIBE stream");
        send_data(p, p->pub_id, VBUS_FLAG_BATCH, buf, n);
        p->messages += 3;
        wait_outcome(p);
}

/* Rewrites the @n bytes at @off of the frame reserved in @iov (two pieces of the ring) to @c. */
static void rewrite(const struct iovec iov[2], size_t off, size_t n, uint8_t c)
{
        for (size_t k = 0, base = 0; k < 2; base += iov[k].iov_len, k++) {
                size_t from = off > base ? off - base : 0;
                size_t to = off + n - base; /* may pass the piece: cut below */

                if (off + n <= base)
                        break;
                if (to > iov[k].iov_len)
                        to = iov[k].iov_len;
                for (size_t b = from; b < to; b++)
                        ((volatile uint8_t *)iov[k].iov_base)[b] = c;
        }
}

static void attack_equivocate(Peer *p, const char *topic, unsigned long n, const char *how)
{
        static uint8_t frame[VBUS_FRAME_HEADER_SIZE + EQ_RECORDS * (2 + EQ_SIZE)];
        bool lengths = strcmp(how, "lengths") == 0;
        VbusFrameHeader fh = {.type = VBUS_FRAME_DATA, .flags = VBUS_FLAG_BATCH};
        size_t len = 0;
        int64_t cost;
        uint32_t id;

        if (!p->vc)
                die("equivocate needs vchan: it rewrites its own ring");
        if (!lengths && strcmp(how, "bytes") != 0)
                die("equivocate: HOW is bytes or lengths");
        id = open_publish(p, topic);
        for (int r = 0; r < EQ_RECORDS; r++) {
                len += vbus__batch_put_len(frame + VBUS_FRAME_HEADER_SIZE + len, EQ_SIZE);
                memset(frame + VBUS_FRAME_HEADER_SIZE + len, 'A', EQ_SIZE);
                len += EQ_SIZE;
        }
        fh.stream_id = id;
        fh.length = (uint32_t)len;
        vbus__frame_header_encode(&fh, frame);
        cost = (int64_t)len + (int64_t)EQ_RECORDS * VBUS_MESSAGE_CHARGE;
        for (unsigned long i = 0; i < n && !p->done && now_us() < p->deadline_us; i++) {
                struct iovec iov[2];
                ssize_t r;

                while (p->window < cost && !p->done && now_us() < p->deadline_us)
                        scan(p, 100);
                if (p->window < cost)
                        break;
                r = vbus__vchan_reserve(p->vc, sizeof(frame), iov);
                if (r == -EAGAIN) {
                        (void)vbus__vchan_wait(p->vc, 100);
                        scan(p, 0);
                        i--;
                        continue;
                }
                if (r < (ssize_t)sizeof(frame))
                        die("equivocate: the ring refused %zu bytes", sizeof(frame));
                for (size_t k = 0, off = 0; k < 2 && off < sizeof(frame);
                     off += iov[k].iov_len, k++) {
                        size_t take = iov[k].iov_len;

                        if (take > sizeof(frame) - off)
                                take = sizeof(frame) - off;
                        memcpy(iov[k].iov_base, frame + off, take);
                }
                if (vbus__vchan_commit(p->vc, sizeof(frame)) < 0 || vbus__vchan_flush(p->vc) < 0)
                        die("equivocate: commit");
                p->frames++;
                p->messages += EQ_RECORDS;
                p->window -= cost;
                /* The frame stays where it was written: rewrite it until the broker read it. */
                for (uint32_t spin = 0; vbus__vchan_get_unconsumed(p->vc) > 0 && spin < 2000000;
                     spin++) {
                        uint8_t c = (uint8_t)('A' + spin % 26);

                        /* Each record's bytes, after its two length bytes. */
                        for (int rec = 0; rec < EQ_RECORDS; rec++)
                                rewrite(iov, VBUS_FRAME_HEADER_SIZE + rec * (2 + EQ_SIZE) + 2,
                                        EQ_SIZE, c);
                        /* The first length, 512 (0x80 0x04), now and then 384 (0x80 0x03): the
                         * records no longer fill the frame as counted. */
                        if (lengths)
                                rewrite(iov, VBUS_FRAME_HEADER_SIZE + 1, 1, spin % 2 ? 3 : 4);
                }
                scan(p, 0);
        }
        wait_outcome(p);
}

/* collect: each message of a delivery printed as "SEQ HASH", the window given back. */
static void collect_data(Peer *p, const VbusFrameHeader *fh, const uint8_t *payload)
{
        const uint8_t *meta, *body;
        size_t n_meta, n_body;
        Vbus__V1__Meta *m;
        uint32_t n = 1;

        if (!(fh->flags & VBUS_FLAG_META) || (fh->flags & VBUS_FLAG_MORE) ||
            vbus__meta_split(payload, fh->length, &meta, &n_meta, &body, &n_body) != 0)
                die("collect: a delivery that is not one whole message or batch");
        m = vbus__v1__meta__unpack(NULL, n_meta, meta);
        if (!m)
                die("collect: a Meta that does not decode");
        if (fh->flags & VBUS_FLAG_BATCH && vbus__batch_count(payload, fh->length, true, &n) != 0)
                die("collect: a batch that does not count");
        {
                VbusBatchIter it;
                const uint8_t *d = body;
                size_t l = n_body;

                vbus__batch_iter_init(&it, body, n_body, n);
                for (uint32_t i = 0; i < n; i++) {
                        uint64_t hash = 0xcbf29ce484222325ull;
                        size_t n_a = 0;

                        if (fh->flags & VBUS_FLAG_BATCH && vbus__batch_next(&it, &d, &l) != 1)
                                die("collect: a batch that does not walk");
                        for (size_t b = 0; b < l; b++) {
                                hash = (hash ^ d[b]) * 0x100000001b3ull;
                                n_a += d[b] == 'A';
                        }
                        printf("%llu %016llx%s\n", (unsigned long long)m->sequence + i,
                               (unsigned long long)hash, n_a == l ? " as-written" : "");
                }
        }
        vbus__v1__meta__free_unpacked(m, NULL);
        p->collected += n;
        /* Not sent from here: writing reads the link (scan()), which is under way. */
        p->owed += fh->length + (uint64_t)n * VBUS_MESSAGE_CHARGE;
}

static void collect(Peer *p, const char *topic, unsigned long n)
{
        char what[64];

        p->collect_max = n;
        /* The largest window: a message is then never sent in fragments for want of window
         * (the broker may do so, and collect_data() takes only whole messages), however late a
         * slow collector gives its credit back. */
        p->data_id = open_stream(p, VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE, topic,
                                 VBUS__V1__SLOW_POLICY__SLOW_POLICY_BLOCK, 0x7fffffff, true);
        p->on_data = collect_data;
        while (!p->pub_accepted && !p->done && now_us() < p->deadline_us)
                scan(p, 100);
        if (!p->pub_accepted)
                die("collect: no ACCEPT");
        printf("ready\n");
        (void)fflush(stdout);
        while (p->collected < n && !p->done && now_us() < p->deadline_us) {
                scan(p, 100);
                if (p->owed > 0) {
                        Vbus__V1__Credit cr = VBUS__V1__CREDIT__INIT;

                        cr.increment = (uint32_t)p->owed;
                        p->owed = 0;
                        send_control(p, VBUS_FRAME_CREDIT, p->data_id, &cr.base);
                }
        }
        if (!p->done) {
                (void)snprintf(what, sizeof(what), "collected %llu",
                               (unsigned long long)p->collected);
                set_outcome(p, what);
        }
}

int main(int argc, char **argv)
{
        Peer p = {.fd = -1, .next_id = FIRST_ID};
        const char *attack, *arg = NULL, *arg2 = NULL, *arg3 = NULL;
        uint64_t seconds = 10;
        uint32_t features = VBUS_FEATURE_BATCH | VBUS_FEATURE_MESSAGE_CHARGE;
        int i = 3;

        if (argc < 3 || strcmp(argv[1], "--help") == 0) {
                fprintf(stderr,
                        "usage: hostile-batch URL ATTACK [ARG [ARG2 [ARG3]]] [--seconds S]\n"
                        "(the attacks are listed at the top of "
                        "tests/hostile/hostile-batch.c)\n");
                return argc < 3 ? 1 : 0;
        }
        attack = argv[2];
        if (i < argc && strncmp(argv[i], "--", 2) != 0)
                arg = argv[i++];
        if (i < argc && strncmp(argv[i], "--", 2) != 0)
                arg2 = argv[i++];
        if (i < argc && strncmp(argv[i], "--", 2) != 0)
                arg3 = argv[i++];
        for (; i + 1 < argc; i += 2) {
                if (strcmp(argv[i], "--seconds") == 0)
                        seconds = strtoull(argv[i + 1], NULL, 10);
                else
                        die("unknown option %s", argv[i]);
        }
        /* Without BATCH: unnegotiated, and a collector told not to take batches;
         * without MESSAGE_CHARGE: no-charge. */
        if (strcmp(attack, "unnegotiated") == 0 ||
            (strcmp(attack, "collect") == 0 && getenv("HOSTILE_NO_BATCH")))
                features = VBUS_FEATURE_MESSAGE_CHARGE;
        else if (strcmp(attack, "no-charge") == 0)
                features = VBUS_FEATURE_BATCH;
        p.in = malloc(IN_MAX);
        if (!p.in)
                die("out of memory");
        (void)snprintf(p.outcome, sizeof(p.outcome), "survived");
        /* The broker finds a new guest on its own schedule (link_open() waits up to 15 s for
         * it): the time of the attack starts once the link is up. */
        link_open(&p, argv[1]);
        p.deadline_us = now_us() + seconds * 1000000u;
        hello(&p, features);
        if (strcmp(attack, "unnegotiated") == 0 || strcmp(attack, "no-charge") == 0)
                attack_unnegotiated(&p);
        else if (strcmp(attack, "empty-paced") == 0)
                attack_empty(&p, true);
        else if (strcmp(attack, "empty-flood") == 0)
                attack_empty(&p, false);
        else if (strcmp(attack, "over-window") == 0)
                attack_over_window(&p);
        else if (strcmp(attack, "on-subscribe") == 0)
                attack_on_subscribe(&p);
        else if (!arg)
                die("%s needs an argument", attack);
        else if (strcmp(attack, "malformed") == 0)
                attack_malformed(&p, arg);
        else if (strcmp(attack, "flag") == 0)
                attack_flag(&p, arg);
        else if (strcmp(attack, "collect") == 0 && arg2)
                collect(&p, arg, strtoul(arg2, NULL, 10));
        else if (strcmp(attack, "equivocate") == 0 && arg2 && arg3)
                attack_equivocate(&p, arg, strtoul(arg2, NULL, 10), arg3);
        else
                die("unknown attack %s", attack);
        printf("credit %llu messages %llu frames %llu\n%s\n", (unsigned long long)p.credit,
               (unsigned long long)p.messages, (unsigned long long)p.frames, p.outcome);
        link_close(&p);
        free(p.in);
        return 0;
}
