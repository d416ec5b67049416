/* SPDX-License-Identifier: MIT */
/*
 * agent: the guest agent role of vchand (`vchand --agent`, docs/man/vchand.8.md). In a guest it
 * holds the domain's one vchan to the broker and serves the guest's local processes on the
 * socket libvbus already prefers (/run/vbus/broker.sock), so applications need no change. Each
 * local process is one session of the link (protocol.md section 7): the agent relays its frames
 * with the session id in the header, and the broker keeps that session's streams, windows and
 * quotas as for any client. The agent keeps no stream state: flow control stays end to end
 * between the process and the broker.
 *
 * Why a role of vchand and not a program of its own: it is the same kind of daemon (one epoll
 * loop, the wire layer, the log, the single-instance lock of its run directory, the same
 * packaging and unit file shape), and one binary means one thing to install in a guest.
 *
 * Who pays (the agent trusts neither side more than it must):
 *  - a local process that breaks framing, or lets more than client_queue_bytes pile up toward it
 *    (it does not read its socket beyond the windows it granted), is cut off alone: its session
 *    ends (GOAWAY for it upstream) and its socket is closed;
 *  - the agent always reads the vchan, whatever its processes do, so one frozen process never
 *    holds the ring, and so never holds back the other sessions of the domain;
 *  - a process waiting for room in the vchan is not read meanwhile (its bytes stay in its own
 *    socket), and the processes are served in turn, a bounded number of frames each.
 *
 * Faults: when the link to the broker is lost (the broker stopped or restarted) every local
 * connection is closed, so each process sees its link drop, reconnects (libvbus does, with
 * back-off) and reports its gaps as after any reconnect; the agent reconnects upstream with
 * back-off and serves new connections once the broker has answered. A process that goes away
 * ends only its own session.
 */
#ifndef VCHAND_AGENT_H
#define VCHAND_AGENT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct AgentConfig {
        char socket_path[108]; /* where local processes connect */
        char upstream[120];    /* "vchan:<broker domid>" (a guest) or "unix:<path>" (tests) */
        uint32_t max_clients;  /* local connections at once */
        uint64_t client_queue; /* bytes waiting toward one local process */
        /* socket_path's owner and group ("": root, and the default group) and mode. */
        char socket_owner[33];
        char socket_group[33];
        bool socket_group_set; /* the group is the administrator's choice */
        uint32_t socket_mode;
} AgentConfig;

/* Fills @c with the defaults (vchand-limits.h). */
void agent_config_defaults(AgentConfig *c);

/* Runs the agent until SIGTERM/SIGINT. Return: 0, or -errno when it could not start. */
int agent_run(const AgentConfig *c);

#endif /* VCHAND_AGENT_H */
