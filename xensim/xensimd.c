/*
 * xensimd: the xenstore server of a xensim instance (the I/O shell around xs-server).
 *
 * One thread, one epoll loop. It listens on D/dom<N>.sock for every domain (the socket a
 * client connects to decides its domain), on D/control.sock for the `xensim` CLI, and on a
 * signalfd for SIGTERM/SIGINT. Protocol work is xs-server's; this file moves bytes, keeps
 * the epoll interest of each connection in line with what the server wants (read only under
 * the outstanding-reply quota, write only while output is queued), and carries out what the
 * server cannot: creating and removing sockets, and killing a destroyed domain's processes.
 *
 * Objects the server frees while an epoll batch is being handled (connections of a domain
 * being destroyed) are only marked dead here and freed after the batch, so no event in the
 * same batch can reach freed memory.
 *
 * Control protocol (one request line per connection, one reply):
 *   ping | create NAME | destroy ID|NAME | list | shutdown
 *   -> "ok[ ARG]\n" followed, for list, by "DOMID NAME\n" lines; or "error MESSAGE\n".
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "xs-procs.h"
#include "xs-server.h"

typedef enum EpKind {
        EP_DOMAIN,
        EP_CONN,
        EP_CTL_LISTEN,
        EP_CTL_CONN,
        EP_SIGNAL,
} EpKind;

typedef struct Ep {
        EpKind kind;
        int fd;
        void *self; /* the DomIo, ConnIo or CtlConn containing this Ep */
} Ep;

typedef struct Daemon Daemon;

typedef struct DomIo {
        Ep ep;
        XsDomain *dom;
        char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} DomIo;

typedef struct ConnIo {
        Ep ep; /* first: epoll data points here */
        XsConn *conn;
        uint32_t events;
        bool dead;
        bool flush_pending;
        struct ConnIo *next_flush;
        struct ConnIo *next_dead;
} ConnIo;

typedef struct CtlConn {
        Ep ep;
        char buf[256];
        size_t n;
        bool dead;
        struct CtlConn *next_dead;
} CtlConn;

struct Daemon {
        int epfd;
        time_t log_second; /* rate limit of peer-triggered log lines */
        unsigned n_logged;
        unsigned n_suppressed;
        char dir[4096];
        XsServer *srv;
        Ep ctl;
        Ep sig;
        char ctl_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
        bool quit;
        ConnIo *flush_list;
        ConnIo *dead_conns;
        CtlConn *dead_ctls;
};

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        fputs("xensimd: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
}

/* Peer-triggered log lines: at most PEER_LOG_PER_SECOND per second, the rest counted. */
#define PEER_LOG_PER_SECOND 10u
/* How long a control reply waits for room at a time (the CLI reads it whole at once). */
#define CTL_SEND_WAIT_MS 1000

static bool peer_log_allowed(Daemon *d)
{
        time_t now = time(NULL);

        if (now != d->log_second) {
                if (d->n_suppressed)
                        logf_("%u similar messages suppressed", d->n_suppressed);
                d->log_second = now;
                d->n_logged = 0;
                d->n_suppressed = 0;
        }
        if (d->n_logged < PEER_LOG_PER_SECOND) {
                d->n_logged++;
                return true;
        }
        d->n_suppressed++;
        return false;
}

/* ---- sockets ---- */

static int listen_unix(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        unlink(path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, SOMAXCONN) < 0) {
                int e = -errno;

                close(fd);
                return e;
        }
        return fd;
}

static int ep_add(Daemon *d, Ep *ep, uint32_t events)
{
        struct epoll_event ev = {.events = events, .data.ptr = ep};

        return epoll_ctl(d->epfd, EPOLL_CTL_ADD, ep->fd, &ev) < 0 ? -errno : 0;
}

/* ---- connections ---- */

static void conn_kill(Daemon *d, ConnIo *io)
{
        if (io->dead)
                return;
        epoll_ctl(d->epfd, EPOLL_CTL_DEL, io->ep.fd, NULL);
        close(io->ep.fd);
        io->ep.fd = -1;
        io->dead = true;
        io->conn = NULL;
        io->next_dead = d->dead_conns;
        d->dead_conns = io;
}

/* Brings the epoll interest of a connection in line with its state. */
static void conn_update_events(Daemon *d, ConnIo *io)
{
        struct epoll_event ev = {.data.ptr = &io->ep};
        size_t n_out;

        if (io->dead)
                return;
        xs_server_conn_out_peek(io->conn, &n_out);
        ev.events = (xs_server_conn_wants_read(io->conn) ? EPOLLIN : 0) | (n_out ? EPOLLOUT : 0);
        if (ev.events != io->events) {
                epoll_ctl(d->epfd, EPOLL_CTL_MOD, io->ep.fd, &ev);
                io->events = ev.events;
        }
}

static void conn_close(Daemon *d, ConnIo *io)
{
        XsConn *c = io->conn;

        conn_kill(d, io);
        if (c)
                xs_server_conn_free(d->srv, c);
}

/* Writes what can be written now. Returns false if the connection was closed. */
static bool conn_flush(Daemon *d, ConnIo *io)
{
        for (;;) {
                size_t n;
                const uint8_t *p = xs_server_conn_out_peek(io->conn, &n);
                ssize_t w;

                if (!p)
                        break;
                w = send(io->ep.fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                break;
                        conn_close(d, io);
                        return false;
                }
                xs_server_conn_out_consume(io->conn, (size_t)w);
        }
        return true;
}

static void conn_handle(Daemon *d, ConnIo *io, uint32_t events)
{
        bool could_read = xs_server_conn_wants_read(io->conn);

        if (events & EPOLLOUT) {
                if (!conn_flush(d, io))
                        return;
                /* Drained below the quota: handle requests already buffered. */
                if (!could_read && xs_server_conn_wants_read(io->conn) &&
                    xs_server_conn_process(d->srv, io->conn, 0) < 0) {
                        if (peer_log_allowed(d))
                                logf_("domain %" PRIu32 ": protocol violation, closing",
                                      io->conn->domid);
                        conn_close(d, io);
                        return;
                }
        }
        if ((events & EPOLLIN) && xs_server_conn_wants_read(io->conn)) {
                uint8_t *buf;
                size_t space;
                ssize_t n;

                xs_server_conn_rspace(io->conn, &buf, &space);
                n = space ? recv(io->ep.fd, buf, space, MSG_DONTWAIT) : 0;
                if (space && n == 0) {
                        conn_close(d, io);
                        return;
                }
                if (n < 0 && errno != EAGAIN && errno != EINTR) {
                        conn_close(d, io);
                        return;
                }
                if (n > 0 && xs_server_conn_process(d->srv, io->conn, (size_t)n) < 0) {
                        if (peer_log_allowed(d))
                                logf_("domain %" PRIu32 ": oversized message, closing",
                                      io->conn->domid);
                        conn_close(d, io);
                        return;
                }
        } else if (events & (EPOLLHUP | EPOLLERR)) {
                conn_close(d, io);
                return;
        }
        if (!io->dead)
                conn_update_events(d, io);
}

static void domain_accept(Daemon *d, DomIo *dio)
{
        for (;;) {
                int fd = accept4(dio->ep.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                ConnIo *io;

                if (fd < 0)
                        return;
                io = calloc(1, sizeof(*io));
                if (!io) {
                        close(fd);
                        return;
                }
                io->ep.kind = EP_CONN;
                io->ep.fd = fd;
                io->ep.self = io;
                io->conn = xs_server_conn_new(d->srv, dio->dom, io);
                if (!io->conn) {
                        if (peer_log_allowed(d))
                                logf_("domain %" PRIu32 ": connection refused (limit)",
                                      dio->dom->domid);
                        close(fd);
                        free(io);
                        continue;
                }
                io->events = EPOLLIN;
                if (ep_add(d, &io->ep, EPOLLIN) < 0) {
                        xs_server_conn_free(d->srv, io->conn);
                        close(fd);
                        free(io);
                }
        }
}

/* ---- server callbacks ---- */

static void srv_wake(void *userdata, XsConn *c)
{
        Daemon *d = userdata;
        ConnIo *io = c->io;

        if (!io || io->dead || io->flush_pending)
                return;
        io->flush_pending = true;
        io->next_flush = d->flush_list;
        d->flush_list = io;
}

static void srv_conn_closing(void *userdata, XsConn *c)
{
        ConnIo *io = c->io;

        if (io)
                conn_kill(userdata, io);
}

static int srv_domain_added(void *userdata, XsDomain *dom)
{
        Daemon *d = userdata;
        DomIo *dio = calloc(1, sizeof(*dio));
        int n, fd;

        if (!dio)
                return -ENOMEM;
        n = snprintf(dio->path, sizeof(dio->path), "%s/dom%" PRIu32 ".sock", d->dir, dom->domid);
        if (n < 0 || (size_t)n >= sizeof(dio->path)) {
                free(dio);
                return -ENAMETOOLONG;
        }
        fd = listen_unix(dio->path);
        if (fd < 0) {
                free(dio);
                return fd;
        }
        dio->ep.kind = EP_DOMAIN;
        dio->ep.fd = fd;
        dio->ep.self = dio;
        dio->dom = dom;
        if (ep_add(d, &dio->ep, EPOLLIN) < 0) {
                close(fd);
                unlink(dio->path);
                free(dio);
                return -ENOMEM;
        }
        dom->io = dio;
        return 0;
}

static void srv_domain_removed(void *userdata, XsDomain *dom)
{
        Daemon *d = userdata;
        DomIo *dio = dom->io;

        if (!dio)
                return;
        epoll_ctl(d->epfd, EPOLL_CTL_DEL, dio->ep.fd, NULL);
        close(dio->ep.fd);
        unlink(dio->path);
        free(dio);
        dom->io = NULL;
}

/* ---- control channel ---- */

static void ctl_reply(CtlConn *cc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ctl_reply(CtlConn *cc, const char *fmt, ...)
{
        char buf[256];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (n > 0)
                send(cc->ep.fd, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1,
                     MSG_NOSIGNAL);
}

/*
 * Sends all of @buf on the control connection, waiting for room (at most CTL_SEND_WAIT_MS at a
 * time): a list of thousands of domains is more than a socket buffer holds, and the CLI reads
 * it whole. A client that does not read gets a cut reply.
 */
static void ctl_send_all(CtlConn *cc, const char *buf, size_t n)
{
        while (n > 0) {
                struct pollfd pfd = {.fd = cc->ep.fd, .events = POLLOUT};
                ssize_t w = send(cc->ep.fd, buf, n, MSG_NOSIGNAL);

                if (w > 0) {
                        buf += w;
                        n -= (size_t)w;
                        continue;
                }
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && errno == EAGAIN && poll(&pfd, 1, CTL_SEND_WAIT_MS) > 0)
                        continue;
                return;
        }
}

/* "ok\n" and a "DOMID NAME\n" line per domain, in one reply. */
static void ctl_list(Daemon *d, CtlConn *cc)
{
        size_t cap = 4096, n = 0;
        char *buf = malloc(cap);

        if (!buf) {
                ctl_reply(cc, "error out of memory\n");
                return;
        }
        n = (size_t)snprintf(buf, cap, "ok\n");
        for (XsDomain *dom = xs_server_domains(d->srv); dom; dom = dom->next) {
                int k;

                if (cap - n < XS_DOMAIN_NAME_MAX + 16) {
                        char *nb = realloc(buf, cap * 2);

                        if (!nb) {
                                free(buf);
                                ctl_reply(cc, "error out of memory\n");
                                return;
                        }
                        buf = nb;
                        cap *= 2;
                }
                k = snprintf(buf + n, cap - n, "%" PRIu32 " %s\n", dom->domid, dom->name);
                if (k > 0 && (size_t)k < cap - n)
                        n += (size_t)k;
        }
        ctl_send_all(cc, buf, n);
        free(buf);
}

static XsDomain *ctl_find(Daemon *d, const char *arg)
{
        char *end;
        unsigned long id = strtoul(arg, &end, 10);

        if (*arg && !*end)
                return xs_server_domain_find(d->srv, (uint32_t)id);
        return xs_server_domain_find_name(d->srv, arg);
}

static void ctl_destroy(Daemon *d, XsDomain *dom)
{
        uint32_t domid = dom->domid;
        int n = xs_procs_kill_all(d->dir, domid);

        xs_server_domain_destroy(d->srv, dom);
        logf_("domain %" PRIu32 " destroyed (%d process groups killed)", domid, n);
}

static void ctl_command(Daemon *d, CtlConn *cc, char *line)
{
        char *arg = strchr(line, ' ');
        XsDomain *dom;
        int r;

        if (arg)
                *arg++ = 0;
        if (strcmp(line, "ping") == 0) {
                ctl_reply(cc, "ok\n");
        } else if (strcmp(line, "create") == 0 && arg) {
                r = xs_server_domain_create(d->srv, arg, &dom);
                if (r == -EEXIST)
                        ctl_reply(cc, "error a domain named '%s' exists\n", arg);
                else if (r == -EINVAL)
                        ctl_reply(cc, "error invalid domain name (use 1-%u of A-Za-z0-9_.-)\n",
                                  XS_DOMAIN_NAME_MAX);
                else if (r < 0)
                        ctl_reply(cc, "error %s\n", strerror(-r));
                else {
                        logf_("domain %" PRIu32 " (%s) created", dom->domid, dom->name);
                        ctl_reply(cc, "ok %" PRIu32 "\n", dom->domid);
                }
        } else if (strcmp(line, "destroy") == 0 && arg) {
                dom = ctl_find(d, arg);
                if (!dom) {
                        ctl_reply(cc, "error unknown domain '%s'\n", arg);
                } else if (dom->domid == 0) {
                        ctl_reply(cc, "error Domain-0 cannot be destroyed\n");
                } else {
                        uint32_t domid = dom->domid;

                        ctl_destroy(d, dom);
                        ctl_reply(cc, "ok %" PRIu32 "\n", domid);
                }
        } else if (strcmp(line, "list") == 0) {
                ctl_list(d, cc);
        } else if (strcmp(line, "shutdown") == 0) {
                ctl_reply(cc, "ok\n");
                d->quit = true;
        } else {
                ctl_reply(cc, "error unknown command\n");
        }
}

static void ctl_close(Daemon *d, CtlConn *cc)
{
        if (cc->dead)
                return;
        epoll_ctl(d->epfd, EPOLL_CTL_DEL, cc->ep.fd, NULL);
        close(cc->ep.fd);
        cc->dead = true;
        cc->next_dead = d->dead_ctls;
        d->dead_ctls = cc;
}

static void ctl_handle(Daemon *d, CtlConn *cc)
{
        ssize_t n = recv(cc->ep.fd, cc->buf + cc->n, sizeof(cc->buf) - 1 - cc->n, MSG_DONTWAIT);
        char *nl;

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (n <= 0) {
                ctl_close(d, cc);
                return;
        }
        cc->n += (size_t)n;
        cc->buf[cc->n] = 0;
        nl = strchr(cc->buf, '\n');
        if (!nl) {
                if (cc->n == sizeof(cc->buf) - 1)
                        ctl_close(d, cc);
                return;
        }
        *nl = 0;
        ctl_command(d, cc, cc->buf);
        ctl_close(d, cc);
}

static void ctl_accept(Daemon *d)
{
        for (;;) {
                int fd = accept4(d->ctl.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                CtlConn *cc;

                if (fd < 0)
                        return;
                cc = calloc(1, sizeof(*cc));
                if (!cc) {
                        close(fd);
                        continue;
                }
                cc->ep.kind = EP_CTL_CONN;
                cc->ep.fd = fd;
                cc->ep.self = cc;
                if (ep_add(d, &cc->ep, EPOLLIN) < 0) {
                        close(fd);
                        free(cc);
                }
        }
}

/* ---- main loop ---- */

static void flush_all(Daemon *d)
{
        while (d->flush_list) {
                ConnIo *io = d->flush_list;

                d->flush_list = io->next_flush;
                io->flush_pending = false;
                if (io->dead)
                        continue;
                if (conn_flush(d, io))
                        conn_update_events(d, io);
        }
}

static void reap_dead(Daemon *d)
{
        while (d->dead_conns) {
                ConnIo *io = d->dead_conns;

                d->dead_conns = io->next_dead;
                free(io); /* flush_all() has emptied the flush list before we get here */
        }
        while (d->dead_ctls) {
                CtlConn *cc = d->dead_ctls;

                d->dead_ctls = cc->next_dead;
                free(cc);
        }
}

static void dispatch(Daemon *d, Ep *ep, uint32_t events)
{
        switch (ep->kind) {
        case EP_DOMAIN:
                domain_accept(d, ep->self);
                break;
        case EP_CONN: {
                ConnIo *io = ep->self;

                if (!io->dead)
                        conn_handle(d, io, events);
                break;
        }
        case EP_CTL_LISTEN:
                ctl_accept(d);
                break;
        case EP_CTL_CONN: {
                CtlConn *cc = ep->self;

                if (!cc->dead)
                        ctl_handle(d, cc);
                break;
        }
        case EP_SIGNAL: {
                struct signalfd_siginfo si;

                if (read(ep->fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                        d->quit = true;
                break;
        }
        }
}

static int run(Daemon *d)
{
        struct epoll_event evs[64];

        while (!d->quit) {
                int n = epoll_wait(d->epfd, evs, 64, -1);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                for (int i = 0; i < n; i++) {
                        dispatch(d, evs[i].data.ptr, evs[i].events);
                        flush_all(d);
                }
                reap_dead(d);
        }
        return 0;
}

/* Kills every domain's processes and removes every socket. */
static void shutdown_all(Daemon *d)
{
        XsDomain *dom;

        for (dom = xs_server_domains(d->srv); dom; dom = dom->next) {
                xs_procs_kill_all(d->dir, dom->domid);
                srv_domain_removed(d, dom);
        }
        unlink(d->ctl_path);
}

static bool instance_running(const char *ctl_path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool up;

        if (fd < 0)
                return false;
        memcpy(sa.sun_path, ctl_path, strlen(ctl_path) + 1);
        up = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(fd);
        return up;
}

static void usage(FILE *f)
{
        fprintf(f, "Usage: xensimd [--dir D]\n"
                   "\n"
                   "The xenstore server of a xensim instance. Listens on D/dom<N>.sock for each\n"
                   "domain N (domain 0 from start-up) and on D/control.sock for the xensim CLI.\n"
                   "D defaults to $XENSIM_DIR, else /tmp/xensim-$UID. Normally started by\n"
                   "`xensim up`. Stops on SIGTERM or SIGINT, killing the domains' processes.\n");
}

/* D/xensimd.pid into buf, whose size is sizeof(d->dir) + 16: it cannot be truncated. */
static void pidfile_path(const Daemon *d, char *buf, size_t size)
{
        (void)snprintf(buf, size, "%s/xensimd.pid", d->dir);
}

/* Writes our pid to D/xensimd.pid; a failure is logged, not fatal (the file is informative). */
static void write_pidfile(const Daemon *d)
{
        char path[sizeof(d->dir) + 16];
        FILE *f;

        pidfile_path(d, path, sizeof(path));
        f = fopen(path, "w");
        if (!f) {
                logf_("cannot write %s: %s", path, strerror(errno));
                return;
        }
        fprintf(f, "%d\n", (int)getpid());
        /* The stream's error is sticky: fclose() reports a failed fprintf() too. */
        if (fclose(f) != 0)
                logf_("cannot write %s: %s", path, strerror(errno));
}

static int daemon_setup(Daemon *d)
{
        static const XsServerOps ops = {
                .wake = srv_wake,
                .conn_closing = srv_conn_closing,
                .domain_added = srv_domain_added,
                .domain_removed = srv_domain_removed,
        };
        sigset_t mask;
        int r;

        if (mkdir(d->dir, 0700) < 0 && errno != EEXIST) {
                logf_("cannot create %s: %s", d->dir, strerror(errno));
                return -1;
        }
        if ((size_t)snprintf(d->ctl_path, sizeof(d->ctl_path), "%s/control.sock", d->dir) >=
            sizeof(d->ctl_path)) {
                logf_("directory path too long for a socket: %s", d->dir);
                return -1;
        }
        if (instance_running(d->ctl_path)) {
                logf_("an instance is already running in %s", d->dir);
                return -1;
        }
        d->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (d->epfd < 0)
                return -1;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        /* Cannot fail: a valid signal and handler. */
        (void)signal(SIGPIPE, SIG_IGN);
        d->sig.kind = EP_SIGNAL;
        d->sig.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (d->sig.fd < 0 || ep_add(d, &d->sig, EPOLLIN) < 0)
                return -1;
        r = xs_server_new(&ops, d, &d->srv);
        if (r < 0) {
                logf_("cannot start: %s", strerror(-r));
                return -1;
        }
        d->ctl.kind = EP_CTL_LISTEN;
        d->ctl.fd = listen_unix(d->ctl_path);
        if (d->ctl.fd < 0 || ep_add(d, &d->ctl, EPOLLIN) < 0) {
                logf_("cannot listen on %s", d->ctl_path);
                return -1;
        }
        write_pidfile(d);
        return 0;
}

/*
 * Each domain costs a listening socket and each client a connection: use every descriptor we
 * may, as Xen's launch-xenstore does for xenstored (XENSTORED_MAX_OPEN_FDS), so that the
 * number of domains (up to XS_MAX_DOMAINS) is bounded by the host and not by a soft default.
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
                {"dir", required_argument, NULL, 'd'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        Daemon *d = calloc(1, sizeof(*d));
        const char *dir = getenv("XENSIM_DIR");
        char pidfile[sizeof(d->dir) + 16];
        int opt, n, r;

        if (!d)
                return 1;
        d->epfd = -1;
        raise_fd_limit();
        while ((opt = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
                switch (opt) {
                case 'd':
                        dir = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        free(d);
                        return 0;
                default:
                        usage(stderr);
                        free(d);
                        return 2;
                }
        }
        if (optind != argc) {
                usage(stderr);
                free(d);
                return 2;
        }
        if (dir && *dir)
                n = snprintf(d->dir, sizeof(d->dir), "%s", dir);
        else
                n = snprintf(d->dir, sizeof(d->dir), "/tmp/xensim-%u", (unsigned)getuid());
        if (n < 0 || (size_t)n >= sizeof(d->dir)) {
                logf_("directory path too long: %.64s...", d->dir);
                free(d);
                return 2;
        }
        if (daemon_setup(d) < 0) {
                xs_server_free(d->srv);
                free(d);
                return 1;
        }
        logf_("serving %s", d->dir);
        r = run(d);
        shutdown_all(d);
        pidfile_path(d, pidfile, sizeof(pidfile));
        unlink(pidfile);
        d->flush_list = NULL;
        xs_server_free(d->srv);
        reap_dead(d);
        free(d);
        logf_("stopped");
        return r < 0 ? 1 : 0;
}
