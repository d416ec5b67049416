/*
 * A minimal drop-in libxenctrl.so.4.17 for xensim: only the calls Xen's own vchan tools make
 * (vchan-socket-proxy opens an xc_interface and asks whether its peer domain still exists).
 * The real library needs /dev/xen/privcmd and hypercalls; here the domain list comes from
 * xensim-hvd, which follows xenstore's @introduceDomain/@releaseDomain. Every other libxenctrl
 * function is absent: programs that call one fail at that call, not silently.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xenctrl.h>

#include "hv-client.h"

#define XENCTRL_EXPORT __attribute__((visibility("default")))

struct xc_interface_core {
        HvClient client;
};

XENCTRL_EXPORT xc_interface *xc_interface_open(xentoollog_logger *logger,
                                               xentoollog_logger *dombuild_logger,
                                               unsigned open_flags)
{
        xc_interface *xch = calloc(1, sizeof(*xch));
        int r;

        if (!xch)
                return NULL;
        r = hv_client_open(&xch->client, 1);
        if (r < 0) {
                free(xch);
                errno = -r;
                return NULL;
        }
        return xch;
}

XENCTRL_EXPORT int xc_interface_close(xc_interface *xch)
{
        if (!xch)
                return 0;
        hv_client_close(&xch->client);
        free(xch);
        return 0;
}

XENCTRL_EXPORT int xc_domain_getinfo(xc_interface *xch, uint32_t first_domid, unsigned int max_doms,
                                     xc_dominfo_t *info)
{
        unsigned int n = 0;

        while (n < max_doms && first_domid <= HV_DOMID_MAX) {
                HvMsg req = {.op = HV_OP_DOMINFO, .arg = {first_domid}}, rep;
                int r = hv_client_call(&xch->client, &req, NULL, &rep, NULL, 0, NULL, 0, NULL);

                if (r == -ESRCH)
                        break;
                if (r < 0) {
                        if (n > 0)
                                break;
                        errno = -r;
                        return -1;
                }
                /* A running domain with one vCPU; nothing else is emulated. */
                memset(&info[n], 0, sizeof(info[n]));
                info[n].domid = rep.arg[0];
                info[n].running = 1;
                info[n].nr_online_vcpus = 1;
                info[n].max_vcpu_id = 0;
                first_domid = rep.arg[0] + 1u;
                n++;
        }
        return (int)n;
}

XENCTRL_EXPORT int xc_evtchn_status(xc_interface *xch, xc_evtchn_status_t *status)
{
        HvMsg req = {.op = HV_OP_EVT_STATUS, .arg = {status->dom, status->port}}, rep;
        int r = hv_client_call(&xch->client, &req, NULL, &rep, NULL, 0, NULL, 0, NULL);

        if (r < 0) {
                errno = -r;
                return -1;
        }
        memset(&status->u, 0, sizeof(status->u));
        status->vcpu = 0;
        switch (rep.arg[0]) {
        case HV_EVTCHN_UNBOUND:
                status->status = EVTCHNSTAT_unbound;
                status->u.unbound.dom = (domid_t)rep.arg[1];
                break;
        case HV_EVTCHN_INTERDOMAIN:
                status->status = EVTCHNSTAT_interdomain;
                status->u.interdomain.dom = (domid_t)rep.arg[1];
                status->u.interdomain.port = rep.arg[2];
                break;
        default:
                status->status = EVTCHNSTAT_closed;
                break;
        }
        return 0;
}
