/* SPDX-License-Identifier: MIT */
/*
 * scale-bench: the programs of bench/scale/run, each one vbus client in its own domain. Prints
 * figures, asserts nothing. Times are CLOCK_MONOTONIC nanoseconds, comparable between the
 * processes of one host (xensim domains are processes of one kernel).
 *
 *   scale-bench guest FILE [FAN]  subscribe to "scale.>" (DROP, the default of vbusctl sub);
 *                                 once the broker accepted the subscription append
 *                                 "ready <ns>" to FILE; then idle. On the last of FAN messages
 *                                 on scale.fan append "done <ns> <received>".
 *   scale-bench ping FILE MS      every MS ms call vbus.v1.Broker/ListServices (a round trip
 *                                 through the broker's loop) and append "<ns> <latency ns>"
 *                                 per call to FILE, until FILE.stop exists.
 *   scale-bench pub COUNT SIZE    publish COUNT messages of SIZE bytes on scale.fan (waiting
 *                                 for credit), print "pub <first ns> <last ns>".
 *   scale-bench now               print the clock (for the run script's own stamps).
 *
 * Every program connects with vbus_conn_open(NULL): $VBUS_URL chooses the broker.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vbus/vbus.h>

/* How long a program waits for its connection or its messages before giving up. */
#define SCALE_WAIT_US (600ull * 1000000u)

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One line appended with one write(): lines of many processes do not interleave. */
static void append_line(const char *path, const char *line)
{
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

        if (fd < 0) {
                perror(path);
                exit(1);
        }
        if (write(fd, line, strlen(line)) < 0)
                perror(path);
        close(fd);
}

typedef struct Guest {
        const char *file;
        uint64_t fan, received;
        bool done;
} Guest;

static void guest_on_message(vbus_subscription *sub, const vbus_message *msg, void *userdata)
{
        Guest *g = userdata;
        char line[96];

        (void)sub;
        const uint8_t *data;
        uint64_t seq = 0;
        size_t n = 0;

        if (strcmp(vbus_message_get_topic(msg), "scale.fan") != 0 || g->done)
                return;
        g->received++;
        data = vbus_message_get_data(msg, &n);
        if (n >= sizeof(seq))
                memcpy(&seq, data, sizeof(seq));
        /* The last one (the others may have been dropped: the count says). */
        if (seq + 1 < g->fan && g->received < g->fan)
                return;
        g->done = true;
        (void)snprintf(line, sizeof(line), "done %" PRIu64 " %" PRIu64 "\n", now_ns(), g->received);
        append_line(g->file, line);
}

static int run_guest(const char *file, uint64_t fan)
{
        Guest g = {.file = file, .fan = fan};
        vbus_subscription *sub = NULL;
        vbus_conn *conn = NULL;
        uint64_t start = now_ns();
        bool ready = false;
        char line[64];
        int r;

        r = vbus_conn_open(NULL, &conn);
        if (r == 0)
                r = vbus_subscribe(conn, "scale.>", VBUS_SLOW_DROP, guest_on_message, &g, &sub);
        if (r < 0) {
                fprintf(stderr, "guest: %s\n", strerror(-r));
                return 1;
        }
        for (;;) {
                r = vbus_conn_wait(conn, 1000000);
                if (r < 0 && r != -ETIMEDOUT && r != -EINTR && r != -EAGAIN && r != -ENOTCONN) {
                        fprintf(stderr, "guest: %s\n", strerror(-r));
                        break;
                }
                if (!ready && vbus_subscription_is_active(sub)) {
                        ready = true;
                        (void)snprintf(line, sizeof(line), "ready %" PRIu64 "\n", now_ns());
                        append_line(file, line);
                }
                if (!ready && now_ns() - start > SCALE_WAIT_US * 1000u) {
                        fprintf(stderr, "guest: never connected\n");
                        break;
                }
        }
        vbus_subscription_free(sub);
        vbus_conn_free(conn);
        return 1;
}

static int run_ping(const char *file, unsigned int interval_ms)
{
        static const char method[] = "vbus.v1.Broker/ListServices";
        vbus_conn *conn = NULL;
        char stop[4096];
        int r;

        if ((size_t)snprintf(stop, sizeof(stop), "%s.stop", file) >= sizeof(stop))
                return 2;
        r = vbus_conn_open(NULL, &conn);
        if (r == 0)
                r = vbus_conn_wait_ready(conn, SCALE_WAIT_US);
        if (r < 0) {
                fprintf(stderr, "ping: %s\n", strerror(-r));
                return 1;
        }
        while (access(stop, F_OK) != 0) {
                uint64_t t0 = now_ns(), t1;
                vbus_reply *reply = NULL;
                char line[64];

                r = vbus_call_sync(conn, method, "", 0, 5000000, &reply);
                t1 = now_ns();
                if (r == 0 && vbus_reply_get_status(reply) == VBUS_STATUS_OK) {
                        (void)snprintf(line, sizeof(line), "%" PRIu64 " %" PRIu64 "\n", t0,
                                       t1 - t0);
                        append_line(file, line);
                } else {
                        (void)snprintf(line, sizeof(line), "%" PRIu64 " fail\n", t0);
                        append_line(file, line);
                }
                vbus_reply_free(reply);
                usleep(interval_ms * 1000u);
        }
        vbus_conn_free(conn);
        return 0;
}

static int run_pub(uint64_t count, size_t size)
{
        vbus_publisher *pub = NULL;
        vbus_conn *conn = NULL;
        uint64_t first = 0;
        char *buf = calloc(1, size);
        int r;

        if (!buf)
                return 1;
        r = vbus_conn_open(NULL, &conn);
        if (r == 0)
                r = vbus_conn_wait_ready(conn, SCALE_WAIT_US);
        if (r == 0)
                r = vbus_publisher_open(conn, "scale.fan", &pub);
        for (uint64_t i = 0; r == 0 && i < count; i++) {
                if (i == 0)
                        first = now_ns();
                memcpy(buf, &i, size < sizeof(i) ? size : sizeof(i));
                r = vbus_publish_wait(pub, buf, size, SCALE_WAIT_US);
        }
        if (r == 0)
                r = vbus_conn_flush(conn, SCALE_WAIT_US);
        if (r < 0) {
                fprintf(stderr, "pub: %s\n", strerror(-r));
                vbus_publisher_free(pub);
                vbus_conn_free(conn);
                free(buf);
                return 1;
        }
        printf("pub %" PRIu64 " %" PRIu64 "\n", first, now_ns());
        vbus_publisher_free(pub);
        (void)vbus_conn_flush(conn, 1000000);
        vbus_conn_free(conn);
        free(buf);
        return 0;
}

static void usage(FILE *f)
{
        fputs("usage: scale-bench guest FILE [FAN] | ping FILE MS | pub COUNT SIZE | now\n"
              "  the programs of bench/scale/run (see its README.md); $VBUS_URL picks the "
              "broker\n",
              f);
}

int main(int argc, char **argv)
{
        (void)signal(SIGPIPE, SIG_IGN);
        if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
                usage(stdout);
                return 0;
        }
        if (argc == 2 && strcmp(argv[1], "now") == 0) {
                printf("%" PRIu64 "\n", now_ns());
                return 0;
        }
        if (argc >= 3 && argc <= 4 && strcmp(argv[1], "guest") == 0)
                return run_guest(argv[2], argc == 4 ? strtoull(argv[3], NULL, 10) : UINT64_MAX);
        if (argc == 4 && strcmp(argv[1], "ping") == 0)
                return run_ping(argv[2], (unsigned int)strtoul(argv[3], NULL, 10));
        if (argc == 4 && strcmp(argv[1], "pub") == 0)
                return run_pub(strtoull(argv[2], NULL, 10), strtoul(argv[3], NULL, 10));
        usage(stderr);
        return 2;
}
