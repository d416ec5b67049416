/* SPDX-License-Identifier: MIT */
/*
 * admin: the admin methods of vbus.v1.Broker (proto/vbus/v1/broker.proto, "Administration";
 * docs/protocol.md 6.3): Peers, Topics, Subs, Stats, Kick, Reload and Metrics, each answering
 * one request with one reply built from the broker's tables and counters, and who may call them.
 * introspect.c carries the calls (request, reply, deadline) and asks admin_allowed() first
 * (broker.c's table of methods, Bus.intro_methods, pairs them);
 * Monitor, which streams, is introspect.c's with monitor.c's taps.
 *
 * admin sits above the features: it only reads what each keeps (pubsub.c's publishers and
 * subscriptions, service.c's services, the peers' counters), through their listing functions,
 * and acts only through peer_kick() and reload_all().
 *
 * Replies are snapshots, bounded by LIMIT_ADMIN_REPLY: a listing cut there says `truncated` and
 * still counts everything in `total`.
 */
#ifndef VCHAND_ADMIN_H
#define VCHAND_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "introspect.h"
#include "peer.h"

/*
 * admin_allowed() - may @p call the admin methods? With a policy in force, access.c decided at
 * OPEN (action `admin`, resource the method's class: policy_admin_class()), so yes. Without one
 * (--policy open, for development) the admin methods still stay with the host's administrators:
 * a local process (UNIX socket, the broker's own domain) running as root or as the broker's own
 * user, or any session of domain 0.
 */
bool admin_allowed(const Peer *p);

/* The answers (IntroAnswerFn, introspect.h) of the admin methods, for broker.c's table. */
int admin_answer_peers(Peer *p, const uint8_t *req, size_t n_req, uint8_t **ret, size_t *ret_n,
                       char *why);
int admin_answer_topics(Peer *p, const uint8_t *req, size_t n_req, uint8_t **ret, size_t *ret_n,
                        char *why);
int admin_answer_subs(Peer *p, const uint8_t *req, size_t n_req, uint8_t **ret, size_t *ret_n,
                      char *why);
int admin_answer_stats(Peer *p, const uint8_t *req, size_t n_req, uint8_t **ret, size_t *ret_n,
                       char *why);
int admin_answer_kick(Peer *p, const uint8_t *req, size_t n_req, uint8_t **ret, size_t *ret_n,
                      char *why);
int admin_answer_reload(Peer *p, const uint8_t *req, size_t n_req, uint8_t **ret, size_t *ret_n,
                        char *why);
int admin_answer_metrics(Peer *p, const uint8_t *req, size_t n_req, uint8_t **ret, size_t *ret_n,
                         char *why);

/*
 * admin_metrics_text() - the Prometheus text exposition (format 0.0.4) of the broker's counters,
 * gauges and call latency histograms: what Metrics answers and the metrics listener serves.
 * Return: 0 and a malloc'ed NUL-terminated text in *ret (its length in *ret_n); -ENOMEM.
 */
int admin_metrics_text(Bus *b, char **ret, size_t *ret_n);

#endif /* VCHAND_ADMIN_H */
