/* SPDX-License-Identifier: MIT */
/*
 * bridge-pub: a paced publisher for the bridge tests.
 *
 *   bridge-pub TOPIC COUNT INTERVAL_US
 *       publishes the numbers 1..COUNT as text on TOPIC, one every INTERVAL_US microseconds
 *       (the connection is served while it waits: the stream really flows while it runs).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vbus/vbus.h>

static uint64_t now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
        vbus_conn *conn = NULL;
        vbus_publisher *pub = NULL;
        unsigned long count, interval;
        uint64_t next;
        int r;

        if (argc != 4) {
                fprintf(stderr, "usage: bridge-pub TOPIC COUNT INTERVAL_US\n");
                return 2;
        }
        count = strtoul(argv[2], NULL, 10);
        interval = strtoul(argv[3], NULL, 10);
        r = vbus_conn_open(NULL, &conn);
        if (r == 0)
                r = vbus_conn_wait_ready(conn, 10000000);
        if (r == 0)
                r = vbus_publisher_open(conn, argv[1], &pub);
        if (r < 0) {
                fprintf(stderr, "bridge-pub: %s\n", strerror(-r));
                return 1;
        }
        next = now_usec();
        for (unsigned long i = 1; i <= count; i++) {
                char buf[32];
                int n = snprintf(buf, sizeof(buf), "%lu", i);

                r = vbus_publish_wait(pub, buf, (size_t)n, 10000000);
                if (r < 0) {
                        fprintf(stderr, "bridge-pub: message %lu: %s\n", i, strerror(-r));
                        return 1;
                }
                next += interval;
                vbus_conn_process(conn);
                while (now_usec() < next)
                        vbus_conn_wait(conn, next - now_usec());
        }
        vbus_conn_flush(conn, 10000000);
        vbus_conn_free(conn);
        return 0;
}
