/* SPDX-License-Identifier: MIT */
/*
 * pubsub-bench: the vbus and plain-UNIX-socket halves of the pub/sub benchmark (bench/pubsub/run
 * starts them; NATS is pubsub-bench-nats). A benchmark prints figures and asserts nothing.
 *
 *   pubsub-bench vbus-pub TOPIC COUNT SIZE
 *       publishes COUNT messages of SIZE bytes on one publish stream (VBUS_URL picks the broker),
 *       retrying on -EAGAIN (credit), then flushes.
 *   pubsub-bench vbus-sub PATTERN COUNT [--ready FILE] [--drop]
 *       subscribes with VBUS_SLOW_BLOCK (lossless; --drop for VBUS_SLOW_DROP) and receives until
 *       COUNT messages are accounted for.
 *   pubsub-bench unix-relay DIR NSUBS
 *       the middle process: accepts NSUBS subscribers on DIR/sub.sock, then one publisher on
 *       DIR/pub.sock, and forwards every whole frame it reads to every subscriber.
 *   pubsub-bench unix-pub DIR COUNT SIZE     (connects to DIR/pub.sock)
 *   pubsub-bench unix-sub DIR COUNT [--ready FILE]   (connects to DIR/sub.sock)
 *
 * The UNIX relay is the kernel floor of a brokered topology: each message crosses two sockets
 * (publisher to relay, relay to each subscriber) with a 4-byte length prefix, and every process
 * moves data in large reads and writes (the publisher fills a 64 KiB buffer before writing, as
 * NATS's client does; the relay forwards whatever whole frames one read brought). The relay
 * parses the frame boundaries it forwards, so it pays the framing a broker pays, and blocks on
 * a slow subscriber (lossless, like vbus BLOCK).
 *
 * Each process prints one line, "pub sent=... start_ns=... end_ns=..." or "sub received=...
 * lost=... reordered=... dropped=... first_ns=... last_ns=...", and exits 0 when it has
 * accounted for every message (lost or not: the run script reports losses).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <vbus/vbus.h>

#include "bench-common.h"

enum {
        /* How long a process waits for its peers before giving up, and how long a subscriber
         * waits once traffic stopped before it reports the rest as lost. */
        BENCH_START_TIMEOUT_US = 120 * 1000 * 1000,
        BENCH_IDLE_TIMEOUT_US = 10 * 1000 * 1000,
        UNIX_PUB_BUF = 64 * 1024,
        UNIX_READ_BUF = 256 * 1024,
        FRAME_HEADER = 4,
};

static uint64_t now_us(void)
{
        return bench_now_ns() / 1000u;
}

/* ---- vbus ---------------------------------------------------------------------------------- */

static vbus_conn *vbus_connect(const char *who)
{
        vbus_conn *c = NULL;
        int r = vbus_conn_open(NULL, &c);

        if (r < 0) {
                fprintf(stderr, "%s: vbus_conn_open: %s\n", who, strerror(-r));
                return NULL;
        }
        r = vbus_conn_wait_ready(c, BENCH_START_TIMEOUT_US);
        if (r < 0) {
                fprintf(stderr, "%s: no broker: %s (last error %s)\n", who, strerror(-r),
                        strerror(-vbus_conn_get_last_error(c)));
                vbus_conn_free(c);
                return NULL;
        }
        return c;
}

static int cmd_vbus_pub(const char *topic, uint64_t count, size_t size)
{
        vbus_conn *c = vbus_connect("vbus-pub");
        vbus_publisher *p = NULL;
        uint8_t *buf = bench_buf_new(size);
        uint64_t start, eagain = 0, interval = bench_interval_us();
        int r, ret = 1;

        if (!c || !buf)
                goto out;
        r = vbus_publisher_open(c, topic, &p);
        if (r < 0) {
                fprintf(stderr, "vbus-pub: publisher_open: %s\n", strerror(-r));
                goto out;
        }
        start = bench_now_ns();
        for (uint64_t i = 1; i <= count; i++) {
                bench_buf_seq(buf, i);
                if (interval) {
                        bench_pause_us(interval);
                        bench_buf_stamp(buf, size);
                }
                for (;;) {
                        r = vbus_publish(p, buf, size);
                        if (r != -EAGAIN)
                                break;
                        /* Held back by credit (a BLOCK subscriber is behind) or a full ring:
                         * wait for the broker, as vbus_publish_wait() does, counting how
                         * often. */
                        eagain++;
                        r = vbus_conn_wait(c, BENCH_IDLE_TIMEOUT_US);
                        if (r < 0 && r != -EINTR) {
                                fprintf(stderr, "vbus-pub: message %llu: wait: %s\n",
                                        (unsigned long long)i, strerror(-r));
                                goto out;
                        }
                }
                if (r < 0) {
                        const char *why = "";

                        vbus_publisher_get_status(p, &why);
                        fprintf(stderr, "vbus-pub: message %llu: %s %s\n", (unsigned long long)i,
                                strerror(-r), why);
                        goto out;
                }
                if (interval && (r = vbus_conn_flush(c, BENCH_START_TIMEOUT_US)) < 0) {
                        fprintf(stderr, "vbus-pub: flush: %s\n", strerror(-r));
                        goto out;
                }
        }
        r = vbus_conn_flush(c, BENCH_START_TIMEOUT_US);
        if (r < 0) {
                fprintf(stderr, "vbus-pub: flush: %s\n", strerror(-r));
                goto out;
        }
        bench_pub_print(count, start, bench_now_ns());
        fprintf(stderr, "vbus-pub: publish returned EAGAIN %llu times\n",
                (unsigned long long)eagain);
        ret = 0;
out:
        vbus_publisher_free(p);
        vbus_conn_free(c);
        free(buf);
        return ret;
}

typedef struct VbusSub {
        BenchTally tally;
        uint64_t gaps;
} VbusSub;

static void vbus_on_message(vbus_subscription *sub, const vbus_message *msg, void *userdata)
{
        VbusSub *s = userdata;
        size_t n = 0;
        const void *data = vbus_message_get_data(msg, &n);

        (void)sub;
        s->tally.dropped += vbus_message_get_dropped(msg);
        if (vbus_message_follows_gap(msg))
                s->gaps++;
        bench_tally_add(&s->tally, data, n);
}

static int cmd_vbus_sub(const char *pattern, uint64_t count, const char *ready, bool drop)
{
        vbus_conn *c = vbus_connect("vbus-sub");
        vbus_subscription *s = NULL;
        VbusSub st;
        bool announced = false;
        uint64_t deadline = now_us() + BENCH_START_TIMEOUT_US;
        int r, ret = 1;

        bench_tally_init(&st.tally);
        st.gaps = 0;
        if (!c)
                goto out;
        r = vbus_subscribe(c, pattern, drop ? VBUS_SLOW_DROP : VBUS_SLOW_BLOCK, vbus_on_message,
                           &st, &s);
        if (r < 0) {
                fprintf(stderr, "vbus-sub: subscribe: %s\n", strerror(-r));
                goto out;
        }
        while (bench_tally_done(&st.tally) < count) {
                const char *why = "";
                uint64_t before = st.tally.received;

                r = vbus_conn_wait(c, 100000);
                if (r < 0 && r != -ETIMEDOUT && r != -EINTR) {
                        fprintf(stderr, "vbus-sub: %s\n", strerror(-r));
                        break;
                }
                if (vbus_subscription_get_status(s, &why) > 0) {
                        fprintf(stderr, "vbus-sub: subscription ended: %s\n", why);
                        break;
                }
                if (!announced && vbus_subscription_is_active(s)) {
                        announced = true;
                        if (bench_ready(ready) < 0) {
                                fprintf(stderr, "vbus-sub: cannot create %s\n", ready);
                                goto out;
                        }
                }
                if (st.tally.received != before)
                        deadline = now_us() + BENCH_IDLE_TIMEOUT_US;
                if (now_us() > deadline) {
                        fprintf(stderr, "vbus-sub: timed out\n");
                        break;
                }
        }
        bench_tally_print(&st.tally, count);
        if (st.gaps)
                fprintf(stderr, "vbus-sub: %llu reconnect gaps\n", (unsigned long long)st.gaps);
        ret = 0;
out:
        vbus_subscription_free(s);
        vbus_conn_free(c);
        return ret;
}

/* ---- plain UNIX sockets -------------------------------------------------------------------- */

static int unix_addr(const char *dir, const char *name, struct sockaddr_un *sa)
{
        memset(sa, 0, sizeof(*sa));
        sa->sun_family = AF_UNIX;
        if ((size_t)snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s", dir, name) >=
            sizeof(sa->sun_path))
                return -ENAMETOOLONG;
        return 0;
}

static int unix_listen(const char *dir, const char *name)
{
        struct sockaddr_un sa;
        int fd;

        if (unix_addr(dir, name, &sa) < 0)
                return -1;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -1;
        unlink(sa.sun_path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

static int unix_connect(const char *dir, const char *name)
{
        struct sockaddr_un sa;
        uint64_t deadline = now_us() + BENCH_START_TIMEOUT_US;

        if (unix_addr(dir, name, &sa) < 0)
                return -1;
        for (;;) {
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

                if (fd < 0)
                        return -1;
                if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                        return fd;
                close(fd);
                if (now_us() > deadline)
                        return -1;
                usleep(10000);
        }
}

static int write_all(int fd, const void *data, size_t len)
{
        const uint8_t *p = data;

        while (len > 0) {
                ssize_t n = write(fd, p, len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

static uint32_t frame_len(const uint8_t *p)
{
        uint32_t n;

        memcpy(&n, p, sizeof(n));
        return n;
}

/*
 * Reads frames from @fd into a growing buffer; for each read, calls @on_frames with the span of
 * whole frames it completed (and the frame count), keeping the partial tail for the next read.
 * Returns 0 at EOF with no partial frame left, negative otherwise.
 */
typedef int (*frames_fn)(const uint8_t *span, size_t len, void *userdata);

static int read_frames(int fd, frames_fn on_frames, void *userdata)
{
        size_t cap = UNIX_READ_BUF, have = 0;
        uint8_t *buf = malloc(cap);
        int ret = -EIO;

        if (!buf)
                return -ENOMEM;
        for (;;) {
                size_t off = 0;
                ssize_t n = read(fd, buf + have, cap - have);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        ret = -errno;
                        break;
                }
                if (n == 0) {
                        ret = have == 0 ? 0 : -EPROTO;
                        break;
                }
                have += (size_t)n;
                while (have - off >= FRAME_HEADER &&
                       have - off >= FRAME_HEADER + (size_t)frame_len(buf + off))
                        off += FRAME_HEADER + frame_len(buf + off);
                if (off > 0) {
                        ret = on_frames(buf, off, userdata);
                        if (ret < 0)
                                break;
                        memmove(buf, buf + off, have - off);
                        have -= off;
                }
                if (have >= FRAME_HEADER && FRAME_HEADER + (size_t)frame_len(buf) > cap) {
                        size_t want = FRAME_HEADER + (size_t)frame_len(buf);
                        uint8_t *nb = realloc(buf, want);

                        if (!nb) {
                                ret = -ENOMEM;
                                break;
                        }
                        buf = nb;
                        cap = want;
                }
        }
        free(buf);
        return ret;
}

typedef struct Relay {
        int *subs;
        unsigned n_subs;
} Relay;

static int relay_forward(const uint8_t *span, size_t len, void *userdata)
{
        Relay *rl = userdata;

        for (unsigned i = 0; i < rl->n_subs; i++) {
                int r = write_all(rl->subs[i], span, len);

                if (r < 0)
                        return r;
        }
        return 0;
}

static int cmd_unix_relay(const char *dir, uint64_t n_subs)
{
        int lsub = unix_listen(dir, "sub.sock");
        int lpub = unix_listen(dir, "pub.sock");
        int subs[64], pub = -1, r;
        Relay rl = {.subs = subs, .n_subs = 0};
        char ready[4096];

        if (lsub < 0 || lpub < 0 || n_subs == 0 || n_subs > 64) {
                fprintf(stderr, "unix-relay: cannot listen in %s\n", dir);
                return 1;
        }
        if ((size_t)snprintf(ready, sizeof(ready), "%s/relay.ready", dir) >= sizeof(ready) ||
            bench_ready(ready) < 0)
                return 1;
        while (rl.n_subs < n_subs) {
                int fd = accept4(lsub, NULL, NULL, SOCK_CLOEXEC);

                if (fd < 0) {
                        if (errno == EINTR)
                                continue;
                        perror("unix-relay: accept");
                        return 1;
                }
                subs[rl.n_subs++] = fd;
        }
        while (pub < 0) {
                pub = accept4(lpub, NULL, NULL, SOCK_CLOEXEC);
                if (pub < 0 && errno != EINTR) {
                        perror("unix-relay: accept");
                        return 1;
                }
        }
        r = read_frames(pub, relay_forward, &rl);
        if (r < 0)
                fprintf(stderr, "unix-relay: %s\n", strerror(-r));
        printf("relay cpu_us=%llu\n", (unsigned long long)bench_cpu_us());
        for (unsigned i = 0; i < rl.n_subs; i++)
                close(subs[i]);
        close(pub);
        close(lsub);
        close(lpub);
        return r < 0 ? 1 : 0;
}

static int cmd_unix_pub(const char *dir, uint64_t count, size_t size)
{
        int fd = unix_connect(dir, "pub.sock");
        uint8_t *msg = bench_buf_new(size);
        uint8_t *buf = malloc(UNIX_PUB_BUF);
        size_t have = 0;
        uint32_t hdr = (uint32_t)size;
        uint64_t start, interval = bench_interval_us();
        int r = 0;

        if (fd < 0 || !msg || !buf) {
                fprintf(stderr, "unix-pub: cannot connect\n");
                if (fd >= 0)
                        close(fd);
                free(msg);
                free(buf);
                return 1;
        }
        start = bench_now_ns();
        for (uint64_t i = 1; i <= count && r == 0; i++) {
                bench_buf_seq(msg, i);
                if (interval) {
                        /* Latency mode: each message written at once. */
                        bench_pause_us(interval);
                        bench_buf_stamp(msg, size);
                }
                if (have + FRAME_HEADER + size > UNIX_PUB_BUF && have > 0) {
                        r = write_all(fd, buf, have);
                        have = 0;
                }
                if (FRAME_HEADER + size > UNIX_PUB_BUF) {
                        /* Too big to buffer: header and payload in one writev. */
                        struct iovec iov[2] = {{&hdr, FRAME_HEADER}, {msg, size}};
                        ssize_t n = writev(fd, iov, 2);

                        if (n < 0)
                                r = -errno;
                        else if ((size_t)n < FRAME_HEADER)
                                r = -EIO; /* never happens on a blocking stream socket */
                        else if ((size_t)n < FRAME_HEADER + size)
                                r = write_all(fd, msg + (n - FRAME_HEADER),
                                              size - (size_t)(n - FRAME_HEADER));
                        continue;
                }
                memcpy(buf + have, &hdr, FRAME_HEADER);
                memcpy(buf + have + FRAME_HEADER, msg, size);
                have += FRAME_HEADER + size;
                if (interval) {
                        r = write_all(fd, buf, have);
                        have = 0;
                }
        }
        if (r == 0 && have > 0)
                r = write_all(fd, buf, have);
        if (r < 0)
                fprintf(stderr, "unix-pub: %s\n", strerror(-r));
        else
                bench_pub_print(count, start, bench_now_ns());
        close(fd);
        free(buf);
        free(msg);
        return r < 0 ? 1 : 0;
}

static int sub_frames(const uint8_t *span, size_t len, void *userdata)
{
        BenchTally *t = userdata;

        for (size_t off = 0; off < len;) {
                uint32_t n = frame_len(span + off);

                bench_tally_add(t, span + off + FRAME_HEADER, n);
                off += FRAME_HEADER + n;
        }
        return 0;
}

static int cmd_unix_sub(const char *dir, uint64_t count, const char *ready)
{
        int fd = unix_connect(dir, "sub.sock");
        BenchTally t;
        int r;

        bench_tally_init(&t);
        if (fd < 0 || bench_ready(ready) < 0) {
                fprintf(stderr, "unix-sub: cannot connect\n");
                return 1;
        }
        r = read_frames(fd, sub_frames, &t);
        if (r < 0)
                fprintf(stderr, "unix-sub: %s\n", strerror(-r));
        bench_tally_print(&t, count);
        close(fd);
        return 0;
}

/* ---- main ---------------------------------------------------------------------------------- */

static int usage(void)
{
        fprintf(stderr, "usage: pubsub-bench vbus-pub TOPIC COUNT SIZE\n"
                        "       pubsub-bench vbus-sub PATTERN COUNT [--ready FILE] [--drop]\n"
                        "       pubsub-bench unix-relay DIR NSUBS\n"
                        "       pubsub-bench unix-pub DIR COUNT SIZE\n"
                        "       pubsub-bench unix-sub DIR COUNT [--ready FILE]\n");
        return 2;
}

int main(int argc, char **argv)
{
        const char *ready = NULL;
        bool drop = false;
        uint64_t a = 0, b = 0;

        (void)signal(SIGPIPE, SIG_IGN); /* cannot fail: a valid signal and handler */
        if (argc < 4)
                return usage();
        for (int i = 4; i < argc; i++) {
                if (strcmp(argv[i], "--ready") == 0 && i + 1 < argc)
                        ready = argv[++i];
                else if (strcmp(argv[i], "--drop") == 0)
                        drop = true;
                else if (i != 4 || bench_parse_u64(argv[i], &b) < 0)
                        return usage();
        }
        if (bench_parse_u64(argv[3], &a) < 0)
                return usage();
        if (strcmp(argv[1], "vbus-pub") == 0 && b >= BENCH_MIN_SIZE && b <= VBUS_MESSAGE_MAX)
                return cmd_vbus_pub(argv[2], a, (size_t)b);
        if (strcmp(argv[1], "vbus-sub") == 0)
                return cmd_vbus_sub(argv[2], a, ready, drop);
        if (strcmp(argv[1], "unix-relay") == 0)
                return cmd_unix_relay(argv[2], a);
        if (strcmp(argv[1], "unix-pub") == 0 && b >= BENCH_MIN_SIZE && b <= UINT32_MAX - 8)
                return cmd_unix_pub(argv[2], a, (size_t)b);
        if (strcmp(argv[1], "unix-sub") == 0)
                return cmd_unix_sub(argv[2], a, ready);
        return usage();
}
