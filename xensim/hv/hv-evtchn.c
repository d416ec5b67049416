/*
 * Event channel state machine (see hv-evtchn.h). Invariants: a port is FREE iff owner is NULL
 * and it is not orphaned; a FREE port has no doorbell; an INTERDOMAIN port's peer is INTERDOMAIN
 * and points back at it; only ports with n_holds > 0 can be orphaned.
 */
#include "hv-evtchn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hv-limits.h"
#include "hv-proto.h"

/* Xen's DOMID_SELF: "the calling domain" in alloc_unbound and bind_interdomain. */
#define HV_DOMID_SELF 0x7FF0u

void hv_evtchn_init(HvEvtchn *ev, const HvEvtchnOps *ops, void *userdata)
{
        memset(ev, 0, sizeof(*ev));
        ev->ops = ops;
        ev->userdata = userdata;
}

static HvEvtchnDomain *evtchn_domain(const HvEvtchn *ev, uint32_t domid)
{
        if (domid >= ev->n_domains)
                return NULL;
        return ev->domains[domid];
}

HvPort *hv_evtchn_port(const HvEvtchn *ev, uint32_t domid, uint32_t port)
{
        HvEvtchnDomain *d = evtchn_domain(ev, domid);

        if (!d || port == 0 || port >= HV_PORTS_PER_DOMAIN)
                return NULL;
        return &d->ports[port];
}

void hv_evtchn_deinit(HvEvtchn *ev)
{
        for (size_t i = 0; i < ev->n_domains; i++) {
                if (ev->domains[i]) {
                        free(ev->domains[i]->ports);
                        free(ev->domains[i]);
                }
        }
        free(ev->domains);
        memset(ev, 0, sizeof(*ev));
}

bool hv_evtchn_has_domain(const HvEvtchn *ev, uint32_t domid)
{
        return evtchn_domain(ev, domid) != NULL;
}

int hv_evtchn_add_domain(HvEvtchn *ev, uint32_t domid)
{
        HvEvtchnDomain *d;

        if (domid > HV_DOMID_MAX)
                return -EINVAL;
        if (evtchn_domain(ev, domid))
                return -EEXIST;
        if (domid >= ev->n_domains) {
                size_t n = domid + 1u;
                HvEvtchnDomain **v = realloc(ev->domains, n * sizeof(HvEvtchnDomain *));

                if (!v)
                        return -ENOMEM;
                memset(v + ev->n_domains, 0, (n - ev->n_domains) * sizeof(HvEvtchnDomain *));
                ev->domains = v;
                ev->n_domains = n;
        }
        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->ports = calloc(HV_PORTS_PER_DOMAIN, sizeof(*d->ports));
        if (!d->ports) {
                free(d);
                return -ENOMEM;
        }
        for (uint32_t p = 0; p < HV_PORTS_PER_DOMAIN; p++)
                d->ports[p].doorbell = -1;
        d->domid = (uint16_t)domid;
        ev->domains[domid] = d;
        return 0;
}

static int evtchn_alloc_port(HvEvtchnDomain *d, uint32_t *ret_port)
{
        for (uint32_t p = 1; p < HV_PORTS_PER_DOMAIN; p++) {
                if (d->ports[p].state == HV_EVTCHN_FREE && !d->ports[p].orphaned) {
                        *ret_port = p;
                        return 0;
                }
        }
        return -ENOSPC;
}

/* Free a port; its interdomain peer (if any) returns to unbound for this domain. */
static void evtchn_free(HvEvtchn *ev, uint32_t domid, uint32_t port, HvPort *p)
{
        if (p->state == HV_EVTCHN_FREE && !p->orphaned)
                return;
        if (p->state == HV_EVTCHN_INTERDOMAIN) {
                uint32_t rdom = p->remote_domid, rport = p->remote_port;
                HvPort *r = hv_evtchn_port(ev, rdom, rport);

                if (r && r->state == HV_EVTCHN_INTERDOMAIN && r->remote_domid == domid &&
                    r->remote_port == port) {
                        r->state = HV_EVTCHN_UNBOUND;
                        r->remote_port = 0;
                        ev->ops->unpeer(ev->userdata, rdom, rport, r);
                }
        }
        ev->ops->freed(ev->userdata, domid, port, p);
        memset(p, 0, sizeof(*p));
        p->doorbell = -1;
}

/* Close on behalf of its owner: orphan while held, else free. */
static void evtchn_close_port(HvEvtchn *ev, uint32_t domid, uint32_t port, HvPort *p)
{
        if (p->n_holds > 0) {
                p->owner = NULL;
                p->orphaned = true;
                return;
        }
        evtchn_free(ev, domid, port, p);
}

void hv_evtchn_remove_domain(HvEvtchn *ev, uint32_t domid)
{
        HvEvtchnDomain *d = evtchn_domain(ev, domid);

        if (!d)
                return;
        for (uint32_t p = 1; p < HV_PORTS_PER_DOMAIN; p++)
                evtchn_free(ev, domid, p, &d->ports[p]);
        free(d->ports);
        free(d);
        ev->domains[domid] = NULL;
}

int hv_evtchn_alloc_unbound(HvEvtchn *ev, uint32_t domid, uint32_t remote_domid, void *owner,
                            uint32_t *ret_port)
{
        HvEvtchnDomain *d = evtchn_domain(ev, domid);
        uint32_t port;
        int r;

        if (!d)
                return -ESRCH;
        if (remote_domid == HV_DOMID_SELF)
                remote_domid = domid;
        if (remote_domid > HV_DOMID_MAX)
                return -EINVAL;
        r = evtchn_alloc_port(d, &port);
        if (r < 0)
                return r;
        d->ports[port] = (HvPort){
                .state = HV_EVTCHN_UNBOUND,
                .remote_domid = (uint16_t)remote_domid,
                .owner = owner,
                .doorbell = -1,
        };
        *ret_port = port;
        return 0;
}

int hv_evtchn_bind_interdomain(HvEvtchn *ev, uint32_t domid, uint32_t remote_domid,
                               uint32_t remote_port, void *owner, uint32_t *ret_port)
{
        HvEvtchnDomain *d = evtchn_domain(ev, domid);
        HvPort *r, *l;
        uint32_t port;
        int ret;

        if (!d)
                return -ESRCH;
        if (remote_domid == HV_DOMID_SELF)
                remote_domid = domid;
        if (!evtchn_domain(ev, remote_domid))
                return -ESRCH;
        r = hv_evtchn_port(ev, remote_domid, remote_port);
        if (!r || r->state != HV_EVTCHN_UNBOUND || r->remote_domid != domid || r->orphaned)
                return -EINVAL;
        ret = evtchn_alloc_port(d, &port);
        if (ret < 0)
                return ret;
        l = &d->ports[port];
        *l = (HvPort){
                .state = HV_EVTCHN_INTERDOMAIN,
                .remote_domid = (uint16_t)remote_domid,
                .remote_port = remote_port,
                .owner = owner,
                .doorbell = -1,
        };
        r->state = HV_EVTCHN_INTERDOMAIN;
        r->remote_domid = (uint16_t)domid;
        r->remote_port = port;
        *ret_port = port;
        return 0;
}

/* Look up a port its owner acts on: -EINVAL when out of range, -ENOTCONN when not theirs. */
static int evtchn_owned(const HvEvtchn *ev, uint32_t domid, uint32_t port, void *owner,
                        HvPort **ret)
{
        HvPort *p = hv_evtchn_port(ev, domid, port);

        if (!p)
                return -EINVAL;
        if (owner ? p->owner != owner : p->state == HV_EVTCHN_FREE)
                return owner ? -ENOTCONN : -EINVAL;
        *ret = p;
        return 0;
}

int hv_evtchn_close(HvEvtchn *ev, uint32_t domid, uint32_t port, void *owner)
{
        HvPort *p;
        int r = evtchn_owned(ev, domid, port, owner, &p);

        if (r < 0)
                return r;
        evtchn_close_port(ev, domid, port, p);
        return 0;
}

void hv_evtchn_close_owner(HvEvtchn *ev, uint32_t domid, void *owner)
{
        HvEvtchnDomain *d = evtchn_domain(ev, domid);

        if (!d || !owner)
                return;
        for (uint32_t p = 1; p < HV_PORTS_PER_DOMAIN; p++) {
                if (d->ports[p].owner == owner)
                        evtchn_close_port(ev, domid, p, &d->ports[p]);
        }
}

int hv_evtchn_notify(HvEvtchn *ev, uint32_t domid, uint32_t port, void *owner)
{
        HvPort *p, *r;
        int ret = evtchn_owned(ev, domid, port, owner, &p);

        if (ret < 0)
                return ret;
        if (p->state != HV_EVTCHN_INTERDOMAIN)
                return 0;
        r = hv_evtchn_port(ev, p->remote_domid, p->remote_port);
        if (r)
                ev->ops->raise(ev->userdata, p->remote_domid, p->remote_port, r);
        return 0;
}

int hv_evtchn_hold(HvEvtchn *ev, uint32_t domid, uint32_t port)
{
        HvPort *p = hv_evtchn_port(ev, domid, port);

        if (!p || p->state == HV_EVTCHN_FREE || p->orphaned)
                return -EINVAL;
        p->n_holds++;
        return 0;
}

void hv_evtchn_release(HvEvtchn *ev, uint32_t domid, uint32_t port)
{
        HvPort *p = hv_evtchn_port(ev, domid, port);

        if (!p || p->n_holds == 0)
                return;
        if (--p->n_holds == 0 && p->orphaned)
                evtchn_free(ev, domid, port, p);
}

int hv_evtchn_status(const HvEvtchn *ev, uint32_t domid, uint32_t port, uint32_t *ret_state,
                     uint32_t *ret_remote_domid, uint32_t *ret_remote_port)
{
        HvPort *p;

        if (!evtchn_domain(ev, domid))
                return -ESRCH;
        p = hv_evtchn_port(ev, domid, port);
        if (!p)
                return -EINVAL;
        *ret_state = p->state;
        *ret_remote_domid = p->state == HV_EVTCHN_FREE ? 0 : p->remote_domid;
        *ret_remote_port = p->remote_port;
        return 0;
}
