/* SPDX-License-Identifier: MIT */
/*
 * vchand: the vbus broker, or with --agent the guest agent (agent.h). main() reads the options
 * and the configuration, takes the single-instance lock of the socket (rundir.h), then builds the
 * Broker and runs it, or runs the agent.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include <vbus/vbus.h>

#include "access.h"
#include "agent.h"
#include "auth.h"
#include "broker.h"
#include "heap.h"
#include "keyring.h"
#include "log.h"
#include "policy.h"
#include "rundir.h"

static const char usage[] =
        "Usage: vchand [OPTIONS]\n"
        "       vchand --agent [--upstream URL] [OPTIONS]\n"
        "\n"
        "The vbus broker: holds one vchan to each participating guest domain (discovered\n"
        "through xenstore) and a UNIX socket for local clients, and routes publish/subscribe\n"
        "messages and calls between them.\n"
        "\n"
        "With --agent, the guest agent: run in a guest, it holds the domain's one vchan to the\n"
        "broker and serves the guest's processes on the socket (default\n"
        "/run/vbus/broker.sock, where libvbus looks first), each process a session of its own.\n"
        "\n"
        "Options:\n"
        "      --agent         run as the guest agent\n"
        "      --upstream URL  agent: the broker, vchan:<domid> (default vchan:0) or\n"
        "                      unix:<path>; also agent_upstream in the configuration\n"
        "  -c, --config FILE   configuration file (default /etc/vchand/vchand.conf if it\n"
        "                      exists; see vchand(8) for the keys)\n"
        "  -s, --socket PATH   UNIX socket for local clients (default /run/vbus/broker.sock)\n"
        "      --no-xen        do not discover guests through xenstore (UNIX socket only)\n"
        "      --policy DIR    the policy: the *.policy files of DIR, first match wins,\n"
        "                      default deny (default /etc/vchand/policy.d; see\n"
        "                      vchand-policy(5)); 'open' allows everything (development\n"
        "                      only: vchand warns loudly)\n"
        "      --check-policy DIR  parse DIR's policy, print its rules count or the first\n"
        "                      error as FILE:LINE:COLUMN, and exit (0 valid, 1 invalid)\n"
        "      --check-config  parse the configuration, print the values in force, and exit\n"
        "  -v, --verbose       debug logging\n"
        "  -V, --version       print the version and exit\n"
        "  -h, --help          this text\n"
        "\n"
        "Signals: SIGTERM and SIGINT send GOAWAY to every peer and stop within 2 seconds;\n"
        "SIGHUP reloads the keyring file and the policy (a file with an error keeps the old\n"
        "one; links whose key left the keyring and streams the new policy denies are refused\n"
        "with PERMISSION_DENIED).\n"
        "One instance per socket: a second vchand for the same socket exits with status 1\n"
        "and touches nothing (the lock is <socket>.lock).\n"
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

/* --check-policy: the exit status says whether @dir would load. */
static int check_policy(const char *dir)
{
        char err[512];
        Policy *p = NULL;

        if (policy_load_dir(dir, &p, err, sizeof(err)) < 0) {
                fprintf(stderr, "vchand: %s\n", err);
                return 1;
        }
        printf("%s: %zu rules%s\n", dir, policy_get_n_rules(p),
               policy_get_n_rules(p) ? "" : " (everything is denied)");
        policy_free(p);
        return 0;
}

static const char *auth_mode_name(ConfigAuth mode)
{
        return mode == CONFIG_AUTH_REQUIRED   ? "required"
               : mode == CONFIG_AUTH_OPTIONAL ? "optional"
                                              : "off";
}

/* Says once at start what channel auth the broker offers, with its public key to pin. */
static void log_auth(const Keyring *k)
{
        char text[VBUS_AUTH_KEY_TEXT_SIZE] = "";

        if (k->has_key)
                (void)vbus__auth_key_to_text(k->key.public_key, text);
        log_info("channel auth %s; broker key %s; %zu keys in the keyring", auth_mode_name(k->mode),
                 k->has_key ? text : "none (clients cannot pin this broker)", k->n_entries);
}

/* --check-config: every key of the table (config_print()), then the auth keys, which the
 * keyring resolves (the mode in force where "auth" was not set). */
static void print_config(const BrokerConfig *c, const Keyring *k)
{
        char text[VBUS_AUTH_KEY_TEXT_SIZE] = "", listen[128];

        if (k->has_key)
                (void)vbus__auth_key_to_text(k->key.public_key, text);
        config_print(c, stdout);
        /* A path key without a path is shown as a comment: the output reads back the same. */
        printf("auth = %s\n%sauth_key = %s\n%sauth_keyring = %s\n", auth_mode_name(k->mode),
               c->auth_key[0] ? "" : "# ", c->auth_key, c->auth_keyring[0] ? "" : "# ",
               c->auth_keyring);
        config_listen_format(&c->metrics_listen, listen, sizeof(listen));
        printf("%smetrics_listen = %s\n", listen[0] ? "" : "# ", listen);
        if (k->has_key)
                printf("# the broker's public key (for VBUS_BROKER_KEY): %s\n", text);
        if (c->auth_keyring[0])
                printf("# %zu keys in the keyring\n", k->n_entries);
        printf("max_sessions = %u\nsocket_owner = %s\nsocket_group = %s\nsocket_mode = %04o\n"
               "agent_upstream = %s\nagent_max_clients = %u\nagent_client_queue = %llu\n",
               c->max_sessions, c->socket_owner[0] ? c->socket_owner : "root", c->socket_group,
               c->socket_mode, c->agent_upstream, c->agent_max_clients,
               (unsigned long long)c->agent_client_queue);
}

static int run_agent(const BrokerConfig *c)
{
        AgentConfig a;

        agent_config_defaults(&a);
        /* All fit: the same sizes, checked when they were parsed. */
        (void)snprintf(a.socket_path, sizeof(a.socket_path), "%s", c->socket_path);
        (void)snprintf(a.upstream, sizeof(a.upstream), "%s", c->agent_upstream);
        (void)snprintf(a.socket_owner, sizeof(a.socket_owner), "%s", c->socket_owner);
        (void)snprintf(a.socket_group, sizeof(a.socket_group), "%s", c->socket_group);
        a.socket_group_set = c->socket_group_set;
        a.socket_mode = c->socket_mode;
        a.max_clients = c->agent_max_clients;
        a.client_queue = c->agent_client_queue;
        return agent_run(&a) < 0 ? 1 : 0;
}

/*
 * A guest costs the broker a few descriptors (docs/vchan.md): use every descriptor we may
 * (the hard limit, which the service manager sets), not the soft default of 1024. Running out
 * anyway is the broker's own problem, logged as such, and never counted against a guest.
 */
static void raise_fd_limit(void)
{
        struct rlimit nofile;

        if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
                nofile.rlim_cur = nofile.rlim_max;
                (void)setrlimit(RLIMIT_NOFILE, &nofile);
        }
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"config", required_argument, NULL, 'c'},
                {"socket", required_argument, NULL, 's'},
                {"no-xen", no_argument, NULL, 'X'},
                {"check-config", no_argument, NULL, 'C'},
                {"verbose", no_argument, NULL, 'v'},
                {"version", no_argument, NULL, 'V'},
                {"help", no_argument, NULL, 'h'},
                {"policy", required_argument, NULL, 'P'},
                {"check-policy", required_argument, NULL, 'K'},
                {"agent", no_argument, NULL, 'A'},
                {"upstream", required_argument, NULL, 'U'},
                {0},
        };
        const char *config_path = NULL, *socket_path = NULL, *policy = NULL, *upstream = NULL;
        bool no_xen = false, check = false, agent = false;
        BrokerConfig config;
        Keyring *keyring = NULL;
        char err[512];
        Broker broker;
        int c, r, verbose = 0, lock_fd = -1;

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
                case 'P':
                        policy = optarg;
                        break;
                case 'K':
                        return check_policy(optarg);
                case 'A':
                        agent = true;
                        break;
                case 'U':
                        upstream = optarg;
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
        heap_tune();
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
        if (upstream) {
                if ((strncmp(upstream, "vchan:", 6) != 0 && strncmp(upstream, "unix:/", 6) != 0) ||
                    strlen(upstream) >= sizeof(config.agent_upstream)) {
                        fprintf(stderr, "vchand: --upstream wants vchan:<domid> or "
                                        "unix:<absolute path>\n");
                        return 2;
                }
                (void)snprintf(config.agent_upstream, sizeof(config.agent_upstream), "%s",
                               upstream); /* fits: checked above */
        }
        if (upstream && !agent) {
                fprintf(stderr, "vchand: --upstream is an option of --agent\n");
                return 2;
        }
        if (no_xen)
                config.xen = false;
        if (policy) {
                if (strlen(policy) >= sizeof(config.policy) ||
                    (policy[0] != '/' && strcmp(policy, ACCESS_OPEN) != 0)) {
                        fprintf(stderr,
                                "vchand: --policy wants an absolute directory shorter than %zu "
                                "bytes, or '" ACCESS_OPEN "'\n",
                                sizeof(config.policy));
                        return 2;
                }
                /* Fits: its length was checked above. */
                (void)snprintf(config.policy, sizeof(config.policy), "%s", policy);
        }
        config.verbose = verbose;
        r = keyring_new(&config, &keyring, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "vchand: %s\n", r == -EINVAL ? err : strerror(-r));
                return 1;
        }
        if (check) {
                print_config(&config, keyring);
                keyring_free(keyring);
                return fflush(stdout) == 0 ? 0 : 1;
        }
        log_set_verbose(verbose);
        raise_fd_limit();
        /* Before anything is touched: a second instance leaves the first one's socket and, for
         * a broker, the guests' xenstore keys alone. */
        if (rundir_lock(config.socket_path, &lock_fd, err, sizeof(err)) < 0) {
                log_error("%s", err);
                keyring_free(keyring);
                return 1;
        }
        if (agent) {
                keyring_free(keyring); /* the broker's: the agent proves nothing itself */
                return run_agent(&config);
        }
        r = broker_init(&broker, &config);
        broker.bus.keyring = keyring;
        if (r < 0) {
                log_error("cannot start: %s", strerror(-r));
                broker_deinit(&broker);
                keyring_free(keyring);
                return 1;
        }
        log_auth(keyring);
        /* What Reload reads again: the file read above, or the default one if it appears. */
        broker.bus.config_path = config_path ? config_path : "/etc/vchand/vchand.conf";
#ifdef HAVE_LIBSYSTEMD
        /* Tells systemd (vchand.service, Type=notify) that the socket listens; without
         * $NOTIFY_SOCKET this does nothing. */
        (void)sd_notify(0, "READY=1");
#endif
        r = broker_run(&broker);
        broker_deinit(&broker);
        keyring_free(keyring);
        if (r < 0) {
                log_error("stopped on error: %s", strerror(-r));
                return 1;
        }
        return 0;
}
