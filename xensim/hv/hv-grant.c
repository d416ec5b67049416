/*
 * Grant table permission logic (see hv-grant.h). Invariant: n_used counts in_use entries, and
 * entries below HV_GRANT_REF_FIRST are never in use.
 */
#include "hv-grant.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hv-limits.h"

void hv_grant_init(HvGrants *g)
{
        memset(g, 0, sizeof(*g));
}

static HvGrantDomain *grant_domain(const HvGrants *g, uint32_t domid)
{
        if (domid >= g->n_domains)
                return NULL;
        return g->domains[domid];
}

void hv_grant_deinit(HvGrants *g)
{
        for (size_t i = 0; i < g->n_domains; i++)
                hv_grant_remove_domain(g, (uint32_t)i);
        free(g->domains);
        memset(g, 0, sizeof(*g));
}

bool hv_grant_has_domain(const HvGrants *g, uint32_t domid)
{
        return grant_domain(g, domid) != NULL;
}

int hv_grant_add_domain(HvGrants *g, uint32_t domid)
{
        HvGrantDomain *d;

        if (domid > HV_DOMID_MAX)
                return -EINVAL;
        if (grant_domain(g, domid))
                return -EEXIST;
        if (domid >= g->n_domains) {
                size_t n = domid + 1u;
                HvGrantDomain **v = realloc(g->domains, n * sizeof(HvGrantDomain *));

                if (!v)
                        return -ENOMEM;
                memset(v + g->n_domains, 0, (n - g->n_domains) * sizeof(HvGrantDomain *));
                g->domains = v;
                g->n_domains = n;
        }
        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->entries = calloc(HV_GRANTS_PER_DOMAIN, sizeof(*d->entries));
        if (!d->entries) {
                free(d);
                return -ENOMEM;
        }
        d->next = HV_GRANT_REF_FIRST;
        g->domains[domid] = d;
        return 0;
}

void hv_grant_remove_domain(HvGrants *g, uint32_t domid)
{
        HvGrantDomain *d = grant_domain(g, domid);

        if (!d)
                return;
        free(d->entries);
        free(d);
        g->domains[domid] = NULL;
}

int hv_grant_alloc(HvGrants *g, uint32_t domid, uint32_t grantee, bool readonly, void *backing,
                   uint32_t page, uint32_t *ret_ref)
{
        HvGrantDomain *d = grant_domain(g, domid);
        const uint32_t n_refs = HV_GRANTS_PER_DOMAIN - HV_GRANT_REF_FIRST;

        if (!d)
                return -ESRCH;
        if (grantee > HV_DOMID_MAX)
                return -EINVAL;
        if (d->n_used >= n_refs)
                return -ENOSPC;
        for (uint32_t i = 0; i < n_refs; i++) {
                uint32_t ref = d->next;

                d->next = ref + 1u >= HV_GRANTS_PER_DOMAIN ? HV_GRANT_REF_FIRST : ref + 1u;
                if (d->entries[ref].in_use)
                        continue;
                d->entries[ref] = (HvGrant){
                        .in_use = true,
                        .readonly = readonly,
                        .grantee = (uint16_t)grantee,
                        .page = page,
                        .backing = backing,
                };
                d->n_used++;
                *ret_ref = ref;
                return 0;
        }
        return -ENOSPC;
}

void hv_grant_free(HvGrants *g, uint32_t domid, uint32_t ref)
{
        HvGrantDomain *d = grant_domain(g, domid);

        if (!d || ref >= HV_GRANTS_PER_DOMAIN || !d->entries[ref].in_use)
                return;
        memset(&d->entries[ref], 0, sizeof(d->entries[ref]));
        d->n_used--;
}

int hv_grant_check_map(const HvGrants *g, uint32_t granter, uint32_t ref, uint32_t mapper,
                       bool writable, void **ret_backing, uint32_t *ret_page)
{
        const HvGrantDomain *d = grant_domain(g, granter);
        const HvGrant *e;

        if (!d)
                return -ESRCH;
        if (ref >= HV_GRANTS_PER_DOMAIN || !d->entries[ref].in_use)
                return -EINVAL;
        e = &d->entries[ref];
        if (e->grantee != mapper)
                return -EPERM;
        if (writable && e->readonly)
                return -EPERM;
        *ret_backing = e->backing;
        *ret_page = e->page;
        return 0;
}
