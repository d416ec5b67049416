/* SPDX-License-Identifier: MIT */
/*
 * vchand: the vbus broker. main() reads the options and the configuration, builds the Broker and
 * runs it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include <vbus/vbus.h>

#include "broker.h"
#include "log.h"

static const char usage[] =
        "Usage: vchand [OPTIONS]\n"
        "\n"
        "The vbus broker: holds one vchan to each participating guest domain (discovered\n"
        "through xenstore) and a UNIX socket for local clients, and routes publish/subscribe\n"
        "messages between them.\n"
        "\n"
        "Options:\n"
        "  -c, --config FILE   configuration file (default /etc/vchand/vchand.conf if it\n"
        "                      exists; see vchand(8) for the keys)\n"
        "  -s, --socket PATH   UNIX socket for local clients (default /run/vbus/broker.sock)\n"
        "      --no-xen        do not discover guests through xenstore (UNIX socket only)\n"
        "      --check-config  parse the configuration, print the values in force, and exit\n"
        "  -v, --verbose       debug logging\n"
        "  -V, --version       print the version and exit\n"
        "  -h, --help          this text\n"
        "\n"
        "Signals: SIGTERM and SIGINT send GOAWAY to every peer and stop within 2 seconds.\n"
        "Exit status: 0 after an orderly stop, 1 on a start-up error, 2 on usage errors.\n";

static int read_config(BrokerConfig *c, const char *path, bool required)
{
        char buf[65536], err[256];
        ssize_t n;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0) {
                if (!required && errno == ENOENT)
                        return 0;
                fprintf(stderr, "vchand: %s: %s\n", path, strerror(errno));
                return -1;
        }
        n = read(fd, buf, sizeof(buf));
        close(fd);
        if (n < 0 || n == (ssize_t)sizeof(buf)) {
                fprintf(stderr, "vchand: %s: %s\n", path, n < 0 ? strerror(errno) : "too large");
                return -1;
        }
        if (config_parse(c, buf, (size_t)n, err, sizeof(err)) < 0) {
                fprintf(stderr, "vchand: %s: %s\n", path, err);
                return -1;
        }
        return 0;
}

static void print_config(const BrokerConfig *c)
{
        printf("socket = %s\nxen = %s\nmax_frame = %u\nmax_message = %u\nmax_streams = %u\n"
               "max_subscriptions = %u\npublish_window = %u\nqueue_messages = %u\n"
               "queue_bytes = %u\npeer_queued_bytes = %llu\npeer_publish_bytes = %llu\n"
               "hello_timeout_ms = %u\nmax_peers = %u\n",
               c->socket_path, c->xen ? "yes" : "no", c->max_frame, c->max_message, c->max_streams,
               c->max_subscriptions, c->publish_window, c->queue_messages, c->queue_bytes,
               (unsigned long long)c->peer_queued_bytes, (unsigned long long)c->peer_publish_bytes,
               c->hello_timeout_ms, c->max_peers);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"config", required_argument, NULL, 'c'}, {"socket", required_argument, NULL, 's'},
                {"no-xen", no_argument, NULL, 'X'},       {"check-config", no_argument, NULL, 'C'},
                {"verbose", no_argument, NULL, 'v'},      {"version", no_argument, NULL, 'V'},
                {"help", no_argument, NULL, 'h'},         {0},
        };
        const char *config_path = NULL, *socket_path = NULL;
        bool no_xen = false, check = false;
        BrokerConfig config;
        Broker broker;
        int c, r, verbose = 0;

        while ((c = getopt_long(argc, argv, "c:s:vVh", opts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case 's':
                        socket_path = optarg;
                        break;
                case 'X':
                        no_xen = true;
                        break;
                case 'C':
                        check = true;
                        break;
                case 'v':
                        verbose++;
                        break;
                case 'V':
                        printf("vchand %s\n", vbus_version());
                        return 0;
                case 'h':
                        fputs(usage, stdout);
                        return 0;
                default:
                        fputs(usage, stderr);
                        return 2;
                }
        }
        if (optind != argc) {
                fprintf(stderr, "vchand: unexpected argument '%s'\n\n%s", argv[optind], usage);
                return 2;
        }
        config_defaults(&config);
        if (read_config(&config, config_path ? config_path : "/etc/vchand/vchand.conf",
                        config_path != NULL) < 0)
                return 1;
        if (socket_path) {
                if (socket_path[0] != '/' || strlen(socket_path) >= sizeof(config.socket_path)) {
                        fprintf(stderr,
                                "vchand: --socket wants an absolute path shorter than %zu "
                                "bytes\n",
                                sizeof(config.socket_path));
                        return 2;
                }
                /* Fits: its length was checked above. */
                (void)snprintf(config.socket_path, sizeof(config.socket_path), "%s", socket_path);
        }
        if (no_xen)
                config.xen = false;
        config.verbose = verbose;
        if (check) {
                print_config(&config);
                return 0;
        }
        log_set_verbose(verbose);
        r = broker_init(&broker, &config);
        if (r < 0) {
                log_error("cannot start: %s", strerror(-r));
                broker_deinit(&broker);
                return 1;
        }
        /* What Reload reads again: the file read above, or the default one if it appears. */
        broker.bus.config_path = config_path ? config_path : "/etc/vchand/vchand.conf";
#ifdef HAVE_LIBSYSTEMD
        /* Tells systemd (vchand.service, Type=notify) that the socket listens; without
         * $NOTIFY_SOCKET this does nothing. */
        (void)sd_notify(0, "READY=1");
#endif
        r = broker_run(&broker);
        broker_deinit(&broker);
        if (r < 0) {
                log_error("stopped on error: %s", strerror(-r));
                return 1;
        }
        return 0;
}
