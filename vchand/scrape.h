/* SPDX-License-Identifier: MIT */
/*
 * scrape: the optional metrics listener, for Prometheus (or curl) to scrape. vchand opens it only
 * when vchand.conf names one (metrics_listen: a UNIX socket, or a loopback TCP port; never
 * another address), and answers each connection's HTTP request with the text exposition of
 * admin_metrics_text() (the same as vbusctl stats --prom), then closes it. Whoever can connect
 * can read the metrics: the socket's permissions (0660, the broker's user and group) or the
 * host's own loopback decide, as for node_exporter.
 *
 * It runs on the broker's event loop and never blocks it: connections are non-blocking, at most
 * LIMIT_SCRAPE_CONNS at once (more wait in the kernel's backlog), a request is at most
 * LIMIT_SCRAPE_REQUEST bytes, and a connection that has not finished within
 * LIMIT_SCRAPE_TIMEOUT_MS is closed. Only GET (and HEAD) of any path is answered; anything else
 * gets 405, a request too large 431.
 */
#ifndef VCHAND_SCRAPE_H
#define VCHAND_SCRAPE_H

#include <stdbool.h>
#include <stdint.h>

#include "bus.h"

typedef struct Scrape Scrape;

/**
 * scrape_new() - listen on @l and register the listening socket with @epoll_fd.
 * @b: borrowed for the listener's life (the metrics are its counters).
 * Return: 0 and the listener in *ret; -errno (the broker must not start: it was configured).
 */
int scrape_new(Bus *b, const ConfigListen *l, int epoll_fd, Scrape **ret);

/* Closes the listener and every connection (and the UNIX socket's file). Accepts NULL. */
Scrape *scrape_free(Scrape *s);

/* True if @tag (an epoll_event's data.ptr) is the listener's or one of its connections'. */
bool scrape_owns(const Scrape *s, const void *tag);

/* Handles readiness of @tag (one scrape_owns() said yes to). */
void scrape_process(Scrape *s, const void *tag, uint32_t events);

/* Closes connections past LIMIT_SCRAPE_TIMEOUT_MS. */
void scrape_tick(Scrape *s, uint64_t now_us);

#endif /* VCHAND_SCRAPE_H */
