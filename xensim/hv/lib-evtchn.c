/*
 * Drop-in libxenevtchn.so.1 for xensim: the xenevtchn_* API of Xen 4.17 on top of
 * xensim-hvd, with events going straight from process to process (see hv-proto.h).
 *
 * Every port bound through a handle has a doorbell (an eventfd) in the handle's epoll set,
 * which is the fd xenevtchn_fd returns. Its counter counts notifies. The doorbell is armed
 * one-shot, so once xenevtchn_pending() has returned a port (Linux's upcall: the port is
 * delivered and masked) nothing more is reported for it until xenevtchn_unmask(). Unmask
 * consumes the counter: if it held more than the one notify that was delivered, a notify may
 * have come after the delivery, so one more event is due (Linux: pending set while masked is
 * delivered at unmask); it is re-posted as a single unit, which is the coalescing. At worst
 * that is one spurious event (notifies that came before the delivery), which Xen's event
 * semantics allow; a notify after the delivery is never lost, which they require.
 *
 * To notify, the handle writes to the doorbell of the port its port is bound to, which the
 * daemon gave it at bind time, or on request after saying the peer changed
 * (HV_OP_EVT_PEER_CHANGED), so a notify never uses a stale peer; a notify on a port with no
 * peer is dropped, as Xen drops a notify on an unbound port. Such messages are read before a
 * notify only when the handle's news counter (HV_OP_EVT_NEWS, a page the daemon shares with
 * this handle) has moved since the last look: the daemon increments it after sending one, and
 * before answering the bind that caused it, so a notify that comes after that bind sees it
 * move and reads the message first; while nothing changes a notify is the doorbell's write
 * alone. Without the page (the daemon refused it) every notify reads the connection first.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xenevtchn.h>

#include "hv-client.h"
#include "hv-limits.h"

/* No restriction set by xenevtchn_restrict. */
#define EVTCHN_UNRESTRICTED UINT32_MAX

struct xenevtchn_handle {
        HvClient client;
        int epfd;
        uint32_t restrict_domid;
        /*
         * Per port bound through this handle: its doorbell and the peer's (-1 when none), and
         * whether the daemon said the peer changed since. own[] changes only in bind/unbind;
         * peer[] and stale[] under the client lock.
         */
        int own[HV_PORTS_PER_DOMAIN];
        int peer[HV_PORTS_PER_DOMAIN];
        bool stale[HV_PORTS_PER_DOMAIN];
        /* Returned by pending() and not unmasked since (atomic bytes). */
        uint8_t delivered[HV_PORTS_PER_DOMAIN];
        /* HV_OP_EVT_NEWS page (NULL without), and its counter when last read (client lock). */
        const uint32_t *news;
        size_t news_size;
        uint32_t news_seen;
        /*
         * Set once pending() has seen O_NONBLOCK on the fd: from then on a pending() that finds
         * nothing answers EAGAIN after its one epoll_wait, as a read of /dev/xen/evtchn does,
         * instead of asking fcntl() each time (a second system call per empty look that Xen does
         * not make). Clearing O_NONBLOCK afterwards is not noticed (README, not emulated).
         */
        bool nonblocking;
};

#define XENEVTCHN_EXPORT __attribute__((visibility("default")))

static int fail(int r)
{
        errno = -r;
        return -1;
}

static bool port_ok(uint32_t port)
{
        return port > 0 && port < HV_PORTS_PER_DOMAIN;
}

/* HV_OP_EVT_PEER_CHANGED, with the client lock held: fetch the new peer before notifying. */
static void evtchn_async(void *ctx, const HvMsg *m, int fd)
{
        xenevtchn_handle *h = ctx;
        uint32_t port = m->arg[0];

        if (fd >= 0)
                close(fd);
        /* Not ours (any more): raced with our own unbind, nothing to update. */
        if (port_ok(port) && h->own[port] >= 0)
                h->stale[port] = true;
}

/* With the client lock held: replace a stale peer doorbell by the current one (or none). */
static int evtchn_refresh_peer(xenevtchn_handle *h, uint32_t port)
{
        HvMsg req = {.op = HV_OP_EVT_GET_PEER, .arg = {port}}, rep;
        size_t n_fds = 0;
        int fd = -1;
        int r = hv_client_call_locked(&h->client, &req, NULL, &rep, NULL, 0, &fd, 1, &n_fds);

        if (r < 0)
                return r;
        if (h->peer[port] >= 0)
                close(h->peer[port]);
        h->peer[port] = n_fds == 1 ? fd : -1;
        h->stale[port] = false;
        return 0;
}

static void handle_free(xenevtchn_handle *h)
{
        for (uint32_t p = 0; p < HV_PORTS_PER_DOMAIN; p++) {
                if (h->own[p] >= 0)
                        close(h->own[p]);
                if (h->peer[p] >= 0)
                        close(h->peer[p]);
        }
        if (h->epfd >= 0)
                close(h->epfd);
        if (h->news)
                munmap((void *)h->news, h->news_size);
        hv_client_close(&h->client);
        free(h);
}

/* Maps the news page; without it (an error) notify falls back to reading before each one. */
static void evtchn_map_news(xenevtchn_handle *h)
{
        HvMsg req = {.op = HV_OP_EVT_NEWS}, rep;
        long page = sysconf(_SC_PAGESIZE);
        size_t n_fds = 0;
        void *p;
        int fd = -1;

        if (page <= 0 ||
            hv_client_call(&h->client, &req, NULL, &rep, NULL, 0, &fd, 1, &n_fds) < 0 || n_fds != 1)
                return;
        p = mmap(NULL, (size_t)page, PROT_READ, MAP_SHARED, fd, 0);
        close(fd);
        if (p == MAP_FAILED)
                return;
        h->news = p;
        h->news_size = (size_t)page;
        h->news_seen = __atomic_load_n(h->news, __ATOMIC_ACQUIRE);
}

XENEVTCHN_EXPORT xenevtchn_handle *xenevtchn_open(struct xentoollog_logger *logger,
                                                  unsigned int flags)
{
        bool cloexec = !(flags & XENEVTCHN_NO_CLOEXEC);
        xenevtchn_handle *h = calloc(1, sizeof(*h));
        int r;

        if (!h)
                return NULL;
        for (uint32_t p = 0; p < HV_PORTS_PER_DOMAIN; p++)
                h->own[p] = h->peer[p] = -1;
        h->restrict_domid = EVTCHN_UNRESTRICTED;
        h->client.fd = -1;
        h->epfd = epoll_create1(cloexec ? EPOLL_CLOEXEC : 0);
        if (h->epfd < 0) {
                r = -errno;
                goto fail;
        }
        r = hv_client_open(&h->client, cloexec);
        if (r < 0)
                goto fail;
        h->client.on_async = evtchn_async;
        h->client.async_ctx = h;
        evtchn_map_news(h);
        return h;
fail:
        handle_free(h);
        errno = -r;
        return NULL;
}

XENEVTCHN_EXPORT xenevtchn_handle *xenevtchn_fdopen(struct xentoollog_logger *logger, int fd,
                                                    unsigned open_flags)
{
        /* There is no /dev/xen/evtchn descriptor to adopt under xensim. */
        errno = EOPNOTSUPP;
        return NULL;
}

XENEVTCHN_EXPORT int xenevtchn_close(xenevtchn_handle *xce)
{
        if (xce)
                handle_free(xce);
        return 0;
}

XENEVTCHN_EXPORT int xenevtchn_fd(xenevtchn_handle *xce)
{
        return xce->epfd;
}

XENEVTCHN_EXPORT int xenevtchn_notify(xenevtchn_handle *xce, evtchn_port_t port)
{
        const uint64_t one = 1;
        int r;

        if (!port_ok(port))
                return fail(-EINVAL);
        if (xce->own[port] < 0)
                return fail(-ENOTCONN);
        hv_client_lock(&xce->client);
        r = 0;
        if (!xce->news) {
                r = hv_client_drain_async_locked(&xce->client);
        } else {
                /* Read before draining: what the count covers was sent before it moved. */
                uint32_t news = __atomic_load_n(xce->news, __ATOMIC_ACQUIRE);

                if (news != xce->news_seen) {
                        r = hv_client_drain_async_locked(&xce->client);
                        if (r == 0)
                                xce->news_seen = news;
                }
        }
        if (r == 0 && xce->stale[port])
                r = evtchn_refresh_peer(xce, port);
        /* A full counter already means "pending"; a peer-less port drops the event (Xen). */
        if (r == 0 && xce->peer[port] >= 0)
                (void)!write(xce->peer[port], &one, sizeof(one));
        hv_client_unlock(&xce->client);
        return r < 0 ? fail(r) : 0;
}

/* Install a newly bound port's doorbells and arm it (a new port is unmasked). */
static xenevtchn_port_or_error_t evtchn_bound(xenevtchn_handle *xce, uint32_t port, const int *fds,
                                              size_t n_fds)
{
        struct epoll_event e = {.events = EPOLLIN | EPOLLONESHOT, .data.u32 = port};

        if (!port_ok(port) || n_fds < 1 || xce->own[port] >= 0 ||
            epoll_ctl(xce->epfd, EPOLL_CTL_ADD, fds[0], &e) < 0) {
                for (size_t i = 0; i < n_fds; i++)
                        close(fds[i]);
                return fail(-EPROTO);
        }
        xce->own[port] = fds[0];
        if (n_fds > 1) {
                hv_client_lock(&xce->client);
                if (xce->peer[port] >= 0)
                        close(xce->peer[port]);
                xce->peer[port] = fds[1];
                hv_client_unlock(&xce->client);
        }
        return (xenevtchn_port_or_error_t)port;
}

static xenevtchn_port_or_error_t evtchn_bind(xenevtchn_handle *xce, HvMsg *req)
{
        HvMsg rep = {0};
        int fds[2];
        size_t n_fds = 0;
        int r = hv_client_call(&xce->client, req, NULL, &rep, NULL, 0, fds, 2, &n_fds);

        /* Bound in the daemon, but this process could not take the doorbells (it is out of
         * descriptors): unbind it there, or the port would stay bound to the remote one, which
         * could then never be bound again (Xen's bind takes no descriptor, so it never leaves
         * a port behind like this). */
        if (r == -EMFILE && rep.op == req->op && rep.err == 0) {
                HvMsg un = {.op = HV_OP_EVT_UNBIND, .arg = {rep.arg[0]}}, unrep;

                (void)hv_client_call(&xce->client, &un, NULL, &unrep, NULL, 0, NULL, 0, NULL);
        }
        if (r < 0)
                return fail(r);
        return evtchn_bound(xce, rep.arg[0], fds, n_fds);
}

XENEVTCHN_EXPORT xenevtchn_port_or_error_t xenevtchn_bind_unbound_port(xenevtchn_handle *xce,
                                                                       uint32_t domid)
{
        HvMsg req = {.op = HV_OP_EVT_BIND_UNBOUND, .arg = {domid}};

        if (xce->restrict_domid != EVTCHN_UNRESTRICTED && domid != xce->restrict_domid)
                return fail(-EPERM);
        return evtchn_bind(xce, &req);
}

XENEVTCHN_EXPORT xenevtchn_port_or_error_t xenevtchn_bind_interdomain(xenevtchn_handle *xce,
                                                                      uint32_t domid,
                                                                      evtchn_port_t remote_port)
{
        HvMsg req = {.op = HV_OP_EVT_BIND_INTERDOMAIN, .arg = {domid, remote_port}};

        if (xce->restrict_domid != EVTCHN_UNRESTRICTED && domid != xce->restrict_domid)
                return fail(-EPERM);
        return evtchn_bind(xce, &req);
}

XENEVTCHN_EXPORT xenevtchn_port_or_error_t xenevtchn_bind_virq(xenevtchn_handle *xce,
                                                               unsigned int virq)
{
        /* xensim emulates no virtual IRQs. */
        return fail(-EOPNOTSUPP);
}

XENEVTCHN_EXPORT int xenevtchn_unbind(xenevtchn_handle *xce, evtchn_port_t port)
{
        HvMsg req = {.op = HV_OP_EVT_UNBIND, .arg = {port}}, rep;
        int r;

        if (!port_ok(port))
                return fail(-EINVAL);
        if (xce->own[port] < 0)
                return fail(-ENOTCONN);
        r = hv_client_call(&xce->client, &req, NULL, &rep, NULL, 0, NULL, 0, NULL);
        if (r < 0)
                return fail(r);
        epoll_ctl(xce->epfd, EPOLL_CTL_DEL, xce->own[port], NULL);
        close(xce->own[port]);
        xce->own[port] = -1;
        __atomic_store_n(&xce->delivered[port], 0, __ATOMIC_RELAXED);
        hv_client_lock(&xce->client);
        if (xce->peer[port] >= 0)
                close(xce->peer[port]);
        xce->peer[port] = -1;
        xce->stale[port] = false;
        hv_client_unlock(&xce->client);
        return 0;
}

XENEVTCHN_EXPORT xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *xce)
{
        struct epoll_event e;
        uint32_t port;
        int n, fl;

        /* Usually called because the fd polled readable: look without blocking first. */
        do {
                n = epoll_wait(xce->epfd, &e, 1, 0);
        } while (n < 0 && errno == EINTR);
        if (n == 0) {
                /* Like read() on /dev/xen/evtchn: block unless the fd is non-blocking. */
                if (__atomic_load_n(&xce->nonblocking, __ATOMIC_RELAXED))
                        return fail(-EAGAIN);
                fl = fcntl(xce->epfd, F_GETFL);
                if (fl >= 0 && (fl & O_NONBLOCK)) {
                        __atomic_store_n(&xce->nonblocking, true, __ATOMIC_RELAXED);
                        return fail(-EAGAIN);
                }
                do {
                        n = epoll_wait(xce->epfd, &e, 1, -1);
                } while (n < 0 && errno == EINTR);
        }
        if (n < 0)
                return -1;
        port = e.data.u32;
        /* Delivered and masked; the counter is left for unmask to judge. */
        if (port_ok(port))
                __atomic_store_n(&xce->delivered[port], 1, __ATOMIC_RELAXED);
        return (xenevtchn_port_or_error_t)port;
}

XENEVTCHN_EXPORT int xenevtchn_unmask(xenevtchn_handle *xce, evtchn_port_t port)
{
        struct epoll_event e = {.events = EPOLLIN | EPOLLONESHOT, .data.u32 = port};
        const uint64_t one = 1;
        uint64_t count = 0;
        int fd;

        /* Like a write to /dev/xen/evtchn: ports not bound by this handle are ignored. */
        if (!port_ok(port) || (fd = xce->own[port]) < 0)
                return 0;
        /*
         * Only a delivered port consumes its counter: unmasking a port whose event has not
         * been taken yet must not lose that event.
         */
        if (__atomic_exchange_n(&xce->delivered[port], 0, __ATOMIC_RELAXED) &&
            read(fd, &count, sizeof(count)) == (ssize_t)sizeof(count) && count > 1)
                (void)!write(fd, &one, sizeof(one));
        if (epoll_ctl(xce->epfd, EPOLL_CTL_MOD, fd, &e) < 0)
                return -1;
        return 0;
}

XENEVTCHN_EXPORT int xenevtchn_restrict(xenevtchn_handle *xce, domid_t domid)
{
        if (xce->restrict_domid != EVTCHN_UNRESTRICTED && xce->restrict_domid != domid)
                return fail(-EPERM);
        xce->restrict_domid = domid;
        return 0;
}
