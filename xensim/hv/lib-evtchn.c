/*
 * Drop-in libxenevtchn.so.1 for xensim: the xenevtchn_* API of Xen 4.17 on top of
 * xensim-hvd. A handle is a request connection plus an event stream (the pollable fd that
 * xenevtchn_fd returns): the daemon writes one 32-bit port per delivered event, as reading
 * /dev/xen/evtchn returns them. Ports bound through this handle are remembered locally so that
 * notify can fail like Linux (ENOTCONN) without a round trip; notify and unmask are one send.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xenevtchn.h>

#include "hv-client.h"
#include "hv-limits.h"

/* No restriction set by xenevtchn_restrict. */
#define EVTCHN_UNRESTRICTED UINT32_MAX

struct xenevtchn_handle {
        HvClient client;
        int evt_fd;
        uint32_t restrict_domid;
        uint8_t bound[HV_PORTS_PER_DOMAIN / 8]; /* atomic bytes: ports bound by this handle */
};

#define XENEVTCHN_EXPORT __attribute__((visibility("default")))

static bool evtchn_is_bound(xenevtchn_handle *h, uint32_t port)
{
        if (port >= HV_PORTS_PER_DOMAIN)
                return false;
        return __atomic_load_n(&h->bound[port / 8], __ATOMIC_RELAXED) & (1u << (port % 8));
}

static void evtchn_set_bound(xenevtchn_handle *h, uint32_t port, bool on)
{
        uint8_t bit = (uint8_t)(1u << (port % 8));

        if (port >= HV_PORTS_PER_DOMAIN)
                return;
        if (on)
                __atomic_fetch_or(&h->bound[port / 8], bit, __ATOMIC_RELAXED);
        else
                __atomic_fetch_and(&h->bound[port / 8], (uint8_t)~bit, __ATOMIC_RELAXED);
}

static int fail(int r)
{
        errno = -r;
        return -1;
}

XENEVTCHN_EXPORT xenevtchn_handle *xenevtchn_open(struct xentoollog_logger *logger,
                                                  unsigned int flags)
{
        xenevtchn_handle *h = calloc(1, sizeof(*h));
        HvMsg req = {.op = HV_OP_EVT_ATTACH}, rep;
        size_t n_fds = 0;
        int r;

        if (!h)
                return NULL;
        h->restrict_domid = EVTCHN_UNRESTRICTED;
        h->evt_fd = -1;
        r = hv_client_open(&h->client, !(flags & XENEVTCHN_NO_CLOEXEC));
        if (r < 0)
                goto fail;
        r = hv_client_call(&h->client, &req, NULL, &rep, NULL, 0, &h->evt_fd, 1, &n_fds);
        if (r == 0 && n_fds != 1)
                r = -EPROTO;
        if (r < 0)
                goto fail;
        if (flags & XENEVTCHN_NO_CLOEXEC) {
                int fl = fcntl(h->evt_fd, F_GETFD);

                if (fl >= 0)
                        (void)fcntl(h->evt_fd, F_SETFD, fl & ~FD_CLOEXEC);
        }
        return h;
fail:
        hv_client_close(&h->client);
        free(h);
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
        if (!xce)
                return 0;
        if (xce->evt_fd >= 0)
                close(xce->evt_fd);
        hv_client_close(&xce->client);
        free(xce);
        return 0;
}

XENEVTCHN_EXPORT int xenevtchn_fd(xenevtchn_handle *xce)
{
        return xce->evt_fd;
}

XENEVTCHN_EXPORT int xenevtchn_notify(xenevtchn_handle *xce, evtchn_port_t port)
{
        HvMsg req = {.op = HV_OP_EVT_NOTIFY, .arg = {port}};

        if (port >= HV_PORTS_PER_DOMAIN)
                return fail(-EINVAL);
        if (!evtchn_is_bound(xce, port))
                return fail(-ENOTCONN);
        return hv_client_send(&xce->client, &req) < 0 ? -1 : 0;
}

static xenevtchn_port_or_error_t evtchn_bind(xenevtchn_handle *xce, HvMsg *req)
{
        HvMsg rep;
        int r = hv_client_call(&xce->client, req, NULL, &rep, NULL, 0, NULL, 0, NULL);

        if (r < 0)
                return fail(r);
        if (rep.arg[0] == 0 || rep.arg[0] >= HV_PORTS_PER_DOMAIN)
                return fail(-EPROTO);
        evtchn_set_bound(xce, rep.arg[0], true);
        return (xenevtchn_port_or_error_t)rep.arg[0];
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

        if (port >= HV_PORTS_PER_DOMAIN)
                return fail(-EINVAL);
        if (!evtchn_is_bound(xce, port))
                return fail(-ENOTCONN);
        r = hv_client_call(&xce->client, &req, NULL, &rep, NULL, 0, NULL, 0, NULL);
        if (r < 0)
                return fail(r);
        evtchn_set_bound(xce, port, false);
        return 0;
}

XENEVTCHN_EXPORT xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *xce)
{
        uint32_t port;
        size_t got = 0;

        while (got < sizeof(port)) {
                ssize_t n = read(xce->evt_fd, (uint8_t *)&port + got, sizeof(port) - got);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN && got > 0)
                                continue;
                        return -1;
                }
                if (n == 0) {
                        errno = EIO; /* the daemon went away */
                        return -1;
                }
                got += (size_t)n;
        }
        return (xenevtchn_port_or_error_t)port;
}

XENEVTCHN_EXPORT int xenevtchn_unmask(xenevtchn_handle *xce, evtchn_port_t port)
{
        HvMsg req = {.op = HV_OP_EVT_UNMASK, .arg = {port}};

        /* Like a write to /dev/xen/evtchn: ports not bound by this handle are ignored. */
        if (!evtchn_is_bound(xce, port))
                return 0;
        return hv_client_send(&xce->client, &req) < 0 ? -1 : 0;
}

XENEVTCHN_EXPORT int xenevtchn_restrict(xenevtchn_handle *xce, domid_t domid)
{
        if (xce->restrict_domid != EVTCHN_UNRESTRICTED && xce->restrict_domid != domid)
                return fail(-EPERM);
        xce->restrict_domid = domid;
        return 0;
}
