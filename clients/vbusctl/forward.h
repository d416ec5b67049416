/* SPDX-License-Identifier: MIT */
/*
 * forward: socket programs over the bus (vbusctl expose, forward, connect). Each connection is
 * one bidirectional streaming call to "forward.NAME/Connect", carried with the public libvbus
 * API only; docs/forward.md describes the behaviour and the framing.
 */
#ifndef VBUSCTL_FORWARD_H
#define VBUSCTL_FORWARD_H

/* The service of endpoint NAME is FORWARD_SERVICE_PREFIX NAME; its one method FORWARD_METHOD. */
#define FORWARD_SERVICE_PREFIX "forward."
#define FORWARD_METHOD         "Connect"

/* Bytes read from a socket into one stream message: big enough for full-speed transfers, small
 * enough that 256 connections (the broker's calls per link) hold 16 MiB of read buffers. */
#define FORWARD_CHUNK ((size_t)64 * 1024)

/* The usage text of the three commands, for vbusctl --help (a literal, to concatenate). */
#define FORWARD_USAGE                                                                              \
        "  expose NAME --to ADDR     let other domains connect to ADDR (tcp:HOST:PORT or\n"        \
        "                            unix:/PATH) as endpoint NAME (service forward.NAME)\n"        \
        "      --exec CMD            instead of --to: run CMD (sh -c) per connection, its\n"       \
        "                            stdin/stdout the connection, VBUS_CALLER set\n"               \
        "                            (more NAME --to ADDR pairs: more endpoints)\n"                \
        "  forward --listen ADDR NAME\n"                                                           \
        "                            accept connections on ADDR (port 0: any; the address\n"       \
        "                            is printed), carry each to endpoint NAME (more\n"             \
        "                            --listen ADDR NAME pairs: more endpoints)\n"                  \
        "  connect NAME              connect stdin/stdout to endpoint NAME (like nc)\n"            \
        "      -v, --verbose         expose/forward: a line per connection on stderr, with\n"      \
        "                            the caller's identity at the exposing end\n"

/**
 * forward_main() - run vbusctl's `expose`, `forward` or `connect` if @argv names one of them.
 * @argc, @argv: main()'s, borrowed.
 * Return: -1 if the command is another one (vbusctl handles it), else the exit status: 0
 * success, 1 failure, 2 usage error.
 */
int forward_main(int argc, char **argv);

#endif /* VBUSCTL_FORWARD_H */
