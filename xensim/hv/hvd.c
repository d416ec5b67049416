/*
 * xensim-hvd: the "hypervisor" of xensim for grant tables and event channels.
 *
 * One process, one thread (plus the reader thread libxenstore starts for watches), one epoll
 * loop; all state hangs off the Hvd built in main(). It is a dom0 client of xensimd: it
 * learns which domains exist by listing /local/domain whenever @introduceDomain or
 * @releaseDomain fires, and gives each live domain N a listening socket D/dom<N>.hv.sock.
 * The socket a connection arrives on is its domain; nothing a client sends can change that.
 *
 * Each connection is one handle of the drop-in libraries (see hv-proto.h for the protocol).
 * The decisions live in hv-evtchn.c (port states) and hv-grant.c (who may map what); this
 * file does the I/O: shared memory files for granted pages, the doorbell (eventfd) of each
 * bound port, which it hands to the port's owner and to its interdomain peer so that events
 * go from process to process without passing through here, and the unmap-notify of handles
 * that go away. A handle goes away when its
 * connection closes, which the kernel does for us when the process exits or is killed, so
 * the unmap-notify (clear a byte, send an event) holds for kill -9 exactly as with Linux's
 * gntalloc/gntdev.
 *
 * Invariants: a Conn is freed only at the end of a loop iteration (conn_kill() queues it), so
 * pointers taken from one epoll batch stay valid during that batch; ports held by an
 * unmap-notify outlive their owner until the notify is sent (hv_evtchn_hold()).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <xenstore.h>

#include "hv-evtchn.h"
#include "hv-grant.h"
#include "hv-limits.h"
#include "hv-proto.h"

/* Requests handled per connection per loop iteration, so one busy client cannot starve. */
#define HVD_BUDGET_PER_CONN 64

typedef enum SourceKind {
        SOURCE_LISTEN,
        SOURCE_CONN,
        SOURCE_XS,
        SOURCE_SIGNAL,
} SourceKind;

typedef struct Hvd Hvd;
typedef struct Domain Domain;

typedef struct Share {
        struct Share *next;
        uint32_t id;
        int fd;    /* memfd, read-write */
        int fd_ro; /* read-only open file description of the same memfd, or -1 */
        uint32_t n_pages;
        uint32_t *refs;
        uint32_t notify_off;  /* HV_NOTIFY_NONE or byte offset in the page */
        uint32_t notify_port; /* HV_NOTIFY_NONE or held port of the granting domain */
} Share;

typedef struct Map {
        struct Map *next;
        uint32_t id;
        int notify_fd; /* memfd of the notify page (dup), or -1 */
        uint64_t notify_pos;
        uint32_t notify_off;
        uint32_t notify_port;
} Map;

typedef struct Conn {
        SourceKind kind;
        struct Conn *prev, *next; /* in Domain.conns */
        struct Conn *next_dead;
        Domain *dom;
        int fd;
        bool dead;
        Share *shares;
        Map *maps;
        uint32_t n_objects;
        uint32_t next_id;
        uint32_t *news; /* HV_OP_EVT_NEWS page (mapped here, NULL until asked) */
} Conn;

struct Domain {
        SourceKind kind;
        Domain *next;
        Hvd *hvd;
        uint32_t domid;
        int listen_fd;
        char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
        Conn *conns;
        uint32_t n_conns;
        uint32_t n_fds; /* descriptors held for this domain, at most HV_FDS_PER_DOMAIN */
        bool seen;      /* marker for the scan of /local/domain */
        bool paused;    /* listener disabled after EMFILE until a descriptor is freed */
};

struct Hvd {
        const char *dir;
        int epfd;
        SourceKind sig_kind;
        int sig_fd;
        SourceKind xs_kind;
        struct xs_handle *xs;
        Domain *domains;
        Conn *dead; /* killed connections, freed at the end of the iteration */
        uint32_t n_paused;
        HvEvtchn ev;
        HvGrants gt;
        bool quit;
        uint8_t buf[HV_MSG_MAX];
        uint32_t words[HV_MSG_MAX_DATA];
};

static void conn_kill(Hvd *hvd, Conn *c);

/* ---- small helpers ---------------------------------------------------------------------- */

static void hvd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void hvd_log(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        fputs("xensim-hvd: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
}

/* Account n descriptors to a domain; false when that would exceed its budget. */
static bool domain_charge(Domain *d, uint32_t n)
{
        if (d->domid != 0 && d->n_fds + n > HV_FDS_PER_DOMAIN)
                return false;
        d->n_fds += n;
        return true;
}

static void domain_refund(Domain *d, uint32_t n)
{
        d->n_fds = d->n_fds >= n ? d->n_fds - n : 0;
}

static Domain *hvd_domain(Hvd *hvd, uint32_t domid)
{
        for (Domain *d = hvd->domains; d; d = d->next) {
                if (d->domid == domid)
                        return d;
        }
        return NULL;
}

static int epoll_add(Hvd *hvd, int fd, void *src)
{
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = src};

        return epoll_ctl(hvd->epfd, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

/* Send one message with optional fds; never blocks. Returns 0 or -errno. */
static int send_msg(int fd, const HvMsg *m, const uint32_t *data, const int *fds, size_t n_fds,
                    uint8_t *buf)
{
        union {
                struct cmsghdr h;
                char b[CMSG_SPACE(sizeof(int) * HV_FDS_PER_MSG)];
        } ctl;
        struct iovec iov;
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        int len = hv_proto_encode(m, data, buf, HV_MSG_MAX);

        if (len < 0)
                return len;
        iov = (struct iovec){.iov_base = buf, .iov_len = (size_t)len};
        if (n_fds > 0) {
                struct cmsghdr *cm;

                memset(&ctl, 0, sizeof(ctl));
                mh.msg_control = ctl.b;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(cm), fds, sizeof(int) * n_fds);
        }
        if (sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
                return -errno;
        return 0;
}

static void reply(Hvd *hvd, Conn *c, HvMsg *m, const uint32_t *data, const int *fds, size_t n_fds)
{
        int r = send_msg(c->fd, m, data, fds, n_fds, hvd->buf);

        /* A client that does not read its replies (or is gone) is disconnected. */
        if (r < 0)
                conn_kill(hvd, c);
}

static void reply_err(Hvd *hvd, Conn *c, uint32_t op, int err)
{
        HvMsg m = {.op = op, .err = err < 0 ? -err : err};

        reply(hvd, c, &m, NULL, NULL, 0);
}

/* ---- event channel doorbells ------------------------------------------------------------ */

static void hvd_raise(void *userdata, uint32_t domid, uint32_t port, HvPort *p)
{
        const uint64_t one = 1;

        /* A full counter (2^64 - 2 unread events) already means "pending". */
        if (p->doorbell >= 0)
                (void)!write(p->doorbell, &one, sizeof(one));
}

/* HvPort.io_flags: the owner was told its peer changed and has not asked since. */
#define PORT_PEER_CHANGED 0x1u

/*
 * Tell a port's owner that its peer changed, once until it asks (HV_OP_EVT_GET_PEER): the
 * messages in flight are bounded by the owner's ports, whatever its peers do.
 */
static void hvd_tell_peer_changed(Hvd *hvd, HvPort *p, uint32_t port)
{
        Conn *c = p->owner;
        HvMsg m = {.op = HV_OP_EVT_PEER_CHANGED, .arg = {port}};

        if (!c || c->dead || (p->io_flags & PORT_PEER_CHANGED))
                return;
        p->io_flags |= PORT_PEER_CHANGED;
        if (send_msg(c->fd, &m, NULL, NULL, 0, hvd->buf) < 0) {
                conn_kill(hvd, c);
                return;
        }
        /* After the send: a client that sees the count move finds the message queued. */
        if (c->news)
                __atomic_fetch_add(c->news, 1, __ATOMIC_RELEASE);
}

static void hvd_unpeer(void *userdata, uint32_t domid, uint32_t port, HvPort *p)
{
        hvd_tell_peer_changed(userdata, p, port);
}

static void hvd_freed(void *userdata, uint32_t domid, uint32_t port, HvPort *p)
{
        Domain *d = hvd_domain(userdata, domid);

        if (p->doorbell >= 0) {
                close(p->doorbell);
                if (d)
                        domain_refund(d, 1);
        }
        p->doorbell = -1;
}

static const HvEvtchnOps hvd_evtchn_ops = {
        .raise = hvd_raise,
        .unpeer = hvd_unpeer,
        .freed = hvd_freed,
};

/* ---- unmap-notify ----------------------------------------------------------------------- */

/* Clear the byte and send the event, as gntalloc/gntdev do when a mapping is released. */
static void unmap_notify(Hvd *hvd, uint32_t domid, int fd, uint64_t pos, uint32_t off,
                         uint32_t port)
{
        if (off != HV_NOTIFY_NONE && fd >= 0) {
                const uint8_t zero = 0;

                if (pwrite(fd, &zero, 1, (off_t)pos) != 1)
                        hvd_log("dom%u: unmap-notify clear failed: %m", domid);
        }
        if (port != HV_NOTIFY_NONE) {
                (void)hv_evtchn_notify(&hvd->ev, domid, port, NULL);
                hv_evtchn_release(&hvd->ev, domid, port);
        }
}

static void share_free(Hvd *hvd, Conn *c, Share *s)
{
        unmap_notify(hvd, c->dom->domid, s->fd, s->notify_off, s->notify_off, s->notify_port);
        for (uint32_t i = 0; i < s->n_pages; i++)
                hv_grant_free(&hvd->gt, c->dom->domid, s->refs[i]);
        free(s->refs);
        close(s->fd);
        if (s->fd_ro >= 0)
                close(s->fd_ro);
        free(s);
        c->n_objects--;
        domain_refund(c->dom, 2);
}

static void map_free(Hvd *hvd, Conn *c, Map *m)
{
        unmap_notify(hvd, c->dom->domid, m->notify_fd, m->notify_pos, m->notify_off,
                     m->notify_port);
        if (m->notify_fd >= 0) {
                close(m->notify_fd);
                domain_refund(c->dom, 1);
        }
        free(m);
        c->n_objects--;
}

/* ---- connections ------------------------------------------------------------------------ */

static void conn_kill(Hvd *hvd, Conn *c)
{
        if (c->dead)
                return;
        c->dead = true;
        c->next_dead = hvd->dead;
        hvd->dead = c;
}

/* Release everything a connection holds: what the kernel does when a device file closes. */
static void conn_free(Hvd *hvd, Conn *c)
{
        Domain *d = c->dom;

        while (c->maps) {
                Map *m = c->maps;

                c->maps = m->next;
                map_free(hvd, c, m);
        }
        while (c->shares) {
                Share *s = c->shares;

                c->shares = s->next;
                share_free(hvd, c, s);
        }
        hv_evtchn_close_owner(&hvd->ev, d->domid, c);
        /* After the ports: closing them may still tell this connection (a loopback pair). */
        if (c->news)
                munmap(c->news, (size_t)sysconf(_SC_PAGESIZE));
        epoll_ctl(hvd->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        domain_refund(d, 1);
        if (c->prev)
                c->prev->next = c->next;
        else
                d->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        d->n_conns--;
        free(c);
        /* Descriptors were freed: listeners paused by EMFILE may accept again. */
        if (hvd->n_paused > 0) {
                for (Domain *x = hvd->domains; x; x = x->next) {
                        struct epoll_event e = {.events = EPOLLIN, .data.ptr = x};

                        if (x->paused &&
                            epoll_ctl(hvd->epfd, EPOLL_CTL_MOD, x->listen_fd, &e) == 0) {
                                x->paused = false;
                                hvd->n_paused--;
                        }
                }
        }
}

static void hvd_reap(Hvd *hvd)
{
        /* Freeing may deliver events that kill more connections: loop until none is left. */
        while (hvd->dead) {
                Conn *c = hvd->dead;

                hvd->dead = c->next_dead;
                conn_free(hvd, c);
        }
}

static void domain_accept(Hvd *hvd, Domain *d)
{
        for (;;) {
                int fd = accept4(d->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                Conn *c;

                if (fd < 0) {
                        if (errno == EMFILE || errno == ENFILE) {
                                /* Level-triggered: stop listening until something closes. */
                                struct epoll_event e = {.events = 0, .data.ptr = d};

                                hvd_log("dom%u: out of descriptors, not accepting for now",
                                        d->domid);
                                if (!d->paused &&
                                    epoll_ctl(hvd->epfd, EPOLL_CTL_MOD, d->listen_fd, &e) == 0) {
                                        d->paused = true;
                                        hvd->n_paused++;
                                }
                        } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
                                hvd_log("dom%u: accept: %m", d->domid);
                        }
                        return;
                }
                if ((d->domid != 0 && d->n_conns >= HV_CONNS_PER_DOMAIN) || !domain_charge(d, 1)) {
                        close(fd);
                        continue;
                }
                if (!(c = calloc(1, sizeof(*c)))) {
                        domain_refund(d, 1);
                        close(fd);
                        continue;
                }
                c->kind = SOURCE_CONN;
                c->dom = d;
                c->fd = fd;
                c->next_id = 1;
                if (epoll_add(hvd, fd, c) < 0) {
                        domain_refund(d, 1);
                        close(fd);
                        free(c);
                        continue;
                }
                c->next = d->conns;
                if (d->conns)
                        d->conns->prev = c;
                d->conns = c;
                d->n_conns++;
        }
}

/* ---- requests --------------------------------------------------------------------------- */

/* Give a newly bound port its doorbell. Returns its fd or -errno (then the port is closed). */
static int evt_new_doorbell(Hvd *hvd, Conn *c, uint32_t port)
{
        HvPort *p = hv_evtchn_port(&hvd->ev, c->dom->domid, port);
        int fd = -1, r = -ENOSPC;

        if (domain_charge(c->dom, 1)) {
                fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
                r = -errno;
                if (fd < 0)
                        domain_refund(c->dom, 1);
        }
        if (fd < 0) {
                (void)hv_evtchn_close(&hvd->ev, c->dom->domid, port, c);
                return r;
        }
        p->doorbell = fd;
        return fd;
}

static void op_evt_bind_unbound(Hvd *hvd, Conn *c, const HvMsg *req)
{
        HvMsg m = {.op = req->op};
        int r = hv_evtchn_alloc_unbound(&hvd->ev, c->dom->domid, req->arg[0], c, &m.arg[0]);

        if (r >= 0)
                r = evt_new_doorbell(hvd, c, m.arg[0]);
        if (r < 0) {
                reply_err(hvd, c, req->op, r);
                return;
        }
        reply(hvd, c, &m, NULL, &r, 1);
}

static void op_evt_bind_interdomain(Hvd *hvd, Conn *c, const HvMsg *req)
{
        uint32_t domid = c->dom->domid, rdom = req->arg[0];
        HvMsg m = {.op = req->op};
        HvPort *l, *rp;
        int fds[2];
        int r = hv_evtchn_bind_interdomain(&hvd->ev, domid, rdom, req->arg[1], c, &m.arg[0]);

        if (r >= 0)
                r = evt_new_doorbell(hvd, c, m.arg[0]);
        if (r < 0) {
                reply_err(hvd, c, req->op, r);
                return;
        }
        l = hv_evtchn_port(&hvd->ev, domid, m.arg[0]);
        rp = hv_evtchn_port(&hvd->ev, l->remote_domid, l->remote_port);
        fds[0] = l->doorbell;
        fds[1] = rp->doorbell;
        /* As Xen does: raise the new port once, in case a notify was lost before the bind. */
        hvd_raise(hvd, domid, m.arg[0], l);
        /*
         * Tell the other end before answering: once the binder has its answer it may notify,
         * and the other end's answer to that must find our news already queued, or it would
         * go to no peer and be lost.
         */
        hvd_tell_peer_changed(hvd, rp, l->remote_port);
        reply(hvd, c, &m, NULL, fds, fds[1] >= 0 ? 2 : 1);
}

static void op_evt_get_peer(Hvd *hvd, Conn *c, const HvMsg *req)
{
        HvPort *p = hv_evtchn_port(&hvd->ev, c->dom->domid, req->arg[0]);
        HvMsg m = {.op = req->op};
        HvPort *rp;

        if (!p || p->owner != c) {
                reply_err(hvd, c, req->op, p ? ENOTCONN : EINVAL);
                return;
        }
        p->io_flags &= (uint8_t)~PORT_PEER_CHANGED;
        rp = p->state == HV_EVTCHN_INTERDOMAIN
                     ? hv_evtchn_port(&hvd->ev, p->remote_domid, p->remote_port)
                     : NULL;
        if (!rp || rp->doorbell < 0) {
                reply(hvd, c, &m, NULL, NULL, 0);
                return;
        }
        m.arg[0] = 1;
        reply(hvd, c, &m, NULL, &rp->doorbell, 1);
}

/* HV_OP_EVT_NEWS: the page the client checks before a notify (see hv-proto.h). */
static void op_evt_news(Hvd *hvd, Conn *c, const HvMsg *req)
{
        long page = sysconf(_SC_PAGESIZE);
        HvMsg m = {.op = req->op};
        void *p = MAP_FAILED;
        int fd, r = -EEXIST;

        if (c->news) {
                reply_err(hvd, c, req->op, r);
                return;
        }
        fd = memfd_create("xensim-evtchn-news", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0 || ftruncate(fd, page) < 0 ||
            fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0 ||
            (p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) ==
                    MAP_FAILED) {
                r = -errno;
                if (fd >= 0)
                        close(fd);
                reply_err(hvd, c, req->op, r);
                return;
        }
        c->news = p;
        reply(hvd, c, &m, NULL, &fd, 1);
        /* The mapping is all the daemon keeps: no descriptor is charged to the domain. */
        close(fd);
}

static void op_evt(Hvd *hvd, Conn *c, const HvMsg *req)
{
        uint32_t domid = c->dom->domid;
        HvMsg m = {.op = req->op};
        int r = 0;

        switch (req->op) {
        case HV_OP_EVT_BIND_UNBOUND:
                op_evt_bind_unbound(hvd, c, req);
                return;
        case HV_OP_EVT_BIND_INTERDOMAIN:
                op_evt_bind_interdomain(hvd, c, req);
                return;
        case HV_OP_EVT_GET_PEER:
                op_evt_get_peer(hvd, c, req);
                return;
        case HV_OP_EVT_NEWS:
                op_evt_news(hvd, c, req);
                return;
        case HV_OP_EVT_UNBIND:
                r = hv_evtchn_close(&hvd->ev, domid, req->arg[0], c);
                break;
        case HV_OP_EVT_STATUS:
                /* Like EVTCHNOP_status: one's own ports, or any port for dom0. */
                if (req->arg[0] == 0x7FF0u) /* DOMID_SELF */
                        m.arg[3] = domid;
                else
                        m.arg[3] = req->arg[0];
                if (domid != 0 && m.arg[3] != domid)
                        r = -EPERM;
                else
                        r = hv_evtchn_status(&hvd->ev, m.arg[3], req->arg[1], &m.arg[0], &m.arg[1],
                                             &m.arg[2]);
                break;
        default:
                r = -EOPNOTSUPP;
        }
        if (r < 0) {
                reply_err(hvd, c, req->op, r);
                return;
        }
        reply(hvd, c, &m, NULL, NULL, 0);
}

/*
 * Validate an unmap-notify request and hold its port. The byte offset must lie in the page
 * and, as in gntdev, a byte can only be cleared through a writable mapping.
 */
static int notify_setup(Hvd *hvd, uint32_t domid, uint32_t n_pages, bool writable, uint32_t off,
                        uint32_t port)
{
        if (off == HV_NOTIFY_NONE && port == HV_NOTIFY_NONE)
                return 0;
        if (n_pages != 1)
                return -EINVAL;
        if (off != HV_NOTIFY_NONE && (off >= HV_PAGE_SIZE || !writable))
                return -EINVAL;
        if (port != HV_NOTIFY_NONE)
                return hv_evtchn_hold(&hvd->ev, domid, port);
        return 0;
}

static void op_gnt_share(Hvd *hvd, Conn *c, const HvMsg *req)
{
        uint32_t domid = c->dom->domid, n = req->arg[1];
        uint32_t off = req->arg[3], port = req->arg[4];
        HvMsg m = {.op = req->op};
        Share *s;
        int r;

        if (c->n_objects >= HV_OBJECTS_PER_CONN || !domain_charge(c->dom, 2)) {
                reply_err(hvd, c, req->op, ENOSPC);
                return;
        }
        r = notify_setup(hvd, domid, n, true, off, port);
        if (r < 0) {
                domain_refund(c->dom, 2);
                reply_err(hvd, c, req->op, r);
                return;
        }
        s = calloc(1, sizeof(*s));
        if (!s || !(s->refs = calloc(n, sizeof(*s->refs)))) {
                r = -ENOMEM;
                goto fail_alloc;
        }
        s->fd_ro = -1;
        s->fd = memfd_create("xensim-grant", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (s->fd < 0) {
                r = -errno;
                goto fail_alloc;
        }
        /*
         * Sealed size: a granter that could shrink the file would make every mapper's access
         * fault (SIGBUS), which real grants cannot do.
         */
        if (ftruncate(s->fd, (off_t)n * HV_PAGE_SIZE) < 0 ||
            fcntl(s->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
                r = -errno;
                goto fail_fd;
        }
        for (s->n_pages = 0; s->n_pages < n; s->n_pages++) {
                r = hv_grant_alloc(&hvd->gt, domid, req->arg[0], !req->arg[2], s, s->n_pages,
                                   &s->refs[s->n_pages]);
                if (r < 0)
                        goto fail_grants;
        }
        s->id = c->next_id++;
        s->notify_off = off;
        s->notify_port = port;
        s->next = c->shares;
        c->shares = s;
        c->n_objects++;
        m.arg[0] = s->id;
        m.n_data = n;
        reply(hvd, c, &m, s->refs, &s->fd, 1);
        return;

fail_grants:
        for (uint32_t i = 0; i < s->n_pages; i++)
                hv_grant_free(&hvd->gt, domid, s->refs[i]);
fail_fd:
        close(s->fd);
fail_alloc:
        if (s)
                free(s->refs);
        free(s);
        if (port != HV_NOTIFY_NONE)
                hv_evtchn_release(&hvd->ev, domid, port);
        domain_refund(c->dom, 2);
        reply_err(hvd, c, req->op, r);
}

static int share_fd_for(Share *s, bool writable)
{
        char path[64];

        if (writable)
                return s->fd;
        if (s->fd_ro < 0) {
                /* A read-only open file description: PROT_WRITE mappings of it fail. The
                 * path is at most 25 bytes: it cannot be truncated. */
                (void)snprintf(path, sizeof(path), "/proc/self/fd/%d", s->fd);
                s->fd_ro = open(path, O_RDONLY | O_CLOEXEC);
        }
        return s->fd_ro;
}

static void op_gnt_map(Hvd *hvd, Conn *c, const HvMsg *req, const uint8_t *data)
{
        uint32_t domid = c->dom->domid, n = req->arg[0];
        bool writable = req->arg[1] != 0;
        uint32_t off = req->arg[2], port = req->arg[3];
        HvMsg m = {.op = req->op};
        Share *backs[HV_FDS_PER_MSG];
        int fds[HV_FDS_PER_MSG];
        uint32_t n_fds = 0;
        Map *map;
        int r;

        /* hv_proto_validate_request() let only 1..HV_PAGES_PER_REQ grants through, so the loop
         * below fills backs[0] at least. */
        assert(n >= 1 && n <= HV_PAGES_PER_REQ);
        if (c->n_objects >= HV_OBJECTS_PER_CONN) {
                reply_err(hvd, c, req->op, ENOSPC);
                return;
        }
        for (uint32_t i = 0; i < n; i++) {
                uint32_t granter = hv_proto_word(data, 2 * (size_t)i);
                uint32_t ref = hv_proto_word(data, 2 * (size_t)i + 1);
                void *back;
                uint32_t page, k;

                r = hv_grant_check_map(&hvd->gt, granter, ref, domid, writable, &back, &page);
                if (r < 0) {
                        reply_err(hvd, c, req->op, r);
                        return;
                }
                for (k = 0; k < n_fds && backs[k] != back; k++)
                        ;
                if (k == n_fds) {
                        if (n_fds == HV_FDS_PER_MSG) {
                                reply_err(hvd, c, req->op, E2BIG);
                                return;
                        }
                        backs[n_fds] = back;
                        fds[n_fds] = share_fd_for(back, writable);
                        if (fds[n_fds] < 0) {
                                reply_err(hvd, c, req->op, errno);
                                return;
                        }
                        n_fds++;
                }
                hvd->words[i] = (k << 16) | page;
        }
        if (off != HV_NOTIFY_NONE && !domain_charge(c->dom, 1)) {
                reply_err(hvd, c, req->op, ENOSPC);
                return;
        }
        r = notify_setup(hvd, domid, n, writable, off, port);
        map = r < 0 ? NULL : calloc(1, sizeof(*map));
        if (map && off != HV_NOTIFY_NONE) {
                map->notify_fd = fcntl(backs[0]->fd, F_DUPFD_CLOEXEC, 0);
                if (map->notify_fd < 0) {
                        free(map);
                        map = NULL;
                }
        }
        if (!map) {
                if (r >= 0 && port != HV_NOTIFY_NONE)
                        hv_evtchn_release(&hvd->ev, domid, port);
                if (off != HV_NOTIFY_NONE)
                        domain_refund(c->dom, 1);
                reply_err(hvd, c, req->op, r < 0 ? r : -ENOMEM);
                return;
        }
        if (off == HV_NOTIFY_NONE)
                map->notify_fd = -1;
        else
                map->notify_pos = (uint64_t)(hvd->words[0] & 0xffffu) * HV_PAGE_SIZE + off;
        map->notify_off = off;
        map->notify_port = port;
        map->id = c->next_id++;
        map->next = c->maps;
        c->maps = map;
        c->n_objects++;
        m.arg[0] = map->id;
        m.arg[1] = n_fds;
        m.n_data = n;
        reply(hvd, c, &m, hvd->words, fds, n_fds);
}

static void op_gnt_unshare(Hvd *hvd, Conn *c, const HvMsg *req)
{
        HvMsg m = {.op = req->op};

        for (Share **p = &c->shares; *p; p = &(*p)->next) {
                if ((*p)->id == req->arg[0]) {
                        Share *s = *p;

                        *p = s->next;
                        share_free(hvd, c, s);
                        reply(hvd, c, &m, NULL, NULL, 0);
                        return;
                }
        }
        reply_err(hvd, c, req->op, EINVAL);
}

static void op_gnt_unmap(Hvd *hvd, Conn *c, const HvMsg *req)
{
        HvMsg m = {.op = req->op};

        for (Map **p = &c->maps; *p; p = &(*p)->next) {
                if ((*p)->id == req->arg[0]) {
                        Map *map = *p;

                        *p = map->next;
                        map_free(hvd, c, map);
                        reply(hvd, c, &m, NULL, NULL, 0);
                        return;
                }
        }
        reply_err(hvd, c, req->op, EINVAL);
}

/* The first live domain with a domid at or above arg0 (what xc_domain_getinfo walks). */
static void op_dominfo(Hvd *hvd, Conn *c, const HvMsg *req)
{
        HvMsg m = {.op = req->op};
        Domain *best = NULL;

        for (Domain *d = hvd->domains; d; d = d->next) {
                if (d->domid >= req->arg[0] && (!best || d->domid < best->domid))
                        best = d;
        }
        if (!best) {
                reply_err(hvd, c, req->op, ESRCH);
                return;
        }
        m.arg[0] = best->domid;
        reply(hvd, c, &m, NULL, NULL, 0);
}

static void conn_dispatch(Hvd *hvd, Conn *c, const HvMsg *req, const uint8_t *data)
{
        switch (req->op) {
        case HV_OP_GNT_SHARE:
                op_gnt_share(hvd, c, req);
                break;
        case HV_OP_GNT_UNSHARE:
                op_gnt_unshare(hvd, c, req);
                break;
        case HV_OP_GNT_MAP:
                op_gnt_map(hvd, c, req, data);
                break;
        case HV_OP_GNT_UNMAP:
                op_gnt_unmap(hvd, c, req);
                break;
        case HV_OP_DOMINFO:
                op_dominfo(hvd, c, req);
                break;
        default:
                op_evt(hvd, c, req);
                break;
        }
}

static void conn_process(Hvd *hvd, Conn *c, uint32_t events)
{
        for (int i = 0; i < HVD_BUDGET_PER_CONN && !c->dead; i++) {
                HvMsg req;
                const uint8_t *data;
                ssize_t n = recv(c->fd, hvd->buf, sizeof(hvd->buf), MSG_DONTWAIT | MSG_TRUNC);

                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                break;
                        conn_kill(hvd, c);
                        break;
                }
                /* EOF, an oversized or a malformed message: disconnect this client only. */
                if (n == 0 || (size_t)n > sizeof(hvd->buf) ||
                    hv_proto_decode(hvd->buf, (size_t)n, &req, &data) < 0 ||
                    hv_proto_validate_request(&req) < 0) {
                        conn_kill(hvd, c);
                        break;
                }
                conn_dispatch(hvd, c, &req, data);
        }
        if ((events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN))
                conn_kill(hvd, c);
}

/* ---- domains ---------------------------------------------------------------------------- */

static int domain_listen(Hvd *hvd, Domain *d)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        char tmp[sizeof(sa.sun_path)];
        int fd, n;

        n = snprintf(d->path, sizeof(d->path), "%s/dom%u.hv.sock", hvd->dir, d->domid);
        if (n < 0 || (size_t)n >= sizeof(d->path))
                return -ENAMETOOLONG;
        n = snprintf(tmp, sizeof(tmp), "%s/.dom%u.hv.sock.new", hvd->dir, d->domid);
        if (n < 0 || (size_t)n >= sizeof(tmp))
                return -ENAMETOOLONG;
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        memcpy(sa.sun_path, tmp, strlen(tmp) + 1);
        (void)unlink(tmp);
        /* Bind under a temporary name and rename: the socket's path exists only once it
         * accepts connections. */
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0 ||
            rename(tmp, d->path) < 0) {
                int r = -errno;

                (void)unlink(tmp);
                close(fd);
                return r;
        }
        d->listen_fd = fd;
        return 0;
}

static int domain_add(Hvd *hvd, uint32_t domid)
{
        Domain *d;
        int r;

        if (domid > HV_DOMID_MAX)
                return -EINVAL;
        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->kind = SOURCE_LISTEN;
        d->hvd = hvd;
        d->domid = domid;
        d->listen_fd = -1;
        r = hv_evtchn_add_domain(&hvd->ev, domid);
        if (r < 0)
                goto fail;
        r = hv_grant_add_domain(&hvd->gt, domid);
        if (r < 0)
                goto fail_ev;
        r = domain_listen(hvd, d);
        if (r < 0)
                goto fail_gt;
        r = epoll_add(hvd, d->listen_fd, d);
        if (r < 0)
                goto fail_sock;
        d->seen = true;
        d->next = hvd->domains;
        hvd->domains = d;
        return 0;

fail_sock:
        (void)unlink(d->path);
        close(d->listen_fd);
fail_gt:
        hv_grant_remove_domain(&hvd->gt, domid);
fail_ev:
        hv_evtchn_remove_domain(&hvd->ev, domid);
fail:
        free(d);
        return r;
}

/*
 * A released domain: no new connections, its handles closed (with their unmap-notifies, as
 * if its processes had been killed, which xensim does first anyway), its grants revoked and
 * its event channels closed, so that peers' ports return to unbound.
 */
static void domain_remove(Hvd *hvd, Domain *d)
{
        for (Domain **p = &hvd->domains; *p; p = &(*p)->next) {
                if (*p == d) {
                        *p = d->next;
                        break;
                }
        }
        epoll_ctl(hvd->epfd, EPOLL_CTL_DEL, d->listen_fd, NULL);
        close(d->listen_fd);
        (void)unlink(d->path);
        if (d->paused)
                hvd->n_paused--;
        for (Conn *c = d->conns; c; c = c->next)
                conn_kill(hvd, c);
        hvd_reap(hvd);
        hv_grant_remove_domain(&hvd->gt, d->domid);
        hv_evtchn_remove_domain(&hvd->ev, d->domid);
        free(d);
}

static bool parse_domid(const char *s, uint32_t *ret)
{
        char *end;
        unsigned long v;

        if (!s[0] || s[0] < '0' || s[0] > '9')
                return false;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v > HV_DOMID_MAX)
                return false;
        *ret = (uint32_t)v;
        return true;
}

/* Bring our domains in line with /local/domain (domain 0 always exists). */
static int hvd_scan(Hvd *hvd)
{
        unsigned int n = 0;
        char **names = xs_directory(hvd->xs, XBT_NULL, "/local/domain", &n);
        Domain *d, *next;

        if (!names) {
                if (errno != ENOENT)
                        return -errno;
                n = 0; /* no /local/domain: no domain but 0 */
        }
        for (d = hvd->domains; d; d = d->next)
                d->seen = d->domid == 0;
        for (unsigned int i = 0; i < n; i++) {
                uint32_t domid;

                if (!parse_domid(names[i], &domid))
                        continue;
                d = hvd_domain(hvd, domid);
                if (d) {
                        d->seen = true;
                } else {
                        int r = domain_add(hvd, domid);

                        if (r < 0)
                                hvd_log("dom%u: cannot add: %s", domid, strerror(-r));
                }
        }
        free(names);
        for (d = hvd->domains; d; d = next) {
                next = d->next;
                if (!d->seen)
                        domain_remove(hvd, d);
        }
        return 0;
}

static int hvd_xs_process(Hvd *hvd)
{
        char **w;
        bool rescan = false;

        while ((w = xs_check_watch(hvd->xs))) {
                rescan = true;
                free(w);
        }
        if (errno != EAGAIN) {
                hvd_log("lost the xenstore connection: %m");
                return -EPIPE;
        }
        if (rescan) {
                int r = hvd_scan(hvd);

                /* A failed listing is retried at the next domain change, not fatal. */
                if (r < 0)
                        hvd_log("cannot list /local/domain: %s", strerror(-r));
        }
        return 0;
}

/* ---- set-up and loop -------------------------------------------------------------------- */

/* D/name into buf; false if it does not fit. */
static bool dir_path(const Hvd *hvd, const char *name, char *buf, size_t size)
{
        int n = snprintf(buf, size, "%s/%s", hvd->dir, name);

        return n > 0 && (size_t)n < size;
}

static int hvd_write_ready(Hvd *hvd)
{
        char path[PATH_MAX], tmp[PATH_MAX];
        FILE *f;

        if (!dir_path(hvd, "hvd.ready", path, sizeof(path)) ||
            !dir_path(hvd, ".hvd.ready.new", tmp, sizeof(tmp)))
                return -ENAMETOOLONG;
        f = fopen(tmp, "we");
        if (!f)
                return -errno;
        fprintf(f, "%ld\n", (long)getpid());
        if (fclose(f) != 0 || rename(tmp, path) < 0)
                return -errno;
        return 0;
}

static int hvd_init(Hvd *hvd, const char *dir)
{
        char xs_path[PATH_MAX];
        struct rlimit nofile;
        sigset_t mask;
        int r;

        /*
         * Every share, notify mapping and bound port holds a descriptor here: use all the
         * descriptors we may (the per-domain limits in hv-limits.h bound each domain's share).
         */
        if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
                nofile.rlim_cur = nofile.rlim_max;
                (void)setrlimit(RLIMIT_NOFILE, &nofile);
        }
        hvd->dir = dir;
        hvd->sig_kind = SOURCE_SIGNAL;
        hvd->xs_kind = SOURCE_XS;
        hvd->sig_fd = -1;
        hv_evtchn_init(&hvd->ev, &hvd_evtchn_ops, hvd);
        hv_grant_init(&hvd->gt);
        hvd->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (hvd->epfd < 0)
                return -errno;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        (void)signal(SIGPIPE, SIG_IGN); /* cannot fail: a valid signal and handler */
        hvd->sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (hvd->sig_fd < 0)
                return -errno;
        r = epoll_add(hvd, hvd->sig_fd, &hvd->sig_kind);
        if (r < 0)
                return r;

        /* libxenstore finds its socket in the environment: we are domain 0. */
        if ((size_t)snprintf(xs_path, sizeof(xs_path), "%s/dom0.sock", dir) >= sizeof(xs_path))
                return -ENAMETOOLONG;
        setenv("XENSTORED_PATH", xs_path, 1);
        hvd->xs = xs_open(0);
        if (!hvd->xs) {
                hvd_log("cannot connect to xensimd at %s: %m", xs_path);
                return -ECONNREFUSED;
        }
        r = domain_add(hvd, 0);
        if (r < 0)
                return r;
        if (!xs_watch(hvd->xs, "@introduceDomain", "hvd-introduce") ||
            !xs_watch(hvd->xs, "@releaseDomain", "hvd-release")) {
                hvd_log("cannot watch domain changes: %m");
                return -EIO;
        }
        r = hvd_scan(hvd);
        if (r < 0)
                return r;
        r = epoll_add(hvd, xs_fileno(hvd->xs), &hvd->xs_kind);
        if (r < 0)
                return r;
        return hvd_write_ready(hvd);
}

static void hvd_deinit(Hvd *hvd)
{
        char path[PATH_MAX];

        while (hvd->domains)
                domain_remove(hvd, hvd->domains);
        if (hvd->xs)
                xs_close(hvd->xs);
        if (hvd->sig_fd >= 0)
                close(hvd->sig_fd);
        if (hvd->epfd >= 0)
                close(hvd->epfd);
        hv_grant_deinit(&hvd->gt);
        hv_evtchn_deinit(&hvd->ev);
        if (dir_path(hvd, "hvd.ready", path, sizeof(path)))
                (void)unlink(path);
}

static int hvd_run(Hvd *hvd)
{
        struct epoll_event evs[64];

        while (!hvd->quit) {
                int n = epoll_wait(hvd->epfd, evs, 64, -1);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                for (int i = 0; i < n; i++) {
                        SourceKind *k = evs[i].data.ptr;

                        switch (*k) {
                        case SOURCE_LISTEN:
                                domain_accept(hvd, (Domain *)(void *)k);
                                break;
                        case SOURCE_CONN: {
                                Conn *c = (Conn *)(void *)k;

                                if (!c->dead)
                                        conn_process(hvd, c, evs[i].events);
                                break;
                        }
                        case SOURCE_XS:
                                /* A rescan may free domains this batch still points at. */
                                hvd_reap(hvd);
                                if (hvd_xs_process(hvd) < 0)
                                        return -EPIPE;
                                goto next_batch;
                        case SOURCE_SIGNAL:
                                hvd->quit = true;
                                break;
                        }
                }
        next_batch:
                hvd_reap(hvd);
        }
        return 0;
}

static void usage(FILE *f)
{
        fputs("usage: xensim-hvd [--dir D]\n"
              "Grant tables and event channels for the xensim instance in D (default\n"
              "$XENSIM_DIR, else /tmp/xensim-$UID). xensimd must already serve D/dom0.sock.\n"
              "Writes D/hvd.ready (containing its pid) once domain 0's D/dom0.hv.sock listens;\n"
              "runs in the foreground until SIGTERM.\n",
              f);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"dir", required_argument, NULL, 'd'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        char def_dir[64];
        const char *dir = getenv("XENSIM_DIR");
        Hvd *hvd;
        int o, r;

        while ((o = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
                switch (o) {
                case 'd':
                        dir = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc) {
                usage(stderr);
                return 2;
        }
        if (!dir || !dir[0]) {
                /* At most 22 bytes: cannot be truncated. */
                (void)snprintf(def_dir, sizeof(def_dir), "/tmp/xensim-%u", (unsigned)getuid());
                dir = def_dir;
        }
        /* The Hvd is large (message buffers): keep it off the stack. */
        hvd = calloc(1, sizeof(*hvd));
        if (!hvd)
                return 1;
        hvd->epfd = -1;
        r = hvd_init(hvd, dir);
        if (r < 0)
                hvd_log("start-up failed: %s", strerror(-r));
        else
                r = hvd_run(hvd);
        hvd_deinit(hvd);
        free(hvd);
        return r < 0 ? 1 : 0;
}
