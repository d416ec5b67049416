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
#include <inttypes.h>
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

#include "access.h"
#include "admin.h"
#include "budget.h"
#include "discover.h"
#include "heap.h"
#include "introspect.h"
#include "log.h"
#include "metrics.h"
#include "peer.h"
#include "presence.h"
#include "pubsub.h"
#include "reload.h"
#include "retain.h"
#include "rpc.h"
#include "rundir.h"
#include "scrape.h"
#include "service.h"
#include "vchand-limits.h"

/* epoll tags: a peer's pointer, or the address of one of these sentinels (never a peer's). */
static char tag_signal, tag_listen, tag_discover, tag_events;
#define TAG_SIGNAL   ((void *)&tag_signal)
#define TAG_LISTEN   ((void *)&tag_listen)
#define TAG_DISCOVER ((void *)&tag_discover)
#define TAG_EVENTS   ((void *)&tag_events)

static int epoll_set(Broker *b, int op, int fd, uint32_t events, void *tag)
{
        struct epoll_event ev = {.events = events, .data.ptr = tag};

        return epoll_ctl(b->epoll_fd, op, fd, &ev) < 0 ? -errno : 0;
}

static int broker_listen(Broker *b)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        char dir[sizeof(sa.sun_path)], note[256];
        char *slash;
        int fd, r;

        if (strlen(b->bus.config.socket_path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        /* Both fit: the length was checked above. */
        (void)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", b->bus.config.socket_path);
        (void)snprintf(dir, sizeof(dir), "%s", b->bus.config.socket_path);
        slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = '\0';
                (void)mkdir(dir, 0755);
        }
        /* Who may connect: the socket's owner, group and mode (vchand.conf); then policy. */
        r = rundir_listen(sa.sun_path, b->bus.config.socket_owner, b->bus.config.socket_group,
                          !b->bus.config.socket_group_set, b->bus.config.socket_mode, &fd, note,
                          sizeof(note));
        if (r < 0) {
                log_error("%s", note);
                return r;
        }
        if (note[0])
                log_info("%s", note);
        b->listen_fd = fd;
        return epoll_set(b, EPOLL_CTL_ADD, fd, EPOLLIN, TAG_LISTEN);
}

static int broker_connect_guest(void *userdata, VbusTransport *t, const Identity *ident,
                                uint32_t domid)
{
        return broker_add_peer(userdata, t, ident, domid);
}

static void broker_guest_released(void *userdata, uint32_t domid)
{
        Broker *b = userdata;
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &b->bus.peers)
        {
                Peer *p = list_entry(pos, Peer, link);

                if (p->vchan_domid == domid)
                        peer_kill(p, "domain released");
        }
        /* A domain that comes later with this domid is another domain. */
        retain_domain_gone(&b->bus, domid);
}

/*
 * Whether guest @domid may have rings of @read_size and @write_size bytes (budget_admit_rings()).
 * Return: the pages to charge, or -E2BIG or -ENOSPC (logged, rate-limited with the guest's other
 * lines: it may retry in a loop).
 */
static int broker_admit_rings(Broker *b, uint32_t domid, size_t read_size, size_t write_size)
{
        int pages = budget_admit_rings(&b->bus, read_size, write_size);

        if (pages < 0 && peer_log_allowed(&b->bus, ratelimit_key_domain(domid), "dom"))
                log_info("dom%u: refused: %s", domid,
                         pages == -E2BIG ? "rings larger than max_ring_order"
                                         : "rings over its share of max_grant_mappings");
        return pages;
}

static int broker_admit_guest(void *userdata, uint32_t domid, size_t read_size, size_t write_size)
{
        int r = broker_admit_rings(userdata, domid, read_size, write_size);

        return r < 0 ? r : 0;
}

static const DiscoverOps broker_discover_ops = {
        .admit = broker_admit_guest,
        .connect = broker_connect_guest,
        .released = broker_guest_released,
};

/* The methods of vbus.v1.Broker: ListServices for anyone (policy permitting), the rest admin's. */
static const IntroMethod broker_methods[] = {
        {"ListServices", NULL, introspect_answer_list_services},
        {"Describe", NULL, introspect_answer_describe},
        {"Peers", admin_allowed, admin_answer_peers},
        {"Topics", admin_allowed, admin_answer_topics},
        {"Subs", admin_allowed, admin_answer_subs},
        {"Stats", admin_allowed, admin_answer_stats},
        {"Kick", admin_allowed, admin_answer_kick},
        {"Reload", admin_allowed, admin_answer_reload},
        {"Metrics", admin_allowed, admin_answer_metrics},
        {"Monitor", admin_allowed, NULL},
};

/* The shared state, and which module takes an OPEN of each kind. */
static int broker_bus_init(Bus *bus, const BrokerConfig *config)
{
        int r;

        *bus = (Bus){.config = *config};
        list_init(&bus->peers);
        list_init(&bus->dead);
        list_init(&bus->dirty);
        list_init(&bus->intro_calls);
        list_init(&bus->monitors);
        bus->intro_methods = broker_methods;
        bus->n_intro_methods = sizeof(broker_methods) / sizeof(broker_methods[0]);
        bus->start_us = bus_now_us();
        bus->publish_local = pubsub_publish_local;
        r = router_init(&bus->router);
        if (r < 0)
                return r;
        r = service_table_new(bus);
        if (r < 0)
                return r;
        r = rpc_new(bus);
        if (r < 0)
                return r;
        r = retain_table_new(bus);
        if (r < 0)
                return r;
        r = metrics_new(bus);
        if (r < 0)
                return r;
        r = presence_new(bus);
        if (r < 0)
                return r;
        /* The broker serves vbus.v1.Broker itself, and nobody else serves in its namespace. */
        service_reserve(bus, INTROSPECT_NAMESPACE);
        rpc_set_local(bus, INTROSPECT_SERVICE, introspect_open_call);
        bus->open[VBUS__V1__STREAM_KIND__STREAM_KIND_PUBLISH] = pubsub_open_publish;
        bus->open[VBUS__V1__STREAM_KIND__STREAM_KIND_SUBSCRIBE] = pubsub_open_subscribe;
        bus->open[VBUS__V1__STREAM_KIND__STREAM_KIND_CALL] = rpc_open_call;
        bus->open[VBUS__V1__STREAM_KIND__STREAM_KIND_SERVE] = service_open_serve;
        return 0;
}

/* Puts the policy in force, or says loudly that there is none. */
static int broker_policy_init(Bus *bus)
{
        char err[512];
        int r = access_init(bus, err, sizeof(err));

        if (r < 0) {
                log_error("policy: %s", err);
                return r;
        }
        if (!bus->policy) {
                log_error("WARNING: running with --policy open: EVERY peer may publish, "
                          "subscribe, serve and call ANYTHING. For development only.");
                return 0;
        }
        log_info("policy: %zu rules from %s%s", policy_get_n_rules(bus->policy), bus->config.policy,
                 policy_get_n_rules(bus->policy) ? "" : " (none: everything is denied)");
        return 0;
}

int broker_init(Broker *b, const BrokerConfig *config)
{
        sigset_t mask;
        int r;

        *b = (Broker){.epoll_fd = -1, .listen_fd = -1, .signal_fd = -1, .events_fd = -1};
        r = broker_bus_init(&b->bus, config);
        if (r < 0)
                return r;
        r = broker_policy_init(&b->bus);
        if (r < 0)
                return r;
        b->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (b->epoll_fd < 0)
                return -errno;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGPIPE);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        b->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (b->signal_fd < 0)
                return -errno;
        r = epoll_set(b, EPOLL_CTL_ADD, b->signal_fd, EPOLLIN, TAG_SIGNAL);
        if (r < 0)
                return r;
        r = broker_listen(b);
        if (r < 0) {
                log_error("cannot listen on %s: %s", b->bus.config.socket_path, strerror(-r));
                return r;
        }
        if (b->bus.config.metrics_listen.kind != CONFIG_LISTEN_NONE) {
                char where[128];

                config_listen_format(&b->bus.config.metrics_listen, where, sizeof(where));
                r = scrape_new(&b->bus, &b->bus.config.metrics_listen, b->epoll_fd, &b->scrape);
                if (r < 0) {
                        log_error("cannot listen for metrics on %s: %s", where, strerror(-r));
                        return r;
                }
                log_info("metrics on %s", where);
        }
        if (b->bus.config.xen) {
                r = discover_new(&broker_discover_ops, b, &b->discover);
                if (r < 0) {
                        log_error("cannot watch xenstore for guests: %s (use --no-xen to run "
                                  "without Xen)",
                                  strerror(-r));
                        return r;
                }
                b->bus.own_domid = discover_get_own_domid(b->discover);
                r = epoll_set(b, EPOLL_CTL_ADD, discover_get_fd(b->discover), EPOLLIN,
                              TAG_DISCOVER);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void broker_serve_peer(Broker *b, Peer *p);

/* Whether @p's events come on the guests' shared event-channel handle (discover.h). */
static bool broker_shares_events(const Peer *p)
{
        const VbusTransport *t = &p->ep.link.transport;

        return t->kind == VBUS_TRANSPORT_VCHAN && vbus__vchan_has_shared_events(t->vchan);
}

/*
 * Registers @p (a guest on the shared event-channel handle) under its port, and the handle's fd
 * in the epoll set the first time. Return: 0, -ENOMEM, -ERANGE (a port past
 * LIMIT_EVENT_PORTS), or epoll's -errno.
 */
static int broker_watch_port(Broker *b, Peer *p)
{
        uint32_t port = vbus__vchan_get_port(p->ep.link.transport.vchan);

        if (b->events_fd < 0 && b->discover) {
                int fd = discover_get_events_fd(b->discover);
                int r = fd >= 0 ? epoll_set(b, EPOLL_CTL_ADD, fd, EPOLLIN, TAG_EVENTS) : -EBADF;

                if (r < 0)
                        return r;
                b->events_fd = fd;
        }
        if (port >= LIMIT_EVENT_PORTS)
                return -ERANGE;
        if (port >= b->n_by_port) {
                uint32_t n = b->n_by_port ? b->n_by_port : 1024;
                Peer **a;

                while (n <= port)
                        n *= 2;
                a = realloc(b->by_port, n * sizeof(Peer *));
                if (!a)
                        return -ENOMEM;
                memset(a + b->n_by_port, 0, (n - b->n_by_port) * sizeof(Peer *));
                b->by_port = a;
                b->n_by_port = n;
        }
        b->by_port[port] = p;
        return 0;
}

static void broker_unwatch_port(Broker *b, Peer *p)
{
        uint32_t port = vbus__vchan_get_port(p->ep.link.transport.vchan);

        if (port < b->n_by_port && b->by_port[port] == p)
                b->by_port[port] = NULL;
}

/*
 * The guests' events: each names a port, whose peer is served (its port unmasked first). At
 * most LIMIT_EVENTS_PER_WAKEUP at a time, as epoll's batch: the fd stays readable for the rest.
 */
static void broker_take_events(Broker *b)
{
        uint32_t port;

        for (int i = 0; i < LIMIT_EVENTS_PER_WAKEUP && b->discover &&
                        discover_next_event(b->discover, &port) == 1;
             i++) {
                Peer *p = port < b->n_by_port ? b->by_port[port] : NULL;

                if (!p || !peer_is_alive(p))
                        continue; /* a port closed meanwhile: the event meant nothing */
                p->more = false;
                broker_serve_peer(b, p);
        }
}

/* Frees the peers dropped in this iteration: their fds leave the epoll set, their streams close. */
static void broker_free_dead(Broker *b)
{
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &b->bus.dead)
        {
                Peer *p = list_entry(pos, Peer, dead_link);

                list_unlink(&p->dead_link);
                if (p->registered && broker_shares_events(p))
                        broker_unwatch_port(b, p);
                else if (p->registered)
                        (void)epoll_ctl(b->epoll_fd, EPOLL_CTL_DEL,
                                        vbus__transport_get_fd(&p->ep.link.transport), NULL);
                if (b->discover && p->vchan_domid != UINT32_MAX)
                        discover_peer_gone(b->discover, p->vchan_domid);
                budget_release_rings(p);
                peer_free(p);
        }
}

void broker_deinit(Broker *b)
{
        List *pos, *tmp;

        if (b->bus.peers.next) {
                list_for_each_safe(pos, tmp, &b->bus.peers)
                        peer_kill(list_entry(pos, Peer, link), "broker stopping");
                broker_free_dead(b);
        }
        b->discover = discover_free(b->discover); /* after the peers: their vchans borrow it */
        free(b->by_port);
        b->by_port = NULL;
        b->n_by_port = 0;
        b->events_fd = -1;
        b->scrape = scrape_free(b->scrape);
        rpc_free(&b->bus);
        service_table_free(&b->bus);
        retain_table_free(&b->bus);
        presence_free(&b->bus);
        metrics_free(&b->bus);
        router_deinit(&b->bus.router);
        free(b->bus.batch_spare);
        b->bus.batch_spare = NULL;
        b->bus.batch_spare_cap = 0;
        access_deinit(&b->bus);
        if (b->listen_fd >= 0) {
                close(b->listen_fd);
                (void)unlink(b->bus.config.socket_path);
        }
        if (b->signal_fd >= 0)
                close(b->signal_fd);
        if (b->epoll_fd >= 0)
                close(b->epoll_fd);
        b->listen_fd = b->signal_fd = b->epoll_fd = -1;
}

static void peer_update_events(Broker *b, Peer *p)
{
        VbusTransport *t;

        /* An agent session is polled through its link. */
        p = peer_link_owner(p);
        if (!peer_is_alive(p))
                return;
        t = &p->ep.link.transport;
        uint32_t events = EPOLLIN;

        if (broker_shares_events(p)) {
                /* No fd of its own (a vchan waits for no POLLOUT): its port is its tag. */
                if (!p->registered && broker_watch_port(b, p) == 0) {
                        p->registered = true;
                        p->events = events;
                }
                return;
        }
        if (vbus__transport_get_events(t) & EPOLLOUT)
                events |= EPOLLOUT;
        if (p->registered && events == p->events)
                return;
        if (epoll_set(b, p->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, vbus__transport_get_fd(t),
                      events, p) == 0) {
                p->registered = true;
                p->events = events;
        }
}

/* Writes what the features hold for @p (queued deliveries, relayed calls, replies), then
 * flushes its link once. */
static void broker_pump(Peer *p)
{
        List *pos, *tmp;

        if (!peer_is_alive(p))
                return;
        pubsub_pump(p);
        rpc_pump(p);
        introspect_pump(p);
        list_unlink(&p->dirty_link); /* flushed now: the pumps may have marked it again */
        /* A link's agent sessions wait for room in it too: they are pumped, as dirty peers, by
         * broker_flush_dirty() (marking touches no peer, so this walk is safe). */
        list_for_each_safe(pos, tmp, &p->sessions)
        {
                peer_mark_dirty(list_entry(pos, Peer, session_link));
        }
        peer_flush(p);
        peer_retire_check(p, bus_now_us());
}

/* Reads what arrived on @p, then writes what that made ready, and polls for what it needs. */
static void broker_serve_peer(Broker *b, Peer *p)
{
        peer_process(p);
        broker_pump(p);
        if (peer_is_alive(p))
                peer_update_events(b, p);
}

int broker_add_peer(Broker *b, VbusTransport *t, const Identity *ident, uint32_t vchan_domid)
{
        Peer *p;

        if (b->bus.stopping) {
                /* A guest found during the drain: the broker takes on nothing new. At most one
                 * line per guest per tick, for LIMIT_STOP_GRACE_MS. */
                log_info("dom%u: not connected: the broker is stopping", ident->domid);
                vbus__transport_deinit(t);
                return -ESHUTDOWN;
        }
        /* Local clients have their own share of max_peers, so they never crowd out guests. */
        int pages = 0;

        if (b->bus.n_peers >= b->bus.config.max_peers ||
            (ident->local && b->bus.n_local_peers >= b->bus.config.max_local_peers)) {
                vbus__transport_deinit(t);
                return -EMFILE;
        }
        if (t->kind == VBUS_TRANSPORT_VCHAN) {
                /* Discovery admitted them before mapping (broker_admit_guest); admitted
                 * again here, where they are charged, as guests came meanwhile. */
                pages = broker_admit_rings(b, ident->domid, vbus__vchan_get_read_size(t->vchan),
                                           vbus__vchan_get_write_size(t->vchan));
                if (pages < 0) {
                        vbus__transport_deinit(t);
                        return pages;
                }
        }
        p = peer_new(&b->bus, t, ident, vchan_domid);
        if (!p) {
                vbus__transport_deinit(t);
                return -ENOMEM;
        }
        if (pages > 0)
                budget_charge_rings(p, (uint32_t)pages);
        peer_update_events(b, p);
        if (!p->registered) {
                peer_kill(p, "cannot poll its fd");
                return -EIO;
        }
        peer_log(p, "connected");
        /* Bytes may already be waiting (a vchan guest that spoke first). */
        broker_serve_peer(b, p);
        return 0;
}

/*
 * Pumps and flushes each dirty peer once. Not a list_for_each_safe(): pumping one peer can drop
 * the next one (it leaves the list), and can mark more peers dirty (they are served too).
 */
static void broker_flush_dirty(Broker *b)
{
        while (!list_is_empty(&b->bus.dirty)) {
                Peer *p = list_entry(b->bus.dirty.next, Peer, dirty_link);

                list_unlink(&p->dirty_link);
                broker_pump(p);
                if (peer_is_alive(p))
                        peer_update_events(b, p);
        }
}

/*
 * The broker is out of fds or memory: the pending connection stays in the listen backlog and
 * the socket leaves the epoll set for LIMIT_ACCEPT_PAUSE_MS (with a level-triggered socket
 * still readable, the loop would otherwise spin on accept() and log each turn). Logged once per
 * 10 s, as the broker's own trouble; peers already connected are served meanwhile.
 */
static void broker_accept_pause(Broker *b, int error)
{
        uint64_t now = bus_now_us();

        b->accept_resume_us = now + (uint64_t)LIMIT_ACCEPT_PAUSE_MS * 1000u;
        (void)epoll_set(b, EPOLL_CTL_MOD, b->listen_fd, 0, TAG_LISTEN);
        b->n_accept_pauses++;
        if (b->accept_logged_us && now - b->accept_logged_us < UINT64_C(10000000))
                return;
        log_error("accept: %s: new local connections wait in the backlog (%" PRIu64
                  " pauses of %d ms since the last such line)",
                  strerror(error), b->n_accept_pauses, LIMIT_ACCEPT_PAUSE_MS);
        b->accept_logged_us = now;
        b->n_accept_pauses = 0;
}

/* The pause is over: the socket back in the epoll set (what waited in the backlog comes next). */
static void broker_accept_resume(Broker *b, uint64_t now)
{
        if (!b->accept_resume_us || now < b->accept_resume_us)
                return;
        b->accept_resume_us = 0;
        if (b->listen_fd >= 0)
                (void)epoll_set(b, EPOLL_CTL_MOD, b->listen_fd, EPOLLIN, TAG_LISTEN);
}

static void broker_accept(Broker *b)
{
        for (;;) {
                struct ucred cred;
                socklen_t n = sizeof(cred);
                Identity ident = {.local = true, .domid = b->bus.own_domid};
                VbusTransport t;
                int fd = accept4(b->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

                if (fd < 0) {
                        if (rundir_accept_must_rest(errno))
                                broker_accept_pause(b, errno);
                        else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                log_error("accept: %s", strerror(errno));
                        return;
                }
                if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &n) < 0) {
                        close(fd);
                        continue;
                }
                ident.uid = cred.uid;
                ident.gid = cred.gid;
                ident.pid = (uint32_t)cred.pid;
                if (vbus__transport_init_unix(&t, fd) < 0) {
                        close(fd);
                        continue;
                }
                (void)broker_add_peer(b, &t, &ident, UINT32_MAX);
        }
}

/*
 * Orderly shutdown: GOAWAY to everyone, then stop when they are gone or at the deadline
 * (LIMIT_STOP_GRACE_MS), whichever comes first. Nothing new is taken on meanwhile: the socket is
 * closed and removed at once (a new local client finds no broker instead of waiting in the
 * backlog), a guest discovered now is refused (broker_add_peer()), an OPEN is rejected
 * SHUTTING_DOWN (peer.c) and so is a publication (pubsub.c, counted). What is already queued is
 * delivered and calls in flight may finish.
 */
static void broker_begin_stop(Broker *b)
{
        List *pos, *tmp;

        if (b->bus.stopping)
                return;
        b->bus.stopping = true;
        b->stop_started_us = bus_now_us();
        b->stop_deadline_us = b->stop_started_us + (uint64_t)LIMIT_STOP_GRACE_MS * 1000u;
        if (b->listen_fd >= 0) {
                close(b->listen_fd); /* leaves the epoll set with it */
                (void)unlink(b->bus.config.socket_path);
                b->listen_fd = -1;
        }
        log_info("stopping: sending GOAWAY to %u peers", b->bus.n_peers);
        list_for_each_safe(pos, tmp, &b->bus.peers)
        {
                Peer *p = list_entry(pos, Peer, link);
                Vbus__V1__GoAway g = VBUS__V1__GO_AWAY__INIT;

                if (!vbus__session_is_ready(&p->ep.session)) {
                        peer_kill(p, "broker stopping");
                        continue;
                }
                g.status = VBUS__V1__STATUS__STATUS_SHUTTING_DOWN;
                g.message = (char *)"the broker is stopping";
                g.last_stream_id = p->ep.session.last_remote_id;
                (void)peer_send_control(p, VBUS_FRAME_GOAWAY, 0, 0, &g.base);
                peer_flush(p);
        }
}

/* SIGHUP: the keyring file and the policy again; a file with an error keeps the old one. */
static void broker_reload(Broker *b)
{
        char msg[1024] = "";
        int r = reload_keys_and_policy(&b->bus, msg, sizeof(msg));
        const char *m = msg;

        while (*m == ';' || *m == ' ')
                m++;
        if (r < 0)
                log_error("reload: %s", m);
        else
                log_info("reload: %s", m[0] ? m : "nothing to reload");
}

static void broker_signal(Broker *b)
{
        struct signalfd_siginfo si;

        while (read(b->signal_fd, &si, sizeof(si)) == sizeof(si)) {
                if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
                        broker_begin_stop(b);
                else if (si.ssi_signo == SIGHUP)
                        broker_reload(b);
        }
}

/*
 * Whether a lost wakeup could be hiding work on @p's vchan: bytes in its ring we have not read,
 * bytes in ours it has not read, or control frames waiting for room. A look at the ring
 * indices, no system call: an idle guest costs the tick nothing more (bench/scale). Deliveries
 * waiting for its CREDIT wait for a frame, which arrives in the ring and shows here; a guest
 * that read our ring and suppressed its event delays only what goes to itself.
 */
static bool broker_vchan_has_work(Peer *p)
{
        VbusTransport *t = &p->ep.link.transport;
        struct iovec iov[2];

        return vbus__link_has_backlog(&p->ep.link) || vbus__transport_has_pending(t) ||
               vbus__transport_peek(t, iov) != -EAGAIN;
}

static void broker_tick(Broker *b)
{
        uint64_t now = bus_now_us();
        List *pos, *tmp;

        list_for_each_safe(pos, tmp, &b->bus.peers)
        {
                Peer *p = list_entry(pos, Peer, link);

                if (!vbus__session_is_ready(&p->ep.session) &&
                    now - p->created_us > (uint64_t)b->bus.config.hello_timeout_ms * 1000u) {
                        peer_kill(p, "no HELLO in time");
                        continue;
                }
                peer_retire_check(p, now);
                if (!peer_is_alive(p))
                        continue;
                /* Offered auth, proved nothing, opened nothing: its identity is what it is. */
                if (!p->announced && vbus__session_is_ready(&p->ep.session) &&
                    now - p->created_us > (uint64_t)b->bus.config.hello_timeout_ms * 1000u)
                        peer_announce(p);
                /* Backstop for lost wakeups on shared rings. */
                if (p->ep.link.transport.kind == VBUS_TRANSPORT_VCHAN && broker_vchan_has_work(p))
                        broker_serve_peer(b, p);
        }
        if (b->discover)
                discover_tick(b->discover);
        scrape_tick(b->scrape, now);
        heap_tick(b->bus.stats.n_published + b->bus.stats.n_delivered + b->bus.stats.n_calls);
}

/* The next deadline of a call, so the loop wakes for it. */
static uint64_t broker_expire(Broker *b, uint64_t now)
{
        uint64_t a = rpc_expire(&b->bus, now), c = introspect_expire(&b->bus, now);

        return a < c ? a : c;
}

int broker_step(Broker *b, int max_wait_ms)
{
        struct epoll_event events[64];
        uint64_t now = bus_now_us(), wake;
        bool more = false, discover_ready = false;
        List *pos, *tmp;
        int timeout, n;

        if (b->bus.stopping && (list_is_empty(&b->bus.peers) || now >= b->stop_deadline_us))
                return 1;
        if (!b->next_tick_us)
                b->next_tick_us = now + (uint64_t)LIMIT_TICK_MS * 1000u;
        list_for_each_safe(pos, tmp, &b->bus.peers)
        {
                more |= list_entry(pos, Peer, link)->more;
        }
        wake = broker_expire(b, now);
        broker_flush_dirty(b);
        broker_accept_resume(b, now);
        if (b->next_tick_us < wake)
                wake = b->next_tick_us;
        if (b->accept_resume_us && b->accept_resume_us < wake)
                wake = b->accept_resume_us;
        if (b->bus.stopping && b->stop_deadline_us < wake)
                wake = b->stop_deadline_us; /* the stop ends on time, not at the next tick */
        if (b->discover && discover_has_work(b->discover))
                more = true; /* guests due for a setup: a few per iteration */
        timeout = more ? 0 : (int)((wake > now ? wake - now + 999 : 0) / 1000u);
        if (max_wait_ms >= 0 && timeout > max_wait_ms)
                timeout = max_wait_ms;
        n = epoll_wait(b->epoll_fd, events, 64, timeout);
        if (n < 0 && errno != EINTR)
                return -errno;
        for (int i = 0; i < n; i++) {
                const void *tag = events[i].data.ptr;

                if (tag == TAG_SIGNAL) {
                        broker_signal(b);
                } else if (tag == TAG_LISTEN) {
                        if (b->listen_fd >= 0) /* closed when the stop began */
                                broker_accept(b);
                } else if (tag == TAG_DISCOVER) {
                        discover_ready = true;
                } else if (tag == TAG_EVENTS) {
                        broker_take_events(b);
                } else if (scrape_owns(b->scrape, tag)) {
                        scrape_process(b->scrape, tag, events[i].events);
                } else {
                        Peer *p = events[i].data.ptr;

                        if (!peer_is_alive(p))
                                continue;
                        p->more = false;
                        broker_serve_peer(b, p);
                }
        }
        list_for_each_safe(pos, tmp, &b->bus.peers)
        {
                Peer *p = list_entry(pos, Peer, link);

                if (!p->more)
                        continue;
                p->more = false;
                broker_serve_peer(b, p);
        }
        if (b->discover && (discover_ready || discover_has_work(b->discover)))
                discover_process(b->discover);
        if (bus_now_us() >= b->next_tick_us) {
                broker_tick(b);
                b->next_tick_us = bus_now_us() + (uint64_t)LIMIT_TICK_MS * 1000u;
        }
        broker_flush_dirty(b);
        broker_free_dead(b);
        /* Who came and went in this iteration, now that no handler is on the stack; the
         * deliveries go out with the next flush. */
        presence_flush(&b->bus);
        return 0;
}

int broker_run(Broker *b)
{
        const BusStats *st = &b->bus.stats;
        List *pos, *tmp;
        unsigned n_left;
        int r;

        log_info("vbus broker %s listening on %s%s", vbus_version(), b->bus.config.socket_path,
                 b->discover ? ", discovering guests through xenstore" : "");
        while ((r = broker_step(b, -1)) == 0)
                ;
        if (r < 0)
                return r;
        /* The peers still there at the deadline go now, so that their lines come before the
         * last one, and the last one counts everything. */
        n_left = b->bus.n_peers;
        list_for_each_safe(pos, tmp, &b->bus.peers)
        {
                peer_kill(list_entry(pos, Peer, link), "broker stopping: grace period over");
        }
        broker_free_dead(b);
        log_info("stopped: %llu published, %llu delivered, %llu dropped, %llu violations, "
                 "%llu calls (%llu failed), %llu denied by policy, %llu publications refused "
                 "while stopping; %llu ms after the stop began, %u peers still connected at the "
                 "end",
                 (unsigned long long)st->n_published, (unsigned long long)st->n_delivered,
                 (unsigned long long)st->n_dropped, (unsigned long long)st->n_violations,
                 (unsigned long long)st->n_calls, (unsigned long long)st->n_calls_failed,
                 (unsigned long long)st->n_denied, (unsigned long long)st->n_refused_stopping,
                 (unsigned long long)((bus_now_us() - b->stop_started_us) / 1000u), n_left);
        return 0;
}
