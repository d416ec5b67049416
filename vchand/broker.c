/* SPDX-License-Identifier: MIT */
/*
 * broker: the event loop and the peers' lifecycle (see broker.h).
 *
 * Each iteration: wait on epoll (signals, the listening socket, each peer's fd, the xenstore
 * watch fd), handle every ready source, re-run peers that stopped at their per-wakeup frame
 * budget, then free the peers that died. A housekeeping tick drops peers that never said HELLO
 * and re-polls every vchan, because a hostile peer can withhold the events we wait for.
 */
#include "broker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <vbus/vbus.h>

#include "discover.h"
#include "log.h"
#include "peer.h"
#include "pubsub.h"
#include "rpc.h"
#include "vchand-limits.h"

/* epoll tags: a peer's pointer, or one of these small constants. */
enum { TAG_SIGNAL = 1, TAG_LISTEN = 2, TAG_DISCOVER = 3 };

uint64_t broker_now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void broker_config_defaults(BrokerConfig *c)
{
        *c = (BrokerConfig){
                .xen = true,
                .max_frame = LIMIT_MAX_FRAME,
                .max_message = LIMIT_MAX_MESSAGE,
                .max_streams = LIMIT_MAX_STREAMS,
                .max_subscriptions = LIMIT_MAX_SUBSCRIPTIONS,
                .publish_window = LIMIT_PUBLISH_WINDOW,
                .queue_messages = LIMIT_QUEUE_MESSAGES,
                .queue_bytes = LIMIT_QUEUE_BYTES,
                .peer_queued_bytes = LIMIT_PEER_QUEUED_BYTES,
                .peer_publish_bytes = LIMIT_PEER_PUBLISH_BYTES,
                .hello_timeout_ms = LIMIT_HELLO_TIMEOUT_MS,
                .max_peers = LIMIT_MAX_PEERS,
                .max_calls = LIMIT_MAX_CALLS,
                .max_service_calls = LIMIT_MAX_SERVICE_CALLS,
        };
        snprintf(c->socket_path, sizeof(c->socket_path), "%s", "/run/vbus/broker.sock");
}

static int epoll_set(Broker *b, int op, int fd, uint32_t events, void *tag)
{
        struct epoll_event ev = {.events = events, .data.ptr = tag};

        return epoll_ctl(b->epoll_fd, op, fd, &ev) < 0 ? -errno : 0;
}

static int broker_listen(Broker *b)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        char dir[sizeof(sa.sun_path)];
        char *slash;
        int fd;

        if (strlen(b->config.socket_path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", b->config.socket_path);
        snprintf(dir, sizeof(dir), "%s", b->config.socket_path);
        slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = '\0';
                (void)mkdir(dir, 0755);
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        (void)unlink(sa.sun_path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        /* Access is governed by the socket's mode and directory; policy comes later. */
        (void)chmod(sa.sun_path, 0666);
        b->listen_fd = fd;
        return epoll_set(b, EPOLL_CTL_ADD, fd, EPOLLIN, (void *)(uintptr_t)TAG_LISTEN);
}

int broker_init(Broker *b, const BrokerConfig *config)
{
        sigset_t mask;
        int r;

        *b = (Broker){.config = *config, .epoll_fd = -1, .listen_fd = -1, .signal_fd = -1};
        list_init(&b->peers);
        list_init(&b->dead);
        list_init(&b->dirty);
        list_init(&b->services);
        list_init(&b->calls);
        list_init(&b->intro_calls);
        r = router_init(&b->router);
        if (r < 0)
                return r;
        b->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (b->epoll_fd < 0)
                return -errno;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGPIPE);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        b->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (b->signal_fd < 0)
                return -errno;
        r = epoll_set(b, EPOLL_CTL_ADD, b->signal_fd, EPOLLIN, (void *)(uintptr_t)TAG_SIGNAL);
        if (r < 0)
                return r;
        r = broker_listen(b);
        if (r < 0) {
                log_error("cannot listen on %s: %s", b->config.socket_path, strerror(-r));
                return r;
        }
        if (b->config.xen) {
                r = discover_new(b, &b->discover);
                if (r < 0) {
                        log_error("cannot watch xenstore for guests: %s (use --no-xen to run "
                                  "without Xen)",
                                  strerror(-r));
                        return r;
                }
                r = epoll_set(b, EPOLL_CTL_ADD, discover_get_fd(b->discover), EPOLLIN,
                              (void *)(uintptr_t)TAG_DISCOVER);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void broker_free_dead(Broker *b)
{
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &b->dead)
        {
                Peer *p = list_entry(pos, Peer, dead_link);

                list_unlink(&p->dead_link);
                peer_free(p);
        }
}

void broker_deinit(Broker *b)
{
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &b->peers)
                broker_kill_peer(b, list_entry(pos, Peer, link), "broker stopping");
        broker_free_dead(b);
        b->discover = discover_free(b->discover);
        router_deinit(&b->router);
        if (b->listen_fd >= 0) {
                close(b->listen_fd);
                (void)unlink(b->config.socket_path);
        }
        if (b->signal_fd >= 0)
                close(b->signal_fd);
        if (b->epoll_fd >= 0)
                close(b->epoll_fd);
        b->listen_fd = b->signal_fd = b->epoll_fd = -1;
}

static void peer_update_events(Broker *b, Peer *p)
{
        uint32_t events = EPOLLIN;

        if (vbus__transport_get_events(&p->ep.link.transport) & EPOLLOUT)
                events |= EPOLLOUT;
        if (p->registered && events == p->events)
                return;
        if (epoll_set(b, p->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
                      vbus__transport_get_fd(&p->ep.link.transport), events, p) == 0) {
                p->registered = true;
                p->events = events;
        }
}

int broker_add_peer(Broker *b, VbusTransport *t, const Identity *ident, uint32_t vchan_domid)
{
        Peer *p;

        if (b->n_peers >= b->config.max_peers) {
                vbus__transport_deinit(t);
                return -EMFILE;
        }
        p = peer_new(b, t, ident, vchan_domid);
        if (!p) {
                vbus__transport_deinit(t);
                return -ENOMEM;
        }
        list_add_tail(&b->peers, &p->link);
        b->n_peers++;
        peer_update_events(b, p);
        if (!p->registered) {
                broker_kill_peer(b, p, "cannot poll its fd");
                return -EIO;
        }
        log_info("peer %s: connected", p->label);
        /* Bytes may already be waiting (a vchan guest that spoke first). */
        peer_process(p);
        if (!p->dead)
                peer_update_events(b, p);
        return 0;
}

void broker_mark_dirty(Broker *b, Peer *p)
{
        if (!p->dead && !list_is_linked(&p->dirty_link))
                list_add_tail(&b->dirty, &p->dirty_link);
}

static void broker_flush_dirty(Broker *b)
{
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &b->dirty)
        {
                Peer *p = list_entry(pos, Peer, dirty_link);
                int r;

                list_unlink(&p->dirty_link);
                pubsub_pump(p);
                if (!p->dead)
                        rpc_pump(p);
                if (p->dead)
                        continue;
                list_unlink(&p->dirty_link); /* the pump may have marked it again */
                r = vbus__endpoint_flush(&p->ep);
                /* -EPIPE: the peer closed; its last frames are still read before it goes. */
                if (r < 0 && r != -EAGAIN && r != -EPIPE) {
                        broker_kill_peer(b, p, strerror(-r));
                        continue;
                }
                peer_update_events(b, p);
        }
}

void broker_kill_peer(Broker *b, Peer *p, const char *why)
{
        if (p->dead)
                return;
        p->dead = true;
        list_unlink(&p->dirty_link);
        log_info("peer %s: disconnected: %s", p->label, why);
        if (p->registered)
                (void)epoll_ctl(b->epoll_fd, EPOLL_CTL_DEL,
                                vbus__transport_get_fd(&p->ep.link.transport), NULL);
        p->registered = false;
        list_unlink(&p->link);
        b->n_peers--;
        list_add_tail(&b->dead, &p->dead_link);
        if (b->discover && p->vchan_domid != UINT32_MAX)
                discover_peer_gone(b->discover, p->vchan_domid);
}

static void broker_accept(Broker *b)
{
        for (;;) {
                struct ucred cred;
                socklen_t n = sizeof(cred);
                Identity ident = {.local = true, .domid = b->own_domid};
                VbusTransport t;
                int fd = accept4(b->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

                if (fd < 0) {
                        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                log_error("accept: %s", strerror(errno));
                        return;
                }
                if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &n) < 0) {
                        close(fd);
                        continue;
                }
                ident.uid = cred.uid;
                ident.pid = (uint32_t)cred.pid;
                if (vbus__transport_init_unix(&t, fd) < 0) {
                        close(fd);
                        continue;
                }
                (void)broker_add_peer(b, &t, &ident, UINT32_MAX);
        }
}

/* Orderly shutdown: GOAWAY to everyone, then stop when they are gone or after a grace period. */
static void broker_begin_stop(Broker *b)
{
        List *pos, *tmp;

        if (b->stopping)
                return;
        b->stopping = true;
        b->stop_deadline_us = broker_now_us() + 2000000u;
        log_info("stopping: sending GOAWAY to %u peers", b->n_peers);
        list_for_each_safe(pos, tmp, &b->peers)
        {
                Peer *p = list_entry(pos, Peer, link);
                Vbus__V1__GoAway g = VBUS__V1__GO_AWAY__INIT;

                if (!vbus__session_is_ready(&p->ep.session)) {
                        broker_kill_peer(b, p, "broker stopping");
                        continue;
                }
                g.status = VBUS__V1__STATUS__STATUS_SHUTTING_DOWN;
                g.message = (char *)"the broker is stopping";
                g.last_stream_id = p->ep.session.last_remote_id;
                (void)peer_send_control(p, VBUS_FRAME_GOAWAY, 0, 0, &g.base);
                if (!p->dead)
                        (void)vbus__endpoint_flush(&p->ep);
        }
}

static void broker_signal(Broker *b)
{
        struct signalfd_siginfo si;

        while (read(b->signal_fd, &si, sizeof(si)) == sizeof(si)) {
                if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
                        broker_begin_stop(b);
        }
}

static void broker_tick(Broker *b)
{
        uint64_t now = broker_now_us();
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &b->peers)
        {
                Peer *p = list_entry(pos, Peer, link);

                if (!vbus__session_is_ready(&p->ep.session) &&
                    now - p->created_us > (uint64_t)b->config.hello_timeout_ms * 1000u) {
                        broker_kill_peer(b, p, "no HELLO in time");
                        continue;
                }
                /* Backstop for lost wakeups on shared rings. */
                if (p->ep.link.transport.kind == VBUS_TRANSPORT_VCHAN) {
                        peer_process(p);
                        if (!p->dead)
                                peer_update_events(b, p);
                }
        }
        if (b->discover)
                discover_tick(b->discover);
}

int broker_run(Broker *b)
{
        uint64_t next_tick = broker_now_us() + LIMIT_TICK_MS * 1000u;

        log_info("vbus broker %s listening on %s%s", vbus_version(), b->config.socket_path,
                 b->discover ? ", discovering guests through xenstore" : "");
        for (;;) {
                struct epoll_event events[64];
                uint64_t now = broker_now_us(), wake;
                bool more = false;
                List *pos, *tmp;
                int timeout, n;

                if (b->stopping && (list_is_empty(&b->peers) || now >= b->stop_deadline_us))
                        break;
                list_for_each_safe(pos, tmp, &b->peers)
                {
                        more |= list_entry(pos, Peer, link)->more;
                }
                wake = rpc_expire(b, now);
                broker_flush_dirty(b);
                if (next_tick < wake)
                        wake = next_tick;
                timeout = more ? 0 : (int)((wake > now ? wake - now + 999 : 0) / 1000u);
                n = epoll_wait(b->epoll_fd, events, 64, timeout);
                if (n < 0 && errno != EINTR)
                        return -errno;
                for (int i = 0; i < n; i++) {
                        uintptr_t tag = (uintptr_t)events[i].data.ptr;

                        if (tag == TAG_SIGNAL) {
                                broker_signal(b);
                        } else if (tag == TAG_LISTEN) {
                                if (!b->stopping)
                                        broker_accept(b);
                        } else if (tag == TAG_DISCOVER) {
                                discover_process(b->discover);
                        } else {
                                Peer *p = events[i].data.ptr;

                                if (p->dead)
                                        continue;
                                p->more = false;
                                peer_process(p);
                                if (!p->dead)
                                        peer_update_events(b, p);
                        }
                }
                list_for_each_safe(pos, tmp, &b->peers)
                {
                        Peer *p = list_entry(pos, Peer, link);

                        if (!p->more)
                                continue;
                        p->more = false;
                        peer_process(p);
                        if (!p->dead)
                                peer_update_events(b, p);
                }
                if (broker_now_us() >= next_tick) {
                        broker_tick(b);
                        next_tick = broker_now_us() + LIMIT_TICK_MS * 1000u;
                }
                broker_flush_dirty(b);
                broker_free_dead(b);
        }
        log_info("stopped: %llu published, %llu delivered, %llu dropped, %llu violations, "
                 "%llu calls (%llu failed)",
                 (unsigned long long)b->stats.n_published, (unsigned long long)b->stats.n_delivered,
                 (unsigned long long)b->stats.n_dropped, (unsigned long long)b->stats.n_violations,
                 (unsigned long long)b->stats.n_calls, (unsigned long long)b->stats.n_calls_failed);
        return 0;
}
