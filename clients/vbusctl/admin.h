/* SPDX-License-Identifier: MIT */
/*
 * admin: vbusctl's admin commands (peers, topics, subs, stats, kick, reload, monitor), calls to
 * the admin methods of the broker's own service vbus.v1.Broker (proto/vbus/v1/broker.proto,
 * docs/protocol.md 6.3), each printed as text or, with --json, as JSON. They need the broker's
 * admin right: a caller without it is told PERMISSION_DENIED.
 */
#ifndef VBUSCTL_ADMIN_H
#define VBUSCTL_ADMIN_H

/* The usage text of the admin commands, for vbusctl --help (a literal, to concatenate). */
#define ADMIN_USAGE                                                                                \
        "Admin commands (the broker's admin right: local root, or domain 0):\n"                    \
        "  peers                     the client sessions: id, identity, transport, when\n"         \
        "                            connected, streams, frames and bytes each way,\n"             \
        "                            published, dropped, violations, denials, ring sizes\n"        \
        "  topics                    topics published to and patterns subscribed to:\n"            \
        "                            streams, messages, bytes, delivered, dropped, and the\n"      \
        "                            average rate since the oldest stream opened\n"                \
        "  subs                      every subscription: pattern, subscriber, policy,\n"           \
        "                            queue, delivered, dropped\n"                                  \
        "  stats                     the broker's counters and resources\n"                        \
        "      --watch               refresh every --interval MS (default 1000), with rates,\n"    \
        "                            like top; --count N stops after N refreshes\n"                \
        "      --prom                the Prometheus text exposition instead (also with\n"          \
        "                            per-peer counters and call latency histograms)\n"             \
        "  kick PEER                 disconnect session PEER (an id from `peers`), or every\n"     \
        "                            session of a domain (domN)\n"                                 \
        "      --reason TEXT         told to the peer and logged (at most 200 bytes)\n"            \
        "  reload                    re-read the broker's configuration file\n"                    \
        "  monitor [PATTERN]         print the messages published on topics matching\n"            \
        "                            PATTERN (default '>') and the calls to services\n"            \
        "                            matching it, as they happen: sender, size, status,\n"         \
        "                            latency. Never slows the traffic: events it cannot\n"         \
        "                            keep up with are dropped, and counted\n"                      \
        "      --count N             exit after N events\n"                                        \
        "  These take --json (one JSON object; monitor: one per line), --url and --timeout.\n"

/**
 * admin_main() - run an admin command if @argv names one.
 * @argc, @argv: main()'s, borrowed.
 * Return: -1 if the command is another one (vbusctl handles it), else the exit status: 0
 * success, 1 failure (the broker refused, or could not be reached), 2 usage error.
 */
int admin_main(int argc, char **argv);

#endif /* VBUSCTL_ADMIN_H */
