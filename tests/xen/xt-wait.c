/*
 * xt-wait: block until xenstore keys exist, for the payload checks of the real-Xen stage.
 *
 * Usage: xt-wait [-t SECONDS] KEY...
 * Waits until every KEY exists, then prints their values, one per line, in the order given,
 * and exits 0. Exits 1 when SECONDS (default 60) pass first or xenstore fails, 2 on a usage
 * error.
 *
 * Why a program and not a shell loop: under QEMU's software emulation every process a PV
 * guest starts costs a few hundred milliseconds of CPU, so polling xenstore-read from the
 * shell slows the very transfers the checks measure. This waits on a xenstore watch and
 * uses no CPU while it waits. It runs in dom0 (xenstored's socket) and in a domU
 * (/dev/xen/xenbus) alike; tests/xen/run compiles it against the host's libxenstore.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xenstore.h>

static uint64_t now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Prints every key's value when all exist; returns true then. */
static bool wait_all_present(struct xs_handle *xs, char **keys, int n_keys, bool print)
{
        for (int i = 0; i < n_keys; i++) {
                unsigned int len = 0;
                char *value = xs_read(xs, XBT_NULL, keys[i], &len);

                if (!value)
                        return false;
                free(value);
        }
        if (!print)
                return true;
        for (int i = 0; i < n_keys; i++) {
                unsigned int len = 0;
                char *value = xs_read(xs, XBT_NULL, keys[i], &len);

                if (!value)
                        return false;
                printf("%.*s\n", (int)len, value);
                free(value);
        }
        return true;
}

static int usage(void)
{
        fprintf(stderr, "usage: xt-wait [-t SECONDS] KEY...\n");
        return 2;
}

int main(int argc, char **argv)
{
        double timeout_sec = 60.0;
        int first = 1;
        struct xs_handle *xs;
        uint64_t deadline;
        int rc = 1;

        if (argc > 2 && strcmp(argv[1], "-t") == 0) {
                char *end = NULL;

                errno = 0;
                timeout_sec = strtod(argv[2], &end);
                if (errno != 0 || end == argv[2] || *end != '\0' || timeout_sec < 0 ||
                    timeout_sec > 86400.0)
                        return usage();
                first = 3;
        }
        if (first >= argc)
                return usage();

        xs = xs_open(0);
        if (!xs) {
                perror("xt-wait: xs_open");
                return 1;
        }
        for (int i = first; i < argc; i++) {
                if (!xs_watch(xs, argv[i], "xt-wait")) {
                        fprintf(stderr, "xt-wait: cannot watch %s\n", argv[i]);
                        goto out;
                }
        }

        deadline = now_usec() + (uint64_t)(timeout_sec * 1e6);
        for (;;) {
                struct pollfd pfd = {.fd = xs_fileno(xs), .events = POLLIN};
                uint64_t t = now_usec();
                int ready;

                if (wait_all_present(xs, argv + first, argc - first, false)) {
                        rc = wait_all_present(xs, argv + first, argc - first, true) ? 0 : 1;
                        break;
                }
                if (t >= deadline)
                        break;
                ready = poll(&pfd, 1, (int)((deadline - t) / 1000u) + 1);
                if (ready < 0 && errno != EINTR) {
                        perror("xt-wait: poll");
                        break;
                }
                if (ready > 0) {
                        unsigned int n = 0;

                        free(xs_read_watch(xs, &n));
                }
        }
out:
        xs_close(xs);
        return rc;
}
