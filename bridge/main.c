/* SPDX-License-Identifier: MIT */
/*
 * vbus-bridge: federates the vbus broker of this host with other hosts over a NATS cluster.
 *
 * main() reads the configuration, opens the vbus connection and the NATS connection, starts the
 * modules (export, import, rpc) and runs the loop: poll on the vbus connection's fd, the event
 * queue's wake pipe and a signalfd; hand queued NATS messages to their module; let libvbus do
 * its work; retry what waits for credit; check calls in flight. SIGUSR1 prints the metrics,
 * SIGTERM and SIGINT stop the bridge cleanly (and print them once more).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"
#include "limits.h"

static const char usage[] =
        "usage: vbus-bridge [OPTIONS]\n"
        "Federate this host's vbus broker with other hosts over a NATS cluster.\n"
        "\n"
        "  -c, --config FILE        the configuration (default /etc/vbus/bridge.conf); its\n"
        "                           format is in vbus-bridge(1) and docs/federation.md\n"
        "      --check              parse the configuration, report errors, and exit\n"
        "      --metrics-file FILE  write the metrics to FILE (replaced atomically) on SIGUSR1\n"
        "                           and at exit, instead of to stderr\n"
        "      --metrics-format text|prom\n"
        "                           prom: the Prometheus text exposition format (for a\n"
        "                           textfile collector); default text\n"
        "      --ready FILE         create FILE once the broker accepted every subscription\n"
        "                           and service and NATS is connected\n"
        "  -h, --help               this text\n"
        "\n"
        "Signals: SIGUSR1 prints the metrics; SIGTERM/SIGINT stop the bridge.\n"
        "Exit status: 0 after a signal, 1 on a runtime failure, 2 on a usage or\n"
        "configuration error.\n";

uint64_t bridge_now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void bridge_write_metrics(const Bridge *b, const char *path)
{
        char tmp[4096];
        FILE *f;

        if (!path) {
                metrics_print(b, stderr, b->metrics_prom);
                return;
        }
        if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
                fprintf(stderr, "vbus-bridge: %s: %s\n", path, strerror(ENAMETOOLONG));
                return;
        }
        f = fopen(tmp, "we");
        if (!f) {
                fprintf(stderr, "vbus-bridge: %s: %s\n", tmp, strerror(errno));
                return;
        }
        metrics_print(b, f, b->metrics_prom);
        if (fclose(f) != 0 || rename(tmp, path) < 0)
                fprintf(stderr, "vbus-bridge: %s: %s\n", path, strerror(errno));
}

static bool bridge_is_ready(Bridge *b)
{
        const Config *c = b->cfg;

        if (natsConnection_Status(b->nc) != NATS_CONN_STATUS_CONNECTED)
                return false;
        if (vbus_conn_get_state(b->conn) != VBUS_CONN_READY)
                return false;
        for (unsigned i = 0; i < c->n_exports; i++)
                if (!vbus_subscription_is_active(b->export_subs[i]))
                        return false;
        if (b->forged_sub && !vbus_subscription_is_active(b->forged_sub))
                return false;
        return rpc_is_active(b);
}

static void bridge_handle_events(Bridge *b, bool *ret_more)
{
        Event *e = queue_pop(&b->q, BRIDGE_BATCH), *next;
        unsigned n = 0;

        for (; e; e = next) {
                next = e->next;
                if (e->kind == EVENT_IMPORT)
                        import_handle(b, e);
                else
                        rpc_handle(b, e);
                natsMsg_Destroy(e->msg);
                free(e);
                n++;
        }
        *ret_more = n == BRIDGE_BATCH;
}

static int bridge_run(Bridge *b, int sfd, const char *metrics_path, const char *ready_path)
{
        bool ready = false, more = false, stop = false;

        while (!stop) {
                struct pollfd p[3] = {
                        {.fd = sfd, .events = POLLIN},
                        {.fd = b->q.wake[0], .events = POLLIN},
                        {.fd = vbus_conn_get_fd(b->conn)},
                };
                uint64_t now = bridge_now_usec(), next = UINT64_MAX, t;
                int timeout, events = vbus_conn_get_events(b->conn);

                p[2].events = (short)(events > 0 ? events : 0);
                if (vbus_conn_get_timeout(b->conn, &t) == 0 && t < next)
                        next = t;
                t = rpc_sweep(b, now);
                if (t < next)
                        next = t;
                if (b->busy && now + BRIDGE_RETRY_USEC < next)
                        next = now + BRIDGE_RETRY_USEC;
                if (!ready && now + 50000 < next)
                        next = now + 50000;
                if (more || next <= now)
                        timeout = 0;
                else if (next - now > 1000000)
                        timeout = 1000;
                else
                        timeout = (int)((next - now + 999) / 1000);
                if (poll(p, p[2].fd >= 0 ? 3 : 2, timeout) < 0 && errno != EINTR) {
                        fprintf(stderr, "vbus-bridge: poll: %s\n", strerror(errno));
                        return -errno;
                }
                if (p[0].revents & POLLIN) {
                        struct signalfd_siginfo si;

                        while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                                if (si.ssi_signo == SIGUSR1)
                                        bridge_write_metrics(b, metrics_path);
                                else
                                        stop = true;
                        }
                }
                queue_drain_wake(&b->q);
                bridge_handle_events(b, &more);
                if (vbus_conn_process(b->conn) < 0)
                        return -ENOMEM;
                import_flush(b);
                rpc_sweep(b, bridge_now_usec());
                if (!ready && bridge_is_ready(b)) {
                        ready = true;
                        /* The server has our subscriptions once it answered a PING. */
                        natsConnection_FlushTimeout(b->nc, 2000);
                        char url[256] = "";

                        natsConnection_GetConnectedUrl(b->nc, url, sizeof(url));
                        fprintf(stderr, "vbus-bridge: %s ready, NATS %s\n", b->cfg->host, url);
                        if (ready_path) {
                                FILE *f = fopen(ready_path, "we");

                                if (f)
                                        (void)fclose(f); /* empty: its existence is the sign */
                        }
                }
        }
        return 0;
}

static void bridge_stop(Bridge *b)
{
        queue_close(&b->q);
        export_stop(b);
        rpc_stop(b);
        import_stop(b);
        if (b->conn)
                vbus_conn_flush(b->conn, 1000000);
        nats_close(b);
        import_free(b);
        rpc_free(b);
        b->conn = vbus_conn_free(b->conn);
        queue_deinit(&b->q);
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"check", no_argument, NULL, 'k'},
                {"metrics-file", required_argument, NULL, 'm'},
                {"metrics-format", required_argument, NULL, 'f'},
                {"ready", required_argument, NULL, 'r'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        const char *path = "/etc/vbus/bridge.conf", *metrics_path = NULL, *ready_path = NULL;
        bool check = false;
        Config *cfg = NULL;
        Bridge b = {0};
        sigset_t mask;
        int c, r, sfd;

        while ((c = getopt_long(argc, argv, "c:h", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        path = optarg;
                        break;
                case 'k':
                        check = true;
                        break;
                case 'm':
                        metrics_path = optarg;
                        break;
                case 'f':
                        if (strcmp(optarg, "prom") != 0 && strcmp(optarg, "text") != 0) {
                                fprintf(stderr,
                                        "vbus-bridge: --metrics-format wants text or "
                                        "prom, not '%s'\n",
                                        optarg);
                                return 2;
                        }
                        b.metrics_prom = strcmp(optarg, "prom") == 0;
                        break;
                case 'r':
                        ready_path = optarg;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return 0;
                default:
                        fputs(usage, stderr);
                        return 2;
                }
        }
        if (optind != argc) {
                fputs(usage, stderr);
                return 2;
        }
        r = config_load(path, stderr, &cfg);
        if (r < 0)
                return 2;
        if (check) {
                printf("%s: ok\n", path);
                config_free(cfg);
                return 0;
        }

        /* Blocked before libnats starts its threads, so that they inherit the mask and the
         * signals reach only the signalfd. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGUSR1);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        (void)signal(SIGPIPE, SIG_IGN); /* cannot fail for a valid signal */
        sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sfd < 0) {
                fprintf(stderr, "vbus-bridge: signalfd: %s\n", strerror(errno));
                return 1;
        }

        b.cfg = cfg;
        b.pid = getpid();
        b.uid = getuid();
        b.started_usec = bridge_now_usec();
        if (getrandom(&b.epoch, sizeof(b.epoch), 0) != (ssize_t)sizeof(b.epoch))
                b.epoch = b.started_usec ^ (uint64_t)b.pid << 32;
        b.epoch >>= 1; /* leaves room for the increments of a table reset */
        r = queue_init(&b.q);
        if (r == 0)
                r = vbus_conn_open(cfg->broker, &b.conn);
        if (r < 0) {
                fprintf(stderr, "vbus-bridge: broker %s: %s\n", cfg->broker ? cfg->broker : "",
                        strerror(-r));
                goto out;
        }
        r = nats_connect(&b);
        if (r == 0)
                r = export_start(&b);
        if (r == 0)
                r = import_start(&b);
        if (r == 0)
                r = rpc_start(&b);
        if (r == 0)
                r = bridge_run(&b, sfd, metrics_path, ready_path);
out:
        bridge_stop(&b);
        bridge_write_metrics(&b, metrics_path);
        close(sfd);
        config_free(cfg);
        nats_Close();
        return r < 0 ? 1 : 0;
}
